// vqa_eval.c — a VQA model's answers on shards and their official accuracy (see vqa_eval.h).
#include "train/vqa_eval.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autograd/device.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "data/files.h"
#include "data/loader.h"
#include "eval/json_file.h"
#include "train/evaluate.h"

void vlt_vqa_predictions_free(vlt_vqa_predictions *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->question[i]);
        free(p->answer[i]);
        free(p->key[i]);
        free(p->image[i]);
    }
    free(p->qid);
    free(p->question);
    free(p->answer);
    free(p->conf);
    free(p->key);
    free(p->image);
    cJSON_Delete(p->annotations);
    memset(p, 0, sizeof *p);
}

static vlt_status grow(vlt_vqa_predictions *p, int cap) {
    long long *q = realloc(p->qid, sizeof *q * (size_t)cap);
    if (q) p->qid = q;
    float *c = realloc(p->conf, sizeof *c * (size_t)cap);
    if (c) p->conf = c;
    char ***lists[4] = {&p->question, &p->answer, &p->key, &p->image};
    bool ok = q && c;
    for (int k = 0; k < 4; k++) {
        char **l = realloc(*lists[k], sizeof *l * (size_t)cap);
        if (l) *lists[k] = l;
        ok &= l != NULL;
    }
    return ok ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
}

// The official annotation item of a sample's .json: question_id, image_id, the ten answers as
// {"answer", "answer_id"} dicts, answer_type, question_type, multiple_choice_answer. NULL when the
// sample has no answers (a test split).
static cJSON *annotation_of(const cJSON *js, long long qid) {
    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(js, "answers");
    if (!cJSON_IsArray(ans) || cJSON_GetArraySize(ans) == 0) return NULL;
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "answers");
    cJSON_AddNumberToObject(o, "question_id", (double)qid);
    long long img;
    if (vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(js, "image_id"), &img)) cJSON_AddNumberToObject(o, "image_id", (double)img);
    const cJSON *a;
    int k = 0;
    cJSON_ArrayForEach(a, ans) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "answer", cJSON_IsString(a) ? a->valuestring : "");
        cJSON_AddNumberToObject(d, "answer_id", ++k);
        cJSON_AddItemToArray(list, d);
    }
    static const char *const keys[] = {"answer_type", "question_type", "multiple_choice_answer"};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(js, keys[i]);
        if (cJSON_IsString(v)) cJSON_AddStringToObject(o, keys[i], v->valuestring);
    }
    return o;
}

vlt_status vlt_vqa_predict(vlt_model *m, const vlt_tokenizer *tok, const char *shards, int batch, int limit,
                           const vlt_vqa_vocab *vocab, vlt_vqa_predictions *out) {
    memset(out, 0, sizeof *out);
    if (!vlt_model_can(m, VLT_CAP_ANSWER))
        return vlt_error_set(VLT_ERR_UNSUPPORTED, "vqa: the %s model (kind %s) has no answer head", vlt_model_title(m),
                             vlt_model_kind(m));
    VLT_TRY(vlt_model_set_answers(m, (const char *const *)vocab->answers, vocab->n));   // a ranking kind's candidates
    if (vocab->n != vlt_model_answers(m))
        return vlt_error_set(VLT_ERR_ARG, "vqa: the model answers from %d answers, the answer vocabulary has %d",
                             vlt_model_answers(m), vocab->n);
    vlt_loader_cfg lc;
    vlt_eval_loader_cfg(m->cfg.vision.image_size, m->cfg.text.context_length, tok, shards, batch, NULL, &lc);
    lc.keep_json = 1;   // question ids and the ground truth
    vlt_loader *L = NULL;
    VLT_TRY(vlt_loader_create(&lc, &L));
    out->annotations = cJSON_CreateArray();
    int cap = 0, S = m->cfg.vision.image_size, T = m->cfg.text.context_length;
    int32_t *best = malloc(sizeof(int32_t) * (size_t)batch);
    float *conf = malloc(sizeof(float) * (size_t)batch);
    vlt_status s = out->annotations && best && conf ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
    while (s == VLT_OK && (limit <= 0 || out->n < limit)) {
        const vlt_batch *b = NULL;
        if ((s = vlt_loader_next(L, &b)) != VLT_OK || !b) break;
        int take = limit > 0 && b->n > limit - out->n ? limit - out->n : b->n;
        vlt_tensor *im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, VLT_SHAPE(take, 3, S, S), "images");
        vlt_tensor *q = vlt_tensor_new(VLT_I32, VLT_CPU, 2, VLT_SHAPE(take, T), "question_ids");
        if (!im || !q) s = vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
        if (s == VLT_OK) {
            memcpy(im->data, b->images, sizeof(float) * (size_t)take * 3 * S * S);
            memcpy(q->data, b->tokens, sizeof(int32_t) * (size_t)take * T);
            for (int i = 0; s == VLT_OK && vlt_model_has_tokenizer(m) && i < take; i++)   // the kind's own (ALBEF's BERT)
                if (vlt_model_tokenize(m, b->captions[i], vlt_i32(q) + (size_t)i * T, NULL, T) < 0) s = vlt_error_code();
            vlt_no_grad_enter();
            if (s == VLT_OK) s = vlt_model_answer(m, im, q, best, conf);
            vlt_no_grad_exit();
            vlt_step_reset();
        }
        vlt_tensor_free(im);
        vlt_tensor_free(q);
        if (s == VLT_OK && out->n + take > cap) s = grow(out, cap = 2 * (out->n + take));
        for (int i = 0; s == VLT_OK && i < take; i++) {
            cJSON *js = b->json[i] ? cJSON_Parse(b->json[i]) : NULL;
            long long qid;
            if (!vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(js, "question_id"), &qid)) {
                cJSON_Delete(js);
                s = vlt_error_set(VLT_ERR_FORMAT, "vqa: %s: sample '%s' has no .json with an integer question_id (pack VQA "
                                  "data with vlt shards --vqa-questions or --vqa-jsonl)", shards, b->keys[i]);
                break;
            }
            const cJSON *img = cJSON_GetObjectItemCaseSensitive(js, "image");
            int k = out->n;
            out->qid[k] = qid;
            out->conf[k] = conf[i];
            out->question[k] = strdup(b->captions[i]);
            out->answer[k] = strdup(vocab->answers[best[i]]);
            out->key[k] = strdup(b->keys[i]);
            out->image[k] = strdup(cJSON_IsString(img) ? img->valuestring : "");
            out->n++;
            cJSON *ann = annotation_of(js, qid);
            if (ann) {
                cJSON_AddItemToArray(out->annotations, ann);
                out->n_annotated++;
            }
            cJSON_Delete(js);
            if (!out->question[k] || !out->answer[k] || !out->key[k] || !out->image[k])
                s = vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
        }
    }
    free(best);
    free(conf);
    vlt_loader_free(L);
    if (s != VLT_OK) vlt_vqa_predictions_free(out);
    return s;
}

// The results list, of every question or of those with an annotation (the annotations are in
// prediction order, a subsequence of it).
static cJSON *results_json(const vlt_vqa_predictions *p, bool annotated_only) {
    cJSON *arr = cJSON_CreateArray();
    const cJSON *ann = p->annotations ? p->annotations->child : NULL;
    for (int i = 0; arr && i < p->n; i++) {
        bool has = false;
        if (ann) {
            long long id;
            has = vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(ann, "question_id"), &id) && id == p->qid[i];
            if (has) ann = ann->next;
        }
        if (annotated_only && !has) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "question_id", (double)p->qid[i]);
        cJSON_AddStringToObject(o, "answer", p->answer[i]);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

vlt_status vlt_vqa_write_results(const vlt_vqa_predictions *p, const char *path) {
    cJSON *arr = results_json(p, false);
    vlt_status s = arr ? vlt_eval_json_save(path, arr) : vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
    cJSON_Delete(arr);
    return s;
}

vlt_status vlt_vqa_write_annotations(const vlt_vqa_predictions *p, const char *path) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
    cJSON_AddItemReferenceToObject(root, "annotations", p->annotations);
    vlt_status s = vlt_eval_json_save(path, root);
    cJSON_Delete(root);
    return s;
}

vlt_status vlt_vqa_score(const vlt_vqa_predictions *p, vlt_eval_vqa_version v, vlt_eval_vqa_result *r) {
    memset(r, 0, sizeof *r);
    if (!p->n_annotated) return vlt_error_set(VLT_ERR_ARG, "vqa: none of the %d questions has ground-truth answers", p->n);
    const char *tmp = getenv("TMPDIR");
    char dir[4096], pred[4200], ann[4200];
    snprintf(dir, sizeof dir, "%s/vlt-vqa-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return vlt_error_set(VLT_ERR_IO, "vqa: cannot create a temporary directory %s: %s", dir, strerror(errno));
    snprintf(pred, sizeof pred, "%s/results.json", dir);
    snprintf(ann, sizeof ann, "%s/annotations.json", dir);
    cJSON *res = results_json(p, true);
    vlt_status s = res ? vlt_eval_json_save(pred, res) : vlt_error_set(VLT_ERR_NOMEM, "vqa: out of memory");
    cJSON_Delete(res);
    if (s == VLT_OK) s = vlt_vqa_write_annotations(p, ann);
    if (s == VLT_OK) s = vlt_eval_vqa_files(pred, ann, v, 0, r);
    unlink(pred);
    unlink(ann);
    rmdir(dir);
    return s;
}

vlt_status vlt_vqa_vocab_of_checkpoint(const char *checkpoint_dir, vlt_vqa_vocab *out) {
    memset(out, 0, sizeof *out);
    char path[4200];
    snprintf(path, sizeof path, "%s/state.json", checkpoint_dir);
    cJSON *root = NULL;
    VLT_TRY(vlt_read_json_file(path, &root));
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "answer_vocab"), *a;
    vlt_status s = cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0
                       ? VLT_OK
                       : vlt_error_set(VLT_ERR_FORMAT, "%s: no \"answer_vocab\" (not a checkpoint of a VQA run)", path);
    int n = s == VLT_OK ? cJSON_GetArraySize(list) : 0;
    if (s == VLT_OK && (!(out->answers = calloc((size_t)n, sizeof *out->answers)) ||
                        !(out->counts = calloc((size_t)n, sizeof *out->counts))))
        s = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    if (s == VLT_OK) cJSON_ArrayForEach(a, list) {
        if (!cJSON_IsString(a)) { s = vlt_error_set(VLT_ERR_FORMAT, "%s: answer_vocab[%d] is not a string", path, out->n); break; }
        if (!(out->answers[out->n] = strdup(a->valuestring))) { s = vlt_error_set(VLT_ERR_NOMEM, "out of memory"); break; }
        out->n++;
    }
    cJSON_Delete(root);
    if (s != VLT_OK) vlt_vqa_vocab_free(out);
    return s;
}

// ---- the majority baseline ----------------------------------------------------------------------

// Calls fn on the .json of every sample of shards (in order; up to limit, 0: all), with the
// sample's key and text. The images are decoded at a small size and thrown away: the loader is
// the one reader of shards that counts and reports bad samples.
typedef vlt_status (*json_fn)(void *ctx, const cJSON *js, const char *key, const char *text);
static vlt_status each_json(const char *shards, int limit, json_fn fn, void *ctx) {
    vlt_loader_cfg lc;
    vlt_eval_loader_cfg(24, 2, NULL, shards, 256, NULL, &lc);
    lc.keep_json = 1;
    vlt_loader *L = NULL;
    VLT_TRY(vlt_loader_create(&lc, &L));
    vlt_status s = VLT_OK;
    int n = 0;
    while (s == VLT_OK && (limit <= 0 || n < limit)) {
        const vlt_batch *b = NULL;
        if ((s = vlt_loader_next(L, &b)) != VLT_OK || !b) break;
        for (int i = 0; s == VLT_OK && i < b->n && (limit <= 0 || n < limit); i++, n++) {
            cJSON *js = b->json[i] ? cJSON_Parse(b->json[i]) : NULL;
            s = fn(ctx, js, b->keys[i], b->captions[i]);
            cJSON_Delete(js);
        }
    }
    vlt_loader_free(L);
    return s;
}

typedef struct {
    char **pairs;   // "question_type\tanswer" of every training question
    int n, cap;
} pair_list;

static const char *str_of(const cJSON *js, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(js, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// The training question's answer for the baseline: multiple_choice_answer, else the most frequent
// processed answer (the first of equally frequent ones).
static const char *train_answer(const cJSON *js) {
    const char *mc = str_of(js, "multiple_choice_answer");
    if (mc) return mc;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(js, "answers_processed"), *a, *b;
    const char *best = NULL;
    int best_n = 0;
    cJSON_ArrayForEach(a, list) {
        int k = 0;
        cJSON_ArrayForEach(b, list) k += cJSON_IsString(a) && cJSON_IsString(b) && !strcmp(a->valuestring, b->valuestring);
        if (k > best_n) { best_n = k; best = a->valuestring; }
    }
    return best;
}

static vlt_status collect_pair(void *ctx, const cJSON *js, const char *key, const char *text) {
    (void)key, (void)text;
    pair_list *l = ctx;
    const char *qt = str_of(js, "question_type"), *a = train_answer(js);
    if (!a) return VLT_OK;   // a question without answers teaches nothing
    if (l->n == l->cap) {
        char **g = realloc(l->pairs, sizeof *g * (size_t)(l->cap = l->cap ? 2 * l->cap : 1024));
        if (!g) return vlt_error_set(VLT_ERR_NOMEM, "vqa baseline: out of memory");
        l->pairs = g;
    }
    size_t len = strlen(qt ? qt : "") + strlen(a) + 2;
    if (!(l->pairs[l->n] = malloc(len))) return vlt_error_set(VLT_ERR_NOMEM, "vqa baseline: out of memory");
    snprintf(l->pairs[l->n++], len, "%s\t%s", qt ? qt : "", a);
    return VLT_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct {
    char **type, **answer;   // per question type: its most frequent answer
    double *share;           // and that answer's share of the type's questions
    int n;
    const char *overall;
    vlt_vqa_predictions *out;
} majority;

static vlt_status answer_by_type(void *ctx, const cJSON *js, const char *key, const char *text) {
    majority *m = ctx;
    vlt_vqa_predictions *p = m->out;
    long long qid;
    if (!vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(js, "question_id"), &qid))
        return vlt_error_set(VLT_ERR_FORMAT, "vqa baseline: sample '%s' has no .json with an integer question_id", key);
    const char *qt = str_of(js, "question_type"), *ans = m->overall, *img = str_of(js, "image");
    double share = 0;
    for (int k = 0; qt && k < m->n; k++)
        if (!strcmp(m->type[k], qt)) { ans = m->answer[k]; share = m->share[k]; }
    if (p->n % 256 == 0) VLT_TRY(grow(p, p->n + 256));
    int k = p->n++;
    p->qid[k] = qid;
    p->conf[k] = (float)share;
    p->question[k] = strdup(text ? text : "");
    p->answer[k] = strdup(ans);
    p->key[k] = strdup(key);
    p->image[k] = strdup(img ? img : "");
    if (!p->question[k] || !p->answer[k] || !p->key[k] || !p->image[k]) return vlt_error_set(VLT_ERR_NOMEM, "vqa baseline: out of memory");
    cJSON *ann = annotation_of(js, qid);
    if (ann) {
        cJSON_AddItemToArray(p->annotations, ann);
        p->n_annotated++;
    }
    return VLT_OK;
}

vlt_status vlt_vqa_majority(const char *train_shards, const char *shards, int limit, vlt_vqa_predictions *out,
                            char *overall, size_t overall_cap) {
    memset(out, 0, sizeof *out);
    pair_list l = {0};
    majority m = {0};
    vlt_status s = each_json(train_shards, 0, collect_pair, &l);
    if (s == VLT_OK && !l.n) s = vlt_error_set(VLT_ERR_ARG, "vqa baseline: %s has no answered questions", train_shards);
    if (s == VLT_OK) {
        qsort(l.pairs, (size_t)l.n, sizeof *l.pairs, cmp_str);
        m.type = calloc((size_t)l.n, sizeof *m.type);
        m.answer = calloc((size_t)l.n, sizeof *m.answer);
        m.share = calloc((size_t)l.n, sizeof *m.share);
        if (!m.type || !m.answer || !m.share) s = vlt_error_set(VLT_ERR_NOMEM, "vqa baseline: out of memory");
    }
    // runs of equal "type\tanswer" strings, within runs of equal types; and the overall counts
    int best_all = 0;
    char **sorted_ans = s == VLT_OK ? malloc(sizeof(char *) * (size_t)l.n) : NULL;
    for (int i = 0; s == VLT_OK && i < l.n;) {
        const char *tab = strchr(l.pairs[i], '\t');
        size_t tl = (size_t)(tab - l.pairs[i]);
        int j = i, best = 0, total = 0;
        const char *best_a = NULL;
        while (j < l.n && !strncmp(l.pairs[j], l.pairs[i], tl) && l.pairs[j][tl] == '\t') {
            int e = j;
            while (e < l.n && !strcmp(l.pairs[e], l.pairs[j])) e++;
            if (e - j > best) { best = e - j; best_a = l.pairs[j] + tl + 1; }
            total += e - j;
            j = e;
        }
        m.type[m.n] = strndup(l.pairs[i], tl);
        m.answer[m.n] = strdup(best_a);
        m.share[m.n++] = (double)best / total;
        i = j;
    }
    if (sorted_ans) {   // the most frequent answer overall
        for (int i = 0; i < l.n; i++) sorted_ans[i] = strchr(l.pairs[i], '\t') + 1;
        qsort(sorted_ans, (size_t)l.n, sizeof *sorted_ans, cmp_str);
        for (int i = 0; i < l.n;) {
            int e = i;
            while (e < l.n && !strcmp(sorted_ans[e], sorted_ans[i])) e++;
            if (e - i > best_all) { best_all = e - i; m.overall = sorted_ans[i]; }
            i = e;
        }
        snprintf(overall, overall_cap, "%s", m.overall);
    }
    if (s == VLT_OK && !(out->annotations = cJSON_CreateArray())) s = vlt_error_set(VLT_ERR_NOMEM, "vqa baseline: out of memory");
    m.out = out;
    if (s == VLT_OK) s = each_json(shards, limit, answer_by_type, &m);
    for (int i = 0; i < m.n; i++) {
        free(m.type[i]);
        free(m.answer[i]);
    }
    free(m.type);
    free(m.answer);
    free(m.share);
    free(sorted_ans);
    for (int i = 0; i < l.n; i++) free(l.pairs[i]);
    free(l.pairs);
    if (s != VLT_OK) vlt_vqa_predictions_free(out);
    return s;
}
