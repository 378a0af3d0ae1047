// zero.h — ZeRO-1 over the data-parallel ranks (train/dist.h): the optimizer state is sharded by
// parameter. Each parameter has one owner rank; a rank keeps AdamW moments only for the
// parameters it owns, receives only their averaged gradients, updates only them, and sends the
// new values to the other ranks.
//
// Ownership (deterministic, the same on every rank): the parameters (frozen ones too, since the
// optimizer holds moments for them) sorted by numel, largest first, ties by table index; each
// goes to the rank with the least numel so far (ties: the lowest rank). Greedy largest-first
// keeps every rank within one parameter's numel of the mean; with n >= world every rank owns at
// least one parameter (vlt_zero_new refuses n < world).
//
// One step:
//     backward on every rank (the local gradients of the local batch)
//     vlt_zero_reduce_grads(z)          the owner of each trainable parameter gets its average
//     norm = vlt_zero_clip_grad_norm(z, max_norm)   global norm (same on every rank); owners clip
//     if finite: vlt_adamw_step(owned optimizer); vlt_zero_gather_params(z)
// Gradients and values travel in buckets of at most bucket_bytes, each bucket holding one owner's
// trainable parameters (reverse table order within an owner): one MPI_Reduce to the owner per
// bucket, one MPI_Bcast from it per bucket. After vlt_zero_reduce_grads a rank's gradients of
// parameters it does not own are stale (its local ones); only its own are the averages.
//
// requires_grad is read once, by vlt_zero_new: lock towers before. CPU tensors only.
//
// The flat partition (vlt_zero_new_flat, train.zero_partition: flat) instead lays the trainable
// gradients end to end in table order, one flat f32 buffer of T values padded to world·S
// (S = ceil(T / world)), and rank r owns the contiguous range [r·S, r·S + S) ∩ [0, T), split
// inside tensors where a boundary falls. A step is one reduce-scatter of the flat gradient (rank
// r receives the average of its range: MPI_Reduce_scatter_block, or ncclReduceScatter on the
// GPU), AdamW over the range's pieces (1-D headers that view the parameters' values and the
// reduced range: AdamW is elementwise, so a piece steps exactly as its whole tensor would), and
// one all-gather of the updated range. Every rank holds within one value of T / world moments,
// whatever the tensor sizes, and the transfers are two collectives a step instead of one per
// bucket. Frozen parameters (their moments only matter to checkpoints) are kept whole by rank 0.
// The flat form also runs on CUDA parameters through NCCL (the buffers follow the parameters to
// the device the first time they are used there). Same API; vlt_zero_owner / vlt_zero_owned
// name the rank holding a parameter's first value / the parameters overlapping this rank's range.
#ifndef VLT_ZERO_H
#define VLT_ZERO_H

#include "autograd/optim.h"
#include "train/dist.h"

typedef struct vlt_zero vlt_zero;

// Plans ownership and buckets for params[0..n) (borrowed; every rank must pass the same table).
// bucket_bytes 0: VLT_DIST_BUCKET_BYTES. NULL with a message on bad input (n < world, a
// parameter without a contiguous f32 gradient, no memory).
vlt_zero *vlt_zero_new(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes);
// The flat partition (above). NULL with a message on bad input (no trainable value, no memory).
vlt_zero *vlt_zero_new_flat(const vlt_dist *d, vlt_tensor **params, int n);
void vlt_zero_free(vlt_zero *z);
bool vlt_zero_is_flat(const vlt_zero *z);
// Flat: this rank's range [*lo, *hi) of the T trainable values (*total = T).
void vlt_zero_flat_range(const vlt_zero *z, int64_t *lo, int64_t *hi, int64_t *total);

int vlt_zero_owner(const vlt_zero *z, int i);   // the rank owning params[i]
// The table indices this rank owns, ascending (borrowed); *n_owned receives their count.
const int *vlt_zero_owned(const vlt_zero *z, int *n_owned);
int64_t vlt_zero_owned_numel(const vlt_zero *z);   // values of the parameters this rank owns
int vlt_zero_buckets(const vlt_zero *z);

// AdamW over this rank's parameters only (decay[i] indexed by table index, may be NULL).
vlt_adamw *vlt_zero_adamw_new(const vlt_zero *z, const bool *decay, vlt_adamw_cfg cfg);

// Averages each trainable gradient over ranks into its owner's gradient (sum to the owner,
// × 1/world there). Collective.
vlt_status vlt_zero_reduce_grads(vlt_zero *z);
// The global L2 norm of the (reduced) gradients: each rank sums the squares of its own, the sums
// are added over ranks; when it exceeds max_norm (> 0) each owner scales its gradients by
// max_norm / (norm + 1e-6), as vlt_clip_grad_norm. Returns the norm (the same on every rank;
// non-finite when a gradient is). Collective.
float vlt_zero_clip_grad_norm(vlt_zero *z, float max_norm);
// Every trainable parameter's values from its owner to all ranks. Collective.
vlt_status vlt_zero_gather_params(vlt_zero *z);

// For a checkpoint: the moments of every parameter gathered to rank 0 from their owners. `local`
// is this rank's optimizer from vlt_zero_adamw_new. On rank 0 *full receives a new AdamW over the
// whole table (decay as given, local's cfg and t) holding every moment; the caller frees it. On
// other ranks *full is NULL. Collective; a failure on rank 0 (memory) is returned on every rank.
vlt_status vlt_zero_gather_optimizer(vlt_zero *z, const vlt_adamw *local, const bool *decay, vlt_adamw **full);
// Frees what vlt_zero_gather_optimizer made: its moments are host memory even when the parameters
// are on the GPU (flat partition), which vlt_adamw_free (freeing by the parameters' device) must
// not be given.
void vlt_zero_free_gathered(vlt_adamw *full);
// For a resume: this rank's moments (and step count) taken from `full`, an AdamW over the whole
// table (as vlt_zero_gather_optimizer makes, or as vlt_checkpoint_load fills). Both on the host.
// No communication (every rank reads the whole checkpoint).
vlt_status vlt_zero_scatter_optimizer(const vlt_zero *z, vlt_adamw *local, const vlt_adamw *full);

#endif
