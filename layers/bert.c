// bert.c — xbert's BERT encoder with fusion layers and the MLM head (see bert.h).
#include "layers/bert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/device.h"
#include "layers/transformer.h"

// Set by vlt_bert_init for the duration of one init: false leaves the weights zero; g_std is the
// config's initializer_range (BertConfig's 0.02 when the config leaves it 0).
static _Thread_local bool g_fill = true;
static _Thread_local float g_std = 0.02f;
static void fill_normal(vlt_tensor *t, uint64_t seed) {
    if (g_fill) vlt_init_normal(t, g_std, seed);
}

static vlt_tensor *param(vlt_params *table, const char *prefix, const char *name, int ndim, const int *shape) {
    char full[256];
    if (snprintf(full, sizeof full, "%s.%s", prefix, name) >= (int)sizeof full) {
        vlt_error_set(VLT_ERR_ARG, "bert: parameter name under '%s' is too long", prefix);
        return NULL;
    }
    return vlt_params_new(table, full, ndim, shape);
}

// A non-trainable persistent tensor sharing `target`'s storage, named `name` (the tied key).
static vlt_tensor *alias_of(vlt_params *table, vlt_tensor *target, const char *prefix, const char *name) {
    if (!target) return NULL;
    vlt_tensor *a = malloc(sizeof *a);
    if (!a) {
        vlt_error_set(VLT_ERR_NOMEM, "bert: out of memory");
        return NULL;
    }
    *a = *target;
    a->grad = NULL;
    a->requires_grad = false;
    a->owns_data = false;
    a->base = target;
    snprintf(a->name, sizeof a->name, "%s.%s", prefix, name);
    if (vlt_params_add(table, a) != VLT_OK) {
        free(a);
        return NULL;
    }
    return a;
}

static vlt_status linear_init(vlt_params *table, const char *prefix, const char *name, int out, int in,
                              vlt_tensor **w, vlt_tensor **b, uint64_t seed) {
    char n[128];
    snprintf(n, sizeof n, "%s.weight", name);
    *w = param(table, prefix, n, 2, VLT_SHAPE(out, in));
    snprintf(n, sizeof n, "%s.bias", name);
    *b = param(table, prefix, n, 1, VLT_SHAPE(out));
    if (!*w || !*b) return vlt_error_code();
    fill_normal(*w, seed);
    return VLT_OK;
}

static vlt_status ln_init(vlt_params *table, const char *prefix, const char *name, int W, vlt_tensor **w,
                          vlt_tensor **b) {
    char n[128];
    snprintf(n, sizeof n, "%s.weight", name);
    *w = param(table, prefix, n, 1, VLT_SHAPE(W));
    snprintf(n, sizeof n, "%s.bias", name);
    *b = param(table, prefix, n, 1, VLT_SHAPE(W));
    if (!*w || !*b) return vlt_error_code();
    vlt_init_const(*w, 1.0f);
    return VLT_OK;
}

static vlt_status attention_init(vlt_bert_attention *a, vlt_params *table, const char *prefix, const char *which,
                                 int W, int kv_in, uint64_t seed) {
    char n[160];
    snprintf(n, sizeof n, "%s.self.query", which);
    VLT_TRY(linear_init(table, prefix, n, W, W, &a->q_w, &a->q_b, seed));
    snprintf(n, sizeof n, "%s.self.key", which);
    VLT_TRY(linear_init(table, prefix, n, W, kv_in, &a->k_w, &a->k_b, seed));
    snprintf(n, sizeof n, "%s.self.value", which);
    VLT_TRY(linear_init(table, prefix, n, W, kv_in, &a->v_w, &a->v_b, seed));
    snprintf(n, sizeof n, "%s.output.dense", which);
    VLT_TRY(linear_init(table, prefix, n, W, W, &a->o_w, &a->o_b, seed));
    snprintf(n, sizeof n, "%s.output.LayerNorm", which);
    return ln_init(table, prefix, n, W, &a->ln_w, &a->ln_b);
}

static vlt_status init_common(vlt_bert *b, vlt_params *table, const char *prefix, const vlt_bert_cfg *cfg,
                              uint64_t seed, bool fill, bool with_head) {
    memset(b, 0, sizeof *b);
    b->cfg = *cfg;
    g_fill = fill;
    g_std = cfg->initializer_range > 0 ? cfg->initializer_range : 0.02f;
    int W = cfg->hidden_size, L = cfg->num_hidden_layers, I = cfg->intermediate_size;
    if (L < 1 || L > VLT_BERT_MAX_LAYERS)
        return vlt_error_set(VLT_ERR_ARG, "bert '%s': num_hidden_layers %d is outside 1..%d", prefix, L,
                             VLT_BERT_MAX_LAYERS);
    if (W % cfg->num_attention_heads || cfg->fusion_layer < 0 || cfg->fusion_layer > L)
        return vlt_error_set(VLT_ERR_ARG, "bert '%s': hidden_size %d / heads %d, fusion_layer %d of %d layers", prefix,
                             W, cfg->num_attention_heads, cfg->fusion_layer, L);
    char bp[128];
    snprintf(bp, sizeof bp, with_head ? "%s.bert" : "%s", prefix);
    b->word_emb = param(table, bp, "embeddings.word_embeddings.weight", 2, VLT_SHAPE(cfg->vocab_size, W));
    b->pos_emb = param(table, bp, "embeddings.position_embeddings.weight", 2,
                       VLT_SHAPE(cfg->max_position_embeddings, W));
    b->type_emb = param(table, bp, "embeddings.token_type_embeddings.weight", 2, VLT_SHAPE(cfg->type_vocab_size, W));
    if (!b->word_emb || !b->pos_emb || !b->type_emb) return vlt_error_code();
    fill_normal(b->word_emb, seed);
    fill_normal(b->pos_emb, seed);
    fill_normal(b->type_emb, seed);
    VLT_TRY(ln_init(table, bp, "embeddings.LayerNorm", W, &b->emb_ln_w, &b->emb_ln_b));
    char pid[160];
    snprintf(pid, sizeof pid, "%s.embeddings.position_ids", bp);
    b->position_ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(1, cfg->max_position_embeddings), pid);
    if (!b->position_ids || vlt_params_add(table, b->position_ids) != VLT_OK) return vlt_error_code();
    for (int i = 0; i < cfg->max_position_embeddings; i++) vlt_i32(b->position_ids)[i] = i;
    for (int l = 0; l < L; l++) {
        vlt_bert_layer *y = &b->layers[l];
        char lp[160];
        snprintf(lp, sizeof lp, "%s.encoder.layer.%d", bp, l);
        VLT_TRY(attention_init(&y->self, table, lp, "attention", W, W, seed));
        y->has_cross = l >= cfg->fusion_layer;
        if (y->has_cross) VLT_TRY(attention_init(&y->cross, table, lp, "crossattention", W, cfg->encoder_width, seed));
        VLT_TRY(linear_init(table, lp, "intermediate.dense", I, W, &y->inter_w, &y->inter_b, seed));
        VLT_TRY(linear_init(table, lp, "output.dense", W, I, &y->out_w, &y->out_b, seed));
        VLT_TRY(ln_init(table, lp, "output.LayerNorm", W, &y->ln_w, &y->ln_b));
    }
    if (!with_head) return VLT_OK;
    char cp[128];
    snprintf(cp, sizeof cp, "%s.cls.predictions", prefix);
    b->mlm_bias = param(table, cp, "bias", 1, VLT_SHAPE(cfg->vocab_size));
    if (!b->mlm_bias) return vlt_error_code();
    VLT_TRY(linear_init(table, cp, "transform.dense", W, W, &b->tr_w, &b->tr_b, seed));
    VLT_TRY(ln_init(table, cp, "transform.LayerNorm", W, &b->tr_ln_w, &b->tr_ln_b));
    b->decoder_w_alias = alias_of(table, b->word_emb, cp, "decoder.weight");
    b->decoder_b_alias = alias_of(table, b->mlm_bias, cp, "decoder.bias");
    return b->decoder_w_alias && b->decoder_b_alias ? VLT_OK : vlt_error_code();
}

vlt_status vlt_bert_init(vlt_bert *b, vlt_params *table, const char *prefix, const vlt_bert_cfg *cfg, uint64_t seed,
                         bool fill) {
    return init_common(b, table, prefix, cfg, seed, fill, true);
}

vlt_status vlt_bert_init_model(vlt_bert *b, vlt_params *table, const char *prefix, const vlt_bert_cfg *cfg,
                               uint64_t seed, bool fill) {
    return init_common(b, table, prefix, cfg, seed, fill, false);
}

int vlt_bert_trainable(vlt_bert *b, vlt_tensor **out, int cap) {
    int n = 0;
#define PUT(t)                       \
    do {                             \
        if (n < cap) out[n] = (t);   \
        n++;                         \
    } while (0)
    PUT(b->word_emb); PUT(b->pos_emb); PUT(b->type_emb); PUT(b->emb_ln_w); PUT(b->emb_ln_b);
    for (int l = 0; l < b->cfg.num_hidden_layers; l++) {
        vlt_bert_layer *y = &b->layers[l];
        vlt_bert_attention *as[2] = {&y->self, y->has_cross ? &y->cross : NULL};
        for (int k = 0; k < 2; k++) {
            vlt_bert_attention *a = as[k];
            if (!a) continue;
            PUT(a->q_w); PUT(a->q_b); PUT(a->k_w); PUT(a->k_b); PUT(a->v_w); PUT(a->v_b);
            PUT(a->o_w); PUT(a->o_b); PUT(a->ln_w); PUT(a->ln_b);
        }
        PUT(y->inter_w); PUT(y->inter_b); PUT(y->out_w); PUT(y->out_b); PUT(y->ln_w); PUT(y->ln_b);
    }
    if (b->mlm_bias) { PUT(b->mlm_bias); PUT(b->tr_w); PUT(b->tr_b); PUT(b->tr_ln_w); PUT(b->tr_ln_b); }
#undef PUT
    return n < cap ? n : cap;
}

vlt_tensor *vlt_bert_key_pad(vlt_tensor *atts) {
    if (!atts) return NULL;
    if (atts->dtype != VLT_I32 || atts->ndim != 2 || atts->device != VLT_CPU) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "bert: attention mask %s must be i32 (B, T) on the host",
                      vlt_shape_str(atts, s, sizeof s));
        return NULL;
    }
    vlt_tensor *kp = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, atts->shape);
    if (!kp) return NULL;
    for (int64_t i = 0; i < atts->numel; i++) vlt_i32(kp)[i] = vlt_i32(atts)[i] == 0;
    return kp;
}

static bool g_device_path;
void vlt_bert_set_device_path(bool on) { g_device_path = on; }

// token type 0 everywhere (ALBEF passes no token_type_ids), then positions 0..T-1
static vlt_tensor *embed_rest(vlt_bert *b, vlt_tensor *x, int T, int W) {
    x = vlt_add(x, vlt_reshape(vlt_slice(b->type_emb, 0, 0, 1), 1, VLT_SHAPE(W)));
    x = vlt_add(x, vlt_slice(b->pos_emb, 0, 0, T));
    return vlt_layernorm(x, b->emb_ln_w, b->emb_ln_b, b->cfg.layer_norm_eps);
}

// The device form of vlt_bert_embed's pad handling (x·keep + fix, the same values): the ids are
// read back to find the pads (one small synchronising copy), a (B·T) 0/1 column of pads goes to
// the device, and keep / fix are built there from it (broadcast against ones, then transposed:
// ops broadcast over trailing dims only) and from the pad row of the table, without gradient.
static vlt_tensor *embed_pad_device(vlt_bert *b, vlt_tensor *x, vlt_tensor *ids) {
    int B = ids->shape[0], T = ids->shape[1], W = b->cfg.hidden_size, pad = b->cfg.pad_token_id;
    vlt_device dev = b->word_emb->device;
    vlt_tensor *ids_h = ids;
    if (ids->device != VLT_CPU) {
        ids_h = vlt_tensor_new_activation(VLT_I32, VLT_CPU, ids->ndim, ids->shape);
        if (!ids_h || vlt_tensor_copy(ids_h, ids) != VLT_OK) return NULL;
    }
    vlt_tensor *is_pad = vlt_tensor_new_activation(VLT_F32, VLT_CPU, 1, VLT_SHAPE(B * T));
    if (!is_pad) return NULL;
    bool any_pad = false;
    for (int64_t i = 0; i < (int64_t)B * T; i++) {
        vlt_f32(is_pad)[i] = vlt_i32(ids_h)[i] == pad ? 1.0f : 0.0f;
        any_pad |= vlt_i32(ids_h)[i] == pad;
    }
    if (!any_pad) return x;
    vlt_device was = vlt_default_device();
    if (vlt_set_default_device(dev) != VLT_OK) return NULL;
    vlt_no_grad_enter();
    vlt_tensor *ones = vlt_full(2, VLT_SHAPE(W, B * T), 1.0f);
    vlt_tensor *padm = vlt_contiguous(vlt_transpose(vlt_mul(ones, vlt_to_device(is_pad, dev)), 0, 1));   // (B·T, W)
    vlt_tensor *keep = vlt_reshape(vlt_sub(vlt_full(2, VLT_SHAPE(B * T, W), 1.0f), padm), 3, VLT_SHAPE(B, T, W));
    vlt_tensor *row = vlt_reshape(vlt_slice(b->word_emb, 0, pad, 1), 1, VLT_SHAPE(W));
    vlt_tensor *fix = vlt_reshape(vlt_mul(padm, row), 3, VLT_SHAPE(B, T, W));
    vlt_no_grad_exit();
    vlt_set_default_device(was);
    return vlt_add(vlt_mul(x, keep), fix);
}

vlt_tensor *vlt_bert_embed(vlt_bert *b, vlt_tensor *ids) {
    if (!ids) return NULL;
    if (ids->dtype != VLT_I32 || ids->ndim != 2 || ids->shape[1] > b->cfg.max_position_embeddings) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "bert: ids %s must be i32 (B, T) with T <= max_position_embeddings %d",
                      vlt_shape_str(ids, s, sizeof s), b->cfg.max_position_embeddings);
        return NULL;
    }
    int B = ids->shape[0], T = ids->shape[1], W = b->cfg.hidden_size, pad = b->cfg.pad_token_id;
    vlt_tensor *x = vlt_embedding(b->word_emb, ids);                                   // (B, T, W)
    // nn.Embedding(padding_idx = pad): the pad row gets no gradient from the lookup (the tied
    // decoder still trains it). Pad positions take a constant copy of the row: x·keep + (1-keep)·row.
    bool grad = x && vlt_grad_enabled() && b->word_emb->requires_grad;
    if (grad && (b->word_emb->device != VLT_CPU || g_device_path)) return embed_rest(b, embed_pad_device(b, x, ids), T, W);
    bool any_pad = false;   // (host ids here; without gradient the ids are not read)
    for (int64_t i = 0; grad && i < ids->numel && !any_pad; i++) any_pad = vlt_i32(ids)[i] == pad;
    if (grad && any_pad) {
        vlt_tensor *keep = vlt_full(3, VLT_SHAPE(B, T, W), 1.0f), *fix = vlt_full(3, VLT_SHAPE(B, T, W), 0.0f);
        if (!keep || !fix) return NULL;
        const float *row = vlt_f32(b->word_emb) + (size_t)pad * W;
        for (int64_t i = 0; i < (int64_t)B * T; i++)
            if (vlt_i32(ids)[i] == pad)
                for (int c = 0; c < W; c++) {
                    vlt_f32(keep)[i * W + c] = 0.0f;
                    vlt_f32(fix)[i * W + c] = row[c];
                }
        x = vlt_add(vlt_mul(x, keep), fix);
    }
    return embed_rest(b, x, T, W);
}

// (B, T, W) -> (B, H, T, D)
static vlt_tensor *split_heads(vlt_tensor *x, int H) {
    if (!x) return NULL;
    int B = x->shape[0], T = x->shape[1], W = x->shape[2];
    return vlt_permute(vlt_reshape(x, 4, VLT_SHAPE(B, T, H, W / H)), VLT_SHAPE(0, 2, 1, 3));
}

// Post-LN attention sublayer: LN(x + dense(attn(q(x), k(ctx), v(ctx)))). probs non-NULL (a
// cross-attention probe, Grad-CAM): the attention is computed unfused, softmax(q·kᵀ·scale)·v, so
// that its probabilities (B, H, T, N) are a tape tensor, into *probs; the normal path is untouched.
static vlt_tensor *attention_forward(const vlt_bert_attention *a, vlt_tensor *x, vlt_tensor *ctx, vlt_tensor *key_pad,
                                     int H, float eps, bool self, bool causal, vlt_tensor **probs) {
    if (!x || !ctx) return NULL;
    int B = x->shape[0], T = x->shape[1], W = x->shape[2];
    vlt_tensor *o;
    if (self) {
        // q, k, v packed as one product and the fused attention (one kernel on the GPU)
        vlt_tensor *w = vlt_concat((vlt_tensor *[]){a->q_w, a->k_w, a->v_w}, 3, 0);
        vlt_tensor *bias = vlt_concat((vlt_tensor *[]){a->q_b, a->k_b, a->v_b}, 3, 0);
        o = vlt_attention_qkv(vlt_linear(x, w, bias), H, causal, key_pad);            // (B, T, W)
    } else {
        vlt_tensor *q = split_heads(vlt_linear(x, a->q_w, a->q_b), H);
        vlt_tensor *k = split_heads(vlt_linear(ctx, a->k_w, a->k_b), H);
        vlt_tensor *v = split_heads(vlt_linear(ctx, a->v_w, a->v_b), H);
        if (probs) {
            *probs = vlt_softmax(vlt_scale(vlt_matmul(q, k, false, true), 1.0f / sqrtf((float)(W / H))));
            o = vlt_matmul(*probs, v, false, false);
        } else {
            o = vlt_attention(q, k, v, 1.0f / sqrtf((float)(W / H)), false, key_pad);   // (B, H, T, D)
        }
        o = vlt_reshape(vlt_permute(o, VLT_SHAPE(0, 2, 1, 3)), 3, VLT_SHAPE(B, T, W));
    }
    return vlt_layernorm(vlt_linear_residual(o, a->o_w, a->o_b, x), a->ln_w, a->ln_b, eps);
}

static vlt_tensor *run_layers(vlt_bert *b, vlt_tensor *x, int from, int to, vlt_tensor *text_pad, vlt_tensor *image,
                              vlt_tensor *image_pad, int probe_layer, vlt_tensor **probs) {
    if (!x) return NULL;
    const vlt_bert_cfg *c = &b->cfg;
    if (x->ndim != 3 || x->shape[2] != c->hidden_size || from < 0 || to > c->num_hidden_layers || from > to) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "bert: states %s must be (B, T, %d), layers [%d, %d) inside [0, %d)",
                      vlt_shape_str(x, s, sizeof s), c->hidden_size, from, to, c->num_hidden_layers);
        return NULL;
    }
    if (to > c->fusion_layer) {
        if (!image || image->ndim != 3 || image->shape[0] != x->shape[0] || image->shape[2] != c->encoder_width) {
            char s[64] = "none";
            if (image) vlt_shape_str(image, s, sizeof s);
            vlt_error_set(VLT_ERR_SHAPE, "bert: fusion layers need image states (B = %d, N, %d), have %s", x->shape[0],
                          c->encoder_width, s);
            return NULL;
        }
    }
    int H = c->num_attention_heads;
    float eps = c->layer_norm_eps;
    for (int l = from; l < to; l++) {
        vlt_bert_layer *y = &b->layers[l];
        x = attention_forward(&y->self, x, x, text_pad, H, eps, true, b->is_decoder, NULL);
        if (y->has_cross)
            x = attention_forward(&y->cross, x, image, image_pad, H, eps, false, false, l == probe_layer ? probs : NULL);
        vlt_tensor *h = vlt_linear_act(x, y->inter_w, y->inter_b, VLT_ACT_FN_GELU);
        x = vlt_layernorm(vlt_linear_residual(h, y->out_w, y->out_b, x), y->ln_w, y->ln_b, eps);
    }
    return x;
}

vlt_tensor *vlt_bert_layers(vlt_bert *b, vlt_tensor *x, int from, int to, vlt_tensor *text_pad, vlt_tensor *image,
                            vlt_tensor *image_pad) {
    return run_layers(b, x, from, to, text_pad, image, image_pad, -1, NULL);
}

static vlt_tensor *forward(vlt_bert *b, vlt_bert_mode mode, vlt_tensor *in, vlt_tensor *text_pad, vlt_tensor *image,
                           vlt_tensor *image_pad, int probe_layer, vlt_tensor **probs) {
    const vlt_bert_cfg *c = &b->cfg;
    switch (mode) {
    case VLT_BERT_TEXT: return run_layers(b, vlt_bert_embed(b, in), 0, c->fusion_layer, text_pad, NULL, NULL, -1, NULL);
    case VLT_BERT_FUSION:
        return run_layers(b, in, c->fusion_layer, c->num_hidden_layers, text_pad, image, image_pad, probe_layer, probs);
    case VLT_BERT_MULTI_MODAL:
        return run_layers(b, vlt_bert_embed(b, in), 0, c->num_hidden_layers, text_pad, image, image_pad, probe_layer,
                          probs);
    }
    vlt_error_set(VLT_ERR_ARG, "bert: unknown mode %d", (int)mode);
    return NULL;
}

vlt_tensor *vlt_bert_forward(vlt_bert *b, vlt_bert_mode mode, vlt_tensor *in, vlt_tensor *text_pad, vlt_tensor *image,
                             vlt_tensor *image_pad) {
    return forward(b, mode, in, text_pad, image, image_pad, -1, NULL);
}

vlt_tensor *vlt_bert_forward_probe(vlt_bert *b, vlt_bert_mode mode, vlt_tensor *in, vlt_tensor *text_pad,
                                   vlt_tensor *image, int layer, vlt_tensor **probs) {
    *probs = NULL;
    const vlt_bert_cfg *c = &b->cfg;
    if (mode == VLT_BERT_TEXT || layer < c->fusion_layer || layer >= c->num_hidden_layers) {
        vlt_error_set(VLT_ERR_ARG, "bert: probe layer %d has no cross-attention in this mode (fusion layers %d..%d)",
                      layer, c->fusion_layer, c->num_hidden_layers - 1);
        return NULL;
    }
    vlt_tensor *h = forward(b, mode, in, text_pad, image, NULL, layer, probs);
    if (h && !*probs) {
        vlt_error_set(VLT_ERR_STATE, "bert: the probe of layer %d kept no attention", layer);
        return NULL;
    }
    return h;
}

vlt_tensor *vlt_bert_mlm_logits(vlt_bert *b, vlt_tensor *h) {
    h = vlt_linear_act(h, b->tr_w, b->tr_b, VLT_ACT_FN_GELU);
    h = vlt_layernorm(h, b->tr_ln_w, b->tr_ln_b, b->cfg.layer_norm_eps);
    return vlt_linear(h, b->word_emb, b->mlm_bias);   // decoder tied to the word embeddings
}
