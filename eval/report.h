// report.h — the evaluation report that re-runs itself.
//
// Every `vlt eval ...` report (JSON, --out PATH) holds what is needed to run the evaluation again
// and to tell whether the result is the same:
//   "vlt_report": 1                  the format
//   "command": ["captions", "--pred", ...]  the subcommand and its arguments, as given
//   "cwd": "/abs/dir"                the directory it ran in (relative paths are relative to it)
//   "vlt": {version, compiler, blas, build flags, threads, host}
//   "inputs": [{"role", "path", "abs_path", "bytes", "sha256"}]   every file read: predictions,
//             annotations, embeddings, weights, checkpoint state, every shard, class lists
//   "settings": {...}                resolved settings (transform, tokenizer, batch, precision, device)
//   "scorers": {name: definition}    what each number is, in words
//   "numbers": {name: value}         every reported number, flat ("image_to_text.R@1"); doubles
//                                    print exactly (cJSON writes 17 digits when 15 do not round-trip)
//   "details": {...}                 anything else (not compared)
// `vlt eval --reproduce REPORT` checks the inputs' hashes, runs "command" again in "cwd" and
// compares "numbers" one by one (vlt_eval_report_compare).
#ifndef VLT_EVAL_REPORT_H
#define VLT_EVAL_REPORT_H

#include <cJSON.h>
#include <stdio.h>

#include "autograd/error.h"

typedef struct {
    cJSON *root;
    cJSON *inputs, *settings, *scorers, *numbers, *details;
} vlt_eval_report;

// A report for the subcommand argv[0..argc) (argv[0] = "captions", ...); version = vlt's.
vlt_status vlt_eval_report_init(vlt_eval_report *r, const char *version, int argc, char *const *argv);
void vlt_eval_report_free(vlt_eval_report *r);

// Records a file that was read: its sha256, size and absolute path. Errors name the file.
vlt_status vlt_eval_report_input(vlt_eval_report *r, const char *role, const char *path);
void vlt_eval_report_setting(vlt_eval_report *r, const char *key, const char *value);
void vlt_eval_report_setting_num(vlt_eval_report *r, const char *key, double value);
void vlt_eval_report_scorer(vlt_eval_report *r, const char *name, const char *definition);
void vlt_eval_report_number(vlt_eval_report *r, const char *key, double value);

// Writes the report to path ("-": stdout), atomically (a temporary file renamed).
vlt_status vlt_eval_report_save(const vlt_eval_report *r, const char *path);

// Compares two "numbers" objects: every key of either, bit for bit (NaN equals NaN). Prints a line
// per differing or missing number and the headline numbers (the first `show` keys) to out, and
// returns the count of differing ones in *n_diff and of identical ones in *n_same.
void vlt_eval_report_compare(const cJSON *old_numbers, const cJSON *new_numbers, int show, FILE *out, int *n_same,
                             int *n_diff);

// Re-hashes a report's inputs; prints one line per input (same / CHANGED / missing) and returns
// how many are not the same.
int vlt_eval_report_check_inputs(const cJSON *report, FILE *out);

#endif
