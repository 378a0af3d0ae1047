// loader.h — the threaded data loader: webdataset shards in, batches of decoded, augmented
// images and tokenized captions out, in an order that does not depend on thread timing and can
// be resumed exactly.
//
// Owns: reader/decoder threads, the per-epoch shard order, the sample shuffle buffer, the
// resampled mode, the bounded prefetch queue of batches, bad-data accounting, and the loader
// position (save / restore).
//
// How it runs. The shard spec (shardspec.h) is expanded once. For epoch e the list is put in a
// seeded order (vlt_rng_shuffle_u32 on stream (VLT_RNG_SHUFFLE, e, 0); or kept in spec order)
// and dealt to this rank and then to its `readers` threads (vlt_shardspec_split). In resampled
// mode each reader instead draws as many shards as it would have been dealt, with replacement,
// from the whole list (stream (VLT_RNG_SHUFFLE, e, 1 + global reader id)). Each reader thread
// streams its shards one after another (tar.h, webdataset.h), keeps its own sample shuffle
// buffer, and decodes what it draws: image (first of jpg, jpeg, png, webp) through
// vlt_image_decode + vlt_transform_train/eval, caption from .txt or else the "caption" string
// of .json, tokens through vlt_tokenizer_encode. A collator thread takes decoded samples from
// the readers in a fixed round robin (reader 0, 1, …, R-1, 0, …; a finished reader drops out)
// and fills batches into a ring of `prefetch` batches. Because each reader's sequence is a pure
// function of (seed, epoch, its shards) and the merge order is fixed, the batches are the same
// on every run whatever the thread timing.
//
// Shuffle buffer (per reader). Before each draw the buffer is filled to
// min(shuffle_buffer, max(shuffle_initial, 1) + draws so far) samples (fewer at the end of the
// reader's shards); the draw takes buffer element vlt_rng_below(seed, stream (VLT_RNG_SHUFFLE,
// e, 2^32 + global reader id), draw index, size), the buffer being kept in read order.
// shuffle_buffer <= 1 reads samples in shard order.
//
// Bad data. A sample without an image or caption, with an image that does not decode, an
// unparsable .json caption, a duplicated extension or an oversized member is skipped and
// counted by reason; a shard that cannot be opened or that ends in an error (truncation,
// garbage) is skipped from there on and counted; one warning line per event goes to stderr, at
// most warn_limit per epoch. The counts are in vlt_loader_stats, accumulated as batches are
// delivered (so they are exact at every batch and survive save/restore); with `report` set the
// loader prints them (vlt_loader_stats_print) to stderr when an epoch ends. Only regular files are
// read as shards (tar.h): a FIFO in the spec is refused and counted as unreadable instead of
// blocking its reader in open(). A reader that stays busy without progress for stall_ms (a hung
// network filesystem) is reported by number and shard while the run waits for it.
//
// Position. After every batch the loader knows its position: epoch, batches and samples so far,
// the round-robin turn, and per reader: the index in its shard sequence, the tar offset of the
// next sample, counts of samples read and drawn, and the shuffle buffer as (shard index, tar
// offset, key hash) of each buffered sample. vlt_loader_position_json gives it as a small JSON
// object; a loader restored from it (same spec, seed, world size, rank and readers) re-reads
// the buffered samples from their shards and then yields exactly the batches the uninterrupted
// loader would have yielded.
//
// Pinned memory: `pinned` = 1 asks for batch images and tokens in page-locked host memory. The
// loader only takes an allocation hook (host_alloc / host_free); the trainer passes one built on
// cudaHostAlloc / cudaFreeHost (train/feed.h) when it trains on the GPU. pinned = 1 without a hook
// is VLT_ERR_UNSUPPORTED rather than a silent fallback to pageable memory. The prefetch + 1 batch
// slots are then the host buffers of the GPU feed: a delivered batch's memory is not refilled
// before the next vlt_loader_next call, so a copy from it may run until then.
#ifndef VLT_DATA_LOADER_H
#define VLT_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "autograd/error.h"
#include "data/tokenizer.h"
#include "data/transform.h"

typedef void *(*vlt_loader_alloc_fn)(size_t bytes, void *ctx);
typedef void (*vlt_loader_free_fn)(void *ptr, void *ctx);

typedef struct {
    const char *shards;            // shard spec (see shardspec.h); copied at create
    int rank, world_size;          // this process among world_size (0, 1)
    int readers;                   // reader/decoder threads (4); needs >= world_size*readers shards
    int batch_size;                // B (64)
    int image_size;                // S (224)
    int context_len;               // tokens per caption (77)
    int train;                     // 1: vlt_transform_train (random crop keyed by seed, epoch, key)
                                   // 0: vlt_transform_eval
    vlt_transform_cfg transform;   // transform.size == 0: vlt_transform_cfg_default(image_size)
    int keep_json;                 // 1: each batch also holds the samples' .json members (vlt_batch.json)
    int fast_decode;               // 1: JPEGs at least twice image_size decode DCT-scaled (libjpeg-turbo
                                   // scale 1/2..1/8, faster, not PIL's pixels: training throughput);
                                   // 0: full-size decode as PIL does (0, and always for evaluation)
    const vlt_tokenizer *tokenizer;// borrowed; NULL: the token array is all zeros
    uint64_t seed;                 // (0)
    int64_t start_epoch;           // the epoch the first vlt_loader_next starts (0)
    int shuffle_shards;            // per-epoch seeded shard order (1)
    int shuffle_buffer;            // samples in each reader's shuffle buffer (1000); <= 1: none
    int shuffle_initial;           // samples buffered before the first draw (100)
    int resampled;                 // draw shards with replacement (0)
    int64_t samples_per_epoch;     // this rank's samples per epoch; 0: one pass over the shards
    int drop_last;                 // drop the last partial batch of an epoch (0)
    int prefetch;                  // batches prepared ahead (2)
    int queue_per_reader;          // decoded samples each reader may hold ready (0: B/readers + 2)
    uint64_t max_member_bytes;     // tar members above this are skipped (64 MiB)
    int warn_limit;                // warning lines per epoch (20); 0: none
    int report;                    // print the epoch's stats to stderr at its end (1)
    int images_u8;                 // 1: batch images as uint8 (n, 3, S, S) pixels after crop / resize / flip
                                   // (vlt_batch.images_u8, images NULL), normalised later by
                                   // vlt_normalize_u8 (autograd/ops.h) to the float batch's exact values;
                                   // 4x less memory and 4x fewer bytes to a GPU (0: float32, normalised)
    int pinned;                    // batch memory from host_alloc (see above) (0)
    vlt_loader_alloc_fn host_alloc;// NULL: malloc (pinned = 0 only)
    vlt_loader_free_fn host_free;
    void *host_ctx;
    const char *label_ext;         // (borrowed) e.g. "cls": each sample's integer class label (decimal text, as
                                   // webdataset classification shards hold it) goes to batch labels;
                                   // a sample without one is skipped (NULL: no labels)
    int caption_optional;          // 1: a sample without a caption gets "" instead of a skip (0)
    // VQA (vqa_pack.h shards): the answer vocabulary (borrowed, n_answers strings, an answer's index
    // its class). Each sample's .json "answer_scores" ({processed answer: soft score}, as `vlt
    // shards` writes them, the accuracy a prediction of it gets) fills a row of batch answer_scores;
    // answers outside the vocabulary are left out (the VQAv2 convention). A sample without
    // "answer_scores" is skipped (VLT_SKIP_NO_ANSWERS), unless answers_optional (a test split): a
    // zero row. n_answers 0: no answer scores (caption shards).
    const char *const *answers;
    int n_answers;
    int answers_optional;
    int stall_ms;                  // a reader busy this long without progress is reported on stderr by
                                   // number and shard, again every stall_ms while it lasts (60000; 0: never)
    // Memory check (vlt_loader_create): what the caller's training step will hold besides the
    // loader, counted with the loader's own buffers against the memory this machine has free.
    double step_bytes_fixed;       // parameters, gradients, optimizer state (0)
    double step_bytes_per_sample;  // activations per sample of a batch (0)
} vlt_loader_cfg;

void vlt_loader_cfg_default(vlt_loader_cfg *cfg);

typedef struct {
    int n;                  // samples in this batch: batch_size, or fewer for the last one
    int image_size;         // S
    int context_len;        // T
    float *images;          // (n, 3, S, S) float32, normalized; NULL with images_u8
    uint8_t *images_u8;     // with images_u8: (n, 3, S, S) uint8 pixels; else NULL
    const float *mean, *std;// the transform's normalisation (3 each): vlt_normalize_u8's arguments
    int32_t *tokens;        // (n, T) int32
    char **keys;            // n sample keys
    char **captions;        // n raw captions (UTF-8, as in the shard)
    char **json;            // with keep_json: n .json members as text (NULL where a sample has none); else NULL
    int32_t *labels;        // n class labels with label_ext, else -1
    float *answer_scores;   // with n_answers: (n, n_answers) soft scores of the vocabulary's answers; else NULL
    int64_t epoch;
    int64_t index;          // batch number within the epoch, from 0
} vlt_batch;

typedef enum {
    VLT_SKIP_NO_IMAGE = 0,  // no jpg/jpeg/png/webp member
    VLT_SKIP_BAD_IMAGE,     // not an image, bad header, too large (or transform failed)
    VLT_SKIP_NO_CAPTION,    // no txt, no json with a "caption" string, or an empty caption
    VLT_SKIP_BAD_CAPTION,   // .json that does not parse
    VLT_SKIP_DUP_EXT,       // an extension twice in one sample
    VLT_SKIP_TOO_LARGE,     // a member over max_member_bytes
    VLT_SKIP_NO_LABEL,      // label_ext set and the member missing or not an integer
    VLT_SKIP_TRUNCATED_IMAGE, // image data ends early (cut short, maybe with an end marker appended)
    VLT_SKIP_CORRUPT_IMAGE, // the decoder met garbled data (see image.h: decoder warnings count)
    VLT_SKIP_TRUNCATED_SAMPLE, // the shard ends inside this sample (a member cut short)
    VLT_SKIP_NO_ANSWERS,    // n_answers set, and no .json "answer_scores" (or not an object of numbers)
    VLT_SKIP_COUNT
} vlt_skip_reason;

typedef struct {
    int64_t epoch;
    int64_t samples;               // delivered in batches (and dropped by drop_last)
    int64_t batches;
    int64_t skipped[VLT_SKIP_COUNT];
    int64_t shards_done;           // read to their end
    int64_t shards_failed;         // could not be opened
    int64_t shards_truncated;      // ended by an error (truncation, garbage, corrupt zstd)
} vlt_loader_stats;

const char *vlt_skip_reason_name(vlt_skip_reason r);
// One line per nonzero count: "epoch 3: 12800 samples in 200 batches; skipped: 3 bad image, …".
void vlt_loader_stats_print(const vlt_loader_stats *s, FILE *f);

typedef struct vlt_loader vlt_loader;

// What a configuration needs in memory, in bytes: the loader's batch slots and reader queues
// (images as float32, tokens, positions; not the compressed samples in the shuffle buffers, whose
// size depends on the data) and the caller's step_bytes_* for batch_size samples.
typedef struct {
    double loader;       // batch slots + reader queues + positions
    double step;         // step_bytes_fixed + batch_size * step_bytes_per_sample
    double total;
} vlt_loader_memory;
void vlt_loader_memory_estimate(const vlt_loader_cfg *cfg, vlt_loader_memory *m);
// Memory this process can still get, in bytes: MemAvailable + SwapFree from /proc/meminfo (else
// physical memory; 0 when unknown).
double vlt_memory_available(void);

// Checks the config, expands the spec and checks the split; starts no thread yet. A configuration
// whose vlt_loader_memory_estimate exceeds vlt_memory_available() is refused (VLT_ERR_NOMEM) with
// the figures and the key to lower (batch_size) before anything large is allocated, instead of
// being ended by the kernel's OOM killer minutes later.
vlt_status vlt_loader_create(const vlt_loader_cfg *cfg, vlt_loader **out);
void vlt_loader_free(vlt_loader *L);

// The next batch, valid until the next call (or free). At the end of an epoch *out = NULL
// (the stats are then the epoch's totals); the call after that starts the next epoch.
vlt_status vlt_loader_next(vlt_loader *L, const vlt_batch **out);
// The stats of the current (or just finished) epoch, as delivered so far.
const vlt_loader_stats *vlt_loader_get_stats(const vlt_loader *L);
// How many stall reports (see stall_ms) this loader has printed.
int vlt_loader_stall_reports(const vlt_loader *L);
// Stops the running epoch (if any) and makes the next call start `epoch` from its beginning.
vlt_status vlt_loader_set_epoch(vlt_loader *L, int64_t epoch);

// The position after the last delivered batch (or the start of the next epoch after NULL) as
// JSON text (malloc'd; free() it). Typically a few hundred bytes plus ~40 per buffered sample.
vlt_status vlt_loader_position_json(vlt_loader *L, char **json);
// The position before the batch now held (as vlt_loader_position_json gave it before the last
// vlt_loader_next): for a caller that fetches one batch ahead of its use (the trainer's GPU feed)
// and checkpoints before using it. Without a held batch, the same as vlt_loader_position_json.
vlt_status vlt_loader_position_before_json(vlt_loader *L, char **json);
// Stops the running epoch (if any); the next vlt_loader_next continues from the position.
// VLT_ERR_ARG when it was saved by a loader with another seed, spec length, world size, rank,
// readers or resampled setting; VLT_ERR_FORMAT for malformed JSON.
vlt_status vlt_loader_restore_json(vlt_loader *L, const char *json);

#endif
