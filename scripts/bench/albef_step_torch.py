#!/usr/bin/env python3
"""PyTorch time of one ALBEF pretraining step, beside vlt's (issue 15).

The model is scripts/reference/albef_ref.py (the reference the parity fixtures come from, equal
to the authors' ALBEF to float64 rounding), here at the paper's config (ViT-B/16 at 256 px,
BERT-base fused from layer 6, embed 256, queue 65,536) with random weights. One step is what
the authors' Pretrain.py does per batch: temp clamp, momentum EMA, forward (ITC against the
queue, hard negatives drawn with torch.multinomial from the in-batch similarities, ITM, MLM
with momentum distillation), enqueue, backward, AdamW (lr 1e-4, weight decay 0.02 except on
biases, norms and 0-/1-d tensors, as their optimizer factory). bf16 autocast on the forward,
f32 master weights; attention through SDPA unless --no-sdpa; the EMA as one foreach lerp.
Text: T 25 (their max_length), lengths drawn in [8, 25], 15% MLM masking (80/10/10).

Prints the median ms/step and a JSON line. FLOPs of one step are counted by PyTorch's
FlopCounterMode when --flops is given.

GPU:  python3 scripts/bench/albef_step_torch.py                 (batch 64, paper config)
CPU smoke test (seconds):
      /work/venv-torch/bin/python scripts/bench/albef_step_torch.py --config tiny --device cpu \
          --batch 4 --steps 3 --warmup 1
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import albef_ref as R  # noqa: E402

PAD, CLS, SEP, MASK, FIRST_WORD = 0, 101, 102, 103, 999  # bert-base-uncased ids


def config(name):
    if name == "paper":
        return R.PAPER_CONFIG
    from make_albef_fixtures import CONFIGS
    return CONFIGS[name]["cfg"]


def init(cfg, dev, g):
    """Random weights (scale ~ BERT's 0.02 init, LayerNorm 1/0), momentum = copy, unit queues."""
    P = {}
    for name, shape, kind in R.param_shapes(cfg):
        if kind == "alias":
            continue
        if name.endswith("position_ids"):
            t = torch.arange(shape[1])[None]
        elif name == "queue_ptr":
            t = torch.zeros(1, dtype=torch.long)
        elif name in ("image_queue", "text_queue"):
            t = torch.nn.functional.normalize(torch.randn(shape, generator=g), dim=0)
        elif name == "temp":
            t = torch.tensor(cfg["albef"]["temp"])
        elif R.is_momentum(name):
            continue
        elif name.endswith(".bias"):
            t = torch.zeros(shape)
        elif "LayerNorm.weight" in name or name.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            t = torch.ones(shape)
        else:
            t = 0.02 * torch.randn(shape, generator=g)
        P[name] = t.to(dev)
    for n in R.momentum_names(cfg):
        P[n] = P[R.online_of(n)].clone()
    train = R.trainable_names(cfg)
    for n in train:
        P[n].requires_grad_(True)
    return P, train


def make_batch(cfg, B, T, dev, g):
    a, b = cfg["albef"], cfg["bert"]
    V, S = b["vocab_size"], a["image_res"]
    first = FIRST_WORD if V > FIRST_WORD + 10 else 5
    specials = (CLS, SEP, MASK) if V > FIRST_WORD else (2, 3, 4)
    lengths = torch.randint(min(8, T), T + 1, (B,), generator=g)
    ids = torch.full((B, T), PAD, dtype=torch.long)
    atts = torch.zeros(B, T, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        ids[i, 0], ids[i, n - 1] = specials[0], specials[1]
        ids[i, 1:n - 1] = torch.randint(first, V, (n - 2,), generator=g)
        atts[i, :n] = 1
    chosen = (torch.rand(B, T, generator=g) < 0.15) & (ids >= first)
    chosen[0, 1] = True  # at least one masked token
    r = torch.rand(B, T, generator=g)
    mlm = ids.clone()
    mlm[chosen & (r < 0.8)] = specials[2]
    rnd = chosen & (r >= 0.8) & (r < 0.9)
    mlm[rnd] = torch.randint(V, (B, T), generator=g)[rnd]
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    image = torch.randn(B, 3, S, S, generator=g)
    out = dict(image=image, text_ids=ids, text_atts=atts, mlm_ids=mlm, mlm_labels=labels)
    return {k: v.to(dev) for k, v in out.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="paper", help="paper, or a fixture config: tiny, tiny2")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--text-len", type=int, default=25)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-autocast", action="store_true", help="f32 forward instead of bf16 autocast")
    p.add_argument("--no-sdpa", action="store_true", help="explicit softmax attention (as xbert.py)")
    p.add_argument("--flops", action="store_true", help="count one step's FLOPs (FlopCounterMode)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the card")
    a = p.parse_args()

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    R.SDPA = not a.no_sdpa
    cfg = config(a.config)
    Q, B = cfg["albef"]["queue_size"], a.batch
    if Q % B:
        sys.exit(f"queue_size {Q} must be a multiple of --batch {B} (the authors assert it)")
    g = torch.Generator().manual_seed(0)
    P, train = init(cfg, dev, g)
    batches = [make_batch(cfg, B, min(a.text_len, cfg["bert"]["max_position_embeddings"]), dev, g)
               for _ in range(2)]
    decay = [P[n] for n in train if P[n].dim() >= 2 and not n.endswith(("pos_embed", "cls_token"))]
    ids_decay = {id(t) for t in decay}
    no_decay = [P[n] for n in train if id(P[n]) not in ids_decay]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.02},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-4,
                            **({"fused": True} if cuda else {}))
    mom = R.momentum_names(cfg)
    mom_t = [P[n] for n in mom]
    onl_t = [P[R.online_of(n)] for n in mom]
    m = cfg["albef"]["momentum"]
    alpha = cfg["albef"]["alpha"]

    def step(i):
        R.clamp_temp(P)
        with torch.no_grad():
            torch._foreach_lerp_(mom_t, onl_t, 1.0 - m)  # p_m = m p_m + (1 - m) p
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=not a.no_autocast):
            out = R.forward(P, batches[i % 2], cfg, alpha)
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out

    flops = None
    if a.flops:
        from torch.utils.flop_counter import FlopCounterMode
        with FlopCounterMode(display=False) as fc:
            step(0)
        flops = fc.get_total_flops()
    for i in range(a.warmup):
        step(i)
    if cuda:
        torch.cuda.synchronize()
    times = []
    for i in range(a.steps):
        if cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            out = step(i)
            e.record()
            torch.cuda.synchronize()
            times.append(s.elapsed_time(e) / 1e3)
        else:
            t0 = time.perf_counter()
            out = step(i)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    res = dict(impl="pytorch-albef_ref" + ("-sdpa" if R.SDPA else "") +
               ("-f32" if a.no_autocast else "-bf16autocast"), config=a.config, batch=B,
               text_len=batches[0]["text_ids"].shape[1], device=str(dev),
               ms_per_step_median=round(med * 1e3, 2), ms_per_step_min=round(min(times) * 1e3, 2),
               ms_per_step_max=round(max(times) * 1e3, 2), images_per_s=round(B / med, 1),
               loss=round(out["loss"].item(), 4), loss_itc=round(out["loss_itc"].item(), 4),
               loss_itm=round(out["loss_itm"].item(), 4), loss_mlm=round(out["loss_mlm"].item(), 4),
               torch=torch.__version__)
    if flops is not None:
        res.update(gflop_per_step=round(flops / 1e9, 1),
                   achieved_tflops=round(flops / med / 1e12, 2),
                   mfu=round(flops / med / 1e12 / a.peak_tflops, 4) if cuda else None)
    if cuda:
        res.update(gpu=torch.cuda.get_device_name(), max_mem_gib=round(
            torch.cuda.max_memory_allocated() / 2 ** 30, 2))
    print(f"ALBEF step ({a.config}, batch {B}, {res['impl']}): {res['ms_per_step_median']} ms/step median")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
