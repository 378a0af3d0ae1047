// Training on the GPU (train.device cuda) end to end on synthetic shards, against the CPU:
// fp32 products follow the CPU run's losses; mixed precision (bf16) learns and evaluates
// (retrieval on the GPU); a run resumed from a checkpoint continues with the same losses; the
// NCCL path with one rank matches the plain run; CoCa is refused with a message. The GPU cases skip without a GPU (or
// without the CUDA backend) and say so.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "autograd/device.h"
#include "train/commands.h"
#include "train/trainer.h"
#include "tests/cuda_compare.h"
#include "tests/train_fixture.h"

static void base_config(vlt_run_config *c, const char *out, const char *device, const char *precision) {
    train_fixture_config(c, out);
    snprintf(c->device, sizeof c->device, "%s", device);
    snprintf(c->precision, sizeof c->precision, "%s", precision);
}

static const float *run(const char *out, const char *device, const char *precision, int steps, vlt_trainer **keep) {
    vlt_run_config c;
    base_config(&c, out, device, precision);
    c.steps = steps;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s: %s", out, vlt_error_message());
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s: %s", out, vlt_error_message());
    int64_t n;
    const float *l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, steps);
    *keep = t;
    return l;
}

// fp32 products on the GPU: the same run as the CPU's, loss for loss, up to summation order.
static void test_gpu_fp32_follows_cpu(void **state) {
    (void)state;
    NEED_GPU();
    vlt_trainer *tc, *tg;
    const float *lc = run("cpu", "cpu", "fp32", 12, &tc), *lg = run("gpu", "cuda", "fp32", 12, &tg);
    train_fixture_gpu_follows_cpu("tiny clip", lc, lg, 12);
    vlt_set_default_device(VLT_CPU);
    vlt_trainer_free(tc);
    vlt_trainer_free(tg);
}

// Mixed precision learns, and evaluation (retrieval, encoders on the GPU) sees it.
static void test_gpu_bf16_learns(void **state) {
    (void)state;
    NEED_GPU();
    vlt_trainer *t;
    const float *l = run("bf16", "cuda", "bf16", 120, &t);
    double first = 0, last = 0;
    for (int i = 0; i < 10; i++) { first += l[i] / 10; last += l[110 + i] / 10; }
    double i2t[3], t2i[3];
    int pairs;
    assert_int_equal(vlt_trainer_eval(t, i2t, t2i, &pairs), VLT_OK);
    print_message("tiny clip on the GPU (bf16), 120 steps x 32: loss %.3f -> %.3f; 500 held-out pairs: t2i R@1 %.1f%% "
                  "(chance 0.2%%), i2t R@1 %.1f%%\n", first, last, 100 * t2i[0], 100 * i2t[0]);
    assert_int_equal(pairs, 500);
    assert_true(last < 0.7 * first);
    assert_true(t2i[0] >= 20.0 / 500);
    vlt_set_default_device(VLT_CPU);
    vlt_trainer_free(t);
}

// A GPU run stopped after a checkpoint and resumed continues with the uninterrupted run's losses.
static void test_gpu_resume_continues(void **state) {
    (void)state;
    NEED_GPU();
    vlt_trainer *whole;
    const float *lw = run("gwhole", "cuda", "bf16", 16, &whole);
    vlt_run_config c;
    base_config(&c, "gparts", "cuda", "bf16");
    c.steps = 16;
    c.checkpoint_every = 7;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *a;
    assert_int_equal(vlt_trainer_create(&c, &o, &a), VLT_OK);
    assert_int_equal(vlt_trainer_run_steps(a, 9), VLT_OK);
    vlt_trainer_free(a);
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    vlt_trainer *b;
    if (vlt_trainer_create(&c, &r, &b) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_step(b), 7);
    assert_int_equal(vlt_trainer_run(b), VLT_OK);
    int64_t nb;
    const float *lb = vlt_trainer_losses(b, &nb);
    assert_int_equal(nb, 9);
    int same = 0;
    double worst = 0;
    for (int i = 0; i < 9; i++) {
        same += memcmp(&lb[i], &lw[7 + i], sizeof(float)) == 0;
        worst = fmax(worst, fabs((double)lb[i] - lw[7 + i]) / fabs(lw[7 + i]));
    }
    print_message("GPU resume at step 7: %d of 9 losses bit-identical to the uninterrupted run, worst relative "
                  "difference %.2g\n", same, worst);
    assert_true(worst <= 1e-5);
    vlt_set_default_device(VLT_CPU);
    vlt_trainer_free(b);
    vlt_trainer_free(whole);
}

// The NCCL path with one rank (VLT_DIST_NCCL=1: gradients averaged and features all-gathered by
// NCCL, the loss through the global-batch formula) computes what the plain GPU run computes.
static void test_gpu_nccl_one_rank_matches(void **state) {
    (void)state;
    NEED_GPU();
#ifndef VLT_HAVE_NCCL
    printf("skipped: built without NCCL\n");
    skip();
#endif
    vlt_trainer *plain, *viaccl;
    const float *lp = run("plain", "cuda", "fp32", 12, &plain);
    setenv("VLT_DIST_NCCL", "1", 1);
    const float *ln = run("nccl", "cuda", "fp32", 12, &viaccl);
    unsetenv("VLT_DIST_NCCL");
    double worst = 0;
    for (int i = 0; i < 12; i++) worst = fmax(worst, fabs((double)ln[i] - lp[i]) / fabs(lp[i]));
    print_message("NCCL, one rank: loss %.6f -> %.6f, plain GPU %.6f -> %.6f; worst relative difference %.2g\n", ln[0],
                  ln[11], lp[0], lp[11], worst);
    assert_true(worst <= 1e-5);
    vlt_trainer_free(viaccl);
    vlt_set_default_device(VLT_CPU);
    vlt_trainer_free(plain);
}

// What the GPU path does not cover yet is refused at creation, by name (with or without a GPU).
static void test_unsupported_gpu_runs_are_refused(void **state) {
    (void)state;
    vlt_run_config c;
    // (CoCa was refused here until its pad mask and generation ran on the device: issue 17)
    base_config(&c, "zero", "cuda", "bf16");
    c.zero = true;
    c.steps = 20;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t = NULL;
    assert_int_not_equal(vlt_trainer_create(&c, &o, &t), VLT_OK);
    assert_null(t);
    print_message("refused: %s\n", vlt_error_message());
    assert_non_null(strstr(vlt_error_message(), "cuda"));
    base_config(&c, "cpu-bf16", "cpu", "bf16");
    assert_int_not_equal(vlt_trainer_create(&c, &o, &t), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "train.precision bf16 needs train.device cuda"));
    // values the keys do not know are named
    base_config(&c, "tpu", "tpu", "fp32");
    assert_int_not_equal(vlt_trainer_create(&c, &o, &t), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "train.device 'tpu' is not cpu or cuda"));
    base_config(&c, "fp16", "cpu", "fp16");
    assert_int_not_equal(vlt_trainer_create(&c, &o, &t), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "train.precision 'fp16' is not fp32, tf32 or bf16"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsupported_gpu_runs_are_refused),
        cmocka_unit_test(test_gpu_fp32_follows_cpu),
        cmocka_unit_test(test_gpu_bf16_learns),
        cmocka_unit_test(test_gpu_resume_continues),
        cmocka_unit_test(test_gpu_nccl_one_rank_matches),
    };
    return cmocka_run_group_tests_name("train_cuda", tests, train_fixture_setup, train_fixture_teardown);
}
