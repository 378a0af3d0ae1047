// The tape and the arena: misuse errors with their messages, NULL propagation, no_grad, the
// stale-activation check, gradient accumulation, optimizers against closed forms, and thousands
// of training steps in constant memory.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/optim.h"
#include "tests/gradcheck.h"

static int teardown(void **state) { (void)state; vlt_step_reset(); vlt_error_clear(); return 0; }

static void test_misuse_shapes_and_dtypes(void **state) {
    (void)state;
    vlt_tensor *a = test_param(2, VLT_SHAPE(3, 4), 1, 0, 0), *b = test_param(2, VLT_SHAPE(5, 6), 2, 0, 0);
    assert_null(vlt_matmul(a, b, false, false));
    assert_int_equal(vlt_error_code(), VLT_ERR_SHAPE);
    assert_non_null(strstr(vlt_error_message(), "matmul"));
    assert_non_null(strstr(vlt_error_message(), "(3, 4)"));
    assert_non_null(strstr(vlt_error_message(), "(5, 6)"));

    assert_null(vlt_add(a, b));
    assert_non_null(strstr(vlt_error_message(), "add: cannot broadcast (5, 6)"));

    vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(3), "ids");
    assert_null(vlt_gelu(ids));
    assert_int_equal(vlt_error_code(), VLT_ERR_DTYPE);
    assert_non_null(strstr(vlt_error_message(), "gelu: input 'ids' is i32, the op takes f32"));

    vlt_i32(ids)[1] = 7;
    assert_null(vlt_embedding(a, ids));
    assert_non_null(strstr(vlt_error_message(), "id 7 at position 1"));

    assert_null(vlt_linear(a, b, NULL));
    assert_non_null(strstr(vlt_error_message(), "linear"));
    assert_null(vlt_layernorm(a, b, NULL, 1e-5f));
    assert_non_null(strstr(vlt_error_message(), "layernorm"));
    assert_null(vlt_cross_entropy(a, ids, -100, 0.0f));  // 3 targets for 3 rows, but 7 >= 4 classes
    assert_non_null(strstr(vlt_error_message(), "target 7 of row 1"));
    assert_null(vlt_cross_entropy(a, ids, -100, 1.5f));
    assert_non_null(strstr(vlt_error_message(), "label_smoothing"));
    assert_null(vlt_slice(a, 1, 3, 2));
    assert_non_null(strstr(vlt_error_message(), "slice: [3, 5) along dim 1"));
    assert_null(vlt_reshape(a, 2, VLT_SHAPE(5, 2)));
    assert_non_null(strstr(vlt_error_message(), "cannot view (3, 4)"));
    assert_null(vlt_permute(a, VLT_SHAPE(0, 0)));
    assert_non_null(strstr(vlt_error_message(), "not a permutation"));
    vlt_tensor *q = test_param(4, VLT_SHAPE(1, 2, 3, 4), 3, 0, 0);
    vlt_tensor *k = test_param(4, VLT_SHAPE(1, 2, 3, 5), 4, 0, 0);
    assert_null(vlt_attention(q, k, k, 1.0f, false, NULL));
    assert_non_null(strstr(vlt_error_message(), "attention: q (1, 2, 3, 4), k (1, 2, 3, 5)"));
    // a strided view is refused by kernels that need contiguous input
    vlt_tensor *tv = vlt_view_transpose(a, 0, 1);
    assert_null(vlt_exp(tv));
    assert_non_null(strstr(vlt_error_message(), "strided view"));
    // backward on a non-scalar
    vlt_tensor *y = vlt_exp(a);
    assert_int_equal(vlt_backward(y), VLT_ERR_SHAPE);
    vlt_tensor_free(a); vlt_tensor_free(b); vlt_tensor_free(ids); vlt_tensor_free(q); vlt_tensor_free(k);
}

static void test_null_propagates(void **state) {
    (void)state;
    vlt_tensor *a = test_param(2, VLT_SHAPE(3, 4), 1, 0, 0), *b = test_param(2, VLT_SHAPE(5, 6), 2, 0, 0);
    // The first failure's message survives the rest of the chain.
    vlt_tensor *y = vlt_mean_all(vlt_gelu(vlt_layernorm(vlt_matmul(a, b, false, false), NULL, NULL, 1e-5f)));
    assert_null(y);
    assert_non_null(strstr(vlt_error_message(), "matmul"));
    vlt_tensor_free(a); vlt_tensor_free(b);
}

static void test_stale_activation_is_caught(void **state) {
    (void)state;
    vlt_tensor *a = test_param(2, VLT_SHAPE(3, 4), 1, 0, 0);
    vlt_tensor *h = vlt_exp(a);
    assert_non_null(h);
    vlt_step_reset();
    assert_null(vlt_gelu(h));
    assert_int_equal(vlt_error_code(), VLT_ERR_STATE);
    assert_non_null(strstr(vlt_error_message(), "gelu"));
    // With poisoning on, the header itself is wiped: caught by the magic check.
    vlt_arena_set_debug(vlt_step_arena(), 1);
    vlt_tensor *h2 = vlt_exp(a);
    vlt_step_reset();
    assert_null(vlt_scale(h2, 2.0f));
    assert_non_null(strstr(vlt_error_message(), "not a live tensor"));
    vlt_arena_set_debug(vlt_step_arena(), 0);
    vlt_tensor_free(a);
}

static void test_no_grad_and_accumulation(void **state) {
    (void)state;
    vlt_tensor *w = test_param(1, VLT_SHAPE(4), 1, 0, 0);
    vlt_no_grad_enter();
    vlt_tensor *y = vlt_sum_all(vlt_mul(w, w));
    vlt_no_grad_exit();
    assert_false(y->requires_grad);
    assert_int_equal(vlt_tape_size(), 0);
    // d/dw Σ w² = 2w; two backward passes before zeroing accumulate to 4w.
    for (int pass = 0; pass < 2; pass++) {
        vlt_tensor *l = vlt_sum_all(vlt_mul(w, w));
        assert_int_equal(vlt_tape_size(), 2);
        assert_int_equal(vlt_backward(l), VLT_OK);
        assert_int_equal(vlt_tape_size(), 0);
    }
    for (int i = 0; i < 4; i++) assert_true(fabsf(vlt_f32(w->grad)[i] - 4 * vlt_f32(w)[i]) < 1e-5f);
    vlt_zero_grad(&w, 1);
    for (int i = 0; i < 4; i++) assert_true(vlt_f32(w->grad)[i] == 0.0f);
    vlt_tensor_free(w);
}

static void test_adamw_matches_closed_form(void **state) {
    (void)state;
    // One parameter, constant gradient g: after t steps with no decay, m̂ = g and v̂ = g², so each
    // step moves by lr·g/(|g| + eps); with decay the weight is first scaled by (1 - lr·wd).
    vlt_tensor *p = vlt_tensor_new_param(1, VLT_SHAPE(2), "p");
    vlt_f32(p)[0] = 1.0f;
    vlt_f32(p)[1] = -2.0f;
    bool decay[1] = {true};
    vlt_adamw_cfg cfg = vlt_adamw_defaults();
    vlt_adamw *opt = vlt_adamw_new(&p, decay, 1, cfg);
    assert_non_null(opt);
    double w0 = 1.0, w1 = -2.0;
    for (int t = 0; t < 5; t++) {
        vlt_f32(p->grad)[0] = 0.5f;
        vlt_f32(p->grad)[1] = -0.25f;
        vlt_adamw_step(opt, 0.01f);
        w0 = w0 * (1 - 0.01 * 0.2) - 0.01 * 0.5 / (0.5 + 1e-6);
        w1 = w1 * (1 - 0.01 * 0.2) + 0.01 * 0.25 / (0.25 + 1e-6);
    }
    assert_true(fabs(vlt_f32(p)[0] - w0) < 1e-5);
    assert_true(fabs(vlt_f32(p)[1] - w1) < 1e-5);
    vlt_adamw_free(opt);
    cfg.beta1 = 1.5f;
    assert_null(vlt_adamw_new(&p, NULL, 1, cfg));
    assert_non_null(strstr(vlt_error_message(), "adamw: betas"));
    vlt_tensor_free(p);
}

static void test_sgd_and_clipping(void **state) {
    (void)state;
    vlt_tensor *p = vlt_tensor_new_param(1, VLT_SHAPE(1), "p");
    vlt_sgd *opt = vlt_sgd_new(&p, 1, 0.9f, 0.0f, false);
    // constant gradient 1: buffers 1, 1.9, 2.71 -> weights -0.1, -0.29, -0.561
    const float want[3] = {-0.1f, -0.29f, -0.561f};
    for (int t = 0; t < 3; t++) {
        vlt_f32(p->grad)[0] = 1.0f;
        vlt_sgd_step(opt, 0.1f);
        assert_true(fabsf(vlt_f32(p)[0] - want[t]) < 1e-6f);
    }
    vlt_sgd_free(opt);
    vlt_tensor *q = vlt_tensor_new_param(1, VLT_SHAPE(2), "q");
    vlt_f32(p->grad)[0] = 3.0f;
    vlt_f32(q->grad)[0] = 4.0f;
    vlt_tensor *ps[2] = {p, q};
    float norm = vlt_clip_grad_norm(ps, 2, 1.0f);
    assert_true(fabsf(norm - 5.0f) < 1e-6f);
    assert_true(fabsf(vlt_f32(p->grad)[0] - 0.6f) < 1e-5f);
    assert_true(fabsf(vlt_f32(q->grad)[0] - 0.8f) < 1e-5f);
    vlt_f32(q->grad)[1] = NAN;
    assert_true(isnan(vlt_clip_grad_norm(ps, 2, 1.0f)));
    vlt_tensor_free(p); vlt_tensor_free(q);
}

// A 2-layer MLP fits y = sin(3x) on [-1, 1]; then the same loop runs for thousands of steps and
// the arena stops growing after the first few.
static void test_mlp_fits_and_arena_is_constant(void **state) {
    (void)state;
    const int N = 64, Hd = 32;
    vlt_tensor *w1 = test_param(2, VLT_SHAPE(Hd, 1), 1, -1.0f, 1.0f), *b1 = test_param(1, VLT_SHAPE(Hd), 2, -1.0f, 1.0f);
    vlt_tensor *w2 = test_param(2, VLT_SHAPE(1, Hd), 3, -0.2f, 0.2f), *b2 = vlt_tensor_new_param(1, VLT_SHAPE(1), "b2");
    vlt_tensor *params[4] = {w1, b1, w2, b2};
    vlt_adamw_cfg cfg = {0.9f, 0.999f, 1e-8f, 0.0f};
    vlt_adamw *opt = vlt_adamw_new(params, NULL, 4, cfg);
    vlt_tensor *x = vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(N, 1), "x");
    vlt_tensor *y = vlt_tensor_new(VLT_F32, VLT_CPU, 2, VLT_SHAPE(N, 1), "y");
    for (int i = 0; i < N; i++) {
        vlt_f32(x)[i] = -1.0f + 2.0f * i / (N - 1);
        vlt_f32(y)[i] = sinf(3.0f * vlt_f32(x)[i]);
    }
    float loss = 0;
    uint64_t allocs_after_warmup = 0;
    size_t hw_after_warmup = 0;
    for (int step = 0; step < 3000; step++) {
        vlt_tensor *pred = vlt_linear(vlt_gelu_tanh(vlt_linear(x, w1, b1)), w2, b2);
        vlt_tensor *d = vlt_sub(pred, y);
        vlt_tensor *l = vlt_mean_all(vlt_mul(d, d));
        assert_non_null(l);
        loss = vlt_f32(l)[0];
        vlt_zero_grad(params, 4);
        assert_int_equal(vlt_backward(l), VLT_OK);
        vlt_adamw_step(opt, 1e-2f);
        vlt_step_reset();
        if (step == 5) {
            allocs_after_warmup = vlt_step_arena()->system_allocs;
            hw_after_warmup = vlt_step_arena()->high_water;
        }
        if (step == 800) assert_true(loss < 0.01f);  // stated: MSE below 0.01 within 800 steps
    }
    assert_true(loss < 0.005f);
    assert_int_equal(vlt_step_arena()->system_allocs, allocs_after_warmup);
    assert_int_equal(vlt_step_arena()->high_water, hw_after_warmup);
    assert_true(vlt_step_arena()->capacity >= vlt_step_arena()->high_water);
    vlt_adamw_free(opt);
    for (int i = 0; i < 4; i++) vlt_tensor_free(params[i]);
    vlt_tensor_free(x); vlt_tensor_free(y);
}

// The gradient-ready hook: every parameter the forward used is reported exactly once, when its
// gradient already has its final value; an unused one is not reported; parameters used late in
// the forward come first (the reverse walk), a parameter used twice only after its first use.
typedef struct {
    vlt_tensor *seen[8];
    float snapshot[8];  // the reported gradient's first element at report time
    int n;
} ready_log;

static void log_ready(vlt_tensor *t, void *ctx) {
    ready_log *l = ctx;
    l->seen[l->n] = t;
    l->snapshot[l->n] = vlt_f32(t->grad)[0];
    l->n++;
}

static void test_grad_ready_hook(void **state) {
    (void)state;
    vlt_tensor *x = test_param(2, VLT_SHAPE(5, 4), 301, 0, 0);
    vlt_tensor *w1 = test_param(2, VLT_SHAPE(6, 4), 302, 0, 0), *b1 = test_param(1, VLT_SHAPE(6), 303, 0, 0);
    vlt_tensor *w2 = test_param(2, VLT_SHAPE(6, 6), 304, 0, 0), *unused = test_param(1, VLT_SHAPE(3), 305, 0, 0);
    x->requires_grad = false;
    vlt_tensor *all[4] = {w1, b1, w2, unused};
    for (int pass = 0; pass < 2; pass++) {
        vlt_zero_grad(all, 4);
        // w1 is used first (layer 1) and again last (a second product), w2 in between
        vlt_tensor *h = vlt_gelu(vlt_linear(x, w1, b1));
        h = vlt_linear(h, w2, NULL);
        vlt_tensor *loss = vlt_sum_all(vlt_mul(h, vlt_linear(x, w1, NULL)));
        ready_log log = {0};
        if (pass == 1) vlt_tape_set_grad_ready(log_ready, &log);
        assert_int_equal(vlt_backward(loss), VLT_OK);
        vlt_tape_set_grad_ready(NULL, NULL);
        if (pass == 1) {
            assert_int_equal(log.n, 3);  // w1, b1, w2 once each; `unused` never
            for (int k = 0; k < log.n; k++) {
                assert_true(log.seen[k] != unused);
                assert_true(log.snapshot[k] == vlt_f32(log.seen[k]->grad)[0]);  // already final
                for (int j = 0; j < k; j++) assert_true(log.seen[j] != log.seen[k]);
            }
            assert_true(log.seen[0] == w2);  // its only use is the latest of the three first uses
            assert_true(log.seen[2] == w1 || log.seen[2] == b1);
        }
        vlt_step_reset();
    }
    for (int k = 0; k < 4; k++) vlt_tensor_free(all[k]);
    vlt_tensor_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_misuse_shapes_and_dtypes, teardown),
        cmocka_unit_test_teardown(test_null_propagates, teardown),
        cmocka_unit_test_teardown(test_stale_activation_is_caught, teardown),
        cmocka_unit_test_teardown(test_no_grad_and_accumulation, teardown),
        cmocka_unit_test_teardown(test_grad_ready_hook, teardown),
        cmocka_unit_test_teardown(test_adamw_matches_closed_form, teardown),
        cmocka_unit_test_teardown(test_sgd_and_clipping, teardown),
        cmocka_unit_test_teardown(test_mlp_fits_and_arena_is_constant, teardown),
    };
    int rc = cmocka_run_group_tests_name("autograd_tape", tests, NULL, NULL);
    vlt_tape_shutdown();
    return rc;
}
