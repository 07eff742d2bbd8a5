/*
 * multiclass.c: AUC for K > 2 classes from a matrix of class scores.
 * Hand & Till (2001): for each pair (i, j), A(i|j) is the AUC of class i
 * against class j using the score for class i, on the rows of those two
 * classes; M averages (A(i|j) + A(j|i)) / 2 over pairs. One-vs-rest: the AUC
 * of class c against all others using the score for c, averaged plainly
 * (macro) or by prevalence (weighted).
 */
#include <stdlib.h>

#include "fp_common.h"
#include "fp_validate.h"
#include "validate_internal.h"

enum fp_status fp_validate_auc_multiclass(const int *cls, const double *prob, size_t n, size_t K,
                                          struct fp_multiclass_auc_result *out)
{
	enum fp_status st = FP_OK;
	unsigned char *y = NULL;
	double *s = NULL;
	size_t *count = NULL, total;
	if (K < 2) return FP_FAIL(FP_ERR_INVALID_ARG, "multiclass AUC needs at least 2 classes, got %zu", K);
	FP_TRY(fp_size_mul(n, K, &total, "class score matrix"));
	FP_TRY(fp_vi_check_finite(prob, total, "class scores"));
	FP_CHECK(st, fp_calloc_array(K, sizeof *count, (void **)&count, "class counts"));
	for (size_t i = 0; i < n; i++) {
		if (cls[i] < 0 || (size_t)cls[i] >= K) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "class: row %zu is %d (must be 0..%zu)", i + 1, cls[i], K - 1);
			goto fail;
		}
		count[cls[i]]++;
	}
	for (size_t c = 0; c < K; c++)
		if (count[c] == 0) {
			st = FP_FAIL(FP_ERR_DATA, "multiclass AUC: class %zu has no rows", c + 1);
			goto fail;
		}
	FP_CHECK(st, fp_alloc_array(n, 1, (void **)&y, "multiclass labels"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *s, (void **)&s, "multiclass scores"));
	struct fp_auc_result r;
	double ht = 0, macro = 0, weighted = 0;
	for (size_t i = 0; i < K; i++) {
		for (size_t j = i + 1; j < K; j++) {
			double pair = 0;
			for (int side = 0; side < 2; side++) {
				size_t a = side ? j : i, m = 0;
				for (size_t q = 0; q < n; q++)
					if ((size_t)cls[q] == i || (size_t)cls[q] == j) {
						y[m] = (size_t)cls[q] == a;
						s[m] = prob[q * K + a];
						m++;
					}
				FP_CHECK(st, fp_validate_auc(y, s, m, &r, NULL, NULL));
				pair += r.auc / 2;
			}
			ht += pair;
		}
		for (size_t q = 0; q < n; q++) {
			y[q] = (size_t)cls[q] == i;
			s[q] = prob[q * K + i];
		}
		FP_CHECK(st, fp_validate_auc(y, s, n, &r, NULL, NULL));
		macro += r.auc / (double)K;
		weighted += r.auc * (double)count[i] / (double)n;
	}
	out->n = n;
	out->classes = K;
	out->hand_till = ht * 2 / ((double)K * (double)(K - 1));
	out->ovr_macro = macro;
	out->ovr_weighted = weighted;
fail:
	free(y);
	free(s);
	free(count);
	return st;
}
