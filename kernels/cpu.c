/*
 * cpu.c: the CPU backend for everything but convolution (cpu_conv.c).
 *
 * GEMMs go to OpenBLAS (a plain loop when built with FP_KERNELS_NO_BLAS, for
 * the standalone GPU-check build); the rest is OpenMP C.
 * Thread-count independence: parallel loops only split independent outputs;
 * every reduction runs sequentially in double over a fixed order (per
 * channel, per group, per column), or over fixed 64 Ki-element blocks whose
 * partial sums are then added in block order (fp_cpu_sumsq).
 * Cox, the only op that allocates (an index sort of N), takes NULL as its
 * handle, so the CUDA backend can run it on the host.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#ifndef FP_KERNELS_NO_BLAS
#include <cblas.h>
#endif

#include "cpu_impl.h"
#include "fp_arith.h"
#include "fp_kernels_rng.h"

enum fp_status fp_cpu_create(int threads, struct fp_cpu **out)
{
	struct fp_cpu *c = calloc(1, sizeof(*c));
	enum fp_status st;
	if (!c)
		return FP_FAIL(FP_ERR_NOMEM, "kernels: cpu handle");
	c->threads = threads > 0 ? threads : omp_get_max_threads();
	/* oneDNN and OpenBLAS read the process-wide settings. */
	omp_set_num_threads(c->threads);
#ifndef FP_KERNELS_NO_BLAS
	openblas_set_num_threads(1); /* see fp_cpu_sgemm */
#endif
	st = fp_cpu_conv_init(c);
	if (st != FP_OK) {
		fp_cpu_destroy(c);
		return st;
	}
	*out = c;
	return FP_OK;
}

void fp_cpu_destroy(struct fp_cpu *c)
{
	if (!c)
		return;
	fp_cpu_conv_close(c);
	free(c);
}

int fp_cpu_threads(const struct fp_cpu *c)
{
	return c->threads;
}

#ifdef FP_KERNELS_NO_BLAS
/* Row-major C(M,N) = alpha op(A) op(B) + beta C, float accumulation in k order. */
void fp_cpu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *cc, int ldc)
{
	#pragma omp parallel for
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			float acc = 0;
			for (int q = 0; q < k; q++)
				acc += (ta ? a[(size_t)q * lda + i] : a[(size_t)i * lda + q]) *
				       (tb ? b[(size_t)j * ldb + q] : b[(size_t)q * ldb + j]);
			cc[(size_t)i * ldc + j] = alpha * acc + (beta != 0 ? beta * cc[(size_t)i * ldc + j] : 0);
		}
}
#else
/* OpenBLAS runs single-threaded and the split over threads is ours: its own
 * pthreads and the OpenMP workers of the other kernels would spin against
 * each other (measured: a conv backward 3.5x slower on 2 cores). C is cut
 * along its longer side into slabs of SGEMM_SLAB, a size that does not
 * depend on the thread count: OpenBLAS picks different kernels (and so
 * different rounding) for different slab shapes, so the slabs must be the
 * same whatever the number of threads (tests/unit/test_kernels.c threads_*). */
#define SGEMM_SLAB 128
void fp_cpu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *cc, int ldc)
{
	int split_m = m >= n, len = split_m ? m : n;
	int parts = (len + SGEMM_SLAB - 1) / SGEMM_SLAB;
	if (parts <= 1) {
		cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
		            m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc);
		return;
	}
	#pragma omp parallel for schedule(static, 1)
	for (int p = 0; p < parts; p++) {
		int lo = p * SGEMM_SLAB, hi = lo + SGEMM_SLAB < len ? lo + SGEMM_SLAB : len;
		if (split_m)
			cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
			            hi - lo, n, k, alpha, ta ? a + lo : a + (size_t)lo * lda, lda, b, ldb, beta,
			            cc + (size_t)lo * ldc, ldc);
		else
			cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
			            m, hi - lo, k, alpha, a, lda, tb ? b + (size_t)lo * ldb : b + lo, ldb, beta,
			            cc + lo, ldc);
	}
}
#endif

#define PAR_FOR _Pragma("omp parallel for schedule(static)")
/* For element-wise folds of a few sites' vectors: below about a million
 * values the wake-up and barrier cost more than the work, and on a busy
 * machine (an aggregator beside its sites) a descheduled worker holds the
 * barrier for a whole time slice (measured: 10-16 ms to fold 10 x 1 MB
 * with two threads, under 1 ms with one): those loops say
 * "omp parallel for schedule(static) if (big)". */

enum fp_status fp_cpu_accumulate(struct fp_cpu *c, float *y, const float *x, size_t n)
{
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) y[i] += x[i];
	return FP_OK;
}

enum fp_status fp_cpu_add(struct fp_cpu *c, float *y, const float *a, const float *b, size_t n)
{
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
	return FP_OK;
}

enum fp_status fp_cpu_scale(struct fp_cpu *c, float *x, size_t n, float s)
{
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) x[i] *= s;
	return FP_OK;
}

enum fp_status fp_cpu_relu_forward(struct fp_cpu *c, float *y, const float *x, size_t n)
{
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
	return FP_OK;
}

enum fp_status fp_cpu_relu_backward(struct fp_cpu *c, float *dx, const float *dy, const float *y, size_t n)
{
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
	return FP_OK;
}

enum fp_status fp_cpu_gelu_forward(struct fp_cpu *c, float *y, const float *x, size_t n)
{
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
	return FP_OK;
}

enum fp_status fp_cpu_gelu_backward(struct fp_cpu *c, float *dx, const float *dy, const float *x, size_t n)
{
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) {
		float cdf = 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2));
		float pdf = expf(-0.5f * x[i] * x[i]) * (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
		dx[i] = dy[i] * (cdf + x[i] * pdf);
	}
	return FP_OK;
}

enum fp_status fp_cpu_dropout_forward(struct fp_cpu *c, float *y, const float *x, size_t n, float p, uint64_t seed)
{
	float keep_scale = 1.0f / (1.0f - p);
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) y[i] = fp_rng_uniform(seed, i) >= p ? x[i] * keep_scale : 0.0f;
	return FP_OK;
}

/* ---- pooling ---- */

enum fp_status fp_cpu_maxpool2d_forward(struct fp_cpu *c, const struct fp_pool2d_shape *s, float *y, const float *x)
{
	int oh = fp_pool2d_out_h(s), ow = fp_pool2d_out_w(s);
	(void)c;
	PAR_FOR for (long nc = 0; nc < (long)s->n * s->c; nc++) {
		const float *xc = x + nc * s->h * s->w;
		for (int i = 0; i < oh; i++)
			for (int j = 0; j < ow; j++) {
				float best = -INFINITY;
				for (int u = 0; u < s->k; u++) {
					int hi = i * s->stride - s->pad + u;
					if (hi < 0 || hi >= s->h)
						continue;
					for (int v = 0; v < s->k; v++) {
						int wi = j * s->stride - s->pad + v;
						if (wi >= 0 && wi < s->w && xc[hi * s->w + wi] > best)
							best = xc[hi * s->w + wi];
					}
				}
				y[(nc * oh + i) * ow + j] = best;
			}
	}
	return FP_OK;
}

enum fp_status fp_cpu_maxpool2d_backward(struct fp_cpu *c, const struct fp_pool2d_shape *s, float *dx,
                                         const float *dy, const float *x)
{
	int oh = fp_pool2d_out_h(s), ow = fp_pool2d_out_w(s);
	(void)c;
	/* One (n, c) plane per iteration: overlapping windows add into their own
	 * plane only, in a fixed order. */
	PAR_FOR for (long nc = 0; nc < (long)s->n * s->c; nc++) {
		const float *xc = x + nc * s->h * s->w;
		float *dxc = dx + nc * s->h * s->w;
		memset(dxc, 0, sizeof(float) * s->h * s->w);
		for (int i = 0; i < oh; i++)
			for (int j = 0; j < ow; j++) {
				long best = -1;
				for (int u = 0; u < s->k; u++) {
					int hi = i * s->stride - s->pad + u;
					if (hi < 0 || hi >= s->h)
						continue;
					for (int v = 0; v < s->k; v++) {
						int wi = j * s->stride - s->pad + v;
						if (wi >= 0 && wi < s->w && (best < 0 || xc[hi * s->w + wi] > xc[best]))
							best = (long)hi * s->w + wi;
					}
				}
				if (best >= 0)
					dxc[best] += dy[(nc * oh + i) * ow + j];
			}
	}
	return FP_OK;
}

enum fp_status fp_cpu_avgpool2d_forward(struct fp_cpu *c, const struct fp_pool2d_shape *s, float *y, const float *x)
{
	int oh = fp_pool2d_out_h(s), ow = fp_pool2d_out_w(s);
	float inv = 1.0f / (float)(s->k * s->k);
	(void)c;
	PAR_FOR for (long nc = 0; nc < (long)s->n * s->c; nc++) {
		const float *xc = x + nc * s->h * s->w;
		for (int i = 0; i < oh; i++)
			for (int j = 0; j < ow; j++) {
				float acc = 0;
				for (int u = 0; u < s->k; u++) {
					int hi = i * s->stride - s->pad + u;
					if (hi < 0 || hi >= s->h)
						continue;
					for (int v = 0; v < s->k; v++) {
						int wi = j * s->stride - s->pad + v;
						if (wi >= 0 && wi < s->w)
							acc += xc[hi * s->w + wi];
					}
				}
				y[(nc * oh + i) * ow + j] = acc * inv;
			}
	}
	return FP_OK;
}

enum fp_status fp_cpu_avgpool2d_backward(struct fp_cpu *c, const struct fp_pool2d_shape *s, float *dx, const float *dy)
{
	int oh = fp_pool2d_out_h(s), ow = fp_pool2d_out_w(s);
	float inv = 1.0f / (float)(s->k * s->k);
	(void)c;
	PAR_FOR for (long nc = 0; nc < (long)s->n * s->c; nc++) {
		float *dxc = dx + nc * s->h * s->w;
		memset(dxc, 0, sizeof(float) * s->h * s->w);
		for (int i = 0; i < oh; i++)
			for (int j = 0; j < ow; j++) {
				float g = dy[(nc * oh + i) * ow + j] * inv;
				for (int u = 0; u < s->k; u++) {
					int hi = i * s->stride - s->pad + u;
					if (hi < 0 || hi >= s->h)
						continue;
					for (int v = 0; v < s->k; v++) {
						int wi = j * s->stride - s->pad + v;
						if (wi >= 0 && wi < s->w)
							dxc[hi * s->w + wi] += g;
					}
				}
			}
	}
	return FP_OK;
}

enum fp_status fp_cpu_gap_forward(struct fp_cpu *c, float *y, const float *x, int n, int cc, int hw)
{
	(void)c;
	PAR_FOR for (long i = 0; i < (long)n * cc; i++) {
		double acc = 0;
		for (int j = 0; j < hw; j++)
			acc += x[i * hw + j];
		y[i] = (float)(acc / hw);
	}
	return FP_OK;
}

enum fp_status fp_cpu_gap_backward(struct fp_cpu *c, float *dx, const float *dy, int n, int cc, int hw)
{
	(void)c;
	PAR_FOR for (long i = 0; i < (long)n * cc; i++) {
		float g = dy[i] / (float)hw;
		for (int j = 0; j < hw; j++)
			dx[i * hw + j] = g;
	}
	return FP_OK;
}

/* ---- linear ---- */

enum fp_status fp_cpu_linear_forward(struct fp_cpu *c, float *y, const float *x, const float *w, const float *b,
                                     int n, int in, int out)
{
	(void)c;
	fp_cpu_sgemm(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
	if (b)
		PAR_FOR for (int i = 0; i < n; i++)
			for (int o = 0; o < out; o++)
				y[(size_t)i * out + o] += b[o];
	return FP_OK;
}

/* db[o] = sum over rows of dy[:, o], double, rows in order. */
static void cpu_colsum(float *db, const float *dy, int rows, int cols)
{
	PAR_FOR for (int o = 0; o < cols; o++) {
		double acc = 0;
		for (int i = 0; i < rows; i++)
			acc += dy[(size_t)i * cols + o];
		db[o] = (float)acc;
	}
}

enum fp_status fp_cpu_linear_backward(struct fp_cpu *c, float *dx, float *dw, float *db, const float *dy,
                                      const float *x, const float *w, int n, int in, int out)
{
	(void)c;
	if (dx)
		fp_cpu_sgemm(0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
	if (dw)
		fp_cpu_sgemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in);
	if (db)
		cpu_colsum(db, dy, n, out);
	return FP_OK;
}

/* ---- normalisation ---- */

enum fp_status fp_cpu_groupnorm_forward(struct fp_cpu *c, float *y, float *mean, float *rstd, const float *x,
                                        const float *gamma, const float *beta, int n, int cc, int hw,
                                        int groups, float eps)
{
	int cpg = cc / groups;
	long per = (long)cpg * hw;
	(void)c;
	PAR_FOR for (long g = 0; g < (long)n * groups; g++) {
		const float *xg = x + g * per;
		float *yg = y + g * per;
		double s1 = 0, s2 = 0;
		for (long j = 0; j < per; j++)
			s1 += xg[j];
		double mu = s1 / per;
		for (long j = 0; j < per; j++)
			s2 += (xg[j] - mu) * (xg[j] - mu);
		float r = (float)(1.0 / sqrt(s2 / per + eps));
		mean[g] = (float)mu;
		rstd[g] = r;
		int c0 = (int)(g % groups) * cpg;
		for (int ch = 0; ch < cpg; ch++) {
			float a = r * gamma[c0 + ch], b = beta[c0 + ch] - (float)mu * a;
			for (int j = 0; j < hw; j++)
				yg[(long)ch * hw + j] = xg[(long)ch * hw + j] * a + b;
		}
	}
	return FP_OK;
}

enum fp_status fp_cpu_groupnorm_backward(struct fp_cpu *c, float *dx, float *dgamma, float *dbeta, const float *dy,
                                         const float *x, const float *mean, const float *rstd, const float *gamma,
                                         int n, int cc, int hw, int groups)
{
	int cpg = cc / groups;
	long per = (long)cpg * hw;
	(void)c;
	if (dx)
		PAR_FOR for (long g = 0; g < (long)n * groups; g++) {
			const float *xg = x + g * per, *dyg = dy + g * per;
			int c0 = (int)(g % groups) * cpg;
			double s1 = 0, s2 = 0;
			for (int ch = 0; ch < cpg; ch++)
				for (int j = 0; j < hw; j++) {
					double d = (double)dyg[(long)ch * hw + j] * gamma[c0 + ch];
					s1 += d;
					s2 += d * (xg[(long)ch * hw + j] - mean[g]) * rstd[g];
				}
			float m1 = (float)(s1 / per), m2 = (float)(s2 / per), r = rstd[g], mu = mean[g];
			for (int ch = 0; ch < cpg; ch++)
				for (int j = 0; j < hw; j++) {
					long e = (long)ch * hw + j;
					float xh = (xg[e] - mu) * r;
					dx[g * per + e] = r * (dyg[e] * gamma[c0 + ch] - m1 - xh * m2);
				}
		}
	if (dgamma || dbeta)
		PAR_FOR for (int ch = 0; ch < cc; ch++) {
			double sg = 0, sb = 0;
			long gch = ch / cpg;
			for (int i = 0; i < n; i++) {
				long g = (long)i * groups + gch;
				const float *xr = x + ((size_t)i * cc + ch) * hw, *dyr = dy + ((size_t)i * cc + ch) * hw;
				for (int j = 0; j < hw; j++) {
					sg += (double)dyr[j] * (xr[j] - mean[g]) * rstd[g];
					sb += dyr[j];
				}
			}
			if (dgamma)
				dgamma[ch] = (float)sg;
			if (dbeta)
				dbeta[ch] = (float)sb;
		}
	return FP_OK;
}

enum fp_status fp_cpu_batchnorm_forward(struct fp_cpu *c, float *y, float *mean, float *rstd, float *running_mean,
                                        float *running_var, const float *x, const float *gamma, const float *beta,
                                        int n, int cc, int hw, float eps, float momentum)
{
	double m = (double)n * hw;
	(void)c;
	PAR_FOR for (int ch = 0; ch < cc; ch++) {
		double s1 = 0, s2 = 0;
		for (int i = 0; i < n; i++) {
			const float *xr = x + ((size_t)i * cc + ch) * hw;
			for (int j = 0; j < hw; j++)
				s1 += xr[j];
		}
		double mu = s1 / m;
		for (int i = 0; i < n; i++) {
			const float *xr = x + ((size_t)i * cc + ch) * hw;
			for (int j = 0; j < hw; j++)
				s2 += (xr[j] - mu) * (xr[j] - mu);
		}
		double var = s2 / m;
		float r = (float)(1.0 / sqrt(var + eps));
		mean[ch] = (float)mu;
		rstd[ch] = r;
		if (running_mean) {
			running_mean[ch] = (1 - momentum) * running_mean[ch] + momentum * (float)mu;
			running_var[ch] = (1 - momentum) * running_var[ch] + momentum * (float)(m > 1 ? s2 / (m - 1) : var);
		}
		float a = r * gamma[ch], b = beta[ch] - (float)mu * a;
		for (int i = 0; i < n; i++) {
			const float *xr = x + ((size_t)i * cc + ch) * hw;
			float *yr = y + ((size_t)i * cc + ch) * hw;
			for (int j = 0; j < hw; j++)
				yr[j] = xr[j] * a + b;
		}
	}
	return FP_OK;
}

enum fp_status fp_cpu_batchnorm_infer(struct fp_cpu *c, float *y, const float *x, const float *running_mean,
                                      const float *running_var, const float *gamma, const float *beta,
                                      int n, int cc, int hw, float eps)
{
	(void)c;
	PAR_FOR for (long nc = 0; nc < (long)n * cc; nc++) {
		int ch = (int)(nc % cc);
		float a = gamma[ch] / sqrtf(running_var[ch] + eps), b = beta[ch] - running_mean[ch] * a;
		for (int j = 0; j < hw; j++)
			y[nc * hw + j] = x[nc * hw + j] * a + b;
	}
	return FP_OK;
}

enum fp_status fp_cpu_batchnorm_backward(struct fp_cpu *c, float *dx, float *dgamma, float *dbeta, const float *dy,
                                         const float *x, const float *mean, const float *rstd, const float *gamma,
                                         int n, int cc, int hw)
{
	double m = (double)n * hw;
	(void)c;
	PAR_FOR for (int ch = 0; ch < cc; ch++) {
		double sdy = 0, sdyx = 0;
		float mu = mean[ch], r = rstd[ch];
		for (int i = 0; i < n; i++) {
			const float *xr = x + ((size_t)i * cc + ch) * hw, *dyr = dy + ((size_t)i * cc + ch) * hw;
			for (int j = 0; j < hw; j++) {
				sdy += dyr[j];
				sdyx += (double)dyr[j] * (xr[j] - mu) * r;
			}
		}
		if (dgamma)
			dgamma[ch] = (float)sdyx;
		if (dbeta)
			dbeta[ch] = (float)sdy;
		if (!dx)
			continue;
		float k = gamma[ch] * r, m1 = (float)(sdy / m), m2 = (float)(sdyx / m);
		for (int i = 0; i < n; i++) {
			const float *xr = x + ((size_t)i * cc + ch) * hw, *dyr = dy + ((size_t)i * cc + ch) * hw;
			float *dxr = dx + ((size_t)i * cc + ch) * hw;
			for (int j = 0; j < hw; j++)
				dxr[j] = k * (dyr[j] - m1 - (xr[j] - mu) * r * m2);
		}
	}
	return FP_OK;
}

/* ---- losses (N is a batch: sequential double sums) ---- */

enum fp_status fp_cpu_softmax_xent_forward(struct fp_cpu *c, float *loss, float *probs, const float *logits,
                                           const int32_t *labels, const float *class_w, int n, int cc)
{
	double num = 0, den = 0;
	(void)c;
	for (int i = 0; i < n; i++) {
		const float *z = logits + (size_t)i * cc;
		float *p = probs + (size_t)i * cc;
		if (labels[i] < 0 || labels[i] >= cc)
			return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: softmax_xent label[%d]=%d outside [0, %d)",
			               i, (int)labels[i], cc);
		float mx = z[0];
		for (int j = 1; j < cc; j++)
			mx = z[j] > mx ? z[j] : mx;
		double sum = 0;
		for (int j = 0; j < cc; j++)
			sum += exp((double)z[j] - mx);
		for (int j = 0; j < cc; j++)
			p[j] = (float)(exp((double)z[j] - mx) / sum);
		double wi = class_w ? class_w[labels[i]] : 1.0;
		num += wi * (log(sum) + mx - z[labels[i]]);
		den += wi;
	}
	*loss = den > 0 ? (float)(num / den) : 0.0f;
	return FP_OK;
}

enum fp_status fp_cpu_softmax_xent_backward(struct fp_cpu *c, float *dlogits, const float *probs,
                                            const int32_t *labels, const float *class_w, int n, int cc, float dloss)
{
	double den = 0;
	(void)c;
	for (int i = 0; i < n; i++) {
		if (labels[i] < 0 || labels[i] >= cc)
			return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: softmax_xent label[%d]=%d outside [0, %d)",
			               i, (int)labels[i], cc);
		den += class_w ? class_w[labels[i]] : 1.0;
	}
	float s = den > 0 ? (float)(dloss / den) : 0.0f;
	for (int i = 0; i < n; i++) {
		float wi = (class_w ? class_w[labels[i]] : 1.0f) * s;
		for (int j = 0; j < cc; j++)
			dlogits[(size_t)i * cc + j] = wi * (probs[(size_t)i * cc + j] - (j == labels[i] ? 1.0f : 0.0f));
	}
	return FP_OK;
}

enum fp_status fp_cpu_bce_forward(struct fp_cpu *c, float *loss, const float *logits, const float *targets, int n)
{
	double acc = 0;
	(void)c;
	for (int i = 0; i < n; i++) {
		double z = logits[i];
		acc += (z > 0 ? z : 0) - z * targets[i] + log1p(exp(-fabs(z)));
	}
	*loss = (float)(acc / n);
	return FP_OK;
}

enum fp_status fp_cpu_bce_backward(struct fp_cpu *c, float *dlogits, const float *logits, const float *targets,
                                   int n, float dloss)
{
	float s = dloss / (float)n;
	(void)c;
	for (int i = 0; i < n; i++)
		dlogits[i] = s * (1.0f / (1.0f + expf(-logits[i])) - targets[i]);
	return FP_OK;
}

enum fp_status fp_cpu_mse_forward(struct fp_cpu *c, float *loss, const float *pred, const float *target, int n)
{
	double acc = 0;
	(void)c;
	for (int i = 0; i < n; i++)
		acc += ((double)pred[i] - target[i]) * ((double)pred[i] - target[i]);
	*loss = (float)(acc / n);
	return FP_OK;
}

enum fp_status fp_cpu_mse_backward(struct fp_cpu *c, float *dpred, const float *pred, const float *target,
                                   int n, float dloss)
{
	float s = 2.0f * dloss / (float)n;
	(void)c;
	for (int i = 0; i < n; i++)
		dpred[i] = s * (pred[i] - target[i]);
	return FP_OK;
}

/* ---- Cox partial likelihood, O(N log N) ----
 * Subjects sorted by time; a "group" is a run of equal times. Walking groups
 * from the latest time down accumulates the risk-set sum S_R; per group the
 * events give S_H (their w e^eta), W_D (their weights) and d. The gradient of
 * subject k is w_k e^eta_k * (sum of A_t over groups with t <= T_k) minus,
 * for an event, w_k + w_k e^eta_k B_t of its own group, where
 *   Breslow: A_t = W_D / S_R, B_t = 0;
 *   Efron:   A_t = W_D/d sum_r 1/(S_R - r/d S_H), B_t = W_D/d sum_r (r/d)/(S_R - r/d S_H). */
struct cox_work {
	int *order;
	double *ew;   /* w e^(eta - max eta), by subject */
	double *a, *b; /* per group start (indexed by sorted position) */
};

static const float *cox_time_key;
static int cox_cmp(const void *pa, const void *pb)
{
	int ia = *(const int *)pa, ib = *(const int *)pb;
	float ta = cox_time_key[ia], tb = cox_time_key[ib];
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return (ia > ib) - (ia < ib);
}

/* Fills w->order (sorted by time), w->ew, and per group start the A and B
 * terms; returns the negative log partial likelihood (sum) and the weighted
 * event count. */
static enum fp_status cox_pass(struct cox_work *w, const float *eta, const float *time, const float *event,
                               const float *weight, int n, enum fp_cox_ties ties, double *nll, double *nev)
{
	double shift = -INFINITY, sr = 0, total = 0, events = 0;
	for (int i = 0; i < n; i++) {
		if (!isfinite(eta[i]) || !isfinite(time[i]) || (weight && !(weight[i] >= 0)))
			return FP_FAIL(FP_ERR_NUMERIC, "kernels: cox input %d is not finite (eta=%g time=%g)",
			               i, (double)eta[i], (double)time[i]);
		shift = eta[i] > shift ? eta[i] : shift;
		w->order[i] = i;
	}
	/* qsort has no context argument in C11: the key is set just before. The
	 * handle is single-threaded by contract, and the CUDA backend calls this
	 * from its one host thread. */
	cox_time_key = time;
	qsort(w->order, n, sizeof(int), cox_cmp);
	for (int i = 0; i < n; i++)
		w->ew[i] = (weight ? weight[i] : 1.0) * exp((double)eta[i] - shift);
	int end = n;
	while (end > 0) {
		int start = end - 1;
		while (start > 0 && time[w->order[start - 1]] == time[w->order[end - 1]])
			start--;
		double sh = 0, wd = 0, weta = 0;
		int d = 0;
		for (int q = start; q < end; q++) {
			int i = w->order[q];
			sr += w->ew[i];
			if (event[i] > 0.5f) {
				double wi = weight ? weight[i] : 1.0;
				sh += w->ew[i];
				wd += wi;
				weta += wi * eta[i];
				d++;
			}
		}
		double a = 0, b = 0, logs = 0;
		if (d > 0 && ties == FP_COX_BRESLOW) {
			a = wd / sr;
			logs = wd * (log(sr) + shift);
		} else if (d > 0) {
			for (int r = 0; r < d; r++) {
				double f = (double)r / d, den = sr - f * sh;
				a += (wd / d) / den;
				b += (wd / d) * f / den;
				logs += (wd / d) * (log(den) + shift);
			}
		}
		w->a[start] = a;
		w->b[start] = b;
		total += logs - weta;
		events += wd;
		end = start;
	}
	*nll = total;
	*nev = events;
	return FP_OK;
}

static enum fp_status cox_work_alloc(struct cox_work *w, int n)
{
	enum fp_status st;
	memset(w, 0, sizeof(*w));
	FP_CHECK(st, fp_alloc_array((size_t)n, sizeof(int), (void **)&w->order, "cox order"));
	FP_CHECK(st, fp_alloc_array((size_t)n, sizeof(double), (void **)&w->ew, "cox ew"));
	FP_CHECK(st, fp_alloc_array((size_t)n, sizeof(double), (void **)&w->a, "cox a"));
	FP_CHECK(st, fp_alloc_array((size_t)n, sizeof(double), (void **)&w->b, "cox b"));
	return FP_OK;
fail:
	free(w->order);
	free(w->ew);
	free(w->a);
	return st;
}

static void cox_work_free(struct cox_work *w)
{
	free(w->order);
	free(w->ew);
	free(w->a);
	free(w->b);
}

enum fp_status fp_cpu_cox_forward(struct fp_cpu *c, float *loss, const float *eta, const float *time,
                                  const float *event, const float *weight, int n, enum fp_cox_ties ties,
                                  enum fp_cox_reduction red)
{
	struct cox_work w;
	double nll = 0, nev = 0;
	enum fp_status st;
	(void)c;
	FP_TRY(cox_work_alloc(&w, n));
	st = cox_pass(&w, eta, time, event, weight, n, ties, &nll, &nev);
	if (st == FP_OK)
		*loss = nev > 0 ? (float)(red == FP_COX_MEAN ? nll / nev : nll) : 0.0f;
	cox_work_free(&w);
	return st;
}

enum fp_status fp_cpu_cox_backward(struct fp_cpu *c, float *deta, const float *eta, const float *time,
                                   const float *event, const float *weight, int n, enum fp_cox_ties ties,
                                   enum fp_cox_reduction red, float dloss)
{
	struct cox_work w;
	double nll = 0, nev = 0, cum = 0;
	enum fp_status st;
	(void)c;
	FP_TRY(cox_work_alloc(&w, n));
	FP_CHECK(st, cox_pass(&w, eta, time, event, weight, n, ties, &nll, &nev));
	double scale = nev > 0 ? dloss / (red == FP_COX_MEAN ? nev : 1.0) : 0.0;
	for (int start = 0; start < n;) {
		int end = start + 1;
		while (end < n && time[w.order[end]] == time[w.order[start]])
			end++;
		cum += w.a[start];
		for (int q = start; q < end; q++) {
			int i = w.order[q];
			double g = w.ew[i] * cum;
			if (event[i] > 0.5f)
				g -= (weight ? weight[i] : 1.0) + w.ew[i] * w.b[start];
			deta[i] = (float)(g * scale);
		}
		start = end;
	}
fail:
	cox_work_free(&w);
	return st;
}

/* ---- gated attention pooling ----
 * ws layout: gv (N, D) | gu (N, D) | s (N). Backward turns gv, gu into the
 * pre-activation gradients dzv, dzu in place, and s into ds. */
enum fp_status fp_cpu_attnpool_forward(struct fp_cpu *c, float *m, float *a, float *ws, const float *h,
                                       const float *V, const float *bv, const float *U, const float *bu,
                                       const float *w, int n, int l, int d)
{
	float *gv = ws, *gu = ws + (size_t)n * d, *s = ws + (size_t)2 * n * d;
	(void)c;
	fp_cpu_sgemm(0, 1, n, d, l, 1.0f, h, l, V, l, 0.0f, gv, d);
	fp_cpu_sgemm(0, 1, n, d, l, 1.0f, h, l, U, l, 0.0f, gu, d);
	PAR_FOR for (int i = 0; i < n; i++) {
		double acc = 0;
		for (int j = 0; j < d; j++) {
			size_t e = (size_t)i * d + j;
			gv[e] = tanhf(gv[e] + bv[j]);
			gu[e] = 1.0f / (1.0f + expf(-(gu[e] + bu[j])));
			acc += (double)w[j] * gv[e] * gu[e];
		}
		s[i] = (float)acc;
	}
	float mx = s[0];
	for (int i = 1; i < n; i++)
		mx = s[i] > mx ? s[i] : mx;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += exp((double)s[i] - mx);
	for (int i = 0; i < n; i++)
		a[i] = (float)(exp((double)s[i] - mx) / sum);
	PAR_FOR for (int q = 0; q < l; q++) {
		double acc = 0;
		for (int i = 0; i < n; i++)
			acc += (double)a[i] * h[(size_t)i * l + q];
		m[q] = (float)acc;
	}
	return FP_OK;
}

enum fp_status fp_cpu_attnpool_backward(struct fp_cpu *c, float *dh, float *dV, float *dbv, float *dU, float *dbu,
                                        float *dw, const float *dm, const float *a, float *ws, const float *h,
                                        const float *V, const float *U, const float *w, int n, int l, int d)
{
	float *gv = ws, *gu = ws + (size_t)n * d, *ds = ws + (size_t)2 * n * d;
	double ada = 0;
	(void)c;
	for (int i = 0; i < n; i++) {
		double da = 0;
		for (int q = 0; q < l; q++)
			da += (double)dm[q] * h[(size_t)i * l + q];
		ds[i] = (float)da;
		ada += a[i] * da;
	}
	for (int i = 0; i < n; i++)
		ds[i] = a[i] * (ds[i] - (float)ada);
	PAR_FOR for (int j = 0; j < d; j++) {
		double acc = 0;
		for (int i = 0; i < n; i++)
			acc += (double)ds[i] * gv[(size_t)i * d + j] * gu[(size_t)i * d + j];
		dw[j] = (float)acc;
	}
	PAR_FOR for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++) {
			size_t e = (size_t)i * d + j;
			float dg = ds[i] * w[j], tv = gv[e], su = gu[e];
			gv[e] = dg * su * (1 - tv * tv);
			gu[e] = dg * tv * su * (1 - su);
		}
	fp_cpu_sgemm(1, 0, d, l, n, 1.0f, gv, d, h, l, 0.0f, dV, l);
	fp_cpu_sgemm(1, 0, d, l, n, 1.0f, gu, d, h, l, 0.0f, dU, l);
	cpu_colsum(dbv, gv, n, d);
	cpu_colsum(dbu, gu, n, d);
	if (dh) {
		fp_cpu_sgemm(0, 0, n, l, d, 1.0f, gv, d, V, l, 0.0f, dh, l);
		fp_cpu_sgemm(0, 0, n, l, d, 1.0f, gu, d, U, l, 1.0f, dh, l);
		PAR_FOR for (int i = 0; i < n; i++)
			for (int q = 0; q < l; q++)
				dh[(size_t)i * l + q] += a[i] * dm[q];
	}
	return FP_OK;
}

/* ---- optimisers: the float arithmetic order of torch.optim ---- */

enum fp_status fp_cpu_adamw_update(struct fp_cpu *c, float *p, const float *g, float *m, float *v, size_t n,
                                   const struct fp_adamw *o, int decay, float grad_scale)
{
	float bc1 = 1.0f - powf(o->beta1, (float)o->step);
	float bc2s = sqrtf(1.0f - powf(o->beta2, (float)o->step));
	float step = o->lr / bc1, keep = decay ? 1.0f - o->lr * o->weight_decay : 1.0f;
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) {
		float gi = g[i] * grad_scale;
		p[i] *= keep;
		m[i] += (gi - m[i]) * (1.0f - o->beta1);
		v[i] = v[i] * o->beta2 + (1.0f - o->beta2) * gi * gi;
		p[i] -= step * m[i] / (sqrtf(v[i]) / bc2s + o->eps);
	}
	return FP_OK;
}

enum fp_status fp_cpu_sgd_update(struct fp_cpu *c, float *p, const float *g, float *buf, size_t n, float lr,
                                 float momentum, float weight_decay, int decay, float grad_scale)
{
	float wd = decay ? weight_decay : 0.0f;
	(void)c;
	PAR_FOR for (size_t i = 0; i < n; i++) {
		float gi = g[i] * grad_scale + wd * p[i];
		buf[i] = momentum * buf[i] + gi;
		p[i] -= lr * buf[i];
	}
	return FP_OK;
}

#define SUMSQ_BLOCK 65536

enum fp_status fp_cpu_sumsq(struct fp_cpu *c, const float *x, size_t n, double *host_acc)
{
	size_t nb = (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
	double *part = NULL, acc = 0;
	(void)c;
	FP_TRY(fp_calloc_array(nb ? nb : 1, sizeof(double), (void **)&part, "sumsq blocks"));
	PAR_FOR for (size_t b = 0; b < nb; b++) {
		double s = 0;
		size_t end = (b + 1) * SUMSQ_BLOCK < n ? (b + 1) * SUMSQ_BLOCK : n;
		for (size_t i = b * SUMSQ_BLOCK; i < end; i++)
			s += (double)x[i] * x[i];
		part[b] = s;
	}
	for (size_t b = 0; b < nb; b++)
		acc += part[b];
	free(part);
	*host_acc += acc;
	return FP_OK;
}

/* ---- aggregator reductions ---- */

enum fp_status fp_cpu_weighted_sum(struct fp_cpu *c, float *out, const float *xs, const float *host_w,
                                   int kcount, size_t p)
{
	(void)c;
	int big = (double)p * kcount > 4e6;
#pragma omp parallel for schedule(static) if (big)
	for (size_t j = 0; j < p; j++) {
		double acc = 0;
		for (int k = 0; k < kcount; k++)
			acc += (double)host_w[k] * xs[(size_t)k * p + j];
		out[j] = (float)acc;
	}
	return FP_OK;
}

enum fp_status fp_cpu_mean_rows(struct fp_cpu *c, float *out, const float *xs, int kcount, size_t p)
{
	(void)c;
	int big = (double)p * kcount > 4e6;
#pragma omp parallel for schedule(static) if (big)
	for (size_t j = 0; j < p; j++) {
		double acc = 0;
		for (int k = 0; k < kcount; k++)
			acc += xs[(size_t)k * p + j];
		out[j] = (float)(acc / kcount);
	}
	return FP_OK;
}

/* Insertion sort of a K-column: K is the number of sites (tens). */
static void sort_small(float *v, int k)
{
	for (int i = 1; i < k; i++) {
		float t = v[i];
		int j = i - 1;
		while (j >= 0 && v[j] > t) {
			v[j + 1] = v[j];
			j--;
		}
		v[j + 1] = t;
	}
}

#define AGG_MAX_K 1024

enum fp_status fp_cpu_coord_median(struct fp_cpu *c, float *out, const float *xs, int kcount, size_t p)
{
	(void)c;
	if (kcount > AGG_MAX_K)
		return FP_FAIL(FP_ERR_LIMIT, "kernels: coord_median over %d sites (limit %d)", kcount, AGG_MAX_K);
	PAR_FOR for (size_t j = 0; j < p; j++) {
		float col[AGG_MAX_K];
		for (int k = 0; k < kcount; k++)
			col[k] = xs[(size_t)k * p + j];
		sort_small(col, kcount);
		out[j] = kcount % 2 ? col[kcount / 2]
		                    : (float)(0.5 * ((double)col[kcount / 2 - 1] + col[kcount / 2]));
	}
	return FP_OK;
}

enum fp_status fp_cpu_trimmed_mean(struct fp_cpu *c, float *out, const float *xs, int kcount, size_t p, int trim)
{
	(void)c;
	if (kcount > AGG_MAX_K)
		return FP_FAIL(FP_ERR_LIMIT, "kernels: trimmed_mean over %d sites (limit %d)", kcount, AGG_MAX_K);
	PAR_FOR for (size_t j = 0; j < p; j++) {
		float col[AGG_MAX_K];
		double acc = 0;
		for (int k = 0; k < kcount; k++)
			col[k] = xs[(size_t)k * p + j];
		sort_small(col, kcount);
		for (int k = trim; k < kcount - trim; k++)
			acc += col[k];
		out[j] = (float)(acc / (kcount - 2 * trim));
	}
	return FP_OK;
}
