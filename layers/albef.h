// albef.h — ALBEF pretraining (Li et al., "Align before Fuse", 2021; salesforce/ALBEF
// models/model_pretrain.py): a DeiT image encoder, a BERT whose layers from fusion_layer on
// cross-attend to the image tokens, momentum copies of both and of the projections, feature
// queues, and three losses:
//
//   ITC  image/text [CLS] -> vision_proj / text_proj (embed_dim) -> L2-normalized; similarities
//        against [momentum features of the batch; queue] / temp; targets alpha·softmax(momentum
//        similarities) + (1 - alpha)·one-hot; (i2t + t2i) / 2.
//   ITM  the fusion layers on the positive pairs and on one hard negative per image and per text
//        (sampled from the softmax of the in-batch similarities, diagonal zeroed); itm_head (2-way)
//        on the fused [CLS]; cross-entropy over the 3B rows (B positives, 2B negatives).
//   MLM  15% of the tokens (never [CLS], [SEP], [PAD]): 80% [MASK], 10% random, 10% kept; the
//        whole BERT ('multi_modal') on the masked ids with the image tokens, the MLM head on the
//        masked positions; (1 - alpha)·cross-entropy + alpha·cross-entropy against the momentum
//        model's softmax, both means over the masked positions.
//
// Step order as ALBEF's forward: temp clamped to [0.001, 0.5]; the momentum EMA (m·θ_m + (1-m)·θ)
// once per optimizer step, at the first forward after it (ALBEF runs it at the start of forward:
// its first step's EMA is of θ_0 with itself, and a checkpoint after step k holds θ_m after k EMAs
// of θ_0 .. θ_{k-1}, as here); the queues take the momentum features of the step in after_step
// (ALBEF enqueues inside forward, after the ITC that reads the queues, so the order of reads and
// writes is the same).
//
// Parameter names are ALBEF's state_dict keys: temp, image_queue (E, Q), text_queue (E, Q),
// queue_ptr (1), visual_encoder.*, text_encoder.*, vision_proj, text_proj, itm_head and the
// momentum copies visual_encoder_m.*, vision_proj_m, text_encoder_m.*, text_proj_m (non-trainable).
// Sampling (MLM masks, negatives) draws from the counter RNG keyed by (seed, step), so a resumed
// run draws what the uninterrupted one would have.
#ifndef VLT_ALBEF_H
#define VLT_ALBEF_H

#include "data/bert_tokenizer.h"
#include "layers/bert.h"
#include "layers/vit.h"

typedef struct {
    vlt_model_cfg cfg;
    vlt_params params;
    uint64_t seed;
    vlt_deit visual, visual_m;
    vlt_bert text, text_m;
    vlt_tensor *vision_proj_w, *vision_proj_b, *text_proj_w, *text_proj_b;
    vlt_tensor *vision_proj_m_w, *vision_proj_m_b, *text_proj_m_w, *text_proj_m_b;
    vlt_tensor *temp;                       // 0-d
    vlt_tensor *itm_w, *itm_b;              // (2, W), (2)
    vlt_tensor *image_queue, *text_queue;   // (E, Q), columns L2-normalized
    vlt_tensor *queue_ptr;                  // (1) i32
    // EMA pairs: online[i] -> momentum[i]
    int n_pairs;
    vlt_tensor **online, **momentum;
    bool ema_pending;                       // an optimizer step happened since the last EMA
    // Momentum features of this step's forwards, enqueued by after_step: the first pend_n rows of
    // these persistent (cap, E) f32 tensors, kept on the queues' device (no copy to the host).
    vlt_tensor *pend_img, *pend_txt;
    int pend_n;
    vlt_tensor *logit_scale;                // ln(1 / temp), for the trainer's log (not in the table)
    vlt_bert_tokenizer *tok;                // cfg.albef.vocab's, when the config names one (else NULL)
} vlt_albef;

typedef struct {
    vlt_tensor *images;          // (B, 3, S, S) f32
    vlt_tensor *ids;             // (B, T) i32
    vlt_tensor *atts;            // (B, T) i32, 1 = token; NULL: ids != pad_token_id
    // Given (the parity test feeds the reference's) or NULL (drawn from the counter RNG):
    vlt_tensor *mlm_ids;         // (B, T) i32 masked input
    vlt_tensor *mlm_labels;      // (B, T) i32, -100 where not masked
    vlt_tensor *neg_image_idx;   // (B) i32: the image chosen as the negative of text b
    vlt_tensor *neg_text_idx;    // (B) i32: the text chosen as the negative of image b
    float alpha;                 // distillation weight of this step
    uint64_t step;               // the RNG counter of this step's draws
    int rank;                    // this process among data-parallel ranks (0): its own draws
    // Data parallel (NULL in one process): all ranks' rows of a (B, E) tensor, rank order, as the
    // authors' concat_all_gather, so that every rank's queues take every rank's momentum features.
    vlt_tensor *(*all_gather)(void *ctx, vlt_tensor *x);
    void *gather_ctx;
} vlt_albef_inputs;

typedef struct {
    vlt_tensor *loss;                         // (1) itc + itm + mlm
    vlt_tensor *loss_itc, *loss_itm, *loss_mlm;
    float itm_acc;                            // of the 3B pairs
    float mlm_acc;                            // of the masked tokens (0 when none)
    int mlm_count;                            // masked tokens
    vlt_tensor *image_feat, *text_feat;       // (B, E) normalized
} vlt_albef_output;

// cfg must be an ALBEF config (cfg->is_albef). The momentum copies start equal to the online
// weights; the queues are random unit columns. When the config names a vocabulary (albef.vocab: a
// path, relative ones looked up under $VLT_HOME first, then the working directory) it is loaded as
// the model's tokenizer, checked against bert.vocab_size and pad_token_id, and gives the special
// ids the config leaves out (m->cfg holds them).
vlt_status vlt_albef_init(vlt_albef *m, const vlt_model_cfg *cfg, uint64_t seed);
void vlt_albef_free(vlt_albef *m);
// Copies every online weight to its momentum copy (after loading online-only weights).
vlt_status vlt_albef_copy_params(vlt_albef *m);
// The momentum copies of both ALBEF kinds: momentum[i] = online[i], and the EMA
// momentum[i] = mu·momentum[i] + (1 − mu)·online[i] (f32, same shapes; host or GPU, where the EMA
// is one launch over every pair with the host's bits: autograd/momentum.h).
vlt_status vlt_momentum_copy(vlt_tensor *const *online, vlt_tensor *const *momentum, int n);
vlt_status vlt_momentum_ema(vlt_tensor *const *online, vlt_tensor *const *momentum, int n, float mu);
vlt_status vlt_albef_forward(vlt_albef *m, const vlt_albef_inputs *in, vlt_albef_output *out);
// After each optimizer step: enqueue the step's momentum features, mark the EMA due.
void vlt_albef_after_step(vlt_albef *m);
// Captions to ids (T) and attention mask (T): [CLS] ... [SEP] [PAD]..., as BertTokenizer with
// max_length T; returns the non-pad count, or -1 (message set; also without a vocabulary).
int vlt_albef_tokenize(const vlt_albef *m, const char *text, int32_t *ids, int32_t *mask, int T);
// The config's vocabulary file (albef.vocab; a relative path is looked up under VLT_HOME first,
// then the working directory) into path; NULL when the config names none.
const char *vlt_albef_vocab_path(const vlt_model_cfg *cfg, char *path, size_t n);
// Loads that vocabulary (*tok stays NULL when the config names none), checks it against
// bert.vocab_size and pad_token_id, and fills the config's [CLS]/[SEP]/[MASK] ids it leaves at -1.
// Shared by the ALBEF kinds (pretraining and VQA).
vlt_status vlt_albef_load_tokenizer(vlt_model_cfg *cfg, vlt_bert_tokenizer **tok);
// ITC features for retrieval: L2-normalized (B, E).
vlt_tensor *vlt_albef_encode_image(vlt_albef *m, vlt_tensor *images);
vlt_tensor *vlt_albef_encode_text(vlt_albef *m, vlt_tensor *ids, vlt_tensor *atts);
// ITM for retrieval re-ranking (ALBEF's evaluation): the image tokens (B, N, Wv) of images, and
// the match score itm_head(fused [CLS])[1] (the raw positive logit, as Retrieval.py's evaluation())
// of text ids[i] with tokens[i], (n).
vlt_tensor *vlt_albef_image_tokens(vlt_albef *m, vlt_tensor *images);
vlt_tensor *vlt_albef_itm_score(vlt_albef *m, vlt_tensor *tokens, vlt_tensor *ids);
// Grad-CAM of the ITM score on a fusion layer's cross-attention (the ALBEF paper's visualisation:
// visualization.ipynb, Grounding.py): for one image (1, 3, S, S) and one text (1, T) host i32, the
// raw positive-class ITM logit into *score and, per text token t, maps[t·G² + p] = mean over heads of
// attention[h, t, 1 + p] · max(d score / d attention[h, t, 1 + p], 0) over the image patches p (the
// image [CLS] token left out); padding rows are 0. maps holds T·G² floats. Parameter gradients are
// left zeroed. The authors use block_num 8 (the 3rd fusion layer of BERT-base):
// vlt_albef_gradcam_layer gives fusion_layer + 2, but never the last layer when there is another
// fusion layer (the ITM head reads only the last layer's [CLS], so its other rows get no gradient
// and every word's map would be 0): demo-albef (4 layers, fusion from 2) takes layer 2.
int vlt_albef_gradcam_layer(const vlt_albef *m);
vlt_status vlt_albef_gradcam(vlt_albef *m, vlt_tensor *image, vlt_tensor *ids, int layer, float *maps, float *score);

// The draws, exposed for tests: MLM masking of ids (B, T) into mlm_ids / labels (host i32,
// B·T each); returns the number masked. Negatives from similarity rows sim (B, B) (host):
// neg[b] drawn from softmax(sim[b]) with the diagonal zeroed.
// `rank` keys the draws of each data-parallel rank apart (0 in one process).
int vlt_albef_mask_tokens(const vlt_albef *m, const int32_t *ids, int B, int T, uint64_t step, int rank,
                          int32_t *mlm_ids, int32_t *labels);
void vlt_albef_sample_negatives(const float *sim, int B, uint64_t seed, uint64_t step, int which, int32_t *neg);
// For tests: a host model's step takes the GPU path's formulation (targets mixed by tensor ops,
// the negatives' similarity blocks and the MLM argmax through ops and copies, BERT's pad rows by
// vlt_bert_set_device_path), which must give the host path's bits: the suite checks the GPU
// branch's logic without a GPU. Off by default.
void vlt_albef_set_device_path(bool on);

// ALBEF's load of weights at another image size: pos_embed of visual_encoder and
// visual_encoder_m in file `f` interpolated to this model's grid (vlt_interpolate_pos_embed).
// Loads strictly otherwise. `lenient` as vlt_safetensors_load_params.
struct vlt_safetensors;
vlt_status vlt_albef_load(vlt_albef *m, const char *path, bool lenient);

#endif
