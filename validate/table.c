/*
 * table.c: the CSV reader behind fp_table.h. The file is read whole, fields
 * are unquoted in place and NUL-terminated; each row keeps pointers to its
 * fields and the physical line it started on.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fp_common.h"
#include "fp_table.h"

struct fp_table {
	char *path;
	char *text;      /* owned file contents, fields NUL-terminated in place */
	size_t ncol, nrow;
	char **cells;    /* (nrow + 1, ncol): header first */
	size_t *line;    /* (nrow + 1): physical line of each record */
};

size_t fp_table_rows(const struct fp_table *t) { return t->nrow; }

void fp_table_destroy(struct fp_table *t)
{
	if (!t) return;
	free(t->path);
	free(t->text);
	free(t->cells);
	free(t->line);
	free(t);
}

/* Splits one record starting at *pos; stores up to max fields. Returns the
 * field count, advances *pos past the line end and *lineno past the lines. */
static enum fp_status split_record(struct fp_table *t, char **pos, size_t *lineno, char **fields, size_t max,
                                   size_t *count)
{
	char *p = *pos, *w;
	size_t nf = 0, start_line = *lineno;
	for (;;) {
		char *field = p;
		w = p;
		if (*p == '"') {
			p++;
			for (;;) {
				if (*p == '\0')
					return FP_FAIL(FP_ERR_FORMAT, "%s:%zu:%zu: unterminated quoted field", t->path, start_line, nf + 1);
				if (*p == '"') {
					if (p[1] == '"') {
						*w++ = '"';
						p += 2;
						continue;
					}
					p++;
					break;
				}
				if (*p == '\n') (*lineno)++;
				*w++ = *p++;
			}
			if (*p != ',' && *p != '\n' && *p != '\r' && *p != '\0')
				return FP_FAIL(FP_ERR_FORMAT, "%s:%zu:%zu: text after a closing quote", t->path, start_line, nf + 1);
		} else {
			while (*p != ',' && *p != '\n' && *p != '\r' && *p != '\0') *w++ = *p++;
		}
		char sep = *p;
		if (nf < max) fields[nf] = field;
		nf++;
		if (sep == ',') {
			*w = '\0';
			p++;
			continue;
		}
		if (sep == '\r' && p[1] == '\n') p++;
		if (*p != '\0') p++;
		*w = '\0';
		break;
	}
	(*lineno)++;
	*pos = p;
	*count = nf;
	return FP_OK;
}

enum fp_status fp_table_load(const char *path, struct fp_table **out)
{
	enum fp_status st = FP_OK;
	struct fp_table *t = NULL;
	size_t len = 0;
	*out = NULL;
	t = calloc(1, sizeof *t);
	if (!t) return FP_FAIL(FP_ERR_NOMEM, "table %s", path);
	t->path = strdup(path);
	if (!t->path) {
		st = FP_FAIL(FP_ERR_NOMEM, "table %s", path);
		goto fail;
	}
	FP_CHECK(st, fp_file_read_all(path, FP_TABLE_MAX_BYTES, &t->text, &len));
	if (memchr(t->text, '\0', len)) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: contains a NUL byte (not a text CSV file)", path);
		goto fail;
	}
	/* Upper bounds: records <= line ends + 1 (LF, CRLF or a lone CR, as
	 * split_record ends a record at each), header fields <= commas + 1. */
	size_t nl = 1, commas = 1;
	for (size_t i = 0; i < len; i++) {
		char ch = t->text[i];
		int end = ch == '\n' || (ch == '\r' && t->text[i + 1] != '\n');
		if (nl == 1) commas += ch == ',';
		nl += end;
	}
	if (commas > FP_TABLE_MAX_COLUMNS) {
		st = FP_FAIL(FP_ERR_LIMIT, "%s:1: more than %d columns", path, FP_TABLE_MAX_COLUMNS);
		goto fail;
	}
	char *hdr[FP_TABLE_MAX_COLUMNS];
	char *pos = t->text;
	size_t lineno = 1, nf = 0;
	if (len == 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: empty file (expected a header line)", path);
		goto fail;
	}
	FP_CHECK(st, split_record(t, &pos, &lineno, hdr, FP_TABLE_MAX_COLUMNS, &nf));
	t->ncol = nf;
	size_t cap_cells;
	FP_CHECK(st, fp_size_mul(nl + 1, t->ncol, &cap_cells, "CSV cells"));
	FP_CHECK(st, fp_alloc_array(cap_cells, sizeof *t->cells, (void **)&t->cells, "CSV cells"));
	FP_CHECK(st, fp_alloc_array(nl + 1, sizeof *t->line, (void **)&t->line, "CSV lines"));
	for (size_t j = 0; j < nf; j++) {
		t->cells[j] = hdr[j];
		if (hdr[j][0] == '\0') {
			st = FP_FAIL(FP_ERR_FORMAT, "%s:1:%zu: empty column name", path, j + 1);
			goto fail;
		}
		for (size_t i = 0; i < j; i++)
			if (strcmp(hdr[i], hdr[j]) == 0) {
				st = FP_FAIL(FP_ERR_FORMAT, "%s:1:%zu: column '%s' appears twice", path, j + 1, hdr[j]);
				goto fail;
			}
	}
	t->line[0] = 1;
	t->nrow = 0;
	while (*pos != '\0') {
		size_t start = lineno;
		if (*pos == '\n' || (*pos == '\r' && pos[1] == '\n')) { /* blank line */
			pos += *pos == '\r' ? 2 : 1;
			lineno++;
			continue;
		}
		char **row = t->cells + (t->nrow + 1) * t->ncol;
		FP_CHECK(st, split_record(t, &pos, &lineno, row, t->ncol, &nf));
		if (nf != t->ncol) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s:%zu: %zu fields, but the header has %zu", path, start, nf, t->ncol);
			goto fail;
		}
		t->nrow++;
		t->line[t->nrow] = start;
	}
	*out = t;
	return FP_OK;
fail:
	fp_table_destroy(t);
	return st;
}

static enum fp_status find_column(const struct fp_table *t, const char *column, size_t *col)
{
	for (size_t j = 0; j < t->ncol; j++)
		if (strcmp(t->cells[j], column) == 0) {
			*col = j;
			return FP_OK;
		}
	char names[512];
	size_t used = 0;
	names[0] = '\0';
	for (size_t j = 0; j < t->ncol && used + 4 < sizeof names; j++) {
		int k = snprintf(names + used, sizeof names - used, "%s%s", j ? ", " : "", t->cells[j]);
		if (k < 0) break;
		used += (size_t)k;
		if (used >= sizeof names) used = sizeof names - 1;
	}
	return FP_FAIL(FP_ERR_NOT_FOUND, "%s: no column '%s' (columns: %s)", t->path, column, names);
}

int fp_table_has(const struct fp_table *t, const char *column)
{
	for (size_t j = 0; j < t->ncol; j++)
		if (strcmp(t->cells[j], column) == 0) return 1;
	return 0;
}

static const char *cell(const struct fp_table *t, size_t row, size_t col)
{
	return t->cells[(row + 1) * t->ncol + col];
}

static int is_missing(const char *s)
{
	while (*s == ' ') s++;
	return *s == '\0' || strcmp(s, "NA") == 0;
}

enum fp_status fp_table_numeric(const struct fp_table *t, const char *column, double *out)
{
	size_t col = 0;
	FP_TRY(find_column(t, column, &col));
	for (size_t r = 0; r < t->nrow; r++) {
		const char *s = cell(t, r, col);
		size_t ln = t->line[r + 1];
		if (is_missing(s))
			return FP_FAIL(FP_ERR_FORMAT, "%s:%zu:%zu: column '%s': missing value", t->path, ln, col + 1, column);
		char *end;
		errno = 0;
		double v = strtod(s, &end);
		while (*end == ' ') end++;
		if (end == s || *end != '\0')
			return FP_FAIL(FP_ERR_FORMAT, "%s:%zu:%zu: column '%s': '%s' is not a number", t->path, ln, col + 1, column, s);
		if (!isfinite(v))
			return FP_FAIL(FP_ERR_NUMERIC, "%s:%zu:%zu: column '%s': '%s' is not finite", t->path, ln, col + 1, column, s);
		out[r] = v;
	}
	return FP_OK;
}

enum fp_status fp_table_binary(const struct fp_table *t, const char *column, unsigned char *out)
{
	size_t col = 0;
	FP_TRY(find_column(t, column, &col));
	for (size_t r = 0; r < t->nrow; r++) {
		const char *s = cell(t, r, col);
		char *end;
		double v = strtod(s, &end);
		while (*end == ' ') end++;
		if (is_missing(s) || end == s || *end != '\0' || !(v == 0 || v == 1))
			return FP_FAIL(FP_ERR_FORMAT, "%s:%zu:%zu: column '%s': '%s' is not 0 or 1", t->path, t->line[r + 1],
			               col + 1, column, s);
		out[r] = (unsigned char)v;
	}
	return FP_OK;
}

enum fp_status fp_table_factor(const struct fp_table *t, const char *column, int *out, size_t *levels)
{
	size_t col = 0, nl = 0;
	FP_TRY(find_column(t, column, &col));
	/* Levels by first appearance; a linear scan per new level is fine for the
	 * tens of centres this serves, so keep a sorted index only if it matters. */
	const char **lv = NULL;
	FP_TRY(fp_alloc_array(t->nrow ? t->nrow : 1, sizeof *lv, (void **)&lv, "CSV levels"));
	for (size_t r = 0; r < t->nrow; r++) {
		const char *s = cell(t, r, col);
		if (is_missing(s)) {
			free(lv);
			return FP_FAIL(FP_ERR_FORMAT, "%s:%zu:%zu: column '%s': missing value", t->path, t->line[r + 1], col + 1,
			               column);
		}
		size_t k = 0;
		if (r > 0 && strcmp(s, cell(t, r - 1, col)) == 0) k = (size_t)out[r - 1];
		else {
			while (k < nl && strcmp(lv[k], s) != 0) k++;
			if (k == nl) lv[nl++] = s;
		}
		out[r] = (int)k;
	}
	free(lv);
	*levels = nl;
	return FP_OK;
}

const char *fp_table_text(const struct fp_table *t, const char *column, size_t row)
{
	for (size_t j = 0; j < t->ncol; j++)
		if (strcmp(t->cells[j], column) == 0) return row < t->nrow ? cell(t, row, j) : "";
	return "";
}

void fp_table_where(const struct fp_table *t, const char *column, size_t row, char *buf, size_t size)
{
	size_t col = 0;
	while (col < t->ncol && strcmp(t->cells[col], column) != 0) col++;
	snprintf(buf, size, "%s:%zu:%zu", t->path, row < t->nrow ? t->line[row + 1] : 0, col + 1);
}
