// A whole training step of tiny CLIP (configs/model/tiny-clip.json), and of the same towers with
// the SigLIP loss, on the GPU against the same step on the CPU: forward (features, logits, loss), every parameter's gradient, the clipped
// global norm, and the parameters after AdamW; then a second step (the step arena reused).
// The images are on the device too (patchify runs there).
//
// Tolerance per tensor: max |gpu - cpu| <= 1e-4 + 1e-3 · max |cpu| (fp32 products on both
// sides; the differences are summation order through two transformer layers).
// Without a GPU the step test prints "skipped: no GPU" and is reported as skipped.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/device.h"
#include "autograd/optim.h"
#include "autograd/rng.h"
#include "layers/clip.h"
#include "tests/cuda_compare.h"

#define CFG "configs/model/tiny-clip.json"
#define NB 8

typedef struct {
    vlt_tensor *loss, *img, *txt, *logits;
} step_out;

static void forward(vlt_clip *m, vlt_tensor *images, vlt_tensor *ids, step_out *o) {
    o->img = vlt_clip_encode_image(m, images, true);
    o->txt = vlt_clip_encode_text(m, ids, true);
    o->loss = vlt_clip_loss(o->img, o->txt, m->logit_scale, m->logit_bias, &o->logits);
    if (!o->loss) fail_msg("forward failed: %s", vlt_error_message());
}

static void make_batch(vlt_tensor **images, vlt_tensor **ids) {
    *images = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(NB, 3, 32, 32), "images");
    vlt_rng_fill_normal(vlt_f32(*images), (size_t)(*images)->numel, 0, 1, 5, 5, 0);
    *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(NB, 16), "ids");
    for (int b = 0; b < NB; b++) {
        vlt_i32(*ids)[b * 16] = 49406;
        for (int t = 1; t < 4 + b % 5; t++) vlt_i32(*ids)[b * 16 + t] = 1 + (b * 7 + t * 13) % 4000;
        vlt_i32(*ids)[b * 16 + 4 + b % 5] = 49407;  // EOT: the largest id
    }
}

// siglip: the same towers with SigLIP's sigmoid loss and logit_bias (its ±1 signs made on the
// host and copied to the logits' device).
static void clip_step_matches_cpu(bool siglip) {
    NEED_GPU();
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load(CFG, &cfg), VLT_OK);
    if (siglip) {
        cfg.has_logit_bias = true;
        cfg.init_logit_bias = -10.0f;
    }
    vlt_clip mc, md;
    assert_int_equal(vlt_clip_init(&mc, &cfg, 11), VLT_OK);
    assert_int_equal(vlt_clip_init(&md, &cfg, 11), VLT_OK);
    assert_int_equal(vlt_params_move(&md.params, VLT_CUDA), VLT_OK);
    for (int i = 0; i < md.params.n; i++) assert_int_equal(md.params.t[i]->device, VLT_CUDA);
    int n = mc.params.n;
    bool *decay = malloc((size_t)n);
    vlt_clip_decay_mask(&mc.params, decay);
    vlt_adamw_cfg acfg = {0.9f, 0.98f, 1e-6f, 0.1f};
    vlt_adamw *oc = vlt_adamw_new(mc.params.t, decay, n, acfg), *od = vlt_adamw_new(md.params.t, decay, n, acfg);
    assert_non_null(oc);
    assert_non_null(od);
    vlt_tensor *images, *ids;
    make_batch(&images, &ids);
    vlt_tensor *ids_d = vlt_tensor_to(ids, VLT_CUDA), *images_d = vlt_tensor_to(images, VLT_CUDA);
    float first_loss = 0;
    for (int step = 0; step < 2; step++) {
        step_out c, g;
        // Each side runs forward and backward before the other records: vlt_backward consumes
        // the whole tape, so a backward over both tapes would leave the second with nothing.
        vlt_zero_grad(mc.params.t, n);
        vlt_zero_grad(md.params.t, n);
        assert_int_equal(vlt_set_default_device(VLT_CPU), VLT_OK);
        forward(&mc, images, ids, &c);
        assert_int_equal(vlt_backward(c.loss), VLT_OK);
        assert_int_equal(vlt_set_default_device(VLT_CUDA), VLT_OK);
        forward(&md, images_d, ids_d, &g);
        assert_int_equal(vlt_backward(g.loss), VLT_OK);
        assert_int_equal(vlt_set_default_device(VLT_CPU), VLT_OK);
        assert_int_equal(g.loss->device, VLT_CUDA);
        assert_true(close_tensor("image features", g.img, c.img, NULL));
        assert_true(close_tensor("text features", g.txt, c.txt, NULL));
        assert_true(close_tensor("logits", g.logits, c.logits, NULL));
        assert_true(close_tensor("loss", g.loss, c.loss, NULL));
        for (int i = 0; i < n; i++) {
            char what[128];
            snprintf(what, sizeof what, "step %d grad of %s", step, mc.params.t[i]->name);
            assert_true(close_tensor(what, md.params.t[i]->grad, mc.params.t[i]->grad, NULL));
        }
        float nc = vlt_clip_grad_norm(mc.params.t, n, 1.0f), nd = vlt_clip_grad_norm(md.params.t, n, 1.0f);
        print_message("step %d: loss cpu %.6f, grad norm cpu %.6f gpu %.6f\n", step, vlt_f32(c.loss)[0], nc, nd);
        assert_true(fabsf(nc - nd) <= 1e-3f * nc);
        assert_int_equal(vlt_adamw_step(oc, 1e-3f), VLT_OK);
        assert_int_equal(vlt_adamw_step(od, 1e-3f), VLT_OK);
        for (int i = 0; i < n; i++) {
            char what[128];
            snprintf(what, sizeof what, "step %d %s after AdamW", step, mc.params.t[i]->name);
            assert_true(close_tensor(what, md.params.t[i], mc.params.t[i], NULL));
        }
        if (step == 0) first_loss = vlt_f32(c.loss)[0];
        vlt_step_reset();
    }
    assert_true(first_loss > 0);
    free(decay);
    vlt_adamw_free(oc);
    vlt_adamw_free(od);
    vlt_tensor_free(images);
    vlt_tensor_free(ids);
    vlt_tensor_free(ids_d);
    vlt_tensor_free(images_d);
    vlt_clip_free(&mc);
    vlt_clip_free(&md);
}

static void test_clip_step_matches_cpu(void **state) {
    (void)state;
    clip_step_matches_cpu(false);
}

static void test_siglip_step_matches_cpu(void **state) {
    (void)state;
    clip_step_matches_cpu(true);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip_step_matches_cpu),
        cmocka_unit_test(test_siglip_step_matches_cpu),
    };
    int rc = cmocka_run_group_tests_name("layers_cuda", tests, NULL, NULL);
    vlt_tape_shutdown();
    return rc;
}
