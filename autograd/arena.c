// arena.c — bump allocation in chunks, coalesced at reset (see arena.h).
#include "autograd/arena.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64
#define ARENA_POISON 0xDD

struct vlt_arena_chunk {
    vlt_arena_chunk *next;
    size_t size, off;
    unsigned char *mem;
};

static vlt_arena_chunk *chunk_new(vlt_arena *a, size_t size) {
    vlt_arena_chunk *c = malloc(sizeof *c);
    if (!c) return NULL;
    c->mem = aligned_alloc(ARENA_ALIGN, (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
    if (!c->mem) { free(c); return NULL; }
    c->size = size;
    c->off = 0;
    c->next = NULL;
    a->capacity += size;
    a->system_allocs++;
    return c;
}

static void chunks_free(vlt_arena_chunk *c) {
    while (c) {
        vlt_arena_chunk *n = c->next;
        free(c->mem);
        free(c);
        c = n;
    }
}

void vlt_arena_init(vlt_arena *a, size_t initial_bytes) {
    memset(a, 0, sizeof *a);
    a->generation = 1;
    const char *env = getenv("VLT_DEBUG_ARENA");
    a->debug = env && env[0] == '1';
    a->chunks = chunk_new(a, initial_bytes ? initial_bytes : (1u << 20));
}

void vlt_arena_free(vlt_arena *a) {
    chunks_free(a->chunks);
    memset(a, 0, sizeof *a);
}

void vlt_arena_set_debug(vlt_arena *a, int on) { a->debug = on; }

void *vlt_arena_alloc(vlt_arena *a, size_t bytes) {
    size_t need = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (need == 0) need = ARENA_ALIGN;
    vlt_arena_chunk *c = a->chunks;
    if (!c || c->off + need > c->size) {
        // Grow: at least double, so warm-up takes few steps.
        size_t size = a->capacity > need ? a->capacity : need;
        vlt_arena_chunk *n = chunk_new(a, size);
        if (!n) return NULL;
        n->next = a->chunks;
        a->chunks = n;
        c = n;
    }
    void *p = c->mem + c->off;
    c->off += need;
    a->used += need;
    if (a->used > a->high_water) a->high_water = a->used;
    return p;
}

void vlt_arena_reset(vlt_arena *a) {
    if (a->chunks && a->chunks->next) {
        // Several chunks: replace them by one that holds the whole high-water mark.
        chunks_free(a->chunks);
        a->chunks = NULL;
        a->capacity = 0;
        a->chunks = chunk_new(a, a->high_water);
    } else if (a->chunks && a->debug) {
        memset(a->chunks->mem, ARENA_POISON, a->chunks->off);
    }
    if (a->chunks) a->chunks->off = 0;
    a->used = 0;
    a->generation++;
}
