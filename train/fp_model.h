/*
 * fp_model.h: models as lists of layers, forward and backward over
 * fp_kernels, and the Part 1 tile network built from them.
 *
 * Stage: above kernels/ (the compute ops), below the trainer (fp_train.h).
 * A model is a flat list of layers; each layer reads one activation (two for
 * a residual add) and writes one new activation, so a ResNet is a list whose
 * add layers name the block input as their second operand. Backward runs the
 * list in reverse and sums the gradients of activations read twice; there is
 * no general autograd.
 *
 * Memory (llm.c's arenas): parameters, gradients and activations (with the
 * saved statistics, probabilities, labels and the gradient slots) are each one
 * backend allocation sized at creation for `max_batch` samples; forward and
 * backward never allocate. Gradient slots are shared between activations
 * whose gradients are never live at the same time (interval colouring at
 * build time), so backward needs about three activation-sized buffers.
 *
 * Parameters have names and shapes ("s2.b0.conv1.weight", (32, 16, 3, 3)),
 * PyTorch-style, and are laid out in table order in one flat float vector:
 * that vector is what checkpoints store and what federation exchanges.
 *
 * Facts (tests/unit/test_train.c checks each):
 *  - the analytic gradient of the whole network equals central finite
 *    differences of its loss (relative tolerance, float);
 *  - the same seed gives bit-identical initial parameters;
 *  - a tile's outputs do not depend on the other tiles of its batch (GroupNorm
 *    works per sample; no batch statistics): equal within 1e-5 relative for
 *    any batch split (bit-identical on the CPU backend as measured).
 * Ownership: fp_model_create gives an owned model (fp_model_destroy); the
 * kernels handle is borrowed and must outlive it. One thread at a time.
 */
#ifndef FP_MODEL_H
#define FP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fp_kernels.h"
#include "fp_status.h"

#define FP_MODEL_MAX_LAYERS 128
#define FP_MODEL_NAME_MAX 48
#define FP_TME_N_CLASSES 7

/* The Part 1 tumour-microenvironment classes, in head order. */
enum fp_tme_class {
	FP_TME_TUMOUR = 0,
	FP_TME_STROMA = 1,
	FP_TME_LYMPHOCYTES = 2,  /* lymphocyte-dense */
	FP_TME_NECROSIS = 3,
	FP_TME_VASCULAR_INVASION = 4, /* vessel with tumour */
	FP_TME_LIVER = 5,        /* non-tumour liver */
	FP_TME_OTHER = 6         /* background and everything else */
};
/* "tumour", "stroma", "lymphocytes", "necrosis", "vascular_invasion",
 * "liver", "other"; "?" out of range. */
const char *fp_tme_class_name(int c);

/* The ResNet-style tile network (docs/TRAINING.md, "The tile network"):
 * stem conv3x3(3 -> w0) + GN + ReLU; three stages of `blocks` BasicBlocks
 * (conv3x3 + GN + ReLU + conv3x3 + GN, identity or 1x1-conv + GN shortcut,
 * add, ReLU) with widths w0, w1, w2, stride 2 at the start of stages 2 and 3;
 * global average pool -> embedding (w2); linear head -> n_classes logits. */
struct fp_tilenet_config {
	int input_size;  /* tile edge in pixels, 8..512, divisible by 4 */
	int width[3];    /* channels per stage, 1..1024, each divisible by groups */
	int blocks;      /* BasicBlocks per stage, 1..8 */
	int groups;      /* GroupNorm groups, 1..64 */
	int n_classes;   /* 2..64; FP_TME_N_CLASSES for Part 1 */
};
/* 64x64 input, widths 16-32-64, 2 blocks, 4 groups, 7 classes. */
void fp_tilenet_config_default(struct fp_tilenet_config *c);
/* Range checks; FP_ERR_INVALID_ARG naming the field and value. */
enum fp_status fp_tilenet_config_check(const struct fp_tilenet_config *c);
/* Canonical text "tilenet v1 input=64 width=16,32,64 blocks=2 groups=4
 * classes=7" (buf >= 128). Checkpoints store it; equal text = same shapes. */
void fp_tilenet_config_str(const struct fp_tilenet_config *c, char *buf, size_t size);

/* One named parameter tensor of the flat vector. */
struct fp_param_info {
	char name[FP_MODEL_NAME_MAX];
	int ndim;
	int shape[4];
	size_t offset;  /* in floats, into the flat vector */
	size_t count;
	int decay;      /* 1: weight decay applies (conv and linear weights) */
};

struct fp_model; /* opaque */

/* Builds the tile network for batches of at most `max_batch` tiles and
 * initialises its parameters from `seed` (Kaiming-normal convs, PyTorch's
 * default linear init, GN gamma 1 beta 0). */
enum fp_status fp_model_create_tilenet(struct fp_kernels *k, const struct fp_tilenet_config *cfg,
                                       int max_batch, uint64_t seed, struct fp_model **out);
void fp_model_destroy(struct fp_model *m);

const struct fp_tilenet_config *fp_model_config(const struct fp_model *m);
struct fp_kernels *fp_model_kernels(const struct fp_model *m);
int fp_model_max_batch(const struct fp_model *m);
int fp_model_n_classes(const struct fp_model *m);
int fp_model_embed_dim(const struct fp_model *m);
/* Floats per input sample: 3 * input_size^2. */
size_t fp_model_input_floats(const struct fp_model *m);

/* The parameter table (borrowed, lives with m). */
size_t fp_model_n_params(const struct fp_model *m);   /* floats in the flat vector */
size_t fp_model_n_tensors(const struct fp_model *m);
const struct fp_param_info *fp_model_tensor(const struct fp_model *m, size_t i);
/* Index of the tensor called `name`, or -1. */
long fp_model_find_tensor(const struct fp_model *m, const char *name);
/* Backend pointers to the flat parameter and gradient vectors (borrowed). */
float *fp_model_params(struct fp_model *m);
float *fp_model_grads(struct fp_model *m);
/* Copies the flat parameter vector to/from host memory (n = fp_model_n_params). */
enum fp_status fp_model_get_params(struct fp_model *m, float *host, size_t n);
enum fp_status fp_model_set_params(struct fp_model *m, const float *host, size_t n);

/* Forward pass for n <= max_batch samples.
 * x: (n, 3, S, S) host floats; logits, probs, embed: host outputs or NULL:
 * logits (n, n_classes), probs (n, n_classes) softmax, embed (n, embed_dim). */
enum fp_status fp_model_forward(struct fp_model *m, const float *x, int n, float *logits,
                                float *probs, float *embed);

/* Forward, softmax cross-entropy against labels: (n) in [0, n_classes)
 * weighted by class_w: (n_classes) or NULL, and (when `backward`) the
 * gradient of the loss into fp_model_grads (overwritten). *loss is the mean
 * loss; probs: (n, n_classes) host or NULL. */
enum fp_status fp_model_loss(struct fp_model *m, const float *x, const int32_t *labels,
                             const float *class_w, int n, int backward, float *loss, float *probs);

#endif
