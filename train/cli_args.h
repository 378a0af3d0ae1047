// cli_args.h — the small option parser the subcommands share: "--name VALUE" or "--name=VALUE",
// integer values checked against a range, and the usage errors every command gives the same way
// ("vlt CMD: …", exit status 2). These run only from main's command dispatch (they may exit).
#ifndef VLT_CLI_ARGS_H
#define VLT_CLI_ARGS_H

#include <stdbool.h>

// The value of option `name` at argv[*i] (advancing *i past a separate value), or NULL when
// argv[*i] is not that option. A missing value is a usage error (exit 2).
const char *vlt_cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name);
// v as an integer in [lo, hi] (else a usage error naming the option, exit 2).
long long vlt_cli_int(const char *cmd, const char *name, const char *v, long long lo, long long hi);
// "--help", "-h" or "help".
bool vlt_cli_is_help(const char *arg);
// Prints "vlt CMD: unknown option 'ARG'" (or "unexpected argument 'ARG'" for a non-option, with a
// hint when it looks like a brace or glob spec the shell expanded) and returns 2.
int vlt_cli_unexpected(const char *cmd, const char *arg);
// Prints "vlt CMD: WHY (vlt CMD --help for the usage)" and returns 2.
int vlt_cli_usage_error(const char *cmd, const char *why);

#endif
