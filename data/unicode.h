// unicode.h — Unicode lookups for the CLIP tokenizer, answering as Python does.
//
// Owns: code point classification and lower-casing over the generated tables of
// data/unicode_tables.h (binary search, with an ASCII fast path), and Python's str.lower() of a
// whole string including CPython's Final_Sigma rule. Pure functions; no state.
#ifndef VLT_DATA_UNICODE_H
#define VLT_DATA_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "data/unicode_tables.h"

// VLT_UCLASS_* of cp.
int vlt_unicode_pretok_class(uint32_t cp);
// Python's chr(cp).isspace().
int vlt_unicode_isspace(uint32_t cp);
// chr(cp).lower() into out[0..3); returns the count (1..3). U+03A3 gives U+03C3 here: the
// final form depends on context, see vlt_unicode_lower_string.
int vlt_unicode_lower_cp(uint32_t cp, uint32_t out[3]);
// VLT_UCASE_* of cp.
int vlt_unicode_case_class(uint32_t cp);
// Python's s.lower() of s[0..n) into out (room for 3*n code points); returns the length.
size_t vlt_unicode_lower_string(const uint32_t *s, size_t n, uint32_t *out);

#endif
