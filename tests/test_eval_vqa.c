// test_eval_vqa.c — VQAv2 accuracy on hand-checked cases, and against both versions of the
// official vqaEval.py on the fixture tests/data/vqa_eval (scripts/reference/make_vqa_eval_fixture.py).
// Each hand-checked value is worked out in
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
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <cJSON.h>
#include <zstd.h>

#include "eval/vqa.h"
#include "eval/vqa_io.h"

// Ten answers: n_a copies of a, then copies of b, scored by version v.
static double acc10v(vlt_eval_vqa_version v, const char *pred, const char *a, int n_a, const char *b) {
    const char *ans[10];
    for (int i = 0; i < 10; i++) ans[i] = i < n_a ? a : b;
    double acc = -1;
    assert_int_equal(vlt_eval_vqa_accuracy(v, pred, ans, 10, &acc), VLT_OK);
    return acc;
}
static double acc10(const char *pred, const char *a, int n_a, const char *b) { return acc10v(VLT_EVAL_VQA_CURRENT, pred, a, n_a, b); }
static double acc10_2016(const char *pred, const char *a, int n_a, const char *b) { return acc10v(VLT_EVAL_VQA_2016, pred, a, n_a, b); }

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

static void test_official_quirks_2016(void **state) {
    (void)state;
    // Ground truths are only punctuation-processed, and only when they differ: ten identical
    // "t-shirt" stay "t-shirt" while the prediction becomes "t shirt" -> no match -> 0.
    assert_true(acc10_2016("t-shirt", "t-shirt", 10, "x") == 0.0);
    // Nine "t-shirt" + "shirt" differ -> processed to "t shirt" -> m = 9 -> 1.
    assert_true(acc10_2016("t-shirt", "t-shirt", 9, "shirt") == 1.0);
    // Articles are not removed from ground truths: "a dog" x7 + "dog" x3, prediction "The Dog"
    // -> "dog" matches only the 3 -> 0.9.
    assert_true(fabs(acc10_2016("  The Dog\n", "dog", 3, "a dog") - 0.9) < 1e-15);
    // Number words in the prediction: "Two" -> "2" against 2 x "2" -> m = 2 -> 0.6.
    assert_true(fabs(acc10_2016("Two", "2", 2, "3") - 0.6) < 1e-15);
    // "1,000" -> "1000" against 3 x "1000" -> 0.9.
    assert_true(fabs(acc10_2016("1,000", "1000", 3, "many") - 0.9) < 1e-15);
    // Answers are not stripped: " yes" x4 + "yes" x6 differ, punctuation leaves " yes" -> m = 6.
    assert_true(acc10_2016("yes", " yes", 4, "yes") == 1.0);
    assert_true(fabs(acc10_2016("yes", "yes", 2, " yes") - 0.6) < 1e-15);
}

// The official code since a013f00 (March 2021), the default.
static void test_official_current(void **state) {
    (void)state;
    // Ten identical "t-shirt": nothing normalized, the prediction only stripped -> matches -> 1
    // (2016: 0), and "T-Shirt" does not match (no lower-casing either).
    assert_true(acc10("t-shirt\n", "t-shirt", 10, "x") == 1.0);
    assert_true(acc10("T-Shirt", "t-shirt", 10, "x") == 0.0);
    assert_true(acc10_2016("t-shirt\n", "t-shirt", 10, "x") == 0.0);
    // Identical once stripped: " yes\t" x4 + "yes" x6 -> all "yes": nothing normalized, so the
    // prediction "Yes" does not match (2016: the answers differ, "yes" -> m = 6 -> 1).
    assert_true(acc10("Yes", " yes\t", 4, "yes") == 0.0);
    assert_true(acc10_2016("Yes", " yes\t", 4, "yes") == 1.0);
    assert_true(acc10("yes ", " yes\t", 4, "yes") == 1.0);
    // Differing answers are normalized fully: "a dog" x7 + "Dog" x3 all become "dog" -> 1
    // (2016: only the 3 "Dog" ... not even those: "Dog" != "dog" -> 0).
    assert_true(acc10("  The Dog\n", "dog", 3, "a dog") == 1.0);
    assert_true(acc10_2016("the dog", "Dog", 3, "a dog") == 0.0);
    // Number words in the answers too: "two" x2 + "2" x1 + "3" x7 -> "2" x3 -> 0.9.
    const char *ans[10] = {"two", "two", "2", "3", "3", "3", "3", "3", "3", "3"};
    double acc = -1;
    assert_int_equal(vlt_eval_vqa_accuracy(VLT_EVAL_VQA_CURRENT, "Two", ans, 10, &acc), VLT_OK);
    assert_true(fabs(acc - 0.9) < 1e-15);
    assert_int_equal(vlt_eval_vqa_accuracy(VLT_EVAL_VQA_2016, "Two", ans, 10, &acc), VLT_OK);
    assert_true(fabs(acc - 0.3) < 1e-15);  // only the one "2"
    // Scoring in place twice (a question_id annotated twice): the second scoring starts from the
    // processed answers. 40 periods + "x": the first pass deletes 32 periods, the second the rest.
    char *a2[2] = {strdup("........................................x"), strdup("y")};
    assert_int_equal(vlt_eval_vqa_score(VLT_EVAL_VQA_CURRENT, "x", a2, NULL, 2, &acc), VLT_OK);
    assert_string_equal(a2[0], "........x");
    assert_true(acc == 0.0);  // "........x" != "x"
    assert_int_equal(vlt_eval_vqa_score(VLT_EVAL_VQA_CURRENT, "x", a2, NULL, 2, &acc), VLT_OK);
    assert_string_equal(a2[0], "x");
    assert_true(fabs(acc - 1.0 / 6) < 1e-15);  // match: subsets {y} -> 0, {x} -> 1/3; mean 1/6
    free(a2[0]);
    free(a2[1]);
    // Equal answer dicts (same "same" key and string) leave the subsets together.
    char *a3[4] = {strdup("red"), strdup("red"), strdup("red"), strdup("blue")};
    int same[4] = {0, 0, 2, 3};
    assert_int_equal(vlt_eval_vqa_score(VLT_EVAL_VQA_CURRENT, "red", a3, same, 4, &acc), VLT_OK);
    // leave out a3[0] or a3[1]: both go -> 1 match -> 1/3; leave out a3[2]: 2 -> 2/3; a3[3]: 3 -> 1
    assert_true(fabs(acc - (1.0 / 3 + 1.0 / 3 + 2.0 / 3 + 1) / 4) < 1e-15);
    for (int j = 0; j < 4; j++) free(a3[j]);
}

// Soft scores: the accuracy a prediction of each distinct answer would get.
static void test_soft_scores(void **state) {
    (void)state;
    const char *ans[10] = {"2", "2", "3", "2", "4", "3", "2", "2", "2", "many"};
    const char *uniq[10];
    double score[10];
    int u = vlt_eval_vqa_soft_scores(ans, 10, uniq, score);
    assert_int_equal(u, 4);
    assert_string_equal(uniq[0], "2");
    assert_string_equal(uniq[1], "3");
    assert_string_equal(uniq[2], "4");
    assert_string_equal(uniq[3], "many");
    for (int k = 0; k < u; k++) {
        double acc;
        assert_int_equal(vlt_eval_vqa_accuracy(VLT_EVAL_VQA_CURRENT, uniq[k], ans, 10, &acc), VLT_OK);
        assert_true(score[k] == acc);
    }
    assert_true(score[0] == 1.0);                      // 6 of 10
    assert_true(fabs(score[1] - 0.6) < 1e-15);         // 2 of 10
    assert_true(fabs(score[2] - 0.3) < 1e-15);         // 1 of 10
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
// "question_type"'s questions, types in order of first appearance in the annotation file (the
// official scoring order).
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
    assert_int_equal(vlt_eval_vqa_files(pred, refs, VLT_EVAL_VQA_CURRENT, 0, &r), VLT_OK);
    assert_int_equal(r.n_questions, 4);
    assert_int_equal(r.n_qtypes, 2);  // question 4 has no question_type: in the overall only
    assert_string_equal(r.qtypes[0].name, "is the");   // first in the file
    assert_string_equal(r.qtypes[1].name, "how many");
    assert_int_equal(r.qtypes[0].count, 2);
    assert_true(fabs(r.qtypes[0].accuracy - (0.9 + 1.0) / 2) < 1e-15);
    assert_true(fabs(r.qtypes[1].accuracy - 0.0) < 1e-15);
    assert_true(fabs(r.accuracy - (0.9 + 0 + 1 + 1) / 4) < 1e-15);
    vlt_eval_vqa_result_free(&r);
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
    // q1: its answer dicts have no answer_id, so the three {"answer": "yes"} are *equal dicts* and
    // the official leave-one-out drops all three together: leaving out a "yes" leaves 0 matches,
    // leaving out a "no" 3 -> 7/10 = 0.7 (with distinct dicts it would be 0.9).
    // q2: ten identical "2": "two" is not normalized -> 0 (2016: "two" -> "2", 1).
    assert_int_equal(vlt_eval_vqa_files(pred, refs, VLT_EVAL_VQA_CURRENT, 0, &r), VLT_OK);
    assert_int_equal(r.version, VLT_EVAL_VQA_CURRENT);
    assert_int_equal(r.n_questions, 2);
    assert_true(fabs(r.accuracy - (0.7 + 0.0) / 2) < 1e-15);
    vlt_eval_vqa_result_free(&r);
    assert_int_equal(vlt_eval_vqa_files(pred, refs, VLT_EVAL_VQA_2016, 0, &r), VLT_OK);
    assert_int_equal(r.n_questions, 2);
    assert_true(fabs(r.accuracy - (0.7 + 1.0) / 2) < 1e-15);
    assert_int_equal(r.n_types, 2);
    assert_string_equal(r.types[0].name, "yes/no");
    assert_true(fabs(r.types[0].accuracy - 0.7) < 1e-15);
    vlt_eval_vqa_result_free(&r);

    char *missing = write_tmp("[{\"question_id\": 2, \"answer\": \"two\"}]");
    assert_int_equal(vlt_eval_vqa_files(missing, refs, VLT_EVAL_VQA_CURRENT, 0, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "question_id 1"));
    assert_int_equal(vlt_eval_vqa_files(missing, refs, VLT_EVAL_VQA_CURRENT, 1, &r), VLT_OK);  // --allow-subset
    assert_int_equal(r.n_questions, 1);
    vlt_eval_vqa_result_free(&r);
    char *unknown = write_tmp("[{\"question_id\": 2, \"answer\": \"two\"}, {\"question_id\": 1, \"answer\": \"y\"}, {\"question_id\": 9, \"answer\": \"x\"}]");
    assert_int_equal(vlt_eval_vqa_files(unknown, refs, VLT_EVAL_VQA_CURRENT, 0, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "item 2"));
    char *bad = write_tmp("[{\"question_id\": 2, \"answer\": ");
    assert_int_equal(vlt_eval_vqa_files(bad, refs, VLT_EVAL_VQA_CURRENT, 0, &r), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), bad));
    char *noans = write_tmp("[{\"question_id\": 2, \"answer\": 3}, {\"question_id\": 1, \"answer\": \"y\"}]");
    assert_int_equal(vlt_eval_vqa_files(noans, refs, VLT_EVAL_VQA_CURRENT, 0, &r), VLT_ERR_FORMAT);
    assert_int_equal(vlt_eval_vqa_files("/nonexistent/p.json", refs, VLT_EVAL_VQA_CURRENT, 0, &r), VLT_ERR_IO);
    char *paths[] = {refs, pred, missing, unknown, bad, noans};
    for (int i = 0; i < 6; i++) { unlink(paths[i]); free(paths[i]); }
}

// A question_id annotated twice: the last annotation is scored once per appearance (the official
// quesIds list every annotation, its qa dict keeps the last); a question_id predicted twice:
// the last prediction. Both counted for the warning.
static void test_duplicates(void **state) {
    (void)state;
    char *refs = write_tmp(
        "{\"annotations\": ["
        "{\"question_id\": 7, \"answer_type\": \"other\", \"question_type\": \"what\", \"answers\": [\"cat\",\"cat\",\"cat\",\"cat\",\"cat\",\"cat\",\"cat\",\"cat\",\"cat\",\"cat\"]},"
        "{\"question_id\": 8, \"answer_type\": \"other\", \"question_type\": \"what\", \"answers\": [\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\"]},"
        "{\"question_id\": 7, \"answer_type\": \"yes/no\", \"question_type\": \"is\", \"answers\": [\"dog\",\"dog\",\"dog\",\"dog\",\"dog\",\"dog\",\"dog\",\"dog\",\"dog\",\"dog\"]}]}");
    char *pred = write_tmp("[{\"question_id\": 8, \"answer\": \"blue\"}, {\"question_id\": 7, \"answer\": \"dog\"},"
                           " {\"question_id\": 8, \"answer\": \"red\"}]");
    vlt_eval_vqa_result r;
    assert_int_equal(vlt_eval_vqa_files(pred, refs, VLT_EVAL_VQA_CURRENT, 0, &r), VLT_OK);
    assert_int_equal(r.n_dup_annotations, 1);
    assert_int_equal(r.first_dup_annotation, 7);
    assert_int_equal(r.n_dup_predictions, 1);
    assert_int_equal(r.first_dup_prediction, 8);
    assert_int_equal(r.n_questions, 3);  // 7 (with "dog"), 8 ("red"), 7 again
    assert_true(r.accuracy == 1.0);
    assert_int_equal(r.n_ids, 2);
    assert_int_equal(r.qid[0], 7);
    assert_int_equal(r.qid[1], 8);
    assert_int_equal(r.n_types, 2);  // "yes/no" (7's last annotation, twice) and "other"
    assert_string_equal(r.types[0].name, "yes/no");
    assert_int_equal(r.types[0].count, 2);
    assert_int_equal(r.n_qtypes, 2);
    vlt_eval_vqa_result_free(&r);
    unlink(refs);
    unlink(pred);
    free(refs);
    free(pred);
}

// Any number of answer and question types (once capped at 16 and 256).
static void test_many_types(void **state) {
    (void)state;
    char *text = malloc(1 << 20), *ptext = malloc(1 << 18);
    size_t k = (size_t)sprintf(text, "{\"annotations\": ["), pk = (size_t)sprintf(ptext, "[");
    for (int i = 0; i < 300; i++) {
        k += (size_t)sprintf(text + k, "%s{\"question_id\": %d, \"answer_type\": \"type %d\", \"question_type\": \"qtype %d\", "
                             "\"answers\": [\"a\",\"b\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\"]}", i ? "," : "", i, i % 40, i);
        pk += (size_t)sprintf(ptext + pk, "%s{\"question_id\": %d, \"answer\": \"%s\"}", i ? "," : "", i, i % 40 == 39 ? "b" : "a");
    }
    sprintf(text + k, "]}");
    sprintf(ptext + pk, "]");
    char *refs = write_tmp(text), *pred = write_tmp(ptext);
    vlt_eval_vqa_result r;
    assert_int_equal(vlt_eval_vqa_files(pred, refs, VLT_EVAL_VQA_CURRENT, 0, &r), VLT_OK);
    assert_int_equal(r.n_types, 40);
    assert_int_equal(r.n_qtypes, 300);
    assert_string_equal(r.types[39].name, "type 39");
    assert_int_equal(r.types[39].count, 7);  // 39, 79, ..., 279
    assert_true(fabs(r.types[39].accuracy - 0.3) < 1e-15);  // one "b" of ten
    assert_true(r.types[16].accuracy == 1.0);
    vlt_eval_vqa_result_free(&r);
    unlink(refs);
    unlink(pred);
    free(refs);
    free(pred);
    free(text);
    free(ptext);
}

static char *read_zst(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *z = malloc((size_t)n);
    assert_non_null(z);
    assert_int_equal(fread(z, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unsigned long long size = ZSTD_getFrameContentSize(z, (size_t)n);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) fail_msg("%s: not a zstd frame with a size", path);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    size_t got = ZSTD_decompress(text, (size_t)size, z, (size_t)n);
    if (ZSTD_isError(got) || got != size) fail_msg("%s: %s", path, ZSTD_getErrorName(got));
    text[size] = '\0';
    free(z);
    return text;
}

static const cJSON *item(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) fail_msg("fixture lacks \"%s\"", k);
    return v;
}

// The official vqaEval.py rounds 100 x mean to 2 decimals; vlt's unrounded value must round to it.
static void check_rounded(const char *what, double vlt, double official) {
    if (fabs(100 * vlt - official) > 0.005 + 1e-9) fail_msg("%s: vlt %.6f, official (rounded) %.2f", what, 100 * vlt, official);
}

static void check_groups(const char *what, const vlt_eval_vqa_group *g, int n, const cJSON *raw, const cJSON *rounded) {
    assert_int_equal(n, cJSON_GetArraySize(raw));
    for (int t = 0; t < n; t++) {
        double want = item(raw, g[t].name)->valuedouble;
        if (g[t].accuracy != want) fail_msg("%s %s: vlt %.17g, official %.17g", what, g[t].name, g[t].accuracy, want);
        check_rounded(g[t].name, g[t].accuracy, item(rounded, g[t].name)->valuedouble);
    }
}

// Both official versions, run unmodified (Python 2.7) on the generated VQAv2-format data:
// every question's accuracy bit for bit, the overall and per-type means bit for bit (unrounded,
// as the official setAccuracy computes them before rounding) and rounded as the official prints.
static void check_fixture(vlt_eval_vqa_version v, const char *official_path) {
    char *ann = read_zst("tests/data/vqa_eval/annotations.json.zst"), *res = read_zst("tests/data/vqa_eval/results.json.zst");
    char *off_text = read_zst(official_path);
    cJSON *off = cJSON_Parse(off_text);
    assert_non_null(off);
    char *refs = write_tmp(ann), *pred = write_tmp(res);
    vlt_eval_vqa_result r;
    assert_int_equal(vlt_eval_vqa_files(pred, refs, v, 0, &r), VLT_OK);
    const cJSON *scorings = item(off, "scorings"), *s;
    assert_int_equal(r.n_questions, cJSON_GetArraySize(scorings));
    assert_int_equal(r.n_ids, cJSON_GetArraySize(item(off, "evalQA")));
    assert_true(r.n_dup_annotations > 0 && r.n_dup_predictions > 0);
    // The official per-question value is the last scoring of the id (evalQA is keyed by id).
    double *want = malloc((size_t)r.n_ids * sizeof *want);
    for (int i = 0; i < r.n_ids; i++) want[i] = NAN;
    cJSON_ArrayForEach(s, scorings) {
        long long qid = (long long)cJSON_GetArrayItem(s, 0)->valuedouble;
        int i = 0;
        while (i < r.n_ids && r.qid[i] != qid) i++;
        if (i == r.n_ids) fail_msg("official scored question_id %lld, vlt did not", qid);
        want[i] = cJSON_GetArrayItem(s, 1)->valuedouble;
    }
    int equal = 0;
    for (int i = 0; i < r.n_ids; i++) {
        if (r.q_accuracy[i] == want[i]) equal++;
        else print_message("%s: question_id %lld: vlt %.17g, official %.17g\n", vlt_eval_vqa_version_name(v), r.qid[i], r.q_accuracy[i], want[i]);
    }
    print_message("%s: %d of %d questions (%d scorings) equal to the official, overall %.17g\n", vlt_eval_vqa_version_name(v),
                  equal, r.n_ids, r.n_questions, r.accuracy);
    assert_int_equal(equal, r.n_ids);
    assert_true(r.accuracy == item(off, "overall")->valuedouble);
    const cJSON *acc = item(off, "accuracy");
    check_rounded("overall", r.accuracy, item(acc, "overall")->valuedouble);
    check_groups("answer type", r.types, r.n_types, item(off, "per_answer_type"), item(acc, "perAnswerType"));
    check_groups("question type", r.qtypes, r.n_qtypes, item(off, "per_question_type"), item(acc, "perQuestionType"));
    assert_true(r.n_types > 16);
    vlt_eval_vqa_result_free(&r);
    free(want);
    cJSON_Delete(off);
    unlink(refs);
    unlink(pred);
    free(refs);
    free(pred);
    free(ann);
    free(res);
    free(off_text);
}

static void test_official_fixture_2021(void **state) {
    (void)state;
    check_fixture(VLT_EVAL_VQA_CURRENT, "tests/data/vqa_eval/official_2021.json.zst");
}

static void test_official_fixture_2016(void **state) {
    (void)state;
    check_fixture(VLT_EVAL_VQA_2016, "tests/data/vqa_eval/official_2016.json.zst");
}

static void test_version_names(void **state) {
    (void)state;
    vlt_eval_vqa_version v = VLT_EVAL_VQA_2016;
    assert_true(vlt_eval_vqa_version_parse("vqaeval-2021", &v) && v == VLT_EVAL_VQA_CURRENT);
    assert_true(vlt_eval_vqa_version_parse("vqaeval-2016", &v) && v == VLT_EVAL_VQA_2016);
    assert_false(vlt_eval_vqa_version_parse("vqaeval-2019", &v));
    assert_string_equal(vlt_eval_vqa_version_name(VLT_EVAL_VQA_CURRENT), "vqaeval-2021");
}

// Through the built `vlt eval vqa`: --scorer picks the version and the report names it, the
// numbers are the official ones (bit for bit), --per-question gives every question's accuracy,
// repeated ids are warned about, and an unknown scorer is a usage error.
static void test_cli(void **state) {
    (void)state;
    const char *build = getenv("VLT_BUILD");
    char vlt[512];
    snprintf(vlt, sizeof vlt, "%s/vlt", build ? build : "build");
    if (access(vlt, X_OK) != 0) {
        print_message("skipped: %s not built\n", vlt);
        return;
    }
    char *ann = read_zst("tests/data/vqa_eval/annotations.json.zst"), *res = read_zst("tests/data/vqa_eval/results.json.zst");
    char *refs = write_tmp(ann), *pred = write_tmp(res), *rep = write_tmp(""), *err = write_tmp("");
    const char *versions[2] = {"vqaeval-2016", "vqaeval-2021"};
    const char *official[2] = {"tests/data/vqa_eval/official_2016.json.zst", "tests/data/vqa_eval/official_2021.json.zst"};
    for (int k = 0; k < 2; k++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "%s eval vqa --pred %s --refs %s %s%s --per-question --out %s > /dev/null 2> %s", vlt, pred, refs,
                 k == 0 ? "--scorer " : "", k == 0 ? versions[0] : "", rep, err);  // the default is vqaeval-2021
        assert_int_equal(system(cmd), 0);
        FILE *f = fopen(rep, "rb");
        char *text = malloc(1 << 22);
        size_t n = fread(text, 1, (1 << 22) - 1, f);
        text[n] = 0;
        fclose(f);
        cJSON *r = cJSON_Parse(text);
        free(text);
        assert_non_null(r);
        assert_string_equal(item(item(r, "settings"), "scorer")->valuestring, versions[k]);
        char *off_text = read_zst(official[k]);
        cJSON *off = cJSON_Parse(off_text);
        const cJSON *nums = item(r, "numbers");
        assert_true(item(nums, "accuracy")->valuedouble == item(off, "overall")->valuedouble);
        const cJSON *s;
        int checked = 0;
        cJSON_ArrayForEach(s, item(off, "evalQA")) {  // rounded official per-question values
            char key[64];
            snprintf(key, sizeof key, "per_question.%s", s->string);
            double v = 100 * item(nums, key)->valuedouble;
            assert_true(fabs(v - s->valuedouble) <= 0.005 + 1e-9);
            checked++;
        }
        assert_int_equal(checked, 3000);
        cJSON_Delete(off);
        free(off_text);
        cJSON_Delete(r);
        f = fopen(err, "rb");
        char warn[2048] = "";
        n = fread(warn, 1, sizeof warn - 1, f);
        warn[n] = 0;
        fclose(f);
        assert_non_null(strstr(warn, "40 annotation(s) repeat an earlier question_id"));
        assert_non_null(strstr(warn, "30 prediction(s) repeat an earlier question_id"));
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s eval vqa --pred %s --refs %s --scorer vqaeval-2019 > /dev/null 2>&1", vlt, pred, refs);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    char *paths[] = {refs, pred, rep, err};
    for (int i = 0; i < 4; i++) { unlink(paths[i]); free(paths[i]); }
    free(ann);
    free(res);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leave_one_out),
        cmocka_unit_test(test_normalization),
        cmocka_unit_test(test_official_quirks_2016),
        cmocka_unit_test(test_official_current),
        cmocka_unit_test(test_soft_scores),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_question_types),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_many_types),
        cmocka_unit_test(test_official_fixture_2021),
        cmocka_unit_test(test_official_fixture_2016),
        cmocka_unit_test(test_version_names),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests_name("eval_vqa", tests, NULL, NULL);
}
