// model_config.h — model configs in open_clip's JSON format (configs/model/<name>.json, the same
// names and fields as open_clip's model_configs), parsed and validated. An unknown key is an
// error naming it and the closest known key; a known open_clip key that vlt does not implement
// is an error naming it as unsupported.
#ifndef VLT_MODEL_CONFIG_H
#define VLT_MODEL_CONFIG_H

#include <stdbool.h>

#include "autograd/error.h"

typedef struct {
    int image_size, patch_size, width, layers, head_width;
    float mlp_ratio;
    bool attentional_pool;       // CoCa: attentional pooler over the tokens
    int attn_pooler_heads, attn_pooler_queries;
    bool output_tokens;
} vlt_vision_cfg;

typedef struct {
    int context_length, vocab_size, width, heads, layers;
    float mlp_ratio;
    bool embed_cls;              // CoCa: a learned cls token appended after the text
    bool output_tokens;
    int pad_id;
} vlt_text_cfg;

typedef struct {
    int context_length, vocab_size, width, heads, layers, attn_pooler_heads;
    float mlp_ratio;
} vlt_multimodal_cfg;

// ALBEF (configs in ALBEF's own shape: {"albef": {...}, "bert": {config_bert.json's keys}}).
typedef struct {
    int image_res, patch_size, vision_width, vision_depth, vision_heads;
    float mlp_ratio;
    int embed_dim, queue_size;
    float momentum, temp, alpha, mlm_probability;
    // Token ids the MLM masking needs (bert-base-uncased: [CLS] 101, [SEP] 102, [MASK] 103); -1 when
    // the config does not give them (the trainer fills them from the tokenizer's vocabulary).
    int cls_token_id, sep_token_id, mask_token_id;
    // The text side for vlt train / eval: a BERT vocab.txt (a path; a relative one is looked up
    // under VLT_HOME first, then the working directory; "" when not given), its casing, and the
    // token length captions are cut to (ALBEF's pretraining: 25, at most max_position_embeddings).
    char vocab[256];
    bool do_lower_case;
    int max_text_len;
    // ALBEF VQA (layers/albef_vqa.h; models/model_vqa.py), on when the config has an "albef_vqa"
    // section: the answer decoder's layers (6 in the paper: the pretrained layers from fusion_layer
    // on), momentum distillation (momentum and alpha above), candidates re-ranked (k_test, 128).
    struct { bool on, distill; int decoder_layers, k_test; } vqa;
} vlt_albef_cfg;

// BERT (xbert's BertConfig keys).
typedef struct {
    int vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size;
    int max_position_embeddings, type_vocab_size, fusion_layer, pad_token_id, encoder_width;
    float layer_norm_eps;
    float initializer_range;   // std of the normal init of linear weights and embeddings (BertConfig's)
} vlt_bert_cfg;

typedef struct {
    char name[64];
    int embed_dim;
    bool quick_gelu;
    bool is_coca;                // has a multimodal_cfg
    float init_logit_scale;      // ln(1/0.07) unless given
    bool has_logit_bias;         // SigLIP
    float init_logit_bias;
    vlt_vision_cfg vision;
    vlt_text_cfg text;
    vlt_multimodal_cfg multimodal;
    bool is_albef;               // an ALBEF config ("albef" and "bert" sections); the fields above unused
    vlt_albef_cfg albef;
    vlt_bert_cfg bert;
    // A VQA classifier head on the CLIP towers (layers/vqa_head.h) when n_answers > 0. Not in the
    // model JSON: set from the run config (model.vqa_head, model.vqa_answers, model.vqa_hidden).
    struct { int n_answers, hidden, fusion_layers; } vqa;   // fusion_layers 0: pooled features concatenated
} vlt_model_cfg;

// Parses JSON text; `what` names the source in messages.
vlt_status vlt_model_cfg_parse(const char *json, const char *what, vlt_model_cfg *cfg);
// Reads a file path, or a bare name looked up as <name>.json in vlt_model_cfg_dir(), then in the
// working directory's configs/model/. An unknown bare name's message lists the closest names.
vlt_status vlt_model_cfg_load(const char *name_or_path, vlt_model_cfg *cfg);
// The folder of the named model configs: $VLT_HOME/configs/model when VLT_HOME is set (the vlt
// program sets it at start-up from its own location), else configs/model. Written to buf.
const char *vlt_model_cfg_dir(char *buf, size_t cap);
// The names of the model configs in vlt_model_cfg_dir(), sorted: a malloc'd NULL-terminated array
// of malloc'd strings (NULL when none); returns how many.
int vlt_model_cfg_names(char ***names);

// Levenshtein distance (for "did you mean" suggestions; used by the run config too).
int vlt_edit_distance(const char *a, const char *b);
// The entry of `options` (NULL-terminated) closest to `key`.
const char *vlt_closest(const char *key, const char *const *options);

#endif
