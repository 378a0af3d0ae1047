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
    int index;          // position in its file
} qentry;

// By question_id, then file position (so the last of equal ids is the last of its run).
static int cmp_q(const void *a, const void *b) {
    const qentry *x = a, *y = b;
    if (x->qid != y->qid) return (x->qid > y->qid) - (x->qid < y->qid);
    return (x->index > y->index) - (x->index < y->index);
}

static int cmp_qid(const void *key, const void *b) {
    long long k = *(const long long *)key, q = ((const qentry *)b)->qid;
    return (k > q) - (k < q);
}

// The last entry of qid in a sorted array (the one that wins, as a Python dict built in file
// order), or NULL.
static const qentry *find_last(const qentry *q, int n, long long qid) {
    const qentry *e = bsearch(&qid, q, (size_t)n, sizeof *q, cmp_qid);
    if (!e) return NULL;
    while (e + 1 < q + n && e[1].qid == qid) e++;
    return e;
}

// Items of arr in file order (*inorder) and sorted (*sorted); counts the repeated ids.
static vlt_status index_items(const char *path, const cJSON *arr, qentry **inorder, qentry **sorted, int *n, int *n_dup,
                              long long *first_dup) {
    int m = cJSON_GetArraySize(arr), k = 0;
    qentry *q = malloc((size_t)(m ? m : 1) * sizeof *q), *s = malloc((size_t)(m ? m : 1) * sizeof *s);
    if (!q || !s) { free(q); free(s); return vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory", path); }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(it, "question_id"), &q[k].qid)) {
            free(q);
            free(s);
            return vlt_error_set(VLT_ERR_FORMAT, "%s: item %d has no integer \"question_id\"", path, k);
        }
        q[k].item = it;
        q[k].index = k;
        k++;
    }
    memcpy(s, q, (size_t)m * sizeof *q);
    qsort(s, (size_t)m, sizeof *s, cmp_q);
    *n_dup = 0;
    int first_index = m;
    for (int i = 1; i < m; i++)
        if (s[i].qid == s[i - 1].qid) {
            (*n_dup)++;
            if (s[i].index < first_index) { first_index = s[i].index; *first_dup = s[i].qid; }
        }
    *inorder = q;
    *sorted = s;
    *n = m;
    return VLT_OK;
}

// The answers of one annotation, mutable (the official code rewrites them in place), and the
// dict-equality key of each: answers j and k are equal dicts when same[j] == same[k] and their
// processed strings are equal (Python dict equality compares every key; the strings apart,
// that is the other keys, compared once here).
typedef struct {
    int n;
    char **ans;
    int *same;  // NULL: distinct dicts (a list of strings)
} answer_set;

static void answer_set_free(answer_set *a) {
    for (int j = 0; a->ans && j < a->n; j++) free(a->ans[j]);
    free(a->ans);
    free(a->same);
    memset(a, 0, sizeof *a);
}

static vlt_status load_answers(const char *refs_path, const qentry *ann, answer_set *out) {
    memset(out, 0, sizeof *out);
    const cJSON *answers = cJSON_GetObjectItemCaseSensitive(ann->item, "answers"), *a;
    int n = cJSON_GetArraySize(answers), k = 0, objects = 0;
    if (!cJSON_IsArray(answers) || n < 1)
        return vlt_error_set(VLT_ERR_FORMAT, "%s: annotation %d (question_id %lld) has no \"answers\" list", refs_path, ann->index, ann->qid);
    out->ans = calloc((size_t)n, sizeof *out->ans);
    cJSON **rest = calloc((size_t)n, sizeof *rest);  // each answer dict without "answer"
    if (!out->ans || !rest) { free(rest); answer_set_free(out); return vlt_error_set(VLT_ERR_NOMEM, "out of memory"); }
    out->n = n;
    vlt_status st = VLT_OK;
    cJSON_ArrayForEach(a, answers) {
        const cJSON *s = cJSON_IsString(a) ? a : cJSON_GetObjectItemCaseSensitive(a, "answer");
        if (!cJSON_IsString(s)) {
            st = vlt_error_set(VLT_ERR_FORMAT, "%s: annotation %d (question_id %lld): answer %d is not a string or {\"answer\": string}",
                               refs_path, ann->index, ann->qid, k);
            break;
        }
        if (!(out->ans[k] = strdup(s->valuestring))) { st = vlt_error_set(VLT_ERR_NOMEM, "out of memory"); break; }
        if (cJSON_IsObject(a)) {
            objects++;
            if (!(rest[k] = cJSON_Duplicate(a, 1))) { st = vlt_error_set(VLT_ERR_NOMEM, "out of memory"); break; }
            cJSON_DeleteItemFromObjectCaseSensitive(rest[k], "answer");
        }
        k++;
    }
    if (st == VLT_OK && objects == n) {
        if (!(out->same = malloc((size_t)n * sizeof *out->same))) st = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
        for (int j = 0; st == VLT_OK && j < n; j++) {
            out->same[j] = j;
            for (int i = 0; i < j; i++)
                if (cJSON_Compare(rest[i], rest[j], 1)) { out->same[j] = out->same[i]; break; }
        }
    }
    for (int j = 0; j < n; j++) cJSON_Delete(rest[j]);
    free(rest);
    if (st != VLT_OK) answer_set_free(out);
    return st;
}

// Adds acc to the type named by ann's `key` (when it has one) among *groups.
static vlt_status add_type(const qentry *ann, const char *key, double acc, vlt_eval_vqa_group **groups, int *n, int *cap) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ann->item, key);
    if (!cJSON_IsString(t)) return VLT_OK;
    int i = 0;
    while (i < *n && strcmp((*groups)[i].name, t->valuestring) != 0) i++;
    if (i == *n) {
        if (*n == *cap) {
            int nc = *cap ? 2 * *cap : 16;
            vlt_eval_vqa_group *g = realloc(*groups, (size_t)nc * sizeof *g);
            if (!g) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
            *groups = g;
            *cap = nc;
        }
        vlt_eval_vqa_group *g = &(*groups)[i];
        if (!(g->name = strdup(t->valuestring))) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
        g->count = 0;
        g->accuracy = 0;
        (*n)++;
    }
    (*groups)[i].count++;
    (*groups)[i].accuracy += acc;  // a sum until the end, in scoring order as the official sum()
    return VLT_OK;
}

typedef struct {
    const char *pred_path, *refs_path;
    qentry *anns, *anns_sorted, *preds, *preds_sorted;
    int na, np;
    answer_set *sets;  // per sorted annotation, loaded when first scored
    int *id_slot;      // per sorted annotation: its row in the per-question output, or -1
} scoring;

static vlt_status score_all(scoring *s, vlt_eval_vqa_version version, int allow_subset, vlt_eval_vqa_result *r) {
    for (int i = 0; i < s->np; i++)
        if (!find_last(s->anns_sorted, s->na, s->preds[i].qid))
            return vlt_error_set(VLT_ERR_FORMAT, "%s: item %d: question_id %lld is not in %s", s->pred_path, s->preds[i].index,
                                 s->preds[i].qid, s->refs_path);
    int cap_t = 0, cap_q = 0;
    double sum = 0;
    r->qid = malloc((size_t)(s->na ? s->na : 1) * sizeof *r->qid);
    r->q_accuracy = malloc((size_t)(s->na ? s->na : 1) * sizeof *r->q_accuracy);
    if (!r->qid || !r->q_accuracy) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < s->na; i++) {  // the official quesIds: every annotation, in file order
        long long qid = s->anns[i].qid;
        const qentry *ann = find_last(s->anns_sorted, s->na, qid);  // createIndex: the last wins
        const qentry *p = find_last(s->preds_sorted, s->np, qid);
        if (!p) {
            if (allow_subset) continue;
            return vlt_error_set(VLT_ERR_FORMAT, "%s has %d questions but %s answers %d: question_id %lld has no prediction "
                                 "(pass --allow-subset to score only the answered ones)", s->refs_path, s->na, s->pred_path,
                                 s->np, qid);
        }
        const cJSON *pa = cJSON_GetObjectItemCaseSensitive(p->item, "answer");
        if (!cJSON_IsString(pa))
            return vlt_error_set(VLT_ERR_FORMAT, "%s: item %d (question_id %lld) has no string \"answer\"", s->pred_path, p->index, qid);
        size_t k = (size_t)(ann - s->anns_sorted);
        if (!s->sets[k].ans) VLT_TRY(load_answers(s->refs_path, ann, &s->sets[k]));
        double acc;
        vlt_status st = vlt_eval_vqa_score(version, pa->valuestring, s->sets[k].ans, s->sets[k].same, s->sets[k].n, &acc);
        if (st != VLT_OK) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", vlt_error_message());
            return vlt_error_set(st, "%s: annotation %d (question_id %lld): %s", s->refs_path, ann->index, qid, msg);
        }
        sum += acc;
        r->n_questions++;
        if (s->id_slot[k] < 0) {
            s->id_slot[k] = r->n_ids++;
            r->qid[s->id_slot[k]] = qid;
        }
        r->q_accuracy[s->id_slot[k]] = acc;  // evalQA[quesId]: the last scoring
        VLT_TRY(add_type(ann, "answer_type", acc, &r->types, &r->n_types, &cap_t));
        VLT_TRY(add_type(ann, "question_type", acc, &r->qtypes, &r->n_qtypes, &cap_q));
    }
    r->accuracy = r->n_questions ? sum / r->n_questions : 0;
    for (int t = 0; t < r->n_types; t++) r->types[t].accuracy /= r->types[t].count;
    for (int t = 0; t < r->n_qtypes; t++) r->qtypes[t].accuracy /= r->qtypes[t].count;
    return VLT_OK;
}

void vlt_eval_vqa_result_free(vlt_eval_vqa_result *r) {
    if (!r) return;
    for (int t = 0; t < r->n_types; t++) free(r->types[t].name);
    for (int t = 0; t < r->n_qtypes; t++) free(r->qtypes[t].name);
    free(r->types);
    free(r->qtypes);
    free(r->qid);
    free(r->q_accuracy);
    memset(r, 0, sizeof *r);
}

vlt_status vlt_eval_vqa_files(const char *pred_path, const char *refs_path, vlt_eval_vqa_version version, int allow_subset,
                              vlt_eval_vqa_result *out) {
    memset(out, 0, sizeof *out);
    out->version = version;
    cJSON *pj = NULL, *rj = NULL;
    scoring s = {.pred_path = pred_path, .refs_path = refs_path};
    vlt_status st = vlt_eval_json_load(pred_path, &pj);
    if (st == VLT_OK) st = vlt_eval_json_load(refs_path, &rj);
    const cJSON *annarr = rj && cJSON_IsArray(rj) ? rj : cJSON_GetObjectItemCaseSensitive(rj, "annotations");
    if (st == VLT_OK && !cJSON_IsArray(pj))
        st = vlt_error_set(VLT_ERR_FORMAT, "%s: expected a results array [{\"question_id\", \"answer\"}, ...]", pred_path);
    if (st == VLT_OK && !cJSON_IsArray(annarr))
        st = vlt_error_set(VLT_ERR_FORMAT, "%s: expected VQA annotations ({\"annotations\": [...]} or a list)", refs_path);
    if (st == VLT_OK)
        st = index_items(pred_path, pj, &s.preds, &s.preds_sorted, &s.np, &out->n_dup_predictions, &out->first_dup_prediction);
    if (st == VLT_OK)
        st = index_items(refs_path, annarr, &s.anns, &s.anns_sorted, &s.na, &out->n_dup_annotations, &out->first_dup_annotation);
    if (st == VLT_OK) {
        s.sets = calloc((size_t)(s.na ? s.na : 1), sizeof *s.sets);
        s.id_slot = malloc((size_t)(s.na ? s.na : 1) * sizeof *s.id_slot);
        if (!s.sets || !s.id_slot) st = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
        for (int i = 0; st == VLT_OK && i < s.na; i++) s.id_slot[i] = -1;
    }
    if (st == VLT_OK) st = score_all(&s, version, allow_subset, out);
    if (st == VLT_OK && out->n_questions == 0) st = vlt_error_set(VLT_ERR_FORMAT, "%s: no question to score", pred_path);
    if (st != VLT_OK) vlt_eval_vqa_result_free(out);
    for (int i = 0; s.sets && i < s.na; i++) answer_set_free(&s.sets[i]);
    free(s.sets);
    free(s.id_slot);
    free(s.anns);
    free(s.anns_sorted);
    free(s.preds);
    free(s.preds_sorted);
    cJSON_Delete(pj);
    cJSON_Delete(rj);
    return st;
}
