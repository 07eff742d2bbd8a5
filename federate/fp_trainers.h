/*
 * fp_trainers.h: the production local-training steps of a federated round
 * (struct fp_local_trainer of fp_simulate.h) and the site data they read.
 *
 * Part 2 (regimen model, train/fp_part2.h) at one site:
 *  1. fp_p2_site_load: the site's clinical.csv and the features.csv written
 *     by `fedpath quantify` (or any CSV whose first column is patient_id)
 *     become the raw patient table (train/fp_part2_table.h);
 *  2. before round 1 the pooled standardisation statistics are computed
 *     federatedly: each site contributes only its fp_p2_stats (per column:
 *     count, sum, sum of squares; its patient count). In the MPI simulation
 *     fp_p2_pool_mpi gathers these fixed-size records and every rank merges
 *     them in rank order, so all ranks hold bit-identical pooled statistics
 *     and the same design columns; nothing per patient leaves a rank;
 *  3. each round, fp_part2_train from the round's global weights with the
 *     plan's FedProx mu; update = new - old; n_samples = the site's patients.
 * A site's Part 2 loss is its own stratum of a stratified Cox model: risk
 * sets never mix patients of two sites, so the sum of the sites' local losses
 * is exactly the pooled stratified partial likelihood.
 * Steps per round: the plan's local.steps when > 0, else local.epochs x the
 * model's default steps (one full-batch training call per epoch).
 *
 * Part 1 (tile model) at one site: fp_p1_trainer_create opens the site's
 * labelled tile caches as its `train` configuration names them (caches,
 * labels, model size, optimiser; train/fp_site_train.h), and each round runs
 * fp_train_local_update from the round's global weights with the plan's
 * local.steps (or local.epochs over the labelled tiles), FedProx mu and a
 * fresh optimiser. Batches are uniform draws over every labelled tile (no
 * validation hold-out: evaluation is federated separately), chosen by
 * (config seed, round, step) only, so a replayed round gives the same
 * update. `fedpath simulate --caches DIR` drives it (cli/cmd_simulate.c).
 *
 * Ownership: handles are owned by the caller; destroy accepts NULL.
 */
#ifndef FP_TRAINERS_H
#define FP_TRAINERS_H

#include <mpi.h>

#include "fp_part2.h"
#include "fp_part2_mil.h"
#include "fp_part2_table.h"
#include "fp_simulate.h"

/* Months at which the Breslow baseline is reported and stored. */
#define FP_P2_N_HORIZONS 3
extern const double fp_p2_horizons[FP_P2_N_HORIZONS]; /* 12, 24, 36 */

/* Builds the raw table of one site. features_csv: first column patient_id
 * (one or more rows per patient) or slide_uid (as quantify writes; linked to
 * patients through the uid each clinical slide gets from `fedpath tile
 * --site SITE`, which needs the slides). Numeric columns are kept except the
 * tile counts (n_tiles, tissue_tiles, tumour_tiles, inside_tiles,
 * margin_tiles: slide size, not biology); `phenotype` becomes
 * phenotype_inflamed and phenotype_excluded (desert the reference, none NA).
 * features_csv NULL: clinical columns only. */
enum fp_status fp_p2_site_load(const char *clinical_csv, const char *features_csv, const char *site,
                               struct fp_p2_table *out);

/* Pools every rank's statistics (local NULL: this rank contributes nothing,
 * e.g. the aggregator). All ranks of comm must call it; all get `pooled`. */
enum fp_status fp_p2_pool_mpi(MPI_Comm comm, const struct fp_p2_stats *local, struct fp_p2_stats *pooled);

/* Number of design columns the pooled statistics give (z-scores then one
 * missing indicator per column missing anywhere). */
int fp_p2_design_width(const struct fp_p2_stats *pooled);

struct fp_p2_trainer; /* opaque */

/* table NULL: a coordinator-side trainer (n_params and init_weights only).
 * cfg->steps is replaced per round by the plan (see above). The table is
 * borrowed and must outlive the trainer. */
enum fp_status fp_p2_trainer_create(const struct fp_p2_table *table, const struct fp_p2_stats *pooled,
                                    const struct fp_part2_config *cfg, struct fp_p2_trainer **out);
void fp_p2_trainer_destroy(struct fp_p2_trainer *t);
/* The adapter for fp_simulate_run (borrows t). */
void fp_p2_trainer_local(struct fp_p2_trainer *t, struct fp_local_trainer *out);
/* Breslow baseline H0 of this site's stratum at fp_p2_horizons under
 * `weights` (n_params floats). */
enum fp_status fp_p2_trainer_baseline(struct fp_p2_trainer *t, const float *weights, double h0[FP_P2_N_HORIZONS]);
/* Standardised design names (borrowed; fp_p2_design_width of them). */
const char (*fp_p2_trainer_names(const struct fp_p2_trainer *t))[FP_P2_NAME_MAX];

/* ---- Part 2, the MIL option (train/fp_part2_mil.h) ----
 * The table is then built from clinical.csv alone (no features.csv) and the
 * pooled statistics cover the clinical columns only; the model adds the
 * pooled tile embeddings itself. */

/* The bags of table t's patients from the tile caches in caches_dir: each
 * cache's slide_uid attribute is matched with the uid `fedpath tile --site
 * SITE` gives each slide of clinical.csv (so the slides must be readable, as
 * for a features.csv keyed by slide_uid). A cache of a slide not in the
 * table is skipped with a warning; a patient without any quantified cache is
 * an error naming the patient. Bags are capped at cfg->bag_cap, subsampled
 * with cfg->seed (fp_p2_bagset_build). out->ids borrow t's patient ids. */
enum fp_status fp_p2_site_bags(const struct fp_p2_table *t, const char *clinical_csv, const char *caches_dir,
                               const char *site, const struct fp_part2_config *cfg, struct fp_p2_bagset *out);
/* A trainer for cfg->kind = FP_P2_MIL: bags (one per table row) borrowed and
 * must outlive it; table and bags NULL on the coordinator side; e: the
 * embedding width. The flat weights are fp_part2_mil.h's, exchanged by the
 * same fp_local_trainer as the summary model's. */
enum fp_status fp_p2_trainer_create_mil(const struct fp_p2_table *table, const struct fp_part2_bags *bags, int e,
                                        const struct fp_p2_stats *pooled, const struct fp_part2_config *cfg,
                                        struct fp_p2_trainer **out);

/* ---- Part 1 ---- */

struct fp_train_config;
struct fp_p1_trainer; /* opaque */

/* c: a loaded `train` configuration (fp_train_schema); its paths are
 * resolved against c->data_dir. */
enum fp_status fp_p1_trainer_create(const struct fp_train_config *c, struct fp_p1_trainer **out);
void fp_p1_trainer_destroy(struct fp_p1_trainer *t);
void fp_p1_trainer_local(struct fp_p1_trainer *t, struct fp_local_trainer *out);
/* Writes `weights` (the federated global model, n_params floats) as a Part 1
 * checkpoint at `path` (train/fp_train.h format: `fedpath quantify --model`
 * and `fedpath train --evaluate` read it); `rounds` is recorded as the step. */
enum fp_status fp_p1_trainer_save(struct fp_p1_trainer *t, const float *weights, int64_t rounds, const char *path);

#endif
