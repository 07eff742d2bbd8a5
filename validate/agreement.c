/*
 * agreement.c: agreement between annotators (Cohen's kappa for two raters,
 * Fleiss' kappa for many) and decision-curve net benefit.
 * kappa = (p_o - p_e) / (1 - p_e), with p_e from the raters' marginals
 * (Cohen) or the pooled category shares (Fleiss 1971).
 */
#include <math.h>
#include <stdlib.h>

#include "fp_common.h"
#include "fp_validate.h"
#include "validate_internal.h"

enum fp_status fp_validate_kappa_cohen(const int *r1, const int *r2, size_t n, double *kappa)
{
	enum fp_status st = FP_OK;
	double *m = NULL;
	int kmax = 0;
	if (n == 0) return FP_FAIL(FP_ERR_DATA, "Cohen's kappa of no items");
	for (size_t i = 0; i < n; i++) {
		if (r1[i] < 0 || r2[i] < 0) return FP_FAIL(FP_ERR_INVALID_ARG, "rating: row %zu is negative", i + 1);
		if (r1[i] > kmax) kmax = r1[i];
		if (r2[i] > kmax) kmax = r2[i];
	}
	size_t k = (size_t)kmax + 1;
	FP_CHECK(st, fp_calloc_array(2 * k, sizeof *m, (void **)&m, "kappa marginals"));
	double agree = 0;
	for (size_t i = 0; i < n; i++) {
		agree += r1[i] == r2[i];
		m[r1[i]] += 1;
		m[k + (size_t)r2[i]] += 1;
	}
	double po = agree / (double)n, pe = 0;
	for (size_t c = 0; c < k; c++) pe += (m[c] / (double)n) * (m[k + c] / (double)n);
	if (pe >= 1) {
		st = FP_FAIL(FP_ERR_DATA, "Cohen's kappa undefined: both raters used a single category");
		goto fail;
	}
	*kappa = (po - pe) / (1 - pe);
fail:
	free(m);
	return st;
}

enum fp_status fp_validate_kappa_fleiss(const double *counts, size_t n_items, size_t n_cat, double *kappa)
{
	enum fp_status st = FP_OK;
	double *share = NULL;
	if (n_items == 0 || n_cat < 2) return FP_FAIL(FP_ERR_DATA, "Fleiss' kappa needs items and at least 2 categories");
	FP_TRY(fp_vi_check_finite(counts, n_items * n_cat, "counts"));
	FP_CHECK(st, fp_calloc_array(n_cat, sizeof *share, (void **)&share, "Fleiss shares"));
	double raters = -1, pbar = 0;
	for (size_t i = 0; i < n_items; i++) {
		double r = 0, sq = 0;
		for (size_t c = 0; c < n_cat; c++) {
			double v = counts[i * n_cat + c];
			if (v < 0 || v != floor(v)) {
				st = FP_FAIL(FP_ERR_INVALID_ARG, "counts: item %zu category %zu is %g (must be a count)", i + 1, c + 1, v);
				goto fail;
			}
			r += v;
			sq += v * v;
			share[c] += v;
		}
		if (raters < 0) raters = r;
		if (r != raters || r < 2) {
			st = FP_FAIL(FP_ERR_DATA, "Fleiss' kappa: item %zu has %g raters, item 1 has %g (need the same, >= 2)", i + 1,
			             r, raters);
			goto fail;
		}
		pbar += (sq - r) / (r * (r - 1));
	}
	pbar /= (double)n_items;
	double pe = 0;
	for (size_t c = 0; c < n_cat; c++) {
		double pj = share[c] / ((double)n_items * raters);
		pe += pj * pj;
	}
	if (pe >= 1) {
		st = FP_FAIL(FP_ERR_DATA, "Fleiss' kappa undefined: every rating is in one category");
		goto fail;
	}
	*kappa = (pbar - pe) / (1 - pe);
fail:
	free(share);
	return st;
}

enum fp_status fp_validate_net_benefit(const unsigned char *y, const double *p, size_t n, double threshold,
                                       double *nb)
{
	if (!(threshold > 0 && threshold < 1)) return FP_FAIL(FP_ERR_INVALID_ARG, "threshold %g must be in (0, 1)", threshold);
	if (n == 0) return FP_FAIL(FP_ERR_DATA, "net benefit of no rows");
	FP_TRY(fp_vi_check_binary(y, n, "label"));
	FP_TRY(fp_vi_check_finite(p, n, "prob"));
	double tp = 0, fp = 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] >= threshold) {
			if (y[i]) tp += 1; else fp += 1;
		}
	*nb = tp / (double)n - fp / (double)n * threshold / (1 - threshold);
	return FP_OK;
}
