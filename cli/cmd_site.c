/*
 * cmd_site.c: `fedpath site --config site.ini`: a hospital's site agent
 * (federate/fp_agent.h) training the Part 1 tile model on this site's tile
 * caches with fp_p1_trainer (federate/fp_trainers.h, the step `fedpath
 * simulate` runs too). Slides and patient rows never leave the process;
 * only model updates, sample counts and losses do.
 * Part 2 plans (study.model = part2): the agent reads [part2] clinical and
 * features instead of tile caches, sends only the table's sums and counts
 * before round 1, trains the regimen model each round from the pooled
 * statistics the aggregator sends back, and writes [part2] model_out (the
 * file `fedpath predict --model` reads) when the study is done. With the
 * plan's part2.kind = mil the table is clinical.csv alone and the model
 * pools the tile embeddings of [part2] caches (fp_p2_site_bags), whose width
 * must be the plan's part2.embed_dim.
 * `--write-init FILE` writes the model's initial weights (from train.seed)
 * for the coordinating centre's `fedpath aggregate --init`, and exits.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_agent.h"
#include "fp_cli.h"
#include "fp_log.h"
#include "fp_part2_fed.h"
#include "fp_plan.h"
#include "fp_site_train.h"
#include "fp_trainers.h"

const char fp_cmd_site_usage[] =
	"Usage: fedpath site --config site.ini [--write-init FILE]\n"
	"       fedpath site --config site.ini --import-model ROUND.fpm --out CKPT\n"
	"                    [--log-level L] [--log-json] [--log-file PATH]\n\n"
	"Runs this hospital's site agent: dials out to the aggregator over TLS 1.3\n"
	"with mutual authentication, fetches each round's task, trains the Part 1\n"
	"tile model locally on the tile caches named in site.train_config, and\n"
	"uploads the update. Reconnects with exponential backoff; an upload cut\n"
	"short resumes from the last acknowledged chunk, and an update the aggregator\n"
	"has not acknowledged is sent again rather than retrained. A task whose plan\n"
	"hash differs from this site's copy of the plan is refused.\n"
	"Part 2 plans (model = part2) train the regimen model on [part2] clinical\n"
	"and features instead; only the table's counts and sums leave the site before\n"
	"round 1, and [part2] model_out is written for `fedpath predict` at the end.\n"
	"With part2.kind = mil in the plan, [part2] caches (the quantified tile caches)\n"
	"replace features: the tile embeddings are pooled by attention at the site.\n"
	"Keys of site.ini: fedpath config example agent.\n\n"
	"  --write-init FILE  write the model's initial weights (float32) for\n"
	"                     `fedpath aggregate --init`, then exit\n"
	"  --import-model F   turn a global model the coordinating centre sent\n"
	"                     (its state_dir/models/round-N.fpm, SHA-256 checked)\n"
	"                     into a Part 1 checkpoint at --out, for `fedpath quantify`\n\n"
	"Exit status: 0 study done, 1 runtime error or stopped, 2 usage error.\n";

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

int fp_cmd_site(int argc, char **argv)
{
	const char *cmd = "site", *config = NULL, *init_out = NULL, *import = NULL, *ckpt_out = NULL;
	int log_set = 0;
	for (int i = 1; i < argc; i++) {
		int r = fp_cli_log_option(cmd, argc, argv, &i);
		if (r < 0) return FP_EXIT_USAGE;
		if (r > 0) {
			log_set = 1;
			continue;
		}
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (strcmp(argv[i], "--write-init") == 0 && i + 1 < argc)
			init_out = argv[++i];
		else if (strcmp(argv[i], "--import-model") == 0 && i + 1 < argc)
			import = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			ckpt_out = argv[++i];
		else
			return fp_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
	}
	if (!config) return fp_cli_usage_error(cmd, "--config is required");
	if (!!import != !!ckpt_out) return fp_cli_usage_error(cmd, "--import-model and --out go together");
	struct fp_agent_file f;
	if (fp_config_load(&fp_agent_schema, config, &f) != FP_OK) return fp_cli_runtime_error(cmd, "configuration", NULL);
	if (!log_set) {
		struct fp_log_options lo = {(enum fp_log_level)f.log_level, f.log_json, f.log_file[0] ? f.log_file : NULL, -1};
		if (fp_log_configure(&lo) != FP_OK) return fp_cli_runtime_error(cmd, "log", NULL);
	}
	struct fp_study_plan plan;
	static struct fp_train_config tc;
	if (fp_plan_load(f.plan, &plan) != FP_OK) return fp_cli_runtime_error(cmd, "plan", NULL);
	int part2 = plan.model == FP_PLAN_PART2;
	if (part2 && (init_out || import))
		return fp_cli_usage_error(cmd, "%s is a Part 2 plan: --write-init and --import-model are for Part 1 "
		                          "(the aggregator derives Part 2's initial model)", f.plan);
	struct fp_p1_trainer *p1 = NULL;
	struct fp_p2_table table = {0};
	struct fp_p2_bagset bags = {0};
	struct fp_local_trainer tr;
	memset(&tr, 0, sizeof tr);
	int mil = part2 && plan.part2_kind == FP_PLAN_P2_MIL;
	if (mil) {
		if (!f.p2_caches[0])
			return fp_cli_usage_error(cmd, "%s: the plan %s says part2.kind = mil: set [part2] caches to this site's "
			                          "quantified tile caches", config, f.plan);
		if (f.p2_features[0])
			fp_log(FP_LOG_INFO, "site: part2.kind = mil: [part2] features (%s) is not read; the tile embeddings of %s "
			       "are", f.p2_features, f.p2_caches);
		struct fp_part2_config pc;
		fp_p2fed_config(&plan, 0, &pc);
		if (fp_p2_site_load(f.p2_clinical, NULL, f.site_id, &table) != FP_OK)
			return fp_cli_runtime_error(cmd, "Part 2 table ([part2] clinical)", NULL);
		enum fp_status bst = fp_p2_site_bags(&table, f.p2_clinical, f.p2_caches, f.site_id, &pc, &bags);
		if (bst == FP_OK && bags.bags.e != (int)plan.part2_embed_dim)
			bst = FP_FAIL(FP_ERR_DATA, "the tile caches in %s hold embeddings of width %d but the plan %s says "
			              "part2.embed_dim = %ld: quantify them with the study's Part 1 model, or ask the coordinating "
			              "centre", f.p2_caches, bags.bags.e, f.plan, plan.part2_embed_dim);
		if (bst != FP_OK) {
			fp_p2_table_close(&table);
			fp_p2_bagset_close(&bags);
			return fp_cli_runtime_error(cmd, "Part 2 MIL bags ([part2] caches)", NULL);
		}
		fp_log(FP_LOG_INFO, "site: part2 mil: %zu patients, %llu tiles kept of %llu (bag cap %ld)", table.n,
		       (unsigned long long)bags.n_tiles_kept, (unsigned long long)bags.n_tiles_in, plan.part2_bag_cap);
	} else if (part2) {
		if (fp_p2_site_load(f.p2_clinical, f.p2_features[0] ? f.p2_features : NULL, f.site_id, &table) != FP_OK)
			return fp_cli_runtime_error(cmd, "Part 2 table ([part2] clinical, features)", NULL);
	} else {
		if (fp_config_load(&fp_train_schema, f.train_config, &tc) != FP_OK)
			return fp_cli_runtime_error(cmd, "training configuration", NULL);
		if (fp_p1_trainer_create(&tc, &p1) != FP_OK) return fp_cli_runtime_error(cmd, "local training set-up", NULL);
		fp_p1_trainer_local(p1, &tr);
	}
	int rc = FP_EXIT_OK;
	if (init_out) {
		float *w = malloc(tr.n_params * sizeof(float));
		enum fp_status st = w ? tr.init_weights(tr.ctx, w) : FP_FAIL(FP_ERR_NOMEM, "out of memory");
		if (st == FP_OK) st = fp_file_commit(init_out, w, tr.n_params * sizeof(float), 0644);
		free(w);
		rc = st == FP_OK ? FP_EXIT_OK : fp_cli_runtime_error(cmd, init_out, NULL);
		if (st == FP_OK) printf("%s: %zu parameters\n", init_out, tr.n_params);
		fp_p1_trainer_destroy(p1);
		return rc;
	}
	if (import) {
		/* The aggregator's framed model file: magic, version, length, SHA-256. */
		void *payload = NULL;
		size_t len = 0;
		uint32_t ver = 0;
		enum fp_status st = fp_file_read_framed(import, "FPMODEL", 1, tr.n_params * sizeof(float), &ver, &payload, &len);
		if (st == FP_OK && len != tr.n_params * sizeof(float))
			st = FP_FAIL(FP_ERR_FORMAT, "%s holds %zu parameters; the model of %s has %zu", import,
			             len / sizeof(float), f.train_config, tr.n_params);
		if (st == FP_OK) st = fp_p1_trainer_save(p1, payload, 0, ckpt_out);
		free(payload);
		fp_p1_trainer_destroy(p1);
		if (st != FP_OK) return fp_cli_runtime_error(cmd, "importing the global model", NULL);
		printf("%s: Part 1 checkpoint of %s\n", ckpt_out, import);
		return FP_EXIT_OK;
	}
	char host[FP_CONFIG_STR_MAX];
	const char *colon = strrchr(f.address, ':');
	long port = colon ? strtol(colon + 1, NULL, 10) : 0;
	if (!colon || port <= 0 || port > 65535) {
		fp_p1_trainer_destroy(p1);
		fp_p2_table_close(&table);
		fp_p2_bagset_close(&bags);
		fprintf(stderr, "fedpath site: %s: aggregator.address '%s' is not host:port\n", config, f.address);
		return FP_EXIT_RUNTIME;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - f.address), f.address);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct fp_agent_config ac;
	memset(&ac, 0, sizeof ac);
	ac.site_id = f.site_id;
	ac.plan = &plan;
	ac.trainer = part2 ? NULL : &tr;
	ac.p2_table = part2 ? &table : NULL;
	ac.p2_model_out = part2 && f.p2_model_out[0] ? f.p2_model_out : NULL;
	ac.p2_clinical_csv = part2 ? f.p2_clinical : NULL;
	ac.p2_features_csv = part2 && !mil && f.p2_features[0] ? f.p2_features : NULL;
	ac.p2_bags = mil ? &bags.bags : NULL;
	ac.host = host;
	ac.port = (int)port;
	ac.server_name = f.server_name;
	ac.ca_file = f.ca;
	ac.cert_file = f.cert;
	ac.key_file = f.key;
	ac.crl_file = f.crl[0] ? f.crl : NULL;
	ac.io_timeout_ms = (int)(f.io_timeout_s * 1000);
	ac.backoff_initial_s = f.backoff_initial_s;
	ac.backoff_max_s = f.backoff_max_s;
	ac.give_up_s = f.give_up_s;
	ac.stop = &stop_flag;
	ac.audit_path = f.audit[0] ? f.audit : NULL;
	struct fp_agent_stats stats;
	enum fp_status st = fp_agent_run(&ac, &stats);
	if (st != FP_OK)
		rc = fp_cli_runtime_error(cmd, "site agent", NULL);
	else
		printf("study done: %lld task(s), %lld update(s) accepted\n", (long long)stats.tasks,
		       (long long)stats.uploaded);
	if (st == FP_OK && part2 && ac.p2_model_out) printf("part2 model %s\n", ac.p2_model_out);
	fp_p1_trainer_destroy(p1);
	fp_p2_table_close(&table);
	fp_p2_bagset_close(&bags);
	return rc;
}
