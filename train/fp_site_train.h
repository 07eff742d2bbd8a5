/*
 * fp_site_train.h: training the Part 1 tile model on one site's tile caches
 * (`fedpath train`), and the data it reads.
 *
 * Takes: a folder of tile caches (data/fp_tile_cache.h) and per-tile labels,
 * either from a phantom cohort's truth class maps or from a label CSV
 * (docs/TRAINING.md, "Labels"). Produces: checkpoints (latest and best),
 * metrics.csv (one row per epoch) next to them, log lines and progress.
 *
 * Facts (tests/unit/test_train_cli.sh checks each, on a phantom cohort):
 *  - the validation split holds out whole patients: no patient has tiles in
 *    both parts; the split depends only on the seed and the patient ids;
 *  - the tiles of training step s depend only on (seed, s): a run resumed
 *    from a checkpoint continues with the batches the uninterrupted run used;
 *  - a configuration or data problem fails before the first step, naming the
 *    key, file or slide at fault; a NaN loss stops the run with FP_ERR_NUMERIC
 *    and leaves the last good checkpoint in place.
 */
#ifndef FP_SITE_TRAIN_H
#define FP_SITE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "fp_config.h"
#include "fp_model.h"
#include "fp_status.h"

/* ---- configuration (schema "train"; docs/examples/train.ini) ---- */

enum fp_label_source { FP_LABELS_TRUTH = 0, FP_LABELS_CSV = 1 };
enum fp_backend_choice { FP_TRAIN_CPU = 0, FP_TRAIN_CUDA = 1 };

struct fp_train_config {
	/* [site], [log]: as the site schema */
	char site_id[FP_CONFIG_STR_MAX];
	char data_dir[FP_CONFIG_STR_MAX];
	int log_level;
	int log_json;
	char log_file[FP_CONFIG_STR_MAX];
	/* [data] */
	char caches[FP_CONFIG_STR_MAX];     /* folder of *.h5 tile caches */
	int labels;                         /* enum fp_label_source */
	char truth_dir[FP_CONFIG_STR_MAX];  /* phantom cohort's truth/ folder */
	char label_csv[FP_CONFIG_STR_MAX];
	double val_fraction;
	double min_label_share;             /* tiles whose label covers less are skipped */
	/* [model] */
	long input_size, width1, width2, width3, blocks, groups;
	/* [train] */
	long epochs, steps, batch, warmup, patience, checkpoint_every, threads;
	double lr, weight_decay, momentum, clip_norm, min_lr_ratio, prox_mu;
	int optimizer;                      /* enum fp_optimizer */
	int cosine;
	long seed;
	int class_balanced;
	int backend;                        /* enum fp_backend_choice */
	char checkpoint[FP_CONFIG_STR_MAX]; /* latest checkpoint; best is <stem>.best.h5 */
	/* [augment] */
	int flips, rot90;
	double hed_jitter, brightness, contrast;
};

extern const struct fp_config_schema fp_train_schema;

/* Relative paths in caches/truth_dir/label_csv/checkpoint are resolved
 * against data_dir (absolute ones are kept). */
void fp_train_config_resolve(const struct fp_train_config *c, const char *value, char *out, size_t size);

/* ---- the site's labelled tiles ---- */

struct fp_site_tile {
	uint32_t slide;
	uint64_t tile;
	int32_t label;      /* enum fp_tme_class */
	int32_t patient;    /* index into the patient list */
};

struct fp_site_data; /* opaque */

/* Opens every cache in `caches` (sorted by file name) and labels its tiles
 * from a phantom truth folder (truth_dir) or a label CSV; labels NULL
 * (quantify) opens the caches without labels. */
enum fp_status fp_site_data_open(const char *caches, enum fp_label_source src, const char *labels,
                                 double min_label_share, struct fp_site_data **out);
void fp_site_data_destroy(struct fp_site_data *d);
size_t fp_site_data_count(const struct fp_site_data *d);
const struct fp_site_tile *fp_site_data_tile(const struct fp_site_data *d, size_t i);
size_t fp_site_data_slides(const struct fp_site_data *d);
const char *fp_site_data_slide_uid(const struct fp_site_data *d, uint32_t slide);
const char *fp_site_data_slide_path(const struct fp_site_data *d, uint32_t slide);
size_t fp_site_data_patients(const struct fp_site_data *d);
const char *fp_site_data_patient_id(const struct fp_site_data *d, int32_t patient);
uint32_t fp_site_data_tile_size(const struct fp_site_data *d);
/* All tiles of slide s (labelled or not), their corners and resolution. */
uint64_t fp_site_data_slide_tiles(const struct fp_site_data *d, uint32_t s);
enum fp_status fp_site_data_coords(const struct fp_site_data *d, uint32_t s, uint64_t t, int32_t *x, int32_t *y);
double fp_site_data_slide_mpp(const struct fp_site_data *d, uint32_t s); /* tile um per pixel */
/* Tiles per class (n_classes counts). */
void fp_site_data_class_counts(const struct fp_site_data *d, uint64_t counts[FP_TME_N_CLASSES]);
/* The reader over all caches (borrowed). */
struct fp_tile_reader *fp_site_data_reader(struct fp_site_data *d);

/* Patient-level split: is_val[p] = 1 for the held-out patients, about
 * val_fraction of them (at least one when val_fraction > 0 and there are two
 * or more patients), chosen by hashing (seed, patient id). */
enum fp_status fp_site_split(const struct fp_site_data *d, double val_fraction, uint64_t seed,
                             unsigned char *is_val);

/* ---- turning tiles into model input ---- */

struct fp_augment {
	int flips, rot90;
	double hed_jitter, brightness, contrast;
};
/* rgb: (T, T, 3) uint8 -> x: (3, S, S) floats in [0, 1] (box-filtered when
 * T = k * S), then augmented with the draws of `draw` (none when aug NULL). */
enum fp_status fp_tile_to_input(const uint8_t *rgb, uint32_t t, int s, const struct fp_augment *aug,
                                uint64_t seed, uint64_t draw, float *x);

/* ---- the run ---- */

struct fp_train_summary {
	long steps, epochs;
	double best_metric;   /* best validation macro AUC (NAN without validation) */
	long best_epoch;
	int stopped_early;
};

/* Local evaluation: every labelled tile of the configured caches through
 * the model of `checkpoint` (no split, no augmentation). */
struct fp_eval_result {
	size_t n_tiles, n_patients;
	uint64_t per_class[FP_TME_N_CLASSES];
	double loss, macro_auc, balanced_accuracy;
	double auc[FP_TME_N_CLASSES];  /* one-vs-rest; NAN where a class is absent */
};
enum fp_status fp_site_train_evaluate(const struct fp_train_config *c, const char *checkpoint,
                                      struct fp_eval_result *out);

/* Runs `fedpath train`: resume = 1 continues from the checkpoint. */
enum fp_status fp_site_train_run(const struct fp_train_config *c, int resume,
                                 struct fp_train_summary *out);

#endif
