// Tests for webdataset grouping: keys with directories and multi-dot extensions, lower-casing,
// skipped metadata / keyless members, duplicate extensions, oversize members, keys coming
// back, truncation mid-sample, and resuming from a sample's offset.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "data/webdataset.h"
#include "test_data_tar_util.h"

typedef struct {
    int n;
    vlt_wds_sample s[16];
    vlt_status status;
} samples;

static void samples_free(samples *ss) {
    for (int i = 0; i < ss->n; i++) vlt_wds_sample_free(&ss->s[i]);
    ss->n = 0;
}

static void group_from(vlt_tar *t, samples *ss) {
    vlt_wds *w;
    memset(ss, 0, sizeof *ss);
    assert_int_equal(vlt_wds_open(t, &w), VLT_OK);
    for (;;) {
        vlt_wds_sample s;
        int got;
        ss->status = vlt_wds_next(w, &s, &got);
        if (ss->status != VLT_OK || !got) break;
        assert_true(ss->n < 16);
        ss->s[ss->n++] = s;
    }
    vlt_wds_close(w);
}

static void group(const tb_buf *b, uint64_t cap, samples *ss) {
    vlt_tar *t;
    assert_int_equal(vlt_tar_open_mem(b->buf, b->len, "wds.tar", &t), VLT_OK);
    if (cap) vlt_tar_set_max_member(t, cap);
    group_from(t, ss);
    vlt_tar_close(t);
}

static void test_split_path(void **state) {
    (void)state;
    size_t k, e;
    assert_int_equal(vlt_wds_split_path("000123.jpg", &k, &e), 0);
    assert_int_equal(k, 6);
    assert_int_equal(e, 3);
    assert_int_equal(vlt_wds_split_path("a.b/c/000123.seg.png", &k, &e), 0);
    assert_int_equal(k, strlen("a.b/c/000123"));
    assert_int_equal(e, strlen("seg.png"));
    assert_int_equal(vlt_wds_split_path("dir/README", &k, &e), -1);
    assert_int_equal(vlt_wds_split_path("dir/.hidden", &k, &e), -1);
    assert_int_equal(vlt_wds_split_path("__key__", &k, &e), -1);
    assert_int_equal(vlt_wds_split_path("x/__meta__", &k, &e), -1);
    assert_int_equal(vlt_wds_split_path("__meta__.json", &k, &e), 0);   // webdataset keeps it
    assert_int_equal(vlt_wds_split_path("a.", &k, &e), 0);
    assert_int_equal(e, 0);
}

static void test_grouping_rules(void **state) {
    (void)state;
    tb_buf b = {0};
    tb_str(&b, "__key__", "meta");
    tb_str(&b, "shard/000001.jpg", "J1");
    tb_str(&b, "shard/000001.TXT", "caption one");
    tb_str(&b, "shard/000001.seg.PNG", "P1");
    tb_str(&b, "shard/README", "skipped");
    tb_file(&b, "shard/000001.json", "", 0);
    tb_str(&b, "other/000001.txt", "same basename, other dir");
    tb_str(&b, "000002.jpg", "J2");
    tb_str(&b, "000003.jpg", "J3");
    tb_str(&b, "000002.txt", "key comes back");
    tb_end(&b);
    samples ss;
    group(&b, 0, &ss);
    assert_int_equal(ss.status, VLT_OK);
    assert_int_equal(ss.n, 5);
    vlt_wds_sample *s = &ss.s[0];
    assert_string_equal(s->key, "shard/000001");
    assert_int_equal(s->bad, VLT_WDS_OK);
    assert_int_equal(s->n_fields, 4);
    assert_string_equal(s->fields[0].ext, "jpg");
    assert_string_equal(s->fields[1].ext, "txt");
    assert_string_equal(s->fields[2].ext, "seg.png");
    assert_string_equal(s->fields[3].ext, "json");
    assert_int_equal(s->fields[3].size, 0);
    assert_string_equal((char *)vlt_wds_sample_field(s, "txt")->data, "caption one");
    assert_null(vlt_wds_sample_field(s, "TXT"));
    assert_int_equal(s->offset, 1024);   // after the skipped __key__ member
    assert_string_equal(ss.s[1].key, "other/000001");
    assert_string_equal(ss.s[2].key, "000002");
    assert_int_equal(ss.s[2].n_fields, 1);
    assert_string_equal(ss.s[3].key, "000003");
    assert_string_equal(ss.s[4].key, "000002");
    assert_string_equal((char *)ss.s[4].fields[0].data, "key comes back");
    for (int i = 0; i + 1 < ss.n; i++) assert_true(ss.s[i].next_offset <= ss.s[i + 1].offset);
    samples_free(&ss);
    tb_free(&b);
}

static void test_bad_samples(void **state) {
    (void)state;
    tb_buf b = {0};
    uint8_t big[2000] = {0};
    tb_str(&b, "a.jpg", "A");
    tb_str(&b, "a.JPG", "dup after lower-casing");
    tb_str(&b, "a.txt", "still part of a");
    tb_str(&b, "b.jpg", "B");
    tb_file(&b, "b.txt", big, sizeof big);
    tb_str(&b, "c.jpg", "C");
    tb_end(&b);
    samples ss;
    group(&b, 1000, &ss);
    assert_int_equal(ss.status, VLT_OK);
    assert_int_equal(ss.n, 3);
    assert_string_equal(ss.s[0].key, "a");
    assert_int_equal(ss.s[0].bad, VLT_WDS_BAD_DUP_EXT);
    assert_string_equal(ss.s[0].bad_ext, "jpg");
    assert_int_equal(ss.s[0].n_fields, 0);
    assert_int_equal(ss.s[1].bad, VLT_WDS_BAD_TOO_LARGE);
    assert_string_equal(ss.s[1].bad_ext, "txt");
    assert_int_equal(ss.s[2].bad, VLT_WDS_OK);
    assert_string_equal((char *)ss.s[2].fields[0].data, "C");
    samples_free(&ss);
    tb_free(&b);
}

static void test_truncated_mid_sample(void **state) {
    (void)state;
    tb_buf b = {0};
    tb_str(&b, "a.jpg", "A");
    tb_str(&b, "a.txt", "a");
    tb_str(&b, "b.jpg", "B");
    tb_str(&b, "b.txt", "b");
    size_t cut = b.len - 300;   // inside b.txt's data
    tb_buf c = {b.buf, cut, 0};
    samples ss;
    group(&c, 0, &ss);
    assert_int_equal(ss.status, VLT_ERR_FORMAT);
    // a is whole; b lost its .txt: it comes out bad (no data) so that it is counted, then the error.
    assert_int_equal(ss.n, 2);
    assert_string_equal(ss.s[0].key, "a");
    assert_int_equal(ss.s[0].bad, VLT_WDS_OK);
    assert_int_equal(ss.s[0].n_fields, 2);
    assert_string_equal(ss.s[1].key, "b");
    assert_int_equal(ss.s[1].bad, VLT_WDS_BAD_TRUNCATED);
    assert_string_equal(ss.s[1].bad_ext, "txt");
    assert_int_equal(ss.s[1].n_fields, 0);
    assert_int_equal(ss.s[1].offset, 2048);   // b.jpg's header
    samples_free(&ss);
    // Cut right after a.txt: a was not known to be complete, the stream ends cleanly at a
    // block boundary, so a comes out.
    tb_buf d = {b.buf, 2048, 0};
    group(&d, 0, &ss);
    assert_int_equal(ss.status, VLT_OK);
    assert_int_equal(ss.n, 1);
    assert_int_equal(ss.s[0].n_fields, 2);
    samples_free(&ss);
    tb_free(&b);
}

// Issue 13 item 4: a tar cut right after a complete sample (inside the next header, inside the
// trailing zero blocks, or inside the next sample's first member) delivers that sample; only
// the incomplete tail is reported (a bad sample when its key is known, then the error).
static void test_truncated_after_complete_sample(void **state) {
    (void)state;
    tb_buf b = {0};
    for (int i = 0; i < 11; i++) {
        char name[32], text[32];
        snprintf(name, sizeof name, "%06d.jpg", i);
        tb_str(&b, name, "img");
        snprintf(name, sizeof name, "%06d.txt", i);
        snprintf(text, sizeof text, "caption %d", i);
        tb_str(&b, name, text);
    }
    size_t end11 = b.len;   // 11 samples, 2 members of 2 blocks each
    tb_str(&b, "000011.jpg", "img");
    tb_str(&b, "000011.txt", "caption 11");
    tb_end(&b);
    struct { size_t len; int tail; } cuts[] = {
        {end11 + 100, 0},          // inside the next header: its key is unknown
        {end11 + 512 + 10, 1},     // inside 000011.jpg's data: 000011 is the incomplete tail
        {end11 + 1536 + 5, 1},     // inside 000011.txt's data
    };
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        tb_buf c = {b.buf, cuts[k].len, 0};
        samples ss;
        group(&c, 0, &ss);
        assert_int_equal(ss.status, VLT_ERR_FORMAT);
        if (ss.n != 11 + cuts[k].tail) fail_msg("cut at %zu: %d samples, expected %d", cuts[k].len, ss.n, 11 + cuts[k].tail);
        for (int i = 0; i < 11; i++) {
            char key[16];
            snprintf(key, sizeof key, "%06d", i);
            assert_string_equal(ss.s[i].key, key);
            assert_int_equal(ss.s[i].bad, VLT_WDS_OK);
            assert_int_equal(ss.s[i].n_fields, 2);
        }
        if (cuts[k].tail) {
            assert_string_equal(ss.s[11].key, "000011");
            assert_int_equal(ss.s[11].bad, VLT_WDS_BAD_TRUNCATED);
            assert_int_equal(ss.s[11].offset, end11);
        }
        samples_free(&ss);
    }
    // Cut inside the end-of-archive zero blocks after all 12 samples: all 12, then the error.
    tb_buf c = {b.buf, b.len - 700, 0};
    samples ss;
    group(&c, 0, &ss);
    assert_int_equal(ss.status, VLT_ERR_FORMAT);
    assert_int_equal(ss.n, 12);
    assert_int_equal(ss.s[11].bad, VLT_WDS_OK);
    samples_free(&ss);
    // A shard whose very first member is cut: one bad sample, then the error.
    tb_buf one = {0};
    tb_str(&one, "x.jpg", "0123456789");
    tb_buf d = {one.buf, 512 + 5, 0};
    group(&d, 0, &ss);
    assert_int_equal(ss.status, VLT_ERR_FORMAT);
    assert_int_equal(ss.n, 1);
    assert_string_equal(ss.s[0].key, "x");
    assert_int_equal(ss.s[0].bad, VLT_WDS_BAD_TRUNCATED);
    samples_free(&ss);
    tb_free(&one);
    tb_free(&b);
}

static void test_resume_from_offset(void **state) {
    (void)state;
    tb_buf b = {0};
    for (int i = 0; i < 6; i++) {
        char name[32], text[32];
        snprintf(name, sizeof name, "%06d.txt", i);
        snprintf(text, sizeof text, "caption %d", i);
        tb_str(&b, name, text);
        snprintf(name, sizeof name, "%06d.jpg", i);
        tb_str(&b, name, "img");
        if (i == 2) tb_str(&b, "__meta__", "x");
    }
    tb_end(&b);
    tb_buf z = tb_zstd(&b, 1);
    const tb_buf *inputs[2] = {&b, &z};
    for (int k = 0; k < 2; k++) {
        samples all;
        group(inputs[k], 0, &all);
        assert_int_equal(all.n, 6);
        for (int from = 0; from < 6; from++) {
            // Seek to where sample `from` starts, or to where the one before ended.
            uint64_t offs[2] = {all.s[from].offset, from ? all.s[from - 1].next_offset : 0};
            for (int j = 0; j < 2; j++) {
                vlt_tar *t;
                assert_int_equal(vlt_tar_open_mem(inputs[k]->buf, inputs[k]->len, "r.tar", &t), VLT_OK);
                assert_int_equal(vlt_tar_seek(t, offs[j]), VLT_OK);
                samples rest;
                group_from(t, &rest);
                vlt_tar_close(t);
                assert_int_equal(rest.status, VLT_OK);
                assert_int_equal(rest.n, 6 - from);
                for (int i = 0; i < rest.n; i++) {
                    assert_string_equal(rest.s[i].key, all.s[from + i].key);
                    assert_int_equal(rest.s[i].offset, all.s[from + i].offset);
                }
                samples_free(&rest);
            }
        }
        samples_free(&all);
    }
    tb_free(&z);
    tb_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_path),
        cmocka_unit_test(test_grouping_rules),
        cmocka_unit_test(test_bad_samples),
        cmocka_unit_test(test_truncated_mid_sample),
        cmocka_unit_test(test_truncated_after_complete_sample),
        cmocka_unit_test(test_resume_from_offset),
    };
    return cmocka_run_group_tests_name("data_webdataset", tests, NULL, NULL);
}
