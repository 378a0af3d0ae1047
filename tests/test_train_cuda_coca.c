// `vlt train` of a CoCa model with train.device cuda (issue 17's "every model on the GPU"), the
// tiny CoCa (configs/model/tiny-coca.json) on the synthetic shards of tests/train_fixture.h:
//   - the model is not refused by its kind (it was, by name: "its text padding mask and caption
//     generation run on the host"); this case runs without a GPU too, and says something only in
//     a CUDA build on a machine without a device (the plain build refuses cuda before the model);
//   - GPU-only: fp32 on the GPU follows the CPU run loss for loss (6 steps, relative 1e-3);
//   - GPU-only: a GPU run stopped after its step-3 checkpoint and resumed continues as the
//     uninterrupted GPU run: the losses, and at step 6 every tensor of the checkpoint and of the
//     optimizer state (relative 1e-5, as the ALBEF and VQA suites);
//   - GPU-only: the trainer's caption evaluation runs on the GPU model (greedy generation on the
//     device, host images sent up): at least 7 in 8 of its 32 captions equal the CPU-trained
//     model's (near ties of two nearly equal 6-step models may flip one), BLEU-4 and CIDEr-D within
//     0.05.
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

static int teardown(void **state) {
    vlt_set_default_device(VLT_CPU);
    return train_fixture_teardown(state);
}

// A run of 6 steps; the trainer is kept for the caption evaluation.
static vlt_trainer *run(const char *out, const char *device, float *losses) {
    vlt_run_config c;
    train_fixture_gpu_config(&c, out, "tiny-coca", device);
    return train_fixture_run(&c, out, "CoCa", losses);
}

static void test_coca_is_not_refused_by_kind(void **state) {
    (void)state;
    vlt_run_config c;
    train_fixture_gpu_config(&c, "kind", "tiny-coca", "cuda");
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t = NULL;
    vlt_status s = vlt_trainer_create(&c, &o, &t);
    if (s != VLT_OK) {   // no CUDA build or no device: refused for that, not for the model
        print_message("train.device cuda here: %s\n", vlt_error_message());
        assert_null(strstr(vlt_error_message(), "does not train on the GPU"));
        assert_null(t);
        return;
    }
    assert_string_equal(vlt_trainer_model_title(t), "CoCa");
    vlt_trainer_free(t);
    vlt_set_default_device(VLT_CPU);
}

static void test_coca_trains_on_the_gpu(void **state) {
    (void)state;
    NEED_GPU();
    float lc[6], lg[6];
    vlt_trainer *tc = run("cpu", "cpu", lc);
    vlt_set_default_device(VLT_CPU);
    vlt_trainer *tg = run("gfull", "cuda", lg);
    train_fixture_gpu_follows_cpu("CoCa", lc, lg, 6);

    // caption evaluation on each model's device: the 32 greedy captions, compared line by line
    double bc = 0, cc = 0, bg = 0, cg = 0;
    char *sg = NULL, *sc = NULL;
    size_t ng = 0, nc = 0;
    FILE *fg = open_memstream(&sg, &ng), *fc = open_memstream(&sc, &nc);
    assert_int_equal(vlt_trainer_eval_captions(tg, 32, &bg, &cg, fg, 32), VLT_OK);
    vlt_set_default_device(VLT_CPU);
    assert_int_equal(vlt_trainer_eval_captions(tc, 32, &bc, &cc, fc, 32), VLT_OK);
    fclose(fg);
    fclose(fc);
    int lines = 0, same_lines = 0;
    for (char *a = sg, *b = sc; a && b && *a && *b; lines++) {
        char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        same_lines += la == lb && !memcmp(a, b, la);
        if (lines < 3) print_message("  gpu %.*s\n", (int)la, a);
        a = ea ? ea + 1 : a + la;
        b = eb ? eb + 1 : b + lb;
    }
    print_message("captions of 32 held-out images: %d of %d lines the same on both devices; BLEU-4 cpu %.4f gpu %.4f, "
                  "CIDEr-D cpu %.4f gpu %.4f\n", same_lines, lines, bc, bg, cc, cg);
    free(sg);
    free(sc);
    // (near ties of a 6-step model may flip a token: most captions must agree)
    assert_true(lines >= 32 && same_lines >= lines * 7 / 8);
    assert_true(isfinite(bg) && isfinite(cg));
    assert_true(fabs(bg - bc) <= 0.05 && fabs(cg - cc) <= 0.05);
    vlt_trainer_free(tg);
    vlt_set_default_device(VLT_CPU);
    vlt_trainer_free(tc);

    // stopped after the step-3 checkpoint, resumed
    vlt_run_config c;
    train_fixture_gpu_config(&c, "gpart", "tiny-coca", "cuda");
    char a[600];
    snprintf(a, sizeof a, "%s/gfull", g_train_dir);
    train_fixture_resume_at_3(&c, lg, a, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coca_is_not_refused_by_kind),
        cmocka_unit_test(test_coca_trains_on_the_gpu),
    };
    int rc = cmocka_run_group_tests(tests, train_fixture_setup, teardown);
    vlt_cuda_shutdown();
    return rc;
}
