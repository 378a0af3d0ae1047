// Tests for the counter-based RNG: known Philox answers, determinism, distribution moments.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "autograd/rng.h"

// Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32 10 rounds).
static void test_philox_known_answers(void **state) {
    (void)state;
    uint32_t out[4];
    vlt_philox4x32(out, 0, 0, 0);
    assert_int_equal(out[0], 0x6627e8d5u);
    assert_int_equal(out[1], 0xe169c58du);
    assert_int_equal(out[2], 0xbc57ac4cu);
    assert_int_equal(out[3], 0x9b00dbd8u);
    // ctr = ffffffff x4, key = ffffffff x2
    vlt_philox4x32(out, ~0ull, ~0ull, ~0ull);
    assert_int_equal(out[0], 0x408f276du);
    assert_int_equal(out[1], 0x41c83b0eu);
    assert_int_equal(out[2], 0xa20bc7c6u);
    assert_int_equal(out[3], 0x6d5451fdu);
}

static void test_draws_are_pure_functions(void **state) {
    (void)state;
    uint64_t s = vlt_rng_stream(VLT_RNG_TEST, 3, 4);
    assert_true(s != vlt_rng_stream(VLT_RNG_TEST, 4, 3));
    for (uint64_t i = 0; i < 100; i++) {
        assert_int_equal(vlt_rng_u32(42, s, i), vlt_rng_u32(42, s, i));
        assert_true(vlt_rng_u32(42, s, i) != vlt_rng_u32(43, s, i) || i == 1000);
    }
}

static void test_moments(void **state) {
    (void)state;
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    for (int i = 0; i < n; i++) {
        float u = vlt_rng_uniform(7, 11, (uint64_t)i);
        assert_true(u >= 0.0f && u < 1.0f);
        su += u;
        double z = vlt_rng_normal(7, 12, (uint64_t)i);
        sn += z;
        sn2 += z * z;
    }
    assert_true(fabs(su / n - 0.5) < 0.005);
    assert_true(fabs(sn / n) < 0.01);
    assert_true(fabs(sn2 / n - 1.0) < 0.02);
}

// The fills run on threads; every element must still be the scalar draw of its own counter, for
// any thread count (weights initialised on 1 or 16 cores are the same weights).
static void test_fills_equal_scalar_draws_on_any_thread_count(void **state) {
    (void)state;
    const size_t n = 300001;
    const uint64_t idx0 = 12345;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        vlt_rng_fill_normal(a, n, 0.5f, 2.0f, 9, 4, idx0);
        vlt_rng_fill_uniform(b, n, -1.0f, 3.0f, 9, 5, idx0);
        for (size_t i = 0; i < n; i += 997) {
            assert_true(a[i] == 0.5f + 2.0f * vlt_rng_normal(9, 4, idx0 + i));
            assert_true(b[i] == -1.0f + 4.0f * vlt_rng_uniform(9, 5, idx0 + i));
        }
        assert_true(a[n - 1] == 0.5f + 2.0f * vlt_rng_normal(9, 4, idx0 + n - 1));
    }
    omp_set_num_threads(saved);
    free(a);
    free(b);
}

static void test_shuffle_is_permutation(void **state) {
    (void)state;
    uint32_t p[1000], q[1000];
    for (uint32_t i = 0; i < 1000; i++) p[i] = q[i] = i;
    vlt_rng_shuffle_u32(p, 1000, 1, 2);
    vlt_rng_shuffle_u32(q, 1000, 1, 2);
    int seen[1000] = {0}, moved = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(p[i], q[i]);
        seen[p[i]]++;
        moved += p[i] != (uint32_t)i;
    }
    for (int i = 0; i < 1000; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 900);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_draws_are_pure_functions),
        cmocka_unit_test(test_moments),
        cmocka_unit_test(test_shuffle_is_permutation),
        cmocka_unit_test(test_fills_equal_scalar_draws_on_any_thread_count),
    };
    return cmocka_run_group_tests_name("autograd_rng", tests, NULL, NULL);
}
