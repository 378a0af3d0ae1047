// ALBEF data parallel (issue 15): N ranks, each with its share of the batch, equal a single-process
// simulation of the same algorithm. Each rank computes ITC over its own rows against the shared
// queues, ITM and MLM over its rows with its own draws (keyed by rank), the gradients are
// averaged, and the queues take every rank's momentum features in rank order (all-gathered, as
// the authors' concat_all_gather). The simulation runs in one process on every rank: the ranks'
// shares one after the other as micro-batches (with rank r's draws), each loss weighted 1/N,
// the momentum features of all shares enqueued after the step. After two SGD steps the
// weights, the momentum copies (EMA), both queues and queue_ptr agree to float rounding.
//
// How it runs (MPI build): `make test` starts this binary without mpirun; it runs itself under
// `mpirun -np 2 --oversubscribe --allow-run-as-root` with a timeout and passes the exit status on.
// Every rank runs the same cmocka group (the test is collective); rank 1's output is replayed
// only on a failure. Without MPI the group runs with world size 1 (the simulation of one rank).
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

#include "autograd/device.h"
#include "autograd/optim.h"
#include "checkpoints/safetensors.h"
#include "layers/albef.h"
#include "layers/model.h"
#include "train/dist.h"
#include "tests/fixture_io.h"
#include "tests/mpi_launch.h"

static vlt_dist g_d;
#define FIX "tests/data/albef/tiny/"
#define PER_RANK 2   // the fixture's batch of 4 split over 2 ranks (or used as 2 + 2 with one)

static vlt_tensor *rows(vlt_tensor *x, int from, int n) {
    int shape[4];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[0] = n;
    vlt_tensor *y = vlt_tensor_new(x->dtype, VLT_CPU, x->ndim, shape, x->name);
    size_t row = (size_t)(x->numel / x->shape[0]) * vlt_dtype_size(x->dtype);
    memcpy(y->data, (char *)x->data + row * (size_t)from, row * (size_t)n);
    return y;
}

static vlt_tensor *read_i32(vlt_safetensors *f, const char *name) {
    const vlt_st_tensor *t = vlt_safetensors_get(f, name);
    int shape[4];
    for (int d = 0; d < t->ndim; d++) shape[d] = (int)t->shape[d];
    vlt_tensor *x = vlt_tensor_new(VLT_I32, VLT_CPU, t->ndim, shape, name);
    int64_t *tmp = malloc(sizeof(int64_t) * (size_t)x->numel);
    vlt_safetensors_read_i64(f, name, tmp, x->numel);
    for (int64_t i = 0; i < x->numel; i++) vlt_i32(x)[i] = (int32_t)tmp[i];
    free(tmp);
    return x;
}

static vlt_model make_model(void) {
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load(FIX "config.json", &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    cfg.albef.cls_token_id = 2;   // the fixture's specials (tests/data/albef/README.md)
    cfg.albef.sep_token_id = 3;
    cfg.albef.mask_token_id = 4;
    vlt_model m;
    if (vlt_model_create(&m, &cfg, 11) != VLT_OK) fail_msg("%s", vlt_error_message());
    if (vlt_safetensors_load_params(FIX "weights.safetensors", m.params, false, NULL) != VLT_OK)
        fail_msg("%s", vlt_error_message());
    return m;
}

static vlt_tensor *dist_gather(void *ctx, vlt_tensor *x) { return vlt_dist_all_gather((const vlt_dist *)ctx, x); }

// Rank r's share of the fixture's batch: rows r·PER_RANK .. (the fixture has 4 rows).
typedef struct {
    vlt_tensor *images, *ids, *atts;
} share;

static share share_of(vlt_safetensors *io, int r) {
    vlt_tensor *im = read_f32(io, "image"), *ids = read_i32(io, "text_ids"), *atts = read_i32(io, "text_atts");
    int from = (r * PER_RANK) % im->shape[0];
    share s = {rows(im, from, PER_RANK), rows(ids, from, PER_RANK), rows(atts, from, PER_RANK)};
    vlt_tensor_free(im);
    vlt_tensor_free(ids);
    vlt_tensor_free(atts);
    return s;
}

static void share_free(share *s) {
    vlt_tensor_free(s->images);
    vlt_tensor_free(s->ids);
    vlt_tensor_free(s->atts);
}

static float loss_of(vlt_model *m, share *s, int rank, int step, bool gather, float weight) {
    vlt_model_batch b = {0};
    vlt_model_batch_set(&b, VLT_FIELD_IMAGES, s->images);
    vlt_model_batch_set(&b, VLT_FIELD_TEXT_IDS, s->ids);
    vlt_model_batch_set(&b, VLT_FIELD_TEXT_ATTS, s->atts);
    vlt_loss_opts o = vlt_loss_opts_default();
    vlt_loss_opts_set(&o, "step", (float)step);
    vlt_loss_opts_set(&o, "alpha", 0.4f);
    o.rank = rank;
    if (gather) {
        o.all_gather = dist_gather;
        o.all_gather_ctx = &g_d;
    }
    vlt_model_loss out;
    if (vlt_model_loss_forward(m, &b, &o, &out) != VLT_OK) fail_msg("%s", vlt_error_message());
    float v = vlt_tensor_item(out.loss, 0);
    if (vlt_backward(vlt_scale(out.loss, weight)) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_step_reset();
    return v;
}

static void sgd(vlt_model *m, float lr) {
    for (int i = 0; i < m->params->n; i++) {
        vlt_tensor *p = m->params->t[i];
        if (!p->grad) continue;
        for (int64_t j = 0; j < p->numel; j++) vlt_f32(p)[j] -= lr * vlt_f32(p->grad)[j];
    }
}

static vlt_tensor **with_grad(vlt_model *m, int *n) {
    vlt_tensor **g = malloc(sizeof *g * (size_t)m->params->n);
    *n = 0;
    for (int i = 0; i < m->params->n; i++)
        if (m->params->t[i]->grad) g[(*n)++] = m->params->t[i];
    return g;
}

static void test_ranks_equal_the_simulation(void **state) {
    (void)state;
    vlt_safetensors *io;
    assert_int_equal(vlt_safetensors_open(FIX "io.safetensors", &io), VLT_OK);
    vlt_model dist = make_model(), sim = make_model();
    int W = g_d.world, ng, ns;
    vlt_tensor **gd = with_grad(&dist, &ng), **gs = with_grad(&sim, &ns);
    share mine = share_of(io, g_d.rank);
    share *all = calloc((size_t)W, sizeof *all);
    for (int r = 0; r < W; r++) all[r] = share_of(io, r);
    int bad = 0;
    for (int step = 1; step <= 2; step++) {
        // the ranks: own share, gradients averaged
        vlt_zero_grad(gd, ng);
        float l = loss_of(&dist, &mine, g_d.rank, step, W > 1, 1.0f);
        assert_int_equal(vlt_dist_allreduce_grads(&g_d, gd, ng, 0), VLT_OK);
        sgd(&dist, 0.01f);
        vlt_model_after_step(&dist);
        // the simulation: every rank's share in rank order, each weighted 1/W
        vlt_zero_grad(gs, ns);
        float ls = 0;
        for (int r = 0; r < W; r++) {
            float v = loss_of(&sim, &all[r], r, step, false, 1.0f / W);
            if (r == g_d.rank) ls = v;
        }
        sgd(&sim, 0.01f);
        vlt_model_after_step(&sim);
        if (fabsf(l - ls) > 1e-6f * fabsf(ls)) {
            fprintf(stderr, "rank %d step %d: loss %.9g, simulation %.9g\n", g_d.rank, step, l, ls);
            bad++;
        }
    }
    // every tensor of the table: weights, momentum copies, queues, queue_ptr
    double worst = 0;
    const char *wn = "";
    for (int i = 0; i < dist.params->n; i++) {
        vlt_tensor *a = dist.params->t[i], *b = vlt_params_find(sim.params, a->name);
        if (a->dtype == VLT_I32) {
            bad += memcmp(a->data, b->data, sizeof(int32_t) * (size_t)a->numel) != 0;
            continue;
        }
        double e = rel_err(vlt_f32(a), vlt_f32(b), a->numel);
        if (e > worst) worst = e, wn = a->name;
    }
    int32_t ptr = vlt_i32(vlt_params_find(dist.params, "queue_ptr"))[0];
    if (g_d.rank == 0)
        print_message("%d rank(s): after 2 steps every tensor within %.2e of the simulation (%s); queue_ptr %d\n", W,
                      worst, wn, ptr);
    bad += worst > 1e-5;
    // queue_ptr: the fixture's 12, plus the global batch twice, modulo 16
    bad += ptr != (12 + 2 * W * PER_RANK) % 16;
    for (int r = 0; r < W; r++) share_free(&all[r]);
    free(all);
    share_free(&mine);
    free(gd);
    free(gs);
    vlt_model_free(&dist);
    vlt_model_free(&sim);
    vlt_safetensors_close(io);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

static int run_rank_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranks_equal_the_simulation),
    };
    return cmocka_run_group_tests_name("train_albef_dist", tests, NULL, NULL);
}

int main(int argc, char **argv) {
#ifdef VLT_MPI
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("VLT_DIST")) {
        char *av[] = {"mpirun", "-np", "2", "--oversubscribe", "--allow-run-as-root", argv[0], NULL};
        double secs = 0;
        int rc = run_child(av, NULL, NULL, 300, &secs);
        if (rc != 0) fprintf(stderr, "test_train_albef_dist: mpirun -np 2 exited with %d after %.1f s\n", rc, secs);
        return rc != 0;
    }
#endif
    vlt_status s = vlt_dist_init(&g_d, &argc, &argv);
    if (s != VLT_OK) {
        fprintf(stderr, "dist init: %s\n", vlt_error_message());
        return 1;
    }
    alarm(240);
    int failed = run_rank_quietly(run_rank_group, g_d.rank);
    vlt_tape_shutdown();
    vlt_dist_finalize(&g_d);
    return failed;
}
