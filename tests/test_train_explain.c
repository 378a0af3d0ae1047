// `vlt explain` (Grad-CAM relevance maps through the model interface): a tiny CLIP trained on the
// synthetic shapes looks at the shape a one-shape caption names. For held-out pictures with a
// single shape, the share of the map's mass on the patches the shape covers is compared with the
// share those patches have of the picture (what a map that ignores the picture would give); the
// map is never constant; the files the command writes (overlay PNGs, JSON, page) are there.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <cJSON.h>

#include "data/image.h"
#include "data/synth.h"
#include "eval/json_file.h"
#include "train/commands.h"
#include "train/trainer.h"
#include "tests/train_fixture.h"

#define N_PICTURES 24

static void test_maps_sit_on_the_named_shape(void **state) {
    (void)state;
    vlt_run_config c;
    train_fixture_config(&c, "explain");
    c.steps = 300;
    c.checkpoint_every = 300;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_trainer_free(t);

    char run[300], img_path[320], out[320], json[340];
    snprintf(run, sizeof run, "%s/explain", g_train_dir);
    double on_shape = 0, chance = 0;
    int used = 0;
    for (uint64_t idx = 2000000; used < N_PICTURES && idx < 2000000 + 400; idx++) {
        vlt_synth_scene sc;
        vlt_synth_scene_make(3, idx, 32, &sc);
        if (sc.n_objects != 1) continue;
        vlt_image img = {0};
        char caption[128];
        assert_int_equal(vlt_synth_sample(3, idx, 32, &img, caption, sizeof caption, &sc), VLT_OK);
        uint8_t *jpg = NULL;
        size_t len = 0;
        assert_int_equal(vlt_image_encode_jpeg(&img, 95, &jpg, &len), VLT_OK);
        snprintf(img_path, sizeof img_path, "%s/pic%llu.jpg", g_train_dir, (unsigned long long)idx);
        FILE *f = fopen(img_path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(jpg, 1, len, f), len);
        fclose(f);
        free(jpg);
        vlt_image_free(&img);
        snprintf(out, sizeof out, "%s/explain-%llu", g_train_dir, (unsigned long long)idx);
        char *argv[] = {"explain", "--checkpoint", run, "--image", img_path, "--text", caption, "--out", out, NULL};
        if (vlt_cmd_explain(9, argv) != 0) fail_msg("vlt explain failed: %s", vlt_error_message());
        snprintf(json, sizeof json, "%s/explain.json", out);
        cJSON *root = NULL;
        assert_int_equal(vlt_eval_json_load(json, &root), VLT_OK);
        int G = cJSON_GetObjectItem(root, "grid")->valueint;
        cJSON *map = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "texts"), 0), "map");
        assert_int_equal(cJSON_GetArraySize(map), G * G);
        // the patches the shape's box touches (32 px, patches of 32 / G)
        double total = 0, inside = 0, mn = INFINITY, mx = -INFINITY;
        int cells = 0;
        float P = 32.0f / G;
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++) {
                double v = cJSON_GetArrayItem(map, gy * G + gx)->valuedouble;
                bool hit = (gx + 1) * P > sc.obj[0].cx - sc.obj[0].r && gx * P < sc.obj[0].cx + sc.obj[0].r &&
                           (gy + 1) * P > sc.obj[0].cy - sc.obj[0].r && gy * P < sc.obj[0].cy + sc.obj[0].r;
                total += v;
                inside += hit ? v : 0;
                cells += hit;
                mn = fmin(mn, v);
                mx = fmax(mx, v);
            }
        assert_true(mx > mn);  // not a constant map
        on_shape += total > 0 ? inside / total : 0;
        chance += (double)cells / (G * G);
        used++;
        cJSON_Delete(root);
        if (used == 1) {  // the files of one run
            char p[400];
            struct stat st;
            snprintf(p, sizeof p, "%s/explain-0.png", out);
            assert_int_equal(stat(p, &st), 0);
            assert_true(st.st_size > 1000);
            snprintf(p, sizeof p, "%s/index.html", out);
            assert_int_equal(stat(p, &st), 0);
            snprintf(p, sizeof p, "%s/view.png", out);
            assert_int_equal(stat(p, &st), 0);
        }
    }
    assert_int_equal(used, N_PICTURES);
    // the evaluation page of the same checkpoint shows where it looked for each sampled query
    char page[340], shards[340];
    snprintf(page, sizeof page, "%s/evalpage", g_train_dir);
    snprintf(shards, sizeof shards, "%s/val/val-00000.tar", g_train_dir);
    char *ev[] = {"checkpoint", "--checkpoint", run, "--shards", shards, "--limit", "64", "--html", page, NULL};
    assert_int_equal(vlt_cmd_eval_checkpoint(9, ev), 0);
    char index[400];
    snprintf(index, sizeof index, "%s/index.html", page);
    FILE *hf = fopen(index, "r");
    assert_non_null(hf);
    char *html = calloc(1, 1 << 20);
    assert_true(fread(html, 1, (1 << 20) - 1, hf) > 0);
    fclose(hf);
    int looked = 0;
    for (const char *q = html; (q = strstr(q, "where it looked</div>")); q++) looked++;
    assert_int_equal(looked, 10);
    for (const char *q = html; (q = strstr(q, "<img src=\"img/x")); q += 10) {
        char name[64], path[600];
        struct stat st;
        assert_int_equal(sscanf(q + 10, "%63[^\"]", name), 1);
        snprintf(path, sizeof path, "%s/%s", page, name);
        assert_int_equal(stat(path, &st), 0);
    }
    free(html);
    // bad input is refused with a message naming it: a missing or non-image file for explain, a
    // result naming an image the shards lack and a file that is not JSON for clipscore
    char bad[400], outdir[400];
    snprintf(bad, sizeof bad, "%s/not-an-image.jpg", g_train_dir);
    FILE *bf = fopen(bad, "w");
    assert_non_null(bf);
    fputs("[{\"image_id\": 123456789, \"caption\": \"a red circle\"}]", bf);
    fclose(bf);
    snprintf(outdir, sizeof outdir, "%s/bad-explain", g_train_dir);
    char *e1[] = {"explain", "--checkpoint", run, "--image", "/nonexistent.jpg", "--text", "x", "--out", outdir, NULL};
    assert_int_equal(vlt_cmd_explain(9, e1), 1);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent.jpg"));
    char *e2[] = {"explain", "--checkpoint", run, "--image", bad, "--text", "x", "--out", outdir, NULL};
    assert_int_equal(vlt_cmd_explain(9, e2), 1);
    assert_non_null(strstr(vlt_error_message(), bad));
    char *c1[] = {"clipscore", "--checkpoint", run, "--results", bad, "--shards", shards, "--limit", "8", NULL};
    assert_int_equal(vlt_cmd_eval_clipscore(9, c1), 1);
    assert_non_null(strstr(vlt_error_message(), "image_id 123456789"));
    char *c2[] = {"clipscore", "--checkpoint", run, "--results", shards, "--shards", shards, "--limit", "8", NULL};
    assert_int_equal(vlt_cmd_eval_clipscore(9, c2), 1);
    assert_non_null(strstr(vlt_error_message(), shards));
    on_shape /= used;
    chance /= used;
    print_message("explain: %d one-shape pictures, map mass on the shape's patches %.3f (their share of the picture %.3f)\n",
                  used, on_shape, chance);
    assert_true(on_shape > chance + 0.15);
    assert_true(on_shape > 0.5);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_maps_sit_on_the_named_shape)};
    return cmocka_run_group_tests(tests, train_fixture_setup, train_fixture_teardown);
}
