// ALBEF's state updates and step on the GPU against the CPU (issue 15's GPU part, issue 17's
// "every model on the GPU"):
//   - the momentum EMA (autograd/momentum.c: one multi-tensor launch over every pair on the GPU)
//     gives the host loop's bits: m·mu and o·(1 − mu) each rounded, then the sum, no FMA, on
//     tensors crossing the launch's 64K-element chunks;
//   - the feature-queue update writes the rows as columns at the pointer, wrapping, and advances
//     it (also with more rows than the queue holds, and a pointer out of range): checked on the
//     host against the written-out expectation (runs without a GPU) and on the GPU against the
//     host bit for bit;
//   - (further tests below) a whole ALBEF step on both devices.
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
#include "autograd/momentum.h"
#include "autograd/ops.h"
#include "autograd/rng.h"

#define NEED_GPU()                              \
    do {                                        \
        if (!vlt_cuda_available()) {            \
            printf("skipped: no GPU\n");        \
            skip();                             \
        }                                       \
    } while (0)

static vlt_tensor *randn(int ndim, const int *shape, const char *name, uint64_t seed) {
    vlt_tensor *t = vlt_tensor_new(VLT_F32, VLT_CPU, ndim, shape, name);
    assert_non_null(t);
    vlt_rng_fill_normal(vlt_f32(t), (size_t)t->numel, 0.0f, 1.0f, seed, vlt_rng_hash_str(name), 0);
    return t;
}

static vlt_tensor *on_gpu(const vlt_tensor *t) {
    vlt_tensor *d = vlt_tensor_to(t, VLT_CUDA);
    if (!d) fail_msg("%s", vlt_error_message());
    return d;
}

// The number of elements of `dev` (copied back) whose bits differ from `host`.
static int64_t bits_differ(const vlt_tensor *dev, const vlt_tensor *host) {
    vlt_tensor *h = vlt_tensor_to(dev, VLT_CPU);
    assert_non_null(h);
    int64_t n = 0;
    size_t es = vlt_dtype_size(host->dtype);
    for (int64_t i = 0; i < host->numel; i++)
        n += memcmp((const char *)h->data + i * es, (const char *)host->data + i * es, es) != 0;
    vlt_tensor_free(h);
    return n;
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ema_host_is_the_formula),
        cmocka_unit_test(test_queue_host_wraps),
        cmocka_unit_test(test_ema_gpu_matches_host_bits),
        cmocka_unit_test(test_queue_gpu_matches_host),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    vlt_cuda_shutdown();
    return rc;
}
