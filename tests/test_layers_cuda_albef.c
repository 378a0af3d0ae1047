// ALBEF's state updates and step on the GPU against the CPU (issue 15's GPU part, issue 17's
// "every model on the GPU"):
//   - the momentum EMA (autograd/momentum.c: one multi-tensor launch over every pair on the GPU)
//     gives the host loop's bits: m·mu and o·(1 − mu) each rounded, then the sum, no FMA, on
//     tensors crossing the launch's 64K-element chunks;
//   - the feature-queue update writes the rows as columns at the pointer, wrapping, and advances
//     it (also with more rows than the queue holds, and a pointer out of range): checked on the
//     host against the written-out expectation (runs without a GPU) and on the GPU against the
//     host bit for bit;
//   - a whole ALBEF step (tests/data/albef/tiny: the parity fixture's config, weights and batch) on
//     both devices, three steps with AdamW: step 1 with the fixture's MLM masks and negatives, step
//     2 with both drawn (on the host, from the GPU's similarities), step 3's forward (applying the
//     second EMA); the loss terms, ITM / MLM accuracies, every gradient, and afterwards every
//     tensor of the table (weights, momentum copies, queues, temp) agree per tensor within
//     max |gpu − cpu| <= 1e-4 + 1e-3 · max |cpu| (fp32 products on both sides: summation order
//     through 4 + 2 layers and three optimizer steps), queue_ptr exactly. The batch goes in on
//     the device, as the trainer sends it.
//   - with VLT_ALBEF_BENCH=1 (scripts/gpu_check.sh sets it): the time of one training step of the
//     paper's config (configs/model/albef_ViT-B-16.json) at batch 64 in bf16, as
//     scripts/bench/albef_step_torch.py times PyTorch's (forward with the queue of 65,536, drawn
//     masks and hard negatives, backward, AdamW, EMA and enqueue); the median of 10 steps after 3.
// The GPU cases print "skipped: no GPU" and are reported as skipped without one.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "autograd/device.h"
#include "autograd/momentum.h"
#include "autograd/ops.h"
#include "autograd/optim.h"
#include "autograd/rng.h"
#include "checkpoints/safetensors.h"
#include "layers/albef.h"
#include "tests/cuda_compare.h"
#include "tests/fixture_io.h"

static vlt_tensor *randn(int ndim, const int *shape, const char *name, uint64_t seed) {
    vlt_tensor *t = vlt_tensor_new(VLT_F32, VLT_CPU, ndim, shape, name);
    assert_non_null(t);
    vlt_rng_fill_normal(vlt_f32(t), (size_t)t->numel, 0.0f, 1.0f, seed, vlt_rng_hash_str(name), 0);
    return t;
}

// ---- the EMA ----
// The host loop against its formula, written out (runs without a GPU): the reference the GPU
// kernel is held to.
static void test_ema_host_is_the_formula(void **state) {
    (void)state;
    vlt_tensor *o = randn(1, VLT_SHAPE(1000), "online", 1), *m = randn(1, VLT_SHAPE(1000), "momentum", 2);
    float before[1000];
    memcpy(before, vlt_f32(m), sizeof before);
    const float mu = 0.995f, om = (float)(1.0 - (double)mu);
    assert_int_equal(vlt_ema_update(&o, &m, 1, mu), VLT_OK);
    for (int j = 0; j < 1000; j++) {
        volatile float a = before[j] * mu, b = vlt_f32(o)[j] * om;   // each product rounded
        float want = a + b;
        assert_memory_equal(&vlt_f32(m)[j], &want, sizeof want);
    }
    // shapes and devices are checked
    vlt_tensor *small = randn(1, VLT_SHAPE(999), "small", 3);
    assert_int_equal(vlt_ema_update(&o, &small, 1, mu), VLT_ERR_SHAPE);
    vlt_tensor_free(small);
    vlt_tensor_free(o);
    vlt_tensor_free(m);
}

// Several pairs (one of them over two 64K-element chunks, one of one element) in one launch:
// the same bits as the host, over several updates (errors would compound), and mu values whose
// products an FMA would round differently.
static void test_ema_gpu_matches_host_bits(void **state) {
    (void)state;
    NEED_GPU();
    enum { NP = 4 };
    const int sizes[NP] = {70000, 1, 4099, 65536};
    vlt_tensor *oh[NP], *mh[NP], *od[NP], *md[NP];
    for (int i = 0; i < NP; i++) {
        char n[32];
        snprintf(n, sizeof n, "online%d", i);
        oh[i] = randn(1, VLT_SHAPE(sizes[i]), n, 10 + i);
        snprintf(n, sizeof n, "momentum%d", i);
        mh[i] = randn(1, VLT_SHAPE(sizes[i]), n, 20 + i);
        od[i] = on_gpu(oh[i]);
        md[i] = on_gpu(mh[i]);
    }
    const float mus[3] = {0.995f, 0.9f, 0.333333f};
    for (int r = 0; r < 6; r++) {
        float mu = mus[r % 3];
        assert_int_equal(vlt_ema_update(oh, mh, NP, mu), VLT_OK);
        assert_int_equal(vlt_ema_update(od, md, NP, mu), VLT_OK);
        // the online side moves too, as training would move it
        for (int i = 0; i < NP; i++) {
            for (int64_t j = 0; j < oh[i]->numel; j++) vlt_f32(oh[i])[j] += 0.01f * (float)((j * 7 + r) % 13 - 6);
            assert_int_equal(vlt_tensor_copy(od[i], oh[i]), VLT_OK);
        }
    }
    int64_t differ = 0, total = 0;
    for (int i = 0; i < NP; i++) {
        differ += bits_differ(md[i], mh[i]);
        total += mh[i]->numel;
    }
    print_message("EMA, %d pairs (%lld elements), 6 updates: %lld elements differ from the host in any bit\n", NP,
                  (long long)total, (long long)differ);
    assert_int_equal(differ, 0);
    // a pair split across devices is refused by name
    assert_int_equal(vlt_ema_update(&oh[0], &md[0], 1, 0.9f), VLT_ERR_DEVICE);
    for (int i = 0; i < NP; i++) {
        vlt_tensor_free(oh[i]);
        vlt_tensor_free(mh[i]);
        vlt_tensor_free(od[i]);
        vlt_tensor_free(md[i]);
    }
}

// ---- the queue ----
typedef struct {
    vlt_tensor *q[2], *r[2], *ptr;
} queues;

static void make_queues(queues *s, int E, int Q, int n, int ptr) {
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "queue%d", k);
        s->q[k] = randn(2, VLT_SHAPE(E, Q), name, 30 + k);
        snprintf(name, sizeof name, "rows%d", k);
        s->r[k] = randn(2, VLT_SHAPE(n, E), name, 40 + k);
    }
    s->ptr = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(1), "queue_ptr");
    assert_non_null(s->ptr);
    vlt_i32(s->ptr)[0] = ptr;
}

static void free_queues(queues *s) {
    for (int k = 0; k < 2; k++) {
        vlt_tensor_free(s->q[k]);
        vlt_tensor_free(s->r[k]);
    }
    vlt_tensor_free(s->ptr);
}

// Column c of queue k after enqueuing rows r (n, E) at ptr p: the last row i with (p + i) mod Q ==
// c, else the old column.
static void check_host_queue(const queues *s, const float *old0, const float *old1, int E, int Q, int n, int p) {
    const float *old[2] = {old0, old1};
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < Q; c++) {
            int src = -1;
            for (int i = 0; i < n; i++)
                if ((p + i) % Q == c) src = i;
            for (int e = 0; e < E; e++) {
                float want = src < 0 ? old[k][(size_t)e * Q + c] : vlt_f32(s->r[k])[(size_t)src * E + e];
                assert_memory_equal(&vlt_f32(s->q[k])[(size_t)e * Q + c], &want, sizeof want);
            }
        }
}

static void test_queue_host_wraps(void **state) {
    (void)state;
    // E, Q, n, pointer before, pointer after
    const int cases[][5] = {{4, 10, 3, 2, 5}, {4, 10, 5, 7, 2}, {3, 8, 13, 6, 3}, {5, 6, 2, 9, 2}, {2, 4, 0, 1, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int E = cases[c][0], Q = cases[c][1], n = cases[c][2], p = cases[c][3];
        queues s;
        make_queues(&s, E, Q, n > 0 ? n : 1, p);
        float *old0 = malloc(sizeof(float) * (size_t)E * Q), *old1 = malloc(sizeof(float) * (size_t)E * Q);
        memcpy(old0, vlt_f32(s.q[0]), sizeof(float) * (size_t)E * Q);
        memcpy(old1, vlt_f32(s.q[1]), sizeof(float) * (size_t)E * Q);
        assert_int_equal(vlt_queue_enqueue(s.q, s.r, 2, n, s.ptr), VLT_OK);
        check_host_queue(&s, old0, old1, E, Q, n, p >= Q ? 0 : p);   // a pointer out of range reads as 0
        assert_int_equal(vlt_i32(s.ptr)[0], cases[c][4]);
        free(old0);
        free(old1);
        free_queues(&s);
    }
    // shapes are checked, by name
    queues s;
    make_queues(&s, 4, 10, 3, 0);
    assert_int_equal(vlt_queue_enqueue(s.q, s.r, 2, 4, s.ptr), VLT_ERR_SHAPE);   // 4 rows of 3
    assert_non_null(strstr(vlt_error_message(), "rows0"));
    free_queues(&s);
}

static void test_queue_gpu_matches_host(void **state) {
    (void)state;
    NEED_GPU();
    // E, Q, n, pointer: no wrap, a wrap, more rows than the queue (the last Q win), ALBEF's shape
    const int cases[][4] = {{4, 10, 3, 2}, {4, 10, 5, 7}, {3, 8, 13, 6}, {256, 1024, 64, 992}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int E = cases[c][0], Q = cases[c][1], n = cases[c][2], p = cases[c][3];
        queues h, d;
        make_queues(&h, E, Q, n, p);
        for (int k = 0; k < 2; k++) {
            d.q[k] = on_gpu(h.q[k]);
            d.r[k] = on_gpu(h.r[k]);
        }
        d.ptr = on_gpu(h.ptr);
        for (int round = 0; round < 3; round++) {   // the pointer stays on the device between rounds
            assert_int_equal(vlt_queue_enqueue(h.q, h.r, 2, n, h.ptr), VLT_OK);
            assert_int_equal(vlt_queue_enqueue(d.q, d.r, 2, n, d.ptr), VLT_OK);
        }
        int64_t differ = bits_differ(d.q[0], h.q[0]) + bits_differ(d.q[1], h.q[1]) + bits_differ(d.ptr, h.ptr);
        print_message("queue E %d Q %d, 3 x %d rows from %d: pointer %d, %lld elements differ from the host\n", E, Q,
                      n, p, vlt_i32(h.ptr)[0], (long long)differ);
        assert_int_equal(differ, 0);
        free_queues(&h);
        free_queues(&d);
    }
}

// ---- a whole step ----
#define FIX "tests/data/albef/tiny/"

// The key biases for close_param (BERT's key.bias, DeiT's qkv.bias whose k third): the tensors
// (and momentum copies) after the steps are held to AdamW's bound, the rest to close_tensor's.
static const char *const KEY_BIASES[] = {"key.bias", "qkv.bias", NULL};

static void load_model(vlt_albef *m) {
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load(FIX "config.json", &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    // ids for the drawn MLM masks (the fixture's vocabulary of 100 has none of its own)
    cfg.albef.cls_token_id = 1;
    cfg.albef.sep_token_id = 2;
    cfg.albef.mask_token_id = 3;
    if (vlt_albef_init(m, &cfg, 7) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_st_report rep;
    if (vlt_safetensors_load_params(FIX "weights.safetensors", &m->params, false, &rep) != VLT_OK)
        fail_msg("%s", vlt_error_message());
    vlt_st_report_free(&rep);
}

static vlt_adamw *optimizer(vlt_albef *m) {
    vlt_tensor *p[4096];
    int n = 0;
    for (int i = 0; i < m->params.n; i++)
        if (m->params.t[i]->requires_grad) p[n++] = m->params.t[i];
    vlt_adamw_cfg c = vlt_adamw_defaults();
    c.weight_decay = 0.02f;
    vlt_adamw *o = vlt_adamw_new(p, NULL, n, c);
    if (!o) fail_msg("%s", vlt_error_message());
    return o;
}

// One step on one model: forward (given or drawn masks and negatives), then (unless only_forward)
// backward, AdamW and after_step; the outputs stay until the caller's vlt_step_reset.
static void run_step(vlt_albef *m, const vlt_albef_inputs *in, vlt_albef_output *out, bool only_forward) {
    if (vlt_albef_forward(m, in, out) != VLT_OK) fail_msg("forward: %s", vlt_error_message());
    if (only_forward) return;
    vlt_zero_grad(m->params.t, m->params.n);
    if (vlt_backward(out->loss) != VLT_OK) fail_msg("backward: %s", vlt_error_message());
}

// The fixture's batch as host tensors (the negatives are i64 vectors in the file).
static void read_batch(vlt_safetensors *io, vlt_albef_inputs *in, vlt_tensor **neg) {
    *in = (vlt_albef_inputs){.images = read_f32(io, "image"), .ids = read_ids(io, "text_ids"),
                             .atts = read_ids(io, "text_atts"), .mlm_ids = read_ids(io, "mlm_ids"),
                             .mlm_labels = read_ids(io, "mlm_labels"), .alpha = 0.4f, .step = 1};
    int B = in->ids->shape[0];
    const char *nn[2] = {"neg_image_idx", "neg_text_idx"};
    assert_true(B <= 256);
    for (int k = 0; k < 2; k++) {
        int64_t v[256];
        assert_int_equal(vlt_safetensors_read_i64(io, nn[k], v, B), VLT_OK);
        neg[k] = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(B), nn[k]);
        for (int b = 0; b < B; b++) vlt_i32(neg[k])[b] = (int32_t)v[b];
    }
    in->neg_image_idx = neg[0];
    in->neg_text_idx = neg[1];
}

static void free_batch(vlt_albef_inputs *in, vlt_tensor **neg) {
    vlt_tensor *t[] = {in->images, in->ids, in->atts, in->mlm_ids, in->mlm_labels, neg[0], neg[1]};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) vlt_tensor_free(t[i]);
}

// Without a GPU: the GPU branch's formulation of the step (vlt_albef_set_device_path) run on the
// host gives the host path's bits: losses, accuracies, every gradient over two steps (the
// fixture's masks and negatives, then drawn ones; the batch has pad tokens, so BERT's pad-row
// handling is exercised), and every tensor of the table after them. What this leaves to the GPU
// run is the kernels themselves.
static void test_device_path_on_the_host_gives_host_bits(void **state) {
    (void)state;
    vlt_albef ma, mb;
    load_model(&ma);
    load_model(&mb);
    vlt_adamw *oa = optimizer(&ma), *ob = optimizer(&mb);
    vlt_safetensors *io;
    assert_int_equal(vlt_safetensors_open(FIX "io.safetensors", &io), VLT_OK);
    vlt_albef_inputs in;
    vlt_tensor *neg[2];
    read_batch(io, &in, neg);
    bool any_pad = false;
    for (int64_t i = 0; i < in.ids->numel; i++) any_pad |= vlt_i32(in.ids)[i] == 0;
    assert_true(any_pad);
    vlt_albef_inputs drawn = in;
    drawn.mlm_ids = drawn.mlm_labels = drawn.neg_image_idx = drawn.neg_text_idx = NULL;
    for (int step = 1; step <= 3; step++) {
        vlt_albef_inputs *x = step == 1 ? &in : &drawn;
        x->step = (uint64_t)step;
        vlt_albef_output a, b;
        vlt_albef_set_device_path(false);
        run_step(&ma, x, &a, step == 3);
        vlt_albef_set_device_path(true);
        run_step(&mb, x, &b, step == 3);
        vlt_albef_set_device_path(false);
        assert_same_bits("loss_itc", b.loss_itc, a.loss_itc);
        assert_same_bits("loss_itm", b.loss_itm, a.loss_itm);
        assert_same_bits("loss_mlm", b.loss_mlm, a.loss_mlm);
        assert_true(a.itm_acc == b.itm_acc && a.mlm_acc == b.mlm_acc && a.mlm_count == b.mlm_count);
        print_message("step %d: loss %.7f (itc %.7f, itm %.7f, mlm %.7f), itm acc %.3f, mlm acc %.3f of %d: the same "
                      "bits both ways\n", step, vlt_f32(a.loss)[0], vlt_f32(a.loss_itc)[0], vlt_f32(a.loss_itm)[0],
                      vlt_f32(a.loss_mlm)[0], a.itm_acc, a.mlm_acc, a.mlm_count);
        if (step < 3) {
            for (int i = 0; i < ma.params.n; i++)
                if (ma.params.t[i]->requires_grad) assert_same_bits(ma.params.t[i]->name, mb.params.t[i]->grad,
                                                                    ma.params.t[i]->grad);
            assert_int_equal(vlt_adamw_step(oa, 1e-3f), VLT_OK);
            assert_int_equal(vlt_adamw_step(ob, 1e-3f), VLT_OK);
            vlt_albef_after_step(&ma);
            vlt_albef_after_step(&mb);
        }
        vlt_step_reset();
    }
    for (int i = 0; i < ma.params.n; i++) assert_same_bits(ma.params.t[i]->name, mb.params.t[i], ma.params.t[i]);
    free_batch(&in, neg);
    vlt_adamw_free(oa);
    vlt_adamw_free(ob);
    vlt_safetensors_close(io);
    vlt_albef_free(&ma);
    vlt_albef_free(&mb);
}

static vlt_tensor *dev_copy(vlt_tensor *t) { return t ? on_gpu(t) : NULL; }

static void test_albef_step_matches_cpu(void **state) {
    (void)state;
    NEED_GPU();
    vlt_albef mc, md;
    load_model(&mc);
    load_model(&md);
    assert_int_equal(vlt_params_move(&md.params, VLT_CUDA), VLT_OK);
    vlt_adamw *oc = optimizer(&mc), *od = optimizer(&md);
    vlt_safetensors *io;
    assert_int_equal(vlt_safetensors_open(FIX "io.safetensors", &io), VLT_OK);
    vlt_albef_inputs hc = {
        .images = read_f32(io, "image"), .ids = read_ids(io, "text_ids"), .atts = read_ids(io, "text_atts"),
        .mlm_ids = read_ids(io, "mlm_ids"), .mlm_labels = read_ids(io, "mlm_labels"), .alpha = 0.4f, .step = 1};
    vlt_albef_inputs hd = hc;
    hd.images = dev_copy(hc.images);
    hd.ids = dev_copy(hc.ids);
    hd.atts = dev_copy(hc.atts);
    hd.mlm_ids = dev_copy(hc.mlm_ids);
    hd.mlm_labels = dev_copy(hc.mlm_labels);
    // the fixture's negatives are (B) vectors of i64
    int B = hc.ids->shape[0];
    vlt_tensor *neg[2];
    const char *nn[2] = {"neg_image_idx", "neg_text_idx"};
    for (int k = 0; k < 2; k++) {
        int64_t v[256];
        assert_true(B <= 256);
        assert_int_equal(vlt_safetensors_read_i64(io, nn[k], v, B), VLT_OK);
        neg[k] = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(B), nn[k]);
        for (int b = 0; b < B; b++) vlt_i32(neg[k])[b] = (int32_t)v[b];
    }
    hc.neg_image_idx = neg[0];
    hc.neg_text_idx = neg[1];
    hd.neg_image_idx = dev_copy(neg[0]);
    hd.neg_text_idx = dev_copy(neg[1]);
    vlt_tensor *dv[7] = {hd.images, hd.ids, hd.atts, hd.mlm_ids, hd.mlm_labels, hd.neg_image_idx, hd.neg_text_idx};
    vlt_tensor *mlm_c[2] = {hc.mlm_ids, hc.mlm_labels};
    double worst = 0;
    for (int step = 1; step <= 3; step++) {
        if (step == 2) {   // drawn from here on: masks from the ids, negatives from the similarities
            hc.mlm_ids = hc.mlm_labels = hc.neg_image_idx = hc.neg_text_idx = NULL;
            hd.mlm_ids = hd.mlm_labels = hd.neg_image_idx = hd.neg_text_idx = NULL;
        }
        hc.step = hd.step = (uint64_t)step;
        print_message("step %d (%s):\n", step, step == 1 ? "the fixture's masks and negatives" : "drawn");
        vlt_albef_output c, d;
        run_step(&mc, &hc, &c, step == 3);
        run_step(&md, &hd, &d, step == 3);
        scalar_close("loss_itc", d.loss_itc, c.loss_itc);
        scalar_close("loss_itm", d.loss_itm, c.loss_itm);
        scalar_close("loss_mlm", d.loss_mlm, c.loss_mlm);
        scalar_close("loss", d.loss, c.loss);
        assert_int_equal(d.mlm_count, c.mlm_count);
        // the accuracies count argmaxes: a near tie may go the other way on one row, not more
        print_message("  itm_acc cpu %.4f gpu %.4f, mlm_acc cpu %.4f gpu %.4f (of %d)\n", c.itm_acc, d.itm_acc, c.mlm_acc,
                      d.mlm_acc, c.mlm_count);
        assert_true(fabsf(d.itm_acc - c.itm_acc) <= 1.0f / (3 * B) + 1e-6f);
        assert_true(c.mlm_count == 0 || fabsf(d.mlm_acc - c.mlm_acc) <= 1.0f / c.mlm_count + 1e-6f);
        assert_true(close_tensor("image_feat", d.image_feat, c.image_feat, &worst));
        assert_true(close_tensor("text_feat", d.text_feat, c.text_feat, &worst));
        if (step < 3) {
            int n = close_grads(&mc.params, &md.params, &worst);
            print_message("  %d gradients within tolerance\n", n);
            assert_int_equal(vlt_adamw_step(oc, 1e-3f), VLT_OK);
            assert_int_equal(vlt_adamw_step(od, 1e-3f), VLT_OK);
            vlt_albef_after_step(&mc);
            vlt_albef_after_step(&md);
        }
        vlt_step_reset();
    }
    // the whole table after three EMAs and two enqueues
    int nf = 0;
    for (int i = 0; i < mc.params.n; i++) {
        vlt_tensor *tc = mc.params.t[i], *td = md.params.t[i];
        assert_string_equal(tc->name, td->name);
        assert_int_equal(td->device, VLT_CUDA);
        if (tc->dtype == VLT_I32) {
            assert_int_equal(bits_differ(td, tc), 0);
            continue;
        }
        assert_true(close_param(KEY_BIASES, tc->name, td, tc, &worst, 1e-3f, 2));
        nf++;
    }
    print_message("table after the steps: %d tensors (weights, momentum copies, queues, temp) within tolerance, "
                  "queue_ptr %d on both; worst difference %.2f of the tolerance\n",
                  nf, vlt_i32(mc.queue_ptr)[0], worst);
    vlt_tensor *in[] = {hc.images, hc.ids, hc.atts, neg[0], neg[1], dv[0], dv[1], dv[2], dv[3], dv[4], dv[5], dv[6]};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) vlt_tensor_free(in[i]);
    vlt_tensor_free(mlm_c[0]);
    vlt_tensor_free(mlm_c[1]);
    vlt_adamw_free(oc);
    vlt_adamw_free(od);
    vlt_safetensors_close(io);
    vlt_albef_free(&mc);
    vlt_albef_free(&md);
}

// ---- the step time of the paper's config ----
static int env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_albef_paper_step_time(void **state) {
    (void)state;
    NEED_GPU();
    if (!getenv("VLT_ALBEF_BENCH") || strcmp(getenv("VLT_ALBEF_BENCH"), "1")) {
        printf("skipped: VLT_ALBEF_BENCH=1 not set (the paper-config timing of scripts/gpu_check.sh)\n");
        skip();
    }
    const int B = env_int("VLT_ALBEF_BENCH_BATCH", 64), steps = env_int("VLT_ALBEF_BENCH_STEPS", 10), warm = 3, T = 25;
    vlt_model_cfg cfg;
    if (vlt_model_cfg_load("configs/model/albef_ViT-B-16.json", &cfg) != VLT_OK) fail_msg("%s", vlt_error_message());
    double t0 = now_s();
    vlt_albef m;
    if (vlt_albef_init(&m, &cfg, 1) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_params_move(&m.params, VLT_CUDA), VLT_OK);
    assert_int_equal(vlt_set_matmul_precision(VLT_MATMUL_BF16), VLT_OK);
    vlt_adamw_cfg oc = vlt_adamw_defaults();
    oc.weight_decay = 0.02f;
    vlt_tensor *tp[4096];
    int np = 0;
    for (int i = 0; i < m.params.n; i++)
        if (m.params.t[i]->requires_grad) tp[np++] = m.params.t[i];
    vlt_adamw *opt = vlt_adamw_new(tp, NULL, np, oc);
    assert_non_null(opt);
    // the torch script's batch: lengths in [8, 25], [CLS] words [SEP] [PAD]..., random images
    int S = cfg.albef.image_res, V = cfg.bert.vocab_size;
    vlt_tensor *img = randn(4, VLT_SHAPE(B, 3, S, S), "images", 9), *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2,
                                                                                          VLT_SHAPE(B, T), "ids");
    vlt_tensor *img_d = on_gpu(img);
    for (int b = 0; b < B; b++) {
        int n = 8 + (int)vlt_rng_below(5, 1, (uint64_t)b, (uint64_t)(T - 7));
        for (int t = 0; t < T; t++) {
            int32_t v = 999 + (int32_t)vlt_rng_below(5, 2, (uint64_t)(b * T + t), (uint64_t)(V - 999));
            vlt_i32(ids)[b * T + t] = t == 0 ? 101 : t == n - 1 ? 102 : t < n ? v : 0;
        }
    }
    print_message("paper config: %d trainable tensors, set up in %.1f s\n", np, now_s() - t0);
    double *ms = calloc((size_t)steps, sizeof(double)), total = 0;
    float loss = 0;
    for (int s = 0; s < warm + steps; s++) {
        vlt_device_synchronize();
        double a = now_s();
        vlt_albef_inputs in = {.images = img_d, .ids = ids, .alpha = 0.4f, .step = (uint64_t)s + 1};
        vlt_albef_output out;
        if (vlt_albef_forward(&m, &in, &out) != VLT_OK) fail_msg("step %d: %s", s, vlt_error_message());
        vlt_zero_grad(m.params.t, m.params.n);
        if (vlt_backward(out.loss) != VLT_OK) fail_msg("step %d: %s", s, vlt_error_message());
        loss = vlt_tensor_item(out.loss, 0);
        assert_int_equal(vlt_adamw_step(opt, 1e-4f), VLT_OK);
        vlt_albef_after_step(&m);
        vlt_step_reset();
        vlt_device_synchronize();
        if (s >= warm) total += ms[s - warm] = (now_s() - a) * 1e3;
    }
    assert_true(isfinite(loss));
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    double med = ms[steps / 2];
    print_message("ALBEF step (paper, batch %d, vlt bf16): %.1f ms/step median (mean %.1f, %.1f .. %.1f), last loss "
                  "%.4f, device arena %.2f GiB\n", B, med, total / steps, ms[0], ms[steps - 1], loss,
                  vlt_cuda_arena_bytes() / 1073741824.0);
    printf("{\"impl\": \"vlt\", \"config\": \"paper\", \"batch\": %d, \"precision\": \"bf16\", \"ms_per_step_median\": %.2f, "
           "\"ms_per_step_mean\": %.2f, \"images_per_s\": %.1f, \"arena_gib\": %.3f}\n", B, med, total / steps,
           B * 1e3 / med, vlt_cuda_arena_bytes() / 1073741824.0);
    free(ms);
    vlt_set_matmul_precision(VLT_MATMUL_FP32);
    vlt_adamw_free(opt);
    vlt_tensor_free(img);
    vlt_tensor_free(img_d);
    vlt_tensor_free(ids);
    vlt_albef_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ema_host_is_the_formula),
        cmocka_unit_test(test_queue_host_wraps),
        cmocka_unit_test(test_device_path_on_the_host_gives_host_bits),
        cmocka_unit_test(test_ema_gpu_matches_host_bits),
        cmocka_unit_test(test_queue_gpu_matches_host),
        cmocka_unit_test(test_albef_step_matches_cpu),
        cmocka_unit_test(test_albef_paper_step_time),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    vlt_cuda_shutdown();
    return rc;
}
