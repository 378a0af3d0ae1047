// test_train_eval_cmd.c — `vlt eval` end to end through vlt_cmd_eval: reports and exit statuses.
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

#include "eval/embeddings_h5.h"
#include "eval/json_file.h"
#include "train/commands.h"

#define DATA "tests/data/eval/"

static int run(int argc, const char **argv) {
    fflush(stdout);
    return vlt_cmd_eval(argc, (char **)argv);
}

static char *tmp_path(void) {
    char *p = strdup("/tmp/vlt_test_cmd_XXXXXX");
    int fd = mkstemp(p);
    assert_true(fd >= 0);
    close(fd);
    return p;
}

static void test_captions_report(void **state) {
    (void)state;
    char *out = tmp_path();
    const char *argv[] = {"eval", "captions", "--pred", DATA "captions_pred.json", "--refs", DATA "captions_refs.json",
                          "--per-image", "--out", out};
    assert_int_equal(run(9, argv), 0);
    cJSON *rep = NULL, *want = NULL;
    assert_int_equal(vlt_eval_json_load(out, &rep), VLT_OK);
    assert_int_equal(vlt_eval_json_load(DATA "captions_scores.json", &want), VLT_OK);
    const cJSON *num = cJSON_GetObjectItem(rep, "numbers");  // the report's compared numbers (eval/report.h)
    assert_non_null(num);
    double c = cJSON_GetObjectItem(num, "CIDEr")->valuedouble, cw = cJSON_GetObjectItem(want, "cider")->valuedouble;
    assert_true(fabs(c - cw) <= 1e-9 * cw);
    double b4 = cJSON_GetObjectItem(num, "Bleu_4")->valuedouble;
    double b4w = cJSON_GetArrayItem(cJSON_GetObjectItem(want, "bleu"), 3)->valuedouble;
    assert_true(fabs(b4 - b4w) <= 1e-9 * b4w);
    assert_non_null(cJSON_GetObjectItem(num, "per_image.1000.CIDEr"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "details"), "per_image")), 300);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(rep, "inputs")), 2);
    cJSON_Delete(rep);
    cJSON_Delete(want);
    unlink(out);
    free(out);
}

static void test_errors_and_usage(void **state) {
    (void)state;
    char *bad = tmp_path();
    FILE *f = fopen(bad, "w");
    fputs("[{\"image_id\": 1000, \"caption\": \"a\"", f);
    fclose(f);
    const char *malformed[] = {"eval", "captions", "--pred", bad, "--refs", DATA "captions_refs.json"};
    assert_int_equal(run(6, malformed), 1);
    const char *missing_arg[] = {"eval", "captions", "--pred", bad};
    assert_int_equal(run(4, missing_arg), 2);
    const char *unknown_opt[] = {"eval", "retrieval", "--embedings", "x.h5"};
    assert_int_equal(run(4, unknown_opt), 2);
    const char *unknown_sub[] = {"eval", "nonsense"};
    assert_int_equal(run(2, unknown_sub), 2);
    const char *help[] = {"eval", "--help"};
    assert_int_equal(run(2, help), 0);
    const char *not_h5[] = {"eval", "retrieval", "--embeddings", bad};
    assert_int_equal(run(4, not_h5), 1);
    unlink(bad);
    free(bad);
}

static void test_retrieval_report(void **state) {
    (void)state;
    // 3 images, 2 captions each, captions equal to their image: everything at rank 1.
    float img[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, txt[18];
    int64_t ids[3] = {5, 6, 7};
    int32_t idx[6] = {0, 0, 1, 1, 2, 2};
    for (int c = 0; c < 6; c++) memcpy(txt + 3 * c, img + 3 * idx[c], 3 * sizeof(float));
    vlt_eval_embeddings e = {3, 6, 3, img, txt, ids, idx, "toy", "{}"};
    char *h5 = tmp_path(), *out = tmp_path();
    assert_int_equal(vlt_eval_embeddings_write(h5, &e), VLT_OK);
    const char *argv[] = {"eval", "retrieval", "--embeddings", h5, "--out", out, "--block-rows", "2"};
    assert_int_equal(run(8, argv), 0);
    cJSON *rep = NULL;
    assert_int_equal(vlt_eval_json_load(out, &rep), VLT_OK);
    const cJSON *num = cJSON_GetObjectItem(rep, "numbers");
    assert_non_null(num);
    assert_true(cJSON_GetObjectItem(num, "image_to_text.R@1")->valuedouble == 1.0);
    assert_true(cJSON_GetObjectItem(num, "text_to_image.mean_rank")->valuedouble == 1.0);
    assert_true(cJSON_GetObjectItem(num, "image_rows_not_unit")->valuedouble == 0.0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "settings"), "model")->valuestring, "toy");
    cJSON_Delete(rep);
    unlink(h5);
    unlink(out);
    free(h5);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captions_report),
        cmocka_unit_test(test_errors_and_usage),
        cmocka_unit_test(test_retrieval_report),
    };
    return cmocka_run_group_tests_name("eval_cmd", tests, NULL, NULL);
}
