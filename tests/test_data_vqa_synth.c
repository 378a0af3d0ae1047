// test_data_vqa_synth.c — the synthetic VQA set (data/synth_vqa.h): every answer checked against
// the scene it is about (objects found back from the question's words), kinds and answer types
// all present, determinism, the written files in both formats, and both packed by
// data/vqa_pack.h into as many samples as there are questions.
#include <setjmp.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "data/synth.h"
#include "data/synth_vqa.h"
#include "data/vqa_pack.h"

// The scene objects that a name from a question matches: every word of the name must be the
// object's shape, colour or size ("object" matches anything).
static int matches(const vlt_synth_object *o, const char *name) {
    char buf[96];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *w = strtok(buf, " "); w; w = strtok(NULL, " ")) {
        if (!strcmp(w, "object")) continue;
        if (strcmp(w, vlt_synth_shape_name(o->shape)) && strcmp(w, vlt_synth_color_name(o->color)) &&
            strcmp(w, o->large ? "large" : "small"))
            return 0;
    }
    return 1;
}

// The one object of s named `name` (fails when none or both match: the name must be unambiguous).
static const vlt_synth_object *find(const vlt_synth_scene *s, const char *name) {
    const vlt_synth_object *hit = NULL;
    for (int k = 0; k < s->n_objects; k++)
        if (matches(&s->obj[k], name)) {
            if (hit) fail_msg("\"%s\" names both objects", name);
            hit = &s->obj[k];
        }
    if (!hit) fail_msg("\"%s\" names no object", name);
    return hit;
}

// The answer that the scene gives to the question, worked out from the question text.
static void expected(const vlt_synth_scene *s, int size, const char *q, char *out, size_t n) {
    char a[64], b[64], rel[32];
    if (sscanf(q, "What color is the %63[^?]?", a) == 1) snprintf(out, n, "%s", vlt_synth_color_name(find(s, a)->color));
    else if (sscanf(q, "What shape is the %63[^?]?", a) == 1) snprintf(out, n, "%s", vlt_synth_shape_name(find(s, a)->shape));
    else if (strstr(q, " large or small?") && sscanf(q, "Is the %63[^?]?", a) == 1) {
        *strstr(a, " large or small") = 0;
        snprintf(out, n, "%s", find(s, a)->large ? "large" : "small");
    }
    else if (!strcmp(q, "How many shapes are there?")) snprintf(out, n, "%d", s->n_objects);
    else if (sscanf(q, "How many %31s shapes are there?", rel) == 1) {
        int c = 0;
        for (int k = 0; k < s->n_objects; k++) c += !strcmp(vlt_synth_color_name(s->obj[k].color), rel);
        snprintf(out, n, "%d", c);
    } else if (sscanf(q, "Is there a %63[^?]?", a) == 1) {
        int c = 0;
        for (int k = 0; k < s->n_objects; k++) {
            char full[64];
            snprintf(full, sizeof full, "%s %s", vlt_synth_color_name(s->obj[k].color), vlt_synth_shape_name(s->obj[k].shape));
            c += !strcmp(full, a);
        }
        snprintf(out, n, "%s", c ? "yes" : "no");
    } else if (strstr(q, " in the top or bottom half of the image?") && sscanf(q, "Is the %63s in", a) == 1) {
        snprintf(out, n, "%s", find(s, a)->cy < size / 2.0f ? "top" : "bottom");
    } else if (!strncmp(q, "Where is the ", 13) && strstr(q, " relative to the ")) {
        const char *at = strstr(q, " relative to the ");
        snprintf(a, sizeof a, "%.*s", (int)(at - q - 13), q + 13);
        snprintf(b, sizeof b, "%s", at + 17);
        b[strlen(b) - 1] = 0;  // '?'
        const vlt_synth_object *x = find(s, a), *y = find(s, b);
        float dx = x->cx - y->cx, dy = x->cy - y->cy;  // the named axis dominates (synth.h)
        snprintf(out, n, "%s", fabsf(dx) > fabsf(dy) ? (dx < 0 ? "left" : "right") : (dy < 0 ? "above" : "below"));
    } else if (!strncmp(q, "Is the ", 7)) {  // "Is the A <relation> the B?"
        const char *rels[4] = {" to the left of the ", " to the right of the ", " above the ", " below the "};
        for (int r = 0; r < 4; r++) {
            const char *at = strstr(q, rels[r]);
            if (!at) continue;
            snprintf(a, sizeof a, "%.*s", (int)(at - q - 7), q + 7);
            snprintf(b, sizeof b, "%s", at + strlen(rels[r]));
            b[strlen(b) - 1] = 0;  // '?'
            const vlt_synth_object *x = find(s, a), *y = find(s, b);
            float dx = x->cx - y->cx, dy = x->cy - y->cy;
            int truth = fabsf(dx) > fabsf(dy) ? (dx < 0 ? 0 : 1) : (dy < 0 ? 2 : 3);
            snprintf(out, n, "%s", truth == r ? "yes" : "no");
            return;
        }
        fail_msg("unknown question: %s", q);
    } else fail_msg("unknown question: %s", q);
}

static void test_answers_follow_scene(void **state) {
    (void)state;
    const int size = 64;
    int kinds[6] = {0}, types[3] = {0}, n_total = 0, noisy = 0, wrong = 0;
    const char *KIND[6] = {"color", "shape", "size", "count", "position", "exists"};
    const char *TYPE[3] = {"yes/no", "number", "other"};
    for (uint64_t i = 0; i < 400; i++) {
        vlt_synth_scene s;
        vlt_synth_scene_make(5, i, size, &s);
        vlt_synth_vqa_question q[VLT_SYNTH_VQA_MAX_PER_IMAGE], q2[VLT_SYNTH_VQA_MAX_PER_IMAGE];
        int n = vlt_synth_vqa_questions(&s, 5, i, size, 6, q);
        assert_true(n >= 4);  // colour or shape may not be askable; the other kinds are
        assert_int_equal(vlt_synth_vqa_questions(&s, 5, i, size, 6, q2), n);
        assert_memory_equal(q, q2, sizeof q[0] * (size_t)n);  // a function of (seed, index, size)
        for (int k = 0; k < n; k++) {
            char want[32];
            expected(&s, size, q[k].question, want, sizeof want);
            if (strcmp(want, q[k].answer)) fail_msg("image %d: \"%s\": answer %s, the scene says %s", (int)i, q[k].question, q[k].answer, want);
            for (int j = 0; j < 6; j++) kinds[j] += !strcmp(q[k].kind, KIND[j]);
            for (int j = 0; j < 3; j++) types[j] += !strcmp(q[k].answer_type, TYPE[j]);
            for (int j = 0; j < k; j++) assert_string_not_equal(q[j].kind, q[k].kind);  // distinct kinds
            int exact = 0;
            for (int j = 0; j < VLT_SYNTH_VQA_ANSWERS; j++) {
                exact += !strcmp(q[k].answers[j], q[k].answer);
                // Every annotator answer is the canonical one up to case, period, article,
                // number word and spaces, or a wrong one.
                char t[32];
                const char *p = q[k].answers[j];
                while (*p == ' ') p++;
                if (!strncmp(p, "a ", 2)) p += 2;
                snprintf(t, sizeof t, "%s", p);
                size_t l = strlen(t);
                while (l && (t[l - 1] == ' ' || t[l - 1] == '.')) t[--l] = 0;
                if (t[0] >= 'A' && t[0] <= 'Z') t[0] = (char)(t[0] + 32);
                const char *words[4] = {"zero", "one", "two", "three"};
                for (int w = 0; w < 4; w++)
                    if (!strcmp(t, words[w])) snprintf(t, sizeof t, "%d", w);
                if (strcmp(t, q[k].answer)) wrong++;
                else if (strcmp(q[k].answers[j], q[k].answer)) noisy++;
            }
            assert_true(exact >= 1);
            n_total++;
        }
    }
    for (int j = 0; j < 6; j++) if (kinds[j] < 150) fail_msg("kind %s asked %d times", KIND[j], kinds[j]);
    for (int j = 0; j < 3; j++) assert_true(types[j] > 150);
    double answers = (double)n_total * VLT_SYNTH_VQA_ANSWERS;
    print_message("%d questions; answers: %.1f%% noisy spellings, %.1f%% wrong\n", n_total, 100 * noisy / answers, 100 * wrong / answers);
    assert_true(noisy > 0.15 * answers && noisy < 0.45 * answers);
    assert_true(wrong > 0.01 * answers && wrong < 0.08 * answers);
}

static vlt_status ident(const char *in, char **out) {
    *out = strdup(in);
    return VLT_OK;
}

static int one(const char *const *a, int n, const char **uniq, double *score) {
    int u = 0;
    for (int j = 0; j < n; j++) {
        int k = 0;
        while (k < u && strcmp(uniq[k], a[j])) k++;
        if (k == u) { uniq[u] = a[j]; score[u++] = 1; }
    }
    return u;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = malloc((size_t)n + 1);
    assert_int_equal(fread(t, 1, (size_t)n, f), (size_t)n);
    t[n] = 0;
    fclose(f);
    return t;
}

static void test_write_and_pack(void **state) {
    (void)state;
    char dir[64], path[256], cmd[128];
    snprintf(dir, sizeof dir, "/tmp/vlt-synthvqa-XXXXXX");
    assert_non_null(mkdtemp(dir));
    vlt_synth_vqa_cfg cfg = {.out_dir = dir, .seed = 3, .first = 100, .images = 40, .size = 32, .per_image = 3, .quality = 90};
    long long nq = 0;
    assert_int_equal(vlt_synth_vqa_write(&cfg, &nq), VLT_OK);
    assert_int_equal(nq, 120);
    snprintf(path, sizeof path, "%s/images/COCO_synth_000000000139.jpg", dir);
    assert_int_equal(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s/vqa.jsonl", dir);
    char *jsonl = slurp(path);
    int lines = 0;
    for (char *p = jsonl; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 120);
    assert_int_equal(vlt_synth_vqa_write(&cfg, &nq), VLT_OK);  // again: the same files
    char *again = slurp(path);
    assert_string_equal(jsonl, again);
    free(again);
    free(jsonl);
    snprintf(path, sizeof path, "%s/annotations.json", dir);
    char *text = slurp(path);
    cJSON *ann = cJSON_Parse(text);
    free(text);
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ann, "annotations"), 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(a0, "question_id")->valuedouble, 1000);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(a0, "answers")), 10);
    cJSON_Delete(ann);
    // Both formats pack into one sample per question.
    char qp[256], ap[256], ip[256], jp[256], out[256];
    snprintf(qp, sizeof qp, "%s/questions.json", dir);
    snprintf(ap, sizeof ap, "%s/annotations.json", dir);
    snprintf(ip, sizeof ip, "%s/images", dir);
    snprintf(jp, sizeof jp, "%s/vqa.jsonl", dir);
    vlt_vqa_pack_source official = {.questions = qp, .annotations = ap, .images = ip, .fns = {ident, one}};
    vlt_vqa_pack_source lines_src = {.jsonl = jp, .fns = {ident, one}};
    vlt_vqa_pack_source *srcs[2] = {&official, &lines_src};
    for (int k = 0; k < 2; k++) {
        snprintf(out, sizeof out, "%s/shards%d", dir, k);
        vlt_shardwriter_cfg sc;
        vlt_shardwriter_cfg_default(&sc, out);
        vlt_vqa_pack_stats st;
        assert_int_equal(vlt_vqa_pack_shards(srcs[k], &sc, NULL, &st), VLT_OK);
        assert_int_equal(st.written, 120);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    vlt_synth_vqa_cfg bad = cfg;
    bad.per_image = 7;
    assert_int_equal(vlt_synth_vqa_write(&bad, &nq), VLT_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_follow_scene),
        cmocka_unit_test(test_write_and_pack),
    };
    return cmocka_run_group_tests_name("data_vqa_synth", tests, NULL, NULL);
}
