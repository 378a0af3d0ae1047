// CLIPScore / RefCLIPScore (eval/clipscore.c, `vlt eval clipscore`): the formula on edge cases,
// and the scores from vlt's CLIP features equal the same formula computed on open_clip's features
// of the same weights and inputs (the parity fixtures of tests/test_layers_clip.c, made by
// scripts/reference/make_clip_fixtures.py in PyTorch) to 1e-6.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "checkpoints/safetensors.h"
#include "eval/clipscore.h"
#include "layers/clip.h"
#include "tests/fixture_io.h"
#include "train/commands.h"

// The formula written out again, in double, as the authors' clipscore.py computes it (features
// L2-normalized, w = 2.5, clipped at 0; the harmonic mean with the best reference cosine).
static void reference(const float *cand, const float *img, int n, int d, const float *refs, const int *start, double *cs,
                      double *rcs) {
    *cs = *rcs = 0;
    for (int i = 0; i < n; i++) {
        double nc = 0, ni = 0, dot = 0;
        for (int k = 0; k < d; k++) {
            nc += (double)cand[i * d + k] * cand[i * d + k];
            ni += (double)img[i * d + k] * img[i * d + k];
        }
        for (int k = 0; k < d; k++) dot += cand[i * d + k] / sqrt(nc) * (img[i * d + k] / sqrt(ni));
        double s = 2.5 * fmax(dot, 0.0), best = -2;
        for (int r = start[i]; r < start[i + 1]; r++) {
            double nr = 0, t = 0;
            for (int k = 0; k < d; k++) nr += (double)refs[r * d + k] * refs[r * d + k];
            for (int k = 0; k < d; k++) t += cand[i * d + k] / sqrt(nc) * (refs[r * d + k] / sqrt(nr));
            best = fmax(best, t);
        }
        best = fmax(best, 0.0);
        *cs += s / n;
        *rcs += (s + best > 0 ? 2 * s * best / (s + best) : 0) / n;
    }
}

static void test_formula_edges(void **state) {
    (void)state;
    const float img[3 * 2] = {1, 0, 0, 1, 1, 1};
    const float cand[3 * 2] = {2, 0, 0, -1, -1, -1};  // cos 1 (scaled), cos -1, cos -1
    const float refs[3 * 2] = {1, 0, 0, -3, 1, 1};
    const int start[4] = {0, 1, 2, 3};
    vlt_clipscore_result r;
    double per[3], per_ref[3];
    assert_int_equal(vlt_clipscore(cand, img, 3, 2, refs, start, &r, per, per_ref), VLT_OK);
    assert_true(fabs(per[0] - 2.5) < 1e-12 && per[1] == 0 && per[2] == 0);  // negative cosines clip to 0
    assert_true(fabs(per_ref[0] - 2 * 2.5 * 1 / 3.5) < 1e-12);              // H-mean(2.5, 1)
    assert_true(per_ref[1] == 0 && per_ref[2] == 0);                        // H-mean(0, x) = 0
    assert_true(fabs(r.clip_s - 2.5 / 3) < 1e-12);
    assert_int_equal(vlt_clipscore(cand, img, 3, 2, NULL, NULL, &r, NULL, NULL), VLT_OK);
    assert_true(r.ref_clip_s == 0 && fabs(r.clip_s - 2.5 / 3) < 1e-12);
    const int none[4] = {0, 1, 1, 2};  // candidate 1 has no reference: refused by index
    assert_int_equal(vlt_clipscore(cand, img, 3, 2, refs, none, &r, NULL, NULL), VLT_ERR_ARG);
    assert_int_equal(vlt_clipscore(cand, img, 0, 2, NULL, NULL, &r, NULL, NULL), VLT_ERR_ARG);
}

static void test_equal_to_open_clip_features(void **state) {
    (void)state;
    const char *names[2] = {"gelu", "quickgelu"};
    for (int f = 0; f < 2; f++) {
        char path[256];
        vlt_model_cfg cfg;
        snprintf(path, sizeof path, "tests/data/layers/clip_%s/config.json", names[f]);
        assert_int_equal(vlt_model_cfg_load(path, &cfg), VLT_OK);
        vlt_clip m;
        assert_int_equal(vlt_clip_init(&m, &cfg, 0), VLT_OK);
        snprintf(path, sizeof path, "tests/data/layers/clip_%s/weights.safetensors", names[f]);
        vlt_st_report rep;
        assert_int_equal(vlt_safetensors_load_params(path, &m.params, false, &rep), VLT_OK);
        vlt_st_report_free(&rep);
        vlt_safetensors *io;
        snprintf(path, sizeof path, "tests/data/layers/clip_%s/io.safetensors", names[f]);
        assert_int_equal(vlt_safetensors_open(path, &io), VLT_OK);
        vlt_tensor *images = read_f32(io, "images"), *ids = read_ids(io, "ids");
        vlt_tensor *ref_img = read_f32(io, "image_features"), *ref_txt = read_f32(io, "text_features");
        vlt_no_grad_enter();
        vlt_tensor *fi = vlt_clip_encode_image(&m, images, true), *ft = vlt_clip_encode_text(&m, ids, true);
        vlt_no_grad_exit();
        assert_non_null(fi);
        assert_non_null(ft);
        int B = images->shape[0], D = fi->shape[1];
        // candidate i describes image i; its references are the other texts
        int start[16], n_refs = 0;
        float *refs_v = malloc(sizeof(float) * (size_t)B * B * D), *refs_o = malloc(sizeof(float) * (size_t)B * B * D);
        for (int i = 0; i < B; i++) {
            start[i] = n_refs;
            for (int j = 0; j < B; j++) {
                if (j == i) continue;
                memcpy(refs_v + (size_t)n_refs * D, vlt_f32(ft) + (size_t)j * D, sizeof(float) * (size_t)D);
                memcpy(refs_o + (size_t)n_refs * D, vlt_f32(ref_txt) + (size_t)j * D, sizeof(float) * (size_t)D);
                n_refs++;
            }
        }
        start[B] = n_refs;
        vlt_clipscore_result r;
        double per[16], per_ref[16];
        assert_int_equal(vlt_clipscore(vlt_f32(ft), vlt_f32(fi), B, D, refs_v, start, &r, per, per_ref), VLT_OK);
        double cs, rcs;
        reference(vlt_f32(ref_txt), vlt_f32(ref_img), B, D, refs_o, start, &cs, &rcs);
        print_message("clip_%s: CLIP-S vlt %.9f open_clip %.9f; RefCLIP-S vlt %.9f open_clip %.9f\n", names[f], r.clip_s, cs,
                      r.ref_clip_s, rcs);
        assert_true(fabs(r.clip_s - cs) < 1e-6);
        assert_true(fabs(r.ref_clip_s - rcs) < 1e-6);
        assert_true(r.clip_s > 0);  // not a degenerate all-clipped case
        free(refs_v);
        free(refs_o);
        vlt_step_reset();
        vlt_tensor *all[] = {images, ids, ref_img, ref_txt};
        for (int k = 0; k < 4; k++) vlt_tensor_free(all[k]);
        vlt_safetensors_close(io);
        vlt_clip_free(&m);
    }
}

static void test_command_arguments(void **state) {
    (void)state;
    char *help[] = {"clipscore", "--help", NULL}, *none[] = {"clipscore", "--checkpoint", "x", "--shards", "y", NULL};
    assert_int_equal(vlt_cmd_eval_clipscore(2, help), 0);
    assert_int_equal(vlt_cmd_eval_clipscore(5, none), 2);  // --results is required
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formula_edges),
        cmocka_unit_test(test_equal_to_open_clip_features),
        cmocka_unit_test(test_command_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
