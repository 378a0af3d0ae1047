// cuda_compare.h — what the GPU-against-CPU suites share: the skip without a device, host-to-GPU
// copies, and the comparisons of a device tensor with its host counterpart (bit for bit, within the
// per-tensor tolerance, a parameter within AdamW's bound where its gradient is exactly 0, a scalar
// loss). Include after <cmocka.h>. Everything is static inline: a suite uses the parts it needs.
#ifndef VLT_TESTS_CUDA_COMPARE_H
#define VLT_TESTS_CUDA_COMPARE_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "autograd/device.h"
#include "autograd/params.h"

// A GPU case without a device prints this and is reported as skipped.
#define NEED_GPU()                              \
    do {                                        \
        if (!vlt_cuda_available()) {            \
            printf("skipped: no GPU\n");        \
            skip();                             \
        }                                       \
    } while (0)

static inline vlt_tensor *on_gpu(const vlt_tensor *t) {
    vlt_tensor *d = vlt_tensor_to(t, VLT_CUDA);
    if (!d) fail_msg("%s", vlt_error_message());
    return d;
}

// The number of elements of `a` (any device, copied back) whose bits differ from host tensor `host`.
static inline int64_t bits_differ(const vlt_tensor *a, const vlt_tensor *host) {
    vlt_tensor *h = vlt_tensor_to(a, VLT_CPU);
    assert_non_null(h);
    int64_t n = 0;
    size_t es = vlt_dtype_size(host->dtype);
    for (int64_t i = 0; i < host->numel; i++)
        n += memcmp((const char *)h->data + i * es, (const char *)host->data + i * es, es) != 0;
    vlt_tensor_free(h);
    return n;
}

static inline void assert_same_bits(const char *what, const vlt_tensor *a, const vlt_tensor *b) {
    if (!a || !b) fail_msg("%s: missing (%p, %p)", what, (const void *)a, (const void *)b);
    int64_t n = bits_differ(a, b);
    if (n) fail_msg("%s: %lld elements differ", what, (long long)n);
}

// max |gpu - cpu| <= 1e-4 + 1e-3 · max |cpu| (fp32 on both sides: summation order); a NaN fails.
// worst (may be NULL) keeps the largest difference as a fraction of its tolerance.
static inline bool close_tensor(const char *what, const vlt_tensor *gpu, const vlt_tensor *cpu, double *worst) {
    vlt_tensor *h = vlt_tensor_to(gpu, VLT_CPU);
    assert_non_null(h);
    double maxc = 0, maxd = 0;
    for (int64_t i = 0; i < cpu->numel; i++) {
        maxc = fmax(maxc, fabs(vlt_f32(cpu)[i]));
        double d = fabs((double)vlt_f32(h)[i] - vlt_f32(cpu)[i]);
        if (!(d <= maxd)) maxd = d;   // NaN sticks
    }
    vlt_tensor_free(h);
    bool ok = maxd <= 1e-4 + 1e-3 * maxc;
    if (worst && maxd / (1e-4 + 1e-3 * maxc) > *worst) *worst = maxd / (1e-4 + 1e-3 * maxc);
    if (!ok) fprintf(stderr, "%s: max |gpu - cpu| %.3g with max |cpu| %.3g\n", what, maxd, maxc);
    return ok;
}

// The gradient of every trainable tensor of the GPU table d against the CPU table c (the same
// order), each within close_tensor's tolerance (the case fails otherwise). How many were compared.
static inline int close_grads(const vlt_params *c, const vlt_params *d, double *worst) {
    int n = 0;
    for (int i = 0; i < c->n; i++) {
        vlt_tensor *tc = c->t[i], *td = d->t[i];
        if (!tc->requires_grad) continue;
        assert_true(close_tensor(tc->name, td->grad, tc->grad, worst));
        n++;
    }
    return n;
}

// A parameter (or momentum copy) after `steps` AdamW steps of learning rate lr. The key biases
// have an exact gradient of 0 (softmax ignores a shift common to all keys), so AdamW's update of
// them is its normalised reading of rounding noise, which differs between devices by up to lr per
// step each way. A tensor whose name contains one of `key_biases` (a NULL-terminated list: each
// suite names its model's) is held to 2 · lr · steps plus the usual 1e-4; the rest to close_tensor.
static inline bool close_param(const char *const *key_biases, const char *name, const vlt_tensor *gpu,
                               const vlt_tensor *cpu, double *worst, float lr, int steps) {
    bool key = false;
    for (const char *const *k = key_biases; *k; k++) key = key || strstr(name, *k);
    if (!key) return close_tensor(name, gpu, cpu, worst);
    vlt_tensor *h = vlt_tensor_to(gpu, VLT_CPU);
    assert_non_null(h);
    double maxd = 0, bound = 2.0 * lr * steps + 1e-4;
    for (int64_t i = 0; i < cpu->numel; i++) {
        double d = fabs((double)vlt_f32(h)[i] - vlt_f32(cpu)[i]);
        if (!(d <= maxd)) maxd = d;   // NaN sticks
    }
    vlt_tensor_free(h);
    if (!(maxd <= bound)) fprintf(stderr, "%s: max |gpu - cpu| %.3g above AdamW's bound %.3g\n", name, maxd, bound);
    return maxd <= bound;
}

// A one-element loss on both devices, printed with its name padded to `width`: |gpu - cpu| <=
// 1e-4 · max(1, |cpu|), else the case fails. Returns the difference.
static inline double scalar_close_w(int width, const char *what, vlt_tensor *gpu, vlt_tensor *cpu) {
    if (!gpu || !cpu) fail_msg("%s: %s", what, vlt_error_message());
    double g = vlt_tensor_item(gpu, 0), c = vlt_tensor_item(cpu, 0), d = fabs(g - c);
    print_message("  %-*s cpu %.7f  gpu %.7f  |diff| %.2g\n", width, what, c, g, d);
    if (!(d <= 1e-4 * fmax(1.0, fabs(c)))) fail_msg("%s differs: cpu %.8g, gpu %.8g", what, c, g);
    return d;
}

static inline double scalar_close(const char *what, vlt_tensor *gpu, vlt_tensor *cpu) {
    return scalar_close_w(9, what, gpu, cpu);
}

#endif
