// albef_vqa.c — ALBEF's VQA model: question encoder, answer decoder, weighted answer LM loss with
// momentum distillation, and the authors' candidate ranking (see albef_vqa.h).
#include "layers/albef_vqa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "autograd/device.h"
#include "checkpoints/safetensors.h"
#include "layers/model.h"

// The decoder's BERT config (model_vqa.py: config_decoder.fusion_layer = 0, num_hidden_layers = 6):
// every layer cross-attends, to question states of the hidden width.
static vlt_bert_cfg decoder_cfg(const vlt_model_cfg *cfg) {
    vlt_bert_cfg d = cfg->bert;
    d.fusion_layer = 0;
    d.num_hidden_layers = cfg->albef.vqa.decoder_layers;
    d.encoder_width = cfg->bert.hidden_size;
    return d;
}

static void freeze_from(vlt_params *p, int from) {
    for (int i = from; i < p->n; i++) {
        vlt_tensor *t = p->t[i];
        t->requires_grad = false;
        if (t->grad && t->grad->persistent) vlt_tensor_free(t->grad);
        t->grad = NULL;
    }
}

static vlt_status build_pairs(vlt_albef_vqa *m) {
    int cap = 4096;
    m->online = calloc((size_t)cap, sizeof *m->online);
    m->momentum = calloc((size_t)cap, sizeof *m->momentum);
    if (!m->online || !m->momentum) return vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory");
    int n = vlt_deit_params(&m->visual, m->online, cap), k = vlt_deit_params(&m->visual_m, m->momentum, cap);
    n += vlt_bert_trainable(&m->text, m->online + n, cap - n);
    k += vlt_bert_trainable(&m->text_m, m->momentum + k, cap - k);
    n += vlt_bert_trainable(&m->dec, m->online + n, cap - n);
    k += vlt_bert_trainable(&m->dec_m, m->momentum + k, cap - k);
    if (n != k || n >= cap) return vlt_error_set(VLT_ERR_STATE, "albef_vqa: %d online and %d momentum tensors", n, k);
    m->n_pairs = n;
    return VLT_OK;
}

void vlt_albef_vqa_copy_params(vlt_albef_vqa *m) { vlt_momentum_copy(m->online, m->momentum, m->n_pairs); }

static vlt_status load_vocab(vlt_albef_vqa *m) { return vlt_albef_load_tokenizer(&m->cfg, &m->tok); }

vlt_status vlt_albef_vqa_init(vlt_albef_vqa *m, const vlt_model_cfg *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    if (!cfg->is_albef || !cfg->albef.vqa.on)
        return vlt_error_set(VLT_ERR_ARG, "albef_vqa: %s is not an ALBEF VQA config (no \"albef_vqa\" section)",
                             cfg->name);
    m->cfg = *cfg;
    m->seed = seed;
    m->distill = cfg->albef.vqa.distill;
    const vlt_albef_cfg *a = &cfg->albef;
    vlt_bert_cfg dc = decoder_cfg(cfg);
    vlt_params *p = &m->params;
    vlt_params_init(p);
    vlt_status s = load_vocab(m);
    // model_vqa.py's registration order: visual_encoder, text_encoder, text_decoder, then the copies
    if (s == VLT_OK)
        s = vlt_deit_init(&m->visual, p, "visual_encoder", a->image_res, a->patch_size, a->vision_width,
                          a->vision_depth, a->vision_heads, a->mlp_ratio, seed, true);
    if (s == VLT_OK) s = vlt_bert_init_model(&m->text, p, "text_encoder", &cfg->bert, seed, true);
    if (s == VLT_OK) s = vlt_bert_init(&m->dec, p, "text_decoder", &dc, seed ^ 0x5eedULL, true);
    int first_m = p->n;
    if (s == VLT_OK && m->distill) {
        s = vlt_deit_init(&m->visual_m, p, "visual_encoder_m", a->image_res, a->patch_size, a->vision_width,
                          a->vision_depth, a->vision_heads, a->mlp_ratio, seed, false);
        if (s == VLT_OK) s = vlt_bert_init_model(&m->text_m, p, "text_encoder_m", &cfg->bert, seed, false);
        if (s == VLT_OK) s = vlt_bert_init(&m->dec_m, p, "text_decoder_m", &dc, seed, false);
        if (s == VLT_OK) s = build_pairs(m);
    }
    if (s == VLT_OK) {
        m->logit_scale = vlt_tensor_new(VLT_F32, VLT_CPU, 0, NULL, "albef_vqa.logit_scale");
        if (!m->logit_scale) s = vlt_error_code();
        else vlt_f32(m->logit_scale)[0] = 0.0f;
    }
    if (s != VLT_OK) {
        vlt_albef_vqa_free(m);
        return s;
    }
    m->dec.is_decoder = m->dec_m.is_decoder = true;
    freeze_from(p, first_m);
    vlt_albef_vqa_copy_params(m);
    m->ema_pending = true;   // the authors' first forward runs the EMA too
    return VLT_OK;
}

void vlt_albef_vqa_free(vlt_albef_vqa *m) {
    vlt_params_free(&m->params);
    free(m->online);
    free(m->momentum);
    free(m->cand_ids);
    free(m->cand_atts);
    vlt_tensor_free(m->logit_scale);
    vlt_bert_tokenizer_free(m->tok);
    memset(m, 0, sizeof *m);
}

static void momentum_update(vlt_albef_vqa *m) {
    vlt_momentum_ema(m->online, m->momentum, m->n_pairs, m->cfg.albef.momentum);
}

void vlt_albef_vqa_after_step(vlt_albef_vqa *m) { m->ema_pending = m->distill; }

// ---- pieces ----
static vlt_tensor *host_i32(int ndim, const int *shape) { return vlt_tensor_new_activation(VLT_I32, VLT_CPU, ndim, shape); }

// ---- the device ----
// The model's device is its parameters'. The batch may come on either (the trainer sends the
// whole batch to the GPU): what the host reads (ids for the masks and targets, k, weights) is read
// from host copies (one small copy back of each), and what the host builds (key-padding masks,
// the answer repetition, target positions, the loss coefficients' one-hot part) goes to the
// model's device as a step activation. vlt_albef_vqa_set_device_path takes that route on a host
// model too (tests: it must give the host path's bits).
static bool g_device_path;

void vlt_albef_vqa_set_device_path(bool on) {
    g_device_path = on;
    vlt_bert_set_device_path(on);
}

static vlt_device model_device(const vlt_albef_vqa *m) { return m->params.t[0]->device; }

static vlt_tensor *host_of(vlt_tensor *t) {
    if (!t || t->device == VLT_CPU) return t;
    vlt_tensor *h = vlt_tensor_new_activation(t->dtype, VLT_CPU, t->ndim, t->shape);
    return h && vlt_tensor_copy(h, t) == VLT_OK ? h : NULL;
}

// x on the model's device on the GPU route (a copy unless it is there already on a GPU), else x.
static vlt_tensor *on_dev(vlt_tensor *x, vlt_device dev, bool gpu) {
    if (!x || !gpu || (x->device == dev && dev != VLT_CPU)) return x;
    return vlt_to_device(x, dev);
}

// The values at flat indices idx[0..n) of f32 tensor x (any device) into out: on the GPU route a
// gather on the device and one copy back of n floats, not of x.
static vlt_status read_at(vlt_tensor *x, const int32_t *idx, int n, bool gpu, float *out) {
    if (n == 0) return VLT_OK;
    if (!gpu) {
        for (int i = 0; i < n; i++) out[i] = vlt_f32(x)[idx[i]];
        return VLT_OK;
    }
    vlt_tensor *ih = host_i32(1, VLT_SHAPE(n));
    if (!ih) return vlt_error_code();
    memcpy(vlt_i32(ih), idx, sizeof(int32_t) * (size_t)n);
    vlt_tensor *g = vlt_embedding(vlt_reshape(x, 2, VLT_SHAPE((int)x->numel, 1)), vlt_to_device(ih, x->device));
    if (!g) return vlt_error_code();
    vlt_tensor_read_f32(out, g, n);
    return VLT_OK;
}

static vlt_status check_ids(vlt_tensor *t, const char *name) {
    if (!t || t->dtype != VLT_I32 || t->ndim != 2 || t->device != VLT_CPU) {
        char s[64] = "none";
        if (t) vlt_shape_str(t, s, sizeof s);
        return vlt_error_set(VLT_ERR_SHAPE, "albef_vqa: %s %s must be i32 (n, T) on the host", name, s);
    }
    return VLT_OK;
}

// atts given (checked against ids) or made from ids != pad.
static vlt_tensor *atts_of(vlt_albef_vqa *m, vlt_tensor *ids, vlt_tensor *atts, const char *name) {
    if (atts) {
        if (atts->dtype != VLT_I32 || atts->ndim != 2 || atts->shape[0] != ids->shape[0] ||
            atts->shape[1] != ids->shape[1] || atts->device != VLT_CPU) {
            vlt_error_set(VLT_ERR_SHAPE, "albef_vqa: %s must be i32 like its ids", name);
            return NULL;
        }
        return atts;
    }
    vlt_tensor *a = host_i32(2, ids->shape);
    if (!a) return NULL;
    for (int64_t i = 0; i < ids->numel; i++) vlt_i32(a)[i] = vlt_i32(ids)[i] != m->cfg.bert.pad_token_id;
    return a;
}

// x (B, ...) -> rows idx (n) of it, with gradient.
static vlt_tensor *gather_batch(vlt_tensor *x, vlt_tensor *idx) {
    if (!x || !idx) return NULL;
    int B = x->shape[0];
    int64_t row = x->numel / B;
    int shape[VLT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[0] = idx->shape[0];
    return vlt_reshape(vlt_embedding(vlt_reshape(x, 2, VLT_SHAPE(B, (int)row)), idx), x->ndim, shape);
}

// Host rows idx of an i32 (B, T) tensor.
static vlt_tensor *gather_host(vlt_tensor *x, const int32_t *idx, int n) {
    int T = x->shape[1];
    vlt_tensor *o = host_i32(2, VLT_SHAPE(n, T));
    if (!o) return NULL;
    for (int r = 0; r < n; r++) memcpy(vlt_i32(o) + (size_t)r * T, vlt_i32(x) + (size_t)idx[r] * T, sizeof(int32_t) * T);
    return o;
}

// The question states (B, Tq, W): image tokens, then every text-encoder layer fused with them.
static vlt_tensor *encode_question(vlt_deit *vis, vlt_bert *txt, vlt_tensor *images, vlt_tensor *q_ids, vlt_tensor *q_pad) {
    vlt_tensor *img = vlt_deit_forward(vis, images);
    return vlt_bert_forward(txt, VLT_BERT_MULTI_MODAL, q_ids, q_pad, img, NULL);
}

// Decoder hidden states (N, Ta, W) over question states qs (N, Tq, W).
static vlt_tensor *decode(vlt_bert *dec, vlt_tensor *a_ids, vlt_tensor *a_pad, vlt_tensor *qs, vlt_tensor *qs_pad) {
    return vlt_bert_forward(dec, VLT_BERT_MULTI_MODAL, a_ids, a_pad, qs, qs_pad);
}

// LM logits (M, V) at flat positions pos (M) of hidden states h (N, T, W).
static vlt_tensor *logits_at(vlt_bert *dec, vlt_tensor *h, vlt_tensor *pos) {
    if (!h) return NULL;
    int N = h->shape[0], T = h->shape[1], W = h->shape[2];
    return vlt_bert_mlm_logits(dec, vlt_embedding(vlt_reshape(h, 2, VLT_SHAPE(N * T, W)), pos));
}

// The device form of the loss coefficients of vlt_albef_vqa_loss's host loop, with the same f32
// operations: row i's distillation part (c·α)·soft (c = w / B, c·α rounded on the host, the
// rows scaled through a transpose: ops broadcast over trailing dims only), plus a host-built
// matrix holding c·(1 − α) at the target and 0 elsewhere (x + 0 = x: soft and c are >= 0, so no
// −0 turns into +0), uploaded once (M × V floats). Under no-grad.
static vlt_tensor *coef_device(vlt_tensor *wt, const int32_t *row_of, const int32_t *tgt, int M, int V, int B,
                               float alpha, vlt_tensor *soft, vlt_device dev) {
    vlt_tensor *hot = vlt_tensor_new_activation(VLT_F32, VLT_CPU, 2, VLT_SHAPE(M, V));
    vlt_tensor *ca = soft ? vlt_tensor_new_activation(VLT_F32, VLT_CPU, 1, VLT_SHAPE(M)) : NULL;
    if (!hot || (soft && !ca)) return NULL;
    memset(hot->data, 0, sizeof(float) * (size_t)M * V);
    for (int i = 0; i < M; i++) {
        float c = vlt_f32(wt)[row_of[i]] / (float)B;
        vlt_f32(hot)[(size_t)i * V + tgt[i]] = c * (1.0f - alpha);
        if (ca) vlt_f32(ca)[i] = c * alpha;
    }
    vlt_no_grad_enter();
    vlt_tensor *coef = vlt_to_device(hot, dev);
    if (soft)
        coef = vlt_add(vlt_transpose(vlt_mul(vlt_transpose(soft, 0, 1), vlt_to_device(ca, dev)), 0, 1), coef);
    vlt_no_grad_exit();
    return coef;
}

vlt_tensor *vlt_albef_vqa_loss(vlt_albef_vqa *m, const vlt_albef_vqa_inputs *in) {
    const vlt_device dev = model_device(m);
    const bool gpu = dev != VLT_CPU || g_device_path;
    // what the host reads, as host tensors (the inputs themselves when they are there)
    vlt_tensor *q_ids = host_of(in->question_ids), *a_ids = host_of(in->answer_ids), *kt = host_of(in->k),
               *wt = host_of(in->weights), *q_atts_in = host_of(in->question_atts), *a_atts_in = host_of(in->answer_atts);
    if (!q_ids != !in->question_ids || !a_ids != !in->answer_ids || !kt != !in->k || !wt != !in->weights ||
        !q_atts_in != !in->question_atts || !a_atts_in != !in->answer_atts)
        return NULL;
    if (check_ids(q_ids, "question_ids") || check_ids(a_ids, "answer_ids")) return NULL;
    const int B = q_ids->shape[0], N = a_ids->shape[0], Ta = a_ids->shape[1], pad = m->cfg.bert.pad_token_id;
    if (!in->images || in->images->ndim != 4 || in->images->shape[0] != B) {
        vlt_error_set(VLT_ERR_SHAPE, "albef_vqa: images must be (B = %d, 3, S, S)", B);
        return NULL;
    }
    if (!kt || kt->dtype != VLT_I32 || kt->numel != B || kt->device != VLT_CPU || !wt || wt->dtype != VLT_F32 ||
        wt->numel != N || wt->device != VLT_CPU) {
        vlt_error_set(VLT_ERR_SHAPE, "albef_vqa: k must be %d i32 (answers per question) and weights %d f32, on the host",
                      B, N);
        return NULL;
    }
    int32_t *rep = malloc(sizeof(int32_t) * (size_t)(N > 0 ? N : 1));
    if (!rep) {
        vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory");
        return NULL;
    }
    int r = 0;
    for (int b = 0; b < B; b++) {
        int kb = vlt_i32(kt)[b];
        if (kb < 0 || r + kb > N) break;
        for (int j = 0; j < kb; j++) rep[r++] = b;
    }
    if (r != N) {
        free(rep);
        vlt_error_set(VLT_ERR_ARG, "albef_vqa: the answer counts k (sum over %d questions) do not add up to the %d answers",
                      B, N);
        return NULL;
    }
    vlt_tensor *q_atts = atts_of(m, q_ids, q_atts_in, "question_atts");
    vlt_tensor *a_atts = atts_of(m, a_ids, a_atts_in, "answer_atts");
    vlt_tensor *rep_t = host_i32(1, VLT_SHAPE(N));
    vlt_tensor *qa_rep = q_atts ? gather_host(q_atts, rep, N) : NULL;
    if (!q_atts || !a_atts || !rep_t || !qa_rep) {
        free(rep);
        return NULL;
    }
    memcpy(vlt_i32(rep_t), rep, sizeof(int32_t) * (size_t)N);
    free(rep);
    // positions whose next token is an answer token (PAD targets are -100 in the authors' loss)
    int M = 0;
    for (int i = 0; i < N; i++)
        for (int t = 0; t + 1 < Ta; t++) M += vlt_i32(a_ids)[(size_t)i * Ta + t + 1] != pad;
    if (M == 0) {
        vlt_error_set(VLT_ERR_ARG, "albef_vqa: the %d answers have no token to predict", N);
        return NULL;
    }
    vlt_tensor *pos = host_i32(1, VLT_SHAPE(M));
    if (!pos) return NULL;
    int32_t *tgt = malloc(sizeof(int32_t) * (size_t)M), *row_of = malloc(sizeof(int32_t) * (size_t)M);
    if (!tgt || !row_of) {
        free(tgt);
        free(row_of);
        vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory");
        return NULL;
    }
    for (int i = 0, j = 0; i < N; i++)
        for (int t = 0; t + 1 < Ta; t++) {
            int32_t nx = vlt_i32(a_ids)[(size_t)i * Ta + t + 1];
            if (nx == pad) continue;
            vlt_i32(pos)[j] = i * Ta + t;
            tgt[j] = nx;
            row_of[j++] = i;
        }
    const int V = m->cfg.bert.vocab_size;
    for (int i = 0; i < M; i++)
        if (tgt[i] < 0 || tgt[i] >= V) {
            vlt_error_set(VLT_ERR_ARG, "albef_vqa: answer token %d is outside the vocabulary (%d)", tgt[i], V);
            free(tgt);
            free(row_of);
            return NULL;
        }
    vlt_tensor *q_pad = on_dev(vlt_bert_key_pad(q_atts), dev, gpu), *qa_pad = on_dev(vlt_bert_key_pad(qa_rep), dev, gpu);
    vlt_tensor *a_pad = on_dev(vlt_bert_key_pad(a_atts), dev, gpu);
    vlt_tensor *images = on_dev(in->images, dev, gpu), *q_ids_d = on_dev(in->question_ids, dev, gpu);
    vlt_tensor *a_ids_d = on_dev(in->answer_ids, dev, gpu);
    rep_t = on_dev(rep_t, dev, gpu);
    pos = on_dev(pos, dev, gpu);
    if (!q_pad || !qa_pad || !a_pad || !images || !q_ids_d || !a_ids_d || !rep_t || !pos) {
        free(tgt);
        free(row_of);
        return NULL;
    }
    const float alpha = m->distill ? in->alpha : 0.0f;

    // ---- momentum model's soft targets (after the EMA, as the authors' forward) ----
    vlt_tensor *soft = NULL;
    if (m->distill) {
        if (m->ema_pending) {
            momentum_update(m);
            m->ema_pending = false;
        }
        vlt_no_grad_enter();
        vlt_tensor *q_m = encode_question(&m->visual_m, &m->text_m, images, q_ids_d, q_pad);
        vlt_tensor *h_m = decode(&m->dec_m, a_ids_d, a_pad, gather_batch(q_m, rep_t), qa_pad);
        soft = vlt_softmax(logits_at(&m->dec_m, h_m, pos));
        vlt_no_grad_exit();
    }
    // ---- online ----
    vlt_tensor *q = encode_question(&m->visual, &m->text, images, q_ids_d, q_pad);
    vlt_tensor *h = decode(&m->dec, a_ids_d, a_pad, gather_batch(q, rep_t), qa_pad);
    vlt_tensor *logp = vlt_log_softmax(logits_at(&m->dec, h, pos));                  // (M, V)
    // loss = -Σ_i Σ_v logp[i, v] · coef[i, v], coef = w_row / B · ((1-α)·onehot + α·soft)
    vlt_tensor *coef = gpu ? coef_device(wt, row_of, tgt, M, V, B, alpha, soft, dev)
                           : vlt_tensor_new_activation(VLT_F32, VLT_CPU, 2, VLT_SHAPE(M, V));
    if (!logp || !coef || (m->distill && !soft)) {
        free(tgt);
        free(row_of);
        return NULL;
    }
    if (!gpu) {
        memset(coef->data, 0, sizeof(float) * (size_t)M * V);
        for (int i = 0; i < M; i++) {
            float c = vlt_f32(wt)[row_of[i]] / (float)B;
            float *o = vlt_f32(coef) + (size_t)i * V;
            if (soft) {
                const float *s = vlt_f32(soft) + (size_t)i * V;
                for (int v = 0; v < V; v++) o[v] = c * alpha * s[v];
            }
            o[tgt[i]] += c * (1.0f - alpha);
        }
    }
    free(tgt);
    free(row_of);
    return vlt_scale(vlt_mean_all(vlt_mul(logp, coef)), -(float)((double)M * V));
}

// ---- ranking ----
typedef struct { float p; int i; } scored;
static int by_p_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->i - y->i;
}

vlt_status vlt_albef_vqa_rank(vlt_albef_vqa *m, vlt_tensor *images, vlt_tensor *question_ids,
                              vlt_tensor *question_atts, const int32_t *cand_ids, const int32_t *cand_atts, int C,
                              int Tc, int k, int32_t *ids, float *probs) {
    const vlt_device dev = model_device(m);
    const bool gpu = dev != VLT_CPU || g_device_path;
    vlt_tensor *q_ids_h = host_of(question_ids), *q_atts_in = host_of(question_atts);
    if (!q_ids_h != !question_ids || !q_atts_in != !question_atts) return vlt_error_code();
    VLT_TRY(check_ids(q_ids_h, "question_ids"));
    const int B = question_ids->shape[0], Tq = question_ids->shape[1], V = m->cfg.bert.vocab_size,
              pad = m->cfg.bert.pad_token_id, W = m->cfg.bert.hidden_size;
    if (C < 1 || Tc < 2 || k < 1 || k > C || k > 1024)
        return vlt_error_set(VLT_ERR_ARG, "albef_vqa: ranking needs candidates (%d of length %d >= 2) and 1 <= k (%d) <= "
                             "their number, at most 1024", C, Tc, k);
    for (int c = 0; c < C; c++)
        if (cand_ids[(size_t)c * Tc + 1] < 0 || cand_ids[(size_t)c * Tc + 1] >= V)
            return vlt_error_set(VLT_ERR_ARG, "albef_vqa: candidate %d's first token is outside the vocabulary", c);
    vlt_tensor *q_atts = atts_of(m, q_ids_h, q_atts_in, "question_atts");
    if (!q_atts) return vlt_error_code();
    vlt_tensor *q_pad = on_dev(vlt_bert_key_pad(q_atts), dev, gpu);
    vlt_tensor *q = encode_question(&m->visual, &m->text, on_dev(images, dev, gpu), on_dev(question_ids, dev, gpu),
                                    q_pad);   // (B, Tq, W)
    // first-token distribution: the decoder on the candidates' shared start token ([CLS])
    vlt_tensor *start = host_i32(2, VLT_SHAPE(B, 1));
    if (!q || !start) return vlt_error_code();
    for (int b = 0; b < B; b++) vlt_i32(start)[b] = cand_ids[0];
    vlt_tensor *h0 = decode(&m->dec, on_dev(start, dev, gpu), NULL, q, q_pad);
    vlt_tensor *p0 = vlt_softmax(vlt_bert_mlm_logits(&m->dec, vlt_reshape(h0, 2, VLT_SHAPE(B, W))));   // (B, V)
    if (!p0) return vlt_error_code();
    // each candidate's first-token probability, p0[b, first token of c] (B·C values; on the GPU
    // gathered there, so that only they come back)
    int32_t *at = malloc(sizeof(int32_t) * (size_t)B * C);
    float *p_first = malloc(sizeof(float) * (size_t)B * C);
    if (!at || !p_first) {
        free(at);
        free(p_first);
        return vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory");
    }
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) at[(size_t)b * C + c] = b * V + cand_ids[(size_t)c * Tc + 1];
    vlt_status rs = read_at(p0, at, B * C, gpu, p_first);
    free(at);
    if (rs != VLT_OK) {
        free(p_first);
        return rs;
    }
    // the candidates' next-token positions in the k × Tc × V log-probabilities, and their values
    int32_t *nx_at = malloc(sizeof(int32_t) * (size_t)k * Tc);
    float *nx_lp = malloc(sizeof(float) * (size_t)k * Tc);
    scored *sc = malloc(sizeof *sc * (size_t)C);
    vlt_tensor *sel = host_i32(1, VLT_SHAPE(k)), *cids = host_i32(2, VLT_SHAPE(k, Tc)), *catt = host_i32(2, VLT_SHAPE(k, Tc));
    vlt_tensor *qa = host_i32(2, VLT_SHAPE(k, Tq));
    if (!sc || !sel || !cids || !catt || !qa || !nx_at || !nx_lp) {
        free(sc);
        free(p_first);
        free(nx_at);
        free(nx_lp);
        return vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory");
    }
    vlt_status s = VLT_OK;
    for (int b = 0; b < B && s == VLT_OK; b++) {
        for (int c = 0; c < C; c++) sc[c] = (scored){p_first[(size_t)b * C + c], c};
        qsort(sc, (size_t)C, sizeof *sc, by_p_desc);
        double logp[1024], topp[1024];
        int top[1024];
        const int kk = k;
        for (int j = 0; j < kk; j++) {
            top[j] = sc[j].i;
            topp[j] = sc[j].p;
            vlt_i32(sel)[j] = b;
            memcpy(vlt_i32(cids) + (size_t)j * Tc, cand_ids + (size_t)top[j] * Tc, sizeof(int32_t) * Tc);
            memcpy(vlt_i32(catt) + (size_t)j * Tc, cand_atts + (size_t)top[j] * Tc, sizeof(int32_t) * Tc);
            memcpy(vlt_i32(qa) + (size_t)j * Tq, vlt_i32(q_atts) + (size_t)b * Tq, sizeof(int32_t) * Tq);
        }
        // the k candidates' likelihood after the first token
        vlt_tensor *qs = gather_batch(q, on_dev(sel, dev, gpu));
        vlt_tensor *h = decode(&m->dec, on_dev(cids, dev, gpu), on_dev(vlt_bert_key_pad(catt), dev, gpu), qs,
                               on_dev(vlt_bert_key_pad(qa), dev, gpu));
        vlt_tensor *lp = h ? vlt_log_softmax(vlt_bert_mlm_logits(&m->dec, h)) : NULL;   // (k, Tc, V)
        if (!lp) {
            s = vlt_error_code();
            break;
        }
        int n_at = 0;
        for (int j = 0; j < kk; j++)
            for (int t = 0; t + 1 < Tc; t++) {
                int32_t nx = vlt_i32(cids)[(size_t)j * Tc + t + 1];
                if (nx != pad) nx_at[n_at++] = (j * Tc + t) * V + nx;
            }
        if ((s = read_at(lp, nx_at, n_at, gpu, nx_lp)) != VLT_OK) break;
        double mx = -INFINITY, tot = 0;
        for (int j = 0, r = 0; j < kk; j++) {
            double sum = log(topp[j]);
            for (int t = 0; t + 1 < Tc; t++) {
                int32_t nx = vlt_i32(cids)[(size_t)j * Tc + t + 1];
                if (nx == pad) continue;
                sum += nx_lp[r++];
            }
            logp[j] = sum;
            mx = fmax(mx, sum);
        }
        for (int j = 0; j < kk; j++) tot += exp(logp[j] - mx);
        for (int j = 0; j < kk; j++) sc[j] = (scored){(float)(exp(logp[j] - mx) / tot), top[j]};
        qsort(sc, (size_t)kk, sizeof *sc, by_p_desc);
        for (int j = 0; j < kk; j++) {
            ids[(size_t)b * k + j] = sc[j].i;
            if (probs) probs[(size_t)b * k + j] = sc[j].p;
        }
    }
    free(sc);
    free(p_first);
    free(nx_at);
    free(nx_lp);
    return s;
}

// ---- the candidate list ----
int vlt_albef_vqa_tokenize(const vlt_albef_vqa *m, const char *text, int32_t *ids, int32_t *mask, int T) {
    if (!m->tok) {
        vlt_error_set(VLT_ERR_ARG, "albef_vqa: the model config names no vocabulary (albef.vocab) to tokenize text with");
        return -1;
    }
    return vlt_bert_tokenizer_encode(m->tok, text, ids, mask, T);
}

vlt_status vlt_albef_vqa_set_answers(vlt_albef_vqa *m, const char *const *answers, int n) {
    if (!m->tok)
        return vlt_error_set(VLT_ERR_ARG, "albef_vqa: the model config names no vocabulary (albef.vocab) for the answers");
    if (n < 1) return vlt_error_set(VLT_ERR_ARG, "albef_vqa: an empty answer list");
    int T = m->cfg.bert.max_position_embeddings, Tmax = 2;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n * T), *att = calloc((size_t)n * T, sizeof(int32_t));
    if (!ids || !att) {
        free(ids);
        free(att);
        return vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory");
    }
    int sep = vlt_bert_tokenizer_specials(m->tok).sep;
    for (int i = 0; i < n; i++) {
        // answer + '[SEP]' as VQA.py: [CLS] tokens [SEP] then the tokenizer's own [SEP]
        int c = vlt_bert_tokenizer_encode(m->tok, answers[i], ids + (size_t)i * T, NULL, T - 1);
        if (c < 0) {
            free(ids);
            free(att);
            return vlt_error_code();
        }
        ids[(size_t)i * T + c] = sep;
        for (int t = c + 1; t < T; t++) ids[(size_t)i * T + t] = m->cfg.bert.pad_token_id;
        for (int t = 0; t <= c; t++) att[(size_t)i * T + t] = 1;
        if (c + 1 > Tmax) Tmax = c + 1;
    }
    // padded to the longest (tokenizer(padding='longest'))
    free(m->cand_ids);
    free(m->cand_atts);
    m->cand_ids = malloc(sizeof(int32_t) * (size_t)n * Tmax);
    m->cand_atts = malloc(sizeof(int32_t) * (size_t)n * Tmax);
    if (!m->cand_ids || !m->cand_atts) {
        free(ids);
        free(att);
        m->n_cand = 0;
        return vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory");
    }
    for (int i = 0; i < n; i++) {
        memcpy(m->cand_ids + (size_t)i * Tmax, ids + (size_t)i * T, sizeof(int32_t) * Tmax);
        memcpy(m->cand_atts + (size_t)i * Tmax, att + (size_t)i * T, sizeof(int32_t) * Tmax);
    }
    free(ids);
    free(att);
    m->n_cand = n;
    m->cand_T = Tmax;
    return VLT_OK;
}

vlt_status vlt_albef_vqa_answer(vlt_albef_vqa *m, vlt_tensor *images, vlt_tensor *question_ids, int32_t *best,
                                float *conf) {
    if (m->n_cand < 1)
        return vlt_error_set(VLT_ERR_STATE, "albef_vqa: no candidate answer list (vlt_albef_vqa_set_answers)");
    if (!question_ids || question_ids->dtype != VLT_I32 || question_ids->ndim != 2)
        return vlt_error_set(VLT_ERR_SHAPE, "albef_vqa: question_ids must be i32 (B, T)");
    int B = question_ids->shape[0], k = m->cfg.albef.vqa.k_test < m->n_cand ? m->cfg.albef.vqa.k_test : m->n_cand;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * k);
    float *p = malloc(sizeof(float) * (size_t)B * k);
    vlt_status s = ids && p ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory");
    if (s == VLT_OK)
        s = vlt_albef_vqa_rank(m, images, question_ids, NULL, m->cand_ids, m->cand_atts, m->n_cand, m->cand_T, k, ids, p);
    for (int b = 0; s == VLT_OK && b < B; b++) {
        best[b] = ids[(size_t)b * k];
        if (conf) conf[b] = p[(size_t)b * k];
    }
    free(ids);
    free(p);
    return s;
}

// ---- loading ----
// Reads file tensor `src` into table tensor t (f32; position_ids i32 from I64/I32); pos_embed of
// another grid is resized as ALBEF's interpolate_pos_embed. Returns 1 when done, 0 when the file
// lacks it, -1 on a misfit (message set).
static int read_into(const vlt_safetensors *f, const char *path, const char *src, vlt_tensor *t) {
    const vlt_st_tensor *s = vlt_safetensors_get(f, src);
    if (!s) return 0;
    if (t->dtype == VLT_I32) {   // the position_ids buffer
        if (s->numel != t->numel) goto misfit;
        int64_t *tmp = malloc(sizeof(int64_t) * (size_t)s->numel);
        if (!tmp) return vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory"), -1;
        vlt_status st = s->dtype == VLT_ST_I64 ? vlt_safetensors_read_i64(f, src, tmp, s->numel) : VLT_ERR_FORMAT;
        for (int64_t i = 0; st == VLT_OK && i < s->numel; i++) vlt_i32(t)[i] = (int32_t)tmp[i];
        if (s->dtype == VLT_ST_I32) {   // as vlt writes it
            memcpy(vlt_i32(t), s->data, sizeof(int32_t) * (size_t)s->numel);
            st = VLT_OK;
        }
        free(tmp);
        if (st != VLT_OK) goto misfit;
        return 1;
    }
    bool same = s->numel == t->numel && (s->ndim == t->ndim || (s->ndim == 0 && t->numel == 1));
    for (int d = 0; same && d < s->ndim; d++) same = s->shape[d] == t->shape[d];
    if (!same && strstr(src, "pos_embed") && s->ndim == 3 && t->ndim == 3 && s->shape[2] == t->shape[2]) {
        int64_t n = s->shape[1] - 1;
        int g0 = (int)llround(sqrt((double)n)), g1 = (int)llround(sqrt((double)(t->shape[1] - 1)));
        if ((int64_t)g0 * g0 != n) goto misfit;
        float *tmp = malloc(sizeof(float) * (size_t)s->numel);
        if (!tmp) return vlt_error_set(VLT_ERR_NOMEM, "albef_vqa: out of memory"), -1;
        vlt_status st = vlt_safetensors_read_f32(f, src, tmp, s->numel);
        if (st == VLT_OK) vlt_interpolate_pos_embed(tmp, g0, t->shape[2], g1, vlt_f32(t));
        free(tmp);
        return st == VLT_OK ? 1 : -1;
    }
    if (!same) goto misfit;
    return vlt_safetensors_read_f32(f, src, vlt_f32(t), t->numel) == VLT_OK ? 1 : -1;
misfit: {
        char sh[64];
        vlt_error_set(VLT_ERR_FORMAT, "%s: %s does not fit the model's %s %s", path, src, t->name,
                      vlt_shape_str(t, sh, sizeof sh));
        return -1;
    }
}

// VQA.py's remapping, from the model's name to the pretraining checkpoint's (see albef_vqa.h).
static void pretrained_name(const char *name, int fusion_layer, char *out, size_t cap) {
    const char *suf = strncmp(name, "text_encoder_m.", 15) == 0 || strncmp(name, "text_decoder_m.", 15) == 0 ? "_m" : "";
    size_t pre = strlen("text_encoder") + strlen(suf) + 1;
    int j;
    char rest[256];
    if (strncmp(name, "text_encoder", 12) == 0) {
        snprintf(out, cap, "text_encoder%s.bert.%s", suf, name + pre);
    } else if (strncmp(name, "text_decoder", 12) == 0) {
        const char *r = name + pre;   // bert.encoder.layer.J.rest | bert.embeddings.* | cls.*
        if (sscanf(r, "bert.encoder.layer.%d.%255s", &j, rest) == 2)
            snprintf(out, cap, "text_encoder%s.bert.encoder.layer.%d.%s", suf, j + fusion_layer, rest);
        else
            snprintf(out, cap, "text_encoder%s.%s", suf, r);
    } else {
        snprintf(out, cap, "%s", name);
    }
}

static vlt_status load_mapped(vlt_albef_vqa *m, const char *path, bool pretrained, bool lenient) {
    vlt_safetensors *f = NULL;
    VLT_TRY(vlt_safetensors_open(path, &f));
    vlt_status s = VLT_OK;
    char missing[1024] = "";
    int n_missing = 0, n_found = 0;
    for (int i = 0; i < m->params.n && s == VLT_OK; i++) {
        vlt_tensor *t = m->params.t[i];
        if (t->base) {   // a tied alias: its storage is the one tensor's; a released file must hold the name
            n_found += vlt_safetensors_get(f, t->name) != NULL;
            if (!pretrained && !vlt_safetensors_get(f, t->name)) n_missing++;
            continue;
        }
        char src[320];
        if (pretrained) pretrained_name(t->name, m->cfg.bert.fusion_layer, src, sizeof src);
        else snprintf(src, sizeof src, "%s", t->name);
        int r = read_into(f, path, src, t);
        if (r < 0) s = vlt_error_code();
        else if (r == 0 && !(pretrained && t->dtype == VLT_I32)) {   // a pretraining file's position_ids may lack
            if (n_missing++ < 8) {
                size_t l = strlen(missing);
                snprintf(missing + l, sizeof missing - l, "%s%s", l ? ", " : "", src);
            }
        } else {
            n_found += r;
        }
    }
    if (s == VLT_OK && n_missing && !lenient)
        s = vlt_error_set(VLT_ERR_FORMAT, "%s: %d tensor(s) of the ALBEF VQA model%s are missing%s: %s%s", path,
                          n_missing, pretrained ? " (remapped as VQA.py)" : "", pretrained ? " from the pretraining checkpoint" : "",
                          missing, n_missing > 8 ? ", ..." : "");
    if (s == VLT_OK && !pretrained && !lenient && vlt_safetensors_count(f) != n_found)
        s = vlt_error_set(VLT_ERR_FORMAT, "%s: %d tensor(s) in the file are not in the ALBEF VQA model (%s)", path,
                          vlt_safetensors_count(f) - n_found,
                          m->distill ? "a pretraining checkpoint? use its remapping" : "distill is off: _m copies?");
    vlt_safetensors_close(f);
    if (s == VLT_OK) m->ema_pending = m->distill;
    return s;
}

vlt_status vlt_albef_vqa_load(vlt_albef_vqa *m, const char *path, bool lenient) {
    return load_mapped(m, path, false, lenient);
}

vlt_status vlt_albef_vqa_load_pretrained(vlt_albef_vqa *m, const char *path) {
    return load_mapped(m, path, true, false);
}

// ---- behind the model interface (layers/model.h) ----
const char VLT_ALBEF_VQA_KIND[] = "albef_vqa";
static vlt_albef_vqa *avqa_of(const vlt_model *m) { return (vlt_albef_vqa *)m->impl; }

static vlt_tensor *need(const vlt_model_batch *b, const char *name) {
    vlt_tensor *t = vlt_model_batch_get(b, name);
    if (!t) vlt_error_set(VLT_ERR_ARG, "ALBEF VQA: the batch has no '%s' field", name);
    return t;
}

// alpha: the loss setting "alpha" when given, else the config's, ramped over the first epoch as
// VQA.py's warm-up does (alpha · min(1, i / len(loader)) in epoch 0) when the trainer says how far.
static vlt_status avqa_loss(vlt_model *m, const vlt_model_batch *b, const vlt_loss_opts *o, vlt_model_loss *out) {
    vlt_albef_vqa *a = avqa_of(m);
    float progress = vlt_loss_opts_get(o, "epoch_progress", 1.0f);
    float alpha = a->cfg.albef.alpha * (progress < 1.0f ? fmaxf(progress, 0.0f) : 1.0f);
    vlt_albef_vqa_inputs in = {
        .images = need(b, VLT_FIELD_IMAGES), .question_ids = need(b, VLT_FIELD_QUESTION_IDS),
        .question_atts = vlt_model_batch_get(b, VLT_FIELD_QUESTION_ATTS), .answer_ids = need(b, VLT_FIELD_ANSWER_IDS),
        .answer_atts = vlt_model_batch_get(b, VLT_FIELD_ANSWER_ATTS), .weights = need(b, VLT_FIELD_ANSWER_WEIGHTS),
        .k = need(b, VLT_FIELD_ANSWER_K), .alpha = vlt_loss_opts_get(o, "alpha", alpha)};
    if (!in.images || !in.question_ids || !in.answer_ids || !in.weights || !in.k) return vlt_error_code();
    out->loss = vlt_albef_vqa_loss(a, &in);
    return out->loss ? VLT_OK : vlt_error_code();
}

static void avqa_after_step(vlt_model *m) { vlt_albef_vqa_after_step(avqa_of(m)); }

// The answer fields of a training batch from the samples' .json (as vlt shards --vqa writes it:
// "answers_processed", the ten annotators' answers normalized; "answers" when that is absent):
// each distinct answer once, in first-appearance order, weighted by its share of the answers, as
// ALBEF's vqa_dataset (weight += 1 / len(answers)); tokenized as VQA.py (answer + '[SEP]').
static vlt_status avqa_answer_fields(vlt_model *m, char *const *json, int n, vlt_model_batch *b) {
    vlt_albef_vqa *a = avqa_of(m);
    if (!a->tok) return vlt_error_set(VLT_ERR_ARG, "ALBEF VQA: the model config names no vocabulary (albef.vocab)");
    const int P = a->cfg.bert.max_position_embeddings, pad = a->cfg.bert.pad_token_id;
    const int sep = vlt_bert_tokenizer_specials(a->tok).sep;
    int cap = 16, N = 0, Tmax = 2;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap * P);
    float *w = malloc(sizeof(float) * (size_t)cap);
    vlt_tensor *k = host_i32(1, VLT_SHAPE(n));
    vlt_status s = ids && w && k ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "ALBEF VQA: out of memory");
    for (int i = 0; s == VLT_OK && i < n; i++) {
        cJSON *js = json && json[i] ? cJSON_Parse(json[i]) : NULL;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(js, "answers_processed");
        if (!cJSON_IsArray(arr)) arr = cJSON_GetObjectItemCaseSensitive(js, "answers");
        int total = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0, first = N;
        const char *seen[64];   // this question's distinct answers (strings of js)
        if (total > 64) total = 64;
        vlt_i32(k)[i] = 0;
        for (int j = 0; s == VLT_OK && j < total; j++) {
            const cJSON *e = cJSON_GetArrayItem(arr, j);
            if (!cJSON_IsString(e)) continue;
            // distinct answers of a question are few: compare with the ones taken so far
            int r = first;
            while (r < N && strcmp(seen[r - first], e->valuestring)) r++;
            if (r < N) {
                w[r] += 1.0f / (float)total;
                continue;
            }
            if (N == cap) {
                cap *= 2;
                int32_t *i2 = realloc(ids, sizeof(int32_t) * (size_t)cap * P);
                if (i2) ids = i2;
                float *w2 = realloc(w, sizeof(float) * (size_t)cap);
                if (w2) w = w2;
                if (!i2 || !w2) { s = vlt_error_set(VLT_ERR_NOMEM, "ALBEF VQA: out of memory"); break; }
            }
            int32_t *row = ids + (size_t)N * P;
            int c = vlt_bert_tokenizer_encode(a->tok, e->valuestring, row, NULL, P - 1);
            if (c < 0) { s = vlt_error_code(); break; }
            row[c] = sep;
            for (int t = c + 1; t < P; t++) row[t] = pad;
            if (c + 1 > Tmax) Tmax = c + 1;
            seen[N - first] = e->valuestring;
            w[N++] = 1.0f / (float)total;
            vlt_i32(k)[i]++;
        }
        cJSON_Delete(js);
    }
    vlt_tensor *ti = NULL, *tw = NULL;
    if (s == VLT_OK && N == 0) s = vlt_error_set(VLT_ERR_ARG, "ALBEF VQA: no question of the batch has answers");
    if (s == VLT_OK) {
        ti = host_i32(2, VLT_SHAPE(N, Tmax));
        tw = vlt_tensor_new_activation(VLT_F32, VLT_CPU, 1, VLT_SHAPE(N));
        if (!ti || !tw) s = vlt_error_code();
    }
    for (int r = 0; s == VLT_OK && r < N; r++) {
        memcpy(vlt_i32(ti) + (size_t)r * Tmax, ids + (size_t)r * P, sizeof(int32_t) * (size_t)Tmax);
        vlt_f32(tw)[r] = w[r];
    }
    free(ids);
    free(w);
    if (s == VLT_OK) s = vlt_model_batch_set(b, VLT_FIELD_ANSWER_IDS, ti);
    if (s == VLT_OK) s = vlt_model_batch_set(b, VLT_FIELD_ANSWER_WEIGHTS, tw);
    if (s == VLT_OK) s = vlt_model_batch_set(b, VLT_FIELD_ANSWER_K, k);
    return s;
}
static vlt_status avqa_answer(vlt_model *m, vlt_tensor *images, vlt_tensor *q, int32_t *best, float *conf) {
    return vlt_albef_vqa_answer(avqa_of(m), images, q, best, conf);
}
static vlt_status avqa_set_answers(vlt_model *m, const char *const *answers, int n) {
    return vlt_albef_vqa_set_answers(avqa_of(m), answers, n);
}
static int avqa_n_answers(const vlt_model *m) { return avqa_of(m)->n_cand; }
static bool avqa_has_tokenizer(const vlt_model *m) { return avqa_of(m)->tok != NULL; }
static int avqa_tokenize(const vlt_model *m, const char *text, int32_t *ids, int32_t *mask, int T) {
    return vlt_albef_vqa_tokenize(avqa_of(m), text, ids, mask, T);
}
static void avqa_destroy(vlt_model *m) { vlt_albef_vqa_free(avqa_of(m)); }
// model.init_from: an ALBEF pretraining checkpoint (it has text_encoder.bert.*) through VQA.py's
// remapping, else an ALBEF VQA checkpoint (strict; pos_embed resized to this image size).
static vlt_status avqa_load_init(vlt_model *m, const char *path) {
    vlt_safetensors *f = NULL;
    VLT_TRY(vlt_safetensors_open(path, &f));
    bool pretraining = vlt_safetensors_get(f, "text_encoder.bert.embeddings.word_embeddings.weight") != NULL;
    vlt_safetensors_close(f);
    return pretraining ? vlt_albef_vqa_load_pretrained(avqa_of(m), path) : vlt_albef_vqa_load(avqa_of(m), path, false);
}

static const vlt_model_ops ALBEF_VQA_OPS = {
    .kind = VLT_ALBEF_VQA_KIND, .title = "ALBEF VQA", .caps = VLT_CAP_ANSWER, .loss = avqa_loss,
    .after_step = avqa_after_step, .answer = avqa_answer, .set_answers = avqa_set_answers,
    .n_answers = avqa_n_answers, .answer_fields = avqa_answer_fields,
    .load_init = avqa_load_init, .tokenize = avqa_tokenize, .has_tokenizer = avqa_has_tokenizer,
    .destroy = avqa_destroy,   // trains and ranks on the GPU too (host copies of what the host reads)
};

vlt_status vlt_albef_vqa_model_create(vlt_model *m, const vlt_model_cfg *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    vlt_albef_vqa *c = calloc(1, sizeof *c);
    if (!c) return vlt_error_set(VLT_ERR_NOMEM, "model: out of memory");
    vlt_status s = vlt_albef_vqa_init(c, cfg, seed);
    if (s != VLT_OK) {
        free(c);
        return s;
    }
    m->ops = &ALBEF_VQA_OPS;
    m->cfg = c->cfg;
    m->impl = c;
    m->params = &c->params;
    m->logit_scale = c->logit_scale;
    return VLT_OK;
}
