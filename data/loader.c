// loader.c — the threaded loader (see loader.h for the design).
//
// Threads: R readers (read shards, shuffle, decode) each feeding its own bounded queue of
// decoded samples; one collator merging the queues round robin into a ring of batch slots; the
// caller's thread taking batches in vlt_loader_next. One mutex guards all queue and slot
// bookkeeping; the bulky work (decode, copies) happens outside it on slots that the protocol
// gives to one thread at a time.
#include "data/loader.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/rng.h"
#include "data/image.h"
#include "data/shardspec.h"
#include "data/tar.h"
#include "data/webdataset.h"

#define POS_VERSION 1

// --- positions -----------------------------------------------------------------------------------

typedef struct {
    uint32_t shard;     // index in the reader's shard sequence for the epoch
    uint64_t offset;    // tar offset of the sample's first header
    uint64_t key_hash;  // vlt_rng_hash_str(key), checked when re-read
} buf_loc;

typedef struct {
    uint32_t shard;     // the shard being read (index in the sequence)
    uint64_t offset;    // tar offset of the next sample in it (0: from the start)
    uint64_t read, drawn;
    int done;           // the reader's END was delivered
    uint32_t n_buf, cap;
    buf_loc *buf;       // shuffle buffer contents in read order
} reader_pos;

typedef struct {
    int64_t epoch, batches, samples;
    int next_reader;
    vlt_loader_stats stats;
    int R;
    reader_pos *rd;
} loader_pos;

static int pos_init(loader_pos *p, int R, uint32_t cap) {
    memset(p, 0, sizeof *p);
    p->R = R;
    p->rd = calloc((size_t)R, sizeof *p->rd);
    if (!p->rd) return -1;
    for (int r = 0; r < R; r++) {
        p->rd[r].cap = cap;
        p->rd[r].buf = malloc(cap * sizeof(buf_loc));
        if (!p->rd[r].buf) return -1;
    }
    return 0;
}

static void pos_free(loader_pos *p) {
    if (p->rd)
        for (int r = 0; r < p->R; r++) free(p->rd[r].buf);
    free(p->rd);
    memset(p, 0, sizeof *p);
}

static void rpos_copy(reader_pos *d, const reader_pos *s) {
    buf_loc *keep = d->buf;
    uint32_t cap = d->cap;
    *d = *s;
    d->buf = keep;
    d->cap = cap;
    memcpy(d->buf, s->buf, s->n_buf * sizeof(buf_loc));
}

static void pos_copy(loader_pos *d, const loader_pos *s) {
    d->epoch = s->epoch;
    d->batches = s->batches;
    d->samples = s->samples;
    d->next_reader = s->next_reader;
    d->stats = s->stats;
    for (int r = 0; r < s->R; r++) rpos_copy(&d->rd[r], &s->rd[r]);
}

static void pos_reset(loader_pos *p, int64_t epoch) {
    p->epoch = epoch;
    p->batches = p->samples = 0;
    p->next_reader = 0;
    memset(&p->stats, 0, sizeof p->stats);
    p->stats.epoch = epoch;
    for (int r = 0; r < p->R; r++) {
        reader_pos *q = &p->rd[r];
        q->shard = 0;
        q->offset = q->read = q->drawn = 0;
        q->done = 0;
        q->n_buf = 0;
    }
}

static void stats_add(vlt_loader_stats *a, const vlt_loader_stats *d) {
    for (int i = 0; i < VLT_SKIP_COUNT; i++) a->skipped[i] += d->skipped[i];
    a->shards_done += d->shards_done;
    a->shards_failed += d->shards_failed;
    a->shards_truncated += d->shards_truncated;
}

// --- queues, slots, loader -----------------------------------------------------------------------

enum { ITEM_SAMPLE, ITEM_END, ITEM_ERROR };

typedef struct {
    int kind;
    void *image;               // (3, S, S) float32, or uint8 with images_u8
    int32_t *tokens;           // (T)
    float *answer_scores;      // (n_answers) with an answer vocabulary, else NULL
    int32_t label;             // -1 without label_ext
    char *key, *caption;       // handed to the batch
    char *json;                // the sample's .json member (keep_json), handed to the batch
    reader_pos snap;           // the reader's position after this item
    vlt_loader_stats delta;    // skips and shard events since the previous item
    char *errmsg;
    vlt_status err;
} item;

typedef struct {
    vlt_wds_sample s;
    buf_loc loc;
} raw_sample;

typedef struct {
    struct vlt_loader *L;
    int r, g;                  // reader index in this rank, and across all ranks
    pthread_t th;
    int started;
    size_t *seq;               // shard list positions for this epoch
    size_t nseq;
    reader_pos st;             // live position (st.buf unused: see buf)
    raw_sample *buf;           // shuffle buffer, read order
    uint32_t n_buf;
    vlt_tar *tar;
    vlt_wds *wds;
    vlt_loader_stats delta;
    item *q;                   // ring of qcap items
    int q_head, q_count;
    pthread_cond_t not_full;
    // Watchdog (see check_stall): when the reader last made progress, whether it is only
    // waiting for queue space (or finished), and the shard it is in.
    atomic_llong beat_ms;
    atomic_int idle;
    const char *_Atomic cur_path;   // a path of L->shards (stable while the loader lives) or NULL
    int64_t reported_ms;       // last stall report (collator only)
} reader;

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HELD };
enum { KIND_BATCH, KIND_END, KIND_ERROR };

typedef struct {
    vlt_batch b;
    loader_pos pos;
    int state, kind;
    vlt_status err;
    char *errmsg;
} bslot;

struct vlt_loader {
    vlt_loader_cfg cfg;
    char *spec;
    vlt_shard_list shards;
    int R, qcap;
    uint32_t bufcap;
    reader *rd;
    bslot *slots;
    int nslots, fill_i, take_i;
    bslot *held;
    pthread_mutex_t mu;
    pthread_cond_t q_ready, slot_free, slot_ready;
    pthread_t collator;
    int running;
    atomic_int cancel;
    atomic_int warned;
    pthread_mutex_t warn_mu;   // keeps warning lines whole and in counter order
    loader_pos start;          // where the next run starts; updated as batches are released
    loader_pos run0;           // where the running epoch started (read-only while it runs)
    loader_pos cur;            // the collator's running position
    vlt_loader_stats stats;    // as delivered
    atomic_int stall_reports;
    int *ans_order;            // the answer vocabulary's indices sorted by answer (bsearch)
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void beat(reader *rd) { atomic_store(&rd->beat_ms, now_ms()); }

// --- config --------------------------------------------------------------------------------------

void vlt_loader_cfg_default(vlt_loader_cfg *c) {
    memset(c, 0, sizeof *c);
    c->world_size = 1;
    c->readers = 4;
    c->batch_size = 64;
    c->image_size = 224;
    c->context_len = VLT_TOKENIZER_CONTEXT;
    c->train = 1;
    c->shuffle_shards = 1;
    c->shuffle_buffer = 1000;
    c->shuffle_initial = 100;
    c->prefetch = 2;
    c->max_member_bytes = VLT_TAR_DEFAULT_MAX_MEMBER;
    c->warn_limit = 20;
    c->report = 1;
    c->stall_ms = 60000;
}

const char *vlt_skip_reason_name(vlt_skip_reason r) {
    switch (r) {
    case VLT_SKIP_NO_IMAGE: return "no image";
    case VLT_SKIP_BAD_IMAGE: return "bad image";
    case VLT_SKIP_NO_CAPTION: return "no caption";
    case VLT_SKIP_BAD_CAPTION: return "bad caption";
    case VLT_SKIP_DUP_EXT: return "duplicate extension";
    case VLT_SKIP_TOO_LARGE: return "member too large";
    case VLT_SKIP_NO_LABEL: return "no label";
    case VLT_SKIP_TRUNCATED_IMAGE: return "truncated image";
    case VLT_SKIP_CORRUPT_IMAGE: return "corrupt image";
    case VLT_SKIP_TRUNCATED_SAMPLE: return "truncated sample";
    case VLT_SKIP_NO_ANSWERS: return "no answer scores";
    case VLT_SKIP_COUNT: break;
    }
    return "?";
}

static const char *const skip_json_names[VLT_SKIP_COUNT] = {
    "no_image", "bad_image", "no_caption", "bad_caption", "dup_ext", "too_large", "no_label",
    "truncated_image", "corrupt_image", "truncated_sample", "no_answers"};
// Reasons added after positions were first saved: absent from an older position means 0.
#define SKIP_FIRST_OPTIONAL VLT_SKIP_TRUNCATED_IMAGE

void vlt_loader_stats_print(const vlt_loader_stats *s, FILE *f) {
    fprintf(f, "epoch %" PRId64 ": %" PRId64 " samples in %" PRId64 " batches", s->epoch, s->samples, s->batches);
    int64_t total = 0;
    for (int i = 0; i < VLT_SKIP_COUNT; i++) total += s->skipped[i];
    fprintf(f, "; skipped %" PRId64 " sample(s)", total);
    const char *sep = ": ";
    for (int i = 0; i < VLT_SKIP_COUNT; i++) {
        if (!s->skipped[i]) continue;
        fprintf(f, "%s%" PRId64 " %s", sep, s->skipped[i], vlt_skip_reason_name((vlt_skip_reason)i));
        sep = ", ";
    }
    fprintf(f, "; shards: %" PRId64 " read, %" PRId64 " unreadable, %" PRId64 " truncated\n", s->shards_done,
            s->shards_failed, s->shards_truncated);
}

static void warn(vlt_loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(vlt_loader *L, const char *fmt, ...) {
    if (L->cfg.warn_limit <= 0 || atomic_load(&L->warned) > L->cfg.warn_limit) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&L->warn_mu);
    int n = atomic_fetch_add(&L->warned, 1);
    if (n < L->cfg.warn_limit) fprintf(stderr, "vlt loader: %s\n", msg);
    else if (n == L->cfg.warn_limit) fprintf(stderr, "vlt loader: more warnings this epoch are not shown\n");
    pthread_mutex_unlock(&L->warn_mu);
}

// --- the reader thread ---------------------------------------------------------------------------

static uint64_t buffer_stream(const reader *rd, int64_t epoch) {
    return vlt_rng_stream(VLT_RNG_SHUFFLE, (uint64_t)epoch, ((uint64_t)1 << 32) + (uint64_t)rd->g);
}

// The reader's shard sequence for the epoch (see loader.h).
static vlt_status make_sequence(reader *rd, int64_t epoch) {
    vlt_loader *L = rd->L;
    const vlt_loader_cfg *c = &L->cfg;
    size_t n = L->shards.n;
    free(rd->seq);
    rd->seq = NULL;
    rd->nseq = 0;
    if (c->resampled) {
        size_t G = (size_t)c->world_size * (size_t)L->R;
        size_t count = (n + G - 1) / G;
        rd->seq = malloc(count * sizeof *rd->seq);
        if (!rd->seq) return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
        uint64_t stream = vlt_rng_stream(VLT_RNG_SHUFFLE, (uint64_t)epoch, 1 + (uint64_t)rd->g);
        for (size_t j = 0; j < count; j++) rd->seq[j] = (size_t)vlt_rng_below(c->seed, stream, j, n);
        rd->nseq = count;
        return VLT_OK;
    }
    size_t *idx, count;
    VLT_TRY(vlt_shardspec_split(n, c->rank, c->world_size, rd->r, L->R, &idx, &count));
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!perm) {
        free(idx);
        return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
    }
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    if (c->shuffle_shards)
        vlt_rng_shuffle_u32(perm, n, c->seed, vlt_rng_stream(VLT_RNG_SHUFFLE, (uint64_t)epoch, 0));
    for (size_t j = 0; j < count; j++) idx[j] = perm[idx[j]];
    free(perm);
    rd->seq = idx;
    rd->nseq = count;
    return VLT_OK;
}

static void close_shard(reader *rd) {
    vlt_wds_close(rd->wds);
    vlt_tar_close(rd->tar);
    rd->wds = NULL;
    rd->tar = NULL;
}

static void next_shard(reader *rd) {
    close_shard(rd);
    rd->st.shard++;
    rd->st.offset = 0;
}

static vlt_status open_at(reader *rd, uint32_t k, uint64_t offset, vlt_tar **tar, vlt_wds **wds) {
    *wds = NULL;
    const char *path = rd->L->shards.paths[rd->seq[k]];
    VLT_TRY(vlt_tar_open(path, tar));
    vlt_tar_set_max_member(*tar, rd->L->cfg.max_member_bytes);
    vlt_status s = offset ? vlt_tar_seek(*tar, offset) : VLT_OK;
    if (s == VLT_OK) s = vlt_wds_open(*tar, wds);
    if (s != VLT_OK) {
        vlt_tar_close(*tar);
        *tar = NULL;
    }
    return s;
}

static void count_bad(reader *rd, const vlt_wds_sample *s, const char *path) {
    vlt_skip_reason why = s->bad == VLT_WDS_BAD_DUP_EXT   ? VLT_SKIP_DUP_EXT
                          : s->bad == VLT_WDS_BAD_TRUNCATED ? VLT_SKIP_TRUNCATED_SAMPLE
                                                            : VLT_SKIP_TOO_LARGE;
    rd->delta.skipped[why]++;
    warn(rd->L, "shard %s: sample '%s' skipped: %s (.%s)", path, s->key, vlt_wds_bad_name(s->bad),
         s->bad_ext ? s->bad_ext : "");
}

// Reads one good sample into the buffer; at the end of the shards it returns with no change.
static vlt_status read_one(reader *rd, int *added) {
    *added = 0;
    vlt_loader *L = rd->L;
    while (rd->st.shard < rd->nseq && !atomic_load(&L->cancel)) {
        const char *path = L->shards.paths[rd->seq[rd->st.shard]];
        atomic_store(&rd->cur_path, path);
        beat(rd);
        if (!rd->wds) {
            vlt_status s = open_at(rd, rd->st.shard, rd->st.offset, &rd->tar, &rd->wds);
            if (s != VLT_OK) {
                int opened = s != VLT_ERR_IO || rd->st.offset;
                if (opened) rd->delta.shards_truncated++;
                else rd->delta.shards_failed++;
                warn(L, "%s; shard skipped", vlt_error_message());
                next_shard(rd);
                continue;
            }
        }
        vlt_wds_sample s;
        int got;
        vlt_status st = vlt_wds_next(rd->wds, &s, &got);
        if (st != VLT_OK) {
            rd->delta.shards_truncated++;
            warn(L, "%s; rest of the shard skipped", vlt_error_message());
            next_shard(rd);
            continue;
        }
        if (!got) {
            rd->delta.shards_done++;
            next_shard(rd);
            continue;
        }
        rd->st.offset = s.next_offset;
        if (s.bad) {
            count_bad(rd, &s, path);
            vlt_wds_sample_free(&s);
            continue;
        }
        raw_sample *b = &rd->buf[rd->n_buf++];
        b->loc = (buf_loc){rd->st.shard, s.offset, vlt_rng_hash_str(s.key)};
        b->s = s;
        rd->st.read++;
        *added = 1;
        return VLT_OK;
    }
    return VLT_OK;
}

// Re-reads the buffered samples of a saved position: one forward pass per shard (entries are
// in read order), seeking over gaps and stepping through samples that lie in the read-ahead.
static vlt_status restore_buffer(reader *rd, const reader_pos *p) {
    vlt_tar *tar = NULL;
    vlt_wds *wds = NULL;
    uint32_t open_k = UINT32_MAX;
    vlt_status s = VLT_OK;
    for (uint32_t i = 0; i < p->n_buf && s == VLT_OK; i++) {
        const buf_loc *loc = &p->buf[i];
        if (loc->shard >= rd->nseq) {
            s = vlt_error_set(VLT_ERR_ARG, "loader: saved position names shard %u of a sequence of %zu",
                              loc->shard, rd->nseq);
            break;
        }
        const char *path = rd->L->shards.paths[rd->seq[loc->shard]];
        if (open_k != loc->shard) {
            vlt_wds_close(wds);
            vlt_tar_close(tar);
            wds = NULL;
            open_k = loc->shard;
            if ((s = vlt_tar_open(path, &tar)) != VLT_OK) break;
            vlt_tar_set_max_member(tar, rd->L->cfg.max_member_bytes);
        }
        if (!wds || vlt_tar_offset(tar) <= loc->offset) {
            vlt_wds_close(wds);
            wds = NULL;
            if ((s = vlt_tar_seek(tar, loc->offset)) != VLT_OK) break;
            if ((s = vlt_wds_open(tar, &wds)) != VLT_OK) break;
        }
        vlt_wds_sample smp;
        int got;
        for (;;) {
            s = vlt_wds_next(wds, &smp, &got);
            if (s != VLT_OK || !got || smp.offset >= loc->offset) break;
            vlt_wds_sample_free(&smp);
        }
        if (s != VLT_OK) break;
        if (!got || smp.bad || smp.offset != loc->offset || vlt_rng_hash_str(smp.key) != loc->key_hash) {
            s = vlt_error_set(VLT_ERR_FORMAT,
                              "loader: shard %s changed since the position was saved (no sample '%s' at offset %llu)",
                              path, got ? smp.key : "?", (unsigned long long)loc->offset);
            if (got) vlt_wds_sample_free(&smp);
            break;
        }
        rd->buf[rd->n_buf].s = smp;
        rd->buf[rd->n_buf].loc = *loc;
        rd->n_buf++;
    }
    vlt_wds_close(wds);
    vlt_tar_close(tar);
    return s;
}

static const vlt_wds_field *first_field(const vlt_wds_sample *s, const char *const *exts, int n) {
    for (int i = 0; i < n; i++) {
        const vlt_wds_field *f = vlt_wds_sample_field(s, exts[i]);
        if (f) return f;
    }
    return NULL;
}

static int blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

// The caption: .txt, else the "caption" string of .json. *out is malloc'd. Returns -1 when
// fine, else the skip reason.
static int get_caption(reader *rd, const vlt_wds_sample *s, char **out) {
    *out = NULL;
    const vlt_wds_field *txt = vlt_wds_sample_field(s, "txt");
    if (txt) {
        *out = strdup((const char *)txt->data);
    } else {
        const vlt_wds_field *js = vlt_wds_sample_field(s, "json");
        if (!js) return VLT_SKIP_NO_CAPTION;
        cJSON *root = cJSON_ParseWithLength((const char *)js->data, (size_t)js->size);
        if (!root) {
            warn(rd->L, "sample '%s': .json does not parse", s->key);
            return VLT_SKIP_BAD_CAPTION;
        }
        const cJSON *cap = cJSON_GetObjectItemCaseSensitive(root, "caption");
        if (cJSON_IsString(cap)) *out = strdup(cap->valuestring);
        cJSON_Delete(root);
        if (!cJSON_IsString(cap)) return VLT_SKIP_NO_CAPTION;
    }
    if (!*out) return VLT_SKIP_NO_CAPTION;
    if (blank(*out)) {
        free(*out);
        *out = NULL;
        return VLT_SKIP_NO_CAPTION;
    }
    return -1;
}

// The vocabulary index of a processed answer, or -1 (bsearch over the sorted indices).
static int cmp_answer_idx(const void *a, const void *b, void *answers) {
    const char *const *v = answers;
    return strcmp(v[*(const int *)a], v[*(const int *)b]);
}
static int answer_index(const vlt_loader *L, const char *a) {
    int lo = 0, hi = L->cfg.n_answers - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, k = L->ans_order[mid], c = strcmp(L->cfg.answers[k], a);
        if (!c) return k;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

// A VQA sample's soft-score row over the vocabulary from its .json "answer_scores" (vqa_pack.h:
// the processed answers' VQAv2 scores, min(1, count/3) averaged over the leave-one-out subsets, so
// the training targets are the accuracies the official metric would give each answer). Answers
// outside the vocabulary drop out. Returns -1 when the sample has no such object.
static int answer_row(reader *rd, const vlt_wds_sample *s, float *row) {
    const vlt_loader *L = rd->L;
    memset(row, 0, sizeof(float) * (size_t)L->cfg.n_answers);
    const vlt_wds_field *js = vlt_wds_sample_field(s, "json");
    cJSON *o = js ? cJSON_ParseWithLength((const char *)js->data, (size_t)js->size) : NULL;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(o, "answer_scores"), *e;
    int ok = cJSON_IsObject(sc);
    for (e = ok ? sc->child : NULL; e; e = e->next) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble <= 1)) { ok = 0; break; }
        int k = answer_index(L, e->string);
        if (k >= 0) row[k] = (float)e->valuedouble;
    }
    cJSON_Delete(o);
    return ok ? 0 : -1;
}

// Decodes a drawn sample into the queue item. Returns -1 when fine, else the skip reason.
static int decode_sample(reader *rd, const raw_sample *raw, item *it) {
    vlt_loader *L = rd->L;
    const vlt_loader_cfg *c = &L->cfg;
    const vlt_wds_sample *s = &raw->s;
    static const char *const img_exts[] = {"jpg", "jpeg", "png", "webp"};
    const vlt_wds_field *imf = first_field(s, img_exts, 4);
    if (!imf) {
        warn(L, "sample '%s': no jpg/jpeg/png/webp member", s->key);
        return VLT_SKIP_NO_IMAGE;
    }
    it->label = -1;
    if (c->label_ext) {
        const vlt_wds_field *lf = vlt_wds_sample_field(s, c->label_ext);
        char *end = NULL;
        long v = lf ? strtol((const char *)lf->data, &end, 10) : -1;
        if (!lf || end == (const char *)lf->data || v < 0 || v > INT32_MAX) {
            warn(L, "sample '%s': no integer .%s label", s->key, c->label_ext);
            return VLT_SKIP_NO_LABEL;
        }
        it->label = (int32_t)v;
    }
    if (c->n_answers > 0 && answer_row(rd, s, it->answer_scores) < 0) {
        if (!c->answers_optional) {
            warn(L, "sample '%s': no .json \"answer_scores\" (an object of answer: score)", s->key);
            return VLT_SKIP_NO_ANSWERS;
        }
        memset(it->answer_scores, 0, sizeof(float) * (size_t)c->n_answers);
    }
    char *caption;
    int why = get_caption(rd, s, &caption);
    if (why == VLT_SKIP_NO_CAPTION && c->caption_optional) {
        caption = strdup("");
        why = caption ? -1 : VLT_SKIP_NO_CAPTION;
    }
    if (why >= 0) {
        if (why == VLT_SKIP_NO_CAPTION) warn(L, "sample '%s': no caption", s->key);
        return why;
    }
    vlt_image img;
    vlt_image_fault fault = VLT_IMAGE_FAULT_NONE;
    vlt_status st = vlt_image_decode_fault(imf->data, (size_t)imf->size, c->fast_decode ? c->image_size : 0, s->key, &img, &fault);
    if (st == VLT_OK) {
        if (c->images_u8)
            st = c->train ? vlt_transform_train_u8(&img, &c->transform, c->seed, (uint64_t)L->run0.epoch, s->key, it->image)
                          : vlt_transform_eval_u8(&img, &c->transform, it->image);
        else
            st = c->train ? vlt_transform_train(&img, &c->transform, c->seed, (uint64_t)L->run0.epoch, s->key, it->image)
                          : vlt_transform_eval(&img, &c->transform, it->image);
        vlt_image_free(&img);
    }
    if (st != VLT_OK) {
        warn(L, "sample '%s': %s", s->key, vlt_error_message());
        free(caption);
        return fault == VLT_IMAGE_FAULT_TRUNCATED ? VLT_SKIP_TRUNCATED_IMAGE
               : fault == VLT_IMAGE_FAULT_CORRUPT ? VLT_SKIP_CORRUPT_IMAGE
                                                  : VLT_SKIP_BAD_IMAGE;
    }
    if (c->tokenizer) vlt_tokenizer_encode(c->tokenizer, caption, it->tokens, c->context_len);
    else memset(it->tokens, 0, (size_t)c->context_len * sizeof *it->tokens);
    it->key = strdup(s->key);
    it->caption = caption;
    if (c->keep_json) {
        const vlt_wds_field *js = vlt_wds_sample_field(s, "json");
        it->json = js ? strndup((const char *)js->data, (size_t)js->size) : NULL;
    }
    return -1;
}

// Waits for a free item in the reader's queue; NULL when cancelled.
static item *reserve(reader *rd) {
    vlt_loader *L = rd->L;
    pthread_mutex_lock(&L->mu);
    atomic_store(&rd->idle, 1);   // waiting for the collator is not a stall
    while (rd->q_count == L->qcap && !atomic_load(&L->cancel)) pthread_cond_wait(&rd->not_full, &L->mu);
    item *it = atomic_load(&L->cancel) ? NULL : &rd->q[(rd->q_head + rd->q_count) % L->qcap];
    beat(rd);
    atomic_store(&rd->idle, 0);
    pthread_mutex_unlock(&L->mu);
    return it;
}

static void publish(reader *rd, item *it, int kind) {
    vlt_loader *L = rd->L;
    it->kind = kind;
    it->delta = rd->delta;
    memset(&rd->delta, 0, sizeof rd->delta);
    // The position after this item.
    reader_pos *p = &it->snap;
    p->shard = rd->st.shard;
    p->offset = rd->st.offset;
    p->read = rd->st.read;
    p->drawn = rd->st.drawn;
    p->done = kind == ITEM_END;
    p->n_buf = rd->n_buf;
    for (uint32_t i = 0; i < rd->n_buf; i++) p->buf[i] = rd->buf[i].loc;
    pthread_mutex_lock(&L->mu);
    rd->q_count++;
    pthread_cond_signal(&L->q_ready);
    pthread_mutex_unlock(&L->mu);
}

static void publish_error(reader *rd, vlt_status s) {
    item *it = reserve(rd);
    if (!it) return;
    it->err = s;
    free(it->errmsg);
    it->errmsg = strdup(vlt_error_message());
    publish(rd, it, ITEM_ERROR);
}

static void *reader_run(reader *rd);

static void *reader_main(void *arg) {
    reader *rd = arg;
    reader_run(rd);
    atomic_store(&rd->idle, 1);
    return NULL;
}

static void *reader_run(reader *rd) {
    vlt_loader *L = rd->L;
    const vlt_loader_cfg *c = &L->cfg;
    const reader_pos *p0 = &L->run0.rd[rd->r];
    vlt_status s = make_sequence(rd, L->run0.epoch);
    beat(rd);
    rd->st = (reader_pos){.shard = p0->shard, .offset = p0->offset, .read = p0->read, .drawn = p0->drawn};
    if (s == VLT_OK && p0->shard > rd->nseq)
        s = vlt_error_set(VLT_ERR_ARG, "loader: saved position is at shard %u of a sequence of %zu", p0->shard,
                          rd->nseq);
    if (s == VLT_OK && !p0->done) s = restore_buffer(rd, p0);
    if (s != VLT_OK) {
        publish_error(rd, s);
        return NULL;
    }
    if (p0->done) return NULL;   // its END was delivered before the position was saved
    uint64_t stream = buffer_stream(rd, L->run0.epoch);
    uint32_t size = L->bufcap;
    uint32_t initial = (uint32_t)(c->shuffle_initial > 1 ? c->shuffle_initial : 1);
    while (!atomic_load(&L->cancel)) {
        uint64_t target = initial + rd->st.drawn;
        if (target > size) target = size;
        int added = 1;
        while (rd->n_buf < target && added) {
            s = read_one(rd, &added);
            if (s != VLT_OK) {
                publish_error(rd, s);
                return NULL;
            }
        }
        if (atomic_load(&L->cancel)) break;
        if (rd->n_buf == 0) {
            item *it = reserve(rd);
            if (it) publish(rd, it, ITEM_END);
            break;
        }
        uint32_t i = size > 1 ? (uint32_t)vlt_rng_below(c->seed, stream, rd->st.drawn, rd->n_buf) : 0;
        rd->st.drawn++;
        raw_sample drawn = rd->buf[i];
        memmove(&rd->buf[i], &rd->buf[i + 1], (rd->n_buf - i - 1) * sizeof *rd->buf);
        rd->n_buf--;
        item *it = reserve(rd);
        if (!it) {
            vlt_wds_sample_free(&drawn.s);
            break;
        }
        int why = decode_sample(rd, &drawn, it);
        vlt_wds_sample_free(&drawn.s);
        beat(rd);
        if (why >= 0) {
            rd->delta.skipped[why]++;
            continue;
        }
        publish(rd, it, ITEM_SAMPLE);
    }
    return NULL;
}

// --- the collator thread -------------------------------------------------------------------------

static void slot_publish(vlt_loader *L, bslot *sl, int kind) {
    sl->kind = kind;
    pos_copy(&sl->pos, &L->cur);
    pthread_mutex_lock(&L->mu);
    sl->state = SLOT_READY;
    L->fill_i = (L->fill_i + 1) % L->nslots;
    pthread_cond_signal(&L->slot_ready);
    pthread_mutex_unlock(&L->mu);
}

static bslot *slot_acquire(vlt_loader *L) {
    pthread_mutex_lock(&L->mu);
    bslot *sl = &L->slots[L->fill_i];
    while (sl->state != SLOT_FREE && !atomic_load(&L->cancel)) pthread_cond_wait(&L->slot_free, &L->mu);
    if (atomic_load(&L->cancel)) sl = NULL;
    else sl->state = SLOT_FILLING;
    pthread_mutex_unlock(&L->mu);
    return sl;
}

// The next reader in round-robin order that has not ended, or -1.
static int next_live_reader(vlt_loader *L) {
    for (int k = 0; k < L->R; k++) {
        int r = (L->cur.next_reader + k) % L->R;
        if (!L->cur.rd[r].done) return r;
    }
    return -1;
}

// A reader that has been working (not waiting for queue space) without progress for stall_ms
// (blocked in a read on a hung network filesystem, a shard that is a slow device) would hold the
// whole run silently, since batches take samples round robin: say which reader and which shard,
// again every stall_ms while it lasts. Called with L->mu held, while waiting for that reader.
static void check_stall(vlt_loader *L, reader *rd) {
    int64_t now = now_ms(), quiet = now - atomic_load(&rd->beat_ms);
    if (atomic_load(&rd->idle) || quiet < L->cfg.stall_ms || now - rd->reported_ms < L->cfg.stall_ms) return;
    rd->reported_ms = now;
    const char *path = atomic_load(&rd->cur_path);
    if (!path) path = "(none opened yet)";
    atomic_fetch_add(&L->stall_reports, 1);
    fprintf(stderr, "vlt loader: reader %d has made no progress for %.3f s, in shard %s (training waits for it)\n",
            rd->r, (double)quiet / 1000.0, path);
}

static item *queue_head(vlt_loader *L, reader *rd) {
    pthread_mutex_lock(&L->mu);
    while (rd->q_count == 0 && !atomic_load(&L->cancel)) {
        if (L->cfg.stall_ms <= 0) {
            pthread_cond_wait(&L->q_ready, &L->mu);
            continue;
        }
        int64_t step = L->cfg.stall_ms < 2000 ? (L->cfg.stall_ms + 1) / 2 : 1000;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += step / 1000;
        ts.tv_nsec += (step % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_cond_timedwait(&L->q_ready, &L->mu, &ts) == ETIMEDOUT) check_stall(L, rd);
    }
    item *it = atomic_load(&L->cancel) ? NULL : &rd->q[rd->q_head];
    pthread_mutex_unlock(&L->mu);
    return it;
}

static void queue_pop(vlt_loader *L, reader *rd) {
    pthread_mutex_lock(&L->mu);
    rd->q_head = (rd->q_head + 1) % L->qcap;
    rd->q_count--;
    pthread_cond_signal(&rd->not_full);
    pthread_mutex_unlock(&L->mu);
}

// Takes the item's position as reader r's (swapping buffers, no copy).
static void take_position(vlt_loader *L, int r, item *it) {
    reader_pos *d = &L->cur.rd[r];
    reader_pos tmp = *d;
    *d = it->snap;
    it->snap = tmp;
}

static void clear_strings(vlt_batch *b, int n) {
    for (int i = 0; i < n; i++) {
        free(b->keys[i]);
        free(b->captions[i]);
        b->keys[i] = b->captions[i] = NULL;
        if (b->json) {
            free(b->json[i]);
            b->json[i] = NULL;
        }
    }
}

// Bytes per pixel value of the batches: 1 with images_u8, else 4 (float32).
static size_t pixel_bytes(const vlt_loader_cfg *c) { return c->images_u8 ? 1 : sizeof(float); }
static char *batch_pixels(const vlt_batch *b) { return b->images_u8 ? (char *)b->images_u8 : (char *)b->images; }

static void *collator_main(void *arg) {
    vlt_loader *L = arg;
    const vlt_loader_cfg *c = &L->cfg;
    const size_t img = 3 * (size_t)c->image_size * (size_t)c->image_size * pixel_bytes(c);
    const int64_t limit = c->samples_per_epoch;
    for (;;) {
        bslot *sl = slot_acquire(L);
        if (!sl) return NULL;
        vlt_batch *b = &sl->b;
        clear_strings(b, c->batch_size);
        int n = 0;
        while (n < c->batch_size) {
            if (limit > 0 && L->cur.samples >= limit) break;
            int r = next_live_reader(L);
            if (r < 0) break;
            reader *rd = &L->rd[r];
            item *it = queue_head(L, rd);
            if (!it) return NULL;
            if (it->kind == ITEM_ERROR) {
                sl->err = it->err;
                free(sl->errmsg);
                sl->errmsg = strdup(it->errmsg ? it->errmsg : "loader: reader failed");
                slot_publish(L, sl, KIND_ERROR);
                return NULL;
            }
            stats_add(&L->cur.stats, &it->delta);
            take_position(L, r, it);
            L->cur.next_reader = (r + 1) % L->R;
            if (it->kind == ITEM_SAMPLE) {
                memcpy(batch_pixels(b) + (size_t)n * img, it->image, img);
                memcpy(b->tokens + (size_t)n * (size_t)c->context_len, it->tokens,
                       (size_t)c->context_len * sizeof(int32_t));
                b->keys[n] = it->key;
                b->captions[n] = it->caption;
                if (b->json) b->json[n] = it->json;
                b->labels[n] = it->label;
                if (b->answer_scores)
                    memcpy(b->answer_scores + (size_t)n * (size_t)c->n_answers, it->answer_scores,
                           sizeof(float) * (size_t)c->n_answers);
                it->key = it->caption = it->json = NULL;
                n++;
                L->cur.samples++;
            }
            queue_pop(L, rd);
        }
        if (n == 0 || (n < c->batch_size && c->drop_last)) {
            slot_publish(L, sl, KIND_END);
            return NULL;
        }
        b->n = n;
        b->epoch = L->cur.epoch;
        b->index = L->cur.batches;
        L->cur.batches++;
        L->cur.stats.batches++;
        L->cur.stats.samples += n;
        slot_publish(L, sl, KIND_BATCH);
    }
}

// --- running and stopping an epoch ---------------------------------------------------------------

static void free_item(item *it) {
    free(it->key);
    free(it->caption);
    free(it->json);
    it->json = NULL;
    free(it->errmsg);
    it->key = it->caption = it->errmsg = NULL;
}

static void stop_run(vlt_loader *L) {
    if (!L->running) return;
    pthread_mutex_lock(&L->mu);
    atomic_store(&L->cancel, 1);
    pthread_cond_broadcast(&L->q_ready);
    pthread_cond_broadcast(&L->slot_free);
    pthread_cond_broadcast(&L->slot_ready);
    for (int r = 0; r < L->R; r++) pthread_cond_broadcast(&L->rd[r].not_full);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->collator, NULL);
    for (int r = 0; r < L->R; r++) {
        reader *rd = &L->rd[r];
        if (rd->started) pthread_join(rd->th, NULL);
        rd->started = 0;
        close_shard(rd);
        for (uint32_t i = 0; i < rd->n_buf; i++) vlt_wds_sample_free(&rd->buf[i].s);
        rd->n_buf = 0;
        for (int i = 0; i < L->qcap; i++) free_item(&rd->q[i]);
        rd->q_head = rd->q_count = 0;
        memset(&rd->delta, 0, sizeof rd->delta);
    }
    for (int i = 0; i < L->nslots; i++) {
        clear_strings(&L->slots[i].b, L->cfg.batch_size);
        L->slots[i].state = SLOT_FREE;
    }
    L->held = NULL;
    L->fill_i = L->take_i = 0;
    L->running = 0;
    atomic_store(&L->cancel, 0);
}

static vlt_status start_run(vlt_loader *L) {
    pos_copy(&L->run0, &L->start);
    pos_copy(&L->cur, &L->start);
    L->stats = L->start.stats;
    atomic_store(&L->warned, 0);
    atomic_store(&L->cancel, 0);
    L->running = 1;
    for (int r = 0; r < L->R; r++) {   // the watchdog's view of each reader before it starts
        beat(&L->rd[r]);
        atomic_store(&L->rd[r].idle, 0);
        atomic_store(&L->rd[r].cur_path, (const char *)NULL);
        L->rd[r].reported_ms = 0;
    }
    for (int r = 0; r < L->R; r++) {
        if (pthread_create(&L->rd[r].th, NULL, reader_main, &L->rd[r]) != 0) {
            stop_run(L);
            return vlt_error_set(VLT_ERR_NOMEM, "loader: cannot start reader thread %d", r);
        }
        L->rd[r].started = 1;
    }
    if (pthread_create(&L->collator, NULL, collator_main, L) != 0) {
        // Readers may be blocked on their queues: cancel them, without a collator to join.
        atomic_store(&L->cancel, 1);
        pthread_mutex_lock(&L->mu);
        for (int r = 0; r < L->R; r++) pthread_cond_broadcast(&L->rd[r].not_full);
        pthread_mutex_unlock(&L->mu);
        for (int r = 0; r < L->R; r++) pthread_join(L->rd[r].th, NULL), L->rd[r].started = 0;
        L->running = 0;
        return vlt_error_set(VLT_ERR_NOMEM, "loader: cannot start the collator thread");
    }
    return VLT_OK;
}

// --- create / free -------------------------------------------------------------------------------

static void *host_alloc(vlt_loader *L, size_t bytes) {
    if (L->cfg.host_alloc) return L->cfg.host_alloc(bytes, L->cfg.host_ctx);
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

static void host_free(vlt_loader *L, void *p) {
    if (!p) return;
    if (L->cfg.host_free) L->cfg.host_free(p, L->cfg.host_ctx);
    else if (!L->cfg.host_alloc) free(p);
}

static vlt_status check_cfg(const vlt_loader_cfg *c) {
    if (!c->shards || !*c->shards) return vlt_error_set(VLT_ERR_ARG, "loader: no shard spec");
    if (c->world_size < 1 || c->rank < 0 || c->rank >= c->world_size)
        return vlt_error_set(VLT_ERR_ARG, "loader: rank %d of world size %d", c->rank, c->world_size);
    if (c->readers < 1 || c->readers > 1024) return vlt_error_set(VLT_ERR_ARG, "loader: readers = %d", c->readers);
    if (c->batch_size < 1) return vlt_error_set(VLT_ERR_ARG, "loader: batch_size = %d", c->batch_size);
    if (c->image_size < 1 || c->image_size > 8192)
        return vlt_error_set(VLT_ERR_ARG, "loader: image_size = %d", c->image_size);
    if (c->context_len < 2) return vlt_error_set(VLT_ERR_ARG, "loader: context_len = %d", c->context_len);
    if (c->transform.size != 0 && c->transform.size != c->image_size)
        return vlt_error_set(VLT_ERR_ARG, "loader: transform.size %d != image_size %d", c->transform.size,
                             c->image_size);
    if (c->shuffle_buffer < 0 || c->shuffle_buffer > (1 << 24) || c->shuffle_initial < 0)
        return vlt_error_set(VLT_ERR_ARG, "loader: shuffle_buffer = %d, shuffle_initial = %d", c->shuffle_buffer,
                             c->shuffle_initial);
    if (c->prefetch < 1) return vlt_error_set(VLT_ERR_ARG, "loader: prefetch = %d", c->prefetch);
    if (c->samples_per_epoch < 0) return vlt_error_set(VLT_ERR_ARG, "loader: samples_per_epoch < 0");
    if (c->pinned && !c->host_alloc)
        return vlt_error_set(VLT_ERR_UNSUPPORTED,
                             "loader: pinned memory needs a host_alloc hook (the CUDA backend's cudaHostAlloc); "
                             "none is set");
    if (!!c->host_alloc != !!c->host_free)
        return vlt_error_set(VLT_ERR_ARG, "loader: host_alloc and host_free go together");
    if (c->n_answers < 0 || (c->n_answers > 0 && !c->answers))
        return vlt_error_set(VLT_ERR_ARG, "loader: n_answers = %d without an answer list", c->n_answers);
    return VLT_OK;
}

static vlt_status alloc_all(vlt_loader *L) {
    const vlt_loader_cfg *c = &L->cfg;
    size_t img = 3 * (size_t)c->image_size * (size_t)c->image_size * pixel_bytes(c);   // bytes
    L->rd = calloc((size_t)L->R, sizeof *L->rd);
    L->slots = calloc((size_t)L->nslots, sizeof *L->slots);
    if (!L->rd || !L->slots) return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
    if (pos_init(&L->start, L->R, L->bufcap) || pos_init(&L->cur, L->R, L->bufcap) ||
        pos_init(&L->run0, L->R, L->bufcap))
        return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
    for (int r = 0; r < L->R; r++) {
        reader *rd = &L->rd[r];
        rd->L = L;
        rd->r = r;
        rd->g = c->rank * L->R + r;
        pthread_cond_init(&rd->not_full, NULL);
        rd->buf = calloc(L->bufcap, sizeof *rd->buf);
        rd->q = calloc((size_t)L->qcap, sizeof *rd->q);
        if (!rd->buf || !rd->q) return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
        for (int i = 0; i < L->qcap; i++) {
            item *it = &rd->q[i];
            it->image = malloc(img);
            it->tokens = malloc((size_t)c->context_len * sizeof(int32_t));
            if (c->n_answers > 0 && !(it->answer_scores = malloc(sizeof(float) * (size_t)c->n_answers)))
                return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
            it->snap.cap = L->bufcap;
            it->snap.buf = malloc(L->bufcap * sizeof(buf_loc));
            if (!it->image || !it->tokens || !it->snap.buf)
                return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
        }
    }
    for (int i = 0; i < L->nslots; i++) {
        bslot *sl = &L->slots[i];
        sl->b.image_size = c->image_size;
        sl->b.context_len = c->context_len;
        if (c->images_u8) sl->b.images_u8 = host_alloc(L, (size_t)c->batch_size * img);
        else sl->b.images = host_alloc(L, (size_t)c->batch_size * img);
        sl->b.mean = L->cfg.transform.mean;
        sl->b.std = L->cfg.transform.std;
        sl->b.tokens = host_alloc(L, (size_t)c->batch_size * (size_t)c->context_len * sizeof(int32_t));
        sl->b.keys = calloc((size_t)c->batch_size, sizeof(char *));
        sl->b.captions = calloc((size_t)c->batch_size, sizeof(char *));
        if (c->keep_json) sl->b.json = calloc((size_t)c->batch_size, sizeof(char *));
        sl->b.labels = calloc((size_t)c->batch_size, sizeof(int32_t));
        if (c->n_answers > 0 && !(sl->b.answer_scores = malloc(sizeof(float) * (size_t)c->batch_size * (size_t)c->n_answers)))
            return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory for answer scores");
        if (!batch_pixels(&sl->b) || !sl->b.tokens || !sl->b.keys || !sl->b.captions || !sl->b.labels || (c->keep_json && !sl->b.json) ||
            pos_init(&sl->pos, L->R, L->bufcap))
            return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory for batches");
    }
    return VLT_OK;
}

void vlt_loader_memory_estimate(const vlt_loader_cfg *c, vlt_loader_memory *m) {
    double R = c->readers > 0 ? c->readers : 1, B = c->batch_size > 0 ? c->batch_size : 1;
    double bufcap = c->shuffle_buffer > 1 ? c->shuffle_buffer : 1;
    double qcap = c->queue_per_reader > 0 ? c->queue_per_reader : ceil(B / R) + 2;
    double slots = (c->prefetch > 0 ? c->prefetch : 1) + 1;
    double img = 3.0 * c->image_size * c->image_size * pixel_bytes(c), tok = (double)c->context_len * sizeof(int32_t);
    double pos = R * bufcap * sizeof(buf_loc);
    m->loader = slots * (B * (img + tok + 2 * sizeof(char *) + sizeof(int32_t)) + pos) +
                R * qcap * (img + tok + sizeof(item) + bufcap * sizeof(buf_loc)) + R * bufcap * sizeof(raw_sample) +
                3 * pos;
    m->step = c->step_bytes_fixed + B * c->step_bytes_per_sample;
    m->total = m->loader + m->step;
}

double vlt_memory_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    double avail = -1, swap = 0;
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = (double)kb * 1024;
            else if (sscanf(line, "SwapFree: %llu kB", &kb) == 1) swap = (double)kb * 1024;
        }
        fclose(f);
    }
    if (avail >= 0) return avail + swap;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}

// "12.3 GB", "4.1 TB": a figure a person can compare with their machine.
static const char *human_bytes(double b, char *buf, size_t n) {
    static const char *const units[] = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
    int u = 0;
    while (b >= 1000 && u < 6) b /= 1000, u++;
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", b, units[u]);
    return buf;
}

static vlt_status check_memory(const vlt_loader_cfg *c) {
    vlt_loader_memory m;
    vlt_loader_memory_estimate(c, &m);
    double avail = vlt_memory_available();
    if (avail <= 0 || m.total <= avail) return VLT_OK;
    char a[32], l[32], st[32], per[32];
    double B = c->batch_size;
    double per_sample = m.total / B;   // roughly what one more sample of batch costs
    double fit = floor((avail - c->step_bytes_fixed) / (per_sample > 0 ? per_sample : 1));
    char hint[96] = "";
    if (fit >= 1) snprintf(hint, sizeof hint, " (at most about %.0f here)", fit);
    return vlt_error_set(VLT_ERR_NOMEM,
                         "loader: batch_size %d needs about %s (loader: %s for %d x 3 x %d x %d %s images in %d "
                         "batch slots and %d reader queues; training step: %s; %s per sample) but this machine has %s "
                         "free; lower batch_size (data.batch_size in the run config)%s",
                         c->batch_size, human_bytes(m.total, a, sizeof a), human_bytes(m.loader, l, sizeof l),
                         c->batch_size, c->image_size, c->image_size, c->images_u8 ? "uint8" : "float32",
                         c->prefetch + 1, c->readers,
                         human_bytes(m.step, st, sizeof st), human_bytes(per_sample, per, sizeof per),
                         human_bytes(avail, (char[32]){0}, 32), hint);
}

vlt_status vlt_loader_create(const vlt_loader_cfg *cfg, vlt_loader **out) {
    *out = NULL;
    VLT_TRY(check_cfg(cfg));
    VLT_TRY(check_memory(cfg));
    vlt_loader *L = calloc(1, sizeof *L);
    if (!L) return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
    L->cfg = *cfg;
    L->spec = strdup(cfg->shards);
    L->cfg.shards = L->spec;
    if (L->cfg.transform.size == 0) vlt_transform_cfg_default(&L->cfg.transform, cfg->image_size);
    if (L->cfg.shuffle_initial > L->cfg.shuffle_buffer) L->cfg.shuffle_initial = L->cfg.shuffle_buffer;
    L->R = cfg->readers;
    L->bufcap = (uint32_t)(cfg->shuffle_buffer > 1 ? cfg->shuffle_buffer : 1);
    L->qcap = cfg->queue_per_reader > 0 ? cfg->queue_per_reader : (cfg->batch_size + L->R - 1) / L->R + 2;
    L->nslots = cfg->prefetch + 1;
    pthread_mutex_init(&L->mu, NULL);
    pthread_mutex_init(&L->warn_mu, NULL);
    pthread_cond_init(&L->q_ready, NULL);
    pthread_cond_init(&L->slot_free, NULL);
    pthread_cond_init(&L->slot_ready, NULL);
    vlt_status s = L->spec ? vlt_shardspec_expand(L->spec, &L->shards)
                           : vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
    if (s == VLT_OK && !cfg->resampled) {
        size_t *idx, cnt;   // only to check that every reader gets a shard
        s = vlt_shardspec_split(L->shards.n, cfg->rank, cfg->world_size, 0, L->R, &idx, &cnt);
        if (s == VLT_OK) free(idx);
    }
    if (s == VLT_OK) s = alloc_all(L);
    if (s == VLT_OK && cfg->n_answers > 0) {
        if (!(L->ans_order = malloc(sizeof(int) * (size_t)cfg->n_answers))) s = vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
        for (int i = 0; s == VLT_OK && i < cfg->n_answers; i++) L->ans_order[i] = i;
        if (s == VLT_OK) qsort_r(L->ans_order, (size_t)cfg->n_answers, sizeof(int), cmp_answer_idx, (void *)cfg->answers);
    }
    if (s != VLT_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vlt_error_message());
        vlt_loader_free(L);
        return vlt_error_set(s, "%s", msg);
    }
    pos_reset(&L->start, cfg->start_epoch);
    *out = L;
    return VLT_OK;
}

void vlt_loader_free(vlt_loader *L) {
    if (!L) return;
    if (L->rd && L->slots) stop_run(L);
    if (L->rd) {
        for (int r = 0; r < L->R; r++) {
            reader *rd = &L->rd[r];
            if (rd->q)
                for (int i = 0; i < L->qcap; i++) {
                    free_item(&rd->q[i]);
                    free(rd->q[i].image);
                    free(rd->q[i].tokens);
                    free(rd->q[i].answer_scores);
                    free(rd->q[i].snap.buf);
                }
            free(rd->q);
            free(rd->buf);
            free(rd->seq);
            pthread_cond_destroy(&rd->not_full);
        }
    }
    if (L->slots) {
        for (int i = 0; i < L->nslots; i++) {
            bslot *sl = &L->slots[i];
            if (sl->b.keys) clear_strings(&sl->b, L->cfg.batch_size);
            host_free(L, sl->b.images);
            host_free(L, sl->b.images_u8);
            host_free(L, sl->b.tokens);
            free(sl->b.keys);
            free(sl->b.captions);
            free(sl->b.json);
            free(sl->b.labels);
            free(sl->b.answer_scores);
            free(sl->errmsg);
            pos_free(&sl->pos);
        }
    }
    free(L->rd);
    free(L->slots);
    free(L->ans_order);
    pos_free(&L->start);
    pos_free(&L->cur);
    pos_free(&L->run0);
    vlt_shard_list_free(&L->shards);
    pthread_mutex_destroy(&L->mu);
    pthread_mutex_destroy(&L->warn_mu);
    pthread_cond_destroy(&L->q_ready);
    pthread_cond_destroy(&L->slot_free);
    pthread_cond_destroy(&L->slot_ready);
    free(L->spec);
    free(L);
}

// --- the caller's side ---------------------------------------------------------------------------

vlt_status vlt_loader_next(vlt_loader *L, const vlt_batch **out) {
    *out = NULL;
    if (L->held) {   // the previous batch goes back; its position becomes the restart point
        pos_copy(&L->start, &L->held->pos);
        pthread_mutex_lock(&L->mu);
        L->held->state = SLOT_FREE;
        L->held = NULL;
        pthread_cond_signal(&L->slot_free);
        pthread_mutex_unlock(&L->mu);
    }
    if (!L->running) VLT_TRY(start_run(L));
    pthread_mutex_lock(&L->mu);
    bslot *sl = &L->slots[L->take_i];
    while (sl->state != SLOT_READY) pthread_cond_wait(&L->slot_ready, &L->mu);
    L->take_i = (L->take_i + 1) % L->nslots;
    sl->state = SLOT_HELD;   // END and ERROR slots too: stop_run frees every slot
    pthread_mutex_unlock(&L->mu);
    if (sl->kind == KIND_ERROR) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sl->errmsg ? sl->errmsg : "loader failed");
        vlt_status err = sl->err ? sl->err : VLT_ERR_STATE;
        stop_run(L);   // the restart point stays at the last delivered batch
        return vlt_error_set(err, "%s", msg);
    }
    L->stats = sl->pos.stats;
    if (sl->kind == KIND_END) {
        int64_t next = sl->pos.epoch + 1;
        if (L->cfg.report) {
            fprintf(stderr, "vlt loader: ");
            vlt_loader_stats_print(&L->stats, stderr);
        }
        stop_run(L);
        pos_reset(&L->start, next);
        return VLT_OK;
    }
    L->held = sl;
    *out = &sl->b;
    return VLT_OK;
}

const vlt_loader_stats *vlt_loader_get_stats(const vlt_loader *L) { return &L->stats; }
int vlt_loader_stall_reports(const vlt_loader *L) { return atomic_load(&L->stall_reports); }

vlt_status vlt_loader_set_epoch(vlt_loader *L, int64_t epoch) {
    stop_run(L);
    pos_reset(&L->start, epoch);
    L->stats = L->start.stats;
    return VLT_OK;
}

// --- position as JSON ----------------------------------------------------------------------------

static const loader_pos *current_pos(const vlt_loader *L) { return L->held ? &L->held->pos : &L->start; }

static void add_u64_hex(cJSON *o, const char *name, uint64_t v) {
    char s[24];
    snprintf(s, sizeof s, "%016" PRIx64, v);
    cJSON_AddStringToObject(o, name, s);
}

static vlt_status position_json(vlt_loader *L, const loader_pos *p, char **json);

vlt_status vlt_loader_position_json(vlt_loader *L, char **json) { return position_json(L, current_pos(L), json); }

// The restart point, L->start, is the position after the batch before the held one (set when
// that batch was handed back), or where a restore / set_epoch put it.
vlt_status vlt_loader_position_before_json(vlt_loader *L, char **json) { return position_json(L, &L->start, json); }

static vlt_status position_json(vlt_loader *L, const loader_pos *p, char **json) {
    *json = NULL;
    const vlt_loader_cfg *c = &L->cfg;
    cJSON *o = cJSON_CreateObject();
    if (!o) return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
    cJSON_AddNumberToObject(o, "version", POS_VERSION);
    cJSON_AddNumberToObject(o, "epoch", (double)p->epoch);
    cJSON_AddNumberToObject(o, "batches", (double)p->batches);
    cJSON_AddNumberToObject(o, "samples", (double)p->samples);
    cJSON_AddNumberToObject(o, "next_reader", p->next_reader);
    add_u64_hex(o, "seed", c->seed);
    cJSON_AddNumberToObject(o, "n_shards", (double)L->shards.n);
    cJSON_AddNumberToObject(o, "world_size", c->world_size);
    cJSON_AddNumberToObject(o, "rank", c->rank);
    cJSON_AddNumberToObject(o, "readers", L->R);
    cJSON_AddNumberToObject(o, "resampled", c->resampled);
    cJSON_AddNumberToObject(o, "shuffle_shards", c->shuffle_shards);
    cJSON_AddNumberToObject(o, "shuffle_buffer", c->shuffle_buffer);
    cJSON_AddNumberToObject(o, "shuffle_initial", c->shuffle_initial);
    cJSON *st = cJSON_AddObjectToObject(o, "stats");
    cJSON_AddNumberToObject(st, "samples", (double)p->stats.samples);
    cJSON_AddNumberToObject(st, "batches", (double)p->stats.batches);
    for (int i = 0; i < VLT_SKIP_COUNT; i++)
        cJSON_AddNumberToObject(st, skip_json_names[i], (double)p->stats.skipped[i]);
    cJSON_AddNumberToObject(st, "shards_done", (double)p->stats.shards_done);
    cJSON_AddNumberToObject(st, "shards_failed", (double)p->stats.shards_failed);
    cJSON_AddNumberToObject(st, "shards_truncated", (double)p->stats.shards_truncated);
    cJSON *rds = cJSON_AddArrayToObject(o, "reader");
    for (int r = 0; r < p->R; r++) {
        const reader_pos *q = &p->rd[r];
        cJSON *ro = cJSON_CreateObject();
        cJSON_AddItemToArray(rds, ro);
        cJSON_AddNumberToObject(ro, "shard", q->shard);
        cJSON_AddNumberToObject(ro, "offset", (double)q->offset);
        cJSON_AddNumberToObject(ro, "read", (double)q->read);
        cJSON_AddNumberToObject(ro, "drawn", (double)q->drawn);
        cJSON_AddNumberToObject(ro, "done", q->done);
        cJSON *b = cJSON_AddArrayToObject(ro, "buffer");
        for (uint32_t i = 0; i < q->n_buf; i++) {
            cJSON *e = cJSON_CreateArray();
            cJSON_AddItemToArray(e, cJSON_CreateNumber(q->buf[i].shard));
            cJSON_AddItemToArray(e, cJSON_CreateNumber((double)q->buf[i].offset));
            char h[24];
            snprintf(h, sizeof h, "%016" PRIx64, q->buf[i].key_hash);
            cJSON_AddItemToArray(e, cJSON_CreateString(h));
            cJSON_AddItemToArray(b, e);
        }
    }
    *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!*json) return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
    return VLT_OK;
}

// Reads a non-negative integer member (exact in a double) into *v.
static int get_int(const cJSON *o, const char *name, int64_t *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 9007199254740992.0 ||
        x->valuedouble != (double)(int64_t)x->valuedouble)
        return -1;
    *v = (int64_t)x->valuedouble;
    return 0;
}

static int get_hex(const cJSON *x, uint64_t *v) {
    if (!cJSON_IsString(x)) return -1;
    char *end;
    *v = strtoull(x->valuestring, &end, 16);
    return (*x->valuestring && !*end) ? 0 : -1;
}

#define BAD_POS(...) vlt_error_set(VLT_ERR_FORMAT, "loader position: " __VA_ARGS__)

static vlt_status check_saved(vlt_loader *L, const cJSON *o) {
    const vlt_loader_cfg *c = &L->cfg;
    struct { const char *name; int64_t want; } must[] = {
        {"version", POS_VERSION}, {"n_shards", (int64_t)L->shards.n}, {"world_size", c->world_size},
        {"rank", c->rank}, {"readers", L->R}, {"resampled", c->resampled}, {"shuffle_shards", c->shuffle_shards},
        {"shuffle_buffer", c->shuffle_buffer}, {"shuffle_initial", c->shuffle_initial}};
    for (size_t i = 0; i < sizeof must / sizeof *must; i++) {
        int64_t v;
        if (get_int(o, must[i].name, &v)) return BAD_POS("missing or bad '%s'", must[i].name);
        if (v != must[i].want)
            return vlt_error_set(VLT_ERR_ARG, "loader position: saved with %s = %lld, this loader has %lld",
                                 must[i].name, (long long)v, (long long)must[i].want);
    }
    uint64_t seed;
    if (get_hex(cJSON_GetObjectItemCaseSensitive(o, "seed"), &seed)) return BAD_POS("missing or bad 'seed'");
    if (seed != c->seed)
        return vlt_error_set(VLT_ERR_ARG, "loader position: saved with seed %llu, this loader has %llu",
                             (unsigned long long)seed, (unsigned long long)c->seed);
    return VLT_OK;
}

static vlt_status parse_reader(const cJSON *ro, reader_pos *q, int r) {
    int64_t shard, offset, read, drawn, done;
    if (!cJSON_IsObject(ro) || get_int(ro, "shard", &shard) || get_int(ro, "offset", &offset) ||
        get_int(ro, "read", &read) || get_int(ro, "drawn", &drawn) || get_int(ro, "done", &done) ||
        shard > UINT32_MAX || offset % 512)
        return BAD_POS("reader %d: missing or bad fields", r);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(ro, "buffer");
    if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) > (int)q->cap)
        return BAD_POS("reader %d: buffer missing or larger than shuffle_buffer", r);
    q->shard = (uint32_t)shard;
    q->offset = (uint64_t)offset;
    q->read = (uint64_t)read;
    q->drawn = (uint64_t)drawn;
    q->done = done != 0;
    q->n_buf = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, b) {
        const cJSON *e0 = cJSON_GetArrayItem(e, 0), *e1 = cJSON_GetArrayItem(e, 1);
        buf_loc *l = &q->buf[q->n_buf];
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 3 || !cJSON_IsNumber(e0) || !cJSON_IsNumber(e1) ||
            get_hex(cJSON_GetArrayItem(e, 2), &l->key_hash) || e0->valuedouble < 0 ||
            e0->valuedouble > UINT32_MAX || e1->valuedouble < 0 || e1->valuedouble > 9007199254740992.0)
            return BAD_POS("reader %d: bad buffer entry %u", r, q->n_buf);
        l->shard = (uint32_t)e0->valuedouble;
        l->offset = (uint64_t)e1->valuedouble;
        if (l->offset % 512) return BAD_POS("reader %d: buffer entry %u offset not on a block", r, q->n_buf);
        q->n_buf++;
    }
    return VLT_OK;
}

static vlt_status parse_position(vlt_loader *L, const cJSON *o, loader_pos *p) {
    VLT_TRY(check_saved(L, o));
    int64_t epoch, batches, samples, next_reader;
    if (get_int(o, "epoch", &epoch) || get_int(o, "batches", &batches) || get_int(o, "samples", &samples) ||
        get_int(o, "next_reader", &next_reader) || next_reader >= L->R)
        return BAD_POS("missing or bad epoch / batches / samples / next_reader");
    p->epoch = epoch;
    p->batches = batches;
    p->samples = samples;
    p->next_reader = (int)next_reader;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stats");
    vlt_loader_stats s = {.epoch = epoch};
    int bad = !cJSON_IsObject(st) || get_int(st, "samples", &s.samples) || get_int(st, "batches", &s.batches) ||
              get_int(st, "shards_done", &s.shards_done) || get_int(st, "shards_failed", &s.shards_failed) ||
              get_int(st, "shards_truncated", &s.shards_truncated);
    for (int i = 0; i < VLT_SKIP_COUNT && !bad; i++) {
        if (i >= SKIP_FIRST_OPTIONAL && !cJSON_GetObjectItemCaseSensitive(st, skip_json_names[i])) continue;
        bad = get_int(st, skip_json_names[i], &s.skipped[i]);
    }
    if (bad) return BAD_POS("missing or bad stats");
    p->stats = s;
    const cJSON *rds = cJSON_GetObjectItemCaseSensitive(o, "reader");
    if (!cJSON_IsArray(rds) || cJSON_GetArraySize(rds) != L->R) return BAD_POS("'reader' must list %d readers", L->R);
    for (int r = 0; r < L->R; r++) VLT_TRY(parse_reader(cJSON_GetArrayItem(rds, r), &p->rd[r], r));
    return VLT_OK;
}

vlt_status vlt_loader_restore_json(vlt_loader *L, const char *json) {
    if (!json) return vlt_error_set(VLT_ERR_ARG, "loader: NULL position");
    cJSON *o = cJSON_Parse(json);
    if (!o) return vlt_error_set(VLT_ERR_FORMAT, "loader position: not JSON");
    loader_pos p;
    if (pos_init(&p, L->R, L->bufcap)) {
        cJSON_Delete(o);
        pos_free(&p);
        return vlt_error_set(VLT_ERR_NOMEM, "loader: out of memory");
    }
    vlt_status s = parse_position(L, o, &p);
    cJSON_Delete(o);
    if (s == VLT_OK) {
        stop_run(L);
        pos_copy(&L->start, &p);
        L->stats = p.stats;
    }
    pos_free(&p);
    return s;
}
