/*
 * cpu_conv.c: CPU convolutions through oneDNN (libdnnl 2.x C API).
 *
 * Takes NCHW float tensors (fp_kernels.h); keeps, per distinct shape, the
 * forward, backward-data and backward-weights primitives and their memory
 * objects in the handle's cache (FP_CONV_CACHE_MAX shapes, oldest replaced),
 * so a training step creates nothing after its first pass. Memory objects
 * are re-pointed at the caller's buffers on every call.
 * Without a bias the forward uses a cached zero bias.
 * Backward-weights is NOT oneDNN's: its reduction over the batch splits by
 * thread count (measured: dW differs in the last bits between 1 and 2
 * threads), so it runs as im2col + one OpenBLAS GEMM per image added in image
 * order (dW += dY_n col_n^T), and db as a per-channel double sum.
 * Built with FP_KERNELS_NO_DNNL (the standalone GPU-check build), plain
 * direct loops take oneDNN's place.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"

#define FP_CONV_CACHE_MAX 64

#ifndef FP_KERNELS_NO_DNNL
#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

enum { M_SRC, M_WEI, M_BIA, M_DST, M_DSRC, M_DWEI, M_DBIA, M_DDST, M_COUNT };

struct conv_entry {
	struct fp_conv2d_shape s;
	dnnl_primitive_t fwd, bwd_data;
	dnnl_memory_t mem[M_COUNT];
	float *zero_bias, *col, *partial; /* col: one im2col buffer per thread */
	int threads;
	unsigned long used;
};

struct fp_cpu_conv_cache {
	dnnl_engine_t engine;
	dnnl_stream_t stream;
	struct conv_entry e[FP_CONV_CACHE_MAX];
	int count;
	unsigned long tick;
};

#define DNNL_TRY(call)                                                                       \
	do {                                                                                     \
		dnnl_status_t dst_ = (call);                                                         \
		if (dst_ != dnnl_success) {                                                          \
			st = FP_FAIL(FP_ERR_BACKEND, "kernels: oneDNN %s failed with status %d", #call, (int)dst_); \
			goto fail;                                                                       \
		}                                                                                    \
	} while (0)

enum fp_status fp_cpu_conv_init(struct fp_cpu *c)
{
	enum fp_status st = FP_OK;
	struct fp_cpu_conv_cache *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return FP_FAIL(FP_ERR_NOMEM, "kernels: conv cache");
	c->conv = cc;
	DNNL_TRY(dnnl_engine_create(&cc->engine, dnnl_cpu, 0));
	DNNL_TRY(dnnl_stream_create(&cc->stream, cc->engine, dnnl_stream_default_flags));
	return FP_OK;
fail:
	fp_cpu_conv_close(c);
	return st;
}

static void entry_clear(struct conv_entry *e)
{
	if (e->fwd)
		dnnl_primitive_destroy(e->fwd);
	if (e->bwd_data)
		dnnl_primitive_destroy(e->bwd_data);
	for (int i = 0; i < M_COUNT; i++)
		if (e->mem[i])
			dnnl_memory_destroy(e->mem[i]);
	free(e->zero_bias);
	free(e->col);
	free(e->partial);
	memset(e, 0, sizeof(*e));
}

void fp_cpu_conv_close(struct fp_cpu *c)
{
	struct fp_cpu_conv_cache *cc = c ? c->conv : NULL;
	if (!cc)
		return;
	for (int i = 0; i < cc->count; i++)
		entry_clear(&cc->e[i]);
	if (cc->stream)
		dnnl_stream_destroy(cc->stream);
	if (cc->engine)
		dnnl_engine_destroy(cc->engine);
	free(cc);
	c->conv = NULL;
}

/* Builds the three primitives of one shape. Primitive descriptors are
 * dropped once the primitives exist; the memory descriptors are plain NCHW
 * so that no reorders run inside a step. */
static enum fp_status entry_build(struct fp_cpu_conv_cache *cc, struct conv_entry *e, const struct fp_conv2d_shape *s)
{
	enum fp_status st = FP_OK;
	int oh = fp_conv2d_out_h(s), ow = fp_conv2d_out_w(s);
	dnnl_dims_t xd = {s->n, s->c_in, s->h, s->w}, wd = {s->c_out, s->c_in, s->kh, s->kw};
	dnnl_dims_t bd = {s->c_out}, yd = {s->n, s->c_out, oh, ow};
	dnnl_dims_t strides = {s->stride, s->stride}, pad = {s->pad, s->pad};
	dnnl_dims_t pad_r = {(oh - 1) * s->stride + s->kh - s->h - s->pad, (ow - 1) * s->stride + s->kw - s->w - s->pad};
	dnnl_memory_desc_t xmd, wmd, bmd, ymd;
	dnnl_convolution_desc_t fd, bdd;
	dnnl_primitive_desc_t fpd = NULL, bdpd = NULL;

	memset(e, 0, sizeof(*e));
	e->s = *s;
	DNNL_TRY(dnnl_memory_desc_init_by_tag(&xmd, 4, xd, dnnl_f32, dnnl_nchw));
	DNNL_TRY(dnnl_memory_desc_init_by_tag(&wmd, 4, wd, dnnl_f32, dnnl_oihw));
	DNNL_TRY(dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x));
	DNNL_TRY(dnnl_memory_desc_init_by_tag(&ymd, 4, yd, dnnl_f32, dnnl_nchw));
	DNNL_TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
	                                            &xmd, &wmd, &bmd, &ymd, strides, pad, pad_r));
	DNNL_TRY(dnnl_primitive_desc_create(&fpd, &fd, NULL, cc->engine, NULL));
	DNNL_TRY(dnnl_primitive_create(&e->fwd, fpd));
	DNNL_TRY(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &xmd, &wmd, &ymd,
	                                                  strides, pad, pad_r));
	DNNL_TRY(dnnl_primitive_desc_create(&bdpd, &bdd, NULL, cc->engine, fpd));
	DNNL_TRY(dnnl_primitive_create(&e->bwd_data, bdpd));
	const dnnl_memory_desc_t *mds[M_COUNT] = {&xmd, &wmd, &bmd, &ymd, &xmd, &wmd, &bmd, &ymd};
	for (int i = 0; i < M_COUNT; i++)
		DNNL_TRY(dnnl_memory_create(&e->mem[i], mds[i], cc->engine, DNNL_MEMORY_NONE));
	e->zero_bias = calloc((size_t)s->c_out, sizeof(float));
	e->threads = omp_get_max_threads();
	e->col = malloc(sizeof(float) * e->threads * s->c_in * s->kh * s->kw * oh * ow);
	e->partial = malloc(sizeof(float) * s->n * s->c_out * s->c_in * s->kh * s->kw);
	if (!e->zero_bias || !e->col || !e->partial) {
		st = FP_FAIL(FP_ERR_NOMEM, "kernels: conv scratch for c_out=%d", s->c_out);
		goto fail;
	}
	dnnl_primitive_desc_destroy(fpd);
	dnnl_primitive_desc_destroy(bdpd);
	return FP_OK;
fail:
	if (fpd)
		dnnl_primitive_desc_destroy(fpd);
	if (bdpd)
		dnnl_primitive_desc_destroy(bdpd);
	entry_clear(e);
	return st;
}

static enum fp_status entry_get(struct fp_cpu *c, const struct fp_conv2d_shape *s, struct conv_entry **out)
{
	struct fp_cpu_conv_cache *cc = c->conv;
	struct conv_entry *slot;
	cc->tick++;
	for (int i = 0; i < cc->count; i++)
		if (memcmp(&cc->e[i].s, s, sizeof(*s)) == 0) {
			cc->e[i].used = cc->tick;
			*out = &cc->e[i];
			return FP_OK;
		}
	if (cc->count < FP_CONV_CACHE_MAX) {
		slot = &cc->e[cc->count++];
	} else {
		slot = &cc->e[0];
		for (int i = 1; i < cc->count; i++)
			if (cc->e[i].used < slot->used)
				slot = &cc->e[i];
		entry_clear(slot);
	}
	enum fp_status st = entry_build(cc, slot, s);
	if (st != FP_OK) {
		/* Leave an all-zero shape that never matches a valid one. */
		memset(slot, 0, sizeof(*slot));
		return st;
	}
	slot->used = cc->tick;
	*out = slot;
	return FP_OK;
}

static enum fp_status conv_exec(struct fp_cpu_conv_cache *cc, dnnl_primitive_t p, struct conv_entry *e,
                                const int *which, const int *args, void *const *ptrs, int nargs)
{
	enum fp_status st = FP_OK;
	dnnl_exec_arg_t a[4];
	for (int i = 0; i < nargs; i++) {
		DNNL_TRY(dnnl_memory_set_data_handle(e->mem[which[i]], ptrs[i]));
		a[i].arg = args[i];
		a[i].memory = e->mem[which[i]];
	}
	DNNL_TRY(dnnl_primitive_execute(p, cc->stream, nargs, a));
	DNNL_TRY(dnnl_stream_wait(cc->stream));
fail:
	return st;
}

enum fp_status fp_cpu_conv2d_forward(struct fp_cpu *c, const struct fp_conv2d_shape *s, float *y, const float *x,
                                     const float *w, const float *b)
{
	struct conv_entry *e;
	FP_TRY(entry_get(c, s, &e));
	int which[] = {M_SRC, M_WEI, M_BIA, M_DST};
	int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
	void *ptrs[] = {(void *)x, (void *)w, (void *)(b ? b : e->zero_bias), y};
	return conv_exec(c->conv, e->fwd, e, which, args, ptrs, 4);
}

/* col: (C_in KH KW, OH OW) patches of image n, zero where the window pads. */
static void conv_im2col(const struct fp_conv2d_shape *s, float *col, const float *xn)
{
	int oh = fp_conv2d_out_h(s), ow = fp_conv2d_out_w(s), kk = s->kh * s->kw;
	for (int r = 0; r < s->c_in * kk; r++) {
		int ci = r / kk, u = (r % kk) / s->kw, v = r % s->kw;
		const float *xc = xn + (size_t)ci * s->h * s->w;
		float *cr = col + (size_t)r * oh * ow;
		/* valid output columns: 0 <= j*stride - pad + v < w */
		int j0 = s->pad - v > 0 ? (s->pad - v + s->stride - 1) / s->stride : 0;
		int j1 = (s->w - 1 + s->pad - v) / s->stride + 1;
		if (j1 > ow)
			j1 = ow;
		if (j1 < j0)
			j1 = j0;
		for (int i = 0; i < oh; i++) {
			int hi = i * s->stride - s->pad + u;
			float *out = cr + (size_t)i * ow;
			if (hi < 0 || hi >= s->h) {
				memset(out, 0, sizeof(float) * ow);
				continue;
			}
			const float *row = xc + (size_t)hi * s->w;
			for (int j = 0; j < j0; j++)
				out[j] = 0.0f;
			if (s->stride == 1 && j1 > j0)
				memcpy(out + j0, row + (j0 - s->pad + v), sizeof(float) * (j1 - j0));
			else
				for (int j = j0; j < j1; j++)
					out[j] = row[j * s->stride - s->pad + v];
			for (int j = j1; j < ow; j++)
				out[j] = 0.0f;
		}
	}
}

/* Each image's dW_n = dY_n col_n^T goes to its own slot (images spread over
 * threads, one single-threaded OpenBLAS call each); the slots are then added
 * in image order, so the sum does not depend on the thread count. One
 * parallel region per pass: OpenMP workers spin between regions, which on a
 * loaded machine costs more than the work (measured 750 ms vs 140 ms). */
static void conv_backward_weights(const struct fp_conv2d_shape *s, struct conv_entry *e, float *dw, const float *dy,
                                  const float *x)
{
	int ohw = fp_conv2d_out_h(s) * fp_conv2d_out_w(s), ckk = s->c_in * s->kh * s->kw;
	size_t nw = (size_t)s->c_out * ckk;
	#pragma omp parallel num_threads(e->threads)
	{
		float *col = e->col + (size_t)omp_get_thread_num() * ckk * ohw;
		#pragma omp for schedule(static)
		for (int n = 0; n < s->n; n++) {
			conv_im2col(s, col, x + (size_t)n * s->c_in * s->h * s->w);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->c_out, ckk, ohw, 1.0f,
			            dy + (size_t)n * s->c_out * ohw, ohw, col, ohw, 0.0f, e->partial + (size_t)n * nw, ckk);
		}
		#pragma omp for schedule(static)
		for (size_t i = 0; i < nw; i++) {
			float acc = e->partial[i];
			for (int n = 1; n < s->n; n++)
				acc += e->partial[(size_t)n * nw + i];
			dw[i] = acc;
		}
	}
}

static void conv_backward_bias(const struct fp_conv2d_shape *s, float *db, const float *dy)
{
	int ohw = fp_conv2d_out_h(s) * fp_conv2d_out_w(s);
	#pragma omp parallel for schedule(static)
	for (int co = 0; co < s->c_out; co++) {
		double acc = 0;
		for (int n = 0; n < s->n; n++) {
			const float *g = dy + ((size_t)n * s->c_out + co) * ohw;
			for (int j = 0; j < ohw; j++)
				acc += g[j];
		}
		db[co] = (float)acc;
	}
}

enum fp_status fp_cpu_conv2d_backward(struct fp_cpu *c, const struct fp_conv2d_shape *s, float *dx, float *dw,
                                      float *db, const float *dy, const float *x, const float *w)
{
	struct conv_entry *e;
	FP_TRY(entry_get(c, s, &e));
	if (dx) {
		int which[] = {M_DDST, M_WEI, M_DSRC};
		int args[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
		void *ptrs[] = {(void *)dy, (void *)w, dx};
		FP_TRY(conv_exec(c->conv, e->bwd_data, e, which, args, ptrs, 3));
	}
	if (dw)
		conv_backward_weights(s, e, dw, dy, x);
	if (db)
		conv_backward_bias(s, db, dy);
	return FP_OK;
}

#else /* FP_KERNELS_NO_DNNL: direct loops, correct but slow */

enum fp_status fp_cpu_conv_init(struct fp_cpu *c)
{
	c->conv = NULL;
	return FP_OK;
}

void fp_cpu_conv_close(struct fp_cpu *c)
{
	(void)c;
}

#define XI(s, n, ci, hi, wi) ((((size_t)(n) * (s)->c_in + (ci)) * (s)->h + (hi)) * (s)->w + (wi))
#define WI(s, co, ci, u, v) ((((size_t)(co) * (s)->c_in + (ci)) * (s)->kh + (u)) * (s)->kw + (v))

enum fp_status fp_cpu_conv2d_forward(struct fp_cpu *c, const struct fp_conv2d_shape *s, float *y, const float *x,
                                     const float *w, const float *b)
{
	int oh = fp_conv2d_out_h(s), ow = fp_conv2d_out_w(s);
	(void)c;
	#pragma omp parallel for
	for (long nco = 0; nco < (long)s->n * s->c_out; nco++) {
		int n = (int)(nco / s->c_out), co = (int)(nco % s->c_out);
		for (int i = 0; i < oh; i++)
			for (int j = 0; j < ow; j++) {
				float acc = b ? b[co] : 0.0f;
				for (int ci = 0; ci < s->c_in; ci++)
					for (int u = 0; u < s->kh; u++) {
						int hi = i * s->stride - s->pad + u;
						if (hi < 0 || hi >= s->h)
							continue;
						for (int v = 0; v < s->kw; v++) {
							int wi = j * s->stride - s->pad + v;
							if (wi >= 0 && wi < s->w)
								acc += x[XI(s, n, ci, hi, wi)] * w[WI(s, co, ci, u, v)];
						}
					}
				y[((size_t)nco * oh + i) * ow + j] = acc;
			}
	}
	return FP_OK;
}

enum fp_status fp_cpu_conv2d_backward(struct fp_cpu *c, const struct fp_conv2d_shape *s, float *dx, float *dw,
                                      float *db, const float *dy, const float *x, const float *w)
{
	int oh = fp_conv2d_out_h(s), ow = fp_conv2d_out_w(s);
	(void)c;
	if (dx) {
		#pragma omp parallel for
		for (long nci = 0; nci < (long)s->n * s->c_in; nci++) {
			int n = (int)(nci / s->c_in), ci = (int)(nci % s->c_in);
			memset(dx + (size_t)nci * s->h * s->w, 0, sizeof(float) * s->h * s->w);
			for (int co = 0; co < s->c_out; co++)
				for (int i = 0; i < oh; i++)
					for (int j = 0; j < ow; j++) {
						float g = dy[(((size_t)n * s->c_out + co) * oh + i) * ow + j];
						for (int u = 0; u < s->kh; u++) {
							int hi = i * s->stride - s->pad + u;
							if (hi < 0 || hi >= s->h)
								continue;
							for (int v = 0; v < s->kw; v++) {
								int wi = j * s->stride - s->pad + v;
								if (wi >= 0 && wi < s->w)
									dx[XI(s, n, ci, hi, wi)] += g * w[WI(s, co, ci, u, v)];
							}
						}
					}
		}
	}
	#pragma omp parallel for
	for (int co = 0; co < s->c_out; co++) {
		double sb = 0;
		if (dw)
			memset(dw + WI(s, co, 0, 0, 0), 0, sizeof(float) * s->c_in * s->kh * s->kw);
		for (int n = 0; n < s->n; n++)
			for (int i = 0; i < oh; i++)
				for (int j = 0; j < ow; j++) {
					float g = dy[(((size_t)n * s->c_out + co) * oh + i) * ow + j];
					sb += g;
					if (!dw)
						continue;
					for (int ci = 0; ci < s->c_in; ci++)
						for (int u = 0; u < s->kh; u++) {
							int hi = i * s->stride - s->pad + u;
							if (hi < 0 || hi >= s->h)
								continue;
							for (int v = 0; v < s->kw; v++) {
								int wi = j * s->stride - s->pad + v;
								if (wi >= 0 && wi < s->w)
									dw[WI(s, co, ci, u, v)] += g * x[XI(s, n, ci, hi, wi)];
							}
						}
				}
		if (db)
			db[co] = (float)sb;
	}
	return FP_OK;
}

#endif
