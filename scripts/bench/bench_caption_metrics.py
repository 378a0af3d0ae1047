#!/usr/bin/env python3
"""BLEU-1..4 + CIDEr-D over 5,000 images x 5 references: pycocoevalcap vs `vlt eval captions`.

Both get the same pre-tokenized text: the captions (from the fixture grammar,
scripts/reference/make_caption_fixtures.py) are tokenized once with pycocoevalcap's PTBTokenizer,
fed as dicts to pycocoevalcap's Bleu(4) and Cider, and written as COCO files for
`vlt eval captions --pretokenized`. Timed: pycocoevalcap's two compute_score calls (which include
its n-gram counting, and no file parsing); from vlt's report, prepare_seconds (n-gram counting and
interning) + scoring_seconds (BLEU + CIDEr-D) — the same work — and, apart, parse_seconds (reading
the JSON files, which the Python side gets for free). One run each. The headline ratio is
pycocoevalcap / vlt (prepare + scoring); the ratios against scoring alone and against vlt's whole
process (start-up and JSON included) are printed too. Scores are checked to agree to 1e-9.

Usage: /work/venv/bin/python scripts/bench/bench_caption_metrics.py [--vlt build/vlt] [--images 5000]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from make_caption_fixtures import make_dataset, ptb_tokenize  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vlt", default="build/vlt")
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    ids, refs, preds = make_dataset(a.images, a.seed)
    gts = ptb_tokenize(refs)
    res = ptb_tokenize({i: [preds[i]] for i in ids})

    t0 = time.perf_counter()
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    t1 = time.perf_counter()
    cider, _ = Cider().compute_score(gts, res)
    t2 = time.perf_counter()
    py_s = t2 - t0

    with tempfile.TemporaryDirectory() as d:
        pred_path, refs_path, out = (os.path.join(d, n) for n in ("pred.json", "refs.json", "report.json"))
        with open(pred_path, "w") as f:
            json.dump([{"image_id": i, "caption": res[i][0]} for i in ids], f)
        with open(refs_path, "w") as f:
            json.dump({"images": [{"id": i} for i in ids],
                       "annotations": [{"image_id": i, "caption": c} for i in ids for c in gts[i]]}, f)
        w0 = time.perf_counter()
        subprocess.run([a.vlt, "eval", "captions", "--pretokenized", "--pred", pred_path, "--refs", refs_path,
                        "--out", out], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - w0
        with open(out) as f:
            rep = json.load(f)

    for k in range(4):
        got, want = rep[f"Bleu_{k + 1}"], bleu[k]
        assert abs(got - want) <= 1e-9 * abs(want), f"BLEU-{k + 1}: vlt {got} vs pycocoevalcap {want}"
    assert abs(rep["CIDEr"] - cider) <= 1e-9 * abs(cider), f"CIDEr-D: vlt {rep['CIDEr']} vs pycocoevalcap {cider}"

    v_score, v_prep, v_parse = rep["scoring_seconds"], rep["prepare_seconds"], rep["parse_seconds"]
    print(f"{a.images} images x 5 refs, pre-tokenized; scores agree to 1e-9 "
          f"(BLEU-4 {bleu[3]:.6f}, CIDEr-D {cider:.6f})")
    print(f"pycocoevalcap: BLEU {t1 - t0:.3f} s + CIDEr-D {t2 - t1:.3f} s = {py_s:.3f} s")
    print(f"vlt:           n-gram counting {v_prep:.4f} s + scoring {v_score:.4f} s = {v_prep + v_score:.4f} s "
          f"(JSON parse {v_parse:.4f} s, process wall {wall:.3f} s)")
    print(f"ratio: {py_s / (v_prep + v_score):.0f}x (same work: counting + scoring); "
          f"{py_s / v_score:.0f}x against scoring alone; {py_s / wall:.0f}x against vlt's whole process")

if __name__ == "__main__":
    main()
