// pack_run.h — the writing half both packers share (data/pack.c: image-caption pairs and classes;
// data/vqa_pack.c: VQA questions): the items' images are read and re-encoded on all OpenMP threads
// in batches of 128, then appended to the shards in input order by the packer's own emit; a
// sample that cannot be packed is counted by reason and named on `warn` (the first 20, then a
// count); no sample written at all, or any error, aborts the shard writer (nothing half-written),
// else it closes. The packers keep what differs: reading their sources, what a sample's members
// hold, and what they write beside the shards (the answer vocabulary, classes.txt). Also the
// small path and text helpers both packers' readers use.
#ifndef VLT_DATA_PACK_RUN_H
#define VLT_DATA_PACK_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "data/shardwriter.h"

// One item's image, prepared off the writing thread.
typedef struct {
    uint8_t *jpg;    // the encoded image to store (freed by the run after emit)
    size_t len;
    int w, h;
    int skip;        // -1: packed; else the packer's skip reason (index into skip_names)
    char *file;      // the image file used, when the packer records it (freed by the run), or NULL
    char err[300];   // why it was skipped ("" : name the item instead)
} vlt_pack_prepared;

typedef struct {
    size_t n;    // items, indexed 0 .. n-1 in output order
    void *ctx;   // the packer's state, passed to every call
    // Fills p for item i (p zeroed, skip -1 on entry); called on the OpenMP threads.
    void (*prepare)(void *ctx, size_t i, vlt_pack_prepared *p);
    // Appends item i to the shards (called in order, for the items not skipped, while all is well).
    vlt_status (*emit)(void *ctx, size_t i, const vlt_pack_prepared *p, vlt_shardwriter *w);
    // Names item i in a skip warning that has no error text.
    const char *(*what)(void *ctx, size_t i);
    // Optional: after the last sample, before the shards are final (a failure aborts them).
    vlt_status (*before_close)(void *ctx);
    // Optional: after the close or abort, with the run's status so far; returns the final one.
    vlt_status (*after_close)(void *ctx, vlt_status s);
    const char *const *skip_names;   // the packer's reasons, for warnings and the error message
    int n_skip;
} vlt_pack_run;

// Runs the pipeline with the shard writer configuration; skipped[0 .. n_skip) counts the skipped
// samples by reason, *written and *shards what the writer wrote.
vlt_status vlt_pack_run_items(const vlt_pack_run *r, const vlt_shardwriter_cfg *cfg, FILE *warn, long long *skipped,
                              long long *written, int *shards);

// dir/name, or name alone when it is absolute or there is no dir (malloc'd; NULL: no memory).
char *vlt_pack_join(const char *dir, const char *name);
// Whether path is a regular file.
bool vlt_pack_file_exists(const char *path);
// Whether s is NULL, empty or only spaces, tabs and line breaks.
bool vlt_pack_blank(const char *s);
// The folder that relative image paths of a list file (TSV, JSON lines) resolve against: images
// when given, else the list file's own folder ("." for a bare name). malloc'd; NULL: no memory.
char *vlt_pack_base_dir(const char *images, const char *list_file);

#endif
