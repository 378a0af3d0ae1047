// fuzz_tokenizer.c — libFuzzer target for the CLIP tokenizer: encodes the input as text at a
// context length taken from its first byte and checks the output's shape (SOT first, EOT last,
// ids in the vocabulary, zero padding), that a longer context gives the same ids as a prefix
// (truncation never changes earlier tokens), that decoding succeeds with valid UTF-8, and decodes
// the input read as raw ids too.
// Build and run: make fuzz (scripts/fuzz.mk); the vocabulary is found as ../../assets from
// build/fuzz, or through $VLT_ASSETS.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"

#define BIG_CTX 4096

static vlt_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (vlt_tokenizer_load(NULL, &g_tok) != VLT_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", vlt_error_message());
        abort();
    }
    return 0;
}

static void check(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", what);
        abort();
    }
}

// True when s is valid UTF-8 (what decode promises to write).
static int valid_utf8(const unsigned char *s) {
    while (*s) {
        int n = *s < 0x80 ? 1 : (*s & 0xE0) == 0xC0 ? 2 : (*s & 0xF0) == 0xE0 ? 3 : (*s & 0xF8) == 0xF0 ? 4 : 0;
        if (!n || (n == 2 && *s < 0xC2)) return 0;
        for (int i = 1; i < n; i++)
            if ((s[i] & 0xC0) != 0x80) return 0;
        s += n;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int ctx = 2 + data[0] % 100;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    int32_t *ids = malloc(sizeof(int32_t) * BIG_CTX), *big = malloc(sizeof(int32_t) * BIG_CTX);
    int n = vlt_tokenizer_encode(g_tok, text, ids, ctx);
    check(n >= 2 && n <= ctx, "count outside [2, ctx]");
    check(ids[0] == VLT_TOKEN_SOT && ids[n - 1] == VLT_TOKEN_EOT, "SOT/EOT misplaced");
    for (int i = 1; i < n - 1; i++) check(ids[i] >= 0 && ids[i] < VLT_TOKENIZER_VOCAB, "id out of range");
    for (int i = n; i < ctx; i++) check(ids[i] == 0, "padding not zero");

    int nb = vlt_tokenizer_encode(g_tok, text, big, BIG_CTX);
    check(nb >= n, "longer context gave fewer tokens");
    check(memcmp(ids, big, sizeof(int32_t) * (size_t)(n - 1)) == 0, "truncation changed earlier tokens");
    if (nb < ctx) check(nb == n && memcmp(ids, big, sizeof(int32_t) * (size_t)n) == 0, "short text differs");

    size_t cap = 16 * (size_t)nb + 64;
    char *out = malloc(cap);
    check(vlt_tokenizer_decode(g_tok, big, nb, out, cap) == VLT_OK, "decode failed");
    check(valid_utf8((const unsigned char *)out), "decode wrote invalid UTF-8");

    // The bytes as ids (any values): decode must answer, never crash.
    int n_raw = (int)((size - 1) / 4);
    int32_t *raw = malloc(sizeof(int32_t) * (size_t)(n_raw + 1));
    memcpy(raw, data + 1, sizeof(int32_t) * (size_t)n_raw);
    for (int i = 0; i < n_raw; i++)
        if (data[0] & 1) raw[i] = (int32_t)((uint32_t)raw[i] % (VLT_TOKENIZER_VOCAB + 2));
    size_t small = 1 + data[0] % 64;
    vlt_status s = vlt_tokenizer_decode(g_tok, raw, n_raw, out, small);
    check(s == VLT_OK || s == VLT_ERR_ARG || s == VLT_ERR_NOMEM, "decode status");
    if (s != VLT_ERR_ARG) check(strlen(out) < small && valid_utf8((const unsigned char *)out), "decode output");

    free(raw);
    free(out);
    free(ids);
    free(big);
    free(text);
    return 0;
}
