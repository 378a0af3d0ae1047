#!/usr/bin/env python3
"""Parity fixtures for vlt's ALBEF VQA model (tests/test_layers_albef_vqa.c): the training loss
and its gradients, and the authors' answer ranking, from scripts/reference/albef_vqa_ref.py
(our own code following salesforce/ALBEF models/model_vqa.py and VQA.py) in float64, dropout off.

Writes tests/data/albef_vqa/<cfg>/ for cfg in tiny, tiny2:
  config.json          {"albef": {...}, "bert": {...}, "albef_vqa": {"decoder_layers", "distill",
                       "k_test"}}
  weights.safetensors  the VQA model's state_dict (released ALBEF VQA names), f32; tied decoder
                       tensors under both names; position_ids i64; the _m copies when distill
                       (online + a small perturbation, so the EMA shows)
  io.safetensors       inputs: image f32 (B,3,S,S), question_ids/question_atts (B,Tq) i32,
                       answer_ids/answer_atts (N,Ta) i32 ([CLS] answer [SEP] [SEP] [PAD]..., as
                       VQA.py tokenizes answer + '[SEP]'), weights f32 (N), k i32 (B) (answers per
                       question, N = sum k), alpha f32 (1);
                       cand_ids/cand_atts (C,Tc) i32: a candidate answer list; outputs f64: loss
                       (1), answer_loss (N) (per answer, before the weights), question_states
                       (B,Tq,H); rank_ids i32 (B,k_test) and rank_probs f64 (B,k_test): the
                       authors' rank_answer on the same images and questions (k = k_test)
  grads.safetensors    d loss / d parameter, f64, every trainable parameter (tied under both names)
  pretrained.safetensors  (tiny only) an ALBEF pretraining state_dict (albef_ref's names, f32)
                       whose VQA.py remapping (albef_vqa_ref.map_pretrained) gives exactly
                       weights.safetensors' online and momentum tensors

With distill the step first runs the EMA p_m = m·p_m + (1-m)·p (the authors' forward does, before
the momentum model runs). Special ids: PAD 0, UNK 1, CLS 2, SEP 3, MASK 4.

Run: /work/venv-torch/bin/python scripts/reference/make_albef_vqa_fixtures.py [--out DIR] [--seed N]
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import albef_ref as AR  # noqa: E402
import albef_vqa_ref as R  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "albef_vqa")
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4

CONFIGS = {
    # widths equal (the pretrained remapping needs it), 4 layers fused from 2, decoder 2 layers,
    # distillation on
    "tiny": dict(
        cfg={"albef": {"image_res": 32, "patch_size": 8, "vision_width": 40, "vision_depth": 2,
                       "vision_heads": 4, "mlp_ratio": 4, "embed_dim": 24, "queue_size": 16,
                       "momentum": 0.9, "temp": 0.07, "alpha": 0.4, "mlm_probability": 0.15},
             "bert": {"vocab_size": 60, "hidden_size": 40, "num_hidden_layers": 4,
                      "num_attention_heads": 4, "intermediate_size": 80,
                      "max_position_embeddings": 40, "type_vocab_size": 2, "fusion_layer": 2,
                      "layer_norm_eps": 1e-12, "pad_token_id": 0},
             "albef_vqa": {"decoder_layers": 2, "distill": True, "k_test": 5}},
        q_lengths=[9, 5, 7], k=[2, 1, 3], a_lengths=[5, 4, 6, 4, 5, 7], n_cand=12,
        alpha=0.4, seed=5, pretrained=True),
    # vision width 48 != BERT width 32, 3 layers fused from 1, decoder 3 layers, no distillation
    "tiny2": dict(
        cfg={"albef": {"image_res": 24, "patch_size": 8, "vision_width": 48, "vision_depth": 2,
                       "vision_heads": 3, "mlp_ratio": 2, "embed_dim": 16, "queue_size": 24,
                       "momentum": 0.995, "temp": 0.07, "alpha": 0.4, "mlm_probability": 0.15},
             "bert": {"vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 3,
                      "num_attention_heads": 2, "intermediate_size": 64,
                      "max_position_embeddings": 20, "type_vocab_size": 2, "fusion_layer": 1,
                      "layer_norm_eps": 1e-12, "pad_token_id": 0},
             "albef_vqa": {"decoder_layers": 3, "distill": False, "k_test": 4}},
        q_lengths=[6, 8], k=[3, 2], a_lengths=[4, 6, 5, 4, 5], n_cand=9,
        alpha=0.0, seed=7, pretrained=False),
}


def rand_param(name, shape, g):
    if "LayerNorm.weight" in name or name.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
        return 1.0 + 0.2 * torch.randn(shape, generator=g)
    if name.endswith(".bias"):
        return 0.1 * torch.randn(shape, generator=g)
    if name.endswith(("cls_token", "pos_embed")) or "embeddings" in name:
        return 0.5 * torch.randn(shape, generator=g)
    fan_in = 1
    for s in shape[1:]:
        fan_in *= s
    return torch.randn(shape, generator=g) * fan_in ** -0.5


def finish(W, shapes, cfg_bert):
    for name, shape, kind in shapes:
        if kind == "buffer":
            W[name] = torch.arange(cfg_bert["max_position_embeddings"], dtype=torch.int64)[None]
    return W


def vqa_weights(cfg, g):
    shapes = R.param_shapes(cfg)
    W = {}
    for name, shape, kind in shapes:
        if kind == "param" and not R.is_momentum(name):
            W[name] = rand_param(name, shape, g)
    for name, shape, kind in shapes:
        if kind == "param" and R.is_momentum(name):
            o = W[R.online_of(name)]
            W[name] = o + 0.05 * o.abs().mean() * torch.randn(shape, generator=g)
    finish(W, shapes, cfg["bert"])
    for name, shape, kind in shapes:
        if kind == "alias":
            W[name] = W[R.alias_target(name)].clone()
    out = {}
    for name, shape, _ in shapes:
        t = W[name].contiguous()
        assert tuple(t.shape) == tuple(shape), (name, t.shape, shape)
        out[name] = t.float() if t.is_floating_point() else t
    return out


def pretrained_weights(cfg, g):
    """A random ALBEF pretraining state_dict (albef_ref's names) with the decoder's layer count
    fitting the remapping; the VQA weights are its remapping."""
    W = {}
    for name, shape, kind in AR.param_shapes(cfg):
        if kind == "param":
            W[name] = rand_param(name, shape, g) if name != "temp" else torch.tensor(0.07)
        elif kind == "buffer":
            W[name] = (torch.arange(cfg["bert"]["max_position_embeddings"], dtype=torch.int64)[None]
                       if name.endswith("position_ids") else
                       torch.zeros(1, dtype=torch.int64) if name == "queue_ptr" else
                       torch.nn.functional.normalize(torch.randn(shape, generator=g), dim=0))
    for name, shape, kind in AR.param_shapes(cfg):
        if kind == "alias":
            W[name] = W[AR.alias_target(name)].clone()
    return {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in W.items()}


def tokens(n, V, g, extra_sep):
    """[CLS] n-2 (or n-3) words [SEP] ([SEP]) ids."""
    body = n - 2 - (1 if extra_sep else 0)
    t = [CLS] + torch.randint(5, V, (body,), generator=g).tolist() + [SEP]
    return t + ([SEP] if extra_sep else [])


def pad_rows(rows):
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), PAD, dtype=torch.long)
    atts = torch.zeros(len(rows), T, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        atts[i, :len(r)] = 1
    return ids, atts


def build(name, spec, out_dir, seed_offset):
    cfg = spec["cfg"]
    g = torch.Generator().manual_seed(spec["seed"] + seed_offset)
    V = cfg["bert"]["vocab_size"]
    pre = None
    if spec["pretrained"]:
        assert cfg["albef"]["vision_width"] == cfg["bert"]["hidden_size"]
        assert cfg["bert"]["fusion_layer"] + cfg["albef_vqa"]["decoder_layers"] == cfg["bert"]["num_hidden_layers"]
        pre = pretrained_weights(cfg, g)
        mapped = R.map_pretrained(pre, cfg["bert"]["fusion_layer"])
        W = {}
        for n, shape, kind in R.param_shapes(cfg):
            W[n] = mapped[n].clone()
            assert tuple(W[n].shape) == tuple(shape), n
        # momentum copies apart from the online ones, as after pretraining
        for n, shape, kind in R.param_shapes(cfg):
            if kind == "param" and R.is_momentum(n):
                assert torch.equal(W[n], mapped[n])
    else:
        W = vqa_weights(cfg, g)
    a = cfg["albef"]
    B = len(spec["q_lengths"])
    # inputs rounded to f32 first: the fixture stores them in f32
    image = torch.randn(B, 3, a["image_res"], a["image_res"], generator=g).float().double()
    q_ids, q_atts = pad_rows([tokens(n, V, g, False) for n in spec["q_lengths"]])
    a_ids, a_atts = pad_rows([tokens(n, V, g, True) for n in spec["a_lengths"]])
    assert len(spec["a_lengths"]) == sum(spec["k"])
    w = (torch.rand(sum(spec["k"]), generator=g) + 0.1).float().double()
    alpha = float(torch.tensor(spec["alpha"], dtype=torch.float32))
    # candidate list: distinct first tokens so that the first-token top-k has no ties
    firsts = torch.randperm(V - 5, generator=g)[:spec["n_cand"]] + 5
    cands = []
    for i in range(spec["n_cand"]):
        t = tokens(3 + i % 4, V, g, True)
        t[1] = int(firsts[i])
        cands.append(t)
    c_ids, c_atts = pad_rows(cands)

    P = {}
    train = set(R.trainable_names(cfg))
    for n, t in W.items():
        if R.kind_of(n) == "alias":
            continue
        t = t.double().clone() if t.is_floating_point() else t.clone()
        if n in train:
            t.requires_grad_(True)
        P[n] = t
    batch = dict(image=image.double(), question_ids=q_ids, question_atts=q_atts, answer_ids=a_ids,
                 answer_atts=a_atts, weights=w.double(), k=spec["k"])
    if cfg["albef_vqa"]["distill"]:
        R.momentum_update(P, cfg)
    out = R.forward_train(P, batch, cfg, alpha)
    names = R.trainable_names(cfg)
    grads = dict(zip(names, torch.autograd.grad(out["loss"], [P[n] for n in names])))
    for n, _, kind in R.param_shapes(cfg):
        if kind == "alias" and not R.is_momentum(n):
            grads[n] = grads[R.alias_target(n)].clone()
    k_test = cfg["albef_vqa"]["k_test"]
    rank_ids, rank_probs, _ = R.rank_answer(P, image.double(), q_ids, q_atts, c_ids, c_atts, k_test, cfg)

    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    save_file(W, os.path.join(d, "weights.safetensors"))
    if pre is not None:
        save_file(pre, os.path.join(d, "pretrained.safetensors"))
    i32 = lambda t: t.to(torch.int32).contiguous()  # noqa: E731
    io = dict(image=image.float().contiguous(), question_ids=i32(q_ids), question_atts=i32(q_atts),
              answer_ids=i32(a_ids), answer_atts=i32(a_atts), weights=w.float().contiguous(),
              k=i32(torch.tensor(spec["k"])), alpha=torch.tensor([alpha], dtype=torch.float32),
              cand_ids=i32(c_ids), cand_atts=i32(c_atts),
              loss=out["loss"].detach().reshape(1), answer_loss=out["answer_loss"].detach().contiguous(),
              question_states=out["question_states"].detach().contiguous(),
              rank_ids=i32(rank_ids), rank_probs=rank_probs.contiguous())
    save_file(io, os.path.join(d, "io.safetensors"))
    save_file({k: v.detach().contiguous() for k, v in grads.items()}, os.path.join(d, "grads.safetensors"))
    print(f"{name}: loss {out['loss'].item():.6f}, {len(names)} trainable tensors, ranked "
          f"{rank_ids.tolist()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    for name, spec in CONFIGS.items():
        build(name, spec, args.out, args.seed)


if __name__ == "__main__":
    main()
