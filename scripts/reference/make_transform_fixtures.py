#!/usr/bin/env python3
"""Fixtures for tests/test_data_image.c and tests/test_data_transform.c, made with PIL and
torchvision exactly as open_clip uses them.

  /work/venv/bin/python scripts/reference/make_transform_fixtures.py [--out tests/data/data]

Writes
  image/      small encoded images (JPEG RGB / gray / CMYK, PNG RGBA / LA / palette+tRNS / 16-bit /
              1-bit gray / interlaced, WebP lossy / lossless+alpha) and, beside each, PIL's
              Image.open(f).convert("RGB") as raw bytes (.rgb, HWC uint8); manifest.txt lists them.
  transform/  source images of odd sizes (PNG, so decoding is exact) and, for each,
              - eval:   open_clip's eval transform (Resize(S, BICUBIC), CenterCrop(S), ToTensor,
                        Normalize(OpenAI mean/std)) as float32 CHW little-endian (.f32);
              - evalu8: the same before ToTensor (uint8 HWC), for a larger S;
              - resize: PIL img.resize((w, h), BICUBIC) (uint8 HWC);
              - crop:   torchvision F.resized_crop(img, top, left, h, w, [S, S], BICUBIC) (uint8 HWC),
                        the step RandomResizedCrop applies after drawing its box;
              manifest.txt lists them, one case per line.
"""
import argparse
import os

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def test_pattern(w, h, seed):
    """Smooth gradients, hard-edged blocks (bicubic overshoot, clipping) and noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 255 * x / max(w - 1, 1)
    img[..., 1] = 255 * y / max(h - 1, 1)
    img[..., 2] = 127 + 120 * np.sin(x / 3.0 + y / 5.0)
    blocks = ((x // 4 + y // 3) % 2 == 0)
    img[blocks] = img[blocks] * 0.2
    img += rng.normal(0, 12, img.shape)
    img[h // 3: h // 3 + max(1, h // 6), :, :] = 255  # a white stripe
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_raw(path, arr):
    arr = np.ascontiguousarray(arr)
    with open(path, "wb") as f:
        f.write(arr.tobytes())


def make_decode_fixtures(out):
    os.makedirs(out, exist_ok=True)
    rgb = Image.fromarray(test_pattern(23, 17, 1))
    rgba = np.dstack([test_pattern(19, 13, 2), np.linspace(0, 255, 19 * 13).reshape(13, 19).astype(np.uint8)])
    cases = []

    def add(name, im, **save):
        path = os.path.join(out, name)
        im.save(path, **save)
        ref = Image.open(path)
        conv = np.asarray(ref.convert("RGB"))
        write_raw(path + ".rgb", conv)
        cases.append((name, conv.shape[1], conv.shape[0], ref.mode))

    add("rgb420.jpg", rgb, quality=90)
    add("rgb444_progressive.jpg", rgb, quality=95, subsampling=0, progressive=True)
    add("gray.jpg", rgb.convert("L"), quality=90)
    add("cmyk.jpg", rgb.convert("CMYK"), quality=95)
    add("rgb.png", rgb)
    add("rgba.png", Image.fromarray(rgba, "RGBA"))
    add("la.png", Image.fromarray(rgba[..., [0, 3]], "LA"))
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 3
    add("palette_trns.png", pal, transparency=3)
    add("gray1.png", rgb.convert("1"))
    # 16-bit RGB: PIL cannot write it from RGB mode; write through numpy with a minimal encoder.
    write_png16(os.path.join(out, "rgb16.png"), test_pattern(11, 9, 3))
    ref = Image.open(os.path.join(out, "rgb16.png"))
    conv = np.asarray(ref.convert("RGB"))
    write_raw(os.path.join(out, "rgb16.png.rgb"), conv)
    cases.append(("rgb16.png", conv.shape[1], conv.shape[0], ref.mode))
    add("lossy.webp", rgb, quality=80)
    add("lossless_alpha.webp", Image.fromarray(rgba, "RGBA"), lossless=True)
    add("lossy_alpha.webp", Image.fromarray(rgba, "RGBA"), quality=80)
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("# file width height pil_mode ; expected PIL convert('RGB') bytes in <file>.rgb\n")
        for name, w, h, mode in cases:
            f.write(f"{name} {w} {h} {mode}\n")


def write_png16(path, rgb8):
    """A 16-bit RGB PNG whose high bytes are rgb8 and low bytes a pattern (zlib, no filter)."""
    import struct
    import zlib
    h, w, _ = rgb8.shape
    v = rgb8.astype(np.uint16) * 256 + (np.arange(w * h * 3).reshape(h, w, 3) * 37 % 256).astype(np.uint16)
    raw = b"".join(b"\x00" + v[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def eval_transform(size):
    # open_clip.transform.image_transform(size, is_train=False), resize_mode 'shortest'.
    return T.Compose([
        T.Resize(size, interpolation=InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])


def make_transform_fixtures(out):
    os.makedirs(out, exist_ok=True)
    sizes = [(37, 53), (300, 17), (64, 64), (5, 7), (250, 199), (33, 100), (24, 24), (97, 41)]
    lines = []
    for n, (w, h) in enumerate(sizes):
        name = f"src_{w}x{h}.png"
        Image.fromarray(test_pattern(w, h, 10 + n)).save(os.path.join(out, name))
        img = Image.open(os.path.join(out, name)).convert("RGB")
        S = 24
        t = eval_transform(S)(img).numpy().astype("<f4")
        f = f"eval{S}_{w}x{h}.f32"
        write_raw(os.path.join(out, f), t)
        lines.append(f"eval {name} {S} {f}")
        # Resize only, to odd non-square sizes (down in one axis, up in the other, or both).
        # The last one shrinks the height much more than the width: Pillow 13 runs the vertical pass first.
        for (rw, rh) in [(max(1, w // 3), max(1, h * 2 // 3)), (w * 2 + 1, max(1, h // 2)), (max(1, w - 1), max(1, h // 4))]:
            r = np.asarray(img.resize((rw, rh), Image.BICUBIC))
            f = f"resize_{w}x{h}_to_{rw}x{rh}.u8"
            write_raw(os.path.join(out, f), r)
            lines.append(f"resize {name} {rw} {rh} {f}")
        # resized_crop with a fixed box (what RandomResizedCrop does after drawing the box).
        rng = np.random.RandomState(100 + n)
        bw, bh = rng.randint(1, w + 1), rng.randint(1, h + 1)
        bx, by = rng.randint(0, w - bw + 1), rng.randint(0, h - bh + 1)
        r = np.asarray(F.resized_crop(img, by, bx, bh, bw, [S, S], InterpolationMode.BICUBIC))
        f = f"crop_{w}x{h}_{bx}_{by}_{bw}x{bh}.u8"
        write_raw(os.path.join(out, f), r)
        lines.append(f"crop {name} {bx} {by} {bw} {bh} {S} {f}")
    # A large output, before ToTensor: Resize(224) + CenterCrop(224) of the 250x199 source.
    img = Image.open(os.path.join(out, "src_250x199.png")).convert("RGB")
    r = np.asarray(T.CenterCrop(224)(T.Resize(224, interpolation=InterpolationMode.BICUBIC)(img)))
    write_raw(os.path.join(out, "evalu8_224_250x199.u8"), r)
    lines.append("evalu8 src_250x199.png 224 evalu8_224_250x199.u8")
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("# made by scripts/reference/make_transform_fixtures.py with PIL + torchvision\n")
        f.write("# eval SRC S FILE.f32 | evalu8 SRC S FILE.u8 | resize SRC W H FILE.u8 | crop SRC X Y W H S FILE.u8\n")
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/data/data")
    a = ap.parse_args()
    torch.manual_seed(0)
    make_decode_fixtures(os.path.join(a.out, "image"))
    make_transform_fixtures(os.path.join(a.out, "transform"))


if __name__ == "__main__":
    main()
