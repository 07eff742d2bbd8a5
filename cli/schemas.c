/*
 * schemas.c: the configuration schemas `fedpath config` knows, by name.
 * Each module that reads an INI file adds its schema here so that site IT can
 * check a file before a long run and print a commented example.
 */
#include <stddef.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_cli_schemas.h"
#include "fp_agent.h"
#include "fp_site_train.h"
#include "fp_plan.h"
#include "fp_pull.h"

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const struct fp_config_key site_keys[] = {
	{"site", "id", FP_CFG_STRING, offsetof(struct fp_site_config, site_id), "", 0, 0, NULL,
	 "this hospital's site id as on its certificate (letters, digits, '-' and '_')"},
	{"site", "data_dir", FP_CFG_STRING, offsetof(struct fp_site_config, data_dir), "data", 0, 0, NULL,
	 "folder holding the site's tile caches and tables"},
	{"log", "level", FP_CFG_ENUM, offsetof(struct fp_site_config, log_level), "info", 0, 0, log_levels,
	 "lowest level written to the log"},
	{"log", "json", FP_CFG_BOOL, offsetof(struct fp_site_config, log_json), "false", 0, 0, NULL,
	 "write JSON lines instead of human-readable lines"},
	{"log", "file", FP_CFG_STRING, offsetof(struct fp_site_config, log_file), "", 0, 0, NULL,
	 "append the log to this file (empty: standard error)"},
};

const struct fp_config_schema fp_site_schema = {"site", site_keys, sizeof site_keys / sizeof site_keys[0]};

static enum fp_status plan_load(const char *path, void *values)
{
	return fp_plan_load(path, values);
}

static const struct fp_cli_schema_entry entries[] = {
	{"site", &fp_site_schema, sizeof(struct fp_site_config), NULL},
	{"train", &fp_train_schema, sizeof(struct fp_train_config), NULL},
	{"plan", &fp_plan_schema, sizeof(struct fp_study_plan), plan_load},
	{"agent", &fp_agent_schema, sizeof(struct fp_agent_file), NULL},
	{"statistician", &fp_pull_schema, sizeof(struct fp_pull_file), NULL},
};

const struct fp_cli_schema_entry *fp_cli_schema_find(const char *name)
{
	for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
		if (strcmp(entries[i].name, name) == 0) return &entries[i];
	return NULL;
}

const struct fp_cli_schema_entry *fp_cli_schema_at(size_t i)
{
	return i < sizeof entries / sizeof entries[0] ? &entries[i] : NULL;
}
