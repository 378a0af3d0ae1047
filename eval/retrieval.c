// retrieval.c — blocked recall@k and ranks (see retrieval.h).
#include "eval/retrieval.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void vlt_eval_recall_from_ranks(const int64_t *ranks, int n, vlt_eval_recall *out) {
    memset(out, 0, sizeof *out);
    out->n_queries = n;
    if (n <= 0) return;
    static const int K[3] = {1, 5, 10};
    double sum = 0;
    int64_t *sorted = malloc((size_t)n * sizeof *sorted);
    for (int i = 0; i < n; i++) {
        sum += (double)ranks[i];
        for (int k = 0; k < 3; k++) out->recall[k] += ranks[i] <= K[k];
        if (sorted) sorted[i] = ranks[i] - 1;
    }
    for (int k = 0; k < 3; k++) out->recall[k] /= n;
    out->mean_rank = sum / n;
    if (sorted) {  // np.floor(np.median(preds)) + 1 with 0-based preds
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_i64);
        double med = n % 2 ? (double)sorted[n / 2] : ((double)sorted[n / 2 - 1] + (double)sorted[n / 2]) / 2;
        out->median_rank = floor(med) + 1;
        free(sorted);
    } else {
        out->median_rank = NAN;
    }
}

static int check_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

// For each query row q in [q0, q0+nb) of S (nb, n_cand): rank = 1 + #(non-target candidates with
// score >= target). Targets: image->text, candidates cand_of[q] (CSR: start[q]..start[q+1]);
// text->image, the one candidate owner[q].
static void rank_block(const float *S, int q0, int nb, int n_cand, const int32_t *start, const int32_t *cand,
                       const int32_t *owner, int64_t *rank) {
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < nb; b++) {
        const float *row = S + (size_t)b * n_cand;
        int q = q0 + b;
        int64_t count = 0;
        if (owner) {  // text->image: one target image
            float t = row[owner[q]];
            for (int c = 0; c < n_cand; c++) count += row[c] >= t;
            count -= 1;  // the target itself
        } else {      // image->text: best of the image's captions; its captions never count
            float t = row[cand[start[q]]];
            for (int k = start[q] + 1; k < start[q + 1]; k++) t = row[cand[k]] > t ? row[cand[k]] : t;
            for (int c = 0; c < n_cand; c++) count += row[c] >= t;
            for (int k = start[q]; k < start[q + 1]; k++) count -= row[cand[k]] >= t;
        }
        rank[q] = 1 + count;
    }
}

// Ranks of the n_q queries Q (n_q, dim) against the candidates C (n_c, dim), block_rows at a time.
static vlt_status rank_all(const float *Q, int n_q, const float *C, int n_c, int dim, int block_rows,
                           const int32_t *start, const int32_t *cand, const int32_t *owner, int64_t *rank) {
    if (block_rows <= 0) block_rows = (int)(((size_t)8 << 20) / (size_t)n_c);
    if (block_rows < 1) block_rows = 1;
    if (block_rows > n_q) block_rows = n_q;
    float *S = malloc((size_t)block_rows * (size_t)n_c * sizeof *S);
    if (!S) return vlt_error_set(VLT_ERR_NOMEM, "retrieval: cannot allocate a %d x %d score block", block_rows, n_c);
    for (int q0 = 0; q0 < n_q; q0 += block_rows) {
        int nb = n_q - q0 < block_rows ? n_q - q0 : block_rows;
        // S (nb, n_c) = Q[q0:q0+nb] (nb, dim) . C^T (dim, n_c)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, n_c, dim, 1.0f, Q + (size_t)q0 * dim, dim, C, dim,
                    0.0f, S, n_c);
        rank_block(S, q0, nb, n_c, start, cand, owner, rank);
    }
    free(S);
    return VLT_OK;
}

static vlt_status check_args(const float *img, int n_img, const float *txt, int n_txt, int dim, const int32_t *txt_img) {
    if (!img || !txt || !txt_img || n_img < 1 || n_txt < 1 || dim < 1)
        return vlt_error_set(VLT_ERR_ARG, "retrieval: need images (%d) and captions (%d) with dim %d >= 1", n_img, n_txt, dim);
    for (int c = 0; c < n_txt; c++)
        if (txt_img[c] < 0 || txt_img[c] >= n_img)
            return vlt_error_set(VLT_ERR_ARG, "retrieval: caption %d points to image %d, outside [0, %d)", c, txt_img[c], n_img);
    if (!check_finite(img, (size_t)n_img * dim)) return vlt_error_set(VLT_ERR_ARG, "retrieval: image embeddings contain NaN or Inf");
    if (!check_finite(txt, (size_t)n_txt * dim)) return vlt_error_set(VLT_ERR_ARG, "retrieval: text embeddings contain NaN or Inf");
    return VLT_OK;
}

vlt_status vlt_eval_retrieval(const float *img, int n_img, const float *txt, int n_txt, int dim,
                              const int32_t *txt_img, int block_rows, vlt_eval_retrieval_result *out,
                              int64_t *img_rank, int64_t *txt_rank) {
    VLT_TRY(check_args(img, n_img, txt, n_txt, dim, txt_img));
    // Captions of each image, CSR by counting sort.
    int32_t *start = calloc((size_t)n_img + 1, sizeof *start), *cand = malloc((size_t)n_txt * sizeof *cand);
    int64_t *ir = img_rank ? img_rank : malloc((size_t)n_img * sizeof *ir);
    int64_t *tr = txt_rank ? txt_rank : malloc((size_t)n_txt * sizeof *tr);
    vlt_status st = VLT_OK;
    if (!start || !cand || !ir || !tr) st = vlt_error_set(VLT_ERR_NOMEM, "retrieval: out of memory");
    if (st == VLT_OK) {
        for (int c = 0; c < n_txt; c++) start[txt_img[c] + 1]++;
        for (int i = 0; i < n_img; i++) {
            if (start[i + 1] == 0 && st == VLT_OK) st = vlt_error_set(VLT_ERR_ARG, "retrieval: image %d has no caption", i);
            start[i + 1] += start[i];
        }
    }
    if (st == VLT_OK) {
        int32_t *fill = malloc((size_t)n_img * sizeof *fill);
        if (!fill) st = vlt_error_set(VLT_ERR_NOMEM, "retrieval: out of memory");
        else {
            memcpy(fill, start, (size_t)n_img * sizeof *fill);
            for (int c = 0; c < n_txt; c++) cand[fill[txt_img[c]]++] = c;
            free(fill);
        }
    }
    if (st == VLT_OK) st = rank_all(img, n_img, txt, n_txt, dim, block_rows, start, cand, NULL, ir);
    if (st == VLT_OK) st = rank_all(txt, n_txt, img, n_img, dim, block_rows, NULL, NULL, txt_img, tr);
    if (st == VLT_OK) {
        vlt_eval_recall_from_ranks(ir, n_img, &out->i2t);
        vlt_eval_recall_from_ranks(tr, n_txt, &out->t2i);
    }
    free(start);
    free(cand);
    if (!img_rank) free(ir);
    if (!txt_rank) free(tr);
    return st;
}

int64_t vlt_eval_rows_not_unit(const float *x, int64_t n, int64_t d, double tol, int64_t *first, double *first_norm) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double ss = 0;
        for (int64_t k = 0; k < d; k++) ss += (double)x[i * d + k] * x[i * d + k];
        double norm = sqrt(ss);
        if (!(fabs(norm - 1.0) <= tol)) {  // also NaN
            if (bad == 0) {
                if (first) *first = i;
                if (first_norm) *first_norm = norm;
            }
            bad++;
        }
    }
    return bad;
}
