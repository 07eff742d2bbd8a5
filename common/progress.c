/*
 * progress.c: progress display for long jobs (fp_progress.h).
 *
 * TTY mode redraws one line on stderr at most 10 times a second; plain mode
 * logs a line every `interval` seconds. Counters are atomics so workers can
 * add without a lock; drawing takes the mutex.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fp_log.h"
#include "fp_progress.h"

struct fp_progress {
	char label[96];
	char unit[24];
	_Atomic uint64_t done;
	_Atomic uint64_t total;
	double start;
	double last_draw;
	double interval;
	int tty;
	int finished;
	pthread_mutex_t mu;
};

double fp_now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void fp_format_duration(double s, char *buf, unsigned size)
{
	if (!(s >= 0) || s > 360000 * 99.0) {
		snprintf(buf, size, "--:--");
		return;
	}
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
	else
		snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

enum fp_status fp_progress_create(const char *label, uint64_t total, const char *unit,
                                  struct fp_progress **out)
{
	struct fp_progress *p = calloc(1, sizeof *p);
	if (!p) return FP_FAIL(FP_ERR_NOMEM, "progress: out of memory");
	snprintf(p->label, sizeof p->label, "%s", label ? label : "");
	snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "items");
	atomic_store(&p->total, total);
	p->start = fp_now_seconds();
	p->last_draw = p->start;
	p->interval = 10.0;
	p->tty = isatty(STDERR_FILENO) && getenv("NO_COLOR") == NULL && getenv("CI") == NULL;
	pthread_mutex_init(&p->mu, NULL);
	*out = p;
	return FP_OK;
}

void fp_progress_set_interval(struct fp_progress *p, double seconds, int force_plain)
{
	if (!p) return;
	p->interval = seconds < 0.1 ? 0.1 : seconds;
	if (force_plain) p->tty = 0;
}

void fp_progress_set_total(struct fp_progress *p, uint64_t total)
{
	if (p) atomic_store(&p->total, total);
}

static void draw(struct fp_progress *p, double now, int final)
{
	uint64_t done = atomic_load(&p->done);
	uint64_t total = atomic_load(&p->total);
	double elapsed = now - p->start;
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	char eta[16] = "--:--";
	char el[16];
	fp_format_duration(elapsed, el, sizeof el);
	if (total > 0 && rate > 0 && done <= total) fp_format_duration((double)(total - done) / rate, eta, sizeof eta);
	double pct = total ? 100.0 * (double)done / (double)total : 0;
	if (p->tty) {
		char bar[31];
		int filled = total ? (int)(30.0 * (double)done / (double)total) : 0;
		if (filled > 30) filled = 30;
		for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
		bar[30] = '\0';
		if (total)
			fprintf(stderr, "\r%s [%s] %llu/%llu %3.0f%% %.1f %s/s %s %s%s", p->label, bar,
			        (unsigned long long)done, (unsigned long long)total, pct, rate, p->unit,
			        final ? "in" : "ETA", final ? el : eta, final ? "\n" : "\x1b[K");
		else
			fprintf(stderr, "\r%s %llu %s %.1f/s %s%s", p->label, (unsigned long long)done, p->unit, rate, el,
			        final ? "\n" : "\x1b[K");
		fflush(stderr);
	} else if (final) {
		fp_log(FP_LOG_INFO, "%s: done, %llu %s in %s (%.1f %s/s)", p->label, (unsigned long long)done, p->unit, el,
		       rate, p->unit);
	} else if (total) {
		fp_log(FP_LOG_INFO, "%s: %llu/%llu %s (%.0f%%), %.1f %s/s, ETA %s", p->label, (unsigned long long)done,
		       (unsigned long long)total, p->unit, pct, rate, p->unit, eta);
	} else {
		fp_log(FP_LOG_INFO, "%s: %llu %s, %.1f %s/s", p->label, (unsigned long long)done, p->unit, rate, p->unit);
	}
}

static void maybe_draw(struct fp_progress *p)
{
	double now = fp_now_seconds();
	double gap = p->tty ? 0.1 : p->interval;
	if (now - p->last_draw < gap) return;
	if (pthread_mutex_trylock(&p->mu) != 0) return; /* another thread is drawing */
	if (!p->finished && now - p->last_draw >= gap) {
		p->last_draw = now;
		draw(p, now, 0);
	}
	pthread_mutex_unlock(&p->mu);
}

void fp_progress_add(struct fp_progress *p, uint64_t n)
{
	if (!p) return;
	atomic_fetch_add(&p->done, n);
	maybe_draw(p);
}

void fp_progress_set(struct fp_progress *p, uint64_t done)
{
	if (!p) return;
	atomic_store(&p->done, done);
	maybe_draw(p);
}

void fp_progress_finish(struct fp_progress *p)
{
	if (!p) return;
	pthread_mutex_lock(&p->mu);
	if (!p->finished) {
		p->finished = 1;
		draw(p, fp_now_seconds(), 1);
	}
	pthread_mutex_unlock(&p->mu);
}

void fp_progress_destroy(struct fp_progress *p)
{
	if (!p) return;
	fp_progress_finish(p);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
