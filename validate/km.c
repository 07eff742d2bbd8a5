/*
 * km.c: the Kaplan-Meier estimate at chosen times with Greenwood's standard
 * error and the number at risk, as summary(survfit(Surv(t, e) ~ 1), times =)
 * reports them (std.err there is the SE of S, i.e. S times the Greenwood SE
 * of log S).
 */
#include <math.h>
#include <stdlib.h>

#include "fp_common.h"
#include "fp_validate.h"
#include "validate_internal.h"

enum fp_status fp_validate_km(const double *time, const unsigned char *event, size_t n,
                              const double *at, size_t n_at, struct fp_km_point *out)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	FP_TRY(fp_vi_check_finite(time, n, "time"));
	FP_TRY(fp_vi_check_binary(event, n, "event"));
	if (n == 0) return FP_FAIL(FP_ERR_DATA, "Kaplan-Meier of no rows");
	double tmax = 0;
	for (size_t i = 0; i < n; i++) {
		if (time[i] < 0) return FP_FAIL(FP_ERR_INVALID_ARG, "time: row %zu is %g (must be >= 0)", i + 1, time[i]);
		if (time[i] > tmax) tmax = time[i];
	}
	for (size_t j = 0; j < n_at; j++)
		if (!(at[j] >= 0 && at[j] <= tmax))
			return FP_FAIL(FP_ERR_INVALID_ARG, "--at: time %g is outside [0, %g], the follow-up", at[j], tmax);
	FP_CHECK(st, fp_alloc_array(n, sizeof *k, (void **)&k, "Kaplan-Meier order"));
	for (size_t i = 0; i < n; i++) {
		k[i].key = time[i];
		k[i].idx = i;
	}
	qsort(k, n, sizeof *k, fp_vi_cmp_keyed);
	for (size_t j = 0; j < n_at; j++) {
		double s = 1, gw = 0;
		size_t risk = n, i = 0;
		/* step through event times <= at[j] */
		while (i < n && k[i].key <= at[j]) {
			size_t e = i, d = 0;
			while (e < n && k[e].key == k[i].key) d += event[k[e++].idx];
			if (d > 0) {
				s *= (double)(risk - d) / (double)risk;
				gw += risk > d ? (double)d / ((double)risk * (double)(risk - d)) : INFINITY;
			}
			risk -= e - i;
			i = e;
		}
		out[j].time = at[j];
		out[j].survival = s;
		out[j].se = s > 0 ? s * sqrt(gw) : NAN;
		/* rows with time >= at[j]: those not yet passed, plus ties at at[j] */
		size_t ge = 0;
		for (size_t q = 0; q < n; q++) ge += k[q].key >= at[j];
		out[j].n_risk = (double)ge;
	}
fail:
	free(k);
	return st;
}
