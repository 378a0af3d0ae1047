// files.c — whole-file reads (see files.h).
#include "data/files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *vlt_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

vlt_status vlt_read_json_file(const char *path, cJSON **out) {
    *out = NULL;
    char *text = vlt_read_file(path, NULL);
    if (!text) return vlt_error_set(VLT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    *out = cJSON_Parse(text);
    vlt_status s = VLT_OK;
    if (!*out) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text ? (long)(at - text) : -1;
        s = vlt_error_set(VLT_ERR_FORMAT, "%s is not valid JSON (near byte %ld)", path, off);
    }
    free(text);
    return s;
}

vlt_status vlt_make_dirs(const char *path, unsigned mode) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return vlt_error_set(VLT_ERR_ARG, "cannot create %.200s...: path too long", path);
    for (char *c = buf + 1; *c; c++) {
        if (*c != '/') continue;
        *c = '\0';
        if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
            return vlt_error_set(VLT_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
        *c = '/';
    }
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
        return vlt_error_set(VLT_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
    struct stat st;   // (EEXIST also for a file of that name)
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return vlt_error_set(VLT_ERR_IO, "cannot create %s: it exists and is not a directory", buf);
    return VLT_OK;
}
