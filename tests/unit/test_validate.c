/*
 * test_validate.c: statements of fp_validate.h, fp_table.h and fp_stats.h
 * that do not need R: brute-force definitions on random data with ties,
 * bootstrap weights, and the bad-input errors a statistician will meet.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_stats.h"
#include "fp_table.h"
#include "fp_test.h"
#include "fp_validate.h"

static unsigned long long rng_state = 88172645463325252ull;
static double urand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* "AUC = P(case > control) + P(tie)/2" checked against the O(n^2) definition. */
FP_TEST(auc_equals_pairwise_definition_with_ties)
{
	enum { N = 300 };
	unsigned char y[N];
	double s[N];
	for (int i = 0; i < N; i++) {
		y[i] = urand() < 0.3;
		s[i] = floor(urand() * 20) + y[i] * 2; /* many ties */
	}
	double num = 0, m = 0, c = 0;
	for (int i = 0; i < N; i++) m += y[i];
	c = N - m;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			if (y[i] && !y[j]) num += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
	struct fp_auc_result r;
	CHECK_OK(fp_validate_auc(y, s, N, &r, NULL, NULL));
	CHECK_NEAR(r.auc, num / (m * c), 0, 1e-13);
	CHECK(r.ci_low <= r.auc && r.auc <= r.ci_high && r.ci_low >= 0 && r.ci_high <= 1);
}

FP_TEST(auc_one_class_is_a_data_error)
{
	unsigned char y[4] = {1, 1, 1, 1};
	double s[4] = {1, 2, 3, 4};
	struct fp_auc_result r;
	CHECK_STATUS(fp_validate_auc(y, s, 4, &r, NULL, NULL), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "0 controls");
}

/* Harrell's counts against the pair rules of survival::concordance. */
FP_TEST(cindex_counts_equal_pairwise_rules)
{
	enum { N = 200 };
	double t[N], s[N];
	unsigned char e[N];
	for (int i = 0; i < N; i++) {
		t[i] = floor(urand() * 30) + 1;
		e[i] = urand() < 0.6;
		s[i] = floor(urand() * 10);
	}
	double conc = 0, disc = 0, tx = 0, ty = 0, txy = 0;
	for (int i = 0; i < N; i++) {
		if (!e[i]) continue;
		for (int j = 0; j < N; j++) {
			if (j == i) continue;
			int later = t[j] > t[i] || (t[j] == t[i] && !e[j]);
			if (later) {
				if (s[i] > s[j]) conc++; else if (s[i] < s[j]) disc++; else tx++;
			} else if (t[j] == t[i] && e[j] && j < i) {
				if (s[i] == s[j]) txy++; else ty++;
			}
		}
	}
	struct fp_cindex_result r;
	CHECK_OK(fp_validate_cindex(t, e, s, NULL, N, NULL, &r));
	CHECK_NEAR(r.concordant, conc, 0, 0);
	CHECK_NEAR(r.discordant, disc, 0, 0);
	CHECK_NEAR(r.tied_x, tx, 0, 0);
	CHECK_NEAR(r.tied_y, ty, 0, 0);
	CHECK_NEAR(r.tied_xy, txy, 0, 0);
	CHECK_NEAR(r.c, (conc + tx / 2) / (conc + disc + tx), 0, 1e-14);
	CHECK(r.se > 0 && r.se < 0.2);
}

/* A bootstrap weight of 2 gives the same C as the row twice (plan reuse). */
FP_TEST(cindex_plan_weights_equal_duplicated_rows)
{
	enum { N = 120 };
	double t[2 * N], s[2 * N], w[N];
	unsigned char e[2 * N];
	size_t m = 0;
	for (int i = 0; i < N; i++) {
		t[i] = floor(urand() * 50) + 1;
		e[i] = urand() < 0.5;
		s[i] = urand();
		w[i] = floor(urand() * 3); /* 0, 1 or 2 */
	}
	double t2[2 * N], s2[2 * N];
	unsigned char e2[2 * N];
	for (int i = 0; i < N; i++)
		for (int k = 0; k < (int)w[i]; k++) {
			t2[m] = t[i];
			e2[m] = e[i];
			s2[m] = s[i];
			m++;
		}
	struct fp_cindex_plan *p = NULL;
	CHECK_OK(fp_cindex_plan_create(t, e, s, NULL, N, &p));
	struct fp_cindex_options uno = {40, 1};
	struct fp_cindex_result a, b;
	CHECK_OK(fp_cindex_plan_run(p, w, &uno, 0, &a));
	CHECK_OK(fp_validate_cindex(t2, e2, s2, NULL, m, &uno, &b));
	CHECK_NEAR(a.c, b.c, 0, 1e-12);
	CHECK_NEAR(a.concordant, b.concordant, 0, 1e-12);
	fp_cindex_plan_destroy(p);
	(void)t2;
}

FP_TEST(cindex_bad_input)
{
	double t[3] = {1, -2, 3}, s[3] = {1, 2, 3};
	unsigned char e[3] = {1, 0, 1}, none[3] = {0, 0, 0};
	struct fp_cindex_result r;
	CHECK_STATUS(fp_validate_cindex(t, e, s, NULL, 3, NULL, &r), FP_ERR_INVALID_ARG);
	CHECK_STR_CONTAINS(fp_error_msg(), "time: row 2 is -2");
	t[1] = 2;
	CHECK_STATUS(fp_validate_cindex(t, none, s, NULL, 3, NULL, &r), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "needs events");
	s[0] = NAN;
	CHECK_STATUS(fp_validate_cindex(t, e, s, NULL, 3, NULL, &r), FP_ERR_NUMERIC);
}

/* Kaplan-Meier by hand: times 1 2 2 3 4, events 1 1 0 1 0. */
FP_TEST(km_by_hand)
{
	double t[5] = {1, 2, 2, 3, 4}, at[3] = {0, 2, 3.5};
	unsigned char e[5] = {1, 1, 0, 1, 0};
	struct fp_km_point k[3];
	CHECK_OK(fp_validate_km(t, e, 5, at, 3, k));
	CHECK_NEAR(k[0].survival, 1, 0, 0);
	CHECK_INT_EQ(k[0].n_risk, 5);
	CHECK_NEAR(k[1].survival, 0.8 * 0.75, 0, 1e-15);
	CHECK_INT_EQ(k[1].n_risk, 4);
	CHECK_NEAR(k[2].survival, 0.6 * 0.5, 0, 1e-15);
	CHECK_NEAR(k[2].se, 0.3 * sqrt(1.0 / 20 + 1.0 / 12 + 1.0 / 2), 0, 1e-14);
	CHECK_INT_EQ(k[2].n_risk, 1);
	double late = 5;
	CHECK_STATUS(fp_validate_km(t, e, 5, &late, 1, k), FP_ERR_INVALID_ARG);
}

FP_TEST(quantile_type7)
{
	double x[5] = {5, 1, 4, 2, 3}, q;
	CHECK_OK(fp_validate_quantile7(x, 5, 0.9, &q));
	CHECK_NEAR(q, 4.6, 0, 1e-15);
	CHECK_OK(fp_validate_quantile7(x, 4, 0.5, &q));
	CHECK_NEAR(q, 3.0, 0, 1e-15);
}

/* loess reproduces a quadratic exactly (a local quadratic fit is exact). */
FP_TEST(loess_direct_reproduces_quadratic)
{
	enum { N = 60 };
	double x[N], y[N], f[N];
	for (int i = 0; i < N; i++) {
		x[i] = urand();
		y[i] = 0.2 + 0.5 * x[i] - 0.3 * x[i] * x[i];
	}
	CHECK_OK(fp_validate_loess_direct(x, y, N, 0.75, f));
	for (int i = 0; i < N; i++) CHECK_NEAR(f[i], y[i], 1e-12, 0);
}

FP_TEST(meta_equal_estimates_give_tau2_zero)
{
	double est[4] = {0.7, 0.7, 0.7, 0.7}, se[4] = {0.02, 0.03, 0.04, 0.05};
	struct fp_meta_result r;
	CHECK_OK(fp_validate_meta(est, se, 4, FP_META_LOGIT, &r));
	CHECK_NEAR(r.tau2, 0, 0, 0);
	CHECK_NEAR(r.estimate, 0.7, 1e-12, 0);
	CHECK_NEAR(r.i2, 0, 0, 0);
	CHECK_STATUS(fp_validate_meta(est, se, 1, FP_META_LOGIT, &r), FP_ERR_DATA);
	est[2] = 1.2;
	CHECK_STATUS(fp_validate_meta(est, se, 4, FP_META_LOGIT, &r), FP_ERR_INVALID_ARG);
	CHECK_STR_CONTAINS(fp_error_msg(), "row 3");
}

static const char *write_csv(const char *name, const char *text)
{
	static char path[1024];
	snprintf(path, sizeof path, "%s/%s", fp_test_tmpdir(), name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
	return path;
}

static enum fp_status stats_auc(const char *csv, json_t **out)
{
	struct fp_stats_request rq = {0};
	rq.stat = "auc";
	rq.csv = csv;
	rq.label = "y";
	rq.score = "s";
	return fp_stats_run(&rq, out);
}

FP_TEST(csv_errors_name_file_line_column)
{
	json_t *o = NULL;
	const char *p = write_csv("bad.csv", "y,s\n1,0.5\n0,abc\n");
	CHECK_STATUS(stats_auc(p, &o), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "bad.csv:3:2: column 's': 'abc' is not a number");
	p = write_csv("na.csv", "y,s\n1,0.5\n0,\n");
	CHECK_STATUS(stats_auc(p, &o), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "na.csv:3:2: column 's': missing value");
	p = write_csv("nan.csv", "y,s\n1,NaN\n0,1\n");
	CHECK_STATUS(stats_auc(p, &o), FP_ERR_NUMERIC);
	CHECK_STR_CONTAINS(fp_error_msg(), "nan.csv:2:2");
	p = write_csv("missing.csv", "label,s\n1,2\n");
	CHECK_STATUS(stats_auc(p, &o), FP_ERR_NOT_FOUND);
	CHECK_STR_CONTAINS(fp_error_msg(), "no column 'y' (columns: label, s)");
	p = write_csv("label.csv", "y,s\n1,2\n2,3\n");
	CHECK_STATUS(stats_auc(p, &o), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "label.csv:3:1: column 'y': '2' is not 0 or 1");
	p = write_csv("fields.csv", "y,s\n1,2\n0\n");
	CHECK_STATUS(stats_auc(p, &o), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "fields.csv:3: 1 fields, but the header has 2");
	CHECK(o == NULL);
}

FP_TEST(csv_quotes_and_crlf)
{
	json_t *o = NULL;
	const char *p = write_csv("q.csv", "\"y\",\"s\"\r\n1,\"0.9\"\r\n0,0.1\r\n0,\"0.5\"\r\n1,0.3\r\n");
	CHECK_OK(stats_auc(p, &o));
	CHECK_NEAR(json_real_value(json_object_get(o, "auc")), 0.75, 0, 1e-15);
	CHECK_INT_EQ(json_integer_value(json_object_get(o, "cases")), 2);
	json_decref(o);
}

/* A documented null: DeLong's SE with a single case. */
FP_TEST(stats_null_with_reason)
{
	json_t *o = NULL;
	const char *p = write_csv("one.csv", "y,s\n1,0.9\n0,0.1\n0,0.5\n");
	CHECK_OK(stats_auc(p, &o));
	CHECK(json_is_null(json_object_get(o, "se")));
	CHECK(json_array_size(json_object_get(o, "notes")) == 1);
	json_decref(o);
}

FP_TEST(stats_calibration_too_few_rows)
{
	json_t *o = NULL;
	const char *p = write_csv("few.csv", "y,p\n1,0.9\n0,0.1\n0,0.5\n");
	struct fp_stats_request rq = {0};
	rq.stat = "calibration";
	rq.csv = p;
	rq.label = "y";
	rq.prob = "p";
	CHECK_STATUS(fp_stats_run(&rq, &o), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "at least 10 rows");
}

/* Cohen (1960) as in the usual textbook table: 20 yes/yes, 5 yes/no,
 * 10 no/yes, 15 no/no gives p_o = 0.7, p_e = 0.5, kappa = 0.4. */
FP_TEST(kappa_cohen_textbook)
{
	int a[50], b[50];
	for (int i = 0; i < 50; i++) {
		a[i] = i < 25 ? 1 : 0;
		b[i] = i < 20 ? 1 : i < 25 ? 0 : i < 35 ? 1 : 0;
	}
	double k;
	CHECK_OK(fp_validate_kappa_cohen(a, b, 50, &k));
	CHECK_NEAR(k, 0.4, 0, 1e-14);
}

/* Fleiss (1971)-style worked example (10 items, 14 raters, 5 categories):
 * P-bar = 0.378, P_e = 0.213, kappa = 0.2099... */
FP_TEST(kappa_fleiss_worked_example)
{
	static const double c[10][5] = {{0, 0, 0, 0, 14}, {0, 2, 6, 4, 2}, {0, 0, 3, 5, 6}, {0, 3, 9, 2, 0},
	                                {2, 2, 8, 1, 1},  {7, 7, 0, 0, 0}, {3, 2, 6, 3, 0}, {2, 5, 3, 2, 2},
	                                {6, 5, 2, 1, 0},  {0, 2, 2, 3, 7}};
	double k, pbar = 0, share[5] = {0};
	for (int i = 0; i < 10; i++) {
		double sq = 0;
		for (int j = 0; j < 5; j++) {
			sq += c[i][j] * c[i][j];
			share[j] += c[i][j] / 140.0;
		}
		pbar += (sq - 14) / (14 * 13) / 10;
	}
	double pe = 0;
	for (int j = 0; j < 5; j++) pe += share[j] * share[j];
	CHECK_OK(fp_validate_kappa_fleiss(&c[0][0], 10, 5, &k));
	CHECK_NEAR(k, (pbar - pe) / (1 - pe), 0, 1e-14);
	CHECK_NEAR(k, 0.20993070442195522, 1e-12, 0);
}

FP_TEST(net_benefit_by_hand)
{
	unsigned char y[5] = {1, 0, 1, 0, 0};
	double p[5] = {0.9, 0.6, 0.2, 0.1, 0.5}, nb;
	CHECK_OK(fp_validate_net_benefit(y, p, 5, 0.5, &nb));
	CHECK_NEAR(nb, 1.0 / 5 - 2.0 / 5 * 1.0, 0, 1e-15); /* p >= 0.5: 1 TP, 2 FP */
	CHECK_STATUS(fp_validate_net_benefit(y, p, 5, 1.0, &nb), FP_ERR_INVALID_ARG);
}

/* The radix-sort path (n >= 4096) with negative scores, -0.0/0.0 and ties. */
FP_TEST(auc_large_n_radix_path_equals_pairwise)
{
	enum { N = 5000 };
	static unsigned char y[N];
	static double s[N];
	for (int i = 0; i < N; i++) {
		y[i] = urand() < 0.4;
		s[i] = floor(urand() * 200) - 100 + (y[i] ? 7 : 0);
		if (s[i] == 0 && urand() < 0.5) s[i] = -0.0;
	}
	double num = 0, m = 0;
	for (int i = 0; i < N; i++) m += y[i];
	for (int i = 0; i < N; i++)
		if (y[i])
			for (int j = 0; j < N; j++)
				if (!y[j]) num += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
	struct fp_auc_result r;
	CHECK_OK(fp_validate_auc(y, s, N, &r, NULL, NULL));
	CHECK_NEAR(r.auc, num / (m * (N - m)), 0, 1e-15);
}

FP_TEST(cindex_bootstrap_is_deterministic_and_brackets_estimate)
{
	enum { N = 400 };
	double t[N], s[N], a[50], b[50];
	unsigned char e[N];
	int centre[N];
	for (int i = 0; i < N; i++) {
		s[i] = urand();
		t[i] = floor(100 * urand() * (1.5 - s[i])) + 1;
		e[i] = urand() < 0.7;
		centre[i] = i % 4;
	}
	struct fp_bootstrap_result r1, r2;
	CHECK_OK(fp_validate_cindex_bootstrap(t, e, s, centre, N, NULL, 50, 7, a, &r1));
	CHECK_OK(fp_validate_cindex_bootstrap(t, e, s, centre, N, NULL, 50, 7, b, &r2));
	for (int i = 0; i < 50; i++) CHECK_NEAR(a[i], b[i], 0, 0);
	CHECK(r1.ci_low < r1.estimate && r1.estimate < r1.ci_high);
	CHECK(r1.sd > 0.005 && r1.sd < 0.1);
}

/* "In-sample, the recalibrated CITL is 0 and the slope 1" (fp_validate.h). */
FP_TEST(recalibration_binary_before_after)
{
	enum { N = 400 };
	unsigned char y[N];
	double p[N], q[N], a, b;
	for (int i = 0; i < N; i++) {
		p[i] = 0.05 + 0.9 * urand();
		y[i] = urand() < 0.2 + 0.5 * p[i]; /* miscalibrated on purpose */
	}
	struct fp_calibration_result before, after;
	CHECK_OK(fp_validate_calibration(y, p, N, &before));
	CHECK(fabs(before.slope - 1) > 0.1);
	CHECK_OK(fp_validate_recalibrate_binary(y, p, N, &a, &b, q));
	CHECK_OK(fp_validate_calibration(y, q, N, &after));
	CHECK_NEAR(after.citl, 0, 1e-9, 0);
	CHECK_NEAR(after.slope, 1, 1e-9, 0);
	CHECK_NEAR(b, before.slope, 0, 1e-12);
}

FP_TEST(recalibration_survival_gives_oe_one)
{
	enum { N = 300 };
	double t[N], r[N], r2[N], a;
	unsigned char e[N];
	for (int i = 0; i < N; i++) {
		r[i] = 0.1 + 0.5 * urand();
		t[i] = floor(-log(urand()) * 400 / (0.2 + r[i])) + 1;
		e[i] = urand() < 0.8;
	}
	struct fp_horizon_result h, h2;
	CHECK_OK(fp_validate_horizon(t, e, r, N, 365, &h));
	CHECK_OK(fp_validate_recalibrate_surv(r, N, h.km_risk, &a, r2));
	CHECK_OK(fp_validate_horizon(t, e, r2, N, 365, &h2));
	CHECK_NEAR(h2.oe, 1, 1e-12, 0);
	CHECK_NEAR(h2.auc, h.auc, 0, 1e-14); /* a monotone shift keeps the ranking */
}

/* IPCW checks of the research note: the case weights' ECDF is the KM risk. */
FP_TEST(horizon_ipcw_weighted_cases_equal_km_risk)
{
	enum { N = 500 };
	double t[N], r[N];
	unsigned char e[N];
	for (int i = 0; i < N; i++) {
		t[i] = floor(urand() * 1000) + 1;
		e[i] = urand() < 0.6;
		r[i] = 1; /* risk 1: Brier = weighted share of controls; with risk 0 of cases */
	}
	struct fp_horizon_result h1, h0;
	CHECK_OK(fp_validate_horizon(t, e, r, N, 500, &h1));
	for (int i = 0; i < N; i++) r[i] = 0;
	CHECK_OK(fp_validate_horizon(t, e, r, N, 500, &h0));
	/* with risk 0, Brier = (1/n) sum of case weights = KM risk */
	CHECK_NEAR(h0.brier, h0.km_risk, 0, 1e-12);
	/* with risk 1, Brier = (1/n) sum of control weights = KM survival */
	CHECK_NEAR(h1.brier, 1 - h1.km_risk, 0, 1e-12);
}

FP_TEST(c_for_benefit_perfect_and_reversed)
{
	/* pairs by rank: observed benefit -1, 0, 0, 1 rises with predicted benefit */
	unsigned char tr[8] = {1, 1, 1, 1, 0, 0, 0, 0};
	double ben[8] = {0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3, 0.4};
	unsigned char y[8] = {1, 0, 1, 0, 0, 0, 1, 1};
	double c;
	size_t pairs;
	CHECK_OK(fp_validate_c_for_benefit(tr, ben, y, 8, &c, &pairs));
	CHECK_INT_EQ(pairs, 4);
	CHECK_NEAR(c, 1, 0, 0);
	for (int i = 0; i < 8; i++) ben[i] = -ben[i];
	CHECK_OK(fp_validate_c_for_benefit(tr, ben, y, 8, &c, &pairs));
	CHECK_NEAR(c, 0, 0, 0);
}

FP_TEST(weighted_km_weight_two_equals_duplicate)
{
	double t[3] = {5, 8, 12}, t2[4] = {5, 5, 8, 12}, w[3] = {2, 1, 1}, s1, s2, m1, m2;
	unsigned char e[3] = {1, 0, 1}, e2[4] = {1, 1, 0, 1};
	CHECK_OK(fp_validate_km_weighted(t, e, w, 3, 10, 15, &s1, &m1));
	CHECK_OK(fp_validate_km_weighted(t2, e2, NULL, 4, 10, 15, &s2, &m2));
	CHECK_NEAR(s1, s2, 0, 1e-15);
	CHECK_NEAR(s1, 0.5, 0, 1e-15);
	CHECK_NEAR(m1, m2, 0, 1e-15);
	CHECK_NEAR(m1, 5 + 0.5 * 7 + 0, 0, 1e-15); /* S = 1 to 5, 0.5 to 12, 0 after */
}

/* Survival net benefit: nobody above the threshold gives 0; everybody above
 * gives treat-all, [1 - S_KM(t)] - S_KM(t) pt / (1 - pt). */
FP_TEST(net_benefit_survival_extremes)
{
	double t[6] = {2, 4, 4, 6, 8, 9}, r[6] = {0.3, 0.3, 0.3, 0.3, 0.3, 0.3}, nb, at = 5;
	unsigned char e[6] = {1, 0, 1, 1, 0, 1};
	CHECK_OK(fp_validate_net_benefit_surv(t, e, r, 6, 5, 0.5, &nb));
	CHECK_NEAR(nb, 0, 0, 0);
	CHECK_OK(fp_validate_net_benefit_surv(t, e, r, 6, 5, 0.2, &nb));
	struct fp_km_point k;
	CHECK_OK(fp_validate_km(t, e, 6, &at, 1, &k));
	CHECK_NEAR(nb, (1 - k.survival) - k.survival * 0.25, 0, 1e-15);
}

/* Hostile CSV files never crash the reader: random bytes, quotes, commas and
 * line ends either load or fail with an error message. */
FP_TEST(csv_random_bytes_load_or_fail_cleanly)
{
	static const char alphabet[] = "ab,\"\n\r01.5-eNA \t";
	char path[1024];
	snprintf(path, sizeof path, "%s/random.csv", fp_test_tmpdir());
	for (int round = 0; round < 300; round++) {
		FILE *f = fopen(path, "wb");
		CHECK(f != NULL);
		int len = (int)(urand() * 200);
		for (int i = 0; i < len; i++) {
			int c = urand() < 0.02 ? (int)(urand() * 256) : alphabet[(int)(urand() * (sizeof alphabet - 1))];
			fputc(c, f);
		}
		fclose(f);
		struct fp_table *t = NULL;
		enum fp_status st = fp_table_load(path, &t);
		if (st == FP_OK) {
			size_t n = fp_table_rows(t);
			double *v = malloc((n + 1) * sizeof *v);
			CHECK(v != NULL);
			if (fp_table_numeric(t, "a", v) != FP_OK) CHECK(fp_error_msg()[0] != '\0');
			free(v);
			fp_table_destroy(t);
		} else {
			CHECK(fp_error_msg()[0] != '\0');
			CHECK(t == NULL);
		}
	}
}

/* After slope recalibration the Cox slope of the new cloglog risk is 1 and
 * O/E(t) is 1 (in sample). */
FP_TEST(recalibration_survival_slope_before_after)
{
	enum { N = 400 };
	double t[N], r[N], r2[N], b, bse, a, b2, bse2, a2;
	unsigned char e[N];
	for (int i = 0; i < N; i++) {
		r[i] = 0.05 + 0.8 * urand();
		t[i] = floor(-log(urand()) * 300 / (0.1 + r[i] * r[i])) + 1;
		e[i] = urand() < 0.85;
	}
	CHECK_OK(fp_validate_recalibrate_surv_slope(t, e, r, N, 365, &b, &bse, &a, r2));
	CHECK(fabs(b - 1) > 0.05);
	CHECK_OK(fp_validate_recalibrate_surv_slope(t, e, r2, N, 365, &b2, &bse2, &a2, r2));
	CHECK_NEAR(b2, 1, 1e-9, 0);
	struct fp_horizon_result h;
	CHECK_OK(fp_validate_horizon(t, e, r2, N, 365, &h));
	CHECK_NEAR(h.oe, 1, 1e-9, 0);
}

FP_TEST(horizon_bootstrap_brackets_estimates)
{
	enum { N = 300 };
	double t[N], r[N];
	unsigned char e[N];
	int centre[N];
	for (int i = 0; i < N; i++) {
		r[i] = 0.1 + 0.8 * urand();
		t[i] = floor(-log(urand()) * 300 / (0.2 + r[i])) + 1;
		e[i] = urand() < 0.8;
		centre[i] = i % 3;
	}
	struct fp_horizon_result h;
	struct fp_horizon_bootstrap a, b;
	CHECK_OK(fp_validate_horizon(t, e, r, N, 200, &h));
	CHECK_OK(fp_validate_horizon_bootstrap(t, e, r, centre, N, 200, 200, 11, &a));
	CHECK_OK(fp_validate_horizon_bootstrap(t, e, r, centre, N, 200, 200, 11, &b));
	CHECK(a.auc_low < h.auc && h.auc < a.auc_high);
	CHECK(a.brier_low < h.brier && h.brier < a.brier_high);
	CHECK(a.oe_low < h.oe && h.oe < a.oe_high);
	CHECK_NEAR(a.ipa_low, b.ipa_low, 0, 0);
}
