// Tests for shard specs: brace ranges with padding, steps and lists, '::' sources, comma lists,
// list files, globs, errors; and the rank/reader split covering every shard exactly once.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "data/shardspec.h"
#include "test_data_tar_util.h"

static void expect(const char *spec, size_t n, const char *const *want) {
    vlt_shard_list l;
    vlt_status s = vlt_shardspec_expand(spec, &l);
    if (s != VLT_OK) fail_msg("%s: %s", spec, vlt_error_message());
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n && want; i++) assert_string_equal(l.paths[i], want[i]);
    vlt_shard_list_free(&l);
}

static void test_brace_ranges(void **state) {
    (void)state;
    const char *a[] = {"data-000000.tar", "data-000001.tar", "data-000002.tar"};
    expect("data-{000000..000002}.tar", 3, a);
    const char *b[] = {"s8.tar", "s9.tar", "s10.tar"};
    expect("s{8..10}.tar", 3, b);
    const char *c[] = {"s08.tar", "s09.tar", "s10.tar"};
    expect("s{08..10}.tar", 3, c);
    const char *d[] = {"x3", "x2", "x1"};
    expect("x{3..1}", 3, d);
    const char *e[] = {"x000", "x010", "x020"};
    expect("x{000..025..10}", 3, e);
    const char *f[] = {"a0b0", "a0b1", "a1b0", "a1b1"};
    expect("a{0..1}b{0..1}", 4, f);
    expect("laion/{00000..41454}.tar", 41455, NULL);
    vlt_shard_list l;
    assert_int_equal(vlt_shardspec_expand("big/{0000000000..0099999999}.tar", &l), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "entries"));
    // A typo'd range of a few million (9,000,901 here took 5 s and 420 MB) is refused up front.
    assert_int_equal(vlt_shardspec_expand("d/a{000..0009000900}.tar", &l), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "max 1000000"));
    assert_int_equal(vlt_shardspec_expand("d/{0..999}/{0..1000}.tar", &l), VLT_ERR_ARG);   // 1,001,000 in all
    assert_non_null(strstr(vlt_error_message(), "more than 1000000 shards"));
}

static void test_lists_and_sources(void **state) {
    (void)state;
    const char *a[] = {"p/a.tar", "p/b.tar", "p/c1.tar", "p/c2.tar"};
    expect("p/{a,b,c{1..2}}.tar", 4, a);
    const char *b[] = {"one.tar", "two.tar", "x1.tar", "x2.tar", "z.tar"};
    expect("one.tar,two.tar::x{1,2}.tar::z.tar", 5, b);
    const char *c[] = {"w{x}y.tar"};
    (void)c;
    vlt_shard_list l;
    assert_int_equal(vlt_shardspec_expand("w{x}y.tar", &l), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "{x}"));
    assert_int_equal(vlt_shardspec_expand("a{0..3.tar", &l), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "unbalanced"));
    assert_int_equal(vlt_shardspec_expand("a0..3}.tar", &l), VLT_ERR_ARG);
    assert_int_equal(vlt_shardspec_expand("", &l), VLT_ERR_ARG);
    assert_int_equal(vlt_shardspec_expand("::", &l), VLT_ERR_ARG);
    assert_int_equal(vlt_shardspec_expand("{1..2..0}", &l), VLT_ERR_ARG);
}

static void test_list_file_and_glob(void **state) {
    (void)state;
    char *dir = tb_tmpdir();
    char path[512], spec[1200];
    const char *names[] = {"b-001.tar", "a-000.tar", "c.tar.zst", "notes.md"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        assert_int_equal(tb_save((const uint8_t *)"x", 1, path), 0);
    }
    snprintf(path, sizeof path, "%s/list.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# shards\n\nb-001.tar\n  /abs/{0..1}.tar  \r\n*.zst\n");
    fclose(f);
    snprintf(spec, sizeof spec, "@%s/list.txt::%s/*.tar", dir, dir);
    vlt_shard_list l;
    assert_int_equal(vlt_shardspec_expand(spec, &l), VLT_OK);
    assert_int_equal(l.n, 6);
    char want[512];
    snprintf(want, sizeof want, "%s/b-001.tar", dir);
    assert_string_equal(l.paths[0], want);
    assert_string_equal(l.paths[1], "/abs/0.tar");
    assert_string_equal(l.paths[2], "/abs/1.tar");
    snprintf(want, sizeof want, "%s/c.tar.zst", dir);
    assert_string_equal(l.paths[3], want);
    snprintf(want, sizeof want, "%s/a-000.tar", dir);   // glob results are sorted
    assert_string_equal(l.paths[4], want);
    vlt_shard_list_free(&l);

    snprintf(spec, sizeof spec, "%s/*.nothing", dir);
    assert_int_equal(vlt_shardspec_expand(spec, &l), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "matches no files"));
    snprintf(spec, sizeof spec, "@%s/missing.txt", dir);
    assert_int_equal(vlt_shardspec_expand(spec, &l), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), "missing.txt"));
    tb_rmdir(dir);
}

// Every (n, world, readers): the readers of all ranks see each shard exactly once, and each
// rank's shards are the ones i % world == rank.
static void test_split_coverage(void **state) {
    (void)state;
    for (size_t n = 1; n <= 37; n++) {
        for (int world = 1; world <= 4; world++) {
            for (int readers = 1; readers <= 4; readers++) {
                int seen[40] = {0};
                int ok = n >= (size_t)(world * readers);
                for (int rank = 0; rank < world; rank++) {
                    for (int r = 0; r < readers; r++) {
                        size_t *idx, cnt;
                        vlt_status s = vlt_shardspec_split(n, rank, world, r, readers, &idx, &cnt);
                        if (!ok) {
                            assert_int_equal(s, VLT_ERR_ARG);
                            assert_non_null(strstr(vlt_error_message(), "at least one shard"));
                            continue;
                        }
                        assert_int_equal(s, VLT_OK);
                        assert_true(cnt >= 1);
                        for (size_t k = 0; k < cnt; k++) {
                            assert_true(idx[k] < n);
                            assert_int_equal(idx[k] % (size_t)world, (size_t)rank);
                            if (k) assert_true(idx[k] > idx[k - 1]);
                            seen[idx[k]]++;
                        }
                        free(idx);
                    }
                }
                if (ok)
                    for (size_t i = 0; i < n; i++) assert_int_equal(seen[i], 1);
            }
        }
    }
    size_t *idx, cnt;
    assert_int_equal(vlt_shardspec_split(10, 2, 2, 0, 1, &idx, &cnt), VLT_ERR_ARG);
    assert_int_equal(vlt_shardspec_split(10, 0, 1, 1, 1, &idx, &cnt), VLT_ERR_ARG);
    assert_int_equal(vlt_shardspec_split(10, 0, 1, 0, 0, &idx, &cnt), VLT_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brace_ranges),
        cmocka_unit_test(test_lists_and_sources),
        cmocka_unit_test(test_list_file_and_glob),
        cmocka_unit_test(test_split_coverage),
    };
    return cmocka_run_group_tests_name("data_shardspec", tests, NULL, NULL);
}
