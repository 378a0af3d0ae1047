// thumbs.h — JPEG thumbnails of chosen samples of a shard set, for the HTML reports: each
// wanted key's image is decoded, center-cropped to a square, resized (bicubic, as PIL) to
// size x size and written as DIR/<name>.jpg with libjpeg-turbo.
#ifndef VLT_DATA_THUMBS_H
#define VLT_DATA_THUMBS_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"
#include "data/image.h"

// keys[i] -> dir/names[i].jpg for i < n (names are file stems the caller chose, e.g. "i42").
// Reads the shards once in order; a key missing from them, or whose image does not decode, is
// counted in *missing (may be NULL) and left without a file; the page shows its name instead.
vlt_status vlt_write_thumbnails(const char *shards, char *const *keys, char *const *names, int n, const char *dir,
                                int size, int *missing);

// The picture a model with side `size` sees of an encoded image (its shortest side resized to size
// and the center square cropped, as the evaluation transform), resized to out_side x out_side for
// display, into *out (allocated).
vlt_status vlt_view_of_image(const uint8_t *buf, size_t len, const char *what, int out_side, vlt_image *out);
// img as an 8-bit RGB PNG at path (libpng), written whole or not at all (path.tmp, then renamed).
vlt_status vlt_image_write_png(const vlt_image *img, const char *path);

// view (D x D) with a relevance map (G x G, values >= 0) laid over it: the map normalized by its
// maximum, sampled bilinearly, coloured from dark blue to red, blended with alpha 0.65 · value
// so that the picture shows where the map is low. *out is allocated.
vlt_status vlt_overlay_map(const vlt_image *view, const float *map, int G, vlt_image *out);
// The encoded image bytes of samples keys[0..n) in one pass over the shards: bufs[k] (malloc'd)
// and lens[k], or NULL / 0 for a key the shards lack.
vlt_status vlt_fetch_images(const char *shards, char *const *keys, int n, uint8_t **bufs, size_t *lens);

#endif
