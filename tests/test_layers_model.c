// The model interface (layers/model.h): each kind's capabilities, the named batch and loss
// settings, refusals by name, and that a loss through the interface is exactly the kind's own.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/ops.h"
#include "autograd/rng.h"
#include "autograd/tape.h"
#include "layers/model.h"

static void teardown_arena(void) { vlt_step_reset(); }

static vlt_model_cfg load_cfg(const char *name) {
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load(name, &cfg) != VLT_OK) fail_msg("%s: %s", name, vlt_error_message());
    return cfg;
}

// A small batch for cfg: images N(0, 1), ids with SOT first, EOT at a varying length, pad after.
static void make_batch(const vlt_model_cfg *cfg, int B, vlt_tensor **images, vlt_tensor **ids) {
    int S = cfg->vision.image_size, T = cfg->text.context_length, V = cfg->text.vocab_size;
    *images = vlt_tensor_new(VLT_F32, VLT_CPU, 4, (const int[]){B, 3, S, S}, "images");
    *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, (const int[]){B, T}, "ids");
    vlt_rng_fill_normal(vlt_f32(*images), (size_t)(*images)->numel, 0, 1, 7, 1, 0);
    for (int b = 0; b < B; b++) {
        int len = 3 + b % (T - 3);
        for (int i = 0; i < T; i++) {
            int32_t v = i == 0 ? V - 2 : i < len ? (int32_t)(1 + vlt_rng_below(8, (uint64_t)b, (uint64_t)i, (uint64_t)(V - 3)))
                                 : i == len ? V - 1 : cfg->text.pad_id;
            vlt_i32(*ids)[b * T + i] = v;
        }
    }
}

static void test_kinds_and_capabilities(void **state) {
    (void)state;
    struct { const char *cfg; const char *kind, *title; unsigned caps; bool siglip; } cases[] = {
        {"tiny-clip", "clip", "CLIP", VLT_CAP_EMBED | VLT_CAP_EXPLAIN, false},
        {"tiny-clip", "siglip", "SigLIP", VLT_CAP_EMBED | VLT_CAP_EXPLAIN, true},
        {"tiny-coca", "coca", "CoCa", VLT_CAP_EMBED | VLT_CAP_CAPTION | VLT_CAP_EXPLAIN, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vlt_model_cfg cfg = load_cfg(cases[i].cfg);
        if (cases[i].siglip) {
            cfg.has_logit_bias = true;
            cfg.init_logit_bias = -10.0f;
        }
        vlt_model m;
        assert_int_equal(vlt_model_create(&m, &cfg, 1), VLT_OK);
        assert_string_equal(vlt_model_kind_of(&cfg), cases[i].kind);
        assert_string_equal(vlt_model_kind(&m), cases[i].kind);
        assert_string_equal(vlt_model_title(&m), cases[i].title);
        assert_int_equal(m.ops->caps, cases[i].caps);
        assert_true(m.params && m.params->n > 0 && m.logit_scale);
        // the GPU refusal is a property of the kind, not of a name test in the trainer; none of these
        // kinds is refused any more (CoCa since its pad mask and generation run on the device)
        assert_null(vlt_model_gpu_unsupported(&m));
        if (!(cases[i].caps & VLT_CAP_CAPTION)) {
            vlt_generate_cfg g = vlt_generate_defaults();
            int32_t out[64];
            assert_int_equal(vlt_model_caption(&m, NULL, &g, out), VLT_ERR_UNSUPPORTED);
            assert_non_null(strstr(vlt_error_message(), cases[i].title));
        }
        vlt_model_free(&m);
        assert_null(m.ops);
    }
}

static void test_batch_and_loss_opts(void **state) {
    (void)state;
    vlt_model_batch b = {0};
    vlt_tensor *x = vlt_tensor_new(VLT_F32, VLT_CPU, 1, (const int[]){3}, "x");
    vlt_tensor *y = vlt_tensor_new(VLT_F32, VLT_CPU, 1, (const int[]){3}, "y");
    assert_int_equal(vlt_model_batch_set(&b, "a", x), VLT_OK);
    assert_int_equal(vlt_model_batch_set(&b, "a", y), VLT_OK);  // replaces
    assert_int_equal(b.n, 1);
    assert_ptr_equal(vlt_model_batch_get(&b, "a"), y);
    assert_null(vlt_model_batch_get(&b, "b"));
    char names[VLT_MODEL_BATCH_MAX][8];
    for (int i = 1; i < VLT_MODEL_BATCH_MAX; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        assert_int_equal(vlt_model_batch_set(&b, names[i], x), VLT_OK);
    }
    assert_int_equal(vlt_model_batch_set(&b, "one-too-many", x), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "one-too-many"));

    vlt_loss_opts o = vlt_loss_opts_default();
    assert_true(o.token_loss_scale == 1.0f && !o.contrastive);
    assert_true(vlt_loss_opts_get(&o, "caption_weight", 2.0f) == 2.0f);
    assert_int_equal(vlt_loss_opts_set(&o, "caption_weight", 0.5f), VLT_OK);
    assert_int_equal(vlt_loss_opts_set(&o, "caption_weight", 0.25f), VLT_OK);
    assert_int_equal(o.n, 1);
    assert_true(vlt_loss_opts_get(&o, "caption_weight", 2.0f) == 0.25f);
    assert_true(vlt_loss_opts_get(NULL, "caption_weight", 2.0f) == 2.0f);
    vlt_tensor_free(x);
    vlt_tensor_free(y);
}

// The interface adds nothing to the numbers: CLIP's and CoCa's losses (and CoCa's named parts,
// with the run config's weights applied) equal the kinds' own forward bit for bit.
static void test_loss_equals_the_kind(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        vlt_model_cfg cfg = load_cfg(k ? "tiny-coca" : "tiny-clip");
        vlt_model m;
        assert_int_equal(vlt_model_create(&m, &cfg, 5), VLT_OK);
        vlt_tensor *images, *ids;
        make_batch(&cfg, 4, &images, &ids);
        vlt_model_batch b = {0};
        assert_int_equal(vlt_model_batch_set(&b, VLT_FIELD_IMAGES, images), VLT_OK);
        // a batch without text is refused by the field's name
        vlt_model_loss out;
        assert_int_equal(vlt_model_loss_forward(&m, &b, NULL, &out), VLT_ERR_ARG);
        assert_non_null(strstr(vlt_error_message(), VLT_FIELD_TEXT_IDS));
        assert_int_equal(vlt_model_batch_set(&b, VLT_FIELD_TEXT_IDS, ids), VLT_OK);
        vlt_loss_opts o = vlt_loss_opts_default();
        assert_int_equal(vlt_loss_opts_set(&o, "caption_weight", 1.5f), VLT_OK);
        assert_int_equal(vlt_loss_opts_set(&o, "clip_weight", 0.75f), VLT_OK);
        assert_int_equal(vlt_model_loss_forward(&m, &b, &o, &out), VLT_OK);
        float via = vlt_f32(out.loss)[0], direct;
        if (k == 0) {
            assert_int_equal(out.n_parts, 0);
            vlt_clip_output co;
            assert_int_equal(vlt_clip_forward((vlt_clip *)m.impl, images, ids, &co), VLT_OK);
            direct = vlt_f32(co.loss)[0];
            assert_int_equal(vlt_model_loss_tokens(&m, &b), 0);
        } else {
            assert_int_equal(out.n_parts, 2);
            assert_string_equal(out.part_names[0], "contrastive");
            assert_string_equal(out.part_names[1], "caption");
            float p0 = vlt_f32(out.parts[0])[0], p1 = vlt_f32(out.parts[1])[0];
            vlt_coca_loss_cfg lc = VLT_COCA_LOSS_DEFAULTS;
            lc.caption_loss_weight = 1.5f;
            lc.clip_loss_weight = 0.75f;
            vlt_coca_output co;
            assert_int_equal(vlt_coca_forward((vlt_coca *)m.impl, images, ids, lc, &co), VLT_OK);
            direct = vlt_f32(co.loss)[0];
            assert_true(p0 == vlt_f32(co.contrastive_loss)[0] && p1 == vlt_f32(co.caption_loss)[0]);
            // caption targets: positions 1.. that are not padding
            int64_t want = 0;
            for (int r = 0; r < 4; r++)
                for (int i = 1; i < cfg.text.context_length; i++) want += vlt_i32(ids)[r * cfg.text.context_length + i] != cfg.text.pad_id;
            assert_int_equal(vlt_model_loss_tokens(&m, &b), want);
        }
        assert_true(isfinite(via) && via == direct);
        vlt_step_reset();
        vlt_tensor_free(images);
        vlt_tensor_free(ids);
        vlt_model_free(&m);
    }
}

// Every kind that explains: the score is the cosine of the kind's own normalized features, the map
// covers the patch grid with finite, non-negative, non-constant values, and no parameter gradient
// is left behind.
static void test_explain_every_kind(void **state) {
    (void)state;
    const char *cfgs[] = {"tiny-clip", "tiny-coca"};
    for (int k = 0; k < 2; k++) {
        vlt_model_cfg cfg = load_cfg(cfgs[k]);
        vlt_model m;
        assert_int_equal(vlt_model_create(&m, &cfg, 11), VLT_OK);
        assert_true(vlt_model_can(&m, VLT_CAP_EXPLAIN));
        vlt_tensor *images, *ids;
        make_batch(&cfg, 1, &images, &ids);
        int G = vlt_model_patch_grid(&m);
        assert_true(G > 1);
        float *map = calloc((size_t)G * G, sizeof *map), score = NAN;
        assert_int_equal(vlt_model_explain(&m, images, ids, map, &score), VLT_OK);
        vlt_tensor *fi = vlt_model_encode_image(&m, images), *ft = vlt_model_encode_text(&m, ids);
        assert_non_null(fi);
        assert_non_null(ft);
        double cos = 0;
        for (int e = 0; e < fi->shape[1]; e++) cos += (double)vlt_f32(fi)[e] * vlt_f32(ft)[e];
        assert_true(fabs(cos - score) < 1e-5);
        float lo = map[0], hi = map[0];
        for (int i = 0; i < G * G; i++) {
            assert_true(isfinite(map[i]) && map[i] >= 0);
            lo = fminf(lo, map[i]);
            hi = fmaxf(hi, map[i]);
        }
        assert_true(hi > lo);
        for (int i = 0; i < m.params->n; i++)
            if (m.params->t[i]->grad)
                for (int64_t j = 0; j < m.params->t[i]->numel; j++) assert_true(vlt_f32(m.params->t[i]->grad)[j] == 0);
        // two images at once are refused with the shape rule
        vlt_tensor *two, *ids2;
        make_batch(&cfg, 2, &two, &ids2);
        assert_int_equal(vlt_model_explain(&m, two, ids, map, &score), VLT_ERR_SHAPE);
        vlt_step_reset();
        free(map);
        vlt_tensor_free(two);
        vlt_tensor_free(ids2);
        vlt_tensor_free(images);
        vlt_tensor_free(ids);
        vlt_model_free(&m);
    }
}

// vlt_model_create_shapes (vlt model list, info) builds the table of every kind with the names,
// shapes, dtypes and trainable flags of vlt_model_create's, hence the same counts, without
// drawing its random values; and the next vlt_model_create draws them again.
static void test_shapes_only_table_equals_the_built_one(void **state) {
    (void)state;
    struct { const char *cfg; int vqa_answers, fusion_layers; bool siglip; } cases[] = {
        {"tiny-clip", 0, 0, false}, {"tiny-clip", 0, 0, true}, {"tiny-coca", 0, 0, false},
        {"tiny-clip", 7, 0, false}, {"tiny-clip", 7, 1, false}, {"tiny-albef", 0, 0, false},
        {"demo-albef-vqa", 0, 0, false},
    };
    const char *kinds_seen[8];
    int n_kinds = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vlt_model_cfg cfg = load_cfg(cases[c].cfg);
        cfg.vqa.n_answers = cases[c].vqa_answers;
        cfg.vqa.hidden = cases[c].vqa_answers ? 16 : 0;
        cfg.vqa.fusion_layers = cases[c].fusion_layers;
        if (cases[c].siglip) {
            cfg.has_logit_bias = true;
            cfg.init_logit_bias = -10.0f;
        }
        vlt_model full, shapes, again;
        assert_int_equal(vlt_model_create_shapes(&shapes, &cfg), VLT_OK);
        assert_int_equal(vlt_model_create(&full, &cfg, 3), VLT_OK);
        assert_string_equal(vlt_model_kind(&shapes), vlt_model_kind(&full));
        bool seen = false;
        for (int k = 0; k < n_kinds; k++) seen |= !strcmp(kinds_seen[k], vlt_model_kind(&full));
        if (!seen) kinds_seen[n_kinds++] = vlt_model_kind(&full);
        assert_int_equal(shapes.params->n, full.params->n);
        int drawn = 0;   // tensors the full build filled with random values and the shapes build left at 0
        for (int i = 0; i < full.params->n; i++) {
            vlt_tensor *a = shapes.params->t[i], *b = full.params->t[i];
            assert_string_equal(a->name, b->name);
            assert_true(vlt_tensor_same_shape(a, b));
            assert_int_equal(a->dtype, b->dtype);
            assert_int_equal(a->requires_grad, b->requires_grad);
            // parameters, their momentum copies and ALBEF's queues alike
            if (b->dtype != VLT_F32 || b->numel < 64) continue;
            bool a_zero = true, b_varies = false;
            for (int64_t j = 0; j < b->numel; j++) {
                a_zero &= vlt_f32(a)[j] == 0.0f;
                b_varies |= vlt_f32(b)[j] != vlt_f32(b)[0];
            }
            if (b_varies) {
                if (!a_zero) fail_msg("%s: %s has values in the shapes-only build", cases[c].cfg, a->name);
                drawn++;
            }
        }
        assert_true(drawn > 4);
        assert_int_equal(vlt_model_trainable_numel(&shapes), vlt_model_trainable_numel(&full));
        assert_int_equal(vlt_params_numel(shapes.params), vlt_params_numel(full.params));
        // the switch is off again: a later build draws the same values as the first
        assert_int_equal(vlt_model_create(&again, &cfg, 3), VLT_OK);
        for (int i = 0; i < full.params->n; i++)
            assert_memory_equal(again.params->t[i]->data, full.params->t[i]->data,
                                (size_t)full.params->t[i]->numel * vlt_dtype_size(full.params->t[i]->dtype));
        vlt_model_free(&again);
        vlt_model_free(&full);
        vlt_model_free(&shapes);
    }
    assert_int_equal(n_kinds, 6);   // clip, siglip, coca, clip_vqa, albef, albef_vqa
}

static int teardown(void **state) {
    (void)state;
    teardown_arena();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kinds_and_capabilities, teardown),
        cmocka_unit_test_teardown(test_batch_and_loss_opts, teardown),
        cmocka_unit_test_teardown(test_loss_equals_the_kind, teardown),
        cmocka_unit_test_teardown(test_explain_every_kind, teardown),
        cmocka_unit_test_teardown(test_shapes_only_table_equals_the_built_one, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
