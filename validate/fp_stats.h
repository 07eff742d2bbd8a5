/*
 * fp_stats.h: one validation statistic from a CSV file with named columns,
 * as a JSON object: the engine of `fedpath stats` (cli/cmd_stats.c parses
 * the options into a request; tests build requests from the goldens).
 *
 * Output keys per statistic (docs/STATISTICS.md says what each means):
 *   auc:         n, cases, controls, auc, se, ci_low, ci_high, ci_logit_low, ci_logit_high
 *   cindex:      n, events, c, se, concordant, discordant, tied_x, tied_y, tied_xy,
 *                ci_low, ci_high, ci_logit_low, ci_logit_high, and with --bootstrap B
 *                "bootstrap": {replicates, seed, sd, ci_low, ci_high}
 *   calibration: n, citl, slope, oe, brier, scaled_brier, ici, e50, e90 (loess
 *                surface "direct"), ici_interpolate, e50_interpolate,
 *                e90_interpolate (R's default surface); with --bootstrap B
 *                "bootstrap": {statistic: "ici_interpolate", replicates, seed, sd, ci_low, ci_high};
 *                with --recalibrate "recalibrated": {intercept, slope_coef, citl, slope, oe,
 *                brier, scaled_brier, ici, e50, e90} after logistic recalibration
 *   km:          times, survival, se, n_risk (arrays, one entry per --at time)
 *   meta:        k, estimate, ci_low, ci_high, pi_low, pi_high, tau2, i2, q
 *   roc_test:    auc1, auc2, diff, se_diff, z, p (paired DeLong)
 *   logrank:     groups, chisq, df, p
 *   multiclass:  n, classes, hand_till, ovr_macro, ovr_weighted
 *   horizon:     n, t, cases, controls, censored_before, auc, brier, brier_null,
 *                ipa, km_risk, mean_risk, oe; with --recalibrate "recalibrated":
 *                {slope, slope_se, intercept, auc, brier, ipa, oe} after slope and
 *                in-the-large recalibration (before = the top-level values); with
 *                --bootstrap B "bootstrap": percentile CIs {auc,brier,ipa,oe}_{low,high}
 *   benefit:     n, followed, not_followed, surv_followed, surv_not, rmst_followed,
 *                rmst_not, rmst_diff, policy_value (tau = --at), hr, log_hr, log_hr_se
 *   netbenefit:  thresholds, net_benefit, treat_all (binary with label/prob, or at
 *                horizon --at with time/event/risk)
 *   cforbenefit: n, pairs, c_for_benefit
 * A value that is undefined for these data is null, and "notes" (an array of
 * strings) says why; a statistic that cannot be computed at all is an error.
 */
#ifndef FP_STATS_H
#define FP_STATS_H

#include <jansson.h>
#include <stddef.h>

#include "fp_status.h"

struct fp_stats_request {
	const char *stat;     /* one of fp_stats_names */
	const char *csv;      /* path */
	const char *label, *score, *time, *event, *prob, *strata, *estimate, *se; /* column names */
	const char *score2, *group; /* roc_test: second score; logrank: group column */
	const char *cls, *probs;    /* multiclass: class column; comma-separated score columns named as the classes */
	const char *risk;           /* horizon: predicted risk of an event by at[0] */
	const char *arm, *recommended, *propensity; /* benefit: arm ids 0..A-1; propensity columns in arm order */
	const char *scale;    /* meta: "logit", "log", "identity" */
	double tau;           /* cindex: > 0 sets ymax */
	int uno;              /* cindex: timewt n/G2 */
	const double *at;     /* km: times (borrowed) */
	size_t n_at;
	const double *thresholds; /* netbenefit: risk thresholds (borrowed) */
	size_t n_thresholds;
	const char *treated, *benefit, *outcome; /* cforbenefit columns */
	long bootstrap;       /* cindex, calibration, horizon: centre-stratified bootstrap replicates (0: none) */
	unsigned long long seed;
	const char *centre;   /* --bootstrap: resample within this column's groups */
	int recalibrate;      /* calibration, horizon: add the "recalibrated" block (model updating) */
};

/* Names of the statistics, NULL-terminated (for usage text and checks). */
extern const char *const fp_stats_names[];

/* On success *out is a new JSON object (json_decref when done). */
enum fp_status fp_stats_run(const struct fp_stats_request *rq, json_t **out);

#endif
