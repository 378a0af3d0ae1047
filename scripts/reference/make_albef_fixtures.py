#!/usr/bin/env python3
"""Parity fixtures for vlt's ALBEF (tests/test_layers_albef.c): one and two pretraining steps of
a PyTorch reference (scripts/reference/albef_ref.py, our own code following the authors'
salesforce/ALBEF models/model_pretrain.py and models/xbert.py), in float64, dropout off, with the
MLM masks and the ITM hard negatives given as inputs.

Writes tests/data/albef/<cfg>/ for cfg in tiny, tiny2:
  config.json          {"albef": {...}, "bert": {...}} (vlt parses it; encoder_width = vision_width)
  weights.safetensors  the whole state_dict with the released checkpoints' names, f32: online
                       weights, the momentum copies (*_m), temp (0-d), image_queue/text_queue
                       (embed_dim, queue_size; unit columns as the authors initialize them),
                       queue_ptr (1,) i64 and the position_ids buffers (1, max_pos) i64. The tied
                       tensors appear under both names with equal values:
                       text_encoder[_m].cls.predictions.decoder.weight == ...bert.embeddings.
                       word_embeddings.weight and ...cls.predictions.decoder.bias == ...cls.
                       predictions.bias.
                       Momentum copies are NOT exact copies of the online weights (as the authors'
                       copy_params makes them at init) but online + a small perturbation, so that
                       the EMA is visible in every tensor. queue_ptr starts non-zero so that the
                       two steps wrap it around.
  io.safetensors       inputs: image (B,3,S,S) f32, text_ids, text_atts, mlm_ids (masked input),
                       mlm_labels (-100 where not masked), neg_image_idx (B) (the image paired
                       with text b as its hard negative), neg_text_idx (B) (the text paired with
                       image b), all i32; alpha (1) f32.
                       outputs of step 1 (f64): loss_itc, loss_itm, loss_mlm, loss (1), and
                       loss_i2t, loss_t2i, loss_mlm_ce, loss_mlm_distill; image_embeds
                       (B,N+1,D), text_embeds (B,T,H) (text-mode output), image_feat, text_feat,
                       image_feat_m, text_feat_m (B,E), sim_i2t, sim_t2i (B,B+Q) (/temp),
                       sim_i2t_targets, sim_t2i_targets, itm_weights_i2t, itm_weights_t2i (B,B)
                       (the softmax with zeroed diagonal the negatives are drawn from),
                       itm_logits (3B,2), mlm_logits (M,V) and mlm_soft_labels (M,V) at the
                       masked positions (labels != -100) in row-major (b, t) order.
  grads.safetensors    d(loss)/d(parameter) of step 1, f64, for every trainable parameter (the
                       online ones, temp included; the tied tensors under both names, each the
                       total gradient of the one tensor). Momentum weights and queues have none.
  after_2_steps.safetensors  every tensor of weights.safetensors after two steps, f64
                       (queue_ptr and position_ids i64), plus step2_loss, step2_loss_itc,
                       step2_loss_itm, step2_loss_mlm (1) f64.

One step (the authors' order: ALBEF.forward, loss.backward(), optimizer.step()):
  1. temp.clamp_(0.001, 0.5)                       (in place, first thing in forward)
  2. momentum EMA: p_m = p_m * momentum + p * (1 - momentum) for every parameter of
     visual_encoder, vision_proj, text_encoder (cls head included, each tied tensor once),
     text_proj (the authors do it after the online encoders ran, before any momentum feature,
     which is the same as at the start of forward / after the previous optimizer step)
  3. forward with the momentum features, ITC against [batch momentum features | queue]
  4. dequeue/enqueue: queue[:, ptr:ptr+B] = momentum features^T, ptr = (ptr+B) % Q
     (after the ITC loss is formed, before ITM and MLM; the ITC used the old queue)
  5. ITM and MLM, loss = loss_itc + loss_itm + loss_mlm; backward
  6. SGD: p -= 0.01 * grad on every trainable parameter (each tied tensor once, with its total
     gradient; no weight decay, no momentum)
The two steps use the same inputs, masks, negatives and alpha. In "tiny2" temp starts at 0.6,
so the clamp at step 1 sets it to 0.5 before anything uses it.

Special token ids in these fixtures (config has only pad): PAD 0, UNK 1, CLS 2, SEP 3, MASK 4.
In tiny2 one randomly replaced MLM token is PAD (0), as the authors' randint(vocab_size) can
draw: the word-embedding lookup gives no gradient to row pad_token_id (padding_idx), and only a
PAD inside the text, read by the loss, shows it.
The masks follow the issue's rule (never CLS/SEP/PAD; 80% MASK / 10% random / 10% kept; at a
higher rate than 0.15 so that every case occurs); the authors' mask() excludes only PAD and CLS.

Run: /work/venv-torch/bin/python scripts/reference/make_albef_fixtures.py
     [--out DIR] [--seed N] (other weights and inputs) [--random N] (N random small configs)
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import albef_ref as R  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "albef")
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
LR = 0.01

CONFIGS = {
    # widths equal (as in the paper), 4 BERT layers fused from layer 2
    "tiny": dict(
        cfg={"albef": {"image_res": 32, "patch_size": 8, "vision_width": 40, "vision_depth": 2,
                       "vision_heads": 4, "mlp_ratio": 4, "embed_dim": 24, "queue_size": 16,
                       "momentum": 0.995, "temp": 0.07, "alpha": 0.4, "mlm_probability": 0.15},
             "bert": {"vocab_size": 100, "hidden_size": 40, "num_hidden_layers": 4,
                      "num_attention_heads": 4, "intermediate_size": 80,
                      "max_position_embeddings": 40, "type_vocab_size": 2, "fusion_layer": 2,
                      "layer_norm_eps": 1e-12, "pad_token_id": 0}},
        B=4, T=12, lengths=[12, 7, 9, 4], alpha=0.4, temp=0.07, ptr=12, seed=11),
    # vision width != BERT width (cross-attention keys/values 48 -> 32), odd T, fusion from
    # layer 1, mlp_ratio 2, queue 24 / batch 3, momentum 0.99, temp starting above the clamp
    "tiny2": dict(
        cfg={"albef": {"image_res": 24, "patch_size": 8, "vision_width": 48, "vision_depth": 2,
                       "vision_heads": 3, "mlp_ratio": 2, "embed_dim": 16, "queue_size": 24,
                       "momentum": 0.99, "temp": 0.07, "alpha": 0.4, "mlm_probability": 0.15},
             "bert": {"vocab_size": 90, "hidden_size": 32, "num_hidden_layers": 3,
                      "num_attention_heads": 2, "intermediate_size": 64,
                      "max_position_embeddings": 20, "type_vocab_size": 2, "fusion_layer": 1,
                      "layer_norm_eps": 1e-12, "pad_token_id": 0}},
        B=3, T=11, lengths=[11, 5, 8], alpha=0.25, temp=0.6, ptr=6, seed=23, random_pad=True),
}


def init_weights(cfg, g, temp, ptr):
    """Random f32 state_dict with non-trivial values (LayerNorm gains away from 1, non-zero
    biases), momentum copies = online + a small perturbation, unit-column queues."""
    W = {}
    shapes = R.param_shapes(cfg)
    for name, shape, kind in shapes:
        if kind != "param" or R.is_momentum(name):
            continue
        if name == "temp":
            W[name] = torch.tensor(temp, dtype=torch.float32)
        elif "LayerNorm.weight" in name or name.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            W[name] = 1.0 + 0.2 * torch.randn(shape, generator=g)
        elif name.endswith(".bias"):
            W[name] = 0.1 * torch.randn(shape, generator=g)
        elif name.endswith(("cls_token", "pos_embed")) or "embeddings" in name:
            W[name] = 0.5 * torch.randn(shape, generator=g)
        else:  # linear / conv weights: fan-in scaling keeps activations O(1)
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            W[name] = torch.randn(shape, generator=g) * fan_in ** -0.5
    for name, shape, kind in shapes:
        if kind == "param" and R.is_momentum(name):
            o = W[R.online_of(name)]
            W[name] = o + 0.05 * o.abs().mean() * torch.randn(shape, generator=g)
    a, b = cfg["albef"], cfg["bert"]
    for name, shape, kind in shapes:
        if kind == "buffer":
            if name.endswith("position_ids"):
                W[name] = torch.arange(b["max_position_embeddings"], dtype=torch.int64)[None]
            elif name == "queue_ptr":
                W[name] = torch.tensor([ptr], dtype=torch.int64)
            else:
                W[name] = torch.nn.functional.normalize(torch.randn(shape, generator=g), dim=0)
        elif kind == "alias":
            pass
    for name, shape, kind in shapes:
        if kind == "alias":
            W[name] = W[R.alias_target(name)].clone()
    for name, shape, _ in shapes:
        W[name] = W[name].contiguous()
        assert tuple(W[name].shape) == tuple(shape), name
        if W[name].is_floating_point():
            W[name] = W[name].float()
    return W


def make_inputs(cfg, spec, g):
    a, b = cfg["albef"], cfg["bert"]
    B, T, V = spec["B"], spec["T"], b["vocab_size"]
    S = a["image_res"]
    image = torch.randn(B, 3, S, S, generator=g)
    ids = torch.full((B, T), PAD, dtype=torch.long)
    atts = torch.zeros(B, T, dtype=torch.long)
    for i, n in enumerate(spec["lengths"]):
        ids[i, 0] = CLS
        ids[i, 1:n - 1] = torch.randint(5, V, (n - 2,), generator=g)
        ids[i, n - 1] = SEP
        atts[i, :n] = 1
    # MLM: choose among real tokens (not CLS/SEP/PAD), then 80/10/10. A higher rate than 0.15
    # and a forced case of each kind, so that every path is exercised.
    cand = (ids >= 5)
    chosen = (torch.rand(B, T, generator=g) < 0.35) & cand
    r = torch.rand(B, T, generator=g)
    kind = torch.where(r < 0.8, 0, torch.where(r < 0.9, 1, 2))  # 0 mask, 1 random, 2 keep
    pos = cand.nonzero().tolist()
    for j, (bi, ti) in enumerate(pos[:3]):  # first three candidates: one of each kind
        chosen[bi, ti] = True
        kind[bi, ti] = j
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    mlm_ids = ids.clone()
    mlm_ids[chosen & (kind == 0)] = MASK
    rnd = torch.randint(V, (B, T), generator=g)
    mlm_ids[chosen & (kind == 1)] = rnd[chosen & (kind == 1)]
    if spec.get("random_pad"):
        # The authors' random replacement draws from the whole vocabulary, PAD included: a PAD
        # id inside the text. Its lookup gets no gradient (padding_idx), unlike a padded slot's,
        # which no loss reads anyway; this is what makes the fixture test padding_idx.
        bi, ti = pos[1]
        mlm_ids[bi, ti] = PAD
    return dict(image=image, text_ids=ids, text_atts=atts, mlm_ids=mlm_ids, mlm_labels=labels)


def to_f64_state(W, cfg):
    """The model as f64 tensors; trainable ones as leaves with requires_grad. Aliases dropped
    (the functional model reads the tensor they share)."""
    P = {}
    train = set(R.trainable_names(cfg))
    for name, t in W.items():
        if R.kind_of(name) == "alias":
            continue
        if t.is_floating_point():
            t = t.double().clone()
        else:
            t = t.clone()
        if name in train:
            t.requires_grad_(True)
        P[name] = t
    return P


def full_state(P, cfg):
    """P as a state_dict again (aliases restored), detached."""
    out = {}
    for name, _, kind in R.param_shapes(cfg):
        src = R.alias_target(name) if kind == "alias" else name
        out[name] = P[src].detach().clone().contiguous()
    return out


def one_step(P, batch, cfg, alpha):
    """One ALBEF step in the authors' order (see the module docstring); returns the forward's
    dict and the gradients (by trainable name)."""
    R.clamp_temp(P)
    R.momentum_update(P, cfg)
    out = R.forward(P, batch, cfg, alpha)
    names = R.trainable_names(cfg)
    grads = torch.autograd.grad(out["loss"], [P[n] for n in names])
    with torch.no_grad():
        for n, gr in zip(names, grads):
            P[n] -= LR * gr
    return out, dict(zip(names, grads))


def build(name, spec):
    cfg = spec["cfg"]
    g = torch.Generator().manual_seed(spec["seed"])
    W = init_weights(cfg, g, spec["temp"], spec["ptr"])
    inp = make_inputs(cfg, spec, g)
    assert (inp["mlm_labels"] != -100).any()
    alpha = torch.tensor([spec["alpha"]], dtype=torch.float32)
    alpha_f = float(alpha[0])

    batch = {k: v for k, v in inp.items()}
    batch["image"] = inp["image"].double()

    # Hard negatives: drawn once, as the authors draw them (multinomial over the softmax of the
    # in-batch similarities with the diagonal zeroed), from a forward on a scratch copy.
    P0 = to_f64_state(W, cfg)
    R.clamp_temp(P0)
    R.momentum_update(P0, cfg)
    with torch.no_grad():
        probe = R.forward(P0, dict(batch, neg_image_idx=torch.zeros(spec["B"], dtype=torch.long),
                                   neg_text_idx=torch.zeros(spec["B"], dtype=torch.long)),
                          cfg, alpha_f, enqueue=False)
    neg_image = torch.multinomial(probe["itm_weights_t2i"], 1, generator=g)[:, 0]
    neg_text = torch.multinomial(probe["itm_weights_i2t"], 1, generator=g)[:, 0]
    assert all(neg_image[i] != i and neg_text[i] != i for i in range(spec["B"]))
    batch["neg_image_idx"], batch["neg_text_idx"] = neg_image, neg_text

    P = to_f64_state(W, cfg)
    out1, g1 = one_step(P, batch, cfg, alpha_f)
    out2, _ = one_step(P, batch, cfg, alpha_f)
    after = full_state(P, cfg)

    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
        f.write("\n")
    save_file(W, os.path.join(d, "weights.safetensors"))

    io = {k: inp[k].to(torch.int32) for k in ("text_ids", "text_atts", "mlm_ids", "mlm_labels")}
    io["image"] = inp["image"].float().contiguous()
    io["neg_image_idx"] = neg_image.to(torch.int32)
    io["neg_text_idx"] = neg_text.to(torch.int32)
    io["alpha"] = alpha
    for k, v in out1.items():
        v = v.detach().double()
        io[k] = (v.reshape(1) if v.dim() == 0 else v).contiguous()
    save_file(io, os.path.join(d, "io.safetensors"))

    grads = {}
    for n, gr in g1.items():
        grads[n] = gr.detach().clone().contiguous()
    for n, _, kind in R.param_shapes(cfg):
        if kind == "alias" and not R.is_momentum(n):
            grads[n] = grads[R.alias_target(n)].clone()
    save_file(grads, os.path.join(d, "grads.safetensors"))

    for k in ("loss", "loss_itc", "loss_itm", "loss_mlm"):
        after["step2_" + k] = out2[k].detach().double().reshape(1)
    save_file(after, os.path.join(d, "after_2_steps.safetensors"))

    sizes = {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))}
    ntrain = sum(P[n].numel() for n in R.trainable_names(cfg))
    print(f"{name}: loss {out1['loss'].item():.6f} (itc {out1['loss_itc'].item():.6f} "
          f"itm {out1['loss_itm'].item():.6f} mlm {out1['loss_mlm'].item():.6f}); step 2 loss "
          f"{out2['loss'].item():.6f}; temp {W['temp'].item():.3f} -> {after['temp'].item():.6f}; "
          f"masked {int((inp['mlm_labels'] != -100).sum())}; negatives img {neg_image.tolist()} "
          f"txt {neg_text.tolist()}; {ntrain} trainable; files {sizes}")


def random_spec(seed):
    """A small config drawn at random (for fixtures nobody has seen): any head counts, vision
    width != BERT width, fusion from any layer (0 = the text encoder is the embeddings alone),
    odd sizes, queue a multiple of the batch."""
    g = torch.Generator().manual_seed(1000 + seed)

    def pick(*xs):
        return xs[int(torch.randint(len(xs), (1,), generator=g))]

    def randint(lo, hi):  # inclusive
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    vh, th = pick(1, 2, 3, 4), pick(1, 2, 4)
    D, H = vh * pick(4, 8, 12), th * pick(4, 6, 8)
    L = randint(1, 4)
    patch, grid = pick(4, 8), pick(2, 3, 4)
    B, T = randint(2, 5), randint(4, 14)
    lengths = [T] + [randint(3, T) for _ in range(B - 1)]
    cfg = {"albef": {"image_res": patch * grid, "patch_size": patch, "vision_width": D,
                     "vision_depth": randint(1, 3), "vision_heads": vh, "mlp_ratio": pick(1, 2, 4),
                     "embed_dim": pick(8, 12, 16), "queue_size": B * randint(1, 6),
                     "momentum": pick(0.995, 0.99, 0.9), "temp": 0.07, "alpha": 0.4,
                     "mlm_probability": 0.15},
           "bert": {"vocab_size": randint(20, 120), "hidden_size": H, "num_hidden_layers": L,
                    "num_attention_heads": th, "intermediate_size": H * pick(1, 2, 3),
                    "max_position_embeddings": T + randint(0, 10), "type_vocab_size": 2,
                    "fusion_layer": randint(0, L - 1), "layer_norm_eps": 1e-12, "pad_token_id": 0}}
    Q = cfg["albef"]["queue_size"]
    return dict(cfg=cfg, B=B, T=T, lengths=lengths, alpha=pick(0.0, 0.1, 0.4),
                temp=pick(0.07, 0.05, 0.3, 0.7), ptr=B * randint(0, Q // B - 1), seed=seed,
                random_pad=bool(randint(0, 1)))


def main():
    global OUT
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT, help="output folder (default tests/data/albef)")
    ap.add_argument("--seed", type=int, default=0,
                    help="added to each config's seed: other weights and inputs (0 = committed)")
    ap.add_argument("--random", type=int, metavar="N", default=0,
                    help="instead of tiny/tiny2, N random small configs random0.. (seeded by --seed)")
    a = ap.parse_args()
    OUT = a.out
    torch.set_num_threads(1)
    if a.random:
        for i in range(a.random):
            build(f"random{i}", random_spec(a.seed * 100 + i))
        return
    for name, spec in CONFIGS.items():
        build(name, dict(spec, seed=spec["seed"] + a.seed))


if __name__ == "__main__":
    main()
