// test_data_pack.c — packing image-caption pairs (data/pack.h, `vlt shards`): an annotation path
// that leaves the images folder (absolute, or climbing with ..) is never opened but skipped and
// counted; a TSV line without a tab is skipped and counted, the rest packed; an empty caption is
// counted as "empty caption", not as a missing caption or a missing tab.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "data/pack.h"

static char g_dir[64];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void copy_jpeg(const char *dst) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp tests/data/data/image/gray.jpg %s", dst);
    assert_int_equal(system(cmd), 0);
}

// g_dir/images/{a,b}.jpg and g_dir/outside.jpg (a valid image a hostile path could reach).
static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-pack-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char p[256];
    snprintf(p, sizeof p, "mkdir -p %s/images/sub", g_dir);
    if (system(p) != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void pack(const vlt_pack_source *src, const char *out, vlt_pack_stats *st) {
    vlt_shardwriter_cfg cfg;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, out);
    vlt_shardwriter_cfg_default(&cfg, dir);
    cfg.shard_size = 100;
    vlt_status s = vlt_pack_shards(src, &cfg, stderr, st);
    if (s != VLT_OK) fail_msg("pack: %s", vlt_error_message());
}

static void test_coco_paths_leaving_images_are_refused(void **state) {
    (void)state;
    char p[512], images[256];
    snprintf(images, sizeof images, "%s/images", g_dir);
    snprintf(p, sizeof p, "%s/images/a.jpg", g_dir);
    copy_jpeg(p);
    snprintf(p, sizeof p, "%s/images/sub/c.jpg", g_dir);
    copy_jpeg(p);
    snprintf(p, sizeof p, "%s/outside.jpg", g_dir);   // readable, valid: packing it would be the defect
    copy_jpeg(p);
    char abs_outside[300], json[4096];
    snprintf(abs_outside, sizeof abs_outside, "%s/outside.jpg", g_dir);
    snprintf(json, sizeof json,
             "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}, {\"id\": 2, \"file_name\": \"%s\"},"
             " {\"id\": 3, \"file_name\": \"../outside.jpg\"}, {\"id\": 4, \"file_name\": \"sub/../../outside.jpg\"},"
             " {\"id\": 5, \"file_name\": \"sub/c.jpg\"}, {\"id\": 6, \"file_name\": \"a.jpg\"},"
             " {\"id\": 7, \"file_name\": \"a.jpg\"}, {\"id\": 8, \"file_name\": \"/etc/hostname\"}],"
             " \"annotations\": [{\"image_id\": 1, \"caption\": \"a grey picture\"},"
             " {\"image_id\": 2, \"caption\": \"x\"}, {\"image_id\": 3, \"caption\": \"x\"}, {\"image_id\": 4, \"caption\": \"x\"},"
             " {\"image_id\": 5, \"caption\": \"another one\"}, {\"image_id\": 6, \"caption\": \"   \"},"
             " {\"image_id\": 8, \"caption\": \"x\"}]}",
             abs_outside);
    snprintf(p, sizeof p, "%s/captions.json", g_dir);
    write_file(p, json);
    vlt_pack_source src = {.coco = p, .images = images};
    vlt_pack_stats st;
    pack(&src, "coco", &st);
    assert_int_equal(st.written, 2);   // a.jpg and sub/c.jpg: nothing outside images/ was packed
    assert_int_equal(st.skipped[VLT_PACK_OUTSIDE_IMAGES], 4);   // absolute (2), ../, sub/../../
    assert_int_equal(st.skipped[VLT_PACK_EMPTY_CAPTION], 1);    // image 6: a blank caption
    assert_int_equal(st.skipped[VLT_PACK_MISSING_CAPTION], 1);  // image 7: no annotation
    assert_int_equal(st.skipped[VLT_PACK_MISSING_IMAGE], 0);
    assert_string_equal(vlt_pack_skip_name(VLT_PACK_OUTSIDE_IMAGES), "path leaves --images");
}

static void test_tsv_line_without_tab_is_skipped_and_counted(void **state) {
    (void)state;
    char p[512], img[256], tsv[4096];
    snprintf(img, sizeof img, "%s/images/a.jpg", g_dir);
    copy_jpeg(img);
    snprintf(tsv, sizeof tsv,
             "%s\tfirst caption\n"
             "%s no tab on this line\n"
             "%s\t\n"            // a tab, then nothing: an empty caption, not a missing tab
             "%s\t   \r\n"       // blank
             "%s\tlast caption\n",
             img, img, img, img, img);
    snprintf(p, sizeof p, "%s/pairs.tsv", g_dir);
    write_file(p, tsv);
    vlt_pack_source src = {.tsv = p};
    vlt_pack_stats st;
    pack(&src, "tsv", &st);
    assert_int_equal(st.written, 2);   // the lines after the bad one are packed too
    assert_int_equal(st.skipped[VLT_PACK_BAD_LINE], 1);
    assert_int_equal(st.skipped[VLT_PACK_EMPTY_CAPTION], 2);
    assert_int_equal(st.skipped[VLT_PACK_MISSING_CAPTION], 0);
    assert_string_equal(vlt_pack_skip_name(VLT_PACK_EMPTY_CAPTION), "empty caption");
    assert_string_equal(vlt_pack_skip_name(VLT_PACK_BAD_LINE), "no tab");
}

static void test_folder_empty_and_missing_caption(void **state) {
    (void)state;
    char p[512], folder[128];
    snprintf(folder, sizeof folder, "%s/folder", g_dir);
    snprintf(p, sizeof p, "mkdir -p %s", folder);
    assert_int_equal(system(p), 0);
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s.jpg", folder, names[i]);
        copy_jpeg(p);
    }
    snprintf(p, sizeof p, "%s/a.txt", folder);
    write_file(p, "a caption\n");
    snprintf(p, sizeof p, "%s/b.txt", folder);
    write_file(p, "\n");   // empty; c has no .txt at all
    vlt_pack_source src = {.folder = folder};
    vlt_pack_stats st;
    pack(&src, "folder-out", &st);
    assert_int_equal(st.written, 1);
    assert_int_equal(st.skipped[VLT_PACK_EMPTY_CAPTION], 1);
    assert_int_equal(st.skipped[VLT_PACK_MISSING_CAPTION], 1);
}

// Nothing packable is an error that says why (the counts), and leaves no shard behind.
static void test_nothing_written_is_an_error_with_counts(void **state) {
    (void)state;
    char p[512], out[256];
    snprintf(p, sizeof p, "%s/bad.tsv", g_dir);
    write_file(p, "no tab here\nnor here\n");
    vlt_pack_source src = {.tsv = p};
    vlt_shardwriter_cfg cfg;
    snprintf(out, sizeof out, "%s/bad-out", g_dir);
    vlt_shardwriter_cfg_default(&cfg, out);
    vlt_pack_stats st;
    assert_int_not_equal(vlt_pack_shards(&src, &cfg, NULL, &st), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "2 no tab"));
    snprintf(p, sizeof p, "%s/bad-out/00000.tar", g_dir);
    FILE *f = fopen(p, "rb");
    assert_null(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coco_paths_leaving_images_are_refused),
        cmocka_unit_test(test_tsv_line_without_tab_is_skipped_and_counted),
        cmocka_unit_test(test_folder_empty_and_missing_caption),
        cmocka_unit_test(test_nothing_written_is_an_error_with_counts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
