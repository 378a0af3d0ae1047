#!/usr/bin/env python3
"""Final-sigma fixture for tests/test_eval_ptb.c: Java's String.toLowerCase(Locale.ENGLISH) of a capital
sigma (U+03A3) in every context, alone and through the whole pycocoevalcap PTB pipeline.

Java lower-cases U+03A3 to U+03C2 when ConditionalSpecialCasing.isFinalCased holds, which walks the
JDK's legacy word BreakIterator; this fixture puts sigmas next to everything that iterator's rules
name ($let, $dgt, $mid_word with every Pd dash, soft hyphen, U+2027, quotes, apostrophes and
periods, $mid_num, $pre_num currency and #, $post_num % & per-mille, $ws, $ls, CJK, kana, danda,
the ignored Mn / Me / Cf) and everything isCased looks at (Lu, Ll, Lt, modifier letters, roman
numerals, circled letters, ypogegrammeni), including supplementary letters (U+1D400, Deseret).

Writes tests/data/eval/ptb_sigma.json.zst:
  {"lower": [[text, java_lower], ...],                 (scripts/reference/JavaLowerSigma.java)
   "batches": [{"captions": [...], "tokenized": [...]}]}  (pycocoevalcap's PTBTokenizer, one call each)

Usage: /work/venv-eval/bin/python scripts/reference/make_ptb_sigma_fixture.py [--out tests/data/eval]
       [--n 24000] [--seed 1403]     (needs pycocoevalcap, zstandard; Java 17 on PATH)
"""
import argparse
import json
import os
import random
import subprocess

S = "\u03a3"
# context characters by what the word iterator / isCased make of them
CTX = {
    "latin": "AbZzÉéßĳ",
    "greek": "ΑαΩωάΆΐσςΣ",
    "cyrillic": "ЖжЯяЁ",
    "title": "\u01c5\u1f88",
    "lo": "אبกあア中\u3005",
    "digit": "059\u0663\u06f5\uff11\u0966\u00b2\u2160\u2170\u216f",
    "mn": "\u0301\u0308\u0345\u0651\u20d7\u302a\u3099",
    "me": "\u20dd\u20de\u0488",
    "mc": "\u0903\u09be",
    "cf": "\u00ad\u200b\u200c\u200d\u200e\u2060\ufeff\u0600\u061c",
    "pd": "-\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d",
    "mid": "'\".\u2027\u2019\u2018\u201c\u201d\u00ab\u00bb\u02bc:\u00b7,;\u066b\u066c",
    "prenum": "#$€£¥\u20bf\u20a9\u00a2",
    "postnum": "%&\u2030\u2031\u066a",
    "space": " \t\u00a0\u2003\u3000",
    "other": "_@/!?()[]{}*+=<>^~|`\u00a9\u2122\u00b0\u2026",
    "modifier": "\u02b0\u02b8\u02c0\u02e0\u02e4\u1d2c\u1d61\u037a\u24b6\u24e9\u24d0\u00aa\u00ba",
    "cjk": "\u4e00\u9fa5\u9fa6\u3400\uf900\uac00",
    "kana": "\u3042\u30a2\u30fc\u3041\u30fe\u309d\u31f0",
    "danda": "\u0964\u0965",
    "supp": ["\U0001d400", "\U0001d41a", "\U00010400", "\U00010428", "\U0001f600", "\U00020000",
             "\U0001d7ce", "\U00010ead", "\U0001e900", "\U0001e922", "\U000104b0", "\U0001f130", "\U0001d165", "\U000e0041"],
}
# line separators, and U+FFFF (which Java's CharacterIterator takes for its DONE): plain strings only
LS = "\n\u000c\u2028\u2029\r\u000b\u0085\uffff"
POOL = [c for v in CTX.values() for c in v]
LETTERS = [c for k in ("latin", "greek", "cyrillic", "title", "supp") for c in CTX[k]]


def pick(rng, plain):
    r = rng.random()
    if r < 0.25:
        return S
    if plain and r < 0.28:
        return rng.choice(LS)
    if r < 0.45:
        return rng.choice(LETTERS)
    return rng.choice(POOL)


def systematic(rng):
    """Every context character x next to a sigma in short templates with letters on either side."""
    out = []
    for x in POOL:
        for y in rng.sample(POOL, 6):
            a, b = rng.choice(LETTERS), rng.choice(LETTERS)
            out += [a + x + S, S + x + b, a + x + S + x + b, a + S + x + b, a + x + S + y + b, x + S, S + x,
                    a + S + x, x + S + b, a + x + x + S, S + y + x + b, a + S + S + x + b + S]
    return out


def random_strings(rng, n, plain):
    out = []
    for _ in range(n):
        s = "".join(pick(rng, plain) for _ in range(rng.randint(1, 12)))
        if S not in s:
            s = s[: len(s) // 2] + S + s[len(s) // 2:]
        out.append(s)
    return out


WORDS = ["ΟΔΥΣΣΕΥΣ", "ΣΟΦΙΑ", "ΣΟΦΊΑ", "ΑΣ", "ΚΑΛΗΣΠΕΡΑ", "ΌΣΟΣ", "ΣΑΣ", "ΑΣΣΟΣ", "Σ", "ΣΣ", "ΣA", "AΣ", "aΣ", "1Σ", "Σ1",
         "http://xΣ.com/ΑΣ-b", "ΑΣ@mail.gr", "ΑΣ's", "ΑΣ'Β", "ΑΣ-ΒΣ", "ΑΣ.ΒΣ", "Σ.Σ.", "Α.Σ.", "ΜΑΣ.", "ΜΑΣ,", "ΜΑΣ!", "(ΜΑΣ)",
         "ΜΑΣ…", "ΜΑΣ--", "ΜΑΣ'", "\"ΜΑΣ\"", "ΜΑΣ’Α", "ΜΑΣ5", "5ΜΑΣ", "ΜΑΣ_Α", "#ΜΑΣ", "ΜΑΣ%", "$5Σ", "ΑΣ&Β", "AT&TΣ"]


def captions(rng, n):
    """Caption-like lines: words, sigma strings and words glued by punctuation, no line breaks."""
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            if r < 0.3:
                parts.append(rng.choice(WORDS))
            elif r < 0.5:
                parts.append(rng.choice(["a", "dog", "The", "U.S.", "etc.", "isn't", "5", "ΟΙ", "ΤΟ"]))
            else:
                parts.append("".join(pick(rng, False) for _ in range(rng.randint(1, 8))))
        sep = rng.choice([" ", " ", " ", "", "-", ".", "'", "/"])
        out.append(sep.join(parts) + rng.choice(["", "", ".", " .", "!", "ΑΣ", " ΑΣ."]))
    return out


def esc(s):
    u = s.encode("utf-16-le", "surrogatepass")
    units = [int.from_bytes(u[i:i + 2], "little") for i in range(0, len(u), 2)]
    return "".join(chr(c) if 0x20 <= c < 0x7F and c != 0x5C else "\\u%04X" % c for c in units)


def unesc(s):
    units, i = [], 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1] == "u":
            units.append(int(s[i + 2:i + 6], 16))
            i += 6
        else:
            units.append(ord(s[i]))
            i += 1
    return b"".join(c.to_bytes(2, "little") for c in units).decode("utf-16-le", "surrogatepass")


def java_lower(strings):
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run(["java", os.path.join(here, "JavaLowerSigma.java")], input="\n".join(esc(s) for s in strings) + "\n",
                       capture_output=True, text=True, check=True, encoding="ascii")
    got = p.stdout.split("\n")[:-1]
    assert len(got) == len(strings), (len(got), len(strings))
    return [unesc(g) for g in got]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/eval")
    ap.add_argument("--n", type=int, default=24000)
    ap.add_argument("--seed", type=int, default=1403)
    a = ap.parse_args()
    import zstandard
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    rng = random.Random(a.seed)
    plain = systematic(rng)
    plain += random_strings(rng, max(0, a.n - len(plain)), True)
    plain += WORDS
    lower = java_lower(plain)
    caps = captions(rng, a.n // 2) + random_strings(rng, a.n // 2, False)
    rng.shuffle(caps)
    batches = []
    for k in range(0, len(caps), 4000):  # one pycocoevalcap call per batch, one caption per image
        b = caps[k:k + 4000]
        tok = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(b)})
        batches.append({"captions": b, "tokenized": [tok[i][0] for i in range(len(b))]})
    n_sigma_tok = sum(t.count("\u03c2") + t.count("\u03c3") for b in batches for t in b["tokenized"])
    data = json.dumps({"lower": [[s, l] for s, l in zip(plain, lower)], "batches": batches},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path = os.path.join(a.out, "ptb_sigma.json.zst")
    with open(path, "wb") as f:
        f.write(zstandard.ZstdCompressor(level=19).compress(data))
    n_final = sum(l.count("\u03c2") - s.count("\u03c2") for s, l in zip(plain, lower))
    print(f"{len(plain)} strings lower-cased ({n_final} final sigmas), {len(caps)} captions in {len(batches)} calls "
          f"({n_sigma_tok} sigmas in the output), {len(data)} bytes of JSON -> {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
