// feed.h — the trainer's batch feed to the GPU: pinned, double-buffered host batches whose pixels
// are copied on a side stream while the previous step computes.
//
// Buffers and order. The host buffers are the loader's batch slots (prefetch + 1 of them, page
// locked through vlt_feed_cuda_host_alloc); the feed owns VLT_FEED_SLOTS device buffers, used in
// turn. The trainer fetches batch k+1 from the loader as soon as step k's forward and backward are
// queued, and uploads its uint8 pixels into device slot (k+1) % 2:
//   side stream:    wait consumed[s] (the slot's previous batch was normalised) -> copy -> record copied[s]
//   compute stream: wait copied[s] -> vlt_normalize_u8 from slot s -> record consumed[s]
// and before the loader is asked for the next batch (which hands the previous host slot back to
// its collator for refilling) the host waits for copied[s] (vlt_feed_release). So no device slot
// is overwritten before its batch was read, and no host slot is refilled while a copy reads it.
//
// Each slot is EMPTY -> STAGED (uploaded) -> IN_USE (taken by a step) -> EMPTY (consumed); the
// functions refuse any other order with VLT_ERR_STATE. The logic is host code over a small
// backend, so the rotation and these ownership rules are tested on the CPU (tests/test_train_feed.c)
// with a backend that defers each copy until something waits for it; feed_cuda.cu maps the backend
// to cudaMemcpyAsync on a non-blocking stream and CUDA events.
#ifndef VLT_TRAIN_FEED_H
#define VLT_TRAIN_FEED_H

#include <stddef.h>

#include "autograd/error.h"

#define VLT_FEED_SLOTS 2

typedef struct {
    void *ctx;
    // Side stream: wait for the compute stream's consumed[slot] (when one was recorded), copy bytes
    // from host src to dst (slot's device buffer), record copied[slot].
    void (*upload)(void *ctx, int slot, void *dst, const void *src, size_t bytes);
    void (*compute_wait)(void *ctx, int slot);   // the compute stream waits for copied[slot]
    void (*consumed)(void *ctx, int slot);       // record consumed[slot] on the compute stream
    void (*host_wait)(void *ctx, int slot);      // the host blocks until copied[slot] is done
} vlt_feed_backend;

enum { VLT_FEED_EMPTY = 0, VLT_FEED_STAGED, VLT_FEED_IN_USE };

typedef struct {
    vlt_feed_backend be;
    void *dev[VLT_FEED_SLOTS];   // device buffers (borrowed), bytes each
    size_t bytes;
    int state[VLT_FEED_SLOTS];
    int next_upload, next_take;  // slots, in turn
    int host_slot;               // the slot whose copy may still read loader memory (-1: none)
    long long uploads, takes;
} vlt_feed;

void vlt_feed_init(vlt_feed *f, const vlt_feed_backend *be, void *const dev[VLT_FEED_SLOTS], size_t bytes);
// Before the loader's next call: waits (host) for the last upload's copy, so that its host memory
// may be refilled. No-op when nothing is pending.
void vlt_feed_release(vlt_feed *f);
// Queues the copy of a fetched batch (host memory valid until the next vlt_feed_release) into the
// next slot. VLT_ERR_STATE when that slot still holds a batch not yet consumed, the previous host
// batch was not released, or bytes exceeds the slot.
vlt_status vlt_feed_upload(vlt_feed *f, const void *host, size_t bytes);
// The oldest uploaded batch, for this step: the compute stream waits for its copy; *dev is its
// device buffer and *slot the slot to pass to vlt_feed_consumed. VLT_ERR_STATE when none is staged.
vlt_status vlt_feed_take(vlt_feed *f, void **dev, int *slot);
// The step has queued its last read of slot (the normalisation): the slot may be refilled.
vlt_status vlt_feed_consumed(vlt_feed *f, int slot);
// Batches uploaded and not yet taken.
int vlt_feed_staged(const vlt_feed *f);

// A host backend (no GPU): dev buffers are host memory and each copy is deferred until something
// waits for it (compute_wait or host_wait), as a stream would run it late; the trainer's CPU test
// route (VLT_TRAIN_U8_FEED=1) and the tests use it. ctx: a vlt_feed_host_ctx.
typedef struct {
    struct { void *dst; const void *src; size_t bytes; int pending; } copy[VLT_FEED_SLOTS];
} vlt_feed_host_ctx;
void vlt_feed_host_backend(vlt_feed_backend *be, vlt_feed_host_ctx *ctx);

#ifdef VLT_HAVE_CUDA
// The CUDA backend (feed_cuda.cu): a non-blocking side stream and 2 x VLT_FEED_SLOTS events beside
// the device context's compute stream. NULL (message set) on failure; free with _destroy, which
// waits for the side stream.
void *vlt_feed_cuda_create(vlt_feed_backend *be);
void vlt_feed_cuda_destroy(void *ctx);
// The loader's host_alloc / host_free hooks: page-locked memory (cudaHostAlloc / cudaFreeHost).
void *vlt_feed_cuda_host_alloc(size_t bytes, void *ctx);
void vlt_feed_cuda_host_free(void *p, void *ctx);
#endif

#endif
