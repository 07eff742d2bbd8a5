/*
 * horizon.c: performance at a survival horizon t with inverse probability of
 * censoring weights (IPCW). G is the Kaplan-Meier estimate of the censoring
 * distribution: censorings as events, with deaths at a tied time leaving the
 * risk set first (riskRegression's and survival's fastkm convention).
 * A patient with an event by t is a case, weighted 1/G(T-); one still free
 * of events after t is a control, weighted 1/G(t); one censored by t has
 * weight 0. The weights sum to n in expectation and the weighted ECDF of
 * cases is the KM risk (survival's "rttright" check).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_validate.h"
#include "validate_internal.h"

static enum fp_status check(const double *time, const unsigned char *event, const double *risk, size_t n, double t)
{
	FP_TRY(fp_vi_check_finite(time, n, "time"));
	FP_TRY(fp_vi_check_binary(event, n, "event"));
	FP_TRY(fp_vi_check_finite(risk, n, "risk"));
	if (!(t > 0) || !isfinite(t)) return FP_FAIL(FP_ERR_INVALID_ARG, "horizon %g must be > 0", t);
	for (size_t i = 0; i < n; i++) {
		if (time[i] < 0) return FP_FAIL(FP_ERR_INVALID_ARG, "time: row %zu is %g (must be >= 0)", i + 1, time[i]);
		if (risk[i] < 0 || risk[i] > 1)
			return FP_FAIL(FP_ERR_INVALID_ARG, "risk: row %zu is %g (must be a probability in [0, 1])", i + 1, risk[i]);
	}
	return FP_OK;
}

/* KM of the events (surv) or of the censorings (cens), at t, and for cens
 * optionally the left limits G(T_i-) per row. k: rows sorted by time. */
static double km_at(const struct fp_vi_keyed *k, const unsigned char *event, size_t n, double t, int cens,
                    const unsigned char *mask, double *left)
{
	double s = 1;
	size_t risk = 0;
	for (size_t i = 0; i < n; i++) risk += !mask || mask[k[i].idx];
	for (size_t i = 0; i < n;) {
		size_t e = i, d = 0, m = 0, deaths = 0;
		while (e < n && k[e].key == k[i].key) {
			size_t r = k[e].idx;
			if (!mask || mask[r]) {
				m++;
				d += cens ? !event[r] : event[r];
				deaths += event[r];
			}
			e++;
		}
		if (left)
			for (size_t q = i; q < e; q++) left[k[q].idx] = s;
		/* for G, deaths at a tied time leave the risk set before the censorings */
		size_t at_risk = cens ? risk - deaths : risk;
		if (k[i].key <= t && d > 0) s *= (double)(at_risk - d) / (double)at_risk;
		else if (k[i].key > t && !left) break;
		risk -= m;
		i = e;
	}
	return s;
}

enum fp_status fp_validate_horizon(const double *time, const unsigned char *event, const double *risk, size_t n,
                                   double t, struct fp_horizon_result *out)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL, *ctl = NULL;
	double *gleft = NULL;
	FP_TRY(check(time, event, risk, n, t));
	if (n < 2) return FP_FAIL(FP_ERR_DATA, "horizon statistics need at least 2 rows, got %zu", n);
	FP_CHECK(st, fp_alloc_array(n, sizeof *k, (void **)&k, "horizon order"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *ctl, (void **)&ctl, "horizon controls"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *gleft, (void **)&gleft, "horizon weights"));
	for (size_t i = 0; i < n; i++) {
		k[i].key = time[i];
		k[i].idx = i;
	}
	FP_CHECK(st, fp_vi_sort_keyed(k, n));
	double s_km = km_at(k, event, n, t, 0, NULL, NULL);
	km_at(k, event, n, INFINITY, 1, NULL, gleft); /* G(T_i-) for every row */
	double g_t = km_at(k, event, n, t, 1, NULL, NULL);
	memset(out, 0, sizeof *out);
	out->n = n;
	out->t = t;
	out->km_risk = 1 - s_km;
	double sum_risk = 0, bs = 0, bn = 0, wcase = 0;
	size_t nctl = 0;
	for (size_t i = 0; i < n; i++) {
		sum_risk += risk[i];
		if (time[i] <= t && event[i]) {
			double w = 1 / gleft[i];
			out->cases++;
			wcase += w;
			bs += w * (1 - risk[i]) * (1 - risk[i]);
			bn += w * s_km * s_km;
		} else if (time[i] > t) {
			double w = 1 / g_t;
			out->controls++;
			bs += w * risk[i] * risk[i];
			bn += w * out->km_risk * out->km_risk;
			ctl[nctl].key = risk[i];
			ctl[nctl].idx = i;
			nctl++;
		} else {
			out->censored_before++;
		}
	}
	out->mean_risk = sum_risk / (double)n;
	out->oe = out->mean_risk > 0 ? out->km_risk / out->mean_risk : NAN;
	out->brier = bs / (double)n;
	out->brier_null = bn / (double)n;
	out->ipa = out->brier_null > 0 ? 1 - out->brier / out->brier_null : NAN;
	out->auc = NAN;
	if (out->cases > 0 && nctl > 0) {
		/* controls share one weight, so AUC(t) = sum_i w_i P(control below case i) / sum_i w_i */
		FP_CHECK(st, fp_vi_sort_keyed(ctl, nctl));
		double num = 0;
		for (size_t i = 0; i < n; i++) {
			if (!(time[i] <= t && event[i])) continue;
			size_t lo = 0, hi = nctl; /* first control >= risk */
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (ctl[mid].key < risk[i]) lo = mid + 1; else hi = mid;
			}
			size_t eq = lo;
			while (eq < nctl && ctl[eq].key == risk[i]) eq++;
			num += ((double)lo + 0.5 * (double)(eq - lo)) / (double)nctl / gleft[i];
		}
		out->auc = num / wcase;
	}
fail:
	free(k);
	free(ctl);
	free(gleft);
	return st;
}

enum fp_status fp_validate_net_benefit_surv(const double *time, const unsigned char *event, const double *risk,
                                            size_t n, double t, double threshold, double *nb)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	unsigned char *high = NULL;
	FP_TRY(check(time, event, risk, n, t));
	if (!(threshold > 0 && threshold < 1)) return FP_FAIL(FP_ERR_INVALID_ARG, "threshold %g must be in (0, 1)", threshold);
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *k, (void **)&k, "net benefit order"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, 1, (void **)&high, "net benefit groups"));
	size_t nh = 0;
	for (size_t i = 0; i < n; i++) {
		k[i].key = time[i];
		k[i].idx = i;
		high[i] = risk[i] >= threshold;
		nh += high[i];
	}
	FP_CHECK(st, fp_vi_sort_keyed(k, n));
	if (nh == 0) {
		*nb = 0;
		goto fail;
	}
	double s = km_at(k, event, n, t, 0, high, NULL), ph = (double)nh / (double)n;
	*nb = (1 - s) * ph - s * ph * threshold / (1 - threshold);
fail:
	free(k);
	free(high);
	return st;
}
