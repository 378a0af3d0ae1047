// cuda_device.cu — the device context: one device, one stream, the cuBLAS / cuBLASLt handles and
// their workspace, persistent allocations, the device half of the step arena, and copies.
//
// The context is vlt's only device state (DESIGN.md: "no global state beyond the tape and the
// device context"). It is created on first use (vlt_cuda_ensure_init) and released by
// vlt_cuda_release. All work goes to its one stream, so kernels, copies and arena reuse are
// ordered without events; copies that touch host memory wait for the stream.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops_cuda_common.h"

extern "C" {
#include "autograd/error.h"
}

#define ARENA_ALIGN 256
#define WORKSPACE_BYTES (32u << 20)  // cuBLAS(Lt) workspace (Hopper wants >= 32 MiB)

typedef struct arena_chunk {
    struct arena_chunk *next;
    char *mem;
    size_t size, off;
} arena_chunk;

static struct {
    int ready;
    int device;
    cudaStream_t stream;
    cublasHandle_t cublas;
    cublasLtHandle_t lt;
    void *workspace;
    int matmul_precision;
    // step arena (device memory)
    arena_chunk *chunks;
    size_t used, high_water, capacity;
    uint64_t system_allocs;
    // blocks handed back during the step (vlt_cuda_arena_release), reused by exact size: the
    // backward's gradients of one layer take the memory of the layer after it. Cleared at reset.
    struct { void *p; size_t size; } *free_list;
    int n_free, cap_free;
    size_t reused;  // bytes served from the free list this step
    // bf16 copies of matmul operands (VLT_MATMUL_BF16): two buffers, grown to the largest
    // operand seen; stream order makes reuse between products safe.
    void *cast_buf[2];
    size_t cast_cap[2];
} g_cuda;

cudaStream_t vlt_cuda_stream(void) { return g_cuda.stream; }
cublasHandle_t vlt_cuda_cublas(void) { return g_cuda.cublas; }
cublasLtHandle_t vlt_cuda_lt(void) { return g_cuda.lt; }
extern "C" void *vlt_cuda_stream_ptr(void) { return (void *)g_cuda.stream; }
void *vlt_cuda_workspace(size_t *bytes) {
    *bytes = WORKSPACE_BYTES;
    return g_cuda.workspace;
}

extern "C" int vlt_cuda_device_count(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();  // no driver / no device: not an error here, just none
        return 0;
    }
    return n;
}

extern "C" int vlt_cuda_ensure_init(void) {
    if (g_cuda.ready) return 0;
    if (vlt_cuda_device_count() < 1) {
        vlt_error_set(VLT_ERR_DEVICE, "cuda: no CUDA device is visible (driver missing, or no GPU)");
        return -1;
    }
    const char *env = getenv("VLT_CUDA_DEVICE");
    g_cuda.device = env ? atoi(env) : 0;
    cudaCheck(cudaSetDevice(g_cuda.device));
    cudaCheck(cudaStreamCreateWithFlags(&g_cuda.stream, cudaStreamNonBlocking));
    cublasCheck(cublasCreate(&g_cuda.cublas));
    cublasCheck(cublasSetStream(g_cuda.cublas, g_cuda.stream));
    cublasCheck(cublasLtCreate(&g_cuda.lt));
    cudaCheck(cudaMalloc(&g_cuda.workspace, WORKSPACE_BYTES));
    cublasCheck(cublasSetWorkspace(g_cuda.cublas, g_cuda.workspace, WORKSPACE_BYTES));
    // fp32 products by default (the CPU backend's numbers); VLT_CUDA_MATMUL=tf32|bf16 overrides.
    const char *mm = getenv("VLT_CUDA_MATMUL");
    if (mm) g_cuda.matmul_precision = !strcmp(mm, "bf16") ? 2 : !strcmp(mm, "tf32") ? 1 : 0;
    g_cuda.ready = 1;
    // The first arena chunk: VLT_CUDA_ARENA_MB (default 256 MiB).
    const char *mb = getenv("VLT_CUDA_ARENA_MB");
    size_t first = (size_t)(mb ? atol(mb) : 256) << 20;
    if (first) {
        void *p = vlt_cuda_arena_alloc(first);
        if (!p) return -1;
        vlt_cuda_arena_reset();  // keep the chunk, hand nothing out
    }
    return 0;
}

static void chunks_free(arena_chunk *c) {
    while (c) {
        arena_chunk *n = c->next;
        cudaCheck(cudaFree(c->mem));
        free(c);
        c = n;
    }
}

extern "C" void vlt_cuda_release(void) {
    if (!g_cuda.ready) return;
    cudaCheck(cudaStreamSynchronize(g_cuda.stream));
    vlt_cuda_mt_release();
    vlt_cuda_graph_release();
    chunks_free(g_cuda.chunks);
    free(g_cuda.free_list);
    for (int i = 0; i < 2; i++) cudaCheck(cudaFree(g_cuda.cast_buf[i]));
    cudaCheck(cudaFree(g_cuda.workspace));
    cublasCheck(cublasLtDestroy(g_cuda.lt));
    cublasCheck(cublasDestroy(g_cuda.cublas));
    cudaCheck(cudaStreamDestroy(g_cuda.stream));
    int keep = g_cuda.matmul_precision;
    memset(&g_cuda, 0, sizeof g_cuda);
    g_cuda.matmul_precision = keep;
}

extern "C" void *vlt_cuda_malloc(size_t bytes) {
    if (vlt_cuda_ensure_init() != 0) return NULL;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        vlt_error_set(VLT_ERR_NOMEM, "cuda: cannot allocate %zu bytes of device memory", bytes);
        return NULL;
    }
    cudaCheck(e);
    return p;
}

extern "C" void *vlt_cuda_cast_buffer(int which, size_t bytes) {
    if (g_cuda.cast_cap[which] < bytes) {
        // While capturing nothing has run yet (the caller synchronised before the capture): the
        // growth is recorded as the reason to drop the graph, and no wait is made.
        if (!vlt_cuda_capture_refuse("an operand buffer grew (cudaMalloc)"))
            cudaCheck(cudaStreamSynchronize(g_cuda.stream));  // the old buffer may still be read
        cudaCheck(cudaFree(g_cuda.cast_buf[which]));
        size_t cap = bytes + bytes / 4;
        cudaCheck(cudaMalloc(&g_cuda.cast_buf[which], cap));
        g_cuda.cast_cap[which] = cap;
        g_cuda.system_allocs++;
    }
    return g_cuda.cast_buf[which];
}

extern "C" void vlt_cuda_free(void *p) {
    if (p) cudaCheck(cudaFree(p));  // cudaFree waits for work that may still use p
}

static arena_chunk *chunk_new(size_t size) {
    arena_chunk *c = (arena_chunk *)calloc(1, sizeof *c);
    if (!c) return NULL;
    void *mem = NULL;
    // A graph captured now would keep this chunk's addresses, which the next reset coalesces away.
    (void)vlt_cuda_capture_refuse("the step arena grew (cudaMalloc)");
    cudaError_t e = cudaMalloc(&mem, size);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        free(c);
        return NULL;
    }
    cudaCheck(e);
    c->mem = (char *)mem;
    c->size = size;
    g_cuda.capacity += size;
    g_cuda.system_allocs++;
    return c;
}

extern "C" void *vlt_cuda_arena_alloc(size_t bytes) {
    if (vlt_cuda_ensure_init() != 0) return NULL;
    size_t need = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (need == 0) need = ARENA_ALIGN;
    for (int i = g_cuda.n_free - 1; i >= 0; i--)  // newest first: likeliest still in L2
        if (g_cuda.free_list[i].size == need) {
            void *p = g_cuda.free_list[i].p;
            g_cuda.free_list[i] = g_cuda.free_list[--g_cuda.n_free];
            g_cuda.reused += need;
            return p;
        }
    arena_chunk *c = g_cuda.chunks;
    if (!c || c->off + need > c->size) {
        size_t size = g_cuda.capacity > need ? g_cuda.capacity : need;  // at least double
        arena_chunk *n = chunk_new(size);
        if (!n && size > need) {
            // Near the card's limit: one chunk of what is left (less 1 GiB for the cuBLAS and
            // operand buffers that grow outside the arena), so the rest of the step needs no
            // more cudaMalloc calls (a failing one costs milliseconds); else just what is asked.
            size_t fr = 0, tot = 0;
            cudaCheck(cudaMemGetInfo(&fr, &tot));
            size_t keep = (size_t)1 << 30, left = fr > keep ? (fr - keep) / ARENA_ALIGN * ARENA_ALIGN : 0;
            if (left > need && left < size) n = chunk_new(left);
            if (!n) n = chunk_new(need);
        }
        if (!n) {
            vlt_error_set(VLT_ERR_NOMEM, "cuda step arena: cannot grow by %zu bytes (%zu in use)", size, g_cuda.used);
            return NULL;
        }
        n->next = g_cuda.chunks;
        g_cuda.chunks = n;
        c = n;
    }
    void *p = c->mem + c->off;
    c->off += need;
    g_cuda.used += need;
    if (g_cuda.used > g_cuda.high_water) g_cuda.high_water = g_cuda.used;
    return p;
}

extern "C" void vlt_cuda_arena_release(void *p, size_t bytes) {
    if (!p || !g_cuda.ready) return;
    size_t need = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (need == 0) need = ARENA_ALIGN;
    if (g_cuda.n_free == g_cuda.cap_free) {
        int cap = g_cuda.cap_free ? 2 * g_cuda.cap_free : 256;
        void *grown = realloc(g_cuda.free_list, (size_t)cap * sizeof *g_cuda.free_list);
        if (!grown) return;  // not reusing a block is always safe
        g_cuda.free_list = (decltype(g_cuda.free_list))grown;
        g_cuda.cap_free = cap;
    }
    g_cuda.free_list[g_cuda.n_free].p = p;
    g_cuda.free_list[g_cuda.n_free].size = need;
    g_cuda.n_free++;
}

extern "C" size_t vlt_cuda_arena_reused(void) { return g_cuda.reused; }

extern "C" void vlt_cuda_arena_reset(void) {
    if (!g_cuda.ready) return;
    g_cuda.n_free = 0;
    g_cuda.reused = 0;
    if (g_cuda.chunks && g_cuda.chunks->next) {
        // Several chunks: one block of the high-water size replaces them (cudaFree waits for
        // the stream's work on them).
        chunks_free(g_cuda.chunks);
        g_cuda.chunks = NULL;
        g_cuda.capacity = 0;
        g_cuda.chunks = chunk_new(g_cuda.high_water);
        if (!g_cuda.chunks) {
            fprintf(stderr, "vlt: cuda step arena: cannot reserve %zu bytes after coalescing\n", g_cuda.high_water);
            abort();
        }
    }
    if (g_cuda.chunks) g_cuda.chunks->off = 0;
    g_cuda.used = 0;
}

extern "C" size_t vlt_cuda_arena_high_water(void) { return g_cuda.high_water; }
extern "C" uint64_t vlt_cuda_arena_system_allocs(void) { return g_cuda.system_allocs; }

extern "C" void vlt_cuda_copy_h2d(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    if (vlt_cuda_capture_refuse("a host-to-device copy from pageable memory")) return;
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_cuda.stream));
    cudaCheck(cudaStreamSynchronize(g_cuda.stream));  // src is pageable host memory the caller may reuse
}

extern "C" void vlt_cuda_copy_d2h(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    if (vlt_cuda_capture_refuse("a device-to-host copy (the host reads a device value)")) {
        memset(dst, 0, bytes);  // the capture is dropped; the host just must not read garbage
        return;
    }
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_cuda.stream));
    cudaCheck(cudaStreamSynchronize(g_cuda.stream));
}

extern "C" void vlt_cuda_copy_d2d(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_cuda.stream));
}

extern "C" void vlt_cuda_memset0(void *dst, size_t bytes) {
    if (!bytes) return;
    cudaCheck(cudaMemsetAsync(dst, 0, bytes, g_cuda.stream));
}

extern "C" void vlt_cuda_mem_info(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = *total_bytes = 0;
    if (g_cuda.ready) cudaCheck(cudaMemGetInfo(free_bytes, total_bytes));
}

extern "C" void vlt_cuda_synchronize(void) {
    if (vlt_cuda_capture_refuse("a wait for the device (cudaStreamSynchronize)")) return;
    if (g_cuda.ready) cudaCheck(cudaStreamSynchronize(g_cuda.stream));
}

extern "C" void vlt_cuda_set_matmul_precision(int mode) { g_cuda.matmul_precision = mode < 0 || mode > 2 ? 0 : mode; }
extern "C" int vlt_cuda_matmul_precision(void) { return g_cuda.matmul_precision; }
