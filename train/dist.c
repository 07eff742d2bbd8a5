/*
 * dist.c: the MPI gradient reducer (fp_train_dist.h).
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "fp_kernels.h"
#include "fp_train_dist.h"

struct fp_train_dist {
	struct fp_kernels *k;
	int rank, size;
	size_t n;
	float *host;   /* (n) this rank's gradient */
	float *all;    /* (size, n) everyone's */
};

enum fp_status fp_train_dist_create(struct fp_kernels *k, size_t n_params, struct fp_train_dist **out)
{
	int init = 0, size = 1;
	enum fp_status st;
	*out = NULL;
	MPI_Initialized(&init);
	if (!init) return FP_OK;
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (size <= 1) return FP_OK;
	if (n_params > (size_t)INT32_MAX)
		return FP_FAIL(FP_ERR_LIMIT, "dist: %zu parameters exceed one MPI message", n_params);
	struct fp_train_dist *d = calloc(1, sizeof *d);
	if (!d) return FP_FAIL(FP_ERR_NOMEM, "dist");
	d->k = k;
	d->size = size;
	d->n = n_params;
	MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
	FP_CHECK(st, fp_alloc_array(n_params, sizeof(float), (void **)&d->host, "dist gradient"));
	FP_CHECK(st, fp_alloc_array(n_params, (size_t)size * sizeof(float), (void **)&d->all, "dist gradients"));
	*out = d;
	return FP_OK;
fail:
	fp_train_dist_destroy(d);
	return st;
}

void fp_train_dist_destroy(struct fp_train_dist *d)
{
	if (!d) return;
	free(d->host);
	free(d->all);
	free(d);
}

int fp_train_dist_rank(const struct fp_train_dist *d) { return d ? d->rank : 0; }
int fp_train_dist_size(const struct fp_train_dist *d) { return d ? d->size : 1; }

static enum fp_status reduce(void *ctx, float *grads, size_t n, float *loss, int *correct, int *count)
{
	struct fp_train_dist *d = ctx;
	float mine[3] = {*loss, (float)*correct, (float)*count}, theirs[3 * 1024];
	if (n != d->n) return FP_FAIL(FP_ERR_INTERNAL, "dist: %zu gradients, expected %zu", n, d->n);
	if (d->size > 1024) return FP_FAIL(FP_ERR_LIMIT, "dist: more than 1024 ranks");
	FP_TRY(fp_kernels_download(d->k, d->host, grads, n * sizeof(float)));
	if (MPI_Allgather(d->host, (int)n, MPI_FLOAT, d->all, (int)n, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS ||
	    MPI_Allgather(mine, 3, MPI_FLOAT, theirs, 3, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS)
		return FP_FAIL(FP_ERR_BACKEND, "dist: MPI_Allgather of %zu gradients failed", n);
	/* Fixed order: rank 0, 1, ... in double, whatever MPI did. */
	for (size_t i = 0; i < n; i++) {
		double s = 0.0;
		for (int r = 0; r < d->size; r++) s += d->all[(size_t)r * n + i];
		d->host[i] = (float)(s / d->size);
	}
	double l = 0.0;
	int c = 0, m = 0;
	for (int r = 0; r < d->size; r++) {
		l += theirs[3 * r];
		c += (int)theirs[3 * r + 1];
		m += (int)theirs[3 * r + 2];
	}
	*loss = (float)(l / d->size);
	*correct = c;
	*count = m;
	return fp_kernels_upload(d->k, grads, d->host, n * sizeof(float));
}

struct fp_grad_reducer fp_train_dist_reducer(struct fp_train_dist *d)
{
	struct fp_grad_reducer r = {d, reduce};
	return r;
}

int fp_train_dist_all(struct fp_train_dist *d, int ok)
{
	int all = ok;
	if (d) MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
	return all;
}
