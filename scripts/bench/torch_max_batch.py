"""The largest CLIP ViT-B/32 training batch that fits on the card in PyTorch, for
`vlt bench clip-step --max-batch` to be compared with (scripts/gpu_check.sh runs both).

The model and step are those of the project's PyTorch reference (torch_clip_baseline.py in the
shared bench folder): Hugging Face CLIPModel with its default ViT-B/32 config, SDPA attention,
bf16 autocast, fused AdamW; eager (torch.compile's peak is close to eager's: 12.5 vs 13.5 GiB at
batch 256 on an H200). A batch fits when one whole step (forward, backward, optimizer) runs
without torch.cuda.OutOfMemoryError. The search doubles from --start until a step fails, then
bisects to a multiple of --step. Prints one JSON line.
Usage: python3 torch_max_batch.py [--start 512] [--step 64]
"""
import argparse, gc, json, time
import torch
from transformers import CLIPConfig, CLIPModel

p = argparse.ArgumentParser()
p.add_argument("--start", type=int, default=512)
p.add_argument("--step", type=int, default=64)
p.add_argument("--limit", type=int, default=65536)
a = p.parse_args()

torch.manual_seed(0)
dev = "cuda"
cfg = CLIPConfig()
model = CLIPModel(cfg)
model.config._attn_implementation = "sdpa"
for m in model.modules():
    if hasattr(m, "config"):
        m.config._attn_implementation = "sdpa"
model = model.to(dev).train()
opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.2, fused=True)


def fits(b):
    imgs = ids = out = None
    try:
        imgs = torch.randn(b, 3, 224, 224, device=dev)
        ids = torch.randint(0, 49406, (b, 77), device=dev)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, pixel_values=imgs, return_loss=True)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:
        del imgs, ids, out
        opt.zero_grad(set_to_none=True)
        gc.collect()
        torch.cuda.empty_cache()


t0 = time.time()
tries = []
lo, hi, b = 0, None, a.start
while b <= a.limit:
    ok = fits(b)
    tries.append((b, ok))
    if not ok:
        hi = b
        break
    lo, b = b, b * 2
if hi is not None:
    while hi - lo > a.step:
        mid = (lo + hi) // 2 // a.step * a.step
        if mid <= lo:
            break
        ok = fits(mid)
        tries.append((mid, ok))
        lo, hi = (mid, hi) if ok else (lo, mid)
print(json.dumps(dict(impl="pytorch-hf-clip-eager", max_batch=lo, first_failing=hi, tries=tries,
                      card_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
                      seconds=round(time.time() - t0, 1), torch=torch.__version__)))
