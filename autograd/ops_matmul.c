// ops_matmul.c — batched matmul with transpose flags, and linear, through OpenBLAS sgemm.
#include <cblas.h>

#include "autograd/ops_internal.h"

// C (M, N) [+]= op(A) · op(B), row-major; lda/ldb are the stored row lengths.
static void sgemm(bool ta, bool tb, int M, int N, int K, const float *A, const float *B, float *C, float beta) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                1.0f, A, ta ? M : K, B, tb ? K : N, beta, C, N);
}

#ifdef VLT_HAVE_CUDA
// The CPU loop below as strided-batched products (stride 0 for a b shared by every batch).
// A shared b's gradient sums over the batch: one product over all rows when a is not
// transposed (its rows are contiguous), else one accumulating product per batch.
static void matmul_backward_cuda(vlt_node *n, const float *g) {
    vlt_tensor *a = n->in[0], *b = n->in[1];
    int batch = n->i[0], M = n->i[1], N = n->i[2], K = n->i[3];
    bool ta = n->i[4], tb = n->i[5], b_batched = n->i[6];
    int64_t sA = (int64_t)M * K, sB = b_batched ? (int64_t)K * N : 0, sG = (int64_t)M * N;
    const float *av = vlt_f32(a), *bv = vlt_f32(b);
    if (a->requires_grad) {
        float *ga = vlt_f32(vlt_grad_of(a));
        if (!ta) vlt_cuda_gemm(false, !tb, M, K, N, 1.0f, g, sG, bv, sB, 1.0f, ga, sA, batch);
        else vlt_cuda_gemm(tb, true, K, M, N, 1.0f, bv, sB, g, sG, 1.0f, ga, sA, batch);
    }
    if (b->requires_grad) {
        float *gb = vlt_f32(vlt_grad_of(b));
        if (b_batched) {
            if (!tb) vlt_cuda_gemm(!ta, false, K, N, M, 1.0f, av, sA, g, sG, 1.0f, gb, sB, batch);
            else vlt_cuda_gemm(true, ta, N, K, M, 1.0f, g, sG, av, sA, 1.0f, gb, sB, batch);
        } else if (!ta) {
            int R = batch * M;  // a as (batch·M, K), g as (batch·M, N)
            if (!tb) vlt_cuda_gemm(true, false, K, N, R, 1.0f, av, 0, g, 0, 1.0f, gb, 0, 1);
            else vlt_cuda_gemm(true, false, N, K, R, 1.0f, g, 0, av, 0, 1.0f, gb, 0, 1);
        } else {
            for (int i = 0; i < batch; i++) {
                const float *ai = av + (size_t)i * sA, *gi = g + (size_t)i * sG;
                if (!tb) vlt_cuda_gemm(false, false, K, N, M, 1.0f, ai, 0, gi, 0, 1.0f, gb, 0, 1);
                else vlt_cuda_gemm(true, true, N, K, M, 1.0f, gi, 0, ai, 0, 1.0f, gb, 0, 1);
            }
        }
    }
}
#endif

// Node ints: [0] batch, [1] M, [2] N, [3] K, [4] trans_a, [5] trans_b, [6] b is batched.
static void matmul_backward(vlt_node *n) {
    vlt_tensor *a = n->in[0], *b = n->in[1];
    int batch = n->i[0], M = n->i[1], N = n->i[2], K = n->i[3];
    bool ta = n->i[4], tb = n->i[5], b_batched = n->i[6];
    const float *g = vlt_f32(n->out->grad);
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(a)) { matmul_backward_cuda(n, g); return; }
#endif
    for (int i = 0; i < batch; i++) {
        const float *gi = g + (size_t)i * M * N;
        const float *ai = vlt_f32(a) + (size_t)i * M * K;
        const float *bi = vlt_f32(b) + (b_batched ? (size_t)i * K * N : 0);
        if (a->requires_grad) {
            float *ga = vlt_f32(vlt_grad_of(a)) + (size_t)i * M * K;
            // out = op(A)·op(B): dop(A) = G·op(B)ᵀ. A stored (M,K): dA = G·op(B)ᵀ; A stored (K,M): dA = op(B)·Gᵀ.
            if (!ta) sgemm(false, !tb, M, K, N, gi, bi, ga, 1.0f);
            else sgemm(tb, true, K, M, N, bi, gi, ga, 1.0f);
        }
        if (b->requires_grad) {
            float *gb = vlt_f32(vlt_grad_of(b)) + (b_batched ? (size_t)i * K * N : 0);
            // dop(B) = op(A)ᵀ·G. B stored (K,N): dB = op(A)ᵀ·G; B stored (N,K): dB = Gᵀ·op(A).
            if (!tb) sgemm(!ta, false, K, N, M, ai, gi, gb, 1.0f);
            else sgemm(true, ta, N, K, M, gi, ai, gb, 1.0f);
        }
    }
}

vlt_tensor *vlt_matmul(vlt_tensor *a, vlt_tensor *b, bool trans_a, bool trans_b) {
    if (!op_input_ok("matmul", a, VLT_F32) || !op_input_ok("matmul", b, VLT_F32)) return NULL;
    if (!op_same_device("matmul", a, b)) return NULL;
    char sa[64], sb[64];
    if (a->ndim < 2 || b->ndim < 2) {
        vlt_error_set(VLT_ERR_SHAPE, "matmul: a %s and b %s must both be at least 2-D",
                      vlt_shape_str(a, sa, sizeof sa), vlt_shape_str(b, sb, sizeof sb));
        return NULL;
    }
    int ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    int M = trans_a ? ac : ar, K = trans_a ? ar : ac;
    int Kb = trans_b ? bc : br, N = trans_b ? br : bc;
    int batch = (int)(a->numel / ((int64_t)ar * ac));
    bool b_batched = b->ndim > 2;
    bool lead_ok = !b_batched || (b->ndim == a->ndim && b->numel / ((int64_t)br * bc) == batch);
    for (int d = 0; lead_ok && b_batched && d < a->ndim - 2; d++) lead_ok = a->shape[d] == b->shape[d];
    if (K != Kb || !lead_ok) {
        vlt_error_set(VLT_ERR_SHAPE, "matmul: a %s%s and b %s%s do not fit (inner dims %d vs %d%s)",
                      vlt_shape_str(a, sa, sizeof sa), trans_a ? "ᵀ" : "", vlt_shape_str(b, sb, sizeof sb),
                      trans_b ? "ᵀ" : "", K, Kb, lead_ok ? "" : ", batch dims differ");
        return NULL;
    }
    int shape[VLT_MAX_DIMS];
    for (int d = 0; d < a->ndim - 2; d++) shape[d] = a->shape[d];
    shape[a->ndim - 2] = M;
    shape[a->ndim - 1] = N;
    vlt_tensor *out = op_out_on(a->device, a->ndim, shape);
    if (!out) return NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(a)) {
        if (!b_batched && !trans_a)
            vlt_cuda_gemm(false, trans_b, batch * M, N, K, 1.0f, vlt_f32(a), 0, vlt_f32(b), 0, 0.0f, vlt_f32(out), 0, 1);
        else
            vlt_cuda_gemm(trans_a, trans_b, M, N, K, 1.0f, vlt_f32(a), (int64_t)M * K, vlt_f32(b),
                          b_batched ? (int64_t)K * N : 0, 0.0f, vlt_f32(out), (int64_t)M * N, batch);
    } else
#endif
    if (!b_batched && !trans_a) {
        // One sgemm over all batch rows: (batch·M, K) · op(B).
        sgemm(false, trans_b, batch * M, N, K, vlt_f32(a), vlt_f32(b), vlt_f32(out), 0.0f);
    } else {
        for (int i = 0; i < batch; i++)
            sgemm(trans_a, trans_b, M, N, K, vlt_f32(a) + (size_t)i * M * K,
                  vlt_f32(b) + (b_batched ? (size_t)i * K * N : 0), vlt_f32(out) + (size_t)i * M * N, 0.0f);
    }
    vlt_node *n = vlt_tape_record("matmul", matmul_backward, out, 2, (vlt_tensor *[]){a, b});
    if (n) {
        int v[7] = {batch, M, N, K, trans_a, trans_b, b_batched};
        memcpy(n->i, v, sizeof v);
    }
    return out;
}

#ifdef VLT_HAVE_CUDA
// The two products of a mixed-precision linear backward from the bf16 output gradient gb (R, OUT):
// dX = dY·W (written when x's gradient is fresh, else added) and dW += dYᵀ·X, on the forward's
// bf16 operands xb (R, IN) and wb (OUT, IN).
static void linear_backward_bf16(vlt_tensor *x, vlt_tensor *w, const uint16_t *gb, const uint16_t *xb,
                                 const uint16_t *wb, int R, int IN, int OUT) {
    if (x->requires_grad) {
        bool fresh;
        float *gx = vlt_f32(vlt_grad_for_write(x, &fresh));
        vlt_cuda_gemm_bf16(false, false, R, IN, OUT, gb, wb, fresh ? 0.0f : 1.0f, gx);  // dX = dY·W
    }
    if (w->requires_grad) vlt_cuda_gemm_bf16(true, false, OUT, IN, R, gb, xb, 1.0f, vlt_f32(vlt_grad_of(w)));  // dW += dYᵀ·X
}
#endif

// Node ints: [0] rows, [1] in, [2] out.
static void linear_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0], *w = n->in[1], *bias = n->in[2];
    int R = n->i[0], IN = n->i[1], OUT = n->i[2];
    const float *g = vlt_f32(n->out->grad);
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x) && n->saved[0]) {  // mixed precision: the forward's bf16 operands (x itself when bf16)
        vlt_tensor *gbt = vlt_tensor_new_activation(VLT_BF16, VLT_CUDA, 2, VLT_SHAPE(R, OUT));
        VLT_ASSERT(gbt, "linear backward: device step arena out of memory");
        // one rounding of dY serves both products; the bias gradient is summed in the same pass
        vlt_cuda_to_bf16_colsum(vlt_bf16(gbt), g, R, OUT,
                                bias && bias->requires_grad ? vlt_f32(vlt_grad_of(bias)) : NULL);
        linear_backward_bf16(x, w, vlt_bf16(gbt), vlt_bf16(n->saved[0]), vlt_bf16(n->saved[1]), R, IN, OUT);
        // the node's own bf16 copies are dead now (x itself, when it was the operand, is not ours)
        vlt_tape_release_private(gbt);
        if (n->saved[0] != x) vlt_tape_release_private(n->saved[0]);
        vlt_tape_release_private(n->saved[1]);
        return;
    }
    if (ON_CUDA(x)) {
        if (x->requires_grad) {
            bool fresh;
            float *gx = vlt_f32(vlt_grad_for_write(x, &fresh));
            vlt_cuda_gemm(false, false, R, IN, OUT, 1.0f, g, 0, vlt_f32(w), 0, fresh ? 0.0f : 1.0f, gx, 0, 1);
        }
        if (w->requires_grad)
            vlt_cuda_gemm(true, false, OUT, IN, R, 1.0f, g, 0, vlt_f32(x), 0, 1.0f, vlt_f32(vlt_grad_of(w)), 0, 1);
        if (bias && bias->requires_grad) vlt_cuda_colsum_acc(vlt_f32(vlt_grad_of(bias)), g, NULL, R, OUT, 1.0f);
        return;
    }
#endif
    if (x->requires_grad) sgemm(false, false, R, IN, OUT, g, vlt_f32(w), vlt_f32(vlt_grad_of(x)), 1.0f);
    if (w->requires_grad) sgemm(true, false, OUT, IN, R, g, vlt_f32(x), vlt_f32(vlt_grad_of(w)), 1.0f);
    if (bias && bias->requires_grad) {
        float *gb = vlt_f32(vlt_grad_of(bias));
        for (int r = 0; r < R; r++)
            for (int o = 0; o < OUT; o++) gb[o] += g[(size_t)r * OUT + o];
    }
}

#ifdef VLT_HAVE_CUDA
// Node as linear's (in[0..2], i, saved) with in[3] the residual, which gets the output gradient
// as it is (taken over when it can be, vlt_grad_steal).
static void linear_residual_backward(vlt_node *n) {
    linear_backward(n);
    vlt_tensor *r = n->in[3];
    if (r->requires_grad && !vlt_grad_steal(r, n->out->grad))
        vlt_cuda_acc(vlt_f32(vlt_grad_of(r)), vlt_f32(n->out->grad), r->numel);
}
#endif

// vlt_linear, and with `residual` (only in the device mixed-precision path, which the caller
// checked) residual + linear in one cuBLASLt call.
// True when x may be taken as a bf16 operand: a device tensor in mixed precision.
static bool bf16_operand_ok(const vlt_tensor *x) {
#ifdef VLT_HAVE_CUDA
    return x && x->dtype == VLT_BF16 && ON_CUDA(x) && vlt_cuda_matmul_precision() == 2;
#else
    (void)x;
    return false;
#endif
}

// out_bf16 (the device mixed-precision path only, no residual): the output is written in bf16.
static vlt_tensor *linear_impl(vlt_tensor *x, vlt_tensor *w, vlt_tensor *bias, vlt_tensor *residual, bool out_bf16) {
    if (!op_input_ok("linear", x, bf16_operand_ok(x) ? VLT_BF16 : VLT_F32) || !op_input_ok("linear", w, VLT_F32))
        return NULL;
    if (bias && !op_input_ok("linear", bias, VLT_F32)) return NULL;
    if (!op_same_device("linear", x, w) || !op_same_device("linear", x, bias)) return NULL;
    char sx[64], sw[64], sb[64];
    int IN = last_dim(x);
    if (x->ndim < 1 || w->ndim != 2 || w->shape[1] != IN || (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))) {
        vlt_error_set(VLT_ERR_SHAPE, "linear: x %s, weight %s '%s', bias %s do not fit (weight must be (out, %d), bias (out))",
                      vlt_shape_str(x, sx, sizeof sx), vlt_shape_str(w, sw, sizeof sw), w->name,
                      vlt_shape_str(bias, sb, sizeof sb), IN);
        return NULL;
    }
    int OUT = w->shape[0], R = (int)rows_of(x);
    int shape[VLT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = OUT;
    vlt_tensor *out = out_bf16 ? vlt_tensor_new_activation(VLT_BF16, x->device, x->ndim, shape)
                               : op_out_on(x->device, x->ndim, shape);
    if (!out) return NULL;
    float *o = vlt_f32(out);
#ifdef VLT_HAVE_CUDA
    vlt_tensor *xb = NULL, *wb = NULL;
    if (ON_CUDA(x) && vlt_cuda_matmul_precision() == 2) {
        // Mixed precision: bf16 copies of x and w (kept for backward's two products), fp32
        // accumulation and output, the bias added in cuBLASLt's epilogue.
        // (a bf16 x, from vlt_layernorm_operand or vlt_linear_act, is its own operand)
        xb = x->dtype == VLT_BF16 ? x : vlt_tensor_new_activation(VLT_BF16, VLT_CUDA, 2, VLT_SHAPE(R, IN));
        wb = vlt_tensor_new_activation(VLT_BF16, VLT_CUDA, 2, VLT_SHAPE(OUT, IN));
        if (!xb || !wb) return NULL;
        if (xb != x) vlt_cuda_to_bf16(vlt_bf16(xb), vlt_f32(x), (int64_t)R * IN);
        vlt_cuda_to_bf16(vlt_bf16(wb), vlt_f32(w), (int64_t)OUT * IN);
        const float *res = residual ? vlt_f32(residual) : NULL;
        if (out_bf16) {
            if (!vlt_cuda_linear_bf16_out(vlt_bf16(xb), vlt_bf16(wb), bias ? vlt_f32(bias) : NULL, vlt_bf16(out), R, IN,
                                          OUT)) {
                // no cuBLASLt algorithm for a bf16 output: the fp32 product, then one rounding
                o = vlt_cuda_arena_alloc((size_t)R * OUT * sizeof(float));  // device scratch
                if (!o) return NULL;
                if (!vlt_cuda_linear_bf16(vlt_bf16(xb), vlt_bf16(wb), bias ? vlt_f32(bias) : NULL, NULL, o, R, IN, OUT)) {
                    if (bias) vlt_cuda_fill_rows(o, vlt_f32(bias), R, OUT);
                    vlt_cuda_gemm_bf16(false, true, R, OUT, IN, vlt_bf16(xb), vlt_bf16(wb), bias ? 1.0f : 0.0f, o);
                }
                vlt_cuda_to_bf16(vlt_bf16(out), o, (int64_t)R * OUT);
            }
        } else if (!vlt_cuda_linear_bf16(vlt_bf16(xb), vlt_bf16(wb), bias ? vlt_f32(bias) : NULL, res, o, R, IN, OUT)) {
            if (res) vlt_cuda_copy_d2d(o, res, (size_t)R * OUT * sizeof(float));
            else if (bias) vlt_cuda_fill_rows(o, vlt_f32(bias), R, OUT);
            if (res && bias) vlt_cuda_binary_fwd(VLT_BIN_ADD, o, vlt_f32(bias), o, (int64_t)R * OUT, OUT);
            vlt_cuda_gemm_bf16(false, true, R, OUT, IN, vlt_bf16(xb), vlt_bf16(wb), res || bias ? 1.0f : 0.0f, o);
        }
    } else if (ON_CUDA(x)) {
        if (bias) vlt_cuda_fill_rows(o, vlt_f32(bias), R, OUT);
        vlt_cuda_gemm(false, true, R, OUT, IN, 1.0f, vlt_f32(x), 0, vlt_f32(w), 0, bias ? 1.0f : 0.0f, o, 0, 1);
    } else
#endif
    {
        if (bias) {
            const float *bv = vlt_f32(bias);
            for (int r = 0; r < R; r++) memcpy(o + (size_t)r * OUT, bv, (size_t)OUT * sizeof(float));
        }
        sgemm(false, true, R, OUT, IN, vlt_f32(x), vlt_f32(w), o, bias ? 1.0f : 0.0f);
    }
    vlt_tensor *in[4] = {x, w, bias, residual};
#ifdef VLT_HAVE_CUDA
    vlt_node *n = residual ? vlt_tape_record("linear_residual", linear_residual_backward, out, 4, in)
                           : vlt_tape_record("linear", linear_backward, out, bias ? 3 : 2, in);
    if (n) { n->saved[0] = xb; n->saved[1] = wb; }
#else
    vlt_node *n = vlt_tape_record("linear", linear_backward, out, bias ? 3 : 2, in);
#endif
    if (n) { n->i[0] = R; n->i[1] = IN; n->i[2] = OUT; }
    return out;
}

vlt_tensor *vlt_linear(vlt_tensor *x, vlt_tensor *w, vlt_tensor *bias) { return linear_impl(x, w, bias, NULL, false); }

vlt_tensor *vlt_linear_operand(vlt_tensor *x, vlt_tensor *w, vlt_tensor *bias) {
#ifdef VLT_HAVE_CUDA
    if (x && ON_CUDA(x) && vlt_cuda_matmul_precision() == 2) return linear_impl(x, w, bias, NULL, true);
#endif
    return linear_impl(x, w, bias, NULL, false);
}

vlt_tensor *vlt_linear_residual(vlt_tensor *x, vlt_tensor *w, vlt_tensor *bias, vlt_tensor *residual) {
#ifdef VLT_HAVE_CUDA
    // Mixed precision on the GPU: the residual is cuBLASLt's C (beta 1), so the add's pass over
    // three activations disappears. It must be a contiguous f32 device tensor of the output's shape.
    if (x && w && residual && ON_CUDA(x) && vlt_cuda_matmul_precision() == 2 && w->ndim == 2 &&
        vlt_tensor_check_live(residual, "linear_residual") == VLT_OK && residual->dtype == VLT_F32 &&
        ON_CUDA(residual) && vlt_tensor_is_contiguous(residual) && residual->ndim == x->ndim && x->ndim >= 1 &&
        residual->shape[x->ndim - 1] == w->shape[0] && rows_of(residual) == rows_of(x))
        return linear_impl(x, w, bias, residual, false);
#endif
    return vlt_add(residual, vlt_linear(x, w, bias));
}

// ---- linear + activation (the MLP's c_fc) ----
static vlt_tensor *act_of(vlt_tensor *h, vlt_act_fn act) {
    return act == VLT_ACT_FN_QUICK_GELU ? vlt_quick_gelu(h) : act == VLT_ACT_FN_GELU_TANH ? vlt_gelu_tanh(h) : vlt_gelu(h);
}

#ifdef VLT_HAVE_CUDA
static int act_kind(vlt_act_fn act) {
    return act == VLT_ACT_FN_QUICK_GELU ? VLT_UN_QUICK_GELU : act == VLT_ACT_FN_GELU_TANH ? VLT_UN_GELU_TANH : VLT_UN_GELU;
}

// Node: in (x, w, bias), saved (xb, wb, hb: the bf16 operands and pre-activation), ints (R, IN,
// OUT, kind).
static void linear_act_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0], *w = n->in[1], *bias = n->in[2];
    int R = n->i[0], IN = n->i[1], OUT = n->i[2], kind = n->i[3];
    vlt_tensor *dh = vlt_tensor_new_activation(VLT_BF16, VLT_CUDA, 2, VLT_SHAPE(R, OUT));
    VLT_ASSERT(dh, "linear_act backward: device step arena out of memory");
    // dH = bf16(g · act'(h)) once for both products; the bias gradient in the same pass
    vlt_cuda_act_bf16_bwd_colsum(kind, vlt_f32(n->out->grad), vlt_bf16(n->saved[2]), vlt_bf16(dh), R, OUT,
                                 bias && bias->requires_grad ? vlt_f32(vlt_grad_of(bias)) : NULL);
    linear_backward_bf16(x, w, vlt_bf16(dh), vlt_bf16(n->saved[0]), vlt_bf16(n->saved[1]), R, IN, OUT);
    vlt_tape_release_private(dh);
    if (n->saved[0] != x) vlt_tape_release_private(n->saved[0]);
    vlt_tape_release_private(n->saved[1]);
    vlt_tape_release_private(n->saved[2]);
}
#endif

vlt_tensor *vlt_linear_act(vlt_tensor *x, vlt_tensor *w, vlt_tensor *bias, vlt_act_fn act) {
#ifdef VLT_HAVE_CUDA
    bool fused = x && w && ON_CUDA(x) && vlt_cuda_matmul_precision() == 2 && w->ndim == 2 && x->ndim >= 1 &&
                 x->shape[x->ndim - 1] == w->shape[1] && (!bias || (bias->ndim == 1 && bias->shape[0] == w->shape[0]));
    if (fused) {
        if (!op_input_ok("linear_act", x, x->dtype == VLT_BF16 ? VLT_BF16 : VLT_F32) ||
            !op_input_ok("linear_act", w, VLT_F32) || (bias && !op_input_ok("linear_act", bias, VLT_F32)))
            return NULL;
        if (!op_same_device("linear_act", x, w) || !op_same_device("linear_act", x, bias)) return NULL;
        int IN = last_dim(x), OUT = w->shape[0], R = (int)rows_of(x);
        int shape[VLT_MAX_DIMS];
        memcpy(shape, x->shape, sizeof shape);
        shape[x->ndim - 1] = OUT;
        vlt_tensor *xb = x->dtype == VLT_BF16 ? x : vlt_tensor_new_activation(VLT_BF16, VLT_CUDA, 2, VLT_SHAPE(R, IN));
        vlt_tensor *wb = vlt_tensor_new_activation(VLT_BF16, VLT_CUDA, 2, VLT_SHAPE(OUT, IN));
        vlt_tensor *hb = vlt_tensor_new_activation(VLT_BF16, VLT_CUDA, 2, VLT_SHAPE(R, OUT));
        vlt_tensor *out = vlt_tensor_new_activation(VLT_BF16, VLT_CUDA, x->ndim, shape);
        if (!xb || !wb || !hb || !out) return NULL;
        if (xb != x) vlt_cuda_to_bf16(vlt_bf16(xb), vlt_f32(x), (int64_t)R * IN);
        vlt_cuda_to_bf16(vlt_bf16(wb), vlt_f32(w), (int64_t)OUT * IN);
        const float *bv = bias ? vlt_f32(bias) : NULL;
        if (!vlt_cuda_linear_bf16_out(vlt_bf16(xb), vlt_bf16(wb), bv, vlt_bf16(hb), R, IN, OUT)) {
            // no cuBLASLt algorithm for a bf16 output: the fp32 product, then one rounding
            float *hf = vlt_cuda_arena_alloc((size_t)R * OUT * sizeof(float));  // device scratch
            if (!hf) return NULL;
            if (!vlt_cuda_linear_bf16(vlt_bf16(xb), vlt_bf16(wb), bv, NULL, hf, R, IN, OUT)) {
                if (bv) vlt_cuda_fill_rows(hf, bv, R, OUT);
                vlt_cuda_gemm_bf16(false, true, R, OUT, IN, vlt_bf16(xb), vlt_bf16(wb), bv ? 1.0f : 0.0f, hf);
            }
            vlt_cuda_to_bf16(vlt_bf16(hb), hf, (int64_t)R * OUT);
        }
        vlt_cuda_act_bf16_fwd(act_kind(act), vlt_bf16(hb), vlt_bf16(out), (int64_t)R * OUT);
        vlt_node *n = vlt_tape_record("linear_act", linear_act_backward, out, bias ? 3 : 2, (vlt_tensor *[]){x, w, bias});
        if (n) {
            n->saved[0] = xb;
            n->saved[1] = wb;
            n->saved[2] = hb;
            n->i[0] = R; n->i[1] = IN; n->i[2] = OUT; n->i[3] = act_kind(act);
        }
        return out;
    }
#endif
    return act_of(vlt_linear(x, w, bias), act);
}
