// ZeRO-1 with the flat partition (train/zero.h, `train.zero: true`, `train.zero_partition: flat`).
//
// Units, run by every rank of an `mpirun -np 2` job (and by one process without MPI): the ranges
// tile the flat trainable values (contiguous, split inside tensors, within one value of T/world);
// a whole step through the flat path (reduce-scatter, global-norm clipping, AdamW over the pieces,
// all-gather) gives the plain path's parameters (all-reduce, clip, AdamW over whole tensors), a
// frozen parameter untouched; the checkpoint's moment gather puts every piece's moments where the
// whole-tensor optimizer keeps them, and scattering them back restores each rank's pieces.
//
// End to end (one `mpirun -np 2` job of this binary in worker mode, time-limited): 2 ranks × batch
// 16 with flat ZeRO give the losses of one process × batch 32 (within 1e-5, the tolerance of
// test_train_zero) and of the whole-tensor ZeRO run; a flat run resumed from its checkpoint
// continues with the uninterrupted run's losses bit for bit; a flat checkpoint resumes without
// ZeRO and a whole-tensor ZeRO checkpoint with flat ZeRO.
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

#include "autograd/ops.h"
#include "autograd/optim.h"
#include "autograd/params.h"
#include "autograd/tape.h"
#include "tests/mpi_launch.h"
#include "train/trainer.h"
#include "train/zero.h"

static vlt_dist g_d;

#define NP 7
static const int SIZES[NP] = {1, 7, 1000, 3001, 250, 13, 601};   // odd total: the last range is short
#define FROZEN 4

static float grad_value(int rank, int i, int64_t j) { return (float)((rank + 1) * 0.25 + i * 0.5 - 0.001 * (double)j); }
static float value_of(int i, int64_t j) { return (float)i * 0.1f + 0.0005f * (float)j - 0.3f; }

static void make_params(vlt_tensor **p) {
    for (int i = 0; i < NP; i++) {
        p[i] = i == 0 ? vlt_tensor_new_param(0, NULL, "scalar") : vlt_tensor_new_param(1, VLT_SHAPE(SIZES[i]), "p");
        vlt_tensor_set_name(p[i], "p%d", i);
        for (int64_t j = 0; j < p[i]->numel; j++) {
            vlt_f32(p[i])[j] = value_of(i, j);
            vlt_f32(p[i]->grad)[j] = i == FROZEN ? 0 : grad_value(g_d.rank, i, j);
        }
    }
    p[FROZEN]->requires_grad = false;   // backward gives it nothing; nothing moves it
}

static void free_params(vlt_tensor **p) {
    for (int i = 0; i < NP; i++) vlt_tensor_free(p[i]);
}

static void test_flat_ranges_tile_the_values(void **state) {
    (void)state;
    vlt_tensor *p[NP];
    make_params(p);
    vlt_zero *z = vlt_zero_new_flat(&g_d, p, NP);
    assert_non_null(z);
    assert_true(vlt_zero_is_flat(z));
    int64_t lo, hi, T, want = 0;
    for (int i = 0; i < NP; i++) want += i == FROZEN ? 0 : SIZES[i];
    vlt_zero_flat_range(z, &lo, &hi, &T);
    int bad = T != want;
    int64_t S = (T + g_d.world - 1) / g_d.world;
    bad += lo != g_d.rank * S || hi - lo > S || hi - lo < S - 1;   // contiguous, balanced to one value
    // the ranges tile [0, T): their lengths add up to T and rank r + 1 starts where r ends
    double len = (double)(hi - lo);
    vlt_dist_sum(&g_d, &len, 1);
    bad += len != (double)T;
    // the owner of a parameter is the rank of its first value; frozen ones rank 0's
    for (int i = 0, at = 0; i < NP; i++) {
        int o = vlt_zero_owner(z, i);
        bad += i == FROZEN ? o != 0 : o != at / S;
        if (i != FROZEN) at += SIZES[i];
    }
    if (g_d.rank == 0) print_message("flat ranges: T = %lld over %d ranks, %lld per rank\n", (long long)T, g_d.world, (long long)S);
    vlt_zero_free(z);
    free_params(p);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

// Two steps (the second with moments already set), clipping active: flat ZeRO vs plain.
static void test_flat_step_equals_plain(void **state) {
    (void)state;
    vlt_tensor *a[NP], *b[NP];
    make_params(a);
    make_params(b);
    bool decay[NP] = {false, true, true, true, true, false, true};
    vlt_adamw_cfg cfg = vlt_adamw_defaults();
    vlt_adamw *oa = vlt_adamw_new(a, decay, NP, cfg);
    vlt_zero *z = vlt_zero_new_flat(&g_d, b, NP);
    assert_non_null(z);
    vlt_adamw *ob = vlt_zero_adamw_new(z, decay, cfg);
    assert_non_null(oa);
    assert_non_null(ob);
    int bad = 0;
    float na[2], nb[2];
    for (int step = 0; step < 2; step++) {
        for (int i = 0; i < NP; i++)
            for (int64_t j = 0; j < a[i]->numel; j++)
                vlt_f32(a[i]->grad)[j] = vlt_f32(b[i]->grad)[j] = i == FROZEN ? 0 : grad_value(g_d.rank, i, j) * (step + 1);
        assert_int_equal(vlt_dist_allreduce_grads(&g_d, a, NP, 1000), VLT_OK);
        na[step] = vlt_clip_grad_norm(a, NP, 1.0f);
        assert_int_equal(vlt_adamw_step(oa, 1e-2f), VLT_OK);
        assert_int_equal(vlt_zero_reduce_grads(z), VLT_OK);
        nb[step] = vlt_zero_clip_grad_norm(z, 1.0f);
        assert_int_equal(vlt_adamw_step(ob, 1e-2f), VLT_OK);
        assert_int_equal(vlt_zero_gather_params(z), VLT_OK);
        bad += fabsf(na[step] - nb[step]) > 1e-6f * na[step] || !(na[step] > 1.0f);
    }
    double worst = 0;
    int64_t differ = 0;
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < a[i]->numel; j++) {
            double x = vlt_f32(a[i])[j], y = vlt_f32(b[i])[j];
            worst = fmax(worst, fabs(x - y) / (1e-3 + fabs(x)));
            differ += x != y;
            if (i == FROZEN) bad += y != value_of(i, j);
            else bad += y == value_of(i, j);   // every trainable value moved
        }
    bad += worst > 1e-6;
    if (g_d.rank == 0)
        print_message("flat step vs plain, 2 steps: norms %.7g/%.7g vs %.7g/%.7g; parameters worst %.2g (%lld of them "
                      "not bit-equal)\n", nb[0], nb[1], na[0], na[1], worst, (long long)differ);
    // A non-finite gradient on the last rank, in any range: every rank sees a non-finite norm.
    if (g_d.rank == g_d.world - 1) vlt_f32(b[2]->grad)[5] = NAN;
    assert_int_equal(vlt_zero_reduce_grads(z), VLT_OK);
    bad += isfinite(vlt_zero_clip_grad_norm(z, 1.0f));
    vlt_adamw_free(oa);
    vlt_adamw_free(ob);
    vlt_zero_free(z);
    free_params(a);
    free_params(b);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

static float moment_of(int i, int64_t j, int k) { return (float)(i + 1) * (k ? 0.5f : -1.0f) + 0.01f * (float)j; }

// The pieces' moments, set as if they were their whole tensors', gather to rank 0 in place; a
// fresh shard scattered from that full optimizer holds them again.
static void test_flat_gather_and_scatter_optimizer(void **state) {
    (void)state;
    vlt_tensor *p[NP];
    make_params(p);
    bool decay[NP] = {true, false, true, true, false, true, false};
    vlt_zero *z = vlt_zero_new_flat(&g_d, p, NP);
    assert_non_null(z);
    vlt_adamw *o = vlt_zero_adamw_new(z, decay, vlt_adamw_defaults());
    assert_non_null(o);
    // which parameter and offset each local entry is: by its values' address
    int who[NP * 2];
    int64_t off[NP * 2];
    int bad = o->n > NP;
    for (int k = 0; k < o->n && k < NP; k++) {
        who[k] = -1;
        for (int i = 0; i < NP; i++) {
            const float *base = vlt_f32(p[i]), *x = vlt_f32(o->params[k]);
            if (x >= base && x < base + p[i]->numel) { who[k] = i; off[k] = x - base; }
        }
        bad += who[k] < 0 || (who[k] == FROZEN && g_d.rank != 0);
        bad += who[k] >= 0 && o->decay[k] != decay[who[k]];
        for (int64_t j = 0; who[k] >= 0 && j < o->params[k]->numel; j++) {
            o->m[k][j] = moment_of(who[k], off[k] + j, 0);
            o->v[k][j] = moment_of(who[k], off[k] + j, 1);
        }
    }
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
    o->t = 7;
    vlt_adamw *full = NULL;
    assert_int_equal(vlt_zero_gather_optimizer(z, o, decay, &full), VLT_OK);
    if (g_d.rank == 0) {
        bad += !full || full->n != NP || full->t != 7;
        for (int i = 0; full && i < NP; i++) {
            bad += full->decay[i] != decay[i];
            for (int64_t j = 0; j < p[i]->numel; j++)
                bad += full->m[i][j] != moment_of(i, j, 0) || full->v[i][j] != moment_of(i, j, 1);
        }
    } else {
        bad += full != NULL;
    }
    // Every rank scatters from a full optimizer (rank 0's, rebuilt here from the known values).
    vlt_adamw *f2 = vlt_adamw_new(p, decay, NP, vlt_adamw_defaults());
    assert_non_null(f2);
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < p[i]->numel; j++) {
            f2->m[i][j] = moment_of(i, j, 0);
            f2->v[i][j] = moment_of(i, j, 1);
        }
    f2->t = 9;
    for (int k = 0; k < o->n; k++) {
        memset(o->m[k], 0, sizeof(float) * (size_t)o->params[k]->numel);
        memset(o->v[k], 0, sizeof(float) * (size_t)o->params[k]->numel);
    }
    assert_int_equal(vlt_zero_scatter_optimizer(z, o, f2), VLT_OK);
    bad += o->t != 9;
    for (int k = 0; k < o->n && k < NP; k++)
        for (int64_t j = 0; j < o->params[k]->numel; j++)
            bad += o->m[k][j] != moment_of(who[k], off[k] + j, 0) || o->v[k][j] != moment_of(who[k], off[k] + j, 1);
    // the whole-tensor optimizer is not a flat shard
    bad += vlt_zero_scatter_optimizer(z, f2, f2) == VLT_OK;
    vlt_adamw_free(f2);
    vlt_zero_free_gathered(full);
    vlt_adamw_free(o);
    vlt_zero_free(z);
    free_params(p);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

static int run_rank_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_ranges_tile_the_values),
        cmocka_unit_test(test_flat_step_equals_plain),
        cmocka_unit_test(test_flat_gather_and_scatter_optimizer),
    };
    return cmocka_run_group_tests_name("train_zero_flat_ranks", tests, NULL, NULL);
}

// ---- end to end ---------------------------------------------------------------------------------
#define STEPS 6
#define CKPT 3

static char g_dir[256];
static const char *g_self;

// zero: 0 none, 1 whole tensors, 2 flat
static void config(vlt_run_config *c, const char *dir, const char *run, int batch, int workers, int zero) {
    multi_rank_run_config(c, dir, run, batch, workers, STEPS, CKPT);
    c->zero = zero > 0;
    snprintf(c->zero_partition, sizeof c->zero_partition, "%s", zero == 2 ? "flat" : "tensors");
}

// One 2-rank training run (mpi_train_run).
static int train_run(const char *dir, const char *run, int zero, const char *resume, int64_t steps, const char *out) {
    vlt_run_config c;
    config(&c, dir, run, 16, 1, zero);
    return mpi_train_run(&g_d, &c, dir, run, resume, steps, out);
}

// The 2-rank job: every training run the end-to-end tests compare.
static int worker(const char *dir) {
    char ck_flat[400], ck_tensors[400];
    snprintf(ck_flat, sizeof ck_flat, "%s/fparts/checkpoints/step_%08d", dir, CKPT);
    snprintf(ck_tensors, sizeof ck_tensors, "%s/tparts/checkpoints/step_%08d", dir, CKPT);
    int rc = train_run(dir, "fwhole", 2, NULL, 0, "fwhole");
    if (!rc) rc = train_run(dir, "twhole", 1, NULL, 0, "twhole");
    // Interrupted after the checkpoint at CKPT (two more steps lost), then resumed.
    if (!rc) rc = train_run(dir, "fparts", 2, NULL, CKPT + 2, NULL);
    if (!rc) rc = train_run(dir, "fparts", 2, "latest", 0, "fresume");
    // The flat checkpoint without ZeRO, and a whole-tensor ZeRO checkpoint with flat ZeRO.
    if (!rc) rc = train_run(dir, "f2plain", 0, ck_flat, 0, "f2plain");
    if (!rc) rc = train_run(dir, "tparts", 1, NULL, CKPT, NULL);
    if (!rc) rc = train_run(dir, "t2flat", 2, ck_tensors, 0, "t2flat");
    return rc;
}

static int g_job_rc = -100;

static int job(void) {
    if (g_job_rc != -100) return g_job_rc;
    double secs = 0;
    g_job_rc = run_worker_job(g_self, g_dir, 400, &secs);
    print_message("mpirun -np 2 (7 flat / whole-tensor ZeRO / plain training runs): exit %d after %.1f s\n", g_job_rc,
                  secs);
    return g_job_rc;
}

static int make_data(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-zero-flat-e2e-XXXXXX");
    return make_synth_train_dir(g_dir, 800);
}

static int remove_data(void **state) {
    (void)state;
    return remove_dir(g_dir);
}

static float g_ref[STEPS];

static void test_flat_two_ranks_equal_one_process(void **state) {
    (void)state;
    SKIP_WITHOUT_MPI();
    vlt_run_config c;
    config(&c, g_dir, "r1", 32, 2, 0);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    int64_t n;
    const float *src = vlt_trainer_losses(t, &n);
    assert_int_equal(n, STEPS);
    memcpy(g_ref, src, sizeof g_ref);
    vlt_trainer_free(t);
    assert_int_equal(job(), 0);
    float fl[STEPS], tl[STEPS];
    assert_int_equal(mpi_read_losses(g_dir, "fwhole", fl, STEPS), STEPS);
    assert_int_equal(mpi_read_losses(g_dir, "twhole", tl, STEPS), STEPS);
    double w = worst_rel(fl, g_ref, STEPS, 0), wt = worst_rel(fl, tl, STEPS, 0);
    int same = !memcmp(fl, tl, sizeof fl);
    print_message("CLIP, flat ZeRO-1, 2 ranks x 16 vs 1 x 32, %d steps: loss %.5f -> %.5f, worst relative difference "
                  "%.1e; vs whole-tensor ZeRO-1 %.1e (%s)\n", STEPS, g_ref[0], g_ref[STEPS - 1], w, wt,
                  same ? "bit for bit" : "not bit for bit");
    assert_true(w < 1e-5);
    assert_true(wt < 1e-5);
}

static void test_flat_resume_is_exact(void **state) {
    (void)state;
    SKIP_WITHOUT_MPI();
    assert_int_equal(job(), 0);
    float whole[STEPS], resumed[STEPS];
    assert_int_equal(mpi_read_losses(g_dir, "fwhole", whole, STEPS), STEPS);
    assert_int_equal(mpi_read_losses(g_dir, "fresume", resumed, STEPS), STEPS - CKPT);
    for (int i = 0; i < STEPS - CKPT; i++)
        if (memcmp(&resumed[i], &whole[CKPT + i], sizeof(float)))
            fail_msg("step %d: resumed %.9g, uninterrupted %.9g", CKPT + i, resumed[i], whole[CKPT + i]);
}

// Needs g_ref (the first test).
static void test_flat_checkpoints_resume_either_way(void **state) {
    (void)state;
    SKIP_WITHOUT_MPI();
    assert_int_equal(job(), 0);
    float f2p[STEPS], t2f[STEPS];
    assert_int_equal(mpi_read_losses(g_dir, "f2plain", f2p, STEPS), STEPS - CKPT);
    assert_int_equal(mpi_read_losses(g_dir, "t2flat", t2f, STEPS), STEPS - CKPT);
    double a = worst_rel(f2p, g_ref, STEPS - CKPT, CKPT), b = worst_rel(t2f, g_ref, STEPS - CKPT, CKPT);
    print_message("flat ZeRO checkpoint resumed without ZeRO: worst %.1e vs one process; whole-tensor ZeRO checkpoint "
                  "resumed with flat ZeRO: %.1e\n", a, b);
    assert_true(a < 1e-5);
    assert_true(b < 1e-5);
}

static int run_e2e_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_two_ranks_equal_one_process),
        cmocka_unit_test(test_flat_resume_is_exact),
        cmocka_unit_test(test_flat_checkpoints_resume_either_way),
    };
    return cmocka_run_group_tests_name("train_zero_flat_e2e", tests, make_data, remove_data);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--worker")) return run_worker_main(&g_d, worker, argv[2]);
    g_self = argv[0];
    return mpi_test_main(argc, argv, "test_train_zero_flat", &g_d, run_e2e_group, run_rank_group);
}
