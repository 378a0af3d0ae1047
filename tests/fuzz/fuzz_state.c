// fuzz_state.c — a checkpoint's state.json and the data loader's saved position. The input is
// "STATE\n--\nPOSITION": STATE replaces state.json in a valid checkpoint made at start-up and is
// read back through vlt_checkpoint_read_state (which validates the directory and the JSON);
// POSITION goes to vlt_loader_restore_json of a loader over two small shards and, when accepted,
// one batch is taken, so that saved shard indices, tar offsets and shuffle buffers are followed
// into the shards (seeks past the end, offsets inside members, keys that do not match).
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/optim.h"
#include "autograd/params.h"
#include "checkpoints/checkpoint.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/shardwriter.h"
#include "fuzz_util.h"

static char g_ck[600];          // the checkpoint directory
static char g_state[700];       // its state.json
static char g_spec[1400];
static vlt_loader *g_loader;

static void die(const char *what) {
    fprintf(stderr, "fuzz_state: %s: %s\n", what, vlt_error_message());
    abort();
}

static void make_shards(const char *dir) {
    vlt_image img;
    if (vlt_image_alloc(&img, 8, 8) != VLT_OK) die("image");
    memset(img.rgb, 90, 8 * 8 * 3);
    uint8_t *jpg;
    size_t len;
    if (vlt_image_encode_jpeg(&img, 90, &jpg, &len) != VLT_OK) die("jpeg");
    vlt_image_free(&img);
    vlt_shardwriter_cfg c;
    vlt_shardwriter_cfg_default(&c, dir);
    c.shard_size = 5;
    vlt_shardwriter *w;
    if (vlt_shardwriter_open(&c, &w) != VLT_OK) die("shardwriter");
    for (int i = 0; i < 10; i++) {
        char cap[32];
        snprintf(cap, sizeof cap, "caption %d", i);
        if (vlt_shardwriter_add(w, jpg, len, cap, NULL, NULL) != VLT_OK) die("add");
    }
    if (vlt_shardwriter_close(w) != VLT_OK) die("close");
    free(jpg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = fz_dir();
    vlt_params p;
    vlt_params_init(&p);
    int shape[1] = {3};
    vlt_tensor *t = vlt_params_new(&p, "w", 1, shape);
    if (!t) die("params");
    bool decay = true;
    vlt_adamw *opt = vlt_adamw_new(p.t, &decay, 1, (vlt_adamw_cfg){0.9f, 0.999f, 1e-8f, 0.1f});
    if (!opt) die("adamw");
    char run[400];
    snprintf(run, sizeof run, "%s/run", dir);
    if (vlt_checkpoint_save(run, 7, &p, opt, "{\"step\": 7}", 0) != VLT_OK) die("checkpoint");
    if (vlt_checkpoint_resolve(run, "latest", g_ck, sizeof g_ck) != VLT_OK) die("resolve");
    snprintf(g_state, sizeof g_state, "%s/state.json", g_ck);
    vlt_adamw_free(opt);
    vlt_params_free(&p);

    char shards[500];
    snprintf(shards, sizeof shards, "%s/shards", dir);
    make_shards(shards);
    snprintf(g_spec, sizeof g_spec, "%s/{00000..00001}.tar", shards);
    vlt_loader_cfg lc;
    vlt_loader_cfg_default(&lc);
    lc.shards = g_spec;
    lc.readers = 2;
    lc.batch_size = 3;
    lc.image_size = 8;
    lc.context_len = 4;
    lc.shuffle_buffer = 4;
    lc.shuffle_initial = 2;
    lc.prefetch = 1;
    lc.warn_limit = 0;
    lc.report = 0;
    lc.seed = 5;
    if (vlt_loader_create(&lc, &g_loader) != VLT_OK) die("loader");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    char *state, *pos;
    fz_split(data, size, "\n--\n", &state, &pos);
    FILE *f = fopen(g_state, "wb");
    if (!f) abort();
    fwrite(state, 1, strlen(state), f);
    fclose(f);
    char *back = NULL;
    int64_t step = -1;
    if (vlt_checkpoint_read_state(g_ck, &back, &step) == VLT_OK) {
        if (!back || step != 7 || strcmp(back, state) != 0) abort();   // byte-equal to the file
        free(back);
    }
    if (vlt_loader_restore_json(g_loader, pos) == VLT_OK) {
        const vlt_batch *b;
        if (vlt_loader_next(g_loader, &b) == VLT_OK && b && (b->n < 1 || b->n > 3)) abort();
        char *again = NULL;   // the position after it serialises
        if (vlt_loader_position_json(g_loader, &again) != VLT_OK) abort();
        free(again);
        vlt_loader_set_epoch(g_loader, 0);
    }
    free(state);
    free(pos);
    return 0;
}
