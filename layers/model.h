// model.h — the model interface (DESIGN.md, "Models behind one interface"): one handle for every
// model vlt trains, with a table of functions per model kind and the capabilities the kind
// offers. The trainer, `vlt embed`, `vlt eval` and the report ask for a capability and call
// through the table; they never test which model it is.
//
// Kinds today: "clip" (open_clip's CLIP), "siglip" (CLIP towers with SigLIP's sigmoid loss and
// logit_bias), "coca" (CLIP towers + attentional pooler + multimodal decoder), "clip_vqa" (CLIP
// towers + the VQA classifier head, layers/vqa_head.h), "albef_vqa" (ALBEF's VQA model: answer
// decoder and candidate ranking, layers/albef_vqa.h; an ALBEF config with an "albef_vqa" section).
// The model config picks the kind (a
// multimodal_cfg makes CoCa; init_logit_bias makes SigLIP; vqa.n_answers > 0 the VQA classifier).
//
// A training batch is a set of named tensors (vlt_model_batch): the trainer fills what its
// loader produces ("images" (B, 3, S, S) f32, "text_ids" (B, T) i32 today; question and answer
// fields when VQA data lands) and each kind reads the fields it needs, refusing by name a batch
// that lacks one. Loss settings come the same way (vlt_loss_opts: named values from the run
// config's loss section; a kind reads those it knows, with its own defaults).
#ifndef VLT_MODEL_H
#define VLT_MODEL_H

#include "layers/albef.h"
#include "layers/clip.h"
#include "layers/coca.h"
#include "layers/generate.h"

// ---- capabilities ----
typedef enum {
    VLT_CAP_EMBED = 1u << 0,    // encode_image / encode_text: retrieval, zero-shot, `vlt embed`
    VLT_CAP_CAPTION = 1u << 1,  // caption: text generation from images
    VLT_CAP_EXPLAIN = 1u << 2,  // explain: where in the image the image-text similarity comes from
    VLT_CAP_ANSWER = 1u << 3,   // answer: VQA, an answer of the answer vocabulary per question
    VLT_CAP_MATCH = 1u << 4,    // match_tokens / match: an image-text matching score of pairs (ALBEF's ITM),
                                // for re-ranking the retrieval candidates of the features
} vlt_model_cap;

// ---- a batch of named tensors ----
#define VLT_MODEL_BATCH_MAX 8
#define VLT_FIELD_IMAGES "images"      // (B, 3, S, S) f32, normalized
#define VLT_FIELD_TEXT_IDS "text_ids"  // (B, T) i32, the model's tokenizer
#define VLT_FIELD_TEXT_ATTS "text_atts"  // (B, T) i32, 1 = token, 0 = padding (optional: ids != pad)
// ALBEF's draws given from outside (optional; tests feed a reference's): the masked MLM input and
// its labels (-100 where not masked), (B, T) i32; the negative image of each text and the negative
// text of each image, (B) i32.
#define VLT_FIELD_MLM_IDS "mlm_ids"
#define VLT_FIELD_MLM_LABELS "mlm_labels"
#define VLT_FIELD_NEG_IMAGE_IDX "neg_image_idx"
#define VLT_FIELD_NEG_TEXT_IDX "neg_text_idx"
#define VLT_FIELD_QUESTION_IDS "question_ids"    // (B, T) i32: VQA questions, the model's tokenizer
#define VLT_FIELD_ANSWER_SCORES "answer_scores"  // (B, N) f32: VQAv2 soft score of each vocabulary answer
// A generative answer head (ALBEF VQA) trains on answer sequences instead: each question's k[b]
// answers in order, tokenized with the model's tokenizer, and their weights.
#define VLT_FIELD_QUESTION_ATTS "question_atts"    // (B, T) i32, 1 = token (optional: ids != pad)
#define VLT_FIELD_ANSWER_IDS "answer_ids"          // (N, Ta) i32, N = Σ k: [CLS] answer [SEP] [SEP] [PAD]...
#define VLT_FIELD_ANSWER_ATTS "answer_atts"        // (N, Ta) i32 (optional: ids != pad)
#define VLT_FIELD_ANSWER_WEIGHTS "answer_weights"  // (N) f32
#define VLT_FIELD_ANSWER_K "answer_k"              // (B) i32: answers of each question
typedef struct {
    int n;
    const char *names[VLT_MODEL_BATCH_MAX];
    vlt_tensor *t[VLT_MODEL_BATCH_MAX];
} vlt_model_batch;

// Sets (or replaces) field `name`; VLT_ERR_ARG when the batch is full.
vlt_status vlt_model_batch_set(vlt_model_batch *b, const char *name, vlt_tensor *t);
// The field, or NULL.
vlt_tensor *vlt_model_batch_get(const vlt_model_batch *b, const char *name);

// ---- loss settings ----
// The contrastive loss of a batch's normalized features (data parallel swaps in the global
// batch's): returns the (1) loss, or NULL with the error set.
typedef vlt_tensor *(*vlt_contrastive_fn)(void *ctx, vlt_tensor *img, vlt_tensor *txt, vlt_tensor *logit_scale,
                                          vlt_tensor *logit_bias);
#define VLT_LOSS_OPTS_MAX 8
typedef struct {
    int n;
    const char *names[VLT_LOSS_OPTS_MAX];  // e.g. "clip_weight", "caption_weight", "label_smoothing"
    float values[VLT_LOSS_OPTS_MAX];
    // Training progress the trainer passes as named values too: "step" (the optimizer step this
    // batch belongs to: the counter of a model's random draws) and "epoch_progress" (epochs done,
    // fractional: ALBEF ramps its distillation weight over the first epoch).
    vlt_contrastive_fn contrastive;        // NULL: the model's own (one process)
    void *contrastive_ctx;
    // This rank's share of a token-mean loss under data parallelism: local tokens × ranks / all
    // tokens (1 in one process), so that the ranks' average is the one-process mean.
    float token_loss_scale;
    // Data parallel (NULL in one process): every rank's rows of x (B, ...), in rank order, and
    // this process's rank (ALBEF: its queues take all ranks' momentum features; its draws differ
    // by rank).
    vlt_tensor *(*all_gather)(void *ctx, vlt_tensor *x);
    void *all_gather_ctx;
    int rank;
} vlt_loss_opts;

vlt_loss_opts vlt_loss_opts_default(void);  // no named values, no hook, token_loss_scale 1
vlt_status vlt_loss_opts_set(vlt_loss_opts *o, const char *name, float value);
float vlt_loss_opts_get(const vlt_loss_opts *o, const char *name, float dflt);

// The loss of a batch: the total and its named parts (already weighted; they sum to the total).
#define VLT_LOSS_PARTS_MAX 4
typedef struct {
    vlt_tensor *loss;  // (1)
    int n_parts;
    const char *part_names[VLT_LOSS_PARTS_MAX];
    vlt_tensor *parts[VLT_LOSS_PARTS_MAX];
    // Named host values for the log beside the parts (ALBEF: itm_acc, mlm_acc).
    int n_metrics;
    const char *metric_names[VLT_LOSS_PARTS_MAX];
    float metrics[VLT_LOSS_PARTS_MAX];
} vlt_model_loss;

// ---- the table of a model kind ----
typedef struct vlt_model vlt_model;
typedef struct {
    const char *kind;  // "clip", "siglip", "coca": for messages and reports, never branched on
    const char *title; // "CLIP", "SigLIP", "CoCa": the same for people (vlt model list, start-up line)
    unsigned caps;     // vlt_model_cap bits
    vlt_status (*loss)(vlt_model *m, const vlt_model_batch *b, const vlt_loss_opts *o, vlt_model_loss *out);
    // After each optimizer step (logit_scale clamped to [0, ln 100]; momentum EMA and queues later).
    void (*after_step)(vlt_model *m);
    // VLT_CAP_EMBED: L2-normalized features (B, E).
    vlt_tensor *(*encode_image)(vlt_model *m, vlt_tensor *images);
    vlt_tensor *(*encode_text)(vlt_model *m, vlt_tensor *ids);
    // VLT_CAP_MATCH: the image tokens the matching reads, (B, N, W) for images (B, 3, S, S); and
    // a score (higher: a better match; ALBEF: the raw positive ITM logit) that text ids[i] (n, T)
    // describes the image of tokens[i] (n, N, W), (n).
    vlt_tensor *(*match_tokens)(vlt_model *m, vlt_tensor *images);
    vlt_tensor *(*match)(vlt_model *m, vlt_tensor *tokens, vlt_tensor *ids);
    // VLT_CAP_CAPTION: token ids (B, g->max_len) into out (B · max_len) for images (B, 3, S, S).
    vlt_status (*caption)(vlt_model *m, vlt_tensor *images, const vlt_generate_cfg *g, int32_t *out);
    // VLT_CAP_EXPLAIN: a relevance map (grid x grid, the patch grid, row-major, >= 0, not
    // normalized) of the cosine similarity of one image (1, 3, S, S) and one text (1, T) over the
    // image patches, and that similarity into *score. Parameter gradients are left zeroed.
    vlt_status (*explain)(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *map, float *score);
    // VLT_CAP_EXPLAIN, optional (a kind whose relevance is per word: ALBEF's Grad-CAM): one map per
    // token of ids (1, T) into maps (T rows of grid², padding rows 0) and the score they explain;
    // explain's map is then their mean over the text's tokens. token_text names a token id.
    vlt_status (*explain_tokens)(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *maps, float *score);
    const char *(*token_text)(const vlt_model *m, int32_t id);
    const char *explain_method;  // what the maps are, for reports (NULL: CLIP's |gradient . input|)
    // VLT_CAP_ANSWER: for images (B, 3, S, S) and questions (B, T), the index in the answer
    // vocabulary of each question's answer into best (B), and the model's confidence in it (a
    // probability) into conf (B; may be NULL). Call under no_grad.
    vlt_status (*answer)(vlt_model *m, vlt_tensor *images, vlt_tensor *question_ids, int32_t *best, float *conf);
    // VLT_CAP_ANSWER by ranking a candidate list (ALBEF VQA: the authors' rank_answer) rather than
    // classifying over a vocabulary fixed at creation: the answers (the run's answer vocabulary)
    // that answer() returns indices into, tokenized by the kind; and their number. NULL for a
    // classifier (its vocabulary size is cfg.vqa.n_answers).
    vlt_status (*set_answers)(vlt_model *m, const char *const *answers, int n);
    int (*n_answers)(const vlt_model *m);
    // A generative answer head's training fields (answer_ids, answer_weights, answer_k; step
    // activations) from the n samples' .json members (vlt shards --vqa; the trainer keeps them
    // when this is set). NULL: the kind reads answer_scores.
    vlt_status (*answer_fields)(vlt_model *m, char *const *json, int n, vlt_model_batch *b);
    // model.init_from for a kind whose starting weights are not its own table (ALBEF VQA: an ALBEF
    // pretraining checkpoint through VQA.py's remapping, or an ALBEF VQA checkpoint at another
    // image size). NULL: the trainer's strict load of the table's names.
    vlt_status (*load_init)(vlt_model *m, const char *path);
    // Tokens a batch contributes to the kind's token-mean losses (0: it has none).
    int64_t (*loss_tokens)(const vlt_model *m, const vlt_model_batch *b);
    // A kind with its own text tokenizer (ALBEF: BERT WordPiece of its config's vocabulary): text to
    // ids (T) and attention mask (T, may be NULL); returns the non-pad count or -1. NULL: the
    // caller's tokenizer (open_clip's BPE) makes the ids.
    int (*tokenize)(const vlt_model *m, const char *text, int32_t *ids, int32_t *mask, int T);
    bool (*has_tokenizer)(const vlt_model *m);   // NULL: tokenize != NULL says it
    // NULL when the kind trains on the GPU, else why it does not yet (for the trainer's refusal).
    const char *(*gpu_unsupported)(const vlt_model *m);
    const char *fresh_prefix;  // see vlt_model_fresh_prefix (NULL: none)
    void (*destroy)(vlt_model *m);
} vlt_model_ops;

struct vlt_model {
    const vlt_model_ops *ops;
    vlt_model_cfg cfg;
    vlt_params *params;       // the parameter table (open_clip names): what checkpoints hold
    vlt_tensor *logit_scale;  // 0-d
    void *impl;               // the kind's own struct (vlt_clip, vlt_coca), owned by the handle
};

// Creates the kind the config names. On failure nothing is left allocated.
vlt_status vlt_model_create(vlt_model *m, const vlt_model_cfg *cfg, uint64_t seed);
// The same model with its table's names and shapes but no initial values drawn (the random
// parameters stay zero; constants such as norms' ones and ALBEF's temp are set): for what needs
// only the table's layout (`vlt model list` and `info`: counts), at a small part of the cost.
vlt_status vlt_model_create_shapes(vlt_model *m, const vlt_model_cfg *cfg);
void vlt_model_free(vlt_model *m);
// The trainable parameters (what PyTorch's named_parameters() counts): momentum copies, queues,
// buffers and tied aliases in the table are left out.
int64_t vlt_model_trainable_numel(const vlt_model *m);
// The kind a config makes, without creating it ("clip", "siglip", "coca").
const char *vlt_model_kind_of(const vlt_model_cfg *cfg);

static inline bool vlt_model_can(const vlt_model *m, vlt_model_cap c) { return m->ops && (m->ops->caps & c); }
static inline const char *vlt_model_kind(const vlt_model *m) { return m->ops ? m->ops->kind : "none"; }
static inline const char *vlt_model_title(const vlt_model *m) { return m->ops ? m->ops->title : "none"; }

// Calls through the table; inputs on another device than the parameters are copied there (an
// activation of this step). A capability the kind lacks is refused with VLT_ERR_UNSUPPORTED
// naming the kind.
vlt_status vlt_model_loss_forward(vlt_model *m, const vlt_model_batch *b, const vlt_loss_opts *o, vlt_model_loss *out);
vlt_tensor *vlt_model_encode_image(vlt_model *m, vlt_tensor *images);
vlt_tensor *vlt_model_encode_text(vlt_model *m, vlt_tensor *ids);
vlt_status vlt_model_caption(vlt_model *m, vlt_tensor *images, const vlt_generate_cfg *g, int32_t *out);
int64_t vlt_model_loss_tokens(const vlt_model *m, const vlt_model_batch *b);
// The patch grid side of the image tower (image_size / patch_size): explain's map is grid².
int vlt_model_patch_grid(const vlt_model *m);
vlt_status vlt_model_explain(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *map, float *score);
// Per-token maps (see vlt_model_ops.explain_tokens): false when the kind has none.
bool vlt_model_explains_tokens(const vlt_model *m);
vlt_status vlt_model_explain_tokens(vlt_model *m, vlt_tensor *image, vlt_tensor *ids, float *maps, float *score);
const char *vlt_model_token_text(const vlt_model *m, int32_t id);   // "?" when unknown
const char *vlt_model_explain_method(const vlt_model *m);
vlt_status vlt_model_answer(vlt_model *m, vlt_tensor *images, vlt_tensor *question_ids, int32_t *best, float *conf);
// VLT_CAP_ANSWER: the size of the answer vocabulary the model answers from (0 for other kinds).
int vlt_model_answers(const vlt_model *m);
// The candidate answers of a ranking kind (see vlt_model_ops.set_answers); VLT_OK and nothing
// done for a classifier, whose vocabulary is fixed by its config.
vlt_status vlt_model_set_answers(vlt_model *m, const char *const *answers, int n);
// Whether the kind builds its answer fields from the samples' .json, and the call (see
// vlt_model_ops.answer_fields; VLT_OK and nothing set for other kinds).
// model.init_from through the kind's own loader (see vlt_model_ops.load_init), when it has one.
bool vlt_model_has_init_loader(const vlt_model *m);
vlt_status vlt_model_load_init(vlt_model *m, const char *path);
bool vlt_model_builds_answers(const vlt_model *m);
vlt_status vlt_model_answer_fields(vlt_model *m, char *const *json, int n, vlt_model_batch *b);
// ALBEF VQA's table lives with its model (layers/albef_vqa.c); vlt_model_create calls this for an
// ALBEF config with an "albef_vqa" section.
vlt_status vlt_albef_vqa_model_create(vlt_model *m, const vlt_model_cfg *cfg, uint64_t seed);
extern const char VLT_ALBEF_VQA_KIND[];
// Parameters a model of this kind initializes itself when it starts from the weights of its base
// model (model.init_from with open_clip CLIP weights for the VQA classifier: "vqa_head."), or
// NULL: a missing one of those in the weights file is expected, any other is not.
const char *vlt_model_fresh_prefix(const vlt_model *m);
const char *vlt_model_gpu_unsupported(const vlt_model *m);
// VLT_CAP_MATCH (see vlt_model_ops.match_tokens / match); refused by name for other kinds.
vlt_tensor *vlt_model_match_tokens(vlt_model *m, vlt_tensor *images);
vlt_tensor *vlt_model_match(vlt_model *m, vlt_tensor *tokens, vlt_tensor *ids);
// Whether the kind tokenizes its own text (see vlt_model_ops.tokenize), and the call.
bool vlt_model_has_tokenizer(const vlt_model *m);
int vlt_model_tokenize(const vlt_model *m, const char *text, int32_t *ids, int32_t *mask, int T);
void vlt_model_after_step(vlt_model *m);

#endif
