// retrieval.h — image<->text retrieval metrics from embedding matrices: recall@1/5/10, mean and
// median rank, with several captions per image.
//
// Scores are dot products (pass L2-normalized embeddings for cosine similarity). Image->text:
// an image's rank is the best rank of any of its captions. Text->image: a caption's rank is the
// rank of its one image. Ranks are 1-based.
//
// Ties count AGAINST the target (pessimistic): rank = 1 + number of non-target candidates whose
// score is >= the target's (for image->text, the target is the image's best-scoring caption;
// other captions of the same image never count). open_clip (get_clip_metrics: argsort then
// position of the target) and the common COCO code (VSE++/ALBEF/BLIP i2t/t2i: np.argsort, best
// rank over an image's captions) leave ties to an unstable sort, so their tie order is
// unspecified; on tie-free scores all three give the same ranks. vlt picks the pessimistic
// convention because it cannot reward a collapsed model (all scores equal -> worst rank).
// Mean rank is the mean of the 1-based ranks; median rank is floor(median of the 0-based ranks)
// + 1, as open_clip computes it (the lower middle, for an even count, rounded down).
//
// Computation is blocked: block_rows queries at a time against all candidates with one
// cblas_sgemm (block_rows x N_candidates floats of scratch), then a count per row; no sort.
#ifndef VLT_EVAL_RETRIEVAL_H
#define VLT_EVAL_RETRIEVAL_H

#include <stdint.h>

#include "autograd/error.h"

typedef struct {
    double recall[3];    // fraction of queries with rank <= 1, 5, 10
    double mean_rank;    // 1-based
    double median_rank;  // floor(median(rank - 1)) + 1
    int n_queries;
} vlt_eval_recall;

typedef struct {
    vlt_eval_recall i2t;  // queries: images, candidates: captions
    vlt_eval_recall t2i;  // queries: captions, candidates: images
} vlt_eval_retrieval_result;

// img (n_img, dim), txt (n_txt, dim) float32 row-major; txt_img (n_txt) the image index
// (0..n_img) of each caption; every image needs at least one caption. block_rows <= 0 picks a
// block of about 32 MB of scores. img_rank (n_img) / txt_rank (n_txt): the 1-based ranks, or NULL.
vlt_status vlt_eval_retrieval(const float *img, int n_img, const float *txt, int n_txt, int dim,
                              const int32_t *txt_img, int block_rows, vlt_eval_retrieval_result *out,
                              int64_t *img_rank, int64_t *txt_rank);

// Summary of 1-based ranks (n >= 1) with the conventions above.
void vlt_eval_recall_from_ranks(const int64_t *ranks, int n, vlt_eval_recall *out);

// Rows of x (n, d) whose L2 norm is not 1 within tol (relative): their number; *first (may be
// NULL) the first such row, *first_norm its norm. Retrieval ranks by dot product, which is cosine
// similarity only for unit rows: `vlt eval retrieval` warns when this is not 0 and --normalize
// was not given (vlt embed writes unit rows; other tools may not).
int64_t vlt_eval_rows_not_unit(const float *x, int64_t n, int64_t d, double tol, int64_t *first, double *first_norm);

#endif
