// evaluate.c — embedding and caption evaluation over shards (see evaluate.h).
#include "train/evaluate.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/device.h"
#include "autograd/rng.h"
#include "data/loader.h"
#include "eval/bleu.h"
#include "eval/caption_set.h"
#include "eval/cider.h"
#include "eval/json_file.h"
#include "eval/ptb_tokenize.h"
#include "eval/zeroshot.h"
#include "layers/generate.h"

void vlt_eval_loader_cfg(int image_size, int context_len, const vlt_tokenizer *tok, const char *shards, int batch,
                         const char *label_ext, vlt_loader_cfg *lc) {
    vlt_loader_cfg_default(lc);
    lc->shards = shards;
    lc->readers = 1;
    lc->batch_size = batch;
    lc->image_size = image_size;
    lc->context_len = context_len;
    lc->train = 0;
    lc->fast_decode = 0;  // PIL's pixels: never DCT-scaled JPEG decoding in evaluation
    lc->tokenizer = tok;
    lc->shuffle_shards = 0;
    lc->shuffle_buffer = 0;
    lc->drop_last = 0;
    lc->report = 0;
    lc->label_ext = label_ext;
    lc->caption_optional = label_ext != NULL;
}

static vlt_status open_eval_loader(const vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch,
                                   const char *label_ext, vlt_loader **out) {
    vlt_loader_cfg lc;
    vlt_eval_loader_cfg(m->cfg.vision.image_size, m->cfg.text.context_length, tok, shards, batch, label_ext, &lc);
    return vlt_loader_create(&lc, out);
}

static char **grow_strings(char **a, int n) { return realloc(a, sizeof(char *) * (size_t)(n > 0 ? n : 1)); }

// The captions of sample i: the non-blank strings of its .json "captions" list, else its caption;
// its dataset image id (.json "image_id") into *id when there is one.
static int sample_captions(const vlt_batch *b, int i, const char ***caps, cJSON **root, int64_t *id) {
    *root = b->json && b->json[i] ? cJSON_Parse(b->json[i]) : NULL;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(*root, "captions"), *c;
    long long v;
    if (vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(*root, "image_id"), &v)) *id = v;
    int n = 0, cap = cJSON_GetArraySize(list) + 1;
    *caps = malloc(sizeof **caps * (size_t)cap);
    if (!*caps) return -1;
    cJSON_ArrayForEach(c, list) {
        if (!cJSON_IsString(c)) continue;
        const char *t = c->valuestring;
        while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r') t++;
        if (*t) (*caps)[n++] = c->valuestring;
    }
    if (n == 0) (*caps)[n++] = b->captions[i];
    return n;
}

// Sample i's references (its .json "captions" list, else its caption), one per line; a line
// break inside a caption becomes a space, as pycocoevalcap's tokenizer call does.
static char *joined_references(const vlt_batch *b, int i) {
    const char **caps = NULL;
    cJSON *root = NULL;
    int64_t id = 0;
    int n = sample_captions(b, i, &caps, &root, &id);
    size_t len = 1;
    for (int r = 0; r < n; r++) len += strlen(caps[r]) + 1;
    char *out = n > 0 ? malloc(len) : NULL, *w = out;
    for (int r = 0; out && r < n; r++) {
        if (r) *w++ = '\n';
        for (const char *c = caps[r]; *c; c++) *w++ = *c == '\n' ? ' ' : *c;
    }
    if (w) *w = '\0';
    free(caps);
    cJSON_Delete(root);
    return out;
}

vlt_status vlt_encode_texts(vlt_model *m, const int32_t *ids, int n, int T, int batch, float *out) {
    int E = m->cfg.embed_dim;
    for (int at = 0; at < n; at += batch) {
        int k = n - at < batch ? n - at : batch;
        vlt_tensor *t = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(k, T), "ids");
        if (!t) return vlt_error_code();
        memcpy(t->data, ids + (size_t)at * T, (size_t)k * T * sizeof(int32_t));
        vlt_tensor *f = vlt_model_encode_text(m, t);
        vlt_status s = f ? VLT_OK : vlt_error_code();
        if (s == VLT_OK) vlt_tensor_read_f32(out + (size_t)at * E, f, (int64_t)k * E);  // (from the GPU too)
        vlt_step_reset();
        vlt_tensor_free(t);
        if (s != VLT_OK) return s;
    }
    return VLT_OK;
}

// A matching model's tokens of the batch's images (take, N, W) appended at out->n (room for cap images).
static vlt_status keep_match_tokens(vlt_model *m, vlt_tensor *im, vlt_embedded_pairs *out, int cap) {
    vlt_tensor *tk = vlt_model_match_tokens(m, im);
    vlt_status s = tk ? VLT_OK : vlt_error_code();
    if (s == VLT_OK) {
        out->tok_n = tk->shape[1];
        out->tok_w = tk->shape[2];
        size_t row = (size_t)out->tok_n * out->tok_w;
        float *g = realloc(out->img_tok, (size_t)cap * row * sizeof(float));
        if (!g) s = vlt_error_set(VLT_ERR_NOMEM, "embed: out of memory");
        else {
            out->img_tok = g;
            vlt_tensor_read_f32(out->img_tok + (size_t)out->n * row, tk, (int64_t)tk->numel);
        }
    }
    vlt_step_reset();
    return s;
}

vlt_status vlt_embed_pairs(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch, int limit,
                           vlt_embedded_pairs *out) {
    memset(out, 0, sizeof *out);
    vlt_loader *L = NULL;
    vlt_loader_cfg lc;
    vlt_eval_loader_cfg(m->cfg.vision.image_size, m->cfg.text.context_length, tok, shards, batch, NULL, &lc);
    lc.keep_json = 1;
    VLT_TRY(vlt_loader_create(&lc, &L));
    int E = m->cfg.embed_dim, cap = 0, tcap = 0;
    out->dim = E;
    vlt_status s = VLT_OK;
    vlt_no_grad_enter();
    while (limit <= 0 || out->n < limit) {
        const vlt_batch *b = NULL;
        if ((s = vlt_loader_next(L, &b)) != VLT_OK || !b) break;
        int take = limit > 0 && b->n > limit - out->n ? limit - out->n : b->n, S = b->image_size, T = b->context_len;
        vlt_tensor *im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(take, 3, S, S), "images");
        vlt_tensor *fi = NULL;
        if (!im) s = vlt_error_code();
        if (s == VLT_OK && out->n + take > cap) {
            cap = 2 * (out->n + take);
            float *a = realloc(out->img, (size_t)cap * E * sizeof(float));
            int64_t *d = realloc(out->image_ids, (size_t)cap * sizeof(int64_t));
            if (a) out->img = a;
            if (d) out->image_ids = d;
            char **k = grow_strings(out->keys, cap);
            if (k) out->keys = k;
            char **c = grow_strings(out->captions, cap);
            if (c) out->captions = c;
            if (!a || !d || !k || !c) s = vlt_error_set(VLT_ERR_NOMEM, "embed: out of memory");
        }
        if (s == VLT_OK) {
            memcpy(im->data, b->images, (size_t)take * 3 * S * S * sizeof(float));
            if (!(fi = vlt_model_encode_image(m, im))) s = vlt_error_code();
            else vlt_tensor_read_f32(out->img + (size_t)out->n * E, fi, (int64_t)take * E);  // (from the GPU too)
            vlt_step_reset();
            if (s == VLT_OK && vlt_model_can(m, VLT_CAP_MATCH)) s = keep_match_tokens(m, im, out, cap);
        }
        vlt_tensor_free(im);
        // every caption of every image of the batch, tokenized, then encoded `batch` at a time
        int32_t *ids = NULL;
        int m_b = 0, ids_cap = 0;
        for (int i = 0; s == VLT_OK && i < take; i++) {
            const char **caps = NULL;
            cJSON *root = NULL;
            int64_t id = out->n + i;
            int nc = sample_captions(b, i, &caps, &root, &id);
            if (nc < 0) s = vlt_error_set(VLT_ERR_NOMEM, "embed: out of memory");
            if (s == VLT_OK && m_b + nc > ids_cap) {
                ids_cap = 2 * (m_b + nc) + 16;
                int32_t *g = realloc(ids, (size_t)ids_cap * T * sizeof(int32_t));
                if (!g) s = vlt_error_set(VLT_ERR_NOMEM, "embed: out of memory");
                else ids = g;
            }
            if (s == VLT_OK && out->n_txt + m_b + nc > tcap) {
                tcap = 2 * (out->n_txt + m_b + nc) + 64;
                float *t = realloc(out->txt, (size_t)tcap * E * sizeof(float));
                int32_t *o = realloc(out->txt_img, (size_t)tcap * sizeof(int32_t));
                char **ts = grow_strings(out->txt_str, tcap);
                if (t) out->txt = t;
                if (o) out->txt_img = o;
                if (ts) out->txt_str = ts;
                if (!t || !o || !ts) s = vlt_error_set(VLT_ERR_NOMEM, "embed: out of memory");
            }
            if (s == VLT_OK && vlt_model_can(m, VLT_CAP_MATCH)) {
                int32_t *g = realloc(out->txt_ids, (size_t)tcap * T * sizeof(int32_t));
                if (!g) s = vlt_error_set(VLT_ERR_NOMEM, "embed: out of memory");
                else out->txt_ids = g;
                out->txt_T = T;
            }
            for (int c = 0; s == VLT_OK && c < nc; c++) {
                if ((vlt_model_has_tokenizer(m) ? vlt_model_tokenize(m, caps[c], ids + (size_t)(m_b + c) * T, NULL, T)
                                                : vlt_tokenizer_encode(tok, caps[c], ids + (size_t)(m_b + c) * T, T)) < 0)
                    s = vlt_error_code();
                if (out->txt_ids)
                    memcpy(out->txt_ids + (size_t)(out->n_txt + m_b + c) * T, ids + (size_t)(m_b + c) * T,
                           sizeof(int32_t) * (size_t)T);
                out->txt_img[out->n_txt + m_b + c] = out->n + i;
                out->txt_str[out->n_txt + m_b + c] = strdup(caps[c]);
            }
            if (s == VLT_OK) {
                m_b += nc;
                out->image_ids[out->n + i] = id;
                out->keys[out->n + i] = strdup(b->keys[i]);
                out->captions[out->n + i] = strdup(b->captions[i]);
            }
            free(caps);
            cJSON_Delete(root);
        }
        if (s == VLT_OK) s = vlt_encode_texts(m, ids, m_b, T, batch, out->txt + (size_t)out->n_txt * E);
        free(ids);
        out->n_txt += m_b;  // (their strings are owned even when the encoding failed)
        if (s == VLT_OK) out->n += take;
        if (s != VLT_OK) break;
    }
    vlt_no_grad_exit();
    vlt_loader_free(L);
    if (s == VLT_OK && out->n == 0) s = vlt_error_set(VLT_ERR_ARG, "embed: the shards %s gave no samples", shards);
    if (s != VLT_OK) vlt_embedded_pairs_free(out);
    return s;
}

void vlt_embedded_pairs_free(vlt_embedded_pairs *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->captions[i]);
    }
    for (int j = 0; p->txt_str && j < p->n_txt; j++) free(p->txt_str[j]);
    free(p->txt_str);
    free(p->keys);
    free(p->captions);
    free(p->img);
    free(p->txt);
    free(p->txt_img);
    free(p->image_ids);
    free(p->img_tok);
    free(p->txt_ids);
    memset(p, 0, sizeof *p);
}

vlt_status vlt_eval_pairs_retrieval(const vlt_embedded_pairs *p, vlt_eval_retrieval_result *r) {
    return vlt_eval_retrieval(p->img, p->n, p->txt, p->n_txt, p->dim, p->txt_img, 0, r, NULL, NULL);
}

// The k largest of x[0..n) (indices into idx[0..k)), largest first; k <= n.
static void top_k(const float *x, int n, int k, int *idx) {
    for (int j = 0; j < k; j++) idx[j] = -1;
    for (int i = 0; i < n; i++) {
        int pos = k;
        while (pos > 0 && (idx[pos - 1] < 0 || x[i] > x[idx[pos - 1]])) pos--;
        if (pos >= k) continue;
        memmove(idx + pos + 1, idx + pos, sizeof(int) * (size_t)(k - pos - 1));
        idx[pos] = i;
    }
}

// Match scores of n pairs (image a[j], text b[j]), `batch` pairs per call.
static vlt_status match_pairs(vlt_model *m, const vlt_embedded_pairs *p, const int *a, const int *b, int n, int batch,
                              float *out) {
    size_t row = (size_t)p->tok_n * p->tok_w;
    for (int j0 = 0; j0 < n; j0 += batch) {
        int c = n - j0 < batch ? n - j0 : batch;
        vlt_tensor *tk = vlt_tensor_new_activation(VLT_F32, VLT_CPU, 3, VLT_SHAPE(c, p->tok_n, p->tok_w));
        vlt_tensor *ids = vlt_tensor_new_activation(VLT_I32, VLT_CPU, 2, VLT_SHAPE(c, p->txt_T));
        if (!tk || !ids) return vlt_error_code();
        for (int j = 0; j < c; j++) {
            memcpy(vlt_f32(tk) + j * row, p->img_tok + (size_t)a[j0 + j] * row, sizeof(float) * row);
            memcpy(vlt_i32(ids) + (size_t)j * p->txt_T, p->txt_ids + (size_t)b[j0 + j] * p->txt_T,
                   sizeof(int32_t) * (size_t)p->txt_T);
        }
        vlt_tensor *sc = vlt_model_match(m, tk, ids);
        if (!sc) return vlt_error_code();
        vlt_tensor_read_f32(out + j0, sc, c);
        vlt_step_reset();
    }
    return VLT_OK;
}

vlt_status vlt_eval_pairs_rerank(vlt_model *m, const vlt_embedded_pairs *p, int k, int batch,
                                 vlt_eval_retrieval_result *r) {
    if (!p->img_tok || !p->txt_ids)
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "retrieval re-ranking needs pairs embedded by a matching model");
    int ki = k < p->n_txt ? k : p->n_txt, kt = k < p->n ? k : p->n, kmax = ki > kt ? ki : kt;
    float *sim = malloc(sizeof(float) * (size_t)(p->n > p->n_txt ? p->n : p->n_txt));
    int *idx = malloc(sizeof(int) * (size_t)kmax), *a = malloc(sizeof(int) * (size_t)kmax);
    float *sc = malloc(sizeof(float) * (size_t)kmax);
    int64_t *ri = malloc(sizeof(int64_t) * (size_t)p->n), *rt = malloc(sizeof(int64_t) * (size_t)p->n_txt);
    vlt_status s = sim && idx && a && sc && ri && rt ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "rerank: out of memory");
    // image -> text: the best-scored of the image's own captions among its top k
    for (int i = 0; s == VLT_OK && i < p->n; i++) {
        for (int t = 0; t < p->n_txt; t++) {
            double d = 0;
            for (int e = 0; e < p->dim; e++) d += (double)p->img[(size_t)i * p->dim + e] * p->txt[(size_t)t * p->dim + e];
            sim[t] = (float)d;
        }
        top_k(sim, p->n_txt, ki, idx);
        for (int j = 0; j < ki; j++) a[j] = i;
        if ((s = match_pairs(m, p, a, idx, ki, batch, sc)) != VLT_OK) break;
        float best = 0;   // (scores are logits: any value; found says whether one was seen)
        bool found = false;
        for (int j = 0; j < ki; j++)
            if (p->txt_img[idx[j]] == i && (!found || sc[j] > best)) best = sc[j], found = true;
        int64_t rank = p->n_txt;   // outside the top k: tied with every other candidate, counted last
        if (found) {
            rank = 1;
            for (int j = 0; j < ki; j++) rank += p->txt_img[idx[j]] != i && sc[j] >= best;
        }
        ri[i] = rank;
    }
    // text -> image: its image among the text's top k images
    for (int t = 0; s == VLT_OK && t < p->n_txt; t++) {
        for (int i = 0; i < p->n; i++) {
            double d = 0;
            for (int e = 0; e < p->dim; e++) d += (double)p->img[(size_t)i * p->dim + e] * p->txt[(size_t)t * p->dim + e];
            sim[i] = (float)d;
        }
        top_k(sim, p->n, kt, a);
        for (int j = 0; j < kt; j++) idx[j] = t;
        if ((s = match_pairs(m, p, a, idx, kt, batch, sc)) != VLT_OK) break;
        int at = -1;
        for (int j = 0; j < kt; j++)
            if (a[j] == p->txt_img[t]) at = j;
        int64_t rank = p->n;
        if (at >= 0) {
            rank = 1;
            for (int j = 0; j < kt; j++) rank += j != at && sc[j] >= sc[at];
        }
        rt[t] = rank;
    }
    if (s == VLT_OK) {
        vlt_eval_recall_from_ranks(ri, p->n, &r->i2t);
        vlt_eval_recall_from_ranks(rt, p->n_txt, &r->t2i);
    }
    free(sim);
    free(idx);
    free(a);
    free(sc);
    free(ri);
    free(rt);
    return s;
}

// Whether caption t's text equals one of image i's captions (grouped: image i's are contiguous).
static bool same_text_as_image(const vlt_embedded_pairs *p, int t, int i, int first) {
    for (int u = first; u < p->n_txt && p->txt_img[u] == i; u++)
        if (!strcmp(p->txt_str[u], p->txt_str[t])) return true;
    return false;
}

vlt_status vlt_eval_pairs_match_accuracy(vlt_model *m, const vlt_embedded_pairs *p, int batch, double *acc,
                                         int *n_used, int32_t *other) {
    *acc = 0;
    *n_used = 0;
    if (!p->img_tok || !p->txt_ids)
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "the matching accuracy needs pairs embedded by a matching model");
    // rows 2j (image i, its first caption) and 2j+1 (image i, the drawn caption)
    int *a = malloc(sizeof(int) * 2 * (size_t)p->n), *b = malloc(sizeof(int) * 2 * (size_t)p->n);
    float *sc = malloc(sizeof(float) * 2 * (size_t)p->n);
    vlt_status s = a && b && sc ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "matching accuracy: out of memory");
    int n = 0;
    for (int i = 0; other && i < p->n; i++) other[i] = -1;
    for (int i = 0, first = 0; s == VLT_OK && i < p->n; i++) {
        while (first < p->n_txt && p->txt_img[first] < i) first++;
        if (first >= p->n_txt || p->txt_img[first] != i) continue;   // (every image has a caption)
        uint64_t stream = vlt_rng_stream(VLT_RNG_EVAL, (uint64_t)i, 0);
        for (int k = 0; k < 64; k++) {
            int t = (int)vlt_rng_below(0x17e5eed, stream, (uint64_t)k, (uint64_t)p->n_txt);
            if (p->txt_img[t] == i || same_text_as_image(p, t, i, first)) continue;
            a[2 * n] = a[2 * n + 1] = i;
            b[2 * n] = first;
            b[2 * n + 1] = t;
            if (other) other[i] = t;
            n++;
            break;
        }
    }
    if (s == VLT_OK && n) s = match_pairs(m, p, a, b, 2 * n, batch, sc);
    if (s == VLT_OK) {
        int right = 0;
        for (int j = 0; j < n; j++) right += sc[2 * j] > sc[2 * j + 1];
        *acc = n ? (double)right / n : 0;
        *n_used = n;
    }
    free(a);
    free(b);
    free(sc);
    return s;
}

// The references and then the generated captions, each list tokenized in one call as
// pycocoevalcap does (its tokenizer reads a call's captions as one stream: every reference of every
// image in order, then the candidates), into the set. e->reference[i] holds image i's references
// one per line. A caption with a line break other than '\n' shifts the jar's lines in
// pycocoevalcap; the scores follow it, as `vlt eval captions` does, with a warning.
static vlt_status add_tokenized(vlt_eval_caption_set *set, const vlt_caption_eval *e) {
    int total = 0;
    for (int i = 0; i < e->n; i++) {
        total++;
        for (const char *c = e->reference[i]; *c; c++) total += *c == '\n';
    }
    char **lines = calloc((size_t)e->n, sizeof *lines), **cand = calloc((size_t)e->n, sizeof *cand);
    const char **stream = calloc((size_t)total + 1, sizeof *stream);
    char **ref = calloc((size_t)total + 1, sizeof *ref);
    int *first = calloc((size_t)e->n + 1, sizeof *first);
    int got_r = 0, got_c = 0, k = 0;
    vlt_status s = lines && cand && stream && ref && first ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "caption eval: out of memory");
    for (int i = 0; s == VLT_OK && i < e->n; i++) {
        if (!(lines[i] = strdup(e->reference[i]))) { s = vlt_error_set(VLT_ERR_NOMEM, "caption eval: out of memory"); break; }
        first[i] = k;
        stream[k++] = lines[i];
        for (char *c = lines[i]; *c; c++)
            if (*c == '\n') {
                *c = '\0';
                stream[k++] = c + 1;
            }
    }
    if (s == VLT_OK) first[e->n] = k;
    if (s == VLT_OK) s = vlt_eval_ptb_tokenize_batch(stream, total, ref, &got_r);
    if (s == VLT_OK) s = vlt_eval_ptb_tokenize_batch((const char *const *)e->generated, e->n, cand, &got_c);
    if (s == VLT_OK && (got_r != total || got_c != e->n))
        fprintf(stderr, "caption eval: warning: %d caption line break(s) other than \\n (\\r, U+2028, ...): as in "
                        "pycocoevalcap, the captions after each are scored with the tokens of the line before them\n",
                got_r - total + got_c - e->n);
    for (int i = 0; s == VLT_OK && i < e->n; i++)
        s = vlt_eval_caption_set_add(set, cand[i], (const char *const *)ref + first[i], first[i + 1] - first[i]);
    for (int i = 0; i < total && ref; i++) free(ref[i]);
    for (int i = 0; i < e->n; i++) {
        if (lines) free(lines[i]);
        if (cand) free(cand[i]);
    }
    free(lines);
    free(cand);
    free(stream);
    free(ref);
    free(first);
    return s;
}

vlt_generate_cfg vlt_caption_defaults(const vlt_model *m) {
    vlt_generate_cfg g = vlt_generate_defaults();
    int ctx = m->cfg.text.context_length < m->cfg.multimodal.context_length ? m->cfg.text.context_length
                                                                             : m->cfg.multimodal.context_length;
    if (g.max_len > ctx) g.max_len = ctx;
    if (g.min_len >= g.max_len) g.min_len = g.max_len - 1;
    return g;
}

// The dataset's image id of sample i of a batch read with keep_json: its .json "image_id", else dflt.
static int64_t sample_image_id(const vlt_batch *b, int i, int64_t dflt) {
    cJSON *root = b->json && b->json[i] ? cJSON_Parse(b->json[i]) : NULL;
    long long v;
    int64_t id = vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(root, "image_id"), &v) ? (int64_t)v : dflt;
    cJSON_Delete(root);
    return id;
}

vlt_status vlt_caption_shards(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch, int limit,
                              const vlt_generate_cfg *g, vlt_caption_eval *out) {
    memset(out, 0, sizeof *out);
    if (!vlt_model_can(m, VLT_CAP_CAPTION))
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "captions: the %s model (kind %s) cannot generate captions",
                             vlt_model_title(m), vlt_model_kind(m));
    vlt_loader *L = NULL;
    vlt_loader_cfg lc;
    vlt_eval_loader_cfg(m->cfg.vision.image_size, m->cfg.text.context_length, tok, shards, batch, NULL, &lc);
    lc.keep_json = 1;  // the dataset's image ids
    VLT_TRY(vlt_loader_create(&lc, &L));
    int cap = 0;
    vlt_status s = VLT_OK;
    while (s == VLT_OK && (limit <= 0 || out->n < limit)) {
        const vlt_batch *b = NULL;
        if ((s = vlt_loader_next(L, &b)) != VLT_OK || !b) break;
        int take = limit > 0 && b->n > limit - out->n ? limit - out->n : b->n, S = b->image_size;
        vlt_tensor *im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(take, 3, S, S), "images");
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)take * g->max_len);
        if (!im || !ids) s = vlt_error_set(VLT_ERR_NOMEM, "captions: out of memory");
        if (s == VLT_OK) {
            memcpy(im->data, b->images, (size_t)take * 3 * S * S * sizeof(float));
            vlt_no_grad_enter();
            s = vlt_model_caption(m, im, g, ids);
            vlt_no_grad_exit();
            vlt_step_reset();
        }
        if (s == VLT_OK && out->n + take > cap) {
            cap = 2 * (out->n + take);
            char **k = grow_strings(out->keys, cap), **gen, **ref;
            if (k) out->keys = k;
            if ((gen = grow_strings(out->generated, cap))) out->generated = gen;
            if ((ref = grow_strings(out->reference, cap))) out->reference = ref;
            int64_t *im_ids = realloc(out->image_ids, sizeof(int64_t) * (size_t)cap);
            if (im_ids) out->image_ids = im_ids;
            if (!k || !gen || !ref || !im_ids) s = vlt_error_set(VLT_ERR_NOMEM, "captions: out of memory");
        }
        for (int i = 0; s == VLT_OK && i < take; i++) {
            char text[4096];
            s = vlt_tokenizer_decode(tok, ids + (size_t)i * g->max_len, g->max_len, text, sizeof text);
            size_t len = strlen(text);  // open_clip's decode keeps a trailing space; a results file does not
            while (len && (text[len - 1] == ' ' || text[len - 1] == '\n')) text[--len] = '\0';
            if (s == VLT_OK) {
                out->image_ids[out->n] = sample_image_id(b, i, out->n);
                out->keys[out->n] = strdup(b->keys[i]);
                out->generated[out->n] = strdup(text);
                out->reference[out->n] = joined_references(b, i);
                if (!out->keys[out->n] || !out->generated[out->n] || !out->reference[out->n])
                    s = vlt_error_set(VLT_ERR_NOMEM, "captions: out of memory");
                out->n++;
            }
        }
        free(ids);
        vlt_tensor_free(im);
    }
    vlt_loader_free(L);
    if (s == VLT_OK && out->n == 0) s = vlt_error_set(VLT_ERR_ARG, "captions: the shards %s gave no images", shards);
    if (s != VLT_OK) vlt_caption_eval_free(out);
    return s;
}

vlt_status vlt_eval_captions_on_shards(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch,
                                       int limit, vlt_caption_eval *out) {
    vlt_generate_cfg g = vlt_caption_defaults(m);
    VLT_TRY(vlt_caption_shards(m, tok, shards, batch, limit, &g, out));
    vlt_eval_caption_set *set = vlt_eval_caption_set_new();
    vlt_status s = set ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "caption eval: out of memory");
    if (s == VLT_OK) s = add_tokenized(set, out);
    if (s == VLT_OK) s = vlt_eval_bleu(set, out->bleu, NULL);
    if (s == VLT_OK && !(out->cider_per_image = malloc(sizeof(double) * (size_t)out->n)))
        s = vlt_error_set(VLT_ERR_NOMEM, "caption eval: out of memory");
    if (s == VLT_OK) s = vlt_eval_cider_d(set, &out->cider, out->cider_per_image);
    vlt_eval_caption_set_free(set);
    if (s != VLT_OK) vlt_caption_eval_free(out);
    return s;
}

vlt_status vlt_captions_save_coco(const vlt_caption_eval *c, const char *path) {
    cJSON *arr = cJSON_CreateArray();
    vlt_status s = arr ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; s == VLT_OK && i < c->n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddNumberToObject(o, "image_id", (double)c->image_ids[i]) ||
            !cJSON_AddStringToObject(o, "caption", c->generated[i])) {
            cJSON_Delete(o);
            s = vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory", path);
        } else {
            cJSON_AddItemToArray(arr, o);
        }
    }
    if (s == VLT_OK) s = vlt_eval_json_save(path, arr);  // a temporary file renamed: never half a file
    cJSON_Delete(arr);
    return s;
}

void vlt_caption_eval_free(vlt_caption_eval *e) {
    for (int i = 0; i < e->n; i++) {
        free(e->keys[i]);
        free(e->generated[i]);
        free(e->reference[i]);
    }
    free(e->keys);
    free(e->generated);
    free(e->reference);
    free(e->cider_per_image);
    free(e->image_ids);
    memset(e, 0, sizeof *e);
}

// The class vectors (n_classes, E): every (class, template) prompt encoded, then averaged.
static vlt_status class_vectors(vlt_model *m, const vlt_tokenizer *tok, char *const *classes, int n_classes,
                                char *const *templates, int n_templates, float *cls) {
    int E = m->cfg.embed_dim, T = m->cfg.text.context_length, n = n_classes * n_templates;
    float *text = malloc(sizeof(float) * (size_t)n * E);
    vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(1, T), "prompt_ids");
    vlt_status s = text && ids ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "zero-shot: out of memory");
    vlt_no_grad_enter();
    for (int i = 0; s == VLT_OK && i < n; i++) {
        const char *tmpl = templates[i % n_templates], *hole = strstr(tmpl, "{}");
        char prompt[1024];
        if (!hole) {
            s = vlt_error_set(VLT_ERR_ARG, "zero-shot: template '%s' has no {} for the class name", tmpl);
            break;
        }
        snprintf(prompt, sizeof prompt, "%.*s%s%s", (int)(hole - tmpl), tmpl, classes[i / n_templates], hole + 2);
        vlt_tokenizer_encode(tok, prompt, vlt_i32(ids), T);
        vlt_tensor *f = vlt_model_encode_text(m, ids);
        if (!f) s = vlt_error_code();
        else vlt_tensor_read_f32(text + (size_t)i * E, f, E);
        vlt_step_reset();
    }
    vlt_no_grad_exit();
    if (s == VLT_OK) s = vlt_eval_zeroshot_classifier(cls, text, n_classes, n_templates, E);
    free(text);
    vlt_tensor_free(ids);
    return s;
}

vlt_status vlt_eval_zeroshot_on_shards(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch,
                                       int limit, const char *label_ext, char *const *classes, int n_classes,
                                       char *const *templates, int n_templates, double *top1, double *top5,
                                       int *n_images) {
    if (n_classes < 1 || n_templates < 1)
        return vlt_error_set(VLT_ERR_ARG, "zero-shot: needs at least one class and one template");
    int E = m->cfg.embed_dim;
    float *cls = malloc(sizeof(float) * (size_t)n_classes * E);
    if (!cls) return vlt_error_set(VLT_ERR_NOMEM, "zero-shot: out of memory");
    vlt_status s = class_vectors(m, tok, classes, n_classes, templates, n_templates, cls);
    vlt_loader *L = NULL;
    if (s == VLT_OK) s = open_eval_loader(m, tok, shards, batch, label_ext ? label_ext : "cls", &L);
    float *img = NULL;
    int32_t *labels = NULL;
    int n = 0, cap = 0;
    vlt_no_grad_enter();
    while (s == VLT_OK && (limit <= 0 || n < limit)) {
        const vlt_batch *b = NULL;
        if ((s = vlt_loader_next(L, &b)) != VLT_OK || !b) break;
        int take = limit > 0 && b->n > limit - n ? limit - n : b->n, S = b->image_size;
        for (int i = 0; i < take && s == VLT_OK; i++)
            if (b->labels[i] >= n_classes)
                s = vlt_error_set(VLT_ERR_ARG, "zero-shot: sample '%s' has label %d but there are %d classes", b->keys[i],
                                  b->labels[i], n_classes);
        vlt_tensor *im = s == VLT_OK ? vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(take, 3, S, S), "images") : NULL;
        vlt_tensor *f = NULL;
        if (im) {
            memcpy(im->data, b->images, (size_t)take * 3 * S * S * sizeof(float));
            if (!(f = vlt_model_encode_image(m, im))) s = vlt_error_code();
        }
        if (f && n + take > cap) {
            cap = 2 * (n + take);
            img = realloc(img, sizeof(float) * (size_t)cap * E);
            labels = realloc(labels, sizeof(int32_t) * (size_t)cap);
        }
        if (f) {
            vlt_tensor_read_f32(img + (size_t)n * E, f, (int64_t)take * E);
            memcpy(labels + n, b->labels, sizeof(int32_t) * (size_t)take);
            n += take;
        }
        vlt_step_reset();
        vlt_tensor_free(im);
    }
    vlt_no_grad_exit();
    vlt_loader_free(L);
    if (s == VLT_OK && n == 0) s = vlt_error_set(VLT_ERR_ARG, "zero-shot: the shards %s gave no labeled images", shards);
    if (s == VLT_OK) s = vlt_eval_zeroshot_accuracy(img, labels, n, cls, n_classes, E, top1, top5);
    if (s == VLT_OK) *n_images = n;
    free(img);
    free(labels);
    free(cls);
    return s;
}
