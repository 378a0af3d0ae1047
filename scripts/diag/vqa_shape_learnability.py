# Diagnostic (PyTorch, not part of the build or the tests): how many steps a ViT of the demo CLIP's
# size needs to learn the VQA demo's "What shape is the <colour> object?" questions on their own.
# Written to explain why `make demo-vqa` stays at the majority baseline on shape questions.
#
# The model: 48-px images (resized from the synth's 64 px, bilinear), PATCH-px patches, width 96,
# 3 pre-LN layers of 3 heads, the named colour added to the class token, a 5-way shape classifier
# on the class token; AdamW (weight decay 0.05), 100 warmup steps then cosine, batches of 32.
#
#   build/vlt synth --vqa --out /tmp/syn-train --samples 20000 --image-size 64 --seed 1
#   build/vlt synth --vqa --out /tmp/syn-val --samples 500 --image-size 64 --seed 1 --first-index 1000000
#   python scripts/diag/vqa_shape_learnability.py /tmp/syn-train /tmp/syn-val --steps 3000
#
# Needs torch, numpy and Pillow. Prints training and held-out accuracy every 250 steps.
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

SHAPES = ['circle', 'square', 'triangle', 'diamond', 'cross']


def load(root, colours):
    """The shape questions of a `vlt synth --vqa` folder: images (N, 3, 48, 48), colour ids, shape ids."""
    questions = json.load(open(f'{root}/questions.json'))['questions']
    answers = {a['question_id']: a for a in json.load(open(f'{root}/annotations.json'))['annotations']}
    xs, cs, ys = [], [], []
    for q in questions:
        if not q['question'].startswith('What shape is the '):
            continue
        colour = q['question'].split()[4].rstrip('?')   # "What shape is the red object?"
        cs.append(colours.setdefault(colour, len(colours)))
        ys.append(SHAPES.index(answers[q['question_id']]['multiple_choice_answer']))
        im = Image.open(f"{root}/images/COCO_synth_{q['image_id']:012d}.jpg").convert('RGB')
        xs.append(np.asarray(im.resize((48, 48), Image.BILINEAR), dtype=np.float32) / 255.0)
    x = (torch.tensor(np.stack(xs)).permute(0, 3, 1, 2) - 0.5) / 0.25
    return x, torch.tensor(cs), torch.tensor(ys)


class ShapeViT(nn.Module):
    def __init__(self, patch, n_colours, width=96, layers=3, heads=3):
        super().__init__()
        grid = 48 // patch
        self.patch_embed = nn.Conv2d(3, width, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, grid * grid + 1, width) * 0.02)
        self.colour = nn.Embedding(n_colours, width)
        block = nn.TransformerEncoderLayer(width, heads, 4 * width, 0.0, activation='gelu', batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, len(SHAPES))

    def forward(self, x, colour):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)                       # (B, G², W)
        cls = self.cls.expand(x.shape[0], -1, -1) + self.colour(colour)[:, None]
        x = torch.cat([cls, x], 1) + self.pos
        return self.head(self.ln(self.blocks(x)[:, 0]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('train')
    p.add_argument('val')
    p.add_argument('--patch', type=int, default=8)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--steps', type=int, default=3000)
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    colours = {}
    xt, ct, yt = load(a.train, colours)
    xv, cv, yv = load(a.val, colours)
    print(f'{len(yt)} training and {len(yv)} held-out shape questions; held-out majority '
          f'{torch.bincount(yv).max().item() / len(yv):.3f}', flush=True)
    model = ShapeViT(a.patch, len(colours) + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 100) * 0.5 * (1 + math.cos(math.pi * i / a.steps)))
    t0 = time.time()
    for step in range(1, a.steps + 1):
        idx = torch.randint(0, len(yt), (32,))
        loss = nn.functional.cross_entropy(model(xt[idx], ct[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0:
            with torch.no_grad():
                acc_v = (model(xv, cv).argmax(1) == yv).float().mean().item()
                acc_t = (model(xt[:1000], ct[:1000]).argmax(1) == yt[:1000]).float().mean().item()
            print(f'step {step}  loss {loss.item():.3f}  train acc {acc_t:.3f}  held-out acc {acc_v:.3f}  '
                  f'{time.time() - t0:.0f} s', flush=True)


if __name__ == '__main__':
    main()
