/*
 * cmd_simulate.c: `mpirun -np 1+N fedpath simulate --plan study.ini --cohort
 * DIR`: a whole federation in one MPI job, with the production round code
 * (federate/fp_simulate.h) and the production Part 2 local step
 * (federate/fp_trainers.h).
 *
 * Rank 0 is the aggregator (state in the plan's state_dir, resumable); rank
 * r (1..N) is the r-th centre folder of DIR in byte order of the names (a
 * centre folder is one holding clinical.csv; others, such as truth/, are
 * skipped), reading DIR/<centre>/clinical.csv and, when present,
 * DIR/<centre>/features.csv. Before round 1 the ranks pool their
 * standardisation sums and counts (fp_p2_pool_mpi); after the last round
 * every site computes its Breslow baseline under the final model and sends
 * those three numbers to rank 0, which writes the Part 2 checkpoint
 * (train/fp_part2_ckpt.h).
 * Part 1 plans (model = part1): centre C trains on the tile caches in
 * CACHES/C (--caches CACHES, each folder with the manifest.jsonl of `fedpath
 * tile`), labelled from DIR/truth (a phantom cohort) unless --train-config
 * names a label CSV; model size and optimiser come from --train-config (a
 * `train` file; its [data] caches and [site] id are set per centre) or the
 * train defaults. The global model is the aggregator's models/round-<r>.fpm.
 */
#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fp_cli.h"
#include "fp_part2_ckpt.h"
#include "fp_site_train.h"
#include "fp_trainers.h"

const char fp_cmd_simulate_usage[] =
	"Usage: fedpath simulate --plan study.ini --cohort DIR [options]\n"
	"       (under MPI: mpirun -np 1+N fedpath simulate ...)\n\n"
	"Runs every round of the plan inside one MPI job: rank 0 aggregates exactly as\n"
	"`fedpath aggregate` does (state in the plan's state_dir; an interrupted study\n"
	"resumes), ranks 1..N are the N centre folders of DIR in sorted order (each\n"
	"with clinical.csv and features.csv from `fedpath quantify`). Only plans with\n"
	"model = part2 write a checkpoint; part1 plans train the tile model.\n"
	"Prints each round's progress (stderr) and the final model hash (stdout); the\n"
	"final Part 2 model, with pooled standardisation statistics and each centre's\n"
	"baseline hazard, is written for `fedpath predict`.\n\n"
	"  --plan FILE           study plan (fedpath config example plan)\n"
	"  --cohort DIR          one folder per centre\n"
	"  --caches DIR          part1: tile caches of centre C in DIR/C\n"
	"  --train-config FILE   part1: model and optimiser keys (`fedpath config example train`)\n"
	"  --out CKPT            Part 2 checkpoint (default <state_dir>/part2-model.ckpt)\n"
	"  --hidden H            Part 2 trunk width (default 16)\n"
	"  --log-level L, --log-json, --log-file PATH\n\n"
	"Exit status: 0 done, 1 runtime error, 2 usage error.\n";

#define SIM_MAX_SITES 256

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Centre folders of dir (holding clinical.csv), sorted. */
static enum fp_status list_centres(const char *dir, char ***out, int *n_out)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	int n = 0;
	*out = NULL;
	*n_out = 0;
	if (!d) return FP_FAIL(FP_ERR_IO, "cohort folder %s cannot be opened", dir);
	names = calloc(SIM_MAX_SITES, sizeof *names);
	if (!names) {
		closedir(d);
		return FP_FAIL(FP_ERR_NOMEM, "listing %s", dir);
	}
	struct dirent *e;
	enum fp_status st = FP_OK;
	while ((e = readdir(d)) != NULL) {
		char p[4096];
		struct stat sb;
		if (e->d_name[0] == '.') continue;
		snprintf(p, sizeof p, "%s/%s/clinical.csv", dir, e->d_name);
		if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
		if (n == SIM_MAX_SITES || strlen(e->d_name) > 32) {
			st = FP_FAIL(FP_ERR_LIMIT, "%s: more than %d centres, or centre name '%s' longer than 32", dir,
			             SIM_MAX_SITES, e->d_name);
			break;
		}
		if (!(names[n++] = strdup(e->d_name))) {
			st = FP_FAIL(FP_ERR_NOMEM, "listing %s", dir);
			break;
		}
	}
	closedir(d);
	if (st != FP_OK) {
		for (int i = 0; i < n; i++) free(names[i]);
		free(names);
		return st;
	}
	qsort(names, (size_t)n, sizeof *names, by_name);
	*out = names;
	*n_out = n;
	return FP_OK;
}

/* Every rank learns whether any rank failed (so none waits in a collective). */
static enum fp_status agree(enum fp_status st, const char *what)
{
	int mine = st != FP_OK, any = 0;
	if (st != FP_OK) fp_log_error_last(what);
	MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	if (st != FP_OK) return st;
	if (any) return FP_FAIL(FP_ERR_STATE, "%s failed on another rank (its message is above)", what);
	return FP_OK;
}

struct site_baseline {
	int32_t status;
	char site[33];
	double h0[FP_P2_N_HORIZONS];
};

static enum fp_status run(const struct fp_study_plan *plan, const char *cohort, const char *out_path, int hidden,
                          int rank, int size)
{
	enum fp_status st;
	char **centres = NULL, path[4096], feat[4096];
	int n_centres = 0;
	struct fp_p2_table table = {0};
	struct fp_p2_stats local, pooled;
	struct fp_p2_trainer *tr = NULL;
	struct fp_part2_config cfg;
	struct fp_local_trainer lt;
	struct fp_sim_result res = {0};
	struct site_baseline mine = {0}, *all = NULL;
	struct fp_p2_ckpt ck = {0};
	float *model = NULL;
	const char *site = NULL;

	st = list_centres(cohort, &centres, &n_centres);
	if (st == FP_OK && n_centres != size - 1)
		st = FP_FAIL(FP_ERR_CONFIG, "%s has %d centre folders but the job has %d site ranks: run mpirun -np %d", cohort,
		             n_centres, size - 1, n_centres + 1);
	if (st == FP_OK && rank > 0) {
		site = centres[rank - 1];
		fp_log_set_site(site);
		struct stat sb;
		snprintf(path, sizeof path, "%s/%s/clinical.csv", cohort, site);
		snprintf(feat, sizeof feat, "%s/%s/features.csv", cohort, site);
		int has_feat = stat(feat, &sb) == 0;
		if (!has_feat) FP_WARN("simulate: %s has no features.csv; its table has clinical columns only", site);
		st = fp_p2_site_load(path, has_feat ? feat : NULL, site, &table);
	}
	FP_CHECK(st, agree(st, "loading the centre's tables"));
	/* Federated standardisation before round 1: sums and counts only. */
	if (rank > 0) fp_p2_stats_local(&table, &local);
	FP_CHECK(st, agree(fp_p2_pool_mpi(MPI_COMM_WORLD, rank > 0 ? &local : NULL, &pooled), "pooling statistics"));
	fp_part2_config_default(&cfg);
	cfg.hidden = hidden;
	cfg.seed = (uint64_t)plan->seed;
	/* The effective steps per round, stored in the checkpoint as trained. */
	cfg.steps = plan->local_steps > 0 ? plan->local_steps : plan->local_epochs * cfg.steps;
	FP_CHECK(st, agree(fp_p2_trainer_create(rank > 0 ? &table : NULL, &pooled, &cfg, &tr), "building the model"));
	fp_p2_trainer_local(tr, &lt);
	if (rank == 0)
		FP_INFO("simulate: %d centres, %llu patients, %d design columns, %zu parameters, %ld rounds", n_centres,
		        (unsigned long long)pooled.n_patients, fp_p2_design_width(&pooled), lt.n_params, plan->rounds);
	void *v;
	FP_CHECK(st, fp_alloc_array(lt.n_params, sizeof(float), &v, "model")); model = v;
	FP_CHECK(st, fp_simulate_run(MPI_COMM_WORLD, plan, site ? site : "", &lt, rank == 0 ? model : NULL, &res));
	/* Every site's Breslow baseline under the final model: three numbers each. */
	MPI_Bcast(model, (int)lt.n_params, MPI_FLOAT, 0, MPI_COMM_WORLD);
	if (rank > 0) {
		snprintf(mine.site, sizeof mine.site, "%s", site);
		mine.status = fp_p2_trainer_baseline(tr, model, mine.h0);
		if (mine.status != FP_OK) fp_log_error_last("baseline");
	}
	if (rank == 0 && !(all = calloc((size_t)size, sizeof *all))) {
		st = FP_FAIL(FP_ERR_NOMEM, "baselines");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		ck.cfg = cfg;
		ck.pooled = pooled;
		ck.p = fp_p2_design_width(&pooled);
		ck.n_params = lt.n_params;
		ck.rounds = (long)res.rounds_done;
		ck.n_sites = size - 1;
		FP_CHECK(st, fp_calloc_array((size_t)ck.p, FP_P2_NAME_MAX, &v, "names")); ck.names = v;
		memcpy(ck.names, fp_p2_trainer_names(tr), (size_t)ck.p * FP_P2_NAME_MAX);
		FP_CHECK(st, fp_calloc_array((size_t)size, sizeof *ck.sites, &v, "sites")); ck.sites = v;
		FP_CHECK(st, fp_calloc_array((size_t)size, sizeof *ck.h0, &v, "baselines")); ck.h0 = v;
		for (int r = 1; r < size; r++) {
			if (all[r].status != FP_OK) {
				st = FP_FAIL(FP_ERR_STATE, "centre %s could not compute its baseline (message above)", centres[r - 1]);
				goto fail;
			}
			memcpy(ck.sites[r - 1], all[r].site, sizeof ck.sites[0]);
			memcpy(ck.h0[r - 1], all[r].h0, sizeof ck.h0[0]);
		}
		ck.params = model;
		st = fp_p2_ckpt_save(&ck, out_path);
		ck.params = NULL;
		if (st != FP_OK) goto fail;
		if (strcmp(ck.model_hash, res.model_hash) != 0) {
			st = FP_FAIL(FP_ERR_INTERNAL, "checkpoint hash %s differs from the aggregator's %s", ck.model_hash,
			             res.model_hash);
			goto fail;
		}
		printf("rounds %lld\nmodel %s\ncheckpoint %s\n", (long long)res.rounds_done, res.model_hash, out_path);
	}
fail:
	fp_p2_ckpt_close(&ck);
	free(all);
	free(model);
	fp_p2_trainer_destroy(tr);
	fp_p2_table_close(&table);
	for (int i = 0; i < n_centres; i++) free(centres[i]);
	free(centres);
	return st;
}

/* Part 1: one tile-model trainer per site rank; rank 0 only needs the size. */
static enum fp_status run_part1(const struct fp_study_plan *plan, const char *cohort, const char *caches,
                                const char *train_cfg, int rank, int size)
{
	enum fp_status st = FP_OK;
	char **centres = NULL;
	int n_centres = 0;
	static struct fp_train_config c;
	struct fp_p1_trainer *tr = NULL;
	struct fp_local_trainer lt;
	struct fp_sim_result res = {0};
	const char *site = NULL;
	float *final = NULL;
	st = list_centres(cohort, &centres, &n_centres);
	if (st == FP_OK && n_centres != size - 1)
		st = FP_FAIL(FP_ERR_CONFIG, "%s has %d centre folders but the job has %d site ranks: run mpirun -np %d", cohort,
		             n_centres, size - 1, n_centres + 1);
	if (st == FP_OK) st = train_cfg ? fp_config_load(&fp_train_schema, train_cfg, &c) : fp_config_defaults(&fp_train_schema, &c);
	if (st == FP_OK) {
		/* Every rank builds the site's model (rank 0 as centre 1) so that all
		 * agree on its size; rank 0 reads tiles only for that. */
		site = centres[rank > 0 ? rank - 1 : 0];
		if (rank > 0) fp_log_set_site(site);
		snprintf(c.site_id, sizeof c.site_id, "%s", site);
		c.data_dir[0] = '\0';
		snprintf(c.caches, sizeof c.caches, "%s/%s", caches, site);
		if (!train_cfg || c.labels == FP_LABELS_TRUTH) {
			c.labels = FP_LABELS_TRUTH;
			snprintf(c.truth_dir, sizeof c.truth_dir, "%s/truth", cohort);
		}
		st = fp_p1_trainer_create(&c, &tr);
	}
	FP_CHECK(st, agree(st, "opening the centre's tile caches"));
	fp_p1_trainer_local(tr, &lt);
	if (rank == 0)
		FP_INFO("simulate: part1, %d centres, %zu parameters, %ld rounds", n_centres, lt.n_params, plan->rounds);
	if (rank == 0) {
		final = malloc(lt.n_params * sizeof(float));
		if (!final) st = FP_FAIL(FP_ERR_NOMEM, "simulate: out of memory for the final model");
	}
	FP_CHECK(st, agree(st, "allocating the final model"));
	FP_CHECK(st, fp_simulate_run(MPI_COMM_WORLD, plan, rank > 0 ? site : "", &lt, final, &res));
	if (rank == 0) {
		/* The global model as a Part 1 checkpoint, for quantify at every site. */
		char ck[4096];
		snprintf(ck, sizeof ck, "%s/part1-model.h5", plan->state_dir);
		FP_CHECK(st, fp_p1_trainer_save(tr, final, res.rounds_done, ck));
		printf("rounds %lld\nmodel %s\nstate %s\ncheckpoint %s\n", (long long)res.rounds_done, res.model_hash,
		       plan->state_dir, ck);
	}
fail:
	free(final);
	fp_p1_trainer_destroy(tr);
	for (int i = 0; i < n_centres; i++) free(centres[i]);
	free(centres);
	return st;
}

int fp_cmd_simulate(int argc, char **argv)
{
	const char *plan_path = NULL, *cohort = NULL, *out = NULL, *caches = NULL, *train_cfg = NULL;
	long hidden = 16;
	int rc;
	if (fp_cli_wants_help(argc, argv)) {
		fputs(fp_cmd_simulate_usage, stdout);
		return FP_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		int lo = fp_cli_log_option("simulate", argc, argv, &i);
		if (lo < 0) return FP_EXIT_USAGE;
		if (lo > 0) continue;
		const char *a = argv[i];
		if (i + 1 >= argc) return fp_cli_usage_error("simulate", "%s needs a value (or is unknown)", a);
		const char *val = argv[++i];
		if (strcmp(a, "--plan") == 0) {
			plan_path = val;
		} else if (strcmp(a, "--cohort") == 0) {
			cohort = val;
		} else if (strcmp(a, "--caches") == 0) {
			caches = val;
		} else if (strcmp(a, "--train-config") == 0) {
			train_cfg = val;
		} else if (strcmp(a, "--out") == 0) {
			out = val;
		} else if (strcmp(a, "--hidden") == 0) {
			if ((rc = fp_cli_parse_long("simulate", a, val, 1, 1024, &hidden)) != FP_EXIT_OK) return rc;
		} else {
			return fp_cli_usage_error("simulate", "unknown option '%s'", a);
		}
	}
	if (!plan_path || !cohort) return fp_cli_usage_error("simulate", "needs --plan FILE and --cohort DIR");
	struct fp_study_plan plan;
	if (fp_plan_load(plan_path, &plan) != FP_OK) return fp_cli_runtime_error("simulate", "plan", NULL);
	if (plan.model == FP_PLAN_PART1 && !caches)
		return fp_cli_usage_error("simulate", "%s: model = part1 needs --caches DIR (centre C's caches in DIR/C)",
		                          plan_path);
	char ckpt[4096];
	if (!out) {
		snprintf(ckpt, sizeof ckpt, "%s/part2-model.ckpt", plan.state_dir);
		out = ckpt;
	}
	int rank = 0, size = 0;
	MPI_Init(NULL, NULL);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (size < 2) {
		MPI_Finalize();
		return fp_cli_usage_error("simulate", "needs at least 2 MPI ranks (aggregator + sites): mpirun -np 1+N");
	}
	if (rank > 0) {
		/* Sites speak only about problems; rank 0 tells the story. */
		struct fp_log_options lo = {FP_LOG_WARN, 0, NULL, -1};
		fp_log_configure(&lo);
	}
	enum fp_status st = plan.model == FP_PLAN_PART1 ? run_part1(&plan, cohort, caches, train_cfg, rank, size)
	                                                : run(&plan, cohort, out, (int)hidden, rank, size);
	rc = FP_EXIT_OK;
	if (st != FP_OK) rc = fp_cli_runtime_error("simulate", rank ? "site" : "aggregator", NULL);
	MPI_Finalize();
	return rc;
}
