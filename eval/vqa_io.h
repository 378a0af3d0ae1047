// vqa_io.h — VQA accuracy over files in the official formats.
//
//   predictions: [{"question_id": 1, "answer": "yes"}, ...] (the official results format);
//   annotations: {"annotations": [{"question_id": 1, "answers": [{"answer": "yes", ...} x 10],
//                "answer_type": "yes/no", "question_type": "is the", ...}]} (the official v2
//                annotation file), or the same
//                list at top level; "answers" may also be a list of strings.
// Every annotated question needs a prediction (unless allow_subset: then only predicted ones
// are scored, as the official code does with quesIds); a prediction of an unknown question and a
// duplicate prediction are errors naming the file and the item.
#ifndef VLT_EVAL_VQA_IO_H
#define VLT_EVAL_VQA_IO_H

#include "autograd/error.h"

#define VLT_EVAL_VQA_MAX_TYPES 16      // distinct "answer_type" values (VQAv2 has 3)
#define VLT_EVAL_VQA_MAX_QTYPES 256    // distinct "question_type" values (VQAv2 has 65)

// Per type, as the official vqaEval.py's accAnsType / accQuesType: the mean accuracy of the scored
// questions of that type (the official code prints 100 x this rounded to 2 decimals). Types are
// listed in order of first appearance in the annotation file sorted by question_id; a type name
// longer than its slot, or more distinct types than the slots, is an error naming the file.
typedef struct {
    int n_questions;
    double accuracy;                               // mean over questions, in [0, 1]
    int n_types;                                   // distinct "answer_type" values
    char type_name[VLT_EVAL_VQA_MAX_TYPES][32];
    int type_count[VLT_EVAL_VQA_MAX_TYPES];
    double type_accuracy[VLT_EVAL_VQA_MAX_TYPES];
    int n_qtypes;                                  // distinct "question_type" values ("what color is the")
    char qtype_name[VLT_EVAL_VQA_MAX_QTYPES][64];
    int qtype_count[VLT_EVAL_VQA_MAX_QTYPES];
    double qtype_accuracy[VLT_EVAL_VQA_MAX_QTYPES];
} vlt_eval_vqa_result;

vlt_status vlt_eval_vqa_files(const char *pred_path, const char *refs_path, int allow_subset, vlt_eval_vqa_result *out);

#endif
