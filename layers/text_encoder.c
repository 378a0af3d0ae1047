// text_encoder.c — TextTransformer (see text_encoder.h).
#include "layers/text_encoder.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static vlt_tensor *new_param(vlt_params *t, const char *prefix, const char *name, int ndim, const int *shape) {
    char full[96];
    snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", name);
    return vlt_params_new(t, full, ndim, shape);
}

vlt_status vlt_text_encoder_init(vlt_text_encoder *t, vlt_params *table, const char *prefix, const vlt_text_cfg *cfg,
                                 int embed_dim, vlt_activation act, uint64_t seed) {
    memset(t, 0, sizeof *t);
    int W = cfg->width;
    t->context_length = cfg->context_length;
    t->vocab_size = cfg->vocab_size;
    t->width = W;
    t->embed_dim = embed_dim;
    t->pos_embedding = new_param(table, prefix, "positional_embedding", 2, VLT_SHAPE(cfg->context_length, W));
    t->text_projection = new_param(table, prefix, "text_projection", 2, VLT_SHAPE(W, embed_dim));
    if (!t->pos_embedding || !t->text_projection) return vlt_error_code();
    char tp[96];
    snprintf(tp, sizeof tp, "%s%stransformer", prefix, *prefix ? "." : "");
    VLT_TRY(vlt_transformer_init(&t->transformer, table, tp, W, cfg->layers, cfg->heads, (int)(W * cfg->mlp_ratio), act,
                                 VLT_INIT_SCALED_NORMAL, seed));
    t->token_embedding = new_param(table, prefix, "token_embedding.weight", 2, VLT_SHAPE(cfg->vocab_size, W));
    t->ln_final_w = new_param(table, prefix, "ln_final.weight", 1, VLT_SHAPE(W));
    t->ln_final_b = new_param(table, prefix, "ln_final.bias", 1, VLT_SHAPE(W));
    if (!t->token_embedding || !t->ln_final_w || !t->ln_final_b) return vlt_error_code();
    vlt_init_normal(t->token_embedding, 0.02f, seed);
    vlt_init_normal(t->pos_embedding, 0.01f, seed);
    vlt_init_normal(t->text_projection, 1.0f / sqrtf((float)W), seed);
    vlt_init_const(t->ln_final_w, 1.0f);
    return VLT_OK;
}

vlt_tensor *vlt_text_encoder_tokens(vlt_text_encoder *t, vlt_tensor *ids) {
    if (!ids) return NULL;
    if (ids->dtype != VLT_I32 || ids->ndim != 2 || ids->shape[1] > t->context_length) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "text encoder: ids %s must be i32 (B, T) with T <= context_length %d",
                      vlt_shape_str(ids, s, sizeof s), t->context_length);
        return NULL;
    }
    int T = ids->shape[1];
    vlt_tensor *x = vlt_embedding(t->token_embedding, ids);                 // (B, T, W)
    x = vlt_add(x, T == t->context_length ? t->pos_embedding : vlt_slice(t->pos_embedding, 0, 0, T));
    x = vlt_transformer_forward(&t->transformer, x, true, NULL);
    return vlt_layernorm(x, t->ln_final_w, t->ln_final_b, 1e-5f);
}

vlt_tensor *vlt_text_encoder_forward(vlt_text_encoder *t, vlt_tensor *ids) {
    vlt_tensor *x = vlt_text_encoder_tokens(t, ids);
    vlt_tensor *pooled = vlt_gather_rows(x, vlt_argmax_last(ids));          // EOT has the largest id
    return vlt_matmul(pooled, t->text_projection, false, false);
}
