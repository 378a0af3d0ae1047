// shardspec.c — shard spec expansion (braces, lists, globs) and the rank/reader split.
#include "data/shardspec.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char **v;
    size_t n, cap;
} strvec;

static vlt_status vec_push(strvec *s, char *p) {   // takes p
    if (!p) return vlt_error_set(VLT_ERR_NOMEM, "shardspec: out of memory");
    if (s->n >= VLT_SHARDSPEC_MAX) {
        free(p);
        return vlt_error_set(VLT_ERR_ARG, "shardspec: more than %d shards", VLT_SHARDSPEC_MAX);
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            free(p);
            return vlt_error_set(VLT_ERR_NOMEM, "shardspec: out of memory");
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = p;
    return VLT_OK;
}

static void vec_free(strvec *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

// prefix[0..plen) + mid[0..mlen) + suffix
static char *join3(const char *prefix, size_t plen, const char *mid, size_t mlen, const char *suffix) {
    size_t slen = strlen(suffix);
    char *r = malloc(plen + mlen + slen + 1);
    if (!r) return NULL;
    memcpy(r, prefix, plen);
    memcpy(r + plen, mid, mlen);
    memcpy(r + plen + mlen, suffix, slen + 1);
    return r;
}

// Parses "A..B" or "A..B..S" (decimal digits) over the whole of s[0..n).
static int parse_range(const char *s, size_t n, uint64_t *a, uint64_t *b, uint64_t *step, int *width) {
    const char *end = s + n;
    const char *p = s;
    uint64_t v[3] = {0, 0, 0};
    size_t len[3] = {0, 0, 0};
    int parts = 0;
    while (parts < 3) {
        const char *q = p;
        while (q < end && isdigit((unsigned char)*q)) {
            if (v[parts] > UINT64_MAX / 20) return -1;
            v[parts] = v[parts] * 10 + (uint64_t)(*q - '0');
            q++;
        }
        len[parts] = (size_t)(q - p);
        if (len[parts] == 0) return -1;
        parts++;
        if (q == end) break;
        if (end - q < 2 || q[0] != '.' || q[1] != '.') return -1;
        p = q + 2;
        if (parts == 3) return -1;
    }
    if (parts < 2 || (parts == 3 && v[2] == 0)) return -1;
    if (parts == 2) v[2] = 1;
    *a = v[0];
    *b = v[1];
    *step = v[2];
    int pad = (len[0] > 1 && s[0] == '0') || (len[1] > 1 && s[len[0] + 2] == '0');
    *width = pad ? (int)(len[0] > len[1] ? len[0] : len[1]) : 0;
    return 0;
}

static vlt_status expand_braces(const char *pat, size_t from, strvec *out);

static vlt_status expand_range(const char *pat, size_t open, size_t close, uint64_t a, uint64_t b,
                               uint64_t step, int width, strvec *out) {
    uint64_t count = (a <= b ? b - a : a - b) / step + 1;
    if (count > VLT_SHARDSPEC_MAX)
        return vlt_error_set(VLT_ERR_ARG, "shardspec: range in '%s' has %llu entries (max %d)", pat,
                             (unsigned long long)count, VLT_SHARDSPEC_MAX);
    for (uint64_t k = 0; k < count; k++) {
        uint64_t v = a <= b ? a + k * step : a - k * step;
        char num[32];
        int m = snprintf(num, sizeof num, "%0*llu", width, (unsigned long long)v);
        char *next = join3(pat, open, num, (size_t)m, pat + close + 1);
        if (!next) return vlt_error_set(VLT_ERR_NOMEM, "shardspec: out of memory");
        vlt_status s = expand_braces(next, open + (size_t)m, out);
        free(next);
        VLT_TRY(s);
    }
    return VLT_OK;
}

static vlt_status expand_alternatives(const char *pat, size_t open, size_t close, strvec *out) {
    size_t start = open + 1;
    int depth = 0;
    for (size_t i = open + 1; i <= close; i++) {
        char c = pat[i];
        if (c == '{') depth++;
        else if (c == '}' && depth > 0) depth--;
        else if ((c == ',' && depth == 0) || i == close) {
            char *next = join3(pat, open, pat + start, i - start, pat + close + 1);
            if (!next) return vlt_error_set(VLT_ERR_NOMEM, "shardspec: out of memory");
            // The alternative may hold braces itself: expand from where it starts.
            vlt_status s = expand_braces(next, open, out);
            free(next);
            VLT_TRY(s);
            start = i + 1;
        }
    }
    return VLT_OK;
}

// Expands the first brace group at or after `from` (recursively the rest); a group that is
// neither a range nor a list stays literal.
static vlt_status expand_braces(const char *pat, size_t from, strvec *out) {
    size_t n = strlen(pat);
    for (size_t open = from; open < n; open++) {
        if (pat[open] == '}')
            return vlt_error_set(VLT_ERR_ARG, "shardspec: unbalanced '}' in '%s'", pat);
        if (pat[open] != '{') continue;
        int depth = 0, commas = 0;
        size_t close = open;
        for (size_t i = open; i < n; i++) {
            if (pat[i] == '{') depth++;
            else if (pat[i] == '}' && --depth == 0) { close = i; break; }
            else if (pat[i] == ',' && depth == 1) commas++;
        }
        if (close == open) return vlt_error_set(VLT_ERR_ARG, "shardspec: unbalanced '{' in '%s'", pat);
        if (commas) return expand_alternatives(pat, open, close, out);
        uint64_t a, b, step;
        int width;
        if (parse_range(pat + open + 1, close - open - 1, &a, &b, &step, &width) == 0)
            return expand_range(pat, open, close, a, b, step, width, out);
        return vlt_error_set(VLT_ERR_ARG, "shardspec: '%.*s' in '%s' is neither a range {A..B} nor a list {a,b}",
                             (int)(close - open + 1), pat + open, pat);
    }
    return vec_push(out, strdup(pat));
}

static int has_glob(const char *p) { return strpbrk(p, "*?[") != NULL; }

static vlt_status add_pattern(const char *pat, strvec *out) {
    if (!*pat) return VLT_OK;
    strvec braces = {0};
    vlt_status s = expand_braces(pat, 0, &braces);
    for (size_t i = 0; s == VLT_OK && i < braces.n; i++) {
        if (!has_glob(braces.v[i])) {
            s = vec_push(out, braces.v[i]);
            braces.v[i] = NULL;
            continue;
        }
        glob_t g;
        int r = glob(braces.v[i], 0, NULL, &g);
        if (r == GLOB_NOMATCH) {
            s = vlt_error_set(VLT_ERR_IO, "shardspec: pattern '%s' matches no files", braces.v[i]);
        } else if (r != 0) {
            s = vlt_error_set(VLT_ERR_IO, "shardspec: glob '%s' failed (%d)", braces.v[i], r);
        } else {
            for (size_t k = 0; s == VLT_OK && k < g.gl_pathc; k++) s = vec_push(out, strdup(g.gl_pathv[k]));
            globfree(&g);
        }
    }
    vec_free(&braces);
    return s;
}

static vlt_status add_list_file(const char *file, strvec *out) {
    FILE *f = fopen(file, "r");
    if (!f) return vlt_error_set(VLT_ERR_IO, "shardspec: cannot open list file '%s': %s", file, strerror(errno));
    const char *slash = strrchr(file, '/');
    size_t dirlen = slash ? (size_t)(slash - file) + 1 : 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    vlt_status s = VLT_OK;
    while (s == VLT_OK && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (!*p || *p == '#') continue;
        if (*p == '/' || dirlen == 0) {
            s = add_pattern(p, out);
        } else {
            char *full = join3(file, dirlen, p, strlen(p), "");
            if (!full) s = vlt_error_set(VLT_ERR_NOMEM, "shardspec: out of memory");
            else s = add_pattern(full, out);
            free(full);
        }
    }
    free(line);
    fclose(f);
    return s;
}

// One source: "@file" or comma-separated patterns (commas inside braces do not split).
static vlt_status add_source(const char *src, size_t n, strvec *out) {
    char *copy = strndup(src, n);
    if (!copy) return vlt_error_set(VLT_ERR_NOMEM, "shardspec: out of memory");
    vlt_status s = VLT_OK;
    if (copy[0] == '@') {
        s = add_list_file(copy + 1, out);
    } else {
        int depth = 0;
        char *start = copy;
        for (char *p = copy;; p++) {
            if (*p == '{') depth++;
            else if (*p == '}' && depth > 0) depth--;
            if (*p == '\0' || (*p == ',' && depth == 0)) {
                char end = *p;
                *p = '\0';
                s = add_pattern(start, out);
                if (s != VLT_OK || end == '\0') break;
                start = p + 1;
            }
        }
    }
    free(copy);
    return s;
}

vlt_status vlt_shardspec_expand(const char *spec, vlt_shard_list *out) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return vlt_error_set(VLT_ERR_ARG, "shardspec: empty shard spec");
    strvec v = {0};
    vlt_status s = VLT_OK;
    const char *p = spec;
    for (;;) {
        const char *sep = strstr(p, "::");
        size_t n = sep ? (size_t)(sep - p) : strlen(p);
        s = add_source(p, n, &v);
        if (s != VLT_OK || !sep) break;
        p = sep + 2;
    }
    if (s == VLT_OK && v.n == 0) s = vlt_error_set(VLT_ERR_ARG, "shardspec: '%s' names no shards", spec);
    if (s != VLT_OK) {
        vec_free(&v);
        return s;
    }
    out->paths = v.v;
    out->n = v.n;
    return VLT_OK;
}

void vlt_shard_list_free(vlt_shard_list *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    memset(l, 0, sizeof *l);
}

vlt_status vlt_shardspec_split(size_t n, int rank, int world, int reader, int readers, size_t **idx,
                               size_t *count) {
    *idx = NULL;
    *count = 0;
    if (world < 1 || rank < 0 || rank >= world)
        return vlt_error_set(VLT_ERR_ARG, "shardspec: rank %d of world size %d", rank, world);
    if (readers < 1 || reader < 0 || reader >= readers)
        return vlt_error_set(VLT_ERR_ARG, "shardspec: reader %d of %d", reader, readers);
    size_t need = (size_t)world * (size_t)readers;
    if (n < need)
        return vlt_error_set(VLT_ERR_ARG,
                             "shardspec: %zu shard(s) cannot feed %d rank(s) x %d reader(s): each reader needs "
                             "at least one shard (the readers per rank are data.workers: set data.workers=%zu or "
                             "fewer, give more shards, or set data.resampled=true)",
                             n, world, readers, n / (size_t)world > 0 ? n / (size_t)world : 1);
    size_t mine = 0;
    for (size_t i = (size_t)rank, j = 0; i < n; i += (size_t)world, j++)
        if (j % (size_t)readers == (size_t)reader) mine++;
    size_t *v = malloc(mine * sizeof *v);
    if (!v) return vlt_error_set(VLT_ERR_NOMEM, "shardspec: out of memory");
    size_t k = 0;
    for (size_t i = (size_t)rank, j = 0; i < n; i += (size_t)world, j++)
        if (j % (size_t)readers == (size_t)reader) v[k++] = i;
    *idx = v;
    *count = mine;
    return VLT_OK;
}
