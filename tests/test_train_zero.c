// ZeRO-1 (train/zero.h, `train.zero: true`).
//
// Unit tests, run by every rank of an `mpirun -np 2` job (collective, as in test_train_dist.c:
// local failures are summed over ranks before asserting): the ownership is balanced and the same
// on every rank, a rank's AdamW holds only its own parameters (the memory split) with the decay
// mask following; reduce-to-owner gives the owners the all-reduced gradients, the clipping norm
// is the global one and the clipped gradients are the plain path's; the parameter gather and the
// checkpoint's moment gather; the shard checkpoint load (and that the strict load still refuses a
// shard).
//
// End to end: 2 ranks × batch 16 with ZeRO-1 give the losses of one process × batch 32 step by
// step (CLIP and CoCa, within 1e-5); a 2-rank ZeRO run resumed from its checkpoint continues with
// the uninterrupted ZeRO run's losses value for value; a ZeRO checkpoint resumes without ZeRO and
// a plain one with ZeRO (losses within 1e-5 of the one-process run). All the 2-rank training runs
// are one `mpirun -np 2` job of this binary in worker mode (time-limited), to pay for MPI's start
// once. Without MPI the 2-rank parts are skipped and the unit group runs with world size 1.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>
#include <unistd.h>

#include "autograd/optim.h"
#include "checkpoints/checkpoint.h"
#include "layers/clip.h"
#include "tests/mpi_launch.h"
#include "train/commands.h"
#include "train/trainer.h"
#include "train/zero.h"

static vlt_dist g_d;

// ---- units (every rank) -----------------------------------------------------------------------
static void test_ownership_and_memory_split(void **state) {
    (void)state;
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load("tiny-clip", &cfg), VLT_OK);
    vlt_clip m;
    assert_int_equal(vlt_clip_init(&m, &cfg, 3), VLT_OK);
    int W = g_d.world, n = m.params.n, bad = 0;
    vlt_zero *z = vlt_zero_new(&g_d, m.params.t, n, 0);
    assert_non_null(z);
    int64_t total = vlt_params_numel(&m.params), biggest = 0;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        int o = vlt_zero_owner(z, i);
        bad += o < 0 || o >= W;
        h = (h ^ (uint64_t)o) * 1099511628211ull;
        if (m.params.t[i]->numel > biggest) biggest = m.params.t[i]->numel;
    }
    long long lo, hi;
    vlt_dist_minmax(&g_d, (long long)(h >> 2), &lo, &hi);
    bad += lo != hi;   // the same owners on every rank
    int n_owned;
    const int *owned = vlt_zero_owned(z, &n_owned);
    int64_t mine = 0;
    for (int k = 0; k < n_owned; k++) {
        bad += vlt_zero_owner(z, owned[k]) != g_d.rank || (k && owned[k] <= owned[k - 1]);
        mine += m.params.t[owned[k]]->numel;
    }
    bad += mine != vlt_zero_owned_numel(z) || n_owned < 1;
    // Balanced: within one parameter of the mean.
    bad += (double)mine > (double)total / W + (double)biggest;
    // The optimizer: only this rank's parameters, the decay mask following them.
    bool *decay = malloc((size_t)n);
    vlt_clip_decay_mask(&m.params, decay);
    vlt_adamw *o = vlt_zero_adamw_new(z, decay, vlt_adamw_defaults());
    assert_non_null(o);
    bad += o->n != n_owned;
    int64_t state_values = 0;
    for (int k = 0; k < o->n; k++) {
        bad += o->params[k] != m.params.t[owned[k]] || o->decay[k] != decay[owned[k]];
        state_values += 2 * o->params[k]->numel;   // m and v
    }
    double sums[2] = {(double)state_values, (double)n_owned};
    vlt_dist_sum(&g_d, sums, 2);
    bad += sums[0] != 2.0 * (double)total || sums[1] != n;   // every parameter held once, in all
    if (W > 1) bad += state_values >= 2 * total;
    if (g_d.rank == 0)
        print_message("tiny-clip, %d rank(s): rank 0 holds AdamW state for %d of %d parameters, %lld of %lld values "
                      "(%.1f%%)\n", W, n_owned, n, (long long)state_values / 2, (long long)total,
                      100.0 * (double)state_values / 2 / (double)total);
    // A table with fewer parameters than ranks is refused.
    if (W > 1) {
        vlt_zero *z1 = vlt_zero_new(&g_d, m.params.t, 1, 0);
        bad += z1 != NULL || vlt_error_code() != VLT_ERR_ARG;
        vlt_error_clear();
    }
    vlt_adamw_free(o);
    free(decay);
    vlt_zero_free(z);
    vlt_clip_free(&m);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

#define NP 7
static float grad_value(int rank, int i, int64_t j) { return (float)((rank + 1) * 0.25 + i * 0.5 - 0.001 * (double)j); }

static void make_params(vlt_tensor **p) {
    const int sizes[NP] = {1, 7, 1000, 3001, 250, 13, 600};
    for (int i = 0; i < NP; i++) {
        p[i] = i == 0 ? vlt_tensor_new_param(0, NULL, "scalar") : vlt_tensor_new_param(1, VLT_SHAPE(sizes[i]), "p");
        vlt_tensor_set_name(p[i], "p%d", i);
        for (int64_t j = 0; j < p[i]->numel; j++) vlt_f32(p[i]->grad)[j] = grad_value(g_d.rank, i, j);
    }
    // Frozen: neither reduced nor clipped nor gathered; its gradient stays zero, as in training
    // (backward gives frozen parameters nothing), so both norms leave it out.
    p[4]->requires_grad = false;
    memset(p[4]->grad->data, 0, sizeof(float) * (size_t)p[4]->numel);
}

static void free_params(vlt_tensor **p) {
    for (int i = 0; i < NP; i++) vlt_tensor_free(p[i]);
}

static void test_reduce_to_owner_equals_allreduce(void **state) {
    (void)state;
    vlt_tensor *a[NP], *b[NP];
    make_params(a);
    make_params(b);
    int bad = 0;
    // 1000-byte buckets: the 3001-value gradient spans several, each of one owner.
    assert_int_equal(vlt_dist_allreduce_grads(&g_d, a, NP, 1000), VLT_OK);
    vlt_zero *z = vlt_zero_new(&g_d, b, NP, 1000);
    assert_non_null(z);
    assert_int_equal(vlt_zero_reduce_grads(z), VLT_OK);
    double worst = 0;
    for (int i = 0; i < NP; i++) {
        if (vlt_zero_owner(z, i) != g_d.rank) continue;
        for (int64_t j = 0; j < a[i]->numel; j++) {
            double x = vlt_f32(a[i]->grad)[j], y = vlt_f32(b[i]->grad)[j];
            worst = fmax(worst, fabs(x - y) / (1 + fabs(x)));
        }
    }
    bad += worst > 1e-6;
    for (int64_t j = 0; j < b[4]->numel; j++) bad += vlt_f32(b[4]->grad)[j] != 0;
    // Global-norm clipping: the same norm as the plain path on the all-reduced gradients, and the
    // owners' clipped gradients equal the plain path's.
    float na = vlt_clip_grad_norm(a, NP, 1.0f), nb = vlt_zero_clip_grad_norm(z, 1.0f);
    bad += fabsf(na - nb) > 1e-6f * na || !(na > 1.0f);
    double worst_clip = 0;
    for (int i = 0; i < NP; i++) {
        if (vlt_zero_owner(z, i) != g_d.rank) continue;
        for (int64_t j = 0; j < a[i]->numel; j++) {
            double x = vlt_f32(a[i]->grad)[j], y = vlt_f32(b[i]->grad)[j];
            worst_clip = fmax(worst_clip, fabs(x - y) / (1e-3 + fabs(x)));
        }
    }
    bad += worst_clip > 1e-5;
    if (g_d.rank == 0)
        print_message("reduce-to-owner vs all-reduce: worst %.2g; norm %.7g vs %.7g; clipped worst %.2g (%d buckets)\n",
                      worst, nb, na, worst_clip, vlt_zero_buckets(z));
    // A non-finite gradient on the last rank, in a parameter another rank may own: every rank
    // sees a non-finite norm.
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < b[i]->numel; j++) vlt_f32(b[i]->grad)[j] = i == 4 ? 0 : grad_value(g_d.rank, i, j);
    if (g_d.rank == g_d.world - 1) vlt_f32(b[2]->grad)[5] = NAN;
    assert_int_equal(vlt_zero_reduce_grads(z), VLT_OK);
    bad += isfinite(vlt_zero_clip_grad_norm(z, 1.0f));
    vlt_zero_free(z);
    free_params(a);
    free_params(b);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

static float value_of(int rank, int i, int64_t j) { return (float)(rank * 100 + i) + 0.125f * (float)j; }

static void test_gather_params(void **state) {
    (void)state;
    vlt_tensor *p[NP];
    make_params(p);
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < p[i]->numel; j++) vlt_f32(p[i])[j] = value_of(g_d.rank, i, j);
    vlt_zero *z = vlt_zero_new(&g_d, p, NP, 1000);
    assert_non_null(z);
    assert_int_equal(vlt_zero_gather_params(z), VLT_OK);
    int bad = 0;
    for (int i = 0; i < NP; i++) {
        int from = i == 4 ? g_d.rank : vlt_zero_owner(z, i);   // frozen: not sent
        for (int64_t j = 0; j < p[i]->numel; j++) bad += vlt_f32(p[i])[j] != value_of(from, i, j);
    }
    vlt_zero_free(z);
    free_params(p);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

static float moment_of(int i, int64_t j, int k) { return (float)(i + 1) * (k ? 0.5f : -1.0f) + 0.01f * (float)j; }

// Rank 0 gathers every moment; a checkpoint written from it loads back into each rank's shard.
static void test_gather_optimizer_and_shard_load(void **state) {
    (void)state;
    vlt_params P;
    vlt_params_init(&P);
    const int sizes[NP] = {1, 7, 1000, 3001, 250, 13, 600};
    for (int i = 0; i < NP; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        vlt_params_new(&P, name, 1, VLT_SHAPE(sizes[i]));
    }
    bool decay[NP] = {true, false, true, true, false, true, false};
    vlt_zero *z = vlt_zero_new(&g_d, P.t, P.n, 0);
    assert_non_null(z);
    vlt_adamw *o = vlt_zero_adamw_new(z, decay, vlt_adamw_defaults());
    assert_non_null(o);
    int n_owned;
    const int *owned = vlt_zero_owned(z, &n_owned);
    for (int k = 0; k < o->n; k++)
        for (int64_t j = 0; j < o->params[k]->numel; j++) {
            o->m[k][j] = moment_of(owned[k], j, 0);
            o->v[k][j] = moment_of(owned[k], j, 1);
        }
    o->t = 5;
    vlt_adamw *full = NULL;
    assert_int_equal(vlt_zero_gather_optimizer(z, o, decay, &full), VLT_OK);
    int bad = 0;
    char dir[64] = "/tmp/vlt-zero-ck-XXXXXX";
    if (g_d.rank == 0) {
        bad += !full || full->n != NP || full->t != 5;
        for (int i = 0; full && i < NP; i++) {
            bad += full->decay[i] != decay[i];
            for (int64_t j = 0; j < P.t[i]->numel; j++)
                bad += full->m[i][j] != moment_of(i, j, 0) || full->v[i][j] != moment_of(i, j, 1);
        }
        if (!mkdtemp(dir)) bad++;
        else if (vlt_checkpoint_save(dir, 5, &P, full, "{}", 1) != VLT_OK) bad++;
    } else {
        bad += full != NULL;
    }
    vlt_adamw_free(full);
    // Every rank loads the checkpoint into its zeroed shard.
    vlt_dist_broadcast(&g_d, dir, sizeof dir, 0);
    char ck[128];
    snprintf(ck, sizeof ck, "%s/checkpoints/step_00000005", dir);
    for (int k = 0; k < o->n; k++) {
        memset(o->m[k], 0, sizeof(float) * (size_t)o->params[k]->numel);
        memset(o->v[k], 0, sizeof(float) * (size_t)o->params[k]->numel);
    }
    o->t = 0;
    vlt_status s = vlt_checkpoint_load_shard(ck, &P, o, NULL);
    if (s != VLT_OK) fprintf(stderr, "rank %d: %s\n", g_d.rank, vlt_error_message());
    bad += s != VLT_OK || o->t != 5;
    for (int k = 0; k < o->n; k++)
        for (int64_t j = 0; j < o->params[k]->numel; j++)
            bad += o->m[k][j] != moment_of(owned[k], j, 0) || o->v[k][j] != moment_of(owned[k], j, 1);
    // The strict load still refuses a shard (the other ranks' moments are unexpected there) when
    // the shard is a strict subset; a shard load refuses moments of parameters the model lacks.
    if (g_d.world > 1) {
        s = vlt_checkpoint_load(ck, &P, o, NULL);
        bad += s != VLT_ERR_FORMAT || !strstr(vlt_error_message(), "unexpected");
    }
    vlt_params Q;
    vlt_params_init(&Q);
    for (int k = 0; k < n_owned; k++) vlt_params_new(&Q, P.t[owned[k]]->name, 1, P.t[owned[k]]->shape);
    vlt_zero_free(z);
    vlt_adamw_free(o);
    if (g_d.world > 1) {
        // Q: only this rank's parameters, so the others' moments name no model parameter.
        vlt_adamw *oq = vlt_adamw_new(Q.t, NULL, Q.n, vlt_adamw_defaults());
        s = oq ? vlt_checkpoint_load_shard(ck, &Q, oq, NULL) : VLT_ERR_NOMEM;
        bad += s != VLT_ERR_FORMAT || !strstr(vlt_error_message(), "does not match the optimizer");
        vlt_adamw_free(oq);
    }
    vlt_error_clear();
    vlt_dist_barrier(&g_d);
    if (g_d.rank == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        bad += system(cmd) != 0;
    }
    vlt_params_free(&Q);
    vlt_params_free(&P);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

static int run_rank_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ownership_and_memory_split),
        cmocka_unit_test(test_reduce_to_owner_equals_allreduce),
        cmocka_unit_test(test_gather_params),
        cmocka_unit_test(test_gather_optimizer_and_shard_load),
    };
    return cmocka_run_group_tests_name("train_zero_ranks", tests, NULL, NULL);
}

// ---- end to end ---------------------------------------------------------------------------------
#define STEPS 6
#define CKPT 3

static char g_dir[256];
static const char *g_self;

static void config(vlt_run_config *c, const char *dir, const char *run, int batch, int workers, bool zero) {
    multi_rank_run_config(c, dir, run, batch, workers, STEPS, CKPT);
    c->zero = zero;
}

// One 2-rank training run: `steps` steps (0: to the end) of run `run`, resumed from `resume` (NULL:
// a new run); rank 0 writes the losses to DIR/<out>.losses (out NULL: not written).
static int train_run(const char *dir, const char *run, bool zero, const char *resume, int64_t steps, const char *out) {
    vlt_run_config c;
    config(&c, dir, run, 16, 1, zero);
    return mpi_train_run(&g_d, &c, dir, run, resume, steps, out);
}

// The 2-rank job: every ZeRO training run the end-to-end tests compare.
static int worker(const char *dir) {
    char ck_zero[400], ck_plain[400];
    snprintf(ck_zero, sizeof ck_zero, "%s/zparts/checkpoints/step_%08d", dir, CKPT);
    snprintf(ck_plain, sizeof ck_plain, "%s/nparts/checkpoints/step_%08d", dir, CKPT);
    int rc = train_run(dir, "zwhole", true, NULL, 0, "zwhole");
    if (!rc) rc = train_run(dir, "zcoca", true, NULL, 0, "zcoca");
    // Interrupted after the checkpoint at CKPT (two more steps lost), then resumed.
    if (!rc) rc = train_run(dir, "zparts", true, NULL, CKPT + 2, NULL);
    if (!rc) rc = train_run(dir, "zparts", true, "latest", 0, "zresume");
    // The ZeRO checkpoint without ZeRO, and a plain checkpoint with ZeRO.
    if (!rc) rc = train_run(dir, "z2plain", false, ck_zero, 0, "z2plain");
    if (!rc) rc = train_run(dir, "nparts", false, NULL, CKPT, NULL);
    if (!rc) rc = train_run(dir, "plain2z", true, ck_plain, 0, "plain2z");
    return rc;
}

static int g_job_rc = -100;

// The 2-rank job runs once, for the first test that needs it.
static int job(void) {
    if (g_job_rc != -100) return g_job_rc;
    double secs = 0;
    g_job_rc = run_worker_job(g_self, g_dir, 400, &secs);
    print_message("mpirun -np 2 (7 ZeRO / plain training runs): exit %d after %.1f s\n", g_job_rc, secs);
    return g_job_rc;
}

static int make_data(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-zero-e2e-XXXXXX");
    return make_synth_train_dir(g_dir, 800);
}

static int remove_data(void **state) {
    (void)state;
    return remove_dir(g_dir);
}

// The one-process run × batch 32 (two decode threads) of a model; losses into l.
static void one_process(const char *run, float *l) {
    vlt_run_config c;
    config(&c, g_dir, run, 32, 2, false);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    int64_t n;
    const float *src = vlt_trainer_losses(t, &n);
    assert_int_equal(n, STEPS);
    memcpy(l, src, sizeof(float) * STEPS);
    vlt_trainer_free(t);
}

static float g_ref_clip[STEPS];

static void test_zero_two_ranks_equal_one_process(void **state) {
    (void)state;
    SKIP_WITHOUT_MPI();
    one_process("r1", g_ref_clip);
    assert_int_equal(job(), 0);
    float l[STEPS];
    assert_int_equal(mpi_read_losses(g_dir, "zwhole", l, STEPS), STEPS);
    double w = worst_rel(l, g_ref_clip, STEPS, 0);
    print_message("CLIP, ZeRO-1, 2 ranks x 16 vs 1 x 32, %d steps: loss %.5f -> %.5f, worst relative difference "
                  "%.1e\n", STEPS, g_ref_clip[0], g_ref_clip[STEPS - 1], w);
    assert_true(w < 1e-5);
}

static void test_zero_two_ranks_equal_one_process_coca(void **state) {
    (void)state;
    SKIP_WITHOUT_MPI();
    float ref[STEPS], l[STEPS];
    one_process("r1coca", ref);
    assert_int_equal(job(), 0);
    assert_int_equal(mpi_read_losses(g_dir, "zcoca", l, STEPS), STEPS);
    double w = worst_rel(l, ref, STEPS, 0);
    print_message("CoCa, ZeRO-1, 2 ranks x 16 vs 1 x 32, %d steps: loss %.5f -> %.5f, worst relative difference "
                  "%.1e\n", STEPS, ref[0], ref[STEPS - 1], w);
    assert_true(w < 1e-5);
}

static void test_zero_resume_is_exact(void **state) {
    (void)state;
    SKIP_WITHOUT_MPI();
    assert_int_equal(job(), 0);
    float whole[STEPS], resumed[STEPS];
    assert_int_equal(mpi_read_losses(g_dir, "zwhole", whole, STEPS), STEPS);
    assert_int_equal(mpi_read_losses(g_dir, "zresume", resumed, STEPS), STEPS - CKPT);
    for (int i = 0; i < STEPS - CKPT; i++)
        if (memcmp(&resumed[i], &whole[CKPT + i], sizeof(float)))
            fail_msg("step %d: resumed %.9g, uninterrupted %.9g", CKPT + i, resumed[i], whole[CKPT + i]);
}

// Needs g_ref_clip (the first test).
static void test_zero_checkpoints_resume_either_way(void **state) {
    (void)state;
    SKIP_WITHOUT_MPI();
    assert_int_equal(job(), 0);
    float z2p[STEPS], p2z[STEPS], zwhole[STEPS];
    assert_int_equal(mpi_read_losses(g_dir, "z2plain", z2p, STEPS), STEPS - CKPT);
    assert_int_equal(mpi_read_losses(g_dir, "plain2z", p2z, STEPS), STEPS - CKPT);
    assert_int_equal(mpi_read_losses(g_dir, "zwhole", zwhole, STEPS), STEPS);
    double a = worst_rel(z2p, g_ref_clip, STEPS - CKPT, CKPT), b = worst_rel(p2z, g_ref_clip, STEPS - CKPT, CKPT);
    double za = worst_rel(z2p, zwhole, STEPS - CKPT, CKPT);
    print_message("ZeRO checkpoint resumed without ZeRO: worst %.1e vs one process (%.1e vs the ZeRO run); plain "
                  "checkpoint resumed with ZeRO: %.1e\n", a, za, b);
    assert_true(a < 1e-5);
    assert_true(b < 1e-5);
}

static int run_e2e_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_two_ranks_equal_one_process),
        cmocka_unit_test(test_zero_two_ranks_equal_one_process_coca),
        cmocka_unit_test(test_zero_resume_is_exact),
        cmocka_unit_test(test_zero_checkpoints_resume_either_way),
    };
    return cmocka_run_group_tests_name("train_zero_e2e", tests, make_data, remove_data);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--worker")) return run_worker_main(&g_d, worker, argv[2]);
    g_self = argv[0];
    return mpi_test_main(argc, argv, "test_train_zero", &g_d, run_e2e_group, run_rank_group);
}
