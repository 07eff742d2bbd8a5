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
 * Where the exchange runs (one info line on rank 0 says which and why):
 *  - device path: the backend is CUDA and the MPI library is CUDA-aware
 *    (compile time MPIX_CUDA_AWARE_SUPPORT, run time MPIX_Query_cuda_support(),
 *    Open MPI's mpi-ext.h): device buffers go to MPI directly and the
 *    rank-order mean runs on the GPU (fp_k_mean_rows: the same double sum and
 *    division as the host loop, so the same bits);
 *  - host path otherwise (CPU backend; an MPI without CUDA support, e.g.
 *    Debian's Open MPI; FEDPATH_DIST_HOST=1): download, exchange, sum, upload.
 * FEDPATH_DIST_DEVICE=1 forces the device path: on the CPU backend it runs
 * that code on host memory (how it is tested without a GPU); with a GPU it
 * is for a CUDA-aware MPI that the detection cannot see (not Open MPI).
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
/* What the MPI library says about device buffers: 1 = CUDA-aware. `why`
 * (may be NULL) gets one sentence naming the compile- and run-time answers. */
int fp_train_dist_mpi_cuda_aware(char *why, size_t size);
/* The path fp_train_dist_create picks for gradients of `backend`:
 * 1 = device, 0 = host; `why` gets the reason logged. */
int fp_train_dist_device_path(enum fp_backend_kind backend, char *why, size_t size);
int fp_train_dist_on_device(const struct fp_train_dist *d); /* 0 when d is NULL */
/* Logical AND of `ok` over ranks (so that all ranks stop together). */
int fp_train_dist_all(struct fp_train_dist *d, int ok);

#endif
