#!/usr/bin/env python3
"""Checks tests/data/albef/<cfg>/ (made by make_albef_fixtures.py with our own reference) against
the authors' ALBEF run on the same weights, inputs, masks and negatives: the step-1 losses, the
gradient of every trainable parameter, and every tensor after two steps (their forward with the
momentum update and the queue inside it, loss.backward(), torch.optim.SGD lr 0.01), in float64.

The authors' sampling is replaced by the fixture's choices: ALBEF.mask returns the fixture's
mlm_ids/mlm_labels, and torch.multinomial returns neg_image_idx[b] for the first B draws (the
image for text b) and neg_text_idx[b] for the next B (the text for image b), in the order their
forward draws them.

Run: /work/venv-albef/bin/python scripts/reference/check_albef_fixtures.py /path/to/ALBEF [DIR]
"""
import json
import os
import sys
import types

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import albef_authors  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "albef")


def rel(a, b):
    """Largest difference relative to the reference tensor's largest value, with a floor of 1e-3:
    the key-bias gradients are 0 in exact arithmetic (softmax ignores a per-query shift) and
    both sides hold rounding noise of ~1e-17 there."""
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-3)).item()


def check(src, name):
    d = os.path.join(DATA, name)
    cfg = json.load(open(os.path.join(d, "config.json")))
    W = load_file(os.path.join(d, "weights.safetensors"))
    io = load_file(os.path.join(d, "io.safetensors"))
    G = load_file(os.path.join(d, "grads.safetensors"))
    A = load_file(os.path.join(d, "after_2_steps.safetensors"))

    torch.manual_seed(0)
    model = albef_authors.build_small(src, cfg)
    sd = model.state_dict()
    assert set(sd) == set(W), (set(sd) ^ set(W))
    for k in sd:
        assert tuple(sd[k].shape) == tuple(W[k].shape), (k, sd[k].shape, W[k].shape)
    model.load_state_dict(W, strict=True)
    model.double().eval()
    # Their ITC one-hot targets are torch.zeros() in the default dtype: f32 would round
    # (1 - alpha) before it meets the f64 softmax.
    torch.set_default_dtype(torch.float64)

    B = io["text_ids"].shape[0]
    mlm_ids, mlm_labels = io["mlm_ids"].long(), io["mlm_labels"].long()
    model.mask = lambda input_ids, vocab_size, device, targets=None, masked_indices=None, \
        probability_matrix=None: (mlm_ids.clone(), mlm_labels.clone())
    draws = []
    real_multinomial = torch.multinomial

    def multinomial(weights, n, *a, **k):
        idx = draws.pop(0)
        assert weights[idx] > 0, "the fixture's negative has zero probability"
        return torch.tensor([idx])

    text = types.SimpleNamespace(input_ids=io["text_ids"].long(), attention_mask=io["text_atts"].long())
    image = io["image"].double()
    alpha = float(io["alpha"][0])
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    torch.multinomial = multinomial
    worst = {}
    try:
        for step in range(2):
            draws[:] = io["neg_image_idx"].tolist() + io["neg_text_idx"].tolist()
            opt.zero_grad()
            loss_mlm, loss_ita, loss_itm = model(image, text, alpha=alpha)
            loss = loss_mlm + loss_ita + loss_itm
            loss.backward()
            if step == 0:
                for k, v in (("loss_mlm", loss_mlm), ("loss_itc", loss_ita), ("loss_itm", loss_itm),
                             ("loss", loss)):
                    worst[k] = rel(v.detach().reshape(1), io[k])
                params = dict(model.named_parameters(remove_duplicate=False))
                trainable = {k for k, p in params.items() if p.requires_grad}
                assert trainable == set(G), trainable ^ set(G)
                bad = sorted(((rel(params[k].grad, G[k]), k) for k in G), reverse=True)[:4]
                if bad[0][0] > 1e-10:
                    print("worst gradients:", [(k, f"{r:.2e}") for r, k in bad])
                worst["grads"] = bad[0][0]
            else:
                for k, v in (("loss", loss), ("loss_itc", loss_ita), ("loss_itm", loss_itm),
                             ("loss_mlm", loss_mlm)):
                    worst["step2_" + k] = rel(v.detach().reshape(1), A["step2_" + k])
            opt.step()
    finally:
        torch.multinomial = real_multinomial
        torch.set_default_dtype(torch.float32)
    sd = model.state_dict()
    worst["after_2_steps"] = max(rel(sd[k], A[k]) for k in sd if sd[k].is_floating_point())
    ints = all(torch.equal(sd[k], A[k]) for k in sd if not sd[k].is_floating_point())
    worst["queue_ptr"] = f"{int(W['queue_ptr'][0])} -> {int(sd['queue_ptr'][0])} " \
                         f"(fixture {int(A['queue_ptr'][0])})"
    print(name, {k: (f"{v:.2e}" if isinstance(v, float) else v) for k, v in worst.items()},
          "ints equal" if ints else "INTS DIFFER")
    ok = ints and all(v < 1e-10 for v in worst.values() if isinstance(v, float))
    return ok


def main():
    global DATA
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: check_albef_fixtures.py /path/to/ALBEF [fixture folder]\n"
                 "(a checkout of salesforce/ALBEF; default folder tests/data/albef)")
    if len(sys.argv) == 3:
        DATA = sys.argv[2]
    ok = all([check(sys.argv[1], n) for n in sorted(os.listdir(DATA))
              if os.path.isdir(os.path.join(DATA, n))])
    print("all fixtures equal the authors' model (max relative difference < 1e-10)" if ok
          else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
