"""A functional PyTorch model of ALBEF's VQA fine-tuning (salesforce/ALBEF models/model_vqa.py and
VQA.py), written for vlt's parity fixtures (tests/data/albef_vqa). Our own code: the model is a
dict of tensors keyed by the released ALBEF VQA checkpoint's names.

The model (authors' model_vqa.ALBEF):
  * visual_encoder.*            the DeiT ViT (albef_ref.vit_forward)
  * text_encoder.*              a BertModel (no ".bert." infix, no MLM head): embeddings, then all
                                layers ('multi_modal'); layers >= fusion_layer cross-attend to the
                                image tokens (keys/values from vision_width)
  * text_decoder.bert.*, text_decoder.cls.predictions.*
                                a BertLMHeadModel built from the same BERT config with
                                fusion_layer 0 (every layer cross-attends, to the question states,
                                keys/values from hidden_size) and num_hidden_layers = decoder_layers
                                (6 in the paper); causal self-attention (is_decoder); the LM head's
                                decoder tied to its word embeddings (both names in the state_dict)
  * the momentum copies visual_encoder_m, text_encoder_m, text_decoder_m when distill.

Training loss: question states repeated per answer (k[b] answers of question b), the decoder on
the answer ids (as the authors' tokenizer makes them: [CLS] answer [SEP] [SEP] [PAD]...; VQA.py
appends the eos '[SEP]' to every answer before tokenizing), per answer the sum over positions t
of CE(logits[t], ids[t+1]) with PAD targets ignored (-100; no label smoothing); with distill
(1 - alpha)·CE + alpha·sum_t(-softmax(logits_m[t])·log_softmax(logits[t])) over the same
positions, logits_m from the momentum model after the EMA; loss = sum(weights · per-answer) / B.

Inference (rank_answer): the decoder on [CLS] alone gives the first token's distribution; each
candidate's probability is that of its first answer token (ids[:, 1]); the top k candidates are
re-scored by log p(first) - sum of the CE of the candidate's tokens after the first (the decoder on
the whole candidate, CE summed, PAD ignored), softmax over the k, sorted.

Initialisation from a pretrained ALBEF checkpoint (VQA.py's key remapping, map_pretrained below):
text_encoder.bert.X -> text_encoder.X (every layer); text_encoder.bert.encoder.layer.n with
n >= fusion_layer -> text_decoder.bert.encoder.layer.(n - fusion_layer) (the authors hard-code 6,
the paper's fusion_layer); layers below are not copied to the decoder; embeddings and
cls.predictions -> text_decoder.bert.embeddings / text_decoder.cls.predictions; the same for the
_m copies (text_encoder_m -> text_decoder_m); visual_encoder[_m] kept; the rest (projections,
itm_head, temp, queues) dropped.
"""
import math

import torch
import torch.nn.functional as F

import albef_ref as R

DEC_ALIASES = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
               "cls.predictions.decoder.bias": "cls.predictions.bias"}


def dec_cfg(cfg):
    """The decoder's BERT config: fusion_layer 0, decoder_layers layers, keys/values of the
    cross-attention from the question states (hidden_size)."""
    b = dict(cfg["bert"])
    b["fusion_layer"] = 0
    b["num_hidden_layers"] = cfg["albef_vqa"]["decoder_layers"]
    b["encoder_width"] = b["hidden_size"]
    return b


def param_shapes(cfg):
    """Ordered (name, shape, kind) of the VQA model's state_dict; kind 'param', 'alias', 'buffer'."""
    a, b = cfg["albef"], cfg["bert"]
    D = a["vision_width"]
    H, I, V = b["hidden_size"], b["intermediate_size"], b["vocab_size"]
    vit = [(n[len("visual_encoder."):], s) for n, s, k in R.param_shapes(cfg)
           if n.startswith("visual_encoder.")]

    def attn(q, kvw):
        return [(q + "self.query.weight", (H, H)), (q + "self.query.bias", (H,)),
                (q + "self.key.weight", (H, kvw)), (q + "self.key.bias", (H,)),
                (q + "self.value.weight", (H, kvw)), (q + "self.value.bias", (H,)),
                (q + "output.dense.weight", (H, H)), (q + "output.dense.bias", (H,)),
                (q + "output.LayerNorm.weight", (H,)), (q + "output.LayerNorm.bias", (H,))]

    def bert(base, bc, kvw):
        out = [(base + "embeddings.position_ids", (1, bc["max_position_embeddings"])),
               (base + "embeddings.word_embeddings.weight", (V, H)),
               (base + "embeddings.position_embeddings.weight", (bc["max_position_embeddings"], H)),
               (base + "embeddings.token_type_embeddings.weight", (bc["type_vocab_size"], H)),
               (base + "embeddings.LayerNorm.weight", (H,)), (base + "embeddings.LayerNorm.bias", (H,))]
        for i in range(bc["num_hidden_layers"]):
            q = f"{base}encoder.layer.{i}."
            out += attn(q + "attention.", H)
            if i >= bc["fusion_layer"]:
                out += attn(q + "crossattention.", kvw)
            out += [(q + "intermediate.dense.weight", (I, H)), (q + "intermediate.dense.bias", (I,)),
                    (q + "output.dense.weight", (H, I)), (q + "output.dense.bias", (H,)),
                    (q + "output.LayerNorm.weight", (H,)), (q + "output.LayerNorm.bias", (H,))]
        return out

    def head(p):
        c = p + "cls.predictions."
        return [(c + "bias", (V,)), (c + "transform.dense.weight", (H, H)),
                (c + "transform.dense.bias", (H,)), (c + "transform.LayerNorm.weight", (H,)),
                (c + "transform.LayerNorm.bias", (H,)), (c + "decoder.weight", (V, H)),
                (c + "decoder.bias", (V,))]

    db = dec_cfg(cfg)
    lst = []
    sfx = ["", "_m"] if cfg["albef_vqa"]["distill"] else [""]
    for s in sfx:
        lst += [(f"visual_encoder{s}." + n, sh) for n, sh in vit]
        lst += bert(f"text_encoder{s}.", b, D)
        lst += bert(f"text_decoder{s}.bert.", db, H) + head(f"text_decoder{s}.")
    return [(n, sh, kind_of(n)) for n, sh in lst]


def kind_of(name):
    if name.endswith("position_ids"):
        return "buffer"
    if alias_target(name):
        return "alias"
    return "param"


def alias_target(name):
    for pre in ("text_decoder.", "text_decoder_m."):
        if name.startswith(pre) and name[len(pre):] in DEC_ALIASES:
            return pre + DEC_ALIASES[name[len(pre):]]
    return None


def is_momentum(name):
    return name.split(".")[0].endswith("_m")


def online_of(name):
    first, rest = name.split(".", 1)
    return first[:-2] + "." + rest


def trainable_names(cfg):
    return [n for n, _, k in param_shapes(cfg) if k == "param" and not is_momentum(n)]


def momentum_names(cfg):
    return [n for n, _, k in param_shapes(cfg) if k == "param" and is_momentum(n)]


# ----------------------------------------------------------------------------------------------


def bert_stack(P, base, bc, ids, mask, enc, enc_mask, causal):
    """xbert BertModel.forward (mode multi_modal) under `base` ("text_encoder.",
    "text_decoder.bert."): embeddings, all layers; layers >= fusion_layer cross-attend to enc
    with the key mask enc_mask (B, N) (1 = token). causal: is_decoder's causal x padding mask."""
    eps, heads = bc["layer_norm_eps"], bc["num_attention_heads"]
    T = ids.shape[1]
    e = base + "embeddings."
    x = F.embedding(ids, P[e + "word_embeddings.weight"], padding_idx=bc["pad_token_id"])
    x = x + P[e + "token_type_embeddings.weight"][0] + P[e + "position_embeddings.weight"][:T]
    h = R.layer_norm(P, e + "LayerNorm", x, eps)
    m = mask.to(h.dtype)[:, None, None, :]                                  # (B, 1, 1, T)
    if causal:
        tri = torch.tril(torch.ones(T, T, dtype=h.dtype))                   # key j <= query i
        m = tri[None, None] * m                                             # (B, 1, T, T)
    m = (1.0 - m) * -10000.0
    em = None if enc is None else (1.0 - enc_mask.to(h.dtype)[:, None, None, :]) * -10000.0
    for i in range(bc["num_hidden_layers"]):
        q = f"{base}encoder.layer.{i}."
        h = R.bert_attention(P, q + "attention.", h, h, m, heads, eps)
        if i >= bc["fusion_layer"]:
            h = R.bert_attention(P, q + "crossattention.", h, enc, em, heads, eps)
        inter = F.gelu(R.linear(P, q + "intermediate.dense", h))
        h = R.layer_norm(P, q + "output.LayerNorm", R.linear(P, q + "output.dense", inter) + h, eps)
    return h


def lm_logits(P, p, h, bc):
    c = p + "cls.predictions."
    h = F.gelu(R.linear(P, c + "transform.dense", h))
    h = R.layer_norm(P, c + "transform.LayerNorm", h, bc["layer_norm_eps"])
    return F.linear(h, P[p + "bert.embeddings.word_embeddings.weight"], P[c + "bias"])


def encode_question(P, sfx, image, q_ids, q_atts, cfg):
    image_embeds = R.vit_forward(P, f"visual_encoder{sfx}.", image, cfg)
    img_atts = torch.ones(image_embeds.shape[:2], dtype=torch.long)
    return bert_stack(P, f"text_encoder{sfx}.", cfg["bert"], q_ids, q_atts, image_embeds, img_atts, False)


def decode(P, sfx, a_ids, a_atts, q_states, q_atts, cfg):
    """Decoder logits (N, Ta, V) for answers (N, Ta) over question states (N, Tq, H)."""
    db = dec_cfg(cfg)
    h = bert_stack(P, f"text_decoder{sfx}.bert.", db, a_ids, a_atts, q_states, q_atts, True)
    return lm_logits(P, f"text_decoder{sfx}.", h, db)


@torch.no_grad()
def momentum_update(P, cfg):
    m = cfg["albef"]["momentum"]
    for n in momentum_names(cfg):
        P[n].copy_(P[n] * m + P[online_of(n)] * (1.0 - m))


def repeat_rows(x, k):
    return torch.cat([x[b:b + 1].expand(n, *x.shape[1:]) for b, n in enumerate(k)], 0)


def forward_train(P, batch, cfg, alpha):
    """The training loss (after the momentum update, which the caller runs first when distill).
    batch: image (B,3,S,S), question_ids/atts (B,Tq), answer_ids/atts (N,Ta), weights (N), k (B)."""
    pad = cfg["bert"]["pad_token_id"]
    image, k = batch["image"], batch["k"]
    q_ids, q_atts = batch["question_ids"], batch["question_atts"]
    a_ids, a_atts, w = batch["answer_ids"], batch["answer_atts"], batch["weights"]
    q = encode_question(P, "", image, q_ids, q_atts, cfg)
    qs, qa = repeat_rows(q, k), repeat_rows(q_atts, k)
    logits = decode(P, "", a_ids, a_atts, qs, qa, cfg)[:, :-1]              # (N, Ta-1, V)
    targets = a_ids[:, 1:].masked_fill(a_ids[:, 1:] == pad, -100)
    V = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none",
                         ignore_index=-100).view(logits.shape[0], -1).sum(1)
    out = dict(answer_ce=ce)
    per = ce
    if cfg["albef_vqa"]["distill"]:
        with torch.no_grad():
            q_m = encode_question(P, "_m", image, q_ids, q_atts, cfg)
            logits_m = decode(P, "_m", a_ids, a_atts, repeat_rows(q_m, k), qa, cfg)[:, :-1]
        dist = -torch.sum(F.log_softmax(logits, -1) * F.softmax(logits_m, -1), -1)
        dist = (dist * (targets != -100)).sum(1)
        per = (1 - alpha) * ce + alpha * dist
        out["answer_distill"] = dist
    out["answer_loss"] = per
    out["loss"] = (w * per).sum() / image.shape[0]
    out["question_states"] = q
    out["logits"] = logits
    return out


@torch.no_grad()
def rank_answer(P, image, q_ids, q_atts, cand_ids, cand_atts, k, cfg):
    """The authors' rank_answer: returns (topk_ids (Q, k) candidate indices sorted by the
    re-ranked probability, topk_probs (Q, k))."""
    pad = cfg["bert"]["pad_token_id"]
    q = encode_question(P, "", image, q_ids, q_atts, cfg)
    Q = q.shape[0]
    start = cand_ids[0, 0].repeat(Q, 1)
    logits = decode(P, "", start, torch.ones_like(start), q, q_atts, cfg)[:, 0, :]
    prob_first = F.softmax(logits, dim=1).index_select(1, cand_ids[:, 1])
    topk_probs, topk_ids = prob_first.topk(k, dim=1)
    ids = cand_ids[topk_ids.reshape(-1)]
    atts = cand_atts[topk_ids.reshape(-1)]
    targets = ids.masked_fill(ids == pad, -100)
    qs = q.repeat_interleave(k, 0)
    qa = q_atts.repeat_interleave(k, 0)
    lg = decode(P, "", ids, atts, qs, qa, cfg)[:, :-1]
    V = lg.shape[-1]
    ce = F.cross_entropy(lg.reshape(-1, V), targets[:, 1:].reshape(-1), reduction="none",
                         ignore_index=-100).view(ids.shape[0], -1)
    log_probs = torch.cat([topk_probs.reshape(-1, 1).log(), -ce], 1).sum(1).view(Q, k)
    probs = F.softmax(log_probs, dim=-1)
    probs, rerank = probs.topk(k, dim=1)
    return torch.gather(topk_ids, 1, rerank), probs, log_probs


def map_pretrained(sd, fusion_layer):
    """VQA.py's remapping of a pretraining state_dict (names as the released ALBEF checkpoints)
    to the VQA model's names; the caller loads the result with strict=False as the authors do."""
    sd = dict(sd)
    for key in list(sd.keys()):
        if "bert" in key:
            sd[key.replace("bert.", "")] = sd[key]
        if "text_encoder" in key:
            if "layer" in key:
                parts = key.split(".")
                n = int(parts[4])
                if n < fusion_layer:
                    del sd[key]
                    continue
                parts[4] = str(n - fusion_layer)
                enc_key = ".".join(parts)
            else:
                enc_key = key
            sd[enc_key.replace("text_encoder", "text_decoder")] = sd[key]
            del sd[key]
    return sd
