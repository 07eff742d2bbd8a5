/*
 * cuda_conv.cu: CUDA convolutions through the cuDNN 9 backend (graph) API.
 *
 * Takes NCHW float device tensors (fp_kernels.h). For each distinct shape
 * and direction (forward, backward-data, backward-filter) it builds one
 * operation graph, asks the heuristics (INSTANT, then FALLBACK) for engine
 * configurations, drops those whose numerical notes say non-deterministic
 * when the handle is deterministic, finalises the first plan that succeeds,
 * and caches it in the handle (fp_cuda_conv_cache, CONV_CACHE_MAX plans).
 * Tensor pointers must be 16-byte aligned (fp_kernels_alloc gives 256).
 * The bias add and the bias gradient are own kernels (cuda_ops.cu).
 * Mixed mode (fp_kernels_options.mixed): the operands are rounded to bf16
 * into a scratch buffer, cuDNN multiplies them with fp32 accumulation into a
 * bf16 result, which is widened back to fp32 (PyTorch autocast's contract:
 * bf16 compute, fp32 tensors and master weights). When cuDNN has no bf16
 * engine for a shape, that shape runs in fp32 with TF32 allowed (logged).
 */
#include <cuda_bf16.h>
#include <cudnn.h>
#include <stdint.h>
#include <string.h>

#include "cuda_impl.h"
extern "C" {
#include "fp_log.h" /* common/ headers are C */
}

#define CONV_CACHE_MAX 192
enum { DIR_FWD = 0, DIR_BWD_DATA = 1, DIR_BWD_FILTER = 2 };
enum { UID_X = 1, UID_W = 2, UID_Y = 3 };

struct conv_plan {
	struct fp_conv2d_shape s;
	int dir;
	int bf16; /* operands and result in bf16 (mixed mode) */
	cudnnBackendDescriptor_t desc[8]; /* tensors, conv, op, graph: freed with the plan */
	int ndesc;
	cudnnBackendDescriptor_t plan;
	int64_t workspace;
};

struct fp_cuda_conv_cache {
	struct conv_plan p[CONV_CACHE_MAX];
	int count;
	__nv_bfloat16 *half; /* mixed mode: bf16 copies of x, w and y */
	size_t half_n;       /* elements in half */
};

#define DNN(call)                                                                                \
	do {                                                                                         \
		cudnnStatus_t s_ = (call);                                                               \
		if (s_ != CUDNN_STATUS_SUCCESS) {                                                        \
			st = FP_FAIL(FP_ERR_BACKEND, "kernels: cuDNN %s: %s", #call, cudnnGetErrorString(s_)); \
			goto fail;                                                                           \
		}                                                                                        \
	} while (0)

static void plan_clear(struct conv_plan *p)
{
	if (p->plan)
		cudnnBackendDestroyDescriptor(p->plan);
	for (int i = p->ndesc - 1; i >= 0; i--)
		cudnnBackendDestroyDescriptor(p->desc[i]);
	memset(p, 0, sizeof(*p));
}

void fp_cuda_conv_close(struct fp_cuda *c)
{
	struct fp_cuda_conv_cache *cc = c->conv;
	if (!cc)
		return;
	for (int i = 0; i < cc->count; i++)
		plan_clear(&cc->p[i]);
	cudaFree(cc->half);
	free(cc);
	c->conv = NULL;
}

enum fp_status fp_cuda_conv_init(struct fp_cuda *c)
{
	c->conv = (struct fp_cuda_conv_cache *)calloc(1, sizeof(struct fp_cuda_conv_cache));
	if (!c->conv)
		return FP_FAIL(FP_ERR_NOMEM, "kernels: cuda conv cache");
	return FP_OK;
}

static enum fp_status make_tensor(struct conv_plan *p, int64_t uid, const int64_t dims[4], cudnnBackendDescriptor_t *out)
{
	enum fp_status st = FP_OK;
	cudnnBackendDescriptor_t d = NULL;
	cudnnDataType_t dt = p->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
	int64_t strides[4] = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1}, align = 16;
	DNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, &d));
	p->desc[p->ndesc++] = d;
	DNN(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt));
	DNN(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
	DNN(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
	DNN(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
	DNN(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align));
	DNN(cudnnBackendFinalize(d));
	*out = d;
fail:
	return st;
}

/* 1 when the engine's numerical notes allow it: never a non-deterministic
 * one when the handle is deterministic, and (strict) none that converts fp32
 * inputs down (TF32 tensor cores: ~1e-3 relative error, too coarse to match
 * the CPU backend). Notes that cannot be read count as disallowed. */
static int cfg_allowed(cudnnBackendDescriptor_t cfg, int deterministic, int strict)
{
	cudnnBackendDescriptor_t eng = NULL;
	cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
	int64_t n = 0, got = 0;
	int ok = 0;
	if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng) != CUDNN_STATUS_SUCCESS)
		return 0;
	if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got, &eng) ==
	        CUDNN_STATUS_SUCCESS &&
	    cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
	                             CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n, notes) == CUDNN_STATUS_SUCCESS) {
		ok = 1;
		for (int64_t i = 0; i < n; i++) {
			if (deterministic && notes[i] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC)
				ok = 0;
			if (strict && notes[i] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)
				ok = 0;
		}
	}
	cudnnBackendDestroyDescriptor(eng);
	return ok;
}

/* Tries the heuristics' configurations in order; keeps the first plan.
 * Passes: INSTANT strict, FALLBACK strict, then both allowing down-converted
 * inputs (logged once per shape). In mixed mode down-converting engines
 * (bf16/TF32 tensor cores) are welcome from the first pass. */
static enum fp_status pick_plan(struct fp_cuda *c, struct conv_plan *p, cudnnBackendDescriptor_t graph)
{
	enum fp_status st = FP_OK;
	cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_INSTANT, CUDNN_HEUR_MODE_FALLBACK};
	for (int pass = 0; pass < 4 && !p->plan; pass++) {
		int m = pass % 2, strict = pass < 2 && !c->mixed;
		if (pass == 2 && !c->mixed)
			FP_WARN("kernels: cuDNN offers no full-fp32 engine for conv direction %d (n=%d c_in=%d %dx%d "
			        "c_out=%d); allowing down-converted inputs", p->dir, p->s.n, p->s.c_in, p->s.h, p->s.w,
			        p->s.c_out);
		cudnnBackendDescriptor_t heur = NULL, cfgs[64];
		int64_t count = 0;
		int ncfg = 0;
		DNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur));
		if (cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
		                             &graph) != CUDNN_STATUS_SUCCESS ||
		    cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &modes[m]) !=
		        CUDNN_STATUS_SUCCESS ||
		    cudnnBackendFinalize(heur) != CUDNN_STATUS_SUCCESS ||
		    cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
		                             NULL) != CUDNN_STATUS_SUCCESS) {
			cudnnBackendDestroyDescriptor(heur);
			continue;
		}
		if (count > 64)
			count = 64;
		for (ncfg = 0; ncfg < count; ncfg++)
			if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[ncfg]) != CUDNN_STATUS_SUCCESS)
				break;
		int64_t got = 0;
		if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, ncfg, &got,
		                             cfgs) != CUDNN_STATUS_SUCCESS)
			got = 0;
		for (int64_t i = 0; i < got && !p->plan; i++) {
			if (!cfg_allowed(cfgs[i], c->deterministic, strict))
				continue;
			cudnnBackendDescriptor_t plan = NULL;
			if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) != CUDNN_STATUS_SUCCESS)
				continue;
			if (cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &c->dnn) ==
			        CUDNN_STATUS_SUCCESS &&
			    cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR,
			                             1, &cfgs[i]) == CUDNN_STATUS_SUCCESS &&
			    cudnnBackendFinalize(plan) == CUDNN_STATUS_SUCCESS) {
				int64_t ws = 0, n = 0;
				cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws);
				p->plan = plan;
				p->workspace = ws;
			} else {
				cudnnBackendDestroyDescriptor(plan);
			}
		}
		for (int i = 0; i < ncfg; i++)
			cudnnBackendDestroyDescriptor(cfgs[i]);
		cudnnBackendDestroyDescriptor(heur);
	}
	if (!p->plan)
		st = FP_FAIL(FP_ERR_BACKEND, "kernels: cuDNN has no %sengine for conv direction %d, shape n=%d c_in=%d "
		             "%dx%d c_out=%d k=%dx%d stride=%d pad=%d", c->deterministic ? "deterministic " : "", p->dir,
		             p->s.n, p->s.c_in, p->s.h, p->s.w, p->s.c_out, p->s.kh, p->s.kw, p->s.stride, p->s.pad);
fail:
	return st;
}

static enum fp_status build_plan(struct fp_cuda *c, struct conv_plan *p, const struct fp_conv2d_shape *s, int dir,
                                 int bf16)
{
	enum fp_status st = FP_OK;
	int64_t xd[4] = {s->n, s->c_in, s->h, s->w}, wd[4] = {s->c_out, s->c_in, s->kh, s->kw};
	int64_t yd[4] = {s->n, s->c_out, fp_conv2d_out_h(s), fp_conv2d_out_w(s)};
	int64_t nsp = 2, pad[2] = {s->pad, s->pad}, stride[2] = {s->stride, s->stride}, dil[2] = {1, 1};
	cudnnDataType_t ct = CUDNN_DATA_FLOAT;
	cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
	cudnnBackendDescriptor_t tx, tw, ty, conv = NULL, op = NULL, graph = NULL;
	float alpha = 1.0f, beta = 0.0f;

	memset(p, 0, sizeof(*p));
	p->s = *s;
	p->dir = dir;
	p->bf16 = bf16;
	FP_CHECK(st, make_tensor(p, UID_X, xd, &tx));
	FP_CHECK(st, make_tensor(p, UID_W, wd, &tw));
	FP_CHECK(st, make_tensor(p, UID_Y, yd, &ty));
	DNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv));
	p->desc[p->ndesc++] = conv;
	DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &nsp));
	DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &ct));
	DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
	DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
	DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
	DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil));
	DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride));
	DNN(cudnnBackendFinalize(conv));
	if (dir == DIR_FWD) {
		DNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &op));
		p->desc[p->ndesc++] = op;
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tx));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tw));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ty));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
		                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
	} else if (dir == DIR_BWD_DATA) {
		DNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR, &op));
		p->desc[p->ndesc++] = op;
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tx));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tw));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ty));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
		                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
	} else {
		DNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR, &op));
		p->desc[p->ndesc++] = op;
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tx));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tw));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ty));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
		                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
		DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
	}
	DNN(cudnnBackendFinalize(op));
	DNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
	p->desc[p->ndesc++] = graph;
	DNN(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &op));
	DNN(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &c->dnn));
	DNN(cudnnBackendFinalize(graph));
	FP_CHECK(st, pick_plan(c, p, graph));
	FP_CHECK(st, fp_cuda_workspace(c, (size_t)p->workspace));
	return FP_OK;
fail:
	plan_clear(p);
	return st;
}

static enum fp_status get_plan(struct fp_cuda *c, const struct fp_conv2d_shape *s, int dir, struct conv_plan **out)
{
	struct fp_cuda_conv_cache *cc = c->conv;
	for (int i = 0; i < cc->count; i++)
		if (cc->p[i].dir == dir && memcmp(&cc->p[i].s, s, sizeof(*s)) == 0) {
			*out = &cc->p[i];
			return FP_OK;
		}
	if (cc->count == CONV_CACHE_MAX) {
		/* A model has tens of shapes; a full cache means shapes churn:
		 * start over rather than track recency. */
		for (int i = 0; i < cc->count; i++)
			plan_clear(&cc->p[i]);
		cc->count = 0;
	}
	if (c->mixed) {
		if (build_plan(c, &cc->p[cc->count], s, dir, 1) == FP_OK) {
			*out = &cc->p[cc->count++];
			return FP_OK;
		}
		FP_WARN("kernels: cuDNN has no bf16 engine for conv direction %d (n=%d c_in=%d %dx%d c_out=%d): %s; this "
		        "shape runs in fp32 (TF32 allowed)", dir, s->n, s->c_in, s->h, s->w, s->c_out, fp_error_msg());
	}
	FP_TRY(build_plan(c, &cc->p[cc->count], s, dir, 0));
	*out = &cc->p[cc->count++];
	return FP_OK;
}

__global__ void k_to_bf16(__nv_bfloat16 *y, const float *x, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		y[i] = __float2bfloat16_rn(x[i]);
}

__global__ void k_from_bf16(float *y, const __nv_bfloat16 *x, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		y[i] = __bfloat162float(x[i]);
}

static unsigned cvt_grid(size_t n)
{
	size_t g = (n + 255) / 256;
	return (unsigned)(g > 65535u * 8 ? 65535u * 8 : (g ? g : 1));
}

/* Element counts rounded up to 128 (256 bytes) so each bf16 copy is aligned. */
static size_t al128(size_t n) { return (n + 127) & ~(size_t)127; }

/* Runs a bf16 plan on fp32 tensors: x, w, y as the plan's UIDs; `out_uid`
 * is the one cuDNN writes (UID_Y forward, UID_X backward data, UID_W
 * backward filter), the other two are read. */
static enum fp_status run_plan(struct fp_cuda *c, struct conv_plan *p, void *x, void *w, void *y);
static enum fp_status run_bf16(struct fp_cuda *c, struct conv_plan *p, float *x, float *w, float *y, int out_uid)
{
	struct fp_cuda_conv_cache *cc = c->conv;
	const struct fp_conv2d_shape *s = &p->s;
	size_t n[3] = {(size_t)s->n * s->c_in * s->h * s->w, (size_t)s->c_out * s->c_in * s->kh * s->kw,
	               (size_t)s->n * s->c_out * fp_conv2d_out_h(s) * fp_conv2d_out_w(s)};
	size_t need = al128(n[0]) + al128(n[1]) + al128(n[2]);
	if (need > cc->half_n) {
		cudaError_t e = cudaStreamSynchronize(c->stream);
		cudaFree(cc->half);
		cc->half = NULL;
		cc->half_n = 0;
		if (e == cudaSuccess)
			e = cudaMalloc((void **)&cc->half, need * sizeof(__nv_bfloat16));
		if (e != cudaSuccess)
			return FP_FAIL(FP_ERR_NOMEM, "kernels: bf16 conv operands (%zu bytes): %s", need * 2, cudaGetErrorString(e));
		cc->half_n = need;
	}
	__nv_bfloat16 *h[3] = {cc->half, cc->half + al128(n[0]), cc->half + al128(n[0]) + al128(n[1])};
	float *f[3] = {x, w, y};
	for (int i = 0; i < 3; i++)
		if (i + 1 != out_uid)
			k_to_bf16<<<cvt_grid(n[i]), 256, 0, c->stream>>>(h[i], f[i], n[i]);
	if (cudaGetLastError() != cudaSuccess)
		return FP_FAIL(FP_ERR_BACKEND, "kernels: bf16 conversion launch failed");
	FP_TRY(run_plan(c, p, h[0], h[1], h[2]));
	k_from_bf16<<<cvt_grid(n[out_uid - 1]), 256, 0, c->stream>>>(f[out_uid - 1], h[out_uid - 1], n[out_uid - 1]);
	if (cudaGetLastError() != cudaSuccess)
		return FP_FAIL(FP_ERR_BACKEND, "kernels: bf16 conversion launch failed");
	return FP_OK;
}

static enum fp_status run_plan(struct fp_cuda *c, struct conv_plan *p, void *x, void *w, void *y)
{
	enum fp_status st = FP_OK;
	cudnnBackendDescriptor_t vp = NULL;
	int64_t uids[3] = {UID_X, UID_W, UID_Y};
	void *ptrs[3] = {x, w, y};
	void *ws = c->workspace;
	DNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp));
	DNN(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids));
	DNN(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs));
	DNN(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws));
	DNN(cudnnBackendFinalize(vp));
	DNN(cudnnBackendExecute(c->dnn, p->plan, vp));
fail:
	if (vp)
		cudnnBackendDestroyDescriptor(vp);
	return st;
}

enum fp_status fp_cuda_conv2d_forward(struct fp_cuda *be, const struct fp_conv2d_shape *s, float *y, const float *x,
                                      const float *w, const float *b)
{
	struct conv_plan *p;
	FP_TRY(get_plan(be, s, DIR_FWD, &p));
	if (p->bf16)
		FP_TRY(run_bf16(be, p, (float *)x, (float *)w, y, UID_Y));
	else
		FP_TRY(run_plan(be, p, (void *)x, (void *)w, y));
	if (b)
		FP_TRY(fp_cuda_bias_add(be, y, b, s->n, s->c_out, fp_conv2d_out_h(s) * fp_conv2d_out_w(s)));
	return FP_OK;
}

enum fp_status fp_cuda_conv2d_backward(struct fp_cuda *be, const struct fp_conv2d_shape *s, float *dx, float *dw,
                                       float *db, const float *dy, const float *x, const float *w)
{
	struct conv_plan *p;
	if (dx) {
		FP_TRY(get_plan(be, s, DIR_BWD_DATA, &p));
		if (p->bf16)
			FP_TRY(run_bf16(be, p, dx, (float *)w, (float *)dy, UID_X));
		else
			FP_TRY(run_plan(be, p, dx, (void *)w, (void *)dy));
	}
	if (dw) {
		FP_TRY(get_plan(be, s, DIR_BWD_FILTER, &p));
		if (p->bf16)
			FP_TRY(run_bf16(be, p, (float *)x, dw, (float *)dy, UID_W));
		else
			FP_TRY(run_plan(be, p, (void *)x, dw, (void *)dy));
	}
	if (db)
		FP_TRY(fp_cuda_bias_grad(be, db, dy, s->n, s->c_out, fp_conv2d_out_h(s) * fp_conv2d_out_w(s)));
	return FP_OK;
}
