// test_data_synth.c — the synthetic dataset: determinism by (seed, index), and captions that match
// the drawn picture (the caption is rebuilt from the pixels alone and compared word for word).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"

static void test_deterministic(void **state) {
    (void)state;
    vlt_image a, b, c;
    char ca[256], cb[256], cc[256];
    for (uint64_t i = 0; i < 20; i++) {
        assert_int_equal(vlt_synth_sample(5, i, 40, &a, ca, sizeof ca, NULL), VLT_OK);
        assert_int_equal(vlt_synth_sample(5, i, 40, &b, cb, sizeof cb, NULL), VLT_OK);
        assert_int_equal(vlt_synth_sample(6, i, 40, &c, cc, sizeof cc, NULL), VLT_OK);
        assert_memory_equal(a.rgb, b.rgb, 40 * 40 * 3);
        assert_string_equal(ca, cb);
        assert_memory_not_equal(a.rgb, c.rgb, 40 * 40 * 3);   // another seed, another picture
        vlt_image_free(&a);
        vlt_image_free(&b);
        vlt_image_free(&c);
    }
    // Different indices give different captions often (the grammar has thousands of sentences).
    int distinct = 0;
    char prev[256] = "";
    for (uint64_t i = 0; i < 50; i++) {
        vlt_synth_scene s;
        vlt_synth_scene_make(5, i, 40, &s);
        vlt_synth_caption(&s, ca, sizeof ca);
        distinct += strcmp(ca, prev) != 0;
        snprintf(prev, sizeof prev, "%s", ca);
    }
    assert_true(distinct >= 45);
    assert_int_equal(vlt_synth_sample(1, 0, 8, &a, ca, sizeof ca, NULL), VLT_ERR_ARG);
}

// --- reading a picture back ------------------------------------------------------------------------

typedef struct {
    int area, x0, y0, x1, y1;   // pixel count and inclusive bounding box
    double r, g, b;             // mean colour
    int top, bottom;            // pixels in the upper / lower half of the box
    int color, shape, large;
    double cx, cy;
} blob;

static int saturated(const uint8_t *p) {
    int mx = p[0] > p[1] ? (p[0] > p[2] ? p[0] : p[2]) : (p[1] > p[2] ? p[1] : p[2]);
    int mn = p[0] < p[1] ? (p[0] < p[2] ? p[0] : p[2]) : (p[1] < p[2] ? p[1] : p[2]);
    return mx - mn > 80;
}

// 4-connected components of saturated pixels (flood fill with an explicit stack).
static int find_blobs(const vlt_image *img, blob *out, int max_blobs, int *labels) {
    int S = img->width, n = 0;
    int *stack = malloc(sizeof(int) * S * S);
    memset(labels, 0, sizeof(int) * S * S);
    for (int start = 0; start < S * S; start++) {
        if (labels[start] || !saturated(img->rgb + 3 * start)) continue;
        if (n == max_blobs) { n++; break; }
        blob *b = &out[n++];
        memset(b, 0, sizeof *b);
        b->x0 = b->y0 = S;
        int sp = 0;
        stack[sp++] = start;
        labels[start] = n;
        while (sp) {
            int p = stack[--sp], x = p % S, y = p / S;
            const uint8_t *px = img->rgb + 3 * p;
            b->area++;
            b->r += px[0]; b->g += px[1]; b->b += px[2];
            if (x < b->x0) b->x0 = x;
            if (x > b->x1) b->x1 = x;
            if (y < b->y0) b->y0 = y;
            if (y > b->y1) b->y1 = y;
            int nb[4] = {x > 0 ? p - 1 : -1, x < S - 1 ? p + 1 : -1, y > 0 ? p - S : -1, y < S - 1 ? p + S : -1};
            for (int k = 0; k < 4; k++)
                if (nb[k] >= 0 && !labels[nb[k]] && saturated(img->rgb + 3 * nb[k])) {
                    labels[nb[k]] = n;
                    stack[sp++] = nb[k];
                }
        }
    }
    free(stack);
    return n;
}

static int is_label(const int *labels, int S, double x, double y, int label) {
    int xi = (int)floor(x), yi = (int)floor(y);
    return xi >= 0 && yi >= 0 && xi < S && yi < S && labels[yi * S + xi] == label;
}

// Names colour, shape and size from the pixels of blob `label` (1-based).
static void classify(blob *b, const int *labels, int S, int label) {
    double best = 1e18;
    for (int c = 0; c < VLT_SYNTH_N_COLORS; c++) {
        uint8_t ref[3];
        vlt_synth_color_rgb(c, ref);
        double d = pow(b->r / b->area - ref[0], 2) + pow(b->g / b->area - ref[1], 2) + pow(b->b / b->area - ref[2], 2);
        if (d < best) { best = d; b->color = c; }
    }
    int w = b->x1 - b->x0 + 1, h = b->y1 - b->y0 + 1;
    b->cx = (b->x0 + b->x1 + 1) / 2.0;
    b->cy = (b->y0 + b->y1 + 1) / 2.0;
    for (int y = b->y0; y <= b->y1; y++)
        for (int x = b->x0; x <= b->x1; x++)
            if (labels[y * S + x] == label) {
                if (y + 0.5 < b->cy) b->top++;
                else b->bottom++;
            }
    double fill = (double)b->area / (w * h);
    double hr = w / 2.0;
    if (fill > 0.9) b->shape = VLT_SYNTH_SQUARE;
    else if (fill > 0.68) b->shape = VLT_SYNTH_CIRCLE;
    else if (b->bottom > 1.8 * b->top) b->shape = VLT_SYNTH_TRIANGLE;
    else {
        // The diagonals at 0.42 of the half-extent: inside a diamond, outside a cross's arms.
        int diag = is_label(labels, S, b->cx - 0.42 * hr, b->cy - 0.42 * hr, label) +
                   is_label(labels, S, b->cx + 0.42 * hr, b->cy - 0.42 * hr, label) +
                   is_label(labels, S, b->cx - 0.42 * hr, b->cy + 0.42 * hr, label) +
                   is_label(labels, S, b->cx + 0.42 * hr, b->cy + 0.42 * hr, label);
        b->shape = diag >= 3 ? VLT_SYNTH_DIAMOND : VLT_SYNTH_CROSS;
    }
    // Sizes: small objects span at most 2 * 0.1365 S, large ones at least 1.7 * 0.19 S.
    int extent = w > h ? w : h;
    b->large = extent > 0.3 * S;
}

static int before(const blob *a, const blob *b) {
    if (a->large != b->large) return a->large > b->large;
    if (a->shape != b->shape) return a->shape < b->shape;
    return a->color < b->color;
}

static void describe(const blob *b, char *out, size_t n) {
    snprintf(out, n, "a %s %s %s", b->large ? "large" : "small", vlt_synth_color_name(b->color),
             vlt_synth_shape_name(b->shape));
}

static void test_caption_matches_picture(void **state) {
    (void)state;
    const int S = 64;
    int *labels = malloc(sizeof(int) * S * S);
    int seen_rel[4] = {0}, seen_shape[VLT_SYNTH_N_SHAPES] = {0}, seen_n[3] = {0};
    for (uint64_t i = 0; i < 300; i++) {
        vlt_image img;
        char caption[256], rebuilt[300], a[64], b[64];
        vlt_synth_scene sc;
        assert_int_equal(vlt_synth_sample(11, i, S, &img, caption, sizeof caption, &sc), VLT_OK);
        blob blobs[4];
        int n = find_blobs(&img, blobs, 4, labels);
        if (n != sc.n_objects) fail_msg("sample %llu '%s': %d blobs in the picture", (unsigned long long)i, caption, n);
        for (int k = 0; k < n; k++) classify(&blobs[k], labels, S, k + 1);
        if (n == 1) {
            describe(&blobs[0], rebuilt, sizeof rebuilt);
        } else {
            blob *p = &blobs[0], *q = &blobs[1];
            if (!before(p, q)) { p = &blobs[1]; q = &blobs[0]; }
            double dx = p->cx - q->cx, dy = p->cy - q->cy;
            int rel = fabs(dx) >= fabs(dy) ? (dx < 0 ? VLT_SYNTH_LEFT_OF : VLT_SYNTH_RIGHT_OF)
                                           : (dy < 0 ? VLT_SYNTH_ABOVE : VLT_SYNTH_BELOW);
            describe(p, a, sizeof a);
            describe(q, b, sizeof b);
            snprintf(rebuilt, sizeof rebuilt, "%s %s %s", a, vlt_synth_relation_name(rel), b);
            seen_rel[rel]++;
            // Unambiguous relation: the named axis dominates at least 1.6x (2x by construction, less
            // pixel rounding).
            double major = fmax(fabs(dx), fabs(dy)), minor = fmin(fabs(dx), fabs(dy));
            assert_true(major >= 1.6 * minor);
        }
        if (strcmp(rebuilt, caption) != 0)
            fail_msg("sample %llu: caption '%s' but the picture shows '%s'", (unsigned long long)i, caption, rebuilt);
        for (int k = 0; k < n; k++) seen_shape[blobs[k].shape]++;
        seen_n[n]++;
        vlt_image_free(&img);
    }
    free(labels);
    for (int r = 0; r < 4; r++) assert_true(seen_rel[r] > 20);
    for (int s = 0; s < VLT_SYNTH_N_SHAPES; s++) assert_true(seen_shape[s] > 30);
    assert_true(seen_n[1] > 50 && seen_n[2] > 150);
}

// At the smallest sizes training uses, shapes stay visible: every object covers pixels of its own.
static void test_small_images(void **state) {
    (void)state;
    for (int S = 24; S <= 32; S += 8) {
        int *labels = malloc(sizeof(int) * S * S);
        for (uint64_t i = 0; i < 100; i++) {
            vlt_image img;
            vlt_synth_scene sc;
            assert_int_equal(vlt_synth_sample(3, i, S, &img, NULL, 0, &sc), VLT_OK);
            blob blobs[4];
            int n = find_blobs(&img, blobs, 4, labels);
            assert_int_equal(n, sc.n_objects);
            for (int k = 0; k < n; k++) assert_true(blobs[k].area >= 12);   // a small triangle at 24 px: ~17
            vlt_image_free(&img);
        }
        free(labels);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_caption_matches_picture),
        cmocka_unit_test(test_small_images),
    };
    return cmocka_run_group_tests_name("data_synth", tests, NULL, NULL);
}
