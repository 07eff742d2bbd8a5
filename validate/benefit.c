/*
 * benefit.c: does following the model's recommendation go with better
 * outcomes? Retrospective data are confounded by indication, so each patient
 * is weighted by the inverse of the propensity of the arm actually received
 * (IPTW); the results are descriptive, hypothesis-generating (STATISTICS.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_validate.h"
#include "validate_internal.h"

enum fp_status fp_validate_km_weighted(const double *time, const unsigned char *event, const double *w, size_t n,
                                       double t, double tau, double *surv, double *rmst)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *k, (void **)&k, "weighted KM"));
	double total = 0;
	for (size_t i = 0; i < n; i++) {
		k[i].key = time[i];
		k[i].idx = i;
		total += w ? w[i] : 1;
	}
	FP_CHECK(st, fp_vi_sort_keyed(k, n));
	double s = 1, area = 0, last = 0, s_t = 1, risk = total;
	int t_done = 0, area_done = 0;
	for (size_t i = 0; i < n;) {
		size_t e = i;
		double d = 0, m = 0, u = k[i].key;
		while (e < n && k[e].key == u) {
			double wi = w ? w[k[e].idx] : 1;
			m += wi;
			if (event[k[e].idx]) d += wi;
			e++;
		}
		if (!t_done && u > t) {
			s_t = s;
			t_done = 1;
		}
		if (!area_done && u > tau) {
			area += s * (tau - last);
			area_done = 1;
		}
		if (!area_done) {
			area += s * (u - last);
			last = u;
		}
		if (d > 0 && risk > 0) s *= (risk - d) / risk;
		risk -= m;
		i = e;
	}
	if (!t_done) s_t = s;
	if (!area_done) area += s * (tau - last);
	*surv = s_t;
	*rmst = area;
fail:
	free(k);
	return st;
}

/* G(u-) at each row's min(T, tau), censoring KM with deaths leaving first. */
static enum fp_status censoring_left(const double *time, const unsigned char *event, size_t n, const double *at,
                                     double *g)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL, *q = NULL;
	FP_CHECK(st, fp_alloc_array(n, sizeof *k, (void **)&k, "censoring KM"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *q, (void **)&q, "censoring KM"));
	for (size_t i = 0; i < n; i++) {
		k[i].key = time[i];
		k[i].idx = i;
		q[i].key = at[i];
		q[i].idx = i;
	}
	FP_CHECK(st, fp_vi_sort_keyed(k, n));
	FP_CHECK(st, fp_vi_sort_keyed(q, n));
	double s = 1;
	size_t risk = n, j = 0;
	for (size_t i = 0; i < n;) {
		size_t e = i, c = 0, deaths = 0;
		while (e < n && k[e].key == k[i].key) {
			if (event[k[e].idx]) deaths++; else c++;
			e++;
		}
		while (j < n && q[j].key <= k[i].key) g[q[j++].idx] = s; /* left limit: before this time's censorings */
		size_t at_risk = risk - deaths;
		if (c > 0) s *= (double)(at_risk - c) / (double)at_risk;
		risk -= e - i;
		i = e;
	}
	while (j < n) g[q[j++].idx] = s;
fail:
	free(k);
	free(q);
	return st;
}

enum fp_status fp_validate_benefit(const double *time, const unsigned char *event, const int *arm,
                                   const int *recommended, const double *propensity, size_t n, size_t arms,
                                   double tau, struct fp_benefit_result *out)
{
	enum fp_status st = FP_OK;
	double *w = NULL, *tf = NULL, *tn = NULL, *wf = NULL, *wn = NULL, *y = NULL, *g = NULL;
	unsigned char *ef = NULL, *en = NULL;
	FP_TRY(fp_vi_check_finite(time, n, "time"));
	FP_TRY(fp_vi_check_binary(event, n, "event"));
	if (!(tau > 0)) return FP_FAIL(FP_ERR_INVALID_ARG, "tau %g must be > 0", tau);
	if (arms < 2) return FP_FAIL(FP_ERR_INVALID_ARG, "benefit needs at least 2 arms, got %zu", arms);
	memset(out, 0, sizeof *out);
	out->n = n;
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *w, (void **)&w, "IPTW weights"));
	for (size_t i = 0; i < n; i++) {
		if (arm[i] < 0 || (size_t)arm[i] >= arms || recommended[i] < 0 || (size_t)recommended[i] >= arms) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "row %zu: arm %d / recommended %d outside 0..%zu", i + 1, arm[i],
			             recommended[i], arms - 1);
			goto fail;
		}
		if (time[i] < 0) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "time: row %zu is %g (must be >= 0)", i + 1, time[i]);
			goto fail;
		}
		double e = propensity ? propensity[i * arms + (size_t)arm[i]] : 1;
		if (!(e > 0 && e <= 1)) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "propensity: row %zu, arm %d is %g (must be in (0, 1])", i + 1, arm[i], e);
			goto fail;
		}
		w[i] = 1 / e;
		if (arm[i] == recommended[i]) out->followed++; else out->not_followed++;
	}
	if (out->followed == 0 || out->not_followed == 0) {
		st = FP_FAIL(FP_ERR_DATA, "benefit needs patients who followed and who did not follow the recommendation: %zu and %zu",
		             out->followed, out->not_followed);
		goto fail;
	}
	FP_CHECK(st, fp_alloc_array(n, sizeof *tf, (void **)&tf, "benefit groups"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *tn, (void **)&tn, "benefit groups"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *wf, (void **)&wf, "benefit groups"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *wn, (void **)&wn, "benefit groups"));
	FP_CHECK(st, fp_alloc_array(n, 1, (void **)&ef, "benefit groups"));
	FP_CHECK(st, fp_alloc_array(n, 1, (void **)&en, "benefit groups"));
	size_t a = 0, b = 0;
	for (size_t i = 0; i < n; i++) {
		if (arm[i] == recommended[i]) {
			tf[a] = time[i], ef[a] = event[i], wf[a] = w[i], a++;
			out->w_followed += w[i];
		} else {
			tn[b] = time[i], en[b] = event[i], wn[b] = w[i], b++;
			out->w_not += w[i];
		}
	}
	FP_CHECK(st, fp_validate_km_weighted(tf, ef, wf, a, tau, tau, &out->surv_followed, &out->rmst_followed));
	FP_CHECK(st, fp_validate_km_weighted(tn, en, wn, b, tau, tau, &out->surv_not, &out->rmst_not));
	out->rmst_diff = out->rmst_followed - out->rmst_not;
	/* policy value: followed patients, IPTW x IPCW on min(T, tau) */
	FP_CHECK(st, fp_alloc_array(n, sizeof *y, (void **)&y, "policy value"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *g, (void **)&g, "policy value"));
	for (size_t i = 0; i < n; i++) y[i] = fmin(time[i], tau);
	FP_CHECK(st, censoring_left(time, event, n, y, g));
	double v = 0;
	for (size_t i = 0; i < n; i++) {
		int complete = event[i] || time[i] >= tau;
		if (arm[i] != recommended[i] || !complete) continue;
		if (!(g[i] > 0)) {
			st = FP_FAIL(FP_ERR_DATA, "policy value: censoring KM reaches 0 before row %zu", i + 1);
			goto fail;
		}
		v += y[i] * w[i] / g[i];
	}
	out->policy_value = v / (double)n;
	{
		unsigned char *fol = ef; /* reuse: followed indicator per row */
		for (size_t i = 0; i < n; i++) fol[i] = arm[i] == recommended[i];
		FP_CHECK(st, fp_validate_cox_binary(time, event, fol, w, n, &out->log_hr, &out->log_hr_se));
		out->hr = exp(out->log_hr);
	}
fail:
	free(w);
	free(tf);
	free(tn);
	free(wf);
	free(wn);
	free(ef);
	free(en);
	free(y);
	free(g);
	return st;
}

enum fp_status fp_validate_c_for_benefit(const unsigned char *treated, const double *benefit,
                                         const unsigned char *y, size_t n, double *c, size_t *pairs)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *t1 = NULL, *t0 = NULL;
	double *pb = NULL, *ob = NULL;
	size_t n1 = 0, n0 = 0;
	FP_TRY(fp_vi_check_binary(treated, n, "treated"));
	FP_TRY(fp_vi_check_binary(y, n, "outcome"));
	FP_TRY(fp_vi_check_finite(benefit, n, "benefit"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *t1, (void **)&t1, "C-for-benefit"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *t0, (void **)&t0, "C-for-benefit"));
	for (size_t i = 0; i < n; i++) {
		struct fp_vi_keyed kv = {benefit[i], i};
		if (treated[i]) t1[n1++] = kv; else t0[n0++] = kv;
	}
	size_t p = n1 < n0 ? n1 : n0;
	if (p < 2) {
		st = FP_FAIL(FP_ERR_DATA, "C-for-benefit needs at least 2 treated and 2 control patients: %zu and %zu", n1, n0);
		goto fail;
	}
	FP_CHECK(st, fp_vi_sort_keyed(t1, n1));
	FP_CHECK(st, fp_vi_sort_keyed(t0, n0));
	FP_CHECK(st, fp_alloc_array(p, sizeof *pb, (void **)&pb, "C-for-benefit pairs"));
	FP_CHECK(st, fp_alloc_array(p, sizeof *ob, (void **)&ob, "C-for-benefit pairs"));
	for (size_t j = 0; j < p; j++) {
		/* the smaller arm in full, the larger at evenly spaced ranks */
		size_t i1 = n1 == p ? j : (size_t)(((double)j + 0.5) * (double)n1 / (double)p);
		size_t i0 = n0 == p ? j : (size_t)(((double)j + 0.5) * (double)n0 / (double)p);
		pb[j] = (t1[i1].key + t0[i0].key) / 2;
		ob[j] = (double)y[t0[i0].idx] - (double)y[t1[i1].idx];
	}
	double num = 0, den = 0;
	for (size_t a = 0; a < p; a++)
		for (size_t b = a + 1; b < p; b++) {
			if (ob[a] == ob[b]) continue;
			den += 1;
			double s = (pb[a] - pb[b]) * (ob[a] - ob[b]);
			num += s > 0 ? 1 : s == 0 ? 0.5 : 0;
		}
	if (den == 0) {
		st = FP_FAIL(FP_ERR_DATA, "C-for-benefit: every matched pair has the same observed benefit");
		goto fail;
	}
	*c = num / den;
	*pairs = p;
fail:
	free(t1);
	free(t0);
	free(pb);
	free(ob);
	return st;
}

/* Log partial likelihood score and information at beta (Efron ties, case
 * weights), walking times from the latest so risk sets grow. k: rows by time. */
static void cox_score(const struct fp_vi_keyed *k, const unsigned char *event, const double *x, const double *w,
                      size_t n, double beta, double *u, double *imat)
{
	double s0 = 0, s1 = 0, s2 = 0;
	*u = 0;
	*imat = 0;
	for (size_t i = n; i > 0;) {
		size_t e = i;
		double key = k[i - 1].key;
		double dw = 0, e0 = 0, e1 = 0, e2 = 0, dx = 0;
		size_t nd = 0;
		while (e > 0 && k[e - 1].key == key) {
			size_t r = k[e - 1].idx;
			double wr = w ? w[r] : 1, risk = wr * exp(beta * x[r]);
			s0 += risk;
			s1 += risk * x[r];
			s2 += risk * x[r] * x[r];
			if (event[r]) {
				nd++;
				dw += wr;
				e0 += risk;
				e1 += risk * x[r];
				e2 += risk * x[r] * x[r];
				dx += wr * x[r];
			}
			e--;
		}
		if (nd > 0) {
			double meanwt = dw / (double)nd;
			*u += dx;
			for (size_t q = 0; q < nd; q++) {
				double f = (double)q / (double)nd;
				double d2 = s0 - f * e0, a = (s1 - f * e1) / d2;
				*u -= meanwt * a;
				*imat += meanwt * ((s2 - f * e2) / d2 - a * a);
			}
		}
		i = e;
	}
}

enum fp_status fp_validate_cox(const double *time, const unsigned char *event, const double *x, const double *w,
                               size_t n, double *beta, double *se)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	double *xc = NULL;
	FP_TRY(fp_vi_check_finite(time, n, "time"));
	FP_TRY(fp_vi_check_binary(event, n, "event"));
	FP_TRY(fp_vi_check_finite(x, n, "covariate"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *k, (void **)&k, "Cox order"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *xc, (void **)&xc, "Cox covariate"));
	/* centre the covariate, as coxph does, so exp() stays in range */
	double mean = 0, sw = 0;
	for (size_t i = 0; i < n; i++) {
		mean += (w ? w[i] : 1) * x[i];
		sw += w ? w[i] : 1;
	}
	mean = sw > 0 ? mean / sw : 0;
	for (size_t i = 0; i < n; i++) {
		k[i].key = time[i];
		k[i].idx = i;
		xc[i] = x[i] - mean;
	}
	FP_CHECK(st, fp_vi_sort_keyed(k, n));
	double b = 0, u = 0, im = 0;
	int ok = 0;
	for (int it = 0; it < 100; it++) {
		cox_score(k, event, xc, w, n, b, &u, &im);
		if (!(im > 0)) {
			st = FP_FAIL(FP_ERR_DATA, "Cox model: no information (no events, or a constant covariate)");
			goto fail;
		}
		double step = u / im;
		if (fabs(step) > 10) step = step > 0 ? 10 : -10; /* guard against wild first steps */
		b += step;
		if (!isfinite(b)) break;
		if (fabs(step) < 1e-12 * (1 + fabs(b))) {
			ok = 1;
			break;
		}
	}
	if (!ok) {
		st = FP_FAIL(FP_ERR_NUMERIC, "Cox model did not converge (monotone likelihood?)");
		goto fail;
	}
	cox_score(k, event, xc, w, n, b, &u, &im);
	*beta = b;
	*se = 1 / sqrt(im);
fail:
	free(k);
	free(xc);
	return st;
}

enum fp_status fp_validate_cox_binary(const double *time, const unsigned char *event, const unsigned char *x,
                                      const double *w, size_t n, double *beta, double *se)
{
	enum fp_status st = FP_OK;
	double *xd = NULL;
	FP_TRY(fp_vi_check_binary(x, n, "group"));
	FP_TRY(fp_alloc_array(n ? n : 1, sizeof *xd, (void **)&xd, "Cox covariate"));
	for (size_t i = 0; i < n; i++) xd[i] = x[i];
	st = fp_validate_cox(time, event, xd, w, n, beta, se);
	free(xd);
	return st;
}

enum fp_status fp_validate_recalibrate_surv_slope(const double *time, const unsigned char *event, const double *risk,
                                                  size_t n, double t, double *slope, double *slope_se, double *a,
                                                  double *risk_out)
{
	enum fp_status st = FP_OK;
	double *lp = NULL;
	struct fp_horizon_result h;
	FP_TRY(fp_validate_horizon(time, event, risk, n, t, &h));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *lp, (void **)&lp, "recalibration"));
	for (size_t i = 0; i < n; i++) {
		if (!(risk[i] > 0 && risk[i] < 1)) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "risk: row %zu is %g (slope recalibration needs 0 < risk < 1)", i + 1, risk[i]);
			goto fail;
		}
		lp[i] = log(-log1p(-risk[i])); /* cloglog: log cumulative hazard at t */
	}
	FP_CHECK(st, fp_validate_cox(time, event, lp, NULL, n, slope, slope_se));
	/* F' = 1 - exp(-exp(lp')) with lp' = b lp, then shifted in the large */
	for (size_t i = 0; i < n; i++) risk_out[i] = -expm1(-exp(*slope * lp[i]));
	FP_CHECK(st, fp_validate_recalibrate_surv(risk_out, n, h.km_risk, a, risk_out));
fail:
	free(lp);
	return st;
}
