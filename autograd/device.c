// device.c — the host side of devices (see device.h): availability, copies, moving parameters,
// the default device, the tape-aware device copy. The CUDA runtime calls are in cuda_device.cu.
#include "autograd/device.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops_cuda.h"
#include "autograd/tape.h"

// The default device of vlt_full / vlt_arange: part of the device context (DESIGN.md).
static vlt_device g_default_device = VLT_CPU;

const char *vlt_device_name(vlt_device dev) { return dev == VLT_CUDA ? "cuda" : "cpu"; }

#ifdef VLT_HAVE_CUDA
bool vlt_cuda_available(void) { return vlt_cuda_device_count() > 0; }
vlt_status vlt_cuda_init(void) { return vlt_cuda_ensure_init() == 0 ? VLT_OK : vlt_error_code(); }
void vlt_cuda_shutdown(void) { vlt_cuda_release(); }
void vlt_device_synchronize(void) { vlt_cuda_synchronize(); }
size_t vlt_cuda_arena_bytes(void) { return vlt_cuda_arena_high_water(); }
uint64_t vlt_cuda_arena_allocs(void) { return vlt_cuda_arena_system_allocs(); }
void vlt_cuda_memory(size_t *free_bytes, size_t *total_bytes) { vlt_cuda_mem_info(free_bytes, total_bytes); }
int vlt_cuda_bf16_out_bias_kind(void) { return vlt_cuda_linear_bf16_out_bias_kind(); }
vlt_status vlt_set_matmul_precision(vlt_matmul_precision p) {
    vlt_cuda_set_matmul_precision((int)p);
    return VLT_OK;
}
void vlt_device_profile_start(void) { if (vlt_cuda_ensure_init() == 0) vlt_cuda_prof_start(); }
void vlt_device_profile_mark(const char *what) { vlt_cuda_prof_mark("host", what); }
void vlt_device_profile_stop(FILE *f, int top) { vlt_cuda_prof_stop(f, top); }
#else
void vlt_device_profile_start(void) {}
void vlt_device_profile_mark(const char *what) { (void)what; }
void vlt_device_profile_stop(FILE *f, int top) { (void)f; (void)top; }
bool vlt_cuda_available(void) { return false; }
vlt_status vlt_cuda_init(void) {
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "cuda: this binary was built without the CUDA backend (make CUDA=1)");
}
void vlt_cuda_shutdown(void) {}
void vlt_device_synchronize(void) {}
size_t vlt_cuda_arena_bytes(void) { return 0; }
uint64_t vlt_cuda_arena_allocs(void) { return 0; }
void vlt_cuda_memory(size_t *free_bytes, size_t *total_bytes) { *free_bytes = *total_bytes = 0; }
int vlt_cuda_bf16_out_bias_kind(void) { return 0; }
vlt_status vlt_set_matmul_precision(vlt_matmul_precision p) {
    (void)p;
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "matmul precision: this binary was built without the CUDA backend");
}
#endif

// ---- sync-free steps: the host side of the device index checks ----
#define STEP_CHECKS_MAX 64
static struct {
    int kind, limit;
    int64_t n;
    char name[64];
} g_checks[STEP_CHECKS_MAX];
static int g_n_checks;

void vlt_step_check_message(char *buf, size_t cap, int kind, const char *name, int limit, int64_t n,
                            unsigned long long rec) {
    long long pos = (long long)n - (long long)(rec >> 32);
    int v = (int)(int32_t)(uint32_t)(rec & 0xffffffffull);
    const char *tail = " (checked on the device, reported after the step)";
    if (kind == 0)
        snprintf(buf, cap, "embedding: id %d at position %lld is outside the table '%s' of %d rows%s", v, pos,
                 name ? name : "?", limit, tail);
    else if (kind == 1)
        snprintf(buf, cap, "gather_rows: index %d of row %lld is outside [0, %d)%s", v, pos, limit, tail);
    else
        snprintf(buf, cap, "cross_entropy: target %d of row %lld is outside [0, %d)%s", v, pos, limit, tail);
}

int vlt_step_check_add(int kind, const char *name, int limit, int64_t n) {
    int k = g_n_checks < STEP_CHECKS_MAX ? g_n_checks++ : STEP_CHECKS_MAX - 1;  // full: shares the last
    g_checks[k].kind = kind;
    g_checks[k].limit = limit;
    g_checks[k].n = n;
    snprintf(g_checks[k].name, sizeof g_checks[k].name, "%s", name ? name : "");
    return k;
}

#ifdef VLT_HAVE_CUDA
vlt_status vlt_set_sync_free(bool on) {
    if (on && vlt_cuda_ensure_init() != 0) return vlt_error_code();
    if (vlt_cuda_set_sync_free(on ? 1 : 0) != 0) return vlt_error_code();
    return VLT_OK;
}
bool vlt_sync_free(void) { return vlt_cuda_sync_free() != 0; }
void vlt_step_checks_begin(void) {
    g_n_checks = 0;
    if (vlt_cuda_sync_free()) vlt_cuda_checks_clear();
}
vlt_status vlt_step_checks_report(void) {
    unsigned long long rec[STEP_CHECKS_MAX];
    int bad = 0, n = g_n_checks;
    vlt_cuda_checks_read(rec, n, &bad);
    for (int k = 0; k < n; k++)
        if (rec[k]) {
            char msg[256];
            vlt_step_check_message(msg, sizeof msg, g_checks[k].kind, g_checks[k].name, g_checks[k].limit,
                                   g_checks[k].n, rec[k]);
            return vlt_error_set(VLT_ERR_ARG, "%s", msg);
        }
    if (bad) return vlt_error_set(VLT_ERR_ARG, "a device index check failed in this step (no slot recorded it)");
    return VLT_OK;
}
float vlt_last_grad_norm(void) { return vlt_cuda_last_grad_norm(); }
vlt_status vlt_graph_begin(void) {
    if (!vlt_cuda_sync_free())
        return vlt_error_set(VLT_ERR_STATE, "cuda graph: capture needs sync-free mode (vlt_set_sync_free)");
    vlt_cuda_synchronize();  // nothing eager may still run when the capture starts
    return vlt_cuda_graph_begin() == 0 ? VLT_OK : vlt_error_code();
}
vlt_status vlt_graph_end(void **graph) { return vlt_cuda_graph_end(graph) == 0 ? VLT_OK : vlt_error_code(); }
vlt_status vlt_graph_launch(void *graph) {
    if (!graph) return vlt_error_set(VLT_ERR_ARG, "cuda graph: no graph to launch");
    vlt_cuda_graph_launch(graph);
    return VLT_OK;
}
void vlt_graph_free(void *graph) { vlt_cuda_graph_free(graph); }
size_t vlt_graph_nodes(void) { return vlt_cuda_graph_nodes(); }
#else
static vlt_status no_cuda(const char *what) {
    return vlt_error_set(VLT_ERR_UNSUPPORTED, "%s: this binary was built without the CUDA backend (make CUDA=1)", what);
}
vlt_status vlt_set_sync_free(bool on) { return on ? no_cuda("sync-free steps") : VLT_OK; }
bool vlt_sync_free(void) { return false; }
void vlt_step_checks_begin(void) { g_n_checks = 0; }
vlt_status vlt_step_checks_report(void) { return VLT_OK; }
float vlt_last_grad_norm(void) { return 0.0f; }
vlt_status vlt_graph_begin(void) { return no_cuda("cuda graph"); }
vlt_status vlt_graph_end(void **graph) {
    *graph = NULL;
    return no_cuda("cuda graph");
}
vlt_status vlt_graph_launch(void *graph) {
    (void)graph;
    return no_cuda("cuda graph");
}
void vlt_graph_free(void *graph) { (void)graph; }
size_t vlt_graph_nodes(void) { return 0; }
#endif

vlt_status vlt_set_default_device(vlt_device dev) {
    if (dev == VLT_CUDA) VLT_TRY(vlt_cuda_init());
    g_default_device = dev;
    return VLT_OK;
}

vlt_device vlt_default_device(void) { return g_default_device; }

// Copies `bytes` between any two devices (both pointers of the given devices).
static void copy_bytes(vlt_device dd, void *dst, vlt_device sd, const void *src, size_t bytes) {
#ifdef VLT_HAVE_CUDA
    if (dd == VLT_CUDA && sd == VLT_CUDA) { vlt_cuda_copy_d2d(dst, src, bytes); return; }
    if (dd == VLT_CUDA) { vlt_cuda_copy_h2d(dst, src, bytes); return; }
    if (sd == VLT_CUDA) { vlt_cuda_copy_d2h(dst, src, bytes); return; }
#else
    (void)dd;
    (void)sd;
#endif
    memcpy(dst, src, bytes);
}

vlt_status vlt_tensor_copy(vlt_tensor *dst, const vlt_tensor *src) {
    VLT_TRY(vlt_tensor_check_live(dst, "tensor_copy"));
    VLT_TRY(vlt_tensor_check_live(src, "tensor_copy"));
    if (dst->dtype != src->dtype || dst->numel != src->numel)
        return vlt_error_set(VLT_ERR_SHAPE, "tensor_copy: '%s' (%s, %lld elements) into '%s' (%s, %lld elements)",
                             src->name, vlt_dtype_name(src->dtype), (long long)src->numel, dst->name,
                             vlt_dtype_name(dst->dtype), (long long)dst->numel);
    if (!vlt_tensor_is_contiguous(dst) || !vlt_tensor_is_contiguous(src))
        return vlt_error_set(VLT_ERR_SHAPE, "tensor_copy: '%s' or '%s' is a strided view", src->name, dst->name);
    copy_bytes(dst->device, dst->data, src->device, src->data, (size_t)src->numel * vlt_dtype_size(src->dtype));
    return VLT_OK;
}

float vlt_tensor_item(const vlt_tensor *t, int64_t i) {
    size_t es = vlt_dtype_size(t->dtype);
    unsigned char buf[8] = {0};
    copy_bytes(VLT_CPU, buf, t->device, (const char *)t->data + (size_t)i * es, es);
    if (t->dtype == VLT_F32) { float f; memcpy(&f, buf, 4); return f; }
    if (t->dtype == VLT_I32) { int32_t v; memcpy(&v, buf, 4); return (float)v; }
    uint16_t h;
    memcpy(&h, buf, 2);
    return vlt_bf16_to_f32(h);
}

void *vlt_cuda_stream_handle(void) {
#ifdef VLT_HAVE_CUDA
    return vlt_cuda_ensure_init() == 0 ? vlt_cuda_stream_ptr() : NULL;
#else
    return NULL;
#endif
}

void vlt_device_acc(vlt_device dev, float *dst, const float *src, int64_t n) {
#ifdef VLT_HAVE_CUDA
    if (dev == VLT_CUDA) { vlt_cuda_acc(dst, src, n); return; }
#else
    (void)dev;
#endif
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

void vlt_device_to_host(void *dst, const void *src, size_t bytes) { copy_bytes(VLT_CPU, dst, VLT_CUDA, src, bytes); }

void vlt_tensor_read_f32(float *dst, const vlt_tensor *t, int64_t n) {
    VLT_ASSERT(t->dtype == VLT_F32 && n <= t->numel, "tensor_read_f32: '%s' is not f32 or has fewer than %lld elements",
               t->name, (long long)n);
    copy_bytes(VLT_CPU, dst, t->device, t->data, (size_t)n * sizeof(float));
}

void vlt_tensor_set_item(vlt_tensor *t, int64_t i, float v) {
    VLT_ASSERT(t->dtype == VLT_F32, "tensor_set_item: '%s' is not f32", t->name);
    copy_bytes(t->device, (float *)t->data + i, VLT_CPU, &v, sizeof v);
}

vlt_tensor *vlt_tensor_to(const vlt_tensor *t, vlt_device dev) {
    if (vlt_tensor_check_live(t, "tensor_to") != VLT_OK) return NULL;
    vlt_tensor *c = vlt_tensor_new(t->dtype, dev, t->ndim, t->shape, t->name);
    if (!c) return NULL;
    if (vlt_tensor_copy(c, t) != VLT_OK) { vlt_tensor_free(c); return NULL; }
    c->requires_grad = t->requires_grad;
    if (t->grad) {
        c->grad = vlt_tensor_new(VLT_F32, dev, t->ndim, t->shape, t->grad->name);
        if (!c->grad) { vlt_tensor_free(c); return NULL; }
    }
    return c;
}

vlt_status vlt_tensor_move(vlt_tensor *t, vlt_device dev) {
    VLT_TRY(vlt_tensor_check_live(t, "tensor_move"));
    if (!t->persistent || !t->owns_data)
        return vlt_error_set(VLT_ERR_ARG, "tensor_move: '%s' is not a persistent tensor that owns its storage", t->name);
    if (t->grad && t->grad->persistent) VLT_TRY(vlt_tensor_move(t->grad, dev));
    if (t->device == dev) return VLT_OK;
    // A fresh tensor on dev, whose storage this one takes over.
    vlt_tensor *c = vlt_tensor_new(t->dtype, dev, t->ndim, t->shape, t->name);
    if (!c) return vlt_error_code();
    copy_bytes(dev, c->data, t->device, t->data, (size_t)t->numel * vlt_dtype_size(t->dtype));
    void *old = t->data;
    vlt_device old_dev = t->device;
    t->data = c->data;
    t->device = dev;
    memcpy(t->stride, c->stride, sizeof t->stride);
    c->owns_data = false;
    vlt_tensor_free(c);
#ifdef VLT_HAVE_CUDA
    if (old_dev == VLT_CUDA) { vlt_cuda_free(old); return VLT_OK; }
#else
    (void)old_dev;
#endif
    free(old);
    return VLT_OK;
}

// A table may hold tied aliases (BERT's cls.predictions.decoder.* share the word embeddings' and
// the bias's storage: owns_data false, base set): the owners move, then each alias takes its
// base's new storage at the same offset.
vlt_status vlt_params_move(vlt_params *p, vlt_device dev) {
    ptrdiff_t *off = calloc((size_t)(p->n ? p->n : 1), sizeof *off);
    if (!off) return vlt_error_set(VLT_ERR_NOMEM, "params_move: out of memory");
    for (int i = 0; i < p->n; i++)
        if (p->t[i]->base && !p->t[i]->owns_data) off[i] = (char *)p->t[i]->data - (char *)p->t[i]->base->data;
    vlt_status s = VLT_OK;
    for (int i = 0; s == VLT_OK && i < p->n; i++)
        if (!(p->t[i]->base && !p->t[i]->owns_data)) s = vlt_tensor_move(p->t[i], dev);
    for (int i = 0; s == VLT_OK && i < p->n; i++) {
        vlt_tensor *a = p->t[i];
        if (!(a->base && !a->owns_data)) continue;
        if (a->base->device != dev) {
            s = vlt_error_set(VLT_ERR_ARG, "params_move: '%s' shares the storage of '%s', which is not in the table",
                              a->name, a->base->name);
            break;
        }
        a->data = (char *)a->base->data + off[i];
        a->device = dev;
    }
    free(off);
    return s;
}

// ---- the tape-aware copy ----
static void to_device_backward(vlt_node *n) {
    vlt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    vlt_tensor *g = n->out->grad, *gx = vlt_grad_of(x);
    size_t bytes = (size_t)x->numel * sizeof(float);
#ifdef VLT_HAVE_CUDA
    if (gx->device == VLT_CUDA) {
        float *tmp = g->device == VLT_CUDA ? (float *)g->data : vlt_cuda_arena_alloc(bytes);
        VLT_ASSERT(tmp, "to_device backward: device arena out of memory");
        if (g->device != VLT_CUDA) vlt_cuda_copy_h2d(tmp, g->data, bytes);
        vlt_cuda_acc((float *)gx->data, tmp, x->numel);
        return;
    }
#endif
    float *tmp = g->device == VLT_CPU ? (float *)g->data : vlt_step_scratch(bytes);
    VLT_ASSERT(tmp, "to_device backward: step arena out of memory");
    if (g->device != VLT_CPU) copy_bytes(VLT_CPU, tmp, g->device, g->data, bytes);
    float *d = vlt_f32(gx);
    for (int64_t i = 0; i < x->numel; i++) d[i] += tmp[i];
}

vlt_tensor *vlt_to_device(vlt_tensor *x, vlt_device dev) {
    if (!x) return NULL;
    if (vlt_tensor_check_live(x, "to_device") != VLT_OK) return NULL;
    if (!vlt_tensor_is_contiguous(x)) {
        vlt_error_set(VLT_ERR_SHAPE, "to_device: input '%s' is a strided view; call vlt_contiguous first", x->name);
        return NULL;
    }
    if (dev == VLT_CUDA && vlt_cuda_init() != VLT_OK) return NULL;
    vlt_tensor *out = vlt_tensor_new_activation(x->dtype, dev, x->ndim, x->shape);
    if (!out) return NULL;
    copy_bytes(dev, out->data, x->device, x->data, (size_t)x->numel * vlt_dtype_size(x->dtype));
    if (x->dtype == VLT_F32) vlt_tape_record("to_device", to_device_backward, out, 1, &x);
    return out;
}
