// ops_attention.c — scaled dot-product attention over heads with causal and key-padding masks.
//
// CPU: per (batch, head), S = q·kᵀ·scale (Tq, Tk), masked, P = softmax(S) saved for backward,
// out = P·v. The (b, h) pairs run in parallel; the products are small (T ≤ a few hundred,
// D = 64), so plain loops over contiguous rows beat a call into BLAS per pair.
#include <math.h>

#include "autograd/ops_internal.h"

static inline bool key_visible(int i, int j, int Tq, int Tk, bool causal, const int32_t *pad_row) {
    if (causal && j > i + (Tk - Tq)) return false;
    return !(pad_row && pad_row[j]);
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
    float *scratch = vlt_step_scratch((size_t)B * H * Tk * sizeof(float));
    VLT_ASSERT(scratch, "attention backward: step arena out of memory");
#pragma omp parallel for if ((int64_t)B * H * Tq * Tk * D > VLT_PAR_MIN)
    for (int bh = 0; bh < B * H; bh++) {
        const float *Pb = P + (size_t)bh * Tq * Tk, *dOb = dO + (size_t)bh * Tq * D;
        const float *qb = qv + (size_t)bh * Tq * D, *kb = kv + (size_t)bh * Tk * D, *vb = vv + (size_t)bh * Tk * D;
        float *dS = scratch + (size_t)bh * Tk;  // one row of dS at a time
        for (int i = 0; i < Tq; i++) {
            const float *Pi = Pb + (size_t)i * Tk, *dOi = dOb + (size_t)i * D;
            // dP_ij = dO_i · v_j ;  dS_ij = P_ij (dP_ij - Σ_j P_ij dP_ij)
            float dot = 0;
            for (int j = 0; j < Tk; j++) {
                float dp = 0;
                if (Pi[j] != 0.0f) {
                    const float *vj = vb + (size_t)j * D;
                    for (int d = 0; d < D; d++) dp += dOi[d] * vj[d];
                }
                dS[j] = dp;
                dot += Pi[j] * dp;
            }
            for (int j = 0; j < Tk; j++) dS[j] = Pi[j] * (dS[j] - dot) * scale;
            for (int j = 0; j < Tk; j++) {
                if (Pi[j] == 0.0f) continue;
                const float *kj = kb + (size_t)j * D;
                if (dq) {
                    float *dqi = dq + (size_t)bh * Tq * D + (size_t)i * D;
                    for (int d = 0; d < D; d++) dqi[d] += dS[j] * kj[d];
                }
                if (dk) {
                    float *dkj = dk + (size_t)bh * Tk * D + (size_t)j * D;
                    const float *qi = qb + (size_t)i * D;
                    for (int d = 0; d < D; d++) dkj[d] += dS[j] * qi[d];
                }
                if (dv) {
                    float *dvj = dv + (size_t)bh * Tk * D + (size_t)j * D;
                    for (int d = 0; d < D; d++) dvj[d] += Pi[j] * dOi[d];
                }
            }
        }
    }
}

vlt_tensor *vlt_attention(vlt_tensor *q, vlt_tensor *k, vlt_tensor *v, float scale, bool causal, vlt_tensor *key_pad) {
    const char *op = "attention";
    if (!op_input_ok(op, q, VLT_F32) || !op_input_ok(op, k, VLT_F32) || !op_input_ok(op, v, VLT_F32)) return NULL;
    if (key_pad && !op_input_ok(op, key_pad, VLT_I32)) return NULL;
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
    vlt_tensor *out = op_out(4, q->shape);
    vlt_tensor *P = op_out(4, VLT_SHAPE(B, H, Tq, Tk));
    if (!out || !P) return NULL;
    const float *qv = vlt_f32(q), *kv = vlt_f32(k), *vv = vlt_f32(v);
    const int32_t *pad = key_pad ? vlt_i32(key_pad) : NULL;
    float *o = vlt_f32(out), *Pv = vlt_f32(P);
#pragma omp parallel for if ((int64_t)B * H * Tq * Tk * D > VLT_PAR_MIN)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H;
        const float *qb = qv + (size_t)bh * Tq * D, *kb = kv + (size_t)bh * Tk * D, *vb = vv + (size_t)bh * Tk * D;
        const int32_t *pad_row = pad ? pad + (size_t)b * Tk : NULL;
        for (int i = 0; i < Tq; i++) {
            float *Pi = Pv + ((size_t)bh * Tq + i) * Tk;
            const float *qi = qb + (size_t)i * D;
            float mx = -INFINITY;
            for (int j = 0; j < Tk; j++) {
                if (!key_visible(i, j, Tq, Tk, causal, pad_row)) { Pi[j] = -INFINITY; continue; }
                const float *kj = kb + (size_t)j * D;
                float s = 0;
                for (int d = 0; d < D; d++) s += qi[d] * kj[d];
                Pi[j] = s * scale;
                mx = Pi[j] > mx ? Pi[j] : mx;
            }
            float *oi = o + ((size_t)bh * Tq + i) * D;
            memset(oi, 0, (size_t)D * sizeof(float));
            if (mx == -INFINITY) {  // every key masked: zeros out, zero gradient
                memset(Pi, 0, (size_t)Tk * sizeof(float));
                continue;
            }
            float sum = 0;
            for (int j = 0; j < Tk; j++) {
                Pi[j] = Pi[j] == -INFINITY ? 0.0f : expf(Pi[j] - mx);
                sum += Pi[j];
            }
            float inv = 1.0f / sum;
            for (int j = 0; j < Tk; j++) {
                Pi[j] *= inv;
                if (Pi[j] == 0.0f) continue;
                const float *vj = vb + (size_t)j * D;
                for (int d = 0; d < D; d++) oi[d] += Pi[j] * vj[d];
            }
        }
    }
    vlt_node *n = vlt_tape_record(op, attention_backward, out, 3, (vlt_tensor *[]){q, k, v});
    if (n) {
        int iv[5] = {B, H, Tq, Tk, D};
        memcpy(n->i, iv, sizeof iv);
        n->f[0] = scale;
        n->saved[0] = P;
    }
    return out;
}
