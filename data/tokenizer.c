// tokenizer.c — the CLIP byte-level BPE tokenizer (see data/tokenizer.h).
//
// encode: UTF-8 -> code points -> ftfy.fix_text (data/ftfy.c) -> html.unescape twice -> strip + collapse whitespace ->
// str.lower() -> open_clip's pre-tokenizer pattern, matched by hand -> UTF-8 bytes of each
// pre-token -> byte symbols -> BPE (a min-heap of (rank, position) over a linked list, which
// equals open_clip's "merge every occurrence of the lowest-ranked pair" loop because every merge
// in the file only uses symbols made by earlier merges; load checks that) -> ids.
#include "data/tokenizer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/ftfy.h"
#include "data/html_unescape.h"
#include "data/unicode.h"

#define N_BYTE_SYMBOLS 256
#define N_MERGES (49152 - 256 - 2)          // merges[1 : 49152-256-2+1] in open_clip
#define FIRST_MERGE_ID (2 * N_BYTE_SYMBOLS)  // 512: ids of merge r are 512 + r
#define VOCAB_FILE "bpe_simple_vocab_16e6.txt.gz"
#define MERGE_SLOTS (1u << 17)               // open addressing, load 0.37
#define EMPTY_KEY 0xFFFFFFFFu
#define STACK_BYTES 512                      // texts up to this many bytes use no heap
#define WORD_CACHE 64                        // per-call cache of pre-token -> ids

static const char *const SPECIAL[2] = {"<start_of_text>", "<end_of_text>"};

struct vlt_tokenizer {
    char *text;                  // every token as the vocabulary spells it, NUL-terminated
    uint32_t text_off[VLT_TOKENIZER_VOCAB];
    uint8_t *raw;                // every token's bytes after the byte decoder, concatenated
    uint32_t raw_off[VLT_TOKENIZER_VOCAB + 1];
    int32_t byte_id[256];        // byte -> id of its symbol (id + 256: the same with "</w>")
    uint32_t merge_key[MERGE_SLOTS];   // (left id << 16) | right id
    int32_t merge_rank[MERGE_SLOTS];
};

// --- byte <-> unicode map (open_clip's bytes_to_unicode) ----------------------------------

// cs[k]: the code point standing for the k-th byte in open_clip's order; bs[k]: that byte.
static void byte_unicode_order(uint8_t bs[256], uint32_t cs[256]) {
    int k = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            bs[k] = (uint8_t)b;
            cs[k++] = (uint32_t)b;
        }
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
            bs[k] = (uint8_t)b;
            cs[k++] = 256u + (uint32_t)extra++;
        }
}

static size_t utf8_put(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | cp >> 6); o[1] = (uint8_t)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
        o[2] = (uint8_t)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 63));
    o[3] = (uint8_t)(0x80 | (cp & 63));
    return 4;
}

// Reads one code point from s[0..n) (n >= 1) as Python's UTF-8 decoder with errors="replace":
// an invalid or truncated sequence gives U+FFFD and consumes its longest valid prefix (at least
// one byte). Returns the bytes consumed.
static size_t utf8_get(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b = s[0];
    if (b < 0x80) { *cp = b; return 1; }
    int len;
    uint8_t lo = 0x80, hi = 0xBF;   // the allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b >= 0xE0 && b <= 0xEF) { len = 3; if (b == 0xE0) lo = 0xA0; if (b == 0xED) hi = 0x9F; }
    else if (b >= 0xF0 && b <= 0xF4) { len = 4; if (b == 0xF0) lo = 0x90; if (b == 0xF4) hi = 0x8F; }
    else { *cp = 0xFFFD; return 1; }
    uint32_t v = b & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        uint8_t c = i < (int)n ? s[i] : 0;
        bool ok = i < (int)n && (i == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF));
        if (!ok) { *cp = 0xFFFD; return (size_t)i; }
        v = v << 6 | (c & 63);
    }
    *cp = v;
    return (size_t)len;
}

// --- merge table ------------------------------------------------------------------------------

static uint32_t slot_of(uint32_t key) { return (key * 0x9E3779B1u) >> (32 - 17); }

static int32_t merge_rank(const vlt_tokenizer *t, int32_t a, int32_t b) {
    uint32_t key = (uint32_t)a << 16 | (uint32_t)b;
    for (uint32_t s = slot_of(key);; s = (s + 1) & (MERGE_SLOTS - 1)) {
        if (t->merge_key[s] == key) return t->merge_rank[s];
        if (t->merge_key[s] == EMPTY_KEY) return -1;
    }
}

// --- loading ------------------------------------------------------------------------------

// A string -> id map used while loading (ids index into a table of string offsets).
typedef struct {
    const char *base;
    const uint32_t *off;
    int32_t *slot;        // id, or -1
    uint32_t mask;
} str_map;

static uint32_t str_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int32_t str_map_find(const str_map *m, const char *s, size_t n) {
    for (uint32_t i = str_hash(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slot[i];
        if (id < 0) return -1;
        const char *t = m->base + m->off[id];
        if (strncmp(t, s, n) == 0 && t[n] == '\0') return id;
    }
}

static void str_map_add(str_map *m, int32_t id) {
    const char *s = m->base + m->off[id];
    uint32_t i = str_hash(s, strlen(s)) & m->mask;
    while (m->slot[i] >= 0) i = (i + 1) & m->mask;
    m->slot[i] = id;
}

static vlt_status read_gz(const char *path, char **out, size_t *len) {
    gzFile f = gzopen(path, "rb");
    if (!f) return vlt_error_set(VLT_ERR_IO, "tokenizer: cannot open %s", path);
    size_t cap = 1 << 22, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) { gzclose(f); return vlt_error_set(VLT_ERR_NOMEM, "tokenizer: reading %s", path); }
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) { free(buf); buf = NULL; continue; }
            buf = nb;
            cap *= 2;
        }
        int got = gzread(f, buf + n, (unsigned)(cap - n > (1u << 30) ? (1u << 30) : cap - n));
        if (got < 0) {
            int err;
            const char *msg = gzerror(f, &err);
            vlt_status s = vlt_error_set(VLT_ERR_FORMAT, "tokenizer: %s: %s", path, msg);
            gzclose(f);
            free(buf);
            return s;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return VLT_OK;
}

// Finds the vocabulary when path is NULL: $VLT_ASSETS, then assets/ up to two levels up.
static const char *default_path(char *buf, size_t size) {
    const char *env = getenv("VLT_ASSETS");
    const char *dirs[] = {env, "assets", "../assets", "../../assets"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (!dirs[i] || !dirs[i][0]) continue;
        snprintf(buf, size, "%s/%s", dirs[i], VOCAB_FILE);
        FILE *f = fopen(buf, "rb");
        if (f) { fclose(f); return buf; }
    }
    snprintf(buf, size, "assets/%s", VOCAB_FILE);
    return buf;
}

// Appends s[0..n) + suffix + NUL to the token text; records the offset of token `id`.
static void add_token(vlt_tokenizer *t, size_t *used, int32_t id, const char *s, size_t n,
                      const char *suffix) {
    t->text_off[id] = (uint32_t)*used;
    memcpy(t->text + *used, s, n);
    *used += n;
    size_t k = strlen(suffix);
    memcpy(t->text + *used, suffix, k + 1);
    *used += k + 1;
}

// Splits a merge line "a b" into its two fields; false unless there are exactly two.
static bool split_merge(char *line, char **a, size_t *na, char **b, size_t *nb) {
    char *f[3];
    size_t fl[3];
    int k = 0;
    for (char *p = line; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        char *q = p;
        while (*q && *q != ' ' && *q != '\t' && *q != '\r') q++;
        if (k == 3) return false;
        f[k] = p;
        fl[k++] = (size_t)(q - p);
        p = q;
    }
    if (k != 2) return false;
    *a = f[0]; *na = fl[0]; *b = f[1]; *nb = fl[1];
    return true;
}

static void merge_insert(vlt_tokenizer *t, uint32_t key, int32_t rank) {
    uint32_t s = slot_of(key);
    while (t->merge_key[s] != EMPTY_KEY) s = (s + 1) & (MERGE_SLOTS - 1);
    t->merge_key[s] = key;
    t->merge_rank[s] = rank;
}

static vlt_status build_merges(vlt_tokenizer *t, char *file, size_t size, const char *path,
                               size_t *used, str_map *m) {
    char *line = memchr(file, '\n', size);   // line 0 is the version header
    for (int r = 0; r < N_MERGES; r++) {
        if (!line || line[1] == '\0')
            return vlt_error_set(VLT_ERR_FORMAT, "tokenizer: %s has %d merges, need %d", path, r, N_MERGES);
        line++;
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        char *a, *b;
        size_t na, nb;
        if (!split_merge(line, &a, &na, &b, &nb))
            return vlt_error_set(VLT_ERR_FORMAT, "tokenizer: %s line %d is not a merge \"a b\"", path, r + 2);
        int32_t ia = str_map_find(m, a, na), ib = str_map_find(m, b, nb);
        int32_t id = FIRST_MERGE_ID + r;
        if (ia < 0 || ib < 0)
            return vlt_error_set(VLT_ERR_FORMAT, "tokenizer: %s line %d merges a symbol no earlier line makes", path, r + 2);
        uint32_t key = (uint32_t)ia << 16 | (uint32_t)ib;
        if (merge_rank(t, ia, ib) >= 0)
            return vlt_error_set(VLT_ERR_FORMAT, "tokenizer: %s line %d repeats a merge", path, r + 2);
        merge_insert(t, key, r);
        t->text_off[id] = (uint32_t)*used;
        memcpy(t->text + *used, a, na);
        memcpy(t->text + *used + na, b, nb);
        t->text[*used + na + nb] = '\0';
        if (str_map_find(m, t->text + *used, na + nb) >= 0)
            return vlt_error_set(VLT_ERR_FORMAT, "tokenizer: %s line %d makes a token that exists", path, r + 2);
        *used += na + nb + 1;
        str_map_add(m, id);
        line = end;
    }
    return VLT_OK;
}

// raw bytes of every token: its code points mapped back through the byte decoder.
static vlt_status build_raw(vlt_tokenizer *t, const uint32_t cs[256], const uint8_t bs[256], size_t used) {
    int16_t decoder[512];
    for (int i = 0; i < 512; i++) decoder[i] = -1;
    for (int k = 0; k < 256; k++) decoder[cs[k]] = bs[k];
    t->raw = malloc(used);
    if (!t->raw) return vlt_error_set(VLT_ERR_NOMEM, "tokenizer: token bytes");
    size_t w = 0;
    for (int id = 0; id < VLT_TOKENIZER_VOCAB; id++) {
        t->raw_off[id] = (uint32_t)w;
        const uint8_t *s = (const uint8_t *)t->text + t->text_off[id];
        size_t n = strlen((const char *)s);
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            i += utf8_get(s + i, n - i, &cp);
            if (cp >= 512 || decoder[cp] < 0)
                return vlt_error_set(VLT_ERR_FORMAT, "tokenizer: token %d has a character outside the byte map", id);
            t->raw[w++] = (uint8_t)decoder[cp];
        }
    }
    t->raw_off[VLT_TOKENIZER_VOCAB] = (uint32_t)w;
    return VLT_OK;
}

static vlt_status build_vocab(vlt_tokenizer *t, char *file, size_t size, const char *path) {
    uint8_t bs[256];
    uint32_t cs[256];
    byte_unicode_order(bs, cs);
    t->text = malloc(size + 16 * N_BYTE_SYMBOLS + 64);
    int32_t *slots = malloc(sizeof(int32_t) * (1u << 17));
    if (!t->text || !slots) {
        free(slots);
        return vlt_error_set(VLT_ERR_NOMEM, "tokenizer: vocabulary of %s", path);
    }
    for (uint32_t i = 0; i < (1u << 17); i++) slots[i] = -1;
    str_map m = {t->text, t->text_off, slots, (1u << 17) - 1};
    size_t used = 0;
    for (int k = 0; k < 256; k++) {
        uint8_t u[4];
        size_t n = utf8_put(cs[k], u);
        t->byte_id[bs[k]] = k;
        add_token(t, &used, k, (const char *)u, n, "");
        add_token(t, &used, k + N_BYTE_SYMBOLS, (const char *)u, n, "</w>");
        str_map_add(&m, k);
        str_map_add(&m, k + N_BYTE_SYMBOLS);
    }
    vlt_status s = build_merges(t, file, size, path, &used, &m);
    free(slots);
    if (s != VLT_OK) return s;
    add_token(t, &used, VLT_TOKEN_SOT, SPECIAL[0], strlen(SPECIAL[0]), "");
    add_token(t, &used, VLT_TOKEN_EOT, SPECIAL[1], strlen(SPECIAL[1]), "");
    return build_raw(t, cs, bs, used);
}

vlt_status vlt_tokenizer_load(const char *path, vlt_tokenizer **out) {
    if (!out) return vlt_error_set(VLT_ERR_ARG, "tokenizer_load: out is NULL");
    *out = NULL;
    char pbuf[4096];
    if (!path) path = default_path(pbuf, sizeof pbuf);
    char *file = NULL;
    size_t size = 0;
    VLT_TRY(read_gz(path, &file, &size));
    vlt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { free(file); return vlt_error_set(VLT_ERR_NOMEM, "tokenizer: %s", path); }
    memset(t->merge_key, 0xFF, sizeof t->merge_key);
    vlt_status s = build_vocab(t, file, size, path);
    free(file);
    if (s != VLT_OK) { vlt_tokenizer_free(t); return s; }
    *out = t;
    return VLT_OK;
}

void vlt_tokenizer_free(vlt_tokenizer *tok) {
    if (!tok) return;
    free(tok->text);
    free(tok->raw);
    free(tok);
}

int vlt_tokenizer_vocab_size(const vlt_tokenizer *tok) { return tok ? VLT_TOKENIZER_VOCAB : 0; }

const char *vlt_tokenizer_token(const vlt_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= VLT_TOKENIZER_VOCAB) return NULL;
    return tok->text + tok->text_off[id];
}

// --- BPE ------------------------------------------------------------------------------------

typedef struct { int32_t rank, pos; } heap_item;

// Per-word scratch: symbol ids, a doubly linked list over them, and a heap of candidate merges.
typedef struct {
    size_t cap;              // symbols
    int32_t *sym, *next, *prev;
    heap_item *heap;         // room for 3 * cap
    int32_t inline_mem[4 * 64];
    heap_item inline_heap[3 * 64];
} bpe_ws;

static void bpe_ws_init(bpe_ws *w) {
    w->cap = 64;
    w->sym = w->inline_mem;
    w->next = w->inline_mem + 64;
    w->prev = w->inline_mem + 128;
    w->heap = w->inline_heap;
}

static void bpe_ws_free(bpe_ws *w) {
    if (w->sym != w->inline_mem) { free(w->sym); free(w->heap); }
}

static bool bpe_ws_reserve(bpe_ws *w, size_t n) {
    if (n <= w->cap) return true;
    size_t cap = n * 2;
    int32_t *mem = malloc(sizeof(int32_t) * 3 * cap);
    heap_item *heap = malloc(sizeof(heap_item) * 3 * cap);
    if (!mem || !heap) { free(mem); free(heap); return false; }
    bpe_ws_free(w);
    w->cap = cap;
    w->sym = mem;
    w->next = mem + cap;
    w->prev = mem + 2 * cap;
    w->heap = heap;
    return true;
}

static bool heap_less(heap_item a, heap_item b) {
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(heap_item *h, size_t *n, heap_item it) {
    size_t i = (*n)++;
    while (i > 0 && heap_less(it, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = it;
}

static heap_item heap_pop(heap_item *h, size_t *n) {
    heap_item top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(h[c + 1], h[c])) c++;
        if (!heap_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

static void push_pair(const vlt_tokenizer *t, bpe_ws *w, size_t *hn, int32_t pos) {
    int32_t nx = w->next[pos];
    if (nx < 0) return;
    int32_t r = merge_rank(t, w->sym[pos], w->sym[nx]);
    if (r >= 0) heap_push(w->heap, hn, (heap_item){r, pos});
}

// BPE of one pre-token's bytes b[0..n) (n >= 1). Writes up to `room` ids to out; returns the
// number of ids the word makes (which may exceed room), or -1 when out of memory.
static long bpe_word(const vlt_tokenizer *t, bpe_ws *w, const uint8_t *b, size_t n, int32_t *out, size_t room) {
    if (n == 1) {
        if (room) out[0] = t->byte_id[b[0]] + N_BYTE_SYMBOLS;
        return 1;
    }
    if (!bpe_ws_reserve(w, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = t->byte_id[b[i]];
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        w->prev[i] = (int32_t)i - 1;
    }
    w->sym[n - 1] += N_BYTE_SYMBOLS;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, w, &hn, (int32_t)i);
    while (hn > 0) {
        heap_item it = heap_pop(w->heap, &hn);
        int32_t i = it.pos, j = w->next[i];
        if (w->sym[i] < 0 || j < 0 || merge_rank(t, w->sym[i], w->sym[j]) != it.rank) continue;
        w->sym[i] = FIRST_MERGE_ID + it.rank;
        w->sym[j] = -1;
        w->next[i] = w->next[j];
        if (w->next[j] >= 0) w->prev[w->next[j]] = i;
        if (w->prev[i] >= 0) push_pair(t, w, &hn, w->prev[i]);
        push_pair(t, w, &hn, i);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = w->next[i], k++)
        if (k < room) out[k] = w->sym[i];
    return (long)k;
}

// --- pre-tokenizer ------------------------------------------------------------------------

// Does cp match the pattern's literal c (ASCII) under the regex module's IGNORECASE?
static bool literal_eq(uint32_t cp, char c) {
    if (cp == (uint32_t)c) return true;
    if (c >= 'a' && c <= 'z') return cp == (uint32_t)(c - 32) || (c == 's' && cp == 0x17F);
    return false;
}

static size_t match_literal(const uint32_t *s, size_t n, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= n || !literal_eq(s[i + k], lit[k])) return 0;
    return k;
}

// Length of the pattern's match at s[i] (0: none, step over s[i]); *special set to the special
// token id when the match is one spelled exactly.
static size_t next_match(const uint32_t *s, size_t n, size_t i, int32_t *special) {
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    *special = -1;
    if (s[i] == '<')
        for (int k = 0; k < 2; k++) {
            size_t m = match_literal(s, n, i, SPECIAL[k]);
            if (m) {
                bool exact = true;
                for (size_t q = 0; q < m; q++) exact = exact && s[i + q] == (uint32_t)SPECIAL[k][q];
                if (exact) *special = k == 0 ? VLT_TOKEN_SOT : VLT_TOKEN_EOT;
                return m;
            }
        }
    if (s[i] == '\'')
        for (size_t k = 0; k < sizeof contractions / sizeof contractions[0]; k++) {
            size_t m = match_literal(s, n, i, contractions[k]);
            if (m) return m;
        }
    int cls = vlt_unicode_pretok_class(s[i]);
    if (cls == VLT_UCLASS_SKIP) return 0;
    if (cls == VLT_UCLASS_NUMBER) return 1;
    size_t j = i + 1;
    while (j < n && vlt_unicode_pretok_class(s[j]) == cls) j++;
    return j - i;
}

// --- encode ---------------------------------------------------------------------------------

// open_clip's cleaning of s[0..n) in place: html.unescape twice, then " ".join(s.split()).
static size_t clean(uint32_t *s, size_t n) {
    for (int pass = 0; pass < 2; pass++) n = vlt_html_unescape(s, n);
    size_t w = 0;
    bool gap = false;
    for (size_t i = 0; i < n; i++) {
        if (vlt_unicode_isspace(s[i])) { gap = w > 0; continue; }
        if (gap) { s[w++] = ' '; gap = false; }
        s[w++] = s[i];
    }
    return w;
}

typedef struct { uint32_t hash, start, len, first_id, n_ids; } cache_entry;

static uint32_t cps_hash(const uint32_t *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

// Encodes cleaned, lowered text s[0..n) into out[0..need); returns the ids written (<= need)
// or -1 when out of memory. bytes: scratch for the UTF-8 of one pre-token (4 * n bytes).
// A small per-call cache keyed by the pre-token's code points reuses the ids of a word seen
// earlier in the same text.
static long encode_clean(const vlt_tokenizer *t, const uint32_t *s, size_t n, uint8_t *bytes,
                         int32_t *out, size_t need) {
    bpe_ws w;
    bpe_ws_init(&w);
    cache_entry cache[WORD_CACHE];
    memset(cache, 0, sizeof cache);
    size_t k = 0, i = 0;
    while (i < n && k < need) {
        int32_t special;
        size_t m = next_match(s, n, i, &special);
        if (m == 0) { i++; continue; }
        if (special >= 0) { out[k++] = special; i += m; continue; }
        uint32_t h = cps_hash(s + i, m);
        cache_entry *c = &cache[h % WORD_CACHE];
        if (c->n_ids && c->hash == h && c->len == m && memcmp(s + c->start, s + i, m * sizeof *s) == 0) {
            for (uint32_t q = 0; q < c->n_ids && k < need; q++) out[k++] = out[c->first_id + q];
            i += m;
            continue;
        }
        size_t nb = 0;
        for (size_t q = i; q < i + m; q++) nb += utf8_put(s[q], bytes + nb);
        long got = bpe_word(t, &w, bytes, nb, out + k, need - k);
        if (got < 0) { bpe_ws_free(&w); return -1; }
        if ((size_t)got <= need - k) *c = (cache_entry){h, (uint32_t)i, (uint32_t)m, (uint32_t)k, (uint32_t)got};
        k += (size_t)got < need - k ? (size_t)got : need - k;
        i += m;
    }
    bpe_ws_free(&w);
    return (long)k;
}

int vlt_tokenizer_encode(const vlt_tokenizer *tok, const char *text, int32_t *ids, int context_len) {
    if (!tok || !ids || context_len < 2) {
        vlt_error_set(VLT_ERR_ARG, "tokenizer_encode: need a tokenizer, ids and context_len >= 2 (got %d)", context_len);
        return -1;
    }
    if (!text) text = "";
    size_t nb = strlen(text);
    // UTF-8 -> code points (at most nb) -> ftfy.fix_text (data/ftfy.h), as open_clip's
    // basic_clean does first; the fixed text may be longer (ligatures, NFC) or shorter.
    uint32_t in_stack[STACK_BYTES] = {0};
    uint32_t *in = nb > STACK_BYTES ? malloc(sizeof(uint32_t) * nb) : in_stack;
    if (!in) {
        vlt_error_set(VLT_ERR_NOMEM, "tokenizer_encode: text of %zu bytes", nb);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < nb; n++) i += utf8_get((const uint8_t *)text + i, nb - i, &in[n]);
    uint32_t *cps;
    int fixed = vlt_ftfy_fix_text(in, n, &cps, &n);
    if (in != in_stack) free(in);
    if (fixed != 0) {
        vlt_error_set(VLT_ERR_NOMEM, "tokenizer_encode: text of %zu bytes", nb);
        return -1;
    }
    // One scratch block: low (3 * n: after lower(), at most 3 code points each), bytes (12 * n:
    // UTF-8 of one lowered pre-token).
    uint32_t stack[STACK_BYTES * 6];
    uint32_t *low = n > STACK_BYTES ? malloc(sizeof(uint32_t) * 6 * n) : stack;
    if (!low) {
        free(cps);
        vlt_error_set(VLT_ERR_NOMEM, "tokenizer_encode: text of %zu bytes", nb);
        return -1;
    }
    uint8_t *bytes = (uint8_t *)(low + 3 * n);
    n = clean(cps, n);
    size_t nl = vlt_unicode_lower_string(cps, n, low);
    long k = encode_clean(tok, low, nl, bytes, ids + 1, (size_t)context_len - 2);
    if (low != stack) free(low);
    free(cps);
    if (k < 0) {
        vlt_error_set(VLT_ERR_NOMEM, "tokenizer_encode: text of %zu bytes", nb);
        return -1;
    }
    ids[0] = VLT_TOKEN_SOT;
    ids[k + 1] = VLT_TOKEN_EOT;
    for (int i = (int)k + 2; i < context_len; i++) ids[i] = VLT_TOKEN_PAD;
    return (int)k + 2;
}

// --- decode ---------------------------------------------------------------------------------

vlt_status vlt_tokenizer_decode(const vlt_tokenizer *tok, const int32_t *ids, int n, char *out, size_t out_size) {
    if (!tok || (!ids && n > 0) || n < 0 || !out || out_size == 0)
        return vlt_error_set(VLT_ERR_ARG, "tokenizer_decode: need a tokenizer, ids, n >= 0 and an output buffer");
    int end = 0;
    while (end < n && ids[end] != VLT_TOKEN_EOT) end++;
    if (end == n)   // no EOT: trailing zeros are padding
        while (end > 0 && ids[end - 1] == VLT_TOKEN_PAD) end--;
    size_t total = 0;
    for (int i = 0; i < end; i++) {
        if (ids[i] < 0 || ids[i] >= VLT_TOKENIZER_VOCAB)
            return vlt_error_set(VLT_ERR_ARG, "tokenizer_decode: id %d at position %d is outside the vocabulary", (int)ids[i], i);
        if (ids[i] != VLT_TOKEN_SOT) total += tok->raw_off[ids[i] + 1] - tok->raw_off[ids[i]];
    }
    uint8_t *raw = malloc(total + 1);
    if (!raw) return vlt_error_set(VLT_ERR_NOMEM, "tokenizer_decode: %zu bytes", total);
    size_t r = 0;
    for (int i = 0; i < end; i++)
        if (ids[i] != VLT_TOKEN_SOT) {
            uint32_t a = tok->raw_off[ids[i]], b = tok->raw_off[ids[i] + 1];
            memcpy(raw + r, tok->raw + a, b - a);
            r += b - a;
        }
    // bytes -> UTF-8 with U+FFFD for invalid sequences, then "</w>" -> " " (order does not
    // matter: both are ASCII, which the repair never touches).
    size_t w = 0;
    vlt_status s = VLT_OK;
    for (size_t i = 0; i < r;) {
        uint8_t enc[4];
        size_t len, used;
        if (r - i >= 4 && memcmp(raw + i, "</w>", 4) == 0) {
            enc[0] = ' ';
            len = 1;
            used = 4;
        } else {
            uint32_t cp;
            used = utf8_get(raw + i, r - i, &cp);
            len = utf8_put(cp, enc);
        }
        if (w + len >= out_size) {
            s = vlt_error_set(VLT_ERR_NOMEM, "tokenizer_decode: the text needs more than %zu bytes", out_size);
            break;
        }
        memcpy(out + w, enc, len);
        w += len;
        i += used;
    }
    out[w] = '\0';
    free(raw);
    return s;
}
