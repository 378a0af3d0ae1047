// caption_io.c — COCO results + annotations -> caption set (see caption_io.h).
#include "eval/caption_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/json_file.h"
#include "eval/ptb_tokenize.h"

typedef struct {
    long long image_id;
    int index;  // position in "annotations"
    const char *caption;
} ref_entry;

static int cmp_ref(const void *a, const void *b) {
    const ref_entry *x = a, *y = b;
    if (x->image_id != y->image_id) return x->image_id < y->image_id ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

// First entry with image_id == id in the sorted refs, or -1.
static int find_first(const ref_entry *r, int n, long long id) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (r[mid].image_id < id) lo = mid + 1; else hi = mid;
    }
    return lo < n && r[lo].image_id == id ? lo : -1;
}

// The references of refs_path, sorted by image id (captions point into root).
static vlt_status load_refs(const char *path, const cJSON *root, ref_entry **out, int *n) {
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
    if (!cJSON_IsArray(anns))
        return vlt_error_set(VLT_ERR_FORMAT, "%s: expected a COCO annotation file (an object with an \"annotations\" array)", path);
    int m = cJSON_GetArraySize(anns), k = 0;
    ref_entry *r = malloc((size_t)(m ? m : 1) * sizeof *r);
    if (!r) return vlt_error_set(VLT_ERR_NOMEM, "%s: out of memory", path);
    const cJSON *a;
    cJSON_ArrayForEach(a, anns) {
        const cJSON *cap = cJSON_GetObjectItemCaseSensitive(a, "caption");
        if (!vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(a, "image_id"), &r[k].image_id) || !cJSON_IsString(cap)) {
            free(r);
            return vlt_error_set(VLT_ERR_FORMAT, "%s: annotations[%d] needs an integer \"image_id\" and a string \"caption\"", path, k);
        }
        r[k].index = k;
        r[k].caption = cap->valuestring;
        k++;
    }
    qsort(r, (size_t)m, sizeof *r, cmp_ref);
    *out = r;
    *n = m;
    return VLT_OK;
}

// The caption as scored: PTB-tokenized into a new string, or (pretokenized) the text itself.
static vlt_status tokenize_or_copy(const char *text, int pretokenized, char **out) {
    if (!pretokenized) return vlt_eval_ptb_tokenize(text, out);
    *out = (char *)text;
    return VLT_OK;
}

// Adds prediction k (image id, caption) with the references refs[first..] of the same image.
static vlt_status add_image(vlt_eval_caption_set *set, const char *caption, const ref_entry *refs, int first,
                            int count, int pretokenized) {
    char **toks = calloc((size_t)count + 1, sizeof *toks);
    if (!toks) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    vlt_status st = tokenize_or_copy(caption, pretokenized, &toks[count]);
    for (int r = 0; r < count && st == VLT_OK; r++) st = tokenize_or_copy(refs[first + r].caption, pretokenized, &toks[r]);
    if (st == VLT_OK) st = vlt_eval_caption_set_add(set, toks[count], (const char *const *)toks, count);
    if (!pretokenized)
        for (int r = 0; r <= count; r++) free(toks[r]);
    free(toks);
    return st;
}

// Every referenced image must be predicted unless allow_subset.
static vlt_status check_coverage(const char *pred_path, const char *refs_path, const ref_entry *refs, int n_refs,
                                 long long *ids, int n_pred) {
    long long *sorted = malloc((size_t)(n_pred ? n_pred : 1) * sizeof *sorted);
    if (!sorted) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    memcpy(sorted, ids, (size_t)n_pred * sizeof *sorted);
    qsort(sorted, (size_t)n_pred, sizeof *sorted, cmp_ll);
    int n_images = 0, missing = 0;
    long long first_missing = 0;
    for (int r = 0; r < n_refs; r++) {
        if (r > 0 && refs[r].image_id == refs[r - 1].image_id) continue;
        n_images++;
        if (!bsearch(&refs[r].image_id, sorted, (size_t)n_pred, sizeof *sorted, cmp_ll) && !missing++)
            first_missing = refs[r].image_id;
    }
    free(sorted);
    if (missing)
        return vlt_error_set(VLT_ERR_FORMAT,
                             "%s has references for %d images but %s predicts only %d of them: %d missing, the first "
                             "image_id %lld (pass --allow-subset to score only the predicted images)",
                             refs_path, n_images, pred_path, n_images - missing, missing, first_missing);
    return VLT_OK;
}

static vlt_status load_predictions(const char *pred_path, const char *refs_path, const cJSON *preds,
                                   const ref_entry *refs, int n_refs, const vlt_eval_caption_load_opts *o,
                                   vlt_eval_caption_set *set, long long *ids) {
    int k = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, preds) {
        const cJSON *cap = cJSON_GetObjectItemCaseSensitive(p, "caption");
        if (!vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(p, "image_id"), &ids[k]) || !cJSON_IsString(cap))
            return vlt_error_set(VLT_ERR_FORMAT, "%s: item %d needs an integer \"image_id\" and a string \"caption\"", pred_path, k);
        int first = find_first(refs, n_refs, ids[k]);
        if (first < 0)
            return vlt_error_set(VLT_ERR_FORMAT, "%s: item %d: image_id %lld has no reference caption in %s", pred_path, k,
                                 ids[k], refs_path);
        int count = 0;
        while (first + count < n_refs && refs[first + count].image_id == ids[k]) count++;
        vlt_status st = add_image(set, cap->valuestring, refs, first, count, o->pretokenized);
        if (st != VLT_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", vlt_error_message());
            return vlt_error_set(st, "%s: item %d: %s", pred_path, k, why);
        }
        k++;
    }
    long long *sorted = malloc((size_t)(k ? k : 1) * sizeof *sorted);
    if (!sorted) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    memcpy(sorted, ids, (size_t)k * sizeof *sorted);
    qsort(sorted, (size_t)k, sizeof *sorted, cmp_ll);
    for (int i = 1; i < k; i++)
        if (sorted[i] == sorted[i - 1]) {
            long long dup = sorted[i];
            free(sorted);
            return vlt_error_set(VLT_ERR_FORMAT, "%s: image_id %lld has more than one caption (one per image expected)",
                                 pred_path, dup);
        }
    free(sorted);
    return o->allow_subset ? VLT_OK : check_coverage(pred_path, refs_path, refs, n_refs, ids, k);
}

vlt_status vlt_eval_captions_from_json(const cJSON *pj, const char *pred_path, const cJSON *rj,
                                       const char *refs_path, const vlt_eval_caption_load_opts *opts,
                                       vlt_eval_caption_set **set, long long **image_ids, int *n) {
    vlt_eval_caption_load_opts o = opts ? *opts : (vlt_eval_caption_load_opts){0, 0};
    ref_entry *refs = NULL;
    long long *ids = NULL;
    vlt_eval_caption_set *s = NULL;
    int n_refs = 0, n_pred = 0;
    vlt_status st = VLT_OK;
    if (!cJSON_IsArray(pj))
        st = vlt_error_set(VLT_ERR_FORMAT, "%s: expected a COCO results array [{\"image_id\", \"caption\"}, ...]", pred_path);
    if (st == VLT_OK && (n_pred = cJSON_GetArraySize(pj)) == 0)
        st = vlt_error_set(VLT_ERR_FORMAT, "%s: no predictions", pred_path);
    if (st == VLT_OK) st = load_refs(refs_path, rj, &refs, &n_refs);
    if (st == VLT_OK && (!(ids = malloc((size_t)n_pred * sizeof *ids)) || !(s = vlt_eval_caption_set_new())))
        st = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    if (st == VLT_OK) st = load_predictions(pred_path, refs_path, pj, refs, n_refs, &o, s, ids);
    free(refs);
    if (st != VLT_OK) {
        vlt_eval_caption_set_free(s);
        free(ids);
        return st;
    }
    *set = s;
    *image_ids = ids;
    *n = n_pred;
    return VLT_OK;
}

vlt_status vlt_eval_captions_load(const char *pred_path, const char *refs_path,
                                  const vlt_eval_caption_load_opts *opts,
                                  vlt_eval_caption_set **set, long long **image_ids, int *n) {
    cJSON *pj = NULL, *rj = NULL;
    vlt_status st = vlt_eval_json_load(pred_path, &pj);
    if (st == VLT_OK) st = vlt_eval_json_load(refs_path, &rj);
    if (st == VLT_OK) st = vlt_eval_captions_from_json(pj, pred_path, rj, refs_path, opts, set, image_ids, n);
    cJSON_Delete(pj);
    cJSON_Delete(rj);
    return st;
}
