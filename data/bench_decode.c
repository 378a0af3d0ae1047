// bench_decode.c — single-thread decode + RandomResizedCrop + normalize throughput over shards.
#include "data/bench_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/image.h"
#include "data/resample.h"
#include "data/tar.h"
#include "data/transform.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int is_jpg(const char *path) {
    size_t n = strlen(path);
    return n > 4 && (!strcmp(path + n - 4, ".jpg") || (n > 5 && !strcmp(path + n - 5, ".jpeg")));
}

// FNV-1a over 64-bit little-endian words, then the tail bytes one by one.
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 1099511628211ull;
    }
    for (; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

vlt_status vlt_bench_decode_run(const char *const *shards, int n_shards, int size, int min_side, long long limit,
                                int checksum, vlt_bench_decode_result *out) {
    memset(out, 0, sizeof *out);
    if (checksum) out->checksum = 14695981039346656037ull;
    vlt_transform_cfg cfg;
    vlt_transform_cfg_default(&cfg, size);
    float *chw = malloc(sizeof(float) * 3 * (size_t)size * size);
    if (!chw) return vlt_error_set(VLT_ERR_NOMEM, "bench_decode: out of memory");
    vlt_status st = VLT_OK;
    double t0 = now();
    for (int s = 0; s < n_shards && st == VLT_OK && (limit <= 0 || out->images < limit); s++) {
        vlt_tar *tar;
        st = vlt_tar_open(shards[s], &tar);
        if (st != VLT_OK) break;
        vlt_tar_member m;
        int got = 0;
        while ((st = vlt_tar_next(tar, &m, &got)) == VLT_OK && got) {
            if (m.data && is_jpg(m.path)) {
                vlt_image img;
                st = vlt_image_decode(m.data, m.size, min_side, m.path, &img);
                if (st == VLT_OK) st = vlt_transform_train(&img, &cfg, 0, 0, m.path, chw);
                if (st == VLT_OK && checksum) out->checksum = hash_bytes(out->checksum, chw, sizeof(float) * 3 * (size_t)size * size);
                vlt_image_free(&img);
                out->images++;
                out->bytes += (long long)m.size;
            }
            vlt_tar_member_free(&m);
            if (st != VLT_OK || (limit > 0 && out->images >= limit)) break;
        }
        vlt_tar_close(tar);
    }
    out->seconds = now() - t0;
    free(chw);
    return st;
}

#define USAGE "usage: %s [--size N] [--repeat R] [--limit N] [--mode full|dct|both] [--checksum] SHARD...\n"

int vlt_bench_decode_main(int argc, char **argv) {
    int size = 224, repeat = 3, m0 = 0, m1 = 2, checksum = 0;
    long long limit = 0;
    int first = 1;
    for (; first < argc && !strncmp(argv[first], "--", 2); first++) {
        if (!strcmp(argv[first], "--size") && first + 1 < argc) size = atoi(argv[++first]);
        else if (!strcmp(argv[first], "--repeat") && first + 1 < argc) repeat = atoi(argv[++first]);
        else if (!strcmp(argv[first], "--limit") && first + 1 < argc) limit = atoll(argv[++first]);
        else if (!strcmp(argv[first], "--checksum")) checksum = 1;
        else if (!strcmp(argv[first], "--mode") && first + 1 < argc) {
            const char *m = argv[++first];
            m0 = !strcmp(m, "dct") ? 1 : 0;
            m1 = !strcmp(m, "full") ? 1 : 2;
            if (strcmp(m, "dct") && strcmp(m, "full") && strcmp(m, "both")) first = argc;
        } else {
            first = argc;
        }
    }
    if (first >= argc || size <= 0 || repeat <= 0) {
        fprintf(stderr, USAGE, argv[0]);
        return 2;
    }
    const char *const *shards = (const char *const *)argv + first;
    int n = argc - first;
    const struct { const char *name; int min_side; } modes[2] = {{"full-decode", 0}, {"dct-scaled", size}};
    for (int m = m0; m < m1; m++) {
        double best = 0;
        vlt_bench_decode_result r = {0};
        for (int k = 0; k < repeat; k++) {
            if (vlt_bench_decode_run(shards, n, size, modes[m].min_side, limit, 0, &r) != VLT_OK) {
                fprintf(stderr, "bench_decode: %s\n", vlt_error_message());
                return 1;
            }
            double rate = r.images / r.seconds;
            if (rate > best) best = rate;
        }
        printf("vlt %s: %lld images, %.1f images/s (best of %d; decode + RandomResizedCrop(%d) + normalize, 1 thread, "
               "%s resampling)\n", modes[m].name, r.images, best, repeat, size, vlt_resample_kernel_name(VLT_RESAMPLE_AUTO));
        if (checksum) {
            if (vlt_bench_decode_run(shards, n, size, modes[m].min_side, limit, 1, &r) != VLT_OK) {
                fprintf(stderr, "bench_decode: %s\n", vlt_error_message());
                return 1;
            }
            printf("vlt %s checksum: %016llx (FNV-1a of the float32 outputs, one more untimed pass)\n", modes[m].name,
                   (unsigned long long)r.checksum);
        }
    }
    return 0;
}
