// ops_cuda_flash.cu — fused multi-head self-attention on the packed qkv of a linear layer, P never
// in device memory. The op is vlt_attention_qkv (ops_attention.c): qkv (B, T, 3W) with W = H·D,
// the q, k and v of head h at columns [h·D, h·D + D) of the three W-wide thirds; out (B, T, W) with
// the heads already merged, which is what the output projection reads. Compared with slicing,
// permuting and the materialized attention, it skips 3 slices and 4 permutes per layer and the
// (B, H, T, T) score tensor with its softmax passes.
//
// One block per (b, h): K and V of that head sit in shared memory (rows padded to D + 1 floats so
// that a warp reading one column of 32 rows hits 32 banks); each warp takes query rows in turn.
// Forward, for row i: lane j computes the scores of keys j, j + 32, ... against q_i (held in
// registers), the warp reduces max and sum, and lane d accumulates Σ_j p_ij v_j[d]. The
// row's log-sum-exp is saved (B·H·T floats) so backward recomputes P instead of storing it.
// Backward (the flash-attention identities): with Δ_i = Σ_d dO_i[d] O_i[d],
//   dS_ij = P_ij (dO_i · v_j − Δ_i),  dQ_i = scale Σ_j dS_ij k_j,
//   dK_j = scale Σ_i dS_ij q_i,       dV_j = Σ_i P_ij dO_i,
// in two kernels: one row-wise (dQ, Δ; K and V in shared memory) and one key-wise (dK, dV; Q and
// dO in shared memory). Every sum runs in a fixed order: the results are deterministic, with no
// atomics. fp32 throughout (exp, sums, the log-sum-exp).
//
// Instantiated for head widths D = 32 and 64 (ViT-B, the text towers, CoCa); other widths, or a T
// whose rows do not fit in shared memory, return 0 and the op falls back to the unfused path.
#include "autograd/ops_cuda_common.h"

#define FLASH_WARPS 8

// key j visible from query i: causal (j <= i) and not padding
__device__ __forceinline__ bool flash_visible(int i, int j, bool causal, const int32_t *pad_row) {
    return !(causal && j > i) && !(pad_row && pad_row[j]);
}

// Loads rows [0, T) of the D-wide slice at column `col` of a (T, row_stride) matrix into shared
// memory with row stride `ss`.
template <int D>
__device__ __forceinline__ void flash_load(float *dst, int ss, const float *src, int64_t row_stride, int col, int T) {
    for (int idx = threadIdx.x; idx < T * (D / 4); idx += blockDim.x) {
        int j = idx / (D / 4), d4 = idx % (D / 4);
        float4 v = *reinterpret_cast<const float4 *>(src + j * row_stride + col + d4 * 4);
        float *o = dst + j * ss + d4 * 4;
        o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
    }
}

template <int D>
__device__ __forceinline__ void flash_row(float *r, const float *src) {  // D floats into registers (broadcast loads)
#pragma unroll
    for (int d4 = 0; d4 < D / 4; d4++) {
        float4 v = *reinterpret_cast<const float4 *>(src + d4 * 4);
        r[d4 * 4] = v.x; r[d4 * 4 + 1] = v.y; r[d4 * 4 + 2] = v.z; r[d4 * 4 + 3] = v.w;
    }
}

template <int D>
__global__ void __launch_bounds__(FLASH_WARPS * 32) flash_fwd_kernel(const float *qkv, const int32_t *pad, float *out,
                                                                      float *lse, int H, int T, float scale,
                                                                      bool causal) {
    extern __shared__ float sm[];
    constexpr int KS = D + 1, C = D / 32;
    float *Ks = sm, *Vs = Ks + T * KS, *Ps = Vs + T * D;
    int bh = blockIdx.x, b = bh / H, h = bh % H, W = H * D;
    int64_t row = 3LL * W;
    const float *base = qkv + (int64_t)b * T * row;
    flash_load<D>(Ks, KS, base, row, W + h * D, T);
    flash_load<D>(Vs, D, base, row, 2 * W + h * D, T);
    __syncthreads();
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *p = Ps + warp * T;
    const int32_t *pad_row = pad ? pad + (int64_t)b * T : nullptr;
    for (int i = warp; i < T; i += FLASH_WARPS) {
        float q[D];
        flash_row<D>(q, base + i * row + h * D);
        float mx = -INFINITY;
        for (int j = lane; j < T; j += 32) {
            float s = -INFINITY;
            if (flash_visible(i, j, causal, pad_row)) {
                s = 0.0f;
#pragma unroll
                for (int d = 0; d < D; d++) s += q[d] * Ks[j * KS + d];
                s *= scale;
            }
            p[j] = s;
            mx = fmaxf(mx, s);
        }
        mx = vlt_warp_max(mx);
        float sum = 0.0f;
        for (int j = lane; j < T; j += 32) {
            float e = mx == -INFINITY ? 0.0f : expf(p[j] - mx);  // exp(-inf) = 0 for masked keys
            p[j] = e;
            sum += e;
        }
        sum = vlt_warp_sum(sum);
        __syncwarp();
        float inv = sum > 0.0f ? 1.0f / sum : 0.0f;  // every key masked: zeros out
        float o[C] = {};
        int jend = causal ? min(i + 1, T) : T;
        for (int j = 0; j < jend; j++) {
            float pj = p[j];
#pragma unroll
            for (int c = 0; c < C; c++) o[c] += pj * Vs[j * D + lane + 32 * c];
        }
        float *orow = out + ((int64_t)b * T + i) * W + h * D;
#pragma unroll
        for (int c = 0; c < C; c++) orow[lane + 32 * c] = o[c] * inv;
        if (lane == 0) lse[(int64_t)bh * T + i] = sum > 0.0f ? mx + logf(sum) : INFINITY;
        __syncwarp();  // p is rewritten by the next row
    }
}

// dQ (accumulated into dqkv's q third) and Δ_i per row.
template <int D>
__global__ void __launch_bounds__(FLASH_WARPS * 32) flash_bwd_dq_kernel(const float *qkv, const int32_t *pad,
                                                                         const float *out, const float *dout,
                                                                         const float *lse, float *delta, float *dqkv,
                                                                         int H, int T, float scale, bool causal) {
    extern __shared__ float sm[];
    constexpr int KS = D + 1, C = D / 32;
    float *Ks = sm, *Vs = Ks + T * KS, *DSs = Vs + T * KS;
    int bh = blockIdx.x, b = bh / H, h = bh % H, W = H * D;
    int64_t row = 3LL * W;
    const float *base = qkv + (int64_t)b * T * row;
    flash_load<D>(Ks, KS, base, row, W + h * D, T);
    flash_load<D>(Vs, KS, base, row, 2 * W + h * D, T);
    __syncthreads();
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *ds = DSs + warp * T;
    const int32_t *pad_row = pad ? pad + (int64_t)b * T : nullptr;
    for (int i = warp; i < T; i += FLASH_WARPS) {
        const float *orow = out + ((int64_t)b * T + i) * W + h * D, *gorow = dout + ((int64_t)b * T + i) * W + h * D;
        float part = 0.0f;
#pragma unroll
        for (int c = 0; c < C; c++) part += gorow[lane + 32 * c] * orow[lane + 32 * c];
        float Di = vlt_warp_sum(part), L = lse[(int64_t)bh * T + i];
        float q[D], go[D];
        flash_row<D>(q, base + i * row + h * D);
        flash_row<D>(go, gorow);
        for (int j = lane; j < T; j += 32) {
            float g = 0.0f;
            if (flash_visible(i, j, causal, pad_row)) {
                float s = 0.0f, dp = 0.0f;
#pragma unroll
                for (int d = 0; d < D; d++) {
                    s += q[d] * Ks[j * KS + d];
                    dp += go[d] * Vs[j * KS + d];
                }
                float pij = expf(s * scale - L);  // L = +inf when every key is masked: 0
                g = pij * (dp - Di);
            }
            ds[j] = g;
        }
        __syncwarp();
        float dq[C] = {};
        int jend = causal ? min(i + 1, T) : T;
        for (int j = 0; j < jend; j++) {
            float g = ds[j];
#pragma unroll
            for (int c = 0; c < C; c++) dq[c] += g * Ks[j * KS + lane + 32 * c];
        }
        float *dqrow = dqkv + ((int64_t)b * T + i) * row + h * D;
#pragma unroll
        for (int c = 0; c < C; c++) dqrow[lane + 32 * c] += scale * dq[c];
        if (lane == 0) delta[(int64_t)bh * T + i] = Di;
        __syncwarp();
    }
}

// dK and dV (accumulated into dqkv's k and v thirds), one key per warp at a time.
template <int D>
__global__ void __launch_bounds__(FLASH_WARPS * 32) flash_bwd_dkv_kernel(const float *qkv, const int32_t *pad,
                                                                          const float *dout, const float *lse,
                                                                          const float *delta, float *dqkv, int H,
                                                                          int T, float scale, bool causal) {
    extern __shared__ float sm[];
    constexpr int KS = D + 1, C = D / 32;
    float *Qs = sm, *Gs = Qs + T * KS, *Ls = Gs + T * KS, *Dl = Ls + T, *Pw = Dl + T, *DSw = Pw + FLASH_WARPS * T;
    int bh = blockIdx.x, b = bh / H, h = bh % H, W = H * D;
    int64_t row = 3LL * W;
    const float *base = qkv + (int64_t)b * T * row;
    flash_load<D>(Qs, KS, base, row, h * D, T);
    flash_load<D>(Gs, KS, dout + (int64_t)b * T * W, W, h * D, T);
    for (int i = threadIdx.x; i < T; i += blockDim.x) {
        Ls[i] = lse[(int64_t)bh * T + i];
        Dl[i] = delta[(int64_t)bh * T + i];
    }
    __syncthreads();
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *p = Pw + warp * T, *ds = DSw + warp * T;
    const int32_t *pad_row = pad ? pad + (int64_t)b * T : nullptr;
    for (int j = warp; j < T; j += FLASH_WARPS) {
        float dk[C] = {}, dv[C] = {};
        if (!(pad_row && pad_row[j])) {  // a padded key gets no gradient
            float k[D], v[D];
            flash_row<D>(k, base + j * row + W + h * D);
            flash_row<D>(v, base + j * row + 2 * W + h * D);
            int ibeg = causal ? j : 0;  // causal: only queries i >= j see key j
            for (int i = ibeg + lane; i < T; i += 32) {
                float s = 0.0f, dp = 0.0f;
#pragma unroll
                for (int d = 0; d < D; d++) {
                    s += Qs[i * KS + d] * k[d];
                    dp += Gs[i * KS + d] * v[d];
                }
                float pij = expf(s * scale - Ls[i]);
                p[i] = pij;
                ds[i] = pij * (dp - Dl[i]);
            }
            __syncwarp();
            for (int i = ibeg; i < T; i++) {
                float pi = p[i], g = ds[i];
#pragma unroll
                for (int c = 0; c < C; c++) {
                    dv[c] += pi * Gs[i * KS + lane + 32 * c];
                    dk[c] += g * Qs[i * KS + lane + 32 * c];
                }
            }
            __syncwarp();
        }
        float *krow = dqkv + ((int64_t)b * T + j) * row + W + h * D;
#pragma unroll
        for (int c = 0; c < C; c++) {
            krow[lane + 32 * c] += scale * dk[c];
            krow[W + lane + 32 * c] += dv[c];
        }
    }
}

static size_t flash_smem(int kind, int T, int D) {
    int KS = D + 1;
    switch (kind) {
    case 0: return sizeof(float) * ((size_t)T * KS + (size_t)T * D + (size_t)FLASH_WARPS * T);
    case 1: return sizeof(float) * (2 * (size_t)T * KS + (size_t)FLASH_WARPS * T);
    default: return sizeof(float) * (2 * (size_t)T * KS + 2 * (size_t)T + 2 * (size_t)FLASH_WARPS * T);
    }
}

// Raises a kernel's dynamic shared-memory limit when it needs more than the default 48 KiB.
template <typename K>
static bool flash_smem_ok(K kernel, size_t bytes) {
    if (bytes <= 48 * 1024) return true;
    int dev = 0, optin = 0;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (bytes > (size_t)optin) return false;
    cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    return true;
}

extern "C" int vlt_cuda_flash_supported(int T, int D) {
    if (D != 32 && D != 64) return 0;
    int dev = 0, optin = 0;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    for (int k = 0; k < 3; k++)
        if (flash_smem(k, T, D) > (size_t)optin) return 0;
    return 1;
}

template <int D>
static void flash_fwd(const float *qkv, const int32_t *pad, float *out, float *lse, int B, int H, int T, float scale,
                      bool causal) {
    size_t sm = flash_smem(0, T, D);
    if (!flash_smem_ok(flash_fwd_kernel<D>, sm)) abort();  // vlt_cuda_flash_supported said yes
    flash_fwd_kernel<D><<<(unsigned)(B * H), FLASH_WARPS * 32, sm, vlt_cuda_stream()>>>(qkv, pad, out, lse, H, T,
                                                                                         scale, causal);
    cudaCheckLaunch();
}

template <int D>
static void flash_bwd(const float *qkv, const int32_t *pad, const float *out, const float *dout, const float *lse,
                      float *delta, float *dqkv, int B, int H, int T, float scale, bool causal) {
    size_t s1 = flash_smem(1, T, D), s2 = flash_smem(2, T, D);
    if (!flash_smem_ok(flash_bwd_dq_kernel<D>, s1) || !flash_smem_ok(flash_bwd_dkv_kernel<D>, s2)) abort();
    flash_bwd_dq_kernel<D><<<(unsigned)(B * H), FLASH_WARPS * 32, s1, vlt_cuda_stream()>>>(
        qkv, pad, out, dout, lse, delta, dqkv, H, T, scale, causal);
    cudaCheckLaunch();
    flash_bwd_dkv_kernel<D><<<(unsigned)(B * H), FLASH_WARPS * 32, s2, vlt_cuda_stream()>>>(
        qkv, pad, dout, lse, delta, dqkv, H, T, scale, causal);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_flash_fwd(const float *qkv, const int32_t *pad, float *out, float *lse, int B, int H, int T,
                                   int D, float scale, bool causal) {
    if (D == 32) flash_fwd<32>(qkv, pad, out, lse, B, H, T, scale, causal);
    else flash_fwd<64>(qkv, pad, out, lse, B, H, T, scale, causal);
}

extern "C" void vlt_cuda_flash_bwd(const float *qkv, const int32_t *pad, const float *out, const float *dout,
                                   const float *lse, float *delta, float *dqkv, int B, int H, int T, int D, float scale,
                                   bool causal) {
    if (D == 32) flash_bwd<32>(qkv, pad, out, dout, lse, delta, dqkv, B, H, T, scale, causal);
    else flash_bwd<64>(qkv, pad, out, dout, lse, delta, dqkv, B, H, T, scale, causal);
}
