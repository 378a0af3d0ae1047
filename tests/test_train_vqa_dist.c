// Data parallel for both VQA heads (issue 16, "mpirun data parallel"), end to end through
// vlt_trainer on synthetic VQA shards (vlt synth --vqa, vlt shards --vqa-questions --vqa-vocab):
//
// - the classifier on CLIP towers (kind clip_vqa): 2 ranks × batch B/2 (one decode thread each)
//   see exactly the global batches of 1 process × batch B (two decode threads), so the losses agree
//   step by step and the weights after the last step agree: the BCE over the soft scores is a mean
//   over the rank's questions, and the average of the ranks' gradients is the global mean;
// - ALBEF VQA (kind albef_vqa) with momentum distillation, its alpha ramped over the first epoch
//   (data.samples_per_epoch): ALBEF's data parallel (issue 15) is "N ranks equal a single-process
//   simulation of the same algorithm"; ALBEF VQA draws nothing and has no queue (model_vqa.py's
//   only cross-rank state is the averaged gradient), so that simulation is one process with the
//   global batch: the answer LM loss Σ weight · loss / questions averaged over ranks with equal
//   question counts is the global one (the answer-repetition weights belong to each question, on
//   whichever rank it lands), the ramp's progress is this rank's batches × this rank's batch over
//   this rank's samples per epoch (the same fraction as one process with twice each), and the
//   momentum copies (EMA of identical weights) agree with the weights.
//
// Tolerances. The two runs differ only in float32 summation order (rows of one batch in another
// order, a mean over 2 ranks of means over B/2 instead of one mean over B). Measured: the losses
// agree bit for bit at every step here; 1e-5 relative (as tests/test_train_dist_e2e.c) leaves
// room for other BLAS blockings. The weights go through AdamW, whose step lr·m/(√v + eps) turns
// a gradient element that is only summation noise into a step of up to lr either way; so each
// tensor's largest difference is measured against the largest distance its values moved since
// step 1 (the first checkpoint), or against lr where they moved less (a tensor whose gradient is
// zero in exact arithmetic, such as an attention key's bias, moves by noise only), and the ratio
// must stay below 1e-3. Measured: 7.9e-5 (classifier), 6.6e-5 (token fusion), 1.5e-5 (ALBEF VQA,
// momentum copies included). A wrong per-rank normalisation shows in the losses already: ALBEF
// VQA's alpha ramped over the global instead of the rank's samples per epoch differs by 1.1e-2
// in the loss and 5e-3 in the weights.
//
// How it runs: `make test` starts this binary without mpirun; it makes the data, trains each
// one-process reference itself, and starts `mpirun -np 2` jobs of itself in worker mode
// (time-limited, tests/mpi_launch.h). Without MPI (make MPI=0) the tests are skipped.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "checkpoints/safetensors.h"
#include "tests/mpi_launch.h"
#include "tests/train_fixture.h"
#include "train/commands.h"
#include "train/trainer.h"

#define STEPS 6

static char g_dir[256];
static const char *g_self;

// 96 images (288 questions) in 8 shards of 36, 32 px, with the answer vocabulary; the tiny ALBEF
// VQA config of tests/train_fixture.h (momentum distillation on).
static int make_data(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vlt-vqa-dist-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char model[320];
    snprintf(model, sizeof model, "%s/tiny-albef-vqa.json", g_dir);
    return train_fixture_vqa_split(g_dir, "train", 96, 7, 0, 36, true) || train_fixture_tiny_albef_vqa(model) ? -1 : 0;
}

static int remove_data(void **state) {
    (void)state;
    return remove_dir(g_dir);
}

// The run of head `head` ("classifier", "tokens": the classifier with token fusion, "albef") with
// `world` ranks: the global batch split over the ranks, as many decode threads in all.
static void config(vlt_run_config *c, const char *dir, const char *head, int world, const char *out) {
    vlt_run_config_default(c);
    bool albef = !strcmp(head, "albef");
    if (albef) snprintf(c->model_name, sizeof c->model_name, "%s/tiny-albef-vqa.json", dir);
    else snprintf(c->model_name, sizeof c->model_name, "tiny-clip");
    snprintf(c->vqa_head, sizeof c->vqa_head, "%s", albef ? "albef" : "classifier");
    if (!strcmp(head, "tokens")) {
        snprintf(c->vqa_fusion, sizeof c->vqa_fusion, "tokens");
        c->vqa_fusion_layers = 1;
    }
    snprintf(c->train_shards, sizeof c->train_shards, "%s/train/{00000..00007}.tar", dir);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/%s", dir, out);
    int global = albef ? 8 : 16;
    c->batch_size = global / world;
    c->workers = 2 / world;
    c->shuffle_buffer = 24;
    c->shuffle_initial = 8;
    c->lr = albef ? 1e-3 : 2e-3;
    c->warmup = 2;
    c->steps = STEPS;
    c->checkpoint_every = 1;   // step 1's weights: the start the moves are measured from
    c->checkpoint_keep = STEPS;
    c->tensorboard = false;
    // ALBEF VQA: alpha ramps over the first epoch (this rank's samples; STEPS steps stay inside it)
    if (albef) c->samples_per_epoch = 80 / world;
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

// One rank of a 2-rank job training head `head` into DIR/r2-<head>; rank 0 writes its losses.
static int worker(const char *head, const char *dir) {
    vlt_dist d;
    if (vlt_dist_init(&d, NULL, NULL) != VLT_OK) { fprintf(stderr, "%s\n", vlt_error_message()); return 1; }
    vlt_run_config c;
    char out[64];
    snprintf(out, sizeof out, "r2-%s", head);
    config(&c, dir, head, d.world, out);
    vlt_trainer_opts o = {.quiet = 1, .dist = &d};
    vlt_trainer *t = NULL;
    vlt_status s = vlt_trainer_create(&c, &o, &t);
    if (s == VLT_OK) s = vlt_trainer_run(t);
    int rc = s == VLT_OK ? 0 : 1;
    if (s != VLT_OK) fprintf(stderr, "rank %d: %s\n", d.rank, vlt_error_message());
    if (s == VLT_OK && d.rank == 0) {
        int64_t n;
        const float *l = vlt_trainer_losses(t, &n);
        char path[400];
        snprintf(path, sizeof path, "%s/r2-%s.losses", dir, head);
        rc = write_losses(path, l, n);
    }
    if (t) vlt_trainer_free(t);
    vlt_dist_finalize(&d);
    return rc;
}

static int job(const char *head) {
    char *argv[] = {"mpirun", "-np", "2", "--oversubscribe", "--allow-run-as-root", (char *)g_self, "--worker",
                    (char *)head, g_dir, NULL};
    double secs = 0;
    int rc = run_child(argv, NULL, NULL, 240, &secs);
    print_message("mpirun -np 2 (%s): exit %d after %.1f s\n", head, rc, secs);
    return rc;
}

// Tensor `name` of a checkpoint's model.safetensors as floats (malloc'd), or NULL.
static float *read_tensor(vlt_safetensors *f, const char *name, int64_t *n) {
    const vlt_st_tensor *t = vlt_safetensors_get(f, name);
    if (!t) return NULL;
    *n = 1;
    for (int d = 0; d < t->ndim; d++) *n *= (int64_t)t->shape[d];
    float *x = malloc(sizeof(float) * (size_t)(*n ? *n : 1));
    if (x && vlt_safetensors_read_f32(f, name, x, *n) != VLT_OK) {
        free(x);
        return NULL;
    }
    return x;
}

// Compares the final weights of the one-process run `one` and the 2-rank run `two`, each tensor
// by its largest difference over the largest move of its values since step 1 (in `one`), or lr.
// Returns the worst ratio; *moved: the tensors that moved at all; *momentum: those with "_m.".
static double compare_weights(const char *one, const char *two, double lr, const char **worst_name, int *moved,
                              int *momentum) {
    char p1[400], p2[400], p0[400];
    snprintf(p1, sizeof p1, "%s/%s/checkpoints/latest/model.safetensors", g_dir, one);
    snprintf(p2, sizeof p2, "%s/%s/checkpoints/latest/model.safetensors", g_dir, two);
    snprintf(p0, sizeof p0, "%s/%s/checkpoints/step_00000001/model.safetensors", g_dir, one);
    vlt_safetensors *a, *b, *z;
    assert_int_equal(vlt_safetensors_open(p1, &a), VLT_OK);
    assert_int_equal(vlt_safetensors_open(p2, &b), VLT_OK);
    assert_int_equal(vlt_safetensors_open(p0, &z), VLT_OK);
    assert_int_equal(vlt_safetensors_count(a), vlt_safetensors_count(b));
    double worst = 0;
    static char wn[256];
    wn[0] = '\0';
    *moved = *momentum = 0;
    for (int i = 0; i < vlt_safetensors_count(a); i++) {
        const vlt_st_tensor *t = vlt_safetensors_at(a, i);
        if (t->dtype != VLT_ST_F32) {
            // integers (a kind's counters): equal
            const vlt_st_tensor *u = vlt_safetensors_get(b, t->name);
            if (!u || u->nbytes != t->nbytes || memcmp(u->data, t->data, t->nbytes)) fail_msg("%s differs", t->name);
            continue;
        }
        int64_t n = 0, nb = 0, n0 = 0;
        float *x = read_tensor(a, t->name, &n), *y = read_tensor(b, t->name, &nb), *x0 = read_tensor(z, t->name, &n0);
        if (!x || !y || !x0 || n != nb || n != n0) fail_msg("%s: missing or of another size in %s", t->name, p2);
        double diff = 0, move = 0;
        for (int64_t j = 0; j < n; j++) {
            diff = fmax(diff, fabs((double)x[j] - y[j]));
            move = fmax(move, fabs((double)x[j] - x0[j]));
        }
        if (move > 0) {
            (*moved)++;
            *momentum += strstr(t->name, "_m.") != NULL;
            if (diff / fmax(move, lr) > worst) {
                worst = diff / fmax(move, lr);
                snprintf(wn, sizeof wn, "%s", t->name);
            }
        } else if (diff > 0) {
            fail_msg("%s: unchanged since step 1 in one process, but the 2-rank run's differs by %g", t->name, diff);
        }
        free(x);
        free(y);
        free(x0);
    }
    vlt_safetensors_close(a);
    vlt_safetensors_close(b);
    vlt_safetensors_close(z);
    *worst_name = wn;
    return worst;
}

static void check_two_ranks_equal_one(const char *head) {
#ifndef VLT_MPI
    skip();
#endif
    vlt_run_config c;
    char one[64], two[64];
    snprintf(one, sizeof one, "r1-%s", head);
    snprintf(two, sizeof two, "r2-%s", head);
    config(&c, g_dir, head, 1, one);
    vlt_trainer_opts o = {.quiet = 1};
    vlt_trainer *t;
    if (vlt_trainer_create(&c, &o, &t) != VLT_OK) fail_msg("%s", vlt_error_message());
    if (vlt_trainer_run(t) != VLT_OK) fail_msg("%s", vlt_error_message());
    int64_t n1;
    const float *l1 = vlt_trainer_losses(t, &n1);
    assert_int_equal(n1, STEPS);
    assert_int_equal(job(head), 0);
    float l2[STEPS];
    char path[400];
    snprintf(path, sizeof path, "%s/r2-%s.losses", g_dir, head);
    assert_int_equal(read_losses(path, l2, STEPS), STEPS);
    double worst = 0;
    for (int i = 0; i < STEPS; i++) worst = fmax(worst, fabs(l2[i] - l1[i]) / fabs(l1[i]));
    const char *wn;
    int moved, momentum;
    double wr = compare_weights(one, two, c.lr, &wn, &moved, &momentum);
    print_message("%s: 2 ranks x %d vs 1 x %d, %d steps: loss %.5f -> %.5f, worst relative loss difference %.1e; "
                  "weights: %d tensors moved (%d momentum copies), worst difference / move %.1e (%s)\n",
                  vlt_trainer_model_title(t), c.batch_size / 2, c.batch_size, STEPS, l1[0], l1[STEPS - 1], worst, moved,
                  momentum, wr, wn);
    vlt_trainer_free(t);
    assert_true(worst < 1e-5);
    assert_true(wr < 1e-3);
    assert_true(moved > 10);
    if (!strcmp(head, "albef")) assert_true(momentum > 10);   // the EMA copies moved, and agree
}

static void test_classifier_two_ranks_equal_one(void **state) {
    (void)state;
    check_two_ranks_equal_one("classifier");
}

static void test_token_fusion_two_ranks_equal_one(void **state) {
    (void)state;
    check_two_ranks_equal_one("tokens");
}

static void test_albef_vqa_two_ranks_equal_one(void **state) {
    (void)state;
    check_two_ranks_equal_one("albef");
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--worker")) return worker(argv[2], argv[3]);
    g_self = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classifier_two_ranks_equal_one),
        cmocka_unit_test(test_token_fusion_two_ranks_equal_one),
        cmocka_unit_test(test_albef_vqa_two_ranks_equal_one),
    };
    return cmocka_run_group_tests_name("train_vqa_dist", tests, make_data, remove_data);
}
