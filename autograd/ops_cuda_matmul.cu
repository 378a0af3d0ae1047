// ops_cuda_matmul.cu — row-major (batched) matrix products through cuBLAS, the bias fill of
// linear, and the deterministic column sums used by the bias / broadcast gradients.
//
// cuBLAS is column-major: a row-major C (M, N) = op(A)·op(B) is the column-major Cᵀ (N, M) =
// op(B)ᵀ·op(A)ᵀ, so the call swaps A and B and keeps each one's transpose flag.
// Precision: fp32 storage; the compute type follows vlt_cuda_matmul_precision() (fp32, tf32 or
// bf16 tensor cores, always fp32 accumulation).
#include "autograd/ops_cuda_common.h"

static cublasComputeType_t compute_type(void) {
    switch (vlt_cuda_matmul_precision()) {
    case 1: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case 2: return CUBLAS_COMPUTE_32F_FAST_16BF;
    default: return CUBLAS_COMPUTE_32F;
    }
}

extern "C" void vlt_cuda_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int64_t sA,
                              const float *B, int64_t sB, float beta, float *C, int64_t sC, int batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    int lda = ta ? M : K, ldb = tb ? K : N;
    cublasCheck(cublasGemmStridedBatchedEx(vlt_cuda_cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                           ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, CUDA_R_32F, ldb,
                                           (long long)sB, A, CUDA_R_32F, lda, (long long)sA, &beta, C, CUDA_R_32F, N,
                                           (long long)sC, batch, compute_type(), CUBLAS_GEMM_DEFAULT));
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

// Stage 2: dst[c] += k · Σ_y partial[y, c], in y order.
__global__ void colsum_final_kernel(float *dst, const float *partial, int64_t C, int ny, float k) {
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0.0f;
    for (int y = 0; y < ny; y++) s += partial[(int64_t)y * C + c];
    dst[c] += k * s;
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
    colsum_final_kernel<<<gx, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(dst, partial, C, ny, k);
    cudaCheckLaunch();
}
