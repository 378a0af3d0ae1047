#!/usr/bin/env python3
"""PyTorch reference for `vlt bench`: one pre-LN transformer block (open_clip's
ResidualAttentionBlock structure: ln_1, nn.MultiheadAttention, ln_2, c_fc, GELU, c_proj),
forward + backward of out.mean() + AdamW step, fp32 on the CPU, median step time."""
import argparse, time
import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=32)
p.add_argument("--tokens", type=int, default=64)
p.add_argument("--width", type=int, default=256)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

class Block(nn.Module):
    def __init__(self, w, h):
        super().__init__()
        self.ln_1 = nn.LayerNorm(w)
        self.attn = nn.MultiheadAttention(w, h, batch_first=True)
        self.ln_2 = nn.LayerNorm(w)
        self.c_fc = nn.Linear(w, 4 * w)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * w, w)

    def forward(self, x):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.c_proj(self.gelu(self.c_fc(self.ln_2(x))))

blk = Block(a.width, a.heads)
opt = torch.optim.AdamW(blk.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
x = torch.randn(a.batch, a.tokens, a.width)
times = []
for s in range(a.steps + 3):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=False)
    blk(x).mean().backward()
    opt.step()
    if s >= 3:
        times.append(time.perf_counter() - t0)
times.sort()
print(f"torch {torch.__version__} block B={a.batch} T={a.tokens} W={a.width} H={a.heads} "
      f"fwd+bwd+adamw: {times[len(times) // 2] * 1e3:.2f} ms/step (median of {a.steps}, {a.threads} threads)")
