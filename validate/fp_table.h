/*
 * fp_table.h: a CSV file with a header of column names, for `fedpath stats`.
 *
 * RFC 4180: comma-separated, fields may be double-quoted ("" is a quote),
 * LF or CRLF line ends, the first record names the columns. Every error names
 * the place as file:line:column (1-based; line counts physical lines, so a
 * quoted field spanning lines is reported where it starts) and the column's
 * name. Limits, checked before allocating: FP_TABLE_MAX_BYTES per file,
 * FP_TABLE_MAX_COLUMNS columns. The table owns its text; getters copy out.
 */
#ifndef FP_TABLE_H
#define FP_TABLE_H

#include <stddef.h>

#include "fp_status.h"

#define FP_TABLE_MAX_BYTES ((size_t)1 << 30)
#define FP_TABLE_MAX_COLUMNS 4096

struct fp_table;

enum fp_status fp_table_load(const char *path, struct fp_table **out);
void fp_table_destroy(struct fp_table *t);
size_t fp_table_rows(const struct fp_table *t);
/* 1 when the column exists. */
int fp_table_has(const struct fp_table *t, const char *column);

/* out: (rows). Missing cells (empty or NA), text, NaN and Inf are errors
 * (FP_ERR_FORMAT, FP_ERR_NUMERIC) naming file:line:column. */
enum fp_status fp_table_numeric(const struct fp_table *t, const char *column, double *out);
/* Cells must be 0 or 1. out: (rows). */
enum fp_status fp_table_binary(const struct fp_table *t, const char *column, unsigned char *out);
/* Any non-empty text; equal texts get equal ids 0..levels-1 in order of
 * first appearance. out: (rows). */
enum fp_status fp_table_factor(const struct fp_table *t, const char *column, int *out, size_t *levels);

/* Writes "file:line:column" of a data cell (row 0-based) into buf, for
 * errors found after reading (a negative time). */
void fp_table_where(const struct fp_table *t, const char *column, size_t row, char *buf, size_t size);

/* Borrowed text of a cell (row 0-based), "" when the column is absent or the
 * row out of range; valid while the table lives. */
const char *fp_table_text(const struct fp_table *t, const char *column, size_t row);

#endif
