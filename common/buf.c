/*
 * buf.c: growable byte buffer with a hard cap (fp_buf.h).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_buf.h"

void fp_buf_init(struct fp_buf *b, size_t limit)
{
	memset(b, 0, sizeof *b);
	b->limit = limit;
}

static enum fp_status reserve(struct fp_buf *b, size_t extra)
{
	if (extra > b->limit || b->len > b->limit - extra)
		return FP_FAIL(FP_ERR_LIMIT, "buffer would grow past its limit of %zu bytes", b->limit);
	size_t need = b->len + extra + 1;
	if (need <= b->cap) return FP_OK;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *d = realloc(b->data, cap);
	if (!d) return FP_FAIL(FP_ERR_NOMEM, "cannot grow buffer to %zu bytes", cap);
	b->data = d;
	b->cap = cap;
	return FP_OK;
}

enum fp_status fp_buf_append(struct fp_buf *b, const void *data, size_t len)
{
	FP_TRY(reserve(b, len));
	if (len) memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return FP_OK;
}

enum fp_status fp_buf_printf(struct fp_buf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_end(ap2);
		return FP_FAIL(FP_ERR_INVALID_ARG, "bad format string");
	}
	enum fp_status st = reserve(b, (size_t)n);
	if (st == FP_OK) {
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
		b->len += (size_t)n;
	}
	va_end(ap2);
	return st;
}

void fp_buf_reset(struct fp_buf *b)
{
	b->len = 0;
	if (b->data) b->data[0] = '\0';
}

void fp_buf_close(struct fp_buf *b)
{
	if (!b) return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
