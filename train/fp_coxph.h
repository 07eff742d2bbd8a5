/*
 * fp_coxph.h: the reference Cox proportional-hazards model, fitted by
 * Newton-Raphson as R's survival::coxph does (coxfit6): Breslow or Efron ties,
 * case weights, strata. Part 2 reports compare the neural regimen model with
 * it, and federated Part 2 uses its stratified likelihood (risk sets never
 * cross strata, and a stratum is a site).
 *
 * Testable statements (tests/unit/test_coxph.c, goldens from
 * scripts/gen_coxph_goldens.R):
 *  - coefficients and model-based standard errors (inverse information) equal
 *    coxph's to 1e-6 relative on lung (Efron, Breslow, weighted) and on
 *    veteran with strata;
 *  - robust (sandwich) standard errors equal coxph(robust = TRUE)'s;
 *  - the log partial likelihood at 0 and at the fit equal coxph's loglik;
 *  - at the fit, the weighted score residuals sum to zero.
 *
 * Numbers are double throughout. Covariates are centred internally (the fit
 * does not depend on it). A singular information matrix (collinear or constant
 * covariates) is FP_ERR_DATA naming the covariate; no events is FP_ERR_DATA.
 */
#ifndef FP_COXPH_H
#define FP_COXPH_H

#include "fp_status.h"

enum fp_coxph_ties { FP_COXPH_BRESLOW = 0, FP_COXPH_EFRON = 1 };

struct fp_coxph_data {
	int n;                  /* rows */
	int p;                  /* covariates */
	const double *x;        /* (n, p) row-major */
	const double *time;     /* (n) > 0 */
	const int *event;       /* (n) 0 censored, 1 event */
	const double *weight;   /* (n) > 0 case weights, or NULL for all 1 */
	const int *strata;      /* (n) stratum labels, or NULL for one stratum */
	const char *const *names; /* (p) covariate names for messages, or NULL */
};

struct fp_coxph_options {
	enum fp_coxph_ties ties;
	double eps;        /* convergence: |1 - loglik_old / loglik_new| <= eps (R: 1e-9) */
	int max_iter;      /* R: 20 */
	double toler_chol; /* pivot below this (relative) means singular (R: eps^0.75) */
};
void fp_coxph_options_default(struct fp_coxph_options *opt);

/* The result lives in caller storage: init by fp_coxph_fit, release with
 * fp_coxph_result_close (accepts a zeroed or closed result). */
struct fp_coxph_result {
	int p, n, nevent;
	double *coef;       /* (p) */
	double *var;        /* (p, p) inverse information at coef */
	double *se;         /* (p) sqrt(diag(var)) */
	double *robust_var; /* (p, p) sandwich V (sum_i w_i^2 s_i s_i^T) V */
	double *robust_se;  /* (p) */
	double loglik_null; /* at coef = 0 */
	double loglik;      /* at coef */
	int iterations;
	int converged;      /* 0 when max_iter was reached (result still usable, flagged) */
};

enum fp_status fp_coxph_fit(const struct fp_coxph_data *d, const struct fp_coxph_options *opt,
                            struct fp_coxph_result *out);
void fp_coxph_result_close(struct fp_coxph_result *r);

/* Log partial likelihood, score (p) and information (p, p) at beta; score and
 * info may be NULL. Exposed for tests and for federated fitting, where each
 * site contributes its stratum's terms and the coordinator sums them. */
enum fp_status fp_coxph_loglik(const struct fp_coxph_data *d, enum fp_coxph_ties ties, const double *beta,
                               double *loglik, double *score, double *info);

#endif
