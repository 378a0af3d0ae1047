// test_data_tokenizer.c — the CLIP tokenizer against open_clip.tokenize on the fixture made by
// scripts/reference/make_tokenizer_fixture.py (every string, 100%), decoding against open_clip's
// decode, truncation, special tokens, invalid UTF-8, bad vocabulary files, concurrent encoding.
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

#include "data/tokenizer.h"

#define FIXTURE "tests/data/data/tokenizer_fixture.tsv"
#define MAX_IDS 128

typedef struct {
    int ctx, ftfy;
    char kind[32];
    char *text;                 // unescaped, NUL-terminated
    int n_ids, n_raw;
    int32_t ids[MAX_IDS];       // open_clip.tokenize
    int32_t raw[MAX_IDS];       // the same without ftfy (what vlt gave before data/ftfy.c)
    char *decoded;              // open_clip's decode of raw[1 .. n_raw - 1)
} row;

typedef struct {
    int n;
    row *rows;
} fixture;

static vlt_tokenizer *g_tok;
static fixture g_fix;

// Undoes the fixture's escaping (\\ \t \n \r \xHH) in place.
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\') { *w++ = *r; continue; }
        r++;
        if (*r == 't') *w++ = '\t';
        else if (*r == 'n') *w++ = '\n';
        else if (*r == 'r') *w++ = '\r';
        else if (*r == 'x') {
            unsigned v;
            sscanf(r + 1, "%2x", &v);
            *w++ = (char)v;
            r += 2;
        } else *w++ = *r;
    }
    *w = '\0';
}

static int parse_ids(char *s, int32_t *ids) {
    int n = 0;
    for (char *tok = strtok(s, " "); tok; tok = strtok(NULL, " ")) {
        assert_true(n < MAX_IDS);
        ids[n++] = (int32_t)atoi(tok);
    }
    return n;
}

static void fixture_load(fixture *f) {
    FILE *fp = fopen(FIXTURE, "r");
    if (!fp) fail_msg("cannot open %s (run tests from the repository root)", FIXTURE);
    size_t cap = 4096, len;
    char *line = NULL;
    size_t lcap = 0;
    f->rows = calloc(cap, sizeof(row));
    f->n = 0;
    while ((long)(len = (size_t)getline(&line, &lcap, fp)) > 0) {
        if (line[0] == '#') continue;
        if (line[len - 1] == '\n') line[len - 1] = '\0';
        char *col[7];
        char *p = line;
        for (int c = 0; c < 7; c++) {
            col[c] = p;
            p = strchr(p, '\t');
            if (c < 6) {
                assert_non_null(p);
                *p++ = '\0';
            }
        }
        assert_true((size_t)f->n < cap);
        row *r = &f->rows[f->n++];
        r->ctx = atoi(col[0]);
        r->ftfy = atoi(col[1]);
        snprintf(r->kind, sizeof r->kind, "%s", col[2]);
        unescape(col[3]);
        r->text = strdup(col[3]);
        unescape(col[6]);
        r->decoded = strdup(col[6]);
        r->n_ids = parse_ids(col[4], r->ids);
        if (strcmp(col[5], "=") == 0) {
            r->n_raw = r->n_ids;
            memcpy(r->raw, r->ids, sizeof r->ids);
        } else {
            r->n_raw = parse_ids(col[5], r->raw);
        }
    }
    free(line);
    fclose(fp);
}

static int setup(void **state) {
    (void)state;
    if (vlt_tokenizer_load(NULL, &g_tok) != VLT_OK) {
        fprintf(stderr, "tokenizer load: %s\n", vlt_error_message());
        return -1;
    }
    fixture_load(&g_fix);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < g_fix.n; i++) {
        free(g_fix.rows[i].text);
        free(g_fix.rows[i].decoded);
    }
    free(g_fix.rows);
    vlt_tokenizer_free(g_tok);
    return 0;
}

static void print_ids(const char *what, const int32_t *ids, int n) {
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n");
}

// Encodes r->text; true when the ids equal `want` followed by zero padding.
static int encode_matches(const row *r, const int32_t *want, int n_want, int verbose) {
    int32_t ids[MAX_IDS + 8];
    int n = vlt_tokenizer_encode(g_tok, r->text, ids, r->ctx);
    int ok = n == n_want && memcmp(ids, want, sizeof(int32_t) * (size_t)n) == 0;
    for (int i = n > 0 ? n : 0; i < r->ctx; i++) ok = ok && ids[i] == 0;
    if (!ok && verbose) {
        fprintf(stderr, "mismatch (%s, ctx %d): \"%s\"\n", r->kind, r->ctx, r->text);
        print_ids("want", want, n_want);
        print_ids("got ", ids, n > 0 ? n : 0);
    }
    return ok;
}

// Every fixture string: vlt's ids are open_clip's (with ftfy.fix_text, data/ftfy.c), both
// where ftfy leaves the text alone and where it changes it. 100% in both groups.
static void test_fixture_ids(void **state) {
    (void)state;
    int plain = 0, plain_ok = 0, fixed = 0, fixed_ok = 0, bad = 0;
    for (int i = 0; i < g_fix.n; i++) {
        const row *r = &g_fix.rows[i];
        int ok = encode_matches(r, r->ids, r->n_ids, bad < 10);
        bad += !ok;
        if (r->ftfy) {
            fixed++;
            fixed_ok += ok;
        } else {
            plain++;
            plain_ok += ok;
        }
    }
    fprintf(stderr, "tokenizer fixture: %d/%d strings ftfy leaves alone and %d/%d strings ftfy changes "
            "match open_clip\n", plain_ok, plain, fixed_ok, fixed);
    assert_true(g_fix.n >= 2000);
    assert_int_equal(plain_ok, plain);
    assert_int_equal(fixed_ok, fixed);
}

// decode(encode(s)) equals open_clip's decode of the same ids, for every fixture string.
static void test_fixture_decode(void **state) {
    (void)state;
    int bad = 0;
    size_t cap = 1 << 16;
    char *out = malloc(cap);
    for (int i = 0; i < g_fix.n; i++) {
        const row *r = &g_fix.rows[i];
        assert_int_equal(vlt_tokenizer_decode(g_tok, r->raw, r->n_raw, out, cap), VLT_OK);
        if (strcmp(out, r->decoded) != 0) {
            if (bad++ < 10) fprintf(stderr, "decode mismatch: \"%s\" vs \"%s\"\n", out, r->decoded);
        }
    }
    free(out);
    assert_int_equal(bad, 0);
}

static void test_vocabulary(void **state) {
    (void)state;
    assert_int_equal(vlt_tokenizer_vocab_size(g_tok), 49408);
    assert_string_equal(vlt_tokenizer_token(g_tok, 0), "!");
    assert_string_equal(vlt_tokenizer_token(g_tok, 256), "!</w>");
    assert_string_equal(vlt_tokenizer_token(g_tok, 255), "\xc5\x83");   // byte 0xAD -> U+0143
    assert_string_equal(vlt_tokenizer_token(g_tok, 512), "in");       // merge 0 is "i n"
    assert_string_equal(vlt_tokenizer_token(g_tok, VLT_TOKEN_SOT), "<start_of_text>");
    assert_string_equal(vlt_tokenizer_token(g_tok, VLT_TOKEN_EOT), "<end_of_text>");
    assert_null(vlt_tokenizer_token(g_tok, 49408));
    assert_null(vlt_tokenizer_token(g_tok, -1));
}

static void test_encode_shapes(void **state) {
    (void)state;
    int32_t ids[80];
    memset(ids, 0x7f, sizeof ids);
    assert_int_equal(vlt_tokenizer_encode(g_tok, "", ids, 77), 2);
    assert_int_equal(ids[0], VLT_TOKEN_SOT);
    assert_int_equal(ids[1], VLT_TOKEN_EOT);
    for (int i = 2; i < 77; i++) assert_int_equal(ids[i], 0);
    assert_int_equal(ids[77], 0x7f7f7f7f);   // nothing written past context_len
    assert_int_equal(vlt_tokenizer_encode(g_tok, NULL, ids, 77), 2);
    assert_int_equal(vlt_tokenizer_encode(g_tok, "a", ids, 1), -1);
    assert_int_equal(vlt_error_code(), VLT_ERR_ARG);
    assert_int_equal(vlt_tokenizer_encode(NULL, "a", ids, 77), -1);
    // context 2: SOT, EOT whatever the text
    assert_int_equal(vlt_tokenizer_encode(g_tok, "a dog on a beach", ids, 2), 2);
    assert_int_equal(ids[0], VLT_TOKEN_SOT);
    assert_int_equal(ids[1], VLT_TOKEN_EOT);
    // truncation keeps EOT last and the first 75 tokens
    char text[1200] = "";
    for (int i = 0; i < 200; i++) strcat(text, "dog ");
    assert_int_equal(vlt_tokenizer_encode(g_tok, text, ids, 77), 77);
    assert_int_equal(ids[76], VLT_TOKEN_EOT);
    for (int i = 1; i < 76; i++) assert_int_equal(ids[i], 1929);   // "dog</w>"
}

// Invalid UTF-8 reads as U+FFFD, as Python's decode(errors="replace") would.
static void test_invalid_utf8(void **state) {
    (void)state;
    int32_t a[77], b[77];
    const char *bad[] = {"\xff", "\xe2\x82", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80"};
    const int n_fffd[] = {1, 1, 2, 3, 4, 1};
    for (int i = 0; i < 6; i++) {
        char want[32] = "";
        for (int k = 0; k < n_fffd[i]; k++) strcat(want, "\xef\xbf\xbd");
        int na = vlt_tokenizer_encode(g_tok, bad[i], a, 77);
        int nb = vlt_tokenizer_encode(g_tok, want, b, 77);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, sizeof a);
    }
}

static void test_decode(void **state) {
    (void)state;
    char out[256];
    int32_t ids[77];
    int n = vlt_tokenizer_encode(g_tok, "A Dog, on the beach!", ids, 77);
    assert_int_equal(vlt_tokenizer_decode(g_tok, ids, 77, out, sizeof out), VLT_OK);
    assert_string_equal(out, "a dog , on the beach ! ");
    // without EOT, trailing zeros are padding; a zero before other ids is the token "!"
    int32_t no_eot[] = {VLT_TOKEN_SOT, 1929, 0, 1929, 0, 0};
    assert_int_equal(vlt_tokenizer_decode(g_tok, no_eot, 6, out, sizeof out), VLT_OK);
    assert_string_equal(out, "dog !dog ");
    // stops at EOT
    int32_t eot_mid[] = {1929, VLT_TOKEN_EOT, 1929};
    assert_int_equal(vlt_tokenizer_decode(g_tok, eot_mid, 3, out, sizeof out), VLT_OK);
    assert_string_equal(out, "dog ");
    // errors
    int32_t bad[] = {1929, 49408};
    assert_int_equal(vlt_tokenizer_decode(g_tok, bad, 2, out, sizeof out), VLT_ERR_ARG);
    assert_int_equal(vlt_tokenizer_decode(g_tok, ids, n, out, 5), VLT_ERR_NOMEM);
    assert_string_equal(out, "a do");
    assert_int_equal(vlt_tokenizer_decode(g_tok, ids, 0, out, sizeof out), VLT_OK);
    assert_string_equal(out, "");
}

// Lower-case words and single spaces decode back to the text plus a trailing space.
static void test_round_trip(void **state) {
    (void)state;
    char out[4096], want[4096];
    int32_t ids[77];
    int checked = 0;
    for (int i = 0; i < g_fix.n; i++) {
        const char *t = g_fix.rows[i].text;
        int simple = t[0] != '\0' && strlen(t) < 200;
        for (const char *p = t; *p && simple; p++)
            simple = (*p >= 'a' && *p <= 'z') || (*p == ' ' && p[1] != ' ' && p[1] && p != t);
        if (!simple) continue;
        int n = vlt_tokenizer_encode(g_tok, t, ids, 77);
        if (n == 77) continue;
        assert_int_equal(vlt_tokenizer_decode(g_tok, ids, n, out, sizeof out), VLT_OK);
        snprintf(want, sizeof want, "%s ", t);
        assert_string_equal(out, want);
        checked++;
    }
    assert_true(checked > 100);
}

static vlt_status write_gz(const char *path, const char *text, size_t n) {
    gzFile f = gzopen(path, "wb");
    if (!f) return VLT_ERR_IO;
    gzwrite(f, text, (unsigned)n);
    gzclose(f);
    return VLT_OK;
}

static void test_bad_vocabulary(void **state) {
    (void)state;
    vlt_tokenizer *t = (vlt_tokenizer *)1;
    assert_int_equal(vlt_tokenizer_load("/nonexistent/vocab.txt.gz", &t), VLT_ERR_IO);
    assert_null(t);
    assert_non_null(strstr(vlt_error_message(), "/nonexistent/vocab.txt.gz"));
    char path[] = "/tmp/vlt_tok_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    // too few merges
    const char *few = "#version: 0.2\ni n\nt h\n";
    assert_int_equal(write_gz(path, few, strlen(few)), VLT_OK);
    assert_int_equal(vlt_tokenizer_load(path, &t), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "merges"));
    // a merge of symbols no earlier line made
    const char *bad = "#version: 0.2\nin g\n";
    assert_int_equal(write_gz(path, bad, strlen(bad)), VLT_OK);
    assert_int_equal(vlt_tokenizer_load(path, &t), VLT_ERR_FORMAT);
    // three fields
    const char *three = "#version: 0.2\ni n g\n";
    assert_int_equal(write_gz(path, three, strlen(three)), VLT_OK);
    assert_int_equal(vlt_tokenizer_load(path, &t), VLT_ERR_FORMAT);
    // a truncated gzip stream
    FILE *src = fopen("assets/bpe_simple_vocab_16e6.txt.gz", "rb");
    assert_non_null(src);
    char buf[4096];
    size_t got = fread(buf, 1, sizeof buf, src);
    fclose(src);
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, got, f);
    fclose(f);
    assert_int_not_equal(vlt_tokenizer_load(path, &t), VLT_OK);
    assert_null(t);
    remove(path);
}

typedef struct {
    int start, step;
    int mismatches;
} thread_arg;

static void *encode_thread(void *p) {
    thread_arg *a = p;
    for (int rep = 0; rep < 3; rep++)
        for (int i = a->start; i < g_fix.n; i += a->step)
            a->mismatches += !encode_matches(&g_fix.rows[i], g_fix.rows[i].ids, g_fix.rows[i].n_ids, 0);
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
        cmocka_unit_test(test_vocabulary),
        cmocka_unit_test(test_fixture_ids),
        cmocka_unit_test(test_fixture_decode),
        cmocka_unit_test(test_encode_shapes),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_vocabulary),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests_name("data_tokenizer", tests, setup, teardown);
}
