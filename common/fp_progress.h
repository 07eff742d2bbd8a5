/*
 * fp_progress.h: progress of long jobs.
 *
 * On a TTY: one redrawn line "label [#####.....] 512/1024 50% 37.2/s ETA 0:14".
 * Elsewhere (logs, CI): a plain log line at INFO at most every `interval`
 * seconds (default 10) and one at the end, so a log file is never flooded.
 * Updates are cheap (a clock read at most); thread-safe for one progress
 * object updated from several threads through fp_progress_add().
 */
#ifndef FP_PROGRESS_H
#define FP_PROGRESS_H

#include <stdint.h>

#include "fp_status.h"

struct fp_progress; /* opaque */

/* total 0 means unknown (no percentage or ETA). `unit` e.g. "tiles". */
enum fp_status fp_progress_create(const char *label, uint64_t total, const char *unit,
                                  struct fp_progress **out);
/* Plain-line interval in seconds (>= 0.1); also forces plain mode when force_plain. */
void fp_progress_set_interval(struct fp_progress *p, double seconds, int force_plain);
void fp_progress_set_total(struct fp_progress *p, uint64_t total);
void fp_progress_add(struct fp_progress *p, uint64_t n);
void fp_progress_set(struct fp_progress *p, uint64_t done);
/* Prints the final line ("... done in 12.3 s"). */
void fp_progress_finish(struct fp_progress *p);
/* NULL-safe; finishes first if not finished. */
void fp_progress_destroy(struct fp_progress *p);

/* Formats a seconds count as H:MM:SS or M:SS (buf >= 16). */
void fp_format_duration(double seconds, char *buf, unsigned size);

/* Monotonic seconds. */
double fp_now_seconds(void);

#endif
