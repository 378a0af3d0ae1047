// `vlt train` of the VQA heads with train.device cuda (issue 16's GPU line), on synthetic VQA
// shards (vlt synth --vqa, vlt shards --vqa-*):
//   - the CLIP classifier with each fusion (concat; tokens with the text tower locked, as the
//     demo trains it) is accepted on the GPU; fp32 on the
//     GPU follows the CPU run loss for loss (6 steps, relative 1e-3); a GPU run stopped after its
//     step-3 checkpoint and resumed continues as the uninterrupted GPU run: the losses, and at
//     step 6 every tensor of the checkpoint and of the optimizer state (relative 1e-5, as the
//     ALBEF suite; the counts of bit-identical ones are printed).
//   - ALBEF VQA (tests/train_fixture.h's tiny config: answer decoder, momentum distillation) the
//     same way (the momentum copies are in the compared checkpoint); and its answer ranking of
//     the held-out questions (vlt vqa's vlt_vqa_predict over the run's answer vocabulary) from the
//     GPU-trained checkpoint gives on the GPU the answers it gives on the CPU.
// The GPU cases print "skipped: no GPU" and are reported as skipped without one (that the models
// are no longer refused for the GPU is checked without one by tests/test_layers_cuda_vqa.c).
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "autograd/device.h"
#include "checkpoints/safetensors.h"
#include "data/tokenizer.h"
#include "layers/model.h"
#include "tests/cuda_compare.h"
#include "tests/train_fixture.h"
#include "train/model_source.h"
#include "train/trainer.h"
#include "train/vqa_eval.h"

static char g_dir[256], g_albef[320];

// 60 training images (180 questions, 3 shards), 20 held-out ones (60 questions), 32 px.
static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-cuda-vqa-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_albef, sizeof g_albef, "%s/tiny-albef-vqa.json", g_dir);
    return train_fixture_vqa_split(g_dir, "train", 60, 3, 0, 60, true) ||
                   train_fixture_vqa_split(g_dir, "val", 20, 3, 100000, 60, false) ||
                   train_fixture_tiny_albef_vqa(g_albef)
               ? -1
               : 0;
}

static int teardown(void **state) {
    (void)state;
    vlt_set_default_device(VLT_CPU);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef enum { HEAD_CONCAT, HEAD_TOKENS, HEAD_ALBEF } head_kind;
static const char *const HEAD_NAMES[] = {"concat", "tokens", "albef"};

static void config(vlt_run_config *c, head_kind h, const char *out, const char *device) {
    vlt_run_config_default(c);
    snprintf(c->train_shards, sizeof c->train_shards, "%s/train/{00000..00002}.tar", g_dir);
    snprintf(c->val_shards, sizeof c->val_shards, "%s/val/00000.tar", g_dir);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/%s-%s", g_dir, HEAD_NAMES[h], out);
    snprintf(c->device, sizeof c->device, "%s", device);
    snprintf(c->precision, sizeof c->precision, "fp32");
    snprintf(c->model_name, sizeof c->model_name, "tiny-clip");
    snprintf(c->vqa_head, sizeof c->vqa_head, "classifier");
    snprintf(c->vqa_fusion, sizeof c->vqa_fusion, "%s", HEAD_NAMES[h]);
    c->vqa_fusion_layers = h == HEAD_TOKENS ? 1 : 0;
    // token fusion with the question tower locked, as make demo-vqa trains it: frozen tensors
    // before trainable ones in the table (the GPU checkpoint pairs each moment with its own)
    c->lock_text = h == HEAD_TOKENS;
    c->batch_size = 16;
    c->lr = 2e-3;
    c->workers = 1;
    c->shuffle_buffer = 50;
    c->shuffle_initial = 10;
    c->warmup = 2;
    c->steps = 6;
    c->checkpoint_every = 3;
    c->tensorboard = false;
    if (h == HEAD_ALBEF) {   // as tests/test_train_albef_vqa.c
        snprintf(c->model_name, sizeof c->model_name, "%s", g_albef);
        snprintf(c->vqa_head, sizeof c->vqa_head, "albef");
        snprintf(c->vqa_fusion, sizeof c->vqa_fusion, "concat");   // the default (unused by ALBEF VQA)
        c->vqa_fusion_layers = 0;
        c->batch_size = 8;
        c->lr = 1e-3;
        c->warmup = 1;
    }
}

static const char *TITLES[] = {"CLIP VQA classifier", "CLIP VQA classifier", "ALBEF VQA"};

static void run(head_kind h, const char *out, const char *device, float *losses) {
    vlt_run_config c;
    config(&c, h, out, device);
    char label[64];
    snprintf(label, sizeof label, "%s %s", HEAD_NAMES[h], out);
    vlt_trainer_free(train_fixture_run(&c, label, TITLES[h], losses));
    vlt_set_default_device(VLT_CPU);
}

// CPU and GPU runs of 6 steps, then the GPU run again stopped after its step-3 checkpoint and
// resumed: the GPU follows the CPU; the resumed run is the uninterrupted one.
static void trains_on_the_gpu(head_kind h) {
    float lc[6], lg[6];
    run(h, "cpu", "cpu", lc);
    run(h, "gfull", "cuda", lg);
    train_fixture_gpu_follows_cpu(HEAD_NAMES[h], lc, lg, 6);

    // (the kernels are deterministic, so the resumed run is expected to give 3 bit-identical
    // losses and no differing tensor; the bound is the ALBEF suite's, tests/test_train_cuda_albef.c)
    vlt_run_config c;
    config(&c, h, "gpart", "cuda");
    char a[600], b[600], prefix[32];
    snprintf(a, sizeof a, "%s/%s-gfull", g_dir, HEAD_NAMES[h]);
    snprintf(prefix, sizeof prefix, "%s, ", HEAD_NAMES[h]);
    train_fixture_resume_at_3(&c, lg, a, prefix);
    // the GPU checkpoint holds what the CPU run's does: the same names with the same shapes (each
    // moment under its own parameter's name; compare_tables fails otherwise). The values are only
    // printed: tensors whose exact gradient is 0 (the key biases) move by AdamW's normalised
    // rounding noise, differently on each device.
    double cw = 0;
    snprintf(a, sizeof a, "%s/%s-cpu/checkpoints/step_00000006/optimizer.safetensors", g_dir, HEAD_NAMES[h]);
    snprintf(b, sizeof b, "%s/%s-gfull/checkpoints/step_00000006/optimizer.safetensors", g_dir, HEAD_NAMES[h]);
    int n_opt = train_fixture_compare_tables(a, b, &cw);
    snprintf(a, sizeof a, "%s/%s-cpu/checkpoints/step_00000006/model.safetensors", g_dir, HEAD_NAMES[h]);
    snprintf(b, sizeof b, "%s/%s-gfull/checkpoints/step_00000006/model.safetensors", g_dir, HEAD_NAMES[h]);
    int n_model = train_fixture_compare_tables(a, b, &cw);
    print_message("%s, step-6 checkpoints of the CPU and GPU runs: the same names and shapes; %d model and %d "
                  "optimizer tensors differ, worst relative difference %.2g\n", HEAD_NAMES[h], n_model, n_opt, cw);
}

static void test_classifier_concat_trains_on_the_gpu(void **state) {
    (void)state;
    NEED_GPU();
    trains_on_the_gpu(HEAD_CONCAT);
}

static void test_classifier_tokens_trains_on_the_gpu(void **state) {
    (void)state;
    NEED_GPU();
    trains_on_the_gpu(HEAD_TOKENS);
}

// The held-out answers of the GPU-trained checkpoint on one device (the model moved there).
static void predict(const char *ckpt, vlt_device dev, vlt_vqa_predictions *p) {
    vlt_model_source src;
    if (vlt_model_source_open_vqa(ckpt, NULL, NULL, &src) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_vqa_vocab v;
    if (vlt_vqa_vocab_of_checkpoint(src.checkpoint, &v) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_tokenizer *tok;
    assert_int_equal(vlt_tokenizer_load(NULL, &tok), VLT_OK);
    if (dev != VLT_CPU) {
        assert_int_equal(vlt_params_move(src.m.params, dev), VLT_OK);
        assert_int_equal(vlt_set_default_device(dev), VLT_OK);
    }
    char shards[320];
    snprintf(shards, sizeof shards, "%s/val/00000.tar", g_dir);
    if (vlt_vqa_predict(&src.m, tok, shards, 16, 0, &v, p) != VLT_OK) fail_msg("predict: %s", vlt_error_message());
    vlt_set_default_device(VLT_CPU);
    vlt_tokenizer_free(tok);
    vlt_vqa_vocab_free(&v);
    vlt_model_source_close(&src);
}

static void test_albef_vqa_trains_and_ranks_on_the_gpu(void **state) {
    (void)state;
    NEED_GPU();
    trains_on_the_gpu(HEAD_ALBEF);
    char ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/albef-gfull", g_dir);
    vlt_vqa_predictions pc, pg;
    predict(ckpt, VLT_CPU, &pc);
    predict(ckpt, VLT_CUDA, &pg);
    assert_int_equal(pg.n, pc.n);
    assert_int_equal(pc.n, 60);
    int same = 0;
    double cw = 0;
    for (int i = 0; i < pc.n; i++) {
        assert_true(pg.qid[i] == pc.qid[i]);
        same += !strcmp(pg.answer[i], pc.answer[i]);
        cw = fmax(cw, fabs((double)pg.conf[i] - pc.conf[i]));
    }
    print_message("ALBEF VQA ranking of %d held-out questions from the GPU-trained checkpoint: %d answers the same on "
                  "the GPU as on the CPU; confidences within %.2g\n", pc.n, same, cw);
    assert_int_equal(same, pc.n);
    assert_true(cw <= 1e-4);
    vlt_vqa_predictions_free(&pc);
    vlt_vqa_predictions_free(&pg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classifier_concat_trains_on_the_gpu),
        cmocka_unit_test(test_classifier_tokens_trains_on_the_gpu),
        cmocka_unit_test(test_albef_vqa_trains_and_ranks_on_the_gpu),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    vlt_cuda_shutdown();
    return rc;
}
