// ops_cuda_normalize.cu — vlt_normalize_u8 on the device: uint8 (B, 3, H, W) pixels through the
// host's 3 x 256 table (ops_normalize.c builds it), so the device values are the CPU's bits.
#include <string.h>

#include "autograd/ops_cuda_common.h"

struct normalize_table {
    float v[3 * 256];
};

// The table (a kernel parameter, 3 KiB) goes to shared memory once per block; each thread maps
// its pixels with a grid-stride loop.
__global__ void normalize_u8_kernel(const uint8_t *__restrict__ x, float *__restrict__ y, int64_t n, int64_t plane,
                                    normalize_table table) {
    __shared__ float lut[3 * 256];
    for (int i = threadIdx.x; i < 3 * 256; i += blockDim.x) lut[i] = table.v[i];
    __syncthreads();
    VLT_CUDA_LOOP(i, n) {
        int c = (int)((i / plane) % 3);
        y[i] = lut[c * 256 + x[i]];
    }
}

extern "C" void vlt_cuda_normalize_u8(const uint8_t *x, float *y, int64_t n, int64_t plane, const float *lut768) {
    if (n <= 0) return;
    normalize_table t;
    memcpy(t.v, lut768, sizeof t.v);
    normalize_u8_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(x, y, n, plane, t);
    cudaCheckLaunch();
}
