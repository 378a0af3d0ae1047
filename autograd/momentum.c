// momentum.c — EMA of momentum copies and feature-queue updates on either device (see momentum.h).
#include "autograd/momentum.h"

#include <stdlib.h>
#include <string.h>

#include "autograd/device.h"
#include "autograd/ops_cuda.h"

#ifdef VLT_HAVE_CUDA
_Static_assert(VLT_QUEUE_MAX == VLT_CUDA_QUEUE_MAX, "the CUDA queue launcher takes VLT_QUEUE_MAX queues");
#endif

static vlt_status check_pair(const char *op, const vlt_tensor *a, const vlt_tensor *b) {
    VLT_TRY(vlt_tensor_check_live(a, op));
    VLT_TRY(vlt_tensor_check_live(b, op));
    if (a->dtype != VLT_F32 || b->dtype != VLT_F32 || !vlt_tensor_same_shape(a, b) || !vlt_tensor_is_contiguous(a) ||
        !vlt_tensor_is_contiguous(b))
        return vlt_error_set(VLT_ERR_SHAPE, "%s: '%s' and '%s' must be contiguous f32 tensors of one shape", op, a->name,
                             b->name);
    if (a->device != b->device)
        return vlt_error_set(VLT_ERR_DEVICE, "%s: '%s' is on %s, '%s' on %s", op, a->name, vlt_device_name(a->device),
                             b->name, vlt_device_name(b->device));
    return VLT_OK;
}

vlt_status vlt_ema_copy(vlt_tensor *const *online, vlt_tensor *const *momentum, int n) {
    for (int i = 0; i < n; i++) VLT_TRY(vlt_tensor_copy(momentum[i], online[i]));
    return VLT_OK;
}

vlt_status vlt_ema_update(vlt_tensor *const *online, vlt_tensor *const *momentum, int n, float mu) {
    for (int i = 0; i < n; i++) VLT_TRY(check_pair("ema_update", online[i], momentum[i]));
    float one_minus = (float)(1.0 - (double)mu);
#ifdef VLT_HAVE_CUDA
    // every device pair in one launch (the same list each step: uploaded once, then cached)
    vlt_mt_entry *mt = calloc((size_t)(n > 0 ? n : 1), sizeof *mt);
    if (!mt) return vlt_error_set(VLT_ERR_NOMEM, "ema_update: out of host memory");
    int nmt = 0;
    for (int i = 0; i < n; i++)
        if (momentum[i]->device == VLT_CUDA)
            mt[nmt++] = (vlt_mt_entry){{vlt_f32(momentum[i]), vlt_f32(online[i]), NULL, NULL}, online[i]->numel, 0, 0};
    if (nmt) vlt_cuda_ema_mt(mt, nmt, mu, one_minus);
    free(mt);
#endif
    for (int i = 0; i < n; i++) {
        if (momentum[i]->device != VLT_CPU) continue;   // done above
        float *pm = vlt_f32(momentum[i]);
        const float *po = vlt_f32(online[i]);
        for (int64_t j = 0; j < online[i]->numel; j++) pm[j] = pm[j] * mu + po[j] * one_minus;
    }
    return VLT_OK;
}

vlt_status vlt_queue_enqueue(vlt_tensor *const *queues, vlt_tensor *const *rows, int nq, int n, vlt_tensor *ptr) {
    const char *op = "queue_enqueue";
    VLT_TRY(vlt_tensor_check_live(ptr, op));
    if (nq < 1 || nq > VLT_QUEUE_MAX)
        return vlt_error_set(VLT_ERR_ARG, "%s: %d queues (1 to %d)", op, nq, VLT_QUEUE_MAX);
    if (ptr->dtype != VLT_I32 || ptr->numel != 1)
        return vlt_error_set(VLT_ERR_SHAPE, "%s: the pointer '%s' must be one i32", op, ptr->name);
    int E = queues[0]->ndim == 2 ? queues[0]->shape[0] : 0, Q = queues[0]->ndim == 2 ? queues[0]->shape[1] : 0;
    for (int k = 0; k < nq; k++) {
        VLT_TRY(vlt_tensor_check_live(queues[k], op));
        VLT_TRY(vlt_tensor_check_live(rows[k], op));
        const vlt_tensor *q = queues[k], *r = rows[k];
        if (q->dtype != VLT_F32 || q->ndim != 2 || q->shape[0] != E || q->shape[1] != Q || Q < 1 ||
            !vlt_tensor_is_contiguous(q) || r->dtype != VLT_F32 || r->ndim != 2 || r->shape[1] != E ||
            r->shape[0] < n || !vlt_tensor_is_contiguous(r) || n < 0) {
            char sq[64], sr[64];
            return vlt_error_set(VLT_ERR_SHAPE, "%s: queue '%s' %s and rows '%s' %s do not fit (want (E, Q) queues of "
                                 "one shape and (>= %d, E) rows)", op, q->name, vlt_shape_str(q, sq, sizeof sq),
                                 r->name, vlt_shape_str(r, sr, sizeof sr), n);
        }
        if (q->device != ptr->device || r->device != ptr->device)
            return vlt_error_set(VLT_ERR_DEVICE, "%s: queue '%s' (%s), rows '%s' (%s) and pointer '%s' (%s) must share "
                                 "a device", op, q->name, vlt_device_name(q->device), r->name,
                                 vlt_device_name(r->device), ptr->name, vlt_device_name(ptr->device));
    }
#ifdef VLT_HAVE_CUDA
    if (ptr->device == VLT_CUDA) {
        float *qd[VLT_QUEUE_MAX] = {0};
        const float *rd[VLT_QUEUE_MAX] = {0};
        for (int k = 0; k < nq; k++) {
            qd[k] = vlt_f32(queues[k]);
            rd[k] = vlt_f32(rows[k]);
        }
        vlt_cuda_queue_enqueue(qd, rd, nq, E, Q, n, vlt_i32(ptr));
        return VLT_OK;
    }
#endif
    int p = vlt_i32(ptr)[0];
    if (p < 0 || p >= Q) p = 0;
    for (int k = 0; k < nq; k++) {
        float *q = vlt_f32(queues[k]);
        const float *r = vlt_f32(rows[k]);
        for (int i = 0; i < n; i++) {
            int col = (int)(((int64_t)p + i) % Q);
            for (int e = 0; e < E; e++) q[(size_t)e * Q + col] = r[(size_t)i * E + e];
        }
    }
    vlt_i32(ptr)[0] = (int32_t)(((int64_t)p + n) % Q);
    return VLT_OK;
}
