// html.c — static HTML pages with inline SVG charts (see html.h).
#include "eval/html.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vlt_html {
    FILE *f;
    char *path, *tmp;
    int chart_id;
};

static const char CSS[] =
    "body{font-family:sans-serif;margin:2em auto;max-width:72em;color:#222;line-height:1.4}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
    "th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:.85em}"
    ".charts{display:flex;flex-wrap:wrap;gap:1em}.chart{border:1px solid #ddd;padding:.3em}"
    ".chart svg text{font-size:11px;fill:#444}.muted{color:#777}"
    ".thumbs{display:flex;gap:.4em;flex-wrap:wrap}.thumb{width:128px;font-size:.75em;text-align:center}"
    ".thumb img{width:128px;height:128px;object-fit:cover;border:3px solid transparent}"
    ".thumb.hit img{border-color:#2a2}";

vlt_html *vlt_html_open(const char *path, const char *title) {
    vlt_html *h = calloc(1, sizeof *h);
    size_t n = strlen(path);
    if (!h || !(h->path = strdup(path)) || !(h->tmp = malloc(n + 5))) {
        if (h) free(h->path);
        free(h);
        vlt_error_set(VLT_ERR_NOMEM, "html: out of memory");
        return NULL;
    }
    snprintf(h->tmp, n + 5, "%s.tmp", path);
    if (!(h->f = fopen(h->tmp, "w"))) {
        vlt_error_set(VLT_ERR_IO, "html: cannot write %s", h->tmp);
        free(h->tmp);
        free(h->path);
        free(h);
        return NULL;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", h->f);
    vlt_html_escape_to(h->f, title);
    fprintf(h->f, "</title><style>%s</style></head><body>\n<h1>", CSS);
    vlt_html_escape_to(h->f, title);
    fputs("</h1>\n", h->f);
    return h;
}

static void html_free(vlt_html *h) {
    free(h->tmp);
    free(h->path);
    free(h);
}

vlt_status vlt_html_close(vlt_html *h) {
    fputs("</body></html>\n", h->f);
    bool bad = ferror(h->f) != 0;
    bad |= fflush(h->f) != 0;
    bad |= fsync(fileno(h->f)) != 0;
    bad |= fclose(h->f) != 0;
    vlt_status s = VLT_OK;
    if (bad || rename(h->tmp, h->path) != 0) {
        unlink(h->tmp);
        s = vlt_error_set(VLT_ERR_IO, "html: writing %s failed", h->path);
    }
    html_free(h);
    return s;
}

void vlt_html_abort(vlt_html *h) {
    fclose(h->f);
    unlink(h->tmp);
    html_free(h);
}

void vlt_html_escape_to(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

void vlt_html_text(vlt_html *h, const char *s) { vlt_html_escape_to(h->f, s); }

void vlt_html_textf(vlt_html *h, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    vlt_html_escape_to(h->f, buf);
}

void vlt_html_raw(vlt_html *h, const char *s) { fputs(s, h->f); }

void vlt_html_rawf(vlt_html *h, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(h->f, fmt, ap);
    va_end(ap);
}

// ---- charts ----
#define CW 420  // chart size in px: plot area inside the margins
#define CH 220
#define ML 58
#define MR 12
#define MT 22
#define MB 30

static const char *COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// Shortest of %.3g / %.4g that tells the axis ends apart.
static void tick(char *buf, size_t n, double v) { snprintf(buf, n, "%.4g", v); }

static double ty(double y, int log_y) { return log_y ? (y > 0 ? log10(y) : NAN) : y; }

void vlt_html_chart(vlt_html *h, const char *title, const vlt_html_series *s, int n_series, int log_y) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < s[k].n; i++) {
            double y = ty(s[k].y[i], log_y);
            if (!isfinite(y) || !isfinite(s[k].x[i])) continue;
            x0 = fmin(x0, s[k].x[i]), x1 = fmax(x1, s[k].x[i]);
            y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    fputs("<div class=\"chart\">", h->f);
    vlt_html_rawf(h, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">", CW + ML + MR,
                  CH + MT + MB);
    fputs("<text x=\"4\" y=\"14\" style=\"font-weight:bold\">", h->f);
    vlt_html_text(h, title);
    fputs("</text>", h->f);
    if (!(x0 <= x1)) {  // nothing finite to draw
        vlt_html_rawf(h, "<text x=\"%d\" y=\"%d\">no finite values</text></svg></div>\n", ML + 8, MT + CH / 2);
        return;
    }
    if (x1 == x0) x0 -= 1, x1 += 1;
    if (y1 == y0) y0 -= 1, y1 += 1;
    vlt_html_rawf(h, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#bbb\"/>", ML, MT, CW, CH);
    char a[32], b[32];
    tick(a, sizeof a, log_y ? pow(10, y1) : y1);
    tick(b, sizeof b, log_y ? pow(10, y0) : y0);
    vlt_html_rawf(h, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>", ML - 4, MT + 10, a);
    vlt_html_rawf(h, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>", ML - 4, MT + CH, b);
    tick(a, sizeof a, x0);
    tick(b, sizeof b, x1);
    vlt_html_rawf(h, "<text x=\"%d\" y=\"%d\">%s</text>", ML, MT + CH + 16, a);
    vlt_html_rawf(h, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>", ML + CW, MT + CH + 16, b);
    vlt_html_rawf(h, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"muted\">step%s</text>", ML + CW / 2,
                  MT + CH + 16, log_y ? " (log y)" : "");
    for (int k = 0; k < n_series; k++) {
        const char *color = COLORS[k % (int)(sizeof COLORS / sizeof COLORS[0])];
        bool open = false;
        int points = 0;
        for (int i = 0; i < s[k].n; i++) {
            double y = ty(s[k].y[i], log_y);
            if (!isfinite(y) || !isfinite(s[k].x[i])) {  // a gap: close the current polyline
                if (open) fputs("\"/>", h->f);
                open = false;
                continue;
            }
            double px = ML + (s[k].x[i] - x0) / (x1 - x0) * CW, py = MT + (y1 - y) / (y1 - y0) * CH;
            if (!open) {
                vlt_html_rawf(h, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
                open = true;
            }
            vlt_html_rawf(h, "%.1f,%.1f ", px, py);
            points++;
        }
        if (open) fputs("\"/>", h->f);
        if (points == 1)  // a single point: a dot, or it would not show
            for (int i = 0; i < s[k].n; i++) {
                double y = ty(s[k].y[i], log_y);
                if (!isfinite(y)) continue;
                vlt_html_rawf(h, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>",
                              ML + (s[k].x[i] - x0) / (x1 - x0) * CW, MT + (y1 - y) / (y1 - y0) * CH, color);
            }
        if (n_series > 1) {
            vlt_html_rawf(h, "<text x=\"%d\" y=\"%d\" fill=\"%s\" style=\"fill:%s\">", ML + 8, MT + 14 + 13 * k, color, color);
            vlt_html_text(h, s[k].name);
            fputs("</text>", h->f);
        }
    }
    fputs("</svg></div>\n", h->f);
}
