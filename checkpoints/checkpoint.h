// checkpoint.h — training checkpoints as directories: writing one durably (temp directory,
// fsync, rename, atomic `latest`), keeping the last K, finding one ("latest" or a path) and
// loading it strictly into a model's parameter table and an AdamW optimizer.
//
// Layout of a run directory:
//   RUN/checkpoints/step_00001000/model.safetensors      the parameter table, open_clip names, F32
//                                 optimizer.safetensors  "<name>.exp_avg", "<name>.exp_avg_sq" (F32,
//                                                        the parameter's shape) for every optimizer
//                                                        parameter, and "step" (I64, shape []): t
//                                 state.json             the trainer's JSON object, byte for byte
//   RUN/checkpoints/latest  ->  step_00001000            a relative symlink (see below)
//   RUN/checkpoints/.tmp-*                               a writer's work in progress; ignored by
//                                                        readers, removed by the next save
// Both safetensors files carry the metadata "vlt_checkpoint_format" (VLT_CHECKPOINT_FORMAT) and
// "vlt_step" (the training step, which must agree with each other and the directory name);
// model.safetensors also has "format": "pt", so safetensors.torch / open_clip read it as it is.
// The step is written with at least 8 digits ("%08lld"), more when it needs them.
//
// `latest` is a symbolic link whose target is the bare directory name: the writer creates it as
// `.tmp-latest-<pid>` and rename()s it over `latest`, which replaces it atomically (a reader sees
// the old link or the new one, never none). Readers also accept a regular file `latest` holding
// the directory name on its first line, for file systems without symbolic links.
//
// The write sequence and its crash points (see VLT_CHECKPOINT_CRASH_AT below):
//   remove stale .tmp-* entries left by dead writers; mkdir .tmp-step_XXXXXXXX-<pid>;
//   write model.safetensors, optimizer.safetensors (each fsync'd by the safetensors writer);
//   write + fsync state.json; fsync the temp directory; rename it to step_XXXXXXXX (when that
//   exists already, the two are exchanged atomically with renameat2 and the old one removed);
//   fsync RUN/checkpoints; create .tmp-latest-<pid>, rename it over `latest`, fsync RUN/checkpoints;
//   then prune: each step_ directory beyond the newest keep_last_k (by step number, never the one
//   `latest` names) is renamed to .tmp-prune-... (so a half-deleted directory never looks like a
//   checkpoint), the directory fsync'd, and the tree removed.
// A crash before the rename over `latest` leaves the previous checkpoint as `latest`, whole;
// a crash after it leaves the new one, whole.
//
// One writer per run directory at a time (rank 0): a save removes the .tmp-* entries of writers
// that are not live processes on this machine.
//
// Fault injection (tests): when the environment variable VLT_CHECKPOINT_CRASH_AT=n (n >= 1) is
// set, vlt_checkpoint_save raises SIGKILL on itself at its n-th crash point: just before each
// durable operation of the sequence above, between writing state.json and its fsync, and once
// after the whole save (about 13 to 20 points, depending on stale entries and pruning). A value
// larger than the number of points does nothing, which is how a test finds the count.
#ifndef VLT_CHECKPOINTS_CHECKPOINT_H
#define VLT_CHECKPOINTS_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"
#include "autograd/optim.h"
#include "autograd/params.h"

#define VLT_CHECKPOINT_FORMAT 1
#define VLT_CHECKPOINT_CRASH_ENV "VLT_CHECKPOINT_CRASH_AT"

// Writes RUN/checkpoints/step_XXXXXXXX as described above and points `latest` at it.
// step >= 0. opt may be NULL (no optimizer state: optimizer.safetensors then holds only "step"
// = 0). state_json must be a JSON object (it is stored byte for byte). keep_last_k <= 0 keeps
// every checkpoint. On an error the previous `latest` is left as it was (unless the error came
// after the switch, while pruning: then the new checkpoint is whole and `latest`). A state that
// is not finite (a NaN or inf in a parameter or an optimizer moment) is refused before anything
// is written (VLT_ERR_STATE, naming the tensor): `latest` only ever names a finite state.
vlt_status vlt_checkpoint_save(const char *run_dir, int64_t step, const vlt_params *model, const vlt_adamw *opt,
                               const char *state_json, int keep_last_k);

// Finds a checkpoint directory and checks that it is valid (vlt_checkpoint_validate).
// `which` is "latest" (or NULL): RUN/checkpoints/latest is followed; when it is missing, dangling
// or names an invalid checkpoint the call fails and the message names the newest valid
// checkpoint, if any, to resume from explicitly (it never falls back silently). Otherwise `which`
// is a checkpoint directory path, a run directory (its `latest` is followed), or a bare
// "step_XXXXXXXX" name under RUN/checkpoints. out_dir receives the directory's path (through no
// symlink: RUN/checkpoints/step_XXXXXXXX for `latest`); cap >= 64.
vlt_status vlt_checkpoint_resolve(const char *run_dir, const char *which, char *out_dir, size_t cap);

// A checkpoint directory is valid when model.safetensors and optimizer.safetensors open (whole
// header validated, file sizes matching) with this format version and agreeing steps, the
// optimizer file has "step", and state.json parses as a JSON object. The error names the file.
// step_out (may be NULL) receives the training step.
vlt_status vlt_checkpoint_validate(const char *dir, int64_t *step_out);

// A valid checkpoint's state JSON (malloc'd, NUL-terminated; the caller frees it) and its step
// (from the files' metadata), without reading any weights: what a resume checks first.
vlt_status vlt_checkpoint_read_state(const char *dir, char **state_json_out, int64_t *step_out);

// Loads a checkpoint directory: the parameter table strictly (missing, unexpected and mis-shaped
// keys are named), the optimizer's moments and t (strictly too, against its parameters' names),
// and the state JSON (malloc'd, NUL-terminated, byte-equal to what was saved; the caller frees
// it). opt and state_json_out may be NULL (not loaded). Weights or moments holding a NaN or an
// infinity are refused, naming the tensor. All or nothing: on any error the model and optimizer
// are left untouched. Errors name the file.
vlt_status vlt_checkpoint_load(const char *dir, vlt_params *model, vlt_adamw *opt, char **state_json_out);


// As vlt_checkpoint_load, for an optimizer that holds a subset of the model's parameters (a
// ZeRO-1 rank's shard, train/zero.h): the moments of opt's parameters must all be there and fit,
// as in the strict load; the file's other moments must name parameters of `model` (they are
// another rank's and are not read); any other key is refused. t is loaded as usual.
vlt_status vlt_checkpoint_load_shard(const char *dir, vlt_params *model, vlt_adamw *opt, char **state_json_out);

#endif
