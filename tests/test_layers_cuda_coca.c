// CoCa on the GPU against the CPU (issue 17's "every model on the GPU"), on the committed tiny
// open_clip fixture (tests/data/layers/coca_tiny: config, weights, a batch of 4 and 3 images for
// generation):
//   - without a GPU: the device formulation (vlt_coca_set_device_path: the ids read back once, the
//     text pad mask and the caption labels built from that copy and sent through vlt_to_device;
//     generation's token choice on the "device": the minimum-length row added and vlt_argmax_last,
//     only the chosen ids read back; the (rows, V) logits read back for repetition penalty, scores
//     and beam search; beam reorders through a gathered index) run on a host model gives the host
//     path's bits: the loss, its two terms and every gradient over two AdamW steps, every tensor
//     after them, and the same captions and scores (greedy with and without the processors, beam 4)
//     and the same vlt_coca_caption_score;
//   - GPU-only: the same three steps on both devices (losses 1e-4 relative; each gradient and each
//     tensor after max |gpu - cpu| <= 1e-4 + 1e-3 max |cpu|, as the ALBEF suite), and the greedy
//     and beam captions of the fixture's images equal token for token, scores (and
//     vlt_coca_caption_score of given captions) within 1e-3.
// The GPU cases print "skipped: no GPU" and are reported as skipped without one.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/device.h"
#include "autograd/ops.h"
#include "autograd/optim.h"
#include "checkpoints/safetensors.h"
#include "layers/coca.h"
#include "layers/generate.h"
#include "tests/cuda_compare.h"
#include "tests/fixture_io.h"

#define FIX "tests/data/layers/coca_tiny/"

static void load_model(vlt_coca *m) {
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load(FIX "config.json", &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    if (vlt_coca_init(m, &cfg, 0) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_st_report rep;
    if (vlt_safetensors_load_params(FIX "weights.safetensors", &m->params, false, &rep) != VLT_OK)
        fail_msg("%s", vlt_error_message());
    vlt_st_report_free(&rep);
}

static vlt_adamw *optimizer(vlt_coca *m) {
    vlt_adamw_cfg c = vlt_adamw_defaults();
    c.weight_decay = 0.1f;
    vlt_adamw *o = vlt_adamw_new(m->params.t, NULL, m->params.n, c);
    if (!o) fail_msg("%s", vlt_error_message());
    return o;
}

// The fixture's batch, with pads written into the tails of two captions (the fixture's own ids
// have none) so that the pad mask and the ignored labels are exercised.
static void read_batch(vlt_tensor **images, vlt_tensor **ids) {
    vlt_safetensors *io;
    assert_int_equal(vlt_safetensors_open(FIX "io.safetensors", &io), VLT_OK);
    *images = read_f32(io, "images");
    *ids = read_ids(io, "ids");
    vlt_safetensors_close(io);
    int T = (*ids)->shape[1];
    for (int t = 9; t < T; t++) vlt_i32(*ids)[0 * T + t] = 0;
    for (int t = 5; t < T; t++) vlt_i32(*ids)[2 * T + t] = 0;
}

static void forward(vlt_coca *m, vlt_tensor *images, vlt_tensor *ids, vlt_coca_output *out, bool backward) {
    if (vlt_coca_forward(m, images, ids, VLT_COCA_LOSS_DEFAULTS, out) != VLT_OK) fail_msg("forward: %s", vlt_error_message());
    if (!backward) return;
    vlt_zero_grad(m->params.t, m->params.n);
    if (vlt_backward(out->loss) != VLT_OK) fail_msg("backward: %s", vlt_error_message());
}

// ---- the device formulation on the host ----

static void test_device_path_on_the_host_gives_host_bits(void **state) {
    (void)state;
    vlt_coca ma, mb;
    load_model(&ma);
    load_model(&mb);
    vlt_adamw *oa = optimizer(&ma), *ob = optimizer(&mb);
    vlt_tensor *images, *ids;
    read_batch(&images, &ids);
    float first = 0, padded = 0;
    for (int step = 1; step <= 3; step++) {
        vlt_coca_output a, b;
        vlt_coca_set_device_path(false);
        forward(&ma, images, ids, &a, step < 3);
        vlt_coca_set_device_path(true);
        forward(&mb, images, ids, &b, step < 3);
        vlt_coca_set_device_path(false);
        assert_same_bits("loss", b.loss, a.loss);
        assert_same_bits("contrastive_loss", b.contrastive_loss, a.contrastive_loss);
        assert_same_bits("caption_loss", b.caption_loss, a.caption_loss);
        assert_same_bits("logits", b.logits, a.logits);
        print_message("step %d: loss %.7f (contrastive %.7f, caption %.7f): the same bits both ways\n", step,
                      vlt_f32(a.loss)[0], vlt_f32(a.contrastive_loss)[0], vlt_f32(a.caption_loss)[0]);
        if (step == 1) first = vlt_f32(a.loss)[0];
        if (step < 3) {
            int n = 0;
            for (int i = 0; i < ma.params.n; i++, n++) assert_same_bits(ma.params.t[i]->name, mb.params.t[i]->grad,
                                                                       ma.params.t[i]->grad);
            print_message("  %d gradients: the same bits\n", n);
            assert_int_equal(vlt_adamw_step(oa, 1e-3f), VLT_OK);
            assert_int_equal(vlt_adamw_step(ob, 1e-3f), VLT_OK);
            vlt_coca_clamp_logit_scale(&ma);
            vlt_coca_clamp_logit_scale(&mb);
        }
        vlt_step_reset();
    }
    for (int i = 0; i < ma.params.n; i++) assert_same_bits(ma.params.t[i]->name, mb.params.t[i], ma.params.t[i]);
    // the pads matter on that route: a pad turned into a word changes the loss of the first model
    // (back to its first weights is not needed: the check is that the mask is read at all)
    vlt_coca_set_device_path(true);
    vlt_coca_output c;
    int T = ids->shape[1];
    int32_t keep = vlt_i32(ids)[2 * T + 7];
    vlt_no_grad_enter();
    forward(&mb, images, ids, &c, false);
    padded = vlt_f32(c.loss)[0];
    vlt_i32(ids)[2 * T + 7] = 5;
    forward(&mb, images, ids, &c, false);
    vlt_no_grad_exit();
    vlt_coca_set_device_path(false);
    assert_true(vlt_f32(c.loss)[0] != padded);
    vlt_i32(ids)[2 * T + 7] = keep;
    print_message("first loss %.6f; a pad made a word moves the loss %.6f -> %.6f\n", first, padded, vlt_f32(c.loss)[0]);
    vlt_step_reset();
    vlt_tensor_free(images);
    vlt_tensor_free(ids);
    vlt_adamw_free(oa);
    vlt_adamw_free(ob);
    vlt_coca_free(&ma);
    vlt_coca_free(&mb);
}

static vlt_generate_cfg tiny_gen(int min_len, float penalty, int beam) {
    vlt_generate_cfg g = vlt_generate_defaults();
    g.max_len = 12;
    g.min_len = min_len;
    g.repetition_penalty = penalty;
    g.sot_id = 98;
    g.eos_id = 99;
    g.pad_id = 0;
    g.beam_size = beam;
    return g;
}

enum { NCFG = 5 };
static const struct {
    int min_len;
    float penalty;
    int beam;
    bool scores;
    const char *what;
} GEN[NCFG] = {
    {3, 1.0f, 1, false, "greedy, choice on the device"},
    {6, 1.0f, 1, false, "greedy, min length 6, choice on the device"},
    {6, 1.5f, 1, false, "greedy, repetition penalty (logits read back)"},
    {3, 1.0f, 1, true, "greedy with scores (logits read back)"},
    {3, 1.0f, 4, true, "beam 4"},
};

static void generate(vlt_coca *m, vlt_tensor *images, int k, int32_t *out, float *scores) {
    vlt_generate_cfg g = tiny_gen(GEN[k].min_len, GEN[k].penalty, GEN[k].beam);
    if (vlt_coca_generate(m, images, &g, out, GEN[k].scores ? scores : NULL) != VLT_OK)
        fail_msg("%s: %s", GEN[k].what, vlt_error_message());
}

static void print_caption(const char *who, const int32_t *row, int L) {
    char line[256];
    int off = 0;
    for (int t = 0; t < L; t++) off += snprintf(line + off, sizeof line - off, " %d", row[t]);
    print_message("    %s:%s\n", who, line);
}

static void test_device_path_generation_gives_host_captions(void **state) {
    (void)state;
    vlt_coca m;
    load_model(&m);
    vlt_safetensors *io;
    assert_int_equal(vlt_safetensors_open(FIX "io.safetensors", &io), VLT_OK);
    vlt_tensor *images = read_f32(io, "gen_images");
    vlt_safetensors_close(io);
    int N = images->shape[0], L = 12;
    int32_t a[64], b[64];
    float sa[8], sb[8];
    bool min_len_acted = false;
    int32_t first[64];
    for (int k = 0; k < NCFG; k++) {
        vlt_coca_set_device_path(false);
        generate(&m, images, k, a, sa);
        vlt_coca_set_device_path(true);
        generate(&m, images, k, b, sb);
        vlt_coca_set_device_path(false);
        print_message("%s:\n", GEN[k].what);
        for (int i = 0; i < N; i++) {
            print_caption("host  ", a + i * L, L);
            if (memcmp(a + i * L, b + i * L, sizeof(int32_t) * L)) {
                print_caption("device", b + i * L, L);
                fail_msg("%s: image %d's caption differs", GEN[k].what, i);
            }
            if (GEN[k].scores) assert_memory_equal(&sa[i], &sb[i], sizeof(float));
        }
        if (k == 0) memcpy(first, a, sizeof(int32_t) * N * L);
        if (k == 1) min_len_acted = memcmp(first, a, sizeof(int32_t) * N * L) != 0;
    }
    // the minimum length changed a caption (image 1 ends at token 4 with min length 3), so the
    // device route's eos row was exercised
    assert_true(min_len_acted);
    // the score of given captions (one teacher-forced forward, logits read back): the same bits
    vlt_tensor *caps = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(N, L), "captions");
    memcpy(vlt_i32(caps), b, sizeof(int32_t) * N * L);
    vlt_generate_cfg g = tiny_gen(3, 1.5f, 1);
    assert_int_equal(vlt_coca_caption_score(&m, images, caps, &g, sa), VLT_OK);
    vlt_coca_set_device_path(true);
    assert_int_equal(vlt_coca_caption_score(&m, images, caps, &g, sb), VLT_OK);
    vlt_coca_set_device_path(false);
    assert_memory_equal(sa, sb, sizeof(float) * N);
    vlt_tensor_free(caps);
    vlt_tensor_free(images);
    vlt_coca_free(&m);
}

// ---- GPU against CPU ----

static void test_coca_step_matches_cpu(void **state) {
    (void)state;
    NEED_GPU();
    assert_int_equal(vlt_set_matmul_precision(VLT_MATMUL_FP32), VLT_OK);
    vlt_coca mc, md;
    load_model(&mc);
    load_model(&md);
    assert_int_equal(vlt_params_move(&md.params, VLT_CUDA), VLT_OK);
    vlt_adamw *oc = optimizer(&mc), *od = optimizer(&md);
    assert_int_equal(vlt_adamw_state_to(od, VLT_CPU, VLT_CUDA), VLT_OK);
    vlt_tensor *images, *ids;
    read_batch(&images, &ids);
    vlt_tensor *images_d = vlt_tensor_to(images, VLT_CUDA), *ids_d = vlt_tensor_to(ids, VLT_CUDA);   // as the trainer sends them
    assert_non_null(images_d);
    assert_non_null(ids_d);
    double worst = 0;
    int bad = 0;
    for (int step = 1; step <= 3; step++) {
        vlt_coca_output c, d;
        forward(&mc, images, ids, &c, step < 3);
        assert_int_equal(vlt_set_default_device(VLT_CUDA), VLT_OK);
        forward(&md, images_d, ids_d, &d, step < 3);
        vlt_set_default_device(VLT_CPU);
        print_message("step %d:\n", step);
        scalar_close_w(17, "loss", d.loss, c.loss);
        scalar_close_w(17, "contrastive_loss", d.contrastive_loss, c.contrastive_loss);
        scalar_close_w(17, "caption_loss", d.caption_loss, c.caption_loss);
        if (step < 3) {
            for (int i = 0; i < mc.params.n; i++)
                bad += !close_tensor(mc.params.t[i]->name, md.params.t[i]->grad, mc.params.t[i]->grad, &worst);
            assert_int_equal(vlt_adamw_step(oc, 1e-3f), VLT_OK);
            assert_int_equal(vlt_adamw_step(od, 1e-3f), VLT_OK);
            vlt_coca_clamp_logit_scale(&mc);
            vlt_coca_clamp_logit_scale(&md);
        }
        vlt_step_reset();
    }
    for (int i = 0; i < mc.params.n; i++) bad += !close_tensor(mc.params.t[i]->name, md.params.t[i], mc.params.t[i], &worst);
    print_message("%d gradients x 2 steps and %d tensors after: worst difference %.2f of its tolerance, %d outside\n",
                  mc.params.n, mc.params.n, worst, bad);
    assert_int_equal(bad, 0);
    vlt_tensor_free(images);
    vlt_tensor_free(ids);
    vlt_tensor_free(images_d);
    vlt_tensor_free(ids_d);
    vlt_adamw_free(oc);
    vlt_adamw_free(od);
    vlt_coca_free(&mc);
    vlt_coca_free(&md);
}

static void test_captions_match_cpu(void **state) {
    (void)state;
    NEED_GPU();
    assert_int_equal(vlt_set_matmul_precision(VLT_MATMUL_FP32), VLT_OK);
    vlt_coca mc, md;
    load_model(&mc);
    load_model(&md);
    assert_int_equal(vlt_params_move(&md.params, VLT_CUDA), VLT_OK);
    vlt_safetensors *io;
    assert_int_equal(vlt_safetensors_open(FIX "io.safetensors", &io), VLT_OK);
    vlt_tensor *images = read_f32(io, "gen_images");
    vlt_safetensors_close(io);
    int N = images->shape[0], L = 12;
    int32_t a[64], b[64];
    float sa[8], sb[8];
    for (int k = 0; k < NCFG; k++) {
        generate(&mc, images, k, a, sa);   // host images: generation sends them to the model's device
        generate(&md, images, k, b, sb);
        print_message("%s:\n", GEN[k].what);
        for (int i = 0; i < N; i++) {
            print_caption("cpu", a + i * L, L);
            if (memcmp(a + i * L, b + i * L, sizeof(int32_t) * L)) {
                print_caption("gpu", b + i * L, L);
                fail_msg("%s: image %d's caption differs", GEN[k].what, i);
            }
            if (GEN[k].scores) {
                print_message("    score cpu %.6f gpu %.6f\n", sa[i], sb[i]);
                assert_true(fabsf(sa[i] - sb[i]) <= 1e-3f * fmaxf(1.0f, fabsf(sa[i])));
            }
        }
    }
    // the score of given captions (the beam's, with the penalty): one teacher-forced forward each
    vlt_tensor *caps = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(N, L), "captions");
    memcpy(vlt_i32(caps), b, sizeof(int32_t) * N * L);
    vlt_generate_cfg g = tiny_gen(3, 1.5f, 1);
    assert_int_equal(vlt_coca_caption_score(&mc, images, caps, &g, sa), VLT_OK);
    assert_int_equal(vlt_coca_caption_score(&md, images, caps, &g, sb), VLT_OK);
    for (int i = 0; i < N; i++) {
        print_message("caption score %d: cpu %.6f gpu %.6f\n", i, sa[i], sb[i]);
        assert_true(fabsf(sa[i] - sb[i]) <= 1e-3f * fmaxf(1.0f, fabsf(sa[i])));
    }
    vlt_tensor_free(caps);
    vlt_tensor_free(images);
    vlt_coca_free(&mc);
    vlt_coca_free(&md);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_path_on_the_host_gives_host_bits),
        cmocka_unit_test(test_device_path_generation_gives_host_captions),
        cmocka_unit_test(test_coca_step_matches_cpu),
        cmocka_unit_test(test_captions_match_cpu),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    vlt_cuda_shutdown();
    return rc;
}
