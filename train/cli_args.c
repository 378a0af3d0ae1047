// cli_args.c — option parsing shared by the subcommands (see cli_args.h).
#include "train/cli_args.h"

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

bool vlt_cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h") || !strcmp(arg, "help"); }

int vlt_cli_unexpected(const char *cmd, const char *arg) {
    if (arg[0] == '-') {
        fprintf(stderr, "vlt %s: unknown option '%s' (vlt %s --help for the usage)\n", cmd, arg, cmd);
    } else {
        // The usual cause: an unquoted "dir/{000..009}.tar" or "*.tar" that the shell expanded into
        // several words, of which only the first was taken as the option's value.
        fprintf(stderr, "vlt %s: unexpected argument '%s'", cmd, arg);
        if (strchr(arg, '/') || strstr(arg, ".tar"))
            fprintf(stderr, " (a shard spec with {a..b} or * must be quoted, or the shell expands it into several arguments)");
        fprintf(stderr, "; vlt %s --help for the usage\n", cmd);
    }
    return 2;
}

int vlt_cli_usage_error(const char *cmd, const char *why) {
    fprintf(stderr, "vlt %s: %s (vlt %s --help for the usage)\n", cmd, why, cmd);
    return 2;
}
