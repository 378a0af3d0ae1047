// generate.h — CoCa caption generation: greedy decoding as open_clip's CoCa.generate (its
// "top_k" type with top_k = 1, fixed_output_length = True), and beam search, both on a
// key/value cache.
//
// Greedy (open_clip semantics): every sequence starts with sot_id. At each step, for every
// unfinished row (a row is finished once its last token is eos_id or pad_id), the next-token
// logits go through open_clip's processors in its order:
//   min length: eos_id gets -inf while the current length (sot included) is < min_len
//   repetition penalty (HF RepetitionPenaltyLogitsProcessor): every token already in the row
//     (sot included) has its logit l replaced by l·p if l < 0, else l/p  (p = 1: off)
// then the argmax is taken; when the row would reach max_len with this token, eos_id is written
// instead (open_clip forces eos at seq_len). Finished rows get pad_id. Output: (N, max_len).
//
// Beam search (vlt's own, documented difference from open_clip's group beam search through HF's
// BeamSearchScorer, which adds raw logits rather than log-probabilities): per image, beam_size
// hypotheses scored by the sum of log_softmax(processed logits) of their tokens; the 2·K best
// extensions are scanned in order, a hypothesis ending in eos/pad (or forced to eos at max_len, as
// greedy) is finished, the others fill the K beams; the best finished hypothesis by
// score / length^length_penalty (length counts sot, as HF) wins. beam_size 1 with any
// length_penalty is greedy. Sampling (top-k > 1, top-p, temperature) is not implemented.
//
// The cache: the text tower's and the decoder's self-attention keys/values per layer for every
// token fed so far (the prefix is computed once, then one token per step), and each
// cross-attention block's keys/values of the image tokens, computed once. The cls token of the
// text tower is never needed for generation (it comes last and the tower is causal).
//
// On the GPU (a model whose parameters are there, or vlt_coca_set_device_path on the host): the
// cache, image tokens and every product stay on the device. Per step the host sends the fed ids
// (rows) and the text pad mask (rows x tokens so far); greedy without repetition penalty and
// scores reads back only the chosen ids (the minimum-length rule and argmax on the device);
// otherwise, and for beam search, the (rows, V) logits come back and the host's processors,
// log-softmax and beam bookkeeping run as on the CPU (so the captions are the host's for the same
// logits); a beam reorder sends (tokens x beams) row indices and gathers on the device.
//
// Generation runs with grad off and resets the step arena after each step: do not call it while
// holding activations of a training step.
#ifndef VLT_GENERATE_H
#define VLT_GENERATE_H

#include "layers/coca.h"

typedef struct {
    int max_len;               // open_clip's seq_len: total length with sot; max_len - 1 <= both contexts
    int min_len;               // open_clip's min_seq_len (eos forbidden before it); < max_len
    float repetition_penalty;  // 1.0: off
    int sot_id, eos_id, pad_id;
    int beam_size;             // 1: greedy
    float length_penalty;      // beam search only; HF's default 1.0
} vlt_generate_cfg;

// open_clip's defaults for the CLIP tokenizer: max_len 30, min_len 5, sot 49406, eos 49407, pad 0.
vlt_generate_cfg vlt_generate_defaults(void);

typedef struct {
    int rows, cap, len;          // sequences, capacity in tokens, tokens cached
    int text_layers, dec_layers, heads, dh, width;
    vlt_device dev;              // the model's: every tensor of the cache lives there
    bool device_form;            // the GPU formulation (vlt_coca_device_form): host-built inputs are sent
    vlt_tensor **k, **v;         // [text_layers + dec_layers] each (cap, rows, H, Dh) persistent
    vlt_tensor **xk, **xv;       // [dec_layers] each (rows, H, N, Dh) persistent: the image's cross K/V
    int n_img;                   // N image tokens
    int32_t *ids;                // (rows, cap) on the host: the tokens fed so far (the text tower's pad mask)
} vlt_coca_cache;

// image_embs (rows, N, E) on the model's device (e.g. from vlt_coca_encode_image); cap: most tokens that will be fed.
vlt_status vlt_coca_cache_init(vlt_coca_cache *c, vlt_coca *m, vlt_tensor *image_embs, int cap);
void vlt_coca_cache_free(vlt_coca_cache *c);
// Feeds ids (rows, n) i32 after the cached tokens and writes the next-token logits of the last
// fed position to host memory logits (rows, V) (a copy back from the GPU). Grad must be off; uses
// the step arena (not reset here).
vlt_status vlt_coca_cache_step(vlt_coca_cache *c, vlt_coca *m, const int32_t *ids, int n, float *logits);
// Row r takes old row src[r] (beam search).
vlt_status vlt_coca_cache_reorder(vlt_coca_cache *c, const int *src);

// images (N, 3, S, S) -> out (N, max_len) i32 (pad-filled after eos); scores (N) or NULL: the
// sum of processed log-probabilities of each caption's tokens after sot.
vlt_status vlt_coca_generate(vlt_coca *m, vlt_tensor *images, const vlt_generate_cfg *g, int32_t *out,
                             float *scores);
// The same score for given captions ids (N, L) by one full forward (no cache): the sum over the
// tokens after sot up to the first eos/pad (included) of log_softmax(processed logits).
vlt_status vlt_coca_caption_score(vlt_coca *m, vlt_tensor *images, vlt_tensor *ids, const vlt_generate_cfg *g,
                                  float *scores);

#endif
