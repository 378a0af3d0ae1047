// generate.c — CoCa caption generation on a key/value cache (see generate.h).
#include "layers/generate.h"

#include "autograd/device.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

vlt_generate_cfg vlt_generate_defaults(void) {
    return (vlt_generate_cfg){.max_len = 30, .min_len = 5, .repetition_penalty = 1.0f, .sot_id = 49406,
                              .eos_id = 49407, .pad_id = 0, .beam_size = 1, .length_penalty = 1.0f};
}

// ---- the cache ----------------------------------------------------------------------------------
// One layout on either device: each layer's keys and values are a persistent (cap, rows, H, Dh)
// tensor on the model's device, so that the n new positions of a step are one contiguous block
// (written with one copy) and the positions so far a contiguous view (permuted to (rows, H, T,
// Dh) for the attention). Beam reordering gathers rows through vlt_embedding. The fed tokens stay
// on the host (they are chosen there), and the text tower's pad mask is built from them.

void vlt_coca_cache_free(vlt_coca_cache *c) {
    int n = c->text_layers + c->dec_layers;
    for (int i = 0; c->k && i < n; i++) { vlt_tensor_free(c->k[i]); vlt_tensor_free(c->v[i]); }
    for (int i = 0; c->xk && i < c->dec_layers; i++) { vlt_tensor_free(c->xk[i]); vlt_tensor_free(c->xv[i]); }
    free(c->k);
    free(c->v);
    free(c->xk);
    free(c->xv);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

// A persistent copy of x on its own device (the step arena is reset during generation).
static vlt_tensor *persistent_copy(vlt_tensor *x, const char *name) {
    if (!x) return NULL;
    vlt_tensor *p = vlt_tensor_new(VLT_F32, x->device, x->ndim, x->shape, name);
    if (p && vlt_tensor_copy(p, x) != VLT_OK) {
        vlt_tensor_free(p);
        return NULL;
    }
    return p;
}

// A host tensor's copy on the model's device in the device form (a step activation), else itself.
static vlt_tensor *to_model(const vlt_coca_cache *c, vlt_tensor *x) {
    return x && c->device_form ? vlt_to_device(x, c->dev) : x;
}

vlt_status vlt_coca_cache_init(vlt_coca_cache *c, vlt_coca *m, vlt_tensor *image_embs, int cap) {
    memset(c, 0, sizeof *c);
    const vlt_text_decoder *d = &m->decoder;
    int limit = m->text.context_length < d->context_length ? m->text.context_length : d->context_length;
    if (!image_embs) return vlt_error_code();
    if (image_embs->ndim != 3 || image_embs->shape[2] != d->width)
        return vlt_error_set(VLT_ERR_SHAPE, "coca cache: image tokens must be (B, N, %d)", d->width);
    if (image_embs->device != vlt_coca_device(m))
        return vlt_error_set(VLT_ERR_DEVICE, "coca cache: the image tokens are on %s, the model on %s",
                             vlt_device_name(image_embs->device), vlt_device_name(vlt_coca_device(m)));
    if (cap < 1 || cap > limit)
        return vlt_error_set(VLT_ERR_ARG, "coca cache: %d tokens do not fit the context (%d)", cap, limit);
    if (m->text.transformer.heads != d->heads || m->text.width != d->width)
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "coca cache: the text tower and decoder differ in width or heads");
    c->rows = image_embs->shape[0];
    c->cap = cap;
    c->text_layers = m->text.transformer.layers;
    c->dec_layers = d->layers;
    c->heads = d->heads;
    c->width = d->width;
    c->dh = d->width / d->heads;
    c->n_img = image_embs->shape[1];
    c->dev = vlt_coca_device(m);
    c->device_form = vlt_coca_device_form(m);
    int n = c->text_layers + c->dec_layers;
    c->k = calloc((size_t)n, sizeof(vlt_tensor *));
    c->v = calloc((size_t)n, sizeof(vlt_tensor *));
    c->xk = calloc((size_t)c->dec_layers, sizeof(vlt_tensor *));
    c->xv = calloc((size_t)c->dec_layers, sizeof(vlt_tensor *));
    c->ids = calloc((size_t)c->rows * cap, sizeof(int32_t));
    bool ok = c->k && c->v && c->xk && c->xv && c->ids;
    if (!ok) vlt_error_set(VLT_ERR_NOMEM, "coca cache: out of memory (%d rows x %d tokens)", c->rows, cap);
    for (int i = 0; ok && i < n; i++)
        ok = (c->k[i] = vlt_tensor_new(VLT_F32, c->dev, 4, VLT_SHAPE(cap, c->rows, c->heads, c->dh), "cache.k")) &&
             (c->v[i] = vlt_tensor_new(VLT_F32, c->dev, 4, VLT_SHAPE(cap, c->rows, c->heads, c->dh), "cache.v"));
    vlt_no_grad_enter();
    for (int l = 0; l < c->dec_layers && ok; l++) {
        vlt_tensor *k, *v;
        ok = vlt_cross_block_kv(&d->cross[l], image_embs, &k, &v) == VLT_OK;
        if (ok) ok = (c->xk[l] = persistent_copy(k, "cache.xk")) && (c->xv[l] = persistent_copy(v, "cache.xv"));
    }
    vlt_no_grad_exit();
    if (!ok) {
        vlt_status s = vlt_error_code();
        vlt_coca_cache_free(c);
        return s;
    }
    return VLT_OK;
}

// (B, T, 3W) -> part `which` (0 q, 1 k, 2 v) as (B, H, T, Dh)
static vlt_tensor *heads_of(vlt_tensor *qkv, int which, const vlt_coca_cache *c) {
    if (!qkv) return NULL;
    int B = qkv->shape[0], T = qkv->shape[1], W = c->width;
    vlt_tensor *s = vlt_slice(qkv, 2, which * W, W);
    return vlt_permute(vlt_reshape(s, 4, VLT_SHAPE(B, T, c->heads, c->dh)), VLT_SHAPE(0, 2, 1, 3));
}

// Writes part `which` (1 k, 2 v) of the new tokens' qkv (B, n, 3W) at positions [len, len + n)
// of cache (cap, B, H, Dh) (one permute into the rows' layout, one contiguous copy); returns the
// cached (B, H, len + n, Dh).
static vlt_tensor *append(const vlt_coca_cache *c, vlt_tensor *cache, vlt_tensor *qkv, int which, int n) {
    if (!qkv) return NULL;
    vlt_tensor *s = vlt_slice(qkv, 2, which * c->width, c->width);
    vlt_tensor *rows = vlt_permute(vlt_reshape(s, 4, VLT_SHAPE(c->rows, n, c->heads, c->dh)), VLT_SHAPE(1, 0, 2, 3));
    vlt_tensor *dst = rows ? vlt_view_slice0(cache, c->len, n) : NULL;
    if (!dst || vlt_tensor_copy(dst, rows) != VLT_OK) return NULL;
    return vlt_permute(vlt_view_slice0(cache, 0, c->len + n), VLT_SHAPE(1, 2, 0, 3));
}

// A pre-LN self-attention block on n new tokens x (B, n, W) against the cached keys/values.
static vlt_tensor *cached_block(const vlt_coca_cache *c, vlt_resblock *b, vlt_tensor *x, int layer, int n,
                                vlt_tensor *key_pad) {
    vlt_tensor *qkv = vlt_linear(vlt_layernorm(x, b->ln_1_w, b->ln_1_b, 1e-5f), b->in_proj_w, b->in_proj_b);
    vlt_tensor *q = heads_of(qkv, 0, c);
    vlt_tensor *k = append(c, c->k[layer], qkv, 1, n);
    vlt_tensor *v = append(c, c->v[layer], qkv, 2, n);
    vlt_tensor *o = vlt_attention(q, k, v, 1.0f / sqrtf((float)c->dh), true, key_pad);   // (B, H, n, Dh)
    o = vlt_reshape(vlt_permute(o, VLT_SHAPE(0, 2, 1, 3)), 3, VLT_SHAPE(c->rows, n, c->width));
    x = vlt_add(x, vlt_linear(o, b->out_proj_w, b->out_proj_b));
    return vlt_block_mlp(x, b->ln_2_w, b->ln_2_b, b->c_fc_w, b->c_fc_b, b->c_proj_w, b->c_proj_b, b->act);
}

// The step on the model's device: the next-token logits (rows, V) of the last fed position, a
// step activation there.
static vlt_tensor *step_logits(vlt_coca_cache *c, vlt_coca *m, const int32_t *ids, int n) {
    if (vlt_grad_enabled()) {
        vlt_error_set(VLT_ERR_ARG, "coca cache step: call it with grad off");
        return NULL;
    }
    if (n < 1 || c->len + n > c->cap) {
        vlt_error_set(VLT_ERR_ARG, "coca cache step: %d + %d tokens exceed the cache's %d", c->len, n, c->cap);
        return NULL;
    }
    int B = c->rows, T = c->len + n;
    for (int b = 0; b < B; b++) memcpy(c->ids + (size_t)b * c->cap + c->len, ids + (size_t)b * n, sizeof(int32_t) * (size_t)n);
    vlt_tensor *idt = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, n));
    vlt_tensor *kp = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(B, T));
    if (!idt || !kp) return NULL;
    memcpy(vlt_i32(idt), ids, sizeof(int32_t) * (size_t)B * n);
    for (int b = 0; b < B; b++)   // open_clip's legacy cls pad mask: key j masked when token j-1 is pad
        for (int j = 0; j < T; j++) vlt_i32(kp)[b * T + j] = j > 0 && c->ids[(size_t)b * c->cap + j - 1] == m->text.pad_id;
    // on the GPU: the fed ids (B x n) and the mask (B x T) go up, built on the host
    idt = to_model(c, idt);
    kp = to_model(c, kp);
    if (!idt || !kp) return NULL;
    // the text tower on the new positions (no cls, no ln_final: the decoder takes these tokens)
    vlt_tensor *x = vlt_embedding(m->text.token_embedding, idt);
    x = vlt_add(x, vlt_slice(m->text.pos_embedding, 0, c->len, n));
    for (int l = 0; l < c->text_layers; l++) x = cached_block(c, &m->text.transformer.blocks[l], x, l, n, kp);
    vlt_text_decoder *d = &m->decoder;
    for (int l = 0; l < d->layers; l++) {
        x = cached_block(c, &d->self_blocks.blocks[l], x, c->text_layers + l, n, NULL);
        x = vlt_cross_block_forward_kv(&d->cross[l], x, c->xk[l], c->xv[l]);
    }
    x = vlt_reshape(vlt_slice(x, 1, n - 1, 1), 2, VLT_SHAPE(B, c->width));
    x = vlt_matmul(vlt_layernorm(x, d->ln_final_w, d->ln_final_b, 1e-5f), d->text_projection, false, false);
    if (x) c->len = T;
    return x;
}

vlt_status vlt_coca_cache_step(vlt_coca_cache *c, vlt_coca *m, const int32_t *ids, int n, float *logits) {
    vlt_tensor *x = step_logits(c, m, ids, n);
    if (!x) return vlt_error_code();
    vlt_tensor_read_f32(logits, x, x->numel);   // (a copy back on the GPU)
    return VLT_OK;
}

vlt_status vlt_coca_cache_reorder(vlt_coca_cache *c, const int *src) {
    int B = c->rows, T = c->len, HD = c->heads * c->dh;
    int32_t *itmp = malloc(sizeof(int32_t) * (size_t)c->cap * B);
    if (!itmp) return vlt_error_set(VLT_ERR_NOMEM, "beam search: out of memory");
    for (int b = 0; b < B; b++) memcpy(itmp + (size_t)c->cap * b, c->ids + (size_t)c->cap * src[b], sizeof(int32_t) * c->cap);
    memcpy(c->ids, itmp, sizeof(int32_t) * (size_t)c->cap * B);
    free(itmp);
    if (T == 0) return VLT_OK;
    // position t of row b takes position t of row src[b]: rows t·B + src[b] of the (T·B, H·Dh) block
    vlt_tensor *idx = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 1, VLT_SHAPE(T * B));
    if (!idx) return vlt_error_code();
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) vlt_i32(idx)[t * B + b] = t * B + src[b];
    if (!(idx = to_model(c, idx))) return vlt_error_code();
    for (int i = 0; i < c->text_layers + c->dec_layers; i++)
        for (int pass = 0; pass < 2; pass++) {
            vlt_tensor *all = vlt_view_reshape(vlt_view_slice0(pass ? c->v[i] : c->k[i], 0, T), 2, VLT_SHAPE(T * B, HD));
            vlt_tensor *g = all ? vlt_embedding(all, idx) : NULL;
            if (!g || vlt_tensor_copy(all, g) != VLT_OK) return vlt_error_code();
        }
    return VLT_OK;
}

// ---- logit processing --------------------------------------------------------------------------

// open_clip's processors on one row's logits l (V), prefix = the tokens so far (len, sot first).
static void process(float *l, int V, const int32_t *prefix, int len, const vlt_generate_cfg *g) {
    if (len < g->min_len && g->eos_id >= 0 && g->eos_id < V) l[g->eos_id] = -INFINITY;
    if (g->repetition_penalty == 1.0f) return;
    for (int i = 0; i < len; i++) {
        int t = prefix[i];
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = prefix[j] == t;
        if (seen || t < 0 || t >= V) continue;
        l[t] = l[t] < 0 ? l[t] * g->repetition_penalty : l[t] / g->repetition_penalty;
    }
}

// log_softmax in place
static void log_softmax(float *l, int V) {
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = fmaxf(mx, l[i]);
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)(l[i] - mx));
    float lse = mx + (float)log(s);
    for (int i = 0; i < V; i++) l[i] -= lse;
}

static int argmax(const float *l, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

static vlt_status check_gen(vlt_coca *m, vlt_tensor *images, const vlt_generate_cfg *g) {
    int V = m->decoder.vocab_size;
    int limit = m->text.context_length < m->decoder.context_length ? m->text.context_length : m->decoder.context_length;
    if (!images) return vlt_error_code();
    if (g->max_len < 2 || g->max_len - 1 > limit)
        return vlt_error_set(VLT_ERR_ARG, "generate: max_len %d must be in 2..%d (the context + 1)", g->max_len, limit + 1);
    if (g->min_len >= g->max_len)
        return vlt_error_set(VLT_ERR_ARG, "generate: min_len %d must be below max_len %d", g->min_len, g->max_len);
    if (g->sot_id < 0 || g->sot_id >= V || g->eos_id < 0 || g->eos_id >= V || g->pad_id < 0 || g->pad_id >= V)
        return vlt_error_set(VLT_ERR_ARG, "generate: sot %d, eos %d and pad %d must be token ids below %d", g->sot_id,
                             g->eos_id, g->pad_id, V);
    if (g->beam_size < 1 || g->repetition_penalty <= 0)
        return vlt_error_set(VLT_ERR_ARG, "generate: beam_size %d must be >= 1 and repetition_penalty %g > 0",
                             g->beam_size, g->repetition_penalty);
    return VLT_OK;
}

// ---- greedy ------------------------------------------------------------------------------------

// n i32 of t (any device) into dst.
static vlt_status read_i32(int32_t *dst, vlt_tensor *t, int n) {
    if (!t) return vlt_error_code();
    vlt_tensor *h = t->device == VLT_CPU ? t : vlt_tensor_new_activation(VLT_I32, VLT_CPU, t->ndim, t->shape);
    if (!h || (h != t && vlt_tensor_copy(h, t) != VLT_OK)) return vlt_error_code();
    memcpy(dst, vlt_i32(h), sizeof(int32_t) * (size_t)n);
    return VLT_OK;
}

// The minimum-length processor as a row to add on the model's device: 0, and -inf at eos (x + 0
// is x and x + -inf is -inf: the host's overwrite, bit for bit). Persistent.
static vlt_tensor *eos_block_row(const vlt_coca_cache *c, int V, int eos) {
    vlt_tensor *h = vlt_tensor_new(VLT_F32, VLT_CPU, 1, VLT_SHAPE(V), "generate.eos_block");
    if (!h) return NULL;
    vlt_f32(h)[eos] = -INFINITY;
    if (c->dev == VLT_CPU) return h;
    vlt_tensor *d = vlt_tensor_new(VLT_F32, c->dev, 1, VLT_SHAPE(V), "generate.eos_block");
    if (d && vlt_tensor_copy(d, h) != VLT_OK) {
        vlt_tensor_free(d);
        d = NULL;
    }
    vlt_tensor_free(h);
    return d;
}

// Greedy. In the device form without repetition penalty and scores the choice is made on the
// device (the minimum-length row added, vlt_argmax_last: the first maximum, as the host's) and
// only the N chosen ids come back per step; otherwise the (N, V) logits come back and the host's
// processors choose.
static vlt_status greedy(vlt_coca *m, vlt_tensor *embs, const vlt_generate_cfg *g, int32_t *out, float *scores) {
    int N = embs->shape[0], L = g->max_len, V = m->decoder.vocab_size;
    vlt_coca_cache c;
    VLT_TRY(vlt_coca_cache_init(&c, m, embs, L - 1));
    const bool on_device = c.device_form && g->repetition_penalty == 1.0f && !scores;
    float *logits = on_device ? NULL : malloc(sizeof(float) * (size_t)N * V);
    int32_t *feed = malloc(sizeof(int32_t) * (size_t)N), *choice = malloc(sizeof(int32_t) * (size_t)N);
    bool *done = calloc((size_t)N, sizeof(bool));
    vlt_tensor *eos_block = on_device && g->min_len > 1 ? eos_block_row(&c, V, g->eos_id) : NULL;
    vlt_status s = (logits || on_device) && feed && choice && done ? VLT_OK
                                                                    : vlt_error_set(VLT_ERR_NOMEM, "generate: out of memory");
    if (s == VLT_OK && on_device && g->min_len > 1 && !eos_block) s = vlt_error_code();
    for (int b = 0; b < N; b++) {
        for (int t = 0; t < L; t++) out[(size_t)b * L + t] = t ? g->pad_id : g->sot_id;
        if (scores) scores[b] = 0;
    }
    for (int cur = 1; cur < L && s == VLT_OK; cur++) {
        int live = 0;
        for (int b = 0; b < N; b++) {
            feed[b] = out[(size_t)b * L + cur - 1];
            live += !done[b];
        }
        if (!live) break;
        if (on_device) {
            vlt_tensor *lg = step_logits(&c, m, feed, 1);
            if (lg && cur < g->min_len) lg = vlt_add(lg, eos_block);
            s = read_i32(choice, vlt_argmax_last(lg), N);
        } else {
            s = vlt_coca_cache_step(&c, m, feed, 1, logits);
        }
        vlt_step_reset();
        for (int b = 0; b < N && s == VLT_OK; b++) {
            if (done[b]) continue;
            int tok;
            if (on_device) {
                tok = cur + 1 == L ? g->eos_id : choice[b];
            } else {
                float *l = logits + (size_t)b * V;
                process(l, V, out + (size_t)b * L, cur, g);
                tok = cur + 1 == L ? g->eos_id : argmax(l, V);
                if (scores) {
                    log_softmax(l, V);
                    scores[b] += l[tok];
                }
            }
            out[(size_t)b * L + cur] = tok;
            done[b] = tok == g->eos_id || tok == g->pad_id;
        }
    }
    free(logits);
    free(feed);
    free(choice);
    free(done);
    vlt_tensor_free(eos_block);
    vlt_coca_cache_free(&c);
    return s;
}

// ---- beam search -------------------------------------------------------------------------------

typedef struct {
    float score;   // sum of log-probabilities
    int beam, tok;
} cand;

typedef struct {
    int32_t *toks;   // (max_len)
    float raw, norm;
} hyp;

// Keeps the best `k` candidates (descending) in top[0..*n).
static void push_cand(cand *top, int *n, int k, cand c) {
    if (*n == k && c.score <= top[k - 1].score) return;
    int i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && top[i - 1].score < c.score) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = c;
}

static vlt_status beam_one(vlt_coca *m, vlt_tensor *embs, const vlt_generate_cfg *g, int32_t *out, float *score) {
    int K = g->beam_size, L = g->max_len, V = m->decoder.vocab_size;
    vlt_coca_cache c;
    VLT_TRY(vlt_coca_cache_init(&c, m, embs, L - 1));
    float *logits = malloc(sizeof(float) * (size_t)K * V), *bs = malloc(sizeof(float) * K);
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)K * L), *ntoks = malloc(sizeof(int32_t) * (size_t)K * L);
    int32_t *feed = malloc(sizeof(int32_t) * K), *fin_toks = malloc(sizeof(int32_t) * (size_t)K * L);
    cand *top = malloc(sizeof(cand) * 2 * K);
    hyp *fin = malloc(sizeof(hyp) * K);
    int *src = malloc(sizeof(int) * K), n_fin = 0;
    vlt_status s = logits && bs && toks && ntoks && feed && fin_toks && top && fin && src
                       ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "beam search: out of memory");
    for (int k = 0; k < K && s == VLT_OK; k++) {
        bs[k] = k ? -INFINITY : 0.0f;
        fin[k].toks = fin_toks + (size_t)k * L;
        for (int t = 0; t < L; t++) toks[(size_t)k * L + t] = t ? g->pad_id : g->sot_id;
    }
    for (int cur = 1; cur < L && s == VLT_OK; cur++) {
        for (int k = 0; k < K; k++) feed[k] = toks[(size_t)k * L + cur - 1];
        s = vlt_coca_cache_step(&c, m, feed, 1, logits);
        vlt_step_reset();
        if (s != VLT_OK) break;
        int nt = 0;
        for (int k = 0; k < K; k++) {
            if (bs[k] == -INFINITY) continue;
            float *l = logits + (size_t)k * V;
            process(l, V, toks + (size_t)k * L, cur, g);
            log_softmax(l, V);
            if (cur + 1 == L) {   // forced eos, as greedy
                push_cand(top, &nt, 2 * K, (cand){bs[k] + l[g->eos_id], k, g->eos_id});
                continue;
            }
            for (int v = 0; v < V; v++)
                if (l[v] > -INFINITY) push_cand(top, &nt, 2 * K, (cand){bs[k] + l[v], k, v});
        }
        int nb = 0;
        for (int r = 0; r < nt && nb < K; r++) {
            cand cd = top[r];
            if (cd.tok == g->eos_id || cd.tok == g->pad_id) {
                if (r >= K) continue;   // as HF: an ending outside the top K does not count
                hyp h = {NULL, cd.score, cd.score / powf((float)cur, g->length_penalty)};
                int slot = n_fin < K ? n_fin++ : -1;
                if (slot < 0) {   // replace the worst if better
                    int w = 0;
                    for (int i = 1; i < K; i++)
                        if (fin[i].norm < fin[w].norm) w = i;
                    if (fin[w].norm >= h.norm) continue;
                    slot = w;
                }
                memcpy(fin[slot].toks, toks + (size_t)cd.beam * L, sizeof(int32_t) * L);
                fin[slot].toks[cur] = cd.tok;
                fin[slot].raw = h.raw;
                fin[slot].norm = h.norm;
                continue;
            }
            memcpy(ntoks + (size_t)nb * L, toks + (size_t)cd.beam * L, sizeof(int32_t) * L);
            ntoks[(size_t)nb * L + cur] = cd.tok;
            bs[nb] = cd.score;
            src[nb++] = cd.beam;
        }
        if (nb == 0) break;
        for (int k = nb; k < K; k++) {   // fewer live beams than K: park the rest
            bs[k] = -INFINITY;
            src[k] = src[0];
            memcpy(ntoks + (size_t)k * L, ntoks, sizeof(int32_t) * L);
        }
        if ((s = vlt_coca_cache_reorder(&c, src)) != VLT_OK) break;
        memcpy(toks, ntoks, sizeof(int32_t) * (size_t)K * L);
        // done when K hypotheses are finished and no live beam can beat the worst of them
        if (n_fin == K) {
            float worst = fin[0].norm;
            for (int i = 1; i < K; i++) worst = fminf(worst, fin[i].norm);
            if (bs[0] / powf((float)(cur + 1), g->length_penalty) <= worst) break;   // HF's early_stopping=False rule
        }
    }
    if (s == VLT_OK) {
        int best = -1;
        for (int i = 0; i < n_fin; i++)
            if (best < 0 || fin[i].norm > fin[best].norm) best = i;
        if (best < 0) s = vlt_error_set(VLT_ERR_ARG, "beam search: no finished caption");
        else {
            memcpy(out, fin[best].toks, sizeof(int32_t) * L);
            *score = fin[best].raw;
        }
    }
    free(logits); free(bs); free(toks); free(ntoks); free(feed); free(fin_toks); free(top); free(fin); free(src);
    vlt_coca_cache_free(&c);
    return s;
}

// ---- entry points ------------------------------------------------------------------------------

// Image tokens of images (N, ...) as a persistent tensor on the model's device (the arena is reset
// during generation).
static vlt_tensor *image_tokens(vlt_coca *m, vlt_tensor *images) {
    vlt_tensor *embs = NULL;
    if (!vlt_coca_encode_image(m, images, false, &embs)) return NULL;
    vlt_tensor *p = persistent_copy(embs, "generate.image_embs");
    vlt_step_reset();
    return p;
}

// Image i's tokens repeated for each of k beams: (k, T, E), a step activation on embs' device
// (rows gathered through vlt_embedding).
static vlt_tensor *repeat_image(vlt_coca *m, vlt_tensor *embs, int i, int k) {
    int T = embs->shape[1], E = embs->shape[2];
    vlt_tensor *idx = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 1, VLT_SHAPE(k));
    if (!idx) return NULL;
    for (int j = 0; j < k; j++) vlt_i32(idx)[j] = i;
    if (vlt_coca_device_form(m)) idx = vlt_to_device(idx, embs->device);
    vlt_tensor *rows = vlt_view_reshape(embs, 2, VLT_SHAPE(embs->shape[0], T * E));
    return vlt_reshape(rows && idx ? vlt_embedding(rows, idx) : NULL, 3, VLT_SHAPE(k, T, E));
}

vlt_status vlt_coca_generate(vlt_coca *m, vlt_tensor *images, const vlt_generate_cfg *g, int32_t *out,
                             float *scores) {
    VLT_TRY(check_gen(m, images, g));
    vlt_no_grad_enter();
    if (images->device != vlt_coca_device(m)) images = vlt_to_device(images, vlt_coca_device(m));
    vlt_tensor *embs = images ? image_tokens(m, images) : NULL;
    vlt_status s = embs ? VLT_OK : vlt_error_code();
    if (s == VLT_OK && g->beam_size == 1) s = greedy(m, embs, g, out, scores);
    int N = embs ? embs->shape[0] : 0;
    for (int i = 0; s == VLT_OK && g->beam_size > 1 && i < N; i++) {
        vlt_tensor *rep = repeat_image(m, embs, i, g->beam_size);   // (consumed by the cache's init)
        float sc = 0;
        s = rep ? beam_one(m, rep, g, out + (size_t)i * g->max_len, &sc) : vlt_error_code();
        if (scores) scores[i] = sc;
        vlt_step_reset();
    }
    vlt_tensor_free(embs);
    vlt_no_grad_exit();
    return s;
}

vlt_status vlt_coca_caption_score(vlt_coca *m, vlt_tensor *images, vlt_tensor *ids, const vlt_generate_cfg *g,
                                  float *scores) {
    VLT_TRY(check_gen(m, images, g));
    if (!ids || ids->dtype != VLT_I32 || ids->ndim != 2 || ids->shape[0] != images->shape[0] || ids->shape[1] < 2)
        return vlt_error_set(VLT_ERR_SHAPE, "caption score: ids must be i32 (N, L >= 2) for N images");
    int N = ids->shape[0], L = ids->shape[1], V = m->decoder.vocab_size;
    vlt_no_grad_enter();
    vlt_tensor *embs = NULL;
    vlt_tensor *prefix = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(N, L - 1));
    vlt_tensor *lg = NULL;
    if (prefix) {
        for (int b = 0; b < N; b++)
            memcpy(vlt_i32(prefix) + (size_t)b * (L - 1), vlt_i32(ids) + (size_t)b * L, sizeof(int32_t) * (L - 1));
        if (vlt_coca_encode_image(m, images, false, &embs)) lg = vlt_coca_caption_logits(m, embs, prefix);
    }
    if (lg && lg->device != VLT_CPU) {   // the (N, L - 1, V) logits come back
        vlt_tensor *h = vlt_tensor_new_activation(VLT_F32, VLT_CPU, lg->ndim, lg->shape);
        lg = h && vlt_tensor_copy(h, lg) == VLT_OK ? h : NULL;
    }
    vlt_status s = lg ? VLT_OK : vlt_error_code();
    float *row = malloc(sizeof(float) * V);
    for (int b = 0; b < N && s == VLT_OK && row; b++) {
        const int32_t *seq = vlt_i32(ids) + (size_t)b * L;
        scores[b] = 0;
        for (int t = 1; t < L; t++) {
            memcpy(row, vlt_f32(lg) + ((size_t)b * (L - 1) + t - 1) * V, sizeof(float) * V);
            process(row, V, seq, t, g);
            log_softmax(row, V);
            scores[b] += row[seq[t]];
            if (seq[t] == g->eos_id || seq[t] == g->pad_id) break;
        }
    }
    if (!row && s == VLT_OK) s = vlt_error_set(VLT_ERR_NOMEM, "caption score: out of memory");
    free(row);
    vlt_step_reset();
    vlt_no_grad_exit();
    return s;
}
