// op_builders.h — the op builders that tests/test_autograd_ops.c (gradient checks on the CPU)
// and tests/test_autograd_cuda.c (the GPU against the CPU) both drive: each takes its inputs and
// a small context and returns the op's output, so one definition of "the op under test" serves
// both suites.
#ifndef VLT_TESTS_OP_BUILDERS_H
#define VLT_TESTS_OP_BUILDERS_H

#include <stdbool.h>
#include <stdint.h>

#include "autograd/ops.h"

// ---- matmul, linear
typedef struct { bool ta, tb; } mm_ctx;
static vlt_tensor *build_matmul(vlt_tensor **in, void *c) { mm_ctx *m = c; return vlt_matmul(in[0], in[1], m->ta, m->tb); }
static vlt_tensor *build_linear(vlt_tensor **in, void *c) { return vlt_linear(in[0], in[1], c ? in[2] : NULL); }

// ---- elementwise
typedef struct { int kind; float f0, f1; } ew_ctx;
enum { K_ADD, K_SUB, K_MUL, K_SCALE, K_EXP, K_LOG, K_CLAMP, K_GELU, K_GELU_TANH, K_QUICK_GELU, K_LOG_SIGMOID };

static vlt_tensor *build_ew(vlt_tensor **in, void *c) {
    ew_ctx *e = c;
    switch (e->kind) {
    case K_ADD: return vlt_add(in[0], in[1]);
    case K_SUB: return vlt_sub(in[0], in[1]);
    case K_MUL: return vlt_mul(in[0], in[1]);
    case K_SCALE: return vlt_scale(in[0], e->f0);
    case K_EXP: return vlt_exp(in[0]);
    case K_LOG: return vlt_log(in[0]);
    case K_CLAMP: return vlt_clamp(in[0], e->f0, e->f1);
    case K_GELU: return vlt_gelu(in[0]);
    case K_GELU_TANH: return vlt_gelu_tanh(in[0]);
    case K_LOG_SIGMOID: return vlt_log_sigmoid(in[0]);
    default: return vlt_quick_gelu(in[0]);
    }
}

// ---- reductions (context: 0 sum_last, 1 mean_last, 2 sum_all, 3 mean_all), layernorm (context
// non-NULL: with weight and bias), softmax family (0 softmax, 1 log_softmax, 2 l2_normalize)
static vlt_tensor *build_reduce(vlt_tensor **in, void *c) {
    switch ((int)(intptr_t)c) {
    case 0: return vlt_sum_last(in[0]);
    case 1: return vlt_mean_last(in[0]);
    case 2: return vlt_sum_all(in[0]);
    default: return vlt_mean_all(in[0]);
    }
}

static vlt_tensor *build_layernorm(vlt_tensor **in, void *c) { return vlt_layernorm(in[0], c ? in[1] : NULL, c ? in[2] : NULL, 1e-5f); }

static vlt_tensor *build_softmax(vlt_tensor **in, void *c) {
    int k = (int)(intptr_t)c;
    return k == 0 ? vlt_softmax(in[0]) : k == 1 ? vlt_log_softmax(in[0]) : vlt_l2_normalize(in[0], 1e-12f);
}

// ---- cross-entropy, attention
typedef struct { vlt_tensor *targets; int ignore; float smooth; } ce_ctx;
static vlt_tensor *build_ce(vlt_tensor **in, void *c) {
    ce_ctx *e = c;
    return vlt_cross_entropy(in[0], e->targets, e->ignore, e->smooth);
}

typedef struct { bool causal; vlt_tensor *pad; float scale; } att_ctx;
static vlt_tensor *build_att(vlt_tensor **in, void *c) {
    att_ctx *a = c;
    return vlt_attention(in[0], in[1], in[2], a->scale, a->causal, a->pad);
}

// ---- indexing (context: the ids / row indices)
static vlt_tensor *build_embedding(vlt_tensor **in, void *c) { return vlt_embedding(in[0], c); }
static vlt_tensor *build_gather(vlt_tensor **in, void *c) { return vlt_gather_rows(in[0], c); }

#endif
