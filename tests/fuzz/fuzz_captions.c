// fuzz_captions.c — caption results and references JSON (vlt eval captions): the input is
// "RESULTS\n--\nREFERENCES" (a COCO results list [{image_id, caption}] and a COCO captions file
// {annotations: [...]}, or the other accepted shapes); whatever loads is scored with BLEU and
// CIDEr-D, in raw (PTB-tokenized) and pretokenized modes, with and without allow_subset.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "eval/bleu.h"
#include "eval/caption_io.h"
#include "eval/cider.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 15) return 0;
    char *a, *b;
    fz_split(data, size, "\n--\n", &a, &b);
    cJSON *pred = cJSON_Parse(a), *refs = cJSON_Parse(b);
    if (pred && refs) {
        vlt_eval_caption_load_opts o = {.pretokenized = (int)(size & 1), .allow_subset = (int)((size >> 1) & 1)};
        vlt_eval_caption_set *set = NULL;
        long long *ids = NULL;
        int n = 0;
        if (vlt_eval_captions_from_json(pred, "results.json", refs, "refs.json", &o, &set, &ids, &n) == VLT_OK) {
            double bleu[4], cider;
            int ni = vlt_eval_caption_set_n_images(set);
            double *per = malloc(sizeof(double) * 4 * (size_t)(ni > 0 ? ni : 1));   // BLEU: 4 per image
            if (vlt_eval_bleu(set, bleu, per) == VLT_OK)
                for (int k = 0; k < 4; k++)
                    if (!(bleu[k] >= 0 && bleu[k] <= 1.0 + 1e-9)) abort();
            if (vlt_eval_cider_d(set, &cider, per) == VLT_OK && (isnan(cider) || cider < 0)) abort();
            free(per);
            vlt_eval_caption_set_free(set);
            free(ids);
        }
    }
    cJSON_Delete(pred);
    cJSON_Delete(refs);
    free(a);
    free(b);
    return 0;
}
