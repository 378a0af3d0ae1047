// ops_attention.c — scaled dot-product attention over heads with causal and key-padding masks.
//
// CPU: per (batch, head), S = q·kᵀ·scale (Tq, Tk), masked, P = softmax(S) saved for backward,
// out = P·v. The (b, h) pairs run in parallel over OpenMP threads, each product an sgemm
// (OpenBLAS's OpenMP build runs single-threaded inside a parallel region).
#include <cblas.h>
#include <math.h>

#include "autograd/ops_internal.h"

static inline bool key_visible(int i, int j, int Tq, int Tk, bool causal, const int32_t *pad_row) {
    if (causal && j > i + (Tk - Tq)) return false;
    return !(pad_row && pad_row[j]);
}

// C (M, N) = alpha · op(A) · op(B) + beta · C, row-major, packed.
static void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, const float *B, float beta, float *C) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                ta ? M : K, B, tb ? K : N, beta, C, N);
}

// Node ints: [0] B, [1] H, [2] Tq, [3] Tk, [4] D.  f[0] scale.  saved[0] P (B, H, Tq, Tk).
static void attention_backward(vlt_node *n) {
    vlt_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
    int B = n->i[0], H = n->i[1], Tq = n->i[2], Tk = n->i[3], D = n->i[4];
    float scale = n->f[0];
    const float *P = vlt_f32(n->saved[0]), *dO = vlt_f32(n->out->grad);
    const float *qv = vlt_f32(q), *kv = vlt_f32(k), *vv = vlt_f32(v);
    float *dq = q->requires_grad ? vlt_f32(vlt_grad_of(q)) : NULL;
    float *dk = k->requires_grad ? vlt_f32(vlt_grad_of(k)) : NULL;
    float *dv = v->requires_grad ? vlt_f32(vlt_grad_of(v)) : NULL;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(q)) {
        float *dS = vlt_cuda_arena_alloc((size_t)B * H * Tq * Tk * sizeof(float));
        VLT_ASSERT(dS, "attention backward: device step arena out of memory");
        vlt_cuda_attention_bwd(P, dO, qv, kv, vv, dq, dk, dv, dS, B, H, Tq, Tk, D, scale);
        return;
    }
#endif
    float *scratch = vlt_step_scratch((size_t)B * H * Tq * Tk * sizeof(float));
    VLT_ASSERT(scratch, "attention backward: step arena out of memory");
#pragma omp parallel for if ((int64_t)B * H * Tq * Tk * D > VLT_PAR_MIN)
    for (int bh = 0; bh < B * H; bh++) {
        const float *Pb = P + (size_t)bh * Tq * Tk, *dOb = dO + (size_t)bh * Tq * D;
        const float *qb = qv + (size_t)bh * Tq * D, *kb = kv + (size_t)bh * Tk * D, *vb = vv + (size_t)bh * Tk * D;
        float *dS = scratch + (size_t)bh * Tq * Tk;
        if (dv) gemm(true, false, Tk, D, Tq, 1.0f, Pb, dOb, 1.0f, dv + (size_t)bh * Tk * D);  // dV += Pᵀ·dO
        gemm(false, true, Tq, Tk, D, 1.0f, dOb, vb, 0.0f, dS);                               // dP = dO·Vᵀ
        for (int i = 0; i < Tq; i++) {  // dS = P ∘ (dP - Σ_j P dP) · scale
            const float *Pi = Pb + (size_t)i * Tk;
            float *dSi = dS + (size_t)i * Tk;
            float dot = 0;
            for (int j = 0; j < Tk; j++) dot += Pi[j] * dSi[j];
            for (int j = 0; j < Tk; j++) dSi[j] = Pi[j] * (dSi[j] - dot) * scale;
        }
        if (dq) gemm(false, false, Tq, D, Tk, 1.0f, dS, kb, 1.0f, dq + (size_t)bh * Tq * D);  // dQ += dS·K
        if (dk) gemm(true, false, Tk, D, Tq, 1.0f, dS, qb, 1.0f, dk + (size_t)bh * Tk * D);   // dK += dSᵀ·Q
    }
}

static vlt_tensor *attention_record(vlt_tensor *q, vlt_tensor *k, vlt_tensor *v, vlt_tensor *out, vlt_tensor *P, int B,
                                   int H, int Tq, int Tk, int D, float scale) {
    vlt_node *n = vlt_tape_record("attention", attention_backward, out, 3, (vlt_tensor *[]){q, k, v});
    if (n) {
        int iv[5] = {B, H, Tq, Tk, D};
        memcpy(n->i, iv, sizeof iv);
        n->f[0] = scale;
        n->saved[0] = P;
    }
    return out;
}

vlt_tensor *vlt_attention(vlt_tensor *q, vlt_tensor *k, vlt_tensor *v, float scale, bool causal, vlt_tensor *key_pad) {
    const char *op = "attention";
    if (!op_input_ok(op, q, VLT_F32) || !op_input_ok(op, k, VLT_F32) || !op_input_ok(op, v, VLT_F32)) return NULL;
    if (key_pad && !op_input_ok(op, key_pad, VLT_I32)) return NULL;
    if (!op_same_device(op, q, k) || !op_same_device(op, q, v) || !op_same_device(op, q, key_pad)) return NULL;
    char sq[64], sk[64], sv[64], sp[64];
    bool ok = q->ndim == 4 && k->ndim == 4 && v->ndim == 4 && vlt_tensor_same_shape(k, v) &&
              q->shape[0] == k->shape[0] && q->shape[1] == k->shape[1] && q->shape[3] == k->shape[3];
    if (ok && key_pad) ok = key_pad->ndim == 2 && key_pad->shape[0] == k->shape[0] && key_pad->shape[1] == k->shape[2];
    if (ok && causal) ok = q->shape[2] <= k->shape[2];
    if (!ok) {
        vlt_error_set(VLT_ERR_SHAPE, "attention: q %s, k %s, v %s, key_pad %s do not fit (want q (B,H,Tq,D), "
                      "k and v (B,H,Tk,D), key_pad (B,Tk), and Tq <= Tk when causal)",
                      vlt_shape_str(q, sq, sizeof sq), vlt_shape_str(k, sk, sizeof sk),
                      vlt_shape_str(v, sv, sizeof sv), vlt_shape_str(key_pad, sp, sizeof sp));
        return NULL;
    }
    int B = q->shape[0], H = q->shape[1], Tq = q->shape[2], Tk = k->shape[2], D = q->shape[3];
    vlt_tensor *out = op_out_on(q->device, 4, q->shape);
    vlt_tensor *P = op_out_on(q->device, 4, VLT_SHAPE(B, H, Tq, Tk));
    if (!out || !P) return NULL;
    const float *qv = vlt_f32(q), *kv = vlt_f32(k), *vv = vlt_f32(v);
    const int32_t *pad = key_pad ? vlt_i32(key_pad) : NULL;
    float *o = vlt_f32(out), *Pv = vlt_f32(P);
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(q)) {
        vlt_cuda_attention_fwd(qv, kv, vv, pad, Pv, o, B, H, Tq, Tk, D, scale, causal);
        return attention_record(q, k, v, out, P, B, H, Tq, Tk, D, scale);
    }
#endif
#pragma omp parallel for if ((int64_t)B * H * Tq * Tk * D > VLT_PAR_MIN)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H;
        const float *qb = qv + (size_t)bh * Tq * D, *kb = kv + (size_t)bh * Tk * D, *vb = vv + (size_t)bh * Tk * D;
        const int32_t *pad_row = pad ? pad + (size_t)b * Tk : NULL;
        float *Pb = Pv + (size_t)bh * Tq * Tk;
        gemm(false, true, Tq, Tk, D, scale, qb, kb, 0.0f, Pb);  // S = q·kᵀ·scale
        for (int i = 0; i < Tq; i++) {
            float *Pi = Pb + (size_t)i * Tk;
            float mx = -INFINITY;
            for (int j = 0; j < Tk; j++) {
                if (!key_visible(i, j, Tq, Tk, causal, pad_row)) Pi[j] = -INFINITY;
                mx = Pi[j] > mx ? Pi[j] : mx;
            }
            if (mx == -INFINITY) {  // every key masked: zeros out, zero gradient
                memset(Pi, 0, (size_t)Tk * sizeof(float));
                continue;
            }
            float sum = 0;
            for (int j = 0; j < Tk; j++) {
                Pi[j] = expf(Pi[j] - mx);  // exp(-inf) = 0 for masked keys
                sum += Pi[j];
            }
            float inv = 1.0f / sum;
            for (int j = 0; j < Tk; j++) Pi[j] *= inv;
        }
        gemm(false, false, Tq, D, Tk, 1.0f, Pb, vb, 0.0f, o + (size_t)bh * Tq * D);  // out = P·v
    }
    return attention_record(q, k, v, out, P, B, H, Tq, Tk, D, scale);
}

// ---- self-attention on packed qkv ----
// The unfused path (the CPU, and device shapes the fused kernels do not cover): slices of the
// W-wide thirds, heads split by reshape + permute, vlt_attention, heads merged.
static vlt_tensor *split_heads(vlt_tensor *qkv, int off, int B, int T, int W, int H) {
    vlt_tensor *s = vlt_slice(qkv, 2, off, W);
    return vlt_permute(vlt_reshape(s, 4, VLT_SHAPE(B, T, H, W / H)), VLT_SHAPE(0, 2, 1, 3));
}

#ifdef VLT_HAVE_CUDA
// Node ints: [0] B, [1] H, [2] T, [3] D, [4] causal, [5] tensor-core path (bf16 qkv and out).  f[0] scale.  saved[0] lse (B, H, T),
// saved[1] key_pad or NULL.
static void attention_qkv_backward(vlt_node *n) {
    vlt_tensor *qkv = n->in[0];
    if (!qkv->requires_grad) return;
    int B = n->i[0], H = n->i[1], T = n->i[2], D = n->i[3];
    if (n->i[5]) {  // the tensor-core forward ran (bf16 qkv and out)
        bool fresh;
        float *g = vlt_f32(vlt_grad_for_write(qkv, &fresh));
        vlt_cuda_flash_bwd_tc(qkv->data, n->saved[1] ? vlt_i32(n->saved[1]) : NULL, n->out->data,
                              vlt_f32(n->out->grad), vlt_f32(n->saved[0]), g, B, H, T, D, n->f[0], n->i[4] != 0, fresh,
                              true);
        return;
    }
    float *delta = vlt_cuda_arena_alloc((size_t)B * H * T * sizeof(float));
    VLT_ASSERT(delta, "attention_qkv backward: device step arena out of memory");
    vlt_cuda_flash_bwd(vlt_f32(qkv), n->saved[1] ? vlt_i32(n->saved[1]) : NULL, vlt_f32(n->out), vlt_f32(n->out->grad),
                       vlt_f32(n->saved[0]), delta, vlt_f32(vlt_grad_of(qkv)), B, H, T, D, n->f[0], n->i[4] != 0);
}
#endif

vlt_tensor *vlt_attention_qkv(vlt_tensor *qkv, int heads, bool causal, vlt_tensor *key_pad) {
    const char *op = "attention_qkv";
    if (!qkv) return NULL;
    if (!op_input_ok(op, qkv, qkv->dtype == VLT_BF16 && ON_CUDA(qkv) ? VLT_BF16 : VLT_F32)) return NULL;
    if (key_pad && !op_input_ok(op, key_pad, VLT_I32)) return NULL;
    if (!op_same_device(op, qkv, key_pad)) return NULL;
    char s1[64], s2[64];
    if (qkv->ndim != 3 || heads < 1 || qkv->shape[2] % (3 * heads) ||
        (key_pad && (key_pad->ndim != 2 || key_pad->shape[0] != qkv->shape[0] || key_pad->shape[1] != qkv->shape[1]))) {
        vlt_error_set(VLT_ERR_SHAPE, "attention_qkv: qkv %s with %d heads, key_pad %s do not fit (want qkv (B, T, 3·W) "
                      "with W a multiple of the heads, key_pad (B, T))",
                      vlt_shape_str(qkv, s1, sizeof s1), heads, vlt_shape_str(key_pad, s2, sizeof s2));
        return NULL;
    }
    int B = qkv->shape[0], T = qkv->shape[1], W = qkv->shape[2] / 3, D = W / heads;
    float scale = 1.0f / sqrtf((float)D);
#ifdef VLT_HAVE_CUDA
    // Mixed precision with the tensor-core kernels: qkv and the output are bf16 (an f32 qkv is
    // rounded first); every other path works on f32 (a bf16 qkv is widened first).
    bool tc = ON_CUDA(qkv) && vlt_cuda_matmul_precision() == 2 && vlt_cuda_flash_tc_supported(T, D);
    if (ON_CUDA(qkv) && qkv->dtype != (tc ? VLT_BF16 : VLT_F32)) {
        qkv = vlt_cast(qkv, tc ? VLT_BF16 : VLT_F32);
        if (!qkv) return NULL;
    }
    if (ON_CUDA(qkv) && (tc || vlt_cuda_flash_supported(T, D))) {
        vlt_tensor *out = vlt_tensor_new_activation(tc ? VLT_BF16 : VLT_F32, qkv->device, 3, VLT_SHAPE(B, T, W));
        vlt_tensor *lse = op_out_on(qkv->device, 3, VLT_SHAPE(B, heads, T));
        if (!out || !lse) return NULL;
        if (tc)
            vlt_cuda_flash_fwd_tc(qkv->data, key_pad ? vlt_i32(key_pad) : NULL, out->data, vlt_f32(lse), B, heads, T, D,
                                  scale, causal, true);
        else
            vlt_cuda_flash_fwd(vlt_f32(qkv), key_pad ? vlt_i32(key_pad) : NULL, vlt_f32(out), vlt_f32(lse), B, heads,
                               T, D, scale, causal);
        vlt_node *n = vlt_tape_record(op, attention_qkv_backward, out, 1, &qkv);
        if (n) {
            int iv[6] = {B, heads, T, D, causal, tc};
            memcpy(n->i, iv, sizeof iv);
            n->f[0] = scale;
            n->saved[0] = lse;
            n->saved[1] = key_pad;
        }
        return out;
    }
#endif
    vlt_tensor *q = split_heads(qkv, 0, B, T, W, heads);
    vlt_tensor *k = split_heads(qkv, W, B, T, W, heads);
    vlt_tensor *v = split_heads(qkv, 2 * W, B, T, W, heads);
    vlt_tensor *o = vlt_attention(q, k, v, scale, causal, key_pad);  // (B, H, T, D)
    return vlt_reshape(vlt_permute(o, VLT_SHAPE(0, 2, 1, 3)), 3, VLT_SHAPE(B, T, W));
}
