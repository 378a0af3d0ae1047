// fuzz_vqa.c — VQA predictions and annotations JSON (vlt eval vqa): the input is
// "PREDICTIONS\n--\nREFERENCES", written to two files and scored by vlt_eval_vqa_files (answer
// normalisation, the 10-answer accuracy, answer types), with and without allow_subset.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/vqa_io.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 15) return 0;
    char *a, *b;
    fz_split(data, size, "\n--\n", &a, &b);
    const char *pp = fz_file(0, "pred.json", a, strlen(a));
    const char *rp = fz_file(1, "refs.json", b, strlen(b));
    vlt_eval_vqa_result r;
    vlt_eval_vqa_version v = (size & 2) ? VLT_EVAL_VQA_2016 : VLT_EVAL_VQA_CURRENT;
    if (vlt_eval_vqa_files(pp, rp, v, (int)(size & 1), &r) == VLT_OK) {
        if (!(r.accuracy >= 0 && r.accuracy <= 1.0 + 1e-9) || r.n_types < 0 || r.n_ids > r.n_questions) abort();
        for (int t = 0; t < r.n_types; t++)
            if (!r.types[t].name || r.types[t].count < 1) abort();
        vlt_eval_vqa_result_free(&r);
    }
    free(a);
    free(b);
    return 0;
}
