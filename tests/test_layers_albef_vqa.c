// ALBEF VQA parity with the float64 PyTorch reference of the authors' model_vqa.py
// (scripts/reference/albef_vqa_ref.py, fixtures tests/data/albef_vqa/{tiny,tiny2}, checked
// against the authors' code: see their README): the released VQA names load strictly; the
// weighted answer LM loss (with momentum distillation in tiny) matches to 1e-5 relative, every
// trainable gradient to 1e-4 (relative to the tensor's largest reference magnitude, floored at 1e-3
// for the key biases whose exact gradient is 0); rank_answer gives the same candidates in the same
// order; a pretraining checkpoint remapped as VQA.py does gives exactly the fixture's weights.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>
#include <math.h>

#include "autograd/optim.h"
#include "checkpoints/safetensors.h"
#include "layers/albef_vqa.h"
#include "layers/model.h"
#include "tests/fixture_io.h"

static const char *const FIXTURES[] = {"tests/data/albef_vqa/tiny/", "tests/data/albef_vqa/tiny2/"};

static vlt_tensor *read_i32_any(vlt_safetensors *f, const char *name) {
    const vlt_st_tensor *t = vlt_safetensors_get(f, name);
    if (!t) fail_msg("fixture lacks %s", name);
    int shape[4];
    for (int d = 0; d < t->ndim; d++) shape[d] = (int)t->shape[d];
    vlt_tensor *x = vlt_tensor_new(VLT_I32, VLT_CPU, t->ndim, shape, name);
    if (t->dtype == VLT_ST_I32) {
        memcpy(vlt_i32(x), t->data, sizeof(int32_t) * (size_t)x->numel);
    } else {
        int64_t *tmp = malloc(sizeof(int64_t) * (size_t)x->numel);
        assert_int_equal(vlt_safetensors_read_i64(f, name, tmp, x->numel), VLT_OK);
        for (int64_t i = 0; i < x->numel; i++) vlt_i32(x)[i] = (int32_t)tmp[i];
        free(tmp);
    }
    return x;
}

static double err_floor(const float *a, const float *ref, int64_t n, double floor_) {
    double d = 0, m = floor_;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - ref[i]));
        m = fmax(m, fabs((double)ref[i]));
    }
    return d / m;
}

typedef struct {
    vlt_albef_vqa m;
    vlt_safetensors *io;
    vlt_albef_vqa_inputs in;
} fixture;

static void init_model(vlt_albef_vqa *m, const char *dir) {
    char p[256];
    vlt_model_cfg cfg;
    snprintf(p, sizeof p, "%sconfig.json", dir);
    if (vlt_model_cfg_load(p, &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_true(cfg.is_albef && cfg.albef.vqa.on);
    if (vlt_albef_vqa_init(m, &cfg, 7) != VLT_OK) fail_msg("%s", vlt_error_message());
}

static void load(fixture *f, const char *dir) {
    char p[256];
    init_model(&f->m, dir);
    snprintf(p, sizeof p, "%sweights.safetensors", dir);
    if (vlt_albef_vqa_load(&f->m, p, false) != VLT_OK) fail_msg("%s", vlt_error_message());
    snprintf(p, sizeof p, "%sio.safetensors", dir);
    assert_int_equal(vlt_safetensors_open(p, &f->io), VLT_OK);
    float alpha;
    assert_int_equal(vlt_safetensors_read_f32(f->io, "alpha", &alpha, 1), VLT_OK);
    f->in = (vlt_albef_vqa_inputs){
        .images = read_f32(f->io, "image"), .question_ids = read_i32_any(f->io, "question_ids"),
        .question_atts = read_i32_any(f->io, "question_atts"), .answer_ids = read_i32_any(f->io, "answer_ids"),
        .answer_atts = read_i32_any(f->io, "answer_atts"), .weights = read_f32(f->io, "weights"),
        .k = read_i32_any(f->io, "k"), .alpha = alpha};
}

static void unload(fixture *f) {
    vlt_step_reset();
    vlt_tensor *t[] = {f->in.images, f->in.question_ids, f->in.question_atts, f->in.answer_ids, f->in.answer_atts,
                       f->in.weights, f->in.k};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) vlt_tensor_free(t[i]);
    vlt_safetensors_close(f->io);
    vlt_albef_vqa_free(&f->m);
}

static void test_loss_and_gradients_match_reference(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof FIXTURES / sizeof *FIXTURES; k++) {
        const char *dir = FIXTURES[k];
        fixture f;
        load(&f, dir);
        vlt_zero_grad(f.m.params.t, f.m.params.n);
        vlt_tensor *loss = vlt_albef_vqa_loss(&f.m, &f.in);
        if (!loss) fail_msg("%s", vlt_error_message());
        float ref;
        assert_int_equal(vlt_safetensors_read_f32(f.io, "loss", &ref, 1), VLT_OK);
        double e = fabs(vlt_f32(loss)[0] - ref) / fabs(ref);
        print_message("%s loss %.8f reference %.8f rel err %.2e (distill %d)\n", dir, vlt_f32(loss)[0], ref, e,
                      f.m.distill);
        assert_true(e < 1e-5);
        assert_int_equal(vlt_backward(loss), VLT_OK);
        char p[256];
        snprintf(p, sizeof p, "%sgrads.safetensors", dir);
        vlt_safetensors *gr;
        assert_int_equal(vlt_safetensors_open(p, &gr), VLT_OK);
        double worst = 0, worst_plain = 0;
        const char *wn = "", *pn = "";
        int n = 0;
        for (int i = 0; i < f.m.params.n; i++) {
            vlt_tensor *t = f.m.params.t[i];
            if (!t->requires_grad) continue;
            if (!vlt_safetensors_get(gr, t->name)) fail_msg("no reference gradient for %s", t->name);
            float *r = malloc(sizeof(float) * (size_t)t->numel);
            assert_int_equal(vlt_safetensors_read_f32(gr, t->name, r, t->numel), VLT_OK);
            // key biases: 0 in exact arithmetic (softmax ignores a per-query shift); the loss here is a
            // sum over answer tokens (~40), so their f32 rounding noise (~3e-7) is judged against 1e-2
            bool zero_exact = strstr(t->name, "key.bias") || strstr(t->name, "qkv.bias");
            double g = err_floor(vlt_f32(t->grad), r, t->numel, zero_exact ? 1e-2 : 1e-3);
            if (g > worst) worst = g, wn = t->name;
            if (!zero_exact) {
                double u = rel_err(vlt_f32(t->grad), r, t->numel);
                if (u > worst_plain) worst_plain = u, pn = t->name;
            }
            free(r);
            n++;
        }
        print_message("%s %d gradients, worst rel err %.2e (%s); without key biases, no floor %.2e (%s)\n", dir, n,
                      worst, wn, worst_plain, pn);
        assert_int_equal(vlt_safetensors_count(gr), n + 2);   // + the decoder's two tied names
        assert_true(worst < 1e-4);
        assert_true(worst_plain < 1e-4);
        vlt_safetensors_close(gr);
        unload(&f);
    }
}

static void test_ranking_matches_reference(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof FIXTURES / sizeof *FIXTURES; k++) {
        const char *dir = FIXTURES[k];
        fixture f;
        load(&f, dir);
        vlt_tensor *cid = read_i32_any(f.io, "cand_ids"), *cat = read_i32_any(f.io, "cand_atts");
        vlt_tensor *rid = read_i32_any(f.io, "rank_ids"), *rp = read_f32(f.io, "rank_probs");
        int B = rid->shape[0], K = rid->shape[1];
        assert_int_equal(K, f.m.cfg.albef.vqa.k_test);
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * K);
        float *probs = malloc(sizeof(float) * (size_t)B * K);
        vlt_no_grad_enter();
        vlt_status s = vlt_albef_vqa_rank(&f.m, f.in.images, f.in.question_ids, f.in.question_atts, vlt_i32(cid),
                                          vlt_i32(cat), cid->shape[0], cid->shape[1], K, ids, probs);
        vlt_no_grad_exit();
        if (s != VLT_OK) fail_msg("%s", vlt_error_message());
        for (int i = 0; i < B * K; i++) assert_int_equal(ids[i], vlt_i32(rid)[i]);
        double pe = 0;
        for (int i = 0; i < B * K; i++) pe = fmax(pe, fabs(probs[i] - vlt_f32(rp)[i]));
        print_message("%s ranking: %d questions x top %d equal; probabilities within %.2e\n", dir, B, K, pe);
        assert_true(pe < 1e-5);
        free(ids);
        free(probs);
        vlt_tensor *t[] = {cid, cat, rid, rp};
        for (int i = 0; i < 4; i++) vlt_tensor_free(t[i]);
        unload(&f);
    }
}

// VQA.py's remapping of a pretraining checkpoint gives the fixture's weights exactly; a strict
// load of that file is refused, as is a VQA checkpoint through the remapping.
static void test_pretrained_remapping(void **state) {
    (void)state;
    const char *dir = FIXTURES[0];
    vlt_albef_vqa m, ref;
    init_model(&m, dir);
    init_model(&ref, dir);
    assert_int_equal(vlt_albef_vqa_load_pretrained(&m, "tests/data/albef_vqa/tiny/pretrained.safetensors"), VLT_OK);
    assert_int_equal(vlt_albef_vqa_load(&ref, "tests/data/albef_vqa/tiny/weights.safetensors", false), VLT_OK);
    assert_int_equal(m.params.n, ref.params.n);
    int compared = 0;
    for (int i = 0; i < m.params.n; i++) {
        vlt_tensor *a = m.params.t[i], *b = ref.params.t[i];
        assert_string_equal(a->name, b->name);
        size_t sz = a->dtype == VLT_I32 ? sizeof(int32_t) : sizeof(float);
        if (memcmp(a->data, b->data, sz * (size_t)a->numel)) fail_msg("%s differs after the remapping", a->name);
        compared++;
    }
    print_message("remapped pretraining checkpoint: %d tensors equal the VQA fixture's\n", compared);
    vlt_albef_vqa_free(&m);
    init_model(&m, dir);
    assert_int_not_equal(vlt_albef_vqa_load(&m, "tests/data/albef_vqa/tiny/pretrained.safetensors", false), VLT_OK);
    print_message("strict load of a pretraining file: %s\n", vlt_error_message());
    assert_non_null(strstr(vlt_error_message(), "missing"));
    assert_int_not_equal(vlt_albef_vqa_load_pretrained(&m, "tests/data/albef_vqa/tiny/weights.safetensors"), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "text_encoder.bert."));
    vlt_albef_vqa_free(&m);
    vlt_albef_vqa_free(&ref);
}

static void test_refusals(void **state) {
    (void)state;
    fixture f;
    load(&f, FIXTURES[1]);
    vlt_i32(f.in.k)[0] += 1;   // the counts no longer add up to the answers
    assert_null(vlt_albef_vqa_loss(&f.m, &f.in));
    assert_non_null(strstr(vlt_error_message(), "do not add up"));
    vlt_i32(f.in.k)[0] -= 1;
    int32_t best[2];
    assert_int_not_equal(vlt_albef_vqa_answer(&f.m, f.in.images, f.in.question_ids, best, NULL), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "candidate"));
    unload(&f);
    // a config without the albef_vqa section is not a VQA model
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load("tests/data/albef/tiny/config.json", &cfg), VLT_OK);
    vlt_albef_vqa m;
    assert_int_not_equal(vlt_albef_vqa_init(&m, &cfg, 1), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "albef_vqa"));
}

// Through the model interface: kind, capability, the loss from batch fields equal to the direct
// call, and answers ranked from a candidate list tokenized as VQA.py does (answer + '[SEP]').
static void test_model_interface(void **state) {
    (void)state;
    fixture f;
    load(&f, FIXTURES[0]);
    vlt_tensor *direct = vlt_albef_vqa_loss(&f.m, &f.in);
    if (!direct) fail_msg("%s", vlt_error_message());
    float want = vlt_f32(direct)[0];
    vlt_step_reset();
    // a vocabulary for the config's 60 ids: the specials, then w5..w59
    char vocab[] = "/tmp/vlt_test_albef_vqa_vocabXXXXXX";
    int fd = mkstemp(vocab);
    assert_true(fd >= 0);
    FILE *vf = fdopen(fd, "w");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", vf);
    for (int i = 5; i < 60; i++) fprintf(vf, "w%d\n", i);
    fclose(vf);
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load("tests/data/albef_vqa/tiny/config.json", &cfg), VLT_OK);
    snprintf(cfg.albef.vocab, sizeof cfg.albef.vocab, "%s", vocab);
    assert_string_equal(vlt_model_kind_of(&cfg), "albef_vqa");
    vlt_model m;
    if (vlt_model_create(&m, &cfg, 3) != VLT_OK) fail_msg("%s", vlt_error_message());
    unlink(vocab);
    assert_true(vlt_model_can(&m, VLT_CAP_ANSWER));
    assert_false(vlt_model_can(&m, VLT_CAP_EMBED));
    vlt_albef_vqa *a = m.impl;
    assert_int_equal(vlt_albef_vqa_load(a, "tests/data/albef_vqa/tiny/weights.safetensors", false), VLT_OK);
    vlt_model_batch b = {0};
    vlt_model_batch_set(&b, VLT_FIELD_IMAGES, f.in.images);
    vlt_model_batch_set(&b, VLT_FIELD_QUESTION_IDS, f.in.question_ids);
    vlt_model_batch_set(&b, VLT_FIELD_QUESTION_ATTS, f.in.question_atts);
    vlt_model_batch_set(&b, VLT_FIELD_ANSWER_IDS, f.in.answer_ids);
    vlt_model_batch_set(&b, VLT_FIELD_ANSWER_WEIGHTS, f.in.weights);
    vlt_model_loss out;
    vlt_loss_opts o = vlt_loss_opts_default();
    vlt_loss_opts_set(&o, "alpha", f.in.alpha);
    assert_int_not_equal(vlt_model_loss_forward(&m, &b, &o, &out), VLT_OK);   // no answer_k
    assert_non_null(strstr(vlt_error_message(), "answer_k"));
    vlt_model_batch_set(&b, VLT_FIELD_ANSWER_K, f.in.k);
    if (vlt_model_loss_forward(&m, &b, &o, &out) != VLT_OK) fail_msg("%s", vlt_error_message());
    print_message("interface loss %.8f, direct %.8f\n", vlt_f32(out.loss)[0], want);
    assert_true(fabsf(vlt_f32(out.loss)[0] - want) <= 1e-6f * fabsf(want));
    vlt_step_reset();

    const char *answers[] = {"w7", "w9 w11", "w13", "w20 w21 w22", "w30", "w41 w5"};
    assert_int_equal(vlt_model_set_answers(&m, answers, 6), VLT_OK);
    assert_int_equal(vlt_model_answers(&m), 6);
    assert_int_equal(a->cand_T, 6);   // [CLS] w20 w21 w22 [SEP] [SEP]
    const int32_t row1[6] = {2, 9, 11, 3, 3, 0};
    for (int t = 0; t < 6; t++) assert_int_equal(a->cand_ids[6 + t], row1[t]);
    int32_t best[3], ids[3 * 5];
    float conf[3], probs[3 * 5];
    vlt_no_grad_enter();
    assert_int_equal(vlt_model_answer(&m, f.in.images, f.in.question_ids, best, conf), VLT_OK);
    // the same ranking directly (k = min(k_test 5, 6 answers) = 5), atts from the ids
    assert_int_equal(vlt_albef_vqa_rank(a, f.in.images, f.in.question_ids, NULL, a->cand_ids, a->cand_atts, 6, 6, 5,
                                        ids, probs), VLT_OK);
    vlt_no_grad_exit();
    for (int q = 0; q < 3; q++) {
        assert_int_equal(best[q], ids[q * 5]);
        assert_true(conf[q] > 0 && conf[q] <= 1);
        print_message("question %d: answer %s (%.3f)\n", q, answers[best[q]], conf[q]);
    }
    vlt_step_reset();

    // training answer fields from the samples' .json: distinct answers in first-appearance order,
    // weight = share of the annotators' answers (ALBEF's vqa_dataset), ids as VQA.py tokenizes
    char *json[2] = {"{\"answers_processed\": [\"w7\", \"w9 w11\", \"w7\", \"w7\"]}",
                     "{\"answers\": [\"w13\", \"w13\"]}"};
    assert_true(vlt_model_builds_answers(&m));
    vlt_model_batch ab = {0};
    assert_int_equal(vlt_model_answer_fields(&m, json, 2, &ab), VLT_OK);
    vlt_tensor *aid = vlt_model_batch_get(&ab, VLT_FIELD_ANSWER_IDS), *aw = vlt_model_batch_get(&ab, VLT_FIELD_ANSWER_WEIGHTS),
               *ak = vlt_model_batch_get(&ab, VLT_FIELD_ANSWER_K);
    assert_non_null(aid);
    assert_int_equal(aid->shape[0], 3);
    assert_int_equal(aid->shape[1], 5);   // [CLS] w9 w11 [SEP] [SEP]
    const int32_t want_ids[15] = {2, 7, 3, 3, 0, 2, 9, 11, 3, 3, 2, 13, 3, 3, 0};
    for (int i = 0; i < 15; i++) assert_int_equal(vlt_i32(aid)[i], want_ids[i]);
    assert_int_equal(vlt_i32(ak)[0], 2);
    assert_int_equal(vlt_i32(ak)[1], 1);
    assert_float_equal(vlt_f32(aw)[0], 0.75f, 1e-6f);
    assert_float_equal(vlt_f32(aw)[1], 0.25f, 1e-6f);
    assert_float_equal(vlt_f32(aw)[2], 1.0f, 1e-6f);
    vlt_step_reset();
    vlt_model_free(&m);
    unload(&f);
}

// The paper's config (configs/model/albef_vqa_ViT-B-16.json) against the authors' model built
// from their code (check_albef_vqa_fixtures.py --names -> albef_vqa_ViT-B-16_names.tsv): every
// state_dict key with its shape, trainable / momentum / buffer / tied; 290,336,058 trainable.
static void test_full_size_names(void **state) {
    (void)state;
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load("configs/model/albef_vqa_ViT-B-16.json", &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_albef_vqa m;
    if (vlt_albef_vqa_init(&m, &cfg, 0) != VLT_OK) fail_msg("%s", vlt_error_message());
    FILE *f = fopen("tests/data/albef_vqa/albef_vqa_ViT-B-16_names.tsv", "r");
    assert_non_null(f);
    char line[512];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char name[256], shape[128], dtype[16], kind[300];
        if (sscanf(line, "%255[^\t]\t%127[^\t]\t%15[^\t]\t%299[^\n]", name, shape, dtype, kind) != 4)
            fail_msg("bad line %s", line);
        vlt_tensor *t = vlt_params_find(&m.params, name);
        if (!t) fail_msg("the table lacks %s", name);
        char ours[128] = "[";
        for (int d = 0; d < t->ndim; d++)
            snprintf(ours + strlen(ours), sizeof ours - strlen(ours), "%s%d", d ? "," : "", t->shape[d]);
        strcat(ours, "]");
        if (strcmp(ours, shape)) fail_msg("%s: shape %s, authors' %s", name, ours, shape);
        if (t->requires_grad != !strcmp(kind, "trainable")) fail_msg("%s: trainable %d, authors' %s", name, t->requires_grad, kind);
        if (!strncmp(kind, "tied:", 5)) {
            vlt_tensor *target = vlt_params_find(&m.params, kind + 5);
            assert_non_null(target);
            assert_ptr_equal(t->data, target->data);
        }
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, m.params.n);
    assert_int_equal(vlt_params_trainable_numel(&m.params), 290336058);
    vlt_albef_vqa_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_and_gradients_match_reference),
        cmocka_unit_test(test_ranking_matches_reference),
        cmocka_unit_test(test_pretrained_remapping),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_model_interface),
        cmocka_unit_test(test_full_size_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
