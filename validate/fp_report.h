/*
 * fp_report.h: the validation report a statistician reads, and the summary a
 * centre computes for it. Two inputs give the same report:
 *
 * A. Federated summaries (a real study: no patient row leaves a centre).
 *    RESULTS is a folder as the aggregator writes it (<state_dir>/results/):
 *      pooled.json   its presence selects this mode. An object with at least
 *                    "centres" (as fp_pool_aggregate writes it); optional
 *                    "study", "model_hash", "round", "created" (strings /
 *                    number) are shown in the report. The report re-pools the
 *                    site files itself (fp_pool_aggregate) and refuses a
 *                    pooled.json whose "centres" differs from the number of
 *                    site files, so the two cannot disagree silently.
 *      *.json        every other .json file (report.json, pull.json excepted), read in
 *                    file-name order, is one centre's summary as
 *                    fp_report_site_summary (or federate/fp_eval_site.h)
 *                    returns it, "schema": "fedpath.site_summary/1".
 *    Every site summary must give the same horizon, AUC grid and risk cuts.
 *
 * B. Evaluation rows (rehearsal on phantom or public data only): RESULTS is
 *    a folder holding manifest.json, or that file's path:
 *   {"study": "...", "model_hash": "...", "horizon": 730, "tau": 1825,
 *    "columns": {"time": "time", "event": "event", "risk": "COL",   (required)
 *                "label": "COL", "prob": "COL",                      (binary outcome, optional)
 *                "arm": "COL", "recommended": "COL", "propensity": "C0,C1,..."}, (optional)
 *    "risk_cuts": [a, b],          (optional; default the pooled rows' tertiles)
 *    "auc_grid": [e0, ..., eK],    (optional; default 20 equal cells on [0, 1])
 *    "centres": [{"id": "H01", "csv": "H01.csv", "snapshot_hash": "...",
 *                 "snapshot_date": "2026-10-01"}, ...]}
 *    CSV paths are relative to the manifest's folder; risk is the predicted
 *    probability of an event by the horizon. fp_report_write_summaries turns
 *    such rows into the folder of mode A (what each centre would send), so
 *    the two modes can be compared on the same data.
 *
 * Output (DIR, created): report.html (self-contained, inline SVG figures with
 * ids fig-roc, fig-calibration, fig-km-risk, fig-forest, fig-benefit),
 * report.json (every number; "source": "rows" or "federated summaries"),
 * performance.csv (per centre and pooled) and table1.csv (per centre), the
 * same columns in both modes. Each file is written atomically.
 * Pooled values that are exact in both modes (tests/unit/test_validate_pool.c
 * and test_validate_report.sh compare them): the stratified C and its SE, the
 * random-effects summary, AUC and DeLong SE when every probability lies on
 * the grid (one distinct value per cell), KM at the horizon when min_cell <= 1,
 * O/E and Brier of the binary outcome. What differs by construction: mode A
 * draws ROC curves from the grid's cells and calibration from tenths of the
 * prediction (mode B: exact ROC and loess), and has no policy value.
 */
#ifndef FP_REPORT_H
#define FP_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "fp_status.h"

#define FP_REPORT_MAX_CENTRES 64
#define FP_REPORT_SCHEMA "fedpath.site_summary/1"
/* label value of a patient whose binary outcome is unknown (censored before
 * the horizon): left out of the binary statistics, kept for the survival ones */
#define FP_REPORT_LABEL_UNKNOWN 255
#define FP_REPORT_GRID_CELLS 20

/* Builds the report from RESULTS (mode A or B, see above) into out_dir. */
enum fp_status fp_report_build(const char *results, const char *out_dir);

/* A one-screen summary of a built report (out_dir/report.json) on fp: per
 * centre and pooled C [95% CI], AUC, O/E and Brier, and the random-effects
 * summary with its prediction interval. */
enum fp_status fp_report_print(const char *out_dir, FILE *fp);

/* Mode B only: writes what each centre of the manifest would send, and
 * pooled.json, into summaries_dir (created), with min_cell suppression. */
enum fp_status fp_report_write_summaries(const char *results, const char *summaries_dir, double min_cell);

/* ---- One centre's side ---------------------------------------------------- */

struct fp_report_rows {
	const char *centre;               /* label only, never a patient identifier */
	size_t n;
	const double *time;               /* (n) >= 0 */
	const unsigned char *event;       /* (n) 0/1 */
	const double *risk;               /* (n) predicted probability of an event by the horizon */
	const unsigned char *label;       /* (n) 0/1/FP_REPORT_LABEL_UNKNOWN, or NULL: no binary outcome */
	const double *prob;               /* (n) predicted probability of label 1 (with label) */
	size_t arms;                      /* 0: no treatment block */
	const int *arm, *recommended;     /* (n) 0..arms-1 (with arms) */
	const double *propensity;         /* (n, arms) row-major or NULL: unweighted */
};

struct fp_report_site_options {
	double horizon;                   /* > 0, the rows' time unit */
	double tau;                       /* RMST horizon; <= 0: the horizon */
	const double *grid_edges;         /* (grid_cells + 1) shared AUC grid on prob; NULL: */
	size_t grid_cells;                /*   FP_REPORT_GRID_CELLS equal cells on [0, 1] */
	double risk_cuts[2];              /* fixed in advance: low risk <= cuts[0] < middle <= cuts[1] < high */
	double min_cell;                  /* smallest count released (KM rows, grid cells, bins, groups) */
	const char *model_hash, *snapshot_hash, *snapshot_date; /* NULL: left out */
};

/* fp_pool_site_summary's object (validate/fp_pool.h; its binary part on the
 * patients with a known label) extended with:
 *   "schema", "horizon", "tau", "min_cell", "model_hash", "snapshot_hash",
 *   "snapshot_date",
 *   "metrics": {"c","c_se","auc_t","brier_t","ipa_t","oe_t","auc","auc_se",
 *               "auc_low","auc_high","citl","slope","ici"}   (null: not computable here)
 *   "table1": {"n","events","event_rate","median_time","mean_risk"},
 *   "km_risk_groups": {"cuts": [a, b], "groups": [{"name","n","time","events",
 *                      "censored"} x 3]},
 *   "km_benefit": {"weighted": bool, "groups": [{"name": "not followed"|"followed",
 *                  "n", "weight", "time", "events", "censored"}]}   (with arms)
 * KM tables merge rows of fewer than min_cell patients (counted unweighted)
 * into the next time, as fp_pool_km_site; a group of fewer than min_cell
 * patients is withheld ("withheld": true, no counts). Nothing per patient. */
enum fp_status fp_report_site_summary(const struct fp_report_rows *rows, const struct fp_report_site_options *opt,
                                      json_t **out);

#endif
