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

// Horizontal pass: rows [0, rows) of src (stride bytes apart) -> dst rows of c->n pixels.
static vlt_status hpass_scalar(uint8_t *dst, const uint8_t *src, size_t stride, int rows, const axis_coeffs *c) {
    int n = c->n;
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)y * stride;
        uint8_t *o = dst + (size_t)y * n * 3;
        for (int i = 0; i < n; i++) {
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
    return VLT_OK;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define VLT_VECTORIZE __attribute__((optimize("O3"), target_clones("avx2", "default")))
#else
#define VLT_VECTORIZE
#endif

// The inner loop of the scalar vertical pass: acc[x] += row[x] * k over one source row.
VLT_VECTORIZE static void mac_row(int32_t *restrict acc, const uint8_t *restrict row, int32_t k, int width) {
    for (int x = 0; x < width; x++) acc[x] += row[x] * k;
}

// Vertical pass: src rows (stride bytes apart, `width` bytes used) -> c->n output rows of width
// bytes. Output row i reads src rows from bounds[2i] - row0 (src starts at source row row0).
static vlt_status vpass_scalar(uint8_t *dst, const uint8_t *src, size_t stride, int row0, int width,
                               const axis_coeffs *c) {
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)width);
    if (!acc) return vlt_error_set(VLT_ERR_NOMEM, "resample: out of memory");
    for (int i = 0; i < c->n; i++) {
        const int32_t *k = c->k + (size_t)i * c->ksize;
        const uint8_t *p = src + (size_t)(c->bounds[2 * i] - row0) * stride;
        int taps = c->bounds[2 * i + 1];
        for (int x = 0; x < width; x++) acc[x] = ROUNDING;
        for (int t = 0; t < taps; t++) mac_row(acc, p + (size_t)t * stride, k[t], width);
        uint8_t *o = dst + (size_t)i * width;
        for (int x = 0; x < width; x++) o[x] = clip8(acc[x]);
    }
    free(acc);
    return VLT_OK;
}

// --- AVX2 kernels ----------------------------------------------------------------------------------
//
// Horizontal: per output pixel, groups of four taps. A 16-byte load of the window (four RGB
// pixels and four spare bytes) is broadcast to both 128-bit lanes and two byte shuffles
// zero-extend pixel t / t+1 (lanes 0 / 1) and t+2 / t+3 into int32 R, G, B, 0; each is
// multiplied by its tap's weight (pre-expanded to four lanes) and summed; the two lanes are added
// at the end. Vertical: 32 bytes of a row at a time in four int32 accumulators.

#if VLT_RESAMPLE_X86
#define AVX2 __attribute__((target("avx2")))

// The four int32 sums (R, G, B, 0) -> clip8 of each, as bytes 0..2 of the result.
AVX2 static inline uint32_t hsum_to_rgb(__m256i acc) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_srai_epi32(_mm_add_epi32(s, _mm_set1_epi32(ROUNDING)), PRECISION_BITS);
    s = _mm_packs_epi32(s, s);      // (v >> 22) clamped to int16, then to 0..255: clip8 exactly
    s = _mm_packus_epi16(s, s);
    return (uint32_t)_mm_cvtsi128_si32(s);
}

// Weights of c expanded for the kernel: (n, groups, 2, 8) int32, where group g's first vector is
// k[4g] x4 | k[4g+1] x4 and its second k[4g+2] x4 | k[4g+3] x4.
static int32_t *hpass_expand(const axis_coeffs *c, int groups) {
    int32_t *kx = aligned_alloc(32, sizeof(int32_t) * 16 * (size_t)groups * c->n);
    if (!kx) return NULL;
    for (int i = 0; i < c->n; i++) {
        const int32_t *k = c->k + (size_t)i * c->ksize;
        int32_t *e = kx + (size_t)i * groups * 16;
        for (int t = 0; t < 4 * groups; t++)
            for (int l = 0; l < 4; l++) e[4 * t + l] = t < c->ksize ? k[t] : 0;
    }
    return kx;
}

AVX2 static void hrow_avx2(uint8_t *o, const uint8_t *in, int n, const int *bounds, const int32_t *kx, int groups) {
    const __m256i sh_a = _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, -1, -1, -1, -1,
                                          3, -1, -1, -1, 4, -1, -1, -1, 5, -1, -1, -1, -1, -1, -1, -1);
    const __m256i sh_b = _mm256_setr_epi8(6, -1, -1, -1, 7, -1, -1, -1, 8, -1, -1, -1, -1, -1, -1, -1,
                                          9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1, -1, -1, -1, -1);
    for (int i = 0; i < n; i++) {
        const uint8_t *p = in + (size_t)bounds[2 * i] * 3;
        const __m256i *k = (const __m256i *)(kx + (size_t)i * groups * 16);
        int ng = (bounds[2 * i + 1] + 3) >> 2;
        __m256i acc = _mm256_setzero_si256();
        for (int g = 0; g < ng; g++) {
            __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 12 * g)));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_shuffle_epi8(v, sh_a), _mm256_load_si256(k + 2 * g)));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_shuffle_epi8(v, sh_b), _mm256_load_si256(k + 2 * g + 1)));
        }
        uint32_t rgb = hsum_to_rgb(acc);
        memcpy(o + 3 * (size_t)i, &rgb, 3);
    }
}

static vlt_status hpass_avx2(uint8_t *dst, const uint8_t *src, size_t stride, int rows, const axis_coeffs *c) {
    int groups = (c->ksize + 3) / 4;
    size_t used = (size_t)axis_end(c) * 3;
    int32_t *kx = hpass_expand(c, groups);
    uint8_t *row = calloc(used + ROW_PAD, 1);
    if (!kx || !row) {
        free(kx);
        free(row);
        return vlt_error_set(VLT_ERR_NOMEM, "resample: out of memory");
    }
    for (int y = 0; y < rows; y++) {
        memcpy(row, src + (size_t)y * stride, used);
        hrow_avx2(dst + (size_t)y * c->n * 3, row, c->n, c->bounds, kx, groups);
    }
    free(kx);
    free(row);
    return VLT_OK;
}

// acc + (8 bytes at p, zero-extended) * k.
AVX2 static inline __m256i mac8(__m256i acc, const uint8_t *p, __m256i k) {
    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_add_epi32(acc, _mm256_mullo_epi32(v, k));
}

AVX2 static inline __m256i shift8(__m256i acc) { return _mm256_srai_epi32(acc, PRECISION_BITS); }

AVX2 static void vrow_avx2(uint8_t *o, const uint8_t *p, size_t stride, const int32_t *k, int taps, int width) {
    const __m256i round = _mm256_set1_epi32(ROUNDING);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int x = 0;
    for (; x + 32 <= width; x += 32) {
        __m256i a0 = round, a1 = round, a2 = round, a3 = round;
        for (int t = 0; t < taps; t++) {
            const uint8_t *r = p + (size_t)t * stride + x;
            __m256i kt = _mm256_set1_epi32(k[t]);
            a0 = mac8(a0, r, kt);
            a1 = mac8(a1, r + 8, kt);
            a2 = mac8(a2, r + 16, kt);
            a3 = mac8(a3, r + 24, kt);
        }
        // packs / packus work within 128-bit lanes: bytes come out as a0 a1 a2 a3 (low halves),
        // a0 a1 a2 a3 (high halves) in 4-byte groups; the permute puts them back in order.
        __m256i s01 = _mm256_packs_epi32(shift8(a0), shift8(a1));
        __m256i s23 = _mm256_packs_epi32(shift8(a2), shift8(a3));
        __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(s01, s23), order);
        _mm256_storeu_si256((__m256i *)(o + x), b);
    }
    for (; x + 8 <= width; x += 8) {
        __m256i a = round;
        for (int t = 0; t < taps; t++) a = mac8(a, p + (size_t)t * stride + x, _mm256_set1_epi32(k[t]));
        __m128i s = _mm_packs_epi32(_mm256_castsi256_si128(shift8(a)), _mm256_extracti128_si256(shift8(a), 1));
        _mm_storel_epi64((__m128i *)(o + x), _mm_packus_epi16(s, s));
    }
    for (; x < width; x++) {
        int32_t s = ROUNDING;
        for (int t = 0; t < taps; t++) s += p[(size_t)t * stride + x] * k[t];
        o[x] = clip8(s);
    }
}

static vlt_status vpass_avx2(uint8_t *dst, const uint8_t *src, size_t stride, int row0, int width,
                             const axis_coeffs *c) {
    for (int i = 0; i < c->n; i++) {
        const uint8_t *p = src + (size_t)(c->bounds[2 * i] - row0) * stride;
        vrow_avx2(dst + (size_t)i * width, p, stride, c->k + (size_t)i * c->ksize, c->bounds[2 * i + 1], width);
    }
    return VLT_OK;
}

static int have_avx2(void) { return __builtin_cpu_supports("avx2"); }
#else
static int have_avx2(void) { return 0; }
#endif

// --- the two-pass window ---------------------------------------------------------------------------

typedef vlt_status (*hpass_fn)(uint8_t *dst, const uint8_t *src, size_t stride, int rows, const axis_coeffs *c);
typedef vlt_status (*vpass_fn)(uint8_t *dst, const uint8_t *src, size_t stride, int row0, int width,
                               const axis_coeffs *c);

static int use_avx2(vlt_resample_kernel kernel) { return kernel == VLT_RESAMPLE_AUTO && have_avx2(); }

const char *vlt_resample_kernel_name(vlt_resample_kernel kernel) { return use_avx2(kernel) ? "avx2" : "scalar"; }

// Two passes through an 8-bit intermediate, in Pillow 13's order: vertical first when the height
// shrinks by more than twice what the width does ((in_h - out_h) > 2 (in_w - out_w) and
// in_h > out_h), horizontal first otherwise. The order changes the rounding of the intermediate,
// so it must match for exact results. Each output pixel depends only on its own position, so a
// window of the output is computed from just the coefficients of its rows and columns.
vlt_status vlt_resample_window(const vlt_image *img, vlt_crop_box box, int full_w, int full_h,
                               int ox, int oy, int ow, int oh, vlt_resample_kernel kernel, uint8_t *out) {
    hpass_fn hpass = hpass_scalar;
    vpass_fn vpass = vpass_scalar;
#if VLT_RESAMPLE_X86
    if (use_avx2(kernel)) {
        hpass = hpass_avx2;
        vpass = vpass_avx2;
    }
#else
    (void)kernel;
#endif
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
        int col0 = ch.bounds[0], col1 = axis_end(&ch);
        for (int i = 0; i < ow; i++) ch.bounds[2 * i] -= col0;
        size_t tw = (size_t)(col1 - col0) * 3;
        tmp = malloc((size_t)oh * tw);
        if (!tmp) { st = vlt_error_set(VLT_ERR_NOMEM, "resample: out of memory"); goto done; }
        st = vpass(tmp, src + (size_t)col0 * 3, stride, 0, (int)tw, &cv);
        if (st == VLT_OK) st = hpass(out, tmp, tw, oh, &ch);
        goto done;
    }
    // Horizontal first: only the source rows the vertical pass reads, [row0, row1).
    int row0 = oy, row1 = oy + oh;
    if (need_v) {
        row0 = cv.bounds[0];
        row1 = axis_end(&cv);
    }
    const uint8_t *mid = src + (size_t)row0 * stride + (size_t)(need_h ? 0 : ox) * 3;
    size_t mid_stride = stride;
    if (need_h) {
        tmp = malloc((size_t)(row1 - row0) * ow * 3);
        if (!tmp) { st = vlt_error_set(VLT_ERR_NOMEM, "resample: out of memory"); goto done; }
        st = hpass(tmp, src + (size_t)row0 * stride, stride, row1 - row0, &ch);
        if (st != VLT_OK) goto done;
        mid = tmp;
        mid_stride = (size_t)ow * 3;
    }
    if (need_v) {
        st = vpass(out, mid, mid_stride, row0, ow * 3, &cv);
    } else {
        for (int y = 0; y < oh; y++) memcpy(out + (size_t)y * ow * 3, mid + (size_t)y * mid_stride, (size_t)ow * 3);
    }
done:
    free(tmp);
    axis_free(&ch);
    axis_free(&cv);
    return st;
}
