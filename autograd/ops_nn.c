// ops_nn.c — layernorm, softmax, log_softmax, l2 normalize (over the last dim), cross-entropy.
#include <math.h>

#include "autograd/device.h"
#include "autograd/ops_internal.h"

// ---- layernorm: y = (x - mean) * rstd * w + b; saved[0] holds (mean, rstd) per row ----
static void layernorm_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int64_t R = rows_of(x);
    int C = last_dim(x);
    const float *g = vlt_f32(n->out->grad), *xv = vlt_f32(x), *stats = vlt_f32(n->saved[0]);
    const float *wv = w ? vlt_f32(w) : NULL;
    float *gw = w && w->requires_grad ? vlt_f32(vlt_grad_of(w)) : NULL;
    float *gb = b && b->requires_grad ? vlt_f32(vlt_grad_of(b)) : NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) {
        bool fresh = false;
        float *gxd = x->requires_grad ? vlt_f32(vlt_grad_for_write(x, &fresh)) : NULL;
        vlt_cuda_layernorm_bwd(g, xv, wv, stats, gxd, gw, gb, R, C, fresh);
        return;
    }
#endif
    float *gx = x->requires_grad ? vlt_f32(vlt_grad_of(x)) : NULL;
    if (gx) {
#pragma omp parallel for if (R * C > VLT_PAR_MIN)
        for (int64_t r = 0; r < R; r++) {
            const float *xr = xv + r * C, *gr = g + r * C;
            float mean = stats[2 * r], rstd = stats[2 * r + 1];
            // dxhat = g * w; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
            double s1 = 0, s2 = 0;
            for (int c = 0; c < C; c++) {
                float xhat = (xr[c] - mean) * rstd;
                float dxh = gr[c] * (wv ? wv[c] : 1.0f);
                s1 += dxh;
                s2 += dxh * xhat;
            }
            float m1 = (float)(s1 / C), m2 = (float)(s2 / C);
            for (int c = 0; c < C; c++) {
                float xhat = (xr[c] - mean) * rstd;
                float dxh = gr[c] * (wv ? wv[c] : 1.0f);
                gx[r * C + c] += rstd * (dxh - m1 - xhat * m2);
            }
        }
    }
    if (gw || gb) {
        for (int64_t r = 0; r < R; r++) {
            const float *xr = xv + r * C, *gr = g + r * C;
            float mean = stats[2 * r], rstd = stats[2 * r + 1];
            for (int c = 0; c < C; c++) {
                if (gw) gw[c] += gr[c] * (xr[c] - mean) * rstd;
                if (gb) gb[c] += gr[c];
            }
        }
    }
}

// out_bf16: write the output in bf16 (the device mixed-precision operand path; the caller checked).
static vlt_tensor *layernorm_impl(vlt_tensor *x, vlt_tensor *w, vlt_tensor *b, float eps, bool out_bf16) {
    if (!op_input_ok("layernorm", x, VLT_F32)) return NULL;
    if (w && !op_input_ok("layernorm", w, VLT_F32)) return NULL;
    if (b && !op_input_ok("layernorm", b, VLT_F32)) return NULL;
    if (!op_same_device("layernorm", x, w) || !op_same_device("layernorm", x, b)) return NULL;
    int C = last_dim(x);
    if ((w && (w->ndim != 1 || w->shape[0] != C)) || (b && (b->ndim != 1 || b->shape[0] != C))) {
        char sx[64], sw[64], sb[64];
        vlt_error_set(VLT_ERR_SHAPE, "layernorm: x %s needs weight and bias of shape (%d), got %s and %s",
                      vlt_shape_str(x, sx, sizeof sx), C, vlt_shape_str(w, sw, sizeof sw), vlt_shape_str(b, sb, sizeof sb));
        return NULL;
    }
    int64_t R = rows_of(x);
    vlt_tensor *out = out_bf16 ? vlt_tensor_new_activation(VLT_BF16, x->device, x->ndim, x->shape)
                               : op_out_on(x->device, x->ndim, x->shape);
    vlt_tensor *stats = op_out_on(x->device, 2, VLT_SHAPE((int)R, 2));
    if (!out || !stats) return NULL;
    const float *xv = vlt_f32(x), *wv = w ? vlt_f32(w) : NULL, *bv = b ? vlt_f32(b) : NULL;
    float *o = vlt_f32(out), *st = vlt_f32(stats);
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x) && out_bf16) {
        VLT_ASSERT(vlt_cuda_layernorm_fwd_bf16(xv, wv, bv, vlt_bf16(out), st, R, C, eps), "layernorm: bf16 output needs C <= 1024");
    } else if (ON_CUDA(x)) {
        vlt_cuda_layernorm_fwd(xv, wv, bv, o, st, R, C, eps);
    } else
#endif
    {
#pragma omp parallel for if (R * C > VLT_PAR_MIN)
        for (int64_t r = 0; r < R; r++) {
            const float *xr = xv + r * C;
            double s = 0, s2 = 0;
            for (int c = 0; c < C; c++) s += xr[c];
            double mean = s / C;
            for (int c = 0; c < C; c++) s2 += (xr[c] - mean) * (xr[c] - mean);
            float rstd = (float)(1.0 / sqrt(s2 / C + eps));
            st[2 * r] = (float)mean;
            st[2 * r + 1] = rstd;
            for (int c = 0; c < C; c++) {
                float y = (xr[c] - (float)mean) * rstd;
                o[r * C + c] = y * (wv ? wv[c] : 1.0f) + (bv ? bv[c] : 0.0f);
            }
        }
    }
    vlt_tensor *in[3] = {x, w, b};
    vlt_node *n = vlt_tape_record(out_bf16 ? "layernorm_bf16" : "layernorm", layernorm_backward, out, 3, in);
    if (n) n->saved[0] = stats;
    return out;
}

vlt_tensor *vlt_layernorm(vlt_tensor *x, vlt_tensor *w, vlt_tensor *b, float eps) {
    return layernorm_impl(x, w, b, eps, false);
}

vlt_tensor *vlt_layernorm_operand(vlt_tensor *x, vlt_tensor *w, vlt_tensor *b, float eps) {
    bool bf16 = false;
#ifdef VLT_HAVE_CUDA
    bf16 = x && ON_CUDA(x) && vlt_cuda_matmul_precision() == 2 && x->ndim >= 1 && last_dim(x) <= 1024;
#endif
    return layernorm_impl(x, w, b, eps, bf16);
}

// ---- softmax / log_softmax over the last dim ----
static void softmax_rows(const float *x, float *y, int64_t R, int C, bool log_out) {
#pragma omp parallel for if (R * C > VLT_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        float mx = -INFINITY;
        for (int c = 0; c < C; c++) mx = xr[c] > mx ? xr[c] : mx;
        // exp in float (the row max keeps every term in [0, 1]), each computed once.
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) {
            yr[c] = expf(xr[c] - mx);
            s += yr[c];
        }
        if (log_out) {
            float lse = mx + logf(s);
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] = xr[c] - lse;
        } else {
            float inv = 1.0f / s;
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] *= inv;
        }
    }
}

static void softmax_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    int64_t R = rows_of(x);
    int C = last_dim(x);
    bool log_out = n->i[0];
    const float *g = vlt_f32(n->out->grad), *y = vlt_f32(n->out);
    float *gx = vlt_f32(vlt_grad_of(x));
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) { vlt_cuda_softmax_bwd(g, y, gx, R, C, log_out); return; }
#endif
#pragma omp parallel for if (R * C > VLT_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *gr = g + r * C, *yr = y + r * C;
        double s = 0;
        if (log_out) {
            // y = log p: dx = g - p * sum(g)
            for (int c = 0; c < C; c++) s += gr[c];
            for (int c = 0; c < C; c++) gx[r * C + c] += gr[c] - expf(yr[c]) * (float)s;
        } else {
            // y = p: dx = p * (g - sum(g * p))
            for (int c = 0; c < C; c++) s += (double)gr[c] * yr[c];
            for (int c = 0; c < C; c++) gx[r * C + c] += yr[c] * (gr[c] - (float)s);
        }
    }
}

static vlt_tensor *softmax_op(const char *op, vlt_tensor *x, bool log_out) {
    if (!op_input_ok(op, x, VLT_F32)) return NULL;
    vlt_tensor *out = op_out_on(x->device, x->ndim, x->shape);
    if (!out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) vlt_cuda_softmax_fwd(vlt_f32(x), vlt_f32(out), rows_of(x), last_dim(x), log_out);
    else
#endif
    softmax_rows(vlt_f32(x), vlt_f32(out), rows_of(x), last_dim(x), log_out);
    vlt_node *n = vlt_tape_record(op, softmax_backward, out, 1, &x);
    if (n) n->i[0] = log_out;
    return out;
}

vlt_tensor *vlt_softmax(vlt_tensor *x) { return softmax_op("softmax", x, false); }
vlt_tensor *vlt_log_softmax(vlt_tensor *x) { return softmax_op("log_softmax", x, true); }

// ---- l2 normalize: y = x / max(||x||, eps) ----
static void l2_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    int64_t R = rows_of(x);
    int C = last_dim(x);
    float eps = n->f[0];
    const float *g = vlt_f32(n->out->grad), *xv = vlt_f32(x), *y = vlt_f32(n->out);
    float *gx = vlt_f32(vlt_grad_of(x));
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) { vlt_cuda_l2norm_bwd(g, xv, y, gx, R, C, eps); return; }
#endif
    for (int64_t r = 0; r < R; r++) {
        const float *xr = xv + r * C, *gr = g + r * C, *yr = y + r * C;
        double nn = 0, gy = 0;
        for (int c = 0; c < C; c++) { nn += (double)xr[c] * xr[c]; gy += (double)gr[c] * yr[c]; }
        float norm = (float)sqrt(nn);
        if (norm > eps) {
            for (int c = 0; c < C; c++) gx[r * C + c] += (gr[c] - yr[c] * (float)gy) / norm;
        } else {
            for (int c = 0; c < C; c++) gx[r * C + c] += gr[c] / eps;
        }
    }
}

vlt_tensor *vlt_l2_normalize(vlt_tensor *x, float eps) {
    if (!op_input_ok("l2_normalize", x, VLT_F32)) return NULL;
    int64_t R = rows_of(x);
    int C = last_dim(x);
    vlt_tensor *out = op_out_on(x->device, x->ndim, x->shape);
    if (!out) return NULL;
    const float *xv = vlt_f32(x);
    float *o = vlt_f32(out);
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) {
        vlt_cuda_l2norm_fwd(xv, o, R, C, eps);
    } else
#endif
    {
        for (int64_t r = 0; r < R; r++) {
            double nn = 0;
            for (int c = 0; c < C; c++) nn += (double)xv[r * C + c] * xv[r * C + c];
            float d = fmaxf((float)sqrt(nn), eps);
            for (int c = 0; c < C; c++) o[r * C + c] = xv[r * C + c] / d;
        }
    }
    vlt_node *n = vlt_tape_record("l2_normalize", l2_backward, out, 1, &x);
    if (n) n->f[0] = eps;
    return out;
}

// ---- cross-entropy: saved[0] = log-probabilities (N, C) ----
static void cross_entropy_backward(vlt_node *n) {
    vlt_tensor *logits = n->in[0];
    if (!logits->requires_grad) return;
    int N = logits->shape[0], C = logits->shape[1];
    int ignore = n->i[0], count = n->i[1];
    float eps = n->f[0];
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(logits) && n->saved[1]) {  // sync-free: the count is a device int
        vlt_cuda_cross_entropy_bwd_dev(vlt_f32(n->out->grad), vlt_f32(n->saved[0]), vlt_i32(n->in[1]),
                                       vlt_f32(vlt_grad_of(logits)), N, C, ignore, eps, vlt_i32(n->saved[1]));
        return;
    }
#endif
    if (count == 0) return;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(logits)) {
        vlt_cuda_cross_entropy_bwd(vlt_f32(n->out->grad), vlt_f32(n->saved[0]), vlt_i32(n->in[1]),
                                   vlt_f32(vlt_grad_of(logits)), N, C, ignore, eps, count);
        return;
    }
#endif
    const int32_t *t = vlt_i32(n->in[1]);
    const float *lp = vlt_f32(n->saved[0]);
    float g = vlt_f32(n->out->grad)[0] / (float)count;
    float *gl = vlt_f32(vlt_grad_of(logits));
    for (int i = 0; i < N; i++) {
        if (t[i] == ignore) continue;
        // d/dlogit_c of (1-ε)(-log p_t) + ε·mean_c(-log p_c) = p_c - (1-ε)·[c==t] - ε/C
        for (int c = 0; c < C; c++)
            gl[(size_t)i * C + c] += g * (expf(lp[(size_t)i * C + c]) - (c == t[i] ? 1.0f - eps : 0.0f) - eps / C);
    }
}

static vlt_tensor *cross_entropy_record(vlt_tensor *logits, vlt_tensor *targets, vlt_tensor *out, vlt_tensor *logp,
                                        int ignore_index, int count, float label_smoothing) {
    vlt_node *n = vlt_tape_record("cross_entropy", cross_entropy_backward, out, 2, (vlt_tensor *[]){logits, targets});
    if (n) {
        n->saved[0] = logp;
        n->i[0] = ignore_index;
        n->i[1] = count;
        n->f[0] = label_smoothing;
    }
    return out;
}

vlt_tensor *vlt_cross_entropy(vlt_tensor *logits, vlt_tensor *targets, int ignore_index, float label_smoothing) {
    if (!op_input_ok("cross_entropy", logits, VLT_F32) || !op_input_ok("cross_entropy", targets, VLT_I32)) return NULL;
    if (!op_same_device("cross_entropy", logits, targets)) return NULL;
    char sl[64], st[64];
    if (logits->ndim != 2 || targets->ndim != 1 || targets->shape[0] != logits->shape[0]) {
        vlt_error_set(VLT_ERR_SHAPE, "cross_entropy: logits %s must be (N, C) and targets %s (N)",
                      vlt_shape_str(logits, sl, sizeof sl), vlt_shape_str(targets, st, sizeof st));
        return NULL;
    }
    if (!(label_smoothing >= 0.0f && label_smoothing < 1.0f)) {
        vlt_error_set(VLT_ERR_ARG, "cross_entropy: label_smoothing %g is outside [0, 1)", label_smoothing);
        return NULL;
    }
    int N = logits->shape[0], C = logits->shape[1];
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(logits) && vlt_cuda_sync_free()) {
        // Sync-free (issue 17): the targets checked on the device (reported after the step), the
        // kernels read the sanitised copy, and the count of counted rows is a device int.
        int slot = vlt_step_check_add(2, targets->name, C, N);
        vlt_tensor *safe = vlt_tensor_new_activation(VLT_I32, VLT_CUDA, 1, VLT_SHAPE(N));
        vlt_tensor *lp = op_out_on(logits->device, 2, logits->shape);
        vlt_tensor *o = op_out_on(logits->device, 1, VLT_SHAPE(1));
        vlt_tensor *count = vlt_tensor_new_activation(VLT_I32, VLT_CUDA, 1, VLT_SHAPE(1));
        if (!safe || !lp || !o || !count) return NULL;
        vlt_cuda_check_range(vlt_i32(targets), vlt_i32(safe), N, 0, C, true, ignore_index, slot);
        vlt_cuda_count_not(vlt_i32(safe), N, ignore_index, vlt_i32(count));
        vlt_cuda_cross_entropy_fwd_dev(vlt_f32(logits), vlt_i32(safe), vlt_f32(lp), vlt_f32(o), N, C, ignore_index,
                                       label_smoothing, vlt_i32(count));
        vlt_node *n = vlt_tape_record("cross_entropy", cross_entropy_backward, o, 2, (vlt_tensor *[]){logits, safe});
        if (n) {
            n->saved[0] = lp;
            n->i[0] = ignore_index;
            n->i[1] = -1;  // the count is on the device: saved[1]
            n->f[0] = label_smoothing;
            n->saved[1] = count;
        }
        return o;
    }
#endif
    const int32_t *t = op_host_i32(targets);  // device targets: checked on a host copy
    if (!t) return NULL;
    for (int i = 0; i < N; i++)
        if (t[i] != ignore_index && (t[i] < 0 || t[i] >= C)) {
            vlt_error_set(VLT_ERR_ARG, "cross_entropy: target %d of row %d is outside [0, %d)", t[i], i, C);
            return NULL;
        }
    vlt_tensor *logp = op_out_on(logits->device, 2, logits->shape);
    vlt_tensor *out = op_out_on(logits->device, 1, VLT_SHAPE(1));
    if (!logp || !out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(logits)) {
        int count = 0;
        for (int i = 0; i < N; i++) count += t[i] != ignore_index;
        vlt_cuda_cross_entropy_fwd(vlt_f32(logits), vlt_i32(targets), vlt_f32(logp), vlt_f32(out), N, C, ignore_index,
                                   label_smoothing, count);
        return cross_entropy_record(logits, targets, out, logp, ignore_index, count, label_smoothing);
    }
#endif
    softmax_rows(vlt_f32(logits), vlt_f32(logp), N, C, true);
    const float *lp = vlt_f32(logp);
    double total = 0;
    int count = 0;
    for (int i = 0; i < N; i++) {
        if (t[i] == ignore_index) continue;
        double mean_nll = 0;
        if (label_smoothing > 0)
            for (int c = 0; c < C; c++) mean_nll -= lp[(size_t)i * C + c];
        total += (1.0 - label_smoothing) * -lp[(size_t)i * C + t[i]] + label_smoothing * mean_nll / C;
        count++;
    }
    vlt_f32(out)[0] = count ? (float)(total / count) : 0.0f;
    return cross_entropy_record(logits, targets, out, logp, ignore_index, count, label_smoothing);
}
