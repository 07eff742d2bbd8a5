/*
 * fp_cli_schemas.h: configuration schemas known to `fedpath config`.
 */
#ifndef FP_CLI_SCHEMAS_H
#define FP_CLI_SCHEMAS_H

#include <stddef.h>

#include "fp_config.h"

/* The keys every site file starts with: identity and logging. */
struct fp_site_config {
	char site_id[FP_CONFIG_STR_MAX];
	char data_dir[FP_CONFIG_STR_MAX];
	int log_level; /* index into debug, info, warn, error */
	int log_json;
	char log_file[FP_CONFIG_STR_MAX];
};
extern const struct fp_config_schema fp_site_schema;

struct fp_cli_schema_entry {
	const char *name;
	const struct fp_config_schema *schema;
	size_t struct_size; /* bytes the parsed values need */
	/* The owner's whole load, cross-key rules included (fp_plan_load); NULL:
	 * the schema alone (fp_config_load). */
	enum fp_status (*load)(const char *path, void *values);
};

/* Borrowed; NULL when unknown. */
const struct fp_cli_schema_entry *fp_cli_schema_find(const char *name);
/* i-th entry, NULL past the end. */
const struct fp_cli_schema_entry *fp_cli_schema_at(size_t i);

#endif
