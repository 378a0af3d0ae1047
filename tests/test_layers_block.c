// The pre-LN residual block: gradient check through the whole block, and a 2-layer causal
// transformer that learns a task only attention can solve.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/optim.h"
#include "layers/transformer.h"
#include "tests/gradcheck.h"

static int teardown(void **state) { (void)state; vlt_step_reset(); return 0; }

typedef struct { vlt_resblock *blk; bool causal; vlt_tensor *pad; } blk_ctx;
static vlt_tensor *build_block(vlt_tensor **in, void *c) {
    blk_ctx *b = c;
    return vlt_resblock_forward(b->blk, in[0], b->causal, b->pad);
}

static void test_block_gradients(void **state) {
    (void)state;
    for (int act = 0; act < 2; act++) {
        vlt_resblock blk;
        vlt_params table;
        vlt_params_init(&table);
        assert_int_equal(vlt_resblock_init(&blk, &table, "transformer.resblocks.0", 8, 2, 12, (vlt_activation)act, 2, VLT_INIT_SCALED_NORMAL, 7), VLT_OK);
        assert_int_equal(table.n, VLT_RESBLOCK_NPARAMS);
        assert_string_equal(blk.in_proj_w->name, "transformer.resblocks.0.attn.in_proj_weight");
        assert_string_equal(blk.c_proj_b->name, "transformer.resblocks.0.mlp.c_proj.bias");
        // nonzero biases and norms so their gradients are exercised
        vlt_tensor *ps[VLT_RESBLOCK_NPARAMS];
        vlt_resblock_params(&blk, ps);
        for (int i = 0; i < VLT_RESBLOCK_NPARAMS; i++)
            if (ps[i]->ndim == 1) vlt_rng_fill_uniform(vlt_f32(ps[i]), (size_t)ps[i]->numel, -0.5f, 1.0f, 3, i, 0);
        vlt_tensor *x = test_param(3, VLT_SHAPE(2, 5, 8), 1, 0, 0);
        vlt_tensor *pad = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(2, 5), "pad");
        vlt_i32(pad)[9] = 1;
        blk_ctx c = {&blk, act == 0, act == 1 ? pad : NULL};
        vlt_tensor *in[1 + VLT_RESBLOCK_NPARAMS];
        in[0] = x;
        memcpy(in + 1, ps, sizeof ps);
        assert_true(gradcheck(build_block, in, 1 + VLT_RESBLOCK_NPARAMS, &c, 1e-2f) < 1e-2);
        vlt_tensor_free(x);
        vlt_tensor_free(pad);
        vlt_params_free(&table);
    }
}

// Task: tokens are random in [1, V); the target at position t is the token at t-1 (position 0's
// target is ignored). Without attention to the previous position the best loss is log(V-1).
static void test_two_layer_transformer_learns_previous_token(void **state) {
    (void)state;
    const int V = 8, T = 8, W = 32, H = 4, B = 16, STEPS = 400;
    vlt_tensor *tok = vlt_tensor_new_param(2, VLT_SHAPE(V, W), "token_embedding.weight");
    vlt_tensor *pos = vlt_tensor_new_param(2, VLT_SHAPE(T, W), "positional_embedding");
    vlt_rng_fill_normal(vlt_f32(tok), (size_t)tok->numel, 0, 0.5f, 1, 1, 0);
    vlt_rng_fill_normal(vlt_f32(pos), (size_t)pos->numel, 0, 0.5f, 1, 2, 0);
    vlt_resblock blk[2];
    vlt_params table;
    vlt_params_init(&table);
    for (int l = 0; l < 2; l++) vlt_resblock_init(&blk[l], &table, l ? "resblocks.1" : "resblocks.0", W, H, 4 * W, VLT_ACT_GELU, 2, VLT_INIT_SCALED_NORMAL, 5 + l);
    vlt_tensor *head = vlt_tensor_new_param(2, VLT_SHAPE(V, W), "head.weight");
    vlt_rng_fill_normal(vlt_f32(head), (size_t)head->numel, 0, 0.1f, 1, 3, 0);
    vlt_tensor *params[3 + 2 * VLT_RESBLOCK_NPARAMS] = {tok, pos, head};
    for (int l = 0; l < 2; l++) vlt_resblock_params(&blk[l], params + 3 + l * VLT_RESBLOCK_NPARAMS);
    int np = 3 + 2 * VLT_RESBLOCK_NPARAMS;
    vlt_adamw *opt = vlt_adamw_new(params, NULL, np, (vlt_adamw_cfg){0.9f, 0.98f, 1e-6f, 0.0f});
    vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, T), "ids");
    vlt_tensor *tgt = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(B * T), "targets");
    vlt_tensor *pos_ids = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(T), "pos_ids");
    for (int t = 0; t < T; t++) vlt_i32(pos_ids)[t] = t;
    float loss = 0, first = 0;
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < B * T; i++) {
            vlt_i32(ids)[i] = 1 + (int)vlt_rng_below(9, (uint64_t)step, (uint64_t)i, (uint64_t)(V - 1));
            vlt_i32(tgt)[i] = i % T == 0 ? -100 : vlt_i32(ids)[i - 1];
        }
        vlt_tensor *x = vlt_add(vlt_embedding(tok, ids), vlt_embedding(pos, pos_ids));
        for (int l = 0; l < 2; l++) x = vlt_resblock_forward(&blk[l], x, true, NULL);
        vlt_tensor *logits = vlt_reshape(vlt_linear(x, head, NULL), 2, VLT_SHAPE(B * T, V));
        vlt_tensor *l = vlt_cross_entropy(logits, tgt, -100, 0.0f);
        assert_non_null(l);
        loss = vlt_f32(l)[0];
        if (step == 0) first = loss;
        vlt_zero_grad(params, np);
        assert_int_equal(vlt_backward(l), VLT_OK);
        vlt_clip_grad_norm(params, np, 1.0f);
        vlt_adamw_step(opt, 3e-3f);
        vlt_step_reset();
    }
    print_message("previous-token task: loss %.3f at step 0, %.4f at step %d\n", first, loss, STEPS);
    // Stated target: from ≈ log 7 = 1.95 to below 0.1 within 400 steps.
    assert_true(first > 1.5f);
    assert_true(loss < 0.1f);
    vlt_adamw_free(opt);
    vlt_params_free(&table);
    vlt_tensor_free(tok); vlt_tensor_free(pos); vlt_tensor_free(head);
    vlt_tensor_free(ids); vlt_tensor_free(tgt); vlt_tensor_free(pos_ids);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_block_gradients, teardown),
        cmocka_unit_test_teardown(test_two_layer_transformer_learns_previous_token, teardown),
    };
    int rc = cmocka_run_group_tests_name("layers_block", tests, NULL, NULL);
    vlt_tape_shutdown();
    return rc;
}
