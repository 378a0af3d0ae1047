// coca.h — the CoCa model (open_clip's CoCa): a vision tower with an attentional pooler under
// "visual.", a text tower with an appended cls token under "text.", a multimodal text decoder
// under "text_decoder." and logit_scale (0-d, init ln(1/0.07)); its loss (open_clip's CoCaLoss).
//
//   images (B, 3, S, S) -> visual -> image_features (B, E), image_embs (B, Q-1, E)
//   ids (B, T)          -> text   -> text_features (B, E), token_embs (B, T, W) (before ln_final)
//   logits = text_decoder(image_embs, token_embs[:, :T-1])   (B, T-1, V)   (teacher forcing)
//   decoder, per layer l: x = resblocks.l(x, causal); x = cross_attn.l(x, image_embs)
//     cross_attn.l: x + attn(ln_1(x), ln_1_kv(img), ln_1_kv(img)), then x + mlp(ln_2(x))
//   then ln_final and · text_projection (W, V)
//   loss = clip_w · contrastive(image_features, text_features) + cap_w · CE(logits, ids[:, 1:])
//     CE ignores pad_id labels, optional label smoothing; defaults cap_w 2.0, clip_w 1.0.
// The decoder's width must equal embed_dim (the image tokens' width) and the text width.
// Init as open_clip where open_clip initializes (towers as CLIP; the decoder's blocks keep
// PyTorch's module defaults); the decoder's text_projection, which open_clip leaves as
// torch.empty, gets N(0, W^-1/2).
#ifndef VLT_COCA_H
#define VLT_COCA_H

#include "layers/attn_pool.h"
#include "layers/model_config.h"
#include "layers/text_encoder.h"
#include "layers/vit.h"

// A cross-attention block of the decoder: "text_decoder.cross_attn.<l>".
typedef struct {
    int width;
    vlt_activation act;
    vlt_tensor *ln_1_w, *ln_1_b, *ln_1_kv_w, *ln_1_kv_b, *ln_2_w, *ln_2_b;
    vlt_mha_weights attn;
    vlt_tensor *c_fc_w, *c_fc_b, *c_proj_w, *c_proj_b;
} vlt_cross_block;

typedef struct {
    int width, layers, heads, context_length, vocab_size;
    vlt_transformer self_blocks;            // "text_decoder.resblocks.<l>"
    vlt_cross_block cross[VLT_MAX_LAYERS];  // "text_decoder.cross_attn.<l>"
    vlt_tensor *ln_final_w, *ln_final_b;    // (W)
    vlt_tensor *text_projection;            // (W, V)
} vlt_text_decoder;

typedef struct {
    vlt_model_cfg cfg;
    vlt_params params;
    vlt_vit visual;
    vlt_text_encoder text;
    vlt_text_decoder decoder;
    vlt_tensor *logit_scale;   // 0-d
} vlt_coca;

typedef struct {
    float caption_loss_weight;   // 2.0 (open_clip's default)
    float clip_loss_weight;      // 1.0
    float label_smoothing;       // 0 (open_clip's CoCaLoss has none)
    // Data parallel (the trainer sets these; one process leaves the defaults):
    float caption_scale;         // multiplies the caption cross-entropy: this rank's share of the
                                 // global mean over counted tokens (1)
    // The contrastive loss of normalized features (NULL: vlt_clip_loss on this batch; data
    // parallel: the loss over the all-gathered global batch). logit_bias: NULL, or SigLIP's.
    // vlt_model_loss_forward uses it for CLIP too.
    vlt_tensor *(*contrastive)(void *ctx, vlt_tensor *img, vlt_tensor *txt, vlt_tensor *logit_scale,
                               vlt_tensor *logit_bias);
    void *contrastive_ctx;
} vlt_coca_loss_cfg;

#define VLT_COCA_LOSS_DEFAULTS ((vlt_coca_loss_cfg){2.0f, 1.0f, 0.0f, 1.0f, NULL, NULL})

typedef struct {
    vlt_tensor *loss;                              // (1): contrastive + caption
    vlt_tensor *contrastive_loss, *caption_loss;   // (1) each, already weighted
    vlt_tensor *image_features, *text_features;    // (B, E), L2-normalized
    vlt_tensor *image_embs;                        // (B, Q-1, E)
    vlt_tensor *logits;                            // (B, T-1, V)
    vlt_tensor *logits_per_image;                  // (B, B)
} vlt_coca_output;

// cfg must be a CoCa config (cfg->is_coca, vision attentional_pool, text embed_cls).
vlt_status vlt_coca_init(vlt_coca *m, const vlt_model_cfg *cfg, uint64_t seed);
void vlt_coca_free(vlt_coca *m);
// images -> image_features (B, E) [normalized if asked], *image_embs = (B, Q-1, E) (may be NULL)
vlt_tensor *vlt_coca_encode_image(vlt_coca *m, vlt_tensor *images, bool normalize, vlt_tensor **image_embs);
vlt_tensor *vlt_coca_encode_text(vlt_coca *m, vlt_tensor *ids, bool normalize, vlt_tensor **token_embs);
// The decoder: image_embs (B, Q-1, E), text_embs (B, T, W) -> logits (B, T, V).
vlt_tensor *vlt_coca_decode(vlt_coca *m, vlt_tensor *image_embs, vlt_tensor *text_embs);
// Next-token logits of every position of ids (B, T) given image_embs: (B, T, V) (open_clip's
// forward with output_labels=False; used to check generation).
vlt_tensor *vlt_coca_caption_logits(vlt_coca *m, vlt_tensor *image_embs, vlt_tensor *ids);
// A training batch: images (B, 3, S, S), ids (B, T) with T >= 2.
vlt_status vlt_coca_forward(vlt_coca *m, vlt_tensor *images, vlt_tensor *ids, vlt_coca_loss_cfg lc,
                            vlt_coca_output *out);
// The device formulation (coca.c, generate.c): the batch's ids read back once for the pad mask
// and labels, which go to the model's device; generation's cache and token choice on the device.
// On for a model on the GPU; vlt_coca_set_device_path(true) takes it on a host model too (tests:
// it must give the host path's bits).
void vlt_coca_set_device_path(bool on);
bool vlt_coca_device_form(const vlt_coca *m);
vlt_device vlt_coca_device(const vlt_coca *m);   // its parameters'
// After every optimizer step: logit_scale clamped to [0, ln 100].
void vlt_coca_clamp_logit_scale(vlt_coca *m);

// One cross-attention block with the image keys/values given (B, H, Tk, Dh) each.
vlt_tensor *vlt_cross_block_forward_kv(const vlt_cross_block *c, vlt_tensor *x, vlt_tensor *k, vlt_tensor *v);
// The block's keys/values of the image tokens (ln_1_kv then the k/v projections).
vlt_status vlt_cross_block_kv(const vlt_cross_block *c, vlt_tensor *image_embs, vlt_tensor **k, vlt_tensor **v);
// The MLP half of a pre-LN block: x + c_proj(act(c_fc(ln_2(x)))).
vlt_tensor *vlt_block_mlp(vlt_tensor *x, vlt_tensor *ln_w, vlt_tensor *ln_b, vlt_tensor *fc_w, vlt_tensor *fc_b,
                          vlt_tensor *proj_w, vlt_tensor *proj_b, vlt_activation act);

#endif
