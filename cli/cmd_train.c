/*
 * cmd_train.c: `fedpath train --config site.ini [--resume] [--set k=v]`:
 * trains the Part 1 tile model on this site's tile caches
 * (train/fp_site_train.h; keys in docs/TRAINING.md). Under mpirun every rank
 * runs this command and the global batch is split across the ranks.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_site_train.h"

#define TRAIN_MAX_SET 64

const char fp_cmd_train_usage[] =
	"Usage: fedpath train --config FILE [--resume | --evaluate CKPT] [--set SECTION.KEY=VALUE]...\n"
	"                     [--log-level L] [--log-json] [--log-file PATH]\n\n"
	"Trains the Part 1 tumour-microenvironment tile model on the tile caches of\n"
	"this site ([data] caches) with labels from a phantom cohort's truth or a\n"
	"label CSV. Holds out whole patients for validation, logs per-epoch loss,\n"
	"per-class AUC and balanced accuracy, stops early without progress, and\n"
	"writes checkpoints atomically ([train] checkpoint, plus .best.h5 and\n"
	".metrics.csv next to it). 'fedpath config example train' lists every key.\n\n"
	"  --config FILE   site configuration (schema 'train')\n"
	"  --resume        continue from the checkpoint, bit-exactly\n"
	"  --evaluate CKPT evaluate CKPT on every labelled tile of the caches (no\n"
	"                  training); prints JSON: loss, macro AUC, balanced accuracy,\n"
	"                  per-class one-vs-rest AUC and tile counts\n"
	"  --set K=V       override one key, e.g. --set train.epochs=3 (repeatable)\n\n"
	"Data-parallel: mpirun -np K fedpath train --config FILE (batch divisible by K).\n"
	"Exit status: 0 trained, 1 runtime error (data, NaN loss, disk), 2 usage error.\n";

static int under_mpirun(void)
{
	return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static int run_evaluate(const struct fp_train_config *c, const char *ckpt)
{
	struct fp_eval_result e;
	if (fp_site_train_evaluate(c, ckpt, &e) != FP_OK) return fp_cli_runtime_error("train", "evaluate", NULL);
	printf("{\n  \"checkpoint\": \"%s\",\n  \"tiles\": %zu,\n  \"patients\": %zu,\n", ckpt, e.n_tiles, e.n_patients);
	printf("  \"loss\": %.6f,\n  \"macro_auc\": %.6f,\n  \"balanced_accuracy\": %.6f,\n  \"classes\": {\n", e.loss,
	       e.macro_auc, e.balanced_accuracy);
	for (int k = 0; k < FP_TME_N_CLASSES; k++) {
		printf("    \"%s\": {\"tiles\": %llu, \"auc\": ", fp_tme_class_name(k), (unsigned long long)e.per_class[k]);
		if (isfinite(e.auc[k])) printf("%.6f}", e.auc[k]);
		else printf("null}");
		printf("%s\n", k + 1 < FP_TME_N_CLASSES ? "," : "");
	}
	printf("  }\n}\n");
	return FP_EXIT_OK;
}

int fp_cmd_train(int argc, char **argv)
{
	const char *config = NULL, *evaluate = NULL, *sets[TRAIN_MAX_SET];
	int n_sets = 0, resume = 0, rc, mpi = 0, rank = 0, log_on_cli = 0;
	struct fp_train_config c;
	if (fp_cli_wants_help(argc, argv)) {
		fputs(fp_cmd_train_usage, stdout);
		return FP_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		int lo = fp_cli_log_option("train", argc, argv, &i);
		if (lo < 0) return FP_EXIT_USAGE;
		if (lo > 0) {
			log_on_cli = 1;
			continue;
		}
		if (strcmp(argv[i], "--config") == 0) {
			if (++i >= argc) return fp_cli_usage_error("train", "--config needs a file");
			config = argv[i];
		} else if (strcmp(argv[i], "--evaluate") == 0) {
			if (++i >= argc) return fp_cli_usage_error("train", "--evaluate needs a checkpoint");
			evaluate = argv[i];
		} else if (strcmp(argv[i], "--resume") == 0) {
			resume = 1;
		} else if (strcmp(argv[i], "--set") == 0) {
			if (++i >= argc) return fp_cli_usage_error("train", "--set needs SECTION.KEY=VALUE");
			if (n_sets == TRAIN_MAX_SET) return fp_cli_usage_error("train", "more than %d --set options", TRAIN_MAX_SET);
			sets[n_sets++] = argv[i];
		} else {
			return fp_cli_usage_error("train", "unknown argument '%s'", argv[i]);
		}
	}
	if (!config) return fp_cli_usage_error("train", "missing --config FILE");
	if (fp_config_load(&fp_train_schema, config, &c) != FP_OK)
		return fp_cli_runtime_error("train", "configuration", "'fedpath config example train' lists every key.");
	for (int i = 0; i < n_sets; i++)
		if (fp_config_set(&fp_train_schema, sets[i], &c) != FP_OK)
			return fp_cli_usage_error("train", "--set %s: %s", sets[i], fp_error_msg());
	if (evaluate) return run_evaluate(&c, evaluate);
	if (under_mpirun()) {
		MPI_Init(NULL, NULL);
		MPI_Comm_rank(MPI_COMM_WORLD, &rank);
		mpi = 1;
	}
	if (c.site_id[0]) fp_log_set_site(c.site_id);
	if (rank == 0) {
		/* The file's [log] section applies unless the command line set logging. */
		struct fp_log_options lo = {(enum fp_log_level)c.log_level, c.log_json, c.log_file[0] ? c.log_file : NULL, -1};
		if (!log_on_cli && fp_log_configure(&lo) != FP_OK)
			return fp_cli_runtime_error("train", "log.file", NULL);
		fp_config_echo(&fp_train_schema, &c);
	} else {
		/* Only rank 0 speaks, unless something goes wrong. */
		struct fp_log_options lo = {FP_LOG_WARN, c.log_json, NULL, -1};
		fp_log_configure(&lo);
	}
	struct fp_train_summary sum;
	if (fp_site_train_run(&c, resume, &sum) != FP_OK) {
		rc = fp_cli_runtime_error("train", rank ? "training (rank > 0)" : "training", NULL);
		if (mpi) MPI_Abort(MPI_COMM_WORLD, rc);
		return rc;
	}
	if (rank == 0) {
		char path[4096];
		fp_train_config_resolve(&c, c.checkpoint, path, sizeof path);
		printf("trained %ld steps (%ld epochs%s); best validation macro AUC %.4f at epoch %ld; checkpoint %s\n",
		       sum.steps, sum.epochs, sum.stopped_early ? ", stopped early" : "", sum.best_metric, sum.best_epoch, path);
	}
	if (mpi) MPI_Finalize();
	return FP_EXIT_OK;
}
