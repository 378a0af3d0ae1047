#!/usr/bin/env python3
"""Round trip of full-size state_dicts between open_clip and vlt (issue 5, "the full shapes").

For each model (ViT-B-32, coca_ViT-B-32 by default):
  1. a randomly initialized open_clip model's state_dict is saved as safetensors and
     `vlt model load --model NAME --weights FILE` must load it strictly: no missing, unexpected
     or mis-shaped key;
  2. `vlt model init --model NAME --out FILE` writes vlt's own initialized model, and open_clip
     must load it with load_state_dict(strict=True), every tensor's shape equal;
  3. the parameter counts printed by both sides must agree (these are the numbers written into
     tests/test_layers_coca.c).
The files (~0.6 and ~1 GB) go to a temporary directory that is removed afterwards.

Run from the repository root after `make`:
    /work/venv/bin/python scripts/reference/check_full_shapes.py [--vlt ./vlt] [MODEL ...]
"""
import argparse, os, re, subprocess, sys, tempfile
import torch
import open_clip
from safetensors.torch import save_file, load_file


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    print("  $", " ".join(cmd), "->", p.returncode)
    for line in (p.stdout + p.stderr).strip().splitlines():
        print("   ", line[:400])
    return p


def check(name, vlt, tmp):
    print(f"== {name}")
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None)
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    n_params = sum(p.numel() for p in model.parameters())
    print(f"  open_clip: {len(sd)} tensors, {n_params} parameters")
    ok = True
    f1 = os.path.join(tmp, f"openclip_{name}.safetensors")
    save_file(sd, f1)
    p = run([vlt, "model", "load", "--model", name, "--weights", f1])
    ok &= p.returncode == 0 and f"{len(sd)} of {len(sd)} tensors" in p.stdout
    os.remove(f1)
    f2 = os.path.join(tmp, f"vlt_{name}.safetensors")
    p = run([vlt, "model", "info", "--model", name])
    m = re.search(r"(\d+) tensors, (\d+) parameters", p.stdout)
    ok &= bool(m) and int(m.group(1)) == len(sd) and int(m.group(2)) == n_params
    p = run([vlt, "model", "init", "--model", name, "--out", f2])
    ok &= p.returncode == 0
    if p.returncode == 0:
        theirs = load_file(f2)
        try:
            res = model.load_state_dict(theirs, strict=True)
            print(f"  open_clip load_state_dict(strict=True): {res}")
            bad = [k for k in sd if sd[k].shape != theirs[k].shape]
            ok &= not bad
            if bad:
                print("  shape differences:", bad)
        except RuntimeError as e:
            print("  open_clip refused vlt's file:", str(e)[:2000])
            ok = False
        os.remove(f2)
    print(f"  {name}: {'OK' if ok else 'FAILED'}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vlt", default="./vlt")
    ap.add_argument("models", nargs="*", default=["ViT-B-32", "coca_ViT-B-32"])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [check(m, a.vlt, tmp) for m in a.models]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
