// html.h — self-contained static HTML pages for reports: escaped text, tables and line charts
// drawn as inline SVG. No scripts, fonts, styles or images from elsewhere: a page reads offline
// from the file alone (images, when a page has them, are files beside it).
//
// A page is written to PATH.tmp and renamed over PATH on close, so a reader never sees half a
// page and a failed run leaves the previous page in place.
#ifndef VLT_EVAL_HTML_H
#define VLT_EVAL_HTML_H

#include <stdio.h>

#include "autograd/error.h"

typedef struct vlt_html vlt_html;

// Opens PATH for writing (via PATH.tmp) and writes the head with `title` and the page's CSS.
vlt_html *vlt_html_open(const char *path, const char *title);
// Writes the end of the page and renames it into place; frees h. VLT_ERR_IO naming the path when
// anything failed to write (the partial file is removed).
vlt_status vlt_html_close(vlt_html *h);
// Removes the partial page without publishing it; frees h.
void vlt_html_abort(vlt_html *h);

// Text with &, <, >, " and ' escaped (bytes passed as they are: UTF-8 stays UTF-8).
void vlt_html_text(vlt_html *h, const char *s);
void vlt_html_textf(vlt_html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Markup the caller wrote (no escaping): tags and attributes made of constants.
void vlt_html_raw(vlt_html *h, const char *s);
void vlt_html_rawf(vlt_html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vlt_html_escape_to(FILE *f, const char *s);

// One line chart: n_series curves over a shared x axis (steps), each x[i], y[i] of its own length;
// NaN y values break the line (a gap) and are left out of the y range. Axis ranges are the data's
// (a flat curve gets ±1 around its value); tick labels at both ends of each axis; a legend when
// there are several series. log_y: a log10 y axis (values <= 0 are gaps).
typedef struct {
    const char *name;
    const double *x, *y;
    int n;
} vlt_html_series;
void vlt_html_chart(vlt_html *h, const char *title, const vlt_html_series *s, int n_series, int log_y);

#endif
