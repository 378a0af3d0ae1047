// tape.h — the tape: ops on tensors that require grad append a node; vlt_backward(loss) walks
// the nodes in reverse. Holds the step arena that activations, their gradients and the nodes
// come from. This and the device context are vlt's only global state.
//
// A step:
//     y = model forward (ops record nodes);  vlt_backward(loss);  optimizer step;  vlt_step_reset();
// Parameter gradients accumulate (+=) across backward calls until zeroed, so gradient
// accumulation is just several forward/backward pairs before the optimizer step.
#ifndef VLT_TAPE_H
#define VLT_TAPE_H

#include "autograd/arena.h"
#include "autograd/tensor.h"

#define VLT_NODE_MAX_IN 4

typedef struct vlt_node vlt_node;
typedef void (*vlt_backward_fn)(vlt_node *n);

struct vlt_node {
    vlt_node *prev;
    const char *op;                    // op name, for messages and profiling
    vlt_backward_fn backward;          // reads out->grad, accumulates into in[i]->grad
    vlt_tensor *out;
    vlt_tensor *in[VLT_NODE_MAX_IN];
    int n_in;
    vlt_tensor *saved[3];              // extra tensors the backward needs (e.g. softmax probs)
    float f[4];                        // scalar arguments
    int i[8];                          // integer arguments
};

// The step arena (created on first use).
vlt_arena *vlt_step_arena(void);
// Frees every activation, gradient buffer and node of this step; bumps the arena generation.
void vlt_step_reset(void);
// Releases the arena and tape (end of program; tests).
void vlt_tape_shutdown(void);

// no_grad scopes nest: while depth > 0 ops record nothing and outputs do not require grad.
void vlt_no_grad_enter(void);
void vlt_no_grad_exit(void);
bool vlt_grad_enabled(void);

// Allocates a contiguous activation tensor (CPU or device memory per `dev`) from the arena.
vlt_tensor *vlt_tensor_new_activation(vlt_dtype dt, vlt_device dev, int ndim, const int *shape);
// Arena memory for a kernel's scratch space.
void *vlt_step_scratch(size_t bytes);

// Records a node when grad is enabled and any input requires grad; sets out->requires_grad.
// Returns the node (to fill saved/f/i) or NULL when nothing was recorded.
vlt_node *vlt_tape_record(const char *op, vlt_backward_fn bw, vlt_tensor *out, int n_in, vlt_tensor **in);

// The gradient buffer of t (f32, zeroed on first use), for backward functions.
vlt_tensor *vlt_grad_of(vlt_tensor *t);

// For backward functions that write every element of an input's gradient: returns t's gradient
// buffer and sets *fresh when it was just created and is NOT zeroed (the caller must overwrite
// it, e.g. a product with beta = 0); when it already existed (*fresh false) the caller adds.
// Saves the memset and the read of a zero buffer (DESIGN.md: activation gradients written once).
vlt_tensor *vlt_grad_for_write(vlt_tensor *t, bool *fresh);
// Pass-through backwards (add, reshape): when t has no gradient yet and is an activation (not a
// persistent tensor) the size of g, t's gradient becomes a view of g's storage and true is
// returned; nothing is copied. Safe because the tape walks in reverse: by the time a node's
// backward runs every reader of its output gradient g has run, so later additions into t's
// gradient cannot be seen by anyone through g. False (nothing done) otherwise.
bool vlt_grad_steal(vlt_tensor *t, vlt_tensor *g);

// For backward functions: t (a device activation only this node made and saved, e.g. a bf16
// operand copy or a scratch gradient) is dead once the node's backward has enqueued its last
// reader; its block is reused by later allocations of the same size. No-op on the CPU.
void vlt_tape_release_private(vlt_tensor *t);

// Gradient-ready hook (overlapping the data-parallel gradient all-reduce with backward): while set,
// vlt_backward calls fn(t, ctx) for each persistent tensor t that requires grad as soon as its
// gradient is final for this backward, i.e. right after the backward of the earliest-recorded
// node that has t as an input (nothing later in the reverse walk adds to it). A parameter this
// forward did not use is never reported. fn = NULL clears it.
typedef void (*vlt_grad_ready_fn)(vlt_tensor *t, void *ctx);
void vlt_tape_set_grad_ready(vlt_grad_ready_fn fn, void *ctx);

// Seeds d(loss)/d(loss) = 1 (loss must have one element) and runs the tape in reverse.
// The nodes stay on the tape until vlt_step_reset().
vlt_status vlt_backward(vlt_tensor *loss);
// Number of nodes recorded this step (tests, profiling).
int vlt_tape_size(void);

#endif
