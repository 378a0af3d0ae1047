// synth.c — synthetic captioned scenes: placement, rendering (2x2 supersampled shapes on muted
// textured backgrounds) and the caption grammar. See synth.h.
#include "data/synth.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd/rng.h"

static const char *SHAPES[VLT_SYNTH_N_SHAPES] = {"circle", "square", "triangle", "diamond", "cross"};
static const char *COLORS[VLT_SYNTH_N_COLORS] = {"red", "green", "blue", "yellow", "purple", "orange"};
static const uint8_t COLOR_RGB[VLT_SYNTH_N_COLORS][3] = {
    {215, 35, 35}, {40, 170, 50}, {40, 70, 215}, {235, 215, 30}, {150, 40, 200}, {245, 140, 20}};
static const char *RELATIONS[4] = {"to the left of", "to the right of", "above", "below"};
static const char *TEXTURES[VLT_SYNTH_N_TEXTURES] = {"noise", "stripes", "checks", "gradient"};

#define SMALL_R 0.13f          // half-extent / image side
#define LARGE_R 0.20f
#define COLOR_JITTER 12
#define PIXEL_BASE (1ull << 32)  // draw indices of per-pixel noise start here

const char *vlt_synth_shape_name(int s) { return s >= 0 && s < VLT_SYNTH_N_SHAPES ? SHAPES[s] : "?"; }
const char *vlt_synth_color_name(int c) { return c >= 0 && c < VLT_SYNTH_N_COLORS ? COLORS[c] : "?"; }
const char *vlt_synth_relation_name(int r) { return r >= 0 && r < 4 ? RELATIONS[r] : "?"; }
const char *vlt_synth_texture_name(int t) { return t >= 0 && t < VLT_SYNTH_N_TEXTURES ? TEXTURES[t] : "?"; }
void vlt_synth_color_rgb(int c, uint8_t rgb[3]) { memcpy(rgb, COLOR_RGB[c], 3); }

// Sequential draws from one sample's stream.
typedef struct { uint64_t seed, stream, k; } draws;

static float unif(draws *d) { return vlt_rng_uniform(d->seed, d->stream, d->k++); }
static float range(draws *d, float lo, float hi) { return lo + (hi - lo) * unif(d); }
static int below(draws *d, int n) { return (int)(unif(d) * n) % n; }

static uint8_t clamp8(float v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f); }

static void make_object(draws *d, int size, vlt_synth_object *o) {
    o->shape = below(d, VLT_SYNTH_N_SHAPES);
    o->color = below(d, VLT_SYNTH_N_COLORS);
    o->large = below(d, 2);
    o->r = (o->large ? LARGE_R : SMALL_R) * size * range(d, 0.95f, 1.05f);
    for (int c = 0; c < 3; c++) o->rgb[c] = clamp8(COLOR_RGB[o->color][c] + range(d, -COLOR_JITTER, COLOR_JITTER));
}

// Mention order: larger first, then lower shape index, then lower colour index.
static int mentioned_before(const vlt_synth_object *a, const vlt_synth_object *b) {
    if (a->large != b->large) return a->large > b->large;
    if (a->shape != b->shape) return a->shape < b->shape;
    return a->color < b->color;
}

// Places obj[0] in `relation` to obj[1]: along the named axis the centres are at least
// r0 + r1 + gap apart (no contact) and at least twice their offset on the other axis.
static void place_pair(draws *d, int size, int relation, vlt_synth_object *a, vlt_synth_object *b) {
    float m = 1.0f, gap = fmaxf(1.5f, 0.05f * size);
    float lo = a->r + b->r + gap, hi = size - a->r - b->r - 2 * m;
    float t = range(d, lo, fmaxf(lo, hi));                   // |separation| along the axis
    // Position along the axis: the first of the pair (in axis order) starts within what fits.
    int first_is_a = relation == VLT_SYNTH_LEFT_OF || relation == VLT_SYNTH_ABOVE;
    vlt_synth_object *p = first_is_a ? a : b, *q = first_is_a ? b : a;
    float p_lo = p->r + m, p_hi = size - m - q->r - t;
    float u = range(d, p_lo, fmaxf(p_lo, p_hi));
    // The other axis: offset within +-t/2, both inside the image.
    float off_lim = t / 2;
    float c_lo = fmaxf(a->r, b->r) + m, c_hi = size - m - fmaxf(a->r, b->r);
    float c = range(d, c_lo, fmaxf(c_lo, c_hi));
    float off = range(d, -off_lim, off_lim);
    float c2 = fminf(fmaxf(c + off, b->r + m), size - m - b->r);
    if (relation == VLT_SYNTH_LEFT_OF || relation == VLT_SYNTH_RIGHT_OF) {
        p->cx = u; q->cx = u + t;
        a->cy = c; b->cy = c2;
    } else {
        p->cy = u; q->cy = u + t;
        a->cx = c; b->cx = c2;
    }
}

void vlt_synth_scene_make(uint64_t seed, uint64_t index, int size, vlt_synth_scene *s) {
    draws d = {seed, vlt_rng_stream(VLT_RNG_DATA, index, 0), 0};
    memset(s, 0, sizeof *s);
    s->texture = below(&d, VLT_SYNTH_N_TEXTURES);
    s->n_objects = unif(&d) < 0.3f ? 1 : 2;
    make_object(&d, size, &s->obj[0]);
    if (s->n_objects == 1) {
        vlt_synth_object *o = &s->obj[0];
        o->cx = range(&d, o->r + 1, size - o->r - 1);
        o->cy = range(&d, o->r + 1, size - o->r - 1);
        return;
    }
    make_object(&d, size, &s->obj[1]);
    // Two shapes are never described alike: same shape and colour gets another colour.
    while (s->obj[1].shape == s->obj[0].shape && s->obj[1].color == s->obj[0].color) {
        s->obj[1].color = below(&d, VLT_SYNTH_N_COLORS);
        for (int c = 0; c < 3; c++)
            s->obj[1].rgb[c] = clamp8(COLOR_RGB[s->obj[1].color][c] + range(&d, -COLOR_JITTER, COLOR_JITTER));
    }
    if (!mentioned_before(&s->obj[0], &s->obj[1])) {
        vlt_synth_object t = s->obj[0];
        s->obj[0] = s->obj[1];
        s->obj[1] = t;
    }
    s->relation = below(&d, 4);
    place_pair(&d, size, s->relation, &s->obj[0], &s->obj[1]);
}

// --- rendering -------------------------------------------------------------------------------------

static int inside(const vlt_synth_object *o, float x, float y) {
    float dx = x - o->cx, dy = y - o->cy, r = o->r;
    switch (o->shape) {
    case VLT_SYNTH_CIRCLE: return dx * dx + dy * dy <= r * r;
    case VLT_SYNTH_SQUARE: return fabsf(dx) <= 0.85f * r && fabsf(dy) <= 0.85f * r;
    case VLT_SYNTH_DIAMOND: return fabsf(dx) + fabsf(dy) <= r;
    case VLT_SYNTH_CROSS:
        return (fabsf(dx) <= r / 3 && fabsf(dy) <= r) || (fabsf(dy) <= r / 3 && fabsf(dx) <= r);
    case VLT_SYNTH_TRIANGLE: {
        // Apex up at (0, -r), base from (-r, 0.85r) to (r, 0.85r).
        if (dy > 0.85f * r || dy < -r) return 0;
        float half = (dy + r) / 1.85f;   // half-width grows linearly from 0 at the apex to r at the base
        return fabsf(dx) <= half;
    }
    }
    return 0;
}

typedef struct { float c1[3], c2[3]; float period, cosa, sina; } texture;

static void muted_color(draws *d, float out[3]) {
    float g = range(d, 60, 200);
    for (int c = 0; c < 3; c++) out[c] = g + range(d, -20, 20);
}

static void background(const vlt_synth_scene *s, draws *d, int size, uint8_t *rgb) {
    texture t;
    muted_color(d, t.c1);
    muted_color(d, t.c2);
    t.period = range(d, 3, 8);
    float a = range(d, 0, 3.14159265f);
    t.cosa = cosf(a);
    t.sina = sinf(a);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            uint8_t *p = rgb + ((size_t)y * size + x) * 3;
            float w = 0;   // weight of c2
            switch (s->texture) {
            case VLT_SYNTH_STRIPES: w = fmodf((x * t.cosa + y * t.sina) / t.period + 1000.0f, 2.0f) < 1.0f; break;
            case VLT_SYNTH_CHECKS: w = ((int)(x / t.period) + (int)(y / t.period)) & 1; break;
            case VLT_SYNTH_GRADIENT: w = fminf(1, fmaxf(0, 0.5f + ((x - size / 2.0f) * t.cosa + (y - size / 2.0f) * t.sina) / size)); break;
            default: w = 0; break;
            }
            float n = s->texture == VLT_SYNTH_NOISE
                          ? 30.0f * vlt_rng_uniform(d->seed, d->stream, PIXEL_BASE + (uint64_t)y * size + x) - 15.0f
                          : 0.0f;
            for (int c = 0; c < 3; c++) p[c] = clamp8(t.c1[c] * (1 - w) + t.c2[c] * w + n);
        }
}

vlt_status vlt_synth_render(const vlt_synth_scene *s, uint64_t seed, uint64_t index, int size, vlt_image *img) {
    if (size < 24 || size > 4096) return vlt_error_set(VLT_ERR_ARG, "synth: image size %d not in [24, 4096]", size);
    VLT_TRY(vlt_image_alloc(img, size, size));
    // Background draws use their own counter range so they do not depend on the scene's draws.
    draws d = {seed, vlt_rng_stream(VLT_RNG_DATA, index, 1), 0};
    background(s, &d, size, img->rgb);
    for (int i = 0; i < s->n_objects; i++) {
        const vlt_synth_object *o = &s->obj[i];
        int x0 = (int)fmaxf(0, floorf(o->cx - 1.2f * o->r)), x1 = (int)fminf(size - 1, ceilf(o->cx + 1.2f * o->r));
        int y0 = (int)fmaxf(0, floorf(o->cy - 1.2f * o->r)), y1 = (int)fminf(size - 1, ceilf(o->cy + 1.2f * o->r));
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                int cover = 0;   // 2x2 subsamples inside the shape
                for (int sy = 0; sy < 2; sy++)
                    for (int sx = 0; sx < 2; sx++) cover += inside(o, x + 0.25f + 0.5f * sx, y + 0.25f + 0.5f * sy);
                if (!cover) continue;
                uint8_t *p = img->rgb + ((size_t)y * size + x) * 3;
                for (int c = 0; c < 3; c++) p[c] = clamp8((p[c] * (4 - cover) + o->rgb[c] * cover) / 4.0f);
            }
    }
    return VLT_OK;
}

// --- captions --------------------------------------------------------------------------------------

static int phrase(const vlt_synth_object *o, char *out, size_t n) {
    return snprintf(out, n, "a %s %s %s", o->large ? "large" : "small", COLORS[o->color], SHAPES[o->shape]);
}

int vlt_synth_caption(const vlt_synth_scene *s, char *out, size_t n) {
    char a[64], b[64];
    phrase(&s->obj[0], a, sizeof a);
    if (s->n_objects == 1) return snprintf(out, n, "%s", a);
    phrase(&s->obj[1], b, sizeof b);
    return snprintf(out, n, "%s %s %s", a, RELATIONS[s->relation], b);
}

vlt_status vlt_synth_sample(uint64_t seed, uint64_t index, int size, vlt_image *img, char *caption, size_t n,
                            vlt_synth_scene *scene) {
    vlt_synth_scene local;
    vlt_synth_scene *s = scene ? scene : &local;
    if (size < 24 || size > 4096) return vlt_error_set(VLT_ERR_ARG, "synth: image size %d not in [24, 4096]", size);
    vlt_synth_scene_make(seed, index, size, s);
    VLT_TRY(vlt_synth_render(s, seed, index, size, img));
    if (caption) vlt_synth_caption(s, caption, n);
    return VLT_OK;
}
