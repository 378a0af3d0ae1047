// ops_cuda_flash.cu — fused multi-head self-attention on the packed qkv of a linear layer, P never
// in device memory. The op is vlt_attention_qkv (ops_attention.c): qkv (B, T, 3W) with W = H·D,
// the q, k and v of head h at columns [h·D, h·D + D) of the three W-wide thirds; out (B, T, W) with
// the heads already merged, which is what the output projection reads. Compared with slicing,
// permuting and the materialized attention, it skips 3 slices and 4 permutes per layer and the
// (B, H, T, T) score tensor with its softmax passes.
//
// One block per (b, h): K and V of that head sit in shared memory (rows padded to D + 4 floats,
// read as float4); each warp takes query rows in turn. Forward, for row i: lane j computes the
// scores of keys j, j + 32, ... against q_i (a per-warp shared vector, read by broadcast), the
// warp reduces max and sum, and lane d accumulates Σ_j p_ij v_j[d]. The
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
#include <cuda_bf16.h>
#include <mma.h>

#include "autograd/ops_cuda_common.h"

#define FLASH_WARPS 8

// key j visible from query i: causal (j <= i) and not padding
__device__ __forceinline__ bool flash_visible(int i, int j, bool causal, const int32_t *pad_row) {
    return !(causal && j > i) && !(pad_row && pad_row[j]);
}

// Shared-memory rows are D + 4 floats: 16-byte aligned for float4 reads, and the 8 lanes of a
// quarter-warp reading one float4 each from 8 consecutive rows land on 8 different 4-bank groups.
template <int D> struct flash_dims {
    static constexpr int KS = D + 4, C = D / 32;
};

// Copies rows [0, T) of the D-wide slice at column `col` of a (T, row_stride) matrix into shared
// memory (row stride KS), float4 at a time.
template <int D>
__device__ __forceinline__ void flash_load(float *dst, const float *src, int64_t row_stride, int col, int T) {
    constexpr int KS = flash_dims<D>::KS;
    for (int idx = threadIdx.x; idx < T * (D / 4); idx += blockDim.x) {
        int j = idx / (D / 4), d4 = idx % (D / 4);
        *reinterpret_cast<float4 *>(dst + j * KS + d4 * 4) =
            *reinterpret_cast<const float4 *>(src + j * row_stride + col + d4 * 4);
    }
}

// A warp copies one D-float row from global into its shared-memory vector (then __syncwarp).
template <int D>
__device__ __forceinline__ void flash_warp_row(float *dst, const float *src, int lane) {
    for (int d4 = lane; d4 < D / 4; d4 += 32)
        *reinterpret_cast<float4 *>(dst + d4 * 4) = *reinterpret_cast<const float4 *>(src + d4 * 4);
}

// a · b over D floats, both in shared memory (b's reads are the warp's broadcast); four partial
// sums keep four independent FMA chains in flight.
template <int D>
__device__ __forceinline__ float flash_dot(const float *a, const float *b) {
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int d = 0; d < D; d += 4) {
        float4 x = *reinterpret_cast<const float4 *>(a + d), y = *reinterpret_cast<const float4 *>(b + d);
        acc.x += x.x * y.x; acc.y += x.y * y.y; acc.z += x.z * y.z; acc.w += x.w * y.w;
    }
    return (acc.x + acc.y) + (acc.z + acc.w);
}

// Two dot products sharing the row a's partner loads: (a·b, c·e).
template <int D>
__device__ __forceinline__ float2 flash_dot2(const float *a, const float *b, const float *c, const float *e) {
    float4 s = make_float4(0.f, 0.f, 0.f, 0.f), t = s;
#pragma unroll
    for (int d = 0; d < D; d += 4) {
        float4 x = *reinterpret_cast<const float4 *>(a + d), y = *reinterpret_cast<const float4 *>(b + d);
        float4 u = *reinterpret_cast<const float4 *>(c + d), v = *reinterpret_cast<const float4 *>(e + d);
        s.x += x.x * y.x; s.y += x.y * y.y; s.z += x.z * y.z; s.w += x.w * y.w;
        t.x += u.x * v.x; t.y += u.y * v.y; t.z += u.z * v.z; t.w += u.w * v.w;
    }
    return make_float2((s.x + s.y) + (s.z + s.w), (t.x + t.y) + (t.z + t.w));
}

template <int D>
__global__ void __launch_bounds__(FLASH_WARPS * 32) flash_fwd_kernel(const float *qkv, const int32_t *pad, float *out,
                                                                      float *lse, int H, int T, float scale,
                                                                      bool causal) {
    extern __shared__ __align__(16) float sm[];
    constexpr int KS = flash_dims<D>::KS, C = flash_dims<D>::C;
    int TP = (T + 3) & ~3;  // keeps every region 16-byte aligned
    float *Ks = sm, *Vs = Ks + T * KS, *Qw = Vs + T * KS, *Ps = Qw + FLASH_WARPS * KS;
    int bh = blockIdx.x, b = bh / H, h = bh % H, W = H * D;
    int64_t row = 3LL * W;
    const float *base = qkv + (int64_t)b * T * row;
    flash_load<D>(Ks, base, row, W + h * D, T);
    flash_load<D>(Vs, base, row, 2 * W + h * D, T);
    __syncthreads();
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *q = Qw + warp * KS, *p = Ps + warp * TP;
    const int32_t *pad_row = pad ? pad + (int64_t)b * T : nullptr;
    for (int i = warp; i < T; i += FLASH_WARPS) {
        flash_warp_row<D>(q, base + i * row + h * D, lane);
        __syncwarp();
        float mx = -INFINITY;
        for (int j = lane; j < T; j += 32) {
            float s = flash_visible(i, j, causal, pad_row) ? flash_dot<D>(Ks + j * KS, q) * scale : -INFINITY;
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
        float o[2][C] = {};
        int jend = causal ? min(i + 1, T) : T, j = 0;
        for (; j + 1 < jend; j += 2) {
            float p0 = p[j], p1 = p[j + 1];
#pragma unroll
            for (int c = 0; c < C; c++) {
                o[0][c] += p0 * Vs[j * KS + lane + 32 * c];
                o[1][c] += p1 * Vs[(j + 1) * KS + lane + 32 * c];
            }
        }
        if (j < jend) {
#pragma unroll
            for (int c = 0; c < C; c++) o[0][c] += p[j] * Vs[j * KS + lane + 32 * c];
        }
        float *orow = out + ((int64_t)b * T + i) * W + h * D;
#pragma unroll
        for (int c = 0; c < C; c++) orow[lane + 32 * c] = (o[0][c] + o[1][c]) * inv;
        if (lane == 0) lse[(int64_t)bh * T + i] = sum > 0.0f ? mx + logf(sum) : INFINITY;
        __syncwarp();  // q and p are rewritten for the next row
    }
}

// dQ (accumulated into dqkv's q third) and Δ_i per row.
template <int D>
__global__ void __launch_bounds__(FLASH_WARPS * 32) flash_bwd_dq_kernel(const float *qkv, const int32_t *pad,
                                                                         const float *out, const float *dout,
                                                                         const float *lse, float *delta, float *dqkv,
                                                                         int H, int T, float scale, bool causal) {
    extern __shared__ __align__(16) float sm[];
    constexpr int KS = flash_dims<D>::KS, C = flash_dims<D>::C;
    int TP = (T + 3) & ~3;
    float *Ks = sm, *Vs = Ks + T * KS, *Qw = Vs + T * KS, *Gw = Qw + FLASH_WARPS * KS, *DSs = Gw + FLASH_WARPS * KS;
    int bh = blockIdx.x, b = bh / H, h = bh % H, W = H * D;
    int64_t row = 3LL * W;
    const float *base = qkv + (int64_t)b * T * row;
    flash_load<D>(Ks, base, row, W + h * D, T);
    flash_load<D>(Vs, base, row, 2 * W + h * D, T);
    __syncthreads();
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *q = Qw + warp * KS, *go = Gw + warp * KS, *ds = DSs + warp * TP;
    const int32_t *pad_row = pad ? pad + (int64_t)b * T : nullptr;
    for (int i = warp; i < T; i += FLASH_WARPS) {
        const float *orow = out + ((int64_t)b * T + i) * W + h * D, *gorow = dout + ((int64_t)b * T + i) * W + h * D;
        float part = 0.0f;
#pragma unroll
        for (int c = 0; c < C; c++) part += gorow[lane + 32 * c] * orow[lane + 32 * c];
        float Di = vlt_warp_sum(part), L = lse[(int64_t)bh * T + i];
        flash_warp_row<D>(q, base + i * row + h * D, lane);
        flash_warp_row<D>(go, gorow, lane);
        __syncwarp();
        for (int j = lane; j < T; j += 32) {
            float g = 0.0f;
            if (flash_visible(i, j, causal, pad_row)) {
                float2 sd = flash_dot2<D>(Ks + j * KS, q, Vs + j * KS, go);  // (q·k_j, dO·v_j)
                g = expf(sd.x * scale - L) * (sd.y - Di);  // L = +inf when every key is masked: 0
            }
            ds[j] = g;
        }
        __syncwarp();
        float dq[2][C] = {};
        int jend = causal ? min(i + 1, T) : T, j = 0;
        for (; j + 1 < jend; j += 2) {
            float g0 = ds[j], g1 = ds[j + 1];
#pragma unroll
            for (int c = 0; c < C; c++) {
                dq[0][c] += g0 * Ks[j * KS + lane + 32 * c];
                dq[1][c] += g1 * Ks[(j + 1) * KS + lane + 32 * c];
            }
        }
        if (j < jend) {
#pragma unroll
            for (int c = 0; c < C; c++) dq[0][c] += ds[j] * Ks[j * KS + lane + 32 * c];
        }
        float *dqrow = dqkv + ((int64_t)b * T + i) * row + h * D;
#pragma unroll
        for (int c = 0; c < C; c++) dqrow[lane + 32 * c] += scale * (dq[0][c] + dq[1][c]);
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
    extern __shared__ __align__(16) float sm[];
    constexpr int KS = flash_dims<D>::KS, C = flash_dims<D>::C;
    int TP = (T + 3) & ~3;
    float *Qs = sm, *Gs = Qs + T * KS, *Ls = Gs + T * KS, *Dl = Ls + TP, *Kw = Dl + TP, *Vw = Kw + FLASH_WARPS * KS,
          *Pw = Vw + FLASH_WARPS * KS, *DSw = Pw + FLASH_WARPS * TP;
    int bh = blockIdx.x, b = bh / H, h = bh % H, W = H * D;
    int64_t row = 3LL * W;
    const float *base = qkv + (int64_t)b * T * row;
    flash_load<D>(Qs, base, row, h * D, T);
    flash_load<D>(Gs, dout + (int64_t)b * T * W, W, h * D, T);
    for (int i = threadIdx.x; i < T; i += blockDim.x) {
        Ls[i] = lse[(int64_t)bh * T + i];
        Dl[i] = delta[(int64_t)bh * T + i];
    }
    __syncthreads();
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *k = Kw + warp * KS, *v = Vw + warp * KS, *p = Pw + warp * TP, *ds = DSw + warp * TP;
    const int32_t *pad_row = pad ? pad + (int64_t)b * T : nullptr;
    for (int j = warp; j < T; j += FLASH_WARPS) {
        float dk[2][C] = {}, dv[2][C] = {};
        if (!(pad_row && pad_row[j])) {  // a padded key gets no gradient (warp-uniform branch)
            flash_warp_row<D>(k, base + j * row + W + h * D, lane);
            flash_warp_row<D>(v, base + j * row + 2 * W + h * D, lane);
            __syncwarp();
            int ibeg = causal ? j : 0;  // causal: only queries i >= j see key j
            for (int i = ibeg + lane; i < T; i += 32) {
                float2 sd = flash_dot2<D>(Qs + i * KS, k, Gs + i * KS, v);  // (q_i·k, dO_i·v)
                float pij = expf(sd.x * scale - Ls[i]);
                p[i] = pij;
                ds[i] = pij * (sd.y - Dl[i]);
            }
            __syncwarp();
            int i = ibeg;
            for (; i + 1 < T; i += 2) {
                float p0 = p[i], p1 = p[i + 1], g0 = ds[i], g1 = ds[i + 1];
#pragma unroll
                for (int c = 0; c < C; c++) {
                    dv[0][c] += p0 * Gs[i * KS + lane + 32 * c];
                    dk[0][c] += g0 * Qs[i * KS + lane + 32 * c];
                    dv[1][c] += p1 * Gs[(i + 1) * KS + lane + 32 * c];
                    dk[1][c] += g1 * Qs[(i + 1) * KS + lane + 32 * c];
                }
            }
            if (i < T) {
#pragma unroll
                for (int c = 0; c < C; c++) {
                    dv[0][c] += p[i] * Gs[i * KS + lane + 32 * c];
                    dk[0][c] += ds[i] * Qs[i * KS + lane + 32 * c];
                }
            }
            __syncwarp();  // k, v, p, ds are rewritten for the next key
        }
        float *krow = dqkv + ((int64_t)b * T + j) * row + W + h * D;
#pragma unroll
        for (int c = 0; c < C; c++) {
            krow[lane + 32 * c] += scale * (dk[0][c] + dk[1][c]);
            krow[W + lane + 32 * c] += dv[0][c] + dv[1][c];
        }
    }
}

// ---- backward on tensor cores (mixed precision: VLT_MATMUL_BF16) ----
// One block per (b, h) computes dQ, dK and dV at once with bf16 products on 16×16×16 WMMA
// tiles (fp32 accumulation), the way flash-attention's backward rounds P and dS to bf16:
//   S = Q·Kᵀ, P = exp(scale·S − L) (masked: 0), dP = dO·Vᵀ, dS = P ∘ (dP − Δ),
//   dQ = scale·dS·K, dK = scale·dSᵀ·Q, dV = Pᵀ·dO.
// Q, K, V, dO (bf16), P and dS (bf16) and S / dP (fp32) all sit in shared memory, T padded to Tp
// (a multiple of 16; padded rows are zero and masked). Δ and the log-sum-exp are fp32.
// Shared memory for T = 77, D = 64: 110 KiB, two blocks per SM.
namespace wm = nvcuda::wmma;
typedef __nv_bfloat16 bf16_t;

template <int D> struct tc_dims {
    static constexpr int LD = D + 8;  // bf16 row stride of Q, K, V, dO (a multiple of 8, 16-byte rows apart)
};

// qkv and out of the tensor-core kernels are fp32 or (mixed precision end to end) bf16: loads of
// 4 consecutive elements as a float4, single loads and stores through these overloads.
__device__ __forceinline__ float4 tc_ld4(const float *p) { return *reinterpret_cast<const float4 *>(p); }
__device__ __forceinline__ float4 tc_ld4(const bf16_t *p) {
    uint2 u = *reinterpret_cast<const uint2 *>(p);
    float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&u.x));
    float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&u.y));
    return make_float4(a.x, a.y, b.x, b.y);
}
__device__ __forceinline__ float tc_ld(const float *p) { return *p; }
__device__ __forceinline__ float tc_ld(const bf16_t *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void tc_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void tc_st(bf16_t *p, float v) { *p = __float2bfloat16_rn(v); }

static size_t flash_tc_smem(int Tp, int D) {
    size_t LD = (size_t)D + 8, LT = (size_t)Tp + 8, LF = (size_t)Tp + 4;
    return 4 * (size_t)Tp * LD * sizeof(bf16_t) + 2 * (size_t)Tp * LT * sizeof(bf16_t) + (size_t)Tp * LF * sizeof(float) +
           2 * (size_t)Tp * sizeof(float) + FLASH_WARPS * 256 * sizeof(float);
}

template <int D, typename IO>
__global__ void __launch_bounds__(FLASH_WARPS * 32) flash_bwd_tc_kernel(const IO *qkv, const int32_t *pad,
                                                                         const IO *out, const float *dout,
                                                                         const float *lse, float *dqkv, int H, int T,
                                                                         int Tp, float scale, bool causal,
                                                                         bool overwrite) {
    extern __shared__ __align__(128) unsigned char smraw[];
    constexpr int LD = tc_dims<D>::LD;
    const int LT = Tp + 8, LF = Tp + 4, nt = Tp / 16;
    bf16_t *Qs = reinterpret_cast<bf16_t *>(smraw), *Ks = Qs + Tp * LD, *Vs = Ks + Tp * LD, *Gs = Vs + Tp * LD;
    bf16_t *Pb = Gs + Tp * LD, *Sb = Pb + Tp * LT;
    float *F = reinterpret_cast<float *>(Sb + Tp * LT), *Ls = F + Tp * LF, *Dl = Ls + Tp, *stage = Dl + Tp;
    int bh = blockIdx.x, b = bh / H, h = bh % H, W = H * D;
    int64_t row = 3LL * W;
    const IO *base = qkv + (int64_t)b * T * row, *obase = out + (int64_t)b * T * W;
    const float *gbase = dout + (int64_t)b * T * W;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    // 1. Q, K, V, dO as bf16 (zero rows past T); L and Δ per row.
    for (int idx = threadIdx.x; idx < Tp * (D / 4); idx += blockDim.x) {
        int r = idx / (D / 4), d = (idx % (D / 4)) * 4;
        float4 z = make_float4(0.f, 0.f, 0.f, 0.f), q = z, k = z, v = z, g = z;
        if (r < T) {
            q = tc_ld4(base + r * row + h * D + d);
            k = tc_ld4(base + r * row + W + h * D + d);
            v = tc_ld4(base + r * row + 2 * W + h * D + d);
            g = *reinterpret_cast<const float4 *>(gbase + (int64_t)r * W + h * D + d);
        }
        __nv_bfloat162 *qd = reinterpret_cast<__nv_bfloat162 *>(Qs + r * LD + d), *kd = reinterpret_cast<__nv_bfloat162 *>(Ks + r * LD + d);
        __nv_bfloat162 *vd = reinterpret_cast<__nv_bfloat162 *>(Vs + r * LD + d), *gd = reinterpret_cast<__nv_bfloat162 *>(Gs + r * LD + d);
        qd[0] = __floats2bfloat162_rn(q.x, q.y); qd[1] = __floats2bfloat162_rn(q.z, q.w);
        kd[0] = __floats2bfloat162_rn(k.x, k.y); kd[1] = __floats2bfloat162_rn(k.z, k.w);
        vd[0] = __floats2bfloat162_rn(v.x, v.y); vd[1] = __floats2bfloat162_rn(v.z, v.w);
        gd[0] = __floats2bfloat162_rn(g.x, g.y); gd[1] = __floats2bfloat162_rn(g.z, g.w);
    }
    for (int i = warp; i < Tp; i += FLASH_WARPS) {
        float part = 0.0f;
        if (i < T)
            for (int d = lane; d < D; d += 32) part += gbase[(int64_t)i * W + h * D + d] * tc_ld(obase + (int64_t)i * W + h * D + d);
        part = vlt_warp_sum(part);
        if (lane == 0) {
            Dl[i] = part;
            Ls[i] = i < T ? lse[(int64_t)bh * T + i] : INFINITY;
        }
    }
    __syncthreads();

    // 2. S = Q·Kᵀ (fp32, into F)
    for (int t = warp; t < nt * nt; t += FLASH_WARPS) {
        int ti = t / nt, tj = t % nt;
        wm::fragment<wm::accumulator, 16, 16, 16, float> acc;
        wm::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int k0 = 0; k0 < D; k0 += 16) {
            wm::fragment<wm::matrix_a, 16, 16, 16, bf16_t, wm::row_major> a;
            wm::fragment<wm::matrix_b, 16, 16, 16, bf16_t, wm::col_major> bm;
            wm::load_matrix_sync(a, Qs + ti * 16 * LD + k0, LD);
            wm::load_matrix_sync(bm, Ks + tj * 16 * LD + k0, LD);
            wm::mma_sync(acc, a, bm, acc);
        }
        wm::store_matrix_sync(F + ti * 16 * LF + tj * 16, acc, LF, wm::mem_row_major);
    }
    __syncthreads();
    // 3. P (bf16)
    const int32_t *pad_row = pad ? pad + (int64_t)b * T : nullptr;
    for (int idx = threadIdx.x; idx < Tp * Tp; idx += blockDim.x) {
        int i = idx / Tp, j = idx % Tp;
        bool vis = i < T && j < T && flash_visible(i, j, causal, pad_row);
        Pb[i * LT + j] = __float2bfloat16_rn(vis ? expf(F[i * LF + j] * scale - Ls[i]) : 0.0f);
    }
    __syncthreads();
    // 4. dP = dO·Vᵀ (fp32, into F)
    for (int t = warp; t < nt * nt; t += FLASH_WARPS) {
        int ti = t / nt, tj = t % nt;
        wm::fragment<wm::accumulator, 16, 16, 16, float> acc;
        wm::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int k0 = 0; k0 < D; k0 += 16) {
            wm::fragment<wm::matrix_a, 16, 16, 16, bf16_t, wm::row_major> a;
            wm::fragment<wm::matrix_b, 16, 16, 16, bf16_t, wm::col_major> bm;
            wm::load_matrix_sync(a, Gs + ti * 16 * LD + k0, LD);
            wm::load_matrix_sync(bm, Vs + tj * 16 * LD + k0, LD);
            wm::mma_sync(acc, a, bm, acc);
        }
        wm::store_matrix_sync(F + ti * 16 * LF + tj * 16, acc, LF, wm::mem_row_major);
    }
    __syncthreads();
    // 5. dS = P ∘ (dP − Δ) (bf16); masked entries have P = 0
    for (int idx = threadIdx.x; idx < Tp * Tp; idx += blockDim.x) {
        int i = idx / Tp, j = idx % Tp;
        float p = __bfloat162float(Pb[i * LT + j]);
        Sb[i * LT + j] = __float2bfloat16_rn(p * (F[i * LF + j] - Dl[i]));
    }
    __syncthreads();
    // 6. dQ = scale·dS·K, dK = scale·dSᵀ·Q, dV = Pᵀ·dO: 16×16 output tiles, staged per warp.
    constexpr int nd = D / 16;
    float *st = stage + warp * 256;
    for (int t = warp; t < 3 * nt * nd; t += FLASH_WARPS) {
        int which = t / (nt * nd), r = (t / nd) % nt, c = t % nd;
        wm::fragment<wm::accumulator, 16, 16, 16, float> acc;
        wm::fill_fragment(acc, 0.0f);
        for (int m0 = 0; m0 < Tp; m0 += 16) {
            wm::fragment<wm::matrix_b, 16, 16, 16, bf16_t, wm::row_major> bm;
            if (which == 0) {
                wm::fragment<wm::matrix_a, 16, 16, 16, bf16_t, wm::row_major> a;
                wm::load_matrix_sync(a, Sb + r * 16 * LT + m0, LT);
                wm::load_matrix_sync(bm, Ks + m0 * LD + c * 16, LD);
                wm::mma_sync(acc, a, bm, acc);
            } else {
                wm::fragment<wm::matrix_a, 16, 16, 16, bf16_t, wm::col_major> a;  // the transpose
                wm::load_matrix_sync(a, (which == 1 ? Sb : Pb) + m0 * LT + r * 16, LT);
                wm::load_matrix_sync(bm, (which == 1 ? Qs : Gs) + m0 * LD + c * 16, LD);
                wm::mma_sync(acc, a, bm, acc);
            }
        }
        wm::store_matrix_sync(st, acc, 16, wm::mem_row_major);
        __syncwarp();
        float k = which == 2 ? 1.0f : scale;
        for (int e = lane; e < 256; e += 32) {
            int i = r * 16 + e / 16;
            if (i >= T) continue;
            float *dst = dqkv + ((int64_t)b * T + i) * row + which * W + h * D + c * 16 + e % 16;
            float v = k * st[e];
            *dst = overwrite ? v : *dst + v;
        }
        __syncwarp();
    }
}

// Forward on tensor cores (mixed precision): S = Q·Kᵀ (WMMA, fp32), the masked softmax per row in
// fp32 (one warp per row; the log-sum-exp saved for backward), P rounded to bf16, O = P·V (WMMA).
static size_t flash_tc_fwd_smem(int Tp, int D) {
    size_t LD = (size_t)D + 8, LT = (size_t)Tp + 8, LF = (size_t)Tp + 4;
    return 3 * (size_t)Tp * LD * sizeof(bf16_t) + (size_t)Tp * LT * sizeof(bf16_t) + (size_t)Tp * LF * sizeof(float) +
           FLASH_WARPS * 256 * sizeof(float);
}

template <int D, typename IO>
__global__ void __launch_bounds__(FLASH_WARPS * 32) flash_fwd_tc_kernel(const IO *qkv, const int32_t *pad,
                                                                         IO *out, float *lse, int H, int T, int Tp,
                                                                         float scale, bool causal) {
    extern __shared__ __align__(128) unsigned char smraw[];
    constexpr int LD = tc_dims<D>::LD, nd = D / 16;
    const int LT = Tp + 8, LF = Tp + 4, nt = Tp / 16;
    bf16_t *Qs = reinterpret_cast<bf16_t *>(smraw), *Ks = Qs + Tp * LD, *Vs = Ks + Tp * LD, *Pb = Vs + Tp * LD;
    float *F = reinterpret_cast<float *>(Pb + Tp * LT), *stage = F + Tp * LF;
    int bh = blockIdx.x, b = bh / H, h = bh % H, W = H * D;
    int64_t row = 3LL * W;
    const IO *base = qkv + (int64_t)b * T * row;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int idx = threadIdx.x; idx < Tp * (D / 4); idx += blockDim.x) {
        int r = idx / (D / 4), d = (idx % (D / 4)) * 4;
        float4 z = make_float4(0.f, 0.f, 0.f, 0.f), q = z, k = z, v = z;
        if (r < T) {
            q = tc_ld4(base + r * row + h * D + d);
            k = tc_ld4(base + r * row + W + h * D + d);
            v = tc_ld4(base + r * row + 2 * W + h * D + d);
        }
        __nv_bfloat162 *qd = reinterpret_cast<__nv_bfloat162 *>(Qs + r * LD + d), *kd = reinterpret_cast<__nv_bfloat162 *>(Ks + r * LD + d);
        __nv_bfloat162 *vd = reinterpret_cast<__nv_bfloat162 *>(Vs + r * LD + d);
        qd[0] = __floats2bfloat162_rn(q.x, q.y); qd[1] = __floats2bfloat162_rn(q.z, q.w);
        kd[0] = __floats2bfloat162_rn(k.x, k.y); kd[1] = __floats2bfloat162_rn(k.z, k.w);
        vd[0] = __floats2bfloat162_rn(v.x, v.y); vd[1] = __floats2bfloat162_rn(v.z, v.w);
    }
    __syncthreads();
    for (int t = warp; t < nt * nt; t += FLASH_WARPS) {  // S = Q·Kᵀ
        int ti = t / nt, tj = t % nt;
        wm::fragment<wm::accumulator, 16, 16, 16, float> acc;
        wm::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int k0 = 0; k0 < D; k0 += 16) {
            wm::fragment<wm::matrix_a, 16, 16, 16, bf16_t, wm::row_major> a;
            wm::fragment<wm::matrix_b, 16, 16, 16, bf16_t, wm::col_major> bm;
            wm::load_matrix_sync(a, Qs + ti * 16 * LD + k0, LD);
            wm::load_matrix_sync(bm, Ks + tj * 16 * LD + k0, LD);
            wm::mma_sync(acc, a, bm, acc);
        }
        wm::store_matrix_sync(F + ti * 16 * LF + tj * 16, acc, LF, wm::mem_row_major);
    }
    __syncthreads();
    const int32_t *pad_row = pad ? pad + (int64_t)b * T : nullptr;
    for (int i = warp; i < Tp; i += FLASH_WARPS) {  // the masked softmax of row i, in fp32
        float mx = -INFINITY;
        for (int j = lane; j < Tp; j += 32) {
            float sv = i < T && j < T && flash_visible(i, j, causal, pad_row) ? F[i * LF + j] * scale : -INFINITY;
            F[i * LF + j] = sv;
            mx = fmaxf(mx, sv);
        }
        mx = vlt_warp_max(mx);
        float sum = 0.0f;
        for (int j = lane; j < Tp; j += 32) {
            float e = mx == -INFINITY ? 0.0f : expf(F[i * LF + j] - mx);
            F[i * LF + j] = e;
            sum += e;
        }
        sum = vlt_warp_sum(sum);
        float inv = sum > 0.0f ? 1.0f / sum : 0.0f;  // every key masked: zeros out
        for (int j = lane; j < Tp; j += 32) Pb[i * LT + j] = __float2bfloat16_rn(F[i * LF + j] * inv);
        if (lane == 0 && i < T) lse[(int64_t)bh * T + i] = sum > 0.0f ? mx + logf(sum) : INFINITY;
    }
    __syncthreads();
    float *st = stage + warp * 256;
    for (int t = warp; t < nt * nd; t += FLASH_WARPS) {  // O = P·V
        int r = t / nd, c = t % nd;
        wm::fragment<wm::accumulator, 16, 16, 16, float> acc;
        wm::fill_fragment(acc, 0.0f);
        for (int m0 = 0; m0 < Tp; m0 += 16) {
            wm::fragment<wm::matrix_a, 16, 16, 16, bf16_t, wm::row_major> a;
            wm::fragment<wm::matrix_b, 16, 16, 16, bf16_t, wm::row_major> bm;
            wm::load_matrix_sync(a, Pb + r * 16 * LT + m0, LT);
            wm::load_matrix_sync(bm, Vs + m0 * LD + c * 16, LD);
            wm::mma_sync(acc, a, bm, acc);
        }
        wm::store_matrix_sync(st, acc, 16, wm::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
            int i = r * 16 + e / 16;
            if (i < T) tc_st(out + ((int64_t)b * T + i) * W + h * D + c * 16 + e % 16, st[e]);
        }
        __syncwarp();
    }
}

template <typename K>
static bool flash_smem_ok(K kernel, size_t bytes);

template <int D, typename IO>
static void flash_fwd_tc(const IO *qkv, const int32_t *pad, IO *out, float *lse, int B, int H, int T, float scale,
                         bool causal) {
    int Tp = (T + 15) & ~15;
    size_t sm = flash_tc_fwd_smem(Tp, D);
    if (!flash_smem_ok(flash_fwd_tc_kernel<D, IO>, sm)) abort();  // vlt_cuda_flash_tc_supported said yes
    flash_fwd_tc_kernel<D, IO><<<(unsigned)(B * H), FLASH_WARPS * 32, sm, vlt_cuda_stream()>>>(qkv, pad, out, lse, H, T,
                                                                                                Tp, scale, causal);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_flash_fwd_tc(const void *qkv, const int32_t *pad, void *out, float *lse, int B, int H, int T,
                                      int D, float scale, bool causal, bool io_bf16) {
    if (io_bf16) {
        const bf16_t *q = (const bf16_t *)qkv;
        bf16_t *o = (bf16_t *)out;
        if (D == 32) flash_fwd_tc<32>(q, pad, o, lse, B, H, T, scale, causal);
        else flash_fwd_tc<64>(q, pad, o, lse, B, H, T, scale, causal);
    } else {
        const float *q = (const float *)qkv;
        float *o = (float *)out;
        if (D == 32) flash_fwd_tc<32>(q, pad, o, lse, B, H, T, scale, causal);
        else flash_fwd_tc<64>(q, pad, o, lse, B, H, T, scale, causal);
    }
}

extern "C" int vlt_cuda_flash_tc_supported(int T, int D) {
    if (D != 32 && D != 64) return 0;
    int dev = 0, optin = 0, Tp = (T + 15) & ~15;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    return flash_tc_smem(Tp, D) <= (size_t)optin && flash_tc_fwd_smem(Tp, D) <= (size_t)optin;
}

template <typename K>
static bool flash_smem_ok(K kernel, size_t bytes);

template <int D, typename IO>
static void flash_bwd_tc(const IO *qkv, const int32_t *pad, const IO *out, const float *dout, const float *lse,
                         float *dqkv, int B, int H, int T, float scale, bool causal, bool overwrite) {
    int Tp = (T + 15) & ~15;
    size_t sm = flash_tc_smem(Tp, D);
    if (!flash_smem_ok(flash_bwd_tc_kernel<D, IO>, sm)) abort();  // vlt_cuda_flash_tc_supported said yes
    flash_bwd_tc_kernel<D, IO><<<(unsigned)(B * H), FLASH_WARPS * 32, sm, vlt_cuda_stream()>>>(
        qkv, pad, out, dout, lse, dqkv, H, T, Tp, scale, causal, overwrite);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_flash_bwd_tc(const void *qkv, const int32_t *pad, const void *out, const float *dout,
                                      const float *lse, float *dqkv, int B, int H, int T, int D, float scale,
                                      bool causal, bool overwrite, bool io_bf16) {
    if (io_bf16) {
        const bf16_t *q = (const bf16_t *)qkv, *o = (const bf16_t *)out;
        if (D == 32) flash_bwd_tc<32>(q, pad, o, dout, lse, dqkv, B, H, T, scale, causal, overwrite);
        else flash_bwd_tc<64>(q, pad, o, dout, lse, dqkv, B, H, T, scale, causal, overwrite);
    } else {
        const float *q = (const float *)qkv, *o = (const float *)out;
        if (D == 32) flash_bwd_tc<32>(q, pad, o, dout, lse, dqkv, B, H, T, scale, causal, overwrite);
        else flash_bwd_tc<64>(q, pad, o, dout, lse, dqkv, B, H, T, scale, causal, overwrite);
    }
}

static size_t flash_smem(int kind, int T, int D) {
    size_t KS = (size_t)D + 4, TP = ((size_t)T + 3) & ~(size_t)3, w = FLASH_WARPS;
    switch (kind) {
    case 0: return sizeof(float) * (2 * T * KS + w * KS + w * TP);               // K, V; q, p per warp
    case 1: return sizeof(float) * (2 * T * KS + 2 * w * KS + w * TP);           // K, V; q, dO, dS per warp
    default: return sizeof(float) * (2 * T * KS + 2 * TP + 2 * w * KS + 2 * w * TP);  // Q, dO, lse, Δ; k, v, p, dS
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
