// model_config.c — open_clip model config JSON parsing (see model_config.h).
#include "layers/model_config.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vlt_edit_distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    int *row = malloc(sizeof(int) * (size_t)(m + 1));
    for (int j = 0; j <= m; j++) row[j] = j;
    for (int i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= m; j++) {
            int up = row[j];
            int sub = diag + (a[i - 1] != b[j - 1]);
            int best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    int d = row[m];
    free(row);
    return d;
}

const char *vlt_closest(const char *key, const char *const *options) {
    const char *best = options[0];
    int bd = 1 << 30;
    for (int i = 0; options[i]; i++) {
        int d = vlt_edit_distance(key, options[i]);
        if (d < bd) { bd = d; best = options[i]; }
    }
    return best;
}

// Keys open_clip knows that vlt does not implement: named as unsupported, not unknown.
static const char *const UNSUPPORTED[] = {
    "timm_model_name", "hf_model_name", "ls_init_value", "patch_dropout", "no_ln_pre", "final_ln_after_pool",
    "pool_type", "proj_type", "proj_bias", "pos_embed_type", "act_kwargs", "norm_kwargs", "cast_dtype",
    "nonscalar_logit_scale", "attn_pooler_type", "hf_tokenizer_name", "tokenizer_kwargs", "layers_per_stage",
    "input_patchnorm", "global_average_pool", "xattn", "fused_mlp", "output_dim", NULL};

static bool is_unsupported(const char *k) {
    for (int i = 0; UNSUPPORTED[i]; i++)
        if (!strcmp(k, UNSUPPORTED[i])) return true;
    return false;
}

// Checks every key of `obj` is in `known` (NULL-terminated); `where` names the section.
static vlt_status check_keys(const cJSON *obj, const char *const *known, const char *what, const char *where) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(it->string, known[i]);
        if (ok) continue;
        if (is_unsupported(it->string))
            return vlt_error_set(VLT_ERR_UNSUPPORTED, "%s: %s.%s is an open_clip option vlt does not implement", what,
                                 where, it->string);
        return vlt_error_set(VLT_ERR_FORMAT, "%s: unknown key %s.%s (did you mean '%s'?)", what, where, it->string,
                             vlt_closest(it->string, known));
    }
    return VLT_OK;
}

static vlt_status get_int(const cJSON *obj, const char *key, int *out, bool required, int lo, const char *what,
                          const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? vlt_error_set(VLT_ERR_FORMAT, "%s: %s.%s is missing", what, where, key) : VLT_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > 1e9)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: %s.%s must be an integer >= %d", what, where, key, lo);
    *out = v->valueint;
    return VLT_OK;
}

static vlt_status get_float(const cJSON *obj, const char *key, float *out, const char *what, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return VLT_OK;
    if (!cJSON_IsNumber(v)) return vlt_error_set(VLT_ERR_FORMAT, "%s: %s.%s must be a number", what, where, key);
    *out = (float)v->valuedouble;
    return VLT_OK;
}

static vlt_status get_bool(const cJSON *obj, const char *key, bool *out, const char *what, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return VLT_OK;
    if (!cJSON_IsBool(v)) return vlt_error_set(VLT_ERR_FORMAT, "%s: %s.%s must be true or false", what, where, key);
    *out = cJSON_IsTrue(v);
    return VLT_OK;
}

static vlt_status parse_vision(const cJSON *o, vlt_vision_cfg *v, const char *what) {
    static const char *const known[] = {"image_size", "patch_size", "width", "layers", "head_width", "mlp_ratio",
                                        "attentional_pool", "attn_pooler_heads", "attn_pooler_queries",
                                        "output_tokens", NULL};
    const char *w = "vision_cfg";
    VLT_TRY(check_keys(o, known, what, w));
    v->head_width = 64;
    v->mlp_ratio = 4.0f;
    v->attn_pooler_heads = 8;
    v->attn_pooler_queries = 256;
    VLT_TRY(get_int(o, "image_size", &v->image_size, true, 1, what, w));
    VLT_TRY(get_int(o, "patch_size", &v->patch_size, true, 1, what, w));
    VLT_TRY(get_int(o, "width", &v->width, true, 1, what, w));
    VLT_TRY(get_int(o, "layers", &v->layers, true, 1, what, w));
    VLT_TRY(get_int(o, "head_width", &v->head_width, false, 1, what, w));
    VLT_TRY(get_float(o, "mlp_ratio", &v->mlp_ratio, what, w));
    VLT_TRY(get_bool(o, "attentional_pool", &v->attentional_pool, what, w));
    VLT_TRY(get_int(o, "attn_pooler_heads", &v->attn_pooler_heads, false, 1, what, w));
    VLT_TRY(get_int(o, "attn_pooler_queries", &v->attn_pooler_queries, false, 1, what, w));
    VLT_TRY(get_bool(o, "output_tokens", &v->output_tokens, what, w));
    if (v->image_size % v->patch_size)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: vision_cfg.image_size %d is not a multiple of patch_size %d", what,
                             v->image_size, v->patch_size);
    if (v->width % v->head_width)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: vision_cfg.width %d is not a multiple of head_width %d", what,
                             v->width, v->head_width);
    return VLT_OK;
}

static vlt_status parse_text(const cJSON *o, vlt_text_cfg *t, const char *what) {
    static const char *const known[] = {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio",
                                        "embed_cls", "output_tokens", "pad_id", NULL};
    const char *w = "text_cfg";
    VLT_TRY(check_keys(o, known, what, w));
    t->context_length = 77;
    t->vocab_size = 49408;
    t->heads = 8;
    t->mlp_ratio = 4.0f;
    VLT_TRY(get_int(o, "context_length", &t->context_length, false, 1, what, w));
    VLT_TRY(get_int(o, "vocab_size", &t->vocab_size, false, 1, what, w));
    VLT_TRY(get_int(o, "width", &t->width, true, 1, what, w));
    VLT_TRY(get_int(o, "heads", &t->heads, false, 1, what, w));
    VLT_TRY(get_int(o, "layers", &t->layers, true, 1, what, w));
    VLT_TRY(get_float(o, "mlp_ratio", &t->mlp_ratio, what, w));
    VLT_TRY(get_bool(o, "embed_cls", &t->embed_cls, what, w));
    VLT_TRY(get_bool(o, "output_tokens", &t->output_tokens, what, w));
    VLT_TRY(get_int(o, "pad_id", &t->pad_id, false, 0, what, w));
    if (t->width % t->heads)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: text_cfg.width %d is not a multiple of heads %d", what, t->width, t->heads);
    return VLT_OK;
}

static vlt_status parse_multimodal(const cJSON *o, vlt_multimodal_cfg *m, const char *what) {
    static const char *const known[] = {"context_length", "vocab_size", "width", "heads", "layers",
                                        "attn_pooler_heads", "mlp_ratio", NULL};
    const char *w = "multimodal_cfg";
    VLT_TRY(check_keys(o, known, what, w));
    m->context_length = 76;
    m->vocab_size = 49408;
    m->heads = 8;
    m->attn_pooler_heads = 8;
    m->mlp_ratio = 4.0f;
    VLT_TRY(get_int(o, "context_length", &m->context_length, false, 1, what, w));
    VLT_TRY(get_int(o, "vocab_size", &m->vocab_size, false, 1, what, w));
    VLT_TRY(get_int(o, "width", &m->width, true, 1, what, w));
    VLT_TRY(get_int(o, "heads", &m->heads, false, 1, what, w));
    VLT_TRY(get_int(o, "layers", &m->layers, true, 1, what, w));
    VLT_TRY(get_int(o, "attn_pooler_heads", &m->attn_pooler_heads, false, 1, what, w));
    VLT_TRY(get_float(o, "mlp_ratio", &m->mlp_ratio, what, w));
    return VLT_OK;
}

static vlt_status get_string_is(const cJSON *obj, const char *key, const char *want, const char *what,
                                const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return VLT_OK;
    if (!cJSON_IsString(v) || strcmp(v->valuestring, want))
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "%s: %s.%s must be \"%s\" (the only one vlt implements)", what, where,
                             key, want);
    return VLT_OK;
}

// ALBEF's settings (configs/Pretrain.yaml's keys plus the ViT's sizes), defaults as the paper's.
static vlt_status parse_albef(const cJSON *o, vlt_albef_cfg *a, const char *what) {
    static const char *const known[] = {"image_res", "patch_size", "vision_width", "vision_depth", "vision_heads",
                                        "mlp_ratio", "embed_dim", "queue_size", "momentum", "temp", "alpha",
                                        "mlm_probability", "cls_token_id", "sep_token_id", "mask_token_id",
                                        "vocab", "do_lower_case", "max_text_len", NULL};
    const char *w = "albef";
    VLT_TRY(check_keys(o, known, what, w));
    *a = (vlt_albef_cfg){.image_res = 256, .patch_size = 16, .vision_width = 768, .vision_depth = 12,
                         .vision_heads = 12, .mlp_ratio = 4.0f, .embed_dim = 256, .queue_size = 65536,
                         .momentum = 0.995f, .temp = 0.07f, .alpha = 0.4f, .mlm_probability = 0.15f,
                         .cls_token_id = -1, .sep_token_id = -1, .mask_token_id = -1,
                         .do_lower_case = true, .max_text_len = -1};
    VLT_TRY(get_int(o, "image_res", &a->image_res, false, 1, what, w));
    VLT_TRY(get_int(o, "patch_size", &a->patch_size, false, 1, what, w));
    VLT_TRY(get_int(o, "vision_width", &a->vision_width, false, 1, what, w));
    VLT_TRY(get_int(o, "vision_depth", &a->vision_depth, false, 1, what, w));
    VLT_TRY(get_int(o, "vision_heads", &a->vision_heads, false, 1, what, w));
    VLT_TRY(get_float(o, "mlp_ratio", &a->mlp_ratio, what, w));
    VLT_TRY(get_int(o, "embed_dim", &a->embed_dim, false, 1, what, w));
    VLT_TRY(get_int(o, "queue_size", &a->queue_size, false, 1, what, w));
    VLT_TRY(get_float(o, "momentum", &a->momentum, what, w));
    VLT_TRY(get_float(o, "temp", &a->temp, what, w));
    VLT_TRY(get_float(o, "alpha", &a->alpha, what, w));
    VLT_TRY(get_float(o, "mlm_probability", &a->mlm_probability, what, w));
    // -1: not given (vlt train takes them from the tokenizer's vocabulary)
    VLT_TRY(get_int(o, "cls_token_id", &a->cls_token_id, false, 0, what, w));
    VLT_TRY(get_int(o, "sep_token_id", &a->sep_token_id, false, 0, what, w));
    VLT_TRY(get_int(o, "mask_token_id", &a->mask_token_id, false, 0, what, w));
    VLT_TRY(get_bool(o, "do_lower_case", &a->do_lower_case, what, w));
    VLT_TRY(get_int(o, "max_text_len", &a->max_text_len, false, 2, what, w));
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(o, "vocab");
    if (vocab && (!cJSON_IsString(vocab) || strlen(vocab->valuestring) >= sizeof a->vocab))
        return vlt_error_set(VLT_ERR_FORMAT, "%s: albef.vocab must be a path (a string under %zu bytes)", what,
                             sizeof a->vocab);
    if (vocab) snprintf(a->vocab, sizeof a->vocab, "%s", vocab->valuestring);
    if (a->image_res % a->patch_size)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: albef.image_res %d is not a multiple of patch_size %d", what,
                             a->image_res, a->patch_size);
    if (a->vision_width % a->vision_heads)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: albef.vision_width %d is not a multiple of vision_heads %d", what,
                             a->vision_width, a->vision_heads);
    if (!(a->momentum >= 0 && a->momentum <= 1) || !(a->alpha >= 0 && a->alpha <= 1) ||
        !(a->mlm_probability >= 0 && a->mlm_probability <= 1) || !(a->temp > 0))
        return vlt_error_set(VLT_ERR_FORMAT, "%s: albef.momentum, alpha and mlm_probability must lie in [0, 1] and temp > 0",
                             what);
    return VLT_OK;
}

// config_bert.json's keys (xbert's BertConfig). Dropout probabilities are accepted and not applied:
// vlt trains without dropout.
static vlt_status parse_bert(const cJSON *o, vlt_bert_cfg *b, const char *what) {
    static const char *const known[] = {"architectures", "attention_probs_dropout_prob", "hidden_act",
                                        "hidden_dropout_prob", "hidden_size", "initializer_range", "intermediate_size",
                                        "layer_norm_eps", "max_position_embeddings", "model_type",
                                        "num_attention_heads", "num_hidden_layers", "pad_token_id", "type_vocab_size",
                                        "vocab_size", "fusion_layer", "encoder_width", NULL};
    const char *w = "bert";
    VLT_TRY(check_keys(o, known, what, w));
    *b = (vlt_bert_cfg){.vocab_size = 30522, .hidden_size = 768, .num_hidden_layers = 12, .num_attention_heads = 12,
                        .intermediate_size = 3072, .max_position_embeddings = 512, .type_vocab_size = 2,
                        .fusion_layer = 6, .pad_token_id = 0, .encoder_width = -1, .layer_norm_eps = 1e-12f,
                        .initializer_range = 0.02f};
    VLT_TRY(get_int(o, "vocab_size", &b->vocab_size, false, 1, what, w));
    VLT_TRY(get_int(o, "hidden_size", &b->hidden_size, false, 1, what, w));
    VLT_TRY(get_int(o, "num_hidden_layers", &b->num_hidden_layers, false, 1, what, w));
    VLT_TRY(get_int(o, "num_attention_heads", &b->num_attention_heads, false, 1, what, w));
    VLT_TRY(get_int(o, "intermediate_size", &b->intermediate_size, false, 1, what, w));
    VLT_TRY(get_int(o, "max_position_embeddings", &b->max_position_embeddings, false, 1, what, w));
    VLT_TRY(get_int(o, "type_vocab_size", &b->type_vocab_size, false, 1, what, w));
    VLT_TRY(get_int(o, "fusion_layer", &b->fusion_layer, false, 0, what, w));
    VLT_TRY(get_int(o, "pad_token_id", &b->pad_token_id, false, 0, what, w));
    VLT_TRY(get_int(o, "encoder_width", &b->encoder_width, false, 1, what, w));
    VLT_TRY(get_float(o, "layer_norm_eps", &b->layer_norm_eps, what, w));
    VLT_TRY(get_float(o, "initializer_range", &b->initializer_range, what, w));
    if (!(b->initializer_range > 0))
        return vlt_error_set(VLT_ERR_FORMAT, "%s: bert.initializer_range must be > 0, got %g", what,
                             b->initializer_range);
    VLT_TRY(get_string_is(o, "hidden_act", "gelu", what, w));
    VLT_TRY(get_string_is(o, "model_type", "bert", what, w));
    if (b->hidden_size % b->num_attention_heads)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: bert.hidden_size %d is not a multiple of num_attention_heads %d", what,
                             b->hidden_size, b->num_attention_heads);
    if (b->fusion_layer > b->num_hidden_layers)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: bert.fusion_layer %d is past num_hidden_layers %d", what,
                             b->fusion_layer, b->num_hidden_layers);
    if (b->pad_token_id >= b->vocab_size)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: bert.pad_token_id %d is outside the vocabulary (%d)", what,
                             b->pad_token_id, b->vocab_size);
    return VLT_OK;
}

// An ALBEF config: the "albef" and "bert" sections; the open_clip-shaped fields that the rest of
// vlt reads (image size, patch size, embed_dim, text length and vocabulary) are filled from them.
static vlt_status parse_albef_root(const cJSON *root, vlt_model_cfg *cfg, const char *what) {
    static const char *const known[] = {"albef", "bert", "albef_vqa", NULL};
    VLT_TRY(check_keys(root, known, what, "(top)"));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "albef"), *b = cJSON_GetObjectItemCaseSensitive(root, "bert");
    if (!cJSON_IsObject(a) || !cJSON_IsObject(b))
        return vlt_error_set(VLT_ERR_FORMAT, "%s: an ALBEF config needs the objects \"albef\" and \"bert\"", what);
    VLT_TRY(parse_albef(a, &cfg->albef, what));
    VLT_TRY(parse_bert(b, &cfg->bert, what));
    if (cfg->bert.encoder_width < 0) cfg->bert.encoder_width = cfg->albef.vision_width;
    if (cfg->bert.encoder_width != cfg->albef.vision_width)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: bert.encoder_width %d differs from albef.vision_width %d", what,
                             cfg->bert.encoder_width, cfg->albef.vision_width);
    const vlt_albef_cfg *al = &cfg->albef;
    const int ids[3] = {al->cls_token_id, al->sep_token_id, al->mask_token_id};
    for (int i = 0; i < 3; i++)
        if (ids[i] >= cfg->bert.vocab_size)
            return vlt_error_set(VLT_ERR_FORMAT, "%s: albef.%s %d is outside the vocabulary (%d)", what,
                                 i == 0 ? "cls_token_id" : i == 1 ? "sep_token_id" : "mask_token_id", ids[i],
                                 cfg->bert.vocab_size);
    if (cfg->albef.max_text_len < 0)
        cfg->albef.max_text_len = cfg->bert.max_position_embeddings < 25 ? cfg->bert.max_position_embeddings : 25;
    if (cfg->albef.max_text_len > cfg->bert.max_position_embeddings)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: albef.max_text_len %d is past bert.max_position_embeddings %d", what,
                             cfg->albef.max_text_len, cfg->bert.max_position_embeddings);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "albef_vqa");
    if (q) {   // ALBEF VQA: model_vqa.py's decoder and ranking settings
        static const char *const qk[] = {"decoder_layers", "distill", "k_test", NULL};
        if (!cJSON_IsObject(q)) return vlt_error_set(VLT_ERR_FORMAT, "%s: albef_vqa must be an object", what);
        VLT_TRY(check_keys(q, qk, what, "albef_vqa"));
        cfg->albef.vqa.on = cfg->albef.vqa.distill = true;
        cfg->albef.vqa.decoder_layers = 6;
        cfg->albef.vqa.k_test = 128;
        VLT_TRY(get_int(q, "decoder_layers", &cfg->albef.vqa.decoder_layers, false, 1, what, "albef_vqa"));
        VLT_TRY(get_bool(q, "distill", &cfg->albef.vqa.distill, what, "albef_vqa"));
        VLT_TRY(get_int(q, "k_test", &cfg->albef.vqa.k_test, false, 1, what, "albef_vqa"));
    }
    cfg->is_albef = true;
    cfg->embed_dim = al->embed_dim;
    cfg->init_logit_scale = logf(1.0f / al->temp);
    cfg->vision = (vlt_vision_cfg){.image_size = al->image_res, .patch_size = al->patch_size,
                                   .width = al->vision_width, .layers = al->vision_depth,
                                   .head_width = al->vision_width / al->vision_heads, .mlp_ratio = al->mlp_ratio};
    cfg->text = (vlt_text_cfg){.context_length = al->max_text_len,
                               .vocab_size = cfg->bert.vocab_size, .width = cfg->bert.hidden_size,
                               .heads = cfg->bert.num_attention_heads, .layers = cfg->bert.num_hidden_layers,
                               .mlp_ratio = (float)cfg->bert.intermediate_size / cfg->bert.hidden_size,
                               .pad_id = cfg->bert.pad_token_id};
    return VLT_OK;
}

vlt_status vlt_model_cfg_parse(const char *json, const char *what, vlt_model_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->init_logit_scale = logf(1.0f / 0.07f);
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        const char *at = cJSON_GetErrorPtr();
        cJSON_Delete(root);
        return vlt_error_set(VLT_ERR_FORMAT, "%s: not a JSON object (error near '%.20s')", what, at ? at : "");
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "albef")) {
        vlt_status st = parse_albef_root(root, cfg, what);
        cJSON_Delete(root);
        return st;
    }
    static const char *const known[] = {"embed_dim", "vision_cfg", "text_cfg", "multimodal_cfg", "quick_gelu",
                                        "custom_text", "init_logit_scale", "init_logit_bias", NULL};
    vlt_status s = check_keys(root, known, what, "(top)");
    const cJSON *vis = cJSON_GetObjectItemCaseSensitive(root, "vision_cfg");
    const cJSON *txt = cJSON_GetObjectItemCaseSensitive(root, "text_cfg");
    const cJSON *mm = cJSON_GetObjectItemCaseSensitive(root, "multimodal_cfg");
    if (s == VLT_OK) s = get_int(root, "embed_dim", &cfg->embed_dim, true, 1, what, "(top)");
    if (s == VLT_OK) s = get_bool(root, "quick_gelu", &cfg->quick_gelu, what, "(top)");
    if (s == VLT_OK) s = get_float(root, "init_logit_scale", &cfg->init_logit_scale, what, "(top)");
    if (s == VLT_OK && cJSON_GetObjectItemCaseSensitive(root, "init_logit_bias")) {
        cfg->has_logit_bias = true;
        s = get_float(root, "init_logit_bias", &cfg->init_logit_bias, what, "(top)");
    }
    if (s == VLT_OK && (!cJSON_IsObject(vis) || !cJSON_IsObject(txt)))
        s = vlt_error_set(VLT_ERR_FORMAT, "%s: vision_cfg and text_cfg must both be objects", what);
    if (s == VLT_OK) s = parse_vision(vis, &cfg->vision, what);
    if (s == VLT_OK) s = parse_text(txt, &cfg->text, what);
    if (s == VLT_OK && mm) {
        cfg->is_coca = true;
        s = cJSON_IsObject(mm) ? parse_multimodal(mm, &cfg->multimodal, what)
                               : vlt_error_set(VLT_ERR_FORMAT, "%s: multimodal_cfg must be an object", what);
    }
    cJSON_Delete(root);
    return s;
}

static char *read_file(const char *path, long max) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n <= max && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
            else buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

const char *vlt_model_cfg_dir(char *buf, size_t cap) {
    const char *home = getenv("VLT_HOME");
    if (home && *home) snprintf(buf, cap, "%s/configs/model", home);
    else snprintf(buf, cap, "configs/model");
    return buf;
}

int vlt_model_cfg_names(char ***names) {
    char dir[1024];
    *names = NULL;
    DIR *d = opendir(vlt_model_cfg_dir(dir, sizeof dir));
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".json")) continue;
        if (n + 1 >= cap) {
            char **v = realloc(*names, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 32));
            if (!v) break;
            *names = v;
        }
        (*names)[n] = strndup(e->d_name, len - 5);
        if ((*names)[n]) n++;
    }
    closedir(d);
    if (n) qsort(*names, (size_t)n, sizeof(char *), cmp_name);
    if (*names) (*names)[n] = NULL;
    return n;
}

// "closest: A, B, C" (by edit distance) of the known model names, for a name that is not one.
static void closest_names(const char *name, char *out, size_t cap) {
    char **names;
    int n = vlt_model_cfg_names(&names);
    out[0] = '\0';
    size_t used = 0;
    for (int pick = 0; pick < 3 && pick < n; pick++) {
        int best = -1, bd = 1 << 30;
        for (int i = 0; i < n; i++) {
            if (names[i][0] == '\0') continue;   // already listed
            int dd = vlt_edit_distance(name, names[i]);
            if (dd < bd) { bd = dd; best = i; }
        }
        if (best < 0) break;
        used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, "%s%s", pick ? ", " : "", names[best]);
        names[best][0] = '\0';
        if (used >= cap) break;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

vlt_status vlt_model_cfg_load(const char *name_or_path, vlt_model_cfg *cfg) {
    char path[1300];
    const char *tries[3] = {name_or_path, NULL, NULL};
    char p1[1200], p2[1024], dir[1024];
    bool bare = !strchr(name_or_path, '/') && !strstr(name_or_path, ".json");
    if (bare) {
        // $VLT_HOME's configs first (vlt sets it from its own location), then the working directory's.
        snprintf(p1, sizeof p1, "%s/%s.json", vlt_model_cfg_dir(dir, sizeof dir), name_or_path);
        tries[0] = p1;
        snprintf(p2, sizeof p2, "configs/model/%s.json", name_or_path);
        if (strcmp(p1, p2)) tries[1] = p2;
    }
    char *text = NULL;
    for (int i = 0; i < 3 && tries[i] && !text; i++) {
        text = read_file(tries[i], 1 << 20);
        snprintf(path, sizeof path, "%s", tries[i]);
    }
    if (!text && bare) {
        char near[256];
        closest_names(name_or_path, near, sizeof near);
        return vlt_error_set(VLT_ERR_IO, "unknown model name '%s': no %s%s%s (vlt model list shows every model config)",
                             name_or_path, tries[0], near[0] ? "; closest names: " : "", near);
    }
    if (!text) return vlt_error_set(VLT_ERR_IO, "model config '%s': cannot read %s", name_or_path, tries[0]);
    vlt_status s = vlt_model_cfg_parse(text, path, cfg);
    free(text);
    if (s == VLT_OK) {
        const char *base = strrchr(name_or_path, '/');
        snprintf(cfg->name, sizeof cfg->name, "%s", base ? base + 1 : name_or_path);
        char *dot = strstr(cfg->name, ".json");
        if (dot) *dot = '\0';
    }
    return s;
}
