// trainer.h — the training loop of `vlt train`: a model (CLIP; CoCa when the model config has a
// multimodal_cfg), AdamW with open_clip's decay exclusions, the LR schedule, gradient
// accumulation and clipping, non-finite step skipping, periodic evaluation, logging,
// checkpoints, and exact resume.
//
// One optimizer step:
//   accum_steps × { batch <- loader; loss = model(batch) / accum_steps; backward }
//   norm = clip_grad_norm; if loss or norm is not finite: skip (count; stop after
//   max_nonfinite in a row, after a checkpoint of the last good state, unless the newest
//   checkpoint already holds it; a state with a NaN or inf is never checkpointed, and weights
//   to start from (model.init_from, a checkpoint) that hold one are refused by tensor name)
//   lr = schedule(step); AdamW; clamp logit_scale; step += 1
//   (tests: VLT_TRAIN_NAN_STEPS=a-b poisons the batches of steps a..b with a NaN)
//   [log every log.every] [eval every eval.every] [checkpoint every checkpoint.every, and at the end]
//
// Data parallel (`mpirun -np N vlt train …`): every rank builds the same model (parameters
// broadcast from rank 0), reads its own share of the shards, computes the contrastive loss
// against the all-gathered features of the global batch, and all-reduces (averages) the
// gradients before clipping; rank 0 logs and writes checkpoints, which hold every rank's loader
// position. data.batch_size is per rank. CoCa's caption loss is weighted by each rank's share of
// the counted tokens, so N ranks equal one process with the global batch for CoCa too.
// train.zero (ZeRO-1, train/zero.h): each parameter is owned by one rank, which alone keeps its
// AdamW moments, receives its averaged gradient (reduce to the owner instead of the all-reduce),
// clips it by the global norm and updates it; the new values are then broadcast from the owners.
// Checkpoints are the same files either way (rank 0 gathers the moments), so a run may resume
// with train.zero switched on or off.
//
// The run directory (output.dir) is locked (flock on RUN/.lock, rank 0) for the trainer's life: a
// second trainer on it is refused naming the holder's pid and host; a lock left by a process that
// died is taken over with a note. A new run (no resume) in a directory that already holds a run
// (checkpoints/, metrics.jsonl, tensorboard/, config.yaml) is refused unless opts.overwrite,
// which deletes those entries first.
//
// Resume (`--resume latest|PATH`): the checkpoint's model, optimizer moments, step, epoch,
// non-finite counters and loader position are restored, so the run continues with exactly the
// batches and the losses the uninterrupted run would have had (the CPU backend is
// deterministic). A resume whose model-defining keys differ (model.name, model.seed,
// data.batch_size) is refused with the differing keys.
#ifndef VLT_TRAINER_H
#define VLT_TRAINER_H

#include <stdio.h>

#include "eval/vqa_io.h"
#include "train/dist.h"
#include "train/run_config.h"

typedef struct vlt_trainer vlt_trainer;

typedef struct {
    const char *resume;     // NULL: a new run; "latest" or a checkpoint path
    FILE *log;              // progress output (stdout when NULL)
    int quiet;              // no progress lines (tests)
    bool verbose;           // also the loader's data totals at each epoch end (vlt train -v)
    const vlt_dist *dist;   // data parallel ranks (train/dist.h); NULL: one process
    bool overwrite;         // a new run may replace the run in output.dir (its checkpoints, metrics, events)
} vlt_trainer_opts;

vlt_status vlt_trainer_create(const vlt_run_config *cfg, const vlt_trainer_opts *opts, vlt_trainer **out);
// Runs until schedule.steps (or until stopped by a fault). Returns VLT_OK at the end.
vlt_status vlt_trainer_run(vlt_trainer *t);
// Runs `n` optimizer steps (tests; checkpoints and eval as configured).
vlt_status vlt_trainer_run_steps(vlt_trainer *t, int64_t n);
int64_t vlt_trainer_step(const vlt_trainer *t);
// Steps skipped for a non-finite loss or gradient, over the whole run (resumes included).
int64_t vlt_trainer_nonfinite(const vlt_trainer *t);
const vlt_params *vlt_trainer_params(const vlt_trainer *t);
// The loss of each optimizer step taken by this trainer object, in order (NaN for skipped steps).
const float *vlt_trainer_losses(const vlt_trainer *t, int64_t *n);
// Retrieval on the val shards (data.val, data.val_samples pairs): fills recall@1/5/10 both ways.
vlt_status vlt_trainer_eval(vlt_trainer *t, double i2t[3], double t2i[3], int *n_pairs);
// After vlt_trainer_eval with a model that matches pairs (ALBEF): recall@1/5/10 of the features'
// top 16 re-ranked by its matching head, as ALBEF evaluates retrieval; false for other models.
bool vlt_trainer_eval_rerank(const vlt_trainer *t, double i2t[3], double t2i[3]);
// ... and its matching head's pair accuracy (vlt_eval_pairs_match_accuracy: the true caption
// scored above another image's, chance 0.5) over *n images; false for other models.
bool vlt_trainer_eval_match_accuracy(const vlt_trainer *t, double *acc, int *n);
// VQA runs: the official accuracy (vqaeval-2021) of the model's answers on data.val
// (data.val_samples questions; 0: all), as the periodic evaluation logs it.
vlt_status vlt_trainer_eval_vqa(vlt_trainer *t, vlt_eval_vqa_result *r);
bool vlt_trainer_is_captioner(const vlt_trainer *t);  // the model has the caption capability
bool vlt_trainer_can_answer(const vlt_trainer *t);    // the model has the answer (VQA) capability
const char *vlt_trainer_model_title(const vlt_trainer *t);  // "CLIP", "SigLIP", "CoCa" (for output)
// CoCa: greedy captions for the first n_images val images against their captions:
// BLEU-4 and CIDEr-D (pycocoevalcap's tokenization and scorers). `show` (may be NULL) receives
// the first n_show generated captions next to the true ones.
vlt_status vlt_trainer_eval_captions(vlt_trainer *t, int n_images, double *bleu4, double *cider, FILE *show,
                                     int n_show);
void vlt_trainer_free(vlt_trainer *t);

// Stopping on a signal (Ctrl-C, Slurm's SIGTERM before preemption): after this call SIGINT,
// SIGTERM and `extra` ("USR1" / "USR2", train.stop_signal; NULL or "" for none) make the running
// vlt_trainer_run finish its step, write a checkpoint of it, and return VLT_ERR_STATE with a
// message naming the signal and the step; vlt_trainer_stopped_by then gives the signal. Under
// mpirun the ranks agree (a sum over ranks after every step), so all of them stop after the same
// step, even when the signal reached only some. A second signal ends the process at once, by
// that signal. The process-wide handler is installed by `vlt train` (train_cmd.c).
vlt_status vlt_trainer_catch_signals(const char *extra);
// Gives those signals their default action back (after training: nothing is left to save, so
// Ctrl-C during the final evaluation ends the process at once).
void vlt_trainer_release_signals(void);
// The signal that stopped the run, or 0.
int vlt_trainer_stopped_by(const vlt_trainer *t);

#endif
