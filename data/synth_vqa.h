// synth_vqa.h — a synthetic VQA set on the demo shapes (data/synth.h): questions about colour,
// shape, size, count and position of a scene, whose answers follow from the scene alone, and ten
// "annotator" answers per question with the surface noise real annotators add (capitals, a final
// period, number words, articles) and now and then a wrong one, so that the official answer
// normalization and the soft scores matter as on VQAv2.
//
// Question kinds (answer type): colour "What color is the circle?" (other); shape "What shape
// is the red object?" (other); size "Is the red circle large or small?" (other); count "How many
// shapes are there?", "How many blue shapes are there?" (number); position "Where is the red
// circle relative to the blue square?" -> left/right/above/below, "Is the red circle to the left
// of the blue square?" (yes/no), with one shape "Is the circle in the top or bottom half of the
// image?" -> top/bottom; existence "Is there a green cross?" (yes/no). An object is named by its
// shape when that is unique in the scene, else by colour and shape (or size, when the question
// asks for the colour); a question whose object cannot be named so is not asked. Questions of one
// image have distinct kinds; question i of image `index` and its answers are a pure function of
// (seed, index, size), drawn from vlt_rng_stream(VLT_RNG_DATA, index, 2).
//
// Written in both of vlt shards' VQA formats (see data/vqa_pack.h): DIR/images/COCO_synth_<index
// as 12 digits>.jpg, DIR/questions.json and DIR/annotations.json (the official VQAv2 format,
// data_subtype "synth"), and DIR/vqa.jsonl ({"image", "question", "answers", "question_id",
// "image_id"} per line). question_id = 10 x image index + question number.
#ifndef VLT_DATA_SYNTH_VQA_H
#define VLT_DATA_SYNTH_VQA_H

#include <stdint.h>

#include "autograd/error.h"
#include "data/synth.h"

#define VLT_SYNTH_VQA_MAX_PER_IMAGE 6
#define VLT_SYNTH_VQA_ANSWERS 10

typedef struct {
    char question[160];
    char answer[24];                // the canonical answer
    const char *kind;               // "color", "shape", "size", "count", "position", "exists"
    const char *question_type;      // as VQAv2's question_type ("what color is the", "how many", ...)
    const char *answer_type;        // "yes/no", "number", "other"
    char answers[VLT_SYNTH_VQA_ANSWERS][32];  // the ten annotators' answers
} vlt_synth_vqa_question;

// Up to n_max (<= VLT_SYNTH_VQA_MAX_PER_IMAGE) questions of distinct kinds about the scene of
// sample `index`; returns how many.
int vlt_synth_vqa_questions(const vlt_synth_scene *scene, uint64_t seed, uint64_t index, int size, int n_max,
                            vlt_synth_vqa_question *out);

typedef struct {
    const char *out_dir;   // created if missing
    uint64_t seed;
    long long first;       // index of the first image
    long long images;      // number of images (> 0)
    int size;              // image side, 24..4096
    int per_image;         // questions per image, 1..VLT_SYNTH_VQA_MAX_PER_IMAGE
    int quality;           // JPEG quality
} vlt_synth_vqa_cfg;

// Writes the set; *n_questions receives the number of questions. The JSON files are written last,
// each through a temp file and a rename, so they never name an image that is not there.
vlt_status vlt_synth_vqa_write(const vlt_synth_vqa_cfg *cfg, long long *n_questions);

#endif
