// thumbs.c — JPEG thumbnails of chosen samples (see thumbs.h).
#include "data/thumbs.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "data/resample.h"
#include "data/shardspec.h"
#include "data/tar.h"
#include "data/transform.h"
#include "data/webdataset.h"

static const vlt_wds_field *image_field(const vlt_wds_sample *s) {
    static const char *exts[] = {"jpg", "jpeg", "png", "webp"};
    for (int i = 0; i < 4; i++) {
        const vlt_wds_field *f = vlt_wds_sample_field(s, exts[i]);
        if (f) return f;
    }
    return NULL;
}

// A size x size JPEG of the model-style view of an encoded image, at path.
static vlt_status write_one(const uint8_t *buf, size_t len, const char *key, const char *path, int size) {
    vlt_image th = {0};
    VLT_TRY(vlt_view_of_image(buf, len, key, size, &th));
    uint8_t *jpg = NULL;
    size_t n = 0;
    vlt_status s = vlt_image_encode_jpeg(&th, 85, &jpg, &n);
    if (s == VLT_OK) {
        FILE *o = fopen(path, "wb");
        if (!o || fwrite(jpg, 1, n, o) != n) s = vlt_error_set(VLT_ERR_IO, "thumbnail: cannot write %s", path);
        if (o && fclose(o) != 0 && s == VLT_OK) s = vlt_error_set(VLT_ERR_IO, "thumbnail: cannot write %s", path);
    }
    free(jpg);
    vlt_image_free(&th);
    return s;
}

vlt_status vlt_write_thumbnails(const char *shards, char *const *keys, char *const *names, int n, const char *dir,
                                int size, int *missing) {
    uint8_t **bufs = calloc((size_t)(n > 0 ? n : 1), sizeof *bufs);
    size_t *lens = calloc((size_t)(n > 0 ? n : 1), sizeof *lens);
    vlt_status s = bufs && lens ? vlt_fetch_images(shards, keys, n, bufs, lens)
                                : vlt_error_set(VLT_ERR_NOMEM, "thumbnails: out of memory");
    int left = 0;
    for (int k = 0; s == VLT_OK && k < n; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.jpg", dir, names[k]);
        left += !bufs[k] || write_one(bufs[k], lens[k], keys[k], path, size) != VLT_OK;
    }
    for (int k = 0; bufs && k < n; k++) free(bufs[k]);
    free(bufs);
    free(lens);
    if (missing) *missing = s == VLT_OK ? left : n;
    return s;
}

vlt_status vlt_view_of_image(const uint8_t *buf, size_t len, const char *what, int out_side, vlt_image *out) {
    vlt_image img = {0};
    *out = (vlt_image){0};
    VLT_TRY(vlt_image_decode(buf, len, 0, what, &img));
    int side = img.width < img.height ? img.width : img.height;
    vlt_crop_box box = {(img.width - side) / 2, (img.height - side) / 2, side, side};
    vlt_status s = vlt_image_alloc(out, out_side, out_side);
    if (s == VLT_OK) s = vlt_resample_window(&img, box, out_side, out_side, 0, 0, out_side, out_side, VLT_RESAMPLE_AUTO, out->rgb);
    vlt_image_free(&img);
    if (s != VLT_OK) vlt_image_free(out);
    return s;
}

vlt_status vlt_image_write_png(const vlt_image *img, const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return vlt_error_set(VLT_ERR_IO, "png: cannot write %s", tmp);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        unlink(tmp);
        return vlt_error_set(VLT_ERR_IO, "png: writing %s failed", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->height; y++) png_write_row(png, img->rgb + (size_t)y * img->width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return vlt_error_set(VLT_ERR_IO, "png: writing %s failed", path);
    }
    return VLT_OK;
}

// A blue-to-red ramp for relevance v in [0, 1] (dark blue, cyan, yellow, red).
static void ramp(float v, float rgb[3]) {
    static const float stops[4][3] = {{0.05f, 0.05f, 0.55f}, {0.0f, 0.8f, 0.9f}, {1.0f, 0.9f, 0.0f}, {0.85f, 0.0f, 0.0f}};
    float x = v * 3.0f;
    int i = x >= 3 ? 2 : (int)x;
    float t = x - i;
    for (int c = 0; c < 3; c++) rgb[c] = stops[i][c] * (1 - t) + stops[i + 1][c] * t;
}

// (see thumbs.h) view (D x D) blended with the map (G x G, values >= 0), normalized by its maximum and sampled
// bilinearly at each pixel; alpha 0.65 · v so that the picture shows where the map is low.
vlt_status vlt_overlay_map(const vlt_image *view, const float *map, int G, vlt_image *out) {
    int D = view->width;
    VLT_TRY(vlt_image_alloc(out, D, D));
    float mx = 0;
    for (int i = 0; i < G * G; i++) mx = fmaxf(mx, map[i]);
    for (int y = 0; y < D; y++)
        for (int x = 0; x < D; x++) {
            float u = (x + 0.5f) * G / D - 0.5f, w = (y + 0.5f) * G / D - 0.5f;
            int x0 = (int)floorf(u), y0 = (int)floorf(w);
            float fx = u - x0, fy = w - y0, v = 0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    int cx = x0 + dx < 0 ? 0 : x0 + dx >= G ? G - 1 : x0 + dx;
                    int cy = y0 + dy < 0 ? 0 : y0 + dy >= G ? G - 1 : y0 + dy;
                    v += map[cy * G + cx] * (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
                }
            v = mx > 0 ? v / mx : 0;
            float rgb[3], a = 0.65f * v;
            ramp(v, rgb);
            for (int c = 0; c < 3; c++) {
                size_t k = ((size_t)y * D + x) * 3 + c;
                float o = view->rgb[k] * (1 - a) + 255.0f * rgb[c] * a;
                out->rgb[k] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o + 0.5f);
            }
        }
    return VLT_OK;
}


vlt_status vlt_fetch_images(const char *shards, char *const *keys, int n, uint8_t **bufs, size_t *lens) {
    for (int k = 0; k < n; k++) bufs[k] = NULL, lens[k] = 0;
    vlt_shard_list list = {0};
    VLT_TRY(vlt_shardspec_expand(shards, &list));
    int left = n;
    for (size_t i = 0; left > 0 && i < list.n; i++) {
        vlt_tar *t = NULL;
        vlt_wds *w = NULL;
        if (vlt_tar_open(list.paths[i], &t) != VLT_OK) continue;
        if (vlt_wds_open(t, &w) != VLT_OK) {
            vlt_tar_close(t);
            continue;
        }
        vlt_wds_sample smp;
        int got = 0;
        while (left > 0 && vlt_wds_next(w, &smp, &got) == VLT_OK && got) {
            const vlt_wds_field *f = image_field(&smp);
            for (int k = 0; f && k < n; k++) {
                if (bufs[k] || strcmp(keys[k], smp.key)) continue;
                if ((bufs[k] = malloc((size_t)f->size))) {
                    memcpy(bufs[k], f->data, (size_t)f->size);
                    lens[k] = (size_t)f->size;
                    left--;
                }
            }
            vlt_wds_sample_free(&smp);
        }
        vlt_wds_close(w);
        vlt_tar_close(t);
    }
    vlt_shard_list_free(&list);
    return VLT_OK;
}
