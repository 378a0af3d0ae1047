// ops_cuda_nn.cu — row-wise ops over the last dim: sums, layernorm (fp32 statistics), softmax and
// log_softmax, l2 normalize, cross-entropy (log-softmax fused with the loss), argmax.
//
// One block of ROW_THREADS threads per row; block reductions in a fixed order (deterministic).
// The parameter gradients of layernorm are two-stage column sums (no atomics).
#include <cuda_bf16.h>

#include "autograd/ops_cuda_common.h"

#define ROW_THREADS 256

__global__ void row_sum_kernel(const float *x, float *out, int64_t C, float k) {
    __shared__ float sh[32];
    const float *xr = x + (int64_t)blockIdx.x * C;
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += xr[c];
    s = vlt_block_sum(s, sh);
    if (threadIdx.x == 0) out[blockIdx.x] = s * k;
}

extern "C" void vlt_cuda_row_sum(const float *x, float *out, int64_t R, int64_t C, float k) {
    row_sum_kernel<<<(unsigned)R, ROW_THREADS, 0, vlt_cuda_stream()>>>(x, out, C, k);
    cudaCheckLaunch();
}

__global__ void row_bcast_acc_kernel(float *gx, const float *g, int64_t R, int64_t C, float k) {
    VLT_CUDA_LOOP(i, R * C) gx[i] += k * g[i / C];
}

extern "C" void vlt_cuda_row_bcast_acc(float *gx, const float *g, int64_t R, int64_t C, float k) {
    row_bcast_acc_kernel<<<vlt_cuda_blocks(R * C), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(gx, g, R, C, k);
    cudaCheckLaunch();
}

// ---- layernorm ----
__global__ void layernorm_fwd_kernel(const float *x, const float *w, const float *b, float *y, float *stats, int C,
                                     float eps) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    const float *xr = x + r * C;
    float s = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += xr[c];
    float mean = vlt_block_sum(s, sh) / C;
    float s2 = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float d = xr[c] - mean;
        s2 += d * d;
    }
    float rstd = 1.0f / sqrtf(vlt_block_sum(s2, sh) / C + eps);
    if (threadIdx.x == 0) {
        stats[2 * r] = mean;
        stats[2 * r + 1] = rstd;
    }
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        y[r * C + c] = (xr[c] - mean) * rstd * (w ? w[c] : 1.0f) + (b ? b[c] : 0.0f);
}

// Warp-per-row layernorm (C <= 32·K): each lane keeps its K columns (c = lane + 32·k) of x (and,
// backward, of g) in registers, so a row is read from memory once; statistics by warp shuffles
// (fixed order: deterministic). 8 warps per block. The block-per-row kernels above remain for
// wider rows.
#define LN_WARPS 8

__device__ __forceinline__ void ln_store(float *y, int64_t i, float v) { y[i] = v; }
__device__ __forceinline__ void ln_store(__nv_bfloat16 *y, int64_t i, float v) { y[i] = __float2bfloat16_rn(v); }

template <int K, typename OutT>
__global__ void __launch_bounds__(LN_WARPS * 32) layernorm_fwd_warp_kernel(const float *x, const float *w,
                                                                           const float *b, OutT *y, float *stats,
                                                                           int64_t R, int C, float eps) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (r >= R) return;
    const float *xr = x + r * C;
    float v[K];
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = lane + 32 * k;
        v[k] = c < C ? xr[c] : 0.0f;
        s += v[k];
    }
    float mean = vlt_warp_sum(s) / C;
    float s2 = 0.0f;
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = lane + 32 * k;
        float d = c < C ? v[k] - mean : 0.0f;
        s2 += d * d;
    }
    float rstd = 1.0f / sqrtf(vlt_warp_sum(s2) / C + eps);
    if (lane == 0) {
        stats[2 * r] = mean;
        stats[2 * r + 1] = rstd;
    }
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = lane + 32 * k;
        if (c < C) ln_store(y, r * C + c, (v[k] - mean) * rstd * (w ? w[c] : 1.0f) + (b ? b[c] : 0.0f));
    }
}

template <typename OutT>
static bool layernorm_fwd_warp(const float *x, const float *w, const float *b, OutT *y, float *stats, int64_t R, int C,
                               float eps) {
    unsigned grid = (unsigned)((R + LN_WARPS - 1) / LN_WARPS);
    cudaStream_t st = vlt_cuda_stream();
    if (C <= 128) layernorm_fwd_warp_kernel<4, OutT><<<grid, LN_WARPS * 32, 0, st>>>(x, w, b, y, stats, R, C, eps);
    else if (C <= 256) layernorm_fwd_warp_kernel<8, OutT><<<grid, LN_WARPS * 32, 0, st>>>(x, w, b, y, stats, R, C, eps);
    else if (C <= 512) layernorm_fwd_warp_kernel<16, OutT><<<grid, LN_WARPS * 32, 0, st>>>(x, w, b, y, stats, R, C, eps);
    else if (C <= 768) layernorm_fwd_warp_kernel<24, OutT><<<grid, LN_WARPS * 32, 0, st>>>(x, w, b, y, stats, R, C, eps);
    else if (C <= 1024) layernorm_fwd_warp_kernel<32, OutT><<<grid, LN_WARPS * 32, 0, st>>>(x, w, b, y, stats, R, C, eps);
    else return false;
    cudaCheckLaunch();
    return true;
}

extern "C" void vlt_cuda_layernorm_fwd(const float *x, const float *w, const float *b, float *y, float *stats,
                                       int64_t R, int C, float eps) {
    if (R <= 0) return;
    if (layernorm_fwd_warp(x, w, b, y, stats, R, C, eps)) return;
    layernorm_fwd_kernel<<<(unsigned)R, ROW_THREADS, 0, vlt_cuda_stream()>>>(x, w, b, y, stats, C, eps);
    cudaCheckLaunch();
}

extern "C" int vlt_cuda_layernorm_fwd_bf16(const float *x, const float *w, const float *b, uint16_t *y, float *stats,
                                           int64_t R, int C, float eps) {
    if (R <= 0) return 1;
    return layernorm_fwd_warp(x, w, b, (__nv_bfloat16 *)y, stats, R, C, eps) ? 1 : 0;
}

// Backward, warp per row over a grid-stride set of rows: dx written (or added) per row; each lane
// sums its columns' dw = Σ g·x̂ and db = Σ g over the warp's rows in registers; the block adds
// its warps' sums in warp order into shared memory and writes partial[block, c] (w then b);
// a second kernel sums the blocks in order. x and g are read once.
template <int K>
__global__ void __launch_bounds__(LN_WARPS * 32) layernorm_bwd_warp_kernel(const float *g, const float *x,
                                                                           const float *w, const float *stats,
                                                                           float *gx, float *pw, float *pb, int64_t R,
                                                                           int C, bool overwrite) {
    extern __shared__ float sh[];  // (2, C): the block's dw then db
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float wv[K], dw[K], db[K];
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = lane + 32 * k;
        wv[k] = c < C && w ? w[c] : 1.0f;
        dw[k] = 0.0f;
        db[k] = 0.0f;
    }
    int64_t nwarps = (int64_t)gridDim.x * LN_WARPS;
    for (int64_t r = (int64_t)blockIdx.x * LN_WARPS + warp; r < R; r += nwarps) {
        const float *xr = x + r * C, *gr = g + r * C;
        float mean = stats[2 * r], rstd = stats[2 * r + 1];
        float xh[K], gv[K];
        float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
        for (int k = 0; k < K; k++) {
            int c = lane + 32 * k;
            bool in = c < C;
            gv[k] = in ? gr[c] : 0.0f;
            xh[k] = in ? (xr[c] - mean) * rstd : 0.0f;
            float dxh = gv[k] * wv[k];
            s1 += dxh;
            s2 += dxh * xh[k];
            dw[k] += gv[k] * xh[k];
            db[k] += gv[k];
        }
        if (gx) {
            float m1 = vlt_warp_sum(s1) / C, m2 = vlt_warp_sum(s2) / C;
            float *gxr = gx + r * C;
#pragma unroll
            for (int k = 0; k < K; k++) {
                int c = lane + 32 * k;
                if (c < C) {
                    float d = rstd * (gv[k] * wv[k] - m1 - xh[k] * m2);
                    gxr[c] = overwrite ? d : gxr[c] + d;
                }
            }
        }
    }
    if (!pw) return;
    for (int i = threadIdx.x; i < 2 * C; i += blockDim.x) sh[i] = 0.0f;
    __syncthreads();
    for (int wi = 0; wi < LN_WARPS; wi++) {  // warp order: deterministic
        if (warp == wi) {
#pragma unroll
            for (int k = 0; k < K; k++) {
                int c = lane + 32 * k;
                if (c < C) {
                    sh[c] += dw[k];
                    sh[C + c] += db[k];
                }
            }
        }
        __syncthreads();
    }
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        pw[(int64_t)blockIdx.x * C + c] = sh[c];
        pb[(int64_t)blockIdx.x * C + c] = sh[C + c];
    }
}

template <int K>
static void layernorm_bwd_warp_launch(unsigned grid, const float *g, const float *x, const float *w,
                                      const float *stats, float *gx, float *pw, float *pb, int64_t R, int C,
                                      bool overwrite) {
    layernorm_bwd_warp_kernel<K><<<grid, LN_WARPS * 32, 2 * (size_t)C * sizeof(float), vlt_cuda_stream()>>>(
        g, x, w, stats, gx, pw, pb, R, C, overwrite);
    cudaCheckLaunch();
}

__global__ void layernorm_bwd_x_kernel(const float *g, const float *x, const float *w, const float *stats, float *gx,
                                       int C, bool overwrite) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    const float *xr = x + r * C, *gr = g + r * C;
    float mean = stats[2 * r], rstd = stats[2 * r + 1];
    float s1 = 0.0f, s2 = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float xhat = (xr[c] - mean) * rstd;
        float dxh = gr[c] * (w ? w[c] : 1.0f);
        s1 += dxh;
        s2 += dxh * xhat;
    }
    float m1 = vlt_block_sum(s1, sh) / C;
    float m2 = vlt_block_sum(s2, sh) / C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float xhat = (xr[c] - mean) * rstd;
        float dxh = gr[c] * (w ? w[c] : 1.0f);
        float d = rstd * (dxh - m1 - xhat * m2);
        gx[r * C + c] = overwrite ? d : gx[r * C + c] + d;
    }
}

// partial[y, c] (w then b halves) over rows r ≡ y (mod ny).
__global__ void layernorm_bwd_wb_partial_kernel(const float *g, const float *x, const float *stats, float *pw,
                                                float *pb, int64_t R, int C, int ny) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y;
    if (c >= C) return;
    float sw = 0.0f, sb = 0.0f;
    for (int64_t r = y; r < R; r += ny) {
        float gv = g[r * C + c];
        sw += gv * (x[r * C + c] - stats[2 * r]) * stats[2 * r + 1];
        sb += gv;
    }
    pw[(int64_t)y * C + c] = sw;
    pb[(int64_t)y * C + c] = sb;
}


extern "C" void vlt_cuda_layernorm_bwd(const float *g, const float *x, const float *w, const float *stats, float *gx,
                                       float *gw, float *gb, int64_t R, int C, bool gx_overwrite) {
    cudaStream_t st = vlt_cuda_stream();
    if (R <= 0) return;
    if (C <= 1024) {
        // about two blocks of 8 warps per multiprocessor (132 on an H100/H200), each warp taking
        // rows in turn; fewer blocks for small R
        unsigned grid = (unsigned)((R + LN_WARPS - 1) / LN_WARPS);
        if (grid > 264) grid = 264;
        float *pw = nullptr, *pb = nullptr;
        if (gw || gb) {
            pw = (float *)vlt_cuda_scratch(2 * (size_t)grid * (size_t)C * sizeof(float));
            pb = pw + (size_t)grid * C;
        }
        if (C <= 128) layernorm_bwd_warp_launch<4>(grid, g, x, w, stats, gx, pw, pb, R, C, gx_overwrite);
        else if (C <= 256) layernorm_bwd_warp_launch<8>(grid, g, x, w, stats, gx, pw, pb, R, C, gx_overwrite);
        else if (C <= 512) layernorm_bwd_warp_launch<16>(grid, g, x, w, stats, gx, pw, pb, R, C, gx_overwrite);
        else if (C <= 768) layernorm_bwd_warp_launch<24>(grid, g, x, w, stats, gx, pw, pb, R, C, gx_overwrite);
        else layernorm_bwd_warp_launch<32>(grid, g, x, w, stats, gx, pw, pb, R, C, gx_overwrite);
        // the blocks' partial sums, added in block order (vlt_cuda_colsum_partials: many rows in
        // flight per column; a thread per column walking 264 rows was latency-bound)
        if (gw) vlt_cuda_colsum_partials(gw, pw, C, (int)grid);
        if (gb) vlt_cuda_colsum_partials(gb, pb, C, (int)grid);
        return;
    }
    if (gx) {
        layernorm_bwd_x_kernel<<<(unsigned)R, ROW_THREADS, 0, st>>>(g, x, w, stats, gx, C, gx_overwrite);
        cudaCheckLaunch();
    }
    if (gw || gb) {
        int ny = (int)((R + 31) / 32);
        if (ny > 256) ny = 256;
        float *pw = (float *)vlt_cuda_scratch(2 * (size_t)ny * (size_t)C * sizeof(float));
        float *pb = pw + (size_t)ny * C;
        unsigned gxn = (unsigned)((C + VLT_CUDA_THREADS - 1) / VLT_CUDA_THREADS);
        layernorm_bwd_wb_partial_kernel<<<dim3(gxn, (unsigned)ny), VLT_CUDA_THREADS, 0, st>>>(g, x, stats, pw, pb, R,
                                                                                              C, ny);
        cudaCheckLaunch();
        if (gw) vlt_cuda_colsum_partials(gw, pw, C, ny);
        if (gb) vlt_cuda_colsum_partials(gb, pb, C, ny);
    }
}

// ---- softmax / log_softmax ----
__global__ void softmax_fwd_kernel(const float *x, float *y, int C, bool log_out) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    const float *xr = x + r * C;
    float *yr = y + r * C;
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < C; c += blockDim.x) mx = fmaxf(mx, xr[c]);
    mx = vlt_block_max(mx, sh);
    float s = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += expf(xr[c] - mx);
    s = vlt_block_sum(s, sh);
    if (log_out) {
        float lse = mx + logf(s);
        for (int c = threadIdx.x; c < C; c += blockDim.x) yr[c] = xr[c] - lse;
    } else {
        float inv = 1.0f / s;
        for (int c = threadIdx.x; c < C; c += blockDim.x) yr[c] = expf(xr[c] - mx) * inv;
    }
}

extern "C" void vlt_cuda_softmax_fwd(const float *x, float *y, int64_t R, int C, bool log_out) {
    softmax_fwd_kernel<<<(unsigned)R, ROW_THREADS, 0, vlt_cuda_stream()>>>(x, y, C, log_out);
    cudaCheckLaunch();
}

__global__ void softmax_bwd_kernel(const float *g, const float *y, float *gx, int C, bool log_out) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    const float *gr = g + r * C, *yr = y + r * C;
    float s = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += log_out ? gr[c] : gr[c] * yr[c];
    s = vlt_block_sum(s, sh);
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        gx[r * C + c] += log_out ? gr[c] - expf(yr[c]) * s : yr[c] * (gr[c] - s);
}

extern "C" void vlt_cuda_softmax_bwd(const float *g, const float *y, float *gx, int64_t R, int C, bool log_out) {
    softmax_bwd_kernel<<<(unsigned)R, ROW_THREADS, 0, vlt_cuda_stream()>>>(g, y, gx, C, log_out);
    cudaCheckLaunch();
}

// ---- l2 normalize ----
__global__ void l2norm_fwd_kernel(const float *x, float *y, int C, float eps) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    const float *xr = x + r * C;
    float nn = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) nn += xr[c] * xr[c];
    float d = fmaxf(sqrtf(vlt_block_sum(nn, sh)), eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x) y[r * C + c] = xr[c] / d;
}

__global__ void l2norm_bwd_kernel(const float *g, const float *x, const float *y, float *gx, int C, float eps) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    const float *xr = x + r * C, *gr = g + r * C, *yr = y + r * C;
    float nn = 0.0f, gy = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        nn += xr[c] * xr[c];
        gy += gr[c] * yr[c];
    }
    float norm = sqrtf(vlt_block_sum(nn, sh));
    gy = vlt_block_sum(gy, sh);
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        gx[r * C + c] += norm > eps ? (gr[c] - yr[c] * gy) / norm : gr[c] / eps;
}

extern "C" void vlt_cuda_l2norm_fwd(const float *x, float *y, int64_t R, int C, float eps) {
    l2norm_fwd_kernel<<<(unsigned)R, ROW_THREADS, 0, vlt_cuda_stream()>>>(x, y, C, eps);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_l2norm_bwd(const float *g, const float *x, const float *y, float *gx, int64_t R, int C,
                                    float eps) {
    l2norm_bwd_kernel<<<(unsigned)R, ROW_THREADS, 0, vlt_cuda_stream()>>>(g, x, y, gx, C, eps);
    cudaCheckLaunch();
}

// ---- cross-entropy ----
// rowloss[i] = (1-ε)(-logp[t]) + ε·mean_c(-logp[c]) for counted rows, 0 for ignored ones.
__global__ void ce_rowloss_kernel(const float *logp, const int32_t *t, float *rowloss, int C, int ignore, float smooth) {
    __shared__ float sh[32];
    int64_t i = blockIdx.x;
    int ti = t[i];
    const float *lp = logp + i * C;
    float s = 0.0f;
    if (smooth > 0.0f)
        for (int c = threadIdx.x; c < C; c += blockDim.x) s -= lp[c];
    s = vlt_block_sum(s, sh);
    if (threadIdx.x == 0) rowloss[i] = ti == ignore ? 0.0f : (1.0f - smooth) * -lp[ti] + smooth * s / C;
}

// One block: out[0] = Σ rowloss / count, summed in a fixed order. count_dev non-NULL (the
// sync-free form, cuda_graph.cu): the count is that device int instead.
__global__ void ce_total_kernel(const float *rowloss, float *out, int N, int count, const int *count_dev) {
    __shared__ float sh[32];
    if (count_dev) count = *count_dev;
    float s = 0.0f;
    for (int i = threadIdx.x; i < N; i += blockDim.x) s += rowloss[i];
    s = vlt_block_sum(s, sh);
    if (threadIdx.x == 0) out[0] = count ? s / (float)count : 0.0f;
}

static void ce_fwd(const float *logits, const int32_t *t, float *logp, float *out, int N, int C, int ignore,
                   float smooth, int count, const int *count_dev) {
    cudaStream_t st = vlt_cuda_stream();
    vlt_cuda_softmax_fwd(logits, logp, N, C, true);
    float *rowloss = (float *)vlt_cuda_scratch((size_t)N * sizeof(float));
    ce_rowloss_kernel<<<(unsigned)N, ROW_THREADS, 0, st>>>(logp, t, rowloss, C, ignore, smooth);
    cudaCheckLaunch();
    ce_total_kernel<<<1, 1024, 0, st>>>(rowloss, out, N, count, count_dev);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_cross_entropy_fwd(const float *logits, const int32_t *t, float *logp, float *out, int N,
                                           int C, int ignore, float smooth, int count) {
    ce_fwd(logits, t, logp, out, N, C, ignore, smooth, count, NULL);
}

// count_dev non-NULL: the count is that device int (0: nothing to add, as the host form then
// launches nothing).
__global__ void ce_bwd_kernel(const float *g, const float *logp, const int32_t *t, float *gl, int N, int C, int ignore,
                              float smooth, int count, const int *count_dev) {
    if (count_dev) count = *count_dev;
    if (count == 0) return;
    float k = g[0] / (float)count;
    VLT_CUDA_LOOP(idx, (int64_t)N * C) {
        int64_t i = idx / C;
        int c = (int)(idx % C);
        int ti = t[i];
        if (ti == ignore) continue;
        gl[idx] += k * (expf(logp[idx]) - (c == ti ? 1.0f - smooth : 0.0f) - smooth / C);
    }
}

extern "C" void vlt_cuda_cross_entropy_bwd(const float *g, const float *logp, const int32_t *t, float *gl, int N,
                                           int C, int ignore, float smooth, int count) {
    if (count == 0) return;
    ce_bwd_kernel<<<vlt_cuda_blocks((int64_t)N * C), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(g, logp, t, gl, N, C,
                                                                                               ignore, smooth, count, NULL);
    cudaCheckLaunch();
}

// Sync-free forms (cuda_graph.cu): the count of counted rows is a device int.
extern "C" void vlt_cuda_cross_entropy_fwd_dev(const float *logits, const int32_t *t, float *logp, float *out, int N,
                                               int C, int ignore, float smooth, const int *count) {
    ce_fwd(logits, t, logp, out, N, C, ignore, smooth, 0, count);
}

extern "C" void vlt_cuda_cross_entropy_bwd_dev(const float *g, const float *logp, const int32_t *t, float *gl, int N,
                                               int C, int ignore, float smooth, const int *count) {
    ce_bwd_kernel<<<vlt_cuda_blocks((int64_t)N * C), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(
        g, logp, t, gl, N, C, ignore, smooth, 0, count);
    cudaCheckLaunch();
}

// ---- argmax over the last dim (first maximum, as torch.argmax) ----
__global__ void argmax_kernel(const void *x, bool is_i32, int32_t *out, int C) {
    __shared__ float sv[ROW_THREADS];
    __shared__ int si[ROW_THREADS];
    __shared__ int sk[ROW_THREADS];
    int64_t r = blockIdx.x;
    const float *xf = (const float *)x + r * C;
    const int32_t *xi = (const int32_t *)x + r * C;
    // Thread-local best over c ≡ threadIdx.x; i32 values compare as ints (kept in sk).
    int best = -1;
    float bv = 0.0f;
    int bk = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        bool gt = best < 0 || (is_i32 ? xi[c] > bk : xf[c] > bv);
        if (gt) {
            best = c;
            if (is_i32) bk = xi[c];
            else bv = xf[c];
        }
    }
    sv[threadIdx.x] = bv;
    sk[threadIdx.x] = bk;
    si[threadIdx.x] = best;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) {
            int o = threadIdx.x + half;
            int ia = si[threadIdx.x], ib = si[o];
            bool take_b = false;
            if (ib >= 0) {
                if (ia < 0) take_b = true;
                else if (is_i32) take_b = sk[o] > sk[threadIdx.x] || (sk[o] == sk[threadIdx.x] && ib < ia);
                else take_b = sv[o] > sv[threadIdx.x] || (sv[o] == sv[threadIdx.x] && ib < ia);
            }
            if (take_b) {
                si[threadIdx.x] = ib;
                sv[threadIdx.x] = sv[o];
                sk[threadIdx.x] = sk[o];
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[r] = si[0] < 0 ? 0 : si[0];
}

extern "C" void vlt_cuda_argmax_last(const void *x, bool is_i32, int32_t *out, int64_t R, int C) {
    argmax_kernel<<<(unsigned)R, ROW_THREADS, 0, vlt_cuda_stream()>>>(x, is_i32, out, C);
    cudaCheckLaunch();
}
