// fuzz_safetensors.c — the safetensors reader (checkpoints/safetensors.c): the header JSON
// (dtypes, shapes, offsets, __metadata__) is validated against the buffer, then every tensor is
// read as f32 where its dtype converts, and the metadata walked.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vlt_safetensors *f;
    if (vlt_safetensors_open_memory(data, size, "fuzz.safetensors", &f) != VLT_OK) return 0;
    int n = vlt_safetensors_count(f);
    for (int i = 0; i < n; i++) {
        const vlt_st_tensor *t = vlt_safetensors_at(f, i);
        if (!t || !t->name || vlt_safetensors_get(f, t->name) != t) abort();
        if (t->offset + t->nbytes > size) abort();   // the data lies inside the buffer
        if (t->numel > (1 << 20)) continue;
        float *dst = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        vlt_safetensors_read_f32(f, t->name, dst, t->numel);
        free(dst);
    }
    for (int i = 0; i < vlt_safetensors_metadata_count(f); i++) {
        const char *k, *v;
        vlt_safetensors_metadata_at(f, i, &k, &v);
        if (!k || !v || vlt_safetensors_metadata(f, k) == NULL) abort();
    }
    vlt_safetensors_close(f);
    return 0;
}
