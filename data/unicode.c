// unicode.c — Unicode lookups for the CLIP tokenizer (see data/unicode.h).
#include "data/unicode.h"

// Index of the range containing cp in a sorted, disjoint table, or -1.
static int range_find(const vlt_unicode_range *t, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < t[mid].lo) hi = mid - 1;
        else if (cp > t[mid].hi) lo = mid + 1;
        else return mid;
    }
    return -1;
}

int vlt_unicode_pretok_class(uint32_t cp) {
    if (cp < 128) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return VLT_UCLASS_LETTER;
        if (cp >= '0' && cp <= '9') return VLT_UCLASS_NUMBER;
        if (cp == ' ' || (cp >= 9 && cp <= 13)) return VLT_UCLASS_SKIP;
        return VLT_UCLASS_PUNCT;
    }
    int i = range_find(vlt_unicode_pretok, vlt_unicode_pretok_count, cp);
    return i < 0 ? VLT_UCLASS_PUNCT : vlt_unicode_pretok[i].value;
}

int vlt_unicode_isspace(uint32_t cp) {
    if (cp < 128) return cp == ' ' || (cp >= 9 && cp <= 13) || (cp >= 0x1C && cp <= 0x1F);
    for (int i = 0; i < vlt_unicode_space_count; i++)
        if (vlt_unicode_space[i] == cp) return 1;
    return 0;
}

int vlt_unicode_lower_cp(uint32_t cp, uint32_t out[3]) {
    if (cp < 128) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    for (int i = 0; i < vlt_unicode_lower_multi_count; i++) {
        const vlt_unicode_lower_multi_entry *m = &vlt_unicode_lower_multi[i];
        if (m->cp == cp) {
            for (int k = 0; k < m->n; k++) out[k] = m->to[k];
            return m->n;
        }
    }
    out[0] = cp;
    int lo = 0, hi = vlt_unicode_lower_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const vlt_unicode_lower_run *r = &vlt_unicode_lower[mid];
        if (cp < r->lo) hi = mid - 1;
        else if (cp > r->hi) lo = mid + 1;
        else {
            if ((cp - r->lo) % r->stride == 0) out[0] = (uint32_t)((int64_t)cp + r->delta);
            break;
        }
    }
    if (cp == 0x3A3) out[0] = 0x3C3;
    return 1;
}

int vlt_unicode_case_class(uint32_t cp) {
    if (cp < 128) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return VLT_UCASE_CASED;
        // Case_Ignorable ASCII: ' . : ^ ` (Word_Break MidLetter/MidNumLet, Lm/Sk).
        return (cp == '\'' || cp == '.' || cp == ':' || cp == '^' || cp == '`') ? VLT_UCASE_IGNORABLE
                                                                               : VLT_UCASE_OTHER;
    }
    int i = range_find(vlt_unicode_case, vlt_unicode_case_count, cp);
    return i < 0 ? VLT_UCASE_OTHER : vlt_unicode_case[i].value;
}

// CPython's handle_capital_sigma: U+03A3 is final when a cased code point precedes it and none
// follows it, case-ignorable code points being skipped in both directions.
static int sigma_is_final(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    int cls = VLT_UCASE_OTHER;
    while (j > 0) {
        cls = vlt_unicode_case_class(s[--j]);
        if (cls != VLT_UCASE_IGNORABLE) break;
    }
    if (cls != VLT_UCASE_CASED) return 0;
    for (j = i + 1; j < n; j++) {
        cls = vlt_unicode_case_class(s[j]);
        if (cls != VLT_UCASE_IGNORABLE) return cls != VLT_UCASE_CASED;
    }
    return 1;
}

size_t vlt_unicode_lower_string(const uint32_t *s, size_t n, uint32_t *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0x3A3) {
            out[k++] = sigma_is_final(s, n, i) ? 0x3C2 : 0x3C3;
            continue;
        }
        uint32_t m[3];
        int c = vlt_unicode_lower_cp(s[i], m);
        for (int t = 0; t < c; t++) out[k++] = m[t];
    }
    return k;
}
