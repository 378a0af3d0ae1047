// attn_pool.c — cross-attention and the attentional pooler (see attn_pool.h).
#include "layers/attn_pool.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static vlt_tensor *param(vlt_params *table, const char *prefix, const char *name, int ndim, const int *shape) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    return vlt_params_new(table, full, ndim, shape);
}

vlt_status vlt_mha_weights_init(vlt_mha_weights *a, vlt_params *table, const char *prefix, int dim, int kv_dim,
                                int heads, uint64_t seed) {
    memset(a, 0, sizeof *a);
    if (dim < 1 || kv_dim < 1 || heads < 1 || dim % heads)
        return vlt_error_set(VLT_ERR_ARG, "attention '%s': width %d must be a positive multiple of heads %d", prefix,
                             dim, heads);
    a->dim = dim;
    a->kv_dim = kv_dim;
    a->heads = heads;
    int E = dim, C = kv_dim;
    if (C == E) {
        a->in_proj_w = param(table, prefix, "in_proj_weight", 2, VLT_SHAPE(3 * E, E));
        if (!a->in_proj_w) return vlt_error_code();
        vlt_init_uniform(a->in_proj_w, sqrtf(6.0f / (float)(4 * E)), seed);
    } else {
        a->q_w = param(table, prefix, "q_proj_weight", 2, VLT_SHAPE(E, E));
        a->k_w = param(table, prefix, "k_proj_weight", 2, VLT_SHAPE(E, C));
        a->v_w = param(table, prefix, "v_proj_weight", 2, VLT_SHAPE(E, C));
        if (!a->q_w || !a->k_w || !a->v_w) return vlt_error_code();
        vlt_init_uniform(a->q_w, sqrtf(6.0f / (float)(2 * E)), seed);
        vlt_init_uniform(a->k_w, sqrtf(6.0f / (float)(E + C)), seed);
        vlt_init_uniform(a->v_w, sqrtf(6.0f / (float)(E + C)), seed);
    }
    a->in_proj_b = param(table, prefix, "in_proj_bias", 1, VLT_SHAPE(3 * E));
    a->out_w = param(table, prefix, "out_proj.weight", 2, VLT_SHAPE(E, E));
    a->out_b = param(table, prefix, "out_proj.bias", 1, VLT_SHAPE(E));
    if (!a->in_proj_b || !a->out_w || !a->out_b) return vlt_error_code();
    vlt_init_uniform(a->out_w, 1.0f / sqrtf((float)E), seed);
    return VLT_OK;
}

// Projection i (0 q, 1 k, 2 v) of x: x·Wᵢᵀ + bᵢ, then (B, T, E) -> (B, H, T, Dh).
static vlt_tensor *project(const vlt_mha_weights *a, int i, vlt_tensor *x) {
    if (!x) return NULL;
    int E = a->dim, H = a->heads;
    vlt_tensor *w = a->in_proj_w ? vlt_slice(a->in_proj_w, 0, i * E, E) : (i == 0 ? a->q_w : i == 1 ? a->k_w : a->v_w);
    vlt_tensor *y = vlt_linear(x, w, vlt_slice(a->in_proj_b, 0, i * E, E));
    if (!y) return NULL;
    int B = y->shape[0], T = y->shape[1];
    return vlt_permute(vlt_reshape(y, 4, VLT_SHAPE(B, T, H, E / H)), VLT_SHAPE(0, 2, 1, 3));
}

static bool check_3d(vlt_tensor *x, int last, const char *what) {
    if (!x) return false;
    if (x->ndim != 3 || x->shape[2] != last) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "cross attention: %s %s must be (B, T, %d)", what, vlt_shape_str(x, s, sizeof s),
                      last);
        return false;
    }
    return true;
}

vlt_status vlt_cross_mha_kv(const vlt_mha_weights *a, vlt_tensor *ctx, vlt_tensor **k, vlt_tensor **v) {
    *k = *v = NULL;
    if (!check_3d(ctx, a->kv_dim, "context")) return vlt_error_code();
    *k = project(a, 1, ctx);
    *v = project(a, 2, ctx);
    return *k && *v ? VLT_OK : vlt_error_code();
}

vlt_tensor *vlt_cross_mha_with_kv(const vlt_mha_weights *a, vlt_tensor *x, vlt_tensor *k, vlt_tensor *v) {
    if (!check_3d(x, a->dim, "queries") || !k || !v) return NULL;
    int B = x->shape[0], Tq = x->shape[1], E = a->dim;
    vlt_tensor *q = project(a, 0, x);
    vlt_tensor *o = vlt_attention(q, k, v, 1.0f / sqrtf((float)(E / a->heads)), false, NULL);  // (B, H, Tq, Dh)
    o = vlt_reshape(vlt_permute(o, VLT_SHAPE(0, 2, 1, 3)), 3, VLT_SHAPE(B, Tq, E));
    return vlt_linear(o, a->out_w, a->out_b);
}

vlt_tensor *vlt_cross_mha_forward(const vlt_mha_weights *a, vlt_tensor *x, vlt_tensor *ctx) {
    vlt_tensor *k, *v;
    if (!x || vlt_cross_mha_kv(a, ctx, &k, &v) != VLT_OK) return NULL;
    return vlt_cross_mha_with_kv(a, x, k, v);
}

vlt_status vlt_attn_pool_init(vlt_attn_pool *p, vlt_params *table, const char *prefix, int dim, int ctx_dim,
                              int heads, int n_queries, uint64_t seed) {
    memset(p, 0, sizeof *p);
    if (n_queries < 1) return vlt_error_set(VLT_ERR_ARG, "attentional pooler '%s': needs at least one query", prefix);
    p->dim = dim;
    p->ctx_dim = ctx_dim;
    p->n_queries = n_queries;
    p->query = param(table, prefix, "query", 2, VLT_SHAPE(n_queries, dim));
    if (!p->query) return vlt_error_code();
    char ap[128];
    snprintf(ap, sizeof ap, "%s.attn", prefix);
    VLT_TRY(vlt_mha_weights_init(&p->attn, table, ap, dim, ctx_dim, heads, seed));
    p->ln_q_w = param(table, prefix, "ln_q.weight", 1, VLT_SHAPE(dim));
    p->ln_q_b = param(table, prefix, "ln_q.bias", 1, VLT_SHAPE(dim));
    p->ln_k_w = param(table, prefix, "ln_k.weight", 1, VLT_SHAPE(ctx_dim));
    p->ln_k_b = param(table, prefix, "ln_k.bias", 1, VLT_SHAPE(ctx_dim));
    if (!p->ln_q_w || !p->ln_q_b || !p->ln_k_w || !p->ln_k_b) return vlt_error_code();
    vlt_init_normal(p->query, 1.0f, seed);
    vlt_init_const(p->ln_q_w, 1.0f);
    vlt_init_const(p->ln_k_w, 1.0f);
    return VLT_OK;
}

vlt_tensor *vlt_attn_pool_forward(const vlt_attn_pool *p, vlt_tensor *x) {
    if (!check_3d(x, p->ctx_dim, "pooler input")) return NULL;
    int B = x->shape[0], Q = p->n_queries, E = p->dim;
    vlt_tensor *k = vlt_layernorm(x, p->ln_k_w, p->ln_k_b, 1e-5f);
    vlt_tensor *q = vlt_layernorm(p->query, p->ln_q_w, p->ln_q_b, 1e-5f);       // (Q, E)
    q = vlt_add(vlt_full(3, VLT_SHAPE(B, Q, E), 0.0f), q);                      // (B, Q, E)
    return vlt_cross_mha_forward(&p->attn, q, k);
}
