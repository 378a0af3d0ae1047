// CoCa parity with open_clip on committed fixtures (scripts/reference/make_coca_fixtures.py):
// the open_clip state_dict loads strictly by name; features, image tokens, caption logits, both
// losses and every parameter's gradient match the float64 reference (relative to each reference
// tensor's largest magnitude: forward 1e-5, gradients 1e-4); greedy captions equal open_clip's
// token for token; the KV-cached decode equals a full recompute; beam search scores at least as
// well as greedy; parameter counts of the full-size models equal open_clip's.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "autograd/optim.h"
#include "checkpoints/safetensors.h"
#include "layers/clip.h"
#include "layers/coca.h"
#include "layers/generate.h"

#define FIX "tests/data/layers/coca_tiny/"

static double rel_err(const float *a, const float *ref, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - ref[i]));
        m = fmax(m, fabs((double)ref[i]));
    }
    return d / fmax(m, 1e-30);
}

static vlt_tensor *read_f32(vlt_safetensors *f, const char *name) {
    const vlt_st_tensor *t = vlt_safetensors_get(f, name);
    if (!t) fail_msg("fixture lacks %s", name);
    int shape[4];
    for (int d = 0; d < t->ndim; d++) shape[d] = (int)t->shape[d];
    vlt_tensor *x = vlt_tensor_new(VLT_F32, VLT_CPU, t->ndim, shape, name);
    assert_int_equal(vlt_safetensors_read_f32(f, name, vlt_f32(x), x->numel), VLT_OK);
    return x;
}

static vlt_tensor *read_ids(vlt_safetensors *f, const char *name) {
    const vlt_st_tensor *t = vlt_safetensors_get(f, name);
    if (!t) fail_msg("fixture lacks %s", name);
    vlt_tensor *x = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE((int)t->shape[0], (int)t->shape[1]), name);
    int64_t *tmp = malloc(sizeof(int64_t) * (size_t)x->numel);
    assert_int_equal(vlt_safetensors_read_i64(f, name, tmp, x->numel), VLT_OK);
    for (int64_t i = 0; i < x->numel; i++) vlt_i32(x)[i] = (int32_t)tmp[i];
    free(tmp);
    return x;
}

typedef struct {
    vlt_coca m;
    vlt_safetensors *io, *gr;
} fixture;

static void load_fixture(fixture *f) {
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load(FIX "config.json", &cfg), VLT_OK);
    if (vlt_coca_init(&f->m, &cfg, 0) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_st_report rep;
    if (vlt_safetensors_load_params(FIX "weights.safetensors", &f->m.params, false, &rep) != VLT_OK)
        fail_msg("%s", vlt_error_message());
    assert_int_equal(rep.n_loaded, f->m.params.n);
    vlt_st_report_free(&rep);
    assert_int_equal(vlt_safetensors_open(FIX "io.safetensors", &f->io), VLT_OK);
    assert_int_equal(vlt_safetensors_open(FIX "grads.safetensors", &f->gr), VLT_OK);
}

static void free_fixture(fixture *f) {
    vlt_step_reset();
    vlt_safetensors_close(f->io);
    vlt_safetensors_close(f->gr);
    vlt_coca_free(&f->m);
}

static double cmp(vlt_safetensors *io, const char *name, vlt_tensor *got) {
    vlt_tensor *ref = read_f32(io, name);
    if (!got) fail_msg("%s: %s", name, vlt_error_message());
    if (got->numel != ref->numel) fail_msg("%s: %ld values, reference %ld", name, (long)got->numel, (long)ref->numel);
    double e = rel_err(vlt_f32(got), vlt_f32(ref), ref->numel);
    print_message("coca_tiny: %-18s rel err %.2e\n", name, e);
    vlt_tensor_free(ref);
    return e;
}

static void test_coca_matches_open_clip(void **state) {
    (void)state;
    fixture f;
    load_fixture(&f);
    vlt_tensor *images = read_f32(f.io, "images"), *ids = read_ids(f.io, "ids");
    vlt_coca_output out;
    if (vlt_coca_forward(&f.m, images, ids, VLT_COCA_LOSS_DEFAULTS, &out) != VLT_OK) fail_msg("%s", vlt_error_message());
    double e = 0;
    e = fmax(e, cmp(f.io, "image_features", out.image_features));
    e = fmax(e, cmp(f.io, "text_features", out.text_features));
    e = fmax(e, cmp(f.io, "image_embs", out.image_embs));
    e = fmax(e, cmp(f.io, "logits", out.logits));
    e = fmax(e, cmp(f.io, "contrastive_loss", out.contrastive_loss));
    e = fmax(e, cmp(f.io, "caption_loss", out.caption_loss));
    e = fmax(e, cmp(f.io, "loss", out.loss));
    assert_true(e < 1e-5);

    vlt_zero_grad(f.m.params.t, f.m.params.n);
    assert_int_equal(vlt_backward(out.loss), VLT_OK);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < f.m.params.n; i++) {
        vlt_tensor *p = f.m.params.t[i];
        if (!vlt_safetensors_get(f.gr, p->name)) fail_msg("no reference gradient for %s", p->name);
        float *ref = malloc(sizeof(float) * (size_t)p->numel);
        assert_int_equal(vlt_safetensors_read_f32(f.gr, p->name, ref, p->numel), VLT_OK);
        double g = rel_err(vlt_f32(p->grad), ref, p->numel);
        if (g > worst) { worst = g; worst_name = p->name; }
        free(ref);
    }
    print_message("coca_tiny: %d parameter gradients, worst rel err %.2e (%s)\n", f.m.params.n, worst, worst_name);
    assert_true(worst < 1e-4);
    vlt_step_reset();

    // label smoothing 0.1 (torch's cross_entropy with ignore_index): forward only
    vlt_no_grad_enter();
    vlt_coca_loss_cfg ls = VLT_COCA_LOSS_DEFAULTS;
    ls.label_smoothing = 0.1f;
    assert_int_equal(vlt_coca_forward(&f.m, images, ids, ls, &out), VLT_OK);
    assert_true(cmp(f.io, "caption_loss_ls", out.caption_loss) < 1e-5);
    vlt_no_grad_exit();
    vlt_tensor_free(images);
    vlt_tensor_free(ids);
    free_fixture(&f);
}

static void test_wrong_state_dict_lists_the_keys(void **state) {
    (void)state;
    // A CLIP state_dict is not a CoCa one: the load names the missing and unexpected keys.
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load(FIX "config.json", &cfg), VLT_OK);
    vlt_coca m;
    assert_int_equal(vlt_coca_init(&m, &cfg, 0), VLT_OK);
    vlt_st_report rep;
    assert_int_not_equal(vlt_safetensors_load_params("tests/data/layers/clip_gelu/weights.safetensors", &m.params,
                                                     false, &rep), VLT_OK);
    const char *msg = vlt_error_message();
    assert_non_null(strstr(msg, "missing"));
    assert_non_null(strstr(msg, "unexpected"));
    assert_non_null(strstr(msg, "text.cls_emb"));
    assert_non_null(strstr(msg, "token_embedding.weight"));
    assert_true(rep.n_missing > 0 && rep.n_unexpected > 0);
    vlt_st_report_free(&rep);
    // a CoCa config that is not one
    vlt_model_cfg bad = cfg;
    bad.multimodal.width = 32;
    assert_int_not_equal(vlt_coca_init(&m, &bad, 0), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "multimodal_cfg.width 32"));
    vlt_coca_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coca_matches_open_clip),
        cmocka_unit_test(test_wrong_state_dict_lists_the_keys),
    };
    int rc = cmocka_run_group_tests_name("layers_coca", tests, NULL, NULL);
    vlt_tape_shutdown();
    return rc;
}
