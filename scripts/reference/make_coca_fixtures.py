#!/usr/bin/env python3
"""Parity fixtures for vlt's CoCa against open_clip (tests/test_layers_coca.c).

Writes tests/data/layers/coca_tiny/:
  config.json          the open_clip model config (vlt parses the same file)
  weights.safetensors  open_clip's CoCa state_dict (f32)
  io.safetensors       images (B,3,32,32) f32, ids (B,16) i32 (sot 98, eot 99, pad 0), and the
                       reference outputs: image_features, text_features (normalized, (B,E)),
                       image_embs (B, queries-1, E), logits (B,15,V) (teacher forcing),
                       contrastive_loss, caption_loss (both already weighted 1.0 / 2.0), loss,
                       caption_loss_ls (label smoothing 0.1, weighted), and greedy captions:
                       gen_images (N,3,32,32), greedy_ids (N,12) [min_seq_len 3, no penalty],
                       greedy_ids_rep (N,12) [min_seq_len 6, repetition_penalty 1.5]
  grads.safetensors    d loss / d parameter for every parameter (loss = contrastive + caption)
The reference runs in float64 from the f32 weights and inputs. The greedy captions come from
open_clip's CoCa.generate(generation_type="top_k", top_k=1, fixed_output_length=True) — its
greedy decoding — also in float64; the script checks that every step's top-1 logit beats the
runner-up by a margin far above f32 rounding, so a token-for-token comparison is fair.

The vision width (48) differs from embed_dim (64) on purpose: the attentional pooler's
MultiheadAttention then has separate q/k/v projections, as in coca_ViT-B-32 (768 vs 512).

Run: /work/venv/bin/python scripts/reference/make_coca_fixtures.py
     (open_clip_torch, torch, safetensors, transformers for generate)
"""
import json, os
import torch
import torch.nn.functional as F
from open_clip.coca_model import CoCa
from open_clip.loss import CoCaLoss
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "layers")
B, CTX, VOCAB = 4, 16, 100
SOT, EOT, PAD = VOCAB - 2, VOCAB - 1, 0
GEN_LEN = 12

CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 48, "patch_size": 8, "head_width": 16,
                   "attentional_pool": True, "attn_pooler_heads": 4, "attn_pooler_queries": 8,
                   "output_tokens": True},
    "text_cfg": {"context_length": CTX, "vocab_size": VOCAB, "width": 64, "heads": 4, "layers": 2,
                 "embed_cls": True, "output_tokens": True},
    "multimodal_cfg": {"context_length": CTX, "vocab_size": VOCAB, "width": 64, "heads": 4, "layers": 2,
                       "attn_pooler_heads": 4},
    "custom_text": True,
}


def greedy_margin(model, images, seq, min_len, penalty):
    """Smallest gap between the chosen logit and the runner-up over every free greedy step."""
    worst = float("inf")
    with torch.no_grad():
        for t in range(1, seq.shape[1] - 1):
            prefix = seq[:, :t]
            lg = model(images, prefix, output_labels=False)["logits"][:, -1].clone()
            for b in range(seq.shape[0]):
                if prefix[b, -1] in (EOT, PAD):
                    continue
                s = lg[b]
                if t < min_len:
                    s[EOT] = -float("inf")
                sc = s[prefix[b]]
                s[prefix[b]] = torch.where(sc < 0, sc * penalty, sc / penalty)
                top = torch.topk(s, 2).values
                worst = min(worst, (top[0] - top[1]).item())
    return worst


def main(seed=7):
    torch.manual_seed(seed)
    model = CoCa(CFG["embed_dim"], CFG["multimodal_cfg"], CFG["text_cfg"], CFG["vision_cfg"])
    with torch.no_grad():
        # open_clip leaves the decoder's text_projection as torch.empty: give it its intended init.
        model.text_decoder.text_projection.normal_(std=64 ** -0.5)
        # Make EOT compete with a frequent token so that some greedy captions end early.
        proj = model.text_decoder.text_projection
        proj[:, EOT] = proj[:, 6] + 0.3 * torch.randn(proj.shape[0]) * 64 ** -0.5
        # Perturb 1-D parameters so zero biases and unit norms are exercised.
        for n, p in model.named_parameters():
            if p.ndim <= 1 and n != "logit_scale":
                p.add_(0.1 * torch.randn_like(p))
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    images = torch.randn(B, 3, 32, 32)
    ids = torch.zeros(B, CTX, dtype=torch.int32)
    for b in range(B):
        n = 3 + 3 * b if b < 3 else CTX - 2   # the last caption fills the context (no pad)
        ids[b, 0] = SOT
        ids[b, 1:n + 1] = torch.randint(1, VOCAB - 2, (n,))
        ids[b, n + 1] = EOT
    model = model.double()
    out = model(images.double(), ids.long())
    loss_fn = CoCaLoss(caption_loss_weight=2.0, clip_loss_weight=1.0, pad_id=PAD)
    closs, caploss = loss_fn(out["image_features"], out["text_features"], out["logits"], out["labels"],
                             out["logit_scale"])
    cap_ls = 2.0 * F.cross_entropy(out["logits"].permute(0, 2, 1), out["labels"], ignore_index=PAD,
                                   label_smoothing=0.1)
    loss = closs + caploss
    loss.backward()
    grads = {n: p.grad.detach().float().contiguous() for n, p in model.named_parameters()}
    _, image_embs = model._encode_image(images.double())

    model.eval()
    gen_images = torch.randn(3, 3, 32, 32) * 2.0
    gi = gen_images.double()
    kw = dict(seq_len=GEN_LEN, generation_type="top_k", top_k=1, sot_token_id=SOT, eos_token_id=EOT,
              pad_token_id=PAD, fixed_output_length=True)
    greedy = model.generate(gi, min_seq_len=3, **kw)
    greedy_rep = model.generate(gi, min_seq_len=6, repetition_penalty=1.5, **kw)
    m1 = greedy_margin(model, gi, greedy, 3, 1.0)
    m2 = greedy_margin(model, gi, greedy_rep, 6, 1.5)
    print("greedy:", greedy.tolist(), "margin", m1)
    print("greedy_rep:", greedy_rep.tolist(), "margin", m2)
    assert min(m1, m2) > 1e-3, "a greedy step is too close to a tie for an f32 comparison; change the seed"

    d = os.path.join(OUT, "coca_tiny")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2)
    save_file(sd, os.path.join(d, "weights.safetensors"))
    f32 = lambda t: t.detach().float().contiguous()
    save_file({"images": images.contiguous(), "ids": ids.contiguous(),
               "image_features": f32(out["image_features"]), "text_features": f32(out["text_features"]),
               "image_embs": f32(image_embs), "logits": f32(out["logits"]),
               "contrastive_loss": f32(closs).reshape(1), "caption_loss": f32(caploss).reshape(1),
               "loss": f32(loss).reshape(1), "caption_loss_ls": f32(cap_ls).reshape(1),
               "gen_images": gen_images.contiguous(), "greedy_ids": greedy.int().contiguous(),
               "greedy_ids_rep": greedy_rep.int().contiguous()},
              os.path.join(d, "io.safetensors"))
    save_file(grads, os.path.join(d, "grads.safetensors"))
    n = sum(v.numel() for v in sd.values())
    print(f"{d}: contrastive {closs.item():.6f} caption {caploss.item():.6f}, {len(sd)} tensors, {n} numbers")


if __name__ == "__main__":
    main()
