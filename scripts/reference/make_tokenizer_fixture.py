#!/usr/bin/env python3
"""Writes tests/data/data/tokenizer_fixture.tsv: strings with open_clip's token ids.

    /work/venv/bin/python scripts/reference/make_tokenizer_fixture.py [--bench-out FILE]

Each data line holds, tab-separated:
    ctx     context length passed to open_clip.tokenize
    ftfy    0: ftfy.fix_text(s) == s (open_clip's ids are what vlt must give)
            1: ftfy changes s (before data/ftfy.c, vlt gave the "noftfy" ids; tests/test_data_tokenizer.c
               now expects open_clip's ids, ftfy included, on every string)
    kind    the generator the string came from (caption, punct, digits, ...)
    text    the string, UTF-8, with \\\\ \\t \\n \\r and \\xHH (other bytes < 0x20, 0x7f) escaped
    ids     open_clip.tokenize(text, ctx) without the zero padding (SOT ... EOT)
    noftfy  the same with ftfy.fix_text replaced by the identity, or "=" when equal to ids
    decoded open_clip's SimpleTokenizer.decode of the noftfy ids before the first EOT, SOTs
            left out (what vlt_tokenizer_decode promises), escaped
Lines starting with '#' are comments (versions and counts). Strings are drawn from a seeded
generator, so the file is reproducible for given package versions.
"""
import argparse
import contextlib
import os
import random
import sys

import ftfy
import open_clip
import regex
from open_clip import tokenizer as oct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "data", "tokenizer_fixture.tsv")


# --- strings ----------------------------------------------------------------------------------

ADJ = ["small", "large", "red", "blue", "green", "old", "young", "wooden", "white", "black", "shiny",
       "colorful", "tall", "empty", "crowded", "snowy", "sunny", "dirty", "tiny", "giant"]
NOUN = ["man", "woman", "dog", "cat", "horse", "bus", "train", "pizza", "table", "kitchen", "street",
        "surfboard", "giraffe", "elephant", "bicycle", "clock", "umbrella", "laptop", "sandwich",
        "skateboard", "tennis racket", "fire hydrant", "teddy bear", "zebra", "boat", "airplane",
        "child", "group of people", "plate of food", "stop sign", "motorcycle", "couch", "bed"]
VERB = ["sitting on", "standing next to", "riding", "holding", "looking at", "walking down",
        "eating", "parked near", "flying over", "lying on", "playing with", "carrying", "jumping over"]
PLACE = ["on a beach", "in a park", "at night", "in the snow", "on a city street", "in a kitchen",
         "near the water", "in front of a building", "on a sunny day", "in a field", "at the airport",
         "under a tree", "", "", ""]
DET = ["a", "the", "two", "three", "some", "an old", "several", "A", "The", "Two"]


def caption(rng):
    det = rng.choice(DET)
    s = f"{det} {rng.choice(ADJ)} {rng.choice(NOUN)} {rng.choice(VERB)} a {rng.choice(NOUN)}"
    place = rng.choice(PLACE)
    if place:
        s += " " + place
    r = rng.random()
    if r < 0.3:
        s = s[0].upper() + s[1:] + "."
    elif r < 0.4:
        s = s.upper()
    elif r < 0.5:
        s += ", " + rng.choice(["and", "while", "with"]) + " " + rng.choice(DET) + " " + rng.choice(NOUN)
    elif r < 0.55:
        s = s.replace(" ", rng.choice(["  ", "\t", " \n "]))
    elif r < 0.6:
        s += rng.choice(["!", "?", " .", "...", ";", " :)", " #photo", " @user", " (2019)"])
    elif r < 0.65:
        s = s.title()
    return s


PUNCT = [
    "Hello, world!", "...", "?!?!", "(a) [b] {c}", "\"quoted\" text", "'single'", "--", "a/b/c",
    "e-mail", "#hashtag", "@user_name", "$5.99", "100%", "C++", "U.S.A.", "a.b.c", "x = y + z;",
    "foo_bar-baz", "<html>", "</w>", "a</w>b", "~!@#$%^&*()_+`-={}|[]\\:\";'<>?,./", "!!!", ",,,",
    "....!!!!????", "«guillemets»", "¿Qué?", "¡Hola!", "—dash—", "…", "•bullet", "§ 12", "© 2020",
    "® ™", "° C", "±1", "×÷", "½ ¼ ¾", "→ ← ↑ ↓", "★☆", "♪♫", "✓✗", "∑∫√∞", "≤≥≠", "¶", "†‡",
    "[[link]]", "{{template}}", "https://example.com/a?b=c&d=e", "user@example.com",
    "path/to/file.jpg", "C:\\Users\\x", "tab\there", "a\\b", "**bold**", "__init__", "#1 fan",
    "it's 5 o'clock", "'", "''", "'''", "' s", "'s", "''s", "!'s", "x'sy", "a'b'c", "a''b",
]

DIGITS = [
    "1234567", "3.14159", "2nd place", "10,000", "1st-place", "+1 (555) 123-4567", "0", "007",
    "12:30pm", "2019-05-01", "v1.2.3", "4x4", "5km", "1/2", "99.9%", "1e10", "0x1F", "३४५", "٣٤٥",
    "一二三", "①②③", "Ⅻ", "ⅻ", "²³¹", "¼", "𝟙𝟚𝟛", "１２３", "〇", "৳৫", "٫", "1,234.56", "-5",
]

CONTRACTIONS = [
    "it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "IT'S", "DON'T", "They'Re",
    "ain't", "o'clock", "rock'n'roll", "'s'", "'sss", "it'ſ", "it'S", "we'VE", "y'all",
    "can't won't shouldn't", "'d've", "'ll'll", "the dog's bone", "james' hat", "'re", "'m",
    "'t", "'ve", "'d", "'ll", "'", "''", "it’s", "don’t",
]

ACCENTS = [
    "café", "naïve", "Zürich", "São Paulo", "crème brûlée", "Ångström", "Øresund", "Łódź",
    "Dvořák", "Ærøskøbing", "façade", "jalapeño", "résumé", "cafe\u0301", "e\u0301\u0301",
    "İstanbul", "İ", "ıi", "ΣΟΦΙΑ", "ΟΔΟΣ", "ΟΔΟΣ.", "Σ", "ΑΣ'Β", "ΑΣ.", "ΑΣ'", "Α.Σ", "ΑΣΑ",
    "ΌΣΟΣ ΣΑΣ", "σς", "STRASSE", "ß", "ẞ", "Ǆ ǅ ǆ", "ǈ", "ΐ", "ﬁ ﬂ", "Ω Ω", "K K", "Å Å",
    "\u0345", "a\u0345b", "Σ\u0345", "ἈΣ", "Привет мир", "ЁЖИК", "Ελληνικά", "עברית", "العربية",
    "हिन्दी", "ไทย", "Tiếng Việt", "Ǳ", "ǲ", "ᾼ", "ᾈ", "Ⓐ ⓐ", "Ⅻ", "ꞵ", "𐐀 𐐨", "𞤀", "ſ", "ﬅ",
]

CJK = [
    "一只猫坐在桌子上", "東京タワー", "ひらがな カタカナ", "한국어 문장입니다", "漢字とかな",
    "中文English混合", "ＡＢＣ ａｂｃ", "「引用」", "、。！？", "𠀀𠀁", "㈱", "ｶﾀｶﾅ",
    "猫", "日本語のテキストです。", "北京欢迎你", "서울", "ㄱㄴㄷ", "〜", "・", "ー",
]

EMOJI = [
    "😀", "👍🏽", "👨‍👩‍👧", "🇺🇸", "❤️", "a 🐶 dog", "🍕🍕🍕", "I ❤ NY", "☃", "⚽️ game",
    "🏳️‍🌈", "👩🏿‍💻", "🤖🤖", "😂😂😂 lol", "🙂🙃", "*️⃣", "#️⃣", "©️", "🎉 party!", "©",
]

ENTITIES = [
    "&amp;", "&lt;b&gt;", "&#39;", "&#x27;", "&nbsp;", "&amp;amp;", "&amp;amp;amp;", "&ampx",
    "&notin", "&notit;", "&not", "&#0;", "&#128;", "&#x80;", "&#xD800;", "&#1114112;", "&#65",
    "&#x41", "&#X41;", "&CounterClockwiseContourIntegral;", "&", "&&", "&;", "&#;", "&#x;",
    "a &amp b", "&quot;hi&quot;", "&eacute;t&eacute;", "&Eacute", "&hearts;", "&NotNestedGreaterGreater;",
    "&nGt;", "&#9;tab", "&#10;", "&#13;", "&#1;", "&#xFFFE;", "&#x10FFFF;", "&#x110000;",
    "&#99999999999999999999;", "&#0000065;", "&#x0041;", "&amp;lt;", "&lt;&lt;", "&AMP;",
    "&AMP", "&ampamp;", "& amp;", "&am", "&a", "&ab;", "&zwj;", "&zwnj;", "&shy;",
    "&aacute&eacute", "&#128512;", "&#x1F600;", "&#55357;&#56832;", "&#x20AC;", "&euro;",
    "&Alpha;&Omega;", "&SIGMA;", "&Sigma;", "A&Sigma;", "&#931;", "&#304;", "&#x130;",
    "&abcdefghijklmnopqrstuvwxyzabcdefghij;", "&" + "a" * 40, "&lt", "&gt", "&LT", "&GT;",
]
# The same entities with a '<' in the text: ftfy then leaves HTML alone, so open_clip's ids
# (ftfy included) are the ones vlt must give.
ENTITIES_LT = ["<p>" + e + "</p>" for e in ENTITIES] + ["<" + e for e in ENTITIES[:30]]

WHITESPACE = [
    "  a  b  ", "\t\n", "a\u00a0b", "\u3000x\u3000", "a\u2028b", "a\u2029b", "a\x1cb", "a\x1fb",
    "a\u200bb", "a\u2009b\u202fc", "\r\n", "a\r\nb", "a\rb", "\x0b\x0c", "a\x85b", " ", "\n",
    "a\u1680b", "a\u180eb", "a\ufeffb", "   leading", "trailing   ", "a \t \n b", "x\u205fy",
    "a\u2060b", "\u00ad", "soft\u00adhyphen",
]

SPECIALS = [
    "<start_of_text>", "<end_of_text>", "<START_OF_TEXT>", "<ſtart_of_text>", "a<end_of_text>b",
    "<start_of_text", "<<start_of_text>>", "<end_of_text><end_of_text>", "x <start_of_text> y",
    "<start_of_text>'s", "<Start_Of_Text>",
]


def random_unicode(rng, n):
    """Code points from all over the planes, with a bias to interesting blocks."""
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x250, 0x36F), (0x370, 0x52F), (0x530, 0x10FF),
              (0x1100, 0x1FFF), (0x2000, 0x2BFF), (0x2C00, 0x2FFF), (0x3000, 0x9FFF),
              (0xA000, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x1FFFF), (0x20000, 0x10FFFF)]
    out = []
    for _ in range(n):
        lo, hi = rng.choice(blocks)
        c = rng.randint(lo, hi)
        if 0xD800 <= c <= 0xDFFF or c == 0:
            c = 0x41
        out.append(chr(c))
        if rng.random() < 0.15:
            out.append(" ")
    return "".join(out)


def random_ascii(rng, n):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:'\"!?&#<>/-_()\t\n"
    return "".join(rng.choice(alphabet) for _ in range(n))


def long_strings(rng):
    out = []
    for _ in range(10):
        out.append(" ".join(caption(rng) for _ in range(8)))
    out += ["a" * 500, "ab" * 300, "1" * 200, "!" * 300, "猫" * 120, "😀" * 100,
            "supercalifragilisticexpialidocious" * 20, "a " * 200, "&amp;" * 100,
            "ΣΣΣΣ " * 50, "İ" * 100, "x" * 5000, " ".join(["word"] * 74), " ".join(["word"] * 75),
            " ".join(["word"] * 76), " ".join(["word"] * 77), "hello " * 1000]
    return out


def strings(rng):
    """(kind, text, ctx) triples."""
    out = []
    out += [("caption", caption(rng), 77) for _ in range(1200)]
    for kind, lst in [("punct", PUNCT), ("digits", DIGITS), ("contraction", CONTRACTIONS),
                      ("accent", ACCENTS), ("cjk", CJK), ("emoji", EMOJI), ("entity", ENTITIES),
                      ("entity_lt", ENTITIES_LT), ("whitespace", WHITESPACE), ("special", SPECIALS)]:
        out += [(kind, s, 77) for s in lst]
        # the same strings inside a caption, and upper-cased
        out += [(kind, f"{caption(rng)} {s} {rng.choice(NOUN)}", 77) for s in lst]
        out += [(kind, s.upper(), 77) for s in lst]
    out += [("empty", "", 77), ("empty", " ", 77), ("empty", "\t\n ", 77)]
    out += [("long", s, 77) for s in long_strings(rng)]
    out += [("unicode", random_unicode(rng, rng.randint(1, 40)), 77) for _ in range(400)]
    out += [("ascii", random_ascii(rng, rng.randint(1, 60)), 77) for _ in range(200)]
    for ctx in (2, 3, 5, 16, 100):
        out += [("ctx", caption(rng) + " " + caption(rng), ctx) for _ in range(5)]
        out += [("ctx", "猫" * 30, ctx), ("ctx", "", ctx)]
    return out


# --- ids --------------------------------------------------------------------------------------

@contextlib.contextmanager
def no_ftfy():
    saved = ftfy.fix_text
    ftfy.fix_text = lambda s: s
    try:
        yield
    finally:
        ftfy.fix_text = saved


def ids_of(text, ctx):
    row = open_clip.tokenize([text], context_length=ctx)[0].tolist()
    n = len(row)
    while n > 0 and row[n - 1] == 0:
        n -= 1
    return row[:n]


def decode_like_vlt(ids):
    """open_clip's decode of the ids before the first EOT, SOTs dropped (vlt's contract)."""
    eot, sot = oct._tokenizer.eot_token_id, oct._tokenizer.sot_token_id
    if eot in ids:
        ids = ids[:ids.index(eot)]
    return oct._tokenizer.decode([t for t in ids if t != sot])


def escape(s):
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif c == "\t":
            out.append("\\t")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif b < 0x20 or b == 0x7F:
            out.append(f"\\x{b:02x}")
        else:
            out.append(None)
            out[-1] = bytes([b])
    # join bytes and str pieces
    raw = b"".join(p.encode() if isinstance(p, str) else p for p in out)
    return raw.decode("utf-8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-out", help="also write the caption strings, one per line, here")
    args = ap.parse_args()
    rng = random.Random(20240603)
    rows, seen = [], set()
    for kind, text, ctx in strings(rng):
        if (text, ctx) in seen:
            continue
        seen.add((text, ctx))
        fixed = ftfy.fix_text(text) != text
        ids = ids_of(text, ctx)
        with no_ftfy():
            raw = ids_of(text, ctx)
            decoded = decode_like_vlt(raw)
        rows.append((ctx, int(fixed), kind, text, ids, raw, decoded))
    n_fixed = sum(r[1] for r in rows)
    n_fixed_diff = sum(1 for r in rows if r[1] and r[4] != r[5])
    lines = [
        "# open_clip.tokenize ids; made by scripts/reference/make_tokenizer_fixture.py",
        f"# open_clip_torch {open_clip.__version__}, ftfy {ftfy.__version__}, regex {regex.__version__}, "
        f"python {sys.version.split()[0]}",
        f"# strings {len(rows)}; ftfy changes {n_fixed} of them, and for {n_fixed_diff} of those "
        "open_clip's ids differ from the no-ftfy ids",
        "# ctx\tftfy\tkind\ttext\tids\tnoftfy\tdecoded",
    ]
    for ctx, fixed, kind, text, ids, raw, decoded in rows:
        lines.append("\t".join([str(ctx), str(fixed), kind, escape(text), " ".join(map(str, ids)),
                                "=" if raw == ids else " ".join(map(str, raw)), escape(decoded)]))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {OUT}: {len(rows)} strings, ftfy changes {n_fixed} "
          f"(ids differ for {n_fixed_diff})", file=sys.stderr)
    if args.bench_out:
        with open(args.bench_out, "w", encoding="utf-8") as f:
            for r in rows:
                if r[2] == "caption":
                    f.write(r[3].replace("\n", " ").replace("\r", " ") + "\n")


if __name__ == "__main__":
    main()
