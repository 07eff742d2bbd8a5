/*
 * cuda_impl.h: the CUDA backend's private state, shared by cuda_ops.cu and
 * cuda_conv.cu. Internal to kernels/. All work is queued on c->stream;
 * calls that return values to the host synchronise it.
 */
#ifndef FP_CUDA_IMPL_H
#define FP_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels_impl.h"

struct fp_cuda_conv_cache;

struct fp_cuda {
	int device, deterministic, mixed;
	cudaStream_t stream;
	cublasHandle_t blas;
	cudnnHandle_t dnn;
	struct fp_cuda_conv_cache *conv;
	void *workspace;        /* cuDNN workspace, grown when a plan is built */
	size_t workspace_size;
	double *dscratch;       /* FP_CUDA_SCRATCH doubles for reductions */
	double *cscratch;       /* per-(sample, channel) partial sums of the channel statistics, grown on demand */
	size_t cscratch_n;      /* doubles in cscratch */
	char desc[160];
};

#define FP_CUDA_SCRATCH (1 << 16)

/* Returns FP_ERR_BACKEND naming the failed CUDA runtime call. */
#define CU(call)                                                                                   \
	do {                                                                                           \
		cudaError_t e_ = (call);                                                                   \
		if (e_ != cudaSuccess)                                                                     \
			return FP_FAIL(FP_ERR_BACKEND, "kernels: CUDA %s: %s", #call, cudaGetErrorString(e_)); \
	} while (0)

enum fp_status fp_cuda_conv_init(struct fp_cuda *c);
void fp_cuda_conv_close(struct fp_cuda *c);
enum fp_status fp_cuda_workspace(struct fp_cuda *c, size_t bytes);
/* y: (N, C, HW) += b[c] */
enum fp_status fp_cuda_bias_add(struct fp_cuda *c, float *y, const float *b, int n, int cc, int hw);
/* db[c] = sum over (N, HW) of dy, fixed order (per-plane sums, then per channel over N). */
enum fp_status fp_cuda_bias_grad(struct fp_cuda *c, float *db, const float *dy, int n, int cc, int hw);

#endif
