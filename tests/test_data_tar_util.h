// test_data_tar_util.h — a tiny tar writer for the data tests: builds ustar / pax / GNU long
// name archives in memory (optionally zstd-compressed) and writes them into a temp directory.
// Test-only code; the real shard writer lives in data/ (owned by another module).
#ifndef VLT_TEST_DATA_TAR_UTIL_H
#define VLT_TEST_DATA_TAR_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} tb_buf;

static inline void tb_put(tb_buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        b->buf = realloc(b->buf, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->buf + b->len, p, n);
    b->len += n;
}

static inline void tb_pad(tb_buf *b) {
    static const uint8_t zero[512];
    size_t r = b->len % 512;
    if (r) tb_put(b, zero, 512 - r);
}

// One 512-byte header. name goes into the 100-byte name field (truncated), prefix (POSIX
// ustar) into the 155-byte prefix field when non-NULL.
static inline void tb_header(tb_buf *b, const char *name, const char *prefix, uint64_t size, char type) {
    uint8_t h[512];
    memset(h, 0, sizeof h);
    strncpy((char *)h, name, 100);
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 108, 8, "%07o", 1000);
    snprintf((char *)h + 116, 8, "%07o", 1000);
    if (size < 077777777777ull) {
        snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    } else {   // base-256
        h[124] = 0x80;
        for (int i = 0; i < 8; i++) h[135 - i] = (uint8_t)(size >> (8 * i));
    }
    snprintf((char *)h + 136, 12, "%011o", 1700000000);
    h[156] = (uint8_t)type;
    memcpy(h + 257, "ustar\0" "00", 8);
    if (prefix) strncpy((char *)h + 345, prefix, 155);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    tb_put(b, h, 512);
}

static inline void tb_data(tb_buf *b, const void *data, size_t n) {
    tb_put(b, data, n);
    tb_pad(b);
}

static inline void tb_file(tb_buf *b, const char *name, const void *data, size_t n) {
    tb_header(b, name, NULL, n, '0');
    tb_data(b, data, n);
}

static inline void tb_str(tb_buf *b, const char *name, const char *text) { tb_file(b, name, text, strlen(text)); }

// A pax record "LEN key=value\n" (LEN counts itself).
static inline size_t tb_pax_record(char *out, size_t cap, const char *key, const char *value) {
    size_t body = strlen(key) + strlen(value) + 3;   // ' ' '=' '\n'
    size_t len = body + 1;
    for (;;) {
        char digits[24];
        size_t d = (size_t)snprintf(digits, sizeof digits, "%zu", len);
        if (body + d == len) break;
        len = body + d;
    }
    return (size_t)snprintf(out, cap, "%zu %s=%s\n", len, key, value);
}

// A member with a pax 'x' header carrying path (and size when pax_size >= 0 — then the ustar
// size field says 0).
static inline void tb_pax_file(tb_buf *b, const char *path, const void *data, size_t n, int pax_size) {
    char rec[8192];
    size_t rl = tb_pax_record(rec, sizeof rec, "path", path);
    rl += tb_pax_record(rec + rl, sizeof rec - rl, "mtime", "1700000000.5");
    if (pax_size) {
        char v[32];
        snprintf(v, sizeof v, "%zu", n);
        rl += tb_pax_record(rec + rl, sizeof rec - rl, "size", v);
    }
    tb_header(b, "PaxHeaders/x", NULL, rl, 'x');
    tb_data(b, rec, rl);
    tb_header(b, "truncated-name", NULL, pax_size ? 0 : n, '0');
    tb_data(b, data, n);
}

// A member with a GNU 'L' long-name header.
static inline void tb_gnu_long_file(tb_buf *b, const char *path, const void *data, size_t n) {
    tb_header(b, "././@LongLink", NULL, strlen(path) + 1, 'L');
    tb_data(b, path, strlen(path) + 1);
    tb_header(b, path, NULL, n, '0');
    tb_data(b, data, n);
}

static inline void tb_end(tb_buf *b) {
    static const uint8_t zero[1024];
    tb_put(b, zero, 1024);
}

// zstd-compresses b (level 3) into a fresh buffer; frames: 1 or 2 (split in the middle).
static inline tb_buf tb_zstd(const tb_buf *b, int frames) {
    tb_buf z = {0};
    size_t at = 0;
    for (int f = 0; f < frames; f++) {
        size_t n = (f == frames - 1) ? b->len - at : b->len / (size_t)frames;
        size_t cap = ZSTD_compressBound(n);
        uint8_t *tmp = malloc(cap);
        size_t r = ZSTD_compress(tmp, cap, b->buf + at, n, 3);
        if (ZSTD_isError(r)) abort();
        tb_put(&z, tmp, r);
        free(tmp);
        at += n;
    }
    return z;
}

static inline int tb_save(const uint8_t *p, size_t n, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static inline void tb_free(tb_buf *b) {
    free(b->buf);
    memset(b, 0, sizeof *b);
}

// A fresh temp directory (removed by tb_rmdir).
static inline char *tb_tmpdir(void) {
    char *d = strdup("/tmp/vlt_test_XXXXXX");
    if (!mkdtemp(d)) abort();
    return d;
}

static inline void tb_rmdir(char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    free(dir);
}

#endif
