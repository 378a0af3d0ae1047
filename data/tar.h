// tar.h — a streaming tar reader for webdataset shards (.tar and .tar.zst).
//
// Owns: reading tar members one at a time from a file, a FILE* or a memory buffer, plain or
// zstd-compressed (sniffed from the zstd magic bytes, not from the file name; concatenated
// frames are fine). It never holds more than one member's data plus two 128 KiB buffers, so a
// shard of any size streams in bounded memory.
//
// Formats: POSIX ustar (name + prefix), pax extended headers ('x': the `path` and `size`
// records are honoured, the others ignored; 'g' global headers are skipped and ignored), GNU
// long names ('L'; 'K' long link names are skipped), base-256 sizes, v7 headers without magic.
// Only regular files ('0', '\0', '7') are yielded; directories, links, devices and GNU sparse
// members are stepped over. One all-zero block ends the archive; so does end of input at a
// block boundary (as Python's tarfile).
//
// Errors: a bad checksum, a malformed number or pax record, a truncated header or member, or a
// corrupt zstd stream is VLT_ERR_FORMAT with a message naming the shard and the byte offset
// (in the uncompressed tar stream); after such an error the reader is finished and every later
// call returns the same status. A member larger than the size cap (default 64 MiB) is not an
// error of the stream: it is returned with data == NULL and too_large = 1, its bytes skipped.
#ifndef VLT_DATA_TAR_H
#define VLT_DATA_TAR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "autograd/error.h"

#define VLT_TAR_DEFAULT_MAX_MEMBER ((uint64_t)64 << 20)   // bytes

typedef struct vlt_tar vlt_tar;   // opaque reader

// One member. path and data are malloc'd and belong to the caller (vlt_tar_member_free, or
// take them and free() them yourself).
typedef struct {
    char *path;            // full path (pax path > GNU long name > ustar prefix/name)
    uint8_t *data;         // size bytes plus a NUL at data[size]; NULL when too_large
    uint64_t size;         // data bytes
    uint64_t offset;       // offset of the member's first header block (its pax/L header if any)
    uint64_t next_offset;  // offset of the block after its data: where the next header starts
    int too_large;         // 1: size > the cap, data skipped and NULL
} vlt_tar_member;

// Opens a shard by path. `name` in messages is the path. Only a regular file is opened: a FIFO,
// device, socket or directory is VLT_ERR_IO naming what it is, without blocking (a FIFO without a
// writer would otherwise hang the reader thread in open()).
vlt_status vlt_tar_open(const char *path, vlt_tar **out);
// Reads from an open stream (a pipe is fine; seeking then reads forward). own: close it in
// vlt_tar_close. name: what messages call the shard.
vlt_status vlt_tar_open_file(FILE *f, int own, const char *name, vlt_tar **out);
// Reads from memory (not copied: buf must outlive the reader). For tests and fuzzing.
vlt_status vlt_tar_open_mem(const uint8_t *buf, size_t len, const char *name, vlt_tar **out);
void vlt_tar_close(vlt_tar *t);

// Members larger than max_bytes are skipped (too_large = 1). Default VLT_TAR_DEFAULT_MAX_MEMBER.
void vlt_tar_set_max_member(vlt_tar *t, uint64_t max_bytes);

// The next regular-file member: VLT_OK and *got = 1 with *m filled, or VLT_OK and *got = 0 at
// the end of the archive, or an error (the reader is then finished).
vlt_status vlt_tar_next(vlt_tar *t, vlt_tar_member *m, int *got);
void vlt_tar_member_free(vlt_tar_member *m);

// Moves to `offset` in the tar stream (a header boundary, a multiple of 512, as found in
// vlt_tar_member.offset / next_offset). Plain files seek; compressed or non-seekable input
// decodes and discards forward. Going backwards on such input is VLT_ERR_ARG.
vlt_status vlt_tar_seek(vlt_tar *t, uint64_t offset);
// The current offset in the tar stream (the next header to be read).
uint64_t vlt_tar_offset(const vlt_tar *t);
// 1 when the input is zstd-compressed.
int vlt_tar_is_compressed(const vlt_tar *t);
const char *vlt_tar_name(const vlt_tar *t);
// After vlt_tar_next failed: the path of the regular member whose header was read whole but
// whose data was cut short (or could not be read), so that a caller grouping members can tell
// which member broke, and (offset, may be NULL) where its first header starts; NULL when the
// failure was in a header (or the reader has not failed).
const char *vlt_tar_failed_member(const vlt_tar *t, uint64_t *offset);

#endif
