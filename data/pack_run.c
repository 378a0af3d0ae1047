// pack_run.c — the packers' shared writing pipeline (see pack_run.h).
#include "data/pack_run.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BATCH 128
#define MAX_WARN 20

vlt_status vlt_pack_run_items(const vlt_pack_run *r, const vlt_shardwriter_cfg *cfg, FILE *warn, long long *skipped,
                              long long *written, int *shards) {
    vlt_shardwriter *w = NULL;
    VLT_TRY(vlt_shardwriter_open(cfg, &w));
    vlt_pack_prepared *batch = calloc(BATCH, sizeof *batch);
    vlt_status s = batch ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    long long warned = 0;
    for (size_t b0 = 0; s == VLT_OK && b0 < r->n; b0 += BATCH) {
        int n = (int)(r->n - b0 < BATCH ? r->n - b0 : BATCH);
#pragma omp parallel for schedule(dynamic, 2)
        for (int k = 0; k < n; k++) {
            memset(&batch[k], 0, sizeof batch[k]);
            batch[k].skip = -1;
            r->prepare(r->ctx, b0 + (size_t)k, &batch[k]);
        }
        for (int k = 0; k < n; k++) {
            const vlt_pack_prepared *p = &batch[k];
            if (p->skip >= 0) {
                skipped[p->skip]++;
                if (warn && warned++ < MAX_WARN)
                    fprintf(warn, "vlt shards: skipped (%s): %s\n", r->skip_names[p->skip],
                            p->err[0] ? p->err : r->what(r->ctx, b0 + (size_t)k));
                continue;
            }
            if (s == VLT_OK) s = r->emit(r->ctx, b0 + (size_t)k, p, w);
        }
        for (int k = 0; k < n; k++) {
            free(batch[k].jpg);
            free(batch[k].file);
            batch[k].jpg = NULL;
            batch[k].file = NULL;
        }
    }
    free(batch);
    if (warn && warned > MAX_WARN) fprintf(warn, "vlt shards: ... %lld more skipped\n", warned - MAX_WARN);
    *written = vlt_shardwriter_samples(w);
    *shards = vlt_shardwriter_shards(w);
    if (s == VLT_OK && *written == 0) {
        char counts[512] = "";
        size_t used = 0;
        for (int i = 0; i < r->n_skip; i++)
            if (skipped[i] && used < sizeof counts)
                used += (size_t)snprintf(counts + used, sizeof counts - used, "%s%lld %s", used ? ", " : "", skipped[i],
                                         r->skip_names[i]);
        s = vlt_error_set(VLT_ERR_FORMAT, "no sample could be written (skipped: %s)", counts);
    }
    if (s == VLT_OK && r->before_close) s = r->before_close(r->ctx);
    if (s != VLT_OK) {
        // Keep the reason: abort may overwrite the thread's message.
        char why[1024];
        snprintf(why, sizeof why, "%s", vlt_error_message());
        vlt_shardwriter_abort(w);
        s = vlt_error_set(s, "%s", why);
    } else {
        s = vlt_shardwriter_close(w);
    }
    return r->after_close ? r->after_close(r->ctx, s) : s;
}

char *vlt_pack_join(const char *dir, const char *name) {
    if (!dir || !*dir || name[0] == '/') return strdup(name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return s;
}

bool vlt_pack_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool vlt_pack_blank(const char *s) {
    for (; s && *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return false;
    return true;
}

char *vlt_pack_base_dir(const char *images, const char *list_file) {
    if (images) return strdup(images);
    char *base = strdup(list_file), *slash = base ? strrchr(base, '/') : NULL;
    if (slash) *slash = 0;
    else if (base) { free(base); base = strdup("."); }
    return base;
}
