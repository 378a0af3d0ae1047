// model_source.h — where an evaluation command gets its model: the one loader behind `vlt embed`,
// `vlt caption`, `vlt vqa`, `vlt eval checkpoint | zeroshot | clipscore` and `vlt explain`.
//
// Two sources:
//   --checkpoint PATH                 a run directory (its latest checkpoint) or a checkpoint
//                                     directory: the model is rebuilt from the run config held in
//                                     its state.json and its model.safetensors is loaded strictly
//   --weights FILE --model NAME|JSON  a safetensors file with open_clip's state_dict names (an
//                                     open_clip model saved with safetensors, `vlt model init`, or
//                                     a checkpoint's model.safetensors) and the model config it
//                                     belongs to (a name of `vlt model list` or a path to an
//                                     open_clip model config JSON); loaded strictly: a missing,
//                                     unexpected or mis-shaped key is refused, naming the key
// Either way every parameter comes from the file (no random initialization survives), so the
// result does not depend on a seed.
#ifndef VLT_TRAIN_MODEL_SOURCE_H
#define VLT_TRAIN_MODEL_SOURCE_H

#include "eval/report.h"
#include "layers/model.h"

typedef struct {
    vlt_model m;
    char model_name[512];   // the model config's name (or path) as given or as the run config holds it
    char config_path[1300]; // the model config file read (for the report); "" when not found again
    char checkpoint[1024];  // the checkpoint directory; "" for a weights file
    char weights[1300];     // the weights file loaded (a checkpoint's model.safetensors, or --weights)
    char label[1400];       // for messages and reports: the checkpoint directory, or "FILE (model NAME)"
} vlt_model_source;

// Checks a command's options: exactly one of checkpoint and weights, and model with weights (and
// only then). Returns NULL when they are fine, else the usage message.
const char *vlt_model_source_check(const char *checkpoint, const char *weights, const char *model);

// Opens the source (see above). On failure nothing is left allocated and the message names the
// checkpoint, the weights file, the model config or the mismatched keys.
vlt_status vlt_model_source_open(const char *checkpoint, const char *weights, const char *model, vlt_model_source *out);
void vlt_model_source_close(vlt_model_source *src);

// vlt vqa's source: the same, except that a weights file gives a model with an answer head: the
// model config's own (ALBEF VQA: an "albef_vqa" section), else the VQA classifier on the config's
// CLIP towers, shaped as the file's vqa_head.* tensors are (answers and hidden width from
// vqa_head.fc2.weight, fusion layers from vqa_head.fusion.resblocks.*). A file without
// vqa_head.fc2.weight is refused, naming the key; then loaded strictly as above. The answer
// vocabulary is not in the weights: the caller brings it.
vlt_status vlt_model_source_open_vqa(const char *checkpoint, const char *weights, const char *model,
                                     vlt_model_source *out);

// Records the source in an evaluation report: the weights file (sha256), the checkpoint's
// state.json or the model config file as inputs, and the settings "checkpoint" or "weights",
// "model", "model_kind". Errors name the file that could not be hashed.
vlt_status vlt_model_source_report(const vlt_model_source *src, vlt_eval_report *rep);

// The same, and what every evaluation on a shard set records: every shard and the tokenizer
// vocabulary (sha256), the shard spec, the eval transform and image decoding, the tokenizer, the
// batch, the limit, the device, the precision and the threads.
vlt_status vlt_model_source_report_shards(const vlt_model_source *src, vlt_eval_report *rep, const char *shards,
                                          int batch, int limit);

// The options' help text, the same for every command that takes a model.
#define VLT_MODEL_SOURCE_USAGE                                                                                  \
    "model, one of:\n"                                                                                          \
    "  --checkpoint RUN|CHECKPOINT_DIR   a training run (its latest checkpoint) or a checkpoint directory\n"      \
    "  --weights FILE.safetensors --model NAME|CONFIG.json\n"                                                   \
    "                                    weights with open_clip's state_dict names (open_clip's own, saved\n"      \
    "                                    with safetensors) and their model config (vlt model list, or a path);\n" \
    "                                    loaded strictly: a missing, unexpected or mis-shaped key is refused\n"

#endif
