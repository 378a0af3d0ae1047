// bert_tokenizer.c — BERT WordPiece tokenizer (see data/bert_tokenizer.h).
//
// The steps and their order follow transformers 4.57 exactly, because each one changes what the
// next sees: PreTrainedTokenizer.tokenize (special-token strings kept, the rest lower-cased one
// code point at a time for an uncased vocabulary, then the added-tokens trie split),
// BasicTokenizer.tokenize (_clean_text, _tokenize_chinese_chars, NFC, whitespace_tokenize, per
// word lower() + _run_strip_accents, _run_split_on_punc) and WordpieceTokenizer.tokenize.
#include "data/bert_tokenizer.h"

#include "data/files.h"

#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/unicode.h"
#include "data/unicode_norm.h"

// BertTokenizer's special tokens in the order of its all_special_tokens. Written in a text they
// stay whole (the added-tokens trie); a word equal to one after cleaning is never split either.
static const char *const SPECIAL[5] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};

struct vlt_bert_tokenizer {
    int lower;
    int n;                  // vocabulary size (lines)
    char *blob;             // every token, NUL-terminated, one after the other
    char **tokens;          // tokens[id] points into blob
    uint32_t *lens;         // byte length of tokens[id]
    int32_t *slots;         // open-addressing hash: id or -1
    uint32_t slot_mask;
    int max_cps;            // the longest token in code points: bounds the WordPiece search
    vlt_bert_specials sp;
    int32_t special_id[5];  // the id each SPECIAL string encodes to ([UNK] when absent)
};

// --- UTF-8 ----------------------------------------------------------------------------------

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

// One code point from s[0..n) (n >= 1) as Python's decoder with errors="replace": an invalid
// or truncated sequence gives U+FFFD and consumes its longest valid prefix (at least one byte),
// so a valid sequence after it is never swallowed. Returns the bytes consumed; *ok = 0 when
// the bytes were invalid.
static size_t utf8_get(const uint8_t *s, size_t n, uint32_t *cp, int *ok) {
    uint8_t b = s[0];
    *ok = 1;
    if (b < 0x80) { *cp = b; return 1; }
    int len;
    uint8_t lo = 0x80, hi = 0xBF;   // the allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b >= 0xE0 && b <= 0xEF) { len = 3; if (b == 0xE0) lo = 0xA0; if (b == 0xED) hi = 0x9F; }
    else if (b >= 0xF0 && b <= 0xF4) { len = 4; if (b == 0xF0) lo = 0x90; if (b == 0xF4) hi = 0x8F; }
    else { *cp = 0xFFFD; *ok = 0; return 1; }
    uint32_t v = b & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        bool good = i < (int)n && (i == 1 ? (s[i] >= lo && s[i] <= hi) : (s[i] >= 0x80 && s[i] <= 0xBF));
        if (!good) { *cp = 0xFFFD; *ok = 0; return (size_t)i; }
        v = v << 6 | (s[i] & 63);
    }
    *cp = v;
    return (size_t)len;
}

// --- character classes (transformers' tokenization_utils helpers) ---------------------------

// _is_whitespace: space, \t \n \r, or category Zs.
static bool is_bert_space(uint32_t cp) {
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return true;
    if (cp < 0x80) return false;
    return vlt_unicode_gc(cp) == VLT_GC_ZS;
}

// _is_control: category C* (Cc, Cf, Co, Cs, and Cn: unassigned), except \t \n \r.
static bool is_bert_control(uint32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    if (cp >= 0x20 && cp < 0x7F) return false;
    return VLT_GC_IS_OTHER(vlt_unicode_gc(cp));
}

// _is_punctuation: every ASCII non-alphanumeric symbol, or category P*.
static bool is_bert_punct(uint32_t cp) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
        return true;
    if (cp < 0x80) return false;
    return VLT_GC_IS_PUNCT(vlt_unicode_gc(cp));
}

// BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks (not Hiragana, Katakana or
// Hangul, which are written with spaces).
static bool is_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
           (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// --- vocabulary hash ------------------------------------------------------------------------

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;   // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int32_t vocab_find(const vlt_bert_tokenizer *t, const char *s, size_t n) {
    uint32_t i = hash_bytes(s, n) & t->slot_mask;
    for (;; i = (i + 1) & t->slot_mask) {
        int32_t id = t->slots[i];
        if (id < 0) return -1;
        if (t->lens[id] == n && memcmp(t->tokens[id], s, n) == 0) return id;
    }
}

// Adds id; a token already present takes the later id (Python's dict assignment).
static void vocab_insert(vlt_bert_tokenizer *t, int32_t id) {
    uint32_t i = hash_bytes(t->tokens[id], t->lens[id]) & t->slot_mask;
    for (;; i = (i + 1) & t->slot_mask) {
        int32_t o = t->slots[i];
        if (o < 0 || (t->lens[o] == t->lens[id] && memcmp(t->tokens[o], t->tokens[id], t->lens[id]) == 0)) {
            t->slots[i] = id;
            return;
        }
    }
}

// --- loading --------------------------------------------------------------------------------

void vlt_bert_tokenizer_free(vlt_bert_tokenizer *tok) {
    if (!tok) return;
    free(tok->blob);
    free(tok->tokens);
    free(tok->lens);
    free(tok->slots);
    free(tok);
}


vlt_status vlt_bert_tokenizer_load(const char *vocab_path, int do_lower_case, vlt_bert_tokenizer **out) {
    if (!out || !vocab_path) return vlt_error_set(VLT_ERR_ARG, "vlt_bert_tokenizer_load: NULL argument");
    *out = NULL;
    char *data = NULL;
    size_t size = 0;
    if (!(data = vlt_read_file(vocab_path, &size)))
        return vlt_error_set(VLT_ERR_IO, "BERT vocabulary %s: cannot read it: %s", vocab_path, strerror(errno));
    vlt_bert_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        free(data);
        return vlt_error_set(VLT_ERR_NOMEM, "BERT vocabulary %s: out of memory", vocab_path);
    }
    t->lower = do_lower_case ? 1 : 0;
    t->blob = data;
    // Lines: as Python's readlines() + rstrip("\n"): a last line without "\n" still counts, a
    // final "\n" does not start another.
    int n = 0;
    for (size_t i = 0; i < size; i++) n += data[i] == '\n';
    if (size > 0 && data[size - 1] != '\n') n++;
    if (n == 0) {
        vlt_bert_tokenizer_free(t);
        return vlt_error_set(VLT_ERR_FORMAT, "BERT vocabulary %s: empty file", vocab_path);
    }
    t->n = n;
    t->tokens = malloc(sizeof(char *) * (size_t)n);
    t->lens = malloc(sizeof(uint32_t) * (size_t)n);
    uint32_t slots = 16;
    while (slots < 2u * (uint32_t)n) slots <<= 1;
    t->slots = malloc(sizeof(int32_t) * slots);
    if (!t->tokens || !t->lens || !t->slots) {
        vlt_bert_tokenizer_free(t);
        return vlt_error_set(VLT_ERR_NOMEM, "BERT vocabulary %s: out of memory", vocab_path);
    }
    t->slot_mask = slots - 1;
    memset(t->slots, 0xFF, sizeof(int32_t) * slots);
    size_t pos = 0;
    for (int id = 0; id < n; id++) {
        char *line = data + pos;
        size_t len = 0;
        while (pos + len < size && data[pos + len] != '\n') len++;
        pos += len + 1;
        line[len] = '\0';   // the "\n", or the blob's terminator for a last line without one
        int cps = 0;
        for (size_t i = 0; i < len; cps++) {
            uint32_t cp;
            int ok;
            if (line[i] == '\0') {
                vlt_bert_tokenizer_free(t);
                return vlt_error_set(VLT_ERR_FORMAT, "BERT vocabulary %s line %d: holds a NUL byte", vocab_path,
                                     id + 1);
            }
            if (line[i] == '\r') {
                vlt_bert_tokenizer_free(t);
                return vlt_error_set(VLT_ERR_FORMAT,
                                     "BERT vocabulary %s line %d: carriage return in the token (CRLF line ends? "
                                     "vocab.txt has \"\\n\" ones)", vocab_path, id + 1);
            }
            i += utf8_get((const uint8_t *)line + i, len - i, &cp, &ok);
            if (!ok) {
                vlt_bert_tokenizer_free(t);
                return vlt_error_set(VLT_ERR_FORMAT, "BERT vocabulary %s line %d: not valid UTF-8", vocab_path,
                                     id + 1);
            }
        }
        t->tokens[id] = line;
        t->lens[id] = (uint32_t)len;
        if (cps > t->max_cps) t->max_cps = cps;
        vocab_insert(t, id);
    }
    int32_t *sp[5] = {&t->sp.unk, &t->sp.sep, &t->sp.pad, &t->sp.cls, &t->sp.mask};
    for (int k = 0; k < 5; k++) {
        *sp[k] = vocab_find(t, SPECIAL[k], strlen(SPECIAL[k]));
        if (*sp[k] < 0 && k < 4) {
            vlt_bert_tokenizer_free(t);
            return vlt_error_set(VLT_ERR_FORMAT,
                                 "BERT vocabulary %s: no line \"%s\" (a BERT vocab.txt lists [PAD], [UNK], [CLS], "
                                 "[SEP] and [MASK], one token per line)", vocab_path, SPECIAL[k]);
        }
    }
    // A special token string outside the vocabulary ([MASK] only) encodes as [UNK], as
    // convert_tokens_to_ids does.
    for (int k = 0; k < 5; k++) t->special_id[k] = *sp[k] >= 0 ? *sp[k] : t->sp.unk;
    *out = t;
    return VLT_OK;
}

// --- encoding -------------------------------------------------------------------------------

typedef struct { uint32_t *v; size_t n, cap; } cpvec;
typedef struct { int32_t *v; size_t n, cap; } idvec;

static bool cv_reserve(cpvec *c, size_t extra) {
    if (c->n + extra <= c->cap) return true;
    size_t cap = c->cap ? c->cap : 64;
    while (cap < c->n + extra) cap *= 2;
    uint32_t *v = realloc(c->v, sizeof(uint32_t) * cap);
    if (!v) return false;
    c->v = v;
    c->cap = cap;
    return true;
}

static bool id_push(idvec *d, int32_t id) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        int32_t *v = realloc(d->v, sizeof(int32_t) * cap);
        if (!v) return false;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = id;
    return true;
}

// Scratch buffers of one encode call (so calls on one tokenizer can run concurrently).
typedef struct {
    const vlt_bert_tokenizer *t;
    cpvec seg;     // the current text segment between special tokens
    cpvec clean;   // after _clean_text and _tokenize_chinese_chars
    cpvec nfc;     // after NFC
    cpvec low;     // one word lower-cased
    cpvec nfd;     // one word decomposed for accent stripping
    cpvec word;    // one word after accent stripping
    char *bytes;   // a piece's UTF-8 with room for "##" in front
    size_t bytes_cap;
    size_t *offs;  // byte offset of each code point of the piece (and one past the end)
    size_t offs_cap;
    idvec ids;
} encoder;

// Which SPECIAL string starts at s[i], or -1.
static int special_at(const uint32_t *s, size_t n, size_t i) {
    if (s[i] != '[') return -1;
    for (int k = 0; k < 5; k++) {
        size_t m = strlen(SPECIAL[k]);
        if (i + m > n) continue;
        size_t j = 0;
        while (j < m && s[i + j] == (uint8_t)SPECIAL[k][j]) j++;
        if (j == m) return k;
    }
    return -1;
}

// WordpieceTokenizer.tokenize of one word w[0..m): greedy longest match first, continuation
// pieces spelled "##…"; the whole word is [UNK] when some position has no piece or the word is
// over VLT_BERT_MAX_WORD_CHARS code points.
static bool wordpiece(encoder *e, const uint32_t *w, size_t m) {
    const vlt_bert_tokenizer *t = e->t;
    if (m == 0) return true;
    if (m > VLT_BERT_MAX_WORD_CHARS) return id_push(&e->ids, t->sp.unk);
    if (e->bytes_cap < 4 * m + 3) {
        free(e->bytes);
        e->bytes_cap = 4 * m + 3;
        e->bytes = malloc(e->bytes_cap);
        if (!e->bytes) return false;
    }
    if (e->offs_cap < m + 1) {
        free(e->offs);
        e->offs_cap = m + 1;
        e->offs = malloc(sizeof(size_t) * e->offs_cap);
        if (!e->offs) return false;
    }
    // bytes = "##" + UTF-8 of w: a piece starting at code point s is bytes[2 + offs[s] ..).
    char *b = e->bytes;
    b[0] = b[1] = '#';
    size_t nb = 2;
    for (size_t i = 0; i < m; i++) {
        e->offs[i] = nb - 2;
        nb += utf8_put(w[i], (uint8_t *)b + nb);
    }
    e->offs[m] = nb - 2;
    size_t first = e->ids.n;
    for (size_t start = 0; start < m;) {
        size_t end = m - start > (size_t)t->max_cps ? start + (size_t)t->max_cps : m;
        int32_t id = -1;
        // A continuation piece: "##" over the two bytes before it, which no later piece reads.
        size_t from = 2 + e->offs[start] - (start > 0 ? 2 : 0);
        if (start > 0) b[from] = b[from + 1] = '#';
        for (; end > start; end--) {
            id = vocab_find(t, b + from, 2 + e->offs[end] - from);
            if (id >= 0) break;
        }
        if (id < 0) {
            e->ids.n = first;   // drop the pieces found so far: the word is one [UNK]
            return id_push(&e->ids, t->sp.unk);
        }
        if (!id_push(&e->ids, id)) return false;
        start = end;
    }
    return true;
}

// Word is the lower-cased, accent-stripped form when the vocabulary is uncased; its punctuation
// characters each become a piece, the runs between them another (_run_split_on_punc). Python
// whitespace would separate pieces too (whitespace_tokenize over the joined pieces).
static bool split_punct(encoder *e, const uint32_t *w, size_t m) {
    size_t start = 0;
    for (size_t i = 0; i <= m; i++) {
        bool cut = i == m || is_bert_punct(w[i]) || vlt_unicode_isspace(w[i]);
        if (!cut) continue;
        if (!wordpiece(e, w + start, i - start)) return false;
        if (i < m && is_bert_punct(w[i]) && !wordpiece(e, w + i, 1)) return false;
        start = i + 1;
    }
    return true;
}

static bool equals_special(const uint32_t *w, size_t m) {
    return m >= 5 && special_at(w, m, 0) >= 0 && strlen(SPECIAL[special_at(w, m, 0)]) == m;
}

// One word of whitespace_tokenize's output.
static bool basic_word(encoder *e, const uint32_t *w, size_t m) {
    // never_split: a word that spells a special token after cleaning is looked up whole.
    if (equals_special(w, m)) return wordpiece(e, w, m);
    if (!e->t->lower) return split_punct(e, w, m);
    // token.lower() (the whole word, so Final_Sigma applies), then NFD without Mn marks.
    e->low.n = 0;
    if (!cv_reserve(&e->low, 3 * m)) return false;
    e->low.n = vlt_unicode_lower_string(w, m, e->low.v);
    e->nfd.n = 0;
    if (!cv_reserve(&e->nfd, VLT_UNICODE_NORM_EXPANSION * e->low.n)) return false;
    e->nfd.n = vlt_unicode_nfd(e->low.v, e->low.n, e->nfd.v);
    e->word.n = 0;
    if (!cv_reserve(&e->word, e->nfd.n)) return false;
    for (size_t i = 0; i < e->nfd.n; i++)
        if (vlt_unicode_gc(e->nfd.v[i]) != VLT_GC_MN) e->word.v[e->word.n++] = e->nfd.v[i];
    return split_punct(e, e->word.v, e->word.n);
}

// BasicTokenizer.tokenize + WordPiece of one segment (text between special tokens).
static bool basic_segment(encoder *e) {
    const cpvec *s = &e->seg;
    if (s->n == 0) return true;
    e->clean.n = 0;
    if (!cv_reserve(&e->clean, 3 * s->n)) return false;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t cp = s->v[i];
        if (cp == 0 || cp == 0xFFFD || is_bert_control(cp)) continue;
        if (is_bert_space(cp)) {
            e->clean.v[e->clean.n++] = ' ';
        } else if (is_cjk(cp)) {
            e->clean.v[e->clean.n++] = ' ';
            e->clean.v[e->clean.n++] = cp;
            e->clean.v[e->clean.n++] = ' ';
        } else {
            e->clean.v[e->clean.n++] = cp;
        }
    }
    e->nfc.n = 0;
    if (!cv_reserve(&e->nfc, VLT_UNICODE_NORM_EXPANSION * e->clean.n + 1)) return false;
    e->nfc.n = vlt_unicode_nfc(e->clean.v, e->clean.n, e->nfc.v);
    // whitespace_tokenize: str.split() on Python whitespace (wider than _is_whitespace: U+2028,
    // U+2029 survive _clean_text and still separate words).
    const uint32_t *v = e->nfc.v;
    size_t n = e->nfc.n, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !vlt_unicode_isspace(v[i])) continue;
        if (i > start && !basic_word(e, v + start, i - start)) return false;
        start = i + 1;
    }
    return true;
}

// All WordPiece ids of text into e->ids; false when memory runs out.
static bool encode_all(encoder *e, const char *text) {
    const vlt_bert_tokenizer *t = e->t;
    const uint8_t *s = (const uint8_t *)(text ? text : "");
    size_t nb = strlen((const char *)s);
    cpvec all = {0};
    if (!cv_reserve(&all, nb + 1)) return false;
    for (size_t i = 0; i < nb;) {
        int ok;
        i += utf8_get(s + i, nb - i, &all.v[all.n++], &ok);
    }
    bool good = true;
    e->seg.n = 0;
    for (size_t i = 0; i < all.n && good;) {
        int k = special_at(all.v, all.n, i);
        if (k >= 0) {
            good = basic_segment(e) && id_push(&e->ids, t->special_id[k]);
            e->seg.n = 0;
            i += strlen(SPECIAL[k]);
            continue;
        }
        // An uncased tokenizer lower-cases the text outside special tokens one code point at a
        // time (so a final capital sigma becomes U+03C3, not U+03C2) before anything else.
        if (!cv_reserve(&e->seg, 3)) {
            good = false;
            break;
        }
        if (t->lower) {
            uint32_t m[3];
            int c = vlt_unicode_lower_cp(all.v[i], m);
            for (int q = 0; q < c; q++) e->seg.v[e->seg.n++] = m[q];
        } else {
            e->seg.v[e->seg.n++] = all.v[i];
        }
        i++;
    }
    good = good && basic_segment(e);
    free(all.v);
    return good;
}

static void encoder_free(encoder *e) {
    free(e->seg.v);
    free(e->clean.v);
    free(e->nfc.v);
    free(e->low.v);
    free(e->nfd.v);
    free(e->word.v);
    free(e->bytes);
    free(e->offs);
    free(e->ids.v);
}

// Runs encode_all; the ids are in e->ids. Returns false (message set) on failure.
static bool encode_ids(const vlt_bert_tokenizer *tok, const char *text, encoder *e) {
    memset(e, 0, sizeof *e);
    e->t = tok;
    if (!encode_all(e, text)) {
        vlt_error_set(VLT_ERR_NOMEM, "BERT tokenizer: out of memory encoding a text of %zu bytes",
                      text ? strlen(text) : 0);
        return false;
    }
    return true;
}

int vlt_bert_tokenizer_tokenize(const vlt_bert_tokenizer *tok, const char *text, int32_t *ids, int cap) {
    if (!tok || (cap > 0 && !ids)) {
        vlt_error_set(VLT_ERR_ARG, "vlt_bert_tokenizer_tokenize: NULL tokenizer or ids");
        return -1;
    }
    encoder e;
    if (!encode_ids(tok, text, &e)) {
        encoder_free(&e);
        return -1;
    }
    if (e.ids.n > (size_t)INT32_MAX) {
        encoder_free(&e);
        vlt_error_set(VLT_ERR_ARG, "vlt_bert_tokenizer_tokenize: more than 2^31 tokens");
        return -1;
    }
    int count = (int)e.ids.n;
    int k = cap < count ? cap : count;
    if (k > 0) memcpy(ids, e.ids.v, sizeof(int32_t) * (size_t)k);
    encoder_free(&e);
    return count;
}

int vlt_bert_tokenizer_encode(const vlt_bert_tokenizer *tok, const char *text, int32_t *ids, int32_t *mask,
                              int max_len) {
    if (!tok || !ids || max_len < 2) {
        vlt_error_set(VLT_ERR_ARG, "vlt_bert_tokenizer_encode: %s", max_len < 2 ? "max_len below 2 ([CLS] and [SEP])"
                                                                                 : "NULL tokenizer or ids");
        return -1;
    }
    encoder e;
    if (!encode_ids(tok, text, &e)) {
        encoder_free(&e);
        return -1;
    }
    size_t keep = e.ids.n < (size_t)(max_len - 2) ? e.ids.n : (size_t)(max_len - 2);
    ids[0] = tok->sp.cls;
    if (keep) memcpy(ids + 1, e.ids.v, sizeof(int32_t) * keep);
    ids[keep + 1] = tok->sp.sep;
    int used = (int)keep + 2;
    for (int i = used; i < max_len; i++) ids[i] = tok->sp.pad;
    if (mask)
        for (int i = 0; i < max_len; i++) mask[i] = i < used;
    encoder_free(&e);
    return used;
}

// --- decoding and lookups -------------------------------------------------------------------

vlt_status vlt_bert_tokenizer_decode(const vlt_bert_tokenizer *tok, const int32_t *ids, int n, char *out,
                                     size_t out_size) {
    if (!tok || (n > 0 && !ids) || !out || out_size == 0)
        return vlt_error_set(VLT_ERR_ARG, "vlt_bert_tokenizer_decode: NULL argument or empty output");
    out[0] = '\0';
    size_t w = 0;
    bool first = true, full = false;
    int last = n;   // trailing [PAD]s are padding and left out; a [PAD] before other ids is kept
    while (last > 0 && ids[last - 1] == tok->sp.pad) last--;
    for (int i = 0; i < last; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n)
            return vlt_error_set(VLT_ERR_ARG, "vlt_bert_tokenizer_decode: id %d at %d is outside the vocabulary of %d",
                                 (int)ids[i], i, tok->n);
        const char *s = tok->tokens[ids[i]];
        // " ".join(tokens).replace(" ##", ""): a "##" piece joins the one before it.
        bool glue = !first && s[0] == '#' && s[1] == '#';
        if (glue) s += 2;
        else if (!first) {
            if (w + 1 >= out_size) { full = true; break; }
            out[w++] = ' ';
        }
        size_t m = strlen(s);
        if (w + m >= out_size) {
            m = out_size - 1 - w;
            full = true;
        }
        memcpy(out + w, s, m);
        w += m;
        first = false;
        if (full) break;
    }
    out[w] = '\0';
    if (full) return vlt_error_set(VLT_ERR_NOMEM, "vlt_bert_tokenizer_decode: output of %zu bytes is too small",
                                   out_size);
    return VLT_OK;
}

int vlt_bert_tokenizer_vocab_size(const vlt_bert_tokenizer *tok) { return tok ? tok->n : 0; }

const char *vlt_bert_tokenizer_token(const vlt_bert_tokenizer *tok, int32_t id) {
    return tok && id >= 0 && id < tok->n ? tok->tokens[id] : NULL;
}

int32_t vlt_bert_tokenizer_id(const vlt_bert_tokenizer *tok, const char *token) {
    return tok && token ? vocab_find(tok, token, strlen(token)) : -1;
}

vlt_bert_specials vlt_bert_tokenizer_specials(const vlt_bert_tokenizer *tok) {
    return tok ? tok->sp : (vlt_bert_specials){-1, -1, -1, -1, -1};
}

int vlt_bert_tokenizer_lower_case(const vlt_bert_tokenizer *tok) { return tok ? tok->lower : 0; }
