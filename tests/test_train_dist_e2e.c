// Data-parallel training end to end (MPI on the CPU). Two ranks × batch 16 with one decode
// thread each see exactly the global batches that one process × batch 32 with two decode
// threads sees (each rank reads the shards one decode thread would), so their losses must agree
// step by step (CLIP, and CoCa with its caption loss weighted by each rank's token count); and a
// 2-rank run resumed from a checkpoint continues with the uninterrupted run's losses, value for
// value; and with gradient accumulation (2 × 8 × 2 against 1 × 16 × 2).
//
// `make test` runs this binary without mpirun: it makes the data, trains the one-process
// reference itself, and starts `mpirun -np 2` jobs of itself in worker mode (time-limited).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "tests/mpi_launch.h"
#include "train/commands.h"
#include "train/trainer.h"

#define STEPS 12
#define CKPT 6

static char g_dir[256];
static const char *g_self;

static void config(vlt_run_config *c, const char *dir, const char *run, int batch, int workers) {
    multi_rank_run_config(c, dir, run, batch, workers, STEPS, CKPT);
}

static int write_losses(const char *path, const float *l, int64_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    int ok = fwrite(l, sizeof(float), (size_t)n, f) == (size_t)n;
    return (fclose(f) == 0 && ok) ? 0 : 1;
}

static int64_t read_losses(const char *path, float *l, int64_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int64_t n = (int64_t)fread(l, sizeof(float), (size_t)cap, f);
    fclose(f);
    return n;
}

// One rank of a 2-rank job. mode: whole (train to the end), part (stop after step CKPT + 2, as if
// killed after the checkpoint at CKPT), resume (continue `part` from its latest checkpoint),
// coca (a CoCa trained to the end).
static int worker(const char *mode, const char *dir) {
    vlt_dist d;
    if (vlt_dist_init(&d, NULL, NULL) != VLT_OK) { fprintf(stderr, "%s\n", vlt_error_message()); return 1; }
    vlt_run_config c;
    bool accum = !strcmp(mode, "accum");
    config(&c, dir, !strcmp(mode, "coca") ? "r2coca" : accum ? "r2accum" : strcmp(mode, "whole") ? "r2parts" : "r2whole",
           accum ? 8 : 16, 1);
    if (accum) c.accum_steps = 2;
    vlt_trainer_opts o = {.quiet = 1, .dist = &d, .resume = strcmp(mode, "resume") ? NULL : "latest"};
    vlt_trainer *t;
    vlt_status s = vlt_trainer_create(&c, &o, &t);
    if (s == VLT_OK) s = strcmp(mode, "part") ? vlt_trainer_run(t) : vlt_trainer_run_steps(t, CKPT + 2);
    int rc = s == VLT_OK ? 0 : 1;
    if (s != VLT_OK) fprintf(stderr, "rank %d: %s\n", d.rank, vlt_error_message());
    if (s == VLT_OK && d.rank == 0 && strcmp(mode, "part")) {
        int64_t n;
        const float *l = vlt_trainer_losses(t, &n);
        char path[300];
        snprintf(path, sizeof path, "%s/%s.losses", dir, mode);
        rc = write_losses(path, l, n);
    }
    if (t) vlt_trainer_free(t);
    vlt_dist_finalize(&d);
    return rc;
}

static int job(const char *mode) {
    char *argv[] = {"mpirun", "-np", "2", "--oversubscribe", "--allow-run-as-root", (char *)g_self, "--worker",
                    (char *)mode, g_dir, NULL};
    double secs = 0;
    int rc = run_child(argv, NULL, NULL, 240, &secs);
    print_message("mpirun -np 2 (%s): exit %d after %.1f s\n", mode, rc, secs);
    return rc;
}

static int make_data(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-dist-e2e-XXXXXX");
    return make_synth_train_dir(g_dir, 800);
}

static int remove_data(void **state) {
    (void)state;
    return remove_dir(g_dir);
}

// One process × batch 32 (two decode threads) in this process against the 2-rank worker job
// `mode` (which writes its losses to DIR/<mode>.losses): the same losses step by step.
static void check_two_ranks_equal_one(const char *run, const char *mode, const char *what) {
    vlt_run_config c;
    bool accum = !strcmp(mode, "accum");
    config(&c, g_dir, run, accum ? 16 : 32, 2);
    if (accum) c.accum_steps = 2;
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    assert_int_equal(vlt_trainer_run(t), VLT_OK);
    int64_t n1;
    const float *l1 = vlt_trainer_losses(t, &n1);
    assert_int_equal(job(mode), 0);
    float l2[STEPS];
    char path[300];
    snprintf(path, sizeof path, "%s/%s.losses", g_dir, mode);
    assert_int_equal(read_losses(path, l2, STEPS), STEPS);
    double worst = 0;
    for (int i = 0; i < STEPS; i++) worst = fmax(worst, fabs(l2[i] - l1[i]) / fabs(l1[i]));
    print_message("%s, 2 ranks x %d vs 1 x %d, %d steps: loss %.5f -> %.5f, worst relative difference %.1e\n", what,
                  accum ? 8 : 16, accum ? 16 : 32, STEPS, l1[0], l1[STEPS - 1], worst);
    assert_true(worst < 1e-5);
    vlt_trainer_free(t);
}

static void test_two_ranks_equal_one_process(void **state) {
    (void)state;
#ifndef VLT_MPI
    skip();
#endif
    check_two_ranks_equal_one("r1", "whole", "CLIP");
}

static void test_two_ranks_equal_one_process_coca(void **state) {
    (void)state;
#ifndef VLT_MPI
    skip();
#endif
    check_two_ranks_equal_one("r1coca", "coca", "CoCa");
}

// Gradient accumulation (2 micro-batches a step): the overlapped all-reduce reports only the last
// micro-batch's gradients, and 2 ranks × 8 × 2 still equal 1 process × 16 × 2.
static void test_two_ranks_equal_one_process_accum(void **state) {
    (void)state;
#ifndef VLT_MPI
    skip();
#endif
    check_two_ranks_equal_one("r1accum", "accum", "CLIP, accum 2");
}

static void test_two_rank_resume_is_exact(void **state) {
    (void)state;
#ifndef VLT_MPI
    skip();
#endif
    assert_int_equal(job("part"), 0);
    assert_int_equal(job("resume"), 0);
    float whole[STEPS], resumed[STEPS];
    char path[300];
    snprintf(path, sizeof path, "%s/whole.losses", g_dir);
    assert_int_equal(read_losses(path, whole, STEPS), STEPS);
    snprintf(path, sizeof path, "%s/resume.losses", g_dir);
    assert_int_equal(read_losses(path, resumed, STEPS), STEPS - CKPT);
    for (int i = 0; i < STEPS - CKPT; i++)
        if (memcmp(&resumed[i], &whole[CKPT + i], sizeof(float)))
            fail_msg("step %d: resumed %.9g, uninterrupted %.9g", CKPT + i, resumed[i], whole[CKPT + i]);
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--worker")) return worker(argv[2], argv[3]);
    g_self = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_ranks_equal_one_process),
        cmocka_unit_test(test_two_rank_resume_is_exact),
        cmocka_unit_test(test_two_ranks_equal_one_process_coca),
        cmocka_unit_test(test_two_ranks_equal_one_process_accum),
    };
    return cmocka_run_group_tests_name("train_dist_e2e", tests, make_data, remove_data);
}
