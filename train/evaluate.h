// evaluate.h — evaluation of a model on a shard set: embed image-caption pairs (eval transform,
// shard order, one reader) for retrieval recall@k, and CoCa's greedy captions scored with
// BLEU-4 and CIDEr-D. Used by the trainer's periodic eval, `vlt embed` and `vlt eval checkpoint`.
#ifndef VLT_EVALUATE_H
#define VLT_EVALUATE_H

#include <stdio.h>

#include "data/loader.h"
#include "data/tokenizer.h"
#include "eval/retrieval.h"
#include "layers/model.h"

// The loader configuration every evaluation uses (embed, eval checkpoint / zeroshot, validation):
// the shards in spec order, one reader, no shuffle, every sample, the eval transform, and
// full-size image decoding as PIL does (fast_decode 0: no DCT-scaled JPEG decoding). label_ext
// (may be NULL): read class labels and let captions be missing.
void vlt_eval_loader_cfg(int image_size, int context_len, const vlt_tokenizer *tok, const char *shards, int batch,
                         const char *label_ext, vlt_loader_cfg *lc);

typedef struct {
    int n, dim;
    float *img;            // (n, dim) L2-normalized image features
    int n_txt;             // captions: every caption of each image (grouped), n_txt >= n
    float *txt;            // (n_txt, dim) L2-normalized caption features, each image's in a row
    int32_t *txt_img;      // (n_txt) the image (0..n) of each caption
    char **txt_str;        // (n_txt) each caption's text
    int64_t *image_ids;    // (n) the dataset's image ids ("image_id" of the .json), else the sample index
    char **keys;           // n sample keys
    char **captions;       // n captions (the .txt one)
    // A model that can match pairs (VLT_CAP_MATCH, ALBEF): what re-ranking reads, else NULL.
    float *img_tok;        // (n, tok_n, tok_w) each image's matching tokens
    int tok_n, tok_w;
    int32_t *txt_ids;      // (n_txt, txt_T) each caption's token ids
    int txt_T;
} vlt_embedded_pairs;

// The model's normalized text features of rows [0, n) of token ids (n, T) into out (n, E),
// `batch` rows at a time (each chunk's activations released as it is read back); call under
// vlt_no_grad_enter.
vlt_status vlt_encode_texts(vlt_model *m, const int32_t *ids, int n, int T, int batch, float *out);

// Embeds up to `limit` images (0: all) of `shards`, `batch` at a time, under no_grad, each with
// all of its captions: the "captions" list of its .json member (as `vlt shards` packs COCO and
// Karpathy: the standard 5-captions-per-image protocol), or its one caption when there is none.
vlt_status vlt_embed_pairs(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch, int limit,
                           vlt_embedded_pairs *out);
void vlt_embedded_pairs_free(vlt_embedded_pairs *p);
// Retrieval over the grouped captions: image->text ranks the best of an image's captions (a tie
// counts against the target), text->image the caption's image.
vlt_status vlt_eval_pairs_retrieval(const vlt_embedded_pairs *p, vlt_eval_retrieval_result *r);
// ALBEF's retrieval protocol on pairs embedded by a VLT_CAP_MATCH model: each query's k best
// candidates by feature similarity re-scored by the model's match score (ALBEF: the ITM logit), in `batch`
// pairs at a time; a target outside them ranks last (ALBEF scores the rest -100, all tied, and
// ties count against the target, as in vlt_eval_pairs_retrieval). Call under vlt_no_grad_enter.
vlt_status vlt_eval_pairs_rerank(vlt_model *m, const vlt_embedded_pairs *p, int k, int batch,
                                 vlt_eval_retrieval_result *r);
// The matching head's pair accuracy on pairs embedded by a VLT_CAP_MATCH model: for each image,
// its first caption against one caption of another image whose text differs from every caption
// of this image (drawn with the counter-based RNG from a fixed seed, so every run draws the same;
// an image with no such caption among 64 draws is skipped); correct when the true caption scores
// higher (a tie counts as wrong). Chance is 0.5. *acc in [0, 1], *n_used the images scored;
// other (n, may be NULL): each image's drawn caption (-1: skipped). Call under vlt_no_grad_enter.
vlt_status vlt_eval_pairs_match_accuracy(vlt_model *m, const vlt_embedded_pairs *p, int batch, double *acc,
                                         int *n_used, int32_t *other);

typedef struct {
    int n;                 // images captioned
    double bleu[4], cider;
    char **keys, **generated, **reference;   // n each; reference[i]: image i's references, one per line
    int64_t *image_ids;                      // n: the dataset's ids (.json "image_id"), else the sample index
    double *cider_per_image;                 // n: each image's CIDEr-D (the HTML report sorts by it)
} vlt_caption_eval;

// The generation settings evaluation uses by default: open_clip's (greedy, max_len 30, min_len 5,
// no repetition penalty) with max_len clipped to the model's text and decoder contexts.
vlt_generate_cfg vlt_caption_defaults(const vlt_model *m);

// A captioner's captions (settings g) of up to `limit` images of `shards` (0: all), in shard
// order, with each image's id, key and .txt caption; no scores. A model without the caption
// capability is refused (VLT_ERR_UNSUPPORTED), naming its kind.
vlt_status vlt_caption_shards(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch, int limit,
                              const vlt_generate_cfg *g, vlt_caption_eval *out);

// CoCa: greedy captions (vlt_caption_defaults) for up to `limit` images of `shards` (0: all),
// scored against the shards' captions with pycocoevalcap's tokenization, BLEU-1..4 and CIDEr-D.
vlt_status vlt_eval_captions_on_shards(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch,
                                       int limit, vlt_caption_eval *out);
void vlt_caption_eval_free(vlt_caption_eval *e);

// Writes the captions in the COCO results format, [{"image_id": id, "caption": text}, ...] in
// image order, to a temporary file renamed to path (never half a file at path).
vlt_status vlt_captions_save_coco(const vlt_caption_eval *c, const char *path);

// Zero-shot classification: class vectors from `templates` (each with one "{}" where the class
// name goes, as open_clip's templates) averaged per class as open_clip's
// build_zero_shot_classifier; images of `shards` (up to `limit`, 0: all) labeled by their
// integer `.label_ext` member (webdataset classification shards use "cls"). Top-1 / top-5.
vlt_status vlt_eval_zeroshot_on_shards(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch,
                                       int limit, const char *label_ext, char *const *classes, int n_classes,
                                       char *const *templates, int n_templates, double *top1, double *top5,
                                       int *n_images);

#endif
