#!/usr/bin/env python3
"""ALBEF's retrieval evaluation by the authors' model against `vlt eval checkpoint --rerank-k`.

The authors' evaluation (salesforce/ALBEF Retrieval.py: evaluation() and itm_eval()) on a small
random ALBEF built from their code (albef_authors.build_small), written here step for step since
Retrieval.py needs their data loaders:
  text_embed = text_encoder(ids, atts, mode='text'); text_feat = normalize(text_proj(text_embed[:, 0]))
  image_feat = visual_encoder(image);               image_embed = normalize(vision_proj(image_feat[:, 0]))
  sims = image_embed @ text_featᵀ
  i2t: for each image, topk_idx = sims[i].topk(k_test); score = itm_head(text_encoder(encoder_embeds=
       text_embed[topk_idx], attention_mask=atts[topk_idx], encoder_hidden_states=image_feat[i]
       repeated, mode='fusion').last_hidden_state[:, 0])[:, 1]; score_matrix_i2t[i, topk_idx] = score,
       the rest -100; t2i the same with the roles swapped
  itm_eval: image->text rank = the best position of the image's captions in argsort(-score row);
       text->image rank = the position of its image; recall@1/5/10
The same weights (saved with the released checkpoints' names), pictures (at the model's size, so
that vlt's eval transform is the identity before the normalization; read back from the shard,
where vlt shards has re-encoded them as JPEG) and captions go through
`vlt shards --coco` and `vlt eval checkpoint --weights W --model CONFIG --rerank-k K --out report`;
every recall of both protocols must be equal.

Run: /work/venv-albef/bin/python scripts/reference/check_albef_retrieval.py /path/to/ALBEF [--vlt ./vlt]
(the authors' checkout with models/ and configs/; the venv of check_albef_names.py)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import albef_authors  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MEAN = (0.48145466, 0.4578275, 0.40821073)   # ALBEF's normalize (CLIP's constants), as vlt's transform
STD = (0.26862954, 0.26130258, 0.27577711)
WORDS = "a small large red green blue yellow purple orange circle square triangle diamond cross to the left right of above below and".split()


def itm_eval(score_i2t, score_t2i, txt2img, img2txt):
    """Retrieval.py itm_eval: ranks from argsort of each row, largest first."""
    ranks = np.zeros(score_i2t.shape[0])
    for index, score in enumerate(score_i2t):
        inds = np.argsort(score)[::-1]
        rank = 1e20
        for i in img2txt[index]:
            tmp = np.where(inds == i)[0][0]
            if tmp < rank:
                rank = tmp
        ranks[index] = rank
    tr = [100.0 * len(np.where(ranks < k)[0]) / len(ranks) for k in (1, 5, 10)]
    ranks = np.zeros(score_t2i.shape[0])
    for index, score in enumerate(score_t2i):
        inds = np.argsort(score)[::-1]
        ranks[index] = np.where(inds == txt2img[index])[0][0]
    ir = [100.0 * len(np.where(ranks < k)[0]) / len(ranks) for k in (1, 5, 10)]
    return tr, ir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("--vlt", default=os.path.join(ROOT, "vlt"))
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--k", type=int, default=12)   # >= 10: below, recall@10 would count the authors'
    # order among the -100 ties of the candidates left out, which numpy's argsort leaves arbitrary
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="albef-retrieval-")
    cfg = {"albef": {"image_res": 32, "patch_size": 8, "vision_width": 48, "vision_depth": 2, "vision_heads": 2,
                     "mlp_ratio": 4, "embed_dim": 32, "queue_size": 64, "momentum": 0.995, "temp": 0.07,
                     "alpha": 0.4, "mlm_probability": 0.15,
                     "vocab": os.path.join(ROOT, "assets", "bert_demo_vocab.txt"), "max_text_len": 20},
           "bert": {"vocab_size": 32, "hidden_size": 48, "num_hidden_layers": 3, "num_attention_heads": 2,
                    "intermediate_size": 96, "max_position_embeddings": 24, "type_vocab_size": 2,
                    "fusion_layer": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0}}
    cfg_path = os.path.join(tmp, "albef-check.json")
    json.dump(cfg, open(cfg_path, "w"))

    torch.manual_seed(args.seed)
    model = albef_authors.build_small(args.src, cfg)
    with torch.no_grad():   # a random model whose heads separate pairs more than the init's 0.02 does
        for n, p in model.named_parameters():
            if n.startswith(("itm_head", "vision_proj", "text_proj")):
                p.normal_(0, 0.3)
    model.eval()
    W = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    weights = os.path.join(tmp, "albef.safetensors")
    save_file(W, weights)

    # pictures and captions (1 to 3 per picture), packed as COCO by vlt shards
    rng = np.random.default_rng(args.seed)
    S, N = cfg["albef"]["image_res"], args.images
    os.makedirs(os.path.join(tmp, "images"))
    images, anns, pics = [], [], []
    for i in range(N):
        yy, xx = np.mgrid[0:S, 0:S]
        base = rng.uniform(0, 255, 3)
        px = np.stack([(base[c] + rng.uniform(20, 90) * np.sin(xx / rng.uniform(2, 8) + yy / rng.uniform(2, 8) + c))
                       for c in range(3)], -1).clip(0, 255).astype(np.uint8)
        Image.fromarray(px).save(os.path.join(tmp, "images", f"im{i}.png"))
        pics.append(px)
        images.append({"id": 1000 + i, "file_name": f"im{i}.png"})
        for c in range(1 + i % 3):
            words = rng.choice(WORDS, size=int(rng.integers(2, 9)))
            anns.append({"image_id": 1000 + i, "id": len(anns) + 1, "caption": " ".join(words)})
    json.dump({"images": images, "annotations": anns}, open(os.path.join(tmp, "coco.json"), "w"))
    subprocess.run([args.vlt, "shards", "--out", os.path.join(tmp, "shards"), "--coco", os.path.join(tmp, "coco.json"),
                    "--images", os.path.join(tmp, "images")], check=True, stdout=subprocess.DEVNULL)
    report = os.path.join(tmp, "report.json")
    subprocess.run([args.vlt, "eval", "checkpoint", "--weights", weights, "--model", cfg_path, "--shards",
                    os.path.join(tmp, "shards", "00000.tar"), "--rerank-k", str(args.k), "--out", report], check=True)
    nums = json.load(open(report))["numbers"]

    # the authors' evaluation
    from transformers import BertTokenizer
    tok = BertTokenizer(cfg["albef"]["vocab"])
    # vlt shards keeps the annotation file's order of images; captions in annotation order per image
    texts = [a["caption"] for a in anns]
    txt2img = [a["image_id"] - 1000 for a in anns]
    img2txt = [[t for t, im in enumerate(txt2img) if im == i] for i in range(N)]
    ti = tok(texts, padding="max_length", truncation=True, max_length=cfg["albef"]["max_text_len"], return_tensors="pt")
    # the pictures as the shard holds them: vlt shards re-encodes them as JPEG (quality 95)
    import io
    import tarfile
    with tarfile.open(os.path.join(tmp, "shards", "00000.tar")) as tf:
        got = {}
        for m in tf.getmembers():
            key, ext = m.name.rsplit(".", 1)
            got.setdefault(key, {})[ext] = tf.extractfile(m).read()
    for key, g in got.items():
        i = json.loads(g["json"])["image_id"] - 1000
        pics[i] = np.asarray(Image.open(io.BytesIO(g["jpg"])).convert("RGB"))
    img = torch.tensor(np.stack(pics), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    img = (img - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    bert = model.text_encoder.bert
    with torch.no_grad():
        text_out = bert(ti.input_ids, attention_mask=ti.attention_mask, mode="text")
        text_embeds = text_out.last_hidden_state
        text_feat = F.normalize(model.text_proj(text_embeds[:, 0, :]), dim=-1)
        image_feat = model.visual_encoder(img)
        image_embed = F.normalize(model.vision_proj(image_feat[:, 0, :]), dim=-1)
        sims = image_embed @ text_feat.t()
        T = len(texts)
        s_i2t = torch.full((N, T), -100.0)
        s_t2i = torch.full((T, N), -100.0)
        k = min(args.k, T)
        for i in range(N):
            _, idx = sims[i].topk(k)
            enc = image_feat[i].repeat(k, 1, 1)
            out = bert(encoder_embeds=text_embeds[idx], attention_mask=ti.attention_mask[idx],
                       encoder_hidden_states=enc, encoder_attention_mask=torch.ones(enc.shape[:-1], dtype=torch.long),
                       return_dict=True, mode="fusion")
            s_i2t[i, idx] = model.itm_head(out.last_hidden_state[:, 0, :])[:, 1]
        k = min(args.k, N)
        for t in range(T):
            _, idx = sims[:, t].topk(k)
            enc = image_feat[idx]
            out = bert(encoder_embeds=text_embeds[t].repeat(k, 1, 1), attention_mask=ti.attention_mask[t].repeat(k, 1),
                       encoder_hidden_states=enc, encoder_attention_mask=torch.ones(enc.shape[:-1], dtype=torch.long),
                       return_dict=True, mode="fusion")
            s_t2i[t, idx] = model.itm_head(out.last_hidden_state[:, 0, :])[:, 1]
    try:   # the features themselves, when h5py is there (vlt embed writes HDF5)
        import h5py
        emb = os.path.join(tmp, "emb.h5")
        subprocess.run([args.vlt, "embed", "--weights", weights, "--model", cfg_path, "--shards",
                        os.path.join(tmp, "shards", "00000.tar"), "--out", emb], check=True, stderr=subprocess.DEVNULL)
        with h5py.File(emb, "r") as f:
            assert list(f["text_image_index"][:]) == txt2img, "caption order differs"
            di = np.abs(f["image_embeds"][:] - image_embed.numpy()).max()
            dt = np.abs(f["text_embeds"][:] - text_feat.numpy()).max()
        print(f"ITC features, vlt vs the authors': images max |diff| {di:.2e}, texts {dt:.2e}")
    except ImportError:
        pass
    itc_tr, itc_ir = itm_eval(sims.numpy(), sims.t().numpy(), txt2img, img2txt)
    itm_tr, itm_ir = itm_eval(s_i2t.numpy(), s_t2i.numpy(), txt2img, img2txt)
    bad = 0
    for name, ref, key in (("ITC", itc_tr, "image_to_text"), ("ITC", itc_ir, "text_to_image"),
                           ("ITM re-ranked", itm_tr, "itm_rerank.image_to_text"),
                           ("ITM re-ranked", itm_ir, "itm_rerank.text_to_image")):
        got = [100 * nums[f"{key}.R@{k}"] for k in (1, 5, 10)]
        ok = all(abs(a - b) < 1e-9 for a, b in zip(got, ref))
        bad += not ok
        print(f"{name:14s} {key:28s} authors {ref[0]:6.2f} {ref[1]:6.2f} {ref[2]:6.2f}   vlt {got[0]:6.2f} "
              f"{got[1]:6.2f} {got[2]:6.2f}  {'equal' if ok else 'DIFFERENT'}")
    # the closest call of each ITC ranking: how near a swap float rounding would need
    gap = min(min(abs(float(sims[txt2img[t], t] - sims[j, t])) for j in range(N) if j != txt2img[t]) for t in range(T))
    print(f"{N} images, {len(texts)} captions, k_test {args.k}; smallest ITC gap between a text's image and "
          f"another image: {gap:.2e}; {tmp}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
