/*
 * fp_buf.h: a growable byte buffer with a hard cap (for reading lengths from
 * files and sockets: a buffer never grows past the cap the caller documents).
 * init/close on caller storage. close accepts a zeroed or closed buffer.
 */
#ifndef FP_BUF_H
#define FP_BUF_H

#include <stddef.h>

#include "fp_status.h"

struct fp_buf {
	char *data;   /* owned; NUL-terminated after each append */
	size_t len;
	size_t cap;   /* allocated */
	size_t limit; /* maximum len; appends beyond it fail with FP_ERR_LIMIT */
};

void fp_buf_init(struct fp_buf *b, size_t limit);
enum fp_status fp_buf_append(struct fp_buf *b, const void *data, size_t len);
enum fp_status fp_buf_printf(struct fp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fp_buf_reset(struct fp_buf *b);
void fp_buf_close(struct fp_buf *b);

#endif
