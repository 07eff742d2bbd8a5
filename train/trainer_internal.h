/*
 * trainer_internal.h: the trainer's fields, shared by trainer.c and
 * checkpoint.c (which saves and restores them). Internal to train/.
 */
#ifndef FP_TRAINER_INTERNAL_H
#define FP_TRAINER_INTERNAL_H

#include "fp_train.h"

struct fp_trainer {
	struct fp_model *model;     /* borrowed */
	struct fp_kernels *k;       /* borrowed (the model's) */
	struct fp_train_options opt;
	size_t n;                   /* n_params */
	long step;                  /* updates applied */
	float *state;               /* backend: (4, n) = m, v, anchor (negated), work */
	float *m, *v, *anchor, *work;
	float *probs;               /* host (max_batch, n_classes) */
	float *class_w;             /* host (n_classes) */
	int use_class_w;
	uint8_t *rgb;               /* backend (max_batch, T, T, 3) tiles; NULL on the CPU (host input is used in place) */
	size_t rgb_bytes;           /* capacity of rgb */
	float *x;                   /* backend (max_batch, 3, S, S) augmented input, sized on first use */
	struct fp_grad_reducer reducer;
	int has_reducer;
};

#endif
