/*
 * compare.c: tests that compare two predictions or two groups.
 *  - paired DeLong test of two AUCs on the same rows (pROC::roc.test(
 *    method = "delong", paired = TRUE)): z = (A1 - A2) / sqrt(V1 + V2 - 2C),
 *    the variances and covariance from the placements;
 *  - log-rank test across G groups (survival::survdiff, rho = 0):
 *    chi^2 = (O - E)' V^-1 (O - E) over the first G - 1 groups, G - 1 df.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_validate.h"
#include "validate_dist.h"
#include "validate_internal.h"

static double cov(const double *a, const double *b, size_t n)
{
	double ma = 0, mb = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		ma += a[i];
		mb += b[i];
	}
	ma /= (double)n;
	mb /= (double)n;
	for (size_t i = 0; i < n; i++) s += (a[i] - ma) * (b[i] - mb);
	return s / (double)(n - 1);
}

enum fp_status fp_validate_auc_paired(const unsigned char *label, const double *score1, const double *score2,
                                      size_t n, struct fp_auc_paired_result *out)
{
	enum fp_status st = FP_OK;
	double *p = NULL;
	size_t m = 0;
	for (size_t i = 0; i < n; i++) m += label[i] == 1;
	if (m < 2 || n - m < 2)
		return FP_FAIL(FP_ERR_DATA, "paired DeLong needs at least 2 cases and 2 controls: %zu and %zu", m, n - m);
	FP_TRY(fp_alloc_array(2 * n, sizeof *p, (void **)&p, "paired placements"));
	double *x1 = p, *y1 = p + m, *x2 = p + n, *y2 = p + n + m;
	FP_CHECK(st, fp_validate_auc(label, score1, n, &out->a, x1, y1));
	FP_CHECK(st, fp_validate_auc(label, score2, n, &out->b, x2, y2));
	size_t c = n - m;
	double v = (cov(x1, x1, m) + cov(x2, x2, m) - 2 * cov(x1, x2, m)) / (double)m +
	           (cov(y1, y1, c) + cov(y2, y2, c) - 2 * cov(y1, y2, c)) / (double)c;
	out->diff = out->a.auc - out->b.auc;
	out->se_diff = sqrt(v);
	out->z = out->diff / out->se_diff;
	out->p = 2 * fp_vd_pnorm(-fabs(out->z));
fail:
	free(p);
	return st;
}

/* Solves the symmetric system a x = b of size k in place (Gaussian
 * elimination with partial pivoting); 0 when singular. */
static int solve(double *a, double *b, size_t k)
{
	for (size_t c = 0; c < k; c++) {
		size_t piv = c;
		for (size_t r = c + 1; r < k; r++)
			if (fabs(a[r * k + c]) > fabs(a[piv * k + c])) piv = r;
		if (fabs(a[piv * k + c]) < 1e-300) return 0;
		if (piv != c) {
			for (size_t j = 0; j < k; j++) {
				double t = a[c * k + j];
				a[c * k + j] = a[piv * k + j];
				a[piv * k + j] = t;
			}
			double t = b[c];
			b[c] = b[piv];
			b[piv] = t;
		}
		for (size_t r = c + 1; r < k; r++) {
			double f = a[r * k + c] / a[c * k + c];
			for (size_t j = c; j < k; j++) a[r * k + j] -= f * a[c * k + j];
			b[r] -= f * b[c];
		}
	}
	for (size_t c = k; c-- > 0;) {
		for (size_t j = c + 1; j < k; j++) b[c] -= a[c * k + j] * b[j];
		b[c] /= a[c * k + c];
	}
	return 1;
}

enum fp_status fp_validate_logrank(const double *time, const unsigned char *event, const int *group, size_t n,
                                   struct fp_logrank_result *out)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	double *risk = NULL, *dg = NULL, *v = NULL, *u = NULL;
	FP_TRY(fp_vi_check_finite(time, n, "time"));
	FP_TRY(fp_vi_check_binary(event, n, "event"));
	size_t g = 0;
	for (size_t i = 0; i < n; i++) {
		if (group[i] < 0) return FP_FAIL(FP_ERR_INVALID_ARG, "group: row %zu is negative", i + 1);
		if ((size_t)group[i] + 1 > g) g = (size_t)group[i] + 1;
	}
	if (g < 2 || g > FP_LOGRANK_MAX_GROUPS)
		return FP_FAIL(FP_ERR_DATA, "log-rank needs 2 to %d groups, got %zu", FP_LOGRANK_MAX_GROUPS, g);
	memset(out, 0, sizeof *out);
	out->groups = g;
	FP_CHECK(st, fp_alloc_array(n, sizeof *k, (void **)&k, "log-rank order"));
	FP_CHECK(st, fp_calloc_array(g, sizeof *risk, (void **)&risk, "log-rank risk sets"));
	FP_CHECK(st, fp_calloc_array(g, sizeof *dg, (void **)&dg, "log-rank deaths"));
	FP_CHECK(st, fp_calloc_array(g * g, sizeof *v, (void **)&v, "log-rank variance"));
	FP_CHECK(st, fp_calloc_array(g, sizeof *u, (void **)&u, "log-rank scores"));
	for (size_t i = 0; i < n; i++) {
		k[i].key = time[i];
		k[i].idx = i;
		risk[group[i]] += 1;
	}
	qsort(k, n, sizeof *k, fp_vi_cmp_keyed);
	for (size_t i = 0; i < n;) {
		size_t e = i;
		double d = 0, r = 0;
		for (size_t q = 0; q < g; q++) {
			dg[q] = 0;
			r += risk[q];
		}
		while (e < n && k[e].key == k[i].key) {
			size_t row = k[e].idx;
			if (event[row]) {
				dg[group[row]] += 1;
				d += 1;
			}
			e++;
		}
		if (d > 0) {
			for (size_t a = 0; a < g; a++) {
				out->observed[a] += dg[a];
				out->expected[a] += d * risk[a] / r;
				if (r > 1) {
					double f = d * (r - d) / (r * r * (r - 1));
					for (size_t b = 0; b < g; b++) v[a * g + b] += f * risk[a] * ((a == b ? r : 0) - risk[b]);
				}
			}
		}
		for (size_t q = i; q < e; q++) risk[group[k[q].idx]] -= 1;
		i = e;
	}
	for (size_t a = 0; a < g; a++) u[a] = out->observed[a] - out->expected[a];
	/* the first g - 1 rows and columns of v */
	for (size_t a = 0; a + 1 < g; a++)
		for (size_t b = 0; b + 1 < g; b++) v[a * (g - 1) + b] = v[a * g + b];
	double *x = dg; /* reuse */
	for (size_t a = 0; a + 1 < g; a++) x[a] = u[a];
	if (!solve(v, x, g - 1)) {
		st = FP_FAIL(FP_ERR_DATA, "log-rank: singular variance (a group without follow-up at event times?)");
		goto fail;
	}
	double chisq = 0;
	for (size_t a = 0; a + 1 < g; a++) chisq += u[a] * x[a];
	out->chisq = chisq;
	out->df = (double)(g - 1);
	out->p = fp_vd_pchisq_upper(chisq, out->df);
fail:
	free(k);
	free(risk);
	free(dg);
	free(v);
	free(u);
	return st;
}
