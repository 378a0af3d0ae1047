// text_encoder.c — TextTransformer (see text_encoder.h).
#include "layers/text_encoder.h"

#include "autograd/device.h"

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
    t->embed_cls = cfg->embed_cls;
    t->pad_id = cfg->pad_id;
    if (cfg->embed_cls) {
        t->cls_emb = new_param(table, prefix, "cls_emb", 1, VLT_SHAPE(W));
        if (!t->cls_emb) return vlt_error_code();
        vlt_init_normal(t->cls_emb, 0.01f, seed);
    }
    t->pos_embedding = new_param(table, prefix, "positional_embedding", 2,
                                 VLT_SHAPE(cfg->context_length + (cfg->embed_cls ? 1 : 0), W));
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
    if (t->embed_cls) {
        vlt_error_set(VLT_ERR_ARG, "text encoder: a tower with embed_cls gives its tokens through "
                                   "vlt_text_encoder_encode");
        return NULL;
    }
    int T = ids->shape[1];
    vlt_tensor *x = vlt_embedding(t->token_embedding, ids);                 // (B, T, W)
    x = vlt_add(x, T == t->pos_embedding->shape[0] ? t->pos_embedding : vlt_slice(t->pos_embedding, 0, 0, T));
    x = vlt_transformer_forward(&t->transformer, x, true, NULL);
    return vlt_layernorm(x, t->ln_final_w, t->ln_final_b, 1e-5f);
}

vlt_tensor *vlt_text_encoder_key_pad(const vlt_text_encoder *t, const vlt_tensor *ids, int n_keys) {
    if (!ids) return NULL;
    if (ids->device != VLT_CPU) {
        vlt_error_set(VLT_ERR_ARG, "text encoder: the pad mask is built from host ids ('%s' is on %s)", ids->name,
                      vlt_device_name(ids->device));
        return NULL;
    }
    int B = ids->shape[0], T = ids->shape[1];
    if (n_keys < 1 || n_keys - 1 > T) {
        vlt_error_set(VLT_ERR_ARG, "text encoder: pad mask for %d keys needs %d ids, have %d", n_keys, n_keys - 1, T);
        return NULL;
    }
    vlt_tensor *kp = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, n_keys));
    if (!kp) return NULL;
    for (int b = 0; b < B; b++) {
        int32_t *row = vlt_i32(kp) + (size_t)b * n_keys;
        row[0] = 0;
        for (int j = 1; j < n_keys; j++) row[j] = vlt_i32(ids)[(size_t)b * T + j - 1] == t->pad_id;
    }
    return kp;
}

// embed_cls: [tokens; cls] + pos, causal + legacy pad mask -> (B, T + 1, W) before ln_final.
// The mask comes from host ids (ids_h) and goes to the tower's device; the cls row is broadcast
// through vlt_full on that device.
static vlt_tensor *cls_trunk(vlt_text_encoder *t, vlt_tensor *ids, const vlt_tensor *ids_h, bool device_form) {
    int B = ids->shape[0], T = ids->shape[1], W = t->width;
    const vlt_device dev = t->token_embedding->device;
    vlt_tensor *kp = vlt_text_encoder_key_pad(t, ids_h, T + 1);
    if (kp && device_form) kp = vlt_to_device(kp, dev);
    if (!kp) return NULL;
    vlt_tensor *x = vlt_embedding(t->token_embedding, ids);                 // (B, T, W)
    const vlt_device was = vlt_default_device();
    if (was != dev && vlt_set_default_device(dev) != VLT_OK) return NULL;
    vlt_tensor *cls = vlt_add(vlt_full(3, VLT_SHAPE(B, 1, W), 0.0f), t->cls_emb);
    if (was != dev) vlt_set_default_device(was);
    x = vlt_concat((vlt_tensor *[]){x, cls}, 2, 1);                         // (B, T + 1, W)
    x = vlt_add(x, T + 1 == t->pos_embedding->shape[0] ? t->pos_embedding : vlt_slice(t->pos_embedding, 0, 0, T + 1));
    return vlt_transformer_forward(&t->transformer, x, true, kp);
}

vlt_tensor *vlt_text_encoder_encode(vlt_text_encoder *t, vlt_tensor *ids, vlt_tensor **tokens) {
    return vlt_text_encoder_encode_ex(t, ids, NULL, false, tokens);
}

vlt_tensor *vlt_text_encoder_encode_ex(vlt_text_encoder *t, vlt_tensor *ids, const vlt_tensor *ids_host,
                                       bool device_form, vlt_tensor **tokens) {
    if (tokens) *tokens = NULL;
    if (!t->embed_cls) {
        vlt_tensor *x = vlt_text_encoder_tokens(t, ids);
        if (tokens) *tokens = x;
        vlt_tensor *pooled = vlt_gather_rows(x, vlt_argmax_last(ids));      // EOT has the largest id
        return vlt_matmul(pooled, t->text_projection, false, false);
    }
    if (!ids) return NULL;
    if (ids->dtype != VLT_I32 || ids->ndim != 2 || ids->shape[1] > t->context_length) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "text encoder: ids %s must be i32 (B, T) with T <= context_length %d",
                      vlt_shape_str(ids, s, sizeof s), t->context_length);
        return NULL;
    }
    int B = ids->shape[0], T = ids->shape[1];
    // host ids for the pad mask: the caller's, the ids themselves on the host, else one copy back
    // (B x T i32); the device form always takes a copy, as it would of device ids
    device_form |= t->token_embedding->device != VLT_CPU || ids->device != VLT_CPU;
    const vlt_tensor *ids_h = ids_host;
    if (!ids_h && !device_form) ids_h = ids;
    if (!ids_h) {
        vlt_tensor *h = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, ids->shape);
        if (!h || vlt_tensor_copy(h, ids) != VLT_OK) return NULL;
        ids_h = h;
    }
    if (ids_h->ndim != 2 || ids_h->shape[0] != B || ids_h->shape[1] != T) {
        vlt_error_set(VLT_ERR_SHAPE, "text encoder: host ids do not have the ids' shape");
        return NULL;
    }
    vlt_tensor *x = cls_trunk(t, ids, ids_h, device_form);
    if (tokens) *tokens = vlt_slice(x, 1, 0, T);
    vlt_tensor *pooled = vlt_reshape(vlt_slice(x, 1, T, 1), 2, VLT_SHAPE(B, t->width));
    pooled = vlt_layernorm(pooled, t->ln_final_w, t->ln_final_b, 1e-5f);
    return vlt_matmul(pooled, t->text_projection, false, false);
}

vlt_tensor *vlt_text_encoder_forward(vlt_text_encoder *t, vlt_tensor *ids) {
    return vlt_text_encoder_encode(t, ids, NULL);
}
