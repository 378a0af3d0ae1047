// test_data_ftfy.c — data/ftfy.c against ftfy.fix_text and the CLIP tokenizer against
// open_clip.tokenize on the 12,800 web-style strings of scripts/reference/make_ftfy_fixture.py
// (counts per category; targets: at least 99.9% equal overall, 100% outside the mojibake
// categories), ftfy's mojibake heuristic and fix_encoding on their own (badness fixture), each
// fix on its own, and robustness on bytes that are not UTF-8.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <cjson/cJSON.h>

#include "data/ftfy.h"
#include "data/tokenizer.h"

#define FIX_FIXTURE "tests/data/ftfy/fix_text.jsonl.gz"
#define BAD_FIXTURE "tests/data/ftfy/badness.jsonl.gz"
#define MAX_CATS 32

// --- fixture reading --------------------------------------------------------------------------

// The next line of a gzip file (without '\n') in a growing buffer; NULL at the end.
static char *gz_line(gzFile f, char **buf, size_t *cap) {
    size_t n = 0;
    for (;;) {
        if (*cap - n < 2) {
            *cap = *cap ? *cap * 2 : 4096;
            *buf = realloc(*buf, *cap);
            assert_non_null(*buf);
        }
        if (!gzgets(f, *buf + n, (int)(*cap - n))) return n ? *buf : NULL;
        n += strlen(*buf + n);
        if (n && (*buf)[n - 1] == '\n') {
            (*buf)[n - 1] = '\0';
            return *buf;
        }
    }
}

typedef struct {
    char name[32];
    int n, fix_ok, ids_ok;
} cat_count;

static int is_mojibake(const char *cat) { return strncmp(cat, "mojibake", 8) == 0; }

static vlt_tokenizer *g_tok;

static int setup(void **state) {
    (void)state;
    if (vlt_tokenizer_load(NULL, &g_tok) != VLT_OK) {
        fprintf(stderr, "tokenizer load: %s\n", vlt_error_message());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    vlt_tokenizer_free(g_tok);
    return 0;
}

// Every fixture string: vlt_ftfy_fix_utf8 against ftfy.fix_text, vlt_tokenizer_encode against
// open_clip.tokenize; counts per category.
static void test_fixture(void **state) {
    (void)state;
    gzFile f = gzopen(FIX_FIXTURE, "rb");
    if (!f) fail_msg("cannot open %s (run tests from the repository root)", FIX_FIXTURE);
    char *line = NULL;
    size_t cap = 0;
    cat_count cats[MAX_CATS];
    int ncat = 0, total = 0, fix_ok = 0, ids_ok = 0, shown = 0, meta = 0;
    clock_t t0 = clock();
    while (gz_line(f, &line, &cap)) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        if (cJSON_GetObjectItem(j, "meta")) {
            meta = 1;
            cJSON_Delete(j);
            continue;
        }
        const char *cat = cJSON_GetStringValue(cJSON_GetObjectItem(j, "cat"));
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(j, "text"));
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(j, "fixed"));
        cJSON *ids = cJSON_GetObjectItem(j, "ids");
        assert_non_null(cat);
        assert_non_null(text);
        assert_non_null(want);
        assert_true(cJSON_IsArray(ids));
        int c = 0;
        while (c < ncat && strcmp(cats[c].name, cat) != 0) c++;
        if (c == ncat) {
            assert_true(ncat < MAX_CATS);
            memset(&cats[c], 0, sizeof cats[c]);
            snprintf(cats[c].name, sizeof cats[c].name, "%s", cat);
            ncat++;
        }
        size_t got_len;
        char *got = vlt_ftfy_fix_utf8(text, strlen(text), &got_len);
        assert_non_null(got);
        int ok_fix = strcmp(got, want) == 0;

        int32_t out[VLT_TOKENIZER_CONTEXT];
        int n = vlt_tokenizer_encode(g_tok, text, out, VLT_TOKENIZER_CONTEXT);
        int nw = cJSON_GetArraySize(ids);
        int ok_ids = n == nw;
        for (int i = 0; i < nw && ok_ids; i++) ok_ids = out[i] == cJSON_GetArrayItem(ids, i)->valueint;
        for (int i = n > 0 ? n : 0; i < VLT_TOKENIZER_CONTEXT; i++) ok_ids = ok_ids && out[i] == 0;
        if ((!ok_fix || !ok_ids) && shown++ < 12) {
            char *esc = cJSON_PrintUnformatted(j);
            cJSON *g = cJSON_CreateString(got);
            char *gesc = cJSON_PrintUnformatted(g);
            fprintf(stderr, "mismatch (%s%s): %s\n  vlt fixed: %s\n", ok_fix ? "" : "fix_text ",
                    ok_ids ? "" : "ids", esc, gesc);
            free(esc);
            free(gesc);
            cJSON_Delete(g);
        }
        free(got);
        cats[c].n++;
        cats[c].fix_ok += ok_fix;
        cats[c].ids_ok += ok_ids;
        total++;
        fix_ok += ok_fix;
        ids_ok += ok_ids;
        cJSON_Delete(j);
    }
    free(line);
    gzclose(f);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    fprintf(stderr, "ftfy fixture (%d strings, %.2f s): category, strings, fix_text equal to ftfy, ids equal to open_clip\n",
            total, secs);
    for (int c = 0; c < ncat; c++)
        fprintf(stderr, "  %-18s %5d  %5d  %5d\n", cats[c].name, cats[c].n, cats[c].fix_ok, cats[c].ids_ok);
    fprintf(stderr, "  %-18s %5d  %5d (%.3f%%)  %5d (%.3f%%)\n", "all", total, fix_ok, 100.0 * fix_ok / total,
            ids_ok, 100.0 * ids_ok / total);
    assert_true(meta);
    assert_true(total >= 10000);
    // targets: 99.9% overall, every string outside the mojibake categories
    assert_true(fix_ok * 1000 >= total * 999);
    assert_true(ids_ok * 1000 >= total * 999);
    for (int c = 0; c < ncat; c++)
        if (!is_mojibake(cats[c].name)) {
            assert_int_equal(cats[c].fix_ok, cats[c].n);
            assert_int_equal(cats[c].ids_ok, cats[c].n);
        }
}

// UTF-8 -> code points (the fixture's strings are valid UTF-8).
static size_t to_cps(const char *s, uint32_t *out) {
    const uint8_t *p = (const uint8_t *)s;
    size_t n = 0;
    while (*p) {
        uint32_t c;
        if (*p < 0x80) c = *p++;
        else if (*p < 0xE0) { c = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F); p += 2; }
        else if (*p < 0xF0) { c = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F); p += 3; }
        else { c = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 | (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F); p += 4; }
        out[n++] = c;
    }
    return n;
}

// ftfy.badness.is_bad and ftfy.fix_encoding on short strings of the heuristic's characters.
static void test_badness_fixture(void **state) {
    (void)state;
    gzFile f = gzopen(BAD_FIXTURE, "rb");
    if (!f) fail_msg("cannot open %s", BAD_FIXTURE);
    char *line = NULL;
    size_t cap = 0;
    int total = 0, bad_ok = 0, enc_ok = 0, n_bad = 0, shown = 0;
    uint32_t a[256], b[256];
    while (gz_line(f, &line, &cap)) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(j, "text"));
        cJSON *enc = cJSON_GetObjectItem(j, "enc");   // code points (U+0000 can occur)
        int want_bad = cJSON_GetObjectItem(j, "bad")->valueint;
        assert_true(strlen(text) < 64 && cJSON_GetArraySize(enc) < 64);
        size_t n = to_cps(text, a), m = (size_t)cJSON_GetArraySize(enc);
        for (size_t i = 0; i < m; i++) b[i] = (uint32_t)cJSON_GetArrayItem(enc, (int)i)->valueint;
        int got_bad = vlt_ftfy_is_bad(a, n);
        uint32_t *fixed;
        long k = vlt_ftfy_fix_encoding(a, n, &fixed);
        assert_true(k >= 0);
        int ok_enc = (size_t)k == m && memcmp(fixed, b, m * sizeof *b) == 0;
        free(fixed);
        if ((got_bad != want_bad || !ok_enc) && shown++ < 10)
            fprintf(stderr, "badness mismatch: %s (is_bad %d, want %d; fix_encoding %s)\n", line, got_bad,
                    want_bad, ok_enc ? "equal" : "differs");
        total++;
        n_bad += want_bad;
        bad_ok += got_bad == want_bad;
        enc_ok += ok_enc;
        cJSON_Delete(j);
    }
    free(line);
    gzclose(f);
    fprintf(stderr, "badness fixture: %d strings (%d bad): is_bad equal on %d, fix_encoding equal on %d\n", total,
            n_bad, bad_ok, enc_ok);
    assert_true(total >= 5000 && n_bad > total / 4 && n_bad < total * 3 / 4);
    assert_int_equal(bad_ok, total);
    assert_int_equal(enc_ok, total);
}

// --- single rules -------------------------------------------------------------------------------

static char *fix(const char *s) {
    char *r = vlt_ftfy_fix_utf8(s, strlen(s), NULL);
    assert_non_null(r);
    return r;
}

#define FIXES_TO(in, want)                   \
    do {                                     \
        char *r_ = fix(in);                  \
        assert_string_equal(r_, want);       \
        free(r_);                            \
    } while (0)

static void test_html(void **state) {
    (void)state;
    FIXES_TO("Broken text&hellip; it&#x2019;s", "Broken text\u2026 it's");
    FIXES_TO("P&EACUTE;REZ &eacute; &NTILDE; &nTILDE;", "PÉREZ é Ñ &nTILDE;");
    FIXES_TO("BUNDESSTRA&SZLIG;E", "BUNDESSTRASSE");         // upper() of ß
    FIXES_TO("this&not that &amp", "this&not that &amp");    // only names ending in ';'
    FIXES_TO("&amp;amp; &#65; &#x41;", "& A A");             // repeated until nothing changes
    FIXES_TO("&#65a; &foo; &#xZZ;", "&#65a; &foo; &#xZZ;");  // html.unescape left the ';'
    FIXES_TO("&aaaaaaaaaaaaaaaaaaaaaaaaa;", "&aaaaaaaaaaaaaaaaaaaaaaaaa;");   // 25 letters
    // a segment holding '<' is HTML: no unescaping there and in every later segment
    FIXES_TO("a &amp; b\n<b>c &amp; d</b>\ne &amp; f", "a & b\n<b>c &amp; d</b>\ne &amp; f");
    FIXES_TO("&lt;b&gt; &amp;", "<b> &");
}

static void test_quotes_ligatures_width(void **state) {
    (void)state;
    FIXES_TO("\u201chere\u2019s a test\u201d \u02bc\u201b\u201f", "\"here's a test\" ''\"");
    FIXES_TO("\u00abnot these\u00bb \u2032", "\u00abnot these\u00bb \u2032");
    FIXES_TO("\ufb02u\ufb03e\ufb06 \u0133 \u01c4", "fluffiest ij D\u017d");
    FIXES_TO("\ufb05", "\u017ft");
    FIXES_TO("\u00e6 \u0153", "\u00e6 \u0153");   // kept: often intended
    FIXES_TO("\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33", "LOUD NOISES");
    FIXES_TO("\uff35\uff80\uff70\uff9d", "U\u30bf\u30fc\u30f3");
    FIXES_TO("\uff8a\uff9f", "\u30d1");   // halfwidth katakana + sound mark, composed by NFC
}

static void test_breaks_controls_escapes(void **state) {
    (void)state;
    FIXES_TO("a\r\nb\rc\u2028d\u2029e\r\r\nf", "a\nb\nc\nd\ne\n\nf");
    FIXES_TO("\x1b[36;44mblue\x1b[0m \x1b[1mbold", "blue bold");
    FIXES_TO("\x1b[12;x \x1b]0;t\x07 \x1b[1", " ]0;t [1");   // only ESC [ digits/; letter
    FIXES_TO("a\x01\x08\x0b\x0e\x1f\x7f b\t\x0c", "a b\t\x0c");
    FIXES_TO("\ufeffx\u206ay\ufff9\ufffc\ufffd", "xy\ufffd");
    FIXES_TO("\u200d\u200e\u202e\U000e0041", "\u200d\u200e\u202e\U000e0041");   // left alone
}

static void test_normalization_surrogates(void **state) {
    (void)state;
    FIXES_TO("cafe\u0301 A\u030a \u212b", "caf\u00e9 \u00c5 \u00c5");
    FIXES_TO("a\u0323\u0301", "\u1ea1\u0301");
    // surrogates can only come as code points (a Python str holds them; UTF-8 does not)
    uint32_t s[] = {'x', 0xD83D, 0xDCA9, 0xDCA9, 0xD83D, 'y'};
    uint32_t *out;
    size_t n;
    assert_int_equal(vlt_ftfy_fix_text(s, 6, &out, &n), 0);
    uint32_t want[] = {'x', 0x1F4A9, 0xFFFD, 0xFFFD, 'y'};
    assert_int_equal(n, 5);
    assert_memory_equal(out, want, sizeof want);
    free(out);
    assert_int_equal(vlt_ftfy_fix_text(s, 0, &out, &n), 0);
    assert_non_null(out);
    assert_int_equal(n, 0);
    free(out);
}

static void test_mojibake(void **state) {
    (void)state;
    FIXES_TO("\u00e2\u0153\u201d No problems", "\u2714 No problems");
    FIXES_TO("sch\u00c3\u00b6n caf\u00c3\u00a9", "sch\u00f6n caf\u00e9");
    FIXES_TO("&macr;\\_(\u00e3\xc2\x83\xc2\x84)_/&macr;", "\u00af\\_(\u30c4)_/\u00af");
    FIXES_TO("voil\u00c3 le travail", "voil\u00e0 le travail");            // restore_byte_a0
    FIXES_TO("\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd", "\" like this \ufffd");   // lossy
    FIXES_TO("\u00c3\u0192\u00c2\u00a9", "\u00e9");                           // double
    FIXES_TO("\u00d0\u0178\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a", "\u041f\u0440\u0438\u0432\u0435\u0442");
    FIXES_TO("\u0432\u0402\u045a", "\"");                                   // windows-1251, then uncurled
    FIXES_TO("The Mona Lisa doesn\u00c3\u0192\u00c2\u00a2\u00c3\u00a2\u00e2\u20ac\u0161\u00c2\u00ac\u00c3\u00a2\u00e2\u20ac\u017e\u00c2\u00a2t have eyebrows.",
             "The Mona Lisa doesn't have eyebrows.");
    // partial: a sequence inside text that cannot be re-encoded as a whole
    FIXES_TO("\u2714 caf\u00c3\u00a9 \u0444", "\u2714 caf\u00e9 \u0444");
    // C1 controls read as windows-1252
    FIXES_TO("\xc2\x93quoted\xc2\x94 \xc2\x80", "\"quoted\" \u20ac");
    // text that only looks odd is left alone
    FIXES_TO("\u00c5 la carte, 5\u00b0C, \u00a35, na\u00efve", "\u00c5 la carte, 5\u00b0C, \u00a35, na\u00efve");
    FIXES_TO("\u00bfQu\u00e9? \u00a1S\u00ed!", "\u00bfQu\u00e9? \u00a1S\u00ed!");
    // is_bad on its own
    uint32_t a[] = {0xC3, 0xA9};
    uint32_t b[] = {'c', 'a', 'f', 0xE9};
    assert_true(vlt_ftfy_is_bad(a, 2));
    assert_false(vlt_ftfy_is_bad(b, 4));
    assert_false(vlt_ftfy_is_bad(b, 0));
    // the one alternative that alone flags ".Â " (Â encoding itself after punctuation)
    uint32_t c[] = {'x', '.', 0xC2, ' ', 'y'}, d[] = {'x', '.', 0xC2, 'y'};
    assert_true(vlt_ftfy_is_bad(c, 5));
    assert_false(vlt_ftfy_is_bad(d, 4));
}

// --- robustness -------------------------------------------------------------------------------

static int valid_utf8(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t b = p[i];
        size_t len = b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
        if (!len || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80) return 0;
        if (len == 3 && b == 0xED && p[i + 1] >= 0xA0) return 0;   // no surrogates
        i += len;
    }
    return 1;
}

// Bytes that are not UTF-8 read as U+FFFD (as Python's errors="replace"), and random bytes of
// any kind give valid UTF-8 without crashing (the sanitizer build checks the reads).
static void test_invalid_utf8(void **state) {
    (void)state;
    const char in[] = "a\xff" "b\xc3" "c\xe2\x82" "d\xed\xa0\x80" "e\xf0\x9f\x98" "f\xc0\x80";
    size_t n;
    char *r = vlt_ftfy_fix_utf8(in, sizeof in - 1, &n);
    assert_non_null(r);
    assert_string_equal(r, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd" "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                           "e\xef\xbf\xbd" "f\xef\xbf\xbd\xef\xbf\xbd");
    free(r);
    r = vlt_ftfy_fix_utf8("", 0, &n);
    assert_non_null(r);
    assert_int_equal(n, 0);
    free(r);

    // seeded random bytes, biased to the bytes mojibake is made of
    uint64_t x = 0x9E3779B97F4A7C15ull;
    static const uint8_t pool[] = {0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9, 0xE2, 0x80, 0x82, 0x84, 0x94, 0x9C,
                                   0xA0, 0xA9, 0xAC, 0xBD, 0xED, 0xC0, 0xF0, 0x9F, 0x1A, '?', ' ', '&',
                                   '#', ';', '<', '\n', '\r', 0x1B, '[', 'a', 'x'};
    uint8_t buf[300];
    for (int it = 0; it < 3000; it++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t len = (size_t)(x % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            buf[i] = (x >> 8) % 3 ? pool[(x >> 16) % sizeof pool] : (uint8_t)(x >> 24);
        }
        r = vlt_ftfy_fix_utf8((const char *)buf, len, &n);
        assert_non_null(r);
        assert_true(valid_utf8((const uint8_t *)r, n));
        assert_int_equal(strlen(r), n);   // U+0000 is a control character ftfy removes
        free(r);
    }
    // a long text (more than one stack-sized buffer, many segments)
    size_t big = 200000;
    char *t = malloc(big + 1);
    static const char unit[] = "caf\xc3\x83\xc2\xa9 &amp; \xe2\x80\x9cq\xe2\x80\x9d\n";
    for (size_t i = 0; i < big; i++) t[i] = unit[i % (sizeof unit - 1)];
    t[big] = '\0';
    r = vlt_ftfy_fix_utf8(t, big, &n);
    assert_non_null(r);
    assert_true(valid_utf8((const uint8_t *)r, n));
    assert_non_null(strstr(r, "caf\xc3\xa9 & \"q\"\n"));
    free(r);
    free(t);
}

// The tokenizer runs ftfy first: ids of a fixed text equal the ids of its repair.
static void test_tokenizer_hook(void **state) {
    (void)state;
    int32_t a[VLT_TOKENIZER_CONTEXT], b[VLT_TOKENIZER_CONTEXT];
    int na = vlt_tokenizer_encode(g_tok, "caf\u00c3\u00a9 \u201cbest\u201d \ufb01sh &amp; chips", a, VLT_TOKENIZER_CONTEXT);
    int nb = vlt_tokenizer_encode(g_tok, "caf\u00e9 \"best\" fish & chips", b, VLT_TOKENIZER_CONTEXT);
    assert_true(na > 2);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, sizeof a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_badness_fixture),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_quotes_ligatures_width),
        cmocka_unit_test(test_breaks_controls_escapes),
        cmocka_unit_test(test_normalization_surrogates),
        cmocka_unit_test(test_mojibake),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_tokenizer_hook),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
