// vqa_eval.h — a VQA model's answers on a shard set (vqa_pack.h shards), and their official
// accuracy. Used by the trainer's periodic evaluation, `vlt vqa` and `vlt eval checkpoint`.
//
// The answers: every question of the shards (in shard order, one reader, the evaluation
// transform: vlt_eval_loader_cfg), through the model's answer capability, as strings of the
// answer vocabulary. The ground truth comes from each sample's .json (question_id, the raw
// answers, answer_type, question_type, image_id), rebuilt as an annotation list in the official
// VQAv2 format. Scoring writes both as files and runs vlt_eval_vqa_files on them, the code of
// `vlt eval vqa`: so the accuracy reported during training, by `vlt eval checkpoint` and by `vlt
// eval vqa` on `vlt vqa`'s results are one computation, not three.
#ifndef VLT_TRAIN_VQA_EVAL_H
#define VLT_TRAIN_VQA_EVAL_H

#include <cJSON.h>

#include "data/tokenizer.h"
#include "data/vqa_pack.h"
#include "eval/vqa_io.h"
#include "layers/model.h"

typedef struct {
    int n;                  // questions answered
    long long *qid;         // question_id of each
    char **question;        // the question (.txt)
    char **answer;          // the predicted answer (a vocabulary string)
    float *conf;            // the model's confidence in it
    char **key;             // sample key
    char **image;           // the image file the shards name (.json "image"; "" when none)
    cJSON *annotations;     // official annotation items of the questions with answers (a JSON array)
    int n_annotated;        // questions with ground-truth answers
} vlt_vqa_predictions;

// Answers up to `limit` questions (0: all) of `shards`, `batch` at a time, under no_grad. A sample
// without an integer "question_id" in its .json is an error naming it (vlt shards always writes one).
vlt_status vlt_vqa_predict(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch, int limit,
                           const vlt_vqa_vocab *vocab, vlt_vqa_predictions *out);
void vlt_vqa_predictions_free(vlt_vqa_predictions *p);

// [{"question_id": …, "answer": …}, …], the official results format, written atomically.
vlt_status vlt_vqa_write_results(const vlt_vqa_predictions *p, const char *path);
// {"annotations": [...]} of the answered questions with ground truth, the official format.
vlt_status vlt_vqa_write_annotations(const vlt_vqa_predictions *p, const char *path);
// The official accuracy (version v) of the answered questions with ground truth; VLT_ERR_ARG when
// none has any.
vlt_status vlt_vqa_score(const vlt_vqa_predictions *p, vlt_eval_vqa_version v, vlt_eval_vqa_result *r);

// The majority baseline: each question of `shards` (up to `limit`; 0: all) answered with the most
// frequent answer of its question type ("question_type" of the .json) among the questions of
// `train_shards` (each question's multiple_choice_answer, else its most frequent processed answer);
// a type the training split lacks gets the most frequent answer overall, which *overall receives.
// Fills out as vlt_vqa_predict does (conf = the answer's share of its type's training questions).
vlt_status vlt_vqa_majority(const char *train_shards, const char *shards, int limit, vlt_vqa_predictions *out,
                            char *overall, size_t overall_cap);

// The answer vocabulary of a checkpoint: its state.json's "answer_vocab" (the trainer stores it
// there, so a checkpoint directory answers on its own).
vlt_status vlt_vqa_vocab_of_checkpoint(const char *checkpoint_dir, vlt_vqa_vocab *out);

#endif
