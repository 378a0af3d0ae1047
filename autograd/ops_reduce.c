// ops_reduce.c — sum and mean over the last dim and over everything.
#include "autograd/ops_internal.h"

static void reduce_last_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    const float *g = vlt_f32(n->out->grad);
    float *gx = vlt_f32(vlt_grad_of(x));
    int64_t R = n->i[0];
    int C = n->i[1];
    float k = n->f[0];  // 1 for sum, 1/C for mean
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) { vlt_cuda_row_bcast_acc(gx, g, R, n->i[1], k); return; }
#endif
#pragma omp parallel for if (R * C > VLT_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        for (int c = 0; c < C; c++) gx[r * C + c] += k * g[r];
}

static vlt_tensor *reduce_last(const char *op, vlt_tensor *x, bool mean, bool all) {
    if (!op_input_ok(op, x, VLT_F32)) return NULL;
    int64_t R = all ? 1 : rows_of(x);
    int64_t C = all ? x->numel : last_dim(x);
    vlt_tensor *out = (all || x->ndim <= 1) ? op_out_on(x->device, 1, VLT_SHAPE(1))
                                            : op_out_on(x->device, x->ndim - 1, x->shape);
    if (!out) return NULL;
    const float *xv = vlt_f32(x);
    float *o = vlt_f32(out);
    float k = mean ? 1.0f / (float)C : 1.0f;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) {
        vlt_cuda_row_sum(xv, o, R, C, k);
    } else
#endif
    {
#pragma omp parallel for if (R * C > VLT_PAR_MIN)
        for (int64_t r = 0; r < R; r++) {
            double s = 0;
            for (int64_t c = 0; c < C; c++) s += xv[r * C + c];
            o[r] = (float)s * k;
        }
    }
    vlt_node *n = vlt_tape_record(op, reduce_last_backward, out, 1, &x);
    if (n) { n->i[0] = (int)R; n->i[1] = (int)C; n->f[0] = k; }
    return out;
}

vlt_tensor *vlt_sum_last(vlt_tensor *a) { return reduce_last("sum_last", a, false, false); }
vlt_tensor *vlt_mean_last(vlt_tensor *a) { return reduce_last("mean_last", a, true, false); }
vlt_tensor *vlt_sum_all(vlt_tensor *a) { return reduce_last("sum_all", a, false, true); }
vlt_tensor *vlt_mean_all(vlt_tensor *a) { return reduce_last("mean_all", a, true, true); }
