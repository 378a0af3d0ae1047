// `vlt train` of an ALBEF model with train.device cuda (issue 15's GPU part, issue 17's "every
// model on the GPU"), on synthetic shards with the model's own BERT vocabulary:
//   - the model is accepted on the GPU (it was refused by name before);
//   - fp32 on the GPU follows the CPU run loss for loss (6 steps: the same MLM masks, hard
//     negatives drawn on the host from the GPU's similarities, EMA and queues on the device);
//   - a GPU run stopped after its step-3 checkpoint and resumed continues as the uninterrupted
//     GPU run: the losses, and at step 6 every tensor of the checkpoint (weights, momentum copies,
//     queues, queue_ptr) and of the optimizer state.
// The GPU cases print "skipped: no GPU" and are reported as skipped without one.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <math.h>

#include "autograd/device.h"
#include "checkpoints/safetensors.h"
#include "tests/train_fixture.h"
#include "train/trainer.h"

#define NEED_GPU()                              \
    do {                                        \
        if (!vlt_cuda_available()) {            \
            printf("skipped: no GPU\n");        \
            skip();                             \
        }                                       \
    } while (0)

static char g_model[512];

static int setup(void **state) {
    if (train_fixture_setup(state)) return -1;
    char cwd[256];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    snprintf(g_model, sizeof g_model, "%s/tiny-albef-gpu.json", g_train_dir);
    FILE *f = fopen(g_model, "w");
    if (!f) return -1;
    // head width 32 (hidden 64, 2 heads): the fused self-attention kernels take the text layers
    fprintf(f, "{\"albef\": {\"image_res\": 32, \"patch_size\": 8, \"vision_width\": 64, \"vision_depth\": 2,"
               " \"vision_heads\": 2, \"embed_dim\": 32, \"queue_size\": 64, \"vocab\": \"%s/assets/bert_demo_vocab.txt\","
               " \"max_text_len\": 20},"
               " \"bert\": {\"vocab_size\": 32, \"hidden_size\": 64, \"num_hidden_layers\": 3,"
               " \"num_attention_heads\": 2, \"intermediate_size\": 128, \"max_position_embeddings\": 24,"
               " \"fusion_layer\": 2}}\n",
            cwd);
    fclose(f);
    return 0;
}

static int teardown(void **state) {
    vlt_set_default_device(VLT_CPU);
    return train_fixture_teardown(state);
}

static void config(vlt_run_config *c, const char *out, const char *device) {
    train_fixture_config(c, out);
    snprintf(c->model_name, sizeof c->model_name, "%s", g_model);
    snprintf(c->device, sizeof c->device, "%s", device);
    snprintf(c->precision, sizeof c->precision, "fp32");
    c->batch_size = 16;
    c->steps = 6;
    c->warmup = 2;
    c->lr = 5e-4;
    c->checkpoint_every = 3;
    c->val_samples = 64;
}

static void run(const char *out, const char *device, float *losses) {
    vlt_run_config c;
    config(&c, out, device);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s: %s", out, vlt_error_message());
    assert_string_equal(vlt_trainer_model_title(t), "ALBEF");
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s: %s", out, vlt_error_message());
    int64_t n;
    const float *l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, 6);
    memcpy(losses, l, sizeof(float) * 6);
    vlt_trainer_free(t);
    vlt_set_default_device(VLT_CPU);
}

// Tensors of two checkpoint files: the count of names whose bytes differ, and the worst
// difference relative to the tensor's largest magnitude (f32 ones).
static int compare_tables(const char *a, const char *b, double *worst) {
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

static void test_albef_trains_on_the_gpu(void **state) {
    (void)state;
    NEED_GPU();
    float lc[6], lg[6];
    run("cpu", "cpu", lc);
    run("gfull", "cuda", lg);
    double worst = 0;
    for (int i = 0; i < 6; i++) worst = fmax(worst, fabs((double)lg[i] - lc[i]) / fabs(lc[i]));
    print_message("ALBEF, 6 steps: loss cpu %.5f -> %.5f, gpu fp32 %.5f -> %.5f; worst relative difference %.2g\n",
                  lc[0], lc[5], lg[0], lg[5], worst);
    assert_true(worst <= 1e-3);

    // stopped after the step-3 checkpoint, resumed
    vlt_run_config c;
    config(&c, "gpart", "cuda");
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run_steps(t, 4), VLT_OK);
    vlt_trainer_free(t);
    vlt_set_default_device(VLT_CPU);
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    if (vlt_trainer_create(&c, &r, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_step(t), 3);
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    int64_t n;
    const float *l = vlt_trainer_losses(t, &n);
    assert_int_equal(n, 3);
    int same = 0;
    double lw = 0;
    for (int i = 0; i < 3; i++) {
        same += memcmp(&l[i], &lg[3 + i], sizeof(float)) == 0;
        lw = fmax(lw, fabs((double)l[i] - lg[3 + i]) / fabs(lg[3 + i]));
    }
    vlt_trainer_free(t);
    vlt_set_default_device(VLT_CPU);
    char a[600], b[600];
    double tw = 0;
    snprintf(a, sizeof a, "%s/gfull/checkpoints/step_00000006/model.safetensors", g_train_dir);
    snprintf(b, sizeof b, "%s/gpart/checkpoints/step_00000006/model.safetensors", g_train_dir);
    int dm = compare_tables(a, b, &tw);
    snprintf(a, sizeof a, "%s/gfull/checkpoints/step_00000006/optimizer.safetensors", g_train_dir);
    snprintf(b, sizeof b, "%s/gpart/checkpoints/step_00000006/optimizer.safetensors", g_train_dir);
    int dopt = compare_tables(a, b, &tw);
    print_message("GPU resume at step 3: %d of 3 losses bit-identical to the uninterrupted GPU run (worst relative "
                  "difference %.2g); at step 6, %d model and %d optimizer tensors differ in any bit (worst relative "
                  "%.2g)\n", same, lw, dm, dopt, tw);
    assert_true(lw <= 1e-5);
    assert_true(tw <= 1e-5);
    vlt_safetensors *f;
    snprintf(a, sizeof a, "%s/gpart/checkpoints/step_00000006/model.safetensors", g_train_dir);
    assert_int_equal(vlt_safetensors_open(a, &f), VLT_OK);
    int64_t ptr;
    assert_int_equal(vlt_safetensors_read_i64(f, "queue_ptr", &ptr, 1), VLT_OK);
    assert_int_equal(ptr, (6 * 16) % 64);
    vlt_safetensors_close(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_albef_trains_on_the_gpu),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    vlt_cuda_shutdown();
    return rc;
}
