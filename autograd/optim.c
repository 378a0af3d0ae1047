// optim.c — AdamW, SGD, clipping, zeroing (see optim.h).
#include "autograd/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/device.h"
#include "autograd/ops_cuda.h"

#define OPT_PAR_MIN 32768

static vlt_status check_params(const char *op, vlt_tensor **params, int n) {
    if (n < 1 || !params) return vlt_error_set(VLT_ERR_ARG, "%s: no parameters", op);
    for (int i = 0; i < n; i++) {
        if (!params[i]) return vlt_error_set(VLT_ERR_ARG, "%s: parameter %d is NULL", op, i);
        if (params[i]->dtype != VLT_F32 || !params[i]->persistent)
            return vlt_error_set(VLT_ERR_DTYPE, "%s: parameter '%s' must be a persistent f32 tensor", op, params[i]->name);
        if (!params[i]->grad)
            return vlt_error_set(VLT_ERR_STATE, "%s: parameter '%s' has no gradient buffer", op, params[i]->name);
    }
    return VLT_OK;
}

// One zeroed buffer per parameter, on the parameter's device (fp32 state for fp32 master weights).
static float *state_buffer(const vlt_tensor *p) {
#ifdef VLT_HAVE_CUDA
    if (p->device == VLT_CUDA) {
        float *d = vlt_cuda_malloc((size_t)p->numel * sizeof(float));
        if (d) vlt_cuda_memset0(d, (size_t)p->numel * sizeof(float));
        return d;
    }
#endif
    return calloc((size_t)p->numel, sizeof(float));
}

static void state_buffer_free(const vlt_tensor *p, float *b) {
#ifdef VLT_HAVE_CUDA
    if (p->device == VLT_CUDA) { vlt_cuda_free(b); return; }
#else
    (void)p;
#endif
    free(b);
}

static void free_state(float **s, vlt_tensor **params, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++)
        if (s[i]) state_buffer_free(params[i], s[i]);
    free(s);
}

static float **alloc_state(vlt_tensor **params, int n) {
    float **s = calloc((size_t)n, sizeof *s);
    if (!s) return NULL;
    for (int i = 0; i < n; i++) {
        s[i] = state_buffer(params[i]);
        if (!s[i]) {
            free_state(s, params, i);
            return NULL;
        }
    }
    return s;
}

vlt_status vlt_adamw_state_to(vlt_adamw *o, vlt_device from, vlt_device dev) {
    if (from == dev) return VLT_OK;
#ifdef VLT_HAVE_CUDA
    for (int i = 0; i < o->n; i++) {
        size_t bytes = (size_t)o->params[i]->numel * sizeof(float);
        for (int k = 0; k < 2; k++) {
            float **slot = k ? &o->v[i] : &o->m[i];
            float *nb = dev == VLT_CUDA ? vlt_cuda_malloc(bytes) : malloc(bytes);
            if (!nb) return vlt_error_set(VLT_ERR_NOMEM, "adamw: cannot allocate the moments of '%s' on %s",
                                          o->params[i]->name, vlt_device_name(dev));
            if (dev == VLT_CUDA) vlt_cuda_copy_h2d(nb, *slot, bytes);
            else vlt_cuda_copy_d2h(nb, *slot, bytes);
            if (from == VLT_CUDA) vlt_cuda_free(*slot);
            else free(*slot);
            *slot = nb;
        }
    }
    return VLT_OK;
#else
    (void)o;
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "adamw: moving state to %s needs the CUDA backend", vlt_device_name(dev));
#endif
}

vlt_adamw_cfg vlt_adamw_defaults(void) { return (vlt_adamw_cfg){0.9f, 0.98f, 1e-6f, 0.2f}; }

vlt_adamw *vlt_adamw_new(vlt_tensor **params, const bool *decay, int n, vlt_adamw_cfg cfg) {
    if (check_params("adamw", params, n) != VLT_OK) return NULL;
    if (!(cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1 && cfg.eps > 0 && cfg.weight_decay >= 0)) {
        vlt_error_set(VLT_ERR_ARG, "adamw: betas must be in [0, 1), eps > 0, weight_decay >= 0 (got %g, %g, %g, %g)",
                      cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay);
        return NULL;
    }
    vlt_adamw *o = calloc(1, sizeof *o);
    if (!o) { vlt_error_set(VLT_ERR_NOMEM, "adamw: out of memory"); return NULL; }
    o->n = n;
    o->cfg = cfg;
    o->params = malloc((size_t)n * sizeof *o->params);
    if (o->params) memcpy(o->params, params, (size_t)n * sizeof *params);
    o->decay = malloc((size_t)n * sizeof *o->decay);
    o->m = o->params ? alloc_state(params, n) : NULL;
    o->v = o->params ? alloc_state(params, n) : NULL;
    if (!o->params || !o->decay || !o->m || !o->v) {
        vlt_adamw_free(o);
        vlt_error_set(VLT_ERR_NOMEM, "adamw: out of memory for optimizer state");
        return NULL;
    }
    for (int i = 0; i < n; i++) o->decay[i] = decay ? decay[i] : true;
    return o;
}

void vlt_adamw_free(vlt_adamw *o) {
    if (!o) return;
    free_state(o->m, o->params, o->n);
    free_state(o->v, o->params, o->n);
    free(o->params);
    free(o->decay);
    free(o);
}

vlt_status vlt_adamw_step(vlt_adamw *o, float lr) {
    o->t++;
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    const float bc1 = 1.0f - powf(b1, (float)o->t), bc2 = 1.0f - powf(b2, (float)o->t);
    const float step = lr / bc1, bc2_sqrt = sqrtf(bc2);
#ifdef VLT_HAVE_CUDA
    // Sync-free (issue 17): the scalars go through device memory (a copy from a pinned block
    // inside the step, which a captured graph keeps), and a step whose index checks failed makes
    // no update.
    const float *hyper = NULL;
    if (vlt_cuda_sync_free()) {
        const float hv[4] = {lr, step, bc2_sqrt, 0.0f};
        hyper = vlt_cuda_hyper_upload(o, hv);
    }
    // Device parameters: one multi-tensor launch (the same list every step: uploaded once).
    vlt_mt_entry *mt = calloc((size_t)o->n, sizeof *mt);
    VLT_ASSERT(mt, "adamw: out of host memory");
    int nmt = 0;
    for (int i = 0; i < o->n; i++) {
        vlt_tensor *p = o->params[i];
        if (!p->requires_grad || p->device != VLT_CUDA) continue;
        mt[nmt] = (vlt_mt_entry){{vlt_f32(p), vlt_f32(p->grad), o->m[i], o->v[i]}, p->numel,
                                 o->decay[i] ? o->cfg.weight_decay : 0.0f, 0.0f};
        nmt++;
    }
    if (hyper) vlt_cuda_adamw_mt_dev(mt, nmt, b1, b2, eps, hyper, vlt_cuda_bad_flag());
    else vlt_cuda_adamw_mt(mt, nmt, lr, b1, b2, eps, step, bc2_sqrt);
    free(mt);
#endif
    for (int i = 0; i < o->n; i++) {
        vlt_tensor *p = o->params[i];
        if (!p->requires_grad) continue;  // frozen (LiT): no update, no decay
        if (p->device != VLT_CPU) continue;  // done above
        float *w = vlt_f32(p), *g = vlt_f32(p->grad), *m = o->m[i], *v = o->v[i];
        const float wd = o->decay[i] ? o->cfg.weight_decay : 0.0f;
        const int64_t N = p->numel;
#pragma omp parallel for if (N > OPT_PAR_MIN)
        for (int64_t j = 0; j < N; j++) {
            w[j] -= lr * wd * w[j];
            m[j] = b1 * m[j] + (1.0f - b1) * g[j];
            v[j] = b2 * v[j] + (1.0f - b2) * g[j] * g[j];
            w[j] -= step * m[j] / (sqrtf(v[j]) / bc2_sqrt + eps);
        }
    }
    return VLT_OK;
}

void vlt_adamw_advance(vlt_adamw *o, float lr) {
    o->t++;
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2;
    const float bc1 = 1.0f - powf(b1, (float)o->t), bc2 = 1.0f - powf(b2, (float)o->t);
    const float hv[4] = {lr, lr / bc1, sqrtf(bc2), 0.0f};
#ifdef VLT_HAVE_CUDA
    vlt_cuda_hyper_set(o, hv);
#else
    (void)hv;
#endif
}

vlt_sgd *vlt_sgd_new(vlt_tensor **params, int n, float momentum, float weight_decay, bool nesterov) {
    if (check_params("sgd", params, n) != VLT_OK) return NULL;
    if (momentum < 0 || weight_decay < 0 || (nesterov && momentum <= 0)) {
        vlt_error_set(VLT_ERR_ARG, "sgd: momentum %g and weight_decay %g must be >= 0 (nesterov needs momentum > 0)",
                      momentum, weight_decay);
        return NULL;
    }
    vlt_sgd *o = calloc(1, sizeof *o);
    if (!o) { vlt_error_set(VLT_ERR_NOMEM, "sgd: out of memory"); return NULL; }
    o->n = n;
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov;
    o->params = malloc((size_t)n * sizeof *o->params);
    if (o->params) memcpy(o->params, params, (size_t)n * sizeof *params);
    o->buf = momentum > 0 && o->params ? alloc_state(params, n) : NULL;
    if (!o->params || (momentum > 0 && !o->buf)) {
        vlt_sgd_free(o);
        vlt_error_set(VLT_ERR_NOMEM, "sgd: out of memory");
        return NULL;
    }
    return o;
}

void vlt_sgd_free(vlt_sgd *o) {
    if (!o) return;
    free_state(o->buf, o->params, o->n);
    free(o->params);
    free(o);
}

vlt_status vlt_sgd_step(vlt_sgd *o, float lr) {
    const float mu = o->momentum, wd = o->weight_decay;
    for (int i = 0; i < o->n; i++) {
        vlt_tensor *p = o->params[i];
        if (!p->requires_grad) continue;
        float *w = vlt_f32(p), *g = vlt_f32(p->grad), *b = o->buf ? o->buf[i] : NULL;
#ifdef VLT_HAVE_CUDA
        if (p->device == VLT_CUDA) {
            vlt_cuda_sgd(w, g, b, p->numel, lr, wd, mu, o->nesterov, o->started);
            continue;
        }
#endif
        for (int64_t j = 0; j < p->numel; j++) {
            float d = g[j] + wd * w[j];
            if (b) {
                b[j] = o->started ? mu * b[j] + d : d;
                d = o->nesterov ? d + mu * b[j] : b[j];
            }
            w[j] -= lr * d;
        }
    }
    o->started = true;
    return VLT_OK;
}

#ifdef VLT_HAVE_CUDA
// The device gradients of params as a multi-tensor list (calloc'd; *n_out entries).
static vlt_mt_entry *device_grad_list(vlt_tensor **params, int n, int *n_out) {
    vlt_mt_entry *mt = calloc((size_t)(n > 0 ? n : 1), sizeof *mt);
    VLT_ASSERT(mt, "gradient list: out of host memory");
    int k = 0;
    for (int i = 0; i < n; i++)
        if (params[i]->grad && params[i]->grad->device == VLT_CUDA)
            mt[k++] = (vlt_mt_entry){{vlt_f32(params[i]->grad), NULL, NULL, NULL}, params[i]->numel, 0.0f, 0.0f};
    *n_out = k;
    return mt;
}
#endif

// Device gradients: their squares summed on the device (one double, read back once).
static double device_sumsq(vlt_tensor **params, int n) {
#ifdef VLT_HAVE_CUDA
    int k;
    vlt_mt_entry *mt = device_grad_list(params, n, &k);
    double ss = 0;
    if (k) {
        double *acc = vlt_cuda_arena_alloc(sizeof(double));
        VLT_ASSERT(acc, "clip_grad_norm: device step arena out of memory");
        vlt_cuda_memset0(acc, sizeof(double));
        vlt_cuda_sumsq_mt(acc, mt, k);
        vlt_cuda_copy_d2h(&ss, acc, sizeof ss);
    }
    free(mt);
    return ss;
#else
    (void)params;
    (void)n;
    return 0;
#endif
}

#ifdef VLT_HAVE_CUDA
// Sync-free (issue 17): the norm and the coefficient stay on the device (vlt_last_grad_norm reads
// the norm after the step). Only for parameters that are all on the device.
static bool clip_on_device(vlt_tensor **params, int n, float max_norm) {
    if (!vlt_cuda_sync_free()) return false;
    for (int i = 0; i < n; i++)
        if (params[i]->device != VLT_CUDA) return false;
    int k;
    vlt_mt_entry *mt = device_grad_list(params, n, &k);
    double *acc = vlt_cuda_arena_alloc(sizeof(double));
    VLT_ASSERT(acc, "clip_grad_norm: device step arena out of memory");
    vlt_cuda_memset0(acc, sizeof(double));
    if (k) vlt_cuda_sumsq_mt(acc, mt, k);
    const float *coef = vlt_cuda_clip_coef(acc, max_norm);
    if (k && coef) vlt_cuda_scale_mt_dev(mt, k, coef + 1);
    free(mt);
    return true;
}
#endif

float vlt_clip_grad_norm(vlt_tensor **params, int n, float max_norm) {
#ifdef VLT_HAVE_CUDA
    if (clip_on_device(params, n, max_norm)) return NAN;  // on the device: vlt_last_grad_norm after the step
#endif
    double ss = device_sumsq(params, n);
    for (int i = 0; i < n; i++) {
        if (params[i]->device != VLT_CPU) continue;
        const float *g = vlt_f32(params[i]->grad);
        for (int64_t j = 0; j < params[i]->numel; j++) ss += (double)g[j] * g[j];
    }
    float norm = (float)sqrt(ss);
    if (max_norm > 0 && isfinite(norm) && norm > max_norm) {
        float k = max_norm / (norm + 1e-6f);
#ifdef VLT_HAVE_CUDA
        int nd;
        vlt_mt_entry *mt = device_grad_list(params, n, &nd);
        vlt_cuda_scale_mt(mt, nd, k);
        free(mt);
#endif
        for (int i = 0; i < n; i++) {
            if (params[i]->device != VLT_CPU) continue;
            float *g = vlt_f32(params[i]->grad);
            for (int64_t j = 0; j < params[i]->numel; j++) g[j] *= k;
        }
    }
    return norm;
}

void vlt_zero_grad(vlt_tensor **params, int n) {
#ifdef VLT_HAVE_CUDA
    int nd;
    vlt_mt_entry *mt = device_grad_list(params, n, &nd);
    vlt_cuda_scale_mt(mt, nd, 0.0f);
    free(mt);
#endif
    for (int i = 0; i < n; i++) {
        if (!params[i]->grad || params[i]->grad->device != VLT_CPU) continue;
        memset(params[i]->grad->data, 0, (size_t)params[i]->numel * sizeof(float));
    }
}
