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

// ---- DeiT / timm VisionTransformer (ALBEF) ----
static vlt_tensor *deit_ln(vlt_params *table, const char *prefix, const char *name, int W, bool weight) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s.%s", prefix, name, weight ? "weight" : "bias");
    vlt_tensor *t = vlt_params_new(table, full, 1, VLT_SHAPE(W));
    if (t && weight) vlt_init_const(t, 1.0f);
    return t;
}

static vlt_tensor *deit_linear_w(vlt_params *table, const char *prefix, const char *name, int out, int in,
                                 uint64_t seed, bool fill) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s.weight", prefix, name);
    vlt_tensor *t = vlt_params_new(table, full, 2, VLT_SHAPE(out, in));
    if (t && fill) vlt_init_normal(t, 0.02f, seed);
    return t;
}

static vlt_tensor *deit_linear_b(vlt_params *table, const char *prefix, const char *name, int out) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s.bias", prefix, name);
    return vlt_params_new(table, full, 1, VLT_SHAPE(out));
}

vlt_status vlt_deit_init(vlt_deit *v, vlt_params *table, const char *prefix, int image_size, int patch_size, int width,
                         int depth, int heads, float mlp_ratio, uint64_t seed, bool fill) {
    memset(v, 0, sizeof *v);
    if (patch_size < 1 || image_size % patch_size || depth < 1 || depth > VLT_MAX_LAYERS || heads < 1 ||
        width % heads)
        return vlt_error_set(VLT_ERR_ARG, "vit '%s': image %d / patch %d, depth %d (1..%d), width %d / heads %d", prefix,
                             image_size, patch_size, depth, VLT_MAX_LAYERS, width, heads);
    int W = width, P = patch_size, G = image_size / patch_size, M = (int)(W * mlp_ratio);
    *v = (vlt_deit){.image_size = image_size, .patch_size = P, .grid = G, .width = W, .depth = depth,
                    .heads = heads, .mlp_width = M};
    v->cls_token = new_param(table, prefix, "cls_token", 3, VLT_SHAPE(1, 1, W));
    v->pos_embed = new_param(table, prefix, "pos_embed", 3, VLT_SHAPE(1, G * G + 1, W));
    v->patch_w = new_param(table, prefix, "patch_embed.proj.weight", 4, VLT_SHAPE(W, 3, P, P));
    v->patch_b = new_param(table, prefix, "patch_embed.proj.bias", 1, VLT_SHAPE(W));
    if (!v->cls_token || !v->pos_embed || !v->patch_w || !v->patch_b) return vlt_error_code();
    if (fill) {
        vlt_init_normal(v->cls_token, 0.02f, seed);
        vlt_init_normal(v->pos_embed, 0.02f, seed);
        vlt_init_uniform(v->patch_w, 1.0f / sqrtf(3.0f * P * P), seed);
        vlt_init_uniform(v->patch_b, 1.0f / sqrtf(3.0f * P * P), seed);
    }
    for (int l = 0; l < depth; l++) {
        vlt_deit_block *b = &v->blocks[l];
        char bp[96];
        snprintf(bp, sizeof bp, "%s.blocks.%d", prefix, l);
        b->norm1_w = deit_ln(table, bp, "norm1", W, true);
        b->norm1_b = deit_ln(table, bp, "norm1", W, false);
        b->qkv_w = deit_linear_w(table, bp, "attn.qkv", 3 * W, W, seed, fill);
        b->qkv_b = deit_linear_b(table, bp, "attn.qkv", 3 * W);
        b->proj_w = deit_linear_w(table, bp, "attn.proj", W, W, seed, fill);
        b->proj_b = deit_linear_b(table, bp, "attn.proj", W);
        b->norm2_w = deit_ln(table, bp, "norm2", W, true);
        b->norm2_b = deit_ln(table, bp, "norm2", W, false);
        b->fc1_w = deit_linear_w(table, bp, "mlp.fc1", M, W, seed, fill);
        b->fc1_b = deit_linear_b(table, bp, "mlp.fc1", M);
        b->fc2_w = deit_linear_w(table, bp, "mlp.fc2", W, M, seed, fill);
        b->fc2_b = deit_linear_b(table, bp, "mlp.fc2", W);
        vlt_tensor **all = (vlt_tensor **)b;
        for (int i = 0; i < VLT_DEIT_BLOCK_NPARAMS; i++)
            if (!all[i]) return vlt_error_code();
    }
    v->norm_w = deit_ln(table, prefix, "norm", W, true);
    v->norm_b = deit_ln(table, prefix, "norm", W, false);
    return v->norm_w && v->norm_b ? VLT_OK : vlt_error_code();
}

int vlt_deit_params(vlt_deit *v, vlt_tensor **out, int cap) {
    int n = 0;
    vlt_tensor *head[4] = {v->cls_token, v->pos_embed, v->patch_w, v->patch_b};
    for (int i = 0; i < 4; i++, n++)
        if (n < cap) out[n] = head[i];
    for (int l = 0; l < v->depth; l++)
        for (int i = 0; i < VLT_DEIT_BLOCK_NPARAMS; i++, n++)
            if (n < cap) out[n] = ((vlt_tensor **)&v->blocks[l])[i];
    if (n < cap) out[n] = v->norm_w;
    n++;
    if (n < cap) out[n] = v->norm_b;
    n++;
    return n < cap ? n : cap;
}

vlt_tensor *vlt_deit_forward(vlt_deit *v, vlt_tensor *images) {
    if (!images) return NULL;
    if (images->ndim != 4 || images->shape[1] != 3 || images->shape[2] != v->image_size ||
        images->shape[3] != v->image_size) {
        char s[64];
        vlt_error_set(VLT_ERR_SHAPE, "vit: images %s must be (B, 3, %d, %d)", vlt_shape_str(images, s, sizeof s),
                      v->image_size, v->image_size);
        return NULL;
    }
    int B = images->shape[0], W = v->width, P = v->patch_size, N = v->grid * v->grid + 1;
    vlt_tensor *w2d = vlt_reshape(v->patch_w, 2, VLT_SHAPE(W, 3 * P * P));
    vlt_tensor *x = vlt_linear(vlt_patchify(images, P), w2d, v->patch_b);                // (B, G², W)
    vlt_tensor *cls = vlt_add(vlt_full(3, VLT_SHAPE(B, 1, W), 0.0f), vlt_reshape(v->cls_token, 1, VLT_SHAPE(W)));
    x = vlt_concat((vlt_tensor *[]){cls, x}, 2, 1);                                       // (B, G² + 1, W)
    x = vlt_add(x, vlt_reshape(v->pos_embed, 2, VLT_SHAPE(N, W)));
    for (int l = 0; l < v->depth; l++) {
        vlt_deit_block *b = &v->blocks[l];
        vlt_tensor *h = vlt_layernorm_operand(x, b->norm1_w, b->norm1_b, 1e-6f);
        x = vlt_mha_forward(h, b->qkv_w, b->qkv_b, b->proj_w, b->proj_b, v->heads, false, NULL, x);
        h = vlt_layernorm_operand(x, b->norm2_w, b->norm2_b, 1e-6f);
        h = vlt_linear_act(h, b->fc1_w, b->fc1_b, VLT_ACT_FN_GELU);
        x = vlt_linear_residual(h, b->fc2_w, b->fc2_b, x);
    }
    return vlt_layernorm(x, v->norm_w, v->norm_b, 1e-6f);
}

// torch's cubic convolution weights (A = -0.75) of the 4 taps around a source position with
// fractional part t.
static void cubic_coeffs(double t, double c[4]) {
    const double A = -0.75;
#define CC1(x) (((A + 2) * (x) - (A + 3)) * (x) * (x) + 1)
#define CC2(x) ((((A) * (x) - 5 * (A)) * (x) + 8 * (A)) * (x) - 4 * (A))
    c[0] = CC2(t + 1);
    c[1] = CC1(t);
    c[2] = CC1(1 - t);
    c[3] = CC2(2 - t);
#undef CC1
#undef CC2
}

void vlt_interpolate_pos_embed(const float *pos, int g0, int width, int g1, float *out) {
    memcpy(out, pos, sizeof(float) * (size_t)width);   // the class token
    const float *grid = pos + width;
    double scale = (double)g0 / g1;
    for (int oy = 0; oy < g1; oy++) {
        double sy = (oy + 0.5) * scale - 0.5;
        int iy = (int)floor(sy);
        double cy[4];
        cubic_coeffs(sy - iy, cy);
        for (int ox = 0; ox < g1; ox++) {
            double sx = (ox + 0.5) * scale - 0.5;
            int ix = (int)floor(sx);
            double cx[4];
            cubic_coeffs(sx - ix, cx);
            float *o = out + (size_t)(1 + oy * g1 + ox) * width;
            for (int c = 0; c < width; c++) {
                double acc = 0;
                for (int a = 0; a < 4; a++) {
                    int yy = iy - 1 + a;
                    yy = yy < 0 ? 0 : yy >= g0 ? g0 - 1 : yy;
                    double row = 0;
                    for (int k = 0; k < 4; k++) {
                        int xx = ix - 1 + k;
                        xx = xx < 0 ? 0 : xx >= g0 ? g0 - 1 : xx;
                        row += cx[k] * grid[(size_t)(yy * g0 + xx) * width + c];
                    }
                    acc += cy[a] * row;
                }
                o[c] = (float)acc;
            }
        }
    }
}
