// bench_util.h — the two helpers the benchmark commands share: a monotonic clock and a qsort
// comparison for medians.
#ifndef VLT_TRAIN_BENCH_UTIL_H
#define VLT_TRAIN_BENCH_UTIL_H

#include <time.h>

static inline double vlt_bench_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline int vlt_bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
