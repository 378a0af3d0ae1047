// ops_cuda_matmul.cu — row-major (batched) matrix products through cuBLAS, the bias fill of
// linear, and the deterministic column sums used by the bias / broadcast gradients.
//
// cuBLAS is column-major: a row-major C (M, N) = op(A)·op(B) is the column-major Cᵀ (N, M) =
// op(B)ᵀ·op(A)ᵀ, so the call swaps A and B and keeps each one's transpose flag.
// Precision: fp32 storage; the compute type follows vlt_cuda_matmul_precision(): fp32, tf32, or
// bf16 tensor cores on bf16 copies of the operands; always fp32 accumulation and fp32 C.
#include <cuda_bf16.h>

#include "autograd/ops_cuda_common.h"

static cublasComputeType_t compute_type(void) {
    switch (vlt_cuda_matmul_precision()) {
    case 1: return CUBLAS_COMPUTE_32F_FAST_TF32;
    default: return CUBLAS_COMPUTE_32F;
    }
}

// RNE f32 -> bf16, 4 elements per thread when the count allows (operands are 16-byte aligned
// when they start a tensor; the scalar loop covers the rest).
__global__ void operand_to_bf16_kernel(__nv_bfloat16 *dst, const float *src, int64_t n) {
    int64_t n4 = ((uintptr_t)src % 16 == 0) ? n / 4 : 0;
    VLT_CUDA_LOOP(i, n4) {
        float4 v = reinterpret_cast<const float4 *>(src)[i];
        __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
        reinterpret_cast<__nv_bfloat162 *>(dst)[2 * i] = lo;
        reinterpret_cast<__nv_bfloat162 *>(dst)[2 * i + 1] = hi;
    }
    VLT_CUDA_LOOP(j, n - n4 * 4) dst[n4 * 4 + j] = __float2bfloat16_rn(src[n4 * 4 + j]);
}

// Elements an operand of `batch` matrices of `m` elements at stride `s` spans.
static int64_t operand_span(int64_t m, int64_t s, int batch) { return s ? (int64_t)(batch - 1) * s + m : m; }

static const __nv_bfloat16 *operand_bf16(int which, const float *src, int64_t n) {
    __nv_bfloat16 *dst = (__nv_bfloat16 *)vlt_cuda_cast_buffer(which, (size_t)n * sizeof(__nv_bfloat16));
    operand_to_bf16_kernel<<<vlt_cuda_blocks((n + 3) / 4), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(dst, src, n);
    cudaCheckLaunch();
    return dst;
}

extern "C" void vlt_cuda_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int64_t sA,
                              const float *B, int64_t sB, float beta, float *C, int64_t sC, int batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    int lda = ta ? M : K, ldb = tb ? K : N;
    if (vlt_cuda_matmul_precision() == 2) {
        // bf16 tensor cores: the operands are rounded to bf16 copies (a pass over each, far cheaper
        // than the product), the product accumulates in fp32 and C stays fp32. cuBLAS's
        // COMPUTE_32F_FAST_16BF on fp32 operands measured 3x slower than this on an H200.
        const __nv_bfloat16 *Ab = operand_bf16(0, A, operand_span((int64_t)M * K, sA, batch));
        const __nv_bfloat16 *Bb = operand_bf16(1, B, operand_span((int64_t)K * N, sB, batch));
        cublasCheck(cublasGemmStridedBatchedEx(vlt_cuda_cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                               ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, Bb, CUDA_R_16BF, ldb,
                                               (long long)sB, Ab, CUDA_R_16BF, lda, (long long)sA, &beta, C, CUDA_R_32F,
                                               N, (long long)sC, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return;
    }
    cublasCheck(cublasGemmStridedBatchedEx(vlt_cuda_cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                           ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, CUDA_R_32F, ldb,
                                           (long long)sB, A, CUDA_R_32F, lda, (long long)sA, &beta, C, CUDA_R_32F, N,
                                           (long long)sC, batch, compute_type(), CUBLAS_GEMM_DEFAULT));
}

extern "C" void vlt_cuda_to_bf16(uint16_t *dst, const float *src, int64_t n) {
    if (n <= 0) return;
    operand_to_bf16_kernel<<<vlt_cuda_blocks((n + 3) / 4), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(
        (__nv_bfloat16 *)dst, src, n);
    cudaCheckLaunch();
}

static void colsum_final(float *dst, const float *partial, int64_t C, int ny, float k);

// Stage 1 of vlt_cuda_to_bf16_colsum: thread c of row group y converts rows r ≡ y (mod ny) of
// column c and sums them into partial[y, c] (reads and writes coalesced across c).
__global__ void to_bf16_colsum_partial_kernel(__nv_bfloat16 *dst, const float *src, float *partial, int64_t R,
                                              int64_t C, int ny) {
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y;
    if (c >= C) return;
    float s = 0.0f;
    for (int64_t r = y; r < R; r += ny) {
        float v = src[r * C + c];
        dst[r * C + c] = __float2bfloat16_rn(v);
        s += v;
    }
    if (partial) partial[(int64_t)y * C + c] = s;
}

extern "C" void vlt_cuda_to_bf16_colsum(uint16_t *dst, const float *src, int64_t R, int64_t C, float *colsum) {
    if (R <= 0 || C <= 0) return;
    int ny = (int)((R + 31) / 32);
    if (ny > 256) ny = 256;
    float *partial = colsum ? (float *)vlt_cuda_scratch((size_t)ny * (size_t)C * sizeof(float)) : nullptr;
    unsigned gx = (unsigned)((C + VLT_CUDA_THREADS - 1) / VLT_CUDA_THREADS);
    to_bf16_colsum_partial_kernel<<<dim3(gx, (unsigned)ny), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(
        (__nv_bfloat16 *)dst, src, partial, R, C, ny);
    cudaCheckLaunch();
    if (colsum) colsum_final(colsum, partial, C, ny, 1.0f);
}

extern "C" void vlt_cuda_gemm_bf16(bool ta, bool tb, int M, int N, int K, const uint16_t *A, const uint16_t *B,
                                   float beta, float *C) {
    if (M <= 0 || N <= 0) return;
    float alpha = 1.0f;
    int lda = ta ? M : K, ldb = tb ? K : N;
    cublasCheck(cublasGemmEx(vlt_cuda_cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                             &alpha, B, CUDA_R_16BF, ldb, A, CUDA_R_16BF, lda, &beta, C, CUDA_R_32F, N,
                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// cuBLASLt plans for the linear layer's forward, one per (R, IN, OUT, bias) seen: the descriptor,
// the three layouts and the heuristic's first algorithm, made once (a heuristic query costs tens
// of microseconds of host time; a model has a handful of shapes).
namespace {
struct lt_plan {
    int R, IN, OUT, bias, out_bf16, ok;  // bias: 0 none, 1 fp32, 2 bf16
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
};
lt_plan g_plans[64];
int g_n_plans;
}  // namespace

static lt_plan *lt_plan_for(int R, int IN, int OUT, int bias, int out_bf16) {
    for (int i = 0; i < g_n_plans; i++) {
        lt_plan *p = &g_plans[i];
        if (p->R == R && p->IN == IN && p->OUT == OUT && p->bias == bias && p->out_bf16 == out_bf16) return p;
    }
    if (g_n_plans == 64) return nullptr;
    lt_plan *p = &g_plans[g_n_plans++];
    *p = lt_plan{R, IN, OUT, bias, out_bf16, 0, nullptr, nullptr, nullptr, nullptr, {}};
    // Column-major view of the row-major product: yᵀ (OUT, R) = op_T(W as (IN, OUT)) · xᵀ (IN, R).
    cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
    cublasLtEpilogue_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    cudaDataType_t bias_type = bias == 2 ? CUDA_R_16BF : CUDA_R_32F;
    cublasCheck(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof opT));
    cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof opN));
    cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (bias)
        cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                   sizeof bias_type));
    cublasCheck(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, IN, OUT, IN));
    cublasCheck(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, IN, R, IN));
    // y in fp32, or (out_bf16: an activation that only feeds the next product) in bf16, rounded
    // once from the fp32 accumulator with the fp32 bias added first
    cublasCheck(cublasLtMatrixLayoutCreate(&p->c, out_bf16 ? CUDA_R_16BF : CUDA_R_32F, OUT, R, OUT));
    size_t ws = 0;
    vlt_cuda_workspace(&ws);
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(vlt_cuda_lt(), p->desc, p->a, p->b, p->c, p->c, pref, 1, &res,
                                                       &found);
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
        p->algo = res.algo;
        p->ok = 1;
    }
    return p;
}

extern "C" int vlt_cuda_linear_bf16(const uint16_t *xb, const uint16_t *wb, const float *bias, const float *residual,
                                    float *y, int R, int IN, int OUT) {
    lt_plan *p = lt_plan_for(R, IN, OUT, bias != nullptr, 0);
    if (!p || !p->ok) return 0;
    if (bias) cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    float alpha = 1.0f, beta = residual ? 1.0f : 0.0f;
    const float *c = residual ? residual : y;  // D = A·B (+ bias) + beta·C, C and D of one layout
    size_t ws = 0;
    void *work = vlt_cuda_workspace(&ws);
    cublasCheck(cublasLtMatmul(vlt_cuda_lt(), p->desc, &alpha, wb, p->a, xb, p->b, &beta, c, p->c, y, p->c, &p->algo,
                               work, ws, vlt_cuda_stream()));
    return 1;
}

// Which epilogue the bf16-output product found (for the benchmark's report): 1 with the fp32
// bias, 2 with a bf16 copy of the bias (what cuBLASLt offers when it refuses fp32 bias with a
// bf16 D; PyTorch's autocast rounds the bias to bf16 too), 0 none yet.
static int g_bf16_out_bias = 0;
extern "C" int vlt_cuda_linear_bf16_out_bias_kind(void) { return g_bf16_out_bias; }

extern "C" int vlt_cuda_linear_bf16_out(const uint16_t *xb, const uint16_t *wb, const float *bias, uint16_t *yb, int R,
                                        int IN, int OUT) {
    lt_plan *p = lt_plan_for(R, IN, OUT, bias ? 1 : 0, 1);
    const void *bptr = bias;
    if (bias && (!p || !p->ok)) {
        p = lt_plan_for(R, IN, OUT, 2, 1);
        if (!p || !p->ok) return 0;
        __nv_bfloat16 *bb = (__nv_bfloat16 *)vlt_cuda_scratch((size_t)OUT * sizeof(__nv_bfloat16));
        operand_to_bf16_kernel<<<vlt_cuda_blocks((OUT + 3) / 4), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(bb, bias, OUT);
        cudaCheckLaunch();
        bptr = bb;
    }
    if (!p || !p->ok) return 0;
    if (bias) {
        g_bf16_out_bias = p->bias;
        cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bptr, sizeof bptr));
    }
    float alpha = 1.0f, beta = 0.0f;
    size_t ws = 0;
    void *work = vlt_cuda_workspace(&ws);
    cublasCheck(cublasLtMatmul(vlt_cuda_lt(), p->desc, &alpha, wb, p->a, xb, p->b, &beta, yb, p->c, yb, p->c, &p->algo,
                               work, ws, vlt_cuda_stream()));
    return 1;
}

__global__ void fill_rows_kernel(float *out, const float *bias, int64_t R, int C) {
    VLT_CUDA_LOOP(i, R * C) out[i] = bias[i % C];
}

extern "C" void vlt_cuda_fill_rows(float *out, const float *bias, int64_t R, int C) {
    fill_rows_kernel<<<vlt_cuda_blocks(R * C), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(out, bias, R, C);
    cudaCheckLaunch();
}

// Stage 1: partial[y, c] = Σ over rows r ≡ y (mod ny) of src[r, c] (· src2[r, c]).
__global__ void colsum_partial_kernel(float *partial, const float *src, const float *src2, int64_t R, int64_t C,
                                      int ny) {
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y;
    if (c >= C) return;
    float s = 0.0f;
    for (int64_t r = y; r < R; r += ny) s += src2 ? src[r * C + c] * src2[r * C + c] : src[r * C + c];
    partial[(int64_t)y * C + c] = s;
}

// Stage 2: dst[c] += k · Σ_y partial[y, c]. A block of 8 × 32 threads takes 32 columns: row group
// g sums rows y ≡ g (mod 8) (8 loads in flight per thread), then the 8 group sums are added in
// g order (deterministic). One thread per column walking all ny (up to 256) rows was
// latency-bound: about 0.06 ms a call by the H200 profile of 2026-12-04, 150 calls a ViT-B/32 step.
#define COLSUM_GROUPS 8
__global__ void colsum_final_kernel(float *dst, const float *partial, int64_t C, int ny, float k) {
    __shared__ float sh[COLSUM_GROUPS][33];
    int tx = threadIdx.x & 31, g = threadIdx.x >> 5;
    int64_t c = (int64_t)blockIdx.x * 32 + tx;
    float s = 0.0f;
    if (c < C) {
#pragma unroll 8
        for (int y = g; y < ny; y += COLSUM_GROUPS) s += partial[(int64_t)y * C + c];
    }
    sh[g][tx] = s;
    __syncthreads();
    if (g == 0 && c < C) {
        float t = 0.0f;
#pragma unroll
        for (int j = 0; j < COLSUM_GROUPS; j++) t += sh[j][tx];
        dst[c] += k * t;
    }
}

static void colsum_final(float *dst, const float *partial, int64_t C, int ny, float k) {
    colsum_final_kernel<<<(unsigned)((C + 31) / 32), 32 * COLSUM_GROUPS, 0, vlt_cuda_stream()>>>(dst, partial, C, ny, k);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_colsum_partials(float *dst, const float *partial, int64_t C, int ny) {
    colsum_final(dst, partial, C, ny, 1.0f);
}

extern "C" void vlt_cuda_colsum_acc(float *dst, const float *src, const float *src2, int64_t R, int64_t C, float k) {
    if (R <= 0 || C <= 0) return;
    int ny = (int)((R + 31) / 32);
    if (ny > 256) ny = 256;
    float *partial = (float *)vlt_cuda_scratch((size_t)ny * (size_t)C * sizeof(float));
    unsigned gx = (unsigned)((C + VLT_CUDA_THREADS - 1) / VLT_CUDA_THREADS);
    colsum_partial_kernel<<<dim3(gx, (unsigned)ny), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(partial, src, src2, R, C,
                                                                                               ny);
    cudaCheckLaunch();
    colsum_final(dst, partial, C, ny, k);
}
