// ops_cuda_common.h — what the .cu files share (C++/CUDA only): the checking macros, the
// context's stream and cuBLAS handle, launch sizes and block reductions.
#ifndef VLT_OPS_CUDA_COMMON_H
#define VLT_OPS_CUDA_COMMON_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/ops_cuda.h"

// Every CUDA runtime call: on failure print file:line and CUDA's message, then abort.
#define cudaCheck(call) vlt_cuda_check_((call), #call, __FILE__, __LINE__)
// After every launch (catches bad configurations at once; faults inside kernels surface at the
// next synchronizing call, which is checked too).
#define cudaCheckLaunch() vlt_cuda_check_(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
#define cublasCheck(call) vlt_cublas_check_((call), #call, __FILE__, __LINE__)

static inline void vlt_cuda_check_(cudaError_t e, const char *what, const char *file, int line) {
    if (e != cudaSuccess) {
        fprintf(stderr, "vlt: CUDA error at %s:%d: %s (%s): %s\n", file, line, what, cudaGetErrorName(e),
                cudaGetErrorString(e));
        abort();
    }
}

static inline void vlt_cublas_check_(cublasStatus_t s, const char *what, const char *file, int line) {
    if (s != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "vlt: cuBLAS error at %s:%d: %s: %s\n", file, line, what, cublasGetStatusString(s));
        abort();
    }
}

// The context (cuda_device.cu). Valid after vlt_cuda_ensure_init() succeeded; ops only run on
// device tensors, which exist only after it did.
cudaStream_t vlt_cuda_stream(void);
cublasHandle_t vlt_cuda_cublas(void);
cublasLtHandle_t vlt_cuda_lt(void);
void *vlt_cuda_workspace(size_t *bytes);  // shared by cuBLAS and cuBLASLt (one stream: never concurrent)

#define VLT_CUDA_THREADS 256

static inline unsigned vlt_cuda_blocks(int64_t n, int threads = VLT_CUDA_THREADS) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535LL * 32) b = 65535LL * 32;  // grid-stride loops cover the rest
    return (unsigned)b;
}

// Grid-stride loop over [0, n).
#define VLT_CUDA_LOOP(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float vlt_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float vlt_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `shared` holds 32 floats. Deterministic: fixed tree order.
__device__ __forceinline__ float vlt_block_sum(float v, float *shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = vlt_warp_sum(v);
    __syncthreads();  // shared may still be read by a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < nwarps ? shared[lane] : 0.0f;
    return vlt_warp_sum(v);
}

__device__ __forceinline__ float vlt_block_max(float v, float *shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = vlt_warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < nwarps ? shared[lane] : -INFINITY;
    return vlt_warp_max(v);
}

// Scratch from the device step arena inside a launcher (backward passes); aborts when the
// device is out of memory (as the CPU backward does on its arena).
static inline void *vlt_cuda_scratch(size_t bytes) {
    void *p = vlt_cuda_arena_alloc(bytes);
    if (!p) {
        fprintf(stderr, "vlt: CUDA step arena out of memory (%zu bytes of scratch)\n", bytes);
        abort();
    }
    return p;
}

#endif
