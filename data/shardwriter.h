// shardwriter.h — writes webdataset tar shards of image-caption samples, as img2dataset does.
//
// Each sample becomes three tar members named by its key (a zero-padded global sample index,
// "000000000", "000000001", ...): KEY.jpg (JPEG bytes), KEY.txt (the caption, UTF-8) and KEY.json
// (an object with at least "key" and "caption"; the caller may add fields). Shards hold
// `shard_size` samples (the last may hold fewer) and are named PREFIX00000.tar, PREFIX00001.tar,
// ... in out_dir. Each shard is written to NAME.tmp, fsync'd and renamed, so a shard either exists
// whole or not at all. Closing the writer writes out_dir/sizes.json, {"00000.tar": N, ...}, keyed
// by shard file name as open_clip's get_dataset_size reads it (also through a temp file + rename).
//
// Encoding is split from writing so that callers can prepare images on many threads
// (vlt_shardwriter_prepare* are thread-safe) and append them in order on one (vlt_shardwriter_add).
#ifndef VLT_DATA_SHARDWRITER_H
#define VLT_DATA_SHARDWRITER_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"
#include "data/image.h"

typedef struct {
    const char *out_dir;    // created if missing
    const char *prefix;     // shard file name prefix ("" by default)
    int shard_size;         // samples per shard (> 0; 10000 by default)
    int resize;             // > 0: images whose shorter side is longer are downscaled to it (bicubic)
    int quality;            // JPEG quality for encoded / re-encoded images (1..100; 95 by default)
    long long first_index;  // the first sample's key number (0 by default)
} vlt_shardwriter_cfg;

typedef struct vlt_shardwriter vlt_shardwriter;

void vlt_shardwriter_cfg_default(vlt_shardwriter_cfg *cfg, const char *out_dir);

// --- preparing images (thread-safe, no writer needed) ----------------------------------------------

// RGB -> JPEG bytes (*jpg malloc'd), downscaled first when cfg->resize asks for it.
vlt_status vlt_shardwriter_prepare_rgb(const vlt_shardwriter_cfg *cfg, const vlt_image *img,
                                       uint8_t **jpg, size_t *jpg_len, int *width, int *height);
// Encoded image (JPEG/PNG/WebP) -> JPEG bytes. A JPEG that needs no resize is passed through
// unchanged (copied); anything else is decoded and re-encoded. `what` names the input in errors.
// width/height (may be NULL) receive the stored image's size.
vlt_status vlt_shardwriter_prepare_encoded(const vlt_shardwriter_cfg *cfg, const uint8_t *buf, size_t len,
                                           const char *what, uint8_t **jpg, size_t *jpg_len,
                                           int *width, int *height);

// --- writing -----------------------------------------------------------------------------------

vlt_status vlt_shardwriter_open(const vlt_shardwriter_cfg *cfg, vlt_shardwriter **out);
// Appends one sample. json: NULL or the text of a JSON object whose fields are kept; "key" and
// "caption" are set by the writer. key_out (may be NULL, >= 32 bytes) receives the sample key.
vlt_status vlt_shardwriter_add(vlt_shardwriter *w, const uint8_t *jpg, size_t jpg_len, const char *caption,
                               const char *json, char *key_out);
// The same for a classification sample: caption may be NULL (no .txt member and no "caption" in
// the .json), and label >= 0 adds KEY.cls holding it as decimal text (webdataset's label member,
// what vlt eval zeroshot reads); label < 0 writes none.
vlt_status vlt_shardwriter_add_labeled(vlt_shardwriter *w, const uint8_t *jpg, size_t jpg_len, const char *caption,
                                       int label, const char *json, char *key_out);
// Finishes the open shard and writes sizes.json, then frees the writer (also on error).
vlt_status vlt_shardwriter_close(vlt_shardwriter *w);
// Discards the open shard's temp file and frees the writer, without writing sizes.json.
void vlt_shardwriter_abort(vlt_shardwriter *w);

long long vlt_shardwriter_samples(const vlt_shardwriter *w);   // samples written so far
int vlt_shardwriter_shards(const vlt_shardwriter *w);          // shards started so far

#endif
