// feed_cuda.cu — the batch feed's CUDA backend (see feed.h): copies on a non-blocking side stream,
// ordered against the device context's compute stream by two events per slot, and the loader's
// page-locked host memory.
#include <stdlib.h>

#include "autograd/ops_cuda_common.h"

extern "C" {
#include "autograd/error.h"
#include "train/feed.h"
}

typedef struct {
    cudaStream_t side;
    cudaEvent_t copied[VLT_FEED_SLOTS], consumed[VLT_FEED_SLOTS];
    int consumed_recorded[VLT_FEED_SLOTS];   // a wait on a never-recorded event is a no-op, but say so
} feed_cuda;

static void cuda_upload(void *ctx, int slot, void *dst, const void *src, size_t bytes) {
    feed_cuda *c = (feed_cuda *)ctx;
    if (c->consumed_recorded[slot]) cudaCheck(cudaStreamWaitEvent(c->side, c->consumed[slot], 0));
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->side));
    cudaCheck(cudaEventRecord(c->copied[slot], c->side));
}

static void cuda_compute_wait(void *ctx, int slot) {
    feed_cuda *c = (feed_cuda *)ctx;
    cudaCheck(cudaStreamWaitEvent(vlt_cuda_stream(), c->copied[slot], 0));
}

static void cuda_consumed(void *ctx, int slot) {
    feed_cuda *c = (feed_cuda *)ctx;
    cudaCheck(cudaEventRecord(c->consumed[slot], vlt_cuda_stream()));
    c->consumed_recorded[slot] = 1;
}

static void cuda_host_wait(void *ctx, int slot) {
    feed_cuda *c = (feed_cuda *)ctx;
    cudaCheck(cudaEventSynchronize(c->copied[slot]));
}

extern "C" void *vlt_feed_cuda_create(vlt_feed_backend *be) {
    if (vlt_cuda_ensure_init() != 0) return NULL;
    feed_cuda *c = (feed_cuda *)calloc(1, sizeof *c);
    if (!c) {
        vlt_error_set(VLT_ERR_NOMEM, "feed: out of memory");
        return NULL;
    }
    cudaCheck(cudaStreamCreateWithFlags(&c->side, cudaStreamNonBlocking));
    for (int s = 0; s < VLT_FEED_SLOTS; s++) {
        cudaCheck(cudaEventCreateWithFlags(&c->copied[s], cudaEventDisableTiming));
        cudaCheck(cudaEventCreateWithFlags(&c->consumed[s], cudaEventDisableTiming));
    }
    be->ctx = c;
    be->upload = cuda_upload;
    be->compute_wait = cuda_compute_wait;
    be->consumed = cuda_consumed;
    be->host_wait = cuda_host_wait;
    return c;
}

extern "C" void vlt_feed_cuda_destroy(void *ctx) {
    feed_cuda *c = (feed_cuda *)ctx;
    if (!c) return;
    cudaCheck(cudaStreamSynchronize(c->side));
    for (int s = 0; s < VLT_FEED_SLOTS; s++) {
        cudaCheck(cudaEventDestroy(c->copied[s]));
        cudaCheck(cudaEventDestroy(c->consumed[s]));
    }
    cudaCheck(cudaStreamDestroy(c->side));
    free(c);
}

extern "C" void *vlt_feed_cuda_host_alloc(size_t bytes, void *ctx) {
    (void)ctx;
    if (vlt_cuda_ensure_init() != 0) return NULL;
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        vlt_error_set(VLT_ERR_NOMEM, "feed: cannot page-lock %zu bytes of host memory (%s)", bytes, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

extern "C" void vlt_feed_cuda_host_free(void *p, void *ctx) {
    (void)ctx;
    if (p) cudaCheck(cudaFreeHost(p));
}
