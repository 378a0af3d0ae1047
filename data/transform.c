// transform.c — RandomResizedCrop / shortest-side resize + center crop / flip / normalize, with
// PIL's bicubic resampling reproduced in its own fixed-point arithmetic (see transform.h).
#include "data/transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/rng.h"

// PIL: 8-bit images are resampled with 32 - 8 - 2 = 22 fractional bits in the coefficients.
#define PRECISION_BITS 22
#define BICUBIC_SUPPORT 2.0

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

// --- PIL bicubic resampling ------------------------------------------------------------------------

static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

// One axis: taps of output positions [o0, o0 + n) of an in_size -> out_size resize.
typedef struct {
    int ksize;
    int *bounds;    // (n, 2): first input index, number of taps
    int32_t *k;     // (n, ksize): fixed-point weights
} axis_coeffs;

static void axis_free(axis_coeffs *c) {
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

static vlt_status axis_compute(axis_coeffs *c, int in_size, int out_size, int o0, int n) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = BICUBIC_SUPPORT * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)n);
    c->k = malloc(sizeof(int32_t) * (size_t)c->ksize * n);
    double *w = malloc(sizeof(double) * (size_t)c->ksize);
    if (!c->bounds || !c->k || !w) {
        free(w);
        axis_free(c);
        return vlt_error_set(VLT_ERR_NOMEM, "transform: out of memory for resize coefficients");
    }
    double ss = 1.0 / filterscale;
    for (int i = 0; i < n; i++) {
        double center = (o0 + i + 0.5) * scale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double total = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = bicubic((x + xmin - center + 0.5) * ss);
            total += w[x];
        }
        int32_t *k = c->k + (size_t)i * c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            double v = x < xmax ? (total != 0.0 ? w[x] / total : w[x]) : 0.0;
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[2 * i] = xmin;
        c->bounds[2 * i + 1] = xmax;
    }
    free(w);
    return VLT_OK;
}

static inline uint8_t clip8(int32_t v) {
    if (v >= (1 << PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

// Horizontal pass: rows [0, rows) of src (stride bytes apart) -> dst rows of n pixels.
static void resample_rows(uint8_t *dst, const uint8_t *src, size_t stride, int rows, int n, const axis_coeffs *c) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)y * stride;
        uint8_t *o = dst + (size_t)y * n * 3;
        for (int i = 0; i < n; i++) {
            const int32_t *k = c->k + (size_t)i * c->ksize;
            const uint8_t *p = in + (size_t)c->bounds[2 * i] * 3;
            int taps = c->bounds[2 * i + 1];
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < taps; x++) {
                s0 += p[3 * x] * k[x];
                s1 += p[3 * x + 1] * k[x];
                s2 += p[3 * x + 2] * k[x];
            }
            o[3 * i] = clip8(s0);
            o[3 * i + 1] = clip8(s1);
            o[3 * i + 2] = clip8(s2);
        }
    }
}

// Vertical pass: src rows (stride bytes apart, `width` bytes used) -> n output rows. Output row
// i reads src rows from bounds[2i] - row0 (src starts at source row row0).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define VLT_VECTORIZE __attribute__((optimize("O3"), target_clones("avx2", "default")))
#else
#define VLT_VECTORIZE
#endif

// The inner loop of the vertical pass: acc[x] += row[x] * k over one source row.
VLT_VECTORIZE static void mac_row(int32_t *restrict acc, const uint8_t *restrict row, int32_t k, int width) {
    for (int x = 0; x < width; x++) acc[x] += row[x] * k;
}

static vlt_status resample_cols(uint8_t *dst, const uint8_t *src, size_t stride, int row0, int width, int n,
                                const axis_coeffs *c) {
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)width);
    if (!acc) return vlt_error_set(VLT_ERR_NOMEM, "transform: out of memory");
    for (int i = 0; i < n; i++) {
        const int32_t *k = c->k + (size_t)i * c->ksize;
        const uint8_t *p = src + (size_t)(c->bounds[2 * i] - row0) * stride;
        int taps = c->bounds[2 * i + 1];
        for (int x = 0; x < width; x++) acc[x] = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < taps; t++) {
            mac_row(acc, p + (size_t)t * stride, k[t], width);
        }
        uint8_t *o = dst + (size_t)i * width;
        for (int x = 0; x < width; x++) o[x] = clip8(acc[x]);
    }
    free(acc);
    return VLT_OK;
}

// The window [ox, ox+ow) x [oy, oy+oh) of PIL's crop(box).resize((full_w, full_h), BICUBIC):
// out is uint8 HWC (oh, ow, 3). Two passes through an 8-bit intermediate, in Pillow 13's order:
// vertical first when the height shrinks by more than twice what the width does
// ((in_h - out_h) > 2 (in_w - out_w) and in_h > out_h), horizontal first otherwise. The order
// changes the rounding of the intermediate, so it must match for exact results.
static vlt_status resize_window(const vlt_image *img, vlt_crop_box box, int full_w, int full_h,
                                int ox, int oy, int ow, int oh, uint8_t *out) {
    size_t stride = (size_t)img->width * 3;
    const uint8_t *src = img->rgb + (size_t)box.y * stride + (size_t)box.x * 3;
    int need_h = full_w != box.w, need_v = full_h != box.h;
    int v_first = need_h && need_v && box.h > full_h && (box.h - full_h) > 2 * (box.w - full_w);
    axis_coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL;
    vlt_status st = VLT_OK;
    if (need_v) VLT_TRY(axis_compute(&cv, box.h, full_h, oy, oh));
    if (need_h) {
        st = axis_compute(&ch, box.w, full_w, ox, ow);
        if (st != VLT_OK) goto done;
    }
    if (v_first) {
        // Only the source columns the horizontal pass reads: [col0, col1).
        int col0 = ch.bounds[0], col1 = ch.bounds[2 * (ow - 1)] + ch.bounds[2 * (ow - 1) + 1];
        for (int i = 0; i < ow; i++) ch.bounds[2 * i] -= col0;
        size_t tw = (size_t)(col1 - col0) * 3;
        tmp = malloc((size_t)oh * tw);
        if (!tmp) { st = vlt_error_set(VLT_ERR_NOMEM, "transform: out of memory"); goto done; }
        st = resample_cols(tmp, src + (size_t)col0 * 3, stride, 0, (int)tw, oh, &cv);
        if (st == VLT_OK) resample_rows(out, tmp, tw, oh, ow, &ch);
        goto done;
    }
    // Horizontal first: only the source rows the vertical pass reads, [row0, row1).
    int row0 = oy, row1 = oy + oh;
    if (need_v) {
        row0 = cv.bounds[0];
        row1 = cv.bounds[2 * (oh - 1)] + cv.bounds[2 * (oh - 1) + 1];
    }
    const uint8_t *mid = src + (size_t)row0 * stride + (size_t)(need_h ? 0 : ox) * 3;
    size_t mid_stride = stride;
    if (need_h) {
        tmp = malloc((size_t)(row1 - row0) * ow * 3);
        if (!tmp) { st = vlt_error_set(VLT_ERR_NOMEM, "transform: out of memory"); goto done; }
        resample_rows(tmp, src + (size_t)row0 * stride, stride, row1 - row0, ow, &ch);
        mid = tmp;
        mid_stride = (size_t)ow * 3;
    }
    if (need_v) {
        st = resample_cols(out, mid, mid_stride, row0, ow * 3, oh, &cv);
    } else {
        for (int y = 0; y < oh; y++) memcpy(out + (size_t)y * ow * 3, mid + (size_t)y * mid_stride, (size_t)ow * 3);
    }
done:
    free(tmp);
    axis_free(&ch);
    axis_free(&cv);
    return st;
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
    return resize_window(img, box, out_w, out_h, 0, 0, out_w, out_h, out);
}

// --- normalize and the two pipelines ---------------------------------------------------------------

void vlt_transform_normalize(const uint8_t *hwc, int w, int h, const float mean[3], const float std[3],
                             int flip, float *out) {
    // ToTensor (v / 255 in float32) then Normalize ((x - mean) / std in float32), as a table.
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
    size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = hwc + (size_t)y * w * 3;
        float *o0 = out + (size_t)y * w, *o1 = o0 + plane, *o2 = o1 + plane;
        for (int x = 0; x < w; x++) {
            int xs = flip ? w - 1 - x : x;
            o0[x] = lut[0][row[3 * xs]];
            o1[x] = lut[1][row[3 * xs + 1]];
            o2[x] = lut[2][row[3 * xs + 2]];
        }
    }
}

static vlt_status check_cfg(const vlt_transform_cfg *cfg) {
    if (!cfg || cfg->size <= 0 || cfg->size > 16384)
        return vlt_error_set(VLT_ERR_ARG, "transform: bad output size %d", cfg ? cfg->size : 0);
    if (!(cfg->scale_min > 0 && cfg->scale_min <= cfg->scale_max) || !(cfg->ratio_min > 0 && cfg->ratio_min <= cfg->ratio_max))
        return vlt_error_set(VLT_ERR_ARG, "transform: bad scale (%g, %g) or ratio (%g, %g)",
                             cfg->scale_min, cfg->scale_max, cfg->ratio_min, cfg->ratio_max);
    return VLT_OK;
}

vlt_status vlt_transform_train(const vlt_image *img, const vlt_transform_cfg *cfg,
                               uint64_t seed, uint64_t epoch, const char *key, float *out) {
    VLT_TRY(check_cfg(cfg));
    if (!img || !img->rgb) return vlt_error_set(VLT_ERR_ARG, "transform: empty image for %s", key ? key : "?");
    int flip = 0;
    vlt_crop_box box = vlt_transform_rrc_box(img->width, img->height, cfg, seed, vlt_transform_stream(epoch, key), &flip);
    int s = cfg->size;
    uint8_t *px = malloc((size_t)s * s * 3);
    if (!px) return vlt_error_set(VLT_ERR_NOMEM, "transform: out of memory");
    vlt_status st = vlt_transform_resize(img, box, s, s, px);
    if (st == VLT_OK) vlt_transform_normalize(px, s, s, cfg->mean, cfg->std, flip, out);
    free(px);
    return st;
}

vlt_status vlt_transform_eval(const vlt_image *img, const vlt_transform_cfg *cfg, float *out) {
    VLT_TRY(check_cfg(cfg));
    VLT_TRY(check_box(img, (vlt_crop_box){0, 0, img ? img->width : 0, img ? img->height : 0}));
    int s = cfg->size, rw = 0, rh = 0;
    vlt_transform_shortest_size(img->width, img->height, s, &rw, &rh);
    if (rw < s || rh < s)
        return vlt_error_set(VLT_ERR_ARG, "transform: a %dx%d image resizes to %dx%d, smaller than %d",
                             img->width, img->height, rw, rh, s);
    vlt_crop_box c = vlt_transform_center_box(rw, rh, s);
    uint8_t *px = malloc((size_t)s * s * 3);
    if (!px) return vlt_error_set(VLT_ERR_NOMEM, "transform: out of memory");
    // Only the center window of the resized image is computed: each output pixel depends only on
    // its own position, so this equals resize-then-crop exactly.
    vlt_status st = resize_window(img, (vlt_crop_box){0, 0, img->width, img->height}, rw, rh, c.x, c.y, s, s, px);
    if (st == VLT_OK) vlt_transform_normalize(px, s, s, cfg->mean, cfg->std, 0, out);
    free(px);
    return st;
}
