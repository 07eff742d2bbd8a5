/*
 * cmd_predict.c: `fedpath predict --model CKPT --clinical clinical.csv
 * --features features.csv --out predictions.csv`: the Part 2 model's answer
 * for each patient of one centre.
 *
 * The patient table is built as in training (federate/fp_trainers.h) and
 * standardised with the checkpoint's pooled statistics, so a patient is
 * scored on the scale the model was trained on. Survival under regimen a
 * uses the centre's own Breslow baseline (its stratum):
 *     S(t | x, a) = exp(-H0_site(t) exp(eta(x, a))),  t = 12, 24, 36 months.
 * The recommendation is fp_part2_recommend with the checkpoint's margin
 * (or --margin). The CSV is written atomically (fp_file_writer).
 * A MIL checkpoint (train/fp_part2_mil.h) reads the tile embeddings from the
 * centre's tile caches (--caches) instead of features.csv, bags built and
 * capped exactly as in training (fp_p2_site_bags), and writes the same columns.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_kernels.h"
#include "fp_part2_ckpt.h"
#include "fp_trainers.h"

const char fp_cmd_predict_usage[] =
	"Usage: fedpath predict --model CKPT --clinical clinical.csv --features features.csv --out CSV\n"
	"       fedpath predict --model MIL_CKPT --clinical clinical.csv --caches DIR --out CSV\n\n"
	"Scores every patient of clinical.csv with the Part 2 model CKPT (written by\n"
	"`fedpath simulate` or the aggregator) and writes one row per patient:\n"
	"  eta_<regimen>          log-hazard of recurrence under surgery, tace, tace_tki\n"
	"  rfs<12|24|36>_<regimen> recurrence-free survival at 1, 2, 3 years,\n"
	"                         S = exp(-H0(t) exp(eta)) with this centre's baseline H0\n"
	"  recommended            surgery, tace or tace_tki (a more intensive regimen only\n"
	"                         when its log-hazard is lower by at least the margin)\n"
	"  benefit_loghr          eta_surgery - eta_recommended (0 when surgery)\n"
	"  benefit_rfs36          rfs36_recommended - rfs36_surgery\n"
	"  model                  the model hash\n\n"
	"  --model CKPT           Part 2 checkpoint\n"
	"  --clinical FILE        the centre's clinical.csv (outcomes are not used)\n"
	"  --features FILE        features.csv from `fedpath quantify` (omit: clinical only,\n"
	"                         which works only for a model trained without features)\n"
	"  --caches DIR           the centre's quantified tile caches (a MIL model only: its\n"
	"                         patients' tile embeddings; the slides of clinical.csv must\n"
	"                         be readable to link caches to patients)\n"
	"  --out FILE             predictions CSV (replaced atomically)\n"
	"  --site ID              whose baseline hazard to use (default: the centre named\n"
	"                         in clinical.csv; it must be one of the model's centres)\n"
	"  --margin X             override the model's recommendation margin (log-hazard)\n"
	"  --log-level L, --log-json, --log-file PATH\n\n"
	"Exit status: 0 done, 1 runtime error, 2 usage error.\n";

static const char *const regimen_names[FP_P2_REGIMENS] = {"surgery", "tace", "tace_tki"};

/* The centre named in the clinical table (every row names the same one). */
static enum fp_status clinical_centre(const char *path, char site[33])
{
	struct fp_clinical *c = NULL;
	FP_TRY(fp_clinical_load(path, stderr, &c));
	snprintf(site, 33, "%s", fp_clinical_count(c) ? fp_clinical_row(c, 0)->centre : "");
	fp_clinical_destroy(c);
	return FP_OK;
}

static enum fp_status predict(const char *model_path, const char *clinical, const char *features, const char *caches,
                              const char *out, const char *site_opt, double margin)
{
	enum fp_status st;
	struct fp_p2_ckpt ck = {0};
	struct fp_p2_table t = {0};
	struct fp_kernels *k = NULL;
	struct fp_part2_model *m = NULL;
	struct fp_part2_mil *mil = NULL;
	struct fp_p2_bagset bags = {0};
	struct fp_file_writer w = {0};
	double *design = NULL;
	char(*names)[FP_P2_NAME_MAX] = NULL;
	float *x = NULL, *eta = NULL;
	char site[33];
	int pw = 0, open = 0;
	void *v;

	FP_CHECK(st, fp_p2_ckpt_load(model_path, &ck));
	int is_mil = caches != NULL;
	FP_CHECK(st, fp_p2_ckpt_require_kind(&ck, is_mil ? FP_P2_MIL : FP_P2_SUMMARY, model_path));
	if (is_mil && features) {
		st = FP_FAIL(FP_ERR_INVALID_ARG, "%s is a MIL model: it reads --caches, not --features", model_path);
		goto fail;
	}
	if (isnan(margin)) margin = ck.cfg.margin; /* NAN: the model's own */
	if (site_opt) snprintf(site, sizeof site, "%s", site_opt);
	else FP_CHECK(st, clinical_centre(clinical, site));
	int ks = -1;
	for (int s = 0; s < ck.n_sites; s++)
		if (strcmp(ck.sites[s], site) == 0) ks = s;
	if (ks < 0) {
		char list[512] = "";
		for (int s = 0; s < ck.n_sites && strlen(list) + 40 < sizeof list; s++)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", s ? ", " : "", ck.sites[s]);
		st = FP_FAIL(FP_ERR_NOT_FOUND,
		             "%s has no baseline hazard for centre '%s' (it has: %s); pass --site with the centre whose "
		             "baseline applies",
		             model_path, site, list);
		goto fail;
	}
	FP_CHECK(st, fp_p2_site_load(clinical, features, site, &t));
	if (is_mil) {
		FP_CHECK(st, fp_p2_site_bags(&t, clinical, caches, site, &ck.cfg, &bags));
		if (bags.bags.e != ck.embed_dim) {
			st = FP_FAIL(FP_ERR_DATA, "the tile caches in %s hold embeddings of width %d, model %s was trained on "
			             "width %d: quantify them with the Part 1 model the Part 2 model was trained with",
			             caches, bags.bags.e, model_path, ck.embed_dim);
			goto fail;
		}
	}
	if (fp_p2_standardise(&t, &ck.pooled, &design, &pw, &names) != FP_OK) {
		st = fp_error_wrap("%s does not match the columns of model %s", features ? features : clinical, model_path);
		goto fail;
	}
	if (pw != ck.p) {
		st = FP_FAIL(FP_ERR_INTERNAL, "design width %d differs from the model's %d", pw, ck.p);
		goto fail;
	}
	for (int j = 0; j < pw; j++)
		if (strcmp(names[j], ck.names[j]) != 0) {
			st = FP_FAIL(FP_ERR_DATA, "design column %d is '%s' here but '%s' in model %s", j + 1, names[j],
			             ck.names[j], model_path);
			goto fail;
		}
	if (t.n > 10000000) {
		st = FP_FAIL(FP_ERR_LIMIT, "%s: %zu patients; at most 10000000", clinical, t.n);
		goto fail;
	}
	size_t n = t.n, nx;
	FP_CHECK(st, fp_size_mul(n, (size_t)pw, &nx, "design"));
	FP_CHECK(st, fp_alloc_array(nx, sizeof(float), &v, "design")); x = v;
	for (size_t i = 0; i < nx; i++) x[i] = (float)design[i];
	FP_CHECK(st, fp_alloc_array(n * FP_P2_REGIMENS, sizeof(float), &v, "eta")); eta = v;
	struct fp_kernels_options ko;
	fp_kernels_options_default(&ko);
	ko.threads = 1;
	FP_CHECK(st, fp_kernels_create(&ko, &k));
	size_t np;
	if (is_mil) {
		FP_CHECK(st, fp_part2_mil_create(k, pw, ck.embed_dim, n > 2 ? (int)n : 2, &ck.cfg, &mil));
		np = fp_part2_mil_n_params(mil);
	} else {
		FP_CHECK(st, fp_part2_create(k, pw, (int)n, &ck.cfg, &m));
		np = fp_part2_n_params(m);
	}
	if (np != ck.n_params) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: %zu parameters but the model built from its configuration has %zu",
		             model_path, ck.n_params, np);
		goto fail;
	}
	if (is_mil) {
		FP_CHECK(st, fp_part2_mil_set_params(mil, ck.params));
		FP_CHECK(st, fp_part2_mil_predict(mil, x, &bags.bags, eta, NULL, NULL, NULL));
	} else {
		FP_CHECK(st, fp_part2_set_params(m, ck.params));
		FP_CHECK(st, fp_part2_predict(m, x, (int)n, eta, NULL, NULL));
	}

	FP_CHECK(st, fp_file_writer_open(&w, out, 0644));
	open = 1;
	fprintf(w.fp, "patient_id,baseline_site");
	for (int a = 0; a < FP_P2_REGIMENS; a++) fprintf(w.fp, ",eta_%s", regimen_names[a]);
	for (int q = 0; q < FP_P2_N_HORIZONS; q++)
		for (int a = 0; a < FP_P2_REGIMENS; a++) fprintf(w.fp, ",rfs%d_%s", (int)fp_p2_horizons[q], regimen_names[a]);
	fprintf(w.fp, ",recommended,benefit_loghr,benefit_rfs36,model\n");
	size_t counts[FP_P2_REGIMENS] = {0};
	for (size_t i = 0; i < n; i++) {
		const float *e = eta + i * FP_P2_REGIMENS;
		double s[FP_P2_N_HORIZONS][FP_P2_REGIMENS];
		for (int q = 0; q < FP_P2_N_HORIZONS; q++)
			for (int a = 0; a < FP_P2_REGIMENS; a++) s[q][a] = exp(-ck.h0[ks][q] * exp((double)e[a]));
		int rec = fp_part2_recommend(e, margin);
		counts[rec]++;
		fprintf(w.fp, "%s,%s", t.patient[i], site);
		for (int a = 0; a < FP_P2_REGIMENS; a++) fprintf(w.fp, ",%.6f", (double)e[a]);
		for (int q = 0; q < FP_P2_N_HORIZONS; q++)
			for (int a = 0; a < FP_P2_REGIMENS; a++) fprintf(w.fp, ",%.6f", s[q][a]);
		fprintf(w.fp, ",%s,%.6f,%.6f,%s\n", regimen_names[rec], (double)e[0] - (double)e[rec],
		        s[FP_P2_N_HORIZONS - 1][rec] - s[FP_P2_N_HORIZONS - 1][0], ck.model_hash);
	}
	FP_CHECK(st, fp_file_writer_commit(&w));
	open = 0;
	FP_INFO("predict: %zu patients of %s -> %s (surgery %zu, tace %zu, tace_tki %zu; model %.12s)", n, site, out,
	        counts[0], counts[1], counts[2], ck.model_hash);
fail:
	if (open) fp_file_writer_abort(&w);
	fp_part2_destroy(m);
	fp_part2_mil_destroy(mil);
	fp_kernels_destroy(k);
	fp_p2_bagset_close(&bags);
	free(eta);
	free(x);
	free(names);
	free(design);
	fp_p2_table_close(&t);
	fp_p2_ckpt_close(&ck);
	return st;
}

int fp_cmd_predict(int argc, char **argv)
{
	const char *model = NULL, *clinical = NULL, *features = NULL, *caches = NULL, *out = NULL, *site = NULL;
	double margin = NAN;
	int rc;
	if (fp_cli_wants_help(argc, argv)) {
		fputs(fp_cmd_predict_usage, stdout);
		return FP_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		int lo = fp_cli_log_option("predict", argc, argv, &i);
		if (lo < 0) return FP_EXIT_USAGE;
		if (lo > 0) continue;
		const char *a = argv[i];
		if (i + 1 >= argc) return fp_cli_usage_error("predict", "%s needs a value (or is unknown)", a);
		const char *val = argv[++i];
		if (strcmp(a, "--model") == 0) {
			model = val;
		} else if (strcmp(a, "--clinical") == 0) {
			clinical = val;
		} else if (strcmp(a, "--features") == 0) {
			features = val;
		} else if (strcmp(a, "--caches") == 0) {
			caches = val;
		} else if (strcmp(a, "--out") == 0) {
			out = val;
		} else if (strcmp(a, "--site") == 0) {
			site = val;
		} else if (strcmp(a, "--margin") == 0) {
			if ((rc = fp_cli_parse_double("predict", a, val, 0, 10, &margin)) != FP_EXIT_OK) return rc;
		} else {
			return fp_cli_usage_error("predict", "unknown option '%s'", a);
		}
	}
	if (!model || !clinical || !out) return fp_cli_usage_error("predict", "needs --model, --clinical and --out");
	if (predict(model, clinical, features, caches, out, site, margin) != FP_OK)
		return fp_cli_runtime_error("predict", "predict", NULL);
	printf("%s\n", out);
	return FP_EXIT_OK;
}
