// test_checkpoints_checkpoint.c — checkpoint directories: round trip (parameters, moments, t,
// state JSON byte for byte), strict load errors, keep-last-K, `latest`, stale temporary
// directories, invalid `latest` messages, a crash at every point of the write sequence
// (VLT_CHECKPOINT_CRASH_AT) and real kill -9s of a writer saving in a loop.
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "autograd/optim.h"
#include "autograd/params.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/safetensors.h"

// --- fixtures ---------------------------------------------------------------------------------

// A small model in open_clip names (plus, when big > 0, one tensor of `big` floats) and its AdamW.
typedef struct {
    vlt_params p;
    vlt_adamw *opt;
} model;

static void model_make(model *m, int big, bool extra, bool other_shape) {
    vlt_params_init(&m->p);
    assert_non_null(vlt_params_new(&m->p, "visual.conv1.weight", 4, (int[]){4, 3, 2, 2}));
    assert_non_null(vlt_params_new(&m->p, "visual.ln_post.bias", 1, (int[]){other_shape ? 8 : 7}));
    assert_non_null(vlt_params_new(&m->p, "logit_scale", 1, (int[]){1}));
    assert_non_null(vlt_params_new(&m->p, "text_projection", 2, (int[]){5, 6}));
    if (big > 0) assert_non_null(vlt_params_new(&m->p, "visual.big", 1, (int[]){big}));
    if (extra) assert_non_null(vlt_params_new(&m->p, "extra.weight", 2, (int[]){2, 2}));
    m->opt = vlt_adamw_new(m->p.t, NULL, m->p.n, vlt_adamw_defaults());
    assert_non_null(m->opt);
}

static void model_free(model *m) {
    vlt_adamw_free(m->opt);
    vlt_params_free(&m->p);
}

// Every value is a function of (step, gen): parameters, both moments and t.
static float val(int64_t step, int gen, int j, int64_t i, int which) {
    return (float)step * 0.5f + (float)gen * 0.125f + (float)j * 3.0f + (float)(i % 1000) * 1e-3f + (float)which * 7.0f;
}

static void model_fill(model *m, int64_t step, int gen) {
    for (int j = 0; j < m->p.n; j++) {
        vlt_tensor *t = m->p.t[j];
        for (int64_t i = 0; i < t->numel; i++) {
            vlt_f32(t)[i] = val(step, gen, j, i, 0);
            m->opt->m[j][i] = val(step, gen, j, i, 1);
            m->opt->v[j][i] = val(step, gen, j, i, 2);
        }
    }
    m->opt->t = step * 3 + gen + 1;
}

// Whether the model and optimizer hold exactly the values of (step, gen).
static bool model_holds(const model *m, int64_t step, int gen) {
    for (int j = 0; j < m->p.n; j++) {
        const vlt_tensor *t = m->p.t[j];
        for (int64_t i = 0; i < t->numel; i++)
            if (vlt_f32(t)[i] != val(step, gen, j, i, 0) || m->opt->m[j][i] != val(step, gen, j, i, 1) ||
                m->opt->v[j][i] != val(step, gen, j, i, 2))
                return false;
    }
    return m->opt->t == step * 3 + gen + 1;
}

static void state_text(char *buf, size_t cap, int64_t step, int gen) {
    snprintf(buf, cap,
             "{\"step\": %lld, \"gen\": %d, \"epoch\": 0, \"rng\": [4294967295, 1, 2],\n"
             "  \"loader\": {\"shard\": 3, \"offset\": 17}, \"note\": \"caf\\u00e9 \xc3\xa9\"}\n",
             (long long)step, gen);
}

static int64_t state_step(const char *json, int *gen) {
    long long s = -1;
    int g = -1;
    const char *p = strstr(json, "\"step\": ");
    const char *q = strstr(json, "\"gen\": ");
    if (p) s = strtoll(p + 8, NULL, 10);
    if (q) g = atoi(q + 7);
    if (gen) *gen = g;
    return s;
}

static vlt_status save(const char *run, model *m, int64_t step, int gen, int keep) {
    char st[512];
    state_text(st, sizeof st, step, gen);
    model_fill(m, step, gen);
    return vlt_checkpoint_save(run, step, &m->p, m->opt, st, keep);
}

static void save_ok(const char *run, model *m, int64_t step, int gen, int keep) {
    vlt_status s = save(run, m, step, gen, keep);
    if (s != VLT_OK) fail_msg("save step %lld: %s", (long long)step, vlt_error_message());
}

static void make_run(char *dir) {
    strcpy(dir, "/tmp/vlt_ckpt_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_run(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

static bool exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool exists(const char *fmt, ...) {
    char p[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    struct stat st;
    return lstat(p, &st) == 0;
}

static void latest_target(const char *run, char *out, size_t cap) {
    char p[4096];
    snprintf(p, sizeof p, "%s/checkpoints/latest", run);
    ssize_t n = readlink(p, out, cap - 1);
    assert_true(n > 0);
    out[n] = '\0';
}

// Resolves `latest` and loads it into a fresh model; returns the step (and gen) it holds, after
// checking that the values are exactly those of that step and that the state says the same.
static int64_t load_latest(const char *run, int big, int *gen_out) {
    char dir[4096];
    if (vlt_checkpoint_resolve(run, "latest", dir, sizeof dir) != VLT_OK) fail_msg("resolve: %s", vlt_error_message());
    model m;
    model_make(&m, big, false, false);
    char *st = NULL;
    if (vlt_checkpoint_load(dir, &m.p, m.opt, &st) != VLT_OK) fail_msg("load: %s", vlt_error_message());
    int gen;
    int64_t step = state_step(st, &gen);
    char want[512];
    state_text(want, sizeof want, step, gen);
    assert_string_equal(st, want);
    assert_true(model_holds(&m, step, gen));
    char name[64];
    snprintf(name, sizeof name, "/step_%08lld", (long long)step);
    assert_non_null(strstr(dir, name));
    free(st);
    model_free(&m);
    if (gen_out) *gen_out = gen;
    return step;
}

// --- tests ------------------------------------------------------------------------------------

static void test_round_trip(void **state) {
    (void)state;
    char run[64], dir[4096], p[4200];
    make_run(run);
    model a;
    model_make(&a, 0, false, false);
    save_ok(run, &a, 10, 0, 3);
    assert_true(exists("%s/checkpoints/step_00000010/model.safetensors", run));
    assert_true(exists("%s/checkpoints/step_00000010/optimizer.safetensors", run));
    assert_true(exists("%s/checkpoints/step_00000010/state.json", run));
    latest_target(run, p, sizeof p);
    assert_string_equal(p, "step_00000010");
    assert_int_equal(count_prefix(run, "checkpoints"), 1);

    // Another model with other values receives exactly the saved ones.
    model b;
    model_make(&b, 0, false, false);
    model_fill(&b, 99, 5);
    assert_int_equal(vlt_checkpoint_resolve(run, "latest", dir, sizeof dir), VLT_OK);
    snprintf(p, sizeof p, "%s/checkpoints/step_00000010", run);
    assert_string_equal(dir, p);
    char *st = NULL;
    if (vlt_checkpoint_load(dir, &b.p, b.opt, &st) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_true(model_holds(&b, 10, 0));
    assert_int_equal(b.opt->t, 31);
    char want[512];
    state_text(want, sizeof want, 10, 0);
    assert_string_equal(st, want);
    free(st);
    int64_t step = -1;
    assert_int_equal(vlt_checkpoint_validate(dir, &step), VLT_OK);
    assert_int_equal(step, 10);

    // The files mean what they say to any safetensors reader.
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    vlt_safetensors *f;
    assert_int_equal(vlt_safetensors_open(p, &f), VLT_OK);
    assert_int_equal(vlt_safetensors_count(f), 4);
    assert_string_equal(vlt_safetensors_metadata(f, "format"), "pt");
    assert_string_equal(vlt_safetensors_metadata(f, "vlt_checkpoint_format"), "1");
    assert_int_equal(vlt_safetensors_get(f, "logit_scale")->ndim, 0);   // open_clip's 0-d tensor
    assert_int_equal(vlt_safetensors_get(f, "visual.conv1.weight")->dtype, VLT_ST_F32);
    vlt_safetensors_close(f);
    snprintf(p, sizeof p, "%s/optimizer.safetensors", dir);
    assert_int_equal(vlt_safetensors_open(p, &f), VLT_OK);
    assert_int_equal(vlt_safetensors_count(f), 2 * 4 + 1);
    const vlt_st_tensor *t = vlt_safetensors_get(f, "text_projection.exp_avg_sq");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 5);
    assert_int_equal(t->shape[1], 6);
    float x[30];
    assert_int_equal(vlt_safetensors_read_f32(f, "text_projection.exp_avg_sq", x, 30), VLT_OK);
    assert_true(x[29] == val(10, 0, 3, 29, 2));
    assert_non_null(vlt_safetensors_get(f, "visual.conv1.weight.exp_avg"));
    int64_t tt;
    assert_int_equal(vlt_safetensors_read_i64(f, "step", &tt, 1), VLT_OK);
    assert_int_equal(tt, 31);
    assert_string_equal(vlt_safetensors_metadata(f, "vlt_step"), "10");
    vlt_safetensors_close(f);

    // Other ways to name the same checkpoint: its path, the run directory, its bare name.
    char d2[4096];
    assert_int_equal(vlt_checkpoint_resolve(NULL, dir, d2, sizeof d2), VLT_OK);
    assert_string_equal(d2, dir);
    assert_int_equal(vlt_checkpoint_resolve(NULL, run, d2, sizeof d2), VLT_OK);
    assert_string_equal(d2, dir);
    assert_int_equal(vlt_checkpoint_resolve(run, "step_00000010", d2, sizeof d2), VLT_OK);
    assert_string_equal(d2, dir);
    assert_int_not_equal(vlt_checkpoint_resolve(run, "step_00000011", d2, sizeof d2), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "step_00000011"));

    // Without optimizer or state output: only the model.
    model_fill(&b, 99, 5);
    assert_int_equal(vlt_checkpoint_load(dir, &b.p, NULL, NULL), VLT_OK);
    assert_true(vlt_f32(b.p.t[3])[7] == val(10, 0, 3, 7, 0));
    assert_true(b.opt->m[3][7] == val(99, 5, 3, 7, 1));
    model_free(&a);
    model_free(&b);
    rm_run(run);
}

// A state holding NaN or inf (in a parameter or a moment) is never written and `latest` stays
// on the last finite checkpoint; a checkpoint whose files hold one is refused on load, naming the
// tensor, and leaves the model untouched.
static void test_nonfinite_state(void **state) {
    (void)state;
    char run[64], dir[4096], p[4200];
    make_run(run);
    model a;
    model_make(&a, 0, false, false);
    save_ok(run, &a, 10, 0, 3);
    model_fill(&a, 20, 0);
    vlt_f32(a.p.t[3])[4] = NAN;
    char st[512];
    state_text(st, sizeof st, 20, 0);
    assert_int_equal(vlt_checkpoint_save(run, 20, &a.p, a.opt, st, 3), VLT_ERR_STATE);
    assert_non_null(strstr(vlt_error_message(), "parameter 'text_projection' holds 1 non-finite values"));
    assert_false(exists("%s/checkpoints/step_00000020", run));
    snprintf(p, sizeof p, "%s/checkpoints", run);
    assert_int_equal(count_prefix(p, ".tmp-"), 0);
    latest_target(run, p, sizeof p);
    assert_string_equal(p, "step_00000010");
    model_fill(&a, 20, 0);
    a.opt->v[1][2] = INFINITY;
    assert_int_equal(vlt_checkpoint_save(run, 20, &a.p, a.opt, st, 3), VLT_ERR_STATE);
    assert_non_null(strstr(vlt_error_message(), "optimizer state 'visual.ln_post.bias.exp_avg_sq'"));
    assert_false(exists("%s/checkpoints/step_00000020", run));
    assert_int_equal(load_latest(run, 0, NULL), 10);

    // NaN written into the files behind the writer's back: refused by name, nothing loaded.
    snprintf(dir, sizeof dir, "%s/checkpoints/step_00000010", run);
    model b;
    model_make(&b, 0, false, false);
    const char *files[2] = {"model.safetensors", "optimizer.safetensors"};
    const char *keys[2] = {"logit_scale", "text_projection.exp_avg"};
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[k]);
        vlt_safetensors *f;
        assert_int_equal(vlt_safetensors_open(p, &f), VLT_OK);
        const vlt_st_tensor *t = vlt_safetensors_get(f, keys[k]);
        assert_non_null(t);
        uint64_t at = t->offset;   // in the data area, after the 8-byte length and the header
        vlt_safetensors_close(f);
        FILE *fp = fopen(p, "r+b");
        assert_non_null(fp);
        uint64_t hlen;
        assert_int_equal(fread(&hlen, 8, 1, fp), 1);
        float nan = NAN;
        assert_int_equal(fseek(fp, (long)(8 + hlen + at), SEEK_SET), 0);
        assert_int_equal(fwrite(&nan, 4, 1, fp), 1);
        fclose(fp);
        model_fill(&b, 99, 5);
        assert_int_equal(vlt_checkpoint_load(dir, &b.p, b.opt, NULL), VLT_ERR_FORMAT);
        assert_non_null(strstr(vlt_error_message(), keys[k]));
        assert_non_null(strstr(vlt_error_message(), "non-finite"));
        assert_true(model_holds(&b, 99, 5));
    }
    model_free(&a);
    model_free(&b);
    rm_run(run);
}

static void test_strict_load(void **state) {
    (void)state;
    char run[64], dir[4096], p[4200];
    make_run(run);
    model a;
    model_make(&a, 0, false, false);
    save_ok(run, &a, 5, 0, 0);
    assert_int_equal(vlt_checkpoint_resolve(run, "latest", dir, sizeof dir), VLT_OK);

    // A model with one more parameter: refused, naming the key and the file; nothing changed.
    model b;
    model_make(&b, 0, true, false);
    model_fill(&b, 77, 1);
    assert_int_equal(vlt_checkpoint_load(dir, &b.p, b.opt, NULL), VLT_ERR_FORMAT);
    const char *msg = vlt_error_message();
    assert_non_null(strstr(msg, "extra.weight"));
    assert_true(strstr(msg, "model.safetensors") || strstr(msg, "optimizer.safetensors"));
    assert_true(model_holds(&b, 77, 1));
    // Model fine, optimizer over other parameters: the optimizer file is named.
    assert_int_equal(vlt_checkpoint_load(dir, &b.p, NULL, NULL), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "model.safetensors"));
    assert_non_null(strstr(vlt_error_message(), "extra.weight"));
    model_free(&b);

    model c;
    model_make(&c, 0, false, true);   // visual.ln_post.bias is (8), not (7)
    model_fill(&c, 77, 1);
    assert_int_equal(vlt_checkpoint_load(dir, &c.p, c.opt, NULL), VLT_ERR_FORMAT);
    msg = vlt_error_message();
    assert_non_null(strstr(msg, "optimizer.safetensors"));
    assert_non_null(strstr(msg, "visual.ln_post.bias.exp_avg"));
    assert_true(model_holds(&c, 77, 1));
    model_free(&c);

    // An optimizer over a subset of the parameters: the others' moments are unexpected.
    model d;
    model_make(&d, 0, false, false);
    vlt_adamw *sub = vlt_adamw_new(d.p.t, NULL, 2, vlt_adamw_defaults());
    assert_non_null(sub);
    assert_int_equal(vlt_checkpoint_load(dir, &d.p, sub, NULL), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "unexpected"));
    assert_non_null(strstr(vlt_error_message(), "text_projection.exp_avg"));
    vlt_adamw_free(sub);

    // Bad state JSON is refused at save time; a corrupt state.json makes the checkpoint invalid.
    assert_int_equal(vlt_checkpoint_save(run, 6, &d.p, d.opt, "{\"step\": 6,", 0), VLT_ERR_FORMAT);
    assert_int_equal(vlt_checkpoint_save(run, 6, &d.p, d.opt, "[1, 2]", 0), VLT_ERR_FORMAT);
    assert_false(exists("%s/checkpoints/step_00000006", run));
    assert_int_equal(count_prefix(run, "checkpoints"), 1);
    snprintf(p, sizeof p, "%s/state.json", dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("{\"step\": 5, \"trunc", fp);
    fclose(fp);
    assert_int_equal(vlt_checkpoint_load(dir, &d.p, d.opt, NULL), VLT_ERR_FORMAT);
    assert_non_null(strstr(vlt_error_message(), "state.json"));
    // A missing optimizer file.
    save_ok(run, &d, 7, 0, 0);
    snprintf(p, sizeof p, "%s/checkpoints/step_00000007/optimizer.safetensors", run);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/checkpoints/step_00000007", run);
    assert_int_not_equal(vlt_checkpoint_validate(p, NULL), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "optimizer.safetensors"));
    model_free(&d);
    model_free(&a);
    rm_run(run);
}

static void test_keep_last_k(void **state) {
    (void)state;
    char run[64], ck[128], p[4096];
    make_run(run);
    snprintf(ck, sizeof ck, "%s/checkpoints", run);
    model a;
    model_make(&a, 0, false, false);
    for (int s = 1; s <= 6; s++) {
        save_ok(run, &a, s * 100, 0, 3);
        latest_target(run, p, sizeof p);
        char want[32];
        snprintf(want, sizeof want, "step_%08d", s * 100);
        assert_string_equal(p, want);
        assert_int_equal(count_prefix(ck, "step_"), s < 3 ? s : 3);
        assert_int_equal(load_latest(run, 0, NULL), s * 100);
    }
    assert_false(exists("%s/step_00000300", ck));
    assert_true(exists("%s/step_00000400", ck));
    assert_true(exists("%s/step_00000600", ck));
    assert_int_equal(count_prefix(ck, ".tmp-"), 0);
    // keep <= 0 keeps everything.
    save_ok(run, &a, 700, 0, 0);
    assert_int_equal(count_prefix(ck, "step_"), 4);
    // Saving an existing step again (a resumed run): replaced whole, and `latest` names it.
    save_ok(run, &a, 500, 2, 0);
    latest_target(run, p, sizeof p);
    assert_string_equal(p, "step_00000500");
    int gen;
    assert_int_equal(load_latest(run, 0, &gen), 500);
    assert_int_equal(gen, 2);
    assert_int_equal(count_prefix(ck, ".tmp-"), 0);
    // The step that `latest` names survives pruning even when older than the others.
    save_ok(run, &a, 450, 0, 1);
    assert_true(exists("%s/step_00000450", ck));
    assert_true(exists("%s/step_00000700", ck));
    assert_int_equal(count_prefix(ck, "step_"), 2);
    assert_int_equal(load_latest(run, 0, NULL), 450);
    // Steps past 8 digits.
    save_ok(run, &a, 123456789012LL, 0, 0);
    assert_true(exists("%s/step_123456789012", ck));
    assert_int_equal(load_latest(run, 0, NULL), 123456789012LL);
    model_free(&a);
    rm_run(run);
}

// A pid of no live process: one past the kernel's largest (or that of a child now gone).
static pid_t dead_pid(void) {
    FILE *fp = fopen("/proc/sys/kernel/pid_max", "r");
    long max = 0;
    if (fp) {
        if (fscanf(fp, "%ld", &max) != 1) max = 0;
        fclose(fp);
    }
    if (max > 0 && max < INT32_MAX) return (pid_t)(max + 1);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) _exit(0);
    int st;
    assert_int_equal(waitpid(c, &st, 0), c);
    return c;
}

static void test_stale_tmp(void **state) {
    (void)state;
    char run[64], ck[128], p[4096];
    make_run(run);
    snprintf(ck, sizeof ck, "%s/checkpoints", run);
    model a;
    model_make(&a, 0, false, false);
    save_ok(run, &a, 1, 0, 0);
    pid_t dead = dead_pid();
    // What crashed writers leave: a half-written step, a temp link, a half-pruned step.
    snprintf(p, sizeof p, "%s/.tmp-step_00000002-%d", ck, (int)dead);
    assert_int_equal(mkdir(p, 0777), 0);
    snprintf(p, sizeof p, "%s/.tmp-step_00000002-%d/model.safetensors", ck, (int)dead);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("partial", fp);
    fclose(fp);
    snprintf(p, sizeof p, "%s/.tmp-latest-%d", ck, (int)dead);
    assert_int_equal(symlink(".tmp-step_00000002-1", p), 0);
    snprintf(p, sizeof p, "%s/.tmp-prune-step_00000000-%d", ck, (int)dead);
    assert_int_equal(mkdir(p, 0777), 0);
    // A writer that is still alive (our parent) keeps its work in progress.
    snprintf(p, sizeof p, "%s/.tmp-step_00000003-%d", ck, (int)getppid());
    assert_int_equal(mkdir(p, 0777), 0);
    // Readers ignore them.
    assert_int_equal(load_latest(run, 0, NULL), 1);
    assert_int_equal(count_prefix(ck, ".tmp-"), 4);
    save_ok(run, &a, 2, 0, 0);
    assert_int_equal(count_prefix(ck, ".tmp-"), 1);
    assert_true(exists("%s/.tmp-step_00000003-%d", ck, (int)getppid()));
    assert_int_equal(load_latest(run, 0, NULL), 2);
    model_free(&a);
    rm_run(run);
}

static void test_invalid_latest(void **state) {
    (void)state;
    char run[64], ck[128], p[4096], dir[4096];
    make_run(run);
    snprintf(ck, sizeof ck, "%s/checkpoints", run);
    model a;
    model_make(&a, 0, false, false);
    // Nothing saved yet.
    assert_int_not_equal(vlt_checkpoint_resolve(run, "latest", dir, sizeof dir), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "latest"));
    save_ok(run, &a, 1, 0, 0);
    save_ok(run, &a, 2, 0, 0);
    save_ok(run, &a, 3, 0, 0);
    // latest -> step 3 without state.json: refused, naming what is wrong and offering step 2.
    snprintf(p, sizeof p, "%s/step_00000003/state.json", ck);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(vlt_checkpoint_resolve(run, "latest", dir, sizeof dir), VLT_ERR_FORMAT);
    const char *msg = vlt_error_message();
    assert_non_null(strstr(msg, "step_00000003"));
    assert_non_null(strstr(msg, "state.json"));
    assert_non_null(strstr(msg, "not a valid checkpoint"));
    assert_non_null(strstr(msg, "step_00000002"));
    assert_string_equal(dir, "");
    // step 2 truncated as well: the offer moves to step 1, the reason names the model file.
    snprintf(p, sizeof p, "%s/step_00000002/model.safetensors", ck);
    assert_int_equal(truncate(p, 100), 0);
    assert_int_not_equal(vlt_checkpoint_validate(p, NULL), VLT_OK);
    snprintf(p, sizeof p, "%s/step_00000002", ck);
    assert_int_not_equal(vlt_checkpoint_validate(p, NULL), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "model.safetensors"));
    assert_int_not_equal(vlt_checkpoint_resolve(run, "latest", dir, sizeof dir), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "step_00000001"));
    // The loader never resumes from an invalid directory named explicitly either.
    assert_int_not_equal(vlt_checkpoint_load(p, &a.p, a.opt, NULL), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "model.safetensors"));
    // Dangling latest; then none valid at all.
    snprintf(p, sizeof p, "%s/latest", ck);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink("step_00000009", p), 0);
    assert_int_not_equal(vlt_checkpoint_resolve(run, "latest", dir, sizeof dir), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "step_00000009"));
    assert_non_null(strstr(vlt_error_message(), "step_00000001"));
    snprintf(p, sizeof p, "%s/step_00000001/optimizer.safetensors", ck);
    assert_int_equal(truncate(p, 0), 0);
    assert_int_not_equal(vlt_checkpoint_resolve(run, "latest", dir, sizeof dir), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "no valid checkpoint"));
    // A plain-text `latest` (file systems without symlinks) is followed too.
    save_ok(run, &a, 4, 0, 0);
    snprintf(p, sizeof p, "%s/latest", ck);
    assert_int_equal(unlink(p), 0);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("step_00000004\n", fp);
    fclose(fp);
    assert_int_equal(load_latest(run, 0, NULL), 4);
    model_free(&a);
    rm_run(run);
}

// One crash scenario: the run holds checkpoints 0 and 1 (latest 1, gen 0); a child saves
// (step, gen) with `keep` and VLT_CHECKPOINT_CRASH_AT=n. Returns 0 when the child finished
// (n is past the last point), else 1 after checking that `latest` loads whole, old or new.
static int crash_once(int n, int64_t step, int gen, int keep, bool *saw_old, bool *saw_new) {
    char run[64], ck[128];
    make_run(run);
    snprintf(ck, sizeof ck, "%s/checkpoints", run);
    model a;
    model_make(&a, 0, false, false);
    save_ok(run, &a, 0, 0, 0);
    save_ok(run, &a, 1, 0, 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", n);
        setenv(VLT_CHECKPOINT_CRASH_ENV, v, 1);
        _exit(save(run, &a, step, gen, keep) == VLT_OK ? 0 : 2);
    }
    int st;
    assert_int_equal(waitpid(c, &st, 0), c);
    int rc = 1;
    if (WIFEXITED(st)) {
        assert_int_equal(WEXITSTATUS(st), 0);
        rc = 0;
    } else {
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) fail_msg("crash point %d: child status %#x", n, st);
    }
    int got_gen;
    int64_t got = load_latest(run, 0, &got_gen);
    bool is_new = got == step && got_gen == gen;
    if (!is_new && !(got == 1 && got_gen == 0)) fail_msg("crash point %d: latest is step %lld gen %d", n, (long long)got, got_gen);
    if (*saw_new && !is_new) fail_msg("crash point %d: the old checkpoint came back after the switch", n);
    *(is_new ? saw_new : saw_old) = true;
    // The next save cleans up and works.
    save_ok(run, &a, 2, 7, keep);
    assert_int_equal(count_prefix(ck, ".tmp-"), 0);
    assert_int_equal(load_latest(run, 0, &got_gen), 2);
    assert_int_equal(got_gen, 7);
    model_free(&a);
    rm_run(run);
    return rc;
}

static void crash_every_point(int64_t step, int gen, int keep) {
    bool saw_old = false, saw_new = false;
    int n = 1;
    while (crash_once(n, step, gen, keep, &saw_old, &saw_new)) {
        n++;
        assert_true(n < 200);
    }
    assert_true(n > 10);   // mkdir, 3 files, fsyncs, renames, latest, pruning...
    assert_true(saw_old);
    assert_true(saw_new);
    print_message("crash points (step %lld, keep %d): %d, each left a whole latest\n", (long long)step, keep, n - 1);
}

static void test_crash_at_every_point(void **state) {
    (void)state;
    crash_every_point(2, 0, 1);   // a new step; the prune of steps 0 and 1 is crashed into too
    crash_every_point(1, 3, 0);   // the same step saved again (exchanged with the old one)
}

// kill -9 at random moments of a writer saving ~3 MB checkpoints in a loop.
static void test_kill9_writer(void **state) {
    (void)state;
    const int big = 1 << 18;   // 1 MB of parameters, 2 MB of moments
    char run[64], ck[128];
    make_run(run);
    snprintf(ck, sizeof ck, "%s/checkpoints", run);
    model a;
    model_make(&a, big, false, false);
    save_ok(run, &a, 0, 0, 2);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int64_t last = 0, advanced = 0, mid_write = 0;
    for (int it = 0; it < 10; it++) {
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0) {
            for (int64_t s = (it + 1) * 1000;; s++)
                if (save(run, &a, s, 0, 2) != VLT_OK) _exit(2);
        }
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        struct timespec d = {0, (long)(1 + (rng >> 33) % 40) * 1000000L};   // 1..40 ms
        nanosleep(&d, NULL);
        kill(c, SIGKILL);
        int st;
        assert_int_equal(waitpid(c, &st, 0), c);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) fail_msg("iteration %d: writer status %#x", it, st);
        if (count_prefix(ck, ".tmp-")) mid_write++;   // killed inside a save
        int64_t got = load_latest(run, big, NULL);   // whole, values matching its step
        assert_true(got == last || got >= (it + 1) * 1000);
        if (got != last) advanced++;
        last = got;
        assert_true(count_prefix(ck, "step_") <= 4);   // keep 2, + the new one, + one mid-prune
    }
    // A final clean save removes what the killed writers left.
    save_ok(run, &a, 99999, 0, 2);
    assert_int_equal(count_prefix(ck, ".tmp-"), 0);
    assert_int_equal(count_prefix(ck, "step_"), 2);
    print_message("kill -9 writer: %lld of 10 kills inside a save, latest advanced in %lld\n", (long long)mid_write,
                  (long long)advanced);
    model_free(&a);
    rm_run(run);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_strict_load),
        cmocka_unit_test(test_nonfinite_state),
        cmocka_unit_test(test_keep_last_k),
        cmocka_unit_test(test_stale_tmp),
        cmocka_unit_test(test_invalid_latest),
        cmocka_unit_test(test_crash_at_every_point),
        cmocka_unit_test(test_kill9_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
