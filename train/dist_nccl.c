// dist_nccl.c — the NCCL backend of the data-parallel collectives for CUDA tensors (see dist.h):
// one communicator per process, on the device context's stream. MPI only starts the job and
// broadcasts the NCCL id (rank 0 makes it); with one rank no MPI is needed at all, which is how
// a one-GPU machine runs this path (VLT_DIST_NCCL=1).
//
// The overlapped reducer (train/dist.c) puts its bucket all-reduces on a second, communication
// stream: each starts after an event recorded on the compute stream once the bucket is packed, so
// it runs while backward's remaining kernels run; the compute stream waits for the communication
// stream (an event) before the averages are unpacked.
//
// Waiting: a collective is enqueued, then the host polls the stream, NCCL's asynchronous error
// and the deadline (vlt_dist.timeout_s) every 100 µs; a failed or hung collective (a peer died
// or hangs) aborts the communicator and ends the whole job with a message naming the rank and
// the collective, never an endless hang. Built only with make CUDA=1 when nccl.h is found
// (VLT_HAVE_NCCL); otherwise every entry point says so.
#include "train/dist.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "autograd/device.h"

#ifdef VLT_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#ifdef VLT_MPI
#include <mpi.h>
#endif

static ncclComm_t g_comm;
static bool g_active;
// The overlapped reducer's communication stream and the two events that order it with the
// compute stream (one event each way suffices: cudaStreamWaitEvent takes the record current at
// the call, so an event can be recorded again right after).
static cudaStream_t g_comm_stream;
static cudaEvent_t g_ev_compute, g_ev_comm;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// A failure here is a lost peer or a broken job: end every rank (the others may be waiting).
_Noreturn static void nccl_fail(const vlt_dist *d, const char *what, const char *why) {
    char msg[512];
    snprintf(msg, sizeof msg, "NCCL %s: %s", what, why);
    if (g_active) ncclCommAbort(g_comm);
    g_active = false;
    vlt_dist_abort(d, 1, msg);
}

static void nccl_check(const vlt_dist *d, ncclResult_t r, const char *what) {
    if (r != ncclSuccess && r != ncclInProgress) nccl_fail(d, what, ncclGetErrorString(r));
}

// Waits for the work queued on stream st (the collective and what came before it).
static void nccl_wait_on(const vlt_dist *d, cudaStream_t st, const char *what) {
    double deadline = d->timeout_s > 0 ? now_s() + d->timeout_s : 0;
    for (;;) {
        cudaError_t e = cudaStreamQuery(st);
        if (e == cudaSuccess) return;
        if (e != cudaErrorNotReady) nccl_fail(d, what, cudaGetErrorString(e));
        ncclResult_t ae = ncclSuccess;
        ncclCommGetAsyncError(g_comm, &ae);
        if (ae != ncclSuccess && ae != ncclInProgress) nccl_fail(d, what, ncclGetErrorString(ae));
        if (deadline > 0 && now_s() > deadline) {
            char why[128];
            snprintf(why, sizeof why, "not finished after %.0f s (a rank died or hangs; VLT_DIST_TIMEOUT)", d->timeout_s);
            nccl_fail(d, what, why);
        }
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}

static void nccl_wait(const vlt_dist *d, const char *what) { nccl_wait_on(d, (cudaStream_t)vlt_cuda_stream_handle(), what); }

vlt_status vlt_dist_nccl_init(const vlt_dist *d) {
    if (g_active) return VLT_OK;
    VLT_TRY(vlt_cuda_init());
    ncclUniqueId id;
    if (d->rank == 0 && ncclGetUniqueId(&id) != ncclSuccess)
        return vlt_error_set(VLT_ERR_DEVICE, "NCCL: ncclGetUniqueId failed on rank 0");
    if (d->world > 1) {
#ifdef VLT_MPI
        MPI_Comm c = MPI_Comm_f2c((MPI_Fint)d->comm);
        if (MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, c) != MPI_SUCCESS)
            return vlt_error_set(VLT_ERR_STATE, "NCCL: broadcasting the id from rank 0 over MPI failed (rank %d)", d->rank);
#else
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "NCCL: %d ranks need MPI to share the id (build with MPI=1)", d->world);
#endif
    }
    ncclResult_t r = ncclCommInitRank(&g_comm, d->world, id, d->rank);
    if (r != ncclSuccess)
        return vlt_error_set(VLT_ERR_DEVICE, "NCCL: communicator init failed on rank %d of %d: %s", d->rank, d->world,
                             ncclGetErrorString(r));
    if (cudaStreamCreateWithFlags(&g_comm_stream, cudaStreamNonBlocking) != cudaSuccess ||
        cudaEventCreateWithFlags(&g_ev_compute, cudaEventDisableTiming) != cudaSuccess ||
        cudaEventCreateWithFlags(&g_ev_comm, cudaEventDisableTiming) != cudaSuccess) {
        ncclCommDestroy(g_comm);
        return vlt_error_set(VLT_ERR_DEVICE, "NCCL: cannot create the communication stream or its events on rank %d",
                             d->rank);
    }
    g_active = true;
    return VLT_OK;
}

bool vlt_dist_nccl_active(void) { return g_active; }

void vlt_dist_nccl_shutdown(void) {
    if (!g_active) return;
    vlt_device_synchronize();
    cudaStreamSynchronize(g_comm_stream);
    ncclCommDestroy(g_comm);
    cudaEventDestroy(g_ev_compute);
    cudaEventDestroy(g_ev_comm);
    cudaStreamDestroy(g_comm_stream);
    g_active = false;
}

vlt_status vlt_dist_nccl_allreduce_avg(const vlt_dist *d, float *const *bufs, const int64_t *n, int count) {
    cudaStream_t st = (cudaStream_t)vlt_cuda_stream_handle();
    nccl_check(d, ncclGroupStart(), "gradient all-reduce");
    for (int i = 0; i < count; i++)
        nccl_check(d, ncclAllReduce(bufs[i], bufs[i], (size_t)n[i], ncclFloat, ncclAvg, g_comm, st), "gradient all-reduce");
    nccl_check(d, ncclGroupEnd(), "gradient all-reduce");
    nccl_wait(d, "gradient all-reduce");
    return VLT_OK;
}

vlt_status vlt_dist_nccl_allgather(const vlt_dist *d, const float *x, float *out, int64_t n) {
    nccl_check(d, ncclAllGather(x, out, (size_t)n, ncclFloat, g_comm, (cudaStream_t)vlt_cuda_stream_handle()),
               "feature all-gather");
    nccl_wait(d, "feature all-gather");
    return VLT_OK;
}

vlt_status vlt_dist_nccl_reduce_scatter(const vlt_dist *d, const float *x, float *out, int64_t n) {
    nccl_check(d, ncclReduceScatter(x, out, (size_t)n, ncclFloat, ncclSum, g_comm,
                                    (cudaStream_t)vlt_cuda_stream_handle()),
               "feature all-gather backward (reduce-scatter)");
    nccl_wait(d, "feature all-gather backward (reduce-scatter)");
    return VLT_OK;
}

vlt_status vlt_dist_nccl_bucket_start(const vlt_dist *d, void *buf, int64_t n, bool bf16) {
    if (!g_active) return vlt_error_set(VLT_ERR_STATE, "NCCL: the bucketed all-reduce needs the communicator");
    cudaStream_t compute = (cudaStream_t)vlt_cuda_stream_handle();
    if (cudaEventRecord(g_ev_compute, compute) != cudaSuccess ||
        cudaStreamWaitEvent(g_comm_stream, g_ev_compute, 0) != cudaSuccess)
        nccl_fail(d, "gradient all-reduce", "ordering the communication stream after the compute stream failed");
    nccl_check(d, ncclAllReduce(buf, buf, (size_t)n, bf16 ? ncclBfloat16 : ncclFloat, bf16 ? ncclSum : ncclAvg, g_comm,
                                g_comm_stream), "gradient all-reduce (bucket)");
    return VLT_OK;
}

vlt_status vlt_dist_nccl_buckets_wait(const vlt_dist *d) {
    if (!g_active) return vlt_error_set(VLT_ERR_STATE, "NCCL: the bucketed all-reduce needs the communicator");
    if (cudaEventRecord(g_ev_comm, g_comm_stream) != cudaSuccess ||
        cudaStreamWaitEvent((cudaStream_t)vlt_cuda_stream_handle(), g_ev_comm, 0) != cudaSuccess)
        nccl_fail(d, "gradient all-reduce", "ordering the compute stream after the communication stream failed");
    nccl_wait_on(d, g_comm_stream, "gradient all-reduce (buckets)");
    return VLT_OK;
}

#else  // built without NCCL

vlt_status vlt_dist_nccl_init(const vlt_dist *d) {
    (void)d;
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "NCCL: this binary was built without NCCL (make CUDA=1 with nccl.h)");
}
bool vlt_dist_nccl_active(void) { return false; }
void vlt_dist_nccl_shutdown(void) {}
vlt_status vlt_dist_nccl_allreduce_avg(const vlt_dist *d, float *const *bufs, const int64_t *n, int count) {
    (void)d; (void)bufs; (void)n; (void)count;
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "NCCL: not built in");
}
vlt_status vlt_dist_nccl_allgather(const vlt_dist *d, const float *x, float *out, int64_t n) {
    (void)d; (void)x; (void)out; (void)n;
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "NCCL: not built in");
}
vlt_status vlt_dist_nccl_reduce_scatter(const vlt_dist *d, const float *x, float *out, int64_t n) {
    (void)d; (void)x; (void)out; (void)n;
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "NCCL: not built in");
}
vlt_status vlt_dist_nccl_bucket_start(const vlt_dist *d, void *buf, int64_t n, bool bf16) {
    (void)d; (void)buf; (void)n; (void)bf16;
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "NCCL: not built in");
}
vlt_status vlt_dist_nccl_buckets_wait(const vlt_dist *d) {
    (void)d;
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "NCCL: not built in");
}
#endif
