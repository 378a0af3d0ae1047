// Run configs (YAML, validation, --set, unknown keys with a suggestion, model diff for resume)
// and learning-rate schedules against their closed forms.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "train/run_config.h"
#include "train/schedule.h"

static const char *GOOD =
    "model:\n  name: tiny-clip\n  seed: 7\n"
    "data:\n  train: \"shards/train-{000000..000003}.tar\"\n  batch_size: 32\n  flip: true\n"
    "optim:\n  lr: 1.0e-3\n"
    "schedule:\n  type: const-cooldown\n  steps: 100\n  warmup: 10\n  cooldown: 20\n";

static void test_parse_and_set(void **state) {
    (void)state;
    vlt_run_config c;
    vlt_run_config_default(&c);
    assert_int_equal(vlt_run_config_parse(GOOD, strlen(GOOD), "good.yaml", &c), VLT_OK);
    assert_string_equal(c.model_name, "tiny-clip");
    assert_int_equal(c.seed, 7);
    assert_int_equal(c.batch_size, 32);
    assert_true(c.flip);
    assert_true(fabs(c.lr - 1e-3) < 1e-15);
    assert_string_equal(c.train_shards, "shards/train-{000000..000003}.tar");
    assert_true(fabs(c.beta2 - 0.98) < 1e-15);  // default kept
    assert_int_equal(vlt_run_config_validate(&c), VLT_OK);
    assert_int_equal(vlt_run_config_set(&c, "optim.lr=2e-4"), VLT_OK);
    assert_true(fabs(c.lr - 2e-4) < 1e-15);
    assert_int_not_equal(vlt_run_config_set(&c, "optim.learning_rate=2e-4"), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "unknown key 'optim.learning_rate'"));
    assert_int_not_equal(vlt_run_config_set(&c, "data.batch_size=many"), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "data.batch_size must be an integer, got 'many'"));
    // round trip through the written YAML
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vlt_run_config_write(&c, f);
    fclose(f);
    vlt_run_config d;
    vlt_run_config_default(&d);
    assert_int_equal(vlt_run_config_parse(buf, len, "written", &d), VLT_OK);
    assert_memory_equal(&c, &d, sizeof c);
    free(buf);
}

static void test_bad_configs(void **state) {
    (void)state;
    vlt_run_config c;
    vlt_run_config_default(&c);
    const char *typo = "optim:\n  lr: 1e-3\n  wieght_decay: 0.1\n";
    assert_int_not_equal(vlt_run_config_parse(typo, strlen(typo), "typo.yaml", &c), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "typo.yaml:3: unknown key 'optim.wieght_decay' (did you mean 'optim.weight_decay'?)"));
    const char *nested = "optim:\n  lr:\n    value: 1\n";
    assert_int_not_equal(vlt_run_config_parse(nested, strlen(nested), "n.yaml", &c), VLT_OK);
    const char *broken = "optim: [1, 2\n";
    assert_int_not_equal(vlt_run_config_parse(broken, strlen(broken), "b.yaml", &c), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "b.yaml"));
    assert_int_equal(vlt_run_config_load("/nonexistent/run.yaml", &c), VLT_ERR_IO);
    vlt_run_config_default(&c);
    assert_int_not_equal(vlt_run_config_validate(&c), VLT_OK);  // no data.train
    assert_non_null(strstr(vlt_error_message(), "data.train"));
    strcpy(c.train_shards, "x.tar");
    strcpy(c.schedule, "linear");
    assert_int_not_equal(vlt_run_config_validate(&c), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "'linear'"));
}

static void test_model_diff(void **state) {
    (void)state;
    vlt_run_config a, b;
    vlt_run_config_default(&a);
    b = a;
    char buf[512];
    assert_int_equal(vlt_run_config_model_diff(&a, &b, buf, sizeof buf), 0);
    b.lr = 1;  // not part of the model
    assert_int_equal(vlt_run_config_model_diff(&a, &b, buf, sizeof buf), 0);
    strcpy(b.model_name, "ViT-B-32");
    b.batch_size = 8;
    assert_int_equal(vlt_run_config_model_diff(&a, &b, buf, sizeof buf), 2);
    assert_non_null(strstr(buf, "model.name: \"tiny-clip\" -> \"ViT-B-32\""));
    assert_non_null(strstr(buf, "data.batch_size: 64 -> 8"));
}

static void test_schedules(void **state) {
    (void)state;
    vlt_schedule s = {VLT_SCHED_COSINE, 1.0, 0.0, 110, 10, 0};
    assert_true(fabs(vlt_schedule_lr(&s, 0) - 0.1) < 1e-12);   // warmup (step + 1) / warmup
    assert_true(fabs(vlt_schedule_lr(&s, 9) - 1.0) < 1e-12);
    assert_true(fabs(vlt_schedule_lr(&s, 10) - 1.0) < 1e-12);  // cosine starts at lr
    assert_true(fabs(vlt_schedule_lr(&s, 60) - 0.5) < 1e-12);  // halfway
    assert_true(fabs(vlt_schedule_lr(&s, 110)) < 1e-12);
    s.kind = VLT_SCHED_CONST;
    assert_true(fabs(vlt_schedule_lr(&s, 100) - 1.0) < 1e-12);
    vlt_schedule c = {VLT_SCHED_CONST_COOLDOWN, 1.0, 0.2, 100, 10, 20};
    assert_true(fabs(vlt_schedule_lr(&c, 79) - 1.0) < 1e-12);
    assert_true(fabs(vlt_schedule_lr(&c, 90) - 0.6) < 1e-12);
    assert_true(fabs(vlt_schedule_lr(&c, 100) - 0.2) < 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_set),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_model_diff),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests_name("train_config", tests, NULL, NULL);
}
