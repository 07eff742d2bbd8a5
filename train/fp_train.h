/*
 * fp_train.h: the trainer of the Part 1 tile model: optimiser, learning-rate
 * schedule, one training step, checkpoints, and the local update a federated
 * round calls.
 *
 * Stage: above fp_model.h; used by `fedpath train` (cli/cmd_train.c), by the
 * site agent (federate/) for each round, and by `fedpath quantify`.
 *
 * A trainer borrows a model and owns the optimiser state: one backend
 * allocation of 4 x n_params floats (AdamW m and v or SGD momentum, the
 * FedProx anchor, a work vector), sized once; a step never allocates.
 *
 * One step: upload the batch (or its uint8 tiles, augmented on the backend:
 * fp_trainer_step_tiles), forward, softmax cross-entropy, backward;
 * (data-parallel) the gradient reducer; FedProx term mu (w - w_anchor);
 * global-norm clipping; the optimiser update at lr(step); step + 1.
 *
 * Facts (tests/unit/test_train.c checks each):
 *  - a step whose loss or gradient is not finite changes nothing (parameters,
 *    optimiser state, step count) and fails with FP_ERR_NUMERIC naming the step;
 *  - N steps straight and K steps, save, load into a fresh trainer, N - K
 *    steps give bit-identical losses and parameters (the batches of step s
 *    depend only on (seed, s), see fp_batch_source);
 *  - a checkpoint is written to "<path>.partial" and published atomically;
 *    when writing fails (disk full) the previous file at <path> is intact;
 *  - loading refuses (FP_ERR_FORMAT) a checkpoint whose model configuration
 *    or any tensor shape differs from the model's, naming both;
 *  - fp_train_local_update with mu > 0 pulls the result towards the start
 *    weights (smaller update norm than mu = 0 for the same batches).
 */
#ifndef FP_TRAIN_H
#define FP_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "fp_model.h"
#include "fp_status.h"

enum fp_optimizer { FP_OPT_ADAMW = 0, FP_OPT_SGD = 1 };
enum fp_lr_schedule { FP_LR_CONSTANT = 0, FP_LR_COSINE = 1 };

struct fp_train_options {
	enum fp_optimizer optimizer;
	double lr;            /* peak learning rate, > 0 */
	double weight_decay;  /* decoupled (AdamW) or L2 (SGD); conv/linear weights only */
	double beta1, beta2, adam_eps; /* AdamW */
	double momentum;      /* SGD */
	double clip_norm;     /* global gradient-norm clip; 0: none */
	long warmup_steps;    /* linear warm-up from lr/warmup to lr */
	long total_steps;     /* horizon of the cosine schedule (>= warmup) */
	enum fp_lr_schedule schedule;
	double min_lr_ratio;  /* cosine floor as a fraction of lr */
	double prox_mu;       /* FedProx proximal weight; 0: none */
};
/* AdamW lr 1e-3, wd 1e-4, betas 0.9/0.999, eps 1e-8, momentum 0.9, clip 5,
 * warm-up 0, total 1000, cosine, floor 0.01, mu 0. */
void fp_train_options_default(struct fp_train_options *o);
enum fp_status fp_train_options_check(const struct fp_train_options *o);
/* Learning rate at (0-based) step: warm-up (step+1)/warmup * lr, then
 * cosine from lr to lr*min_lr_ratio over the remaining steps, flat after. */
double fp_train_lr_at(const struct fp_train_options *o, long step);

/* What one step did. */
struct fp_step_stats {
	float loss;      /* mean cross-entropy of the batch (all ranks when data-parallel) */
	int n;           /* samples */
	int correct;     /* argmax == label */
	double grad_norm; /* before clipping */
	double lr;
};

/* Data-parallel hook: called after backward with the flat gradient (backend
 * memory, n floats) and the local loss; it must leave there the mean over
 * all ranks, identical on every rank (train/dist.c provides the MPI one). */
struct fp_grad_reducer {
	void *ctx;
	enum fp_status (*reduce)(void *ctx, float *grads, size_t n, float *loss, int *correct, int *count);
};

struct fp_trainer; /* opaque */

/* `model` is borrowed and must outlive the trainer. */
enum fp_status fp_trainer_create(struct fp_model *model, const struct fp_train_options *o,
                                 struct fp_trainer **out);
void fp_trainer_destroy(struct fp_trainer *t);
struct fp_model *fp_trainer_model(struct fp_trainer *t);
const struct fp_train_options *fp_trainer_options(const struct fp_trainer *t);
long fp_trainer_step_count(const struct fp_trainer *t);
/* Class weights of the loss, (n_classes) host floats copied, or NULL for none. */
enum fp_status fp_trainer_set_class_weights(struct fp_trainer *t, const float *w);
void fp_trainer_set_reducer(struct fp_trainer *t, const struct fp_grad_reducer *r);
/* FedProx anchor: the weights the proximal term pulls towards (n_params host floats). */
enum fp_status fp_trainer_set_anchor(struct fp_trainer *t, const float *w, size_t n);
/* Zeroes the optimiser state and the step count. */
enum fp_status fp_trainer_reset(struct fp_trainer *t);

/* One step on x: (n, 3, S, S) host floats, labels: (n). */
enum fp_status fp_trainer_step(struct fp_trainer *t, const float *x, const int32_t *labels, int n,
                               struct fp_step_stats *st);

/* One step from tile pixels: rgb: (n, T, T, 3) uint8 host (T a multiple of
 * the model's input size S), aug: (n) per-tile draws (fp_augment_draw in
 * train/) or NULL for none. The backend box-filters and augments them into
 * the model's input (fp_k_augment_tiles): on a GPU the uint8 tiles are
 * uploaded (a quarter of the float bytes) and the pixel work runs there; on
 * the CPU the input equals fp_tile_to_input's bit for bit, so this step
 * equals fp_trainer_step on that input. The first call, or one with larger
 * tiles, sizes the trainer's pixel buffers; later calls do not allocate. */
enum fp_status fp_trainer_step_tiles(struct fp_trainer *t, const uint8_t *rgb, uint32_t tile,
                                     const struct fp_tile_aug *aug, const int32_t *labels, int n,
                                     struct fp_step_stats *st);

/* ---- checkpoints (HDF5; layout in docs/TRAINING.md) ---- */

#define FP_CHECKPOINT_VERSION 1

/* Training-loop state stored beside the model and optimiser. */
struct fp_train_state {
	uint64_t seed;        /* sampling/augmentation seed; with step this is the RNG state */
	long epoch;           /* epochs completed */
	double best_metric;   /* best validation metric so far (early stopping) */
	long best_epoch;
	long bad_epochs;      /* epochs since the best (patience counter) */
	char run_config[1024]; /* the caller's configuration echo (informative) */
};

/* Writes params, optimiser state, step, state and the model configuration. */
enum fp_status fp_checkpoint_save(struct fp_trainer *t, const struct fp_train_state *s, const char *path);
/* Restores all of the above into t (whose model must have the same
 * configuration); s may be NULL. */
enum fp_status fp_checkpoint_load(struct fp_trainer *t, struct fp_train_state *s, const char *path);
/* Parameters only (inference: quantify, evaluation). */
enum fp_status fp_checkpoint_load_params(struct fp_model *m, const char *path);
/* The model configuration a checkpoint was written for. */
enum fp_status fp_checkpoint_read_config(const char *path, struct fp_tilenet_config *cfg);

/* ---- the local update of a federated round ---- */

/* Where batches come from. next() fills x: (B, 3, S, S) and labels: (B) for
 * global step `step` with B <= the model's max batch, and sets *n = B. The
 * batch must depend only on (its own seed, step) so that resume and replays
 * are exact. */
struct fp_batch_source {
	void *ctx;
	enum fp_status (*next)(void *ctx, long step, float *x, int32_t *labels, int *n);
	uint64_t n_examples;  /* local training set size (the FedAvg weight) */
};

struct fp_local_options {
	long steps;           /* steps to run; 0: epochs x ceil(n_examples / batch) */
	long epochs;
	int batch;            /* nominal batch size for the epoch count */
	double prox_mu;       /* overrides the trainer's mu for this update */
	int reset_optimizer;  /* 1: fresh optimiser state and schedule for this round */
};

struct fp_local_result {
	uint64_t n_examples;  /* from the source */
	uint64_t samples_seen;
	long steps;
	double mean_loss;     /* over the steps */
	double accuracy;      /* on the training batches */
	double update_norm;   /* ||delta||_2 */
};

/* Sets the model to `global` (n_params floats), trains, and writes
 * delta = w_local - global (n_params floats). The model keeps w_local.
 * delta may be global itself (trained in place, as the site agent does). */
enum fp_status fp_train_local_update(struct fp_trainer *t, const float *global, size_t n,
                                     const struct fp_batch_source *src,
                                     const struct fp_local_options *o, float *delta,
                                     struct fp_local_result *res);

#endif
