#!/usr/bin/env python3
"""Writes tests/data/albef/albef_ViT-B-16_names.tsv: the state_dict of the authors' full-size ALBEF
pretraining model (salesforce/ALBEF models/model_pretrain.py ALBEF with configs/Pretrain.yaml and
configs/config_bert.json: ViT-B/16 at 256 px, BERT-base fused from layer 6, embed 256, queue
65,536), built from their code with random weights (no DeiT or bert-base-uncased download).

Header line (tab-separated key=value after '#'):
  trainable_parameters  elements of the parameters with requires_grad (each tied tensor once)
  parameters            elements of all parameters (momentum copies included, tied once)
  state_dict_keys       keys in state_dict() (tied tensors under both names)
  state_dict_elements   elements over all keys (tied tensors counted under both names)
Then one line per state_dict key, in state_dict order:
  name <TAB> [d0,d1,...] ([] for 0-d) <TAB> safetensors dtype <TAB> kind
kind: trainable, momentum (no gradient, EMA), buffer, or tied:<name> (the same tensor as <name>).

It also checks that scripts/reference/albef_ref.py's names and shapes for PAPER_CONFIG equal the
authors' (the reference the fixtures and the benchmark use).

Setup (once), a venv that shares /work/venv-torch's torch:
  /work/venv-torch/bin/python -m venv --system-site-packages /work/venv-albef
  echo /work/venv-torch/lib/python3.11/site-packages \
      > /work/venv-albef/lib/python3.11/site-packages/venv_torch.pth
  /work/venv-albef/bin/pip install --no-deps transformers==4.8.1 timm==0.4.9 \
      huggingface-hub==0.0.12 sacremoses
  (--no-deps: transformers 4.8.1 wants tokenizers<0.11, which has no wheel for Python 3.11 and
  is not needed to build the model; pyyaml, regex, requests, tqdm, filelock come from venv-torch)
Run: /work/venv-albef/bin/python scripts/reference/check_albef_names.py /path/to/ALBEF
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import albef_authors  # noqa: E402
import albef_ref as R  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "albef",
                   "albef_ViT-B-16_names.tsv")
DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_albef_names.py /path/to/ALBEF (a checkout of salesforce/ALBEF)")
    torch.manual_seed(0)
    model = albef_authors.build_full(sys.argv[1])
    sd = model.state_dict(keep_vars=True)
    params = dict(model.named_parameters(remove_duplicate=False))
    first = {}  # storage -> first name, to name the tied tensors
    rows = []
    for name, t in sd.items():
        shape = "[" + ",".join(str(d) for d in t.shape) + "]"
        ptr = t.data_ptr()
        if name in params and ptr in first:
            kind = "tied:" + first[ptr]
        elif name in params:
            first[ptr] = name
            kind = "trainable" if t.requires_grad else "momentum"
        else:
            kind = "buffer"
        rows.append((name, shape, DTYPES[t.dtype], kind))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    allp = sum(p.numel() for p in model.parameters())
    elements = sum(t.numel() for t in sd.values())
    with open(OUT, "w") as f:
        f.write(f"#\ttrainable_parameters={trainable}\tparameters={allp}\t"
                f"state_dict_keys={len(sd)}\tstate_dict_elements={elements}\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    print(f"{len(sd)} keys, {trainable:,} trainable parameters, {allp:,} parameters "
          f"(momentum copies included), {elements:,} state_dict elements -> {OUT}")

    # our reference's names and shapes for the same config
    ours = {n: tuple(s) for n, s, _ in R.param_shapes(R.PAPER_CONFIG)}
    theirs = {n: tuple(t.shape) for n, t in sd.items()}
    if ours != theirs:
        print("albef_ref.param_shapes differs:", sorted(set(ours.items()) ^ set(theirs.items()))[:10])
        sys.exit(1)
    kinds = {n: k for n, _, k in R.param_shapes(R.PAPER_CONFIG)}
    for name, _, _, kind in rows:
        want = {"trainable": "param", "momentum": "param", "buffer": "buffer"}.get(kind, "alias")
        assert kinds[name] == want, (name, kind, kinds[name])
    assert sum(math.prod(ours[n])
               for n in R.trainable_names(R.PAPER_CONFIG)) == trainable
    print("albef_ref.py names, shapes, kinds and trainable count equal the authors' model")


if __name__ == "__main__":
    main()
