#!/usr/bin/env python3
"""Generates data/ftfy_tables.c: the character data behind data/ftfy.c (vlt's implementation of
ftfy.fix_text as open_clip calls it), measured from ftfy and Python.

    /work/venv-torch/bin/python scripts/reference/make_ftfy_tables.py

What is measured (everything else -- the order of the fixes, the regular expressions' logic, the
codecs' byte rules -- is written by hand in data/ftfy.c):

- the character sets of ftfy's mojibake heuristic (ftfy.badness.MOJIBAKE_CATEGORIES) and of its
  inconsistent-UTF-8 detector (ftfy.chardata.UTF8_CLUES), as one bit per set over ranges of code
  points, each set taken as Python's re reads it inside a character class;
- Python re's \\w and \\d on str patterns (every code point), and a check that re's \\s is
  str.isspace() (which data/unicode.c already answers);
- the single-byte codecs ftfy tries (ftfy.chardata.CHARMAP_ENCODINGS: latin-1, the sloppy-windows-*
  codecs of ftfy.bad_codecs, iso-8859-2, macroman, cp437): each byte's character, and the
  character -> byte pairs, checked against ftfy's own "could this text be encoded" expressions
  (ftfy.chardata.ENCODING_REGEXES) on every BMP code point; plus strict windows-1252;
- ftfy's HTML entity table (ftfy.chardata.HTML_ENTITIES: the html5 names ending in ';' and the
  upper-cased forms it adds), the Latin ligature and character width maps
  (LIGATURES, WIDTH_MAP) and the control characters remove_control_chars deletes (CONTROL_CHARS).

Python's Unicode version must be the one of data/unicode_norm_tables.c (14.0.0), since ftfy's
final NFC step uses those tables.
"""
import os
import re
import sys
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401
from ftfy import badness, chardata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "data", "ftfy_tables.c")
MAXCP = 0x110000

# Bit order of VLT_FTFY_* in data/ftfy.h.
CLASSES = [
    ("COMMON", badness.MOJIBAKE_CATEGORIES["common"]),
    ("C1", badness.MOJIBAKE_CATEGORIES["c1"]),
    ("BAD", badness.MOJIBAKE_CATEGORIES["bad"]),
    ("LAW", badness.MOJIBAKE_CATEGORIES["law"]),
    ("CURRENCY", badness.MOJIBAKE_CATEGORIES["currency"]),
    ("START_PUNCT", badness.MOJIBAKE_CATEGORIES["start_punctuation"]),
    ("END_PUNCT", badness.MOJIBAKE_CATEGORIES["end_punctuation"]),
    ("NUMERIC", badness.MOJIBAKE_CATEGORIES["numeric"]),
    ("KAOMOJI", badness.MOJIBAKE_CATEGORIES["kaomoji"]),
    ("UPPER_ACCENTED", badness.MOJIBAKE_CATEGORIES["upper_accented"]),
    ("LOWER_ACCENTED", badness.MOJIBAKE_CATEGORIES["lower_accented"]),
    ("UPPER_COMMON", badness.MOJIBAKE_CATEGORIES["upper_common"]),
    ("LOWER_COMMON", badness.MOJIBAKE_CATEGORIES["lower_common"]),
    ("BOX", badness.MOJIBAKE_CATEGORIES["box"]),
    ("UTF8_FIRST_OF_2", chardata.UTF8_CLUES["utf8_first_of_2"]),
    ("UTF8_FIRST_OF_3", chardata.UTF8_CLUES["utf8_first_of_3"]),
    ("UTF8_FIRST_OF_4", chardata.UTF8_CLUES["utf8_first_of_4"]),
    ("UTF8_CONTINUATION", chardata.UTF8_CLUES["utf8_continuation"]),
    ("UTF8_CONTINUATION_STRICT", chardata.UTF8_CLUES["utf8_continuation_strict"]),
]
assert len(badness.MOJIBAKE_CATEGORIES) == 14 and len(chardata.UTF8_CLUES) == 5


def ranges_of(values):
    """values: list indexed by code point -> [(lo, hi, value)] for runs of a non-zero value."""
    out = []
    start = None
    for cp, v in enumerate(values + [0]):
        if start is not None and (cp == len(values) or v != values[start]):
            out.append((start, cp - 1, values[start]))
            start = None
        if start is None and cp < len(values) and v:
            start = cp
    return out


def c_str_cps(s):
    return "{" + ", ".join(f"0x{ord(c):X}" for c in s) + "}"


def main():
    assert unicodedata.unidata_version == "14.0.0", unicodedata.unidata_version
    lines = []
    w = lines.append

    # --- character classes --------------------------------------------------------------------
    masks = [0] * 0x10000
    for bit, (name, chars) in enumerate(CLASSES):
        # Sets are concatenated inside one class in ftfy's expressions: none may start or end
        # with '-' or the concatenation would form a range.
        assert not chars.startswith("-") and not chars.endswith("-"), name
        rx = re.compile("[" + chars + "]")
        for cp in range(0x10000):
            if rx.match(chr(cp)):
                masks[cp] |= 1 << bit
    union = re.compile("[" + "".join(c for _, c in CLASSES) + "]")
    assert not any(union.match(chr(cp)) for cp in range(0x10000, MAXCP)), "a class reaches past the BMP"
    class_ranges = ranges_of(masks)

    # --- \w, \d, \s ---------------------------------------------------------------------------
    word = re.compile(r"\w")
    digit = re.compile(r"\d")
    space = re.compile(r"\s")
    wvals = [0] * MAXCP
    dvals = [0] * MAXCP
    for cp in range(MAXCP):
        c = chr(cp)
        if word.match(c):
            wvals[cp] = 1
        if digit.match(c):
            dvals[cp] = 1
        assert bool(space.match(c)) == c.isspace(), hex(cp)
    word_ranges = ranges_of(wvals)
    digit_ranges = ranges_of(dvals)

    # --- codecs -------------------------------------------------------------------------------
    codecs_out = []
    for enc in chardata.CHARMAP_ENCODINGS:
        table = bytes(range(256)).decode(enc)
        assert len(table) == 256
        for b in range(0x80):
            if b != 0x1A:
                assert table[b] == chr(b), (enc, b)
        sloppy = enc.startswith("sloppy")
        assert (table[0x1A] == "\ufffd") == sloppy, enc
        allowed = {chr(b) for b in range(0x80) if b != 0x1A} | set(table[0x80:]) | {table[0x1A]}
        rx = chardata.ENCODING_REGEXES[enc]
        for cp in range(0x10000):
            assert bool(rx.match(chr(cp))) == (chr(cp) in allowed), (enc, hex(cp))
        pairs = []
        for c in sorted(allowed):
            if ord(c) >= 0x80 or (sloppy and c == "\ufffd"):
                b = c.encode(enc)
                assert len(b) == 1 and table[b[0]] == c, (enc, c)
                pairs.append((ord(c), b[0]))
        assert all(ord(c) < 0x10000 for c in table)
        codecs_out.append((enc, sloppy, table, pairs))
    cp1252 = []
    for b in range(256):
        try:
            cp1252.append(ord(bytes([b]).decode("windows-1252")))
        except UnicodeDecodeError:
            cp1252.append(0xFFFF)

    # --- entities, ligatures, width, control characters -----------------------------------
    ents = sorted(chardata.HTML_ENTITIES.items(), key=lambda kv: kv[0].encode())
    for k, v in ents:
        assert k.startswith("&") and k.endswith(";") and re.fullmatch(r"&[0-9A-Za-z]{1,24};", k) or \
            not re.fullmatch(r"&#?[0-9A-Za-z]{1,24};", k), k
    # Only names the entity pattern can match are ever looked up.
    ents = [(k[1:-1], v) for k, v in ents if re.fullmatch(r"&[0-9A-Za-z]{1,24};", k)]
    max_ent = max(len(v) for _, v in ents)
    assert max_ent <= 4
    lig = sorted(chardata.LIGATURES.items())
    width = sorted(chardata.WIDTH_MAP.items())
    assert max(len(v) for _, v in lig + width) <= 3
    ctrl = sorted(chardata.CONTROL_CHARS)
    ctrl_vals = [0] * 0x10000
    for cp in ctrl:
        ctrl_vals[cp] = 1
    ctrl_ranges = ranges_of(ctrl_vals)

    w("// ftfy_tables.c — generated by scripts/reference/make_ftfy_tables.py; do not edit.")
    w(f"// ftfy {ftfy.__version__}, Python {sys.version.split()[0]}, Unicode {unicodedata.unidata_version}.")
    w("// The character data behind data/ftfy.c (see data/ftfy.h and the script's docstring).")
    w('#include "data/ftfy.h"')
    w("")
    w(f"const int vlt_ftfy_class_count = {len(class_ranges)};")
    w("const vlt_ftfy_class_range vlt_ftfy_classes[] = {")
    for lo, hi, m in class_ranges:
        w(f"    {{0x{lo:X}, 0x{hi:X}, 0x{m:X}}},")
    w("};")
    for name, rs in (("word", word_ranges), ("digit", digit_ranges), ("control", ctrl_ranges)):
        w(f"const int vlt_ftfy_{name}_count = {len(rs)};")
        w(f"const vlt_ftfy_span vlt_ftfy_{name}[] = {{")
        for lo, hi, _ in rs:
            w(f"    {{0x{lo:X}, 0x{hi:X}}},")
        w("};")
    w(f"const vlt_ftfy_codec vlt_ftfy_codecs[VLT_FTFY_N_CODECS] = {{")
    assert len(codecs_out) == 10
    for enc, sloppy, table, pairs in codecs_out:
        w(f'    {{"{enc}", {int(sloppy)}, {len(pairs)},')
        w("     {" + ", ".join(f"0x{ord(c):X}" for c in table) + "},")
        w("     {" + ", ".join(f"{{0x{cp:X}, 0x{b:X}}}" for cp, b in pairs) + "}},")
    w("};")
    w("const uint16_t vlt_ftfy_cp1252[256] = {" + ", ".join(f"0x{c:X}" for c in cp1252) + "};")
    w(f"const int vlt_ftfy_entity_count = {len(ents)};")
    w("const vlt_ftfy_entity vlt_ftfy_entities[] = {")
    for k, v in ents:
        w(f'    {{"{k}", {len(v)}, {c_str_cps(v)}}},')
    w("};")
    for name, tbl in (("ligature", lig), ("width", width)):
        w(f"const int vlt_ftfy_{name}_count = {len(tbl)};")
        w(f"const vlt_ftfy_map vlt_ftfy_{name}s[] = {{")
        for cp, v in tbl:
            w(f"    {{0x{cp:X}, {len(v)}, {c_str_cps(v)}}},")
        w("};")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{OUT}: {len(class_ranges)} class ranges, {len(word_ranges)} \\w ranges, "
          f"{len(digit_ranges)} \\d ranges, {len(ents)} entities, {len(lig)} ligatures, "
          f"{len(width)} width forms, {len(ctrl)} control characters")


if __name__ == "__main__":
    main()
