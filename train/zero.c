// zero.c — ZeRO-1 ownership, reduce-to-owner, global-norm clipping, parameter gather and the
// checkpoint's moment gather (see zero.h), by whole tensors or by a flat partition. Only
// train/dist.h's transfers touch MPI or NCCL.
#include "train/zero.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef VLT_HAVE_CUDA
#include "autograd/ops_cuda.h"
#endif

// One parameter's run of values inside one bucket (floats).
typedef struct {
    int param;
    int64_t off, len, at;
} zseg;

typedef struct {
    int owner, seg0, nseg;
    int64_t numel;
} zbucket;

struct vlt_zero {
    vlt_dist d;
    vlt_tensor **params;
    int n;
    int *owner;          // per parameter
    int *owned, n_owned; // this rank's parameters, ascending
    int64_t owned_numel;
    zseg *segs;
    int nseg;
    zbucket *b;
    int nb;
    float *buf;          // the largest bucket
    // the flat partition
    bool flat;
    int64_t T, S, lo, hi;    // trainable values, the per-rank block, this rank's range [lo, hi)
    int64_t *foff;           // per parameter: its offset in the flat space (-1: frozen)
    int np;                  // this rank's pieces: the parts of parameters inside [lo, hi)
    vlt_tensor *pieces;      // 1-D headers viewing the parameters' values
    vlt_tensor *pgrads;      // their gradients: views of the reduced range
    int *pparam;             // piece -> parameter
    int64_t *poff;           // piece -> offset inside its parameter
    vlt_tensor **plist;      // &pieces[k] (clipping on one rank)
    vlt_device dev;          // where the buffers live (the parameters' device)
    float *fbuf;             // world·S: the packed gradients, then the gathered values
    float *fshard;           // S: the reduced range / this rank's new values (device: fbuf + rank·S)
    double *dacc;            // device: the sum of squares
};

static vlt_status flat_reduce(vlt_zero *z);
static float flat_clip(vlt_zero *z, float max_norm);
static vlt_status flat_gather(vlt_zero *z);
static vlt_adamw *flat_adamw_new(const vlt_zero *z, const bool *decay, vlt_adamw_cfg cfg);
static vlt_status flat_gather_optimizer(vlt_zero *z, const vlt_adamw *local, const bool *decay, vlt_adamw **full);

static void flat_free_buffers(vlt_zero *z) {
#ifdef VLT_HAVE_CUDA
    if (z->dev == VLT_CUDA) {
        vlt_cuda_free(z->fbuf);
        vlt_cuda_free(z->dacc);
        z->fbuf = z->fshard = NULL;
        z->dacc = NULL;
        return;
    }
#endif
    free(z->fbuf);
    free(z->fshard);
    z->fbuf = z->fshard = NULL;
}

void vlt_zero_free(vlt_zero *z) {
    if (!z) return;
    flat_free_buffers(z);
    free(z->foff);
    free(z->pieces);
    free(z->pgrads);
    free(z->pparam);
    free(z->poff);
    free(z->plist);
    free(z->owner);
    free(z->owned);
    free(z->segs);
    free(z->b);
    free(z->buf);
    free(z);
}

// Sort key for ownership: numel descending, then table index ascending.
typedef struct {
    int64_t numel;
    int i;
} zitem;

static int cmp_items(const void *a, const void *b) {
    const zitem *x = a, *y = b;
    if (x->numel != y->numel) return x->numel > y->numel ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

// Greedy largest-first onto the least-loaded rank (ties: lowest rank).
static bool assign_owners(vlt_zero *z) {
    int W = z->d.world;
    zitem *it = malloc(sizeof *it * (size_t)z->n);
    int64_t *load = calloc((size_t)W, sizeof *load);
    if (!it || !load) {
        free(it);
        free(load);
        return false;
    }
    for (int i = 0; i < z->n; i++) it[i] = (zitem){z->params[i]->numel, i};
    qsort(it, (size_t)z->n, sizeof *it, cmp_items);
    for (int k = 0; k < z->n; k++) {
        int best = 0;
        for (int r = 1; r < W; r++)
            if (load[r] < load[best]) best = r;
        z->owner[it[k].i] = best;
        load[best] += it[k].numel;
    }
    free(it);
    free(load);
    return true;
}

// Buckets per owner (owners in rank order), each owner's trainable parameters in reverse table
// order, cut at cap floats.
static bool plan_buckets(vlt_zero *z, int64_t cap) {
    int64_t total = 0;
    for (int i = 0; i < z->n; i++)
        if (z->params[i]->requires_grad) total += z->params[i]->numel;
    int64_t max_b = total / cap + z->d.world + 1, max_s = z->n + total / cap + 1;
    z->b = calloc((size_t)max_b, sizeof *z->b);
    z->segs = calloc((size_t)max_s, sizeof *z->segs);
    if (!z->b || !z->segs) return false;
    int64_t biggest = 1;
    for (int r = 0; r < z->d.world; r++) {
        zbucket *cur = NULL;
        for (int i = z->n - 1; i >= 0; i--) {
            vlt_tensor *p = z->params[i];
            if (z->owner[i] != r || !p->requires_grad) continue;
            for (int64_t off = 0; off < p->numel;) {
                if (!cur || cur->numel == cap) {
                    cur = &z->b[z->nb++];
                    *cur = (zbucket){.owner = r, .seg0 = z->nseg};
                }
                int64_t take = p->numel - off < cap - cur->numel ? p->numel - off : cap - cur->numel;
                z->segs[z->nseg++] = (zseg){i, off, take, cur->numel};
                cur->nseg++;
                cur->numel += take;
                off += take;
                if (cur->numel > biggest) biggest = cur->numel;
            }
        }
    }
    z->buf = malloc(sizeof(float) * (size_t)biggest);
    return z->buf != NULL;
}

vlt_zero *vlt_zero_new(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes) {
    if (!params || n < 1) {
        vlt_error_set(VLT_ERR_ARG, "zero: no parameters");
        return NULL;
    }
    if (n < d->world) {
        vlt_error_set(VLT_ERR_ARG, "zero: %d parameters cannot be shared among %d ranks (each rank must own one)", n,
                      d->world);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        vlt_tensor *p = params[i];
        if (!p || p->dtype != VLT_F32 || p->device != VLT_CPU || !vlt_tensor_is_contiguous(p) || !p->grad ||
            p->grad->dtype != VLT_F32 || p->grad->numel != p->numel || !vlt_tensor_is_contiguous(p->grad)) {
            vlt_error_set(VLT_ERR_STATE, "zero: parameter %d ('%s') is not a contiguous f32 CPU tensor with a gradient",
                          i, p ? p->name : "NULL");
            return NULL;
        }
    }
    vlt_zero *z = calloc(1, sizeof *z);
    if (!z) {
        vlt_error_set(VLT_ERR_NOMEM, "zero: out of memory");
        return NULL;
    }
    z->d = *d;
    z->params = params;
    z->n = n;
    z->owner = malloc(sizeof(int) * (size_t)n);
    z->owned = malloc(sizeof(int) * (size_t)n);
    int64_t cap = (int64_t)((bucket_bytes ? bucket_bytes : VLT_DIST_BUCKET_BYTES) / sizeof(float));
    if (cap < 1) cap = 1;
    if (!z->owner || !z->owned || !assign_owners(z) || !plan_buckets(z, cap)) {
        vlt_zero_free(z);
        vlt_error_set(VLT_ERR_NOMEM, "zero: out of memory planning %d parameters", n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (z->owner[i] == d->rank) {
            z->owned[z->n_owned++] = i;
            z->owned_numel += params[i]->numel;
        }
    return z;
}

int vlt_zero_owner(const vlt_zero *z, int i) {
    VLT_ASSERT(i >= 0 && i < z->n, "zero: parameter %d of %d", i, z->n);
    return z->owner[i];
}

const int *vlt_zero_owned(const vlt_zero *z, int *n_owned) {
    *n_owned = z->n_owned;
    return z->owned;
}

int64_t vlt_zero_owned_numel(const vlt_zero *z) { return z->owned_numel; }
int vlt_zero_buckets(const vlt_zero *z) { return z->nb; }

vlt_adamw *vlt_zero_adamw_new(const vlt_zero *z, const bool *decay, vlt_adamw_cfg cfg) {
    if (z->flat) return flat_adamw_new(z, decay, cfg);
    vlt_tensor **p = malloc(sizeof *p * (size_t)z->n_owned);
    bool *dm = malloc((size_t)z->n_owned);
    vlt_adamw *o = NULL;
    if (p && dm) {
        for (int k = 0; k < z->n_owned; k++) {
            p[k] = z->params[z->owned[k]];
            dm[k] = decay ? decay[z->owned[k]] : true;
        }
        o = vlt_adamw_new(p, dm, z->n_owned, cfg);
    } else {
        vlt_error_set(VLT_ERR_NOMEM, "zero: out of memory");
    }
    free(p);
    free(dm);
    return o;
}

// Bucket <-> tensors: gradients (grad) or values.
static float *seg_ptr(const vlt_zero *z, const zseg *s, bool grad) {
    vlt_tensor *p = z->params[s->param];
    return vlt_f32(grad ? p->grad : p) + s->off;
}

static void pack(const vlt_zero *z, const zbucket *b, bool grad) {
    for (int s = b->seg0; s < b->seg0 + b->nseg; s++)
        memcpy(z->buf + z->segs[s].at, seg_ptr(z, &z->segs[s], grad), sizeof(float) * (size_t)z->segs[s].len);
}

static void unpack(const vlt_zero *z, const zbucket *b, bool grad, float k) {
    for (int s = b->seg0; s < b->seg0 + b->nseg; s++) {
        const zseg *g = &z->segs[s];
        float *dst = seg_ptr(z, g, grad);
        const float *src = z->buf + g->at;
        if (k == 1.0f) memcpy(dst, src, sizeof(float) * (size_t)g->len);
        else
            for (int64_t j = 0; j < g->len; j++) dst[j] = src[j] * k;
    }
}

vlt_status vlt_zero_reduce_grads(vlt_zero *z) {
    if (z->flat) return flat_reduce(z);
    if (z->d.world == 1) return VLT_OK;
    float k = 1.0f / (float)z->d.world;
    for (int i = 0; i < z->nb; i++) {
        zbucket *b = &z->b[i];
        pack(z, b, true);
        VLT_TRY(vlt_dist_reduce_sum(&z->d, z->buf, b->numel, b->owner));
        if (b->owner == z->d.rank) unpack(z, b, true, k);
    }
    return VLT_OK;
}

float vlt_zero_clip_grad_norm(vlt_zero *z, float max_norm) {
    if (z->flat) return flat_clip(z, max_norm);
    double ss = 0;
    for (int k = 0; k < z->n_owned; k++) {
        const vlt_tensor *p = z->params[z->owned[k]];
        if (!p->requires_grad) continue;
        const float *g = vlt_f32(p->grad);
        for (int64_t j = 0; j < p->numel; j++) ss += (double)g[j] * g[j];
    }
    vlt_dist_sum(&z->d, &ss, 1);
    float norm = (float)sqrt(ss);
    if (max_norm > 0 && isfinite(norm) && norm > max_norm) {
        float k = max_norm / (norm + 1e-6f);
        for (int q = 0; q < z->n_owned; q++) {
            vlt_tensor *p = z->params[z->owned[q]];
            if (!p->requires_grad) continue;
            float *g = vlt_f32(p->grad);
            for (int64_t j = 0; j < p->numel; j++) g[j] *= k;
        }
    }
    return norm;
}

vlt_status vlt_zero_gather_params(vlt_zero *z) {
    if (z->flat) return flat_gather(z);
    if (z->d.world == 1) return VLT_OK;
    for (int i = 0; i < z->nb; i++) {
        zbucket *b = &z->b[i];
        bool mine = b->owner == z->d.rank;
        if (mine) pack(z, b, false);
        VLT_TRY(vlt_dist_broadcast(&z->d, z->buf, sizeof(float) * (size_t)b->numel, b->owner));
        if (!mine) unpack(z, b, false, 1.0f);
    }
    return VLT_OK;
}

vlt_status vlt_zero_gather_optimizer(vlt_zero *z, const vlt_adamw *local, const bool *decay, vlt_adamw **full) {
    *full = NULL;
    if (z->flat) return flat_gather_optimizer(z, local, decay, full);
    bool ok = local && local->n == z->n_owned;
    for (int k = 0; ok && k < z->n_owned; k++) ok = local->params[k] == z->params[z->owned[k]];
    if (!ok) return vlt_error_set(VLT_ERR_ARG, "zero: the optimizer is not this rank's shard (vlt_zero_adamw_new)");
    vlt_adamw *f = NULL;
    char msg[512] = "";
    if (z->d.rank == 0) {
        f = vlt_adamw_new(z->params, decay, z->n, local->cfg);
        if (f) f->t = local->t;
        else snprintf(msg, sizeof msg, "%s", vlt_error_message());
    }
    // Every rank learns whether rank 0 could hold the whole state before anything is sent.
    double failed = z->d.rank == 0 && !f;
    vlt_dist_sum(&z->d, &failed, 1);
    if (failed > 0)
        return vlt_error_set(VLT_ERR_NOMEM, "zero: rank 0 cannot gather the optimizer state for a checkpoint%s%s",
                             msg[0] ? ": " : "", msg);
    int k = 0;   // this rank's next owned parameter (owned[] is ascending)
    for (int i = 0; i < z->n; i++) {
        int o = z->owner[i];
        size_t bytes = sizeof(float) * (size_t)z->params[i]->numel;
        bool mine = o == z->d.rank;
        if (mine && z->d.rank == 0) {
            memcpy(f->m[i], local->m[k], bytes);
            memcpy(f->v[i], local->v[k], bytes);
        } else if (mine) {
            VLT_TRY(vlt_dist_send_recv(&z->d, local->m[k], bytes, o, 0));
            VLT_TRY(vlt_dist_send_recv(&z->d, local->v[k], bytes, o, 0));
        } else if (z->d.rank == 0) {
            VLT_TRY(vlt_dist_send_recv(&z->d, f->m[i], bytes, o, 0));
            VLT_TRY(vlt_dist_send_recv(&z->d, f->v[i], bytes, o, 0));
        }
        if (mine) k++;
    }
    *full = f;
    return VLT_OK;
}

// ---- the flat partition ------------------------------------------------------------------------
bool vlt_zero_is_flat(const vlt_zero *z) { return z->flat; }

void vlt_zero_flat_range(const vlt_zero *z, int64_t *lo, int64_t *hi, int64_t *total) {
    *lo = z->lo;
    *hi = z->hi;
    *total = z->T;
}

static void copy_f32(vlt_device dev, float *dst, const float *src, int64_t n) {
#ifdef VLT_HAVE_CUDA
    if (dev == VLT_CUDA) {
        vlt_cuda_copy_d2d(dst, src, sizeof(float) * (size_t)n);
        return;
    }
#else
    (void)dev;
#endif
    memcpy(dst, src, sizeof(float) * (size_t)n);
}

// Host copy of n floats that live on `dev` (moments on the GPU for a checkpoint).
static void to_host_f32(vlt_device dev, float *dst, const float *src, int64_t n) {
#ifdef VLT_HAVE_CUDA
    if (dev == VLT_CUDA) {
        vlt_cuda_copy_d2h(dst, src, sizeof(float) * (size_t)n);
        return;
    }
#else
    (void)dev;
#endif
    memcpy(dst, src, sizeof(float) * (size_t)n);
}

static vlt_device params_device(const vlt_zero *z) {
    for (int i = 0; i < z->n; i++)
        if (z->foff[i] >= 0) return z->params[i]->device;
    return VLT_CPU;
}

// Points the pieces at the parameters and the buffers, (re)allocating the buffers on the
// parameters' device when they moved there (the trainer moves the model after making the
// optimizer): called before every use, so a move is followed without the caller saying so.
static vlt_status flat_bind(vlt_zero *z) {
    vlt_device dev = params_device(z);
    if (!z->fbuf || dev != z->dev) {
        flat_free_buffers(z);
        z->dev = dev;
        size_t bytes = sizeof(float) * (size_t)(z->S * z->d.world);
        (void)bytes;   // (the host buffers are calloc'd)
#ifdef VLT_HAVE_CUDA
        if (dev == VLT_CUDA) {
            z->fbuf = vlt_cuda_malloc(bytes);
            z->dacc = vlt_cuda_malloc(sizeof(double));
            if (!z->fbuf || !z->dacc) {
                flat_free_buffers(z);
                return vlt_error_set(VLT_ERR_NOMEM, "zero (flat): no device memory for the %lld-value flat gradient",
                                     (long long)(z->S * z->d.world));
            }
            vlt_cuda_memset0(z->fbuf, bytes);   // the padding past T stays 0 (summed, never read)
            z->fshard = z->fbuf + (int64_t)z->d.rank * z->S;
        } else
#endif
        {
            z->fbuf = calloc((size_t)(z->S * z->d.world), sizeof(float));
            z->fshard = calloc((size_t)z->S, sizeof(float));
            if (!z->fbuf || !z->fshard) {
                flat_free_buffers(z);
                return vlt_error_set(VLT_ERR_NOMEM, "zero (flat): no memory for the %lld-value flat gradient",
                                     (long long)(z->S * z->d.world));
            }
        }
    }
    for (int k = 0; k < z->np; k++) {
        vlt_tensor *p = z->params[z->pparam[k]];
        z->pieces[k].data = vlt_f32(p) + z->poff[k];
        z->pieces[k].device = dev;
        z->pgrads[k].data = z->fshard + (z->foff[z->pparam[k]] + z->poff[k] - z->lo);
        z->pgrads[k].device = dev;
    }
    return VLT_OK;
}

static void piece_header(vlt_tensor *h, const vlt_tensor *p, int64_t off, int64_t len) {
    memset(h, 0, sizeof *h);
    h->magic = VLT_TENSOR_MAGIC;
    h->dtype = VLT_F32;
    h->device = p->device;
    h->ndim = 1;
    h->shape[0] = (int)len;
    h->stride[0] = 1;
    h->numel = len;
    h->persistent = true;
    h->base = (vlt_tensor *)p;
    char name[sizeof h->name + 48];
    snprintf(name, sizeof name, "%.50s[%lld:%lld]", p->name, (long long)off, (long long)(off + len));
    memcpy(h->name, name, sizeof h->name - 1);   // (fits: 50 + 2 × 20 + 3 < 96)
}

vlt_zero *vlt_zero_new_flat(const vlt_dist *d, vlt_tensor **params, int n) {
    if (!params || n < 1) {
        vlt_error_set(VLT_ERR_ARG, "zero (flat): no parameters");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        vlt_tensor *p = params[i];
        if (!p || p->dtype != VLT_F32 || !vlt_tensor_is_contiguous(p) || !p->grad || p->grad->dtype != VLT_F32 ||
            p->grad->numel != p->numel || !vlt_tensor_is_contiguous(p->grad) ||
            (i > 0 && p->device != params[0]->device)) {
            vlt_error_set(VLT_ERR_STATE, "zero (flat): parameter %d ('%s') is not a contiguous f32 tensor with a "
                          "gradient on the other parameters' device", i, p ? p->name : "NULL");
            return NULL;
        }
        if (p->numel > INT32_MAX) {
            vlt_error_set(VLT_ERR_SHAPE, "zero (flat): parameter '%s' has %lld values (a piece is at most 2^31 - 1)",
                          p->name, (long long)p->numel);
            return NULL;
        }
    }
    vlt_zero *z = calloc(1, sizeof *z);
    if (!z) {
        vlt_error_set(VLT_ERR_NOMEM, "zero (flat): out of memory");
        return NULL;
    }
    z->d = *d;
    z->params = params;
    z->n = n;
    z->flat = true;
    z->dev = params[0]->device;
    z->owner = malloc(sizeof(int) * (size_t)n);
    z->owned = malloc(sizeof(int) * (size_t)n);
    z->foff = malloc(sizeof(int64_t) * (size_t)n);
    if (!z->owner || !z->owned || !z->foff) goto nomem;
    for (int i = 0; i < n; i++) {
        z->foff[i] = params[i]->requires_grad ? z->T : -1;
        if (params[i]->requires_grad) z->T += params[i]->numel;
    }
    if (z->T == 0) {
        vlt_zero_free(z);
        vlt_error_set(VLT_ERR_ARG, "zero (flat): no trainable parameter");
        return NULL;
    }
    int W = d->world;
    z->S = (z->T + W - 1) / W;
    if (z->S > INT32_MAX) {
        vlt_zero_free(z);
        vlt_error_set(VLT_ERR_SHAPE, "zero (flat): %lld values per rank exceed one collective's count", (long long)z->S);
        return NULL;
    }
    z->lo = (int64_t)d->rank * z->S;
    if (z->lo > z->T) z->lo = z->T;
    z->hi = z->lo + z->S < z->T ? z->lo + z->S : z->T;
    // owners (the rank of a parameter's first value; frozen: rank 0) and this rank's pieces
    int max_p = n;
    z->pieces = calloc((size_t)max_p, sizeof *z->pieces);
    z->pgrads = calloc((size_t)max_p, sizeof *z->pgrads);
    z->pparam = malloc(sizeof(int) * (size_t)max_p);
    z->poff = malloc(sizeof(int64_t) * (size_t)max_p);
    z->plist = malloc(sizeof(vlt_tensor *) * (size_t)max_p);
    if (!z->pieces || !z->pgrads || !z->pparam || !z->poff || !z->plist) goto nomem;
    for (int i = 0; i < n; i++) {
        vlt_tensor *p = params[i];
        if (z->foff[i] < 0) {
            z->owner[i] = 0;
            if (d->rank == 0) {
                z->owned[z->n_owned++] = i;
                z->owned_numel += p->numel;
            }
            continue;
        }
        z->owner[i] = (int)(z->foff[i] / z->S);
        int64_t a = z->foff[i] > z->lo ? z->foff[i] : z->lo, b = z->foff[i] + p->numel < z->hi ? z->foff[i] + p->numel : z->hi;
        if (a >= b) continue;
        int k = z->np++;
        z->pparam[k] = i;
        z->poff[k] = a - z->foff[i];
        piece_header(&z->pieces[k], p, z->poff[k], b - a);
        piece_header(&z->pgrads[k], p, z->poff[k], b - a);
        z->pieces[k].requires_grad = true;
        z->pieces[k].grad = &z->pgrads[k];
        z->plist[k] = &z->pieces[k];
        z->owned[z->n_owned++] = i;
        z->owned_numel += b - a;
    }
    if (flat_bind(z) != VLT_OK) {
        vlt_zero_free(z);
        return NULL;
    }
    return z;
nomem:
    vlt_zero_free(z);
    vlt_error_set(VLT_ERR_NOMEM, "zero (flat): out of memory planning %d parameters", n);
    return NULL;
}

// This rank's optimizer: its pieces (and, on rank 0, the frozen parameters whole), table order.
static vlt_adamw *flat_adamw_new(const vlt_zero *z, const bool *decay, vlt_adamw_cfg cfg) {
    int m = z->np + (z->d.rank == 0 ? z->n : 0);
    vlt_tensor **p = malloc(sizeof *p * (size_t)(m ? m : 1));
    bool *dm = malloc((size_t)(m ? m : 1));
    vlt_adamw *o = NULL;
    if (p && dm) {
        int c = 0, k = 0;
        for (int i = 0; i < z->n; i++) {
            if (z->foff[i] < 0) {
                if (z->d.rank != 0) continue;
                p[c] = z->params[i];
            } else if (k < z->np && z->pparam[k] == i) {
                p[c] = &z->pieces[k++];
            } else {
                continue;
            }
            dm[c++] = decay ? decay[i] : true;
        }
        if (c == 0) vlt_error_set(VLT_ERR_ARG, "zero (flat): rank %d holds no values (more ranks than trainable values)",
                                  z->d.rank);
        else o = vlt_adamw_new(p, dm, c, cfg);
    } else {
        vlt_error_set(VLT_ERR_NOMEM, "zero (flat): out of memory");
    }
    free(p);
    free(dm);
    return o;
}

static vlt_status flat_reduce(vlt_zero *z) {
    VLT_TRY(flat_bind(z));
    for (int i = 0; i < z->n; i++)
        if (z->foff[i] >= 0) copy_f32(z->dev, z->fbuf + z->foff[i], vlt_f32(z->params[i]->grad), z->params[i]->numel);
    int W = z->d.world;
    float k = 1.0f / (float)W;
    int64_t m = z->hi - z->lo;
    if (z->dev == VLT_CUDA) {
#ifdef VLT_HAVE_CUDA
        // in place (fshard is fbuf's block of this rank); one GPU without NCCL: already there
        if (vlt_dist_nccl_active()) VLT_TRY(vlt_dist_nccl_reduce_scatter(&z->d, z->fbuf, z->fshard, z->S));
        else if (W > 1)
            return vlt_error_set(VLT_ERR_UNSUPPORTED, "zero (flat): GPU gradients over %d ranks need NCCL", W);
        if (W > 1 && m > 0) {
            vlt_mt_entry e = {{z->fshard, NULL, NULL, NULL}, m, 0.0f, 0.0f};
            vlt_cuda_scale_mt(&e, 1, k);
        }
#endif
        return VLT_OK;
    }
    VLT_TRY(vlt_dist_reduce_scatter_sum(&z->d, z->fbuf, z->fshard, z->S));
    if (W > 1)
        for (int64_t j = 0; j < m; j++) z->fshard[j] *= k;   // as reduce-to-owner: the sum, then × 1/world
    return VLT_OK;
}

static float flat_clip(vlt_zero *z, float max_norm) {
    int64_t m = z->hi - z->lo;
    double ss = 0;
    if (z->dev == VLT_CUDA) {
#ifdef VLT_HAVE_CUDA
        // one rank: the plain path's own reduction over the same tensors (its bits)
        if (z->d.world == 1) return vlt_clip_grad_norm(z->plist, z->np, max_norm);
        vlt_mt_entry e = {{z->fshard, NULL, NULL, NULL}, m, 0.0f, 0.0f};
        vlt_cuda_memset0(z->dacc, sizeof(double));
        if (m > 0) vlt_cuda_sumsq_mt(z->dacc, &e, 1);
        vlt_cuda_copy_d2h(&ss, z->dacc, sizeof ss);
#endif
    } else {
        for (int64_t j = 0; j < m; j++) ss += (double)z->fshard[j] * z->fshard[j];
    }
    vlt_dist_sum(&z->d, &ss, 1);
    float norm = (float)sqrt(ss);
    if (max_norm > 0 && isfinite(norm) && norm > max_norm) {
        float k = max_norm / (norm + 1e-6f);
        if (z->dev == VLT_CUDA) {
#ifdef VLT_HAVE_CUDA
            vlt_mt_entry e = {{z->fshard, NULL, NULL, NULL}, m, 0.0f, 0.0f};
            if (m > 0) vlt_cuda_scale_mt(&e, 1, k);
#endif
        } else {
            for (int64_t j = 0; j < m; j++) z->fshard[j] *= k;
        }
    }
    return norm;
}

static vlt_status flat_gather(vlt_zero *z) {
    VLT_TRY(flat_bind(z));
    for (int k = 0; k < z->np; k++)
        copy_f32(z->dev, z->fshard + (z->foff[z->pparam[k]] + z->poff[k] - z->lo), vlt_f32(&z->pieces[k]),
                 z->pieces[k].numel);
    if (z->dev == VLT_CUDA) {
        if (vlt_dist_nccl_active()) VLT_TRY(vlt_dist_nccl_allgather(&z->d, z->fshard, z->fbuf, z->S));   // in place
        else if (z->d.world > 1)
            return vlt_error_set(VLT_ERR_UNSUPPORTED, "zero (flat): GPU parameters over %d ranks need NCCL", z->d.world);
    } else {
        VLT_TRY(vlt_dist_allgather_f32(&z->d, z->fshard, z->fbuf, z->S));
    }
    for (int i = 0; i < z->n; i++)
        if (z->foff[i] >= 0) copy_f32(z->dev, vlt_f32(z->params[i]), z->fbuf + z->foff[i], z->params[i]->numel);
    return VLT_OK;
}

// Is `local` this rank's flat optimizer (its pieces, and rank 0's frozen parameters, in order)?
static bool flat_is_local(const vlt_zero *z, const vlt_adamw *local) {
    if (!local) return false;
    int c = 0, k = 0;
    for (int i = 0; i < z->n; i++) {
        const vlt_tensor *want = NULL;
        if (z->foff[i] < 0) {
            if (z->d.rank == 0) want = z->params[i];
        } else if (k < z->np && z->pparam[k] == i) {
            want = &z->pieces[k++];
        }
        if (!want) continue;
        if (c >= local->n || local->params[c] != want) return false;
        c++;
    }
    return c == local->n;
}

void vlt_zero_free_gathered(vlt_adamw *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        free(f->m ? f->m[i] : NULL);
        free(f->v ? f->v[i] : NULL);
    }
    free(f->m);
    free(f->v);
    free(f->params);
    free(f->decay);
    free(f);
}

// Rank 0 builds a host AdamW over the whole table and receives every range's moments, walking the
// flat space in order: each (parameter, rank) overlap is one piece of that rank.
static vlt_status flat_gather_optimizer(vlt_zero *z, const vlt_adamw *local, const bool *decay, vlt_adamw **full) {
    if (!flat_is_local(z, local))
        return vlt_error_set(VLT_ERR_ARG, "zero (flat): the optimizer is not this rank's shard (vlt_zero_adamw_new)");
    vlt_adamw *f = NULL;
    char msg[512] = "";
    int64_t biggest = 0;
    for (int i = 0; i < z->n; i++)
        if (z->params[i]->numel > biggest) biggest = z->params[i]->numel;
    float *tmp = malloc(sizeof(float) * (size_t)(biggest ? biggest : 1));
    if (z->d.rank == 0) {
        // host moments whatever the parameters' device (vlt_adamw_new allocates on theirs)
        f = calloc(1, sizeof *f);
        if (f) {
            f->n = z->n;
            f->params = malloc(sizeof *f->params * (size_t)z->n);
            f->decay = malloc((size_t)z->n);
            f->m = calloc((size_t)z->n, sizeof *f->m);
            f->v = calloc((size_t)z->n, sizeof *f->v);
            f->cfg = local->cfg;
            f->t = local->t;
            bool ok = f->params && f->decay && f->m && f->v;
            for (int i = 0; ok && i < z->n; i++) {
                f->params[i] = z->params[i];
                f->decay[i] = decay ? decay[i] : true;
                f->m[i] = calloc((size_t)z->params[i]->numel, sizeof(float));
                f->v[i] = calloc((size_t)z->params[i]->numel, sizeof(float));
                ok = f->m[i] && f->v[i];
            }
            if (!ok) {
                vlt_zero_free_gathered(f);
                f = NULL;
            }
        }
        if (!f) snprintf(msg, sizeof msg, "out of host memory");
    }
    double failed = (z->d.rank == 0 && !f) || !tmp;
    vlt_dist_sum(&z->d, &failed, 1);
    if (failed > 0) {
        free(tmp);
        vlt_zero_free_gathered(f);
        return vlt_error_set(VLT_ERR_NOMEM, "zero (flat): cannot gather the optimizer state for a checkpoint%s%s",
                             msg[0] ? ": " : "", msg);
    }
    vlt_status s = VLT_OK;
    vlt_device dev = params_device(z);   // the moments' (they follow the parameters)
    int c = 0;   // this rank's next local entry
    for (int i = 0; s == VLT_OK && i < z->n; i++) {
        const vlt_tensor *p = z->params[i];
        if (z->foff[i] < 0) {   // frozen: rank 0's whole
            if (z->d.rank == 0) {
                to_host_f32(p->device, f->m[i], local->m[c], p->numel);
                to_host_f32(p->device, f->v[i], local->v[c], p->numel);
                c++;
            }
            continue;
        }
        for (int64_t at = z->foff[i]; s == VLT_OK && at < z->foff[i] + p->numel;) {
            int r = (int)(at / z->S);
            int64_t end = (int64_t)(r + 1) * z->S < z->foff[i] + p->numel ? (int64_t)(r + 1) * z->S : z->foff[i] + p->numel;
            int64_t off = at - z->foff[i], len = end - at;
            size_t bytes = sizeof(float) * (size_t)len;
            for (int w = 0; s == VLT_OK && w < 2; w++) {
                float *dst = z->d.rank == 0 ? (w ? f->v[i] : f->m[i]) + off : NULL;
                if (r == z->d.rank) {
                    float *src = w ? local->v[c] : local->m[c];
                    if (r == 0) to_host_f32(dev, dst, src, len);
                    else {
                        to_host_f32(dev, tmp, src, len);
                        s = vlt_dist_send_recv(&z->d, tmp, bytes, r, 0);
                    }
                } else if (z->d.rank == 0) {
                    s = vlt_dist_send_recv(&z->d, dst, bytes, r, 0);
                }
            }
            if (r == z->d.rank) c++;
            at = end;
        }
    }
    free(tmp);
    if (s != VLT_OK) {
        vlt_zero_free_gathered(f);
        return s;
    }
    *full = f;
    return VLT_OK;
}

vlt_status vlt_zero_scatter_optimizer(const vlt_zero *z, vlt_adamw *local, const vlt_adamw *full) {
    if (!full || full->n != z->n)
        return vlt_error_set(VLT_ERR_ARG, "zero: the full optimizer does not cover the %d-parameter table", z->n);
    int c = 0;
    if (z->flat) {
        if (!flat_is_local(z, local))
            return vlt_error_set(VLT_ERR_ARG, "zero (flat): the optimizer is not this rank's shard (vlt_zero_adamw_new)");
        for (int i = 0, k = 0; i < z->n; i++) {
            int64_t off = 0, len = 0;
            if (z->foff[i] < 0) {
                if (z->d.rank != 0) continue;
                len = z->params[i]->numel;
            } else if (k < z->np && z->pparam[k] == i) {
                off = z->poff[k];
                len = z->pieces[k++].numel;
            } else {
                continue;
            }
            memcpy(local->m[c], full->m[i] + off, sizeof(float) * (size_t)len);
            memcpy(local->v[c], full->v[i] + off, sizeof(float) * (size_t)len);
            c++;
        }
    } else {
        if (!local || local->n != z->n_owned)
            return vlt_error_set(VLT_ERR_ARG, "zero: the optimizer is not this rank's shard (vlt_zero_adamw_new)");
        for (; c < z->n_owned; c++) {
            size_t bytes = sizeof(float) * (size_t)z->params[z->owned[c]]->numel;
            memcpy(local->m[c], full->m[z->owned[c]], bytes);
            memcpy(local->v[c], full->v[z->owned[c]], bytes);
        }
    }
    local->t = full->t;
    return VLT_OK;
}
