/*
 * fp_log.h: one line per event, to stderr (or a file), human or JSON lines.
 *
 * A human line:   2026-11-27T19:44:32.123Z INFO  [site=H01 round=3] message
 * A JSON line:    {"ts":"2026-11-27T19:44:32.123Z","level":"info","site":"H01",
 *                  "round":3,"msg":"message"}
 * Timestamps are UTC with milliseconds. site and round are omitted while unset.
 * Colour is used only when the sink is a TTY and NO_COLOR is not set (any
 * value of NO_COLOR, even an empty one, turns colour off).
 * Thread-safe: lines from several threads never interleave.
 * Never log patient identifiers, file names that may carry them, or pixels.
 */
#ifndef FP_LOG_H
#define FP_LOG_H

#include <stdio.h>

#include "fp_status.h"

enum fp_log_level { FP_LOG_DEBUG = 0, FP_LOG_INFO = 1, FP_LOG_WARN = 2, FP_LOG_ERROR = 3, FP_LOG_OFF = 4 };

struct fp_log_options {
	enum fp_log_level level; /* lines below this level are dropped */
	int json;                /* 1: JSON lines */
	const char *path;        /* NULL: stderr; else appended to (created 0640) */
	int color;               /* -1 auto (TTY and no NO_COLOR), 0 never, 1 always */
};

/* Applies options; may be called again. Without a call: INFO, human, stderr, auto colour. */
enum fp_status fp_log_configure(const struct fp_log_options *opt);
/* Restores the defaults and closes any log file. */
void fp_log_shutdown(void);

/* Parses "debug", "info", "warn", "error", "off" (case-insensitive). */
enum fp_status fp_log_level_parse(const char *s, enum fp_log_level *out);
const char *fp_log_level_str(enum fp_log_level lvl);
enum fp_log_level fp_log_get_level(void);

/* Context fields carried on every following line of the process. NULL / -1 unset. */
void fp_log_set_site(const char *site_id);
void fp_log_set_round(long round);

void fp_log(enum fp_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fp_vlog(enum fp_log_level lvl, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Logs the thread's last error once, at ERROR, as "<what>: <message>". */
void fp_log_error_last(const char *what);

#define FP_DEBUG(...) fp_log(FP_LOG_DEBUG, __VA_ARGS__)
#define FP_INFO(...) fp_log(FP_LOG_INFO, __VA_ARGS__)
#define FP_WARN(...) fp_log(FP_LOG_WARN, __VA_ARGS__)
#define FP_ERROR(...) fp_log(FP_LOG_ERROR, __VA_ARGS__)

/* Formats the current UTC time as 2026-11-27T19:44:32.123Z (buf >= 32 bytes). */
void fp_time_utc_iso(char *buf, size_t size);

#endif
