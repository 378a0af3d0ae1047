// The run directory: one trainer at a time (flock on RUN/.lock; a second is refused naming the
// holder; a lock left by a killed process is taken over with a note), and a new run over an old
// one is refused unless --overwrite, which starts clean.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "data/files.h"
#include "train/commands.h"
#include "train/trainer.h"
#include "tests/mpi_launch.h"   // LeakSanitizer: Open MPI's own allocations (the children run vlt train)
#include "tests/train_fixture.h"

static const char *g_self;

static bool exists(const char *dir, const char *name) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return lstat(p, &st) == 0;
}

static void small_run(vlt_run_config *c, const char *name) {
    train_fixture_config(c, name);
    c->batch_size = 16;
    c->steps = 4;
    c->warmup = 1;
    c->log_every = 1;
    c->checkpoint_every = 2;
}

static void test_second_trainer_refused(void **state) {
    (void)state;
    vlt_run_config c;
    small_run(&c, "lock");
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *a, *b = NULL;
    if (vlt_trainer_create(&c, &o, &a) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run_steps(a, 2), VLT_OK);
    char want[64];
    snprintf(want, sizeof want, "(pid and host: %d ", (int)getpid());
    // a new run, and a resume, while `a` holds the directory
    assert_int_equal(vlt_trainer_create(&c, &o, &b), VLT_ERR_STATE);
    assert_non_null(strstr(vlt_error_message(), "is in use by another vlt train"));
    assert_non_null(strstr(vlt_error_message(), want));
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    assert_int_equal(vlt_trainer_create(&c, &r, &b), VLT_ERR_STATE);
    assert_non_null(strstr(vlt_error_message(), "is in use by another vlt train"));
    assert_int_equal(vlt_trainer_run(a), VLT_OK);
    vlt_trainer_free(a);
    // released: the resume of a finished run is refused for that reason only
    assert_int_not_equal(vlt_trainer_create(&c, &r, &b), VLT_OK);
    assert_non_null(strstr(vlt_error_message(), "nothing to train"));
    char p[700];
    snprintf(p, sizeof p, "%s/.lock", c.output_dir);
    char *lock = vlt_read_file(p, NULL);
    assert_string_equal(lock, "");   // emptied on a clean release
    free(lock);
}

static void test_new_run_over_old_refused_unless_overwrite(void **state) {
    (void)state;
    vlt_run_config c;
    small_run(&c, "over");
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    vlt_trainer_free(t);
    char mp[700];
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", c.output_dir);
    char *before = vlt_read_file(mp, NULL);
    assert_non_null(before);
    assert_int_equal(vlt_trainer_create(&c, &o, &t), VLT_ERR_STATE);
    assert_non_null(strstr(vlt_error_message(), "already holds a run (checkpoints, metrics.jsonl, config.yaml)"));
    assert_non_null(strstr(vlt_error_message(), "--overwrite"));
    char *after = vlt_read_file(mp, NULL);
    assert_string_equal(after, before);   // untouched
    free(after);
    assert_true(exists(c.output_dir, "checkpoints/step_00000004"));
    // a file of the user's own is no run: it does not block a new run and is left alone
    vlt_run_config u;
    small_run(&u, "user");
    assert_int_equal(mkdir(u.output_dir, 0777), 0);
    char note[700];
    snprintf(note, sizeof note, "%s/notes.txt", u.output_dir);
    FILE *f = fopen(note, "w");
    fputs("mine\n", f);
    fclose(f);
    if (vlt_trainer_create(&u, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_trainer_free(t);
    assert_true(exists(u.output_dir, "notes.txt"));
    // --overwrite: the old run's entries go, the new run starts clean
    vlt_trainer_opts ow = {.quiet = 1, .overwrite = true};
    c.steps = 3;
    c.checkpoint_every = 0;
    if (vlt_trainer_create(&c, &ow, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_false(exists(c.output_dir, "checkpoints"));
    assert_false(exists(c.output_dir, "metrics.jsonl.old"));
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    vlt_trainer_free(t);
    after = vlt_read_file(mp, NULL);
    int lines = 0;
    for (char *q = after; *q; q++) lines += *q == '\n';
    assert_int_equal(lines, 3);
    free(after);
    free(before);
    assert_false(exists(c.output_dir, "checkpoints/step_00000004"));
    assert_true(exists(c.output_dir, "checkpoints/step_00000003"));
    vlt_trainer_opts both = {.quiet = 1, .overwrite = true, .resume = "latest"};
    assert_int_equal(vlt_trainer_create(&c, &both, &t), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "--resume and --overwrite"));
}

// `vlt train` killed with SIGKILL while training leaves its lock behind; the next run takes it
// over, saying whose it was.
static void test_stale_lock_of_killed_run(void **state) {
    (void)state;
    vlt_run_config c;
    small_run(&c, "stale");
    c.steps = 400;
    c.checkpoint_every = 0;
    char yaml[400], log[400], metrics[700];
    snprintf(yaml, sizeof yaml, "%s/stale.yaml", g_train_dir);
    snprintf(log, sizeof log, "%s/stale.log", g_train_dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", c.output_dir);
    FILE *f = fopen(yaml, "w");
    vlt_run_config_write(&c, f);
    fclose(f);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execl(g_self, g_self, "--train", "--config", yaml, (char *)NULL);
        _exit(127);
    }
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool started = false;
    for (;;) {
        struct stat st;
        if (stat(metrics, &st) == 0 && st.st_size > 0) { started = true; break; }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 120 || waitpid(pid, NULL, WNOHANG) == pid) break;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (!started) fail_msg("the child run did not start:\n%s", vlt_read_file(log, NULL));
    char out[8192] = "";
    FILE *mem = fmemopen(out, sizeof out - 1, "w");
    vlt_trainer_opts o = {.log = mem, .overwrite = true};
    c.steps = 1;
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    vlt_trainer_free(t);
    fclose(mem);
    char want[64];
    snprintf(want, sizeof want, "stale lock of pid %d on ", (int)pid);
    if (!strstr(out, want)) fail_msg("no '%s' in:\n%s", want, out);
}

// Runs `vlt train ARGS` in a child (this binary re-run: MPI starts once per process); its exit
// status, output into `log`.
static int run_train(const char *log, const char *a, const char *b, const char *c, const char *d) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execl(g_self, g_self, "--train", a, b, c, d, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// The command line: a second `vlt train` on a finished run exits 1 with the message;
// --overwrite starts over; --overwrite with --resume is refused.
static void test_cli_refuses_and_overwrites(void **state) {
    (void)state;
    vlt_run_config c;
    small_run(&c, "cli");
    c.steps = 2;
    c.val_shards[0] = '\0';
    char yaml[400], log[400];
    snprintf(yaml, sizeof yaml, "%s/cli.yaml", g_train_dir);
    snprintf(log, sizeof log, "%s/cli.log", g_train_dir);
    FILE *f = fopen(yaml, "w");
    vlt_run_config_write(&c, f);
    fclose(f);
    assert_int_equal(run_train(log, "--config", yaml, NULL, NULL), 0);
    assert_int_equal(run_train(log, "--config", yaml, NULL, NULL), 1);
    char *out = vlt_read_file(log, NULL);
    assert_non_null(strstr(out, "already holds a run"));
    free(out);
    assert_int_equal(run_train(log, "--config", yaml, "--overwrite", NULL), 0);
    assert_int_equal(run_train(log, "--config", yaml, "--overwrite", "--resume=latest"), 1);
    out = vlt_read_file(log, NULL);
    assert_non_null(strstr(out, "--resume and --overwrite exclude each other"));
    free(out);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--train")) {
        argv[1] = "train";
        return vlt_cmd_train(argc - 1, argv + 1);
    }
    g_self = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_trainer_refused),
        cmocka_unit_test(test_new_run_over_old_refused_unless_overwrite),
        cmocka_unit_test(test_stale_lock_of_killed_run),
        cmocka_unit_test(test_cli_refuses_and_overwrites),
    };
    return cmocka_run_group_tests_name("train_rundir", tests, train_fixture_setup, train_fixture_teardown);
}
