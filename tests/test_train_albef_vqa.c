// ALBEF VQA through vlt train and vlt vqa (issue 16, the ALBEF head): on synthetic VQA shards a
// tiny ALBEF VQA model (answer decoder, momentum distillation) trains from the samples' answers
// (model.vqa_head: albef), resumes exactly (weights, momentum copies and optimizer state bit for bit
// against the uninterrupted run), and its held-out accuracy logged by training's evaluation equals
// `vlt vqa` (the authors' ranking of the run's answer vocabulary) scored by `vlt eval vqa`. The run
// config refuses model.vqa_head albef with a model that is not ALBEF VQA, and the reverse; and
// model.init_from takes an ALBEF pretraining checkpoint through VQA.py's key remapping.
#include <cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "checkpoints/safetensors.h"
#include "eval/json_file.h"
#include "layers/model.h"
#include "train/commands.h"
#include "train/run_config.h"
#include "train/trainer.h"
#include "tests/train_fixture.h"

static char g_dir[256], g_model[320];

// 60 training images (180 questions, 3 shards), 20 held-out ones (60 questions), 32 px; a tiny
// ALBEF VQA config with the demo VQA vocabulary.
static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-albef-vqa-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    if (train_fixture_vqa_split(g_dir, "train", 60, 3, 0, 60, true) ||
        train_fixture_vqa_split(g_dir, "val", 20, 3, 100000, 60, false))
        return -1;
    snprintf(g_model, sizeof g_model, "%s/tiny-albef-vqa.json", g_dir);
    return train_fixture_tiny_albef_vqa(g_model);
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void config(vlt_run_config *c, const char *out) {
    vlt_run_config_default(c);
    snprintf(c->model_name, sizeof c->model_name, "%s", g_model);
    snprintf(c->vqa_head, sizeof c->vqa_head, "albef");
    snprintf(c->train_shards, sizeof c->train_shards, "%s/train/{00000..00002}.tar", g_dir);
    snprintf(c->val_shards, sizeof c->val_shards, "%s/val/00000.tar", g_dir);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/%s", g_dir, out);
    c->batch_size = 8;
    c->workers = 1;
    c->shuffle_buffer = 50;
    c->shuffle_initial = 10;
    c->lr = 1e-3;
    c->warmup = 1;
    c->steps = 6;
    c->checkpoint_every = 0;
    c->tensorboard = false;
}

static void test_train_resume_exactly(void **state) {
    (void)state;
    vlt_run_config c;
    config(&c, "whole");
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *whole;
    if (vlt_trainer_create(&c, &o, &whole) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_true(vlt_trainer_can_answer(whole));
    assert_string_equal(vlt_trainer_model_title(whole), "ALBEF VQA");
    if (vlt_trainer_run(whole) != VLT_OK) fail_msg("%s", vlt_error_message());
    int64_t nl;
    const float *losses = vlt_trainer_losses(whole, &nl);
    assert_int_equal(nl, 6);
    for (int i = 0; i < 6; i++) assert_true(isfinite(losses[i]) && losses[i] > 0);

    config(&c, "halves");
    c.checkpoint_every = 3;
    vlt_trainer *a;
    assert_int_equal(vlt_trainer_create(&c, &o, &a), VLT_OK);
    assert_int_equal(vlt_trainer_run_steps(a, 3), VLT_OK);
    vlt_trainer_free(a);
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    vlt_trainer *b;
    if (vlt_trainer_create(&c, &r, &b) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_step(b), 3);
    assert_int_equal(vlt_trainer_run(b), VLT_OK);
    const vlt_params *pa = vlt_trainer_params(whole), *pb = vlt_trainer_params(b);
    assert_int_equal(pa->n, pb->n);
    int momentum = 0;
    for (int i = 0; i < pa->n; i++) {   // online weights and the momentum copies (EMA) alike
        assert_string_equal(pa->t[i]->name, pb->t[i]->name);
        size_t sz = pa->t[i]->dtype == VLT_I32 ? sizeof(int32_t) : sizeof(float);
        if (memcmp(pa->t[i]->data, pb->t[i]->data, sz * (size_t)pa->t[i]->numel))
            fail_msg("%s differs between the uninterrupted and the resumed run", pa->t[i]->name);
        momentum += strstr(pa->t[i]->name, "_m.") != NULL;
    }
    assert_true(momentum > 0);
    vlt_trainer_free(b);
    vlt_trainer_free(whole);
}

static double last_metric(const char *run, const char *key) {
    char path[600], line[8192];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    double v = NAN;
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
        if (cJSON_IsNumber(x)) v = x->valuedouble;
        cJSON_Delete(o);
    }
    fclose(f);
    return v;
}

static void test_answers_scored_as_in_training(void **state) {
    (void)state;
    vlt_run_config c;
    config(&c, "evaluated");
    c.eval_every = 6;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    vlt_trainer_free(t);
    double logged = last_metric(c.output_dir, "val/vqa_accuracy");
    assert_true(logged >= 0 && logged <= 100);
    char res[600], refs[600], rep[600];
    snprintf(res, sizeof res, "%s/results.json", g_dir);
    snprintf(refs, sizeof refs, "%s/syn-val/annotations.json", g_dir);
    snprintf(rep, sizeof rep, "%s/eval_vqa.json", g_dir);
    char *v1[] = {"vqa", "--checkpoint", c.output_dir, "--shards", c.val_shards, "--out", res, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, v1), 0);
    cJSON *arr;
    assert_int_equal(vlt_eval_json_load(res, &arr), VLT_OK);
    assert_int_equal(cJSON_GetArraySize(arr), 60);
    cJSON_Delete(arr);
    char *e1[] = {"eval", "vqa", "--pred", res, "--refs", refs, "--out", rep, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_eval, e1), 0);
    cJSON *root;
    assert_int_equal(vlt_eval_json_load(rep, &root), VLT_OK);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "numbers"), "accuracy");
    assert_true(cJSON_IsNumber(x));
    print_message("training's eval %.4f, vlt vqa + vlt eval vqa %.4f\n", logged, 100 * x->valuedouble);
    assert_true(fabs(100 * x->valuedouble - logged) < 1e-9);
    cJSON_Delete(root);
}

static void test_config_pairs_head_and_model(void **state) {
    (void)state;
    vlt_run_config c;
    vlt_model_cfg mc;
    config(&c, "refused");
    snprintf(c.model_name, sizeof c.model_name, "tiny-clip");
    assert_int_not_equal(vlt_run_config_model_cfg(&c, &mc), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "vqa_head albef"));
    config(&c, "refused");
    c.vqa_head[0] = 0;
    assert_int_not_equal(vlt_run_config_model_cfg(&c, &mc), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "ALBEF VQA"));
    config(&c, "accepted");
    assert_int_equal(vlt_run_config_model_cfg(&c, &mc), VLT_OK);
    assert_true(mc.albef.vqa.on && mc.albef.vqa.distill);
}

// model.init_from with an ALBEF pretraining checkpoint: VQA.py's remapping (the decoder's layer 0 is
// the pretrained layer fusion_layer = 1, its LM head the MLM head, the encoder the text encoder
// without ".bert."); the momentum copies come from the pretrained ones.
static void test_init_from_pretraining(void **state) {
    (void)state;
    vlt_model_cfg pc;
    assert_int_equal(vlt_model_cfg_load(g_model, &pc), VLT_OK);
    pc.albef.vqa.on = false;   // the same sizes as a pretraining model
    vlt_model pre;
    if (vlt_model_create(&pre, &pc, 11) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_string_equal(vlt_model_kind(&pre), "albef");
    char path[400];
    snprintf(path, sizeof path, "%s/pretrained.safetensors", g_dir);
    assert_int_equal(vlt_safetensors_save_params(path, pre.params, VLT_ST_F32, NULL, 0), VLT_OK);
    vlt_run_config c;
    config(&c, "from-pretrained");
    snprintf(c.init_from, sizeof c.init_from, "%s", path);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    const vlt_params *p = vlt_trainer_params(t);
    static const char *const pairs[][2] = {
        {"text_decoder.bert.encoder.layer.0.crossattention.self.key.weight", "text_encoder.bert.encoder.layer.1.crossattention.self.key.weight"},
        {"text_decoder_m.bert.encoder.layer.0.attention.self.query.weight", "text_encoder_m.bert.encoder.layer.1.attention.self.query.weight"},
        {"text_decoder.cls.predictions.transform.dense.weight", "text_encoder.cls.predictions.transform.dense.weight"},
        {"text_decoder.bert.embeddings.word_embeddings.weight", "text_encoder.bert.embeddings.word_embeddings.weight"},
        {"text_encoder.encoder.layer.0.attention.self.value.weight", "text_encoder.bert.encoder.layer.0.attention.self.value.weight"},
        {"visual_encoder_m.blocks.0.attn.qkv.weight", "visual_encoder_m.blocks.0.attn.qkv.weight"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        vlt_tensor *a = vlt_params_find(p, pairs[i][0]), *b = vlt_params_find(pre.params, pairs[i][1]);
        if (!a || !b) fail_msg("missing %s or %s", pairs[i][0], pairs[i][1]);
        assert_int_equal(a->numel, b->numel);
        if (memcmp(a->data, b->data, sizeof(float) * (size_t)a->numel)) fail_msg("%s is not %s", pairs[i][0], pairs[i][1]);
    }
    vlt_trainer_free(t);
    vlt_model_free(&pre);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_pairs_head_and_model),
        cmocka_unit_test(test_train_resume_exactly),
        cmocka_unit_test(test_answers_scored_as_in_training),
        cmocka_unit_test(test_init_from_pretraining),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
