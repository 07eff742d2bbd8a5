/*
 * cli_util.c: helpers every subcommand shares (fp_cli.h).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_cli.h"

int fp_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fedpath %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'fedpath %s --help'.\n", cmd);
	return FP_EXIT_USAGE;
}

int fp_cli_runtime_error(const char *cmd, const char *what, const char *hint)
{
	const char *msg = fp_error_msg();
	if (!msg[0]) msg = fp_status_str(fp_error_last()->code);
	if (what && what[0])
		fprintf(stderr, "fedpath %s: %s: %s\n", cmd, what, msg);
	else
		fprintf(stderr, "fedpath %s: %s\n", cmd, msg);
	if (hint && hint[0]) fprintf(stderr, "  %s\n", hint);
	return FP_EXIT_RUNTIME;
}

int fp_cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
	}
	return 0;
}

int fp_cli_log_option(const char *cmd, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	static struct fp_log_options opt = {FP_LOG_INFO, 0, NULL, -1};
	if (strcmp(a, "--log-json") == 0) {
		opt.json = 1;
	} else if (strcmp(a, "--log-level") == 0 || strcmp(a, "--log-file") == 0) {
		if (*i + 1 >= argc) {
			fp_cli_usage_error(cmd, "%s needs a value", a);
			return -1;
		}
		const char *v = argv[++*i];
		if (strcmp(a, "--log-level") == 0) {
			if (fp_log_level_parse(v, &opt.level) != FP_OK) {
				fp_cli_usage_error(cmd, "%s", fp_error_msg());
				return -1;
			}
		} else {
			opt.path = v;
		}
	} else {
		return 0;
	}
	if (fp_log_configure(&opt) != FP_OK) {
		fp_cli_runtime_error(cmd, "logging", NULL);
		return -1;
	}
	return 1;
}

int fp_cli_parse_long(const char *cmd, const char *opt, const char *text, long min, long max, long *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (!text[0] || *end || errno == ERANGE)
		return fp_cli_usage_error(cmd, "%s: '%s' is not an integer", opt, text);
	if (v < min || v > max) return fp_cli_usage_error(cmd, "%s: %ld is out of range [%ld, %ld]", opt, v, min, max);
	*out = v;
	return 0;
}

int fp_cli_parse_double(const char *cmd, const char *opt, const char *text, double min, double max, double *out)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(text, &end);
	if (!text[0] || *end || errno == ERANGE || !isfinite(v))
		return fp_cli_usage_error(cmd, "%s: '%s' is not a number", opt, text);
	if (v < min || v > max) return fp_cli_usage_error(cmd, "%s: %s is out of range [%g, %g]", opt, text, min, max);
	*out = v;
	return 0;
}
