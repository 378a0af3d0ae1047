// tokenizer.h — the CLIP byte-level BPE tokenizer, matching open_clip's `tokenize` exactly.
//
// Owns: loading bpe_simple_vocab_16e6.txt.gz (49,408 tokens: 256 byte symbols, the same with
// "</w>", 48,894 merges, <start_of_text>, <end_of_text>), text cleaning (ftfy.fix_text, HTML unescape twice,
// whitespace collapse, Unicode lower-casing as Python's str.lower()), the pre-tokenizer pattern
// with Unicode letter/number classes, BPE, and decoding.
//
// Before cleaning, the text goes through ftfy.fix_text() as open_clip's basic_clean runs it
// (data/ftfy.h: mojibake repair such as "cafÃ©" -> "café", curly quotes made straight, Latin
// ligatures, character width, control characters and terminal escapes removed, NFC, ...), so
// the ids equal open_clip's also for text ftfy changes (tests/test_data_ftfy.c: 12,800 web-style
// strings). See docs/TOKENIZER.md.
//
// The vocabulary is open_clip's assets/bpe_simple_vocab_16e6.txt.gz (open_clip_torch 3.3.0, MIT,
// see assets/LICENSE-open_clip.txt), sha256
// 924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a. The Unicode and HTML tables
// (data/unicode_tables.c, data/html_entities.c) are generated from Python 3.11.7 and regex
// 2026.11.19 by scripts/reference/make_tokenizer_tables.py; tests/test_data_tokenizer.c checks
// 3,037 strings against open_clip (scripts/reference/make_tokenizer_fixture.py).
#ifndef VLT_DATA_TOKENIZER_H
#define VLT_DATA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"

#define VLT_TOKEN_SOT 49406
#define VLT_TOKEN_EOT 49407
#define VLT_TOKEN_PAD 0
#define VLT_TOKENIZER_VOCAB 49408
#define VLT_TOKENIZER_CONTEXT 77   // open_clip's default context length

typedef struct vlt_tokenizer vlt_tokenizer;   // opaque; immutable after load

// path: the bpe_simple_vocab_16e6.txt.gz file; NULL means assets/bpe_simple_vocab_16e6.txt.gz,
// looked up in $VLT_ASSETS first, then ./assets, then ../assets, ../../assets (repo root).
vlt_status vlt_tokenizer_load(const char *path, vlt_tokenizer **out);
void vlt_tokenizer_free(vlt_tokenizer *tok);

// ids[0..context_len): SOT, tokens…, EOT, zero padding; truncated keeping EOT last
// (as open_clip: tokens[:context_len] then tokens[-1] = EOT). text is UTF-8; invalid bytes are
// read as U+FFFD (Python's errors="replace"). NULL text is the empty string.
// Returns the number of non-pad tokens (including SOT/EOT), or -1 (message set) when tok or
// ids is NULL, context_len < 2, or scratch memory (about 28 bytes per byte of a text longer
// than 512 bytes) cannot be allocated. Thread-safe for concurrent calls on one tokenizer.
int vlt_tokenizer_encode(const vlt_tokenizer *tok, const char *text, int32_t *ids, int context_len);

// Decodes ids (stops at EOT, drops SOT and pad) into out (NUL-terminated, at most out_size
// bytes). As open_clip's decode: "</w>" becomes a space, bytes are mapped back through the byte
// decoder; the trailing space is kept. VLT_ERR_ARG on an id outside the vocabulary,
// VLT_ERR_NOMEM (truncated output, still NUL-terminated) when out is too small.
vlt_status vlt_tokenizer_decode(const vlt_tokenizer *tok, const int32_t *ids, int n, char *out, size_t out_size);

// The number of tokens in the vocabulary (49,408) and one token's text as the vocabulary
// spells it (byte-unicode form, UTF-8, e.g. "hello</w>"), or NULL for an id outside it.
int vlt_tokenizer_vocab_size(const vlt_tokenizer *tok);
const char *vlt_tokenizer_token(const vlt_tokenizer *tok, int32_t id);

#endif
