// ptb_tokenize.c — pycocoevalcap's PTB tokenization of captions (see ptb_tokenize.h).
#include "eval/ptb_tokenize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/ptb_lexer.h"
#include "eval/ptb_unicode.h"
#include "eval/ptb_wordbreak.h"

// Tokens pycocoevalcap drops (its PUNCTUATIONS, compared after lower-casing: -LRB- and the other
// bracket tokens are lower case by then and stay).
static const char *const DROPPED[] = {"''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";"};

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *p = realloc(b->buf, nc);
        if (!p) { b->failed = 1; return; }
        b->buf = p;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_cp(strbuf *b, uint32_t cp) {  // UTF-8; a lone surrogate is written '?' as Java does
    char u[4];
    size_t n;
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = '?';
    if (cp < 0x80) { u[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 63)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 63)); u[2] = (char)(0x80 | (cp & 63)); n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 63));
        u[2] = (char)(0x80 | ((cp >> 6) & 63)); u[3] = (char)(0x80 | (cp & 63)); n = 4;
    }
    sb_put(b, u, n);
}

// UTF-8 -> UTF-16 as Java's decoder reads pycocoevalcap's file (a malformed byte is U+FFFD).
static void utf8_to_utf16(const char *s, uint16_t *out, size_t *n, int newline_to_space) {
    const unsigned char *p = (const unsigned char *)s;
    size_t k = *n;
    while (*p) {
        uint32_t cp;
        int len;
        if (p[0] < 0x80) { cp = p[0]; len = 1; }
        else if ((p[0] & 0xE0) == 0xC0 && p[0] >= 0xC2 && (p[1] & 0xC0) == 0x80) { cp = ((p[0] & 31u) << 6) | (p[1] & 63u); len = 2; }
        else if ((p[0] & 0xF0) == 0xE0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
            cp = ((p[0] & 15u) << 12) | ((p[1] & 63u) << 6) | (p[2] & 63u);
            len = 3;
            if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) { cp = 0xFFFD; len = 1; }
        } else if ((p[0] & 0xF8) == 0xF0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80) {
            cp = ((p[0] & 7u) << 18) | ((p[1] & 63u) << 12) | ((p[2] & 63u) << 6) | (p[3] & 63u);
            len = 4;
            if (cp < 0x10000 || cp > 0x10FFFF) { cp = 0xFFFD; len = 1; }
        } else { cp = 0xFFFD; len = 1; }
        if (cp == '\n' && newline_to_space) cp = ' ';  // pycocoevalcap: caption.replace('\n', ' ')
        if (cp >= 0x10000) {
            cp -= 0x10000;
            out[k++] = (uint16_t)(0xD800 + (cp >> 10));
            out[k++] = (uint16_t)(0xDC00 + (cp & 0x3FF));
        } else out[k++] = (uint16_t)cp;
        p += len;
    }
    *n = k;
}

static const ptb_lower *lower_of(uint32_t cp) {
    int lo = 0, hi = (int)(sizeof PTB_LOWER / sizeof PTB_LOWER[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < PTB_LOWER[mid].cp) hi = mid - 1;
        else if (cp > PTB_LOWER[mid].cp) lo = mid + 1;
        else return &PTB_LOWER[mid];
    }
    return NULL;
}

typedef struct {
    strbuf out;       // the jar's output: tokens joined by ' ', lines by '\n'
    int line_start;
} lex_ctx;

// ---- Java's final sigma ---------------------------------------------------------------------
// String.toLowerCase(Locale.ENGLISH) turns U+03A3 into U+03C2 when ConditionalSpecialCasing's
// isFinalCased holds for the token (the jar lower-cases token by token). That walks positions of
// the token with a fresh BreakIterator.getWordInstance: the JDK's sun.text.RuleBasedBreakIterator
// over the compiled WordBreakRules (tables in eval/ptb_wordbreak.h, taken from JDK 17). Its
// isBoundary(k) is following(k - 1) == k, and following() starts from the last break it found when
// that lies before the offset, else syncs backwards with the reverse table; both paths are kept
// as they are, so the answers are Java's and not those of an idealised word segmentation.

#define JDONE 0xFFFF  // CharacterIterator.DONE: a real U+FFFF in the text also reads as the end

typedef struct {
    const uint16_t *t;
    int n, pos, cached;  // cached: cachedLastKnownBreak, -1 (BreakIterator.DONE) after setText
} jbreak;

static int range_value(const ptb_wb_range *r, int nr, uint32_t c, int none) {
    int lo = 0, hi = nr - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid - 1;
        else if (c > r[mid].hi) lo = mid + 1;
        else return r[mid].v;
    }
    return none;
}

static int wb_category(uint32_t c) { return range_value(PTB_WB_CAT, (int)(sizeof PTB_WB_CAT / sizeof PTB_WB_CAT[0]), c, 0); }

// ConditionalSpecialCasing.isCased: Lu, Ll, Lt and its own Other_Lowercase / Other_Uppercase list.
static int java_cased(uint32_t c) { return range_value(PTB_CASED, (int)(sizeof PTB_CASED / sizeof PTB_CASED[0]), c, 0); }

static int is_hi(uint32_t u) { return u >= 0xD800 && u <= 0xDBFF; }
static int is_lo(uint32_t u) { return u >= 0xDC00 && u <= 0xDFFF; }

// StringCharacterIterator.current / next / previous on UTF-16 units.
static uint32_t ci_current(const jbreak *b) { return b->pos < b->n ? b->t[b->pos] : JDONE; }
static uint32_t ci_next(jbreak *b) {
    if (b->pos < b->n - 1) return b->t[++b->pos];
    b->pos = b->n;
    return JDONE;
}
static uint32_t ci_previous(jbreak *b) { return b->pos > 0 ? b->t[--b->pos] : JDONE; }

static uint32_t rb_current(jbreak *b) {  // getCurrent: the code point at the position
    uint32_t c1 = ci_current(b);
    if (is_hi(c1) && b->pos < b->n) {
        uint32_t c2 = ci_next(b);
        ci_previous(b);
        if (is_lo(c2)) return 0x10000 + ((c1 - 0xD800) << 10) + (c2 - 0xDC00);
    }
    return c1;
}

static int rb_count(jbreak *b) {  // getCurrentCodePointCount
    uint32_t c1 = ci_current(b);
    if (is_hi(c1) && b->pos < b->n) {
        uint32_t c2 = ci_next(b);
        ci_previous(b);
        if (is_lo(c2)) return 2;
    }
    return 1;
}

static uint32_t rb_next(jbreak *b) {  // getNext: does not move when it answers DONE
    int index = b->pos;
    if (index == b->n || (index += rb_count(b)) >= b->n) return JDONE;
    b->pos = index;
    return rb_current(b);
}

static int rb_next_index(jbreak *b) {
    int index = b->pos + rb_count(b);
    return index > b->n ? b->n : index;
}

static uint32_t rb_previous(jbreak *b) {  // getPrevious
    uint32_t c2 = ci_previous(b);
    if (is_lo(c2) && b->pos > 0) {
        uint32_t c1 = ci_previous(b);
        if (is_hi(c1)) return 0x10000 + ((c1 - 0xD800) << 10) + (c2 - 0xDC00);
        ci_next(b);
    }
    return c2;
}

static int rb_handle_next(jbreak *b) {
    if (b->pos == b->n) return -1;
    int result = rb_next_index(b), lookahead = 0, state = 1;
    uint32_t c = rb_current(b);
    while (c != JDONE && state != 0) {
        int cat = wb_category(c);
        if (cat != -1) state = PTB_WB_FWD[state * PTB_WB_NCAT + cat];
        if (PTB_WB_LOOKAHEAD[state]) {
            if (PTB_WB_END[state]) result = lookahead;
            else lookahead = rb_next_index(b);
        } else if (PTB_WB_END[state]) result = rb_next_index(b);
        c = rb_next(b);
    }
    if (c == JDONE && lookahead == b->n) result = lookahead;
    b->pos = result;
    return result;
}

static int rb_handle_previous(jbreak *b) {
    int state = 1, cat = 0, last = 0;
    uint32_t c = rb_current(b);
    while (c != JDONE && state != 0) {
        last = cat;
        cat = wb_category(c);
        if (cat != -1) state = PTB_WB_BWD[state * PTB_WB_NCAT + cat];
        c = rb_previous(b);
    }
    if (c != JDONE) {
        rb_next(b);
        if (last != -1) rb_next(b);
    }
    return b->pos;
}

static int rb_following(jbreak *b, int offset) {
    b->pos = offset;
    if (offset == 0) return b->cached = rb_handle_next(b);
    int result = b->cached;
    if (result >= offset || result <= -1) result = rb_handle_previous(b);
    else b->pos = result;
    while (result != -1 && result <= offset) result = rb_handle_next(b);
    return b->cached = result;
}

static int rb_is_boundary(jbreak *b, int offset) { return offset == 0 || rb_following(b, offset - 1) == offset; }

static uint32_t code_point_at(const uint16_t *t, int n, int i) {
    if (is_hi(t[i]) && i + 1 < n && is_lo(t[i + 1])) return 0x10000 + ((t[i] - 0xD800u) << 10) + (t[i + 1] - 0xDC00u);
    return t[i];
}

static uint32_t code_point_before(const uint16_t *t, int i) {
    if (is_lo(t[i - 1]) && i >= 2 && is_hi(t[i - 2])) return 0x10000 + ((t[i - 2] - 0xD800u) << 10) + (t[i - 1] - 0xDC00u);
    return t[i - 1];
}

// ConditionalSpecialCasing.isFinalCased for the sigma at t[i]: stepping back from i while the
// position is not a word boundary, a cased character before it; then stepping forward from after
// it while the position is not a boundary, no cased character.
static int final_sigma(const uint16_t *t, int n, int i) {
    jbreak b = {t, n, 0, -1};
    for (int k = i; k >= 0 && !rb_is_boundary(&b, k);) {
        uint32_t ch = code_point_before(t, k);
        if (java_cased(ch)) {
            for (int j = i + 1; j < n && !rb_is_boundary(&b, j);) {
                uint32_t cj = code_point_at(t, n, j);
                if (java_cased(cj)) return 0;
                j += cj >= 0x10000 ? 2 : 1;
            }
            return 1;
        }
        k -= ch >= 0x10000 ? 2 : 1;
    }
    return 0;
}

// Appends t[0..n) lower-cased as String.toLowerCase(Locale.ENGLISH) does: the JDK's lower-case
// mapping of each code point (PTB_LOWER), and a capital sigma becomes U+03C2 where final_sigma
// holds on this very string.
static void java_lower(strbuf *out, const uint16_t *t, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t cp = t[i];
        if (is_hi(cp) && i + 1 < n && is_lo(t[i + 1])) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (t[i + 1] - 0xDC00u);
            i++;
        }
        if (cp == 0x03A3) {
            sb_cp(out, final_sigma(t, n, i) ? 0x03C2 : 0x03C3);
            continue;
        }
        const ptb_lower *l = lower_of(cp);
        if (!l) { sb_cp(out, cp); continue; }
        for (int k = 0; k < 3 && l->lower[k]; k++) sb_cp(out, l->lower[k]);
    }
}

// Appends one token, lower-cased as the jar does it: each token's text alone.
static int on_token(const uint16_t *t, int n, void *vctx) {
    lex_ctx *c = vctx;
    if (!t) {
        sb_put(&c->out, "\n", 1);
        c->line_start = 1;
        return c->out.failed;
    }
    if (!c->line_start) sb_put(&c->out, " ", 1);
    c->line_start = 0;
    java_lower(&c->out, t, n);
    return c->out.failed;
}

// Python's str.isspace() for the UTF-8 character at s; its length in *n (0 when not a space).
static size_t py_space_len(const char *s) {
    unsigned char a = (unsigned char)s[0], b = a ? (unsigned char)s[1] : 0, c = b ? (unsigned char)s[2] : 0;
    if (a == ' ' || (a >= '\t' && a <= '\r') || (a >= 0x1C && a <= 0x1F)) return 1;
    if (a == 0xC2 && (b == 0x85 || b == 0xA0)) return 2;
    if (a == 0xE1 && b == 0x9A && c == 0x80) return 3;                            // U+1680
    if (a == 0xE2 && b == 0x80 && ((c >= 0x80 && c <= 0x8A) || c == 0xA8 || c == 0xA9 || c == 0xAF)) return 3;
    if (a == 0xE2 && b == 0x81 && c == 0x9F) return 3;                            // U+205F
    if (a == 0xE3 && b == 0x80 && c == 0x80) return 3;                            // U+3000
    return 0;
}

size_t vlt_eval_py_space_len(const char *s) { return py_space_len(s); }

// pycocoevalcap on one output line: ' '.join(w for w in line.rstrip().split(' ') if w not in
// PUNCTUATIONS).
static char *finish_line(const char *line, size_t n) {
    size_t end = n;
    for (;;) {  // rstrip(): drop trailing Python whitespace
        size_t k = 0, at = end;
        for (size_t i = 0; i < end;) {
            size_t s = py_space_len(line + i);
            if (s && i + s == end) { at = i; k = s; break; }
            i += s ? s : 1;
        }
        if (!k) break;
        end = at;
    }
    strbuf o = {0};
    sb_put(&o, "", 0);
    int first = 1;
    for (size_t i = 0; i <= end;) {
        size_t j = i;
        while (j < end && line[j] != ' ') j++;
        size_t w = j - i;
        int drop = 0;
        for (size_t d = 0; d < sizeof DROPPED / sizeof DROPPED[0]; d++)
            if (strlen(DROPPED[d]) == w && memcmp(DROPPED[d], line + i, w) == 0) drop = 1;
        if (!drop) {
            if (!first) sb_put(&o, " ", 1);
            sb_put(&o, line + i, w);
            first = 0;
        }
        i = j + 1;
    }
    if (o.failed) { free(o.buf); return NULL; }
    return o.buf;
}

vlt_status vlt_eval_ptb_tokenize_batch(const char *const *captions, int n, char **out, int *n_out) {
    if (!captions || !out || n < 0) return vlt_error_set(VLT_ERR_ARG, "ptb_tokenize: NULL captions or output");
    for (int i = 0; i < n; i++) out[i] = NULL;
    size_t units = 1;
    for (int i = 0; i < n; i++) {
        if (!captions[i]) return vlt_error_set(VLT_ERR_ARG, "ptb_tokenize: caption %d is NULL", i);
        units += strlen(captions[i]) + 1;  // UTF-16 never needs more units than UTF-8 bytes
    }
    uint16_t *text = malloc(units * sizeof *text);
    if (!text) return vlt_error_set(VLT_ERR_NOMEM, "ptb_tokenize: out of memory");
    size_t len = 0;
    for (int i = 0; i < n; i++) {  // '\n'.join(captions), as pycocoevalcap writes its file
        if (i) text[len++] = '\n';
        utf8_to_utf16(captions[i], text, &len, 1);
    }
    lex_ctx c = {{0}, 1};
    sb_put(&c.out, "", 0);
    int rc = len > (size_t)INT32_MAX ? -1 : vlt_ptb_lex(text, (int)len, on_token, &c);
    free(text);
    if (rc != 0 || c.out.failed) {
        free(c.out.buf);
        return vlt_error_set(VLT_ERR_NOMEM, "ptb_tokenize: out of memory");
    }
    // zip(captions, output.split('\n')): caption i gets output line i.
    int k = 0;
    const char *p = c.out.buf;
    vlt_status st = VLT_OK;
    while (k < n) {
        const char *nl = strchr(p, '\n');
        size_t ln = nl ? (size_t)(nl - p) : strlen(p);
        if (!(out[k] = finish_line(p, ln))) { st = vlt_error_set(VLT_ERR_NOMEM, "ptb_tokenize: out of memory"); break; }
        k++;
        if (!nl) break;
        p = nl + 1;
    }
    int lines = 1;  // every line of the output, also those past the last caption
    for (const char *q = c.out.buf; *q; q++) lines += *q == '\n';
    free(c.out.buf);
    if (st != VLT_OK) {
        for (int i = 0; i < n; i++) { free(out[i]); out[i] = NULL; }
        return st;
    }
    if (n_out) *n_out = n == 0 ? 0 : lines;
    return VLT_OK;
}

vlt_status vlt_eval_ptb_tokenize(const char *caption, char **out) {
    if (!caption || !out) return vlt_error_set(VLT_ERR_ARG, "ptb_tokenize: NULL caption or output");
    int got = 0;
    char *one[1] = {NULL};
    VLT_TRY(vlt_eval_ptb_tokenize_batch(&caption, 1, one, &got));
    if (!one[0]) {
        one[0] = malloc(1);
        if (!one[0]) return vlt_error_set(VLT_ERR_NOMEM, "ptb_tokenize: out of memory");
        one[0][0] = '\0';
    }
    *out = one[0];
    return VLT_OK;
}

vlt_status vlt_eval_java_lower(const char *s, char **out) {
    if (!s || !out) return vlt_error_set(VLT_ERR_ARG, "java_lower: NULL text or output");
    size_t units = strlen(s) + 1;
    if (units > (size_t)INT32_MAX) return vlt_error_set(VLT_ERR_ARG, "java_lower: text too long");
    uint16_t *t = malloc(units * sizeof *t);
    if (!t) return vlt_error_set(VLT_ERR_NOMEM, "java_lower: out of memory");
    size_t n = 0;
    utf8_to_utf16(s, t, &n, 0);
    strbuf b = {0};
    sb_put(&b, "", 0);
    java_lower(&b, t, (int)n);
    free(t);
    if (b.failed) {
        free(b.buf);
        return vlt_error_set(VLT_ERR_NOMEM, "java_lower: out of memory");
    }
    *out = b.buf;
    return VLT_OK;
}
