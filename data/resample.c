// resample.c — PIL's fixed-point bicubic resampling of 8-bit RGB: coefficients, the horizontal
// and vertical passes (scalar reference and AVX2), and the two-pass window (see resample.h).
#include "data/resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VLT_RESAMPLE_X86 1
#include <immintrin.h>
#else
#define VLT_RESAMPLE_X86 0
#endif

// PIL: 8-bit images are resampled with 32 - 8 - 2 = 22 fractional bits in the coefficients.
#define PRECISION_BITS 22
#define ROUNDING (1 << (PRECISION_BITS - 1))
#define BICUBIC_SUPPORT 2.0
// Zero bytes after each row copy the AVX2 horizontal kernel reads (it loads whole 16-byte groups
// of four pixels; the weights past a window are zero).
#define ROW_PAD 32

static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

// One axis: taps of output positions [o0, o0 + n) of an in_size -> out_size resize.
typedef struct {
    int n, ksize;
    int *bounds;    // (n, 2): first input index, number of taps
    int32_t *k;     // (n, ksize): fixed-point weights, zero past each window
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
    c->n = n;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)n);
    c->k = malloc(sizeof(int32_t) * (size_t)c->ksize * n);
    double *w = malloc(sizeof(double) * (size_t)c->ksize);
    if (!c->bounds || !c->k || !w) {
        free(w);
        axis_free(c);
        return vlt_error_set(VLT_ERR_NOMEM, "resample: out of memory for resize coefficients");
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

// One past the last input index any output position reads.
static int axis_end(const axis_coeffs *c) {
    int end = 0;
    for (int i = 0; i < c->n; i++) {
        int e = c->bounds[2 * i] + c->bounds[2 * i + 1];
        if (e > end) end = e;
    }
    return end;
}

static inline uint8_t clip8(int32_t v) {
    if (v >= (1 << PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

// --- scalar kernels (the reference) ----------------------------------------------------------------
//
// A kernel pair works on one output row at a time. hrow: one source row (in, RGB) -> c->n output
// pixels. vrow: output row = sum over taps t of rows[t] * k[t], `width` bytes.

static void hrow_scalar(uint8_t *o, const uint8_t *in, const axis_coeffs *c, const int32_t *kx) {
    (void)kx;
    for (int i = 0; i < c->n; i++) {
        const int32_t *k = c->k + (size_t)i * c->ksize;
        const uint8_t *p = in + (size_t)c->bounds[2 * i] * 3;
        int taps = c->bounds[2 * i + 1];
        int32_t s0 = ROUNDING, s1 = s0, s2 = s0;
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

static void vrow_scalar(uint8_t *o, const uint8_t *const *rows, const int32_t *k, int taps, int width, int32_t *acc) {
    for (int x = 0; x < width; x++) acc[x] = ROUNDING;
    for (int t = 0; t < taps; t++) {
        const uint8_t *r = rows[t];
        int32_t kt = k[t];
        for (int x = 0; x < width; x++) acc[x] += r[x] * kt;
    }
    for (int x = 0; x < width; x++) o[x] = clip8(acc[x]);
}

// --- AVX2 kernels ----------------------------------------------------------------------------------
//
// Horizontal: per output pixel, groups of four taps. A 16-byte load of the window (four RGB
// pixels and four spare bytes) is broadcast to both 128-bit lanes and two byte shuffles
// zero-extend pixel t / t+1 (lanes 0 / 1) and t+2 / t+3 into int32 R, G, B, 0; each is
// multiplied by its tap's weight (pre-expanded to four lanes) and summed; the two lanes are added
// at the end. The loads reach up to 13 bytes past a window, so a source row must be followed by
// ROW_PAD readable bytes (the weights there are zero). Vertical: 32 bytes of a row at a time in
// four int32 accumulators, then 8, then single bytes.

// Weights of c expanded for hrow_avx2: (n, groups, 2, 8) int32, where group g's first vector is
// k[4g] x4 | k[4g+1] x4 and its second k[4g+2] x4 | k[4g+3] x4.
static int hgroups(const axis_coeffs *c) { return (c->ksize + 3) / 4; }

static void hexpand(const axis_coeffs *c, int32_t *kx) {
    int groups = hgroups(c);
    for (int i = 0; i < c->n; i++) {
        const int32_t *k = c->k + (size_t)i * c->ksize;
        int32_t *e = kx + (size_t)i * groups * 16;
        for (int t = 0; t < 4 * groups; t++)
            for (int l = 0; l < 4; l++) e[4 * t + l] = t < c->ksize ? k[t] : 0;
    }
}

#if VLT_RESAMPLE_X86
#define AVX2 __attribute__((target("avx2")))

// Byte shuffles that zero-extend pixels t, t+1 (sh_a) and t+2, t+3 (sh_b) of a 16-byte load
// broadcast to both lanes into int32 R, G, B, 0 (lane 0: the first pixel, lane 1: the second).
#define SH_A _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, -1, -1, -1, -1, \
                              3, -1, -1, -1, 4, -1, -1, -1, 5, -1, -1, -1, -1, -1, -1, -1)
#define SH_B _mm256_setr_epi8(6, -1, -1, -1, 7, -1, -1, -1, 8, -1, -1, -1, -1, -1, -1, -1, \
                              9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1, -1, -1, -1, -1)

// Output pixel i's sums, split over the two lanes: R, G, B, 0 | R, G, B, 0 (the rounding term is
// in lane 0).
AVX2 static inline __m256i hpixel(const uint8_t *in, const axis_coeffs *c, const int32_t *kx, int groups, int i) {
    const uint8_t *p = in + (size_t)c->bounds[2 * i] * 3;
    const __m256i *k = (const __m256i *)(kx + (size_t)i * groups * 16);
    int ng = (c->bounds[2 * i + 1] + 3) >> 2;
    __m256i acc = _mm256_setr_epi32(ROUNDING, ROUNDING, ROUNDING, 0, 0, 0, 0, 0);
    for (int g = 0; g < ng; g++) {
        __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 12 * g)));
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_shuffle_epi8(v, SH_A), _mm256_load_si256(k + 2 * g)));
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_shuffle_epi8(v, SH_B), _mm256_load_si256(k + 2 * g + 1)));
    }
    return acc;
}

// Lane sums of two pixels: a's R, G, B, 0 | b's R, G, B, 0.
AVX2 static inline __m256i hfold(__m256i a, __m256i b) {
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// Four pixels at a time: the lanes of each pair are folded together, shifted, packed with
// saturation (packs to int16, packus to 0..255: clip8 exactly) and compacted to 12 bytes.
AVX2 static void hrow_avx2(uint8_t *o, const uint8_t *in, const axis_coeffs *c, const int32_t *kx) {
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5);
    const __m128i compact = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    int groups = hgroups(c), n = c->n, i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256i ab = hfold(hpixel(in, c, kx, groups, i), hpixel(in, c, kx, groups, i + 1));
        __m256i cd = hfold(hpixel(in, c, kx, groups, i + 2), hpixel(in, c, kx, groups, i + 3));
        __m256i s = _mm256_packs_epi32(_mm256_srai_epi32(ab, PRECISION_BITS), _mm256_srai_epi32(cd, PRECISION_BITS));
        s = _mm256_packus_epi16(s, s);          // dwords: a c a c | b d b d
        __m128i r = _mm_shuffle_epi8(_mm256_castsi256_si128(_mm256_permutevar8x32_epi32(s, order)), compact);
        _mm_storel_epi64((__m128i *)(o + 3 * (size_t)i), r);
        uint32_t last = (uint32_t)_mm_extract_epi32(r, 2);
        memcpy(o + 3 * (size_t)i + 8, &last, 4);
    }
    for (; i < n; i++) {
        __m256i a = hpixel(in, c, kx, groups, i);
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        s = _mm_srai_epi32(s, PRECISION_BITS);
        s = _mm_packs_epi32(s, s);
        s = _mm_packus_epi16(s, s);
        uint32_t rgb = (uint32_t)_mm_cvtsi128_si32(s);
        memcpy(o + 3 * (size_t)i, &rgb, 3);
    }
}

// acc + (8 bytes at p, zero-extended) * k.
AVX2 static inline __m256i mac8(__m256i acc, const uint8_t *p, __m256i k) {
    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_add_epi32(acc, _mm256_mullo_epi32(v, k));
}

AVX2 static inline __m256i shift22(__m256i acc) { return _mm256_srai_epi32(acc, PRECISION_BITS); }

AVX2 static void vrow_avx2(uint8_t *o, const uint8_t *const *rows, const int32_t *k, int taps, int width, int32_t *acc) {
    (void)acc;
    const __m256i round = _mm256_set1_epi32(ROUNDING);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int x = 0;
    for (; x + 32 <= width; x += 32) {
        __m256i a0 = round, a1 = round, a2 = round, a3 = round;
        for (int t = 0; t < taps; t++) {
            const uint8_t *r = rows[t] + x;
            __m256i kt = _mm256_set1_epi32(k[t]);
            a0 = mac8(a0, r, kt);
            a1 = mac8(a1, r + 8, kt);
            a2 = mac8(a2, r + 16, kt);
            a3 = mac8(a3, r + 24, kt);
        }
        // packs / packus work within 128-bit lanes: the bytes come out as the low halves of
        // a0 a1 a2 a3, then their high halves, in 4-byte groups; the permute restores the order.
        __m256i s01 = _mm256_packs_epi32(shift22(a0), shift22(a1));
        __m256i s23 = _mm256_packs_epi32(shift22(a2), shift22(a3));
        __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(s01, s23), order);
        _mm256_storeu_si256((__m256i *)(o + x), b);
    }
    for (; x + 8 <= width; x += 8) {
        __m256i a = round;
        for (int t = 0; t < taps; t++) a = mac8(a, rows[t] + x, _mm256_set1_epi32(k[t]));
        a = shift22(a);
        __m128i s = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        _mm_storel_epi64((__m128i *)(o + x), _mm_packus_epi16(s, s));
    }
    for (; x < width; x++) {
        int32_t s = ROUNDING;
        for (int t = 0; t < taps; t++) s += rows[t][x] * k[t];
        o[x] = clip8(s);
    }
}

static int have_avx2(void) { return __builtin_cpu_supports("avx2"); }
#else
static int have_avx2(void) { return 0; }
#endif

// --- the two-pass window, a row at a time ----------------------------------------------------------

typedef struct {
    void (*hrow)(uint8_t *o, const uint8_t *in, const axis_coeffs *c, const int32_t *kx);
    void (*vrow)(uint8_t *o, const uint8_t *const *rows, const int32_t *k, int taps, int width, int32_t *acc);
    int simd;
} kernels;

static int use_avx2(vlt_resample_kernel kernel) { return kernel == VLT_RESAMPLE_AUTO && have_avx2(); }

const char *vlt_resample_kernel_name(vlt_resample_kernel kernel) { return use_avx2(kernel) ? "avx2" : "scalar"; }

static kernels pick_kernels(vlt_resample_kernel kernel) {
    kernels k = {hrow_scalar, vrow_scalar, 0};
#if VLT_RESAMPLE_X86
    if (use_avx2(kernel)) k = (kernels){hrow_avx2, vrow_avx2, 1};
#else
    (void)kernel;
#endif
    return k;
}

// Everything one window needs besides the image: coefficients, scratch rows, where rows go.
typedef struct {
    kernels kern;
    axis_coeffs ch, cv;
    int need_h, need_v, v_first;
    int ow, oh;
    uint8_t *scratch;       // one allocation holding the pieces below
    int32_t *kx;            // AVX2 horizontal weights (hexpand)
    int32_t *acc;           // vrow_scalar's accumulators (width ints)
    uint8_t *ring;          // horizontal-first: the last cv.ksize horizontally resampled rows
    size_t ring_stride;
    uint8_t *src_row;       // a source row copy followed by ROW_PAD zero bytes (hrow_avx2)
    const uint8_t **rows;   // vrow's row pointers (cv.ksize)
    uint8_t *out_row;       // an output row, when rows go to a callback
    uint8_t *out;           // else (oh, ow * 3) bytes
    vlt_resample_row_fn fn;
    void *ctx;
} window;

static uint8_t *dst_row(window *w, int y) { return w->out ? w->out + (size_t)y * w->ow * 3 : w->out_row; }
static void emit(window *w, int y) {
    if (!w->out) w->fn(w->ctx, y, w->out_row);
}

// Carves the scratch pieces out of one allocation (32-byte aligned each).
static vlt_status window_alloc(window *w, size_t src_bytes) {
    size_t row = (size_t)w->ow * 3, width = w->v_first ? src_bytes : row;
    size_t kx = w->kern.simd && w->need_h ? sizeof(int32_t) * 16 * (size_t)hgroups(&w->ch) * w->ch.n : 0;
    size_t ring = w->need_v && !w->v_first ? (size_t)w->cv.ksize : 0;
    size_t sizes[6] = {kx, sizeof(int32_t) * width, ring * (row + 32), src_bytes + ROW_PAD,
                       sizeof(uint8_t *) * (size_t)(w->need_v ? w->cv.ksize : 1), w->out ? 0 : row};
    size_t total = 0;
    for (int i = 0; i < 6; i++) total += (sizes[i] + 31) / 32 * 32;
    w->scratch = aligned_alloc(32, total ? total : 32);
    if (!w->scratch) return vlt_error_set(VLT_ERR_NOMEM, "resample: out of memory (%zu bytes)", total);
    uint8_t *p = w->scratch;
    void *piece[6];
    for (int i = 0; i < 6; i++) {
        piece[i] = p;
        p += (sizes[i] + 31) / 32 * 32;
    }
    w->kx = piece[0];
    w->acc = piece[1];
    w->ring = piece[2];
    w->ring_stride = row + 32;
    w->src_row = piece[3];
    memset(w->src_row + src_bytes, 0, ROW_PAD);
    w->rows = piece[4];
    w->out_row = piece[5];
    if (kx) hexpand(&w->ch, w->kx);
    return VLT_OK;
}

// hrow on source row `in` of `used` bytes: read in place when ROW_PAD more bytes are readable
// before `end`, else from a padded copy.
static void hrow_at(window *w, uint8_t *o, const uint8_t *in, size_t used, const uint8_t *end) {
    if (w->kern.simd && (size_t)(end - in) < used + ROW_PAD) {
        memcpy(w->src_row, in, used);
        in = w->src_row;
    }
    w->kern.hrow(o, in, &w->ch, w->kx);
}

static void vrow_at(window *w, uint8_t *o, int i, int width) {
    const int32_t *k = w->cv.k + (size_t)i * w->cv.ksize;
    w->kern.vrow(o, w->rows, k, w->cv.bounds[2 * i + 1], width, w->acc);
}

// Two passes through an 8-bit intermediate, in Pillow 13's order: vertical first when the height
// shrinks by more than twice what the width does ((in_h - out_h) > 2 (in_w - out_w) and
// in_h > out_h), horizontal first otherwise. The order changes the rounding of the intermediate,
// so it must match for exact results. Each output pixel depends only on its own position, so a
// window of the output needs just the coefficients of its rows and columns. Rows are produced in
// order: horizontal-first keeps the last cv.ksize horizontally resampled source rows in a ring;
// vertical-first resamples one row vertically, then horizontally.
static vlt_status run_window(window *w, const vlt_image *img, vlt_crop_box box, int ox, int oy) {
    size_t stride = (size_t)img->width * 3;
    const uint8_t *end = img->rgb + stride * img->height;
    const uint8_t *src = img->rgb + (size_t)box.y * stride + (size_t)box.x * 3;
    int ow = w->ow, oh = w->oh;
    size_t row = (size_t)ow * 3;
    if (w->v_first) {
        // Only the source columns the horizontal pass reads: [col0, col1).
        int col0 = w->ch.bounds[0], col1 = axis_end(&w->ch);
        for (int i = 0; i < ow; i++) w->ch.bounds[2 * i] -= col0;
        size_t tw = (size_t)(col1 - col0) * 3;
        VLT_TRY(window_alloc(w, tw));
        for (int i = 0; i < oh; i++) {
            for (int t = 0; t < w->cv.bounds[2 * i + 1]; t++)
                w->rows[t] = src + (size_t)(w->cv.bounds[2 * i] + t) * stride + (size_t)col0 * 3;
            vrow_at(w, w->src_row, i, (int)tw);    // src_row keeps its ROW_PAD zero bytes
            w->kern.hrow(dst_row(w, i), w->src_row, &w->ch, w->kx);
            emit(w, i);
        }
        return VLT_OK;
    }
    size_t used = w->need_h ? (size_t)axis_end(&w->ch) * 3 : 0;
    VLT_TRY(window_alloc(w, used));
    if (!w->need_v) {
        for (int i = 0; i < oh; i++) {
            const uint8_t *in = src + (size_t)(oy + i) * stride;
            if (w->need_h) hrow_at(w, dst_row(w, i), in, used, end);
            else memcpy(dst_row(w, i), in + (size_t)ox * 3, row);
            emit(w, i);
        }
        return VLT_OK;
    }
    int ring = w->cv.ksize, next = w->cv.bounds[0];   // the next source row to resample horizontally
    for (int i = 0; i < oh; i++) {
        int y0 = w->cv.bounds[2 * i], taps = w->cv.bounds[2 * i + 1];
        for (; w->need_h && next < y0 + taps; next++) {
            if (next < y0) continue;                      // rows no output row reads
            hrow_at(w, w->ring + (size_t)(next % ring) * w->ring_stride, src + (size_t)next * stride, used, end);
        }
        for (int t = 0; t < taps; t++)
            w->rows[t] = w->need_h ? w->ring + (size_t)((y0 + t) % ring) * w->ring_stride
                                   : src + (size_t)(y0 + t) * stride + (size_t)ox * 3;
        vrow_at(w, dst_row(w, i), i, (int)row);
        emit(w, i);
    }
    return VLT_OK;
}

static vlt_status resample(const vlt_image *img, vlt_crop_box box, int full_w, int full_h, int ox, int oy,
                           int ow, int oh, vlt_resample_kernel kernel, uint8_t *out, vlt_resample_row_fn fn,
                           void *ctx) {
    window w = {.kern = pick_kernels(kernel), .ow = ow, .oh = oh, .out = out, .fn = fn, .ctx = ctx};
    w.need_h = full_w != box.w;
    w.need_v = full_h != box.h;
    w.v_first = w.need_h && w.need_v && box.h > full_h && (box.h - full_h) > 2 * (box.w - full_w);
    vlt_status st = VLT_OK;
    if (w.need_v) st = axis_compute(&w.cv, box.h, full_h, oy, oh);
    if (st == VLT_OK && w.need_h) st = axis_compute(&w.ch, box.w, full_w, ox, ow);
    if (st == VLT_OK) st = run_window(&w, img, box, ox, oy);
    free(w.scratch);
    axis_free(&w.ch);
    axis_free(&w.cv);
    return st;
}

vlt_status vlt_resample_window(const vlt_image *img, vlt_crop_box box, int full_w, int full_h,
                               int ox, int oy, int ow, int oh, vlt_resample_kernel kernel, uint8_t *out) {
    return resample(img, box, full_w, full_h, ox, oy, ow, oh, kernel, out, NULL, NULL);
}

vlt_status vlt_resample_window_rows(const vlt_image *img, vlt_crop_box box, int full_w, int full_h,
                                    int ox, int oy, int ow, int oh, vlt_resample_kernel kernel,
                                    vlt_resample_row_fn fn, void *ctx) {
    return resample(img, box, full_w, full_h, ox, oy, ow, oh, kernel, NULL, fn, ctx);
}
