// ops_cuda_elementwise.cu — add / sub / mul with trailing broadcast, the unary ops (the same
// formulas as ops_elementwise.c, in fp32), accumulate, fill, arange and the f32 <-> bf16 casts
// (bit-exact with the CPU's round-to-nearest-even).
#include <cuda_bf16.h>

#include "autograd/ops_cuda_common.h"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2 0.7071067811865476f

__global__ void binary_fwd_kernel(int kind, const float *a, const float *b, float *o, int64_t N, int64_t inner) {
    VLT_CUDA_LOOP(i, N) {
        float y = b[i % inner];
        o[i] = kind == VLT_BIN_ADD ? a[i] + y : kind == VLT_BIN_SUB ? a[i] - y : a[i] * y;
    }
}

__global__ void binary_bwd_a_kernel(int kind, const float *g, const float *b, float *ga, int64_t N, int64_t inner) {
    VLT_CUDA_LOOP(i, N) ga[i] += kind == VLT_BIN_MUL ? g[i] * b[i % inner] : g[i];
}

extern "C" void vlt_cuda_binary_fwd(int kind, const float *a, const float *b, float *out, int64_t N, int64_t inner) {
    binary_fwd_kernel<<<vlt_cuda_blocks(N), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(kind, a, b, out, N, inner);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_binary_bwd_a(int kind, const float *g, const float *b, float *ga, int64_t N, int64_t inner) {
    if (!ga) return;
    binary_bwd_a_kernel<<<vlt_cuda_blocks(N), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(kind, g, b, ga, N, inner);
    cudaCheckLaunch();
}

__device__ __forceinline__ float unary_fwd(int kind, float x, float f0, float f1) {
    switch (kind) {
    case VLT_UN_SCALE: return x * f0;
    case VLT_UN_EXP: return expf(x);
    case VLT_UN_LOG: return logf(x);
    case VLT_UN_CLAMP: return x < f0 ? f0 : x > f1 ? f1 : x;
    case VLT_UN_GELU: return 0.5f * x * (1.0f + erff(x * INV_SQRT_2));
    case VLT_UN_GELU_TANH: return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)));
    case VLT_UN_QUICK_GELU: return x / (1.0f + expf(-1.702f * x));
    case VLT_UN_LOG_SIGMOID: return fminf(x, 0.0f) - log1pf(expf(-fabsf(x)));
    }
    return 0.0f;
}

__device__ __forceinline__ float unary_grad(int kind, float x, float y, float f0, float f1) {
    switch (kind) {
    case VLT_UN_SCALE: return f0;
    case VLT_UN_EXP: return y;
    case VLT_UN_LOG: return 1.0f / x;
    case VLT_UN_CLAMP: return (x < f0 || x > f1) ? 0.0f : 1.0f;
    case VLT_UN_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT_2));
        float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
        return cdf + x * pdf;
    }
    case VLT_UN_GELU_TANH: {
        float u = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
        float t = tanhf(u);
        float du = SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x * x);
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
    case VLT_UN_QUICK_GELU: {
        float s = 1.0f / (1.0f + expf(-1.702f * x));
        return s + x * 1.702f * s * (1.0f - s);
    }
    case VLT_UN_LOG_SIGMOID: return 1.0f / (1.0f + expf(x));
    }
    return 0.0f;
}

__global__ void unary_fwd_kernel(int kind, const float *x, float *y, int64_t N, float f0, float f1) {
    VLT_CUDA_LOOP(i, N) y[i] = unary_fwd(kind, x[i], f0, f1);
}

__global__ void unary_bwd_kernel(int kind, const float *g, const float *x, const float *y, float *gx, int64_t N,
                                 float f0, float f1, bool overwrite) {
    VLT_CUDA_LOOP(i, N) {
        float d = g[i] * unary_grad(kind, x[i], y[i], f0, f1);
        gx[i] = overwrite ? d : gx[i] + d;
    }
}

extern "C" void vlt_cuda_unary_fwd(int kind, const float *x, float *y, int64_t N, float f0, float f1) {
    unary_fwd_kernel<<<vlt_cuda_blocks(N), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(kind, x, y, N, f0, f1);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_unary_bwd(int kind, const float *g, const float *x, const float *y, float *gx, int64_t N,
                                   float f0, float f1, bool overwrite) {
    unary_bwd_kernel<<<vlt_cuda_blocks(N), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(kind, g, x, y, gx, N, f0, f1,
                                                                                    overwrite);
    cudaCheckLaunch();
}

// ---- the MLP activation on bf16 activations (mixed precision, vlt_linear_act) ----
// a = act(h) with h and a bf16, 8 elements (16 bytes) per thread where aligned; fp32 arithmetic,
// the same formulas as unary_fwd.
template <int KIND>
__global__ void act_bf16_fwd_kernel(const __nv_bfloat16 *h, __nv_bfloat16 *a, int64_t n) {
    int64_t n8 = ((uintptr_t)h % 16 == 0 && (uintptr_t)a % 16 == 0) ? n / 8 : 0;
    VLT_CUDA_LOOP(i, n8) {
        uint4 raw = reinterpret_cast<const uint4 *>(h)[i];
        __nv_bfloat162 *v = reinterpret_cast<__nv_bfloat162 *>(&raw);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float2 f = __bfloat1622float2(v[j]);
            v[j] = __floats2bfloat162_rn(unary_fwd(KIND, f.x, 0.0f, 0.0f), unary_fwd(KIND, f.y, 0.0f, 0.0f));
        }
        reinterpret_cast<uint4 *>(a)[i] = raw;
    }
    VLT_CUDA_LOOP(j, n - n8 * 8) {
        int64_t k = n8 * 8 + j;
        a[k] = __float2bfloat16_rn(unary_fwd(KIND, __bfloat162float(h[k]), 0.0f, 0.0f));
    }
}

extern "C" void vlt_cuda_act_bf16_fwd(int kind, const uint16_t *h, uint16_t *a, int64_t n) {
    if (n <= 0) return;
    const __nv_bfloat16 *hb = (const __nv_bfloat16 *)h;
    __nv_bfloat16 *ab = (__nv_bfloat16 *)a;
    unsigned grid = vlt_cuda_blocks((n + 7) / 8);
    if (kind == VLT_UN_GELU) act_bf16_fwd_kernel<VLT_UN_GELU><<<grid, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(hb, ab, n);
    else if (kind == VLT_UN_QUICK_GELU)
        act_bf16_fwd_kernel<VLT_UN_QUICK_GELU><<<grid, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(hb, ab, n);
    else if (kind == VLT_UN_GELU_TANH)
        act_bf16_fwd_kernel<VLT_UN_GELU_TANH><<<grid, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(hb, ab, n);
    else {
        fprintf(stderr, "vlt: vlt_cuda_act_bf16_fwd: unsupported activation kind %d\n", kind);
        abort();
    }
    cudaCheckLaunch();
}

// Backward through the activation into the product's bf16 gradient operand: d = g · act'(h),
// dh = bf16(d) and partial[y, c] = Σ_{r ≡ y mod ny} d[r, c] (the bias gradient, summed in fp32
// before rounding). V adjacent columns per thread (2 when C is even: 8-byte g, 4-byte h and dh).
template <int KIND, int V>
__global__ void act_bf16_bwd_colsum_kernel(const float *g, const __nv_bfloat16 *h, __nv_bfloat16 *dh, float *partial,
                                           int64_t R, int64_t C, int ny) {
    int64_t c0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * V;
    int y = blockIdx.y;
    if (c0 >= C) return;
    float s[V];
#pragma unroll
    for (int v = 0; v < V; v++) s[v] = 0.0f;
    for (int64_t r = y; r < R; r += ny) {
        int64_t i = r * C + c0;
        if (V == 2) {
            float2 gv = *reinterpret_cast<const float2 *>(g + i);
            float2 hv = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(h + i));
            float d0 = gv.x * unary_grad(KIND, hv.x, 0.0f, 0.0f, 0.0f);
            float d1 = gv.y * unary_grad(KIND, hv.y, 0.0f, 0.0f, 0.0f);
            *reinterpret_cast<__nv_bfloat162 *>(dh + i) = __floats2bfloat162_rn(d0, d1);
            s[0] += d0;
            s[V - 1] += d1;
        } else {
            float d = g[i] * unary_grad(KIND, __bfloat162float(h[i]), 0.0f, 0.0f, 0.0f);
            dh[i] = __float2bfloat16_rn(d);
            s[0] += d;
        }
    }
    if (partial) {
#pragma unroll
        for (int v = 0; v < V; v++) partial[(int64_t)y * C + c0 + v] = s[v];
    }
}

template <int KIND>
static void act_bf16_bwd_launch(const float *g, const __nv_bfloat16 *h, __nv_bfloat16 *dh, float *partial, int64_t R,
                                int64_t C, int ny) {
    bool pairs = C % 2 == 0 && (uintptr_t)g % 8 == 0 && (uintptr_t)h % 4 == 0 && (uintptr_t)dh % 4 == 0;
    int64_t per = pairs ? C / 2 : C;
    dim3 grid((unsigned)((per + VLT_CUDA_THREADS - 1) / VLT_CUDA_THREADS), (unsigned)ny);
    if (pairs) act_bf16_bwd_colsum_kernel<KIND, 2><<<grid, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(g, h, dh, partial, R, C, ny);
    else act_bf16_bwd_colsum_kernel<KIND, 1><<<grid, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(g, h, dh, partial, R, C, ny);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_act_bf16_bwd_colsum(int kind, const float *g, const uint16_t *h, uint16_t *dh, int64_t R,
                                             int64_t C, float *colsum) {
    if (R <= 0 || C <= 0) return;
    int ny = (int)((R + 31) / 32);
    if (ny > 256) ny = 256;
    float *partial = colsum ? (float *)vlt_cuda_scratch((size_t)ny * (size_t)C * sizeof(float)) : nullptr;
    const __nv_bfloat16 *hb = (const __nv_bfloat16 *)h;
    __nv_bfloat16 *db = (__nv_bfloat16 *)dh;
    if (kind == VLT_UN_GELU) act_bf16_bwd_launch<VLT_UN_GELU>(g, hb, db, partial, R, C, ny);
    else if (kind == VLT_UN_QUICK_GELU) act_bf16_bwd_launch<VLT_UN_QUICK_GELU>(g, hb, db, partial, R, C, ny);
    else if (kind == VLT_UN_GELU_TANH) act_bf16_bwd_launch<VLT_UN_GELU_TANH>(g, hb, db, partial, R, C, ny);
    else {
        fprintf(stderr, "vlt: vlt_cuda_act_bf16_bwd_colsum: unsupported activation kind %d\n", kind);
        abort();
    }
    if (colsum) vlt_cuda_colsum_partials(colsum, partial, C, ny);
}

__global__ void acc_kernel(float *dst, const float *src, int64_t n) { VLT_CUDA_LOOP(i, n) dst[i] += src[i]; }
__global__ void fill_kernel(float *dst, int64_t n, float v) { VLT_CUDA_LOOP(i, n) dst[i] = v; }
__global__ void add_scalar_kernel(float *dst, float v) { dst[0] += v; }
__global__ void arange_kernel(int32_t *dst, int n) { VLT_CUDA_LOOP(i, n) dst[i] = (int32_t)i; }

extern "C" void vlt_cuda_acc(float *dst, const float *src, int64_t n) {
    if (n <= 0) return;
    acc_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(dst, src, n);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_fill(float *dst, int64_t n, float v) {
    if (n <= 0) return;
    fill_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(dst, n, v);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_add_scalar(float *dst, float v) {
    add_scalar_kernel<<<1, 1, 0, vlt_cuda_stream()>>>(dst, v);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_arange_i32(int32_t *dst, int n) {
    if (n <= 0) return;
    arange_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(dst, n);
    cudaCheckLaunch();
}

// The CPU's vlt_f32_to_bf16 / vlt_bf16_to_f32, bit for bit.
__global__ void f32_to_bf16_kernel(uint16_t *dst, const float *src, int64_t n) {
    VLT_CUDA_LOOP(i, n) {
        uint32_t u = __float_as_uint(src[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            dst[i] = (uint16_t)((u >> 16) | 0x40);
        } else {
            u += 0x7fffu + ((u >> 16) & 1u);
            dst[i] = (uint16_t)(u >> 16);
        }
    }
}

__global__ void bf16_to_f32_kernel(float *dst, const uint16_t *src, int64_t n) {
    VLT_CUDA_LOOP(i, n) dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}

extern "C" void vlt_cuda_cast_f32_bf16(uint16_t *dst, const float *src, int64_t n) {
    f32_to_bf16_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(dst, src, n);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_cast_bf16_f32(float *dst, const uint16_t *src, int64_t n) {
    bf16_to_f32_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(dst, src, n);
    cudaCheckLaunch();
}
