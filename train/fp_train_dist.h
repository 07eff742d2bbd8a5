/*
 * fp_train_dist.h: data-parallel training over MPI ranks.
 *
 * Every rank runs the same model on its share of each global batch; after
 * backward, fp_train_dist_reducer()'s hook gathers all ranks' gradients
 * (MPI_Allgather) and sums them in rank order in double, then divides by the
 * number of ranks, so every rank applies the identical update and the result
 * does not depend on MPI's reduction order. With equal shares this is the
 * gradient of the mean loss over the global batch: the same as one process
 * with the whole batch up to float rounding of the per-rank partial means
 * (tests/unit/test_train_mpi.sh states the tolerance).
 * Host memory only (CPU backend); a CUDA run downloads and uploads around it.
 */
#ifndef FP_TRAIN_DIST_H
#define FP_TRAIN_DIST_H

#include <stddef.h>

#include "fp_train.h"

struct fp_train_dist; /* opaque */

/* Joins MPI_COMM_WORLD when MPI is initialised and has more than one rank;
 * otherwise *out = NULL (single process). */
enum fp_status fp_train_dist_create(struct fp_kernels *k, size_t n_params, struct fp_train_dist **out);
void fp_train_dist_destroy(struct fp_train_dist *d);
int fp_train_dist_rank(const struct fp_train_dist *d);  /* 0 when d is NULL */
int fp_train_dist_size(const struct fp_train_dist *d);  /* 1 when d is NULL */
/* The hook to pass to fp_trainer_set_reducer (borrowing d). */
struct fp_grad_reducer fp_train_dist_reducer(struct fp_train_dist *d);
/* Logical AND of `ok` over ranks (so that all ranks stop together). */
int fp_train_dist_all(struct fp_train_dist *d, int ok);

#endif
