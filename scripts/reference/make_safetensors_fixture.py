#!/usr/bin/env python3
"""Fixtures for tests/test_checkpoints_safetensors.c, written by the real `safetensors` package.

  /work/venv/bin/python scripts/reference/make_safetensors_fixture.py [--out tests/data/checkpoints]

Writes
  py_mixed.safetensors  safetensors.torch.save_file of
        a.f32        F32 (2, 3)  [[1.5, -2.25, 0.0], [3.1415927410125732, 1e-30, -inf]]
        b.bf16       BF16 (4,)   [1.0, -0.5, 3.140625, 65280.0]
        c.f16        F16 (2, 4)  [[65504, 2^-14, 2^-24, -0.0], [inf, -inf, nan, 0.333251953125]]
        d.i64        I64 (3,)    [-1, 2^40, 2^63 - 1]
        e.i32        I32 (2,)    [-7, 2147483647]
        logit_scale  F32 ()      2.6592600345611572   (a 0-d tensor, as open_clip's)
        one          F32 (1,)    [0.25]
        r.src        F32 (512,)  edge cases of f32 -> f16 / bf16 rounding, then random values
        r.f16        F16 (512,)  r.src.half()      (PyTorch's rounding: the oracle for vlt's)
        r.bf16       BF16 (512,) r.src.bfloat16()
      metadata {"format": "pt"} (one key, so that the file's bytes are deterministic: vlt writes
      the same tensors and metadata byte for byte).
  py_meta.safetensors   metadata with several keys, escapes and UTF-8; tensor names with UTF-8
      and quotes; an empty (0, 3) F32 tensor; U8 (3,) [0, 128, 255]; F64 (2,) [0.1, -2.5].

Checking that a file written by vlt loads in PyTorch (the test suite writes one when
VLT_TEST_KEEP_DIR is set):

  VLT_TEST_KEEP_DIR=/tmp make test TESTS=checkpoints_safetensors
  /work/venv/bin/python scripts/reference/make_safetensors_fixture.py --check /tmp/vlt_written.safetensors

which runs safetensors.torch.load_file on it (the one-liner is
  python -c "from safetensors.torch import load_file; print(load_file('/tmp/vlt_written.safetensors'))")
and compares every tensor with what the test wrote (see expected_written()).
"""
import argparse
import math
import os

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def rounding_cases():
    """f32 values on and around every f16 rounding boundary, then random ones (512 in all)."""
    f = []
    f16_min_sub, f16_min_norm = 2.0 ** -24, 2.0 ** -14
    for v in [0.0, 1.0, 65504.0, 65519.996, 65520.0, 65536.0, 1e10, f16_min_norm, f16_min_sub,
              f16_min_sub / 2, f16_min_sub * 0.50001, f16_min_sub * 1.5, f16_min_sub * 2.5,
              f16_min_norm - f16_min_sub / 2, f16_min_norm * (1 - 2 ** -12), 1 + 2 ** -11,
              1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2049.0, 2051.0, 1e-8, 3e-5, math.pi,
              float("inf"), 1e-45, 1.17549435e-38]:
        f += [v, -v]
    bits = np.array(f, dtype=np.float32).view(np.uint32)
    # neighbours (one ulp either side) of each value
    near = np.concatenate([bits, bits + 1, bits - 1]).astype(np.uint32)
    near = near[(near & 0x7F800000) != 0x7F800000]  # drop NaN patterns made by +-1 around inf
    vals = np.concatenate([np.array(f, dtype=np.float32), near.view(np.float32)])
    rng = np.random.default_rng(1234)
    rest = 512 - len(vals)
    rand = (rng.standard_normal(rest) * np.exp2(rng.integers(-28, 18, rest))).astype(np.float32)
    return np.concatenate([vals, rand])[:512].astype(np.float32)


def mixed():
    return {
        "a.f32": torch.tensor([[1.5, -2.25, 0.0], [3.1415927410125732, 1e-30, -math.inf]], dtype=torch.float32),
        "b.bf16": torch.tensor([1.0, -0.5, 3.140625, 65280.0], dtype=torch.bfloat16),
        "c.f16": torch.tensor([[65504.0, 2.0 ** -14, 2.0 ** -24, -0.0],
                               [math.inf, -math.inf, math.nan, 0.333251953125]], dtype=torch.float16),
        "d.i64": torch.tensor([-1, 2 ** 40, 2 ** 63 - 1], dtype=torch.int64),
        "e.i32": torch.tensor([-7, 2 ** 31 - 1], dtype=torch.int32),
        "logit_scale": torch.tensor(2.6592600345611572, dtype=torch.float32),
        "one": torch.tensor([0.25], dtype=torch.float32),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/checkpoints")
    ap.add_argument("--check", help="a file written by vlt's test: load it with load_file and compare")
    args = ap.parse_args()
    if args.check:
        return check(args.check)
    os.makedirs(args.out, exist_ok=True)

    t = mixed()
    src = torch.from_numpy(rounding_cases())
    t["r.src"] = src
    t["r.f16"] = src.half()
    t["r.bf16"] = src.bfloat16()
    save_file(t, os.path.join(args.out, "py_mixed.safetensors"), metadata={"format": "pt"})

    m = {
        "caf\u00e9/\"quoted\"": torch.tensor([0, 128, 255], dtype=torch.uint8),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "f64": torch.tensor([0.1, -2.5], dtype=torch.float64),
    }
    meta = {"format": "pt", "note": "line1\nline2\t\"q\" \\ caf\u00e9 \u2713", "z": ""}
    save_file(m, os.path.join(args.out, "py_meta.safetensors"), metadata=meta)
    for name in sorted(os.listdir(args.out)):
        print(name, os.path.getsize(os.path.join(args.out, name)))


def expected_written():
    """What test_write_for_python in the C suite writes (VLT_TEST_KEEP_DIR), with metadata
    {"format": "pt", "note": 'caf\u00e9 "vlt"\\n'}."""
    x = torch.tensor([[1.0, -2.0, 0.5], [1e-3, 70000.0, -1e-8]], dtype=torch.float32)
    return {
        "w.f32": x,
        "w.bf16": x.bfloat16(),
        "w.f16": x.half(),  # 70000 overflows to inf, -1e-8 to -0 (as in vlt)
        "w.i64": torch.tensor([-3, 2 ** 40], dtype=torch.int64),
        "logit_scale": torch.tensor(2.5, dtype=torch.float32),
    }


def check(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    assert meta == {"format": "pt", "note": "caf\u00e9 \"vlt\"\n"}, meta
    got = load_file(path)
    want = expected_written()
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for k, w in want.items():
        g = got[k]
        assert g.dtype == w.dtype and g.shape == w.shape, (k, g.dtype, g.shape, w.dtype, w.shape)
        assert torch.equal(g, w), (k, g, w)
        print(f"{k}: {g.dtype} {tuple(g.shape)} ok")
    print(f"{path}: loads with safetensors.torch.load_file and equals PyTorch's conversion")


if __name__ == "__main__":
    main()
