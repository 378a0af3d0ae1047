// ptb_tokenize.c — pycocoevalcap's PTB tokenization of captions (see ptb_tokenize.h).
#include "eval/ptb_tokenize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/ptb_lexer.h"
#include "eval/ptb_unicode.h"

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
static void utf8_to_utf16(const char *s, uint16_t *out, size_t *n) {
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
        if (cp == '\n') cp = ' ';  // pycocoevalcap: caption.replace('\n', ' ')
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

static int word_char(uint16_t c) { return vlt_ptb_is_letter(c) || (c >= '0' && c <= '9') || c == '_'; }

// A punctuation mark that does not end a word between two word characters (UAX #29: MidNumLet
// . ' U+2019 between letters or digits, MidLetter : U+00B7 between letters, MidNum , ; between digits).
static int word_mid(const uint16_t *t, int n, int i) {
    uint16_t c = t[i];
    if (i == 0 || i + 1 >= n) return 0;
    uint16_t a = t[i - 1], b = t[i + 1];
    if (c == '.' || c == '\'' || c == 0x2019) return word_char(a) && word_char(b);                 // MidNumLet
    if (c == ':' || c == 0x00B7) return vlt_ptb_is_letter(a) && vlt_ptb_is_letter(b);              // MidLetter
    if (c == ',' || c == ';') return a >= '0' && a <= '9' && b >= '0' && b <= '9';                 // MidNum
    return 0;
}

// Java's final-sigma condition (ConditionalSpecialCasing): within the word around t[i] (Java's
// word BreakIterator; here letters, digits, _ and the marks of word_mid), a letter before it and
// none after it.
static int final_sigma(const uint16_t *t, int n, int i) {
    int before = 0;
    for (int j = i - 1; j >= 0 && (word_char(t[j]) || word_mid(t, n, j)); j--)
        if (vlt_ptb_is_letter(t[j])) { before = 1; break; }
    if (!before) return 0;
    for (int j = i + 1; j < n && (word_char(t[j]) || word_mid(t, n, j)); j++)
        if (vlt_ptb_is_letter(t[j])) return 0;
    return 1;
}

// Appends one token lower-cased as String.toLowerCase(Locale.ENGLISH) does (final sigma: a capital
// sigma after a letter and not before one becomes U+03C2).
static int on_token(const uint16_t *t, int n, void *vctx) {
    lex_ctx *c = vctx;
    if (!t) {
        sb_put(&c->out, "\n", 1);
        c->line_start = 1;
        return c->out.failed;
    }
    if (!c->line_start) sb_put(&c->out, " ", 1);
    c->line_start = 0;
    for (int i = 0; i < n; i++) {
        uint32_t cp = t[i];
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < n && t[i + 1] >= 0xDC00 && t[i + 1] <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (t[i + 1] - 0xDC00u);
            i++;
        }
        if (cp == 0x03A3) {
            sb_cp(&c->out, final_sigma(t, n, i) ? 0x03C2 : 0x03C3);
            continue;
        }
        const ptb_lower *l = lower_of(cp);
        if (!l) { sb_cp(&c->out, cp); continue; }
        for (int k = 0; k < 3 && l->lower[k]; k++) sb_cp(&c->out, l->lower[k]);
    }
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
        utf8_to_utf16(captions[i], text, &len);
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
