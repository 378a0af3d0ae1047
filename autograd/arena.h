// arena.h — the per-step bump allocator for activations, their gradients and tape nodes.
//
// A step allocates by bumping a pointer; vlt_arena_reset() after the optimizer step makes all of
// it free again. The arena grows (one malloc per new chunk) only while it learns the size of a
// step; at the first reset after growth it coalesces into one block of the high-water size, so
// from then on a step of the same shape allocates nothing from the system.
//
// Use-after-reset check: every reset bumps `generation`. Tensors allocated from the arena record
// the generation they were born in, and ops refuse inputs from an earlier one. With debug on
// (vlt_arena_set_debug or VLT_DEBUG_ARENA=1), reset also poisons the memory, so even a read of a
// stale tensor header fails the magic check.
#ifndef VLT_ARENA_H
#define VLT_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct vlt_arena_chunk vlt_arena_chunk;

typedef struct vlt_arena {
    vlt_arena_chunk *chunks;   // newest first; after a coalescing reset, exactly one
    size_t used;               // bytes handed out since the last reset (all chunks)
    size_t high_water;         // max of `used` over the arena's life
    size_t capacity;           // bytes reserved from the system (all chunks)
    uint64_t generation;       // bumped by every reset; starts at 1
    uint64_t system_allocs;    // count of mallocs made for chunks (for the steady-state check)
    int debug;                 // poison on reset
} vlt_arena;

// initial_bytes: the first chunk's size (0 picks 1 MiB).
void vlt_arena_init(vlt_arena *a, size_t initial_bytes);
void vlt_arena_free(vlt_arena *a);
// 64-byte aligned (cache line; also what vectorized kernels want). NULL only when malloc fails.
void *vlt_arena_alloc(vlt_arena *a, size_t bytes);
void vlt_arena_reset(vlt_arena *a);
void vlt_arena_set_debug(vlt_arena *a, int on);

#endif
