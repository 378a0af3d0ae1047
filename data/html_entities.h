// html_entities.h — the generated tables behind data/html_unescape.h.
//
// Owns: the declarations of the HTML5 named character references (html.entities.html5) and
// html.unescape()'s numeric replacement rules, generated into data/html_entities.c by
// scripts/reference/make_tokenizer_tables.py.
#ifndef VLT_DATA_HTML_ENTITIES_H
#define VLT_DATA_HTML_ENTITIES_H

#include <stddef.h>
#include <stdint.h>

typedef struct { const char *name; uint8_t n; uint32_t cp[2]; } vlt_html_entity;
typedef struct { uint32_t num, cp; } vlt_html_charref_fix;

extern const int vlt_html_entity_count;
extern const vlt_html_entity vlt_html_entities[];   // sorted by name (bytewise)
extern const int vlt_html_charref_fix_count;
extern const vlt_html_charref_fix vlt_html_charref_fixes[];   // sorted by num
extern const int vlt_html_dropped_count;
extern const uint32_t vlt_html_dropped[];   // sorted: numeric references that give ""

#endif
