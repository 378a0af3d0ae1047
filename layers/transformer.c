// transformer.c — pre-LN residual attention block (see transformer.h).
#include "layers/transformer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd/rng.h"

static vlt_tensor *param(vlt_params *table, const char *prefix, const char *name, int ndim, const int *shape) {
    char full[96];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    return vlt_params_new(table, full, ndim, shape);
}

static _Thread_local bool skip_init;
void vlt_init_set_skip(bool skip) { skip_init = skip; }
bool vlt_init_skipped(void) { return skip_init; }

void vlt_init_normal(vlt_tensor *t, float std, uint64_t seed) {
    if (skip_init) return;
    vlt_rng_fill_normal(vlt_f32(t), (size_t)t->numel, 0.0f, std, seed, vlt_rng_hash_str(t->name), 0);
}

void vlt_init_uniform(vlt_tensor *t, float bound, uint64_t seed) {
    if (skip_init) return;
    vlt_rng_fill_uniform(vlt_f32(t), (size_t)t->numel, -bound, bound, seed, vlt_rng_hash_str(t->name), 0);
}

void vlt_init_const(vlt_tensor *t, float v) {
    for (int64_t i = 0; i < t->numel; i++) vlt_f32(t)[i] = v;
}

vlt_status vlt_resblock_init(vlt_resblock *b, vlt_params *table, const char *prefix, int width, int heads,
                             int mlp_width, vlt_activation act, int n_layers, vlt_init_style init, uint64_t seed) {
    memset(b, 0, sizeof *b);
    if (width < 1 || heads < 1 || width % heads || mlp_width < 1 || n_layers < 1)
        return vlt_error_set(VLT_ERR_ARG, "resblock '%s': width %d must be a positive multiple of heads %d, mlp %d > 0",
                             prefix, width, heads, mlp_width);
    b->width = width;
    b->heads = heads;
    b->mlp_width = mlp_width;
    b->act = act;
    int W = width, M = mlp_width;
    b->ln_1_w = param(table, prefix, "ln_1.weight", 1, VLT_SHAPE(W));
    b->ln_1_b = param(table, prefix, "ln_1.bias", 1, VLT_SHAPE(W));
    b->in_proj_w = param(table, prefix, "attn.in_proj_weight", 2, VLT_SHAPE(3 * W, W));
    b->in_proj_b = param(table, prefix, "attn.in_proj_bias", 1, VLT_SHAPE(3 * W));
    b->out_proj_w = param(table, prefix, "attn.out_proj.weight", 2, VLT_SHAPE(W, W));
    b->out_proj_b = param(table, prefix, "attn.out_proj.bias", 1, VLT_SHAPE(W));
    b->ln_2_w = param(table, prefix, "ln_2.weight", 1, VLT_SHAPE(W));
    b->ln_2_b = param(table, prefix, "ln_2.bias", 1, VLT_SHAPE(W));
    b->c_fc_w = param(table, prefix, "mlp.c_fc.weight", 2, VLT_SHAPE(M, W));
    b->c_fc_b = param(table, prefix, "mlp.c_fc.bias", 1, VLT_SHAPE(M));
    b->c_proj_w = param(table, prefix, "mlp.c_proj.weight", 2, VLT_SHAPE(W, M));
    b->c_proj_b = param(table, prefix, "mlp.c_proj.bias", 1, VLT_SHAPE(W));
    vlt_tensor *all[VLT_RESBLOCK_NPARAMS];
    vlt_resblock_params(b, all);
    for (int i = 0; i < VLT_RESBLOCK_NPARAMS; i++)
        if (!all[i]) return vlt_error_code();
    vlt_init_const(b->ln_1_w, 1.0f);
    vlt_init_const(b->ln_2_w, 1.0f);
    if (init == VLT_INIT_SCALED_NORMAL) {
        float proj_std = 1.0f / sqrtf((float)W) / sqrtf(2.0f * n_layers);
        vlt_init_normal(b->in_proj_w, 1.0f / sqrtf((float)W), seed);
        vlt_init_normal(b->out_proj_w, proj_std, seed);
        vlt_init_normal(b->c_fc_w, 1.0f / sqrtf(2.0f * W), seed);
        vlt_init_normal(b->c_proj_w, proj_std, seed);
    } else {
        vlt_init_uniform(b->in_proj_w, sqrtf(6.0f / (float)(W + 3 * W)), seed);  // xavier_uniform on (3W, W)
        vlt_init_uniform(b->out_proj_w, 1.0f / sqrtf((float)W), seed);
        vlt_init_uniform(b->c_fc_w, 1.0f / sqrtf((float)W), seed);
        vlt_init_uniform(b->c_proj_w, 1.0f / sqrtf((float)M), seed);
    }
    vlt_init_uniform(b->c_fc_b, 1.0f / sqrtf((float)W), seed);
    vlt_init_uniform(b->c_proj_b, 1.0f / sqrtf((float)M), seed);
    return VLT_OK;
}

void vlt_resblock_params(vlt_resblock *b, vlt_tensor **out) {
    vlt_tensor *p[VLT_RESBLOCK_NPARAMS] = {b->ln_1_w, b->ln_1_b, b->in_proj_w, b->in_proj_b, b->out_proj_w, b->out_proj_b,
                                           b->ln_2_w, b->ln_2_b, b->c_fc_w, b->c_fc_b, b->c_proj_w, b->c_proj_b};
    memcpy(out, p, sizeof p);
}

vlt_status vlt_transformer_init(vlt_transformer *t, vlt_params *table, const char *prefix, int width, int layers,
                                int heads, int mlp_width, vlt_activation act, vlt_init_style init, uint64_t seed) {
    if (layers < 1 || layers > VLT_MAX_LAYERS)
        return vlt_error_set(VLT_ERR_ARG, "transformer '%s': layers %d is outside 1..%d", prefix, layers, VLT_MAX_LAYERS);
    t->width = width;
    t->layers = layers;
    t->heads = heads;
    for (int l = 0; l < layers; l++) {
        char name[96];
        snprintf(name, sizeof name, "%s.resblocks.%d", prefix, l);
        VLT_TRY(vlt_resblock_init(&t->blocks[l], table, name, width, heads, mlp_width, act, layers, init, seed));
    }
    return VLT_OK;
}

vlt_tensor *vlt_transformer_forward(vlt_transformer *t, vlt_tensor *x, bool causal, vlt_tensor *key_pad) {
    for (int l = 0; l < t->layers; l++) x = vlt_resblock_forward(&t->blocks[l], x, causal, key_pad);
    return x;
}

vlt_tensor *vlt_mha_forward(vlt_tensor *x, vlt_tensor *in_w, vlt_tensor *in_b, vlt_tensor *out_w, vlt_tensor *out_b,
                            int heads, bool causal, vlt_tensor *key_pad, vlt_tensor *residual) {
    if (!x) return NULL;
    if (x->ndim != 3) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "mha: x %s must be (B, T, W)", vlt_shape_str(x, s, sizeof s));
        return NULL;
    }
    vlt_tensor *qkv = vlt_linear_operand(x, in_w, in_b);              // (B, T, 3W), bf16 in mixed precision
    vlt_tensor *o = vlt_attention_qkv(qkv, heads, causal, key_pad);  // (B, T, W), heads merged
    return residual ? vlt_linear_residual(o, out_w, out_b, residual) : vlt_linear(o, out_w, out_b);
}

vlt_tensor *vlt_resblock_forward(vlt_resblock *b, vlt_tensor *x, bool causal, vlt_tensor *key_pad) {
    return vlt_resblock_forward_probe(b, x, causal, key_pad, NULL);
}

vlt_tensor *vlt_resblock_forward_probe(vlt_resblock *b, vlt_tensor *x, bool causal, vlt_tensor *key_pad,
                                       vlt_tensor **attn_in) {
    // x + attn(ln_1(x)), then x + mlp(ln_2(x)); each residual add is folded into its projection
    // (vlt_linear_residual: one cuBLASLt call on the GPU, add + linear elsewhere).
    // On the GPU in mixed precision the layernorm outputs, qkv, the attention output and the MLP
    // activation are bf16 (only products and attention read them: vlt_layernorm_operand,
    // vlt_linear_operand, vlt_linear_act); the residual stream and every gradient stay fp32.
    vlt_tensor *h = attn_in ? vlt_layernorm(x, b->ln_1_w, b->ln_1_b, 1e-5f)  // f32: its gradient is read
                            : vlt_layernorm_operand(x, b->ln_1_w, b->ln_1_b, 1e-5f);
    if (attn_in) *attn_in = h;
    x = vlt_mha_forward(h, b->in_proj_w, b->in_proj_b, b->out_proj_w, b->out_proj_b, b->heads, causal, key_pad, x);
    h = vlt_layernorm_operand(x, b->ln_2_w, b->ln_2_b, 1e-5f);
    h = vlt_linear_act(h, b->c_fc_w, b->c_fc_b, b->act == VLT_ACT_QUICK_GELU ? VLT_ACT_FN_QUICK_GELU : VLT_ACT_FN_GELU);
    return vlt_linear_residual(h, b->c_proj_w, b->c_proj_b, x);
}
