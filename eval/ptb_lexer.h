// ptb_lexer.h — the tokenizer of Stanford CoreNLP 3.4.1 (PTBLexer), as pycocoevalcap runs it.
//
// pycocoevalcap's PTBTokenizer runs `java edu.stanford.nlp.process.PTBTokenizer -preserveLines
// -lowerCase` on a file of captions, one per line. vlt_ptb_lex scans UTF-16 text as that lexer
// does (the same rules, longest match, trailing contexts, Unicode classes of the jar) and reports
// every token with the lexer's normalization (-LRB-, ``, --, ...) but before lower-casing, and
// every line break as a token of its own (text NULL). Deleted characters (untokenizable ones,
// zero-width spaces) produce nothing.
#ifndef VLT_EVAL_PTB_LEXER_H
#define VLT_EVAL_PTB_LEXER_H

#include <stdint.h>

// Called per token: text[0..n) (NULL for a line break). A non-zero return stops the scan.
typedef int (*vlt_ptb_token_fn)(const uint16_t *text, int n, void *ctx);

// Scans t[0..n); 0 when done, -1 when out of memory or the callback stopped it.
int vlt_ptb_lex(const uint16_t *t, int n, vlt_ptb_token_fn emit, void *ctx);

// Whether a UTF-16 code unit is a letter to the 3.4.1 lexer (Character.isLetter of its JDK).
int vlt_ptb_is_letter(unsigned c);

#endif
