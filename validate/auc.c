/*
 * auc.c: AUC with the DeLong variance in one sorted pass (Sun & Xu 2014).
 *
 * Takes labels (0/1) and scores; produces the AUC, its DeLong variance and
 * pROC's normal CI. Placements are computed per tie group of the pooled
 * sorted scores: a case's placement is the share of controls below it plus
 * half the controls tied with it, a control's the share of cases above it
 * plus half the tied cases. The AUC is the mean case placement, which equals
 * Mann-Whitney U / (m n) with midranks.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_validate.h"
#include "validate_internal.h"

#define FP_Z975 1.959963984540054

int fp_vi_cmp_keyed(const void *a, const void *b)
{
	const struct fp_vi_keyed *x = a, *y = b;
	if (x->key < y->key) return -1;
	if (x->key > y->key) return 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

static uint64_t order_bits(double v)
{
	uint64_t u;
	v += 0.0; /* -0.0 becomes 0.0, so equal doubles get equal bits */
	memcpy(&u, &v, sizeof u);
	return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

enum fp_status fp_vi_sort_keyed(struct fp_vi_keyed *k, size_t n)
{
	/* Below a few thousand rows qsort is as fast; above, an LSD radix sort on
	 * order-preserving key bits (4 stable passes of 16 bits) is several times
	 * faster, which the DeLong benchmark at n = 10^6 needs. Both give the
	 * same order: by key, then by idx (qsort compares idx; the radix sort is
	 * stable and callers fill idx ascending). */
	if (n < 4096) {
		qsort(k, n, sizeof *k, fp_vi_cmp_keyed);
		return FP_OK;
	}
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *tmp = NULL;
	uint64_t *bits = NULL, *bits2 = NULL;
	size_t *count = NULL;
	FP_CHECK(st, fp_alloc_array(n, sizeof *tmp, (void **)&tmp, "radix sort"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *bits, (void **)&bits, "radix sort"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *bits2, (void **)&bits2, "radix sort"));
	FP_CHECK(st, fp_calloc_array(4 * 65536, sizeof *count, (void **)&count, "radix sort"));
	for (size_t i = 0; i < n; i++) {
		bits[i] = order_bits(k[i].key);
		for (int p = 0; p < 4; p++) count[p * 65536 + ((bits[i] >> (16 * p)) & 0xFFFF)]++;
	}
	for (int p = 0; p < 4; p++) {
		size_t *c = count + p * 65536, sum = 0;
		int trivial = 0;
		for (size_t d = 0; d < 65536; d++) {
			if (c[d] == n) trivial = 1;
			size_t t = c[d];
			c[d] = sum;
			sum += t;
		}
		if (trivial) continue; /* every key has the same digit here */
		for (size_t i = 0; i < n; i++) {
			size_t pos = c[(bits[i] >> (16 * p)) & 0xFFFF]++;
			tmp[pos] = k[i];
			bits2[pos] = bits[i];
		}
		memcpy(k, tmp, n * sizeof *k);
		uint64_t *sw = bits;
		bits = bits2;
		bits2 = sw;
	}
fail:
	free(tmp);
	free(bits);
	free(bits2);
	free(count);
	return st;
}

enum fp_status fp_vi_check_finite(const double *v, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return FP_FAIL(FP_ERR_NUMERIC, "%s: row %zu is %g (must be finite)", what, i + 1, v[i]);
	return FP_OK;
}

enum fp_status fp_vi_check_binary(const unsigned char *v, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] > 1) return FP_FAIL(FP_ERR_INVALID_ARG, "%s: row %zu is %u (must be 0 or 1)", what, i + 1, v[i]);
	return FP_OK;
}

static double sample_var(const double *v, size_t n, double mean)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) s += (v[i] - mean) * (v[i] - mean);
	return n > 1 ? s / (double)(n - 1) : NAN;
}

enum fp_status fp_validate_auc(const unsigned char *label, const double *score, size_t n,
                               struct fp_auc_result *out, double *v10_out, double *v01_out)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	double *place = NULL; /* per row: its placement */
	size_t m = 0, nc = 0;

	FP_TRY(fp_vi_check_binary(label, n, "label"));
	FP_TRY(fp_vi_check_finite(score, n, "score"));
	for (size_t i = 0; i < n; i++) m += label[i];
	nc = n - m;
	if (m == 0 || nc == 0)
		return FP_FAIL(FP_ERR_DATA, "AUC needs cases and controls: %zu cases, %zu controls", m, nc);
	FP_CHECK(st, fp_alloc_array(n, sizeof *k, (void **)&k, "AUC sort keys"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *place, (void **)&place, "AUC placements"));
	for (size_t i = 0; i < n; i++) {
		k[i].key = score[i];
		k[i].idx = i;
	}
	FP_CHECK(st, fp_vi_sort_keyed(k, n));

	/* Walk tie groups upwards: controls_below and cases_below count rows
	 * with strictly smaller scores. */
	size_t controls_below = 0, cases_below = 0;
	double twice_u = 0; /* 2 U: an integer, exact in a double below 2^53 */
	for (size_t g = 0; g < n;) {
		size_t e = g, gc = 0, gd = 0;
		while (e < n && k[e].key == k[g].key) {
			if (label[k[e].idx]) gc++; else gd++;
			e++;
		}
		double p10 = ((double)controls_below + 0.5 * (double)gd) / (double)nc;
		double p01 = ((double)(m - cases_below - gc) + 0.5 * (double)gc) / (double)m;
		for (size_t j = g; j < e; j++) {
			place[k[j].idx] = label[k[j].idx] ? p10 : p01;
		}
		twice_u += (double)gc * (2.0 * (double)controls_below + (double)gd);
		controls_below += gd;
		cases_below += gc;
		g = e;
	}
	/* Gather placements per class in row order (for paired tests). */
	double *v10 = NULL, *v01 = NULL;
	FP_CHECK(st, fp_alloc_array(m, sizeof *v10, (void **)&v10, "AUC case placements"));
	st = fp_alloc_array(nc, sizeof *v01, (void **)&v01, "AUC control placements");
	if (st != FP_OK) {
		free(v10);
		goto fail;
	}
	for (size_t i = 0, a = 0, b = 0; i < n; i++) {
		if (label[i]) v10[a++] = place[i]; else v01[b++] = place[i];
	}
	double auc = twice_u / (2.0 * (double)m * (double)nc);
	double var = sample_var(v10, m, auc) / (double)m + sample_var(v01, nc, auc) / (double)nc;
	if (v10_out) for (size_t i = 0; i < m; i++) v10_out[i] = v10[i];
	if (v01_out) for (size_t i = 0; i < nc; i++) v01_out[i] = v01[i];
	free(v10);
	free(v01);

	out->n = n;
	out->cases = m;
	out->controls = nc;
	out->auc = auc;
	out->var = var;
	out->se = sqrt(var);
	out->ci_low = fmax(0.0, auc - FP_Z975 * out->se);
	out->ci_high = fmin(1.0, auc + FP_Z975 * out->se);
fail:
	free(k);
	free(place);
	return st;
}
