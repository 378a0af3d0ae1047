// ops_normalize.c — vlt_normalize_u8: the loader's ToTensor + Normalize as an op, for uint8
// batches that travel to the device as 8-bit pixels and are normalised there.
//
// Why a table: data/transform.c normalises through the same 3 x 256 table of
// ((float)v / 255 - mean) / std, so building it with the same float32 expression here makes the
// u8 path plus this op equal to the float loader bit for bit on every backend (the CUDA kernel
// reads this very table; no device division whose rounding could differ).
#include <string.h>

#include "autograd/ops_internal.h"

void vlt_normalize_u8_table(const float mean[3], const float std[3], float lut[3][256]) {
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
}

vlt_tensor *vlt_normalize_u8(const vlt_tensor *x, const float mean[3], const float std[3]) {
    if (!op_input_ok("normalize_u8", x, VLT_U8)) return NULL;
    if (x->ndim != 4 || x->shape[1] != 3) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "normalize_u8: '%s' is %s, expected (B, 3, H, W)", x->name, vlt_shape_str(x, s, sizeof s));
        return NULL;
    }
    vlt_tensor *out = op_out_on(x->device, 4, x->shape);
    if (!out) return NULL;
    float lut[3][256];
    vlt_normalize_u8_table(mean, std, lut);
    int64_t plane = (int64_t)x->shape[2] * x->shape[3], n = x->numel;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) {
        vlt_cuda_normalize_u8(vlt_u8(x), vlt_f32(out), n, plane, &lut[0][0]);
        return out;
    }
#endif
    const uint8_t *src = vlt_u8(x);
    float *dst = vlt_f32(out);
    int64_t planes = n / plane;
#pragma omp parallel for if (n > VLT_PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        const float *t = lut[p % 3];
        for (int64_t i = p * plane; i < (p + 1) * plane; i++) dst[i] = t[src[i]];
    }
    return out;
}
