// vqa_head.c — the VQA classifier on CLIP towers (see vqa_head.h).
#include "layers/vqa_head.h"

#include <math.h>
#include <string.h>

#include "layers/transformer.h"

vlt_status vlt_vqa_classifier_init(vlt_vqa_classifier *m, const vlt_model_cfg *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    if (cfg->vqa.n_answers < 1)
        return vlt_error_set(VLT_ERR_ARG, "VQA classifier: %d answers (the answer vocabulary is empty)", cfg->vqa.n_answers);
    if (cfg->is_coca || cfg->has_logit_bias)
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "VQA classifier: model %s is a %s; the classifier head sits on CLIP towers "
                             "(a model config without multimodal_cfg or init_logit_bias)", cfg->name,
                             cfg->is_coca ? "CoCa" : "SigLIP");
    if (cfg->vqa.hidden < 0) return vlt_error_set(VLT_ERR_ARG, "VQA classifier: hidden width %d < 0", cfg->vqa.hidden);
    VLT_TRY(vlt_clip_init(&m->clip, cfg, seed));
    int C = 2 * cfg->embed_dim, H = cfg->vqa.hidden > 0 ? cfg->vqa.hidden : 2 * C, N = cfg->vqa.n_answers;
    m->n_answers = N;
    m->hidden = H;
    vlt_params *p = &m->clip.params;
    m->ln_w = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "ln.weight", 1, VLT_SHAPE(C));
    m->ln_b = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "ln.bias", 1, VLT_SHAPE(C));
    m->fc1_w = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "fc1.weight", 2, VLT_SHAPE(H, C));
    m->fc1_b = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "fc1.bias", 1, VLT_SHAPE(H));
    m->fc2_w = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "fc2.weight", 2, VLT_SHAPE(N, H));
    m->fc2_b = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "fc2.bias", 1, VLT_SHAPE(N));
    if (!m->ln_w || !m->ln_b || !m->fc1_w || !m->fc1_b || !m->fc2_w || !m->fc2_b) {
        vlt_status s = vlt_error_code();
        vlt_clip_free(&m->clip);
        return s;
    }
    // torch.nn.Linear's default (uniform ±1/√fan_in) and LayerNorm's ones / zeros
    vlt_init_const(m->ln_w, 1.0f);
    vlt_init_uniform(m->fc1_w, 1.0f / sqrtf((float)C), seed);
    vlt_init_uniform(m->fc1_b, 1.0f / sqrtf((float)C), seed);
    vlt_init_uniform(m->fc2_w, 1.0f / sqrtf((float)H), seed);
    vlt_init_uniform(m->fc2_b, 1.0f / sqrtf((float)H), seed);
    return VLT_OK;
}

void vlt_vqa_classifier_free(vlt_vqa_classifier *m) { vlt_clip_free(&m->clip); }

vlt_tensor *vlt_vqa_head_forward(vlt_vqa_classifier *m, vlt_tensor *img, vlt_tensor *txt) {
    if (!img || !txt) return NULL;
    if (img->shape[0] != txt->shape[0]) {
        vlt_error_set(VLT_ERR_SHAPE, "VQA classifier: %d images but %d questions in the batch", img->shape[0], txt->shape[0]);
        return NULL;
    }
    vlt_tensor *parts[2] = {img, txt};
    vlt_tensor *x = vlt_layernorm(vlt_concat(parts, 2, 1), m->ln_w, m->ln_b, 1e-5f);   // (B, 2E)
    return vlt_linear(vlt_gelu(vlt_linear(x, m->fc1_w, m->fc1_b)), m->fc2_w, m->fc2_b);   // (B, N)
}

vlt_tensor *vlt_vqa_classifier_logits(vlt_vqa_classifier *m, vlt_tensor *images, vlt_tensor *question_ids) {
    if (images && question_ids && images->shape[0] != question_ids->shape[0]) {
        vlt_error_set(VLT_ERR_SHAPE, "VQA classifier: %d images but %d questions in the batch", images->shape[0],
                      question_ids->shape[0]);
        return NULL;
    }
    // the projected pooled features, not L2-normalized (the layernorm of the head scales them)
    return vlt_vqa_head_forward(m, vlt_clip_encode_image(&m->clip, images, false),
                                vlt_clip_encode_text(&m->clip, question_ids, false));
}

vlt_tensor *vlt_vqa_bce_loss(vlt_tensor *logits, vlt_tensor *targets) {
    if (!logits || !targets) return NULL;
    if (logits->ndim != 2 || targets->ndim != 2 || logits->shape[0] != targets->shape[0] ||
        logits->shape[1] != targets->shape[1]) {
        char a[64], b[64];
        vlt_error_set(VLT_ERR_SHAPE, "VQA loss: logits %s and answer scores %s must both be (B, answers)",
                      vlt_shape_str(logits, a, sizeof a), vlt_shape_str(targets, b, sizeof b));
        return NULL;
    }
    // BCE(x, y) = -y log σ(x) - (1 - y) log σ(-x) = x (1 - y) - log σ(x)
    vlt_tensor *l = vlt_sub(vlt_sub(logits, vlt_mul(logits, targets)), vlt_log_sigmoid(logits));
    return vlt_scale(vlt_sum_all(l), 1.0f / (float)logits->shape[0]);
}
