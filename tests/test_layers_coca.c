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
#include "tests/fixture_io.h"
#include "layers/clip.h"
#include "layers/coca.h"
#include "layers/generate.h"

#define FIX "tests/data/layers/coca_tiny/"


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
    vlt_coca_free(&m);
    // a CoCa config that is not one
    vlt_model_cfg bad = cfg;
    bad.multimodal.width = 32;
    vlt_coca m2;
    assert_int_not_equal(vlt_coca_init(&m2, &bad, 0), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "multimodal_cfg.width 32"));
}

static vlt_generate_cfg tiny_gen(int min_len, float penalty) {
    vlt_generate_cfg g = vlt_generate_defaults();
    g.max_len = 12;
    g.min_len = min_len;
    g.repetition_penalty = penalty;
    g.sot_id = 98;
    g.eos_id = 99;
    g.pad_id = 0;
    return g;
}

static void check_greedy(fixture *f, vlt_tensor *images, const char *ref_name, vlt_generate_cfg g) {
    vlt_tensor *ref = read_ids(f->io, ref_name);
    int N = ref->shape[0], L = ref->shape[1];
    assert_int_equal(L, g.max_len);
    int32_t *got = malloc(sizeof(int32_t) * (size_t)N * L);
    if (vlt_coca_generate(&f->m, images, &g, got, NULL) != VLT_OK) fail_msg("%s", vlt_error_message());
    for (int b = 0; b < N; b++) {
        char line[256];
        int off = 0;
        for (int t = 0; t < L; t++) off += snprintf(line + off, sizeof line - off, " %d", got[b * L + t]);
        print_message("coca_tiny %s[%d]:%s\n", ref_name, b, line);
        for (int t = 0; t < L; t++)
            if (got[b * L + t] != vlt_i32(ref)[b * L + t])
                fail_msg("%s: image %d token %d is %d, open_clip %d", ref_name, b, t, got[b * L + t], vlt_i32(ref)[b * L + t]);
    }
    free(got);
    vlt_tensor_free(ref);
}

static void test_greedy_caption_matches_open_clip(void **state) {
    (void)state;
    fixture f;
    load_fixture(&f);
    vlt_tensor *images = read_f32(f.io, "gen_images");
    check_greedy(&f, images, "greedy_ids", tiny_gen(3, 1.0f));
    check_greedy(&f, images, "greedy_ids_rep", tiny_gen(6, 1.5f));
    vlt_tensor_free(images);
    free_fixture(&f);
}

static void test_kv_cache_equals_full_recompute(void **state) {
    (void)state;
    fixture f;
    load_fixture(&f);
    vlt_tensor *images = read_f32(f.io, "gen_images"), *seq = read_ids(f.io, "greedy_ids_rep");
    int N = seq->shape[0], L = seq->shape[1], V = f.m.decoder.vocab_size;
    vlt_no_grad_enter();
    vlt_tensor *embs = NULL;
    assert_non_null(vlt_coca_encode_image(&f.m, images, false, &embs));
    vlt_coca_cache c, c2;
    assert_int_equal(vlt_coca_cache_init(&c, &f.m, embs, L - 1), VLT_OK);
    assert_int_equal(vlt_coca_cache_init(&c2, &f.m, embs, L - 1), VLT_OK);
    vlt_tensor *embs_keep = vlt_tensor_new(VLT_F32, VLT_CPU, 3, embs->shape, "embs");
    memcpy(vlt_f32(embs_keep), vlt_f32(embs), sizeof(float) * (size_t)embs->numel);
    float *lg = malloc(sizeof(float) * (size_t)N * V), *lg2 = malloc(sizeof(float) * (size_t)N * V);
    int32_t *feed = malloc(sizeof(int32_t) * (size_t)N * L);
    double worst = 0;
    for (int t = 0; t < L - 1; t++) {
        for (int b = 0; b < N; b++) feed[b] = vlt_i32(seq)[b * L + t];
        assert_int_equal(vlt_coca_cache_step(&c, &f.m, feed, 1, lg), VLT_OK);
        // the full forward over the prefix [0, t]
        vlt_tensor *prefix = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(N, t + 1));
        for (int b = 0; b < N; b++) memcpy(vlt_i32(prefix) + b * (t + 1), vlt_i32(seq) + b * L, sizeof(int32_t) * (t + 1));
        vlt_tensor *full = vlt_coca_caption_logits(&f.m, embs_keep, prefix);   // (N, t + 1, V)
        assert_non_null(full);
        for (int b = 0; b < N; b++) {
            double e = rel_err(lg + (size_t)b * V, vlt_f32(full) + ((size_t)b * (t + 1) + t) * V, V);
            worst = fmax(worst, e);
        }
        vlt_step_reset();
    }
    // a prefix of 5 tokens fed at once, then one more, equals the one-at-a-time cache
    for (int b = 0; b < N; b++) memcpy(feed + b * 5, vlt_i32(seq) + b * L, sizeof(int32_t) * 5);
    assert_int_equal(vlt_coca_cache_step(&c2, &f.m, feed, 5, lg2), VLT_OK);
    for (int b = 0; b < N; b++) feed[b] = vlt_i32(seq)[b * L + 5];
    assert_int_equal(vlt_coca_cache_step(&c2, &f.m, feed, 1, lg2), VLT_OK);
    vlt_step_reset();
    vlt_coca_cache_free(&c);
    assert_int_equal(vlt_coca_cache_init(&c, &f.m, embs_keep, L - 1), VLT_OK);
    for (int t = 0; t < 6; t++) {
        for (int b = 0; b < N; b++) feed[b] = vlt_i32(seq)[b * L + t];
        assert_int_equal(vlt_coca_cache_step(&c, &f.m, feed, 1, lg), VLT_OK);
        vlt_step_reset();
    }
    double e_prefix = rel_err(lg2, lg, (int64_t)N * V);
    print_message("coca_tiny: cached decode vs full recompute, %d steps: worst rel err %.2e; 5-token prefix %.2e\n",
                  L - 1, worst, e_prefix);
    assert_true(worst < 1e-5 && e_prefix < 1e-5);
    // overfilling the cache is refused
    assert_int_not_equal(vlt_coca_cache_step(&c, &f.m, feed, L, lg), VLT_OK);
    vlt_no_grad_exit();
    vlt_coca_cache_free(&c);
    vlt_coca_cache_free(&c2);
    free(lg); free(lg2); free(feed);
    vlt_tensor_free(embs_keep);
    vlt_tensor_free(images);
    vlt_tensor_free(seq);
    free_fixture(&f);
}

static void test_beam_search_scores_at_least_greedy(void **state) {
    (void)state;
    fixture f;
    load_fixture(&f);
    vlt_tensor *images = read_f32(f.io, "gen_images");
    int N = images->shape[0], L = 12;
    for (int pass = 0; pass < 2; pass++) {
        vlt_generate_cfg g = pass ? tiny_gen(6, 1.5f) : tiny_gen(3, 1.0f);
        int32_t *gr = malloc(sizeof(int32_t) * N * L), *b1 = malloc(sizeof(int32_t) * N * L), *b4 = malloc(sizeof(int32_t) * N * L);
        float sg[8], s1[8], s4[8], check[8];
        assert_int_equal(vlt_coca_generate(&f.m, images, &g, gr, sg), VLT_OK);
        g.beam_size = 1;   // a beam of one is greedy
        g.length_penalty = 0.0f;
        assert_int_equal(vlt_coca_generate(&f.m, images, &g, b1, s1), VLT_OK);
        g.beam_size = 4;
        assert_int_equal(vlt_coca_generate(&f.m, images, &g, b4, s4), VLT_OK);
        vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(N, L), "beam");
        memcpy(vlt_i32(ids), b4, sizeof(int32_t) * N * L);
        assert_int_equal(vlt_coca_caption_score(&f.m, images, ids, &g, check), VLT_OK);
        bool some_better = false;
        for (int b = 0; b < N; b++) {
            print_message("coca_tiny beam (penalty %.1f) image %d: greedy log-prob %.4f, beam 4 %.4f\n",
                          g.repetition_penalty, b, sg[b], s4[b]);
            assert_memory_equal(gr + b * L, b1 + b * L, sizeof(int32_t) * L);
            assert_true(s4[b] >= sg[b] - 1e-4f);
            assert_true(fabsf(check[b] - s4[b]) < 1e-3f);   // the score is the caption's log-probability
            some_better |= s4[b] > sg[b] + 1e-3f;
        }
        if (pass == 0) assert_true(some_better);
        vlt_tensor_free(ids);
        free(gr); free(b1); free(b4);
    }
    vlt_tensor_free(images);
    free_fixture(&f);
}

// Parameter counts of open_clip's models, from
//   sum(p.numel() for p in open_clip.create_model(NAME).parameters())
// (open_clip_torch 3.3.0; printed by scripts/reference/check_full_shapes.py, which also checks the
// state_dict round trip in both directions), and the tiny fixture's from make_coca_fixtures.py.
static void check_count(const char *name, bool coca, int64_t want_params, int want_tensors) {
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load(name, &cfg), VLT_OK);
    assert_int_equal(cfg.is_coca, coca);
    vlt_params *p;
    vlt_clip clip;
    vlt_coca cc;
    if (coca) {
        if (vlt_coca_init(&cc, &cfg, 0) != VLT_OK) fail_msg("%s", vlt_error_message());
        p = &cc.params;
    } else {
        if (vlt_clip_init(&clip, &cfg, 0) != VLT_OK) fail_msg("%s", vlt_error_message());
        p = &clip.params;
    }
    print_message("%s: %d tensors, %lld parameters\n", name, p->n, (long long)vlt_params_numel(p));
    assert_int_equal(p->n, want_tensors);
    assert_true(vlt_params_numel(p) == want_params);
    if (coca) vlt_coca_free(&cc);
    else vlt_clip_free(&clip);
}

static void test_parameter_counts_equal_open_clip(void **state) {
    (void)state;
    check_count(FIX "config.json", true, 404737, 129);
    // The full-size models take ~12 s and 2 GB to initialize (400M random draws): not under the
    // sanitizers, where that would be minutes.
#if defined(__SANITIZE_ADDRESS__)
    print_message("full-size parameter counts skipped under AddressSanitizer\n");
#else
    check_count("ViT-B-32", false, 151277313, 302);
    check_count("coca_ViT-B-32", true, 253560065, 629);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coca_matches_open_clip),
        cmocka_unit_test(test_wrong_state_dict_lists_the_keys),
        cmocka_unit_test(test_greedy_caption_matches_open_clip),
        cmocka_unit_test(test_kv_cache_equals_full_recompute),
        cmocka_unit_test(test_beam_search_scores_at_least_greedy),
        cmocka_unit_test(test_parameter_counts_equal_open_clip),
    };
    int rc = cmocka_run_group_tests_name("layers_coca", tests, NULL, NULL);
    vlt_tape_shutdown();
    return rc;
}
