// ptb_tokenize.h — the caption tokenization pycocoevalcap applies before BLEU and CIDEr-D.
//
// pycocoevalcap runs Stanford CoreNLP 3.4.1's PTBTokenizer (java ... PTBTokenizer -preserveLines
// -lowerCase, one caption per line, newlines in a caption replaced by spaces), splits the output
// on spaces and drops the tokens of its list '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ;
// The list is compared *after* lower-casing, so -lrb- -rrb- -lsb- -rsb- -lcb- -rcb- (the tokens
// for ( ) [ ] { }) are NOT removed: they stay in the scored text, and so do they here.
//
// Reproduced (checked against the real jar: tests/data/eval/ptb_cases.json and the fixture
// captions, made by scripts/reference/make_caption_fixtures.py):
//   - ASCII lower-casing; whitespace (space, tab, CR, LF, VT, FF) separates tokens;
//   - clitics split off: 's 'm 'd 'll 're 've (any case) and n't ("can't" -> ca n't,
//     "won't" -> wo n't, "they'd've" -> they 'd 've); "cannot" -> can not, "gonna" -> gon na,
//     "gotta" -> got ta, "wanna" -> wan na, "lemme" -> lem me, "gimme" -> gim me;
//   - o'clock, d'arcy, l'oreal ([dlo]' + letter) and '90s stay one token; a standalone 's 'm ...
//     is a token; other apostrophes and all double quotes / backquotes become quote tokens (removed);
//   - hyphenated words and numbers stay whole (black-and-white, 3.5-inch, 1,000-pound, 10:30,
//     a/b, 1/2, #tag, @home); a leading sign or separator on a number (-5, +5, .5, ,000);
//   - a final period is split off except after a single letter ("a."), an acronym (u.s., e.g.,
//     a.m.) or one of the abbreviations the 3.4.1 lexer keeps (mr. st. dr. etc. vs. inc. jan. ...
//     the list in ptb_tokenize.c, found by running the jar on each candidate);
//   - three or more periods -> "...", two -> ". .", one -> "." (all removed); a run of two or
//     more ? / ! ("??", "?!", "!!!") is one token and is KEPT, a single ? or ! is removed; runs
//     of - are removed; , ; : are removed; ( ) [ ] { } -> -lrb- -rrb- -lsb- -rsb- -lcb- -rcb-;
//     any other ASCII symbol (% $ & * + = ~ ^ | \ / < >) is its own token.
// Not reproduced (the jar does something else; none occurs in COCO-style captions often):
//   - non-ASCII text: UTF-8 bytes are treated as letters (no Unicode quotes, dashes, ellipsis,
//     spaces, fractions or currency normalization, no Unicode lower-casing);
//   - SGML/HTML tags and entities (<tag>, &amp;), URLs and e-mail addresses beyond the
//     word rules above, emoticons, 'tis / 'twas ('t is), rock'n'roll ('n'), y'all (y' all),
//     letters glued to a following abbreviation (10p.m. -> 10p . m.), and the lexer's
//     sentence-final duplication of an abbreviation's period (removed anyway).
#ifndef VLT_EVAL_PTB_TOKENIZE_H
#define VLT_EVAL_PTB_TOKENIZE_H

#include "autograd/error.h"

// Tokenizes one caption; *out (malloc'd, caller frees) gets the kept tokens joined by one space
// ("" when none).
vlt_status vlt_eval_ptb_tokenize(const char *caption, char **out);

#endif
