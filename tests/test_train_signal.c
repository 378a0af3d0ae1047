// Stopping a run with a real signal: `vlt train` (this binary re-run as a child) gets SIGINT
// while training, finishes the step, writes a checkpoint and exits 130 with a message; the run
// resumed from `latest` continues with exactly the losses of an uninterrupted run. Two signals
// end it at once, writing nothing. Under mpirun, SIGUSR1 (train.stop_signal) sent to one rank
// only stops both ranks after the same step, with one checkpoint of it.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cJSON.h>
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

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int count_lines(const char *path) {
    char *text = vlt_read_file(path, NULL);
    if (!text) return 0;
    int n = 0;
    for (char *p = text; *p; p++) n += *p == '\n';
    free(text);
    return n;
}

// The run of these tests: tiny CLIP, batch 16, 400 steps (far more than a test waits for), a
// line in metrics.jsonl every step, no periodic checkpoint.
static void run_config(vlt_run_config *c, const char *name) {
    train_fixture_config(c, name);
    c->batch_size = 16;
    c->steps = 400;
    c->warmup = 2;
    c->log_every = 1;
}

static void write_yaml(const vlt_run_config *c, const char *path) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    vlt_run_config_write(c, f);
    fclose(f);
}

// Starts `argv` (output to `log`) in its own process group; returns its pid.
static pid_t start(char *const argv[], const char *log) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execvp(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

// Waits until `path` has at least n lines (false after limit_s or when the child ended).
static bool wait_lines(pid_t pid, const char *path, int n, double limit_s) {
    double t0 = mono_s();
    while (mono_s() - t0 < limit_s) {
        if (count_lines(path) >= n) return true;
        if (waitpid(pid, NULL, WNOHANG) == pid) return false;
        usleep(20000);
    }
    return false;
}

static int wait_child(pid_t pid, double limit_s) {
    double t0 = mono_s();
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (mono_s() - t0 > limit_s) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(20000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int64_t latest_step(const char *run) {
    char p[600], target[64];
    snprintf(p, sizeof p, "%s/checkpoints/latest", run);
    ssize_t n = readlink(p, target, sizeof target - 1);
    if (n <= 0) return -1;
    target[n] = '\0';
    return strtoll(target + 5, NULL, 10);
}

static void test_sigint_checkpoints_and_resumes_exactly(void **state) {
    (void)state;
    vlt_run_config c;
    run_config(&c, "sig");
    char yaml[400], log[400], metrics[600];
    snprintf(yaml, sizeof yaml, "%s/sig.yaml", g_train_dir);
    snprintf(log, sizeof log, "%s/sig.log", g_train_dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", c.output_dir);
    write_yaml(&c, yaml);
    char *argv[] = {(char *)g_self, "--train", "--config", yaml, NULL};
    pid_t pid = start(argv, log);
    assert_true(wait_lines(pid, metrics, 3, 120));
    kill(pid, SIGINT);
    int rc = wait_child(pid, 120);
    char *out = vlt_read_file(log, NULL);
    if (rc != 130) fail_msg("exit %d:\n%s", rc, out);
    assert_non_null(strstr(out, "stop requested"));
    assert_non_null(strstr(out, "stopped by SIGINT after step "));
    assert_non_null(strstr(out, "continue with --resume latest"));
    free(out);
    int64_t s = latest_step(c.output_dir);
    assert_true(s >= 3 && s < 400);
    assert_int_equal(count_lines(metrics), s);   // every finished step logged, no more
    print_message("SIGINT after %lld steps: checkpoint step %lld, exit 130\n", (long long)s, (long long)s);

    // The uninterrupted run, and the stopped one resumed from `latest`: the same losses.
    vlt_run_config w;
    run_config(&w, "sig-whole");
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *whole, *res;
    if (vlt_trainer_create(&w, &o, &whole) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run_steps(whole, s + 5), VLT_OK);
    int64_t nw, nr;
    const float *lw = vlt_trainer_losses(whole, &nw);
    vlt_trainer_opts r = {.quiet = 1, .resume = "latest"};
    if (vlt_trainer_create(&c, &r, &res) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_step(res), s);
    assert_int_equal(vlt_trainer_run_steps(res, 5), VLT_OK);
    const float *lr = vlt_trainer_losses(res, &nr);
    assert_int_equal(nr, 5);
    for (int i = 0; i < 5; i++)
        if (memcmp(&lr[i], &lw[s + i], sizeof(float)))
            fail_msg("step %lld: resumed loss %.9g, uninterrupted %.9g", (long long)(s + i), lr[i], lw[s + i]);
    vlt_trainer_free(res);
    vlt_trainer_free(whole);
}

// Two signals: the second ends the process at once by that signal; nothing is checkpointed.
static void test_second_signal_stops_at_once(void **state) {
    (void)state;
    vlt_run_config c;
    run_config(&c, "sig2");
    char yaml[400], log[400], metrics[600], ck[600];
    snprintf(yaml, sizeof yaml, "%s/sig2.yaml", g_train_dir);
    snprintf(log, sizeof log, "%s/sig2.log", g_train_dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", c.output_dir);
    snprintf(ck, sizeof ck, "%s/checkpoints", c.output_dir);
    write_yaml(&c, yaml);
    char *argv[] = {(char *)g_self, "--train", "--config", yaml, NULL};
    pid_t pid = start(argv, log);
    assert_true(wait_lines(pid, metrics, 2, 120));
    kill(pid, SIGTERM);   // two different signals are both delivered: the second one ends it
    kill(pid, SIGINT);
    int rc = wait_child(pid, 60);
    assert_true(rc == 128 + SIGINT || rc == 128 + SIGTERM);
    struct stat st;
    assert_int_not_equal(stat(ck, &st), 0);
}

#ifdef VLT_MPI
// mpirun -np 2: rank 1 alone gets SIGUSR1; both ranks stop after the same step.
static void test_mpi_ranks_stop_together(void **state) {
    (void)state;
    vlt_run_config c;
    run_config(&c, "sigmpi");
    c.batch_size = 8;
    c.workers = 1;
    snprintf(c.stop_signal, sizeof c.stop_signal, "USR1");
    char yaml[400], log[400], metrics[600], pidfile[600];
    snprintf(yaml, sizeof yaml, "%s/sigmpi.yaml", g_train_dir);
    snprintf(log, sizeof log, "%s/sigmpi.log", g_train_dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", c.output_dir);
    snprintf(pidfile, sizeof pidfile, "%s/rank1.pid", g_train_dir);
    write_yaml(&c, yaml);
    char *argv[] = {"mpirun", "-np", "2", "--oversubscribe", "--allow-run-as-root", (char *)g_self, "--train",
                    "--pid-file", pidfile, "--config", yaml, NULL};
    pid_t pid = start(argv, log);
    bool up = wait_lines(pid, metrics, 3, 120) && wait_lines(pid, pidfile, 1, 10);
    char *p = vlt_read_file(pidfile, NULL);
    if (!up || !p) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the 2-rank run did not start:\n%s", vlt_read_file(log, NULL));
    }
    kill((pid_t)atoi(p), SIGUSR1);
    free(p);
    int rc = wait_child(pid, 120);
    char *out = vlt_read_file(log, NULL);
    if (rc <= 0 || !strstr(out, "stopped by SIGUSR1 after step ")) fail_msg("exit %d:\n%s", rc, out);
    free(out);
    int64_t s = latest_step(c.output_dir);
    assert_true(s >= 3 && s < 400);
    assert_int_equal(count_lines(metrics), s);
    // the checkpoint holds both ranks' positions, at its step
    char sp[700];
    snprintf(sp, sizeof sp, "%s/checkpoints/step_%08lld/state.json", c.output_dir, (long long)s);
    char *text = vlt_read_file(sp, NULL);
    cJSON *root = cJSON_Parse(text);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "loader_ranks")), 2);
    assert_int_equal(cJSON_GetObjectItem(root, "step")->valuedouble, s);
    cJSON_Delete(root);
    free(text);
    print_message("mpirun -np 2, SIGUSR1 to rank 1 only: both ranks stopped after step %lld, exit %d\n", (long long)s, rc);
}
#endif

int main(int argc, char **argv) {
    // Child mode: `vlt train` with the arguments after --train (and the rank's pid written first).
    if (argc > 1 && !strcmp(argv[1], "--train")) {
        int skip = 2;
        if (argc > 3 && !strcmp(argv[2], "--pid-file")) {
            const char *r = getenv("OMPI_COMM_WORLD_RANK");
            if (r && !strcmp(r, "1")) {
                FILE *f = fopen(argv[3], "w");
                if (f) { fprintf(f, "%d\n", (int)getpid()); fclose(f); }
            }
            skip = 4;
        }
        char *args[16] = {"train"};
        int n = 1;
        for (int i = skip; i < argc && n < 15; i++) args[n++] = argv[i];
        args[n] = NULL;
        return vlt_cmd_train(n, args);
    }
    g_self = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigint_checkpoints_and_resumes_exactly),
        cmocka_unit_test(test_second_signal_stops_at_once),
#ifdef VLT_MPI
        cmocka_unit_test(test_mpi_ranks_stop_together),
#endif
    };
    return cmocka_run_group_tests_name("train_signal", tests, train_fixture_setup, train_fixture_teardown);
}
