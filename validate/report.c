/*
 * report.c: builds the validation report of fp_report.h. Rows mode: per
 * centre it computes Harrell's C, performance at the horizon (AUC(t), IPCW
 * Brier, IPA, O/E) and, when a binary outcome is given, AUC with DeLong CI
 * and calibration; pooled, the exact stratified C (fp_pool), AUC, KM at the
 * horizon, O/E and Brier on the pooled rows, and a random-effects summary of
 * the centres' C with its prediction interval. Summaries mode
 * (report_summary.c) fills the same state from the centres' summaries; the
 * output (write_report) is shared, so both modes give the same files.
 * Also fp_report_write_summaries: rows -> what each centre would send.
 * Figures are drawn as inline SVG so the HTML needs nothing else to render.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fp_common.h"
#include "fp_pool.h"
#include "fp_report.h"
#include "fp_table.h"
#include "fp_validate.h"
#include "report_internal.h"
#include "validate_internal.h"

#define REPORT_MAX_HTML (64u << 20)
#define Z975 FP_REP_Z975

static void centre_free(struct centre *c)
{
	free(c->time);
	free(c->risk);
	free(c->prob);
	free(c->ps);
	free(c->event);
	free(c->label);
	free(c->arm);
	free(c->rec);
	json_decref(c->summary);
}

static void report_free(struct report *r)
{
	for (size_t i = 0; i < r->ncentre; i++) centre_free(&r->centre[i]);
	free(r->time);
	free(r->risk);
	free(r->prob);
	free(r->ps);
	free(r->event);
	free(r->label);
	free(r->arm);
	free(r->rec);
	free(r->centre_id);
	json_decref(r->manifest);
	json_decref(r->agg);
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static size_t split_names(const char *list, char names[][128], size_t max)
{
	size_t k = 0;
	for (const char *p = list; p && *p && k < max;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len >= 128) len = 127;
		memcpy(names[k], p, len);
		names[k++][len] = '\0';
		p = e ? e + 1 : p + len;
	}
	return k;
}

/* Reads one centre's CSV into c. */
static enum fp_status load_centre(struct report *r, struct centre *c, const char *path)
{
	enum fp_status st = FP_OK;
	struct fp_table *t = NULL;
	double *tmp = NULL;
	FP_CHECK(st, fp_table_load(path, &t));
	size_t n = fp_table_rows(t), m = n ? n : 1;
	c->n = n;
	FP_CHECK(st, fp_alloc_array(m, sizeof *c->time, (void **)&c->time, "report times"));
	FP_CHECK(st, fp_alloc_array(m, sizeof *c->risk, (void **)&c->risk, "report risks"));
	FP_CHECK(st, fp_alloc_array(m, 1, (void **)&c->event, "report events"));
	FP_CHECK(st, fp_table_numeric(t, r->col_time, c->time));
	FP_CHECK(st, fp_table_binary(t, r->col_event, c->event));
	FP_CHECK(st, fp_table_numeric(t, r->col_risk, c->risk));
	if (r->col_label && r->col_prob) {
		FP_CHECK(st, fp_alloc_array(m, 1, (void **)&c->label, "report labels"));
		FP_CHECK(st, fp_alloc_array(m, sizeof *c->prob, (void **)&c->prob, "report probabilities"));
		FP_CHECK(st, fp_table_binary(t, r->col_label, c->label));
		FP_CHECK(st, fp_table_numeric(t, r->col_prob, c->prob));
	}
	if (r->arms) {
		char names[FP_REPORT_MAX_CENTRES][128];
		split_names(r->col_ps, names, FP_REPORT_MAX_CENTRES);
		size_t cells;
		FP_CHECK(st, fp_size_mul(m, r->arms, &cells, "report propensities"));
		FP_CHECK(st, fp_alloc_array(cells, sizeof *c->ps, (void **)&c->ps, "report propensities"));
		FP_CHECK(st, fp_alloc_array(m, sizeof *tmp, (void **)&tmp, "report column"));
		FP_CHECK(st, fp_alloc_array(m, sizeof *c->arm, (void **)&c->arm, "report arms"));
		FP_CHECK(st, fp_alloc_array(m, sizeof *c->rec, (void **)&c->rec, "report arms"));
		for (size_t a = 0; a < r->arms; a++) {
			FP_CHECK(st, fp_table_numeric(t, names[a], tmp));
			for (size_t i = 0; i < n; i++) c->ps[i * r->arms + a] = tmp[i];
		}
		FP_CHECK(st, fp_table_numeric(t, r->col_arm, tmp));
		for (size_t i = 0; i < n; i++) c->arm[i] = (int)tmp[i];
		FP_CHECK(st, fp_table_numeric(t, r->col_rec, tmp));
		for (size_t i = 0; i < n; i++) c->rec[i] = (int)tmp[i];
	}
	for (size_t i = 0; i < n; i++) c->events += c->event[i];
fail:
	free(tmp);
	fp_table_destroy(t);
	return st;
}

/* Statistics that fail for a small centre are reported as absent, not as a
 * failed report: the reason is logged once and the cell shows "-". */
static void centre_stats(struct report *r, struct centre *c)
{
	c->c_ok = fp_validate_cindex(c->time, c->event, c->risk, NULL, c->n, NULL, &c->c) == FP_OK;
	if (!c->c_ok) FP_WARN("report: centre %s: C-index: %s", c->id, fp_error_msg());
	c->h_ok = fp_validate_horizon(c->time, c->event, c->risk, c->n, r->horizon, &c->h) == FP_OK;
	if (!c->h_ok) FP_WARN("report: centre %s: horizon: %s", c->id, fp_error_msg());
	if (c->label) {
		c->auc_ok = fp_validate_auc(c->label, c->prob, c->n, &c->auc, NULL, NULL) == FP_OK;
		if (!c->auc_ok) FP_WARN("report: centre %s: AUC: %s", c->id, fp_error_msg());
		c->cal_ok = fp_validate_calibration(c->label, c->prob, c->n, &c->cal) == FP_OK;
		if (!c->cal_ok) FP_WARN("report: centre %s: calibration: %s", c->id, fp_error_msg());
	}
	fp_error_clear();
}

static enum fp_status pool_rows(struct report *r)
{
	enum fp_status st = FP_OK;
	size_t n = 0, q = 0;
	for (size_t i = 0; i < r->ncentre; i++) FP_TRY(fp_size_add(n, r->centre[i].n, &n, "pooled rows"));
	size_t m = n ? n : 1;
	r->n = n;
	FP_CHECK(st, fp_alloc_array(m, sizeof *r->time, (void **)&r->time, "pooled rows"));
	FP_CHECK(st, fp_alloc_array(m, sizeof *r->risk, (void **)&r->risk, "pooled rows"));
	FP_CHECK(st, fp_alloc_array(m, 1, (void **)&r->event, "pooled rows"));
	FP_CHECK(st, fp_alloc_array(m, sizeof *r->centre_id, (void **)&r->centre_id, "pooled rows"));
	if (r->col_label && r->col_prob) {
		FP_CHECK(st, fp_alloc_array(m, sizeof *r->prob, (void **)&r->prob, "pooled rows"));
		FP_CHECK(st, fp_alloc_array(m, 1, (void **)&r->label, "pooled rows"));
	}
	if (r->arms) {
		FP_CHECK(st, fp_alloc_array(m * r->arms, sizeof *r->ps, (void **)&r->ps, "pooled rows"));
		FP_CHECK(st, fp_alloc_array(m, sizeof *r->arm, (void **)&r->arm, "pooled rows"));
		FP_CHECK(st, fp_alloc_array(m, sizeof *r->rec, (void **)&r->rec, "pooled rows"));
	}
	for (size_t k = 0; k < r->ncentre; k++) {
		struct centre *c = &r->centre[k];
		for (size_t i = 0; i < c->n; i++, q++) {
			r->time[q] = c->time[i];
			r->risk[q] = c->risk[i];
			r->event[q] = c->event[i];
			r->centre_id[q] = (int)k;
			if (r->prob) {
				r->prob[q] = c->prob[i];
				r->label[q] = c->label[i];
			}
			if (r->arms) {
				memcpy(r->ps + q * r->arms, c->ps + i * r->arms, r->arms * sizeof *r->ps);
				r->arm[q] = c->arm[i];
				r->rec[q] = c->rec[i];
			}
		}
	}
fail:
	return st;
}

/* ---- SVG ---------------------------------------------------------------- */

static double max_time(const struct report *r)
{
	double m = 0;
	for (size_t i = 0; i < r->n; i++) m = fmax(m, r->time[i]);
	return m > 0 ? m : 1;
}

/* ROC curve of one centre's binary outcome: sweep thresholds from high to low. */
static enum fp_status fig_roc(struct fp_buf *b, const struct report *r)
{
	struct plot p = {0, 1, 0, 1, 0, 0, 0, 0};
	fp_rep_svg_begin(b, "fig-roc", r->label ? "ROC per centre (binary outcome)" : "ROC per centre at the horizon",
	          "1 - specificity", "sensitivity", &p, 420, 400, 0);
	fp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n",
	              fp_rep_px(&p, 0), fp_rep_py(&p, 0), fp_rep_px(&p, 1), fp_rep_py(&p, 1));
	for (size_t k = 0; k < r->ncentre; k++) {
		const struct centre *c = &r->centre[k];
		struct fp_vi_keyed *o = NULL;
		double *fx = NULL, *ty = NULL;
		size_t m = 0, pos = 0, neg = 0;
		if (fp_alloc_array(c->n + 1, sizeof *o, (void **)&o, "ROC") != FP_OK) return fp_error_last()->code;
		fx = malloc((c->n + 2) * sizeof *fx);
		ty = malloc((c->n + 2) * sizeof *ty);
		if (!fx || !ty) {
			free(o);
			free(fx);
			free(ty);
			return FP_FAIL(FP_ERR_NOMEM, "ROC curve");
		}
		for (size_t i = 0; i < c->n; i++) {
			/* binary outcome when given, else event by the horizon vs event-free after it */
			int y = c->label ? c->label[i] : (c->time[i] <= r->horizon && c->event[i]) ? 1 : (c->time[i] > r->horizon ? 0 : -1);
			if (y < 0) continue;
			o[m].key = -(c->label ? c->prob[i] : c->risk[i]);
			o[m++].idx = (size_t)y;
			if (y) pos++; else neg++;
		}
		qsort(o, m, sizeof *o, fp_vi_cmp_keyed);
		size_t q = 0, tp = 0, fpn = 0;
		fx[q] = 0, ty[q++] = 0;
		for (size_t i = 0; i < m;) {
			size_t e = i;
			while (e < m && o[e].key == o[i].key) {
				if (o[e].idx) tp++; else fpn++;
				e++;
			}
			fx[q] = neg ? (double)fpn / (double)neg : 0;
			ty[q++] = pos ? (double)tp / (double)pos : 0;
			i = e;
		}
		if (pos && neg) {
			fp_rep_svg_line(b, &p, fx, ty, q, fp_rep_palette[k % 8], 0, NULL);
			char lab[96];
			double a = c->label ? (c->auc_ok ? c->auc.auc : NAN) : (c->h_ok ? c->h.auc : NAN);
			snprintf(lab, sizeof lab, "%.40s (%.3f)", c->id, a);
			if (k < 12) fp_rep_svg_legend(b, &p, k, lab, fp_rep_palette[k % 8]);
		}
		free(o);
		free(fx);
		free(ty);
	}
	fp_rep_svg_end(b, r->label ? "ROC curves of the binary outcome per centre, AUC in brackets."
	                    : "ROC curves per centre: events by the horizon against patients event-free after it (censored before excluded).");
	return FP_OK;
}

/* Calibration: loess curve of outcome on prediction, pooled, with the
 * distribution of predictions as a histogram along the bottom. */
static enum fp_status fig_calibration(struct fp_buf *b, const struct report *r)
{
	enum fp_status st = FP_OK;
	struct plot p = {0, 1, 0, 1, 0, 0, 0, 0};
	const double *pr = r->prob ? r->prob : r->risk;
	unsigned char *y = NULL;
	double *yd = NULL, *fit = NULL, *xs = NULL, *ys = NULL;
	struct fp_vi_keyed *k = NULL;
	size_t n = 0;
	fp_rep_svg_begin(b, "fig-calibration", "Calibration (pooled rows)", "predicted probability", "observed (loess)", &p, 420, 400, 0);
	fp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n",
	              fp_rep_px(&p, 0), fp_rep_py(&p, 0), fp_rep_px(&p, 1), fp_rep_py(&p, 1));
	FP_CHECK(st, fp_alloc_array(r->n + 1, sizeof *yd, (void **)&yd, "calibration plot"));
	FP_CHECK(st, fp_alloc_array(r->n + 1, sizeof *xs, (void **)&xs, "calibration plot"));
	FP_CHECK(st, fp_alloc_array(r->n + 1, sizeof *fit, (void **)&fit, "calibration plot"));
	FP_CHECK(st, fp_alloc_array(r->n + 1, sizeof *k, (void **)&k, "calibration plot"));
	FP_CHECK(st, fp_alloc_array(r->n + 1, sizeof *ys, (void **)&ys, "calibration plot"));
	for (size_t i = 0; i < r->n; i++) {
		/* binary outcome, else event by the horizon among those not censored before it */
		int yy = r->label ? r->label[i] : (r->time[i] <= r->horizon && r->event[i]) ? 1 : (r->time[i] > r->horizon ? 0 : -1);
		if (yy < 0) continue;
		xs[n] = pr[i];
		yd[n++] = yy;
	}
	int hist[20] = {0}, hmax = 1;
	for (size_t i = 0; i < n; i++) {
		int h = (int)(xs[i] * 20);
		if (h > 19) h = 19;
		if (h < 0) h = 0;
		if (++hist[h] > hmax) hmax = hist[h];
	}
	for (int h = 0; h < 20; h++)
		fp_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#9ab\"/>\n", fp_rep_px(&p, h / 20.0),
		              fp_rep_py(&p, 0) - 40.0 * hist[h] / hmax, p.w / 20 - 1, 40.0 * hist[h] / hmax);
	if (n >= FP_CALIBRATION_MIN_ROWS && fp_validate_loess_direct(xs, yd, n, 0.75, fit) == FP_OK) {
		for (size_t i = 0; i < n; i++) {
			k[i].key = xs[i];
			k[i].idx = i;
		}
		FP_CHECK(st, fp_vi_sort_keyed(k, n));
		for (size_t i = 0; i < n; i++) {
			xs[i] = k[i].key;
			ys[i] = fmin(1, fmax(0, fit[k[i].idx]));
		}
		fp_rep_svg_line(b, &p, xs, ys, n, fp_rep_palette[0], 0, NULL);
	} else {
		fp_error_clear();
	}
	fp_rep_svg_end(b, "Loess (span 0.75, degree 2, direct) of the outcome on the prediction; bars: distribution of predictions.");
fail:
	free(y);
	free(yd);
	free(fit);
	free(xs);
	free(ys);
	free(k);
	return st;
}

/* KM by predicted-risk group (r->risk_cuts) with numbers at risk under the axis. */
static enum fp_status fig_km_risk(struct fp_buf *b, const struct report *r, json_t *jout)
{
	enum fp_status st = FP_OK;
	double q1 = r->risk_cuts[0], q2 = r->risk_cuts[1], tmax = max_time(r);
	unsigned char *mask = NULL;
	FP_TRY(fp_alloc_array(r->n + 1, 1, (void **)&mask, "risk groups"));
	struct plot p = {0, tmax, 0, 1, 0, 0, 0, 0};
	fp_rep_svg_begin(b, "fig-km-risk", "Kaplan-Meier by predicted risk group (pooled rows)", "time", "event-free survival", &p,
	          560, 470, 50);
	static const char *const names[3] = {"low risk", "middle risk", "high risk"};
	json_t *groups = json_array();
	for (int g = 0; g < 3; g++) {
		size_t m = 0;
		for (size_t i = 0; i < r->n; i++) {
			int gi = r->risk[i] <= q1 ? 0 : r->risk[i] <= q2 ? 1 : 2;
			mask[i] = gi == g;
			m += mask[i];
		}
		double *xs = NULL, *ys = NULL;
		size_t np = 0;
		FP_CHECK(st, fp_rep_km_curve(r->time, r->event, NULL, mask, r->n, &xs, &ys, &np));
		fp_rep_svg_line(b, &p, xs, ys, np, fp_rep_palette[g], 1, NULL);
		fp_rep_svg_legend(b, &p, (size_t)g, names[g], fp_rep_palette[g]);
		free(xs);
		free(ys);
		/* numbers at risk at the 5 axis ticks */
		json_t *nr = json_array();
		fp_buf_printf(b, "<text x=\"4\" y=\"%.1f\" fill=\"%s\">%s</text>", p.top + p.h + 48 + 12.0 * g, fp_rep_palette[g], names[g]);
		for (int k = 0; k <= 4; k++) {
			double tk = tmax * k / 4;
			size_t at = 0;
			for (size_t i = 0; i < r->n; i++) at += mask[i] && r->time[i] >= tk;
			fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">%zu</text>", fp_rep_px(&p, tk),
			              p.top + p.h + 48 + 12.0 * g, fp_rep_palette[g], at);
			json_array_append_new(nr, json_integer((json_int_t)at));
		}
		fp_buf_printf(b, "\n");
		json_t *jg = json_object();
		json_object_set_new(jg, "group", json_string(names[g]));
		json_object_set_new(jg, "n", json_integer((json_int_t)m));
		json_object_set_new(jg, "n_at_risk_at_ticks", nr);
		json_array_append_new(groups, jg);
	}
	json_object_set_new(jout, "km_by_risk_group", groups);
	char cap[200];
	snprintf(cap, sizeof cap, "Risk groups by predicted risk: <= %.4g, <= %.4g, above; numbers at risk at each axis tick "
	                          "below the plot.", q1, q2);
	fp_rep_svg_end(b, cap);
fail:
	free(mask);
	return st;
}

/* Forest plot of the centres' C with the exact stratified pooled C and the
 * random-effects summary with its prediction interval. */
static void fig_forest(struct fp_buf *b, const struct report *r, const struct fp_cindex_result *pooled, int pooled_ok,
                       const struct fp_meta_result *meta, int meta_ok)
{
	size_t rows = r->ncentre + 2;
	double height = 60 + 22.0 * (double)rows + 40;
	struct plot p = {0.3, 1.0, 0, (double)rows, 0, 0, 0, 0};
	fp_rep_svg_begin(b, "fig-forest", "C-index per centre (95% CI), pooled", "Harrell's C", "", &p, 560, height, 0);
	fp_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n",
	              fp_rep_px(&p, 0.5), fp_rep_px(&p, 0.5), p.top, p.top + p.h);
	for (size_t k = 0; k < r->ncentre; k++) {
		const struct centre *c = &r->centre[k];
		double yrow = fp_rep_py(&p, (double)rows - (double)k - 0.5);
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"start\">", p.left + 4, yrow + 4);
		fp_rep_html(b, c->id);
		fp_buf_printf(b, "</text>");
		if (!c->c_ok) continue;
		double lo = c->c.c - Z975 * c->c.se, hi = c->c.c + Z975 * c->c.se;
		fp_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
		                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\" fill=\"%s\"/>\n",
		              fp_rep_px(&p, fmax(p.x0, lo)), fp_rep_px(&p, fmin(p.x1, hi)), yrow, yrow, fp_rep_px(&p, c->c.c) - 3.5, yrow - 3.5, fp_rep_palette[0]);
	}
	double yp = fp_rep_py(&p, 1.5), ym = fp_rep_py(&p, 0.5);
	if (pooled_ok)
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">pooled (exact, stratified)</text>"
		                 "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"2\"/>\n",
		              p.left + 4, yp + 4, fp_rep_px(&p, pooled->c - Z975 * pooled->se), fp_rep_px(&p, pooled->c + Z975 * pooled->se), yp, yp);
	if (meta_ok) {
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">random effects (PI dashed)</text>", p.left + 4, ym + 4);
		if (isfinite(meta->pi_low))
			fp_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d1495b\" stroke-dasharray=\"5 3\"/>",
			              fp_rep_px(&p, fmax(p.x0, meta->pi_low)), fp_rep_px(&p, fmin(p.x1, meta->pi_high)), ym, ym);
		fp_buf_printf(b, "<polygon fill=\"#d1495b\" points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
		              fp_rep_px(&p, meta->ci_low), ym, fp_rep_px(&p, meta->estimate), ym - 6, fp_rep_px(&p, meta->ci_high), ym,
		              fp_rep_px(&p, meta->estimate), ym + 6);
	}
	fp_rep_svg_end(b, "Squares: centres with 95% CI (IJ SE). Black: exact pooled stratified C. Diamond: REML random-effects "
	           "summary on the logit scale with Hartung-Knapp CI; dashed: prediction interval (t, k-2 df).");
}

static enum fp_status fig_benefit(struct fp_buf *b, const struct report *r, json_t *jout)
{
	enum fp_status st = FP_OK;
	struct plot p = {0, max_time(r), 0, 1, 0, 0, 0, 0};
	unsigned char *mask = NULL;
	double *w = NULL;
	fp_rep_svg_begin(b, "fig-benefit", "Followed vs not followed the recommendation (IPTW-weighted KM)", "time",
	          "event-free survival", &p, 560, 420, 0);
	if (!r->arms) {
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no treatment columns in the manifest</text>",
		              p.left + p.w / 2, p.top + p.h / 2);
		fp_rep_svg_end(b, "Not available: the results carry no arm, recommendation or propensity.");
		return FP_OK;
	}
	FP_CHECK(st, fp_alloc_array(r->n + 1, 1, (void **)&mask, "benefit plot"));
	FP_CHECK(st, fp_alloc_array(r->n + 1, sizeof *w, (void **)&w, "benefit plot"));
	for (size_t i = 0; i < r->n; i++) {
		double e = (r->arm[i] >= 0 && (size_t)r->arm[i] < r->arms) ? r->ps[i * r->arms + (size_t)r->arm[i]] : 0;
		w[i] = e > 0 ? 1 / e : 0;
	}
	static const char *const names[2] = {"not followed", "followed"};
	for (int g = 0; g < 2; g++) {
		for (size_t i = 0; i < r->n; i++) mask[i] = (r->arm[i] == r->rec[i]) == g;
		double *xs = NULL, *ys = NULL;
		size_t np = 0;
		FP_CHECK(st, fp_rep_km_curve(r->time, r->event, w, mask, r->n, &xs, &ys, &np));
		fp_rep_svg_line(b, &p, xs, ys, np, fp_rep_palette[g ? 2 : 1], 1, g ? NULL : "5 3");
		fp_rep_svg_legend(b, &p, (size_t)g, names[g], fp_rep_palette[g ? 2 : 1]);
		free(xs);
		free(ys);
	}
	struct fp_benefit_result br;
	if (fp_validate_benefit(r->time, r->event, r->arm, r->rec, r->ps, r->n, r->arms, r->tau, &br) == FP_OK) {
		json_t *jb = json_object();
		json_object_set_new(jb, "tau", json_real(r->tau));
		json_object_set_new(jb, "followed", json_integer((json_int_t)br.followed));
		json_object_set_new(jb, "not_followed", json_integer((json_int_t)br.not_followed));
		json_object_set_new(jb, "rmst_followed", json_real(br.rmst_followed));
		json_object_set_new(jb, "rmst_not", json_real(br.rmst_not));
		json_object_set_new(jb, "rmst_diff", json_real(br.rmst_diff));
		json_object_set_new(jb, "policy_value", json_real(br.policy_value));
		json_object_set_new(jout, "benefit", jb);
	} else {
		FP_WARN("report: benefit: %s", fp_error_msg());
		fp_error_clear();
	}
	fp_rep_svg_end(b, "Weighted by the inverse propensity of the arm received. Descriptive only: confounding by indication "
	           "remains possible; confirmation needs a randomised comparison.");
fail:
	free(mask);
	free(w);
	return st;
}

/* ---- tables ------------------------------------------------------------- */

static void num(struct fp_buf *b, double v, int ok)
{
	if (ok && isfinite(v)) fp_buf_printf(b, "%.4f", v);
	else fp_buf_printf(b, "-");
}

static json_t *jnum(double v, int ok) { return ok && isfinite(v) ? json_real(v) : json_null(); }

static enum fp_status load_manifest(struct report *r, const char *results, char *dir, size_t dirlen)
{
	char path[4096];
	size_t len = strlen(results);
	int is_json = len > 5 && strcmp(results + len - 5, ".json") == 0;
	snprintf(path, sizeof path, is_json ? "%s" : "%s/manifest.json", results);
	snprintf(dir, dirlen, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) *slash = '\0';
	else snprintf(dir, dirlen, ".");
	FP_TRY(fp_json_load_file(path, &r->manifest));
	json_t *m = r->manifest, *cols = json_object_get(m, "columns"), *cs = json_object_get(m, "centres");
	r->study = jstr(m, "study") ? jstr(m, "study") : "(study not named)";
	r->model_hash = jstr(m, "model_hash") ? jstr(m, "model_hash") : "(not given)";
	json_t *h = json_object_get(m, "horizon"), *tau = json_object_get(m, "tau");
	if (!json_is_number(h) || !(json_number_value(h) > 0))
		return FP_FAIL(FP_ERR_FORMAT, "%s: \"horizon\" must be a positive number (days)", path);
	r->horizon = json_number_value(h);
	r->tau = json_is_number(tau) ? json_number_value(tau) : r->horizon;
	if (!json_is_object(cols)) return FP_FAIL(FP_ERR_FORMAT, "%s: \"columns\" must be an object", path);
	r->col_time = jstr(cols, "time");
	r->col_event = jstr(cols, "event");
	r->col_risk = jstr(cols, "risk");
	if (!r->col_time || !r->col_event || !r->col_risk)
		return FP_FAIL(FP_ERR_FORMAT, "%s: \"columns\" needs \"time\", \"event\" and \"risk\"", path);
	r->col_label = jstr(cols, "label");
	r->col_prob = jstr(cols, "prob");
	r->col_arm = jstr(cols, "arm");
	r->col_rec = jstr(cols, "recommended");
	r->col_ps = jstr(cols, "propensity");
	if (r->col_arm && r->col_rec && r->col_ps) {
		char names[FP_REPORT_MAX_CENTRES][128];
		r->arms = split_names(r->col_ps, names, FP_REPORT_MAX_CENTRES);
	}
	if (!json_is_array(cs) || json_array_size(cs) == 0)
		return FP_FAIL(FP_ERR_FORMAT, "%s: \"centres\" must be a non-empty array", path);
	if (json_array_size(cs) > FP_REPORT_MAX_CENTRES)
		return FP_FAIL(FP_ERR_LIMIT, "%s: %zu centres, more than %d", path, json_array_size(cs), FP_REPORT_MAX_CENTRES);
	return FP_OK;
}

/* Rows mode: the manifest, every centre's rows and metrics, and the pooled
 * values computed on the pooled rows. */
static enum fp_status load_rows(struct report *r, const char *results)
{
	char dir[4096], path[4200];
	FP_TRY(load_manifest(r, results, dir, sizeof dir));
	json_t *cs = json_object_get(r->manifest, "centres"), *jc;
	size_t i;
	json_array_foreach(cs, i, jc) {
		struct centre *c = &r->centre[r->ncentre];
		c->id = jstr(jc, "id");
		const char *file = jstr(jc, "csv");
		if (!c->id || !file) return FP_FAIL(FP_ERR_FORMAT, "%s/manifest: centre %zu needs \"id\" and \"csv\"", dir, i + 1);
		c->snapshot_hash = jstr(jc, "snapshot_hash");
		c->snapshot_date = jstr(jc, "snapshot_date");
		snprintf(path, sizeof path, "%s/%s", dir, file);
		r->ncentre++;
		FP_TRY(load_centre(r, c, path));
		centre_stats(r, c);
		c->median_time = NAN;
		fp_validate_quantile7(c->time, c->n, 0.5, &c->median_time);
		double mr = 0;
		for (size_t q = 0; q < c->n; q++) mr += c->risk[q];
		c->mean_risk = c->n ? mr / (double)c->n : NAN;
	}
	fp_error_clear();
	FP_TRY(pool_rows(r));
	r->have_binary = r->label != NULL;
	r->have_benefit = r->arms > 0;
	json_t *jcuts = json_object_get(r->manifest, "risk_cuts");
	if (json_is_array(jcuts)) {
		if (json_array_size(jcuts) != 2 || !json_is_number(json_array_get(jcuts, 0)) ||
		    !json_is_number(json_array_get(jcuts, 1)))
			return FP_FAIL(FP_ERR_FORMAT, "%s/manifest.json: \"risk_cuts\" must be two numbers", dir);
		r->risk_cuts[0] = json_number_value(json_array_get(jcuts, 0));
		r->risk_cuts[1] = json_number_value(json_array_get(jcuts, 1));
	} else { /* the pooled rows' tertiles (only a rehearsal can see them) */
		FP_TRY(fp_validate_quantile7(r->risk, r->n, 1.0 / 3, &r->risk_cuts[0]));
		FP_TRY(fp_validate_quantile7(r->risk, r->n, 2.0 / 3, &r->risk_cuts[1]));
	}
	r->have_cuts = 1;
	/* pooled: exact stratified C from the centres' five numbers; meta on logit C */
	struct fp_pool_cindex_site sites[FP_REPORT_MAX_CENTRES];
	size_t nsite = 0, nmeta = 0;
	double cest[FP_REPORT_MAX_CENTRES], cse[FP_REPORT_MAX_CENTRES];
	for (size_t k = 0; k < r->ncentre; k++) {
		struct centre *c = &r->centre[k];
		if (fp_pool_cindex_site(c->time, c->event, c->risk, c->n, NULL, &sites[nsite]) == FP_OK) nsite++;
		if (c->c_ok && c->c.se > 0 && c->c.c > 0 && c->c.c < 1) {
			cest[nmeta] = c->c.c;
			cse[nmeta++] = c->c.se;
		}
	}
	fp_error_clear();
	r->pooled_ok = nsite > 0 && fp_pool_cindex(sites, nsite, &r->pooled) == FP_OK;
	r->meta_ok = nmeta >= 2 && fp_validate_meta(cest, cse, nmeta, FP_META_LOGIT, &r->meta) == FP_OK;
	r->pkm_ok = fp_validate_km(r->time, r->event, r->n, &r->horizon, 1, &r->pkm) == FP_OK;
	if (r->label) {
		r->pauc_ok = fp_validate_auc(r->label, r->prob, r->n, &r->pauc, NULL, NULL) == FP_OK;
		double o = 0, e = 0, b = 0;
		for (size_t q = 0; q < r->n; q++) {
			o += r->label[q];
			e += r->prob[q];
			b += (r->prob[q] - r->label[q]) * (r->prob[q] - r->label[q]);
		}
		r->pcal_ok = o > 0 && r->n > 0;
		r->poe = o > 0 ? e / o : NAN;
		r->pbrier = r->n ? b / (double)r->n : NAN;
	}
	fp_error_clear();
	return FP_OK;
}

/* O/E and Brier of a centre's binary outcome: from its rows, or from the
 * calibration sums of its summary. */
static int centre_oe(const struct report *r, const struct centre *c, double *oe, double *brier)
{
	double n = 0, o = 0, e = 0, b = 0;
	if (r->from_summaries) {
		json_t *cal = json_object_get(c->summary, "calibration");
		if (!cal) return 0;
		n = json_number_value(json_object_get(cal, "n"));
		o = json_number_value(json_object_get(cal, "observed"));
		e = json_number_value(json_object_get(cal, "expected"));
		b = json_number_value(json_object_get(cal, "brier_sum"));
	} else {
		if (!c->label) return 0;
		for (size_t q = 0; q < c->n; q++) {
			n += 1;
			o += c->label[q];
			e += c->prob[q];
			b += (c->prob[q] - c->label[q]) * (c->prob[q] - c->label[q]);
		}
	}
	*oe = o > 0 ? e / o : NAN;
	*brier = n > 0 ? b / n : NAN;
	return n > 0;
}

static const char tripod_text[] =
	"<h2>TRIPOD+AI items covered</h2>\n<p>5a-b, 6a (data sources, centres, snapshot hashes and dates); "
	"8a (outcome and horizon); 12d-e (heterogeneity across centres; measures and plots with rationale "
	"in docs/STATISTICS.md); 20b (characteristics per centre, table1.csv); 23a (performance with 95% CI); "
	"23b (heterogeneity: tau&sup2;, I&sup2;, prediction interval). Not covered here: 10, 11, 14, 16, 18e-f, "
	"20a, 20c, 24 (to be written by the study team).</p>\n"
	"<p>Treatment-benefit results are hypothesis-generating: treatment was not randomised.</p>\n</body></html>\n";

/* Writes report.html, report.json, performance.csv and table1.csv from a
 * loaded report (either mode). */
static enum fp_status write_report(struct report *r, const char *out_dir)
{
	enum fp_status st = FP_OK;
	struct fp_buf html, csv, t1;
	json_t *jout = json_object();
	char path[4200], now[32];
	size_t ntotal = 0;
	fp_buf_init(&html, REPORT_MAX_HTML);
	fp_buf_init(&csv, REPORT_MAX_HTML);
	fp_buf_init(&t1, REPORT_MAX_HTML);
	if (!jout) return FP_FAIL(FP_ERR_NOMEM, "report.json");
	for (size_t k = 0; k < r->ncentre; k++) ntotal += r->centre[k].n;
	fp_time_utc_iso(now, sizeof now);
	const char *source = r->from_summaries ? "federated summaries" : "rows";
	json_object_set_new(jout, "study", json_string(r->study));
	json_object_set_new(jout, "model_hash", json_string(r->model_hash));
	json_object_set_new(jout, "source", json_string(source));
	json_object_set_new(jout, "generated", json_string(now));
	json_object_set_new(jout, "fedpath_version", json_string(fp_version()));
	json_object_set_new(jout, "horizon", json_real(r->horizon));
	json_object_set_new(jout, "risk_cuts", json_pack("[ff]", r->risk_cuts[0], r->risk_cuts[1]));
	if (r->from_summaries) json_object_set_new(jout, "min_cell", json_real(r->min_cell));
	json_t *jcent = json_array();
	fp_buf_printf(&csv, "centre,n,events,c,c_se,c_low,c_high,auc_t,brier_t,ipa_t,oe_t,auc,auc_low,auc_high,citl,slope,ici,"
	                    "oe,brier\n");
	fp_buf_printf(&t1, "centre,n,events,event_rate,median_time,mean_risk,snapshot_hash,snapshot_date\n");
	for (size_t k = 0; k < r->ncentre; k++) {
		struct centre *c = &r->centre[k];
		double oe = NAN, brier = NAN;
		int oe_ok = centre_oe(r, c, &oe, &brier);
		json_t *o = json_object();
		json_object_set_new(o, "id", json_string(c->id));
		json_object_set_new(o, "n", json_integer((json_int_t)c->n));
		json_object_set_new(o, "events", json_integer((json_int_t)c->events));
		json_object_set_new(o, "median_time", jnum(c->median_time, 1));
		json_object_set_new(o, "mean_risk", jnum(c->mean_risk, 1));
		json_object_set_new(o, "snapshot_hash", c->snapshot_hash ? json_string(c->snapshot_hash) : json_null());
		json_object_set_new(o, "snapshot_date", c->snapshot_date ? json_string(c->snapshot_date) : json_null());
		json_object_set_new(o, "c", jnum(c->c.c, c->c_ok));
		json_object_set_new(o, "c_se", jnum(c->c.se, c->c_ok));
		json_object_set_new(o, "auc_t", jnum(c->h.auc, c->h_ok));
		json_object_set_new(o, "brier_t", jnum(c->h.brier, c->h_ok));
		json_object_set_new(o, "ipa_t", jnum(c->h.ipa, c->h_ok));
		json_object_set_new(o, "oe_t", jnum(c->h.oe, c->h_ok));
		json_object_set_new(o, "auc", jnum(c->auc.auc, c->auc_ok));
		json_object_set_new(o, "auc_se", jnum(c->auc.se, c->auc_ok));
		json_object_set_new(o, "citl", jnum(c->cal.citl, c->cal_ok));
		json_object_set_new(o, "slope", jnum(c->cal.slope, c->cal_ok));
		json_object_set_new(o, "ici", jnum(c->cal.ici, c->cal_ok));
		json_object_set_new(o, "oe", jnum(oe, oe_ok));
		json_object_set_new(o, "brier", jnum(brier, oe_ok));
		if (r->from_summaries) {
			json_t *t1v = json_object_get(c->summary, "table1");
			if (json_object_get(t1v, "variables")) json_object_set(o, "variables", json_object_get(t1v, "variables"));
			if (json_object_get(t1v, "regimens")) json_object_set(o, "regimens", json_object_get(t1v, "regimens"));
		}
		json_array_append_new(jcent, o);
		fp_buf_printf(&csv, "\"%s\",%zu,%zu,", c->id, c->n, c->events);
		const double v[] = {c->c.c, c->c.se, c->c.c - Z975 * c->c.se, c->c.c + Z975 * c->c.se, c->h.auc, c->h.brier,
		                    c->h.ipa, c->h.oe, c->auc.auc, c->auc.ci_low, c->auc.ci_high, c->cal.citl, c->cal.slope,
		                    c->cal.ici, oe, brier};
		const int ok[] = {c->c_ok, c->c_ok, c->c_ok, c->c_ok, c->h_ok, c->h_ok, c->h_ok, c->h_ok, c->auc_ok, c->auc_ok,
		                  c->auc_ok, c->cal_ok, c->cal_ok, c->cal_ok, oe_ok, oe_ok};
		for (int j = 0; j < 16; j++) {
			num(&csv, v[j], ok[j]);
			fp_buf_printf(&csv, j == 15 ? "\n" : ",");
		}
		fp_buf_printf(&t1, "\"%s\",%zu,%zu,%.4f,%.1f,%.4f,\"%s\",\"%s\"\n", c->id, c->n, c->events,
		              c->n ? (double)c->events / (double)c->n : 0, c->median_time, c->mean_risk,
		              c->snapshot_hash ? c->snapshot_hash : "", c->snapshot_date ? c->snapshot_date : "");
	}
	json_object_set_new(jout, "centres", jcent);
	const struct fp_cindex_result *pc = &r->pooled;
	const struct fp_meta_result *mt = &r->meta;
	json_t *jp = json_object();
	json_object_set_new(jp, "c_stratified", jnum(pc->c, r->pooled_ok));
	json_object_set_new(jp, "c_stratified_se", jnum(pc->se, r->pooled_ok));
	json_object_set_new(jp, "meta_c", jnum(mt->estimate, r->meta_ok));
	json_object_set_new(jp, "meta_ci_low", jnum(mt->ci_low, r->meta_ok));
	json_object_set_new(jp, "meta_ci_high", jnum(mt->ci_high, r->meta_ok));
	json_object_set_new(jp, "meta_pi_low", jnum(mt->pi_low, r->meta_ok));
	json_object_set_new(jp, "meta_pi_high", jnum(mt->pi_high, r->meta_ok));
	json_object_set_new(jp, "meta_tau2", jnum(mt->tau2, r->meta_ok));
	json_object_set_new(jp, "meta_i2", jnum(mt->i2, r->meta_ok));
	json_object_set_new(jp, "auc", jnum(r->pauc.auc, r->pauc_ok));
	json_object_set_new(jp, "auc_se", jnum(r->pauc.se, r->pauc_ok));
	json_object_set_new(jp, "auc_low", jnum(r->pauc.ci_low, r->pauc_ok));
	json_object_set_new(jp, "auc_high", jnum(r->pauc.ci_high, r->pauc_ok));
	json_object_set_new(jp, "km_horizon_survival", jnum(r->pkm.survival, r->pkm_ok));
	json_object_set_new(jp, "km_horizon_se", jnum(r->pkm.se, r->pkm_ok));
	json_object_set_new(jp, "km_horizon_n_risk", jnum(r->pkm.n_risk, r->pkm_ok));
	json_object_set_new(jp, "oe", jnum(r->poe, r->pcal_ok));
	json_object_set_new(jp, "brier", jnum(r->pbrier, r->pcal_ok));
	json_object_set_new(jout, "pooled", jp);
	fp_buf_printf(&csv, "pooled_stratified,%zu,,", ntotal);
	num(&csv, pc->c, r->pooled_ok), fp_buf_printf(&csv, ",");
	num(&csv, pc->se, r->pooled_ok), fp_buf_printf(&csv, ",");
	num(&csv, pc->c - Z975 * pc->se, r->pooled_ok), fp_buf_printf(&csv, ",");
	num(&csv, pc->c + Z975 * pc->se, r->pooled_ok), fp_buf_printf(&csv, ",,,,,");
	num(&csv, r->pauc.auc, r->pauc_ok), fp_buf_printf(&csv, ",");
	num(&csv, r->pauc.ci_low, r->pauc_ok), fp_buf_printf(&csv, ",");
	num(&csv, r->pauc.ci_high, r->pauc_ok), fp_buf_printf(&csv, ",,,,");
	num(&csv, r->poe, r->pcal_ok), fp_buf_printf(&csv, ",");
	num(&csv, r->pbrier, r->pcal_ok), fp_buf_printf(&csv, "\n");
	fp_buf_printf(&csv, "pooled_random_effects,%zu,,", ntotal);
	num(&csv, mt->estimate, r->meta_ok), fp_buf_printf(&csv, ",,");
	num(&csv, mt->ci_low, r->meta_ok), fp_buf_printf(&csv, ",");
	num(&csv, mt->ci_high, r->meta_ok), fp_buf_printf(&csv, ",,,,,,,,,,,,\n");

	/* HTML */
	fp_buf_printf(&html, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Validation report</title>"
	                     "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
	                     "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;"
	                     "text-align:right}th{background:#eef}figure{display:inline-block;margin:8px}"
	                     "figcaption{font-size:12px;max-width:540px}</style></head><body>\n<h1>Validation report</h1>\n<p>");
	fp_rep_html(&html, r->study);
	fp_buf_printf(&html, "</p>\n<ul><li>Model version hash: <code>");
	fp_rep_html(&html, r->model_hash);
	fp_buf_printf(&html, "</code></li><li>Generated %s by fedpath %s</li><li>Horizon: %.0f; RMST horizon: %.0f (time unit "
	                     "of the data)</li>\n", now, fp_version(), r->horizon, r->tau);
	if (r->from_summaries)
		fp_buf_printf(&html, "<li id=\"source\">Built from <b>federated summaries</b>: each centre sent counts, sums and its "
		                     "own metrics only (no patient row left a centre); cells of fewer than %.0f patients were "
		                     "suppressed at the centres.</li>", r->min_cell);
	else
		fp_buf_printf(&html, "<li id=\"source\">Built from the centres' evaluation rows (a rehearsal: in a study the rows "
		                     "stay at the centres and the report is built from their summaries).</li>");
	fp_buf_printf(&html, "<li>Risk groups: predicted risk &le; %.4g (low), &le; %.4g (middle), above (high)</li></ul>\n",
	              r->risk_cuts[0], r->risk_cuts[1]);
	fp_buf_printf(&html, "<h2>Data snapshots (TRIPOD+AI 5a-b, 6a, 20b)</h2>\n<table><tr><th>centre</th><th>n</th><th>events</th>"
	                     "<th>snapshot hash</th><th>snapshot date</th></tr>\n");
	for (size_t k = 0; k < r->ncentre; k++) {
		const struct centre *c = &r->centre[k];
		fp_buf_printf(&html, "<tr><td>");
		fp_rep_html(&html, c->id);
		fp_buf_printf(&html, "</td><td>%zu</td><td>%zu</td><td><code>", c->n, c->events);
		fp_rep_html(&html, c->snapshot_hash ? c->snapshot_hash : "-");
		fp_buf_printf(&html, "</code></td><td>");
		fp_rep_html(&html, c->snapshot_date ? c->snapshot_date : "-");
		fp_buf_printf(&html, "</td></tr>\n");
	}
	fp_buf_printf(&html, "</table>\n");
	if (r->from_summaries) fp_rep_table1_variables(&html, r);
	fp_buf_printf(&html, "<h2>Performance per centre and pooled (TRIPOD+AI 23a-b)</h2>\n<table><tr><th>centre</th>"
	                     "<th>C</th><th>95%% CI</th><th>AUC(t)</th><th>Brier(t)</th><th>IPA(t)</th><th>O/E(t)</th>"
	                     "<th>AUC</th><th>CITL</th><th>slope</th><th>ICI</th><th>O/E</th><th>Brier</th></tr>\n");
	for (size_t k = 0; k < r->ncentre; k++) {
		const struct centre *c = &r->centre[k];
		double oe = NAN, brier = NAN;
		int oe_ok = centre_oe(r, c, &oe, &brier);
		fp_buf_printf(&html, "<tr><td>");
		fp_rep_html(&html, c->id);
		fp_buf_printf(&html, "</td><td>");
		num(&html, c->c.c, c->c_ok);
		fp_buf_printf(&html, "</td><td>");
		num(&html, c->c.c - Z975 * c->c.se, c->c_ok);
		fp_buf_printf(&html, "&ndash;");
		num(&html, c->c.c + Z975 * c->c.se, c->c_ok);
		const double v[] = {c->h.auc, c->h.brier, c->h.ipa, c->h.oe, c->auc.auc, c->cal.citl, c->cal.slope, c->cal.ici,
		                    oe, brier};
		const int ok[] = {c->h_ok, c->h_ok, c->h_ok, c->h_ok, c->auc_ok, c->cal_ok, c->cal_ok, c->cal_ok, oe_ok, oe_ok};
		for (int j = 0; j < 10; j++) {
			fp_buf_printf(&html, "</td><td>");
			num(&html, v[j], ok[j]);
		}
		fp_buf_printf(&html, "</td></tr>\n");
	}
	fp_buf_printf(&html, "<tr><th>pooled, exact stratified</th><td>");
	num(&html, pc->c, r->pooled_ok);
	fp_buf_printf(&html, "</td><td>");
	num(&html, pc->c - Z975 * pc->se, r->pooled_ok);
	fp_buf_printf(&html, "&ndash;");
	num(&html, pc->c + Z975 * pc->se, r->pooled_ok);
	fp_buf_printf(&html, "</td><td colspan=\"4\">KM at the horizon ");
	num(&html, r->pkm.survival, r->pkm_ok);
	fp_buf_printf(&html, "</td><td>");
	num(&html, r->pauc.auc, r->pauc_ok);
	fp_buf_printf(&html, "</td><td colspan=\"3\"></td><td>");
	num(&html, r->poe, r->pcal_ok);
	fp_buf_printf(&html, "</td><td>");
	num(&html, r->pbrier, r->pcal_ok);
	fp_buf_printf(&html, "</td></tr>\n<tr><th>random effects (REML, HK)</th><td>");
	num(&html, mt->estimate, r->meta_ok);
	fp_buf_printf(&html, "</td><td>");
	num(&html, mt->ci_low, r->meta_ok);
	fp_buf_printf(&html, "&ndash;");
	num(&html, mt->ci_high, r->meta_ok);
	fp_buf_printf(&html, "</td><td colspan=\"10\">PI ");
	num(&html, mt->pi_low, r->meta_ok);
	fp_buf_printf(&html, "&ndash;");
	num(&html, mt->pi_high, r->meta_ok);
	fp_buf_printf(&html, ", tau&sup2; ");
	num(&html, mt->tau2, r->meta_ok);
	fp_buf_printf(&html, ", I&sup2; %.1f%%</td></tr>\n</table>\n<p>Pooled AUC%s, KM at the horizon, O/E and Brier are exact "
	                     "pooled values (every centre's patients together); the C-index is pooled within centres.</p>\n"
	                     "<h2>Figures (TRIPOD+AI 12e, 23a)</h2>\n",
	              r->meta_ok ? mt->i2 : 0.0, r->from_summaries ? " (on the shared score grid)" : "");
	if (r->from_summaries) {
		FP_CHECK(st, fp_rep_fig_roc_grid(&html, r));
		FP_CHECK(st, fp_rep_fig_calibration_bins(&html, r));
		FP_CHECK(st, fp_rep_fig_km_risk_tables(&html, r, jout));
	} else {
		FP_CHECK(st, fig_roc(&html, r));
		FP_CHECK(st, fig_calibration(&html, r));
		FP_CHECK(st, fig_km_risk(&html, r, jout));
	}
	fig_forest(&html, r, pc, r->pooled_ok, mt, r->meta_ok);
	if (r->from_summaries) FP_CHECK(st, fp_rep_fig_benefit_tables(&html, r, jout));
	else FP_CHECK(st, fig_benefit(&html, r, jout));
	fp_buf_printf(&html, "%s", tripod_text);
	FP_CHECK(st, fp_mkdir_p(out_dir, 0755));
	snprintf(path, sizeof path, "%s/report.html", out_dir);
	FP_CHECK(st, fp_file_commit(path, html.data, html.len, 0644));
	snprintf(path, sizeof path, "%s/performance.csv", out_dir);
	FP_CHECK(st, fp_file_commit(path, csv.data, csv.len, 0644));
	snprintf(path, sizeof path, "%s/table1.csv", out_dir);
	FP_CHECK(st, fp_file_commit(path, t1.data, t1.len, 0644));
	snprintf(path, sizeof path, "%s/report.json", out_dir);
	FP_CHECK(st, fp_json_save_file(path, jout, 0644));
fail:
	json_decref(jout);
	fp_buf_close(&html);
	fp_buf_close(&csv);
	fp_buf_close(&t1);
	return st;
}

static int is_summaries_dir(const char *results)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/pooled.json", results);
	return access(path, F_OK) == 0;
}

enum fp_status fp_report_build(const char *results, const char *out_dir)
{
	enum fp_status st = FP_OK;
	struct report r;
	memset(&r, 0, sizeof r);
	if (is_summaries_dir(results)) {
		r.from_summaries = 1;
		FP_CHECK(st, fp_rep_load_summaries(&r, results));
	} else {
		FP_CHECK(st, load_rows(&r, results));
	}
	FP_CHECK(st, write_report(&r, out_dir));
fail:
	report_free(&r);
	return st;
}

enum fp_status fp_report_write_summaries(const char *results, const char *summaries_dir, double min_cell)
{
	enum fp_status st = FP_OK;
	struct report r;
	json_t *sites[FP_REPORT_MAX_CENTRES] = {NULL}, *agg = NULL;
	double *edges = NULL;
	size_t cells = 0, k = 0;
	char path[4200];
	memset(&r, 0, sizeof r);
	FP_CHECK(st, load_rows(&r, results));
	json_t *jg = json_object_get(r.manifest, "auc_grid");
	if (json_is_array(jg)) {
		size_t ne = json_array_size(jg);
		if (ne < 2) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: \"auc_grid\" needs at least two edges", results);
			goto fail;
		}
		FP_CHECK(st, fp_alloc_array(ne, sizeof *edges, (void **)&edges, "AUC grid"));
		for (size_t j = 0; j < ne; j++) edges[j] = json_number_value(json_array_get(jg, j));
		cells = ne - 1;
	}
	FP_CHECK(st, fp_mkdir_p(summaries_dir, 0755));
	for (k = 0; k < r.ncentre; k++) {
		const struct centre *c = &r.centre[k];
		struct fp_report_rows rows = {c->id, c->n, c->time, c->event, c->risk, c->label, c->prob, r.arms, c->arm, c->rec,
		                              c->ps};
		struct fp_report_site_options o = {r.horizon, r.tau, edges, cells, {r.risk_cuts[0], r.risk_cuts[1]}, min_cell,
		                                   r.model_hash, c->snapshot_hash, c->snapshot_date};
		if (strchr(c->id, '/') || c->id[0] == '.' || !c->id[0]) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: centre id '%s' cannot name a file", results, c->id);
			goto fail;
		}
		FP_CHECK(st, fp_report_site_summary(&rows, &o, &sites[k]));
		snprintf(path, sizeof path, "%s/site_%s.json", summaries_dir, c->id);
		FP_CHECK(st, fp_json_save_file(path, sites[k], 0644));
	}
	FP_CHECK(st, fp_pool_aggregate(sites, r.ncentre, &r.horizon, 1, &agg));
	json_object_set_new(agg, "study", json_string(r.study));
	json_object_set_new(agg, "model_hash", json_string(r.model_hash));
	snprintf(path, sizeof path, "%s/pooled.json", summaries_dir);
	FP_CHECK(st, fp_json_save_file(path, agg, 0644));
fail:
	for (size_t i = 0; i < FP_REPORT_MAX_CENTRES; i++) json_decref(sites[i]);
	json_decref(agg);
	free(edges);
	report_free(&r);
	return st;
}

static void print_cell(FILE *fp, json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (json_is_number(v)) fprintf(fp, " %7.3f", json_number_value(v));
	else fprintf(fp, " %7s", "-");
}

enum fp_status fp_report_print(const char *out_dir, FILE *fp)
{
	char path[4200];
	json_t *rep = NULL;
	snprintf(path, sizeof path, "%s/report.json", out_dir);
	FP_TRY(fp_json_load_file(path, &rep));
	json_t *cs = json_object_get(rep, "centres"), *c, *p = json_object_get(rep, "pooled");
	size_t i;
	fprintf(fp, "%s (from %s), model %.12s\n", jstr(rep, "study") ? jstr(rep, "study") : "", jstr(rep, "source") ? jstr(rep, "source") : "?",
	        jstr(rep, "model_hash") ? jstr(rep, "model_hash") : "?");
	fprintf(fp, "%-22s %6s %6s %7s %7s %7s %7s %7s %7s\n", "centre", "n", "events", "C", "low", "high", "AUC", "E/O", "Brier");
	json_array_foreach(cs, i, c) {
		const char *id = jstr(c, "id");
		double cc = json_number_value(json_object_get(c, "c")), se = json_number_value(json_object_get(c, "c_se"));
		int ok = json_is_number(json_object_get(c, "c")) && json_is_number(json_object_get(c, "c_se"));
		fprintf(fp, "%-22.22s %6lld %6lld", id ? id : "?", (long long)json_integer_value(json_object_get(c, "n")),
		        (long long)json_integer_value(json_object_get(c, "events")));
		print_cell(fp, c, "c");
		if (ok) fprintf(fp, " %7.3f %7.3f", cc - Z975 * se, cc + Z975 * se);
		else fprintf(fp, " %7s %7s", "-", "-");
		print_cell(fp, c, "auc");
		print_cell(fp, c, "oe");
		print_cell(fp, c, "brier");
		fprintf(fp, "\n");
	}
	double pc = json_number_value(json_object_get(p, "c_stratified")), pse = json_number_value(json_object_get(p, "c_stratified_se"));
	fprintf(fp, "%-36s", "pooled (exact, stratified C)");
	print_cell(fp, p, "c_stratified");
	if (json_is_number(json_object_get(p, "c_stratified_se"))) fprintf(fp, " %7.3f %7.3f", pc - Z975 * pse, pc + Z975 * pse);
	else fprintf(fp, " %7s %7s", "-", "-");
	print_cell(fp, p, "auc");
	print_cell(fp, p, "oe");
	print_cell(fp, p, "brier");
	fprintf(fp, "\n%-36s", "random effects (REML, HK)");
	print_cell(fp, p, "meta_c");
	print_cell(fp, p, "meta_ci_low");
	print_cell(fp, p, "meta_ci_high");
	fprintf(fp, "   PI");
	print_cell(fp, p, "meta_pi_low");
	print_cell(fp, p, "meta_pi_high");
	fprintf(fp, "   I2");
	print_cell(fp, p, "meta_i2");
	fprintf(fp, "\n");
	json_decref(rep);
	return FP_OK;
}
