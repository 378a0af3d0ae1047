// ftfy.c — ftfy.fix_text() with its default configuration (see data/ftfy.h).
//
// Text is held as code points in growable buffers; every fixer reads one buffer and writes
// another, as ftfy's str -> str functions do. ftfy's regular expressions are matched by hand:
// each one is noted above the function that replaces it, with the reason its hand-written form
// finds the same matches (Python's re tries alternatives in order at each position, leftmost
// first, and a sub() resumes after the end of a match).
#include "data/ftfy.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "data/html_unescape.h"
#include "data/unicode.h"
#include "data/unicode_norm.h"

#define MAX_SEGMENT 1000000u   // TextFixerConfig.max_decode_length
#define MAX_PASSES 64          // ftfy loops until nothing changes; a cycle would hang Python,
                               // here it stops (no such input is known)
#define MAX_DEPTH 16           // fix_encoding -> decode_inconsistent_utf8 -> fix_encoding ...
#define NONE 0xFFFFFFFFu       // "no character here" (past either end)

// --- buffers ----------------------------------------------------------------------------------

typedef struct { uint32_t *p; size_t n, cap; bool oom; } cpbuf;
typedef struct { uint8_t *p; size_t n, cap; bool oom; } bytebuf;

static bool cb_reserve(cpbuf *b, size_t extra) {
    if (b->oom) return false;
    if (b->n + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    uint32_t *p = realloc(b->p, cap * sizeof *p);
    if (!p) { b->oom = true; return false; }
    b->p = p;
    b->cap = cap;
    return true;
}

static void cb_put(cpbuf *b, uint32_t c) {
    if (cb_reserve(b, 1)) b->p[b->n++] = c;
}

static void cb_putn(cpbuf *b, const uint32_t *s, size_t n) {
    if (n && cb_reserve(b, n)) {
        memcpy(b->p + b->n, s, n * sizeof *s);
        b->n += n;
    }
}

static void cb_set(cpbuf *b, const uint32_t *s, size_t n) {
    b->n = 0;
    cb_putn(b, s, n);
}

static void cb_swap(cpbuf *a, cpbuf *b) {
    cpbuf t = *a;
    *a = *b;
    *b = t;
}

static bool same(const uint32_t *a, size_t na, const cpbuf *b) {
    return na == b->n && (na == 0 || memcmp(a, b->p, na * sizeof *a) == 0);
}

static void bb_put(bytebuf *b, uint8_t c) {
    if (b->oom) return;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        uint8_t *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    b->p[b->n++] = c;
}

// --- character classes ------------------------------------------------------------------------

static bool in_spans(const vlt_ftfy_span *t, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < t[mid].lo) hi = mid - 1;
        else if (cp > t[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

// The VLT_FTFY_* sets cp belongs to (0 for NONE).
static uint32_t cls(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' ? VLT_FTFY_UTF8_CONTINUATION : 0;   // the only ASCII member
    if (cp > 0xFFFF) return 0;
    int lo = 0, hi = vlt_ftfy_class_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < vlt_ftfy_classes[mid].lo) hi = mid - 1;
        else if (cp > vlt_ftfy_classes[mid].hi) lo = mid + 1;
        else return vlt_ftfy_classes[mid].mask;
    }
    return 0;
}

static bool is_word(uint32_t cp) {   // re's \w
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    return cp != NONE && in_spans(vlt_ftfy_word, vlt_ftfy_word_count, cp);
}

static bool is_digit(uint32_t cp) {   // re's \d (Unicode decimal digits)
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return cp != NONE && in_spans(vlt_ftfy_digit, vlt_ftfy_digit_count, cp);
}

static bool is_space(uint32_t cp) { return cp != NONE && vlt_unicode_isspace(cp); }
static bool is_lower_ascii(uint32_t c) { return c >= 'a' && c <= 'z'; }
static bool is_alpha_ascii(uint32_t c) { return is_lower_ascii(c) || (c >= 'A' && c <= 'Z'); }

// cp is one of the characters of the UTF-8 string set (a character class written out).
static bool in_set(uint32_t cp, const char *set) {
    const uint8_t *p = (const uint8_t *)set;
    while (*p) {
        uint32_t c;
        if (*p < 0x80) c = *p++;
        else if (*p < 0xE0) { c = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F); p += 2; }
        else if (*p < 0xF0) { c = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F); p += 3; }
        else { c = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 | (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F); p += 4; }
        if (c == cp) return true;
    }
    return false;
}

// --- the mojibake heuristic (ftfy.badness.is_bad) ---------------------------------------------

#define LA VLT_FTFY_LOWER_ACCENTED
#define UA VLT_FTFY_UPPER_ACCENTED
#define LC VLT_FTFY_LOWER_COMMON
#define UC VLT_FTFY_UPPER_COMMON
#define BOX VLT_FTFY_BOX
#define SP VLT_FTFY_START_PUNCT
#define EP VLT_FTFY_END_PUNCT
#define CUR VLT_FTFY_CURRENCY
#define NUM VLT_FTFY_NUMERIC
#define LAW VLT_FTFY_LAW
#define BAD VLT_FTFY_BAD
#define C1 VLT_FTFY_C1
#define COMMON VLT_FTFY_COMMON
#define KAO VLT_FTFY_KAOMOJI

// BADNESS_RE.search(s) != None. The expression is one alternation of fixed-length sequences
// (one has an optional \s), so a match exists iff some alternative matches at some position;
// each line below is one alternative, in ftfy's order.
static bool bad_at(const uint32_t *s, size_t n, size_t i, const uint32_t *m) {
#define S(k) (i + (k) < n ? s[i + (k)] : NONE)
#define X(k) (i + (k) < n ? m[i + (k)] : 0u)
    uint32_t c0 = S(0), c1 = S(1), c2 = S(2);
    uint32_t x0 = X(0), x1 = X(1), x2 = X(2);
    // Every alternative starts with a character of some set, a whitespace or an ASCII
    // character followed by one of some set or a whitespace: skip the rest quickly.
    if (x0 == 0) {
        if (c0 >= 0x80 && !is_space(c0)) return false;
        if (c0 < 0x80 && x1 == 0 && !is_space(c1)) return false;
    }
    if (x0 & C1) return true;
    if ((x0 & (BAD | LA | UA | BOX | SP | EP | CUR | NUM | LAW)) && (x1 & BAD)) return true;
    if (is_alpha_ascii(c0) && (x1 & (LC | UC)) && (x2 & BAD)) return true;
    if ((x0 & BAD) && (x1 & (LA | UA | BOX | SP | EP | CUR | NUM | LAW))) return true;
    if ((x0 & (LA | LC | BOX | EP | CUR | NUM)) && (x1 & UA)) return true;
    if ((x0 & (BOX | EP | CUR | NUM)) && (x1 & LA)) return true;
    if ((x0 & (LA | BOX | EP)) && (x1 & CUR)) return true;
    if (is_space(c0) && (x1 & UA) && (x2 & CUR)) return true;
    if ((x0 & (UA | BOX)) && (x1 & (NUM | LAW))) return true;
    if ((x0 & (LA | UA | BOX | CUR | EP)) && (x1 & SP) && (x2 & NUM)) return true;
    if ((x0 & (LA | UA | CUR | NUM | BOX | LAW)) && (x1 & EP) && (x2 & SP)) return true;
    if ((x0 & (CUR | NUM | BOX)) && (x1 & SP)) return true;
    if (is_lower_ascii(c0) && (x1 & UA) && (x2 & (SP | CUR))) return true;
    if ((x0 & BOX) && (x1 & KAO)) return true;
    if ((x0 & (LA | UA | CUR | NUM | SP | EP | LAW)) && (x1 & BOX)) return true;
    if ((x0 & BOX) && (x1 & EP)) return true;
    if ((x0 & (LA | UA)) && (x1 & (SP | EP)) && is_word(c2)) return true;
    // the ligature œ when not followed by an unaccented Latin letter
    if ((c0 == 0x152 || c0 == 0x153) && c1 != NONE && !is_alpha_ascii(c1)) return true;
    // degree signs after capital letters
    if ((x0 & UA) && c1 == 0xB0) return true;
    // common windows-1252 2-character mojibake
    if (in_set(c0, "ÂÃÎÐ") && ((x1 & (SP | EP)) || in_set(c1, "€œŠš¢£Ÿž\u00A0\u00AD®©°·»–—´"))) return true;
    if (c0 == 0xD7 && (c1 == 0xB2 || c1 == 0xB3)) return true;
    // windows-1252 mojibake of Arabic words: four characters
    if (c0 == 0xD8 || c0 == 0xD9) {
        uint32_t c3 = S(3), x3 = X(3);
        const uint32_t mask = COMMON | CUR | BAD | NUM | SP;
        if (((x1 & mask) || in_set(c1, "ŸŠ®°µ»")) && (c2 == 0xD8 || c2 == 0xD9) &&
            ((x3 & mask) || in_set(c3, "ŸŠ®°µ»")))
            return true;
    }
    // windows-1252 mojibake starting 3-character sequences of South Asian alphabets
    if (c0 == 0xE0 && in_set(c1, "²µ¹¼½¾")) return true;
    // MacRoman mojibake
    if (c0 == 0x221A && in_set(c1, "±∂†≠®™´≤≥¥µø")) return true;
    if (c0 == 0x2248 && (c1 == 0xB0 || c1 == 0xA2)) return true;
    if (c0 == 0x201A && c1 == 0xC4 && in_set(c2, "ìîïòôúùû†°¢π")) return true;
    if (c0 == 0x201A && (c1 == 0xE2 || c1 == 0xF3) && in_set(c2, "àä°ê")) return true;
    // windows-1251 mojibake of the U+2000 range, of Latin-1 and of Cyrillic
    if (c0 == 0x432 && c1 == 0x402) return true;
    if (in_set(c0, "ВГРС") && ((x1 & (C1 | BAD | SP | EP | CUR)) || c1 == 0xB0 || c1 == 0xB5) && in_set(c2, "ВГРС"))
        return true;
    if (c0 == 0x413 && c1 == 0x45E && c2 == 0x412 && S(3) == 0x402 && S(4) == 0x412 && S(5) != NONE &&
        S(5) != '\n' && (is_alpha_ascii(S(6)) || S(6) == ' '))
        return true;
    // windows-1252 encodings of 'à' and 'á', and of U+00A0 itself
    if (c0 == 0xC3 && (c1 == 0xA0 || c1 == 0xA1)) return true;
    if (is_lower_ascii(c0)) {
        if ((c1 == 0xC3 || c1 == 0xC2) && c2 == ' ') return true;
        if (is_space(c1) && (c2 == 0xC3 || c2 == 0xC2) && S(3) == ' ') return true;
    }
    if (i == 0 && (c0 == 0xC3 || c0 == 0xC2) && c1 == ' ') return true;
    // Â before a character it encodes as itself
    if ((in_set(c0, "abcdefghijklmnopqrstuvwxyz.,?!") || (x0 & EP)) && c1 == 0xC2 && (c2 == ' ' || (x2 & (SP | EP))))
        return true;
    // windows-1253 mojibake of the U+2000 range, of Latin-1 and of Greek
    if (c0 == 0x3B2 && c1 == 0x20AC && in_set(c2, "™\u00A0Ά\u00AD®°")) return true;
    if (in_set(c0, "ΒΓΞΟ") && ((x1 & (C1 | BAD | SP | EP | CUR)) || c1 == 0xB0) && in_set(c2, "ΒΓΞΟ")) return true;
    // windows-1257 mojibake of the U+2000 range
    if (c0 == 0x101 && c1 == 0x20AC) return true;
    return false;
#undef S
#undef X
}

// Class masks of s[0..n) in m (caller-sized).
static void masks_of(const uint32_t *s, size_t n, uint32_t *m) {
    for (size_t i = 0; i < n; i++) m[i] = cls(s[i]);
}

// Returns 1 (bad), 0, or -1 when memory runs out.
static int is_bad(const uint32_t *s, size_t n) {
    uint32_t stack[256];
    uint32_t *m = n <= 256 ? stack : malloc(n * sizeof *m);
    if (!m) return -1;
    masks_of(s, n, m);
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) bad = bad_at(s, n, i, m);
    if (m != stack) free(m);
    return bad;
}

int vlt_ftfy_is_bad(const uint32_t *s, size_t n) { return is_bad(s, n) == 1; }

// --- bytes: restore_byte_a0, replace_lossy_sequences, utf-8-variants --------------------------

static bool cont(uint8_t b) { return b >= 0x80 && b <= 0xBF; }
// [\x80-\x84\x86-\x9f\xa1-\xbf]: a continuation byte other than 0x85 and 0xA0
static bool cont_not85a0(uint8_t b) { return cont(b) && b != 0x85 && b != 0xA0; }

// ALTERED_UTF8_RE: the length of the alternative matching at p[i], or 0 (in ftfy's order).
static size_t altered_at(const uint8_t *p, size_t n, size_t i) {
    size_t r = n - i;
    uint8_t b0 = p[i], b1 = r > 1 ? p[i + 1] : 0, b2 = r > 2 ? p[i + 2] : 0, b3 = r > 3 ? p[i + 3] : 0;
    if ((b0 == 0xC2 || b0 == 0xC3 || b0 == 0xC5 || b0 == 0xCE || b0 == 0xD0 || b0 == 0xD9) && r > 1 && b1 == ' ')
        return 2;
    if ((b0 == 0xE2 || b0 == 0xE3) && r > 2 && b1 == ' ' && cont_not85a0(b2)) return 3;
    if (b0 >= 0xE0 && b0 <= 0xE3 && r > 2 && cont_not85a0(b1) && b2 == ' ') return 3;
    if (b0 == 0xF0 && r > 3) {
        if (b1 == ' ' && cont(b2) && cont(b3)) return 4;
        if (cont(b1) && b2 == ' ' && cont(b3)) return 4;
        if (cont(b1) && cont(b2) && b3 == ' ') return 4;
    }
    return 0;
}

static bool altered_search(const bytebuf *b) {
    for (size_t i = 0; i < b->n; i++)
        if (altered_at(b->p, b->n, i)) return true;
    return false;
}

static bool bytes_at(const uint8_t *p, size_t n, size_t i, const char *lit) {
    size_t k = strlen(lit);
    return n - i >= k && memcmp(p + i, lit, k) == 0;
}

// fixes.restore_byte_a0: A_GRAVE_WORD_RE (b"\xc3 (?! |quele|quela|quilo|s )" -> b"\xc3\xa0 ")
// first, then every ALTERED_UTF8_RE match with its space made 0xA0.
static void restore_byte_a0(bytebuf *b) {
    bytebuf t = {0};
    for (size_t i = 0; i < b->n; i++) {
        if (b->p[i] == 0xC3 && i + 1 < b->n && b->p[i + 1] == ' ') {
            size_t j = i + 2;
            bool keep = bytes_at(b->p, b->n, j, " ") || bytes_at(b->p, b->n, j, "quele") ||
                        bytes_at(b->p, b->n, j, "quela") || bytes_at(b->p, b->n, j, "quilo") ||
                        bytes_at(b->p, b->n, j, "s ");
            if (!keep) {
                bb_put(&t, 0xC3);
                bb_put(&t, 0xA0);
                bb_put(&t, ' ');
                i++;
                continue;
            }
        }
        bb_put(&t, b->p[i]);
    }
    for (size_t i = 0; i < t.n;) {
        size_t k = altered_at(t.p, t.n, i);
        if (!k) { i++; continue; }
        for (size_t j = i; j < i + k; j++)
            if (t.p[j] == ' ') t.p[j] = 0xA0;
        i += k;
    }
    if (t.oom) { b->oom = true; free(t.p); return; }
    free(b->p);
    *b = t;
}

static bool sub_or_q(uint8_t b) { return b == 0x1A || b == '?'; }
static bool sub_or_cont(uint8_t b) { return b == 0x1A || cont(b); }

// LOSSY_UTF8_RE: the length of the alternative matching at p[i], or 0 (in ftfy's order).
static size_t lossy_at(const uint8_t *p, size_t n, size_t i) {
    size_t r = n - i;
    uint8_t b[6] = {0};
    for (size_t k = 0; k < 6 && k < r; k++) b[k] = p[i + k];
    if (r >= 2 && b[0] >= 0xC2 && b[0] <= 0xDF && b[1] == 0x1A) return 2;
    if (r >= 2 && (b[0] == 0xC2 || b[0] == 0xC3) && b[1] == '?') return 2;
    if (r >= 6 && b[0] == 0xED && b[1] >= 0xA0 && b[1] <= 0xAF && b[3] == 0xED && b[4] >= 0xB0 && b[4] <= 0xBF) {
        if (sub_or_q(b[2]) && (sub_or_q(b[5]) || cont(b[5]))) return 6;
        if ((sub_or_q(b[2]) || cont(b[2])) && sub_or_q(b[5])) return 6;
    }
    if (r >= 3 && b[0] >= 0xE0 && b[0] <= 0xEF) {
        if (sub_or_q(b[1]) && sub_or_cont(b[2])) return 3;
        if (sub_or_cont(b[1]) && sub_or_q(b[2])) return 3;
    }
    if (r >= 4 && b[0] >= 0xF0 && b[0] <= 0xF4) {
        if (sub_or_q(b[1]) && sub_or_cont(b[2]) && sub_or_cont(b[3])) return 4;
        if (sub_or_cont(b[1]) && sub_or_q(b[2]) && sub_or_cont(b[3])) return 4;
        if (sub_or_cont(b[1]) && sub_or_cont(b[2]) && sub_or_q(b[3])) return 4;
    }
    if (b[0] == 0x1A) return 1;
    return 0;
}

// fixes.replace_lossy_sequences: each match becomes the UTF-8 of U+FFFD.
static void replace_lossy(bytebuf *b) {
    bytebuf t = {0};
    for (size_t i = 0; i < b->n;) {
        size_t k = lossy_at(b->p, b->n, i);
        if (k) {
            bb_put(&t, 0xEF);
            bb_put(&t, 0xBF);
            bb_put(&t, 0xBD);
            i += k;
        } else {
            bb_put(&t, b->p[i++]);
        }
    }
    if (t.oom) { b->oom = true; free(t.p); return; }
    free(b->p);
    *b = t;
}

// One strictly valid UTF-8 character at p[i]: its length (cp in *cp), or 0.
static size_t utf8_strict(const uint8_t *p, size_t n, size_t i, uint32_t *cp) {
    uint8_t b = p[i];
    if (b < 0x80) { *cp = b; return 1; }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b >= 0xE0 && b <= 0xEF) { len = 3; if (b == 0xE0) lo = 0xA0; if (b == 0xED) hi = 0x9F; }
    else if (b >= 0xF0 && b <= 0xF4) { len = 4; if (b == 0xF0) lo = 0x90; if (b == 0xF4) hi = 0x8F; }
    else return 0;
    if (n - i < len) return 0;
    uint32_t v = b & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
        uint8_t c = p[i + k];
        if (k == 1 ? (c < lo || c > hi) : !cont(c)) return 0;
        v = v << 6 | (c & 63);
    }
    *cp = v;
    return len;
}

// bytes.decode("utf-8-variants") of ftfy.bad_codecs (which equals strict UTF-8 when neither
// 0xED nor 0xC0 occurs): strict UTF-8, plus C0 80 as U+0000 and CESU-8 surrogate pairs
// ED A0-AF 80-BF ED B0-BF 80-BF as one supplementary character. The codec finds these with
// expressions whose '$' also matches before a final '\n'; that makes "C0 \n" at the very end
// a U+0000 too, and lets the last byte of a CESU-8 pair be that '\n'. Anything else fails
// (UnicodeDecodeError): returns false.
static bool decode_variants(const bytebuf *b, cpbuf *out) {
    const uint8_t *p = b->p;
    size_t n = b->n;
    out->n = 0;
    for (size_t i = 0; i < n;) {
        if (p[i] == 0xC0) {
            if (i + 1 < n && (p[i + 1] == 0x80 || (p[i + 1] == '\n' && i + 2 == n))) {
                cb_put(out, 0);
                i += 2;
                continue;
            }
            return false;
        }
        if (p[i] == 0xED && n - i >= 6 && p[i + 1] >= 0xA0 && p[i + 1] <= 0xAF && cont(p[i + 2]) &&
            p[i + 3] == 0xED && p[i + 4] >= 0xB0 && p[i + 4] <= 0xBF &&
            (cont(p[i + 5]) || (p[i + 5] == '\n' && i + 6 == n))) {
            uint32_t cp = ((uint32_t)(p[i + 1] & 0x0F) << 16) + ((uint32_t)(p[i + 2] & 0x3F) << 10) +
                          ((uint32_t)(p[i + 4] & 0x0F) << 6) + (p[i + 5] & 0x3F) + 0x10000;
            cb_put(out, cp);
            i += 6;
            continue;
        }
        uint32_t cp;
        size_t k = utf8_strict(p, n, i, &cp);
        if (!k) return false;
        cb_put(out, cp);
        i += k;
    }
    return true;
}

// --- single-byte codecs -----------------------------------------------------------------------

// codec's byte for cp, or -1 (the codec cannot encode it).
static int codec_byte(const vlt_ftfy_codec *c, uint32_t cp) {
    if (cp < 0x80) return c->sloppy && cp == 0x1A ? -1 : (int)cp;
    int lo = 0, hi = c->n_pairs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < c->encode[mid].cp) hi = mid - 1;
        else if (cp > c->encode[mid].cp) lo = mid + 1;
        else return c->encode[mid].byte;
    }
    return -1;
}

// chardata.possible_encoding (ENCODING_REGEXES[encoding].match).
static bool possible(const vlt_ftfy_codec *c, const uint32_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (codec_byte(c, s[i]) < 0) return false;
    return true;
}

// --- fix_encoding -----------------------------------------------------------------------------

static void fix_encoding_rec(const uint32_t *s, size_t n, int depth, cpbuf *out);

// UTF8_DETECTOR_RE at s[i] (the lookbehind checked by the caller): the length of the match, or
// 0. The pattern is (A|B|C)+ with nothing after it, so the first successful path of Python's
// backtracking takes, at each step, the first alternative that matches, until none does.
static size_t detect_at(const uint32_t *s, size_t n, size_t i) {
    size_t p = i;
    for (;;) {
        uint32_t x = p < n ? cls(s[p]) : 0;
        size_t need = (x & VLT_FTFY_UTF8_FIRST_OF_2) ? 1 : 0;
        size_t k = 0;
        if (need) {
            for (k = 1; k <= 1 && p + k < n && (cls(s[p + k]) & VLT_FTFY_UTF8_CONTINUATION); k++) {}
            if (k == 2) { p += 2; continue; }
        }
        if (x & VLT_FTFY_UTF8_FIRST_OF_3) {
            for (k = 1; k <= 2 && p + k < n && (cls(s[p + k]) & VLT_FTFY_UTF8_CONTINUATION); k++) {}
            if (k == 3) { p += 3; continue; }
        }
        if (x & VLT_FTFY_UTF8_FIRST_OF_4) {
            for (k = 1; k <= 3 && p + k < n && (cls(s[p + k]) & VLT_FTFY_UTF8_CONTINUATION); k++) {}
            if (k == 4) { p += 4; continue; }
        }
        return p - i;
    }
}

static bool lookbehind_ok(const uint32_t *s, size_t i) {
    return i == 0 || !(cls(s[i - 1]) & VLT_FTFY_UTF8_CONTINUATION_STRICT);
}

static bool detector_search(const uint32_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (lookbehind_ok(s, i) && detect_at(s, n, i)) return true;
    return false;
}

// fixes.decode_inconsistent_utf8: every detected sequence shorter than the whole text that
// is_bad() flags goes through fix_encoding on its own.
static void decode_inconsistent(const uint32_t *s, size_t n, int depth, cpbuf *out) {
    out->n = 0;
    cpbuf sub = {0};
    for (size_t i = 0; i < n;) {
        size_t k = lookbehind_ok(s, i) ? detect_at(s, n, i) : 0;
        if (!k) { cb_put(out, s[i++]); continue; }
        int bad = k < n ? is_bad(s + i, k) : 0;
        if (bad < 0) out->oom = true;
        if (bad == 1 && depth < MAX_DEPTH) {
            fix_encoding_rec(s + i, k, depth + 1, &sub);
            if (sub.oom) out->oom = true;
            cb_putn(out, sub.p, sub.n);
        } else {
            cb_putn(out, s + i, k);
        }
        i += k;
    }
    free(sub.p);
}

// ftfy._fix_encoding_one_step_and_explain, into out.
static void fix_encoding_step(const uint32_t *s, size_t n, int depth, cpbuf *out) {
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; i++) ascii = s[i] < 0x80;
    int bad = ascii ? 0 : is_bad(s, n);
    if (bad < 0) out->oom = true;
    if (bad != 1) { cb_set(out, s, n); return; }
    bool latin1 = false;
    bytebuf b = {0};
    for (int e = 0; e < VLT_FTFY_N_CODECS; e++) {
        const vlt_ftfy_codec *c = &vlt_ftfy_codecs[e];
        if (!possible(c, s, n)) continue;
        if (e == 0) latin1 = true;   // "latin-1" is CHARMAP_ENCODINGS[0]
        b.n = 0;
        for (size_t i = 0; i < n; i++) bb_put(&b, (uint8_t)codec_byte(c, s[i]));
        if (strcmp(c->name, "macroman") != 0 && altered_search(&b)) restore_byte_a0(&b);
        if (c->sloppy) replace_lossy(&b);
        if (b.oom) { out->oom = true; break; }
        if (decode_variants(&b, out)) { free(b.p); return; }
    }
    free(b.p);
    if (out->oom) return;
    if (detector_search(s, n)) {
        decode_inconsistent(s, n, depth, out);
        if (out->oom || !same(s, n, out)) return;
    }
    // ftfy checks for "windows-1252" among the possible encodings, a name the list never holds
    // (it holds "sloppy-windows-1252"), so Latin-1 text is always tried as strict windows-1252.
    if (latin1) {
        out->n = 0;
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            uint16_t c = vlt_ftfy_cp1252[s[i]];
            ok = c != 0xFFFF;
            cb_put(out, c);
        }
        if (ok && !same(s, n, out)) return;
    }
    bool has_c1 = false;
    for (size_t i = 0; i < n && !has_c1; i++) has_c1 = s[i] >= 0x80 && s[i] <= 0x9F;
    out->n = 0;
    for (size_t i = 0; i < n; i++)
        cb_put(out, has_c1 && s[i] >= 0x80 && s[i] <= 0x9F ? vlt_ftfy_codecs[1].decode[s[i]] : s[i]);
}

// ftfy.fix_encoding: one step at a time until nothing changes.
static void fix_encoding_rec(const uint32_t *s, size_t n, int depth, cpbuf *out) {
    cpbuf cur = {0};
    cb_set(&cur, s, n);
    bool settled = false;
    for (int pass = 0; pass < MAX_PASSES && !cur.oom && !out->oom && !settled; pass++) {
        fix_encoding_step(cur.p, cur.n, depth, out);
        settled = same(cur.p, cur.n, out);
        if (!settled) cb_swap(&cur, out);
    }
    if (!settled) cb_set(out, cur.p, cur.n);   // out of passes: the last text
    if (cur.oom) out->oom = true;
    free(cur.p);
}

long vlt_ftfy_fix_encoding(const uint32_t *s, size_t n, uint32_t **out) {
    cpbuf o = {0};
    fix_encoding_rec(s, n, 0, &o);
    if (!o.oom) cb_reserve(&o, 1);
    if (o.oom) { free(o.p); *out = NULL; return -1; }
    *out = o.p;
    return (long)o.n;
}

// --- the other fixes --------------------------------------------------------------------------

static bool is_alnum_ascii(uint32_t c) { return (c >= '0' && c <= '9') || is_alpha_ascii(c); }

// fixes.unescape_html: HTML_ENTITY_RE = &#?[0-9A-Za-z]{1,24}; (a run of more than 24 letters
// and digits cannot be followed by ';' at any shorter length, so it never matches). A name is
// looked up as it is; a numeric reference goes through html.unescape and is kept only when
// that consumed the ';'.
static void unescape_html(const uint32_t *s, size_t n, cpbuf *out) {
    out->n = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '&') {
            size_t j = i + 1;
            bool hash = j < n && s[j] == '#';
            if (hash) j++;
            size_t k = j;
            while (k < n && k - j <= 24 && is_alnum_ascii(s[k])) k++;
            if (k > j && k - j <= 24 && k < n && s[k] == ';') {
                size_t len = k + 1 - i;
                if (!hash) {
                    char name[32];
                    for (size_t q = j; q < k; q++) name[q - j] = (char)s[q];
                    name[k - j] = '\0';
                    int lo = 0, hi = vlt_ftfy_entity_count - 1, found = -1;
                    while (lo <= hi) {
                        int mid = (lo + hi) / 2;
                        int c = strcmp(name, vlt_ftfy_entities[mid].name);
                        if (c == 0) { found = mid; break; }
                        if (c < 0) hi = mid - 1;
                        else lo = mid + 1;
                    }
                    if (found >= 0) cb_putn(out, vlt_ftfy_entities[found].cps, vlt_ftfy_entities[found].n);
                    else cb_putn(out, s + i, len);
                } else {
                    uint32_t tmp[32];
                    memcpy(tmp, s + i, len * sizeof *tmp);
                    size_t m = vlt_html_unescape(tmp, len);
                    bool semi = false;
                    for (size_t q = 0; q < m; q++) semi = semi || tmp[q] == ';';
                    cb_putn(out, semi ? s + i : tmp, semi ? len : m);
                }
                i += len;
                continue;
            }
        }
        cb_put(out, s[i++]);
    }
}

static const vlt_ftfy_map *map_find(const vlt_ftfy_map *t, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < t[mid].cp) hi = mid - 1;
        else if (cp > t[mid].cp) lo = mid + 1;
        else return &t[mid];
    }
    return NULL;
}

// fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks,
// fix_surrogates, remove_terminal_escapes, remove_control_chars: eight passes in ftfy's order
// (each reads what the previous one wrote: a terminal escape's ESC survives until the control
// characters go, and fix_line_breaks sees the quotes already straight, for instance).
static void fix_chars(cpbuf *a, cpbuf *b) {
    // fix_c1_controls: C1_CONTROL_RE [\x80-\x9f], each read as sloppy-windows-1252
    for (size_t i = 0; i < a->n; i++)
        if (a->p[i] >= 0x80 && a->p[i] <= 0x9F) a->p[i] = vlt_ftfy_codecs[1].decode[a->p[i]];
    // fix_latin_ligatures, then fix_character_width (str.translate with LIGATURES, WIDTH_MAP)
    for (int pass = 0; pass < 2; pass++) {
        const vlt_ftfy_map *t = pass ? vlt_ftfy_widths : vlt_ftfy_ligatures;
        int nt = pass ? vlt_ftfy_width_count : vlt_ftfy_ligature_count;
        uint32_t lo = t[0].cp, hi = t[nt - 1].cp;
        b->n = 0;
        for (size_t i = 0; i < a->n; i++) {
            const vlt_ftfy_map *m = a->p[i] >= lo && a->p[i] <= hi ? map_find(t, nt, a->p[i]) : NULL;
            if (m) cb_putn(b, m->to, m->n);
            else cb_put(b, a->p[i]);
        }
        cb_swap(a, b);
    }
    // uncurl_quotes: [\u201c-\u201f] -> '"', [\u02bc\u2018-\u201b] -> '\''
    for (size_t i = 0; i < a->n; i++) {
        uint32_t c = a->p[i];
        if (c >= 0x201C && c <= 0x201F) a->p[i] = '"';
        else if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) a->p[i] = '\'';
    }
    // fix_line_breaks: "\r\n" then "\r", U+2028, U+2029, U+0085 -> "\n" (one left-to-right pass
    // gives the same: a CR's pair is decided before the CR itself is replaced)
    b->n = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t c = a->p[i];
        if (c == '\r' && i + 1 < a->n && a->p[i + 1] == '\n') i++;
        cb_put(b, (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) ? '\n' : c);
    }
    cb_swap(a, b);
    // fix_surrogates: pairs joined (left to right), then lone surrogates -> U+FFFD
    b->n = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t c = a->p[i];
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < a->n && a->p[i + 1] >= 0xDC00 && a->p[i + 1] <= 0xDFFF) {
            cb_put(b, 0x10000 + ((c - 0xD800) << 10) + (a->p[i + 1] - 0xDC00));
            i++;
        } else {
            cb_put(b, c >= 0xD800 && c <= 0xDFFF ? 0xFFFD : c);
        }
    }
    cb_swap(a, b);
    // remove_terminal_escapes: ANSI_RE = \033\[((?:\d|;)*)([a-zA-Z]) (\d: any decimal digit)
    b->n = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->p[i] == 0x1B && i + 1 < a->n && a->p[i + 1] == '[') {
            size_t j = i + 2;
            while (j < a->n && (a->p[j] == ';' || is_digit(a->p[j]))) j++;
            if (j < a->n && is_alpha_ascii(a->p[j])) { i = j; continue; }
        }
        cb_put(b, a->p[i]);
    }
    cb_swap(a, b);
    // remove_control_chars
    b->n = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t c = a->p[i];
        bool drop = c < 0x80 ? (c < 0x09 || c == 0x0B || (c >= 0x0E && c < 0x20) || c == 0x7F)
                             : in_spans(vlt_ftfy_control, vlt_ftfy_control_count, c);
        if (!drop) cb_put(b, c);
    }
    cb_swap(a, b);
}

// ftfy.fix_and_explain on one segment, into out: the fixes until a pass changes nothing.
static void fix_segment(const uint32_t *s, size_t n, bool unescape, cpbuf *out) {
    cpbuf a = {0}, b = {0}, orig = {0};
    cb_set(&a, s, n);
    for (int pass = 0; pass < MAX_PASSES && !a.oom && !b.oom; pass++) {
        cb_set(&orig, a.p, a.n);
        if (unescape) {
            unescape_html(a.p, a.n, &b);
            cb_swap(&a, &b);
        }
        fix_encoding_rec(a.p, a.n, 0, &b);
        cb_swap(&a, &b);
        fix_chars(&a, &b);
        if (a.oom || b.oom || !cb_reserve(&b, VLT_UNICODE_NORM_EXPANSION * a.n + 1)) break;
        b.n = vlt_unicode_nfc(a.p, a.n, b.p);
        cb_swap(&a, &b);
        if (same(orig.p, orig.n, &a)) break;
    }
    if (a.oom || b.oom || orig.oom) out->oom = true;
    cb_putn(out, a.p, a.n);
    free(a.p);
    free(b.p);
    free(orig.p);
}

// True when fix_text leaves s alone for certain: printable ASCII, '\t', '\n' and '\f' only, and
// no '&' (nothing to unescape, no mojibake in ASCII, nothing for the character fixes, already
// NFC). Most captions are like this; they skip the passes.
static bool plain_ascii(const uint32_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c == '&' || c > 0x7E || (c < 0x20 && c != '\t' && c != '\n' && c != '\f')) return false;
    }
    return true;
}

int vlt_ftfy_fix_text(const uint32_t *s, size_t n, uint32_t **out, size_t *out_n) {
    cpbuf o = {0};
    bool unescape = true;   // unescape_html="auto": off from the first segment holding '<'
    bool plain = plain_ascii(s, n);
    if (plain) cb_set(&o, s, n);
    for (size_t pos = plain ? n : 0; pos < n && !o.oom;) {
        size_t end = pos;
        while (end < n && s[end] != '\n') end++;
        end = end < n ? end + 1 : n;
        if (end - pos > MAX_SEGMENT) end = pos + MAX_SEGMENT;
        for (size_t i = pos; i < end && unescape; i++) unescape = s[i] != '<';
        fix_segment(s + pos, end - pos, unescape, &o);
        pos = end;
    }
    if (!o.oom) cb_reserve(&o, 1);   // a non-NULL result for empty text
    if (o.oom) {
        free(o.p);
        *out = NULL;
        if (out_n) *out_n = 0;
        return -1;
    }
    *out = o.p;
    if (out_n) *out_n = o.n;
    return 0;
}

// --- UTF-8 in and out -------------------------------------------------------------------------

// One code point from UTF-8 as Python's decode(errors="replace"): an invalid or truncated
// sequence becomes one U+FFFD for its longest valid prefix (at least one byte).
static size_t utf8_get_replace(const uint8_t *p, size_t n, size_t i, uint32_t *cp) {
    size_t k = utf8_strict(p, n, i, cp);
    if (k) return k;
    *cp = 0xFFFD;
    uint8_t b = p[i];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b >= 0xE0 && b <= 0xEF) { len = 3; if (b == 0xE0) lo = 0xA0; if (b == 0xED) hi = 0x9F; }
    else if (b >= 0xF0 && b <= 0xF4) { len = 4; if (b == 0xF0) lo = 0x90; if (b == 0xF4) hi = 0x8F; }
    else return 1;
    size_t j = 1;
    while (j < len && i + j < n && (j == 1 ? (p[i + j] >= lo && p[i + j] <= hi) : cont(p[i + j]))) j++;
    return j;
}

char *vlt_ftfy_fix_utf8(const char *text, size_t nb, size_t *out_len) {
    const uint8_t *p = (const uint8_t *)text;
    uint32_t *cps = malloc((nb ? nb : 1) * sizeof *cps);
    if (!cps) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < nb; n++) i += utf8_get_replace(p, nb, i, &cps[n]);
    uint32_t *fixed;
    size_t fn;
    int rc = vlt_ftfy_fix_text(cps, n, &fixed, &fn);
    free(cps);
    if (rc != 0) return NULL;
    char *o = malloc(4 * fn + 1);
    if (!o) { free(fixed); return NULL; }
    size_t w = 0;
    for (size_t i = 0; i < fn; i++) {
        uint32_t c = fixed[i];
        if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFD;   // not in UTF-8 (fix_surrogates leaves none)
        if (c < 0x80) o[w++] = (char)c;
        else if (c < 0x800) { o[w++] = (char)(0xC0 | c >> 6); o[w++] = (char)(0x80 | (c & 63)); }
        else if (c < 0x10000) {
            o[w++] = (char)(0xE0 | c >> 12);
            o[w++] = (char)(0x80 | (c >> 6 & 63));
            o[w++] = (char)(0x80 | (c & 63));
        } else {
            o[w++] = (char)(0xF0 | c >> 18);
            o[w++] = (char)(0x80 | (c >> 12 & 63));
            o[w++] = (char)(0x80 | (c >> 6 & 63));
            o[w++] = (char)(0x80 | (c & 63));
        }
    }
    o[w] = '\0';
    free(fixed);
    if (out_len) *out_len = w;
    return o;
}
