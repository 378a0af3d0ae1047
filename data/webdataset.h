// webdataset.h — grouping tar members into webdataset samples.
//
// Owns: the rules that turn a stream of tar members (data/tar.h) into samples, as the Python
// webdataset package does it:
//   - a member's key is its path up to the first dot of its basename (the directory part is
//     kept: "a/b/000123.seg.png" has key "a/b/000123"), its extension the rest after that dot,
//     lower-cased ("seg.png"); a basename without a dot, or one starting with a dot, has no key
//     and the member is skipped;
//   - members whose basename starts and ends with "__" (webdataset's metadata, e.g. "__key__")
//     are skipped;
//   - a sample is the run of consecutive members sharing one key; a key that comes back later
//     starts a new sample;
//   - a sample with an extension twice is bad (VLT_WDS_BAD_DUP_EXT), one holding a member over
//     the tar reader's size cap is bad (VLT_WDS_BAD_TOO_LARGE): bad samples are still returned,
//     with `bad` set and without data, so the caller can count them.
// When the tar stream fails (truncation, garbage), nothing read whole is lost: the sample being
// assembled is delivered when the member that broke belongs to another key (or its header was
// cut, so no member of the sample is known to be missing); the members cut short come out as a
// bad sample (VLT_WDS_BAD_TRUNCATED, no data) under their key, so that the caller counts exactly
// the incomplete tail; then vlt_wds_next returns the stream's error (and keeps returning it).
#ifndef VLT_DATA_WEBDATASET_H
#define VLT_DATA_WEBDATASET_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"
#include "data/tar.h"

typedef enum {
    VLT_WDS_OK = 0,
    VLT_WDS_BAD_DUP_EXT,    // one extension twice in the sample
    VLT_WDS_BAD_TOO_LARGE,  // a member over the size cap
    VLT_WDS_BAD_TRUNCATED,  // the stream broke inside this sample (bad_ext: the member cut short)
} vlt_wds_bad;

typedef struct {
    char *ext;         // lower-cased extension, e.g. "jpg", "txt", "json", "seg.png"
    uint8_t *data;     // size bytes plus a NUL at data[size]
    uint64_t size;
} vlt_wds_field;

typedef struct {
    char *key;              // e.g. "000123" or "dir/000123"
    vlt_wds_field *fields;  // n_fields entries in tar order (none when bad)
    int n_fields;
    uint64_t offset;        // tar offset of the first member's first header
    uint64_t next_offset;   // tar offset just past the last member
    vlt_wds_bad bad;        // VLT_WDS_OK unless the sample is bad
    char *bad_ext;          // the duplicated / oversized / cut member's extension when bad (may be NULL)
} vlt_wds_sample;

typedef struct vlt_wds vlt_wds;   // a grouping reader over one tar stream

// Wraps t (borrowed: close it yourself after vlt_wds_close).
vlt_status vlt_wds_open(vlt_tar *t, vlt_wds **out);
void vlt_wds_close(vlt_wds *w);
// The next sample: VLT_OK with *got = 1, VLT_OK with *got = 0 at the end, or the tar error.
vlt_status vlt_wds_next(vlt_wds *w, vlt_wds_sample *s, int *got);
void vlt_wds_sample_free(vlt_wds_sample *s);

// The field with this (lower-case) extension, or NULL.
const vlt_wds_field *vlt_wds_sample_field(const vlt_wds_sample *s, const char *ext);

// Splits a member path into key and extension by the rules above. Returns 0 and sets the
// lengths (ext starts at path + key_len + 1) or -1 when the member has no key or is
// metadata (`__*__`).
int vlt_wds_split_path(const char *path, size_t *key_len, size_t *ext_len);

const char *vlt_wds_bad_name(vlt_wds_bad b);

#endif
