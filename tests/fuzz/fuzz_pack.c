// fuzz_pack.c — the inputs of `vlt shards` (data/pack.c): COCO captions JSON, the Karpathy split
// JSON, a TSV of path<TAB>caption, and a folder of images with .txt captions. The first byte
// picks the source and its options; the rest is the annotation file (COCO, Karpathy, TSV) or,
// for a folder, entries "NAME\0CONTENT\0" written as files (at most 8, names without '/').
// The images folder holds real pictures a.jpg, b.png and c.jpg (empty), so that paths resolve
// (or climb out of it, which must be refused). Packed shards go to a scratch folder.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "data/pack.h"
#include "fuzz_util.h"

static char g_images[400], g_out[400], g_folder[400];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(g_images, sizeof g_images, "%s/images", fz_dir());
    snprintf(g_out, sizeof g_out, "%s/out", fz_dir());
    snprintf(g_folder, sizeof g_folder, "%s/folder", fz_dir());
    if (mkdir(g_images, 0700) != 0) abort();
    vlt_image img;
    if (vlt_image_alloc(&img, 6, 5) != VLT_OK) abort();
    memset(img.rgb, 120, 6 * 5 * 3);
    uint8_t *jpg;
    size_t len;
    if (vlt_image_encode_jpeg(&img, 90, &jpg, &len) != VLT_OK) abort();
    vlt_image_free(&img);
    char p[500];
    snprintf(p, sizeof p, "%s/a.jpg", g_images);
    FILE *f = fopen(p, "wb");
    fwrite(jpg, 1, len, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/b.png", g_images);   // a JPEG named .png: decoded by its bytes
    f = fopen(p, "wb");
    fwrite(jpg, 1, len, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/c.jpg", g_images);
    f = fopen(p, "wb");
    fclose(f);
    free(jpg);
    return 0;
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) abort();
}

// Writes "NAME\0CONTENT\0" entries as files of the folder source.
static void make_folder(const uint8_t *d, size_t n) {
    rm_rf(g_folder);
    if (mkdir(g_folder, 0700) != 0) abort();
    size_t i = 0;
    for (int k = 0; k < 8 && i < n; k++) {
        const uint8_t *name = d + i, *z = memchr(name, 0, n - i);
        size_t nl = z ? (size_t)(z - name) : n - i;
        i += nl + 1;
        const uint8_t *body = d + (i < n ? i : n), *z2 = i < n ? memchr(body, 0, n - i) : NULL;
        size_t bl = i < n ? (z2 ? (size_t)(z2 - body) : n - i) : 0;
        i += bl + 1;
        char fn[80];
        size_t m = 0;
        for (size_t j = 0; j < nl && m < 60; j++)
            if (name[j] != '/' && name[j] != 0) fn[m++] = (char)name[j];
        fn[m] = '\0';
        if (!m || !strcmp(fn, ".") || !strcmp(fn, "..")) continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", g_folder, fn);
        FILE *f = fopen(path, "wb");
        if (!f) continue;
        if (bl) fwrite(body, 1, bl, f);
        fclose(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 1 << 14) return 0;
    int mode = data[0] & 3, opts = data[0] >> 2;
    data++;
    size--;
    vlt_pack_source src = {0};
    src.each_caption = opts & 1;
    src.limit = (opts & 2) ? 3 : 0;
    static const char *const splits[] = {"train", "val", "test", "bogus"};
    if (mode == 0 || mode == 1) {
        src.images = g_images;
        const char *p = fz_file(0, "annotations.json", data, size);
        if (mode == 0) src.coco = p;
        else {
            src.karpathy = p;
            src.split = splits[(opts >> 2) & 3];
        }
    } else if (mode == 2) {
        src.tsv = fz_file(0, "pairs.tsv", data, size);
        if (opts & 4) src.images = g_images;
    } else {
        make_folder(data, size);
        src.folder = g_folder;
    }
    if (vlt_pack_source_check(&src) != VLT_OK) return 0;
    rm_rf(g_out);
    vlt_shardwriter_cfg cfg;
    vlt_shardwriter_cfg_default(&cfg, g_out);
    cfg.shard_size = 2;
    cfg.resize = (opts & 8) ? 4 : 0;
    vlt_pack_stats st;
    if (vlt_pack_shards(&src, &cfg, NULL, &st) == VLT_OK && st.written < 1) abort();   // "none written" is an error
    return 0;
}
