// fuzz_zeroshot.c — the class-name and prompt-template files of `vlt eval zeroshot`: the input
// is "CLASSES\n--\nTEMPLATES", written to two files and given to the command's public entry
// point (vlt_cmd_eval_zeroshot, train/embed_cmd.c), which reads both files (one entry per line,
// blank lines skipped) before it needs a checkpoint; the checkpoint named here does not exist,
// so each run ends there with a message.
// Build and run: make fuzz (scripts/fuzz.mk).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "train/commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 15) return 0;
    char *classes, *templates;
    fz_split(data, size, "\n--\n", &classes, &templates);
    const char *cp = fz_file(0, "classes.txt", classes, strlen(classes));
    const char *tp = fz_file(1, "templates.txt", templates, strlen(templates));
    char *argv[] = {"zeroshot", "--checkpoint", "/nonexistent/vlt-fuzz-run", "--shards", "/nonexistent/x.tar",
                    "--classes", (char *)cp, "--templates", (char *)tp, NULL};
    int rc = vlt_cmd_eval_zeroshot(9, argv);
    if (rc == 0) abort();   // there is no checkpoint: it cannot succeed
    free(classes);
    free(templates);
    return 0;
}
