// mpi_launch.h — for tests that run themselves under mpirun: start a child with a time limit
// (so a hung job can never hang `make test`), and keep Open MPI's own allocations out of
// LeakSanitizer's report. Header-only; include it in one test file per binary.
#ifndef VLT_TEST_MPI_LAUNCH_H
#define VLT_TEST_MPI_LAUNCH_H

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "autograd/tape.h"
#include "train/dist.h"
#include "train/run_config.h"
#include "train/trainer.h"

#if defined(VLT_MPI) && defined(__SANITIZE_ADDRESS__)
// Under ASan: Open MPI keeps allocations made in MPI_Init/MPI_Finalize until exit, some inside
// components it has dlclose'd (no module name left). Suppress leaks whose stack passes through
// Open MPI; unwinding fully (not by frame pointers, which Open MPI lacks) reaches those frames.
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);
const char *__lsan_default_options(void);
const char *__lsan_default_suppressions(void) {
    return "leak:libmpi.so\nleak:libopen-pal.so\nleak:libopen-rte.so\nleak:libevent\nleak:mca_\n";
}
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }
const char *__lsan_default_options(void) { return "print_suppressions=0"; }
#endif

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Runs argv with extra KEY=VALUE settings, stdin from /dev/null, output appended to `log` (NULL:
// inherited). Returns the exit status (128 + signal for a signal), or -1 after `limit_s` (the
// child's process group is then killed). *secs: how long it ran.
static inline int run_child(char *const argv[], const char *const *env, const char *log, double limit_s, double *secs) {
    fflush(stdout);
    fflush(stderr);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) return -2;
    if (pid == 0) {
        setpgid(0, 0);
        for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0) dup2(in, 0);
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        }
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s\n", argv[0]);
        _exit(127);
    }
    setpgid(pid, pid);
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        if (now_s() - t0 > limit_s) {
            kill(-pid, SIGTERM);
            usleep(2000000);
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            *secs = now_s() - t0;
            return -1;
        }
        usleep(50000);
    }
    *secs = now_s() - t0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Runs group() on this rank. Ranks other than 0 write into a temporary file (cmocka prints
// its summary lines on stderr too); on a failure the file is replayed on stderr with a
// "[rank N]" prefix, which the test runner's "[  PASSED  ]"/"[  FAILED  ]" counting does not
// match. Returns group()'s result.
static inline int run_rank_quietly(int (*group)(void), int rank) {
    int saved_err = -1;
    FILE *quiet = NULL;
    if (rank != 0 && (quiet = tmpfile())) {
        fflush(stdout);
        fflush(stderr);
        saved_err = dup(2);
        dup2(fileno(quiet), 1);
        dup2(fileno(quiet), 2);
    }
    int failed = group();
    if (quiet) {
        fflush(stdout);
        fflush(stderr);
        dup2(saved_err, 2);
        close(saved_err);
        if (failed) {
            char line[1024];
            rewind(quiet);
            while (fgets(line, sizeof line, quiet)) fprintf(stderr, "[rank %d] %s", rank, line);
        }
        fclose(quiet);
    }
    return failed;
}

// A temp directory (dir: a mkdtemp pattern, rewritten) holding `samples` synthetic 32-px
// image-caption pairs in 8 shards under dir/train, for the multi-rank training tests.
int vlt_cmd_synth(int argc, char **argv);
static inline int make_synth_train_dir(char *dir, int samples) {
    if (!mkdtemp(dir)) return -1;
    char train[300], n[16], per[16];
    snprintf(train, sizeof train, "%s/train", dir);
    snprintf(n, sizeof n, "%d", samples);
    snprintf(per, sizeof per, "%d", samples / 8);
    char *a[] = {"synth", "--out", train, "--samples", n, "--shard-size", per, "--image-size", "32", "--seed", "4", NULL};
    return vlt_cmd_synth(11, a) == 0 ? 0 : -1;
}

// The run config the multi-rank training tests share: the tiny model ("coca" in `run` picks
// tiny-coca), the shards of make_synth_train_dir, output in dir/run, `steps` steps with a
// checkpoint every `ckpt`.
static inline void multi_rank_run_config(vlt_run_config *c, const char *dir, const char *run, int batch, int workers,
                                         int steps, int ckpt) {
    vlt_run_config_default(c);
    snprintf(c->model_name, sizeof c->model_name, strstr(run, "coca") ? "tiny-coca" : "tiny-clip");
    snprintf(c->train_shards, sizeof c->train_shards, "%s/train/{00000..00007}.tar", dir);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/%s", dir, run);
    c->batch_size = batch;
    c->workers = workers;
    c->shuffle_buffer = 64;
    c->shuffle_initial = 16;
    c->lr = 2e-3;
    c->steps = steps;
    c->warmup = 2;
    c->checkpoint_every = ckpt;
    c->tensorboard = false;
}

// Every rank's local failure count, summed: the same verdict on every rank, so no rank fails an
// assertion (and leaves the collectives) while the others go on.
static inline int all_ranks_fail(const vlt_dist *d, int local) {
    double x = local;
    vlt_dist_sum(d, &x, 1);
    return (int)x;
}

static inline int remove_dir(const char *dir) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

// ---- the two-rank training tests' job (a binary that runs itself under mpirun) ----

// The 2-rank runs need MPI (and VLT_DIST not off, which the ranks would inherit): a cmocka case
// is skipped otherwise. (A macro: cmocka's skip() is the including file's.)
#ifdef VLT_MPI
#define SKIP_WITHOUT_MPI()                                  \
    do {                                                    \
        const char *mode_ = getenv("VLT_DIST");             \
        if (mode_ && !strcmp(mode_, "off")) skip();         \
    } while (0)
#else
#define SKIP_WITHOUT_MPI() skip()
#endif

// `self --worker dir` on 2 ranks under mpirun, within limit_s; its exit status as run_child's.
static inline int run_worker_job(const char *self, const char *dir, double limit_s, double *secs) {
    char *argv[] = {"mpirun", "-np", "2", "--oversubscribe", "--allow-run-as-root", (char *)self, "--worker", (char *)dir,
                    NULL};
    return run_child(argv, NULL, NULL, limit_s, secs);
}

// A worker's main: the ranks' dist set up, worker(dir) run, everything shut down. Its result.
static inline int run_worker_main(vlt_dist *d, int (*worker)(const char *dir), const char *dir) {
    if (vlt_dist_init(d, NULL, NULL) != VLT_OK) {
        fprintf(stderr, "%s\n", vlt_error_message());
        return 1;
    }
    int rc = worker(dir);
    vlt_tape_shutdown();
    vlt_dist_finalize(d);
    return rc;
}

// A run's losses in DIR/<name>.losses (raw f32), written by rank 0 for the checks: 0 or 1.
static inline int mpi_write_losses(const char *dir, const char *name, const float *l, int64_t n) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s.losses", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    int ok = fwrite(l, sizeof(float), (size_t)n, f) == (size_t)n;
    return (fclose(f) == 0 && ok) ? 0 : 1;
}

// Up to cap losses of DIR/<name>.losses into l: how many, or -1 without the file.
static inline int64_t mpi_read_losses(const char *dir, const char *name, float *l, int64_t cap) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s.losses", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int64_t n = (int64_t)fread(l, sizeof(float), (size_t)cap, f);
    fclose(f);
    return n;
}

// One training run of c on this rank (inside a worker): `steps` steps (0: to the end), resumed
// from `resume` (NULL: a new run); rank 0 writes the losses to DIR/<out>.losses (out NULL: not
// written). 0, or 1 after printing the error with the rank and `run`.
static inline int mpi_train_run(vlt_dist *d, const vlt_run_config *c, const char *dir, const char *run,
                                const char *resume, int64_t steps, const char *out) {
    vlt_trainer_opts o = {.quiet = 1, .dist = d, .resume = resume};
    vlt_trainer *t = NULL;
    vlt_status s = vlt_trainer_create(c, &o, &t);
    if (s == VLT_OK) s = steps ? vlt_trainer_run_steps(t, steps) : vlt_trainer_run(t);
    int rc = s == VLT_OK ? 0 : 1;
    if (s != VLT_OK) fprintf(stderr, "rank %d: %s: %s\n", d->rank, run, vlt_error_message());
    if (s == VLT_OK && d->rank == 0 && out) {
        int64_t n;
        const float *l = vlt_trainer_losses(t, &n);
        rc = mpi_write_losses(dir, out, l, n);
    }
    vlt_trainer_free(t);
    return rc;
}

// The worst relative difference of n losses from ref[from ...].
static inline double worst_rel(const float *a, const float *ref, int n, int from) {
    double w = 0;
    for (int i = 0; i < n; i++) w = fmax(w, fabs(a[i] - ref[from + i]) / fabs(ref[from + i]));
    return w;
}

// The main of a test that runs itself under mpirun. Not under mpirun: e2e_group() (the
// end-to-end cases, which start their own 2-rank jobs), then, with MPI and VLT_DIST unset, this
// binary on 2 ranks (`name` in the message if that fails). Under mpirun (or without MPI):
// rank_group() on every rank; ranks other than 0 keep quiet unless they fail (their output is
// then replayed with a "[rank N]" prefix). 0 when everything passed.
static inline int mpi_test_main(int argc, char **argv, const char *name, vlt_dist *d, int (*e2e_group)(void),
                                int (*rank_group)(void)) {
    int failed = 0;
    if (!getenv("OMPI_COMM_WORLD_SIZE")) {
        failed = e2e_group();
#ifdef VLT_MPI
        if (!getenv("VLT_DIST")) {
            char *a[] = {"mpirun", "-np", "2", "--oversubscribe", "--allow-run-as-root", argv[0], NULL};
            double secs;
            int rc = run_child(a, NULL, NULL, 120, &secs);
            if (rc != 0) fprintf(stderr, "%s: mpirun -np 2 exited with %d after %.1f s\n", name, rc, secs);
            return failed || rc != 0;
        }
#else
        (void)name;
#endif
    }
    if (vlt_dist_init(d, &argc, &argv) != VLT_OK) {
        fprintf(stderr, "dist init: %s\n", vlt_error_message());
        return 1;
    }
    alarm(100);
    int unit_failed = run_rank_quietly(rank_group, d->rank);
    vlt_tape_shutdown();
    vlt_dist_finalize(d);
    return failed || unit_failed;
}

#endif
