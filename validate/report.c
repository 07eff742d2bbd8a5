/*
 * report.c: builds the validation report of fp_report.h. Per centre it
 * computes Harrell's C, performance at the horizon (AUC(t), IPCW Brier, IPA,
 * O/E) and, when a binary outcome is given, AUC with DeLong CI and
 * calibration; pooled it gives the exact stratified C (fp_pool) and a
 * random-effects summary of the centres' C with its prediction interval.
 * Figures are drawn as inline SVG so the HTML needs nothing else to render.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fp_common.h"
#include "fp_pool.h"
#include "fp_report.h"
#include "fp_table.h"
#include "fp_validate.h"
#include "validate_internal.h"

#define REPORT_MAX_HTML (64u << 20)
#define Z975 1.959963984540054

struct centre {
	const char *id, *snapshot_hash, *snapshot_date; /* borrowed from the manifest */
	size_t n;
	double *time, *risk, *prob, *ps;
	unsigned char *event, *label;
	int *arm, *rec;
	size_t events;
	struct fp_cindex_result c;
	int c_ok;
	struct fp_horizon_result h;
	int h_ok;
	struct fp_auc_result auc;
	int auc_ok;
	struct fp_calibration_result cal;
	int cal_ok;
};

struct report {
	json_t *manifest;
	const char *study, *model_hash;
	double horizon, tau;
	const char *col_time, *col_event, *col_risk, *col_label, *col_prob, *col_arm, *col_rec, *col_ps;
	size_t arms;
	struct centre centre[FP_REPORT_MAX_CENTRES];
	size_t ncentre;
	/* pooled rows (concatenated) for the figures */
	size_t n;
	double *time, *risk, *prob, *ps;
	unsigned char *event, *label;
	int *arm, *rec, *centre_id;
};

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

struct plot {
	double x0, x1, y0, y1; /* data range */
	double left, top, w, h; /* drawing area in pixels */
};

static double px(const struct plot *p, double x) { return p->left + (x - p->x0) / (p->x1 - p->x0) * p->w; }
static double py(const struct plot *p, double y) { return p->top + p->h - (y - p->y0) / (p->y1 - p->y0) * p->h; }

static const char *const palette[] = {"#1b6ca8", "#d1495b", "#2e8540", "#edae49", "#6a4c93", "#00798c", "#8d6346", "#444"};

static void html_text(struct fp_buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '<') fp_buf_printf(b, "&lt;");
		else if (*s == '>') fp_buf_printf(b, "&gt;");
		else if (*s == '&') fp_buf_printf(b, "&amp;");
		else if (*s == '"') fp_buf_printf(b, "&quot;");
		else fp_buf_append(b, s, 1);
	}
}

/* extra_bottom: pixels kept free under the x-axis title (numbers at risk). */
static void svg_begin(struct fp_buf *b, const char *id, const char *title, const char *xlab, const char *ylab,
                      struct plot *p, double width, double height, double extra_bottom)
{
	p->left = 85;
	p->top = 30;
	p->w = width - 105;
	p->h = height - 80 - extra_bottom;
	fp_buf_printf(b, "<figure><svg id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
	                 "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
	              id, width, height, width, height);
	fp_buf_printf(b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fp_buf_printf(b, "<text x=\"%.0f\" y=\"18\" font-size=\"13\" font-weight=\"bold\">", p->left);
	html_text(b, title);
	fp_buf_printf(b, "</text>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n",
	              p->left, p->top, p->w, p->h);
	for (int k = 0; k <= 4; k++) {
		double xv = p->x0 + (p->x1 - p->x0) * k / 4, yv = p->y0 + (p->y1 - p->y0) * k / 4;
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.4g</text>\n", px(p, xv), p->top + p->h + 14, xv);
		if (ylab[0]) /* a plot without a y label (forest) has rows, not a scale */
			fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", p->left - 4, py(p, yv) + 4, yv);
	}
	fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", p->left + p->w / 2, p->top + p->h + 30);
	html_text(b, xlab);
	fp_buf_printf(b, "</text>\n<text transform=\"translate(14,%.1f) rotate(-90)\" text-anchor=\"middle\">", p->top + p->h / 2);
	html_text(b, ylab);
	fp_buf_printf(b, "</text>\n");
}

static void svg_end(struct fp_buf *b, const char *caption)
{
	fp_buf_printf(b, "</svg><figcaption>");
	html_text(b, caption);
	fp_buf_printf(b, "</figcaption></figure>\n");
}

/* step = 1 draws a right-continuous step function (KM). */
static void svg_line(struct fp_buf *b, const struct plot *p, const double *x, const double *y, size_t n, const char *color,
                     int step, const char *dash)
{
	if (n == 0) return;
	fp_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s%s%s points=\"", color,
	              dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
	for (size_t i = 0; i < n; i++) {
		if (step && i > 0) fp_buf_printf(b, "%.1f,%.1f ", px(p, x[i]), py(p, y[i - 1]));
		fp_buf_printf(b, "%.1f,%.1f ", px(p, x[i]), py(p, y[i]));
	}
	fp_buf_printf(b, "\"/>\n");
}

static void svg_legend(struct fp_buf *b, const struct plot *p, size_t k, const char *label, const char *color)
{
	double y = p->top + 14 + 14 * (double)k;
	fp_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>",
	              p->left + p->w - 120, p->left + p->w - 100, y - 4, y - 4, color);
	fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", p->left + p->w - 96, y);
	html_text(b, label);
	fp_buf_printf(b, "</text>\n");
}

/* KM step curve of the rows with mask set (NULL: all), IPTW weights w (NULL: 1). */
static enum fp_status km_curve(const double *time, const unsigned char *event, const double *w, const unsigned char *mask,
                               size_t n, double **xs, double **ys, size_t *np)
{
	enum fp_status st = FP_OK;
	struct fp_vi_keyed *k = NULL;
	*xs = *ys = NULL;
	FP_CHECK(st, fp_alloc_array(n + 1, sizeof *k, (void **)&k, "KM curve"));
	FP_CHECK(st, fp_alloc_array(n + 2, sizeof **xs, (void **)xs, "KM curve"));
	FP_CHECK(st, fp_alloc_array(n + 2, sizeof **ys, (void **)ys, "KM curve"));
	size_t m = 0;
	double risk = 0;
	for (size_t i = 0; i < n; i++)
		if (!mask || mask[i]) {
			k[m].key = time[i];
			k[m++].idx = i;
			risk += w ? w[i] : 1;
		}
	FP_CHECK(st, fp_vi_sort_keyed(k, m));
	double s = 1;
	size_t q = 0;
	(*xs)[q] = 0;
	(*ys)[q++] = 1;
	for (size_t i = 0; i < m;) {
		size_t e = i;
		double d = 0, out = 0;
		while (e < m && k[e].key == k[i].key) {
			double wi = w ? w[k[e].idx] : 1;
			out += wi;
			if (event[k[e].idx]) d += wi;
			e++;
		}
		if (d > 0 && risk > 0) {
			s *= (risk - d) / risk;
			(*xs)[q] = k[i].key;
			(*ys)[q++] = s;
		}
		risk -= out;
		if (e == m) {
			(*xs)[q] = k[i].key;
			(*ys)[q++] = s;
		}
		i = e;
	}
	*np = q;
fail:
	free(k);
	if (st != FP_OK) {
		free(*xs);
		free(*ys);
		*xs = *ys = NULL;
	}
	return st;
}

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
	svg_begin(b, "fig-roc", r->label ? "ROC per centre (binary outcome)" : "ROC per centre at the horizon",
	          "1 - specificity", "sensitivity", &p, 420, 400, 0);
	fp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n",
	              px(&p, 0), py(&p, 0), px(&p, 1), py(&p, 1));
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
			svg_line(b, &p, fx, ty, q, palette[k % 8], 0, NULL);
			char lab[96];
			double a = c->label ? (c->auc_ok ? c->auc.auc : NAN) : (c->h_ok ? c->h.auc : NAN);
			snprintf(lab, sizeof lab, "%.40s (%.3f)", c->id, a);
			if (k < 12) svg_legend(b, &p, k, lab, palette[k % 8]);
		}
		free(o);
		free(fx);
		free(ty);
	}
	svg_end(b, r->label ? "ROC curves of the binary outcome per centre, AUC in brackets."
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
	svg_begin(b, "fig-calibration", "Calibration (pooled rows)", "predicted probability", "observed (loess)", &p, 420, 400, 0);
	fp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n",
	              px(&p, 0), py(&p, 0), px(&p, 1), py(&p, 1));
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
		fp_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#9ab\"/>\n", px(&p, h / 20.0),
		              py(&p, 0) - 40.0 * hist[h] / hmax, p.w / 20 - 1, 40.0 * hist[h] / hmax);
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
		svg_line(b, &p, xs, ys, n, palette[0], 0, NULL);
	} else {
		fp_error_clear();
	}
	svg_end(b, "Loess (span 0.75, degree 2, direct) of the outcome on the prediction; bars: distribution of predictions.");
fail:
	free(y);
	free(yd);
	free(fit);
	free(xs);
	free(ys);
	free(k);
	return st;
}

/* KM by predicted-risk tertile with numbers at risk under the axis. */
static enum fp_status fig_km_risk(struct fp_buf *b, const struct report *r, json_t *jout)
{
	enum fp_status st = FP_OK;
	double q1, q2, tmax = max_time(r);
	unsigned char *mask = NULL;
	FP_TRY(fp_validate_quantile7(r->risk, r->n, 1.0 / 3, &q1));
	FP_TRY(fp_validate_quantile7(r->risk, r->n, 2.0 / 3, &q2));
	FP_TRY(fp_alloc_array(r->n + 1, 1, (void **)&mask, "risk groups"));
	struct plot p = {0, tmax, 0, 1, 0, 0, 0, 0};
	svg_begin(b, "fig-km-risk", "Kaplan-Meier by predicted risk group (pooled rows)", "time", "event-free survival", &p,
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
		FP_CHECK(st, km_curve(r->time, r->event, NULL, mask, r->n, &xs, &ys, &np));
		svg_line(b, &p, xs, ys, np, palette[g], 1, NULL);
		svg_legend(b, &p, (size_t)g, names[g], palette[g]);
		free(xs);
		free(ys);
		/* numbers at risk at the 5 axis ticks */
		json_t *nr = json_array();
		fp_buf_printf(b, "<text x=\"4\" y=\"%.1f\" fill=\"%s\">%s</text>", p.top + p.h + 48 + 12.0 * g, palette[g], names[g]);
		for (int k = 0; k <= 4; k++) {
			double tk = tmax * k / 4;
			size_t at = 0;
			for (size_t i = 0; i < r->n; i++) at += mask[i] && r->time[i] >= tk;
			fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">%zu</text>", px(&p, tk),
			              p.top + p.h + 48 + 12.0 * g, palette[g], at);
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
	svg_end(b, "Tertiles of the predicted risk; numbers at risk at each axis tick below the plot.");
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
	svg_begin(b, "fig-forest", "C-index per centre (95% CI), pooled", "Harrell's C", "", &p, 560, height, 0);
	fp_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n",
	              px(&p, 0.5), px(&p, 0.5), p.top, p.top + p.h);
	for (size_t k = 0; k < r->ncentre; k++) {
		const struct centre *c = &r->centre[k];
		double yrow = py(&p, (double)rows - (double)k - 0.5);
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"start\">", p.left + 4, yrow + 4);
		html_text(b, c->id);
		fp_buf_printf(b, "</text>");
		if (!c->c_ok) continue;
		double lo = c->c.c - Z975 * c->c.se, hi = c->c.c + Z975 * c->c.se;
		fp_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
		                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\" fill=\"%s\"/>\n",
		              px(&p, fmax(p.x0, lo)), px(&p, fmin(p.x1, hi)), yrow, yrow, px(&p, c->c.c) - 3.5, yrow - 3.5, palette[0]);
	}
	double yp = py(&p, 1.5), ym = py(&p, 0.5);
	if (pooled_ok)
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">pooled (exact, stratified)</text>"
		                 "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"2\"/>\n",
		              p.left + 4, yp + 4, px(&p, pooled->c - Z975 * pooled->se), px(&p, pooled->c + Z975 * pooled->se), yp, yp);
	if (meta_ok) {
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">random effects (PI dashed)</text>", p.left + 4, ym + 4);
		if (isfinite(meta->pi_low))
			fp_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d1495b\" stroke-dasharray=\"5 3\"/>",
			              px(&p, fmax(p.x0, meta->pi_low)), px(&p, fmin(p.x1, meta->pi_high)), ym, ym);
		fp_buf_printf(b, "<polygon fill=\"#d1495b\" points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
		              px(&p, meta->ci_low), ym, px(&p, meta->estimate), ym - 6, px(&p, meta->ci_high), ym,
		              px(&p, meta->estimate), ym + 6);
	}
	svg_end(b, "Squares: centres with 95% CI (IJ SE). Black: exact pooled stratified C. Diamond: REML random-effects "
	           "summary on the logit scale with Hartung-Knapp CI; dashed: prediction interval (t, k-2 df).");
}

static enum fp_status fig_benefit(struct fp_buf *b, const struct report *r, json_t *jout)
{
	enum fp_status st = FP_OK;
	struct plot p = {0, max_time(r), 0, 1, 0, 0, 0, 0};
	unsigned char *mask = NULL;
	double *w = NULL;
	svg_begin(b, "fig-benefit", "Followed vs not followed the recommendation (IPTW-weighted KM)", "time",
	          "event-free survival", &p, 560, 420, 0);
	if (!r->arms) {
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no treatment columns in the manifest</text>",
		              p.left + p.w / 2, p.top + p.h / 2);
		svg_end(b, "Not available: the results carry no arm, recommendation or propensity.");
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
		FP_CHECK(st, km_curve(r->time, r->event, w, mask, r->n, &xs, &ys, &np));
		svg_line(b, &p, xs, ys, np, palette[g ? 2 : 1], 1, g ? NULL : "5 3");
		svg_legend(b, &p, (size_t)g, names[g], palette[g ? 2 : 1]);
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
	svg_end(b, "Weighted by the inverse propensity of the arm received. Descriptive only: confounding by indication "
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

enum fp_status fp_report_build(const char *results, const char *out_dir)
{
	enum fp_status st = FP_OK;
	struct report r;
	struct fp_buf html, csv, t1;
	json_t *jout = NULL;
	char dir[4096], path[4200];
	memset(&r, 0, sizeof r);
	fp_buf_init(&html, REPORT_MAX_HTML);
	fp_buf_init(&csv, REPORT_MAX_HTML);
	fp_buf_init(&t1, REPORT_MAX_HTML);
	FP_CHECK(st, load_manifest(&r, results, dir, sizeof dir));
	json_t *cs = json_object_get(r.manifest, "centres"), *jc;
	size_t i;
	json_array_foreach(cs, i, jc) {
		struct centre *c = &r.centre[r.ncentre];
		c->id = jstr(jc, "id");
		const char *file = jstr(jc, "csv");
		if (!c->id || !file) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s/manifest: centre %zu needs \"id\" and \"csv\"", dir, i + 1);
			goto fail;
		}
		c->snapshot_hash = jstr(jc, "snapshot_hash");
		c->snapshot_date = jstr(jc, "snapshot_date");
		snprintf(path, sizeof path, "%s/%s", dir, file);
		r.ncentre++;
		FP_CHECK(st, load_centre(&r, c, path));
		centre_stats(&r, c);
	}
	FP_CHECK(st, pool_rows(&r));
	/* pooled: exact stratified C from the centres' five numbers; meta on logit C */
	struct fp_pool_cindex_site sites[FP_REPORT_MAX_CENTRES];
	size_t nsite = 0;
	double cest[FP_REPORT_MAX_CENTRES], cse[FP_REPORT_MAX_CENTRES];
	size_t nmeta = 0;
	for (size_t k = 0; k < r.ncentre; k++) {
		struct centre *c = &r.centre[k];
		if (fp_pool_cindex_site(c->time, c->event, c->risk, c->n, NULL, &sites[nsite]) == FP_OK) nsite++;
		if (c->c_ok && c->c.se > 0 && c->c.c > 0 && c->c.c < 1) {
			cest[nmeta] = c->c.c;
			cse[nmeta++] = c->c.se;
		}
	}
	fp_error_clear();
	struct fp_cindex_result pooled;
	struct fp_meta_result meta;
	int pooled_ok = nsite > 0 && fp_pool_cindex(sites, nsite, &pooled) == FP_OK;
	int meta_ok = nmeta >= 2 && fp_validate_meta(cest, cse, nmeta, FP_META_LOGIT, &meta) == FP_OK;
	fp_error_clear();

	jout = json_object();
	char now[32];
	fp_time_utc_iso(now, sizeof now);
	json_object_set_new(jout, "study", json_string(r.study));
	json_object_set_new(jout, "model_hash", json_string(r.model_hash));
	json_object_set_new(jout, "generated", json_string(now));
	json_object_set_new(jout, "fedpath_version", json_string(fp_version()));
	json_object_set_new(jout, "horizon", json_real(r.horizon));
	json_t *jcent = json_array();
	fp_buf_printf(&csv, "centre,n,events,c,c_se,c_low,c_high,auc_t,brier_t,ipa_t,oe_t,auc,auc_low,auc_high,citl,slope,ici\n");
	fp_buf_printf(&t1, "centre,n,events,event_rate,median_time,mean_risk,snapshot_hash,snapshot_date\n");
	for (size_t k = 0; k < r.ncentre; k++) {
		struct centre *c = &r.centre[k];
		double med = NAN;
		fp_validate_quantile7(c->time, c->n, 0.5, &med);
		double mr = 0;
		for (size_t q = 0; q < c->n; q++) mr += c->risk[q];
		mr = c->n ? mr / (double)c->n : NAN;
		json_t *o = json_object();
		json_object_set_new(o, "id", json_string(c->id));
		json_object_set_new(o, "n", json_integer((json_int_t)c->n));
		json_object_set_new(o, "events", json_integer((json_int_t)c->events));
		json_object_set_new(o, "median_time", jnum(med, 1));
		json_object_set_new(o, "mean_risk", jnum(mr, 1));
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
		json_array_append_new(jcent, o);
		fp_buf_printf(&csv, "\"%s\",%zu,%zu,", c->id, c->n, c->events);
		num(&csv, c->c.c, c->c_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->c.se, c->c_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->c.c - Z975 * c->c.se, c->c_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->c.c + Z975 * c->c.se, c->c_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->h.auc, c->h_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->h.brier, c->h_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->h.ipa, c->h_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->h.oe, c->h_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->auc.auc, c->auc_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->auc.ci_low, c->auc_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->auc.ci_high, c->auc_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->cal.citl, c->cal_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->cal.slope, c->cal_ok), fp_buf_printf(&csv, ",");
		num(&csv, c->cal.ici, c->cal_ok), fp_buf_printf(&csv, "\n");
		fp_buf_printf(&t1, "\"%s\",%zu,%zu,%.4f,%.1f,%.4f,\"%s\",\"%s\"\n", c->id, c->n, c->events,
		              c->n ? (double)c->events / (double)c->n : 0, med, mr, c->snapshot_hash ? c->snapshot_hash : "",
		              c->snapshot_date ? c->snapshot_date : "");
	}
	fp_error_clear();
	json_object_set_new(jout, "centres", jcent);
	json_t *jp = json_object();
	json_object_set_new(jp, "c_stratified", jnum(pooled.c, pooled_ok));
	json_object_set_new(jp, "c_stratified_se", jnum(pooled.se, pooled_ok));
	json_object_set_new(jp, "meta_c", jnum(meta.estimate, meta_ok));
	json_object_set_new(jp, "meta_ci_low", jnum(meta.ci_low, meta_ok));
	json_object_set_new(jp, "meta_ci_high", jnum(meta.ci_high, meta_ok));
	json_object_set_new(jp, "meta_pi_low", jnum(meta.pi_low, meta_ok));
	json_object_set_new(jp, "meta_pi_high", jnum(meta.pi_high, meta_ok));
	json_object_set_new(jp, "meta_tau2", jnum(meta.tau2, meta_ok));
	json_object_set_new(jp, "meta_i2", jnum(meta.i2, meta_ok));
	json_object_set_new(jout, "pooled", jp);
	fp_buf_printf(&csv, "pooled_stratified,%zu,,", r.n);
	num(&csv, pooled.c, pooled_ok), fp_buf_printf(&csv, ",");
	num(&csv, pooled.se, pooled_ok), fp_buf_printf(&csv, ",");
	num(&csv, pooled.c - Z975 * pooled.se, pooled_ok), fp_buf_printf(&csv, ",");
	num(&csv, pooled.c + Z975 * pooled.se, pooled_ok), fp_buf_printf(&csv, ",,,,,,,,,,\n");
	fp_buf_printf(&csv, "pooled_random_effects,%zu,,", r.n);
	num(&csv, meta.estimate, meta_ok), fp_buf_printf(&csv, ",,");
	num(&csv, meta.ci_low, meta_ok), fp_buf_printf(&csv, ",");
	num(&csv, meta.ci_high, meta_ok), fp_buf_printf(&csv, ",,,,,,,,,,\n");

	/* HTML */
	fp_buf_printf(&html, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Validation report</title>"
	                     "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
	                     "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;"
	                     "text-align:right}th{background:#eef}figure{display:inline-block;margin:8px}"
	                     "figcaption{font-size:12px;max-width:540px}</style></head><body>\n<h1>Validation report</h1>\n<p>");
	html_text(&html, r.study);
	fp_buf_printf(&html, "</p>\n<ul><li>Model version hash: <code>");
	html_text(&html, r.model_hash);
	fp_buf_printf(&html, "</code></li><li>Generated %s by fedpath %s</li><li>Horizon: %.0f days; RMST horizon: %.0f days</li></ul>\n",
	              now, fp_version(), r.horizon, r.tau);
	fp_buf_printf(&html, "<h2>Data snapshots (TRIPOD+AI 5a-b, 6a, 20b)</h2>\n<table><tr><th>centre</th><th>n</th><th>events</th>"
	                     "<th>snapshot hash</th><th>snapshot date</th></tr>\n");
	for (size_t k = 0; k < r.ncentre; k++) {
		const struct centre *c = &r.centre[k];
		fp_buf_printf(&html, "<tr><td>");
		html_text(&html, c->id);
		fp_buf_printf(&html, "</td><td>%zu</td><td>%zu</td><td><code>", c->n, c->events);
		html_text(&html, c->snapshot_hash ? c->snapshot_hash : "-");
		fp_buf_printf(&html, "</code></td><td>");
		html_text(&html, c->snapshot_date ? c->snapshot_date : "-");
		fp_buf_printf(&html, "</td></tr>\n");
	}
	fp_buf_printf(&html, "</table>\n<h2>Performance per centre and pooled (TRIPOD+AI 23a-b)</h2>\n<table><tr><th>centre</th>"
	                     "<th>C</th><th>95%% CI</th><th>AUC(t)</th><th>Brier(t)</th><th>IPA(t)</th><th>O/E(t)</th>"
	                     "<th>AUC</th><th>CITL</th><th>slope</th><th>ICI</th></tr>\n");
	for (size_t k = 0; k < r.ncentre; k++) {
		const struct centre *c = &r.centre[k];
		fp_buf_printf(&html, "<tr><td>");
		html_text(&html, c->id);
		fp_buf_printf(&html, "</td><td>");
		num(&html, c->c.c, c->c_ok);
		fp_buf_printf(&html, "</td><td>");
		num(&html, c->c.c - Z975 * c->c.se, c->c_ok);
		fp_buf_printf(&html, "&ndash;");
		num(&html, c->c.c + Z975 * c->c.se, c->c_ok);
		const double v[] = {c->h.auc, c->h.brier, c->h.ipa, c->h.oe, c->auc.auc, c->cal.citl, c->cal.slope, c->cal.ici};
		const int ok[] = {c->h_ok, c->h_ok, c->h_ok, c->h_ok, c->auc_ok, c->cal_ok, c->cal_ok, c->cal_ok};
		for (int j = 0; j < 8; j++) {
			fp_buf_printf(&html, "</td><td>");
			num(&html, v[j], ok[j]);
		}
		fp_buf_printf(&html, "</td></tr>\n");
	}
	fp_buf_printf(&html, "<tr><th>pooled, exact stratified</th><td>");
	num(&html, pooled.c, pooled_ok);
	fp_buf_printf(&html, "</td><td>");
	num(&html, pooled.c - Z975 * pooled.se, pooled_ok);
	fp_buf_printf(&html, "&ndash;");
	num(&html, pooled.c + Z975 * pooled.se, pooled_ok);
	fp_buf_printf(&html, "</td><td colspan=\"8\"></td></tr>\n<tr><th>random effects (REML, HK)</th><td>");
	num(&html, meta.estimate, meta_ok);
	fp_buf_printf(&html, "</td><td>");
	num(&html, meta.ci_low, meta_ok);
	fp_buf_printf(&html, "&ndash;");
	num(&html, meta.ci_high, meta_ok);
	fp_buf_printf(&html, "</td><td colspan=\"8\">PI ");
	num(&html, meta.pi_low, meta_ok);
	fp_buf_printf(&html, "&ndash;");
	num(&html, meta.pi_high, meta_ok);
	fp_buf_printf(&html, ", tau&sup2; ");
	num(&html, meta.tau2, meta_ok);
	fp_buf_printf(&html, ", I&sup2; %.1f%%</td></tr>\n</table>\n<h2>Figures (TRIPOD+AI 12e, 23a)</h2>\n",
	              meta_ok ? meta.i2 : 0.0);
	FP_CHECK(st, fig_roc(&html, &r));
	FP_CHECK(st, fig_calibration(&html, &r));
	FP_CHECK(st, fig_km_risk(&html, &r, jout));
	fig_forest(&html, &r, &pooled, pooled_ok, &meta, meta_ok);
	FP_CHECK(st, fig_benefit(&html, &r, jout));
	fp_buf_printf(&html,
	              "<h2>TRIPOD+AI items covered</h2>\n<p>5a-b, 6a (data sources, centres, snapshot hashes and dates); "
	              "8a (outcome and horizon); 12d-e (heterogeneity across centres; measures and plots with rationale "
	              "in docs/STATISTICS.md); 20b (characteristics per centre, table1.csv); 23a (performance with 95%% CI); "
	              "23b (heterogeneity: tau&sup2;, I&sup2;, prediction interval). Not covered here: 10, 11, 14, 16, 18e-f, "
	              "20a, 20c, 24 (to be written by the study team).</p>\n"
	              "<p>Treatment-benefit results are hypothesis-generating: treatment was not randomised.</p>\n</body></html>\n");
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
	report_free(&r);
	return st;
}
