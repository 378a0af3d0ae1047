// eval_html.c — the HTML page of `vlt eval checkpoint --html DIR` (issue 18): DIR/index.html and
// DIR/img/*.jpg thumbnails. What the model retrieved and generated, next to the numbers:
//   - text -> image: sampled caption queries with their top-5 images (the right one framed, its
//     rank given), then the worst-ranked queries, where a user looks first;
//   - image -> text: sampled images with their top-5 captions (the image's own marked);
//   - captions (models that caption): images with the generated caption, the reference and the
//     per-image CIDEr-D, the best and the worst;
//   - VQA (models that answer, vlt_eval_html_vqa): questions per question type with the image, the
//     predicted and the annotators' answers, the wrong ones first.
// Similarities are the cosine of the L2-normalized embeddings the metrics used (a tie ranks
// against the target, as the recall does).
#include "train/eval_html.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/tape.h"
#include "data/files.h"
#include "data/thumbs.h"
#include "data/transform.h"
#include "eval/html.h"
#include "eval/json_file.h"

#define TOPK 5
#define N_SAMPLE 10
#define N_WORST 8
#define N_CAPTIONS 8
#define THUMB 128

static double dot(const float *a, const float *b, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)a[i] * b[i];
    return s;
}

// The k best of n scores (descending; ties by index), and the rank (1-based) of `target`: one
// plus the number of others scoring at least as high.
static int top_and_rank(const double *sc, int n, int k, int target, int *top) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int pos = m < k ? m++ : k;
        if (pos == k && !(sc[i] > sc[top[k - 1]])) continue;
        if (pos == k) pos = k - 1;
        while (pos > 0 && sc[i] > sc[top[pos - 1]]) {
            top[pos] = top[pos - 1];
            pos--;
        }
        top[pos] = i;
    }
    int rank = 1;
    for (int i = 0; i < n; i++)
        if (i != target && sc[i] >= sc[target]) rank++;
    return rank;
}

// Image i's thumbnail name, registered for writing once.
typedef struct {
    int n, cap;
    char **keys, **names;
} thumbs_t;

static const char *thumb(thumbs_t *t, const char *key, const char *prefix, int idx) {
    char name[32];
    snprintf(name, sizeof name, "%s%d", prefix, idx);
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], name)) return t->names[i];
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        char **k = realloc(t->keys, sizeof(char *) * (size_t)cap), **nm = realloc(t->names, sizeof(char *) * (size_t)cap);
        if (k) t->keys = k;
        if (nm) t->names = nm;
        if (!k || !nm) return NULL;
        t->cap = cap;
    }
    t->keys[t->n] = strdup(key);
    t->names[t->n] = strdup(name);
    return t->names[t->n++];
}

static void img_cell(vlt_html *h, thumbs_t *t, const vlt_embedded_pairs *p, int i, bool hit, const char *label) {
    const char *name = thumb(t, p->keys[i], "i", i);
    vlt_html_rawf(h, "<div class=\"thumb%s\"><img src=\"img/%s.jpg\" alt=\"", hit ? " hit" : "", name ? name : "none");
    vlt_html_text(h, p->keys[i]);
    vlt_html_raw(h, "\"><br>");
    vlt_html_text(h, label);
    vlt_html_raw(h, "</div>");
}

// Caption j's text (the image's .txt caption when the pairs carry no per-caption strings).
static const char *caption_text(const vlt_embedded_pairs *p, int j) {
    return p->txt_str && p->txt_str[j] ? p->txt_str[j] : p->captions[p->txt_img[j]];
}

static void text_query_row(vlt_html *h, thumbs_t *t, const vlt_embedded_pairs *p, int j, double *sc,
                           const char *explain_png) {
    for (int i = 0; i < p->n; i++) sc[i] = dot(p->txt + (size_t)j * p->dim, p->img + (size_t)i * p->dim, p->dim);
    int top[TOPK], k = p->n < TOPK ? p->n : TOPK, target = p->txt_img[j];
    int rank = top_and_rank(sc, p->n, k, target, top);
    vlt_html_raw(h, "<tr><td>");
    vlt_html_text(h, caption_text(p, j));
    vlt_html_rawf(h, "<br><span class=\"muted\">right image ranked %d</span></td><td><div class=\"thumbs\">", rank);
    for (int r = 0; r < k; r++) {
        char label[64];
        snprintf(label, sizeof label, "#%d  %.3f", r + 1, sc[top[r]]);
        img_cell(h, t, p, top[r], top[r] == target, label);
    }
    if (rank > k) {  // the right one, out of the top 5
        char label[64];
        snprintf(label, sizeof label, "right one: #%d", rank);
        img_cell(h, t, p, target, true, label);
    }
    if (explain_png)  // where the model looked in the right image for this text
        vlt_html_rawf(h, "<div class=\"thumb\"><img src=\"img/%s\" alt=\"relevance map\"><br>where it looked</div>",
                      explain_png);
    vlt_html_raw(h, "</div></td></tr>\n");
}

static int cmp_desc_rank(const void *a, const void *b) {
    const int *x = a, *y = b;
    return x[1] != y[1] ? (y[1] > x[1]) - (y[1] < x[1]) : (x[0] > y[0]) - (x[0] < y[0]);
}

static const double *g_cider;
static int cmp_cider(const void *a, const void *b) {
    double x = g_cider[*(const int *)a], y = g_cider[*(const int *)b];
    return x != y ? (y > x) - (y < x) : (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static void caption_rows(vlt_html *h, thumbs_t *t, const vlt_caption_eval *ce, const int *order, int from, int to) {
    for (int r = from; r < to; r++) {
        int i = order[r];
        const char *name = thumb(t, ce->keys[i], "c", i);
        vlt_html_rawf(h, "<tr><td><div class=\"thumb\"><img src=\"img/%s.jpg\" alt=\"", name ? name : "none");
        vlt_html_text(h, ce->keys[i]);
        vlt_html_raw(h, "\"></div></td><td>");
        vlt_html_text(h, ce->generated[i]);
        vlt_html_raw(h, "</td><td>");
        for (const char *r = ce->reference[i]; r;) {   // one reference per line
            const char *nl = strchr(r, '\n');
            char *one = nl ? strndup(r, (size_t)(nl - r)) : NULL;
            if (r != ce->reference[i]) vlt_html_raw(h, "<br>");
            vlt_html_text(h, one ? one : r);
            free(one);
            r = nl ? nl + 1 : NULL;
        }
        vlt_html_rawf(h, "</td><td class=\"num\">%.1f</td></tr>\n", 100 * ce->cider_per_image[i]);
    }
}

// Relevance maps of the right image for the sampled text queries qj[0..q) into dir/img/x<j>.png;
// maps[s] tells which were made (an image the shards lack or a failed map is left out).
static void explain_queries(const char *dir, const char *shards, const vlt_embedded_pairs *p, const int *qj, int q,
                            vlt_model *m, const vlt_tokenizer *tok, bool *maps) {
    char *keys[N_SAMPLE];
    uint8_t *bufs[N_SAMPLE];
    size_t lens[N_SAMPLE];
    for (int s = 0; s < q; s++) keys[s] = qj[s] >= 0 ? p->keys[p->txt_img[qj[s]]] : "";
    if (vlt_fetch_images(shards, keys, q, bufs, lens) != VLT_OK) return;
    int S = m->cfg.vision.image_size, T = m->cfg.text.context_length, G = vlt_model_patch_grid(m);
    vlt_tensor *im = vlt_tensor_new(VLT_F32, VLT_CPU, 4, (const int[]){1, 3, S, S}, "image");
    vlt_tensor *ids = vlt_tensor_new(VLT_I32, VLT_CPU, 2, (const int[]){1, T}, "ids");
    float *map = malloc(sizeof(float) * (size_t)G * G);
    vlt_transform_cfg tc;
    vlt_transform_cfg_default(&tc, S);
    for (int s = 0; im && ids && map && s < q; s++) {
        if (!bufs[s]) continue;
        vlt_image img = {0}, view = {0}, ov = {0};
        float score;
        const char *text = caption_text(p, qj[s]);
        bool ok = vlt_image_decode(bufs[s], lens[s], 0, keys[s], &img) == VLT_OK &&
                  vlt_transform_eval(&img, &tc, vlt_f32(im)) == VLT_OK && (vlt_model_has_tokenizer(m) ? vlt_model_tokenize(m, text, vlt_i32(ids), NULL, T)
                                                              : vlt_tokenizer_encode(tok, text, vlt_i32(ids), T)) >= 0 &&
                  vlt_model_explain(m, im, ids, map, &score) == VLT_OK &&
                  vlt_view_of_image(bufs[s], lens[s], keys[s], THUMB, &view) == VLT_OK &&
                  vlt_overlay_map(&view, map, G, &ov) == VLT_OK;
        vlt_step_reset();
        if (ok) {
            char path[4200];
            snprintf(path, sizeof path, "%s/img/x%d.png", dir, qj[s]);
            maps[s] = vlt_image_write_png(&ov, path) == VLT_OK;
        }
        vlt_image_free(&img);
        vlt_image_free(&view);
        vlt_image_free(&ov);
    }
    for (int s = 0; s < q; s++) free(bufs[s]);
    free(map);
    vlt_tensor_free(im);
    vlt_tensor_free(ids);
}

vlt_status vlt_eval_html_checkpoint(const char *dir, const char *what, const char *shards, const vlt_embedded_pairs *p,
                                    const vlt_eval_retrieval_result *r, const vlt_eval_retrieval_result *rr,
                                    int rerank_k, const vlt_caption_eval *ce, vlt_model *m, const vlt_tokenizer *tok) {
    char path[4096];
    VLT_TRY(vlt_make_dirs(dir, 0755));   // with its parents (RUN/report/eval before vlt report made report/)
    snprintf(path, sizeof path, "%s/img", dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return vlt_error_set(VLT_ERR_IO, "--html: cannot create %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/index.html", dir);
    char title[4200];
    snprintf(title, sizeof title, "vlt eval checkpoint: %s", what);
    vlt_html *h = vlt_html_open(path, title);
    if (!h) return vlt_error_code();
    double *sc = malloc(sizeof(double) * (size_t)(p->n > p->n_txt ? p->n : p->n_txt));
    thumbs_t t = {0};
    if (!sc) {
        vlt_html_abort(h);
        return vlt_error_set(VLT_ERR_NOMEM, "--html: out of memory");
    }
    vlt_html_rawf(h, "<p>%d images with %d captions from ", p->n, p->n_txt);
    vlt_html_text(h, shards);
    vlt_html_raw(h, ". Similarity: cosine of the L2-normalized embeddings; a tie ranks against the target.</p>\n");
    vlt_html_raw(h, "<table><tr><th></th><th>R@1</th><th>R@5</th><th>R@10</th><th>mean rank</th></tr>\n");
    vlt_html_rawf(h, "<tr><td>image &rarr; text</td><td class=\"num\">%.1f</td><td class=\"num\">%.1f</td><td class=\"num\">"
                     "%.1f</td><td class=\"num\">%.1f</td></tr>\n", 100 * r->i2t.recall[0], 100 * r->i2t.recall[1],
                  100 * r->i2t.recall[2], r->i2t.mean_rank);
    vlt_html_rawf(h, "<tr><td>text &rarr; image</td><td class=\"num\">%.1f</td><td class=\"num\">%.1f</td><td class=\"num\">"
                     "%.1f</td><td class=\"num\">%.1f</td></tr>\n", 100 * r->t2i.recall[0], 100 * r->t2i.recall[1],
                  100 * r->t2i.recall[2], r->t2i.mean_rank);
    for (int d = 0; rr && d < 2; d++) {   // ALBEF's protocol: the features' top k re-scored by the ITM head
        const vlt_eval_recall *x = d ? &rr->t2i : &rr->i2t;
        int k = rerank_k < (d ? p->n : p->n_txt) ? rerank_k : (d ? p->n : p->n_txt);
        vlt_html_rawf(h, "<tr><td>%s, ITM re-ranked (top %d)</td><td class=\"num\">%.1f</td><td class=\"num\">%.1f</td>"
                         "<td class=\"num\">%.1f</td><td class=\"num\">%.1f</td></tr>\n", d ? "text &rarr; image" : "image &rarr; text",
                      k, 100 * x->recall[0], 100 * x->recall[1], 100 * x->recall[2], x->mean_rank);
    }
    if (ce && ce->n)
        vlt_html_rawf(h, "<tr><td>captions (%d, greedy)</td><td colspan=\"4\">BLEU-4 %.1f, CIDEr-D %.1f</td></tr>\n", ce->n,
                      100 * ce->bleu[3], 100 * ce->cider);
    vlt_html_raw(h, "</table>\n");

    // text -> image: evenly spaced queries (each image's first caption), with where the model
    // looked in the right image when it has relevance maps
    int q = p->n < N_SAMPLE ? p->n : N_SAMPLE, qj[N_SAMPLE];
    bool maps[N_SAMPLE] = {false};
    for (int s2 = 0; s2 < q; s2++) {
        int img = (int)((long long)s2 * p->n / q), j = 0;
        while (j < p->n_txt && p->txt_img[j] != img) j++;
        qj[s2] = j < p->n_txt ? j : -1;
    }
    if (m && tok && vlt_model_can(m, VLT_CAP_EXPLAIN)) explain_queries(dir, shards, p, qj, q, m, tok, maps);
    vlt_html_raw(h, "<h2>Text &rarr; image: sampled queries</h2>\n");
    if (m && vlt_model_can(m, VLT_CAP_EXPLAIN)) {
        vlt_html_raw(h, "<p class=\"muted\">Last: where the model looked in the right image for the text (");
        vlt_html_text(h, vlt_model_explain_method(m));
        vlt_html_raw(h, "; vlt explain).</p>");
    }
    vlt_html_raw(h, "<table>\n");
    for (int s2 = 0; s2 < q; s2++) {
        if (qj[s2] < 0) continue;
        char png[32];
        snprintf(png, sizeof png, "x%d.png", qj[s2]);
        text_query_row(h, &t, p, qj[s2], sc, maps[s2] ? png : NULL);
    }
    vlt_html_raw(h, "</table>\n");
    // the worst-ranked queries: every caption's rank when that is cheap, else the first 2,000
    int nq = p->n_txt;
    if ((double)nq * p->n * p->dim > 2e9) nq = 2000 < nq ? 2000 : nq;
    int *ranks = malloc(sizeof(int) * 2 * (size_t)(nq ? nq : 1));
    if (ranks) {
        for (int j = 0; j < nq; j++) {
            int target = p->txt_img[j], rank = 1;
            double st = dot(p->txt + (size_t)j * p->dim, p->img + (size_t)target * p->dim, p->dim);
            for (int i = 0; i < p->n; i++)
                if (i != target && dot(p->txt + (size_t)j * p->dim, p->img + (size_t)i * p->dim, p->dim) >= st) rank++;
            ranks[2 * j] = j;
            ranks[2 * j + 1] = rank;
        }
        qsort(ranks, (size_t)nq, 2 * sizeof(int), cmp_desc_rank);
        vlt_html_rawf(h, "<h2>Text &rarr; image: the worst-ranked queries</h2>\n<p class=\"muted\">of %d captions%s</p><table>\n",
                      nq, nq < p->n_txt ? " (the first ones: ranking all would be slow)" : "");
        for (int w = 0; w < N_WORST && w < nq; w++) text_query_row(h, &t, p, ranks[2 * w], sc, NULL);
        vlt_html_raw(h, "</table>\n");
        free(ranks);
    }
    // image -> text: the top captions of sampled images
    vlt_html_raw(h, "<h2>Image &rarr; text: sampled images</h2>\n<table>\n");
    for (int s = 0; s < q; s++) {
        int img = (int)((long long)s * p->n / q);
        for (int j = 0; j < p->n_txt; j++) sc[j] = dot(p->img + (size_t)img * p->dim, p->txt + (size_t)j * p->dim, p->dim);
        int top[TOPK], k = p->n_txt < TOPK ? p->n_txt : TOPK;
        top_and_rank(sc, p->n_txt, k, 0, top);
        vlt_html_raw(h, "<tr><td>");
        img_cell(h, &t, p, img, false, p->keys[img]);
        vlt_html_raw(h, "</td><td><ol>");
        for (int r2 = 0; r2 < k; r2++) {
            bool own = p->txt_img[top[r2]] == img;
            vlt_html_raw(h, own ? "<li><b>" : "<li>");
            vlt_html_text(h, caption_text(p, top[r2]));
            vlt_html_rawf(h, "%s <span class=\"muted\">%.3f%s</span></li>", own ? "</b>" : "", sc[top[r2]],
                          own ? ", its own" : "");
        }
        vlt_html_raw(h, "</ol></td></tr>\n");
    }
    vlt_html_raw(h, "</table>\n");
    // captions, best and worst by CIDEr-D
    if (ce && ce->n && ce->cider_per_image) {
        int *order = malloc(sizeof(int) * (size_t)ce->n);
        if (order) {
            for (int i = 0; i < ce->n; i++) order[i] = i;
            g_cider = ce->cider_per_image;
            qsort(order, (size_t)ce->n, sizeof(int), cmp_cider);
            int b = ce->n < N_CAPTIONS ? ce->n : N_CAPTIONS;
            vlt_html_raw(h, "<h2>Captions: the best by CIDEr-D</h2>\n<table><tr><th>image</th><th>generated</th>"
                            "<th>reference</th><th>CIDEr-D</th></tr>\n");
            caption_rows(h, &t, ce, order, 0, b);
            vlt_html_raw(h, "</table>\n<h2>Captions: the worst by CIDEr-D</h2>\n<table><tr><th>image</th><th>generated</th>"
                            "<th>reference</th><th>CIDEr-D</th></tr>\n");
            int from = ce->n - b > b ? ce->n - b : b;
            caption_rows(h, &t, ce, order, from, ce->n);
            vlt_html_raw(h, "</table>\n");
            free(order);
        }
    }
    snprintf(path, sizeof path, "%s/img", dir);
    int missing = 0;
    vlt_status s = vlt_write_thumbnails(shards, t.keys, t.names, t.n, path, THUMB, &missing);
    if (missing) vlt_html_rawf(h, "<p class=\"muted\">%d thumbnail(s) could not be made.</p>\n", missing);
    for (int i = 0; i < t.n; i++) {
        free(t.keys[i]);
        free(t.names[i]);
    }
    free(t.keys);
    free(t.names);
    free(sc);
    if (s != VLT_OK) {
        vlt_html_abort(h);
        return s;
    }
    return vlt_html_close(h);
}

// ---- VQA: `vlt eval checkpoint --html DIR` on a model with an answer head ----------------------
// The accuracy table (overall, per answer type, per question type), then for each question type
// its questions with the image, the predicted answer, the annotators' answers and the question's
// accuracy: the wrong ones first (lowest accuracy), where a user looks to see what the model
// gets wrong, then enough right ones to see what it gets right.

#define N_VQA_PER_TYPE 9   // rows per question type: the wrong ones first,
#define N_VQA_RIGHT 3      // then this many right ones when there are

typedef struct {
    int i;         // prediction index
    double acc;    // the question's official accuracy
} vqa_row;

static int cmp_vqa_row(const void *a, const void *b) {
    const vqa_row *x = a, *y = b;
    return x->acc != y->acc ? (x->acc > y->acc) - (x->acc < y->acc) : (x->i > y->i) - (x->i < y->i);
}

static double question_accuracy(const vlt_eval_vqa_result *r, long long qid) {
    for (int k = 0; k < r->n_ids; k++)
        if (r->qid[k] == qid) return r->q_accuracy[k];
    return NAN;
}

static void vqa_group_rows(vlt_html *h, const char *title, const vlt_eval_vqa_group *g, int n) {
    for (int k = 0; k < n; k++) {
        vlt_html_rawf(h, "<tr><td>%s ", title);
        vlt_html_text(h, g[k].name);
        vlt_html_rawf(h, "</td><td class=\"num\">%d</td><td class=\"num\">%.2f</td></tr>\n", g[k].count, 100 * g[k].accuracy);
    }
}

// The annotators' answers of one annotation as "yes ×9, no ×1" (distinct, most frequent first).
static void vqa_answers_cell(vlt_html *h, const cJSON *ann) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(ann, "answers"), *a;
    const char *seen[32];
    int count[32], n = 0;
    cJSON_ArrayForEach(a, list) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "answer");
        const char *s = cJSON_IsString(v) ? v->valuestring : "";
        int k = 0;
        while (k < n && strcmp(seen[k], s)) k++;
        if (k == n && n < 32) { seen[n] = s; count[n++] = 0; }
        if (k < n) count[k]++;
    }
    for (int done = 0; done < n; done++) {
        int best = -1;
        for (int k = 0; k < n; k++)
            if (count[k] > 0 && (best < 0 || count[k] > count[best])) best = k;
        if (best < 0) break;
        vlt_html_raw(h, done ? ", " : "");
        vlt_html_text(h, seen[best]);
        vlt_html_rawf(h, " <span class=\"muted\">&times;%d</span>", count[best]);
        count[best] = -count[best];
    }
}

vlt_status vlt_eval_html_vqa(const char *dir, const char *what, const char *shards, const vlt_vqa_predictions *p,
                             const vlt_eval_vqa_result *r) {
    char path[4096];
    VLT_TRY(vlt_make_dirs(dir, 0755));   // with its parents (RUN/report/eval before vlt report made report/)
    snprintf(path, sizeof path, "%s/img", dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return vlt_error_set(VLT_ERR_IO, "--html: cannot create %s: %s", path, strerror(errno));
    // each annotated prediction with its annotation and accuracy (annotations are in prediction order)
    vqa_row *rows = malloc(sizeof(vqa_row) * (size_t)(p->n ? p->n : 1));
    const cJSON **ann = calloc((size_t)(p->n ? p->n : 1), sizeof *ann);
    if (!rows || !ann) {
        free(rows);
        free(ann);
        return vlt_error_set(VLT_ERR_NOMEM, "--html: out of memory");
    }
    const cJSON *a = p->annotations ? p->annotations->child : NULL;
    for (int i = 0; i < p->n; i++) {
        long long id;
        if (a && vlt_eval_json_id(cJSON_GetObjectItemCaseSensitive(a, "question_id"), &id) && id == p->qid[i]) {
            ann[i] = a;
            a = a->next;
        }
    }
    snprintf(path, sizeof path, "%s/index.html", dir);
    char title[4200];
    snprintf(title, sizeof title, "vlt eval checkpoint: %s", what);
    vlt_html *h = vlt_html_open(path, title);
    if (!h) {
        free(rows);
        free(ann);
        return vlt_error_code();
    }
    vlt_html_rawf(h, "<p>%d questions from ", r->n_questions);
    vlt_html_text(h, shards);
    vlt_html_rawf(h, ". Official VQA accuracy (%s): min(#annotators who gave the answer / 3, 1), averaged over the ten "
                     "leave-one-out subsets.</p>\n", vlt_eval_vqa_version_name(r->version));
    vlt_html_rawf(h, "<table><tr><th></th><th>questions</th><th>accuracy</th></tr>\n<tr><td><b>overall</b></td><td "
                     "class=\"num\">%d</td><td class=\"num\"><b>%.2f</b></td></tr>\n", r->n_questions, 100 * r->accuracy);
    vqa_group_rows(h, "answer type", r->types, r->n_types);
    vqa_group_rows(h, "question type", r->qtypes, r->n_qtypes);
    vlt_html_raw(h, "</table>\n");
    thumbs_t t = {0};
    for (int g = 0; g < r->n_qtypes; g++) {
        int n = 0, wrong = 0;
        for (int i = 0; i < p->n; i++) {
            const cJSON *qt = ann[i] ? cJSON_GetObjectItemCaseSensitive(ann[i], "question_type") : NULL;
            if (!cJSON_IsString(qt) || strcmp(qt->valuestring, r->qtypes[g].name)) continue;
            rows[n++] = (vqa_row){i, question_accuracy(r, p->qid[i])};
            wrong += rows[n - 1].acc < 1;
        }
        qsort(rows, (size_t)n, sizeof *rows, cmp_vqa_row);
        vlt_html_raw(h, "<h2>Question type &ldquo;");
        vlt_html_text(h, r->qtypes[g].name);
        vlt_html_rawf(h, "&rdquo;: accuracy %.2f</h2>\n<p class=\"muted\">%d questions, %d not fully right; the wrong ones "
                         "first, then right ones</p>\n<table><tr><th>image</th><th>question</th><th>predicted</th><th>annotators</th>"
                         "<th>accuracy</th></tr>\n", 100 * r->qtypes[g].accuracy, n, wrong);
        // rows[0, wrong) are the wrong ones (lowest accuracy first), rows[wrong, n) the right ones:
        // up to N_VQA_PER_TYPE rows, the wrong ones first, keeping N_VQA_RIGHT for right ones
        int right = n - wrong, show_r = right < N_VQA_RIGHT ? right : N_VQA_RIGHT;
        int show_w = wrong < N_VQA_PER_TYPE - show_r ? wrong : N_VQA_PER_TYPE - show_r;
        if (show_r < right) show_r = right < N_VQA_PER_TYPE - show_w ? right : N_VQA_PER_TYPE - show_w;
        for (int r = 0; r < show_w + show_r; r++) {
            int k = r < show_w ? r : wrong + (r - show_w);
            int i = rows[k].i;
            const char *name = thumb(&t, p->key[i], "q", i);
            vlt_html_rawf(h, "<tr><td><div class=\"thumb%s\"><img src=\"img/%s.jpg\" alt=\"", rows[k].acc >= 1 ? " hit" : "",
                          name ? name : "none");
            vlt_html_text(h, p->image[i][0] ? p->image[i] : p->key[i]);
            vlt_html_raw(h, "\"></div></td><td>");
            vlt_html_text(h, p->question[i]);
            vlt_html_raw(h, rows[k].acc >= 1 ? "</td><td><b>" : "</td><td>");
            vlt_html_text(h, p->answer[i]);
            vlt_html_rawf(h, "%s <span class=\"muted\">p %.2f</span></td><td>", rows[k].acc >= 1 ? "</b>" : "", p->conf[i]);
            vqa_answers_cell(h, ann[i]);
            vlt_html_rawf(h, "</td><td class=\"num\">%.2f</td></tr>\n", 100 * rows[k].acc);
        }
        vlt_html_raw(h, "</table>\n");
    }
    snprintf(path, sizeof path, "%s/img", dir);
    int missing = 0;
    vlt_status s = vlt_write_thumbnails(shards, t.keys, t.names, t.n, path, THUMB, &missing);
    if (missing) vlt_html_rawf(h, "<p class=\"muted\">%d thumbnail(s) could not be made.</p>\n", missing);
    for (int i = 0; i < t.n; i++) {
        free(t.keys[i]);
        free(t.names[i]);
    }
    free(t.keys);
    free(t.names);
    free(rows);
    free(ann);
    if (s != VLT_OK) {
        vlt_html_abort(h);
        return s;
    }
    return vlt_html_close(h);
}
