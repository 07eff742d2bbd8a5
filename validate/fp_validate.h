/*
 * fp_validate.h: validation statistics on arrays, each equal to the R call
 * named beside it (docs/STATISTICS.md gives the formulas).
 *
 * Takes plain arrays of length n (borrowed, never kept) and fills a result
 * struct owned by the caller. No function here keeps state between calls
 * except the opaque plans, which own copies of what they need.
 *
 * Conventions every function shares:
 *  - labels and events are 0/1 bytes; a score is a risk (higher = case, or
 *    earlier event);
 *  - inputs are checked: a non-finite value gives FP_ERR_NUMERIC naming the
 *    row (0-based here; the CSV layer reports file lines), data that cannot
 *    support the statistic (one class, no events, too few rows) give
 *    FP_ERR_DATA with the reason;
 *  - ties are exact floating-point equality (R's survival with timefix=FALSE
 *    compares times the same way once they are clean; see STATISTICS.md).
 */
#ifndef FP_VALIDATE_H
#define FP_VALIDATE_H

#include <stddef.h>

#include "fp_status.h"

/* ---- AUC with DeLong variance (pROC: roc(direction = "<"), var/ci.auc(method = "delong")) */

struct fp_auc_result {
	size_t n, cases, controls;
	double auc;      /* P(score_case > score_control) + P(tie) / 2 */
	double var;      /* DeLong: S10/m + S01/n */
	double se;       /* sqrt(var) */
	double ci_low;   /* auc -/+ 1.959964 se, clipped to [0, 1] (pROC) */
	double ci_high;
};

/* O(n log n). label[i] is 1 for a case, 0 for a control. When v10/v01 are not
 * NULL they receive the placements (cases' then controls' in row order; v10
 * has `cases` entries, v01 `controls`), for paired tests. FP_ERR_DATA when
 * either class is empty; se is NaN when a class has a single member. */
enum fp_status fp_validate_auc(const unsigned char *label, const double *score, size_t n,
                               struct fp_auc_result *out, double *v10, double *v01);

/* ---- Concordance (survival::concordance(Surv(t, e) ~ score, reverse = TRUE, timefix = FALSE)) */

struct fp_cindex_options {
	double tau;       /* ymax: event times above tau get weight 0; <= 0 means none */
	int uno;          /* 1: timewt = "n/G2" (Uno), 0: timewt = "n" (Harrell) */
};

struct fp_cindex_result {
	double c;          /* (concordant + tied_x / 2) / (concordant + discordant + tied_x) */
	double var, se;    /* infinitesimal jackknife, as survival's fit$var */
	double concordant, discordant, tied_x, tied_y, tied_xy; /* weighted when uno */
	size_t n, events;
};

/* Sorts once; replicates (bootstrap multiplicities) reuse the order. The plan
 * owns copies of the arrays. strata may be NULL (one stratum) or hold a
 * stratum id per row: pairs are formed within strata only (strata() in R). */
struct fp_cindex_plan;
enum fp_status fp_cindex_plan_create(const double *time, const unsigned char *event,
                                     const double *score, const int *strata, size_t n,
                                     struct fp_cindex_plan **out);
void fp_cindex_plan_destroy(struct fp_cindex_plan *plan);
/* weight: NULL (all 1) or a non-negative case weight per row (a bootstrap
 * multiplicity); rows of weight 0 are left out as if absent. with_var = 0
 * skips the jackknife (var and se are NaN) for bootstrap replicates. */
enum fp_status fp_cindex_plan_run(struct fp_cindex_plan *plan, const double *weight,
                                  const struct fp_cindex_options *opt, int with_var,
                                  struct fp_cindex_result *out);
/* One call: create, run, destroy. FP_ERR_DATA when there is no comparable pair. */
enum fp_status fp_validate_cindex(const double *time, const unsigned char *event,
                                  const double *score, const int *strata, size_t n,
                                  const struct fp_cindex_options *opt,
                                  struct fp_cindex_result *out);

/* ---- Calibration of probabilities (glm, loess(surface = "direct"), quantile type 7) */

struct fp_calibration_result {
	size_t n;
	double citl;          /* a in logit P(y) = a + offset(logit p) */
	double slope;         /* b in logit P(y) = a + b logit p */
	double oe;            /* expected / observed = sum p / sum y */
	double brier;         /* mean (p - y)^2 */
	double scaled_brier;  /* 1 - brier / (ybar (1 - ybar)) */
	double ici, e50, e90; /* mean, median, 90th percentile of |loess(y ~ p) - p|, surface "direct" */
	double ici_interp, e50_interp, e90_interp; /* the same with R's default surface "interpolate" */
};

/* p strictly inside (0, 1). Needs at least FP_CALIBRATION_MIN_ROWS rows and
 * both outcomes. */
#define FP_CALIBRATION_MIN_ROWS 10
enum fp_status fp_validate_calibration(const unsigned char *y, const double *p, size_t n,
                                       struct fp_calibration_result *out);

/* Local quadratic regression of y on x at each x[i] (R's loess with
 * family = "gaussian", degree = 2, surface = "direct", the given span < 1):
 * tricube weights on the floor(n * span) nearest neighbours. fit: (n). */
enum fp_status fp_validate_loess_direct(const double *x, const double *y, size_t n, double span,
                                        double *fit);

/* The same with R's default surface = "interpolate" (cell = 0.2 in R): vertex
 * fits on a k-d tree, cubic Hermite interpolation between them. fit: (n). */
enum fp_status fp_validate_loess_interpolate(const double *x, const double *y, size_t n, double span, double cell,
                                             double *fit);

/* R's quantile(x, prob, type = 7) of n values (x is not modified). */
enum fp_status fp_validate_quantile7(const double *x, size_t n, double prob, double *out);

/* ---- Kaplan-Meier (summary(survfit(Surv(t, e) ~ 1), times = at)) */

struct fp_km_point {
	double time;
	double survival;  /* S(t) */
	double se;        /* Greenwood: S(t) sqrt(sum d / (n (n - d))) */
	double n_risk;    /* number with time >= t */
};

/* at: the requested times, each in [0, max(time)]; out: (n_at). */
enum fp_status fp_validate_km(const double *time, const unsigned char *event, size_t n,
                              const double *at, size_t n_at, struct fp_km_point *out);

/* ---- Random-effects meta-analysis (metafor::rma(method = "REML", test = "knha")) */

enum fp_meta_scale { FP_META_IDENTITY = 0, FP_META_LOG = 1, FP_META_LOGIT = 2 };

struct fp_meta_result {
	size_t k;
	double estimate, ci_low, ci_high; /* back-transformed to the original scale */
	double pi_low, pi_high;           /* NaN when k < 3 (t with k - 2 df) */
	double tau2;                      /* REML, on the transformed scale */
	double i2;                        /* percent, as metafor */
	double q;                         /* Cochran's Q */
	double mu, se_hk;                 /* on the transformed scale */
};

/* est, se on the original scale (C and its SE for logit; a ratio and its SE
 * for log). Needs k >= 2. */
enum fp_status fp_validate_meta(const double *est, const double *se, size_t k,
                                enum fp_meta_scale scale, struct fp_meta_result *out);

/* Parses "identity", "log", "logit". */
enum fp_status fp_meta_scale_parse(const char *text, enum fp_meta_scale *out);

/* ---- Comparisons */

struct fp_auc_paired_result {
	struct fp_auc_result a, b;  /* each score alone */
	double diff, se_diff, z, p; /* pROC::roc.test(paired, method = "delong") */
};
enum fp_status fp_validate_auc_paired(const unsigned char *label, const double *score1, const double *score2,
                                      size_t n, struct fp_auc_paired_result *out);

#define FP_LOGRANK_MAX_GROUPS 64
struct fp_logrank_result {
	size_t groups;
	double observed[FP_LOGRANK_MAX_GROUPS], expected[FP_LOGRANK_MAX_GROUPS];
	double chisq, df, p; /* survival::survdiff */
};
/* group: ids 0..G-1 per row (2 <= G <= FP_LOGRANK_MAX_GROUPS). */
enum fp_status fp_validate_logrank(const double *time, const unsigned char *event, const int *group, size_t n,
                                   struct fp_logrank_result *out);

/* ---- Agreement between annotators */

/* Cohen's kappa of two raters' categories (ids >= 0) on n items. */
enum fp_status fp_validate_kappa_cohen(const int *r1, const int *r2, size_t n, double *kappa);
/* Fleiss' kappa: counts (n_items, n_cat), row i = raters per category for
 * item i; every item must have the same number of raters (>= 2). */
enum fp_status fp_validate_kappa_fleiss(const double *counts, size_t n_items, size_t n_cat, double *kappa);

/* ---- Clinical utility */

/* Net benefit of treating when p >= threshold (dcurves):
 * TP/n - FP/n * pt / (1 - pt); 0 < threshold < 1. */
enum fp_status fp_validate_net_benefit(const unsigned char *y, const double *p, size_t n, double threshold,
                                       double *nb);

/* ---- Centre-stratified bootstrap (for statistics without an analytic variance) */

struct fp_bootstrap_result {
	size_t replicates;
	double estimate;          /* on the original rows */
	double mean, sd;          /* of the replicates */
	double ci_low, ci_high;   /* percentile 2.5% and 97.5% (quantile type 7) */
};

/* Resamples rows with replacement within each centre (centre may be NULL:
 * one centre), keeping each centre's size; each replicate is the C-index of
 * the resample as multiplicity weights on one sorted plan (no re-sort).
 * replicates: (B) or NULL. Deterministic for a given seed. */
/* The same for the ICI of a calibration curve (loess with R's default surface
 * "interpolate", span 0.75), which has no analytic variance. */
enum fp_status fp_validate_ici_bootstrap(const unsigned char *y, const double *p, const int *centre, size_t n,
                                         size_t B, unsigned long long seed, double *replicates,
                                         struct fp_bootstrap_result *out);

/* Percentile CIs of the horizon statistics (AUC(t), Brier, IPA, O/E) from B
 * centre-stratified resamples; each replicate recomputes the censoring KM. */
struct fp_horizon_bootstrap {
	size_t replicates;
	double auc_low, auc_high, brier_low, brier_high, ipa_low, ipa_high, oe_low, oe_high;
};
enum fp_status fp_validate_horizon_bootstrap(const double *time, const unsigned char *event, const double *risk,
                                             const int *centre, size_t n, double t, size_t B, unsigned long long seed,
                                             struct fp_horizon_bootstrap *out);

enum fp_status fp_validate_cindex_bootstrap(const double *time, const unsigned char *event, const double *score,
                                            const int *centre, size_t n, const struct fp_cindex_options *opt,
                                            size_t B, unsigned long long seed, double *replicates,
                                            struct fp_bootstrap_result *out);

/* ---- Multiclass AUC */

struct fp_multiclass_auc_result {
	size_t n, classes;
	double hand_till;     /* 2/(K(K-1)) sum_{i<j} (A(i|j) + A(j|i))/2 (pROC multiclass.roc, sklearn "ovo") */
	double ovr_macro;     /* mean over classes of AUC(class c vs rest, prob[, c]) (sklearn "ovr", macro) */
	double ovr_weighted;  /* the same weighted by class prevalence (sklearn "ovr", weighted) */
};
/* cls: class ids 0..K-1; prob: (n, K) row-major, column c the score for class c.
 * Every class must be present. */
enum fp_status fp_validate_auc_multiclass(const int *cls, const double *prob, size_t n, size_t K,
                                          struct fp_multiclass_auc_result *out);

/* ---- At a survival horizon t, with inverse-probability-of-censoring weights
 * (riskRegression::Score(cens.model = "km"), times = t)). risk[i] is the
 * predicted probability of an event by t. */

struct fp_horizon_result {
	size_t n, cases, controls, censored_before; /* T<=t with event; T>t; censored at or before t */
	double t;
	double auc;        /* cumulative/dynamic AUC(t): cases weighted 1/G(T-), controls 1/G(t) */
	double brier;      /* (1/n) sum of IPCW-weighted (outcome - risk)^2 */
	double brier_null; /* the same for the marginal KM risk 1 - S_KM(t) given to everyone */
	double ipa;        /* 1 - brier / brier_null */
	double km_risk;    /* 1 - S_KM(t) */
	double mean_risk;  /* mean of risk */
	double oe;         /* observed / expected = km_risk / mean_risk */
};
enum fp_status fp_validate_horizon(const double *time, const unsigned char *event, const double *risk, size_t n,
                                   double t, struct fp_horizon_result *out);

/* Net benefit at horizon t of treating when risk >= threshold (dcurves):
 * [1 - S_KM(t | high)] P(high) - S_KM(t | high) P(high) pt / (1 - pt). */
enum fp_status fp_validate_net_benefit_surv(const double *time, const unsigned char *event, const double *risk,
                                            size_t n, double t, double threshold, double *nb);

/* ---- Treatment benefit: was the recommendation followed? (observational, 2+ arms) */

struct fp_benefit_result {
	size_t n, followed, not_followed;
	double w_followed, w_not;           /* sums of IPTW weights */
	double surv_followed, surv_not;     /* weighted KM at tau */
	double rmst_followed, rmst_not;     /* area under each weighted KM on [0, tau] */
	double rmst_diff;                   /* followed - not followed */
	double policy_value;                /* IPW estimate of E[min(T, tau)] under the recommendation */
	double log_hr, log_hr_se;           /* weighted Cox, followed vs not (Efron ties, model-based SE) */
	double hr;                          /* exp(log_hr): < 1 when following goes with fewer events */
};

/* Cox proportional-hazards fit of one 0/1 covariate with case weights and
 * Efron's tie correction, solved by Newton's method to |step| < 1e-12
 * (coxph(Surv(t, e) ~ x, weights = w, ties = "efron")); se from the
 * inverse information (naive.var when R adds a robust one). */
enum fp_status fp_validate_cox_binary(const double *time, const unsigned char *event, const unsigned char *x,
                                      const double *w, size_t n, double *beta, double *se);
/* The same for a continuous covariate (centred internally, as coxph does). */
enum fp_status fp_validate_cox(const double *time, const unsigned char *event, const double *x, const double *w,
                               size_t n, double *beta, double *se);
/* arm, recommended: ids 0..arms-1; propensity: (n, arms) row-major, the
 * probability of each arm given the patient (NULL: weights 1). IPTW weight
 * 1/propensity[i, arm[i]] (survfit(..., weights = w), summary(rmean = tau)).
 * The policy value weights followed patients by 1/propensity and uncensored
 * min(T, tau) by 1/G(min(T, tau)-), G the censoring KM (deaths first). */
enum fp_status fp_validate_benefit(const double *time, const unsigned char *event, const int *arm,
                                   const int *recommended, const double *propensity, size_t n, size_t arms,
                                   double tau, struct fp_benefit_result *out);

/* Weighted Kaplan-Meier at t and its restricted mean on [0, tau]
 * (survfit(weights = w); rmean as print(fit, rmean = tau)). w NULL: 1. */
enum fp_status fp_validate_km_weighted(const double *time, const unsigned char *event, const double *w, size_t n,
                                       double t, double tau, double *surv, double *rmst);

/* C-for-benefit (van Klaveren et al. 2018): treated and control patients are
 * sorted by predicted benefit and matched 1:1 by rank (the larger arm
 * subsampled at evenly spaced ranks); a pair's observed benefit is
 * y_control - y_treated in {-1, 0, 1} (y = 1 a bad outcome), its predicted
 * benefit the mean of the two; C is Harrell's C of predicted against
 * observed pair benefit over pairs of pairs with different observed benefit. */
enum fp_status fp_validate_c_for_benefit(const unsigned char *treated, const double *benefit,
                                         const unsigned char *y, size_t n, double *c, size_t *pairs);

/* ---- Model updating (recalibration, reported before and after) */

/* Logistic recalibration: (a, b) from the slope fit logit P(y) = a + b logit p,
 * p_out = plogis(a + b logit p). In-sample, the recalibrated CITL is 0 and the
 * slope 1. p_out: (n), may alias p. */
enum fp_status fp_validate_recalibrate_binary(const unsigned char *y, const double *p, size_t n, double *a,
                                              double *b, double *p_out);
/* Recalibration in the large at a horizon: F' = 1 - (1 - F)^exp(a), a chosen
 * so that mean F' equals target (the KM risk), i.e. O/E(t) = 1 afterwards;
 * proportional-hazards shift of every patient's cumulative hazard. */
enum fp_status fp_validate_recalibrate_surv(const double *risk, size_t n, double target, double *a, double *risk_out);
/* Slope recalibration at a horizon t: the slope b is the Cox coefficient of
 * lp = cloglog(risk) (coxph(Surv(time, event) ~ lp), Efron ties); risks are
 * rescaled to 1 - exp(-exp(b lp)) and then recalibrated in the large as
 * above (a). risk_out: (n), may alias risk. */
enum fp_status fp_validate_recalibrate_surv_slope(const double *time, const unsigned char *event, const double *risk,
                                                  size_t n, double t, double *slope, double *slope_se, double *a,
                                                  double *risk_out);

#endif
