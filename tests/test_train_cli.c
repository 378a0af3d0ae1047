// test_train_cli.c — the `vlt` program as a user meets it, run as a child process (the binary of
// this build, $VLT_BUILD/vlt): every command and subcommand answers --help with exit 0 and a
// usage text; an unknown subcommand or extra argument exits 2 with a message naming it; a
// misspelt model name lists the closest names; `vlt model list` lists the configs with their
// parameter counts; the walk covers every command `vlt --help` lists.
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static char g_vlt[512];

// Runs `vlt ARGS` (a shell word list) from the working directory `cwd` (NULL: here); returns the
// exit status and the combined stdout + stderr in out (malloc'd).
static int run_in(const char *cwd, const char *args, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s%s%s %s 2>&1", cwd ? "cd " : "", cwd ? cwd : "", cwd ? " && " : "", g_vlt);
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s 2>&1", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int run(const char *args, char **out) { return run_in(NULL, args, out); }

static int setup(void **state) {
    (void)state;
    const char *b = getenv("VLT_BUILD");
    char rel[300];
    snprintf(rel, sizeof rel, "%s/vlt", b && *b ? b : "build");
    // An absolute path, so that the runs from other directories find the same binary.
    if (!realpath(rel, g_vlt)) {
        fprintf(stderr, "test_train_cli: no vlt binary at %s (make builds it before the tests)\n", rel);
        return -1;
    }
    return 0;
}

// Every command and subcommand. A command added to `vlt --help` without being added here fails
// test_walk_covers_every_command.
static const char *const WALK[] = {
    "train", "embed", "eval", "eval captions", "eval retrieval", "eval vqa", "eval checkpoint", "eval zeroshot",
    "eval clipscore", "synth", "shards", "model", "model list", "model info", "model init", "model load", "bench",
    "bench clip-step", "tokenize", "report", "explain", "caption", "vqa", "version", NULL};

static void test_every_help_exits_0(void **state) {
    (void)state;
    char *out;
    assert_int_equal(run("--help", &out), 0);
    assert_non_null(strstr(out, "usage: vlt"));
    assert_non_null(strstr(out, "VLT_HOME"));   // the data folder is documented
    free(out);
    for (int i = 0; WALK[i]; i++) {
        char args[128];
        snprintf(args, sizeof args, "%s --help", WALK[i]);
        int rc = run(args, &out);
        if (rc != 0 || (strcmp(WALK[i], "version") && !strstr(out, "usage")))
            fail_msg("vlt %s: exit %d, output:\n%s", args, rc, out);
        free(out);
    }
}

static void test_unknown_subcommand_and_extra_argument_exit_2_naming_it(void **state) {
    (void)state;
    static const char *const cases[] = {
        "nosuch",                                   // unknown command
        "eval nosuch", "model nosuch", "bench nosuch",   // unknown subcommands
        "version --garbage",
        "eval captions --garbage", "eval retrieval --garbage", "eval vqa --garbage",
        "eval checkpoint --checkpoint x --shards y garbage", "eval zeroshot --checkpoint x --shards y garbage",
        "embed --checkpoint x --shards y --out z garbage",
        "train --config x.yaml garbage",
        "synth --out /tmp/x --samples 1 garbage", "shards --out /tmp/x --tsv x.tsv garbage",
        "model info --model tiny-clip garbage", "model init --model tiny-clip --out x garbage",
        "model load --model tiny-clip --weights x garbage", "model list garbage",
        "bench clip-step --garbage", "tokenize --garbage", "report /tmp/x garbage", "explain --garbage",
        "eval clipscore --checkpoint x --shards y --results z garbage",
        "caption --checkpoint x --shards y --out z garbage", "vqa --checkpoint x --shards y --out z garbage", NULL};
    for (int i = 0; cases[i]; i++) {
        char *out;
        int rc = run(cases[i], &out);
        const char *word = strrchr(cases[i], ' ') ? strrchr(cases[i], ' ') + 1 : cases[i];
        if (rc != 2 || !strstr(out, word)) fail_msg("vlt %s: exit %d (want 2 naming '%s'), output:\n%s", cases[i], rc, word, out);
        free(out);
    }
}

// The shell expands an unquoted brace spec into several words: the message says so.
static void test_expanded_brace_spec_is_named(void **state) {
    (void)state;
    char *out;
    // What bash makes of --shards data/s-{00000..00001}.tar (popen's sh does not expand braces).
    int rc = run("embed --checkpoint run --shards data/s-00000.tar data/s-00001.tar --out e.h5", &out);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "unexpected argument 'data/s-00001.tar'"));
    assert_non_null(strstr(out, "quoted"));
    free(out);
}

static void test_walk_covers_every_command(void **state) {
    (void)state;
    char *out;
    assert_int_equal(run("--help", &out), 0);
    char *line = strstr(out, "commands:\n");
    assert_non_null(line);
    int listed = 0;
    for (line = strchr(line, '\n') + 1; line[0] == ' ' && line[1] == ' ' && line[2] != ' '; line = strchr(line, '\n') + 1) {
        char name[32];
        assert_int_equal(sscanf(line, " %31s", name), 1);
        bool found = false;
        for (int i = 0; WALK[i] && !found; i++) found = !strcmp(WALK[i], name);
        if (!found) fail_msg("vlt --help lists '%s', which this test does not walk", name);
        listed++;
    }
    assert_true(listed >= 7);
    free(out);
    // Every subcommand `vlt eval --help` lists is walked too.
    assert_int_equal(run("eval --help", &out), 0);
    const char *subs[] = {"captions", "retrieval", "vqa", "checkpoint", "zeroshot", "clipscore"};
    for (int i = 0; i < 6; i++) assert_non_null(strstr(out, subs[i]));
    free(out);
}

static void test_misspelt_model_name_lists_closest(void **state) {
    (void)state;
    char *out;
    int rc = run("model info --model ViT-B-23", &out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "unknown model name 'ViT-B-23'"));
    const char *near = strstr(out, "closest names: ");
    assert_non_null(near);
    assert_non_null(strstr(near, "ViT-B-32"));   // two edits away, as ViT-B-16
    assert_non_null(strstr(out, "vlt model list"));
    free(out);
}

// Over a VLT_HOME holding small configs of four kinds (building ViT-B sized models takes seconds
// each): every row has the kind and parameter count `vlt model info` gives, and the columns line
// up whatever the titles' lengths ("CLIP", "ALBEF VQA"): every row as long as the header, the
// counts right-aligned under "parameters".
static void test_model_list_prints_every_config_with_parameters(void **state) {
    (void)state;
    char home[] = "/tmp/vlt-cli-home-XXXXXX", cmd[900], args[700], *out, *info;
    assert_non_null(mkdtemp(home));
    snprintf(cmd, sizeof cmd, "mkdir -p %s/configs/model %s/assets && cp configs/model/tiny-clip.json "
                              "configs/model/tiny-coca.json configs/model/tiny-albef.json "
                              "configs/model/demo-albef-vqa.json %s/configs/model/ && "
                              "cp assets/bert_demo_vqa_vocab.txt %s/assets/", home, home, home, home);
    assert_int_equal(system(cmd), 0);
    setenv("VLT_HOME", home, 1);
    assert_int_equal(run_in("/", "model list", &out), 0);   // from another directory
    assert_non_null(strstr(out, home));
    const char *header = strstr(out, "\n  name ");
    assert_non_null(header);
    header++;
    size_t width = strcspn(header, "\n");
    assert_true(header[width - 1] == 's' && !strncmp(header + width - strlen("parameters"), "parameters", 10));
    const char *names[] = {"tiny-clip", "tiny-coca", "tiny-albef", "demo-albef-vqa"};
    const char *titles[] = {"CLIP", "CoCa", "ALBEF", "ALBEF VQA"};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "model info --model %s", names[i]);
        assert_int_equal(run(args, &info), 0);
        char want[64];
        snprintf(want, sizeof want, "%s: %s, ", names[i], titles[i]);
        if (!strstr(info, want)) fail_msg("vlt model info says:\n%s", info);
        const char *p = strstr(info, " tensors, ");
        assert_non_null(p);
        long long n_info = atoll(p + strlen(" tensors, ")), n_list = -1;
        char pat[64];
        snprintf(pat, sizeof pat, "\n  %s ", names[i]);
        const char *row = strstr(out, pat);
        if (!row) fail_msg("vlt model list lacks %s:\n%s", names[i], out);
        row++;
        size_t len = strcspn(row, "\n");
        if (len != width) fail_msg("vlt model list: the row of %s is not as wide as the header:\n%s", names[i], out);
        // the title between the name column and the count, then the count ending the row
        const char *kind = row + strlen(pat) - 1;
        while (*kind == ' ') kind++;
        assert_true(!strncmp(kind, titles[i], strlen(titles[i])) && kind[strlen(titles[i])] == ' ');
        assert_int_equal(kind - row, strstr(header, "kind") - header);   // under "kind"
        n_list = atoll(kind + strlen(titles[i]));
        assert_true(n_info > 250000);
        assert_int_equal(n_list, n_info);
        free(info);
    }
    unsetenv("VLT_HOME");
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", home);
    assert_int_equal(system(cmd), 0);
}

// --print-config (and so config.yaml) writes the shortest number that reads back to the same
// double, and what it prints reads back to the same config.
static void test_print_config_shortest_round_trip(void **state) {
    (void)state;
    char *out, *again;
    assert_int_equal(run("train --config configs/run/demo-clip.yaml --print-config --set optim.beta1=0.9 "
                         "--set optim.eps=1e-30 --set optim.lr=0.1 --set optim.weight_decay=0.30000000000000004",
                         &out), 0);
    assert_non_null(strstr(out, "  beta1: 0.9\n"));
    assert_non_null(strstr(out, "  eps: 1.0e-30\n"));
    assert_non_null(strstr(out, "  lr: 0.1\n"));
    assert_non_null(strstr(out, "  weight_decay: 0.30000000000000004\n"));   // 0.1 + 0.2 needs all 17 digits
    assert_null(strstr(out, "0000000000000001"));
    char path[] = "/tmp/vlt-cli-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(out, f);
    fclose(f);
    char args[256];
    snprintf(args, sizeof args, "train --config %s --print-config", path);
    assert_int_equal(run(args, &again), 0);
    assert_string_equal(again, out);
    unlink(path);
    free(out);
    free(again);
}

// The library folders expose functions only: none of them includes the program's headers (the
// commands, their parsing and printing live in train/ with main.c).
static void test_library_folders_do_not_include_train(void **state) {
    (void)state;
    FILE *p = popen("grep -rl --include='*.c' --include='*.h' --include='*.cu' '#include \"train/' "
                    "autograd layers data eval checkpoints", "r");
    assert_non_null(p);
    char found[4096];
    size_t n = fread(found, 1, sizeof found - 1, p);
    found[n] = 0;
    pclose(p);
    if (n) fail_msg("library files that include train/ headers:\n%s", found);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_help_exits_0),
        cmocka_unit_test(test_unknown_subcommand_and_extra_argument_exit_2_naming_it),
        cmocka_unit_test(test_expanded_brace_spec_is_named),
        cmocka_unit_test(test_walk_covers_every_command),
        cmocka_unit_test(test_misspelt_model_name_lists_closest),
        cmocka_unit_test(test_model_list_prints_every_config_with_parameters),
        cmocka_unit_test(test_print_config_shortest_round_trip),
        cmocka_unit_test(test_library_folders_do_not_include_train),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
