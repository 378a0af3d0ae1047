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
#include <unistd.h>

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

// The gaps of issue 13 item 11: a directory as --config, a key or section given twice, negative
// grad_clip / val_samples (and their kin), and ~ in output.dir.
static void test_config_gaps(void **state) {
    (void)state;
    vlt_run_config c;
    vlt_run_config_default(&c);
    char dir[] = "/tmp/vlt_cfg_XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(vlt_run_config_load(dir, &c), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "is a directory, not a YAML file"));
    assert_non_null(strstr(vlt_error_message(), dir));
    rmdir(dir);
    // a pipe (process substitution) is read like a file
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char *piped = "optim:\n  lr: 2.5e-4\n";
    assert_int_equal(write(fds[1], piped, strlen(piped)), (ssize_t)strlen(piped));
    close(fds[1]);
    char dev[64];
    snprintf(dev, sizeof dev, "/dev/fd/%d", fds[0]);
    vlt_run_config_default(&c);
    assert_int_equal(vlt_run_config_load(dev, &c), VLT_OK);
    assert_true(c.lr == 2.5e-4);
    close(fds[0]);

    const char *dup = "optim:\n  lr: 1e-3\n  eps: 1e-8\n  lr: 5e-4\n";
    assert_int_equal(vlt_run_config_parse(dup, strlen(dup), "dup.yaml", &c), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "dup.yaml:4: key 'optim.lr' is given twice (first at line 2)"));
    const char *dup_section = "optim:\n  lr: 1e-3\ndata:\n  batch_size: 8\noptim:\n  eps: 1e-8\n";
    vlt_run_config_default(&c);
    assert_int_equal(vlt_run_config_parse(dup_section, strlen(dup_section), "s.yaml", &c), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "s.yaml:5: section 'optim' is given twice (first at line 1)"));
    const char *same_key_two_sections = "model:\n  seed: 1\ndata:\n  seed_x: 1\n";   // not a duplicate
    vlt_run_config_default(&c);
    assert_int_not_equal(vlt_run_config_parse(same_key_two_sections, strlen(same_key_two_sections), "k.yaml", &c), VLT_OK);
    assert_null(strstr(vlt_error_message(), "twice"));

    const struct { const char *set, *expect; } bad[] = {
        {"optim.grad_clip=-1", "optim.grad_clip must be >= 0"},
        {"data.val_samples=-1", "data.val_samples must be >= 0"},
        {"optim.weight_decay=-0.1", "optim.weight_decay must be >= 0"},
        {"optim.beta2=1", "optim.beta1 and optim.beta2 must be in [0, 1)"},
        {"optim.eps=0", "optim.eps must be > 0"},
        {"data.shuffle_buffer=-1", "data.shuffle_buffer and data.shuffle_initial must be >= 0"},
        {"loss.label_smoothing=1", "loss.label_smoothing must be in [0, 1)"},
        {"checkpoint.every=-5", "checkpoint.every and eval.every must be >= 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        vlt_run_config_default(&c);
        strcpy(c.train_shards, "x.tar");
        assert_int_equal(vlt_run_config_validate(&c), VLT_OK);
        assert_int_equal(vlt_run_config_set(&c, bad[i].set), VLT_OK);
        assert_int_equal(vlt_run_config_validate(&c), VLT_ERR_ARG);
        if (!strstr(vlt_error_message(), bad[i].expect)) fail_msg("%s: %s", bad[i].set, vlt_error_message());
    }

    // ~ in output.dir: a bare ~ (YAML's null, plain or quoted, or --set) is refused; ~/x is $HOME/x.
    const char *tilde[] = {"output:\n  dir: ~\n", "output:\n  dir: \"~\"\n", "output:\n  dir: null\n", "output:\n  dir:\n"};
    for (int i = 0; i < 4; i++) {
        vlt_run_config_default(&c);
        assert_int_equal(vlt_run_config_parse(tilde[i], strlen(tilde[i]), "t.yaml", &c), VLT_ERR_ARG);
        if (!strstr(vlt_error_message(), "t.yaml:2: output.dir")) fail_msg("%s: %s", tilde[i], vlt_error_message());
        assert_non_null(strstr(vlt_error_message(), "is not a run directory"));
    }
    vlt_run_config_default(&c);
    assert_int_equal(vlt_run_config_set(&c, "output.dir=~"), VLT_ERR_ARG);
    assert_int_equal(vlt_run_config_set(&c, "output.dir=~bob/runs"), VLT_ERR_ARG);
    const char *home_was = getenv("HOME");
    char saved_home[512] = "";
    if (home_was) snprintf(saved_home, sizeof saved_home, "%s", home_was);
    setenv("HOME", "/home/tester", 1);
    const char *home = "output:\n  dir: ~/runs/clip\nmodel:\n  init_from: ~/w.safetensors\n  name: ~\n";
    assert_int_equal(vlt_run_config_parse(home, strlen(home), "h.yaml", &c), VLT_OK);
    assert_string_equal(c.output_dir, "/home/tester/runs/clip");
    assert_string_equal(c.init_from, "/home/tester/w.safetensors");
    assert_string_equal(c.model_name, "");   // YAML null: no value (then refused where a name is needed)
    assert_int_equal(vlt_run_config_set(&c, "output.dir=~/r2"), VLT_OK);
    assert_string_equal(c.output_dir, "/home/tester/r2");
    unsetenv("HOME");
    assert_int_equal(vlt_run_config_set(&c, "output.dir=~/r3"), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "HOME is not set"));
    if (saved_home[0]) setenv("HOME", saved_home, 1);
    c.output_dir[0] = '\0';
    strcpy(c.train_shards, "x.tar");
    assert_int_equal(vlt_run_config_validate(&c), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "output.dir (the run directory) is empty"));
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
        cmocka_unit_test(test_config_gaps),
        cmocka_unit_test(test_model_diff),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests_name("train_config", tests, NULL, NULL);
}
