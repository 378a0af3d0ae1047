// bert_tokenizer.h — the BERT WordPiece tokenizer, matching transformers' BertTokenizer exactly.
//
// Owns: loading a BERT vocab.txt (one token per line, id = line number counted from 0), and
// BertTokenizer's encoding of a text: the five special token strings ([UNK] [SEP] [PAD] [CLS]
// [MASK]) written in the text are kept as those tokens; for an uncased vocabulary the rest is
// lower-cased code point by code point; then BasicTokenizer (drop NUL, U+FFFD and control /
// format / unassigned / private-use characters, whitespace to spaces, spaces around CJK
// ideographs, NFC, split on whitespace, per word lower-casing (str.lower()) and accent stripping
// (NFD without Mn marks) when uncased, split off every punctuation character: Unicode P* and the
// ASCII symbols 33-47, 58-64, 91-96, 123-126), then greedy longest-match-first WordPiece with
// "##" continuations, [UNK] for a word that cannot be covered or is over 100 code points.
//
// tests/test_data_bert_tokenizer.c checks every string of a fixture made with transformers
// 4.57.6 (scripts/reference/make_bert_tokenizer_fixture.py) for an uncased and a cased vocabulary,
// 100%. BertTokenizerFast (the Rust tokenizers library) differs from the Python BertTokenizer on
// some inputs (it has no NFC step, keeps unassigned code points, does not split CJK Extension
// E/F); vlt follows the Python one. See that script for the list.
//
// A C string ends at its first NUL byte, so a NUL inside a text ends it here, where
// BertTokenizer would drop the NUL and go on.
#ifndef VLT_DATA_BERT_TOKENIZER_H
#define VLT_DATA_BERT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/error.h"

#define VLT_BERT_MAX_WORD_CHARS 100   // BertTokenizer's max_input_chars_per_word

typedef struct vlt_bert_tokenizer vlt_bert_tokenizer;   // opaque; immutable after load

// The ids of the special tokens in the loaded vocabulary; mask is -1 when it has no [MASK].
typedef struct { int32_t pad, unk, cls, sep, mask; } vlt_bert_specials;

// Reads vocab_path (UTF-8, "\n" line ends). do_lower_case: true for uncased vocabularies
// (bert-base-uncased), false for cased ones. VLT_ERR_IO when the file cannot be read,
// VLT_ERR_FORMAT (message naming the file, and the line where there is one) for a line that is
// not UTF-8, holds a NUL or ends in "\r", or a vocabulary lacking [PAD], [UNK], [CLS] or [SEP].
// A token listed twice answers with its last line, as BertTokenizer's dict does.
vlt_status vlt_bert_tokenizer_load(const char *vocab_path, int do_lower_case, vlt_bert_tokenizer **out);
void vlt_bert_tokenizer_free(vlt_bert_tokenizer *tok);

// WordPiece ids of text (UTF-8, invalid bytes read as U+FFFD, which is dropped; NULL is ""),
// without [CLS]/[SEP]: the first min(count, cap) go to ids (which may be NULL when cap is 0).
// Returns the full count, or -1 (message set) on a NULL tok or failed allocation.
// Thread-safe for concurrent calls on one tokenizer.
int vlt_bert_tokenizer_tokenize(const vlt_bert_tokenizer *tok, const char *text, int32_t *ids, int cap);

// ids[0..max_len): [CLS], tokens…, [SEP], [PAD]…; a text with more than max_len - 2 tokens is
// truncated to its first max_len - 2 ([SEP] stays last), as tokenizer(text, max_length=max_len,
// truncation=True, padding="max_length"). mask (may be NULL) gets 1 for every non-pad position,
// 0 for the padding. Returns the number of non-pad tokens, or -1 (message set) when tok or ids
// is NULL, max_len < 2, or memory runs out.
int vlt_bert_tokenizer_encode(const vlt_bert_tokenizer *tok, const char *text, int32_t *ids, int32_t *mask,
                              int max_len);

// For debugging: the tokens of ids[0..n) without the trailing [PAD]s (the padding), joined by
// spaces, "##" continuations glued to the piece before (BertTokenizer's convert_tokens_to_string). out gets at
// most out_size bytes, NUL-terminated. VLT_ERR_ARG on an id outside the vocabulary, VLT_ERR_NOMEM
// (truncated output, still NUL-terminated) when out is too small.
vlt_status vlt_bert_tokenizer_decode(const vlt_bert_tokenizer *tok, const int32_t *ids, int n, char *out,
                                     size_t out_size);

int vlt_bert_tokenizer_vocab_size(const vlt_bert_tokenizer *tok);
// The token of id (as its line spells it), or NULL outside the vocabulary.
const char *vlt_bert_tokenizer_token(const vlt_bert_tokenizer *tok, int32_t id);
// The id of token, or -1 when the vocabulary lacks it.
int32_t vlt_bert_tokenizer_id(const vlt_bert_tokenizer *tok, const char *token);
// All -1 for a NULL tok.
vlt_bert_specials vlt_bert_tokenizer_specials(const vlt_bert_tokenizer *tok);
int vlt_bert_tokenizer_lower_case(const vlt_bert_tokenizer *tok);

#endif
