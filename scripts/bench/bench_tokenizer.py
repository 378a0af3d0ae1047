#!/usr/bin/env python3
"""Tokens per second on one core: vlt_tokenizer_encode vs open_clip.tokenize, same captions.

The captions are the 1,200 grammar captions of tests/data/data/tokenizer_fixture.tsv (context
77), repeated REPEATS times. open_clip is called as a data loader would, one caption per call
(open_clip.tokenize(text)), and also in batches of 256; its SimpleTokenizer keeps a BPE cache
across calls, which the repeats warm (vlt has only a per-call cache). torch uses 1 thread; the
shell wrapper pins both runs to one core with taskset. The ids are checked to agree (checksum).

Usage: /work/venv/bin/python scripts/bench/bench_tokenizer.py --bin BENCH_BINARY [--repeats 20]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
import open_clip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "data", "data", "tokenizer_fixture.tsv")


def unescape(s):
    b, out, i = s.encode(), bytearray(), 0
    while i < len(b):
        if b[i] == 92:
            c = chr(b[i + 1])
            if c == "x":
                out.append(int(b[i + 2:i + 4], 16)); i += 4; continue
            out += {"t": b"\t", "n": b"\n", "r": b"\r"}.get(c, bytes([b[i + 1]])); i += 2
        else:
            out.append(b[i]); i += 1
    return out.decode()


def captions():
    out = []
    for line in open(FIXTURE, encoding="utf-8"):
        if line.startswith("#"):
            continue
        col = line.rstrip("\n").split("\t")
        text = unescape(col[3])
        if col[2] == "caption" and col[0] == "77" and "\n" not in text and "\r" not in text:
            out.append(text)
    return out


def checksum(rows):
    s = 0
    for row in rows:
        for t in row[:row.index(49407) + 1]:   # SOT ... EOT
            s = (s * 1000003 + t) % (1 << 64)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    caps = captions()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(caps) + "\n")
        path = f.name
    vlt = json.loads(subprocess.check_output([args.bin, path, str(args.repeats)], cwd=ROOT))
    os.unlink(path)

    first = open_clip.tokenize(caps)   # also warms open_clip's BPE cache
    tokens_per_pass = int((first != 0).sum()) - 2 * len(caps)
    assert str(checksum(first.tolist())) == vlt["checksum"], "vlt and open_clip ids differ"

    t0 = time.perf_counter()
    for _ in range(args.repeats):
        for c in caps:
            open_clip.tokenize(c)
    single = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        for i in range(0, len(caps), 256):
            open_clip.tokenize(caps[i:i + 256])
    batched = time.perf_counter() - t0

    n_tok = tokens_per_pass * args.repeats
    n_cap = len(caps) * args.repeats
    assert n_tok == vlt["tokens"]
    res = {
        "captions": n_cap, "tokens": n_tok,
        "vlt_tokens_per_s": n_tok / vlt["seconds"],
        "open_clip_single_tokens_per_s": n_tok / single,
        "open_clip_batch256_tokens_per_s": n_tok / batched,
        "vlt_captions_per_s": n_cap / vlt["seconds"],
        "open_clip_single_captions_per_s": n_cap / single,
        "open_clip_batch256_captions_per_s": n_cap / batched,
        "ratio_vs_single": single / vlt["seconds"],
        "ratio_vs_batch256": batched / vlt["seconds"],
        "vlt_load_seconds": vlt["load_seconds"],
    }
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
