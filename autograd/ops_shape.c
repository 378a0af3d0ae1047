// ops_shape.c — reshape (shares storage), permute / transpose / contiguous (copies), concat,
// slice, cast, patchify.
#include "autograd/ops_internal.h"

// Copies g into dst with a shape-preserving add (reshape and contiguous-copy backward).
// Accumulate on the tensors' device.
static void acc_on(const vlt_tensor *t, float *dst, const float *src, int64_t n) {
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(t)) { vlt_cuda_acc(dst, src, n); return; }
#else
    (void)t;
#endif
    acc(dst, src, n);
}

static void passthrough_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (x->requires_grad && !vlt_grad_steal(x, n->out->grad))
        acc_on(x, vlt_f32(vlt_grad_of(x)), vlt_f32(n->out->grad), x->numel);
}

vlt_tensor *vlt_reshape(vlt_tensor *x, int ndim, const int *shape) {
    if (!x) return NULL;
    if (vlt_tensor_check_live(x, "reshape") != VLT_OK) return NULL;
    vlt_tensor *out = vlt_view_reshape(x, ndim, shape);
    if (!out) return NULL;
    vlt_tape_record("reshape", passthrough_backward, out, 1, &x);
    return out;
}

// Strided copy of a 4-D (padded) index space: dst contiguous with dst_shape, src read through
// src_stride (already permuted to dst's order).
static void strided_copy(float *dst, const float *src, const int *shape, const int64_t *src_stride, bool add_to_src) {
    for (int a = 0; a < shape[0]; a++)
        for (int b = 0; b < shape[1]; b++)
            for (int c = 0; c < shape[2]; c++) {
                float *d = dst + (((size_t)a * shape[1] + b) * shape[2] + c) * shape[3];
                const int64_t base = a * src_stride[0] + b * src_stride[1] + c * src_stride[2];
                if (add_to_src) {
                    float *s = (float *)src;
                    for (int e = 0; e < shape[3]; e++) s[base + e * src_stride[3]] += d[e];
                } else {
                    for (int e = 0; e < shape[3]; e++) d[e] = src[base + e * src_stride[3]];
                }
            }
}

// Node ints: [0..3] the out shape padded to 4-D, f unused; saved strides in i[4..7] as the
// source strides (they fit in int for tensors below 2^31 elements).
static void permute_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    int64_t st[4];
    for (int d = 0; d < 4; d++) st[d] = n->i[4 + d];
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) { vlt_cuda_strided_copy(vlt_f32(n->out->grad), vlt_f32(vlt_grad_of(x)), n->i, st, true); return; }
#endif
    strided_copy(vlt_f32(n->out->grad), vlt_f32(vlt_grad_of(x)), n->i, st, true);
}

// out[i0..] = x at permuted strides; `strides` are x's strides in out's dim order.
static vlt_tensor *permuted_copy(const char *op, vlt_tensor *x, int ndim, const int *shape, const int64_t *strides) {
    vlt_tensor *out = op_out_on(x->device, ndim, shape);
    if (!out) return NULL;
    int sh[4] = {1, 1, 1, 1};
    int64_t st[4] = {0, 0, 0, 0};
    int off = 4 - ndim;  // pad leading dims
    for (int d = 0; d < ndim; d++) { sh[off + d] = shape[d]; st[off + d] = strides[d]; }
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) vlt_cuda_strided_copy(vlt_f32(out), vlt_f32(x), sh, st, false);
    else
#endif
    strided_copy(vlt_f32(out), vlt_f32(x), sh, st, false);
    vlt_node *n = vlt_tape_record(op, permute_backward, out, 1, &x);
    if (n)
        for (int d = 0; d < 4; d++) { n->i[d] = sh[d]; n->i[4 + d] = (int)st[d]; }
    return out;
}

vlt_tensor *vlt_permute(vlt_tensor *x, const int *perm) {
    if (!op_input_ok("permute", x, VLT_F32)) return NULL;
    int seen = 0, shape[VLT_MAX_DIMS];
    int64_t strides[VLT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= x->ndim || (seen >> perm[d] & 1)) {
            vlt_error_set(VLT_ERR_ARG, "permute: the order for a %d-D tensor is not a permutation (entry %d is %d)",
                          x->ndim, d, perm[d]);
            return NULL;
        }
        seen |= 1 << perm[d];
        shape[d] = x->shape[perm[d]];
        strides[d] = x->stride[perm[d]];
    }
    return permuted_copy("permute", x, x->ndim, shape, strides);
}

vlt_tensor *vlt_transpose(vlt_tensor *x, int d0, int d1) {
    if (!x) return NULL;
    if (d0 < 0 || d1 < 0 || d0 >= x->ndim || d1 >= x->ndim) {
        vlt_error_set(VLT_ERR_ARG, "transpose: dims %d, %d out of range for a %d-D tensor", d0, d1, x->ndim);
        return NULL;
    }
    int perm[VLT_MAX_DIMS] = {0, 1, 2, 3};
    perm[d0] = d1;
    perm[d1] = d0;
    return vlt_permute(x, perm);
}

vlt_tensor *vlt_contiguous(vlt_tensor *x) {
    if (!x) return NULL;
    if (vlt_tensor_check_live(x, "contiguous") != VLT_OK) return NULL;
#ifdef VLT_HAVE_CUDA
    bool dev_ok = true;  // cpu and cuda both have the strided copy
#else
    bool dev_ok = x->device == VLT_CPU;
#endif
    if (x->dtype != VLT_F32 || !dev_ok) {
        vlt_error_set(VLT_ERR_DTYPE, "contiguous: takes f32 cpu tensors, '%s' is %s", x->name, vlt_dtype_name(x->dtype));
        return NULL;
    }
    // A view's grad goes to the view's own buffer; the view itself is what the graph recorded.
    return permuted_copy("contiguous", x, x->ndim, x->shape, x->stride);
}

// ---- concat / slice along any dim: outer × (dim × inner) blocks ----
static void dims_around(const vlt_tensor *t, int dim, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= t->shape[d];
    for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
}

// Node ints: [0] dim, [1] offset of input k along dim (k = node input index), f unused.
static void concat_backward(vlt_node *n) {
    int dim = n->i[0];
    int64_t outer, inner;
    dims_around(n->out, dim, &outer, &inner);
    int64_t out_row = n->out->shape[dim] * inner;
    const float *g = vlt_f32(n->out->grad);
    int64_t off = 0;
    for (int k = 0; k < n->n_in; k++) {
        vlt_tensor *x = n->in[k];
        int64_t row = x->shape[dim] * inner;
        if (x->requires_grad) {
            float *gx = vlt_f32(vlt_grad_of(x));
#ifdef VLT_HAVE_CUDA
            if (ON_CUDA(x)) vlt_cuda_block_copy(gx, row, 0, g, out_row, off, outer, row, true);
            else
#endif
            for (int64_t o = 0; o < outer; o++) acc(gx + o * row, g + o * out_row + off, row);
        }
        off += row;
    }
}

static vlt_tensor *concat_some(vlt_tensor **xs, int n, int dim) {
    int shape[VLT_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[dim] = 0;
    for (int k = 0; k < n; k++) shape[dim] += xs[k]->shape[dim];
    vlt_tensor *out = op_out_on(xs[0]->device, xs[0]->ndim, shape);
    if (!out) return NULL;
    int64_t outer, inner;
    dims_around(out, dim, &outer, &inner);
    int64_t out_row = out->shape[dim] * inner, off = 0;
    for (int k = 0; k < n; k++) {
        int64_t row = xs[k]->shape[dim] * inner;
#ifdef VLT_HAVE_CUDA
        if (ON_CUDA(out)) vlt_cuda_block_copy(vlt_f32(out), out_row, off, vlt_f32(xs[k]), row, 0, outer, row, false);
        else
#endif
        for (int64_t o = 0; o < outer; o++)
            memcpy(vlt_f32(out) + o * out_row + off, vlt_f32(xs[k]) + o * row, (size_t)row * sizeof(float));
        off += row;
    }
    vlt_node *node = vlt_tape_record("concat", concat_backward, out, n, xs);
    if (node) node->i[0] = dim;
    return out;
}

vlt_tensor *vlt_concat(vlt_tensor **xs, int n, int dim) {
    if (n < 1) { vlt_error_set(VLT_ERR_ARG, "concat: no inputs"); return NULL; }
    for (int k = 0; k < n; k++)
        if (!op_input_ok("concat", xs[k], VLT_F32) || !op_same_device("concat", xs[0], xs[k])) return NULL;
    vlt_tensor *x0 = xs[0];
    if (dim < 0 || dim >= x0->ndim) { vlt_error_set(VLT_ERR_ARG, "concat: dim %d out of range for ndim %d", dim, x0->ndim); return NULL; }
    for (int k = 1; k < n; k++) {
        bool ok = xs[k]->ndim == x0->ndim;
        for (int d = 0; ok && d < x0->ndim; d++) ok = d == dim || xs[k]->shape[d] == x0->shape[d];
        if (!ok) {
            char s0[64], sk[64];
            vlt_error_set(VLT_ERR_SHAPE, "concat: input %d %s does not match input 0 %s outside dim %d", k,
                          vlt_shape_str(xs[k], sk, sizeof sk), vlt_shape_str(x0, s0, sizeof s0), dim);
            return NULL;
        }
    }
    // The tape keeps at most VLT_NODE_MAX_IN inputs per node: concatenate in groups.
    vlt_tensor *acc_t = NULL;
    for (int k = 0; k < n;) {
        vlt_tensor *group[VLT_NODE_MAX_IN];
        int g = 0;
        if (acc_t) group[g++] = acc_t;
        while (g < VLT_NODE_MAX_IN && k < n) group[g++] = xs[k++];
        acc_t = g == 1 ? group[0] : concat_some(group, g, dim);
        if (!acc_t) return NULL;
    }
    return acc_t;
}

// Node ints: [0] dim, [1] start.
static void slice_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    int dim = n->i[0], start = n->i[1], len = n->out->shape[dim];
    int64_t outer, inner;
    dims_around(x, dim, &outer, &inner);
    float *gx = vlt_f32(vlt_grad_of(x));
    const float *g = vlt_f32(n->out->grad);
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) {
        vlt_cuda_block_copy(gx, x->shape[dim] * inner, start * inner, g, len * inner, 0, outer, len * inner, true);
        return;
    }
#endif
    for (int64_t o = 0; o < outer; o++)
        acc(gx + (o * x->shape[dim] + start) * inner, g + o * len * inner, len * inner);
}

vlt_tensor *vlt_slice(vlt_tensor *x, int dim, int start, int len) {
    if (!op_input_ok("slice", x, VLT_F32)) return NULL;
    if (dim < 0 || dim >= x->ndim || start < 0 || len < 1 || start + len > x->shape[dim]) {
        char sx[64];
        vlt_error_set(VLT_ERR_ARG, "slice: [%d, %d) along dim %d is outside %s", start, start + len, dim,
                      vlt_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    int shape[VLT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = len;
    vlt_tensor *out = op_out_on(x->device, x->ndim, shape);
    if (!out) return NULL;
    int64_t outer, inner;
    dims_around(x, dim, &outer, &inner);
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x))
        vlt_cuda_block_copy(vlt_f32(out), len * inner, 0, vlt_f32(x), x->shape[dim] * inner, start * inner, outer,
                            len * inner, false);
    else
#endif
    for (int64_t o = 0; o < outer; o++)
        memcpy(vlt_f32(out) + o * len * inner, vlt_f32(x) + (o * x->shape[dim] + start) * inner,
               (size_t)(len * inner) * sizeof(float));
    vlt_node *n = vlt_tape_record("slice", slice_backward, out, 1, &x);
    if (n) { n->i[0] = dim; n->i[1] = start; }
    return out;
}

// The gradient is f32 whatever the storage dtype (bf16 rounding of each update would lose small
// contributions), so it passes through unchanged.
static void cast_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (x->requires_grad) acc_on(x, vlt_f32(vlt_grad_of(x)), vlt_f32(n->out->grad), x->numel);
}

vlt_tensor *vlt_cast(vlt_tensor *x, vlt_dtype dt) {
    if (!x) return NULL;
    if (vlt_tensor_check_live(x, "cast") != VLT_OK) return NULL;
#ifdef VLT_HAVE_CUDA
    bool dev_ok = true;  // cpu and cuda both cast
#else
    bool dev_ok = x->device == VLT_CPU;
#endif
    bool ok = (x->dtype == VLT_F32 || x->dtype == VLT_BF16) && (dt == VLT_F32 || dt == VLT_BF16) && dev_ok;
    if (!ok || !vlt_tensor_is_contiguous(x)) {
        vlt_error_set(VLT_ERR_DTYPE, "cast: %s -> %s is not supported for '%s' (f32 <-> bf16, contiguous cpu)",
                      vlt_dtype_name(x->dtype), vlt_dtype_name(dt), x->name);
        return NULL;
    }
    vlt_tensor *out = vlt_tensor_new_activation(dt, x->device, x->ndim, x->shape);
    if (!out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) {
        if (x->dtype == dt) vlt_cuda_copy_d2d(out->data, x->data, (size_t)x->numel * vlt_dtype_size(dt));
        else if (dt == VLT_BF16) vlt_cuda_cast_f32_bf16(vlt_bf16(out), vlt_f32(x), x->numel);
        else vlt_cuda_cast_bf16_f32(vlt_f32(out), vlt_bf16(x), x->numel);
    } else
#endif
    if (x->dtype == dt) memcpy(out->data, x->data, (size_t)x->numel * vlt_dtype_size(dt));
    else if (dt == VLT_BF16) vlt_f32_to_bf16_array(vlt_bf16(out), vlt_f32(x), (size_t)x->numel);
    else vlt_bf16_to_f32_array(vlt_f32(out), vlt_bf16(x), (size_t)x->numel);
    vlt_tape_record("cast", cast_backward, out, 1, &x);
    return out;
}

// Images (B, 3, S, S) -> patches (B, G², 3·P·P), G = S / P, each patch flattened as (c, y, x):
// conv1 with stride = kernel = P as a product. Images never require grad (inputs).
vlt_tensor *vlt_patchify(vlt_tensor *images, int P) {
    if (!images) return NULL;
    if (vlt_tensor_check_live(images, "patchify") != VLT_OK) return NULL;
    char s[64];
    if (images->dtype != VLT_F32 || images->ndim != 4 || images->shape[1] != 3 || images->shape[2] != images->shape[3] ||
        images->shape[2] % P) {
        vlt_error_set(VLT_ERR_SHAPE, "patchify: images %s must be f32 (B, 3, S, S) with S a multiple of %d",
                      vlt_shape_str(images, s, sizeof s), P);
        return NULL;
    }
    if (images->requires_grad) {
        vlt_error_set(VLT_ERR_ARG, "patchify: no gradient flows to the input images");
        return NULL;
    }
    int B = images->shape[0], S = images->shape[2], G = S / P, K = 3 * P * P;
    vlt_tensor *out = vlt_tensor_new_activation(VLT_F32, images->device, 3, (const int[]){B, G * G, K});
    if (!out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(images)) {
        vlt_cuda_patchify(vlt_f32(images), vlt_f32(out), B, S, P);
        return out;
    }
#endif
    const float *im = vlt_f32(images);
    float *o = vlt_f32(out);
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++) {
                float *dst = o + ((size_t)b * G * G + gy * G + gx) * K;
                for (int c = 0; c < 3; c++)
                    for (int y = 0; y < P; y++)
                        memcpy(dst + (c * P + y) * P, im + (((size_t)b * 3 + c) * S + gy * P + y) * S + gx * P,
                               (size_t)P * sizeof(float));
            }
    return out;
}
