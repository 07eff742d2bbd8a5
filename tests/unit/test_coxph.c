/*
 * test_coxph.c: the reference Cox model against R's survival::coxph
 * (goldens in tests/data/coxph, made by scripts/gen_coxph_goldens.R).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_coxph.h"
#include "fp_test.h"

#define MAX_ROWS 400
#define MAX_COLS 12

struct table {
	int n, ncol;
	char names[MAX_COLS][32];
	double v[MAX_ROWS][MAX_COLS];
};

/* The goldens' CSVs are plain numbers with a header (written by R). */
static void load_csv(const char *file, struct table *t)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/coxph/%s", fp_test_datadir(), file);
	FILE *f = fopen(path, "r");
	CHECK_MSG(f != NULL, "cannot open %s", path);
	char line[4096];
	CHECK(fgets(line, sizeof line, f) != NULL);
	t->ncol = 0;
	for (char *tok = strtok(line, ",\n"); tok; tok = strtok(NULL, ",\n"))
		snprintf(t->names[t->ncol++], 32, "%s", tok);
	t->n = 0;
	while (fgets(line, sizeof line, f)) {
		int c = 0;
		for (char *tok = strtok(line, ",\n"); tok; tok = strtok(NULL, ",\n")) t->v[t->n][c++] = atof(tok);
		CHECK_INT_EQ(c, t->ncol);
		t->n++;
	}
	fclose(f);
}

static int col(const struct table *t, const char *name)
{
	for (int c = 0; c < t->ncol; c++)
		if (strcmp(t->names[c], name) == 0) return c;
	fp_test_fail(__FILE__, __LINE__, "no column %s", name);
}

static json_t *load_golden(const char *model)
{
	char path[4096];
	json_t *g = NULL;
	snprintf(path, sizeof path, "%s/coxph/%s.json", fp_test_datadir(), model);
	CHECK_OK(fp_json_load_file(path, &g));
	return g;
}

static double jnum(json_t *a, size_t i)
{
	return json_number_value(json_array_get(a, i));
}

/* Fits the golden's model and compares with R: coef, se, robust se to 1e-6 relative. */
static void check_model(const char *model)
{
	json_t *g = load_golden(model);
	static struct table t;
	load_csv(json_string_value(json_object_get(g, "data")), &t);
	json_t *covs = json_object_get(g, "covariates");
	int p = (int)json_array_size(covs);
	static double x[MAX_ROWS * MAX_COLS], time[MAX_ROWS], w[MAX_ROWS];
	static int event[MAX_ROWS], strata[MAX_ROWS];
	int ct = col(&t, "time"), cs = col(&t, "status");
	const char *sname = json_string_value(json_object_get(g, "strata"));
	const char *wname = json_string_value(json_object_get(g, "weights"));
	for (int i = 0; i < t.n; i++) {
		for (int j = 0; j < p; j++) x[i * p + j] = t.v[i][col(&t, json_string_value(json_array_get(covs, j)))];
		time[i] = t.v[i][ct];
		event[i] = (int)t.v[i][cs];
		if (sname) strata[i] = (int)t.v[i][col(&t, sname)];
		if (wname) w[i] = t.v[i][col(&t, wname)];
	}
	struct fp_coxph_data d = {t.n, p, x, time, event, wname ? w : NULL, sname ? strata : NULL, NULL};
	struct fp_coxph_options o;
	fp_coxph_options_default(&o);
	o.ties = strcmp(json_string_value(json_object_get(g, "ties")), "efron") == 0 ? FP_COXPH_EFRON : FP_COXPH_BRESLOW;
	o.eps = 1e-12;
	o.max_iter = 200;
	struct fp_coxph_result r;
	CHECK_OK(fp_coxph_fit(&d, &o, &r));
	CHECK(r.converged);
	CHECK_INT_EQ(r.n, json_integer_value(json_object_get(g, "n")));
	CHECK_INT_EQ(r.nevent, json_integer_value(json_object_get(g, "nevent")));
	for (int j = 0; j < p; j++) {
		CHECK_NEAR(r.coef[j], jnum(json_object_get(g, "coef"), (size_t)j), 0, 1e-6);
		CHECK_NEAR(r.se[j], jnum(json_object_get(g, "se"), (size_t)j), 0, 1e-6);
		CHECK_NEAR(r.robust_se[j], jnum(json_object_get(g, "robust_se"), (size_t)j), 0, 1e-6);
	}
	CHECK_NEAR(r.loglik_null, json_number_value(json_object_get(g, "loglik_null")), 0, 1e-10);
	CHECK_NEAR(r.loglik, json_number_value(json_object_get(g, "loglik")), 0, 1e-10);

	/* "at the fit, the weighted score residuals sum to zero": the score is 0 */
	double ll, score[MAX_COLS];
	CHECK_OK(fp_coxph_loglik(&d, o.ties, r.coef, &ll, score, NULL));
	for (int j = 0; j < p; j++) CHECK_NEAR(score[j], 0, 1e-6, 0);
	fp_coxph_result_close(&r);
	fp_coxph_result_close(&r);
	json_decref(g);
}

FP_TEST(lung_efron_equals_r) { check_model("lung_efron"); }
FP_TEST(lung_breslow_equals_r) { check_model("lung_breslow"); }
FP_TEST(lung_weighted_efron_equals_r) { check_model("lung_weighted_efron"); }
FP_TEST(veteran_strata_efron_equals_r) { check_model("veteran_strata_efron"); }
FP_TEST(veteran_strata_breslow_equals_r) { check_model("veteran_strata_breslow"); }

/* Bad input is refused with a message naming the row or covariate. */
FP_TEST(refuses_bad_data)
{
	double x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, t[4] = {1, 2, 3, 4};
	int e0[4] = {0, 0, 0, 0}, e[4] = {1, 0, 1, 1};
	struct fp_coxph_result r;
	struct fp_coxph_data d = {4, 1, x, t, e0, NULL, NULL, NULL};
	CHECK_STATUS(fp_coxph_fit(&d, NULL, &r), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "no events");
	double tneg[4] = {1, -2, 3, 4};
	d.event = e;
	d.time = tneg;
	CHECK_STATUS(fp_coxph_fit(&d, NULL, &r), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "row 2");
	/* collinear covariates: column 2 = 2 * column 1 */
	double xc[8] = {1, 2, 2, 4, 3, 6, 5, 10};
	const char *names[2] = {"afp", "afp_twice"};
	struct fp_coxph_data d2 = {4, 2, xc, t, e, NULL, NULL, names};
	CHECK_STATUS(fp_coxph_fit(&d2, NULL, &r), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "afp_twice");
}
