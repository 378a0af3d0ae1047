// test_data_transform.c — transforms against PIL + torchvision (fixtures made by
// scripts/reference/make_transform_fixtures.py), determinism by (seed, epoch, key), crop boxes.
//
// Tolerance: resampling reproduces PIL's fixed-point arithmetic, so the uint8 outputs (resize,
// resized_crop, Resize + CenterCrop) must match exactly (max abs error 0), and the normalized
// float32 eval output within 1e-6 (the achieved max abs error is printed; it is 0: both compute
// (v / 255 - mean) / std in float32).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/rng.h"
#include "data/image.h"
#include "data/resample.h"
#include "data/transform.h"

#define FIXTURES "tests/data/data/transform/"

static uint8_t *read_file(const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open fixture %s (run tests from the repository root)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static vlt_image load_image(const char *name) {
    size_t len;
    uint8_t *buf = read_file(name, &len);
    vlt_image img;
    if (vlt_image_decode(buf, len, 0, name, &img) != VLT_OK) fail_msg("%s", vlt_error_message());
    free(buf);
    return img;
}

static int u8_max_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
    }
    return m;
}

static void test_against_torchvision(void **state) {
    (void)state;
    size_t mlen;
    char *manifest = (char *)read_file("manifest.txt", &mlen);
    manifest[mlen] = 0;
    int counts[4] = {0};
    double eval_err = 0;
    vlt_transform_cfg cfg;
    for (char *line = strtok(manifest, "\n"); line; line = strtok(NULL, "\n")) {
        char kind[16], src[64], file[128];
        int a, b, c, d, s;
        if (line[0] == '#') continue;
        size_t n;
        if (sscanf(line, "eval %63s %d %127s", src, &s, file) == 3 && !strncmp(line, "eval ", 5)) {
            vlt_image img = load_image(src);
            float *ref = (float *)read_file(file, &n), *out = malloc(n);
            assert_int_equal(n, (size_t)3 * s * s * sizeof(float));
            vlt_transform_cfg_default(&cfg, s);
            assert_int_equal(vlt_transform_eval(&img, &cfg, out), VLT_OK);
            for (size_t i = 0; i < n / sizeof(float); i++) eval_err = fmax(eval_err, fabs(out[i] - ref[i]));
            if (eval_err > 1e-6) fail_msg("%s: eval max abs error %g", line, eval_err);
            free(ref); free(out); vlt_image_free(&img);
            counts[0]++;
        } else if (sscanf(line, "evalu8 %63s %d %127s", src, &s, file) == 3) {
            // Resize(S) then CenterCrop(S), uint8: through the exposed pieces.
            vlt_image img = load_image(src);
            uint8_t *ref = read_file(file, &n);
            int rw, rh;
            vlt_transform_shortest_size(img.width, img.height, s, &rw, &rh);
            vlt_image full;
            assert_int_equal(vlt_image_alloc(&full, rw, rh), VLT_OK);
            assert_int_equal(vlt_transform_resize(&img, (vlt_crop_box){0, 0, img.width, img.height}, rw, rh, full.rgb), VLT_OK);
            vlt_crop_box cb = vlt_transform_center_box(rw, rh, s);
            uint8_t *out = malloc(n);
            assert_int_equal(vlt_transform_resize(&full, cb, s, s, out), VLT_OK);   // a same-size copy
            int e = u8_max_diff(out, ref, n);
            if (e) fail_msg("%s: max abs error %d", line, e);
            free(ref); free(out); vlt_image_free(&img); vlt_image_free(&full);
            counts[1]++;
        } else if (sscanf(line, "resize %63s %d %d %127s", src, &a, &b, file) == 4) {
            vlt_image img = load_image(src);
            uint8_t *ref = read_file(file, &n), *out = malloc(n);
            assert_int_equal(n, (size_t)3 * a * b);
            assert_int_equal(vlt_transform_resize(&img, (vlt_crop_box){0, 0, img.width, img.height}, a, b, out), VLT_OK);
            int e = u8_max_diff(out, ref, n);
            if (e) fail_msg("%s: max abs error %d", line, e);
            free(ref); free(out); vlt_image_free(&img);
            counts[2]++;
        } else if (sscanf(line, "crop %63s %d %d %d %d %d %127s", src, &a, &b, &c, &d, &s, file) == 7) {
            vlt_image img = load_image(src);
            uint8_t *ref = read_file(file, &n), *out = malloc(n);
            assert_int_equal(vlt_transform_resize(&img, (vlt_crop_box){a, b, c, d}, s, s, out), VLT_OK);
            int e = u8_max_diff(out, ref, n);
            if (e) fail_msg("%s: max abs error %d", line, e);
            free(ref); free(out); vlt_image_free(&img);
            counts[3]++;
        } else {
            (void)kind;
            fail_msg("unknown manifest line: %s", line);
        }
    }
    free(manifest);
    assert_true(counts[0] >= 8 && counts[1] >= 1 && counts[2] >= 16 && counts[3] >= 8);
    print_message("transform vs PIL/torchvision: %d eval (max abs error %g), %d Resize+CenterCrop, "
                  "%d resize, %d resized_crop (uint8, max abs error 0)\n",
                  counts[0], eval_err, counts[1], counts[2], counts[3]);
}

static vlt_image test_image(int w, int h) {
    vlt_image img;
    assert_int_equal(vlt_image_alloc(&img, w, h), VLT_OK);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img.rgb[i] = (uint8_t)vlt_rng_u32(3, 4, i);
    return img;
}

static void test_train_deterministic_by_key(void **state) {
    (void)state;
    vlt_image img = test_image(97, 61);
    vlt_transform_cfg cfg;
    vlt_transform_cfg_default(&cfg, 32);
    cfg.scale_min = 0.3f;   // wide enough that different keys give visibly different crops
    cfg.hflip = 1;
    size_t n = 3 * 32 * 32;
    float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4), *d = malloc(n * 4), *e = malloc(n * 4);
    assert_int_equal(vlt_transform_train(&img, &cfg, 7, 2, "000000123", a), VLT_OK);
    assert_int_equal(vlt_transform_train(&img, &cfg, 7, 2, "000000123", b), VLT_OK);
    assert_memory_equal(a, b, n * 4);
    assert_int_equal(vlt_transform_train(&img, &cfg, 7, 2, "000000124", c), VLT_OK);   // other key
    assert_int_equal(vlt_transform_train(&img, &cfg, 7, 3, "000000123", d), VLT_OK);   // other epoch
    assert_int_equal(vlt_transform_train(&img, &cfg, 8, 2, "000000123", e), VLT_OK);   // other seed
    assert_memory_not_equal(a, c, n * 4);
    assert_memory_not_equal(a, d, n * 4);
    assert_memory_not_equal(a, e, n * 4);

    // The train output is exactly resize(box) + normalize(flip) with the box and flip drawn from
    // the key's stream.
    int flip;
    vlt_crop_box box = vlt_transform_rrc_box(97, 61, &cfg, 7, vlt_transform_stream(2, "000000123"), &flip);
    uint8_t px[3 * 32 * 32];
    assert_int_equal(vlt_transform_resize(&img, box, 32, 32, px), VLT_OK);
    vlt_transform_normalize(px, 32, 32, cfg.mean, cfg.std, flip, b);
    assert_memory_equal(a, b, n * 4);
    // Flip mirrors each row.
    vlt_transform_normalize(px, 32, 32, cfg.mean, cfg.std, !flip, c);
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                assert_true(b[(ch * 32 + y) * 32 + x] == c[(ch * 32 + y) * 32 + 31 - x]);
    // Normalization: channel 0 of pixel 0 is (v / 255 - mean) / std.
    float want = ((float)px[0] / 255.0f - 0.48145466f) / 0.26862954f;
    assert_true((flip ? c[0] : b[0]) == want);
    free(a); free(b); free(c); free(d); free(e);
    vlt_image_free(&img);
}

static void test_crop_box_ranges(void **state) {
    (void)state;
    vlt_transform_cfg cfg;
    vlt_transform_cfg_default(&cfg, 224);
    cfg.hflip = 1;
    // 640x427 and 33x17 are wider than 4/3 by more than the area scale allows: no attempt fits
    // (w <= W and h <= H would need ratio >= 0.9 * W / H > 4/3), so torchvision falls back to the
    // central crop at ratio 4/3 every time.
    const int sizes[][2] = {{512, 512}, {600, 500}, {300, 350}, {640, 427}, {33, 17}};
    for (int s = 0; s < 5; s++) {
        int W = sizes[s][0], H = sizes[s][1], flips = 0;
        double min_area = 1, max_area = 0;
        for (int k = 0; k < 2000; k++) {
            char key[32];
            snprintf(key, sizeof key, "%09d", k);
            int flip;
            vlt_crop_box b = vlt_transform_rrc_box(W, H, &cfg, 42, vlt_transform_stream(0, key), &flip);
            flips += flip;
            if (W == 640) {
                assert_true(b.x == 35 && b.y == 0 && b.w == 569 && b.h == 427);
                continue;
            }
            if (W == 33) {
                assert_true(b.x == 5 && b.y == 0 && b.w == 23 && b.h == 17);
                continue;
            }
            assert_true(b.x >= 0 && b.y >= 0 && b.w > 0 && b.h > 0 && b.x + b.w <= W && b.y + b.h <= H);
            double area = (double)b.w * b.h / ((double)W * H), ratio = (double)b.w / b.h;
            min_area = fmin(min_area, area);
            max_area = fmax(max_area, area);
            // Rounding w and h to integers moves area and ratio by about 1/side.
            double tol = 2.5 / (W < H ? W : H);
            assert_true(area >= 0.9 - 2 * tol && area <= 1.0 + 2 * tol);
            if (!(b.w == W && b.h == H)) assert_true(ratio >= 0.75 - 3 * tol && ratio <= 4.0 / 3 + 3 * tol);
        }
        assert_true(flips > 850 && flips < 1150);              // about half
        if (W >= 300 && W != 640 && !(min_area < 0.92 && max_area > 0.97))   // the range is used
            fail_msg("%dx%d: crop areas only in [%.3f, %.3f]", W, H, min_area, max_area);
    }
    // A very wide image: no attempt fits, the fallback is the central crop at ratio 4/3.
    vlt_crop_box b = vlt_transform_rrc_box(1000, 30, &cfg, 1, vlt_transform_stream(0, "k"), NULL);
    assert_int_equal(b.h, 30);
    assert_int_equal(b.w, 40);
    assert_int_equal(b.x, 480);
    assert_int_equal(b.y, 0);
    // A very tall one: ratio 3/4.
    b = vlt_transform_rrc_box(30, 1001, &cfg, 1, vlt_transform_stream(0, "k"), NULL);
    assert_int_equal(b.w, 30);
    assert_int_equal(b.h, 40);
    assert_int_equal(b.y, 480);
    // Without hflip, the flip draw is always 0.
    cfg.hflip = 0;
    for (int k = 0; k < 50; k++) {
        int flip = -1;
        char key[16];
        snprintf(key, sizeof key, "%d", k);
        vlt_transform_rrc_box(100, 100, &cfg, 1, vlt_transform_stream(0, key), &flip);
        assert_int_equal(flip, 0);
    }
}

static void test_sizes_and_errors(void **state) {
    (void)state;
    int w, h;
    vlt_transform_shortest_size(500, 333, 224, &w, &h);     // torchvision: int(224 * 500 / 333) = 336
    assert_int_equal(w, 336);
    assert_int_equal(h, 224);
    vlt_transform_shortest_size(17, 300, 24, &w, &h);
    assert_int_equal(w, 24);
    assert_int_equal(h, 423);
    // CenterCrop rounds half to even, as Python's round(): (25 - 24) / 2 = 0.5 -> 0, (27-24)/2 -> 2.
    vlt_crop_box c = vlt_transform_center_box(25, 27, 24);
    assert_int_equal(c.x, 0);
    assert_int_equal(c.y, 2);
    vlt_image img = test_image(10, 10);
    uint8_t out[3 * 4 * 4];
    assert_int_equal(vlt_transform_resize(&img, (vlt_crop_box){5, 5, 6, 2}, 4, 4, out), VLT_ERR_ARG);
    assert_int_equal(vlt_transform_resize(&img, (vlt_crop_box){-1, 0, 2, 2}, 4, 4, out), VLT_ERR_ARG);
    vlt_transform_cfg cfg;
    vlt_transform_cfg_default(&cfg, 0);
    float f[3 * 4 * 4];
    assert_int_equal(vlt_transform_eval(&img, &cfg, f), VLT_ERR_ARG);
    vlt_image empty = {0, 0, NULL};
    vlt_transform_cfg_default(&cfg, 4);
    assert_int_equal(vlt_transform_eval(&empty, &cfg, f), VLT_ERR_ARG);
    assert_int_equal(vlt_transform_train(&empty, &cfg, 1, 0, "k", f), VLT_ERR_ARG);
    vlt_image_free(&img);
}

// Fills img with one of four patterns: uniform noise, full-range 0/255 noise (the largest
// overshoot of the bicubic lobes, so clipping at both ends), a smooth ramp, a constant.
static void fill_pattern(vlt_image *img, int pattern, uint64_t stream) {
    size_t n = (size_t)img->width * img->height * 3;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = vlt_rng_u32(11, stream, i);
        uint8_t v = (uint8_t)r;
        if (pattern == 1) v = (r & 1) ? 255 : 0;
        else if (pattern == 2) v = (uint8_t)((i / 3 % (size_t)img->width) * 255 / (size_t)img->width + (r & 3));
        else if (pattern == 3) v = 255;
        img->rgb[i] = v;
    }
}

// A vlt_resample_row_fn that copies rows into a buffer and checks they come in order.
typedef struct { uint8_t *buf; int row_bytes, next; } row_sink;
static void sink_row(void *ctx, int y, const uint8_t *px) {
    row_sink *s = ctx;
    assert_int_equal(y, s->next);
    memcpy(s->buf + (size_t)y * s->row_bytes, px, (size_t)s->row_bytes);
    s->next++;
}

// The AVX2 kernels against the scalar reference: random images of odd sizes, random boxes
// (including ones touching the right and bottom edges, where the kernels' over-wide loads are
// closest to the end of the buffer), output sizes from 1 to larger than the box, both pass
// orders, and windows of the output (the eval path). Every byte must be equal.
static void test_simd_equals_scalar(void **state) {
    (void)state;
    const char *kernel = vlt_resample_kernel_name(VLT_RESAMPLE_AUTO);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx2")) assert_string_equal(kernel, "avx2");
#endif
    assert_string_equal(vlt_resample_kernel_name(VLT_RESAMPLE_SCALAR), "scalar");
    int cases = 0, v_first = 0, h_first = 0, one_axis = 0, windows = 0;
    for (int t = 0; t < 600; t++) {
        int W = 1 + (int)(vlt_rng_u32(12, 1, 2 * t) % 157), H = 1 + (int)(vlt_rng_u32(12, 1, 2 * t + 1) % 157);
        if (t % 5 == 0) W = 1 + W % 7;                          // very narrow
        if (t % 7 == 0) H = 1 + H % 5;                          // very short
        vlt_image img;
        assert_int_equal(vlt_image_alloc(&img, W, H), VLT_OK);
        fill_pattern(&img, t % 4, (uint64_t)t);
        for (int b = 0; b < 4; b++) {
            uint64_t s = (uint64_t)(8 * t + 2 * b);
            int bx = (int)(vlt_rng_u32(13, s, 0) % (uint32_t)W), by = (int)(vlt_rng_u32(13, s, 1) % (uint32_t)H);
            if (b == 0) bx = by = 0;
            int bw = 1 + (int)(vlt_rng_u32(13, s, 2) % (uint32_t)(W - bx));
            int bh = 1 + (int)(vlt_rng_u32(13, s, 3) % (uint32_t)(H - by));
            if (b == 1) { bw = W - bx; bh = H - by; }             // flush with the right and bottom edges
            int fw = 1 + (int)(vlt_rng_u32(13, s, 4) % 97), fh = 1 + (int)(vlt_rng_u32(13, s, 5) % 97);
            if (b == 2) fh = bh;                                  // horizontal only
            if (b == 3 && t % 2) { fw = bw; fh = 1 + bh / 3; }    // vertical only
            if (t % 9 == 0) { fw = 2 * bw + 3; fh = 3 * bh + 1; } // upscaling
            // A window of the output (the whole output every other time).
            int ox = 0, oy = 0, ow = fw, oh = fh;
            if (t % 2) {
                ox = (int)(vlt_rng_u32(13, s, 6) % (uint32_t)fw);
                oy = (int)(vlt_rng_u32(13, s, 7) % (uint32_t)fh);
                ow = 1 + (int)(vlt_rng_u32(13, s, 8) % (uint32_t)(fw - ox));
                oh = 1 + (int)(vlt_rng_u32(13, s, 9) % (uint32_t)(fh - oy));
                windows++;
            }
            size_t n = (size_t)ow * oh * 3;
            uint8_t *a = malloc(n), *c = malloc(n);
            assert_non_null(a);
            assert_non_null(c);
            vlt_crop_box box = {bx, by, bw, bh};
            assert_int_equal(vlt_resample_window(&img, box, fw, fh, ox, oy, ow, oh, VLT_RESAMPLE_SCALAR, a), VLT_OK);
            assert_int_equal(vlt_resample_window(&img, box, fw, fh, ox, oy, ow, oh, VLT_RESAMPLE_AUTO, c), VLT_OK);
            if (memcmp(a, c, n)) {
                size_t i = 0;
                while (a[i] == c[i]) i++;
                fail_msg("%s != scalar: %dx%d image, box (%d,%d %dx%d) -> %dx%d, window (%d,%d %dx%d): "
                         "byte %zu is %d, scalar %d", kernel, W, H, bx, by, bw, bh, fw, fh, ox, oy, ow, oh, i, c[i], a[i]);
            }
            // The same window a row at a time (the path the train and eval transforms take).
            row_sink sink = {c, ow * 3, 0};
            memset(c, 0, n);
            vlt_resample_kernel kr = t % 3 ? VLT_RESAMPLE_AUTO : VLT_RESAMPLE_SCALAR;
            assert_int_equal(vlt_resample_window_rows(&img, box, fw, fh, ox, oy, ow, oh, kr, sink_row, &sink), VLT_OK);
            assert_int_equal(sink.next, oh);
            assert_memory_equal(a, c, n);
            int nh = fw != bw, nv = fh != bh;
            if (nh && nv && bh > fh && (bh - fh) > 2 * (bw - fw)) v_first++;
            else if (nh && nv) h_first++;
            else one_axis++;
            cases++;
            free(a);
            free(c);
        }
        vlt_image_free(&img);
    }
    assert_true(v_first >= 100 && h_first >= 100 && one_axis >= 100 && windows >= 500);
    print_message("resample %s == scalar: %d cases (%d vertical-first, %d horizontal-first, %d one axis, %d windows)\n",
                  kernel, cases, v_first, h_first, one_axis, windows);
}

// The bench-sized case: 256x256 and 512x512 crops to 224x224 (the RandomResizedCrop of the
// throughput benchmark), full-range noise, both kernels, every byte equal.
static void test_simd_equals_scalar_224(void **state) {
    (void)state;
    const int sides[] = {256, 512, 333};
    for (int s = 0; s < 3; s++) {
        vlt_image img;
        assert_int_equal(vlt_image_alloc(&img, sides[s], sides[s] - 11), VLT_OK);
        fill_pattern(&img, s == 1 ? 1 : 0, 100 + (uint64_t)s);
        vlt_transform_cfg cfg;
        vlt_transform_cfg_default(&cfg, 224);
        uint8_t *a = malloc(224 * 224 * 3), *c = malloc(224 * 224 * 3);
        for (int k = 0; k < 6; k++) {
            char key[16];
            snprintf(key, sizeof key, "%06d", k);
            vlt_crop_box box = vlt_transform_rrc_box(img.width, img.height, &cfg, 1, vlt_transform_stream(0, key), NULL);
            assert_int_equal(vlt_resample_window(&img, box, 224, 224, 0, 0, 224, 224, VLT_RESAMPLE_SCALAR, a), VLT_OK);
            assert_int_equal(vlt_resample_window(&img, box, 224, 224, 0, 0, 224, 224, VLT_RESAMPLE_AUTO, c), VLT_OK);
            assert_memory_equal(a, c, 224 * 224 * 3);
        }
        free(a);
        free(c);
        vlt_image_free(&img);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_torchvision),
        cmocka_unit_test(test_train_deterministic_by_key),
        cmocka_unit_test(test_crop_box_ranges),
        cmocka_unit_test(test_sizes_and_errors),
        cmocka_unit_test(test_simd_equals_scalar),
        cmocka_unit_test(test_simd_equals_scalar_224),
    };
    return cmocka_run_group_tests_name("data_transform", tests, NULL, NULL);
}
