// cider.h — CIDEr-D exactly as pycocoevalcap's cider_scorer.py computes it (Cider().compute_score).
//
// The constants and choices of that code, reproduced here:
//   - n-grams n = 1..4, sigma = 6;
//   - document frequency df(g) = number of images of the evaluated set whose references (any of
//     them) contain g; so scores depend on the whole set, not only on one image;
//   - ref_len = log(number of images in the set); weight of g = tf(g) * (ref_len - log(max(1, df(g))));
//   - per n: cosine of candidate and reference weight vectors with the CIDEr-D clip
//     sum_g min(w_cand(g), w_ref(g)) * w_ref(g) / (|w_cand| |w_ref|) (no division when a norm is 0);
//   - Gaussian length penalty e^(-(delta^2) / (2 sigma^2)) where delta = difference of the
//     *bigram* counts of candidate and reference (the code's `length` counts n-grams with n == 2,
//     i.e. max(0, words - 1)), not of the word counts;
//   - image score = mean over n of the sum over references, divided by the number of
//     references, times 10; the corpus score is the mean over images.
#ifndef VLT_EVAL_CIDER_H
#define VLT_EVAL_CIDER_H

#include "eval/caption_set.h"

// *mean = CIDEr-D over the set; per_image (n_images) or NULL.
vlt_status vlt_eval_cider_d(const vlt_eval_caption_set *s, double *mean, double *per_image);

#endif
