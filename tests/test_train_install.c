// test_train_install.c — vlt away from its source tree: `make install PREFIX=tmp`, then the
// installed binary, run from / with no VLT_HOME, makes shards, trains a few steps of a model named
// by its config name, evaluates and embeds the checkpoint (it finds the model configs and the
// tokenizer's vocabulary under PREFIX/share/vlt from its own path). Also the start-up refusals a
// new user meets there: a data.val that does not exist (before the first step: no checkpoint, no
// metrics), too many data.workers for the shards (the message names the key).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

static char g_dir[64];     // temporary: prefix/, data/, runs
static char g_vlt[128];    // the installed binary

// Runs a shell command line; returns the exit status and the combined output in *out (malloc'd).
static int sh(const char *cmd, char **out) {
    char full[8192];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

// The installed vlt with ARGS, from /, with VLT_HOME and VLT_ASSETS unset.
static int vlt(const char *args, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd / && env -u VLT_HOME -u VLT_ASSETS OMP_NUM_THREADS=2 %s %s", g_vlt, args);
    return sh(cmd, out);
}

static void write_config(const char *name, const char *extra) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s.yaml", g_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "model:\n  name: tiny-clip\ndata:\n  train: \"%s/data/train/{00000..00001}.tar\"\n"
            "  val: \"%s/data/val/val-00000.tar\"\n  val_samples: 50\n  batch_size: 16\n  workers: 1\n"
            "  shuffle_buffer: 50\n  shuffle_initial: 10\nschedule:\n  steps: 3\n  warmup: 1\n"
            "checkpoint:\n  every: 3\nlog:\n  every: 1\noutput:\n  dir: %s/%s\n%s",
            g_dir, g_dir, g_dir, name, extra);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-install-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    // The build this suite belongs to (VLT_BUILD: build, build/san, build/nompi, ...), installed
    // by the Makefile's own rule; the make that runs the tests has already built it.
    const char *b = getenv("VLT_BUILD");
    b = b && *b ? b : "build";
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install PREFIX=%s/prefix SAN=%d CUDA=%d %s >/dev/null",
             g_dir, strstr(b, "/san") != NULL, strstr(b, "/cuda") != NULL, strstr(b, "nompi") ? "MPI=0" : "");
    char *out;
    if (sh(cmd, &out) != 0) {
        fprintf(stderr, "make install failed:\n%s\n", out);
        free(out);
        return -1;
    }
    free(out);
    snprintf(g_vlt, sizeof g_vlt, "%s/prefix/bin/vlt", g_dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_installed_layout(void **state) {
    (void)state;
    const char *files[] = {"prefix/bin/vlt", "prefix/share/vlt/configs/model/ViT-B-32.json",
                           "prefix/share/vlt/configs/model/tiny-clip.json", "prefix/share/vlt/configs/run/demo-clip.yaml",
                           "prefix/share/vlt/assets/bpe_simple_vocab_16e6.txt.gz"};
    for (int i = 0; i < 5; i++) {
        char p[256];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", g_dir, files[i]);
        if (stat(p, &st) != 0) fail_msg("make install did not install %s", p);
    }
    char *out;
    assert_int_equal(vlt("--help", &out), 0);
    char want[160];
    snprintf(want, sizeof want, "here: %s/prefix/share/vlt, next to the executable", g_dir);
    if (!strstr(out, want)) fail_msg("vlt --help does not report its data folder (%s):\n%s", want, out);
    free(out);
}

static void test_installed_vlt_trains_evaluates_embeds_from_root(void **state) {
    (void)state;
    char args[1024], *out;
    snprintf(args, sizeof args, "synth --out %s/data/train --samples 192 --shard-size 96 --image-size 32 --seed 5", g_dir);
    assert_int_equal(vlt(args, NULL), 0);
    snprintf(args, sizeof args,
             "synth --out %s/data/val --samples 64 --shard-size 64 --image-size 32 --seed 5 --first-index 100000 --prefix val-",
             g_dir);
    assert_int_equal(vlt(args, NULL), 0);
    write_config("run", "");
    snprintf(args, sizeof args, "train --config %s/run.yaml", g_dir);
    int rc = vlt(args, &out);
    if (rc != 0) fail_msg("installed vlt train from /: exit %d\n%s", rc, out);
    // Output to a pipe: the start-up summary, plain progress lines, events on lines of their own.
    if (!strstr(out, "vlt train: model tiny-clip (CLIP, 3,380,993 parameters); 1 rank(s) x batch 16 = global batch 16; "
                     "device cpu, precision fp32; 2 training shard(s), 1 held-out; run directory "))
        fail_msg("no start-up summary line:\n%s", out);
    assert_null(strchr(out, '\r'));
    assert_null(strchr(out, '\033'));
    assert_non_null(strstr(out, "\ncheckpoint: step 3 saved\n"));
    assert_non_null(strstr(out, "\nstep 3/3 "));
    free(out);
    snprintf(args, sizeof args, "eval checkpoint --checkpoint %s/run --shards %s/data/val/val-00000.tar --limit 32", g_dir,
             g_dir);
    rc = vlt(args, &out);
    if (rc != 0 || !strstr(out, "image->text  R@1")) fail_msg("installed vlt eval checkpoint: exit %d\n%s", rc, out);
    free(out);
    snprintf(args, sizeof args, "embed --checkpoint %s/run --shards %s/data/val/val-00000.tar --limit 32 --out %s/emb.h5",
             g_dir, g_dir, g_dir);
    rc = vlt(args, &out);
    if (rc != 0) fail_msg("installed vlt embed: exit %d\n%s", rc, out);
    free(out);
    struct stat st;
    snprintf(args, sizeof args, "%s/emb.h5", g_dir);
    assert_int_equal(stat(args, &st), 0);
    snprintf(args, sizeof args, "eval retrieval --embeddings %s/emb.h5", g_dir);
    rc = vlt(args, &out);
    if (rc != 0 || !strstr(out, "32 images")) fail_msg("installed vlt eval retrieval: exit %d\n%s", rc, out);
    free(out);
}

static void test_missing_val_refused_before_first_step(void **state) {
    (void)state;
    write_config("noval", "");
    char cmd[600], *out;
    // The same config with a data.val that does not exist.
    snprintf(cmd, sizeof cmd, "sed -i 's|val/val-00000.tar|val/nosuch-00000.tar|' %s/noval.yaml", g_dir);
    assert_int_equal(sh(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd, "train --config %s/noval.yaml", g_dir);
    int rc = vlt(cmd, &out);
    if (rc != 1 || !strstr(out, "data.val") || !strstr(out, "nosuch-00000.tar"))
        fail_msg("a missing data.val: exit %d\n%s", rc, out);
    free(out);
    struct stat st;
    snprintf(cmd, sizeof cmd, "%s/noval/metrics.jsonl", g_dir);
    assert_int_not_equal(stat(cmd, &st), 0);   // no step was run
}

static void test_too_many_workers_names_the_key(void **state) {
    (void)state;
    write_config("workers", "");
    char cmd[600], *out;
    snprintf(cmd, sizeof cmd, "train --config %s/workers.yaml --set data.workers=4", g_dir);
    int rc = vlt(cmd, &out);
    if (rc == 0 || !strstr(out, "data.workers")) fail_msg("2 shards, 4 workers: exit %d\n%s", rc, out);
    free(out);
}

// The loader's per-epoch data line is for -v: without it a run on small data is not drowned in them.
static void test_epoch_line_only_when_verbose(void **state) {
    (void)state;
    char args[600], *quiet, *verbose;
    write_config("epochs", "");
    // 192 samples in batches of 16: step 13 starts the second epoch.
    snprintf(args, sizeof args, "train --config %s/epochs.yaml --set schedule.steps=13 --set checkpoint.every=0", g_dir);
    assert_int_equal(vlt(args, &quiet), 0);
    snprintf(args, sizeof args, "train --config %s/epochs.yaml --set schedule.steps=13 --set checkpoint.every=0 "
                                "--set output.dir=%s/epochs-v -v", g_dir, g_dir);
    assert_int_equal(vlt(args, &verbose), 0);
    assert_non_null(strstr(quiet, "step 13/13"));
    if (strstr(quiet, "vlt loader: epoch")) fail_msg("an epoch line without -v:\n%s", quiet);
    if (!strstr(verbose, "vlt loader: epoch 0: 192 samples in 12 batches")) fail_msg("no epoch line with -v:\n%s", verbose);
    free(quiet);
    free(verbose);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_installed_layout),
        cmocka_unit_test(test_installed_vlt_trains_evaluates_embeds_from_root),
        cmocka_unit_test(test_missing_val_refused_before_first_step),
        cmocka_unit_test(test_too_many_workers_names_the_key),
        cmocka_unit_test(test_epoch_line_only_when_verbose),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
