/*
 * calibration.c: calibration of predicted probabilities against 0/1 outcomes.
 *
 * CITL and slope are maximum-likelihood logistic fits solved by Newton's
 * method to full convergence (R's glm stops at a relative deviance change of
 * 1e-8; the goldens use epsilon = 1e-14 so both sides are converged).
 * ICI/E50/E90 use R's loess "direct" fit: at each point a weighted quadratic
 * least-squares fit with tricube weights on the floor(n * span) nearest
 * neighbours (lowesd/ehg127), solved like R by QR of the column-equilibrated
 * design and a pseudo-inverse that drops singular values below
 * 100 * DBL_EPSILON * the largest.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_validate.h"
#include "validate_internal.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

enum fp_status fp_validate_quantile7(const double *x, size_t n, double prob, double *out)
{
	double *s = NULL;
	if (n == 0) return FP_FAIL(FP_ERR_DATA, "quantile of no values");
	if (!(prob >= 0 && prob <= 1)) return FP_FAIL(FP_ERR_INVALID_ARG, "quantile probability %g outside [0, 1]", prob);
	FP_TRY(fp_alloc_array(n, sizeof *s, (void **)&s, "quantile"));
	memcpy(s, x, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_double);
	double index = (double)(n - 1) * prob;
	size_t lo = (size_t)floor(index), hi = (size_t)ceil(index);
	double h = index - (double)lo;
	*out = (h > 0 && s[hi] != s[lo]) ? (1 - h) * s[lo] + h * s[hi] : s[lo];
	free(s);
	return FP_OK;
}

/* One-sided Jacobi SVD of a 3x3 matrix a (columns), giving a = U S V'. On
 * return a's columns are U S, v holds V, sv the singular values. */
static void jacobi_svd3(double a[3][3], double v[3][3], double sv[3])
{
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) v[i][j] = i == j;
	for (int sweep = 0; sweep < 60; sweep++) {
		double off = 0;
		for (int p = 0; p < 2; p++)
			for (int q = p + 1; q < 3; q++) {
				double alpha = 0, beta = 0, gamma = 0;
				for (int i = 0; i < 3; i++) {
					alpha += a[i][p] * a[i][p];
					beta += a[i][q] * a[i][q];
					gamma += a[i][p] * a[i][q];
				}
				if (gamma == 0) continue;
				off = fmax(off, fabs(gamma) / sqrt(alpha * beta));
				double zeta = (beta - alpha) / (2 * gamma);
				double t = (zeta >= 0 ? 1 : -1) / (fabs(zeta) + sqrt(1 + zeta * zeta));
				double c = 1 / sqrt(1 + t * t), s = c * t;
				for (int i = 0; i < 3; i++) {
					double ap = a[i][p], aq = a[i][q];
					a[i][p] = c * ap - s * aq;
					a[i][q] = s * ap + c * aq;
					double vp = v[i][p], vq = v[i][q];
					v[i][p] = c * vp - s * vq;
					v[i][q] = s * vp + c * vq;
				}
			}
		if (off < 1e-15) break;
	}
	for (int j = 0; j < 3; j++) sv[j] = sqrt(a[0][j] * a[0][j] + a[1][j] * a[1][j] + a[2][j] * a[2][j]);
}

/* Weighted quadratic fit at x0 over rows [lo, hi] of sorted xs/ys with
 * squared-distance radius rho; returns the fitted value at x0. */
static double local_fit(const double *xs, const double *ys, size_t lo, size_t hi, double x0, double rho,
                        double *work, double *slope)
{
	size_t m = 0;
	double *b0 = work, *b1 = work + (hi - lo + 1), *b2 = work + 2 * (hi - lo + 1), *eta = work + 3 * (hi - lo + 1);
	for (size_t i = lo; i <= hi; i++) {
		double dx = xs[i] - x0, d2 = dx * dx;
		if (!(d2 < rho)) continue;
		double r = sqrt(d2 / rho), t = 1 - r * r * r;
		double wt = sqrt(t * t * t);
		b0[m] = wt;
		b1[m] = wt * dx;
		b2[m] = wt * dx * dx;
		eta[m] = wt * ys[i];
		m++;
	}
	double *col[3] = {b0, b1, b2};
	double colnorm[3];
	for (int j = 0; j < 3; j++) {
		double s = 0;
		for (size_t i = 0; i < m; i++) s += col[j][i] * col[j][i];
		s = sqrt(s);
		colnorm[j] = s > 0 ? s : 1;
		if (s > 0)
			for (size_t i = 0; i < m; i++) col[j][i] /= s;
	}
	/* Householder QR, applying the reflections to eta as well. */
	double r[3][3] = {{0}};
	for (int j = 0; j < 3 && (size_t)j < m; j++) {
		double norm = 0;
		for (size_t i = (size_t)j; i < m; i++) norm += col[j][i] * col[j][i];
		norm = sqrt(norm);
		if (norm == 0) continue;
		double alpha = col[j][j] > 0 ? -norm : norm;
		double v0 = col[j][j] - alpha;
		/* v = (v0, col[j][j+1..]); H = I - 2 v v' / v'v */
		double vtv = v0 * v0;
		for (size_t i = (size_t)j + 1; i < m; i++) vtv += col[j][i] * col[j][i];
		if (vtv == 0) continue;
		for (int k = j + 1; k < 4; k++) {
			double *c = k < 3 ? col[k] : eta;
			double dot = v0 * c[j];
			for (size_t i = (size_t)j + 1; i < m; i++) dot += col[j][i] * c[i];
			double f = 2 * dot / vtv;
			c[j] -= f * v0;
			for (size_t i = (size_t)j + 1; i < m; i++) c[i] -= f * col[j][i];
		}
		col[j][j] = alpha;
	}
	for (int i = 0; i < 3; i++)
		for (int j = i; j < 3; j++) r[i][j] = (size_t)i < m ? col[j][i] : 0;
	double qe[3];
	for (int i = 0; i < 3; i++) qe[i] = (size_t)i < m ? eta[i] : 0;
	/* Pseudo-inverse solve of r gamma = qe. */
	double v[3][3], sv[3];
	jacobi_svd3(r, v, sv);
	double smax = fmax(sv[0], fmax(sv[1], sv[2]));
	double tol = smax * 100 * DBL_EPSILON;
	double coef0 = 0, coef1 = 0;
	for (int j = 0; j < 3; j++) {
		if (!(sv[j] > tol)) continue;
		double ut_b = 0; /* u_j = r[:, j] / sv[j] */
		for (int i = 0; i < 3; i++) ut_b += r[i][j] * qe[i];
		ut_b /= sv[j] * sv[j];
		coef0 += v[0][j] * ut_b;
		coef1 += v[1][j] * ut_b;
	}
	if (slope) *slope = coef1 / colnorm[1];
	return coef0 / colnorm[0];
}

/* The q nearest of sorted xs to x0 (xs[start] is the point nearest x0):
 * [l, r) grows towards the closer side; returns the squared distance of the
 * q-th, R's rho. */
static double neighbours(const double *xs, size_t n, size_t start, double x0, size_t q, size_t *lo, size_t *hi)
{
	size_t l = start, r = start, taken = 0;
	double rho = 0;
	while (taken < q) {
		double dl = l > 0 ? (xs[l - 1] - x0) * (xs[l - 1] - x0) : INFINITY;
		double dr = r < n ? (xs[r] - x0) * (xs[r] - x0) : INFINITY;
		if (dr <= dl) rho = dr, r++;
		else rho = dl, l--;
		taken++;
	}
	*lo = l;
	*hi = r;
	return rho;
}

enum fp_status fp_validate_loess_direct(const double *x, const double *y, size_t n, double span, double *fit)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	double *xs = NULL, *ys = NULL, *work = NULL;
	if (!(span > 0 && span < 1)) return FP_FAIL(FP_ERR_INVALID_ARG, "loess span %g must be in (0, 1)", span);
	size_t q = (size_t)floor((double)n * span);
	if (q > n) q = n;
	if (q < 3) return FP_FAIL(FP_ERR_DATA, "loess: span %g of %zu rows leaves %zu neighbours (need 3)", span, n, q);
	FP_CHECK(st, fp_alloc_array(n, sizeof *k, (void **)&k, "loess order"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *xs, (void **)&xs, "loess x"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *ys, (void **)&ys, "loess y"));
	FP_CHECK(st, fp_alloc_array(4 * n, sizeof *work, (void **)&work, "loess design"));
	for (size_t i = 0; i < n; i++) {
		k[i].key = x[i];
		k[i].idx = i;
	}
	qsort(k, n, sizeof *k, fp_vi_cmp_keyed);
	for (size_t i = 0; i < n; i++) {
		xs[i] = k[i].key;
		ys[i] = y[k[i].idx];
	}
	for (size_t i = 0; i < n;) {
		double x0 = xs[i];
		size_t l, r;
		double rho = neighbours(xs, n, i, x0, q, &l, &r);
		if (!(rho > 0)) {
			st = FP_FAIL(FP_ERR_DATA, "loess: more than %zu rows share the value %g; span too small", q, x0);
			goto fail;
		}
		double f = local_fit(xs, ys, l, r - 1, x0, rho, work, NULL);
		size_t e = i;
		while (e < n && xs[e] == x0) fit[k[e++].idx] = f;
		i = e;
	}
fail:
	free(k);
	free(xs);
	free(ys);
	free(work);
	return st;
}

/* R's default surface = "interpolate" for one predictor (lowesb/ehg124/
 * ehg128): a k-d tree splits the sorted x at medians (moving the split off
 * ties) until a cell holds at most floor(n * span * cell) points; at each
 * cell boundary (vertex) the local fit gives a value and a slope; the fit
 * at x is the cubic Hermite interpolant between its cell's two vertices. */
enum fp_status fp_validate_loess_interpolate(const double *x, const double *y, size_t n, double span, double cell,
                                             double *fit)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	double *xs = NULL, *ys = NULL, *work = NULL, *vx = NULL, *val = NULL, *der = NULL;
	size_t *stack_l = NULL, *stack_u = NULL;
	double *stack_lo = NULL, *stack_hi = NULL;
	if (!(span > 0 && span < 1)) return FP_FAIL(FP_ERR_INVALID_ARG, "loess span %g must be in (0, 1)", span);
	size_t q = (size_t)floor((double)n * span), fc = (size_t)floor((double)n * span * cell);
	if (q < 3) return FP_FAIL(FP_ERR_DATA, "loess: span %g of %zu rows leaves %zu neighbours (need 3)", span, n, q);
	FP_CHECK(st, fp_alloc_array(n, sizeof *k, (void **)&k, "loess order"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *xs, (void **)&xs, "loess x"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *ys, (void **)&ys, "loess y"));
	FP_CHECK(st, fp_alloc_array(4 * n, sizeof *work, (void **)&work, "loess design"));
	FP_CHECK(st, fp_alloc_array(n + 2, sizeof *vx, (void **)&vx, "loess vertices"));
	FP_CHECK(st, fp_alloc_array(n + 2, sizeof *stack_l, (void **)&stack_l, "loess cells"));
	FP_CHECK(st, fp_alloc_array(n + 2, sizeof *stack_u, (void **)&stack_u, "loess cells"));
	FP_CHECK(st, fp_alloc_array(n + 2, sizeof *stack_lo, (void **)&stack_lo, "loess cells"));
	FP_CHECK(st, fp_alloc_array(n + 2, sizeof *stack_hi, (void **)&stack_hi, "loess cells"));
	for (size_t i = 0; i < n; i++) {
		k[i].key = x[i];
		k[i].idx = i;
	}
	FP_CHECK(st, fp_vi_sort_keyed(k, n));
	for (size_t i = 0; i < n; i++) {
		xs[i] = k[i].key;
		ys[i] = y[k[i].idx];
	}
	/* bounding box, widened by 0.5% (ehg126) */
	double lo = xs[0], hi = xs[n - 1];
	double mu = 0.005 * fmax(hi - lo, 1e-10 * fmax(fabs(lo), fabs(hi)) + 1e-30);
	size_t nv = 0;
	vx[nv++] = lo - mu;
	vx[nv++] = hi + mu;
	/* Cells are split breadth-first as in ehg124; in one dimension only the
	 * set of split points matters, so a work list suffices. Ranks are 0-based
	 * here, m = floor((l + u) / 2) in R's 1-based ranks. */
	size_t top = 0;
	stack_l[top] = 0;
	stack_u[top] = n - 1;
	stack_lo[top] = vx[0];
	stack_hi[top++] = vx[1];
	while (top > 0) {
		top--;
		size_t l = stack_l[top], u = stack_u[top];
		double cl = stack_lo[top], cu = stack_hi[top];
		if (u - l + 1 <= fc) continue;
		size_t m = (l + 1 + u + 1) / 2 - 1; /* R: m = (l + u) / 2 in 1-based ranks */
		/* move m to the nearest position with x[m] != x[m + 1], trying
		 * offsets 0, +1, -1, +2, -2, ...; R keeps m when none is found */
		for (long off = 0;;) {
			long pos = (long)m + off;
			if (pos >= (long)u || pos < (long)l) break;
			if (xs[pos] != xs[pos + 1]) {
				m = (size_t)pos;
				break;
			}
			off = -off;
			if (off >= 0) off++;
		}
		double split = xs[m];
		if (split == cl || split == cu) continue; /* a split on the cell's own bound: leaf */
		vx[nv++] = split;
		stack_l[top] = l, stack_u[top] = m, stack_lo[top] = cl, stack_hi[top++] = split;
		stack_l[top] = m + 1, stack_u[top] = u, stack_lo[top] = split, stack_hi[top++] = cu;
	}
	/* sort the vertices and fit value and slope at each */
	qsort(vx, nv, sizeof *vx, cmp_double);
	FP_CHECK(st, fp_alloc_array(nv, sizeof *val, (void **)&val, "loess vertex values"));
	FP_CHECK(st, fp_alloc_array(nv, sizeof *der, (void **)&der, "loess vertex slopes"));
	for (size_t v = 0; v < nv; v++) {
		/* start the neighbour search at the data point nearest the vertex */
		size_t a = 0, b = n;
		while (a < b) {
			size_t mid = (a + b) / 2;
			if (xs[mid] < vx[v]) a = mid + 1; else b = mid;
		}
		size_t start = a;
		if (start == n || (start > 0 && vx[v] - xs[start - 1] <= xs[start] - vx[v])) start = start > 0 ? start - 1 : 0;
		size_t l, r;
		double rho = neighbours(xs, n, start, vx[v], q, &l, &r);
		if (!(rho > 0)) {
			st = FP_FAIL(FP_ERR_DATA, "loess: more than %zu rows share the value %g; span too small", q, vx[v]);
			goto fail;
		}
		val[v] = local_fit(xs, ys, l, r - 1, vx[v], rho, work, &der[v]);
	}
	/* cubic Hermite between the vertices enclosing each x (x on a vertex
	 * belongs to the cell below it, as ehg128 descends with z <= xi) */
	for (size_t i = 0, c = 0; i < n; i++) {
		while (c + 2 < nv && xs[i] > vx[c + 1]) c++;
		double v0 = vx[c], v1 = vx[c + 1], h = (xs[i] - v0) / (v1 - v0);
		double phi0 = (1 - h) * (1 - h) * (1 + 2 * h), phi1 = h * h * (3 - 2 * h);
		double psi0 = h * (1 - h) * (1 - h), psi1 = h * h * (h - 1);
		fit[k[i].idx] = phi0 * val[c] + phi1 * val[c + 1] + (psi0 * der[c] + psi1 * der[c + 1]) * (v1 - v0);
	}
fail:
	free(k);
	free(xs);
	free(ys);
	free(work);
	free(vx);
	free(val);
	free(der);
	free(stack_l);
	free(stack_u);
	free(stack_lo);
	free(stack_hi);
	return st;
}

/* Newton's method for logistic regression with intercept a, optional slope b
 * on lp (with_slope), and offset lp when !with_slope. */
static enum fp_status logistic_fit(const unsigned char *y, const double *lp, size_t n, int with_slope,
                                   double *a_out, double *b_out)
{
	double a = 0, b = with_slope ? 1 : 0;
	for (int it = 0; it < 100; it++) {
		double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
		for (size_t i = 0; i < n; i++) {
			double eta = a + (with_slope ? b * lp[i] : lp[i]);
			double mu = 1 / (1 + exp(-eta));
			double wv = mu * (1 - mu), res = y[i] - mu;
			g0 += res;
			h00 += wv;
			if (with_slope) {
				g1 += res * lp[i];
				h01 += wv * lp[i];
				h11 += wv * lp[i] * lp[i];
			}
		}
		double da, db = 0;
		if (with_slope) {
			double det = h00 * h11 - h01 * h01;
			if (!(det > 0)) return FP_FAIL(FP_ERR_NUMERIC, "calibration slope: singular information (all predictions equal?)");
			da = (h11 * g0 - h01 * g1) / det;
			db = (h00 * g1 - h01 * g0) / det;
		} else {
			if (!(h00 > 0)) return FP_FAIL(FP_ERR_NUMERIC, "calibration-in-the-large: zero information");
			da = g0 / h00;
		}
		a += da;
		b += db;
		if (!isfinite(a) || !isfinite(b))
			return FP_FAIL(FP_ERR_NUMERIC, "logistic recalibration diverged (separation between outcome and prediction?)");
		if (fabs(da) <= 1e-13 * (1 + fabs(a)) && fabs(db) <= 1e-13 * (1 + fabs(b))) {
			*a_out = a;
			if (b_out) *b_out = b;
			return FP_OK;
		}
	}
	return FP_FAIL(FP_ERR_NUMERIC, "logistic recalibration did not converge in 100 Newton steps");
}

enum fp_status fp_validate_calibration(const unsigned char *y, const double *p, size_t n,
                                       struct fp_calibration_result *out)
{
	enum fp_status st = FP_OK;
	double *lp = NULL, *yd = NULL, *fit = NULL;
	FP_TRY(fp_vi_check_binary(y, n, "label"));
	FP_TRY(fp_vi_check_finite(p, n, "prob"));
	if (n < FP_CALIBRATION_MIN_ROWS)
		return FP_FAIL(FP_ERR_DATA, "calibration needs at least %d rows, got %zu", FP_CALIBRATION_MIN_ROWS, n);
	double sy = 0, sp = 0, sb = 0;
	for (size_t i = 0; i < n; i++) {
		if (!(p[i] > 0 && p[i] < 1))
			return FP_FAIL(FP_ERR_INVALID_ARG, "prob: row %zu is %.17g (must be strictly between 0 and 1)", i + 1, p[i]);
		sy += y[i];
		sp += p[i];
		sb += (p[i] - y[i]) * (p[i] - y[i]);
	}
	if (sy == 0 || sy == (double)n)
		return FP_FAIL(FP_ERR_DATA, "calibration needs both outcomes: %g of %zu rows are 1", sy, n);
	FP_CHECK(st, fp_alloc_array(n, sizeof *lp, (void **)&lp, "calibration logits"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *yd, (void **)&yd, "calibration outcomes"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *fit, (void **)&fit, "calibration smooth"));
	for (size_t i = 0; i < n; i++) {
		lp[i] = log(p[i] / (1 - p[i]));
		yd[i] = y[i];
	}
	memset(out, 0, sizeof *out);
	out->n = n;
	FP_CHECK(st, logistic_fit(y, lp, n, 0, &out->citl, NULL));
	double a;
	FP_CHECK(st, logistic_fit(y, lp, n, 1, &a, &out->slope));
	double ybar = sy / (double)n;
	out->oe = sp / sy;
	out->brier = sb / (double)n;
	out->scaled_brier = 1 - out->brier / (ybar * (1 - ybar));
	FP_CHECK(st, fp_validate_loess_direct(p, yd, n, 0.75, fit));
	double sd = 0;
	for (size_t i = 0; i < n; i++) {
		fit[i] = fabs(fit[i] - p[i]);
		sd += fit[i];
	}
	out->ici = sd / (double)n;
	FP_CHECK(st, fp_validate_quantile7(fit, n, 0.5, &out->e50));
	FP_CHECK(st, fp_validate_quantile7(fit, n, 0.9, &out->e90));
	FP_CHECK(st, fp_validate_loess_interpolate(p, yd, n, 0.75, 0.2, fit));
	sd = 0;
	for (size_t i = 0; i < n; i++) {
		fit[i] = fabs(fit[i] - p[i]);
		sd += fit[i];
	}
	out->ici_interp = sd / (double)n;
	FP_CHECK(st, fp_validate_quantile7(fit, n, 0.5, &out->e50_interp));
	FP_CHECK(st, fp_validate_quantile7(fit, n, 0.9, &out->e90_interp));
fail:
	free(lp);
	free(yd);
	free(fit);
	return st;
}

enum fp_status fp_validate_recalibrate_binary(const unsigned char *y, const double *p, size_t n, double *a,
                                              double *b, double *p_out)
{
	enum fp_status st = FP_OK;
	double *lp = NULL;
	FP_TRY(fp_vi_check_binary(y, n, "label"));
	FP_TRY(fp_vi_check_finite(p, n, "prob"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *lp, (void **)&lp, "recalibration"));
	for (size_t i = 0; i < n; i++) {
		if (!(p[i] > 0 && p[i] < 1)) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "prob: row %zu is %.17g (must be strictly between 0 and 1)", i + 1, p[i]);
			goto fail;
		}
		lp[i] = log(p[i] / (1 - p[i]));
	}
	FP_CHECK(st, logistic_fit(y, lp, n, 1, a, b));
	for (size_t i = 0; i < n; i++) p_out[i] = 1 / (1 + exp(-(*a + *b * lp[i])));
fail:
	free(lp);
	return st;
}

enum fp_status fp_validate_recalibrate_surv(const double *risk, size_t n, double target, double *a, double *risk_out)
{
	if (n == 0) return FP_FAIL(FP_ERR_DATA, "recalibration of no rows");
	if (!(target > 0 && target < 1)) return FP_FAIL(FP_ERR_DATA, "recalibration target risk %g must be in (0, 1)", target);
	FP_TRY(fp_vi_check_finite(risk, n, "risk"));
	for (size_t i = 0; i < n; i++)
		if (!(risk[i] >= 0 && risk[i] < 1))
			return FP_FAIL(FP_ERR_INVALID_ARG, "risk: row %zu is %g (must be in [0, 1))", i + 1, risk[i]);
	/* mean(1 - (1 - F)^exp(a)) increases with a: bisection on a */
	double lo = -30, hi = 30;
	for (int it = 0; it < 200; it++) {
		double mid = (lo + hi) / 2, m = 0, e = exp(mid);
		for (size_t i = 0; i < n; i++) m += 1 - pow(1 - risk[i], e);
		if (m / (double)n < target) lo = mid; else hi = mid;
		if (hi - lo < 1e-15) break;
	}
	*a = (lo + hi) / 2;
	double e = exp(*a);
	for (size_t i = 0; i < n; i++) risk_out[i] = 1 - pow(1 - risk[i], e);
	return FP_OK;
}
