// bert.h — the BERT encoder ALBEF uses (salesforce/ALBEF models/xbert.py, BertForMaskedLM), with
// its state_dict names under a prefix ("text_encoder", "text_encoder_m"):
//
//   embeddings: word (V, W) + position (P, W) [0..T) + token type (2, W) [type 0] -> LayerNorm (eps)
//     <prefix>.bert.embeddings.{word,position,token_type}_embeddings.weight, .LayerNorm.{weight,bias}
//   layer l (post-LN):
//     x = LN(x + dense(selfattn(x)))           .attention.self.{query,key,value}, .attention.output.{dense,LayerNorm}
//     x = LN(x + dense(crossattn(x, image)))    l >= fusion_layer: .crossattention.self.{query,key,value}
//                                               (key/value from encoder_width), .crossattention.output.{dense,LayerNorm}
//     x = LN(x + dense(gelu(dense(x))))         .intermediate.dense, .output.{dense,LayerNorm}
//   MLM head: LN(gelu(transform.dense(x))) · word_embeddingsᵀ + bias
//     <prefix>.cls.predictions.transform.{dense,LayerNorm}, <prefix>.cls.predictions.bias
//
// GELU is the erf form (hidden_act "gelu"). The text key padding mask comes from the attention
// mask (0 = padding; xbert adds -10000 to those scores, which underflows to exactly 0 weight as
// masking does, since [CLS] is never padding); the image mask likewise (NULL: every image token).
//
// xbert's modes: 'text' runs layers [0, fusion_layer) on the ids, 'fusion' runs
// [fusion_layer, L) on given text states, 'multi_modal' runs them all on the ids.
//
// Tied weights: BertForMaskedLM ties cls.predictions.decoder.weight to the word embeddings and
// cls.predictions.decoder.bias to cls.predictions.bias, and its state_dict (so the released ALBEF
// checkpoint) holds both names of each. The table holds the tied names as aliases: non-trainable
// tensors sharing the storage of the one parameter, so a checkpoint has every key and strict
// loading works both ways, the gradient and the optimizer see one tensor. The released checkpoint
// (transformers 4.8) also holds the buffer <prefix>.bert.embeddings.position_ids (1, P) = 0..P-1;
// the table holds it as a non-trainable i32 tensor.
#ifndef VLT_BERT_H
#define VLT_BERT_H

#include "autograd/ops.h"
#include "autograd/params.h"
#include "layers/model_config.h"

typedef struct {
    vlt_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b;  // (W, W) or (W, Wenc) for cross keys/values
    vlt_tensor *o_w, *o_b;                           // output.dense
    vlt_tensor *ln_w, *ln_b;                         // output.LayerNorm
} vlt_bert_attention;

typedef struct {
    vlt_bert_attention self, cross;
    bool has_cross;
    vlt_tensor *inter_w, *inter_b;   // (I, W)
    vlt_tensor *out_w, *out_b;       // (W, I)
    vlt_tensor *ln_w, *ln_b;         // output.LayerNorm
} vlt_bert_layer;

#define VLT_BERT_MAX_LAYERS 48

typedef struct {
    vlt_bert_cfg cfg;
    vlt_tensor *word_emb, *pos_emb, *type_emb, *emb_ln_w, *emb_ln_b;
    vlt_tensor *position_ids;        // (1, P) i32 buffer, non-trainable
    vlt_bert_layer layers[VLT_BERT_MAX_LAYERS];
    // MLM head
    vlt_tensor *tr_w, *tr_b, *tr_ln_w, *tr_ln_b, *mlm_bias;
    vlt_tensor *decoder_w_alias, *decoder_b_alias;   // tied names (see above); all NULL without a head
    // xbert's is_decoder (BertLMHeadModel, ALBEF VQA's answer decoder): self-attention is causal
    // (query t sees keys <= t) besides the key padding mask. Set by the caller after init.
    bool is_decoder;
} vlt_bert;

typedef enum { VLT_BERT_TEXT, VLT_BERT_FUSION, VLT_BERT_MULTI_MODAL } vlt_bert_mode;

// Creates the parameters under `prefix` ("text_encoder"); init as xbert's _init_weights: N(0, 0.02)
// for Linear and Embedding weights, zero biases, LayerNorm (1, 0). fill false leaves them zero
// (a momentum copy, about to be overwritten).
vlt_status vlt_bert_init(vlt_bert *b, vlt_params *table, const char *prefix, const vlt_bert_cfg *cfg, uint64_t seed,
                         bool fill);

// xbert's BertModel (add_pooling_layer False; ALBEF VQA's text encoder): the same encoder named
// <prefix>.embeddings.*, <prefix>.encoder.layer.* (no ".bert" infix) and no MLM head.
vlt_status vlt_bert_init_model(vlt_bert *b, vlt_params *table, const char *prefix, const vlt_bert_cfg *cfg,
                               uint64_t seed, bool fill);

// The key padding mask (B, T) i32 (nonzero = padding) of an attention mask (B, T) (1 = token).
vlt_tensor *vlt_bert_key_pad(vlt_tensor *atts);
// ids (B, T) i32 -> embeddings after LayerNorm (B, T, W). ids on the table's device (on the GPU
// they are read back once to find the pad positions).
vlt_tensor *vlt_bert_embed(vlt_bert *b, vlt_tensor *ids);
// For tests: a host table takes the GPU's formulation of the pad rows (built by tensor ops from a
// pad column instead of host loops; the same values), so that it is checked without a GPU.
void vlt_bert_set_device_path(bool on);
// Runs layers [from, to) on x (B, T, W). text_pad (B, T) i32 or NULL; image (B, N, Wenc) needed
// when a layer in range has cross-attention; image_pad (B, N) i32 or NULL.
vlt_tensor *vlt_bert_layers(vlt_bert *b, vlt_tensor *x, int from, int to, vlt_tensor *text_pad, vlt_tensor *image,
                            vlt_tensor *image_pad);
// xbert's BertModel.forward in a mode: `in` is ids (B, T) i32 for TEXT and MULTI_MODAL, text
// states (B, T, W) for FUSION. -> last hidden state (B, T, W).
vlt_tensor *vlt_bert_forward(vlt_bert *b, vlt_bert_mode mode, vlt_tensor *in, vlt_tensor *text_pad, vlt_tensor *image,
                             vlt_tensor *image_pad);
// vlt_bert_forward (FUSION or MULTI_MODAL, every image token attended) with layer `layer`'s
// cross-attention computed unfused, its probabilities (B, H, T, N) kept on the tape into *probs
// (their gradient after backward: Grad-CAM, ALBEF's visualisation). Equal to vlt_bert_forward up
// to float rounding; the normal forward is unchanged.
vlt_tensor *vlt_bert_forward_probe(vlt_bert *b, vlt_bert_mode mode, vlt_tensor *in, vlt_tensor *text_pad,
                                   vlt_tensor *image, int layer, vlt_tensor **probs);
// The MLM head: h (..., W) -> logits (..., V).
vlt_tensor *vlt_bert_mlm_logits(vlt_bert *b, vlt_tensor *h);
// The trainable tensors of the encoder in state_dict order, aliases and buffers left out (what
// ALBEF's EMA pairs walk). Returns how many were written (at most cap).
int vlt_bert_trainable(vlt_bert *b, vlt_tensor **out, int cap);

#endif
