// vit.h — open_clip's VisionTransformer (class-token pooling): parameters under "visual.".
//
//   images (B, 3, S, S) -> patches (B, G², 3·P²) · conv1ᵀ -> (B, G², W)
//   [class_embedding; patches] + positional_embedding -> ln_pre -> transformer -> ln_post
//   -> token 0 (B, W) · proj (W, E) -> (B, E)
// The patch embedding is conv1 (W, 3, P, P, no bias) applied as one matmul over the patches.
#ifndef VLT_VIT_H
#define VLT_VIT_H

#include "layers/model_config.h"
#include "layers/transformer.h"

typedef struct {
    int image_size, patch_size, grid, width, embed_dim;
    vlt_tensor *conv1_w;           // (W, 3, P, P)
    vlt_tensor *class_embedding;   // (W)
    vlt_tensor *pos_embedding;     // (G² + 1, W)
    vlt_tensor *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b;
    vlt_tensor *proj;              // (W, E)
    vlt_transformer transformer;
} vlt_vit;

// prefix: "visual". Parameters are created in `table` and initialized as open_clip's.
vlt_status vlt_vit_init(vlt_vit *v, vlt_params *table, const char *prefix, const vlt_vision_cfg *cfg, int embed_dim,
                        vlt_activation act, uint64_t seed);
// images (B, 3, S, S) f32 -> tokens after ln_post (B, G² + 1, W); the pooled feature is token 0.
vlt_tensor *vlt_vit_tokens(vlt_vit *v, vlt_tensor *images);
// images -> (B, E) unnormalized image features.
vlt_tensor *vlt_vit_forward(vlt_vit *v, vlt_tensor *images);

// (B, 3, S, S) -> (B, (S/P)², 3·P·P) with each patch flattened as (c, y, x): conv1's layout.
vlt_tensor *vlt_patchify(vlt_tensor *images, int patch);

#endif
