/*
 * report_site.c: fp_report_site_summary, what one centre computes for the
 * report from its own rows (fp_report.h). Takes borrowed rows; returns a
 * JSON object of counts, sums and the centre's own metrics, owned by the
 * caller. No patient row, identifier or single patient's value is released
 * except event/censoring times in KM tables (KM's usual disclosure, limited
 * by min_cell) and the median follow-up.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_pool.h"
#include "fp_report.h"
#include "fp_validate.h"
#include "validate_internal.h"

static json_t *jnum(double v, int ok) { return ok && isfinite(v) ? json_real(v) : json_null(); }

static json_t *jarr(const double *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
	return a;
}

/* KM table of the rows with mask set, weights w (NULL: 1), as
 * fp_pool_km_site: rows of fewer than min_cell patients (unweighted) carry
 * into the next time, the last few into the previous row. Adds to g either
 * the table or "withheld". */
static enum fp_status km_group(const double *time, const unsigned char *event, const double *w, const unsigned char *mask,
                               size_t n, double min_cell, json_t *g)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	double *t = NULL, *ev = NULL, *ce = NULL;
	size_t m = 0, rows = 0;
	double wsum = 0;
	FP_CHECK(st, fp_alloc_array(n + 1, sizeof *k, (void **)&k, "KM group"));
	for (size_t i = 0; i < n; i++)
		if (!mask || mask[i]) {
			k[m].key = time[i];
			k[m++].idx = i;
			wsum += w ? w[i] : 1;
		}
	if (m == 0 || (double)m < min_cell) {
		json_object_set_new(g, "withheld", json_true());
		goto fail; /* st is FP_OK: a small group is reported as withheld */
	}
	FP_CHECK(st, fp_vi_sort_keyed(k, m));
	FP_CHECK(st, fp_alloc_array(m, sizeof *t, (void **)&t, "KM group"));
	FP_CHECK(st, fp_calloc_array(m, sizeof *ev, (void **)&ev, "KM group"));
	FP_CHECK(st, fp_calloc_array(m, sizeof *ce, (void **)&ce, "KM group"));
	double cnt = 0, ae = 0, ac = 0;
	for (size_t i = 0; i < m; i++) {
		size_t r = k[i].idx;
		double wi = w ? w[r] : 1;
		if (event[r]) ae += wi; else ac += wi;
		cnt += 1;
		int last_of_time = i + 1 == m || k[i + 1].key != k[i].key;
		if (last_of_time && cnt >= (min_cell > 1 ? min_cell : 1)) {
			t[rows] = k[i].key;
			ev[rows] = ae;
			ce[rows++] = ac;
			cnt = ae = ac = 0;
		}
	}
	if (cnt > 0) { /* rows > 0 here since m >= min_cell */
		ev[rows - 1] += ae;
		ce[rows - 1] += ac;
	}
	json_object_set_new(g, "n", json_integer((json_int_t)m));
	json_object_set_new(g, "weight", json_real(wsum));
	json_object_set_new(g, "time", jarr(t, rows));
	json_object_set_new(g, "events", jarr(ev, rows));
	json_object_set_new(g, "censored", jarr(ce, rows));
fail:
	free(k);
	free(t);
	free(ev);
	free(ce);
	return st;
}

static enum fp_status check_options(const struct fp_report_rows *r, const struct fp_report_site_options *o)
{
	if (!(o->horizon > 0)) return FP_FAIL(FP_ERR_INVALID_ARG, "site summary: horizon %g must be > 0", o->horizon);
	if (!(o->risk_cuts[0] <= o->risk_cuts[1]))
		return FP_FAIL(FP_ERR_INVALID_ARG, "site summary: risk cuts %g, %g must be ordered", o->risk_cuts[0], o->risk_cuts[1]);
	if (r->label && !r->prob) return FP_FAIL(FP_ERR_INVALID_ARG, "site summary: a label needs its probability");
	if (r->arms && (!r->arm || !r->recommended))
		return FP_FAIL(FP_ERR_INVALID_ARG, "site summary: %zu arms but no arm or recommendation", r->arms);
	for (size_t i = 0; i < r->n && r->arms; i++)
		if (r->arm[i] < 0 || (size_t)r->arm[i] >= r->arms || r->recommended[i] < 0 ||
		    (size_t)r->recommended[i] >= r->arms)
			return FP_FAIL(FP_ERR_INVALID_ARG, "site summary: row %zu: arm %d / recommendation %d outside 0..%zu", i + 1,
			               r->arm[i], r->recommended[i], r->arms - 1);
	return FP_OK;
}

enum fp_status fp_report_site_summary(const struct fp_report_rows *r, const struct fp_report_site_options *opt,
                                      json_t **out)
{
	enum fp_status st = FP_OK;
	json_t *o = NULL;
	unsigned char *lab = NULL, *mask = NULL;
	double *pr = NULL, *w = NULL, edges_default[FP_REPORT_GRID_CELLS + 1];
	*out = NULL;
	FP_TRY(check_options(r, opt));
	struct fp_pool_site_input pin = {r->centre, r->n, r->time, r->event, r->risk, NULL, NULL, NULL, 0, opt->min_cell};
	FP_TRY(fp_pool_site_summary(&pin, &o));
	double tau = opt->tau > 0 ? opt->tau : opt->horizon;
	json_object_set_new(o, "schema", json_string(FP_REPORT_SCHEMA));
	json_object_set_new(o, "horizon", json_real(opt->horizon));
	json_object_set_new(o, "tau", json_real(tau));
	json_object_set_new(o, "min_cell", json_real(opt->min_cell));
	if (opt->model_hash) json_object_set_new(o, "model_hash", json_string(opt->model_hash));
	if (opt->snapshot_hash) json_object_set_new(o, "snapshot_hash", json_string(opt->snapshot_hash));
	if (opt->snapshot_date) json_object_set_new(o, "snapshot_date", json_string(opt->snapshot_date));

	/* the centre's own metrics, as the row-based report computes them */
	json_t *jm = json_object();
	json_object_set_new(o, "metrics", jm);
	struct fp_cindex_result c;
	int c_ok = fp_validate_cindex(r->time, r->event, r->risk, NULL, r->n, NULL, &c) == FP_OK;
	struct fp_horizon_result h;
	int h_ok = fp_validate_horizon(r->time, r->event, r->risk, r->n, opt->horizon, &h) == FP_OK;
	fp_error_clear();
	json_object_set_new(jm, "c", jnum(c.c, c_ok));
	json_object_set_new(jm, "c_se", jnum(c.se, c_ok));
	json_object_set_new(jm, "auc_t", jnum(h.auc, h_ok));
	json_object_set_new(jm, "brier_t", jnum(h.brier, h_ok));
	json_object_set_new(jm, "ipa_t", jnum(h.ipa, h_ok));
	json_object_set_new(jm, "oe_t", jnum(h.oe, h_ok));
	size_t nb = 0;
	if (r->label) {
		FP_CHECK(st, fp_alloc_array(r->n + 1, 1, (void **)&lab, "site summary"));
		FP_CHECK(st, fp_alloc_array(r->n + 1, sizeof *pr, (void **)&pr, "site summary"));
		for (size_t i = 0; i < r->n; i++)
			if (r->label[i] != FP_REPORT_LABEL_UNKNOWN) {
				lab[nb] = r->label[i];
				pr[nb++] = r->prob[i];
			}
		struct fp_auc_result a;
		struct fp_calibration_result cal;
		int a_ok = fp_validate_auc(lab, pr, nb, &a, NULL, NULL) == FP_OK;
		int cal_ok = fp_validate_calibration(lab, pr, nb, &cal) == FP_OK;
		fp_error_clear();
		json_object_set_new(jm, "auc", jnum(a.auc, a_ok));
		json_object_set_new(jm, "auc_se", jnum(a.se, a_ok));
		json_object_set_new(jm, "auc_low", jnum(a.ci_low, a_ok));
		json_object_set_new(jm, "auc_high", jnum(a.ci_high, a_ok));
		json_object_set_new(jm, "citl", jnum(cal.citl, cal_ok));
		json_object_set_new(jm, "slope", jnum(cal.slope, cal_ok));
		json_object_set_new(jm, "ici", jnum(cal.ici, cal_ok));
		const double *edges = opt->grid_edges;
		size_t cells = opt->grid_cells;
		if (!edges) {
			for (int j = 0; j <= FP_REPORT_GRID_CELLS; j++) edges_default[j] = (double)j / FP_REPORT_GRID_CELLS;
			edges = edges_default;
			cells = FP_REPORT_GRID_CELLS;
		}
		FP_CHECK(st, fp_pool_site_binary(lab, pr, nb, edges, cells, opt->min_cell, o));
	}

	/* table 1 */
	double med = NAN, mr = 0;
	fp_validate_quantile7(r->time, r->n, 0.5, &med);
	fp_error_clear();
	for (size_t i = 0; i < r->n; i++) mr += r->risk[i];
	size_t events = 0;
	for (size_t i = 0; i < r->n; i++) events += r->event[i] == 1;
	json_t *t1 = json_object();
	json_object_set_new(t1, "n", json_integer((json_int_t)r->n));
	json_object_set_new(t1, "events", json_integer((json_int_t)events));
	json_object_set_new(t1, "event_rate", jnum(r->n ? (double)events / (double)r->n : NAN, 1));
	json_object_set_new(t1, "median_time", jnum(med, 1));
	json_object_set_new(t1, "mean_risk", jnum(r->n ? mr / (double)r->n : NAN, 1));
	json_object_set_new(o, "table1", t1);

	/* KM per predicted-risk group, cut-points fixed in advance */
	FP_CHECK(st, fp_alloc_array(r->n + 1, 1, (void **)&mask, "site summary"));
	static const char *const rnames[3] = {"low risk", "middle risk", "high risk"};
	json_t *kr = json_object(), *groups = json_array();
	json_object_set_new(kr, "cuts", jarr(opt->risk_cuts, 2));
	json_object_set_new(kr, "groups", groups);
	json_object_set_new(o, "km_risk_groups", kr);
	for (int g = 0; g < 3; g++) {
		for (size_t i = 0; i < r->n; i++) {
			int gi = r->risk[i] <= opt->risk_cuts[0] ? 0 : r->risk[i] <= opt->risk_cuts[1] ? 1 : 2;
			mask[i] = gi == g;
		}
		json_t *jg = json_object();
		json_object_set_new(jg, "name", json_string(rnames[g]));
		json_array_append_new(groups, jg);
		FP_CHECK(st, km_group(r->time, r->event, NULL, mask, r->n, opt->min_cell, jg));
	}

	/* followed vs not followed the recommendation, IPTW-weighted */
	if (r->arms) {
		FP_CHECK(st, fp_alloc_array(r->n + 1, sizeof *w, (void **)&w, "site summary"));
		for (size_t i = 0; i < r->n; i++) {
			double e = r->propensity ? r->propensity[i * r->arms + (size_t)r->arm[i]] : 1;
			w[i] = e > 0 ? 1 / e : 0;
		}
		static const char *const bnames[2] = {"not followed", "followed"};
		json_t *kb = json_object(), *bg = json_array();
		json_object_set_new(kb, "weighted", json_boolean(r->propensity != NULL));
		json_object_set_new(kb, "groups", bg);
		json_object_set_new(o, "km_benefit", kb);
		for (int g = 0; g < 2; g++) {
			for (size_t i = 0; i < r->n; i++) mask[i] = (r->arm[i] == r->recommended[i]) == g;
			json_t *jg = json_object();
			json_object_set_new(jg, "name", json_string(bnames[g]));
			json_array_append_new(bg, jg);
			FP_CHECK(st, km_group(r->time, r->event, w, mask, r->n, opt->min_cell, jg));
		}
	}
	*out = o;
	o = NULL;
fail:
	json_decref(o);
	free(lab);
	free(pr);
	free(mask);
	free(w);
	return st;
}
