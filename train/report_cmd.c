// report_cmd.c — `vlt report RUN`: a training run as one static HTML page (RUN/report/index.html,
// or --out FILE): a summary, the curves of every scalar in RUN/metrics.jsonl against the step
// (the loss and its parts, learning rate, logit scale, throughput, data wait, each validation
// metric) drawn as inline SVG, the checkpoints, and the run's config. Readable offline: no
// scripts, fonts or remote resources.
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "eval/html.h"
#include "train/commands.h"

#define MAX_KEYS 64

typedef struct {
    char *name;
    double *y;  // one value per record (NaN where the record lacks the key or it is null)
} series_t;

typedef struct {
    int n, cap;
    double *step;
    int n_keys;
    series_t keys[MAX_KEYS];
    int64_t bad_lines;
} metrics_t;

static int key_index(metrics_t *m, const char *name, bool add) {
    for (int k = 0; k < m->n_keys; k++)
        if (!strcmp(m->keys[k].name, name)) return k;
    if (!add || m->n_keys == MAX_KEYS) return -1;
    series_t *s = &m->keys[m->n_keys];
    s->name = strdup(name);
    s->y = malloc(sizeof(double) * (size_t)(m->cap ? m->cap : 1));
    if (!s->name || !s->y) return -1;
    for (int i = 0; i < m->n; i++) s->y[i] = NAN;
    return m->n_keys++;
}

static bool grow(metrics_t *m) {
    if (m->n < m->cap) return true;
    int cap = m->cap ? 2 * m->cap : 256;
    double *st = realloc(m->step, sizeof(double) * (size_t)cap);
    if (!st) return false;
    m->step = st;
    for (int k = 0; k < m->n_keys; k++) {
        double *y = realloc(m->keys[k].y, sizeof(double) * (size_t)cap);
        if (!y) return false;
        m->keys[k].y = y;
    }
    m->cap = cap;
    return true;
}

// Keys that are bookkeeping, not curves.
static bool skip_key(const char *k) {
    return !strcmp(k, "step") || !strcmp(k, "epoch") || !strcmp(k, "time") || !strcmp(k, "wall_time");
}

static vlt_status read_metrics(const char *path, metrics_t *m) {
    FILE *f = fopen(path, "r");
    if (!f) return vlt_error_set(VLT_ERR_IO, "vlt report: cannot read %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    vlt_status s = VLT_OK;
    while (s == VLT_OK && getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        cJSON *st = j ? cJSON_GetObjectItem(j, "step") : NULL;
        if (!cJSON_IsNumber(st)) {  // a torn or foreign line: counted, not fatal
            m->bad_lines++;
            cJSON_Delete(j);
            continue;
        }
        if (!grow(m)) s = vlt_error_set(VLT_ERR_NOMEM, "vlt report: out of memory");
        int i = m->n;
        for (cJSON *it = j->child; s == VLT_OK && it; it = it->next)
            if (!skip_key(it->string) && (cJSON_IsNumber(it) || cJSON_IsNull(it)))
                (void)key_index(m, it->string, true);  // past MAX_KEYS a key is left out
        if (s == VLT_OK) {
            m->step[i] = st->valuedouble;
            for (int k = 0; k < m->n_keys; k++) {
                cJSON *v = cJSON_GetObjectItem(j, m->keys[k].name);
                m->keys[k].y[i] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            }
            m->n++;
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    return s;
}

static void metrics_free(metrics_t *m) {
    for (int k = 0; k < m->n_keys; k++) {
        free(m->keys[k].name);
        free(m->keys[k].y);
    }
    free(m->step);
    memset(m, 0, sizeof *m);
}

// The family of a key, for grouping curves into one chart: the loss with its parts; a metric
// measured at several k ("val/i2t_R@1", "@5", "@10") by what precedes '@'; anything else alone.
static void family(const char *k, char *out, size_t n) {
    if (!strcmp(k, "loss") || !strncmp(k, "loss_", 5)) {
        snprintf(out, n, "loss");
        return;
    }
    const char *at = strchr(k, '@');  // "val/i2t_R@1" -> "val/i2t_R@k"
    if (at) snprintf(out, n, "%.*s@k", (int)(at - k), k);
    else snprintf(out, n, "%s", k);
}

static void chart_families(vlt_html *h, const metrics_t *m) {
    bool done[MAX_KEYS] = {false};
    vlt_html_raw(h, "<div class=\"charts\">\n");
    double *buf = malloc(sizeof(double) * 2 * 8 * (size_t)(m->n ? m->n : 1));
    for (int k = 0; buf && k < m->n_keys; k++) {
        if (done[k]) continue;
        char fam[128], other[128];
        family(m->keys[k].name, fam, sizeof fam);
        vlt_html_series s[8];
        int ns = 0;
        for (int j = k; j < m->n_keys && ns < 8; j++) {
            family(m->keys[j].name, other, sizeof other);
            if (done[j] || strcmp(fam, other)) continue;
            done[j] = true;
            // only the records that carry the key: evaluation records are sparse, and a curve
            // over them should be a line, not dots between gaps
            double *x = buf + (size_t)2 * ns * m->n, *y = x + m->n;
            int c = 0;
            for (int i = 0; i < m->n; i++)
                if (!isnan(m->keys[j].y[i])) x[c] = m->step[i], y[c++] = m->keys[j].y[i];
            s[ns++] = (vlt_html_series){m->keys[j].name, x, y, c};
        }
        vlt_html_chart(h, fam, s, ns, 0);
    }
    free(buf);
    vlt_html_raw(h, "</div>\n");
}

static void last_value(const metrics_t *m, int k, double *step, double *v) {
    *v = NAN;
    *step = NAN;
    for (int i = m->n - 1; i >= 0; i--)
        if (!isnan(m->keys[k].y[i])) {
            *v = m->keys[k].y[i];
            *step = m->step[i];
            return;
        }
}

static void summary_table(vlt_html *h, const metrics_t *m) {
    vlt_html_raw(h, "<table><tr><th>scalar</th><th>last value</th><th>at step</th><th>min</th><th>max</th></tr>\n");
    for (int k = 0; k < m->n_keys; k++) {
        double st, v, lo = INFINITY, hi = -INFINITY;
        last_value(m, k, &st, &v);
        for (int i = 0; i < m->n; i++)
            if (!isnan(m->keys[k].y[i])) lo = fmin(lo, m->keys[k].y[i]), hi = fmax(hi, m->keys[k].y[i]);
        vlt_html_raw(h, "<tr><td>");
        vlt_html_text(h, m->keys[k].name);
        if (isnan(v)) {
            vlt_html_raw(h, "</td><td class=\"num\" colspan=\"4\">no finite value</td></tr>\n");
            continue;
        }
        vlt_html_rawf(h, "</td><td class=\"num\">%.6g</td><td class=\"num\">%.0f</td><td class=\"num\">%.6g</td>"
                         "<td class=\"num\">%.6g</td></tr>\n", v, st, lo, hi);
    }
    vlt_html_raw(h, "</table>\n");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void checkpoints(vlt_html *h, const char *run) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/checkpoints", run);
    DIR *d = opendir(dir);
    vlt_html_raw(h, "<h2>Checkpoints</h2>\n");
    if (!d) {
        vlt_html_raw(h, "<p class=\"muted\">none</p>\n");
        return;
    }
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096)
        if (!strncmp(e->d_name, "step_", 5)) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    char latest[4096] = "";
    char lp[4160];
    snprintf(lp, sizeof lp, "%s/latest", dir);
    ssize_t ln = readlink(lp, latest, sizeof latest - 1);
    latest[ln > 0 ? ln : 0] = '\0';
    vlt_html_rawf(h, "<p>%d in %s", n, "");
    vlt_html_text(h, dir);
    vlt_html_raw(h, "</p><ul>\n");
    for (int i = 0; i < n; i++) {
        vlt_html_raw(h, "<li>");
        vlt_html_text(h, names[i]);
        if (latest[0] && strstr(latest, names[i])) vlt_html_raw(h, " <span class=\"muted\">(latest)</span>");
        vlt_html_raw(h, "</li>\n");
        free(names[i]);
    }
    vlt_html_raw(h, "</ul>\n");
}

static void config_block(vlt_html *h, const char *run) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.yaml", run);
    FILE *f = fopen(path, "r");
    vlt_html_raw(h, "<h2>Run config</h2>\n");
    if (!f) {
        vlt_html_raw(h, "<p class=\"muted\">no config.yaml</p>\n");
        return;
    }
    vlt_html_raw(h, "<pre>");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf - 1, f)) > 0) {
        buf[n] = '\0';
        vlt_html_text(h, buf);
    }
    fclose(f);
    vlt_html_raw(h, "</pre>\n");
}

static int usage(FILE *f) {
    fprintf(f, "usage: vlt report RUN [--out FILE]\n"
               "A training run as one static HTML page: summary, curves of every logged scalar\n"
               "(loss and its parts, lr, logit scale, throughput, data wait, validation metrics) as\n"
               "inline SVG, checkpoints and the run config. Default FILE: RUN/report/index.html.\n");
    return f == stdout ? 0 : 2;
}

int vlt_cmd_report(int argc, char **argv) {
    const char *run = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout);
        if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) { fprintf(stderr, "vlt report: --out needs a file\n"); return 2; }
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "vlt report: unknown option '%s'\n", argv[i]);
            return usage(stderr);
        } else if (!run) {
            run = argv[i];
        } else {
            fprintf(stderr, "vlt report: unexpected argument '%s' (one run directory)\n", argv[i]);
            return 2;
        }
    }
    if (!run) return usage(stderr);
    char path[4096], def[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    metrics_t m = {0};
    if (read_metrics(path, &m) != VLT_OK) {
        fprintf(stderr, "%s\n", vlt_error_message());
        metrics_free(&m);
        return 1;
    }
    if (!out) {
        snprintf(def, sizeof def, "%s/report", run);
        if (mkdir(def, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "vlt report: cannot create %s: %s\n", def, strerror(errno));
            metrics_free(&m);
            return 1;
        }
        snprintf(def, sizeof def, "%s/report/index.html", run);
        out = def;
    }
    char title[4200];
    snprintf(title, sizeof title, "vlt run %s", run);
    vlt_html *h = vlt_html_open(out, title);
    if (!h) {
        fprintf(stderr, "%s\n", vlt_error_message());
        metrics_free(&m);
        return 1;
    }
    vlt_html_rawf(h, "<p>%d logged records from ", m.n);
    vlt_html_text(h, path);
    if (m.n) vlt_html_rawf(h, ", steps %.0f to %.0f", m.step[0], m.step[m.n - 1]);
    if (m.bad_lines) vlt_html_rawf(h, "; %lld line(s) that are not records were skipped", (long long)m.bad_lines);
    vlt_html_raw(h, ".</p>\n<h2>Curves</h2>\n");
    if (m.n) chart_families(h, &m);
    else vlt_html_raw(h, "<p class=\"muted\">no records yet</p>\n");
    vlt_html_raw(h, "<h2>Last values</h2>\n");
    summary_table(h, &m);
    checkpoints(h, run);
    config_block(h, run);
    vlt_html_textf(h, "vlt %s", VLT_VERSION);
    metrics_free(&m);
    if (vlt_html_close(h) != VLT_OK) {
        fprintf(stderr, "%s\n", vlt_error_message());
        return 1;
    }
    printf("vlt report: wrote %s\n", out);
    return 0;
}
