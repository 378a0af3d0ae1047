"""Builds the authors' ALBEF (salesforce/ALBEF models/model_pretrain.py) from a checkout of their
code, for check_albef_names.py and check_albef_fixtures.py. Needs the library versions their
code works with (transformers 4.8.1, timm 0.4.9); see check_albef_names.py for the venv.

Patches, none of which changes the model's computation:
  * BertForMaskedLM.from_pretrained builds from the config (random init, no download);
  * concat_all_gather is the identity (one process, no torch.distributed);
  * PreTrainedModel.invert_attention_mask accepts float64 (4.8.1 raises for any dtype but
    f16/f32); ALBEF only passes all-ones image masks, which give 0 either way;
  * for small configs, the ViT's hard-coded sizes (patch 16, width 768, depth 12, heads 12,
    mlp_ratio 4) are replaced by the config's.
"""
import json
import os
import sys
import tempfile


def import_authors(src):
    src = os.path.abspath(src)
    if src not in sys.path:
        sys.path.insert(0, src)
    import torch
    import transformers.modeling_utils as mu
    import models.xbert as xbert
    import models.model_pretrain as mp

    xbert.BertForMaskedLM.from_pretrained = classmethod(
        lambda cls, name=None, config=None, **kw: cls(config))
    mp.concat_all_gather = lambda t: t

    def invert_attention_mask(self, m):
        m = m[:, None, :, :] if m.dim() == 3 else m[:, None, None, :]
        m = m.to(dtype=self.dtype)
        return (1.0 - m) * (-1e4 if self.dtype == torch.float16 else -1e9)

    mu.ModuleUtilsMixin.invert_attention_mask = invert_attention_mask
    return mp, xbert


def build_full(src):
    """The paper's pretraining model: configs/Pretrain.yaml + configs/config_bert.json."""
    import yaml
    mp, _ = import_authors(src)
    with open(os.path.join(src, "configs", "Pretrain.yaml")) as f:
        config = yaml.safe_load(f)
    config["bert_config"] = os.path.join(src, "configs", "config_bert.json")
    return mp.ALBEF(config=config, text_encoder="bert-base-uncased", tokenizer=None,
                    init_deit=False)


def build_small(src, cfg):
    """The authors' ALBEF at a vlt fixture config ({"albef": ..., "bert": ...}), dropout off."""
    mp, _ = import_authors(src)
    a, b = cfg["albef"], cfg["bert"]
    real_vit = mp.VisionTransformer

    def vit(**kw):
        kw.update(patch_size=a["patch_size"], embed_dim=a["vision_width"],
                  depth=a["vision_depth"], num_heads=a["vision_heads"], mlp_ratio=a["mlp_ratio"])
        return real_vit(**kw)

    mp.VisionTransformer = vit
    bert = dict(b, encoder_width=a["vision_width"], hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0, hidden_act="gelu", architectures=["BertForMaskedLM"],
                model_type="bert", initializer_range=0.02)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(bert, f)
        path = f.name
    config = dict(a, bert_config=path)
    try:
        model = mp.ALBEF(config=config, text_encoder="bert-base-uncased", tokenizer=None,
                         init_deit=False)
    finally:
        mp.VisionTransformer = real_vit
        os.unlink(path)
    return model
