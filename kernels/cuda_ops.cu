/*
 * cuda_ops.cu: the CUDA backend for everything but convolution: handle and
 * memory, cuBLAS GEMMs, and own kernels for the rest.
 *
 * Each kernel is the twin of a loop in cpu.c and is tested against the same
 * reference (tests/unit/test_kernels.c, gpu_* cases).
 * Determinism: no float atomics. Reductions run in double with a fixed
 * block size (TPB) and a fixed tree; backward passes of pooling gather
 * (each input element sums its own windows) instead of scattering.
 * The Cox loss runs on the host (fp_cpu_cox_*: a sort and a scan over a
 * batch of at most a few thousand), through two small copies.
 * Softmax labels are not range-checked on the device (the CPU backend does).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_impl.h"
#include "fp_kernels_rng.h"

#define TPB 256
#define AGG_MAX_K_GPU 64

#define BL(call)                                                                                   \
	do {                                                                                           \
		cublasStatus_t b_ = (call);                                                                \
		if (b_ != CUBLAS_STATUS_SUCCESS)                                                           \
			return FP_FAIL(FP_ERR_BACKEND, "kernels: cuBLAS %s: status %d", #call, (int)b_);       \
	} while (0)

/* After a launch: report a bad launch configuration at once. */
#define LAUNCHED() CU(cudaGetLastError())

static unsigned grid_for(size_t n)
{
	size_t g = (n + TPB - 1) / TPB;
	if (g > 65535u * 8)
		g = 65535u * 8;
	return (unsigned)(g ? g : 1);
}

#define FOR_N(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)
#define EW(n) grid_for(n), TPB, 0, be->stream

/* Sum over the block, same tree every time; all threads get the result. */
__device__ double block_sum(double v)
{
	__shared__ double sh[TPB];
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int s = TPB / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s)
			sh[threadIdx.x] += sh[threadIdx.x + s];
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

/* ---- handle and memory ---- */

int fp_cuda_device_count(void)
{
	int n = 0;
	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		cudaGetLastError();
		return 0;
	}
	return n;
}

enum fp_status fp_cuda_create(int device, int deterministic, int mixed, struct fp_cuda **out)
{
	int count = 0;
	cudaError_t e = cudaGetDeviceCount(&count);
	if (e != cudaSuccess || count == 0)
		return FP_FAIL(FP_ERR_BACKEND, "kernels: no CUDA device (%s)",
		               e != cudaSuccess ? cudaGetErrorString(e) : "count 0");
	if (device >= count)
		return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: CUDA device %d requested, %d present", device, count);
	struct fp_cuda *c = (struct fp_cuda *)calloc(1, sizeof(*c));
	enum fp_status st = FP_OK;
	cudaDeviceProp prop;
	if (!c)
		return FP_FAIL(FP_ERR_NOMEM, "kernels: cuda handle");
	c->device = device;
	c->deterministic = deterministic;
	c->mixed = mixed;
	if (cudaSetDevice(device) != cudaSuccess || cudaStreamCreate(&c->stream) != cudaSuccess ||
	    cudaMalloc((void **)&c->dscratch, sizeof(double) * FP_CUDA_SCRATCH) != cudaSuccess) {
		st = FP_FAIL(FP_ERR_BACKEND, "kernels: CUDA device %d setup: %s", device, cudaGetErrorString(cudaGetLastError()));
		goto fail;
	}
	if (cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(c->blas, c->stream) != CUBLAS_STATUS_SUCCESS) {
		st = FP_FAIL(FP_ERR_BACKEND, "kernels: cublasCreate failed on device %d", device);
		goto fail;
	}
	/* Deterministic reductions in cuBLAS: atomics stay off (its default), stated here. */
	cublasSetAtomicsMode(c->blas, CUBLAS_ATOMICS_NOT_ALLOWED);
	if (cudnnCreate(&c->dnn) != CUDNN_STATUS_SUCCESS || cudnnSetStream(c->dnn, c->stream) != CUDNN_STATUS_SUCCESS) {
		st = FP_FAIL(FP_ERR_BACKEND, "kernels: cudnnCreate failed on device %d", device);
		goto fail;
	}
	FP_CHECK(st, fp_cuda_conv_init(c));
	cudaGetDeviceProperties(&prop, device);
	snprintf(c->desc, sizeof(c->desc), "cuda:%d %.100s (cuDNN %zu%s%s)", device, prop.name, cudnnGetVersion(),
	         deterministic ? ", deterministic" : "", mixed ? ", mixed bf16" : ", fp32");
	*out = c;
	return FP_OK;
fail:
	fp_cuda_destroy(c);
	return st;
}

void fp_cuda_destroy(struct fp_cuda *c)
{
	if (!c)
		return;
	fp_cuda_conv_close(c);
	if (c->dnn)
		cudnnDestroy(c->dnn);
	if (c->blas)
		cublasDestroy(c->blas);
	cudaFree(c->workspace);
	cudaFree(c->dscratch);
	cudaFree(c->cscratch);
	if (c->stream)
		cudaStreamDestroy(c->stream);
	free(c);
}

const char *fp_cuda_describe(const struct fp_cuda *c)
{
	return c->desc;
}

enum fp_status fp_cuda_workspace(struct fp_cuda *c, size_t bytes)
{
	if (bytes <= c->workspace_size)
		return FP_OK;
	CU(cudaStreamSynchronize(c->stream));
	cudaFree(c->workspace);
	c->workspace = NULL;
	c->workspace_size = 0;
	CU(cudaMalloc(&c->workspace, bytes));
	c->workspace_size = bytes;
	return FP_OK;
}

enum fp_status fp_cuda_alloc(struct fp_cuda *be, size_t bytes, void **out)
{
	(void)be;
	cudaError_t e = cudaMalloc(out, bytes);
	if (e != cudaSuccess)
		return FP_FAIL(FP_ERR_NOMEM, "kernels: cudaMalloc(%zu): %s", bytes, cudaGetErrorString(e));
	return FP_OK;
}

void fp_cuda_free(struct fp_cuda *be, void *p)
{
	(void)be;
	cudaFree(p);
}

enum fp_status fp_cuda_upload(struct fp_cuda *be, void *dst, const void *host, size_t bytes)
{
	CU(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyDefault, be->stream)); /* host or device source */
	CU(cudaStreamSynchronize(be->stream));
	return FP_OK;
}

enum fp_status fp_cuda_download(struct fp_cuda *be, void *host, const void *src, size_t bytes)
{
	CU(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDefault, be->stream)); /* host or device target */
	CU(cudaStreamSynchronize(be->stream));
	return FP_OK;
}

enum fp_status fp_cuda_zero(struct fp_cuda *be, void *p, size_t bytes)
{
	CU(cudaMemsetAsync(p, 0, bytes, be->stream));
	return FP_OK;
}

enum fp_status fp_cuda_sync(struct fp_cuda *be)
{
	CU(cudaStreamSynchronize(be->stream));
	return FP_OK;
}

/* Row-major C(M,N) = alpha op(A) op(B) + beta C, as fp_cpu_sgemm: computed
 * as the column-major C^T = op(B)^T op(A)^T. Mixed mode: fp32 in and out,
 * bf16 tensor-core products with fp32 accumulation. */
static enum fp_status sgemm(struct fp_cuda *be, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                            int lda, const float *b, int ldb, float beta, float *cc, int ldc)
{
	if (be->mixed) {
		BL(cublasGemmEx(be->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha,
		                b, CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta, cc, CUDA_R_32F, ldc,
		                CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT));
		return FP_OK;
	}
	BL(cublasSgemm(be->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb,
	               a, lda, &beta, cc, ldc));
	return FP_OK;
}

/* ---- elementwise ---- */

__global__ void k_accumulate(float *y, const float *x, size_t n) { FOR_N(i, n) y[i] += x[i]; }
__global__ void k_add(float *y, const float *a, const float *b, size_t n) { FOR_N(i, n) y[i] = a[i] + b[i]; }
__global__ void k_scale(float *x, size_t n, float s) { FOR_N(i, n) x[i] *= s; }
__global__ void k_relu_f(float *y, const float *x, size_t n) { FOR_N(i, n) y[i] = x[i] > 0 ? x[i] : 0.0f; }
__global__ void k_relu_b(float *dx, const float *dy, const float *y, size_t n) { FOR_N(i, n) dx[i] = y[i] > 0 ? dy[i] : 0.0f; }
__global__ void k_gelu_f(float *y, const float *x, size_t n)
{
	FOR_N(i, n) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}
__global__ void k_gelu_b(float *dx, const float *dy, const float *x, size_t n)
{
	FOR_N(i, n) {
		float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
		float pdf = expf(-0.5f * x[i] * x[i]) * 0.39894228040143268f;
		dx[i] = dy[i] * (cdf + x[i] * pdf);
	}
}
__global__ void k_dropout(float *y, const float *x, size_t n, float p, float scale, uint64_t seed)
{
	FOR_N(i, n) y[i] = fp_rng_uniform(seed, i) >= p ? x[i] * scale : 0.0f;
}

enum fp_status fp_cuda_accumulate(struct fp_cuda *be, float *y, const float *x, size_t n)
{
	k_accumulate<<<EW(n)>>>(y, x, n);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_add(struct fp_cuda *be, float *y, const float *a, const float *b, size_t n)
{
	k_add<<<EW(n)>>>(y, a, b, n);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_scale(struct fp_cuda *be, float *x, size_t n, float s)
{
	k_scale<<<EW(n)>>>(x, n, s);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_relu_forward(struct fp_cuda *be, float *y, const float *x, size_t n)
{
	k_relu_f<<<EW(n)>>>(y, x, n);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_relu_backward(struct fp_cuda *be, float *dx, const float *dy, const float *y, size_t n)
{
	k_relu_b<<<EW(n)>>>(dx, dy, y, n);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_gelu_forward(struct fp_cuda *be, float *y, const float *x, size_t n)
{
	k_gelu_f<<<EW(n)>>>(y, x, n);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_gelu_backward(struct fp_cuda *be, float *dx, const float *dy, const float *x, size_t n)
{
	k_gelu_b<<<EW(n)>>>(dx, dy, x, n);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_dropout_forward(struct fp_cuda *be, float *y, const float *x, size_t n, float p, uint64_t seed)
{
	k_dropout<<<EW(n)>>>(y, x, n, p, 1.0f / (1.0f - p), seed);
	LAUNCHED();
	return FP_OK;
}

/* ---- bias ---- */

__global__ void k_bias_add(float *y, const float *b, size_t total, int cc, int hw)
{
	FOR_N(i, total) y[i] += b[(i / hw) % cc];
}

/*
 * Per-channel statistics over (N, HW) in two fixed-order stages, so that the
 * whole GPU works whatever the channel count (one block per channel walking
 * N*HW strided elements left most SMs idle and dominated a training step):
 *  1. k_plane_sums: one block per plane p = i*C + c (HW contiguous floats,
 *     coalesced), two double sums per plane into cscratch[2p], [2p+1];
 *  2. a fold kernel: one block per channel sums its N planes in a fixed tree.
 * No atomics: the result is the same on every run.
 */
enum { PS_SUM = 0, PS_CENTRED_SQ = 1, PS_DY_XHAT = 2 };

/* PS_SUM: (sum a, 0). PS_CENTRED_SQ: (sum (a - dmean[c])^2, 0).
 * PS_DY_XHAT: (sum dy * (x - mean[st]) * rstd[st], sum dy) with a = x, b = dy,
 * st = c (batch) or i * groups + c / (C / groups) (GroupNorm). */
__global__ void k_plane_sums(double *out, int mode, const float *a, const float *b, const double *dmean,
                             const float *mean, const float *rstd, int cc, int hw, int groups, int batch)
{
	long p = blockIdx.x;
	int ch = (int)(p % cc);
	long i = p / cc;
	const float *ap = a + p * hw;
	double s1 = 0, s2 = 0;
	if (mode == PS_SUM) {
		for (int j = threadIdx.x; j < hw; j += TPB)
			s1 += ap[j];
	} else if (mode == PS_CENTRED_SQ) {
		double mu = dmean[ch];
		for (int j = threadIdx.x; j < hw; j += TPB) {
			double d = ap[j] - mu;
			s1 += d * d;
		}
	} else {
		long st = batch ? ch : i * groups + ch / (cc / groups);
		float mu = mean[st], r = rstd[st];
		const float *bp = b + p * hw;
		for (int j = threadIdx.x; j < hw; j += TPB) {
			s1 += (double)bp[j] * (ap[j] - mu) * r;
			s2 += bp[j];
		}
	}
	s1 = block_sum(s1);
	s2 = block_sum(s2);
	if (threadIdx.x == 0) {
		out[2 * p] = s1;
		out[2 * p + 1] = s2;
	}
}

/* Channel ch: (sum over i of part[2(i*C + ch)], same for +1), fixed tree. */
__device__ void fold_channel(const double *part, int n, int cc, int ch, double *t1, double *t2)
{
	double s1 = 0, s2 = 0;
	for (int i = threadIdx.x; i < n; i += TPB) {
		s1 += part[2 * ((size_t)i * cc + ch)];
		s2 += part[2 * ((size_t)i * cc + ch) + 1];
	}
	*t1 = block_sum(s1);
	*t2 = block_sum(s2);
}

/* Plain channel sums (bias gradient): out[c] = total of plane sums. */
__global__ void k_fold_sum(float *out, const double *part, int n, int cc)
{
	double t1, t2;
	fold_channel(part, n, cc, blockIdx.x, &t1, &t2);
	if (threadIdx.x == 0)
		out[blockIdx.x] = (float)t1;
}

/* Grows cscratch to hold the plane sums of (n, cc) plus 2*cc fold results. */
static enum fp_status chan_scratch(struct fp_cuda *be, int n, int cc)
{
	size_t need = 2 * ((size_t)n * cc + cc);
	if (need <= be->cscratch_n)
		return FP_OK;
	CU(cudaStreamSynchronize(be->stream));
	cudaFree(be->cscratch);
	be->cscratch = NULL;
	be->cscratch_n = 0;
	cudaError_t e = cudaMalloc((void **)&be->cscratch, need * sizeof(double));
	if (e != cudaSuccess)
		return FP_FAIL(FP_ERR_NOMEM, "kernels: cudaMalloc(%zu) for channel statistics: %s", need * sizeof(double),
		               cudaGetErrorString(e));
	be->cscratch_n = need;
	return FP_OK;
}

enum fp_status fp_cuda_bias_add(struct fp_cuda *be, float *y, const float *b, int n, int cc, int hw)
{
	size_t total = (size_t)n * cc * hw;
	k_bias_add<<<EW(total)>>>(y, b, total, cc, hw);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_bias_grad(struct fp_cuda *be, float *db, const float *dy, int n, int cc, int hw)
{
	FP_TRY(chan_scratch(be, n, cc));
	k_plane_sums<<<(unsigned)((size_t)n * cc), TPB, 0, be->stream>>>(be->cscratch, PS_SUM, dy, NULL, NULL, NULL, NULL,
	                                                                  cc, hw, 1, 1);
	LAUNCHED();
	k_fold_sum<<<cc, TPB, 0, be->stream>>>(db, be->cscratch, n, cc);
	LAUNCHED();
	return FP_OK;
}

/* ---- pooling ---- */

struct pool_dims {
	int n, c, h, w, k, stride, pad, oh, ow;
};

static struct pool_dims pool_of(const struct fp_pool2d_shape *s)
{
	struct pool_dims d = {s->n, s->c, s->h, s->w, s->k, s->stride, s->pad, fp_pool2d_out_h(s), fp_pool2d_out_w(s)};
	return d;
}

__device__ long pool_argmax(struct pool_dims d, const float *xc, int i, int j)
{
	long best = -1;
	for (int u = 0; u < d.k; u++) {
		int hi = i * d.stride - d.pad + u;
		if (hi < 0 || hi >= d.h)
			continue;
		for (int v = 0; v < d.k; v++) {
			int wi = j * d.stride - d.pad + v;
			if (wi >= 0 && wi < d.w && (best < 0 || xc[hi * d.w + wi] > xc[best]))
				best = (long)hi * d.w + wi;
		}
	}
	return best;
}

__global__ void k_maxpool_f(struct pool_dims d, float *y, const float *x)
{
	size_t total = (size_t)d.n * d.c * d.oh * d.ow;
	FOR_N(o, total) {
		size_t nc = o / ((size_t)d.oh * d.ow);
		int i = (int)(o / d.ow % d.oh), j = (int)(o % d.ow);
		const float *xc = x + nc * d.h * d.w;
		long b = pool_argmax(d, xc, i, j);
		y[o] = b < 0 ? -INFINITY : xc[b];
	}
}

/* Output windows (i, j) covering input (hi, wi): i*stride - pad <= hi <= i*stride - pad + k - 1. */
#define POOL_COVER(d, hi, i0, i1, out)                                      \
	int i0 = ((hi) + (d).pad - (d).k + (d).stride) / (d).stride;            \
	if ((hi) + (d).pad - (d).k + 1 < 0) i0 = 0;                             \
	int i1 = ((hi) + (d).pad) / (d).stride;                                 \
	if (i1 > (out) - 1) i1 = (out) - 1;

__global__ void k_maxpool_b(struct pool_dims d, float *dx, const float *dy, const float *x)
{
	size_t total = (size_t)d.n * d.c * d.h * d.w;
	FOR_N(e, total) {
		size_t nc = e / ((size_t)d.h * d.w);
		int hi = (int)(e / d.w % d.h), wi = (int)(e % d.w);
		long self = (long)hi * d.w + wi;
		const float *xc = x + nc * d.h * d.w;
		POOL_COVER(d, hi, i0, i1, d.oh)
		POOL_COVER(d, wi, j0, j1, d.ow)
		float acc = 0;
		for (int i = i0; i <= i1; i++)
			for (int j = j0; j <= j1; j++)
				if (pool_argmax(d, xc, i, j) == self)
					acc += dy[(nc * d.oh + i) * d.ow + j];
		dx[e] = acc;
	}
}

__global__ void k_avgpool_f(struct pool_dims d, float *y, const float *x)
{
	size_t total = (size_t)d.n * d.c * d.oh * d.ow;
	float inv = 1.0f / (float)(d.k * d.k);
	FOR_N(o, total) {
		size_t nc = o / ((size_t)d.oh * d.ow);
		int i = (int)(o / d.ow % d.oh), j = (int)(o % d.ow);
		const float *xc = x + nc * d.h * d.w;
		float acc = 0;
		for (int u = 0; u < d.k; u++) {
			int hi = i * d.stride - d.pad + u;
			if (hi < 0 || hi >= d.h)
				continue;
			for (int v = 0; v < d.k; v++) {
				int wi = j * d.stride - d.pad + v;
				if (wi >= 0 && wi < d.w)
					acc += xc[hi * d.w + wi];
			}
		}
		y[o] = acc * inv;
	}
}

__global__ void k_avgpool_b(struct pool_dims d, float *dx, const float *dy)
{
	size_t total = (size_t)d.n * d.c * d.h * d.w;
	float inv = 1.0f / (float)(d.k * d.k);
	FOR_N(e, total) {
		size_t nc = e / ((size_t)d.h * d.w);
		int hi = (int)(e / d.w % d.h), wi = (int)(e % d.w);
		POOL_COVER(d, hi, i0, i1, d.oh)
		POOL_COVER(d, wi, j0, j1, d.ow)
		float acc = 0;
		for (int i = i0; i <= i1; i++)
			for (int j = j0; j <= j1; j++)
				acc += dy[(nc * d.oh + i) * d.ow + j] * inv;
		dx[e] = acc;
	}
}

enum fp_status fp_cuda_maxpool2d_forward(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *y, const float *x)
{
	struct pool_dims d = pool_of(s);
	k_maxpool_f<<<EW((size_t)d.n * d.c * d.oh * d.ow)>>>(d, y, x);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_maxpool2d_backward(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *dx,
                                          const float *dy, const float *x)
{
	struct pool_dims d = pool_of(s);
	k_maxpool_b<<<EW((size_t)d.n * d.c * d.h * d.w)>>>(d, dx, dy, x);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_avgpool2d_forward(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *y, const float *x)
{
	struct pool_dims d = pool_of(s);
	k_avgpool_f<<<EW((size_t)d.n * d.c * d.oh * d.ow)>>>(d, y, x);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_avgpool2d_backward(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *dx, const float *dy)
{
	struct pool_dims d = pool_of(s);
	k_avgpool_b<<<EW((size_t)d.n * d.c * d.h * d.w)>>>(d, dx, dy);
	LAUNCHED();
	return FP_OK;
}

__global__ void k_gap_f(float *y, const float *x, int hw)
{
	double acc = 0;
	for (int j = threadIdx.x; j < hw; j += TPB)
		acc += x[(size_t)blockIdx.x * hw + j];
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		y[blockIdx.x] = (float)(acc / hw);
}

__global__ void k_gap_b(float *dx, const float *dy, size_t total, int hw)
{
	FOR_N(e, total) dx[e] = dy[e / hw] / (float)hw;
}

enum fp_status fp_cuda_gap_forward(struct fp_cuda *be, float *y, const float *x, int n, int cc, int hw)
{
	k_gap_f<<<n * cc, TPB, 0, be->stream>>>(y, x, hw);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_gap_backward(struct fp_cuda *be, float *dx, const float *dy, int n, int cc, int hw)
{
	size_t total = (size_t)n * cc * hw;
	k_gap_b<<<EW(total)>>>(dx, dy, total, hw);
	LAUNCHED();
	return FP_OK;
}

/* ---- linear ---- */

enum fp_status fp_cuda_linear_forward(struct fp_cuda *be, float *y, const float *x, const float *w, const float *b,
                                      int n, int in, int out)
{
	FP_TRY(sgemm(be, 0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out));
	if (b)
		FP_TRY(fp_cuda_bias_add(be, y, b, n, out, 1));
	return FP_OK;
}

enum fp_status fp_cuda_linear_backward(struct fp_cuda *be, float *dx, float *dw, float *db, const float *dy,
                                       const float *x, const float *w, int n, int in, int out)
{
	if (dx)
		FP_TRY(sgemm(be, 0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in));
	if (dw)
		FP_TRY(sgemm(be, 1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in));
	if (db)
		FP_TRY(fp_cuda_bias_grad(be, db, dy, n, out, 1));
	return FP_OK;
}

/* ---- normalisation ---- */

/* One block per group of `per` contiguous elements (GroupNorm: (n, g)). */
__global__ void k_gn_f(float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                       int groups, int cpg, int hw, float eps)
{
	long g = blockIdx.x, per = (long)cpg * hw;
	const float *xg = x + g * per;
	double s1 = 0, s2 = 0;
	for (long j = threadIdx.x; j < per; j += TPB)
		s1 += xg[j];
	double mu = block_sum(s1) / per;
	for (long j = threadIdx.x; j < per; j += TPB)
		s2 += (xg[j] - mu) * (xg[j] - mu);
	double var = block_sum(s2) / per;
	float r = (float)(1.0 / sqrt(var + eps));
	if (threadIdx.x == 0) {
		mean[g] = (float)mu;
		rstd[g] = r;
	}
	int c0 = (int)(g % groups) * cpg;
	for (long j = threadIdx.x; j < per; j += TPB) {
		int ch = c0 + (int)(j / hw);
		float a = r * gamma[ch];
		y[g * per + j] = xg[j] * a + (beta[ch] - (float)mu * a);
	}
}

__global__ void k_gn_b_dx(float *dx, const float *dy, const float *x, const float *mean, const float *rstd,
                          const float *gamma, int groups, int cpg, int hw)
{
	long g = blockIdx.x, per = (long)cpg * hw;
	int c0 = (int)(g % groups) * cpg;
	const float *xg = x + g * per, *dyg = dy + g * per;
	double s1 = 0, s2 = 0;
	for (long j = threadIdx.x; j < per; j += TPB) {
		double d = (double)dyg[j] * gamma[c0 + j / hw];
		s1 += d;
		s2 += d * (xg[j] - mean[g]) * rstd[g];
	}
	float m1 = (float)(block_sum(s1) / per), m2 = (float)(block_sum(s2) / per), r = rstd[g], mu = mean[g];
	for (long j = threadIdx.x; j < per; j += TPB)
		dx[g * per + j] = r * (dyg[j] * gamma[c0 + j / hw] - m1 - (xg[j] - mu) * r * m2);
}

/* dgamma = sum dy * xhat, dbeta = sum dy per channel, from the PS_DY_XHAT
 * plane sums; for BatchNorm also the dx coefficients m1 = mean dy and
 * m2 = mean dy * xhat into coef[2c], [2c+1] (coef may be NULL). */
__global__ void k_fold_dparams(float *dgamma, float *dbeta, double *coef, const double *part, int n, int cc, long m)
{
	double sg, sb;
	int ch = blockIdx.x;
	fold_channel(part, n, cc, ch, &sg, &sb);
	if (threadIdx.x == 0) {
		if (dgamma)
			dgamma[ch] = (float)sg;
		if (dbeta)
			dbeta[ch] = (float)sb;
		if (coef) {
			coef[2 * ch] = sb / m;
			coef[2 * ch + 1] = sg / m;
		}
	}
}

/* Plane sums of dy * xhat and dy for the statistics of a norm layer. */
static enum fp_status norm_plane_sums(struct fp_cuda *be, const float *dy, const float *x, const float *mean,
                                      const float *rstd, int n, int cc, int hw, int groups, int batch)
{
	FP_TRY(chan_scratch(be, n, cc));
	k_plane_sums<<<(unsigned)((size_t)n * cc), TPB, 0, be->stream>>>(be->cscratch, PS_DY_XHAT, x, dy, NULL, mean, rstd,
	                                                                  cc, hw, groups, batch);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_groupnorm_forward(struct fp_cuda *be, float *y, float *mean, float *rstd, const float *x,
                                         const float *gamma, const float *beta, int n, int cc, int hw, int groups,
                                         float eps)
{
	k_gn_f<<<n * groups, TPB, 0, be->stream>>>(y, mean, rstd, x, gamma, beta, groups, cc / groups, hw, eps);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_groupnorm_backward(struct fp_cuda *be, float *dx, float *dgamma, float *dbeta, const float *dy,
                                          const float *x, const float *mean, const float *rstd, const float *gamma,
                                          int n, int cc, int hw, int groups)
{
	if (dx) {
		k_gn_b_dx<<<n * groups, TPB, 0, be->stream>>>(dx, dy, x, mean, rstd, gamma, groups, cc / groups, hw);
		LAUNCHED();
	}
	if (dgamma || dbeta) {
		FP_TRY(norm_plane_sums(be, dy, x, mean, rstd, n, cc, hw, groups, 0));
		k_fold_dparams<<<cc, TPB, 0, be->stream>>>(dgamma, dbeta, NULL, be->cscratch, n, cc, (long)n * hw);
		LAUNCHED();
	}
	return FP_OK;
}

/* BatchNorm statistics from the plane sums: stage "mean" keeps the double
 * mean per channel in dmean; stage "var" finishes mean/rstd and the running
 * statistics (unbiased variance, as PyTorch). */
__global__ void k_bn_fold_mean(double *dmean, const double *part, int n, int cc, long m)
{
	double s1, s2;
	fold_channel(part, n, cc, blockIdx.x, &s1, &s2);
	if (threadIdx.x == 0)
		dmean[blockIdx.x] = s1 / m;
}

__global__ void k_bn_fold_var(float *mean, float *rstd, float *rm, float *rv, const double *dmean,
                              const double *part, int n, int cc, long m, float eps, float momentum)
{
	int ch = blockIdx.x;
	double s2, unused;
	fold_channel(part, n, cc, ch, &s2, &unused);
	if (threadIdx.x == 0) {
		double mu = dmean[ch], var = s2 / m;
		mean[ch] = (float)mu;
		rstd[ch] = (float)(1.0 / sqrt(var + eps));
		if (rm) {
			rm[ch] = (1 - momentum) * rm[ch] + momentum * (float)mu;
			rv[ch] = (1 - momentum) * rv[ch] + momentum * (float)(m > 1 ? s2 / (m - 1) : var);
		}
	}
}

__global__ void k_bn_apply(float *y, const float *x, const float *mean, const float *rstd, const float *gamma,
                           const float *beta, size_t total, int cc, int hw)
{
	FOR_N(e, total) {
		int ch = (int)((e / hw) % cc);
		float a = rstd[ch] * gamma[ch];
		y[e] = x[e] * a + (beta[ch] - mean[ch] * a);
	}
}

__global__ void k_bn_infer(float *y, const float *x, const float *rm, const float *rv, const float *gamma,
                           const float *beta, size_t total, int cc, int hw, float eps)
{
	FOR_N(e, total) {
		int ch = (int)((e / hw) % cc);
		float a = gamma[ch] / sqrtf(rv[ch] + eps);
		y[e] = x[e] * a + (beta[ch] - rm[ch] * a);
	}
}

__global__ void k_bn_b(float *dx, const float *dy, const float *x, const float *mean, const float *rstd,
                       const float *gamma, const double *coef, size_t total, int cc, int hw)
{
	FOR_N(e, total) {
		int ch = (int)((e / hw) % cc);
		float mu = mean[ch], r = rstd[ch], k = gamma[ch] * r;
		float m1 = (float)coef[2 * ch], m2 = (float)coef[2 * ch + 1];
		dx[e] = k * (dy[e] - m1 - (x[e] - mu) * r * m2);
	}
}

enum fp_status fp_cuda_batchnorm_forward(struct fp_cuda *be, float *y, float *mean, float *rstd, float *running_mean,
                                         float *running_var, const float *x, const float *gamma, const float *beta,
                                         int n, int cc, int hw, float eps, float momentum)
{
	size_t planes = (size_t)n * cc, total = planes * hw;
	long m = (long)n * hw;
	FP_TRY(chan_scratch(be, n, cc));
	double *part = be->cscratch, *dmean = be->cscratch + 2 * planes;
	k_plane_sums<<<(unsigned)planes, TPB, 0, be->stream>>>(part, PS_SUM, x, NULL, NULL, NULL, NULL, cc, hw, 1, 1);
	LAUNCHED();
	k_bn_fold_mean<<<cc, TPB, 0, be->stream>>>(dmean, part, n, cc, m);
	LAUNCHED();
	k_plane_sums<<<(unsigned)planes, TPB, 0, be->stream>>>(part, PS_CENTRED_SQ, x, NULL, dmean, NULL, NULL, cc, hw, 1,
	                                                        1);
	LAUNCHED();
	k_bn_fold_var<<<cc, TPB, 0, be->stream>>>(mean, rstd, running_mean, running_var, dmean, part, n, cc, m, eps,
	                                         momentum);
	LAUNCHED();
	k_bn_apply<<<EW(total)>>>(y, x, mean, rstd, gamma, beta, total, cc, hw);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_batchnorm_infer(struct fp_cuda *be, float *y, const float *x, const float *running_mean,
                                       const float *running_var, const float *gamma, const float *beta,
                                       int n, int cc, int hw, float eps)
{
	size_t total = (size_t)n * cc * hw;
	k_bn_infer<<<EW(total)>>>(y, x, running_mean, running_var, gamma, beta, total, cc, hw, eps);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_batchnorm_backward(struct fp_cuda *be, float *dx, float *dgamma, float *dbeta, const float *dy,
                                          const float *x, const float *mean, const float *rstd, const float *gamma,
                                          int n, int cc, int hw)
{
	if (!dx && !dgamma && !dbeta)
		return FP_OK;
	size_t planes = (size_t)n * cc, total = planes * hw;
	/* One pass of plane sums gives dgamma, dbeta and dx's two coefficients. */
	FP_TRY(norm_plane_sums(be, dy, x, mean, rstd, n, cc, hw, cc, 1));
	double *coef = be->cscratch + 2 * planes;
	k_fold_dparams<<<cc, TPB, 0, be->stream>>>(dgamma, dbeta, coef, be->cscratch, n, cc, (long)n * hw);
	LAUNCHED();
	if (dx) {
		k_bn_b<<<EW(total)>>>(dx, dy, x, mean, rstd, gamma, coef, total, cc, hw);
		LAUNCHED();
	}
	return FP_OK;
}

/* ---- losses: batches are small, one block each ---- */

__global__ void k_xent_f(float *loss, float *probs, const float *z, const int32_t *lab, const float *cw, int n, int cc)
{
	double num = 0, den = 0;
	for (int i = threadIdx.x; i < n; i += TPB) {
		const float *zi = z + (size_t)i * cc;
		float mx = zi[0];
		for (int j = 1; j < cc; j++)
			mx = zi[j] > mx ? zi[j] : mx;
		double sum = 0;
		for (int j = 0; j < cc; j++)
			sum += exp((double)zi[j] - mx);
		for (int j = 0; j < cc; j++)
			probs[(size_t)i * cc + j] = (float)(exp((double)zi[j] - mx) / sum);
		double wi = cw ? cw[lab[i]] : 1.0;
		num += wi * (log(sum) + mx - zi[lab[i]]);
		den += wi;
	}
	num = block_sum(num);
	den = block_sum(den);
	if (threadIdx.x == 0)
		*loss = den > 0 ? (float)(num / den) : 0.0f;
}

__global__ void k_xent_b(float *dz, const float *probs, const int32_t *lab, const float *cw, int n, int cc, float dloss)
{
	double den = 0;
	for (int i = threadIdx.x; i < n; i += TPB)
		den += cw ? cw[lab[i]] : 1.0;
	den = block_sum(den);
	float s = den > 0 ? (float)(dloss / den) : 0.0f;
	for (long e = threadIdx.x; e < (long)n * cc; e += TPB) {
		int i = (int)(e / cc), j = (int)(e % cc);
		float wi = (cw ? cw[lab[i]] : 1.0f) * s;
		dz[e] = wi * (probs[e] - (j == lab[i] ? 1.0f : 0.0f));
	}
}

__global__ void k_bce_f(float *loss, const float *z, const float *t, int n)
{
	double acc = 0;
	for (int i = threadIdx.x; i < n; i += TPB) {
		double zi = z[i];
		acc += (zi > 0 ? zi : 0) - zi * t[i] + log1p(exp(-fabs(zi)));
	}
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		*loss = (float)(acc / n);
}

__global__ void k_bce_b(float *dz, const float *z, const float *t, int n, float s)
{
	FOR_N(i, (size_t)n) dz[i] = s * (1.0f / (1.0f + expf(-z[i])) - t[i]);
}

__global__ void k_mse_f(float *loss, const float *p, const float *t, int n)
{
	double acc = 0;
	for (int i = threadIdx.x; i < n; i += TPB)
		acc += ((double)p[i] - t[i]) * ((double)p[i] - t[i]);
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		*loss = (float)(acc / n);
}

__global__ void k_mse_b(float *dp, const float *p, const float *t, int n, float s)
{
	FOR_N(i, (size_t)n) dp[i] = s * (p[i] - t[i]);
}

enum fp_status fp_cuda_softmax_xent_forward(struct fp_cuda *be, float *loss, float *probs, const float *logits,
                                            const int32_t *labels, const float *class_w, int n, int cc)
{
	k_xent_f<<<1, TPB, 0, be->stream>>>(loss, probs, logits, labels, class_w, n, cc);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_softmax_xent_backward(struct fp_cuda *be, float *dlogits, const float *probs,
                                             const int32_t *labels, const float *class_w, int n, int cc, float dloss)
{
	k_xent_b<<<1, TPB, 0, be->stream>>>(dlogits, probs, labels, class_w, n, cc, dloss);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_bce_forward(struct fp_cuda *be, float *loss, const float *logits, const float *targets, int n)
{
	k_bce_f<<<1, TPB, 0, be->stream>>>(loss, logits, targets, n);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_bce_backward(struct fp_cuda *be, float *dlogits, const float *logits, const float *targets,
                                    int n, float dloss)
{
	k_bce_b<<<EW((size_t)n)>>>(dlogits, logits, targets, n, dloss / (float)n);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_mse_forward(struct fp_cuda *be, float *loss, const float *pred, const float *target, int n)
{
	k_mse_f<<<1, TPB, 0, be->stream>>>(loss, pred, target, n);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_mse_backward(struct fp_cuda *be, float *dpred, const float *pred, const float *target,
                                    int n, float dloss)
{
	k_mse_b<<<EW((size_t)n)>>>(dpred, pred, target, n, 2.0f * dloss / (float)n);
	LAUNCHED();
	return FP_OK;
}

/* ---- Cox: on the host ---- */

static enum fp_status cox_host(struct fp_cuda *be, float *out, const float *eta, const float *time, const float *event,
                               const float *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red,
                               float dloss, int backward)
{
	enum fp_status st = FP_OK;
	float *h = (float *)malloc(sizeof(float) * 5 * (size_t)n);
	if (!h)
		return FP_FAIL(FP_ERR_NOMEM, "kernels: cox host copy of %d", n);
	float *he = h, *ht = h + n, *hv = h + 2 * n, *hw = h + 3 * n, *ho = h + 4 * n;
	FP_CHECK(st, fp_cuda_download(be, he, eta, sizeof(float) * n));
	FP_CHECK(st, fp_cuda_download(be, ht, time, sizeof(float) * n));
	FP_CHECK(st, fp_cuda_download(be, hv, event, sizeof(float) * n));
	if (weight)
		FP_CHECK(st, fp_cuda_download(be, hw, weight, sizeof(float) * n));
	if (backward) {
		FP_CHECK(st, fp_cpu_cox_backward(NULL, ho, he, ht, hv, weight ? hw : NULL, n, ties, red, dloss));
		FP_CHECK(st, fp_cuda_upload(be, out, ho, sizeof(float) * n));
	} else {
		FP_CHECK(st, fp_cpu_cox_forward(NULL, ho, he, ht, hv, weight ? hw : NULL, n, ties, red));
		FP_CHECK(st, fp_cuda_upload(be, out, ho, sizeof(float)));
	}
fail:
	free(h);
	return st;
}

enum fp_status fp_cuda_cox_forward(struct fp_cuda *be, float *loss, const float *eta, const float *time,
                                   const float *event, const float *weight, int n, enum fp_cox_ties ties,
                                   enum fp_cox_reduction red)
{
	return cox_host(be, loss, eta, time, event, weight, n, ties, red, 0, 0);
}

enum fp_status fp_cuda_cox_backward(struct fp_cuda *be, float *deta, const float *eta, const float *time,
                                    const float *event, const float *weight, int n, enum fp_cox_ties ties,
                                    enum fp_cox_reduction red, float dloss)
{
	return cox_host(be, deta, eta, time, event, weight, n, ties, red, dloss, 1);
}

/* ---- gated attention pooling (ws: gv | gu | s, as cpu.c) ---- */

__global__ void k_attn_gates(float *gv, float *gu, float *s, const float *bv, const float *bu, const float *w, int n, int d)
{
	int i = blockIdx.x;
	double acc = 0;
	for (int j = threadIdx.x; j < d; j += TPB) {
		size_t e = (size_t)i * d + j;
		gv[e] = tanhf(gv[e] + bv[j]);
		gu[e] = 1.0f / (1.0f + expf(-(gu[e] + bu[j])));
		acc += (double)w[j] * gv[e] * gu[e];
	}
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		s[i] = (float)acc;
}

/* One block: a = softmax(s). */
__global__ void k_softmax1(float *a, const float *s, int n)
{
	__shared__ float mxs;
	if (threadIdx.x == 0) {
		float mx = s[0];
		for (int i = 1; i < n; i++)
			mx = s[i] > mx ? s[i] : mx;
		mxs = mx;
	}
	__syncthreads();
	double acc = 0;
	for (int i = threadIdx.x; i < n; i += TPB)
		acc += exp((double)s[i] - mxs);
	acc = block_sum(acc);
	for (int i = threadIdx.x; i < n; i += TPB)
		a[i] = (float)(exp((double)s[i] - mxs) / acc);
}

/* m[q] = sum_i a_i h[i, q]: one block per column, fixed order. */
__global__ void k_attn_m(float *m, const float *a, const float *h, int n, int l)
{
	int q = blockIdx.x;
	double acc = 0;
	for (int i = threadIdx.x; i < n; i += TPB)
		acc += (double)a[i] * h[(size_t)i * l + q];
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		m[q] = (float)acc;
}

/* ds_i = dm . h_i (one block per instance). */
__global__ void k_attn_da(float *ds, const float *dm, const float *h, int l)
{
	int i = blockIdx.x;
	double acc = 0;
	for (int q = threadIdx.x; q < l; q += TPB)
		acc += (double)dm[q] * h[(size_t)i * l + q];
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		ds[i] = (float)acc;
}

/* ds = a * (da - sum a da), one block. */
__global__ void k_attn_ds(float *ds, const float *a, int n)
{
	double acc = 0;
	for (int i = threadIdx.x; i < n; i += TPB)
		acc += (double)a[i] * ds[i];
	acc = block_sum(acc);
	for (int i = threadIdx.x; i < n; i += TPB)
		ds[i] = a[i] * (ds[i] - (float)acc);
}

/* dw_j = sum_i ds_i gv gu (one block per j). */
__global__ void k_attn_dw(float *dw, const float *ds, const float *gv, const float *gu, int n, int d)
{
	int j = blockIdx.x;
	double acc = 0;
	for (int i = threadIdx.x; i < n; i += TPB)
		acc += (double)ds[i] * gv[(size_t)i * d + j] * gu[(size_t)i * d + j];
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		dw[j] = (float)acc;
}

__global__ void k_attn_dz(float *gv, float *gu, const float *ds, const float *w, int n, int d)
{
	FOR_N(e, (size_t)n * d) {
		int i = (int)(e / d), j = (int)(e % d);
		float dg = ds[i] * w[j], tv = gv[e], su = gu[e];
		gv[e] = dg * su * (1 - tv * tv);
		gu[e] = dg * tv * su * (1 - su);
	}
}

__global__ void k_attn_dh(float *dh, const float *a, const float *dm, int n, int l)
{
	FOR_N(e, (size_t)n * l) dh[e] += a[e / l] * dm[e % l];
}

enum fp_status fp_cuda_attnpool_forward(struct fp_cuda *be, float *m, float *a, float *ws, const float *h,
                                        const float *V, const float *bv, const float *U, const float *bu,
                                        const float *w, int n, int l, int d)
{
	float *gv = ws, *gu = ws + (size_t)n * d, *s = ws + (size_t)2 * n * d;
	FP_TRY(sgemm(be, 0, 1, n, d, l, 1.0f, h, l, V, l, 0.0f, gv, d));
	FP_TRY(sgemm(be, 0, 1, n, d, l, 1.0f, h, l, U, l, 0.0f, gu, d));
	k_attn_gates<<<n, TPB, 0, be->stream>>>(gv, gu, s, bv, bu, w, n, d);
	k_softmax1<<<1, TPB, 0, be->stream>>>(a, s, n);
	k_attn_m<<<l, TPB, 0, be->stream>>>(m, a, h, n, l);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_attnpool_backward(struct fp_cuda *be, float *dh, float *dV, float *dbv, float *dU, float *dbu,
                                         float *dw, const float *dm, const float *a, float *ws, const float *h,
                                         const float *V, const float *U, const float *w, int n, int l, int d)
{
	float *gv = ws, *gu = ws + (size_t)n * d, *ds = ws + (size_t)2 * n * d;
	k_attn_da<<<n, TPB, 0, be->stream>>>(ds, dm, h, l);
	k_attn_ds<<<1, TPB, 0, be->stream>>>(ds, a, n);
	k_attn_dw<<<d, TPB, 0, be->stream>>>(dw, ds, gv, gu, n, d);
	k_attn_dz<<<EW((size_t)n * d)>>>(gv, gu, ds, w, n, d);
	LAUNCHED();
	FP_TRY(sgemm(be, 1, 0, d, l, n, 1.0f, gv, d, h, l, 0.0f, dV, l));
	FP_TRY(sgemm(be, 1, 0, d, l, n, 1.0f, gu, d, h, l, 0.0f, dU, l));
	FP_TRY(fp_cuda_bias_grad(be, dbv, gv, n, d, 1));
	FP_TRY(fp_cuda_bias_grad(be, dbu, gu, n, d, 1));
	if (dh) {
		FP_TRY(sgemm(be, 0, 0, n, l, d, 1.0f, gv, d, V, l, 0.0f, dh, l));
		FP_TRY(sgemm(be, 0, 0, n, l, d, 1.0f, gu, d, U, l, 1.0f, dh, l));
		k_attn_dh<<<EW((size_t)n * l)>>>(dh, a, dm, n, l);
		LAUNCHED();
	}
	return FP_OK;
}

/* ---- optimisers ---- */

__global__ void k_adamw(float *p, const float *g, float *m, float *v, size_t n, float b1, float b2, float eps,
                        float step, float bc2s, float keep, float gs)
{
	FOR_N(i, n) {
		float gi = g[i] * gs;
		p[i] *= keep;
		m[i] += (gi - m[i]) * (1.0f - b1);
		v[i] = v[i] * b2 + (1.0f - b2) * gi * gi;
		p[i] -= step * m[i] / (sqrtf(v[i]) / bc2s + eps);
	}
}

__global__ void k_sgd(float *p, const float *g, float *buf, size_t n, float lr, float mom, float wd, float gs)
{
	FOR_N(i, n) {
		float gi = g[i] * gs + wd * p[i];
		buf[i] = mom * buf[i] + gi;
		p[i] -= lr * buf[i];
	}
}

enum fp_status fp_cuda_adamw_update(struct fp_cuda *be, float *p, const float *g, float *m, float *v, size_t n,
                                    const struct fp_adamw *o, int decay, float grad_scale)
{
	float bc1 = 1.0f - powf(o->beta1, (float)o->step);
	float bc2s = sqrtf(1.0f - powf(o->beta2, (float)o->step));
	float keep = decay ? 1.0f - o->lr * o->weight_decay : 1.0f;
	k_adamw<<<EW(n)>>>(p, g, m, v, n, o->beta1, o->beta2, o->eps, o->lr / bc1, bc2s, keep, grad_scale);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_sgd_update(struct fp_cuda *be, float *p, const float *g, float *buf, size_t n, float lr,
                                  float momentum, float weight_decay, int decay, float grad_scale)
{
	k_sgd<<<EW(n)>>>(p, g, buf, n, lr, momentum, decay ? weight_decay : 0.0f, grad_scale);
	LAUNCHED();
	return FP_OK;
}

#define SUMSQ_BLOCK 65536

__global__ void k_sumsq(double *part, const float *x, size_t n)
{
	size_t b0 = (size_t)blockIdx.x * SUMSQ_BLOCK, end = b0 + SUMSQ_BLOCK < n ? b0 + SUMSQ_BLOCK : n;
	double acc = 0;
	for (size_t i = b0 + threadIdx.x; i < end; i += TPB)
		acc += (double)x[i] * x[i];
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		part[blockIdx.x] = acc;
}

enum fp_status fp_cuda_sumsq(struct fp_cuda *be, const float *x, size_t n, double *host_acc)
{
	size_t nb = (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
	double part[256], acc = 0;
	for (size_t b0 = 0; b0 < nb; b0 += 256) {
		size_t cnt = nb - b0 < 256 ? nb - b0 : 256, len = n - b0 * SUMSQ_BLOCK;
		k_sumsq<<<(unsigned)cnt, TPB, 0, be->stream>>>(be->dscratch, x + b0 * SUMSQ_BLOCK, len);
		LAUNCHED();
		FP_TRY(fp_cuda_download(be, part, be->dscratch, sizeof(double) * cnt));
		for (size_t b = 0; b < cnt; b++)
			acc += part[b];
	}
	*host_acc += acc;
	return FP_OK;
}

/* ---- aggregator reductions ---- */

__global__ void k_wsum(float *out, const float *xs, const double *w, int kc, size_t p)
{
	FOR_N(j, p) {
		double acc = 0;
		for (int k = 0; k < kc; k++)
			acc += w[k] * xs[(size_t)k * p + j];
		out[j] = (float)acc;
	}
}

__global__ void k_sorted_stat(float *out, const float *xs, int kc, size_t p, int trim, int median)
{
	FOR_N(j, p) {
		float col[AGG_MAX_K_GPU];
		for (int k = 0; k < kc; k++) {
			float t = xs[(size_t)k * p + j];
			int q = k - 1;
			while (q >= 0 && col[q] > t) {
				col[q + 1] = col[q];
				q--;
			}
			col[q + 1] = t;
		}
		if (median) {
			out[j] = kc % 2 ? col[kc / 2] : (float)(0.5 * ((double)col[kc / 2 - 1] + col[kc / 2]));
		} else {
			double acc = 0;
			for (int k = trim; k < kc - trim; k++)
				acc += col[k];
			out[j] = (float)(acc / (kc - 2 * trim));
		}
	}
}

enum fp_status fp_cuda_weighted_sum(struct fp_cuda *be, float *out, const float *xs, const float *host_w, int kcount,
                                    size_t p)
{
	double w[AGG_MAX_K_GPU * 16];
	if (kcount > AGG_MAX_K_GPU * 16)
		return FP_FAIL(FP_ERR_LIMIT, "kernels: weighted_sum over %d sites (CUDA limit %d)", kcount, AGG_MAX_K_GPU * 16);
	for (int k = 0; k < kcount; k++)
		w[k] = host_w[k];
	FP_TRY(fp_cuda_upload(be, be->dscratch, w, sizeof(double) * kcount));
	k_wsum<<<EW(p)>>>(out, xs, be->dscratch, kcount, p);
	LAUNCHED();
	return FP_OK;
}

__global__ void k_mean_rows(float *out, const float *xs, int kc, size_t p)
{
	FOR_N(j, p) {
		double acc = 0;
		for (int k = 0; k < kc; k++)
			acc += xs[(size_t)k * p + j];
		out[j] = (float)(acc / kc); /* adds and one IEEE division: the CPU's bits */
	}
}

enum fp_status fp_cuda_mean_rows(struct fp_cuda *be, float *out, const float *xs, int kcount, size_t p)
{
	k_mean_rows<<<EW(p)>>>(out, xs, kcount, p);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_coord_median(struct fp_cuda *be, float *out, const float *xs, int kcount, size_t p)
{
	if (kcount > AGG_MAX_K_GPU)
		return FP_FAIL(FP_ERR_LIMIT, "kernels: coord_median over %d sites (CUDA limit %d)", kcount, AGG_MAX_K_GPU);
	k_sorted_stat<<<EW(p)>>>(out, xs, kcount, p, 0, 1);
	LAUNCHED();
	return FP_OK;
}

enum fp_status fp_cuda_trimmed_mean(struct fp_cuda *be, float *out, const float *xs, int kcount, size_t p, int trim)
{
	if (kcount > AGG_MAX_K_GPU)
		return FP_FAIL(FP_ERR_LIMIT, "kernels: trimmed_mean over %d sites (CUDA limit %d)", kcount, AGG_MAX_K_GPU);
	k_sorted_stat<<<EW(p)>>>(out, xs, kcount, p, trim, 0);
	LAUNCHED();
	return FP_OK;
}
