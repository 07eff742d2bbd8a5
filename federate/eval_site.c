/*
 * eval_site.c: fp_eval_site_summary (fp_eval_site.h). Predicts the site's
 * patients as `fedpath predict` does and reduces them to the report's site
 * summary; patient rows stay in this function's memory and are freed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fp_common.h"
#include "fp_eval_site.h"
#include "fp_hash.h"
#include "fp_kernels.h"
#include "fp_report.h"
#include "fp_trainers.h"

#define EVAL_MAX_PATIENTS 10000000

/* hex SHA-256 of clinical.csv, or of the two files' digests concatenated */
static enum fp_status snapshot_hash(const char *clinical, const char *features, char out[FP_SHA256_HEX_SIZE])
{
	uint8_t d[2 * FP_SHA256_SIZE], h[FP_SHA256_SIZE];
	FP_TRY(fp_sha256_file(clinical, d));
	if (!features) {
		fp_hex_encode(d, FP_SHA256_SIZE, out);
		return FP_OK;
	}
	FP_TRY(fp_sha256_file(features, d + FP_SHA256_SIZE));
	FP_TRY(fp_sha256(d, sizeof d, h));
	fp_hex_encode(h, FP_SHA256_SIZE, out);
	return FP_OK;
}

static enum fp_status snapshot_date(const char *clinical, char out[16])
{
	struct stat sb;
	struct tm tm;
	if (stat(clinical, &sb) != 0) return FP_FAIL(FP_ERR_IO, "%s: cannot stat for the snapshot date", clinical);
	gmtime_r(&sb.st_mtime, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
	return FP_OK;
}

/* Mean and SD of each raw column; a 0/1 column with a small count in either
 * value is withheld (its mean would give the count). */
static json_t *table1_variables(const struct fp_p2_table *t, double min_cell)
{
	json_t *a = json_array();
	for (int j = 0; j < t->p; j++) {
		double n = 0, s = 0, ss = 0, ones = 0;
		int binary = 1;
		for (size_t i = 0; i < t->n; i++) {
			double v = t->x[i * (size_t)t->p + (size_t)j];
			if (isnan(v)) continue;
			n += 1;
			s += v;
			ss += v * v;
			if (v == 1) ones += 1;
			else if (v != 0) binary = 0;
		}
		int small = binary && ((ones > 0 && ones < min_cell) || (n - ones > 0 && n - ones < min_cell));
		double mean = n > 0 ? s / n : NAN, var = n > 1 ? (ss - s * s / n) / (n - 1) : NAN;
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(t->names[j]));
		json_object_set_new(o, "n", json_real(n));
		json_object_set_new(o, "mean", !small && isfinite(mean) ? json_real(mean) : json_null());
		json_object_set_new(o, "sd", !small && isfinite(var) ? json_real(sqrt(fmax(var, 0))) : json_null());
		json_array_append_new(a, o);
	}
	return a;
}

enum fp_status fp_eval_site_summary(const struct fp_eval_site_input *in, json_t **out)
{
	enum fp_status st = FP_OK;
	struct fp_p2_ckpt own = {0};
	struct fp_p2_table tab = {0};
	struct fp_kernels *k = NULL;
	struct fp_part2_model *m = NULL;
	struct fp_part2_mil *mil = NULL;
	struct fp_p2_bagset own_bags = {0};
	double *design = NULL, *time = NULL, *risk = NULL, *ps = NULL;
	char(*names)[FP_P2_NAME_MAX] = NULL;
	float *x = NULL, *eta = NULL, *prop = NULL;
	unsigned char *event = NULL, *label = NULL;
	int *arm = NULL, *rec = NULL, pw = 0;
	json_t *o = NULL;
	void *v;
	*out = NULL;
	if (!in->site || !*in->site) return FP_FAIL(FP_ERR_INVALID_ARG, "evaluation: no site id");
	const struct fp_p2_ckpt *ck = in->model;
	if (!ck) {
		if (!in->model_path) return FP_FAIL(FP_ERR_INVALID_ARG, "evaluation at %s: no model", in->site);
		FP_CHECK(st, fp_p2_ckpt_load(in->model_path, &own));
		ck = &own;
	}
	const char *model_name = in->model_path ? in->model_path : "the model";
	int q = -1;
	for (int j = 0; j < FP_P2_N_HORIZONS; j++)
		if (fp_p2_horizons[j] == in->horizon) q = j;
	if (q < 0) {
		st = FP_FAIL(FP_ERR_INVALID_ARG, "evaluation at %s: horizon %g months; the model's baseline is stored at 12, 24 "
		                                 "and 36 only", in->site, in->horizon);
		goto fail;
	}
	const char *bsite = in->baseline_site ? in->baseline_site : in->site;
	int ks = -1;
	for (int s = 0; s < ck->n_sites; s++)
		if (strcmp(ck->sites[s], bsite) == 0) ks = s;
	if (ks < 0) {
		st = FP_FAIL(FP_ERR_NOT_FOUND, "evaluation: %s has no baseline hazard for centre '%s' (set baseline_site)",
		             model_name, bsite);
		goto fail;
	}
	const struct fp_p2_table *t = in->table;
	if (!t) {
		if (!in->clinical_csv) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "evaluation at %s: no table and no clinical.csv", in->site);
			goto fail;
		}
		FP_CHECK(st, fp_p2_site_load(in->clinical_csv, in->features_csv, in->site, &tab));
		t = &tab;
	}
	if (fp_p2_standardise(t, &ck->pooled, &design, &pw, &names) != FP_OK) {
		st = fp_error_wrap("evaluation at %s: the site's columns do not match %s", in->site, model_name);
		goto fail;
	}
	if (pw != ck->p) {
		st = FP_FAIL(FP_ERR_DATA, "evaluation at %s: design width %d, the model's %d", in->site, pw, ck->p);
		goto fail;
	}
	for (int j = 0; j < pw; j++)
		if (strcmp(names[j], ck->names[j]) != 0) {
			st = FP_FAIL(FP_ERR_DATA, "evaluation at %s: design column %d is '%s' here but '%s' in %s", in->site, j + 1,
			             names[j], ck->names[j], model_name);
			goto fail;
		}
	if (t->n == 0 || t->n > EVAL_MAX_PATIENTS) {
		st = FP_FAIL(FP_ERR_LIMIT, "evaluation at %s: %zu patients (1..%d)", in->site, t->n, EVAL_MAX_PATIENTS);
		goto fail;
	}
	size_t n = t->n, nx;
	FP_CHECK(st, fp_size_mul(n, (size_t)pw, &nx, "evaluation design"));
	FP_CHECK(st, fp_alloc_array(nx, sizeof *x, &v, "evaluation design")); x = v;
	for (size_t i = 0; i < nx; i++) x[i] = (float)design[i];
	FP_CHECK(st, fp_alloc_array(n * FP_P2_REGIMENS, sizeof *eta, &v, "eta")); eta = v;
	FP_CHECK(st, fp_alloc_array(n * FP_P2_REGIMENS, sizeof *prop, &v, "propensity")); prop = v;
	struct fp_kernels_options ko;
	fp_kernels_options_default(&ko);
	ko.threads = 1;
	FP_CHECK(st, fp_kernels_create(&ko, &k));
	size_t np;
	if (ck->cfg.kind == FP_P2_MIL) {
		const struct fp_part2_bags *bags = in->bags;
		if (!bags && in->caches_dir && in->clinical_csv) {
			FP_CHECK(st, fp_p2_site_bags(t, in->clinical_csv, in->caches_dir, in->site, &ck->cfg, &own_bags));
			bags = &own_bags.bags;
		}
		if (!bags) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "evaluation at %s: %s is a MIL model: it needs the site's tile-embedding "
			             "bags (the quantified tile caches)", in->site, model_name);
			goto fail;
		}
		if (bags->n < 0 || (size_t)bags->n != n || bags->e != ck->embed_dim) {
			st = FP_FAIL(FP_ERR_DATA, "evaluation at %s: %d bags of embedding width %d for %zu patients; %s takes "
			             "width %d", in->site, bags->n, bags->e, n, model_name, ck->embed_dim);
			goto fail;
		}
		FP_CHECK(st, fp_part2_mil_create(k, pw, ck->embed_dim, n > 2 ? (int)n : 2, &ck->cfg, &mil));
		np = fp_part2_mil_n_params(mil);
		if (np == ck->n_params) {
			FP_CHECK(st, fp_part2_mil_set_params(mil, ck->params));
			FP_CHECK(st, fp_part2_mil_predict(mil, x, bags, eta, prop, NULL, NULL));
		}
	} else {
		FP_CHECK(st, fp_part2_create(k, pw, (int)n, &ck->cfg, &m));
		np = fp_part2_n_params(m);
		if (np == ck->n_params) {
			FP_CHECK(st, fp_part2_set_params(m, ck->params));
			FP_CHECK(st, fp_part2_predict(m, x, (int)n, eta, prop, NULL));
		}
	}
	if (np != ck->n_params) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: %zu parameters, the configuration gives %zu", model_name, ck->n_params, np);
		goto fail;
	}

	/* rows: (n) each; ps: (n, 3) */
	FP_CHECK(st, fp_alloc_array(n, sizeof *time, &v, "evaluation rows")); time = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof *risk, &v, "evaluation rows")); risk = v;
	FP_CHECK(st, fp_alloc_array(n * FP_P2_REGIMENS, sizeof *ps, &v, "evaluation rows")); ps = v;
	FP_CHECK(st, fp_alloc_array(n, 1, &v, "evaluation rows")); event = v;
	FP_CHECK(st, fp_alloc_array(n, 1, &v, "evaluation rows")); label = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof *arm, &v, "evaluation rows")); arm = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof *rec, &v, "evaluation rows")); rec = v;
	double h0 = ck->h0[ks][q], counts[FP_P2_REGIMENS] = {0};
	for (size_t i = 0; i < n; i++) {
		const float *e = eta + i * FP_P2_REGIMENS;
		int a = t->regimen[i];
		if (a < 0 || a >= FP_P2_REGIMENS) {
			st = FP_FAIL(FP_ERR_DATA, "evaluation at %s: patient %zu has regimen %d", in->site, i + 1, a);
			goto fail;
		}
		time[i] = t->rfs_time[i];
		event[i] = t->rfs_event[i] == 1;
		risk[i] = 1 - exp(-h0 * exp((double)e[a]));
		label[i] = event[i] && time[i] <= in->horizon ? 1 : time[i] > in->horizon ? 0 : FP_REPORT_LABEL_UNKNOWN;
		arm[i] = a;
		rec[i] = fp_part2_recommend(e, ck->cfg.margin);
		for (int j = 0; j < FP_P2_REGIMENS; j++) ps[i * FP_P2_REGIMENS + j] = (double)prop[i * FP_P2_REGIMENS + j];
		counts[a] += 1;
	}
	/* the hash of the parameters evaluated, whatever the checkpoint struct
	 * says: an in-memory model (the agent's) may not have one yet */
	char mhash[FP_SHA256_HEX_SIZE], hash[FP_SHA256_HEX_SIZE], date[16];
	FP_CHECK(st, fp_p2_params_hash(ck->params, ck->n_params, mhash));
	const char *sh = in->snapshot_hash, *sd = in->snapshot_date;
	if (!sh && in->clinical_csv) {
		FP_CHECK(st, snapshot_hash(in->clinical_csv, in->features_csv, hash));
		sh = hash;
	}
	if (!sd && in->clinical_csv) {
		FP_CHECK(st, snapshot_date(in->clinical_csv, date));
		sd = date;
	}
	struct fp_report_rows rows = {in->site, n, time, event, risk, label, risk, FP_P2_REGIMENS, arm, rec, ps};
	struct fp_report_site_options ro = {in->horizon, in->horizon, in->grid_edges, in->grid_cells,
	                                    {in->risk_cuts[0], in->risk_cuts[1]}, in->min_cell, mhash, sh, sd};
	if (!(isfinite(ro.risk_cuts[0]) && isfinite(ro.risk_cuts[1])) || ro.risk_cuts[0] == ro.risk_cuts[1]) {
		ro.risk_cuts[0] = 1.0 / 3;
		ro.risk_cuts[1] = 2.0 / 3;
	}
	FP_CHECK(st, fp_report_site_summary(&rows, &ro, &o));
	json_object_set_new(o, "site", json_string(in->site));
	json_object_set_new(o, "model_rounds", json_integer((json_int_t)ck->rounds));
	json_object_set_new(o, "baseline_site", json_string(bsite));
	json_t *t1 = json_object_get(o, "table1");
	json_object_set_new(t1, "variables", table1_variables(t, in->min_cell));
	static const char *const rname[FP_P2_REGIMENS] = {"surgery", "tace", "tace_tki"};
	json_t *jr = json_object();
	/* One small count withheld alone would follow from n minus the others:
	 * then every regimen count is withheld. */
	int small = 0;
	for (int a = 0; a < FP_P2_REGIMENS; a++) small |= counts[a] > 0 && counts[a] < in->min_cell;
	for (int a = 0; a < FP_P2_REGIMENS; a++)
		json_object_set_new(jr, rname[a], small ? json_null() : json_real(counts[a]));
	json_object_set_new(t1, "regimens", jr);
	*out = o;
	o = NULL;
fail:
	json_decref(o);
	fp_part2_destroy(m);
	fp_part2_mil_destroy(mil);
	fp_p2_bagset_close(&own_bags);
	fp_kernels_destroy(k);
	free(design);
	free(names);
	free(x);
	free(eta);
	free(prop);
	free(time);
	free(risk);
	free(ps);
	free(event);
	free(label);
	free(arm);
	free(rec);
	fp_p2_table_close(&tab);
	fp_p2_ckpt_close(&own);
	return st;
}
