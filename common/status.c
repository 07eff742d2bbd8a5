/*
 * status.c: names of status codes and the thread-local error context.
 * The context is per thread, so concurrent workers never see each other's
 * messages; it is overwritten by each fp_error_set().
 */
#include <stdio.h>
#include <string.h>

#include "fp_status.h"

static const char *const status_text[FP_STATUS_COUNT] = {
	[FP_OK] = "success",
	[FP_ERR_INVALID_ARG] = "invalid argument",
	[FP_ERR_IO] = "I/O error",
	[FP_ERR_NOMEM] = "out of memory",
	[FP_ERR_FORMAT] = "malformed input",
	[FP_ERR_VERSION] = "unsupported format version",
	[FP_ERR_CHECKSUM] = "checksum mismatch",
	[FP_ERR_OVERFLOW] = "size overflow",
	[FP_ERR_CONFIG] = "configuration error",
	[FP_ERR_UNSUPPORTED] = "unsupported",
	[FP_ERR_NOT_FOUND] = "not found",
	[FP_ERR_LIMIT] = "limit exceeded",
	[FP_ERR_NUMERIC] = "numerical error",
	[FP_ERR_BACKEND] = "compute backend error",
	[FP_ERR_PROTOCOL] = "protocol error",
	[FP_ERR_AUTH] = "authentication refused",
	[FP_ERR_TIMEOUT] = "timed out",
	[FP_ERR_EXISTS] = "already exists",
	[FP_ERR_CANCELLED] = "cancelled",
	[FP_ERR_STATE] = "invalid state",
	[FP_ERR_INTERNAL] = "internal error",
	[FP_ERR_DATA] = "unusable data",
};

static const char *const status_names[FP_STATUS_COUNT] = {
	[FP_OK] = "FP_OK",
	[FP_ERR_INVALID_ARG] = "FP_ERR_INVALID_ARG",
	[FP_ERR_IO] = "FP_ERR_IO",
	[FP_ERR_NOMEM] = "FP_ERR_NOMEM",
	[FP_ERR_FORMAT] = "FP_ERR_FORMAT",
	[FP_ERR_VERSION] = "FP_ERR_VERSION",
	[FP_ERR_CHECKSUM] = "FP_ERR_CHECKSUM",
	[FP_ERR_OVERFLOW] = "FP_ERR_OVERFLOW",
	[FP_ERR_CONFIG] = "FP_ERR_CONFIG",
	[FP_ERR_UNSUPPORTED] = "FP_ERR_UNSUPPORTED",
	[FP_ERR_NOT_FOUND] = "FP_ERR_NOT_FOUND",
	[FP_ERR_LIMIT] = "FP_ERR_LIMIT",
	[FP_ERR_NUMERIC] = "FP_ERR_NUMERIC",
	[FP_ERR_BACKEND] = "FP_ERR_BACKEND",
	[FP_ERR_PROTOCOL] = "FP_ERR_PROTOCOL",
	[FP_ERR_AUTH] = "FP_ERR_AUTH",
	[FP_ERR_TIMEOUT] = "FP_ERR_TIMEOUT",
	[FP_ERR_EXISTS] = "FP_ERR_EXISTS",
	[FP_ERR_CANCELLED] = "FP_ERR_CANCELLED",
	[FP_ERR_STATE] = "FP_ERR_STATE",
	[FP_ERR_INTERNAL] = "FP_ERR_INTERNAL",
	[FP_ERR_DATA] = "FP_ERR_DATA",
};

const char *fp_status_str(enum fp_status s)
{
	if ((unsigned)s >= FP_STATUS_COUNT || !status_text[s]) return "unknown status";
	return status_text[s];
}

const char *fp_status_name(enum fp_status s)
{
	if ((unsigned)s >= FP_STATUS_COUNT || !status_names[s]) return "FP_ERR_UNKNOWN";
	return status_names[s];
}

static _Thread_local struct fp_error last_error;

enum fp_status fp_error_vset(enum fp_status code, const char *file, int line, const char *fmt,
                             va_list ap)
{
	last_error.code = code;
	last_error.file = file;
	last_error.line = line;
	if (fmt) {
		vsnprintf(last_error.msg, sizeof last_error.msg, fmt, ap);
	} else {
		snprintf(last_error.msg, sizeof last_error.msg, "%s", fp_status_str(code));
	}
	return code;
}

enum fp_status fp_error_set(enum fp_status code, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fp_error_vset(code, file, line, fmt, ap);
	va_end(ap);
	return code;
}

enum fp_status fp_error_wrap(const char *fmt, ...)
{
	char prefix[FP_ERROR_MSG_MAX];
	char old[FP_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, last_error.msg, sizeof old);
	/* prefix + ": " + old, truncated to the buffer (never overflowed). */
	size_t cap = sizeof last_error.msg - 1;
	size_t n = strnlen(prefix, cap);
	memcpy(last_error.msg, prefix, n);
	if (n + 2 <= cap) {
		memcpy(last_error.msg + n, ": ", 2);
		n += 2;
	}
	size_t m = strnlen(old, cap - n);
	memcpy(last_error.msg + n, old, m);
	last_error.msg[n + m] = '\0';
	return last_error.code;
}

const struct fp_error *fp_error_last(void)
{
	return &last_error;
}

const char *fp_error_msg(void)
{
	return last_error.msg;
}

void fp_error_clear(void)
{
	last_error.code = FP_OK;
	last_error.file = NULL;
	last_error.line = 0;
	last_error.msg[0] = '\0';
}
