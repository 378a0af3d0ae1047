// device.h — devices as the rest of vlt sees them: is a GPU there, the device context's
// lifetime, copies between host and device, moving a model's parameter table to the GPU, the
// default device of ops that create tensors from nothing (vlt_full, vlt_arange), and the
// matmul precision of the CUDA backend.
//
// Built without CUDA (make, not make CUDA=1) every function exists: vlt_cuda_available() is
// false and anything that needs a device returns VLT_ERR_UNSUPPORTED naming what was asked.
//
// Typical use (train on the GPU a model created on the CPU):
//     vlt_clip_init(&m, &cfg, seed);                      // CPU parameters, initialized
//     vlt_params_move(&m.params, VLT_CUDA);               // same tensor handles, device storage
//     vlt_set_default_device(VLT_CUDA);
//     images_d = vlt_tensor_to(images, VLT_CUDA); ...    // batches: copies, or vlt_tensor_copy
#ifndef VLT_DEVICE_H
#define VLT_DEVICE_H

#include <stdio.h>

#include "autograd/params.h"
#include "autograd/tensor.h"

// True when the binary has the CUDA backend and at least one device is visible.
bool vlt_cuda_available(void);
// Creates the device context (stream, cuBLAS / cuBLASLt handles and workspace, the device step
// arena). Idempotent; called on first use by everything below, so explicit calls are optional.
vlt_status vlt_cuda_init(void);
// Releases the context (the device step arena included). Persistent device tensors stay valid
// until freed; the next device use creates a fresh context.
void vlt_cuda_shutdown(void);
// Waits for all queued device work (timing, before reading host clocks).
void vlt_device_synchronize(void);
const char *vlt_device_name(vlt_device dev);

// Device of the outputs of vlt_full and vlt_arange (ops with no input to take it from).
// VLT_CPU unless set; setting VLT_CUDA without the backend returns VLT_ERR_UNSUPPORTED.
vlt_status vlt_set_default_device(vlt_device dev);
vlt_device vlt_default_device(void);

// dst = src for tensors of equal dtype and element count, both contiguous, any devices.
vlt_status vlt_tensor_copy(vlt_tensor *dst, const vlt_tensor *src);
// A new persistent copy of t on `dev` (same name, dtype, shape, requires_grad; a zeroed gradient
// buffer when t has one). NULL with a message on failure.
vlt_tensor *vlt_tensor_to(const vlt_tensor *t, vlt_device dev);
static inline vlt_tensor *vlt_tensor_to_device(const vlt_tensor *t) { return vlt_tensor_to(t, VLT_CUDA); }
static inline vlt_tensor *vlt_tensor_to_host(const vlt_tensor *t) { return vlt_tensor_to(t, VLT_CPU); }
// Moves a persistent tensor that owns its storage (and its gradient, kept as is) to `dev` in
// place: the handle stays the same, so model structs that point at it keep working.
vlt_status vlt_tensor_move(vlt_tensor *t, vlt_device dev);
// vlt_tensor_move for every tensor of a parameter table.
vlt_status vlt_params_move(vlt_params *p, vlt_device dev);

// Element i of t as a float (f32, bf16 or i32; any device: a device tensor is read with one small
// copy, which waits for the device). For losses, norms and other scalars the host needs.
float vlt_tensor_item(const vlt_tensor *t, int64_t i);
// Copies `bytes` of device memory at src (optimizer state, which is not a tensor) to host memory
// dst, waiting for the device. Without the CUDA backend src is host memory (a memcpy).
void vlt_device_to_host(void *dst, const void *src, size_t bytes);
// The device context's stream as a cudaStream_t (for communication libraries: NCCL work goes on
// the same stream as the kernels); NULL without the CUDA backend.
void *vlt_cuda_stream_handle(void);
// dst[0..n) += src[0..n), both on `dev`.
void vlt_device_acc(vlt_device dev, float *dst, const float *src, int64_t n);
// Copies the first n floats of an f32 tensor on any device to host memory dst.
void vlt_tensor_read_f32(float *dst, const vlt_tensor *t, int64_t n);
// Sets element i of an f32 tensor on any device (a scalar parameter the host adjusts).
void vlt_tensor_set_item(vlt_tensor *t, int64_t i, float v);

// The tape-aware copy: y = x on `dev` (a new activation); the gradient flows back to x's device.
vlt_tensor *vlt_to_device(vlt_tensor *x, vlt_device dev);

// Matmul precision on the GPU (all storage stays f32): fp32 products (the default; compare with
// the CPU), tf32 tensor cores, or bf16 tensor cores; always fp32 accumulation. The environment
// variable VLT_CUDA_MATMUL=fp32|tf32|bf16 sets the initial value.
typedef enum { VLT_MATMUL_FP32 = 0, VLT_MATMUL_TF32 = 1, VLT_MATMUL_BF16 = 2 } vlt_matmul_precision;
vlt_status vlt_set_matmul_precision(vlt_matmul_precision p);

// Device step-arena figures (0 without CUDA): the high-water mark in bytes and how many device
// allocations the arena made (constant once the step size is learned).
size_t vlt_cuda_arena_bytes(void);
uint64_t vlt_cuda_arena_allocs(void);
// The card's memory: free and total bytes as the driver reports them (cudaMemGetInfo; free counts
// every process's use, this one's context, persistent tensors and arena included). Both 0
// without CUDA.
void vlt_cuda_memory(size_t *free_bytes, size_t *total_bytes);
// Which bias the bf16-output products (vlt_linear_operand, vlt_linear_act) put in cuBLASLt's
// epilogue: 1 the fp32 bias, 2 a bf16 copy, 0 none ran (or no CUDA). For benchmark reports.
int vlt_cuda_bf16_out_bias_kind(void);

// ---- Sync-free steps and the captured step (issue 17; written without a GPU, never run on one) ----
// Sync-free mode (off by default): the embedding, gather_rows and cross-entropy check their
// indices on the device instead of on a host copy, the embedding's backward builds its owner
// lists on the device, the clip coefficient stays on the device and AdamW reads its step's
// scalars from device memory: a step then never waits for the device, which a CUDA graph needs.
// A bad index is reported after the step by vlt_step_checks_report with the op's usual message
// (the optimizer makes no update in that step). VLT_ERR_UNSUPPORTED without the CUDA backend.
vlt_status vlt_set_sync_free(bool on);
bool vlt_sync_free(void);
// Start of a sync-free step (or of its capture): forgets the registered checks, clears the slots.
void vlt_step_checks_begin(void);
// After a sync-free step: waits for the device and returns VLT_ERR_ARG naming the first failed
// check (its op, the bad id and its position / row), else VLT_OK.
vlt_status vlt_step_checks_report(void);
// Used by the ops: registers a check of n indices against [0, limit) (kind: 0 embedding, whose
// table is `name`; 1 gather_rows; 2 cross_entropy) and returns its device slot.
int vlt_step_check_add(int kind, const char *name, int limit, int64_t n);
// The message of a failed check from its slot record ((n - position) << 32 | (uint32)value);
// host code, tested without a GPU.
void vlt_step_check_message(char *buf, size_t cap, int kind, const char *name, int limit, int64_t n,
                            unsigned long long rec);
// The global norm computed by the last sync-free vlt_clip_grad_norm (read from the device: waits).
float vlt_last_grad_norm(void);
// The captured step: begin, run one step's ops (forward, backward, optimizer) in sync-free mode,
// end. On success *graph replays that step (same device addresses: the inputs must be copied into
// the tensors the capture used). On failure VLT_ERR_STATE names the first op that would have
// synchronised; nothing of the captured step ran, and the caller runs eagerly.
vlt_status vlt_graph_begin(void);
vlt_status vlt_graph_end(void **graph);
// Clears the check slots and launches the replay (returns at once; report the checks after).
vlt_status vlt_graph_launch(void *graph);
void vlt_graph_free(void *graph);
// Nodes (kernels, copies, memsets) of the last captured graph; 0 before one (or without CUDA).
size_t vlt_graph_nodes(void);

// Per-op device time profile (benchmarks; no-ops without CUDA). Between start and stop the tape
// records a CUDA event after each op's forward and each node's backward; stop waits for the
// device and prints the `top` (phase, op) rows by total time to f. vlt_device_profile_mark adds
// a mark of the caller's (the time since the previous mark is charged to it).
void vlt_device_profile_start(void);
void vlt_device_profile_mark(const char *what);
void vlt_device_profile_stop(FILE *f, int top);

#endif
