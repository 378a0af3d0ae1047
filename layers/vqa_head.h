// vqa_head.h — the VQA classifier on CLIP towers (issue 16, "the light answer head"): the image
// and the question go through open_clip's two towers (parameter names unchanged, so open_clip
// weights load as they are), their pooled, projected features (B, E) each are concatenated, and
// an MLP scores every answer of the answer vocabulary:
//
//   x = [f_img ; f_question]                       (B, 2E)
//   logits = fc2(GELU(fc1(LayerNorm(x))))          (B, N)  N = answers in the vocabulary
//
// (the layernorm puts the two towers' features, whose scales differ, on one footing). With
// cfg->vqa.fusion_layers = L > 0 the token sequences are fused instead (model.vqa_fusion: tokens):
// the image tokens after ln_post (B, 1 + G², W_v) and the question tokens after ln_final (B, T,
// W_t), each projected to D = W_t and given a learned modality embedding, concatenated and run
// through an L-layer transformer (bidirectional, the question's padding masked); x is its output
// at the image's class token (B, D). Pooled features keep one vector per tower, so a question
// about one object among several ("what colour is the circle?") must be answerable from it; the
// token fusion lets the question attend to the patches. Trained
// with binary cross-entropy with logits against the VQAv2 soft scores (the standard VQAv2 recipe
// of Teney et al. / pythia): each answer's target is the accuracy the official metric gives it,
// min(1, count/3) averaged over the ten leave-one-out subsets of the annotators' answers; the loss
// sums over the answers and averages over the questions. The answer is the argmax.
//
// The head's parameters: vqa_head.ln.weight/bias (2E), vqa_head.fc1.weight (H, 2E) / bias (H),
// vqa_head.fc2.weight (N, H) / bias (N), H = cfg->vqa.hidden (0: twice x's width); with token
// fusion also vqa_head.fusion.{image_proj,text_proj}.{weight,bias}, vqa_head.fusion.modality
// (2, D) and the blocks vqa_head.fusion.resblocks.<i>.* (open_clip's block names). They are the
// only parameters a CLIP checkpoint lacks (VLT_VQA_HEAD_PREFIX).
#ifndef VLT_VQA_HEAD_H
#define VLT_VQA_HEAD_H

#include "layers/clip.h"
#include "layers/transformer.h"

#define VLT_VQA_HEAD_PREFIX "vqa_head."

typedef struct {
    vlt_clip clip;              // the towers and logit_scale (unused by the loss, kept so that a CLIP
                                // checkpoint loads with every key and the towers export as a CLIP)
    int n_answers, hidden;
    int fusion_layers;          // 0: pooled features concatenated; > 0: token fusion
    vlt_tensor *img_proj_w, *img_proj_b, *txt_proj_w, *txt_proj_b;   // (D, W_v), (D), (D, W_t), (D)
    vlt_tensor *modality;       // (2, D): added to the image tokens (row 0) and the question's (row 1)
    vlt_transformer fusion;     // L blocks of width D
    vlt_tensor *ln_w, *ln_b;    // (2E)
    vlt_tensor *fc1_w, *fc1_b;  // (H, 2E), (H)
    vlt_tensor *fc2_w, *fc2_b;  // (N, H), (N)
} vlt_vqa_classifier;

// cfg->vqa.n_answers > 0 answers; CLIP towers (a CoCa or SigLIP config is refused by name).
vlt_status vlt_vqa_classifier_init(vlt_vqa_classifier *m, const vlt_model_cfg *cfg, uint64_t seed);
void vlt_vqa_classifier_free(vlt_vqa_classifier *m);
// images (B, 3, S, S), question ids (B, T) -> answer logits (B, N).
vlt_tensor *vlt_vqa_classifier_logits(vlt_vqa_classifier *m, vlt_tensor *images, vlt_tensor *question_ids);
// The head alone on pooled features img, txt (B, E) each -> (B, N) (for the gradient check).
vlt_tensor *vlt_vqa_head_forward(vlt_vqa_classifier *m, vlt_tensor *img, vlt_tensor *txt);
// Token fusion (fusion_layers > 0) on the towers' tokens: image (B, Ni, W_v), question (B, T, W_t)
// with its ids (B, T, i32, on the host or the model's device: the padding mask is built on the
// host, ids on the GPU are copied back for it) -> (B, N).
vlt_tensor *vlt_vqa_fusion_forward(vlt_vqa_classifier *m, vlt_tensor *img_tokens, vlt_tensor *txt_tokens,
                                   vlt_tensor *question_ids);
// Binary cross-entropy with logits against soft targets (B, N) in [0, 1], summed over the answers
// and averaged over the rows: (1/B) Σ_b Σ_a [max(x,0) - x·y + log(1 + e^-|x|)], written as
// x·(1 - y) - log σ(x), from ops that have CPU and CUDA kernels and checked backward.
vlt_tensor *vlt_vqa_bce_loss(vlt_tensor *logits, vlt_tensor *targets);
// Tests: a host model takes the GPU's route for the padding mask (the ids copied back, the mask
// and class index copied to the model's device), which must give the host path's bits.
void vlt_vqa_set_device_path(bool on);

#endif
