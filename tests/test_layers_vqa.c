// The VQA classifier on CLIP towers (layers/vqa_head.h): the soft-target BCE loss against a plain
// double-precision loop, its gradient and the head's and the whole model's against finite
// differences, and the kind behind the model interface (capability, batch fields, refusals).
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
#include "autograd/device.h"
#include "autograd/tape.h"
#include "layers/model.h"
#include "layers/vqa_head.h"
#include "tests/gradcheck.h"

#define GC_TOL 1e-2

static vlt_model_cfg vqa_cfg(int n_answers, int hidden) {
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load("tiny-clip", &cfg) != VLT_OK) fail_msg("tiny-clip: %s", vlt_error_message());
    cfg.vqa.n_answers = n_answers;
    cfg.vqa.hidden = hidden;
    return cfg;
}

// Soft targets as the shards hold them: 0, 0.3, 0.6, 0.9, 1 (min(1, count/3) over leave-one-out).
static vlt_tensor *soft_targets(int B, int N, uint64_t seed) {
    static const float levels[] = {0, 0, 0, 0.3f, 0.6f, 0.9f, 1};
    vlt_tensor *y = vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(B, N), "answer_scores");
    for (int64_t i = 0; i < y->numel; i++) vlt_f32(y)[i] = levels[vlt_rng_below(seed, 5, (uint64_t)i, 7)];
    return y;
}

static vlt_tensor *build_bce(vlt_tensor **in, void *ctx) { return vlt_vqa_bce_loss(in[0], (vlt_tensor *)ctx); }

static void test_bce_loss_value_and_gradient(void **state) {
    (void)state;
    int B = 5, N = 7;
    vlt_tensor *x = test_param(2, VLT_SHAPE(B, N), 3, -4.0f, 4.0f);
    vlt_f32(x)[0] = 30.0f;    // far in the tails: the loss stays finite and exact
    vlt_f32(x)[1] = -30.0f;
    vlt_tensor *y = soft_targets(B, N, 11);
    vlt_f32(y)[0] = 0.0f;
    vlt_f32(y)[1] = 1.0f;
    vlt_tensor *l = vlt_vqa_bce_loss(x, y);
    assert_non_null(l);
    double want = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        double v = vlt_f32(x)[i], t = vlt_f32(y)[i];
        want += fmax(v, 0) - v * t + log1p(exp(-fabs(v)));
    }
    want /= B;
    assert_true(fabs(vlt_tensor_item(l, 0) - want) < 1e-5 * fmax(1, want));
    // d/dx = (σ(x) - y) / B, element by element
    vlt_zero_grad(&x, 1);
    assert_int_equal(vlt_backward(l), VLT_OK);
    for (int64_t i = 0; i < x->numel; i++) {
        double v = vlt_f32(x)[i], g = (1 / (1 + exp(-v)) - vlt_f32(y)[i]) / B;
        assert_true(fabs(vlt_f32(x->grad)[i] - g) < 1e-6);
    }
    vlt_step_reset();
    vlt_f32(x)[0] = 2.0f;
    vlt_f32(x)[1] = -2.0f;
    assert_true(gradcheck(build_bce, &x, 1, y, 1e-2f) < GC_TOL);
    // mismatched shapes are refused naming both
    vlt_tensor *bad = soft_targets(B, N + 1, 1);
    assert_null(vlt_vqa_bce_loss(x, bad));
    assert_non_null(strstr(vlt_error_message(), "answer scores"));
    vlt_tensor_free(bad);
    vlt_tensor_free(x);
    vlt_tensor_free(y);
}

typedef struct {
    vlt_vqa_classifier *m;
    vlt_tensor *y;
} head_ctx;

static vlt_tensor *build_head(vlt_tensor **in, void *ctx) {
    head_ctx *c = ctx;
    return vlt_vqa_bce_loss(vlt_vqa_head_forward(c->m, in[0], in[1]), c->y);
}

static void test_head_gradients(void **state) {
    (void)state;
    vlt_model_cfg cfg = vqa_cfg(9, 24);
    vlt_vqa_classifier m;
    assert_int_equal(vlt_vqa_classifier_init(&m, &cfg, 5), VLT_OK);
    assert_int_equal(m.fc1_w->shape[0], 24);
    assert_int_equal(m.fc1_w->shape[1], 2 * cfg.embed_dim);
    assert_int_equal(m.fc2_w->shape[0], 9);
    // LayerNorm's affine parameters away from 1 / 0, so their gradients are tested too
    vlt_rng_fill_uniform(vlt_f32(m.ln_w), (size_t)m.ln_w->numel, 0.5f, 1.5f, 2, 3, 0);
    vlt_rng_fill_uniform(vlt_f32(m.ln_b), (size_t)m.ln_b->numel, -0.5f, 0.5f, 2, 4, 0);
    int B = 4, E = cfg.embed_dim;
    vlt_tensor *img = test_param(2, VLT_SHAPE(B, E), 7, 0, 0), *txt = test_param(2, VLT_SHAPE(B, E), 8, 0, 0);
    head_ctx c = {&m, soft_targets(B, 9, 12)};
    // the features and every head parameter (perturbed in place: the head reads them from m)
    vlt_tensor *in[8] = {img, txt, m.ln_w, m.ln_b, m.fc1_w, m.fc1_b, m.fc2_w, m.fc2_b};
    assert_true(gradcheck(build_head, in, 8, &c, 1e-2f) < GC_TOL);
    vlt_tensor_free(img);
    vlt_tensor_free(txt);
    vlt_tensor_free(c.y);
    vlt_vqa_classifier_free(&m);
}

// The whole model through the interface: images and questions in, the BCE loss out; gradients of
// head and tower parameters against finite differences.
typedef struct {
    vlt_model *m;
    vlt_model_batch b;
} model_ctx;

static vlt_tensor *build_model_loss(vlt_tensor **in, void *ctx) {
    (void)in;   // the parameters are perturbed in place
    model_ctx *c = ctx;
    vlt_model_loss out;
    return vlt_model_loss_forward(c->m, &c->b, NULL, &out) == VLT_OK ? out.loss : NULL;
}

static void make_inputs(const vlt_model_cfg *cfg, int B, vlt_tensor **images, vlt_tensor **ids) {
    int S = cfg->vision.image_size, T = cfg->text.context_length, V = cfg->text.vocab_size;
    *images = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(B, 3, S, S), "images");
    *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, T), "ids");
    vlt_rng_fill_normal(vlt_f32(*images), (size_t)(*images)->numel, 0, 1, 7, 1, 0);
    for (int b = 0; b < B; b++) {
        int len = 3 + b % (T - 3);
        for (int i = 0; i < T; i++)
            vlt_i32(*ids)[b * T + i] = i == 0 ? V - 2 : i < len ? (int32_t)(1 + vlt_rng_below(8, (uint64_t)b, (uint64_t)i, 500))
                                                : i == len ? V - 1 : 0;
    }
}

static void test_model_kind_and_gradients(void **state) {
    (void)state;
    vlt_model_cfg cfg = vqa_cfg(6, 0);
    assert_string_equal(vlt_model_kind_of(&cfg), "clip_vqa");
    vlt_model m;
    assert_int_equal(vlt_model_create(&m, &cfg, 3), VLT_OK);
    assert_string_equal(vlt_model_kind(&m), "clip_vqa");
    assert_true(vlt_model_can(&m, VLT_CAP_ANSWER));
    assert_false(vlt_model_can(&m, VLT_CAP_EMBED));
    assert_int_equal(vlt_model_answers(&m), 6);
    assert_string_equal(vlt_model_fresh_prefix(&m), "vqa_head.");
    // open_clip's names for the towers, the head under vqa_head.
    assert_non_null(vlt_params_find(m.params, "visual.proj"));
    assert_non_null(vlt_params_find(m.params, "text_projection"));
    assert_non_null(vlt_params_find(m.params, "logit_scale"));
    vlt_tensor *fc1 = vlt_params_find(m.params, "vqa_head.fc1.weight");
    assert_non_null(fc1);
    assert_int_equal(fc1->shape[0], 4 * cfg.embed_dim);   // hidden 0: twice the concatenated width
    // a CLIP model has no answer head, and this one no encoders: refused by name
    assert_null(vlt_model_encode_image(&m, NULL));
    assert_non_null(strstr(vlt_error_message(), "CLIP VQA classifier"));

    int B = 3;
    vlt_tensor *images, *ids, *y = soft_targets(B, 6, 4);
    make_inputs(&cfg, B, &images, &ids);
    model_ctx c = {&m, {0}};
    assert_int_equal(vlt_model_batch_set(&c.b, VLT_FIELD_IMAGES, images), VLT_OK);
    assert_int_equal(vlt_model_batch_set(&c.b, VLT_FIELD_QUESTION_IDS, ids), VLT_OK);
    vlt_model_loss out;
    assert_int_not_equal(vlt_model_loss_forward(&m, &c.b, NULL, &out), VLT_OK);   // no answer_scores
    assert_non_null(strstr(vlt_error_message(), "answer_scores"));
    assert_int_equal(vlt_model_batch_set(&c.b, VLT_FIELD_ANSWER_SCORES, y), VLT_OK);
    // the loss equals the head's BCE on the towers' features
    vlt_no_grad_enter();
    assert_int_equal(vlt_model_loss_forward(&m, &c.b, NULL, &out), VLT_OK);
    vlt_vqa_classifier *h = m.impl;
    vlt_tensor *direct = vlt_vqa_bce_loss(vlt_vqa_classifier_logits(h, images, ids), y);
    assert_float_equal(vlt_tensor_item(out.loss, 0), vlt_tensor_item(direct, 0), 0);
    // answers: the argmax of the logits, with its sigmoid
    vlt_tensor *logits = vlt_vqa_classifier_logits(h, images, ids);
    int32_t best[3];
    float conf[3];
    assert_int_equal(vlt_model_answer(&m, images, ids, best, conf), VLT_OK);
    for (int b = 0; b < B; b++) {
        const float *x = vlt_f32(logits) + b * 6;
        for (int j = 0; j < 6; j++) assert_true(x[j] <= x[best[b]]);
        assert_float_equal(conf[b], 1 / (1 + expf(-x[best[b]])), 1e-6);
    }
    vlt_no_grad_exit();
    vlt_step_reset();
    vlt_tensor *in[5] = {h->fc2_w, h->fc1_b, h->ln_w, vlt_params_find(m.params, "visual.proj"),
                         vlt_params_find(m.params, "text_projection")};
    assert_true(gradcheck(build_model_loss, in, 5, &c, 1e-2f) < GC_TOL);
    // the logit scale takes no part in the VQA loss
    vlt_tensor *ls = vlt_params_find(m.params, "logit_scale");
    vlt_zero_grad(&ls, 1);
    assert_int_equal(vlt_model_loss_forward(&m, &c.b, NULL, &out), VLT_OK);
    assert_int_equal(vlt_backward(out.loss), VLT_OK);
    assert_float_equal(vlt_f32(ls->grad)[0], 0, 0);
    vlt_step_reset();
    vlt_tensor_free(images);
    vlt_tensor_free(ids);
    vlt_tensor_free(y);
    vlt_model_free(&m);

    // a head on CoCa towers, or no answers, is refused by name
    vlt_model_cfg coca;
    assert_int_equal(vlt_model_cfg_load("tiny-coca", &coca), VLT_OK);
    coca.vqa.n_answers = 4;
    assert_int_not_equal(vlt_model_create(&m, &coca, 1), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "CoCa"));
    vlt_vqa_classifier bare;
    vlt_model_cfg none = vqa_cfg(0, 0);
    assert_int_not_equal(vlt_vqa_classifier_init(&bare, &none, 1), VLT_OK);
}

// Token fusion: the question's tokens and the image's through a small transformer; gradients of
// the fusion, the head and the towers' last norms against finite differences, and the question's
// padding masked (what follows the end of the question does not change the answer).
static void test_token_fusion(void **state) {
    (void)state;
    vlt_model_cfg cfg = vqa_cfg(5, 16);
    cfg.vqa.fusion_layers = 1;
    vlt_model m;
    assert_int_equal(vlt_model_create(&m, &cfg, 9), VLT_OK);
    vlt_vqa_classifier *h = m.impl;
    assert_int_equal(h->fusion_layers, 1);
    assert_non_null(vlt_params_find(m.params, "vqa_head.fusion.resblocks.0.attn.in_proj_weight"));
    assert_non_null(vlt_params_find(m.params, "vqa_head.fusion.modality"));
    assert_int_equal(h->ln_w->shape[0], cfg.text.width);   // the head reads the fused class token
    assert_null(vlt_model_gpu_unsupported(&m));             // the padding mask is built for device ids too
    int B = 3;
    vlt_tensor *images, *ids, *y = soft_targets(B, 5, 6);
    make_inputs(&cfg, B, &images, &ids);
    model_ctx c = {&m, {0}};
    vlt_model_batch_set(&c.b, VLT_FIELD_IMAGES, images);
    vlt_model_batch_set(&c.b, VLT_FIELD_QUESTION_IDS, ids);
    vlt_model_batch_set(&c.b, VLT_FIELD_ANSWER_SCORES, y);
    vlt_tensor *in[7] = {h->fc2_w, h->img_proj_w, h->txt_proj_b, h->modality,
                         vlt_params_find(m.params, "vqa_head.fusion.resblocks.0.attn.in_proj_weight"),
                         vlt_params_find(m.params, "visual.ln_post.weight"), vlt_params_find(m.params, "ln_final.bias")};
    assert_true(gradcheck(build_model_loss, in, 7, &c, 1e-2f) < GC_TOL);
    // the keys past a question's end are masked: row 0 (SOT, 2 words, EOT, then padding) gives the
    // logits of the same question cut to its 4 tokens (the text tower is causal, so its first 4
    // token outputs do not depend on what follows)
    vlt_no_grad_enter();
    int T = cfg.text.context_length, S = cfg.vision.image_size, W = cfg.text.width, L = 4;
    vlt_tensor *im0 = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(1, 3, S, S), "im0");
    vlt_tensor *ids0 = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(1, T), "ids0");
    vlt_tensor *cut = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(1, L), "cut");
    vlt_tensor *cut_tok = vlt_tensor_new(VLT_F32, VLT_CPU, 3, VLT_SHAPE(1, L, W), "cut_tok");
    memcpy(im0->data, images->data, sizeof(float) * 3 * S * S);
    memcpy(ids0->data, ids->data, sizeof(int32_t) * T);
    memcpy(cut->data, ids->data, sizeof(int32_t) * L);
    assert_int_equal(vlt_i32(ids0)[L], cfg.text.pad_id);   // the row is padded from there
    vlt_tensor *img_tok = vlt_vit_tokens(&h->clip.visual, im0), *txt_tok = vlt_text_encoder_tokens(&h->clip.text, ids0);
    memcpy(cut_tok->data, txt_tok->data, sizeof(float) * L * W);
    vlt_tensor *full = vlt_vqa_fusion_forward(h, img_tok, txt_tok, ids0), *short_ = vlt_vqa_fusion_forward(h, img_tok, cut_tok, cut);
    assert_non_null(full);
    assert_non_null(short_);
    for (int k = 0; k < 5; k++) assert_float_equal(vlt_f32(full)[k], vlt_f32(short_)[k], 1e-5);
    // while the padding, taken as text (an unmasked key), would change them
    vlt_i32(ids0)[L] = 7;
    vlt_tensor *unmasked = vlt_vqa_fusion_forward(h, img_tok, txt_tok, ids0);
    double diff = 0;
    for (int k = 0; k < 5; k++) diff += fabs(vlt_f32(unmasked)[k] - vlt_f32(full)[k]);
    assert_true(diff > 1e-4);
    vlt_no_grad_exit();
    vlt_step_reset();
    vlt_tensor_free(im0);
    vlt_tensor_free(ids0);
    vlt_tensor_free(cut);
    vlt_tensor_free(cut_tok);
    vlt_tensor_free(images);
    vlt_tensor_free(ids);
    vlt_tensor_free(y);
    vlt_model_free(&m);
}

static int teardown(void **state) {
    (void)state;
    vlt_step_reset();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_bce_loss_value_and_gradient, teardown),
        cmocka_unit_test_teardown(test_head_gradients, teardown),
        cmocka_unit_test_teardown(test_model_kind_and_gradients, teardown),
        cmocka_unit_test_teardown(test_token_fusion, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
