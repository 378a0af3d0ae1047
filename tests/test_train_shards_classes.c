// test_train_shards_classes.c — `vlt shards --classes DIR` on a generated image-folder tree:
// class indices in torchvision ImageFolder order (sorted sub-folder names, code point order: an
// upper-case name first, an empty class folder keeps its index), images found recursively (JPEG
// and PNG), a caption file picked up when there is one; a corrupt JPEG and a BMP are skipped,
// counted and named, not fatal; classes.txt beside the shards; every sample's .cls read back by the
// evaluation loader equals its folder's index, and `vlt eval zeroshot` runs on the shards with that
// classes.txt.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "autograd/tape.h"
#include "data/loader.h"
#include "data/pack.h"
#include "data/shardwriter.h"
#include "data/synth.h"
#include "data/thumbs.h"
#include "eval/json_file.h"
#include "tests/test_data_tar_util.h"
#include "train/commands.h"

static char *g_dir;
static char g_tree[300];

static void put_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

// A synthetic picture as a JPEG (png = 0) or PNG file.
static void put_image(const char *path, int index, int png) {
    vlt_image img;
    char caption[256];
    vlt_synth_scene sc;
    assert_int_equal(vlt_synth_sample(5, (uint64_t)index, 40, &img, caption, sizeof caption, &sc), VLT_OK);
    if (png) {
        assert_int_equal(vlt_image_write_png(&img, path), VLT_OK);
    } else {
        vlt_shardwriter_cfg wc;
        vlt_shardwriter_cfg_default(&wc, g_dir);
        uint8_t *jpg;
        size_t len;
        assert_int_equal(vlt_shardwriter_prepare_rgb(&wc, &img, &jpg, &len, NULL, NULL), VLT_OK);
        put_file(path, jpg, len);
        free(jpg);
    }
    vlt_image_free(&img);
}

// The tree (classes in index order):
//   0 Apple/      a1.jpg a2.png
//   1 ant_empty/  (no images: a warning, the index stays)
//   2 bee/        b1.jpg (+ b1.txt caption) more/b2.jpg (recursive)
//   3 zebra/      z1.jpg z2.jpg broken.jpg (not a JPEG) old.bmp (not decodable by vlt) notes.md (ignored)
//   top level:    readme.txt (not a folder: ignored)
static int setup(void **state) {
    (void)state;
    g_dir = tb_tmpdir();
    snprintf(g_tree, sizeof g_tree, "%s/tree", g_dir);
    char p[400];
    const char *dirs[] = {"", "/Apple", "/ant_empty", "/bee", "/bee/more", "/zebra"};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s%s", g_tree, dirs[i]);
        if (mkdir(p, 0755) != 0) return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tb_rmdir(g_dir);
    return 0;
}

static void make_tree(void) {
    char p[400];
    const struct { const char *rel; int png; } imgs[] = {{"Apple/a1.jpg", 0}, {"Apple/a2.png", 1}, {"bee/b1.jpg", 0},
                                                         {"bee/more/b2.jpg", 0}, {"zebra/z1.jpg", 0}, {"zebra/z2.jpg", 0}};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", g_tree, imgs[i].rel);
        put_image(p, i, imgs[i].png);
    }
    snprintf(p, sizeof p, "%s/bee/b1.txt", g_tree);
    put_file(p, "a bee on a flower\n", 18);
    snprintf(p, sizeof p, "%s/zebra/broken.jpg", g_tree);
    put_file(p, "\xff\xd8\xff\xe0 this is not a jpeg", 24);
    snprintf(p, sizeof p, "%s/zebra/old.bmp", g_tree);
    put_file(p, "BM\x3a\0\0\0", 6);
    snprintf(p, sizeof p, "%s/zebra/notes.md", g_tree);
    put_file(p, "# notes\n", 8);
    snprintf(p, sizeof p, "%s/readme.txt", g_tree);
    put_file(p, "not a class\n", 12);
}

static const char *const CLASSES[] = {"Apple", "ant_empty", "bee", "zebra"};

static void test_pack_class_folders(void **state) {
    (void)state;
    make_tree();
    char out[400];
    snprintf(out, sizeof out, "%s/shards", g_dir);
    vlt_pack_source src = {.classes = g_tree};
    vlt_shardwriter_cfg wc;
    vlt_shardwriter_cfg_default(&wc, out);
    wc.shard_size = 4;
    char *warnings = NULL;
    size_t wlen = 0;
    FILE *warn = open_memstream(&warnings, &wlen);
    vlt_pack_stats st;
    if (vlt_pack_shards(&src, &wc, warn, &st) != VLT_OK) fail_msg("%s", vlt_error_message());
    fclose(warn);
    print_message("%s", warnings);
    assert_int_equal(st.classes, 4);
    assert_int_equal(st.written, 6);
    assert_int_equal(st.shards, 2);
    assert_int_equal(st.skipped[VLT_PACK_BAD_IMAGE], 2);
    long long other = 0;
    for (int r = 0; r < VLT_PACK_N_SKIP; r++) other += r == VLT_PACK_BAD_IMAGE ? 0 : st.skipped[r];
    assert_int_equal(other, 0);
    assert_non_null(strstr(warnings, "zebra/broken.jpg"));  // the bad images, by name
    assert_non_null(strstr(warnings, "zebra/old.bmp"));
    assert_non_null(strstr(warnings, "class 1 'ant_empty' has no images"));
    free(warnings);

    char path[500];
    snprintf(path, sizeof path, "%s/classes.txt", out);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[256] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_string_equal(buf, "Apple\nant_empty\nbee\nzebra\n");

    // Read back as vlt eval zeroshot reads them: each .cls is its folder's index.
    vlt_loader_cfg lc;
    vlt_loader_cfg_default(&lc);
    char spec[500];
    snprintf(spec, sizeof spec, "%s/{00000..00001}.tar", out);
    lc.shards = spec;
    lc.readers = 1;
    lc.batch_size = 16;
    lc.image_size = 32;
    lc.context_len = 16;
    lc.train = 0;
    lc.shuffle_shards = 0;
    lc.shuffle_buffer = 0;
    lc.drop_last = 0;
    lc.report = 0;
    lc.label_ext = "cls";
    lc.caption_optional = 1;
    lc.keep_json = 1;
    vlt_tokenizer *tok;
    assert_int_equal(vlt_tokenizer_load(NULL, &tok), VLT_OK);
    lc.tokenizer = tok;
    vlt_loader *L;
    assert_int_equal(vlt_loader_create(&lc, &L), VLT_OK);
    const vlt_batch *b = NULL;
    int seen = 0, per_class[4] = {0}, captioned = 0;
    while (vlt_loader_next(L, &b) == VLT_OK && b) {
        for (int i = 0; i < b->n; i++, seen++) {
            cJSON *j = cJSON_Parse(b->json[i]);
            const char *cls = cJSON_GetObjectItemCaseSensitive(j, "class")->valuestring;
            int want = -1;
            for (int c = 0; c < 4; c++)
                if (!strcmp(cls, CLASSES[c])) want = c;
            assert_int_equal(b->labels[i], want);
            assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "label")->valueint, want);
            assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(j, "source_path")->valuestring, cls));
            per_class[want]++;
            if (b->captions[i][0]) {
                assert_string_equal(b->captions[i], "a bee on a flower");
                assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(j, "source_path")->valuestring, "bee/b1.jpg"));
                captioned++;
            }
            cJSON_Delete(j);
        }
    }
    vlt_loader_free(L);
    vlt_tokenizer_free(tok);
    assert_int_equal(seen, 6);
    assert_int_equal(per_class[0], 2);
    assert_int_equal(per_class[1], 0);
    assert_int_equal(per_class[2], 2);
    assert_int_equal(per_class[3], 2);
    assert_int_equal(captioned, 1);
}

// The command line: vlt shards --classes, then vlt eval zeroshot on the result with classes.txt.
static void test_cli_and_zeroshot(void **state) {
    (void)state;
    char out[400], w[400], rep[400], spec[500], classes[500];
    snprintf(out, sizeof out, "%s/cli", g_dir);
    snprintf(w, sizeof w, "%s/w.safetensors", g_dir);
    snprintf(rep, sizeof rep, "%s/zs.json", g_dir);
    snprintf(spec, sizeof spec, "%s/*.tar", out);
    snprintf(classes, sizeof classes, "%s/classes.txt", out);
    char *sh[] = {"shards", "--classes", g_tree, "--out", out, NULL};
    fflush(stdout);
    assert_int_equal(vlt_cmd_shards(5, sh), 0);
    char *both[] = {"shards", "--classes", g_tree, "--folder", g_tree, "--out", out, NULL};
    assert_int_equal(vlt_cmd_shards(7, both), 2);
    char *init[] = {"model", "init", "--model", "tiny-clip", "--out", w, NULL};
    assert_int_equal(vlt_cmd_model(6, init), 0);
    char *zs[] = {"zeroshot", "--weights", w, "--model", "tiny-clip", "--shards", spec, "--classes", classes, "--templates",
                  "cifar10", "--out", rep, NULL};
    assert_int_equal(vlt_cmd_eval_zeroshot(13, zs), 0);
    cJSON *r = NULL;
    assert_int_equal(vlt_eval_json_load(rep, &r), VLT_OK);
    const cJSON *num = cJSON_GetObjectItemCaseSensitive(r, "numbers");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(num, "n_images")->valueint, 6);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(num, "n_classes")->valueint, 4);
    assert_true(cJSON_GetObjectItemCaseSensitive(num, "top5")->valuedouble == 1.0);  // 4 classes: always in the top 5
    cJSON_Delete(r);
    // a folder without class sub-folders is refused by name
    char flat[400];
    snprintf(flat, sizeof flat, "%s/tree/zebra", g_dir);
    char *none[] = {"shards", "--classes", flat, "--out", out, NULL};
    assert_int_equal(vlt_cmd_shards(5, none), 1);
    assert_non_null(strstr(vlt_error_message(), "zebra holds no class folders"));
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pack_class_folders), cmocka_unit_test(test_cli_and_zeroshot)};
    int rc = cmocka_run_group_tests_name("train_shards_classes", tests, setup, teardown);
    vlt_tape_shutdown();
    return rc;
}
