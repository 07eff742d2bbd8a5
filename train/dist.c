/*
 * dist.c: the MPI gradient reducer (fp_train_dist.h).
 *
 * Two paths, one result. Host: download the gradient, MPI_Allgather in host
 * memory, sum in rank order in double, upload. Device (the gradient lives on
 * a GPU and the MPI library is CUDA-aware): MPI_Allgather straight between
 * device buffers, then fp_k_mean_rows on the device: the same rank order,
 * the same double adds and one division, so the same bits as the host path.
 * Detection: Open MPI's extension header (mpi-ext.h) gives the compile-time
 * answer (MPIX_CUDA_AWARE_SUPPORT) and MPIX_Query_cuda_support() the
 * run-time one; the run-time answer wins where the library has the query (a
 * CUDA build can have the support switched off, --mca opal_cuda_support 0).
 * Other MPI libraries: host path.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__has_include)
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>
#endif
#endif

#include "fp_arith.h"
#include "fp_kernels.h"
#include "fp_log.h"
#include "fp_train_dist.h"

struct fp_train_dist {
	struct fp_kernels *k;
	int rank, size;
	size_t n;
	int device;    /* 1: device path */
	float *host;   /* host path: (n) this rank's gradient */
	float *all;    /* (size, n) everyone's: host memory, or backend memory on the device path */
};

int fp_train_dist_mpi_cuda_aware(char *why, size_t size)
{
	int compile = 0, aware = 0;
	const char *how;
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
	compile = 1;
#endif
#if defined(OMPI_HAVE_MPI_EXT_CUDA) && OMPI_HAVE_MPI_EXT_CUDA
	aware = MPIX_Query_cuda_support() == 1;
	how = aware ? "MPIX_Query_cuda_support() = 1 at run time"
	            : compile ? "MPIX_Query_cuda_support() = 0 at run time (built with CUDA, switched off)"
	                      : "MPIX_Query_cuda_support() = 0 and MPIX_CUDA_AWARE_SUPPORT = 0 (Open MPI built without CUDA)";
#else
	aware = compile;
	how = compile ? "MPIX_CUDA_AWARE_SUPPORT = 1 at compile time"
	              : "the MPI library declares no CUDA support (no MPIX_CUDA_AWARE_SUPPORT, no MPIX_Query_cuda_support)";
#endif
	if (why && size) snprintf(why, size, "%s", how);
	return aware;
}

int fp_train_dist_device_path(enum fp_backend_kind backend, char *why, size_t size)
{
	char mpi[200];
	const char *force = getenv("FEDPATH_DIST_HOST"), *dev = getenv("FEDPATH_DIST_DEVICE");
	if (dev && *dev && strcmp(dev, "0") != 0) {
		/* On the CPU backend the "device" buffers are host memory: this runs the
		 * device path's code without a GPU (tests); with a GPU it trusts the user. */
		snprintf(why, size, "FEDPATH_DIST_DEVICE=%s asks for it (%s backend memory)", dev,
		         backend == FP_BACKEND_CUDA ? "GPU" : "CPU");
		return 1;
	}
	if (backend != FP_BACKEND_CUDA) {
		snprintf(why, size, "the gradients are in host memory (CPU backend)");
		return 0;
	}
	if (force && *force && strcmp(force, "0") != 0) {
		snprintf(why, size, "FEDPATH_DIST_HOST=%s asks for it", force);
		return 0;
	}
	int aware = fp_train_dist_mpi_cuda_aware(mpi, sizeof mpi);
	snprintf(why, size, "%s MPI: %s", aware ? "CUDA-aware" : "not CUDA-aware", mpi);
	return aware;
}

enum fp_status fp_train_dist_create(struct fp_kernels *k, size_t n_params, struct fp_train_dist **out)
{
	int init = 0, size = 1;
	char why[300];
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
	d->device = fp_train_dist_device_path(fp_kernels_backend(k), why, sizeof why);
	if (d->device) {
		size_t bytes;
		FP_CHECK(st, fp_size_mul3(n_params, (size_t)size, sizeof(float), &bytes, "dist gradients"));
		FP_CHECK(st, fp_kernels_alloc(k, bytes, (void **)&d->all));
	} else {
		FP_CHECK(st, fp_alloc_array(n_params, sizeof(float), (void **)&d->host, "dist gradient"));
		FP_CHECK(st, fp_alloc_array(n_params, (size_t)size * sizeof(float), (void **)&d->all, "dist gradients"));
	}
	/* Once per run (setup probes the world size with n_params = 1 first). */
	if (d->rank == 0 && n_params > 1)
		FP_INFO("dist: %d ranks; gradients %s: %s", size,
		        d->device ? "exchanged in GPU memory (device path)" : "exchanged through host memory (host path)", why);
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
	if (d->device)
		fp_kernels_free(d->k, d->all);
	else
		free(d->all);
	free(d);
}

int fp_train_dist_rank(const struct fp_train_dist *d) { return d ? d->rank : 0; }
int fp_train_dist_size(const struct fp_train_dist *d) { return d ? d->size : 1; }
int fp_train_dist_on_device(const struct fp_train_dist *d) { return d ? d->device : 0; }

static enum fp_status reduce(void *ctx, float *grads, size_t n, float *loss, int *correct, int *count)
{
	struct fp_train_dist *d = ctx;
	float mine[3] = {*loss, (float)*correct, (float)*count}, theirs[3 * 1024];
	if (n != d->n) return FP_FAIL(FP_ERR_INTERNAL, "dist: %zu gradients, expected %zu", n, d->n);
	if (d->size > 1024) return FP_FAIL(FP_ERR_LIMIT, "dist: more than 1024 ranks");
	if (d->device) {
		/* MPI reads device memory outside the backend's stream: drain it first. */
		FP_TRY(fp_kernels_sync(d->k));
		if (MPI_Allgather(grads, (int)n, MPI_FLOAT, d->all, (int)n, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS)
			return FP_FAIL(FP_ERR_BACKEND, "dist: MPI_Allgather of %zu gradients in device memory failed", n);
		FP_TRY(fp_k_mean_rows(d->k, grads, d->all, d->size, n));
	} else {
		FP_TRY(fp_kernels_download(d->k, d->host, grads, n * sizeof(float)));
		if (MPI_Allgather(d->host, (int)n, MPI_FLOAT, d->all, (int)n, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS)
			return FP_FAIL(FP_ERR_BACKEND, "dist: MPI_Allgather of %zu gradients failed", n);
		/* Fixed order: rank 0, 1, ... in double, whatever MPI did
		 * (fp_k_mean_rows does the same on the device path). */
		for (size_t i = 0; i < n; i++) {
			double s = 0.0;
			for (int r = 0; r < d->size; r++) s += d->all[(size_t)r * n + i];
			d->host[i] = (float)(s / d->size);
		}
	}
	if (MPI_Allgather(mine, 3, MPI_FLOAT, theirs, 3, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS)
		return FP_FAIL(FP_ERR_BACKEND, "dist: MPI_Allgather of the step's loss failed");
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
	return d->device ? FP_OK : fp_kernels_upload(d->k, grads, d->host, n * sizeof(float));
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
