/*
 * cmd_aggregate.c: `fedpath aggregate --plan study.ini --init MODEL.f32`:
 * the coordinating centre's process (federate/fp_server.h). Runs the plan's
 * rounds over mutual TLS, resumable from the plan's state folder after any
 * stop or crash; SIGINT/SIGTERM stop it cleanly (exit 1, state kept; exit 0
 * when the study was already finished).
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_plan.h"
#include "fp_server.h"

const char fp_cmd_aggregate_usage[] =
	"Usage: fedpath aggregate --plan study.ini --init MODEL.f32 [--tls-dir DIR] [--port N]\n"
	"       fedpath aggregate --plan study.ini [--hidden H] [--out CKPT] ...   (model = part2)\n"
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
	"  --port N        override the plan's port (0: any free port, logged)\n"
	"  --hidden H      part2: trunk width of the regimen model (default 16, as simulate)\n"
	"  --out CKPT      part2: model file (default <state_dir>/part2-model.ckpt)\n"
	"  --eval-horizon M  part2: federated evaluation at M months (12, 24 or 36;\n"
	"                  default 36; 0: no evaluation). Results: <state_dir>/results/\n"
	"  --grid-cells N  part2: equal cells of the shared AUC grid on [0, 1] (default 20)\n"
	"  --serve-results after the study, keep answering statisticians' `fedpath report\n"
	"                  pull` until SIGINT/SIGTERM (then exit 0)\n\n"
	"Part 2 plans need no --init: before round 1 every enrolled site sends its\n"
	"standardisation counts and sums, the pooled statistics fix the model, and\n"
	"after the last round each site's baseline hazard completes the model file\n"
	"`fedpath predict --model` reads.\n\n"
	"Progress: fedpath status --plan FILE. Exit status: 0 all rounds done,\n"
	"1 runtime error or stopped, 2 usage error.\n";

static volatile int stop_flag;

static void release_init(void *arg, int port)
{
	(void)port;
	free(*(char **)arg);
	*(char **)arg = NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

int fp_cmd_aggregate(int argc, char **argv)
{
	const char *cmd = "aggregate", *plan_path = NULL, *init_path = NULL, *tls_dir = "tls", *out = NULL;
	long port = -1, hidden = 0, horizon = 36, cells = 20;
	int serve = 0;
	for (int i = 1; i < argc; i++) {
		int r = fp_cli_log_option(cmd, argc, argv, &i);
		if (r < 0) return FP_EXIT_USAGE;
		if (r > 0) continue;
		if (strcmp(argv[i], "--serve-results") == 0) {
			serve = 1;
			continue;
		}
		if (i + 1 >= argc && argv[i][0] == '-') return fp_cli_usage_error(cmd, "%s needs a value", argv[i]);
		if (strcmp(argv[i], "--plan") == 0) {
			plan_path = argv[++i];
		} else if (strcmp(argv[i], "--init") == 0) {
			init_path = argv[++i];
		} else if (strcmp(argv[i], "--tls-dir") == 0) {
			tls_dir = argv[++i];
		} else if (strcmp(argv[i], "--hidden") == 0) {
			if (fp_cli_parse_long(cmd, "--hidden", argv[++i], 1, 1024, &hidden)) return FP_EXIT_USAGE;
		} else if (strcmp(argv[i], "--eval-horizon") == 0) {
			if (fp_cli_parse_long(cmd, "--eval-horizon", argv[++i], 0, 36, &horizon)) return FP_EXIT_USAGE;
			if (horizon != 0 && horizon != 12 && horizon != 24 && horizon != 36)
				return fp_cli_usage_error(cmd, "--eval-horizon %ld: use 12, 24, 36 (months) or 0", horizon);
		} else if (strcmp(argv[i], "--grid-cells") == 0) {
			if (fp_cli_parse_long(cmd, "--grid-cells", argv[++i], 2, 1000, &cells)) return FP_EXIT_USAGE;
		} else if (strcmp(argv[i], "--out") == 0) {
			out = argv[++i];
		} else if (strcmp(argv[i], "--port") == 0) {
			if (fp_cli_parse_long(cmd, "--port", argv[++i], 0, 65535, &port)) return FP_EXIT_USAGE;
		} else {
			return fp_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
		}
	}
	if (!plan_path) return fp_cli_usage_error(cmd, "--plan is required");
	struct fp_study_plan plan;
	if (fp_plan_load(plan_path, &plan) != FP_OK) return fp_cli_runtime_error(cmd, "plan", NULL);
	int part2 = plan.model == FP_PLAN_PART2;
	if (!part2 && !init_path) return fp_cli_usage_error(cmd, "--init is required");
	if (part2 && init_path)
		return fp_cli_usage_error(cmd, "%s is a Part 2 plan: its initial model follows from the pooled statistics; "
		                          "drop --init", plan_path);
	if (!part2 && (hidden || out)) return fp_cli_usage_error(cmd, "--hidden and --out are for Part 2 plans");
	char *data = NULL;
	size_t len = 0;
	if (!part2 && fp_file_read_all(init_path, (size_t)1 << 34, &data, &len) != FP_OK)
		return fp_cli_runtime_error(cmd, "initial model", NULL);
	if (!part2 && (len == 0 || len % sizeof(float) != 0)) {
		free(data);
		fprintf(stderr, "fedpath aggregate: %s: %zu bytes is not a whole number of float32 values\n", init_path, len);
		return FP_EXIT_RUNTIME;
	}
	/* Every buffer of 1 MiB or more (a session's frame buffer, the fold's
	 * blocks, a model) gets its own mapping, returned to the system when
	 * freed. glibc's default threshold moves up to 32 MiB after the first
	 * such free, and then per-thread arenas keep what the sessions freed:
	 * measured 374 MB peak after 6 rounds of a 100 MB model with 10 sites,
	 * 322 MB with the threshold fixed (307 MB once the snapshot was refilled
	 * in place, server.c: the start-up peak, when the --init model is still
	 * in memory). */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
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
	cfg.part2_hidden = (int)hidden;
	cfg.part2_model = out;
	cfg.eval_horizon = horizon == 0 ? -1.0 : (double)horizon;
	cfg.eval_grid_cells = (int)cells;
	cfg.serve_results = serve;
	cfg.port = (int)port;
	cfg.linger_s = 60;
	cfg.stop = &stop_flag;
	/* The state folder holds round 0 once listening: a 100 MB start model
	 * need not stay in memory for the whole study. */
	cfg.on_listening = release_init;
	cfg.arg = &data;
	struct fp_server_result res;
	enum fp_status st = fp_server_run(&cfg, NULL, &res);
	free(data);
	if (st != FP_OK) return fp_cli_runtime_error(cmd, "study", "the state folder is kept; run the same command to resume");
	printf("%lld rounds done, model %s\n", (long long)res.rounds_done, res.model_hash);
	if (part2) printf("part2 model %s\n", res.part2_model);
	if (part2 && horizon) printf("evaluation results %s/results\n", plan.state_dir);
	return FP_EXIT_OK;
}
