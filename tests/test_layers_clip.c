// CLIP parity with open_clip on committed fixtures (scripts/reference/make_clip_fixtures.py):
// the open_clip state_dict loads strictly by name, and features, logits, loss and every
// parameter's gradient match the float64 reference. Tolerances are relative to the largest
// magnitude of each reference tensor: forward 1e-5, gradients 1e-4.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "autograd/optim.h"
#include "autograd/rng.h"
#include "checkpoints/safetensors.h"
#include "tests/fixture_io.h"
#include "layers/clip.h"

#define FIX "tests/data/layers/"


static void check_fixture(const char *name) {
    char path[256];
    vlt_model_cfg cfg;
    snprintf(path, sizeof path, FIX "clip_%s/config.json", name);
    assert_int_equal(vlt_model_cfg_load(path, &cfg), VLT_OK);
    vlt_clip m;
    assert_int_equal(vlt_clip_init(&m, &cfg, 0), VLT_OK);
    snprintf(path, sizeof path, FIX "clip_%s/weights.safetensors", name);
    vlt_st_report rep;
    vlt_status s = vlt_safetensors_load_params(path, &m.params, false, &rep);
    if (s != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(rep.n_loaded, m.params.n);
    vlt_st_report_free(&rep);

    vlt_safetensors *io, *gr;
    snprintf(path, sizeof path, FIX "clip_%s/io.safetensors", name);
    assert_int_equal(vlt_safetensors_open(path, &io), VLT_OK);
    snprintf(path, sizeof path, FIX "clip_%s/grads.safetensors", name);
    assert_int_equal(vlt_safetensors_open(path, &gr), VLT_OK);
    vlt_tensor *images = read_f32(io, "images"), *ids = read_ids(io, "ids");
    vlt_tensor *ref_img = read_f32(io, "image_features"), *ref_txt = read_f32(io, "text_features");
    vlt_tensor *ref_logits = read_f32(io, "logits"), *ref_loss = read_f32(io, "loss");

    vlt_clip_output out;
    assert_int_equal(vlt_clip_forward(&m, images, ids, &out), VLT_OK);
    double e_img = rel_err(vlt_f32(out.image_features), vlt_f32(ref_img), ref_img->numel);
    double e_txt = rel_err(vlt_f32(out.text_features), vlt_f32(ref_txt), ref_txt->numel);
    double e_log = rel_err(vlt_f32(out.logits_per_image), vlt_f32(ref_logits), ref_logits->numel);
    double e_loss = fabs(vlt_f32(out.loss)[0] - vlt_f32(ref_loss)[0]) / fabs(vlt_f32(ref_loss)[0]);
    print_message("clip_%s: forward rel err image %.2e text %.2e logits %.2e loss %.2e\n", name, e_img, e_txt, e_log, e_loss);
    assert_true(e_img < 1e-5 && e_txt < 1e-5 && e_log < 1e-5 && e_loss < 1e-5);

    vlt_zero_grad(m.params.t, m.params.n);
    assert_int_equal(vlt_backward(out.loss), VLT_OK);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < m.params.n; i++) {
        vlt_tensor *p = m.params.t[i];
        const vlt_st_tensor *g = vlt_safetensors_get(gr, p->name);
        if (!g) fail_msg("no reference gradient for %s", p->name);
        float *ref = malloc(sizeof(float) * (size_t)p->numel);
        assert_int_equal(vlt_safetensors_read_f32(gr, p->name, ref, p->numel), VLT_OK);
        double e = rel_err(vlt_f32(p->grad), ref, p->numel);
        if (e > worst) { worst = e; worst_name = p->name; }
        free(ref);
    }
    print_message("clip_%s: %d parameter gradients, worst rel err %.2e (%s)\n", name, m.params.n, worst, worst_name);
    assert_true(worst < 1e-4);

    vlt_step_reset();
    vlt_tensor *all[] = {images, ids, ref_img, ref_txt, ref_logits, ref_loss};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vlt_tensor_free(all[i]);
    vlt_safetensors_close(io);
    vlt_safetensors_close(gr);
    vlt_clip_free(&m);
}

static void test_clip_gelu_matches_open_clip(void **state) { (void)state; check_fixture("gelu"); }
static void test_clip_quickgelu_matches_open_clip(void **state) { (void)state; check_fixture("quickgelu"); }
static void test_siglip_matches_open_clip(void **state) { (void)state; check_fixture("siglip"); }

static void test_wrong_weights_are_refused_by_name(void **state) {
    (void)state;
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load(FIX "clip_gelu/config.json", &cfg), VLT_OK);
    cfg.text.width = 32;  // every text tensor now has the wrong shape
    cfg.text.heads = 2;
    cfg.has_logit_bias = true;  // and the model has a key the file lacks
    vlt_clip m;
    assert_int_equal(vlt_clip_init(&m, &cfg, 0), VLT_OK);
    vlt_st_report rep;
    assert_int_not_equal(vlt_safetensors_load_params(FIX "clip_gelu/weights.safetensors", &m.params, false, &rep), VLT_OK);
    const char *msg = vlt_error_message();
    assert_non_null(strstr(msg, "logit_bias"));
    assert_non_null(strstr(msg, "mis-shaped"));
    assert_true(rep.n_missing == 1 && rep.n_misshaped > 0);
    bool listed = false;
    for (int i = 0; i < rep.n_misshaped; i++) listed |= strstr(rep.misshaped[i], "token_embedding.weight") != NULL;
    assert_true(listed);
    vlt_st_report_free(&rep);
    vlt_clip_free(&m);
}

static void test_model_config_errors(void **state) {
    (void)state;
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load("ViT-B-32", &cfg), VLT_OK);
    assert_int_equal(cfg.vision.width, 768);
    assert_int_equal(cfg.vision.width / cfg.vision.head_width, 12);
    assert_int_equal(cfg.text.context_length, 77);
    assert_false(cfg.quick_gelu);
    assert_int_equal(vlt_model_cfg_load("ViT-B-32-quickgelu", &cfg), VLT_OK);
    assert_true(cfg.quick_gelu);
    assert_int_equal(vlt_model_cfg_load("coca_ViT-B-32", &cfg), VLT_OK);
    assert_true(cfg.is_coca && cfg.text.embed_cls && cfg.vision.attentional_pool);
    const char *typo = "{\"embed_dim\": 8, \"vision_cfg\": {\"image_size\": 32, \"layers\": 1, \"width\": 64, "
                       "\"patchsize\": 8}, \"text_cfg\": {\"width\": 64, \"layers\": 1}}";
    assert_int_not_equal(vlt_model_cfg_parse(typo, "typo.json", &cfg), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "unknown key vision_cfg.patchsize (did you mean 'patch_size'?)"));
    const char *unsup = "{\"embed_dim\": 8, \"vision_cfg\": {\"image_size\": 32, \"layers\": 1, \"width\": 64, "
                        "\"patch_size\": 8}, \"text_cfg\": {\"width\": 64, \"layers\": 1, \"hf_model_name\": \"x\"}}";
    assert_int_not_equal(vlt_model_cfg_parse(unsup, "u.json", &cfg), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "text_cfg.hf_model_name is an open_clip option vlt does not implement"));
    assert_int_not_equal(vlt_model_cfg_parse("{\"embed_dim\": 8,", "bad.json", &cfg), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "bad.json"));
    assert_int_equal(vlt_model_cfg_load("no-such-model", &cfg), VLT_ERR_IO);
}

static void test_tiny_clip_trains(void **state) {
    (void)state;
    // 8 fixed image-caption pairs: the contrastive loss must fall well below log(8).
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load(FIX "clip_gelu/config.json", &cfg), VLT_OK);
    vlt_clip m;
    assert_int_equal(vlt_clip_init(&m, &cfg, 42), VLT_OK);
    bool *decay = malloc((size_t)m.params.n);
    vlt_clip_decay_mask(&m.params, decay);
    vlt_adamw *opt = vlt_adamw_new(m.params.t, decay, m.params.n, (vlt_adamw_cfg){0.9f, 0.98f, 1e-6f, 0.1f});
    vlt_tensor *images = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(8, 3, 32, 32), "images");
    vlt_rng_fill_normal(vlt_f32(images), (size_t)images->numel, 0, 1, 5, 5, 0);
    vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(8, 16), "ids");
    for (int b = 0; b < 8; b++) {
        vlt_i32(ids)[b * 16] = 98;
        for (int t = 1; t < 4; t++) vlt_i32(ids)[b * 16 + t] = 1 + (b * 7 + t * 13) % 90;
        vlt_i32(ids)[b * 16 + 4] = 99;
    }
    float first = 0, loss = 0;
    for (int step = 0; step < 60; step++) {
        vlt_clip_output out;
        assert_int_equal(vlt_clip_forward(&m, images, ids, &out), VLT_OK);
        loss = vlt_f32(out.loss)[0];
        if (step == 0) first = loss;
        vlt_zero_grad(m.params.t, m.params.n);
        assert_int_equal(vlt_backward(out.loss), VLT_OK);
        vlt_adamw_step(opt, 1e-3f);
        vlt_clip_clamp_logit_scale(&m);
        vlt_step_reset();
    }
    print_message("tiny clip on 8 pairs: loss %.3f -> %.3f in 60 steps\n", first, loss);
    assert_true(first > 1.5f);
    assert_true(loss < 0.2f);
    // decay mask: 2-D weights decay, norms/biases/logit_scale do not
    for (int i = 0; i < m.params.n; i++) {
        const char *n = m.params.t[i]->name;
        if (!strcmp(n, "logit_scale") || strstr(n, "ln_1.weight") || strstr(n, "in_proj_bias")) assert_false(decay[i]);
        if (strstr(n, "in_proj_weight") || !strcmp(n, "token_embedding.weight")) assert_true(decay[i]);
    }
    free(decay);
    vlt_adamw_free(opt);
    vlt_tensor_free(images);
    vlt_tensor_free(ids);
    vlt_clip_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip_gelu_matches_open_clip),
        cmocka_unit_test(test_clip_quickgelu_matches_open_clip),
        cmocka_unit_test(test_siglip_matches_open_clip),
        cmocka_unit_test(test_wrong_weights_are_refused_by_name),
        cmocka_unit_test(test_model_config_errors),
        cmocka_unit_test(test_tiny_clip_trains),
    };
    int rc = cmocka_run_group_tests_name("layers_clip", tests, NULL, NULL);
    vlt_tape_shutdown();
    return rc;
}
