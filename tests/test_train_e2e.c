// End to end on synthetic shards: a tiny CLIP learns (loss falls, text->image recall@1 on 500
// held-out pairs at least 20x chance), and a run interrupted by a checkpoint and resumed gives
// the uninterrupted run's losses value for value.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/safetensors.h"
#include "layers/model.h"
#include "train/commands.h"
#include "train/trainer.h"
#include "tests/train_fixture.h"

static void base_config(vlt_run_config *c, const char *out) { train_fixture_config(c, out); }

static void test_tiny_clip_learns(void **state) {
    (void)state;
    vlt_run_config c;
    base_config(&c, "learn");
    c.steps = 120;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s", vlt_error_message());
    int64_t n;
    const float *loss = vlt_trainer_losses(t, &n);
    assert_int_equal(n, 120);
    double first = 0, last = 0;
    for (int i = 0; i < 10; i++) { first += loss[i] / 10; last += loss[n - 10 + i] / 10; }
    double i2t[3], t2i[3];
    int pairs;
    assert_int_equal(vlt_trainer_eval(t, i2t, t2i, &pairs), VLT_OK);
    print_message("tiny clip, 120 steps x 32: loss %.3f -> %.3f; 500 held-out pairs: t2i R@1 %.1f%% (chance 0.2%%), "
                  "i2t R@1 %.1f%%\n", first, last, 100 * t2i[0], 100 * i2t[0]);
    assert_int_equal(pairs, 500);
    assert_true(last < 0.7 * first);
    assert_true(t2i[0] >= 20.0 / 500);  // at least 20x chance
    vlt_trainer_free(t);
}

static void test_resume_continues_exactly(void **state) {
    (void)state;
    vlt_run_config c;
    base_config(&c, "whole");
    c.steps = 16;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *whole;
    if (vlt_trainer_create(&c, &o, &whole) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run(whole), VLT_OK);
    int64_t nw;
    const float *lw = vlt_trainer_losses(whole, &nw);
    assert_int_equal(nw, 16);

    // The same run, stopped after a checkpoint at step 7 (mid-epoch, shuffle buffer full) ...
    base_config(&c, "parts");
    c.steps = 16;
    c.checkpoint_every = 7;
    vlt_trainer *a;
    assert_int_equal(vlt_trainer_create(&c, &o, &a), VLT_OK);
    assert_int_equal(vlt_trainer_run_steps(a, 9), VLT_OK);  // steps 8, 9 are lost with the "crash"
    vlt_trainer_free(a);
    // ... and resumed from `latest` in a new trainer.
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    vlt_trainer *b;
    if (vlt_trainer_create(&c, &r, &b) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_step(b), 7);
    assert_int_equal(vlt_trainer_run(b), VLT_OK);
    int64_t nb;
    const float *lb = vlt_trainer_losses(b, &nb);
    assert_int_equal(nb, 9);
    for (int i = 0; i < 9; i++) {
        if (memcmp(&lb[i], &lw[7 + i], sizeof(float)))
            fail_msg("step %d: resumed loss %.9g, uninterrupted %.9g", 7 + i, lb[i], lw[7 + i]);
    }
    vlt_trainer_free(b);

    // A resume with another model config is refused, naming the keys.
    c.batch_size = 16;
    vlt_trainer *bad;
    assert_int_not_equal(vlt_trainer_create(&c, &r, &bad), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "data.batch_size: 32 -> 16"));
    vlt_trainer_free(whole);
}

static bool params_finite(const vlt_params *p) {
    for (int i = 0; i < p->n; i++)
        for (int64_t j = 0; j < p->t[i]->numel; j++)
            if (!isfinite(vlt_f32(p->t[i])[j])) return false;
    return true;
}

// A non-finite loss skips the step (the parameters stay finite); too many in a row stop the run
// with a message, after a checkpoint of the last good state.
static void test_nonfinite_steps_are_skipped_then_stop(void **state) {
    (void)state;
    vlt_run_config c;
    base_config(&c, "nan");
    c.steps = 8;
    c.warmup = 2;
    c.max_nonfinite = 3;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    setenv("VLT_TRAIN_NAN_STEPS", "2-3", 1);  // two bad steps: skipped, the run goes on
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s", vlt_error_message());
    int64_t n;
    const float *l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, 8);
    assert_true(isnan(l[2]) && isnan(l[3]) && isfinite(l[4]) && isfinite(l[7]));
    assert_int_equal(vlt_trainer_nonfinite(t), 2);
    assert_true(params_finite(vlt_trainer_params(t)));
    vlt_trainer_free(t);

    base_config(&c, "nan-stop");
    c.steps = 8;
    c.warmup = 2;
    c.max_nonfinite = 3;
    setenv("VLT_TRAIN_NAN_STEPS", "2-100", 1);  // from step 2 on: stop at the third in a row
    assert_int_equal(vlt_trainer_create(&c, &o, &t), VLT_OK);
    assert_int_equal(vlt_trainer_run(t), VLT_ERR_STATE);
    assert_non_null(strstr(vlt_error_message(), "3 non-finite steps in a row"));
    assert_true(params_finite(vlt_trainer_params(t)));
    vlt_trainer_free(t);
    unsetenv("VLT_TRAIN_NAN_STEPS");
    // The checkpoint of the last good state resumes.
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    assert_int_equal(vlt_trainer_create(&c, &r, &t), VLT_OK);
    assert_int_equal(vlt_trainer_step(t), 4);
    assert_true(params_finite(vlt_trainer_params(t)));
    vlt_trainer_free(t);
}

// Weights to start from that hold NaN are refused at start, naming a tensor; nothing is trained
// or checkpointed.
static void test_nonfinite_init_refused(void **state) {
    (void)state;
    vlt_model_cfg mc;
    vlt_model m;
    assert_int_equal(vlt_model_cfg_load("tiny-clip", &mc), VLT_OK);
    assert_int_equal(vlt_model_create(&m, &mc, 0), VLT_OK);
    for (int i = 0; i < m.params->n; i++)
        for (int64_t j = 0; j < m.params->t[i]->numel; j++) vlt_f32(m.params->t[i])[j] = NAN;
    char path[400];
    snprintf(path, sizeof path, "%s/all-nan.safetensors", g_train_dir);
    assert_int_equal(vlt_safetensors_save_params(path, m.params, VLT_ST_F32, NULL, 0), VLT_OK);
    vlt_model_free(&m);
    vlt_run_config c;
    base_config(&c, "nan-init");
    c.steps = 8;
    c.warmup = 2;
    snprintf(c.init_from, sizeof c.init_from, "%s", path);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    vlt_status s = vlt_trainer_create(&c, &o, &t);
    if (s != VLT_ERR_FORMAT) fail_msg("status %d: %s", s, vlt_error_message());
    assert_non_null(strstr(vlt_error_message(), path));
    if (!strstr(vlt_error_message(), "non-finite values")) fail_msg("%s", vlt_error_message());
    assert_non_null(strstr(vlt_error_message(), "tensor '"));
    char ck[600];
    snprintf(ck, sizeof ck, "%s/checkpoints", c.output_dir);
    struct stat st;
    assert_int_not_equal(stat(ck, &st), 0);
}

// A resumed run that only meets non-finite steps stops without writing anything: the checkpoint it
// resumed from is the last good state and stays `latest`.
static void test_nonfinite_stop_after_resume_keeps_checkpoint(void **state) {
    (void)state;
    vlt_run_config c;
    base_config(&c, "nan-resume");
    c.steps = 12;
    c.warmup = 2;
    c.checkpoint_every = 4;
    c.max_nonfinite = 2;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    assert_int_equal(vlt_trainer_create(&c, &o, &t), VLT_OK);
    assert_int_equal(vlt_trainer_run_steps(t, 4), VLT_OK);
    vlt_trainer_free(t);
    setenv("VLT_TRAIN_NAN_STEPS", "4-100", 1);
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    if (vlt_trainer_create(&c, &r, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run(t), VLT_ERR_STATE);
    unsetenv("VLT_TRAIN_NAN_STEPS");
    assert_non_null(strstr(vlt_error_message(), "2 non-finite steps in a row at step 5"));
    assert_non_null(strstr(vlt_error_message(), "the last good state is checkpoint step 4"));
    vlt_trainer_free(t);
    char p[600], target[64];
    snprintf(p, sizeof p, "%s/checkpoints/latest", c.output_dir);
    ssize_t n = readlink(p, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "step_00000004");
    snprintf(p, sizeof p, "%s/checkpoints/step_00000005", c.output_dir);
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_continues_exactly),
        cmocka_unit_test(test_tiny_clip_learns),
        cmocka_unit_test(test_nonfinite_steps_are_skipped_then_stop),
        cmocka_unit_test(test_nonfinite_init_refused),
        cmocka_unit_test(test_nonfinite_stop_after_resume_keeps_checkpoint),
    };
    return cmocka_run_group_tests_name("train_e2e", tests, train_fixture_setup, train_fixture_teardown);
}
