// test_train_caption.c — `vlt caption` end to end: a tiny CoCa trained 60 steps on shards whose
// .json members hold COCO-style image ids captions them into a COCO results file (one entry per
// image, the shards' own ids, in order, valid JSON), the same file as `vlt eval checkpoint
// --captions-out` and as `--weights` + `--model`; `vlt eval captions` on that file against the
// shards' captions gives exactly the BLEU / CIDEr-D `vlt eval checkpoint` reports (the round
// trip); beam search and the length options work and bad values are refused; an image packed
// twice is captioned once; a model without a caption decoder is refused naming its kind; a
// caption run's report is reproduced by vlt eval --reproduce.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/tape.h"
#include "data/shardwriter.h"
#include "data/synth.h"
#include "eval/json_file.h"
#include "tests/test_data_tar_util.h"
#include "train/commands.h"
#include "train/run_config.h"
#include "train/trainer.h"

#define N_IMAGES 24
static char *g_dir;
static char g_shards[400], g_run[300], g_refs[300], g_dup[300];
static char g_captions[N_IMAGES][256];

static long long image_id_of(int i) { return 391895 + 1009LL * i; }  // COCO-like ids, not sample numbers

static int run_cmd(int (*cmd)(int, char **), char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout);
    return cmd(argc, argv);
}

// One sample: KEY.jpg, KEY.txt and KEY.json {"image_id", "captions"} as `vlt shards --coco` packs it.
static int add_sample(tb_buf *b, const vlt_shardwriter_cfg *wc, int key, int scene, long long id, char *caption, size_t cap) {
    vlt_image img;
    vlt_synth_scene sc;
    if (vlt_synth_sample(4, (uint64_t)scene, 32, &img, caption, cap, &sc) != VLT_OK) return -1;
    uint8_t *jpg;
    size_t len;
    if (vlt_shardwriter_prepare_rgb(wc, &img, &jpg, &len, NULL, NULL) != VLT_OK) return -1;
    vlt_image_free(&img);
    char name[64], json[600];
    snprintf(name, sizeof name, "%09d.jpg", key);
    tb_file(b, name, jpg, len);
    free(jpg);
    snprintf(name, sizeof name, "%09d.txt", key);
    tb_str(b, name, caption);
    snprintf(name, sizeof name, "%09d.json", key);
    snprintf(json, sizeof json, "{\"image_id\": %lld, \"captions\": [\"%s\", \"another caption\"]}", id, caption);
    tb_str(b, name, json);
    return 0;
}

static int setup(void **state) {
    (void)state;
    g_dir = tb_tmpdir();
    vlt_shardwriter_cfg wc;
    vlt_shardwriter_cfg_default(&wc, g_dir);
    for (int sh = 0; sh < 2; sh++) {
        tb_buf b = {0};
        for (int i = sh * 12; i < sh * 12 + 12; i++)
            if (add_sample(&b, &wc, i, i, image_id_of(i), g_captions[i], sizeof g_captions[i])) return -1;
        tb_end(&b);
        char path[400];
        snprintf(path, sizeof path, "%s/cap-%d.tar", g_dir, sh);
        if (tb_save(b.buf, b.len, path)) return -1;
        tb_free(&b);
    }
    snprintf(g_shards, sizeof g_shards, "%s/cap-{0..1}.tar", g_dir);
    // an image packed twice (one sample per caption) between two others
    tb_buf b = {0};
    char c[256];
    if (add_sample(&b, &wc, 0, 0, 7, c, sizeof c) || add_sample(&b, &wc, 1, 1, 8, c, sizeof c) ||
        add_sample(&b, &wc, 2, 1, 8, c, sizeof c) || add_sample(&b, &wc, 3, 2, 9, c, sizeof c))
        return -1;
    tb_end(&b);
    snprintf(g_dup, sizeof g_dup, "%s/dup.tar", g_dir);
    if (tb_save(b.buf, b.len, g_dup)) return -1;
    tb_free(&b);
    // the references in the COCO captions format: each image's captions list, as its .json holds it
    // (the evaluation scores against all of an image's references, as COCO's protocol does)
    cJSON *root = cJSON_CreateObject(), *ann = cJSON_AddArrayToObject(root, "annotations");
    for (int i = 0; i < N_IMAGES; i++)
        for (int r = 0; r < 2; r++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "image_id", (double)image_id_of(i));
            cJSON_AddStringToObject(o, "caption", r == 0 ? g_captions[i] : "another caption");
            cJSON_AddItemToArray(ann, o);
        }
    snprintf(g_refs, sizeof g_refs, "%s/refs.json", g_dir);
    if (vlt_eval_json_save(g_refs, root) != VLT_OK) return -1;
    cJSON_Delete(root);
    // a tiny CoCa trained 60 steps: enough to write captions that score above zero
    snprintf(g_run, sizeof g_run, "%s/run", g_dir);
    vlt_run_config cfg;
    vlt_run_config_default(&cfg);
    snprintf(cfg.model_name, sizeof cfg.model_name, "tiny-coca");
    snprintf(cfg.train_shards, sizeof cfg.train_shards, "%s", g_shards);
    snprintf(cfg.output_dir, sizeof cfg.output_dir, "%s", g_run);
    cfg.batch_size = 8;
    cfg.workers = 1;
    cfg.steps = 60;
    cfg.warmup = 5;
    cfg.lr = 3e-3;
    cfg.checkpoint_every = 0;
    cfg.eval_every = 0;
    cfg.tensorboard = false;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t = NULL;
    if (vlt_trainer_create(&cfg, &o, &t) != VLT_OK) { fprintf(stderr, "%s\n", vlt_error_message()); return -1; }
    vlt_status s = vlt_trainer_run(t);
    vlt_trainer_free(t);
    return s == VLT_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    tb_rmdir(g_dir);
    return 0;
}

static cJSON *load(const char *path) {
    cJSON *j = NULL;
    if (vlt_eval_json_load(path, &j) != VLT_OK) fail_msg("%s", vlt_error_message());
    return j;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static double number(const cJSON *report, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "numbers"), key);
    if (!cJSON_IsNumber(v)) fail_msg("report has no number %s", key);
    return v->valuedouble;
}

// results.json: valid JSON, one entry per image with the shards' ids in shard order, non-empty
// captions; the same bytes from eval checkpoint --captions-out and from --weights.
static void test_caption_results_file(void **state) {
    (void)state;
    char res[400], res2[400], res3[400], rep[400];
    snprintf(res, sizeof res, "%s/results.json", g_dir);
    snprintf(res2, sizeof res2, "%s/results-eval.json", g_dir);
    snprintf(res3, sizeof res3, "%s/results-weights.json", g_dir);
    snprintf(rep, sizeof rep, "%s/report.json", g_dir);
    char *cap[] = {"caption", "--checkpoint", g_run, "--shards", g_shards, "--out", res, "--batch", "5", NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, cap), 0);
    cJSON *r = load(res);
    assert_true(cJSON_IsArray(r));
    assert_int_equal(cJSON_GetArraySize(r), N_IMAGES);
    for (int i = 0; i < N_IMAGES; i++) {
        const cJSON *o = cJSON_GetArrayItem(r, i), *id = cJSON_GetObjectItemCaseSensitive(o, "image_id"),
                    *c = cJSON_GetObjectItemCaseSensitive(o, "caption");
        assert_int_equal(cJSON_GetArraySize(o), 2);  // exactly image_id and caption
        assert_true(cJSON_IsNumber(id));
        assert_true((long long)id->valuedouble == image_id_of(i));
        assert_true(cJSON_IsString(c));
        assert_true(strlen(c->valuestring) > 0);
        assert_true(c->valuestring[strlen(c->valuestring) - 1] != ' ');
    }
    print_message("first caption of the 60-step CoCa: \"%s\"\n",
                  cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r, 0), "caption")->valuestring);
    cJSON_Delete(r);
    // no temporary file left beside it
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", g_dir);
    assert_int_not_equal(system(cmd), 0);

    char *ev[] = {"eval", "checkpoint", "--checkpoint", g_run, "--shards", g_shards, "--captions-out", res2, "--out", rep, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, ev), 0);
    char weights[400];
    snprintf(weights, sizeof weights, "%s/checkpoints/latest/model.safetensors", g_run);
    char *cw[] = {"caption", "--weights", weights, "--model", "tiny-coca", "--shards", g_shards, "--out", res3, NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, cw), 0);
    char *a = slurp(res), *b = slurp(res2), *c = slurp(res3);
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    free(a);
    free(b);
    free(c);
}

// vlt eval captions on vlt caption's file scores exactly what vlt eval checkpoint reported.
static void test_round_trip_eval_captions(void **state) {
    (void)state;
    char res[400], rep[400], rep2[400];
    snprintf(res, sizeof res, "%s/results.json", g_dir);
    snprintf(rep, sizeof rep, "%s/report.json", g_dir);
    snprintf(rep2, sizeof rep2, "%s/report-captions.json", g_dir);
    char *ev[] = {"eval", "captions", "--pred", res, "--refs", g_refs, "--out", rep2, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, ev), 0);
    cJSON *a = load(rep), *b = load(rep2);
    assert_true(number(b, "n_images") == N_IMAGES);
    assert_true(number(a, "captions.n") == N_IMAGES);
    char ka[32], kb[32];
    for (int k = 1; k <= 4; k++) {
        snprintf(ka, sizeof ka, "captions.BLEU-%d", k);
        snprintf(kb, sizeof kb, "Bleu_%d", k);
        assert_true(number(a, ka) == number(b, kb));
    }
    assert_true(number(a, "captions.CIDEr-D") == number(b, "CIDEr"));
    assert_true(number(b, "CIDEr") > 0.1 && number(b, "Bleu_1") > 0.1);  // real captions, not a 0 == 0 comparison
    print_message("round trip: BLEU-4 %.6f CIDEr-D %.6f both ways\n", number(b, "Bleu_4"), number(b, "CIDEr"));
    cJSON_Delete(a);
    cJSON_Delete(b);
}

// Beam search and the length options; bad values refused; an image packed twice captioned once.
static void test_generation_options(void **state) {
    (void)state;
    char res[400];
    snprintf(res, sizeof res, "%s/beam.json", g_dir);
    char *beam[] = {"caption", "--checkpoint", g_run, "--shards", g_shards, "--out", res, "--beam", "3", "--min-len", "3",
                    "--max-len", "8", "--repetition-penalty", "1.5", "--limit", "6", NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, beam), 0);
    cJSON *r = load(res);
    assert_int_equal(cJSON_GetArraySize(r), 6);
    for (int i = 0; i < 6; i++) {
        const char *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r, i), "caption")->valuestring;
        int words = 0;  // at most 8 tokens with start and end: at most 6 words
        for (const char *p = c; *p; p++) words += (p == c || p[-1] == ' ') && *p != ' ';
        assert_true(words <= 6);
    }
    cJSON_Delete(r);
    char *toolong[] = {"caption", "--checkpoint", g_run, "--shards", g_shards, "--out", res, "--max-len", "40", NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, toolong), 1);
    assert_non_null(strstr(vlt_error_message(), "--max-len 40"));
    char *minmax[] = {"caption", "--checkpoint", g_run, "--shards", g_shards, "--out", res, "--min-len", "9", "--max-len", "9", NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, minmax), 1);
    assert_non_null(strstr(vlt_error_message(), "--min-len 9"));
    char *nomodel[] = {"caption", "--shards", g_shards, "--out", res, NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, nomodel), 2);
    char *noout[] = {"caption", "--checkpoint", g_run, "--shards", g_shards, NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, noout), 2);

    char *dup[] = {"caption", "--checkpoint", g_run, "--shards", g_dup, "--out", res, NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, dup), 0);
    r = load(res);
    assert_int_equal(cJSON_GetArraySize(r), 3);
    long long want[3] = {7, 8, 9};
    for (int i = 0; i < 3; i++)
        assert_true((long long)cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r, i), "image_id")->valuedouble == want[i]);
    cJSON_Delete(r);
}

// A CLIP has no caption decoder: refused by vlt caption and by eval checkpoint --captions-out,
// naming the kind; the results file is not created.
static void test_refuses_non_captioner(void **state) {
    (void)state;
    char w[400], res[400];
    snprintf(w, sizeof w, "%s/clip.safetensors", g_dir);
    snprintf(res, sizeof res, "%s/clip-results.json", g_dir);
    char *init[] = {"model", "init", "--model", "tiny-clip", "--out", w, NULL};
    assert_int_equal(run_cmd(vlt_cmd_model, init), 0);
    char *cap[] = {"caption", "--weights", w, "--model", "tiny-clip", "--shards", g_shards, "--out", res, NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, cap), 1);
    assert_non_null(strstr(vlt_error_message(), "kind 'clip'"));
    char *ev[] = {"eval", "checkpoint", "--weights", w, "--model", "tiny-clip", "--shards", g_shards, "--captions-out", res, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, ev), 1);
    assert_non_null(strstr(vlt_error_message(), "kind 'clip'"));
    FILE *f = fopen(res, "r");
    assert_null(f);
}

// vlt caption --report: the weights, shards and settings recorded with a digest of the captions;
// vlt eval --reproduce runs it again: REPRODUCED as it is; after the weights file changed, NOT,
// and the new report's digest differs.
static void test_report_reproduces(void **state) {
    (void)state;
    char w[400], res[400], rep[400], rep2[400], cmd[1000];
    snprintf(w, sizeof w, "%s/coca-copy.safetensors", g_dir);
    snprintf(res, sizeof res, "%s/results-rep.json", g_dir);
    snprintf(rep, sizeof rep, "%s/caption-report.json", g_dir);
    snprintf(rep2, sizeof rep2, "%s/caption-report2.json", g_dir);
    snprintf(cmd, sizeof cmd, "cp %s/checkpoints/latest/model.safetensors %s", g_run, w);
    assert_int_equal(system(cmd), 0);
    char *cap[] = {"caption", "--weights", w, "--model", "tiny-coca", "--shards", g_shards, "--out", res, "--limit", "10",
                   "--report", rep, NULL};
    assert_int_equal(run_cmd(vlt_cmd_caption, cap), 0);
    cJSON *r = load(rep);
    assert_true(number(r, "n_images") == 10);
    double digest = number(r, "captions_digest");
    assert_true(digest > 0 && digest < 4503599627370496.0);  // 52 bits
    int shards = 0, weights = 0;
    const cJSON *in;
    cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(r, "inputs")) {
        const char *role = cJSON_GetObjectItemCaseSensitive(in, "role")->valuestring;
        shards += !strcmp(role, "shard");
        weights += !strcmp(role, "weights");
    }
    assert_int_equal(shards, 2);
    assert_int_equal(weights, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "settings"), "results")->valuestring, res);
    cJSON_Delete(r);
    char *again[] = {"eval", "--reproduce", rep, "--out", rep2, NULL};
    assert_int_equal(run_cmd(vlt_cmd_eval, again), 0);
    r = load(rep2);
    assert_true(number(r, "captions_digest") == digest);
    cJSON_Delete(r);
    char *init[] = {"model", "init", "--model", "tiny-coca", "--out", w, "--seed", "3", NULL};
    assert_int_equal(run_cmd(vlt_cmd_model, init), 0);
    assert_int_equal(run_cmd(vlt_cmd_eval, again), 1);
    r = load(rep2);
    assert_true(number(r, "captions_digest") != digest);  // other weights, other captions
    cJSON_Delete(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caption_results_file),
        cmocka_unit_test(test_round_trip_eval_captions),
        cmocka_unit_test(test_generation_options),
        cmocka_unit_test(test_refuses_non_captioner),
        cmocka_unit_test(test_report_reproduces),
    };
    int rc = cmocka_run_group_tests_name("train_caption", tests, setup, teardown);
    vlt_tape_shutdown();
    return rc;
}
