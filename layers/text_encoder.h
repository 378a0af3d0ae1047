// text_encoder.h — open_clip's TextTransformer as CLIP builds it: token and positional
// embeddings, causal transformer, ln_final, pooling at the EOT token (argmax of the ids),
// text_projection. In a CLIP model its parameters sit at the top level of the state_dict
// ("token_embedding.weight", "transformer.resblocks.0…", "ln_final.weight", "text_projection").
//
//   ids (B, T) i32, T <= context_length -> (B, E) unnormalized text features
//
// With cfg->embed_cls (CoCa's text tower, parameters under "text."): a learned `cls_emb` (W) is
// appended after the T tokens, positional_embedding has context_length + 1 rows, and the
// attention mask adds open_clip's legacy pad mask (TextTransformer._build_additive_mask with
// correct_cls_mask False, which CoCa uses): key 0 is always visible, key j (1 <= j <= T, the cls
// token being key T) is masked when ids[j-1] == pad_id. The pooled feature is the last (cls) token
// after ln_final, projected; the tokens handed to the multimodal decoder are the T text positions
// *before* ln_final (as open_clip).
#ifndef VLT_TEXT_ENCODER_H
#define VLT_TEXT_ENCODER_H

#include "layers/model_config.h"
#include "layers/transformer.h"

typedef struct {
    int context_length, vocab_size, width, embed_dim;
    bool embed_cls;
    int pad_id;
    vlt_tensor *token_embedding;   // (V, W)
    vlt_tensor *pos_embedding;     // (ctx, W), (ctx + 1, W) with embed_cls
    vlt_tensor *cls_emb;           // (W) with embed_cls, else NULL
    vlt_tensor *ln_final_w, *ln_final_b;
    vlt_tensor *text_projection;   // (W, E)
    vlt_transformer transformer;
} vlt_text_encoder;

// prefix: "" for CLIP (top-level names) or e.g. "text" (CoCa).
vlt_status vlt_text_encoder_init(vlt_text_encoder *t, vlt_params *table, const char *prefix, const vlt_text_cfg *cfg,
                                 int embed_dim, vlt_activation act, uint64_t seed);
// ids -> tokens after ln_final (B, T, W)   (not for embed_cls: use vlt_text_encoder_encode)
vlt_tensor *vlt_text_encoder_tokens(vlt_text_encoder *t, vlt_tensor *ids);
// ids -> (B, E) unnormalized text features (EOT pooling, or the cls token with embed_cls).
vlt_tensor *vlt_text_encoder_forward(vlt_text_encoder *t, vlt_tensor *ids);
// The same, and *tokens = (B, T, W): after ln_final, or before it with embed_cls (as open_clip's
// output_tokens).
vlt_tensor *vlt_text_encoder_encode(vlt_text_encoder *t, vlt_tensor *ids, vlt_tensor **tokens);
// vlt_text_encoder_encode with the pad mask's source given: ids_host, a host copy of ids (or NULL:
// one is read back when ids are on a device). The embed_cls pad mask is built on the host from the
// ids and sent to the tower's device (a (B, T + 1) i32 upload); a caller that already holds host
// ids (CoCa's forward, which needs them for its labels too) saves the copy back.
// device_form: the GPU formulation (a copy of the host ids, the mask through vlt_to_device) even
// on a host tower, for the tests that hold it to the host path's bits.
vlt_tensor *vlt_text_encoder_encode_ex(vlt_text_encoder *t, vlt_tensor *ids, const vlt_tensor *ids_host,
                                       bool device_form, vlt_tensor **tokens);
// The embed_cls pad mask for keys 0..n_keys-1 of host ids (B, >= n_keys - 1): (B, n_keys) i32
// host activation, nonzero = masked (key 0 never; key j when ids[j-1] == pad_id).
vlt_tensor *vlt_text_encoder_key_pad(const vlt_text_encoder *t, const vlt_tensor *ids, int n_keys);

#endif
