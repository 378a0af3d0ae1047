// ops_cuda_index.cu — embedding (deterministic backward without atomics: one block owns one
// vocabulary row and sums its positions in order of appearance, as the CPU does), row gather, and
// the copies behind permute / contiguous / concat / slice.
#include <cub/cub.cuh>

#include "autograd/ops_cuda_common.h"

__global__ void embedding_fwd_kernel(const float *w, const int32_t *ids, float *out, int64_t n, int D) {
    VLT_CUDA_LOOP(i, n * D) out[i] = w[(int64_t)ids[i / D] * D + i % D];
}

extern "C" void vlt_cuda_embedding_fwd(const float *w, const int32_t *ids, float *out, int64_t n, int D) {
    embedding_fwd_kernel<<<vlt_cuda_blocks(n * D), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(w, ids, out, n, D);
    cudaCheckLaunch();
}

// Block u: row rows[u]; its positions pos[start[u] .. start[u+1]) in order.
__global__ void embedding_bwd_kernel(const float *g, float *gw, const int32_t *rows, const int32_t *start,
                                     const int32_t *pos, int D) {
    int u = blockIdx.x;
    int64_t row = rows[u];
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float s = gw[row * D + d];
        for (int p = start[u]; p < start[u + 1]; p++) s += g[(int64_t)pos[p] * D + d];
        gw[row * D + d] = s;
    }
}

extern "C" void vlt_cuda_embedding_bwd(const float *g, float *gw, const int32_t *rows, const int32_t *start,
                                       const int32_t *pos, int n_rows, int D) {
    if (n_rows <= 0) return;
    embedding_bwd_kernel<<<(unsigned)n_rows, 128, 0, vlt_cuda_stream()>>>(g, gw, rows, start, pos, D);
    cudaCheckLaunch();
}

// Sync-free form (cuda_graph.cu): the owner lists of embedding_owner_lists (ops_index.c) built on
// the device. A stable radix sort of (id, position) pairs gives each row's positions in order of
// appearance; block i owns the run that starts at sorted element i (other blocks exit), and adds
// the run's gradients in that order onto gw: the host lists' sums, in the same order.
__global__ void embedding_bwd_sorted_kernel(const float *g, float *gw, const int32_t *key, const int32_t *pos,
                                            int64_t n, int D) {
    int64_t i = blockIdx.x;
    if (i > 0 && key[i] == key[i - 1]) return;
    int64_t row = key[i], end = i + 1;
    while (end < n && key[end] == key[i]) end++;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float s = gw[row * D + d];
        for (int64_t p = i; p < end; p++) s += g[(int64_t)pos[p] * D + d];
        gw[row * D + d] = s;
    }
}

__global__ void iota_kernel(int32_t *p, int64_t n) { VLT_CUDA_LOOP(i, n) p[i] = (int32_t)i; }

extern "C" void vlt_cuda_embedding_bwd_sorted(const float *g, float *gw, const int32_t *ids, int64_t n, int V, int D) {
    if (n <= 0) return;
    cudaStream_t st = vlt_cuda_stream();
    size_t b = (size_t)n * sizeof(int32_t);
    int32_t *pos_in = (int32_t *)vlt_cuda_scratch(b), *key = (int32_t *)vlt_cuda_scratch(b),
            *pos = (int32_t *)vlt_cuda_scratch(b);
    iota_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, st>>>(pos_in, n);
    cudaCheckLaunch();
    int bits = 1;
    while (bits < 31 && ((int64_t)1 << bits) < (int64_t)V) bits++;
    size_t temp = 0;
    cudaCheck(cub::DeviceRadixSort::SortPairs(nullptr, temp, ids, key, pos_in, pos, (int)n, 0, bits, st));
    void *tmp = vlt_cuda_scratch(temp ? temp : 1);
    cudaCheck(cub::DeviceRadixSort::SortPairs(tmp, temp, ids, key, pos_in, pos, (int)n, 0, bits, st));
    embedding_bwd_sorted_kernel<<<(unsigned)n, 128, 0, st>>>(g, gw, key, pos, n, D);
    cudaCheckLaunch();
}

__global__ void gather_rows_fwd_kernel(const float *x, const int32_t *idx, float *out, int B, int T, int D) {
    VLT_CUDA_LOOP(i, (int64_t)B * D) {
        int64_t b = i / D;
        out[i] = x[(b * T + idx[b]) * D + i % D];
    }
}

__global__ void gather_rows_bwd_kernel(const float *g, const int32_t *idx, float *gx, int B, int T, int D) {
    VLT_CUDA_LOOP(i, (int64_t)B * D) {
        int64_t b = i / D;
        gx[(b * T + idx[b]) * D + i % D] += g[i];  // one row per b: no two threads share an element
    }
}

extern "C" void vlt_cuda_gather_rows_fwd(const float *x, const int32_t *idx, float *out, int B, int T, int D) {
    gather_rows_fwd_kernel<<<vlt_cuda_blocks((int64_t)B * D), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(x, idx, out, B,
                                                                                                       T, D);
    cudaCheckLaunch();
}

extern "C" void vlt_cuda_gather_rows_bwd(const float *g, const int32_t *idx, float *gx, int B, int T, int D) {
    gather_rows_bwd_kernel<<<vlt_cuda_blocks((int64_t)B * D), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(g, idx, gx, B,
                                                                                                       T, D);
    cudaCheckLaunch();
}

struct shape4 {
    int n[4];
    int64_t s[4];
};

__global__ void strided_copy_kernel(float *dst, float *src, shape4 sh, bool add_to_src) {
    int64_t total = (int64_t)sh.n[0] * sh.n[1] * sh.n[2] * sh.n[3];
    VLT_CUDA_LOOP(i, total) {
        int64_t r = i;
        int e = (int)(r % sh.n[3]);
        r /= sh.n[3];
        int c = (int)(r % sh.n[2]);
        r /= sh.n[2];
        int b = (int)(r % sh.n[1]);
        int a = (int)(r / sh.n[1]);
        int64_t si = a * sh.s[0] + b * sh.s[1] + c * sh.s[2] + e * sh.s[3];
        if (add_to_src) src[si] += dst[i];
        else dst[i] = src[si];
    }
}

extern "C" void vlt_cuda_strided_copy(float *dst, const float *src, const int *shape, const int64_t *src_stride,
                                      bool add_to_src) {
    shape4 sh;
    for (int d = 0; d < 4; d++) {
        sh.n[d] = shape[d];
        sh.s[d] = src_stride[d];
    }
    int64_t total = (int64_t)sh.n[0] * sh.n[1] * sh.n[2] * sh.n[3];
    strided_copy_kernel<<<vlt_cuda_blocks(total), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(dst, (float *)src, sh,
                                                                                          add_to_src);
    cudaCheckLaunch();
}

__global__ void block_copy_kernel(float *dst, int64_t dst_row, int64_t dst_off, const float *src, int64_t src_row,
                                  int64_t src_off, int64_t outer, int64_t len, bool accumulate) {
    VLT_CUDA_LOOP(i, outer * len) {
        int64_t o = i / len, j = i % len;
        float v = src[o * src_row + src_off + j];
        float *d = dst + o * dst_row + dst_off + j;
        if (accumulate) *d += v;
        else *d = v;
    }
}

extern "C" void vlt_cuda_block_copy(float *dst, int64_t dst_row, int64_t dst_off, const float *src, int64_t src_row,
                                    int64_t src_off, int64_t outer, int64_t len, bool accumulate) {
    if (outer <= 0 || len <= 0) return;
    block_copy_kernel<<<vlt_cuda_blocks(outer * len), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(
        dst, dst_row, dst_off, src, src_row, src_off, outer, len, accumulate);
    cudaCheckLaunch();
}

// One thread per output element; consecutive threads write consecutive x within a patch row and
// read consecutive pixels of an image row (coalesced both ways for P >= 16).
__global__ void patchify_kernel(const float *im, float *out, int B, int S, int P) {
    int G = S / P, K = 3 * P * P;
    int64_t n = (int64_t)B * G * G * K;
    VLT_CUDA_LOOP(i, n) {
        int k = (int)(i % K);
        int64_t pidx = i / K;  // b·G² + gy·G + gx
        int gx = (int)(pidx % G), gy = (int)((pidx / G) % G), b = (int)(pidx / ((int64_t)G * G));
        int c = k / (P * P), y = (k / P) % P, x = k % P;
        out[i] = im[(((int64_t)b * 3 + c) * S + gy * P + y) * S + gx * P + x];
    }
}

extern "C" void vlt_cuda_patchify(const float *images, float *out, int B, int S, int P) {
    int G = S / P;
    int64_t n = (int64_t)B * G * G * 3 * P * P;
    patchify_kernel<<<vlt_cuda_blocks(n), VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(images, out, B, S, P);
    cudaCheckLaunch();
}
