// vqa_pack.c — VQA question/answer sets into webdataset shards, the answer vocabulary (see
// vqa_pack.h).
#include "data/vqa_pack.h"

#include "data/files.h"
#include "data/pack_run.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

static const char *SKIP_NAMES[VLT_VQA_N_SKIP] = {"missing image", "bad image", "no question", "no answers", "bad item"};

const char *vlt_vqa_skip_name(vlt_vqa_skip reason) {
    return reason >= 0 && reason < VLT_VQA_N_SKIP ? SKIP_NAMES[reason] : "?";
}

// --- items ----------------------------------------------------------------------------------------

typedef struct {
    char *path;         // jsonl: the image file; official: NULL (found by image_id)
    long long image_id;
    char split[32];     // official: COCO split of the image file names
    char *question;
    cJSON *meta;        // the .json fields (owned)
    int skip;           // -1 or a vlt_vqa_skip known at load time
    char what[200];     // names the item in a skip message
} item;

typedef struct {
    item *v;
    size_t n, cap;
} item_list;

static vlt_status push(item_list *l, item it) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        item *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(it.path);
            free(it.question);
            cJSON_Delete(it.meta);
            return vlt_error_set(VLT_ERR_NOMEM, "out of memory reading the questions");
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = it;
    return VLT_OK;
}

static void items_free(item_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].question);
        cJSON_Delete(l->v[i].meta);
    }
    free(l->v);
}

// Adds answers (raw), answers_processed and answer_scores to meta from the strings in raw[0..n).
static vlt_status add_answers(const vlt_vqa_answer_fns *fns, const char *const *raw, int n, cJSON *meta) {
    cJSON *ra = cJSON_AddArrayToObject(meta, "answers"), *pa = cJSON_AddArrayToObject(meta, "answers_processed");
    cJSON *sc = cJSON_AddObjectToObject(meta, "answer_scores");
    char **proc = calloc((size_t)n, sizeof *proc);
    const char **uniq = calloc((size_t)n, sizeof *uniq);
    double *score = calloc((size_t)n, sizeof *score);
    vlt_status s = (!ra || !pa || !sc || !proc || !uniq || !score) ? vlt_error_set(VLT_ERR_NOMEM, "out of memory") : VLT_OK;
    for (int j = 0; s == VLT_OK && j < n; j++) {
        cJSON_AddItemToArray(ra, cJSON_CreateString(raw[j]));
        s = fns->normalize(raw[j], &proc[j]);
        if (s == VLT_OK) cJSON_AddItemToArray(pa, cJSON_CreateString(proc[j]));
    }
    if (s == VLT_OK) {
        int u = fns->soft_scores((const char *const *)proc, n, uniq, score);
        for (int k = 0; k < u; k++) cJSON_AddNumberToObject(sc, uniq[k], score[k]);
    }
    for (int j = 0; j < n; j++) free(proc[j]);
    free(proc);
    free(uniq);
    free(score);
    return s;
}

typedef struct {
    long long qid;
    const cJSON *ann;
    int index;
} ann_ref;

static int cmp_ann(const void *a, const void *b) {
    const ann_ref *x = a, *y = b;
    if (x->qid != y->qid) return (x->qid > y->qid) - (x->qid < y->qid);
    return (x->index > y->index) - (x->index < y->index);
}

static int get_id(const cJSON *o, const char *key, long long *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(x) && x->valuedouble == (double)(long long)x->valuedouble) { *v = (long long)x->valuedouble; return 1; }
    if (cJSON_IsString(x) && x->valuestring[0]) {
        char *end;
        long long t = strtoll(x->valuestring, &end, 10);
        if (!*end) { *v = t; return 1; }
    }
    return 0;
}

static const cJSON *list_of(const cJSON *root, const char *key) {
    return cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, key);
}

static void copy_string_field(const cJSON *from, const char *key, cJSON *to) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(from, key);
    if (cJSON_IsString(x)) cJSON_AddStringToObject(to, key, x->valuestring);
}

// The official VQAv2 / VQA-CP pair.
static vlt_status load_official(const vlt_vqa_pack_source *src, item_list *l, vlt_vqa_pack_stats *stats) {
    cJSON *qroot = NULL, *aroot = NULL;
    ann_ref *refs = NULL;
    int na = 0;
    vlt_status s = vlt_read_json_file(src->questions, &qroot);
    const cJSON *qs = s == VLT_OK ? list_of(qroot, "questions") : NULL;
    if (s == VLT_OK && !cJSON_IsArray(qs))
        s = vlt_error_set(VLT_ERR_FORMAT, "%s: expected VQA questions ({\"questions\": [...]} or a list)", src->questions);
    if (s == VLT_OK && src->annotations) {
        s = vlt_read_json_file(src->annotations, &aroot);
        const cJSON *as = s == VLT_OK ? list_of(aroot, "annotations") : NULL;
        if (s == VLT_OK && !cJSON_IsArray(as))
            s = vlt_error_set(VLT_ERR_FORMAT, "%s: expected VQA annotations ({\"annotations\": [...]} or a list)", src->annotations);
        if (s == VLT_OK) {
            int m = cJSON_GetArraySize(as);
            refs = malloc((size_t)(m ? m : 1) * sizeof *refs);
            if (!refs) s = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
            const cJSON *a;
            cJSON_ArrayForEach(a, as) {
                if (s != VLT_OK) break;
                if (!get_id(a, "question_id", &refs[na].qid))
                    s = vlt_error_set(VLT_ERR_FORMAT, "%s: annotation %d has no integer \"question_id\"", src->annotations, na);
                refs[na].ann = a;
                refs[na].index = na;
                na++;
            }
            if (s == VLT_OK) qsort(refs, (size_t)na, sizeof *refs, cmp_ann);
            for (int i = 1; s == VLT_OK && i < na; i++) stats->duplicate_annotations += refs[i].qid == refs[i - 1].qid;
        }
    }
    const cJSON *subtype = qroot ? cJSON_GetObjectItemCaseSensitive(qroot, "data_subtype") : NULL;
    const cJSON *q;
    int qi = 0;
    if (s == VLT_OK) cJSON_ArrayForEach(q, qs) {
        if (src->limit > 0 && (long long)l->n >= src->limit) break;
        item it = {.skip = -1};
        long long qid = 0;
        snprintf(it.what, sizeof it.what, "%s: question %d", src->questions, qi);
        qi++;
        if (!get_id(q, "question_id", &qid) || !get_id(q, "image_id", &it.image_id)) {
            it.skip = VLT_VQA_SKIP_BAD_ITEM;
            snprintf(it.what + strlen(it.what), sizeof it.what - strlen(it.what), " has no integer question_id/image_id");
            if ((s = push(l, it)) != VLT_OK) break;
            continue;
        }
        snprintf(it.what, sizeof it.what, "%s: question_id %lld", src->questions, qid);
        const cJSON *split = cJSON_GetObjectItemCaseSensitive(q, "coco_split");
        if (!cJSON_IsString(split)) split = subtype;
        if (cJSON_IsString(split)) snprintf(it.split, sizeof it.split, "%s", split->valuestring);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(q, "question");
        it.meta = cJSON_CreateObject();
        if (!it.meta) { s = vlt_error_set(VLT_ERR_NOMEM, "out of memory"); break; }
        cJSON_AddNumberToObject(it.meta, "question_id", (double)qid);
        cJSON_AddNumberToObject(it.meta, "image_id", (double)it.image_id);
        if (!cJSON_IsString(text) || vlt_pack_blank(text->valuestring)) it.skip = VLT_VQA_SKIP_NO_QUESTION;
        else {
            it.question = strdup(text->valuestring);
            cJSON_AddStringToObject(it.meta, "question", text->valuestring);
        }
        if (refs && it.skip < 0) {
            ann_ref key = {.qid = qid, .index = na};  // sorts after every annotation of qid
            size_t lo = 0, hi = (size_t)na;           // upper bound: the last annotation of qid wins
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (cmp_ann(&refs[mid], &key) < 0) lo = mid + 1;
                else hi = mid;
            }
            const cJSON *ann = lo > 0 && refs[lo - 1].qid == qid ? refs[lo - 1].ann : NULL;
            const cJSON *answers = ann ? cJSON_GetObjectItemCaseSensitive(ann, "answers") : NULL;
            int n = cJSON_GetArraySize(answers);
            if (!cJSON_IsArray(answers) || n == 0) it.skip = VLT_VQA_SKIP_NO_ANSWERS;
            else {
                const char **raw = malloc((size_t)n * sizeof *raw);
                int k = 0;
                const cJSON *a;
                cJSON_ArrayForEach(a, answers) {
                    const cJSON *str = cJSON_IsString(a) ? a : cJSON_GetObjectItemCaseSensitive(a, "answer");
                    if (!cJSON_IsString(str)) break;
                    raw[k++] = str->valuestring;
                }
                if (k < n) {
                    free(raw);
                    s = vlt_error_set(VLT_ERR_FORMAT, "%s: question_id %lld: answer %d is not a string or {\"answer\": string}",
                                      src->annotations, qid, k);
                    cJSON_Delete(it.meta);
                    free(it.question);
                    break;
                }
                s = add_answers(&src->fns, raw, n, it.meta);
                free(raw);
                copy_string_field(ann, "multiple_choice_answer", it.meta);
                copy_string_field(ann, "answer_type", it.meta);
                copy_string_field(ann, "question_type", it.meta);
            }
        }
        if (s == VLT_OK) s = push(l, it);
        else { cJSON_Delete(it.meta); free(it.question); }
        if (s != VLT_OK) break;
    }
    free(refs);
    cJSON_Delete(qroot);
    cJSON_Delete(aroot);
    return s;
}

// The JSON-lines domain format.
static vlt_status load_jsonl(const vlt_vqa_pack_source *src, item_list *l) {
    FILE *f = fopen(src->jsonl, "r");
    if (!f) return vlt_error_set(VLT_ERR_IO, "cannot open %s: %s", src->jsonl, strerror(errno));
    char *base = vlt_pack_base_dir(src->images, src->jsonl);
    // image ids for lines without one: the index of the image path in order of first appearance
    char **seen = NULL;
    size_t n_seen = 0, cap_seen = 0;
    char *line = NULL;
    size_t cap = 0;
    long long lineno = 0, qcount = 0;
    vlt_status s = VLT_OK;
    while (s == VLT_OK && getline(&line, &cap, f) > 0) {
        lineno++;
        if (vlt_pack_blank(line)) continue;
        if (src->limit > 0 && (long long)l->n >= src->limit) break;
        item it = {.skip = -1};
        snprintf(it.what, sizeof it.what, "%s:%lld", src->jsonl, lineno);
        cJSON *o = cJSON_Parse(line);
        const cJSON *img = o ? cJSON_GetObjectItemCaseSensitive(o, "image") : NULL;
        const cJSON *text = o ? cJSON_GetObjectItemCaseSensitive(o, "question") : NULL;
        const cJSON *answers = o ? cJSON_GetObjectItemCaseSensitive(o, "answers") : NULL;
        long long qid = qcount++;
        if (!cJSON_IsObject(o) || !cJSON_IsString(img) || !img->valuestring[0] || (answers && !cJSON_IsArray(answers))) {
            it.skip = VLT_VQA_SKIP_BAD_ITEM;
            snprintf(it.what + strlen(it.what), sizeof it.what - strlen(it.what),
                     ": not a JSON object with a string \"image\" (and an \"answers\" list if any)");
            cJSON_Delete(o);
            s = push(l, it);
            continue;
        }
        get_id(o, "question_id", &qid);
        if (!get_id(o, "image_id", &it.image_id)) {
            size_t k = 0;
            while (k < n_seen && strcmp(seen[k], img->valuestring) != 0) k++;
            if (k == n_seen) {
                if (n_seen == cap_seen) {
                    size_t nc = cap_seen ? 2 * cap_seen : 256;
                    char **v = realloc(seen, nc * sizeof *v);
                    if (!v) { s = vlt_error_set(VLT_ERR_NOMEM, "out of memory"); cJSON_Delete(o); break; }
                    seen = v;
                    cap_seen = nc;
                }
                seen[n_seen++] = strdup(img->valuestring);
            }
            it.image_id = (long long)k;
        }
        it.path = vlt_pack_join(base, img->valuestring);
        it.meta = cJSON_CreateObject();
        cJSON_AddNumberToObject(it.meta, "question_id", (double)qid);
        cJSON_AddNumberToObject(it.meta, "image_id", (double)it.image_id);
        cJSON_AddStringToObject(it.meta, "image", img->valuestring);
        if (!cJSON_IsString(text) || vlt_pack_blank(text->valuestring)) it.skip = VLT_VQA_SKIP_NO_QUESTION;
        else {
            it.question = strdup(text->valuestring);
            cJSON_AddStringToObject(it.meta, "question", text->valuestring);
        }
        int n = cJSON_GetArraySize(answers);
        if (it.skip < 0 && n > 0) {
            const char **raw = malloc((size_t)n * sizeof *raw);
            int k = 0;
            const cJSON *a;
            cJSON_ArrayForEach(a, answers) {
                const cJSON *str = cJSON_IsString(a) ? a : cJSON_GetObjectItemCaseSensitive(a, "answer");
                if (!cJSON_IsString(str)) break;
                raw[k++] = str->valuestring;
            }
            if (k < n) {
                it.skip = VLT_VQA_SKIP_BAD_ITEM;
                snprintf(it.what + strlen(it.what), sizeof it.what - strlen(it.what), ": answer %d is not a string", k);
            } else {
                s = add_answers(&src->fns, raw, n, it.meta);
            }
            free(raw);
        }
        cJSON_Delete(o);
        if (s == VLT_OK) s = push(l, it);
        else { free(it.path); free(it.question); cJSON_Delete(it.meta); }
    }
    for (size_t k = 0; k < n_seen; k++) free(seen[k]);
    free(seen);
    free(line);
    free(base);
    fclose(f);
    return s;
}

// --- images ---------------------------------------------------------------------------------------

// The image file of an official item: the first candidate that exists.
static char *find_official_image(const char *dir, const item *it) {
    char name[128], rel[192];
    char *p;
    if (it->split[0]) {
        snprintf(name, sizeof name, "COCO_%s_%012lld.jpg", it->split, it->image_id);
        if ((p = vlt_pack_join(dir, name)) && vlt_pack_file_exists(p)) return p;
        free(p);
        snprintf(rel, sizeof rel, "%s/%s", it->split, name);
        if ((p = vlt_pack_join(dir, rel)) && vlt_pack_file_exists(p)) return p;
        free(p);
    }
    const char *fmts[] = {"%012lld.jpg", "%012lld.png", "%lld.jpg", "%lld.png"};
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, fmts[k], it->image_id);
        if ((p = vlt_pack_join(dir, name)) && vlt_pack_file_exists(p)) return p;
        free(p);
    }
    return NULL;
}

// What the shared pipeline (data/pack_run.h) calls back with.
typedef struct {
    const vlt_vqa_pack_source *src;
    const vlt_shardwriter_cfg *cfg;
    item_list *items;
    vlt_vqa_vocab_counter *vc;   // counting the processed answers for answer_vocab.json, or NULL
    char *vocab_path;            // answer_vocab.json once written
    int *vocab_written;          // stats->vocab_written
} pack_ctx;

static void prepare(void *ctx, size_t i, vlt_pack_prepared *p) {
    const pack_ctx *c = ctx;
    const item *it = &c->items->v[i];
    p->skip = it->skip;
    if (p->skip >= 0) return;
    p->file = it->path ? strdup(it->path) : find_official_image(c->src->images, it);
    if (!p->file) {
        p->skip = VLT_VQA_SKIP_MISSING_IMAGE;
        snprintf(p->err, sizeof p->err, "%s: no image %s for image_id %lld in %s", it->what,
                 it->split[0] ? "COCO_<split>_<id>.jpg" : "<id>.jpg", it->image_id, c->src->images);
        return;
    }
    size_t len;
    char *buf = vlt_read_file(p->file, &len);
    if (!buf) {
        p->skip = VLT_VQA_SKIP_MISSING_IMAGE;
        snprintf(p->err, sizeof p->err, "%s: %s: %s", it->what, p->file, strerror(errno));
        return;
    }
    if (vlt_shardwriter_prepare_encoded(c->cfg, (const uint8_t *)buf, len, p->file, &p->jpg, &p->len, &p->w, &p->h) !=
        VLT_OK) {
        p->skip = VLT_VQA_SKIP_BAD_IMAGE;
        snprintf(p->err, sizeof p->err, "%s: %s", it->what, vlt_error_message());
    }
    free(buf);
}

// KEY.jpg, KEY.txt (the question) and KEY.json: the item's fields, the image file found (official
// items) and the stored image's size; its processed answers counted for the vocabulary.
static vlt_status emit(void *ctx, size_t i, const vlt_pack_prepared *p, vlt_shardwriter *w) {
    const pack_ctx *c = ctx;
    item *it = &c->items->v[i];
    vlt_status s = VLT_OK;
    if (!it->path) {  // official: name the file found
        const char *slash = strrchr(p->file, '/');
        cJSON_AddStringToObject(it->meta, "image", slash ? slash + 1 : p->file);
    }
    cJSON_AddNumberToObject(it->meta, "width", p->w);
    cJSON_AddNumberToObject(it->meta, "height", p->h);
    const cJSON *proc = cJSON_GetObjectItemCaseSensitive(it->meta, "answers_processed"), *a;
    if (c->vc) cJSON_ArrayForEach(a, proc) if (s == VLT_OK) s = vlt_vqa_vocab_count(c->vc, a->valuestring);
    char *json = cJSON_PrintUnformatted(it->meta);
    if (s == VLT_OK) s = json ? vlt_shardwriter_add(w, p->jpg, p->len, it->question, json, NULL)
                              : vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    cJSON_free(json);
    return s;
}

static const char *what(void *ctx, size_t i) { return ((pack_ctx *)ctx)->items->v[i].what; }

// The vocabulary before the shards are final, so that a failure of either leaves neither.
static vlt_status before_close(void *ctx) {
    pack_ctx *c = ctx;
    if (!c->vc) return VLT_OK;
    c->vocab_path = vlt_pack_join(c->cfg->out_dir, "answer_vocab.json");
    vlt_vqa_vocab v = {0};
    vlt_status s = c->vocab_path ? vlt_vqa_vocab_top(c->vc, c->src->vocab_size, &v)
                                 : vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    if (s == VLT_OK) s = vlt_vqa_vocab_save(&v, c->vocab_path);
    *c->vocab_written = s == VLT_OK ? v.n : 0;
    vlt_vqa_vocab_free(&v);
    return s;
}

static vlt_status after_close(void *ctx, vlt_status s) {
    const pack_ctx *c = ctx;
    if (s != VLT_OK && *c->vocab_written) {
        unlink(c->vocab_path);
        *c->vocab_written = 0;
    }
    return s;
}

vlt_status vlt_vqa_pack_source_check(const vlt_vqa_pack_source *src) {
    if (!!src->questions + !!src->jsonl != 1)
        return vlt_error_set(VLT_ERR_ARG, "give exactly one VQA source: --vqa-questions (with --vqa-annotations) or --vqa-jsonl");
    if (src->annotations && !src->questions) return vlt_error_set(VLT_ERR_ARG, "--vqa-annotations needs --vqa-questions");
    if (src->questions && !src->images) return vlt_error_set(VLT_ERR_ARG, "--vqa-questions needs --images DIR");
    if (!src->fns.normalize || !src->fns.soft_scores) return vlt_error_set(VLT_ERR_ARG, "vqa pack: no answer processing given");
    if (src->vocab_size < 0) return vlt_error_set(VLT_ERR_ARG, "the answer vocabulary size must be >= 0");
    return VLT_OK;
}

vlt_status vlt_vqa_pack_shards(const vlt_vqa_pack_source *src, const vlt_shardwriter_cfg *cfg, FILE *warn,
                               vlt_vqa_pack_stats *stats) {
    memset(stats, 0, sizeof *stats);
    VLT_TRY(vlt_vqa_pack_source_check(src));
    item_list items = {0};
    vlt_status s = src->jsonl ? load_jsonl(src, &items) : load_official(src, &items, stats);
    if (s == VLT_OK && items.n == 0) s = vlt_error_set(VLT_ERR_FORMAT, "%s: no questions found", src->jsonl ? src->jsonl : src->questions);
    vlt_vqa_vocab_counter *vc = NULL;
    if (s == VLT_OK && src->vocab_size > 0) s = vlt_vqa_vocab_counter_new(&vc);
    pack_ctx ctx = {src, cfg, &items, vc, NULL, &stats->vocab_written};
    if (s == VLT_OK) {
        vlt_pack_run run = {.n = items.n, .ctx = &ctx, .prepare = prepare, .emit = emit, .what = what,
                            .before_close = before_close, .after_close = after_close, .skip_names = SKIP_NAMES,
                            .n_skip = VLT_VQA_N_SKIP};
        s = vlt_pack_run_items(&run, cfg, warn, stats->skipped, &stats->written, &stats->shards);
    }
    free(ctx.vocab_path);
    vlt_vqa_vocab_counter_free(vc);
    items_free(&items);
    return s;
}

// --- answer vocabulary ----------------------------------------------------------------------------

struct vlt_vqa_vocab_counter {
    char **key;
    long long *count;
    size_t n, cap;  // cap a power of two; open addressing
};

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

vlt_status vlt_vqa_vocab_counter_new(vlt_vqa_vocab_counter **out) {
    vlt_vqa_vocab_counter *c = calloc(1, sizeof *c);
    if (c) {
        c->cap = 1024;
        c->key = calloc(c->cap, sizeof *c->key);
        c->count = calloc(c->cap, sizeof *c->count);
    }
    if (!c || !c->key || !c->count) {
        vlt_vqa_vocab_counter_free(c);
        return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    }
    *out = c;
    return VLT_OK;
}

static size_t slot(char *const *key, size_t cap, const char *s) {
    size_t i = (size_t)fnv1a(s) & (cap - 1);
    while (key[i] && strcmp(key[i], s) != 0) i = (i + 1) & (cap - 1);
    return i;
}

vlt_status vlt_vqa_vocab_count(vlt_vqa_vocab_counter *c, const char *answer) {
    if (2 * (c->n + 1) > c->cap) {
        size_t nc = 2 * c->cap;
        char **k = calloc(nc, sizeof *k);
        long long *n = calloc(nc, sizeof *n);
        if (!k || !n) { free(k); free(n); return vlt_error_set(VLT_ERR_NOMEM, "out of memory"); }
        for (size_t i = 0; i < c->cap; i++)
            if (c->key[i]) {
                size_t j = slot(k, nc, c->key[i]);
                k[j] = c->key[i];
                n[j] = c->count[i];
            }
        free(c->key);
        free(c->count);
        c->key = k;
        c->count = n;
        c->cap = nc;
    }
    size_t i = slot(c->key, c->cap, answer);
    if (!c->key[i]) {
        if (!(c->key[i] = strdup(answer))) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
        c->n++;
    }
    c->count[i]++;
    return VLT_OK;
}

typedef struct {
    const char *s;
    long long n;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;  // most frequent first
    return strcmp(x->s, y->s);                      // then byte order: independent of input order
}

vlt_status vlt_vqa_vocab_top(const vlt_vqa_vocab_counter *c, int top_n, vlt_vqa_vocab *out) {
    memset(out, 0, sizeof *out);
    ranked *r = malloc((c->n ? c->n : 1) * sizeof *r);
    if (!r) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->key[i]) r[k++] = (ranked){c->key[i], c->count[i]};
    qsort(r, k, sizeof *r, cmp_ranked);
    int n = top_n > 0 && (size_t)top_n < k ? top_n : (int)k;
    out->answers = calloc((size_t)(n ? n : 1), sizeof *out->answers);
    out->counts = calloc((size_t)(n ? n : 1), sizeof *out->counts);
    vlt_status s = out->answers && out->counts ? VLT_OK : vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    for (int i = 0; s == VLT_OK && i < n; i++) {
        if (!(out->answers[i] = strdup(r[i].s))) s = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
        out->counts[i] = r[i].n;
        out->n = i + 1;
    }
    free(r);
    if (s != VLT_OK) vlt_vqa_vocab_free(out);
    return s;
}

void vlt_vqa_vocab_counter_free(vlt_vqa_vocab_counter *c) {
    if (!c) return;
    for (size_t i = 0; c->key && i < c->cap; i++) free(c->key[i]);
    free(c->key);
    free(c->count);
    free(c);
}

vlt_status vlt_vqa_vocab_save(const vlt_vqa_vocab *v, const char *path) {
    cJSON *root = cJSON_CreateObject();
    cJSON *ans = cJSON_AddArrayToObject(root, "answers"), *cnt = cJSON_AddArrayToObject(root, "counts");
    cJSON_AddStringToObject(root, "format", "vlt-vqa-answer-vocab/1");
    for (int i = 0; i < v->n; i++) {
        cJSON_AddItemToArray(ans, cJSON_CreateString(v->answers[i]));
        cJSON_AddItemToArray(cnt, cJSON_CreateNumber((double)v->counts[i]));
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    vlt_status s = VLT_OK;
    if (!f) s = vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    else {
        int bad = fputs(text, f) < 0 || fputc('\n', f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0;
        bad |= fclose(f) != 0;
        if (bad || rename(tmp, path) != 0) {
            s = vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
            unlink(tmp);
        }
    }
    cJSON_free(text);
    free(tmp);
    return s;
}

vlt_status vlt_vqa_vocab_load(const char *path, vlt_vqa_vocab *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = NULL;
    VLT_TRY(vlt_read_json_file(path, &root));
    const cJSON *ans = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "answers");
    const cJSON *cnt = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "counts") : NULL;
    vlt_status s = cJSON_IsArray(ans) ? VLT_OK
                                      : vlt_error_set(VLT_ERR_FORMAT, "%s: expected {\"answers\": [...]} or a list of answers", path);
    int n = cJSON_GetArraySize(ans);
    if (s == VLT_OK) {
        out->answers = calloc((size_t)(n ? n : 1), sizeof *out->answers);
        out->counts = calloc((size_t)(n ? n : 1), sizeof *out->counts);
        if (!out->answers || !out->counts) s = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    }
    const cJSON *a;
    int i = 0;
    if (s == VLT_OK) cJSON_ArrayForEach(a, ans) {
        if (!cJSON_IsString(a)) { s = vlt_error_set(VLT_ERR_FORMAT, "%s: answer %d is not a string", path, i); break; }
        if (!(out->answers[i] = strdup(a->valuestring))) { s = vlt_error_set(VLT_ERR_NOMEM, "out of memory"); break; }
        const cJSON *c = cJSON_GetArrayItem(cnt, i);
        out->counts[i] = cJSON_IsNumber(c) ? (long long)c->valuedouble : 0;
        out->n = ++i;
    }
    cJSON_Delete(root);
    if (s != VLT_OK) vlt_vqa_vocab_free(out);
    return s;
}

int vlt_vqa_vocab_index(const vlt_vqa_vocab *v, const char *answer) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->answers[i], answer)) return i;
    return -1;
}

void vlt_vqa_vocab_free(vlt_vqa_vocab *v) {
    if (!v) return;
    for (int i = 0; v->answers && i < v->n; i++) free(v->answers[i]);
    free(v->answers);
    free(v->counts);
    memset(v, 0, sizeof *v);
}
