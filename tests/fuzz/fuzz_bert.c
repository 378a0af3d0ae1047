// fuzz_bert.c — libFuzzer target for the BERT WordPiece tokenizer (data/bert_tokenizer.c): the
// input is "VOCAB\n--\nTEXT" with the first byte's low bit choosing cased or uncased. The vocab
// is loaded from a file (a bad one must be refused with a message, never crash); when it loads,
// the text is tokenized and encoded at a context length from the second byte, and the output is
// checked: [CLS] first, [SEP] last before the padding, mask 1 exactly on the non-pad positions,
// ids inside the vocabulary, a longer context keeps the same tokens (truncation never changes
// earlier ones), and decoding succeeds.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bert_tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

static void check(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_bert: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int lower = data[0] & 1, ctx = 2 + data[1] % 62;
    char *vocab, *text;
    fz_split(data + 2, size - 2, "\n--\n", &vocab, &text);
    const char *path = fz_file(0, "vocab.txt", vocab, strlen(vocab));
    vlt_bert_tokenizer *tok = NULL;
    if (vlt_bert_tokenizer_load(path, lower, &tok) != VLT_OK) {
        check(vlt_error_message()[0] != '\0', "a refused vocab has a message");
        free(vocab);
        free(text);
        return 0;
    }
    int V = vlt_bert_tokenizer_vocab_size(tok);
    int32_t ids[64], mask[64], big[128], bigmask[128];
    int n = vlt_bert_tokenizer_encode(tok, text, ids, mask, ctx);
    check(n >= 2 && n <= ctx, "encode returns 2..ctx non-pad tokens");
    int cls = vlt_bert_tokenizer_id(tok, "[CLS]"), sep = vlt_bert_tokenizer_id(tok, "[SEP]"),
        pad = vlt_bert_tokenizer_id(tok, "[PAD]");
    check(ids[0] == cls && ids[n - 1] == sep, "[CLS] first and [SEP] last");
    for (int i = 0; i < ctx; i++) {
        check(ids[i] >= 0 && ids[i] < V, "ids inside the vocabulary");
        check(mask[i] == (i < n), "mask marks the non-pad positions");
        if (i >= n) check(ids[i] == pad, "[PAD] after the text");
    }
    int m = vlt_bert_tokenizer_encode(tok, text, big, bigmask, 128);
    check(m >= n, "a longer context keeps at least as many tokens");
    for (int i = 1; i < n - 1; i++) check(big[i] == ids[i], "truncation keeps the earlier tokens");
    int all = vlt_bert_tokenizer_tokenize(tok, text, NULL, 0);
    check(all >= 0 && (all + 2 > 128 ? m == 128 : m == all + 2), "tokenize counts what encode keeps");
    char out[4096];
    vlt_status s = vlt_bert_tokenizer_decode(tok, ids, ctx, out, sizeof out);
    check(s == VLT_OK || s == VLT_ERR_NOMEM, "decode of encoded ids succeeds");
    vlt_bert_tokenizer_free(tok);
    free(vocab);
    free(text);
    return 0;
}
