// ops_internal.h — checks and helpers shared by the op implementations (not public API).
#ifndef VLT_OPS_INTERNAL_H
#define VLT_OPS_INTERNAL_H

#include <string.h>

#include "autograd/ops.h"
#include "autograd/ops_cuda.h"

// ON_CUDA(t): the tensor's kernels are the CUDA ones (always false without the backend). Every op
// and backward function branches on it: `#ifdef VLT_HAVE_CUDA if (ON_CUDA(x)) {launcher} else #endif {CPU}`.
#ifdef VLT_HAVE_CUDA
#define ON_CUDA(t) ((t)->device == VLT_CUDA)
#else
#define ON_CUDA(t) false
#endif

// Threshold below which loops stay on one thread (OpenMP start-up costs more than the work).
#define VLT_PAR_MIN 32768

// Checks a live, contiguous input of dtype `dt` on a device whose backend has this op.
// Returns false with the message set; a NULL input returns false without a new message.
static inline bool op_input_ok(const char *op, const vlt_tensor *t, vlt_dtype dt) {
    if (!t) return false;
    if (vlt_tensor_check_live(t, op) != VLT_OK) return false;
    if (t->dtype != dt) {
        vlt_error_set(VLT_ERR_DTYPE, "%s: input '%s' is %s, the op takes %s", op, t->name,
                      vlt_dtype_name(t->dtype), vlt_dtype_name(dt));
        return false;
    }
#ifndef VLT_HAVE_CUDA
    if (t->device != VLT_CPU) {
        vlt_error_set(VLT_ERR_DEVICE, "%s: the cuda backend is not built in (input '%s')", op, t->name);
        return false;
    }
#endif
    if (!vlt_tensor_is_contiguous(t)) {
        vlt_error_set(VLT_ERR_SHAPE, "%s: input '%s' is a strided view; call vlt_contiguous first", op, t->name);
        return false;
    }
    return true;
}

static inline vlt_tensor *op_out(int ndim, const int *shape) {
    return vlt_tensor_new_activation(VLT_F32, VLT_CPU, ndim, shape);
}

// An f32 output on `dev` (the inputs' device).
static inline vlt_tensor *op_out_on(vlt_device dev, int ndim, const int *shape) {
    return vlt_tensor_new_activation(VLT_F32, dev, ndim, shape);
}

// Inputs of one op must share a device: VLT_ERR_DEVICE naming both otherwise. (NULL b: nothing to check.)
static inline bool op_same_device(const char *op, const vlt_tensor *a, const vlt_tensor *b) {
    if (!b || a->device == b->device) return true;
    vlt_error_set(VLT_ERR_DEVICE, "%s: input '%s' is on %s but '%s' is on %s (copy one with vlt_to_device)", op,
                  a->name, a->device == VLT_CUDA ? "cuda" : "cpu", b->name, b->device == VLT_CUDA ? "cuda" : "cpu");
    return false;
}

// Index tensors (ids, targets) are validated on the host: returns a host pointer to t's values
// (t itself on the CPU; a copy in the step arena for a device tensor). NULL when out of memory.
const int32_t *op_host_i32(const vlt_tensor *t);

// Accumulates src into dst (n floats).
static inline void acc(float *dst, const float *src, int64_t n) {
#pragma omp parallel for if (n > VLT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

// Product of the dims before the last (rows) and the last dim.
// (A 0-d scalar is one row of one element.)
static inline int last_dim(const vlt_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }
static inline int64_t rows_of(const vlt_tensor *t) { return t->numel / last_dim(t); }

#endif
