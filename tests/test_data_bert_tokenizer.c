// test_data_bert_tokenizer.c — the BERT WordPiece tokenizer against transformers' BertTokenizer
// on the fixture made by scripts/reference/make_bert_tokenizer_fixture.py (every string, for an
// uncased and a cased vocabulary, 100%: all ids, the truncated and padded input_ids with their
// attention mask, the decoded tokens), NFD / NFC against Python's unicodedata, the edge cases
// named in data/bert_tokenizer.h, bad vocabulary files, concurrent encoding.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/bert_tokenizer.h"
#include "data/unicode_norm.h"

#define DIR "tests/data/bert/"
#define FIXTURE DIR "fixture.tsv.gz"
#define NORM DIR "unicode_norm.tsv.gz"

typedef struct {
    int cased, max_len, n_all, n_in, mask_ones;
    char kind[32];
    char *text;          // unescaped bytes, NUL-terminated (the fixture has no NUL in a text)
    int32_t *all;        // BertTokenizer.encode(text, add_special_tokens=False)
    int32_t *input;      // tokenizer(text, max_length, truncation, padding="max_length").input_ids
    char *decoded;       // convert_tokens_to_string(convert_ids_to_tokens(all))
} row;

static vlt_bert_tokenizer *g_tok[2];   // uncased, cased
static row *g_rows;
static int g_n;

// Undoes the fixture's escaping (\\ and \xHH) in place.
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\') { *w++ = *r; continue; }
        r++;
        if (*r == 'x') {
            unsigned v;
            assert_int_equal(sscanf(r + 1, "%2x", &v), 1);
            *w++ = (char)v;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static int32_t *parse_ids(const char *s, int *n) {
    int cap = 16, k = 0;
    int32_t *v = malloc(sizeof(int32_t) * (size_t)cap);
    for (const char *p = s; *p;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p) break;
        if (k == cap) v = realloc(v, sizeof(int32_t) * (size_t)(cap *= 2));
        v[k++] = (int32_t)x;
        p = end;
    }
    *n = k;
    return v;
}

// Reads a gzip text file's lines (without "\n"); returns the count.
static int read_lines(const char *path, char ***lines) {
    gzFile f = gzopen(path, "rb");
    if (!f) fail_msg("cannot open %s (run tests from the repository root)", path);
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    int got;
    while ((got = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    gzclose(f);
    buf = realloc(buf, n + 1);
    buf[n] = '\0';
    int count = 0, lc = 1024;
    char **v = malloc(sizeof(char *) * (size_t)lc);
    for (char *p = buf; *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = '\0';
        if (count == lc) v = realloc(v, sizeof(char *) * (size_t)(lc *= 2));
        v[count++] = strdup(p);
        if (!e) break;
        p = e + 1;
    }
    free(buf);
    *lines = v;
    return count;
}

static int setup(void **state) {
    (void)state;
    if (vlt_bert_tokenizer_load(DIR "vocab_uncased.txt", 1, &g_tok[0]) != VLT_OK ||
        vlt_bert_tokenizer_load(DIR "vocab_cased.txt", 0, &g_tok[1]) != VLT_OK) {
        fprintf(stderr, "BERT vocabulary: %s\n", vlt_error_message());
        return -1;
    }
    char **lines;
    int n = read_lines(FIXTURE, &lines);
    g_rows = calloc((size_t)n, sizeof(row));
    for (int i = 0; i < n; i++) {
        char *line = lines[i];
        if (line[0] == '#' || line[0] == '\0') {
            free(line);
            continue;
        }
        char *col[8];
        char *p = line;
        for (int c = 0; c < 8; c++) {
            col[c] = p;
            p = strchr(p, '\t');
            if (c < 7) {
                if (!p) fail_msg("%s line %d: fewer than 8 columns", FIXTURE, i + 1);
                *p++ = '\0';
            }
        }
        row *r = &g_rows[g_n++];
        r->cased = strcmp(col[0], "cased") == 0;
        snprintf(r->kind, sizeof r->kind, "%s", col[1]);
        r->max_len = atoi(col[2]);
        unescape(col[3]);
        r->text = strdup(col[3]);
        r->all = parse_ids(col[4], &r->n_all);
        r->input = parse_ids(col[5], &r->n_in);
        r->mask_ones = atoi(col[6]);
        unescape(col[7]);
        r->decoded = strdup(col[7]);
        free(line);
    }
    free(lines);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < g_n; i++) {
        free(g_rows[i].text);
        free(g_rows[i].all);
        free(g_rows[i].input);
        free(g_rows[i].decoded);
    }
    free(g_rows);
    vlt_bert_tokenizer_free(g_tok[0]);
    vlt_bert_tokenizer_free(g_tok[1]);
    return 0;
}

static void print_ids(const char *what, const int32_t *ids, int n) {
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n");
}

// All ids, and the encoded input_ids + mask, equal BertTokenizer's.
static int row_matches(const row *r, int verbose) {
    const vlt_bert_tokenizer *t = g_tok[r->cased];
    int32_t *all = malloc(sizeof(int32_t) * (size_t)(r->n_all + 1));
    int n = vlt_bert_tokenizer_tokenize(t, r->text, all, r->n_all + 1);
    int ok = n == r->n_all && memcmp(all, r->all, sizeof(int32_t) * (size_t)n) == 0;
    int32_t ids[600], mask[600];
    assert_true(r->max_len <= 600 && r->n_in == r->max_len);
    int used = vlt_bert_tokenizer_encode(t, r->text, ids, mask, r->max_len);
    int enc_ok = used == r->mask_ones && memcmp(ids, r->input, sizeof(int32_t) * (size_t)r->max_len) == 0;
    for (int i = 0; i < r->max_len; i++) enc_ok = enc_ok && mask[i] == (i < r->mask_ones);
    if ((!ok || !enc_ok) && verbose) {
        fprintf(stderr, "mismatch (%s, %s, max_len %d): \"%s\"\n", r->cased ? "cased" : "uncased", r->kind,
                r->max_len, r->text);
        print_ids("want", r->all, r->n_all);
        print_ids("got ", all, n > 0 && n <= r->n_all + 1 ? n : 0);
        if (!enc_ok) print_ids("encoded", ids, used > 0 ? used : 0);
    }
    free(all);
    return ok && enc_ok;
}

static void test_fixture(void **state) {
    (void)state;
    int total[2] = {0, 0}, good[2] = {0, 0}, bad = 0;
    for (int i = 0; i < g_n; i++) {
        const row *r = &g_rows[i];
        int ok = row_matches(r, bad < 10);
        bad += !ok;
        total[r->cased]++;
        good[r->cased] += ok;
    }
    fprintf(stderr, "BERT tokenizer fixture: uncased %d/%d, cased %d/%d strings equal BertTokenizer\n", good[0],
            total[0], good[1], total[1]);
    assert_true(total[0] >= 3000 && total[1] >= 3000);
    assert_int_equal(good[0], total[0]);
    assert_int_equal(good[1], total[1]);
}

// The fixture exercises what it claims: whole words, ## pieces, [UNK], truncation.
static void test_fixture_coverage(void **state) {
    (void)state;
    for (int c = 0; c < 2; c++) {
        int unk = 0, cont = 0, trunc = 0, n = 0;
        vlt_bert_specials sp = vlt_bert_tokenizer_specials(g_tok[c]);
        for (int i = 0; i < g_n; i++) {
            const row *r = &g_rows[i];
            if (r->cased != c) continue;
            n++;
            int u = 0, h = 0;
            for (int k = 0; k < r->n_all; k++) {
                u |= r->all[k] == sp.unk;
                h |= strncmp(vlt_bert_tokenizer_token(g_tok[c], r->all[k]), "##", 2) == 0;
            }
            unk += u;
            cont += h;
            trunc += r->n_all > r->max_len - 2;
        }
        assert_true(unk > n / 20 && cont > n / 10 && trunc > n / 20);
    }
}

static void test_fixture_decode(void **state) {
    (void)state;
    int bad = 0;
    size_t cap = 1 << 16;
    char *out = malloc(cap);
    for (int i = 0; i < g_n; i++) {
        const row *r = &g_rows[i];
        assert_int_equal(vlt_bert_tokenizer_decode(g_tok[r->cased], r->all, r->n_all, out, cap), VLT_OK);
        if (strcmp(out, r->decoded) != 0 && bad++ < 10)
            fprintf(stderr, "decode mismatch: \"%s\" vs \"%s\"\n", out, r->decoded);
    }
    free(out);
    assert_int_equal(bad, 0);
}

static size_t parse_hex(char *s, uint32_t *out) {
    size_t n = 0;
    for (char *tok = strtok(s, " "); tok; tok = strtok(NULL, " ")) out[n++] = (uint32_t)strtoul(tok, NULL, 16);
    return n;
}

// NFD and NFC equal unicodedata.normalize on every code point they change and on combining
// sequences.
static void test_unicode_norm(void **state) {
    (void)state;
    char **lines;
    int n = read_lines(NORM, &lines), rows = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        if (lines[i][0] == '#' || lines[i][0] == '\0') {
            free(lines[i]);
            continue;
        }
        char *c1 = strchr(lines[i], '\t');
        assert_non_null(c1);
        *c1++ = '\0';
        char *c2 = strchr(c1, '\t');
        assert_non_null(c2);
        *c2++ = '\0';
        uint32_t s[64], nfd[64], nfc[64], got[256];
        size_t ns = parse_hex(lines[i], s), nd = parse_hex(c1, nfd), nc = parse_hex(c2, nfc);
        size_t gd = vlt_unicode_nfd(s, ns, got);
        int ok = gd == nd && memcmp(got, nfd, nd * sizeof(uint32_t)) == 0;
        size_t gc = vlt_unicode_nfc(s, ns, got);
        ok = ok && gc == nc && memcmp(got, nfc, nc * sizeof(uint32_t)) == 0;
        if (!ok && bad++ < 10) fprintf(stderr, "normalization mismatch for %X...\n", s[0]);
        rows++;
        free(lines[i]);
    }
    free(lines);
    assert_true(rows > 5000);
    assert_int_equal(bad, 0);
    // a few categories by hand (Python's unicodedata.category)
    assert_int_equal(vlt_unicode_gc('a'), VLT_GC_LL);
    assert_int_equal(vlt_unicode_gc(0x378), VLT_GC_CN);
    assert_int_equal(vlt_unicode_gc(0x200B), VLT_GC_CF);
    assert_int_equal(vlt_unicode_gc(0xE000), VLT_GC_CO);
    assert_int_equal(vlt_unicode_gc(0x3000), VLT_GC_ZS);
    assert_int_equal(vlt_unicode_gc(0x301), VLT_GC_MN);
    assert_int_equal(vlt_unicode_gc(0x2028), VLT_GC_ZL);
    assert_int_equal(vlt_unicode_gc(0x110000), VLT_GC_CN);
}

// Encodes text with the uncased vocabulary into token strings joined by '|'.
static void pieces(const char *text, char *out, size_t size) {
    int32_t ids[256];
    int n = vlt_bert_tokenizer_tokenize(g_tok[0], text, ids, 256);
    assert_true(n >= 0 && n <= 256);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i) strncat(out, "|", size - strlen(out) - 1);
        strncat(out, vlt_bert_tokenizer_token(g_tok[0], ids[i]), size - strlen(out) - 1);
    }
}

static void test_behaviour(void **state) {
    (void)state;
    char out[2048];
    pieces("Hello, WORLD!", out, sizeof out);
    // punctuation split off; lower-cased
    assert_non_null(strstr(out, "|,|"));
    assert_int_equal(out[strlen(out) - 1], '!');
    pieces("Café naïve", out, sizeof out);   // accents stripped
    assert_string_equal(out, "cafe|naive");
    pieces("猫坐", out, sizeof out);          // CJK ideographs one per token
    assert_string_equal(out, "猫|坐");
    pieces("a[MASK]b [cls]", out, sizeof out);   // the special string stays whole; [cls] does not
    assert_string_equal(out, "a|[MASK]|b|[|cls|]");
    pieces("bus\x01\xe2\x80\x8b""es", out, sizeof out);   // control and format characters vanish
    char want[64];
    char joined[64];
    pieces("buses", want, sizeof want);
    snprintf(joined, sizeof joined, "%s", out);
    assert_string_equal(joined, want);
    // invalid UTF-8 reads as U+FFFD, which is dropped
    int32_t a[32], b[32];
    int na = vlt_bert_tokenizer_tokenize(g_tok[0], "dog\xff\xed\xa0\x80 cat\xc3", a, 32);
    int nb = vlt_bert_tokenizer_tokenize(g_tok[0], "dog cat", b, 32);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, sizeof(int32_t) * (size_t)na);
}

static void test_encode_shapes(void **state) {
    (void)state;
    vlt_bert_specials sp = vlt_bert_tokenizer_specials(g_tok[0]);
    int32_t ids[40], mask[40];
    memset(ids, 0x7f, sizeof ids);
    assert_int_equal(vlt_bert_tokenizer_encode(g_tok[0], "", ids, mask, 32), 2);
    assert_int_equal(ids[0], sp.cls);
    assert_int_equal(ids[1], sp.sep);
    for (int i = 2; i < 32; i++) assert_true(ids[i] == sp.pad && mask[i] == 0);
    assert_true(mask[0] == 1 && mask[1] == 1);
    assert_int_equal(ids[32], 0x7f7f7f7f);   // nothing written past max_len
    assert_int_equal(vlt_bert_tokenizer_encode(g_tok[0], NULL, ids, NULL, 32), 2);
    assert_int_equal(vlt_bert_tokenizer_encode(g_tok[0], "a", ids, mask, 1), -1);
    assert_int_equal(vlt_error_code(), VLT_ERR_ARG);
    assert_int_equal(vlt_bert_tokenizer_encode(NULL, "a", ids, mask, 8), -1);
    assert_int_equal(vlt_bert_tokenizer_encode(g_tok[0], "a dog on a beach", ids, mask, 2), 2);
    assert_true(ids[0] == sp.cls && ids[1] == sp.sep);
    // truncation keeps [SEP] last and the first max_len - 2 tokens
    char text[1200] = "";
    for (int i = 0; i < 200; i++) strcat(text, "dog ");
    int32_t dog = vlt_bert_tokenizer_id(g_tok[0], "dog");
    assert_true(dog >= 0);
    assert_int_equal(vlt_bert_tokenizer_tokenize(g_tok[0], text, NULL, 0), 200);
    assert_int_equal(vlt_bert_tokenizer_encode(g_tok[0], text, ids, mask, 40), 40);
    assert_int_equal(ids[39], sp.sep);
    for (int i = 1; i < 39; i++) assert_true(ids[i] == dog && mask[i] == 1);
}

static void test_decode(void **state) {
    (void)state;
    char out[256];
    int32_t ids[32];
    int n = vlt_bert_tokenizer_encode(g_tok[0], "Dogs, on the beach!", ids, NULL, 32);
    assert_int_equal(vlt_bert_tokenizer_decode(g_tok[0], ids, 32, out, sizeof out), VLT_OK);
    assert_string_equal(out, "[CLS] dogs , on the beach ! [SEP]");
    int32_t bad[] = {ids[1], vlt_bert_tokenizer_vocab_size(g_tok[0])};
    assert_int_equal(vlt_bert_tokenizer_decode(g_tok[0], bad, 2, out, sizeof out), VLT_ERR_ARG);
    assert_int_equal(vlt_bert_tokenizer_decode(g_tok[0], ids, n, out, 5), VLT_ERR_NOMEM);
    assert_string_equal(out, "[CLS");
    assert_int_equal(vlt_bert_tokenizer_decode(g_tok[0], ids, 0, out, sizeof out), VLT_OK);
    assert_string_equal(out, "");
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
}

// Loads text as a vocabulary; returns the status and keeps the message in msg.
static vlt_status load_text(const char *text, char *msg, size_t size, vlt_bert_tokenizer **out) {
    char path[] = "/tmp/vlt_bert_vocab_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_text(path, text);
    vlt_status s = vlt_bert_tokenizer_load(path, 1, out);
    snprintf(msg, size, "%s", s == VLT_OK ? "" : vlt_error_message());
    assert_non_null(s == VLT_OK ? (void *)msg : strstr(msg, path));   // the message names the file
    remove(path);
    return s;
}

static void test_bad_vocabulary(void **state) {
    (void)state;
    vlt_bert_tokenizer *t = NULL;
    char msg[512];
    assert_int_equal(vlt_bert_tokenizer_load("/nonexistent/vocab.txt", 1, &t), VLT_ERR_IO);
    assert_null(t);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent/vocab.txt"));
    assert_int_equal(load_text("", msg, sizeof msg, &t), VLT_ERR_FORMAT);
    assert_int_equal(load_text("[PAD]\n[CLS]\n[SEP]\n[MASK]\nhello\n", msg, sizeof msg, &t), VLT_ERR_FORMAT);
    assert_non_null(strstr(msg, "[UNK]"));
    assert_int_equal(load_text("[PAD]\n[UNK]\nca\xffz\n[CLS]\n[SEP]\n", msg, sizeof msg, &t), VLT_ERR_FORMAT);
    assert_non_null(strstr(msg, "line 3"));
    assert_int_equal(load_text("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n", msg, sizeof msg, &t), VLT_ERR_FORMAT);
    assert_non_null(strstr(msg, "line 1"));
    assert_null(t);
    // ids are line numbers; a last line without "\n" counts; [MASK] is optional; a token listed
    // twice answers with its last line (BertTokenizer's dict)
    assert_int_equal(load_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\n##c\nab\nx", msg, sizeof msg, &t), VLT_OK);
    assert_int_equal(vlt_bert_tokenizer_vocab_size(t), 8);
    assert_int_equal(vlt_bert_tokenizer_id(t, "ab"), 6);
    assert_int_equal(vlt_bert_tokenizer_id(t, "x"), 7);
    assert_string_equal(vlt_bert_tokenizer_token(t, 4), "ab");
    assert_null(vlt_bert_tokenizer_token(t, 8));
    vlt_bert_specials sp = vlt_bert_tokenizer_specials(t);
    assert_true(sp.pad == 0 && sp.unk == 1 && sp.cls == 2 && sp.sep == 3 && sp.mask == -1);
    int32_t ids[8];
    assert_int_equal(vlt_bert_tokenizer_tokenize(t, "abc AB x [MASK] y", ids, 8), 6);
    int32_t want[] = {6, 5, 6, 7, 1, 1};   // ab ##c, ab (lower-cased), x, [MASK] -> [UNK], y -> [UNK]
    assert_memory_equal(ids, want, sizeof want);
    vlt_bert_tokenizer_free(t);
    // a word of 101 code points is one [UNK]; one of 100 is split into pieces
    assert_int_equal(load_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\naaa\n##a\n", msg, sizeof msg, &t), VLT_OK);
    char w[128];
    memset(w, 'a', 101);
    w[101] = '\0';
    assert_int_equal(vlt_bert_tokenizer_tokenize(t, w, NULL, 0), 1);
    assert_int_equal(vlt_bert_tokenizer_tokenize(t, w, ids, 1), 1);
    assert_int_equal(ids[0], 1);
    w[100] = '\0';
    assert_int_equal(vlt_bert_tokenizer_tokenize(t, w, NULL, 0), 98);   // aaa, then 97 x ##a
    vlt_bert_tokenizer_free(t);
}

typedef struct {
    int start, step, mismatches;
} thread_arg;

static void *encode_thread(void *p) {
    thread_arg *a = p;
    for (int i = a->start; i < g_n; i += a->step) a->mismatches += !row_matches(&g_rows[i], 0);
    return NULL;
}

// Concurrent encode calls on one tokenizer give the serial results.
static void test_threads(void **state) {
    (void)state;
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){i, 3, 0};   // overlapping strides: rows shared between threads
        assert_int_equal(pthread_create(&th[i], NULL, encode_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].mismatches, 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unicode_norm),
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_fixture_coverage),
        cmocka_unit_test(test_fixture_decode),
        cmocka_unit_test(test_behaviour),
        cmocka_unit_test(test_encode_shapes),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_bad_vocabulary),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests_name("data_bert_tokenizer", tests, setup, teardown);
}
