/*
 * concordance.c: Harrell's and Uno's C with survival's counts and its
 * infinitesimal-jackknife variance, exactly as survival::concordance
 * (survival 3.5, concordancefit + the C routine concordance3), with
 * reverse = TRUE.
 *
 * Rows are sorted once per plan: by stratum, then time descending, censored
 * before deaths at a tied time (a censored row at t is at risk for a death
 * at t), then score ascending. Walking that order, each row enters a
 * balanced binary tree over its stratum's distinct scores; at each death the
 * tree gives the weight at risk with a higher, lower and equal score, i.e.
 * the discordant, concordant and tied-on-score pairs. A second tree holds the
 * deaths (weighted by the time weight) and gives each row's influence.
 * The tree layout is survival's btree(), so the sums are added in the same
 * order as R's and the counts agree to the last bit.
 *
 * Bootstrap replicates reuse the sort: a replicate is a weight vector
 * (multiplicities); rows of weight 0 are skipped as if absent.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_pool.h"
#include "fp_validate.h"
#include "validate_internal.h"

struct fp_cindex_plan {
	size_t n;
	double *time;
	unsigned char *event;
	size_t *ord;        /* rows in walk order, strata contiguous */
	size_t *seg;        /* nseg + 1 segment starts in ord */
	size_t nseg;
	int *node;          /* per row: its score's node in its stratum's tree */
	size_t max_tree;
	/* workspace, sized once */
	double *tree;       /* 4 * max_tree: node and subtree sums, all rows and deaths */
	double *infl;       /* 3 * n: influence on concordant, discordant, tied.x (R's order) */
	double *timewt;     /* per death time of a stratum, in walk order */
	double *gwork;      /* 2 * n: per time group, censoring totals for Uno's G */
};

struct sort_ctx {
	const double *time, *score;
	const unsigned char *event;
	const int *strata;
};

static int cmp_walk(const void *a, const void *b, void *arg)
{
	const struct sort_ctx *c = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int si = c->strata ? c->strata[i] : 0, sj = c->strata ? c->strata[j] : 0;
	if (si != sj) return si < sj ? -1 : 1;
	if (c->time[i] != c->time[j]) return c->time[i] > c->time[j] ? -1 : 1;
	if (c->event[i] != c->event[j]) return c->event[i] < c->event[j] ? -1 : 1;
	if (c->score[i] != c->score[j]) return c->score[i] < c->score[j] ? -1 : 1;
	return (i > j) - (i < j);
}

/* survival's btree(): the in-order position of each of n sorted values in a
 * balanced tree stored as an array (children of k at 2k+1 and 2k+2). */
static void btree_fill(size_t n, int id, size_t power, int *out, size_t *pos)
{
	if (n == 1) {
		out[(*pos)++] = id;
	} else if (n == 2) {
		out[(*pos)++] = 2 * id + 1;
		out[(*pos)++] = id;
	} else if (n == 3) {
		out[(*pos)++] = 2 * id + 1;
		out[(*pos)++] = id;
		out[(*pos)++] = 2 * id + 2;
	} else {
		size_t nleft = n == power * 2 ? power : (power - 1 < n - power / 2 ? power - 1 : n - power / 2);
		btree_fill(nleft, 2 * id + 1, power / 2, out, pos);
		out[(*pos)++] = id;
		btree_fill(n - (nleft + 1), 2 * id + 2, power / 2, out, pos);
	}
}

static void btree_layout(size_t n, int *out)
{
	size_t pos = 0, power = 1;
	if (n == 1) {
		out[0] = 0;
		return;
	}
	while (power * 2 <= n - 1) power *= 2; /* 2^floor(log2(n - 1)) */
	btree_fill(n, 0, power, out, &pos);
}

/* Weight above, below and equal to node `k` (R's walkup). */
static void tree_walk(const double *nwt, const double *twt, int k, int ntree, double sums[3])
{
	sums[0] = 0; /* greater */
	sums[1] = 0; /* less */
	sums[2] = nwt[k];
	int j = 2 * k + 2;
	if (j < ntree) sums[0] += twt[j];
	if (j <= ntree) sums[1] += twt[j - 1];
	while (k > 0) {
		int parent = (k - 1) / 2;
		if (k % 2 == 1) sums[0] += twt[parent] - twt[k];
		else sums[1] += twt[parent] - twt[k];
		k = parent;
	}
}

static void tree_add(double *nwt, double *twt, int k, double w)
{
	nwt[k] += w;
	while (k > 0) {
		twt[k] += w;
		k = (k - 1) / 2;
	}
	twt[0] += w;
}

void fp_cindex_plan_destroy(struct fp_cindex_plan *p)
{
	if (!p) return;
	free(p->time);
	free(p->event);
	free(p->ord);
	free(p->seg);
	free(p->node);
	free(p->tree);
	free(p->infl);
	free(p->timewt);
	free(p->gwork);
	free(p);
}

static enum fp_status check_inputs(const double *time, const unsigned char *event,
                                   const double *score, size_t n)
{
	FP_TRY(fp_vi_check_finite(time, n, "time"));
	FP_TRY(fp_vi_check_finite(score, n, "score"));
	FP_TRY(fp_vi_check_binary(event, n, "event"));
	for (size_t i = 0; i < n; i++)
		if (time[i] < 0) return FP_FAIL(FP_ERR_INVALID_ARG, "time: row %zu is %g (must be >= 0)", i + 1, time[i]);
	return FP_OK;
}

/* Assigns each row of segment [a, b) of ord its tree node by score rank. */
static enum fp_status plan_nodes(struct fp_cindex_plan *p, const double *score, size_t a, size_t b)
{
	enum fp_status st = FP_OK;
	size_t m = b - a, nu = 0;
	struct fp_vi_keyed *k = NULL;
	int *layout = NULL;
	FP_CHECK(st, fp_alloc_array(m, sizeof *k, (void **)&k, "concordance ranks"));
	FP_CHECK(st, fp_alloc_array(m, sizeof *layout, (void **)&layout, "concordance tree"));
	for (size_t i = 0; i < m; i++) {
		k[i].key = score[p->ord[a + i]];
		k[i].idx = p->ord[a + i];
	}
	qsort(k, m, sizeof *k, fp_vi_cmp_keyed);
	for (size_t i = 0; i < m; i++)
		if (i == 0 || k[i].key != k[i - 1].key) nu++;
	btree_layout(nu, layout);
	for (size_t i = 0, r = 0; i < m; i++) {
		if (i > 0 && k[i].key != k[i - 1].key) r++;
		p->node[k[i].idx] = layout[r];
	}
	if (nu > p->max_tree) p->max_tree = nu;
fail:
	free(k);
	free(layout);
	return st;
}

enum fp_status fp_cindex_plan_create(const double *time, const unsigned char *event,
                                     const double *score, const int *strata, size_t n,
                                     struct fp_cindex_plan **out)
{
	enum fp_status st = FP_OK;
	struct fp_cindex_plan *p = NULL;
	*out = NULL;
	if (n < 2) return FP_FAIL(FP_ERR_DATA, "concordance needs at least 2 rows, got %zu", n);
	FP_TRY(check_inputs(time, event, score, n));
	p = calloc(1, sizeof *p);
	if (!p) return FP_FAIL(FP_ERR_NOMEM, "concordance plan");
	p->n = n;
	FP_CHECK(st, fp_alloc_array(n, sizeof *p->time, (void **)&p->time, "concordance times"));
	FP_CHECK(st, fp_alloc_array(n, 1, (void **)&p->event, "concordance events"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *p->ord, (void **)&p->ord, "concordance order"));
	FP_CHECK(st, fp_alloc_array(n + 1, sizeof *p->seg, (void **)&p->seg, "concordance strata"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *p->node, (void **)&p->node, "concordance nodes"));
	FP_CHECK(st, fp_calloc_array(3 * n, sizeof *p->infl, (void **)&p->infl, "concordance influence"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *p->timewt, (void **)&p->timewt, "concordance time weights"));
	FP_CHECK(st, fp_alloc_array(2 * n, sizeof *p->gwork, (void **)&p->gwork, "concordance censoring KM"));
	memcpy(p->time, time, n * sizeof *time);
	memcpy(p->event, event, n);
	for (size_t i = 0; i < n; i++) p->ord[i] = i;
	struct sort_ctx ctx = {time, score, event, strata};
	qsort_r(p->ord, n, sizeof *p->ord, cmp_walk, &ctx);
	p->nseg = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || (strata && strata[p->ord[i]] != strata[p->ord[i - 1]])) p->seg[p->nseg++] = i;
	p->seg[p->nseg] = n;
	for (size_t s = 0; s < p->nseg; s++) FP_CHECK(st, plan_nodes(p, score, p->seg[s], p->seg[s + 1]));
	FP_CHECK(st, fp_alloc_array(4 * p->max_tree, sizeof *p->tree, (void **)&p->tree, "concordance trees"));
	*out = p;
	return FP_OK;
fail:
	fp_cindex_plan_destroy(p);
	return st;
}

/* Time weights of the death times of segment [a, b), in walk order (latest
 * first): 1 (Harrell) or 1/G(t-)^2 (Uno), G the censoring KM with deaths
 * before censorings at tied times (survival's fastkm1); 0 above tau.
 * p->timewt first holds the times, then their weights. */
static void segment_timewt(struct fp_cindex_plan *p, const double *w, size_t a, size_t b,
                             const struct fp_cindex_options *opt)
{
	size_t nd = 0;
	double events = 0; /* weighted: a multiplicity of 2 counts as two rows, as in a resample */
	for (size_t i = a; i < b; i++) {
		size_t r = p->ord[i];
		if (w[r] > 0 && p->event[r]) events += w[r];
	}
	int uno = opt->uno && events >= 2; /* survival falls back to "n" below 2 events */
	/* Descending pass: death times in walk order, and for each time group the
	 * running weight through its censored rows (R's ncount) and their weight. */
	double run = 0;
	/* per time group: R's ncount through its censored rows, and the
	 * censored weight, negated minus one when the group holds a death */
	double *cens_n = p->gwork, *cens_w = p->gwork + p->n;
	size_t ngroups = 0;
	for (size_t i = a; i < b;) {
		size_t j = i;
		double cw = 0, dw = 0, cum_c = run;
		while (j < b && p->time[p->ord[j]] == p->time[p->ord[i]]) {
			size_t r = p->ord[j];
			if (w[r] > 0) {
				run += w[r];
				if (p->event[r]) dw += w[r];
				else {
					cw += w[r];
					cum_c = run;
				}
			}
			j++;
		}
		if (dw > 0) p->timewt[nd++] = p->time[p->ord[i]];
		if (uno) {
			cens_n[ngroups] = cum_c;
			cens_w[ngroups] = dw > 0 ? -cw - 1 : cw;
		}
		ngroups++;
		i = j;
	}
	if (uno) {
		/* Ascending pass: G(t-) at each death time, then censorings at t. */
		double g = 1;
		size_t d = nd;
		for (size_t q = ngroups; q-- > 0;) {
			int has_death = cens_w[q] < 0;
			double cw = has_death ? -cens_w[q] - 1 : cens_w[q];
			if (has_death) {
				d--;
				double t = p->timewt[d];
				p->timewt[d] = (opt->tau > 0 && t > opt->tau) ? 0 : 1 / (g * g);
			}
			if (cw > 0) g = g * (cens_n[q] - cw) / cens_n[q];
		}
	} else {
		for (size_t d = 0; d < nd; d++)
			p->timewt[d] = (opt->tau > 0 && p->timewt[d] > opt->tau) ? 0 : 1;
	}
}

enum fp_status fp_cindex_plan_run(struct fp_cindex_plan *p, const double *weight,
                                  const struct fp_cindex_options *opt, int with_var,
                                  struct fp_cindex_result *out)
{
	enum fp_status st = FP_OK;
	double *ones = NULL;
	const double *w = weight;
	double count[5] = {0, 0, 0, 0, 0}; /* R's order before reverse: greater, less, tied.x, tied.y, tied.xy */
	size_t events = 0, nact = 0;
	struct fp_cindex_options none = {0, 0};
	if (!opt) opt = &none;
	if (!w) {
		FP_CHECK(st, fp_alloc_array(p->n, sizeof *ones, (void **)&ones, "concordance weights"));
		for (size_t i = 0; i < p->n; i++) ones[i] = 1;
		w = ones;
	} else {
		for (size_t i = 0; i < p->n; i++)
			if (!(w[i] >= 0) || !isfinite(w[i])) {
				st = FP_FAIL(FP_ERR_INVALID_ARG, "weight: row %zu is %g (must be finite and >= 0)", i + 1, w[i]);
				goto fail;
			}
	}
	double *i0 = p->infl, *i1 = p->infl + p->n, *i2 = p->infl + 2 * p->n;
	memset(p->infl, 0, 3 * p->n * sizeof *p->infl);

	for (size_t s = 0; s < p->nseg; s++) {
		size_t a = p->seg[s], b = p->seg[s + 1];
		size_t seg_events = 0;
		for (size_t i = a; i < b; i++) {
			size_t r = p->ord[i];
			if (w[r] > 0) {
				nact++;
				if (p->event[r]) seg_events++;
			}
		}
		events += seg_events;
		if (seg_events == 0) continue;
		int ntree = 0;
		for (size_t i = a; i < b; i++)
			if (p->node[p->ord[i]] >= ntree) ntree = p->node[p->ord[i]] + 1;
		segment_timewt(p, w, a, b, opt);
		double *nwt = p->tree, *twt = nwt + ntree, *dnwt = twt + ntree, *dtwt = dnwt + ntree;
		memset(p->tree, 0, 4 * (size_t)ntree * sizeof *p->tree);
		size_t u = 0;
		double sums[3];
		for (size_t i = a; i < b;) {
			size_t r = p->ord[i];
			if (!(w[r] > 0)) {
				i++;
				continue;
			}
			if (!p->event[r]) {
				tree_walk(dnwt, dtwt, p->node[r], ntree, sums);
				i0[r] -= sums[1];
				i1[r] -= sums[0];
				i2[r] -= sums[2];
				tree_add(nwt, twt, p->node[r], w[r]);
				i++;
				continue;
			}
			size_t j = i;
			while (j < b && p->time[p->ord[j]] == p->time[r]) j++;
			double tw = p->timewt[u++];
			double dwt = 0, dwt2 = 0;
			int xsave = p->node[r];
			for (size_t q = i; q < j; q++) {
				size_t rr = p->ord[q];
				if (!(w[rr] > 0)) continue;
				count[3] += w[rr] * dwt * tw;
				dwt += w[rr];
				if (p->node[rr] != xsave) {
					dwt2 = 0;
					xsave = p->node[rr];
				}
				count[4] += w[rr] * dwt2 * tw;
				dwt2 += w[rr];
				tree_walk(nwt, twt, p->node[rr], ntree, sums);
				for (int c = 0; c < 3; c++) count[c] += w[rr] * sums[c] * tw;
				i0[rr] += sums[0] * tw;
				i1[rr] += sums[1] * tw;
				i2[rr] += sums[2] * tw;
				tree_add(dnwt, dtwt, p->node[rr], tw * w[rr]);
			}
			for (size_t q = i; q < j; q++) {
				size_t rr = p->ord[q];
				if (!(w[rr] > 0)) continue;
				tree_walk(dnwt, dtwt, p->node[rr], ntree, sums);
				i0[rr] -= sums[1];
				i1[rr] -= sums[0];
				i2[rr] -= sums[2];
				tree_add(nwt, twt, p->node[rr], w[rr]);
			}
			i = j;
		}
		if (with_var) {
			for (size_t i = a; i < b; i++) {
				size_t r = p->ord[i];
				if (!(w[r] > 0)) continue;
				tree_walk(dnwt, dtwt, p->node[r], ntree, sums);
				i0[r] += sums[1];
				i1[r] += sums[0];
				i2[r] += sums[2];
			}
		}
	}
	count[3] -= count[4];
	memset(out, 0, sizeof *out);
	out->n = nact;
	out->events = events;
	double npair = count[0] + count[1] + count[2];
	if (events == 0) {
		st = FP_FAIL(FP_ERR_DATA, "concordance needs events: none among %zu rows", nact);
		goto fail;
	}
	if (!(npair > 0)) {
		st = FP_FAIL(FP_ERR_DATA, "concordance: no comparable pairs (%zu rows, %zu events%s)", nact, events,
		             opt->tau > 0 ? ", before tau" : "");
		goto fail;
	}
	double somer = (count[0] - count[1]) / npair;
	/* reverse = TRUE: a higher score means an earlier event */
	out->c = 1 - (somer + 1) / 2;
	out->concordant = count[1];
	out->discordant = count[0];
	out->tied_x = count[2];
	out->tied_y = count[3];
	out->tied_xy = count[4];
	out->var = NAN;
	out->se = NAN;
	if (with_var) {
		double v = 0;
		for (size_t r = 0; r < p->n; r++) {
			double d = w[r] * ((i0[r] - i1[r]) / npair - (somer / npair) * (i0[r] + i1[r] + i2[r]));
			v += d * d;
		}
		out->var = v / 4;
		out->se = sqrt(out->var);
	}
fail:
	free(ones);
	return st;
}

enum fp_status fp_validate_cindex(const double *time, const unsigned char *event,
                                  const double *score, const int *strata, size_t n,
                                  const struct fp_cindex_options *opt,
                                  struct fp_cindex_result *out)
{
	struct fp_cindex_plan *p = NULL;
	FP_TRY(fp_cindex_plan_create(time, event, score, strata, n, &p));
	enum fp_status st = fp_cindex_plan_run(p, NULL, opt, 1, out);
	fp_cindex_plan_destroy(p);
	return st;
}

enum fp_status fp_pool_cindex_site(const double *time, const unsigned char *event, const double *score, size_t n,
                                   const struct fp_cindex_options *opt, struct fp_pool_cindex_site *out)
{
	struct fp_cindex_plan *p = NULL;
	struct fp_cindex_result r;
	FP_TRY(fp_cindex_plan_create(time, event, score, NULL, n, &p));
	enum fp_status st = fp_cindex_plan_run(p, NULL, opt, 1, &r);
	if (st == FP_OK) {
		const double *i0 = p->infl, *i1 = p->infl + n, *i2 = p->infl + 2 * n;
		memset(out, 0, sizeof *out);
		for (size_t i = 0; i < n; i++) {
			double u = i0[i] - i1[i], v = i0[i] + i1[i] + i2[i];
			out->suu += u * u;
			out->suv += u * v;
			out->svv += v * v;
		}
		out->u = r.discordant - r.concordant;
		out->d = r.concordant + r.discordant + r.tied_x;
		out->concordant = r.concordant;
		out->discordant = r.discordant;
		out->tied_x = r.tied_x;
		out->tied_y = r.tied_y;
		out->tied_xy = r.tied_xy;
		out->n = r.n;
		out->events = r.events;
	}
	fp_cindex_plan_destroy(p);
	return st;
}
