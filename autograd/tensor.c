// tensor.c — tensor creation, views, bf16 conversion (see tensor.h).
#include "autograd/tensor.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops_cuda.h"
#include "autograd/tape.h"

size_t vlt_dtype_size(vlt_dtype dt) { return dt == VLT_BF16 ? 2 : dt == VLT_U8 ? 1 : 4; }

const char *vlt_dtype_name(vlt_dtype dt) {
    switch (dt) {
    case VLT_F32: return "f32";
    case VLT_BF16: return "bf16";
    case VLT_I32: return "i32";
    case VLT_U8: return "u8";
    }
    return "?";
}

// Fills shape/stride/numel from (ndim, shape); returns an error for a bad shape.
static vlt_status set_shape(vlt_tensor *t, int ndim, const int *shape) {
    if (ndim < 0 || ndim > VLT_MAX_DIMS)
        return vlt_error_set(VLT_ERR_SHAPE, "tensor: ndim %d is outside 0..%d", ndim, VLT_MAX_DIMS);
    t->ndim = ndim;
    t->numel = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        if (shape[d] < 1) return vlt_error_set(VLT_ERR_SHAPE, "tensor: dim %d has size %d", d, shape[d]);
        t->shape[d] = shape[d];
        t->stride[d] = t->numel;
        t->numel *= shape[d];
    }
    for (int d = ndim; d < VLT_MAX_DIMS; d++) { t->shape[d] = 1; t->stride[d] = 1; }
    return VLT_OK;
}

vlt_tensor *vlt_tensor_new(vlt_dtype dt, vlt_device dev, int ndim, const int *shape, const char *name) {
#ifndef VLT_HAVE_CUDA
    if (dev != VLT_CPU) {
        vlt_error_set(VLT_ERR_UNSUPPORTED, "tensor '%s': persistent device tensors need the CUDA backend", name ? name : "");
        return NULL;
    }
#endif
    vlt_tensor *t = calloc(1, sizeof *t);
    if (!t) { vlt_error_set(VLT_ERR_NOMEM, "tensor: out of memory"); return NULL; }
    t->magic = VLT_TENSOR_MAGIC;
    t->dtype = dt;
    t->device = dev;
    t->persistent = true;
    if (set_shape(t, ndim, shape) != VLT_OK) { free(t); return NULL; }
    size_t bytes = (size_t)t->numel * vlt_dtype_size(dt);
#ifdef VLT_HAVE_CUDA
    if (dev == VLT_CUDA) {
        // Device storage (cudaMalloc'd once, zeroed on the stream).
        t->data = vlt_cuda_malloc(bytes);
        if (!t->data) { free(t); return NULL; }
        vlt_cuda_memset0(t->data, bytes);
        t->owns_data = true;
        if (name) snprintf(t->name, sizeof t->name, "%s", name);
        return t;
    }
#endif
    t->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!t->data) {
        free(t);
        vlt_error_set(VLT_ERR_NOMEM, "tensor '%s': cannot allocate %zu bytes", name ? name : "", bytes);
        return NULL;
    }
    memset(t->data, 0, bytes);
    t->owns_data = true;
    if (name) snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

vlt_tensor *vlt_tensor_new_param(int ndim, const int *shape, const char *name) {
    vlt_tensor *t = vlt_tensor_new(VLT_F32, VLT_CPU, ndim, shape, name);
    if (!t) return NULL;
    t->grad = vlt_tensor_new(VLT_F32, VLT_CPU, ndim, shape, NULL);
    if (!t->grad) { vlt_tensor_free(t); return NULL; }
    snprintf(t->grad->name, sizeof t->grad->name, "%.80s.grad", t->name);
    t->requires_grad = true;
    return t;
}

void vlt_tensor_free(vlt_tensor *t) {
    if (!t || !t->persistent) return;
    if (t->grad && t->grad->persistent) vlt_tensor_free(t->grad);
#ifdef VLT_HAVE_CUDA
    if (t->owns_data && t->device == VLT_CUDA) vlt_cuda_free(t->data);
    else
#endif
    if (t->owns_data) free(t->data);
    t->magic = 0;
    free(t);
}

bool vlt_tensor_is_contiguous(const vlt_tensor *t) {
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect) return false;
        expect *= t->shape[d];
    }
    return true;
}

bool vlt_tensor_same_shape(const vlt_tensor *a, const vlt_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

const char *vlt_shape_str(const vlt_tensor *t, char *buf, size_t n) {
    if (!t) { snprintf(buf, n, "(null)"); return buf; }
    size_t off = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < t->ndim && off < n; d++)
        off += (size_t)snprintf(buf + off, n - off, d ? ", %d" : "%d", t->shape[d]);
    if (off < n) snprintf(buf + off, n - off, ")");
    return buf;
}

void vlt_tensor_set_name(vlt_tensor *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
}

vlt_status vlt_tensor_check_live(const vlt_tensor *t, const char *op) {
    if (!t) return vlt_error_set(VLT_ERR_ARG, "%s: input tensor is NULL", op);
    if (t->magic != VLT_TENSOR_MAGIC)
        return vlt_error_set(VLT_ERR_STATE, "%s: input is not a live tensor (an activation used after "
                                            "vlt_step_reset, or freed memory)", op);
    if (!t->persistent && t->generation != vlt_step_arena()->generation)
        return vlt_error_set(VLT_ERR_STATE,
                             "%s: input '%s' is an activation from step-arena generation %llu, "
                             "which was reset (now %llu)", op, t->name,
                             (unsigned long long)t->generation,
                             (unsigned long long)vlt_step_arena()->generation);
    return VLT_OK;
}

static vlt_tensor *view_header(vlt_tensor *t) {
    vlt_tensor *v = vlt_arena_alloc(vlt_step_arena(), sizeof *v);
    if (!v) { vlt_error_set(VLT_ERR_NOMEM, "view: arena out of memory"); return NULL; }
    *v = *t;
    v->persistent = false;
    v->owns_data = false;
    v->generation = vlt_step_arena()->generation;
    v->grad = NULL;
    v->requires_grad = false;
    v->base = t->base ? t->base : t;
    return v;
}

vlt_tensor *vlt_view_reshape(vlt_tensor *t, int ndim, const int *shape) {
    if (vlt_tensor_check_live(t, "view_reshape") != VLT_OK) return NULL;
    if (!vlt_tensor_is_contiguous(t)) {
        vlt_error_set(VLT_ERR_SHAPE, "view_reshape: '%s' is not contiguous; use vlt_contiguous first", t->name);
        return NULL;
    }
    vlt_tensor tmp = *t;
    if (set_shape(&tmp, ndim, shape) != VLT_OK) return NULL;
    if (tmp.numel != t->numel) {
        char a[64];
        vlt_error_set(VLT_ERR_SHAPE, "view_reshape: cannot view %s (%lld elements) as %lld elements",
                      vlt_shape_str(t, a, sizeof a), (long long)t->numel, (long long)tmp.numel);
        return NULL;
    }
    vlt_tensor *v = view_header(t);
    if (!v) return NULL;
    set_shape(v, ndim, shape);
    return v;
}

vlt_tensor *vlt_view_transpose(vlt_tensor *t, int d0, int d1) {
    if (vlt_tensor_check_live(t, "view_transpose") != VLT_OK) return NULL;
    if (d0 < 0 || d1 < 0 || d0 >= t->ndim || d1 >= t->ndim) {
        vlt_error_set(VLT_ERR_ARG, "view_transpose: dims %d, %d out of range for ndim %d", d0, d1, t->ndim);
        return NULL;
    }
    vlt_tensor *v = view_header(t);
    if (!v) return NULL;
    int s = v->shape[d0]; v->shape[d0] = v->shape[d1]; v->shape[d1] = s;
    int64_t st = v->stride[d0]; v->stride[d0] = v->stride[d1]; v->stride[d1] = st;
    return v;
}

vlt_tensor *vlt_view_slice0(vlt_tensor *t, int start, int len) {
    if (vlt_tensor_check_live(t, "view_slice0") != VLT_OK) return NULL;
    if (start < 0 || len < 1 || start + len > t->shape[0]) {
        vlt_error_set(VLT_ERR_ARG, "view_slice0: [%d, %d) is outside dim 0 of size %d", start, start + len, t->shape[0]);
        return NULL;
    }
    vlt_tensor *v = view_header(t);
    if (!v) return NULL;
    v->shape[0] = len;
    v->numel = t->numel / t->shape[0] * len;
    v->data = (char *)t->data + (size_t)start * (size_t)t->stride[0] * vlt_dtype_size(t->dtype);
    return v;
}

uint16_t vlt_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return (uint16_t)(u >> 16);
}

float vlt_bf16_to_f32(uint16_t x) {
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void vlt_f32_to_bf16_array(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vlt_f32_to_bf16(src[i]);
}

void vlt_bf16_to_f32_array(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vlt_bf16_to_f32(src[i]);
}
