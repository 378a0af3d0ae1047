// run_config.h — the run config of `vlt train`: YAML (libyaml), two levels (section.key),
// every key validated against the table in run_config.c; an unknown key is an error naming it
// and the closest valid key. `--set section.key=value` overrides apply after the file. The
// resolved config is written back as YAML into the run directory.
#ifndef VLT_RUN_CONFIG_H
#define VLT_RUN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "autograd/error.h"
#include "layers/model_config.h"

#define VLT_CFG_STR 512

typedef struct {
    // model
    char model_name[VLT_CFG_STR];      // configs/model/<name>.json or a path to one
    char init_from[VLT_CFG_STR];       // open_clip weights (.safetensors) to start from
    bool lock_image, lock_text;        // LiT-style: freeze a tower
    int64_t seed;
    // VQA (issue 16): "classifier" puts the answer head of layers/vqa_head.h on the CLIP towers;
    // "" (none) trains the model config as it is. vqa_answers: the N most frequent answers of the
    // training split form the answer vocabulary (3,129 by the VQAv2 convention); the trainer
    // writes the number it took (fewer when the vocabulary has fewer) into the resolved config.
    char vqa_head[32];
    int vqa_answers, vqa_hidden;       // hidden: the head MLP's width (0: twice the concatenated features)
    char vqa_fusion[16];               // "concat" (the towers' pooled features) or "tokens" (their token
    int vqa_fusion_layers;             // sequences through a small transformer of this many layers)
    // data
    char train_shards[VLT_CFG_STR], val_shards[VLT_CFG_STR];
    int batch_size, workers, shuffle_buffer, shuffle_initial;
    bool resampled, flip;
    bool fast_decode;                  // training JPEGs DCT-scaled (not PIL's pixels); never for eval
    int64_t samples_per_epoch;
    double scale_min, scale_max;
    int val_samples;                   // held-out pairs used by eval (0: all of val)
    char answer_vocab[VLT_CFG_STR];    // VQA: answer_vocab.json ("": the one beside the first training shard)
    // optim
    double lr, weight_decay, beta1, beta2, eps, grad_clip;
    int accum_steps;
    // schedule
    char schedule[32];                 // cosine | const | const-cooldown
    int64_t steps, warmup, cooldown;
    double lr_min;
    // loss
    double clip_loss_weight, caption_loss_weight, label_smoothing;
    // train
    char device[16];                   // cpu | cuda (the GPU of this rank's local rank, or VLT_CUDA_DEVICE)
    char precision[16];                // fp32 | tf32 | bf16 (tf32 and bf16: products on the GPU)
    int max_nonfinite;                 // consecutive skipped steps that stop the run
    bool zero;                         // ZeRO-1: optimizer state sharded over the ranks (train/zero.h)
    char zero_partition[16];           // tensors | flat: ZeRO-1 shards whole tensors by owner, or one flat range per rank
    char grad_reduce_dtype[16];        // f32 | bf16: the dtype the gradient all-reduce travels in (averaged in f32)
    char stop_signal[16];              // "", USR1 or USR2: stops the run like SIGINT / SIGTERM (checkpoint, exit)
    // checkpoint / eval / log / output
    int64_t checkpoint_every;
    int checkpoint_keep;
    int64_t eval_every;
    int64_t log_every;
    bool tensorboard;
    char output_dir[VLT_CFG_STR];
} vlt_run_config;

void vlt_run_config_default(vlt_run_config *c);
// Parses a YAML file over the defaults. Errors name the file, the line and the key.
vlt_status vlt_run_config_load(const char *path, vlt_run_config *c);
// Parses YAML text (for tests); `what` names it in messages.
vlt_status vlt_run_config_parse(const char *yaml, size_t len, const char *what, vlt_run_config *c);
// Applies "section.key=value".
vlt_status vlt_run_config_set(vlt_run_config *c, const char *assignment);
// Cross-field checks (warmup < steps, batch > 0, known schedule, …).
vlt_status vlt_run_config_validate(const vlt_run_config *c);
// The model config the run trains: model.name's JSON, with the VQA head of model.vqa_* when set.
vlt_status vlt_run_config_model_cfg(const vlt_run_config *c, vlt_model_cfg *mc);
// Writes the resolved config as YAML.
void vlt_run_config_write(const vlt_run_config *c, FILE *f);
// The keys that define the model and its data shape; resume refuses a change in any of them.
// Writes "key: old -> new" lines for those that differ between a and b into buf; returns count.
int vlt_run_config_model_diff(const vlt_run_config *a, const vlt_run_config *b, char *buf, size_t n);

#endif
