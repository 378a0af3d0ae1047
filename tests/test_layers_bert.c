// The BERT encoder of ALBEF (layers/bert.h) on its own: the xbert modes compose ('multi_modal' is
// 'fusion' on the output of 'text'), trailing padding changes no token that is not padding (the
// key padding mask), the image mask hides image tokens (masked tokens may be anything), the tied
// MLM decoder is the word embedding, the pad row of the word embedding gets no gradient from the
// lookup (padding_idx), parameter names as xbert's state_dict, and refusals by name. The numbers
// against the authors' model are in tests/test_layers_albef.c.
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
#include "layers/bert.h"

static vlt_bert_cfg small_cfg(void) {
    return (vlt_bert_cfg){.vocab_size = 50, .hidden_size = 32, .num_hidden_layers = 3, .num_attention_heads = 4,
                          .intermediate_size = 64, .max_position_embeddings = 16, .type_vocab_size = 2,
                          .fusion_layer = 1, .pad_token_id = 0, .encoder_width = 24, .layer_norm_eps = 1e-12f};
}

typedef struct {
    vlt_params p;
    vlt_bert b;
} model;

static void make(model *m) {
    vlt_params_init(&m->p);
    vlt_bert_cfg c = small_cfg();
    if (vlt_bert_init(&m->b, &m->p, "text_encoder", &c, 5, true) != VLT_OK) fail_msg("%s", vlt_error_message());
    // non-trivial LayerNorm and bias values so that every path is exercised
    for (int i = 0; i < m->p.n; i++) {
        vlt_tensor *t = m->p.t[i];
        if (t->dtype == VLT_F32 && t->ndim == 1 && t->requires_grad)
            vlt_rng_fill_uniform(vlt_f32(t), (size_t)t->numel, 0.5f, 1.5f, 9, vlt_rng_hash_str(t->name), 0);
    }
}

static vlt_tensor *ids_of(int B, int T, const int *len) {
    vlt_tensor *x = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, T));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) vlt_i32(x)[b * T + t] = t < len[b] ? 1 + (b * 7 + t * 5) % 49 : 0;
    return x;
}

static vlt_tensor *atts_of(vlt_tensor *ids) {
    vlt_tensor *a = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, ids->shape);
    for (int64_t i = 0; i < ids->numel; i++) vlt_i32(a)[i] = vlt_i32(ids)[i] != 0;
    return a;
}

static vlt_tensor *image_of(int B, int N) {
    vlt_tensor *x = vlt_tensor_new_activation(VLT_F32, VLT_CPU, 3, VLT_SHAPE(B, N, 24));
    vlt_rng_fill_normal(vlt_f32(x), (size_t)x->numel, 0, 1, 3, 4, 0);
    return x;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_modes_compose(void **state) {
    (void)state;
    model m;
    make(&m);
    vlt_tensor *ids = ids_of(3, 8, (int[]){8, 5, 3}), *pad = vlt_bert_key_pad(atts_of(ids)), *img = image_of(3, 6);
    vlt_tensor *mm = vlt_bert_forward(&m.b, VLT_BERT_MULTI_MODAL, ids, pad, img, NULL);
    vlt_tensor *tx = vlt_bert_forward(&m.b, VLT_BERT_TEXT, ids, pad, NULL, NULL);
    vlt_tensor *fu = vlt_bert_forward(&m.b, VLT_BERT_FUSION, tx, pad, img, NULL);
    assert_non_null(mm);
    assert_non_null(fu);
    assert_true(max_diff(vlt_f32(mm), vlt_f32(fu), mm->numel) == 0);
    // 'text' alone needs no image; the fusion layers do
    assert_null(vlt_bert_forward(&m.b, VLT_BERT_FUSION, tx, pad, NULL, NULL));
    assert_non_null(strstr(vlt_error_message(), "image states"));
    vlt_step_reset();
    vlt_params_free(&m.p);
}

static void test_padding_changes_nothing_else(void **state) {
    (void)state;
    model m;
    make(&m);
    // the same texts with 3 more [PAD] at the end: every non-pad token's state is the same
    vlt_tensor *a = ids_of(2, 6, (int[]){6, 4}), *b = ids_of(2, 9, (int[]){6, 4}), *img = image_of(2, 5);
    vlt_tensor *ha = vlt_bert_forward(&m.b, VLT_BERT_MULTI_MODAL, a, vlt_bert_key_pad(atts_of(a)), img, NULL);
    vlt_tensor *hb = vlt_bert_forward(&m.b, VLT_BERT_MULTI_MODAL, b, vlt_bert_key_pad(atts_of(b)), img, NULL);
    int W = 32;
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < (r ? 4 : 6); t++)
            assert_true(max_diff(vlt_f32(ha) + (r * 6 + t) * W, vlt_f32(hb) + (r * 9 + t) * W, W) < 1e-5);
    // without the mask the padding would be attended to
    vlt_tensor *hc = vlt_bert_forward(&m.b, VLT_BERT_MULTI_MODAL, b, NULL, img, NULL);
    assert_true(max_diff(vlt_f32(hc), vlt_f32(hb), W) > 1e-4);
    vlt_step_reset();
    vlt_params_free(&m.p);
}

static void test_image_mask_hides_tokens(void **state) {
    (void)state;
    model m;
    make(&m);
    vlt_tensor *ids = ids_of(2, 5, (int[]){5, 5}), *pad = vlt_bert_key_pad(atts_of(ids));
    vlt_tensor *img = image_of(2, 6), *img2 = image_of(2, 6);
    memcpy(vlt_f32(img2), vlt_f32(img), sizeof(float) * (size_t)img->numel);
    vlt_tensor *ipad = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(2, 6));
    for (int i = 0; i < 12; i++) vlt_i32(ipad)[i] = i % 6 >= 4;   // the last 2 image tokens hidden
    for (int b = 0; b < 2; b++)
        for (int k = 4; k < 6; k++)
            for (int c = 0; c < 24; c++) vlt_f32(img2)[(b * 6 + k) * 24 + c] = 100.0f;
    vlt_tensor *h1 = vlt_bert_forward(&m.b, VLT_BERT_MULTI_MODAL, ids, pad, img, ipad);
    vlt_tensor *h2 = vlt_bert_forward(&m.b, VLT_BERT_MULTI_MODAL, ids, pad, img2, ipad);
    assert_true(max_diff(vlt_f32(h1), vlt_f32(h2), h1->numel) < 1e-6);
    vlt_tensor *h3 = vlt_bert_forward(&m.b, VLT_BERT_MULTI_MODAL, ids, pad, img2, NULL);
    assert_true(max_diff(vlt_f32(h1), vlt_f32(h3), h1->numel) > 1e-3);
    vlt_step_reset();
    vlt_params_free(&m.p);
}

static void test_tied_head_and_padding_idx(void **state) {
    (void)state;
    model m;
    make(&m);
    vlt_tensor *dec = vlt_params_find(&m.p, "text_encoder.cls.predictions.decoder.weight");
    vlt_tensor *decb = vlt_params_find(&m.p, "text_encoder.cls.predictions.decoder.bias");
    assert_non_null(dec);
    assert_ptr_equal(dec->data, m.b.word_emb->data);
    assert_ptr_equal(decb->data, m.b.mlm_bias->data);
    assert_false(dec->requires_grad);
    assert_non_null(vlt_params_find(&m.p, "text_encoder.bert.encoder.layer.1.crossattention.output.LayerNorm.bias"));
    assert_null(vlt_params_find(&m.p, "text_encoder.bert.encoder.layer.0.crossattention.self.key.weight"));
    assert_int_equal(vlt_params_find(&m.p, "text_encoder.bert.encoder.layer.2.crossattention.self.key.weight")->shape[1], 24);
    vlt_tensor *pid = vlt_params_find(&m.p, "text_encoder.bert.embeddings.position_ids");
    assert_int_equal(vlt_i32(pid)[15], 15);
    // the lookup gives the [PAD] row no gradient; through the tied decoder it gets one
    vlt_tensor *ids = ids_of(2, 6, (int[]){6, 3}), *pad = vlt_bert_key_pad(atts_of(ids));
    vlt_zero_grad(m.p.t, m.p.n);
    vlt_tensor *h = vlt_bert_forward(&m.b, VLT_BERT_TEXT, ids, pad, NULL, NULL);
    assert_int_equal(vlt_backward(vlt_sum_all(vlt_mul(h, h))), VLT_OK);
    const float *g = vlt_f32(m.b.word_emb->grad);
    double pad_row = 0, used_row = 0;
    for (int c = 0; c < 32; c++) pad_row += fabs(g[c]), used_row += fabs(g[vlt_i32(ids)[0] * 32 + c]);
    assert_true(pad_row == 0);
    assert_true(used_row > 0);
    vlt_step_reset();
    vlt_zero_grad(m.p.t, m.p.n);
    ids = ids_of(2, 6, (int[]){6, 3});
    pad = vlt_bert_key_pad(atts_of(ids));
    vlt_tensor *logits = vlt_bert_mlm_logits(&m.b, vlt_bert_forward(&m.b, VLT_BERT_TEXT, ids, pad, NULL, NULL));
    if (!logits) fail_msg("%s", vlt_error_message());
    assert_int_equal(logits->shape[2], 50);
    assert_int_equal(vlt_backward(vlt_sum_all(logits)), VLT_OK);
    pad_row = 0;
    for (int c = 0; c < 32; c++) pad_row += fabs(g[c]);
    assert_true(pad_row > 0);
    vlt_step_reset();
    vlt_params_free(&m.p);
}

static void test_refusals(void **state) {
    (void)state;
    model m;
    make(&m);
    vlt_tensor *long_ids = ids_of(1, 17, (int[]){17});
    assert_null(vlt_bert_embed(&m.b, long_ids));
    assert_non_null(strstr(vlt_error_message(), "max_position_embeddings 16"));
    vlt_tensor *x = vlt_tensor_new_activation(VLT_F32, VLT_CPU, 3, VLT_SHAPE(1, 4, 31));
    assert_null(vlt_bert_layers(&m.b, x, 0, 1, NULL, NULL, NULL));
    vlt_bert_cfg c = small_cfg();
    c.fusion_layer = 4;
    vlt_params p;
    vlt_params_init(&p);
    vlt_bert b;
    assert_int_not_equal(vlt_bert_init(&b, &p, "t", &c, 0, true), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "fusion_layer 4"));
    vlt_params_free(&p);
    vlt_step_reset();
    vlt_params_free(&m.p);
}

static double std_of(const vlt_tensor *t) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        s += vlt_f32(t)[i];
        s2 += (double)vlt_f32(t)[i] * vlt_f32(t)[i];
    }
    double m = s / t->numel;
    return sqrt(s2 / t->numel - m * m);
}

// BertConfig's initializer_range is the std of the linear weights and the embeddings (0 in a
// hand-built config: BertConfig's 0.02); a config file's value is read, and a value <= 0 refused.
static void test_initializer_range(void **state) {
    (void)state;
    const float want[2] = {0.02f, 0.1f};
    for (int k = 0; k < 2; k++) {
        vlt_bert_cfg c = small_cfg();
        c.initializer_range = k ? 0.1f : 0.0f;
        vlt_params p;
        vlt_params_init(&p);
        vlt_bert b;
        if (vlt_bert_init(&b, &p, "t", &c, 3, true) != VLT_OK) fail_msg("%s", vlt_error_message());
        const vlt_tensor *ts[4] = {b.word_emb, b.pos_emb, b.layers[0].self.q_w, b.layers[2].inter_w};
        for (int i = 0; i < 4; i++) assert_true(fabs(std_of(ts[i]) / want[k] - 1) < 0.15);
        vlt_params_free(&p);
    }
    const char *fmt = "{\"albef\": {\"image_res\": 16, \"patch_size\": 8, \"vision_width\": 24, \"vision_depth\": 1,"
                      " \"vision_heads\": 2, \"embed_dim\": 8, \"queue_size\": 8}, \"bert\": {\"vocab_size\": 50,"
                      " \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
                      " \"intermediate_size\": 64, \"max_position_embeddings\": 16, \"fusion_layer\": 1%s}}";
    char text[1024];
    vlt_model_cfg mc;
    snprintf(text, sizeof text, fmt, "");
    assert_int_equal(vlt_model_cfg_parse(text, "cfg.json", &mc), VLT_OK);
    assert_true(mc.bert.initializer_range == 0.02f);
    snprintf(text, sizeof text, fmt, ", \"initializer_range\": 0.1");
    assert_int_equal(vlt_model_cfg_parse(text, "cfg.json", &mc), VLT_OK);
    assert_true(mc.bert.initializer_range == 0.1f);
    snprintf(text, sizeof text, fmt, ", \"initializer_range\": -1");
    assert_int_not_equal(vlt_model_cfg_parse(text, "cfg.json", &mc), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "bert.initializer_range must be > 0"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes_compose),
        cmocka_unit_test(test_padding_changes_nothing_else),
        cmocka_unit_test(test_image_mask_hides_tokens),
        cmocka_unit_test(test_tied_head_and_padding_idx),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_initializer_range),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    vlt_tape_shutdown();
    return r;
}
