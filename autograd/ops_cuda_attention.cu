// ops_cuda_attention.cu — scaled dot-product attention as the CPU backend computes it: per
// (batch, head) S = q·kᵀ·scale through one strided-batched gemm, the masked softmax in place
// (causal and key-padding masks; a row with every key masked gives zeros), out = P·v. P (B, H, Tq,
// Tk) is saved for backward. Materializes P: fine for the sequence lengths of these models (a few
// hundred tokens); a flash-style kernel that keeps P on chip is the next step.
#include "autograd/ops_cuda_common.h"

#define ATT_THREADS 128

// In place on S (rows of Tk): mask, softmax. Row r = (bh, i), b = bh / H.
__global__ void masked_softmax_kernel(float *S, const int32_t *pad, int H, int Tq, int Tk, bool causal) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    int i = (int)(r % Tq);
    int b = (int)(r / Tq / H);
    float *Sr = S + r * Tk;
    const int32_t *pad_row = pad ? pad + (int64_t)b * Tk : nullptr;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) {
        bool vis = !(causal && j > i + (Tk - Tq)) && !(pad_row && pad_row[j]);
        if (!vis) Sr[j] = -INFINITY;
        mx = fmaxf(mx, Sr[j]);
    }
    mx = vlt_block_max(mx, sh);
    if (mx == -INFINITY) {  // every key masked: zeros out, zero gradient
        for (int j = threadIdx.x; j < Tk; j += blockDim.x) Sr[j] = 0.0f;
        return;
    }
    float s = 0.0f;
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) {
        float e = expf(Sr[j] - mx);  // exp(-inf) = 0 for masked keys
        Sr[j] = e;
        s += e;
    }
    float inv = 1.0f / vlt_block_sum(s, sh);
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) Sr[j] *= inv;
}

extern "C" void vlt_cuda_attention_fwd(const float *q, const float *k, const float *v, const int32_t *pad, float *P,
                                       float *out, int B, int H, int Tq, int Tk, int D, float scale, bool causal) {
    int BH = B * H;
    int64_t sq = (int64_t)Tq * D, sk = (int64_t)Tk * D, sp = (int64_t)Tq * Tk;
    vlt_cuda_gemm(false, true, Tq, Tk, D, scale, q, sq, k, sk, 0.0f, P, sp, BH);  // S = q·kᵀ·scale
    masked_softmax_kernel<<<(unsigned)((int64_t)BH * Tq), ATT_THREADS, 0, vlt_cuda_stream()>>>(P, pad, H, Tq, Tk,
                                                                                               causal);
    cudaCheckLaunch();
    vlt_cuda_gemm(false, false, Tq, D, Tk, 1.0f, P, sp, v, sk, 0.0f, out, sq, BH);  // out = P·v
}

// dS = P ∘ (dP - Σ_j P dP) · scale, in place on dP (rows of Tk).
__global__ void softmax_grad_kernel(const float *P, float *dS, int Tk, float scale) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    const float *Pr = P + r * Tk;
    float *dr = dS + r * Tk;
    float dot = 0.0f;
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) dot += Pr[j] * dr[j];
    dot = vlt_block_sum(dot, sh);
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) dr[j] = Pr[j] * (dr[j] - dot) * scale;
}

extern "C" void vlt_cuda_attention_bwd(const float *P, const float *dO, const float *q, const float *k, const float *v,
                                       float *dq, float *dk, float *dv, float *dS, int B, int H, int Tq, int Tk, int D,
                                       float scale) {
    int BH = B * H;
    int64_t sq = (int64_t)Tq * D, sk = (int64_t)Tk * D, sp = (int64_t)Tq * Tk;
    if (dv) vlt_cuda_gemm(true, false, Tk, D, Tq, 1.0f, P, sp, dO, sq, 1.0f, dv, sk, BH);  // dV += Pᵀ·dO
    vlt_cuda_gemm(false, true, Tq, Tk, D, 1.0f, dO, sq, v, sk, 0.0f, dS, sp, BH);           // dP = dO·Vᵀ
    softmax_grad_kernel<<<(unsigned)((int64_t)BH * Tq), ATT_THREADS, 0, vlt_cuda_stream()>>>(P, dS, Tk, scale);
    cudaCheckLaunch();
    if (dq) vlt_cuda_gemm(false, false, Tq, D, Tk, 1.0f, dS, sp, k, sk, 1.0f, dq, sq, BH);  // dQ += dS·K
    if (dk) vlt_cuda_gemm(true, false, Tk, D, Tq, 1.0f, dS, sp, q, sq, 1.0f, dk, sk, BH);   // dK += dSᵀ·Q
}
