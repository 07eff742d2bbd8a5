/*
 * cmd_aggregate.c: `fedpath aggregate --plan study.ini --init MODEL.f32`:
 * the coordinating centre's process (federate/fp_server.h). Runs the plan's
 * rounds over mutual TLS, resumable from the plan's state folder after any
 * stop or crash; SIGINT/SIGTERM stop it cleanly (exit 1, state kept).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_plan.h"
#include "fp_server.h"

const char fp_cmd_aggregate_usage[] =
	"Usage: fedpath aggregate --plan study.ini --init MODEL.f32 [--tls-dir DIR] [--port N]\n"
	"                         [--log-level L] [--log-json] [--log-file PATH]\n\n"
	"Runs the study's federated rounds as the coordinating centre. Listens on the\n"
	"plan's aggregator.listen; sites dial out (fedpath site) over TLS 1.3 with\n"
	"mutual authentication against the study CA. State (journal, models, received\n"
	"updates, audit.jsonl, status.json) lives in the plan's aggregator.state_dir;\n"
	"after a stop or a crash the same command resumes where it was, and sites do\n"
	"not train again for updates already received.\n\n"
	"  --plan FILE     the study plan (fedpath config example plan)\n"
	"  --init FILE     round-0 model: n float32 values, little-endian, nothing else;\n"
	"                  its size fixes the parameter count (needed on resume too)\n"
	"  --tls-dir DIR   ca.crt, allowlist.json, crl.pem (optional), aggregator.crt,\n"
	"                  aggregator.key (default: tls)\n"
	"  --port N        override the plan's port (0: any free port, logged)\n\n"
	"Progress: fedpath status --plan FILE. Exit status: 0 all rounds done,\n"
	"1 runtime error or stopped, 2 usage error.\n";

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

int fp_cmd_aggregate(int argc, char **argv)
{
	const char *cmd = "aggregate", *plan_path = NULL, *init_path = NULL, *tls_dir = "tls";
	long port = -1;
	for (int i = 1; i < argc; i++) {
		int r = fp_cli_log_option(cmd, argc, argv, &i);
		if (r < 0) return FP_EXIT_USAGE;
		if (r > 0) continue;
		if (i + 1 >= argc && argv[i][0] == '-') return fp_cli_usage_error(cmd, "%s needs a value", argv[i]);
		if (strcmp(argv[i], "--plan") == 0) {
			plan_path = argv[++i];
		} else if (strcmp(argv[i], "--init") == 0) {
			init_path = argv[++i];
		} else if (strcmp(argv[i], "--tls-dir") == 0) {
			tls_dir = argv[++i];
		} else if (strcmp(argv[i], "--port") == 0) {
			if (fp_cli_parse_long(cmd, "--port", argv[++i], 0, 65535, &port)) return FP_EXIT_USAGE;
		} else {
			return fp_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
		}
	}
	if (!plan_path) return fp_cli_usage_error(cmd, "--plan is required");
	if (!init_path) return fp_cli_usage_error(cmd, "--init is required");
	struct fp_study_plan plan;
	if (fp_plan_load(plan_path, &plan) != FP_OK) return fp_cli_runtime_error(cmd, "plan", NULL);
	char *data = NULL;
	size_t len = 0;
	if (fp_file_read_all(init_path, (size_t)1 << 34, &data, &len) != FP_OK)
		return fp_cli_runtime_error(cmd, "initial model", NULL);
	if (len == 0 || len % sizeof(float) != 0) {
		free(data);
		fprintf(stderr, "fedpath aggregate: %s: %zu bytes is not a whole number of float32 values\n", init_path, len);
		return FP_EXIT_RUNTIME;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct fp_server_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.plan = &plan;
	cfg.tls_dir = tls_dir;
	cfg.init = (const float *)(const void *)data;
	cfg.n_params = len / sizeof(float);
	cfg.port = (int)port;
	cfg.linger_s = 60;
	cfg.stop = &stop_flag;
	struct fp_server_result res;
	enum fp_status st = fp_server_run(&cfg, NULL, &res);
	free(data);
	if (st != FP_OK) return fp_cli_runtime_error(cmd, "study", "the state folder is kept; run the same command to resume");
	printf("%lld rounds done, model %s\n", (long long)res.rounds_done, res.model_hash);
	return FP_EXIT_OK;
}
