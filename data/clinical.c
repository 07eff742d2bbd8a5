/*
 * clinical.c: the clinical CSV loader (contract in fp_clinical.h, schema in
 * docs/CLINICAL_SCHEMA.md). One pass: split lines into cells (with their
 * byte columns), map the header to the schema, type- and range-check each
 * cell, then the cross-row rules. Errors are collected, not stopped at, so a
 * data manager fixes a file in one round.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp_clinical.h"
#include "fp_file.h"

enum ctype { C_STR, C_REAL, C_INT, C_ENUM, C_SLIDES };

struct col {
	const char *name;
	enum ctype type;
	int required;
	double lo, hi;          /* inclusive unless lo_open */
	int lo_open;
	const char *const *choices;
	size_t off;             /* in struct fp_clinical_row */
};

static const char *const SEX[] = {"M", "F", NULL};
static const char *const TNM[] = {"IA", "IB", "II", "IIIA", "IIIB", NULL};
static const char *const CP[] = {"A", "B", NULL};
static const char *const REG[] = {"surgery", "tace", "tace_tki", NULL};

#define OFF(f) offsetof(struct fp_clinical_row, f)
static const struct col COLS[] = {
	{"patient_id", C_STR, 1, 1, 64, 0, NULL, OFF(patient_id)},
	{"centre", C_STR, 1, 1, 32, 0, NULL, OFF(centre)},
	{"slide_file", C_SLIDES, 1, 0, 0, 0, NULL, 0},
	{"age", C_REAL, 0, 18, 100, 0, NULL, OFF(age)},
	{"sex", C_ENUM, 0, 0, 0, 0, SEX, OFF(sex)},
	{"tnm_stage", C_ENUM, 0, 0, 0, 0, TNM, OFF(tnm_stage)},
	{"child_pugh", C_ENUM, 0, 0, 0, 0, CP, OFF(child_pugh)},
	{"afp_ng_ml", C_REAL, 0, 0, 1e6, 0, NULL, OFF(afp_ng_ml)},
	{"tumour_size_cm", C_REAL, 0, 0.1, 30, 0, NULL, OFF(tumour_size_cm)},
	{"mvi", C_INT, 0, 0, 1, 0, NULL, OFF(mvi)},
	{"edmondson_grade", C_INT, 0, 1, 4, 0, NULL, OFF(edmondson_grade)},
	{"regimen", C_ENUM, 1, 0, 0, 0, REG, OFF(regimen)},
	{"rfs_months", C_REAL, 1, 0, 240, 1, NULL, OFF(rfs_months)},
	{"rfs_event", C_INT, 1, 0, 1, 0, NULL, OFF(rfs_event)},
	{"os_months", C_REAL, 0, 0, 240, 1, NULL, OFF(os_months)},
	{"os_event", C_INT, 0, 0, 1, 0, NULL, OFF(os_event)},
	{"orr", C_INT, 0, 0, 1, 0, NULL, OFF(orr)},
};
#define NCOLS (sizeof COLS / sizeof COLS[0])

struct fp_clinical {
	char *dir;
	struct fp_clinical_row *rows;
	size_t n, cap;
};

struct ctx {
	const char *name;
	FILE *diag;
	size_t n_errors;
	char first[512];
};

static void report(struct ctx *x, size_t line, size_t col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report(struct ctx *x, size_t line, size_t col, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (x->n_errors == 0) snprintf(x->first, sizeof x->first, "%s:%zu:%zu: %s", x->name, line, col, msg);
	if (x->diag && x->n_errors < FP_CLINICAL_MAX_ERRORS) fprintf(x->diag, "%s:%zu:%zu: %s\n", x->name, line, col, msg);
	x->n_errors++;
}

struct cell {
	char *text; /* NUL-terminated, unquoted (points into the line copy) */
	size_t col; /* 1-based byte column */
};

/* Splits one line (modified in place) into cells. Returns the count, or -1
 * after reporting a quoting error. */
static long split(struct ctx *x, char *line, size_t lineno, struct cell *cells, size_t max)
{
	size_t n = 0;
	char *p = line;
	for (;;) {
		if (n == max) {
			report(x, lineno, (size_t)(p - line) + 1, "more than %zu cells", max);
			return -1;
		}
		cells[n].col = (size_t)(p - line) + 1;
		if (*p == '"') {
			char *w = p, *r = p + 1;
			cells[n].text = w;
			for (;;) {
				if (*r == 0) {
					report(x, lineno, cells[n].col, "unterminated quoted cell");
					return -1;
				}
				if (*r == '"') {
					if (r[1] == '"') {
						*w++ = '"';
						r += 2;
						continue;
					}
					r++;
					break;
				}
				*w++ = *r++;
			}
			if (*r != ',' && *r != 0) {
				report(x, lineno, (size_t)(r - line) + 1, "text after a closing quote");
				return -1;
			}
			int end = *r == 0;
			*w = 0;
			n++;
			if (end) break;
			p = r + 1;
		} else {
			cells[n].text = p;
			char *c = strchr(p, ',');
			n++;
			if (!c) break;
			*c = 0;
			p = c + 1;
		}
	}
	return (long)n;
}

static int is_missing(const char *s) { return s[0] == 0 || strcmp(s, "NA") == 0; }

static int valid_chars(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s)) return 0;
	return 1;
}

static enum fp_status add_slides(struct ctx *x, struct fp_clinical_row *r, const char *text, size_t line, size_t col)
{
	const char *p = text;
	for (;;) {
		const char *e = strchr(p, ';');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		size_t c = col + (size_t)(p - text);
		if (len == 0) report(x, line, c, "slide_file has an empty name");
		else if (p[0] == '/' || p[0] == '\\') report(x, line, c, "slide_file '%.*s' must be relative to slides/", (int)len, p);
		else {
			int bad = 0;
			for (size_t i = 0; i + 1 < len + 1; i++) {
				if ((i == 0 || p[i - 1] == '/') && len - i >= 2 && p[i] == '.' && p[i + 1] == '.' &&
				    (len - i == 2 || p[i + 2] == '/'))
					bad = 1;
				if ((unsigned char)p[i] < 0x20) bad = 1;
			}
			if (bad) report(x, line, c, "slide_file '%.*s' leaves the slides/ folder or holds control characters", (int)len, p);
			else {
				char **ns = realloc(r->slides, (r->n_slides + 1) * sizeof *ns);
				if (!ns) return FP_FAIL(FP_ERR_NOMEM, "slide list");
				r->slides = ns;
				r->slides[r->n_slides] = strndup(p, len);
				if (!r->slides[r->n_slides]) return FP_FAIL(FP_ERR_NOMEM, "slide name");
				r->n_slides++;
			}
		}
		if (!e) break;
		p = e + 1;
	}
	return FP_OK;
}

static void set_missing(struct fp_clinical_row *r)
{
	for (size_t k = 0; k < NCOLS; k++) {
		const struct col *c = &COLS[k];
		if (c->type == C_REAL) *(double *)((char *)r + c->off) = NAN;
		else if (c->type == C_INT || c->type == C_ENUM) *(int *)((char *)r + c->off) = -1;
	}
}

static enum fp_status parse_cell(struct ctx *x, const struct col *c, struct fp_clinical_row *r, const struct cell *cell,
                                 size_t line)
{
	const char *s = cell->text;
	if (is_missing(s)) {
		if (c->required) report(x, line, cell->col, "%s is required but missing", c->name);
		return FP_OK;
	}
	char *end;
	switch (c->type) {
	case C_STR: {
		size_t len = strlen(s);
		const char *extra = strcmp(c->name, "patient_id") == 0 ? "_.-" : "_-";
		if (len < (size_t)c->lo || len > (size_t)c->hi || !valid_chars(s, extra))
			report(x, line, cell->col, "%s '%s' must be %g-%g characters of [A-Za-z0-9%s]", c->name, s, c->lo, c->hi, extra);
		else
			memcpy((char *)r + c->off, s, len + 1);
		break;
	}
	case C_REAL: {
		errno = 0;
		double v = strtod(s, &end);
		if (end == s || *end || errno || !isfinite(v)) {
			report(x, line, cell->col, "%s '%s' is not a number", c->name, s);
			break;
		}
		if ((c->lo_open ? !(v > c->lo) : !(v >= c->lo)) || !(v <= c->hi)) {
			report(x, line, cell->col, "%s %s outside %s%g, %g]", c->name, s, c->lo_open ? "(" : "[", c->lo, c->hi);
			break;
		}
		*(double *)((char *)r + c->off) = v;
		break;
	}
	case C_INT: {
		errno = 0;
		long v = strtol(s, &end, 10);
		if (end == s || *end || errno) {
			report(x, line, cell->col, "%s '%s' is not an integer", c->name, s);
			break;
		}
		if (v < (long)c->lo || v > (long)c->hi) {
			report(x, line, cell->col, "%s %ld outside %g-%g", c->name, v, c->lo, c->hi);
			break;
		}
		*(int *)((char *)r + c->off) = (int)v;
		break;
	}
	case C_ENUM: {
		int found = -1;
		for (int i = 0; c->choices[i]; i++)
			if (strcmp(s, c->choices[i]) == 0) found = i;
		if (found < 0) {
			char list[128] = "";
			for (int i = 0; c->choices[i]; i++) {
				strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
				strncat(list, c->choices[i], sizeof list - strlen(list) - 1);
			}
			report(x, line, cell->col, "%s '%s' is not one of %s", c->name, s, list);
		} else {
			*(int *)((char *)r + c->off) = found;
		}
		break;
	}
	case C_SLIDES:
		return add_slides(x, r, s, line, cell->col);
	}
	return FP_OK;
}

static void free_row(struct fp_clinical_row *r)
{
	for (size_t i = 0; i < r->n_slides; i++) free(r->slides[i]);
	free(r->slides);
}

enum fp_status fp_clinical_load_string(const char *text, size_t len, const char *name, FILE *diag,
                                       struct fp_clinical **out)
{
	enum fp_status st = FP_OK;
	struct ctx x = {.name = name, .diag = diag};
	struct fp_clinical *t = calloc(1, sizeof *t);
	char *line = NULL;
	struct cell *cells = NULL;
	int *colmap = NULL; /* file column -> schema index, -1 ignored (x_) */
	size_t ncol = 0;
	*out = NULL;
	if (!t) return FP_FAIL(FP_ERR_NOMEM, "clinical table");
	line = malloc(FP_CLINICAL_MAX_LINE + 1);
	cells = malloc(sizeof *cells * 512);
	colmap = malloc(sizeof *colmap * 512);
	if (!line || !cells || !colmap) {
		st = FP_FAIL(FP_ERR_NOMEM, "clinical parser");
		goto fail;
	}
	size_t pos = 0, lineno = 0;
	if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB && (unsigned char)text[2] == 0xBF) pos = 3;
	int have[NCOLS] = {0};
	while (pos < len) {
		lineno++;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
		size_t next = pos + ll + (nl ? 1 : 0);
		if (ll && text[pos + ll - 1] == '\r') ll--;
		if (ll > FP_CLINICAL_MAX_LINE) {
			report(&x, lineno, 1, "line longer than %d bytes", FP_CLINICAL_MAX_LINE);
			pos = next;
			if (lineno == 1) break;
			continue;
		}
		memcpy(line, text + pos, ll);
		line[ll] = 0;
		pos = next;
		if (memchr(line, 0, ll)) {
			report(&x, lineno, 1, "NUL byte in line");
			continue;
		}
		if (lineno > 1 && ll == 0) continue; /* blank lines (often the last) */
		long nc = split(&x, line, lineno, cells, 512);
		if (nc < 0) {
			if (lineno == 1) break;
			continue;
		}
		if (lineno == 1) {
			ncol = (size_t)nc;
			for (size_t i = 0; i < ncol; i++) {
				colmap[i] = -1;
				int k = -1;
				for (size_t j = 0; j < NCOLS; j++)
					if (strcmp(cells[i].text, COLS[j].name) == 0) k = (int)j;
				if (k >= 0) {
					if (have[k]) report(&x, 1, cells[i].col, "duplicate column %s", cells[i].text);
					have[k] = 1;
					colmap[i] = k;
				} else if (strncmp(cells[i].text, "x_", 2) != 0) {
					report(&x, 1, cells[i].col, "unknown column '%s' (site-specific columns must start with x_)", cells[i].text);
				}
			}
			for (size_t j = 0; j < NCOLS; j++)
				if (COLS[j].required && !have[j]) report(&x, 1, 1, "required column %s is missing", COLS[j].name);
			if (x.n_errors) break;
			continue;
		}
		if ((size_t)nc != ncol) {
			report(&x, lineno, cells[nc - 1].col, "%ld cells, the header has %zu", nc, ncol);
			continue;
		}
		if (t->n == t->cap) {
			size_t nc2 = t->cap ? t->cap * 2 : 64;
			struct fp_clinical_row *nr = realloc(t->rows, nc2 * sizeof *nr);
			if (!nr) {
				st = FP_FAIL(FP_ERR_NOMEM, "clinical rows");
				goto fail;
			}
			t->rows = nr;
			t->cap = nc2;
		}
		struct fp_clinical_row *r = &t->rows[t->n++];
		memset(r, 0, sizeof *r);
		set_missing(r);
		r->line = lineno;
		size_t os_col = 0;
		for (size_t i = 0; i < ncol; i++) {
			if (colmap[i] < 0) continue;
			FP_CHECK(st, parse_cell(&x, &COLS[colmap[i]], r, &cells[i], lineno));
			if (strcmp(COLS[colmap[i]].name, "os_months") == 0) os_col = cells[i].col;
		}
		if (!isnan(r->os_months) && !isnan(r->rfs_months) && r->os_months < r->rfs_months)
			report(&x, lineno, os_col, "os_months %g is less than rfs_months %g", r->os_months, r->rfs_months);
		if (!isnan(r->os_months) && r->os_event < 0)
			report(&x, lineno, os_col, "os_event is required when os_months is present");
		if (r->patient_id[0]) {
			for (size_t j = 0; j + 1 < t->n; j++)
				if (strcmp(t->rows[j].patient_id, r->patient_id) == 0) {
					report(&x, lineno, 1, "patient_id %s repeats line %zu", r->patient_id, t->rows[j].line);
					break;
				}
		}
		if (r->centre[0] && t->n > 1 && t->rows[0].centre[0] && strcmp(t->rows[0].centre, r->centre) != 0)
			report(&x, lineno, 1, "centre %s differs from %s on line %zu", r->centre, t->rows[0].centre, t->rows[0].line);
	}
	if (lineno == 0) report(&x, 1, 1, "empty file (a header line is required)");
	if (x.n_errors) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s (%zu error%s in all)", x.first, x.n_errors, x.n_errors == 1 ? "" : "s");
		goto fail;
	}
	{
		const char *slash = strrchr(name, '/');
		t->dir = slash ? strndup(name, (size_t)(slash - name)) : strdup(".");
		if (!t->dir) {
			st = FP_FAIL(FP_ERR_NOMEM, "clinical dir");
			goto fail;
		}
	}
	*out = t;
	t = NULL;
fail:
	free(line);
	free(cells);
	free(colmap);
	fp_clinical_destroy(t);
	return st;
}

enum fp_status fp_clinical_load(const char *path, FILE *diag, struct fp_clinical **out)
{
	char *data = NULL;
	size_t len = 0;
	*out = NULL;
	enum fp_status st = fp_file_read_all(path, FP_CLINICAL_MAX_BYTES, &data, &len);
	if (st != FP_OK) return st;
	st = fp_clinical_load_string(data, len, path, diag, out);
	free(data);
	return st;
}

void fp_clinical_destroy(struct fp_clinical *c)
{
	if (!c) return;
	for (size_t i = 0; i < c->n; i++) free_row(&c->rows[i]);
	free(c->rows);
	free(c->dir);
	free(c);
}

size_t fp_clinical_count(const struct fp_clinical *c) { return c->n; }
const struct fp_clinical_row *fp_clinical_row(const struct fp_clinical *c, size_t i) { return i < c->n ? &c->rows[i] : NULL; }

long fp_clinical_find(const struct fp_clinical *c, const char *patient_id)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->rows[i].patient_id, patient_id) == 0) return (long)i;
	return -1;
}

enum fp_status fp_clinical_slide_path(const struct fp_clinical *c, const char *name, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "%s/slides/%s", c->dir, name) >= size)
		return FP_FAIL(FP_ERR_INVALID_ARG, "slide path too long: %s/slides/%s", c->dir, name);
	return FP_OK;
}
