// ftfy.h — ftfy.fix_text() (ftfy 6.x, default configuration) as open_clip's tokenizer runs it
// before BPE, on code points.
//
// Owns: the text repair open_clip applies to every caption (open_clip.tokenizer.basic_clean:
// ftfy.fix_text(text), then html.unescape twice, then strip). What fix_text does, and what this
// implementation does in the same order:
//
//   The text is cut after every '\n' (and every 1,000,000 code points) and each piece is fixed
//   on its own; a piece holding '<' turns HTML unescaping off for itself and every later piece
//   (ftfy takes it for HTML). Each piece goes through these steps, repeated until a pass
//   changes nothing:
//   1. unescape_html: "&name;" and "&#...;" of at most 24 ASCII letters/digits, from html5's
//      names ending in ';' plus upper-cased forms of the lower-case ones ("&EACUTE;" -> "É");
//   2. fix_encoding: when the text is not ASCII and ftfy's mojibake heuristic (badness) finds
//      a suspicious sequence, re-encode it with the first of latin-1, sloppy-windows-1252,
//      -1251, -1250, -1253, -1254, -1257, iso-8859-2, macroman, cp437 that can hold it, put
//      back no-break spaces that became spaces (restore_byte_a0), mark bytes lost to U+FFFD
//      (replace_lossy_sequences), and decode as UTF-8 (CESU-8 and Java's C0 80 accepted); else
//      fix embedded UTF-8 mojibake sequence by sequence (decode_inconsistent_utf8); else read
//      Latin-1 as windows-1252; else map C1 controls as windows-1252; repeated to a fixed point;
//   3. fix_c1_controls, fix_latin_ligatures ("ﬁ" -> "fi"), fix_character_width (fullwidth
//      ASCII, halfwidth katakana and Hangul, U+3000 -> ' '), uncurl_quotes (U+2018-U+201B,
//      U+02BC -> '\'', U+201C-U+201F -> '"'), fix_line_breaks (CRLF, CR, U+2028, U+2029, U+0085
//      -> '\n'), fix_surrogates (pairs joined, lone ones -> U+FFFD), remove_terminal_escapes
//      (ESC '[' digits/';' letter), remove_control_chars (C0 controls but \t \n \f \r, DEL,
//      U+206A-U+206F, U+FEFF, U+FFF9-U+FFFC);
//   4. NFC (data/unicode_norm.h).
//
// The character tables (data/ftfy_tables.c) are generated from ftfy 6.3.1 and Python 3.11
// (Unicode 14) by scripts/reference/make_ftfy_tables.py; tests/test_data_ftfy.c checks
// fix_text against ftfy and the tokenizer against open_clip on the 12,800 web-style strings of
// scripts/reference/make_ftfy_fixture.py. Pure functions; thread-safe.
#ifndef VLT_DATA_FTFY_H
#define VLT_DATA_FTFY_H

#include <stddef.h>
#include <stdint.h>

// ftfy.fix_text(s[0..n)): *out receives a malloc'd array of the fixed code points (the caller
// frees it; never NULL on success, even for an empty result), *out_n its length. Code points
// may be anything up to 0x10FFFF, surrogates included (a Python str can hold them). Returns 0,
// or -1 when memory runs out (*out NULL).
int vlt_ftfy_fix_text(const uint32_t *s, size_t n, uint32_t **out, size_t *out_n);

// The same on UTF-8: bytes that are not UTF-8 are read as U+FFFD, as Python's
// bytes.decode("utf-8", "replace") does; the result is UTF-8, NUL-terminated, malloc'd (the
// caller frees it), *out_len its length without the NUL (may be NULL). NULL when memory runs
// out.
char *vlt_ftfy_fix_utf8(const char *s, size_t n, size_t *out_len);

// ftfy.fix_encoding(s[0..n)) on its own (the mojibake repair, repeated to a fixed point):
// returns the length of the malloc'd result written to *out, or -1 when memory runs out.
long vlt_ftfy_fix_encoding(const uint32_t *s, size_t n, uint32_t **out);
// ftfy.badness.is_bad(s[0..n)): 1 when the mojibake heuristic finds a suspicious sequence.
int vlt_ftfy_is_bad(const uint32_t *s, size_t n);

// --- generated tables (data/ftfy_tables.c) --------------------------------------------------

// Bits of vlt_ftfy_class_range.mask: ftfy.badness.MOJIBAKE_CATEGORIES, then
// ftfy.chardata.UTF8_CLUES.
enum {
    VLT_FTFY_COMMON = 1 << 0,
    VLT_FTFY_C1 = 1 << 1,
    VLT_FTFY_BAD = 1 << 2,
    VLT_FTFY_LAW = 1 << 3,
    VLT_FTFY_CURRENCY = 1 << 4,
    VLT_FTFY_START_PUNCT = 1 << 5,
    VLT_FTFY_END_PUNCT = 1 << 6,
    VLT_FTFY_NUMERIC = 1 << 7,
    VLT_FTFY_KAOMOJI = 1 << 8,
    VLT_FTFY_UPPER_ACCENTED = 1 << 9,
    VLT_FTFY_LOWER_ACCENTED = 1 << 10,
    VLT_FTFY_UPPER_COMMON = 1 << 11,
    VLT_FTFY_LOWER_COMMON = 1 << 12,
    VLT_FTFY_BOX = 1 << 13,
    VLT_FTFY_UTF8_FIRST_OF_2 = 1 << 14,
    VLT_FTFY_UTF8_FIRST_OF_3 = 1 << 15,
    VLT_FTFY_UTF8_FIRST_OF_4 = 1 << 16,
    VLT_FTFY_UTF8_CONTINUATION = 1 << 17,
    VLT_FTFY_UTF8_CONTINUATION_STRICT = 1 << 18,
};

#define VLT_FTFY_N_CODECS 10

typedef struct { uint32_t lo, hi, mask; } vlt_ftfy_class_range;
typedef struct { uint32_t lo, hi; } vlt_ftfy_span;
typedef struct { uint16_t cp; uint8_t byte; } vlt_ftfy_codec_pair;
typedef struct {
    const char *name;
    int sloppy;                     // a sloppy-* codec: byte 0x1A stands for U+FFFD
    int n_pairs;
    uint16_t decode[256];           // byte -> character
    vlt_ftfy_codec_pair encode[257];   // character (>= 0x80, and U+FFFD) -> byte, sorted by cp
} vlt_ftfy_codec;
typedef struct { const char *name; uint8_t n; uint32_t cps[4]; } vlt_ftfy_entity;
typedef struct { uint32_t cp; uint8_t n; uint32_t to[3]; } vlt_ftfy_map;

extern const int vlt_ftfy_class_count;
extern const vlt_ftfy_class_range vlt_ftfy_classes[];
extern const int vlt_ftfy_word_count;       // Python re's \w
extern const vlt_ftfy_span vlt_ftfy_word[];
extern const int vlt_ftfy_digit_count;      // Python re's \d
extern const vlt_ftfy_span vlt_ftfy_digit[];
extern const int vlt_ftfy_control_count;    // what remove_control_chars deletes
extern const vlt_ftfy_span vlt_ftfy_control[];
extern const vlt_ftfy_codec vlt_ftfy_codecs[VLT_FTFY_N_CODECS];   // CHARMAP_ENCODINGS' order
extern const uint16_t vlt_ftfy_cp1252[256];  // strict windows-1252; 0xFFFF: undefined byte
extern const int vlt_ftfy_entity_count;     // sorted by name (strcmp), names without & and ;
extern const vlt_ftfy_entity vlt_ftfy_entities[];
extern const int vlt_ftfy_ligature_count;   // sorted by cp
extern const vlt_ftfy_map vlt_ftfy_ligatures[];
extern const int vlt_ftfy_width_count;      // sorted by cp
extern const vlt_ftfy_map vlt_ftfy_widths[];

#endif
