// test_train_eval_decode.c — evaluation sees PIL's pixels: the loader configuration that embed,
// eval checkpoint / zeroshot and validation use decodes JPEGs at full size (no DCT scaling) before
// the eval transform, also for an image far larger than the model's input; data.fast_decode (the
// training option) is what changes them.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "data/image.h"
#include "data/loader.h"
#include "data/shardwriter.h"
#include "data/transform.h"
#include "train/evaluate.h"
#include "train/run_config.h"

static char g_dir[256];
static uint8_t *g_jpg;
static size_t g_jpg_len;

// A 640x480 JPEG with detail at every scale (what DCT scaling would smooth differently).
static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-evaldecode-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    vlt_image img;
    if (vlt_image_alloc(&img, 640, 480) != VLT_OK) return -1;
    uint32_t h = 12345;
    for (int y = 0; y < 480; y++)
        for (int x = 0; x < 640; x++) {
            h = h * 1664525u + 1013904223u;
            uint8_t *p = img.rgb + 3 * ((size_t)y * 640 + (size_t)x);
            p[0] = (uint8_t)((x * 7 + y * 3) ^ (h >> 24));
            p[1] = (uint8_t)(((x / 9) * 40 + (y / 5) * 17) & 255);
            p[2] = (uint8_t)((x * y) >> 6);
        }
    vlt_shardwriter_cfg wc;
    vlt_shardwriter_cfg_default(&wc, g_dir);
    wc.resize = 0;
    vlt_shardwriter *w = NULL;
    int w_, h_;
    if (vlt_shardwriter_prepare_rgb(&wc, &img, &g_jpg, &g_jpg_len, &w_, &h_) != VLT_OK || w_ != 640) return -1;
    vlt_image_free(&img);
    if (vlt_shardwriter_open(&wc, &w) != VLT_OK) return -1;
    if (vlt_shardwriter_add(w, g_jpg, g_jpg_len, "a test image", NULL, NULL) != VLT_OK) return -1;
    return vlt_shardwriter_close(w) == VLT_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(g_jpg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

// The loader's first image under lc (S x S, normalized CHW).
static float *first_image(vlt_loader_cfg *lc, int S) {
    vlt_loader *L = NULL;
    if (vlt_loader_create(lc, &L) != VLT_OK) fail_msg("%s", vlt_error_message());
    const vlt_batch *b = NULL;
    if (vlt_loader_next(L, &b) != VLT_OK || !b || b->n != 1) fail_msg("no batch: %s", vlt_error_message());
    float *out = malloc(sizeof(float) * 3 * (size_t)S * S);
    memcpy(out, b->images, sizeof(float) * 3 * (size_t)S * S);
    vlt_loader_free(L);
    return out;
}

static void test_eval_loader_decodes_full_size(void **state) {
    (void)state;
    const int S = 64;  // the image is 7.5x larger: DCT scaling to 1/4 would be possible
    char shards[300];
    snprintf(shards, sizeof shards, "%s/00000.tar", g_dir);
    vlt_loader_cfg lc;
    vlt_eval_loader_cfg(S, 77, NULL, shards, 1, NULL, &lc);
    assert_int_equal(lc.fast_decode, 0);
    float *got = first_image(&lc, S);
    // PIL's way: full-size decode, then resize shorter side + center crop + normalize
    vlt_image full;
    assert_int_equal(vlt_image_decode(g_jpg, g_jpg_len, 0, "test", &full), VLT_OK);
    assert_int_equal(full.width, 640);
    vlt_transform_cfg tc;
    vlt_transform_cfg_default(&tc, S);
    float *want = malloc(sizeof(float) * 3 * (size_t)S * S);
    assert_int_equal(vlt_transform_eval(&full, &tc, want), VLT_OK);
    vlt_image_free(&full);
    assert_memory_equal(got, want, sizeof(float) * 3 * (size_t)S * S);
    // the training option decodes DCT-scaled and gives other pixels (so the check above can fail)
    lc.fast_decode = 1;
    float *fast = first_image(&lc, S);
    assert_memory_not_equal(fast, want, sizeof(float) * 3 * (size_t)S * S);
    free(got);
    free(want);
    free(fast);
}

// data.fast_decode is a run-config key, off unless asked for.
static void test_fast_decode_key(void **state) {
    (void)state;
    vlt_run_config c;
    vlt_run_config_default(&c);
    assert_false(c.fast_decode);
    assert_int_equal(vlt_run_config_set(&c, "data.fast_decode=true"), VLT_OK);
    assert_true(c.fast_decode);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_loader_decodes_full_size),
        cmocka_unit_test(test_fast_decode_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
