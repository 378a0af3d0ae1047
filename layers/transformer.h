// transformer.h — the pre-LN residual attention block and a stack of them, with open_clip's
// parameter names (`<prefix>.ln_1.weight`, `<prefix>.attn.in_proj_weight`, …,
// `<prefix>.mlp.c_fc.weight`, `<prefix>.mlp.c_proj.bias`), built from autograd ops.
//
//   x = x + out_proj(attention(split_heads(in_proj(ln_1(x)))))     x: (B, T, W)
//   x = x + c_proj(act(c_fc(ln_2(x))))                             act: GELU or QuickGELU
//
// Init (from the counter RNG, each tensor's stream keyed by its name), two styles as open_clip:
//  VLT_INIT_SCALED_NORMAL (text towers): in_proj N(0, W^-1/2), out_proj and c_proj
//    N(0, W^-1/2·(2·layers)^-1/2), c_fc N(0, (2W)^-1/2); MLP biases as torch's Linear default.
//  VLT_INIT_TORCH_DEFAULT (open_clip's ViT leaves PyTorch's module defaults): in_proj Xavier-
//    uniform, out_proj and the MLP Linear U(±fan_in^-1/2) (weights and MLP biases).
// Attention biases start at 0 and norms at (1, 0) in both.
#ifndef VLT_TRANSFORMER_H
#define VLT_TRANSFORMER_H

#include "autograd/ops.h"
#include "autograd/params.h"

typedef enum { VLT_ACT_GELU = 0, VLT_ACT_QUICK_GELU = 1 } vlt_activation;
typedef enum { VLT_INIT_SCALED_NORMAL = 0, VLT_INIT_TORCH_DEFAULT = 1 } vlt_init_style;

// Fills helpers shared by the models: a tensor's stream is keyed by its name.
void vlt_init_normal(vlt_tensor *t, float std, uint64_t seed);
void vlt_init_uniform(vlt_tensor *t, float bound, uint64_t seed);
void vlt_init_const(vlt_tensor *t, float v);
// While on (this thread), vlt_init_normal and vlt_init_uniform draw nothing and leave their
// tensors at zero: a model built so has every name and shape of its table but not its values
// (vlt_model_create_shapes: `vlt model list`'s parameter counts without the seconds of drawing).
void vlt_init_set_skip(bool skip);
bool vlt_init_skipped(void);

#define VLT_RESBLOCK_NPARAMS 12

typedef struct {
    int width, heads, mlp_width;
    vlt_activation act;
    vlt_tensor *ln_1_w, *ln_1_b;
    vlt_tensor *in_proj_w, *in_proj_b;    // (3W, W), (3W): q, k, v stacked
    vlt_tensor *out_proj_w, *out_proj_b;  // (W, W), (W)
    vlt_tensor *ln_2_w, *ln_2_b;
    vlt_tensor *c_fc_w, *c_fc_b;          // (M, W), (M)
    vlt_tensor *c_proj_w, *c_proj_b;      // (W, M), (W)
} vlt_resblock;

// Creates the block's parameters in `table` (which owns them) under `prefix`, e.g.
// "transformer.resblocks.3". n_layers scales the output projections' init.
vlt_status vlt_resblock_init(vlt_resblock *b, vlt_params *table, const char *prefix, int width, int heads,
                             int mlp_width, vlt_activation act, int n_layers, vlt_init_style init, uint64_t seed);
// Writes the block's VLT_RESBLOCK_NPARAMS parameters to out (open_clip order).
void vlt_resblock_params(vlt_resblock *b, vlt_tensor **out);
// x (B, T, W) -> (B, T, W). key_pad (B, T) i32 or NULL.
vlt_tensor *vlt_resblock_forward(vlt_resblock *b, vlt_tensor *x, bool causal, vlt_tensor *key_pad);
// The same, and *attn_in = the normalized tokens entering the attention (ln_1's output, f32), a
// tape tensor whose gradient backward fills (relevance maps).
vlt_tensor *vlt_resblock_forward_probe(vlt_resblock *b, vlt_tensor *x, bool causal, vlt_tensor *key_pad,
                                       vlt_tensor **attn_in);

// A stack of blocks: `<prefix>.resblocks.<i>.…` (open_clip's Transformer).
#define VLT_MAX_LAYERS 48
typedef struct {
    int width, layers, heads;
    vlt_resblock blocks[VLT_MAX_LAYERS];
} vlt_transformer;

vlt_status vlt_transformer_init(vlt_transformer *t, vlt_params *table, const char *prefix, int width, int layers,
                                int heads, int mlp_width, vlt_activation act, vlt_init_style init, uint64_t seed);
vlt_tensor *vlt_transformer_forward(vlt_transformer *t, vlt_tensor *x, bool causal, vlt_tensor *key_pad);

// Multi-head self-attention with a packed in-projection (open_clip's nn.MultiheadAttention):
// x (B, T, W) -> (B, T, W); with `residual` (NULL for none) residual + attention, the add folded
// into the out-projection (vlt_linear_residual).
vlt_tensor *vlt_mha_forward(vlt_tensor *x, vlt_tensor *in_w, vlt_tensor *in_b, vlt_tensor *out_w, vlt_tensor *out_b,
                            int heads, bool causal, vlt_tensor *key_pad, vlt_tensor *residual);

#endif
