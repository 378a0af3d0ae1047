// fuzz_ptb.c — the PTB tokenizer of caption evaluation (pycocoevalcap's Stanford PTBTokenizer
// with its punctuation removal): the input is split into captions at NUL bytes and tokenized one
// by one and as a batch; each caption gives one line, and the Python whitespace test never reads
// past the text.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/ptb_tokenize.h"
#include "fuzz_util.h"

#define MAX_CAPS 16

// One caption gives one line of tokens.
static void check_tokens(const char *s) {
    if (strchr(s, '\n')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 14) return 0;
    char *text = fz_str(data, size);
    const char *caps[MAX_CAPS];
    int n = 0;
    for (size_t i = 0; i <= size && n < MAX_CAPS;) {
        caps[n++] = text + i;
        i += strlen(text + i) + 1;
    }
    for (int k = 0; k < n; k++) {
        char *out = NULL;
        if (vlt_eval_ptb_tokenize(caps[k], &out) == VLT_OK) {
            if (!out) abort();
            check_tokens(out);
            free(out);
        }
        for (const char *p = caps[k]; *p;) {
            size_t w = vlt_eval_py_space_len(p);
            if (w > strlen(p)) abort();
            p += w ? w : 1;
        }
    }
    char *outs[MAX_CAPS] = {0};
    int n_out = 0;
    if (vlt_eval_ptb_tokenize_batch(caps, n, outs, &n_out) == VLT_OK)
        for (int k = 0; k < n; k++) free(outs[k]);
    free(text);
    return 0;
}
