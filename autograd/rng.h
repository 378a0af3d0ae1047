// rng.h — counter-based random numbers (Philox4x32-10).
//
// Every draw is a pure function of (seed, stream, index): no hidden state, so the CPU and the
// GPU produce the same numbers, threads need no coordination, and a resumed run draws exactly
// what the uninterrupted one would have. `stream` separates purposes (init of one parameter,
// dropout at one step, the shuffle of one epoch, the crop of one sample); build it with
// vlt_rng_stream() from a purpose tag and up to two integers, or hash a string key.
#ifndef VLT_RNG_H
#define VLT_RNG_H

#include <stddef.h>
#include <stdint.h>

// Purpose tags for vlt_rng_stream(): distinct so that streams never collide across uses.
enum {
    VLT_RNG_INIT = 1,      // parameter init: (param index, 0)
    VLT_RNG_DROPOUT = 2,   // (step, op index)
    VLT_RNG_SHUFFLE = 3,   // (epoch, rank/worker)
    VLT_RNG_AUGMENT = 4,   // (epoch, hash of sample key)
    VLT_RNG_MASK = 5,      // token masking (step, op index)
    VLT_RNG_DATA = 6,      // synthetic data generation
    VLT_RNG_TEST = 7,      // tests
    VLT_RNG_EVAL = 8,      // evaluation draws (the matching accuracy's other captions): (image, try)
};

// One Philox4x32-10 block: 4 x u32 from a 64-bit key and a 128-bit counter (hi, lo).
void vlt_philox4x32(uint32_t out[4], uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo);

// Mixes a purpose tag and two integers into a 64-bit stream id (splitmix64 finalizer chain).
uint64_t vlt_rng_stream(uint64_t purpose, uint64_t a, uint64_t b);
// 64-bit FNV-1a of a string, then mixed: for keying by sample key.
uint64_t vlt_rng_hash_str(const char *s);

// The index-th 32-bit draw of (seed, stream).
uint32_t vlt_rng_u32(uint64_t seed, uint64_t stream, uint64_t index);
// Uniform in [0, 1) with 24 bits of mantissa (exactly representable as float).
float vlt_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
// Standard normal (Box-Muller on two draws of one Philox block).
float vlt_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);
// Uniform integer in [0, n) (n > 0), by 64-bit multiply-shift of two draws (bias < 2^-32).
uint64_t vlt_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t n);

// Fill helpers: out[i] = draw(index0 + i).
void vlt_rng_fill_uniform(float *out, size_t n, float lo, float hi, uint64_t seed, uint64_t stream, uint64_t index0);
void vlt_rng_fill_normal(float *out, size_t n, float mean, float std, uint64_t seed, uint64_t stream, uint64_t index0);

// Fisher-Yates permutation of perm[0..n) drawn from (seed, stream): the same on every machine.
void vlt_rng_shuffle_u32(uint32_t *perm, size_t n, uint64_t seed, uint64_t stream);

#endif
