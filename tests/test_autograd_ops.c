// Every op: forward against a plain reference loop, backward against central finite differences,
// on awkward shapes (odd sizes, size-1 dims).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/gradcheck.h"
#include "tests/op_builders.h"

#define GC_TOL 1e-2
#define FWD_TOL 1e-5

static int teardown(void **state) { (void)state; vlt_step_reset(); return 0; }

// ---------------------------------------------------------------- matmul and linear

// Reference: C[b] = op(A[b]) op(B[b or 0]) for A stored (batch, ar, ac).
static void ref_matmul(const vlt_tensor *a, const vlt_tensor *b, bool ta, bool tb, float *out) {
    int ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    int M = ta ? ac : ar, K = ta ? ar : ac, N = tb ? br : bc;
    int batch = (int)(a->numel / (ar * ac));
    bool bb = b->ndim > 2;
    for (int i = 0; i < batch; i++)
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double s = 0;
                for (int k = 0; k < K; k++) {
                    float av = vlt_f32(a)[(size_t)i * ar * ac + (ta ? k * ac + m : m * ac + k)];
                    float bv = vlt_f32(b)[(bb ? (size_t)i * br * bc : 0) + (tb ? n * bc + k : k * bc + n)];
                    s += (double)av * bv;
                }
                out[((size_t)i * M + m) * N + n] = (float)s;
            }
}

static void test_matmul(void **state) {
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int batched = 0; batched < 3; batched++) {  // 0: 2-D, 1: batched a, 2-D b, 2: both batched
                int M = 5, K = 3, N = 7, B0 = 2, B1 = 3;
                int ash[4], bsh[4], an, bn;
                if (batched == 0) { an = 2; ash[0] = ta ? K : M; ash[1] = ta ? M : K; }
                else { an = 4; ash[0] = B0; ash[1] = B1; ash[2] = ta ? K : M; ash[3] = ta ? M : K; }
                if (batched < 2) { bn = 2; bsh[0] = tb ? N : K; bsh[1] = tb ? K : N; }
                else { bn = 4; bsh[0] = B0; bsh[1] = B1; bsh[2] = tb ? N : K; bsh[3] = tb ? K : N; }
                if (batched == 1 && ta) continue;  // covered by the per-batch path below
                vlt_tensor *a = test_param(an, ash, 1 + ta, 0, 0), *b = test_param(bn, bsh, 3 + tb, 0, 0);
                mm_ctx c = {ta, tb};
                vlt_tensor *out = vlt_matmul(a, b, ta, tb);
                assert_non_null(out);
                assert_int_equal(out->shape[out->ndim - 2], M);
                assert_int_equal(out->shape[out->ndim - 1], N);
                float *ref = malloc((size_t)out->numel * sizeof(float));
                ref_matmul(a, b, ta, tb, ref);
                assert_true(max_abs_diff(vlt_f32(out), ref, out->numel) < FWD_TOL);
                free(ref);
                vlt_tensor *in[2] = {a, b};
                assert_true(gradcheck(build_matmul, in, 2, &c, 1e-2f) < GC_TOL);
                vlt_tensor_free(a);
                vlt_tensor_free(b);
            }
    // batched a transposed with a shared b: per-batch path
    vlt_tensor *a = test_param(3, VLT_SHAPE(3, 4, 1), 9, 0, 0), *b = test_param(2, VLT_SHAPE(4, 2), 10, 0, 0);
    mm_ctx c = {true, false};
    vlt_tensor *in[2] = {a, b};
    assert_true(gradcheck(build_matmul, in, 2, &c, 1e-2f) < GC_TOL);
    vlt_tensor_free(a);
    vlt_tensor_free(b);
}

static void test_linear(void **state) {
    (void)state;
    vlt_tensor *x = test_param(3, VLT_SHAPE(2, 3, 5), 1, 0, 0);
    vlt_tensor *w = test_param(2, VLT_SHAPE(7, 5), 2, 0, 0);
    vlt_tensor *b = test_param(1, VLT_SHAPE(7), 3, 0, 0);
    vlt_tensor *out = vlt_linear(x, w, b);
    assert_non_null(out);
    for (int r = 0; r < 6; r++)
        for (int o = 0; o < 7; o++) {
            double s = vlt_f32(b)[o];
            for (int i = 0; i < 5; i++) s += (double)vlt_f32(x)[r * 5 + i] * vlt_f32(w)[o * 5 + i];
            assert_true(fabs(s - vlt_f32(out)[r * 7 + o]) < FWD_TOL);
        }
    vlt_tensor *in[3] = {x, w, b};
    assert_true(gradcheck(build_linear, in, 3, (void *)1, 1e-2f) < GC_TOL);
    assert_true(gradcheck(build_linear, in, 2, NULL, 1e-2f) < GC_TOL);
    vlt_tensor_free(x); vlt_tensor_free(w); vlt_tensor_free(b);
}

// ---------------------------------------------------------------- elementwise

static double ref_unary(int kind, double x, double f0, double f1) {
    switch (kind) {
    case K_SCALE: return x * f0;
    case K_EXP: return exp(x);
    case K_LOG: return log(x);
    case K_CLAMP: return x < f0 ? f0 : x > f1 ? f1 : x;
    case K_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case K_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case K_LOG_SIGMOID: return -log1p(exp(-x));
    default: return x / (1 + exp(-1.702 * x));
    }
}

static void test_binary_broadcast(void **state) {
    (void)state;
    const int bshapes[3][3] = {{3, 4, 5}, {1, 5, 0}, {1, 1, 0}};  // same, trailing (5), scalar (1)
    const int bnd[3] = {3, 1, 1};
    for (int kind = K_ADD; kind <= K_MUL; kind++)
        for (int s = 0; s < 3; s++) {
            vlt_tensor *a = test_param(3, VLT_SHAPE(3, 4, 5), 5, 0, 0);
            vlt_tensor *b = s == 0 ? test_param(3, bshapes[0], 6, 0, 0)
                                   : test_param(bnd[s], s == 1 ? VLT_SHAPE(5) : VLT_SHAPE(1), 6, 0, 0);
            ew_ctx c = {kind, 0, 0};
            vlt_tensor *in[2] = {a, b};
            vlt_tensor *out = build_ew(in, &c);
            assert_non_null(out);
            for (int64_t i = 0; i < a->numel; i++) {
                float x = vlt_f32(a)[i], y = vlt_f32(b)[i % b->numel];
                float want = kind == K_ADD ? x + y : kind == K_SUB ? x - y : x * y;
                assert_true(fabsf(want - vlt_f32(out)[i]) < FWD_TOL);
            }
            assert_true(gradcheck(build_ew, in, 2, &c, 1e-2f) < GC_TOL);
            vlt_tensor_free(a); vlt_tensor_free(b);
        }
}

static void test_unary(void **state) {
    (void)state;
    for (int kind = K_SCALE; kind <= K_LOG_SIGMOID; kind++) {
        ew_ctx c = {kind, kind == K_SCALE ? -1.7f : -0.5f, 0.8f};
        // log needs positive inputs; clamp is checked away from its kinks.
        vlt_tensor *x = kind == K_LOG ? test_param(2, VLT_SHAPE(7, 3), 8, 0.2f, 3.0f)
                                      : test_param(3, VLT_SHAPE(1, 7, 3), 8, -3.0f, 3.0f);
        if (kind == K_CLAMP)
            for (int64_t i = 0; i < x->numel; i++) {
                float *v = &vlt_f32(x)[i];
                if (fabsf(*v - c.f0) < 0.05f || fabsf(*v - c.f1) < 0.05f) *v += 0.1f;
            }
        vlt_tensor *out = build_ew(&x, &c);
        assert_non_null(out);
        for (int64_t i = 0; i < x->numel; i++)
            assert_true(fabs(ref_unary(kind, vlt_f32(x)[i], c.f0, c.f1) - vlt_f32(out)[i]) < 1e-5 * fmax(1, fabs(vlt_f32(out)[i])));
        assert_true(gradcheck(build_ew, &x, 1, &c, kind == K_CLAMP ? 1e-3f : 1e-2f) < GC_TOL);
        vlt_tensor_free(x);
    }
}

// ---------------------------------------------------------------- reductions

static void test_reductions(void **state) {
    (void)state;
    vlt_tensor *x = test_param(3, VLT_SHAPE(3, 1, 7), 11, 0, 0);
    for (int k = 0; k < 4; k++) {
        vlt_tensor *out = build_reduce(&x, (void *)(intptr_t)k);
        assert_non_null(out);
        if (k < 2) {
            assert_int_equal(out->ndim, 2);
            for (int r = 0; r < 3; r++) {
                double s = 0;
                for (int c = 0; c < 7; c++) s += vlt_f32(x)[r * 7 + c];
                assert_true(fabs((k ? s / 7 : s) - vlt_f32(out)[r]) < FWD_TOL);
            }
        } else {
            double s = 0;
            for (int i = 0; i < 21; i++) s += vlt_f32(x)[i];
            assert_true(fabs((k == 3 ? s / 21 : s) - vlt_f32(out)[0]) < FWD_TOL);
        }
        assert_true(gradcheck(build_reduce, &x, 1, (void *)(intptr_t)k, 1e-2f) < GC_TOL);
    }
    vlt_tensor_free(x);
}

// ---------------------------------------------------------------- normalization

static void test_layernorm(void **state) {
    (void)state;
    vlt_tensor *x = test_param(3, VLT_SHAPE(2, 3, 9), 12, 0, 0);
    vlt_tensor *w = test_param(1, VLT_SHAPE(9), 13, 0, 0), *b = test_param(1, VLT_SHAPE(9), 14, 0, 0);
    vlt_tensor *out = vlt_layernorm(x, w, b, 1e-5f);
    assert_non_null(out);
    for (int r = 0; r < 6; r++) {
        double m = 0, v = 0;
        for (int c = 0; c < 9; c++) m += vlt_f32(x)[r * 9 + c];
        m /= 9;
        for (int c = 0; c < 9; c++) v += pow(vlt_f32(x)[r * 9 + c] - m, 2);
        v /= 9;
        for (int c = 0; c < 9; c++) {
            double want = (vlt_f32(x)[r * 9 + c] - m) / sqrt(v + 1e-5) * vlt_f32(w)[c] + vlt_f32(b)[c];
            assert_true(fabs(want - vlt_f32(out)[r * 9 + c]) < 1e-5);
        }
    }
    vlt_tensor *in[3] = {x, w, b};
    assert_true(gradcheck(build_layernorm, in, 3, (void *)1, 1e-2f) < GC_TOL);
    assert_true(gradcheck(build_layernorm, in, 1, NULL, 1e-2f) < GC_TOL);
    vlt_tensor_free(x); vlt_tensor_free(w); vlt_tensor_free(b);
}

// The mixed-precision operand ops are, on the CPU, exactly the fp32 ops they stand for (same
// values, same gradients, bit for bit), and check their inputs as those do.
static vlt_tensor *build_linear_act(vlt_tensor **in, void *c) {
    return vlt_linear_act(in[0], in[1], in[2], (vlt_act_fn)(intptr_t)c);
}
static void test_operand_ops_on_cpu(void **state) {
    (void)state;
    vlt_tensor *x = test_param(3, VLT_SHAPE(2, 5, 12), 51, 0, 0), *w = test_param(2, VLT_SHAPE(7, 12), 52, 0, 0);
    vlt_tensor *b = test_param(1, VLT_SHAPE(7), 53, 0, 0), *lw = test_param(1, VLT_SHAPE(12), 54, 0, 0);
    vlt_tensor *lb = test_param(1, VLT_SHAPE(12), 55, 0, 0);
    vlt_tensor *y1 = vlt_layernorm_operand(x, lw, lb, 1e-5f), *y2 = vlt_layernorm(x, lw, lb, 1e-5f);
    assert_non_null(y1);
    assert_int_equal(y1->dtype, VLT_F32);
    assert_memory_equal(y1->data, y2->data, (size_t)y1->numel * sizeof(float));
    const vlt_act_fn acts[3] = {VLT_ACT_FN_GELU, VLT_ACT_FN_GELU_TANH, VLT_ACT_FN_QUICK_GELU};
    for (int k = 0; k < 3; k++) {
        vlt_tensor *a1 = vlt_linear_act(x, w, b, acts[k]), *h = vlt_linear(x, w, b);
        vlt_tensor *a2 = acts[k] == VLT_ACT_FN_GELU ? vlt_gelu(h) : acts[k] == VLT_ACT_FN_GELU_TANH ? vlt_gelu_tanh(h)
                                                                                                  : vlt_quick_gelu(h);
        assert_non_null(a1);
        assert_memory_equal(a1->data, a2->data, (size_t)a1->numel * sizeof(float));
        vlt_tensor *in[3] = {x, w, b};
        assert_true(gradcheck(build_linear_act, in, 3, (void *)(intptr_t)acts[k], 1e-2f) < GC_TOL);
    }
    // shape errors name the op's inputs as vlt_linear's do
    vlt_tensor *bad = test_param(2, VLT_SHAPE(7, 11), 56, 0, 0);
    assert_null(vlt_linear_act(x, bad, b, VLT_ACT_FN_GELU));
    assert_non_null(strstr(vlt_error_message(), "linear"));
    vlt_tensor_free(x); vlt_tensor_free(w); vlt_tensor_free(b); vlt_tensor_free(lw); vlt_tensor_free(lb);
    vlt_tensor_free(bad);
}

static void test_softmax_family(void **state) {
    (void)state;
    vlt_tensor *x = test_param(2, VLT_SHAPE(5, 11), 15, 0, 0);
    vlt_scale(x, 1.0f);
    for (int k = 0; k < 3; k++) {
        vlt_tensor *out = build_softmax(&x, (void *)(intptr_t)k);
        assert_non_null(out);
        for (int r = 0; r < 5; r++) {
            const float *xr = vlt_f32(x) + r * 11;
            double mx = -1e30, s = 0, nn = 0;
            for (int c = 0; c < 11; c++) mx = fmax(mx, xr[c]);
            for (int c = 0; c < 11; c++) { s += exp(xr[c] - mx); nn += (double)xr[c] * xr[c]; }
            for (int c = 0; c < 11; c++) {
                double want = k == 0 ? exp(xr[c] - mx) / s : k == 1 ? xr[c] - mx - log(s) : xr[c] / sqrt(nn);
                assert_true(fabs(want - vlt_f32(out)[r * 11 + c]) < 1e-5);
            }
        }
        assert_true(gradcheck(build_softmax, &x, 1, (void *)(intptr_t)k, 1e-2f) < GC_TOL);
    }
    // softmax of huge logits stays finite
    vlt_f32(x)[0] = 1e4f;
    vlt_tensor *p = vlt_softmax(x);
    assert_true(fabsf(vlt_f32(p)[0] - 1.0f) < 1e-6f);
    vlt_tensor_free(x);
}

// ---------------------------------------------------------------- cross-entropy

static void test_cross_entropy(void **state) {
    (void)state;
    int N = 6, C = 5;
    vlt_tensor *logits = test_param(2, VLT_SHAPE(N, C), 16, 0, 0);
    vlt_tensor *t = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(N), "targets");
    int32_t tv[6] = {0, 4, -100, 2, 2, -100};
    memcpy(t->data, tv, sizeof tv);
    const float smooths[2] = {0.0f, 0.1f};
    for (int s = 0; s < 2; s++) {
        ce_ctx c = {t, -100, smooths[s]};
        vlt_tensor *out = build_ce(&logits, &c);
        assert_non_null(out);
        double total = 0;
        int count = 0;
        for (int i = 0; i < N; i++) {
            if (tv[i] == -100) continue;
            const float *l = vlt_f32(logits) + i * C;
            double lse = 0;
            for (int k = 0; k < C; k++) lse += exp(l[k]);
            lse = log(lse);
            double sm = 0;
            for (int k = 0; k < C; k++) sm += lse - l[k];
            total += (1 - smooths[s]) * (lse - l[tv[i]]) + smooths[s] * sm / C;
            count++;
        }
        assert_true(fabs(total / count - vlt_f32(out)[0]) < 1e-5);
        assert_true(gradcheck(build_ce, &logits, 1, &c, 1e-2f) < GC_TOL);
    }
    // every row ignored: loss 0, no NaN
    int32_t all_ign[6] = {-1, -1, -1, -1, -1, -1};
    memcpy(t->data, all_ign, sizeof all_ign);
    vlt_tensor *z = vlt_cross_entropy(logits, t, -1, 0.0f);
    assert_non_null(z);
    assert_true(vlt_f32(z)[0] == 0.0f);
    vlt_tensor_free(logits);
    vlt_tensor_free(t);
}

// ---------------------------------------------------------------- attention

static void ref_attention(const vlt_tensor *q, const vlt_tensor *k, const vlt_tensor *v, const att_ctx *c, float *out) {
    int B = q->shape[0], H = q->shape[1], Tq = q->shape[2], Tk = k->shape[2], D = q->shape[3];
    double *s = malloc(sizeof(double) * Tk);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Tq; i++) {
                double mx = -1e300;
                int any = 0;
                for (int j = 0; j < Tk; j++) {
                    bool vis = !(c->causal && j > i + Tk - Tq) && !(c->pad && vlt_i32(c->pad)[b * Tk + j]);
                    if (!vis) { s[j] = NAN; continue; }
                    double d = 0;
                    for (int e = 0; e < D; e++)
                        d += (double)vlt_f32(q)[(((size_t)b * H + h) * Tq + i) * D + e] * vlt_f32(k)[(((size_t)b * H + h) * Tk + j) * D + e];
                    s[j] = d * c->scale;
                    mx = fmax(mx, s[j]);
                    any = 1;
                }
                double z = 0;
                for (int j = 0; j < Tk; j++) z += isnan(s[j]) ? 0 : exp(s[j] - mx);
                for (int e = 0; e < D; e++) {
                    double o = 0;
                    for (int j = 0; j < Tk && any; j++)
                        if (!isnan(s[j])) o += exp(s[j] - mx) / z * vlt_f32(v)[(((size_t)b * H + h) * Tk + j) * D + e];
                    out[(((size_t)b * H + h) * Tq + i) * D + e] = (float)o;
                }
            }
    free(s);
}

static void test_attention(void **state) {
    (void)state;
    struct { int B, H, Tq, Tk, D; bool causal, pad; } cases[] = {
        {2, 3, 5, 5, 4, false, false}, {2, 1, 5, 5, 3, true, false}, {2, 2, 3, 6, 4, true, false},
        {3, 2, 4, 7, 5, false, true}, {2, 2, 6, 6, 2, true, true}, {1, 1, 1, 1, 1, false, false},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int B = cases[ci].B, H = cases[ci].H, Tq = cases[ci].Tq, Tk = cases[ci].Tk, D = cases[ci].D;
        vlt_tensor *q = test_param(4, VLT_SHAPE(B, H, Tq, D), 20 + ci, 0, 0);
        vlt_tensor *k = test_param(4, VLT_SHAPE(B, H, Tk, D), 30 + ci, 0, 0);
        vlt_tensor *v = test_param(4, VLT_SHAPE(B, H, Tk, D), 40 + ci, 0, 0);
        vlt_tensor *pad = NULL;
        if (cases[ci].pad) {
            pad = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, Tk), "pad");
            for (int b = 0; b < B; b++)
                for (int j = 0; j < Tk; j++) vlt_i32(pad)[b * Tk + j] = j >= Tk - 1 - b;  // b+1 padded keys
            if (cases[ci].causal)  // batch 1: pad the first key only, so query 0 sees nothing
                for (int j = 0; j < Tk; j++) vlt_i32(pad)[Tk + j] = j == 0;
        }
        att_ctx c = {cases[ci].causal, pad, 1.0f / sqrtf((float)D)};
        vlt_tensor *in[3] = {q, k, v};
        vlt_tensor *out = build_att(in, &c);
        assert_non_null(out);
        float *ref = malloc((size_t)out->numel * sizeof(float));
        ref_attention(q, k, v, &c, ref);
        assert_true(max_abs_diff(vlt_f32(out), ref, out->numel) < 1e-5);
        free(ref);
        assert_true(gradcheck(build_att, in, 3, &c, 1e-2f) < GC_TOL);
        vlt_tensor_free(q); vlt_tensor_free(k); vlt_tensor_free(v); vlt_tensor_free(pad);
    }
}

// ---------------------------------------------------------------- indexing

static void test_embedding_and_gather(void **state) {
    (void)state;
    vlt_tensor *w = test_param(2, VLT_SHAPE(11, 3), 50, 0, 0);
    vlt_tensor *ids = test_ids(2, VLT_SHAPE(2, 5), 11, 51);
    vlt_i32(ids)[3] = vlt_i32(ids)[4];  // a repeated id accumulates
    vlt_tensor *out = vlt_embedding(w, ids);
    assert_non_null(out);
    assert_int_equal(out->ndim, 3);
    for (int i = 0; i < 10; i++)
        for (int d = 0; d < 3; d++) assert_true(vlt_f32(out)[i * 3 + d] == vlt_f32(w)[vlt_i32(ids)[i] * 3 + d]);
    assert_true(gradcheck(build_embedding, &w, 1, ids, 1e-2f) < GC_TOL);

    vlt_tensor *x = test_param(3, VLT_SHAPE(3, 4, 5), 52, 0, 0);
    vlt_tensor *idx = vlt_tensor_new(VLT_I32, VLT_CPU, 1, VLT_SHAPE(3), "idx");
    int32_t iv[3] = {3, 0, 2};
    memcpy(idx->data, iv, sizeof iv);
    vlt_tensor *g = vlt_gather_rows(x, idx);
    assert_non_null(g);
    for (int b = 0; b < 3; b++)
        for (int d = 0; d < 5; d++) assert_true(vlt_f32(g)[b * 5 + d] == vlt_f32(x)[(b * 4 + iv[b]) * 5 + d]);
    assert_true(gradcheck(build_gather, &x, 1, idx, 1e-2f) < GC_TOL);
    // argmax (EOT pooling): first maximum
    vlt_tensor *am = vlt_argmax_last(ids);
    for (int r = 0; r < 2; r++) {
        int best = 0;
        for (int c = 1; c < 5; c++) if (vlt_i32(ids)[r * 5 + c] > vlt_i32(ids)[r * 5 + best]) best = c;
        assert_int_equal(vlt_i32(am)[r], best);
    }
    vlt_tensor_free(w); vlt_tensor_free(ids); vlt_tensor_free(x); vlt_tensor_free(idx);
}

// ---------------------------------------------------------------- shape ops
typedef struct { int kind; int a, b, c; } sh_ctx;
static vlt_tensor *build_shape(vlt_tensor **in, void *c) {
    sh_ctx *s = c;
    switch (s->kind) {
    case 0: return vlt_reshape(in[0], 2, VLT_SHAPE(6, 5));
    case 1: return vlt_permute(in[0], VLT_SHAPE(2, 0, 1));
    case 2: return vlt_transpose(in[0], s->a, s->b);
    case 3: return vlt_slice(in[0], s->a, s->b, s->c);
    case 4: return vlt_concat(in, 5, s->a);
    case 5: return vlt_cast(vlt_cast(in[0], VLT_BF16), VLT_F32);
    default: return vlt_contiguous(vlt_view_transpose(in[0], 0, 2));
    }
}

static void test_shape_ops(void **state) {
    (void)state;
    vlt_tensor *x = test_param(3, VLT_SHAPE(2, 3, 5), 60, 0, 0);
    const float *xv = vlt_f32(x);
    sh_ctx c = {0, 0, 0, 0};
    // reshape shares storage
    vlt_tensor *r = build_shape(&x, &c);
    assert_ptr_equal(r->data, x->data);
    assert_true(gradcheck(build_shape, &x, 1, &c, 1e-2f) < GC_TOL);
    // permute (2, 0, 1): out[k][i][j] = x[i][j][k]
    c.kind = 1;
    vlt_tensor *p = build_shape(&x, &c);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 5; k++) assert_true(vlt_f32(p)[(k * 2 + i) * 3 + j] == xv[(i * 3 + j) * 5 + k]);
    assert_true(gradcheck(build_shape, &x, 1, &c, 1e-2f) < GC_TOL);
    c = (sh_ctx){2, 1, 2, 0};
    vlt_tensor *t = build_shape(&x, &c);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 5; k++) assert_true(vlt_f32(t)[(i * 5 + k) * 3 + j] == xv[(i * 3 + j) * 5 + k]);
    assert_true(gradcheck(build_shape, &x, 1, &c, 1e-2f) < GC_TOL);
    // slice along each dim
    for (int dim = 0; dim < 3; dim++) {
        c = (sh_ctx){3, dim, 1, 1};
        vlt_tensor *s = build_shape(&x, &c);
        assert_int_equal(s->shape[dim], 1);
        int64_t idx = 0;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 5; k++) {
                    int pos[3] = {i, j, k};
                    if (pos[dim] != 1) continue;
                    assert_true(vlt_f32(s)[idx++] == xv[(i * 3 + j) * 5 + k]);
                }
        assert_true(gradcheck(build_shape, &x, 1, &c, 1e-2f) < GC_TOL);
    }
    // concat of five inputs (more than one tape node's worth) along each dim
    for (int dim = 0; dim < 3; dim++) {
        vlt_tensor *xs[5];
        for (int k = 0; k < 5; k++) xs[k] = test_param(3, VLT_SHAPE(dim == 0 ? k + 1 : 2, dim == 1 ? k + 1 : 3, dim == 2 ? k + 1 : 2), 70 + k, 0, 0);
        c = (sh_ctx){4, dim, 0, 0};
        vlt_tensor *cat = build_shape(xs, &c);
        assert_non_null(cat);
        assert_int_equal(cat->shape[dim], 15);
        // the last element of the last input lands last
        assert_true(vlt_f32(cat)[cat->numel - 1] == vlt_f32(xs[4])[xs[4]->numel - 1]);
        assert_true(gradcheck(build_shape, xs, 5, &c, 1e-2f) < GC_TOL);
        for (int k = 0; k < 5; k++) vlt_tensor_free(xs[k]);
    }
    // bf16 round trip: within bf16 rounding, gradient passes through
    c.kind = 5;
    vlt_tensor *bb = build_shape(&x, &c);
    for (int64_t i = 0; i < x->numel; i++) assert_true(fabsf(vlt_f32(bb)[i] - xv[i]) <= fabsf(xv[i]) * (1.0f / 256));
    // contiguous copy of a strided view
    c.kind = 6;
    vlt_tensor *ct = build_shape(&x, &c);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 5; k++) assert_true(vlt_f32(ct)[(k * 3 + j) * 2 + i] == xv[(i * 3 + j) * 5 + k]);
    vlt_tensor_free(x);
}

static void test_bf16_conversion(void **state) {
    (void)state;
    assert_int_equal(vlt_f32_to_bf16(1.0f), 0x3f80);
    assert_true(vlt_bf16_to_f32(vlt_f32_to_bf16(3.14159f)) == 3.140625f);
    // ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> 1
    assert_int_equal(vlt_f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);
    assert_int_equal(vlt_f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
    assert_true(isnan(vlt_bf16_to_f32(vlt_f32_to_bf16(NAN))));
    assert_true(isinf(vlt_bf16_to_f32(vlt_f32_to_bf16(INFINITY))));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_matmul, teardown),
        cmocka_unit_test_teardown(test_linear, teardown),
        cmocka_unit_test_teardown(test_operand_ops_on_cpu, teardown),
        cmocka_unit_test_teardown(test_binary_broadcast, teardown),
        cmocka_unit_test_teardown(test_unary, teardown),
        cmocka_unit_test_teardown(test_reductions, teardown),
        cmocka_unit_test_teardown(test_layernorm, teardown),
        cmocka_unit_test_teardown(test_softmax_family, teardown),
        cmocka_unit_test_teardown(test_cross_entropy, teardown),
        cmocka_unit_test_teardown(test_attention, teardown),
        cmocka_unit_test_teardown(test_embedding_and_gather, teardown),
        cmocka_unit_test_teardown(test_shape_ops, teardown),
        cmocka_unit_test(test_bf16_conversion),
    };
    int rc = cmocka_run_group_tests_name("autograd_ops", tests, NULL, NULL);
    vlt_tape_shutdown();
    return rc;
}
