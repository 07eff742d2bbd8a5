/*
 * cmd_status.c: `fedpath status --plan study.ini | --state-dir DIR [--json]`:
 * prints the aggregator's status.json (written atomically by fedpath
 * aggregate): the round, quorum, sites, last contact, bytes and rates.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "fp_cli.h"
#include "fp_json.h"
#include "fp_plan.h"
#include "fp_server.h"

const char fp_cmd_status_usage[] =
	"Usage: fedpath status (--plan study.ini | --state-dir DIR) [--json]\n\n"
	"Shows the federated study's progress as the running (or last) aggregator\n"
	"wrote it: round, updates accepted against the quorum, and for every site\n"
	"its state, last contact (UTC), bytes received and sent and transfer rate.\n"
	"--json prints status.json itself.\n"
	"Exit status: 0 shown, 1 no status file yet or unreadable, 2 usage error.\n";

int fp_cmd_status(int argc, char **argv)
{
	const char *cmd = "status", *plan_path = NULL, *dir = NULL;
	int as_json = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			as_json = 1;
		} else if ((strcmp(argv[i], "--plan") == 0 || strcmp(argv[i], "--state-dir") == 0) && i + 1 < argc) {
			if (argv[i][2] == 'p')
				plan_path = argv[++i];
			else
				dir = argv[++i];
		} else {
			return fp_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
		}
	}
	if (!plan_path == !dir) return fp_cli_usage_error(cmd, "give exactly one of --plan and --state-dir");
	struct fp_study_plan plan;
	if (plan_path) {
		if (fp_plan_load(plan_path, &plan) != FP_OK) return fp_cli_runtime_error(cmd, "plan", NULL);
	} else {
		memset(&plan, 0, sizeof plan);
		snprintf(plan.state_dir, sizeof plan.state_dir, "%s", dir);
	}
	char path[FP_CONFIG_STR_MAX + 32];
	fp_server_status_path(&plan, path, sizeof path);
	json_t *doc = NULL;
	if (fp_json_load_file(path, &doc) != FP_OK)
		return fp_cli_runtime_error(cmd, "status", "has fedpath aggregate started with this plan?");
	if (as_json) {
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (s) printf("%s\n", s);
		free(s);
		json_decref(doc);
		return FP_EXIT_OK;
	}
	long long round = json_integer_value(json_object_get(doc, "round"));
	long long rounds = json_integer_value(json_object_get(doc, "rounds"));
	printf("study %s: %s, updated %s\n", json_string_value(json_object_get(doc, "study")),
	       json_is_true(json_object_get(doc, "done")) ? "done" : "running",
	       json_string_value(json_object_get(doc, "updated")));
	printf("round %lld of %lld: %lld update(s) accepted, quorum %lld, %lld site(s) enrolled; model %.16s\n",
	       round > rounds ? rounds : round, rounds, json_integer_value(json_object_get(doc, "accepted")),
	       json_integer_value(json_object_get(doc, "quorum")), json_integer_value(json_object_get(doc, "known_sites")),
	       json_string_value(json_object_get(doc, "model_hash")));
	printf("%-16s %-14s %-21s %12s %12s %10s %8s\n", "site", "state", "last contact", "bytes in", "bytes out",
	       "MiB/s", "updates");
	json_t *sites = json_object_get(doc, "sites");
	for (size_t i = 0; i < json_array_size(sites); i++) {
		json_t *e = json_array_get(sites, i);
		printf("%-16s %-14s %-21s %12lld %12lld %10.2f %8lld\n", json_string_value(json_object_get(e, "id")),
		       json_string_value(json_object_get(e, "state")), json_string_value(json_object_get(e, "last_contact")),
		       json_integer_value(json_object_get(e, "bytes_in")), json_integer_value(json_object_get(e, "bytes_out")),
		       json_real_value(json_object_get(e, "rate_mib_s")),
		       json_integer_value(json_object_get(e, "updates_accepted")));
	}
	json_decref(doc);
	return FP_EXIT_OK;
}
