/*
 * fp_common_shim.c: the few common/ logging calls kernels/ makes, for the
 * standalone GPU-check build only (scripts/gpu-check), where common/log.c's
 * jansson is not installed. Plain lines to stderr; no JSON, no files.
 */
#include <stdarg.h>
#include <stdio.h>

#include "fp_log.h"

void fp_vlog(enum fp_log_level lvl, const char *fmt, va_list ap)
{
	static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
	if (lvl < FP_LOG_INFO || lvl > FP_LOG_ERROR)
		return;
	fprintf(stderr, "%-5s ", names[lvl]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void fp_log(enum fp_log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fp_vlog(lvl, fmt, ap);
	va_end(ap);
}

void fp_log_error_last(const char *what)
{
	fp_log(FP_LOG_ERROR, "%s: %s", what, fp_error_msg());
}
