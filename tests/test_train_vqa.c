// VQA training and answering end to end (issue 16): on synthetic VQA shards (vlt synth --vqa,
// vlt shards --vqa-questions --vqa-vocab) the loader's soft-score targets equal the VQAv2
// convention computed here by a plain loop; a CLIP + classifier-head run writes its answer
// vocabulary (run directory and every checkpoint), resumes exactly (the same weights bit for bit
// as the uninterrupted run), starts from CLIP weights with a fresh head, and logs the official
// accuracy on data.val; `vlt vqa`'s results scored by `vlt eval vqa` give that same accuracy, and
// `vlt eval checkpoint` on the run too; `vlt vqa --weights --model --answer-vocab` (both heads) gives
// `--checkpoint`'s results byte for byte and refuses mismatched weights by key.
#include <cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "checkpoints/safetensors.h"
#include "data/files.h"
#include "data/loader.h"
#include "data/vqa_pack.h"
#include "eval/json_file.h"
#include "train/commands.h"
#include "train/run_config.h"
#include "train/trainer.h"
#include "tests/train_fixture.h"

static char g_dir[256];

// 200 training images (600 questions, 6 shards) and 40 held-out ones (120 questions), 32 px.
static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-vqa-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    if (train_fixture_vqa_split(g_dir, "train", 200, 5, 0, 100, true) ||
        train_fixture_vqa_split(g_dir, "val", 40, 5, 100000, 60, false))
        return -1;
    char cap[320];
    snprintf(cap, sizeof cap, "%s/captions", g_dir);   // caption shards: no answer scores
    char *c1[] = {"synth", "--out", cap, "--samples", "20", "--shard-size", "20", "--image-size", "32", NULL};
    return train_fixture_call(vlt_cmd_synth, c1) ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static vlt_vqa_vocab train_vocab(void) {
    char path[320];
    snprintf(path, sizeof path, "%s/train/answer_vocab.json", g_dir);
    vlt_vqa_vocab v;
    if (vlt_vqa_vocab_load(path, &v) != VLT_OK) fail_msg("%s", vlt_error_message());
    return v;
}

// The loader's answer_scores row of every training question against the VQAv2 soft score
// computed here from the sample's processed answers: for answer a, the mean over the ten
// leave-one-out subsets of min(1, (count of a among the other nine) / 3).
static void test_soft_score_targets(void **state) {
    (void)state;
    vlt_vqa_vocab v = train_vocab();
    assert_true(v.n >= 10 && v.n < 60);   // colours, shapes, sizes, counts, positions, yes/no
    vlt_loader_cfg lc;
    vlt_loader_cfg_default(&lc);
    char spec[320];
    snprintf(spec, sizeof spec, "%s/train/{00000..00005}.tar", g_dir);
    lc.shards = spec;
    lc.readers = 1;
    lc.batch_size = 16;
    lc.image_size = 32;
    lc.context_len = 16;
    lc.shuffle_shards = 0;
    lc.shuffle_buffer = 0;
    lc.report = 0;
    lc.keep_json = 1;
    lc.answers = (const char *const *)v.answers;
    lc.n_answers = v.n;
    vlt_loader *L;
    assert_int_equal(vlt_loader_create(&lc, &L), VLT_OK);
    const vlt_batch *b;
    int n = 0, partial = 0;
    while (vlt_loader_next(L, &b) == VLT_OK && b) {
        assert_non_null(b->answer_scores);
        for (int i = 0; i < b->n; i++, n++) {
            cJSON *js = cJSON_Parse(b->json[i]);
            const cJSON *proc = cJSON_GetObjectItemCaseSensitive(js, "answers_processed");
            int m = cJSON_GetArraySize(proc);
            assert_int_equal(m, 10);
            const float *row = b->answer_scores + (size_t)i * v.n;
            for (int k = 0; k < v.n; k++) {
                double want = 0;
                for (int left = 0; left < m; left++) {
                    int count = 0;
                    for (int j = 0; j < m; j++)
                        count += j != left && !strcmp(cJSON_GetArrayItem(proc, j)->valuestring, v.answers[k]);
                    want += fmin(1.0, count / 3.0);
                }
                want /= m;
                if (fabs(row[k] - want) > 1e-6)
                    fail_msg("question %s, answer '%s': target %g, VQAv2 soft score %g", b->keys[i], v.answers[k], row[k], want);
                partial += want > 0 && want < 1;
            }
            cJSON_Delete(js);
        }
    }
    assert_int_equal(n, 600);
    assert_true(partial > 20);   // the annotators' noise gives partial scores (0.3, 0.6, 0.9)
    vlt_loader_free(L);

    // caption shards have no answer scores: skipped and counted, or zero rows for a test split
    snprintf(spec, sizeof spec, "%s/captions/00000.tar", g_dir);
    lc.warn_limit = 0;
    assert_int_equal(vlt_loader_create(&lc, &L), VLT_OK);
    assert_int_equal(vlt_loader_next(L, &b), VLT_OK);
    assert_null(b);
    assert_int_equal(vlt_loader_get_stats(L)->skipped[VLT_SKIP_NO_ANSWERS], 20);
    vlt_loader_free(L);
    lc.answers_optional = 1;
    assert_int_equal(vlt_loader_create(&lc, &L), VLT_OK);
    assert_int_equal(vlt_loader_next(L, &b), VLT_OK);
    assert_non_null(b);
    for (int64_t k = 0; k < (int64_t)b->n * v.n; k++) assert_float_equal(b->answer_scores[k], 0, 0);
    vlt_loader_free(L);
    vlt_vqa_vocab_free(&v);
}

static void vqa_config(vlt_run_config *c, const char *out) {
    vlt_run_config_default(c);
    snprintf(c->model_name, sizeof c->model_name, "tiny-clip");
    snprintf(c->vqa_head, sizeof c->vqa_head, "classifier");
    snprintf(c->train_shards, sizeof c->train_shards, "%s/train/{00000..00005}.tar", g_dir);
    snprintf(c->val_shards, sizeof c->val_shards, "%s/val/{00000..00001}.tar", g_dir);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/%s", g_dir, out);
    c->batch_size = 16;
    c->workers = 2;
    c->shuffle_buffer = 100;
    c->shuffle_initial = 20;
    c->lr = 2e-3;
    c->warmup = 2;
    c->steps = 10;
    c->checkpoint_every = 0;
    c->tensorboard = false;
}

static void assert_same_params(const vlt_params *a, const vlt_params *b) {
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        assert_string_equal(a->t[i]->name, b->t[i]->name);
        if (memcmp(a->t[i]->data, b->t[i]->data, sizeof(float) * (size_t)a->t[i]->numel))
            fail_msg("parameter %s differs between the uninterrupted and the resumed run", a->t[i]->name);
    }
}

static void test_train_resume_exactly(void **state) {
    (void)state;
    vlt_run_config c;
    vqa_config(&c, "whole");
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *whole;
    if (vlt_trainer_create(&c, &o, &whole) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_true(vlt_trainer_can_answer(whole));
    assert_string_equal(vlt_trainer_model_title(whole), "CLIP VQA classifier");
    assert_int_equal(vlt_trainer_run(whole), VLT_OK);
    int64_t nl;
    const float *losses = vlt_trainer_losses(whole, &nl);
    assert_int_equal(nl, 10);
    assert_true(losses[9] < losses[0]);   // it learns something from the first steps
    // the run's answer vocabulary, and the one in the checkpoint, are the training split's
    vlt_vqa_vocab v = train_vocab(), rv;
    char path[400];
    snprintf(path, sizeof path, "%s/whole/answer_vocab.json", g_dir);
    assert_int_equal(vlt_vqa_vocab_load(path, &rv), VLT_OK);
    assert_int_equal(rv.n, v.n);
    for (int k = 0; k < v.n; k++) assert_string_equal(rv.answers[k], v.answers[k]);
    snprintf(path, sizeof path, "%s/whole/checkpoints/latest/state.json", g_dir);
    cJSON *st;
    assert_int_equal(vlt_read_json_file(path, &st), VLT_OK);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(st, "answer_vocab");
    assert_int_equal(cJSON_GetArraySize(list), v.n);
    assert_string_equal(cJSON_GetArrayItem(list, v.n - 1)->valuestring, v.answers[v.n - 1]);
    // the resolved config holds the head's width (fewer answers than the 3,129 asked for)
    assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(st, "config")->valuestring, "vqa_answers: "));
    char want[64];
    snprintf(want, sizeof want, "vqa_answers: %d\n", v.n);
    assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(st, "config")->valuestring, want));
    cJSON_Delete(st);
    vlt_vqa_vocab_free(&rv);

    // the same run in two halves: a checkpoint at step 5, then a new trainer resumes it
    vqa_config(&c, "halves");
    c.checkpoint_every = 5;
    vlt_trainer *a;
    assert_int_equal(vlt_trainer_create(&c, &o, &a), VLT_OK);
    assert_int_equal(vlt_trainer_run_steps(a, 5), VLT_OK);
    vlt_trainer_free(a);
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    vlt_trainer *b;
    if (vlt_trainer_create(&c, &r, &b) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_step(b), 5);
    assert_int_equal(vlt_trainer_run(b), VLT_OK);
    assert_same_params(vlt_trainer_params(whole), vlt_trainer_params(b));
    vlt_trainer_free(b);
    // another head width is another model: refused on resume, naming the key
    c.vqa_hidden = 32;
    assert_int_not_equal(vlt_trainer_create(&c, &r, &b), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "model.vqa_hidden"));

    // CLIP weights to start from: the head is new, the towers are the file's
    const vlt_params *wp = vlt_trainer_params(whole);
    vlt_params clip_only;
    vlt_params_init(&clip_only);
    for (int i = 0; i < wp->n; i++) {
        if (!strncmp(wp->t[i]->name, "vqa_head.", 9)) continue;
        vlt_tensor *x = vlt_tensor_new(VLT_F32, VLT_CPU, wp->t[i]->ndim, wp->t[i]->shape, wp->t[i]->name);
        memcpy(x->data, wp->t[i]->data, sizeof(float) * (size_t)x->numel);
        assert_int_equal(vlt_params_add(&clip_only, x), VLT_OK);
    }
    snprintf(path, sizeof path, "%s/clip.safetensors", g_dir);
    assert_int_equal(vlt_safetensors_save_params(path, &clip_only, VLT_ST_F32, NULL, 0), VLT_OK);
    vqa_config(&c, "from-clip");
    snprintf(c.init_from, sizeof c.init_from, "%s", path);
    vlt_trainer *f;
    if (vlt_trainer_create(&c, &o, &f) != VLT_OK) fail_msg("%s", vlt_error_message());
    const vlt_params *fp = vlt_trainer_params(f);
    for (int i = 0; i < fp->n; i++) {
        vlt_tensor *src = vlt_params_find(&clip_only, fp->t[i]->name);
        if (src) assert_memory_equal(src->data, fp->t[i]->data, sizeof(float) * (size_t)src->numel);
        else assert_int_equal(strncmp(fp->t[i]->name, "vqa_head.", 9), 0);
    }
    vlt_trainer_free(f);
    // a file that lacks a tower parameter is refused, naming it
    vlt_tensor *drop = vlt_params_find(&clip_only, "visual.proj");
    strcpy(drop->name, "visual.proj_renamed");
    assert_int_equal(vlt_safetensors_save_params(path, &clip_only, VLT_ST_F32, NULL, 0), VLT_OK);
    vqa_config(&c, "from-bad");
    snprintf(c.init_from, sizeof c.init_from, "%s", path);
    assert_int_not_equal(vlt_trainer_create(&c, &o, &f), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "visual.proj"));
    vlt_params_free(&clip_only);
    vlt_trainer_free(whole);
    vlt_vqa_vocab_free(&v);
}

// The last metrics.jsonl line's value of `key`.
static double last_metric(const char *run, const char *key) {
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    double v = NAN;
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
        if (cJSON_IsNumber(x)) v = x->valuedouble;
        cJSON_Delete(o);
    }
    fclose(f);
    return v;
}

static double report_number(const char *path, const char *key) {
    cJSON *root;
    assert_int_equal(vlt_eval_json_load(path, &root), VLT_OK);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "numbers"), key);
    double v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    cJSON_Delete(root);
    return v;
}

static void test_answers_scored_as_in_training(void **state) {
    (void)state;
    vlt_run_config c;
    vqa_config(&c, "evaluated");
    c.steps = 30;
    c.eval_every = 30;
    c.val_samples = 0;   // all 120 held-out questions
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    vlt_trainer_free(t);
    double logged = last_metric(c.output_dir, "val/vqa_accuracy");
    assert_true(logged >= 0 && logged <= 100);
    assert_false(isnan(last_metric(c.output_dir, "val/vqa_yes_no")));

    // vlt vqa's answers, scored by vlt eval vqa against the official annotation file
    char res[600], refs[600], rep[600], rep2[600], html[600];
    snprintf(res, sizeof res, "%s/results.json", g_dir);
    snprintf(refs, sizeof refs, "%s/syn-val/annotations.json", g_dir);
    snprintf(rep, sizeof rep, "%s/eval_vqa.json", g_dir);
    snprintf(rep2, sizeof rep2, "%s/eval_checkpoint.json", g_dir);
    snprintf(html, sizeof html, "%s/html", g_dir);
    char *v1[] = {"vqa", "--checkpoint", c.output_dir, "--shards", c.val_shards, "--out", res, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, v1), 0);
    cJSON *arr;
    assert_int_equal(vlt_eval_json_load(res, &arr), VLT_OK);
    assert_int_equal(cJSON_GetArraySize(arr), 120);
    const cJSON *first = cJSON_GetArrayItem(arr, 0);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(first, "question_id")));
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(first, "answer")));
    cJSON_Delete(arr);
    char *e1[] = {"eval", "vqa", "--pred", res, "--refs", refs, "--out", rep, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_eval, e1), 0);
    double scored = report_number(rep, "accuracy");
    if (fabs(100 * scored - logged) > 1e-9) fail_msg("vlt eval vqa: %.12g, training's eval: %.12g", 100 * scored, logged);
    // vlt eval checkpoint does both in one go, with the breakdowns
    char *e2[] = {"eval", "checkpoint", "--checkpoint", c.output_dir, "--shards", c.val_shards, "--out", rep2, "--html", html, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_eval, e2), 0);
    assert_true(fabs(100 * report_number(rep2, "accuracy") - logged) < 1e-9);
    assert_false(isnan(report_number(rep2, "per_answer_type.yes/no")));
    assert_false(isnan(report_number(rep2, "per_question_type.how many")));
    // the VQA page: every question type with its questions, thumbnails beside it
    char page[700];
    snprintf(page, sizeof page, "%s/index.html", html);
    size_t len;
    char *text = vlt_read_file(page, &len);
    assert_non_null(text);
    assert_non_null(strstr(text, "Question type &ldquo;how many&rdquo;"));
    assert_non_null(strstr(text, "Question type &ldquo;what color is the&rdquo;"));
    // in each question type's table the wrong answers come first, then right ones (where any is right)
    int sections = 0, with_right = 0;
    for (char *sec = strstr(text, "<h2>Question type"); sec; sec = strstr(sec + 1, "<h2>Question type")) {
        char *end = strstr(sec + 1, "<h2>");
        bool seen_right = false;
        sections++;
        for (char *c = strstr(sec, "<td class=\"num\">"); c && (!end || c < end); c = strstr(c + 1, "<td class=\"num\">")) {
            double acc = atof(c + strlen("<td class=\"num\">"));
            if (acc >= 100) seen_right = true;
            else if (seen_right) fail_msg("a wrong answer (%.2f) listed after a right one", acc);
        }
        with_right += seen_right;
    }
    assert_int_equal(sections, 6);
    assert_true(with_right >= 1);
    char *img = strstr(text, "src=\"img/");
    assert_non_null(img);
    char name[64];
    assert_int_equal(sscanf(img, "src=\"img/%63[^\"]", name), 1);
    char thumbp[800];
    snprintf(thumbp, sizeof thumbp, "%s/img/%s", html, name);
    struct stat sb;
    assert_int_equal(stat(thumbp, &sb), 0);
    free(text);
    // a model without an answer head is refused by vlt vqa, naming its kind
    vlt_run_config cc;
    vqa_config(&cc, "clip");
    cc.vqa_head[0] = '\0';
    snprintf(cc.train_shards, sizeof cc.train_shards, "%s/captions/00000.tar", g_dir);
    cc.steps = 1;
    cc.warmup = 0;
    cc.workers = 1;
    assert_int_equal(vlt_trainer_create(&cc, &o, &t), VLT_OK);
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    vlt_trainer_free(t);
    char *v2[] = {"vqa", "--checkpoint", cc.output_dir, "--shards", c.val_shards, "--out", res, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, v2), 1);
}

// vlt vqa --majority-of: each held-out question gets the most frequent multiple_choice_answer of its
// question type among the training questions (counted here from the official annotation file).
static void test_majority_baseline(void **state) {
    (void)state;
    char ann[400], res[400], train[400], val[400];
    snprintf(ann, sizeof ann, "%s/syn-train/annotations.json", g_dir);
    snprintf(res, sizeof res, "%s/majority.json", g_dir);
    snprintf(train, sizeof train, "%s/train/{00000..00005}.tar", g_dir);
    snprintf(val, sizeof val, "%s/val/{00000..00001}.tar", g_dir);
    char *v[] = {"vqa", "--majority-of", train, "--shards", val, "--out", res, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, v), 0);
    cJSON *a, *r, *va;
    assert_int_equal(vlt_eval_json_load(ann, &a), VLT_OK);
    assert_int_equal(vlt_eval_json_load(res, &r), VLT_OK);
    snprintf(ann, sizeof ann, "%s/syn-val/annotations.json", g_dir);
    assert_int_equal(vlt_eval_json_load(ann, &va), VLT_OK);
    assert_int_equal(cJSON_GetArraySize(r), 120);
    const cJSON *x, *y;
    int checked = 0;
    cJSON_ArrayForEach(x, r) {
        long long qid = (long long)cJSON_GetObjectItemCaseSensitive(x, "question_id")->valuedouble;
        const char *qt = NULL;
        cJSON_ArrayForEach(y, cJSON_GetObjectItemCaseSensitive(va, "annotations"))
            if ((long long)cJSON_GetObjectItemCaseSensitive(y, "question_id")->valuedouble == qid)
                qt = cJSON_GetObjectItemCaseSensitive(y, "question_type")->valuestring;
        assert_non_null(qt);
        // the most frequent answer of type qt (ties: the byte-order first, as the sorted count)
        const char *best = NULL;
        int best_n = 0;
        const cJSON *u, *w;
        cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(a, "annotations")) {
            if (strcmp(cJSON_GetObjectItemCaseSensitive(u, "question_type")->valuestring, qt)) continue;
            const char *ans = cJSON_GetObjectItemCaseSensitive(u, "multiple_choice_answer")->valuestring;
            int n = 0;
            cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(a, "annotations"))
                n += !strcmp(cJSON_GetObjectItemCaseSensitive(w, "question_type")->valuestring, qt) &&
                     !strcmp(cJSON_GetObjectItemCaseSensitive(w, "multiple_choice_answer")->valuestring, ans);
            if (n > best_n || (n == best_n && strcmp(ans, best) < 0)) { best_n = n; best = ans; }
        }
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(x, "answer")->valuestring, best);
        checked++;
    }
    assert_int_equal(checked, 120);
    cJSON_Delete(a);
    cJSON_Delete(r);
    cJSON_Delete(va);
    // a model or the baseline, not both
    char *both[] = {"vqa", "--majority-of", train, "--checkpoint", "x", "--shards", val, "--out", res, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, both), 2);
}

// Writes `len` bytes to path (a test helper; fails the test on an error).
static void write_bytes(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static bool same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = vlt_read_file(a, &la), *y = vlt_read_file(b, &lb);
    bool same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

// `vlt vqa --weights RUN's model.safetensors --model CONFIG --answer-vocab FILE` writes the same
// results.json as `vlt vqa --checkpoint RUN`, byte for byte: returns after checking that.
static void check_weights_equal_checkpoint(const char *run, const char *model, const char *vocab, const char *tag) {
    char src[600], wts[600], r1[600], r2[600];
    snprintf(src, sizeof src, "%s/checkpoints/latest/model.safetensors", run);
    snprintf(wts, sizeof wts, "%s/%s.safetensors", g_dir, tag);   // the weights alone, outside the run
    size_t len;
    char *bytes = vlt_read_file(src, &len);
    assert_non_null(bytes);
    write_bytes(wts, bytes, len);
    free(bytes);
    snprintf(r1, sizeof r1, "%s/%s-checkpoint.json", g_dir, tag);
    snprintf(r2, sizeof r2, "%s/%s-weights.json", g_dir, tag);
    char val[400];
    snprintf(val, sizeof val, "%s/val/{00000..00001}.tar", g_dir);
    char *a[] = {"vqa", "--checkpoint", (char *)run, "--shards", val, "--out", r1, NULL};
    char *b[] = {"vqa", "--weights", wts, "--model", (char *)model, "--answer-vocab", (char *)vocab, "--shards", val, "--out", r2, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, a), 0);
    if (train_fixture_call(vlt_cmd_vqa, b) != 0) fail_msg("vlt vqa --weights %s --model %s: %s", wts, model, vlt_error_message());
    if (!same_file(r1, r2)) fail_msg("%s: results of --weights differ from --checkpoint's", tag);
    cJSON *arr;
    assert_int_equal(vlt_eval_json_load(r2, &arr), VLT_OK);
    assert_int_equal(cJSON_GetArraySize(arr), 120);
    cJSON_Delete(arr);
}

// A weights file with one key renamed (`key` -> `key`_renamed) is refused, naming the key.
static void check_renamed_key_refused(const char *tag, const char *model, const char *vocab, const char *key) {
    char wts[600], bad[600], out[600], val[400];
    snprintf(wts, sizeof wts, "%s/%s.safetensors", g_dir, tag);
    snprintf(bad, sizeof bad, "%s/%s-bad.safetensors", g_dir, tag);
    snprintf(out, sizeof out, "%s/%s-bad.json", g_dir, tag);
    snprintf(val, sizeof val, "%s/val/{00000..00001}.tar", g_dir);
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open(wts, &f), VLT_OK);
    vlt_params p;
    vlt_params_init(&p);
    for (int i = 0; i < vlt_safetensors_count(f); i++) {
        const vlt_st_tensor *t = vlt_safetensors_at(f, i);
        int shape[8];
        for (int d = 0; d < t->ndim; d++) shape[d] = (int)t->shape[d];
        char name[300];
        snprintf(name, sizeof name, "%s%s", t->name, strcmp(t->name, key) ? "" : "_renamed");
        bool f32 = t->dtype == VLT_ST_F32;   // else integers (ALBEF's position_ids)
        vlt_tensor *x = vlt_tensor_new(f32 ? VLT_F32 : VLT_I32, VLT_CPU, t->ndim, shape, name);
        if (f32) {
            assert_int_equal(vlt_safetensors_read_f32(f, t->name, vlt_f32(x), x->numel), VLT_OK);
        } else {
            int64_t *tmp = malloc(sizeof(int64_t) * (size_t)x->numel);
            assert_int_equal(vlt_safetensors_read_i64(f, t->name, tmp, x->numel), VLT_OK);
            for (int64_t j = 0; j < x->numel; j++) vlt_i32(x)[j] = (int32_t)tmp[j];
            free(tmp);
        }
        assert_int_equal(vlt_params_add(&p, x), VLT_OK);
    }
    vlt_safetensors_close(f);
    assert_int_equal(vlt_safetensors_save_params(bad, &p, VLT_ST_F32, NULL, 0), VLT_OK);
    vlt_params_free(&p);
    char *v[] = {"vqa", "--weights", bad, "--model", (char *)model, "--answer-vocab", (char *)vocab, "--shards", val, "--out", out, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, v), 1);
    if (!strstr(vlt_error_message(), key)) fail_msg("the refusal does not name %s: %s", key, vlt_error_message());
    struct stat sb;
    assert_int_not_equal(stat(out, &sb), 0);   // nothing written
}

// vlt vqa --weights FILE --model NAME|config.json --answer-vocab FILE: the classifier head's shape
// comes from the file (a hidden width other than the default; token fusion's layers), ALBEF VQA's
// from its model config; each gives --checkpoint's results byte for byte; mismatched weights and
// vocabularies are refused by name, a missing vocabulary before anything is loaded.
static void test_weights_file(void **state) {
    (void)state;
    vlt_run_config c;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    char run[3][600], vocab[700], model[400], list[400];
    const char *runs[3] = {"wts-concat", "wts-tokens", "wts-albef"};
    for (int k = 0; k < 3; k++) {
        vqa_config(&c, runs[k]);
        c.steps = 3;
        c.warmup = 1;
        if (k == 0) c.vqa_hidden = 24;
        if (k == 1) {
            snprintf(c.vqa_fusion, sizeof c.vqa_fusion, "tokens");
            c.vqa_fusion_layers = 1;
        }
        if (k == 2) {   // a tiny ALBEF VQA (tests/train_fixture.h, as tests/test_train_albef_vqa.c)
            snprintf(model, sizeof model, "%s/tiny-albef-vqa.json", g_dir);
            assert_int_equal(train_fixture_tiny_albef_vqa(model), 0);
            snprintf(c.model_name, sizeof c.model_name, "%s", model);
            snprintf(c.vqa_head, sizeof c.vqa_head, "albef");
            c.batch_size = 8;
            c.lr = 1e-3;
        }
        if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
        assert_int_equal(vlt_trainer_run(t), VLT_OK);
        vlt_trainer_free(t);
        snprintf(run[k], sizeof run[k], "%s", c.output_dir);
    }
    snprintf(vocab, sizeof vocab, "%s/answer_vocab.json", run[0]);
    check_weights_equal_checkpoint(run[0], "tiny-clip", vocab, "wts-concat");
    check_weights_equal_checkpoint(run[1], "tiny-clip", vocab, "wts-tokens");
    // ALBEF VQA ranks the answers of ALBEF's answer_list.json format (a JSON list): the run's, in order
    vlt_vqa_vocab v = train_vocab();
    cJSON *arr = cJSON_CreateStringArray((const char *const *)v.answers, v.n);
    char *text = cJSON_PrintUnformatted(arr);
    snprintf(list, sizeof list, "%s/answer_list.json", g_dir);
    write_bytes(list, text, strlen(text));
    free(text);
    cJSON_Delete(arr);
    check_weights_equal_checkpoint(run[2], model, list, "wts-albef");
    // vlt eval checkpoint on the weights with --answer-vocab scores as on the run
    for (int k = 0; k < 3; k += 2) {
        char wf[600], r1[600], r2[600], vs[400];
        snprintf(wf, sizeof wf, "%s/%s.safetensors", g_dir, runs[k]);
        snprintf(r1, sizeof r1, "%s/%s-ckpt-report.json", g_dir, runs[k]);
        snprintf(r2, sizeof r2, "%s/%s-wts-report.json", g_dir, runs[k]);
        snprintf(vs, sizeof vs, "%s/val/{00000..00001}.tar", g_dir);
        char *e1[] = {"checkpoint", "--checkpoint", run[k], "--shards", vs, "--out", r1, NULL};
        char *e2[] = {"checkpoint", "--weights", wf, "--model", k ? model : "tiny-clip", "--answer-vocab", k ? list : vocab,
                      "--shards", vs, "--out", r2, NULL};
        assert_int_equal(train_fixture_call(vlt_cmd_eval_checkpoint, e1), 0);
        assert_int_equal(train_fixture_call(vlt_cmd_eval_checkpoint, e2), 0);
        cJSON *a1, *a2;
        assert_int_equal(vlt_eval_json_load(r1, &a1), VLT_OK);
        assert_int_equal(vlt_eval_json_load(r2, &a2), VLT_OK);
        cJSON *n1 = cJSON_GetObjectItem(a1, "numbers"), *n2 = cJSON_GetObjectItem(a2, "numbers");
        assert_true(cJSON_GetObjectItem(n1, "n_questions")->valuedouble == 120);
        assert_true(cJSON_GetObjectItem(n1, "accuracy")->valuedouble == cJSON_GetObjectItem(n2, "accuracy")->valuedouble);
        assert_int_equal(cJSON_GetArraySize(n1), cJSON_GetArraySize(n2));
        cJSON_Delete(a1);
        cJSON_Delete(a2);
    }
    char h5[600], vs3[400];   // only eval checkpoint (and vlt vqa) take --answer-vocab
    snprintf(h5, sizeof h5, "%s/x.h5", g_dir);
    snprintf(vs3, sizeof vs3, "%s/val/{00000..00001}.tar", g_dir);
    char *e3[] = {"embed", "--checkpoint", run[0], "--shards", vs3, "--out", h5, "--answer-vocab", vocab, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_embed, e3), 2);

    // mismatched weights: a renamed tower key, head key or ALBEF key is refused, naming it
    check_renamed_key_refused("wts-concat", "tiny-clip", vocab, "visual.proj");
    check_renamed_key_refused("wts-tokens", "tiny-clip", vocab, "vqa_head.fusion.image_proj.weight");
    check_renamed_key_refused("wts-albef", model, list, "text_decoder.cls.predictions.decoder.weight");
    // CLIP weights without an answer head: refused, naming the head's key
    check_renamed_key_refused("wts-concat", "tiny-clip", vocab, "vqa_head.fc2.weight");
    char wts[600], out[600], val[400], small[400];
    snprintf(wts, sizeof wts, "%s/wts-concat.safetensors", g_dir);
    snprintf(out, sizeof out, "%s/refused.json", g_dir);
    snprintf(val, sizeof val, "%s/val/{00000..00001}.tar", g_dir);
    // a vocabulary of another size than the classifier's head: refused, naming the head's key
    snprintf(small, sizeof small, "%s/three_answers.json", g_dir);
    write_bytes(small, "[\"yes\", \"no\", \"2\"]", strlen("[\"yes\", \"no\", \"2\"]"));
    char *w1[] = {"vqa", "--weights", wts, "--model", "tiny-clip", "--answer-vocab", small, "--shards", val, "--out", out, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, w1), 1);
    assert_non_null(strstr(vlt_error_message(), "vqa_head.fc2.weight"));
    assert_non_null(strstr(vlt_error_message(), "three_answers.json"));
    // with --checkpoint, --answer-vocab replaces the checkpoint's: the classifier's head refuses
    // another size; ALBEF VQA ranks the given list, so every answer is one of its three
    char *w5[] = {"vqa", "--checkpoint", run[0], "--answer-vocab", small, "--shards", val, "--out", out, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, w5), 1);
    assert_non_null(strstr(vlt_error_message(), "vqa_head.fc2.weight"));
    char ranked[600];
    snprintf(ranked, sizeof ranked, "%s/albef-three.json", g_dir);
    char *w6[] = {"vqa", "--checkpoint", run[2], "--answer-vocab", small, "--shards", val, "--out", ranked, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, w6), 0);
    cJSON *res, *e;
    assert_int_equal(vlt_eval_json_load(ranked, &res), VLT_OK);
    assert_int_equal(cJSON_GetArraySize(res), 120);
    cJSON_ArrayForEach(e, res) {
        const char *ans = cJSON_GetObjectItemCaseSensitive(e, "answer")->valuestring;
        if (strcmp(ans, "yes") && strcmp(ans, "no") && strcmp(ans, "2")) fail_msg("answer '%s' is not in the list", ans);
    }
    cJSON_Delete(res);
    // no --answer-vocab with --weights: a usage error, before anything is read
    char *w2[] = {"vqa", "--weights", wts, "--model", "tiny-clip", "--shards", val, "--out", out, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, w2), 2);
    // --weights without --model, and --model without --weights
    char *w3[] = {"vqa", "--weights", wts, "--answer-vocab", vocab, "--shards", val, "--out", out, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, w3), 2);
    char *w4[] = {"vqa", "--checkpoint", run[0], "--model", "tiny-clip", "--shards", val, "--out", out, NULL};
    assert_int_equal(train_fixture_call(vlt_cmd_vqa, w4), 2);
    struct stat sb;
    assert_int_not_equal(stat(out, &sb), 0);
    vlt_vqa_vocab_free(&v);
}

// The example run configs parse and validate, with the head they name.
static void test_example_configs(void **state) {
    (void)state;
    const char *files[] = {"configs/run/demo-vqa.yaml", "configs/run/vqa-clip-ViT-B-32.yaml"};
    for (int i = 0; i < 2; i++) {
        vlt_run_config c;
        vlt_run_config_default(&c);
        if (vlt_run_config_load(files[i], &c) != VLT_OK) fail_msg("%s", vlt_error_message());
        assert_int_equal(vlt_run_config_validate(&c), VLT_OK);
        assert_string_equal(c.vqa_head, "classifier");
        assert_int_equal(c.vqa_answers, 3129);
        vlt_model_cfg mc;
        assert_int_equal(vlt_run_config_model_cfg(&c, &mc), VLT_OK);
        assert_int_equal(mc.vqa.n_answers, 3129);
    }
    // an unknown head, and a misspelt key, are refused by name
    vlt_run_config c;
    vlt_run_config_default(&c);
    assert_int_equal(vlt_run_config_set(&c, "model.vqa_head=ranker"), VLT_OK);
    snprintf(c.train_shards, sizeof c.train_shards, "x.tar");
    assert_int_not_equal(vlt_run_config_validate(&c), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "model.vqa_head 'ranker'"));
    assert_int_equal(vlt_run_config_set(&c, "model.vqa_head=classifier"), VLT_OK);
    assert_int_equal(vlt_run_config_set(&c, "model.vqa_fusion=tokens"), VLT_OK);
    assert_int_equal(vlt_run_config_validate(&c), VLT_OK);
    vlt_model_cfg mc;
    assert_int_equal(vlt_run_config_model_cfg(&c, &mc), VLT_OK);
    assert_int_equal(mc.vqa.fusion_layers, 2);
    assert_int_equal(vlt_run_config_set(&c, "model.vqa_fusion=cross"), VLT_OK);
    assert_int_not_equal(vlt_run_config_validate(&c), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "model.vqa_fusion 'cross'"));
    assert_int_not_equal(vlt_run_config_set(&c, "model.vqa_answer=10"), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "did you mean 'model.vqa_answers'"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_configs),
        cmocka_unit_test(test_soft_score_targets),
        cmocka_unit_test(test_majority_baseline),
        cmocka_unit_test(test_train_resume_exactly),
        cmocka_unit_test(test_answers_scored_as_in_training),
        cmocka_unit_test(test_weights_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
