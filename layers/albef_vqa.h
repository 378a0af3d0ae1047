// albef_vqa.h — ALBEF's VQA model (salesforce/ALBEF models/model_vqa.py, VQA.py): answers are
// generated, not classified, and at test time a candidate answer list is ranked.
//
//   question  the text encoder (xbert's BertModel, names text_encoder.{embeddings,encoder}.*) on
//             the question, all layers, those from fusion_layer on cross-attending to the DeiT's
//             image tokens                                          -> question states (B, Tq, W)
//   answer    a BERT decoder (BertLMHeadModel: text_decoder.bert.*, text_decoder.cls.predictions.*,
//             decoder tied to its word embeddings) with causal self-attention and cross-attention
//             to the question states in every layer; decoder_layers layers (6 in the paper)
//   loss      each question's states repeated for its k answers; per answer the sum over
//             positions t of CE(logits[t], ids[t+1]), PAD targets skipped (no label smoothing);
//             with distill (1-α)·CE + α·soft CE against the momentum decoder's softmax (the
//             momentum copies *_m, EMA at the first forward after each optimizer step, as the
//             authors' forward does it first); loss = Σ_answers weight · per-answer / B
//   ranking   rank_answer: the decoder on [CLS] alone scores each candidate's first answer token
//             (candidate ids [CLS] a.. [SEP] [SEP] as VQA.py tokenizes answer + '[SEP]'); the k
//             best are re-scored by log p(first token) - Σ CE of the rest, softmaxed over the k
//             and sorted. The answer is the best candidate.
//
// Weights: a released ALBEF VQA checkpoint loads strictly (vlt_albef_vqa_load); a pretraining
// checkpoint (ALBEF's names) through VQA.py's remapping (vlt_albef_vqa_load_pretrained): the text
// encoder takes text_encoder.bert.*, the decoder's layer j pretrained layer fusion_layer + j (the
// authors hard-code 6, the paper's fusion_layer), its embeddings and LM head the pretrained ones,
// the _m copies likewise; projections, itm_head, temp and queues are left out.
#ifndef VLT_ALBEF_VQA_H
#define VLT_ALBEF_VQA_H

#include "data/bert_tokenizer.h"
#include "layers/bert.h"
#include "layers/vit.h"

typedef struct {
    vlt_model_cfg cfg;
    vlt_params params;
    uint64_t seed;
    bool distill;
    vlt_deit visual, visual_m;
    vlt_bert text, text_m;   // BertModel, fusion from cfg.bert.fusion_layer
    vlt_bert dec, dec_m;     // BertLMHeadModel: fusion_layer 0, decoder_layers, encoder_width = hidden
    int n_pairs;
    vlt_tensor **online, **momentum;
    bool ema_pending;
    vlt_bert_tokenizer *tok;            // cfg.albef.vocab's, when given
    // The candidate answers ranked by vlt_albef_vqa_answer (vlt_albef_vqa_set_answers).
    int n_cand, cand_T;
    int32_t *cand_ids, *cand_atts;      // (n_cand, cand_T)
    vlt_tensor *logit_scale;            // 0-d, 0: no contrastive scale (the trainer's log reads one)
} vlt_albef_vqa;

typedef struct {
    vlt_tensor *images;         // (B, 3, S, S)
    // Any of them on the host or the model's device (those on the GPU are read back once for the
    // masks and targets the host builds).
    vlt_tensor *question_ids;   // (B, Tq) i32
    vlt_tensor *question_atts;  // (B, Tq) i32 or NULL (ids != pad)
    vlt_tensor *answer_ids;     // (N, Ta) i32, N = Σ k: [CLS] answer [SEP] [SEP] [PAD]...
    vlt_tensor *answer_atts;    // (N, Ta) or NULL (ids != pad)
    vlt_tensor *weights;        // (N) f32: each answer's weight
    vlt_tensor *k;              // (B) i32: answers of each question, in order
    float alpha;                // distillation weight (used when distill)
} vlt_albef_vqa_inputs;

// cfg must be an ALBEF config with an "albef_vqa" section (cfg->albef.vqa.on).
vlt_status vlt_albef_vqa_init(vlt_albef_vqa *m, const vlt_model_cfg *cfg, uint64_t seed);
void vlt_albef_vqa_free(vlt_albef_vqa *m);
void vlt_albef_vqa_copy_params(vlt_albef_vqa *m);   // momentum copies = online weights
// The training loss (1), or NULL with the error set.
vlt_tensor *vlt_albef_vqa_loss(vlt_albef_vqa *m, const vlt_albef_vqa_inputs *in);
void vlt_albef_vqa_after_step(vlt_albef_vqa *m);    // the EMA is due at the next forward
// rank_answer for candidates cand_ids/cand_atts (C, Tc) i32 host arrays, k <= C (images and
// question ids / atts on the host or the model's device; on the GPU only the candidates'
// first-token probabilities and their tokens' log-probabilities come back): the k candidate indices
// of each question best first into ids (B·k) and their re-ranked probabilities into probs (B·k).
// Under no_grad.
vlt_status vlt_albef_vqa_rank(vlt_albef_vqa *m, vlt_tensor *images, vlt_tensor *question_ids,
                              vlt_tensor *question_atts, const int32_t *cand_ids, const int32_t *cand_atts, int C,
                              int Tc, int k, int32_t *ids, float *probs);
// The candidate list: each answer tokenized with the model's vocabulary as VQA.py does
// (answer + '[SEP]': [CLS] tokens [SEP] [SEP], padded to the longest).
vlt_status vlt_albef_vqa_set_answers(vlt_albef_vqa *m, const char *const *answers, int n);
// The best candidate of vlt_albef_vqa_set_answers's list for each question (k = min(k_test, n)).
vlt_status vlt_albef_vqa_answer(vlt_albef_vqa *m, vlt_tensor *images, vlt_tensor *question_ids, int32_t *best,
                                float *conf);
// Tests: a host model takes the GPU's route (host copies of what the host reads, what it builds
// copied to the model's device, the loss coefficients and the ranking's scores read through
// device ops), which must give the host path's bits.
void vlt_albef_vqa_set_device_path(bool on);
int vlt_albef_vqa_tokenize(const vlt_albef_vqa *m, const char *text, int32_t *ids, int32_t *mask, int T);
// A released ALBEF VQA checkpoint (strict unless lenient); pos_embed resized as ALBEF does when
// the file's grid differs.
vlt_status vlt_albef_vqa_load(vlt_albef_vqa *m, const char *path, bool lenient);
// A pretraining checkpoint through VQA.py's remapping (see above); every tensor of the model must
// come from the file (the _m copies too when distill).
vlt_status vlt_albef_vqa_load_pretrained(vlt_albef_vqa *m, const char *path);

#endif
