// model.h — one handle for the models vlt trains: CLIP or CoCa, chosen by the model config (a
// multimodal_cfg makes it CoCa). The trainer, `vlt embed` and `vlt eval checkpoint` work
// through this, so they need no per-model branches.
#ifndef VLT_MODEL_H
#define VLT_MODEL_H

#include "layers/clip.h"
#include "layers/coca.h"

typedef struct {
    vlt_model_cfg cfg;
    bool is_coca;
    vlt_clip clip;             // when !is_coca
    vlt_coca coca;             // when is_coca
    vlt_params *params;        // the parameter table (open_clip names)
    vlt_tensor *logit_scale;   // 0-d
} vlt_model;

typedef struct {
    vlt_tensor *loss;                 // (1) the total
    int n_parts;                      // CoCa: 2 (contrastive, caption, weighted); CLIP: 0
    const char *part_names[2];
    vlt_tensor *parts[2];
} vlt_model_loss;

vlt_status vlt_model_create(vlt_model *m, const vlt_model_cfg *cfg, uint64_t seed);
void vlt_model_free(vlt_model *m);
// The training loss of a batch: images (B, 3, S, S), ids (B, T). lc: CoCa's weights (ignored for
// CLIP) and the contrastive-loss hook (used by both: data parallel swaps in the global batch's).
vlt_status vlt_model_loss_forward(vlt_model *m, vlt_tensor *images, vlt_tensor *ids, vlt_coca_loss_cfg lc,
                                  vlt_model_loss *out);
// L2-normalized features (B, E).
vlt_tensor *vlt_model_encode_image(vlt_model *m, vlt_tensor *images);
vlt_tensor *vlt_model_encode_text(vlt_model *m, vlt_tensor *ids);
// After each optimizer step (logit_scale clamped to [0, ln 100]).
void vlt_model_after_step(vlt_model *m);

#endif
