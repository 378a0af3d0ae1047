// train_fixture.h — what the end-to-end training suites share: synthetic train / held-out shards
// in a temporary directory (cmocka group setup and teardown) and a small tiny-CLIP run config
// over them; synthetic VQA splits and the tiny ALBEF / ALBEF VQA model configs of the ALBEF and
// VQA suites; and, for the suites that compare runs (include after <cmocka.h>), the comparison of
// two runs' losses and checkpoint tables and the GPU suites' stop-at-step-3-and-resume check.
// Everything is static inline: a suite includes it for the parts it uses.
#ifndef VLT_TESTS_TRAIN_FIXTURE_H
#define VLT_TESTS_TRAIN_FIXTURE_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autograd/device.h"
#include "checkpoints/safetensors.h"
#include "train/commands.h"
#include "train/run_config.h"
#include "train/trainer.h"

static char g_train_dir[256];

// 2,000 training pairs in 8 shards and 500 held-out pairs in 2 (32 px, seed 3).
static inline int train_fixture_setup(void **state) {
    (void)state;
    snprintf(g_train_dir, sizeof g_train_dir, "/tmp/vlt-e2e-XXXXXX");
    if (!mkdtemp(g_train_dir)) return -1;
    char train[300], val[300];
    snprintf(train, sizeof train, "%s/train", g_train_dir);
    snprintf(val, sizeof val, "%s/val", g_train_dir);
    char *a[] = {"synth", "--out", train, "--samples", "2000", "--shard-size", "250", "--image-size", "32", "--seed", "3", NULL};
    char *b[] = {"synth", "--out", val, "--samples", "500", "--shard-size", "250", "--image-size", "32", "--seed", "3",
                 "--first-index", "1000000", "--prefix", "val-", NULL};
    if (vlt_cmd_synth(11, a) != 0 || vlt_cmd_synth(15, b) != 0) return -1;
    return 0;
}

static inline int train_fixture_teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_train_dir);
    return system(cmd) == 0 ? 0 : -1;
}

// tiny-clip on the fixture's shards, batch 32, output in the fixture's directory under `out`.
static inline void train_fixture_config(vlt_run_config *c, const char *out) {
    vlt_run_config_default(c);
    snprintf(c->model_name, sizeof c->model_name, "tiny-clip");
    snprintf(c->train_shards, sizeof c->train_shards, "%s/train/{00000..00007}.tar", g_train_dir);
    snprintf(c->val_shards, sizeof c->val_shards, "%s/val/val-{00000..00001}.tar", g_train_dir);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/%s", g_train_dir, out);
    c->batch_size = 32;
    c->workers = 2;
    c->shuffle_buffer = 200;
    c->shuffle_initial = 50;
    c->lr = 2e-3;
    c->weight_decay = 0.1;
    c->warmup = 10;
    c->checkpoint_every = 0;
    c->eval_every = 0;
    c->val_samples = 500;
    c->tensorboard = false;
}

// A command (vlt_cmd_*) on a NULL-terminated argument list.
static inline int train_fixture_call(int (*cmd)(int, char **), char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    return cmd(argc, argv);
}

// A VQA split: `vlt synth --vqa` writes `samples` pictures (32 px, from `seed`, numbered from
// first_index) with 3 questions each and their annotations in DIR/syn-NAME; `vlt shards --vqa-*`
// packs them into DIR/NAME in shards of shard_size questions, with the answer vocabulary
// (answer_vocab.json, the 3,129 most frequent answers) when `vocab` (a training split). 0 or -1.
static inline int train_fixture_vqa_split(const char *dir, const char *name, int samples, int seed, int first_index,
                                          int shard_size, bool vocab) {
    char syn[300], out[300], q[320], a[320], im[320], n[16], sd[16], first[24], size[16];
    snprintf(syn, sizeof syn, "%s/syn-%s", dir, name);
    snprintf(out, sizeof out, "%s/%s", dir, name);
    snprintf(n, sizeof n, "%d", samples);
    snprintf(sd, sizeof sd, "%d", seed);
    snprintf(first, sizeof first, "%d", first_index);
    snprintf(size, sizeof size, "%d", shard_size);
    char *s[] = {"synth", "--vqa", "--out", syn, "--samples", n, "--image-size", "32", "--seed", sd,
                 first_index ? "--first-index" : NULL, first, NULL};
    if (train_fixture_call(vlt_cmd_synth, s)) return -1;
    snprintf(q, sizeof q, "%s/questions.json", syn);
    snprintf(a, sizeof a, "%s/annotations.json", syn);
    snprintf(im, sizeof im, "%s/images", syn);
    char *p[] = {"shards", "--vqa-questions", q, "--vqa-annotations", a, "--images", im, "--out", out, "--shard-size", size,
                 vocab ? "--vqa-vocab" : NULL, "3129", NULL};
    return train_fixture_call(vlt_cmd_shards, p) ? -1 : 0;
}

// Writes `text` to path; 0 or -1.
static inline int train_fixture_write(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

// A tiny ALBEF VQA model config at path: 32 px in 8 px patches, widths 32, one decoder layer,
// momentum distillation, the demo VQA vocabulary (assets/, found from the repository root).
static inline int train_fixture_tiny_albef_vqa(const char *path) {
    return train_fixture_write(path,
        "{\"albef\": {\"image_res\": 32, \"patch_size\": 8, \"vision_width\": 32, \"vision_depth\": 1, \"vision_heads\": 2,"
        " \"mlp_ratio\": 2, \"embed_dim\": 16, \"queue_size\": 32, \"momentum\": 0.9, \"alpha\": 0.4,"
        " \"vocab\": \"assets/bert_demo_vqa_vocab.txt\", \"max_text_len\": 16},"
        " \"bert\": {\"vocab_size\": 70, \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
        " \"intermediate_size\": 64, \"max_position_embeddings\": 20, \"fusion_layer\": 1, \"pad_token_id\": 0},"
        " \"albef_vqa\": {\"decoder_layers\": 1, \"distill\": true, \"k_test\": 8}}\n");
}

// A tiny ALBEF pretraining config at path (widths 48, 2 vision blocks, BERT fusion from layer 2,
// the demo caption vocabulary by its absolute path): 32 px in patch_size px patches, queues of
// queue_size, text_layers BERT layers; from_scratch: the demo's settings for training from
// scratch (configs/run/demo-albef.yaml: momentum 0.9, BERT initializer_range 0.1), else the
// paper's defaults. 0 or -1.
static inline int train_fixture_tiny_albef(const char *path, int patch_size, int queue_size, int text_layers,
                                           bool from_scratch) {
    char cwd[256], js[1100];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    snprintf(js, sizeof js,
             "{\"albef\": {\"image_res\": 32, \"patch_size\": %d, \"vision_width\": 48, \"vision_depth\": 2,"
             " \"vision_heads\": 2, \"embed_dim\": 32, \"queue_size\": %d,%s \"vocab\": \"%s/assets/bert_demo_vocab.txt\","
             " \"max_text_len\": 20},"
             " \"bert\": {\"vocab_size\": 32, \"hidden_size\": 48, \"num_hidden_layers\": %d,"
             " \"num_attention_heads\": 2, \"intermediate_size\": 96, \"max_position_embeddings\": 24,"
             " \"fusion_layer\": 2%s}}\n",
             patch_size, queue_size, from_scratch ? " \"momentum\": 0.9," : "", cwd, text_layers,
             from_scratch ? ", \"initializer_range\": 0.1" : "");
    return train_fixture_write(path, js);
}

// ---- comparing runs (cmocka suites) ----

// The GPU training suites' run: train_fixture_config with `model` on `device` in fp32, batch 16,
// 6 steps (warmup 2, lr 5e-4), a checkpoint every 3 steps, 64 held-out samples.
static inline void train_fixture_gpu_config(vlt_run_config *c, const char *out, const char *model, const char *device) {
    train_fixture_config(c, out);
    snprintf(c->model_name, sizeof c->model_name, "%s", model);
    snprintf(c->device, sizeof c->device, "%s", device);
    snprintf(c->precision, sizeof c->precision, "fp32");
    c->batch_size = 16;
    c->steps = 6;
    c->warmup = 2;
    c->lr = 5e-4;
    c->checkpoint_every = 3;
    c->val_samples = 64;
}

// A whole run of c (c->steps steps) by a trainer whose model title is `title`; its losses into
// `losses`. The trainer is returned (the caller frees it; the default device may be the GPU).
// Failures name `label`.
static inline vlt_trainer *train_fixture_run(const vlt_run_config *c, const char *label, const char *title,
                                             float *losses) {
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(c, &o, &t) != VLT_OK) fail_msg("%s: %s", label, vlt_error_message());
    assert_string_equal(vlt_trainer_model_title(t), title);
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s: %s", label, vlt_error_message());
    int64_t n;
    const float *l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, c->steps);
    memcpy(losses, l, sizeof(float) * (size_t)c->steps);
    return t;
}

// The GPU run follows the CPU run loss for loss: the worst relative difference of n losses is
// printed (as "what, n steps: ...") and must be <= 1e-3 (fp32 on both, summation order).
static inline void train_fixture_gpu_follows_cpu(const char *what, const float *lc, const float *lg, int n) {
    double worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs((double)lg[i] - lc[i]) / fabs(lc[i]));
    print_message("%s, %d steps: loss cpu %.5f -> %.5f, gpu fp32 %.5f -> %.5f; worst relative difference %.2g\n",
                  what, n, lc[0], lc[n - 1], lg[0], lg[n - 1], worst);
    assert_true(worst <= 1e-3);
}

// Tensors of two checkpoint files: the count of names whose bytes differ, and the worst
// difference relative to the tensor's largest magnitude (f32 ones). Both must hold the same
// names with the same sizes.
static inline int train_fixture_compare_tables(const char *a, const char *b, double *worst) {
    vlt_safetensors *x, *y;
    assert_int_equal(vlt_safetensors_open(a, &x), VLT_OK);
    assert_int_equal(vlt_safetensors_open(b, &y), VLT_OK);
    assert_int_equal(vlt_safetensors_count(x), vlt_safetensors_count(y));
    int differ = 0;
    for (int i = 0; i < vlt_safetensors_count(x); i++) {
        const vlt_st_tensor *s = vlt_safetensors_at(x, i), *t = vlt_safetensors_get(y, s->name);
        if (!t || t->nbytes != s->nbytes) fail_msg("%s: not in both %s and %s", s->name, a, b);
        if (!memcmp(s->data, t->data, s->nbytes)) continue;
        differ++;
        int64_t n = 1;
        for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
        if ((size_t)n * 4 != s->nbytes) fail_msg("%s differs and is not f32 (%s, %s)", s->name, a, b);
        float *p = malloc(s->nbytes), *q = malloc(s->nbytes);
        assert_int_equal(vlt_safetensors_read_f32(x, s->name, p, n), VLT_OK);
        assert_int_equal(vlt_safetensors_read_f32(y, s->name, q, n), VLT_OK);
        double m = 1e-30, d = 0;
        for (int64_t j = 0; j < n; j++) {
            m = fmax(m, fabs(p[j]));
            d = fmax(d, fabs((double)p[j] - q[j]));
        }
        *worst = fmax(*worst, d / m);
        free(p);
        free(q);
    }
    vlt_safetensors_close(x);
    vlt_safetensors_close(y);
    return differ;
}

// A run of c (6 steps, a checkpoint every 3) stopped after its step-3 checkpoint and resumed
// continues as the uninterrupted run of the same config whose losses are `whole` and whose output
// directory is `whole_dir`: the resumed losses, and at step 6 every tensor of the model and
// optimizer checkpoints, within 1e-5 relative. Printed as "<prefix>GPU resume at step 3: ...".
static inline void train_fixture_resume_at_3(const vlt_run_config *c, const float *whole, const char *whole_dir,
                                             const char *prefix) {
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run_steps(t, 4), VLT_OK);
    vlt_trainer_free(t);
    vlt_set_default_device(VLT_CPU);
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    if (vlt_trainer_create(c, &r, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_step(t), 3);
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    int64_t n;
    const float *l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, 3);
    int same = 0;
    double lw = 0;
    for (int i = 0; i < 3; i++) {
        same += memcmp(&l[i], &whole[3 + i], sizeof(float)) == 0;
        lw = fmax(lw, fabs((double)l[i] - whole[3 + i]) / fabs(whole[3 + i]));
    }
    vlt_trainer_free(t);
    vlt_set_default_device(VLT_CPU);
    char a[2048], b[2048];
    double tw = 0;
    snprintf(a, sizeof a, "%s/checkpoints/step_00000006/model.safetensors", whole_dir);
    snprintf(b, sizeof b, "%s/checkpoints/step_00000006/model.safetensors", c->output_dir);
    int dm = train_fixture_compare_tables(a, b, &tw);
    snprintf(a, sizeof a, "%s/checkpoints/step_00000006/optimizer.safetensors", whole_dir);
    snprintf(b, sizeof b, "%s/checkpoints/step_00000006/optimizer.safetensors", c->output_dir);
    int dopt = train_fixture_compare_tables(a, b, &tw);
    print_message("%sGPU resume at step 3: %d of 3 losses bit-identical to the uninterrupted GPU run (worst relative "
                  "difference %.2g); at step 6, %d model and %d optimizer tensors differ in any bit (worst relative "
                  "%.2g)\n", prefix, same, lw, dm, dopt, tw);
    assert_true(lw <= 1e-5);
    assert_true(tw <= 1e-5);
}

#endif
