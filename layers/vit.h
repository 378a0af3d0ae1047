// vit.h — open_clip's VisionTransformer (class-token pooling): parameters under "visual.".
//
//   images (B, 3, S, S) -> patches (B, G², 3·P²) · conv1ᵀ -> (B, G², W)
//   [class_embedding; patches] + positional_embedding -> ln_pre -> transformer -> ln_post
//   -> token 0 (B, W) · proj (W, E) -> (B, E)
// The patch embedding is conv1 (W, 3, P, P, no bias) applied as one matmul over the patches.
//
// With cfg->attentional_pool (CoCa, open_clip's original CoCa setup, "does not match paper"):
//   transformer output (B, G² + 1, W) -> attn_pool (Q queries, d_model E, context W) (B, Q, E)
//   -> ln_post (E) -> pooled = token 0 · proj (E, E) -> (B, E); image tokens = tokens 1.. (B, Q-1, E)
// (the image tokens the multimodal decoder attends to are not projected).
#ifndef VLT_VIT_H
#define VLT_VIT_H

#include "layers/attn_pool.h"
#include "layers/model_config.h"
#include "layers/transformer.h"

typedef struct {
    int image_size, patch_size, grid, width, embed_dim;
    vlt_tensor *conv1_w;           // (W, 3, P, P)
    vlt_tensor *class_embedding;   // (W)
    vlt_tensor *pos_embedding;     // (G² + 1, W)
    vlt_tensor *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b;   // ln_post: (W), or (E) with attn_pool
    vlt_tensor *proj;              // (W, E), or (E, E) with attn_pool
    vlt_transformer transformer;
    bool has_attn_pool;
    vlt_attn_pool attn_pool;       // "<prefix>.attn_pool" (CoCa)
} vlt_vit;

// prefix: "visual". Parameters are created in `table` and initialized as open_clip's.
vlt_status vlt_vit_init(vlt_vit *v, vlt_params *table, const char *prefix, const vlt_vision_cfg *cfg, int embed_dim,
                        vlt_activation act, uint64_t seed);
// images (B, 3, S, S) f32 -> tokens after ln_post (B, G² + 1, W), or with attn_pool the pooled
// queries after ln_post (B, Q, E); the pooled feature is token 0 in both.
vlt_tensor *vlt_vit_tokens(vlt_vit *v, vlt_tensor *images);
// images -> (B, E) unnormalized image features.
vlt_tensor *vlt_vit_forward(vlt_vit *v, vlt_tensor *images);
// The same, and *tokens = every token but the pooled one: (B, G², W), or (B, Q-1, E) with attn_pool
// (open_clip's VisionTransformer with output_tokens).
vlt_tensor *vlt_vit_encode(vlt_vit *v, vlt_tensor *images, vlt_tensor **tokens);

// vlt_vit_forward, and *probe = the normalized tokens entering block `layer`'s attention (ln_1's
// output, (B, G² + 1, W)) (relevance maps: backward from a score fills its gradient).
vlt_tensor *vlt_vit_encode_probe(vlt_vit *v, vlt_tensor *images, int layer, vlt_tensor **probe);

// The patch embedding is conv1 as a product: vlt_patchify (autograd/ops.h) then vlt_linear.

// ---- DeiT / timm VisionTransformer (ALBEF's visual encoder, models/vit.py) ----
// Parameters under <prefix> ("visual_encoder"): cls_token (1, 1, W), pos_embed (1, G² + 1, W),
// patch_embed.proj.weight (W, 3, P, P) and .bias (W), blocks.<i>.{norm1, attn.qkv (3W, W) with
// bias, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm. Pre-LN blocks, LayerNorm eps 1e-6, erf GELU,
// no ln_pre, no projection: the output is every token after `norm`, (B, G² + 1, W).
// timm packs qkv as open_clip's in_proj (q, k, v thirds, heads D columns each), so the attention
// is vlt_mha_forward.
typedef struct {
    vlt_tensor *norm1_w, *norm1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    vlt_tensor *norm2_w, *norm2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} vlt_deit_block;

#define VLT_DEIT_BLOCK_NPARAMS 12

typedef struct {
    int image_size, patch_size, grid, width, depth, heads, mlp_width;
    vlt_tensor *cls_token, *pos_embed, *patch_w, *patch_b, *norm_w, *norm_b;
    vlt_deit_block blocks[VLT_MAX_LAYERS];
} vlt_deit;

// Init as ALBEF's VisionTransformer: N(0, 0.02) for Linear weights, pos_embed and cls_token
// (timm's trunc_normal_ cuts at ±2, i.e. 100 std: plain normal), zero biases, norms (1, 0);
// the patch projection as torch's Conv2d default, U(±(3P²)^-1/2) for weight and bias. fill false
// leaves the weights zero and the norms (1, 0) (a momentum copy, about to be overwritten).
vlt_status vlt_deit_init(vlt_deit *v, vlt_params *table, const char *prefix, int image_size, int patch_size, int width,
                         int depth, int heads, float mlp_ratio, uint64_t seed, bool fill);
// images (B, 3, S, S) -> tokens after norm (B, G² + 1, W).
vlt_tensor *vlt_deit_forward(vlt_deit *v, vlt_tensor *images);
// The trainable tensors in state_dict order (cls_token, pos_embed, patch_embed, blocks, norm);
// returns how many were written (at most cap).
int vlt_deit_params(vlt_deit *v, vlt_tensor **out, int cap);

// ALBEF's interpolate_pos_embed: pos (1 + G0², W) -> (1 + G1², W) into out, the class token kept,
// the grid resized bicubically as torch.nn.functional.interpolate(mode='bicubic',
// align_corners=False) does (A = -0.75, border-clamped taps). Host arrays, row-major.
void vlt_interpolate_pos_embed(const float *pos, int g0, int width, int g1, float *out);

#endif
