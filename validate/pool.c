/*
 * pool.c: the aggregator's side of fp_pool.h, and the site summaries that
 * need no access to a plan's internals (AUC grid, KM tables, calibration
 * sums). Every pooled value is a function of sums, so adding the sites'
 * summaries gives what the pooled rows would give.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_pool.h"
#include "validate_internal.h"

#define FP_Z975 1.959963984540054

enum fp_status fp_pool_cindex(const struct fp_pool_cindex_site *s, size_t k, struct fp_cindex_result *out)
{
	double u = 0, d = 0, uu = 0, uv = 0, vv = 0;
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < k; i++) {
		u += s[i].u;
		d += s[i].d;
		uu += s[i].suu;
		uv += s[i].suv;
		vv += s[i].svv;
		out->concordant += s[i].concordant;
		out->discordant += s[i].discordant;
		out->tied_x += s[i].tied_x;
		out->tied_y += s[i].tied_y;
		out->tied_xy += s[i].tied_xy;
		out->n += s[i].n;
		out->events += s[i].events;
	}
	if (!(d > 0)) return FP_FAIL(FP_ERR_DATA, "pooled concordance: no comparable pairs in %zu centres", k);
	double somer = u / d;
	out->c = 1 - (somer + 1) / 2;
	out->var = (uu - 2 * somer * uv + somer * somer * vv) / (4 * d * d);
	out->se = sqrt(out->var);
	return FP_OK;
}

enum fp_status fp_pool_auc_site(const unsigned char *label, const double *score, size_t n, const double *edges,
                                size_t ncell, double min_cell, double *cases, double *controls)
{
	if (ncell == 0) return FP_FAIL(FP_ERR_INVALID_ARG, "AUC grid has no cells");
	for (size_t j = 0; j < ncell; j++)
		if (!(edges[j] < edges[j + 1])) return FP_FAIL(FP_ERR_INVALID_ARG, "AUC grid edges must increase (edge %zu)", j + 1);
	FP_TRY(fp_vi_check_binary(label, n, "label"));
	FP_TRY(fp_vi_check_finite(score, n, "score"));
	memset(cases, 0, ncell * sizeof *cases);
	memset(controls, 0, ncell * sizeof *controls);
	for (size_t i = 0; i < n; i++) {
		if (score[i] < edges[0] || score[i] > edges[ncell])
			return FP_FAIL(FP_ERR_INVALID_ARG, "score: row %zu is %g, outside the grid [%g, %g]", i + 1, score[i], edges[0],
			               edges[ncell]);
		size_t lo = 0, hi = ncell; /* find j with edges[j] <= s < edges[j+1] */
		while (hi - lo > 1) {
			size_t mid = (lo + hi) / 2;
			if (score[i] >= edges[mid]) lo = mid; else hi = mid;
		}
		if (label[i]) cases[lo] += 1; else controls[lo] += 1;
	}
	for (size_t j = 0; j < ncell; j++) {
		double t = cases[j] + controls[j];
		if (t > 0 && t < min_cell)
			return FP_FAIL(FP_ERR_DATA, "AUC grid cell %zu [%g, %g) holds %g patients, fewer than the minimum %g: coarsen the shared grid",
			               j + 1, edges[j], edges[j + 1], t, min_cell);
	}
	return FP_OK;
}

enum fp_status fp_pool_auc(const double *cases, const double *controls, size_t ncell, struct fp_auc_result *out)
{
	double m = 0, c = 0;
	for (size_t j = 0; j < ncell; j++) {
		m += cases[j];
		c += controls[j];
	}
	if (m == 0 || c == 0) return FP_FAIL(FP_ERR_DATA, "pooled AUC needs cases and controls: %g and %g", m, c);
	/* placements are constant within a cell */
	double below = 0, above = m, auc = 0;
	for (size_t j = 0; j < ncell; j++) {
		above -= cases[j];
		auc += cases[j] * (below + 0.5 * controls[j]) / c;
		below += controls[j];
	}
	auc /= m;
	double s10 = 0, s01 = 0;
	below = 0;
	above = m;
	for (size_t j = 0; j < ncell; j++) {
		above -= cases[j];
		double v10 = (below + 0.5 * controls[j]) / c, v01 = (above + 0.5 * cases[j]) / m;
		s10 += cases[j] * (v10 - auc) * (v10 - auc);
		s01 += controls[j] * (v01 - auc) * (v01 - auc);
		below += controls[j];
	}
	memset(out, 0, sizeof *out);
	out->n = (size_t)(m + c);
	out->cases = (size_t)m;
	out->controls = (size_t)c;
	out->auc = auc;
	out->var = (m > 1 && c > 1) ? s10 / (m - 1) / m + s01 / (c - 1) / c : NAN;
	out->se = sqrt(out->var);
	out->ci_low = fmax(0.0, auc - FP_Z975 * out->se);
	out->ci_high = fmin(1.0, auc + FP_Z975 * out->se);
	return FP_OK;
}

void fp_pool_km_table_close(struct fp_pool_km_table *t)
{
	if (!t) return;
	free(t->time);
	free(t->events);
	free(t->censored);
	memset(t, 0, sizeof *t);
}

enum fp_status fp_pool_km_site(const double *time, const unsigned char *event, size_t n, double min_cell,
                               struct fp_pool_km_table *out)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	memset(out, 0, sizeof *out);
	FP_TRY(fp_vi_check_finite(time, n, "time"));
	FP_TRY(fp_vi_check_binary(event, n, "event"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *k, (void **)&k, "KM table order"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *out->time, (void **)&out->time, "KM table"));
	FP_CHECK(st, fp_calloc_array(n ? n : 1, sizeof *out->events, (void **)&out->events, "KM table"));
	FP_CHECK(st, fp_calloc_array(n ? n : 1, sizeof *out->censored, (void **)&out->censored, "KM table"));
	for (size_t i = 0; i < n; i++) {
		k[i].key = time[i];
		k[i].idx = i;
	}
	qsort(k, n, sizeof *k, fp_vi_cmp_keyed);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || k[i].key != k[i - 1].key) out->time[out->rows++] = k[i].key;
		if (event[k[i].idx]) out->events[out->rows - 1] += 1; else out->censored[out->rows - 1] += 1;
	}
	if (min_cell > 1) {
		/* carry small rows forward into the next time */
		size_t w = 0;
		double ce = 0, cc = 0;
		for (size_t r = 0; r < out->rows; r++) {
			ce += out->events[r];
			cc += out->censored[r];
			if (ce + cc >= min_cell) {
				out->time[w] = out->time[r];
				out->events[w] = ce;
				out->censored[w] = cc;
				w++;
				ce = cc = 0;
			}
		}
		if (ce + cc > 0) {
			if (w == 0) {
				st = FP_FAIL(FP_ERR_DATA, "KM table: %zu patients, fewer than the minimum cell %g", n, min_cell);
				goto fail;
			}
			out->events[w - 1] += ce; /* the last few join the previous row */
			out->censored[w - 1] += cc;
		}
		out->rows = w;
	}
	free(k);
	return FP_OK;
fail:
	free(k);
	fp_pool_km_table_close(out);
	return st;
}

enum fp_status fp_pool_km(const struct fp_pool_km_table *tables, size_t k, const double *at, size_t n_at,
                          struct fp_km_point *out)
{
	enum fp_status st = FP_OK;
	size_t total = 0;
	double *t = NULL;
	unsigned char *e = NULL;
	/* Expanding the merged table back to (time, event) rows reuses the one
	 * KM routine, so pooled and single-site numbers cannot drift apart. */
	/* tables may come from other sites: counts must be whole, non-negative
	 * and, in all, below a documented limit before anything is allocated */
	double sum = 0;
	for (size_t s = 0; s < k; s++)
		for (size_t r = 0; r < tables[s].rows; r++) {
			double ne = tables[s].events[r], nc = tables[s].censored[r];
			if (!(ne >= 0 && nc >= 0 && ne == floor(ne) && nc == floor(nc)) || !isfinite(tables[s].time[r]))
				return FP_FAIL(FP_ERR_FORMAT, "KM table %zu row %zu: counts must be whole and >= 0 (%g, %g)", s + 1, r + 1, ne,
				               nc);
			sum += ne + nc;
		}
	if (sum > FP_POOL_MAX_ROWS)
		return FP_FAIL(FP_ERR_LIMIT, "pooled KM: %g patients, more than the limit %g", sum, (double)FP_POOL_MAX_ROWS);
	total = (size_t)sum;
	FP_CHECK(st, fp_alloc_array(total ? total : 1, sizeof *t, (void **)&t, "pooled KM"));
	FP_CHECK(st, fp_alloc_array(total ? total : 1, 1, (void **)&e, "pooled KM"));
	size_t q = 0;
	for (size_t s = 0; s < k; s++)
		for (size_t r = 0; r < tables[s].rows; r++) {
			for (double j = 0; j < tables[s].events[r]; j++, q++) t[q] = tables[s].time[r], e[q] = 1;
			for (double j = 0; j < tables[s].censored[r]; j++, q++) t[q] = tables[s].time[r], e[q] = 0;
		}
	FP_CHECK(st, fp_validate_km(t, e, total, at, n_at, out));
fail:
	free(t);
	free(e);
	return st;
}

void fp_pool_calib_site(const unsigned char *y, const double *p, size_t n, struct fp_pool_calib_site *out)
{
	memset(out, 0, sizeof *out);
	out->n = (double)n;
	for (size_t i = 0; i < n; i++) {
		out->observed += y[i];
		out->expected += p[i];
		out->brier_sum += (p[i] - y[i]) * (p[i] - y[i]);
	}
}

/* ---- site summaries and their aggregation ------------------------------- */

static json_t *jarr(const double *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
	return a;
}

static int set_real(json_t *o, const char *k, double v)
{
	return json_object_set_new(o, k, isfinite(v) ? json_real(v) : json_null());
}

enum fp_status fp_pool_site_binary(const unsigned char *label, const double *prob, size_t n, const double *edges,
                                   size_t ncell, double min_cell, json_t *o)
{
	enum fp_status st = FP_OK;
	double *cases = NULL, *controls = NULL;
	FP_TRY(fp_vi_check_binary(label, n, "label"));
	FP_TRY(fp_vi_check_finite(prob, n, "prob"));
	if (edges && ncell > 0) {
		FP_CHECK(st, fp_alloc_array(ncell, sizeof *cases, (void **)&cases, "AUC grid"));
		FP_CHECK(st, fp_alloc_array(ncell, sizeof *controls, (void **)&controls, "AUC grid"));
		st = fp_pool_auc_site(label, prob, n, edges, ncell, min_cell, cases, controls);
		if (st == FP_OK) {
			json_t *g = json_object();
			json_object_set_new(g, "edges", jarr(edges, ncell + 1));
			json_object_set_new(g, "cases", jarr(cases, ncell));
			json_object_set_new(g, "controls", jarr(controls, ncell));
			json_object_set_new(o, "auc_grid", g);
		} else if (st == FP_ERR_DATA) {
			/* a small cell: the centre withholds its grid (and says why)
			 * rather than its whole evaluation; the pooled AUC counts it out */
			FP_WARN("site summary: AUC grid withheld: %s", fp_error_msg());
			json_object_set_new(o, "auc_grid_withheld", json_string(fp_error_msg()));
			fp_error_clear();
			st = FP_OK;
		} else {
			goto fail;
		}
	}
	/* calibration bins: tenths of the predicted probability; a bin of
	 * fewer than min_cell patients is withheld and only counted */
	double bn[10] = {0}, be[10] = {0}, bo[10] = {0}, withheld = 0;
	for (size_t i = 0; i < n; i++) {
		int b = (int)(prob[i] * 10);
		b = b < 0 ? 0 : b > 9 ? 9 : b;
		bn[b] += 1;
		be[b] += prob[i];
		bo[b] += label[i] == 1;
	}
	for (int b = 0; b < 10; b++)
		if (bn[b] > 0 && bn[b] < min_cell) {
			withheld += bn[b];
			bn[b] = be[b] = bo[b] = 0;
		}
	json_t *jb = json_object();
	json_object_set_new(jb, "n", jarr(bn, 10));
	json_object_set_new(jb, "expected", jarr(be, 10));
	json_object_set_new(jb, "observed", jarr(bo, 10));
	set_real(jb, "withheld", withheld);
	json_object_set_new(o, "calibration_bins", jb);
	struct fp_pool_calib_site cal;
	fp_pool_calib_site(label, prob, n, &cal);
	json_t *jc = json_object();
	set_real(jc, "n", cal.n);
	set_real(jc, "observed", cal.observed);
	set_real(jc, "expected", cal.expected);
	set_real(jc, "brier_sum", cal.brier_sum);
	json_object_set_new(o, "calibration", jc);
fail:
	free(cases);
	free(controls);
	return st;
}

enum fp_status fp_pool_site_summary(const struct fp_pool_site_input *in, json_t **out)
{
	enum fp_status st = FP_OK;
	json_t *o = json_object();
	struct fp_pool_km_table km = {0, NULL, NULL, NULL};
	*out = NULL;
	if (!o) return FP_FAIL(FP_ERR_NOMEM, "site summary");
	size_t events = 0;
	for (size_t i = 0; i < in->n; i++) events += in->event[i] == 1;
	json_object_set_new(o, "centre", json_string(in->centre ? in->centre : ""));
	json_object_set_new(o, "n", json_integer((json_int_t)in->n));
	json_object_set_new(o, "events", json_integer((json_int_t)events));
	struct fp_pool_cindex_site cs;
	if (fp_pool_cindex_site(in->time, in->event, in->risk, in->n, NULL, &cs) == FP_OK) {
		json_t *c = json_object();
		set_real(c, "u", cs.u);
		set_real(c, "d", cs.d);
		set_real(c, "suu", cs.suu);
		set_real(c, "suv", cs.suv);
		set_real(c, "svv", cs.svv);
		set_real(c, "concordant", cs.concordant);
		set_real(c, "discordant", cs.discordant);
		set_real(c, "tied_x", cs.tied_x);
		set_real(c, "tied_y", cs.tied_y);
		set_real(c, "tied_xy", cs.tied_xy);
		json_object_set_new(o, "cindex", c);
		struct fp_cindex_result one;
		if (fp_pool_cindex(&cs, 1, &one) == FP_OK) {
			set_real(o, "c", one.c);
			set_real(o, "c_se", one.se);
		}
	} else if (fp_error_last()->code != FP_ERR_DATA) {
		st = fp_error_last()->code;
		goto fail;
	}
	fp_error_clear();
	FP_CHECK(st, fp_pool_km_site(in->time, in->event, in->n, in->min_cell, &km));
	json_t *jk = json_object();
	json_object_set_new(jk, "time", jarr(km.time, km.rows));
	json_object_set_new(jk, "events", jarr(km.events, km.rows));
	json_object_set_new(jk, "censored", jarr(km.censored, km.rows));
	json_object_set_new(o, "km", jk);
	if (in->label && in->prob) FP_CHECK(st, fp_pool_site_binary(in->label, in->prob, in->n, in->grid_edges, in->grid_cells, in->min_cell, o));
	*out = o;
	o = NULL;
fail:
	json_decref(o);
	fp_pool_km_table_close(&km);
	return st;
}

static enum fp_status get_num(json_t *o, const char *key, const char *centre, double *v)
{
	json_t *x = json_object_get(o, key);
	if (!json_is_number(x)) return FP_FAIL(FP_ERR_FORMAT, "site summary %s: \"%s\" missing or not a number", centre, key);
	*v = json_number_value(x);
	return FP_OK;
}

/* Reads a numeric array of exactly n entries (n = 0: any length, returned). */
static enum fp_status get_arr(json_t *o, const char *key, const char *centre, double **v, size_t *n)
{
	json_t *a = json_object_get(o, key);
	if (!json_is_array(a)) return FP_FAIL(FP_ERR_FORMAT, "site summary %s: \"%s\" missing or not an array", centre, key);
	size_t m = json_array_size(a);
	if (*n && m != *n)
		return FP_FAIL(FP_ERR_FORMAT, "site summary %s: \"%s\" has %zu entries, expected %zu", centre, key, m, *n);
	FP_TRY(fp_alloc_array(m ? m : 1, sizeof **v, (void **)v, "site summary array"));
	for (size_t i = 0; i < m; i++) {
		json_t *x = json_array_get(a, i);
		if (!json_is_number(x)) {
			free(*v);
			*v = NULL;
			return FP_FAIL(FP_ERR_FORMAT, "site summary %s: \"%s\"[%zu] is not a number", centre, key, i);
		}
		(*v)[i] = json_number_value(x);
	}
	*n = m;
	return FP_OK;
}

enum fp_status fp_pool_aggregate(json_t *const *sites, size_t k, const double *at, size_t n_at, json_t **out)
{
	enum fp_status st = FP_OK;
	struct fp_pool_cindex_site *cs = NULL;
	struct fp_pool_km_table *km = NULL;
	double *cases = NULL, *controls = NULL, *edges0 = NULL, *cest = NULL, *cse = NULL;
	struct fp_km_point *pt = NULL;
	json_t *o = NULL;
	size_t ncs = 0, nkm = 0, ncell = 0, nmeta = 0, ngrid = 0, nwithheld = 0;
	double obs = 0, exp_ = 0, bsum = 0, ncal = 0;
	double bins_n[10] = {0}, bins_e[10] = {0}, bins_o[10] = {0}, bins_withheld = 0;
	int have_grid = 0, have_cal = 0, have_bins = 0;
	*out = NULL;
	if (k == 0) return FP_FAIL(FP_ERR_DATA, "no site summaries to pool");
	FP_CHECK(st, fp_calloc_array(k, sizeof *cs, (void **)&cs, "pooled C"));
	FP_CHECK(st, fp_calloc_array(k, sizeof *km, (void **)&km, "pooled KM"));
	FP_CHECK(st, fp_alloc_array(k, sizeof *cest, (void **)&cest, "meta"));
	FP_CHECK(st, fp_alloc_array(k, sizeof *cse, (void **)&cse, "meta"));
	for (size_t s = 0; s < k; s++) {
		json_t *site = sites[s], *c = json_object_get(site, "cindex"), *g = json_object_get(site, "auc_grid");
		json_t *cal = json_object_get(site, "calibration"), *jk = json_object_get(site, "km");
		const char *name = json_string_value(json_object_get(site, "centre"));
		if (!name) name = "?";
		if (c) {
			struct fp_pool_cindex_site *x = &cs[ncs];
			FP_CHECK(st, get_num(c, "u", name, &x->u));
			FP_CHECK(st, get_num(c, "d", name, &x->d));
			FP_CHECK(st, get_num(c, "suu", name, &x->suu));
			FP_CHECK(st, get_num(c, "suv", name, &x->suv));
			FP_CHECK(st, get_num(c, "svv", name, &x->svv));
			FP_CHECK(st, get_num(c, "concordant", name, &x->concordant));
			FP_CHECK(st, get_num(c, "discordant", name, &x->discordant));
			FP_CHECK(st, get_num(c, "tied_x", name, &x->tied_x));
			FP_CHECK(st, get_num(c, "tied_y", name, &x->tied_y));
			FP_CHECK(st, get_num(c, "tied_xy", name, &x->tied_xy));
			ncs++;
			double cv, sv;
			if (get_num(site, "c", name, &cv) == FP_OK && get_num(site, "c_se", name, &sv) == FP_OK && sv > 0 && cv > 0 &&
			    cv < 1) {
				cest[nmeta] = cv;
				cse[nmeta++] = sv;
			}
			fp_error_clear();
		}
		if (jk) {
			size_t rows = 0;
			FP_CHECK(st, get_arr(jk, "time", name, &km[nkm].time, &rows));
			km[nkm++].rows = rows; /* counted now so that cleanup frees it */
			FP_CHECK(st, get_arr(jk, "events", name, &km[nkm - 1].events, &rows));
			FP_CHECK(st, get_arr(jk, "censored", name, &km[nkm - 1].censored, &rows));
		}
		if (json_object_get(site, "auc_grid_withheld")) nwithheld++;
		if (g) {
			ngrid++;
			double *e = NULL, *ca = NULL, *co = NULL;
			size_t ne = have_grid ? ncell + 1 : 0, nc;
			FP_CHECK(st, get_arr(g, "edges", name, &e, &ne));
			if (!have_grid) {
				ncell = ne - 1;
				edges0 = e;
				FP_CHECK(st, fp_calloc_array(ncell ? ncell : 1, sizeof *cases, (void **)&cases, "pooled AUC"));
				FP_CHECK(st, fp_calloc_array(ncell ? ncell : 1, sizeof *controls, (void **)&controls, "pooled AUC"));
				have_grid = 1;
			} else {
				int same = 1;
				for (size_t j = 0; j <= ncell; j++) same &= e[j] == edges0[j];
				free(e);
				if (!same) {
					st = FP_FAIL(FP_ERR_DATA, "site summary %s: its AUC grid differs from the first site's", name);
					goto fail;
				}
			}
			nc = ncell;
			FP_CHECK(st, get_arr(g, "cases", name, &ca, &nc));
			st = get_arr(g, "controls", name, &co, &nc);
			if (st != FP_OK) {
				free(ca);
				goto fail;
			}
			for (size_t j = 0; j < ncell; j++) {
				cases[j] += ca[j];
				controls[j] += co[j];
			}
			free(ca);
			free(co);
		}
		json_t *jbins = json_object_get(site, "calibration_bins");
		if (jbins) {
			double *bn = NULL, *be = NULL, *bo = NULL, wh = 0;
			size_t ten = 10, ten2 = 10, ten3 = 10;
			enum fp_status s1 = get_arr(jbins, "n", name, &bn, &ten);
			enum fp_status s2 = s1 == FP_OK ? get_arr(jbins, "expected", name, &be, &ten2) : s1;
			enum fp_status s3 = s2 == FP_OK ? get_arr(jbins, "observed", name, &bo, &ten3) : s2;
			if (s3 == FP_OK) {
				for (int b = 0; b < 10; b++) {
					bins_n[b] += bn[b];
					bins_e[b] += be[b];
					bins_o[b] += bo[b];
				}
				if (get_num(jbins, "withheld", name, &wh) == FP_OK) bins_withheld += wh;
				have_bins = 1;
			}
			free(bn);
			free(be);
			free(bo);
			if (s3 != FP_OK) {
				st = s3;
				goto fail;
			}
			fp_error_clear();
		}
		if (cal) {
			double a, b, cc, d;
			FP_CHECK(st, get_num(cal, "n", name, &a));
			FP_CHECK(st, get_num(cal, "observed", name, &b));
			FP_CHECK(st, get_num(cal, "expected", name, &cc));
			FP_CHECK(st, get_num(cal, "brier_sum", name, &d));
			ncal += a, obs += b, exp_ += cc, bsum += d;
			have_cal = 1;
		}
	}
	o = json_object();
	json_object_set_new(o, "centres", json_integer((json_int_t)k));
	struct fp_cindex_result pc;
	if (ncs > 0 && fp_pool_cindex(cs, ncs, &pc) == FP_OK) {
		json_t *c = json_object();
		set_real(c, "c", pc.c);
		set_real(c, "se", pc.se);
		set_real(c, "concordant", pc.concordant);
		set_real(c, "discordant", pc.discordant);
		set_real(c, "tied_x", pc.tied_x);
		set_real(c, "tied_y", pc.tied_y);
		set_real(c, "tied_xy", pc.tied_xy);
		json_object_set_new(o, "cindex_stratified", c);
	}
	struct fp_meta_result mr;
	if (nmeta >= 2 && fp_validate_meta(cest, cse, nmeta, FP_META_LOGIT, &mr) == FP_OK) {
		json_t *m = json_object();
		json_object_set_new(m, "k", json_integer((json_int_t)mr.k));
		set_real(m, "estimate", mr.estimate);
		set_real(m, "ci_low", mr.ci_low);
		set_real(m, "ci_high", mr.ci_high);
		set_real(m, "pi_low", mr.pi_low);
		set_real(m, "pi_high", mr.pi_high);
		set_real(m, "tau2", mr.tau2);
		set_real(m, "i2", mr.i2);
		json_object_set_new(o, "cindex_random_effects", m);
	}
	fp_error_clear();
	struct fp_auc_result ar;
	if (have_grid && fp_pool_auc(cases, controls, ncell, &ar) == FP_OK) {
		json_t *a = json_object();
		set_real(a, "auc", ar.auc);
		set_real(a, "se", ar.se);
		set_real(a, "ci_low", ar.ci_low);
		set_real(a, "ci_high", ar.ci_high);
		json_object_set_new(a, "cases", json_integer((json_int_t)ar.cases));
		json_object_set_new(a, "controls", json_integer((json_int_t)ar.controls));
		json_object_set_new(a, "centres", json_integer((json_int_t)ngrid));
		json_object_set_new(a, "centres_withheld", json_integer((json_int_t)nwithheld));
		json_object_set_new(o, "auc_grid", a);
	}
	fp_error_clear();
	if (nkm > 0 && n_at > 0) {
		FP_CHECK(st, fp_alloc_array(n_at, sizeof *pt, (void **)&pt, "pooled KM"));
		FP_CHECK(st, fp_pool_km(km, nkm, at, n_at, pt));
		json_t *jt = json_array(), *js = json_array(), *je = json_array(), *jn = json_array();
		for (size_t j = 0; j < n_at; j++) {
			json_array_append_new(jt, json_real(pt[j].time));
			json_array_append_new(js, json_real(pt[j].survival));
			json_array_append_new(je, isfinite(pt[j].se) ? json_real(pt[j].se) : json_null());
			json_array_append_new(jn, json_integer((json_int_t)pt[j].n_risk));
		}
		json_t *kk = json_object();
		json_object_set_new(kk, "times", jt);
		json_object_set_new(kk, "survival", js);
		json_object_set_new(kk, "se", je);
		json_object_set_new(kk, "n_risk", jn);
		json_object_set_new(o, "km", kk);
	}
	if (have_cal && ncal > 0 && obs > 0) {
		json_t *c = json_object();
		set_real(c, "oe", exp_ / obs);
		set_real(c, "brier", bsum / ncal);
		double yb = obs / ncal;
		set_real(c, "scaled_brier", 1 - (bsum / ncal) / (yb * (1 - yb)));
		json_object_set_new(o, "calibration", c);
	}
	if (have_bins) {
		/* grouped calibration: mean predicted and observed proportion per tenth */
		json_t *b = json_object(), *jn = json_array(), *jp = json_array(), *jo = json_array();
		for (int i = 0; i < 10; i++) {
			json_array_append_new(jn, json_real(bins_n[i]));
			json_array_append_new(jp, bins_n[i] > 0 ? json_real(bins_e[i] / bins_n[i]) : json_null());
			json_array_append_new(jo, bins_n[i] > 0 ? json_real(bins_o[i] / bins_n[i]) : json_null());
		}
		json_object_set_new(b, "n", jn);
		json_object_set_new(b, "mean_predicted", jp);
		json_object_set_new(b, "observed", jo);
		set_real(b, "withheld", bins_withheld);
		json_object_set_new(o, "calibration_bins", b);
	}
	*out = o;
	o = NULL;
fail:
	json_decref(o);
	free(cs);
	for (size_t s = 0; s < nkm; s++) fp_pool_km_table_close(&km[s]);
	free(km);
	free(cases);
	free(controls);
	free(edges0);
	free(cest);
	free(cse);
	free(pt);
	return st;
}
