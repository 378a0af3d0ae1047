// clip.c — CLIP model and losses (see clip.h).
#include "layers/clip.h"

#include <math.h>
#include <string.h>

#include "autograd/device.h"

vlt_status vlt_clip_init(vlt_clip *m, const vlt_model_cfg *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    vlt_params_init(&m->params);
    vlt_activation act = cfg->quick_gelu ? VLT_ACT_QUICK_GELU : VLT_ACT_GELU;
    vlt_status s = vlt_text_encoder_init(&m->text, &m->params, "", &cfg->text, cfg->embed_dim, act, seed);
    if (s == VLT_OK) {
        m->logit_scale = vlt_params_new(&m->params, "logit_scale", 0, NULL);
        if (!m->logit_scale) s = vlt_error_code();
    }
    if (s == VLT_OK && cfg->has_logit_bias) {
        m->logit_bias = vlt_params_new(&m->params, "logit_bias", 0, NULL);
        if (!m->logit_bias) s = vlt_error_code();
        else vlt_f32(m->logit_bias)[0] = cfg->init_logit_bias;
    }
    if (s == VLT_OK) s = vlt_vit_init(&m->visual, &m->params, "visual", &cfg->vision, cfg->embed_dim, act, seed);
    if (s != VLT_OK) {
        vlt_params_free(&m->params);
        return s;
    }
    vlt_f32(m->logit_scale)[0] = cfg->init_logit_scale;
    return VLT_OK;
}

void vlt_clip_free(vlt_clip *m) { vlt_params_free(&m->params); }

vlt_tensor *vlt_clip_encode_image(vlt_clip *m, vlt_tensor *images, bool normalize) {
    vlt_tensor *f = vlt_vit_forward(&m->visual, images);
    return normalize ? vlt_l2_normalize(f, 1e-12f) : f;
}

vlt_tensor *vlt_clip_encode_text(vlt_clip *m, vlt_tensor *ids, bool normalize) {
    vlt_tensor *f = vlt_text_encoder_forward(&m->text, ids);
    return normalize ? vlt_l2_normalize(f, 1e-12f) : f;
}

vlt_tensor *vlt_siglip_signs(int B, int N, int off, vlt_device dev) {
    // filled on the host (an activation of this step), then copied where the logits are
    vlt_tensor *z = vlt_tensor_new_activation(VLT_F32, VLT_CPU, 2, VLT_SHAPE(B, N));
    if (!z) return NULL;
    for (int64_t i = 0; i < (int64_t)B * N; i++) vlt_f32(z)[i] = -1.0f;
    for (int i = 0; i < B; i++) vlt_f32(z)[(int64_t)i * N + off + i] = 1.0f;
    return dev == VLT_CPU ? z : vlt_to_device(z, dev);
}

vlt_tensor *vlt_clip_loss(vlt_tensor *img, vlt_tensor *txt, vlt_tensor *logit_scale, vlt_tensor *logit_bias,
                          vlt_tensor **logits_out) {
    if (!img || !txt) return NULL;
    int B = img->shape[0];
    vlt_tensor *logits = vlt_mul(vlt_matmul(img, txt, false, true), vlt_exp(logit_scale));  // (B, B)
    if (logit_bias) {
        // SigLIP: -Σ log σ(z_ij · logit_ij) / B with z = +1 on the diagonal, -1 elsewhere.
        logits = vlt_add(logits, logit_bias);
        if (logits_out) *logits_out = logits;
        vlt_tensor *z = logits ? vlt_siglip_signs(B, B, 0, logits->device) : NULL;
        return vlt_scale(vlt_sum_all(vlt_log_sigmoid(vlt_mul(logits, z))), -1.0f / B);
    }
    if (logits_out) *logits_out = logits;
    vlt_tensor *labels = vlt_arange(B);
    vlt_tensor *li = vlt_cross_entropy(logits, labels, -1, 0.0f);
    vlt_tensor *lt = vlt_cross_entropy(vlt_transpose(logits, 0, 1), labels, -1, 0.0f);
    return vlt_scale(vlt_add(li, lt), 0.5f);
}

vlt_status vlt_clip_forward(vlt_clip *m, vlt_tensor *images, vlt_tensor *ids, vlt_clip_output *out) {
    memset(out, 0, sizeof *out);
    if (images && ids && images->shape[0] != ids->shape[0])
        return vlt_error_set(VLT_ERR_SHAPE, "clip: %d images but %d captions in the batch", images->shape[0], ids->shape[0]);
    out->image_features = vlt_clip_encode_image(m, images, true);
    out->text_features = vlt_clip_encode_text(m, ids, true);
    out->loss = vlt_clip_loss(out->image_features, out->text_features, m->logit_scale, m->logit_bias,
                              &out->logits_per_image);
    return out->loss ? VLT_OK : vlt_error_code();
}

void vlt_logit_scale_clamp(vlt_tensor *logit_scale) {
    // one scalar, wherever it lives (a device read and write when the model is on the GPU)
    const float hi = logf(100.0f), s = vlt_tensor_item(logit_scale, 0);
    const float c = s < 0.0f ? 0.0f : s > hi ? hi : s;
    if (c != s) vlt_tensor_set_item(logit_scale, 0, c);
}

void vlt_clip_clamp_logit_scale(vlt_clip *m) { vlt_logit_scale_clamp(m->logit_scale); }

void vlt_clip_decay_mask(const vlt_params *p, bool *decay) {
    // open_clip's training script: exclude p.ndim < 2 or "bn"/"ln"/"bias"/"logit_scale" in the name.
    for (int i = 0; i < p->n; i++) {
        const char *name = p->t[i]->name;
        bool excluded = p->t[i]->ndim < 2 || strstr(name, "bn") || strstr(name, "ln") || strstr(name, "bias") ||
                        strstr(name, "logit_scale");
        decay[i] = !excluded;
    }
}
