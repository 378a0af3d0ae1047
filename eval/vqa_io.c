// vqa_io.c — VQA accuracy from the official files (see vqa_io.h).
#include "eval/vqa_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/json_file.h"
#include "eval/vqa.h"

typedef struct {
    long long qid;
    const cJSON *item;  // the annotation or the prediction
    int index;
} qentry;

static int cmp_q(const void *a, const void *b) {
    const qentry *x = a, *y = b;
    return (x->qid > y->qid) - (x->qid < y->qid);
}

// Sorted (question_id, item) of an array; errors name path and item.
static vlt_status index_items(const char *path, const cJSON *arr, qentry **out, int *n) {
    int m = cJSON_GetArraySize(arr), k = 0;
    qentry *q = malloc((size_t)(m ? m : 1) * sizeof *q);
    if (!q) return vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(it, "question_id"), &q[k].qid)) {
            free(q);
            return vlt_error_set(VLT_ERR_FORMAT, "%s: item %d has no integer \"question_id\"", path, k);
        }
        q[k].item = it;
        q[k].index = k;
        k++;
    }
    qsort(q, (size_t)m, sizeof *q, cmp_q);
    for (int i = 1; i < m; i++)
        if (q[i].qid == q[i - 1].qid) {
            long long d = q[i].qid;
            free(q);
            return vlt_error_set(VLT_ERR_FORMAT, "%s: question_id %lld appears more than once", path, d);
        }
    *out = q;
    *n = m;
    return VLT_OK;
}

// Accuracy of one annotated question against its prediction.
static vlt_status score_one(const char *refs_path, const char *pred_path, const qentry *ann, const qentry *pred, double *acc) {
    const cJSON *answers = cJSON_GetObjectItemCaseSensitive(ann->item, "answers"), *a;
    const cJSON *pa = cJSON_GetObjectItemCaseSensitive(pred->item, "answer");
    if (!cJSON_IsString(pa))
        return vlt_error_set(VLT_ERR_FORMAT, "%s: item %d (question_id %lld) has no string \"answer\"", pred_path, pred->index, pred->qid);
    int n = cJSON_GetArraySize(answers), k = 0;
    if (!cJSON_IsArray(answers) || n < 1)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: annotation %d (question_id %lld) has no \"answers\" list", refs_path, ann->index, ann->qid);
    const char **strs = malloc((size_t)n * sizeof *strs);
    if (!strs) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(a, answers) {
        const cJSON *s = cJSON_IsString(a) ? a : cJSON_GetObjectItemCaseSensitive(a, "answer");
        if (!cJSON_IsString(s)) {
            free(strs);
            return vlt_error_set(VLT_ERR_FORMAT, "%s: annotation %d (question_id %lld): answer %d is not a string or {\"answer\": string}",
                                 refs_path, ann->index, ann->qid, k);
        }
        strs[k++] = s->valuestring;
    }
    vlt_status st = vlt_eval_vqa_accuracy(pa->valuestring, strs, n, acc);
    free(strs);
    return st;
}

// Adds acc to the type named by ann's `key` (when it has one) among names[0..*n).
static vlt_status add_type(const char *refs_path, const qentry *ann, const char *key, double acc, int cap, size_t name_len,
                           char *names, int *count, double *sum, int *n) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ann->item, key);
    if (!cJSON_IsString(t)) return VLT_OK;
    int i = 0;
    while (i < *n && strcmp(names + (size_t)i * name_len, t->valuestring) != 0) i++;
    if (i == *n) {
        if (*n == cap)
            return vlt_error_set(VLT_ERR_FORMAT, "%s: more than %d distinct \"%s\" values (annotation %d, question_id %lld)",
                                 refs_path, cap, key, ann->index, ann->qid);
        if (strlen(t->valuestring) >= name_len)
            return vlt_error_set(VLT_ERR_FORMAT, "%s: annotation %d (question_id %lld): \"%s\" longer than %zu bytes", refs_path,
                                 ann->index, ann->qid, key, name_len - 1);
        snprintf(names + (size_t)i * name_len, name_len, "%s", t->valuestring);
        (*n)++;
    }
    count[i]++;
    sum[i] += acc;  // a sum until the end
    return VLT_OK;
}

static vlt_status score_all(const char *pred_path, const char *refs_path, const qentry *anns, int na, const qentry *preds,
                            int np, int allow_subset, vlt_eval_vqa_result *r) {
    for (int i = 0; i < np; i++)
        if (!bsearch(&preds[i], anns, (size_t)na, sizeof *anns, cmp_q))
            return vlt_error_set(VLT_ERR_FORMAT, "%s: item %d: question_id %lld is not in %s", pred_path, preds[i].index,
                                 preds[i].qid, refs_path);
    double sum = 0;
    for (int i = 0; i < na; i++) {
        const qentry *p = bsearch(&anns[i], preds, (size_t)np, sizeof *preds, cmp_q);
        if (!p) {
            if (allow_subset) continue;
            return vlt_error_set(VLT_ERR_FORMAT, "%s has %d questions but %s answers %d: question_id %lld has no prediction "
                                 "(pass --allow-subset to score only the answered ones)", refs_path, na, pred_path, np, anns[i].qid);
        }
        double acc;
        VLT_TRY(score_one(refs_path, pred_path, &anns[i], p, &acc));
        sum += acc;
        r->n_questions++;
        VLT_TRY(add_type(refs_path, &anns[i], "answer_type", acc, VLT_EVAL_VQA_MAX_TYPES, sizeof r->type_name[0],
                         &r->type_name[0][0], r->type_count, r->type_accuracy, &r->n_types));
        VLT_TRY(add_type(refs_path, &anns[i], "question_type", acc, VLT_EVAL_VQA_MAX_QTYPES, sizeof r->qtype_name[0],
                         &r->qtype_name[0][0], r->qtype_count, r->qtype_accuracy, &r->n_qtypes));
    }
    r->accuracy = r->n_questions ? sum / r->n_questions : 0;
    for (int t = 0; t < r->n_types; t++) r->type_accuracy[t] /= r->type_count[t];
    for (int t = 0; t < r->n_qtypes; t++) r->qtype_accuracy[t] /= r->qtype_count[t];
    return VLT_OK;
}

vlt_status vlt_eval_vqa_files(const char *pred_path, const char *refs_path, int allow_subset, vlt_eval_vqa_result *out) {
    memset(out, 0, sizeof *out);
    cJSON *pj = NULL, *rj = NULL;
    qentry *anns = NULL, *preds = NULL;
    int na = 0, np = 0;
    vlt_status st = vlt_eval_json_load(pred_path, &pj);
    if (st == VLT_OK) st = vlt_eval_json_load(refs_path, &rj);
    const cJSON *annarr = rj && cJSON_IsArray(rj) ? rj : cJSON_GetObjectItemCaseSensitive(rj, "annotations");
    if (st == VLT_OK && !cJSON_IsArray(pj))
        st = vlt_error_set(VLT_ERR_FORMAT, "%s: expected a results array [{\"question_id\", \"answer\"}, ...]", pred_path);
    if (st == VLT_OK && !cJSON_IsArray(annarr))
        st = vlt_error_set(VLT_ERR_FORMAT, "%s: expected VQA annotations ({\"annotations\": [...]} or a list)", refs_path);
    if (st == VLT_OK) st = index_items(pred_path, pj, &preds, &np);
    if (st == VLT_OK) st = index_items(refs_path, annarr, &anns, &na);
    if (st == VLT_OK) st = score_all(pred_path, refs_path, anns, na, preds, np, allow_subset, out);
    if (st == VLT_OK && out->n_questions == 0) st = vlt_error_set(VLT_ERR_FORMAT, "%s: no question to score", pred_path);
    free(anns);
    free(preds);
    cJSON_Delete(pj);
    cJSON_Delete(rj);
    return st;
}
