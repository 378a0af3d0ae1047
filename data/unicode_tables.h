// unicode_tables.h — the generated Unicode tables behind data/unicode.h.
//
// Owns: the declarations of the tables that scripts/reference/make_tokenizer_tables.py measures
// from Python into data/unicode_tables.c: the pre-tokenizer character classes of open_clip's
// pattern (regex module, IGNORECASE), Python's str.isspace() and str.lower() (with the classes
// CPython's Final_Sigma rule for U+03A3 looks at).
#ifndef VLT_DATA_UNICODE_TABLES_H
#define VLT_DATA_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

// Pre-tokenizer classes: which of open_clip's sets a code point falls in.
enum {
    VLT_UCLASS_PUNCT = 0,   // [^\s\p{L}\p{N}]
    VLT_UCLASS_LETTER = 1,  // [\p{L}]
    VLT_UCLASS_NUMBER = 2,  // [\p{N}]
    VLT_UCLASS_SKIP = 3,    // none of them (\s, and U+0345): findall steps over it
};
// Case classes for the Final_Sigma context of str.lower().
enum { VLT_UCASE_OTHER = 0, VLT_UCASE_CASED = 1, VLT_UCASE_IGNORABLE = 2 };

typedef struct { uint32_t lo, hi; uint8_t value; } vlt_unicode_range;
// cp in [lo, hi] with (cp - lo) % stride == 0 lowers to cp + delta.
typedef struct { uint32_t lo, hi; uint8_t stride; int32_t delta; } vlt_unicode_lower_run;
typedef struct { uint32_t cp; uint8_t n; uint32_t to[3]; } vlt_unicode_lower_multi_entry;

// Generated tables (sorted by lo / cp, disjoint).
extern const int vlt_unicode_pretok_count;
extern const vlt_unicode_range vlt_unicode_pretok[];
extern const int vlt_unicode_space_count;
extern const uint32_t vlt_unicode_space[];
extern const int vlt_unicode_lower_count;
extern const vlt_unicode_lower_run vlt_unicode_lower[];
extern const int vlt_unicode_lower_multi_count;
extern const vlt_unicode_lower_multi_entry vlt_unicode_lower_multi[];
extern const int vlt_unicode_case_count;
extern const vlt_unicode_range vlt_unicode_case[];

#endif
