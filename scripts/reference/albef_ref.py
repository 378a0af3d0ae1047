"""A functional PyTorch model of ALBEF pretraining (Li et al. 2021), written for vlt's parity
fixtures and the PyTorch side of the step benchmark.

It follows the algorithm of the authors' code (salesforce/ALBEF: models/model_pretrain.py,
models/xbert.py, models/vit.py) but is our own code: the model is a dict of tensors keyed by the
names of the released ALBEF checkpoints ("visual_encoder.blocks.0.attn.qkv.weight",
"text_encoder.bert.encoder.layer.6.crossattention.self.query.weight", ...), and the forward pass
takes the MLM masks and the ITM hard negatives as inputs instead of sampling them, so that vlt's
counter-based sampling can be fed the same choices.

Points of the authors' code that this model reproduces on purpose:
  * The MLM decoder is tied to the word embeddings, and the decoder bias to
    cls.predictions.bias (Hugging Face tie_weights / `decoder.bias = self.bias`): the state_dict
    holds both names, one tensor. ALIASES lists them.
  * word_embeddings has padding_idx = pad_token_id: the embedding lookup sends no gradient to
    that row (the tied decoder still does).
  * Key padding masks are additive (1 - mask) * -10000, not -inf (the same in f64 here: exp(-1e4)
    underflows to 0).
  * ViT: pre-LN blocks, LayerNorm eps 1e-6, erf GELU, no classifier head; BERT: post-LN,
    eps from the config (1e-12), erf GELU; cross-attention in layers >= fusion_layer, its keys and
    values from the image tokens (encoder_width = vision_width).
"""
import math

import torch
import torch.nn.functional as F

ALIASES = {  # alias name -> the tensor it shares storage with (per text encoder prefix)
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
MOMENTUM_PAIRS = [("visual_encoder.", "visual_encoder_m."), ("vision_proj.", "vision_proj_m."),
                  ("text_encoder.", "text_encoder_m."), ("text_proj.", "text_proj_m.")]
BUFFER_SUFFIXES = ("position_ids",)
# Attention through F.scaled_dot_product_attention (the benchmark's choice; same math, fused
# kernels). The fixtures keep the explicit softmax(QK^T/sqrt(d) + mask)V of the authors' code.
SDPA = False


def param_shapes(cfg):
    """Ordered (name, shape, kind) of the full state_dict; kind is 'param', 'alias' or 'buffer'.
    Grouped by module (ALBEF.state_dict() lists the top-level temp and queues first)."""
    a, b = cfg["albef"], cfg["bert"]
    D, S, P = a["vision_width"], a["image_res"], a["patch_size"]
    N = (S // P) ** 2 + 1
    Hm = int(D * a["mlp_ratio"])
    H, I, V, E = b["hidden_size"], b["intermediate_size"], b["vocab_size"], a["embed_dim"]

    def vit(p):
        out = [(p + "cls_token", (1, 1, D)), (p + "pos_embed", (1, N, D)),
               (p + "patch_embed.proj.weight", (D, 3, P, P)), (p + "patch_embed.proj.bias", (D,))]
        for i in range(a["vision_depth"]):
            q = f"{p}blocks.{i}."
            out += [(q + "norm1.weight", (D,)), (q + "norm1.bias", (D,)),
                    (q + "attn.qkv.weight", (3 * D, D)), (q + "attn.qkv.bias", (3 * D,)),
                    (q + "attn.proj.weight", (D, D)), (q + "attn.proj.bias", (D,)),
                    (q + "norm2.weight", (D,)), (q + "norm2.bias", (D,)),
                    (q + "mlp.fc1.weight", (Hm, D)), (q + "mlp.fc1.bias", (Hm,)),
                    (q + "mlp.fc2.weight", (D, Hm)), (q + "mlp.fc2.bias", (D,))]
        out += [(p + "norm.weight", (D,)), (p + "norm.bias", (D,))]
        return out

    def attn(q, kv_width):
        return [(q + "self.query.weight", (H, H)), (q + "self.query.bias", (H,)),
                (q + "self.key.weight", (H, kv_width)), (q + "self.key.bias", (H,)),
                (q + "self.value.weight", (H, kv_width)), (q + "self.value.bias", (H,)),
                (q + "output.dense.weight", (H, H)), (q + "output.dense.bias", (H,)),
                (q + "output.LayerNorm.weight", (H,)), (q + "output.LayerNorm.bias", (H,))]

    def bert(p):
        e = p + "bert.embeddings."
        out = [(e + "position_ids", (1, b["max_position_embeddings"])),
               (e + "word_embeddings.weight", (V, H)),
               (e + "position_embeddings.weight", (b["max_position_embeddings"], H)),
               (e + "token_type_embeddings.weight", (b["type_vocab_size"], H)),
               (e + "LayerNorm.weight", (H,)), (e + "LayerNorm.bias", (H,))]
        for i in range(b["num_hidden_layers"]):
            q = f"{p}bert.encoder.layer.{i}."
            out += attn(q + "attention.", H)
            if i >= b["fusion_layer"]:
                out += attn(q + "crossattention.", D)
            out += [(q + "intermediate.dense.weight", (I, H)), (q + "intermediate.dense.bias", (I,)),
                    (q + "output.dense.weight", (H, I)), (q + "output.dense.bias", (H,)),
                    (q + "output.LayerNorm.weight", (H,)), (q + "output.LayerNorm.bias", (H,))]
        c = p + "cls.predictions."
        out += [(c + "bias", (V,)), (c + "transform.dense.weight", (H, H)),
                (c + "transform.dense.bias", (H,)), (c + "transform.LayerNorm.weight", (H,)),
                (c + "transform.LayerNorm.bias", (H,)), (c + "decoder.weight", (V, H)),
                (c + "decoder.bias", (V,))]
        return out

    lst = (vit("visual_encoder.") + bert("text_encoder.") +
           [("vision_proj.weight", (E, D)), ("vision_proj.bias", (E,)),
            ("text_proj.weight", (E, H)), ("text_proj.bias", (E,)), ("temp", ()),
            ("itm_head.weight", (2, H)), ("itm_head.bias", (2,))] +
           vit("visual_encoder_m.") +
           [("vision_proj_m.weight", (E, D)), ("vision_proj_m.bias", (E,))] +
           bert("text_encoder_m.") +
           [("text_proj_m.weight", (E, H)), ("text_proj_m.bias", (E,)),
            ("image_queue", (E, a["queue_size"])), ("text_queue", (E, a["queue_size"])),
            ("queue_ptr", (1,))])
    out = []
    for name, shape in lst:
        out.append((name, shape, kind_of(name)))
    return out


def kind_of(name):
    if name in ("image_queue", "text_queue", "queue_ptr") or name.endswith(BUFFER_SUFFIXES):
        return "buffer"
    for pre in ("text_encoder.", "text_encoder_m."):
        if name.startswith(pre) and name[len(pre):] in ALIASES:
            return "alias"
    return "param"


def alias_target(name):
    for pre in ("text_encoder.", "text_encoder_m."):
        if name.startswith(pre) and name[len(pre):] in ALIASES:
            return pre + ALIASES[name[len(pre):]]
    return None


def is_momentum(name):
    return any(name.startswith(m) for _, m in MOMENTUM_PAIRS)


def online_of(name_m):
    for o, m in MOMENTUM_PAIRS:
        if name_m.startswith(m):
            return o + name_m[len(m):]
    raise KeyError(name_m)


def trainable_names(cfg):
    """Parameters that get gradients and optimizer steps (online, not aliases, not buffers)."""
    return [n for n, _, k in param_shapes(cfg) if k == "param" and not is_momentum(n)]


def momentum_names(cfg):
    """Momentum parameters updated by the EMA (each tied tensor once)."""
    return [n for n, _, k in param_shapes(cfg) if k == "param" and is_momentum(n)]


# ----------------------------------------------------------------------------------------------
# Layers


def linear(P, name, x):
    return F.linear(x, P[name + ".weight"], P[name + ".bias"])


def layer_norm(P, name, x, eps):
    return F.layer_norm(x, (x.shape[-1],), P[name + ".weight"], P[name + ".bias"], eps)


def vit_forward(P, p, image, cfg):
    a = cfg["albef"]
    D, heads = a["vision_width"], a["vision_heads"]
    x = F.conv2d(image, P[p + "patch_embed.proj.weight"], P[p + "patch_embed.proj.bias"],
                 stride=a["patch_size"])
    x = x.flatten(2).transpose(1, 2)  # (B, patches, D), patches row-major
    B, N = x.shape[0], x.shape[1] + 1
    x = torch.cat([P[p + "cls_token"].expand(B, -1, -1), x], dim=1)
    x = x + P[p + "pos_embed"][:, :N, :]
    hd = D // heads
    for i in range(a["vision_depth"]):
        q = f"{p}blocks.{i}."
        h = layer_norm(P, q + "norm1", x, 1e-6)
        qkv = linear(P, q + "attn.qkv", h).reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)
        if SDPA:
            h = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        else:
            att = (qkv[0] @ qkv[1].transpose(-2, -1)) * hd ** -0.5
            h = att.softmax(dim=-1) @ qkv[2]
        h = h.transpose(1, 2).reshape(B, N, D)
        x = x + linear(P, q + "attn.proj", h)
        h = layer_norm(P, q + "norm2", x, 1e-6)
        x = x + linear(P, q + "mlp.fc2", F.gelu(linear(P, q + "mlp.fc1", h)))
    return layer_norm(P, p + "norm", x, 1e-6)


def additive_mask(mask, dtype):
    """(B, L) 1/0 key mask -> (B, 1, 1, L) additive, as BERT's get_extended_attention_mask."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * -10000.0


def bert_attention(P, q, x, kv, mask_add, heads, eps):
    B, T, H = x.shape
    hd = H // heads

    def split(t):
        return t.view(t.shape[0], t.shape[1], heads, hd).permute(0, 2, 1, 3)

    Q = split(linear(P, q + "self.query", x))
    K = split(linear(P, q + "self.key", kv))
    Vv = split(linear(P, q + "self.value", kv))
    if SDPA:
        m = None if mask_add is None else mask_add.to(Q.dtype)
        ctx = F.scaled_dot_product_attention(Q, K, Vv, attn_mask=m)
    else:
        s = Q @ K.transpose(-1, -2) / math.sqrt(hd)
        if mask_add is not None:
            s = s + mask_add
        ctx = s.softmax(dim=-1) @ Vv
    ctx = ctx.permute(0, 2, 1, 3).reshape(B, T, H)
    return layer_norm(P, q + "output.LayerNorm", linear(P, q + "output.dense", ctx) + x, eps)


def bert_layers(P, p, h, text_mask, lo, hi, cfg, image_embeds=None):
    """BERT layers lo..hi-1 on hidden states h; layers >= fusion_layer cross-attend to
    image_embeds (all image tokens valid: ALBEF's image_atts are ones)."""
    b = cfg["bert"]
    eps, heads = b["layer_norm_eps"], b["num_attention_heads"]
    m = additive_mask(text_mask, h.dtype)
    for i in range(lo, hi):
        q = f"{p}bert.encoder.layer.{i}."
        h = bert_attention(P, q + "attention.", h, h, m, heads, eps)
        if i >= b["fusion_layer"]:
            img_mask = None if SDPA else torch.zeros(  # (1 - ones) * -10000
                image_embeds.shape[0], 1, 1, image_embeds.shape[1], dtype=h.dtype, device=h.device)
            h = bert_attention(P, q + "crossattention.", h, image_embeds, img_mask, heads, eps)
        inter = F.gelu(linear(P, q + "intermediate.dense", h))
        h = layer_norm(P, q + "output.LayerNorm", linear(P, q + "output.dense", inter) + h, eps)
    return h


def bert_embed(P, p, ids, cfg):
    b = cfg["bert"]
    e = p + "bert.embeddings."
    T = ids.shape[1]
    x = F.embedding(ids, P[e + "word_embeddings.weight"], padding_idx=b["pad_token_id"])
    x = x + P[e + "token_type_embeddings.weight"][0]  # token_type_ids are all 0
    x = x + P[e + "position_embeddings.weight"][:T]
    return layer_norm(P, e + "LayerNorm", x, b["layer_norm_eps"])


def mlm_logits(P, p, h, cfg):
    c = p + "cls.predictions."
    h = F.gelu(linear(P, c + "transform.dense", h))
    h = layer_norm(P, c + "transform.LayerNorm", h, cfg["bert"]["layer_norm_eps"])
    # decoder tied: weight = word embeddings, bias = cls.predictions.bias
    return F.linear(h, P[p + "bert.embeddings.word_embeddings.weight"], P[c + "bias"])


def text_encode(P, p, ids, mask, cfg):
    """ALBEF's mode='text': embeddings and layers 0..fusion_layer-1."""
    return bert_layers(P, p, bert_embed(P, p, ids, cfg), mask, 0, cfg["bert"]["fusion_layer"], cfg)


def fuse(P, p, text_embeds, mask, image_embeds, cfg):
    """ALBEF's mode='fusion': layers fusion_layer..L-1 on the text encoder's output."""
    b = cfg["bert"]
    return bert_layers(P, p, text_embeds, mask, b["fusion_layer"], b["num_hidden_layers"], cfg,
                       image_embeds)


def multimodal(P, p, ids, mask, image_embeds, cfg):
    """ALBEF's mode='multi_modal' (the MLM pass): embeddings and all layers."""
    return bert_layers(P, p, bert_embed(P, p, ids, cfg), mask, 0,
                       cfg["bert"]["num_hidden_layers"], cfg, image_embeds)


# ----------------------------------------------------------------------------------------------
# The step


@torch.no_grad()
def clamp_temp(P):
    P["temp"].clamp_(0.001, 0.5)


@torch.no_grad()
def momentum_update(P, cfg):
    """param_m = param_m * momentum + param * (1 - momentum), each tensor once (aliases share)."""
    m = cfg["albef"]["momentum"]
    for n in momentum_names(cfg):
        P[n].copy_(P[n] * m + P[online_of(n)] * (1.0 - m))


@torch.no_grad()
def dequeue_and_enqueue(P, image_feat_m, text_feat_m, cfg):
    Q = cfg["albef"]["queue_size"]
    B = image_feat_m.shape[0]
    assert Q % B == 0, "queue_size must be a multiple of the (global) batch size"
    ptr = int(P["queue_ptr"][0])
    P["image_queue"][:, ptr:ptr + B] = image_feat_m.T.to(P["image_queue"].dtype)
    P["text_queue"][:, ptr:ptr + B] = text_feat_m.T.to(P["text_queue"].dtype)
    P["queue_ptr"][0] = (ptr + B) % Q


def forward(P, batch, cfg, alpha, enqueue=True):
    """ALBEF's forward after the temperature clamp and the momentum update (the caller does
    those, in that order, as ALBEF.forward does before any momentum feature is computed).

    batch: image (B,3,S,S), text_ids, text_atts, mlm_ids, mlm_labels (B,T) long,
           neg_image_idx, neg_text_idx (B) long.
    Returns a dict of losses and intermediate tensors. Enqueues the momentum features after the
    ITC loss is formed (so the ITC uses the queue as it was at the start of the step)."""
    image, ids, atts = batch["image"], batch["text_ids"], batch["text_atts"]
    temp = P["temp"]
    image_embeds = vit_forward(P, "visual_encoder.", image, cfg)
    image_feat = F.normalize(linear(P, "vision_proj", image_embeds[:, 0, :]), dim=-1)
    text_embeds = text_encode(P, "text_encoder.", ids, atts, cfg)
    text_feat = F.normalize(linear(P, "text_proj", text_embeds[:, 0, :]), dim=-1)

    with torch.no_grad():
        image_embeds_m = vit_forward(P, "visual_encoder_m.", image, cfg)
        image_feat_m = F.normalize(linear(P, "vision_proj_m", image_embeds_m[:, 0, :]), dim=-1)
        image_feat_all = torch.cat([image_feat_m.t(), P["image_queue"].to(image_feat_m.dtype)], 1)
        text_out_m = text_encode(P, "text_encoder_m.", ids, atts, cfg)
        text_feat_m = F.normalize(linear(P, "text_proj_m", text_out_m[:, 0, :]), dim=-1)
        text_feat_all = torch.cat([text_feat_m.t(), P["text_queue"].to(text_feat_m.dtype)], 1)
        sim_i2t_m = image_feat_m @ text_feat_all / temp
        sim_t2i_m = text_feat_m @ image_feat_all / temp
        eye = torch.zeros_like(sim_i2t_m)
        eye.fill_diagonal_(1)
        sim_i2t_targets = alpha * F.softmax(sim_i2t_m, dim=1) + (1 - alpha) * eye
        sim_t2i_targets = alpha * F.softmax(sim_t2i_m, dim=1) + (1 - alpha) * eye

    sim_i2t = image_feat @ text_feat_all / temp
    sim_t2i = text_feat @ image_feat_all / temp
    loss_i2t = -torch.sum(F.log_softmax(sim_i2t, dim=1) * sim_i2t_targets, dim=1).mean()
    loss_t2i = -torch.sum(F.log_softmax(sim_t2i, dim=1) * sim_t2i_targets, dim=1).mean()
    loss_itc = (loss_i2t + loss_t2i) / 2

    if enqueue:
        dequeue_and_enqueue(P, image_feat_m, text_feat_m, cfg)

    # ITM: positives, then (text b, image neg_image_idx[b]), then (text neg_text_idx[b], image b)
    bs = image.shape[0]
    with torch.no_grad():  # the distributions the authors sample the hard negatives from
        weights_i2t = F.softmax(sim_i2t[:, :bs], dim=1)
        weights_t2i = F.softmax(sim_t2i[:, :bs], dim=1)
        weights_i2t.fill_diagonal_(0)
        weights_t2i.fill_diagonal_(0)
    ni, nt = batch.get("neg_image_idx"), batch.get("neg_text_idx")
    if ni is None:  # sample as the authors do (one draw per row), batched
        ni = torch.multinomial(weights_t2i, 1)[:, 0]
        nt = torch.multinomial(weights_i2t, 1)[:, 0]
    text_all = torch.cat([text_embeds, text_embeds, text_embeds[nt]], 0)
    atts_all = torch.cat([atts, atts, atts[nt]], 0)
    image_all = torch.cat([image_embeds, image_embeds[ni], image_embeds], 0)
    # The authors run the positive and the two negative halves as two fusion calls; each row is
    # independent, so one call on the concatenation is the same computation.
    fused = fuse(P, "text_encoder.", text_all, atts_all, image_all, cfg)
    itm_logits = linear(P, "itm_head", fused[:, 0, :])
    itm_labels = torch.cat([torch.ones(bs, dtype=torch.long), torch.zeros(2 * bs, dtype=torch.long)])
    loss_itm = F.cross_entropy(itm_logits, itm_labels.to(itm_logits.device))

    # MLM with momentum distillation
    mlm_ids, labels = batch["mlm_ids"], batch["mlm_labels"]
    with torch.no_grad():
        logits_m = mlm_logits(P, "text_encoder_m.",
                              multimodal(P, "text_encoder_m.", mlm_ids, atts, image_embeds_m, cfg),
                              cfg)
    logits = mlm_logits(P, "text_encoder.",
                        multimodal(P, "text_encoder.", mlm_ids, atts, image_embeds, cfg), cfg)
    V = logits.shape[-1]
    loss_ce = F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=-100)
    distill = -torch.sum(F.log_softmax(logits, dim=-1) * F.softmax(logits_m, dim=-1), dim=-1)
    sel = labels != -100
    loss_distill = distill[sel].mean()
    loss_mlm = (1 - alpha) * loss_ce + alpha * loss_distill

    loss = loss_mlm + loss_itc + loss_itm
    return dict(loss=loss, loss_itc=loss_itc, loss_itm=loss_itm, loss_mlm=loss_mlm,
                loss_i2t=loss_i2t, loss_t2i=loss_t2i, loss_mlm_ce=loss_ce,
                loss_mlm_distill=loss_distill,
                image_embeds=image_embeds, text_embeds=text_embeds,
                image_feat=image_feat, text_feat=text_feat,
                image_feat_m=image_feat_m, text_feat_m=text_feat_m,
                sim_i2t=sim_i2t, sim_t2i=sim_t2i,
                sim_i2t_targets=sim_i2t_targets, sim_t2i_targets=sim_t2i_targets,
                itm_weights_i2t=weights_i2t, itm_weights_t2i=weights_t2i,
                itm_logits=itm_logits, mlm_logits=logits[sel], mlm_soft_labels=F.softmax(logits_m, -1)[sel])


# The paper's pretraining config (configs/Pretrain.yaml + configs/config_bert.json), in the
# {"albef", "bert"} layout of tests/data/albef/*/config.json.
PAPER_CONFIG = {
    "albef": {"image_res": 256, "patch_size": 16, "vision_width": 768, "vision_depth": 12,
              "vision_heads": 12, "mlp_ratio": 4, "embed_dim": 256, "queue_size": 65536,
              "momentum": 0.995, "temp": 0.07, "alpha": 0.4, "mlm_probability": 0.15},
    "bert": {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
             "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512,
             "type_vocab_size": 2, "fusion_layer": 6, "layer_norm_eps": 1e-12, "pad_token_id": 0},
}
