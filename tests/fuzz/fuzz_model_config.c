// fuzz_model_config.c — model config JSON in open_clip's format (layers/model_config.c): parsed
// and checked by vlt_model_cfg_parse; an accepted config has sizes a model can be built from.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "layers/model_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 15) return 0;
    char *json = fz_str(data, size);
    vlt_model_cfg cfg;
    if (vlt_model_cfg_parse(json, "fuzz.json", &cfg) == VLT_OK) {
        if (cfg.embed_dim < 1 || cfg.vision.width < 1 || cfg.vision.layers < 0 || cfg.text.width < 1 ||
            cfg.text.context_length < 1)
            abort();
    }
    free(json);
    return 0;
}
