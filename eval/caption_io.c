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

// Adds one image: its candidate and the references refs[first..first+count) (tokenized text in tok[]).
static vlt_status add_image(vlt_eval_caption_set *set, const char *candidate, const ref_entry *refs, int first,
                            int count, char *const *ref_tok) {
    const char **toks = calloc((size_t)count, sizeof *toks);
    if (!toks) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    for (int r = 0; r < count; r++) toks[r] = ref_tok ? ref_tok[refs[first + r].index] : refs[first + r].caption;
    vlt_status st = vlt_eval_caption_set_add(set, candidate, toks, count);
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

// COCOEvalCap's image order: the annotation file's "images" order (images it does not list follow
// in order of first annotation), restricted to the predicted images; predicted images the
// annotation file never lists come last, in prediction order. rank[k] = position of prediction k.
static vlt_status coco_order(const cJSON *refs_root, const ref_entry *refs, int n_refs, const long long *ids, int n_pred,
                             int *rank) {
    // (image id, position in the order) pairs, sorted by id for lookup
    int cap = n_refs + cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(refs_root, "images")) + 1, m = 0;
    ref_entry *pos = malloc((size_t)cap * sizeof *pos);  // image_id, index = position
    if (!pos) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    const cJSON *img;
    cJSON_ArrayForEach(img, cJSON_GetObjectItemCaseSensitive(refs_root, "images")) {
        long long id;
        if (vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(img, "id"), &id)) {
            pos[m] = (ref_entry){id, m, NULL};
            m++;
        }
    }
    // images without an "images" entry: by first annotation (refs are sorted by id, then index)
    int base = m;
    for (int r = 0; r < n_refs; r++)
        if (r == 0 || refs[r].image_id != refs[r - 1].image_id) pos[m++] = (ref_entry){refs[r].image_id, base + refs[r].index, NULL};
    qsort(pos, (size_t)m, sizeof *pos, cmp_ref);  // by id, then position: the first entry of an id wins
    // predictions sorted by their position in that order (unlisted ones after, in file order)
    ref_entry *pk = malloc((size_t)(n_pred ? n_pred : 1) * sizeof *pk);
    if (!pk) { free(pos); return vlt_error_set(VLT_ERR_NOMEM, "out of memory"); }
    for (int k = 0; k < n_pred; k++) {
        int f = find_first(pos, m, ids[k]);
        pk[k] = (ref_entry){f >= 0 ? pos[f].index : (long long)cap + k, k, NULL};
    }
    qsort(pk, (size_t)n_pred, sizeof *pk, cmp_ref);
    for (int k = 0; k < n_pred; k++) rank[pk[k].index] = k;
    free(pk);
    free(pos);
    return VLT_OK;
}

// A caption holding a line break other than '\n' (\r, \v, \f, U+0085, U+2028, U+2029) splits into
// two lines of the jar's output, and pycocoevalcap gives line i to caption i regardless: every
// later caption of the call is scored with the line of the one before it. vlt scores exactly
// that (the numbers equal pycocoevalcap's) and says so, because those numbers are not what the
// user meant; cleaning the captions (one line each) gives the intended scores.
static void warn_shifted(const char *path, const char *what, int extra) {
    fprintf(stderr, "vlt eval captions: warning: %s: %d %s line break(s) other than \\n (\\r, U+2028, ...): as in "
                    "pycocoevalcap, the captions after each are scored with the tokens of the line before them; "
                    "put each caption on one line for the intended scores\n", path, extra, what);
}

// pycocoevalcap's two tokenizer calls: every reference of the evaluated images in COCO order, then
// every candidate in the same order. ref_tok[annotation index] and pred_tok[k] get the results.
static vlt_status tokenize_as_coco(const char *pred_path, const char *refs_path, const cJSON *refs_root,
                                   const ref_entry *refs, int n_refs, const long long *ids, const char *const *caps,
                                   const int *first, const int *count, int n_pred, char **ref_tok, char **pred_tok) {
    int *rank = malloc((size_t)(n_pred ? n_pred : 1) * sizeof *rank), *by_rank = malloc((size_t)(n_pred ? n_pred : 1) * sizeof *by_rank);
    int total = 0;
    for (int k = 0; k < n_pred; k++) total += count[k];
    const char **stream = malloc((size_t)(total + n_pred + 1) * sizeof *stream);
    int *slot = malloc((size_t)(total + 1) * sizeof *slot);
    char **tok = calloc((size_t)(total + n_pred + 1), sizeof *tok);
    vlt_status st = VLT_OK;
    if (!rank || !by_rank || !stream || !slot || !tok) st = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    if (st == VLT_OK) st = coco_order(refs_root, refs, n_refs, ids, n_pred, rank);
    int n = 0, got = 0;
    if (st == VLT_OK) {
        for (int k = 0; k < n_pred; k++) by_rank[rank[k]] = k;
        for (int j = 0; j < n_pred; j++) {
            int k = by_rank[j];
            for (int r = 0; r < count[k]; r++) {
                slot[n] = refs[first[k] + r].index;
                stream[n++] = refs[first[k] + r].caption;
            }
        }
        st = vlt_eval_ptb_tokenize_batch(stream, n, tok, &got);
    }
    if (st == VLT_OK && got != n) warn_shifted(refs_path, "reference caption", got - n);
    for (int i = 0; i < n; i++) {
        if (st == VLT_OK) ref_tok[slot[i]] = tok[i]; else free(tok[i]);
        tok[i] = NULL;
    }
    if (st == VLT_OK) {
        for (int j = 0; j < n_pred; j++) stream[j] = caps[by_rank[j]];
        st = vlt_eval_ptb_tokenize_batch(stream, n_pred, tok, &got);
        if (st == VLT_OK && got != n_pred) warn_shifted(pred_path, "caption", got - n_pred);
        for (int j = 0; j < n_pred; j++) {
            if (st == VLT_OK) pred_tok[by_rank[j]] = tok[j]; else free(tok[j]);
        }
    }
    free(rank);
    free(by_rank);
    free(stream);
    free(slot);
    free(tok);
    return st;
}

static vlt_status load_predictions(const char *pred_path, const char *refs_path, const cJSON *preds,
                                   const cJSON *refs_root, const ref_entry *refs, int n_refs,
                                   const vlt_eval_caption_load_opts *o, vlt_eval_caption_set *set, long long *ids) {
    int n_pred = cJSON_GetArraySize(preds), k = 0;
    size_t n1 = (size_t)(n_pred ? n_pred : 1);
    const char **caps = calloc(n1, sizeof *caps);
    int *first = calloc(n1, sizeof *first), *count = calloc(n1, sizeof *count);
    char **pred_tok = calloc(n1, sizeof *pred_tok), **ref_tok = calloc((size_t)n_refs + 1, sizeof *ref_tok);
    long long *sorted = malloc(n1 * sizeof *sorted);
    vlt_status st = VLT_OK;
    if (!caps || !first || !count || !pred_tok || !ref_tok || !sorted) st = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    const cJSON *p;
    cJSON_ArrayForEach(p, preds) {
        if (st != VLT_OK) break;
        const cJSON *cap = cJSON_GetObjectItemCaseSensitive(p, "caption");
        if (!vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(p, "image_id"), &ids[k]) || !cJSON_IsString(cap)) {
            st = vlt_error_set(VLT_ERR_FORMAT, "%s: item %d needs an integer \"image_id\" and a string \"caption\"", pred_path, k);
            break;
        }
        if ((first[k] = find_first(refs, n_refs, ids[k])) < 0) {
            st = vlt_error_set(VLT_ERR_FORMAT, "%s: item %d: image_id %lld has no reference caption in %s", pred_path, k,
                               ids[k], refs_path);
            break;
        }
        while (first[k] + count[k] < n_refs && refs[first[k] + count[k]].image_id == ids[k]) count[k]++;
        caps[k] = cap->valuestring;
        k++;
    }
    if (st == VLT_OK) {
        memcpy(sorted, ids, (size_t)k * sizeof *sorted);
        qsort(sorted, (size_t)k, sizeof *sorted, cmp_ll);
        for (int i = 1; i < k; i++)
            if (sorted[i] == sorted[i - 1]) {
                st = vlt_error_set(VLT_ERR_FORMAT, "%s: image_id %lld has more than one caption (one per image expected)",
                                   pred_path, sorted[i]);
                break;
            }
    }
    if (st == VLT_OK && !o->allow_subset) st = check_coverage(pred_path, refs_path, refs, n_refs, ids, k);
    if (st == VLT_OK && !o->pretokenized)
        st = tokenize_as_coco(pred_path, refs_path, refs_root, refs, n_refs, ids, caps, first, count, k, ref_tok, pred_tok);
    for (int i = 0; i < k && st == VLT_OK; i++) {
        st = add_image(set, o->pretokenized ? caps[i] : pred_tok[i], refs, first[i], count[i], o->pretokenized ? NULL : ref_tok);
        if (st != VLT_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", vlt_error_message());
            st = vlt_error_set(st, "%s: item %d: %s", pred_path, i, why);
        }
    }
    if (pred_tok) for (int i = 0; i < k; i++) free(pred_tok[i]);
    if (ref_tok) for (int i = 0; i < n_refs; i++) free(ref_tok[i]);
    free(caps);
    free(first);
    free(count);
    free(pred_tok);
    free(ref_tok);
    free(sorted);
    return st;
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
    if (st == VLT_OK) st = load_predictions(pred_path, refs_path, pj, rj, refs, n_refs, &o, s, ids);
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
