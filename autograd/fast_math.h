// fast_math.h — exp and erf in plain float arithmetic on 8-lane vectors (GCC vector extensions),
// so that the GELU kernels run 8 wide (glibc's expf/erff are scalar calls). Used by the GELU
// kernels only, where inputs are finite and results below 1e-38 do not matter; softmax and
// attention keep libm's expf.
//
// exp: Cephes' expf polynomial after x = n·ln2 + r, relative error ~2e-7 on [-87, 88] (inputs
// outside are clamped there). erf: Abramowitz & Stegun 7.1.26, absolute error <= 1.5e-7.
// Compiled for AVX2 these are single instructions per lane group; for the baseline, GCC splits
// each vector operation into two SSE ones.
#ifndef VLT_FAST_MATH_H
#define VLT_FAST_MATH_H

#include <stdint.h>
#include <string.h>

// The helpers below are always inlined into their callers, so the 32-byte vector arguments never
// cross a function-call boundary; GCC's ABI note about AVX vectors does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
#define VLT_V8_INLINE static inline __attribute__((always_inline))

typedef float vlt_v8f __attribute__((vector_size(32)));
typedef int32_t vlt_v8i __attribute__((vector_size(32)));

#define VLT_V8(c) ((vlt_v8f){c, c, c, c, c, c, c, c})

// Lane-wise select: m ? a : b (m from a comparison: all ones or zero per lane).
VLT_V8_INLINE vlt_v8f vlt_v8_select(vlt_v8i m, vlt_v8f a, vlt_v8f b) {
    return (vlt_v8f)((m & (vlt_v8i)a) | (~m & (vlt_v8i)b));
}

VLT_V8_INLINE vlt_v8f vlt_v8_exp(vlt_v8f x) {
    x = vlt_v8_select(x < VLT_V8(-87.0f), VLT_V8(-87.0f), x);
    x = vlt_v8_select(x > VLT_V8(88.0f), VLT_V8(88.0f), x);
    vlt_v8f t = x * VLT_V8(1.44269504088896341f);
    t += vlt_v8_select(t < VLT_V8(0.0f), VLT_V8(-0.5f), VLT_V8(0.5f));
    vlt_v8i n = __builtin_convertvector(t, vlt_v8i);  // truncation of t ± 0.5: round to nearest
    vlt_v8f nf = __builtin_convertvector(n, vlt_v8f);
    vlt_v8f r = x - nf * VLT_V8(0.693359375f);        // ln 2, high part
    r -= nf * VLT_V8(-2.12194440e-4f);                 // ln 2, low part
    vlt_v8f p = VLT_V8(1.9875691500e-4f);
    p = p * r + VLT_V8(1.3981999507e-3f);
    p = p * r + VLT_V8(8.3334519073e-3f);
    p = p * r + VLT_V8(4.1665795894e-2f);
    p = p * r + VLT_V8(1.6666665459e-1f);
    p = p * r + VLT_V8(5.0000001201e-1f);
    p = p * r * r + r + VLT_V8(1.0f);
    vlt_v8i bits = (n + 127) << 23;  // 2^n
    return p * (vlt_v8f)bits;
}

VLT_V8_INLINE vlt_v8f vlt_v8_erf(vlt_v8f x) {
    vlt_v8i sign = (vlt_v8i)x & (vlt_v8i){INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN,
                                         INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
    vlt_v8f a = (vlt_v8f)((vlt_v8i)x ^ sign);  // |x|
    vlt_v8f t = VLT_V8(1.0f) / (VLT_V8(1.0f) + VLT_V8(0.3275911f) * a);
    vlt_v8f poly = t * (VLT_V8(0.254829592f) +
                        t * (VLT_V8(-0.284496736f) +
                             t * (VLT_V8(1.421413741f) + t * (VLT_V8(-1.453152027f) + t * VLT_V8(1.061405429f)))));
    vlt_v8f y = VLT_V8(1.0f) - poly * vlt_v8_exp(-a * a);
    return (vlt_v8f)((vlt_v8i)y | sign);  // erf is odd
}

#endif
