// test_eval_vqa.c — VQAv2 accuracy on hand-checked cases. Each expected value is worked out in
// the comment next to it from the official rules (vqaEval.py, see eval/vqa.h): accuracy =
// mean over the 10 leave-one-out subsets of min(#matches in the subset / 3, 1). With m of the
// 10 answers matching, the m subsets that leave out a match have m-1 matches, the 10-m others m.
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

#include "eval/vqa.h"
#include "eval/vqa_io.h"

// Ten answers: n_a copies of a, then copies of b.
static double acc10(const char *pred, const char *a, int n_a, const char *b) {
    const char *ans[10];
    for (int i = 0; i < 10; i++) ans[i] = i < n_a ? a : b;
    double acc = -1;
    assert_int_equal(vlt_eval_vqa_accuracy(pred, ans, 10, &acc), VLT_OK);
    return acc;
}

static void check_norm(const char *in, const char *want) {
    char *got = NULL;
    assert_int_equal(vlt_eval_vqa_normalize(in, &got), VLT_OK);
    if (strcmp(got, want)) fail_msg("normalize [%s]: got [%s], want [%s]", in, got, want);
    free(got);
}

static void test_leave_one_out(void **state) {
    (void)state;
    // m = 10: every subset has 9 >= 3 matches -> 1.
    assert_true(acc10("yes", "yes", 10, "no") == 1.0);
    // m = 3: 3 subsets with 2 -> 2/3, 7 with 3 -> 1; (3 * 2/3 + 7) / 10 = 0.9.
    assert_true(fabs(acc10("yes", "yes", 3, "no") - 0.9) < 1e-15);
    // m = 2: 2 subsets with 1 -> 1/3, 8 with 2 -> 2/3; (2/3 + 16/3) / 10 = 0.6.
    assert_true(fabs(acc10("yes", "yes", 2, "no") - 0.6) < 1e-15);
    // m = 1: the subset without it has 0, 9 with 1 -> 1/3; 3 / 10 = 0.3.
    assert_true(fabs(acc10("yes", "yes", 1, "no") - 0.3) < 1e-15);
    // m = 4: 4 subsets with 3 -> 1, 6 with 4 -> 1; 1.
    assert_true(acc10("yes", "yes", 4, "no") == 1.0);
    // m = 0.
    assert_true(acc10("maybe", "yes", 5, "no") == 0.0);
}

static void test_normalization(void **state) {
    (void)state;
    check_norm("Two", "2");                    // lower-cased, number word -> digit
    check_norm("  The Dog\n", "dog");          // strip, article dropped
    check_norm("yes.", "yes");                 // period not before a digit is deleted
    check_norm("3.5", "3.5");                  // period before a digit stays
    check_norm("1,000", "1000");               // digit,digit anywhere: punctuation deleted, not spaced
    check_norm("left,right", "left right");    // ',' not next to a space: replaced by a space
    check_norm("left , right", "left right");  // next to a space: deleted (then split/join)
    check_norm("dont know", "don't know");     // contractions table
    check_norm("none", "0");
    check_norm("an apple", "apple");
    check_norm("x-ray", "x ray");
    char *p = NULL;  // 40 periods: re.sub(..., 32) deletes only the first 32
    char dots[41];
    memset(dots, '.', 40);
    dots[40] = '\0';
    assert_int_equal(vlt_eval_vqa_punctuation(dots, &p), VLT_OK);
    assert_int_equal(strlen(p), 8);
    free(p);
    // An empty answer (fuzz_vqa: the digit-comma-digit test read past its end). On the heap so
    // that the sanitizer build sees such a read.
    char *empty = strdup("");
    assert_int_equal(vlt_eval_vqa_punctuation(empty, &p), VLT_OK);
    assert_string_equal(p, "");
    free(p);
    free(empty);
}

static void test_official_quirks(void **state) {
    (void)state;
    // Ground truths are only punctuation-processed, and only when they differ: ten identical
    // "t-shirt" stay "t-shirt" while the prediction becomes "t shirt" -> no match -> 0.
    assert_true(acc10("t-shirt", "t-shirt", 10, "x") == 0.0);
    // Nine "t-shirt" + "shirt" differ -> processed to "t shirt" -> m = 9 -> 1.
    assert_true(acc10("t-shirt", "t-shirt", 9, "shirt") == 1.0);
    // Articles are not removed from ground truths: "a dog" x7 + "dog" x3, prediction "The Dog"
    // -> "dog" matches only the 3 -> 0.9.
    assert_true(fabs(acc10("  The Dog\n", "dog", 3, "a dog") - 0.9) < 1e-15);
    // Number words in the prediction: "Two" -> "2" against 2 x "2" -> m = 2 -> 0.6.
    assert_true(fabs(acc10("Two", "2", 2, "3") - 0.6) < 1e-15);
    // "1,000" -> "1000" against 3 x "1000" -> 0.9.
    assert_true(fabs(acc10("1,000", "1000", 3, "many") - 0.9) < 1e-15);
}

static char *write_tmp(const char *text) {
    char *path = strdup("/tmp/vlt_test_vqa_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

// Per question type, as the official vqaEval.py's accQuesType: the mean accuracy of each
// "question_type"'s questions, types in question_id order of first appearance.
static void test_question_types(void **state) {
    (void)state;
    char *refs = write_tmp(
        "{\"annotations\": ["
        "{\"question_id\": 3, \"question_type\": \"is the\", \"answer_type\": \"yes/no\", \"answers\": [\"no\",\"no\",\"no\",\"no\",\"no\",\"no\",\"no\",\"no\",\"no\",\"no\"]},"
        "{\"question_id\": 1, \"question_type\": \"is the\", \"answer_type\": \"yes/no\", \"answers\": [\"yes\",\"yes\",\"yes\",\"no\",\"no\",\"no\",\"no\",\"no\",\"no\",\"no\"]},"
        "{\"question_id\": 2, \"question_type\": \"how many\", \"answer_type\": \"number\", \"answers\": [\"2\",\"2\",\"2\",\"2\",\"2\",\"2\",\"2\",\"2\",\"2\",\"2\"]},"
        "{\"question_id\": 4, \"answers\": [\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\"]}]}");
    char *pred = write_tmp("[{\"question_id\": 1, \"answer\": \"yes\"}, {\"question_id\": 2, \"answer\": \"3\"},"
                           " {\"question_id\": 3, \"answer\": \"no\"}, {\"question_id\": 4, \"answer\": \"red\"}]");
    vlt_eval_vqa_result r;
    assert_int_equal(vlt_eval_vqa_files(pred, refs, 0, &r), VLT_OK);
    assert_int_equal(r.n_questions, 4);
    assert_int_equal(r.n_qtypes, 2);  // question 4 has no question_type: in the overall only
    assert_string_equal(r.qtype_name[0], "is the");   // question_id 1 comes first
    assert_string_equal(r.qtype_name[1], "how many");
    assert_int_equal(r.qtype_count[0], 2);
    assert_true(fabs(r.qtype_accuracy[0] - (0.9 + 1.0) / 2) < 1e-15);
    assert_true(fabs(r.qtype_accuracy[1] - 0.0) < 1e-15);
    assert_true(fabs(r.accuracy - (0.9 + 0 + 1 + 1) / 4) < 1e-15);
    unlink(refs);
    unlink(pred);
    free(refs);
    free(pred);
}

static void test_files(void **state) {
    (void)state;
    char *refs = write_tmp(
        "{\"annotations\": ["
        "{\"question_id\": 1, \"answer_type\": \"yes/no\", \"answers\": [{\"answer\": \"yes\"},{\"answer\": \"yes\"},"
        "{\"answer\": \"yes\"},{\"answer\": \"no\"},{\"answer\": \"no\"},{\"answer\": \"no\"},{\"answer\": \"no\"},"
        "{\"answer\": \"no\"},{\"answer\": \"no\"},{\"answer\": \"no\"}]},"
        "{\"question_id\": 2, \"answer_type\": \"number\", \"answers\": [\"2\",\"2\",\"2\",\"2\",\"2\",\"2\",\"2\",\"2\",\"2\",\"2\"]}]}");
    char *pred = write_tmp("[{\"question_id\": 2, \"answer\": \"two\"}, {\"question_id\": 1, \"answer\": \"Yes\"}]");
    vlt_eval_vqa_result r;
    assert_int_equal(vlt_eval_vqa_files(pred, refs, 0, &r), VLT_OK);
    assert_int_equal(r.n_questions, 2);
    assert_true(fabs(r.accuracy - (0.9 + 1.0) / 2) < 1e-15);  // q1: m = 3 -> 0.9; q2: "two" -> "2", m = 10 -> 1
    assert_int_equal(r.n_types, 2);
    assert_string_equal(r.type_name[0], "yes/no");
    assert_true(fabs(r.type_accuracy[0] - 0.9) < 1e-15);

    char *missing = write_tmp("[{\"question_id\": 2, \"answer\": \"two\"}]");
    assert_int_equal(vlt_eval_vqa_files(missing, refs, 0, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "question_id 1"));
    assert_int_equal(vlt_eval_vqa_files(missing, refs, 1, &r), VLT_OK);  // --allow-subset
    assert_int_equal(r.n_questions, 1);
    char *unknown = write_tmp("[{\"question_id\": 2, \"answer\": \"two\"}, {\"question_id\": 1, \"answer\": \"y\"}, {\"question_id\": 9, \"answer\": \"x\"}]");
    assert_int_equal(vlt_eval_vqa_files(unknown, refs, 0, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "item 2"));
    char *bad = write_tmp("[{\"question_id\": 2, \"answer\": ");
    assert_int_equal(vlt_eval_vqa_files(bad, refs, 0, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), bad));
    char *noans = write_tmp("[{\"question_id\": 2, \"answer\": 3}, {\"question_id\": 1, \"answer\": \"y\"}]");
    assert_int_equal(vlt_eval_vqa_files(noans, refs, 0, &r), VLT_ERR_FORMAT);
    assert_int_equal(vlt_eval_vqa_files("/nonexistent/p.json", refs, 0, &r), VLT_ERR_IO);
    char *paths[] = {refs, pred, missing, unknown, bad, noans};
    for (int i = 0; i < 6; i++) { unlink(paths[i]); free(paths[i]); }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leave_one_out),
        cmocka_unit_test(test_normalization),
        cmocka_unit_test(test_official_quirks),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_question_types),
    };
    return cmocka_run_group_tests_name("eval_vqa", tests, NULL, NULL);
}
