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
#include "tests/cuda_compare.h"
#include "tests/train_fixture.h"
#include "train/trainer.h"

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

static void run(const char *out, const char *device, float *losses) {
    vlt_run_config c;
    train_fixture_gpu_config(&c, out, g_model, device);
    vlt_trainer_free(train_fixture_run(&c, out, "ALBEF", losses));
    vlt_set_default_device(VLT_CPU);
}

static void test_albef_trains_on_the_gpu(void **state) {
    (void)state;
    NEED_GPU();
    float lc[6], lg[6];
    run("cpu", "cpu", lc);
    run("gfull", "cuda", lg);
    train_fixture_gpu_follows_cpu("ALBEF", lc, lg, 6);

    // stopped after the step-3 checkpoint, resumed
    vlt_run_config c;
    train_fixture_gpu_config(&c, "gpart", g_model, "cuda");
    char a[600];
    snprintf(a, sizeof a, "%s/gfull", g_train_dir);
    train_fixture_resume_at_3(&c, lg, a, "");
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
