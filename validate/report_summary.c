/*
 * report_summary.c: the report's federated-summaries mode (fp_report.h,
 * mode A). Reads pooled.json and the centres' summaries, re-pools them with
 * fp_pool_aggregate, and draws the figures from counts only: ROC from the
 * shared grid's cells, calibration from tenths of the prediction, KM curves
 * from the merged (weighted) event tables. The summaries are owned by the
 * report (struct centre.summary) and released with it.
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_pool.h"
#include "report_internal.h"
#include "validate_internal.h"

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jnumber(json_t *o, const char *key, double *v)
{
	json_t *x = json_object_get(o, key);
	if (!json_is_number(x)) return 0;
	*v = json_number_value(x);
	return isfinite(*v);
}

/* Site summaries: every *.json but pooled.json, report.json and pull.json
 * (`fedpath report pull` writes that manifest last, beside the summaries). */
static int site_file(const struct dirent *d)
{
	size_t len = strlen(d->d_name);
	return d->d_name[0] != '.' && len > 5 && strcmp(d->d_name + len - 5, ".json") == 0 &&
	       strcmp(d->d_name, "pooled.json") != 0 && strcmp(d->d_name, "report.json") != 0 &&
	       strcmp(d->d_name, "pull.json") != 0;
}

/* The centre's own metrics from its summary; absent numbers leave *_ok 0. */
static void centre_metrics(struct centre *c)
{
	json_t *m = json_object_get(c->summary, "metrics"), *t1 = json_object_get(c->summary, "table1");
	c->c_ok = jnumber(m, "c", &c->c.c) && jnumber(m, "c_se", &c->c.se);
	c->h_ok = jnumber(m, "auc_t", &c->h.auc) && jnumber(m, "brier_t", &c->h.brier) && jnumber(m, "ipa_t", &c->h.ipa) &&
	          jnumber(m, "oe_t", &c->h.oe);
	c->auc_ok = jnumber(m, "auc", &c->auc.auc) && jnumber(m, "auc_low", &c->auc.ci_low) &&
	            jnumber(m, "auc_high", &c->auc.ci_high);
	if (c->auc_ok && !jnumber(m, "auc_se", &c->auc.se)) c->auc.se = NAN;
	c->cal_ok = jnumber(m, "citl", &c->cal.citl) && jnumber(m, "slope", &c->cal.slope) && jnumber(m, "ici", &c->cal.ici);
	if (!jnumber(t1, "median_time", &c->median_time)) c->median_time = NAN;
	if (!jnumber(t1, "mean_risk", &c->mean_risk)) c->mean_risk = NAN;
}

/* The values every centre must share, checked against the first centre. */
static enum fp_status same_settings(struct report *r, const struct centre *c, const char *file, int first)
{
	double h = 0, cuts[2];
	json_t *jc = json_object_get(json_object_get(c->summary, "km_risk_groups"), "cuts");
	if (!jnumber(c->summary, "horizon", &h) || !json_is_array(jc) || json_array_size(jc) != 2)
		return FP_FAIL(FP_ERR_FORMAT, "%s: \"horizon\" or \"km_risk_groups.cuts\" missing", file);
	cuts[0] = json_number_value(json_array_get(jc, 0));
	cuts[1] = json_number_value(json_array_get(jc, 1));
	const char *mh = jstr(c->summary, "model_hash");
	double mc = 0;
	if (jnumber(c->summary, "min_cell", &mc) && mc > r->min_cell) r->min_cell = mc;
	if (first) {
		r->horizon = h;
		r->risk_cuts[0] = cuts[0];
		r->risk_cuts[1] = cuts[1];
		r->have_cuts = 1;
		if (!jnumber(c->summary, "tau", &r->tau)) r->tau = h;
		if (mh && !r->model_hash) r->model_hash = mh;
		return FP_OK;
	}
	if (h != r->horizon)
		return FP_FAIL(FP_ERR_DATA, "%s: horizon %g, but the first centre's is %g", file, h, r->horizon);
	if (cuts[0] != r->risk_cuts[0] || cuts[1] != r->risk_cuts[1])
		return FP_FAIL(FP_ERR_DATA, "%s: risk cuts %g, %g differ from the first centre's %g, %g", file, cuts[0], cuts[1],
		               r->risk_cuts[0], r->risk_cuts[1]);
	if (mh && r->model_hash && strcmp(mh, r->model_hash) != 0)
		return FP_FAIL(FP_ERR_DATA, "%s: evaluated model %.16s, not the report's model %.16s", file, mh, r->model_hash);
	return FP_OK;
}

enum fp_status fp_rep_load_summaries(struct report *r, const char *dir)
{
	enum fp_status st = FP_OK;
	struct dirent **list = NULL;
	char path[4200];
	json_t *sites[FP_REPORT_MAX_CENTRES];
	snprintf(path, sizeof path, "%s/pooled.json", dir);
	FP_TRY(fp_json_load_file(path, &r->manifest));
	if (!json_is_object(r->manifest)) return FP_FAIL(FP_ERR_FORMAT, "%s: not a JSON object", path);
	r->model_hash = jstr(r->manifest, "model_hash");
	int nf = scandir(dir, &list, site_file, alphasort);
	if (nf < 0) return FP_FAIL(FP_ERR_IO, "%s: cannot list the site summaries", dir);
	if (nf == 0) {
		st = FP_FAIL(FP_ERR_DATA, "%s: pooled.json but no site summary (*.json)", dir);
		goto fail;
	}
	if (nf > FP_REPORT_MAX_CENTRES) {
		st = FP_FAIL(FP_ERR_LIMIT, "%s: %d site summaries, more than %d", dir, nf, FP_REPORT_MAX_CENTRES);
		goto fail;
	}
	for (int f = 0; f < nf; f++) {
		struct centre *c = &r->centre[r->ncentre];
		snprintf(path, sizeof path, "%s/%s", dir, list[f]->d_name);
		FP_CHECK(st, fp_json_load_file(path, &c->summary));
		r->ncentre++;
		const char *schema = jstr(c->summary, "schema");
		if (!schema || strcmp(schema, FP_REPORT_SCHEMA) != 0) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: \"schema\" is not \"%s\"", path, FP_REPORT_SCHEMA);
			goto fail;
		}
		double n = 0, ev = 0;
		c->id = jstr(c->summary, "centre");
		if (!c->id || !jnumber(c->summary, "n", &n) || !jnumber(c->summary, "events", &ev) || n < 0 || ev < 0 || ev > n) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: \"centre\", \"n\" or \"events\" missing or inconsistent", path);
			goto fail;
		}
		c->n = (size_t)n;
		c->events = (size_t)ev;
		c->snapshot_hash = jstr(c->summary, "snapshot_hash");
		c->snapshot_date = jstr(c->summary, "snapshot_date");
		centre_metrics(c);
		FP_CHECK(st, same_settings(r, c, path, f == 0));
		sites[f] = c->summary;
		r->have_binary |= json_object_get(c->summary, "calibration") != NULL;
		r->have_benefit |= json_object_get(c->summary, "km_benefit") != NULL;
	}
	double declared = 0;
	if (jnumber(r->manifest, "centres", &declared) && declared != (double)nf) {
		st = FP_FAIL(FP_ERR_DATA, "%s/pooled.json pools %g centres but the folder holds %d site summaries", dir, declared, nf);
		goto fail;
	}
	r->study = jstr(r->manifest, "study") ? jstr(r->manifest, "study") : "(study not named)";
	if (!r->model_hash) r->model_hash = "(not given)";
	FP_CHECK(st, fp_pool_aggregate(sites, r->ncentre, &r->horizon, 1, &r->agg));
	json_t *a = r->agg, *pc = json_object_get(a, "cindex_stratified"), *pa = json_object_get(a, "auc_grid");
	json_t *pk = json_object_get(a, "km"), *pcal = json_object_get(a, "calibration");
	r->pooled_ok = jnumber(pc, "c", &r->pooled.c) && jnumber(pc, "se", &r->pooled.se);
	r->pauc_ok = jnumber(pa, "auc", &r->pauc.auc) && jnumber(pa, "se", &r->pauc.se) &&
	             jnumber(pa, "ci_low", &r->pauc.ci_low) && jnumber(pa, "ci_high", &r->pauc.ci_high);
	if (pk) {
		json_t *s = json_array_get(json_object_get(pk, "survival"), 0), *se = json_array_get(json_object_get(pk, "se"), 0);
		json_t *nr = json_array_get(json_object_get(pk, "n_risk"), 0);
		r->pkm_ok = json_is_number(s);
		r->pkm.time = r->horizon;
		r->pkm.survival = json_number_value(s);
		r->pkm.se = json_is_number(se) ? json_number_value(se) : NAN;
		r->pkm.n_risk = json_is_number(nr) ? (size_t)json_number_value(nr) : 0;
	}
	r->pcal_ok = jnumber(pcal, "oe", &r->poe) && jnumber(pcal, "brier", &r->pbrier);
	/* random effects from the centres' own C and SE, as the rows mode */
	double cest[FP_REPORT_MAX_CENTRES], cse[FP_REPORT_MAX_CENTRES];
	size_t nmeta = 0;
	for (size_t k = 0; k < r->ncentre; k++) {
		const struct centre *c = &r->centre[k];
		if (c->c_ok && c->c.se > 0 && c->c.c > 0 && c->c.c < 1) {
			cest[nmeta] = c->c.c;
			cse[nmeta++] = c->c.se;
		}
	}
	r->meta_ok = nmeta >= 2 && fp_validate_meta(cest, cse, nmeta, FP_META_LOGIT, &r->meta) == FP_OK;
	fp_error_clear();
fail:
	for (int f = 0; f < nf; f++) free(list[f]);
	free(list);
	return st;
}

/* ---- merged tables ------------------------------------------------------ */

struct table {
	size_t rows;
	double *time, *events, *censored;
	double n;               /* patients in the released tables */
	size_t withheld;        /* centres that withheld this group */
};

static void table_free(struct table *t)
{
	free(t->time);
	free(t->events);
	free(t->censored);
	memset(t, 0, sizeof *t);
}

/* Group g of block (km_risk_groups / km_benefit; NULL: the overall "km")
 * of every centre, merged into one table of distinct ascending times. */
static enum fp_status merge_group(const struct report *r, const char *block, size_t g, struct table *out)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	double *t = NULL, *e = NULL, *c = NULL;
	size_t total = 0, q = 0;
	memset(out, 0, sizeof *out);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t s = 0; s < r->ncentre; s++) {
			json_t *jg = block ? json_array_get(json_object_get(json_object_get(r->centre[s].summary, block), "groups"), g)
			                   : json_object_get(r->centre[s].summary, "km");
			if (!jg) continue;
			if (json_object_get(jg, "withheld")) {
				if (pass == 0) out->withheld++;
				continue;
			}
			json_t *jt = json_object_get(jg, "time"), *je = json_object_get(jg, "events"), *jc = json_object_get(jg, "censored");
			size_t m = json_array_size(jt);
			if (json_array_size(je) != m || json_array_size(jc) != m) {
				st = FP_FAIL(FP_ERR_FORMAT, "site summary %s: KM table lengths differ", r->centre[s].id);
				goto fail;
			}
			if (pass == 0) {
				FP_CHECK(st, fp_size_add(total, m, &total, "merged KM table"));
				double n = 0;
				out->n += jnumber(jg, "n", &n) ? n : 0;
				continue;
			}
			for (size_t i = 0; i < m; i++, q++) {
				t[q] = json_number_value(json_array_get(jt, i));
				e[q] = json_number_value(json_array_get(je, i));
				c[q] = json_number_value(json_array_get(jc, i));
				if (!isfinite(t[q]) || !(e[q] >= 0) || !(c[q] >= 0)) {
					st = FP_FAIL(FP_ERR_FORMAT, "site summary %s: KM row %zu is not a time with counts >= 0",
					             r->centre[s].id, i + 1);
					goto fail;
				}
				k[q].key = t[q];
				k[q].idx = q;
			}
		}
		if (pass == 0) {
			FP_CHECK(st, fp_alloc_array(total + 1, sizeof *k, (void **)&k, "merged KM table"));
			FP_CHECK(st, fp_alloc_array(total + 1, sizeof *t, (void **)&t, "merged KM table"));
			FP_CHECK(st, fp_alloc_array(total + 1, sizeof *e, (void **)&e, "merged KM table"));
			FP_CHECK(st, fp_alloc_array(total + 1, sizeof *c, (void **)&c, "merged KM table"));
			FP_CHECK(st, fp_alloc_array(total + 1, sizeof *out->time, (void **)&out->time, "merged KM table"));
			FP_CHECK(st, fp_calloc_array(total + 1, sizeof *out->events, (void **)&out->events, "merged KM table"));
			FP_CHECK(st, fp_calloc_array(total + 1, sizeof *out->censored, (void **)&out->censored, "merged KM table"));
		}
	}
	FP_CHECK(st, fp_vi_sort_keyed(k, q));
	for (size_t i = 0; i < q; i++) {
		if (i == 0 || k[i].key != k[i - 1].key) out->time[out->rows++] = k[i].key;
		out->events[out->rows - 1] += e[k[i].idx];
		out->censored[out->rows - 1] += c[k[i].idx];
	}
fail:
	free(k);
	free(t);
	free(e);
	free(c);
	if (st != FP_OK) table_free(out);
	return st;
}

static double table_max_time(const struct report *r)
{
	double m = 0;
	for (size_t s = 0; s < r->ncentre; s++) {
		json_t *jt = json_object_get(json_object_get(r->centre[s].summary, "km"), "time");
		for (size_t i = 0; i < json_array_size(jt); i++) m = fmax(m, json_number_value(json_array_get(jt, i)));
	}
	return m > 0 ? m : 1;
}

/* ---- figures ------------------------------------------------------------ */

enum fp_status fp_rep_fig_roc_grid(struct fp_buf *b, const struct report *r)
{
	struct plot p = {0, 1, 0, 1, 0, 0, 0, 0};
	size_t drawn = 0, withheld = 0;
	fp_rep_svg_begin(b, "fig-roc", "ROC per centre (from the shared score grid)", "1 - specificity", "sensitivity", &p, 420,
	                 400, 0);
	fp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n",
	              fp_rep_px(&p, 0), fp_rep_py(&p, 0), fp_rep_px(&p, 1), fp_rep_py(&p, 1));
	for (size_t k = 0; k < r->ncentre; k++) {
		const struct centre *c = &r->centre[k];
		json_t *g = json_object_get(c->summary, "auc_grid");
		if (json_object_get(c->summary, "auc_grid_withheld")) withheld++;
		if (!g) continue;
		json_t *jc = json_object_get(g, "cases"), *jn = json_object_get(g, "controls");
		size_t cells = json_array_size(jc);
		if (cells == 0 || json_array_size(jn) != cells || cells > 100000) continue;
		double pos = 0, neg = 0, tp = 0, fpn = 0;
		for (size_t j = 0; j < cells; j++) {
			pos += json_number_value(json_array_get(jc, j));
			neg += json_number_value(json_array_get(jn, j));
		}
		if (!(pos > 0 && neg > 0)) continue;
		double *xs = NULL, *ys = NULL;
		if (fp_alloc_array(cells + 1, sizeof *xs, (void **)&xs, "ROC") != FP_OK) return fp_error_last()->code;
		if (fp_alloc_array(cells + 1, sizeof *ys, (void **)&ys, "ROC") != FP_OK) {
			free(xs);
			return fp_error_last()->code;
		}
		size_t q = 0;
		xs[q] = 0, ys[q++] = 0;
		for (size_t j = cells; j-- > 0;) { /* threshold sweeps from the top cell down */
			double a = json_number_value(json_array_get(jc, j)), d = json_number_value(json_array_get(jn, j));
			if (a == 0 && d == 0) continue;
			tp += a;
			fpn += d;
			xs[q] = fpn / neg;
			ys[q++] = tp / pos;
		}
		fp_rep_svg_line(b, &p, xs, ys, q, fp_rep_palette[k % 8], 0, NULL);
		char lab[96];
		snprintf(lab, sizeof lab, "%.40s (%.3f)", c->id, c->auc_ok ? c->auc.auc : NAN);
		if (k < 12) fp_rep_svg_legend(b, &p, k, lab, fp_rep_palette[k % 8]);
		drawn++;
		free(xs);
		free(ys);
	}
	char cap[240];
	snprintf(cap, sizeof cap, "ROC curves of the binary outcome per centre at the cells of the shared score grid; the "
	                          "centre's own AUC in brackets. %zu centres withheld their grid (a cell below the minimum).",
	         withheld);
	fp_rep_svg_end(b, cap);
	(void)drawn;
	return FP_OK;
}

enum fp_status fp_rep_fig_calibration_bins(struct fp_buf *b, const struct report *r)
{
	struct plot p = {0, 1, 0, 1, 0, 0, 0, 0};
	json_t *bins = json_object_get(r->agg, "calibration_bins");
	json_t *jn = json_object_get(bins, "n"), *jp = json_object_get(bins, "mean_predicted"),
	       *jo = json_object_get(bins, "observed");
	fp_rep_svg_begin(b, "fig-calibration", "Calibration (pooled tenths of the prediction)", "predicted probability",
	                 "observed proportion", &p, 420, 400, 0);
	fp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n",
	              fp_rep_px(&p, 0), fp_rep_py(&p, 0), fp_rep_px(&p, 1), fp_rep_py(&p, 1));
	double hmax = 1, xs[10], ys[10];
	size_t q = 0;
	for (size_t i = 0; i < 10; i++) hmax = fmax(hmax, json_number_value(json_array_get(jn, i)));
	for (size_t i = 0; i < 10 && bins; i++) {
		double h = json_number_value(json_array_get(jn, i));
		fp_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#9ab\"/>\n", fp_rep_px(&p, i / 10.0),
		              fp_rep_py(&p, 0) - 40.0 * h / hmax, p.w / 10 - 1, 40.0 * h / hmax);
		json_t *x = json_array_get(jp, i), *y = json_array_get(jo, i);
		if (!json_is_number(x) || !json_is_number(y)) continue;
		xs[q] = json_number_value(x);
		ys[q] = json_number_value(y);
		fp_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", fp_rep_px(&p, xs[q]), fp_rep_py(&p, ys[q]),
		              fp_rep_palette[0]);
		q++;
	}
	fp_rep_svg_line(b, &p, xs, ys, q, fp_rep_palette[0], 0, NULL);
	double wh = 0;
	jnumber(bins, "withheld", &wh);
	char cap[260];
	snprintf(cap, sizeof cap, "Mean predicted probability against the observed proportion in each tenth of the prediction, "
	                          "all centres together; bars: number of patients per tenth. %.0f patients in tenths below "
	                          "the minimum cell were withheld by their centres.", wh);
	fp_rep_svg_end(b, bins ? cap : "Not available: no centre sent a binary outcome.");
	return FP_OK;
}

enum fp_status fp_rep_fig_km_risk_tables(struct fp_buf *b, const struct report *r, json_t *jout)
{
	enum fp_status st = FP_OK;
	double tmax = table_max_time(r);
	struct plot p = {0, tmax, 0, 1, 0, 0, 0, 0};
	static const char *const names[3] = {"low risk", "middle risk", "high risk"};
	fp_rep_svg_begin(b, "fig-km-risk", "Kaplan-Meier by predicted risk group (federated tables)", "time",
	                 "event-free survival", &p, 560, 470, 50);
	json_t *groups = json_array();
	json_object_set_new(jout, "km_by_risk_group", groups);
	for (int g = 0; g < 3; g++) {
		struct table t;
		double *xs = NULL, *ys = NULL;
		size_t np = 0;
		FP_CHECK(st, merge_group(r, "km_risk_groups", (size_t)g, &t));
		st = fp_rep_km_table_curve(t.time, t.events, t.censored, t.rows, &xs, &ys, &np);
		if (st != FP_OK) {
			table_free(&t);
			goto fail;
		}
		fp_rep_svg_line(b, &p, xs, ys, np, fp_rep_palette[g], 1, NULL);
		fp_rep_svg_legend(b, &p, (size_t)g, names[g], fp_rep_palette[g]);
		free(xs);
		free(ys);
		json_t *nr = json_array();
		fp_buf_printf(b, "<text x=\"4\" y=\"%.1f\" fill=\"%s\">%s</text>", p.top + p.h + 48 + 12.0 * g, fp_rep_palette[g],
		              names[g]);
		for (int k = 0; k <= 4; k++) {
			double tk = tmax * k / 4, at = 0;
			for (size_t i = 0; i < t.rows; i++)
				if (t.time[i] >= tk) at += t.events[i] + t.censored[i];
			fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">%.0f</text>", fp_rep_px(&p, tk),
			              p.top + p.h + 48 + 12.0 * g, fp_rep_palette[g], at);
			json_array_append_new(nr, json_integer((json_int_t)at));
		}
		fp_buf_printf(b, "\n");
		json_t *jg = json_object();
		json_object_set_new(jg, "group", json_string(names[g]));
		json_object_set_new(jg, "n", json_integer((json_int_t)t.n));
		json_object_set_new(jg, "n_at_risk_at_ticks", nr);
		json_object_set_new(jg, "centres_withheld", json_integer((json_int_t)t.withheld));
		json_array_append_new(groups, jg);
		table_free(&t);
	}
	char cap[240];
	snprintf(cap, sizeof cap, "Risk groups by predicted risk: <= %.4g, <= %.4g, above (cut-points fixed before "
	                          "evaluation); numbers at risk at each axis tick below the plot.", r->risk_cuts[0],
	         r->risk_cuts[1]);
	fp_rep_svg_end(b, cap);
fail:
	return st;
}

/* Area under a step curve (points from fp_rep_km_table_curve) on [0, tau]. */
static double rmst(const double *x, const double *y, size_t n, double tau)
{
	double a = 0;
	for (size_t i = 0; i + 1 < n && x[i] < tau; i++) a += (fmin(x[i + 1], tau) - x[i]) * y[i];
	if (n > 0 && x[n - 1] < tau) a += (tau - x[n - 1]) * y[n - 1];
	return a;
}

enum fp_status fp_rep_fig_benefit_tables(struct fp_buf *b, const struct report *r, json_t *jout)
{
	enum fp_status st = FP_OK;
	struct plot p = {0, table_max_time(r), 0, 1, 0, 0, 0, 0};
	fp_rep_svg_begin(b, "fig-benefit", "Followed vs not followed the recommendation (IPTW-weighted KM)", "time",
	                 "event-free survival", &p, 560, 420, 0);
	if (!r->have_benefit) {
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no centre sent a treatment block</text>",
		              p.left + p.w / 2, p.top + p.h / 2);
		fp_rep_svg_end(b, "Not available: the summaries carry no followed / not-followed tables.");
		return FP_OK;
	}
	static const char *const names[2] = {"not followed", "followed"};
	double area[2] = {NAN, NAN}, n[2] = {0, 0};
	for (int g = 0; g < 2; g++) {
		struct table t;
		double *xs = NULL, *ys = NULL;
		size_t np = 0;
		FP_CHECK(st, merge_group(r, "km_benefit", (size_t)g, &t));
		st = fp_rep_km_table_curve(t.time, t.events, t.censored, t.rows, &xs, &ys, &np);
		n[g] = t.n;
		table_free(&t);
		if (st != FP_OK) goto fail;
		fp_rep_svg_line(b, &p, xs, ys, np, fp_rep_palette[g ? 2 : 1], 1, g ? NULL : "5 3");
		fp_rep_svg_legend(b, &p, (size_t)g, names[g], fp_rep_palette[g ? 2 : 1]);
		if (n[g] > 0) area[g] = rmst(xs, ys, np, r->tau);
		free(xs);
		free(ys);
	}
	json_t *jb = json_object();
	json_object_set_new(jb, "tau", json_real(r->tau));
	json_object_set_new(jb, "followed", json_integer((json_int_t)n[1]));
	json_object_set_new(jb, "not_followed", json_integer((json_int_t)n[0]));
	json_object_set_new(jb, "rmst_followed", isfinite(area[1]) ? json_real(area[1]) : json_null());
	json_object_set_new(jb, "rmst_not", isfinite(area[0]) ? json_real(area[0]) : json_null());
	json_object_set_new(jb, "rmst_diff", isfinite(area[1] - area[0]) ? json_real(area[1] - area[0]) : json_null());
	json_object_set_new(jb, "policy_value", json_null()); /* needs rows: not from summaries */
	json_object_set_new(jout, "benefit", jb);
	fp_rep_svg_end(b, "Weighted by the inverse propensity of the arm received (the model's propensity head), merged from "
	                  "the centres' weighted event tables. Descriptive only: confounding by indication remains possible; "
	                  "confirmation needs a randomised comparison.");
fail:
	return st;
}

void fp_rep_table1_variables(struct fp_buf *b, const struct report *r)
{
	json_t *first = NULL;
	for (size_t k = 0; k < r->ncentre && !first; k++)
		first = json_object_get(json_object_get(r->centre[k].summary, "table1"), "variables");
	if (!json_is_array(first)) return;
	fp_buf_printf(b, "<h2>Table 1: characteristics per centre, mean (SD) (TRIPOD+AI 20b)</h2>\n<table id=\"table1\"><tr>"
	                 "<th>variable</th>");
	for (size_t k = 0; k < r->ncentre; k++) {
		fp_buf_printf(b, "<th>");
		fp_rep_html(b, r->centre[k].id);
		fp_buf_printf(b, "</th>");
	}
	fp_buf_printf(b, "</tr>\n<tr><td>patients (events)</td>");
	for (size_t k = 0; k < r->ncentre; k++) fp_buf_printf(b, "<td>%zu (%zu)</td>", r->centre[k].n, r->centre[k].events);
	fp_buf_printf(b, "</tr>\n");
	static const char *const reg[3] = {"surgery", "tace", "tace_tki"};
	for (int a = 0; a < 3; a++) {
		fp_buf_printf(b, "<tr><td>received %s</td>", reg[a]);
		for (size_t k = 0; k < r->ncentre; k++) {
			json_t *v = json_object_get(json_object_get(json_object_get(r->centre[k].summary, "table1"), "regimens"), reg[a]);
			if (json_is_number(v)) fp_buf_printf(b, "<td>%.0f</td>", json_number_value(v));
			else fp_buf_printf(b, "<td>-</td>");
		}
		fp_buf_printf(b, "</tr>\n");
	}
	for (size_t j = 0; j < json_array_size(first); j++) {
		const char *name = jstr(json_array_get(first, j), "name");
		if (!name) continue;
		fp_buf_printf(b, "<tr><td>");
		fp_rep_html(b, name);
		fp_buf_printf(b, "</td>");
		for (size_t k = 0; k < r->ncentre; k++) {
			json_t *vars = json_object_get(json_object_get(r->centre[k].summary, "table1"), "variables"), *v = NULL;
			for (size_t i = 0; i < json_array_size(vars) && !v; i++) {
				const char *nm = jstr(json_array_get(vars, i), "name");
				if (nm && strcmp(nm, name) == 0) v = json_array_get(vars, i);
			}
			double mean, sd;
			if (v && jnumber(v, "mean", &mean) && jnumber(v, "sd", &sd)) fp_buf_printf(b, "<td>%.3g (%.3g)</td>", mean, sd);
			else fp_buf_printf(b, "<td>-</td>");
		}
		fp_buf_printf(b, "</tr>\n");
	}
	fp_buf_printf(b, "</table>\n<p>- : not sent, or withheld by the centre (a 0/1 variable or regimen with fewer than %.0f "
	                 "patients in one value).</p>\n", r->min_cell);
}
