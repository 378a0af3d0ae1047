// fuzz_run_config.c — the YAML run config (train/run_config.c): the input is "YAML\n--\nSET"
// where YAML goes to vlt_run_config_parse and each line of SET to vlt_run_config_set (the
// --set key=value overrides); an accepted config is validated and written back out.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "train/run_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 15) return 0;
    char *yaml, *sets;
    fz_split(data, size, "\n--\n", &yaml, &sets);
    vlt_run_config c;
    vlt_run_config_default(&c);
    if (vlt_run_config_parse(yaml, strlen(yaml), "fuzz.yaml", &c) == VLT_OK) {
        for (char *line = strtok(sets, "\n"); line; line = strtok(NULL, "\n")) vlt_run_config_set(&c, line);
        vlt_run_config_validate(&c);
        FILE *null = fopen("/dev/null", "w");
        if (null) {
            vlt_run_config_write(&c, null);
            fclose(null);
        }
        vlt_run_config b;
        vlt_run_config_default(&b);
        char diff[256];
        vlt_run_config_model_diff(&c, &b, diff, sizeof diff);
    }
    free(yaml);
    free(sets);
    return 0;
}
