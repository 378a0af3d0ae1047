// coca.c — CoCa model and loss (see coca.h).
#include "layers/coca.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd/device.h"
#include "layers/clip.h"

static vlt_tensor *param(vlt_params *table, const char *prefix, const char *name, int ndim, const int *shape) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    return vlt_params_new(table, full, ndim, shape);
}

static vlt_status cross_block_init(vlt_cross_block *c, vlt_params *table, const char *prefix, int W, int heads,
                                   int M, vlt_activation act, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->width = W;
    c->act = act;
    c->ln_1_w = param(table, prefix, "ln_1.weight", 1, VLT_SHAPE(W));
    c->ln_1_b = param(table, prefix, "ln_1.bias", 1, VLT_SHAPE(W));
    if (!c->ln_1_w || !c->ln_1_b) return vlt_error_code();
    char ap[128];
    snprintf(ap, sizeof ap, "%s.attn", prefix);
    VLT_TRY(vlt_mha_weights_init(&c->attn, table, ap, W, W, heads, seed));
    c->ln_1_kv_w = param(table, prefix, "ln_1_kv.weight", 1, VLT_SHAPE(W));
    c->ln_1_kv_b = param(table, prefix, "ln_1_kv.bias", 1, VLT_SHAPE(W));
    c->ln_2_w = param(table, prefix, "ln_2.weight", 1, VLT_SHAPE(W));
    c->ln_2_b = param(table, prefix, "ln_2.bias", 1, VLT_SHAPE(W));
    c->c_fc_w = param(table, prefix, "mlp.c_fc.weight", 2, VLT_SHAPE(M, W));
    c->c_fc_b = param(table, prefix, "mlp.c_fc.bias", 1, VLT_SHAPE(M));
    c->c_proj_w = param(table, prefix, "mlp.c_proj.weight", 2, VLT_SHAPE(W, M));
    c->c_proj_b = param(table, prefix, "mlp.c_proj.bias", 1, VLT_SHAPE(W));
    if (!c->ln_1_kv_w || !c->ln_1_kv_b || !c->ln_2_w || !c->ln_2_b || !c->c_fc_w || !c->c_fc_b || !c->c_proj_w ||
        !c->c_proj_b)
        return vlt_error_code();
    vlt_init_const(c->ln_1_w, 1.0f);
    vlt_init_const(c->ln_1_kv_w, 1.0f);
    vlt_init_const(c->ln_2_w, 1.0f);
    vlt_init_uniform(c->c_fc_w, 1.0f / sqrtf((float)W), seed);   // torch Linear defaults
    vlt_init_uniform(c->c_fc_b, 1.0f / sqrtf((float)W), seed);
    vlt_init_uniform(c->c_proj_w, 1.0f / sqrtf((float)M), seed);
    vlt_init_uniform(c->c_proj_b, 1.0f / sqrtf((float)M), seed);
    return VLT_OK;
}

static vlt_status decoder_init(vlt_text_decoder *d, vlt_params *table, const vlt_model_cfg *cfg, vlt_activation act,
                               uint64_t seed) {
    const vlt_multimodal_cfg *mm = &cfg->multimodal;
    memset(d, 0, sizeof *d);
    int W = mm->width, M = (int)(W * mm->mlp_ratio);
    d->width = W;
    d->layers = mm->layers;
    d->heads = mm->heads;
    d->context_length = mm->context_length;
    d->vocab_size = cfg->text.vocab_size;   // open_clip sizes the decoder's output by the text vocabulary
    if (mm->layers < 1 || mm->layers > VLT_MAX_LAYERS)
        return vlt_error_set(VLT_ERR_ARG, "coca: multimodal_cfg.layers %d is outside 1..%d", mm->layers, VLT_MAX_LAYERS);
    VLT_TRY(vlt_transformer_init(&d->self_blocks, table, "text_decoder", W, mm->layers, mm->heads, M, act,
                                 VLT_INIT_TORCH_DEFAULT, seed));
    for (int l = 0; l < mm->layers; l++) {
        char name[96];
        snprintf(name, sizeof name, "text_decoder.cross_attn.%d", l);
        VLT_TRY(cross_block_init(&d->cross[l], table, name, W, mm->heads, M, act, seed));
    }
    d->ln_final_w = vlt_params_new(table, "text_decoder.ln_final.weight", 1, VLT_SHAPE(W));
    d->ln_final_b = vlt_params_new(table, "text_decoder.ln_final.bias", 1, VLT_SHAPE(W));
    d->text_projection = vlt_params_new(table, "text_decoder.text_projection", 2, VLT_SHAPE(W, d->vocab_size));
    if (!d->ln_final_w || !d->ln_final_b || !d->text_projection) return vlt_error_code();
    vlt_init_const(d->ln_final_w, 1.0f);
    vlt_init_normal(d->text_projection, 1.0f / sqrtf((float)W), seed);
    return VLT_OK;
}

static vlt_status check_cfg(const vlt_model_cfg *cfg) {
    const char *n = cfg->name[0] ? cfg->name : "model config";
    if (!cfg->is_coca) return vlt_error_set(VLT_ERR_ARG, "coca: %s has no multimodal_cfg", n);
    if (!cfg->vision.attentional_pool)
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "coca: %s: vision_cfg.attentional_pool must be true", n);
    if (!cfg->text.embed_cls) return vlt_error_set(VLT_ERR_UNSUPPORTED, "coca: %s: text_cfg.embed_cls must be true", n);
    if (cfg->multimodal.width != cfg->embed_dim || cfg->text.width != cfg->embed_dim)
        return vlt_error_set(VLT_ERR_ARG,
                             "coca: %s: multimodal_cfg.width %d, text_cfg.width %d and embed_dim %d must be equal "
                             "(the decoder attends to image tokens of width embed_dim)",
                             n, cfg->multimodal.width, cfg->text.width, cfg->embed_dim);
    if (cfg->multimodal.width % cfg->multimodal.heads)
        return vlt_error_set(VLT_ERR_ARG, "coca: %s: multimodal_cfg.width %d is not a multiple of heads %d", n,
                             cfg->multimodal.width, cfg->multimodal.heads);
    if (cfg->has_logit_bias)
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "coca: %s: init_logit_bias (SigLIP CoCa) is not implemented", n);
    return VLT_OK;
}

vlt_status vlt_coca_init(vlt_coca *m, const vlt_model_cfg *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    VLT_TRY(check_cfg(cfg));
    m->cfg = *cfg;
    vlt_params_init(&m->params);
    vlt_activation act = cfg->quick_gelu ? VLT_ACT_QUICK_GELU : VLT_ACT_GELU;
    vlt_status s = vlt_text_encoder_init(&m->text, &m->params, "text", &cfg->text, cfg->embed_dim, act, seed);
    if (s == VLT_OK) s = vlt_vit_init(&m->visual, &m->params, "visual", &cfg->vision, cfg->embed_dim, act, seed);
    if (s == VLT_OK) s = decoder_init(&m->decoder, &m->params, cfg, act, seed);
    if (s == VLT_OK) {
        m->logit_scale = vlt_params_new(&m->params, "logit_scale", 0, NULL);
        if (!m->logit_scale) s = vlt_error_code();
    }
    if (s != VLT_OK) {
        vlt_params_free(&m->params);
        return s;
    }
    vlt_f32(m->logit_scale)[0] = cfg->init_logit_scale;
    return VLT_OK;
}

void vlt_coca_free(vlt_coca *m) { vlt_params_free(&m->params); }

// Inputs go to the model's device (a copy when they come from the host).
vlt_tensor *vlt_coca_encode_image(vlt_coca *m, vlt_tensor *images, bool normalize, vlt_tensor **image_embs) {
    if (images && images->device != vlt_coca_device(m)) images = vlt_to_device(images, vlt_coca_device(m));
    vlt_tensor *f = vlt_vit_encode(&m->visual, images, image_embs);
    return normalize ? vlt_l2_normalize(f, 1e-12f) : f;
}

// Host ids also serve as the pad mask's source (no copy back).
vlt_tensor *vlt_coca_encode_text(vlt_coca *m, vlt_tensor *ids, bool normalize, vlt_tensor **token_embs) {
    vlt_tensor *ids_h = ids && ids->device == VLT_CPU ? ids : NULL;
    if (ids && ids->device != vlt_coca_device(m)) ids = vlt_to_device(ids, vlt_coca_device(m));
    vlt_tensor *f = vlt_text_encoder_encode_ex(&m->text, ids, ids_h, vlt_coca_device_form(m), token_embs);
    return normalize ? vlt_l2_normalize(f, 1e-12f) : f;
}

vlt_tensor *vlt_block_mlp(vlt_tensor *x, vlt_tensor *ln_w, vlt_tensor *ln_b, vlt_tensor *fc_w, vlt_tensor *fc_b,
                          vlt_tensor *proj_w, vlt_tensor *proj_b, vlt_activation act) {
    vlt_tensor *h = vlt_linear(vlt_layernorm(x, ln_w, ln_b, 1e-5f), fc_w, fc_b);
    h = act == VLT_ACT_QUICK_GELU ? vlt_quick_gelu(h) : vlt_gelu(h);
    return vlt_add(x, vlt_linear(h, proj_w, proj_b));
}

vlt_status vlt_cross_block_kv(const vlt_cross_block *c, vlt_tensor *image_embs, vlt_tensor **k, vlt_tensor **v) {
    return vlt_cross_mha_kv(&c->attn, vlt_layernorm(image_embs, c->ln_1_kv_w, c->ln_1_kv_b, 1e-5f), k, v);
}

vlt_tensor *vlt_cross_block_forward_kv(const vlt_cross_block *c, vlt_tensor *x, vlt_tensor *k, vlt_tensor *v) {
    vlt_tensor *h = vlt_layernorm(x, c->ln_1_w, c->ln_1_b, 1e-5f);
    x = vlt_add(x, vlt_cross_mha_with_kv(&c->attn, h, k, v));
    return vlt_block_mlp(x, c->ln_2_w, c->ln_2_b, c->c_fc_w, c->c_fc_b, c->c_proj_w, c->c_proj_b, c->act);
}

vlt_tensor *vlt_coca_decode(vlt_coca *m, vlt_tensor *image_embs, vlt_tensor *text_embs) {
    vlt_text_decoder *d = &m->decoder;
    if (!image_embs || !text_embs) return NULL;
    if (text_embs->ndim != 3 || text_embs->shape[1] > d->context_length || image_embs->ndim != 3 ||
        image_embs->shape[0] != text_embs->shape[0]) {
        char a[64], b[64];
        vlt_error_set(VLT_ERR_SHAPE, "coca decoder: text %s must be (B, T <= %d, %d) and image tokens %s (B, N, %d)",
                      vlt_shape_str(text_embs, a, sizeof a), d->context_length, d->width,
                      vlt_shape_str(image_embs, b, sizeof b), d->width);
        return NULL;
    }
    vlt_tensor *x = text_embs;
    for (int l = 0; l < d->layers; l++) {
        x = vlt_resblock_forward(&d->self_blocks.blocks[l], x, true, NULL);
        vlt_tensor *k, *v;
        if (vlt_cross_block_kv(&d->cross[l], image_embs, &k, &v) != VLT_OK) return NULL;
        x = vlt_cross_block_forward_kv(&d->cross[l], x, k, v);
    }
    x = vlt_layernorm(x, d->ln_final_w, d->ln_final_b, 1e-5f);
    return vlt_matmul(x, d->text_projection, false, false);
}

vlt_tensor *vlt_coca_caption_logits(vlt_coca *m, vlt_tensor *image_embs, vlt_tensor *ids) {
    vlt_tensor *tokens = NULL;
    if (!vlt_coca_encode_text(m, ids, false, &tokens)) return NULL;
    return vlt_coca_decode(m, image_embs, tokens);
}

// ---- the device ----
// The model's device is its parameters'. The batch may come on either (the trainer sends it to the
// GPU): the ids are read back once (B x T i32) and the text tower's pad mask and the caption
// labels are built from that host copy and sent to the model's device as step activations.
// vlt_coca_set_device_path takes that route on a host model too (the tests' check that it gives
// the host path's bits); generation (generate.c) reads the same switch.
static bool g_device_path;

void vlt_coca_set_device_path(bool on) { g_device_path = on; }

bool vlt_coca_device_form(const vlt_coca *m) { return g_device_path || m->logit_scale->device != VLT_CPU; }

vlt_device vlt_coca_device(const vlt_coca *m) { return m->logit_scale->device; }

// ids[:, 1:] flattened: (B·(T-1)) i32, from host ids
static vlt_tensor *shifted_labels(const vlt_tensor *ids) {
    int B = ids->shape[0], T = ids->shape[1];
    vlt_tensor *lab = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 1, VLT_SHAPE(B * (T - 1)));
    if (!lab) return NULL;
    for (int b = 0; b < B; b++)
        memcpy(vlt_i32(lab) + (size_t)b * (T - 1), vlt_i32(ids) + (size_t)b * T + 1, sizeof(int32_t) * (size_t)(T - 1));
    return lab;
}

vlt_status vlt_coca_forward(vlt_coca *m, vlt_tensor *images, vlt_tensor *ids, vlt_coca_loss_cfg lc,
                            vlt_coca_output *out) {
    memset(out, 0, sizeof *out);
    if (!images || !ids) return vlt_error_code();
    if (ids->dtype != VLT_I32 || ids->ndim != 2 || ids->shape[1] < 2)
        return vlt_error_set(VLT_ERR_SHAPE, "coca: ids must be i32 (B, T) with T >= 2 (teacher forcing)");
    if (images->shape[0] != ids->shape[0])
        return vlt_error_set(VLT_ERR_SHAPE, "coca: %d images but %d captions in the batch", images->shape[0],
                             ids->shape[0]);
    int B = ids->shape[0], T = ids->shape[1], V = m->decoder.vocab_size;
    const vlt_device dev = vlt_coca_device(m);
    const bool gpu = vlt_coca_device_form(m) || ids->device != VLT_CPU;
    // the host copy of the ids (the one copy back of a step on the GPU), the batch on the model's device
    vlt_tensor *ids_h = ids;
    if (gpu) {
        ids_h = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, ids->shape);
        if (!ids_h || vlt_tensor_copy(ids_h, ids) != VLT_OK) return vlt_error_code();
    }
    if (images->device != dev) images = vlt_to_device(images, dev);
    if (ids->device != dev) ids = vlt_to_device(ids, dev);
    vlt_tensor *labels = shifted_labels(ids_h);
    if (labels && gpu) labels = vlt_to_device(labels, dev);
    if (!images || !ids || !labels) return vlt_error_code();
    vlt_tensor *tokens = NULL;
    out->image_features = vlt_coca_encode_image(m, images, true, &out->image_embs);
    vlt_tensor *tf = vlt_text_encoder_encode_ex(&m->text, ids, ids_h, gpu, &tokens);
    out->text_features = tf ? vlt_l2_normalize(tf, 1e-12f) : NULL;
    if (!out->image_features || !out->text_features) return vlt_error_code();
    out->logits = vlt_coca_decode(m, out->image_embs, vlt_slice(tokens, 1, 0, T - 1));   // (B, T-1, V)
    vlt_tensor *ce = vlt_cross_entropy(vlt_reshape(out->logits, 2, VLT_SHAPE(B * (T - 1), V)), labels,
                                       m->text.pad_id, lc.label_smoothing);
    out->caption_loss = vlt_scale(ce, lc.caption_loss_weight * lc.caption_scale);
    vlt_tensor *cl = lc.contrastive
                         ? lc.contrastive(lc.contrastive_ctx, out->image_features, out->text_features, m->logit_scale, NULL)
                         : vlt_clip_loss(out->image_features, out->text_features, m->logit_scale, NULL,
                                         &out->logits_per_image);
    out->contrastive_loss = vlt_scale(cl, lc.clip_loss_weight);
    out->loss = vlt_add(out->contrastive_loss, out->caption_loss);
    return out->loss ? VLT_OK : vlt_error_code();
}

void vlt_coca_clamp_logit_scale(vlt_coca *m) { vlt_logit_scale_clamp(m->logit_scale); }
