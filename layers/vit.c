// vit.c — VisionTransformer (see vit.h).
#include "layers/vit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static vlt_tensor *new_param(vlt_params *t, const char *prefix, const char *name, int ndim, const int *shape) {
    char full[96];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    return vlt_params_new(t, full, ndim, shape);
}

vlt_status vlt_vit_init(vlt_vit *v, vlt_params *table, const char *prefix, const vlt_vision_cfg *cfg, int embed_dim,
                        vlt_activation act, uint64_t seed) {
    memset(v, 0, sizeof *v);
    int W = cfg->width, P = cfg->patch_size, G = cfg->image_size / cfg->patch_size;
    v->image_size = cfg->image_size;
    v->patch_size = P;
    v->grid = G;
    v->width = W;
    v->embed_dim = embed_dim;
    v->class_embedding = new_param(table, prefix, "class_embedding", 1, VLT_SHAPE(W));
    v->pos_embedding = new_param(table, prefix, "positional_embedding", 2, VLT_SHAPE(G * G + 1, W));
    v->proj = new_param(table, prefix, "proj", 2, VLT_SHAPE(cfg->attentional_pool ? embed_dim : W, embed_dim));
    v->conv1_w = new_param(table, prefix, "conv1.weight", 4, VLT_SHAPE(W, 3, P, P));
    v->ln_pre_w = new_param(table, prefix, "ln_pre.weight", 1, VLT_SHAPE(W));
    v->ln_pre_b = new_param(table, prefix, "ln_pre.bias", 1, VLT_SHAPE(W));
    if (!v->class_embedding || !v->pos_embedding || !v->proj || !v->conv1_w || !v->ln_pre_w || !v->ln_pre_b)
        return vlt_error_code();
    char tp[96];
    snprintf(tp, sizeof tp, "%s.transformer", prefix);
    VLT_TRY(vlt_transformer_init(&v->transformer, table, tp, W, cfg->layers, W / cfg->head_width,
                                 (int)(W * cfg->mlp_ratio), act, VLT_INIT_TORCH_DEFAULT, seed));
    int pool_dim = W;
    if (cfg->attentional_pool) {
        char ap[96];
        snprintf(ap, sizeof ap, "%s.attn_pool", prefix);
        v->has_attn_pool = true;
        pool_dim = embed_dim;
        VLT_TRY(vlt_attn_pool_init(&v->attn_pool, table, ap, embed_dim, W, cfg->attn_pooler_heads,
                                   cfg->attn_pooler_queries, seed));
    }
    v->ln_post_w = new_param(table, prefix, "ln_post.weight", 1, VLT_SHAPE(pool_dim));
    v->ln_post_b = new_param(table, prefix, "ln_post.bias", 1, VLT_SHAPE(pool_dim));
    if (!v->ln_post_w || !v->ln_post_b) return vlt_error_code();
    // open_clip: scale · randn for the embeddings and the projection; conv1 as torch's default.
    float scale = 1.0f / sqrtf((float)W);
    vlt_init_normal(v->class_embedding, scale, seed);
    vlt_init_normal(v->pos_embedding, scale, seed);
    vlt_init_normal(v->proj, scale, seed);
    vlt_init_uniform(v->conv1_w, 1.0f / sqrtf(3.0f * P * P), seed);
    vlt_init_const(v->ln_pre_w, 1.0f);
    vlt_init_const(v->ln_post_w, 1.0f);
    return VLT_OK;
}

static vlt_tensor *vit_tokens(vlt_vit *v, vlt_tensor *images, int probe_layer, vlt_tensor **probe);

vlt_tensor *vlt_vit_tokens(vlt_vit *v, vlt_tensor *images) { return vit_tokens(v, images, -1, NULL); }

vlt_tensor *vlt_vit_encode_probe(vlt_vit *v, vlt_tensor *images, int layer, vlt_tensor **probe) {
    *probe = NULL;
    if (layer < 0 || layer >= v->transformer.layers) {
        vlt_error_set(VLT_ERR_ARG, "vit: probe layer %d is outside 0..%d", layer, v->transformer.layers - 1);
        return NULL;
    }
    vlt_tensor *x = vit_tokens(v, images, layer, probe);
    if (!x) return NULL;
    int B = x->shape[0], D = x->shape[2];
    return vlt_matmul(vlt_reshape(vlt_slice(x, 1, 0, 1), 2, VLT_SHAPE(B, D)), v->proj, false, false);
}

// probe_layer >= 0: *probe = the normalized tokens entering that block's attention (B, G² + 1, W),
// a tape tensor whose gradient backward fills (relevance maps).
static vlt_tensor *vit_tokens(vlt_vit *v, vlt_tensor *images, int probe_layer, vlt_tensor **probe) {
    if (!images) return NULL;
    if (images->ndim != 4 || images->shape[2] != v->image_size || images->shape[3] != v->image_size) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "vit: images %s must be (B, 3, %d, %d)", vlt_shape_str(images, s, sizeof s),
                      v->image_size, v->image_size);
        return NULL;
    }
    int B = images->shape[0], W = v->width, P = v->patch_size;
    vlt_tensor *w2d = vlt_reshape(v->conv1_w, 2, VLT_SHAPE(W, 3 * P * P));
    vlt_tensor *x = vlt_linear(vlt_patchify(images, P), w2d, NULL);            // (B, G², W)
    vlt_tensor *cls = vlt_add(vlt_full(3, VLT_SHAPE(B, 1, W), 0.0f), v->class_embedding);  // (B, 1, W)
    x = vlt_concat((vlt_tensor *[]){cls, x}, 2, 1);                               // (B, G² + 1, W)
    x = vlt_add(x, v->pos_embedding);
    x = vlt_layernorm(x, v->ln_pre_w, v->ln_pre_b, 1e-5f);
    for (int l = 0; l < v->transformer.layers; l++)
        x = vlt_resblock_forward_probe(&v->transformer.blocks[l], x, false, NULL, l == probe_layer ? probe : NULL);
    if (v->has_attn_pool) x = vlt_attn_pool_forward(&v->attn_pool, x);                  // (B, Q, E)
    return vlt_layernorm(x, v->ln_post_w, v->ln_post_b, 1e-5f);
}

vlt_tensor *vlt_vit_encode(vlt_vit *v, vlt_tensor *images, vlt_tensor **tokens) {
    vlt_tensor *x = vlt_vit_tokens(v, images);
    if (tokens) *tokens = NULL;
    if (!x) return NULL;
    int B = x->shape[0], T = x->shape[1], D = x->shape[2];
    if (tokens && T > 1) *tokens = vlt_slice(x, 1, 1, T - 1);
    vlt_tensor *pooled = vlt_reshape(vlt_slice(x, 1, 0, 1), 2, VLT_SHAPE(B, D));      // token 0
    return vlt_matmul(pooled, v->proj, false, false);
}

vlt_tensor *vlt_vit_forward(vlt_vit *v, vlt_tensor *images) { return vlt_vit_encode(v, images, NULL); }
