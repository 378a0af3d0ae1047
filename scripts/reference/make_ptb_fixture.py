#!/usr/bin/env python3
"""PTB tokenization + BLEU/CIDEr-D fixture for tests/test_eval_ptb.c, made with the real pycocoevalcap.

Generates many small captioning corpora (images in random order, 4-7 references and one candidate
each) from a grammar rich in what the Stanford PTB lexer treats specially: punctuation runs,
apostrophes ('50, '42nd', 5'10", hawai'i, ma'am, o'clock, rock'n'roll, y'all, 'tis), single,
double, curly and LaTeX quotes, numbers, fractions, dates, phone numbers, units and currency,
abbreviations and acronyms (before capitals and lower case, at line ends), URLs, e-mail, @names,
#tags, SGML tags and entities, emoticons, non-ASCII letters in several scripts, emoji, dashes,
ellipses, soft hyphens, non-breaking spaces and single-letter endings. Each corpus is scored as
COCOEvalCap.evaluate does: pycocotools' COCO and loadRes give the image order (the annotation
file's "images" order), PTBTokenizer tokenizes the references in one call and the candidates in
another, then Bleu(4) and Cider.

Also writes tests/data/eval/ptb_unicode_sweep.json.zst: every BMP character and the emoji blocks in
a few contexts, tokenized by the jar in one call.

Writes tests/data/eval/ptb_corpora.json.zst:
  {"corpora": [{"refs": {images, annotations}, "preds": [{image_id, caption}],
                "tok_refs": {id: [tokenized ref, ...]}, "tok_preds": {id: tokenized},
                "bleu": [4], "cider": x, "per_image": {id: {"bleu": [4], "cider": x}}}, ...]}

Usage: /work/venv-eval/bin/python scripts/reference/make_ptb_fixture.py [--out tests/data/eval]
       [--corpora 300] [--seed 14] [--only corpora|sweep]      (needs pycocoevalcap, pycocotools, zstandard; Java on PATH)
"""
import argparse
import json
import os
import random

SUBJ = ["a man", "A woman", "two dogs", "the dog", "a little girl", "three children", "an old man",
        "the man's dog", "a 3-year-old boy", "Mr. Smith", "Dr. Jones", "the U.S. team", "a Calif. surfer",
        "my ma'am", "the hawai'i crowd", "a rock'n'roll band", "y'all", "the Zürich tram", "a café owner",
        "São Paulo's mayor", "the naïve kid", "Øresund bridge", "a Москва bus", "東京 station", "ΣΟΦΊΑ",
        "a teenager (17)", "the dogs'", "O'Brien", "d'Artagnan", "l'Oreal", "the Smiths'", "İstanbul ferry",
        "a chef's knife", "the '90s kids", "Jan.", "a C++ coder", "the C# dev", "St. Mary's", "the Co.",
        "Acme Inc.", "Foo Corp.", "a 5'10\" guy", "a 6' tall man", "AT&T", "S&P 500", "the Pty. Ltd. firm"]
VERB = ["is riding", "isn't eating", "can't reach", "won't leave", "'s carrying", "cannot see", "is gonna jump",
        "wanna play with", "gotta catch", "sits beside", "looks at", "they'd've liked", "ain't got", "holds",
        "points to", "is near", "walks past", "stands next to", "photographs", "e-mails", "tweets at",
        "is 'tis near", "'twas by"]
OBJ = ["a skateboard", "a red kite", "the beach", "a 1,000-pound statue", "2.5 pizzas", "a 3.5-inch screen",
       "the giraffe's neck", "a 12oz. cup", "5kg of apples", "a 10km/h sign", "72°F weather", "50% off",
       "$5.99 fries", "€20 tickets", "£3 tea", "¥100 coins", "¢50 gum", "a ½ cup", "1 1/2 inches", "3/4 of it",
       "12/25/2019's tree", "555-1234", "(555) 123-4567", "+1 650 555 1234", "a '50 Chevy", "the '42nd' floor",
       "http://example.com/a?b=1&c=2", "https://x.org/path.", "www.google.com", "foo.org/bar",
       "bob@example.com", "@john_doe", "#sunset", "#café", "<b>bold</b>", "&amp; friends", "&quot;quoted&quot;",
       "&lt;tag&gt;", "it's", "o'clock", "don'ts", "ol' man", "the 1800's", "the '90s", "e.g. cats", "i.e. dogs",
       "vs. them", "etc.", "a.m.", "p.m. light", "U.S.A.", "No. 5", "fig. 3", "ca. 1900", "Mt. Fuji", "ft. 3",
       "the Jan. sale", "Inc. stock", "the U.K.", "plan b.", "vitamin c.", "grade a.", "letter x.", "item i.",
       "a - b", "well--known", "pro-choice", "anti-war", "x-ray", "t-shirt", "3-d", "co-op", "C.D.s",
       "the -LRB- token", "a/b test", "A&M", "Q&A", "R&B", "file.txt", "photo.jpg", "data.tar.gz", "10:30",
       "3:45pm", "9am", "1st place", "2nd", "100th", "-5 degrees", "+3 points", ".5 ml", "1.000,5", "5'10\"",
       "hawai'i", "ma'am", "rock'n'roll", "y'know", "c'mon", "li'l", "nor'easter", "'em", "'til", "'cause"]
PLACE = ["in a park", "on the street", "at 10:30", "near the river", "in the U.S.", "in the U.S. He",
         "at St. Louis", "in Washington, D.C.", "at 5 p.m.", "on Jan. 5", "in Calif.", "at the Inc.",
         "in the kitchen", "on a sunny day", "by the lake", "near Zürich", "in Köln", "at the café"]
EXTRA = ["(near a tree)", "(brown and white)", "; it's sunny", ", and they're happy", ": a great shot", "-- wow",
         " - nice", ', "cool"', ", which isn't bad", " & friends", " :)", " :-(", " ;P", " :D", " <3", " ^_^",
         " (^_^)", " o_O", " :/", " =)", " XD", " :-)", " :o", " 😀", " 🎉🎉", " …", " ...", " . . .", "!!", "?!",
         " — wow", " – ok", " «quoted»", " “curly”", " ‘single’", " `latex''", " ''double''", " 'single'",
         " [sic]", " {braces}", " <i>", " </i>", " <br/>", " *stars*", " ~tilde~", " a^b", " 100%", " #1",
         " @ home", " = equals", " 1/2", " ¼", " x²", " H₂O", " ©2020", " ®", " ™", " °C", " №5", " ±3",
         " \u00a0nbsp\u00a0", " soft\u00adhyphen", " tab\there", "  double  spaces", " 'quote'", ' "quote"',
         ' "A"', " 'A'", " I.", " Z.", " A.", " etc. A", " etc. the", " vs. A"]
END = [".", ".", "", "", "!", "?", "...", " .", "!!", " etc.", " U.S.", " a.", " b.", " I.", " x.", " Jan.",
       " Inc.", " Mr.", " e.g.", " p.m.", " Calif.", " St.", " No.", " '", " \"", " :)", " )", " 's", "'s",
       " i", " a", " A", ",", ";", ":", " -", " --", " 5", " 5.", " 5'", " fig.", " ca.", " co.", " pty."]
STARTS = ["", "", "", "", "A ", "The ", "\"", "'", "(", "U.S. ", "Etc. ", "I ", "a. ", "... ", "— ", "@", "#",
          "http://a.com ", "Mr. ", "'Tis ", "'90s ", "Ça ", "É ", "Ω ", "1. ", "- "]


def sentence(rng):
    s = rng.choice(STARTS) + f"{rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(OBJ)}"
    if rng.random() < 0.5:
        s += " " + rng.choice(PLACE)
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        e = rng.choice(EXTRA)
        s += e if e[0] in ";,:'!?" else " " + e.lstrip(" ")
    if rng.random() < 0.15:
        w = s.split(" ")
        i = rng.randrange(len(w))
        w[i] = rng.choice(['"{}"', "'{}'", "“{}”", "‘{}’", "`{}'", "``{}''"]).format(w[i])
        s = " ".join(w)
    s += rng.choice(END)
    r = rng.random()
    if r < 0.4:
        s = s[:1].upper() + s[1:]
    elif r < 0.5:
        s = s.upper()
    elif r < 0.6:
        s = s.lower()
    if rng.random() < 0.1:
        s = s.replace(" ", "  ", 1)
    if rng.random() < 0.05:
        s = "  " + s + " "
    return s


def candidate(rng, refs, other):
    kind = rng.choice(["exact", "partial", "shuffled", "unrelated", "empty", "one", "perturbed", "fresh", "fresh"])
    words = rng.choice(refs).split()
    if kind == "exact":
        return rng.choice(refs)
    if kind == "partial":
        return " ".join(words[: max(1, len(words) // 2)])
    if kind == "shuffled":
        rng.shuffle(words)
        return " ".join(words)
    if kind == "unrelated":
        return rng.choice(other)
    if kind == "empty":
        return rng.choice(["", " ", "."])
    if kind == "one":
        return rng.choice(words) if words else "x"
    if kind == "perturbed" and words:
        words[rng.randrange(len(words))] = rng.choice(["cat", "dog", "a", "the", "red", "U.S.", "etc."])
        return " ".join(words)
    return sentence(rng)


def score_corpus(refs, preds):
    """As COCOEvalCap.evaluate with params['image_id'] = cocoRes.getImgIds()."""
    from pycocotools.coco import COCO
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(refs))
        coco.createIndex()
        res = coco.loadRes(json.loads(json.dumps(preds)))
    img_ids = res.getImgIds()
    gts = {i: coco.imgToAnns[i] for i in img_ids}
    rs = {i: res.imgToAnns[i] for i in img_ids}
    tok = PTBTokenizer()
    gts_t = tok.tokenize(gts)
    res_t = tok.tokenize(rs)
    bleu, bleu_img = Bleu(4).compute_score(gts_t, res_t, verbose=0)
    cider, cider_img = Cider().compute_score(gts_t, res_t)
    keys = list(gts_t.keys())
    per = {str(k): {"bleu": [float(bleu_img[n][j]) for n in range(4)], "cider": float(cider_img[j])}
           for j, k in enumerate(keys)}
    return gts_t, res_t, [float(b) for b in bleu], float(cider), per


def make_corpus(rng, base_id):
    n_img = rng.randint(6, 16)
    ids = [base_id + rng.randrange(1, 10**6) * 7 for _ in range(n_img)]
    ids = list(dict.fromkeys(ids))
    refs = {i: [sentence(rng) for _ in range(rng.randint(4, 7))] for i in ids}
    pool = [c for v in refs.values() for c in v]
    preds = {i: candidate(rng, refs[i], pool) for i in ids}
    images = [{"id": i} for i in ids]
    rng.shuffle(images)
    anns = [{"image_id": i, "id": base_id * 10 + k, "caption": c} for k, (i, c) in
            enumerate((i, c) for i in ids for c in refs[i])]
    rng.shuffle(anns)
    pl = [{"image_id": i, "caption": preds[i]} for i in ids]
    rng.shuffle(pl)
    return {"images": images, "annotations": anns}, pl


def unicode_sweep():
    """Every BMP character (but NUL, surrogates and the line breaks that would shift lines) and
    every 7th supplementary one plus the emoji blocks, each in three contexts and a URL."""
    skip = {0, 0x0A, 0x0D, 0x2028, 0x2029, 0x0B, 0x0C, 0x85}
    cps = [c for c in range(0x10000) if c not in skip and not 0xD800 <= c <= 0xDFFF]
    cps += list(range(0x10000, 0x20000, 7)) + list(range(0x1F300, 0x1FAFF))
    return ["q%sq %s A%s. http://a.com/%sx" % ((chr(c),) * 4) for c in cps]


def write_sweep(out):
    """tests/data/eval/ptb_unicode_sweep.json.zst: {"lines": [...], "tokenized": [...]}, one call."""
    import zstandard
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    lines = unicode_sweep()
    tok = PTBTokenizer().tokenize({i: [{"caption": l}] for i, l in enumerate(lines)})
    data = json.dumps({"lines": lines, "tokenized": [tok[i][0] for i in range(len(lines))]},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    path = os.path.join(out, "ptb_unicode_sweep.json.zst")
    with open(path, "wb") as f:
        f.write(zstandard.ZstdCompressor(level=19).compress(data))
    print(f"unicode sweep: {len(lines)} lines -> {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/eval")
    ap.add_argument("--corpora", type=int, default=300)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--only", choices=["corpora", "sweep"], help="write only one of the two fixtures")
    a = ap.parse_args()
    if a.only != "corpora":
        write_sweep(a.out)
    if a.only == "sweep":
        return
    import zstandard
    rng = random.Random(a.seed)
    corpora, n_caps = [], 0
    for c in range(a.corpora):
        refs, preds = make_corpus(rng, 10**7 * (c + 1))
        gts_t, res_t, bleu, cider, per = score_corpus(refs, preds)
        n_caps += len(refs["annotations"]) + len(preds)
        corpora.append({"refs": refs, "preds": preds,
                        "tok_refs": {str(k): v for k, v in gts_t.items()},
                        "tok_preds": {str(k): v[0] for k, v in res_t.items()},
                        "bleu": bleu, "cider": cider, "per_image": per})
    data = json.dumps({"corpora": corpora}, ensure_ascii=False, separators=(",", ":")).encode()
    path = os.path.join(a.out, "ptb_corpora.json.zst")
    with open(path, "wb") as f:
        f.write(zstandard.ZstdCompressor(level=19).compress(data))
    print(f"{len(corpora)} corpora, {n_caps} captions, {len(data)} bytes of JSON -> {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
