// ALBEF's "where the model looked" (Grad-CAM of the ITM score on a fusion layer's cross-attention,
// layers/albef.h vlt_albef_gradcam, behind VLT_CAP_EXPLAIN):
// - the probed forward (cross-attention unfused, its probabilities kept) equals the normal one;
// - the maps' structure on a random model: non-negative, not constant, padding rows zero, the
//   words' maps differ, the whole-text map is the mean of the tokens' maps;
// - a tiny ALBEF trained on the synthetic shapes puts the map of a one-shape caption, and the map of
//   the shape's word, on the shape: the share of the map's mass on the patches the shape covers,
//   against the share those patches have of the picture; `vlt explain` writes the whole-text and
//   per-word overlays and names the words in its JSON.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <cJSON.h>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "data/image.h"
#include "data/synth.h"
#include "eval/json_file.h"
#include "layers/model.h"
#include "layers/model_config.h"
#include "layers/transformer.h"
#include "train/commands.h"
#include "train/trainer.h"
#include "tests/train_fixture.h"

static char g_model[512];

static int setup(void **state) {
    if (train_fixture_setup(state)) return -1;
    snprintf(g_model, sizeof g_model, "%s/tiny-albef-explain.json", g_train_dir);
    // 32 px pictures in 4 px patches (an 8 x 8 grid); fusion layers 2 and 3: Grad-CAM on layer 2
    return train_fixture_tiny_albef(g_model, 4, 256, 4, false);
}

static void load_model(vlt_model *m) {
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load(g_model, &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    if (vlt_model_create(m, &cfg, 7) != VLT_OK) fail_msg("%s", vlt_error_message());
}

static vlt_tensor *random_image(int S, uint64_t seed) {
    vlt_tensor *im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(1, 3, S, S), "image");
    vlt_init_normal(im, 1.0f, seed);
    return im;
}

static void test_probe_and_map_structure(void **state) {
    (void)state;
    vlt_model m;
    load_model(&m);
    vlt_albef *a = (vlt_albef *)m.impl;
    assert_true(vlt_model_can(&m, VLT_CAP_EXPLAIN));
    assert_true(vlt_model_explains_tokens(&m));
    int layer = vlt_albef_gradcam_layer(a), S = m.cfg.vision.image_size, G = vlt_model_patch_grid(&m), T = 20;
    assert_int_equal(layer, 2);   // fusion_layer + 2 = 4 is past the 4 layers, 3 the last: the first fusion layer
    assert_int_equal(G, 8);
    vlt_tensor *im = random_image(S, 11);
    vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(1, T), "ids");
    int len = vlt_model_tokenize(&m, "a small red triangle above a large blue circle", vlt_i32(ids), NULL, T);
    assert_true(len == 11);

    // the probed forward equals the fused one
    {
        vlt_tensor *atts = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, ids->shape);
        for (int t = 0; t < T; t++) vlt_i32(atts)[t] = vlt_i32(ids)[t] != 0;
        vlt_tensor *pad = vlt_bert_key_pad(atts), *tok = vlt_deit_forward(&a->visual, im), *probs = NULL;
        vlt_tensor *h = vlt_bert_forward(&a->text, VLT_BERT_TEXT, ids, pad, NULL, NULL);
        vlt_tensor *x = vlt_bert_forward(&a->text, VLT_BERT_FUSION, h, pad, tok, NULL);
        vlt_tensor *y = vlt_bert_forward_probe(&a->text, VLT_BERT_FUSION, h, pad, tok, layer, &probs);
        assert_non_null(x);
        assert_non_null(y);
        assert_non_null(probs);
        assert_int_equal(probs->ndim, 4);
        assert_int_equal(probs->shape[1], 2);
        assert_int_equal(probs->shape[2], T);
        assert_int_equal(probs->shape[3], G * G + 1);
        double d = 0;
        for (int64_t i = 0; i < x->numel; i++) d = fmax(d, fabs(vlt_f32(x)[i] - vlt_f32(y)[i]));
        print_message("probed fusion forward vs fused: max |diff| %.2e\n", d);
        assert_true(d < 1e-5);
        for (int t = 0; t < T; t++) {   // each row of probabilities sums to 1
            double sum = 0;
            for (int n = 0; n < G * G + 1; n++) sum += vlt_f32(probs)[(size_t)t * (G * G + 1) + n];
            assert_true(fabs(sum - 1) < 1e-5);
        }
        // a layer without cross-attention is refused by name
        assert_null(vlt_bert_forward_probe(&a->text, VLT_BERT_FUSION, h, pad, tok, 1, &probs));
        assert_non_null(strstr(vlt_error_message(), "probe layer 1"));
        vlt_step_reset();
    }

    float *maps = malloc(sizeof(float) * (size_t)T * G * G), whole[64], score, score2;
    assert_int_equal(vlt_model_explain_tokens(&m, im, ids, maps, &score), VLT_OK);
    vlt_step_reset();
    assert_int_equal(vlt_model_explain(&m, im, ids, whole, &score2), VLT_OK);
    vlt_step_reset();
    assert_float_equal(score, score2, 1e-6);
    // the score is the raw ITM positive logit: the head on the fused [CLS]
    {
        vlt_no_grad_enter();
        vlt_tensor *tk = vlt_deit_forward(&a->visual, im);
        vlt_tensor *atts = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, ids->shape);
        for (int t = 0; t < T; t++) vlt_i32(atts)[t] = vlt_i32(ids)[t] != 0;
        vlt_tensor *pad = vlt_bert_key_pad(atts);
        vlt_tensor *h = vlt_bert_forward(&a->text, VLT_BERT_MULTI_MODAL, ids, pad, tk, NULL);
        vlt_tensor *cls = vlt_reshape(vlt_slice(h, 1, 0, 1), 2, VLT_SHAPE(1, h->shape[2]));
        vlt_tensor *lg = vlt_linear(cls, a->itm_w, a->itm_b);
        assert_float_equal(vlt_f32(lg)[1], score, 1e-4);
        vlt_no_grad_exit();
        vlt_step_reset();
    }
    double mean_err = 0;
    for (int p = 0; p < G * G; p++) {
        double mean = 0;
        for (int t = 0; t < len; t++) mean += maps[(size_t)t * G * G + p];
        mean_err = fmax(mean_err, fabs(mean / len - whole[p]));
    }
    assert_true(mean_err < 1e-6);
    int differ = 0;
    for (int t = 0; t < T; t++) {
        double mn = INFINITY, mx = -INFINITY;
        for (int p = 0; p < G * G; p++) {
            float v = maps[(size_t)t * G * G + p];
            assert_true(v >= 0);
            mn = fmin(mn, v);
            mx = fmax(mx, v);
        }
        if (t >= len) assert_true(mx == 0);    // padding
        else assert_true(mx > mn);             // not constant
        if (t >= 2 && t < len) {
            double dd = 0;
            for (int p = 0; p < G * G; p++) dd += fabs(maps[(size_t)t * G * G + p] - maps[(size_t)(t - 1) * G * G + p]);
            differ += dd > 1e-6 * mx;
        }
    }
    assert_int_equal(differ, len - 2);         // every word's map differs from the previous one's
    free(maps);
    vlt_tensor_free(im);
    vlt_tensor_free(ids);
    vlt_model_free(&m);
}

// the patches of a G-grid over an S-px picture that the shape's box touches
static bool on_shape(const vlt_synth_scene *sc, int S, int G, int gx, int gy) {
    float P = (float)S / G;
    return (gx + 1) * P > sc->obj[0].cx - sc->obj[0].r && gx * P < sc->obj[0].cx + sc->obj[0].r &&
           (gy + 1) * P > sc->obj[0].cy - sc->obj[0].r && gy * P < sc->obj[0].cy + sc->obj[0].r;
}

#define N_PICTURES 24
static const char *const SHAPES[] = {"circle", "square", "triangle", "diamond", "cross", NULL};
static const char *const COLOURS[] = {"red", "green", "blue", "yellow", "purple", "orange", NULL};

static void test_trained_maps_sit_on_the_shape(void **state) {
    (void)state;
    vlt_run_config c;
    train_fixture_config(&c, "albef-explain");
    snprintf(c.model_name, sizeof c.model_name, "%s", g_model);
    c.batch_size = 32;
    c.steps = 300;
    c.warmup = 20;
    c.lr = 2e-3;
    c.weight_decay = 0.02;
    c.checkpoint_every = c.steps;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_trainer_free(t);

    char run[300], img_path[320], out[320], json[340];
    snprintf(run, sizeof run, "%s/albef-explain", g_train_dir);
    double whole_on = 0, word_on = 0, colour_on = 0, chance = 0;
    int used = 0, S = 32;
    for (uint64_t idx = 2000000; used < N_PICTURES && idx < 2000000 + 400; idx++) {
        vlt_synth_scene sc;
        vlt_synth_scene_make(3, idx, S, &sc);
        if (sc.n_objects != 1) continue;
        vlt_image img = {0};
        char caption[128];
        assert_int_equal(vlt_synth_sample(3, idx, S, &img, caption, sizeof caption, &sc), VLT_OK);
        uint8_t *jpg = NULL;
        size_t len = 0;
        assert_int_equal(vlt_image_encode_jpeg(&img, 95, &jpg, &len), VLT_OK);
        snprintf(img_path, sizeof img_path, "%s/apic%llu.jpg", g_train_dir, (unsigned long long)idx);
        FILE *f = fopen(img_path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(jpg, 1, len, f), len);
        fclose(f);
        free(jpg);
        vlt_image_free(&img);
        snprintf(out, sizeof out, "%s/aexplain-%llu", g_train_dir, (unsigned long long)idx);
        char *argv[] = {"explain", "--checkpoint", run, "--image", img_path, "--text", caption, "--out", out, NULL};
        if (vlt_cmd_explain(9, argv) != 0) fail_msg("vlt explain failed: %s", vlt_error_message());
        snprintf(json, sizeof json, "%s/explain.json", out);
        cJSON *root = NULL;
        assert_int_equal(vlt_eval_json_load(json, &root), VLT_OK);
        int G = cJSON_GetObjectItem(root, "grid")->valueint;
        assert_int_equal(G, 8);
        cJSON *text = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "texts"), 0);
        cJSON *map = cJSON_GetObjectItem(text, "map"), *words = cJSON_GetObjectItem(text, "words");
        assert_non_null(cJSON_GetObjectItem(text, "itm_logit"));
        assert_int_equal(cJSON_GetArraySize(map), G * G);
        // the words are the caption's, in order
        char joined[256] = "";
        cJSON *shape_map = NULL, *colour_map = NULL, *w;
        cJSON_ArrayForEach(w, words) {
            const char *word = cJSON_GetObjectItem(w, "word")->valuestring;
            snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s", joined[0] ? " " : "", word);
            for (int k = 0; SHAPES[k]; k++)
                if (!strcmp(word, SHAPES[k])) shape_map = cJSON_GetObjectItem(w, "map");
            for (int k = 0; COLOURS[k]; k++)
                if (!strcmp(word, COLOURS[k])) colour_map = cJSON_GetObjectItem(w, "map");
            char png[600];
            struct stat st;
            snprintf(png, sizeof png, "%s/%s", out, cJSON_GetObjectItem(w, "png")->valuestring);
            assert_int_equal(stat(png, &st), 0);
        }
        assert_string_equal(joined, caption);
        assert_non_null(shape_map);
        assert_non_null(colour_map);
        double tot[3] = {0}, in[3] = {0}, mn = INFINITY, mx = -INFINITY;
        int cells = 0;
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++) {
                bool hit = on_shape(&sc, S, G, gx, gy);
                double v = cJSON_GetArrayItem(map, gy * G + gx)->valuedouble;
                double u = cJSON_GetArrayItem(shape_map, gy * G + gx)->valuedouble;
                double c2 = cJSON_GetArrayItem(colour_map, gy * G + gx)->valuedouble;
                tot[0] += v, tot[1] += u, tot[2] += c2;
                in[0] += hit ? v : 0, in[1] += hit ? u : 0, in[2] += hit ? c2 : 0;
                cells += hit;
                mn = fmin(mn, v);
                mx = fmax(mx, v);
            }
        assert_true(mx > mn);
        whole_on += tot[0] > 0 ? in[0] / tot[0] : 0;
        word_on += tot[1] > 0 ? in[1] / tot[1] : 0;
        colour_on += tot[2] > 0 ? in[2] / tot[2] : 0;
        chance += (double)cells / (G * G);
        used++;
        cJSON_Delete(root);
    }
    assert_int_equal(used, N_PICTURES);
    whole_on /= used;
    word_on /= used;
    colour_on /= used;
    chance /= used;
    print_message("albef explain: %d one-shape pictures, map mass on the shape's patches: the shape's word %.3f, the "
                  "colour's word %.3f, whole text %.3f (their share of the picture %.3f)\n",
                  used, word_on, colour_on, whole_on, chance);
    // the words that name the shape look at it; the whole text's map (the mean over every token,
    // [CLS], [SEP] and "a" included, as Grounding.py) is not asserted beyond being a map
    assert_true(word_on > 0.5);
    assert_true(word_on > chance + 0.25);
    assert_true(colour_on > chance + 0.15);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_probe_and_map_structure),
                                       cmocka_unit_test(test_trained_maps_sit_on_the_shape)};
    return cmocka_run_group_tests(tests, setup, train_fixture_teardown);
}
