/*
 * fp_config.h: INI configuration through inih, with a typed, range-checked
 * schema.
 *
 * A module describes its keys once, as an array of struct fp_config_key; the
 * same table parses files, checks ranges, prints the effective values at
 * start-up and writes the commented example file. Values land in a caller's
 * struct at the given offsets.
 *
 * Rules (tests/unit/test_common.c checks each):
 *  - every key starts at its default; a file overrides only what it names;
 *  - an unknown section or key, a value of the wrong type, a value out of
 *    range, a duplicate key, or a syntax error is FP_ERR_CONFIG with the
 *    message "<file>:<line>: ..." naming the key and value;
 *  - integers are decimal (optionally with a sign), doubles use strtod and must
 *    be finite, booleans are true/false/yes/no/on/off/1/0, enums one of the
 *    listed names; strings are copied (at most FP_CONFIG_STR_MAX - 1 bytes,
 *    longer is an error).
 */
#ifndef FP_CONFIG_H
#define FP_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "fp_status.h"

#define FP_CONFIG_STR_MAX 512

enum fp_config_type { FP_CFG_INT, FP_CFG_DOUBLE, FP_CFG_BOOL, FP_CFG_STRING, FP_CFG_ENUM };

struct fp_config_key {
	const char *section;      /* "site" */
	const char *name;         /* "id" */
	enum fp_config_type type;
	size_t offset;            /* offsetof(struct my_config, field) */
	const char *def;          /* default, written as in the file ("0.5", "true", "") */
	double min, max;          /* inclusive range for INT and DOUBLE; ignored otherwise */
	const char *const *choices; /* NULL-terminated names for ENUM (value stored as int index) */
	const char *help;         /* one line for the example file and --help */
};
/* Field types: INT -> long, DOUBLE -> double, BOOL -> int, STRING -> char[FP_CONFIG_STR_MAX],
 * ENUM -> int (index into choices). */

struct fp_config_schema {
	const char *name;                 /* "site", for messages */
	const struct fp_config_key *keys;
	size_t n_keys;
};

/* Sets every field to its default. FP_ERR_INTERNAL if a default is invalid. */
enum fp_status fp_config_defaults(const struct fp_config_schema *schema, void *out);

/* Defaults, then the file. On error *out holds defaults plus what was read
 * before the bad line; callers must not use it. */
enum fp_status fp_config_load(const struct fp_config_schema *schema, const char *path, void *out);

/* Same, from a string (for tests and embedded plans); `name` is used in messages. */
enum fp_status fp_config_load_string(const struct fp_config_schema *schema, const char *text,
                                     const char *name, void *out);

/* Sets one key from "section.name=value" (command-line overrides). */
enum fp_status fp_config_set(const struct fp_config_schema *schema, const char *assignment,
                             void *out);

/* Logs each effective value at INFO ("config site.id = H01"). */
void fp_config_echo(const struct fp_config_schema *schema, const void *cfg);

/* Writes the commented example file: every key, its default, range and help. */
enum fp_status fp_config_write_example(const struct fp_config_schema *schema, FILE *out);

#endif
