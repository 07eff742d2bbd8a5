/*
 * report_svg.c: the report's inline SVG helpers (report_internal.h): axes,
 * lines, legends, and Kaplan-Meier step curves from rows or from tables.
 * Output goes to a caller's fp_buf; nothing is kept.
 */
#include <math.h>
#include <stdlib.h>

#include "fp_common.h"
#include "report_internal.h"
#include "validate_internal.h"

double fp_rep_px(const struct plot *p, double x) { return p->left + (x - p->x0) / (p->x1 - p->x0) * p->w; }
double fp_rep_py(const struct plot *p, double y) { return p->top + p->h - (y - p->y0) / (p->y1 - p->y0) * p->h; }

const char *const fp_rep_palette[8] = {"#1b6ca8", "#d1495b", "#2e8540", "#edae49", "#6a4c93", "#00798c", "#8d6346", "#444"};

void fp_rep_html(struct fp_buf *b, const char *s)
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
void fp_rep_svg_begin(struct fp_buf *b, const char *id, const char *title, const char *xlab, const char *ylab,
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
	fp_rep_html(b, title);
	fp_buf_printf(b, "</text>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n",
	              p->left, p->top, p->w, p->h);
	for (int k = 0; k <= 4; k++) {
		double xv = p->x0 + (p->x1 - p->x0) * k / 4, yv = p->y0 + (p->y1 - p->y0) * k / 4;
		fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.4g</text>\n", fp_rep_px(p, xv), p->top + p->h + 14, xv);
		if (ylab[0]) /* a plot without a y label (forest) has rows, not a scale */
			fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", p->left - 4, fp_rep_py(p, yv) + 4, yv);
	}
	fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", p->left + p->w / 2, p->top + p->h + 30);
	fp_rep_html(b, xlab);
	fp_buf_printf(b, "</text>\n<text transform=\"translate(14,%.1f) rotate(-90)\" text-anchor=\"middle\">", p->top + p->h / 2);
	fp_rep_html(b, ylab);
	fp_buf_printf(b, "</text>\n");
}

void fp_rep_svg_end(struct fp_buf *b, const char *caption)
{
	fp_buf_printf(b, "</svg><figcaption>");
	fp_rep_html(b, caption);
	fp_buf_printf(b, "</figcaption></figure>\n");
}

void fp_rep_svg_line(struct fp_buf *b, const struct plot *p, const double *x, const double *y, size_t n, const char *color,
                     int step, const char *dash)
{
	if (n == 0) return;
	fp_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s%s%s points=\"", color,
	              dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
	for (size_t i = 0; i < n; i++) {
		if (step && i > 0) fp_buf_printf(b, "%.1f,%.1f ", fp_rep_px(p, x[i]), fp_rep_py(p, y[i - 1]));
		fp_buf_printf(b, "%.1f,%.1f ", fp_rep_px(p, x[i]), fp_rep_py(p, y[i]));
	}
	fp_buf_printf(b, "\"/>\n");
}

void fp_rep_svg_legend(struct fp_buf *b, const struct plot *p, size_t k, const char *label, const char *color)
{
	double y = p->top + 14 + 14 * (double)k;
	fp_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>",
	              p->left + p->w - 120, p->left + p->w - 100, y - 4, y - 4, color);
	fp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", p->left + p->w - 96, y);
	fp_rep_html(b, label);
	fp_buf_printf(b, "</text>\n");
}

enum fp_status fp_rep_km_curve(const double *time, const unsigned char *event, const double *w, const unsigned char *mask,
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

enum fp_status fp_rep_km_table_curve(const double *time, const double *events, const double *censored, size_t rows,
                                     double **xs, double **ys, size_t *np)
{
	double risk = 0, s = 1;
	size_t q = 0;
	*xs = *ys = NULL;
	FP_TRY(fp_alloc_array(rows + 2, sizeof **xs, (void **)xs, "KM curve"));
	if (fp_alloc_array(rows + 2, sizeof **ys, (void **)ys, "KM curve") != FP_OK) {
		free(*xs);
		*xs = NULL;
		return fp_error_last()->code;
	}
	for (size_t r = 0; r < rows; r++) risk += events[r] + censored[r];
	(*xs)[q] = 0;
	(*ys)[q++] = 1;
	for (size_t r = 0; r < rows; r++) {
		/* as fp_rep_km_curve: a point at each event time and at the last time */
		if (events[r] > 0 && risk > 0) {
			s *= (risk - events[r]) / risk;
			(*xs)[q] = time[r];
			(*ys)[q++] = s;
		}
		risk -= events[r] + censored[r];
		if (r + 1 == rows) {
			(*xs)[q] = time[r];
			(*ys)[q++] = s;
		}
	}
	*np = q;
	return FP_OK;
}
