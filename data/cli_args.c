// cli_args.c — option parsing shared by the data subcommands (see cli_args.h).
#include "data/cli_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vlt_cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != 0) return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "vlt %s: %s needs a value\n", cmd, name);
        exit(2);
    }
    return argv[++*i];
}

long long vlt_cli_int(const char *cmd, const char *name, const char *v, long long lo, long long hi) {
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*v == 0 || *end != 0 || x < lo || x > hi) {
        fprintf(stderr, "vlt %s: %s must be an integer in [%lld, %lld], got '%s'\n", cmd, name, lo, hi, v);
        exit(2);
    }
    return x;
}
