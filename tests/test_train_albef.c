// vlt train with an ALBEF model config (issue 15): the captions are tokenized by the model's own
// BERT vocabulary (albef.vocab), the three loss parts and the ITM / MLM accuracies are logged,
// checkpoints hold the momentum weights, queues and queue_ptr, and a resumed run continues
// exactly: the same losses step for step and the same weights, momentum copies and queues as the
// uninterrupted run, bit for bit; held-out retrieval runs on the ITC features.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <math.h>

#include "checkpoints/safetensors.h"
#include "tests/train_fixture.h"
#include "train/evaluate.h"
#include "train/trainer.h"

static char g_model[512];

static int setup(void **state) {
    if (train_fixture_setup(state)) return -1;
    snprintf(g_model, sizeof g_model, "%s/tiny-albef-demo.json", g_train_dir);
    return train_fixture_tiny_albef(g_model, 8, 64, 3, false);
}

static void config(vlt_run_config *c, const char *out) {
    train_fixture_config(c, out);
    snprintf(c->model_name, sizeof c->model_name, "%s", g_model);
    c->batch_size = 16;
    c->steps = 6;
    c->warmup = 2;
    c->lr = 5e-4;
    c->checkpoint_every = 3;
    c->val_samples = 64;
}

static void compare_tables(const char *a, const char *b) {
    vlt_safetensors *x, *y;
    assert_int_equal(vlt_safetensors_open(a, &x), VLT_OK);
    assert_int_equal(vlt_safetensors_open(b, &y), VLT_OK);
    assert_int_equal(vlt_safetensors_count(x), vlt_safetensors_count(y));
    for (int i = 0; i < vlt_safetensors_count(x); i++) {
        const vlt_st_tensor *s = vlt_safetensors_at(x, i), *t = vlt_safetensors_get(y, s->name);
        if (!t || t->nbytes != s->nbytes || memcmp(s->data, t->data, s->nbytes))
            fail_msg("%s differs between %s and %s", s->name, a, b);
    }
    vlt_safetensors_close(x);
    vlt_safetensors_close(y);
}

static void test_albef_trains_and_resumes_exactly(void **state) {
    (void)state;
    vlt_run_config c;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    // uninterrupted
    config(&c, "full");
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_string_equal(vlt_trainer_model_title(t), "ALBEF");
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    int64_t n;
    const float *l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, 6);
    float full[6];
    memcpy(full, l, sizeof full);
    for (int i = 0; i < 6; i++) assert_true(isfinite(full[i]));
    double i2t[3], t2i[3];
    int pairs;
    assert_int_equal(vlt_trainer_eval(t, i2t, t2i, &pairs), VLT_OK);
    assert_int_equal(pairs, 64);
    assert_true(i2t[2] >= i2t[0] && i2t[2] <= 100);
    vlt_trainer_free(t);

    // 3 steps, then a resumed trainer for the other 3
    config(&c, "part");
    assert_int_equal(vlt_trainer_create(&c, &o, &t), VLT_OK);
    assert_int_equal(vlt_trainer_run_steps(t, 3), VLT_OK);
    vlt_trainer_free(t);
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    if (vlt_trainer_create(&c, &r, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_step(t), 3);
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) assert_true(l[i] == full[3 + i]);
    vlt_trainer_free(t);

    char a[600], b[600];
    snprintf(a, sizeof a, "%s/full/checkpoints/step_00000006/model.safetensors", g_train_dir);
    snprintf(b, sizeof b, "%s/part/checkpoints/step_00000006/model.safetensors", g_train_dir);
    compare_tables(a, b);   // weights, momentum copies, queues, queue_ptr
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open(a, &f), VLT_OK);
    assert_non_null(vlt_safetensors_get(f, "text_encoder_m.bert.encoder.layer.2.crossattention.self.key.weight"));
    assert_non_null(vlt_safetensors_get(f, "image_queue"));
    int64_t ptr;
    assert_int_equal(vlt_safetensors_read_i64(f, "queue_ptr", &ptr, 1), VLT_OK);
    assert_int_equal(ptr, (6 * 16) % 64);
    vlt_safetensors_close(f);
    snprintf(a, sizeof a, "%s/full/checkpoints/step_00000006/optimizer.safetensors", g_train_dir);
    snprintf(b, sizeof b, "%s/part/checkpoints/step_00000006/optimizer.safetensors", g_train_dir);
    compare_tables(a, b);

    // the log names each loss part and the accuracies
    snprintf(a, sizeof a, "%s/full/metrics.jsonl", g_train_dir);
    FILE *m = fopen(a, "r");
    assert_non_null(m);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, m));
    fclose(m);
    const char *keys[] = {"\"loss_itc\"", "\"loss_itm\"", "\"loss_mlm\"", "\"train/itm_acc\"", "\"train/mlm_acc\""};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strstr(line, keys[i])) fail_msg("metrics.jsonl lacks %s: %s", keys[i], line);
}

static void test_vocab_must_fit_the_config(void **state) {
    (void)state;
    // a vocabulary larger than bert.vocab_size is refused, naming both
    char p[400];
    snprintf(p, sizeof p, "%.300s/bad-albef.json", g_train_dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "{\"albef\": {\"image_res\": 32, \"patch_size\": 8, \"vision_width\": 48, \"vision_depth\": 1,"
               " \"vision_heads\": 2, \"embed_dim\": 16, \"queue_size\": 32, \"vocab\": \"tests/data/bert/vocab_uncased.txt\"},"
               " \"bert\": {\"vocab_size\": 100, \"hidden_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
               " \"intermediate_size\": 96, \"max_position_embeddings\": 24, \"fusion_layer\": 1}}\n");
    fclose(f);
    vlt_run_config c;
    config(&c, "bad");
    snprintf(c.model_name, sizeof c.model_name, "%s", p);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    assert_int_not_equal(vlt_trainer_create(&c, &o, &t), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "vocab_uncased.txt"));
    assert_non_null(strstr(vlt_error_message(), "vocab_size 100"));
}

static void test_rerank_equals_brute_force(void **state) {
    (void)state;
    // With k covering every candidate, re-ranking is ranking every pair by the matching head:
    // the recall equals a brute-force ranking of all n x n match probabilities; with k = 1 only a
    // target that is its query's nearest feature can count.
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load(g_model, &cfg), VLT_OK);
    vlt_model m;
    if (vlt_model_create(&m, &cfg, 3) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_true(vlt_model_can(&m, VLT_CAP_MATCH));
    char val[400];
    snprintf(val, sizeof val, "%.300s/val/val-{00000..00001}.tar", g_train_dir);
    vlt_embedded_pairs p;
    if (vlt_embed_pairs(&m, NULL, val, 8, 12, &p) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(p.n, 12);
    assert_int_equal(p.n_txt, 12);
    assert_non_null(p.img_tok);
    vlt_no_grad_enter();
    vlt_eval_retrieval_result all, one;
    assert_int_equal(vlt_eval_pairs_rerank(&m, &p, 12, 5, &all), VLT_OK);
    assert_int_equal(vlt_eval_pairs_rerank(&m, &p, 1, 5, &one), VLT_OK);
    // brute force: score[i][t] for every pair
    float score[12][12];
    size_t row = (size_t)p.tok_n * p.tok_w;
    for (int i = 0; i < 12; i++) {
        vlt_tensor *tk = vlt_tensor_new_activation(VLT_F32, VLT_CPU, 3, VLT_SHAPE(12, p.tok_n, p.tok_w));
        vlt_tensor *ids = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(12, p.txt_T));
        for (int t = 0; t < 12; t++) memcpy(vlt_f32(tk) + t * row, p.img_tok + i * row, sizeof(float) * row);
        memcpy(vlt_i32(ids), p.txt_ids, sizeof(int32_t) * 12 * (size_t)p.txt_T);
        vlt_tensor *sc = vlt_model_match(&m, tk, ids);
        assert_non_null(sc);
        for (int t = 0; t < 12; t++) score[i][t] = vlt_f32(sc)[t];
        vlt_step_reset();
    }
    vlt_no_grad_exit();
    int hit_i2t = 0, hit_t2i = 0;
    for (int i = 0; i < 12; i++) {
        int above = 0, above_t = 0;
        for (int t = 0; t < 12; t++) {
            above += t != i && score[i][t] >= score[i][i];    // image i's captions
            above_t += t != i && score[t][i] >= score[i][i];  // caption i's images
        }
        hit_i2t += above < 5;
        hit_t2i += above_t < 5;
    }
    assert_true(fabs(all.i2t.recall[1] - hit_i2t / 12.0) < 1e-9);
    assert_true(fabs(all.t2i.recall[1] - hit_t2i / 12.0) < 1e-9);
    vlt_eval_retrieval_result feat;
    assert_int_equal(vlt_eval_pairs_retrieval(&p, &feat), VLT_OK);
    assert_true(one.i2t.recall[2] <= feat.i2t.recall[0] + 1e-9);   // k = 1: only the nearest can hit
    vlt_embedded_pairs_free(&p);
    vlt_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_albef_trains_and_resumes_exactly),
        cmocka_unit_test(test_vocab_must_fit_the_config),
        cmocka_unit_test(test_rerank_equals_brute_force),
    };
    return cmocka_run_group_tests(tests, setup, train_fixture_teardown);
}
