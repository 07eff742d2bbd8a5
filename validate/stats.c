/*
 * stats.c: reads the columns a statistic needs from a CSV table, runs it and
 * builds the JSON object of fp_stats.h. Column errors come from fp_table
 * (file:line:column); data errors from the statistic (FP_ERR_DATA).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_stats.h"
#include "fp_table.h"
#include "fp_validate.h"

const char *const fp_stats_names[] = {"auc", "cindex", "calibration", "km", "meta", "roc_test", "logrank", "multiclass", "horizon", "benefit", "netbenefit", "cforbenefit", NULL};

/* A real, or null when not finite; counts that are whole numbers as integers. */
static int put(json_t *o, const char *key, double v)
{
	if (!isfinite(v)) return json_object_set_new(o, key, json_null());
	return json_object_set_new(o, key, json_real(v));
}

static int put_count(json_t *o, const char *key, double v)
{
	if (isfinite(v) && v == floor(v) && fabs(v) < 9e15) return json_object_set_new(o, key, json_integer((json_int_t)v));
	return put(o, key, v);
}

#define Z975 1.959963984540054

/* 95% CI on the logit scale, back-transformed: stays inside (0, 1). */
static void put_logit_ci(json_t *o, double est, double se)
{
	if (!(est > 0 && est < 1) || !isfinite(se)) {
		put(o, "ci_logit_low", NAN);
		put(o, "ci_logit_high", NAN);
		return;
	}
	double l = log(est / (1 - est)), s = se / (est * (1 - est));
	put(o, "ci_logit_low", 1 / (1 + exp(-(l - Z975 * s))));
	put(o, "ci_logit_high", 1 / (1 + exp(-(l + Z975 * s))));
}

static void note(json_t *o, const char *text)
{
	json_t *a = json_object_get(o, "notes");
	if (!a) {
		a = json_array();
		json_object_set_new(o, "notes", a);
	}
	json_array_append_new(a, json_string(text));
}

/* Survival times must be >= 0; the error names the cell (file:line:column). */
static enum fp_status check_times(const struct fp_table *t, const char *column, const double *v)
{
	for (size_t i = 0; i < fp_table_rows(t); i++)
		if (v[i] < 0) {
			char where[1200];
			fp_table_where(t, column, i, where, sizeof where);
			return FP_FAIL(FP_ERR_INVALID_ARG, "%s: column '%s': time %g is negative", where, column, v[i]);
		}
	return FP_OK;
}

/* Column readers: allocate n values (at least one) and fill them from the
 * named column; errors name file:line:column (fp_table). The caller frees. */
static enum fp_status col_num(const struct fp_table *t, const char *col, double **out, const char *what)
{
	size_t n = fp_table_rows(t);
	FP_TRY(fp_alloc_array(n ? n : 1, sizeof **out, (void **)out, what));
	return fp_table_numeric(t, col, *out);
}

/* Survival times: numeric and >= 0. */
static enum fp_status col_time(const struct fp_table *t, const char *col, double **out, const char *what)
{
	FP_TRY(col_num(t, col, out, what));
	return check_times(t, col, *out);
}

static enum fp_status col_bin(const struct fp_table *t, const char *col, unsigned char **out, const char *what)
{
	size_t n = fp_table_rows(t);
	FP_TRY(fp_alloc_array(n ? n : 1, 1, (void **)out, what));
	return fp_table_binary(t, col, *out);
}

static enum fp_status col_factor(const struct fp_table *t, const char *col, int **out, size_t *levels, const char *what)
{
	size_t n = fp_table_rows(t);
	FP_TRY(fp_alloc_array(n ? n : 1, sizeof **out, (void **)out, what));
	return fp_table_factor(t, col, *out, levels);
}

/* --centre for a stratified bootstrap: NULL (one centre) when not given. */
static enum fp_status opt_centre(const struct fp_stats_request *rq, const struct fp_table *t, int **centre, size_t *levels)
{
	*centre = NULL;
	*levels = 1;
	if (!rq->centre) return FP_OK;
	return col_factor(t, rq->centre, centre, levels, "centres");
}

/* The "bootstrap" object's common members; the caller adds the intervals. */
static json_t *boot_json(json_t *o, size_t replicates, const struct fp_stats_request *rq, size_t centres)
{
	json_t *jb = json_object();
	json_object_set_new(jb, "replicates", json_integer((json_int_t)replicates));
	json_object_set_new(jb, "seed", json_integer((json_int_t)rq->seed));
	json_object_set_new(jb, "centres", json_integer((json_int_t)centres));
	json_object_set_new(o, "bootstrap", jb);
	return jb;
}

static enum fp_status need(const char *stat, const char *opt, const char *value)
{
	if (!value || !*value) return FP_FAIL(FP_ERR_INVALID_ARG, "%s needs --%s COLUMN", stat, opt);
	return FP_OK;
}

static enum fp_status run_auc(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t);
	unsigned char *y = NULL;
	double *s = NULL;
	FP_TRY(need("auc", "label", rq->label));
	FP_TRY(need("auc", "score", rq->score));
	FP_CHECK(st, col_bin(t, rq->label, &y, "labels"));
	FP_CHECK(st, col_num(t, rq->score, &s, "scores"));
	struct fp_auc_result r;
	FP_CHECK(st, fp_validate_auc(y, s, n, &r, NULL, NULL));
	json_object_set_new(o, "n", json_integer((json_int_t)r.n));
	json_object_set_new(o, "cases", json_integer((json_int_t)r.cases));
	json_object_set_new(o, "controls", json_integer((json_int_t)r.controls));
	put(o, "auc", r.auc);
	put(o, "se", r.se);
	put(o, "ci_low", r.ci_low);
	put(o, "ci_high", r.ci_high);
	put_logit_ci(o, r.auc, r.se);
	if (!isfinite(r.se)) note(o, "se, ci_low, ci_high: DeLong's variance needs at least 2 cases and 2 controls");
fail:
	free(y);
	free(s);
	return st;
}

static enum fp_status run_cindex(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t), levels = 0;
	unsigned char *e = NULL;
	double *tm = NULL, *s = NULL;
	int *strata = NULL;
	FP_TRY(need("cindex", "time", rq->time));
	FP_TRY(need("cindex", "event", rq->event));
	FP_TRY(need("cindex", "score", rq->score));
	FP_CHECK(st, col_time(t, rq->time, &tm, "times"));
	FP_CHECK(st, col_bin(t, rq->event, &e, "events"));
	FP_CHECK(st, col_num(t, rq->score, &s, "scores"));
	if (rq->strata && *rq->strata) {
		FP_CHECK(st, col_factor(t, rq->strata, &strata, &levels, "strata"));
	}
	struct fp_cindex_options opt = {rq->tau, rq->uno};
	struct fp_cindex_result r;
	FP_CHECK(st, fp_validate_cindex(tm, e, s, strata, n, &opt, &r));
	json_object_set_new(o, "n", json_integer((json_int_t)r.n));
	json_object_set_new(o, "events", json_integer((json_int_t)r.events));
	put(o, "c", r.c);
	put(o, "se", r.se);
	put_count(o, "concordant", r.concordant);
	put_count(o, "discordant", r.discordant);
	put_count(o, "tied_x", r.tied_x);
	put_count(o, "tied_y", r.tied_y);
	put_count(o, "tied_xy", r.tied_xy);
	put(o, "ci_low", r.c - Z975 * r.se);
	put(o, "ci_high", r.c + Z975 * r.se);
	put_logit_ci(o, r.c, r.se);
	if (strata) json_object_set_new(o, "strata", json_integer((json_int_t)levels));
	if (rq->bootstrap > 0) {
		int *centre = NULL;
		size_t nlev = 1;
		st = opt_centre(rq, t, &centre, &nlev);
		if (st != FP_OK) {
			free(centre);
			goto fail;
		}
		struct fp_bootstrap_result b;
		st = fp_validate_cindex_bootstrap(tm, e, s, centre, n, &opt, (size_t)rq->bootstrap, rq->seed, NULL, &b);
		free(centre);
		if (st != FP_OK) goto fail;
		json_t *jb = boot_json(o, b.replicates, rq, nlev);
		put(jb, "sd", b.sd);
		put(jb, "ci_low", b.ci_low);
		put(jb, "ci_high", b.ci_high);
		if (strata) note(o, "bootstrap: replicates are of the unstratified C (pairs across strata included)");
	}
fail:
	free(e);
	free(tm);
	free(s);
	free(strata);
	return st;
}

static enum fp_status run_calibration(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t);
	unsigned char *y = NULL;
	double *p = NULL;
	FP_TRY(need("calibration", "label", rq->label));
	FP_TRY(need("calibration", "prob", rq->prob));
	FP_CHECK(st, col_bin(t, rq->label, &y, "labels"));
	FP_CHECK(st, col_num(t, rq->prob, &p, "probabilities"));
	struct fp_calibration_result r;
	FP_CHECK(st, fp_validate_calibration(y, p, n, &r));
	json_object_set_new(o, "n", json_integer((json_int_t)r.n));
	put(o, "citl", r.citl);
	put(o, "slope", r.slope);
	put(o, "oe", r.oe);
	put(o, "brier", r.brier);
	put(o, "scaled_brier", r.scaled_brier);
	put(o, "ici", r.ici);
	put(o, "e50", r.e50);
	put(o, "e90", r.e90);
	put(o, "ici_interpolate", r.ici_interp);
	put(o, "e50_interpolate", r.e50_interp);
	put(o, "e90_interpolate", r.e90_interp);
	if (rq->recalibrate) {
		double a, b, *q = NULL;
		struct fp_calibration_result after;
		FP_CHECK(st, fp_alloc_array(n, sizeof *q, (void **)&q, "recalibrated probabilities"));
		st = fp_validate_recalibrate_binary(y, p, n, &a, &b, q);
		if (st == FP_OK) st = fp_validate_calibration(y, q, n, &after);
		free(q);
		if (st != FP_OK) goto fail;
		json_t *jr = json_object();
		put(jr, "intercept", a);
		put(jr, "slope_coef", b);
		put(jr, "citl", after.citl);
		put(jr, "slope", after.slope);
		put(jr, "oe", after.oe);
		put(jr, "brier", after.brier);
		put(jr, "scaled_brier", after.scaled_brier);
		put(jr, "ici", after.ici);
		put(jr, "e50", after.e50);
		put(jr, "e90", after.e90);
		json_object_set_new(o, "recalibrated", jr);
		note(o, "recalibrated: in-sample logistic recalibration p' = plogis(intercept + slope_coef logit p)");
	}
	if (rq->bootstrap > 0) {
		int *centre = NULL;
		size_t nlev = 1;
		st = opt_centre(rq, t, &centre, &nlev);
		if (st != FP_OK) {
			free(centre);
			goto fail;
		}
		struct fp_bootstrap_result b;
		st = fp_validate_ici_bootstrap(y, p, centre, n, (size_t)rq->bootstrap, rq->seed, NULL, &b);
		free(centre);
		if (st != FP_OK) goto fail;
		json_t *jb = boot_json(o, b.replicates, rq, nlev);
		json_object_set_new(jb, "statistic", json_string("ici_interpolate"));
		put(jb, "sd", b.sd);
		put(jb, "ci_low", b.ci_low);
		put(jb, "ci_high", b.ci_high);
	}
fail:
	free(y);
	free(p);
	return st;
}

static enum fp_status run_km(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t);
	unsigned char *e = NULL;
	double *tm = NULL;
	struct fp_km_point *pt = NULL;
	FP_TRY(need("km", "time", rq->time));
	FP_TRY(need("km", "event", rq->event));
	if (rq->n_at == 0) return FP_FAIL(FP_ERR_INVALID_ARG, "km needs --at T1,T2,...");
	FP_CHECK(st, fp_alloc_array(rq->n_at, sizeof *pt, (void **)&pt, "KM points"));
	FP_CHECK(st, col_time(t, rq->time, &tm, "times"));
	FP_CHECK(st, col_bin(t, rq->event, &e, "events"));
	FP_CHECK(st, fp_validate_km(tm, e, n, rq->at, rq->n_at, pt));
	json_t *a_t = json_array(), *a_s = json_array(), *a_se = json_array(), *a_n = json_array();
	int se_null = 0;
	for (size_t j = 0; j < rq->n_at; j++) {
		json_array_append_new(a_t, json_real(pt[j].time));
		json_array_append_new(a_s, json_real(pt[j].survival));
		json_array_append_new(a_se, isfinite(pt[j].se) ? json_real(pt[j].se) : json_null());
		json_array_append_new(a_n, json_integer((json_int_t)pt[j].n_risk));
		se_null |= !isfinite(pt[j].se);
	}
	json_object_set_new(o, "n", json_integer((json_int_t)n));
	json_object_set_new(o, "times", a_t);
	json_object_set_new(o, "survival", a_s);
	json_object_set_new(o, "se", a_se);
	json_object_set_new(o, "n_risk", a_n);
	if (se_null) note(o, "se: Greenwood's SE is undefined once the survival estimate reaches 0");
fail:
	free(e);
	free(tm);
	free(pt);
	return st;
}

static enum fp_status run_meta(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t k = fp_table_rows(t);
	double *est = NULL, *se = NULL;
	enum fp_meta_scale scale = FP_META_IDENTITY;
	FP_TRY(need("meta", "estimate", rq->estimate));
	FP_TRY(need("meta", "se", rq->se));
	if (!rq->scale) return FP_FAIL(FP_ERR_INVALID_ARG, "meta needs --scale logit|log|identity");
	FP_TRY(fp_meta_scale_parse(rq->scale, &scale));
	FP_CHECK(st, fp_alloc_array(k ? k : 1, sizeof *est, (void **)&est, "estimates"));
	FP_CHECK(st, fp_alloc_array(k ? k : 1, sizeof *se, (void **)&se, "standard errors"));
	FP_CHECK(st, fp_table_numeric(t, rq->estimate, est));
	FP_CHECK(st, fp_table_numeric(t, rq->se, se));
	struct fp_meta_result r;
	FP_CHECK(st, fp_validate_meta(est, se, k, scale, &r));
	json_object_set_new(o, "k", json_integer((json_int_t)r.k));
	json_object_set_new(o, "scale", json_string(rq->scale));
	put(o, "estimate", r.estimate);
	put(o, "ci_low", r.ci_low);
	put(o, "ci_high", r.ci_high);
	put(o, "pi_low", r.pi_low);
	put(o, "pi_high", r.pi_high);
	put(o, "tau2", r.tau2);
	put(o, "i2", r.i2);
	put(o, "q", r.q);
	if (r.k < 3) note(o, "pi_low, pi_high: the prediction interval uses t with k - 2 degrees of freedom and needs k >= 3");
fail:
	free(est);
	free(se);
	return st;
}

static enum fp_status run_roc_test(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t);
	unsigned char *y = NULL;
	double *s1 = NULL, *s2 = NULL;
	FP_TRY(need("roc_test", "label", rq->label));
	FP_TRY(need("roc_test", "score", rq->score));
	FP_TRY(need("roc_test", "score2", rq->score2));
	FP_CHECK(st, col_bin(t, rq->label, &y, "labels"));
	FP_CHECK(st, col_num(t, rq->score, &s1, "scores"));
	FP_CHECK(st, col_num(t, rq->score2, &s2, "scores"));
	struct fp_auc_paired_result r;
	FP_CHECK(st, fp_validate_auc_paired(y, s1, s2, n, &r));
	json_object_set_new(o, "n", json_integer((json_int_t)n));
	put(o, "auc1", r.a.auc);
	put(o, "auc2", r.b.auc);
	put(o, "diff", r.diff);
	put(o, "se_diff", r.se_diff);
	put(o, "z", r.z);
	put(o, "p", r.p);
fail:
	free(y);
	free(s1);
	free(s2);
	return st;
}

static enum fp_status run_logrank(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t), levels = 0;
	unsigned char *e = NULL;
	double *tm = NULL;
	int *g = NULL;
	FP_TRY(need("logrank", "time", rq->time));
	FP_TRY(need("logrank", "event", rq->event));
	FP_TRY(need("logrank", "group", rq->group));
	FP_CHECK(st, col_time(t, rq->time, &tm, "times"));
	FP_CHECK(st, col_bin(t, rq->event, &e, "events"));
	FP_CHECK(st, col_factor(t, rq->group, &g, &levels, "groups"));
	struct fp_logrank_result r;
	FP_CHECK(st, fp_validate_logrank(tm, e, g, n, &r));
	json_object_set_new(o, "groups", json_integer((json_int_t)r.groups));
	put(o, "chisq", r.chisq);
	put(o, "df", r.df);
	put(o, "p", r.p);
fail:
	free(e);
	free(tm);
	free(g);
	return st;
}

#define STATS_MAX_CLASSES 64

static enum fp_status run_multiclass(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t), K = 0, levels = 0, cells = 0;
	char names[STATS_MAX_CLASSES][128];
	double *col = NULL, *prob = NULL;
	int *raw = NULL, *cls = NULL;
	FP_TRY(need("multiclass", "class", rq->cls));
	FP_TRY(need("multiclass", "probs", rq->probs));
	for (const char *p = rq->probs; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (K >= STATS_MAX_CLASSES || len == 0 || len >= sizeof names[0])
			return FP_FAIL(FP_ERR_INVALID_ARG, "--probs: expected 2 to %d comma-separated column names", STATS_MAX_CLASSES);
		memcpy(names[K], p, len);
		names[K++][len] = '\0';
		p = e ? e + 1 : p + len;
	}
	if (K < 2) return FP_FAIL(FP_ERR_INVALID_ARG, "--probs needs at least 2 columns");
	FP_CHECK(st, fp_size_mul(n ? n : 1, K, &cells, "class score matrix"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *col, (void **)&col, "class scores"));
	FP_CHECK(st, fp_alloc_array(cells, sizeof *prob, (void **)&prob, "class scores"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *cls, (void **)&cls, "classes"));
	for (size_t c = 0; c < K; c++) {
		FP_CHECK(st, fp_table_numeric(t, names[c], col));
		for (size_t i = 0; i < n; i++) prob[i * K + c] = col[i];
	}
	FP_CHECK(st, col_factor(t, rq->cls, &raw, &levels, "classes"));
	/* map each row's class text to the --probs column of the same name */
	for (size_t i = 0; i < n; i++) {
		const char *v = fp_table_text(t, rq->cls, i);
		size_t c = 0;
		while (c < K && strcmp(names[c], v) != 0) c++;
		if (c == K) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: column '%s', data row %zu: class '%s' has no score column in --probs", rq->csv,
			             rq->cls, i + 1, v);
			goto fail;
		}
		cls[i] = (int)c;
	}
	struct fp_multiclass_auc_result r;
	FP_CHECK(st, fp_validate_auc_multiclass(cls, prob, n, K, &r));
	json_object_set_new(o, "n", json_integer((json_int_t)r.n));
	json_object_set_new(o, "classes", json_integer((json_int_t)r.classes));
	put(o, "hand_till", r.hand_till);
	put(o, "ovr_macro", r.ovr_macro);
	put(o, "ovr_weighted", r.ovr_weighted);
fail:
	free(col);
	free(prob);
	free(raw);
	free(cls);
	return st;
}

static enum fp_status run_horizon(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t);
	unsigned char *e = NULL;
	double *tm = NULL, *rk = NULL;
	FP_TRY(need("horizon", "time", rq->time));
	FP_TRY(need("horizon", "event", rq->event));
	FP_TRY(need("horizon", "risk", rq->risk));
	if (rq->n_at != 1) return FP_FAIL(FP_ERR_INVALID_ARG, "horizon needs --at T (one time)");
	FP_CHECK(st, col_time(t, rq->time, &tm, "times"));
	FP_CHECK(st, col_bin(t, rq->event, &e, "events"));
	FP_CHECK(st, col_num(t, rq->risk, &rk, "risks"));
	struct fp_horizon_result r;
	FP_CHECK(st, fp_validate_horizon(tm, e, rk, n, rq->at[0], &r));
	json_object_set_new(o, "n", json_integer((json_int_t)r.n));
	put(o, "t", r.t);
	json_object_set_new(o, "cases", json_integer((json_int_t)r.cases));
	json_object_set_new(o, "controls", json_integer((json_int_t)r.controls));
	json_object_set_new(o, "censored_before", json_integer((json_int_t)r.censored_before));
	put(o, "auc", r.auc);
	put(o, "brier", r.brier);
	put(o, "brier_null", r.brier_null);
	put(o, "ipa", r.ipa);
	put(o, "km_risk", r.km_risk);
	put(o, "mean_risk", r.mean_risk);
	put(o, "oe", r.oe);
	if (!isfinite(r.auc)) note(o, "auc: AUC(t) needs at least one event by t and one patient event-free after t");
	if (!isfinite(r.ipa)) note(o, "ipa: the null model's Brier score is 0");
	if (rq->bootstrap > 0) {
		int *centre = NULL;
		size_t nlev = 1;
		st = opt_centre(rq, t, &centre, &nlev);
		if (st != FP_OK) {
			free(centre);
			goto fail;
		}
		struct fp_horizon_bootstrap hb;
		st = fp_validate_horizon_bootstrap(tm, e, rk, centre, n, rq->at[0], (size_t)rq->bootstrap, rq->seed, &hb);
		free(centre);
		if (st != FP_OK) goto fail;
		json_t *jb = boot_json(o, hb.replicates, rq, nlev);
		put(jb, "auc_low", hb.auc_low);
		put(jb, "auc_high", hb.auc_high);
		put(jb, "brier_low", hb.brier_low);
		put(jb, "brier_high", hb.brier_high);
		put(jb, "ipa_low", hb.ipa_low);
		put(jb, "ipa_high", hb.ipa_high);
		put(jb, "oe_low", hb.oe_low);
		put(jb, "oe_high", hb.oe_high);
	}
	if (rq->recalibrate) {
		double b, bse, a, *q = NULL;
		struct fp_horizon_result after;
		FP_CHECK(st, fp_alloc_array(n, sizeof *q, (void **)&q, "recalibrated risks"));
		st = fp_validate_recalibrate_surv_slope(tm, e, rk, n, rq->at[0], &b, &bse, &a, q);
		if (st == FP_OK) st = fp_validate_horizon(tm, e, q, n, rq->at[0], &after);
		free(q);
		if (st != FP_OK) goto fail;
		json_t *jr = json_object();
		put(jr, "slope", b);
		put(jr, "slope_se", bse);
		put(jr, "intercept", a);
		put(jr, "auc", after.auc);
		put(jr, "brier", after.brier);
		put(jr, "ipa", after.ipa);
		put(jr, "oe", after.oe);
		json_object_set_new(o, "recalibrated", jr);
	}
fail:
	free(e);
	free(tm);
	free(rk);
	return st;
}

static enum fp_status run_benefit(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t), A = 0, cells = 0;
	char names[STATS_MAX_CLASSES][128];
	unsigned char *e = NULL;
	double *tm = NULL, *col = NULL, *ps = NULL, *a = NULL, *r = NULL;
	int *arm = NULL, *rec = NULL;
	FP_TRY(need("benefit", "time", rq->time));
	FP_TRY(need("benefit", "event", rq->event));
	FP_TRY(need("benefit", "arm", rq->arm));
	FP_TRY(need("benefit", "recommended", rq->recommended));
	FP_TRY(need("benefit", "propensity", rq->propensity));
	if (rq->n_at != 1) return FP_FAIL(FP_ERR_INVALID_ARG, "benefit needs --at TAU (one time)");
	for (const char *p = rq->propensity; *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (A >= STATS_MAX_CLASSES || len == 0 || len >= sizeof names[0])
			return FP_FAIL(FP_ERR_INVALID_ARG, "--propensity: expected 2 to %d comma-separated columns", STATS_MAX_CLASSES);
		memcpy(names[A], p, len);
		names[A++][len] = '\0';
		p = c ? c + 1 : p + len;
	}
	FP_CHECK(st, fp_size_mul(n ? n : 1, A, &cells, "propensity matrix"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *col, (void **)&col, "propensity"));
	FP_CHECK(st, fp_alloc_array(cells, sizeof *ps, (void **)&ps, "propensity"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *arm, (void **)&arm, "arms"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *rec, (void **)&rec, "arms"));
	FP_CHECK(st, col_time(t, rq->time, &tm, "times"));
	FP_CHECK(st, col_bin(t, rq->event, &e, "events"));
	FP_CHECK(st, col_num(t, rq->arm, &a, "arms"));
	FP_CHECK(st, col_num(t, rq->recommended, &r, "arms"));
	for (size_t c = 0; c < A; c++) {
		FP_CHECK(st, fp_table_numeric(t, names[c], col));
		for (size_t i = 0; i < n; i++) ps[i * A + c] = col[i];
	}
	for (size_t i = 0; i < n; i++) {
		if (a[i] != floor(a[i]) || r[i] != floor(r[i])) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: data row %zu: arm and recommended must be arm numbers 0..%zu", rq->csv, i + 1, A - 1);
			goto fail;
		}
		arm[i] = (int)a[i];
		rec[i] = (int)r[i];
	}
	struct fp_benefit_result b;
	FP_CHECK(st, fp_validate_benefit(tm, e, arm, rec, ps, n, A, rq->at[0], &b));
	json_object_set_new(o, "n", json_integer((json_int_t)b.n));
	put(o, "tau", rq->at[0]);
	json_object_set_new(o, "followed", json_integer((json_int_t)b.followed));
	json_object_set_new(o, "not_followed", json_integer((json_int_t)b.not_followed));
	put(o, "surv_followed", b.surv_followed);
	put(o, "surv_not", b.surv_not);
	put(o, "rmst_followed", b.rmst_followed);
	put(o, "rmst_not", b.rmst_not);
	put(o, "rmst_diff", b.rmst_diff);
	put(o, "policy_value", b.policy_value);
	put(o, "hr", b.hr);
	put(o, "log_hr", b.log_hr);
	put(o, "log_hr_se", b.log_hr_se);
fail:
	free(e);
	free(tm);
	free(col);
	free(ps);
	free(a);
	free(r);
	free(arm);
	free(rec);
	return st;
}

static enum fp_status run_netbenefit(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t);
	unsigned char *y = NULL;
	double *a = NULL, *b = NULL;
	int surv = rq->time != NULL;
	if (rq->n_thresholds == 0) return FP_FAIL(FP_ERR_INVALID_ARG, "netbenefit needs --thresholds P1,P2,...");
	if (surv) {
		FP_TRY(need("netbenefit", "event", rq->event));
		FP_TRY(need("netbenefit", "risk", rq->risk));
		if (rq->n_at != 1) return FP_FAIL(FP_ERR_INVALID_ARG, "netbenefit with --time needs --at T (one horizon)");
	} else {
		FP_TRY(need("netbenefit", "label", rq->label));
		FP_TRY(need("netbenefit", "prob", rq->prob));
	}
	FP_CHECK(st, fp_alloc_array(n ? n : 1, 1, (void **)&y, "outcomes"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *a, (void **)&a, "column"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *b, (void **)&b, "column"));
	if (surv) {
		FP_CHECK(st, fp_table_numeric(t, rq->time, a));
		FP_CHECK(st, check_times(t, rq->time, a));
		FP_CHECK(st, fp_table_binary(t, rq->event, y));
		FP_CHECK(st, fp_table_numeric(t, rq->risk, b));
	} else {
		FP_CHECK(st, fp_table_binary(t, rq->label, y));
		FP_CHECK(st, fp_table_numeric(t, rq->prob, b));
	}
	/* treat all: everyone above every threshold */
	double base = 0;
	if (surv) {
		struct fp_horizon_result h;
		FP_CHECK(st, fp_validate_horizon(a, y, b, n, rq->at[0], &h));
		base = h.km_risk;
	} else {
		for (size_t i = 0; i < n; i++) base += y[i];
		base = n ? base / (double)n : NAN;
	}
	json_t *th = json_array(), *nb = json_array(), *all = json_array();
	json_object_set_new(o, "n", json_integer((json_int_t)n));
	json_object_set_new(o, "thresholds", th);
	json_object_set_new(o, "net_benefit", nb);
	json_object_set_new(o, "treat_all", all);
	for (size_t j = 0; j < rq->n_thresholds; j++) {
		double pt = rq->thresholds[j], v;
		if (surv) FP_CHECK(st, fp_validate_net_benefit_surv(a, y, b, n, rq->at[0], pt, &v));
		else FP_CHECK(st, fp_validate_net_benefit(y, b, n, pt, &v));
		json_array_append_new(th, json_real(pt));
		json_array_append_new(nb, json_real(v));
		json_array_append_new(all, json_real(base - (1 - base) * pt / (1 - pt)));
	}
fail:
	free(y);
	free(a);
	free(b);
	return st;
}

static enum fp_status run_cforbenefit(const struct fp_stats_request *rq, const struct fp_table *t, json_t *o)
{
	enum fp_status st = FP_OK;
	size_t n = fp_table_rows(t), pairs = 0;
	unsigned char *tr = NULL, *y = NULL;
	double *ben = NULL, c = NAN;
	FP_TRY(need("cforbenefit", "treated", rq->treated));
	FP_TRY(need("cforbenefit", "benefit", rq->benefit));
	FP_TRY(need("cforbenefit", "outcome", rq->outcome));
	FP_CHECK(st, col_bin(t, rq->treated, &tr, "treated"));
	FP_CHECK(st, col_bin(t, rq->outcome, &y, "outcome"));
	FP_CHECK(st, col_num(t, rq->benefit, &ben, "benefit"));
	FP_CHECK(st, fp_validate_c_for_benefit(tr, ben, y, n, &c, &pairs));
	json_object_set_new(o, "n", json_integer((json_int_t)n));
	json_object_set_new(o, "pairs", json_integer((json_int_t)pairs));
	put(o, "c_for_benefit", c);
fail:
	free(tr);
	free(y);
	free(ben);
	return st;
}

enum fp_status fp_stats_run(const struct fp_stats_request *rq, json_t **out)
{
	enum fp_status st = FP_OK;
	struct fp_table *t = NULL;
	json_t *o = NULL;
	enum fp_status (*fn)(const struct fp_stats_request *, const struct fp_table *, json_t *) = NULL;
	*out = NULL;
	if (!rq->stat) return FP_FAIL(FP_ERR_INVALID_ARG, "no statistic named");
	if (strcmp(rq->stat, "auc") == 0) fn = run_auc;
	else if (strcmp(rq->stat, "cindex") == 0) fn = run_cindex;
	else if (strcmp(rq->stat, "calibration") == 0) fn = run_calibration;
	else if (strcmp(rq->stat, "km") == 0) fn = run_km;
	else if (strcmp(rq->stat, "meta") == 0) fn = run_meta;
	else if (strcmp(rq->stat, "roc_test") == 0) fn = run_roc_test;
	else if (strcmp(rq->stat, "logrank") == 0) fn = run_logrank;
	else if (strcmp(rq->stat, "multiclass") == 0) fn = run_multiclass;
	else if (strcmp(rq->stat, "horizon") == 0) fn = run_horizon;
	else if (strcmp(rq->stat, "benefit") == 0) fn = run_benefit;
	else if (strcmp(rq->stat, "netbenefit") == 0) fn = run_netbenefit;
	else if (strcmp(rq->stat, "cforbenefit") == 0) fn = run_cforbenefit;
	else return FP_FAIL(FP_ERR_INVALID_ARG, "unknown statistic '%s' (auc, cindex, calibration, km, meta, roc_test, logrank, multiclass, horizon, benefit, netbenefit, cforbenefit)", rq->stat);
	if (!rq->csv) return FP_FAIL(FP_ERR_INVALID_ARG, "%s needs --csv FILE", rq->stat);
	FP_CHECK(st, fp_table_load(rq->csv, &t));
	o = json_object();
	if (!o) {
		st = FP_FAIL(FP_ERR_NOMEM, "JSON result");
		goto fail;
	}
	json_object_set_new(o, "statistic", json_string(rq->stat));
	FP_CHECK(st, fn(rq, t, o));
	*out = o;
	o = NULL;
fail:
	json_decref(o);
	fp_table_destroy(t);
	return st;
}
