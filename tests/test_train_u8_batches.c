// Tests for uint8 batches (the loader's images_u8) and vlt_normalize_u8: the u8 loader plus the op
// gives bit for bit the float loader's batches for the same seeds (train transform with random
// crops and flips, eval transform); the op is the transform's ToTensor + Normalize for every pixel
// value; bad inputs are refused by name; the u8 loader's memory figure is smaller. GPU only (skips
// without a device): the CUDA op equals the CPU op bit for bit.
//
// (A train_ test: it links the data loader and the autograd op together.)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/device.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/transform.h"
#include "test_data_tar_util.h"
#include "train/trainer.h"
#include "tests/train_fixture.h"

#define S 16     // output side
#define N_SHARDS 3

// A textured image (no two neighbours alike, so a crop offset, a scale or a flip changes pixels):
// sample (shard, i), w x h.
static void fill_image(vlt_image *img, int shard, int i) {
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++) {
            uint8_t *p = img->rgb + 3 * ((size_t)y * img->width + x);
            p[0] = (uint8_t)(x * 9 + y * 3 + shard * 40 + i * 7);
            p[1] = (uint8_t)((x * x + y * 5 + i * 11) * 3);
            p[2] = (uint8_t)(255 - x * 4 - y * 6 + shard * 13);
        }
}

static void write_shards(const char *dir) {
    for (int s = 0; s < N_SHARDS; s++) {
        tb_buf b = {0};
        for (int i = 0; i < 6 + s; i++) {
            vlt_image img;
            int w = 24 + 7 * ((i + s) % 4), h = 20 + 9 * ((i * 3 + s) % 3);   // landscape and portrait
            assert_int_equal(vlt_image_alloc(&img, w, h), VLT_OK);
            fill_image(&img, s, i);
            uint8_t *jpg;
            size_t len;
            assert_int_equal(vlt_image_encode_jpeg(&img, 90, &jpg, &len), VLT_OK);
            vlt_image_free(&img);
            char name[64], cap[64];
            snprintf(name, sizeof name, "k%d_%03d.jpg", s, i);
            tb_file(&b, name, jpg, len);
            free(jpg);
            snprintf(name, sizeof name, "k%d_%03d.txt", s, i);
            snprintf(cap, sizeof cap, "caption %d %d", s, i);
            tb_str(&b, name, cap);
        }
        tb_end(&b);
        char path[512];
        snprintf(path, sizeof path, "%s/shard-%02d.tar", dir, s);
        assert_int_equal(tb_save(b.buf, b.len, path), 0);
        tb_free(&b);
    }
}

typedef struct {
    char *dir;
    char spec[600];
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    f->dir = tb_tmpdir();
    write_shards(f->dir);
    snprintf(f->spec, sizeof f->spec, "%s/shard-{00..%02d}.tar", f->dir, N_SHARDS - 1);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    tb_rmdir(f->dir);
    free(f);
    return 0;
}

static void cfg_of(vlt_loader_cfg *c, const char *spec, int train, int u8) {
    vlt_loader_cfg_default(c);
    c->shards = spec;
    c->readers = 2;
    c->batch_size = 4;
    c->image_size = S;
    c->context_len = 8;
    c->seed = 77;
    c->train = train;
    c->shuffle_buffer = 5;
    c->shuffle_initial = 2;
    c->report = 0;
    c->warn_limit = 0;
    c->images_u8 = u8;
    vlt_transform_cfg_default(&c->transform, S);
    c->transform.scale_min = 0.3f;   // crops that differ from sample to sample
    c->transform.hflip = 1;
}

// The normalised (n, 3, S, S) float batch of a u8 batch, through the op on the host.
static void normalise_batch(const vlt_batch *b, float *out) {
    vlt_tensor *x = vlt_tensor_new(VLT_U8, VLT_CPU, 4, (int[]){b->n, 3, S, S}, "images_u8");
    assert_non_null(x);
    memcpy(x->data, b->images_u8, (size_t)b->n * 3 * S * S);
    vlt_tensor *y = vlt_normalize_u8(x, b->mean, b->std);
    assert_non_null(y);
    assert_int_equal(y->dtype, VLT_F32);
    assert_int_equal(y->device, VLT_CPU);
    memcpy(out, y->data, sizeof(float) * (size_t)b->n * 3 * S * S);
    vlt_step_reset();
    vlt_tensor_free(x);
}

// Two epochs of the float loader and of the u8 loader with the same seeds: the same keys in the
// same batches, and the u8 pixels normalised by the op equal the float images bit for bit.
static void compare_loaders(const char *spec, int train) {
    vlt_loader_cfg cf, cu;
    cfg_of(&cf, spec, train, 0);
    cfg_of(&cu, spec, train, 1);
    vlt_loader *Lf, *Lu;
    assert_int_equal(vlt_loader_create(&cf, &Lf), VLT_OK);
    assert_int_equal(vlt_loader_create(&cu, &Lu), VLT_OK);
    float *norm = malloc(sizeof(float) * 4 * 3 * S * S);
    int batches = 0, ends = 0, differs_from_plain = 0;
    while (ends < 2) {
        const vlt_batch *bf, *bu;
        assert_int_equal(vlt_loader_next(Lf, &bf), VLT_OK);
        assert_int_equal(vlt_loader_next(Lu, &bu), VLT_OK);
        assert_true(!bf == !bu);
        if (!bf) {
            ends++;
            continue;
        }
        assert_int_equal(bf->n, bu->n);
        assert_non_null(bf->images);
        assert_null(bf->images_u8);
        assert_null(bu->images);
        assert_non_null(bu->images_u8);
        for (int i = 0; i < bf->n; i++) assert_string_equal(bf->keys[i], bu->keys[i]);
        normalise_batch(bu, norm);
        assert_memory_equal(norm, bf->images, sizeof(float) * (size_t)bf->n * 3 * S * S);
        // not a trivial pass: the pixels are not a constant
        for (int k = 1; k < 3 * S * S; k++) differs_from_plain += bu->images_u8[k] != bu->images_u8[0];
        batches++;
    }
    assert_true(batches >= 2 * ((6 + 7 + 8) / 4) - 2);
    assert_true(differs_from_plain > 0);
    free(norm);
    vlt_loader_free(Lf);
    vlt_loader_free(Lu);
}

static void test_u8_loader_equals_float_loader_train(void **state) {
    compare_loaders(((fx *)*state)->spec, 1);
}

static void test_u8_loader_equals_float_loader_eval(void **state) {
    compare_loaders(((fx *)*state)->spec, 0);
}

// The transforms alone, sample by sample, with both flips among the keys.
static void test_transform_u8_matches(void **state) {
    (void)state;
    vlt_image img;
    assert_int_equal(vlt_image_alloc(&img, 37, 29), VLT_OK);
    fill_image(&img, 1, 2);
    vlt_transform_cfg c;
    vlt_transform_cfg_default(&c, S);
    c.hflip = 1;
    c.scale_min = 0.2f;
    float lut_mean[3] = {0.1f, 0.5f, 0.9f}, lut_std[3] = {0.2f, 0.33f, 1.7f};
    memcpy(c.mean, lut_mean, sizeof lut_mean);
    memcpy(c.std, lut_std, sizeof lut_std);
    float f[3 * S * S], g[3 * S * S], lut[3][256];
    uint8_t u[3 * S * S];
    vlt_normalize_u8_table(c.mean, c.std, lut);
    int flips[2] = {0, 0};
    for (int k = 0; k < 24; k++) {
        char key[16];
        snprintf(key, sizeof key, "key%d", k);
        int flip;
        vlt_transform_rrc_box(img.width, img.height, &c, 5, vlt_transform_stream(3, key), &flip);
        flips[flip]++;
        assert_int_equal(vlt_transform_train(&img, &c, 5, 3, key, f), VLT_OK);
        assert_int_equal(vlt_transform_train_u8(&img, &c, 5, 3, key, u), VLT_OK);
        for (int i = 0; i < 3 * S * S; i++) g[i] = lut[i / (S * S)][u[i]];
        assert_memory_equal(f, g, sizeof f);
    }
    assert_true(flips[0] > 0 && flips[1] > 0);
    assert_int_equal(vlt_transform_eval(&img, &c, f), VLT_OK);
    assert_int_equal(vlt_transform_eval_u8(&img, &c, u), VLT_OK);
    for (int i = 0; i < 3 * S * S; i++) g[i] = lut[i / (S * S)][u[i]];
    assert_memory_equal(f, g, sizeof f);
    // an empty image is still refused
    vlt_image none = {0};
    assert_int_equal(vlt_transform_eval_u8(&none, &c, u), VLT_ERR_ARG);
    assert_int_equal(vlt_transform_train_u8(&none, &c, 5, 3, "key0", u), VLT_ERR_ARG);
    vlt_image_free(&img);
}

// Every pixel value of every channel: the op's value is ((float)v / 255 - mean) / std, as the
// transform computes it; a flipped channel order or a plane mix-up would show.
static void test_op_values_and_errors(void **state) {
    (void)state;
    const int B = 2, H = 16, W = 16;   // 2 x 3 x 256 pixels: each value once per channel and image
    vlt_tensor *x = vlt_tensor_new(VLT_U8, VLT_CPU, 4, (int[]){B, 3, H, W}, "pixels");
    assert_non_null(x);
    for (int64_t i = 0; i < x->numel; i++) vlt_u8(x)[i] = (uint8_t)(i * 7 + i / (H * W));
    float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    vlt_tensor *y = vlt_normalize_u8(x, mean, std);
    assert_non_null(y);
    assert_int_equal(y->ndim, 4);
    assert_int_equal(y->shape[1], 3);
    for (int64_t i = 0; i < x->numel; i++) {
        int c = (int)((i / (H * W)) % 3);
        float want = ((float)vlt_u8(x)[i] / 255.0f - mean[c]) / std[c];
        assert_memory_equal(&vlt_f32(y)[i], &want, sizeof want);
    }
    // wrong dtype, wrong shape: refused by name
    vlt_tensor *f = vlt_tensor_new(VLT_F32, VLT_CPU, 4, (int[]){1, 3, 2, 2}, "floats");
    assert_null(vlt_normalize_u8(f, mean, std));
    assert_int_equal(vlt_error_code(), VLT_ERR_DTYPE);
    assert_non_null(strstr(vlt_error_message(), "floats"));
    vlt_tensor *g = vlt_tensor_new(VLT_U8, VLT_CPU, 4, (int[]){1, 4, 2, 2}, "four_channels");
    assert_null(vlt_normalize_u8(g, mean, std));
    assert_int_equal(vlt_error_code(), VLT_ERR_SHAPE);
    assert_non_null(strstr(vlt_error_message(), "four_channels"));
    assert_int_equal(vlt_dtype_size(VLT_U8), 1);
    assert_string_equal(vlt_dtype_name(VLT_U8), "u8");
    vlt_step_reset();
    vlt_tensor_free(x);
    vlt_tensor_free(f);
    vlt_tensor_free(g);
}

// The u8 loader's batch slots and queues are counted at one byte a pixel value.
static void test_memory_estimate(void **state) {
    vlt_loader_cfg cf, cu;
    cfg_of(&cf, ((fx *)*state)->spec, 1, 0);
    cfg_of(&cu, ((fx *)*state)->spec, 1, 1);
    cf.batch_size = cu.batch_size = 256;
    cf.image_size = cu.image_size = 224;
    cf.transform.size = cu.transform.size = 0;
    vlt_loader_memory mf, mu;
    vlt_loader_memory_estimate(&cf, &mf);
    vlt_loader_memory_estimate(&cu, &mu);
    double img_bytes = 3.0 * 224 * 224 * 256;   // one batch of pixel values
    // slots (prefetch 2 + 1) and queues each save 3 bytes a value
    assert_true(mf.loader - mu.loader >= 3.0 * 3 * img_bytes);
}

// GPU only: the device op gives the host op's bits (same shapes as the loader's batches).
static void test_cuda_op_equals_cpu(void **state) {
    (void)state;
    if (!vlt_cuda_available()) skip();
    const int B = 3, H = 40, W = 24;
    vlt_tensor *x = vlt_tensor_new(VLT_U8, VLT_CPU, 4, (int[]){B, 3, H, W}, "pixels");
    for (int64_t i = 0; i < x->numel; i++) vlt_u8(x)[i] = (uint8_t)((i * 2654435761u) >> 13);
    float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    vlt_tensor *xd = vlt_tensor_to(x, VLT_CUDA);
    assert_non_null(xd);
    vlt_tensor *yc = vlt_normalize_u8(x, mean, std), *yd = vlt_normalize_u8(xd, mean, std);
    assert_non_null(yc);
    assert_non_null(yd);
    assert_int_equal(yd->device, VLT_CUDA);
    float *h = malloc(sizeof(float) * (size_t)x->numel);
    vlt_tensor_read_f32(h, yd, x->numel);
    assert_memory_equal(h, yc->data, sizeof(float) * (size_t)x->numel);
    free(h);
    vlt_step_reset();
    vlt_tensor_free(x);
    vlt_tensor_free(xd);
}

// The trainer's uint8 feed (the GPU's route, taken on the CPU with VLT_TRAIN_U8_FEED=1) trains
// the tiny CLIP to the float feed's losses bit for bit, NaN injection included (step 2 skipped).
static const float *train_run(const char *out, int u8, int steps, vlt_trainer **keep) {
    vlt_run_config c;
    train_fixture_config(&c, out);
    c.steps = steps;
    c.warmup = 2;
    c.flip = 1;
    if (u8) setenv("VLT_TRAIN_U8_FEED", "1", 1);
    setenv("VLT_TRAIN_NAN_STEPS", "2-2", 1);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    vlt_status s = vlt_trainer_create(&c, &o, &t);
    unsetenv("VLT_TRAIN_U8_FEED");
    unsetenv("VLT_TRAIN_NAN_STEPS");
    if (s != VLT_OK) fail_msg("%s: %s", out, vlt_error_message());
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s: %s", out, vlt_error_message());
    int64_t n;
    const float *l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, steps);
    *keep = t;
    return l;
}

static void test_trainer_u8_feed_equals_float_feed(void **state) {
    (void)state;
    vlt_trainer *tf, *tu;
    const float *lf = train_run("float_feed", 0, 5, &tf), *lu = train_run("u8_feed", 1, 5, &tu);
    assert_memory_equal(lf, lu, 5 * sizeof(float));
    assert_true(isnan(lf[2]) && isfinite(lf[0]) && isfinite(lf[4]));
    assert_true(lf[0] != lf[4]);
    vlt_trainer_free(tf);
    vlt_trainer_free(tu);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_u8_loader_equals_float_loader_train, setup, teardown),
        cmocka_unit_test_setup_teardown(test_u8_loader_equals_float_loader_eval, setup, teardown),
        cmocka_unit_test(test_transform_u8_matches),
        cmocka_unit_test(test_op_values_and_errors),
        cmocka_unit_test_setup_teardown(test_memory_estimate, setup, teardown),
        cmocka_unit_test(test_cuda_op_equals_cpu),
        cmocka_unit_test_setup_teardown(test_trainer_u8_feed_equals_float_feed, train_fixture_setup, train_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
