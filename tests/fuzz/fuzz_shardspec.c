// fuzz_shardspec.c — shard spec expansion (braces, numeric ranges, comma lists, `::` joins,
// @listfiles, globs) and the rank/reader split: any spec expands or fails with a message, the
// expansion is bounded, and the split deals every shard exactly once.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/shardspec.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    // "@FILE" reads a list file: the part after the first blank line is written as
    // fz_dir()/list.txt, and a spec starting "@list" names it.
    char *spec, *list;
    fz_split(data, size, "\n\n", &spec, &list);
    if (!strncmp(spec, "@list", 5)) {
        const char *p = fz_file(0, "list.txt", list, strlen(list));
        char *s2 = malloc(strlen(p) + strlen(spec) + 2);
        sprintf(s2, "@%s%s", p, spec + 5);
        free(spec);
        spec = s2;
    }
    vlt_shard_list l;
    if (vlt_shardspec_expand(spec, &l) == VLT_OK) {
        for (size_t i = 0; i < l.n; i++)
            if (!l.paths[i]) abort();
        int world = 1 + (int)(size % 3), readers = 1 + (int)(size % 4);
        size_t total = 0;
        for (int r = 0; r < world; r++)
            for (int k = 0; k < readers; k++) {
                size_t *idx, cnt;
                if (vlt_shardspec_split(l.n, r, world, k, readers, &idx, &cnt) != VLT_OK) break;
                for (size_t j = 0; j < cnt; j++)
                    if (idx[j] >= l.n) abort();
                total += cnt;
                free(idx);
            }
        if (total != 0 && total != l.n) abort();
        vlt_shard_list_free(&l);
    }
    free(spec);
    free(list);
    return 0;
}
