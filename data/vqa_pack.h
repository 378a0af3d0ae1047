// vqa_pack.h — VQA question/answer sets into webdataset shards, and the answer vocabulary.
//
// Sources: the official VQAv2 JSON pair (questions {"data_subtype", "questions": [{question_id,
// image_id, question}]}, annotations {"annotations": [{question_id, answers: [{answer}],
// multiple_choice_answer, answer_type, question_type}]}) or VQA-CP's (the same items as top-level
// lists, with "coco_split" per item); or a JSON-lines file of {"image": path, "question": ...,
// "answers": [...]} (answers optional, for test sets; "question_id"/"image_id" optional). A sample
// is KEY.jpg (the image), KEY.txt (the question) and KEY.json: question_id, image_id, question,
// image (the file), answers (the raw answers, as annotated), answers_processed (each normalized
// as the official evaluation normalizes answers), answer_scores ({processed answer: soft score},
// the VQAv2 convention: the accuracy a prediction of it would get), multiple_choice_answer,
// answer_type, question_type when the source has them. One sample per question.
//
// Images of the official files are found by image_id in the images folder: COCO_<split>_<id as
// 12 digits>.jpg, also under <split>/, where split is the item's "coco_split" or the questions
// file's "data_subtype" (train2014, val2014, test2015), else <id as 12 digits>.jpg / .png (COCO
// 2017 names). JSON-lines paths are relative to the images folder if given, else to the file's.
//
// The answer processing comes from the caller (vlt_vqa_answer_fns): data/ sits beside eval/, so
// `vlt shards` passes eval/vqa.h's normalization and soft scores, and training targets and the
// metric are the same code. A sample that cannot be packed is skipped and counted by reason; a
// malformed file stops the pack with an error naming it, and nothing half-written is left.
#ifndef VLT_DATA_VQA_PACK_H
#define VLT_DATA_VQA_PACK_H

#include <stdio.h>

#include "data/shardwriter.h"

typedef struct {
    // processed form of one answer (*out malloc'd)
    vlt_status (*normalize)(const char *in, char **out);
    // distinct answers of answers[0..n) into uniq (first-appearance order) and their soft scores;
    // returns their number
    int (*soft_scores)(const char *const *answers, int n, const char **uniq, double *score);
} vlt_vqa_answer_fns;

typedef struct {
    const char *questions;    // official questions JSON (VQAv2 or VQA-CP)
    const char *annotations;  // official annotations JSON (optional: a test split has none)
    const char *jsonl;        // or: JSON lines {"image", "question", "answers"}
    const char *images;       // images folder (required with questions; optional with jsonl)
    long long limit;          // > 0: stop after this many questions
    int vocab_size;           // > 0: also write out_dir/answer_vocab.json, the N most frequent processed answers
    vlt_vqa_answer_fns fns;   // required when there are answers
} vlt_vqa_pack_source;

typedef enum {
    VLT_VQA_SKIP_MISSING_IMAGE,   // image file not found or unreadable
    VLT_VQA_SKIP_BAD_IMAGE,       // image that does not decode
    VLT_VQA_SKIP_NO_QUESTION,     // empty or missing question text
    VLT_VQA_SKIP_NO_ANSWERS,      // annotations given, but none for this question (or an empty list)
    VLT_VQA_SKIP_BAD_ITEM,        // a JSON line that does not parse or lacks "image", a question without ids
    VLT_VQA_N_SKIP
} vlt_vqa_skip;

const char *vlt_vqa_skip_name(vlt_vqa_skip reason);

typedef struct {
    long long written;
    int shards;
    long long skipped[VLT_VQA_N_SKIP];
    long long duplicate_annotations;  // annotations repeating a question_id (the last is used)
    int vocab_written;                // answers in answer_vocab.json (0: none written)
} vlt_vqa_pack_stats;

// Exactly one of questions / jsonl, with what it needs; the message names the option.
vlt_status vlt_vqa_pack_source_check(const vlt_vqa_pack_source *src);
// Packs the source with the shard writer configuration; skipped samples are reported on warn
// (NULL: silently; the first 20, then a count).
vlt_status vlt_vqa_pack_shards(const vlt_vqa_pack_source *src, const vlt_shardwriter_cfg *cfg, FILE *warn,
                               vlt_vqa_pack_stats *stats);

// --- answer vocabulary ----------------------------------------------------------------------------
// The N most frequent processed answers (the VQAv2 convention: N = 3,129 over the training split),
// counted over every answer of every question (ten per VQAv2 question), ties broken by byte order
// so that the vocabulary does not depend on the input order. File (answer_vocab.json):
//   {"format": "vlt-vqa-answer-vocab/1", "answers": ["yes", "no", "2", ...], "counts": [...]}
// where an answer's index in "answers" is its class; vlt_vqa_vocab_load also reads ALBEF's
// answer_list.json (a JSON list of strings; counts 0).
typedef struct {
    int n;
    char **answers;
    long long *counts;
} vlt_vqa_vocab;

typedef struct vlt_vqa_vocab_counter vlt_vqa_vocab_counter;
vlt_status vlt_vqa_vocab_counter_new(vlt_vqa_vocab_counter **out);
vlt_status vlt_vqa_vocab_count(vlt_vqa_vocab_counter *c, const char *answer);
// The top_n most frequent (all if fewer); the counter is left as it was.
vlt_status vlt_vqa_vocab_top(const vlt_vqa_vocab_counter *c, int top_n, vlt_vqa_vocab *out);
void vlt_vqa_vocab_counter_free(vlt_vqa_vocab_counter *c);

vlt_status vlt_vqa_vocab_save(const vlt_vqa_vocab *v, const char *path);  // via a temp file + rename
vlt_status vlt_vqa_vocab_load(const char *path, vlt_vqa_vocab *out);
int vlt_vqa_vocab_index(const vlt_vqa_vocab *v, const char *answer);  // -1 if absent (linear)
void vlt_vqa_vocab_free(vlt_vqa_vocab *v);

#endif
