// ops_index.c — embedding lookup, row gather, argmax, and constant tensors.
#include "autograd/device.h"
#include "autograd/ops_internal.h"

const int32_t *op_host_i32(const vlt_tensor *t) {
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(t)) {
        int32_t *h = vlt_step_scratch((size_t)t->numel * sizeof(int32_t));
        if (h) vlt_cuda_copy_d2h(h, t->data, (size_t)t->numel * sizeof(int32_t));
        return h;
    }
#endif
    return vlt_i32(t);
}

#ifdef VLT_HAVE_CUDA
// The embedding backward's ownership lists, built on the host from the ids and uploaded as one
// i32 device tensor: rows (the used ids, ascending), start (n_rows + 1), pos (n, by row, then in
// order of appearance). Returns NULL when out of memory; *n_rows gets the count.
static vlt_tensor *embedding_owner_lists(const int32_t *id, int64_t n, int V, int *n_rows) {
    int32_t *count = vlt_step_scratch((size_t)V * sizeof(int32_t));
    if (!count) return NULL;
    memset(count, 0, (size_t)V * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) count[id[i]]++;
    int used = 0;
    for (int v = 0; v < V; v++) used += count[v] > 0;
    int64_t total = used + (used + 1) + n;
    int32_t *h = vlt_step_scratch((size_t)total * sizeof(int32_t));
    vlt_tensor *lists = vlt_tensor_new_activation(VLT_I32, VLT_CUDA, 1, VLT_SHAPE((int)total));
    if (!h || !lists) return NULL;
    int32_t *rows = h, *start = h + used, *pos = h + 2 * used + 1;
    // count[v] becomes the next free slot of row v in pos.
    int u = 0, off = 0;
    for (int v = 0; v < V; v++) {
        if (!count[v]) continue;
        rows[u] = v;
        start[u++] = off;
        int c = count[v];
        count[v] = off;
        off += c;
    }
    start[used] = off;
    for (int64_t i = 0; i < n; i++) pos[count[id[i]]++] = (int32_t)i;
    vlt_cuda_copy_h2d(lists->data, h, (size_t)total * sizeof(int32_t));
    *n_rows = used;
    return lists;
}
#endif

static void embedding_backward(vlt_node *n) {
    vlt_tensor *w = n->in[0], *ids = n->in[1];
    if (!w->requires_grad) return;
    int D = w->shape[1];
    const int32_t *id = vlt_i32(ids);
    const float *g = vlt_f32(n->out->grad);
    float *gw = vlt_f32(vlt_grad_of(w));
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(w) && !n->saved[0]) {  // sync-free: the owner lists are built on the device
        vlt_cuda_embedding_bwd_sorted(g, gw, vlt_i32(n->saved[1]), ids->numel, w->shape[0], D);
        return;
    }
    if (ON_CUDA(w)) {
        const int32_t *lists = vlt_i32(n->saved[0]);
        int used = n->i[0];
        vlt_cuda_embedding_bwd(g, gw, lists, lists + used, lists + 2 * used + 1, used, D);
        return;
    }
#endif
    // In order of appearance: deterministic (the same sums in the same order every run).
    for (int64_t i = 0; i < ids->numel; i++)
        for (int d = 0; d < D; d++) gw[(size_t)id[i] * D + d] += g[i * D + d];
}

vlt_tensor *vlt_embedding(vlt_tensor *weight, vlt_tensor *ids) {
    if (!op_input_ok("embedding", weight, VLT_F32) || !op_input_ok("embedding", ids, VLT_I32)) return NULL;
    if (!op_same_device("embedding", weight, ids)) return NULL;
    char sw[64];
    if (weight->ndim != 2 || ids->ndim >= VLT_MAX_DIMS) {
        vlt_error_set(VLT_ERR_SHAPE, "embedding: weight %s must be (V, D) and ids at most %d-D",
                      vlt_shape_str(weight, sw, sizeof sw), VLT_MAX_DIMS - 1);
        return NULL;
    }
    int V = weight->shape[0], D = weight->shape[1];
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(weight) && vlt_cuda_sync_free()) {
        // Sync-free (issue 17): checked on the device, reported after the step; the kernels read
        // the sanitised copy (bad ids made 0), which the backward sorts into its owner lists.
        int slot = vlt_step_check_add(0, weight->name, V, ids->numel);
        vlt_tensor *safe = vlt_tensor_new_activation(VLT_I32, VLT_CUDA, 1, VLT_SHAPE((int)ids->numel));
        int shp[VLT_MAX_DIMS];
        for (int d = 0; d < ids->ndim; d++) shp[d] = ids->shape[d];
        shp[ids->ndim] = D;
        vlt_tensor *o = op_out_on(weight->device, ids->ndim + 1, shp);
        if (!o || !safe) return NULL;
        vlt_cuda_check_range(vlt_i32(ids), vlt_i32(safe), ids->numel, 0, V, false, 0, slot);
        vlt_cuda_embedding_fwd(vlt_f32(weight), vlt_i32(safe), vlt_f32(o), ids->numel, D);
        if (!vlt_grad_enabled() || !weight->requires_grad) return o;
        vlt_node *n = vlt_tape_record("embedding", embedding_backward, o, 2, (vlt_tensor *[]){weight, ids});
        if (n) n->saved[1] = safe;  // saved[0] (the host-built lists) stays NULL
        return o;
    }
#endif
    const int32_t *id = op_host_i32(ids);  // device ids: checked on a host copy
    if (!id) return NULL;
    for (int64_t i = 0; i < ids->numel; i++)
        if (id[i] < 0 || id[i] >= V) {
            vlt_error_set(VLT_ERR_ARG, "embedding: id %d at position %lld is outside the table '%s' of %d rows",
                          id[i], (long long)i, weight->name, V);
            return NULL;
        }
    int shape[VLT_MAX_DIMS];
    for (int d = 0; d < ids->ndim; d++) shape[d] = ids->shape[d];
    shape[ids->ndim] = D;
    vlt_tensor *out = op_out_on(weight->device, ids->ndim + 1, shape);
    if (!out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(weight)) {
        vlt_cuda_embedding_fwd(vlt_f32(weight), vlt_i32(ids), vlt_f32(out), ids->numel, D);
        if (!vlt_grad_enabled() || !weight->requires_grad) return out;
        int used = 0;
        vlt_tensor *lists = embedding_owner_lists(id, ids->numel, V, &used);
        if (!lists) return NULL;
        vlt_node *n = vlt_tape_record("embedding", embedding_backward, out, 2, (vlt_tensor *[]){weight, ids});
        if (n) { n->saved[0] = lists; n->i[0] = used; }
        return out;
    }
#endif
    const float *wv = vlt_f32(weight);
    float *o = vlt_f32(out);
    for (int64_t i = 0; i < ids->numel; i++) memcpy(o + i * D, wv + (size_t)id[i] * D, (size_t)D * sizeof(float));
    vlt_tape_record("embedding", embedding_backward, out, 2, (vlt_tensor *[]){weight, ids});
    return out;
}

static void gather_rows_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    int B = x->shape[0], T = x->shape[1], D = x->shape[2];
    const int32_t *idx = vlt_i32(n->in[1]);
    const float *g = vlt_f32(n->out->grad);
    float *gx = vlt_f32(vlt_grad_of(x));
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) { vlt_cuda_gather_rows_bwd(g, idx, gx, B, T, D); return; }
#endif
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) gx[((size_t)b * T + idx[b]) * D + d] += g[(size_t)b * D + d];
}

vlt_tensor *vlt_gather_rows(vlt_tensor *x, vlt_tensor *idx) {
    if (!op_input_ok("gather_rows", x, VLT_F32) || !op_input_ok("gather_rows", idx, VLT_I32)) return NULL;
    if (!op_same_device("gather_rows", x, idx)) return NULL;
    char sx[64], si[64];
    if (x->ndim != 3 || idx->ndim != 1 || idx->shape[0] != x->shape[0]) {
        vlt_error_set(VLT_ERR_SHAPE, "gather_rows: x %s must be (B, T, D) and idx %s (B)",
                      vlt_shape_str(x, sx, sizeof sx), vlt_shape_str(idx, si, sizeof si));
        return NULL;
    }
    int B = x->shape[0], T = x->shape[1], D = x->shape[2];
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x) && vlt_cuda_sync_free()) {
        // Sync-free (issue 17): checked on the device (reported after the step); the kernels and
        // the backward (its in[1]) read the sanitised copy.
        int slot = vlt_step_check_add(1, idx->name, T, B);
        vlt_tensor *safe = vlt_tensor_new_activation(VLT_I32, VLT_CUDA, 1, VLT_SHAPE(B));
        vlt_tensor *o = op_out_on(x->device, 2, VLT_SHAPE(B, D));
        if (!safe || !o) return NULL;
        vlt_cuda_check_range(vlt_i32(idx), vlt_i32(safe), B, 0, T, false, 0, slot);
        vlt_cuda_gather_rows_fwd(vlt_f32(x), vlt_i32(safe), vlt_f32(o), B, T, D);
        vlt_tape_record("gather_rows", gather_rows_backward, o, 2, (vlt_tensor *[]){x, safe});
        return o;
    }
#endif
    const int32_t *ix = op_host_i32(idx);  // device indices: checked on a host copy
    if (!ix) return NULL;
    for (int b = 0; b < B; b++)
        if (ix[b] < 0 || ix[b] >= T) {
            vlt_error_set(VLT_ERR_ARG, "gather_rows: index %d of row %d is outside [0, %d)", ix[b], b, T);
            return NULL;
        }
    vlt_tensor *out = op_out_on(x->device, 2, VLT_SHAPE(B, D));
    if (!out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) vlt_cuda_gather_rows_fwd(vlt_f32(x), vlt_i32(idx), vlt_f32(out), B, T, D);
    else
#endif
    for (int b = 0; b < B; b++)
        memcpy(vlt_f32(out) + (size_t)b * D, vlt_f32(x) + ((size_t)b * T + ix[b]) * D, (size_t)D * sizeof(float));
    vlt_tape_record("gather_rows", gather_rows_backward, out, 2, (vlt_tensor *[]){x, idx});
    return out;
}

vlt_tensor *vlt_argmax_last(vlt_tensor *x) {
    if (!x) return NULL;
    if (x->dtype == VLT_I32 ? !op_input_ok("argmax_last", x, VLT_I32) : !op_input_ok("argmax_last", x, VLT_F32))
        return NULL;
    int64_t R = rows_of(x);
    int C = last_dim(x);
    vlt_tensor *out = x->ndim == 1 ? vlt_tensor_new_activation(VLT_I32, x->device, 1, VLT_SHAPE(1))
                                   : vlt_tensor_new_activation(VLT_I32, x->device, x->ndim - 1, x->shape);
    if (!out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) {
        vlt_cuda_argmax_last(x->data, x->dtype == VLT_I32, vlt_i32(out), R, C);
        return out;
    }
#endif
    for (int64_t r = 0; r < R; r++) {
        int best = 0;  // first maximum, as torch.argmax
        for (int c = 1; c < C; c++) {
            bool gt = x->dtype == VLT_I32 ? vlt_i32(x)[r * C + c] > vlt_i32(x)[r * C + best]
                                          : vlt_f32(x)[r * C + c] > vlt_f32(x)[r * C + best];
            if (gt) best = c;
        }
        vlt_i32(out)[r] = best;
    }
    return out;
}

// vlt_full and vlt_arange create their output on vlt_default_device() (device.h).
vlt_tensor *vlt_full(int ndim, const int *shape, float value) {
    vlt_tensor *out = op_out_on(vlt_default_device(), ndim, shape);
    if (!out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(out)) { vlt_cuda_fill(vlt_f32(out), out->numel, value); return out; }
#endif
    for (int64_t i = 0; i < out->numel; i++) vlt_f32(out)[i] = value;
    return out;
}

vlt_tensor *vlt_arange(int n) {
    vlt_tensor *out = vlt_tensor_new_activation(VLT_I32, vlt_default_device(), 1, VLT_SHAPE(n));
    if (!out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(out)) { vlt_cuda_arange_i32(vlt_i32(out), n); return out; }
#endif
    for (int i = 0; i < n; i++) vlt_i32(out)[i] = i;
    return out;
}
