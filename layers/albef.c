// albef.c — ALBEF model, momentum encoders, queues and its three losses (see albef.h).
#include "layers/albef.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autograd/device.h"
#include "autograd/momentum.h"
#include "autograd/optim.h"
#include "autograd/rng.h"
#include "checkpoints/safetensors.h"
#include "layers/transformer.h"

// RNG sub-streams of one step (vlt_rng_stream(VLT_RNG_MASK, step, k)).
// Rank r's draws use sub-stream k + DRAW_KINDS·r.
enum { DRAW_MASK = 0, DRAW_REPLACE = 1, DRAW_RANDOM_WORD = 2, DRAW_NEG_IMAGE = 3, DRAW_NEG_TEXT = 4, DRAW_KINDS = 8 };

// nn.Linear's default init: U(±fan_in^-1/2) for weight and bias.
static vlt_status linear(vlt_params *p, const char *name, int out, int in, vlt_tensor **w, vlt_tensor **b,
                         uint64_t seed) {
    char n[128];
    snprintf(n, sizeof n, "%s.weight", name);
    *w = vlt_params_new(p, n, 2, VLT_SHAPE(out, in));
    snprintf(n, sizeof n, "%s.bias", name);
    *b = vlt_params_new(p, n, 1, VLT_SHAPE(out));
    if (!*w || !*b) return vlt_error_code();
    vlt_init_uniform(*w, 1.0f / sqrtf((float)in), seed);
    vlt_init_uniform(*b, 1.0f / sqrtf((float)in), seed);
    return VLT_OK;
}

static vlt_tensor *state(vlt_params *p, vlt_dtype dt, int ndim, const int *shape, const char *name) {
    vlt_tensor *t = vlt_tensor_new(dt, VLT_CPU, ndim, shape, name);
    return t && vlt_params_add(p, t) == VLT_OK ? t : NULL;
}

// The momentum side is built exactly as the online side (same names with _m) and then frozen.
static void freeze_prefix(vlt_params *p, int from) {
    for (int i = from; i < p->n; i++) {
        vlt_tensor *t = p->t[i];
        t->requires_grad = false;
        if (t->grad && t->grad->persistent) vlt_tensor_free(t->grad);
        t->grad = NULL;
    }
}

static vlt_status build_pairs(vlt_albef *m) {
    int cap = 4096;
    m->online = calloc((size_t)cap, sizeof *m->online);
    m->momentum = calloc((size_t)cap, sizeof *m->momentum);
    if (!m->online || !m->momentum) return vlt_error_set(VLT_ERR_NOMEM, "albef: out of memory");
    int n = vlt_deit_params(&m->visual, m->online, cap);
    int k = vlt_deit_params(&m->visual_m, m->momentum, cap);
    vlt_tensor *pw[4] = {m->vision_proj_w, m->vision_proj_b, m->text_proj_w, m->text_proj_b};
    vlt_tensor *pm[4] = {m->vision_proj_m_w, m->vision_proj_m_b, m->text_proj_m_w, m->text_proj_m_b};
    for (int i = 0; i < 4; i++) {
        m->online[n++] = pw[i];
        m->momentum[k++] = pm[i];
    }
    n += vlt_bert_trainable(&m->text, m->online + n, cap - n);
    k += vlt_bert_trainable(&m->text_m, m->momentum + k, cap - k);
    if (n != k || n >= cap) return vlt_error_set(VLT_ERR_STATE, "albef: %d online and %d momentum tensors", n, k);
    for (int i = 0; i < n; i++)
        if (!vlt_tensor_same_shape(m->online[i], m->momentum[i]))
            return vlt_error_set(VLT_ERR_STATE, "albef: %s and %s differ in shape", m->online[i]->name,
                                 m->momentum[i]->name);
    m->n_pairs = n;
    return VLT_OK;
}

// Both on either device (autograd/momentum.c): on the GPU the EMA is one launch over all pairs.
vlt_status vlt_momentum_copy(vlt_tensor *const *online, vlt_tensor *const *momentum, int n) {
    return vlt_ema_copy(online, momentum, n);
}

vlt_status vlt_momentum_ema(vlt_tensor *const *online, vlt_tensor *const *momentum, int n, float mu) {
    return vlt_ema_update(online, momentum, n, mu);
}

vlt_status vlt_albef_copy_params(vlt_albef *m) { return vlt_momentum_copy(m->online, m->momentum, m->n_pairs); }

// Random unit columns (ALBEF: normalize(randn(E, Q), dim=0)); zeros in a shapes-only build.
static void init_queue(vlt_tensor *q, uint64_t seed) {
    int E = q->shape[0], Q = q->shape[1];
    float *d = vlt_f32(q);
    vlt_init_normal(q, 1.0f, seed);   // N(0, 1) from the stream of the queue's name
    for (int j = 0; j < Q; j++) {
        double s = 0;
        for (int e = 0; e < E; e++) s += (double)d[(size_t)e * Q + j] * d[(size_t)e * Q + j];
        float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
        for (int e = 0; e < E; e++) d[(size_t)e * Q + j] *= inv;
    }
}

// logit_scale stays on the host (it is not in the table); temp: the value the host just set.
static void update_logit_scale(vlt_albef *m, float temp) { vlt_f32(m->logit_scale)[0] = logf(1.0f / temp); }

const char *vlt_albef_vocab_path(const vlt_model_cfg *cfg, char *path, size_t n) {
    const vlt_albef_cfg *a = &cfg->albef;
    if (!a->vocab[0]) return NULL;
    const char *home = getenv("VLT_HOME");
    snprintf(path, n, "%s", a->vocab);
    if (a->vocab[0] != '/' && home && *home) {
        snprintf(path, n, "%s/%s", home, a->vocab);
        if (access(path, R_OK) != 0) snprintf(path, n, "%s", a->vocab);
    }
    return path;
}

vlt_status vlt_albef_load_tokenizer(vlt_model_cfg *cfg, vlt_bert_tokenizer **tok) {
    *tok = NULL;
    vlt_albef_cfg *a = &cfg->albef;
    char path[1024];
    if (!vlt_albef_vocab_path(cfg, path, sizeof path)) return VLT_OK;
    VLT_TRY(vlt_bert_tokenizer_load(path, a->do_lower_case, tok));
    vlt_bert_specials sp = vlt_bert_tokenizer_specials(*tok);
    int V = vlt_bert_tokenizer_vocab_size(*tok);
    if (V > cfg->bert.vocab_size || sp.pad != cfg->bert.pad_token_id)
        return vlt_error_set(VLT_ERR_ARG, "%s: the vocabulary %s has %d tokens and [PAD] %d; the model config says "
                             "bert.vocab_size %d, pad_token_id %d", cfg->name, path, V, sp.pad, cfg->bert.vocab_size,
                             cfg->bert.pad_token_id);
    if (a->cls_token_id < 0) a->cls_token_id = sp.cls;
    if (a->sep_token_id < 0) a->sep_token_id = sp.sep;
    if (a->mask_token_id < 0) a->mask_token_id = sp.mask;
    return VLT_OK;
}

// The config's vocabulary (see albef.h); MLM masking needs its [MASK].
static vlt_status load_vocab(vlt_albef *m) {
    VLT_TRY(vlt_albef_load_tokenizer(&m->cfg, &m->tok));
    if (m->tok && m->cfg.albef.mask_token_id < 0)
        return vlt_error_set(VLT_ERR_ARG, "albef: the vocabulary %s has no [MASK] token", m->cfg.albef.vocab);
    return VLT_OK;
}

int vlt_albef_tokenize(const vlt_albef *m, const char *text, int32_t *ids, int32_t *mask, int T) {
    if (!m->tok) {
        vlt_error_set(VLT_ERR_ARG, "albef: the model config names no vocabulary (albef.vocab) to tokenize text with");
        return -1;
    }
    return vlt_bert_tokenizer_encode(m->tok, text, ids, mask, T);
}

vlt_status vlt_albef_init(vlt_albef *m, const vlt_model_cfg *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    if (!cfg->is_albef) return vlt_error_set(VLT_ERR_ARG, "albef: %s is not an ALBEF config", cfg->name);
    m->cfg = *cfg;
    m->seed = seed;
    const vlt_albef_cfg *a = &cfg->albef;
    const vlt_bert_cfg *bc = &cfg->bert;
    int E = a->embed_dim, Wv = a->vision_width, Wt = bc->hidden_size;
    vlt_params *p = &m->params;
    vlt_params_init(p);
    vlt_status s = load_vocab(m);
    // ALBEF's state_dict order: its own parameter and buffers, then the modules as registered.
    if (s == VLT_OK) m->temp = vlt_params_new(p, "temp", 0, NULL);
    if (s == VLT_OK) m->image_queue = state(p, VLT_F32, 2, VLT_SHAPE(E, a->queue_size), "image_queue");
    if (s == VLT_OK) m->text_queue = state(p, VLT_F32, 2, VLT_SHAPE(E, a->queue_size), "text_queue");
    if (s == VLT_OK) m->queue_ptr = state(p, VLT_I32, 1, VLT_SHAPE(1), "queue_ptr");
    if (s == VLT_OK && (!m->temp || !m->image_queue || !m->text_queue || !m->queue_ptr)) s = vlt_error_code();
    if (s == VLT_OK)
        s = vlt_deit_init(&m->visual, p, "visual_encoder", a->image_res, a->patch_size, Wv, a->vision_depth,
                          a->vision_heads, a->mlp_ratio, seed, true);
    if (s == VLT_OK) s = vlt_bert_init(&m->text, p, "text_encoder", bc, seed, true);
    if (s == VLT_OK) s = linear(p, "vision_proj", E, Wv, &m->vision_proj_w, &m->vision_proj_b, seed);
    if (s == VLT_OK) s = linear(p, "text_proj", E, Wt, &m->text_proj_w, &m->text_proj_b, seed);
    if (s == VLT_OK) s = linear(p, "itm_head", 2, Wt, &m->itm_w, &m->itm_b, seed);
    int first_m = p->n;
    if (s == VLT_OK)
        s = vlt_deit_init(&m->visual_m, p, "visual_encoder_m", a->image_res, a->patch_size, Wv, a->vision_depth,
                          a->vision_heads, a->mlp_ratio, seed, false);   // copies: filled by copy_params
    if (s == VLT_OK) s = linear(p, "vision_proj_m", E, Wv, &m->vision_proj_m_w, &m->vision_proj_m_b, seed);
    if (s == VLT_OK) s = vlt_bert_init(&m->text_m, p, "text_encoder_m", bc, seed, false);
    if (s == VLT_OK) s = linear(p, "text_proj_m", E, Wt, &m->text_proj_m_w, &m->text_proj_m_b, seed);
    if (s == VLT_OK) s = build_pairs(m);
    if (s == VLT_OK) {
        m->logit_scale = vlt_tensor_new(VLT_F32, VLT_CPU, 0, NULL, "albef.logit_scale");
        if (!m->logit_scale) s = vlt_error_code();
    }
    if (s != VLT_OK) {
        vlt_albef_free(m);
        return s;
    }
    freeze_prefix(p, first_m);
    vlt_albef_copy_params(m);   // host tensors of one shape each: cannot fail
    vlt_f32(m->temp)[0] = a->temp;
    init_queue(m->image_queue, seed);
    init_queue(m->text_queue, seed);
    update_logit_scale(m, a->temp);
    m->ema_pending = true;   // ALBEF's first forward runs the EMA too (of θ_0 with itself)
    return VLT_OK;
}

void vlt_albef_free(vlt_albef *m) {
    vlt_params_free(&m->params);
    free(m->online);
    free(m->momentum);
    vlt_tensor_free(m->pend_img);
    vlt_tensor_free(m->pend_txt);
    vlt_tensor_free(m->logit_scale);
    vlt_bert_tokenizer_free(m->tok);
    memset(m, 0, sizeof *m);
}

static vlt_status momentum_update(vlt_albef *m) {
    return vlt_momentum_ema(m->online, m->momentum, m->n_pairs, m->cfg.albef.momentum);
}

// ---- draws ----
int vlt_albef_mask_tokens(const vlt_albef *m, const int32_t *ids, int B, int T, uint64_t step, int rank,
                          int32_t *mlm_ids, int32_t *labels) {
    const vlt_albef_cfg *a = &m->cfg.albef;
    int V = m->cfg.bert.vocab_size, pad = m->cfg.bert.pad_token_id, n = 0;
    uint64_t s_mask = vlt_rng_stream(VLT_RNG_MASK, step, DRAW_MASK + DRAW_KINDS * (uint64_t)rank);
    uint64_t s_rep = vlt_rng_stream(VLT_RNG_MASK, step, DRAW_REPLACE + DRAW_KINDS * (uint64_t)rank);
    uint64_t s_word = vlt_rng_stream(VLT_RNG_MASK, step, DRAW_RANDOM_WORD + DRAW_KINDS * (uint64_t)rank);
    for (int64_t i = 0; i < (int64_t)B * T; i++) {
        int32_t tok = ids[i];
        mlm_ids[i] = tok;
        labels[i] = -100;
        if (tok == pad || tok == a->cls_token_id || tok == a->sep_token_id) continue;
        if (!(vlt_rng_uniform(m->seed, s_mask, (uint64_t)i) < a->mlm_probability)) continue;
        labels[i] = tok;
        n++;
        float r = vlt_rng_uniform(m->seed, s_rep, (uint64_t)i);
        if (r < 0.8f) mlm_ids[i] = a->mask_token_id;
        else if (r < 0.9f) mlm_ids[i] = (int32_t)vlt_rng_below(m->seed, s_word, (uint64_t)i, (uint64_t)V);
    }
    return n;
}

void vlt_albef_sample_negatives(const float *sim, int B, uint64_t seed, uint64_t step, int which, int32_t *neg) {
    uint64_t st = vlt_rng_stream(VLT_RNG_MASK, step, which);
    double *w = malloc(sizeof(double) * (size_t)B);
    for (int b = 0; b < B; b++) {
        const float *row = sim + (size_t)b * B;
        double mx = -INFINITY, tot = 0;
        for (int j = 0; j < B; j++) mx = fmax(mx, row[j]);
        for (int j = 0; j < B; j++) tot += w[j] = exp((double)row[j] - mx);
        for (int j = 0; j < B; j++) w[j] /= tot;
        w[b] = 0;   // the positive is never its own negative
        // ALBEF adds nothing here; torch.multinomial normalizes the zeroed row.
        double sum = 0;
        for (int j = 0; j < B; j++) sum += w[j];
        int pick = b == 0 ? 1 : 0;
        if (sum > 0) {
            double u = vlt_rng_uniform(seed, st, (uint64_t)b) * sum, c = 0;
            for (int j = 0; j < B; j++) {
                if (w[j] <= 0) continue;
                c += w[j];
                pick = j;
                if (u < c) break;
            }
        }
        neg[b] = pick;
    }
    free(w);
}

// ---- forward ----
static vlt_tensor *cls_of(vlt_tensor *x) {
    if (!x) return NULL;
    return vlt_reshape(vlt_slice(x, 1, 0, 1), 2, VLT_SHAPE(x->shape[0], x->shape[2]));
}

static vlt_tensor *proj_norm(vlt_tensor *x, vlt_tensor *w, vlt_tensor *b) {
    return vlt_l2_normalize(vlt_linear(cls_of(x), w, b), 1e-12f);
}

// x (B, ...) -> rows idx (n) of it, (n, ...), with gradient.
static vlt_tensor *gather_batch(vlt_tensor *x, vlt_tensor *idx) {
    if (!x || !idx) return NULL;
    int B = x->shape[0];
    int64_t row = x->numel / B;
    int shape[VLT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[0] = idx->shape[0];
    vlt_tensor *g = vlt_embedding(vlt_reshape(x, 2, VLT_SHAPE(B, (int)row)), idx);
    return vlt_reshape(g, x->ndim, shape);
}

static vlt_tensor *host_i32(int ndim, const int *shape) {
    return vlt_tensor_new_activation(VLT_I32, VLT_CPU, ndim, shape);
}

// -sum(log_softmax(logits) * targets, -1).mean(): soft-target cross-entropy.
static vlt_tensor *soft_ce(vlt_tensor *logits, vlt_tensor *targets) {
    return vlt_scale(vlt_mean_all(vlt_sum_last(vlt_mul(vlt_log_softmax(logits), targets))), -1.0f);
}

// The pending rows live on the queues' device: on the GPU the features are copied device to
// device and after_step's enqueue is a kernel (no host round trip).
static vlt_status stash_momentum_features(vlt_albef *m, vlt_tensor *img, vlt_tensor *txt) {
    int B = img->shape[0], E = img->shape[1];
    vlt_device dev = m->image_queue->device;
    vlt_tensor **pend[2] = {&m->pend_img, &m->pend_txt};
    int cap = m->pend_img ? m->pend_img->shape[0] : 0;
    if (m->pend_n + B > cap || m->pend_img->device != dev) {
        int nc = cap ? cap : 64;
        while (nc < m->pend_n + B) nc *= 2;
        for (int k = 0; k < 2; k++) {
            vlt_tensor *t = vlt_tensor_new(VLT_F32, dev, 2, VLT_SHAPE(nc, E), k ? "albef.pending_text" : "albef.pending_image");
            if (!t) return vlt_error_code();
            vlt_status s = m->pend_n ? vlt_tensor_copy(vlt_view_slice0(t, 0, m->pend_n),
                                                       vlt_view_slice0(*pend[k], 0, m->pend_n))
                                     : VLT_OK;
            if (s != VLT_OK) {
                vlt_tensor_free(t);
                return s;
            }
            vlt_tensor_free(*pend[k]);
            *pend[k] = t;
        }
    }
    VLT_TRY(vlt_tensor_copy(vlt_view_slice0(m->pend_img, m->pend_n, B), img));
    VLT_TRY(vlt_tensor_copy(vlt_view_slice0(m->pend_txt, m->pend_n, B), txt));
    m->pend_n += B;
    return VLT_OK;
}

static vlt_status check_idx(vlt_tensor *t, int B, const char *name) {
    if (!t) return VLT_OK;
    if (t->dtype != VLT_I32 || t->numel != B || t->device != VLT_CPU)
        return vlt_error_set(VLT_ERR_SHAPE, "albef: %s must be %d i32 values on the host", name, B);
    for (int b = 0; b < B; b++)
        if (vlt_i32(t)[b] < 0 || vlt_i32(t)[b] >= B)
            return vlt_error_set(VLT_ERR_ARG, "albef: %s[%d] = %d is outside the batch of %d", name, b, vlt_i32(t)[b], B);
    return VLT_OK;
}

static vlt_status check_ids(vlt_tensor *t, int B, int T, const char *name) {
    if (!t) return VLT_OK;
    if (t->dtype != VLT_I32 || t->ndim != 2 || t->shape[0] != B || t->shape[1] != T || t->device != VLT_CPU)
        return vlt_error_set(VLT_ERR_SHAPE, "albef: %s must be i32 (%d, %d) on the host", name, B, T);
    return VLT_OK;
}

// ---- the device ----
// The model's device is its parameters'. Batch tensors may come on either (the trainer sends the
// whole batch to the GPU): the draws, masks and counts read host copies (one small copy back of
// each i32 field), and what the host builds (key-padding masks, negative and MLM indices, labels)
// goes to the model's device as a step activation. CPU models: both are the identity.
static vlt_tensor *host_of(vlt_tensor *t) {
    if (!t || t->device == VLT_CPU) return t;
    vlt_tensor *h = vlt_tensor_new_activation(t->dtype, VLT_CPU, t->ndim, t->shape);
    return h && vlt_tensor_copy(h, t) == VLT_OK ? h : NULL;
}

static vlt_tensor *on_dev(vlt_tensor *x, vlt_device dev) { return x && x->device != dev ? vlt_to_device(x, dev) : x; }

static vlt_device model_device(const vlt_albef *m) { return m->temp->device; }

// The device formulation on a host model too (vlt_albef_set_device_path, for tests).
static bool g_device_path;

void vlt_albef_set_device_path(bool on) {
    g_device_path = on;
    vlt_bert_set_device_path(on);
}

// The device form of the targets' loop in vlt_albef_forward: alpha·t + (1 − alpha)·[j == b]
// with the same f32 operations (alpha·t rounded, then the sum with 1 − alpha or 0): the B × B
// block holding the diagonal gets a host-built (1 − alpha)·I added, the queue columns are only
// scaled. Under no-grad.
static vlt_tensor *mix_targets(vlt_tensor *t, float alpha, int B) {
    if (!t) return NULL;
    int K = t->shape[1];
    vlt_tensor *eye = vlt_tensor_new_activation(VLT_F32, VLT_CPU, 2, VLT_SHAPE(B, B));
    if (!eye) return NULL;
    memset(eye->data, 0, sizeof(float) * (size_t)B * B);
    for (int b = 0; b < B; b++) vlt_f32(eye)[(size_t)b * B + b] = 1.0f - alpha;
    vlt_tensor *head = vlt_add(vlt_scale(vlt_slice(t, 1, 0, B), alpha), vlt_to_device(eye, t->device));
    if (K == B) return head;
    return vlt_concat((vlt_tensor *[]){head, vlt_scale(vlt_slice(t, 1, B, K - B), alpha)}, 2, 1);
}

static vlt_status forward(vlt_albef *m, const vlt_albef_inputs *in, vlt_albef_output *out) {
    memset(out, 0, sizeof *out);
    vlt_tensor *images = in->images, *ids = in->ids;
    if (!images || !ids) return vlt_error_code() ? vlt_error_code() : vlt_error_set(VLT_ERR_ARG, "albef: no batch");
    const vlt_device dev = model_device(m);
    const bool gpu = dev != VLT_CPU || g_device_path;
    vlt_tensor *ids_h = ids->dtype == VLT_I32 ? host_of(ids) : ids;
    if (!ids_h) return vlt_error_code();
    if (ids_h->dtype != VLT_I32 || ids_h->ndim != 2 || images->ndim != 4 || images->shape[0] != ids_h->shape[0])
        return vlt_error_set(VLT_ERR_SHAPE, "albef: images (B, 3, S, S) and i32 ids (B, T) with the same B");
    const int B = ids_h->shape[0], T = ids_h->shape[1], E = m->cfg.albef.embed_dim, W = m->cfg.bert.hidden_size;
    if (B < 2) return vlt_error_set(VLT_ERR_ARG, "albef: a batch needs at least 2 pairs (hard negatives), has %d", B);
    vlt_tensor *atts_h = host_of(in->atts), *mlm_ids_h = host_of(in->mlm_ids), *labels_h = host_of(in->mlm_labels);
    vlt_tensor *neg_img_h = host_of(in->neg_image_idx), *neg_txt_h = host_of(in->neg_text_idx);
    if (!atts_h != !in->atts || !mlm_ids_h != !in->mlm_ids || !labels_h != !in->mlm_labels ||
        !neg_img_h != !in->neg_image_idx || !neg_txt_h != !in->neg_text_idx)
        return vlt_error_code();
    VLT_TRY(check_ids(atts_h, B, T, "text_atts"));
    VLT_TRY(check_ids(mlm_ids_h, B, T, "mlm_ids"));
    VLT_TRY(check_ids(labels_h, B, T, "mlm_labels"));
    VLT_TRY(check_idx(neg_img_h, B, "neg_image_idx"));
    VLT_TRY(check_idx(neg_txt_h, B, "neg_text_idx"));
    if (!in->mlm_ids != !in->mlm_labels)
        return vlt_error_set(VLT_ERR_ARG, "albef: mlm_ids and mlm_labels come together");
    if (!in->neg_image_idx != !in->neg_text_idx)
        return vlt_error_set(VLT_ERR_ARG, "albef: neg_image_idx and neg_text_idx come together");
    const float alpha = in->alpha;
    images = on_dev(images, dev);
    vlt_tensor *ids_d = on_dev(ids, dev);
    if (!images || !ids_d) return vlt_error_code();

    // temp clamped before each forward, then the EMA (once per optimizer step). On the GPU temp is
    // read back (one 4-byte copy: the targets' 1 / temp is a host scalar) and written when clamped.
    const float temp0 = gpu ? vlt_tensor_item(m->temp, 0) : vlt_f32(m->temp)[0];
    const float temp = fminf(fmaxf(temp0, 0.001f), 0.5f);
    if (!gpu) vlt_f32(m->temp)[0] = temp;
    else if (!(temp == temp0)) vlt_tensor_set_item(m->temp, 0, temp);
    update_logit_scale(m, temp);
    if (m->ema_pending) {
        VLT_TRY(momentum_update(m));
        m->ema_pending = false;
    }

    vlt_tensor *atts = atts_h;
    if (!atts) {
        atts = host_i32(2, VLT_SHAPE(B, T));
        if (!atts) return vlt_error_code();
        for (int64_t i = 0; i < (int64_t)B * T; i++) vlt_i32(atts)[i] = vlt_i32(ids_h)[i] != m->cfg.bert.pad_token_id;
    }
    vlt_tensor *text_pad = on_dev(vlt_bert_key_pad(atts), dev);

    // ---- online encoders ----
    vlt_tensor *image_embeds = vlt_deit_forward(&m->visual, images);                  // (B, N, Wv)
    vlt_tensor *image_feat = proj_norm(image_embeds, m->vision_proj_w, m->vision_proj_b);
    vlt_tensor *text_embeds = vlt_bert_forward(&m->text, VLT_BERT_TEXT, ids_d, text_pad, NULL, NULL);
    vlt_tensor *text_feat = proj_norm(text_embeds, m->text_proj_w, m->text_proj_b);
    if (!image_feat || !text_feat) return vlt_error_code();

    // ---- momentum encoders and distillation targets ----
    vlt_no_grad_enter();
    vlt_tensor *image_embeds_m = vlt_deit_forward(&m->visual_m, images);
    vlt_tensor *image_feat_m = proj_norm(image_embeds_m, m->vision_proj_m_w, m->vision_proj_m_b);
    vlt_tensor *text_m = vlt_bert_forward(&m->text_m, VLT_BERT_TEXT, ids_d, text_pad, NULL, NULL);
    vlt_tensor *text_feat_m = proj_norm(text_m, m->text_proj_m_w, m->text_proj_m_b);
    vlt_tensor *image_feat_all = vlt_concat((vlt_tensor *[]){vlt_transpose(image_feat_m, 0, 1), m->image_queue}, 2, 1);
    vlt_tensor *text_feat_all = vlt_concat((vlt_tensor *[]){vlt_transpose(text_feat_m, 0, 1), m->text_queue}, 2, 1);
    vlt_tensor *tgt_i2t = vlt_softmax(vlt_scale(vlt_matmul(image_feat_m, text_feat_all, false, false), 1.0f / temp));
    vlt_tensor *tgt_t2i = vlt_softmax(vlt_scale(vlt_matmul(text_feat_m, image_feat_all, false, false), 1.0f / temp));
    if (gpu) {
        tgt_i2t = mix_targets(tgt_i2t, alpha, B);
        tgt_t2i = mix_targets(tgt_t2i, alpha, B);
    }
    vlt_no_grad_exit();
    if (!tgt_i2t || !tgt_t2i) return vlt_error_code();
    const int K = tgt_i2t->shape[1];   // B + Q
    if (!gpu)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < K; j++) {
                float *a = vlt_f32(tgt_i2t) + (size_t)b * K + j, *c = vlt_f32(tgt_t2i) + (size_t)b * K + j;
                *a = alpha * *a + (j == b ? 1.0f - alpha : 0.0f);
                *c = alpha * *c + (j == b ? 1.0f - alpha : 0.0f);
            }

    // ---- ITC ----
    vlt_tensor *inv_temp = vlt_exp(vlt_scale(vlt_log(m->temp), -1.0f));   // 1 / temp, with its gradient
    vlt_tensor *sim_i2t = vlt_mul(vlt_matmul(image_feat, text_feat_all, false, false), inv_temp);
    vlt_tensor *sim_t2i = vlt_mul(vlt_matmul(text_feat, image_feat_all, false, false), inv_temp);
    out->loss_itc = vlt_scale(vlt_add(soft_ce(sim_i2t, tgt_i2t), soft_ce(sim_t2i, tgt_t2i)), 0.5f);
    if (!out->loss_itc) return vlt_error_code();
    if (in->all_gather) {   // every rank's momentum features go into every rank's queues
        vlt_no_grad_enter();
        vlt_tensor *gi = in->all_gather(in->gather_ctx, image_feat_m), *gt = in->all_gather(in->gather_ctx, text_feat_m);
        vlt_no_grad_exit();
        if (!gi || !gt) return vlt_error_code();
        VLT_TRY(stash_momentum_features(m, gi, gt));
    } else {
        VLT_TRY(stash_momentum_features(m, image_feat_m, text_feat_m));
    }

    // ---- ITM with hard negatives ----
    // Drawn on the host from the in-batch similarities: on the GPU their B × B blocks come back
    // (2·B² floats, one synchronising copy each) and the indices go out (2·B ints).
    vlt_tensor *neg_img = neg_img_h, *neg_txt = neg_txt_h;
    if (!neg_img) {
        neg_img = host_i32(1, VLT_SHAPE(B));
        neg_txt = host_i32(1, VLT_SHAPE(B));
        float *si = malloc(sizeof(float) * (size_t)B * B), *st = malloc(sizeof(float) * (size_t)B * B);
        if (!neg_img || !neg_txt || !si || !st) {
            free(si);
            free(st);
            return vlt_error_set(VLT_ERR_NOMEM, "albef: out of memory");
        }
        if (gpu) {
            vlt_no_grad_enter();
            vlt_tensor *bi = vlt_slice(sim_i2t, 1, 0, B), *bt = vlt_slice(sim_t2i, 1, 0, B);
            vlt_no_grad_exit();
            if (bi && bt) {
                vlt_tensor_read_f32(si, bi, (int64_t)B * B);
                vlt_tensor_read_f32(st, bt, (int64_t)B * B);
            } else {
                free(si);
                free(st);
                return vlt_error_code();
            }
        } else {
            for (int b = 0; b < B; b++)
                for (int j = 0; j < B; j++) {
                    si[(size_t)b * B + j] = vlt_f32(sim_i2t)[(size_t)b * K + j];
                    st[(size_t)b * B + j] = vlt_f32(sim_t2i)[(size_t)b * K + j];
                }
        }
        int k = DRAW_KINDS * in->rank;
        vlt_albef_sample_negatives(st, B, m->seed, in->step, DRAW_NEG_IMAGE + k, vlt_i32(neg_img));   // for each text
        vlt_albef_sample_negatives(si, B, m->seed, in->step, DRAW_NEG_TEXT + k, vlt_i32(neg_txt));    // for each image
        free(si);
        free(st);
    }
    // rows: B positives (text b, image b), B (text b, negative image), B (negative text, image b)
    vlt_tensor *text_all =
        vlt_concat((vlt_tensor *[]){text_embeds, text_embeds, gather_batch(text_embeds, on_dev(neg_txt, dev))}, 3, 0);
    vlt_tensor *image_all =
        vlt_concat((vlt_tensor *[]){image_embeds, gather_batch(image_embeds, on_dev(neg_img, dev)), image_embeds}, 3, 0);
    vlt_tensor *atts_all = host_i32(2, VLT_SHAPE(3 * B, T));
    if (!atts_all) return vlt_error_code();
    for (int r = 0; r < 3 * B; r++) {
        int src = r < 2 * B ? r % B : vlt_i32(neg_txt)[r - 2 * B];
        memcpy(vlt_i32(atts_all) + (size_t)r * T, vlt_i32(atts) + (size_t)src * T, sizeof(int32_t) * (size_t)T);
    }
    vlt_tensor *fused = vlt_bert_forward(&m->text, VLT_BERT_FUSION, text_all, on_dev(vlt_bert_key_pad(atts_all), dev),
                                         image_all, NULL);
    vlt_tensor *vl = vlt_linear(cls_of(fused), m->itm_w, m->itm_b);                      // (3B, 2)
    vlt_tensor *itm_labels = host_i32(1, VLT_SHAPE(3 * B));
    if (!vl || !itm_labels) return vlt_error_code();
    for (int r = 0; r < 3 * B; r++) vlt_i32(itm_labels)[r] = r < B;
    out->loss_itm = vlt_cross_entropy(vl, on_dev(itm_labels, dev), -100, 0.0f);
    vlt_tensor *vl_h = host_of(vl);   // (3B, 2): one small copy on the GPU
    if (!vl_h) return vlt_error_code();
    int right = 0;
    for (int r = 0; r < 3 * B; r++) {
        const float *o = vlt_f32(vl_h) + 2 * r;
        right += (o[1] > o[0]) == (r < B);
    }
    out->itm_acc = (float)right / (3 * B);

    // ---- MLM with distillation ----
    vlt_tensor *mlm_ids = mlm_ids_h, *labels = labels_h;
    if (!mlm_ids) {
        if (m->cfg.albef.mask_token_id < 0 || m->cfg.albef.cls_token_id < 0 || m->cfg.albef.sep_token_id < 0)
            return vlt_error_set(VLT_ERR_ARG, "albef: MLM masking needs albef.cls_token_id, sep_token_id and "
                                              "mask_token_id (in the model config, or from the tokenizer)");
        mlm_ids = host_i32(2, VLT_SHAPE(B, T));
        labels = host_i32(2, VLT_SHAPE(B, T));
        if (!mlm_ids || !labels) return vlt_error_code();
        vlt_albef_mask_tokens(m, vlt_i32(ids_h), B, T, in->step, in->rank, vlt_i32(mlm_ids), vlt_i32(labels));
    }
    int M = 0;
    for (int64_t i = 0; i < (int64_t)B * T; i++) M += vlt_i32(labels)[i] != -100;
    out->mlm_count = M;
    if (M == 0) {
        out->loss_mlm = on_dev(vlt_full(1, VLT_SHAPE(1), 0.0f), dev);
    } else {
        vlt_tensor *pos = host_i32(1, VLT_SHAPE(M)), *tgt = host_i32(1, VLT_SHAPE(M));
        if (!pos || !tgt) return vlt_error_code();
        for (int64_t i = 0, k = 0; i < (int64_t)B * T; i++)
            if (vlt_i32(labels)[i] != -100) {
                int32_t lab = vlt_i32(labels)[i];
                if (lab < 0 || lab >= m->cfg.bert.vocab_size)
                    return vlt_error_set(VLT_ERR_ARG, "albef: mlm label %d at %lld is outside the vocabulary (%d)", lab,
                                         (long long)i, m->cfg.bert.vocab_size);
                vlt_i32(pos)[k] = (int32_t)i;
                vlt_i32(tgt)[k++] = lab;
            }
        vlt_tensor *mlm_ids_d = on_dev(mlm_ids, dev), *pos_d = on_dev(pos, dev);
        // only the masked positions go through the head: the losses read nothing else
        vlt_no_grad_enter();
        vlt_tensor *h_m = vlt_bert_forward(&m->text_m, VLT_BERT_MULTI_MODAL, mlm_ids_d, text_pad, image_embeds_m, NULL);
        vlt_tensor *soft =
            vlt_softmax(vlt_bert_mlm_logits(&m->text_m, vlt_embedding(vlt_reshape(h_m, 2, VLT_SHAPE(B * T, W)), pos_d)));
        vlt_no_grad_exit();
        vlt_tensor *h = vlt_bert_forward(&m->text, VLT_BERT_MULTI_MODAL, mlm_ids_d, text_pad, image_embeds, NULL);
        vlt_tensor *logits = vlt_bert_mlm_logits(&m->text, vlt_embedding(vlt_reshape(h, 2, VLT_SHAPE(B * T, W)), pos_d));
        vlt_tensor *ce = vlt_cross_entropy(logits, on_dev(tgt, dev), -100, 0.0f);
        out->loss_mlm = vlt_add(vlt_scale(ce, 1.0f - alpha), vlt_scale(soft_ce(logits, soft), alpha));
        if (!out->loss_mlm) return vlt_error_code();
        int V = logits->shape[1], ok = 0;
        if (gpu) {   // the argmax on the device, M indices back
            vlt_no_grad_enter();
            vlt_tensor *best = host_of(vlt_argmax_last(logits));
            vlt_no_grad_exit();
            if (!best) return vlt_error_code();
            for (int k = 0; k < M; k++) ok += vlt_i32(best)[k] == vlt_i32(tgt)[k];
        } else {
            for (int k = 0; k < M; k++) {
                const float *row = vlt_f32(logits) + (size_t)k * V;
                int best = 0;
                for (int v = 1; v < V; v++)
                    if (row[v] > row[best]) best = v;
                ok += best == vlt_i32(tgt)[k];
            }
        }
        out->mlm_acc = (float)ok / M;
    }
    (void)E;
    out->image_feat = image_feat;
    out->text_feat = text_feat;
    out->loss = vlt_add(vlt_add(out->loss_itc, out->loss_itm), out->loss_mlm);
    return out->loss ? VLT_OK : vlt_error_code();
}

// Ops that make tensors from nothing (vlt_full: the image encoder's class-token row) put them on
// the default device: the model's for the step, whatever the caller had set.
vlt_status vlt_albef_forward(vlt_albef *m, const vlt_albef_inputs *in, vlt_albef_output *out) {
    vlt_device was = vlt_default_device();
    if (was != model_device(m)) VLT_TRY(vlt_set_default_device(model_device(m)));
    vlt_status s = forward(m, in, out);
    if (was != model_device(m)) vlt_set_default_device(was);
    return s;
}

void vlt_albef_after_step(vlt_albef *m) {
    if (m->pend_n > 0) {
        vlt_tensor *q[2] = {m->image_queue, m->text_queue}, *r[2] = {m->pend_img, m->pend_txt};
        // shapes and devices were fixed at stash time: a failure here is a programming error
        vlt_status s = vlt_queue_enqueue(q, r, 2, m->pend_n, m->queue_ptr);
        VLT_ASSERT(s == VLT_OK, "albef: queue update: %s", vlt_error_message());
    }
    m->pend_n = 0;
    m->ema_pending = true;
}

vlt_tensor *vlt_albef_encode_image(vlt_albef *m, vlt_tensor *images) {
    return proj_norm(vlt_deit_forward(&m->visual, images), m->vision_proj_w, m->vision_proj_b);
}

vlt_tensor *vlt_albef_encode_text(vlt_albef *m, vlt_tensor *ids, vlt_tensor *atts) {
    if (!ids) return NULL;
    if (ids->dtype != VLT_I32) {
        vlt_error_set(VLT_ERR_SHAPE, "albef: ids must be i32");
        return NULL;
    }
    if (!atts) {
        vlt_tensor *ids_h = host_of(ids);
        if (!ids_h) return NULL;
        atts = vlt_tensor_new_activation(VLT_I32, VLT_CPU, ids->ndim, ids->shape);
        if (!atts) return NULL;
        for (int64_t i = 0; i < ids->numel; i++) vlt_i32(atts)[i] = vlt_i32(ids_h)[i] != m->cfg.bert.pad_token_id;
    }
    vlt_device dev = model_device(m);
    vlt_tensor *h = vlt_bert_forward(&m->text, VLT_BERT_TEXT, on_dev(ids, dev), on_dev(vlt_bert_key_pad(host_of(atts)), dev),
                                     NULL, NULL);
    return proj_norm(h, m->text_proj_w, m->text_proj_b);
}

vlt_tensor *vlt_albef_image_tokens(vlt_albef *m, vlt_tensor *images) { return vlt_deit_forward(&m->visual, images); }

vlt_tensor *vlt_albef_itm_score(vlt_albef *m, vlt_tensor *tokens, vlt_tensor *ids) {
    if (!tokens || !ids) return NULL;
    if (ids->dtype != VLT_I32 || ids->ndim != 2 || tokens->ndim != 3 || tokens->shape[0] != ids->shape[0]) {
        vlt_error_set(VLT_ERR_SHAPE, "albef: matching needs image tokens (n, N, W) and i32 ids (n, T), the same n");
        return NULL;
    }
    vlt_device dev = model_device(m);
    vlt_tensor *atts = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, ids->shape), *ids_h = host_of(ids);
    if (!atts || !ids_h) return NULL;
    for (int64_t i = 0; i < ids->numel; i++) vlt_i32(atts)[i] = vlt_i32(ids_h)[i] != m->cfg.bert.pad_token_id;
    vlt_tensor *pad = on_dev(vlt_bert_key_pad(atts), dev);
    ids = on_dev(ids, dev);
    tokens = on_dev(tokens, dev);
    vlt_tensor *h = vlt_bert_forward(&m->text, VLT_BERT_TEXT, ids, pad, NULL, NULL);
    h = vlt_bert_forward(&m->text, VLT_BERT_FUSION, h, pad, tokens, NULL);
    // the raw positive-class logit, as the authors' Retrieval.py evaluation() scores the candidates
    // (itm_head(...)[:, 1]; not the softmax, whose order differs: it depends on both logits)
    vlt_tensor *p = vlt_linear(cls_of(h), m->itm_w, m->itm_b);       // (n, 2)
    if (!p) return NULL;
    int n = ids->shape[0];
    return vlt_reshape(vlt_slice(p, 1, 1, 1), 1, VLT_SHAPE(n));
}

int vlt_albef_gradcam_layer(const vlt_albef *m) {
    // not the last layer: the ITM head reads only its [CLS] row, so its other tokens get no gradient
    int f = m->cfg.bert.fusion_layer, l = f + 2, L = m->cfg.bert.num_hidden_layers;
    if (l > L - 2) l = L - 2;
    return l < f ? f : l;
}

vlt_status vlt_albef_gradcam(vlt_albef *m, vlt_tensor *image, vlt_tensor *ids, int layer, float *maps, float *score) {
    if (!image || !ids || image->ndim != 4 || image->shape[0] != 1 || ids->dtype != VLT_I32 || ids->ndim != 2 ||
        ids->shape[0] != 1)
        return vlt_error_set(VLT_ERR_SHAPE, "albef: Grad-CAM takes one image (1, 3, S, S) and i32 ids (1, T)");
    int T = ids->shape[1], G2 = m->visual.grid * m->visual.grid;
    vlt_device dev = model_device(m);
    vlt_tensor *atts = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, ids->shape), *probs = NULL, *ids_h = host_of(ids);
    if (!atts || !ids_h) return vlt_error_code();
    for (int t = 0; t < T; t++) vlt_i32(atts)[t] = vlt_i32(ids_h)[t] != m->cfg.bert.pad_token_id;
    ids = on_dev(ids, dev);
    vlt_tensor *pad = on_dev(vlt_bert_key_pad(atts), dev), *tokens = vlt_deit_forward(&m->visual, on_dev(image, dev));
    vlt_tensor *h = vlt_bert_forward(&m->text, VLT_BERT_TEXT, ids, pad, NULL, NULL);
    h = vlt_bert_forward_probe(&m->text, VLT_BERT_FUSION, h, pad, tokens, layer, &probs);
    // the raw positive-class ITM logit, as the authors' visualisation backpropagates
    vlt_tensor *sc = vlt_sum_all(vlt_slice(vlt_linear(cls_of(h), m->itm_w, m->itm_b), 1, 1, 1));
    if (!sc) return vlt_error_code();
    *score = vlt_tensor_item(sc, 0);
    vlt_zero_grad(m->params.t, m->params.n);
    VLT_TRY(vlt_backward(sc));
    vlt_zero_grad(m->params.t, m->params.n);
    if (!probs->grad) return vlt_error_set(VLT_ERR_STATE, "albef: no gradient reached the cross-attention");
    // probs (1, H, T, 1 + G²): the [CLS] image token's column left out, as the authors' [..., 1:]
    int H = probs->shape[1], N = probs->shape[3];
    vlt_tensor *probs_h = host_of(probs), *grad_h = host_of(probs->grad);   // copies off the GPU
    if (!probs_h || !grad_h) return vlt_error_code();
    const float *a = vlt_f32(probs_h), *g = vlt_f32(grad_h);
    for (int t = 0; t < T; t++)
        for (int p = 0; p < G2; p++) {
            double v = 0;
            for (int hh = 0; hh < H; hh++) {
                size_t at = ((size_t)hh * T + t) * N + 1 + p;
                v += (double)a[at] * (g[at] > 0 ? g[at] : 0);
            }
            maps[(size_t)t * G2 + p] = vlt_i32(atts)[t] ? (float)(v / H) : 0.0f;
        }
    return VLT_OK;
}

// ---- loading at another image size ----
static const char *const POS_NAMES[2] = {"visual_encoder.pos_embed", "visual_encoder_m.pos_embed"};

vlt_status vlt_albef_load(vlt_albef *m, const char *path, bool lenient) {
    vlt_safetensors *f = NULL;
    VLT_TRY(vlt_safetensors_open(path, &f));
    // which pos_embeds need resizing: a file grid other than ours
    vlt_tensor *ours[2] = {m->visual.pos_embed, m->visual_m.pos_embed};
    int g0[2] = {0, 0};
    char saved[2][96];
    vlt_status s = VLT_OK;
    int W = m->visual.width, g1 = m->visual.grid;
    for (int k = 0; k < 2; k++) {
        const vlt_st_tensor *t = vlt_safetensors_get(f, POS_NAMES[k]);
        if (!t || t->ndim != 3 || t->shape[0] != 1 || t->shape[2] != W) continue;   // the strict load names it
        int64_t n = t->shape[1] - 1;
        int g = (int)llround(sqrt((double)n));
        if (g == g1) continue;
        if ((int64_t)g * g != n) {
            s = vlt_error_set(VLT_ERR_FORMAT, "%s: %s has %lld grid positions, not a square", path, POS_NAMES[k],
                              (long long)n);
            break;
        }
        g0[k] = g;
        // hidden from the strict load under another name, filled below
        memcpy(saved[k], ours[k]->name, sizeof saved[k]);
        snprintf(ours[k]->name, sizeof ours[k]->name, "%.60s.__resized", saved[k]);
    }
    vlt_st_report rep = {0};
    if (s == VLT_OK) s = vlt_safetensors_load_params_from(f, &m->params, true, &rep);
    // the strict check, with the resized names accounted for
    int expect_missing = 0, expect_unexpected = 0;
    for (int k = 0; k < 2; k++) expect_missing += g0[k] > 0, expect_unexpected += g0[k] > 0;
    if (s == VLT_OK && !lenient && (rep.n_missing != expect_missing || rep.n_unexpected != expect_unexpected ||
                                    rep.n_misshaped)) {
        char buf[2048];
        s = vlt_error_set(VLT_ERR_FORMAT, "%s: %s", path, vlt_st_report_format(&rep, buf, sizeof buf));
    }
    for (int k = 0; k < 2; k++) {
        if (!g0[k]) continue;
        memcpy(ours[k]->name, saved[k], sizeof saved[k]);
        if (s != VLT_OK) continue;
        float *src = malloc(sizeof(float) * (size_t)(g0[k] * g0[k] + 1) * W);
        if (!src) {
            s = vlt_error_set(VLT_ERR_NOMEM, "albef: out of memory");
            continue;
        }
        s = vlt_safetensors_read_f32(f, POS_NAMES[k], src, (int64_t)(g0[k] * g0[k] + 1) * W);
        if (s == VLT_OK) vlt_interpolate_pos_embed(src, g0[k], W, g1, vlt_f32(ours[k]));
        free(src);
    }
    vlt_st_report_free(&rep);
    vlt_safetensors_close(f);
    return s;
}
