// ops_cuda_optim.cu — AdamW and SGD updates (fp32 master weights and state, the CPU's formulas),
// the sum of squares behind the global gradient norm (double, two stages, deterministic) and
// the clip scaling. One launch per parameter tensor; a multi-tensor launch is a later step.
#include "autograd/ops_cuda_common.h"

__global__ void adamw_kernel(float *w, const float *g, float *m, float *v, int64_t n, float lr, float wd, float b1,
                             float b2, float eps, float step, float bc2_sqrt) {
    VLT_CUDA_LOOP(j, n) {
        float wj = w[j], gj = g[j];
        wj -= lr * wd * wj;
        float mj = b1 * m[j] + (1.0f - b1) * gj;
        float vj = b2 * v[j] + (1.0f - b2) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        w[j] = wj - step * mj / (sqrtf(vj) / bc2_sqrt + eps);
    }
}

extern "C" void vlt_cuda_adamw(float *w, const float *g, float *m, float *v, int64_t n, float lr, float wd, float b1,
                               float b2, float eps, float step, float bc2_sqrt) {
    adamw_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(w, g, m, v, n, lr, wd, b1, b2, eps,
                                                                                step, bc2_sqrt);
    cudaCheckLaunch();
}

__global__ void sgd_kernel(float *w, const float *g, float *b, int64_t n, float lr, float wd, float mu, bool nesterov,
                           bool started) {
    VLT_CUDA_LOOP(j, n) {
        float d = g[j] + wd * w[j];
        if (b) {
            b[j] = started ? mu * b[j] + d : d;
            d = nesterov ? d + mu * b[j] : b[j];
        }
        w[j] -= lr * d;
    }
}

extern "C" void vlt_cuda_sgd(float *w, const float *g, float *buf, int64_t n, float lr, float wd, float mu,
                             bool nesterov, bool started) {
    sgd_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(w, g, buf, n, lr, wd, mu, nesterov,
                                                                              started);
    cudaCheckLaunch();
}

#define SUMSQ_BLOCKS 256

__device__ double block_sum_double(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) sh[threadIdx.x] += sh[threadIdx.x + half];
        __syncthreads();
    }
    return sh[0];
}

__global__ void sumsq_partial_kernel(double *partial, const float *g, int64_t n) {
    __shared__ double sh[VLT_CUDA_THREADS];
    double s = 0.0;
    VLT_CUDA_LOOP(j, n) s += (double)g[j] * g[j];
    s = block_sum_double(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sumsq_final_kernel(double *acc, const double *partial, int nb) {
    __shared__ double sh[VLT_CUDA_THREADS];
    double s = 0.0;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) s += partial[i];
    s = block_sum_double(s, sh);
    if (threadIdx.x == 0) acc[0] += s;
}

extern "C" void vlt_cuda_sumsq_acc(double *acc, const float *g, int64_t n) {
    unsigned nb = vlt_cuda_blocks(n);
    if (nb > SUMSQ_BLOCKS) nb = SUMSQ_BLOCKS;
    double *partial = (double *)vlt_cuda_scratch(nb * sizeof(double));
    sumsq_partial_kernel<<<nb, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(partial, g, n);
    cudaCheckLaunch();
    sumsq_final_kernel<<<1, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(acc, partial, (int)nb);
    cudaCheckLaunch();
}

__global__ void scale_kernel(float *g, int64_t n, float k) { VLT_CUDA_LOOP(j, n) g[j] *= k; }

extern "C" void vlt_cuda_scale(float *g, int64_t n, float k) {
    scale_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(g, n, k);
    cudaCheckLaunch();
}
