// Data parallel (train/dist.h): N ranks × batch B equal one process with batch N·B (CLIP and
// SigLIP loss, every parameter gradient, within 1e-5), the all-gather op's gradient across ranks
// (closed form and finite differences), the bucketed gradient average and the overlapped
// reducer, the parameter broadcast, shape disagreements that fail on every rank instead of
// hanging, and the fault path: a rank killed mid-collective or a hung rank ends the whole job
// (mpirun exits non-zero) within 60 s.
//
// How it runs (MPI build): `make test` starts this binary without mpirun. It then (1) runs the
// fault tests, each an `mpirun -np 2` child of this binary in a fault mode, under a timeout, and
// (2) runs itself under `mpirun -np N --oversubscribe --allow-run-as-root` (N = $VLT_TEST_RANKS,
// default 2) with a timeout, passing its exit status on. Under mpirun every rank runs the same
// cmocka group, because the tests are collective; rank 1.. send stdout to /dev/null so the test
// runner counts one "[  PASSED  ]" line per group, while their stderr (cmocka's failure
// messages) stays visible. Each test finishes its collectives before asserting: local failures
// are summed over ranks first, so every rank fails the same assertion and none is left waiting.
// Without MPI (make MPI=0) or with VLT_DIST=off, the group runs once with world size 1.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "autograd/ops.h"
#include "autograd/optim.h"
#include "autograd/rng.h"
#include "layers/clip.h"
#include "layers/transformer.h"
#include "train/dist.h"
#include "tests/mpi_launch.h"

static vlt_dist g_d;

// ---- world ------------------------------------------------------------------------------------
static void test_world(void **state) {
    (void)state;
    int W = g_d.world, bad = 0;
    const char *env = getenv("OMPI_COMM_WORLD_SIZE");
    int want = env && g_d.backend == VLT_DIST_MPI ? atoi(env) : 1;
    bad += W != want;
    bad += g_d.rank < 0 || g_d.rank >= W;
    bad += g_d.local_rank < 0 || g_d.local_rank >= g_d.local_world || g_d.local_world > W;
    double x[2] = {g_d.rank, 1.0};
    vlt_dist_sum(&g_d, x, 2);
    bad += x[0] != W * (W - 1) / 2.0 || x[1] != W;
    bad += vlt_dist_mean(&g_d, g_d.rank) != (W - 1) / 2.0;
    long long lo, hi;
    vlt_dist_minmax(&g_d, 10 + g_d.rank, &lo, &hi);
    bad += lo != 10 || hi != 10 + W - 1;
    assert_int_equal(vlt_dist_barrier(&g_d), VLT_OK);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

static void test_allgather_text(void **state) {
    (void)state;
    char mine[64], **all = NULL;
    int bad = 0;
    snprintf(mine, sizeof mine, g_d.rank == 1 ? "" : "{\"rank\": %d, \"pad\": \"%0*d\"}", g_d.rank, 3 * g_d.rank + 1, 0);
    assert_int_equal(vlt_dist_allgather_text(&g_d, mine, &all), VLT_OK);
    for (int r = 0; r < g_d.world; r++) {
        char want[64];
        snprintf(want, sizeof want, r == 1 ? "" : "{\"rank\": %d, \"pad\": \"%0*d\"}", r, 3 * r + 1, 0);
        bad += strcmp(all[r], want) != 0;
    }
    vlt_dist_free_text(all, g_d.world);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

// ---- gradient all-reduce --------------------------------------------------------------------
static float grad_value(int rank, int i, int64_t j) { return (float)((rank + 1) * 0.25 + i * 0.5 - 0.001 * (double)j); }

#define NP 6
static void make_params(vlt_tensor **p) {
    const int sizes[NP] = {1, 7, 1000, 3001, 250, 13};
    for (int i = 0; i < NP; i++) {
        p[i] = i == 0 ? vlt_tensor_new_param(0, NULL, "scalar") : vlt_tensor_new_param(1, VLT_SHAPE(sizes[i]), "p");
        for (int64_t j = 0; j < p[i]->numel; j++) vlt_f32(p[i]->grad)[j] = grad_value(g_d.rank, i, j);
    }
    p[4]->requires_grad = false;   // frozen: left alone
}

static int check_average(vlt_tensor **p) {
    int bad = 0, W = g_d.world;
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < p[i]->numel; j++) {
            double want = 0;
            for (int r = 0; r < W; r++) want += grad_value(r, i, j);
            want /= W;
            if (i == 4) want = grad_value(g_d.rank, i, j);
            bad += fabs(vlt_f32(p[i]->grad)[j] - want) > 1e-6 * (1 + fabs(want));
        }
    return bad;
}

static void test_allreduce_grads(void **state) {
    (void)state;
    vlt_tensor *a[NP], *b[NP];
    make_params(a);
    make_params(b);
    int bad = 0;
    // 1000-byte buckets (250 floats): the 3001-value gradient spans 13 of them.
    assert_int_equal(vlt_dist_allreduce_grads(&g_d, a, NP, 1000), VLT_OK);
    bad += check_average(a);
    // The overlapped reducer, parameters reported in backward order, twice (state resets).
    vlt_dist_reducer *r = vlt_dist_reducer_new(&g_d, b, NP, 1000);
    assert_non_null(r);
    bad += vlt_dist_reducer_buckets(r) != (1 + 7 + 1000 + 3001 + 13 + 249) / 250;
    for (int i = NP - 1; i >= 0; i--) vlt_dist_reducer_ready(r, i);
    assert_int_equal(vlt_dist_reducer_finish(r), VLT_OK);
    for (int i = 0; i < NP; i++)
        bad += memcmp(a[i]->grad->data, b[i]->grad->data, sizeof(float) * (size_t)a[i]->numel) != 0;
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < b[i]->numel; j++) vlt_f32(b[i]->grad)[j] = grad_value(g_d.rank, i, j);
    for (int i = 0; i < NP; i += 2) vlt_dist_reducer_ready(r, i);   // some unreported: finish starts them
    assert_int_equal(vlt_dist_reducer_finish(r), VLT_OK);
    bad += check_average(b);
    vlt_dist_reducer_free(r);
    // Default bucket size: one bucket.
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < b[i]->numel; j++) vlt_f32(b[i]->grad)[j] = grad_value(g_d.rank, i, j);
    assert_int_equal(vlt_dist_allreduce_grads(&g_d, b, NP, 0), VLT_OK);
    bad += check_average(b);
    for (int i = 0; i < NP; i++) {
        vlt_tensor_free(a[i]);
        vlt_tensor_free(b[i]);
    }
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

// ---- all-gather op ----------------------------------------------------------------------------
#define GB 3
#define GE 5
// Rank r's input and its loss weights (any rank can make any rank's).
static void fill_x(float *x, int r) { vlt_rng_fill_normal(x, GB * GE, 0, 1, 11, VLT_RNG_TEST, (uint64_t)r * 1000); }
static void fill_w(float *w, int r, int W) {
    vlt_rng_fill_normal(w, (size_t)W * GB * GE, 0, 1, 12, VLT_RNG_TEST, (uint64_t)r * 100000);
}

// L_r = Σ w_r ⊙ g ⊙ g over the gathered g; the global loss is Σ_r L_r.
static vlt_tensor *gather_loss(vlt_tensor *x, vlt_tensor *w) {
    vlt_tensor *g = vlt_dist_all_gather(&g_d, x);
    return vlt_sum_all(vlt_mul(vlt_mul(g, g), w));
}

static void test_all_gather_grad(void **state) {
    (void)state;
    int W = g_d.world, R = g_d.rank, bad = 0;
    vlt_tensor *x = vlt_tensor_new_param(2, VLT_SHAPE(GB, GE), "x");
    vlt_tensor *w = vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(W * GB, GE), "w");
    fill_x(vlt_f32(x), R);
    fill_w(vlt_f32(w), R, W);
    vlt_step_reset();
    vlt_tensor *g = vlt_dist_all_gather(&g_d, x);
    assert_non_null(g);
    bad += g->shape[0] != W * GB || g->shape[1] != GE;
    float xr[GB * GE], wr[64 * GB * GE];
    for (int r = 0; r < W; r++) {   // rank r's rows are rank r's input
        fill_x(xr, r);
        bad += memcmp(vlt_f32(g) + r * GB * GE, xr, sizeof xr) != 0;
    }
    vlt_tensor *loss = vlt_sum_all(vlt_mul(vlt_mul(g, g), w));
    assert_int_equal(vlt_backward(loss), VLT_OK);
    // Closed form: dΣL/dx_R = Σ_r 2 w_r[rows of R] ⊙ x_R.
    double worst = 0;
    for (int k = 0; k < GB * GE; k++) {
        double want = 0;
        for (int r = 0; r < W; r++) {
            fill_w(wr, r, W);
            want += 2.0 * wr[R * GB * GE + k] * vlt_f32(x)[k];
        }
        double e = fabs(vlt_f32(x->grad)[k] - want) / (1 + fabs(want));
        worst = e > worst ? e : worst;
    }
    bad += worst > 1e-5;
    // Finite differences of the global loss, one element of each rank's input in turn.
    const float h = 1e-2f;
    double fd_worst = 0;
    vlt_no_grad_enter();
    for (int q = 0; q < W; q++)
        for (int k = 0; k < GB * GE; k += 4) {
            double L[2];
            for (int s = 0; s < 2; s++) {
                float keep = vlt_f32(x)[k];
                if (R == q) vlt_f32(x)[k] = keep + (s ? -h : h);
                vlt_step_reset();
                double l = vlt_f32(gather_loss(x, w))[0];
                vlt_dist_sum(&g_d, &l, 1);
                L[s] = l;
                vlt_f32(x)[k] = keep;
            }
            if (R == q) {
                double fd = (L[0] - L[1]) / (2 * h), an = vlt_f32(x->grad)[k];
                double e = fabs(fd - an) / (1 + fabs(an));
                fd_worst = e > fd_worst ? e : fd_worst;
            }
        }
    vlt_no_grad_exit();
    bad += fd_worst > 2e-3;
    if (R == 0) print_message("all-gather grad: closed form %.2g, finite differences %.2g (rank 0)\n", worst, fd_worst);
    vlt_step_reset();
    vlt_tensor_free(x);
    vlt_tensor_free(w);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

// A rank whose input has another shape: every rank gets NULL and VLT_ERR_SHAPE, none hangs.
static void test_all_gather_shape_mismatch(void **state) {
    (void)state;
    int B = g_d.world > 1 && g_d.rank == 1 ? 4 : 3, bad = 0;
    vlt_tensor *x = vlt_tensor_new_param(2, VLT_SHAPE(B, 2), "x");
    vlt_step_reset();
    vlt_tensor *g = vlt_dist_all_gather(&g_d, x);
    if (g_d.world > 1) bad += g != NULL || vlt_error_code() != VLT_ERR_SHAPE;
    else bad += g != x;
    vlt_error_clear();
    bad += vlt_dist_all_gather(&g_d, NULL) != NULL;   // a failed input on every rank
    vlt_step_reset();
    vlt_tensor_free(x);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

// ---- model: broadcast and equivalence -------------------------------------------------------
static long long params_hash(const vlt_params *p) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < p->n; i++) {
        const unsigned char *b = p->t[i]->data;
        for (int64_t j = 0; j < p->t[i]->numel * 4; j++) h = (h ^ b[j]) * 1099511628211ull;
    }
    return (long long)(h >> 2);
}

// Backward with the tape's gradient-ready hook driving the reducer (what the trainer does with
// several CPU ranks): the average equals vlt_dist_allreduce_grads's bit for bit, and with several
// buckets some of them start before backward ends (the overlap).
typedef struct {
    vlt_dist_reducer *r;
    vlt_tensor **p;
    int n;
} overlap_ctx;

static void overlap_ready(vlt_tensor *t, void *ctx) {
    overlap_ctx *o = ctx;
    for (int i = 0; i < o->n; i++)
        if (o->p[i] == t) vlt_dist_reducer_ready(o->r, i);
}

static void resblock_backward(vlt_resblock *blk, vlt_tensor **params, int np, vlt_tensor *x) {
    vlt_zero_grad(params, np);
    assert_int_equal(vlt_backward(vlt_mean_all(vlt_resblock_forward(blk, x, false, NULL))), VLT_OK);
}

static void test_overlapped_backward(void **state) {
    (void)state;
    vlt_params table;
    vlt_params_init(&table);
    vlt_resblock blk;
    assert_int_equal(vlt_resblock_init(&blk, &table, "blk", 32, 2, 64, VLT_ACT_GELU, 1, VLT_INIT_SCALED_NORMAL, 5), VLT_OK);
    vlt_tensor *p[VLT_RESBLOCK_NPARAMS];
    vlt_resblock_params(&blk, p);
    int np = VLT_RESBLOCK_NPARAMS;
    vlt_tensor *x = vlt_tensor_new(VLT_F32, VLT_CPU, 3, VLT_SHAPE(3, 5, 32), "x");
    vlt_rng_fill_normal(vlt_f32(x), (size_t)x->numel, 0, 1, 77, (uint64_t)g_d.rank, 0);  // each rank its own data
    // reference: backward, then the plain bucketed average (1000-byte buckets: several)
    resblock_backward(&blk, p, np, x);
    assert_int_equal(vlt_dist_allreduce_grads(&g_d, p, np, 1000), VLT_OK);
    float *want[VLT_RESBLOCK_NPARAMS];
    for (int i = 0; i < np; i++) {
        want[i] = malloc(sizeof(float) * (size_t)p[i]->numel);
        memcpy(want[i], p[i]->grad->data, sizeof(float) * (size_t)p[i]->numel);
    }
    vlt_step_reset();
    // overlapped: the hook reports each parameter as backward finishes it
    overlap_ctx o = {vlt_dist_reducer_new(&g_d, p, np, 1000), p, np};
    assert_non_null(o.r);
    vlt_tape_set_grad_ready(overlap_ready, &o);
    resblock_backward(&blk, p, np, x);
    vlt_tape_set_grad_ready(NULL, NULL);
    assert_int_equal(vlt_dist_reducer_finish(o.r), VLT_OK);
    int bad = 0;
    for (int i = 0; i < np; i++) bad += memcmp(want[i], p[i]->grad->data, sizeof(float) * (size_t)p[i]->numel) != 0;
    int early = vlt_dist_reducer_started_early(o.r), buckets = vlt_dist_reducer_buckets(o.r);
    if (g_d.world > 1) bad += early < 1;
    if (g_d.rank == 0)
        print_message("overlapped backward: %d of %d buckets started before backward ended (world %d)\n", early, buckets,
                      g_d.world);
    vlt_dist_reducer_free(o.r);
    vlt_step_reset();
    for (int i = 0; i < np; i++) free(want[i]);
    vlt_tensor_free(x);
    vlt_params_free(&table);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

static void test_broadcast_params(void **state) {
    (void)state;
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load("tiny-clip", &cfg), VLT_OK);
    vlt_clip m;
    assert_int_equal(vlt_clip_init(&m, &cfg, 100 + (uint64_t)g_d.rank), VLT_OK);   // different on each rank
    long long lo, hi;
    vlt_dist_minmax(&g_d, params_hash(&m.params), &lo, &hi);
    int bad = g_d.world > 1 && lo == hi;
    assert_int_equal(vlt_dist_broadcast_params(&g_d, &m.params), VLT_OK);
    vlt_dist_minmax(&g_d, params_hash(&m.params), &lo, &hi);
    bad += lo != hi;
    // A rank with another table: refused on every rank.
    if (g_d.rank == g_d.world - 1) vlt_params_new(&m.params, "extra", 1, VLT_SHAPE(3));
    vlt_status s = vlt_dist_broadcast_params(&g_d, &m.params);
    bad += g_d.world > 1 ? s != VLT_ERR_SHAPE : s != VLT_OK;
    vlt_clip_free(&m);
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

#define BL 4   // per-rank batch

static void make_batch(const vlt_model_cfg *cfg, int N, vlt_tensor **images, vlt_tensor **ids) {
    int S = cfg->vision.image_size, T = cfg->text.context_length;
    *images = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(N, 3, S, S), "images");
    *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(N, T), "ids");
    vlt_rng_fill_normal(vlt_f32(*images), (size_t)(*images)->numel, 0, 1, 5, VLT_RNG_TEST, 0);
    for (int n = 0; n < N; n++) {
        int32_t *row = vlt_i32(*ids) + n * T;
        int eot = 2 + (int)vlt_rng_below(5, VLT_RNG_TEST, 1000000 + n, (uint64_t)(T - 2));
        row[0] = 49406;
        for (int t = 1; t < eot; t++) row[t] = 1 + (int)vlt_rng_below(5, VLT_RNG_TEST, (uint64_t)(n * T + t), 49000);
        row[eot] = 49407;
    }
}

// Rows [r·BL, (r+1)·BL) of t as a new persistent tensor.
static vlt_tensor *rows(const vlt_tensor *t, int r) {
    int shape[VLT_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = BL;
    vlt_tensor *o = vlt_tensor_new(t->dtype, VLT_CPU, t->ndim, shape, "local");
    size_t row = (size_t)(t->numel / t->shape[0]) * vlt_dtype_size(t->dtype);
    memcpy(o->data, (char *)t->data + (size_t)r * BL * row, BL * row);
    return o;
}

// One step both ways; returns the local failure count.
static int equivalence(bool siglip) {
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load("tiny-clip", &cfg) != VLT_OK) return 1;
    if (siglip) {
        cfg.has_logit_bias = true;
        cfg.init_logit_bias = -10.0f;
        cfg.init_logit_scale = logf(10.0f);
    }
    vlt_clip m;
    if (vlt_clip_init(&m, &cfg, 7) != VLT_OK) return 1;
    int W = g_d.world, P = m.params.n, bad = 0;
    vlt_tensor *images, *ids;
    make_batch(&cfg, W * BL, &images, &ids);
    // Reference: one process, the whole batch.
    vlt_zero_grad(m.params.t, P);
    vlt_step_reset();
    vlt_clip_output out;
    bad += vlt_clip_forward(&m, images, ids, &out) != VLT_OK;
    double ref_loss = bad ? 0 : vlt_f32(out.loss)[0];
    bad += bad || vlt_backward(out.loss) != VLT_OK;
    float **ref = calloc((size_t)P, sizeof *ref);
    for (int i = 0; i < P; i++) {
        ref[i] = malloc(sizeof(float) * (size_t)m.params.t[i]->numel);
        memcpy(ref[i], m.params.t[i]->grad->data, sizeof(float) * (size_t)m.params.t[i]->numel);
    }
    // Data parallel: this rank's rows, the global-batch loss, the gradient average.
    vlt_zero_grad(m.params.t, P);
    vlt_step_reset();
    vlt_tensor *im = rows(images, g_d.rank), *tx = rows(ids, g_d.rank);
    vlt_tensor *fi = vlt_clip_encode_image(&m, im, true), *ft = vlt_clip_encode_text(&m, tx, true);
    vlt_tensor *logits = NULL;
    vlt_tensor *loss = vlt_dist_clip_loss(&g_d, fi, ft, m.logit_scale, m.logit_bias, &logits);
    if (!loss) {
        fprintf(stderr, "rank %d: dist loss: %s\n", g_d.rank, vlt_error_message());
        return bad + 1;   // every rank fails the same way here
    }
    bad += logits->shape[0] != BL || logits->shape[1] != W * BL;
    double dist_loss = vlt_dist_mean(&g_d, vlt_f32(loss)[0]);
    bad += vlt_backward(loss) != VLT_OK;
    bad += vlt_dist_allreduce_grads(&g_d, m.params.t, P, 64 << 10) != VLT_OK;
    vlt_step_reset();
    double loss_err = fabs(dist_loss - ref_loss) / fabs(ref_loss), worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < P; i++) {
        const float *a = vlt_f32(m.params.t[i]->grad), *b = ref[i];
        double diff = 0, scale = 0;
        for (int64_t j = 0; j < m.params.t[i]->numel; j++) {
            diff = fmax(diff, fabs((double)a[j] - b[j]));
            scale = fmax(scale, fabs((double)b[j]));
        }
        double e = scale > 0 ? diff / scale : diff;
        if (e > worst) { worst = e; worst_name = m.params.t[i]->name; }
        free(ref[i]);
    }
    free(ref);
    bad += loss_err > 1e-5 || worst > 1e-5 || !(ref_loss > 0);
    if (g_d.rank == 0 || bad)
        print_message("%s, %d rank(s) x %d vs 1 x %d: loss %.7f vs %.7f (rel %.2g); worst gradient rel %.2g (%s)\n",
                      siglip ? "SigLIP" : "CLIP", W, BL, W * BL, dist_loss, ref_loss, loss_err, worst, worst_name);
    vlt_tensor_free(im);
    vlt_tensor_free(tx);
    vlt_tensor_free(images);
    vlt_tensor_free(ids);
    vlt_clip_free(&m);
    return bad;
}

static void test_clip_equivalence(void **state) {
    (void)state;
    assert_int_equal(all_ranks_fail(&g_d, equivalence(false)), 0);
}

static void test_siglip_equivalence(void **state) {
    (void)state;
    assert_int_equal(all_ranks_fail(&g_d, equivalence(true)), 0);
}

static int run_rank_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_world),
        cmocka_unit_test(test_allgather_text),
        cmocka_unit_test(test_allreduce_grads),
        cmocka_unit_test(test_all_gather_grad),
        cmocka_unit_test(test_all_gather_shape_mismatch),
        cmocka_unit_test(test_overlapped_backward),
        cmocka_unit_test(test_broadcast_params),
        cmocka_unit_test(test_clip_equivalence),
        cmocka_unit_test(test_siglip_equivalence),
    };
    return cmocka_run_group_tests_name("train_dist", tests, NULL, NULL);
}

#ifdef VLT_MPI
// ---- launcher side: children under mpirun, with timeouts ------------------------------------
static const char *g_self;

static int mpirun_self(int np, const char *const *env, const char *log, double limit_s, double *secs) {
    char n[16];
    snprintf(n, sizeof n, "%d", np);
    char *argv[] = {"mpirun", "-np", n, "--oversubscribe", "--allow-run-as-root", (char *)g_self, NULL};
    return run_child(argv, env, log, limit_s, secs);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

// A 2-rank job in a fault mode: must end non-zero within 60 s. Returns the job's output.
static char *fault_job(const char *mode, int *rc, double *secs) {
    char log[] = "/tmp/vlt-dist-fault-XXXXXX";
    int fd = mkstemp(log);
    if (fd >= 0) close(fd);
    char m[64];
    snprintf(m, sizeof m, "VLT_DIST_TEST_FAULT=%s", mode);
    const char *env[] = {m, "VLT_DIST_TIMEOUT=3", NULL};
    *rc = mpirun_self(2, env, log, 60, secs);
    char *out = slurp(log);
    unlink(log);
    return out;
}

static void test_fault_rank_killed(void **state) {
    (void)state;
    int rc;
    double secs;
    char *out = fault_job("kill", &rc, &secs);
    print_message("rank 1 killed mid all-reduce: mpirun exit %d after %.1f s\n", rc, secs);
    if (rc == 0 || rc == -1 || strstr(out, "FAULT-JOB-COMPLETED")) fprintf(stderr, "%s", out);
    assert_int_not_equal(rc, -1);   // -1: still running after 60 s
    assert_int_not_equal(rc, 0);
    assert_true(secs < 60);
    assert_null(strstr(out, "FAULT-JOB-COMPLETED"));
    assert_non_null(strstr(out, "FAULT-JOB-STARTED"));   // the job ran before the kill
    free(out);
}

static void test_fault_rank_hangs(void **state) {
    (void)state;
    int rc;
    double secs;
    char *out = fault_job("hang", &rc, &secs);
    print_message("rank 1 hung: mpirun exit %d after %.1f s\n", rc, secs);
    if (rc == 0 || rc == -1 || !strstr(out, "did not finish within")) fprintf(stderr, "%s", out);
    assert_int_not_equal(rc, -1);
    assert_int_not_equal(rc, 0);
    assert_true(secs < 60);
    assert_non_null(strstr(out, "did not finish within 3 s"));   // rank 0's timeout message
    free(out);
}

// The body of a fault job: ranks all-reduce in a loop; rank 1 dies (SIGKILL) or stops
// answering at iteration 20. Completing the loop is the failure the test looks for.
static int fault_mode(const char *mode) {
    float x[4096] = {0};
    if (g_d.rank == 0) printf("FAULT-JOB-STARTED\n");
    fflush(stdout);
    for (int it = 0; it < 2000; it++) {
        if (g_d.rank == 1 && it == 20) {
            if (!strcmp(mode, "kill")) raise(SIGKILL);
            sleep(120);   // hung: no more collectives
        }
        vlt_tensor *p = vlt_tensor_new_param(1, VLT_SHAPE(4096), "g");
        memcpy(p->grad->data, x, sizeof x);
        vlt_dist_allreduce_grads(&g_d, &p, 1, 0);
        vlt_tensor_free(p);
    }
    printf("FAULT-JOB-COMPLETED\n");
    return 0;
}
#endif

int main(int argc, char **argv) {
#ifdef VLT_MPI
    g_self = argv[0];
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("VLT_DIST")) {
        // Launcher: the fault jobs, then this binary under mpirun.
        const struct CMUnitTest faults[] = {
            cmocka_unit_test(test_fault_rank_killed),
            cmocka_unit_test(test_fault_rank_hangs),
        };
        int failed = cmocka_run_group_tests_name("train_dist_faults", faults, NULL, NULL);
        const char *np = getenv("VLT_TEST_RANKS");
        int n = np ? atoi(np) : 2;
        double secs;
        int rc = mpirun_self(n > 0 ? n : 2, NULL, NULL, 300, &secs);
        if (rc != 0) fprintf(stderr, "test_train_dist: mpirun -np %d exited with %d after %.1f s\n", n, rc, secs);
        return failed || rc != 0;
    }
#endif
    vlt_status s = vlt_dist_init(&g_d, &argc, &argv);
    if (s != VLT_OK) {
        fprintf(stderr, "dist init: %s\n", vlt_error_message());
        return 1;
    }
    alarm(240);   // a watchdog: a hung rank dies, and mpirun then ends the job
    int failed;
#ifdef VLT_MPI
    const char *fault = getenv("VLT_DIST_TEST_FAULT");
    if (fault) {
        failed = fault_mode(fault);
        vlt_dist_finalize(&g_d);
        return failed;
    }
#endif
    failed = run_rank_quietly(run_rank_group, g_d.rank);
    vlt_tape_shutdown();
    vlt_dist_finalize(&g_d);
    return failed;
}
