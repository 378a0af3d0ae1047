// test_eval_report.c — SHA-256 against FIPS 180-4's test vectors, and the report's number-by-number
// comparison (bit for bit: 0.1 + 0.2 is not 0.3).
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "eval/report.h"
#include "eval/sha256.h"

static void hex_of(const char *msg, size_t n, int repeat, char out[65]) {
    vlt_sha256 s;
    vlt_sha256_init(&s);
    for (int i = 0; i < repeat; i++) vlt_sha256_update(&s, msg, n);
    vlt_sha256_hex(&s, out);
}

static void test_sha256_vectors(void **state) {
    (void)state;
    char h[65];
    hex_of("", 0, 1, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, 1, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";  // 56 bytes: padding spills a block
    hex_of(m, strlen(m), 1, h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    hex_of("a", 1, 1000000, h);  // one byte at a time through the buffer
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // a file, and a missing one named in the error
    char path[] = "/tmp/vlt_test_sha_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    long long bytes = 0;
    assert_int_equal(vlt_sha256_file(path, h, &bytes), VLT_OK);
    assert_int_equal(bytes, 3);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    unlink(path);
    assert_int_equal(vlt_sha256_file(path, h, NULL), VLT_ERR_IO);
    assert_non_null(strstr(vlt_error_message(), path));
}

static void test_compare(void **state) {
    (void)state;
    cJSON *a = cJSON_Parse("{\"x\": 0.30000000000000004, \"y\": 1, \"n\": \"NaN\", \"only_a\": 2}");
    cJSON *b = cJSON_CreateObject();
    cJSON_AddNumberToObject(b, "x", 0.1 + 0.2);
    cJSON_AddNumberToObject(b, "y", 1);
    cJSON_AddStringToObject(b, "n", "NaN");
    int same = 0, diff = 0;
    vlt_eval_report_compare(a, b, 0, NULL, &same, &diff);
    assert_int_equal(same, 3);  // x printed with 17 digits reads back to the same double
    assert_int_equal(diff, 1);  // only_a is missing from b
    cJSON_ReplaceItemInObject(b, "x", cJSON_CreateNumber(0.3));
    cJSON_AddNumberToObject(b, "only_a", 2);
    vlt_eval_report_compare(a, b, 0, NULL, &same, &diff);
    assert_int_equal(diff, 1);  // 0.3 is not 0.1 + 0.2
    cJSON_Delete(a);
    cJSON_Delete(b);
}

// A report's numbers survive the trip through its JSON file bit for bit, NaN included.
static void test_report_round_trip(void **state) {
    (void)state;
    char *argv[] = {"captions", "--pred", "p.json"};
    vlt_eval_report r;
    assert_int_equal(vlt_eval_report_init(&r, "test", 3, argv), VLT_OK);
    double v[4] = {0.1 + 0.2, 1.0 / 3.0, 6.02214076e23, 4.9e-324};
    char key[8];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "v%d", i);
        vlt_eval_report_number(&r, key, v[i]);
    }
    vlt_eval_report_number(&r, "nan", NAN);
    char path[] = "/tmp/vlt_test_report_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(vlt_eval_report_save(&r, path), VLT_OK);
    char *text = cJSON_Print(r.numbers);
    cJSON *back = cJSON_Parse(text);
    free(text);
    int same = 0, diff = 0;
    vlt_eval_report_compare(r.numbers, back, 0, NULL, &same, &diff);
    assert_int_equal(same, 5);
    assert_int_equal(diff, 0);
    cJSON_Delete(back);
    vlt_eval_report_free(&r);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_report_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
