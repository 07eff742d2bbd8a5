/*
 * cmd_config.c: `fedpath config check FILE [--schema NAME]` and
 * `fedpath config example [NAME]`: check a configuration file before a long
 * run, or print the commented example listing every key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_cli_schemas.h"

const char fp_cmd_config_usage[] =
	"Usage: fedpath config check FILE [--schema NAME]\n"
	"       fedpath config example [NAME]\n\n"
	"check     parses FILE against the schema (default: site), reports the first\n"
	"          error as FILE:LINE: message, and prints the effective values.\n"
	"example   prints a commented example file with every key, its default and range.\n\n"
	"Schemas: site (identity and logging), train (local training at a site),\n"
	"plan (the study plan of the coordinating centre).\n";

static const struct fp_cli_schema_entry *schema_or_error(const char *name)
{
	const struct fp_cli_schema_entry *e = fp_cli_schema_find(name);
	if (!e) {
		fprintf(stderr, "fedpath config: unknown schema '%s'; known:", name);
		for (size_t i = 0; fp_cli_schema_at(i); i++) fprintf(stderr, " %s", fp_cli_schema_at(i)->name);
		fprintf(stderr, "\n");
	}
	return e;
}

int fp_cmd_config(int argc, char **argv)
{
	if (argc < 2) return fp_cli_usage_error("config", "missing action (check or example)");
	const char *action = argv[1];
	if (strcmp(action, "example") == 0) {
		if (argc > 3) return fp_cli_usage_error("config", "unexpected argument '%s'", argv[3]);
		const struct fp_cli_schema_entry *e = schema_or_error(argc == 3 ? argv[2] : "site");
		if (!e) return FP_EXIT_USAGE;
		if (fp_config_write_example(e->schema, stdout) != FP_OK)
			return fp_cli_runtime_error("config", "example", NULL);
		return FP_EXIT_OK;
	}
	if (strcmp(action, "check") != 0)
		return fp_cli_usage_error("config", "unknown action '%s' (expected check or example)", action);

	const char *file = NULL, *schema = "site";
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--schema") == 0) {
			if (++i >= argc) return fp_cli_usage_error("config", "--schema needs a name");
			schema = argv[i];
		} else if (argv[i][0] == '-') {
			return fp_cli_usage_error("config", "unknown option '%s'", argv[i]);
		} else if (!file) {
			file = argv[i];
		} else {
			return fp_cli_usage_error("config", "unexpected argument '%s'", argv[i]);
		}
	}
	if (!file) return fp_cli_usage_error("config", "check needs a FILE");
	const struct fp_cli_schema_entry *e = schema_or_error(schema);
	if (!e) return FP_EXIT_USAGE;
	void *values = calloc(1, e->struct_size);
	if (!values) {
		fprintf(stderr, "fedpath config: out of memory\n");
		return FP_EXIT_RUNTIME;
	}
	int rc = FP_EXIT_OK;
	if ((e->load ? e->load(file, values) : fp_config_load(e->schema, file, values)) != FP_OK) {
		rc = fp_cli_runtime_error("config", NULL, "Fix the line named above; 'fedpath config example' lists every key.");
	} else {
		fp_config_echo(e->schema, values);
		printf("%s: valid %s configuration\n", file, e->name);
	}
	free(values);
	return rc;
}
