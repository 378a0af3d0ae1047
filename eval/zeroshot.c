// zeroshot.c — zero-shot classifier and top-k accuracy (see zeroshot.h).
#include "eval/zeroshot.h"

#include <cblas.h>
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

vlt_status vlt_eval_zeroshot_classifier(float *cls, const float *text, int n_classes, int n_templates, int dim) {
    if (!cls || !text || n_classes < 1 || n_templates < 1 || dim < 1)
        return vlt_error_set(VLT_ERR_ARG, "zeroshot: need classes (%d), templates (%d), dim (%d) >= 1", n_classes, n_templates, dim);
    for (int c = 0; c < n_classes; c++) {
        float *out = cls + (size_t)c * dim;
        for (int d = 0; d < dim; d++) out[d] = 0;
        for (int t = 0; t < n_templates; t++) {
            const float *e = text + ((size_t)c * n_templates + t) * dim;
            double ss = 0;
            for (int d = 0; d < dim; d++) ss += (double)e[d] * e[d];
            if (!(ss > 0) || !isfinite(ss))
                return vlt_error_set(VLT_ERR_ARG, "zeroshot: class %d template %d has a zero or non-finite embedding", c, t);
            float inv = (float)(1.0 / sqrt(ss));
            for (int d = 0; d < dim; d++) out[d] += e[d] * inv;
        }
        double ss = 0;
        for (int d = 0; d < dim; d++) {
            out[d] /= (float)n_templates;
            ss += (double)out[d] * out[d];
        }
        if (!(ss > 0)) return vlt_error_set(VLT_ERR_ARG, "zeroshot: class %d templates average to zero", c);
        float inv = (float)(1.0 / sqrt(ss));
        for (int d = 0; d < dim; d++) out[d] *= inv;
    }
    return VLT_OK;
}

vlt_status vlt_eval_zeroshot_accuracy(const float *img, const int32_t *labels, int n, const float *cls, int n_classes,
                                      int dim, double *top1, double *top5) {
    if (!img || !labels || !cls || n < 1 || n_classes < 1 || dim < 1)
        return vlt_error_set(VLT_ERR_ARG, "zeroshot: need images (%d), classes (%d), dim (%d) >= 1", n, n_classes, dim);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= n_classes)
            return vlt_error_set(VLT_ERR_ARG, "zeroshot: image %d has label %d, outside [0, %d)", i, labels[i], n_classes);
    int block = (int)(((size_t)8 << 20) / (size_t)n_classes);
    block = block < 1 ? 1 : block > n ? n : block;
    float *S = malloc((size_t)block * n_classes * sizeof *S);
    if (!S) return vlt_error_set(VLT_ERR_NOMEM, "zeroshot: out of memory");
    long long hit1 = 0, hit5 = 0;
    for (int i0 = 0; i0 < n; i0 += block) {
        int nb = n - i0 < block ? n - i0 : block;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, n_classes, dim, 1.0f, img + (size_t)i0 * dim, dim, cls, dim,
                    0.0f, S, n_classes);
        #pragma omp parallel for reduction(+ : hit1, hit5)
        for (int b = 0; b < nb; b++) {
            const float *row = S + (size_t)b * n_classes;
            int y = labels[i0 + b];
            float t = row[y];
            int above = 0;  // other classes scoring >= the true one
            for (int c = 0; c < n_classes; c++) above += c != y && !(row[c] < t);
            hit1 += above < 1;
            hit5 += above < 5;
        }
    }
    free(S);
    *top1 = (double)hit1 / n;
    *top5 = (double)hit5 / n;
    return VLT_OK;
}

// ---- shipped lists ----

static const char *zeroshot_dir(char *buf, size_t cap) {
    const char *assets = getenv("VLT_ASSETS");
    snprintf(buf, cap, "%s/zeroshot", assets && assets[0] ? assets : "assets");
    return buf;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

const char *vlt_eval_zeroshot_shipped(const char *kind, char *buf, size_t cap) {
    char dir[4096], suffix[64];
    snprintf(suffix, sizeof suffix, "_%s.txt", kind);
    buf[0] = '\0';
    DIR *d = opendir(zeroshot_dir(dir, sizeof dir));
    if (!d) return buf;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name), ls = strlen(suffix);
        if (l > ls && !strcmp(e->d_name + l - ls, suffix)) names[n++] = strndup(e->d_name, l - ls);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);  // readdir's order is the file system's
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (names[i] && at < cap) at += (size_t)snprintf(buf + at, cap - at, "%s%s", at ? ", " : "", names[i]);
        free(names[i]);
    }
    return buf;
}

vlt_status vlt_eval_zeroshot_list_path(const char *arg, const char *kind, char *out, size_t cap, int *shipped) {
    if (shipped) *shipped = 0;
    bool bare = arg[0] != '\0';
    for (const char *p = arg; *p && bare; p++)
        bare = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
    if (bare) {
        char dir[4096];
        snprintf(out, cap, "%s/%s_%s.txt", zeroshot_dir(dir, sizeof dir), arg, kind);
        if (access(out, R_OK) == 0) {
            if (shipped) *shipped = 1;
            return VLT_OK;
        }
    }
    snprintf(out, cap, "%s", arg);
    if (access(arg, R_OK) == 0) return VLT_OK;
    if (!bare) return vlt_error_set(VLT_ERR_IO, "cannot open %s", arg);
    char names[1024], dir[4096];
    vlt_eval_zeroshot_shipped(kind, names, sizeof names);
    if (!names[0])
        return vlt_error_set(VLT_ERR_IO, "%s: neither a file nor a shipped list of %s (none found in %s)", arg, kind,
                             zeroshot_dir(dir, sizeof dir));
    return vlt_error_set(VLT_ERR_IO, "%s: neither a file nor a shipped list of %s (shipped: %s)", arg, kind, names);
}
