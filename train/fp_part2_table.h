/*
 * fp_part2_table.h: the Part 2 patient table, built at each site and
 * standardised with statistics pooled across sites from sums and counts only.
 *
 * Stage: after quantify (per-slide TME features) and the clinical table;
 * before the regimen model and the reference Cox model.
 *
 * Columns, in this order (docs/TRAINING.md, "Part 2 covariates"):
 *   clinical: age, sex_f, stage_IB, stage_II, stage_IIIA, stage_IIIB (IA is the
 *   reference), child_pugh_B, log10_afp (log10(1 + AFP ng/mL)), tumour_size_cm,
 *   mvi, edmondson_grade; then every TME feature column given, each the mean
 *   over the patient's slides that have features.
 * A missing clinical value, or a patient without any slide features, is NAN in
 * the raw table; a categorical value that is missing makes all its dummies NAN.
 *
 * Federated standardisation: each site shares only fp_p2_stats (per column:
 * non-missing count, sum, sum of squares; and its patient count). The pooled
 * statistics give each column's mean and sample SD; a site then writes
 * z = (x - mean) / sd, replaces a missing value by 0 (the pooled mean), and
 * appends one 0/1 missing indicator for every column that is missing anywhere
 * in the pooled data, so every site ends with the same columns.
 * Rows are never dropped: counts of missing values per column are reported.
 *
 * Facts (tests/unit/test_part2_table.c):
 *  - standardising with pooled statistics equals standardising the rows of all
 *    sites together (to 1e-12);
 *  - sites whose feature columns differ are refused, naming the first column
 *    that differs and both sites;
 *  - a constant column keeps SD 1 and is reported, never divided by zero.
 */
#ifndef FP_PART2_TABLE_H
#define FP_PART2_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "fp_clinical.h"
#include "fp_status.h"

#define FP_P2_NAME_MAX 48
#define FP_P2_MAX_COLS 256
#define FP_P2_N_CLINICAL 11

/* Per-slide features as quantify writes them: one row per slide. */
struct fp_p2_features {
	size_t n_rows;
	int n_cols;
	const char *const *col_names;  /* (n_cols) */
	const char *const *patient_id; /* (n_rows) the slide's patient */
	const double *values;          /* (n_rows, n_cols); NAN allowed */
};

/* One site's table (owned arrays; fp_p2_table_close releases them). */
struct fp_p2_table {
	char site[33];
	size_t n;                          /* patients */
	int p;                             /* raw columns */
	char (*names)[FP_P2_NAME_MAX];     /* (p) */
	double *x;                         /* (n, p) raw values, NAN = missing */
	char (*patient)[65];               /* (n) */
	int *regimen;                      /* (n) enum fp_regimen */
	double *rfs_time;                  /* (n) months */
	int *rfs_event;                    /* (n) */
	double *os_time;                   /* (n) NAN when missing */
	int *os_event;                     /* (n) -1 when missing */
	int *orr;                          /* (n) -1 when undefined */
	size_t n_without_features;         /* patients with no slide features */
};

/* What a site shares for standardisation: sums and counts, nothing per patient. */
struct fp_p2_stats {
	int p;
	char names[FP_P2_MAX_COLS][FP_P2_NAME_MAX];
	uint64_t n_patients;
	double count[FP_P2_MAX_COLS];
	double sum[FP_P2_MAX_COLS];
	double sumsq[FP_P2_MAX_COLS];
	char sites[256];                   /* contributing sites, for messages */
};

/* Builds the raw table from one site's clinical rows and (optional) features. */
enum fp_status fp_p2_table_build(const struct fp_clinical *clin, const struct fp_p2_features *feat,
                                 struct fp_p2_table *out);
void fp_p2_table_close(struct fp_p2_table *t);

/* This site's sums and counts. */
void fp_p2_stats_local(const struct fp_p2_table *t, struct fp_p2_stats *out);
/* Adds `site` into `pooled` (start from a zeroed struct). FP_ERR_DATA when
 * the columns differ. */
enum fp_status fp_p2_stats_merge(struct fp_p2_stats *pooled, const struct fp_p2_stats *site);

/* The standardised design matrix: z-scores then missing indicators.
 * design: (n, *p_out) owned by the caller (free); names likewise. */
enum fp_status fp_p2_standardise(const struct fp_p2_table *t, const struct fp_p2_stats *pooled, double **design,
                                 int *p_out, char (**names)[FP_P2_NAME_MAX]);

#endif
