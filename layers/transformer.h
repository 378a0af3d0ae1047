// transformer.h — the pre-LN residual attention block and a stack of them, with open_clip's
// parameter names (`<prefix>.ln_1.weight`, `<prefix>.attn.in_proj_weight`, …,
// `<prefix>.mlp.c_fc.weight`, `<prefix>.mlp.c_proj.bias`), built from autograd ops.
//
//   x = x + out_proj(attention(split_heads(in_proj(ln_1(x)))))     x: (B, T, W)
//   x = x + c_proj(act(c_fc(ln_2(x))))                             act: GELU or QuickGELU
//
// Init (from the counter RNG): in_proj N(0, W^-1/2), out_proj N(0, (2·layers·W)^-1/2) as
// open_clip's text tower, c_fc N(0, (2W)^-1/2), c_proj as out_proj; biases 0, norms (1, 0).
#ifndef VLT_TRANSFORMER_H
#define VLT_TRANSFORMER_H

#include "autograd/ops.h"
#include "autograd/params.h"

typedef enum { VLT_ACT_GELU = 0, VLT_ACT_QUICK_GELU = 1 } vlt_activation;

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
                             int mlp_width, vlt_activation act, int n_layers, uint64_t seed);
// Writes the block's VLT_RESBLOCK_NPARAMS parameters to out (open_clip order).
void vlt_resblock_params(vlt_resblock *b, vlt_tensor **out);
// x (B, T, W) -> (B, T, W). key_pad (B, T) i32 or NULL.
vlt_tensor *vlt_resblock_forward(vlt_resblock *b, vlt_tensor *x, bool causal, vlt_tensor *key_pad);

// A stack of blocks: `<prefix>.resblocks.<i>.…` (open_clip's Transformer).
#define VLT_MAX_LAYERS 48
typedef struct {
    int width, layers, heads;
    vlt_resblock blocks[VLT_MAX_LAYERS];
} vlt_transformer;

vlt_status vlt_transformer_init(vlt_transformer *t, vlt_params *table, const char *prefix, int width, int layers,
                                int heads, int mlp_width, vlt_activation act, uint64_t seed);
vlt_tensor *vlt_transformer_forward(vlt_transformer *t, vlt_tensor *x, bool causal, vlt_tensor *key_pad);

// Multi-head self-attention with a packed in-projection (open_clip's nn.MultiheadAttention).
vlt_tensor *vlt_mha_forward(vlt_tensor *x, vlt_tensor *in_w, vlt_tensor *in_b, vlt_tensor *out_w, vlt_tensor *out_b,
                            int heads, bool causal, vlt_tensor *key_pad);

#endif
