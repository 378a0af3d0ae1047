// test_eval_ptb.c — pycocoevalcap's PTB tokenization (Stanford CoreNLP 3.4.1 run as one stream per
// call) and the scores it feeds, against tests/data/eval/ptb_corpora.json.zst, made with the real
// pycocoevalcap on generated corpora (scripts/reference/make_ptb_fixture.py), and Java's final sigma
// against tests/data/eval/ptb_sigma.json.zst (scripts/reference/make_ptb_sigma_fixture.py).
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zstd.h>

#include "eval/bleu.h"
#include "eval/caption_io.h"
#include "eval/caption_set.h"
#include "eval/cider.h"
#include "eval/ptb_tokenize.h"

#define FIXTURE "tests/data/eval/ptb_corpora.json.zst"

static cJSON *load_zst_json(const char *path) {
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
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) fail_msg("%s: bad JSON", path);
    return root;
}

static const cJSON *item(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) fail_msg("fixture lacks \"%s\"", k);
    return v;
}

static long long id_of(const cJSON *o, const char *k) { return (long long)item(o, k)->valuedouble; }

static void assert_close(double got, double want, const char *what, int corpus, long long id) {
    double tol = 1e-9 * fmax(fabs(got), fabs(want)) + 1e-300;
    if (!(fabs(got - want) <= tol))
        fail_msg("corpus %d %s (image %lld): vlt %.17g, pycocoevalcap %.17g", corpus, what, id, got, want);
}

// Every caption of every corpus, tokenized in pycocoevalcap's two calls (references of all images
// in the "images" order, then the candidates), equals the jar's output.
static void test_ptb_corpora_tokens(void **state) {
    (void)state;
    cJSON *root = load_zst_json(FIXTURE);
    int n_caps = 0, n_bad = 0, c = 0;
    const cJSON *corpus;
    cJSON_ArrayForEach(corpus, item(root, "corpora")) {
        const cJSON *refs = item(corpus, "refs"), *preds = item(corpus, "preds");
        const cJSON *tok_refs = item(corpus, "tok_refs"), *tok_preds = item(corpus, "tok_preds");
        int n_ann = cJSON_GetArraySize(item(refs, "annotations")), n_img = cJSON_GetArraySize(item(refs, "images"));
        const char **stream = malloc(sizeof *stream * (size_t)(n_ann + n_img));
        const char **want = malloc(sizeof *want * (size_t)(n_ann + n_img));
        char **got = calloc((size_t)(n_ann + n_img), sizeof *got);
        int n = 0;
        // references: images in "images" order, each image's captions in annotation order
        const cJSON *img, *a, *p;
        cJSON_ArrayForEach(img, item(refs, "images")) {
            long long id = id_of(img, "id");
            char key[32];
            snprintf(key, sizeof key, "%lld", id);
            int r = 0;
            cJSON_ArrayForEach(a, item(refs, "annotations")) {
                if (id_of(a, "image_id") != id) continue;
                stream[n] = item(a, "caption")->valuestring;
                want[n++] = cJSON_GetArrayItem(item(tok_refs, key), r++)->valuestring;
            }
        }
        int got_lines = 0;
        assert_int_equal(vlt_eval_ptb_tokenize_batch(stream, n, got, &got_lines), VLT_OK);
        assert_int_equal(got_lines, n);
        for (int i = 0; i < n; i++) {
            if (strcmp(got[i], want[i]) != 0 && n_bad++ < 10)
                print_message("corpus %d reference [%s]\n  vlt: [%s]\n  PTB: [%s]\n", c, stream[i], got[i], want[i]);
            free(got[i]);
        }
        n_caps += n;
        // candidates, in the same image order
        n = 0;
        cJSON_ArrayForEach(img, item(refs, "images")) {
            long long id = id_of(img, "id");
            char key[32];
            snprintf(key, sizeof key, "%lld", id);
            cJSON_ArrayForEach(p, preds) if (id_of(p, "image_id") == id) {
                stream[n] = item(p, "caption")->valuestring;
                want[n++] = item(tok_preds, key)->valuestring;
            }
        }
        assert_int_equal(vlt_eval_ptb_tokenize_batch(stream, n, got, &got_lines), VLT_OK);
        for (int i = 0; i < n; i++) {
            if (strcmp(got[i], want[i]) != 0 && n_bad++ < 10)
                print_message("corpus %d candidate [%s]\n  vlt: [%s]\n  PTB: [%s]\n", c, stream[i], got[i], want[i]);
            free(got[i]);
        }
        n_caps += n;
        free(stream);
        free(want);
        free(got);
        c++;
    }
    print_message("%d corpora, %d captions, %d tokenized differently\n", c, n_caps, n_bad);
    assert_true(n_caps >= 20000);
    assert_int_equal(n_bad, 0);
    cJSON_Delete(root);
}

// BLEU-1..4 and CIDEr-D of each corpus, overall and per image, through the COCO loader (which must
// find pycocoevalcap's order itself: the predictions file is shuffled), to 1e-9 relative.
static void test_ptb_corpora_scores(void **state) {
    (void)state;
    cJSON *root = load_zst_json(FIXTURE);
    int c = 0, n_images = 0;
    const cJSON *corpus;
    cJSON_ArrayForEach(corpus, item(root, "corpora")) {
        vlt_eval_caption_set *set = NULL;
        long long *ids = NULL;
        int n = 0;
        if (vlt_eval_captions_from_json(item(corpus, "preds"), "preds", item(corpus, "refs"), "refs", NULL, &set, &ids, &n) !=
            VLT_OK)
            fail_msg("corpus %d: %s", c, vlt_error_message());
        double bleu[4], cider, *bleu_img = malloc(sizeof(double) * 4 * (size_t)n), *cider_img = malloc(sizeof(double) * (size_t)n);
        assert_int_equal(vlt_eval_bleu(set, bleu, bleu_img), VLT_OK);
        assert_int_equal(vlt_eval_cider_d(set, &cider, cider_img), VLT_OK);
        static const char *NAMES[4] = {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"};
        for (int k = 0; k < 4; k++) assert_close(bleu[k], cJSON_GetArrayItem(item(corpus, "bleu"), k)->valuedouble, NAMES[k], c, -1);
        assert_close(cider, item(corpus, "cider")->valuedouble, "CIDEr-D", c, -1);
        for (int i = 0; i < n; i++) {
            char key[32];
            snprintf(key, sizeof key, "%lld", ids[i]);
            const cJSON *per = item(item(corpus, "per_image"), key);
            for (int k = 0; k < 4; k++)
                assert_close(bleu_img[4 * i + k], cJSON_GetArrayItem(item(per, "bleu"), k)->valuedouble, NAMES[k], c, ids[i]);
            assert_close(cider_img[i], item(per, "cider")->valuedouble, "CIDEr-D", c, ids[i]);
        }
        n_images += n;
        free(bleu_img);
        free(cider_img);
        free(ids);
        vlt_eval_caption_set_free(set);
        c++;
    }
    assert_true(c >= 100);
    print_message("%d corpora, %d images scored\n", c, n_images);
    cJSON_Delete(root);
}

// Every BMP character and the emoji blocks, each in a word, alone, before a period and in a URL,
// as one call: equal to the jar line for line (its Unicode letter / digit classes, deletions of
// the characters it does not know, Java's lower-casing).
static void test_ptb_unicode_sweep(void **state) {
    (void)state;
    cJSON *root = load_zst_json("tests/data/eval/ptb_unicode_sweep.json.zst");
    const cJSON *lines = item(root, "lines"), *want = item(root, "tokenized");
    int n = cJSON_GetArraySize(lines), k = 0, bad = 0, got_lines = 0;
    assert_int_equal(cJSON_GetArraySize(want), n);
    const char **text = malloc(sizeof *text * (size_t)n);
    char **got = calloc((size_t)n, sizeof *got);
    const cJSON *l;
    cJSON_ArrayForEach(l, lines) text[k++] = l->valuestring;
    assert_int_equal(vlt_eval_ptb_tokenize_batch(text, n, got, &got_lines), VLT_OK);
    assert_int_equal(got_lines, n);
    k = 0;
    cJSON_ArrayForEach(l, want) {
        if (strcmp(got[k], l->valuestring) != 0 && bad++ < 10)
            print_message("[%s]\n  vlt: [%s]\n  PTB: [%s]\n", text[k], got[k], l->valuestring);
        free(got[k]);
        k++;
    }
    print_message("%d lines, %d different\n", n, bad);
    assert_true(n >= 70000);
    assert_int_equal(bad, 0);
    free(text);
    free(got);
    cJSON_Delete(root);
}

// Java's String.toLowerCase(Locale.ENGLISH) of a capital sigma in every context the JDK's word
// BreakIterator and ConditionalSpecialCasing.isCased distinguish (tests/data/eval/ptb_sigma.json.zst,
// scripts/reference/make_ptb_sigma_fixture.py): each string alone against JavaLowerSigma.java, and
// caption batches through the whole pipeline against pycocoevalcap's jar.
static void test_ptb_final_sigma(void **state) {
    (void)state;
    cJSON *root = load_zst_json("tests/data/eval/ptb_sigma.json.zst");
    int n_lower = 0, bad_lower = 0, n_final = 0;
    const cJSON *pair;
    cJSON_ArrayForEach(pair, item(root, "lower")) {
        const char *in = cJSON_GetArrayItem(pair, 0)->valuestring, *want = cJSON_GetArrayItem(pair, 1)->valuestring;
        char *got = NULL;
        assert_int_equal(vlt_eval_java_lower(in, &got), VLT_OK);
        if (strcmp(got, want) != 0 && bad_lower++ < 10) print_message("lower [%s]\n  vlt:  [%s]\n  Java: [%s]\n", in, got, want);
        n_final += strstr(want, "\xcf\x82") != NULL;  // U+03C2
        free(got);
        n_lower++;
    }
    int n_caps = 0, bad_caps = 0;
    const cJSON *batch;
    cJSON_ArrayForEach(batch, item(root, "batches")) {
        const cJSON *caps = item(batch, "captions"), *want = item(batch, "tokenized");
        int n = cJSON_GetArraySize(caps), k = 0, lines = 0;
        assert_int_equal(cJSON_GetArraySize(want), n);
        const char **text = malloc(sizeof *text * (size_t)n);
        char **got = calloc((size_t)n, sizeof *got);
        assert_non_null(text);
        assert_non_null(got);
        const cJSON *c;
        cJSON_ArrayForEach(c, caps) text[k++] = c->valuestring;
        assert_int_equal(vlt_eval_ptb_tokenize_batch(text, n, got, &lines), VLT_OK);
        assert_int_equal(lines, n);
        k = 0;
        cJSON_ArrayForEach(c, want) {
            if (strcmp(got[k], c->valuestring) != 0 && bad_caps++ < 10)
                print_message("caption [%s]\n  vlt: [%s]\n  PTB: [%s]\n", text[k], got[k], c->valuestring);
            free(got[k]);
            k++;
        }
        n_caps += n;
        free(text);
        free(got);
    }
    print_message("%d strings lower-cased (%d with a final sigma), %d differ from Java; %d captions, %d differ from the jar\n",
                  n_lower, n_final, bad_lower, n_caps, bad_caps);
    assert_true(n_lower >= 20000);
    assert_true(n_final >= 1000);
    assert_true(n_caps >= 20000);
    assert_int_equal(bad_lower, 0);
    assert_int_equal(bad_caps, 0);
    cJSON_Delete(root);
}

static void check_batch(const char *const *caps, int n, const char *const *want) {
    char *got[8] = {0};
    int lines = 0;
    assert_int_equal(vlt_eval_ptb_tokenize_batch(caps, n, got, &lines), VLT_OK);
    assert_int_equal(lines, n);
    for (int i = 0; i < n; i++) {
        if (strcmp(got[i], want[i]) != 0) fail_msg("[%s]: vlt [%s], PTB [%s]", caps[i], got[i], want[i]);
        free(got[i]);
    }
}

// The cases the issue names, with the outputs of the 3.4.1 jar: an apostrophe before a number
// starts a quote ('42nd'), feet and inches split, a vowel-apostrophe-vowel word stays whole
// (hawai'i, ma'am) while rock'n'roll and y'all split.
static void test_ptb_apostrophes(void **state) {
    (void)state;
    const char *caps[] = {"hawai'i ma'am '50 '42nd' 5'10\" tall", "the '90s rock'n'roll y'all o'clock", "'Tis a dog"};
    const char *want[] = {"hawai'i ma'am '50 42nd 5 10 tall", "the '90s rock 'n' roll y' all o'clock", "'t is a dog"};
    check_batch(caps, 3, want);
}

// The jar reads the captions of a call as one stream: "I." at the end of a caption is one token
// or two depending on the next caption's first word.
static void test_ptb_lookahead_across_lines(void **state) {
    (void)state;
    const char *a[] = {"a sign with the letter I.", "The dog runs"};
    const char *a_want[] = {"a sign with the letter i", "the dog runs"};
    check_batch(a, 2, a_want);
    const char *b[] = {"a sign with the letter I.", "dogs run"};
    const char *b_want[] = {"a sign with the letter i.", "dogs run"};
    check_batch(b, 2, b_want);
}

// A line break other than '\n' inside a caption makes the jar's output one line longer: the batch
// says so and gives lines as pycocoevalcap does (later captions get the wrong lines), and the
// loader scores that, as pycocoevalcap does. The figures are pycocoevalcap 1.2's (Bleu(4), Cider)
// on these files (its PTBTokenizer gives {1: ['a dog', 'on grass'], 2: ['a brown dog'], 3: ['a cat']}).
static void test_ptb_foreign_line_break(void **state) {
    (void)state;
    const char *caps[] = {"a dog\ron grass", "a cat", "a bird"};
    char *got[3] = {0};
    int lines = 0;
    assert_int_equal(vlt_eval_ptb_tokenize_batch(caps, 3, got, &lines), VLT_OK);
    assert_int_equal(lines, 4);
    assert_string_equal(got[0], "a dog");
    assert_string_equal(got[1], "on grass");  // as pycocoevalcap: caption 1 gets line 1
    for (int i = 0; i < 3; i++) free(got[i]);
    cJSON *refs = cJSON_Parse("{\"images\":[{\"id\":1},{\"id\":2},{\"id\":3}],\"annotations\":["
                              "{\"image_id\":1,\"caption\":\"a dog\\ron grass\"},{\"image_id\":1,\"caption\":\"a brown dog\"},"
                              "{\"image_id\":2,\"caption\":\"a cat\\u2028sitting\"},{\"image_id\":3,\"caption\":\"a bird\"}]}");
    cJSON *preds = cJSON_Parse("[{\"image_id\":1,\"caption\":\"a dog on grass\"},{\"image_id\":2,\"caption\":\"a cat\"},"
                               "{\"image_id\":3,\"caption\":\"a bird in sky\"}]");
    assert_non_null(refs);
    assert_non_null(preds);
    vlt_eval_caption_set *set = NULL;
    long long *ids = NULL;
    int n = 0;
    assert_int_equal(vlt_eval_captions_from_json(preds, "p.json", refs, "r.json", NULL, &set, &ids, &n), VLT_OK);
    assert_int_equal(n, 3);
    double bleu[4], cider;
    assert_int_equal(vlt_eval_bleu(set, bleu, NULL), VLT_OK);
    assert_int_equal(vlt_eval_cider_d(set, &cider, NULL), VLT_OK);
    const double want_bleu[4] = {0.5999999999400001, 0.41403933555513645, 3.4995140233010913e-06, 1.2098967347241265e-08};
    for (int k = 0; k < 4; k++) assert_true(fabs(bleu[k] - want_bleu[k]) <= 1e-9 * want_bleu[k]);
    assert_true(fabs(cider - 0.9360301828982477) <= 1e-9 * 0.9360301828982477);
    vlt_eval_caption_set_free(set);
    free(ids);
    cJSON_Delete(refs);
    cJSON_Delete(preds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ptb_apostrophes),
        cmocka_unit_test(test_ptb_lookahead_across_lines),
        cmocka_unit_test(test_ptb_foreign_line_break),
        cmocka_unit_test(test_ptb_unicode_sweep),
        cmocka_unit_test(test_ptb_final_sigma),
        cmocka_unit_test(test_ptb_corpora_tokens),
        cmocka_unit_test(test_ptb_corpora_scores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
