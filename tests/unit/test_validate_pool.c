/*
 * test_validate_pool.c: the exact statements of fp_pool.h on survival::lung
 * split by institution (18 centres): pooled summaries equal the statistic
 * computed on the pooled rows.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_pool.h"
#include "fp_report.h"
#include "fp_table.h"
#include "fp_test.h"
#include "fp_validate.h"

#define MAXN 400
static double t[MAXN], age[MAXN], ecog[MAXN];
static unsigned char ev[MAXN];
static int inst[MAXN];
static size_t n, ncentre;

static void load_lung(void)
{
	char path[1024];
	struct fp_table *tb = NULL;
	snprintf(path, sizeof path, "%s/validate/lung.csv", fp_test_datadir());
	CHECK_OK(fp_table_load(path, &tb));
	n = fp_table_rows(tb);
	CHECK(n <= MAXN);
	CHECK_OK(fp_table_numeric(tb, "time", t));
	CHECK_OK(fp_table_binary(tb, "event", ev));
	CHECK_OK(fp_table_numeric(tb, "age", age));
	CHECK_OK(fp_table_numeric(tb, "ecog", ecog));
	CHECK_OK(fp_table_factor(tb, "inst", inst, &ncentre));
	fp_table_destroy(tb);
}

/* Rows of centre c copied into the buffers. */
static size_t centre_rows(int c, double *ct, unsigned char *ce, double *cs, const double *score)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (inst[i] == c) {
			ct[m] = t[i];
			ce[m] = ev[i];
			cs[m] = score[i];
			m++;
		}
	return m;
}

FP_TEST(pool_stratified_cindex_equals_strata_on_pooled_rows)
{
	load_lung();
	struct fp_pool_cindex_site sites[64];
	size_t k = 0;
	double ct[MAXN], cs[MAXN];
	unsigned char ce[MAXN];
	for (int c = 0; c < (int)ncentre; c++) {
		size_t m = centre_rows(c, ct, ce, cs, age);
		enum fp_status st = fp_pool_cindex_site(ct, ce, cs, m, NULL, &sites[k]);
		if (st == FP_ERR_DATA) continue; /* a centre with no events or pairs sends nothing */
		CHECK_OK(st);
		k++;
	}
	struct fp_cindex_result pooled, direct;
	CHECK_OK(fp_pool_cindex(sites, k, &pooled));
	CHECK_OK(fp_validate_cindex(t, ev, age, inst, n, NULL, &direct));
	CHECK_NEAR(pooled.c, direct.c, 0, 1e-14);
	CHECK_NEAR(pooled.se, direct.se, 0, 1e-12);
	CHECK_NEAR(pooled.concordant, direct.concordant, 0, 0);
	CHECK_NEAR(pooled.tied_x, direct.tied_x, 0, 0);
}

FP_TEST(pool_auc_grid_equals_pooled_rows)
{
	load_lung();
	enum { NC = 70 };
	double edges[NC + 1], cases[NC], controls[NC], sc[NC] = {0}, sk[NC] = {0};
	for (int j = 0; j <= NC; j++) edges[j] = 29.5 + j; /* ages 30..99, one per cell */
	double ct[MAXN], cs[MAXN];
	unsigned char ce[MAXN];
	for (int c = 0; c < (int)ncentre; c++) {
		size_t m = centre_rows(c, ct, ce, cs, age);
		CHECK_OK(fp_pool_auc_site(ce, cs, m, edges, NC, 0, cases, controls));
		for (int j = 0; j < NC; j++) {
			sc[j] += cases[j];
			sk[j] += controls[j];
		}
	}
	struct fp_auc_result pooled, direct;
	CHECK_OK(fp_pool_auc(sc, sk, NC, &pooled));
	CHECK_OK(fp_validate_auc(ev, age, n, &direct, NULL, NULL));
	CHECK_NEAR(pooled.auc, direct.auc, 0, 1e-14);
	CHECK_NEAR(pooled.se, direct.se, 0, 1e-12);
	CHECK_INT_EQ(pooled.cases, direct.cases);
}

FP_TEST(pool_auc_small_cell_is_refused)
{
	load_lung();
	double edges[3] = {0, 50, 100}, cases[2], controls[2];
	CHECK_STATUS(fp_pool_auc_site(ev, age, n, edges, 2, 50, cases, controls), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "fewer than the minimum 50");
	CHECK_OK(fp_pool_auc_site(ev, age, n, edges, 2, 5, cases, controls));
}

FP_TEST(pool_km_tables_equal_pooled_rows)
{
	load_lung();
	struct fp_pool_km_table tables[64];
	double ct[MAXN], cs[MAXN];
	unsigned char ce[MAXN];
	for (int c = 0; c < (int)ncentre; c++) {
		size_t m = centre_rows(c, ct, ce, cs, age);
		CHECK_OK(fp_pool_km_site(ct, ce, m, 0, &tables[c]));
	}
	double at[4] = {100, 200, 365, 730};
	struct fp_km_point a[4], b[4];
	CHECK_OK(fp_pool_km(tables, ncentre, at, 4, a));
	CHECK_OK(fp_validate_km(t, ev, n, at, 4, b));
	for (int j = 0; j < 4; j++) {
		CHECK_NEAR(a[j].survival, b[j].survival, 0, 0);
		CHECK_NEAR(a[j].se, b[j].se, 0, 0);
		CHECK_NEAR(a[j].n_risk, b[j].n_risk, 0, 0);
	}
	for (size_t c = 0; c < ncentre; c++) fp_pool_km_table_close(&tables[c]);
}

FP_TEST(pool_calibration_sums_add_up)
{
	load_lung();
	double p[MAXN];
	for (size_t i = 0; i < n; i++) p[i] = 0.5 + 0.1 * (ecog[i] - 1);
	struct fp_pool_calib_site all, one, sum = {0, 0, 0, 0};
	fp_pool_calib_site(ev, p, n, &all);
	fp_pool_calib_site(ev, p, 100, &one);
	sum = one;
	fp_pool_calib_site(ev + 100, p + 100, n - 100, &one);
	CHECK_NEAR(sum.observed + one.observed, all.observed, 0, 0);
	CHECK_NEAR(sum.expected + one.expected, all.expected, 0, 1e-14);
	CHECK_NEAR(sum.brier_sum + one.brier_sum, all.brier_sum, 0, 1e-14);
}

FP_TEST(pool_km_small_rows_are_merged)
{
	load_lung();
	struct fp_pool_km_table tb;
	CHECK_OK(fp_pool_km_site(t, ev, n, 5, &tb));
	double total = 0, events = 0;
	for (size_t r = 0; r < tb.rows; r++) {
		CHECK(tb.events[r] + tb.censored[r] >= 5);
		if (r > 0) CHECK(tb.time[r] > tb.time[r - 1]);
		total += tb.events[r] + tb.censored[r];
		events += tb.events[r];
	}
	CHECK_NEAR(total, (double)n, 0, 0);
	double e0 = 0;
	for (size_t i = 0; i < n; i++) e0 += ev[i];
	CHECK_NEAR(events, e0, 0, 0);
	fp_pool_km_table_close(&tb);
	CHECK_STATUS(fp_pool_km_site(t, ev, 3, 5, &tb), FP_ERR_DATA);
}

/* Only JSON crosses from the sites to the aggregator: each summary is
 * dumped to text and parsed back before pooling, and the pooled values
 * equal those computed on the pooled rows. */
FP_TEST(pool_site_summaries_through_json_equal_pooled_rows)
{
	load_lung();
	enum { NC = 70 };
	double edges[NC + 1], p[MAXN];
	unsigned char lab[MAXN];
	for (int j = 0; j <= NC; j++) edges[j] = 29.5 + j;
	json_t *sites[64];
	size_t k = 0;
	for (int c = 0; c < (int)ncentre; c++) {
		static double ct[MAXN], cs[MAXN], cp[MAXN];
		static unsigned char ce[MAXN], cl[MAXN];
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (inst[i] == c) {
				ct[m] = t[i], ce[m] = ev[i], cs[m] = age[i];
				cl[m] = ev[i], cp[m] = age[i]; /* the grid is on age: integer values, one per cell */
				m++;
			}
		struct fp_pool_site_input in = {"centre", m, ct, ce, cs, cl, cp, edges, NC, 0};
		json_t *s = NULL;
		CHECK_OK(fp_pool_site_summary(&in, &s));
		char *text = json_dumps(s, JSON_REAL_PRECISION(17));
		json_decref(s);
		json_error_t err;
		sites[k] = json_loads(text, 0, &err);
		free(text);
		CHECK(sites[k] != NULL);
		k++;
	}
	double at[3] = {180, 365, 730};
	json_t *agg = NULL;
	CHECK_OK(fp_pool_aggregate(sites, k, at, 3, &agg));
	struct fp_cindex_result direct;
	CHECK_OK(fp_validate_cindex(t, ev, age, inst, n, NULL, &direct));
	json_t *c = json_object_get(agg, "cindex_stratified");
	CHECK_NEAR(json_real_value(json_object_get(c, "c")), direct.c, 0, 1e-14);
	CHECK_NEAR(json_real_value(json_object_get(c, "se")), direct.se, 0, 1e-12);
	struct fp_auc_result a;
	for (size_t i = 0; i < n; i++) lab[i] = ev[i], p[i] = age[i];
	CHECK_OK(fp_validate_auc(lab, p, n, &a, NULL, NULL));
	json_t *ja = json_object_get(agg, "auc_grid");
	CHECK_NEAR(json_real_value(json_object_get(ja, "auc")), a.auc, 0, 1e-14);
	CHECK_NEAR(json_real_value(json_object_get(ja, "se")), a.se, 0, 1e-12);
	struct fp_km_point kp[3];
	CHECK_OK(fp_validate_km(t, ev, n, at, 3, kp));
	json_t *js = json_object_get(json_object_get(agg, "km"), "survival");
	for (int j = 0; j < 3; j++) CHECK_NEAR(json_real_value(json_array_get(js, (size_t)j)), kp[j].survival, 0, 0);
	CHECK(json_object_get(agg, "cindex_random_effects") != NULL);
	/* the "probability" here is age, clamped into the top tenth: the bins
	 * must still account for every patient */
	json_t *bins = json_object_get(agg, "calibration_bins");
	double total = 0;
	for (size_t j = 0; j < 10; j++) total += json_number_value(json_array_get(json_object_get(bins, "n"), j));
	CHECK_NEAR(total + json_number_value(json_object_get(bins, "withheld")), (double)n, 0, 0);
	json_decref(agg);
	for (size_t s = 0; s < k; s++) json_decref(sites[s]);
}

FP_TEST(pool_rejects_bad_site_tables)
{
	double tm[1] = {5}, ev1[1] = {-1}, cz[1] = {0};
	struct fp_pool_km_table tb = {1, tm, ev1, cz};
	struct fp_km_point pt;
	double at = 1;
	CHECK_STATUS(fp_pool_km(&tb, 1, &at, 1, &pt), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "whole and >= 0");
}

/* fp_report_build end to end on lung split by sex into two centres (the
 * HTML rendering itself is checked by test_validate_report.sh in Chromium). */
FP_TEST(report_build_writes_every_file)
{
	char src[1024], dir[1024], path[1200];
	snprintf(src, sizeof src, "%s/validate/lung.csv", fp_test_datadir());
	snprintf(dir, sizeof dir, "%s/in", fp_test_tmpdir());
	CHECK_OK(fp_mkdir_p(dir, 0755));
	FILE *in = fopen(src, "r");
	CHECK(in != NULL);
	char line[4096];
	FILE *out[2];
	for (int c = 0; c < 2; c++) {
		snprintf(path, sizeof path, "%s/c%d.csv", dir, c);
		out[c] = fopen(path, "w");
		CHECK(out[c] != NULL);
	}
	CHECK(fgets(line, sizeof line, in) != NULL);
	fputs(line, out[0]);
	fputs(line, out[1]);
	for (int r = 0; fgets(line, sizeof line, in); r++) fputs(line, out[r % 2]);
	fclose(in);
	fclose(out[0]);
	fclose(out[1]);
	snprintf(path, sizeof path, "%s/manifest.json", dir);
	FILE *m = fopen(path, "w");
	CHECK(m != NULL);
	fputs("{\"study\": \"lung <test> & co\", \"model_hash\": \"sha256:feed\", \"horizon\": 365,"
	      " \"columns\": {\"time\": \"time\", \"event\": \"event\", \"risk\": \"risk365\","
	      " \"label\": \"event\", \"prob\": \"p_death\"},"
	      " \"centres\": [{\"id\": \"A\", \"csv\": \"c0.csv\"}, {\"id\": \"B\", \"csv\": \"c1.csv\"}]}\n", m);
	fclose(m);
	char outdir[1024];
	snprintf(outdir, sizeof outdir, "%s/out", fp_test_tmpdir());
	CHECK_OK(fp_report_build(dir, outdir));
	static const char *files[] = {"report.html", "report.json", "performance.csv", "table1.csv"};
	for (int i = 0; i < 4; i++) {
		char *data = NULL;
		size_t len = 0;
		snprintf(path, sizeof path, "%s/%s", outdir, files[i]);
		CHECK_OK(fp_file_read_all(path, 1 << 26, &data, &len));
		CHECK(len > 100);
		if (i == 0) {
			CHECK_STR_CONTAINS(data, "lung &lt;test&gt; &amp; co"); /* escaped, not injected */
			CHECK_STR_CONTAINS(data, "<svg id=\"fig-forest\"");
			CHECK_STR_CONTAINS(data, "no treatment columns");
		}
		free(data);
	}
	/* a manifest without the required columns is refused with its name */
	snprintf(path, sizeof path, "%s/bad.json", dir);
	m = fopen(path, "w");
	fputs("{\"horizon\": 365, \"columns\": {\"time\": \"time\"}, \"centres\": []}", m);
	fclose(m);
	CHECK_STATUS(fp_report_build(path, outdir), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "bad.json");
}

/* Reads the number at "pooled"/key (or a centre's key) of a report.json. */
static double report_num(json_t *rep, const char *block, size_t centre, const char *key)
{
	json_t *o = strcmp(block, "centres") == 0 ? json_array_get(json_object_get(rep, "centres"), centre)
	                                          : json_object_get(rep, block);
	json_t *v = json_object_get(o, key);
	CHECK_MSG(json_is_number(v), "%s.%s missing", block, key);
	return json_number_value(v);
}

/* The report built from the centres' summaries equals the one built from
 * their rows: survival::colon in three pseudo-centres, the probability
 * rounded to 0.01 and the shared grid one cell per hundredth, so AUC on the
 * grid is exact. Each summary crosses as JSON text (fp_json_save_file). */
FP_TEST(report_from_summaries_equals_report_from_rows)
{
	char src[1024], dir[1024], path[1200], sum[1024], out1[1024], out2[1024];
	snprintf(src, sizeof src, "%s/validate/colon.csv", fp_test_datadir());
	snprintf(dir, sizeof dir, "%s/rows", fp_test_tmpdir());
	snprintf(sum, sizeof sum, "%s/summaries", fp_test_tmpdir());
	snprintf(out1, sizeof out1, "%s/out_rows", fp_test_tmpdir());
	snprintf(out2, sizeof out2, "%s/out_summaries", fp_test_tmpdir());
	CHECK_OK(fp_mkdir_p(dir, 0755));
	FILE *in = fopen(src, "r"), *out[3];
	CHECK(in != NULL);
	char line[4096];
	CHECK(fgets(line, sizeof line, in) != NULL);
	line[strcspn(line, "\n")] = '\0';
	for (int c = 0; c < 3; c++) {
		snprintf(path, sizeof path, "%s/c%d.csv", dir, c);
		out[c] = fopen(path, "w");
		CHECK(out[c] != NULL);
		fprintf(out[c], "%s,pq\n", line);
	}
	for (int r = 0; fgets(line, sizeof line, in); r++) {
		line[strcspn(line, "\n")] = '\0';
		const char *f = line; /* p_rec is the 7th column */
		for (int k = 0; k < 6; k++) f = strchr(f, ',') + 1;
		fprintf(out[r % 3], "%s,%.2f\n", line, atof(f));
	}
	fclose(in);
	for (int c = 0; c < 3; c++) fclose(out[c]);
	snprintf(path, sizeof path, "%s/manifest.json", dir);
	FILE *m = fopen(path, "w");
	CHECK(m != NULL);
	fputs("{\"study\": \"colon in three centres\", \"model_hash\": \"sha256:c0105\", \"horizon\": 1825, \"tau\": 1825,"
	      " \"columns\": {\"time\": \"time\", \"event\": \"event\", \"risk\": \"p_rec\", \"label\": \"event\","
	      " \"prob\": \"pq\", \"arm\": \"arm\", \"recommended\": \"recommended\", \"propensity\": \"ps0,ps1,ps2\"},"
	      " \"auc_grid\": [", m);
	for (int k = 0; k <= 101; k++) fprintf(m, "%s%.3f", k ? ", " : "", -0.005 + 0.01 * k);
	fputs("], \"centres\": [{\"id\": \"C0\", \"csv\": \"c0.csv\", \"snapshot_hash\": \"sha256:aa\", \"snapshot_date\": "
	      "\"2026-10-01\"}, {\"id\": \"C1\", \"csv\": \"c1.csv\"}, {\"id\": \"C2\", \"csv\": \"c2.csv\"}]}\n", m);
	fclose(m);
	CHECK_OK(fp_report_build(dir, out1));
	CHECK_OK(fp_report_write_summaries(dir, sum, 0));
	CHECK_OK(fp_report_build(sum, out2));
	json_t *a = NULL, *b = NULL;
	snprintf(path, sizeof path, "%s/report.json", out1);
	CHECK_OK(fp_json_load_file(path, &a));
	snprintf(path, sizeof path, "%s/report.json", out2);
	CHECK_OK(fp_json_load_file(path, &b));
	CHECK_STR_EQ(json_string_value(json_object_get(b, "source")), "federated summaries");
	CHECK_STR_EQ(json_string_value(json_object_get(b, "model_hash")), "sha256:c0105");
	/* exact-pooling statements: equal up to the order of floating-point sums */
	static const char *const pooled[] = {"c_stratified", "c_stratified_se", "auc", "auc_se", "km_horizon_survival",
	                                     "km_horizon_se", "km_horizon_n_risk", "oe", "brier", "meta_c", "meta_pi_low",
	                                     "meta_pi_high", "meta_tau2"};
	for (size_t i = 0; i < sizeof pooled / sizeof *pooled; i++)
		CHECK_NEAR(report_num(b, "pooled", 0, pooled[i]), report_num(a, "pooled", 0, pooled[i]), 1e-15, 1e-12);
	/* each centre's own metrics are computed at the centre by the same code */
	static const char *const own[] = {"n", "events", "c", "c_se", "auc_t", "brier_t", "ipa_t", "oe_t",
	                                  "auc", "citl", "slope", "ici", "median_time", "mean_risk"};
	for (size_t c = 0; c < 3; c++)
		for (size_t i = 0; i < sizeof own / sizeof *own; i++)
			CHECK_NEAR(report_num(b, "centres", c, own[i]), report_num(a, "centres", c, own[i]), 0, 0);
	/* KM by risk group: numbers at risk from the tables equal those of the rows */
	json_t *ga = json_object_get(a, "km_by_risk_group"), *gb = json_object_get(b, "km_by_risk_group");
	for (size_t g = 0; g < 3; g++) {
		json_t *na = json_object_get(json_array_get(ga, g), "n_at_risk_at_ticks");
		json_t *nb = json_object_get(json_array_get(gb, g), "n_at_risk_at_ticks");
		CHECK_INT_EQ(json_array_size(nb), 5);
		for (size_t k = 0; k < 5; k++)
			CHECK_NEAR(json_number_value(json_array_get(nb, k)), json_number_value(json_array_get(na, k)), 0, 0);
	}
	/* the weighted followed / not-followed curves give the same RMST */
	CHECK_NEAR(report_num(b, "benefit", 0, "rmst_diff"), report_num(a, "benefit", 0, "rmst_diff"), 1e-9, 1e-9);
	char *t1a = NULL, *t1b = NULL;
	size_t la = 0, lb = 0;
	snprintf(path, sizeof path, "%s/table1.csv", out1);
	CHECK_OK(fp_file_read_all(path, 1 << 20, &t1a, &la));
	snprintf(path, sizeof path, "%s/table1.csv", out2);
	CHECK_OK(fp_file_read_all(path, 1 << 20, &t1b, &lb));
	CHECK(la == lb && memcmp(t1a, t1b, la) == 0);
	free(t1a);
	free(t1b);
	json_decref(a);
	json_decref(b);
	/* a folder whose pooled.json disagrees with its site files is refused */
	snprintf(path, sizeof path, "%s/pooled.json", sum);
	m = fopen(path, "w");
	fputs("{\"centres\": 4}", m);
	fclose(m);
	CHECK_STATUS(fp_report_build(sum, out2), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "4 centres");
	/* summaries with min_cell: every released KM row and grid cell >= 20, or withheld */
	snprintf(sum, sizeof sum, "%s/summaries20", fp_test_tmpdir());
	CHECK_OK(fp_report_write_summaries(dir, sum, 20));
	snprintf(path, sizeof path, "%s/site_C1.json", sum);
	CHECK_OK(fp_json_load_file(path, &a));
	json_t *km = json_object_get(a, "km");
	for (size_t r = 0; r < json_array_size(json_object_get(km, "time")); r++)
		CHECK(json_number_value(json_array_get(json_object_get(km, "events"), r)) +
		          json_number_value(json_array_get(json_object_get(km, "censored"), r)) >= 20);
	CHECK(json_object_get(a, "auc_grid_withheld") != NULL); /* hundredths hold fewer than 20 */
	json_decref(a);
	CHECK_OK(fp_report_build(sum, out2));
}
