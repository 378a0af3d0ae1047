// bleu.h — corpus BLEU-1..4 exactly as pycocoevalcap's bleu_scorer.py computes it for COCO
// (Bleu(4).compute_score, which uses option 'closest').
//
// Per image: testlen = candidate length, reflen = the reference length closest to testlen (ties
// to the shorter one), guess[k] = max(0, testlen - k), correct[k] = sum over the candidate's
// (k+1)-grams of min(count, max count over the references). Corpus: the four sums of guess and
// correct and the sums of testlen and reflen; BLEU-n = (prod_{k<n} (correct[k] + 1e-15) /
// (guess[k] + 1e-9))^(1/n), times exp(1 - 1/ratio) when ratio = (testlen + 1e-15) / (reflen + 1e-9)
// is below 1. The per-image scores (the scorer's second return value) use the same formula on
// one image's counts.
#ifndef VLT_EVAL_BLEU_H
#define VLT_EVAL_BLEU_H

#include "eval/caption_set.h"

// bleu[0..4) = BLEU-1..4 over the set; per_image (n_images, 4) or NULL.
vlt_status vlt_eval_bleu(const vlt_eval_caption_set *s, double bleu[4], double *per_image);

#endif
