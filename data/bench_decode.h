// bench_decode.h — the data-pipeline CPU benchmark: read webdataset shards, decode each .jpg and
// apply the train transform (RandomResizedCrop(size) + normalize to float32 CHW), on the calling
// thread only, and time it. scripts/bench/bench_decode.sh runs it beside the Python pipeline
// (webdataset + PIL + torchvision) on the same shards and core.
#ifndef VLT_DATA_BENCH_DECODE_H
#define VLT_DATA_BENCH_DECODE_H

#include <stdint.h>

#include "autograd/error.h"

typedef struct {
    long long images;     // images decoded and transformed
    long long bytes;      // JPEG bytes read
    double seconds;       // wall time of the whole pass (tar reading included)
    uint64_t checksum;    // FNV-1a of every output (float32 CHW), in order; 0 unless asked for
} vlt_bench_decode_result;

// One pass over the shards. min_side: the decode hint (0: full-size decode, as PIL does;
// size: let JPEG DCT scaling shrink images at least twice the output). limit > 0 stops early.
// checksum: also hash the outputs (slower; for checking that a change kept them bit for bit).
vlt_status vlt_bench_decode_run(const char *const *shards, int n_shards, int size, int min_side, long long limit,
                                int checksum, vlt_bench_decode_result *out);

// Command line: [--size N] [--repeat R] [--limit N] [--mode full|dct|both] [--checksum] SHARD...;
// prints one line per mode ("vlt full-decode: ... images/s", "vlt dct-scaled: ... images/s"), best
// of R passes, and with --checksum the outputs' hash from one more (untimed) pass.
// Returns the exit status.
int vlt_bench_decode_main(int argc, char **argv);

#endif
