// model.c — the model interface and the tables of the kinds vlt has (see model.h).
#include "layers/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/device.h"
#include "autograd/optim.h"
#include "layers/vqa_head.h"

// ---- batches and loss settings ----
vlt_status vlt_model_batch_set(vlt_model_batch *b, const char *name, vlt_tensor *t) {
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->names[i], name)) {
            b->t[i] = t;
            return VLT_OK;
        }
    if (b->n == VLT_MODEL_BATCH_MAX)
        return vlt_error_set(VLT_ERR_ARG, "batch: no room for field '%s' (%d fields at most)", name, VLT_MODEL_BATCH_MAX);
    b->names[b->n] = name;
    b->t[b->n++] = t;
    return VLT_OK;
}

vlt_tensor *vlt_model_batch_get(const vlt_model_batch *b, const char *name) {
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->names[i], name)) return b->t[i];
    return NULL;
}

vlt_loss_opts vlt_loss_opts_default(void) { return (vlt_loss_opts){.token_loss_scale = 1.0f}; }

vlt_status vlt_loss_opts_set(vlt_loss_opts *o, const char *name, float value) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->names[i], name)) {
            o->values[i] = value;
            return VLT_OK;
        }
    if (o->n == VLT_LOSS_OPTS_MAX)
        return vlt_error_set(VLT_ERR_ARG, "loss settings: no room for '%s' (%d at most)", name, VLT_LOSS_OPTS_MAX);
    o->names[o->n] = name;
    o->values[o->n++] = value;
    return VLT_OK;
}

float vlt_loss_opts_get(const vlt_loss_opts *o, const char *name, float dflt) {
    for (int i = 0; o && i < o->n; i++)
        if (!strcmp(o->names[i], name)) return o->values[i];
    return dflt;
}

// A field the kind needs, or an error naming it and the kind.
static vlt_tensor *need_field(const vlt_model *m, const vlt_model_batch *b, const char *name) {
    vlt_tensor *t = vlt_model_batch_get(b, name);
    if (!t) vlt_error_set(VLT_ERR_ARG, "%s: the batch has no '%s' field", m->ops->title, name);
    return t;
}

// ---- CLIP and SigLIP (one implementation; SigLIP's config adds logit_bias) ----
static vlt_clip *clip_of(const vlt_model *m) { return (vlt_clip *)m->impl; }

static vlt_status clip_loss(vlt_model *m, const vlt_model_batch *b, const vlt_loss_opts *o, vlt_model_loss *out) {
    vlt_tensor *images = need_field(m, b, VLT_FIELD_IMAGES), *ids = need_field(m, b, VLT_FIELD_TEXT_IDS);
    if (!images || !ids) return vlt_error_code();
    vlt_clip *c = clip_of(m);
    if (o && o->contrastive) {
        out->loss = o->contrastive(o->contrastive_ctx, vlt_clip_encode_image(c, images, true),
                                   vlt_clip_encode_text(c, ids, true), c->logit_scale, c->logit_bias);
        return out->loss ? VLT_OK : vlt_error_code();
    }
    vlt_clip_output co;
    VLT_TRY(vlt_clip_forward(c, images, ids, &co));
    out->loss = co.loss;
    return VLT_OK;
}

static void clip_after_step(vlt_model *m) { vlt_clip_clamp_logit_scale(clip_of(m)); }
static vlt_tensor *clip_image(vlt_model *m, vlt_tensor *images) { return vlt_clip_encode_image(clip_of(m), images, true); }
static vlt_tensor *clip_text(vlt_model *m, vlt_tensor *ids) { return vlt_clip_encode_text(clip_of(m), ids, true); }
static void clip_destroy(vlt_model *m) { vlt_clip_free(clip_of(m)); }

// Relevance of each image patch: |gradient · input| on the normalized tokens entering the last
// vision block's attention (ln_1's output). With X (T, W) those tokens and G = d cos(image, text)
// / d X, patch t gets |Σ_c G_tc X_tc|: how much of the similarity, to first order, rides on that
// token (the product of gradient and activation of Grad-CAM, taken per token, by magnitude).
// Choices measured on the demo shapes (tests/test_train_explain.c, a tiny CLIP, one-shape
// pictures; share of the map's mass on the shape's patches against their 0.31 share of the
// picture): |Σ G·X| 0.72; ‖G_t‖ 0.63; Σ relu(G·X) 0.60; relu(Σ G·X) gave all-zero maps on many
// pictures. Taken before ln_1 the product vanishes (a layernorm's input gradient is orthogonal to
// its input); averaging G over the tokens first, as plain Grad-CAM does, lets the component all
// tokens share set every patch's sign at once. Not Chefer et al.'s gradient-weighted attention
// rollout: the fused attention keeps no attention matrix (backward recomputes it), while this
// needs only a tape tensor and its gradient; and in the last block patch tokens still carry their
// own place (its output reaches the pooled feature only through the class token).
// The map of one image tower (`visual`) for a text feature (1, E) already normalized; `params`:
// the model's whole table (its gradients are zeroed before and after).
static vlt_status explain_vit(vlt_vit *visual, vlt_params *params, vlt_tensor *image, vlt_tensor *text_feature,
                              float *map, float *score) {
    vlt_tensor *probe = NULL;
    vlt_tensor *fi = vlt_vit_encode_probe(visual, image, visual->transformer.layers - 1, &probe);
    fi = vlt_l2_normalize(fi, 1e-12f);
    vlt_tensor *sc = vlt_sum_all(vlt_mul(fi, text_feature));
    if (!sc || !probe) return vlt_error_code();
    *score = vlt_tensor_item(sc, 0);
    vlt_zero_grad(params->t, params->n);
    VLT_TRY(vlt_backward(sc));
    vlt_zero_grad(params->t, params->n);
    if (!probe->grad) return vlt_error_set(VLT_ERR_STATE, "explain: no gradient reached the vision tokens");
    vlt_tensor *xh = vlt_tensor_to(probe, VLT_CPU), *gh = vlt_tensor_to(probe->grad, VLT_CPU);
    vlt_status s = xh && gh ? VLT_OK : vlt_error_code();
    int T = probe->shape[1], W = probe->shape[2];
    for (int t = 1; s == VLT_OK && t < T; t++) {
        double v = 0;
        for (int k = 0; k < W; k++) v += (double)vlt_f32(gh)[(size_t)t * W + k] * vlt_f32(xh)[(size_t)t * W + k];
        map[t - 1] = (float)fabs(v);
    }
    vlt_tensor_free(xh);
    vlt_tensor_free(gh);
    return s;
}

static vlt_status check_explain_inputs(vlt_tensor *image, vlt_tensor *ids) {
    if (!image || image->ndim != 4 || image->shape[0] != 1 || !ids || ids->ndim != 2 || ids->shape[0] != 1)
        return vlt_error_set(VLT_ERR_SHAPE, "explain: one image (1, 3, S, S) and one text (1, T) at a time");
    return VLT_OK;
}

static vlt_status clip_explain(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *map, float *score) {
    vlt_clip *c = clip_of(m);
    VLT_TRY(check_explain_inputs(image, ids));
    vlt_tensor *ft = vlt_clip_encode_text(c, ids, true);
    if (!ft) return vlt_error_code();
    return explain_vit(&c->visual, &c->params, image, ft, map, score);
}

static const vlt_model_ops CLIP_OPS = {
    .kind = "clip", .title = "CLIP", .caps = VLT_CAP_EMBED | VLT_CAP_EXPLAIN, .loss = clip_loss,
    .after_step = clip_after_step, .encode_image = clip_image, .encode_text = clip_text, .explain = clip_explain,
    .destroy = clip_destroy,
};
static const vlt_model_ops SIGLIP_OPS = {
    .kind = "siglip", .title = "SigLIP", .caps = VLT_CAP_EMBED | VLT_CAP_EXPLAIN, .loss = clip_loss,
    .after_step = clip_after_step, .encode_image = clip_image, .encode_text = clip_text, .explain = clip_explain,
    .destroy = clip_destroy,
};

// ---- CoCa ----
static vlt_coca *coca_of(const vlt_model *m) { return (vlt_coca *)m->impl; }

static vlt_status coca_loss(vlt_model *m, const vlt_model_batch *b, const vlt_loss_opts *o, vlt_model_loss *out) {
    vlt_tensor *images = need_field(m, b, VLT_FIELD_IMAGES), *ids = need_field(m, b, VLT_FIELD_TEXT_IDS);
    if (!images || !ids) return vlt_error_code();
    vlt_coca_loss_cfg lc = VLT_COCA_LOSS_DEFAULTS;
    lc.caption_loss_weight = vlt_loss_opts_get(o, "caption_weight", lc.caption_loss_weight);
    lc.clip_loss_weight = vlt_loss_opts_get(o, "clip_weight", lc.clip_loss_weight);
    lc.label_smoothing = vlt_loss_opts_get(o, "label_smoothing", lc.label_smoothing);
    if (o) {
        lc.caption_scale = o->token_loss_scale;
        lc.contrastive = o->contrastive;
        lc.contrastive_ctx = o->contrastive_ctx;
    }
    vlt_coca_output co;
    VLT_TRY(vlt_coca_forward(coca_of(m), images, ids, lc, &co));
    out->loss = co.loss;
    out->n_parts = 2;
    out->part_names[0] = "contrastive";
    out->part_names[1] = "caption";
    out->parts[0] = co.contrastive_loss;
    out->parts[1] = co.caption_loss;
    return VLT_OK;
}

// The caption loss is a mean over the targets that are not padding: positions 1.. of each row
// (device ids: counted on a copy back).
static int64_t coca_loss_tokens(const vlt_model *m, const vlt_model_batch *b) {
    vlt_tensor *ids = vlt_model_batch_get(b, VLT_FIELD_TEXT_IDS);
    if (!ids || ids->ndim != 2 || ids->dtype != VLT_I32) return 0;
    if (ids->device != VLT_CPU) {
        vlt_tensor *h = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, ids->shape);
        if (!h || vlt_tensor_copy(h, ids) != VLT_OK) return 0;
        ids = h;
    }
    int B = ids->shape[0], T = ids->shape[1], pad = m->cfg.text.pad_id;
    int64_t n = 0;
    for (int r = 0; r < B; r++)
        for (int i = 1; i < T; i++) n += vlt_i32(ids)[(size_t)r * T + i] != pad;
    return n;
}

static void coca_after_step(vlt_model *m) { vlt_coca_clamp_logit_scale(coca_of(m)); }
static vlt_tensor *coca_image(vlt_model *m, vlt_tensor *images) {
    return vlt_coca_encode_image(coca_of(m), images, true, NULL);
}
static vlt_tensor *coca_text(vlt_model *m, vlt_tensor *ids) { return vlt_coca_encode_text(coca_of(m), ids, true, NULL); }
static vlt_status coca_caption(vlt_model *m, vlt_tensor *images, const vlt_generate_cfg *g, int32_t *out) {
    return vlt_coca_generate(coca_of(m), images, g, out, NULL);
}
static void coca_destroy(vlt_model *m) { vlt_coca_free(coca_of(m)); }
// CoCa's contrastive towers, as CLIP's: the image feature is the attentional pooler's first query
// over the last block's tokens, so the map is taken at that block's input as for CLIP.
static vlt_status coca_explain(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *map, float *score) {
    vlt_coca *c = coca_of(m);
    VLT_TRY(check_explain_inputs(image, ids));
    vlt_tensor *ft = vlt_coca_encode_text(c, ids, true, NULL);
    if (!ft) return vlt_error_code();
    return explain_vit(&c->visual, &c->params, image, ft, map, score);
}

static const vlt_model_ops COCA_OPS = {
    .kind = "coca", .title = "CoCa", .caps = VLT_CAP_EMBED | VLT_CAP_CAPTION | VLT_CAP_EXPLAIN, .loss = coca_loss,
    .after_step = coca_after_step, .encode_image = coca_image, .encode_text = coca_text, .caption = coca_caption,
    .explain = coca_explain, .loss_tokens = coca_loss_tokens,
    .destroy = coca_destroy,   // on the GPU: coca.c / generate.c (the pad mask and labels from one copy back)
};

// ---- the VQA classifier on CLIP towers (layers/vqa_head.h) ----
static vlt_vqa_classifier *vqa_of(const vlt_model *m) { return (vlt_vqa_classifier *)m->impl; }

static vlt_status vqa_loss(vlt_model *m, const vlt_model_batch *b, const vlt_loss_opts *o, vlt_model_loss *out) {
    (void)o;
    vlt_tensor *images = need_field(m, b, VLT_FIELD_IMAGES), *q = need_field(m, b, VLT_FIELD_QUESTION_IDS);
    vlt_tensor *y = need_field(m, b, VLT_FIELD_ANSWER_SCORES);
    if (!images || !q || !y) return vlt_error_code();
    out->loss = vlt_vqa_bce_loss(vlt_vqa_classifier_logits(vqa_of(m), images, q), y);
    return out->loss ? VLT_OK : vlt_error_code();
}

static vlt_status vqa_answer(vlt_model *m, vlt_tensor *images, vlt_tensor *q, int32_t *best, float *conf) {
    vlt_tensor *logits = vlt_vqa_classifier_logits(vqa_of(m), images, q);
    vlt_tensor *h = logits && logits->device != VLT_CPU ? vlt_tensor_to(logits, VLT_CPU) : logits;  // a copy off the GPU
    if (!h) return vlt_error_code();
    int B = h->shape[0], N = h->shape[1];
    for (int r = 0; r < B; r++) {
        const float *x = vlt_f32(h) + (size_t)r * N;
        int k = 0;
        for (int j = 1; j < N; j++)
            if (x[j] > x[k]) k = j;   // the first of equal scores, as torch.argmax
        best[r] = k;
        if (conf) conf[r] = 1.0f / (1.0f + expf(-x[k]));
    }
    if (h != logits) vlt_tensor_free(h);
    return VLT_OK;
}

static void vqa_after_step(vlt_model *m) { vlt_clip_clamp_logit_scale(&vqa_of(m)->clip); }
static void vqa_destroy(vlt_model *m) { vlt_vqa_classifier_free(vqa_of(m)); }

static const vlt_model_ops VQA_OPS = {
    .kind = "clip_vqa", .title = "CLIP VQA classifier", .caps = VLT_CAP_ANSWER, .loss = vqa_loss,
    .after_step = vqa_after_step, .answer = vqa_answer,   // both fusions train on the GPU too (vqa_head.c)
    .destroy = vqa_destroy, .fresh_prefix = VLT_VQA_HEAD_PREFIX,
};

// ---- ALBEF ----
static vlt_albef *albef_of(const vlt_model *m) { return (vlt_albef *)m->impl; }

// alpha: the loss setting "alpha" when given, else the config's, ramped over the first epoch as
// ALBEF's training loop does (alpha · min(1, step / steps per epoch) while epoch 0) when the
// trainer says how far it is ("epoch_progress").
static vlt_status albef_loss(vlt_model *m, const vlt_model_batch *b, const vlt_loss_opts *o, vlt_model_loss *out) {
    vlt_tensor *images = need_field(m, b, VLT_FIELD_IMAGES), *ids = need_field(m, b, VLT_FIELD_TEXT_IDS);
    if (!images || !ids) return vlt_error_code();
    vlt_albef *a = albef_of(m);
    float progress = vlt_loss_opts_get(o, "epoch_progress", 1.0f);
    float alpha = a->cfg.albef.alpha * (progress < 1.0f ? fmaxf(progress, 0.0f) : 1.0f);
    float step = vlt_loss_opts_get(o, "step", 0.0f);
    vlt_albef_inputs in = {
        .images = images, .ids = ids, .atts = vlt_model_batch_get(b, VLT_FIELD_TEXT_ATTS),
        .mlm_ids = vlt_model_batch_get(b, VLT_FIELD_MLM_IDS), .mlm_labels = vlt_model_batch_get(b, VLT_FIELD_MLM_LABELS),
        .neg_image_idx = vlt_model_batch_get(b, VLT_FIELD_NEG_IMAGE_IDX),
        .neg_text_idx = vlt_model_batch_get(b, VLT_FIELD_NEG_TEXT_IDX),
        .alpha = vlt_loss_opts_get(o, "alpha", alpha), .step = step > 0 ? (uint64_t)step : 0,
        .rank = o ? o->rank : 0, .all_gather = o ? o->all_gather : NULL, .gather_ctx = o ? o->all_gather_ctx : NULL,
    };
    vlt_albef_output ao;
    VLT_TRY(vlt_albef_forward(a, &in, &ao));
    out->loss = ao.loss;
    out->n_parts = 3;
    out->part_names[0] = "itc";
    out->part_names[1] = "itm";
    out->part_names[2] = "mlm";
    out->parts[0] = ao.loss_itc;
    out->parts[1] = ao.loss_itm;
    out->parts[2] = ao.loss_mlm;
    out->n_metrics = 2;
    out->metric_names[0] = "itm_acc";
    out->metric_names[1] = "mlm_acc";
    out->metrics[0] = ao.itm_acc;
    out->metrics[1] = ao.mlm_acc;
    return VLT_OK;
}

static void albef_after_step(vlt_model *m) { vlt_albef_after_step(albef_of(m)); }
static vlt_tensor *albef_image(vlt_model *m, vlt_tensor *images) { return vlt_albef_encode_image(albef_of(m), images); }
static vlt_tensor *albef_text(vlt_model *m, vlt_tensor *ids) { return vlt_albef_encode_text(albef_of(m), ids, NULL); }
static void albef_destroy(vlt_model *m) { vlt_albef_free(albef_of(m)); }
static vlt_tensor *albef_match_tokens(vlt_model *m, vlt_tensor *images) {
    return vlt_albef_image_tokens(albef_of(m), images);
}
static vlt_tensor *albef_match(vlt_model *m, vlt_tensor *tokens, vlt_tensor *ids) {
    return vlt_albef_itm_score(albef_of(m), tokens, ids);
}
static vlt_status albef_explain_tokens(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *maps, float *score) {
    vlt_albef *a = albef_of(m);
    return vlt_albef_gradcam(a, image, ids, vlt_albef_gradcam_layer(a), maps, score);
}
// The whole text's map: the tokens' maps averaged (Grounding.py's mean over the text tokens).
static vlt_status albef_explain(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *map, float *score) {
    VLT_TRY(check_explain_inputs(image, ids));
    int T = ids->shape[1], G2 = vlt_model_patch_grid(m) * vlt_model_patch_grid(m), n = 0;
    float *maps = malloc(sizeof(float) * (size_t)T * G2);
    if (!maps) return vlt_error_set(VLT_ERR_NOMEM, "explain: out of memory");
    vlt_status s = albef_explain_tokens(m, image, ids, maps, score);
    vlt_tensor *ids_h = ids->device == VLT_CPU ? ids : vlt_tensor_to(ids, VLT_CPU);   // the pads, read on the host
    if (s == VLT_OK && !ids_h) s = vlt_error_code();
    for (int p = 0; p < G2; p++) map[p] = 0;
    for (int t = 0; s == VLT_OK && t < T; t++) {
        if (vlt_i32(ids_h)[t] == m->cfg.bert.pad_token_id) continue;
        n++;
        for (int p = 0; p < G2; p++) map[p] += maps[(size_t)t * G2 + p];
    }
    for (int p = 0; s == VLT_OK && n && p < G2; p++) map[p] /= n;
    if (ids_h && ids_h != ids) vlt_tensor_free(ids_h);
    free(maps);
    return s;
}
static const char *albef_token_text(const vlt_model *m, int32_t id) {
    return albef_of(m)->tok ? vlt_bert_tokenizer_token(albef_of(m)->tok, id) : NULL;
}
static bool albef_has_tokenizer(const vlt_model *m) { return albef_of(m)->tok != NULL; }
static int albef_tokenize(const vlt_model *m, const char *text, int32_t *ids, int32_t *mask, int T) {
    return vlt_albef_tokenize(albef_of(m), text, ids, mask, T);
}

static const vlt_model_ops ALBEF_OPS = {
    .kind = "albef", .title = "ALBEF", .caps = VLT_CAP_EMBED | VLT_CAP_MATCH | VLT_CAP_EXPLAIN, .loss = albef_loss,
    .explain = albef_explain, .explain_tokens = albef_explain_tokens, .token_text = albef_token_text,
    .explain_method = "Grad-CAM of the ITM score on the cross-attention of a fusion layer (ALBEF's visualisation): "
                      "attention x max(gradient, 0), averaged over heads, per text token",
    .match_tokens = albef_match_tokens, .match = albef_match, .after_step = albef_after_step,
    .encode_image = albef_image, .encode_text = albef_text, .tokenize = albef_tokenize,
    .has_tokenizer = albef_has_tokenizer,   // trains on the GPU too (layers/albef.c: the draws stay on the host)
    .destroy = albef_destroy,
};

// ---- the handle ----
const char *vlt_model_kind_of(const vlt_model_cfg *cfg) {
    if (cfg->is_albef && cfg->albef.vqa.on) return VLT_ALBEF_VQA_KIND;
    if (cfg->vqa.n_answers > 0) return VQA_OPS.kind;
    if (cfg->is_albef) return ALBEF_OPS.kind;
    return cfg->is_coca ? COCA_OPS.kind : cfg->has_logit_bias ? SIGLIP_OPS.kind : CLIP_OPS.kind;
}

vlt_status vlt_model_create(vlt_model *m, const vlt_model_cfg *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (cfg->is_albef && cfg->albef.vqa.on) return vlt_albef_vqa_model_create(m, cfg, seed);
    if (cfg->vqa.n_answers > 0) {
        vlt_vqa_classifier *c = calloc(1, sizeof *c);
        if (!c) return vlt_error_set(VLT_ERR_NOMEM, "model: out of memory");
        vlt_status s = vlt_vqa_classifier_init(c, cfg, seed);
        if (s != VLT_OK) {
            free(c);
            return s;
        }
        m->ops = &VQA_OPS;
        m->impl = c;
        m->params = &c->clip.params;
        m->logit_scale = c->clip.logit_scale;
    } else if (cfg->is_albef) {
        vlt_albef *c = calloc(1, sizeof *c);
        if (!c) return vlt_error_set(VLT_ERR_NOMEM, "model: out of memory");
        vlt_status s = vlt_albef_init(c, cfg, seed);
        if (s != VLT_OK) {
            free(c);
            return s;
        }
        m->ops = &ALBEF_OPS;
        m->cfg = c->cfg;   // with the special ids its vocabulary gave
        m->impl = c;
        m->params = &c->params;
        m->logit_scale = c->logit_scale;
    } else if (cfg->is_coca) {
        vlt_coca *c = calloc(1, sizeof *c);
        if (!c) return vlt_error_set(VLT_ERR_NOMEM, "model: out of memory");
        vlt_status s = vlt_coca_init(c, cfg, seed);
        if (s != VLT_OK) {
            free(c);
            return s;
        }
        m->ops = &COCA_OPS;
        m->impl = c;
        m->params = &c->params;
        m->logit_scale = c->logit_scale;
    } else {
        vlt_clip *c = calloc(1, sizeof *c);
        if (!c) return vlt_error_set(VLT_ERR_NOMEM, "model: out of memory");
        vlt_status s = vlt_clip_init(c, cfg, seed);
        if (s != VLT_OK) {
            free(c);
            return s;
        }
        m->ops = c->logit_bias ? &SIGLIP_OPS : &CLIP_OPS;
        m->impl = c;
        m->params = &c->params;
        m->logit_scale = c->logit_scale;
    }
    return VLT_OK;
}

vlt_status vlt_model_create_shapes(vlt_model *m, const vlt_model_cfg *cfg) {
    bool was = vlt_init_skipped();
    vlt_init_set_skip(true);
    vlt_status s = vlt_model_create(m, cfg, 0);
    vlt_init_set_skip(was);
    return s;
}

int64_t vlt_model_trainable_numel(const vlt_model *m) { return vlt_params_trainable_numel(m->params); }

void vlt_model_free(vlt_model *m) {
    if (!m->ops) return;
    m->ops->destroy(m);
    free(m->impl);
    memset(m, 0, sizeof *m);
}

// Inputs follow the parameters: a host batch for a model on the GPU is copied there (an
// activation of this step; images and ids never require grad).
static vlt_tensor *on_model_device(const vlt_model *m, vlt_tensor *x) {
    vlt_device dev = m->params->t[0]->device;
    return x && x->device != dev ? vlt_to_device(x, dev) : x;
}

static vlt_status lacks(const vlt_model *m, const char *what) {
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "the %s model has no %s", vlt_model_title(m), what);
}

vlt_status vlt_model_loss_forward(vlt_model *m, const vlt_model_batch *b, const vlt_loss_opts *o, vlt_model_loss *out) {
    memset(out, 0, sizeof *out);
    vlt_model_batch on = *b;
    for (int i = 0; i < on.n; i++)
        if (on.t[i] && !(on.t[i] = on_model_device(m, on.t[i]))) return vlt_error_code();
    return m->ops->loss(m, &on, o, out);
}

vlt_tensor *vlt_model_encode_image(vlt_model *m, vlt_tensor *images) {
    if (!vlt_model_can(m, VLT_CAP_EMBED)) {
        lacks(m, "image encoder");
        return NULL;
    }
    return m->ops->encode_image(m, on_model_device(m, images));
}

vlt_tensor *vlt_model_encode_text(vlt_model *m, vlt_tensor *ids) {
    if (!vlt_model_can(m, VLT_CAP_EMBED)) {
        lacks(m, "text encoder");
        return NULL;
    }
    return m->ops->encode_text(m, on_model_device(m, ids));
}

vlt_status vlt_model_caption(vlt_model *m, vlt_tensor *images, const vlt_generate_cfg *g, int32_t *out) {
    if (!vlt_model_can(m, VLT_CAP_CAPTION)) return lacks(m, "caption decoder (it cannot generate text)");
    return m->ops->caption(m, images, g, out);
}

int64_t vlt_model_loss_tokens(const vlt_model *m, const vlt_model_batch *b) {
    return m->ops->loss_tokens ? m->ops->loss_tokens(m, b) : 0;
}

int vlt_model_patch_grid(const vlt_model *m) { return m->cfg.vision.image_size / m->cfg.vision.patch_size; }

vlt_status vlt_model_explain(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *map, float *score) {
    if (!vlt_model_can(m, VLT_CAP_EXPLAIN)) return lacks(m, "relevance maps yet");
    image = on_model_device(m, image);
    ids = on_model_device(m, ids);
    if (!image || !ids) return vlt_error_code();
    return m->ops->explain(m, image, ids, map, score);
}

bool vlt_model_explains_tokens(const vlt_model *m) { return vlt_model_can(m, VLT_CAP_EXPLAIN) && m->ops->explain_tokens; }

vlt_status vlt_model_explain_tokens(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *maps, float *score) {
    if (!vlt_model_explains_tokens(m)) return lacks(m, "per-word relevance maps");
    image = on_model_device(m, image);
    if (!image) return vlt_error_code();
    return m->ops->explain_tokens(m, image, ids, maps, score);
}

const char *vlt_model_token_text(const vlt_model *m, int32_t id) {
    const char *t = m->ops && m->ops->token_text ? m->ops->token_text(m, id) : NULL;
    return t ? t : "?";
}

const char *vlt_model_explain_method(const vlt_model *m) {
    return m->ops && m->ops->explain_method ? m->ops->explain_method
                                            : "|gradient . input| of cos(image, text) on the normalized tokens "
                                              "entering the last vision block";
}

vlt_status vlt_model_answer(vlt_model *m, vlt_tensor *images, vlt_tensor *question_ids, int32_t *best, float *conf) {
    if (!vlt_model_can(m, VLT_CAP_ANSWER)) return lacks(m, "answer head (it cannot answer questions)");
    images = on_model_device(m, images);
    question_ids = on_model_device(m, question_ids);
    if (!images || !question_ids) return vlt_error_code();
    return m->ops->answer(m, images, question_ids, best, conf);
}

int vlt_model_answers(const vlt_model *m) {
    if (!vlt_model_can(m, VLT_CAP_ANSWER)) return 0;
    return m->ops->n_answers ? m->ops->n_answers(m) : m->cfg.vqa.n_answers;
}

vlt_status vlt_model_set_answers(vlt_model *m, const char *const *answers, int n) {
    if (!vlt_model_can(m, VLT_CAP_ANSWER)) return lacks(m, "answer head (it cannot answer questions)");
    return m->ops->set_answers ? m->ops->set_answers(m, answers, n) : VLT_OK;
}

bool vlt_model_builds_answers(const vlt_model *m) { return m->ops && m->ops->answer_fields; }
bool vlt_model_has_init_loader(const vlt_model *m) { return m->ops && m->ops->load_init; }
vlt_status vlt_model_load_init(vlt_model *m, const char *path) {
    if (!vlt_model_has_init_loader(m)) return lacks(m, "loader of its own for model.init_from");
    return m->ops->load_init(m, path);
}
vlt_status vlt_model_answer_fields(vlt_model *m, char *const *json, int n, vlt_model_batch *b) {
    return vlt_model_builds_answers(m) ? m->ops->answer_fields(m, json, n, b) : VLT_OK;
}
const char *vlt_model_fresh_prefix(const vlt_model *m) { return m->ops ? m->ops->fresh_prefix : NULL; }

const char *vlt_model_gpu_unsupported(const vlt_model *m) {
    return m->ops->gpu_unsupported ? m->ops->gpu_unsupported(m) : NULL;
}

void vlt_model_after_step(vlt_model *m) { m->ops->after_step(m); }

vlt_tensor *vlt_model_match_tokens(vlt_model *m, vlt_tensor *images) {
    if (!vlt_model_can(m, VLT_CAP_MATCH)) {
        lacks(m, "image-text matching head");
        return NULL;
    }
    return m->ops->match_tokens(m, on_model_device(m, images));
}

vlt_tensor *vlt_model_match(vlt_model *m, vlt_tensor *tokens, vlt_tensor *ids) {
    if (!vlt_model_can(m, VLT_CAP_MATCH)) {
        lacks(m, "image-text matching head");
        return NULL;
    }
    return m->ops->match(m, tokens, ids);
}

bool vlt_model_has_tokenizer(const vlt_model *m) {
    return m->ops && m->ops->tokenize && (!m->ops->has_tokenizer || m->ops->has_tokenizer(m));
}

int vlt_model_tokenize(const vlt_model *m, const char *text, int32_t *ids, int32_t *mask, int T) {
    if (!m->ops || !m->ops->tokenize) {
        vlt_error_set(VLT_ERR_UNSUPPORTED, "the %s model has no tokenizer of its own", vlt_model_title(m));
        return -1;
    }
    return m->ops->tokenize(m, text, ids, mask, T);
}
