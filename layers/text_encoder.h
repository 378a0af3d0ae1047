// text_encoder.h — open_clip's TextTransformer as CLIP builds it: token and positional
// embeddings, causal transformer, ln_final, pooling at the EOT token (argmax of the ids),
// text_projection. In a CLIP model its parameters sit at the top level of the state_dict
// ("token_embedding.weight", "transformer.resblocks.0…", "ln_final.weight", "text_projection").
//
//   ids (B, T) i32, T <= context_length -> (B, E) unnormalized text features
#ifndef VLT_TEXT_ENCODER_H
#define VLT_TEXT_ENCODER_H

#include "layers/model_config.h"
#include "layers/transformer.h"

typedef struct {
    int context_length, vocab_size, width, embed_dim;
    vlt_tensor *token_embedding;   // (V, W)
    vlt_tensor *pos_embedding;     // (ctx, W)
    vlt_tensor *ln_final_w, *ln_final_b;
    vlt_tensor *text_projection;   // (W, E)
    vlt_transformer transformer;
} vlt_text_encoder;

// prefix: "" for CLIP (top-level names) or e.g. "text" (CoCa).
vlt_status vlt_text_encoder_init(vlt_text_encoder *t, vlt_params *table, const char *prefix, const vlt_text_cfg *cfg,
                                 int embed_dim, vlt_activation act, uint64_t seed);
// ids -> tokens after ln_final (B, T, W)
vlt_tensor *vlt_text_encoder_tokens(vlt_text_encoder *t, vlt_tensor *ids);
vlt_tensor *vlt_text_encoder_forward(vlt_text_encoder *t, vlt_tensor *ids);

#endif
