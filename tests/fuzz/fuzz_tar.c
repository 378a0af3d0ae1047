// fuzz_tar.c — libFuzzer target for the tar reader (plain and zstd input, sniffed): reads every
// member, groups the members into webdataset samples, then re-opens the input and seeks to
// member offsets as a resume would.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "data/tar.h"
#include "data/webdataset.h"

#define MAX_SEEKS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vlt_tar *t;
    if (vlt_tar_open_mem(data, size, "fuzz.tar", &t) != VLT_OK) return 0;
    vlt_tar_set_max_member(t, 1 << 20);
    uint64_t offsets[MAX_SEEKS];
    int n = 0;
    volatile uint8_t sink = 0;
    for (;;) {
        vlt_tar_member m;
        int got;
        if (vlt_tar_next(t, &m, &got) != VLT_OK || !got) break;
        if (m.data && m.size) sink ^= m.data[0] ^ m.data[m.size - 1] ^ m.data[m.size];
        sink ^= (uint8_t)strlen(m.path);
        if (n < MAX_SEEKS) offsets[n++] = m.offset;
        vlt_tar_member_free(&m);
    }
    vlt_tar_close(t);
    if (vlt_tar_open_mem(data, size, "fuzz.tar", &t) != VLT_OK) return 0;
    vlt_tar_set_max_member(t, 1 << 20);
    vlt_wds *w;
    if (vlt_wds_open(t, &w) == VLT_OK) {
        for (;;) {
            vlt_wds_sample s;
            int got;
            if (vlt_wds_next(w, &s, &got) != VLT_OK || !got) break;
            const vlt_wds_field *f = vlt_wds_sample_field(&s, "txt");
            if (f) sink ^= (uint8_t)f->size;
            sink ^= (uint8_t)strlen(s.key);
            vlt_wds_sample_free(&s);
        }
        vlt_wds_close(w);
    }
    vlt_tar_close(t);
    for (int i = n - 1; i >= 0; i -= 3) {
        if (vlt_tar_open_mem(data, size, "fuzz.tar", &t) != VLT_OK) return 0;
        vlt_tar_set_max_member(t, 1 << 20);
        if (vlt_tar_seek(t, offsets[i]) == VLT_OK) {
            vlt_tar_member m;
            int got;
            if (vlt_tar_next(t, &m, &got) == VLT_OK && got) vlt_tar_member_free(&m);
        }
        vlt_tar_close(t);
    }
    (void)sink;
    return 0;
}
