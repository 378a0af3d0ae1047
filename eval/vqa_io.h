// vqa_io.h — VQA accuracy over files in the official formats.
//
//   predictions: [{"question_id": 1, "answer": "yes"}, ...] (the official results format);
//   annotations: {"annotations": [{"question_id": 1, "answers": [{"answer": "yes", ...} x 10],
//                "answer_type": "yes/no", "question_type": "is the", ...}]} (the official v2
//                annotation file), or the same list at top level; "answers" may also be a list
//                of strings.
// As the official vqaEval.py (VQA.createIndex, loadRes, evaluate): the questions are scored in
// the annotation file's order; a question_id annotated twice is scored with its *last*
// annotation, once per appearance (both count in the overall and per-type means, and the
// answers processed by the first scoring are processed again by the second, as the official
// code rewrites them in place); a question_id predicted twice takes its last prediction. Both
// are counted in the result for the command to warn about. Every annotated question needs a
// prediction (unless allow_subset: then only predicted ones are scored, as the official code
// does with quesIds); a prediction of an unknown question is an error naming the file and the
// item (the official loadRes asserts both).
#ifndef VLT_EVAL_VQA_IO_H
#define VLT_EVAL_VQA_IO_H

#include "autograd/error.h"
#include "eval/vqa.h"

// One answer type or question type, as the official accAnsType / accQuesType: the mean accuracy
// of the scored questions of that type (the official code prints 100 x this rounded to 2
// decimals). Any number of types; listed in order of first appearance in the scoring order.
typedef struct {
    char *name;
    int count;
    double accuracy;  // mean over questions, in [0, 1]
} vlt_eval_vqa_group;

typedef struct {
    vlt_eval_vqa_version version;  // which official version scored
    int n_questions;               // scorings (a question_id annotated twice counts twice)
    double accuracy;               // mean over the scorings, in [0, 1]
    int n_types;                   // distinct "answer_type" values
    vlt_eval_vqa_group *types;
    int n_qtypes;                  // distinct "question_type" values ("what color is the")
    vlt_eval_vqa_group *qtypes;
    int n_ids;                     // distinct scored question ids, in first-scored order
    long long *qid;                // their ids
    double *q_accuracy;            // and accuracies (the last scoring's, as the official evalQA)
    int n_dup_annotations;         // annotations whose question_id an earlier one has
    long long first_dup_annotation;
    int n_dup_predictions;         // predictions whose question_id an earlier one has
    long long first_dup_prediction;
} vlt_eval_vqa_result;

vlt_status vlt_eval_vqa_files(const char *pred_path, const char *refs_path, vlt_eval_vqa_version version, int allow_subset,
                              vlt_eval_vqa_result *out);
void vlt_eval_vqa_result_free(vlt_eval_vqa_result *r);

#endif
