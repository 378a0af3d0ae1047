// html_unescape.c — Python's html.unescape() on code points (see data/html_unescape.h).
#include "data/html_unescape.h"

#define NAME_MAX_CHARS 32            // html's pattern: [^\t\n\f <&#;]{1,32};?
#define CP_TOO_BIG 0x110000u

// strcmp of a code point string against an ASCII name.
static int name_cmp(const uint32_t *s, size_t n, const char *key) {
    size_t i = 0;
    for (; i < n && key[i]; i++) {
        uint32_t k = (unsigned char)key[i];
        if (s[i] != k) return s[i] < k ? -1 : 1;
    }
    if (i < n) return 1;
    return key[i] ? -1 : 0;
}

const vlt_html_entity *vlt_html_entity_find(const uint32_t *name, size_t len) {
    int lo = 0, hi = vlt_html_entity_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = name_cmp(name, len, vlt_html_entities[mid].name);
        if (c == 0) return &vlt_html_entities[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

static int hex_value(uint32_t c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

// _replace_charref for a number: writes 0 or 1 code point to out, returns the count.
static int numeric_ref(uint32_t num, uint32_t *out) {
    for (int i = 0; i < vlt_html_charref_fix_count; i++)
        if (vlt_html_charref_fixes[i].num == num) { out[0] = vlt_html_charref_fixes[i].cp; return 1; }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) { out[0] = 0xFFFD; return 1; }
    int lo = 0, hi = vlt_html_dropped_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (vlt_html_dropped[mid] == num) return 0;
        if (vlt_html_dropped[mid] < num) lo = mid + 1;
        else hi = mid - 1;
    }
    out[0] = num;
    return 1;
}

// Tries a numeric reference at s[i] == '&', s[i+1] == '#'. Returns the code points consumed
// (0 when the pattern does not match) and writes the replacement to rep/nrep.
static size_t match_numeric(const uint32_t *s, size_t n, size_t i, uint32_t *rep, int *nrep) {
    size_t j = i + 2;
    uint32_t num = 0;
    if (j < n && s[j] >= '0' && s[j] <= '9') {
        for (; j < n && s[j] >= '0' && s[j] <= '9'; j++)
            num = num >= CP_TOO_BIG ? CP_TOO_BIG : num * 10 + (s[j] - '0');
    } else if (j + 1 < n && (s[j] == 'x' || s[j] == 'X') && hex_value(s[j + 1]) >= 0) {
        for (j++; j < n && hex_value(s[j]) >= 0; j++)
            num = num >= CP_TOO_BIG ? CP_TOO_BIG : num * 16 + (uint32_t)hex_value(s[j]);
    } else {
        return 0;
    }
    if (num > CP_TOO_BIG) num = CP_TOO_BIG;
    if (j < n && s[j] == ';') j++;
    *nrep = numeric_ref(num, rep);
    return j - i;
}

static int is_name_char(uint32_t c) {
    return !(c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
             c == ';');
}

// Tries a named reference at s[i] == '&'. Returns the code points consumed (0: no match); the
// replacement is rep[0..nrep) followed by s[i + 1 + *keep_from .. i + consumed).
static size_t match_named(const uint32_t *s, size_t n, size_t i, uint32_t *rep, int *nrep,
                          size_t *keep_from) {
    const uint32_t *name = s + i + 1;
    size_t len = 0;
    while (len < NAME_MAX_CHARS && i + 1 + len < n && is_name_char(name[len])) len++;
    if (len == 0) return 0;
    if (i + 1 + len < n && name[len] == ';') len++;
    const vlt_html_entity *e = vlt_html_entity_find(name, len);
    size_t x = len;
    for (size_t p = len - 1; !e && p >= 2; p--) {
        e = vlt_html_entity_find(name, p);
        x = p;
    }
    if (!e) {   // '&' + s: unchanged
        rep[0] = '&';
        *nrep = 1;
        *keep_from = 0;
        return 1 + len;
    }
    for (int k = 0; k < e->n; k++) rep[k] = e->cp[k];
    *nrep = e->n;
    *keep_from = x;
    return 1 + len;
}

size_t vlt_html_unescape(uint32_t *s, size_t n) {
    size_t w = 0, i = 0;
    while (i < n) {
        if (s[i] != '&' || i + 1 >= n) {
            s[w++] = s[i++];
            continue;
        }
        uint32_t rep[2];
        int nrep = 0;
        size_t keep_from = 0, used;
        if (s[i + 1] == '#') {
            used = match_numeric(s, n, i, rep, &nrep);
            keep_from = used;   // nothing of the reference is kept
        } else {
            used = match_named(s, n, i, rep, &nrep, &keep_from);
            keep_from += 1;     // offset from s[i], past the '&'
        }
        if (used == 0) {
            s[w++] = s[i++];
            continue;
        }
        // w <= i and the kept tail starts at i + keep_from >= i + 1 + 2 when rep has 2 code
        // points (names of two-code-point entities are longer than 2), so copying is safe.
        for (int k = 0; k < nrep; k++) s[w++] = rep[k];
        for (size_t k = i + keep_from; k < i + used; k++) s[w++] = s[k];
        i += used;
    }
    return w;
}
