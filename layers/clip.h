// clip.h — the CLIP model (open_clip's CLIP class): a VisionTransformer under "visual.", a text
// tower at the top level, and logit_scale (0-d, init ln(1/0.07)); the symmetric contrastive
// loss, or the SigLIP loss when the config has init_logit_bias (then also logit_bias).
//
// All parameters live in `params`, named with open_clip's state_dict keys, so a safetensors file
// of open_clip's state_dict loads straight in (checkpoints/safetensors.h).
#ifndef VLT_CLIP_H
#define VLT_CLIP_H

#include "layers/model_config.h"
#include "layers/text_encoder.h"
#include "layers/vit.h"

typedef struct {
    vlt_model_cfg cfg;
    vlt_params params;
    vlt_vit visual;
    vlt_text_encoder text;
    vlt_tensor *logit_scale;   // 0-d
    vlt_tensor *logit_bias;    // 0-d, SigLIP only (else NULL)
} vlt_clip;

typedef struct {
    vlt_tensor *loss;          // (1)
    vlt_tensor *image_features, *text_features;   // (B, E), L2-normalized
    vlt_tensor *logits_per_image;                 // (B, B): exp(logit_scale) · img · txtᵀ [+ bias]
} vlt_clip_output;

vlt_status vlt_clip_init(vlt_clip *m, const vlt_model_cfg *cfg, uint64_t seed);
void vlt_clip_free(vlt_clip *m);
vlt_tensor *vlt_clip_encode_image(vlt_clip *m, vlt_tensor *images, bool normalize);   // (B, E)
vlt_tensor *vlt_clip_encode_text(vlt_clip *m, vlt_tensor *ids, bool normalize);      // (B, E)
// Contrastive loss of a batch: images (B, 3, S, S), ids (B, T). Returns VLT_OK and fills out.
vlt_status vlt_clip_forward(vlt_clip *m, vlt_tensor *images, vlt_tensor *ids, vlt_clip_output *out);
// The loss from normalized features (also used with all-gathered features in data parallel).
// SigLIP's signs (B, N) on `dev`: +1 at the positive pairs (i, off + i), -1 elsewhere.
vlt_tensor *vlt_siglip_signs(int B, int N, int off, vlt_device dev);
vlt_tensor *vlt_clip_loss(vlt_tensor *img, vlt_tensor *txt, vlt_tensor *logit_scale, vlt_tensor *logit_bias,
                          vlt_tensor **logits_out);
// After every optimizer step: logit_scale clamped to [0, ln 100] (as open_clip's training loop).
// vlt_logit_scale_clamp does it to any 0-d log-scale parameter on any device (CoCa's too).
void vlt_logit_scale_clamp(vlt_tensor *logit_scale);
void vlt_clip_clamp_logit_scale(vlt_clip *m);
// Weight-decay mask as open_clip's training script: no decay for parameters with fewer than two
// dims or with "bn", "ln", "bias" or "logit_scale" in the name; decay for the rest.
void vlt_clip_decay_mask(const vlt_params *p, bool *decay);

#endif
