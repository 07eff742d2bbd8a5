/*
 * test_eval_site.c: federated evaluation at a site (federate/fp_eval_site.h)
 * on a phantom cohort of two centres: the summary predicts as `fedpath
 * predict` does, releases no patient identifier, pools exactly, and
 * suppresses small cells.
 * TEST ONLY: features.csv holds the phantom's true TME quantities as a
 * stand-in for `fedpath quantify`'s output.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_eval_site.h"
#include "fp_kernels.h"
#include "fp_pool.h"
#include "fp_report.h"
#include "fp_synth.h"
#include "fp_test.h"
#include "fp_trainers.h"
#include "fp_validate.h"

#define CENTRES 2
#define PATIENTS 80
static const char *const sites[CENTRES] = {"H01", "H02"};

static void write_cohort(const char *dir)
{
	struct fp_synth_params sp;
	struct fp_synth_patient *pts = NULL;
	size_t n = 0;
	fp_synth_params_default(&sp);
	sp.centres = CENTRES;
	sp.patients = PATIENTS;
	sp.seed = 9;
	CHECK_OK(fp_synth_draw_cohort(&sp, &pts, &n));
	for (int c = 0; c < CENTRES; c++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, pts[c * PATIENTS].centre);
		CHECK_OK(fp_mkdir_p(path, 0755));
		snprintf(path, sizeof path, "%s/%s/clinical.csv", dir, pts[c * PATIENTS].centre);
		FILE *f = fopen(path, "w");
		CHECK(f != NULL);
		fprintf(f, "patient_id,centre,slide_file,age,sex,tnm_stage,child_pugh,afp_ng_ml,tumour_size_cm,mvi,"
		           "edmondson_grade,regimen,rfs_months,rfs_event,os_months,os_event\n");
		for (int i = 0; i < PATIENTS; i++) {
			const struct fp_synth_patient *p = &pts[c * PATIENTS + i];
			fprintf(f, "%s,%s,%s,%.0f,%c,%s,%c,%.1f,%.1f,%d,%d,%s,%.2f,%d,%.2f,%d\n", p->patient_id, p->centre,
			        p->slide_file, p->age, p->sex, fp_synth_stage_name(p->tnm_stage), p->child_pugh_b ? 'B' : 'A',
			        p->afp_ng_ml, p->tumour_size_cm, p->mvi, p->edmondson_grade, fp_synth_regimen_name(p->regimen),
			        p->rfs_months, p->rfs_event, p->os_months, p->os_event);
		}
		fclose(f);
		snprintf(path, sizeof path, "%s/%s/features.csv", dir, pts[c * PATIENTS].centre);
		f = fopen(path, "w");
		CHECK(f != NULL);
		fprintf(f, "patient_id,til_intra,til_margin,stroma_frac,necrosis_frac\n");
		for (int i = 0; i < PATIENTS; i++) {
			const struct fp_synth_patient *p = &pts[c * PATIENTS + i];
			fprintf(f, "%s,%.4f,%.4f,%.4f,%.4f\n", p->patient_id, p->til_intra, p->til_margin, p->stroma_frac,
			        p->necrosis_frac);
		}
		fclose(f);
	}
	free(pts);
}

struct cohort {
	struct fp_p2_table tab[CENTRES];
	struct fp_p2_ckpt ck;
	char model[4096];
};

/* Two centres and a (randomly initialised, then briefly trained) model
 * saved as a checkpoint with fixed baselines. */
static void cohort_open(struct cohort *co)
{
	const char *dir = fp_test_tmpdir();
	struct fp_p2_stats pooled;
	memset(co, 0, sizeof *co);
	memset(&pooled, 0, sizeof pooled);
	write_cohort(dir);
	for (int c = 0; c < CENTRES; c++) {
		char clin[4200], feat[4200];
		snprintf(clin, sizeof clin, "%s/%s/clinical.csv", dir, sites[c]);
		snprintf(feat, sizeof feat, "%s/%s/features.csv", dir, sites[c]);
		CHECK_OK(fp_p2_site_load(clin, feat, sites[c], &co->tab[c]));
		struct fp_p2_stats s;
		fp_p2_stats_local(&co->tab[c], &s);
		CHECK_OK(fp_p2_stats_merge(&pooled, &s));
	}
	struct fp_part2_config cfg;
	fp_part2_config_default(&cfg);
	cfg.hidden = 8;
	struct fp_p2_trainer *coord = NULL;
	CHECK_OK(fp_p2_trainer_create(NULL, &pooled, &cfg, &coord));
	struct fp_local_trainer lc;
	fp_p2_trainer_local(coord, &lc);
	struct fp_p2_ckpt *ck = &co->ck;
	ck->cfg = cfg;
	ck->pooled = pooled;
	ck->p = fp_p2_design_width(&pooled);
	ck->names = calloc((size_t)ck->p, FP_P2_NAME_MAX);
	memcpy(ck->names, fp_p2_trainer_names(coord), (size_t)ck->p * FP_P2_NAME_MAX);
	ck->n_params = lc.n_params;
	ck->params = calloc(ck->n_params, sizeof(float));
	CHECK_OK(lc.init_weights(lc.ctx, ck->params));
	fp_p2_trainer_destroy(coord);
	ck->n_sites = CENTRES;
	ck->sites = calloc(CENTRES, sizeof *ck->sites);
	ck->h0 = calloc(CENTRES, sizeof *ck->h0);
	for (int c = 0; c < CENTRES; c++) {
		snprintf(ck->sites[c], sizeof ck->sites[0], "%s", sites[c]);
		for (int q = 0; q < FP_P2_CKPT_HORIZONS; q++) ck->h0[c][q] = 0.2 * (q + 1) * (c + 1);
	}
	ck->rounds = 3;
	snprintf(co->model, sizeof co->model, "%s/model.ckpt", dir);
	CHECK_OK(fp_p2_ckpt_save(ck, co->model));
}

static void cohort_close(struct cohort *co)
{
	for (int c = 0; c < CENTRES; c++) fp_p2_table_close(&co->tab[c]);
	fp_p2_ckpt_close(&co->ck);
}

/* The test's own prediction: risk of recurrence by `horizon` under the
 * received regimen, as cmd_predict.c computes it. */
static void predict_risk(const struct cohort *co, int c, int q, double *risk)
{
	const struct fp_p2_table *t = &co->tab[c];
	double *design = NULL;
	char(*names)[FP_P2_NAME_MAX] = NULL;
	int pw = 0;
	CHECK_OK(fp_p2_standardise(t, &co->ck.pooled, &design, &pw, &names));
	float *x = calloc(t->n * (size_t)pw, sizeof *x), *eta = calloc(t->n * 3, sizeof *eta);
	for (size_t i = 0; i < t->n * (size_t)pw; i++) x[i] = (float)design[i];
	struct fp_kernels_options ko;
	fp_kernels_options_default(&ko);
	ko.threads = 1;
	struct fp_kernels *k = NULL;
	struct fp_part2_model *m = NULL;
	CHECK_OK(fp_kernels_create(&ko, &k));
	CHECK_OK(fp_part2_create(k, pw, (int)t->n, &co->ck.cfg, &m));
	CHECK_OK(fp_part2_set_params(m, co->ck.params));
	CHECK_OK(fp_part2_predict(m, x, (int)t->n, eta, NULL, NULL));
	for (size_t i = 0; i < t->n; i++)
		risk[i] = 1 - exp(-co->ck.h0[c][q] * exp((double)eta[i * 3 + t->regimen[i]]));
	fp_part2_destroy(m);
	fp_kernels_destroy(k);
	free(x);
	free(eta);
	free(design);
	free(names);
}

static double jget(json_t *o, const char *path1, const char *path2)
{
	json_t *a = json_object_get(o, path1);
	return json_number_value(path2 ? json_object_get(a, path2) : a);
}

FP_TEST(eval_site_predicts_as_predict_and_pools_exactly)
{
	static struct cohort co;
	cohort_open(&co);
	json_t *sum[CENTRES];
	double *time_all = calloc(CENTRES * PATIENTS, sizeof(double)), *risk_all = calloc(CENTRES * PATIENTS, sizeof(double));
	unsigned char *ev_all = calloc(CENTRES * PATIENTS, 1);
	int *strata = calloc(CENTRES * PATIENTS, sizeof(int));
	size_t q = 0;
	for (int c = 0; c < CENTRES; c++) {
		char clin[4200], feat[4200];
		snprintf(clin, sizeof clin, "%s/%s/clinical.csv", fp_test_tmpdir(), sites[c]);
		snprintf(feat, sizeof feat, "%s/%s/features.csv", fp_test_tmpdir(), sites[c]);
		/* site 1 from files and the checkpoint path, site 2 from memory */
		struct fp_eval_site_input in = {sites[c], c ? &co.tab[c] : NULL, clin, feat, c ? &co.ck : NULL,
		                                c ? NULL : co.model, NULL, 24, NULL, 0, {0.3, 0.6}, 0, c ? "sha256:given" : NULL,
		                                c ? "2026-11-01" : NULL, NULL, NULL};
		json_t *s = NULL;
		CHECK_OK(fp_eval_site_summary(&in, &s));
		/* only summaries cross the wire: dump, check, parse back */
		char *text = json_dumps(s, JSON_REAL_PRECISION(17));
		json_decref(s);
		CHECK(strstr(text, "-P0") == NULL); /* no patient id (H01-P0001 ...) */
		CHECK_STR_CONTAINS(text, FP_REPORT_SCHEMA);
		CHECK_STR_CONTAINS(text, co.ck.model_hash);
		json_error_t err;
		sum[c] = json_loads(text, 0, &err);
		free(text);
		CHECK(sum[c] != NULL);
		CHECK_INT_EQ((size_t)jget(sum[c], "n", NULL), co.tab[c].n);
		double risk[PATIENTS];
		predict_risk(&co, c, 1, risk);
		struct fp_cindex_result cr;
		double tm[PATIENTS];
		unsigned char ev[PATIENTS];
		double mr = 0;
		for (size_t i = 0; i < co.tab[c].n; i++) {
			tm[i] = co.tab[c].rfs_time[i];
			ev[i] = co.tab[c].rfs_event[i] == 1;
			mr += risk[i];
			time_all[q] = tm[i], ev_all[q] = ev[i], risk_all[q] = risk[i], strata[q++] = c;
		}
		CHECK_OK(fp_validate_cindex(tm, ev, risk, NULL, co.tab[c].n, NULL, &cr));
		CHECK_NEAR(jget(sum[c], "c", NULL), cr.c, 0, 1e-14);
		CHECK_NEAR(jget(json_object_get(sum[c], "metrics"), "c_se", NULL), cr.se, 0, 1e-12);
		CHECK_NEAR(jget(sum[c], "table1", "mean_risk"), mr / (double)co.tab[c].n, 0, 1e-12);
		/* the snapshot: hashed from the files, or the caller's */
		const char *sh = json_string_value(json_object_get(sum[c], "snapshot_hash"));
		CHECK(sh != NULL && (c ? strcmp(sh, "sha256:given") == 0 : strlen(sh) == 64));
		CHECK(json_object_get(json_object_get(sum[c], "table1"), "variables") != NULL);
		CHECK(json_object_get(sum[c], "km_benefit") != NULL);
	}
	json_t *agg = NULL;
	double at = 24;
	CHECK_OK(fp_pool_aggregate(sum, CENTRES, &at, 1, &agg));
	struct fp_cindex_result direct;
	CHECK_OK(fp_validate_cindex(time_all, ev_all, risk_all, strata, q, NULL, &direct));
	CHECK_NEAR(jget(agg, "cindex_stratified", "c"), direct.c, 0, 1e-14);
	CHECK_NEAR(jget(agg, "cindex_stratified", "se"), direct.se, 0, 1e-12);
	struct fp_km_point kp;
	CHECK_OK(fp_validate_km(time_all, ev_all, q, &at, 1, &kp));
	CHECK_NEAR(json_number_value(json_array_get(json_object_get(json_object_get(agg, "km"), "survival"), 0)), kp.survival,
	           0, 0);
	json_decref(agg);
	for (int c = 0; c < CENTRES; c++) json_decref(sum[c]);
	free(time_all);
	free(risk_all);
	free(ev_all);
	free(strata);
	cohort_close(&co);
}

FP_TEST(eval_site_suppresses_small_cells)
{
	static struct cohort co;
	cohort_open(&co);
	struct fp_eval_site_input in = {"H01", &co.tab[0], NULL, NULL, &co.ck, NULL, NULL, 36, NULL, 0, {0.3, 0.6}, 10,
	                                "x", "y", NULL, NULL};
	json_t *s = NULL;
	CHECK_OK(fp_eval_site_summary(&in, &s));
	/* every released KM row holds >= 10 patients, groups too */
	json_t *groups = json_object_get(json_object_get(s, "km_risk_groups"), "groups");
	for (size_t g = 0; g < json_array_size(groups); g++) {
		json_t *jg = json_array_get(groups, g);
		if (json_object_get(jg, "withheld")) continue;
		CHECK(json_number_value(json_object_get(jg, "n")) >= 10);
		json_t *e = json_object_get(jg, "events"), *c = json_object_get(jg, "censored");
		for (size_t r = 0; r < json_array_size(e); r++)
			CHECK(json_number_value(json_array_get(e, r)) + json_number_value(json_array_get(c, r)) >= 10);
	}
	json_t *km = json_object_get(s, "km");
	for (size_t r = 0; r < json_array_size(json_object_get(km, "time")); r++)
		CHECK(json_number_value(json_array_get(json_object_get(km, "events"), r)) +
		          json_number_value(json_array_get(json_object_get(km, "censored"), r)) >= 10);
	/* a 0/1 column with fewer than 10 patients in one value gives no mean */
	json_t *vars = json_object_get(json_object_get(s, "table1"), "variables");
	int checked = 0;
	for (size_t j = 0; j < json_array_size(vars); j++) {
		json_t *v = json_array_get(vars, j);
		const char *name = json_string_value(json_object_get(v, "name"));
		size_t ones = 0, known = 0;
		int binary = 1, col = -1;
		for (int k = 0; k < co.tab[0].p; k++)
			if (strcmp(co.tab[0].names[k], name) == 0) col = k;
		CHECK(col >= 0);
		for (size_t i = 0; i < co.tab[0].n; i++) {
			double x = co.tab[0].x[i * (size_t)co.tab[0].p + (size_t)col];
			if (isnan(x)) continue;
			known++;
			if (x == 1) ones++;
			else if (x != 0) binary = 0;
		}
		int small = binary && ((ones > 0 && ones < 10) || (known - ones > 0 && known - ones < 10));
		CHECK_MSG(json_is_null(json_object_get(v, "mean")) == small, "%s: ones %zu of %zu", name, ones, known);
		checked += small;
	}
	CHECK(checked > 0); /* the phantom has rare stages: the rule was exercised */
	json_decref(s);
	/* a horizon without a stored baseline, an unknown centre */
	in.horizon = 18;
	CHECK_STATUS(fp_eval_site_summary(&in, &s), FP_ERR_INVALID_ARG);
	CHECK_STR_CONTAINS(fp_error_msg(), "12, 24 and 36");
	in.horizon = 24;
	in.site = "H09";
	CHECK_STATUS(fp_eval_site_summary(&in, &s), FP_ERR_NOT_FOUND);
	CHECK_STR_CONTAINS(fp_error_msg(), "'H09'");
	cohort_close(&co);
}

/* The centres' summaries, stored as the aggregator stores them
 * (fp_report.h: pooled.json + one file per centre), build the report. */
FP_TEST(eval_site_summaries_build_the_report)
{
	static struct cohort co;
	char dir[4096], path[8400], out[4200];
	cohort_open(&co);
	snprintf(dir, sizeof dir, "%s/results", fp_test_tmpdir());
	snprintf(out, sizeof out, "%s/report", fp_test_tmpdir());
	CHECK_OK(fp_mkdir_p(dir, 0755));
	json_t *sum[CENTRES], *agg = NULL;
	for (int c = 0; c < CENTRES; c++) {
		struct fp_eval_site_input in = {sites[c], &co.tab[c], NULL, NULL, &co.ck, NULL, NULL, 24, NULL, 0, {0.3, 0.6}, 3,
		                                "sha256:snap", "2026-11-20", NULL, NULL};
		CHECK_OK(fp_eval_site_summary(&in, &sum[c]));
		snprintf(path, sizeof path, "%s/%s.json", dir, sites[c]);
		CHECK_OK(fp_json_save_file(path, sum[c], 0644));
	}
	double at = 24;
	CHECK_OK(fp_pool_aggregate(sum, CENTRES, &at, 1, &agg));
	snprintf(path, sizeof path, "%s/pooled.json", dir);
	CHECK_OK(fp_json_save_file(path, agg, 0644));
	CHECK_OK(fp_report_build(dir, out));
	char *html = NULL;
	size_t len = 0;
	snprintf(path, sizeof path, "%s/report.html", out);
	CHECK_OK(fp_file_read_all(path, 1 << 26, &html, &len));
	CHECK_STR_CONTAINS(html, "Built from <b>federated summaries</b>");
	CHECK_STR_CONTAINS(html, co.ck.model_hash);
	CHECK_STR_CONTAINS(html, "<table id=\"table1\">");
	CHECK_STR_CONTAINS(html, "til_intra");
	CHECK_STR_CONTAINS(html, "<svg id=\"fig-benefit\"");
	CHECK(strstr(html, "-P0") == NULL); /* no patient id */
	free(html);
	/* a summary of another model in the folder is refused, naming it */
	json_object_set_new(sum[1], "model_hash", json_string("0000"));
	snprintf(path, sizeof path, "%s/%s.json", dir, sites[1]);
	CHECK_OK(fp_json_save_file(path, sum[1], 0644));
	CHECK_STATUS(fp_report_build(dir, out), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "H02.json");
	for (int c = 0; c < CENTRES; c++) json_decref(sum[c]);
	json_decref(agg);
	cohort_close(&co);
}
