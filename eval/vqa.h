// vqa.h — VQAv2 accuracy exactly as the official evaluation (GT-Vision-Lab/VQA,
// PythonEvaluationTools/vqaEvaluation/vqaEval.py) computes it, in its two versions:
//
// VLT_EVAL_VQA_CURRENT ("vqaeval-2021", the default): the official code since its commit a013f00
//   "Fixed processing answers bug" (March 2021). The prediction and every ground-truth answer:
//   '\n' and '\t' -> ' ', then strip. When the ten answers (so stripped) are not all identical,
//   the answers and the prediction are then normalized fully (processPunctuation, then
//   processDigitArticle); when they are all identical, neither is normalized further.
// VLT_EVAL_VQA_2016 ("vqaeval-2016"): the official code from 2016 to March 2021, which published
//   results before 2021 used. The prediction: '\n'/'\t' -> ' ', strip, processPunctuation,
//   processDigitArticle; the ground-truth answers: only processPunctuation (no strip), and only
//   when the ten raw answers are not all identical.
//
// processPunctuation: each of ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? ! is deleted when the
// *original* text has it next to a space or contains digit,digit anywhere, else replaced by a
// space; then periods not followed by a digit are deleted (the official regex has a typo that
// makes its look-behind a look-ahead, and re.sub's third argument, re.UNICODE = 32, caps the
// number of deletions at 32 — both reproduced).
// processDigitArticle: lower-case, split on whitespace, number words none..ten -> 0..10, drop
// a/an/the, the contractions table ("dont" -> "don't" ...), join with single spaces.
// Accuracy of a question = mean over the leave-one-out subsets of the answers of
// min(#answers in the subset equal to the answer / 3, 1), summed in answer order as the official
// code does (so the value is bit-identical); overall = mean over questions (the official code
// reports 100 x this rounded to 2 decimals; vlt reports it unrounded).
// The official code leaves out of "the others" every answer *dict* equal to the left-out one
// (Python dict equality, answer_id included): with the distinct answer_ids of real data that is
// the left-out answer alone; vlt_eval_vqa_score takes a `same` key to reproduce the rest.
// Not reproduced: Python's Unicode str.lower()/split()/\d beyond ASCII; here lower-casing and
// digits are ASCII and whitespace is Python's ASCII set (space, \t\n\v\f\r, \x1c-\x1f).
#ifndef VLT_EVAL_VQA_H
#define VLT_EVAL_VQA_H

#include "autograd/error.h"

typedef enum {
    VLT_EVAL_VQA_CURRENT = 0,  // official since March 2021 (a013f00)
    VLT_EVAL_VQA_2016 = 1,     // official 2016 .. March 2021
} vlt_eval_vqa_version;

// "vqaeval-2021" / "vqaeval-2016".
const char *vlt_eval_vqa_version_name(vlt_eval_vqa_version v);
// What a report says the version does (one sentence).
const char *vlt_eval_vqa_version_description(vlt_eval_vqa_version v);
// Accepts the names above (and "current"/"official" for the default, "2016"); 0 if unknown.
int vlt_eval_vqa_version_parse(const char *name, vlt_eval_vqa_version *v);

// processPunctuation of in; *out malloc'd.
vlt_status vlt_eval_vqa_punctuation(const char *in, char **out);
// processDigitArticle of in; *out malloc'd.
vlt_status vlt_eval_vqa_digit_article(const char *in, char **out);
// '\n', '\t' -> ' ', then Python's str.strip(); *out malloc'd.
vlt_status vlt_eval_vqa_strip(const char *in, char **out);
// The full normalization: strip as above, processPunctuation, processDigitArticle (what both
// versions do to a prediction that is normalized, and what the current one does to differing
// answers; the processed form of an answer for training targets); *out malloc'd.
vlt_status vlt_eval_vqa_normalize(const char *in, char **out);

// Accuracy in [0, 1] of one prediction against n_answers ground-truth answers, as version v.
// answers[j] are malloc'd strings that are replaced in place by their processed forms, as the
// official code rewrites its annotation dicts in place (scoring a question a second time, as it
// does for a question_id that appears twice in the annotations, starts from those). same: NULL
// when the answers are distinct dicts; else answers j and k are equal dicts when same[j] ==
// same[k] and their processed strings are equal.
vlt_status vlt_eval_vqa_score(vlt_eval_vqa_version v, const char *pred, char **answers, const int *same, int n_answers,
                              double *acc);
// The same on constant answers (copied, distinct dicts).
vlt_status vlt_eval_vqa_accuracy(vlt_eval_vqa_version v, const char *pred, const char *const *answers, int n_answers,
                                 double *acc);

// Soft scores of the VQAv2 convention for training targets: the distinct strings among
// answers[0..n) (already processed, e.g. by vlt_eval_vqa_normalize), in order of first
// appearance, into uniq[] (pointers into answers), and for each the accuracy a prediction of it
// would get: the mean over the n leave-one-out subsets of min(1, count in the subset / 3). Same
// arithmetic as the scorer on processed answers. Returns the number of distinct answers.
int vlt_eval_vqa_soft_scores(const char *const *answers, int n, const char **uniq, double *score);

#endif
