/*
 * fp_part1_net.h: a Part 1-like tile network composed of fp_kernels ops, for
 * the kernel tests, benchmarks and the GPU check only (not in the library;
 * train/ builds the real model).
 *
 * Network (width w, input (N, 3, S, S)):
 *   stem: conv3x3 3->w, BN, ReLU
 *   stage 1..3 (w, 2w, 4w channels): 2 BasicBlocks each; the first block of
 *   stages 2 and 3 has stride 2 and a 1x1 conv + BN projection
 *   GAP -> (N, 4w) -> three linear heads: immune (3 classes, softmax CE),
 *   stroma (1, MSE), necrosis + vascular invasion (2, BCE on logits).
 *   loss = CE + MSE + BCE. Convs have no bias (BN follows), BN is in training
 *   mode (momentum 0.1, eps 1e-5). AdamW decays conv and linear weights only.
 * Parameter names follow scripts/gen_kernel_goldens.py's PyTorch twin
 * ("stem_conv.weight", "s2b0_proj_bn.bias", "head_cls.weight", ...).
 * Buffers are backend memory, allocated once in create; a step allocates
 * nothing.
 */
#ifndef FP_PART1_NET_H
#define FP_PART1_NET_H

#include <stddef.h>
#include <stdint.h>

#include "fp_kernels.h"

struct fp_part1_net;

enum fp_status fp_part1_net_create(struct fp_kernels *k, int batch, int size, int width,
                                   struct fp_part1_net **out);
void fp_part1_net_destroy(struct fp_part1_net *net);

int fp_part1_net_param_count(const struct fp_part1_net *net);
/* Name, backend pointer and length of parameter i (borrowed). */
const char *fp_part1_net_param(const struct fp_part1_net *net, int i, float **data, size_t *len);
/* Fills the parameters like PyTorch's defaults (uniform +-1/sqrt(fan_in) for
 * weights, BN gamma 1 beta 0) from a seeded host RNG. */
enum fp_status fp_part1_net_init(struct fp_part1_net *net, uint64_t seed);

/* One training step: forward, backward, AdamW (o->step is used as given).
 * x: (N, 3, S, S); cls: (N) int32 in [0, 3); stroma: (N); binary: (N, 2), all
 * backend memory. *loss (host) gets the loss before the update. */
enum fp_status fp_part1_net_step(struct fp_part1_net *net, const float *x, const int32_t *cls,
                                 const float *stroma, const float *binary, const struct fp_adamw *o,
                                 float *loss);

#endif
