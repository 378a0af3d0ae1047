// ptb_tokenize.h — the caption tokenization pycocoevalcap applies before BLEU and CIDEr-D.
//
// pycocoevalcap's PTBTokenizer.tokenize(captions_for_image) writes every caption of the call
// (newlines in a caption replaced by spaces) into one file, one per line, in the dict's order,
// runs Stanford CoreNLP 3.4.1's PTBTokenizer (-preserveLines -lowerCase) on it, splits the
// output on '\n', gives line i to caption i, and keeps of each line
//     ' '.join(w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS)
// with PUNCTUATIONS = '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ; compared after
// lower-casing (so -lrb- -rrb- -lsb- -rsb- -lcb- -rcb- stay in the scored text).
//
// The jar's lexer reads the file as one stream: a caption's last token can depend on the first
// characters of the next caption (an abbreviation or acronym before a capital letter is followed
// by a sentence-final period, "etc." before "A" is "etc." "."). So captions must be tokenized as
// pycocoevalcap does it, as one batch in its order: COCOEvalCap tokenizes the references of all
// evaluated images (images in the annotation file's "images" order, each image's captions in
// annotation order) in one call and the results in another.
//
// vlt_eval_ptb_tokenize_batch reproduces the whole pipeline: eval/ptb_lexer.c is a scanner with
// the 3.4.1 lexer's rules (JFlex semantics, UTF-16 code units, the jar's Unicode letter and digit
// classes, its quote / bracket / dash / ellipsis / fraction / currency normalization, URLs,
// e-mail, SGML, smileys, abbreviations with their lookahead, assimilations gonna -> gon na),
// lower-casing is Java's String.toLowerCase(Locale.ENGLISH) applied to each token (as the jar's
// -lowerCase does), and the line handling is Python's. Lower-casing includes Java's final sigma:
// U+03A3 becomes U+03C2 when ConditionalSpecialCasing's Final_Cased condition holds, which walks
// the JDK's word BreakIterator (the legacy rule-based one, with its forward / backward state
// tables and its cached last break) and isCased; both are run here from JDK 17's own tables
// (eval/ptb_wordbreak.h, made by scripts/reference/PtbWordBreakTables.java).
// Checked against the real jar on the fixture tests/data/eval/ptb_corpora.json.zst (made by
// scripts/reference/make_ptb_fixture.py: 20,000+ captions in many corpora) and ptb_cases.json.
//
// Also checked against the jar: every BMP character and 11,410 supplementary ones (emoji included)
// in the contexts "qXq X AX." and inside a URL (the Unicode classes are the jar's, made by
// scripts/reference/PtbUnicodeTables.java), and 3,000 random strings of letters, digits, symbols,
// entities, URLs, Greek and emoji.
// A caption holding a line break other than '\n' (\r, U+2028, U+2029, \v, \f, U+0085) shifts every
// later caption's line in pycocoevalcap, and here too: vlt_eval_ptb_tokenize_batch then reports
// more lines than captions (see n_out); the COCO loader scores the shifted lines as pycocoevalcap
// does (tests/test_eval_ptb.c checks its BLEU and CIDEr-D) and warns.
// Final sigma: 24,040 strings with capital sigmas next to letters of every case class, digits,
// Mn / Me / Cf marks, every Pd dash, quotes, apostrophes, periods, currency, %, &, spaces, line
// separators, CJK, kana, danda and supplementary letters equal Java 17's toLowerCase, and 24,000
// such captions equal the jar (tests/data/eval/ptb_sigma.json.zst, made by
// scripts/reference/make_ptb_sigma_fixture.py). No known gap remains. The tables are those of the
// Java that ran the jar for these fixtures (17, Unicode 13); pycocoevalcap uses whatever Java is
// installed, and another Java's letter classes or lower-case mappings may differ.
#ifndef VLT_EVAL_PTB_TOKENIZE_H
#define VLT_EVAL_PTB_TOKENIZE_H

#include <stddef.h>

#include "autograd/error.h"

// Tokenizes captions[0..n) as one pycocoevalcap call. out[i] (malloc'd, caller frees) gets caption
// i's kept tokens joined by one space ("" when none), or NULL when the jar's output has no line i;
// *n_out (may be NULL) the number of lines of the jar's output: n, unless a caption holds a line
// break other than '\n' (see above), when caption i still gets line i as in pycocoevalcap.
vlt_status vlt_eval_ptb_tokenize_batch(const char *const *captions, int n, char **out, int *n_out);

// One caption alone (a call of its own): *out (malloc'd, caller frees).
vlt_status vlt_eval_ptb_tokenize(const char *caption, char **out);

// Java's String.toLowerCase(Locale.ENGLISH) of the UTF-8 text s (malformed bytes read as U+FFFD),
// what the jar applies to each token: *out (malloc'd, caller frees).
vlt_status vlt_eval_java_lower(const char *s, char **out);

// Length in bytes of the Python whitespace character (str.isspace) that starts the UTF-8 text s,
// 0 when it is not one: pycocoevalcap's scorers split tokens with str.split().
size_t vlt_eval_py_space_len(const char *s);

#endif
