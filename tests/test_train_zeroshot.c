// Zero-shot classification over labeled shards (.jpg/.txt/.cls as webdataset classification
// shards): the accuracy equals a brute-force reference computed from the same model's
// embeddings; unlabeled samples are skipped; out-of-range labels and template mistakes are
// errors that name the sample or the template.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "data/shardwriter.h"
#include "eval/json_file.h"
#include "data/synth.h"
#include "tests/test_data_tar_util.h"
#include "train/commands.h"
#include "train/evaluate.h"

#define N_SAMPLES 40

static char *g_dir;
static char g_spec[512];
static int g_labels[N_SAMPLES];

// 2 shards of 20 synthetic pictures labeled with their first shape; sample 7 has no .cls.
static int make_shards(void **state) {
    (void)state;
    g_dir = tb_tmpdir();
    vlt_shardwriter_cfg wc;
    vlt_shardwriter_cfg_default(&wc, g_dir);
    for (int sh = 0; sh < 2; sh++) {
        tb_buf b = {0};
        for (int i = sh * 20; i < sh * 20 + 20; i++) {
            vlt_image img;
            char caption[256], name[64], label[16];
            vlt_synth_scene scene;
            if (vlt_synth_sample(9, (uint64_t)i, 32, &img, caption, sizeof caption, &scene) != VLT_OK) return -1;
            uint8_t *jpg;
            size_t len;
            if (vlt_shardwriter_prepare_rgb(&wc, &img, &jpg, &len, NULL, NULL) != VLT_OK) return -1;
            vlt_image_free(&img);
            g_labels[i] = i == 7 ? -1 : scene.obj[0].shape;
            snprintf(name, sizeof name, "%09d.jpg", i);
            tb_file(&b, name, jpg, len);
            snprintf(name, sizeof name, "%09d.txt", i);
            tb_str(&b, name, caption);
            if (i != 7) {
                snprintf(name, sizeof name, "%09d.cls", i);
                snprintf(label, sizeof label, "%d\n", g_labels[i]);
                tb_str(&b, name, label);
            }
            free(jpg);
        }
        tb_end(&b);
        char path[300];
        snprintf(path, sizeof path, "%s/zs-%d.tar", g_dir, sh);
        if (tb_save(b.buf, b.len, path)) return -1;
        tb_free(&b);
    }
    snprintf(g_spec, sizeof g_spec, "%s/zs-{0..1}.tar", g_dir);
    return 0;
}

static int remove_shards(void **state) {
    (void)state;
    tb_rmdir(g_dir);
    return 0;
}

static char *CLASSES[] = {"circle", "square", "triangle", "diamond", "cross"};
static char *TEMPLATES[] = {"a small {}", "a large {} on a background", "a {}"};

static void test_zeroshot_equals_brute_force(void **state) {
    (void)state;
    vlt_model_cfg mc;
    assert_int_equal(vlt_model_cfg_load("tiny-clip", &mc), VLT_OK);
    vlt_model m;
    assert_int_equal(vlt_model_create(&m, &mc, 3), VLT_OK);
    vlt_tokenizer *tok;
    assert_int_equal(vlt_tokenizer_load(NULL, &tok), VLT_OK);
    double top1, top5;
    int n;
    if (vlt_eval_zeroshot_on_shards(&m, tok, g_spec, 16, 0, "cls", CLASSES, 5, TEMPLATES, 3, &top1, &top5, &n) != VLT_OK)
        fail_msg("%s", vlt_error_message());
    assert_int_equal(n, N_SAMPLES - 1);  // sample 7 has no label
    assert_true(top5 == 1.0);            // five classes: every label is in the top 5

    // Reference: class vectors as open_clip builds them, images embedded in shard order.
    int E = mc.embed_dim, T = mc.text.context_length;
    float cls[5][64];
    assert_true(E <= 64);
    vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(1, T), "ids");
    vlt_no_grad_enter();
    for (int c = 0; c < 5; c++) {
        double acc[64] = {0};
        for (int t = 0; t < 3; t++) {
            char prompt[128], *hole = strstr(TEMPLATES[t], "{}");
            snprintf(prompt, sizeof prompt, "%.*s%s%s", (int)(hole - TEMPLATES[t]), TEMPLATES[t], CLASSES[c], hole + 2);
            vlt_tokenizer_encode(tok, prompt, vlt_i32(ids), T);
            vlt_tensor *f = vlt_model_encode_text(&m, ids);
            for (int e = 0; e < E; e++) acc[e] += vlt_f32(f)[e] / 3;
            vlt_step_reset();
        }
        double nn = 0;
        for (int e = 0; e < E; e++) nn += acc[e] * acc[e];
        for (int e = 0; e < E; e++) cls[c][e] = (float)(acc[e] / sqrt(nn));
    }
    vlt_no_grad_exit();
    vlt_embedded_pairs p;
    assert_int_equal(vlt_embed_pairs(&m, tok, g_spec, 16, 0, &p), VLT_OK);
    assert_int_equal(p.n, N_SAMPLES);
    int hits = 0, counted = 0;
    for (int i = 0; i < p.n; i++) {
        int idx = atoi(p.keys[i]);
        if (g_labels[idx] < 0) continue;
        counted++;
        double s[5];
        for (int c = 0; c < 5; c++) {
            s[c] = 0;
            for (int e = 0; e < E; e++) s[c] += (double)p.img[(size_t)i * E + e] * cls[c][e];
        }
        int better = 0;  // ties count against the truth
        for (int c = 0; c < 5; c++) better += c != g_labels[idx] && s[c] >= s[g_labels[idx]];
        hits += better == 0;
    }
    print_message("zero-shot on %d labeled images (untrained tiny CLIP): top-1 %.3f, reference %.3f\n", n, top1,
                  (double)hits / counted);
    assert_int_equal(counted, n);
    assert_true(fabs(top1 - (double)hits / counted) < 1e-12);

    // An out-of-range label names the sample; a template without {} names the template.
    assert_int_not_equal(vlt_eval_zeroshot_on_shards(&m, tok, g_spec, 16, 0, "cls", CLASSES, 2, TEMPLATES, 3, &top1,
                                                     &top5, &n), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "but there are 2 classes"));
    char *bad[] = {"a photo"};
    assert_int_not_equal(vlt_eval_zeroshot_on_shards(&m, tok, g_spec, 16, 0, "cls", CLASSES, 5, bad, 1, &top1, &top5, &n),
                         VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "template 'a photo' has no {}"));
    vlt_embedded_pairs_free(&p);
    vlt_tensor_free(ids);
    vlt_tokenizer_free(tok);
    vlt_model_free(&m);
}

// The checkpoint commands refuse bad input with a message naming it (exit status 1, or 2 for
// usage errors), whatever is wrong: a missing checkpoint, a missing class list, missing options.
static void test_commands_refuse_bad_input(void **state) {
    (void)state;
    char classes[300];
    snprintf(classes, sizeof classes, "%s/classes.txt", g_dir);
    char *zs[] = {"zeroshot", "--checkpoint", "/nonexistent-run", "--shards", g_spec, "--classes", classes,
                  "--templates", classes, NULL};
    assert_int_equal(vlt_cmd_eval_zeroshot(9, zs), 1);  // classes.txt does not exist
    assert_non_null(strstr(vlt_error_message(), "classes.txt"));
    FILE *f = fopen(classes, "w");
    fputs("circle\nsquare\n", f);
    fclose(f);
    assert_int_equal(vlt_cmd_eval_zeroshot(9, zs), 1);  // the checkpoint does not exist
    assert_non_null(strstr(vlt_error_message(), "/nonexistent-run"));
    char *ck[] = {"checkpoint", "--checkpoint", "/nonexistent-run", "--shards", g_spec, NULL};
    assert_int_equal(vlt_cmd_eval_checkpoint(5, ck), 1);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent-run"));
    char *em[] = {"embed", "--checkpoint", "/nonexistent-run", "--shards", g_spec, NULL};
    assert_int_equal(vlt_cmd_embed(5, em), 2);  // --out missing: usage
}

// The shipped lists by name (assets/zeroshot/): --classes cifar10 alone brings its 18 templates,
// and the report hashes the files it resolved to; an unknown name is refused listing the shipped
// ones; a class list of one's own needs --templates.
static void test_shipped_lists_by_name(void **state) {
    (void)state;
    char w[300], rep[300], mine[300];
    snprintf(w, sizeof w, "%s/w.safetensors", g_dir);
    snprintf(rep, sizeof rep, "%s/zs-report.json", g_dir);
    snprintf(mine, sizeof mine, "%s/mine.txt", g_dir);
    char *init[] = {"model", "init", "--model", "tiny-clip", "--out", w, NULL};
    assert_int_equal(vlt_cmd_model(6, init), 0);
    char *zs[] = {"zeroshot", "--weights", w, "--model", "tiny-clip", "--shards", g_spec, "--classes", "cifar10", "--out", rep, NULL};
    assert_int_equal(vlt_cmd_eval_zeroshot(11, zs), 0);
    cJSON *r = NULL;
    assert_int_equal(vlt_eval_json_load(rep, &r), VLT_OK);
    const cJSON *num = cJSON_GetObjectItemCaseSensitive(r, "numbers");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(num, "n_classes")->valueint, 10);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(num, "n_templates")->valueint, 18);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(num, "n_images")->valueint, N_SAMPLES - 1);
    int found = 0;
    const cJSON *in;
    cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(r, "inputs")) {
        const char *path = cJSON_GetObjectItemCaseSensitive(in, "path")->valuestring;
        found += strstr(path, "zeroshot/cifar10_classnames.txt") != NULL || strstr(path, "zeroshot/cifar10_templates.txt") != NULL;
    }
    assert_int_equal(found, 2);
    cJSON_Delete(r);
    zs[8] = "imagenet";
    assert_int_equal(vlt_cmd_eval_zeroshot(11, zs), 1);
    assert_non_null(strstr(vlt_error_message(), "shipped: cifar10, cifar100, imagenet1k"));
    FILE *f = fopen(mine, "w");
    fputs("circle\nsquare\n", f);
    fclose(f);
    zs[8] = mine;
    assert_int_equal(vlt_cmd_eval_zeroshot(11, zs), 2);  // no --templates for a list of one's own
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_zeroshot_equals_brute_force),
                                       cmocka_unit_test(test_commands_refuse_bad_input),
                                       cmocka_unit_test(test_shipped_lists_by_name)};
    int rc = cmocka_run_group_tests_name("train_zeroshot", tests, make_shards, remove_shards);
    vlt_tape_shutdown();
    return rc;
}
