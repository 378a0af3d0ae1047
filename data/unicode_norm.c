// unicode_norm.c — general categories and NFD / NFC (see data/unicode_norm.h).
#include "data/unicode_norm.h"

// Hangul syllables (UAX #15, section "Hangul"): decomposed and composed arithmetically.
#define S_BASE 0xAC00u
#define L_BASE 0x1100u
#define V_BASE 0x1161u
#define T_BASE 0x11A7u
#define L_COUNT 19u
#define V_COUNT 21u
#define T_COUNT 28u
#define N_COUNT (V_COUNT * T_COUNT)
#define S_COUNT (L_COUNT * N_COUNT)

static int range_value(const vlt_unicode_range *t, int n, uint32_t cp, int dflt) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < t[mid].lo) hi = mid - 1;
        else if (cp > t[mid].hi) lo = mid + 1;
        else return t[mid].value;
    }
    return dflt;
}

int vlt_unicode_gc(uint32_t cp) { return range_value(vlt_unicode_gc_ranges, vlt_unicode_gc_ranges_count, cp, VLT_GC_CN); }

int vlt_unicode_combining(uint32_t cp) {
    if (cp < 0x300) return 0;   // no combining mark below U+0300
    return range_value(vlt_unicode_ccc_ranges, vlt_unicode_ccc_ranges_count, cp, 0);
}

static const vlt_unicode_pair *decomp_find(uint32_t cp) {
    int lo = 0, hi = vlt_unicode_decomp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < vlt_unicode_decomp[mid].x) hi = mid - 1;
        else if (cp > vlt_unicode_decomp[mid].x) lo = mid + 1;
        else return &vlt_unicode_decomp[mid];
    }
    return NULL;
}

// The full canonical decomposition of cp appended at out; returns the count.
static size_t decompose(uint32_t cp, uint32_t *out) {
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE;
        size_t k = 0;
        out[k++] = L_BASE + s / N_COUNT;
        out[k++] = V_BASE + (s % N_COUNT) / T_COUNT;
        if (s % T_COUNT) out[k++] = T_BASE + s % T_COUNT;
        return k;
    }
    if (cp < 0xC0) return (out[0] = cp), 1;   // nothing below U+00C0 decomposes
    const vlt_unicode_pair *d = decomp_find(cp);
    if (!d) return (out[0] = cp), 1;
    size_t k = decompose(d->y, out);
    if (d->z) k += decompose(d->z, out + k);
    return k;
}

// Decomposes and puts each run of non-starters in canonical order (stable by combining class).
size_t vlt_unicode_nfd(const uint32_t *s, size_t n, uint32_t *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += decompose(s[i], out + k);
    for (size_t i = 1; i < k; i++) {
        uint32_t c = out[i];
        int cc = vlt_unicode_combining(c);
        if (cc == 0) continue;
        size_t j = i;
        while (j > 0) {
            int pc = vlt_unicode_combining(out[j - 1]);
            if (pc <= cc) break;   // pc == 0 (a starter) also stops
            out[j] = out[j - 1];
            j--;
        }
        out[j] = c;
    }
    return k;
}

// The primary composite of (a, b), or 0.
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE &&
        b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    int lo = 0, hi = vlt_unicode_comp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const vlt_unicode_pair *p = &vlt_unicode_comp[mid];
        if (a < p->x || (a == p->x && b < p->y)) hi = mid - 1;
        else if (a > p->x || b > p->y) lo = mid + 1;
        else return p->z;
    }
    return 0;
}

// UAX #15's canonical composition over the NFD: a character joins the last starter unless a
// character in between has a combining class of 0 or >= its own (it is "blocked").
size_t vlt_unicode_nfc(const uint32_t *s, size_t n, uint32_t *out) {
    size_t k = vlt_unicode_nfd(s, n, out);
    if (k == 0) return 0;
    size_t starter = 0, w = 1;
    int last_cc = vlt_unicode_combining(out[0]);
    if (last_cc != 0) last_cc = 256;   // no starter yet: nothing composes
    for (size_t i = 1; i < k; i++) {
        uint32_t c = out[i];
        int cc = vlt_unicode_combining(c);
        uint32_t comp = compose(out[starter], c);
        if (comp && (last_cc < cc || last_cc == 0)) {
            out[starter] = comp;
            continue;
        }
        if (cc == 0) starter = w;
        last_cc = cc;
        out[w++] = c;
    }
    return w;
}
