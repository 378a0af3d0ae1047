// synth.h — a synthetic captioned image dataset: one or two coloured shapes on a textured
// background, with a caption from a small grammar that is a function of the picture alone:
//   "a large red circle"
//   "a small blue triangle to the left of a large yellow square"
// Shapes: circle, square, triangle, diamond, cross. Colours: red, green, blue, yellow, purple,
// orange (saturated; backgrounds are muted, so colour is never ambiguous). Sizes: small (half-extent
// 0.13 S) and large (0.22 S), at least 8 px across at S = 32. Relations: "to the left of",
// "to the right of", "above", "below", placed so that the relation is unambiguous (the centres
// differ at least twice as much along the named axis) and shapes never touch. The first-mentioned
// shape is fixed by the picture (the larger; then the lower shape index; then the lower colour
// index), so a picture has exactly one caption. Backgrounds (noise, stripes, checks, gradient) are
// not mentioned. Sample i of seed s is a pure function of (s, i, S): draws come from autograd/rng.h
// with stream vlt_rng_stream(VLT_RNG_DATA, i, 0).
#ifndef VLT_DATA_SYNTH_H
#define VLT_DATA_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"
#include "data/image.h"

enum { VLT_SYNTH_CIRCLE, VLT_SYNTH_SQUARE, VLT_SYNTH_TRIANGLE, VLT_SYNTH_DIAMOND, VLT_SYNTH_CROSS, VLT_SYNTH_N_SHAPES };
enum { VLT_SYNTH_RED, VLT_SYNTH_GREEN, VLT_SYNTH_BLUE, VLT_SYNTH_YELLOW, VLT_SYNTH_PURPLE, VLT_SYNTH_ORANGE,
       VLT_SYNTH_N_COLORS };
enum { VLT_SYNTH_LEFT_OF, VLT_SYNTH_RIGHT_OF, VLT_SYNTH_ABOVE, VLT_SYNTH_BELOW };
enum { VLT_SYNTH_NOISE, VLT_SYNTH_STRIPES, VLT_SYNTH_CHECKS, VLT_SYNTH_GRADIENT, VLT_SYNTH_N_TEXTURES };

typedef struct {
    int shape, color, large;   // indices into the enums above; large: 0 small, 1 large
    float cx, cy, r;           // centre and half-extent, in pixels
    uint8_t rgb[3];            // the drawn colour (the named colour with a little jitter)
} vlt_synth_object;

typedef struct {
    int n_objects;              // 1 or 2; obj[0] is mentioned first
    vlt_synth_object obj[2];
    int relation;               // obj[0] relative to obj[1] (2 objects only)
    int texture;
} vlt_synth_scene;

// The scene of sample `index` (no pixels yet). size in [24, 4096].
void vlt_synth_scene_make(uint64_t seed, uint64_t index, int size, vlt_synth_scene *scene);
// Draws the scene on its background into *img (allocated, size x size).
vlt_status vlt_synth_render(const vlt_synth_scene *scene, uint64_t seed, uint64_t index, int size, vlt_image *img);
// Writes the caption (NUL-terminated, truncated to n bytes); returns its length.
int vlt_synth_caption(const vlt_synth_scene *scene, char *out, size_t n);
// Scene + picture + caption of one sample.
vlt_status vlt_synth_sample(uint64_t seed, uint64_t index, int size, vlt_image *img, char *caption, size_t n,
                            vlt_synth_scene *scene);

const char *vlt_synth_shape_name(int shape);
const char *vlt_synth_color_name(int color);
const char *vlt_synth_relation_name(int relation);
const char *vlt_synth_texture_name(int texture);
// The nominal RGB of a colour (before jitter).
void vlt_synth_color_rgb(int color, uint8_t rgb[3]);

#endif
