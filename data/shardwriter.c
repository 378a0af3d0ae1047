// shardwriter.c — webdataset tar shards (ustar members KEY.jpg / KEY.txt / KEY.json), written
// through temp files with fsync + rename, and sizes.json at the end.
#include "data/shardwriter.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/files.h"
#include "data/transform.h"

struct vlt_shardwriter {
    vlt_shardwriter_cfg cfg;
    char *out_dir, *prefix;
    FILE *f;                  // the open shard's temp file, or NULL between shards
    char tmp_path[4200], final_path[4096];
    int in_shard;             // samples in the open shard
    long long index;          // next sample's key number
    char **names;             // (n_shards) shard file names
    int *counts;              // (n_shards) samples per shard
    int n_shards, cap;
    int failed;               // a write failed: close discards the open shard and reports it
};

void vlt_shardwriter_cfg_default(vlt_shardwriter_cfg *cfg, const char *out_dir) {
    memset(cfg, 0, sizeof *cfg);
    cfg->out_dir = out_dir;
    cfg->prefix = "";
    cfg->shard_size = 10000;
    cfg->resize = 0;
    cfg->quality = 95;
    cfg->first_index = 0;
}

// --- preparing images ----------------------------------------------------------------------------

// Downscales img so its shorter side is `side` (when longer), bicubic as PIL; *out owns the result.
static vlt_status downscale(const vlt_image *img, int side, vlt_image *out) {
    int w = 0, h = 0;
    vlt_transform_shortest_size(img->width, img->height, side, &w, &h);
    VLT_TRY(vlt_image_alloc(out, w, h));
    vlt_status st = vlt_transform_resize(img, (vlt_crop_box){0, 0, img->width, img->height}, w, h, out->rgb);
    if (st != VLT_OK) vlt_image_free(out);
    return st;
}

static int needs_resize(const vlt_shardwriter_cfg *cfg, int w, int h) {
    return cfg->resize > 0 && (w < h ? w : h) > cfg->resize;
}

vlt_status vlt_shardwriter_prepare_rgb(const vlt_shardwriter_cfg *cfg, const vlt_image *img,
                                       uint8_t **jpg, size_t *jpg_len, int *width, int *height) {
    const vlt_image *src = img;
    vlt_image small = {0, 0, NULL};
    if (needs_resize(cfg, img->width, img->height)) {
        VLT_TRY(downscale(img, cfg->resize, &small));
        src = &small;
    }
    vlt_status st = vlt_image_encode_jpeg(src, cfg->quality, jpg, jpg_len);
    if (width) *width = src->width;
    if (height) *height = src->height;
    vlt_image_free(&small);
    return st;
}

vlt_status vlt_shardwriter_prepare_encoded(const vlt_shardwriter_cfg *cfg, const uint8_t *buf, size_t len,
                                           const char *what, uint8_t **jpg, size_t *jpg_len,
                                           int *width, int *height) {
    *jpg = NULL;
    *jpg_len = 0;
    int w = 0, h = 0;
    vlt_image_format fmt;
    VLT_TRY(vlt_image_probe(buf, len, what, &w, &h, &fmt));
    if (fmt == VLT_IMAGE_JPEG && !needs_resize(cfg, w, h)) {
        // Passthrough, but only data that decodes: a corrupt JPEG must not reach the shards.
        vlt_image img;
        VLT_TRY(vlt_image_decode(buf, len, 0, what, &img));
        vlt_image_free(&img);
        *jpg = malloc(len);
        if (!*jpg) return vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory", what);
        memcpy(*jpg, buf, len);
        *jpg_len = len;
        if (width) *width = w;
        if (height) *height = h;
        return VLT_OK;
    }
    vlt_image img;
    // The DCT-scaling hint keeps a decoded JPEG at least twice the target, then bicubic does the rest.
    VLT_TRY(vlt_image_decode(buf, len, cfg->resize > 0 ? 2 * cfg->resize : 0, what, &img));
    vlt_status st = vlt_shardwriter_prepare_rgb(cfg, &img, jpg, jpg_len, width, height);
    vlt_image_free(&img);
    return st;
}

// --- files -----------------------------------------------------------------------------------------

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

// Flushes, fsyncs and closes f, then renames tmp to final. f is closed in every case.
static vlt_status commit_file(FILE *f, const char *tmp, const char *final, const char *dir) {
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int err = errno;
    bad |= fclose(f) != 0;
    if (bad) {
        unlink(tmp);
        return vlt_error_set(VLT_ERR_IO, "shardwriter: cannot write %s: %s", tmp, strerror(err ? err : errno));
    }
    if (rename(tmp, final) != 0) {
        err = errno;
        unlink(tmp);
        return vlt_error_set(VLT_ERR_IO, "shardwriter: cannot rename %s to %s: %s", tmp, final, strerror(err));
    }
    fsync_dir(dir);
    return VLT_OK;
}

// --- tar -------------------------------------------------------------------------------------------

static void tar_header(uint8_t h[512], const char *name, size_t size) {
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000644", 8);                    // mode
    memcpy(h + 108, "0000000", 8);                    // uid
    memcpy(h + 116, "0000000", 8);                    // gid
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    memcpy(h + 136, "00000000000", 12);               // mtime 0: shards are reproducible
    h[156] = '0';                                     // regular file
    memcpy(h + 257, "ustar", 6);                      // magic "ustar\0", version "00"
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);                          // checksum: computed with its field as spaces
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static vlt_status tar_member(vlt_shardwriter *w, const char *name, const void *data, size_t size) {
    uint8_t h[512];
    static const uint8_t zeros[512];
    tar_header(h, name, size);
    size_t pad = (512 - size % 512) % 512;
    if (fwrite(h, 1, 512, w->f) != 512 || (size && fwrite(data, 1, size, w->f) != size) ||
        (pad && fwrite(zeros, 1, pad, w->f) != pad))
        return vlt_error_set(VLT_ERR_IO, "shardwriter: cannot write %s to %s: %s", name, w->tmp_path, strerror(errno));
    return VLT_OK;
}

// --- the writer ------------------------------------------------------------------------------------

vlt_status vlt_shardwriter_open(const vlt_shardwriter_cfg *cfg, vlt_shardwriter **out) {
    *out = NULL;
    if (!cfg || !cfg->out_dir || !*cfg->out_dir)
        return vlt_error_set(VLT_ERR_ARG, "shardwriter: no output directory");
    if (cfg->shard_size <= 0 || cfg->quality < 1 || cfg->quality > 100 || cfg->resize < 0 || cfg->first_index < 0)
        return vlt_error_set(VLT_ERR_ARG, "shardwriter: bad shard size %d, quality %d, resize %d or first index %lld",
                             cfg->shard_size, cfg->quality, cfg->resize, cfg->first_index);
    VLT_TRY(vlt_make_dirs(cfg->out_dir, 0755));
    vlt_shardwriter *w = calloc(1, sizeof *w);
    if (!w) return vlt_error_set(VLT_ERR_NOMEM, "shardwriter: out of memory");
    w->cfg = *cfg;
    w->out_dir = strdup(cfg->out_dir);
    w->prefix = strdup(cfg->prefix ? cfg->prefix : "");
    w->index = cfg->first_index;
    if (!w->out_dir || !w->prefix) {
        vlt_shardwriter_abort(w);
        return vlt_error_set(VLT_ERR_NOMEM, "shardwriter: out of memory");
    }
    *out = w;
    return VLT_OK;
}

static vlt_status start_shard(vlt_shardwriter *w) {
    if (w->n_shards == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        char **names = realloc(w->names, sizeof(char *) * cap);
        if (names) w->names = names;
        int *counts = realloc(w->counts, sizeof(int) * cap);
        if (counts) w->counts = counts;
        if (!names || !counts) return vlt_error_set(VLT_ERR_NOMEM, "shardwriter: out of memory");
        w->cap = cap;
    }
    char name[512];
    snprintf(name, sizeof name, "%s%05d.tar", w->prefix, w->n_shards);
    if (snprintf(w->final_path, sizeof w->final_path, "%s/%s", w->out_dir, name) >= (int)sizeof w->final_path)
        return vlt_error_set(VLT_ERR_ARG, "shardwriter: path too long in %s", w->out_dir);
    snprintf(w->tmp_path, sizeof w->tmp_path, "%s.tmp", w->final_path);
    w->f = fopen(w->tmp_path, "wb");
    if (!w->f) return vlt_error_set(VLT_ERR_IO, "shardwriter: cannot create %s: %s", w->tmp_path, strerror(errno));
    w->names[w->n_shards] = strdup(name);
    if (!w->names[w->n_shards]) {
        fclose(w->f);
        w->f = NULL;
        unlink(w->tmp_path);
        return vlt_error_set(VLT_ERR_NOMEM, "shardwriter: out of memory");
    }
    w->counts[w->n_shards] = 0;
    w->n_shards++;
    w->in_shard = 0;
    return VLT_OK;
}

static vlt_status finish_shard(vlt_shardwriter *w) {
    static const uint8_t zeros[1024];
    FILE *f = w->f;
    w->f = NULL;
    if (fwrite(zeros, 1, sizeof zeros, f) != sizeof zeros) {   // end-of-archive: two zero blocks
        fclose(f);
        unlink(w->tmp_path);
        return vlt_error_set(VLT_ERR_IO, "shardwriter: cannot write %s: %s", w->tmp_path, strerror(errno));
    }
    return commit_file(f, w->tmp_path, w->final_path, w->out_dir);
}

// The .json member: the caller's object (or {}) with "key" and "caption" set.
static char *sample_json(const char *json, const char *key, const char *caption) {
    cJSON *o = json ? cJSON_Parse(json) : cJSON_CreateObject();
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "key");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "caption");
    cJSON_AddStringToObject(o, "key", key);
    if (caption) cJSON_AddStringToObject(o, "caption", caption);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

vlt_status vlt_shardwriter_add(vlt_shardwriter *w, const uint8_t *jpg, size_t jpg_len, const char *caption,
                               const char *json, char *key_out) {
    if (!caption) return vlt_error_set(VLT_ERR_ARG, "shardwriter: empty sample");
    return vlt_shardwriter_add_labeled(w, jpg, jpg_len, caption, -1, json, key_out);
}

vlt_status vlt_shardwriter_add_labeled(vlt_shardwriter *w, const uint8_t *jpg, size_t jpg_len, const char *caption,
                                       int label, const char *json, char *key_out) {
    if (!w || !jpg || !jpg_len) return vlt_error_set(VLT_ERR_ARG, "shardwriter: empty sample");
    if (w->failed) return vlt_error_set(VLT_ERR_STATE, "shardwriter: an earlier write failed");
    char key[32], name[64];
    snprintf(key, sizeof key, "%09lld", w->index);
    char *meta = sample_json(json, key, caption);
    if (!meta) return vlt_error_set(VLT_ERR_FORMAT, "shardwriter: sample %s: metadata is not a JSON object", key);
    vlt_status st = VLT_OK;
    if (!w->f) st = start_shard(w);
    if (st == VLT_OK) { snprintf(name, sizeof name, "%s.jpg", key); st = tar_member(w, name, jpg, jpg_len); }
    if (st == VLT_OK && caption) { snprintf(name, sizeof name, "%s.txt", key); st = tar_member(w, name, caption, strlen(caption)); }
    if (st == VLT_OK && label >= 0) {  // webdataset's classification member: the index as decimal text
        char cls[16];
        snprintf(name, sizeof name, "%s.cls", key);
        snprintf(cls, sizeof cls, "%d", label);
        st = tar_member(w, name, cls, strlen(cls));
    }
    if (st == VLT_OK) { snprintf(name, sizeof name, "%s.json", key); st = tar_member(w, name, meta, strlen(meta)); }
    cJSON_free(meta);
    if (st != VLT_OK) {
        w->failed = 1;
        return st;
    }
    if (key_out) snprintf(key_out, 32, "%s", key);
    w->index++;
    w->in_shard++;
    w->counts[w->n_shards - 1]++;
    if (w->in_shard == w->cfg.shard_size) {
        st = finish_shard(w);
        if (st != VLT_OK) w->failed = 1;
    }
    return st;
}

static vlt_status write_sizes(vlt_shardwriter *w) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < w->n_shards; i++) cJSON_AddNumberToObject(o, w->names[i], w->counts[i]);
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) return vlt_error_set(VLT_ERR_NOMEM, "shardwriter: out of memory for sizes.json");
    char tmp[4200], final[4096];
    snprintf(final, sizeof final, "%s/sizes.json", w->out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    FILE *f = fopen(tmp, "wb");
    vlt_status st;
    if (!f) {
        st = vlt_error_set(VLT_ERR_IO, "shardwriter: cannot create %s: %s", tmp, strerror(errno));
    } else {
        fputs(text, f);
        fputc('\n', f);
        st = commit_file(f, tmp, final, w->out_dir);
    }
    cJSON_free(text);
    return st;
}

static void writer_free(vlt_shardwriter *w) {
    for (int i = 0; i < w->n_shards; i++) free(w->names[i]);
    free(w->names);
    free(w->counts);
    free(w->out_dir);
    free(w->prefix);
    free(w);
}

vlt_status vlt_shardwriter_close(vlt_shardwriter *w) {
    if (!w) return VLT_OK;
    if (w->failed) {
        vlt_shardwriter_abort(w);
        return vlt_error_set(VLT_ERR_IO, "shardwriter: not finished: an earlier write failed");
    }
    vlt_status st = w->f ? finish_shard(w) : VLT_OK;
    if (st == VLT_OK) st = write_sizes(w);
    writer_free(w);
    return st;
}

void vlt_shardwriter_abort(vlt_shardwriter *w) {
    if (!w) return;
    if (w->f) {
        fclose(w->f);
        unlink(w->tmp_path);
    }
    writer_free(w);
}

long long vlt_shardwriter_samples(const vlt_shardwriter *w) { return w->index - w->cfg.first_index; }
int vlt_shardwriter_shards(const vlt_shardwriter *w) { return w->n_shards; }
