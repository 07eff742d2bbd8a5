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
 * Evaluation and comparison (Part 2 only; scripts/compare_part2.sh):
 *  --holdout F --split-seed S: each centre holds out the patients whose
 *    seeded hash of the patient id falls below F (held_out() below). The rows
 *    are dropped as soon as the table is read, so the pooled standardisation,
 *    every training step and the baselines see training rows only; the split
 *    depends on the patient id and seed alone, so every mode holds out the
 *    same patients. --split-out DIR writes DIR/<centre>.csv (patient_id,set).
 *  --centralised (mpirun -np 2): rank 1 holds every centre's training rows
 *    (possible only with phantom data) and trains the same model with the
 *    same plan; pooled standardisation as the federation computes it, Cox
 *    likelihood stratified by centre, a baseline per centre.
 *  --local-only SITE (mpirun -np 2): rank 1 holds SITE's training rows only;
 *    statistics, training and baseline come from that centre alone.
 * The comparison models keep the round structure (the plan's rounds, local
 * steps and FedProx mu, an aggregator of one update), so the three models
 * differ only in which rows each local step sees.
 * Part 1 plans (model = part1): centre C trains on the tile caches in
 * CACHES/C (--caches CACHES, each folder with the manifest.jsonl of `fedpath
 * tile`), labelled from DIR/truth (a phantom cohort) unless --train-config
 * names a label CSV or its own [data] truth_dir; model size and optimiser
 * come from --train-config (a `train` file; its [data] caches and [site] id
 * are set per centre) or the train defaults. The global model is the
 * aggregator's models/round-<r>.fpm.
 * Part 2 with the plan's part2.kind = mil (train/fp_part2_mil.h): centre C's
 * table is its clinical.csv alone and its bags are the tile embeddings of
 * the quantified caches in CACHES/C (--caches; fp_p2_site_bags, so the
 * slides of clinical.csv must be readable), built after the hold-out split;
 * their width must be the plan's part2.embed_dim, which also sizes rank 0's
 * model. Federated mode only (the comparison models are summary models).
 */
#include <dirent.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fp_cli.h"
#include "fp_common.h"
#include "fp_kernels.h"
#include "fp_part2_ckpt.h"
#include "fp_part2_fed.h"
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
	"  --caches DIR          part1, and part2 with part2.kind = mil: quantified tile\n"
	"                        caches of centre C in DIR/C\n"
	"  --train-config FILE   part1: model and optimiser keys (`fedpath config example train`)\n"
	"  --out CKPT            Part 2 checkpoint (default <state_dir>/part2-model.ckpt)\n"
	"  --hidden H            Part 2 trunk width (default 16)\n"
	"  --lr X, --weight-decay X  Part 2 AdamW settings (defaults 0.001 as in federated\n"
	"                        rounds, 1e-4; stored in the checkpoint)\n"
	"  --holdout F           Part 2: hold out share F (0..0.9) of each centre's patients,\n"
	"                        chosen by a seeded hash of the patient id; they never\n"
	"                        reach the statistics, training or baselines (default 0)\n"
	"  --split-seed S        seed of that split (default 1)\n"
	"  --split-out DIR       write DIR/<centre>.csv: patient_id,set (train|test)\n"
	"  --centralised         comparison model, phantom data only (mpirun -np 2): one rank\n"
	"                        holds every centre's rows; same plan, Cox stratified by centre\n"
	"  --local-only SITE     comparison model (mpirun -np 2): SITE's rows only\n"
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

/* ---- Part 2 ---- */

enum sim_mode { MODE_FEDERATED = 0, MODE_CENTRALISED, MODE_LOCAL };
static const char *const mode_names[] = {"federated", "centralised", "local-only"};

struct p2_options {
	const char *out;
	int hidden;
	double lr, weight_decay;  /* NAN: the model's defaults */
	enum sim_mode mode;
	const char *local_site;  /* MODE_LOCAL: the one centre trained on */
	double holdout;          /* share of each centre's patients held out, [0, 0.9] */
	uint64_t split_seed;
	const char *split_out;   /* folder for <centre>.csv (patient_id,set) or NULL */
	const char *caches;      /* part2.kind = mil: CACHES/<centre> */
	int mil;                 /* the plan's part2.kind = mil */
};

/* The fixed patient-level split: a patient is held out when the first 8
 * bytes of SHA-256("fedpath-holdout-1|<seed>|<patient_id>"), read big-endian
 * as a fraction of 2^64, fall below `frac`. It depends on nothing but the
 * patient id and the seed, so it is decided before any statistic is computed
 * and every run (federated, centralised, local-only) holds out the same
 * patients. */
static enum fp_status held_out(const char *patient_id, uint64_t seed, double frac, int *out)
{
	char msg[128];
	uint8_t d[FP_SHA256_SIZE];
	int n = snprintf(msg, sizeof msg, "fedpath-holdout-1|%llu|%s", (unsigned long long)seed, patient_id);
	if (n < 0 || (size_t)n >= sizeof msg) return FP_FAIL(FP_ERR_LIMIT, "patient id '%.40s...' is too long", patient_id);
	FP_TRY(fp_sha256(msg, (size_t)n, d));
	uint64_t u = 0;
	for (int i = 0; i < 8; i++) u = (u << 8) | d[i];
	*out = (double)u / 18446744073709551616.0 < frac;
	return FP_OK;
}

/* Drops the held-out rows of t in place (their values are never read again)
 * and, with split_out, writes every patient's set. *n_test: rows dropped. */
static enum fp_status apply_split(struct fp_p2_table *t, const struct p2_options *o, size_t *n_test)
{
	enum fp_status st = FP_OK;
	struct fp_file_writer w = {0};
	int open = 0;
	char path[4096];
	size_t p = (size_t)t->p, k = 0;
	*n_test = 0;
	if (o->split_out) {
		FP_TRY(fp_mkdir_p(o->split_out, 0755));
		snprintf(path, sizeof path, "%s/%s.csv", o->split_out, t->site);
		FP_TRY(fp_file_writer_open(&w, path, 0644));
		open = 1;
		fprintf(w.fp, "patient_id,set\n");
	}
	t->n_without_features = 0;
	for (size_t i = 0; i < t->n; i++) {
		int out = 0;
		if (o->holdout > 0) FP_CHECK(st, held_out(t->patient[i], o->split_seed, o->holdout, &out));
		if (open) fprintf(w.fp, "%s,%s\n", t->patient[i], out ? "test" : "train");
		if (out) {
			(*n_test)++;
			continue;
		}
		if (k != i) {
			memmove(t->x + k * p, t->x + i * p, p * sizeof *t->x);
			memcpy(t->patient[k], t->patient[i], sizeof t->patient[0]);
			t->regimen[k] = t->regimen[i];
			t->rfs_time[k] = t->rfs_time[i];
			t->rfs_event[k] = t->rfs_event[i];
			t->os_time[k] = t->os_time[i];
			t->os_event[k] = t->os_event[i];
			t->orr[k] = t->orr[i];
		}
		int any = 0;
		for (size_t j = FP_P2_N_CLINICAL; j < p; j++) any |= !isnan(t->x[k * p + j]);
		if (p > FP_P2_N_CLINICAL && !any) t->n_without_features++;
		k++;
	}
	if (open) {
		FP_CHECK(st, fp_file_writer_commit(&w));
		open = 0;
	}
	if (k == 0) {
		st = FP_FAIL(FP_ERR_DATA, "%s: all %zu patients are held out (--holdout %g); lower --holdout", t->site, t->n,
		             o->holdout);
		goto fail;
	}
	if (*n_test) FP_INFO("simulate: %s: %zu patients train, %zu held out (split seed %llu)", t->site, k, *n_test,
	                     (unsigned long long)o->split_seed);
	t->n = k;
fail:
	if (open) fp_file_writer_abort(&w);
	return st;
}

/* The local step of the comparison models (centralised, local-only): one rank
 * holds the rows of one or more centres, concatenated centre by centre, and
 * trains the same model with the same plan as a federated site does, except
 * that its Cox likelihood has one stratum per centre (risk sets still never
 * cross centres). Owned arrays; strat_destroy accepts NULL. */
struct strat_trainer {
	struct fp_kernels *k;
	struct fp_part2_model *m;
	int n, p, n_strata;
	size_t n_params;
	int *strata;                                   /* (n_strata + 1) */
	float *x;                                      /* (n, p) */
	float *time, *event, *ostime, *osevent, *w_new;
	int *regimen;
};

static void strat_destroy(struct strat_trainer *t)
{
	if (!t) return;
	fp_part2_destroy(t->m);
	fp_kernels_destroy(t->k);
	free(t->strata);
	free(t->x);
	free(t->time);
	free(t->event);
	free(t->ostime);
	free(t->osevent);
	free(t->w_new);
	free(t->regimen);
	free(t);
}

static enum fp_status strat_create(const struct fp_p2_table *tables, int n_tables, const struct fp_p2_stats *pooled,
                                   const struct fp_part2_config *cfg, struct strat_trainer **out)
{
	enum fp_status st = FP_OK;
	struct strat_trainer *t = calloc(1, sizeof *t);
	double *design = NULL;
	char(*names)[FP_P2_NAME_MAX] = NULL;
	size_t n = 0, np;
	void *v;
	*out = NULL;
	if (!t) return FP_FAIL(FP_ERR_NOMEM, "part2 comparison trainer");
	for (int s = 0; s < n_tables; s++) n += tables[s].n;
	if (n > 1000000) {
		st = FP_FAIL(FP_ERR_LIMIT, "part2: %zu patients on one rank; at most 1000000", n);
		goto fail;
	}
	t->n = (int)n;
	t->p = fp_p2_design_width(pooled);
	t->n_strata = n_tables;
	FP_CHECK(st, fp_size_mul(n, (size_t)t->p, &np, "part2 design"));
	FP_CHECK(st, fp_alloc_array(np + 1, sizeof(float), &v, "part2 design")); t->x = v;
	FP_CHECK(st, fp_alloc_array(n + 1, sizeof(float), &v, "part2")); t->time = v;
	FP_CHECK(st, fp_alloc_array(n + 1, sizeof(float), &v, "part2")); t->event = v;
	FP_CHECK(st, fp_alloc_array(n + 1, sizeof(float), &v, "part2")); t->ostime = v;
	FP_CHECK(st, fp_alloc_array(n + 1, sizeof(float), &v, "part2")); t->osevent = v;
	FP_CHECK(st, fp_alloc_array(n + 1, sizeof(int), &v, "part2")); t->regimen = v;
	FP_CHECK(st, fp_alloc_array((size_t)n_tables + 1, sizeof(int), &v, "part2 strata")); t->strata = v;
	size_t r = 0;
	for (int s = 0; s < n_tables; s++) {
		const struct fp_p2_table *tb = &tables[s];
		int pw = 0;
		/* Each centre standardised with the same pooled statistics, as a site would. */
		FP_CHECK(st, fp_p2_standardise(tb, pooled, &design, &pw, &names));
		if (pw != t->p) {
			st = FP_FAIL(FP_ERR_INTERNAL, "part2: %s: design has %d columns, expected %d", tb->site, pw, t->p);
			goto fail;
		}
		t->strata[s] = (int)r;
		for (size_t i = 0; i < tb->n; i++, r++) {
			for (int j = 0; j < pw; j++) t->x[r * (size_t)pw + (size_t)j] = (float)design[i * (size_t)pw + (size_t)j];
			t->time[r] = (float)tb->rfs_time[i];
			t->event[r] = (float)tb->rfs_event[i];
			int has_os = !isnan(tb->os_time[i]) && tb->os_event[i] >= 0;
			t->ostime[r] = has_os ? (float)tb->os_time[i] : NAN;
			t->osevent[r] = has_os ? (float)tb->os_event[i] : 0.0f;
			t->regimen[r] = tb->regimen[i];
		}
		free(design);
		free(names);
		design = NULL;
		names = NULL;
	}
	t->strata[n_tables] = (int)r;
	struct fp_kernels_options ko;
	fp_kernels_options_default(&ko);
	ko.threads = 1;
	FP_CHECK(st, fp_kernels_create(&ko, &t->k));
	FP_CHECK(st, fp_part2_create(t->k, t->p, t->n > 2 ? t->n : 2, cfg, &t->m));
	t->n_params = fp_part2_n_params(t->m);
	FP_CHECK(st, fp_alloc_array(t->n_params, sizeof(float), &v, "part2 weights")); t->w_new = v;
	*out = t;
	t = NULL;
fail:
	free(design);
	free(names);
	strat_destroy(t);
	return st;
}

static struct fp_part2_batch strat_batch(const struct strat_trainer *t)
{
	struct fp_part2_batch b = {t->n,       t->p,       t->x,           t->regimen,  t->time,
	                           t->event,   t->ostime,  t->osevent,     t->n_strata, t->strata};
	return b;
}

static enum fp_status strat_init(void *ctx, float *w)
{
	struct strat_trainer *t = ctx;
	return fp_part2_get_params(t->m, w);
}

/* One round: fp_part2_train from the global weights with the plan's FedProx
 * mu; cfg.steps was set from the plan at creation, as for a federated site. */
static enum fp_status strat_train(void *ctx, const float *weights, int64_t round, const struct fp_study_plan *plan,
                                  float *update, uint64_t *n_samples, double *loss)
{
	struct strat_trainer *t = ctx;
	struct fp_part2_batch b = strat_batch(t);
	struct fp_part2_loss l;
	(void)round;
	FP_TRY(fp_part2_set_params(t->m, weights));
	FP_TRY(fp_part2_train(t->m, &b, weights, plan->fedprox_mu, &l));
	FP_TRY(fp_part2_get_params(t->m, t->w_new));
	for (size_t i = 0; i < t->n_params; i++) update[i] = t->w_new[i] - weights[i];
	*n_samples = (uint64_t)t->n;
	*loss = l.total;
	return FP_OK;
}

struct site_baseline {
	int32_t status;
	char site[33];
	uint64_t n_train, n_test;
	double h0[FP_P2_N_HORIZONS];
};

/* The tables this rank trains on, split applied. Federated: its own centre;
 * centralised: every centre; local-only: the named centre (rank 1 only). */
static enum fp_status load_tables(const char *cohort, char **centres, int n_centres, const struct p2_options *o,
                                  int rank, struct fp_p2_table **tables_out, int *n_out, size_t **n_test_out)
{
	enum fp_status st = FP_OK;
	int first = 0, count = 0;
	struct fp_p2_table *tables = NULL;
	size_t *n_test = NULL;
	*tables_out = NULL;
	*n_out = 0;
	*n_test_out = NULL;
	if (rank == 0) return FP_OK;
	if (o->mode == MODE_FEDERATED) {
		first = rank - 1, count = 1;
	} else if (o->mode == MODE_CENTRALISED) {
		first = 0, count = n_centres;
	} else {
		first = -1, count = 1;
		for (int c = 0; c < n_centres; c++)
			if (strcmp(centres[c], o->local_site) == 0) first = c;
		if (first < 0)
			return FP_FAIL(FP_ERR_NOT_FOUND, "--local-only %s: no centre folder of that name in %s", o->local_site,
			               cohort);
	}
	tables = calloc((size_t)count, sizeof *tables);
	n_test = calloc((size_t)count, sizeof *n_test);
	if (!tables || !n_test) {
		st = FP_FAIL(FP_ERR_NOMEM, "part2 tables");
		goto fail;
	}
	if (o->mode != MODE_CENTRALISED) fp_log_set_site(centres[first]);
	for (int s = 0; s < count; s++) {
		const char *site = centres[first + s];
		char path[4096], feat[4096];
		struct stat sb;
		snprintf(path, sizeof path, "%s/%s/clinical.csv", cohort, site);
		snprintf(feat, sizeof feat, "%s/%s/features.csv", cohort, site);
		int has_feat = !o->mil && stat(feat, &sb) == 0;
		if (!has_feat && !o->mil) FP_WARN("simulate: %s has no features.csv; its table has clinical columns only", site);
		FP_CHECK(st, fp_p2_site_load(path, has_feat ? feat : NULL, site, &tables[s]));
		FP_CHECK(st, apply_split(&tables[s], o, &n_test[s]));
	}
	*tables_out = tables;
	*n_out = count;
	*n_test_out = n_test;
	return FP_OK;
fail:
	for (int s = 0; s < count && tables; s++) fp_p2_table_close(&tables[s]);
	free(tables);
	free(n_test);
	return st;
}

static enum fp_status run(const struct fp_study_plan *plan, const char *cohort, const struct p2_options *o, int rank,
                          int size)
{
	enum fp_status st;
	char **centres = NULL;
	int n_centres = 0, n_tables = 0, *counts = NULL, *displs = NULL;
	struct fp_p2_table *tables = NULL;
	size_t *n_test = NULL;
	struct fp_p2_stats local, pooled;
	struct fp_p2_trainer *tr = NULL;      /* federated site, or rank 0's model shape */
	struct strat_trainer *strat = NULL;   /* comparison models' data rank */
	struct fp_part2_config cfg;
	struct fp_local_trainer lt;
	struct fp_sim_result res = {0};
	struct site_baseline *mine = NULL, *all = NULL;
	struct fp_p2_ckpt ck = {0};
	struct fp_p2_bagset bags = {0};
	float *model = NULL;
	int n_mine = 0, n_all = 0;
	void *v;

	st = list_centres(cohort, &centres, &n_centres);
	int ranks_needed = o->mode == MODE_FEDERATED ? n_centres + 1 : 2;
	if (st == FP_OK && size != ranks_needed)
		st = FP_FAIL(FP_ERR_CONFIG, "%s has %d centre folders; a %s run needs %d ranks but the job has %d: run mpirun -np %d",
		             cohort, n_centres, mode_names[o->mode], ranks_needed, size, ranks_needed);
	if (st == FP_OK) st = load_tables(cohort, centres, n_centres, o, rank, &tables, &n_tables, &n_test);
	FP_CHECK(st, agree(st, "loading the centre's tables"));
	fp_part2_config_default(&cfg);
	cfg.lr = FP_P2FED_DEFAULT_LR; /* the rounds' learning rate, as over TLS */
	cfg.seed = (uint64_t)plan->seed;
	if (o->mil) {
		cfg.kind = FP_P2_MIL;
		cfg.attn = (int)plan->part2_attn;
		cfg.bag_cap = (int)plan->part2_bag_cap;
	}
	/* MIL: the bags of the training rows (the split is applied) */
	if (o->mil && rank > 0) {
		char dir[4096], clin[4096];
		snprintf(dir, sizeof dir, "%s/%s", o->caches, tables[0].site);
		snprintf(clin, sizeof clin, "%s/%s/clinical.csv", cohort, tables[0].site);
		st = fp_p2_site_bags(&tables[0], clin, dir, tables[0].site, &cfg, &bags);
		if (st == FP_OK && bags.bags.e != (int)plan->part2_embed_dim)
			st = FP_FAIL(FP_ERR_DATA, "%s: the tile caches in %s hold embeddings of width %d but the plan says "
			             "part2.embed_dim = %ld (the Part 1 model's width3 that quantified them)", tables[0].site,
			             dir, bags.bags.e, plan->part2_embed_dim);
	}
	FP_CHECK(st, agree(st, "building the centre's MIL bags"));
	/* Standardisation before round 1 from sums and counts of the training
	 * rows only; a centralised rank merges its centres in the same order as
	 * the federated pooling does, so both get the same statistics. */
	memset(&local, 0, sizeof local);
	st = FP_OK;
	for (int s = 0; s < n_tables && st == FP_OK; s++) {
		struct fp_p2_stats one;
		fp_p2_stats_local(&tables[s], &one);
		st = fp_p2_stats_merge(&local, &one);
	}
	FP_CHECK(st, agree(st, "merging the centres' statistics"));
	FP_CHECK(st, agree(fp_p2_pool_mpi(MPI_COMM_WORLD, rank > 0 ? &local : NULL, &pooled), "pooling statistics"));
	cfg.hidden = o->hidden;
	if (!isnan(o->lr)) cfg.lr = o->lr;
	if (!isnan(o->weight_decay)) cfg.weight_decay = o->weight_decay;
	/* The effective steps per round, stored in the checkpoint as trained. */
	cfg.steps = plan->local_steps > 0 ? plan->local_steps : plan->local_epochs * cfg.steps;
	if (o->mil)
		st = fp_p2_trainer_create_mil(rank > 0 ? &tables[0] : NULL, rank > 0 ? &bags.bags : NULL,
		                              (int)plan->part2_embed_dim, &pooled, &cfg, &tr);
	else if (rank == 0 || o->mode == MODE_FEDERATED)
		st = fp_p2_trainer_create(rank > 0 ? &tables[0] : NULL, &pooled, &cfg, &tr);
	else
		st = strat_create(tables, n_tables, &pooled, &cfg, &strat);
	FP_CHECK(st, agree(st, "building the model"));
	if (tr) {
		fp_p2_trainer_local(tr, &lt);
	} else {
		lt.ctx = strat;
		lt.n_params = strat->n_params;
		lt.init_weights = strat_init;
		lt.train = strat_train;
	}
	if (rank == 0)
		FP_INFO("simulate: %s%s, %d centres, %llu training patients, %d design columns, %zu parameters, %ld rounds",
		        mode_names[o->mode], o->mil ? " mil" : "", o->mode == MODE_LOCAL ? 1 : n_centres, (unsigned long long)pooled.n_patients,
		        fp_p2_design_width(&pooled), lt.n_params, plan->rounds);
	FP_CHECK(st, fp_alloc_array(lt.n_params, sizeof(float), &v, "model")); model = v;
	const char *site_id = rank == 0 ? "" : o->mode == MODE_CENTRALISED ? "pooled" : tables[0].site;
	FP_CHECK(st, fp_simulate_run(MPI_COMM_WORLD, plan, site_id, &lt, rank == 0 ? model : NULL, &res));
	/* Every centre's Breslow baseline under the final model: three numbers
	 * each, with its train/test counts. */
	MPI_Bcast(model, (int)lt.n_params, MPI_FLOAT, 0, MPI_COMM_WORLD);
	n_mine = n_tables;
	if (n_mine > 0 && !(mine = calloc((size_t)n_mine, sizeof *mine))) MPI_Abort(MPI_COMM_WORLD, 1);
	if (strat) {
		double *h0 = calloc((size_t)n_tables * FP_P2_N_HORIZONS, sizeof *h0);
		struct fp_part2_batch b = strat_batch(strat);
		enum fp_status bs = h0 ? fp_part2_set_params(strat->m, model) : FP_FAIL(FP_ERR_NOMEM, "baselines");
		if (bs == FP_OK) bs = fp_part2_baseline(strat->m, &b, fp_p2_horizons, FP_P2_N_HORIZONS, h0);
		if (bs != FP_OK) fp_log_error_last("baseline");
		for (int s = 0; s < n_tables; s++) {
			mine[s].status = bs;
			if (h0) memcpy(mine[s].h0, h0 + (size_t)s * FP_P2_N_HORIZONS, sizeof mine[s].h0);
		}
		free(h0);
	} else if (mine) {
		mine[0].status = fp_p2_trainer_baseline(tr, model, mine[0].h0);
		if (mine[0].status != FP_OK) fp_log_error_last("baseline");
	}
	for (int s = 0; s < n_mine; s++) {
		snprintf(mine[s].site, sizeof mine[s].site, "%s", tables[s].site);
		mine[s].n_train = tables[s].n;
		mine[s].n_test = n_test[s];
	}
	int bytes = n_mine * (int)sizeof *mine;
	if (rank == 0 && (!(counts = calloc((size_t)size, sizeof *counts)) || !(displs = calloc((size_t)size, sizeof *displs))))
		MPI_Abort(MPI_COMM_WORLD, 1);
	MPI_Gather(&bytes, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		for (int r = 0; r < size; r++) {
			displs[r] = n_all * (int)sizeof *all;
			n_all += counts[r] / (int)sizeof *all;
		}
		if (!(all = calloc((size_t)n_all + 1, sizeof *all))) MPI_Abort(MPI_COMM_WORLD, 1);
	}
	MPI_Gatherv(mine, bytes, MPI_BYTE, all, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		ck.cfg = cfg;
		ck.pooled = pooled;
		ck.p = fp_p2_design_width(&pooled);
		ck.n_params = lt.n_params;
		ck.rounds = (long)res.rounds_done;
		ck.n_sites = n_all;
		ck.embed_dim = o->mil ? (int)plan->part2_embed_dim : 0;
		FP_CHECK(st, fp_calloc_array((size_t)ck.p, FP_P2_NAME_MAX, &v, "names")); ck.names = v;
		memcpy(ck.names, fp_p2_trainer_names(tr), (size_t)ck.p * FP_P2_NAME_MAX);
		FP_CHECK(st, fp_calloc_array((size_t)n_all + 1, sizeof *ck.sites, &v, "sites")); ck.sites = v;
		FP_CHECK(st, fp_calloc_array((size_t)n_all + 1, sizeof *ck.h0, &v, "baselines")); ck.h0 = v;
		uint64_t n_train = 0, n_held = 0;
		for (int s = 0; s < n_all; s++) {
			all[s].site[sizeof all[s].site - 1] = '\0';
			if (all[s].status != FP_OK) {
				st = FP_FAIL(FP_ERR_STATE, "centre %s could not compute its baseline (message above)", all[s].site);
				goto fail;
			}
			memcpy(ck.sites[s], all[s].site, sizeof ck.sites[0]);
			memcpy(ck.h0[s], all[s].h0, sizeof ck.h0[0]);
			n_train += all[s].n_train;
			n_held += all[s].n_test;
		}
		ck.params = model;
		st = fp_p2_ckpt_save(&ck, o->out);
		ck.params = NULL;
		if (st != FP_OK) goto fail;
		if (strcmp(ck.model_hash, res.model_hash) != 0) {
			st = FP_FAIL(FP_ERR_INTERNAL, "checkpoint hash %s differs from the aggregator's %s", ck.model_hash,
			             res.model_hash);
			goto fail;
		}
		printf("rounds %lld\nmodel %s\ncheckpoint %s\nmode %s\ncentres", (long long)res.rounds_done, res.model_hash,
		       o->out, mode_names[o->mode]);
		for (int s = 0; s < n_all; s++) printf("%s%s", s ? "," : " ", all[s].site);
		printf("\ntraining_patients %llu\nheld_out_patients %llu\n", (unsigned long long)n_train,
		       (unsigned long long)n_held);
	}
fail:
	fp_p2_ckpt_close(&ck);
	free(all);
	free(mine);
	free(counts);
	free(displs);
	free(model);
	fp_p2_trainer_destroy(tr);
	fp_p2_bagset_close(&bags);
	strat_destroy(strat);
	for (int s = 0; s < n_tables; s++) fp_p2_table_close(&tables[s]);
	free(tables);
	free(n_test);
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
		/* A truth_dir the --train-config sets (not the default "truth")
		 * is kept, resolved against its data_dir; otherwise DIR/truth. */
		char truth[sizeof c.truth_dir];
		int own_truth = train_cfg && c.labels == FP_LABELS_TRUTH && strcmp(c.truth_dir, "truth") != 0;
		if (own_truth) fp_train_config_resolve(&c, c.truth_dir, truth, sizeof truth);
		c.data_dir[0] = '\0';
		snprintf(c.caches, sizeof c.caches, "%s/%s", caches, site);
		if (!train_cfg || c.labels == FP_LABELS_TRUTH) {
			c.labels = FP_LABELS_TRUTH;
			if (own_truth)
				snprintf(c.truth_dir, sizeof c.truth_dir, "%s", truth);
			else
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
	long hidden = 16, split_seed = 1;
	struct p2_options o = {.lr = NAN, .weight_decay = NAN};
	int rc, split_given = 0;
	if (fp_cli_wants_help(argc, argv)) {
		fputs(fp_cmd_simulate_usage, stdout);
		return FP_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		int lo = fp_cli_log_option("simulate", argc, argv, &i);
		if (lo < 0) return FP_EXIT_USAGE;
		if (lo > 0) continue;
		const char *a = argv[i];
		if (strcmp(a, "--centralised") == 0 || strcmp(a, "--centralized") == 0) {
			if (o.mode == MODE_LOCAL) return fp_cli_usage_error("simulate", "--centralised and --local-only exclude each other");
			o.mode = MODE_CENTRALISED;
			continue;
		}
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
		} else if (strcmp(a, "--local-only") == 0) {
			if (o.mode == MODE_CENTRALISED)
				return fp_cli_usage_error("simulate", "--centralised and --local-only exclude each other");
			o.mode = MODE_LOCAL;
			o.local_site = val;
		} else if (strcmp(a, "--holdout") == 0) {
			if ((rc = fp_cli_parse_double("simulate", a, val, 0, 0.9, &o.holdout)) != FP_EXIT_OK) return rc;
			split_given = 1;
		} else if (strcmp(a, "--split-seed") == 0) {
			if ((rc = fp_cli_parse_long("simulate", a, val, 0, 2147483647L, &split_seed)) != FP_EXIT_OK) return rc;
			split_given = 1;
		} else if (strcmp(a, "--split-out") == 0) {
			o.split_out = val;
			split_given = 1;
		} else if (strcmp(a, "--lr") == 0) {
			if ((rc = fp_cli_parse_double("simulate", a, val, 1e-6, 1, &o.lr)) != FP_EXIT_OK) return rc;
		} else if (strcmp(a, "--weight-decay") == 0) {
			if ((rc = fp_cli_parse_double("simulate", a, val, 0, 0.999, &o.weight_decay)) != FP_EXIT_OK) return rc;
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
	if (plan.model == FP_PLAN_PART1 && (split_given || o.mode != MODE_FEDERATED || !isnan(o.lr) || !isnan(o.weight_decay)))
		return fp_cli_usage_error("simulate", "%s: --holdout, --split-*, --centralised, --local-only, --lr and --weight-decay are Part 2 options "
		                          "(model = part2)", plan_path);
	char ckpt[4096];
	if (!out) {
		snprintf(ckpt, sizeof ckpt, "%s/part2-model.ckpt", plan.state_dir);
		out = ckpt;
	}
	o.mil = plan.model == FP_PLAN_PART2 && plan.part2_kind == FP_PLAN_P2_MIL;
	o.caches = caches;
	if (o.mil && !caches)
		return fp_cli_usage_error("simulate", "%s: part2.kind = mil needs --caches DIR (centre C's quantified tile "
		                          "caches in DIR/C)", plan_path);
	if (o.mil && o.mode != MODE_FEDERATED)
		return fp_cli_usage_error("simulate", "%s: --centralised and --local-only build summary comparison models; "
		                          "they are not available with part2.kind = mil", plan_path);
	if (plan.model == FP_PLAN_PART2 && !o.mil && caches)
		return fp_cli_usage_error("simulate", "%s: --caches is read by part1 plans and part2.kind = mil only (this plan "
		                          "trains the summary model on features.csv)", plan_path);
	o.out = out;
	o.hidden = (int)hidden;
	o.split_seed = (uint64_t)split_seed;
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
	                                                : run(&plan, cohort, &o, rank, size);
	rc = FP_EXIT_OK;
	if (st != FP_OK) rc = fp_cli_runtime_error("simulate", rank ? "site" : "aggregator", NULL);
	MPI_Finalize();
	return rc;
}
