// unicode_norm.h — Unicode general categories and canonical normalization (NFD, NFC), answering
// as Python's unicodedata does.
//
// Owns: lookups over the generated tables of data/unicode_norm_tables.c (general category of
// every code point, canonical combining classes, canonical decompositions and primary
// composites) and the NFD / NFC algorithms of UAX #15 over them (Hangul syllables arithmetic).
// Used by the BERT WordPiece tokenizer (data/bert_tokenizer.c), which follows transformers'
// BertTokenizer: unicodedata.category(), unicodedata.normalize("NFC"/"NFD"). Pure functions.
#ifndef VLT_DATA_UNICODE_NORM_H
#define VLT_DATA_UNICODE_NORM_H

#include <stddef.h>
#include <stdint.h>

#include "data/unicode_tables.h"   // vlt_unicode_range

// General categories, in the order of CATS in scripts/reference/make_unicode_norm_tables.py.
enum {
    VLT_GC_CN, VLT_GC_CC, VLT_GC_CF, VLT_GC_CO, VLT_GC_CS,
    VLT_GC_LL, VLT_GC_LM, VLT_GC_LO, VLT_GC_LT, VLT_GC_LU,
    VLT_GC_MC, VLT_GC_ME, VLT_GC_MN,
    VLT_GC_ND, VLT_GC_NL, VLT_GC_NO,
    VLT_GC_PC, VLT_GC_PD, VLT_GC_PE, VLT_GC_PF, VLT_GC_PI, VLT_GC_PO, VLT_GC_PS,
    VLT_GC_SC, VLT_GC_SK, VLT_GC_SM, VLT_GC_SO,
    VLT_GC_ZL, VLT_GC_ZP, VLT_GC_ZS,
};
#define VLT_GC_IS_OTHER(g) ((g) <= VLT_GC_CS)                       // C*
#define VLT_GC_IS_PUNCT(g) ((g) >= VLT_GC_PC && (g) <= VLT_GC_PS)   // P*

// Decomposition entries {cp, first, second (0 for a singleton)} sorted by cp; composition
// entries {first, second, composite} sorted by (first, second).
typedef struct { uint32_t x, y, z; } vlt_unicode_pair;

extern const int vlt_unicode_gc_ranges_count;
extern const vlt_unicode_range vlt_unicode_gc_ranges[];
extern const int vlt_unicode_ccc_ranges_count;
extern const vlt_unicode_range vlt_unicode_ccc_ranges[];
extern const int vlt_unicode_decomp_count;
extern const vlt_unicode_pair vlt_unicode_decomp[];
extern const int vlt_unicode_comp_count;
extern const vlt_unicode_pair vlt_unicode_comp[];

// unicodedata.category(chr(cp)) as VLT_GC_*; VLT_GC_CN for unassigned code points and cp past
// U+10FFFF.
int vlt_unicode_gc(uint32_t cp);
// unicodedata.combining(chr(cp)).
int vlt_unicode_combining(uint32_t cp);

// The most code points one code point becomes under NFD or NFC (Unicode 14: 4, e.g. U+1F82).
#define VLT_UNICODE_NORM_EXPANSION 4
// unicodedata.normalize("NFD" / "NFC", s[0..n)) into out, which has room for
// VLT_UNICODE_NORM_EXPANSION * n code points (out must not overlap s); returns the length.
size_t vlt_unicode_nfd(const uint32_t *s, size_t n, uint32_t *out);
size_t vlt_unicode_nfc(const uint32_t *s, size_t n, uint32_t *out);

#endif
