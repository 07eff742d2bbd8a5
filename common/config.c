/*
 * config.c: INI files through inih, checked against a typed schema
 * (fp_config.h).
 *
 * inih calls our handler once per key and, after the parse, returns the line
 * of the first error; the handler keeps the first message, and the two are
 * joined into "<file>:<line>: <message>".
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "fp_config.h"
#include "fp_log.h"

#define MAX_KEYS 512

struct parse_ctx {
	const struct fp_config_schema *schema;
	void *out;
	char msg[FP_ERROR_MSG_MAX];
	int failed;
	unsigned char seen[MAX_KEYS];
};

static const struct fp_config_key *find_key(const struct fp_config_schema *s, const char *section,
                                            const char *name, size_t *index)
{
	for (size_t i = 0; i < s->n_keys; i++) {
		if (strcmp(s->keys[i].section, section) == 0 && strcmp(s->keys[i].name, name) == 0) {
			if (index) *index = i;
			return &s->keys[i];
		}
	}
	return NULL;
}

static int section_known(const struct fp_config_schema *s, const char *section)
{
	for (size_t i = 0; i < s->n_keys; i++)
		if (strcmp(s->keys[i].section, section) == 0) return 1;
	return 0;
}

/* Parses `value` for key `k` and stores it. On error writes a message to msg. */
static int assign(const struct fp_config_key *k, const char *value, void *out, char *msg, size_t msz)
{
	char *field = (char *)out + k->offset;
	char *end = NULL;
	switch (k->type) {
	case FP_CFG_INT: {
		errno = 0;
		long v = strtol(value, &end, 10);
		if (value[0] == '\0' || *end != '\0' || errno == ERANGE) {
			snprintf(msg, msz, "%s.%s: '%s' is not an integer", k->section, k->name, value);
			return 0;
		}
		if ((double)v < k->min || (double)v > k->max) {
			snprintf(msg, msz, "%s.%s: %ld is out of range [%.17g, %.17g]", k->section, k->name, v, k->min,
			         k->max);
			return 0;
		}
		memcpy(field, &v, sizeof v);
		return 1;
	}
	case FP_CFG_DOUBLE: {
		errno = 0;
		double v = strtod(value, &end);
		if (value[0] == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v)) {
			snprintf(msg, msz, "%s.%s: '%s' is not a finite number", k->section, k->name, value);
			return 0;
		}
		if (v < k->min || v > k->max) {
			snprintf(msg, msz, "%s.%s: %s is out of range [%.17g, %.17g]", k->section, k->name, value, k->min,
			         k->max);
			return 0;
		}
		memcpy(field, &v, sizeof v);
		return 1;
	}
	case FP_CFG_BOOL: {
		static const char *const yes[] = {"true", "yes", "on", "1"};
		static const char *const no[] = {"false", "no", "off", "0"};
		for (int i = 0; i < 4; i++) {
			if (strcasecmp(value, yes[i]) == 0 || strcasecmp(value, no[i]) == 0) {
				int v = strcasecmp(value, yes[i]) == 0;
				memcpy(field, &v, sizeof v);
				return 1;
			}
		}
		snprintf(msg, msz, "%s.%s: '%s' is not a boolean (use true or false)", k->section, k->name, value);
		return 0;
	}
	case FP_CFG_STRING: {
		size_t n = strlen(value);
		if (n >= FP_CONFIG_STR_MAX) {
			snprintf(msg, msz, "%s.%s: value is %zu characters, above the limit of %d", k->section, k->name, n,
			         FP_CONFIG_STR_MAX - 1);
			return 0;
		}
		memcpy(field, value, n + 1);
		return 1;
	}
	case FP_CFG_ENUM: {
		for (int i = 0; k->choices && k->choices[i]; i++) {
			if (strcmp(value, k->choices[i]) == 0) {
				memcpy(field, &i, sizeof i);
				return 1;
			}
		}
		int off = snprintf(msg, msz, "%s.%s: '%s' is not one of:", k->section, k->name, value);
		for (int i = 0; k->choices && k->choices[i] && off > 0 && (size_t)off < msz; i++)
			off += snprintf(msg + off, msz - (size_t)off, " %s", k->choices[i]);
		return 0;
	}
	}
	snprintf(msg, msz, "%s.%s: unknown type", k->section, k->name);
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *c = user;
	size_t idx = 0;
	char msg[FP_ERROR_MSG_MAX];
	const struct fp_config_key *k = find_key(c->schema, section, name, &idx);
	if (!k) {
		if (!section_known(c->schema, section))
			snprintf(msg, sizeof msg, "unknown section [%s] (key '%s')", section, name);
		else
			snprintf(msg, sizeof msg, "unknown key '%s' in section [%s]", name, section);
		goto bad;
	}
	if (idx < MAX_KEYS && c->seen[idx]) {
		snprintf(msg, sizeof msg, "%s.%s is set twice", section, name);
		goto bad;
	}
	if (idx < MAX_KEYS) c->seen[idx] = 1;
	if (!assign(k, value, c->out, msg, sizeof msg)) goto bad;
	return 1;
bad:
	if (!c->failed) {
		c->failed = 1;
		memcpy(c->msg, msg, sizeof msg);
	}
	return 0;
}

enum fp_status fp_config_defaults(const struct fp_config_schema *schema, void *out)
{
	char msg[FP_ERROR_MSG_MAX];
	for (size_t i = 0; i < schema->n_keys; i++) {
		const struct fp_config_key *k = &schema->keys[i];
		if (!assign(k, k->def ? k->def : "", out, msg, sizeof msg))
			return FP_FAIL(FP_ERR_INTERNAL, "schema %s: bad default: %s", schema->name, msg);
	}
	return FP_OK;
}

static enum fp_status finish(struct parse_ctx *c, int rc, const char *name)
{
	if (rc == -1) return FP_FAIL(FP_ERR_NOT_FOUND, "cannot open configuration file %s: %s", name, strerror(errno));
	if (rc == -2) return FP_FAIL(FP_ERR_NOMEM, "%s: out of memory while parsing", name);
	if (rc > 0) {
		if (c->failed) return FP_FAIL(FP_ERR_CONFIG, "%s:%d: %s", name, rc, c->msg);
		return FP_FAIL(FP_ERR_CONFIG, "%s:%d: syntax error (expected 'key = value' or '[section]')", name, rc);
	}
	return FP_OK;
}

enum fp_status fp_config_load(const struct fp_config_schema *schema, const char *path, void *out)
{
	struct parse_ctx c = {.schema = schema, .out = out};
	FP_TRY(fp_config_defaults(schema, out));
	errno = 0;
	int rc = ini_parse(path, handler, &c);
	return finish(&c, rc, path);
}

enum fp_status fp_config_load_string(const struct fp_config_schema *schema, const char *text,
                                     const char *name, void *out)
{
	struct parse_ctx c = {.schema = schema, .out = out};
	FP_TRY(fp_config_defaults(schema, out));
	int rc = ini_parse_string(text, handler, &c);
	return finish(&c, rc, name ? name : "(string)");
}

enum fp_status fp_config_set(const struct fp_config_schema *schema, const char *assignment, void *out)
{
	char buf[FP_CONFIG_STR_MAX + 128];
	char msg[FP_ERROR_MSG_MAX];
	if (strlen(assignment) >= sizeof buf)
		return FP_FAIL(FP_ERR_CONFIG, "override '%.40s...' is too long", assignment);
	strcpy(buf, assignment);
	char *eq = strchr(buf, '=');
	char *dot = strchr(buf, '.');
	if (!eq || !dot || dot > eq)
		return FP_FAIL(FP_ERR_CONFIG, "override '%s' must look like section.key=value", assignment);
	*eq = '\0';
	*dot = '\0';
	const struct fp_config_key *k = find_key(schema, buf, dot + 1, NULL);
	if (!k) return FP_FAIL(FP_ERR_CONFIG, "override '%s': unknown key %s.%s", assignment, buf, dot + 1);
	if (!assign(k, eq + 1, out, msg, sizeof msg)) return FP_FAIL(FP_ERR_CONFIG, "override: %s", msg);
	return FP_OK;
}

static void format_value(const struct fp_config_key *k, const void *cfg, char *buf, size_t n)
{
	const char *field = (const char *)cfg + k->offset;
	long l;
	double d;
	int i;
	switch (k->type) {
	case FP_CFG_INT:
		memcpy(&l, field, sizeof l);
		snprintf(buf, n, "%ld", l);
		break;
	case FP_CFG_DOUBLE:
		memcpy(&d, field, sizeof d);
		snprintf(buf, n, "%.17g", d);
		break;
	case FP_CFG_BOOL:
		memcpy(&i, field, sizeof i);
		snprintf(buf, n, "%s", i ? "true" : "false");
		break;
	case FP_CFG_STRING:
		snprintf(buf, n, "%s", field);
		break;
	case FP_CFG_ENUM:
		memcpy(&i, field, sizeof i);
		snprintf(buf, n, "%s", k->choices ? k->choices[i] : "?");
		break;
	}
}

void fp_config_echo(const struct fp_config_schema *schema, const void *cfg)
{
	char v[FP_CONFIG_STR_MAX + 8];
	for (size_t i = 0; i < schema->n_keys; i++) {
		const struct fp_config_key *k = &schema->keys[i];
		format_value(k, cfg, v, sizeof v);
		fp_log(FP_LOG_INFO, "config %s.%s = %s", k->section, k->name, v);
	}
}

enum fp_status fp_config_write_example(const struct fp_config_schema *schema, FILE *out)
{
	const char *section = NULL;
	fprintf(out, "; fedpath %s configuration: every key with its default and range.\n", schema->name);
	fprintf(out, "; Lines starting with ';' are comments. Unknown keys are refused.\n");
	for (size_t i = 0; i < schema->n_keys; i++) {
		const struct fp_config_key *k = &schema->keys[i];
		if (!section || strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(out, "\n[%s]\n", section);
		}
		fprintf(out, "; %s\n", k->help ? k->help : "");
		switch (k->type) {
		case FP_CFG_INT:
			fprintf(out, "; integer, %.0f to %.0f\n", k->min, k->max);
			break;
		case FP_CFG_DOUBLE:
			fprintf(out, "; number, %g to %g\n", k->min, k->max);
			break;
		case FP_CFG_BOOL:
			fprintf(out, "; true or false\n");
			break;
		case FP_CFG_STRING:
			fprintf(out, "; text, at most %d characters\n", FP_CONFIG_STR_MAX - 1);
			break;
		case FP_CFG_ENUM:
			fprintf(out, "; one of:");
			for (int j = 0; k->choices && k->choices[j]; j++) fprintf(out, " %s", k->choices[j]);
			fprintf(out, "\n");
			break;
		}
		fprintf(out, "%s = %s\n", k->name, k->def ? k->def : "");
	}
	if (ferror(out)) return FP_FAIL(FP_ERR_IO, "writing the example configuration failed");
	return FP_OK;
}
