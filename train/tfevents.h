// tfevents.h — a TensorBoard event-file writer (scalars only), written from the file format.
//
// Owns: the TFRecord framing, CRC32C (Castagnoli) and its TensorFlow mask, the hand encoding of
// the Event / Summary protobufs, and one open `events.out.tfevents.<unix time>.<hostname>` file
// in a directory, so that `tensorboard --logdir DIR` plots what vlt logs.
//
// A record on disk (all integers little-endian):
//   uint64 length | uint32 masked_crc32c(length bytes) | data[length] | uint32 masked_crc32c(data)
// masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32).
//
// data is an Event message:
//   1: wall_time double (seconds since the epoch)   2: step int64
//   3: file_version string ("brain.Event:2", first record only)
//   5: summary Summary { 1: repeated Value { 1: tag string, 2: simple_value float } }
//   7: session_log SessionLog { 1: status enum (1 = START) }
// Each add_scalar writes one Event holding one Value.
//
// Restarts: a resumed run opens a new file and writes a SessionLog START event at the first step
// it will log. TensorBoard (purge_orphaned_data, on by default) then drops the events of every
// earlier file whose step is >= that step: the steps a stopped run logged after its checkpoint,
// which the resumed run logs again.
//
// Typical use: open once, add_scalar for each tag of a step, flush after the step, close at the
// end (close fsyncs). The handle is not thread-safe; one writer per file.
#ifndef VLT_TFEVENTS_H
#define VLT_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"

typedef struct vlt_tfevents vlt_tfevents;

// Creates DIR/events.out.tfevents.<unix time, 10 digits>.<hostname> (DIR must exist; when that
// name is taken, ".1", ".2", … is appended) and writes the file_version record.
vlt_status vlt_tfevents_open(vlt_tfevents **out, const char *dir);
// Appends one scalar Event (wall_time = now). tag: non-empty, at most VLT_TFEVENTS_MAX_TAG bytes.
vlt_status vlt_tfevents_add_scalar(vlt_tfevents *w, const char *tag, int64_t step, float value);
// Appends a SessionLog START Event at `step` (see Restarts above) and flushes.
vlt_status vlt_tfevents_add_session_start(vlt_tfevents *w, int64_t step);
// Hands buffered records to the kernel (fflush), so a running TensorBoard sees them.
vlt_status vlt_tfevents_flush(vlt_tfevents *w);
// Flushes, fsyncs, closes and frees. Returns the first error seen (a NULL handle is fine).
vlt_status vlt_tfevents_close(vlt_tfevents *w);
// The full path of the file being written (owned by the handle).
const char *vlt_tfevents_path(const vlt_tfevents *w);

#define VLT_TFEVENTS_MAX_TAG 1024

// --- the format pieces, public so tests (and other writers) can check them byte for byte ------

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF).
uint32_t vlt_tfevents_crc32c(const void *data, size_t n);
// TensorFlow's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t vlt_tfevents_mask_crc(uint32_t crc);
// Writes the framing of `n` data bytes into out[0..n+16): header (12 bytes), data, footer (4).
// Returns the bytes written (n + 16); out must hold that many.
size_t vlt_tfevents_frame(uint8_t *out, const void *data, size_t n);
// Encodes a scalar Event into out (cap bytes). Returns its length, or 0 when cap is too small
// or the tag is empty / longer than VLT_TFEVENTS_MAX_TAG.
size_t vlt_tfevents_encode_scalar(uint8_t *out, size_t cap, double wall_time, int64_t step,
                                  const char *tag, float value);
// Encodes a SessionLog START Event: wall_time, step, session_log {status: START}. Returns its
// length, or 0 when cap is too small.
size_t vlt_tfevents_encode_session_start(uint8_t *out, size_t cap, double wall_time, int64_t step);
// Encodes the first Event of a file: wall_time, step 0, file_version "brain.Event:2".
size_t vlt_tfevents_encode_version(uint8_t *out, size_t cap, double wall_time);

#endif
