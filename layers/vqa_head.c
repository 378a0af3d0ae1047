// vqa_head.c — the VQA classifier on CLIP towers (see vqa_head.h).
#include "layers/vqa_head.h"

#include <math.h>
#include <string.h>

#include "autograd/device.h"
#include "layers/transformer.h"

// The device formulation on a host model too (vlt_vqa_set_device_path, for tests).
static bool g_device_path;
void vlt_vqa_set_device_path(bool on) { g_device_path = on; }

vlt_status vlt_vqa_classifier_init(vlt_vqa_classifier *m, const vlt_model_cfg *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    if (cfg->vqa.n_answers < 1)
        return vlt_error_set(VLT_ERR_ARG, "VQA classifier: %d answers (the answer vocabulary is empty)", cfg->vqa.n_answers);
    if (cfg->is_coca || cfg->has_logit_bias)
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "VQA classifier: model %s is a %s; the classifier head sits on CLIP towers "
                             "(a model config without multimodal_cfg or init_logit_bias)", cfg->name,
                             cfg->is_coca ? "CoCa" : "SigLIP");
    if (cfg->vqa.hidden < 0) return vlt_error_set(VLT_ERR_ARG, "VQA classifier: hidden width %d < 0", cfg->vqa.hidden);
    if (cfg->vqa.fusion_layers < 0 || cfg->vqa.fusion_layers > VLT_MAX_LAYERS)
        return vlt_error_set(VLT_ERR_ARG, "VQA classifier: %d fusion layers (0..%d)", cfg->vqa.fusion_layers, VLT_MAX_LAYERS);
    VLT_TRY(vlt_clip_init(&m->clip, cfg, seed));
    int D = cfg->text.width, Wv = cfg->vision.width;
    int C = cfg->vqa.fusion_layers ? D : 2 * cfg->embed_dim, H = cfg->vqa.hidden > 0 ? cfg->vqa.hidden : 2 * C;
    int N = cfg->vqa.n_answers;
    m->n_answers = N;
    m->hidden = H;
    m->fusion_layers = cfg->vqa.fusion_layers;
    vlt_params *p = &m->clip.params;
    if (m->fusion_layers) {
        m->img_proj_w = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "fusion.image_proj.weight", 2, VLT_SHAPE(D, Wv));
        m->img_proj_b = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "fusion.image_proj.bias", 1, VLT_SHAPE(D));
        m->txt_proj_w = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "fusion.text_proj.weight", 2, VLT_SHAPE(D, D));
        m->txt_proj_b = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "fusion.text_proj.bias", 1, VLT_SHAPE(D));
        m->modality = vlt_params_new(p, VLT_VQA_HEAD_PREFIX "fusion.modality", 2, VLT_SHAPE(2, D));
        // heads of width 64 where the width allows (open_clip's text towers), else 32, else one
        int heads = D % 64 == 0 ? D / 64 : D % 32 == 0 ? D / 32 : 1;
        vlt_status s = m->img_proj_w && m->img_proj_b && m->txt_proj_w && m->txt_proj_b && m->modality
                           ? vlt_transformer_init(&m->fusion, p, VLT_VQA_HEAD_PREFIX "fusion", D, m->fusion_layers, heads,
                                                  4 * D, VLT_ACT_GELU, VLT_INIT_TORCH_DEFAULT, seed)
                           : vlt_error_code();
        if (s != VLT_OK) {
            vlt_clip_free(&m->clip);
            return s;
        }
        vlt_init_uniform(m->img_proj_w, 1.0f / sqrtf((float)Wv), seed);
        vlt_init_uniform(m->img_proj_b, 1.0f / sqrtf((float)Wv), seed);
        vlt_init_uniform(m->txt_proj_w, 1.0f / sqrtf((float)D), seed);
        vlt_init_uniform(m->txt_proj_b, 1.0f / sqrtf((float)D), seed);
        vlt_init_normal(m->modality, 0.02f, seed);
    }
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

// The MLP on fused features x (B, C).
static vlt_tensor *mlp(vlt_vqa_classifier *m, vlt_tensor *x) {
    x = vlt_layernorm(x, m->ln_w, m->ln_b, 1e-5f);
    return vlt_linear(vlt_gelu(vlt_linear(x, m->fc1_w, m->fc1_b)), m->fc2_w, m->fc2_b);   // (B, N)
}

vlt_tensor *vlt_vqa_head_forward(vlt_vqa_classifier *m, vlt_tensor *img, vlt_tensor *txt) {
    if (!img || !txt) return NULL;
    if (img->shape[0] != txt->shape[0]) {
        vlt_error_set(VLT_ERR_SHAPE, "VQA classifier: %d images but %d questions in the batch", img->shape[0], txt->shape[0]);
        return NULL;
    }
    vlt_tensor *parts[2] = {img, txt};
    return mlp(m, vlt_concat(parts, 2, 1));   // (B, 2E) -> (B, N)
}

// Row r of the modality table as a (D) vector (broadcast over the tokens it is added to).
static vlt_tensor *modality(vlt_vqa_classifier *m, int r) {
    return vlt_reshape(vlt_slice(m->modality, 0, r, 1), 1, VLT_SHAPE(m->modality->shape[1]));
}

vlt_tensor *vlt_vqa_fusion_forward(vlt_vqa_classifier *m, vlt_tensor *img_tokens, vlt_tensor *txt_tokens,
                                   vlt_tensor *question_ids) {
    if (!img_tokens || !txt_tokens || !question_ids) return NULL;
    int B = img_tokens->shape[0], Ni = img_tokens->shape[1], T = txt_tokens->shape[1];
    if (txt_tokens->shape[0] != B || question_ids->shape[0] != B || question_ids->shape[1] != T) {
        vlt_error_set(VLT_ERR_SHAPE, "VQA fusion: %d images, %d question token rows of %d, ids (%d, %d)", B,
                      txt_tokens->shape[0], T, question_ids->shape[0], question_ids->shape[1]);
        return NULL;
    }
    // The question's padding is masked as a key (an image token never is). The mask is built on
    // the host from the ids; ids on the GPU come back first (one small synchronising copy of B·T
    // ints: no device op compares i32), and the mask and the class-token index go to the model's
    // device as step activations. vlt_vqa_set_device_path takes that route on the host too.
    const vlt_device dev = m->modality->device;
    vlt_tensor *ids_h = question_ids;
    if (question_ids->device != VLT_CPU || g_device_path) {
        ids_h = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, question_ids->shape);
        if (!ids_h || vlt_tensor_copy(ids_h, question_ids) != VLT_OK) return NULL;
    }
    if (ids_h->dtype != VLT_I32) {
        vlt_error_set(VLT_ERR_SHAPE, "VQA fusion: the question ids must be i32");
        return NULL;
    }
    vlt_tensor *pad = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, Ni + T));
    vlt_tensor *cls = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 1, VLT_SHAPE(B));   // zeros: the image's class token
    if (!pad || !cls) return NULL;
    int pad_id = m->clip.text.pad_id;
    for (int b = 0; b < B; b++) {
        vlt_i32(cls)[b] = 0;
        for (int j = 0; j < Ni + T; j++)
            vlt_i32(pad)[(size_t)b * (Ni + T) + j] = j >= Ni && vlt_i32(ids_h)[(size_t)b * T + j - Ni] == pad_id;
    }
    if (dev != VLT_CPU || g_device_path) {
        pad = vlt_to_device(pad, dev);
        cls = vlt_to_device(cls, dev);
        if (!pad || !cls) return NULL;
    }
    vlt_tensor *xi = vlt_add(vlt_linear(img_tokens, m->img_proj_w, m->img_proj_b), modality(m, 0));   // (B, Ni, D)
    vlt_tensor *xt = vlt_add(vlt_linear(txt_tokens, m->txt_proj_w, m->txt_proj_b), modality(m, 1));   // (B, T, D)
    vlt_tensor *parts[2] = {xi, xt};
    vlt_tensor *f = vlt_transformer_forward(&m->fusion, vlt_concat(parts, 2, 1), false, pad);          // (B, Ni+T, D)
    return mlp(m, vlt_gather_rows(f, cls));
}

vlt_tensor *vlt_vqa_classifier_logits(vlt_vqa_classifier *m, vlt_tensor *images, vlt_tensor *question_ids) {
    if (images && question_ids && images->shape[0] != question_ids->shape[0]) {
        vlt_error_set(VLT_ERR_SHAPE, "VQA classifier: %d images but %d questions in the batch", images->shape[0],
                      question_ids->shape[0]);
        return NULL;
    }
    if (m->fusion_layers)
        return vlt_vqa_fusion_forward(m, vlt_vit_tokens(&m->clip.visual, images),
                                      vlt_text_encoder_tokens(&m->clip.text, question_ids), question_ids);
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
