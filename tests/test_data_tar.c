// Tests for the streaming tar reader: ustar/pax/GNU names, zero-size members, skipped entry
// types, size cap, truncation at every byte, garbage, .tar.zst, seeking, Python-made fixtures.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "data/tar.h"
#include "test_data_tar_util.h"

typedef struct {
    int n;
    char *path[16];
    uint64_t size[16], offset[16], next[16];
    uint8_t *data[16];
    int too_large[16];
} members;

static void members_free(members *ms) {
    for (int i = 0; i < ms->n; i++) {
        free(ms->path[i]);
        free(ms->data[i]);
    }
    ms->n = 0;
}

// Reads every member; returns the final status.
static vlt_status read_all(vlt_tar *t, members *ms) {
    memset(ms, 0, sizeof *ms);
    for (;;) {
        vlt_tar_member m;
        int got;
        vlt_status s = vlt_tar_next(t, &m, &got);
        if (s != VLT_OK || !got) return s;
        if (ms->n < 16) {
            ms->path[ms->n] = m.path;
            ms->data[ms->n] = m.data;
            ms->size[ms->n] = m.size;
            ms->offset[ms->n] = m.offset;
            ms->next[ms->n] = m.next_offset;
            ms->too_large[ms->n] = m.too_large;
            ms->n++;
        } else {
            vlt_tar_member_free(&m);
        }
    }
}

static vlt_status read_mem(const tb_buf *b, members *ms) {
    vlt_tar *t;
    vlt_status s = vlt_tar_open_mem(b->buf, b->len, "mem.tar", &t);
    if (s != VLT_OK) return s;
    s = read_all(t, ms);
    vlt_tar_close(t);
    return s;
}

// The archive used by several tests: plain, zero-size, pax, GNU long, directory, symlink.
static char long_path[300];
static void build_mixed(tb_buf *b) {
    memset(long_path, 'x', 250);
    memcpy(long_path, "deep/", 5);
    strcpy(long_path + 250, "/000002.jpg");
    tb_str(b, "000001.txt", "a red circle");
    tb_file(b, "000001.json", "", 0);
    tb_header(b, "somedir/", NULL, 0, '5');
    tb_pax_file(b, "pax/путь/000001.jpg", "JPEGDATA", 8, 1);
    tb_header(b, "link", NULL, 0, '2');
    tb_gnu_long_file(b, long_path, "xyz", 3);
    tb_end(b);
}

static void check_mixed(members *ms) {
    assert_int_equal(ms->n, 4);
    assert_string_equal(ms->path[0], "000001.txt");
    assert_int_equal(ms->size[0], 12);
    assert_memory_equal(ms->data[0], "a red circle", 13);   // NUL-terminated
    assert_int_equal(ms->offset[0], 0);
    assert_int_equal(ms->next[0], 1024);
    assert_string_equal(ms->path[1], "000001.json");
    assert_int_equal(ms->size[1], 0);
    assert_non_null(ms->data[1]);
    assert_int_equal(ms->data[1][0], 0);
    assert_string_equal(ms->path[2], "pax/путь/000001.jpg");
    assert_int_equal(ms->size[2], 8);
    assert_memory_equal(ms->data[2], "JPEGDATA", 8);
    // offset points at the pax header, after 000001.json (1536) and the directory (2048).
    assert_int_equal(ms->offset[2], 2048);
    assert_string_equal(ms->path[3], long_path);
    assert_memory_equal(ms->data[3], "xyz", 3);
}

static void test_mixed_members(void **state) {
    (void)state;
    tb_buf b = {0};
    build_mixed(&b);
    members ms;
    assert_int_equal(read_mem(&b, &ms), VLT_OK);
    check_mixed(&ms);
    members_free(&ms);
    tb_free(&b);
}

static void test_ustar_prefix_and_base256(void **state) {
    (void)state;
    tb_buf b = {0};
    tb_header(&b, "name.txt", "some/prefix/dir", 3, '0');
    tb_data(&b, "abc", 3);
    tb_end(&b);
    // A base-256 size field (a 64 GiB member) truncated right after its header.
    tb_buf c = {0};
    tb_header(&c, "huge.bin", NULL, (uint64_t)64 << 30, '0');
    tb_put(&c, "zz", 2);
    members ms;
    assert_int_equal(read_mem(&b, &ms), VLT_OK);
    assert_int_equal(ms.n, 1);
    assert_string_equal(ms.path[0], "some/prefix/dir/name.txt");
    members_free(&ms);

    // The 64 GiB size was understood: the member is over the cap, so its bytes are skipped,
    // and skipping runs into the end of the input.
    vlt_tar *t;
    assert_int_equal(vlt_tar_open_mem(c.buf, c.len, "huge.tar", &t), VLT_OK);
    assert_int_equal(read_all(t, &ms), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "huge.bin"));
    assert_non_null(strstr(vlt_error_message(), "truncated"));
    members_free(&ms);
    vlt_tar_close(t);
    tb_free(&b);
    tb_free(&c);
}

static void test_size_cap_skips_member(void **state) {
    (void)state;
    tb_buf b = {0};
    uint8_t big[3000];
    memset(big, 7, sizeof big);
    tb_file(&b, "a.jpg", big, sizeof big);
    tb_str(&b, "a.txt", "after");
    tb_end(&b);
    vlt_tar *t;
    assert_int_equal(vlt_tar_open_mem(b.buf, b.len, "cap.tar", &t), VLT_OK);
    vlt_tar_set_max_member(t, 1000);
    members ms;
    assert_int_equal(read_all(t, &ms), VLT_OK);
    assert_int_equal(ms.n, 2);
    assert_int_equal(ms.too_large[0], 1);
    assert_null(ms.data[0]);
    assert_int_equal(ms.too_large[1], 0);
    assert_string_equal((char *)ms.data[1], "after");
    members_free(&ms);
    vlt_tar_close(t);
    tb_free(&b);
}

// Cutting the archive anywhere gives either a clean end (at a block boundary between members)
// or VLT_ERR_FORMAT naming the shard and an offset; never a crash or a wrong member.
static void test_truncation_everywhere(void **state) {
    (void)state;
    tb_buf b = {0};
    build_mixed(&b);
    size_t full_members_end = b.len - 1024;
    int errors = 0, clean = 0;
    for (size_t cut = 0; cut < b.len; cut += (cut < 4096 ? 1 : 7)) {
        tb_buf c = {b.buf, cut, cut};
        members ms;
        vlt_status s = read_mem(&c, &ms);
        if (s == VLT_OK) {
            clean++;
            assert_true(cut % 512 == 0 || cut >= full_members_end);
        } else {
            errors++;
            assert_int_equal(s, VLT_ERR_FORMAT);
            assert_non_null(strstr(vlt_error_message(), "mem.tar"));
            assert_non_null(strstr(vlt_error_message(), "offset"));
        }
        for (int i = 0; i < ms.n; i++) assert_true(ms.size[i] < 64);
        members_free(&ms);
    }
    assert_true(errors > 100);
    assert_true(clean > 3);
    // Mid-data truncation says "truncated".
    tb_buf c = {b.buf, 512 + 5, 0};
    members ms;
    assert_int_equal(read_mem(&c, &ms), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "truncated"));
    assert_non_null(strstr(vlt_error_message(), "000001.txt"));
    members_free(&ms);
    tb_free(&b);
}

static void test_garbage(void **state) {
    (void)state;
    // Pure garbage: rejected by the checksum.
    uint8_t junk[2048];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 131 + 7);
    tb_buf g = {junk, sizeof junk, 0};
    members ms;
    assert_int_equal(read_mem(&g, &ms), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "checksum"));
    assert_non_null(strstr(vlt_error_message(), "offset 0"));
    members_free(&ms);

    // Valid members, then garbage: the members come out, then the error names offset 1024.
    tb_buf b = {0};
    tb_str(&b, "k.txt", "ok");
    tb_put(&b, junk, 512);
    tb_end(&b);
    vlt_tar *t;
    assert_int_equal(vlt_tar_open_mem(b.buf, b.len, "junk.tar", &t), VLT_OK);
    assert_int_equal(read_all(t, &ms), VLT_ERR_FORMAT);
    assert_int_equal(ms.n, 1);
    assert_non_null(strstr(vlt_error_message(), "junk.tar"));
    assert_non_null(strstr(vlt_error_message(), "offset 1024"));
    // The error is sticky.
    vlt_tar_member m;
    int got;
    assert_int_equal(vlt_tar_next(t, &m, &got), VLT_ERR_FORMAT);
    assert_int_equal(got, 0);
    vlt_tar_close(t);
    members_free(&ms);

    // Single bytes flipped anywhere: no crash, and the outcome is either OK or FORMAT.
    tb_buf c = {0};
    build_mixed(&c);
    for (size_t i = 0; i < c.len; i += 3) {
        uint8_t saved = c.buf[i];
        c.buf[i] ^= 0x5a;
        vlt_status s = read_mem(&c, &ms);
        assert_true(s == VLT_OK || s == VLT_ERR_FORMAT);
        members_free(&ms);
        c.buf[i] = saved;
    }
    tb_free(&c);
    tb_free(&b);
}

static void test_bad_pax_records(void **state) {
    (void)state;
    const char *bad[] = {"99 path=x\n", "5 path=x\n", "12 pathx\n\n\n", "abc path=x\n", "9 size=z\n",
                         "30 size=99999999999999999999\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tb_buf b = {0};
        tb_header(&b, "PaxHeaders/x", NULL, strlen(bad[i]), 'x');
        tb_data(&b, bad[i], strlen(bad[i]));
        tb_str(&b, "a.txt", "x");
        tb_end(&b);
        members ms;
        assert_int_equal(read_mem(&b, &ms), VLT_ERR_FORMAT);
        assert_int_equal(ms.n, 0);
        members_free(&ms);
        tb_free(&b);
    }
    // A pax header with a global header before it, and NUL padding after the records.
    tb_buf b = {0};
    char rec[64];
    size_t rl = tb_pax_record(rec, sizeof rec, "comment", "hello");
    tb_header(&b, "pax_global_header", NULL, rl, 'g');
    tb_data(&b, rec, rl);
    rl = tb_pax_record(rec, sizeof rec, "path", "p/q.txt");
    tb_header(&b, "PaxHeaders/x", NULL, rl + 5, 'x');
    memset(rec + rl, 0, 5);
    tb_data(&b, rec, rl + 5);
    tb_str(&b, "short", "body");
    tb_end(&b);
    members ms;
    assert_int_equal(read_mem(&b, &ms), VLT_OK);
    assert_int_equal(ms.n, 1);
    assert_string_equal(ms.path[0], "p/q.txt");
    members_free(&ms);
    tb_free(&b);
}

static void test_zstd(void **state) {
    (void)state;
    tb_buf b = {0};
    build_mixed(&b);
    for (int frames = 1; frames <= 2; frames++) {
        tb_buf z = tb_zstd(&b, frames);
        vlt_tar *t;
        assert_int_equal(vlt_tar_open_mem(z.buf, z.len, "mem.tar.zst", &t), VLT_OK);
        assert_int_equal(vlt_tar_is_compressed(t), 1);
        members ms;
        assert_int_equal(read_all(t, &ms), VLT_OK);
        check_mixed(&ms);
        members_free(&ms);
        vlt_tar_close(t);
        // Truncated compressed stream: an error, never a hang.
        for (size_t cut = 1; cut < z.len; cut += 5) {
            tb_buf c = {z.buf, cut, 0};
            assert_int_equal(vlt_tar_open_mem(c.buf, c.len, "cut.tar.zst", &t), VLT_OK);
            vlt_status s = read_all(t, &ms);
            assert_int_equal(s, VLT_ERR_FORMAT);
            assert_non_null(strstr(vlt_error_message(), "cut.tar.zst"));
            members_free(&ms);
            vlt_tar_close(t);
        }
        // Garbage inside the compressed stream.
        z.buf[z.len / 2] ^= 0xff;
        z.buf[z.len / 2 + 1] ^= 0x3c;
        assert_int_equal(vlt_tar_open_mem(z.buf, z.len, "bad.tar.zst", &t), VLT_OK);
        vlt_status s = read_all(t, &ms);
        assert_true(s == VLT_ERR_FORMAT || s == VLT_OK);
        members_free(&ms);
        vlt_tar_close(t);
        tb_free(&z);
    }
    tb_free(&b);
}

static void test_files_and_seek(void **state) {
    (void)state;
    char *dir = tb_tmpdir();
    tb_buf b = {0};
    uint8_t big[300000];   // bigger than the reader's buffers, so seeks cross them
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i % 251);
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "%06d.bin", i);
        big[0] = (uint8_t)i;
        tb_file(&b, name, big, sizeof big - (size_t)i * 1000);
    }
    tb_end(&b);
    tb_buf z = tb_zstd(&b, 1);
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/s.tar", dir);
    snprintf(p2, sizeof p2, "%s/s.tar.zst", dir);
    assert_int_equal(tb_save(b.buf, b.len, p1), 0);
    assert_int_equal(tb_save(z.buf, z.len, p2), 0);
    const char *paths[2] = {p1, p2};
    for (int k = 0; k < 2; k++) {
        vlt_tar *t;
        assert_int_equal(vlt_tar_open(paths[k], &t), VLT_OK);
        members ms;
        assert_int_equal(read_all(t, &ms), VLT_OK);
        assert_int_equal(ms.n, 5);
        vlt_tar_close(t);
        // Seek forward to member 3 on a fresh reader.
        assert_int_equal(vlt_tar_open(paths[k], &t), VLT_OK);
        assert_int_equal(vlt_tar_seek(t, ms.offset[3]), VLT_OK);
        vlt_tar_member m;
        int got;
        assert_int_equal(vlt_tar_next(t, &m, &got), VLT_OK);
        assert_int_equal(got, 1);
        assert_string_equal(m.path, "000003.bin");
        assert_int_equal(m.data[0], 3);
        assert_memory_equal(m.data + 1, ms.data[3] + 1, m.size - 1);
        vlt_tar_member_free(&m);
        // Backwards: works on the plain file, refused on zstd.
        vlt_status s = vlt_tar_seek(t, ms.offset[1]);
        if (k == 0) {
            assert_int_equal(s, VLT_OK);
            assert_int_equal(vlt_tar_next(t, &m, &got), VLT_OK);
            assert_string_equal(m.path, "000001.bin");
            vlt_tar_member_free(&m);
        } else {
            assert_int_equal(s, VLT_ERR_ARG);
        }
        assert_int_equal(vlt_tar_seek(t, 513), VLT_ERR_ARG);
        vlt_tar_close(t);
        members_free(&ms);
    }
    vlt_tar *t;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope.tar", dir);
    assert_int_equal(vlt_tar_open(missing, &t), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "nope.tar"));
    tb_free(&b);
    tb_free(&z);
    tb_rmdir(dir);
}

static void check_python_fixture(const char *path) {
    vlt_tar *t;
    assert_int_equal(vlt_tar_open(path, &t), VLT_OK);
    members ms;
    assert_int_equal(read_all(t, &ms), VLT_OK);
    assert_int_equal(ms.n, 3);
    assert_string_equal(ms.path[0], "dir/000001.txt");
    assert_string_equal((char *)ms.data[0], "a red circle");
    char want[200];
    memset(want, 'd', 60);
    want[60] = '/';
    memset(want + 61, 'e', 70);
    strcpy(want + 131, "/sample-é-0001.jpg");
    assert_string_equal(ms.path[1], want);
    assert_int_equal(ms.size[1], 2 + 768);
    assert_int_equal(ms.data[1][0], 0xff);
    assert_int_equal(ms.data[1][2 + 300], 300 % 256);
    assert_string_equal(ms.path[2], "dir/empty.json");
    assert_int_equal(ms.size[2], 0);
    members_free(&ms);
    vlt_tar_close(t);
}

static void test_python_fixtures(void **state) {
    (void)state;
    check_python_fixture("tests/data/data/pytar_pax.tar");
    check_python_fixture("tests/data/data/pytar_gnu.tar");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_members),
        cmocka_unit_test(test_ustar_prefix_and_base256),
        cmocka_unit_test(test_size_cap_skips_member),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_bad_pax_records),
        cmocka_unit_test(test_zstd),
        cmocka_unit_test(test_files_and_seek),
        cmocka_unit_test(test_python_fixtures),
    };
    return cmocka_run_group_tests_name("data_tar", tests, NULL, NULL);
}
