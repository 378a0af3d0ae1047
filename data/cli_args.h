// cli_args.h — the small option parser the data subcommands (`vlt synth`, `vlt shards`) share:
// "--name VALUE" or "--name=VALUE", and integer values checked against a range. A usage error
// prints "vlt CMD: …" and exits with status 2 (these run only from main's command dispatch).
#ifndef VLT_CLI_ARGS_H
#define VLT_CLI_ARGS_H

// The value of option `name` at argv[*i] (advancing *i past a separate value), or NULL when
// argv[*i] is not that option.
const char *vlt_cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name);
// v as an integer in [lo, hi].
long long vlt_cli_int(const char *cmd, const char *name, const char *v, long long lo, long long hi);

#endif
