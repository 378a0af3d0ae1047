// ops_cuda_multi.cu — multi-tensor launches: the optimizer step, the gradients' sum of squares,
// their scaling and zeroing over every parameter in ONE launch each, instead of one launch (or
// two) per tensor (ViT-B/32 CLIP has 302 tensors: ~5 ms of small launches per step before).
// The momentum EMA of ALBEF's momentum encoders (hundreds of pairs) is one more such launch; the
// feature-queue update (not a list) sits at the end of the file.
//
// A list is an array of entries (up to four pointers, an element count, a per-tensor float)
// cut into chunks of MT_CHUNK elements; block b takes chunk b. The device copy of a list (entries
// + chunk table) is cached by content: a training loop hands the same list every step, so the
// upload (a synchronous copy) happens once; a changed list (a parameter moved) is uploaded anew.
#include <string.h>

#include "autograd/ops_cuda_common.h"

#define MT_CHUNK 65536
#define MT_CACHE 8

namespace {
struct mt_list {
    vlt_mt_entry *host;  // the entries as given (the cache key)
    int n, n_chunks;
    vlt_mt_entry *dev_entries;
    int2 *dev_chunks;  // (entry, first element)
    uint64_t last_use;
};
mt_list g_lists[MT_CACHE];
uint64_t g_clock;
}  // namespace

static const mt_list *mt_get(const vlt_mt_entry *e, int n) {
    g_clock++;
    for (int i = 0; i < MT_CACHE; i++) {
        mt_list *l = &g_lists[i];
        if (l->host && l->n == n && memcmp(l->host, e, (size_t)n * sizeof *e) == 0) {
            l->last_use = g_clock;
            return l;
        }
    }
    int victim = 0;  // an empty slot, else the least recently used
    for (int i = 0; i < MT_CACHE; i++) {
        if (!g_lists[i].host) { victim = i; break; }
        if (g_lists[i].last_use < g_lists[victim].last_use) victim = i;
    }
    mt_list *l = &g_lists[victim];
    (void)vlt_cuda_capture_refuse("a multi-tensor list was uploaded (cudaMalloc + cudaMemcpy)");
    if (l->host && !vlt_cuda_graph_capturing()) {
        cudaCheck(cudaStreamSynchronize(vlt_cuda_stream()));  // a queued launch may still read it
    }
    if (l->host) {
        free(l->host);
        cudaCheck(cudaFree(l->dev_entries));
        cudaCheck(cudaFree(l->dev_chunks));
    }
    int nc = 0;
    for (int i = 0; i < n; i++) nc += (int)((e[i].n + MT_CHUNK - 1) / MT_CHUNK);
    int2 *chunks = (int2 *)malloc(sizeof(int2) * (size_t)(nc > 0 ? nc : 1));
    l->host = (vlt_mt_entry *)malloc(sizeof *e * (size_t)(n > 0 ? n : 1));
    if (!chunks || !l->host) {
        fprintf(stderr, "vlt: out of host memory for a multi-tensor list\n");
        abort();
    }
    memcpy(l->host, e, sizeof *e * (size_t)n);
    nc = 0;
    for (int i = 0; i < n; i++)
        for (int64_t s = 0; s < e[i].n; s += MT_CHUNK) chunks[nc++] = make_int2(i, (int)s);
    cudaCheck(cudaMalloc(&l->dev_entries, sizeof *e * (size_t)(n > 0 ? n : 1)));
    cudaCheck(cudaMalloc(&l->dev_chunks, sizeof(int2) * (size_t)(nc > 0 ? nc : 1)));
    cudaCheck(cudaMemcpy(l->dev_entries, e, sizeof *e * (size_t)n, cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(l->dev_chunks, chunks, sizeof(int2) * (size_t)nc, cudaMemcpyHostToDevice));
    free(chunks);
    l->n = n;
    l->n_chunks = nc;
    l->last_use = g_clock;
    return l;
}

extern "C" void vlt_cuda_mt_release(void) {
    for (int i = 0; i < MT_CACHE; i++) {
        mt_list *l = &g_lists[i];
        if (!l->host) continue;
        free(l->host);
        cudaCheck(cudaFree(l->dev_entries));
        cudaCheck(cudaFree(l->dev_chunks));
        memset(l, 0, sizeof *l);
    }
}

#define MT_LOOP(j, e, c)                                                                     \
    const vlt_mt_entry &e = entries[chunks[blockIdx.x].x];                                   \
    int64_t c##_end = min((int64_t)chunks[blockIdx.x].y + MT_CHUNK, e.n);                    \
    for (int64_t j = chunks[blockIdx.x].y + threadIdx.x; j < c##_end; j += blockDim.x)

// p[0] w, p[1] g, p[2] m, p[3] v; f: the weight decay of this tensor (0 when excluded).
// One body for the plain and the sync-free kernel, so that both compile to the same arithmetic.
static __device__ __forceinline__ void adamw_body(const vlt_mt_entry *entries, const int2 *chunks, float lr,
                                                  float b1, float b2, float eps, float step, float bc2_sqrt) {
    MT_LOOP(j, e, c) {
        float *w = e.p[0], *g = e.p[1], *m = e.p[2], *v = e.p[3];
        float wj = w[j], gj = g[j];
        wj -= lr * e.f * wj;
        float mj = b1 * m[j] + (1.0f - b1) * gj;
        float vj = b2 * v[j] + (1.0f - b2) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        w[j] = wj - step * mj / (sqrtf(vj) / bc2_sqrt + eps);
    }
}

__global__ void adamw_mt_kernel(const vlt_mt_entry *entries, const int2 *chunks, float lr, float b1, float b2,
                                float eps, float step, float bc2_sqrt) {
    adamw_body(entries, chunks, lr, b1, b2, eps, step, bc2_sqrt);
}

extern "C" void vlt_cuda_adamw_mt(const vlt_mt_entry *e, int n, float lr, float b1, float b2, float eps, float step,
                                  float bc2_sqrt) {
    if (n <= 0) return;
    const mt_list *l = mt_get(e, n);
    adamw_mt_kernel<<<(unsigned)l->n_chunks, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(l->dev_entries, l->dev_chunks,
                                                                                      lr, b1, b2, eps, step, bc2_sqrt);
    cudaCheckLaunch();
}

// Sync-free AdamW (cuda_graph.cu): h = {lr, lr / bc1, sqrt(bc2), -} from device memory, so a
// captured step stays valid as they change; nothing is written when this step's checks failed.
// The arithmetic is adamw_mt_kernel's.
__global__ void adamw_mt_dev_kernel(const vlt_mt_entry *entries, const int2 *chunks, float b1, float b2, float eps,
                                    const float *h, const int *bad) {
    if (bad && *bad) return;
    adamw_body(entries, chunks, h[0], b1, b2, eps, h[1], h[2]);
}

extern "C" void vlt_cuda_adamw_mt_dev(const vlt_mt_entry *e, int n, float b1, float b2, float eps, const float *hyper,
                                      const int *bad) {
    if (n <= 0) return;
    const mt_list *l = mt_get(e, n);
    adamw_mt_dev_kernel<<<(unsigned)l->n_chunks, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(
        l->dev_entries, l->dev_chunks, b1, b2, eps, hyper, bad);
    cudaCheckLaunch();
}

// p[0]: the tensor. Sum of squares per chunk in double (fixed order within the block).
__global__ void sumsq_mt_kernel(const vlt_mt_entry *entries, const int2 *chunks, double *partial) {
    __shared__ double sh[VLT_CUDA_THREADS];
    double s = 0.0;
    MT_LOOP(j, e, c) s += (double)e.p[0][j] * e.p[0][j];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) sh[threadIdx.x] += sh[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

__global__ void sum_partials_kernel(double *acc, const double *partial, int n) {
    __shared__ double sh[VLT_CUDA_THREADS];
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) sh[threadIdx.x] += sh[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) acc[0] += sh[0];
}

extern "C" void vlt_cuda_sumsq_mt(double *acc, const vlt_mt_entry *e, int n) {
    if (n <= 0) return;
    const mt_list *l = mt_get(e, n);
    double *partial = (double *)vlt_cuda_scratch((size_t)l->n_chunks * sizeof(double));
    sumsq_mt_kernel<<<(unsigned)l->n_chunks, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(l->dev_entries, l->dev_chunks,
                                                                                      partial);
    cudaCheckLaunch();
    sum_partials_kernel<<<1, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(acc, partial, l->n_chunks);
    cudaCheckLaunch();
}

// p[0] *= k (k = 0: zeroing, written as stores of 0 so NaN and inf are cleared too)
__global__ void scale_mt_kernel(const vlt_mt_entry *entries, const int2 *chunks, float k) {
    MT_LOOP(j, e, c) e.p[0][j] = k == 0.0f ? 0.0f : e.p[0][j] * k;
}

extern "C" void vlt_cuda_scale_mt(const vlt_mt_entry *e, int n, float k) {
    if (n <= 0) return;
    const mt_list *l = mt_get(e, n);
    scale_mt_kernel<<<(unsigned)l->n_chunks, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(l->dev_entries, l->dev_chunks, k);
    cudaCheckLaunch();
}

// t *= *k read on the device (the clip coefficient, vlt_cuda_clip_coef()[1]); 1 leaves t alone, as
// the host path, which scales only when the norm is above the limit.
__global__ void scale_mt_dev_kernel(const vlt_mt_entry *entries, const int2 *chunks, const float *kp) {
    const float k = *kp;
    if (k == 1.0f) return;
    MT_LOOP(j, e, c) e.p[0][j] = e.p[0][j] * k;
}

extern "C" void vlt_cuda_scale_mt_dev(const vlt_mt_entry *e, int n, const float *k) {
    if (n <= 0) return;
    const mt_list *l = mt_get(e, n);
    scale_mt_dev_kernel<<<(unsigned)l->n_chunks, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(l->dev_entries,
                                                                                          l->dev_chunks, k);
    cudaCheckLaunch();
}

// ---- momentum EMA (ALBEF's momentum encoders): p[0] momentum, p[1] online ----
// m = m·mu + o·one_minus with each product rounded before the sum, as the host loop (built
// without FMA contraction) computes it: nvcc would fuse m·mu + (o·one_minus) into one fma.
__global__ void ema_mt_kernel(const vlt_mt_entry *entries, const int2 *chunks, float mu, float one_minus) {
    MT_LOOP(j, e, c) {
        float *m = e.p[0];
        const float *o = e.p[1];
        m[j] = __fadd_rn(__fmul_rn(m[j], mu), __fmul_rn(o[j], one_minus));
    }
}

extern "C" void vlt_cuda_ema_mt(const vlt_mt_entry *e, int n, float mu, float one_minus) {
    if (n <= 0) return;
    const mt_list *l = mt_get(e, n);
    ema_mt_kernel<<<(unsigned)l->n_chunks, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(l->dev_entries, l->dev_chunks,
                                                                                    mu, one_minus);
    cudaCheckLaunch();
}

// ---- feature queues (ALBEF's image_queue / text_queue, (E, Q) row-major) ----
namespace {
struct queue_set {
    float *q[VLT_CUDA_QUEUE_MAX];
    const float *r[VLT_CUDA_QUEUE_MAX];
};
}  // namespace

// Thread per (queue k, row i, feature e) of the rows that survive (the last min(n, Q)); each
// writes one element, so the columns are distinct and the result does not depend on the order.
__global__ void queue_write_kernel(queue_set s, int nq, int E, int Q, int first, int n, const int32_t *ptr) {
    int p = ptr[0];
    if (p < 0 || p >= Q) p = 0;
    int64_t per = (int64_t)(n - first) * E, total = per * nq;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        int k = (int)(t / per);
        int64_t r = t % per;
        int i = first + (int)(r / E), e = (int)(r % E);
        int col = (int)(((int64_t)p + i) % Q);
        s.q[k][(int64_t)e * Q + col] = s.r[k][(int64_t)i * E + e];
    }
}

// After the writes (stream order): the pointer advances.
__global__ void queue_advance_kernel(int32_t *ptr, int Q, int n) {
    int p = ptr[0];
    if (p < 0 || p >= Q) p = 0;
    ptr[0] = (int32_t)(((int64_t)p + n) % Q);
}

extern "C" void vlt_cuda_queue_enqueue(float *const *queues, const float *const *rows, int nq, int E, int Q, int n,
                                       int32_t *ptr) {
    if (nq <= 0 || nq > VLT_CUDA_QUEUE_MAX || Q <= 0) return;
    if (n > 0 && E > 0) {
        queue_set s = {};
        for (int k = 0; k < nq; k++) {
            s.q[k] = queues[k];
            s.r[k] = rows[k];
        }
        int first = n > Q ? n - Q : 0;
        int64_t total = (int64_t)(n - first) * E * nq;
        int64_t blocks = (total + VLT_CUDA_THREADS - 1) / VLT_CUDA_THREADS;
        if (blocks > 65535) blocks = 65535;
        queue_write_kernel<<<(unsigned)blocks, VLT_CUDA_THREADS, 0, vlt_cuda_stream()>>>(s, nq, E, Q, first, n, ptr);
        cudaCheckLaunch();
    }
    queue_advance_kernel<<<1, 1, 0, vlt_cuda_stream()>>>(ptr, Q, n);
    cudaCheckLaunch();
}
