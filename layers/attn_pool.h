// attn_pool.h — cross-attention with open_clip's (nn.MultiheadAttention) parameters, and the
// attentional pooler CoCa's vision tower ends with (open_clip's AttentionalPooler).
//
// Cross-attention: queries from x (B, Tq, E), keys and values from ctx (B, Tk, C):
//   q = x·Wqᵀ + bq, k = ctx·Wkᵀ + bk, v = ctx·Wvᵀ + bv   (heads split from E)
//   out = softmax(q·kᵀ/√Dh)·v · out_projᵀ + out_bias      -> (B, Tq, E)
// nn.MultiheadAttention stores Wq, Wk, Wv packed as `in_proj_weight` (3E, E) when C == E, and as
// `q_proj_weight` (E, E), `k_proj_weight` (E, C), `v_proj_weight` (E, C) otherwise; the bias is
// always `in_proj_bias` (3E). The packed form is split with vlt_slice along dim 0.
//
// AttentionalPooler(d_model E, context_dim C, heads, n_queries Q), parameters under <prefix>:
//   query (Q, E), ln_q (E), ln_k (C), attn.{in_proj_weight | q/k/v_proj_weight},
//   attn.in_proj_bias (3E), attn.out_proj.weight (E, E), attn.out_proj.bias (E)
//   forward: x (B, T, C) -> attn(ln_q(query) expanded to (B, Q, E), ln_k(x), ln_k(x)) (B, Q, E)
#ifndef VLT_ATTN_POOL_H
#define VLT_ATTN_POOL_H

#include "layers/transformer.h"

// The projections of one nn.MultiheadAttention. wq/wk/wv point into in_proj_w when packed.
typedef struct {
    int dim, kv_dim, heads;
    vlt_tensor *in_proj_w;            // (3E, E) when packed, else NULL
    vlt_tensor *q_w, *k_w, *v_w;      // (E, E), (E, C), (E, C) when separate, else NULL
    vlt_tensor *in_proj_b;            // (3E)
    vlt_tensor *out_w, *out_b;        // (E, E), (E)
} vlt_mha_weights;

// Creates the attention's parameters under "<prefix>." ("...attn"); init as PyTorch's
// nn.MultiheadAttention: Xavier-uniform projections, zero biases, out_proj U(±E^-1/2).
vlt_status vlt_mha_weights_init(vlt_mha_weights *a, vlt_params *table, const char *prefix, int dim, int kv_dim,
                                int heads, uint64_t seed);
// x (B, Tq, E), ctx (B, Tk, C) -> (B, Tq, E). No mask.
vlt_tensor *vlt_cross_mha_forward(const vlt_mha_weights *a, vlt_tensor *x, vlt_tensor *ctx);
// The keys and values of ctx, heads split: (B, H, Tk, Dh) each (computed once for a KV cache).
vlt_status vlt_cross_mha_kv(const vlt_mha_weights *a, vlt_tensor *ctx, vlt_tensor **k, vlt_tensor **v);
// Attention of x (B, Tq, E) against precomputed k, v (B, H, Tk, Dh) -> (B, Tq, E).
vlt_tensor *vlt_cross_mha_with_kv(const vlt_mha_weights *a, vlt_tensor *x, vlt_tensor *k, vlt_tensor *v);

typedef struct {
    int dim, ctx_dim, n_queries;
    vlt_tensor *query;                // (Q, E)
    vlt_tensor *ln_q_w, *ln_q_b;      // (E)
    vlt_tensor *ln_k_w, *ln_k_b;      // (C)
    vlt_mha_weights attn;
} vlt_attn_pool;

// prefix: e.g. "visual.attn_pool". query ~ N(0, 1) as open_clip's torch.randn.
vlt_status vlt_attn_pool_init(vlt_attn_pool *p, vlt_params *table, const char *prefix, int dim, int ctx_dim,
                              int heads, int n_queries, uint64_t seed);
// x (B, T, C) -> (B, Q, E)
vlt_tensor *vlt_attn_pool_forward(const vlt_attn_pool *p, vlt_tensor *x);

#endif
