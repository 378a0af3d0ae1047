#!/usr/bin/env python3
"""Makes the BERT WordPiece tokenizer fixtures of tests/test_data_bert_tokenizer.c.

    python3 -m venv /work/venv-bert && /work/venv-bert/bin/pip install "transformers==4.57.6"
    /work/venv-bert/bin/python scripts/reference/make_bert_tokenizer_fixture.py

(torch is not needed.) Writes, under tests/data/bert/:

- vocab_uncased.txt, vocab_cased.txt: two small BERT vocabularies (a few thousand lines: the
  special tokens, single characters and their "##" forms, whole words and "##" suffixes
  learned from the fixture text by counting, with some characters deliberately left out so that
  [UNK] is common). Built here because the Hugging Face hub is not reachable from the build
  machine; a user's real vocab.txt works the same way (see README).
- fixture.tsv.gz: 3,000+ generated strings (web text, captions, accents, combining marks,
  CJK, Hangul, emoji, control / format / unassigned / private-use characters, Unicode spaces,
  long inputs and over-long words, repeated punctuation, numbers, URLs, mixed scripts, special
  token strings, invalid UTF-8, random code points), each encoded by transformers'
  BertTokenizer (the Python one) with both vocabularies: all WordPiece ids, the ids and
  attention mask of tokenizer(text, max_length=L, truncation=True, padding="max_length") for a
  per-string L, and convert_tokens_to_string of the tokens.
- unicode_norm.tsv.gz: unicodedata.normalize("NFD"/"NFC") of every code point that either changes
  and of combining sequences (reordering, composition, blocking, Hangul), for data/unicode_norm.c.

It also runs BertTokenizerFast (the Rust `tokenizers` library 0.22.2) on the same strings and
prints where it differs from BertTokenizer; vlt follows the Python BertTokenizer. On this fixture
the fast one differs on 291 (uncased) and 430 (cased) of the 3,214 strings, all from these
causes (none on plain web text, accents, numbers, URLs, punctuation or long inputs):
- no NFC step: combining sequences ("i" + U+0307, "a" + U+0328 + U+0301) and conjoining Hangul
  jamo are not composed (the Python tokenizer NFC-normalizes after cleaning);
- unassigned (Cn) code points, e.g. U+FDDB, U+10FFFF or planes 12-16, are kept (and become [UNK])
  where the Python one drops them as "control" characters (its unicodedata category starts
  with C); Rust's Unicode tables are also newer than Python 3.11's 14.0;
- CJK Extension E/F (U+2B820..U+2CEAF) are not split into single characters;
- a special token spelled out after control characters are removed ("[CL\x01S]") is split by
  the fast one, kept whole (never_split) by the Python one.
"""
import collections
import gzip
import os
import random
import sys
import unicodedata

import tokenizers
import transformers
from transformers import BertTokenizer, BertTokenizerFast
from transformers.models.bert.tokenization_bert import BasicTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "bert")
SPECIALS = ["[PAD]", "[unused0]", "[unused1]", "[unused2]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

WORDS = """the a an of to in and on with for at by from is are was were be been being this that these
those it its they them their there here what which who whom whose when where why how all any both each
few more most other some such no nor not only own same so than too very can will just should now
man woman person people child children boy girl dog cat horse bird cow sheep elephant bear zebra giraffe
car bus train truck bicycle motorcycle airplane boat traffic light fire hydrant stop sign parking meter
bench table chair couch bed toilet television laptop mouse remote keyboard phone microwave oven toaster
sink refrigerator book clock vase scissors teddy toothbrush pizza donut cake sandwich banana apple orange
broccoli carrot hot kite skateboard surfboard tennis racket baseball glove frisbee skis snowboard ball
sitting standing walking running playing eating holding riding flying lying looking watching waiting
parked driving swimming jumping talking smiling reading cooking cutting wearing carrying throwing
small large big little young old new red blue green yellow white black brown gray pink purple colorful
wooden metal plastic dirty clean empty full open closed tall short long wide narrow beautiful happy
street road field beach park kitchen room bathroom bedroom city building house window door wall floor
water snow grass sky tree trees flowers mountain river lake ocean sand airport station market store
morning evening night day today tomorrow yesterday week month year time minute hour second
next near behind under over above below beside between inside outside into onto through across around
website online click download free shipping price sale discount offer order account login password email
subscribe newsletter privacy policy terms conditions copyright reserved search results page home contact
about blog post comment share like follow video photo image gallery news update release version support
information service services company business product products customer customers quality design
development software hardware computer internet network data system systems user users application
unbelievable unaffable international internationalization understanding misunderstanding
reconstruction preprocessing tokenization tokenizer tokenizers transformer transformers
""".split()

ACCENTED = """café naïve résumé façade jalapeño piñata crème brûlée déjà vu über Müller Straße Ångström
São Paulo Kraków Zürich Málaga Besançon Bjørn Dvořák Łódź İstanbul Ærø ɸonétique Tiếng Việt
Nguyễn Hà Nội phở bánh mì cœur œuvre Œdipe fiancée señor niño coração ação Ελληνικά ΟΔΟΣ
ΣΟΦΟΣ σοφός Москва Привет мир Київ""".split()

CJK = ["一只猫坐在桌子上", "北京欢迎你", "我爱自然语言处理", "東京タワーの夜景", "日本語のテキストです",
       "ひらがなとカタカナ", "한국어 문장입니다", "서울의 밤", "中文English混合", "漢字テスト㐀䶵",
       "𠀀𠀁𪜀𫝀𫠠𬺰", "豈更車", "統計學習方法", "你好，世界！", "「引用」『二重』【括弧】", "〇一二三"]

EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "❤️", "🇫🇷", "🏳️‍🌈", "✨🔥💯", "☕", "🙂🙃", "⌚⏰", "🤖🧠", "1️⃣", "©®™"]

CONTROLS = ["\x01", "\x07", "\x1b", "\x7f", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u00ad",
            "\u200b", "\u200c", "\u200d", "\u200e", "\u2060", "\ufeff", "\ufffd", "\u0378", "\ue000",
            "\U000f0000", "\U000e0001", "\u061c", "\ufff9", "\U0010ffff"]

SPACES = [" ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u1680", "\u2000", "\u2003", "\u2009",
          "\u202f", "\u205f", "\u3000", "\u2028", "\u2029", "  ", " \t\n "]

PUNCT = ["!", "?", ".", ",", ";", ":", "...", "!!!", "?!?!", "---", "--", "''", '""', "``", "(", ")",
         "[", "]", "{", "}", "<", ">", "/", "\\", "|", "@", "#", "$", "%", "^", "&", "*", "_", "~",
         "+", "=", "¡", "¿", "«", "»", "—", "–", "…", "‘", "’", "“", "”", "·", "§", "¶", "†", "‰",
         "€", "£", "¥", "°", "±", "×", "÷", "、", "。", "！", "？", "：", "（", "）", "־", "؟", "।",
         "༄", "፡", "⁂", "‽", "⸮", "﹏", "＿", "＠"]

MIXED = ["Hello мир", "hello κόσμε", "Arabic مرحبا بالعالم", "עברית שלום", "हिन्दी नमस्ते",
         "ภาษาไทย สวัสดี", "ქართული", "Հայերեն", "ଓଡ଼ିଆ", "தமிழ்", "ខ្មែរ", "ᚠᛇᚻ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
         "ｆｕｌｌｗｉｄｔｈ ＡＢＣ", "ﬁne ﬂow", "Ⅻ ⅻ ① ⑳", "x² y³ H₂O", "K Å Ω", "İı ß ẞ ǅ ǈ",
         "ΌΣΟΣ ΟΣ ΣΑ Σ", "ĲǄ ǉ", "ǰ̣", "ᾼ ᾳ ῼ"]

COMBINING = ["e\u0301", "a\u0308", "o\u0302\u0323", "o\u0323\u0302", "A\u030a", "\u212b",
             "\u2126", "n\u0303", "c\u0327", "u\u0308\u0301", "\u0301abc", "x\u0301", "\u1100\u1161",
             "\u1100\u1161\u11a8", "\uac00\u11a8", "\u1112\u1175\u11ab", "q\u0307\u0323", "s\u0323\u0307",
             "\u0915\u093c", "\u09c7\u09be", "\u0b47\u0b3e", "a\u0315\u0300\u05ae\u0301b",
             "i\u0307", "\u0130", "\u1e9b\u0323", "\u0344", "\u0f73", "e\u20dd", "\u0340\u0341",
             "\u00c5\u0301", "a\u0328\u0301", "a\u0301\u0328"]

URLS = ["https://www.example.com/path/to/page?query=1&lang=en#section",
        "http://localhost:8080/api/v1/users/42", "www.google.com", "ftp://files.example.org/pub/file.tar.gz",
        "user.name+tag@example.co.uk", "mailto:someone@example.com",
        "https://en.wikipedia.org/wiki/Café_(disambiguation)", "C:\\Users\\Public\\Documents",
        "/usr/local/bin/python3", "@user_name #hashtag #NLP2021", "https://t.co/AbC123xYz",
        "<a href=\"https://example.com\">link</a>", "&amp; &lt;b&gt; &#39;", "{\"key\": [1, 2, 3]}"]


def numbers(rng):
    forms = [lambda: str(rng.randint(0, 10**rng.randint(1, 12))),
             lambda: f"{rng.uniform(-1000, 1000):.{rng.randint(1, 5)}f}",
             lambda: f"{rng.randint(1, 999)},{rng.randint(100, 999)},{rng.randint(100, 999)}",
             lambda: f"{rng.randint(1, 31)}/{rng.randint(1, 12)}/{rng.randint(1900, 2030)}",
             lambda: f"{rng.randint(1900, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
             lambda: f"+1 ({rng.randint(200, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
             lambda: f"{rng.randint(1, 99)}%", lambda: f"${rng.randint(1, 9999)}.{rng.randint(0, 99):02d}",
             lambda: f"{rng.randint(1, 100)}{rng.choice(['st', 'nd', 'rd', 'th'])}",
             lambda: f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d}{rng.choice(['am', 'pm', ' AM', ''])}",
             lambda: f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
             lambda: f"{rng.randint(1, 9)}e-{rng.randint(1, 12)}", lambda: "٣٤٥ ४५६ ๓๔๕ ５６７"]
    return rng.choice(forms)()


def word(rng, cased=True):
    w = rng.choice(WORDS)
    r = rng.random()
    if cased and r < 0.15:
        w = w.capitalize()
    elif cased and r < 0.2:
        w = w.upper()
    return w


def sentence(rng, n=None):
    n = n or rng.randint(3, 18)
    parts = [word(rng) for _ in range(n)]
    parts[0] = parts[0].capitalize()
    s = " ".join(parts)
    return s + rng.choice([".", ".", "!", "?", "", "...", " :)"])


def random_cps(rng, n):
    out = []
    while len(out) < n:
        r = rng.random()
        if r < 0.4:
            c = rng.randint(0x20, 0x7E)
        elif r < 0.75:
            c = rng.randint(0xA0, 0x2FFF)
        elif r < 0.9:
            c = rng.randint(0x3000, 0xFFFF)
        else:
            c = rng.randint(0x10000, 0x10FFFF)
        if 0xD800 <= c <= 0xDFFF or c == 0:
            continue
        out.append(chr(c))
    return "".join(out)


def make_strings(rng):
    """[(kind, text or bytes)]: bytes are fed to C as they are and to Python decoded with
    errors="replace"."""
    S = []
    for _ in range(700):
        S.append(("web", sentence(rng)))
    for _ in range(300):
        k = rng.randint(1, 4)
        S.append(("web", " ".join(sentence(rng) for _ in range(k))))
    for _ in range(250):
        parts = [sentence(rng, rng.randint(2, 6)), rng.choice(ACCENTED), rng.choice(ACCENTED).upper(),
                 rng.choice(ACCENTED).lower()]
        rng.shuffle(parts)
        S.append(("accent", " ".join(parts)))
    for _ in range(120):
        s = "".join(rng.choice(COMBINING) for _ in range(rng.randint(1, 4)))
        S.append(("combining", rng.choice(["", word(rng) + " "]) + s + rng.choice(["", "x", " " + word(rng)])))
    for _ in range(200):
        parts = [rng.choice(CJK) for _ in range(rng.randint(1, 3))] + [word(rng) for _ in range(rng.randint(0, 3))]
        rng.shuffle(parts)
        S.append(("cjk", rng.choice(["", " "]).join(parts)))
    for _ in range(80):
        syl = "".join(chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(rng.randint(1, 6)))
        S.append(("hangul", syl + " " + unicodedata.normalize("NFD", syl)))
    for _ in range(150):
        parts = [sentence(rng, rng.randint(2, 6))] + [rng.choice(EMOJI) for _ in range(rng.randint(1, 3))]
        rng.shuffle(parts)
        S.append(("emoji", rng.choice(["", " "]).join(parts)))
    for _ in range(200):
        w = [word(rng) for _ in range(rng.randint(2, 6))]
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(w))
            w[i] = w[i][: len(w[i]) // 2] + rng.choice(CONTROLS) + w[i][len(w[i]) // 2:]
        S.append(("control", rng.choice([" ", "", rng.choice(CONTROLS)]).join(w)))
    for _ in range(120):
        w = [word(rng) for _ in range(rng.randint(2, 6))]
        S.append(("space", "".join(x + rng.choice(SPACES) for x in w)))
    for _ in range(200):
        w = [word(rng) for _ in range(rng.randint(1, 5))]
        s = ""
        for x in w:
            s += x + "".join(rng.choice(PUNCT) for _ in range(rng.randint(0, 4))) + rng.choice([" ", ""])
        S.append(("punct", s))
    for _ in range(150):
        parts = [numbers(rng) for _ in range(rng.randint(1, 4))] + [word(rng) for _ in range(rng.randint(0, 3))]
        rng.shuffle(parts)
        S.append(("number", " ".join(parts)))
    for _ in range(100):
        S.append(("url", rng.choice(["", sentence(rng, 3) + " "]) + rng.choice(URLS) + rng.choice(["", " ok"])))
    for _ in range(120):
        parts = [rng.choice(MIXED), sentence(rng, rng.randint(1, 4)), rng.choice(ACCENTED + CJK)]
        rng.shuffle(parts)
        S.append(("mixed", " ".join(parts)))
    for _ in range(80):   # truncation: longer than the max_length chosen for the string
        S.append(("long", " ".join(sentence(rng) for _ in range(rng.randint(8, 40)))))
    for _ in range(40):   # words over max_input_chars_per_word (100) and at the limit
        n = rng.choice([99, 100, 101, 150, 300])
        base = "".join(rng.choice("abcdefghij") for _ in range(n))
        S.append(("longword", word(rng) + " " + base + " " + word(rng) + rng.choice(["", "!", "é" * 3])))
    for _ in range(60):
        sp = rng.choice(["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "[cls]", "[Cls]", "[CL\x01S]",
                         "[SEP\u200b]", "[[MASK]]", "[MASK", "MASK]", "[unused0]"])
        S.append(("special", rng.choice(["", word(rng) + rng.choice([" ", ""])]) + sp +
                  rng.choice(["", rng.choice([" ", ""]) + word(rng)])))
    for _ in range(40):
        b = bytearray(sentence(rng, rng.randint(2, 5)).encode())
        for _ in range(rng.randint(1, 3)):
            bad = rng.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf0\x9f\x98", b"\x80\x80",
                              b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe0\x80\xaf"])
            i = rng.randrange(len(b) + 1)
            b[i:i] = bad
        S.append(("invalid_utf8", bytes(b)))
    for _ in range(300):
        S.append(("random", random_cps(rng, rng.randint(1, 40))))
    S += [("empty", ""), ("empty", " "), ("empty", "\x01\u200b"), ("empty", "\ufffd")]
    return S


def escape(b):
    """Bytes to one TSV field: \\\\ for a backslash, \\xHH for bytes below 0x20 and 0x7F."""
    out = []
    for x in b:
        if x == 0x5C:
            out.append("\\\\")
        elif x < 0x20 or x == 0x7F:
            out.append("\\x%02x" % x)
        else:
            out.append(chr(x) if x < 0x80 else None)
            if x >= 0x80:
                out[-1] = bytes([x])
    # join keeping raw non-ASCII bytes
    res = bytearray()
    for o in out:
        res += o if isinstance(o, bytes) else o.encode()
    return bytes(res)


def build_vocab(texts, lower, rng):
    """Special tokens, characters, whole words and ## pieces counted from the texts' words."""
    basic = BasicTokenizer(do_lower_case=lower)
    words = collections.Counter()
    chars = collections.Counter()
    for t in texts:
        for w in basic.tokenize(t):
            words[w] += 1
            for i, c in enumerate(w):
                chars[(c, i > 0)] += 1
    # Characters: all frequent ones; of the rest, a third left out so that [UNK] is common.
    char_toks = []
    for (c, cont), n in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])):
        if n < 3 and rng.random() < 0.33:
            continue
        char_toks.append(("##" + c) if cont else c)
    whole = [w for w, n in words.most_common() if n >= 3 and len(w) > 1][:1500]
    # ## suffixes: the most common endings (2-6 characters) of words.
    suf = collections.Counter()
    pre = collections.Counter()
    for w, n in words.items():
        for k in range(2, min(7, len(w))):
            suf[w[-k:]] += n
            pre[w[:k]] += n
    suffixes = ["##" + s for s, n in suf.most_common(900)]
    prefixes = [p for p, n in pre.most_common(600)]
    vocab, seen = [], set()
    for tok in SPECIALS + char_toks + whole + prefixes + suffixes:
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    return vocab


def check_mask(mask, L):
    k = sum(mask)
    assert len(mask) == L and mask == [1] * k + [0] * (L - k), mask
    return k


def norm_fixture():
    """unicode_norm.tsv: hex code points, NFD, NFC."""
    rows = []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF or (0xAC00 <= c <= 0xD7A3 and c % 37):
            continue   # Hangul syllables: every 37th (the C code is arithmetic for all of them)
        s = chr(c)
        if unicodedata.normalize("NFD", s) != s or unicodedata.normalize("NFC", s) != s:
            rows.append(s)
    rng = random.Random(7)
    marks = [chr(c) for c in range(0x300, 0x370)] + ["\u0591", "\u05ae", "\u0315", "\u031b", "\u0f71",
                                                      "\u0f72", "\u0f74", "\u0f80", "\u093c", "\u094d",
                                                      "\u1161", "\u11a8", "\u0b3e", "\u0cd5"]
    bases = ["a", "e", "o", "u", "A", "O", "s", "\u1100", "\uac00", "\u0b47", "\u0cc6", "\u00e5", "\u0391", "\u03c9"]
    for _ in range(3000):
        s = "".join(rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(0, 4)))
                    for _ in range(rng.randint(1, 3)))
        rows.append(s)
    lines = ["# unicodedata %s (Python %s): code points, NFD, NFC (hex)" %
             (unicodedata.unidata_version, sys.version.split()[0])]
    for s in rows:
        f = lambda x: " ".join("%X" % ord(c) for c in x)
        lines.append("\t".join([f(s), f(unicodedata.normalize("NFD", s)), f(unicodedata.normalize("NFC", s))]))
    return "\n".join(lines) + "\n", len(rows)


def main():
    rng = random.Random(15)
    strings = make_strings(rng)
    texts = [t if isinstance(t, str) else t.decode("utf-8", "replace") for _, t in strings]
    os.makedirs(OUT, exist_ok=True)
    header = [b"# transformers %s BertTokenizer (tokenizers %s, Python %s, unicodedata %s); made by "
              b"scripts/reference/make_bert_tokenizer_fixture.py" %
              (transformers.__version__.encode(), tokenizers.__version__.encode(), sys.version.split()[0].encode(),
               unicodedata.unidata_version.encode()),
              b"# vocab\tkind\tmax_len\ttext\tall ids\tinput_ids (max_len)\tmask ones\tconvert_tokens_to_string"]
    rows = []
    fast_diff = collections.Counter()
    stats = {}
    for name, lower in (("uncased", True), ("cased", False)):
        vocab = build_vocab(texts, lower, random.Random(1 if lower else 2))
        path = os.path.join(OUT, f"vocab_{name}.txt")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(vocab) + "\n")
        slow = BertTokenizer(vocab_file=path, do_lower_case=lower)
        fast = BertTokenizerFast(vocab_file=path, do_lower_case=lower)
        unk = slow.convert_tokens_to_ids("[UNK]")
        n_unk = n_cont = n_trunc = 0
        lrng = random.Random(3)
        for (kind, raw), text in zip(strings, texts):
            L = lrng.choice([8, 16, 32, 64, 128]) if kind != "long" else lrng.choice([16, 64, 128, 512])
            ids = slow.encode(text, add_special_tokens=False)
            enc = slow(text, max_length=L, truncation=True, padding="max_length")
            k = check_mask(enc["attention_mask"], L)
            fids = fast.encode(text, add_special_tokens=False)
            if fids != ids:
                fast_diff[(name, kind)] += 1
            n_unk += unk in ids
            n_cont += any(slow.convert_ids_to_tokens(i).startswith("##") for i in ids)
            n_trunc += len(ids) > L - 2
            dec = slow.convert_tokens_to_string(slow.convert_ids_to_tokens(ids))
            b = raw if isinstance(raw, bytes) else raw.encode("utf-8")
            rows.append(b"\t".join([name.encode(), kind.encode(), str(L).encode(), escape(b),
                                    " ".join(map(str, ids)).encode(), " ".join(map(str, enc["input_ids"])).encode(),
                                    str(k).encode(), escape(dec.encode("utf-8"))]))
        stats[name] = (len(vocab), n_unk, n_cont, n_trunc)
    header.insert(1, b"# strings %d per vocab; vocab size, strings with [UNK], with ## pieces, truncated: %s" %
                  (len(strings), repr(stats).encode()))
    with gzip.GzipFile(os.path.join(OUT, "fixture.tsv.gz"), "wb", mtime=0) as f:
        f.write(b"\n".join(header + rows) + b"\n")
    text, n = norm_fixture()
    with gzip.GzipFile(os.path.join(OUT, "unicode_norm.tsv.gz"), "wb", mtime=0) as f:
        f.write(text.encode())
    print(f"{len(strings)} strings per vocabulary; {stats}; unicode_norm rows {n}")
    print("BertTokenizerFast differs from BertTokenizer on (vocab, kind): count")
    for k, v in sorted(fast_diff.items()):
        print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
