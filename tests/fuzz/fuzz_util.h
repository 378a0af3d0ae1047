// fuzz_util.h — small helpers shared by the libFuzzer targets: the input as a NUL-terminated
// string, splitting it into parts, and writing parts to files in a per-process scratch directory
// (for parsers that only take paths).
#ifndef VLT_FUZZ_UTIL_H
#define VLT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// A malloc'd copy of the input with a NUL after it (the input may hold NULs of its own).
static inline char *fz_str(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

// Splits the input at the first `sep` byte sequence (e.g. "\n--\n" or a NUL): *a gets the part
// before (malloc'd, NUL-terminated), *b the rest. Without a separator *b is "".
static inline void fz_split(const uint8_t *data, size_t size, const char *sep, char **a, char **b) {
    size_t n = strlen(sep);
    size_t cut = size;
    for (size_t i = 0; n && i + n <= size; i++)
        if (!memcmp(data + i, sep, n)) {
            cut = i;
            break;
        }
    *a = fz_str(data, cut);
    *b = cut < size ? fz_str(data + cut + n, size - cut - n) : fz_str(data, 0);
}

// A scratch directory for this process (created once, under $TMPDIR or /tmp, removed at exit).
static char fz_dir_path[256];
static inline void fz_dir_cleanup(void) {
    if (!fz_dir_path[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir_path);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fz_dir_path);
}
static inline const char *fz_dir(void) {
    if (!fz_dir_path[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_dir_path, sizeof fz_dir_path, "%s/vlt_fuzz_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fz_dir_path)) abort();
        atexit(fz_dir_cleanup);
    }
    return fz_dir_path;
}

// Writes n bytes to fz_dir()/name and returns the full path (static buffer per slot 0..3).
static inline const char *fz_file(int slot, const char *name, const void *buf, size_t n) {
    static char paths[4][512];
    char *p = paths[slot & 3];
    snprintf(p, 512, "%s/%s", fz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    if (n && fwrite(buf, 1, n, f) != n) abort();
    fclose(f);
    return p;
}

#endif
