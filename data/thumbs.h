// thumbs.h — JPEG thumbnails of chosen samples of a shard set, for the HTML reports: each
// wanted key's image is decoded, center-cropped to a square, resized (bicubic, as PIL) to
// size x size and written as DIR/<name>.jpg with libjpeg-turbo.
#ifndef VLT_DATA_THUMBS_H
#define VLT_DATA_THUMBS_H

#include "autograd/error.h"

// keys[i] -> dir/names[i].jpg for i < n (names are file stems the caller chose, e.g. "i42").
// Reads the shards once in order; a key missing from them, or whose image does not decode, is
// counted in *missing (may be NULL) and left without a file; the page shows its name instead.
vlt_status vlt_write_thumbnails(const char *shards, char *const *keys, char *const *names, int n, const char *dir,
                                int size, int *missing);

#endif
