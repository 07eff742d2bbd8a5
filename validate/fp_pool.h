/*
 * fp_pool.h: federated evaluation. A site reduces its rows to summaries that
 * pool exactly; the aggregator adds them up. No patient row leaves the site.
 *
 * Exact statements (tests/unit/test_validate_pool.c checks each):
 *  - stratified C (strata = centres) and its jackknife variance from five
 *    numbers per centre equal fp_validate_cindex with strata on the pooled
 *    rows (survival's strata(centre));
 *  - AUC and DeLong variance from per-centre case/control counts on a shared
 *    score grid equal fp_validate_auc on the pooled rows when every score
 *    lies on the grid (one distinct value per cell);
 *  - Kaplan-Meier from per-centre (time, events, censored) tables equals
 *    fp_validate_km on the pooled rows;
 *  - O, E and the Brier sum add up.
 * Small cells: a site refuses (FP_ERR_DATA) to release an AUC grid with a
 * non-empty cell of fewer than min_cell patients (coarsen the shared grid;
 * in a site summary the grid is then withheld with the reason, and the
 * pooled AUC names how many centres it holds), and merges KM table rows
 * below min_cell into later times.
 */
#ifndef FP_POOL_H
#define FP_POOL_H

#include <jansson.h>
#include <stddef.h>

#include "fp_status.h"
#include "fp_validate.h"

/* Per centre: U = (discordant - concordant) and D = (concordant + discordant
 * + tied_x) in survival's internal orientation, and the sums of squares and
 * products of each row's influence u_i on U and v_i on D. */
struct fp_pool_cindex_site {
	double u, d, suu, suv, svv;
	double concordant, discordant, tied_x, tied_y, tied_xy;
	size_t n, events;
};
enum fp_status fp_pool_cindex_site(const double *time, const unsigned char *event, const double *score, size_t n,
                                   const struct fp_cindex_options *opt, struct fp_pool_cindex_site *out);
/* C = sum(N) / sum(D); var = (sum uu - 2 S sum uv + S^2 sum vv) / (4 D^2), S = U / D. */
enum fp_status fp_pool_cindex(const struct fp_pool_cindex_site *sites, size_t k, struct fp_cindex_result *out);

/* Shared grid: edges[0] < ... < edges[ncell]; cell j is [edges[j], edges[j+1]),
 * the last cell closed. cases/controls: (ncell) counts. */
enum fp_status fp_pool_auc_site(const unsigned char *label, const double *score, size_t n, const double *edges,
                                size_t ncell, double min_cell, double *cases, double *controls);
enum fp_status fp_pool_auc(const double *cases, const double *controls, size_t ncell, struct fp_auc_result *out);

/* KM table: distinct times ascending with events and censored counts; close
 * with fp_pool_km_table_close. min_cell <= 1 releases every distinct time
 * (exact pooling). min_cell > 1 suppresses small rows: a row with fewer than
 * min_cell patients is merged into the next later row (the last ones into the
 * previous), so every released row holds >= min_cell patients and totals are
 * kept; the pooled KM is then that of times rounded up to the released
 * times (exact at released times only when no event moved across them). */
struct fp_pool_km_table {
	size_t rows;
	double *time, *events, *censored;
};
enum fp_status fp_pool_km_site(const double *time, const unsigned char *event, size_t n, double min_cell,
                               struct fp_pool_km_table *out);
void fp_pool_km_table_close(struct fp_pool_km_table *t);
/* Merges k tables and evaluates the KM at `at` (as fp_validate_km). Counts
 * must be whole and >= 0, at most FP_POOL_MAX_ROWS patients in all. */
#define FP_POOL_MAX_ROWS 100000000
enum fp_status fp_pool_km(const struct fp_pool_km_table *tables, size_t k, const double *at, size_t n_at,
                          struct fp_km_point *out);

/* Calibration sums: observed events, expected (sum p), sum (p - y)^2, n. */
struct fp_pool_calib_site {
	double n, observed, expected, brier_sum;
};
void fp_pool_calib_site(const unsigned char *y, const double *p, size_t n, struct fp_pool_calib_site *out);

/* ---- What a site sends, and what the aggregator makes of it ------------- */

struct fp_pool_site_input {
	const char *centre;                 /* label only: never a patient identifier */
	size_t n;
	const double *time;                 /* (n) */
	const unsigned char *event;         /* (n) */
	const double *risk;                 /* (n) score for the C-index (higher = earlier event) */
	const unsigned char *label;         /* (n) or NULL: binary outcome for the AUC grid and O/E */
	const double *prob;                 /* (n) or NULL: its predicted probability */
	const double *grid_edges;           /* (grid_cells + 1) shared score grid for prob */
	size_t grid_cells;
	double min_cell;                    /* smallest cell a site releases (AUC grid, KM rows) */
};

/* The site's summary as one JSON object (only counts and sums; no rows):
 *   {"centre", "n", "events",
 *    "cindex": {"u","d","suu","suv","svv","concordant","discordant","tied_x","tied_y","tied_xy"},
 *    "c": per-centre C, "c_se": its IJ SE (for the random-effects summary),
 *    "km": {"time": [...], "events": [...], "censored": [...]},
 *    "auc_grid": {"edges": [...], "cases": [...], "controls": [...]}     (with label/prob)
 *    "calibration": {"n","observed","expected","brier_sum"},             (with label/prob)
 *    "calibration_bins": {"n","expected","observed" (10 tenths of prob), "withheld"}}
 * Bins of fewer than min_cell patients are withheld (zeroed) and counted.
 * A statistic the centre's data cannot give is left out, never faked. */
enum fp_status fp_pool_site_summary(const struct fp_pool_site_input *in, json_t **out);
/* The binary part of a summary ("auc_grid" or "auc_grid_withheld",
 * "calibration_bins", "calibration") added to o, for a subset of a centre's
 * patients (those whose binary outcome is known). edges NULL: no grid. */
enum fp_status fp_pool_site_binary(const unsigned char *label, const double *prob, size_t n, const double *edges,
                                   size_t ncell, double min_cell, json_t *o);

/* Pools k site summaries: exact stratified C with its variance, AUC and
 * DeLong SE on the shared grid, KM at `at` (n_at times), O/E and Brier from
 * the sums; plus the REML/Hartung-Knapp random-effects summary of the
 * centres' C on the logit scale, and the grouped calibration table (mean
 * predicted vs observed per tenth). Every site must use the same AUC grid;
 * "auc_grid" then also gives "centres" (sites pooled) and "centres_withheld". */
enum fp_status fp_pool_aggregate(json_t *const *sites, size_t k, const double *at, size_t n_at, json_t **out);

#endif
