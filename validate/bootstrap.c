/*
 * bootstrap.c: centre-stratified bootstrap of the C-index, fast: the rows are
 * ranked once (one fp_cindex_plan) and each replicate is a vector of
 * multiplicities, so a replicate costs one O(n log n) tree walk and no sort.
 * Replicates whose resample has no comparable pair are drawn again (at most
 * 10 B draws), as they have no C.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_validate.h"

/* splitmix64: small, fast, and enough for resampling indices. */
static unsigned long long next_u64(unsigned long long *s)
{
	unsigned long long z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Uniform in [0, m) without modulo bias. */
static size_t uniform(unsigned long long *s, size_t m)
{
	unsigned long long lim = (~0ull) - (~0ull) % m, x;
	do x = next_u64(s);
	while (x >= lim);
	return (size_t)(x % m);
}

enum fp_status fp_validate_cindex_bootstrap(const double *time, const unsigned char *event, const double *score,
                                            const int *centre, size_t n, const struct fp_cindex_options *opt,
                                            size_t B, unsigned long long seed, double *replicates,
                                            struct fp_bootstrap_result *out)
{
	enum fp_status st = FP_OK;
	struct fp_cindex_plan *plan = NULL;
	double *w = NULL, *rep = NULL;
	size_t *members = NULL, *start = NULL;
	if (B < 2) return FP_FAIL(FP_ERR_INVALID_ARG, "bootstrap needs at least 2 replicates, got %zu", B);
	FP_CHECK(st, fp_cindex_plan_create(time, event, score, NULL, n, &plan));
	struct fp_cindex_result r;
	FP_CHECK(st, fp_cindex_plan_run(plan, NULL, opt, 0, &r));
	memset(out, 0, sizeof *out);
	out->estimate = r.c;
	/* rows grouped by centre */
	int cmax = 0;
	for (size_t i = 0; i < n; i++) {
		if (centre && centre[i] < 0) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "centre: row %zu is negative", i + 1);
			goto fail;
		}
		if (centre && centre[i] > cmax) cmax = centre[i];
	}
	size_t nc = (size_t)cmax + 1;
	FP_CHECK(st, fp_alloc_array(n, sizeof *w, (void **)&w, "bootstrap weights"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *members, (void **)&members, "bootstrap centres"));
	FP_CHECK(st, fp_calloc_array(nc + 1, sizeof *start, (void **)&start, "bootstrap centres"));
	FP_CHECK(st, fp_alloc_array(B, sizeof *rep, (void **)&rep, "bootstrap replicates"));
	for (size_t i = 0; i < n; i++) start[(centre ? (size_t)centre[i] : 0) + 1]++;
	for (size_t c = 0; c < nc; c++) start[c + 1] += start[c];
	{
		size_t *fill = NULL;
		FP_CHECK(st, fp_alloc_array(nc, sizeof *fill, (void **)&fill, "bootstrap centres"));
		memcpy(fill, start, nc * sizeof *fill);
		for (size_t i = 0; i < n; i++) members[fill[centre ? (size_t)centre[i] : 0]++] = i;
		free(fill);
	}
	unsigned long long rs = seed;
	size_t done = 0, tries = 0;
	while (done < B) {
		if (++tries > 10 * B) {
			st = FP_FAIL(FP_ERR_DATA, "bootstrap: %zu of %zu resamples had no comparable pair", tries - done, tries);
			goto fail;
		}
		memset(w, 0, n * sizeof *w);
		for (size_t c = 0; c < nc; c++) {
			size_t m = start[c + 1] - start[c];
			for (size_t j = 0; j < m; j++) w[members[start[c] + uniform(&rs, m)]] += 1;
		}
		st = fp_cindex_plan_run(plan, w, opt, 0, &r);
		if (st == FP_ERR_DATA) {
			fp_error_clear();
			st = FP_OK;
			continue;
		}
		if (st != FP_OK) goto fail;
		rep[done++] = r.c;
	}
	double sum = 0, ss = 0;
	for (size_t b = 0; b < B; b++) sum += rep[b];
	out->replicates = B;
	out->mean = sum / (double)B;
	for (size_t b = 0; b < B; b++) ss += (rep[b] - out->mean) * (rep[b] - out->mean);
	out->sd = sqrt(ss / (double)(B - 1));
	FP_CHECK(st, fp_validate_quantile7(rep, B, 0.025, &out->ci_low));
	FP_CHECK(st, fp_validate_quantile7(rep, B, 0.975, &out->ci_high));
	if (replicates) memcpy(replicates, rep, B * sizeof *rep);
fail:
	fp_cindex_plan_destroy(plan);
	free(w);
	free(rep);
	free(members);
	free(start);
	return st;
}

static enum fp_status ici_of(const double *p, const double *y, size_t n, double *fit, double *ici)
{
	FP_TRY(fp_validate_loess_interpolate(p, y, n, 0.75, 0.2, fit));
	double s = 0;
	for (size_t i = 0; i < n; i++) s += fabs(fit[i] - p[i]);
	*ici = s / (double)n;
	return FP_OK;
}

enum fp_status fp_validate_ici_bootstrap(const unsigned char *y, const double *p, const int *centre, size_t n,
                                         size_t B, unsigned long long seed, double *replicates,
                                         struct fp_bootstrap_result *out)
{
	enum fp_status st = FP_OK;
	double *yd = NULL, *bp = NULL, *by = NULL, *fit = NULL, *rep = NULL;
	size_t *members = NULL, *start = NULL;
	if (B < 2) return FP_FAIL(FP_ERR_INVALID_ARG, "bootstrap needs at least 2 replicates, got %zu", B);
	if (n < FP_CALIBRATION_MIN_ROWS)
		return FP_FAIL(FP_ERR_DATA, "ICI bootstrap needs at least %d rows, got %zu", FP_CALIBRATION_MIN_ROWS, n);
	int cmax = 0;
	for (size_t i = 0; i < n; i++) {
		if (centre && centre[i] < 0) return FP_FAIL(FP_ERR_INVALID_ARG, "centre: row %zu is negative", i + 1);
		if (centre && centre[i] > cmax) cmax = centre[i];
	}
	size_t nc = (size_t)cmax + 1;
	FP_CHECK(st, fp_alloc_array(n, sizeof *yd, (void **)&yd, "ICI bootstrap"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *bp, (void **)&bp, "ICI bootstrap"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *by, (void **)&by, "ICI bootstrap"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *fit, (void **)&fit, "ICI bootstrap"));
	FP_CHECK(st, fp_alloc_array(B, sizeof *rep, (void **)&rep, "ICI bootstrap"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *members, (void **)&members, "ICI bootstrap"));
	FP_CHECK(st, fp_calloc_array(nc + 1, sizeof *start, (void **)&start, "ICI bootstrap"));
	for (size_t i = 0; i < n; i++) yd[i] = y[i];
	memset(out, 0, sizeof *out);
	FP_CHECK(st, ici_of(p, yd, n, fit, &out->estimate));
	for (size_t i = 0; i < n; i++) start[(centre ? (size_t)centre[i] : 0) + 1]++;
	for (size_t c = 0; c < nc; c++) start[c + 1] += start[c];
	{
		size_t *fill = NULL;
		FP_CHECK(st, fp_alloc_array(nc, sizeof *fill, (void **)&fill, "ICI bootstrap"));
		memcpy(fill, start, nc * sizeof *fill);
		for (size_t i = 0; i < n; i++) members[fill[centre ? (size_t)centre[i] : 0]++] = i;
		free(fill);
	}
	unsigned long long rs = seed;
	for (size_t b = 0; b < B; b++) {
		size_t q = 0;
		for (size_t c = 0; c < nc; c++) {
			size_t m = start[c + 1] - start[c];
			for (size_t j = 0; j < m; j++, q++) {
				size_t r = members[start[c] + uniform(&rs, m)];
				bp[q] = p[r];
				by[q] = yd[r];
			}
		}
		FP_CHECK(st, ici_of(bp, by, n, fit, &rep[b]));
	}
	double sum = 0, ss = 0;
	for (size_t b = 0; b < B; b++) sum += rep[b];
	out->replicates = B;
	out->mean = sum / (double)B;
	for (size_t b = 0; b < B; b++) ss += (rep[b] - out->mean) * (rep[b] - out->mean);
	out->sd = sqrt(ss / (double)(B - 1));
	FP_CHECK(st, fp_validate_quantile7(rep, B, 0.025, &out->ci_low));
	FP_CHECK(st, fp_validate_quantile7(rep, B, 0.975, &out->ci_high));
	if (replicates) memcpy(replicates, rep, B * sizeof *rep);
fail:
	free(yd);
	free(bp);
	free(by);
	free(fit);
	free(rep);
	free(members);
	free(start);
	return st;
}

enum fp_status fp_validate_horizon_bootstrap(const double *time, const unsigned char *event, const double *risk,
                                             const int *centre, size_t n, double t, size_t B, unsigned long long seed,
                                             struct fp_horizon_bootstrap *out)
{
	enum fp_status st = FP_OK;
	double *bt = NULL, *br = NULL, *rep = NULL;
	unsigned char *be = NULL;
	size_t *members = NULL, *start = NULL;
	if (B < 2) return FP_FAIL(FP_ERR_INVALID_ARG, "bootstrap needs at least 2 replicates, got %zu", B);
	int cmax = 0;
	for (size_t i = 0; i < n; i++) {
		if (centre && centre[i] < 0) return FP_FAIL(FP_ERR_INVALID_ARG, "centre: row %zu is negative", i + 1);
		if (centre && centre[i] > cmax) cmax = centre[i];
	}
	size_t nc = (size_t)cmax + 1, reps4;
	FP_CHECK(st, fp_size_mul(B, 4, &reps4, "bootstrap replicates"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *bt, (void **)&bt, "horizon bootstrap"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *br, (void **)&br, "horizon bootstrap"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, 1, (void **)&be, "horizon bootstrap"));
	FP_CHECK(st, fp_alloc_array(reps4, sizeof *rep, (void **)&rep, "horizon bootstrap"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *members, (void **)&members, "horizon bootstrap"));
	FP_CHECK(st, fp_calloc_array(nc + 1, sizeof *start, (void **)&start, "horizon bootstrap"));
	for (size_t i = 0; i < n; i++) start[(centre ? (size_t)centre[i] : 0) + 1]++;
	for (size_t c = 0; c < nc; c++) start[c + 1] += start[c];
	{
		size_t *fill = NULL;
		FP_CHECK(st, fp_alloc_array(nc, sizeof *fill, (void **)&fill, "horizon bootstrap"));
		memcpy(fill, start, nc * sizeof *fill);
		for (size_t i = 0; i < n; i++) members[fill[centre ? (size_t)centre[i] : 0]++] = i;
		free(fill);
	}
	unsigned long long rs = seed;
	size_t done = 0, tries = 0;
	while (done < B) {
		if (++tries > 10 * B) {
			st = FP_FAIL(FP_ERR_DATA, "horizon bootstrap: too many resamples without cases or controls at t");
			goto fail;
		}
		size_t q = 0;
		for (size_t c = 0; c < nc; c++) {
			size_t m = start[c + 1] - start[c];
			for (size_t j = 0; j < m; j++, q++) {
				size_t r = members[start[c] + uniform(&rs, m)];
				bt[q] = time[r];
				be[q] = event[r];
				br[q] = risk[r];
			}
		}
		struct fp_horizon_result h;
		FP_CHECK(st, fp_validate_horizon(bt, be, br, n, t, &h));
		if (!isfinite(h.auc) || !isfinite(h.ipa) || !isfinite(h.oe)) continue;
		rep[done] = h.auc;
		rep[B + done] = h.brier;
		rep[2 * B + done] = h.ipa;
		rep[3 * B + done] = h.oe;
		done++;
	}
	memset(out, 0, sizeof *out);
	out->replicates = B;
	double *lo[4] = {&out->auc_low, &out->brier_low, &out->ipa_low, &out->oe_low};
	double *hi[4] = {&out->auc_high, &out->brier_high, &out->ipa_high, &out->oe_high};
	for (int s = 0; s < 4; s++) {
		FP_CHECK(st, fp_validate_quantile7(rep + (size_t)s * B, B, 0.025, lo[s]));
		FP_CHECK(st, fp_validate_quantile7(rep + (size_t)s * B, B, 0.975, hi[s]));
	}
fail:
	free(bt);
	free(br);
	free(be);
	free(rep);
	free(members);
	free(start);
	return st;
}
