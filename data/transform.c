// transform.c — RandomResizedCrop / shortest-side resize + center crop / flip / normalize; the
// resampling itself (PIL's fixed-point bicubic) is data/resample.c.
#include "data/transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/rng.h"
#include "data/resample.h"

// Indices of the draws in a sample's stream: attempt a uses uniforms 2a (area) and 2a+1 (ratio)
// and integers BELOW_BASE + 2a (row) / + 2a + 1 (column); the flip is uniform FLIP_INDEX.
#define RRC_ATTEMPTS 10
#define FLIP_INDEX (2 * RRC_ATTEMPTS)
#define BELOW_BASE (1ull << 40)

static const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void vlt_transform_cfg_default(vlt_transform_cfg *cfg, int size) {
    memset(cfg, 0, sizeof *cfg);
    cfg->size = size;
    cfg->scale_min = 0.9f;
    cfg->scale_max = 1.0f;
    cfg->ratio_min = 3.0f / 4.0f;
    cfg->ratio_max = 4.0f / 3.0f;
    cfg->hflip = 0;
    memcpy(cfg->mean, CLIP_MEAN, sizeof cfg->mean);
    memcpy(cfg->std, CLIP_STD, sizeof cfg->std);
}

// --- crop boxes ------------------------------------------------------------------------------------

uint64_t vlt_transform_stream(uint64_t epoch, const char *key) {
    return vlt_rng_stream(VLT_RNG_AUGMENT, epoch, vlt_rng_hash_str(key ? key : ""));
}

// Python's round() on a double: half to even (rint in the default rounding mode).
static int py_round(double x) { return (int)nearbyint(x); }

vlt_crop_box vlt_transform_rrc_box(int width, int height, const vlt_transform_cfg *cfg,
                                   uint64_t seed, uint64_t stream, int *flip) {
    if (flip) *flip = cfg->hflip ? vlt_rng_uniform(seed, stream, FLIP_INDEX) < 0.5f : 0;
    double area = (double)width * height;
    // torch draws the scale and the log-ratio as float32 and exponentiates in float32.
    float log_lo = logf(cfg->ratio_min), log_hi = logf(cfg->ratio_max);
    for (int a = 0; a < RRC_ATTEMPTS; a++) {
        float s = cfg->scale_min + (cfg->scale_max - cfg->scale_min) * vlt_rng_uniform(seed, stream, 2 * a);
        float lr = log_lo + (log_hi - log_lo) * vlt_rng_uniform(seed, stream, 2 * a + 1);
        double target = area * s, ratio = expf(lr);
        int w = py_round(sqrt(target * ratio)), h = py_round(sqrt(target / ratio));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            int y = (int)vlt_rng_below(seed, stream, BELOW_BASE + 2 * a, (uint64_t)(height - h + 1));
            int x = (int)vlt_rng_below(seed, stream, BELOW_BASE + 2 * a + 1, (uint64_t)(width - w + 1));
            return (vlt_crop_box){x, y, w, h};
        }
    }
    // Fallback: the central crop with the ratio clamped to [ratio_min, ratio_max].
    double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < cfg->ratio_min) h = py_round(w / (double)cfg->ratio_min);
    else if (in_ratio > cfg->ratio_max) w = py_round(h * (double)cfg->ratio_max);
    if (h > height) h = height;
    if (w > width) w = width;
    return (vlt_crop_box){(width - w) / 2, (height - h) / 2, w, h};
}

void vlt_transform_shortest_size(int width, int height, int size, int *out_w, int *out_h) {
    int shorter = width <= height ? width : height, longer = width <= height ? height : width;
    int new_long = (int)((double)((long long)size * longer) / shorter);
    if (width <= height) { *out_w = size; *out_h = new_long; }
    else { *out_w = new_long; *out_h = size; }
}

vlt_crop_box vlt_transform_center_box(int width, int height, int size) {
    return (vlt_crop_box){py_round((width - size) / 2.0), py_round((height - size) / 2.0), size, size};
}

static vlt_status check_box(const vlt_image *img, vlt_crop_box b) {
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0)
        return vlt_error_set(VLT_ERR_ARG, "transform: empty image");
    if (b.x < 0 || b.y < 0 || b.w <= 0 || b.h <= 0 || b.x + b.w > img->width || b.y + b.h > img->height)
        return vlt_error_set(VLT_ERR_ARG, "transform: crop box (%d,%d %dx%d) outside the %dx%d image",
                             b.x, b.y, b.w, b.h, img->width, img->height);
    return VLT_OK;
}

vlt_status vlt_transform_resize(const vlt_image *img, vlt_crop_box box, int out_w, int out_h, uint8_t *out) {
    VLT_TRY(check_box(img, box));
    if (out_w <= 0 || out_h <= 0) return vlt_error_set(VLT_ERR_ARG, "transform: output size %dx%d", out_w, out_h);
    return vlt_resample_window(img, box, out_w, out_h, 0, 0, out_w, out_h, VLT_RESAMPLE_AUTO, out);
}

// --- normalize and the two pipelines ---------------------------------------------------------------

// One uint8 HWC row (w, 3) -> row y of the three planes (a vlt_resample_row_fn), mirrored if
// flip: either ToTensor + Normalize through a table ((v / 255 - mean) / std in float32)
// into float planes, or the 8-bit values as they are into uint8 planes.
typedef struct {
    float lut[3][256];  // float output only
    int w, flip;
    size_t plane;       // w * h
    float *out;         // (3, h, w) float, or NULL
    uint8_t *out_u8;    // (3, h, w) uint8, when out is NULL
} row_writer;

static void writer_init(row_writer *n, int w, int h, const float mean[3], const float std[3], int flip, float *out,
                        uint8_t *out_u8) {
    if (out)   // the expression of vlt_normalize_u8_table (autograd/ops_normalize.c, which data/ does not link)
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++) n->lut[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
    n->w = w;
    n->flip = flip;
    n->plane = (size_t)w * h;
    n->out = out;
    n->out_u8 = out_u8;
}

static void write_row(void *ctx, int y, const uint8_t *row) {
    const row_writer *n = ctx;
    int w = n->w;
    if (n->out) {
        float *o0 = n->out + (size_t)y * w, *o1 = o0 + n->plane, *o2 = o1 + n->plane;
        for (int x = 0; x < w; x++) {
            int xs = n->flip ? w - 1 - x : x;
            o0[x] = n->lut[0][row[3 * xs]];
            o1[x] = n->lut[1][row[3 * xs + 1]];
            o2[x] = n->lut[2][row[3 * xs + 2]];
        }
        return;
    }
    uint8_t *o0 = n->out_u8 + (size_t)y * w, *o1 = o0 + n->plane, *o2 = o1 + n->plane;
    for (int x = 0; x < w; x++) {
        int xs = n->flip ? w - 1 - x : x;
        o0[x] = row[3 * xs];
        o1[x] = row[3 * xs + 1];
        o2[x] = row[3 * xs + 2];
    }
}

void vlt_transform_normalize(const uint8_t *hwc, int w, int h, const float mean[3], const float std[3],
                             int flip, float *out) {
    row_writer n;
    writer_init(&n, w, h, mean, std, flip, out, NULL);
    for (int y = 0; y < h; y++) write_row(&n, y, hwc + (size_t)y * w * 3);
}

static vlt_status check_cfg(const vlt_transform_cfg *cfg) {
    if (!cfg || cfg->size <= 0 || cfg->size > 16384)
        return vlt_error_set(VLT_ERR_ARG, "transform: bad output size %d", cfg ? cfg->size : 0);
    if (!(cfg->scale_min > 0 && cfg->scale_min <= cfg->scale_max) || !(cfg->ratio_min > 0 && cfg->ratio_min <= cfg->ratio_max))
        return vlt_error_set(VLT_ERR_ARG, "transform: bad scale (%g, %g) or ratio (%g, %g)",
                             cfg->scale_min, cfg->scale_max, cfg->ratio_min, cfg->ratio_max);
    return VLT_OK;
}

// RandomResizedCrop (+ flip) of the key's draw for the epoch, resized to size: into out (float,
// normalized) or out_u8 (uint8).
static vlt_status train_rows(const vlt_image *img, const vlt_transform_cfg *cfg, uint64_t seed, uint64_t epoch,
                             const char *key, float *out, uint8_t *out_u8) {
    VLT_TRY(check_cfg(cfg));
    if (!img || !img->rgb) return vlt_error_set(VLT_ERR_ARG, "transform: empty image for %s", key ? key : "?");
    int flip = 0;
    vlt_crop_box box = vlt_transform_rrc_box(img->width, img->height, cfg, seed, vlt_transform_stream(epoch, key), &flip);
    VLT_TRY(check_box(img, box));
    // The resize hands each output row to the writer: no (size, size, 3) buffer.
    int s = cfg->size;
    row_writer n;
    writer_init(&n, s, s, cfg->mean, cfg->std, flip, out, out_u8);
    return vlt_resample_window_rows(img, box, s, s, 0, 0, s, s, VLT_RESAMPLE_AUTO, write_row, &n);
}

// Shortest side resized to size, center crop: into out (float, normalized) or out_u8 (uint8).
static vlt_status eval_rows(const vlt_image *img, const vlt_transform_cfg *cfg, float *out, uint8_t *out_u8) {
    VLT_TRY(check_cfg(cfg));
    VLT_TRY(check_box(img, (vlt_crop_box){0, 0, img ? img->width : 0, img ? img->height : 0}));
    int s = cfg->size, rw = 0, rh = 0;
    vlt_transform_shortest_size(img->width, img->height, s, &rw, &rh);
    if (rw < s || rh < s)
        return vlt_error_set(VLT_ERR_ARG, "transform: a %dx%d image resizes to %dx%d, smaller than %d",
                             img->width, img->height, rw, rh, s);
    vlt_crop_box c = vlt_transform_center_box(rw, rh, s);
    // Only the center window of the resized image is computed: each output pixel depends only on
    // its own position, so this equals resize-then-crop exactly.
    row_writer n;
    writer_init(&n, s, s, cfg->mean, cfg->std, 0, out, out_u8);
    return vlt_resample_window_rows(img, (vlt_crop_box){0, 0, img->width, img->height}, rw, rh, c.x, c.y, s, s,
                                    VLT_RESAMPLE_AUTO, write_row, &n);
}

vlt_status vlt_transform_train(const vlt_image *img, const vlt_transform_cfg *cfg,
                               uint64_t seed, uint64_t epoch, const char *key, float *out) {
    return train_rows(img, cfg, seed, epoch, key, out, NULL);
}

vlt_status vlt_transform_train_u8(const vlt_image *img, const vlt_transform_cfg *cfg, uint64_t seed, uint64_t epoch,
                                  const char *key, uint8_t *out) {
    return train_rows(img, cfg, seed, epoch, key, NULL, out);
}

vlt_status vlt_transform_eval(const vlt_image *img, const vlt_transform_cfg *cfg, float *out) {
    return eval_rows(img, cfg, out, NULL);
}

vlt_status vlt_transform_eval_u8(const vlt_image *img, const vlt_transform_cfg *cfg, uint8_t *out) {
    return eval_rows(img, cfg, NULL, out);
}
