// test_data_vqa.c — VQA sets into shards (data/vqa_pack.h): the official VQAv2 and VQA-CP JSON,
// the JSON-lines format, skips by reason, the last of repeated annotations, the answer
// vocabulary and its file; and, through the built `vlt shards`, the processed answers and soft
// scores of the official evaluation's normalization (eval/vqa.h, which this suite cannot link).
#include <setjmp.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "data/image.h"
#include "data/tar.h"
#include "data/vqa_pack.h"
#include "data/webdataset.h"

static char g_dir[64];

static void write_file(const char *rel, const void *data, size_t len) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_text(const char *rel, const char *text) { write_file(rel, text, strlen(text)); }

static void write_jpeg(const char *rel, int w, int h) {
    vlt_image img;
    assert_int_equal(vlt_image_alloc(&img, w, h), VLT_OK);
    for (int i = 0; i < w * h * 3; i++) img.rgb[i] = (uint8_t)(i * 7);
    uint8_t *jpg;
    size_t len;
    assert_int_equal(vlt_image_encode_jpeg(&img, 90, &jpg, &len), VLT_OK);
    write_file(rel, jpg, len);
    free(jpg);
    vlt_image_free(&img);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-vqa-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char p[128];
    snprintf(p, sizeof p, "%s/train2014", g_dir);
    mkdir(p, 0755);
    write_jpeg("COCO_val2014_000000000042.jpg", 40, 30);
    write_jpeg("train2014/COCO_train2014_000000000007.jpg", 20, 20);
    write_jpeg("cat.jpg", 16, 24);
    write_text("broken.jpg", "not an image");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

// Test answer processing: lower-case and strip, and each answer's share of the answers (simple
// stand-ins whose results are easy to predict; the real ones are checked through vlt below).
static vlt_status low_strip(const char *in, char **out) {
    while (*in == ' ') in++;
    size_t n = strlen(in);
    while (n && in[n - 1] == ' ') n--;
    *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) (*out)[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    (*out)[n] = 0;
    return VLT_OK;
}

static int share(const char *const *a, int n, const char **uniq, double *score) {
    int u = 0;
    for (int j = 0; j < n; j++) {
        int k = 0;
        while (k < u && strcmp(uniq[k], a[j])) k++;
        if (k == u) { uniq[u] = a[j]; score[u++] = 0; }
        score[k] += 1.0 / n;
    }
    return u;
}

// The samples of DIR/00000.tar: n questions (the .txt) and their parsed .json.
static int read_shard(const char *dir, char **txt, cJSON **json, int max) {
    char p[512];
    snprintf(p, sizeof p, "%s/00000.tar", dir);
    vlt_tar *t;
    assert_int_equal(vlt_tar_open(p, &t), VLT_OK);
    vlt_wds *w;
    assert_int_equal(vlt_wds_open(t, &w), VLT_OK);
    int n = 0, got = 0;
    vlt_wds_sample s;
    while (vlt_wds_next(w, &s, &got) == VLT_OK && got && n < max) {
        int has_jpg = 0;
        for (int f = 0; f < s.n_fields; f++) {
            if (!strcmp(s.fields[f].ext, "txt")) txt[n] = strdup((char *)s.fields[f].data);
            if (!strcmp(s.fields[f].ext, "json")) json[n] = cJSON_Parse((char *)s.fields[f].data);
            if (!strcmp(s.fields[f].ext, "jpg")) has_jpg = 1;
        }
        assert_true(has_jpg);
        n++;
        vlt_wds_sample_free(&s);
    }
    vlt_wds_close(w);
    vlt_tar_close(t);
    return n;
}

static const cJSON *field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) fail_msg("sample .json lacks \"%s\"", k);
    return v;
}

static void free_samples(char **txt, cJSON **json, int n) {
    for (int i = 0; i < n; i++) { free(txt[i]); cJSON_Delete(json[i]); }
}

static vlt_shardwriter_cfg out_cfg(const char *name, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s", g_dir, name);
    vlt_shardwriter_cfg cfg;
    vlt_shardwriter_cfg_default(&cfg, buf);
    return cfg;
}

// Official VQAv2 files: the image by COCO name, answers raw / processed / scored, repeated
// annotations (the last wins), skips by reason.
static void test_official_v2(void **state) {
    (void)state;
    write_text("q.json",
               "{\"data_subtype\": \"val2014\", \"questions\": ["
               "{\"question_id\": 420, \"image_id\": 42, \"question\": \"What color?\"},"
               "{\"question_id\": 421, \"image_id\": 42, \"question\": \"How many?\"},"
               "{\"question_id\": 990, \"image_id\": 99, \"question\": \"Where?\"},"
               "{\"question_id\": 422, \"image_id\": 42, \"question\": \"  \"},"
               "{\"question_id\": 423, \"image_id\": 42, \"question\": \"Unanswered?\"}]}");
    write_text("a.json",
               "{\"annotations\": ["
               "{\"question_id\": 420, \"image_id\": 42, \"answer_type\": \"other\", \"question_type\": \"what color\","
               " \"multiple_choice_answer\": \"red\", \"answers\": [{\"answer\": \"Red\"}, {\"answer\": \"red \"},"
               " {\"answer\": \"blue\"}, {\"answer\": \"red\"}]},"
               "{\"question_id\": 421, \"answers\": [{\"answer\": \"1\"}]},"
               "{\"question_id\": 990, \"answers\": [{\"answer\": \"x\"}]},"
               "{\"question_id\": 421, \"answers\": [{\"answer\": \"2\"}, {\"answer\": \"Two\"}]}]}");
    char qp[256], ap[256], out[256];
    snprintf(qp, sizeof qp, "%s/q.json", g_dir);
    snprintf(ap, sizeof ap, "%s/a.json", g_dir);
    vlt_vqa_pack_source src = {.questions = qp, .annotations = ap, .images = g_dir, .vocab_size = 2,
                               .fns = {low_strip, share}};
    vlt_shardwriter_cfg cfg = out_cfg("v2", out, sizeof out);
    vlt_vqa_pack_stats st;
    assert_int_equal(vlt_vqa_pack_shards(&src, &cfg, NULL, &st), VLT_OK);
    assert_int_equal(st.written, 2);
    assert_int_equal(st.skipped[VLT_VQA_SKIP_MISSING_IMAGE], 1);  // image 99
    assert_int_equal(st.skipped[VLT_VQA_SKIP_NO_QUESTION], 1);    // 422
    assert_int_equal(st.skipped[VLT_VQA_SKIP_NO_ANSWERS], 1);     // 423
    assert_int_equal(st.duplicate_annotations, 1);
    char *txt[8];
    cJSON *js[8];
    int n = read_shard(out, txt, js, 8);
    assert_int_equal(n, 2);
    assert_string_equal(txt[0], "What color?");
    assert_int_equal(field(js[0], "question_id")->valuedouble, 420);
    assert_int_equal(field(js[0], "image_id")->valuedouble, 42);
    assert_string_equal(field(js[0], "question")->valuestring, "What color?");
    assert_string_equal(field(js[0], "image")->valuestring, "COCO_val2014_000000000042.jpg");
    assert_int_equal(cJSON_GetArraySize(field(js[0], "answers")), 4);
    assert_string_equal(cJSON_GetArrayItem(field(js[0], "answers"), 1)->valuestring, "red ");  // raw as annotated
    assert_string_equal(cJSON_GetArrayItem(field(js[0], "answers_processed"), 0)->valuestring, "red");
    assert_true(field(field(js[0], "answer_scores"), "red")->valuedouble == 0.75);
    assert_true(field(field(js[0], "answer_scores"), "blue")->valuedouble == 0.25);
    assert_string_equal(field(js[0], "answer_type")->valuestring, "other");
    assert_string_equal(field(js[0], "question_type")->valuestring, "what color");
    assert_string_equal(field(js[0], "multiple_choice_answer")->valuestring, "red");
    assert_int_equal(field(js[0], "width")->valuedouble, 40);
    // 421: the last annotation ("2", "Two"), not the first ("1")
    assert_int_equal(cJSON_GetArraySize(field(js[1], "answers")), 2);
    assert_true(field(field(js[1], "answer_scores"), "two")->valuedouble == 0.5);
    free_samples(txt, js, n);
    // The vocabulary: red x3, 2, two, blue -> "red" then the ties by byte order: "2".
    char vp[300];
    snprintf(vp, sizeof vp, "%s/answer_vocab.json", out);
    vlt_vqa_vocab v;
    assert_int_equal(vlt_vqa_vocab_load(vp, &v), VLT_OK);
    assert_int_equal(st.vocab_written, 2);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.answers[0], "red");
    assert_int_equal(v.counts[0], 3);
    assert_string_equal(v.answers[1], "2");
    assert_int_equal(vlt_vqa_vocab_index(&v, "2"), 1);
    assert_int_equal(vlt_vqa_vocab_index(&v, "blue"), -1);
    vlt_vqa_vocab_free(&v);
    // A test split: no annotations, every question with an image packed, no answers fields.
    vlt_vqa_pack_source test_src = {.questions = qp, .images = g_dir, .fns = {low_strip, share}};
    cfg = out_cfg("v2test", out, sizeof out);
    assert_int_equal(vlt_vqa_pack_shards(&test_src, &cfg, NULL, &st), VLT_OK);
    assert_int_equal(st.written, 3);
    n = read_shard(out, txt, js, 8);
    assert_null(cJSON_GetObjectItemCaseSensitive(js[0], "answers"));
    free_samples(txt, js, n);
    // A malformed annotation file stops the pack, naming it, and leaves no shard.
    write_text("bad.json", "{\"annotations\": [{\"question_id\": 420, \"answers\": [3]}]}");
    snprintf(ap, sizeof ap, "%s/bad.json", g_dir);
    src.annotations = ap;
    cfg = out_cfg("v2bad", out, sizeof out);
    assert_int_not_equal(vlt_vqa_pack_shards(&src, &cfg, NULL, &st), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "bad.json"));
    char tar[300];
    snprintf(tar, sizeof tar, "%s/00000.tar", out);
    assert_int_not_equal(access(tar, F_OK), 0);
}

// VQA-CP: top-level lists, the split per question ("coco_split"), images under <split>/.
static void test_official_vqacp(void **state) {
    (void)state;
    write_text("cpq.json", "[{\"question_id\": 70, \"image_id\": 7, \"question\": \"Is it?\", \"coco_split\": \"train2014\"}]");
    write_text("cpa.json", "[{\"question_id\": 70, \"coco_split\": \"train2014\", \"answers\": [{\"answer\": \"yes\"},"
                           " {\"answer\": \"YES\"}, {\"answer\": \"no\"}]}]");
    char qp[256], ap[256], out[256];
    snprintf(qp, sizeof qp, "%s/cpq.json", g_dir);
    snprintf(ap, sizeof ap, "%s/cpa.json", g_dir);
    vlt_vqa_pack_source src = {.questions = qp, .annotations = ap, .images = g_dir, .fns = {low_strip, share}};
    vlt_shardwriter_cfg cfg = out_cfg("cp", out, sizeof out);
    vlt_vqa_pack_stats st;
    assert_int_equal(vlt_vqa_pack_shards(&src, &cfg, NULL, &st), VLT_OK);
    assert_int_equal(st.written, 1);
    char *txt[2];
    cJSON *js[2];
    int n = read_shard(out, txt, js, 2);
    assert_int_equal(n, 1);
    assert_string_equal(field(js[0], "image")->valuestring, "COCO_train2014_000000000007.jpg");
    assert_true(field(field(js[0], "answer_scores"), "yes")->valuedouble == 2.0 / 3);
    free_samples(txt, js, n);
}

// JSON lines: answers optional, image ids by path, bad lines and images skipped by reason.
static void test_jsonl(void **state) {
    (void)state;
    write_text("d.jsonl", "{\"image\": \"cat.jpg\", \"question\": \"What animal?\", \"answers\": [\"Cat\", \"cat\", \"dog\"]}\n"
                          "\n"
                          "{\"image\": \"cat.jpg\", \"question\": \"Test question?\"}\n"
                          "{\"image\": \"broken.jpg\", \"question\": \"Broken?\", \"answers\": [\"x\"]}\n"
                          "not json\n"
                          "{\"image\": \"missing.jpg\", \"question\": \"Gone?\"}\n"
                          "{\"image\": \"cat.jpg\", \"question\": \"Id?\", \"question_id\": 77, \"answers\": [3]}\n");
    char jp[256], out[256];
    snprintf(jp, sizeof jp, "%s/d.jsonl", g_dir);
    vlt_vqa_pack_source src = {.jsonl = jp, .fns = {low_strip, share}};
    vlt_shardwriter_cfg cfg = out_cfg("jl", out, sizeof out);
    vlt_vqa_pack_stats st;
    assert_int_equal(vlt_vqa_pack_shards(&src, &cfg, NULL, &st), VLT_OK);
    assert_int_equal(st.written, 2);
    assert_int_equal(st.skipped[VLT_VQA_SKIP_BAD_IMAGE], 1);
    assert_int_equal(st.skipped[VLT_VQA_SKIP_MISSING_IMAGE], 1);
    assert_int_equal(st.skipped[VLT_VQA_SKIP_BAD_ITEM], 2);  // "not json", an answer that is a number
    char *txt[4];
    cJSON *js[4];
    int n = read_shard(out, txt, js, 4);
    assert_int_equal(n, 2);
    assert_string_equal(txt[1], "Test question?");
    assert_int_equal(field(js[0], "question_id")->valuedouble, 0);
    assert_int_equal(field(js[1], "question_id")->valuedouble, 1);
    assert_int_equal(field(js[1], "image_id")->valuedouble, field(js[0], "image_id")->valuedouble);  // same image
    assert_true(field(field(js[0], "answer_scores"), "cat")->valuedouble == 2.0 / 3);
    assert_null(cJSON_GetObjectItemCaseSensitive(js[1], "answers"));
    free_samples(txt, js, n);
    vlt_vqa_pack_source none = {.fns = {low_strip, share}};
    assert_int_equal(vlt_vqa_pack_source_check(&none), VLT_ERR_ARG);
    vlt_vqa_pack_source both = {.jsonl = jp, .questions = jp, .images = g_dir, .fns = {low_strip, share}};
    assert_int_equal(vlt_vqa_pack_source_check(&both), VLT_ERR_ARG);
}

// The vocabulary: most frequent first, ties by byte order whatever the input order; the file
// round trip; ALBEF's answer_list.json (a list of strings).
static void test_vocab(void **state) {
    (void)state;
    const char *orders[2][7] = {{"b", "a", "c", "a", "b", "d", "a"}, {"d", "a", "b", "a", "c", "b", "a"}};
    for (int o = 0; o < 2; o++) {
        vlt_vqa_vocab_counter *c;
        assert_int_equal(vlt_vqa_vocab_counter_new(&c), VLT_OK);
        for (int i = 0; i < 7; i++) assert_int_equal(vlt_vqa_vocab_count(c, orders[o][i]), VLT_OK);
        for (int i = 0; i < 3000; i++) {  // grows the table
            char s[16];
            snprintf(s, sizeof s, "z%d", i);
            assert_int_equal(vlt_vqa_vocab_count(c, s), VLT_OK);
        }
        vlt_vqa_vocab v;
        assert_int_equal(vlt_vqa_vocab_top(c, 3, &v), VLT_OK);
        assert_int_equal(v.n, 3);
        assert_string_equal(v.answers[0], "a");
        assert_string_equal(v.answers[1], "b");
        assert_string_equal(v.answers[2], "c");  // c, d, z0.. all once: byte order
        char p[256];
        snprintf(p, sizeof p, "%s/vocab%d.json", g_dir, o);
        assert_int_equal(vlt_vqa_vocab_save(&v, p), VLT_OK);
        vlt_vqa_vocab w;
        assert_int_equal(vlt_vqa_vocab_load(p, &w), VLT_OK);
        assert_int_equal(w.n, 3);
        assert_int_equal(w.counts[0], 3);
        assert_string_equal(w.answers[2], "c");
        vlt_vqa_vocab_free(&w);
        vlt_vqa_vocab_free(&v);
        assert_int_equal(vlt_vqa_vocab_top(c, 0, &v), VLT_OK);  // 0: every answer
        assert_int_equal(v.n, 3004);
        vlt_vqa_vocab_free(&v);
        vlt_vqa_vocab_counter_free(c);
    }
    write_text("answer_list.json", "[\"net\", \"pitcher\", \"orange\"]");
    char p[256];
    snprintf(p, sizeof p, "%s/answer_list.json", g_dir);
    vlt_vqa_vocab v;
    assert_int_equal(vlt_vqa_vocab_load(p, &v), VLT_OK);
    assert_int_equal(v.n, 3);
    assert_int_equal(vlt_vqa_vocab_index(&v, "orange"), 2);
    vlt_vqa_vocab_free(&v);
    write_text("bad_list.json", "[\"net\", 3]");
    snprintf(p, sizeof p, "%s/bad_list.json", g_dir);
    assert_int_equal(vlt_vqa_vocab_load(p, &v), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "bad_list.json"));
}

// Through the built `vlt shards`: the answers processed as the official evaluation processes them
// (eval/vqa.h: strip, punctuation, number words, articles) and the VQAv2 soft scores
// (min(1, count/3) averaged over the leave-one-out subsets), worked out by hand.
static void test_vlt_shards_official_processing(void **state) {
    (void)state;
    const char *build = getenv("VLT_BUILD");
    char vlt[512];
    snprintf(vlt, sizeof vlt, "%s/vlt", build ? build : "build");
    if (access(vlt, X_OK) != 0) {
        print_message("skipped: %s not built\n", vlt);
        return;
    }
    write_text("p.jsonl", "{\"image\": \"cat.jpg\", \"question\": \"How many?\", \"answers\": [\"Two\", \" two\\n\", \"2\", \"2.\","
                          " \"three\", \"3\", \"The dog\", \"a dog\", \"dog\", \"x-ray\"]}\n");
    char cmd[1200], out[256];
    snprintf(out, sizeof out, "%s/vltout", g_dir);
    snprintf(cmd, sizeof cmd, "%s shards --vqa-jsonl %s/p.jsonl --vqa-vocab 2 --out %s > /dev/null 2>&1", vlt, g_dir, out);
    assert_int_equal(system(cmd), 0);
    char *txt[2];
    cJSON *js[2];
    int n = read_shard(out, txt, js, 2);
    assert_int_equal(n, 1);
    const char *want[10] = {"2", "2", "2", "2", "3", "3", "dog", "dog", "dog", "x ray"};
    const cJSON *proc = field(js[0], "answers_processed");
    for (int j = 0; j < 10; j++) assert_string_equal(cJSON_GetArrayItem(proc, j)->valuestring, want[j]);
    // "2" x4: every subset keeps >= 3 -> 1; "dog" x3: 3 subsets with 2 (2/3), 7 with 3 -> 0.9;
    // "3" x2: 2 with 1/3, 8 with 2/3 -> 0.6; "x ray" x1: 9 subsets with 1/3 -> 0.3.
    const cJSON *sc = field(js[0], "answer_scores");
    assert_true(field(sc, "2")->valuedouble == 1.0);
    assert_true(fabs(field(sc, "dog")->valuedouble - 0.9) < 1e-15);
    assert_true(fabs(field(sc, "3")->valuedouble - 0.6) < 1e-15);
    assert_true(fabs(field(sc, "x ray")->valuedouble - 0.3) < 1e-15);
    free_samples(txt, js, n);
    char vp[300];
    snprintf(vp, sizeof vp, "%s/answer_vocab.json", out);
    vlt_vqa_vocab v;
    assert_int_equal(vlt_vqa_vocab_load(vp, &v), VLT_OK);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.answers[0], "2");
    assert_string_equal(v.answers[1], "dog");
    vlt_vqa_vocab_free(&v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_official_v2),
        cmocka_unit_test(test_official_vqacp),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_vocab),
        cmocka_unit_test(test_vlt_shards_official_processing),
    };
    return cmocka_run_group_tests_name("data_vqa", tests, setup, teardown);
}
