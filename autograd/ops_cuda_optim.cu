// ops_cuda_optim.cu — the SGD update (fp32 master weights and state, the CPU's formulas), one
// launch per parameter tensor. AdamW, the gradient norm, clipping and zeroing are multi-tensor
// launches (ops_cuda_multi.cu).
#include "autograd/ops_cuda_common.h"

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
