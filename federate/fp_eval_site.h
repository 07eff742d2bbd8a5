/*
 * fp_eval_site.h: federated evaluation of the Part 2 model at one centre.
 *
 * Takes the centre's patient table (or its clinical.csv and features.csv)
 * and a Part 2 model (checkpoint file or loaded checkpoint); predicts every
 * patient with the same maths as `fedpath predict` (cli/cmd_predict.c):
 *   design = the table standardised with the model's pooled statistics,
 *   eta(x, a) from the model, a = the regimen the patient received,
 *   risk = 1 - S(h | x, a), S = exp(-H0_site(h) exp(eta)) with this centre's
 *          Breslow baseline from the model (or baseline_site's),
 *   recommendation = fp_part2_recommend(eta, the model's margin),
 *   propensity = the model's propensity head;
 * and returns only summaries: fp_report_site_summary (validate/fp_report.h)
 * of the rows (time = RFS, event = recurrence, risk as above, binary outcome
 * = recurrence by h, unknown when censored before h; treatment = received
 * vs recommended regimen, weighted by 1 / propensity of the received one),
 * plus:
 *   "site", "model_rounds", "snapshot_hash" (SHA-256 of clinical.csv, then of
 *   features.csv when given: the hex digest of the two digests concatenated;
 *   or the caller's), "snapshot_date" (the caller's, else clinical.csv's
 *   modification date, UTC),
 *   "table1" gains "variables": [{"name","n","mean","sd"}] for every raw
 *   column of the table (clinical then TME features; mean and sd null when
 *   a 0/1 column has fewer than min_cell patients in either value), and
 *   "regimens": {"surgery","tace","tace_tki"} received counts (all three
 *   null when any one is below min_cell: one withheld alone would follow
 *   from n minus the others).
 * This object is what the aggregator stores as <state_dir>/results/site_<id>.json
 * and pools with fp_pool_aggregate; `fedpath report --in` reads that folder.
 *
 * Risk groups: cut-points on the predicted probability of recurrence by h,
 * fixed before evaluation (the plan or the coordinating centre; e.g. the
 * development cohort's tertiles). Default (both NAN or equal 0): 1/3, 2/3.
 * Horizon: in the model's unit (months); it must be one of the checkpoint's
 * baseline times (12, 24, 36), since H0 is stored only there.
 * AUC grid on that probability; NULL: 20 equal cells on [0, 1].
 *
 * A MIL checkpoint predicts from the clinical design and the patient's bag
 * of tile embeddings (bags or caches_dir below), the same maths as `fedpath
 * predict --caches`; "table1" variables are then the clinical columns. An
 * embedding width other than the model's, or a MIL model without bags, is
 * FP_ERR_DATA / FP_ERR_INVALID_ARG naming the site.
 * Ownership: inputs are borrowed; *out is a new reference for the caller.
 * Errors: FP_ERR_NOT_FOUND when the model has no baseline for the site,
 * FP_ERR_DATA when the table's columns do not match the model's.
 */
#ifndef FP_EVAL_SITE_H
#define FP_EVAL_SITE_H

#include <jansson.h>
#include <stddef.h>

#include "fp_part2_ckpt.h"
#include "fp_part2_mil.h"
#include "fp_part2_table.h"
#include "fp_status.h"

struct fp_eval_site_input {
	const char *site;                 /* centre id (as in clinical.csv and the model) */
	const struct fp_p2_table *table;  /* the site's raw Part 2 table, or NULL: */
	const char *clinical_csv;         /*   load it from these (features_csv may be NULL) */
	const char *features_csv;
	const struct fp_p2_ckpt *model;   /* loaded model, or NULL: */
	const char *model_path;           /*   read this checkpoint */
	const char *baseline_site;        /* whose H0 to use; NULL: site */
	double horizon;                   /* months: 12, 24 or 36 */
	const double *grid_edges;         /* (grid_cells + 1) or NULL */
	size_t grid_cells;
	double risk_cuts[2];              /* see above */
	double min_cell;                  /* smallest count released */
	const char *snapshot_hash;        /* NULL: computed from the CSVs (needs clinical_csv) */
	const char *snapshot_date;        /* NULL: clinical.csv's modification date */
	/* A MIL model (train/fp_part2_mil.h) reads the tile embeddings instead of
	 * features: one bag per table row (borrowed), or NULL: built from the
	 * tile caches in caches_dir (needs clinical_csv, fp_p2_site_bags). */
	const struct fp_part2_bags *bags;
	const char *caches_dir;
};

enum fp_status fp_eval_site_summary(const struct fp_eval_site_input *in, json_t **out);

#endif
