/*
 * fp_cli.h: what every subcommand of the fedpath executable shares.
 *
 * Conventions (docs/ARCHITECTURE.md, "The command line"):
 *  - exit status 0 success, 1 runtime error, 2 usage error;
 *  - every error goes to stderr as "fedpath <cmd>: <what is wrong>", naming the
 *    file or value at fault, then what to do;
 *  - `--help` anywhere prints the command's usage to stdout and exits 0;
 *  - results go to stdout, logs and progress to stderr.
 */
#ifndef FP_CLI_H
#define FP_CLI_H

#include "fp_common.h"

#define FP_EXIT_OK 0
#define FP_EXIT_RUNTIME 1
#define FP_EXIT_USAGE 2

#define FP_CLI_COMMAND(name, summary)        \
	int fp_cmd_##name(int argc, char **argv); \
	extern const char fp_cmd_##name##_usage[];
#include "commands.def"
#undef FP_CLI_COMMAND

/* Prints "fedpath <cmd>: <message>" and "Try 'fedpath <cmd> --help'." to
 * stderr; returns FP_EXIT_USAGE. */
int fp_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "fedpath <cmd>: <what>: <last error message>" (and, when `hint` is
 * not NULL, a second line with it) to stderr; returns FP_EXIT_RUNTIME. */
int fp_cli_runtime_error(const char *cmd, const char *what, const char *hint);

/* 1 when argv holds -h or --help (before any "--"). */
int fp_cli_wants_help(int argc, char **argv);

/* Common logging options every long-running command accepts:
 * --log-level L, --log-json, --log-file PATH. Returns 1 and consumes the option
 * (and its value) when argv[*i] is one of them, 0 when it is not, -1 on a bad
 * value (message printed). */
int fp_cli_log_option(const char *cmd, int argc, char **argv, int *i);

/* Parses a number with range check; prints a usage error naming the option. */
int fp_cli_parse_long(const char *cmd, const char *opt, const char *text, long min, long max, long *out);
int fp_cli_parse_double(const char *cmd, const char *opt, const char *text, double min, double max, double *out);

#endif
