/*
 * log.c: the process-wide logger (fp_log.h).
 * One mutex guards the options and the sink, so lines never interleave. A line
 * is formatted into a local buffer first and written with one fputs + fflush.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fp_log.h"

#define LOG_LINE_MAX 4096

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static enum fp_log_level log_level = FP_LOG_INFO;
static int log_json;
static int log_color_opt = -1;
static FILE *log_file; /* owned when not NULL; else stderr */
static char log_site[64];
static long log_round = -1;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

const char *fp_log_level_str(enum fp_log_level lvl)
{
	if ((unsigned)lvl > FP_LOG_OFF) return "?";
	return level_names[lvl];
}

enum fp_status fp_log_level_parse(const char *s, enum fp_log_level *out)
{
	for (int i = 0; i <= FP_LOG_OFF; i++) {
		if (s && strcasecmp(s, level_names[i]) == 0) {
			*out = (enum fp_log_level)i;
			return FP_OK;
		}
	}
	if (s && strcasecmp(s, "warning") == 0) {
		*out = FP_LOG_WARN;
		return FP_OK;
	}
	return FP_FAIL(FP_ERR_INVALID_ARG, "unknown log level '%s' (expected debug, info, warn, error or off)",
	               s ? s : "(null)");
}

enum fp_status fp_log_configure(const struct fp_log_options *opt)
{
	FILE *f = NULL;
	if (opt->path && opt->path[0]) {
		int fd = open(opt->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0)
			return FP_FAIL(FP_ERR_IO, "cannot open log file %s: %s", opt->path, strerror(errno));
		f = fdopen(fd, "a");
		if (!f) {
			close(fd);
			return FP_FAIL(FP_ERR_IO, "cannot open log file %s: %s", opt->path, strerror(errno));
		}
	}
	pthread_mutex_lock(&log_mu);
	if (log_file) fclose(log_file);
	log_file = f;
	log_level = opt->level;
	log_json = opt->json;
	log_color_opt = opt->color;
	pthread_mutex_unlock(&log_mu);
	return FP_OK;
}

void fp_log_shutdown(void)
{
	pthread_mutex_lock(&log_mu);
	if (log_file) fclose(log_file);
	log_file = NULL;
	log_level = FP_LOG_INFO;
	log_json = 0;
	log_color_opt = -1;
	log_site[0] = '\0';
	log_round = -1;
	pthread_mutex_unlock(&log_mu);
}

enum fp_log_level fp_log_get_level(void)
{
	pthread_mutex_lock(&log_mu);
	enum fp_log_level l = log_level;
	pthread_mutex_unlock(&log_mu);
	return l;
}

void fp_log_set_site(const char *site_id)
{
	pthread_mutex_lock(&log_mu);
	snprintf(log_site, sizeof log_site, "%s", site_id ? site_id : "");
	pthread_mutex_unlock(&log_mu);
}

void fp_log_set_round(long round)
{
	pthread_mutex_lock(&log_mu);
	log_round = round;
	pthread_mutex_unlock(&log_mu);
}

void fp_time_utc_iso(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
}

/* Colour only for a TTY, and never when NO_COLOR is present (any value). */
static int use_color(FILE *sink)
{
	if (log_color_opt == 0) return 0;
	if (log_color_opt == 1) return 1;
	if (getenv("NO_COLOR") != NULL) return 0;
	return isatty(fileno(sink));
}

static void format_json(char *line, size_t size, const char *ts, enum fp_log_level lvl,
                        const char *msg)
{
	json_t *o = json_object();
	char *s = NULL;
	if (o) {
		json_object_set_new(o, "ts", json_string(ts));
		json_object_set_new(o, "level", json_string(level_names[lvl]));
		if (log_site[0]) json_object_set_new(o, "site", json_string(log_site));
		if (log_round >= 0) json_object_set_new(o, "round", json_integer(log_round));
		/* json_stringn-free path: messages are text; invalid UTF-8 is replaced below. */
		json_t *m = json_string(msg);
		if (!m) m = json_string("(message was not valid UTF-8)");
		json_object_set_new(o, "msg", m);
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
	}
	snprintf(line, size, "%s\n", s ? s : "{\"level\":\"error\",\"msg\":\"log formatting failed\"}");
	free(s);
}

void fp_vlog(enum fp_log_level lvl, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	char line[LOG_LINE_MAX + 256];
	char ts[40];
	if ((unsigned)lvl >= FP_LOG_OFF) return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	/* One event, one line: fold embedded newlines. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r') *p = ' ';
	fp_time_utc_iso(ts, sizeof ts);

	pthread_mutex_lock(&log_mu);
	if (lvl < log_level) {
		pthread_mutex_unlock(&log_mu);
		return;
	}
	FILE *sink = log_file ? log_file : stderr;
	if (log_json) {
		format_json(line, sizeof line, ts, lvl, msg);
	} else {
		static const char *const colors[] = {"\x1b[2m", "\x1b[32m", "\x1b[33m", "\x1b[1;31m"};
		static const char *const tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
		char ctx[128] = "";
		if (log_site[0] && log_round >= 0)
			snprintf(ctx, sizeof ctx, " [site=%s round=%ld]", log_site, log_round);
		else if (log_site[0])
			snprintf(ctx, sizeof ctx, " [site=%s]", log_site);
		else if (log_round >= 0)
			snprintf(ctx, sizeof ctx, " [round=%ld]", log_round);
		if (use_color(sink))
			snprintf(line, sizeof line, "%s %s%s\x1b[0m%s %s\n", ts, colors[lvl], tags[lvl], ctx, msg);
		else
			snprintf(line, sizeof line, "%s %s%s %s\n", ts, tags[lvl], ctx, msg);
	}
	fputs(line, sink);
	fflush(sink);
	pthread_mutex_unlock(&log_mu);
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
	const struct fp_error *e = fp_error_last();
	fp_log(FP_LOG_ERROR, "%s: %s", what ? what : "error", e->msg[0] ? e->msg : fp_status_str(e->code));
}
