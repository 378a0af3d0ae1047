// test_eval_retrieval.c — retrieval recall@k and ranks against a brute-force reference (with
// deliberate ties and several captions per image), blocked vs unblocked, a hand-checked case,
// and zero-shot classification on a constructed case.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autograd/rng.h"
#include "eval/retrieval.h"
#include "eval/zeroshot.h"

// Hand-checked: img0 = (1,0), img1 = (0,1); captions c0 = (1,0) and c1 = (0,1) of img0, c2 = (1,0) of img1.
//  i2t img0: its best caption scores 1 (c0); c2 also scores 1 -> tie counts against -> rank 2.
//  i2t img1: c2 scores 0; c0 (0) and c1 (1) are >= 0 -> rank 3.
//  t2i c0: img0 1 > img1 0 -> 1; c1: img1 1 >= img0 0 -> 2; c2: img0 1 >= img1 0 -> 2.
static void test_hand_case(void **state) {
    (void)state;
    const float img[] = {1, 0, 0, 1}, txt[] = {1, 0, 0, 1, 1, 0};
    const int32_t owner[] = {0, 0, 1};
    int64_t ir[2], tr[3];
    vlt_eval_retrieval_result r;
    assert_int_equal(vlt_eval_retrieval(img, 2, txt, 3, 2, owner, 0, &r, ir, tr), VLT_OK);
    assert_int_equal(ir[0], 2);
    assert_int_equal(ir[1], 3);
    assert_int_equal(tr[0], 1);
    assert_int_equal(tr[1], 2);
    assert_int_equal(tr[2], 2);
    assert_true(r.i2t.recall[0] == 0.0 && r.i2t.recall[1] == 1.0);
    assert_true(r.i2t.mean_rank == 2.5);
    assert_true(r.i2t.median_rank == 2.0);  // 0-based {1, 2}: median 1.5, floor 1, + 1
    assert_true(fabs(r.t2i.recall[0] - 1.0 / 3) < 1e-15);
    assert_true(fabs(r.t2i.mean_rank - 5.0 / 3) < 1e-15);
    assert_true(r.t2i.median_rank == 2.0);
}

// Brute force in double: scores of small multiples of 1/2 in dim 6 are exact in float too, and
// take few distinct values, so ties are everywhere.
static void brute_force(const float *img, int ni, const float *txt, int nt, int d, const int32_t *owner, int64_t *ir,
                        int64_t *tr) {
    for (int i = 0; i < ni; i++) {
        double best = -1e300;
        for (int c = 0; c < nt; c++) {
            if (owner[c] != i) continue;
            double s = 0;
            for (int k = 0; k < d; k++) s += (double)img[i * d + k] * txt[c * d + k];
            if (s > best) best = s;
        }
        int64_t rank = 1;
        for (int c = 0; c < nt; c++) {
            if (owner[c] == i) continue;
            double s = 0;
            for (int k = 0; k < d; k++) s += (double)img[i * d + k] * txt[c * d + k];
            rank += s >= best;
        }
        ir[i] = rank;
    }
    for (int c = 0; c < nt; c++) {
        double t = 0;
        for (int k = 0; k < d; k++) t += (double)img[owner[c] * d + k] * txt[c * d + k];
        int64_t rank = 1;
        for (int i = 0; i < ni; i++) {
            if (i == owner[c]) continue;
            double s = 0;
            for (int k = 0; k < d; k++) s += (double)img[i * d + k] * txt[c * d + k];
            rank += s >= t;
        }
        tr[c] = rank;
    }
}

static void test_brute_force_with_ties(void **state) {
    (void)state;
    enum { NI = 37, D = 6, MAXT = 5 * NI };
    float img[NI * D], txt[MAXT * D];
    int32_t owner[MAXT];
    int nt = 0;
    for (int i = 0; i < NI; i++) {
        for (int k = 0; k < D; k++) img[i * D + k] = 0.5f * (float)((int)vlt_rng_below(5, VLT_RNG_TEST, (uint64_t)(i * D + k), 3) - 1);
        int ncap = 1 + (int)vlt_rng_below(5, VLT_RNG_TEST, 100000 + (uint64_t)i, 5);  // 1..5 captions
        for (int j = 0; j < ncap; j++, nt++) {
            owner[nt] = i;
            for (int k = 0; k < D; k++)
                txt[nt * D + k] = 0.5f * (float)((int)vlt_rng_below(6, VLT_RNG_TEST, (uint64_t)(nt * D + k), 3) - 1);
        }
    }
    int64_t ir_ref[NI], tr_ref[MAXT], ir[NI], tr[MAXT];
    brute_force(img, NI, txt, nt, D, owner, ir_ref, tr_ref);
    int ties = 0;  // make sure the data really has ties at the target
    for (int i = 0; i < NI; i++) ties += ir_ref[i] > 1;
    assert_true(ties > 5);
    vlt_eval_recall want_i2t, want_t2i;
    vlt_eval_recall_from_ranks(ir_ref, NI, &want_i2t);
    vlt_eval_recall_from_ranks(tr_ref, nt, &want_t2i);
    const int blocks[] = {0, 1, 3, 7, NI, 1000};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        vlt_eval_retrieval_result r;
        assert_int_equal(vlt_eval_retrieval(img, NI, txt, nt, D, owner, blocks[b], &r, ir, tr), VLT_OK);
        assert_memory_equal(ir, ir_ref, sizeof ir_ref);
        assert_memory_equal(tr, tr_ref, (size_t)nt * sizeof *tr);
        assert_memory_equal(&r.i2t, &want_i2t, sizeof want_i2t);
        assert_memory_equal(&r.t2i, &want_t2i, sizeof want_t2i);
    }
    // recall@k by counting directly
    int hit = 0;
    for (int c = 0; c < nt; c++) hit += tr_ref[c] <= 5;
    assert_true(fabs(want_t2i.recall[1] - (double)hit / nt) < 1e-15);
}

// Continuous random embeddings: blocked and unblocked runs agree rank for rank.
static void test_blocked_equals_unblocked(void **state) {
    (void)state;
    enum { NI = 200, NT = 1000, D = 32 };
    float *img = malloc(NI * D * sizeof *img), *txt = malloc(NT * D * sizeof *txt);
    int32_t owner[NT];
    vlt_rng_fill_normal(img, NI * D, 0, 1, 9, VLT_RNG_TEST, 0);
    vlt_rng_fill_normal(txt, NT * D, 0, 1, 9, VLT_RNG_TEST, 1u << 20);
    for (int c = 0; c < NT; c++) {
        owner[c] = c / 5;
        for (int k = 0; k < D; k++) txt[c * D + k] += 1.5f * img[owner[c] * D + k];  // related pairs
    }
    int64_t ir_a[NI], ir_b[NI], tr_a[NT], tr_b[NT];
    vlt_eval_retrieval_result a, b;
    assert_int_equal(vlt_eval_retrieval(img, NI, txt, NT, D, owner, NT, &a, ir_a, tr_a), VLT_OK);
    assert_int_equal(vlt_eval_retrieval(img, NI, txt, NT, D, owner, 13, &b, ir_b, tr_b), VLT_OK);
    assert_memory_equal(ir_a, ir_b, sizeof ir_a);
    assert_memory_equal(tr_a, tr_b, sizeof tr_a);
    assert_true(a.i2t.recall[0] > 0.5);  // the related pairs are found well above chance
    free(img);
    free(txt);
}

static void test_bad_input(void **state) {
    (void)state;
    const float img[] = {1, 0, 0, 1}, txt[] = {1, 0, 0, 1};
    const int32_t bad_owner[] = {0, 2}, lonely[] = {0, 0};
    vlt_eval_retrieval_result r;
    assert_int_equal(vlt_eval_retrieval(img, 2, txt, 2, 2, bad_owner, 0, &r, NULL, NULL), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "caption 1"));
    assert_int_equal(vlt_eval_retrieval(img, 2, txt, 2, 2, lonely, 0, &r, NULL, NULL), VLT_ERR_ARG);
    assert_non_null(strstr(vlt_error_message(), "image 1 has no caption"));
    const float nan_img[] = {1, NAN, 0, 1};
    const int32_t ok[] = {0, 1};
    assert_int_equal(vlt_eval_retrieval(nan_img, 2, txt, 2, 2, ok, 0, &r, NULL, NULL), VLT_ERR_ARG);
}

// Classes: c0 templates (1,0,0), (0,3,0) -> normalized, averaged (.5,.5,0), renormalized (1,1,0)/sqrt2;
// c1 (0,0,5), (0,0,1) -> (0,0,1); c2 (2,0,0), (1,0,0) -> (1,0,0).
// Images: (1,0,0) label 2: c2 = 1 is the top -> hit. (1,0,0) label 0: c0 = .707 < c2 = 1 -> top-1
// miss, top-5 hit. (0,0,1) label 1 -> hit. (0,1,0) label 0 -> hit. (0,0,0) label 1: all tie at 0,
// ties count against -> top-1 miss. top1 = 3/5, top5 = 5/5.
// Rows that are not unit length are found (what `vlt eval retrieval` warns about).
static void test_rows_not_unit(void **state) {
    (void)state;
    float x[4 * 3] = {1, 0, 0, 0.6f, 0.8f, 0, 0, 0, 2, 0.5f, 0.5f, 0.5f};
    int64_t first = -1;
    double norm = 0;
    assert_int_equal(vlt_eval_rows_not_unit(x, 2, 3, 1e-3, &first, &norm), 0);
    assert_int_equal(vlt_eval_rows_not_unit(x, 4, 3, 1e-3, &first, &norm), 2);
    assert_int_equal(first, 2);
    assert_true(fabs(norm - 2.0) < 1e-12);
    x[0] = NAN;
    assert_int_equal(vlt_eval_rows_not_unit(x, 2, 3, 1e-3, &first, NULL), 1);
    assert_int_equal(first, 0);
}

static void test_zeroshot(void **state) {
    (void)state;
    const float text[] = {1, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 1, 2, 0, 0, 1, 0, 0};
    float cls[9];
    assert_int_equal(vlt_eval_zeroshot_classifier(cls, text, 3, 2, 3), VLT_OK);
    const float want[] = {(float)M_SQRT1_2, (float)M_SQRT1_2, 0, 0, 0, 1, 1, 0, 0};
    for (int k = 0; k < 9; k++) assert_true(fabsf(cls[k] - want[k]) < 1e-6f);
    const float img[] = {1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0};
    const int32_t labels[] = {2, 0, 1, 0, 1};
    double top1, top5;
    assert_int_equal(vlt_eval_zeroshot_accuracy(img, labels, 5, cls, 3, 3, &top1, &top5), VLT_OK);
    assert_true(fabs(top1 - 0.6) < 1e-15);
    assert_true(top5 == 1.0);
    const int32_t bad[] = {2, 0, 1, 0, 3};
    assert_int_equal(vlt_eval_zeroshot_accuracy(img, bad, 5, cls, 3, 3, &top1, &top5), VLT_ERR_ARG);
    const float zero[18] = {0};
    assert_int_equal(vlt_eval_zeroshot_classifier(cls, zero, 3, 2, 3), VLT_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_case),
        cmocka_unit_test(test_brute_force_with_ties),
        cmocka_unit_test(test_blocked_equals_unblocked),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_zeroshot),
        cmocka_unit_test(test_rows_not_unit),
    };
    return cmocka_run_group_tests_name("eval_retrieval", tests, NULL, NULL);
}
