// vqa.h — VQAv2 accuracy exactly as the official evaluation (GT-Vision-Lab/VQA,
// PythonEvaluationTools/vqaEvaluation/vqaEval.py, master) computes it.
//
// Predicted answer: '\n' and '\t' -> ' ', strip, then processPunctuation, then
// processDigitArticle (lower-case, number words none..ten -> 0..10, drop a/an/the, the
// contractions table "dont" -> "don't" ...). Ground-truth answers: only processPunctuation, and
// only when the ten answers are not all identical (the official code's quirk, kept).
// processPunctuation: each of ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? ! is deleted when the
// *original* text has it next to a space or contains digit,digit anywhere, else replaced by a
// space; then periods not followed by a digit are deleted (the official regex has a typo that
// makes its look-behind a look-ahead, and re.sub's third argument, re.UNICODE = 32, caps the
// number of deletions at 32 — both reproduced).
// Accuracy of a question = mean over the ten leave-one-out subsets of the answers of
// min(#answers in the subset equal to the prediction / 3, 1); overall = mean over questions
// (the official code reports 100 x this, rounded to 2 decimals; vlt reports it unrounded).
// Not reproduced: Python's Unicode str.lower()/split()/\d; here lower-casing, whitespace and
// digits are ASCII (VQAv2 answers are ASCII).
#ifndef VLT_EVAL_VQA_H
#define VLT_EVAL_VQA_H

#include "autograd/error.h"

// processPunctuation of in; *out malloc'd.
vlt_status vlt_eval_vqa_punctuation(const char *in, char **out);
// The full normalization of a predicted answer (newline/tab, strip, punctuation, digits and
// articles, contractions); *out malloc'd.
vlt_status vlt_eval_vqa_normalize(const char *in, char **out);
// Accuracy in [0, 1] of one prediction against n_answers ground-truth answers (raw strings).
vlt_status vlt_eval_vqa_accuracy(const char *pred, const char *const *answers, int n_answers, double *acc);

#endif
