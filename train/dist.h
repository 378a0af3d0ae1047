// dist.h — data-parallel training across ranks: who am I (rank, world size, local rank), the
// gradient all-reduce (average) in buckets, the start-of-run parameter broadcast, scalar sums
// for logging, and the autograd-aware all-gather behind the global-batch contrastive loss.
//
// Backends: MPI on the CPU (built with `make MPI=1`, -DVLT_MPI); without MPI (or when the
// process was started without a launcher and VLT_DIST=off) every function is the world-size-1
// identity, so a plain `vlt train` runs unchanged. CUDA tensors go through NCCL behind the same
// calls (train/dist_nccl.c; MPI then only starts the job and broadcasts the NCCL id).
//
// Use (one vlt_dist per process, made once in main; MPI cannot be started twice):
//     vlt_dist d;  vlt_dist_init(&d, &argc, &argv);           // before parsing argv
//     vlt_dist_broadcast_params(&d, &model.params);             // all ranks start equal
//     per step:  img, txt = encode(local batch)  (B_local, E), L2-normalized
//                loss = vlt_dist_clip_loss(&d, img, txt, logit_scale, logit_bias, NULL);
//                vlt_backward(loss);
//                vlt_dist_allreduce_grads(&d, params, n, 0);  // before clipping / the optimizer
//     vlt_dist_finalize(&d);
//
// Every collective must be called by every rank, in the same order, with the same shapes. A
// failed collective or one that does not finish within d.timeout_s (a rank that died or hangs)
// prints a message naming the rank and the collective and aborts the whole job (MPI_Abort);
// Open MPI's mpirun also ends the job by itself when a rank process dies. Shape mismatches
// between ranks that can be checked cheaply come back as VLT_ERR_SHAPE on every rank.
#ifndef VLT_DIST_H
#define VLT_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "autograd/params.h"
#include "autograd/tensor.h"

typedef enum {
    VLT_DIST_NONE = 0,   // one process, no communication
    VLT_DIST_MPI = 1,    // MPI collectives on host memory
} vlt_dist_backend;

// Default gradient bucket: 25 MB of f32 (as PyTorch DDP's bucket_cap_mb).
#define VLT_DIST_BUCKET_BYTES ((size_t)25 << 20)

typedef struct {
    int rank, world;              // this process among `world` (0 and 1 without a launcher)
    int local_rank, local_world;  // among the ranks on this node (selects the GPU)
    vlt_dist_backend backend;
    double timeout_s;             // a collective unfinished after this long aborts the job (0: wait forever)
    int comm;                     // the MPI communicator as a Fortran handle (private)
    bool owns_mpi;                // vlt_dist_init started MPI, so finalize ends it
} vlt_dist;

// Starts MPI when built with it (as a singleton without mpirun), duplicates COMM_WORLD with
// errors returned to vlt, and finds the local rank (OMPI_COMM_WORLD_LOCAL_RANK, else the
// shared-memory split). VLT_DIST=off in the environment skips MPI (world 1).
// VLT_DIST_TIMEOUT (seconds, default 600; 0 disables) sets timeout_s.
vlt_status vlt_dist_init(vlt_dist *d, int *argc, char ***argv);
// A vlt_dist for one process without touching MPI (tests, tools).
void vlt_dist_init_single(vlt_dist *d);
void vlt_dist_finalize(vlt_dist *d);
static inline bool vlt_dist_is_main(const vlt_dist *d) { return d->rank == 0; }

// Ends the whole job now (every rank): prints `why` with this rank's number, then MPI_Abort
// (exit when there is no MPI). For a rank that cannot continue while others wait on it.
_Noreturn void vlt_dist_abort(const vlt_dist *d, int code, const char *why);

vlt_status vlt_dist_barrier(const vlt_dist *d);
// x[0..n) <- the sum over ranks (in place, every rank gets it).
vlt_status vlt_dist_sum(const vlt_dist *d, double *x, int n);
// The mean over ranks of x (loss logging).
double vlt_dist_mean(const vlt_dist *d, double x);
// The min and max over ranks of v (agreement checks: equal on every rank iff min == max).
void vlt_dist_minmax(const vlt_dist *d, long long v, long long *min, long long *max);

// Every rank's string, on every rank: (*all)[r] is rank r's copy (malloc'd; free with
// vlt_dist_free_text). For checkpoint state written by rank 0 (each rank's loader position).
vlt_status vlt_dist_allgather_text(const vlt_dist *d, const char *mine, char ***all);
void vlt_dist_free_text(char **all, int n);

// Every parameter's values from rank 0 (frozen ones too), after checking that every rank has
// the same table (count, names, shapes): VLT_ERR_SHAPE naming the first difference otherwise.
vlt_status vlt_dist_broadcast_params(const vlt_dist *d, const vlt_params *p);

// ---- rooted and point-to-point transfers (ZeRO-1, train/zero.h) ----
// x[0..n) summed over ranks into rank root's x (in place there; the other ranks' x is left as it
// was). Every rank calls it with the same n and root.
vlt_status vlt_dist_reduce_sum(const vlt_dist *d, float *x, int64_t n, int root);
// `bytes` at x copied from rank root to every rank. Every rank calls it with the same arguments.
vlt_status vlt_dist_broadcast(const vlt_dist *d, void *x, size_t bytes, int root);
// Flat ZeRO-1: x[0..world·n) summed over ranks, rank r receiving block r (x[r·n..r·n+n)'s sum)
// in out[0..n); and mine[0..n) of every rank gathered into out[0..world·n) (rank r's at r·n).
// n <= INT_MAX. World 1: copies.
vlt_status vlt_dist_reduce_scatter_sum(const vlt_dist *d, const float *x, float *out, int64_t n);
vlt_status vlt_dist_allgather_f32(const vlt_dist *d, const float *mine, float *out, int64_t n);
// `bytes` at x moved from rank `from` to rank `to`: both call it (any other rank returns at once;
// from == to does nothing). Messages between one pair arrive in the order they were sent.
vlt_status vlt_dist_send_recv(const vlt_dist *d, void *x, size_t bytes, int from, int to);

// Averages the gradients of params[0..n) whose requires_grad is on, over ranks: the gradients
// are packed in order into buckets of bucket_bytes (0: VLT_DIST_BUCKET_BYTES; a large gradient
// spans several), each summed with one all-reduce and scaled by 1/world. Same order and
// algorithm every step: deterministic. The reference path; the reducer below overlaps.
vlt_status vlt_dist_allreduce_grads(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes);

// The overlapped gradient average: buckets planned once over the parameters in reverse order
// (the order backward finishes them); vlt_dist_reducer_ready(r, i) tells it that parameter i's
// gradient is final, and a bucket whose parameters are all final starts its non-blocking
// all-reduce (buckets start in bucket order on every rank, as MPI requires);
// vlt_dist_reducer_finish starts what is left, waits, and writes the averages back.
// The result equals vlt_dist_allreduce_grads's for the same bucket size.
typedef struct vlt_dist_reducer vlt_dist_reducer;
vlt_dist_reducer *vlt_dist_reducer_new(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes);
// The same with the buckets sent as bf16 when `bf16` (train.grad_reduce_dtype: bf16): each bucket
// rounded to bf16 (RNE), summed over ranks in bf16 (MPI: a user op rounding each partial sum, as
// NCCL's bf16 sum), widened back to f32 and scaled by 1/world in f32. Half the bytes on the wire;
// the average is within bf16 rounding of the f32 one. One rank without NCCL ignores it.
// CUDA gradients (NCCL active, even with one rank): the buckets live on the device and each is
// packed on the compute stream, then all-reduced on NCCL's communication stream after an event,
// so it overlaps the rest of backward; finish makes the compute stream wait for that stream.
vlt_dist_reducer *vlt_dist_reducer_new_dtype(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes,
                                             bool bf16);
bool vlt_dist_reducer_on_device(const vlt_dist_reducer *r);
void vlt_dist_reducer_ready(vlt_dist_reducer *r, int i);
vlt_status vlt_dist_reducer_finish(vlt_dist_reducer *r);
int vlt_dist_reducer_buckets(const vlt_dist_reducer *r);
// How many buckets of the last finished round started inside vlt_dist_reducer_ready (before
// finish), i.e. overlapped with whatever ran between the ready calls.
int vlt_dist_reducer_started_early(const vlt_dist_reducer *r);
void vlt_dist_reducer_free(vlt_dist_reducer *r);

// ---- NCCL: the same collectives on CUDA tensors (train/dist_nccl.c) ----
// One communicator per process over d's ranks, on the device context's stream, made after
// vlt_cuda_init (the trainer picks the GPU of the local rank first). Rank 0 makes the id and
// MPI broadcasts it; one rank needs no MPI. While it is active, vlt_dist_allreduce_grads,
// vlt_dist_all_gather and vlt_dist_clip_loss take device tensors through it, even with one rank
// (the one-GPU check of this path). Waits poll NCCL's async error and d->timeout_s.
vlt_status vlt_dist_nccl_init(const vlt_dist *d);
bool vlt_dist_nccl_active(void);
void vlt_dist_nccl_shutdown(void);
// (used by dist.c) averages the device buffers over ranks, in place; all-gather of n floats per
// rank; reduce-scatter (sum) of n floats per rank. Each waits for completion.
vlt_status vlt_dist_nccl_allreduce_avg(const vlt_dist *d, float *const *bufs, const int64_t *n, int count);
vlt_status vlt_dist_nccl_allgather(const vlt_dist *d, const float *x, float *out, int64_t n);
vlt_status vlt_dist_nccl_reduce_scatter(const vlt_dist *d, const float *x, float *out, int64_t n);
// (used by the overlapped reducer) the all-reduce of one device bucket on the communication
// stream, ordered after the work already queued on the compute stream (an event): f32 with
// ncclAvg, or bf16 with ncclSum (the caller averages in f32). Returns at once.
vlt_status vlt_dist_nccl_bucket_start(const vlt_dist *d, void *buf, int64_t n, bool bf16);
// The compute stream waits for everything queued on the communication stream; the host polls
// that stream against NCCL's async error and d->timeout_s (as every NCCL wait here).
vlt_status vlt_dist_nccl_buckets_wait(const vlt_dist *d);

// ---- autograd-aware collectives (ops on the tape) ----
// x (B, ...) f32, the same shape on every rank -> (world·B, ...): rank r's rows at r·B.
// Backward: the gradient of the gathered tensor is summed over ranks and each rank keeps its own
// rows (reduce-scatter). Every rank's loss must use the output, so that every rank's backward
// runs the reduce-scatter. World 1: returns x itself.
vlt_tensor *vlt_dist_all_gather(const vlt_dist *d, vlt_tensor *x);

// The contrastive loss of the global batch from this rank's normalized features img, txt
// (B_local, E): both are all-gathered; this rank's image rows against every caption
// (B_local, world·B_local) and its caption rows against every image, labels at
// rank·B_local + i. Returns (CE_img + CE_txt) / 2 over this rank's rows, so the mean of the
// ranks' losses is the single-process loss of the whole batch and the averaged gradients are
// its gradients (logit_scale's too). logit_scale is the 0-d log-scale parameter as in
// vlt_clip_loss. With logit_bias: the SigLIP loss, -Σ log σ(z·logit) / B_local over this rank's
// rows. logits_out (optional): this rank's image rows (B_local, world·B_local).
// World 1: exactly vlt_clip_loss.
vlt_tensor *vlt_dist_clip_loss(const vlt_dist *d, vlt_tensor *img, vlt_tensor *txt, vlt_tensor *logit_scale,
                               vlt_tensor *logit_bias, vlt_tensor **logits_out);

#endif
