#!/usr/bin/env python3
"""Writes tests/data/ftfy/fix_text.jsonl.gz and tests/data/ftfy/badness.jsonl.gz: web-style
strings with what ftfy.fix_text makes of them and open_clip's token ids, for
tests/test_data_ftfy.c (vlt's data/ftfy.c and the CLIP tokenizer against the Python originals).

    /work/venv-torch/bin/python scripts/reference/make_ftfy_fixture.py

fix_text.jsonl.gz: the first line is {"meta": {...}} (package versions, counts); then one JSON
object per string:
    cat    the generator it came from (alt_quotes, accented, cjk, whitespace, control, html,
           ligatures, fullwidth, plain, mixed, and mojibake_*: utf-8 read as windows-1252 /
           latin-1 / other single-byte codecs, double, partial, with lost bytes, with its
           no-break spaces turned into spaces)
    text   the string (never U+0000 or a lone surrogate: vlt takes NUL-terminated UTF-8)
    fixed  ftfy.fix_text(text) (ftfy's default configuration, as open_clip's basic_clean calls it)
    ids    open_clip.tokenize([text])[0] up to and including <end_of_text> (context 77)

badness.jsonl.gz: short random strings made of the characters ftfy's mojibake heuristic looks at,
with ftfy.badness.is_bad(text) as "bad" and the code points of ftfy.fix_encoding(text) as "enc"
(a list: the repair can give U+0000, from Java's C0 80), to check the heuristic and the encoding
repair on their own.

Everything is drawn from a seeded generator: the files are reproducible for given versions of
ftfy, open_clip and Python.
"""
import gzip
import json
import os
import random
import sys
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-* codecs)
import open_clip
import torch
from ftfy import badness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "data", "ftfy")
SEED = 20261204

# --- vocabulary -------------------------------------------------------------------------------

ADJ = ["small", "large", "red", "blue", "green", "old", "vintage", "wooden", "white", "black",
       "shiny", "colorful", "tall", "empty", "crowded", "snowy", "sunny", "handmade", "tiny",
       "giant", "organic", "modern", "rustic", "elegant", "cozy", "bright", "golden", "silver"]
NOUN = ["dog", "cat", "horse", "bus", "train", "pizza", "table", "kitchen", "street", "sofa",
        "giraffe", "bicycle", "clock", "umbrella", "laptop", "sandwich", "dress", "necklace",
        "poster", "mug", "lamp", "garden", "wedding cake", "mountain", "lake", "sunset", "t-shirt",
        "sneakers", "backpack", "chair", "watch", "ring", "painting", "house", "beach", "bridge"]
VERB = ["sitting on", "standing next to", "riding", "holding", "looking at", "walking down",
        "lying on", "playing with", "carrying", "in front of", "near", "under"]
PLACE = ["on a beach", "in a park", "at night", "in the snow", "in Paris", "in a kitchen",
         "near the water", "on a sunny day", "in a field", "at the airport", "", ""]
SHOP = ["Free Shipping", "Best Price", "Sale", "New Arrival", "Buy Now", "Limited Edition",
        "Size M", "100% Cotton", "Gift Idea", "Hot Deal", "Only Today", "In Stock"]
BRAND = ["Acme", "Nordic Home", "Zenith", "BlueOak", "Maison", "Kawaii Shop", "Urban", "Alpine"]

ACCENTED = ["café", "naïve", "résumé", "crème brûlée", "São Paulo", "Zürich", "München", "Málaga",
            "piñata", "jalapeño", "façade", "Ångström", "Øresund", "smørrebrød", "Kraków", "Łódź",
            "Gdańsk", "Žižkov", "Brno–Praha", "İstanbul", "çay", "Đà Nẵng", "Hà Nội", "phở",
            "élégant", "déjà vu", "Noël", "Ærø", "señorita", "garçon", "Ça va", "Dvořák",
            "Škoda", "Besançon", "Mühle", "Straße", "Bücher", "über", "Göteborg", "Reykjavík",
            "Þingvellir", "Ísland", "Köln", "Genève", "Côte d'Azur", "Ñuñoa", "São João", "ação",
            "coração", "Târgu Mureș", "București", "Šiauliai", "Rīga", "Tallinn Vanalinn", "Pécs",
            "Győr", "à la carte", "à la mode", "fiancée", "Łazienki", "Sœur", "œuvre", "Ærlig",
            "Ĳsselmeer", "Ōsaka", "Tōkyō", "Māori", "Hawaiʻi", "Ελλάδα", "Αθήνα", "Москва",
            "Санкт-Петербург", "Київ", "Беларусь", "Србија", "Ελληνικά", "español", "français"]
CJK = ["東京タワー", "富士山の写真", "北京烤鸭", "上海の夜景", "京都の紅葉", "서울 야경", "한국 음식",
       "日本の猫", "可愛い犬", "中国茶", "春节快乐", "おにぎり", "ラーメン", "寿司", "さくら", "桜の花",
       "新宿駅", "大阪城", "香港", "台北101", "김치찌개", "부산 해운대", "カフェラテ", "コーヒー",
       "写真素材", "無料画像", "高清壁纸", "风景", "美女", "手机壁纸", "イラスト", "アニメ", "漫画",
       "东方明珠", "故宫", "长城", "月見", "花火大会", "제주도", "お弁当", "抹茶", "和菓子"]
CJK_PUNCT = ["、", "。", "「", "」", "『", "』", "！", "？", "（", "）", "・", "ー", "〜", "：", "；",
             "，", "【", "】", "《", "》", "　", "…"]
OTHER_SCRIPTS = ["Привет мир", "Ночная Москва", "Καλημέρα", "مرحبا بالعالم", "שלום עולם",
                 "नमस्ते दुनिया", "สวัสดีชาวโลก", "Xin chào", "Merhaba dünya", "Cześć",
                 "Γειά σου κόσμε", "Здравствуйте", "ფოტო", "Բարեւ", "ሰላም", "বাংলা"]
EMOJI = ["😀", "🐶", "🍕", "❤️", "👍🏽", "🇫🇷", "🎉", "☕", "🌸", "🔥", "✨", "👨‍👩‍👧", "🏴󠁧󠁢󠁷󠁬󠁳󠁿", "©", "®", "™",
         "★", "☆", "✓", "✔", "→", "•", "·", "°", "±", "½", "¼", "¾", "€", "£", "¥", "§", "¶", "µ"]
SYMBOLS = ["$19.99", "€ 25,00", "£5", "¥1000", "50% off", "24°C", "5'10\"", "#1", "@user", "a+b=c",
           "~/docs", "(c) 2021", "1/2 price", "x2", "No. 5", "3×4", "10–20", "A—B", "[HD]", "{x}",
           "<3", "::", "--", "...", "!!!", "???"]
URLS = ["https://example.com/img?id=42&size=large", "www.shop.de/item/123", "http://a.b/c_d.jpg",
        "user@example.org", "ftp://files.net/pic.png"]


def pick(rng, xs):
    return xs[rng.randrange(len(xs))]


def caption(rng):
    s = f"{pick(rng, ['a', 'the', 'two', 'A', 'The', 'An old', 'Some'])} {pick(rng, ADJ)} " \
        f"{pick(rng, NOUN)} {pick(rng, VERB)} a {pick(rng, NOUN)}"
    place = pick(rng, PLACE)
    if place:
        s += " " + place
    r = rng.random()
    if r < 0.3:
        s += "."
    elif r < 0.4:
        s = s.upper()
    elif r < 0.6:
        s = f"{pick(rng, BRAND)} {pick(rng, ADJ).title()} {pick(rng, NOUN).title()} - {pick(rng, SHOP)}"
    return s


def words(rng, k):
    pool = ADJ + NOUN + ["and", "with", "for", "the", "of", "in", "on", "photo", "image", "stock",
                         "picture", "vector", "illustration", "background", "free", "HD", "4K"]
    return " ".join(pick(rng, pool) for _ in range(k))


def sprinkle(rng, s, items, p):
    """Inserts items between words of s with probability p per gap."""
    parts = s.split(" ")
    out = []
    for w in parts:
        out.append(w)
        if rng.random() < p:
            out.append(pick(rng, items))
    return " ".join(out)


# --- categories -------------------------------------------------------------------------------

SQ = ["\u2018", "\u2019", "\u201a", "\u201b", "\u02bc"]
DQ = ["\u201c", "\u201d", "\u201e", "\u201f"]
OTHER_Q = ["«", "»", "‹", "›", "「", "」", "\u2032", "\u2033", "`", "´", "\u02bb", "\u00b4"]


def gen_alt_quotes(rng):
    s = caption(rng)
    r = rng.random()
    if r < 0.3:
        s = f"{pick(rng, DQ)}{s}{pick(rng, DQ)}"
    elif r < 0.5:
        s = s.replace(" a ", f" {pick(rng, ['Tom', 'Anna', 'the artist', 'my mom'])}{pick(rng, SQ)}s ", 1)
    elif r < 0.7:
        s = f"{pick(rng, ['Don', 'It', 'We', 'They', 'Can'])}{pick(rng, SQ)}{pick(rng, ['t', 's', 're', 'll', 've'])} " + s
    elif r < 0.85:
        s = f"{s} {pick(rng, SQ)}{words(rng, 2)}{pick(rng, SQ)} {pick(rng, OTHER_Q)}{words(rng, 1)}{pick(rng, OTHER_Q)}"
    else:
        s = sprinkle(rng, s, SQ + DQ + OTHER_Q, 0.4)
    if rng.random() < 0.2:
        s += pick(rng, [" \u2026", "\u2026", " \u2013 ", " \u2014 ", " \u2022 "]) + words(rng, 2)
    return s


def nfd_some(rng, s):
    if rng.random() < 0.35:
        return unicodedata.normalize("NFD", s)
    if rng.random() < 0.1:
        return "".join(unicodedata.normalize("NFD", c) if rng.random() < 0.5 else c for c in s)
    return s


def gen_accented(rng):
    r = rng.random()
    if r < 0.4:
        s = f"{pick(rng, ACCENTED)} {caption(rng)}"
    elif r < 0.7:
        s = " ".join(pick(rng, ACCENTED) for _ in range(rng.randint(1, 5)))
    else:
        s = sprinkle(rng, caption(rng), ACCENTED, 0.35)
    s = nfd_some(rng, s)
    if rng.random() < 0.1:
        # combining marks in odd orders and stacked ones (NFC's canonical ordering)
        s += pick(rng, ["a\u0301\u0323", "a\u0323\u0301", "e\u0302\u0301", "o\u0308\u0304",
                        "\u1100\u1161\u11a8", "\u0915\u093c", "n\u0303", "A\u030a", "\u212b",
                        "\u2126", "K\u0327", "\u0041\u0328\u0301"])
    return s


def gen_cjk(rng):
    parts = []
    for _ in range(rng.randint(1, 5)):
        parts.append(pick(rng, CJK))
        if rng.random() < 0.6:
            parts.append(pick(rng, CJK_PUNCT))
        if rng.random() < 0.2:
            parts.append(pick(rng, [" ", "　", "", " - ", caption(rng)[:20]]))
    s = "".join(parts)
    if rng.random() < 0.25:
        s = pick(rng, [caption(rng) + " ", "【" + pick(rng, SHOP) + "】", "写真: ", ""]) + s
    if rng.random() < 0.15:
        s += pick(rng, ["ｶﾀｶﾅ", "ﾊﾟﾝ", "ｶﾞｷﾞｸﾞ", "ｺｰﾋｰ", "ﾎﾟｹﾓﾝ", "ﾗｰﾒﾝ", "ﾋﾟｶﾁｭｳ"])
    if rng.random() < 0.1:
        s = nfd_some(rng, s + pick(rng, ["が", "ぱ", "ガ", "가", "각", "뷁"]))
    return s


WS = ["\r\n", "\r", "\n", "\u2028", "\u2029", "\x85", "\t", "\x0b", "\x0c", "\u00a0", "\u2002",
      "\u2003", "\u2009", "\u200a", "\u200b", "\u202f", "\u205f", "\u3000", "\u1680", "  ", "   ",
      "\n\n", "\r\r\n", " \n ", "\u180e", "\ufeff", "\u200d", "\u2060"]


def gen_whitespace(rng):
    s = caption(rng)
    parts = s.split(" ")
    out = [parts[0]]
    for w in parts[1:]:
        out.append(pick(rng, WS) if rng.random() < 0.4 else " ")
        out.append(w)
    s = "".join(out)
    if rng.random() < 0.3:
        s = pick(rng, WS) + s + pick(rng, WS)
    if rng.random() < 0.15:
        s = s + pick(rng, ["\r\n", "\n", "\r"]) + caption(rng)
    return s


CTRL = [chr(c) for c in list(range(0x01, 0x09)) + [0x0b] + list(range(0x0e, 0x20)) + [0x7f]]
ESCAPES = ["\x1b[0m", "\x1b[1m", "\x1b[31m", "\x1b[1;32m", "\x1b[38;5;208m", "\x1b[2J", "\x1b[K",
           "\x1b[4;44m", "\x1b[m", "\x1b[;m", "\x1b[12;", "\x1b]0;title\x07", "\x1b(B", "\x1b[?25l",
           "\x1b[0;1;33;40m", "\x1b"]
OTHER_CTRL = ["\u206a", "\u206b", "\u206c", "\u206d", "\u206e", "\u206f", "\ufeff", "\ufff9",
              "\ufffa", "\ufffb", "\ufffc", "\ufffd", "\u200e", "\u200f", "\u202a", "\u202e",
              "\u200c", "\U000e0041", "\U0001d173", "\xad"]


def gen_control(rng):
    s = caption(rng)
    r = rng.random()
    if r < 0.35:
        s = sprinkle(rng, s, CTRL, 0.3)
    elif r < 0.65:
        e = pick(rng, ESCAPES)
        s = f"{e}{s}{pick(rng, ESCAPES)}" if rng.random() < 0.5 else sprinkle(rng, s, ESCAPES, 0.3)
    elif r < 0.85:
        s = sprinkle(rng, s, OTHER_CTRL, 0.3)
    else:
        s = sprinkle(rng, s, CTRL + ESCAPES + OTHER_CTRL, 0.4)
    if rng.random() < 0.15:
        # C1 controls: Windows-1252 characters read as Latin-1
        s = sprinkle(rng, s, [chr(c) for c in range(0x80, 0xa0)], 0.3)
    return s


HTML_ENT = ["&amp;", "&quot;", "&lt;", "&gt;", "&nbsp;", "&eacute;", "&Eacute;", "&EACUTE;",
            "&#39;", "&#039;", "&#x27;", "&#x2019;", "&#8217;", "&hellip;", "&mdash;", "&ndash;",
            "&rsquo;", "&lsquo;", "&ldquo;", "&rdquo;", "&copy;", "&reg;", "&trade;", "&euro;",
            "&pound;", "&NTILDE;", "&ntilde;", "&nTILDE;", "&SZLIG;", "&szlig;", "&uuml;", "&UUML;",
            "&amp;amp;", "&amp;quot;", "&amp;#39;", "&amp;lt;", "&foo;", "&amp", "&nbsp", "&copy",
            "&#128512;", "&#x1F600;", "&#0;", "&#x0;", "&#65;", "&#x41;", "&#X41;", "&#99999999;",
            "&#xD800;", "&#128;", "&#x80;", "&#150;", "&Jscr;", "&HilbertSpace;", "&checkmark;",
            "&not", "&notin;", "&NOT;", "&AMP;", "&LT;", "&frac12;", "&FRAC12;", "&deg;", "&DEG;",
            "&aacute;", "&AACUTE;", "&thinsp;", "&zwnj;", "&shy;", "&a;", "&;", "&#;", "&#x;",
            "&abcdefghijklmnopqrstuvwxyz;", "&aaaaaaaaaaaaaaaaaaaaaaaa;", "&#12345678901234567890;",
            "&ThickSpace;", "&NotNestedGreaterGreater;", "&fjlig;", "&ETH;", "&eth;", "&Igrave",
            "&IGRAVE;", "&OElig;", "&OELIG;", "&oelig;", "&quot", "&apos;", "&APOS;", "&Tab;",
            "&NewLine;", "&#13;", "&#10;", "&#x85;", "&#x2028;", "&#xfeff;", "&#x1b;"]
TAGS = ["<b>", "</b>", "<br>", "<br/>", "<i>", "</i>", "<p>", "</p>", "<a href=\"x\">", "</a>",
        "<", " < ", "<3"]


def gen_html(rng):
    s = caption(rng)
    s = sprinkle(rng, s, HTML_ENT, 0.35)
    if rng.random() < 0.3:
        s = pick(rng, HTML_ENT) + s
    r = rng.random()
    if r < 0.2:
        s = sprinkle(rng, s, TAGS, 0.2)
    elif r < 0.35:
        # a tag on one line disables unescaping from that line on, not before
        lines = [sprinkle(rng, caption(rng), HTML_ENT, 0.4) for _ in range(rng.randint(2, 4))]
        k = rng.randrange(len(lines))
        lines[k] = pick(rng, TAGS) + lines[k]
        s = pick(rng, ["\n", "\r\n", "\r"]).join(lines)
    elif r < 0.45:
        s = s.replace(" ", pick(rng, ["&nbsp;", "&#160;", "&#xa0;", " "]))
    if rng.random() < 0.1:
        s = sprinkle(rng, s, ACCENTED + ["Ã©", "â€™", "Ã¼"], 0.2)
    return s


LIG = ["ﬁ", "ﬂ", "ﬀ", "ﬃ", "ﬄ", "ﬅ", "ﬆ", "Ĳ", "ĳ", "ŉ", "Ǳ", "ǲ", "ǳ", "Ǆ", "ǅ", "ǆ", "Ǉ", "ǈ", "ǉ",
       "Ǌ", "ǋ", "ǌ", "æ", "Æ", "œ", "Œ", "ß", "ﬓ", "ﬔ", "ꝏ"]


def gen_ligatures(rng):
    words_ = ["ﬁsh", "ﬂower", "oﬃce", "coﬀee", "waﬄe", "ﬁeld", "ﬂight", "eﬃcient", "diﬀerent",
              "ﬁnal", "beﬆ", "ﬅyle", "ĳs", "Ĳmuiden", "ǅungla", "ǉubav", "Ǌemačka", "ŉ", "ﬁ", "ﬂ",
              "affiliate", "Æsir", "mœurs", "Straße", "ꝏ", "ﬓ"]
    s = sprinkle(rng, caption(rng), words_, 0.4)
    if rng.random() < 0.3:
        s = "".join(pick(rng, LIG) if c in "fi" and rng.random() < 0.3 else c for c in s)
    if rng.random() < 0.1:
        s = s.upper()
    return s


def to_fullwidth(s, rng, p=1.0):
    out = []
    for c in s:
        o = ord(c)
        if 0x21 <= o <= 0x7e and rng.random() < p:
            out.append(chr(o - 0x21 + 0xff01))
        elif c == " " and rng.random() < p:
            out.append("\u3000")
        else:
            out.append(c)
    return "".join(out)


HALFWIDTH = [chr(c) for c in range(0xff61, 0xffa0)] + [chr(c) for c in range(0xffa0, 0xffdd)] + \
    [chr(c) for c in range(0xffe0, 0xffef)]


def gen_fullwidth(rng):
    r = rng.random()
    if r < 0.4:
        s = to_fullwidth(caption(rng), rng, 1.0 if rng.random() < 0.5 else 0.5)
    elif r < 0.6:
        s = to_fullwidth(pick(rng, SYMBOLS + URLS), rng) + " " + pick(rng, CJK)
    elif r < 0.8:
        s = "".join(pick(rng, HALFWIDTH) for _ in range(rng.randint(1, 8))) + " " + caption(rng)
    else:
        s = sprinkle(rng, caption(rng), HALFWIDTH + ["ＡＢＣ", "１２３", "！", "？", "￥", "￡", "￠",
                                                     "ｶﾞ", "ﾊﾟ", "ﾟ", "ﾞ"], 0.4)
    return s


def gen_plain(rng):
    r = rng.random()
    if r < 0.35:
        return caption(rng)
    if r < 0.5:
        return sprinkle(rng, caption(rng), EMOJI + SYMBOLS, 0.3)
    if r < 0.6:
        return f"{pick(rng, OTHER_SCRIPTS)} {caption(rng)}"
    if r < 0.7:
        return f"{caption(rng)} {pick(rng, URLS)}"
    if r < 0.8:
        return " ".join(pick(rng, ACCENTED) for _ in range(rng.randint(1, 4))) + " " + pick(rng, EMOJI)
    if r < 0.9:
        # price tags, units and symbols next to letters: text the mojibake heuristic must leave alone
        return f"{pick(rng, BRAND)} {pick(rng, NOUN)} {pick(rng, ['¥', '£', '€', '$', '¢'])}" \
               f"{rng.randint(1, 999)} {pick(rng, ['½', '°', '±', '×', '²', '³', '™', '®', '©', '§', '¶'])}" \
               f"{pick(rng, ACCENTED)} {pick(rng, ['«', '»', '¿', '¡', '·', '•', '–', '—'])}"
    # random code points from many blocks
    out = []
    for _ in range(rng.randint(3, 20)):
        block = pick(rng, [(0x20, 0x7e), (0xa0, 0x17f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x6ff),
                           (0x900, 0x97f), (0xe00, 0xe7f), (0x2000, 0x206f), (0x20a0, 0x20bf),
                           (0x2100, 0x21ff), (0x2200, 0x22ff), (0x2500, 0x259f), (0x3040, 0x30ff),
                           (0x4e00, 0x9fff), (0xac00, 0xd7a3), (0x1f300, 0x1f6ff), (0xfe00, 0xfe0f)])
        out.append(chr(rng.randint(*block)))
    return "".join(out)


# --- mojibake -----------------------------------------------------------------------------------

BAD_ENCODINGS = ["windows-1252", "latin-1", "sloppy-windows-1252", "windows-1251", "windows-1250",
                 "windows-1253", "windows-1254", "windows-1257", "iso-8859-2", "macroman", "cp437",
                 "sloppy-windows-1251", "sloppy-windows-1250", "iso-8859-15", "cp850", "koi8-r"]
MOJI_SOURCES = ACCENTED + CJK + OTHER_SCRIPTS + ["“quoted”", "it’s", "—", "…", "•", "€", "™", "😀",
                                                 "🍕", "✔ No problems", "naïve café", "¯\\_(ツ)_/¯",
                                                 "Ã©", "½", "°C", "«»", "Å", "à", "á", "í"]


def moji(text, enc, errors="replace"):
    return text.encode("utf-8").decode(enc, errors=errors)


def phrase(rng):
    r = rng.random()
    if r < 0.5:
        return sprinkle(rng, caption(rng), MOJI_SOURCES, 0.4)
    if r < 0.8:
        return " ".join(pick(rng, MOJI_SOURCES) for _ in range(rng.randint(1, 4)))
    return pick(rng, MOJI_SOURCES)


def gen_moji_w1252(rng):
    return moji(phrase(rng), pick(rng, ["windows-1252", "sloppy-windows-1252", "sloppy-windows-1252"]))


def gen_moji_latin1(rng):
    return moji(phrase(rng), "latin-1")


def gen_moji_other(rng):
    return moji(phrase(rng), pick(rng, BAD_ENCODINGS[3:]))


def gen_moji_double(rng):
    e1 = pick(rng, ["sloppy-windows-1252", "latin-1", "windows-1252", "sloppy-windows-1251", "macroman"])
    e2 = pick(rng, ["sloppy-windows-1252", "latin-1", "windows-1252", "sloppy-windows-1251"])
    return moji(moji(phrase(rng), e1), e2)


def gen_moji_partial(rng):
    # a caption where only some words went through a wrong decoding: concatenated sources
    parts = caption(rng).split(" ")
    out = []
    for w in parts:
        out.append(w)
        if rng.random() < 0.35:
            src = pick(rng, MOJI_SOURCES)
            out.append(moji(src, pick(rng, ["sloppy-windows-1252", "latin-1", "windows-1252",
                                             "sloppy-windows-1251", "macroman"]))
                       if rng.random() < 0.6 else src)
    return " ".join(out)


def gen_moji_nbsp(rng):
    # mojibake whose U+00A0 characters were turned into plain spaces on the way
    s = moji(phrase(rng) + pick(rng, [" à la carte", " à", " às vezes", " àquele", " à quel",
                                      " Ô", " Ñ", " Ġ", " ␣", " न", " م", " Р", " Π", " 🍕"]),
             pick(rng, ["sloppy-windows-1252", "latin-1", "windows-1252"]))
    return s.replace("\xa0", " ") if rng.random() < 0.8 else s


def gen_moji_lossy(rng):
    s = moji(phrase(rng), pick(rng, ["windows-1252", "windows-1252", "sloppy-windows-1252"]))
    if rng.random() < 0.5:
        s = "".join("\ufffd" if (ord(c) in range(0x80, 0xa0) or c == "\x9d") else c for c in s)
    if rng.random() < 0.4:
        s = "".join("?" if c in "\u0081\u008d\u008f\u0090\u009d\ufffd" and rng.random() < 0.7 else c for c in s)
    return s


def gen_moji_misc(rng):
    r = rng.random()
    base = phrase(rng)
    if r < 0.2:   # CESU-8 / Java modified UTF-8 read as Latin-1
        b = base.encode("utf-16-le", "surrogatepass")
        units = [int.from_bytes(b[i:i + 2], "little") for i in range(0, len(b), 2)]
        cesu = b"".join(chr(u).encode("utf-8", "surrogatepass") for u in units)
        return cesu.decode(pick(rng, ["latin-1", "sloppy-windows-1252"]))
    if r < 0.3:
        return base.encode("utf-8").replace(b" ", b"\xc0\x80").decode("sloppy-windows-1252")
    if r < 0.5:   # mojibake mixed with HTML entities, curly quotes and line breaks
        return moji(base, "sloppy-windows-1252") + pick(rng, ["&amp;", "&eacute;", " “x”", "\r\n", "\n"]) + \
            moji(pick(rng, MOJI_SOURCES), "sloppy-windows-1252")
    if r < 0.65:  # uppercased mojibake
        return moji(base, "sloppy-windows-1252").upper()
    if r < 0.8:   # real text that looks a bit like mojibake
        return pick(rng, ["Ã la carte", "PÉREZ", "ÀÁÂÃÄÅ", "Ω≈ç√∫", "×²", "Â°C", "£ 5.00", "¬¬",
                          "ÃÂ", "вЂ", "Ã\xa0", "ā€", "β€™", "‚Ä†", "Ø§Ù", "ГўВЂВ™s", "╔══╗", "│█│",
                          "Ñ¢", "ˆ", "ƒ", "Œx", "œ.", "Ê°"]) + " " + caption(rng)
    # byte 0x1A and '?' inside mojibake
    return moji(base, "sloppy-windows-1252").replace(pick(rng, ["€", "™", "œ", "©"]), pick(rng, ["\x1a", "?", "\ufffd"]))


CATEGORIES = [
    ("alt_quotes", gen_alt_quotes, 1300),
    ("accented", gen_accented, 1100),
    ("cjk", gen_cjk, 1000),
    ("whitespace", gen_whitespace, 1000),
    ("control", gen_control, 900),
    ("html", gen_html, 1100),
    ("ligatures", gen_ligatures, 700),
    ("fullwidth", gen_fullwidth, 800),
    ("plain", gen_plain, 1500),
    ("mixed", None, 700),
    ("mojibake_w1252", gen_moji_w1252, 500),
    ("mojibake_latin1", gen_moji_latin1, 300),
    ("mojibake_other", gen_moji_other, 400),
    ("mojibake_double", gen_moji_double, 300),
    ("mojibake_partial", gen_moji_partial, 400),
    ("mojibake_nbsp", gen_moji_nbsp, 250),
    ("mojibake_lossy", gen_moji_lossy, 250),
    ("mojibake_misc", gen_moji_misc, 300),
]


def gen_mixed(rng):
    gens = [g for name, g, _ in CATEGORIES if g is not None and not name.startswith("mojibake")]
    k = rng.randint(2, 3)
    return pick(rng, [" ", "\n", " | ", "\r\n", ""]).join(pick(rng, gens)(rng) for _ in range(k))


def clean(s):
    """vlt reads NUL-terminated UTF-8: no NUL, no lone surrogates."""
    s = s.replace("\x00", "")
    return "".join(c for c in s if not 0xd800 <= ord(c) <= 0xdfff)


def expand(chars):
    """A character-class body as ftfy writes it ("a-z" ranges included) -> list of characters."""
    out = []
    i = 0
    while i < len(chars):
        if i + 2 < len(chars) and chars[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(chars[i]), ord(chars[i + 2]) + 1))
            i += 3
        else:
            out.append(chars[i])
            i += 1
    return out


def badness_templates():
    """One template per alternative of ftfy.badness.BADNESS_RE: a list of character pools."""
    from ftfy.badness import MOJIBAKE_CATEGORIES as MC
    C = {k: expand(v) for k, v in MC.items()}

    def u(*names):
        return sorted(set(c for n in names for c in (C[n] if n in C else n)))
    ws = [" ", "\t", "\n", "\xa0", "\u3000", "\u2003"]
    word = list("aZ09_") + ["é", "中", "٣", "ß", "Ж"]
    anych = list("aZ .\n1") + ["é", "€", "Ã"]
    M = u("common", "currency", "bad", "numeric", "start_punctuation", "ŸŠ®°µ»")
    return [
        [u("c1")],
        [u("bad", "lower_accented", "upper_accented", "box", "start_punctuation", "end_punctuation", "currency", "numeric", "law"), u("bad")],
        [list("aZqQ"), u("lower_common", "upper_common"), u("bad")],
        [u("bad"), u("lower_accented", "upper_accented", "box", "start_punctuation", "end_punctuation", "currency", "numeric", "law")],
        [u("lower_accented", "lower_common", "box", "end_punctuation", "currency", "numeric"), u("upper_accented")],
        [u("box", "end_punctuation", "currency", "numeric"), u("lower_accented")],
        [u("lower_accented", "box", "end_punctuation"), u("currency")],
        [ws, u("upper_accented"), u("currency")],
        [u("upper_accented", "box"), u("numeric", "law")],
        [u("lower_accented", "upper_accented", "box", "currency", "end_punctuation"), u("start_punctuation"), u("numeric")],
        [u("lower_accented", "upper_accented", "currency", "numeric", "box", "law"), u("end_punctuation"), u("start_punctuation")],
        [u("currency", "numeric", "box"), u("start_punctuation")],
        [list("az"), u("upper_accented"), u("start_punctuation", "currency")],
        [u("box"), u("kaomoji")],
        [u("lower_accented", "upper_accented", "currency", "numeric", "start_punctuation", "end_punctuation", "law"), u("box")],
        [u("box"), u("end_punctuation")],
        [u("lower_accented", "upper_accented"), u("start_punctuation", "end_punctuation"), word],
        [list("Œœ"), anych + list("aZ")],
        [u("upper_accented"), ["°"]],
        [list("ÂÃÎÐ"), u("€œŠš¢£Ÿž\xa0\xad®©°·»–—´", "start_punctuation", "end_punctuation")],
        [["×"], list("²³")],
        [list("ØÙ"), M, list("ØÙ"), M],
        [["à"], list("²µ¹¼½¾")],
        [["√"], list("±∂†≠®™´≤≥¥µø")],
        [["≈"], list("°¢")],
        [["‚"], ["Ä"], list("ìîïòôúùû†°¢π")],
        [["‚"], list("âó"), list("àä°ê")],
        [["в"], ["Ђ"]],
        [list("ВГРС"), u("c1", "bad", "start_punctuation", "end_punctuation", "currency", "°µ"), list("ВГРС")],
        [["Г"], ["ў"], ["В"], ["Ђ"], ["В"], anych, list("aZ \n")],
        [["Ã"], ["\xa0", "¡"]],
        [list("az"), ws + [""], list("ÃÂ"), [" "]],
        [list("ÃÂ"), [" "]],
        [list("az.,?!") + u("end_punctuation"), ["Â"], [" "] + u("start_punctuation", "end_punctuation")],
        [["β"], ["€"], list("™\xa0Ά\xad®°")],
        [list("ΒΓΞΟ"), u("c1", "bad", "start_punctuation", "end_punctuation", "currency", "°"), list("ΒΓΞΟ")],
        [["ā"], ["€"]],
    ]


def badness_strings(rng, n):
    """Strings built on each alternative of the heuristic (some with one character changed, so
    that near misses are there too), random strings of the characters it looks at, and byte
    soups of UTF-8 pieces, spaces, '?', 0x1A, 0xC0 and 0xED read as Latin-1 or sloppy
    windows-1252 (restore_byte_a0, replace_lossy_sequences, utf-8-variants)."""
    from ftfy.badness import MOJIBAKE_CATEGORIES as MC
    pool = []
    for v in MC.values():
        pool.extend(expand(v))
    pool += list("abcxyzABCXYZ .,?!'\n\t") + ["\xa0", "\u2003", "é", "Ã", "Â", "Î", "Ð", "Ø", "Ù", "√",
                                              "≈", "‚", "Ä", "в", "Ђ", "Г", "ў", "В", "β", "€", "ā",
                                              "Œ", "œ", "×", "²", "³", "à", "¡", "Β", "Γ", "Ξ", "Ο", "Р",
                                              "С", "_", "1"]
    templates = badness_templates()
    soup = [bytes([b]) for b in list(range(0x80, 0xC0, 3)) + [0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9, 0xE0,
                                                               0xE2, 0xE3, 0xED, 0xC0, 0xF0, 0xF3, 0xA0,
                                                               0x85, 0xA5, 0xA6]] + \
        [b" ", b"?", b"\x1a", b"\n", b"a", b"quele", b"s ", b"\xc0\x80", b"\xed\xa0\xbd\xed\xb8\x80",
         b"\xed\xa0\xbd\xed\xb8\n"] + [c.encode() for c in "é€™“”…à ñ😀中ф"]
    out = []
    for k in range(n):
        r = k % 3
        if r == 0:
            t = pick(rng, templates)
            s = [pick(rng, pool_) for pool_ in t]
            if rng.random() < 0.3:
                s[rng.randrange(len(s))] = pick(rng, pool)
            pre = "".join(pick(rng, pool) for _ in range(rng.choice([0, 0, 1, 2])))
            post = "".join(pick(rng, pool) for _ in range(rng.choice([0, 1, 2])))
            s = pre + "".join(s) + post
        elif r == 1:
            s = "".join(pick(rng, pool) for _ in range(rng.randint(1, 6)))
        else:
            b = b"".join(pick(rng, soup) for _ in range(rng.randint(1, 8)))
            s = b.decode(pick(rng, ["latin-1", "sloppy-windows-1252"]))
        s = clean(s)
        if s and len(s.encode()) < 64:
            out.append(s)
    return out


def main():
    rng = random.Random(SEED)
    tok = open_clip.get_tokenizer("ViT-B-32")
    rows = []
    for name, gen, count in CATEGORIES:
        if gen is None:
            gen = gen_mixed
        seen = set()
        tries = 0
        while sum(1 for r in rows if r[0] == name) < count and tries < count * 20:
            tries += 1
            s = clean(gen(rng))
            if not s or s in seen:
                continue
            seen.add(s)
            rows.append((name, s))
    texts = [s for _, s in rows]
    ids = []
    for i in range(0, len(texts), 512):
        t = tok(texts[i:i + 512])
        for row in t.tolist():
            end = row.index(49407) + 1 if 49407 in row else len(row)
            ids.append(row[:end])
    os.makedirs(OUT_DIR, exist_ok=True)
    counts = {}
    changed = {}
    path = os.path.join(OUT_DIR, "fix_text.jsonl.gz")
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9, newline="\n") as f:
        fixed_all = [ftfy.fix_text(s) for s in texts]
        for (name, s), fx in zip(rows, fixed_all):
            counts[name] = counts.get(name, 0) + 1
            changed[name] = changed.get(name, 0) + (fx != s)
        meta = {"ftfy": ftfy.__version__, "open_clip": open_clip.__version__,
                "python": sys.version.split()[0], "unicode": unicodedata.unidata_version,
                "seed": SEED, "strings": len(rows), "per_category": counts, "changed_by_ftfy": changed}
        f.write(json.dumps({"meta": meta}, ensure_ascii=False) + "\n")
        for (name, s), fx, i in zip(rows, fixed_all, ids):
            f.write(json.dumps({"cat": name, "text": s, "fixed": fx, "ids": i}, ensure_ascii=False) + "\n")
    bad_rows = badness_strings(rng, 9000)
    path2 = os.path.join(OUT_DIR, "badness.jsonl.gz")
    with gzip.open(path2, "wt", encoding="utf-8", compresslevel=9, newline="\n") as f:
        for s in bad_rows:
            f.write(json.dumps({"text": s, "bad": int(badness.is_bad(s)),
                                "enc": [ord(c) for c in ftfy.fix_encoding(s)]},
                               ensure_ascii=False) + "\n")
    print(f"{path}: {len(rows)} strings; per category {counts}; changed by ftfy {changed}")
    print(f"{path2}: {len(bad_rows)} strings, {sum(badness.is_bad(s) for s in bad_rows)} bad")
    _ = torch


if __name__ == "__main__":
    main()
