// dist.c — data-parallel collectives over MPI, and the world-size-1 identities (see dist.h).
//
// Every MPI collective here is the non-blocking variant followed by wait_req(), which polls
// until done or until timeout_s has passed (then the job is aborted with a message): one path
// for the blocking and the overlapped uses, and no endless hang when a rank is stuck.
#include "train/dist.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/device.h"
#include "autograd/ops_internal.h"
#include "layers/clip.h"

#ifdef VLT_MPI
#include <mpi.h>
#endif
#ifdef VLT_HAVE_CUDA
#include "autograd/ops_cuda.h"
#endif

#define DEFAULT_TIMEOUT_S 600.0

void vlt_dist_init_single(vlt_dist *d) {
    memset(d, 0, sizeof *d);
    d->world = 1;
    d->local_world = 1;
    d->backend = VLT_DIST_NONE;
    d->timeout_s = DEFAULT_TIMEOUT_S;
}

// ---- MPI plumbing ----------------------------------------------------------------------------
#ifdef VLT_MPI
static MPI_Comm comm_of(const vlt_dist *d) { return MPI_Comm_f2c((MPI_Fint)d->comm); }

// The check wrapper: an MPI error ends the whole job with a message naming the rank and the call.
static void check(const vlt_dist *d, int err, const char *what) {
    if (err == MPI_SUCCESS) return;
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(err, s, &len);
    char why[MPI_MAX_ERROR_STRING + 128];
    snprintf(why, sizeof why, "%s failed: %s", what, s);
    vlt_dist_abort(d, 3, why);
}

// Waits for a non-blocking collective. With a timeout it polls MPI_Test (which also drives the
// collective's progress), sleeping briefly between polls once the first millisecond has passed.
static void wait_req(const vlt_dist *d, MPI_Request *req, const char *what) {
    if (d->timeout_s <= 0) {
        check(d, MPI_Wait(req, MPI_STATUS_IGNORE), what);
        return;
    }
    double t0 = MPI_Wtime();
    for (long polls = 0;; polls++) {
        int done = 0;
        check(d, MPI_Test(req, &done, MPI_STATUS_IGNORE), what);
        if (done) return;
        double waited = MPI_Wtime() - t0;
        if (waited > d->timeout_s) {
            char why[256];
            snprintf(why, sizeof why, "%s did not finish within %.0f s (VLT_DIST_TIMEOUT): another rank has died or "
                     "hangs", what, d->timeout_s);
            vlt_dist_abort(d, 4, why);
        }
        if (waited > 1e-3) nanosleep(&(struct timespec){0, 20000}, NULL);
    }
}
#endif

_Noreturn void vlt_dist_abort(const vlt_dist *d, int code, const char *why) {
    fprintf(stderr, "vlt: rank %d of %d: %s; ending the job\n", d->rank, d->world, why);
    fflush(stderr);
    fflush(stdout);
#ifdef VLT_MPI
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin) MPI_Abort(d->backend == VLT_DIST_MPI ? comm_of(d) : MPI_COMM_WORLD, code);
#endif
    exit(code);
}

vlt_status vlt_dist_init(vlt_dist *d, int *argc, char ***argv) {
    vlt_dist_init_single(d);
    const char *t = getenv("VLT_DIST_TIMEOUT");
    if (t && *t) {
        char *end = NULL;
        errno = 0;
        double v = strtod(t, &end);
        if (errno || *end || !(v >= 0) || !isfinite(v))
            return vlt_error_set(VLT_ERR_ARG, "VLT_DIST_TIMEOUT='%s': give seconds >= 0 (0 waits forever)", t);
        d->timeout_s = v;
    }
#ifdef VLT_MPI
    const char *mode = getenv("VLT_DIST");
    if (mode && !strcmp(mode, "off")) return VLT_OK;
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (fin) return vlt_error_set(VLT_ERR_STATE, "dist init: MPI was already finalized in this process (init once, in main)");
    if (!inited) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return vlt_error_set(VLT_ERR_STATE, "dist init: MPI_Init failed");
        d->owns_mpi = true;
    }
    MPI_Comm c, node;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &c) != MPI_SUCCESS) return vlt_error_set(VLT_ERR_STATE, "dist init: MPI_Comm_dup failed");
    MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c, &d->rank);
    MPI_Comm_size(c, &d->world);
    d->comm = (int)MPI_Comm_c2f(c);
    d->backend = VLT_DIST_MPI;
    check(d, MPI_Comm_split_type(c, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
    MPI_Comm_rank(node, &d->local_rank);
    MPI_Comm_size(node, &d->local_world);
    MPI_Comm_free(&node);
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (lr && atoi(lr) != d->local_rank)
        fprintf(stderr, "vlt: rank %d: OMPI_COMM_WORLD_LOCAL_RANK=%s but the node split says %d; using %d\n", d->rank,
                lr, d->local_rank, d->local_rank);
#else
    (void)argc;
    (void)argv;
#endif
    return VLT_OK;
}

void vlt_dist_finalize(vlt_dist *d) {
#ifdef VLT_MPI
    int fin = 0;
    MPI_Finalized(&fin);
    if (d->backend == VLT_DIST_MPI && !fin) {
        MPI_Comm c = comm_of(d);
        MPI_Comm_free(&c);
        if (d->owns_mpi) MPI_Finalize();
    }
#endif
    vlt_dist_init_single(d);
}

// ---- small collectives -----------------------------------------------------------------------
vlt_status vlt_dist_barrier(const vlt_dist *d) {
    if (d->world == 1) return VLT_OK;
#ifdef VLT_MPI
    MPI_Request r;
    check(d, MPI_Ibarrier(comm_of(d), &r), "barrier");
    wait_req(d, &r, "barrier");
#endif
    return VLT_OK;
}

vlt_status vlt_dist_sum(const vlt_dist *d, double *x, int n) {
    if (n < 0) return vlt_error_set(VLT_ERR_ARG, "dist sum: n = %d", n);
    if (d->world == 1 || n == 0) return VLT_OK;
#ifdef VLT_MPI
    MPI_Request r;
    check(d, MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, comm_of(d), &r), "sum");
    wait_req(d, &r, "sum");
#else
    (void)x;
#endif
    return VLT_OK;
}

double vlt_dist_mean(const vlt_dist *d, double x) {
    vlt_dist_sum(d, &x, 1);
    return x / d->world;
}

void vlt_dist_minmax(const vlt_dist *d, long long v, long long *min, long long *max) {
    *min = *max = v;
    if (d->world == 1) return;
#ifdef VLT_MPI
    // One all-reduce: max of (v, -v) gives max and -min. |v| < 2^62 keeps -v exact.
    VLT_ASSERT(v > -(1LL << 62) && v < (1LL << 62), "dist minmax: %lld out of range", v);
    long long mm[2] = {v, -v};
    MPI_Request r;
    check(d, MPI_Iallreduce(MPI_IN_PLACE, mm, 2, MPI_LONG_LONG, MPI_MAX, comm_of(d), &r), "minmax");
    wait_req(d, &r, "minmax");
    *max = mm[0];
    *min = -mm[1];
#endif
}

static bool agree(const vlt_dist *d, long long key);

vlt_status vlt_dist_allgather_text(const vlt_dist *d, const char *mine, char ***all) {
    *all = NULL;
    size_t len = strlen(mine);
    if (len >= INT32_MAX) return vlt_error_set(VLT_ERR_ARG, "dist allgather_text: %zu bytes is too long", len);
    int W = d->world;
    char **out = calloc((size_t)W, sizeof *out);
    int *lens = calloc((size_t)W, sizeof(int)), *offs = calloc((size_t)W, sizeof(int));
    if (!out || !lens || !offs) {
        free(out); free(lens); free(offs);
        return vlt_error_set(VLT_ERR_NOMEM, "dist allgather_text: out of memory");
    }
    lens[d->rank] = (int)len;
#ifdef VLT_MPI
    if (W > 1) {
        MPI_Request r;
        check(d, MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, lens, 1, MPI_INT, comm_of(d), &r), "allgather_text");
        wait_req(d, &r, "allgather_text");
    }
#endif
    int64_t total = 0;
    for (int q = 0; q < W; q++) { offs[q] = (int)total; total += lens[q]; }
    char *buf = total < INT32_MAX ? malloc((size_t)total + 1) : NULL;
    if (buf) memcpy(buf + offs[d->rank], mine, len);
#ifdef VLT_MPI
    // Every rank takes part even when its buffer failed, then all report the failure.
    long long ok = buf ? 0 : -1;
    if (W > 1 && agree(d, ok)) {
        MPI_Request r;
        check(d, MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, lens, offs, MPI_CHAR, comm_of(d), &r),
              "allgather_text");
        wait_req(d, &r, "allgather_text");
    } else if (W > 1) {
        free(buf);
        buf = NULL;
    }
#endif
    vlt_status s = buf ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "dist allgather_text: %lld bytes", (long long)total);
    for (int q = 0; buf && q < W && s == VLT_OK; q++) {
        out[q] = strndup(buf + offs[q], (size_t)lens[q]);
        if (!out[q]) s = vlt_error_set(VLT_ERR_NOMEM, "dist allgather_text: out of memory");
    }
    free(buf);
    free(lens);
    free(offs);
    if (s != VLT_OK) {
        vlt_dist_free_text(out, W);
        return s;
    }
    *all = out;
    return VLT_OK;
}

void vlt_dist_free_text(char **all, int n) {
    if (!all) return;
    for (int i = 0; i < n; i++) free(all[i]);
    free(all);
}

// ---- rooted and point-to-point transfers ----------------------------------------------------
#define CHUNK_FLOATS ((int64_t)1 << 28)   // MPI counts are ints: 1 GiB of floats per call
#define CHUNK_BYTES ((size_t)1 << 30)

static vlt_status check_root(const vlt_dist *d, const char *what, int root) {
    if (root < 0 || root >= d->world)
        return vlt_error_set(VLT_ERR_ARG, "dist %s: rank %d is outside the world of %d", what, root, d->world);
    return VLT_OK;
}

vlt_status vlt_dist_reduce_sum(const vlt_dist *d, float *x, int64_t n, int root) {
    VLT_TRY(check_root(d, "reduce", root));
    if (n < 0) return vlt_error_set(VLT_ERR_ARG, "dist reduce: n = %lld", (long long)n);
    if (d->world == 1 || n == 0) return VLT_OK;
#ifdef VLT_MPI
    for (int64_t off = 0; off < n; off += CHUNK_FLOATS) {
        int len = (int)(n - off < CHUNK_FLOATS ? n - off : CHUNK_FLOATS);
        MPI_Request r;
        const void *send = d->rank == root ? MPI_IN_PLACE : (const void *)(x + off);
        check(d, MPI_Ireduce(send, d->rank == root ? x + off : NULL, len, MPI_FLOAT, MPI_SUM, root, comm_of(d), &r),
              "gradient reduce to owner");
        wait_req(d, &r, "gradient reduce to owner");
    }
#else
    (void)x;
#endif
    return VLT_OK;
}

vlt_status vlt_dist_broadcast(const vlt_dist *d, void *x, size_t bytes, int root) {
    VLT_TRY(check_root(d, "broadcast", root));
    if (d->world == 1 || bytes == 0) return VLT_OK;
#ifdef VLT_MPI
    for (size_t off = 0; off < bytes; off += CHUNK_BYTES) {
        int len = (int)(bytes - off < CHUNK_BYTES ? bytes - off : CHUNK_BYTES);
        MPI_Request r;
        check(d, MPI_Ibcast((char *)x + off, len, MPI_BYTE, root, comm_of(d), &r), "broadcast from owner");
        wait_req(d, &r, "broadcast from owner");
    }
#else
    (void)x;
#endif
    return VLT_OK;
}

vlt_status vlt_dist_send_recv(const vlt_dist *d, void *x, size_t bytes, int from, int to) {
    VLT_TRY(check_root(d, "send", from));
    VLT_TRY(check_root(d, "receive", to));
    if (from == to || (d->rank != from && d->rank != to) || bytes == 0) return VLT_OK;
#ifdef VLT_MPI
    for (size_t off = 0; off < bytes; off += CHUNK_BYTES) {
        int len = (int)(bytes - off < CHUNK_BYTES ? bytes - off : CHUNK_BYTES);
        MPI_Request r;
        if (d->rank == from)
            check(d, MPI_Isend((char *)x + off, len, MPI_BYTE, to, 7, comm_of(d), &r), "send to rank");
        else
            check(d, MPI_Irecv((char *)x + off, len, MPI_BYTE, from, 7, comm_of(d), &r), "receive from rank");
        wait_req(d, &r, d->rank == from ? "send to rank" : "receive from rank");
    }
#else
    (void)x;
#endif
    return VLT_OK;
}

vlt_status vlt_dist_reduce_scatter_sum(const vlt_dist *d, const float *x, float *out, int64_t n) {
    if (n < 0 || n > INT32_MAX) return vlt_error_set(VLT_ERR_ARG, "dist reduce-scatter: %lld values per rank", (long long)n);
    if (d->world == 1) {
        if (out != x) memmove(out, x, sizeof(float) * (size_t)n);
        return VLT_OK;
    }
#ifdef VLT_MPI
    MPI_Request r;
    check(d, MPI_Ireduce_scatter_block(x, out, (int)n, MPI_FLOAT, MPI_SUM, comm_of(d), &r), "flat gradient reduce-scatter");
    wait_req(d, &r, "flat gradient reduce-scatter");
#endif
    return VLT_OK;
}

vlt_status vlt_dist_allgather_f32(const vlt_dist *d, const float *mine, float *out, int64_t n) {
    if (n < 0 || n > INT32_MAX) return vlt_error_set(VLT_ERR_ARG, "dist all-gather: %lld values per rank", (long long)n);
    if (d->world == 1) {
        if (out != mine) memmove(out, mine, sizeof(float) * (size_t)n);
        return VLT_OK;
    }
#ifdef VLT_MPI
    MPI_Request r;
    check(d, MPI_Iallgather(mine, (int)n, MPI_FLOAT, out, (int)n, MPI_FLOAT, comm_of(d), &r), "flat parameter all-gather");
    wait_req(d, &r, "flat parameter all-gather");
#endif
    return VLT_OK;
}

// 62-bit FNV-1a over bytes, for agreement checks.
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
static long long hash62(uint64_t h) { return (long long)(h & ((1ull << 62) - 1)); }

// Are the ranks' keys equal? (key < 0: this rank failed locally, which every rank then sees.)
static bool agree(const vlt_dist *d, long long key) {
    long long lo, hi;
    vlt_dist_minmax(d, key, &lo, &hi);
    return lo == hi && lo >= 0;
}

vlt_status vlt_dist_broadcast_params(const vlt_dist *d, const vlt_params *p) {
    if (d->world == 1) return VLT_OK;
    uint64_t h = fnv(14695981039346656037ull, &p->n, sizeof p->n);
    for (int i = 0; i < p->n; i++) {
        const vlt_tensor *t = p->t[i];
        h = fnv(h, t->name, strlen(t->name));
        h = fnv(h, &t->ndim, sizeof t->ndim);
        h = fnv(h, t->shape, sizeof(int) * (size_t)t->ndim);
        h = fnv(h, &t->dtype, sizeof t->dtype);
    }
    if (!agree(d, hash62(h)))
        return vlt_error_set(VLT_ERR_SHAPE, "dist: the ranks' parameter tables differ (names, shapes or count; rank %d "
                             "has %d parameters, %lld values): every rank must build the same model", d->rank, p->n,
                             (long long)vlt_params_numel(p));
#ifdef VLT_MPI
    for (int i = 0; i < p->n; i++) {
        vlt_tensor *t = p->t[i];
        size_t bytes = (size_t)t->numel * vlt_dtype_size(t->dtype);
        for (size_t off = 0; off < bytes; off += (size_t)1 << 30) {
            size_t len = bytes - off < ((size_t)1 << 30) ? bytes - off : (size_t)1 << 30;
            MPI_Request r;
            check(d, MPI_Ibcast((char *)t->data + off, (int)len, MPI_BYTE, 0, comm_of(d), &r), "broadcast of parameters");
            wait_req(d, &r, "broadcast of parameters");
        }
    }
#endif
    return VLT_OK;
}

// ---- gradient buckets ------------------------------------------------------------------------
// A plan: the trainable gradients in reverse parameter order, cut into buckets of `cap` floats;
// a segment is a run of one parameter's gradient inside one bucket.
typedef struct {
    int param;
    int64_t off, len;   // in the gradient, floats
    int64_t at;         // offset in the bucket
} seg;

typedef struct {
    int seg0, nseg;
    int64_t numel;
    int params;         // distinct parameters (the readiness count)
    int pending;
    bool started;
    float *buf;
    uint16_t *half;     // grad_reduce_dtype bf16: the bucket as sent (host or device)
#ifdef VLT_MPI
    MPI_Request req;
#endif
} bucket;

struct vlt_dist_reducer {
    vlt_dist d;
    vlt_tensor **params;
    int n;
    seg *segs;
    int nseg;
    bucket *b;
    int nb, next;       // buckets; the next to start
    int *first_b, *last_b;   // per parameter: its buckets (-1: not trainable)
    bool comm;          // something to send: several ranks, or GPU gradients through NCCL (even one rank)
    bool device;        // GPU gradients: the buckets live on the device and go through NCCL on its stream
    bool bf16;          // the buckets travel as bf16 (summed there), averaged back in f32
    int64_t total;      // trainable values (the buckets end to end)
    uint16_t *half;     // bf16: the buckets' bf16 copies, end to end
    bool *ready;
    float *flat;        // every bucket's buffer, back to back
    int early, last_early;   // buckets started by vlt_dist_reducer_ready (this round, the last)
};

static vlt_status check_grads(const char *what, vlt_tensor **params, int n) {
    for (int i = 0; i < n; i++) {
        vlt_tensor *p = params[i];
        if (!p || !p->requires_grad) continue;
        if (!p->grad || p->grad->dtype != VLT_F32 || p->grad->numel != p->numel || !vlt_tensor_is_contiguous(p->grad))
            return vlt_error_set(VLT_ERR_STATE, "%s: parameter '%s' has no contiguous f32 gradient", what,
                                 p->name);
    }
    return VLT_OK;
}

static void reducer_free_parts(vlt_dist_reducer *r) {
    if (!r) return;
    free(r->segs);
    free(r->b);
    free(r->first_b);
    free(r->last_b);
    free(r->ready);
#ifdef VLT_HAVE_CUDA
    if (r->device) {
        vlt_cuda_free(r->flat);
        vlt_cuda_free(r->half);
    } else
#endif
    {
        free(r->flat);
        free(r->half);
    }
    free(r);
}

// Plans the buckets; `flat` allocates each bucket its own buffer (the overlapped reducer), on the
// device when `device` (the NCCL path), with bf16 copies when `bf16`.
static vlt_dist_reducer *plan_on(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes, bool flat,
                                 bool device, bool bf16) {
    if (check_grads("dist gradient all-reduce", params, n) != VLT_OK) return NULL;
    int64_t cap = (int64_t)((bucket_bytes ? bucket_bytes : VLT_DIST_BUCKET_BYTES) / sizeof(float));
    if (cap < 1) cap = 1;
    if (cap > (1 << 30)) cap = 1 << 30;   // MPI counts are ints
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        if (params[i] && params[i]->requires_grad) total += params[i]->numel;
    int64_t max_segs = n + total / cap + 1, max_b = total / cap + 1;
    vlt_dist_reducer *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->d = *d;
    r->params = params;
    r->n = n;
    r->segs = calloc((size_t)max_segs, sizeof *r->segs);
    r->b = calloc((size_t)max_b, sizeof *r->b);
    r->first_b = malloc(sizeof(int) * (size_t)(n ? n : 1));
    r->last_b = malloc(sizeof(int) * (size_t)(n ? n : 1));
    r->ready = calloc((size_t)(n ? n : 1), 1);
    size_t nflat = (size_t)(flat ? (total ? total : 1) : (total < cap ? (total ? total : 1) : cap));
    r->device = device;
    r->bf16 = bf16;
    r->total = total;
#ifdef VLT_HAVE_CUDA
    if (device) {
        r->flat = vlt_cuda_malloc(sizeof(float) * nflat);
        if (bf16) r->half = vlt_cuda_malloc(sizeof(uint16_t) * nflat);
    } else
#endif
    {
        r->flat = malloc(sizeof(float) * nflat);
        if (bf16) r->half = malloc(sizeof(uint16_t) * nflat);
    }
    if (!r->segs || !r->b || !r->first_b || !r->last_b || !r->ready || !r->flat || (bf16 && !r->half)) {
        reducer_free_parts(r);
        vlt_error_set(VLT_ERR_NOMEM, "dist gradient all-reduce: no memory for %lld gradient values", (long long)total);
        return NULL;
    }
    bucket *cur = NULL;
    int64_t flat_at = 0;
    for (int i = n - 1; i >= 0; i--) {
        r->first_b[i] = r->last_b[i] = -1;
        if (!params[i] || !params[i]->requires_grad) continue;
        for (int64_t off = 0; off < params[i]->numel;) {
            if (!cur || cur->numel == cap) {
                cur = &r->b[r->nb++];
                cur->seg0 = r->nseg;
                cur->buf = r->flat + (flat ? flat_at : 0);
                cur->half = r->half ? r->half + (flat ? flat_at : 0) : NULL;
            }
            int64_t take = params[i]->numel - off < cap - cur->numel ? params[i]->numel - off : cap - cur->numel;
            r->segs[r->nseg++] = (seg){i, off, take, cur->numel};
            cur->nseg++;
            if (r->first_b[i] < 0) { r->first_b[i] = (int)(cur - r->b); cur->params++; }
            else if (r->last_b[i] != (int)(cur - r->b)) cur->params++;
            r->last_b[i] = (int)(cur - r->b);
            cur->numel += take;
            flat_at += take;
            off += take;
        }
    }
    for (int k = 0; k < r->nb; k++) r->b[k].pending = r->b[k].params;
    return r;
}

static vlt_dist_reducer *plan(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes, bool flat) {
    return plan_on(d, params, n, bucket_bytes, flat, false, false);
}

#ifdef VLT_MPI
// bf16 gradients: MPI has no bf16 sum, so a commutative user op (each partial sum rounded to bf16,
// as NCCL's bf16 sum does).
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++) b[i] = vlt_f32_to_bf16(vlt_bf16_to_f32(a[i]) + vlt_bf16_to_f32(b[i]));
}

static MPI_Op bf16_sum_op(void) {
    static MPI_Op op = MPI_OP_NULL;
    if (op == MPI_OP_NULL) MPI_Op_create(bf16_sum, 1, &op);
    return op;
}
#endif

static void pack(vlt_dist_reducer *r, bucket *b) {
    for (int s = b->seg0; s < b->seg0 + b->nseg; s++) {
        const seg *g = &r->segs[s];
        const float *src = vlt_f32(r->params[g->param]->grad) + g->off;
#ifdef VLT_HAVE_CUDA
        if (r->device) {   // stream-ordered after the backward kernels that wrote the gradient
            vlt_cuda_copy_d2d(b->buf + g->at, src, sizeof(float) * (size_t)g->len);
            continue;
        }
#endif
        memcpy(b->buf + g->at, src, sizeof(float) * (size_t)g->len);
    }
#ifdef VLT_HAVE_CUDA
    if (r->device && r->bf16) {
        vlt_cuda_to_bf16(b->half, b->buf, b->numel);
        return;
    }
#endif
    if (r->bf16) vlt_f32_to_bf16_array(b->half, b->buf, (size_t)b->numel);
}

// The averages back into the gradients. f32 on the CPU: the sum × 1/world; on the device NCCL's
// ncclAvg already averaged. bf16: the bf16 sum widened to f32, then × 1/world in f32 (on the
// device once over all buckets, in vlt_dist_reducer_finish: one multi-tensor list, cached).
static void unpack(vlt_dist_reducer *r, bucket *b) {
    float k = 1.0f / (float)r->d.world;
#ifdef VLT_HAVE_CUDA
    if (r->device) {
        for (int s = b->seg0; s < b->seg0 + b->nseg; s++) {
            const seg *g = &r->segs[s];
            vlt_cuda_copy_d2d(vlt_f32(r->params[g->param]->grad) + g->off, b->buf + g->at, sizeof(float) * (size_t)g->len);
        }
        return;
    }
#endif
    if (r->bf16) vlt_bf16_to_f32_array(b->buf, b->half, (size_t)b->numel);
    for (int s = b->seg0; s < b->seg0 + b->nseg; s++) {
        const seg *g = &r->segs[s];
        float *dst = vlt_f32(r->params[g->param]->grad) + g->off;
        const float *src = b->buf + g->at;
        for (int64_t j = 0; j < g->len; j++) dst[j] = src[j] * k;
    }
}

static void start_bucket(vlt_dist_reducer *r, bucket *b) {
    pack(r, b);
    if (r->device) {
        // the collective on the communication stream, after this bucket's packing on the compute one
        vlt_status s = vlt_dist_nccl_bucket_start(&r->d, r->bf16 ? (void *)b->half : (void *)b->buf, b->numel, r->bf16);
        if (s != VLT_OK) vlt_dist_abort(&r->d, 3, vlt_error_message());
        b->started = true;
        return;
    }
#ifdef VLT_MPI
    if (r->bf16)
        check(&r->d, MPI_Iallreduce(MPI_IN_PLACE, b->half, (int)b->numel, MPI_UINT16_T, bf16_sum_op(), comm_of(&r->d),
                                    &b->req), "gradient all-reduce (bf16)");
    else
        check(&r->d, MPI_Iallreduce(MPI_IN_PLACE, b->buf, (int)b->numel, MPI_FLOAT, MPI_SUM, comm_of(&r->d), &b->req),
              "gradient all-reduce");
#endif
    b->started = true;
}

static void finish_bucket(vlt_dist_reducer *r, bucket *b) {
#ifdef VLT_MPI
    if (!r->device) wait_req(&r->d, &b->req, "gradient all-reduce");
#endif
    unpack(r, b);
}

// CUDA gradients: one grouped NCCL all-reduce (average) over every gradient.
static vlt_status allreduce_device_grads(const vlt_dist *d, vlt_tensor **params, int n) {
    float **bufs = malloc(sizeof *bufs * (size_t)n);
    int64_t *cnt = malloc(sizeof *cnt * (size_t)n);
    if (!bufs || !cnt) { free(bufs); free(cnt); return vlt_error_set(VLT_ERR_NOMEM, "dist gradient all-reduce: out of memory"); }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (params[i] && params[i]->requires_grad) { bufs[k] = vlt_f32(params[i]->grad); cnt[k++] = params[i]->numel; }
    vlt_status s = vlt_dist_nccl_allreduce_avg(d, bufs, cnt, k);
    free(bufs);
    free(cnt);
    return s;
}

vlt_status vlt_dist_allreduce_grads(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes) {
    VLT_TRY(check_grads("dist gradient all-reduce", params, n));
    bool on_gpu = false;
    for (int i = 0; i < n; i++) on_gpu |= params[i] && params[i]->requires_grad && params[i]->grad->device == VLT_CUDA;
    if (on_gpu) {
        if (vlt_dist_nccl_active()) return allreduce_device_grads(d, params, n);
        if (d->world > 1)
            return vlt_error_set(VLT_ERR_UNSUPPORTED, "dist gradient all-reduce: GPU gradients over %d ranks need NCCL "
                                 "(vlt_dist_nccl_init)", d->world);
    }
    if (d->world == 1) return VLT_OK;
    vlt_dist_reducer *r = plan(d, params, n, bucket_bytes, false);
    if (!r) return vlt_error_code();
    for (int k = 0; k < r->nb; k++) {
        start_bucket(r, &r->b[k]);
        finish_bucket(r, &r->b[k]);
    }
    reducer_free_parts(r);
    return VLT_OK;
}

vlt_dist_reducer *vlt_dist_reducer_new(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes) {
    return vlt_dist_reducer_new_dtype(d, params, n, bucket_bytes, false);
}

vlt_dist_reducer *vlt_dist_reducer_new_dtype(const vlt_dist *d, vlt_tensor **params, int n, size_t bucket_bytes,
                                             bool bf16) {
    bool on_gpu = false;
    for (int i = 0; i < n; i++) on_gpu |= params[i] && params[i]->requires_grad && params[i]->grad &&
                                          params[i]->grad->device == VLT_CUDA;
    if (on_gpu && d->world > 1 && !vlt_dist_nccl_active()) {
        vlt_error_set(VLT_ERR_UNSUPPORTED, "dist reducer: GPU gradients over %d ranks need NCCL (vlt_dist_nccl_init)",
                      d->world);
        return NULL;
    }
    // one rank on the CPU (or a GPU without NCCL): nothing to send, no buffers
    bool comm = d->world > 1 || (on_gpu && vlt_dist_nccl_active());
    if (!comm) bf16 = false;
    vlt_dist_reducer *r = plan_on(d, params, n, bucket_bytes, comm, on_gpu && comm, bf16);
    if (r) r->comm = comm;
    return r;
}

bool vlt_dist_reducer_on_device(const vlt_dist_reducer *r) { return r->device; }

int vlt_dist_reducer_buckets(const vlt_dist_reducer *r) { return r->nb; }

void vlt_dist_reducer_ready(vlt_dist_reducer *r, int i) {
    VLT_ASSERT(i >= 0 && i < r->n, "dist reducer: parameter %d of %d", i, r->n);
    if (r->ready[i] || r->first_b[i] < 0) return;
    r->ready[i] = true;
    for (int k = r->first_b[i]; k <= r->last_b[i]; k++) r->b[k].pending--;
    if (!r->comm) return;
    while (r->next < r->nb && r->b[r->next].pending == 0) {
        start_bucket(r, &r->b[r->next++]);
        r->early++;
    }
#ifdef VLT_MPI
    // MPI moves a non-blocking collective forward only inside MPI calls: test the ones in flight.
    for (int k = 0; !r->device && k < r->next; k++)
        if (r->b[k].req != MPI_REQUEST_NULL) {
            int done = 0;
            MPI_Test(&r->b[k].req, &done, MPI_STATUS_IGNORE);
        }
#endif
}

int vlt_dist_reducer_started_early(const vlt_dist_reducer *r) { return r->last_early; }

vlt_status vlt_dist_reducer_finish(vlt_dist_reducer *r) {
    if (r->comm) {
        while (r->next < r->nb) start_bucket(r, &r->b[r->next++]);
        // the device: the compute stream waits for the communication stream (and the host polls
        // it against the deadline), then unpacks
        if (r->device && r->nb) VLT_TRY(vlt_dist_nccl_buckets_wait(&r->d));
#ifdef VLT_HAVE_CUDA
        if (r->device && r->bf16 && r->total > 0) {   // the buckets are r->flat / r->half end to end
            vlt_cuda_cast_bf16_f32(r->flat, r->half, r->total);
            if (r->d.world > 1) {
                vlt_mt_entry e = {{r->flat, NULL, NULL, NULL}, r->total, 0.0f, 0.0f};
                vlt_cuda_scale_mt(&e, 1, 1.0f / (float)r->d.world);
            }
        }
#endif
        for (int k = 0; k < r->nb; k++) finish_bucket(r, &r->b[k]);
    }
    for (int k = 0; k < r->nb; k++) {
        r->b[k].pending = r->b[k].params;
        r->b[k].started = false;
    }
    memset(r->ready, 0, (size_t)r->n);
    r->next = 0;
    r->last_early = r->early;
    r->early = 0;
    return VLT_OK;
}

void vlt_dist_reducer_free(vlt_dist_reducer *r) { reducer_free_parts(r); }

// ---- the all-gather op -----------------------------------------------------------------------
#ifdef VLT_MPI
// The node carries the communicator: i[0] comm handle, i[1] rank, i[2] world; f[0] timeout.
static vlt_dist node_dist(const vlt_node *n) {
    vlt_dist d;
    vlt_dist_init_single(&d);
    d.comm = n->i[0];
    d.rank = n->i[1];
    d.world = n->i[2];
    d.timeout_s = n->f[0];
    d.backend = VLT_DIST_MPI;
    return d;
}

static void all_gather_backward(vlt_node *n) {
    vlt_dist d = node_dist(n);
    vlt_tensor *x = n->in[0];
    int64_t m = x->numel;
    float *mine = vlt_step_scratch(sizeof(float) * (size_t)m);
    VLT_ASSERT(mine, "dist_all_gather backward: step arena out of memory for %lld floats", (long long)m);
    MPI_Request r;
    // Sum the gathered gradient over ranks; rank r keeps rows r·B.. (its own features).
    check(&d, MPI_Ireduce_scatter_block(vlt_f32(n->out->grad), mine, (int)m, MPI_FLOAT, MPI_SUM, comm_of(&d), &r),
          "all-gather backward (reduce-scatter)");
    wait_req(&d, &r, "all-gather backward (reduce-scatter)");
    acc(vlt_f32(vlt_grad_of(x)), mine, m);
}
#endif

// The node of the device all-gather: i[0] rank, i[1] world; f[0] timeout.
static void all_gather_backward_nccl(vlt_node *n) {
    vlt_dist d;
    vlt_dist_init_single(&d);
    d.rank = n->i[0];
    d.world = n->i[1];
    d.timeout_s = n->f[0];
    vlt_tensor *x = n->in[0];
    if (!x->requires_grad) return;
    bool fresh;
    float *g = vlt_f32(vlt_grad_for_write(x, &fresh));
    if (fresh) {  // this rank's rows of the summed gradient straight into x's new gradient
        vlt_dist_nccl_reduce_scatter(&d, vlt_f32(n->out->grad), g, x->numel);
        return;
    }
    vlt_tensor *mine = vlt_tensor_new_activation(VLT_F32, VLT_CUDA, x->ndim, x->shape);
    VLT_ASSERT(mine, "dist_all_gather backward: device step arena out of memory");
    vlt_dist_nccl_reduce_scatter(&d, vlt_f32(n->out->grad), vlt_f32(mine), x->numel);
    vlt_device_acc(VLT_CUDA, g, vlt_f32(mine), x->numel);
}

// x on the GPU: NCCL's all-gather into a device activation (ranks agree on shapes by contract:
// NCCL has no cheap pre-check; a mismatch shows as a hang, which the timeout ends).
static vlt_tensor *all_gather_device(const vlt_dist *d, vlt_tensor *x) {
    if (!vlt_dist_nccl_active()) {
        vlt_error_set(VLT_ERR_UNSUPPORTED, "dist_all_gather: a GPU tensor over %d ranks needs NCCL (vlt_dist_nccl_init)",
                      d->world);
        return NULL;
    }
    int shape[VLT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] *= d->world;
    vlt_tensor *out = vlt_tensor_new_activation(VLT_F32, VLT_CUDA, x->ndim, shape);
    VLT_ASSERT(out, "dist_all_gather: device step arena out of memory");
    if (vlt_dist_nccl_allgather(d, vlt_f32(x), vlt_f32(out), x->numel) != VLT_OK) return NULL;
    vlt_node *n = vlt_tape_record("dist_all_gather", all_gather_backward_nccl, out, 1, &x);
    if (n) {
        n->i[0] = d->rank;
        n->i[1] = d->world;
        n->f[0] = (float)d->timeout_s;
    }
    return out;
}

vlt_tensor *vlt_dist_all_gather(const vlt_dist *d, vlt_tensor *x) {
    const char *op = "dist_all_gather";
    bool ok = op_input_ok(op, x, VLT_F32);
    if (ok && x->ndim < 1) {
        vlt_error_set(VLT_ERR_SHAPE, "%s: input '%s' is 0-d; it needs a batch dim", op, x->name);
        ok = false;
    }
    if (ok && (int64_t)x->numel * d->world > INT32_MAX) {
        vlt_error_set(VLT_ERR_SHAPE, "%s: %lld values x %d ranks is too large", op, (long long)x->numel, d->world);
        ok = false;
    }
    if (ok && x->device == VLT_CUDA && (d->world > 1 || vlt_dist_nccl_active())) return all_gather_device(d, x);
    if (d->world == 1) return ok ? x : NULL;
#ifdef VLT_MPI
    // Every rank learns whether every rank has the same shape (and is fine), so all of them
    // return NULL together rather than some waiting forever in the gather.
    long long key = -1;
    if (ok) key = hash62(fnv(fnv(14695981039346656037ull, &x->ndim, sizeof x->ndim), x->shape, sizeof x->shape));
    if (!agree(d, key)) {
        if (ok) {
            char s[64];
            vlt_error_set(VLT_ERR_SHAPE, "%s: rank %d has '%s' %s, another rank a different shape or an error", op,
                          d->rank, x->name, vlt_shape_str(x, s, sizeof s));
        }
        return NULL;
    }
    int shape[VLT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] *= d->world;
    vlt_tensor *out = op_out(x->ndim, shape);
    VLT_ASSERT(out, "%s: step arena out of memory", op);   // a rank without memory cannot leave quietly
    MPI_Request r;
    check(d, MPI_Iallgather(x->data, (int)x->numel, MPI_FLOAT, out->data, (int)x->numel, MPI_FLOAT, comm_of(d), &r),
          "all-gather");
    wait_req(d, &r, "all-gather");
    vlt_node *n = vlt_tape_record(op, all_gather_backward, out, 1, &x);
    if (n) {
        n->i[0] = d->comm;
        n->i[1] = d->rank;
        n->i[2] = d->world;
        n->f[0] = (float)d->timeout_s;
    }
    return out;
#else
    return NULL;
#endif
}

// ---- the global-batch contrastive loss -------------------------------------------------------
vlt_tensor *vlt_dist_clip_loss(const vlt_dist *d, vlt_tensor *img, vlt_tensor *txt, vlt_tensor *logit_scale,
                               vlt_tensor *logit_bias, vlt_tensor **logits_out) {
    // (with NCCL active the gathered path runs even for one rank: the one-GPU check of it)
    if (d->world == 1 && !(vlt_dist_nccl_active() && img && img->device == VLT_CUDA))
        return vlt_clip_loss(img, txt, logit_scale, logit_bias, logits_out);
    // SigLIP needs only the captions of other ranks (this rank's image rows cover every pair once).
    vlt_tensor *txt_all = vlt_dist_all_gather(d, txt);          // (N, E), N = world·B
    vlt_tensor *img_all = logit_bias ? NULL : vlt_dist_all_gather(d, img);
    if (!txt_all || (!logit_bias && !img_all)) return NULL;
    if (img->ndim != 2 || txt->ndim != 2 || img->shape[0] != txt->shape[0]) {
        char a[64], b[64];
        vlt_error_set(VLT_ERR_SHAPE, "dist_clip_loss: image features %s and text features %s (want (B, E) both)",
                      vlt_shape_str(img, a, sizeof a), vlt_shape_str(txt, b, sizeof b));
        return NULL;
    }
    int B = img->shape[0], N = txt_all->shape[0], off = d->rank * B;
    vlt_tensor *scale = vlt_exp(logit_scale);
    vlt_tensor *li = vlt_mul(vlt_matmul(img, txt_all, false, true), scale);   // (B, N)
    if (logit_bias) {
        li = vlt_add(li, logit_bias);
        if (logits_out) *logits_out = li;
        vlt_tensor *z = li ? vlt_siglip_signs(B, N, off, li->device) : NULL;
        if (!z) return NULL;
        return vlt_scale(vlt_sum_all(vlt_log_sigmoid(vlt_mul(li, z))), -1.0f / (float)B);
    }
    if (logits_out) *logits_out = li;
    vlt_tensor *lt = vlt_mul(vlt_matmul(txt, img_all, false, true), scale);   // (B, N)
    vlt_tensor *labels = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 1, VLT_SHAPE(B));
    if (!labels) return NULL;
    for (int i = 0; i < B; i++) vlt_i32(labels)[i] = off + i;
    if (li->device != VLT_CPU) labels = vlt_to_device(labels, li->device);  // the logits' device
    vlt_tensor *ci = vlt_cross_entropy(li, labels, -1, 0.0f);
    vlt_tensor *ct = vlt_cross_entropy(lt, labels, -1, 0.0f);
    return vlt_scale(vlt_add(ci, ct), 0.5f);
}
