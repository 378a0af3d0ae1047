// The sync-free step and its CUDA graph (issue 17): tiny CLIP (configs/model/tiny-clip.json)
// trained 5 steps eagerly the default way, and 5 steps in sync-free mode of which the last 3
// are replays of one captured graph, must give the same losses and parameters bit for bit
// (the same kernels in the same order on the same data; the embedding's owner lists come from a
// stable device sort instead of the host, the clip coefficient and AdamW's scalars from device
// memory). A bad id in sync-free mode is reported after the step with the host check's message,
// and the optimizer makes no update in that step.
//
// On the host (always): the device checks' message, decoded from a slot record, equals the
// host check's message of the same op with the same bad index; the sync-free and graph calls are
// refused without a device. GPU cases print "skipped: no GPU" without one. Written in a session
// without a GPU: the GPU cases have NOT been run yet.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/device.h"
#include "autograd/ops.h"
#include "autograd/optim.h"
#include "autograd/rng.h"
#include "autograd/tape.h"
#include "layers/clip.h"

#define CFG "configs/model/tiny-clip.json"
#define NB 8
#define STEPS 5
#define EAGER_SF 2  // sync-free eager steps before the capture

static unsigned long long rec_of(int64_t n, int64_t pos, int32_t v) {
    return ((unsigned long long)(n - pos) << 32) | (unsigned long long)(uint32_t)v;
}

static void expect_same_message(const char *host, char *dev) {
    const char *tail = " (checked on the device, reported after the step)";
    size_t n = strlen(dev), t = strlen(tail);
    assert_true(n > t);
    assert_string_equal(dev + n - t, tail);
    dev[n - t] = 0;
    assert_string_equal(dev, host);
}

static void test_device_check_messages_match_host(void **state) {
    (void)state;
    char dev[256];
    // embedding: id 12 at position 3 of a 10-row table
    vlt_tensor *w = vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(10, 4), "tok.weight");
    vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(6), "ids");
    for (int i = 0; i < 6; i++) vlt_i32(ids)[i] = i;
    vlt_i32(ids)[3] = 12;
    assert_null(vlt_embedding(w, ids));
    vlt_step_check_message(dev, sizeof dev, 0, "tok.weight", 10, 6, rec_of(6, 3, 12));
    expect_same_message(vlt_error_message(), dev);
    // negative ids keep their sign through the record
    vlt_i32(ids)[3] = 3;
    vlt_i32(ids)[5] = -7;
    assert_null(vlt_embedding(w, ids));
    vlt_step_check_message(dev, sizeof dev, 0, "tok.weight", 10, 6, rec_of(6, 5, -7));
    expect_same_message(vlt_error_message(), dev);
    // gather_rows: index 9 of row 1 of a (2, 4, 3) input
    vlt_tensor *x = vlt_tensor_new(VLT_F32, VLT_CPU, 3, VLT_SHAPE(2, 4, 3), "x");
    vlt_tensor *idx = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(2), "idx");
    vlt_i32(idx)[0] = 1;
    vlt_i32(idx)[1] = 9;
    assert_null(vlt_gather_rows(x, idx));
    vlt_step_check_message(dev, sizeof dev, 1, "idx", 4, 2, rec_of(2, 1, 9));
    expect_same_message(vlt_error_message(), dev);
    // cross_entropy: target 5 of row 2 with 5 classes
    vlt_tensor *lg = vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(3, 5), "logits");
    vlt_tensor *tg = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(3), "targets");
    vlt_i32(tg)[0] = 0;
    vlt_i32(tg)[1] = -100;  // ignored
    vlt_i32(tg)[2] = 5;
    assert_null(vlt_cross_entropy(lg, tg, -100, 0.0f));
    vlt_step_check_message(dev, sizeof dev, 2, "targets", 5, 3, rec_of(3, 2, 5));
    expect_same_message(vlt_error_message(), dev);
    vlt_step_reset();
    vlt_tensor_free(w);
    vlt_tensor_free(ids);
    vlt_tensor_free(x);
    vlt_tensor_free(idx);
    vlt_tensor_free(lg);
    vlt_tensor_free(tg);
}

static void test_refused_without_device(void **state) {
    (void)state;
    if (vlt_cuda_available()) {
        printf("skipped: a GPU is present (this case is for machines without one)\n");
        skip();
    }
    assert_int_not_equal(vlt_set_sync_free(true), VLT_OK);
    assert_false(vlt_sync_free());
    assert_int_not_equal(vlt_graph_begin(), VLT_OK);
    void *g = (void *)1;
    assert_int_not_equal(vlt_graph_end(&g), VLT_OK);
    assert_null(g);
    assert_int_equal(vlt_set_sync_free(false), VLT_OK);
}

// Two device batches (k = 0, 1), alternating as in the benchmark.
static void make_batch(int k, vlt_tensor **images, vlt_tensor **ids) {
    vlt_tensor *im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(NB, 3, 32, 32), "images");
    vlt_rng_fill_normal(vlt_f32(im), (size_t)im->numel, 0, 1, 5, 5, (uint64_t)k);
    vlt_tensor *id = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(NB, 16), "ids");
    memset(id->data, 0, (size_t)id->numel * sizeof(int32_t));
    for (int b = 0; b < NB; b++) {
        vlt_i32(id)[b * 16] = 49406;
        for (int t = 1; t < 4 + (b + k) % 5; t++) vlt_i32(id)[b * 16 + t] = 1 + (b * 7 + t * 13 + k * 101) % 4000;
        vlt_i32(id)[b * 16 + 4 + (b + k) % 5] = 49407;  // EOT: the largest id
    }
    *images = vlt_tensor_to(im, VLT_CUDA);
    *ids = vlt_tensor_to(id, VLT_CUDA);
    assert_non_null(*images);
    assert_non_null(*ids);
    vlt_tensor_free(im);
    vlt_tensor_free(id);
}

static float *step_ops(vlt_clip *m, vlt_adamw *o, vlt_tensor *images, vlt_tensor *ids, float *norm) {
    vlt_tensor *img = vlt_clip_encode_image(m, images, true);
    vlt_tensor *txt = vlt_clip_encode_text(m, ids, true);
    vlt_tensor *loss = vlt_clip_loss(img, txt, m->logit_scale, m->logit_bias, NULL);
    if (!loss) fail_msg("forward: %s", vlt_error_message());
    vlt_zero_grad(m->params.t, m->params.n);
    assert_int_equal(vlt_backward(loss), VLT_OK);
    float nv = vlt_clip_grad_norm(m->params.t, m->params.n, 0.05f);  // small: the clip scales
    if (norm) *norm = nv;
    assert_int_equal(vlt_adamw_step(o, 1e-3f), VLT_OK);
    return vlt_f32(loss);
}

static void setup_model(vlt_clip *m, vlt_adamw **o) {
    vlt_model_cfg cfg;
    assert_int_equal(vlt_model_cfg_load(CFG, &cfg), VLT_OK);
    assert_int_equal(vlt_clip_init(m, &cfg, 11), VLT_OK);
    assert_int_equal(vlt_params_move(&m->params, VLT_CUDA), VLT_OK);
    bool *decay = malloc((size_t)m->params.n);
    vlt_clip_decay_mask(&m->params, decay);
    *o = vlt_adamw_new(m->params.t, decay, m->params.n, (vlt_adamw_cfg){0.9f, 0.98f, 1e-6f, 0.1f});
    assert_non_null(*o);
    free(decay);
}

static void test_graph_steps_equal_eager(void **state) {
    (void)state;
    if (!vlt_cuda_available()) {
        printf("skipped: no GPU\n");
        skip();
    }
    assert_int_equal(vlt_set_default_device(VLT_CUDA), VLT_OK);
    vlt_tensor *images[2], *ids[2];
    for (int k = 0; k < 2; k++) make_batch(k, &images[k], &ids[k]);
    vlt_clip a, b;
    vlt_adamw *oa, *ob;
    setup_model(&a, &oa);
    setup_model(&b, &ob);

    float la[STEPS], lb[STEPS], norm_a[STEPS];
    for (int s = 0; s < STEPS; s++) {  // the default eager path
        float *l = step_ops(&a, oa, images[s % 2], ids[s % 2], &norm_a[s]);
        vlt_device_to_host(&la[s], l, sizeof(float));
        vlt_step_reset();
    }

    assert_int_equal(vlt_set_sync_free(true), VLT_OK);
    vlt_tensor *img_g = vlt_tensor_new(VLT_F32, VLT_CUDA, 4, images[0]->shape, "images_graph");
    vlt_tensor *ids_g = vlt_tensor_new(VLT_I32, VLT_CUDA, 2, ids[0]->shape, "ids_graph");
    for (int s = 0; s < EAGER_SF; s++) {
        assert_int_equal(vlt_tensor_copy(img_g, images[s % 2]), VLT_OK);
        assert_int_equal(vlt_tensor_copy(ids_g, ids[s % 2]), VLT_OK);
        vlt_step_checks_begin();
        float nv = 0;
        float *l = step_ops(&b, ob, img_g, ids_g, &nv);
        assert_true(isnan(nv));  // the norm stayed on the device
        assert_int_equal(vlt_step_checks_report(), VLT_OK);
        float dn = vlt_last_grad_norm();
        assert_memory_equal(&dn, &norm_a[s], sizeof dn);
        vlt_device_to_host(&lb[s], l, sizeof(float));
        vlt_step_reset();
    }
    // capture step EAGER_SF (nothing runs), then replay it for the remaining steps
    uint64_t allocs = vlt_cuda_arena_allocs();
    assert_int_equal(vlt_graph_begin(), VLT_OK);
    vlt_step_checks_begin();
    float *loss_dev = step_ops(&b, ob, img_g, ids_g, NULL);
    void *graph = NULL;
    vlt_status st = vlt_graph_end(&graph);
    if (st != VLT_OK) fail_msg("capture: %s", vlt_error_message());
    assert_int_equal(vlt_cuda_arena_allocs(), allocs);  // the graph's addresses stay the arena's
    printf("captured graph: %zu nodes\n", vlt_graph_nodes());
    assert_true(vlt_graph_nodes() > 0);
    ob->t--;  // the captured optimizer step has not run
    vlt_step_reset();
    for (int s = EAGER_SF; s < STEPS; s++) {
        assert_int_equal(vlt_tensor_copy(img_g, images[s % 2]), VLT_OK);
        assert_int_equal(vlt_tensor_copy(ids_g, ids[s % 2]), VLT_OK);
        vlt_adamw_advance(ob, 1e-3f);
        assert_int_equal(vlt_graph_launch(graph), VLT_OK);
        assert_int_equal(vlt_step_checks_report(), VLT_OK);
        vlt_device_to_host(&lb[s], loss_dev, sizeof(float));
        float dn = vlt_last_grad_norm();
        assert_memory_equal(&dn, &norm_a[s], sizeof dn);
    }
    vlt_graph_free(graph);
    assert_int_equal(vlt_set_sync_free(false), VLT_OK);
    for (int s = 0; s < STEPS; s++) {
        printf("step %d: eager loss %.9g, sync-free/graph loss %.9g\n", s, la[s], lb[s]);
        assert_memory_equal(&la[s], &lb[s], sizeof(float));
    }
    assert_int_equal(oa->t, ob->t);
    int differ = 0;
    for (int i = 0; i < a.params.n; i++) {
        vlt_tensor *ha = vlt_tensor_to(a.params.t[i], VLT_CPU), *hb = vlt_tensor_to(b.params.t[i], VLT_CPU);
        if (memcmp(ha->data, hb->data, (size_t)ha->numel * sizeof(float)) != 0) {
            fprintf(stderr, "parameter %s differs\n", a.params.t[i]->name);
            differ++;
        }
        vlt_tensor_free(ha);
        vlt_tensor_free(hb);
    }
    assert_int_equal(differ, 0);
    vlt_tensor_free(img_g);
    vlt_tensor_free(ids_g);
    for (int k = 0; k < 2; k++) { vlt_tensor_free(images[k]); vlt_tensor_free(ids[k]); }
    vlt_adamw_free(oa);
    vlt_adamw_free(ob);
    vlt_clip_free(&a);
    vlt_clip_free(&b);
    assert_int_equal(vlt_set_default_device(VLT_CPU), VLT_OK);
}

// A bad id in sync-free mode: the step runs (no fault: the kernels read a sanitised copy), the
// report names the first bad id and position as the host check would, and AdamW leaves the
// table alone.
static void test_sync_free_bad_id_reported(void **state) {
    (void)state;
    if (!vlt_cuda_available()) {
        printf("skipped: no GPU\n");
        skip();
    }
    vlt_tensor *wh = vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(10, 4), "tok.weight");
    for (int i = 0; i < 40; i++) vlt_f32(wh)[i] = 0.1f * (float)i;
    vlt_tensor *idh = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(8), "ids");
    for (int i = 0; i < 8; i++) vlt_i32(idh)[i] = i % 10;
    vlt_i32(idh)[6] = -2;
    vlt_i32(idh)[3] = 12;  // the first bad position
    assert_null(vlt_embedding(wh, idh));  // the host check's message
    char host[256];
    snprintf(host, sizeof host, "%s (checked on the device, reported after the step)", vlt_error_message());
    vlt_step_reset();

    vlt_tensor *w = vlt_tensor_new_param(2, VLT_SHAPE(10, 4), "tok.weight"), *ids = vlt_tensor_to(idh, VLT_CUDA);
    assert_non_null(w);
    memcpy(w->data, wh->data, 40 * sizeof(float));
    assert_int_equal(vlt_tensor_move(w, VLT_CUDA), VLT_OK);
    vlt_adamw *o = vlt_adamw_new(&w, NULL, 1, vlt_adamw_defaults());
    assert_non_null(o);
    assert_int_equal(vlt_set_sync_free(true), VLT_OK);
    vlt_step_checks_begin();
    vlt_tensor *e = vlt_embedding(w, ids);
    assert_non_null(e);
    assert_int_equal(vlt_backward(vlt_sum_all(e)), VLT_OK);
    assert_int_equal(vlt_adamw_step(o, 0.1f), VLT_OK);
    assert_int_equal(vlt_step_checks_report(), VLT_ERR_ARG);
    assert_string_equal(vlt_error_message(), host);
    vlt_step_reset();
    vlt_tensor *after = vlt_tensor_to(w, VLT_CPU);
    assert_memory_equal(after->data, wh->data, 40 * sizeof(float));  // no update in a bad step
    // the next, good step is not blamed for the last one
    vlt_i32(idh)[3] = 3;
    vlt_i32(idh)[6] = 6;
    assert_int_equal(vlt_tensor_copy(ids, idh), VLT_OK);
    vlt_step_checks_begin();
    e = vlt_embedding(w, ids);
    assert_int_equal(vlt_backward(vlt_sum_all(e)), VLT_OK);
    assert_int_equal(vlt_adamw_step(o, 0.1f), VLT_OK);
    assert_int_equal(vlt_step_checks_report(), VLT_OK);
    vlt_step_reset();
    assert_int_equal(vlt_set_sync_free(false), VLT_OK);
    vlt_tensor_free(after);
    vlt_adamw_free(o);
    vlt_tensor_free(w);
    vlt_tensor_free(ids);
    vlt_tensor_free(wh);
    vlt_tensor_free(idh);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_check_messages_match_host),
        cmocka_unit_test(test_refused_without_device),
        cmocka_unit_test(test_graph_steps_equal_eager),
        cmocka_unit_test(test_sync_free_bad_id_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
