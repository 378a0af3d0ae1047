// bench_cmd.c — `vlt bench`: placeholder until the core lands (filled in below).
#include <stdio.h>
#include "train/commands.h"
int vlt_cmd_bench(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "vlt bench: not built yet\n"); return 1; }
