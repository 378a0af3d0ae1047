// synth_vqa.c — questions and answers about the synthetic scenes, written as VQA sets (see
// synth_vqa.h).
#include "data/synth_vqa.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "autograd/rng.h"
#include "data/files.h"

#define BATCH 128

typedef struct { uint64_t seed, stream, k; } draws;
static float unif(draws *d) { return vlt_rng_uniform(d->seed, d->stream, d->k++); }
static int below(draws *d, int n) { return (int)(unif(d) * n) % n; }

static const char *NUM_WORDS[] = {"zero", "one", "two", "three"};

// The number of scene objects with the given shape / colour (-1: any).
static int count(const vlt_synth_scene *s, int shape, int color) {
    int n = 0;
    for (int k = 0; k < s->n_objects; k++)
        n += (shape < 0 || s->obj[k].shape == shape) && (color < 0 || s->obj[k].color == color);
    return n;
}

// "circle" when the shape is unique, else "red circle" (colour and shape are never both shared).
static void name_of(const vlt_synth_scene *s, int k, char *out, size_t n) {
    const vlt_synth_object *o = &s->obj[k];
    if (count(s, o->shape, -1) == 1) snprintf(out, n, "%s", vlt_synth_shape_name(o->shape));
    else snprintf(out, n, "%s %s", vlt_synth_color_name(o->color), vlt_synth_shape_name(o->shape));
}

static void set(vlt_synth_vqa_question *q, const char *kind, const char *qtype, const char *atype, const char *answer) {
    q->kind = kind;
    q->question_type = qtype;
    q->answer_type = atype;
    snprintf(q->answer, sizeof q->answer, "%s", answer);
}

// One question of a kind about the scene; 0 when the kind cannot be asked unambiguously.
static int ask(const vlt_synth_scene *s, int kind, draws *d, int size, vlt_synth_vqa_question *q) {
    int k = below(d, s->n_objects), other = 1 - k;
    const vlt_synth_object *o = &s->obj[k];
    char a[48], b[48];
    switch (kind) {
    case 0: {  // colour: name the object without its colour
        if (count(s, o->shape, -1) == 1) snprintf(a, sizeof a, "%s", vlt_synth_shape_name(o->shape));
        else if (s->obj[other].large != o->large) snprintf(a, sizeof a, "%s %s", o->large ? "large" : "small", vlt_synth_shape_name(o->shape));
        else return 0;
        snprintf(q->question, sizeof q->question, "What color is the %s?", a);
        set(q, "color", "what color is the", "other", vlt_synth_color_name(o->color));
        return 1;
    }
    case 1: {  // shape: name the object without its shape
        if (count(s, -1, o->color) == 1) snprintf(a, sizeof a, "%s object", vlt_synth_color_name(o->color));
        else if (s->obj[other].large != o->large) snprintf(a, sizeof a, "%s %s object", o->large ? "large" : "small", vlt_synth_color_name(o->color));
        else return 0;
        snprintf(q->question, sizeof q->question, "What shape is the %s?", a);
        set(q, "shape", "what shape is the", "other", vlt_synth_shape_name(o->shape));
        return 1;
    }
    case 2:  // size
        snprintf(q->question, sizeof q->question, "Is the %s %s large or small?", vlt_synth_color_name(o->color),
                 vlt_synth_shape_name(o->shape));
        set(q, "size", "is the", "other", o->large ? "large" : "small");
        return 1;
    case 3: {  // count: all shapes, or those of one colour (present or not, evenly)
        char n[16];
        if (unif(d) < 0.4f) {
            snprintf(q->question, sizeof q->question, "How many shapes are there?");
            snprintf(n, sizeof n, "%d", s->n_objects);
        } else {
            int c = unif(d) < 0.5f ? s->obj[below(d, s->n_objects)].color : below(d, VLT_SYNTH_N_COLORS);
            snprintf(q->question, sizeof q->question, "How many %s shapes are there?", vlt_synth_color_name(c));
            snprintf(n, sizeof n, "%d", count(s, -1, c));
        }
        set(q, "count", "how many", "number", n);
        return 1;
    }
    case 4: {  // position
        if (s->n_objects == 1) {
            float off = o->cy - size / 2.0f;
            if (off > -o->r && off < o->r) return 0;  // near the middle: not asked
            snprintf(q->question, sizeof q->question, "Is the %s in the top or bottom half of the image?", vlt_synth_shape_name(o->shape));
            set(q, "position", "is the", "other", off < 0 ? "top" : "bottom");
            return 1;
        }
        // obj[0] is `relation` to obj[1]; asking about obj[1] inverts it.
        static const char *WHERE[4] = {"left", "right", "above", "below"};
        static const int INVERSE[4] = {1, 0, 3, 2};
        int rel = k == 0 ? s->relation : INVERSE[s->relation];
        name_of(s, k, a, sizeof a);
        name_of(s, other, b, sizeof b);
        if (unif(d) < 0.5f) {
            snprintf(q->question, sizeof q->question, "Where is the %s relative to the %s?", a, b);
            set(q, "position", "where is the", "other", WHERE[rel]);
        } else {
            int asked = unif(d) < 0.5f ? rel : (rel + 1 + below(d, 3)) % 4;  // yes half the time
            snprintf(q->question, sizeof q->question, "Is the %s %s the %s?", a, vlt_synth_relation_name(asked), b);
            set(q, "position", "is the", "yes/no", asked == rel ? "yes" : "no");
        }
        return 1;
    }
    default: {  // existence: an object of the scene, or (half the time) a shape that is not there
        int shape = o->shape, color = o->color;
        if (unif(d) < 0.5f) {
            shape = below(d, VLT_SYNTH_N_SHAPES);
            color = below(d, VLT_SYNTH_N_COLORS);
        }
        snprintf(q->question, sizeof q->question, "Is there a %s %s?", vlt_synth_color_name(color), vlt_synth_shape_name(shape));
        set(q, "exists", "is there a", "yes/no", count(s, shape, color) ? "yes" : "no");
        return 1;
    }
    }
}

// A wrong answer of the same kind as q's (for the occasional careless annotator).
static const char *wrong(const vlt_synth_vqa_question *q, draws *d) {
    static const char *SIZES[2] = {"large", "small"}, *YN[2] = {"yes", "no"}, *POS[6] = {"left", "right", "above", "below", "top", "bottom"};
    static const char *NUMS[4] = {"0", "1", "2", "3"};
    if (!strcmp(q->kind, "color")) return vlt_synth_color_name(below(d, VLT_SYNTH_N_COLORS));
    if (!strcmp(q->kind, "shape")) return vlt_synth_shape_name(below(d, VLT_SYNTH_N_SHAPES));
    if (!strcmp(q->kind, "size")) return SIZES[below(d, 2)];
    if (!strcmp(q->kind, "count")) return NUMS[below(d, 4)];
    if (!strcmp(q->answer_type, "yes/no")) return YN[below(d, 2)];
    return POS[below(d, 6)];
}

// Ten annotators: mostly the canonical answer, some with surface noise, 4% a wrong one.
static void annotate(vlt_synth_vqa_question *q, draws *d) {
    for (int j = 0; j < VLT_SYNTH_VQA_ANSWERS; j++) {
        char *out = q->answers[j];
        size_t n = sizeof q->answers[j];
        const char *a = unif(d) < 0.04f ? wrong(q, d) : q->answer;
        float u = unif(d);
        if (u < 0.7f) snprintf(out, n, "%s", a);
        else if (u < 0.78f) snprintf(out, n, "%c%s", a[0] >= 'a' && a[0] <= 'z' ? a[0] - 32 : a[0], a + 1);  // "Red"
        else if (u < 0.84f) snprintf(out, n, "%s.", a);                                                      // "red."
        else if (u < 0.9f && a[0] >= '0' && a[0] <= '3' && !a[1]) snprintf(out, n, "%s", NUM_WORDS[a[0] - '0']);  // "two"
        else if (u < 0.95f && !strcmp(q->kind, "shape")) snprintf(out, n, "a %s", a);                      // "a circle"
        else snprintf(out, n, " %s ", a);                                                                     // spaces
    }
}

int vlt_synth_vqa_questions(const vlt_synth_scene *scene, uint64_t seed, uint64_t index, int size, int n_max,
                            vlt_synth_vqa_question *out) {
    draws d = {seed, vlt_rng_stream(VLT_RNG_DATA, index, 2), 0};
    int order[6] = {0, 1, 2, 3, 4, 5};
    for (int i = 5; i > 0; i--) {  // kinds in a random order
        int j = below(&d, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    if (n_max > VLT_SYNTH_VQA_MAX_PER_IMAGE) n_max = VLT_SYNTH_VQA_MAX_PER_IMAGE;
    int n = 0;
    for (int i = 0; i < 6 && n < n_max; i++) {
        memset(&out[n], 0, sizeof out[n]);
        if (ask(scene, order[i], &d, size, &out[n])) annotate(&out[n++], &d);
    }
    return n;
}

// --- writing ----------------------------------------------------------------------------------------

typedef struct {
    uint8_t *jpg;
    size_t len;
    int nq;
    vlt_synth_vqa_question q[VLT_SYNTH_VQA_MAX_PER_IMAGE];
    vlt_status st;
    char err[256];
} prepared;

static vlt_status write_file(const char *path, const void *data, size_t len) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    int bad = fwrite(data, 1, len, f) != len || fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        vlt_status s = vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return s;
    }
    return VLT_OK;
}

static vlt_status write_json(const char *dir, const char *name, const cJSON *root) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = cJSON_PrintUnformatted(root);
    if (!text) return vlt_error_set(VLT_ERR_NOMEM, "out of memory writing %s", path);
    vlt_status s = write_file(path, text, strlen(text));
    cJSON_free(text);
    return s;
}

static cJSON *header(cJSON *root) {
    cJSON *info = cJSON_AddObjectToObject(root, "info");
    cJSON_AddStringToObject(info, "description", "vlt synth --vqa: questions about synthetic coloured shapes");
    cJSON_AddStringToObject(root, "task_type", "Open-Ended");
    cJSON_AddStringToObject(root, "data_type", "vlt-synth");
    cJSON_AddStringToObject(root, "data_subtype", "synth");
    cJSON_AddObjectToObject(root, "license");
    return root;
}

vlt_status vlt_synth_vqa_write(const vlt_synth_vqa_cfg *cfg, long long *n_questions) {
    if (cfg->images < 1 || cfg->size < 24 || cfg->size > 4096 || cfg->per_image < 1 || cfg->per_image > VLT_SYNTH_VQA_MAX_PER_IMAGE)
        return vlt_error_set(VLT_ERR_ARG, "synth vqa: images >= 1, size 24..4096 and 1..%d questions per image", VLT_SYNTH_VQA_MAX_PER_IMAGE);
    char img_dir[1024];
    snprintf(img_dir, sizeof img_dir, "%s/images", cfg->out_dir);
    VLT_TRY(vlt_make_dirs(img_dir, 0755));
    cJSON *qroot = header(cJSON_CreateObject()), *aroot = header(cJSON_CreateObject());
    cJSON *qs = cJSON_AddArrayToObject(qroot, "questions"), *as = cJSON_AddArrayToObject(aroot, "annotations");
    char jsonl_tmp[1100];
    snprintf(jsonl_tmp, sizeof jsonl_tmp, "%s/vqa.jsonl.tmp", cfg->out_dir);
    FILE *jl = fopen(jsonl_tmp, "wb");
    vlt_status s = jl ? VLT_OK : vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", jsonl_tmp, strerror(errno));
    prepared *batch = calloc(BATCH, sizeof *batch);
    if (s == VLT_OK && !batch) s = vlt_error_set(VLT_ERR_NOMEM, "out of memory");
    long long nq = 0;
    for (long long b0 = 0; s == VLT_OK && b0 < cfg->images; b0 += BATCH) {
        int n = (int)(cfg->images - b0 < BATCH ? cfg->images - b0 : BATCH);
#pragma omp parallel for schedule(dynamic, 4)
        for (int k = 0; k < n; k++) {
            prepared *p = &batch[k];
            uint64_t index = (uint64_t)(cfg->first + b0 + k);
            vlt_image img;
            vlt_synth_scene scene;
            p->st = vlt_synth_sample(cfg->seed, index, cfg->size, &img, NULL, 0, &scene);
            if (p->st == VLT_OK) {
                p->st = vlt_image_encode_jpeg(&img, cfg->quality, &p->jpg, &p->len);
                vlt_image_free(&img);
                p->nq = vlt_synth_vqa_questions(&scene, cfg->seed, index, cfg->size, cfg->per_image, p->q);
            }
            if (p->st != VLT_OK) snprintf(p->err, sizeof p->err, "%s", vlt_error_message());
        }
        for (int k = 0; s == VLT_OK && k < n; k++) {
            prepared *p = &batch[k];
            long long index = cfg->first + b0 + k;
            if (p->st != VLT_OK) { s = vlt_error_set(p->st, "synth vqa: image %lld: %s", index, p->err); break; }
            char name[64], path[1200];
            snprintf(name, sizeof name, "COCO_synth_%012lld.jpg", index);
            snprintf(path, sizeof path, "%s/%s", img_dir, name);
            if ((s = write_file(path, p->jpg, p->len)) != VLT_OK) break;
            for (int i = 0; i < p->nq; i++) {
                const vlt_synth_vqa_question *q = &p->q[i];
                long long qid = 10 * index + i;
                cJSON *jq = cJSON_CreateObject(), *ja = cJSON_CreateObject(), *line = cJSON_CreateObject();
                cJSON_AddNumberToObject(jq, "question_id", (double)qid);
                cJSON_AddNumberToObject(jq, "image_id", (double)index);
                cJSON_AddStringToObject(jq, "question", q->question);
                cJSON_AddItemToArray(qs, jq);
                cJSON_AddNumberToObject(ja, "question_id", (double)qid);
                cJSON_AddNumberToObject(ja, "image_id", (double)index);
                cJSON_AddStringToObject(ja, "question_type", q->question_type);
                cJSON_AddStringToObject(ja, "answer_type", q->answer_type);
                cJSON_AddStringToObject(ja, "multiple_choice_answer", q->answer);
                cJSON *ans = cJSON_AddArrayToObject(ja, "answers"), *lans;
                char rel[96];
                snprintf(rel, sizeof rel, "images/%s", name);
                cJSON_AddStringToObject(line, "image", rel);
                cJSON_AddStringToObject(line, "question", q->question);
                lans = cJSON_AddArrayToObject(line, "answers");
                for (int j = 0; j < VLT_SYNTH_VQA_ANSWERS; j++) {
                    cJSON *o = cJSON_CreateObject();
                    cJSON_AddStringToObject(o, "answer", q->answers[j]);
                    cJSON_AddStringToObject(o, "answer_confidence", "yes");
                    cJSON_AddNumberToObject(o, "answer_id", j + 1);
                    cJSON_AddItemToArray(ans, o);
                    cJSON_AddItemToArray(lans, cJSON_CreateString(q->answers[j]));
                }
                cJSON_AddItemToArray(as, ja);
                cJSON_AddNumberToObject(line, "question_id", (double)qid);
                cJSON_AddNumberToObject(line, "image_id", (double)index);
                char *text = cJSON_PrintUnformatted(line);
                cJSON_Delete(line);
                if (!text || fprintf(jl, "%s\n", text) < 0) s = vlt_error_set(VLT_ERR_IO, "cannot write %s", jsonl_tmp);
                cJSON_free(text);
                nq++;
            }
        }
        for (int k = 0; k < n; k++) {
            free(batch[k].jpg);
            memset(&batch[k], 0, sizeof batch[k]);
        }
    }
    free(batch);
    if (jl) {
        int bad = fflush(jl) != 0;
        bad |= fclose(jl) != 0;
        if (s == VLT_OK && bad) s = vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", jsonl_tmp, strerror(errno));
    }
    if (s == VLT_OK) s = write_json(cfg->out_dir, "questions.json", qroot);
    if (s == VLT_OK) s = write_json(cfg->out_dir, "annotations.json", aroot);
    if (s == VLT_OK) {
        char path[1100];
        snprintf(path, sizeof path, "%s/vqa.jsonl", cfg->out_dir);
        if (rename(jsonl_tmp, path) != 0) s = vlt_error_set(VLT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    if (s != VLT_OK) unlink(jsonl_tmp);
    cJSON_Delete(qroot);
    cJSON_Delete(aroot);
    if (n_questions) *n_questions = nq;
    return s;
}
