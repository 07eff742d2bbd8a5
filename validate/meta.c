/*
 * meta.c: random-effects meta-analysis of per-centre estimates (Debray et
 * al., BMJ 2017): tau^2 by REML solved to full convergence (Fisher scoring,
 * as metafor, iterated until the step is below 1e-14), the Hartung-Knapp
 * (-Sidik-Jonkman) SE and t(k-1) CI, the prediction interval
 * mu +/- t(k-2) sqrt(tau^2 + SE^2), I^2 as metafor computes it, all on the
 * logit, log or identity scale and back-transformed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_validate.h"
#include "validate_internal.h"
#include "validate_dist.h"

enum fp_status fp_meta_scale_parse(const char *text, enum fp_meta_scale *out)
{
	if (strcmp(text, "identity") == 0) *out = FP_META_IDENTITY;
	else if (strcmp(text, "log") == 0) *out = FP_META_LOG;
	else if (strcmp(text, "logit") == 0) *out = FP_META_LOGIT;
	else return FP_FAIL(FP_ERR_INVALID_ARG, "scale '%s': expected identity, log or logit", text);
	return FP_OK;
}

static double back(enum fp_meta_scale s, double v)
{
	if (s == FP_META_LOG) return exp(v);
	if (s == FP_META_LOGIT) return 1 / (1 + exp(-v));
	return v;
}

/* mu and sum of weights for a given tau2 */
static void weighted_mean(const double *y, const double *v, size_t k, double tau2, double *mu, double *sw)
{
	double a = 0, b = 0;
	for (size_t i = 0; i < k; i++) {
		double w = 1 / (v[i] + tau2);
		a += w * y[i];
		b += w;
	}
	*mu = a / b;
	*sw = b;
}

enum fp_status fp_validate_meta(const double *est, const double *se, size_t k,
                                enum fp_meta_scale scale, struct fp_meta_result *out)
{
	enum fp_status st = FP_OK;
	double *y = NULL, *v = NULL;
	if (k < 2) return FP_FAIL(FP_ERR_DATA, "meta-analysis needs at least 2 estimates, got %zu", k);
	FP_TRY(fp_vi_check_finite(est, k, "estimate"));
	FP_TRY(fp_vi_check_finite(se, k, "se"));
	FP_CHECK(st, fp_alloc_array(k, sizeof *y, (void **)&y, "meta estimates"));
	FP_CHECK(st, fp_alloc_array(k, sizeof *v, (void **)&v, "meta variances"));
	for (size_t i = 0; i < k; i++) {
		double e = est[i], s = se[i];
		if (!(s > 0)) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "se: row %zu is %g (must be > 0)", i + 1, s);
			goto fail;
		}
		if (scale == FP_META_LOG) {
			if (!(e > 0)) {
				st = FP_FAIL(FP_ERR_INVALID_ARG, "estimate: row %zu is %g (log scale needs > 0)", i + 1, e);
				goto fail;
			}
			y[i] = log(e);
			s = s / e;
		} else if (scale == FP_META_LOGIT) {
			if (!(e > 0 && e < 1)) {
				st = FP_FAIL(FP_ERR_INVALID_ARG, "estimate: row %zu is %g (logit scale needs 0 < x < 1)", i + 1, e);
				goto fail;
			}
			y[i] = log(e / (1 - e));
			s = s / (e * (1 - e));
		} else {
			y[i] = e;
		}
		v[i] = s * s;
	}
	/* REML by Fisher scoring from the Hedges (HE) start, as metafor. */
	double ybar = 0;
	for (size_t i = 0; i < k; i++) ybar += y[i];
	ybar /= (double)k;
	double ss = 0, vbar = 0;
	for (size_t i = 0; i < k; i++) {
		ss += (y[i] - ybar) * (y[i] - ybar);
		vbar += v[i];
	}
	double tau2 = fmax(0, ss / (double)(k - 1) - vbar / (double)k);
	int converged = 0;
	for (int it = 0; it < 10000; it++) {
		double mu, sw;
		weighted_mean(y, v, k, tau2, &mu, &sw);
		/* P = W - w w' / sum w;  score: y'PPy - tr(P);  information: tr(PP) */
		double trp = 0, trpp = 0, pyy = 0, sw2 = 0, sw3 = 0;
		for (size_t i = 0; i < k; i++) {
			double w = 1 / (v[i] + tau2);
			sw2 += w * w;
			sw3 += w * w * w;
			double py = w * (y[i] - mu);
			pyy += py * py;
		}
		trp = sw - sw2 / sw;
		trpp = sw2 - 2 * sw3 / sw + (sw2 / sw) * (sw2 / sw);
		double step = (pyy - trp) / trpp;
		double next = tau2 + step;
		if (next < 0) next = 0;
		double change = fabs(next - tau2);
		tau2 = next;
		if (change < 1e-14 * (1 + tau2)) {
			converged = 1;
			break;
		}
	}
	if (!converged) {
		st = FP_FAIL(FP_ERR_NUMERIC, "REML for tau^2 did not converge in 10000 Fisher-scoring steps");
		goto fail;
	}
	double mu, sw;
	weighted_mean(y, v, k, tau2, &mu, &sw);
	double qhk = 0, q = 0, fw = 0, fw2 = 0, fmu = 0;
	for (size_t i = 0; i < k; i++) {
		double w = 1 / (v[i] + tau2);
		qhk += w * (y[i] - mu) * (y[i] - mu);
		fw += 1 / v[i];
		fw2 += 1 / (v[i] * v[i]);
		fmu += y[i] / v[i];
	}
	fmu /= fw;
	for (size_t i = 0; i < k; i++) q += (y[i] - fmu) * (y[i] - fmu) / v[i];
	double se_hk = sqrt(qhk / (double)(k - 1) / sw);
	double tq = fp_vd_qt(0.975, (double)(k - 1));
	double vt = (double)(k - 1) / (fw - fw2 / fw);
	memset(out, 0, sizeof *out);
	out->k = k;
	out->mu = mu;
	out->se_hk = se_hk;
	out->tau2 = tau2;
	out->q = q;
	out->i2 = 100 * tau2 / (vt + tau2);
	out->estimate = back(scale, mu);
	out->ci_low = back(scale, mu - tq * se_hk);
	out->ci_high = back(scale, mu + tq * se_hk);
	out->pi_low = NAN;
	out->pi_high = NAN;
	if (k >= 3) {
		double tp = fp_vd_qt(0.975, (double)(k - 2));
		double half = tp * sqrt(tau2 + se_hk * se_hk);
		out->pi_low = back(scale, mu - half);
		out->pi_high = back(scale, mu + half);
	}
fail:
	free(y);
	free(v);
	return st;
}
