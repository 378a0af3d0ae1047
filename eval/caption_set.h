// caption_set.h — the evaluated set for caption metrics: one candidate and K >= 1 references per
// image, already tokenized (tokens separated by spaces, as pycocoevalcap's scorers split them with
// str.split()). Owns the token and n-gram interning that BLEU and CIDEr-D share.
//
// Every token gets an id; every n-gram (n = 1..4) gets one id in a single table keyed by
// (id of its (n-1)-gram prefix, last token id), so an n-gram is a uint32 and a sentence is a
// list of distinct (n-gram id, count). Scorers never touch strings.
#ifndef VLT_EVAL_CAPTION_SET_H
#define VLT_EVAL_CAPTION_SET_H

#include <stdint.h>

#include "autograd/error.h"

#define VLT_EVAL_MAX_NGRAM 4

// One sentence's n-gram counts: distinct ids in order of first occurrence (not sorted).
typedef struct {
    uint32_t *ids;     // (n_entries) n-gram ids
    uint32_t *counts;  // (n_entries), in the same allocation as ids
    int n_entries;
    int n_words;       // number of tokens
} vlt_eval_sentence;

typedef struct vlt_eval_caption_set vlt_eval_caption_set;

vlt_eval_caption_set *vlt_eval_caption_set_new(void);
void vlt_eval_caption_set_free(vlt_eval_caption_set *s);

// Adds one image: its candidate and n_refs references (n_refs >= 1), each a string of tokens
// separated by whitespace as Python's str.split() sees it (ASCII, \x1c-\x1f, U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000; an empty string is an empty sentence).
vlt_status vlt_eval_caption_set_add(vlt_eval_caption_set *s, const char *candidate,
                                    const char *const *refs, int n_refs);

int vlt_eval_caption_set_n_images(const vlt_eval_caption_set *s);
// Total number of distinct n-grams seen (all orders); n-gram ids are < this.
uint32_t vlt_eval_caption_set_n_ngrams(const vlt_eval_caption_set *s);
// n (1..4) of n-gram `id`.
int vlt_eval_caption_set_ngram_order(const vlt_eval_caption_set *s, uint32_t id);
// Image i's candidate and its references (refs[0..*n_refs)).
const vlt_eval_sentence *vlt_eval_caption_set_candidate(const vlt_eval_caption_set *s, int i);
const vlt_eval_sentence *vlt_eval_caption_set_refs(const vlt_eval_caption_set *s, int i, int *n_refs);

#endif
