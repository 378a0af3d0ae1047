// rng.c — Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// Constants are the paper's. A block of four u32 is addressed by index / 4.
#include "autograd/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void vlt_philox4x32(uint32_t out[4], uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo) {
    uint32_t c0 = (uint32_t)ctr_lo, c1 = (uint32_t)(ctr_lo >> 32);
    uint32_t c2 = (uint32_t)ctr_hi, c3 = (uint32_t)(ctr_hi >> 32);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, c0, &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

static inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t vlt_rng_stream(uint64_t purpose, uint64_t a, uint64_t b) {
    return splitmix64(splitmix64(splitmix64(purpose) ^ a) ^ b);
}

uint64_t vlt_rng_hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return splitmix64(h);
}

uint32_t vlt_rng_u32(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t out[4];
    vlt_philox4x32(out, seed, stream, index >> 2);
    return out[index & 3];
}

static inline float u32_to_unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

float vlt_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return u32_to_unit(vlt_rng_u32(seed, stream, index));
}

float vlt_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    // Two normals per block: index i uses lanes 2*(i&1) and 2*(i&1)+1 of block i>>1.
    uint32_t out[4];
    vlt_philox4x32(out, seed, stream, index >> 1);
    int lane = (int)(index & 1) * 2;
    // u1 in (0, 1] so that log never sees 0.
    double u1 = ((double)(out[lane] >> 8) + 1.0) * (1.0 / 16777216.0);
    double u2 = (double)(out[lane + 1] >> 8) * (1.0 / 16777216.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t vlt_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t n) {
    uint32_t out[4];
    vlt_philox4x32(out, seed, stream, index);
    uint64_t r = ((uint64_t)out[0] << 32) | out[1];
    return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

// Each element is a pure function of its counter, so the fills split across threads and give the
// same values for any thread count.
void vlt_rng_fill_uniform(float *out, size_t n, float lo, float hi, uint64_t seed, uint64_t stream, uint64_t index0) {
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * vlt_rng_uniform(seed, stream, index0 + i);
}

void vlt_rng_fill_normal(float *out, size_t n, float mean, float std, uint64_t seed, uint64_t stream, uint64_t index0) {
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) out[i] = mean + std * vlt_rng_normal(seed, stream, index0 + i);
}

void vlt_rng_shuffle_u32(uint32_t *perm, size_t n, uint64_t seed, uint64_t stream) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)vlt_rng_below(seed, stream, i, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
