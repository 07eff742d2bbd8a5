/*
 * fp_status.h: the one status code of fedpath, and the error context.
 *
 * Every fallible function returns enum fp_status; values come back through
 * out-pointers. The error is described once, where it starts, with FP_FAIL():
 * that records file:line, the code and a message naming the offending file,
 * field or value in a thread-local context. Callers forward the status
 * unchanged (FP_TRY) and may prepend what they were doing (fp_error_wrap).
 *
 * Invariants (tests/unit/test_common.c checks each):
 *  - numeric values are part of the ABI and are never renumbered; new codes
 *    are appended before FP_STATUS_COUNT;
 *  - fp_status_str() returns a non-NULL static string for every value,
 *    including out-of-range ones ("unknown status");
 *  - fp_error_last() always returns a valid pointer; after fp_error_clear()
 *    its code is FP_OK and its message empty;
 *  - messages are truncated, never overflowed, at FP_ERROR_MSG_MAX bytes.
 */
#ifndef FP_STATUS_H
#define FP_STATUS_H

#include <stdarg.h>

enum fp_status {
	FP_OK = 0,
	FP_ERR_INVALID_ARG = 1,  /* a caller passed a bad value */
	FP_ERR_IO = 2,           /* open/read/write/fsync/rename failed */
	FP_ERR_NOMEM = 3,        /* allocation failed */
	FP_ERR_FORMAT = 4,       /* input file or message is malformed */
	FP_ERR_VERSION = 5,      /* a format version this build does not know */
	FP_ERR_CHECKSUM = 6,     /* a hash did not match */
	FP_ERR_OVERFLOW = 7,     /* size arithmetic would overflow */
	FP_ERR_CONFIG = 8,       /* configuration error (file:line in message) */
	FP_ERR_UNSUPPORTED = 9,  /* valid input that this build cannot handle */
	FP_ERR_NOT_FOUND = 10,   /* a named file, key, column or record is absent */
	FP_ERR_LIMIT = 11,       /* a documented limit was exceeded */
	FP_ERR_NUMERIC = 12,     /* NaN/Inf or a numerical failure */
	FP_ERR_BACKEND = 13,     /* a compute backend (CUDA, cuDNN, oneDNN) failed */
	FP_ERR_PROTOCOL = 14,    /* a peer broke the wire protocol */
	FP_ERR_AUTH = 15,        /* authentication or authorisation refused */
	FP_ERR_TIMEOUT = 16,     /* no progress within the allowed time */
	FP_ERR_EXISTS = 17,      /* the target already exists */
	FP_ERR_CANCELLED = 18,   /* stopped by a signal or the user */
	FP_ERR_STATE = 19,       /* operation not valid in the current state */
	FP_ERR_INTERNAL = 20,    /* a bug in fedpath: please report it */
	FP_ERR_DATA = 21,        /* data are valid in form but unusable (one class only, no events) */
	FP_STATUS_COUNT
};

/* Static, human-readable name of a status ("I/O error"); never NULL. */
const char *fp_status_str(enum fp_status s);

/* Stable identifier of a status ("FP_ERR_IO"); never NULL. */
const char *fp_status_name(enum fp_status s);

#define FP_ERROR_MSG_MAX 1024

struct fp_error {
	enum fp_status code;
	const char *file;  /* source file where the error started (static string) */
	int line;
	char msg[FP_ERROR_MSG_MAX];
};

/* Records an error in this thread's context and returns `code`. */
enum fp_status fp_error_set(enum fp_status code, const char *file, int line,
                            const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
enum fp_status fp_error_vset(enum fp_status code, const char *file, int line,
                             const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* Prepends "<context>: " to the current message and returns the current code.
 * For callers that forward an error and want to say what they were doing. */
enum fp_status fp_error_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* This thread's last error (borrowed; valid until the next set/clear). */
const struct fp_error *fp_error_last(void);
/* The last error's message, or "" when none. */
const char *fp_error_msg(void);
void fp_error_clear(void);

/* Describe an error where it starts: return FP_FAIL(FP_ERR_IO, "open %s: %s", p, strerror(errno)); */
#define FP_FAIL(code, ...) fp_error_set((code), __FILE__, __LINE__, __VA_ARGS__)

/* Forward a failing status unchanged. For functions without resources to free. */
#define FP_TRY(expr)                                     \
	do {                                                 \
		enum fp_status fp_try_st_ = (expr);              \
		if (fp_try_st_ != FP_OK) return fp_try_st_;      \
	} while (0)

/* Forward to the function's `fail:` label, keeping the status in `st`. */
#define FP_CHECK(st, expr)                               \
	do {                                                 \
		(st) = (expr);                                   \
		if ((st) != FP_OK) goto fail;                    \
	} while (0)

#endif
