// fixture_io.h — reading the models' reference fixtures (safetensors written by the scripts in
// scripts/reference/) into tensors, and the error measure the parity tests state. Header-only,
// for cmocka suites (include after cmocka.h).
#ifndef VLT_TEST_FIXTURE_IO_H
#define VLT_TEST_FIXTURE_IO_H

#include <math.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "checkpoints/safetensors.h"

// max |a - ref| / max |ref| over n values: the "relative" error the parity tolerances refer to.
static inline double rel_err(const float *a, const float *ref, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - ref[i]));
        m = fmax(m, fabs((double)ref[i]));
    }
    return d / fmax(m, 1e-30);
}

static inline vlt_tensor *read_f32(vlt_safetensors *f, const char *name) {
    const vlt_st_tensor *t = vlt_safetensors_get(f, name);
    if (!t) fail_msg("fixture lacks %s", name);
    int shape[4];
    for (int d = 0; d < t->ndim; d++) shape[d] = (int)t->shape[d];
    vlt_tensor *x = vlt_tensor_new(VLT_F32, VLT_CPU, t->ndim, shape, name);
    assert_int_equal(vlt_safetensors_read_f32(f, name, vlt_f32(x), x->numel), VLT_OK);
    return x;
}

static inline vlt_tensor *read_ids(vlt_safetensors *f, const char *name) {
    const vlt_st_tensor *t = vlt_safetensors_get(f, name);
    if (!t) fail_msg("fixture lacks %s", name);
    vlt_tensor *x = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE((int)t->shape[0], (int)t->shape[1]), name);
    int64_t *tmp = malloc(sizeof(int64_t) * (size_t)x->numel);
    assert_int_equal(vlt_safetensors_read_i64(f, name, tmp, x->numel), VLT_OK);
    for (int64_t i = 0; i < x->numel; i++) vlt_i32(x)[i] = (int32_t)tmp[i];
    free(tmp);
    return x;
}

#endif
