// metrics_log.h — what a training run reports each logged step, to three sinks at once.
//
// Owns: RUN/metrics.jsonl (one JSON object per logged step, appended and flushed, so a resumed
// run continues the same file, after dropping the lines past its checkpoint's step), RUN/tensorboard/events.out.tfevents.* (via train/tfevents.h,
// when asked for), and the progress display on the console: on a terminal one live line redrawn
// in place with \r (at most 10 times a second, and always at the last step); otherwise a plain
// line every N logged steps. Records that carry extra scalars (eval results) are always printed
// as a line of their own.
//
// Names in each sink, for a record with parts {"contrastive", "caption"} and extra {"val/cider"}:
//   metrics.jsonl   step epoch loss loss_contrastive loss_caption lr logit_scale images_per_s
//                   data_wait time wall_time val/cider
//   TensorBoard     train/loss train/loss_contrastive train/loss_caption train/lr
//                   train/logit_scale train/images_per_s train/data_wait val/cider
// (every jsonl key but step, epoch, time and wall_time is a scalar: a key without '/' is the tag
// train/<key>, a key with '/' is the tag itself; scripts/reference/check_tfevents.py relies on it).
// A NaN or infinite value is written as null in the jsonl and as itself in TensorBoard.
//
// The trainer calls open once (rank 0 only), step after each logged step, close at the end.
#ifndef VLT_METRICS_LOG_H
#define VLT_METRICS_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "autograd/error.h"

#define VLT_METRICS_MAX_PARTS 4   // loss parts per record
#define VLT_METRICS_MAX_EXTRA 16  // extra scalars per record
#define VLT_METRICS_MAX_NAME 128  // bytes in a part or extra name

typedef struct {
    const char *name;  // a loss part: [A-Za-z0-9_]+ ("contrastive"); an extra: has a '/' ("val/recall@1")
    double value;
} vlt_named_scalar;

typedef struct {
    int64_t step;         // optimizer steps done, counting the one just finished (1 after the first)
    double epoch;         // epochs seen, fractional (samples seen / samples per epoch)
    double loss;          // the step's total loss (mean over the global batch)
    int n_parts;          // 0..VLT_METRICS_MAX_PARTS
    vlt_named_scalar parts[VLT_METRICS_MAX_PARTS];  // the loss's terms, e.g. contrastive, caption
    double lr;            // learning rate of the step (of the first parameter group)
    double logit_scale;   // exp(logit_scale parameter): the inverse temperature, clamped value
    double images_per_s;  // throughput since the previous logged step, all ranks together
    double data_wait;     // share of wall time spent waiting for the loader since then, 0..1
    double time_s;        // seconds since this process started training
    int n_extra;          // 0..VLT_METRICS_MAX_EXTRA
    vlt_named_scalar extra[VLT_METRICS_MAX_EXTRA];  // eval results and other scalars
    bool extras_only;     // an eval-only record: only step, epoch, time and extra are logged
} vlt_step_metrics;

typedef enum {
    VLT_CONSOLE_AUTO = 0,  // LIVE when the stream is a terminal (TERM not "dumb", not a rank under mpirun), else PLAIN
    VLT_CONSOLE_LIVE,      // one line redrawn with \r
    VLT_CONSOLE_PLAIN,     // a line every N logged steps
    VLT_CONSOLE_OFF,       // nothing on the console
} vlt_console_mode;

typedef struct vlt_metrics_log vlt_metrics_log;

// Creates run_dir (one level) when missing, opens run_dir/metrics.jsonl for appending, and with
// use_tensorboard an event file under run_dir/tensorboard/. total_steps (> 0) is the run's
// length, for the step/total display and the ETA. The console is stdout in AUTO mode, a plain
// line every clamp(total_steps / 100, 1, 100) steps.
vlt_status vlt_metrics_log_open(vlt_metrics_log **out, const char *run_dir, int64_t total_steps,
                                bool use_tensorboard);
// The same for a run resumed from a checkpoint of step `resume_step`: the lines of
// run_dir/metrics.jsonl past that step (logged after the checkpoint by the run that stopped, and
// a last line cut short) are dropped first, atomically (vlt_metrics_log_drop_after), and the new
// TensorBoard file starts with a SessionLog START event at resume_step + 1, the first step this
// run logs, which makes TensorBoard drop those steps from the earlier files (tfevents.h).
// *dropped receives the number of lines dropped.
vlt_status vlt_metrics_log_open_resumed(vlt_metrics_log **out, const char *run_dir, int64_t total_steps,
                                        bool use_tensorboard, int64_t resume_step, int64_t *dropped);
// Rewrites the jsonl at `path` without its records of a step > `step` and without a last line
// that lacks its newline (through a temporary file, fsync'd and renamed over it; left as it is
// when there is nothing to drop; a missing file is fine). Lines that are not JSON are kept.
vlt_status vlt_metrics_log_drop_after(const char *path, int64_t step, int64_t *dropped);
// Changes the console: stream (NULL keeps it), mode, and N for PLAIN (<= 0 keeps it).
void vlt_metrics_log_set_console(vlt_metrics_log *log, FILE *stream, vlt_console_mode mode,
                                 int64_t plain_every);
// Logs one record to every sink. Bad names / counts are VLT_ERR_ARG (nothing written); a failed
// write is VLT_ERR_IO naming the file.
vlt_status vlt_metrics_log_step(vlt_metrics_log *log, const vlt_step_metrics *m);
// Call before printing anything else on the console stream (an event: "checkpoint: step N saved"):
// a live line on screen is cleared so the event gets a line of its own (no-op in the other modes).
void vlt_metrics_log_break(vlt_metrics_log *log);
// Ends the live line, flushes and fsyncs the files, frees. Returns the first error (NULL is fine).
vlt_status vlt_metrics_log_close(vlt_metrics_log *log);

// The console text for a record, without \r or newline (what LIVE and PLAIN print), into buf.
// eta_s < 0 prints "-:--:--". Exposed for tests.
void vlt_metrics_log_format(char *buf, size_t cap, const vlt_step_metrics *m, int64_t total_steps,
                            double eta_s);

#endif
