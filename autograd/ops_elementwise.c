// ops_elementwise.c — add, sub, mul (with trailing broadcast), scale, exp, log, clamp, GELUs.
#include <math.h>

#include "autograd/fast_math.h"
#include "autograd/ops_internal.h"

// b broadcasts against a when it has one element or equals a's trailing dims.
static bool broadcast_ok(const char *op, const vlt_tensor *a, const vlt_tensor *b) {
    if (b->numel == 1 || vlt_tensor_same_shape(a, b)) return true;
    bool ok = b->ndim <= a->ndim;
    for (int d = 0; ok && d < b->ndim; d++) ok = b->shape[b->ndim - 1 - d] == a->shape[a->ndim - 1 - d];
    if (!ok) {
        char sa[64], sb[64];
        vlt_error_set(VLT_ERR_SHAPE, "%s: cannot broadcast %s '%s' against %s '%s' (b must have one element "
                      "or match a's trailing dims)", op, vlt_shape_str(b, sb, sizeof sb), b->name,
                      vlt_shape_str(a, sa, sizeof sa), a->name);
    }
    return ok;
}

enum { BIN_ADD = VLT_BIN_ADD, BIN_SUB = VLT_BIN_SUB, BIN_MUL = VLT_BIN_MUL };  // ops_cuda.h

static void binary_backward(vlt_node *n) {
    vlt_tensor *a = n->in[0], *b = n->in[1];
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(a)) {
        const float *gd = vlt_f32(n->out->grad);
        int64_t Nd = a->numel, inner_d = b->numel;
        int kd = n->i[0];
        // add / sub pass the gradient through: a takes over out's gradient buffer when it can
        // (vlt_grad_steal); a same-shape b then takes it, or gets a copy written once.
        bool a_took = false;
        if (a->requires_grad) {
            if (kd != BIN_MUL && vlt_grad_steal(a, n->out->grad)) a_took = true;
            else vlt_cuda_binary_bwd_a(kd, gd, vlt_f32(b), vlt_f32(vlt_grad_of(a)), Nd, inner_d);
        }
        if (b->requires_grad) {
            bool fresh = false;
            if (kd == BIN_ADD && inner_d == Nd && !a_took && vlt_grad_steal(b, n->out->grad)) {
            } else if (kd != BIN_MUL && inner_d == Nd && (vlt_grad_for_write(b, &fresh), fresh)) {
                vlt_cuda_unary_fwd(VLT_UN_SCALE, gd, vlt_f32(b->grad), Nd, kd == BIN_SUB ? -1.0f : 1.0f, 0.0f);
            } else {
                vlt_cuda_colsum_acc(vlt_f32(vlt_grad_of(b)), gd, kd == BIN_MUL ? vlt_f32(a) : NULL, Nd / inner_d,
                                    inner_d, kd == BIN_SUB ? -1.0f : 1.0f);
            }
        }
        return;
    }
#endif
    const float *g = vlt_f32(n->out->grad), *av = vlt_f32(a), *bv = vlt_f32(b);
    int64_t N = a->numel, inner = b->numel;
    int kind = n->i[0];
    if (a->requires_grad) {
        float *ga = vlt_f32(vlt_grad_of(a));
#pragma omp parallel for if (N > VLT_PAR_MIN)
        for (int64_t i = 0; i < N; i++) ga[i] += kind == BIN_MUL ? g[i] * bv[i % inner] : g[i];
    }
    if (b->requires_grad) {
        float *gb = vlt_f32(vlt_grad_of(b));
        float sign = kind == BIN_SUB ? -1.0f : 1.0f;
        // Sum over the broadcast (outer) rows, row by row (cache-friendly), in double.
        double *s = vlt_step_scratch((size_t)inner * sizeof(double));
        VLT_ASSERT(s, "%s backward: step arena out of memory", n->op);
        memset(s, 0, (size_t)inner * sizeof(double));
        for (int64_t r = 0; r < N; r += inner)
            for (int64_t j = 0; j < inner; j++)
                s[j] += kind == BIN_MUL ? (double)g[r + j] * av[r + j] : (double)g[r + j];
        for (int64_t j = 0; j < inner; j++) gb[j] += sign * (float)s[j];
    }
}

static vlt_tensor *binary(const char *op, int kind, vlt_tensor *a, vlt_tensor *b) {
    if (!op_input_ok(op, a, VLT_F32) || !op_input_ok(op, b, VLT_F32)) return NULL;
    if (!op_same_device(op, a, b) || !broadcast_ok(op, a, b)) return NULL;
    vlt_tensor *out = op_out_on(a->device, a->ndim, a->shape);
    if (!out) return NULL;
    const float *av = vlt_f32(a), *bv = vlt_f32(b);
    float *o = vlt_f32(out);
    int64_t N = a->numel, inner = b->numel;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(a)) {
        vlt_cuda_binary_fwd(kind, av, bv, o, N, inner);
    } else
#endif
    {
#pragma omp parallel for if (N > VLT_PAR_MIN)
        for (int64_t i = 0; i < N; i++) {
            float y = bv[i % inner];
            o[i] = kind == BIN_ADD ? av[i] + y : kind == BIN_SUB ? av[i] - y : av[i] * y;
        }
    }
    vlt_node *n = vlt_tape_record(op, binary_backward, out, 2, (vlt_tensor *[]){a, b});
    if (n) n->i[0] = kind;
    return out;
}

vlt_tensor *vlt_add(vlt_tensor *a, vlt_tensor *b) { return binary("add", BIN_ADD, a, b); }
vlt_tensor *vlt_sub(vlt_tensor *a, vlt_tensor *b) { return binary("sub", BIN_SUB, a, b); }
vlt_tensor *vlt_mul(vlt_tensor *a, vlt_tensor *b) { return binary("mul", BIN_MUL, a, b); }

// ---- unary ops: forward value and local derivative dy/dx from (x, y) ----
enum {  // the shared numbering of ops_cuda.h
    UN_SCALE = VLT_UN_SCALE, UN_EXP = VLT_UN_EXP, UN_LOG = VLT_UN_LOG, UN_CLAMP = VLT_UN_CLAMP, UN_GELU = VLT_UN_GELU,
    UN_GELU_TANH = VLT_UN_GELU_TANH, UN_QUICK_GELU = VLT_UN_QUICK_GELU, UN_LOG_SIGMOID = VLT_UN_LOG_SIGMOID
};

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2 0.7071067811865476f

static inline float unary_fwd(int kind, float x, const float *f) {
    switch (kind) {
    case UN_SCALE: return x * f[0];
    case UN_EXP: return expf(x);
    case UN_LOG: return logf(x);
    case UN_CLAMP: return x < f[0] ? f[0] : x > f[1] ? f[1] : x;
    case UN_GELU: return 0.5f * x * (1.0f + erff(x * INV_SQRT_2));
    case UN_GELU_TANH: return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)));
    case UN_QUICK_GELU: return x / (1.0f + expf(-1.702f * x));
    case UN_LOG_SIGMOID: return fminf(x, 0.0f) - log1pf(expf(-fabsf(x)));  // stable for large |x|
    }
    return 0;
}

static inline float unary_grad(int kind, float x, float y, const float *f) {
    switch (kind) {
    case UN_SCALE: return f[0];
    case UN_EXP: return y;
    case UN_LOG: return 1.0f / x;
    case UN_CLAMP: return (x < f[0] || x > f[1]) ? 0.0f : 1.0f;
    case UN_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT_2));
        float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
        return cdf + x * pdf;
    }
    case UN_GELU_TANH: {
        float u = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
        float t = tanhf(u);
        float du = SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x * x);
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
    case UN_QUICK_GELU: {
        float s = 1.0f / (1.0f + expf(-1.702f * x));
        return s + x * 1.702f * s * (1.0f - s);
    }
    case UN_LOG_SIGMOID: return 1.0f / (1.0f + expf(x));  // σ(-x)
    }
    return 0;
}

// CPU loops in chunks that OpenMP spreads over threads. The GELUs run 8 lanes at a time with
// fast_math.h (each chunk compiled for AVX2 and for the baseline, chosen at run time); a tail
// of fewer than 8 and every other op use the scalar libm forms above.
#define UNARY_CHUNK 4096

VLT_V8_INLINE vlt_v8f load8(const float *p) {
    vlt_v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

VLT_V8_INLINE void store8(float *p, vlt_v8f v) { memcpy(p, &v, sizeof v); }

// GELU (erf form) and QuickGELU forward on 8 lanes.
VLT_V8_INLINE vlt_v8f gelu8(vlt_v8f x) { return VLT_V8(0.5f) * x * (VLT_V8(1.0f) + vlt_v8_erf(x * VLT_V8(INV_SQRT_2))); }
VLT_V8_INLINE vlt_v8f quick_gelu8(vlt_v8f x) { return x / (VLT_V8(1.0f) + vlt_v8_exp(VLT_V8(-1.702f) * x)); }

// Their derivatives: Φ(x) + x·φ(x), and σ(1.702x)·(1 + 1.702x·(1 - σ(1.702x))).
VLT_V8_INLINE vlt_v8f gelu8_grad(vlt_v8f x) {
    vlt_v8f cdf = VLT_V8(0.5f) * (VLT_V8(1.0f) + vlt_v8_erf(x * VLT_V8(INV_SQRT_2)));
    vlt_v8f pdf = VLT_V8(0.3989422804014327f) * vlt_v8_exp(VLT_V8(-0.5f) * x * x);
    return cdf + x * pdf;
}

VLT_V8_INLINE vlt_v8f quick_gelu8_grad(vlt_v8f x) {
    vlt_v8f s = VLT_V8(1.0f) / (VLT_V8(1.0f) + vlt_v8_exp(VLT_V8(-1.702f) * x));
    return s + x * VLT_V8(1.702f) * s * (VLT_V8(1.0f) - s);
}

__attribute__((target_clones("avx2", "default")))
static void unary_fwd_chunk(int kind, const float *restrict x, float *restrict o, int64_t n, const float *f) {
    int64_t i = 0;
    if (kind == UN_GELU)
        for (; i + 8 <= n; i += 8) store8(o + i, gelu8(load8(x + i)));
    else if (kind == UN_QUICK_GELU)
        for (; i + 8 <= n; i += 8) store8(o + i, quick_gelu8(load8(x + i)));
    for (; i < n; i++) o[i] = unary_fwd(kind, x[i], f);
}

__attribute__((target_clones("avx2", "default")))
static void unary_bwd_chunk(int kind, const float *restrict g, const float *restrict x, const float *restrict y,
                            float *restrict gx, int64_t n, const float *f) {
    int64_t i = 0;
    if (kind == UN_GELU)
        for (; i + 8 <= n; i += 8) store8(gx + i, load8(gx + i) + load8(g + i) * gelu8_grad(load8(x + i)));
    else if (kind == UN_QUICK_GELU)
        for (; i + 8 <= n; i += 8) store8(gx + i, load8(gx + i) + load8(g + i) * quick_gelu8_grad(load8(x + i)));
    for (; i < n; i++) gx[i] += g[i] * unary_grad(kind, x[i], y[i], f);
}

static void unary_fwd_cpu(int kind, const float *x, float *o, int64_t N, const float *f) {
    int64_t chunks = (N + UNARY_CHUNK - 1) / UNARY_CHUNK;
#pragma omp parallel for if (N > VLT_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * UNARY_CHUNK, n = N - lo < UNARY_CHUNK ? N - lo : UNARY_CHUNK;
        unary_fwd_chunk(kind, x + lo, o + lo, n, f);
    }
}

static void unary_bwd_cpu(int kind, const float *g, const float *x, const float *y, float *gx, int64_t N, const float *f) {
    int64_t chunks = (N + UNARY_CHUNK - 1) / UNARY_CHUNK;
#pragma omp parallel for if (N > VLT_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * UNARY_CHUNK, n = N - lo < UNARY_CHUNK ? N - lo : UNARY_CHUNK;
        unary_bwd_chunk(kind, g + lo, x + lo, y + lo, gx + lo, n, f);
    }
}

static void unary_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    const float *g = vlt_f32(n->out->grad), *xv = vlt_f32(x), *yv = vlt_f32(n->out);
    int kind = n->i[0];
    int64_t N = x->numel;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) {
        bool fresh;
        float *gxd = vlt_f32(vlt_grad_for_write(x, &fresh));
        vlt_cuda_unary_bwd(kind, g, xv, yv, gxd, N, n->f[0], n->f[1], fresh);
        return;
    }
#endif
    float *gx = vlt_f32(vlt_grad_of(x));
    unary_bwd_cpu(kind, g, xv, yv, gx, N, n->f);
}

static vlt_tensor *unary(const char *op, int kind, vlt_tensor *x, float f0, float f1) {
    if (!op_input_ok(op, x, VLT_F32)) return NULL;
    vlt_tensor *out = op_out_on(x->device, x->ndim, x->shape);
    if (!out) return NULL;
    const float f[2] = {f0, f1};
    const float *xv = vlt_f32(x);
    float *o = vlt_f32(out);
    int64_t N = x->numel;
#ifdef VLT_HAVE_CUDA
    if (ON_CUDA(x)) {
        vlt_cuda_unary_fwd(kind, xv, o, N, f0, f1);
    } else
#endif
    {
        unary_fwd_cpu(kind, xv, o, N, f);
    }
    vlt_node *n = vlt_tape_record(op, unary_backward, out, 1, &x);
    if (n) { n->i[0] = kind; n->f[0] = f0; n->f[1] = f1; }
    return out;
}

vlt_tensor *vlt_scale(vlt_tensor *a, float s) { return unary("scale", UN_SCALE, a, s, 0); }
vlt_tensor *vlt_exp(vlt_tensor *a) { return unary("exp", UN_EXP, a, 0, 0); }
vlt_tensor *vlt_log(vlt_tensor *a) { return unary("log", UN_LOG, a, 0, 0); }
vlt_tensor *vlt_gelu(vlt_tensor *a) { return unary("gelu", UN_GELU, a, 0, 0); }
vlt_tensor *vlt_gelu_tanh(vlt_tensor *a) { return unary("gelu_tanh", UN_GELU_TANH, a, 0, 0); }
vlt_tensor *vlt_quick_gelu(vlt_tensor *a) { return unary("quick_gelu", UN_QUICK_GELU, a, 0, 0); }
vlt_tensor *vlt_log_sigmoid(vlt_tensor *a) { return unary("log_sigmoid", UN_LOG_SIGMOID, a, 0, 0); }

vlt_tensor *vlt_clamp(vlt_tensor *a, float lo, float hi) {
    if (a && !(lo <= hi)) {
        vlt_error_set(VLT_ERR_ARG, "clamp: lo %g is above hi %g", lo, hi);
        return NULL;
    }
    return unary("clamp", UN_CLAMP, a, lo, hi);
}
