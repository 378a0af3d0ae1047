#!/usr/bin/env python3
"""Parity fixtures for vlt's CLIP against open_clip (tests/test_layers_clip.c).

For each tiny config (GELU, QuickGELU, SigLIP) writes tests/data/layers/clip_<name>/:
  config.json          the open_clip model config (vlt parses the same file)
  weights.safetensors  open_clip's state_dict (f32)
  io.safetensors       images (B,3,32,32) f32, ids (B,16) i32, and the reference outputs:
                       image_features, text_features (normalized), logits (B,B), loss (1)
  grads.safetensors    d loss / d parameter for every parameter, open_clip names
The reference runs in float64 from the f32 weights and inputs, so it is the exact answer that
vlt's f32 computation is compared against.

Run: /work/venv/bin/python scripts/reference/make_clip_fixtures.py   (open_clip_torch, torch, safetensors)
"""
import json, math, os
import torch
from open_clip.model import CLIP
from open_clip.loss import ClipLoss, SigLipLoss
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "layers")
B, CTX, VOCAB = 4, 16, 100


def config(quick_gelu, siglip):
    c = {"embed_dim": 32,
         "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 16},
         "text_cfg": {"context_length": CTX, "vocab_size": VOCAB, "width": 64, "heads": 4, "layers": 2}}
    if quick_gelu:
        c["quick_gelu"] = True
    if siglip:
        c["init_logit_scale"] = math.log(10)
        c["init_logit_bias"] = -10.0
    return c


def make(name, quick_gelu=False, siglip=False, seed=0):
    torch.manual_seed(seed)
    cfg = config(quick_gelu, siglip)
    kw = {}
    if siglip:
        kw = dict(init_logit_scale=cfg["init_logit_scale"], init_logit_bias=cfg["init_logit_bias"])
    model = CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"], quick_gelu=quick_gelu, **kw)
    # Perturb every parameter a little so that zero-initialized biases and unit norms are exercised.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.ndim <= 1 and n not in ("logit_scale", "logit_bias"):
                p.add_(0.1 * torch.randn_like(p))
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    images = torch.randn(B, 3, 32, 32)
    ids = torch.zeros(B, CTX, dtype=torch.int32)
    for b in range(B):
        n = 3 + 3 * b  # EOT at positions 4, 7, 10, 13
        ids[b, 0] = VOCAB - 2  # SOT
        ids[b, 1:n + 1] = torch.randint(1, VOCAB - 2, (n,))
        ids[b, n + 1] = VOCAB - 1  # EOT: the largest id, pooled by argmax
    model = model.double()
    img_f = model.encode_image(images.double(), normalize=True)
    txt_f = model.encode_text(ids.long(), normalize=True)
    scale = model.logit_scale.exp()
    if siglip:
        loss_fn = SigLipLoss()
        loss = loss_fn(img_f, txt_f, scale, model.logit_bias)
        logits = scale * img_f @ txt_f.T + model.logit_bias
    else:
        loss = ClipLoss()(img_f, txt_f, scale)
        logits = scale * img_f @ txt_f.T
    loss.backward()
    grads = {n: p.grad.detach().float().contiguous() for n, p in model.named_parameters()}
    d = os.path.join(OUT, f"clip_{name}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_file(sd, os.path.join(d, "weights.safetensors"))
    save_file({"images": images.contiguous(), "ids": ids.contiguous(),
               "image_features": img_f.detach().float().contiguous(),
               "text_features": txt_f.detach().float().contiguous(),
               "logits": logits.detach().float().contiguous(),
               "loss": loss.detach().float().reshape(1).contiguous()},
              os.path.join(d, "io.safetensors"))
    save_file(grads, os.path.join(d, "grads.safetensors"))
    print(f"{d}: loss {loss.item():.6f}, {len(sd)} tensors")


if __name__ == "__main__":
    make("gelu", seed=1)
    make("quickgelu", quick_gelu=True, seed=2)
    make("siglip", siglip=True, seed=3)
