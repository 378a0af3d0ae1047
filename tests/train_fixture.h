// train_fixture.h — what the end-to-end training suites share: synthetic train / held-out shards
// in a temporary directory (cmocka group setup and teardown) and a small tiny-CLIP run config
// over them.
#ifndef VLT_TESTS_TRAIN_FIXTURE_H
#define VLT_TESTS_TRAIN_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "train/commands.h"
#include "train/run_config.h"

static char g_train_dir[256];

// 2,000 training pairs in 8 shards and 500 held-out pairs in 2 (32 px, seed 3).
static int train_fixture_setup(void **state) {
    (void)state;
    snprintf(g_train_dir, sizeof g_train_dir, "/tmp/vlt-e2e-XXXXXX");
    if (!mkdtemp(g_train_dir)) return -1;
    char train[300], val[300];
    snprintf(train, sizeof train, "%s/train", g_train_dir);
    snprintf(val, sizeof val, "%s/val", g_train_dir);
    char *a[] = {"synth", "--out", train, "--samples", "2000", "--shard-size", "250", "--image-size", "32", "--seed", "3", NULL};
    char *b[] = {"synth", "--out", val, "--samples", "500", "--shard-size", "250", "--image-size", "32", "--seed", "3",
                 "--first-index", "1000000", "--prefix", "val-", NULL};
    if (vlt_cmd_synth(11, a) != 0 || vlt_cmd_synth(15, b) != 0) return -1;
    return 0;
}

static int train_fixture_teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_train_dir);
    return system(cmd) == 0 ? 0 : -1;
}

// tiny-clip on the fixture's shards, batch 32, output in the fixture's directory under `out`.
static inline void train_fixture_config(vlt_run_config *c, const char *out) {
    vlt_run_config_default(c);
    snprintf(c->model_name, sizeof c->model_name, "tiny-clip");
    snprintf(c->train_shards, sizeof c->train_shards, "%s/train/{00000..00007}.tar", g_train_dir);
    snprintf(c->val_shards, sizeof c->val_shards, "%s/val/val-{00000..00001}.tar", g_train_dir);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/%s", g_train_dir, out);
    c->batch_size = 32;
    c->workers = 2;
    c->shuffle_buffer = 200;
    c->shuffle_initial = 50;
    c->lr = 2e-3;
    c->weight_decay = 0.1;
    c->warmup = 10;
    c->checkpoint_every = 0;
    c->eval_every = 0;
    c->val_samples = 500;
    c->tensorboard = false;
}

#endif
