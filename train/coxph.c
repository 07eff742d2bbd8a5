/*
 * coxph.c: Cox proportional hazards by Newton-Raphson (fp_coxph.h).
 *
 * The likelihood pass walks each stratum from the longest time to the
 * shortest, growing the risk-set sums (denominator, first and second moments),
 * and at each event time applies Breslow's or Efron's approximation exactly as
 * R's coxfit6 does, with the mean weight of the tied events. The small dense
 * Cholesky is our own because it must flag singularity the way R's cholesky2
 * does (a pivot below toler * the largest diagonal), which LAPACK's dpotrf does
 * not; p is the number of clinical covariates, so its cost is nothing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "fp_coxph.h"

void fp_coxph_options_default(struct fp_coxph_options *opt)
{
	opt->ties = FP_COXPH_EFRON;
	opt->eps = 1e-9;
	opt->max_iter = 20;
	opt->toler_chol = 1.8189894035458565e-12; /* DBL_EPSILON^0.75, R's default */
}

void fp_coxph_result_close(struct fp_coxph_result *r)
{
	if (!r) return;
	free(r->coef);
	free(r->var);
	free(r->se);
	free(r->robust_var);
	free(r->robust_se);
	memset(r, 0, sizeof *r);
}

/* Order: stratum ascending, then time descending, then row (deterministic). */
static const struct fp_coxph_data *sort_data;
static int cmp_rows(const void *pa, const void *pb)
{
	int a = *(const int *)pa, b = *(const int *)pb;
	const struct fp_coxph_data *d = sort_data;
	int sa = d->strata ? d->strata[a] : 0, sb = d->strata ? d->strata[b] : 0;
	if (sa != sb) return sa < sb ? -1 : 1;
	if (d->time[a] != d->time[b]) return d->time[a] > d->time[b] ? -1 : 1;
	return a < b ? -1 : (a > b);
}

/* Workspace shared by the passes of one fit. */
struct cox_work {
	const struct fp_coxph_data *d;
	int n, p;
	int *order;       /* (n) sorted row indices */
	double *xc;       /* (n, p) centred covariates, in original row order */
	double *eta;      /* (n) */
	double *a, *a2;   /* (p) */
	double *c, *c2;   /* (p, p) */
	double *xbar;     /* (p) */
};

static double weight_of(const struct fp_coxph_data *d, int i)
{
	return d->weight ? d->weight[i] : 1.0;
}

static int stratum_of(const struct fp_coxph_data *d, int i)
{
	return d->strata ? d->strata[i] : 0;
}

/* loglik, score u (p), information imat (p, p) at the current w->eta. */
static void likelihood_pass(struct cox_work *w, enum fp_coxph_ties ties, double *loglik, double *u, double *imat)
{
	const struct fp_coxph_data *d = w->d;
	int n = w->n, p = w->p;
	double ll = 0;
	if (u) memset(u, 0, (size_t)p * sizeof *u);
	if (imat) memset(imat, 0, (size_t)p * (size_t)p * sizeof *imat);
	int pos = 0;
	while (pos < n) {
		int stratum = stratum_of(d, w->order[pos]);
		double denom = 0;
		memset(w->a, 0, (size_t)p * sizeof(double));
		memset(w->c, 0, (size_t)p * (size_t)p * sizeof(double));
		while (pos < n && stratum_of(d, w->order[pos]) == stratum) {
			double t = d->time[w->order[pos]];
			int ndead = 0;
			double deadwt = 0, denom2 = 0;
			memset(w->a2, 0, (size_t)p * sizeof(double));
			memset(w->c2, 0, (size_t)p * (size_t)p * sizeof(double));
			for (; pos < n && stratum_of(d, w->order[pos]) == stratum && d->time[w->order[pos]] == t; pos++) {
				int i = w->order[pos];
				const double *xi = w->xc + (size_t)i * (size_t)p;
				double wi = weight_of(d, i);
				double risk = exp(w->eta[i]) * wi;
				if (d->event[i]) {
					ndead++;
					deadwt += wi;
					denom2 += risk;
					ll += wi * w->eta[i];
					for (int j = 0; j < p; j++) {
						if (u) u[j] += wi * xi[j];
						w->a2[j] += risk * xi[j];
						for (int k = 0; k <= j; k++) w->c2[j * p + k] += risk * xi[j] * xi[k];
					}
				} else {
					denom += risk;
					for (int j = 0; j < p; j++) {
						w->a[j] += risk * xi[j];
						for (int k = 0; k <= j; k++) w->c[j * p + k] += risk * xi[j] * xi[k];
					}
				}
			}
			if (ndead == 0) continue;
			denom += denom2;
			for (int j = 0; j < p; j++) {
				w->a[j] += w->a2[j];
				for (int k = 0; k <= j; k++) w->c[j * p + k] += w->c2[j * p + k];
			}
			int terms = (ties == FP_COXPH_BRESLOW || ndead == 1) ? 1 : ndead;
			double wtave = deadwt / terms;
			for (int r = 0; r < terms; r++) {
				double frac = terms == 1 ? 0.0 : (double)r / ndead;
				double d2 = denom - frac * denom2;
				ll -= wtave * log(d2);
				for (int j = 0; j < p; j++) {
					w->xbar[j] = (w->a[j] - frac * w->a2[j]) / d2;
					if (u) u[j] -= wtave * w->xbar[j];
				}
				if (imat) {
					for (int j = 0; j < p; j++)
						for (int k = 0; k <= j; k++)
							imat[j * p + k] += wtave * ((w->c[j * p + k] - frac * w->c2[j * p + k]) / d2 -
							                            w->xbar[j] * w->xbar[k]);
				}
			}
		}
	}
	if (imat)
		for (int j = 0; j < p; j++)
			for (int k = j + 1; k < p; k++) imat[j * p + k] = imat[k * p + j];
	*loglik = ll;
}

/* In-place Cholesky of a symmetric (p, p) matrix (lower triangle used).
 * Returns the first column whose pivot is below toler * max diagonal, or -1. */
static int cholesky(double *m, int p, double toler)
{
	double eps = 0;
	for (int i = 0; i < p; i++)
		if (fabs(m[i * p + i]) > eps) eps = fabs(m[i * p + i]);
	eps = eps > 0 ? eps * toler : toler;
	for (int j = 0; j < p; j++) {
		double s = m[j * p + j];
		for (int k = 0; k < j; k++) s -= m[j * p + k] * m[j * p + k];
		if (s <= eps) return j;
		double l = sqrt(s);
		m[j * p + j] = l;
		for (int i = j + 1; i < p; i++) {
			double t = m[i * p + j];
			for (int k = 0; k < j; k++) t -= m[i * p + k] * m[j * p + k];
			m[i * p + j] = t / l;
		}
	}
	return -1;
}

/* Solves L L^T x = b in place. */
static void chol_solve(const double *l, int p, double *b)
{
	for (int i = 0; i < p; i++) {
		double s = b[i];
		for (int k = 0; k < i; k++) s -= l[i * p + k] * b[k];
		b[i] = s / l[i * p + i];
	}
	for (int i = p - 1; i >= 0; i--) {
		double s = b[i];
		for (int k = i + 1; k < p; k++) s -= l[k * p + i] * b[k];
		b[i] = s / l[i * p + i];
	}
}

/* inv = (L L^T)^-1, column by column. */
static void chol_inverse(const double *l, int p, double *inv, double *col)
{
	for (int j = 0; j < p; j++) {
		for (int i = 0; i < p; i++) col[i] = i == j;
		chol_solve(l, p, col);
		for (int i = 0; i < p; i++) inv[i * p + j] = col[i];
	}
}

static void set_eta(struct cox_work *w, const double *beta)
{
	for (int i = 0; i < w->n; i++) {
		double s = 0;
		const double *xi = w->xc + (size_t)i * (size_t)w->p;
		for (int j = 0; j < w->p; j++) s += xi[j] * beta[j];
		w->eta[i] = s;
	}
}

static enum fp_status check_data(const struct fp_coxph_data *d)
{
	if (!d || d->n <= 0 || d->p <= 0 || !d->x || !d->time || !d->event)
		return FP_FAIL(FP_ERR_INVALID_ARG, "coxph: empty data (n and p must be positive, x/time/event set)");
	int events = 0;
	for (int i = 0; i < d->n; i++) {
		if (!(d->time[i] > 0) || !isfinite(d->time[i]))
			return FP_FAIL(FP_ERR_DATA, "coxph: row %d: time %g is not a positive number", i + 1, d->time[i]);
		if (d->event[i] != 0 && d->event[i] != 1)
			return FP_FAIL(FP_ERR_DATA, "coxph: row %d: event %d is not 0 or 1", i + 1, d->event[i]);
		if (d->weight && (!(d->weight[i] > 0) || !isfinite(d->weight[i])))
			return FP_FAIL(FP_ERR_DATA, "coxph: row %d: weight %g is not a positive number", i + 1, d->weight[i]);
		for (int j = 0; j < d->p; j++)
			if (!isfinite(d->x[(size_t)i * (size_t)d->p + j]))
				return FP_FAIL(FP_ERR_DATA, "coxph: row %d: covariate %s is not finite", i + 1,
				               d->names ? d->names[j] : "(unnamed)");
		events += d->event[i];
	}
	if (events == 0) return FP_FAIL(FP_ERR_DATA, "coxph: no events among %d rows: the model cannot be fitted", d->n);
	return FP_OK;
}

static void work_free(struct cox_work *w)
{
	free(w->order);
	free(w->xc);
	free(w->eta);
	free(w->a);
	free(w->a2);
	free(w->c);
	free(w->c2);
	free(w->xbar);
}

static enum fp_status work_init(struct cox_work *w, const struct fp_coxph_data *d)
{
	enum fp_status st;
	memset(w, 0, sizeof *w);
	w->d = d;
	w->n = d->n;
	w->p = d->p;
	size_t n = (size_t)d->n, p = (size_t)d->p;
	void *v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(int), &v, "coxph order"));
	w->order = v;
	FP_CHECK(st, fp_calloc_array(n * p, sizeof(double), &v, "coxph covariates"));
	w->xc = v;
	FP_CHECK(st, fp_calloc_array(n, sizeof(double), &v, "coxph eta"));
	w->eta = v;
	FP_CHECK(st, fp_calloc_array(p, sizeof(double), &v, "coxph sums"));
	w->a = v;
	FP_CHECK(st, fp_calloc_array(p, sizeof(double), &v, "coxph sums"));
	w->a2 = v;
	FP_CHECK(st, fp_calloc_array(p * p, sizeof(double), &v, "coxph sums"));
	w->c = v;
	FP_CHECK(st, fp_calloc_array(p * p, sizeof(double), &v, "coxph sums"));
	w->c2 = v;
	FP_CHECK(st, fp_calloc_array(p, sizeof(double), &v, "coxph sums"));
	w->xbar = v;
	/* Centre each covariate: exp() stays in range, the fit is unchanged. */
	for (size_t j = 0; j < p; j++) {
		double m = 0;
		for (size_t i = 0; i < n; i++) m += d->x[i * p + j];
		m /= (double)n;
		for (size_t i = 0; i < n; i++) w->xc[i * p + j] = d->x[i * p + j] - m;
	}
	for (int i = 0; i < d->n; i++) w->order[i] = i;
	sort_data = d; /* qsort has no context argument in C11 */
	qsort(w->order, n, sizeof(int), cmp_rows);
	sort_data = NULL;
	return FP_OK;
fail:
	work_free(w);
	return st;
}

enum fp_status fp_coxph_loglik(const struct fp_coxph_data *d, enum fp_coxph_ties ties, const double *beta,
                               double *loglik, double *score, double *info)
{
	struct cox_work w;
	FP_TRY(check_data(d));
	FP_TRY(work_init(&w, d));
	set_eta(&w, beta);
	likelihood_pass(&w, ties, loglik, score, info);
	work_free(&w);
	return FP_OK;
}

/*
 * Score residuals s_i (unweighted, as R's coxph.detail/residuals "score"):
 * an event contributes x_i minus the mean of its tie group's Efron means, and
 * every subject at risk loses r_i (x_i - xbar_k) h_k for each term k of each
 * event time at or before its own, with the factor (1 - k/d) for the events
 * of the tie itself. Computed with running sums in increasing time.
 */
static enum fp_status score_residuals(struct cox_work *w, enum fp_coxph_ties ties, double *resid)
{
	enum fp_status st = FP_OK;
	const struct fp_coxph_data *d = w->d;
	int n = w->n, p = w->p;
	double *H = NULL, *XH = NULL, *Hg = NULL, *XHg = NULL, *Hd = NULL, *XHd = NULL, *xmean = NULL;
	int *group_end = NULL;
	double *gden = NULL, *gden2 = NULL, *ga = NULL, *ga2 = NULL, *gdeadwt = NULL;
	int *gndead = NULL, *gstart = NULL;
	void *v;
	size_t pz = (size_t)p;
	FP_CHECK(st, fp_calloc_array(1, sizeof(double), &v, "residuals"));
	H = v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "residuals"));
	XH = v;
	FP_CHECK(st, fp_calloc_array(1, sizeof(double), &v, "residuals"));
	Hg = v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "residuals"));
	XHg = v;
	FP_CHECK(st, fp_calloc_array(1, sizeof(double), &v, "residuals"));
	Hd = v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "residuals"));
	XHd = v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "residuals"));
	xmean = v;
	FP_CHECK(st, fp_alloc_array((size_t)n, sizeof(int), &v, "residuals"));
	group_end = v;

	/* Risk-set sums per time group need the descending walk; keep, per group,
	 * the sums after the group is added (denominator and first moment). */
	FP_CHECK(st, fp_calloc_array((size_t)n, sizeof(double), &v, "residuals"));
	gden = v;
	FP_CHECK(st, fp_calloc_array((size_t)n, sizeof(double), &v, "residuals"));
	gden2 = v;
	FP_CHECK(st, fp_calloc_array((size_t)n * pz, sizeof(double), &v, "residuals"));
	ga = v;
	FP_CHECK(st, fp_calloc_array((size_t)n * pz, sizeof(double), &v, "residuals"));
	ga2 = v;
	FP_CHECK(st, fp_calloc_array((size_t)n, sizeof(double), &v, "residuals"));
	gdeadwt = v;
	FP_CHECK(st, fp_calloc_array((size_t)n, sizeof(int), &v, "residuals"));
	gndead = v;
	FP_CHECK(st, fp_calloc_array((size_t)n, sizeof(int), &v, "residuals"));
	gstart = v;

	int ng = 0;
	int pos = 0;
	while (pos < n) {
		int stratum = stratum_of(d, w->order[pos]);
		double denom = 0;
		memset(w->a, 0, pz * sizeof(double));
		while (pos < n && stratum_of(d, w->order[pos]) == stratum) {
			double t = d->time[w->order[pos]];
			int g = ng++;
			gstart[g] = pos;
			for (; pos < n && stratum_of(d, w->order[pos]) == stratum && d->time[w->order[pos]] == t; pos++) {
				int i = w->order[pos];
				const double *xi = w->xc + (size_t)i * pz;
				double wi = weight_of(d, i);
				double risk = exp(w->eta[i]) * wi;
				denom += risk;
				for (int j = 0; j < p; j++) w->a[j] += risk * xi[j];
				if (d->event[i]) {
					gndead[g]++;
					gdeadwt[g] += wi;
					gden2[g] += risk;
					for (int j = 0; j < p; j++) ga2[(size_t)g * pz + j] += risk * xi[j];
				}
			}
			group_end[g] = pos;
			gden[g] = denom;
			memcpy(ga + (size_t)g * pz, w->a, pz * sizeof(double));
		}
	}

	/* Groups were made in (stratum asc, time desc) order: walk each stratum's
	 * groups backwards for increasing time. */
	int g_hi = ng - 1;
	while (g_hi >= 0) {
		int stratum = stratum_of(d, w->order[gstart[g_hi]]);
		int g_lo = g_hi;
		while (g_lo > 0 && stratum_of(d, w->order[gstart[g_lo - 1]]) == stratum) g_lo--;
		*H = 0;
		memset(XH, 0, pz * sizeof(double));
		for (int g = g_hi; g >= g_lo; g--) {
			int nd = gndead[g];
			*Hg = *Hd = 0;
			memset(XHg, 0, pz * sizeof(double));
			memset(XHd, 0, pz * sizeof(double));
			memset(xmean, 0, pz * sizeof(double));
			if (nd > 0) {
				int terms = (ties == FP_COXPH_BRESLOW || nd == 1) ? 1 : nd;
				double wtave = gdeadwt[g] / terms;
				for (int r = 0; r < terms; r++) {
					double frac = terms == 1 ? 0.0 : (double)r / nd;
					double d2 = gden[g] - frac * gden2[g];
					double h = wtave / d2;
					*Hg += h;
					*Hd += (1 - frac) * h;
					for (int j = 0; j < p; j++) {
						double xb = (ga[(size_t)g * pz + j] - frac * ga2[(size_t)g * pz + j]) / d2;
						XHg[j] += xb * h;
						XHd[j] += (1 - frac) * xb * h;
						xmean[j] += xb / terms;
					}
				}
			}
			for (int q = gstart[g]; q < group_end[g]; q++) {
				int i = w->order[q];
				const double *xi = w->xc + (size_t)i * pz;
				double r = exp(w->eta[i]);
				double *s = resid + (size_t)i * pz;
				if (d->event[i]) {
					for (int j = 0; j < p; j++) s[j] = xi[j] - xmean[j] - r * (xi[j] * (*H + *Hd) - (XH[j] + XHd[j]));
				} else {
					for (int j = 0; j < p; j++) s[j] = -r * (xi[j] * (*H + *Hg) - (XH[j] + XHg[j]));
				}
			}
			*H += *Hg;
			for (int j = 0; j < p; j++) XH[j] += XHg[j];
		}
		g_hi = g_lo - 1;
	}
fail:
	free(H);
	free(XH);
	free(Hg);
	free(XHg);
	free(Hd);
	free(XHd);
	free(xmean);
	free(group_end);
	free(gden);
	free(gden2);
	free(ga);
	free(ga2);
	free(gdeadwt);
	free(gndead);
	free(gstart);
	return st;
}

enum fp_status fp_coxph_fit(const struct fp_coxph_data *d, const struct fp_coxph_options *opt,
                            struct fp_coxph_result *out)
{
	enum fp_status st;
	struct fp_coxph_options defaults;
	struct cox_work w;
	double *beta = NULL, *newbeta = NULL, *u = NULL, *imat = NULL, *chol = NULL, *col = NULL, *resid = NULL,
	       *meat = NULL, *tmp = NULL;
	memset(out, 0, sizeof *out);
	if (!opt) {
		fp_coxph_options_default(&defaults);
		opt = &defaults;
	}
	FP_TRY(check_data(d));
	FP_TRY(work_init(&w, d));
	int p = d->p;
	size_t pz = (size_t)p;
	void *v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "coxph")); beta = v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "coxph")); newbeta = v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "coxph")); u = v;
	FP_CHECK(st, fp_calloc_array(pz * pz, sizeof(double), &v, "coxph")); imat = v;
	FP_CHECK(st, fp_calloc_array(pz * pz, sizeof(double), &v, "coxph")); chol = v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "coxph")); col = v;

	double loglik, newlk;
	set_eta(&w, beta);
	likelihood_pass(&w, opt->ties, &loglik, u, imat);
	out->loglik_null = loglik;

	memcpy(chol, imat, pz * pz * sizeof(double));
	int bad = cholesky(chol, p, opt->toler_chol);
	if (bad >= 0) goto singular;
	memcpy(newbeta, u, pz * sizeof(double));
	chol_solve(chol, p, newbeta); /* step */
	for (int j = 0; j < p; j++) newbeta[j] += beta[j];

	int halving = 0, iter;
	out->converged = 0;
	for (iter = 1; iter <= opt->max_iter; iter++) {
		set_eta(&w, newbeta);
		likelihood_pass(&w, opt->ties, &newlk, u, imat);
		if (!isfinite(newlk)) {
			halving++;
		} else if (halving == 0 && fabs(1 - loglik / newlk) <= opt->eps) {
			out->converged = 1;
			break;
		}
		if (!isfinite(newlk) || newlk < loglik) {
			/* Overshot: step halfway back towards the last good beta (R's step halving). */
			halving++;
			for (int j = 0; j < p; j++) newbeta[j] = (newbeta[j] + beta[j]) / 2;
			continue;
		}
		halving = 0;
		loglik = newlk;
		memcpy(chol, imat, pz * pz * sizeof(double));
		bad = cholesky(chol, p, opt->toler_chol);
		if (bad >= 0) goto singular;
		memcpy(beta, newbeta, pz * sizeof(double));
		memcpy(newbeta, u, pz * sizeof(double));
		chol_solve(chol, p, newbeta);
		for (int j = 0; j < p; j++) newbeta[j] += beta[j];
	}
	out->iterations = iter > opt->max_iter ? opt->max_iter : iter;
	if (!out->converged) {
		/* Report the last accepted point, with its own likelihood and information. */
		memcpy(newbeta, beta, pz * sizeof(double));
		set_eta(&w, newbeta);
		likelihood_pass(&w, opt->ties, &newlk, u, imat);
	}

	/* Variance at the final point. */
	memcpy(chol, imat, pz * pz * sizeof(double));
	bad = cholesky(chol, p, opt->toler_chol);
	if (bad >= 0) goto singular;
	out->p = p;
	out->n = d->n;
	for (int i = 0; i < d->n; i++) out->nevent += d->event[i];
	out->loglik = newlk;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "coxph result")); out->coef = v;
	FP_CHECK(st, fp_calloc_array(pz * pz, sizeof(double), &v, "coxph result")); out->var = v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "coxph result")); out->se = v;
	FP_CHECK(st, fp_calloc_array(pz * pz, sizeof(double), &v, "coxph result")); out->robust_var = v;
	FP_CHECK(st, fp_calloc_array(pz, sizeof(double), &v, "coxph result")); out->robust_se = v;
	memcpy(out->coef, newbeta, pz * sizeof(double));
	chol_inverse(chol, p, out->var, col);
	for (int j = 0; j < p; j++) out->se[j] = sqrt(out->var[j * p + j]);

	/* Sandwich: V (sum_i w_i^2 s_i s_i^T) V. */
	FP_CHECK(st, fp_calloc_array((size_t)d->n * pz, sizeof(double), &v, "coxph residuals")); resid = v;
	FP_CHECK(st, fp_calloc_array(pz * pz, sizeof(double), &v, "coxph")); meat = v;
	FP_CHECK(st, fp_calloc_array(pz * pz, sizeof(double), &v, "coxph")); tmp = v;
	FP_CHECK(st, score_residuals(&w, opt->ties, resid));
	for (int i = 0; i < d->n; i++) {
		double wi = weight_of(d, i);
		const double *s = resid + (size_t)i * pz;
		for (int j = 0; j < p; j++)
			for (int k = 0; k < p; k++) meat[j * p + k] += wi * wi * s[j] * s[k];
	}
	for (int j = 0; j < p; j++)
		for (int k = 0; k < p; k++) {
			double t = 0;
			for (int m = 0; m < p; m++) t += out->var[j * p + m] * meat[m * p + k];
			tmp[j * p + k] = t;
		}
	for (int j = 0; j < p; j++)
		for (int k = 0; k < p; k++) {
			double t = 0;
			for (int m = 0; m < p; m++) t += tmp[j * p + m] * out->var[m * p + k];
			out->robust_var[j * p + k] = t;
		}
	for (int j = 0; j < p; j++) out->robust_se[j] = sqrt(out->robust_var[j * p + j]);
	st = FP_OK;
	goto done;

singular:
	st = FP_FAIL(FP_ERR_DATA,
	             "coxph: the information matrix is singular at covariate %d (%s): it is constant or collinear with earlier ones",
	             bad + 1, d->names ? d->names[bad] : "unnamed");
fail:
	fp_coxph_result_close(out);
done:
	free(beta);
	free(newbeta);
	free(u);
	free(imat);
	free(chol);
	free(col);
	free(resid);
	free(meat);
	free(tmp);
	work_free(&w);
	return st;
}
