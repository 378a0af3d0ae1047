// html_unescape.h — Python's html.unescape(), on code points.
//
// Owns: vlt_html_unescape, which reproduces html.unescape() exactly over the tables of
// data/html_entities.h — numeric references (decimal, hex, the Windows-1252 fixes, U+FFFD for
// surrogates and values past U+10FFFF, "" for control and non-characters), named references
// with and without ';', the longest-prefix rule for unknown names ("&ampx" -> "&x") and the
// 32-character name limit. One difference: a decimal reference of more than 4,300 digits makes
// CPython raise (int()'s digit limit); here it is read as a number too large, i.e. U+FFFD.
#ifndef VLT_DATA_HTML_UNESCAPE_H
#define VLT_DATA_HTML_UNESCAPE_H

#include <stddef.h>
#include <stdint.h>

#include "data/html_entities.h"

// The entity whose name (with its ';' if any) is exactly name[0..len), or NULL.
const vlt_html_entity *vlt_html_entity_find(const uint32_t *name, size_t len);
// html.unescape() of s[0..n), in place (the result is never longer); returns the new length.
size_t vlt_html_unescape(uint32_t *s, size_t n);

#endif
