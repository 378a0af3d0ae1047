// ALBEF parity with the float64 PyTorch reference of the authors' pretraining step
// (scripts/reference/albef_ref.py, fixtures tests/data/albef/{tiny,tiny2}, see their README):
// the state_dict with the released checkpoint's names loads strictly (tied names, position_ids
// buffer, momentum copies, queues, queue_ptr); with the reference's MLM masks and hard negatives
// the three loss terms match to 1e-5 relative, every trainable gradient to 1e-4 (relative to the
// tensor's largest reference magnitude, floored for the key biases (at their key weights' largest
// gradient, at least 1e-3) whose exact gradient is 0), and after two SGD steps (lr 0.01) every
// tensor — weights, momentum copies (EMA), queues,
// queue_ptr — matches to float rounding. Also: the draws (masking rules and rates, negatives never
// the positive), interpolation of the position embedding, config refusals.
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
#include "layers/albef.h"
#include "layers/model.h"
#include "tests/fixture_io.h"

static const char *const FIXTURES[] = {"tests/data/albef/tiny/", "tests/data/albef/tiny2/"};

static vlt_tensor *read_i32_any(vlt_safetensors *f, const char *name) {
    const vlt_st_tensor *t = vlt_safetensors_get(f, name);
    if (!t) fail_msg("fixture lacks %s", name);
    int shape[4];
    for (int d = 0; d < t->ndim; d++) shape[d] = (int)t->shape[d];
    vlt_tensor *x = vlt_tensor_new(VLT_I32, VLT_CPU, t->ndim, shape, name);
    int64_t *tmp = malloc(sizeof(int64_t) * (size_t)x->numel);
    assert_int_equal(vlt_safetensors_read_i64(f, name, tmp, x->numel), VLT_OK);
    for (int64_t i = 0; i < x->numel; i++) vlt_i32(x)[i] = (int32_t)tmp[i];
    free(tmp);
    return x;
}

static double scalar(vlt_safetensors *f, const char *name) {
    float v;
    assert_int_equal(vlt_safetensors_read_f32(f, name, &v, 1), VLT_OK);
    return v;
}

// max |a - ref| / max(max |ref|, floor)
static double err_floor(const float *a, const float *ref, int64_t n, double floor_) {
    double d = 0, m = floor_;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - ref[i]));
        m = fmax(m, fabs((double)ref[i]));
    }
    return d / m;
}

typedef struct {
    vlt_albef m;
    vlt_safetensors *io;
    vlt_albef_inputs in;
} fixture;

static void load(fixture *f, const char *dir) {
    char p[256];
    vlt_model_cfg cfg;
    snprintf(p, sizeof p, "%sconfig.json", dir);
    if (vlt_model_cfg_load(p, &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_true(cfg.is_albef);
    if (vlt_albef_init(&f->m, &cfg, 7) != VLT_OK) fail_msg("%s", vlt_error_message());
    snprintf(p, sizeof p, "%sweights.safetensors", dir);
    vlt_st_report rep;
    if (vlt_safetensors_load_params(p, &f->m.params, false, &rep) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(rep.n_loaded, f->m.params.n);
    vlt_st_report_free(&rep);
    snprintf(p, sizeof p, "%sio.safetensors", dir);
    assert_int_equal(vlt_safetensors_open(p, &f->io), VLT_OK);
    f->in = (vlt_albef_inputs){
        .images = read_f32(f->io, "image"), .ids = read_i32_any(f->io, "text_ids"),
        .atts = read_i32_any(f->io, "text_atts"), .mlm_ids = read_i32_any(f->io, "mlm_ids"),
        .mlm_labels = read_i32_any(f->io, "mlm_labels"), .neg_image_idx = read_i32_any(f->io, "neg_image_idx"),
        .neg_text_idx = read_i32_any(f->io, "neg_text_idx"), .alpha = (float)scalar(f->io, "alpha"), .step = 1};
}

static void unload(fixture *f) {
    vlt_step_reset();
    vlt_tensor *t[] = {f->in.images, f->in.ids, f->in.atts, f->in.mlm_ids, f->in.mlm_labels, f->in.neg_image_idx,
                       f->in.neg_text_idx};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) vlt_tensor_free(t[i]);
    vlt_safetensors_close(f->io);
    vlt_albef_free(&f->m);
}

static double rel1(const char *dir, const char *what, vlt_tensor *got, double ref) {
    if (!got) fail_msg("%s: %s", what, vlt_error_message());
    double e = fabs(vlt_f32(got)[0] - ref) / fmax(fabs(ref), 1e-30);
    print_message("%s %-14s %.8f  reference %.8f  rel err %.2e\n", dir, what, vlt_f32(got)[0], ref, e);
    return e;
}

static void sgd(vlt_albef *m, float lr) {
    for (int i = 0; i < m->params.n; i++) {
        vlt_tensor *p = m->params.t[i];
        if (!p->requires_grad) continue;
        for (int64_t j = 0; j < p->numel; j++) vlt_f32(p)[j] -= lr * vlt_f32(p->grad)[j];
    }
}

static void test_albef_step_matches_reference(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof FIXTURES / sizeof *FIXTURES; k++) {
        const char *dir = FIXTURES[k];
        fixture f;
        load(&f, dir);
        vlt_albef_output out;
        if (vlt_albef_forward(&f.m, &f.in, &out) != VLT_OK) fail_msg("%s", vlt_error_message());
        double e = 0;
        e = fmax(e, rel1(dir, "loss_itc", out.loss_itc, scalar(f.io, "loss_itc")));
        e = fmax(e, rel1(dir, "loss_itm", out.loss_itm, scalar(f.io, "loss_itm")));
        e = fmax(e, rel1(dir, "loss_mlm", out.loss_mlm, scalar(f.io, "loss_mlm")));
        e = fmax(e, rel1(dir, "loss", out.loss, scalar(f.io, "loss")));
        assert_true(e < 1e-5);
        vlt_tensor *rf = read_f32(f.io, "image_feat");
        double fe = rel_err(vlt_f32(out.image_feat), vlt_f32(rf), rf->numel);
        vlt_tensor_free(rf);
        rf = read_f32(f.io, "text_feat");
        fe = fmax(fe, rel_err(vlt_f32(out.text_feat), vlt_f32(rf), rf->numel));
        vlt_tensor_free(rf);
        assert_true(fe < 1e-5);

        // gradients of every trainable parameter
        vlt_zero_grad(f.m.params.t, f.m.params.n);
        assert_int_equal(vlt_backward(out.loss), VLT_OK);
        char p[256];
        snprintf(p, sizeof p, "%sgrads.safetensors", dir);
        vlt_safetensors *gr;
        assert_int_equal(vlt_safetensors_open(p, &gr), VLT_OK);
        double worst = 0, worst_plain = 0;
        const char *worst_name = "", *plain_name = "";
        int n = 0;
        for (int i = 0; i < f.m.params.n; i++) {
            vlt_tensor *t = f.m.params.t[i];
            if (!t->requires_grad) continue;
            if (!vlt_safetensors_get(gr, t->name)) fail_msg("no reference gradient for %s", t->name);
            float *ref = malloc(sizeof(float) * (size_t)t->numel);
            assert_int_equal(vlt_safetensors_read_f32(gr, t->name, ref, t->numel), VLT_OK);
            // A key bias's exact gradient is 0 (softmax is invariant to a shift of every score of a
            // row), so f32 leaves only rounding noise there, whose size follows the layer's key
            // weights' gradient: the floor is that gradient's largest magnitude (at least 1e-3).
            double floor_ = 1e-3;
            const char *kb = strstr(t->name, "key.bias") ? "key.bias" : strstr(t->name, "qkv.bias") ? "qkv.bias" : NULL;
            if (kb) {
                char wname[256];
                snprintf(wname, sizeof wname, "%.*s%s", (int)(strstr(t->name, kb) - t->name), t->name,
                         kb[0] == 'k' ? "key.weight" : "qkv.weight");
                const vlt_st_tensor *wt = vlt_safetensors_get(gr, wname);
                if (!wt) fail_msg("no reference gradient for %s", wname);
                int64_t wn = 1;
                for (int d = 0; d < wt->ndim; d++) wn *= wt->shape[d];
                float *wref = malloc(sizeof(float) * (size_t)wn);
                assert_int_equal(vlt_safetensors_read_f32(gr, wname, wref, wn), VLT_OK);
                for (int64_t j = 0; j < wn; j++) floor_ = fmax(floor_, fabs((double)wref[j]));
                free(wref);
            }
            double g = err_floor(vlt_f32(t->grad), ref, t->numel, floor_);
            if (g > worst) worst = g, worst_name = t->name;
            // without the floor, the tensors whose exact gradient is not 0
            if (!strstr(t->name, "key.bias") && !strstr(t->name, "qkv.bias")) {
                double u = rel_err(vlt_f32(t->grad), ref, t->numel);
                if (u > worst_plain) worst_plain = u, plain_name = t->name;
            }
            free(ref);
            n++;
        }
        // the reference has a gradient for every trainable tensor (tied ones under both names)
        int ref_n = vlt_safetensors_count(gr);
        print_message("%s %d gradients (reference %d names), worst rel err %.2e (%s)\n", dir, n, ref_n, worst,
                      worst_name);
        print_message("%s   without key biases, no floor: worst rel err %.2e (%s)\n", dir, worst_plain, plain_name);
        assert_int_equal(ref_n, n + 2);   // + the two tied names
        assert_true(worst_plain < 1e-4);
        assert_true(worst < 1e-4);
        vlt_safetensors_close(gr);

        // two SGD steps with the same inputs
        sgd(&f.m, 0.01f);
        vlt_albef_after_step(&f.m);
        vlt_step_reset();
        vlt_zero_grad(f.m.params.t, f.m.params.n);
        if (vlt_albef_forward(&f.m, &f.in, &out) != VLT_OK) fail_msg("%s", vlt_error_message());
        snprintf(p, sizeof p, "%safter_2_steps.safetensors", dir);
        vlt_safetensors *af;
        assert_int_equal(vlt_safetensors_open(p, &af), VLT_OK);
        e = rel1(dir, "step2_loss", out.loss, scalar(af, "step2_loss"));
        assert_true(e < 1e-5);
        assert_int_equal(vlt_backward(out.loss), VLT_OK);
        sgd(&f.m, 0.01f);
        vlt_albef_after_step(&f.m);
        vlt_step_reset();
        double worst_w = 0, worst_m = 0, worst_q = 0;
        const char *wn = "", *mn = "";
        for (int i = 0; i < f.m.params.n; i++) {
            vlt_tensor *t = f.m.params.t[i];
            if (!vlt_safetensors_get(af, t->name)) fail_msg("after_2_steps lacks %s", t->name);
            if (t->dtype == VLT_I32) {
                int64_t *ref = malloc(sizeof(int64_t) * (size_t)t->numel);
                assert_int_equal(vlt_safetensors_read_i64(af, t->name, ref, t->numel), VLT_OK);
                for (int64_t j = 0; j < t->numel; j++) assert_int_equal(vlt_i32(t)[j], ref[j]);
                free(ref);
                continue;
            }
            float *ref = malloc(sizeof(float) * (size_t)t->numel);
            assert_int_equal(vlt_safetensors_read_f32(af, t->name, ref, t->numel), VLT_OK);
            double g = rel_err(vlt_f32(t), ref, t->numel);
            free(ref);
            if (strstr(t->name, "_queue")) worst_q = fmax(worst_q, g);
            else if (strstr(t->name, "_m.")) {
                if (g > worst_m) worst_m = g, mn = t->name;
            } else if (g > worst_w) worst_w = g, wn = t->name;
        }
        print_message("%s after 2 steps: weights %.2e (%s), momentum %.2e (%s), queues %.2e, queue_ptr %d\n", dir,
                      worst_w, wn, worst_m, mn, worst_q, vlt_i32(f.m.queue_ptr)[0]);
        assert_true(worst_w < 2e-6);
        assert_true(worst_m < 2e-6);
        assert_true(worst_q < 1e-5);
        vlt_safetensors_close(af);
        unload(&f);
    }
}

static void test_released_names_round_trip(void **state) {
    (void)state;
    // Every key of the reference state_dict is in the table and nothing else; tied names share storage.
    fixture f;
    load(&f, FIXTURES[0]);
    vlt_tensor *w = vlt_params_find(&f.m.params, "text_encoder.bert.embeddings.word_embeddings.weight");
    vlt_tensor *d = vlt_params_find(&f.m.params, "text_encoder.cls.predictions.decoder.weight");
    assert_non_null(w);
    assert_non_null(d);
    assert_ptr_equal(w->data, d->data);
    assert_false(d->requires_grad);
    assert_non_null(vlt_params_find(&f.m.params, "text_encoder_m.bert.encoder.layer.2.crossattention.self.query.weight"));
    assert_null(vlt_params_find(&f.m.params, "text_encoder.bert.encoder.layer.1.crossattention.self.query.weight"));
    assert_false(vlt_params_find(&f.m.params, "visual_encoder_m.blocks.0.attn.qkv.weight")->requires_grad);
    assert_false(vlt_params_find(&f.m.params, "image_queue")->requires_grad);
    assert_true(vlt_params_find(&f.m.params, "temp")->requires_grad);
    assert_int_equal(vlt_params_find(&f.m.params, "temp")->ndim, 0);
    unload(&f);
}

static void test_draws(void **state) {
    (void)state;
    fixture f;
    load(&f, FIXTURES[0]);
    f.m.cfg.albef.cls_token_id = 2;
    f.m.cfg.albef.sep_token_id = 3;
    f.m.cfg.albef.mask_token_id = 4;
    enum { B = 64, T = 40 };
    int32_t ids[B * T], mi[B * T], lab[B * T];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int len = 10 + b % 25;
            ids[b * T + t] = t == 0 ? 2 : t < len ? 5 + (b * 7 + t * 3) % 90 : t == len ? 3 : 0;
        }
    int masked = vlt_albef_mask_tokens(&f.m, ids, B, T, 5, 0, mi, lab);
    int eligible = 0, to_mask = 0, kept = 0, random_ = 0;
    for (int i = 0; i < B * T; i++) {
        bool special = ids[i] == 0 || ids[i] == 2 || ids[i] == 3;
        eligible += !special;
        if (special) {
            assert_int_equal(lab[i], -100);
            assert_int_equal(mi[i], ids[i]);
        }
        if (lab[i] == -100) {
            assert_int_equal(mi[i], ids[i]);
            continue;
        }
        assert_int_equal(lab[i], ids[i]);
        if (mi[i] == 4) to_mask++;
        else if (mi[i] == ids[i]) kept++;
        else random_++;
    }
    double rate = (double)masked / eligible;
    print_message("masked %d of %d (%.3f): [MASK] %d, random %d, kept %d\n", masked, eligible, rate, to_mask, random_, kept);
    assert_true(rate > 0.12 && rate < 0.18);
    assert_true(to_mask > 0.7 * masked && to_mask < 0.9 * masked);
    assert_true(random_ > 0 && kept > 0);
    // the same step draws the same; another step draws differently
    int32_t mi2[B * T], lab2[B * T];
    vlt_albef_mask_tokens(&f.m, ids, B, T, 5, 0, mi2, lab2);
    assert_memory_equal(mi, mi2, sizeof mi);
    vlt_albef_mask_tokens(&f.m, ids, B, T, 5, 1, mi2, lab2);   // another rank draws differently
    assert_true(memcmp(lab, lab2, sizeof lab) != 0);
    vlt_albef_mask_tokens(&f.m, ids, B, T, 6, 0, mi2, lab2);
    assert_true(memcmp(lab, lab2, sizeof lab) != 0);

    // negatives: never the positive; a dominant similarity is picked nearly always
    enum { NB = 6 };
    float sim[NB * NB];
    for (int i = 0; i < NB * NB; i++) sim[i] = 0;
    for (int b = 0; b < NB; b++) sim[b * NB + (b + 1) % NB] = 20.0f, sim[b * NB + b] = 50.0f;
    int hit = 0;
    for (uint64_t step = 0; step < 50; step++) {
        int32_t neg[NB];
        vlt_albef_sample_negatives(sim, NB, 3, step, 3, neg);
        for (int b = 0; b < NB; b++) {
            assert_int_not_equal(neg[b], b);
            hit += neg[b] == (b + 1) % NB;
        }
    }
    assert_true(hit > 0.95 * 50 * NB);
    unload(&f);
}

static void test_sampled_step_runs_and_learns_nothing_odd(void **state) {
    (void)state;
    // Without given draws the step samples masks and negatives itself; the loss is finite and the
    // ITM/MLM accuracies are fractions.
    fixture f;
    load(&f, FIXTURES[0]);
    f.m.cfg.albef.cls_token_id = 2;
    f.m.cfg.albef.sep_token_id = 3;
    f.m.cfg.albef.mask_token_id = 4;
    vlt_albef_inputs in = {.images = f.in.images, .ids = f.in.ids, .alpha = 0.4f, .step = 3};
    vlt_albef_output out;
    if (vlt_albef_forward(&f.m, &in, &out) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_true(isfinite(vlt_f32(out.loss)[0]));
    assert_true(out.itm_acc >= 0 && out.itm_acc <= 1);
    assert_true(out.mlm_acc >= 0 && out.mlm_acc <= 1);
    // a bad given negative is refused by name
    vlt_tensor *bad = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(f.in.ids->shape[0]), "bad");
    vlt_i32(bad)[0] = 99;
    in.neg_image_idx = bad;
    in.neg_text_idx = bad;
    assert_int_not_equal(vlt_albef_forward(&f.m, &in, &out), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "neg_image_idx"));
    vlt_tensor_free(bad);
    unload(&f);
}

static void test_interpolate_pos_embed(void **state) {
    (void)state;
    // A 3x3 grid to 5x5 against torch.nn.functional.interpolate(mode='bicubic', align_corners=False)
    // (values printed by torch 2.x in float64); the class token is kept; the same size is the identity.
    static const double grid[9] = {0.0, 0.3333333333333333, 0.9428090415820635, 1.7320508075688774, 2.6666666666666665,
                                   3.72677996249965, 4.898979485566357, 6.173419725817379, 7.542472332656508};
    static const double want[25] = {-0.192735458, -0.10010756, 0.109333333, 0.475700542, 0.729904425,
                                    0.391969143,  0.599506603, 0.986180446, 1.49160886,  1.82141954,
                                    1.64232769,   2.0183536,   2.66666667,  3.38274835,  3.82855084,
                                    3.68107427,   4.16276317,  4.98079954,  5.85054055,  6.38546609,
                                    5.07752655,   5.60943805,  6.51006802,  7.46018758,  8.04305504};
    float pos[10], out[26];
    pos[0] = 7;
    for (int i = 0; i < 9; i++) pos[1 + i] = (float)grid[i];
    vlt_interpolate_pos_embed(pos, 3, 1, 5, out);
    assert_true(out[0] == 7);
    for (int i = 0; i < 25; i++)
        if (fabs(out[1 + i] - want[i]) > 1e-6) fail_msg("position %d: %.9g, torch %.9g", i, out[1 + i], want[i]);
    float same[10];
    vlt_interpolate_pos_embed(pos, 3, 1, 3, same);
    assert_memory_equal(same, pos, sizeof pos);
}

static void test_load_at_another_resolution(void **state) {
    (void)state;
    // The tiny weights (32 px, grid 4) into a 48 px model (grid 6): strict otherwise, both
    // pos_embeds interpolated with the class token kept; a wrong file is refused naming keys.
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load("tests/data/albef/tiny/config.json", &cfg), VLT_OK);
    cfg.albef.image_res = cfg.vision.image_size = 48;
    vlt_albef m;
    assert_int_equal(vlt_albef_init(&m, &cfg, 1), VLT_OK);
    if (vlt_albef_load(&m, "tests/data/albef/tiny/weights.safetensors", false) != VLT_OK)
        fail_msg("%s", vlt_error_message());
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open("tests/data/albef/tiny/weights.safetensors", &f), VLT_OK);
    int W = m.visual.width;
    float *src = malloc(sizeof(float) * 17 * (size_t)W), *want = malloc(sizeof(float) * 37 * (size_t)W);
    assert_int_equal(vlt_safetensors_read_f32(f, "visual_encoder_m.pos_embed", src, 17 * W), VLT_OK);
    vlt_interpolate_pos_embed(src, 4, W, 6, want);
    assert_memory_equal(vlt_f32(m.visual_m.pos_embed), want, sizeof(float) * 37 * (size_t)W);
    assert_memory_equal(vlt_f32(m.visual_m.pos_embed), src, sizeof(float) * (size_t)W);   // class token
    int V = m.cfg.bert.vocab_size;
    float *q = malloc(sizeof(float) * (size_t)V);
    assert_int_equal(vlt_safetensors_read_f32(f, "text_encoder.cls.predictions.bias", q, V), VLT_OK);
    assert_memory_equal(vlt_f32(m.text.mlm_bias), q, sizeof(float) * (size_t)V);
    free(q);
    assert_string_equal(m.visual.pos_embed->name, "visual_encoder.pos_embed");
    free(src);
    free(want);
    vlt_safetensors_close(f);
    assert_int_not_equal(vlt_albef_load(&m, "tests/data/layers/clip_gelu/weights.safetensors", false), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "missing"));
    vlt_albef_free(&m);
}

static void test_through_the_model_interface(void **state) {
    (void)state;
    // The "albef" kind: the same step through vlt_model_loss_forward with named batch fields and
    // loss settings, its three named parts, the accuracies, and after_step's queue update.
    fixture f;
    load(&f, FIXTURES[0]);
    vlt_model m;
    if (vlt_model_create(&m, &f.m.cfg, 7) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_string_equal(vlt_model_kind(&m), "albef");
    assert_true(vlt_model_can(&m, VLT_CAP_EMBED));
    assert_false(vlt_model_can(&m, VLT_CAP_CAPTION));
    assert_int_equal(vlt_safetensors_load_params("tests/data/albef/tiny/weights.safetensors", m.params, false, NULL),
                     VLT_OK);
    vlt_model_batch b = {0};
    vlt_model_batch_set(&b, VLT_FIELD_IMAGES, f.in.images);
    vlt_model_batch_set(&b, VLT_FIELD_TEXT_IDS, f.in.ids);
    vlt_model_batch_set(&b, VLT_FIELD_TEXT_ATTS, f.in.atts);
    vlt_model_batch_set(&b, VLT_FIELD_MLM_IDS, f.in.mlm_ids);
    vlt_model_batch_set(&b, VLT_FIELD_MLM_LABELS, f.in.mlm_labels);
    vlt_model_batch_set(&b, VLT_FIELD_NEG_IMAGE_IDX, f.in.neg_image_idx);
    vlt_model_batch_set(&b, VLT_FIELD_NEG_TEXT_IDX, f.in.neg_text_idx);
    vlt_loss_opts o = vlt_loss_opts_default();
    vlt_loss_opts_set(&o, "alpha", f.in.alpha);
    vlt_model_loss out;
    if (vlt_model_loss_forward(&m, &b, &o, &out) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(out.n_parts, 3);
    const char *names[3] = {"itc", "itm", "mlm"}, *refs[3] = {"loss_itc", "loss_itm", "loss_mlm"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(out.part_names[i], names[i]);
        assert_true(rel1("interface", refs[i], out.parts[i], scalar(f.io, refs[i])) < 1e-5);
    }
    assert_int_equal(out.n_metrics, 2);
    assert_string_equal(out.metric_names[0], "itm_acc");
    assert_true(out.metrics[0] >= 0 && out.metrics[0] <= 1 && out.metrics[1] >= 0 && out.metrics[1] <= 1);
    // after_step enqueues the batch's momentum features at queue_ptr (12 of 16 in this fixture)
    vlt_tensor *ptr = vlt_params_find(m.params, "queue_ptr");
    int before = vlt_i32(ptr)[0], B = f.in.ids->shape[0], Q = f.m.cfg.albef.queue_size;
    vlt_model_after_step(&m);
    assert_int_equal(vlt_i32(ptr)[0], (before + B) % Q);
    // ITC features for retrieval are unit vectors
    vlt_tensor *fi = vlt_model_encode_image(&m, f.in.images), *ft = vlt_model_encode_text(&m, f.in.ids);
    assert_non_null(fi);
    assert_non_null(ft);
    double n2 = 0;
    for (int e = 0; e < fi->shape[1]; e++) n2 += (double)vlt_f32(ft)[e] * vlt_f32(ft)[e];
    assert_true(fabs(n2 - 1) < 1e-5);
    // a batch without images is refused by name
    vlt_model_batch nb = {0};
    vlt_model_batch_set(&nb, VLT_FIELD_TEXT_IDS, f.in.ids);
    assert_int_not_equal(vlt_model_loss_forward(&m, &nb, &o, &out), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "images"));
    vlt_model_free(&m);
    unload(&f);
}

static void test_full_size_names_equal_the_authors(void **state) {
    (void)state;
    // configs/model/albef_ViT-B-16.json against the authors' ALBEF built from their code
    // (scripts/reference/check_albef_names.py -> tests/data/albef/albef_ViT-B-16_names.tsv): every
    // state_dict key with its shape, which are trainable, momentum copies, buffers, tied names;
    // 209,937,725 trainable parameters.
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load("configs/model/albef_ViT-B-16.json", &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_albef m;
    if (vlt_albef_init(&m, &cfg, 0) != VLT_OK) fail_msg("%s", vlt_error_message());
    FILE *f = fopen("tests/data/albef/albef_ViT-B-16_names.tsv", "r");
    assert_non_null(f);
    char line[512];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char name[256], shape[128], dtype[16], kind[300];
        if (sscanf(line, "%255[^\t]\t%127[^\t]\t%15[^\t]\t%299[^\n]", name, shape, dtype, kind) != 4)
            fail_msg("bad line %s", line);
        vlt_tensor *t = vlt_params_find(&m.params, name);
        if (!t) fail_msg("the table lacks %s", name);
        char ours[128] = "[";
        for (int d = 0; d < t->ndim; d++)
            snprintf(ours + strlen(ours), sizeof ours - strlen(ours), "%s%d", d ? "," : "", t->shape[d]);
        strcat(ours, "]");
        if (strcmp(ours, shape)) fail_msg("%s: shape %s, authors' %s", name, ours, shape);
        bool trainable = !strcmp(kind, "trainable");
        if (t->requires_grad != trainable) fail_msg("%s: trainable %d, authors' kind %s", name, t->requires_grad, kind);
        if (!strncmp(kind, "tied:", 5)) {
            vlt_tensor *target = vlt_params_find(&m.params, kind + 5);
            assert_non_null(target);
            assert_ptr_equal(t->data, target->data);
        }
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, m.params.n);   // and nothing more in the table
    assert_int_equal(vlt_params_trainable_numel(&m.params), 209937725);   // named_parameters()
    vlt_albef_free(&m);
}

static void test_config_refusals(void **state) {
    (void)state;
    vlt_model_cfg c;
    assert_int_not_equal(vlt_model_cfg_parse("{\"albef\": {}, \"bert\": {\"hidden_act\": \"relu\"}}", "x", &c), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "hidden_act"));
    assert_int_not_equal(vlt_model_cfg_parse("{\"albef\": {\"image_rez\": 3}, \"bert\": {}}", "x", &c), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "image_res"));
    assert_int_not_equal(vlt_model_cfg_parse("{\"albef\": {}, \"bert\": {\"fusion_layer\": 13}}", "x", &c), VLT_OK);
    assert_int_equal(vlt_model_cfg_parse("{\"albef\": {}, \"bert\": {}}", "x", &c), VLT_OK);
    assert_true(c.is_albef);
    assert_int_equal(c.vision.image_size, 256);
    assert_string_equal(vlt_model_kind_of(&c), "albef");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_albef_step_matches_reference),
        cmocka_unit_test(test_released_names_round_trip),
        cmocka_unit_test(test_draws),
        cmocka_unit_test(test_sampled_step_runs_and_learns_nothing_odd),
        cmocka_unit_test(test_interpolate_pos_embed),
        cmocka_unit_test(test_load_at_another_resolution),
        cmocka_unit_test(test_through_the_model_interface),
        cmocka_unit_test(test_full_size_names_equal_the_authors),
        cmocka_unit_test(test_config_refusals),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    vlt_tape_shutdown();
    return r;
}
