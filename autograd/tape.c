// tape.c — node recording, reverse walk, the step arena, no_grad (see tape.h).
#include "autograd/tape.h"

#include <stdint.h>
#include <string.h>

#include "autograd/ops_cuda.h"

// The tape: newest node last; nodes live in the arena.
static struct {
    vlt_arena arena;
    int arena_ready;
    vlt_node *tail;
    int n_nodes;
    int no_grad_depth;
} g_tape;

vlt_arena *vlt_step_arena(void) {
    if (!g_tape.arena_ready) {
        vlt_arena_init(&g_tape.arena, 0);
        g_tape.arena_ready = 1;
    }
    return &g_tape.arena;
}

void vlt_step_reset(void) {
    g_tape.tail = NULL;
    g_tape.n_nodes = 0;
    vlt_arena_reset(vlt_step_arena());
#ifdef VLT_HAVE_CUDA
    vlt_cuda_arena_reset();  // the device half of the step arena (a no-op before the context exists)
#endif
}

void vlt_tape_shutdown(void) {
    if (g_tape.arena_ready) vlt_arena_free(&g_tape.arena);
    memset(&g_tape, 0, sizeof g_tape);
#ifdef VLT_HAVE_CUDA
    vlt_cuda_release();
#endif
}

void vlt_no_grad_enter(void) { g_tape.no_grad_depth++; }
void vlt_no_grad_exit(void) {
    VLT_ASSERT(g_tape.no_grad_depth > 0, "vlt_no_grad_exit without a matching vlt_no_grad_enter");
    g_tape.no_grad_depth--;
}
bool vlt_grad_enabled(void) { return g_tape.no_grad_depth == 0; }
int vlt_tape_size(void) { return g_tape.n_nodes; }

void *vlt_step_scratch(size_t bytes) {
    void *p = vlt_arena_alloc(vlt_step_arena(), bytes);
    if (!p) vlt_error_set(VLT_ERR_NOMEM, "step arena: cannot allocate %zu bytes", bytes);
    return p;
}

vlt_tensor *vlt_tensor_new_activation(vlt_dtype dt, vlt_device dev, int ndim, const int *shape) {
#ifndef VLT_HAVE_CUDA
    if (dev != VLT_CPU) {
        vlt_error_set(VLT_ERR_UNSUPPORTED, "activation on cuda: the CUDA backend is not built in");
        return NULL;
    }
#endif
    if (ndim < 0 || ndim > VLT_MAX_DIMS) {
        vlt_error_set(VLT_ERR_SHAPE, "activation: ndim %d is outside 0..%d", ndim, VLT_MAX_DIMS);
        return NULL;
    }
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1) { vlt_error_set(VLT_ERR_SHAPE, "activation: dim %d has size %d", d, shape[d]); return NULL; }
        numel *= shape[d];
    }
    vlt_arena *a = vlt_step_arena();
    vlt_tensor *t = vlt_arena_alloc(a, sizeof *t);
#ifdef VLT_HAVE_CUDA
    // Device activations: the header from the host arena, the data from the device arena.
    void *data = dev == VLT_CUDA ? vlt_cuda_arena_alloc((size_t)numel * vlt_dtype_size(dt))
                                 : vlt_arena_alloc(a, (size_t)numel * vlt_dtype_size(dt));
#else
    void *data = vlt_arena_alloc(a, (size_t)numel * vlt_dtype_size(dt));
#endif
    if (!t || !data) { vlt_error_set(VLT_ERR_NOMEM, "step arena: out of memory"); return NULL; }
    memset(t, 0, sizeof *t);
    t->magic = VLT_TENSOR_MAGIC;
    t->dtype = dt;
    t->device = dev;
    t->ndim = ndim;
    t->numel = numel;
    int64_t st = 1;
    for (int d = VLT_MAX_DIMS - 1; d >= 0; d--) {
        t->shape[d] = d < ndim ? shape[d] : 1;
        t->stride[d] = d < ndim ? st : 1;
        if (d < ndim) st *= shape[d];
    }
    t->data = data;
    t->generation = a->generation;
    return t;
}

vlt_node *vlt_tape_record(const char *op, vlt_backward_fn bw, vlt_tensor *out, int n_in, vlt_tensor **in) {
    if (!vlt_grad_enabled()) return NULL;
    bool any = false;
    for (int i = 0; i < n_in; i++) any |= in[i] && in[i]->requires_grad;
    if (!any) return NULL;
    vlt_node *n = vlt_arena_alloc(vlt_step_arena(), sizeof *n);
    VLT_ASSERT(n, "%s: step arena out of memory recording a node", op);
    memset(n, 0, sizeof *n);
    n->op = op;
    n->backward = bw;
    n->out = out;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->prev = g_tape.tail;
    g_tape.tail = n;
    g_tape.n_nodes++;
    out->requires_grad = true;
#ifdef VLT_HAVE_CUDA
    if (out->device == VLT_CUDA && vlt_cuda_prof_on()) vlt_cuda_prof_mark("fwd", op);
#endif
    return n;
}

vlt_tensor *vlt_grad_of(vlt_tensor *t) {
    if (!t->grad) {
        // Views share their base's storage but get their own gradient buffer; the view op's
        // backward moves it into the base's.
        t->grad = vlt_tensor_new_activation(VLT_F32, t->device, t->ndim, t->shape);
        VLT_ASSERT(t->grad, "grad of '%s': step arena out of memory", t->name);
#ifdef VLT_HAVE_CUDA
        if (t->device == VLT_CUDA) vlt_cuda_memset0(t->grad->data, (size_t)t->numel * sizeof(float));
        else
#endif
        memset(t->grad->data, 0, (size_t)t->numel * sizeof(float));
    }
    return t->grad;
}

vlt_tensor *vlt_grad_for_write(vlt_tensor *t, bool *fresh) {
    *fresh = t->grad == NULL;
    if (!t->grad) {
        t->grad = vlt_tensor_new_activation(VLT_F32, t->device, t->ndim, t->shape);
        VLT_ASSERT(t->grad, "grad of '%s': step arena out of memory", t->name);
    }
    return t->grad;
}

bool vlt_grad_steal(vlt_tensor *t, vlt_tensor *g) {
    if (t->grad || t->persistent || !g || g->device != t->device || g->numel != t->numel || g->dtype != VLT_F32 ||
        !vlt_tensor_is_contiguous(g))
        return false;
    t->grad = vlt_view_reshape(g, t->ndim, t->shape);
    if (!t->grad) return false;
    (g->base ? g->base : g)->storage_shared = true;  // the storage now outlives g's node
    return true;
}

// After node n's backward, its output's gradient has no reader left: every consumer of n->out was
// recorded after n and has run. On the device its block goes back to the arena for the next
// layer's gradients (unless a view of it became an input's gradient). The CPU keeps its bump
// arena as it is.
static void release_out_grad(vlt_node *n) {
#ifdef VLT_HAVE_CUDA
    vlt_tensor *g = n->out->grad;
    if (g && g->device == VLT_CUDA && !g->persistent && !g->base && !g->storage_shared && !n->out->persistent) {
        vlt_cuda_arena_release(g->data, (size_t)g->numel * vlt_dtype_size(g->dtype));
        g->magic = 0;  // a later read of it fails the live check instead of seeing reused memory
        n->out->grad = NULL;
    }
#else
    (void)n;
#endif
}

void vlt_tape_release_private(vlt_tensor *t) {
#ifdef VLT_HAVE_CUDA
    if (t && t->device == VLT_CUDA && !t->persistent && !t->base) {
        vlt_cuda_arena_release(t->data, (size_t)t->numel * vlt_dtype_size(t->dtype));
        t->magic = 0;
    }
#else
    (void)t;
#endif
}

static vlt_grad_ready_fn g_ready_fn;
static void *g_ready_ctx;

void vlt_tape_set_grad_ready(vlt_grad_ready_fn fn, void *ctx) {
    g_ready_fn = fn;
    g_ready_ctx = ctx;
}

// Persistent inputs that require grad, mapped to the earliest-recorded node that uses each (an
// open-addressing table from the step arena, sized for every input slot of the tape).
typedef struct {
    vlt_tensor *t;
    vlt_node *first;
} ready_slot;

static size_t ready_hash(const vlt_tensor *t, size_t cap) { return ((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull & (cap - 1); }

static ready_slot *ready_find(ready_slot *tab, size_t cap, const vlt_tensor *t) {
    for (size_t h = ready_hash(t, cap);; h = (h + 1) & (cap - 1))
        if (tab[h].t == t || !tab[h].t) return &tab[h];
}

static bool ready_tracked(const vlt_tensor *t) { return t && t->persistent && t->requires_grad; }

// One walk from the tail: the last visit of each tracked tensor is its earliest use.
static ready_slot *ready_table(size_t *cap_out) {
    size_t cap = 16;
    while (cap < (size_t)g_tape.n_nodes * VLT_NODE_MAX_IN * 2) cap <<= 1;
    ready_slot *tab = vlt_arena_alloc(vlt_step_arena(), cap * sizeof *tab);
    VLT_ASSERT(tab, "backward: step arena out of memory for the gradient-ready table");
    memset(tab, 0, cap * sizeof *tab);
    for (vlt_node *n = g_tape.tail; n; n = n->prev)
        for (int i = 0; i < n->n_in; i++)
            if (ready_tracked(n->in[i])) {
                ready_slot *s = ready_find(tab, cap, n->in[i]);
                s->t = n->in[i];
                s->first = n;
            }
    *cap_out = cap;
    return tab;
}

vlt_status vlt_backward(vlt_tensor *loss) {
    VLT_TRY(vlt_tensor_check_live(loss, "backward"));
    if (loss->numel != 1) {
        char s[64];
        return vlt_error_set(VLT_ERR_SHAPE, "backward: loss must have one element, got %s",
                             vlt_shape_str(loss, s, sizeof s));
    }
    if (!loss->requires_grad)
        return vlt_error_set(VLT_ERR_STATE, "backward: loss does not depend on anything that requires grad");
#ifdef VLT_HAVE_CUDA
    if (loss->device == VLT_CUDA) vlt_cuda_add_scalar(vlt_f32(vlt_grad_of(loss)), 1.0f);
    else
#endif
    vlt_f32(vlt_grad_of(loss))[0] += 1.0f;
    if (g_ready_fn) {  // the walk with gradient-ready reports (data-parallel overlap)
        size_t cap;
        ready_slot *tab = ready_table(&cap);
        for (vlt_node *n = g_tape.tail; n; n = n->prev) {
            if (n->out->grad) { n->backward(n); release_out_grad(n); }
            for (int i = 0; i < n->n_in; i++)
                if (ready_tracked(n->in[i]) && ready_find(tab, cap, n->in[i])->first == n) {
                    bool dup = false;  // the same tensor twice among this node's inputs: report once
                    for (int j = 0; j < i; j++) dup |= n->in[j] == n->in[i];
                    if (!dup) g_ready_fn(n->in[i], g_ready_ctx);
                }
        }
        g_tape.tail = NULL;
        g_tape.n_nodes = 0;
        return VLT_OK;
    }
#ifdef VLT_HAVE_CUDA
    if (loss->device == VLT_CUDA && vlt_cuda_prof_on()) {
        vlt_cuda_prof_mark("bwd", "seed");
        for (vlt_node *n = g_tape.tail; n; n = n->prev)
            if (n->out->grad) { n->backward(n); release_out_grad(n); vlt_cuda_prof_mark("bwd", n->op); }
    } else
#endif
    for (vlt_node *n = g_tape.tail; n; n = n->prev)
        if (n->out->grad) { n->backward(n); release_out_grad(n); }  // an unused output has no gradient
    // The tape is consumed; a second forward/backward before the reset (gradient accumulation)
    // records and walks only its own nodes.
    g_tape.tail = NULL;
    g_tape.n_nodes = 0;
    return VLT_OK;
}
