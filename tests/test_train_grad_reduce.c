// The gradient all-reduce in bf16 (`train.grad_reduce_dtype: bf16`, vlt_dist_reducer_new_dtype).
//
// Units, run by every rank of an `mpirun -np 2` job (and by one process without MPI): through the
// overlapped reducer (buckets started from the readiness reports, several buckets), each averaged
// gradient is exactly the bf16 sum of the ranks' bf16-rounded gradients widened to f32 and scaled
// by 1/world (2 ranks; more ranks: within bf16 rounding of the f32 average), it differs from the
// f32 average by no more than that rounding, and one process leaves the gradients as they are.
//
// End to end (one `mpirun -np 2` job, time-limited): 2 ranks x 16 with bf16 reduction give the
// losses of one process x 32 within bf16 rounding's effect (5e-3), and not the f32 run's bits.
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
#include "autograd/tape.h"
#include "tests/mpi_launch.h"
#include "train/trainer.h"

static vlt_dist g_d;

#define NP 5
static const int SIZES[NP] = {1, 700, 3001, 13, 450};

static float grad_value(int rank, int i, int64_t j) {
    return (float)(sin(0.37 * (double)j + i + 1.3 * rank) * (1 + i) * (rank ? 0.7 : 1.1) + 1e-3 * (double)j);
}

static void make_params(vlt_tensor **p) {
    for (int i = 0; i < NP; i++) {
        p[i] = vlt_tensor_new_param(1, VLT_SHAPE(SIZES[i]), "p");
        vlt_tensor_set_name(p[i], "p%d", i);
        for (int64_t j = 0; j < p[i]->numel; j++) vlt_f32(p[i]->grad)[j] = grad_value(g_d.rank, i, j);
    }
}

static void reduce(vlt_tensor **p, bool bf16, int *early) {
    vlt_dist_reducer *r = vlt_dist_reducer_new_dtype(&g_d, p, NP, 4000, bf16);   // 4000-byte buckets: several
    assert_non_null(r);
    for (int i = NP - 1; i >= 0; i--) vlt_dist_reducer_ready(r, i);   // backward's order
    assert_int_equal(vlt_dist_reducer_finish(r), VLT_OK);
    *early = vlt_dist_reducer_started_early(r);
    vlt_dist_reducer_free(r);
}

static void test_bf16_reduction(void **state) {
    (void)state;
    vlt_tensor *a[NP], *b[NP];
    make_params(a);
    make_params(b);
    int ea, eb, bad = 0;
    reduce(a, false, &ea);
    reduce(b, true, &eb);
    int W = g_d.world;
    float k = 1.0f / (float)W;
    double worst = 0;
    int64_t differ = 0, inexact = 0, total = 0;
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < a[i]->numel; j++) {
            float f = vlt_f32(a[i]->grad)[j], h = vlt_f32(b[i]->grad)[j];
            double mag = 0;
            float sum = 0;
            for (int r = 0; r < W; r++) {
                float g = grad_value(r, i, j);
                mag += fabs(g);
                sum = vlt_bf16_to_f32(vlt_f32_to_bf16(vlt_bf16_to_f32(vlt_f32_to_bf16(g)) + sum));
            }
            if (W == 1) sum = grad_value(0, i, j);   // nothing sent: untouched
            float want = W == 1 ? sum : sum * k;
            inexact += W <= 2 && memcmp(&want, &h, sizeof h) != 0;
            // bf16 rounding of every input and of every partial sum: at most W · 2^-8 of Σ|g| / W
            double err = fabs((double)h - f), bound = (double)W * ldexp(1, -8) * mag / W + 1e-30;
            worst = fmax(worst, err / bound);
            differ += h != f;
            total++;
        }
    bad += inexact > 0 || worst > 1.0;
    if (W > 1) bad += differ == 0 || eb < 1;   // bf16 did happen, started from the readiness reports
    else bad += differ != 0;
    if (g_d.rank == 0)
        print_message("bf16 gradient reduction, %d ranks: %lld values not bit-equal to the bf16 sum x 1/world; worst error "
                      "%.2f of the bf16 bound; %lld of %lld values differ from the f32 average; %d buckets started "
                      "early\n", W, (long long)inexact, worst, (long long)differ, (long long)total, eb);
    for (int i = 0; i < NP; i++) {
        vlt_tensor_free(a[i]);
        vlt_tensor_free(b[i]);
    }
    assert_int_equal(all_ranks_fail(&g_d, bad), 0);
}

static int run_rank_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_reduction),
    };
    return cmocka_run_group_tests_name("train_grad_reduce_ranks", tests, NULL, NULL);
}

// ---- end to end ---------------------------------------------------------------------------------
#define STEPS 6

static char g_dir[256];
static const char *g_self;

static void config(vlt_run_config *c, const char *dir, const char *run, int batch, int workers, bool bf16) {
    multi_rank_run_config(c, dir, run, batch, workers, STEPS, 100);
    snprintf(c->grad_reduce_dtype, sizeof c->grad_reduce_dtype, "%s", bf16 ? "bf16" : "f32");
}

static int train_run(const char *dir, const char *run, bool bf16) {
    vlt_run_config c;
    config(&c, dir, run, 16, 1, bf16);
    return mpi_train_run(&g_d, &c, dir, run, NULL, 0, run);
}

static int worker(const char *dir) {
    int rc = train_run(dir, "bf16", true);
    if (!rc) rc = train_run(dir, "f32", false);
    return rc;
}

static int make_data(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-grad-reduce-XXXXXX");
    return make_synth_train_dir(g_dir, 400);
}

static int remove_data(void **state) {
    (void)state;
    return remove_dir(g_dir);
}

static void test_bf16_two_ranks_near_one_process(void **state) {
    (void)state;
    SKIP_WITHOUT_MPI();
    vlt_run_config c;
    config(&c, g_dir, "r1", 32, 2, false);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    int64_t n;
    const float *ref = vlt_trainer_losses(t, &n);
    assert_int_equal(n, STEPS);
    double secs = 0;
    int rc = run_worker_job(g_self, g_dir, 300, &secs);
    print_message("mpirun -np 2 (bf16 and f32 reduction runs): exit %d after %.1f s\n", rc, secs);
    assert_int_equal(rc, 0);
    float lb[STEPS], lf[STEPS];
    assert_int_equal(mpi_read_losses(g_dir, "bf16", lb, STEPS), STEPS);
    assert_int_equal(mpi_read_losses(g_dir, "f32", lf, STEPS), STEPS);
    double wb = worst_rel(lb, ref, STEPS, 0), wf = worst_rel(lf, ref, STEPS, 0);
    print_message("CLIP, 2 ranks x 16 vs 1 x 32, %d steps: bf16 reduction worst relative difference %.1e, f32 %.1e\n",
                  STEPS, wb, wf);
    assert_true(wb < 5e-3);
    assert_true(wf < 1e-5);
    assert_true(memcmp(lb + 1, lf + 1, sizeof(float) * (STEPS - 1)) != 0);   // the bf16 path did run
    vlt_trainer_free(t);
}

static int run_e2e_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_two_ranks_near_one_process),
    };
    return cmocka_run_group_tests_name("train_grad_reduce_e2e", tests, make_data, remove_data);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--worker")) return run_worker_main(&g_d, worker, argv[2]);
    g_self = argv[0];
    return mpi_test_main(argc, argv, "test_train_grad_reduce", &g_d, run_e2e_group, run_rank_group);
}
