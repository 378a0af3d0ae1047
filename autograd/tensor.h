// tensor.h — the tensor: plain data (dtype, device, shape, strides, storage), its gradient, a
// name; conversions between f32 and bf16; views that share storage.
//
// Two lifetimes: persistent tensors (parameters, gradients, optimizer state, batches) are
// malloc'd once with vlt_tensor_new and freed with vlt_tensor_free; activations come from the
// tape's step arena (vlt_tensor_new_activation, used by ops) and die at vlt_step_reset().
// Kernels take contiguous inputs; views (reshape, transpose of two dims, slice along dim 0) share
// storage and carry strides, and vlt_contiguous() copies when needed.
#ifndef VLT_TENSOR_H
#define VLT_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"

#define VLT_MAX_DIMS 4
#define VLT_TENSOR_MAGIC 0x7e5a0b1du

// VLT_U8: raw 8-bit image data (the loader's uint8 batches on their way to the device); no op
// takes it except vlt_normalize_u8.
typedef enum { VLT_F32 = 0, VLT_BF16 = 1, VLT_I32 = 2, VLT_U8 = 3 } vlt_dtype;
typedef enum { VLT_CPU = 0, VLT_CUDA = 1 } vlt_device;

typedef struct vlt_tensor {
    uint32_t magic;             // VLT_TENSOR_MAGIC while alive (stale-activation check)
    vlt_dtype dtype;
    vlt_device device;
    int ndim;                   // 0..4 (0: a scalar, numel 1, as open_clip's logit_scale)
    int shape[VLT_MAX_DIMS];
    int64_t stride[VLT_MAX_DIMS];  // in elements
    int64_t numel;
    void *data;                 // first element (views point inside another tensor's storage)
    struct vlt_tensor *grad;    // f32, same shape, contiguous; NULL until needed
    bool requires_grad;
    bool persistent;            // malloc'd (parameter, batch) rather than from the arena
    bool owns_data;             // persistent and not a view: free(data) on vlt_tensor_free
    uint64_t generation;        // arena generation at birth (0 for persistent tensors)
    struct vlt_tensor *base;    // for views: the tensor whose storage this shares
    bool storage_shared;        // a gradient whose storage another tensor's gradient views (vlt_grad_steal)
    char name[96];
} vlt_tensor;

size_t vlt_dtype_size(vlt_dtype dt);
const char *vlt_dtype_name(vlt_dtype dt);

// Persistent tensor, zero-filled. Returns NULL (with a message) for a bad shape or no memory.
vlt_tensor *vlt_tensor_new(vlt_dtype dt, vlt_device dev, int ndim, const int *shape, const char *name);
// A parameter: a persistent f32 tensor with requires_grad and a zeroed gradient.
vlt_tensor *vlt_tensor_new_param(int ndim, const int *shape, const char *name);
void vlt_tensor_free(vlt_tensor *t);

// The 2-D/1-D shorthands used everywhere: vlt_shape2(3, 4) etc. live in ops.h as compound literals.

// Shape helpers.
bool vlt_tensor_is_contiguous(const vlt_tensor *t);
bool vlt_tensor_same_shape(const vlt_tensor *a, const vlt_tensor *b);
// Writes "(2, 3, 4)" into buf; returns buf (for messages).
const char *vlt_shape_str(const vlt_tensor *t, char *buf, size_t n);
void vlt_tensor_set_name(vlt_tensor *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Checks that `t` is a live tensor: not NULL, magic intact, and (for activations) from the
// current arena generation. `op` names the caller for the message.
vlt_status vlt_tensor_check_live(const vlt_tensor *t, const char *op);

// Views: a new tensor header (from the step arena) that shares t's storage. No autograd here;
// the tape-aware versions are vlt_reshape / vlt_transpose / vlt_slice0 in ops.h.
vlt_tensor *vlt_view_reshape(vlt_tensor *t, int ndim, const int *shape);
vlt_tensor *vlt_view_transpose(vlt_tensor *t, int d0, int d1);
vlt_tensor *vlt_view_slice0(vlt_tensor *t, int start, int len);

// bf16 <-> f32 on the CPU (round to nearest even; NaN stays NaN).
uint16_t vlt_f32_to_bf16(float x);
float vlt_bf16_to_f32(uint16_t x);
void vlt_f32_to_bf16_array(uint16_t *dst, const float *src, size_t n);
void vlt_bf16_to_f32_array(float *dst, const uint16_t *src, size_t n);

// Host data access for tests and I/O (CPU tensors only, contiguous).
static inline float *vlt_f32(const vlt_tensor *t) { return (float *)t->data; }
static inline int32_t *vlt_i32(const vlt_tensor *t) { return (int32_t *)t->data; }
static inline uint16_t *vlt_bf16(const vlt_tensor *t) { return (uint16_t *)t->data; }
static inline uint8_t *vlt_u8(const vlt_tensor *t) { return (uint8_t *)t->data; }

#endif
