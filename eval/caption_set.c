// caption_set.c — token and n-gram interning for the caption metrics (see caption_set.h).
#include "eval/caption_set.h"

#include "eval/ptb_tokenize.h"  // vlt_eval_py_space_len

#include <stdlib.h>
#include <string.h>

// Open-addressing map from a 64-bit key to a uint32 value; slot empty when val == UINT32_MAX.
typedef struct {
    uint64_t key;
    uint32_t val;
} u64slot;

typedef struct {
    u64slot *slots;
    size_t cap, len;  // cap is a power of two
} u64map;

struct vlt_eval_caption_set {
    // tokens: strings in one pool, map from (string hash) to token id with collision check
    char *pool;
    size_t pool_len, pool_cap;
    size_t *tok_off;   // (n_tokens) offset of each token string in pool
    uint32_t n_tokens, tok_cap;
    uint32_t *tok_slots;  // open addressing over token ids (UINT32_MAX = empty)
    size_t tok_slot_cap;
    // n-grams
    u64map ngrams;
    uint8_t *ngram_order;  // (n_ngrams)
    uint32_t *mark, *pos;  // (n_ngrams) per n-gram: last sentence serial that saw it, its entry there
    uint32_t n_ngrams, ngram_cap, serial;
    // sentence arrays (ids + counts) come from chunks that never move
    uint32_t **chunks;
    uint32_t n_chunks, chunk_cap;
    size_t chunk_used, chunk_size;  // in uint32 of the last chunk
    // images
    vlt_eval_sentence *cands;  // (n_images)
    vlt_eval_sentence *refs;   // all references, image i's start at ref_start[i]
    int *ref_start;            // (n_images + 1)
    int n_images, img_cap, n_refs_total, ref_cap;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

static int grow(void **p, size_t elem, uint32_t *cap, uint32_t need) {
    if (need <= *cap) return 0;
    uint32_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static int u64map_init(u64map *m, size_t cap) {
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return -1;
    for (size_t i = 0; i < cap; i++) m->slots[i].val = UINT32_MAX;
    m->cap = cap;
    m->len = 0;
    return 0;
}

static int u64map_rehash(u64map *m) {
    u64map n;
    if (u64map_init(&n, m->cap * 2)) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].val == UINT32_MAX) continue;
        size_t j = mix64(m->slots[i].key) & (n.cap - 1);
        while (n.slots[j].val != UINT32_MAX) j = (j + 1) & (n.cap - 1);
        n.slots[j] = m->slots[i];
    }
    n.len = m->len;
    free(m->slots);
    *m = n;
    return 0;
}

// Returns the value for key, inserting `fresh` when absent (*inserted = 1). UINT32_MAX on OOM.
static uint32_t u64map_get_or_put(u64map *m, uint64_t key, uint32_t fresh, int *inserted) {
    if ((m->len + 1) * 2 > m->cap && u64map_rehash(m)) return UINT32_MAX;
    size_t j = mix64(key) & (m->cap - 1);
    while (m->slots[j].val != UINT32_MAX) {
        if (m->slots[j].key == key) { *inserted = 0; return m->slots[j].val; }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j].key = key;
    m->slots[j].val = fresh;
    m->len++;
    *inserted = 1;
    return fresh;
}

vlt_eval_caption_set *vlt_eval_caption_set_new(void) {
    vlt_eval_caption_set *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->tok_slot_cap = 1024;
    s->tok_slots = malloc(s->tok_slot_cap * sizeof *s->tok_slots);
    s->ref_start = malloc(sizeof *s->ref_start);
    if (!s->tok_slots || !s->ref_start || u64map_init(&s->ngrams, (size_t)1 << 16)) {
        vlt_eval_caption_set_free(s);
        return NULL;
    }
    memset(s->tok_slots, 0xff, s->tok_slot_cap * sizeof *s->tok_slots);
    s->ref_start[0] = 0;
    return s;
}

// n uint32 from the chunk arena (NULL on OOM); freed all at once with the set.
static uint32_t *arena_alloc(vlt_eval_caption_set *s, size_t n) {
    if (s->n_chunks == 0 || s->chunk_used + n > s->chunk_size) {
        size_t size = n > ((size_t)1 << 18) ? n : ((size_t)1 << 18);
        if (grow((void **)&s->chunks, sizeof *s->chunks, &s->chunk_cap, s->n_chunks + 1)) return NULL;
        uint32_t *c = malloc(size * sizeof *c);
        if (!c) return NULL;
        s->chunks[s->n_chunks++] = c;
        s->chunk_size = size;
        s->chunk_used = 0;
    }
    uint32_t *p = s->chunks[s->n_chunks - 1] + s->chunk_used;
    s->chunk_used += n;
    return p;
}

void vlt_eval_caption_set_free(vlt_eval_caption_set *s) {
    if (!s) return;
    for (uint32_t c = 0; c < s->n_chunks; c++) free(s->chunks[c]);
    free(s->chunks);
    free(s->cands);
    free(s->refs);
    free(s->ref_start);
    free(s->pool);
    free(s->tok_off);
    free(s->tok_slots);
    free(s->ngrams.slots);
    free(s->ngram_order);
    free(s->mark);
    free(s->pos);
    free(s);
}

static int tok_rehash(vlt_eval_caption_set *s) {
    size_t cap = s->tok_slot_cap * 2;
    uint32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    memset(slots, 0xff, cap * sizeof *slots);
    for (uint32_t t = 0; t < s->n_tokens; t++) {
        const char *str = s->pool + s->tok_off[t];
        size_t j = hash_bytes(str, strlen(str)) & (cap - 1);
        while (slots[j] != UINT32_MAX) j = (j + 1) & (cap - 1);
        slots[j] = t;
    }
    free(s->tok_slots);
    s->tok_slots = slots;
    s->tok_slot_cap = cap;
    return 0;
}

// Id of token w[0..n), interning it when new. UINT32_MAX on OOM.
static uint32_t token_id(vlt_eval_caption_set *s, const char *w, size_t n) {
    if ((size_t)(s->n_tokens + 1) * 2 > s->tok_slot_cap && tok_rehash(s)) return UINT32_MAX;
    size_t j = hash_bytes(w, n) & (s->tok_slot_cap - 1);
    while (s->tok_slots[j] != UINT32_MAX) {
        const char *str = s->pool + s->tok_off[s->tok_slots[j]];
        if (strncmp(str, w, n) == 0 && str[n] == '\0') return s->tok_slots[j];
        j = (j + 1) & (s->tok_slot_cap - 1);
    }
    if (grow((void **)&s->tok_off, sizeof *s->tok_off, &s->tok_cap, s->n_tokens + 1)) return UINT32_MAX;
    if (s->pool_len + n + 1 > s->pool_cap) {
        size_t nc = s->pool_cap ? s->pool_cap : 4096;
        while (nc < s->pool_len + n + 1) nc *= 2;
        char *p = realloc(s->pool, nc);
        if (!p) return UINT32_MAX;
        s->pool = p;
        s->pool_cap = nc;
    }
    memcpy(s->pool + s->pool_len, w, n);
    s->pool[s->pool_len + n] = '\0';
    s->tok_off[s->n_tokens] = s->pool_len;
    s->pool_len += n + 1;
    s->tok_slots[j] = s->n_tokens;
    return s->n_tokens++;
}

static uint32_t ngram_id(vlt_eval_caption_set *s, uint32_t prefix, uint32_t tok, int order) {
    uint64_t key = ((uint64_t)(prefix + 1u) << 32) | tok;  // prefix UINT32_MAX (none) -> 0
    int inserted = 0;
    uint32_t id = u64map_get_or_put(&s->ngrams, key, s->n_ngrams, &inserted);
    if (id == UINT32_MAX || !inserted) return id;
    if (s->n_ngrams + 1 > s->ngram_cap) {
        uint32_t cap = s->ngram_cap;
        if (grow((void **)&s->ngram_order, 1, &cap, s->n_ngrams + 1)) return UINT32_MAX;
        uint32_t *m = realloc(s->mark, (size_t)cap * sizeof *m);
        if (!m) return UINT32_MAX;
        s->mark = m;
        uint32_t *p = realloc(s->pos, (size_t)cap * sizeof *p);
        if (!p) return UINT32_MAX;
        s->pos = p;
        s->ngram_cap = cap;
    }
    s->ngram_order[s->n_ngrams] = (uint8_t)order;
    s->mark[s->n_ngrams] = 0;  // serials start at 1
    return s->n_ngrams++;
}

#define SMALL_WORDS 64

// Fills t with the n-gram counts of the whitespace-separated tokens of text.
static vlt_status sentence_build(vlt_eval_caption_set *s, vlt_eval_sentence *t, const char *text) {
    memset(t, 0, sizeof *t);
    uint32_t tok_small[SMALL_WORDS], gram_small[SMALL_WORDS * VLT_EVAL_MAX_NGRAM];
    uint32_t *toks = tok_small, *grams = gram_small;
    int cap = SMALL_WORDS, n = 0;
    vlt_status st = VLT_OK;
    for (const char *p = text; *p && st == VLT_OK;) {
        size_t sp;
        while (*p && (sp = vlt_eval_py_space_len(p)) > 0) p += sp;
        if (!*p) break;
        const char *q = p;
        while (*q && vlt_eval_py_space_len(q) == 0) q++;
        if (n == cap) {  // long caption: move to the heap
            uint32_t *nt = malloc((size_t)(cap *= 2) * sizeof *toks);
            if (!nt) { st = vlt_error_set(VLT_ERR_NOMEM, "caption set: out of memory"); break; }
            memcpy(nt, toks, (size_t)n * sizeof *toks);
            if (toks != tok_small) free(toks);
            toks = nt;
        }
        if ((toks[n++] = token_id(s, p, (size_t)(q - p))) == UINT32_MAX) st = vlt_error_set(VLT_ERR_NOMEM, "caption set: out of memory");
        p = q;
    }
    t->n_words = n;
    int total = 0;
    for (int k = 1; k <= VLT_EVAL_MAX_NGRAM; k++) total += n - k + 1 > 0 ? n - k + 1 : 0;
    if (st == VLT_OK && total > SMALL_WORDS * VLT_EVAL_MAX_NGRAM && !(grams = malloc((size_t)total * sizeof *grams)))
        st = vlt_error_set(VLT_ERR_NOMEM, "caption set: out of memory");
    int g = 0;
    for (int i = 0; i < n && st == VLT_OK; i++) {  // n-grams starting at i, extended one token at a time
        uint32_t prefix = UINT32_MAX;
        for (int k = 1; k <= VLT_EVAL_MAX_NGRAM && i + k <= n; k++) {
            if ((prefix = ngram_id(s, prefix, toks[i + k - 1], k)) == UINT32_MAX) {
                st = vlt_error_set(VLT_ERR_NOMEM, "caption set: out of memory");
                break;
            }
            grams[g++] = prefix;
        }
    }
    if (st == VLT_OK && !(t->ids = arena_alloc(s, (size_t)(g ? g : 1) * 2)))
        st = vlt_error_set(VLT_ERR_NOMEM, "caption set: out of memory");
    if (st == VLT_OK) {  // distinct entries in first-occurrence order, deduplicated by serial
        uint32_t serial = ++s->serial;
        t->counts = t->ids + (g ? g : 1);
        int e = 0;
        for (int i = 0; i < g; i++) {
            uint32_t id = grams[i];
            if (s->mark[id] == serial) { t->counts[s->pos[id]]++; continue; }
            s->mark[id] = serial;
            s->pos[id] = (uint32_t)e;
            t->ids[e] = id;
            t->counts[e++] = 1;
        }
        t->n_entries = e;
    }
    if (toks != tok_small) free(toks);
    if (grams != gram_small) free(grams);
    return st;
}

vlt_status vlt_eval_caption_set_add(vlt_eval_caption_set *s, const char *candidate,
                                    const char *const *refs, int n_refs) {
    if (!s || !candidate || !refs || n_refs < 1)
        return vlt_error_set(VLT_ERR_ARG, "caption set: image %d needs a candidate and at least one reference",
                             s ? s->n_images : -1);
    uint32_t icap = (uint32_t)s->img_cap, rcap = (uint32_t)s->ref_cap;
    if (grow((void **)&s->cands, sizeof *s->cands, &icap, (uint32_t)s->n_images + 1) ||
        grow((void **)&s->refs, sizeof *s->refs, &rcap, (uint32_t)(s->n_refs_total + n_refs)))
        return vlt_error_set(VLT_ERR_NOMEM, "caption set: out of memory");
    s->img_cap = (int)icap;
    s->ref_cap = (int)rcap;
    int *rs = realloc(s->ref_start, (size_t)(s->n_images + 2) * sizeof *rs);
    if (!rs) return vlt_error_set(VLT_ERR_NOMEM, "caption set: out of memory");
    s->ref_start = rs;
    int first = s->n_refs_total;
    vlt_status st = VLT_OK;
    for (int r = 0; r < n_refs && st == VLT_OK; r++) {
        if (!refs[r]) {
            st = vlt_error_set(VLT_ERR_ARG, "caption set: image %d reference %d is NULL", s->n_images, r);
            break;
        }
        st = sentence_build(s, &s->refs[s->n_refs_total++], refs[r]);
    }
    if (st == VLT_OK) st = sentence_build(s, &s->cands[s->n_images], candidate);
    if (st != VLT_OK) {  // drop this image's sentences (their arena space and n-grams stay; harmless)
        s->n_refs_total = first;
        return st;
    }
    s->n_images++;
    s->ref_start[s->n_images] = s->n_refs_total;
    return VLT_OK;
}

int vlt_eval_caption_set_n_images(const vlt_eval_caption_set *s) { return s->n_images; }
uint32_t vlt_eval_caption_set_n_ngrams(const vlt_eval_caption_set *s) { return s->n_ngrams; }
int vlt_eval_caption_set_ngram_order(const vlt_eval_caption_set *s, uint32_t id) { return s->ngram_order[id]; }

const vlt_eval_sentence *vlt_eval_caption_set_candidate(const vlt_eval_caption_set *s, int i) {
    return &s->cands[i];
}

const vlt_eval_sentence *vlt_eval_caption_set_refs(const vlt_eval_caption_set *s, int i, int *n_refs) {
    *n_refs = s->ref_start[i + 1] - s->ref_start[i];
    return &s->refs[s->ref_start[i]];
}
