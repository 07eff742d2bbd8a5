/*
 * report_internal.h: what report.c (rows, shared output) and
 * report_summary.c (federated summaries) share: the report's state and the
 * SVG drawing helpers of report_svg.c. Not part of the module's interface.
 */
#ifndef FP_REPORT_INTERNAL_H
#define FP_REPORT_INTERNAL_H

#include <jansson.h>

#include "fp_buf.h"
#include "fp_report.h"
#include "fp_validate.h"

#define FP_REP_Z975 1.959963984540054

struct centre {
	const char *id, *snapshot_hash, *snapshot_date; /* borrowed from the manifest or the summary */
	size_t n;
	double *time, *risk, *prob, *ps;               /* rows mode only */
	unsigned char *event, *label;
	int *arm, *rec;
	size_t events;
	double median_time, mean_risk;
	json_t *summary;                                /* summaries mode: this centre's file (owned) */
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
	int from_summaries;
	json_t *manifest;                               /* rows: manifest.json; summaries: pooled.json */
	json_t *agg;                                    /* summaries: fp_pool_aggregate of the sites */
	const char *study, *model_hash;
	double horizon, tau, min_cell;
	double risk_cuts[2];
	int have_cuts;
	const char *col_time, *col_event, *col_risk, *col_label, *col_prob, *col_arm, *col_rec, *col_ps;
	size_t arms;
	int have_binary, have_benefit;
	struct centre centre[FP_REPORT_MAX_CENTRES];
	size_t ncentre;
	/* pooled rows (concatenated) for the figures: rows mode only */
	size_t n;
	double *time, *risk, *prob, *ps;
	unsigned char *event, *label;
	int *arm, *rec, *centre_id;
	/* pooled values, the same in both modes (fp_report.h) */
	struct fp_cindex_result pooled;
	int pooled_ok;
	struct fp_meta_result meta;
	int meta_ok;
	struct fp_auc_result pauc;
	int pauc_ok;
	struct fp_km_point pkm;                         /* KM at the horizon */
	int pkm_ok;
	double poe, pbrier;
	int pcal_ok;
};

/* Summaries mode: reads RESULTS into r (centres, metrics, pooled values). */
enum fp_status fp_rep_load_summaries(struct report *r, const char *dir);
/* Summaries-mode figures (same ids as the rows mode). */
enum fp_status fp_rep_fig_roc_grid(struct fp_buf *b, const struct report *r);
enum fp_status fp_rep_fig_calibration_bins(struct fp_buf *b, const struct report *r);
enum fp_status fp_rep_fig_km_risk_tables(struct fp_buf *b, const struct report *r, json_t *jout);
enum fp_status fp_rep_fig_benefit_tables(struct fp_buf *b, const struct report *r, json_t *jout);
/* Summaries mode: the table-1 variables of each centre as an HTML table. */
void fp_rep_table1_variables(struct fp_buf *b, const struct report *r);

/* ---- SVG (report_svg.c) ---- */

struct plot {
	double x0, x1, y0, y1;  /* data range */
	double left, top, w, h; /* drawing area in pixels */
};

extern const char *const fp_rep_palette[8];
double fp_rep_px(const struct plot *p, double x);
double fp_rep_py(const struct plot *p, double y);
void fp_rep_html(struct fp_buf *b, const char *s);
void fp_rep_svg_begin(struct fp_buf *b, const char *id, const char *title, const char *xlab, const char *ylab,
                      struct plot *p, double width, double height, double extra_bottom);
void fp_rep_svg_end(struct fp_buf *b, const char *caption);
/* step = 1 draws a right-continuous step function (KM). */
void fp_rep_svg_line(struct fp_buf *b, const struct plot *p, const double *x, const double *y, size_t n, const char *color,
                     int step, const char *dash);
void fp_rep_svg_legend(struct fp_buf *b, const struct plot *p, size_t k, const char *label, const char *color);
/* KM step curve of the rows with mask set (NULL: all), weights w (NULL: 1).
 * xs, ys: (np) owned by the caller. */
enum fp_status fp_rep_km_curve(const double *time, const unsigned char *event, const double *w, const unsigned char *mask,
                               size_t n, double **xs, double **ys, size_t *np);
/* The same curve from a table of distinct ascending times with (weighted)
 * events and censored counts: equal to fp_rep_km_curve of the rows behind it. */
enum fp_status fp_rep_km_table_curve(const double *time, const double *events, const double *censored, size_t rows,
                                     double **xs, double **ys, size_t *np);

#endif
