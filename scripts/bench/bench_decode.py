#!/usr/bin/env python3
"""The Python side of scripts/bench/bench_decode.sh: webdataset + PIL + torchvision, open_clip's
train transform (RandomResizedCrop(224, scale=(0.9, 1.0), BICUBIC), convert RGB, ToTensor,
Normalize(OpenAI mean/std)), one thread, over the given shards. Prints images/s.

  taskset -c 0 python scripts/bench/bench_decode.py [--size 224] [--repeat 2] SHARD...
"""
import argparse
import time

import torch
import webdataset as wds
from open_clip.transform import image_transform


def one_pass(shards, preprocess, limit):
    ds = wds.WebDataset(shards, shardshuffle=False).decode("pil").to_tuple("jpg", "txt").map_tuple(preprocess, lambda t: t)
    n = 0
    t0 = time.perf_counter()
    for img, _ in ds:
        assert img.shape[0] == 3
        n += 1
        if limit and n >= limit:
            break
    return n, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("shards", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    preprocess = image_transform(a.size, is_train=True)   # open_clip's default train transform
    best, n = 0.0, 0
    for _ in range(a.repeat):
        n, dt = one_pass(a.shards, preprocess, a.limit)
        best = max(best, n / dt)
    import PIL
    import torchvision
    versions = f"Pillow {PIL.__version__}, torchvision {torchvision.__version__}, webdataset {wds.__version__}"
    print(f"python webdataset+PIL+torchvision: {n} images, {best:.1f} images/s (best of {a.repeat}; "
          f"decode + RandomResizedCrop({a.size}) + normalize, 1 thread; {versions})")


if __name__ == "__main__":
    main()
