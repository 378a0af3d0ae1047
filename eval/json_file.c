// json_file.c — whole-file JSON read/write with named errors (see json_file.h).
#include "eval/json_file.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

vlt_status vlt_eval_json_load(const char *path, cJSON **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return vlt_error_set(VLT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            buf = nb;
        }
    }
    int rerr = ferror(f);
    fclose(f);
    if (!buf) return vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory reading the file", path);
    if (rerr) { free(buf); return vlt_error_set(VLT_ERR_IO, "%s: read error", path); }
    buf[len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(buf, &end, 1);
    if (!root) {
        size_t at = end ? (size_t)(end - buf) : 0, line = 1;
        for (size_t k = 0; k < at && k < len; k++) line += buf[k] == '\n';
        free(buf);
        return vlt_error_set(VLT_ERR_FORMAT, "%s: malformed JSON near byte %zu (line %zu)", path, at, line);
    }
    free(buf);
    *out = root;
    return VLT_OK;
}

vlt_status vlt_eval_json_save(const char *path, const cJSON *root) {
    char *text = cJSON_Print(root);
    if (!text) return vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory printing JSON", path);
    // written to PATH.tmp.PID and renamed: a crash or a full disk never leaves half a file at PATH
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    if (!tmp) { free(text); return vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory", path); }
    snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        vlt_status st = vlt_error_set(VLT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(text);
        free(tmp);
        return st;
    }
    size_t n = strlen(text);
    int bad = fwrite(text, 1, n, f) != n || fputc('\n', f) == EOF;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    free(text);
    if (bad || rename(tmp, path) != 0) {
        vlt_status st = vlt_error_set(VLT_ERR_IO, "%s: write error: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return VLT_OK;
}

int vlt_eval_json_id(const cJSON *item, long long *id) {
    if (cJSON_IsNumber(item)) {
        double v = item->valuedouble;
        if (v != floor(v) || fabs(v) > 9007199254740992.0) return 0;
        *id = (long long)v;
        return 1;
    }
    if (cJSON_IsString(item) && item->valuestring[0]) {
        char *end;
        errno = 0;
        long long v = strtoll(item->valuestring, &end, 10);
        if (*end || errno) return 0;
        *id = v;
        return 1;
    }
    return 0;
}
