#!/usr/bin/env python3
"""Checks tests/data/albef_vqa/<cfg>/ (made by make_albef_vqa_fixtures.py with our reference)
against the authors' ALBEF VQA model (salesforce/ALBEF models/model_vqa.py) built from their code
on the same weights and inputs, in float64: the training loss (their forward with train=True,
the EMA inside it when distill), the gradient of every trainable parameter, and their
rank_answer's re-ranked candidate indices and probabilities (train=False, k = k_test).
For the config with pretrained.safetensors: the remapped pretraining state_dict loads into the
authors' VQA model with no missing key and equals weights.safetensors.

Adaptations, none of which changes the computation:
  * BertModel / BertLMHeadModel.from_pretrained build from the config (no download);
  * the ViT's hard-coded sizes take the config's (as albef_authors.build_small);
  * the decoder's cross-attention reads the question states, so its encoder_width is hidden_size
    (config_bert.json has 768 = hidden_size; our small configs may have vision_width != hidden);
  * the EMA momentum (hard-coded 0.995 in model_vqa.py) is the config's albef.momentum;
  * the tokenizer is only asked for pad_token_id (0).

Run: /work/venv-albef/bin/python scripts/reference/check_albef_vqa_fixtures.py /path/to/ALBEF [DIR]
     ... check_albef_vqa_fixtures.py /path/to/ALBEF --names: builds the authors' full-size VQA model
     (configs/VQA.yaml, configs/config_bert.json; random weights) and writes
     tests/data/albef_vqa/albef_vqa_ViT-B-16_names.tsv (every state_dict key with shape, dtype and
     kind: trainable, momentum, buffer, tied:<name>; the header counts), and checks our
     reference's names and shapes (albef_vqa_ref.param_shapes) against it.
"""
import json
import os
import sys
import tempfile
import types

import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import albef_authors  # noqa: E402
import albef_vqa_ref as R  # noqa: E402

DATA = os.path.join(HERE, "..", "..", "tests", "data", "albef_vqa")


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-3)).item()


def build(src, cfg):
    albef_authors.import_authors(src)  # the transformers patches
    import models.model_vqa as mv
    import models.xbert as xbert
    a, b = cfg["albef"], cfg["bert"]
    xbert.BertModel.from_pretrained = classmethod(
        lambda cls, name=None, config=None, **kw: cls(config, add_pooling_layer=False))

    def lm(cls, name=None, config=None, **kw):
        config.encoder_width = config.hidden_size
        return cls(config)

    xbert.BertLMHeadModel.from_pretrained = classmethod(lm)
    real_vit = mv.VisionTransformer

    def vit(**kw):
        kw.update(patch_size=a["patch_size"], embed_dim=a["vision_width"], depth=a["vision_depth"],
                  num_heads=a["vision_heads"], mlp_ratio=a["mlp_ratio"])
        return real_vit(**kw)

    mv.VisionTransformer = vit
    bert = dict(b, encoder_width=a["vision_width"], hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0, hidden_act="gelu", architectures=["BertForMaskedLM"],
                model_type="bert", initializer_range=0.02)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(bert, f)
        path = f.name
    config = {"image_res": a["image_res"], "distill": cfg["albef_vqa"]["distill"], "bert_config": path}
    try:
        model = mv.ALBEF(config=config, text_encoder="bert-base-uncased", text_decoder="bert-base-uncased",
                         tokenizer=types.SimpleNamespace(pad_token_id=b["pad_token_id"]))
    finally:
        mv.VisionTransformer = real_vit
        os.unlink(path)
    # model_vqa.py hard-codes num_hidden_layers = 6 for the decoder: rebuild it at the config's
    if cfg["albef_vqa"]["decoder_layers"] != 6:
        dc = model.text_decoder.config
        dc.num_hidden_layers = cfg["albef_vqa"]["decoder_layers"]
        model.text_decoder = xbert.BertLMHeadModel(dc)
        if model.distill:
            model.text_decoder_m = xbert.BertLMHeadModel(dc)
            model.model_pairs[2] = [model.text_decoder, model.text_decoder_m]
            model.copy_params()
    if model.distill:
        model.momentum = cfg["albef"]["momentum"]
    return model


def check(src, name):
    d = os.path.join(DATA, name)
    cfg = json.load(open(os.path.join(d, "config.json")))
    W = load_file(os.path.join(d, "weights.safetensors"))
    io = load_file(os.path.join(d, "io.safetensors"))
    G = load_file(os.path.join(d, "grads.safetensors"))
    torch.manual_seed(0)
    model = build(src, cfg)
    sd = model.state_dict()
    assert set(sd) == set(W), sorted(set(sd) ^ set(W))[:10]
    for k in sd:
        assert tuple(sd[k].shape) == tuple(W[k].shape), (k, sd[k].shape, W[k].shape)
    res = {}
    if os.path.exists(os.path.join(d, "pretrained.safetensors")):
        pre = load_file(os.path.join(d, "pretrained.safetensors"))
        msg = model.load_state_dict(R.map_pretrained(pre, cfg["bert"]["fusion_layer"]), strict=False)
        assert not msg.missing_keys, msg.missing_keys
        sd = model.state_dict()
        res["pretrained_map"] = max(rel(sd[k], W[k]) for k in sd if sd[k].is_floating_point())
        res["pretrained_unexpected"] = len(msg.unexpected_keys)
    model.load_state_dict(W, strict=True)
    model.double().eval()
    torch.set_default_dtype(torch.float64)
    try:
        q = types.SimpleNamespace(input_ids=io["question_ids"].long(), attention_mask=io["question_atts"].long())
        ans = types.SimpleNamespace(input_ids=io["answer_ids"].long(), attention_mask=io["answer_atts"].long())
        image = io["image"].double()
        loss = model(image, q, ans, alpha=float(io["alpha"][0]), k=io["k"].tolist(),
                     weights=io["weights"].double(), train=True)
        loss.backward()
        res["loss"] = rel(loss.detach().reshape(1), io["loss"])
        params = dict(model.named_parameters(remove_duplicate=False))
        trainable = {k for k, p in params.items() if p.requires_grad}
        assert trainable == set(G), sorted(trainable ^ set(G))[:10]
        bad = sorted(((rel(params[k].grad, G[k]), k) for k in G), reverse=True)[:3]
        res["grads"] = bad[0][0]
        with torch.no_grad():
            cand = types.SimpleNamespace(input_ids=io["cand_ids"].long(), attention_mask=io["cand_atts"].long())
            ids, probs = model(image, q, cand, train=False, k=cfg["albef_vqa"]["k_test"])
        res["rank_ids_equal"] = bool(torch.equal(ids.to(torch.int32), io["rank_ids"]))
        res["rank_probs"] = rel(probs, io["rank_probs"])
    finally:
        torch.set_default_dtype(torch.float32)
    print(name, {k: (f"{v:.2e}" if isinstance(v, float) else v) for k, v in res.items()})
    return res["rank_ids_equal"] and all(v < 1e-10 for k, v in res.items() if isinstance(v, float))


def write_names(src):
    import yaml
    albef_authors.import_authors(src)
    import models.model_vqa as mv
    import models.xbert as xbert
    xbert.BertModel.from_pretrained = classmethod(
        lambda cls, name=None, config=None, **kw: cls(config, add_pooling_layer=False))
    xbert.BertLMHeadModel.from_pretrained = classmethod(lambda cls, name=None, config=None, **kw: cls(config))
    with open(os.path.join(src, "configs", "VQA.yaml")) as f:
        config = yaml.safe_load(f)
    config["bert_config"] = os.path.join(src, "configs", "config_bert.json")
    torch.manual_seed(0)
    model = mv.ALBEF(config=config, text_encoder="bert-base-uncased", text_decoder="bert-base-uncased",
                     tokenizer=types.SimpleNamespace(pad_token_id=0))
    sd = model.state_dict(keep_vars=True)
    params = dict(model.named_parameters(remove_duplicate=False))
    first, rows = {}, []
    for name, t in sd.items():
        shape = "[" + ",".join(str(d) for d in t.shape) + "]"
        ptr = t.data_ptr()
        if name in params and ptr in first:
            kind = "tied:" + first[ptr]
        elif name in params:
            first[ptr] = name
            kind = "trainable" if t.requires_grad else "momentum"
        else:
            kind = "buffer"
        rows.append((name, shape, {torch.float32: "F32", torch.int64: "I64"}[t.dtype], kind))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    allp = sum(p.numel() for p in model.parameters())
    out = os.path.join(DATA, "albef_vqa_ViT-B-16_names.tsv")
    with open(out, "w") as f:
        f.write(f"#\ttrainable_parameters={trainable}\tparameters={allp}\tstate_dict_keys={len(sd)}\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    print(f"{len(sd)} keys, {trainable:,} trainable parameters, {allp:,} with the momentum copies -> {out}")
    import albef_ref as AR
    cfg = {"albef": dict(AR.PAPER_CONFIG["albef"], image_res=384), "bert": AR.PAPER_CONFIG["bert"],
           "albef_vqa": {"decoder_layers": 6, "distill": True, "k_test": 128}}
    ours = {n: tuple(s) for n, s, _ in R.param_shapes(cfg)}
    theirs = {n: tuple(t.shape) for n, t in sd.items()}
    if ours != theirs:
        print("albef_vqa_ref.param_shapes differs:", sorted(set(ours.items()) ^ set(theirs.items()))[:10])
        return False
    print("albef_vqa_ref.param_shapes equals the authors' state_dict (names and shapes)")
    return True


def main():
    global DATA
    if len(sys.argv) == 3 and sys.argv[2] == "--names":
        sys.exit(0 if write_names(sys.argv[1]) else 1)
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: check_albef_vqa_fixtures.py /path/to/ALBEF [fixture folder]")
    if len(sys.argv) == 3:
        DATA = sys.argv[2]
    ok = all([check(sys.argv[1], n) for n in sorted(os.listdir(DATA)) if os.path.isdir(os.path.join(DATA, n))])
    print("all fixtures equal the authors' model (max relative difference < 1e-10)" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
