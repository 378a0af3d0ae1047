// The VQA heads on the GPU against the CPU (issue 16's GPU line):
//   - without a GPU: the GPU route of the CLIP classifier's token fusion (vlt_vqa_set_device_path:
//     the question ids copied back for the padding mask, the mask and the class index copied to
//     the model's device) run on the host gives the host path's bits: the loss, every gradient
//     over two AdamW steps and every parameter after them;
//   - with a GPU: one classifier step with each fusion (concat, tokens) on both devices, the batch
//     sent to the device as the trainer sends it, two steps with AdamW: the loss, every gradient
//     and every parameter afterwards within max |gpu − cpu| <= 1e-4 + 1e-3 · max |cpu| per tensor
//     (fp32 products on both sides; the key biases, whose exact gradient is 0, within AdamW's
//     bound on their steps: see close_param), and the answers of vlt_model_answer the same.
//   - ALBEF VQA (the parity fixtures tests/data/albef_vqa/tiny, with momentum distillation, and
//     tiny2, without): without a GPU its GPU route (vlt_albef_vqa_set_device_path: host copies of
//     the ids, k and weights, the loss coefficients built from device ops and an uploaded one-hot
//     part, the ranking's scores gathered on the device) run on the host gives the host path's
//     bits: the loss and every gradient over two AdamW steps, every tensor (momentum copies too)
//     after the third forward's EMA, and the ranked candidates and their probabilities. With a
//     GPU: the same three steps on both devices (the batch on the device), per-tensor tolerance as
//     above, and the same ranked candidates (probabilities within 1e-4).
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
#include "autograd/rng.h"
#include "autograd/tape.h"
#include "checkpoints/safetensors.h"
#include "layers/albef_vqa.h"
#include "layers/model.h"
#include "layers/vqa_head.h"
#include "tests/cuda_compare.h"
#include "tests/fixture_io.h"

// ---- shared helpers ----
// The default device, where the layers' own constants (vlt_full: the ViT's class-token row) are
// made: the GPU model's calls run with it set to the GPU, as the trainer sets it.
static void use(vlt_device d) { assert_int_equal(vlt_set_default_device(d), VLT_OK); }

// The key biases for close_param (BERT's key.bias, the k third of in_proj_bias / qkv.bias): their
// gradients are held to the per-tensor tolerance (noise of ~1e-8 on both sides), the tensors after
// the steps to AdamW's bound.
static const char *const KEY_BIASES[] = {"key.bias", "in_proj_bias", "qkv.bias", NULL};

static vlt_adamw *optimizer(const vlt_params *p) {
    vlt_tensor *t[4096];
    int n = 0;
    for (int i = 0; i < p->n; i++)
        if (p->t[i]->requires_grad) t[n++] = p->t[i];
    vlt_adamw_cfg c = vlt_adamw_defaults();
    c.weight_decay = 0.05f;
    vlt_adamw *o = vlt_adamw_new(t, NULL, n, c);
    if (!o) fail_msg("%s", vlt_error_message());
    return o;
}

// ---- the classifier ----
enum { CB = 4, CN = 6 };   // questions in the batch, answers

static vlt_model_cfg classifier_cfg(int fusion_layers) {
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load("tiny-clip", &cfg) != VLT_OK) fail_msg("tiny-clip: %s", vlt_error_message());
    cfg.vqa.n_answers = CN;
    cfg.vqa.hidden = 16;
    cfg.vqa.fusion_layers = fusion_layers;
    return cfg;
}

// Images, questions of different lengths (SOT words EOT, then padding) and soft answer scores.
typedef struct {
    vlt_tensor *images, *ids, *scores;
} cls_batch;

static cls_batch classifier_batch(const vlt_model_cfg *cfg) {
    int S = cfg->vision.image_size, T = cfg->text.context_length, V = cfg->text.vocab_size;
    cls_batch b = {vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(CB, 3, S, S), "images"),
                   vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(CB, T), "question_ids"),
                   vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(CB, CN), "answer_scores")};
    assert_true(b.images && b.ids && b.scores);
    vlt_rng_fill_normal(vlt_f32(b.images), (size_t)b.images->numel, 0, 1, 7, 1, 0);
    bool pad = false;
    for (int r = 0; r < CB; r++) {
        int len = 3 + (2 * r) % (T - 3);
        for (int i = 0; i < T; i++) {
            int32_t v = i == 0 ? V - 2 : i < len ? (int32_t)(1 + vlt_rng_below(8, (uint64_t)r, (uint64_t)i, 500))
                                : i == len ? V - 1 : cfg->text.pad_id;
            vlt_i32(b.ids)[r * T + i] = v;
            pad |= i > len;
        }
    }
    assert_true(pad);   // the padding mask has something to mask
    static const float levels[] = {0, 0, 0.3f, 0.6f, 0.9f, 1};
    for (int64_t i = 0; i < b.scores->numel; i++) vlt_f32(b.scores)[i] = levels[vlt_rng_below(9, 2, (uint64_t)i, 6)];
    return b;
}

static void free_cls_batch(cls_batch *b) {
    vlt_tensor_free(b->images);
    vlt_tensor_free(b->ids);
    vlt_tensor_free(b->scores);
}

static vlt_tensor *classifier_loss(vlt_model *m, const cls_batch *b) {
    vlt_model_batch mb = {0};
    vlt_model_batch_set(&mb, VLT_FIELD_IMAGES, b->images);
    vlt_model_batch_set(&mb, VLT_FIELD_QUESTION_IDS, b->ids);
    vlt_model_batch_set(&mb, VLT_FIELD_ANSWER_SCORES, b->scores);
    vlt_model_loss out;
    if (vlt_model_loss_forward(m, &mb, NULL, &out) != VLT_OK) fail_msg("loss: %s", vlt_error_message());
    vlt_zero_grad(m->params->t, m->params->n);
    if (vlt_backward(out.loss) != VLT_OK) fail_msg("backward: %s", vlt_error_message());
    return out.loss;
}

// Without a GPU: token fusion's GPU route for the padding mask on the host gives the host bits.
static void test_classifier_device_path_gives_host_bits(void **state) {
    (void)state;
    vlt_model_cfg cfg = classifier_cfg(1);
    vlt_model ma, mb;
    assert_int_equal(vlt_model_create(&ma, &cfg, 5), VLT_OK);
    assert_int_equal(vlt_model_create(&mb, &cfg, 5), VLT_OK);
    assert_null(vlt_model_gpu_unsupported(&ma));   // accepted on the GPU
    vlt_adamw *oa = optimizer(ma.params), *ob = optimizer(mb.params);
    cls_batch b = classifier_batch(&cfg);
    for (int step = 1; step <= 2; step++) {
        vlt_vqa_set_device_path(false);
        vlt_tensor *la = classifier_loss(&ma, &b);
        vlt_vqa_set_device_path(true);
        vlt_tensor *lb = classifier_loss(&mb, &b);
        vlt_vqa_set_device_path(false);
        assert_same_bits("loss", lb, la);
        int n = 0;
        for (int i = 0; i < ma.params->n; i++)
            if (ma.params->t[i]->requires_grad) {
                assert_same_bits(ma.params->t[i]->name, mb.params->t[i]->grad, ma.params->t[i]->grad);
                n++;
            }
        print_message("step %d: loss %.7f, %d gradients: the same bits both ways\n", step, vlt_f32(la)[0], n);
        assert_int_equal(vlt_adamw_step(oa, 1e-3f), VLT_OK);
        assert_int_equal(vlt_adamw_step(ob, 1e-3f), VLT_OK);
        vlt_model_after_step(&ma);
        vlt_model_after_step(&mb);
        vlt_step_reset();
    }
    for (int i = 0; i < ma.params->n; i++) assert_same_bits(ma.params->t[i]->name, mb.params->t[i], ma.params->t[i]);
    // the padding really is masked on that route: a pad turned into a word changes the loss
    vlt_tensor *before = vlt_tensor_to(classifier_loss(&mb, &b), VLT_CPU);
    int T = cfg.text.context_length, j = T - 1;
    assert_int_equal(vlt_i32(b.ids)[j], cfg.text.pad_id);
    vlt_i32(b.ids)[j] = 7;
    vlt_vqa_set_device_path(true);
    vlt_tensor *after = classifier_loss(&mb, &b);
    vlt_vqa_set_device_path(false);
    assert_true(fabsf(vlt_f32(after)[0] - vlt_f32(before)[0]) > 1e-7f);
    vlt_tensor_free(before);
    vlt_step_reset();
    free_cls_batch(&b);
    vlt_adamw_free(oa);
    vlt_adamw_free(ob);
    vlt_model_free(&ma);
    vlt_model_free(&mb);
}

// One classifier on each device, two AdamW steps from the same weights and batch.
static void classifier_gpu_vs_cpu(int fusion_layers) {
    vlt_model_cfg cfg = classifier_cfg(fusion_layers);
    vlt_model mc, md;
    assert_int_equal(vlt_model_create(&mc, &cfg, 5), VLT_OK);
    assert_int_equal(vlt_model_create(&md, &cfg, 5), VLT_OK);
    assert_null(vlt_model_gpu_unsupported(&md));
    assert_int_equal(vlt_params_move(md.params, VLT_CUDA), VLT_OK);
    vlt_adamw *oc = optimizer(mc.params), *od = optimizer(md.params);
    cls_batch hc = classifier_batch(&cfg);
    cls_batch hd = {on_gpu(hc.images), on_gpu(hc.ids), on_gpu(hc.scores)};   // as the trainer sends it
    double worst = 0;
    print_message("classifier, %s fusion:\n", fusion_layers ? "token" : "concat");
    for (int step = 1; step <= 2; step++) {
        vlt_tensor *lc = classifier_loss(&mc, &hc);
        use(VLT_CUDA);
        vlt_tensor *ld = classifier_loss(&md, &hd);
        use(VLT_CPU);
        scalar_close("loss", ld, lc);
        int n = close_grads(mc.params, md.params, &worst);
        print_message("  step %d: %d gradients within tolerance\n", step, n);
        assert_int_equal(vlt_adamw_step(oc, 1e-3f), VLT_OK);
        assert_int_equal(vlt_adamw_step(od, 1e-3f), VLT_OK);
        vlt_model_after_step(&mc);
        vlt_model_after_step(&md);
        vlt_step_reset();
    }
    for (int i = 0; i < mc.params->n; i++) {
        assert_int_equal(md.params->t[i]->device, VLT_CUDA);
        assert_true(close_param(KEY_BIASES, mc.params->t[i]->name, md.params->t[i], mc.params->t[i], &worst, 1e-3f, 2));
    }
    // the answers (argmax of the logits) and their confidences
    int32_t bc[CB], bd[CB];
    float cc[CB], cd[CB];
    vlt_no_grad_enter();
    assert_int_equal(vlt_model_answer(&mc, hc.images, hc.ids, bc, cc), VLT_OK);
    use(VLT_CUDA);
    assert_int_equal(vlt_model_answer(&md, hd.images, hd.ids, bd, cd), VLT_OK);
    use(VLT_CPU);
    vlt_no_grad_exit();
    vlt_step_reset();
    for (int r = 0; r < CB; r++) {
        assert_int_equal(bd[r], bc[r]);
        assert_true(fabsf(cd[r] - cc[r]) <= 1e-4f);
    }
    print_message("  after the steps: %d tensors within tolerance, the same %d answers; worst difference %.2f of the "
                  "tolerance\n", mc.params->n, CB, worst);
    vlt_tensor *dv[3] = {hd.images, hd.ids, hd.scores};
    for (int i = 0; i < 3; i++) vlt_tensor_free(dv[i]);
    free_cls_batch(&hc);
    vlt_adamw_free(oc);
    vlt_adamw_free(od);
    vlt_model_free(&mc);
    vlt_model_free(&md);
}

static void test_classifier_concat_step_matches_cpu(void **state) {
    (void)state;
    NEED_GPU();
    classifier_gpu_vs_cpu(0);
}

static void test_classifier_tokens_step_matches_cpu(void **state) {
    (void)state;
    NEED_GPU();
    classifier_gpu_vs_cpu(1);
}

// ---- ALBEF VQA ----
static const char *const AVQA_FIXTURES[] = {"tests/data/albef_vqa/tiny/", "tests/data/albef_vqa/tiny2/"};

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

static void avqa_load(vlt_albef_vqa *m, const char *dir) {
    char p[256];
    vlt_model_cfg cfg;
    snprintf(p, sizeof p, "%sconfig.json", dir);
    if (vlt_model_cfg_load(p, &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    if (vlt_albef_vqa_init(m, &cfg, 7) != VLT_OK) fail_msg("%s", vlt_error_message());
    snprintf(p, sizeof p, "%sweights.safetensors", dir);
    if (vlt_albef_vqa_load(m, p, false) != VLT_OK) fail_msg("%s", vlt_error_message());
}

// The fixture's batch and candidate list as host tensors.
typedef struct {
    vlt_albef_vqa_inputs in;
    vlt_tensor *cand_ids, *cand_atts;
    int k;   // candidates kept by the ranking (the fixture's k_test)
} avqa_batch;

static avqa_batch avqa_read(const char *dir, int k_test) {
    char p[256];
    vlt_safetensors *io;
    snprintf(p, sizeof p, "%sio.safetensors", dir);
    assert_int_equal(vlt_safetensors_open(p, &io), VLT_OK);
    float alpha;
    assert_int_equal(vlt_safetensors_read_f32(io, "alpha", &alpha, 1), VLT_OK);
    avqa_batch b = {.in = {.images = read_f32(io, "image"), .question_ids = read_i32_any(io, "question_ids"),
                           .question_atts = read_i32_any(io, "question_atts"), .answer_ids = read_i32_any(io, "answer_ids"),
                           .answer_atts = read_i32_any(io, "answer_atts"), .weights = read_f32(io, "weights"),
                           .k = read_i32_any(io, "k"), .alpha = alpha},
                    .cand_ids = read_i32_any(io, "cand_ids"), .cand_atts = read_i32_any(io, "cand_atts"), .k = k_test};
    vlt_safetensors_close(io);
    return b;
}

// The addresses of the batch's tensor fields.
enum { AVQA_NF = 7 };
static void avqa_fields(vlt_albef_vqa_inputs *in, vlt_tensor **f[AVQA_NF]) {
    f[0] = &in->images, f[1] = &in->question_ids, f[2] = &in->question_atts, f[3] = &in->answer_ids;
    f[4] = &in->answer_atts, f[5] = &in->weights, f[6] = &in->k;
}

static void avqa_free_batch(avqa_batch *b) {
    vlt_tensor **f[AVQA_NF];
    avqa_fields(&b->in, f);
    for (int i = 0; i < AVQA_NF; i++) vlt_tensor_free(*f[i]);
    vlt_tensor_free(b->cand_ids);
    vlt_tensor_free(b->cand_atts);
}

// The same batch with every input on the GPU (as the trainer sends it).
static vlt_albef_vqa_inputs avqa_on_gpu(const vlt_albef_vqa_inputs *h) {
    vlt_albef_vqa_inputs d = *h;
    vlt_tensor **f[AVQA_NF];
    avqa_fields(&d, f);
    for (int i = 0; i < AVQA_NF; i++) *f[i] = on_gpu(*f[i]);
    return d;
}

static vlt_tensor *avqa_step(vlt_albef_vqa *m, const vlt_albef_vqa_inputs *in, bool backward) {
    vlt_tensor *loss = vlt_albef_vqa_loss(m, in);
    if (!loss) fail_msg("loss: %s", vlt_error_message());
    if (!backward) return loss;
    vlt_zero_grad(m->params.t, m->params.n);
    if (vlt_backward(loss) != VLT_OK) fail_msg("backward: %s", vlt_error_message());
    return loss;
}

static void avqa_rank(vlt_albef_vqa *m, const vlt_albef_vqa_inputs *in, const avqa_batch *b, int32_t *ids, float *p) {
    vlt_no_grad_enter();
    vlt_status s = vlt_albef_vqa_rank(m, in->images, in->question_ids, in->question_atts, vlt_i32(b->cand_ids),
                                      vlt_i32(b->cand_atts), b->cand_ids->shape[0], b->cand_ids->shape[1], b->k, ids, p);
    vlt_no_grad_exit();
    vlt_step_reset();
    if (s != VLT_OK) fail_msg("rank: %s", vlt_error_message());
}

// Without a GPU: ALBEF VQA's GPU route on the host gives the host bits.
static void test_albef_vqa_device_path_gives_host_bits(void **state) {
    (void)state;
    for (size_t f = 0; f < sizeof AVQA_FIXTURES / sizeof *AVQA_FIXTURES; f++) {
        const char *dir = AVQA_FIXTURES[f];
        vlt_albef_vqa ma, mb;
        avqa_load(&ma, dir);
        avqa_load(&mb, dir);
        // the table holds the decoder's tied aliases (cls.predictions.decoder.*): moving it moves
        // the owners and re-points the aliases (it was refused: an alias does not own its storage)
        if (vlt_params_move(&mb.params, VLT_CPU) != VLT_OK) fail_msg("%s", vlt_error_message());
        assert_ptr_equal(mb.dec.decoder_w_alias->data, mb.dec.word_emb->data);
        // and behind the model interface the kind is accepted on the GPU (it was refused by name)
        vlt_model vm;
        assert_int_equal(vlt_model_create(&vm, &ma.cfg, 1), VLT_OK);
        assert_string_equal(vlt_model_kind(&vm), VLT_ALBEF_VQA_KIND);
        assert_null(vlt_model_gpu_unsupported(&vm));
        vlt_model_free(&vm);
        vlt_adamw *oa = optimizer(&ma.params), *ob = optimizer(&mb.params);
        avqa_batch b = avqa_read(dir, ma.cfg.albef.vqa.k_test);
        for (int step = 1; step <= 3; step++) {
            vlt_albef_vqa_set_device_path(false);
            vlt_tensor *la = avqa_step(&ma, &b.in, step < 3);
            vlt_albef_vqa_set_device_path(true);
            vlt_tensor *lb = avqa_step(&mb, &b.in, step < 3);
            vlt_albef_vqa_set_device_path(false);
            assert_same_bits("loss", lb, la);
            int n = 0;
            for (int i = 0; step < 3 && i < ma.params.n; i++)
                if (ma.params.t[i]->requires_grad) {
                    assert_same_bits(ma.params.t[i]->name, mb.params.t[i]->grad, ma.params.t[i]->grad);
                    n++;
                }
            print_message("%s step %d: loss %.7f (distill %d), %d gradients: the same bits both ways\n", dir, step,
                          vlt_f32(la)[0], ma.distill, n);
            if (step < 3) {
                assert_int_equal(vlt_adamw_step(oa, 1e-3f), VLT_OK);
                assert_int_equal(vlt_adamw_step(ob, 1e-3f), VLT_OK);
                vlt_albef_vqa_after_step(&ma);
                vlt_albef_vqa_after_step(&mb);
            }
            vlt_step_reset();
        }
        for (int i = 0; i < ma.params.n; i++) assert_same_bits(ma.params.t[i]->name, mb.params.t[i], ma.params.t[i]);
        int B = b.in.question_ids->shape[0], K = b.k;
        int32_t ia[64], ib[64];
        float pa[64], pb[64];
        assert_true(B * K <= 64);
        avqa_rank(&ma, &b.in, &b, ia, pa);
        vlt_albef_vqa_set_device_path(true);
        avqa_rank(&mb, &b.in, &b, ib, pb);
        vlt_albef_vqa_set_device_path(false);
        assert_memory_equal(ia, ib, sizeof(int32_t) * (size_t)B * K);
        assert_memory_equal(pa, pb, sizeof(float) * (size_t)B * K);
        print_message("%s: %d tensors after three forwards, the ranking of %d questions x top %d (best %d, p %.5f): the "
                      "same bits both ways\n", dir, ma.params.n, B, K, ia[0], pa[0]);
        avqa_free_batch(&b);
        vlt_adamw_free(oa);
        vlt_adamw_free(ob);
        vlt_albef_vqa_free(&ma);
        vlt_albef_vqa_free(&mb);
    }
}

static void test_albef_vqa_step_matches_cpu(void **state) {
    (void)state;
    NEED_GPU();
    for (size_t f = 0; f < sizeof AVQA_FIXTURES / sizeof *AVQA_FIXTURES; f++) {
        const char *dir = AVQA_FIXTURES[f];
        vlt_albef_vqa mc, md;
        avqa_load(&mc, dir);
        avqa_load(&md, dir);
        if (vlt_params_move(&md.params, VLT_CUDA) != VLT_OK) fail_msg("%s", vlt_error_message());
        assert_int_equal(md.dec.decoder_w_alias->device, VLT_CUDA);   // tied aliases follow their owners
        assert_ptr_equal(md.dec.decoder_w_alias->data, md.dec.word_emb->data);
        assert_ptr_equal(md.dec.decoder_b_alias->data, md.dec.mlm_bias->data);
        vlt_adamw *oc = optimizer(&mc.params), *od = optimizer(&md.params);
        avqa_batch b = avqa_read(dir, mc.cfg.albef.vqa.k_test);
        vlt_albef_vqa_inputs dv = avqa_on_gpu(&b.in);
        double worst = 0;
        print_message("%s (distill %d):\n", dir, mc.distill);
        for (int step = 1; step <= 3; step++) {
            vlt_tensor *lc = avqa_step(&mc, &b.in, step < 3);
            use(VLT_CUDA);
            vlt_tensor *ld = avqa_step(&md, &dv, step < 3);
            use(VLT_CPU);
            scalar_close("loss", ld, lc);
            if (step < 3) {
                int n = close_grads(&mc.params, &md.params, &worst);
                print_message("  step %d: %d gradients within tolerance\n", step, n);
                assert_int_equal(vlt_adamw_step(oc, 1e-3f), VLT_OK);
                assert_int_equal(vlt_adamw_step(od, 1e-3f), VLT_OK);
                vlt_albef_vqa_after_step(&mc);
                vlt_albef_vqa_after_step(&md);
            }
            vlt_step_reset();
        }
        int nf = 0;
        for (int i = 0; i < mc.params.n; i++) {
            vlt_tensor *tc = mc.params.t[i], *td = md.params.t[i];
            assert_int_equal(td->device, VLT_CUDA);
            if (tc->dtype == VLT_I32) {
                assert_int_equal(bits_differ(td, tc), 0);
                continue;
            }
            assert_true(close_param(KEY_BIASES, tc->name, td, tc, &worst, 1e-3f, 2));
            nf++;
        }
        int B = b.in.question_ids->shape[0], K = b.k;
        int32_t ic[64], id[64];
        float pc[64], pd[64];
        assert_true(B * K <= 64);
        avqa_rank(&mc, &b.in, &b, ic, pc);
        use(VLT_CUDA);
        avqa_rank(&md, &dv, &b, id, pd);
        use(VLT_CPU);
        double pw = 0;
        for (int i = 0; i < B * K; i++) pw = fmax(pw, fabs((double)pd[i] - pc[i]));
        print_message("  after the steps: %d tensors (momentum copies too) within tolerance, worst %.2f of it; ranking "
                      "%d questions x top %d: %s, probabilities within %.2g\n", nf, worst, B, K,
                      memcmp(ic, id, sizeof(int32_t) * (size_t)B * K) ? "DIFFERENT" : "the same candidates", pw);
        assert_memory_equal(ic, id, sizeof(int32_t) * (size_t)B * K);
        assert_true(pw <= 1e-4);
        vlt_tensor **fl[AVQA_NF];
        avqa_fields(&dv, fl);
        for (int i = 0; i < AVQA_NF; i++) vlt_tensor_free(*fl[i]);
        avqa_free_batch(&b);
        vlt_adamw_free(oc);
        vlt_adamw_free(od);
        vlt_albef_vqa_free(&mc);
        vlt_albef_vqa_free(&md);
    }
}

static int teardown(void **state) {
    (void)state;
    vlt_vqa_set_device_path(false);
    vlt_albef_vqa_set_device_path(false);
    vlt_set_default_device(VLT_CPU);
    vlt_step_reset();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_classifier_device_path_gives_host_bits, teardown),
        cmocka_unit_test_teardown(test_classifier_concat_step_matches_cpu, teardown),
        cmocka_unit_test_teardown(test_classifier_tokens_step_matches_cpu, teardown),
        cmocka_unit_test_teardown(test_albef_vqa_device_path_gives_host_bits, teardown),
        cmocka_unit_test_teardown(test_albef_vqa_step_matches_cpu, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    vlt_cuda_shutdown();
    return rc;
}
