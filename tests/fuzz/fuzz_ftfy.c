// fuzz_ftfy.c — libFuzzer target for data/ftfy.c (ftfy.fix_text): the input as UTF-8 (any
// bytes) and, read 4 bytes at a time, as code points up to U+10FFFF (surrogates included, as a
// Python str may hold them); checks that the result is valid UTF-8 / free of surrogates and that
// nothing fix_text removes in its last steps is left (C0 controls but \t \n \f \r, DEL, CR and
// the other line breaks, U+FEFF, U+206A-U+206F, U+FFF9-U+FFFC).
// Build and run: make -f scripts/fuzz.mk run-ftfy. Seeds (tests/fuzz/seeds/ftfy/) are strings of
// tests/data/ftfy/fix_text.jsonl.gz, one per category, and hand-written mojibake.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/ftfy.h"

static void check(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_ftfy: %s\n", what);
        abort();
    }
}

// A code point fix_text never leaves in its result.
static int removed(uint32_t c) {
    return (c < 0x20 && c != '\t' && c != '\n' && c != '\f') || c == 0x7F || c == 0x85 || c == 0x2028 ||
           c == 0x2029 || c == 0xFEFF || (c >= 0x206A && c <= 0x206F) || (c >= 0xFFF9 && c <= 0xFFFC) ||
           (c >= 0xD800 && c <= 0xDFFF);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n;
    char *out = vlt_ftfy_fix_utf8((const char *)data, size, &n);
    check(out != NULL, "fix_utf8 returned NULL");
    check(strlen(out) == n, "NUL inside the result or wrong length");
    for (size_t i = 0; i < n;) {
        const uint8_t *p = (const uint8_t *)out + i;
        size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xC2 && p[0] <= 0xDF ? 2 : p[0] >= 0xE0 && p[0] <= 0xEF ? 3
                   : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : 0;
        check(len && i + len <= n, "invalid UTF-8 lead byte or truncated sequence");
        uint32_t c = len == 1 ? p[0] : (uint32_t)(p[0] & (0x7F >> len));
        for (size_t k = 1; k < len; k++) {
            check((p[k] & 0xC0) == 0x80, "invalid continuation byte");
            c = c << 6 | (p[k] & 0x3F);
        }
        check(!removed(c), "a removed character survived (UTF-8 input)");
        i += len;
    }
    free(out);

    size_t m = size / 4;
    uint32_t *cps = malloc((m ? m : 1) * sizeof *cps);
    for (size_t i = 0; i < m; i++) {
        uint32_t v;
        memcpy(&v, data + 4 * i, 4);
        cps[i] = v % 0x110000;
    }
    uint32_t *fixed;
    size_t fn;
    check(vlt_ftfy_fix_text(cps, m, &fixed, &fn) == 0 && fixed, "fix_text failed");
    for (size_t i = 0; i < fn; i++) check(fixed[i] < 0x110000 && !removed(fixed[i]), "bad code point (code point input)");
    free(fixed);
    free(cps);
    return 0;
}
