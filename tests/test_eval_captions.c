// test_eval_captions.c — the PTB tokenization, BLEU-1..4 and CIDEr-D against the fixtures made by
// the real pycocoevalcap (scripts/reference/make_caption_fixtures.py, tests/data/eval/).
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/rng.h"
#include "eval/bleu.h"
#include "eval/caption_io.h"
#include "eval/caption_set.h"
#include "eval/cider.h"
#include "eval/json_file.h"
#include "eval/ptb_tokenize.h"

#define DATA "tests/data/eval/"

static cJSON *load(const char *path) {
    cJSON *root = NULL;
    vlt_status st = vlt_eval_json_load(path, &root);
    if (st != VLT_OK) fail_msg("%s", vlt_error_message());
    return root;
}

static void assert_close(double got, double want, const char *what, long long id) {
    double tol = 1e-9 * fmax(fabs(got), fabs(want)) + 1e-300;
    if (!(fabs(got - want) <= tol)) fail_msg("%s (image %lld): vlt %.17g, pycocoevalcap %.17g", what, id, got, want);
}

static void check_tok(const char *raw, const char *want, const char *where) {
    char *got = NULL;
    assert_int_equal(vlt_eval_ptb_tokenize(raw, &got), VLT_OK);
    if (strcmp(got, want) != 0) fail_msg("%s: tokenizing [%s]\n  vlt: [%s]\n  PTB: [%s]", where, raw, got, want);
    free(got);
}

// Edge cases tokenized by the Java PTBTokenizer.
static void test_ptb_cases(void **state) {
    (void)state;
    cJSON *cases = load(DATA "ptb_cases.json");
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cases) {
        check_tok(cJSON_GetObjectItem(c, "raw")->valuestring, cJSON_GetObjectItem(c, "tokenized")->valuestring, "ptb_cases");
        n++;
    }
    assert_true(n >= 20);
    cJSON_Delete(cases);
}

// Every fixture caption (references and candidates) tokenizes as the Java tokenizer did.
static void test_ptb_fixture_captions(void **state) {
    (void)state;
    cJSON *refs = load(DATA "captions_refs.json"), *preds = load(DATA "captions_pred.json");
    cJSON *tok = load(DATA "captions_tokenized.json");
    char key[32];
    const cJSON *a;
    int n = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(refs, "annotations")) {
        snprintf(key, sizeof key, "%d", cJSON_GetObjectItem(a, "image_id")->valueint);
        int r = cJSON_GetObjectItem(a, "id")->valueint % 10;  // the script numbers refs 10*image+r
        const cJSON *want = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(tok, key), "refs"), r);
        check_tok(cJSON_GetObjectItem(a, "caption")->valuestring, want->valuestring, "reference");
        n++;
    }
    cJSON_ArrayForEach(a, preds) {
        snprintf(key, sizeof key, "%d", cJSON_GetObjectItem(a, "image_id")->valueint);
        const cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(tok, key), "pred");
        check_tok(cJSON_GetObjectItem(a, "caption")->valuestring, want->valuestring, "candidate");
        n++;
    }
    assert_int_equal(n, 300 * 6);
    cJSON_Delete(refs);
    cJSON_Delete(preds);
    cJSON_Delete(tok);
}

// Builds the caption set from the tokenized fixture, in the order of the scores' per_image list.
static vlt_eval_caption_set *pretokenized_set(const cJSON *tok, const cJSON *per_image) {
    vlt_eval_caption_set *s = vlt_eval_caption_set_new();
    assert_non_null(s);
    const cJSON *img;
    char key[32];
    cJSON_ArrayForEach(img, per_image) {
        snprintf(key, sizeof key, "%d", cJSON_GetObjectItem(img, "image_id")->valueint);
        const cJSON *t = cJSON_GetObjectItem(tok, key), *r;
        const char *refs[16];
        int nr = 0;
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(t, "refs")) refs[nr++] = r->valuestring;
        assert_int_equal(vlt_eval_caption_set_add(s, cJSON_GetObjectItem(t, "pred")->valuestring, refs, nr), VLT_OK);
    }
    return s;
}

static void check_scores(const vlt_eval_caption_set *s, const cJSON *scores) {
    const cJSON *per = cJSON_GetObjectItem(scores, "per_image");
    int n = vlt_eval_caption_set_n_images(s);
    assert_int_equal(n, cJSON_GetArraySize(per));
    double bleu[4], cider, *bimg = malloc((size_t)n * 4 * sizeof *bimg), *cimg = malloc((size_t)n * sizeof *cimg);
    assert_int_equal(vlt_eval_bleu(s, bleu, bimg), VLT_OK);
    assert_int_equal(vlt_eval_cider_d(s, &cider, cimg), VLT_OK);
    for (int k = 0; k < 4; k++) assert_close(bleu[k], cJSON_GetArrayItem(cJSON_GetObjectItem(scores, "bleu"), k)->valuedouble, "BLEU overall", -1);
    assert_close(cider, cJSON_GetObjectItem(scores, "cider")->valuedouble, "CIDEr-D overall", -1);
    int i = 0;
    const cJSON *img;
    cJSON_ArrayForEach(img, per) {
        long long id = cJSON_GetObjectItem(img, "image_id")->valueint;
        for (int k = 0; k < 4; k++)
            assert_close(bimg[i * 4 + k], cJSON_GetArrayItem(cJSON_GetObjectItem(img, "bleu"), k)->valuedouble, "BLEU per image", id);
        assert_close(cimg[i], cJSON_GetObjectItem(img, "cider")->valuedouble, "CIDEr-D per image", id);
        i++;
    }
    free(bimg);
    free(cimg);
}

// Scorers alone: the PTB tokenizer's own output in, pycocoevalcap's scores out.
static void test_scores_pretokenized(void **state) {
    (void)state;
    cJSON *tok = load(DATA "captions_tokenized.json"), *scores = load(DATA "captions_scores.json");
    vlt_eval_caption_set *s = pretokenized_set(tok, cJSON_GetObjectItem(scores, "per_image"));
    check_scores(s, scores);
    vlt_eval_caption_set_free(s);
    cJSON_Delete(tok);
    cJSON_Delete(scores);
}

// End to end: the raw COCO files through the loader and vlt's tokenizer.
static void test_scores_from_coco_files(void **state) {
    (void)state;
    cJSON *scores = load(DATA "captions_scores.json");
    vlt_eval_caption_set *s = NULL;
    long long *ids = NULL;
    int n = 0;
    vlt_status st = vlt_eval_captions_load(DATA "captions_pred.json", DATA "captions_refs.json", NULL, &s, &ids, &n);
    if (st != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(n, 300);
    const cJSON *img;
    int i = 0;
    cJSON_ArrayForEach(img, cJSON_GetObjectItem(scores, "per_image")) assert_int_equal(ids[i++], cJSON_GetObjectItem(img, "image_id")->valueint);
    check_scores(s, scores);
    vlt_eval_caption_set_free(s);
    free(ids);
    cJSON_Delete(scores);
}

// Hand-checked small cases: a perfect single-reference candidate has BLEU 1 (up to the
// constants) and a one-image set has CIDEr-D 0 (log(1 image) = 0 makes every weight 0).
static void test_small_cases(void **state) {
    (void)state;
    vlt_eval_caption_set *s = vlt_eval_caption_set_new();
    const char *r1[] = {"a dog runs on the grass"};
    assert_int_equal(vlt_eval_caption_set_add(s, "a dog runs on the grass", r1, 1), VLT_OK);
    double b[4], c;
    assert_int_equal(vlt_eval_bleu(s, b, NULL), VLT_OK);
    for (int k = 0; k < 4; k++) assert_true(fabs(b[k] - 1.0) < 1e-8);
    assert_int_equal(vlt_eval_cider_d(s, &c, NULL), VLT_OK);
    assert_true(c == 0.0);
    // Two images: candidate 0 equals its only reference; n-grams unique to image 0 get weight
    // log(2) and the cosine is 1 with no length penalty, so image 0 scores 10 * mean_n(1) = 10 on
    // the n-gram orders where its vector is non-zero. "a" is in both images (weight 0).
    const char *r2[] = {"a cat"};
    assert_int_equal(vlt_eval_caption_set_add(s, "", r2, 1), VLT_OK);
    double per[2];
    assert_int_equal(vlt_eval_cider_d(s, &c, per), VLT_OK);
    assert_true(fabs(per[0] - 10.0) < 1e-12);
    assert_true(per[1] == 0.0);
    assert_true(fabs(c - 5.0) < 1e-12);
    vlt_eval_caption_set_free(s);
    vlt_eval_caption_set *e = vlt_eval_caption_set_new();
    assert_int_equal(vlt_eval_bleu(e, b, NULL), VLT_ERR_ARG);
    assert_int_equal(vlt_eval_caption_set_add(e, "x", r1, 0), VLT_ERR_ARG);
    vlt_eval_caption_set_free(e);
}

// Random bytes (quotes, apostrophes, periods, high bytes) never crash the tokenizer, and its
// output is tokens separated by single spaces with no dropped punctuation token left in.
static void test_ptb_random_bytes(void **state) {
    (void)state;
    static const char alphabet[] = "aZ09 '\".,;:!?-()[]{}$%&/\\#@`\t\xc3\xa9nt";
    char buf[64];
    for (int it = 0; it < 3000; it++) {
        int n = (int)vlt_rng_below(11, VLT_RNG_TEST, (uint64_t)it * 100, 63);
        for (int k = 0; k < n; k++)
            buf[k] = alphabet[vlt_rng_below(11, VLT_RNG_TEST, (uint64_t)it * 100 + 1 + (uint64_t)k, sizeof alphabet - 1)];
        buf[n] = '\0';
        char *out = NULL;
        assert_int_equal(vlt_eval_ptb_tokenize(buf, &out), VLT_OK);
        size_t len = strlen(out);
        assert_true(len == 0 || (out[0] != ' ' && out[len - 1] != ' '));
        assert_null(strstr(out, "  "));
        char *save = NULL;
        for (char *t = strtok_r(out, " ", &save); t; t = strtok_r(NULL, " ", &save))
            assert_false(!strcmp(t, ".") || !strcmp(t, ",") || !strcmp(t, "''") || !strcmp(t, "``") || !strcmp(t, "--"));
        free(out);
    }
}

// A caption that ends in a word, in a buffer of exactly its size: the lexer must not read past
// the terminating NUL (ASan caught this on generated captions in the trainer).
static void test_ptb_exact_size_buffer(void **state) {
    (void)state;
    const char *cases[] = {"a small red circle", "x", "can't", "u.s", "3,5", "a-b", "dog's"};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *exact = malloc(strlen(cases[k]) + 1);
        memcpy(exact, cases[k], strlen(cases[k]) + 1);
        char *out = NULL;
        assert_int_equal(vlt_eval_ptb_tokenize(exact, &out), VLT_OK);
        assert_true(strlen(out) > 0);
        free(out);
        free(exact);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ptb_cases),
        cmocka_unit_test(test_ptb_fixture_captions),
        cmocka_unit_test(test_scores_pretokenized),
        cmocka_unit_test(test_scores_from_coco_files),
        cmocka_unit_test(test_small_cases),
        cmocka_unit_test(test_ptb_random_bytes),
        cmocka_unit_test(test_ptb_exact_size_buffer),
    };
    return cmocka_run_group_tests_name("eval_captions", tests, NULL, NULL);
}
