// zero.c — ZeRO-1 ownership, reduce-to-owner, global-norm clipping, parameter gather and the
// checkpoint's moment gather (see zero.h). Only train/dist.h's transfers touch MPI.
#include "train/zero.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
};

void vlt_zero_free(vlt_zero *z) {
    if (!z) return;
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
