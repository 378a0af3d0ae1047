// gradcheck.h — test helpers: random tensors, and the central finite-difference check of an
// op's backward. Header-only, for the cmocka suites.
//
// The check: L(x) = Σ out ⊙ R with fixed random R. The analytic gradient comes from
// vlt_backward on that L; the numeric one from (L(x+h) - L(x-h)) / 2h per sampled element, with
// L accumulated in double. They must agree to |a - n| <= tol · max(1, |a|, |n|).
#ifndef VLT_TEST_GRADCHECK_H
#define VLT_TEST_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "autograd/optim.h"
#include "autograd/rng.h"

// A persistent f32 parameter filled with N(0, std) (or U(lo, hi) when lo < hi).
static inline vlt_tensor *test_param(int ndim, const int *shape, uint64_t seed, float lo, float hi) {
    vlt_tensor *t = vlt_tensor_new_param(ndim, shape, "test_input");
    if (lo < hi) vlt_rng_fill_uniform(vlt_f32(t), (size_t)t->numel, lo, hi, seed, VLT_RNG_TEST, 0);
    else vlt_rng_fill_normal(vlt_f32(t), (size_t)t->numel, 0.0f, 1.0f, seed, VLT_RNG_TEST, 0);
    return t;
}

static inline vlt_tensor *test_ids(int ndim, const int *shape, int hi, uint64_t seed) {
    vlt_tensor *t = vlt_tensor_new(VLT_I32, VLT_CPU, ndim, shape, "test_ids");
    for (int64_t i = 0; i < t->numel; i++) vlt_i32(t)[i] = (int32_t)vlt_rng_below(seed, 99, (uint64_t)i, (uint64_t)hi);
    return t;
}

typedef vlt_tensor *(*gc_build_fn)(vlt_tensor **in, void *ctx);

static inline double gc_loss(vlt_tensor *out, const float *r) {
    double s = 0;
    for (int64_t i = 0; i < out->numel; i++) s += (double)vlt_f32(out)[i] * r[i];
    return s;
}

// Returns the worst relative error over the sampled elements of the inputs that require grad.
static inline double gradcheck(gc_build_fn f, vlt_tensor **in, int n_in, void *ctx, float h) {
    vlt_step_reset();
    for (int k = 0; k < n_in; k++)
        if (in[k]->requires_grad) vlt_zero_grad(&in[k], 1);
    vlt_tensor *out = f(in, ctx);
    if (!out) { fprintf(stderr, "gradcheck: forward failed: %s\n", vlt_error_message()); return INFINITY; }
    int64_t n_out = out->numel;
    float *r = malloc((size_t)n_out * sizeof(float));
    vlt_rng_fill_normal(r, (size_t)n_out, 0.0f, 1.0f, 12345, VLT_RNG_TEST, 7);
    vlt_tensor *rt = vlt_tensor_new(VLT_F32, VLT_CPU, out->ndim, out->shape, "r");
    memcpy(rt->data, r, (size_t)n_out * sizeof(float));
    vlt_tensor *loss = vlt_sum_all(vlt_mul(out, rt));
    if (!loss || vlt_backward(loss) != VLT_OK) {
        fprintf(stderr, "gradcheck: backward failed: %s\n", vlt_error_message());
        return INFINITY;
    }
    double worst = 0;
    for (int k = 0; k < n_in; k++) {
        vlt_tensor *x = in[k];
        if (!x->requires_grad) continue;
        float *xv = vlt_f32(x), *g = vlt_f32(x->grad);
        int64_t stride = x->numel > 48 ? x->numel / 48 : 1;  // sample about 48 elements
        for (int64_t i = 0; i < x->numel; i += stride) {
            float keep = xv[i];
            vlt_no_grad_enter();
            xv[i] = keep + h;
            double lp = gc_loss(f(in, ctx), r);
            xv[i] = keep - h;
            double lm = gc_loss(f(in, ctx), r);
            vlt_no_grad_exit();
            xv[i] = keep;
            double num = (lp - lm) / (2.0 * h), ana = g[i];
            double err = fabs(num - ana) / fmax(1.0, fmax(fabs(num), fabs(ana)));
            if (err > worst) worst = err;
            if (err > 1e-2)
                fprintf(stderr, "gradcheck: input %d element %lld: analytic %.6g numeric %.6g\n", k, (long long)i, ana, num);
        }
    }
    free(r);
    vlt_tensor_free(rt);
    vlt_step_reset();
    return worst;
}

static inline double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

#endif
