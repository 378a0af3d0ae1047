// bleu.c — BLEU-1..4 as pycocoevalcap computes it (see bleu.h).
#include "eval/bleu.h"

#include <math.h>
#include <stdlib.h>

#define BLEU_TINY 1e-15
#define BLEU_SMALL 1e-9

typedef struct {
    long long testlen, reflen;
    long long guess[4], correct[4];
} bleu_counts;

// BLEU-1..4 from summed counts, with pycocoevalcap's constants and brevity penalty.
static void bleu_from_counts(const bleu_counts *c, double out[4]) {
    double b = 1.0;
    for (int k = 0; k < 4; k++) {
        b *= ((double)c->correct[k] + BLEU_TINY) / ((double)c->guess[k] + BLEU_SMALL);
        out[k] = pow(b, 1.0 / (k + 1));
    }
    double ratio = ((double)c->testlen + BLEU_TINY) / ((double)c->reflen + BLEU_SMALL);
    if (ratio < 1)
        for (int k = 0; k < 4; k++) out[k] *= exp(1 - 1 / ratio);
}

// Clipped matches of the candidate against the max counts over refs, per n-gram order.
// `maxc` is scratch indexed by n-gram id, all zero on entry and left all zero on exit.
static void image_counts(const vlt_eval_caption_set *s, int i, uint32_t *maxc, bleu_counts *c) {
    int nr;
    const vlt_eval_sentence *refs = vlt_eval_caption_set_refs(s, i, &nr);
    const vlt_eval_sentence *cand = vlt_eval_caption_set_candidate(s, i);
    long long tl = cand->n_words;
    long long best = -1, best_d = 0;
    for (int r = 0; r < nr; r++) {
        const vlt_eval_sentence *ref = &refs[r];
        long long l = ref->n_words, d = llabs(l - tl);
        if (best < 0 || d < best_d || (d == best_d && l < best)) { best = l; best_d = d; }
        for (int e = 0; e < ref->n_entries; e++)
            if (ref->counts[e] > maxc[ref->ids[e]]) maxc[ref->ids[e]] = ref->counts[e];
    }
    c->testlen = tl;
    c->reflen = best;
    for (int k = 0; k < 4; k++) {
        c->guess[k] = tl - k > 0 ? tl - k : 0;
        c->correct[k] = 0;
    }
    for (int e = 0; e < cand->n_entries; e++) {
        uint32_t id = cand->ids[e], m = maxc[id];
        c->correct[vlt_eval_caption_set_ngram_order(s, id) - 1] += cand->counts[e] < m ? cand->counts[e] : m;
    }
    for (int r = 0; r < nr; r++)
        for (int e = 0; e < refs[r].n_entries; e++) maxc[refs[r].ids[e]] = 0;
}

vlt_status vlt_eval_bleu(const vlt_eval_caption_set *s, double bleu[4], double *per_image) {
    int n = vlt_eval_caption_set_n_images(s);
    if (n < 1) return vlt_error_set(VLT_ERR_ARG, "bleu: the caption set is empty");
    uint32_t *maxc = calloc((size_t)vlt_eval_caption_set_n_ngrams(s) + 1, sizeof *maxc);
    if (!maxc) return vlt_error_set(VLT_ERR_NOMEM, "bleu: out of memory");
    bleu_counts total = {0};
    for (int i = 0; i < n; i++) {
        bleu_counts c;
        image_counts(s, i, maxc, &c);
        total.testlen += c.testlen;
        total.reflen += c.reflen;
        for (int k = 0; k < 4; k++) {
            total.guess[k] += c.guess[k];
            total.correct[k] += c.correct[k];
        }
        if (per_image) bleu_from_counts(&c, per_image + (size_t)i * 4);
    }
    bleu_from_counts(&total, bleu);
    free(maxc);
    return VLT_OK;
}
