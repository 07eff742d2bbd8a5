/*
 * ref.c: the plain-C reference (oracle) of every kernel; see fp_kernels_ref.h.
 * Written for obviousness, not speed: straight loops in double, one thread.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_kernels_ref.h"
#include "fp_kernels_rng.h"

void fp_ref_relu_forward(double *y, const double *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] > 0 ? x[i] : 0;
}

void fp_ref_relu_backward(double *dx, const double *dy, const double *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = y[i] > 0 ? dy[i] : 0;
}

void fp_ref_gelu_forward(double *y, const double *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
}

void fp_ref_gelu_backward(double *dx, const double *dy, const double *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double cdf = 0.5 * (1.0 + erf(x[i] / sqrt(2.0)));
		double pdf = exp(-0.5 * x[i] * x[i]) / sqrt(2.0 * M_PI);
		dx[i] = dy[i] * (cdf + x[i] * pdf);
	}
}

int fp_kernels_dropout_keep(uint64_t seed, uint64_t i, float p)
{
	return fp_rng_uniform(seed, i) >= p;
}

void fp_ref_dropout_forward(double *y, const double *x, size_t n, float p, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		y[i] = fp_kernels_dropout_keep(seed, i, p) ? x[i] / (1.0 - (double)p) : 0;
}

void fp_ref_dropout_backward(double *dx, const double *dy, size_t n, float p, uint64_t seed)
{
	fp_ref_dropout_forward(dx, dy, n, p, seed);
}

void fp_ref_conv2d_forward(const struct fp_conv2d_shape *s, double *y, const double *x,
                           const double *w, const double *b)
{
	int oh = fp_conv2d_out_h(s), ow = fp_conv2d_out_w(s);
	for (int n = 0; n < s->n; n++)
	for (int co = 0; co < s->c_out; co++)
	for (int i = 0; i < oh; i++)
	for (int j = 0; j < ow; j++) {
		double acc = b ? b[co] : 0;
		for (int ci = 0; ci < s->c_in; ci++)
		for (int u = 0; u < s->kh; u++)
		for (int v = 0; v < s->kw; v++) {
			int hi = i * s->stride - s->pad + u, wi = j * s->stride - s->pad + v;
			if (hi < 0 || hi >= s->h || wi < 0 || wi >= s->w)
				continue;
			acc += x[(((size_t)n * s->c_in + ci) * s->h + hi) * s->w + wi] *
			       w[(((size_t)co * s->c_in + ci) * s->kh + u) * s->kw + v];
		}
		y[(((size_t)n * s->c_out + co) * oh + i) * ow + j] = acc;
	}
}

void fp_ref_conv2d_backward(const struct fp_conv2d_shape *s, double *dx, double *dw, double *db,
                            const double *dy, const double *x, const double *w)
{
	int oh = fp_conv2d_out_h(s), ow = fp_conv2d_out_w(s);
	if (dx)
		memset(dx, 0, sizeof(double) * s->n * s->c_in * s->h * s->w);
	if (dw)
		memset(dw, 0, sizeof(double) * s->c_out * s->c_in * s->kh * s->kw);
	if (db)
		memset(db, 0, sizeof(double) * s->c_out);
	for (int n = 0; n < s->n; n++)
	for (int co = 0; co < s->c_out; co++)
	for (int i = 0; i < oh; i++)
	for (int j = 0; j < ow; j++) {
		double g = dy[(((size_t)n * s->c_out + co) * oh + i) * ow + j];
		if (db)
			db[co] += g;
		for (int ci = 0; ci < s->c_in; ci++)
		for (int u = 0; u < s->kh; u++)
		for (int v = 0; v < s->kw; v++) {
			int hi = i * s->stride - s->pad + u, wi = j * s->stride - s->pad + v;
			if (hi < 0 || hi >= s->h || wi < 0 || wi >= s->w)
				continue;
			size_t xi = (((size_t)n * s->c_in + ci) * s->h + hi) * s->w + wi;
			size_t wk = (((size_t)co * s->c_in + ci) * s->kh + u) * s->kw + v;
			if (dx)
				dx[xi] += g * w[wk];
			if (dw)
				dw[wk] += g * x[xi];
		}
	}
}

/* Index into x of the first maximum of the window at output (i, j), or -1 if
 * the window holds only padding. */
static long ref_pool_argmax(const struct fp_pool2d_shape *s, const double *xc, int i, int j)
{
	long best = -1;
	for (int u = 0; u < s->k; u++)
	for (int v = 0; v < s->k; v++) {
		int hi = i * s->stride - s->pad + u, wi = j * s->stride - s->pad + v;
		if (hi < 0 || hi >= s->h || wi < 0 || wi >= s->w)
			continue;
		long idx = (long)hi * s->w + wi;
		if (best < 0 || xc[idx] > xc[best])
			best = idx;
	}
	return best;
}

void fp_ref_maxpool2d_forward(const struct fp_pool2d_shape *s, double *y, const double *x)
{
	int oh = fp_pool2d_out_h(s), ow = fp_pool2d_out_w(s);
	for (long nc = 0; nc < (long)s->n * s->c; nc++) {
		const double *xc = x + nc * s->h * s->w;
		for (int i = 0; i < oh; i++)
		for (int j = 0; j < ow; j++) {
			long b = ref_pool_argmax(s, xc, i, j);
			y[(nc * oh + i) * ow + j] = b < 0 ? -INFINITY : xc[b];
		}
	}
}

void fp_ref_maxpool2d_backward(const struct fp_pool2d_shape *s, double *dx, const double *dy, const double *x)
{
	int oh = fp_pool2d_out_h(s), ow = fp_pool2d_out_w(s);
	memset(dx, 0, sizeof(double) * s->n * s->c * s->h * s->w);
	for (long nc = 0; nc < (long)s->n * s->c; nc++) {
		const double *xc = x + nc * s->h * s->w;
		for (int i = 0; i < oh; i++)
		for (int j = 0; j < ow; j++) {
			long b = ref_pool_argmax(s, xc, i, j);
			if (b >= 0)
				dx[nc * s->h * s->w + b] += dy[(nc * oh + i) * ow + j];
		}
	}
}

void fp_ref_avgpool2d_forward(const struct fp_pool2d_shape *s, double *y, const double *x)
{
	int oh = fp_pool2d_out_h(s), ow = fp_pool2d_out_w(s);
	for (long nc = 0; nc < (long)s->n * s->c; nc++)
	for (int i = 0; i < oh; i++)
	for (int j = 0; j < ow; j++) {
		double acc = 0;
		for (int u = 0; u < s->k; u++)
		for (int v = 0; v < s->k; v++) {
			int hi = i * s->stride - s->pad + u, wi = j * s->stride - s->pad + v;
			if (hi >= 0 && hi < s->h && wi >= 0 && wi < s->w)
				acc += x[(nc * s->h + hi) * s->w + wi];
		}
		y[(nc * oh + i) * ow + j] = acc / (s->k * s->k);
	}
}

void fp_ref_avgpool2d_backward(const struct fp_pool2d_shape *s, double *dx, const double *dy)
{
	int oh = fp_pool2d_out_h(s), ow = fp_pool2d_out_w(s);
	memset(dx, 0, sizeof(double) * s->n * s->c * s->h * s->w);
	for (long nc = 0; nc < (long)s->n * s->c; nc++)
	for (int i = 0; i < oh; i++)
	for (int j = 0; j < ow; j++) {
		double g = dy[(nc * oh + i) * ow + j] / (s->k * s->k);
		for (int u = 0; u < s->k; u++)
		for (int v = 0; v < s->k; v++) {
			int hi = i * s->stride - s->pad + u, wi = j * s->stride - s->pad + v;
			if (hi >= 0 && hi < s->h && wi >= 0 && wi < s->w)
				dx[(nc * s->h + hi) * s->w + wi] += g;
		}
	}
}

void fp_ref_gap_forward(double *y, const double *x, int n, int c, int hw)
{
	for (long i = 0; i < (long)n * c; i++) {
		double acc = 0;
		for (int j = 0; j < hw; j++)
			acc += x[i * hw + j];
		y[i] = acc / hw;
	}
}

void fp_ref_gap_backward(double *dx, const double *dy, int n, int c, int hw)
{
	for (long i = 0; i < (long)n * c; i++)
		for (int j = 0; j < hw; j++)
			dx[i * hw + j] = dy[i] / hw;
}

void fp_ref_linear_forward(double *y, const double *x, const double *w, const double *b, int n, int in, int out)
{
	for (int i = 0; i < n; i++)
		for (int o = 0; o < out; o++) {
			double acc = b ? b[o] : 0;
			for (int k = 0; k < in; k++)
				acc += x[(size_t)i * in + k] * w[(size_t)o * in + k];
			y[(size_t)i * out + o] = acc;
		}
}

void fp_ref_linear_backward(double *dx, double *dw, double *db, const double *dy, const double *x,
                            const double *w, int n, int in, int out)
{
	if (dx)
		for (int i = 0; i < n; i++)
			for (int k = 0; k < in; k++) {
				double acc = 0;
				for (int o = 0; o < out; o++)
					acc += dy[(size_t)i * out + o] * w[(size_t)o * in + k];
				dx[(size_t)i * in + k] = acc;
			}
	if (dw)
		for (int o = 0; o < out; o++)
			for (int k = 0; k < in; k++) {
				double acc = 0;
				for (int i = 0; i < n; i++)
					acc += dy[(size_t)i * out + o] * x[(size_t)i * in + k];
				dw[(size_t)o * in + k] = acc;
			}
	if (db)
		for (int o = 0; o < out; o++) {
			double acc = 0;
			for (int i = 0; i < n; i++)
				acc += dy[(size_t)i * out + o];
			db[o] = acc;
		}
}

/* Normalisation shared by GroupNorm and BatchNorm: a "group" is a set of
 * elements sharing one mean and rstd; channel(e) picks gamma/beta. Both are
 * written as loops over (n, c, j) with a group index function. */
static long gn_group(int n_i, int c_i, int c, int groups) { return (long)n_i * groups + c_i / (c / groups); }

void fp_ref_groupnorm_forward(double *y, double *mean, double *rstd, const double *x, const double *gamma,
                              const double *beta, int n, int c, int hw, int groups, double eps)
{
	long ng = (long)n * groups, per = (long)(c / groups) * hw;
	for (long g = 0; g < ng; g++) {
		const double *xg = x + g * per;
		double mu = 0, var = 0;
		for (long j = 0; j < per; j++)
			mu += xg[j];
		mu /= per;
		for (long j = 0; j < per; j++)
			var += (xg[j] - mu) * (xg[j] - mu);
		var /= per;
		mean[g] = mu;
		rstd[g] = 1.0 / sqrt(var + eps);
	}
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < c; ch++) {
			long g = gn_group(i, ch, c, groups);
			for (int j = 0; j < hw; j++) {
				size_t e = ((size_t)i * c + ch) * hw + j;
				y[e] = (x[e] - mean[g]) * rstd[g] * gamma[ch] + beta[ch];
			}
		}
}

void fp_ref_groupnorm_backward(double *dx, double *dgamma, double *dbeta, const double *dy, const double *x,
                               const double *mean, const double *rstd, const double *gamma,
                               int n, int c, int hw, int groups)
{
	int cpg = c / groups;
	if (dgamma)
		memset(dgamma, 0, sizeof(double) * c);
	if (dbeta)
		memset(dbeta, 0, sizeof(double) * c);
	for (int i = 0; i < n; i++)
		for (int g = 0; g < groups; g++) {
			long gi = (long)i * groups + g;
			double s1 = 0, s2 = 0, per = (double)cpg * hw;
			for (int ch = g * cpg; ch < (g + 1) * cpg; ch++)
				for (int j = 0; j < hw; j++) {
					size_t e = ((size_t)i * c + ch) * hw + j;
					double xh = (x[e] - mean[gi]) * rstd[gi];
					s1 += dy[e] * gamma[ch];
					s2 += dy[e] * gamma[ch] * xh;
					if (dgamma)
						dgamma[ch] += dy[e] * xh;
					if (dbeta)
						dbeta[ch] += dy[e];
				}
			if (!dx)
				continue;
			for (int ch = g * cpg; ch < (g + 1) * cpg; ch++)
				for (int j = 0; j < hw; j++) {
					size_t e = ((size_t)i * c + ch) * hw + j;
					double xh = (x[e] - mean[gi]) * rstd[gi];
					dx[e] = rstd[gi] * (dy[e] * gamma[ch] - s1 / per - xh * s2 / per);
				}
		}
}

void fp_ref_batchnorm_forward(double *y, double *mean, double *rstd, const double *x, const double *gamma,
                              const double *beta, int n, int c, int hw, double eps)
{
	double m = (double)n * hw;
	for (int ch = 0; ch < c; ch++) {
		double mu = 0, var = 0;
		for (int i = 0; i < n; i++)
			for (int j = 0; j < hw; j++)
				mu += x[((size_t)i * c + ch) * hw + j];
		mu /= m;
		for (int i = 0; i < n; i++)
			for (int j = 0; j < hw; j++) {
				double d = x[((size_t)i * c + ch) * hw + j] - mu;
				var += d * d;
			}
		var /= m;
		mean[ch] = mu;
		rstd[ch] = 1.0 / sqrt(var + eps);
		for (int i = 0; i < n; i++)
			for (int j = 0; j < hw; j++) {
				size_t e = ((size_t)i * c + ch) * hw + j;
				y[e] = (x[e] - mu) * rstd[ch] * gamma[ch] + beta[ch];
			}
	}
}

void fp_ref_batchnorm_backward(double *dx, double *dgamma, double *dbeta, const double *dy, const double *x,
                               const double *mean, const double *rstd, const double *gamma, int n, int c, int hw)
{
	double m = (double)n * hw;
	for (int ch = 0; ch < c; ch++) {
		double sdy = 0, sdyx = 0;
		for (int i = 0; i < n; i++)
			for (int j = 0; j < hw; j++) {
				size_t e = ((size_t)i * c + ch) * hw + j;
				sdy += dy[e];
				sdyx += dy[e] * (x[e] - mean[ch]) * rstd[ch];
			}
		if (dgamma)
			dgamma[ch] = sdyx;
		if (dbeta)
			dbeta[ch] = sdy;
		if (!dx)
			continue;
		for (int i = 0; i < n; i++)
			for (int j = 0; j < hw; j++) {
				size_t e = ((size_t)i * c + ch) * hw + j;
				double xh = (x[e] - mean[ch]) * rstd[ch];
				dx[e] = gamma[ch] * rstd[ch] * (dy[e] - sdy / m - xh * sdyx / m);
			}
	}
}

double fp_ref_softmax_xent_forward(double *probs, const double *logits, const int32_t *labels,
                                   const double *class_w, int n, int c)
{
	double num = 0, den = 0;
	for (int i = 0; i < n; i++) {
		const double *z = logits + (size_t)i * c;
		double mx = z[0], sum = 0;
		for (int j = 1; j < c; j++)
			mx = z[j] > mx ? z[j] : mx;
		for (int j = 0; j < c; j++)
			sum += exp(z[j] - mx);
		for (int j = 0; j < c; j++)
			probs[(size_t)i * c + j] = exp(z[j] - mx) / sum;
		double wi = class_w ? class_w[labels[i]] : 1.0;
		num += wi * (log(sum) + mx - z[labels[i]]);
		den += wi;
	}
	return num / den;
}

void fp_ref_softmax_xent_backward(double *dlogits, const double *probs, const int32_t *labels,
                                  const double *class_w, int n, int c, double dloss)
{
	double den = 0;
	for (int i = 0; i < n; i++)
		den += class_w ? class_w[labels[i]] : 1.0;
	for (int i = 0; i < n; i++) {
		double wi = class_w ? class_w[labels[i]] : 1.0;
		for (int j = 0; j < c; j++)
			dlogits[(size_t)i * c + j] = dloss * wi * (probs[(size_t)i * c + j] - (j == labels[i])) / den;
	}
}

double fp_ref_bce_forward(const double *logits, const double *targets, int n)
{
	double acc = 0;
	for (int i = 0; i < n; i++) {
		double z = logits[i];
		acc += (z > 0 ? z : 0) - z * targets[i] + log1p(exp(-fabs(z)));
	}
	return acc / n;
}

void fp_ref_bce_backward(double *dlogits, const double *logits, const double *targets, int n, double dloss)
{
	for (int i = 0; i < n; i++)
		dlogits[i] = dloss * (1.0 / (1.0 + exp(-logits[i])) - targets[i]) / n;
}

double fp_ref_mse_forward(const double *pred, const double *target, int n)
{
	double acc = 0;
	for (int i = 0; i < n; i++)
		acc += (pred[i] - target[i]) * (pred[i] - target[i]);
	return acc / n;
}

void fp_ref_mse_backward(double *dpred, const double *pred, const double *target, int n, double dloss)
{
	for (int i = 0; i < n; i++)
		dpred[i] = dloss * 2.0 * (pred[i] - target[i]) / n;
}

/* Cox: for each distinct event time t (visited once, at the first subject
 * holding it) with events D: S_R = sum over T_j >= t of w_j e^eta_j, S_H = that
 * sum over D, W_D = sum of weights in D, d = |D|. Breslow adds
 * W_D log S_R; Efron adds (W_D / d) sum_{r<d} log(S_R - r/d S_H).
 * O(N^2): the reference favours the formula's shape over speed. */
static int ref_cox_first_event_at(const double *time, const double *event, int i)
{
	if (!(event[i] > 0.5))
		return 0;
	for (int j = 0; j < i; j++)
		if (event[j] > 0.5 && time[j] == time[i])
			return 0;
	return 1;
}

static double ref_cox_wsum(const double *weight, const double *event, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += (event[i] > 0.5) * (weight ? weight[i] : 1.0);
	return s;
}

double fp_ref_cox_forward(const double *eta, const double *time, const double *event, const double *weight,
                          int n, enum fp_cox_ties ties, enum fp_cox_reduction red)
{
	double nll = 0, shift = -INFINITY;
	for (int i = 0; i < n; i++)
		shift = eta[i] > shift ? eta[i] : shift;
	for (int i = 0; i < n; i++) {
		if (!ref_cox_first_event_at(time, event, i))
			continue;
		double sr = 0, sh = 0, wd = 0, weta = 0;
		int d = 0;
		for (int j = 0; j < n; j++) {
			double wj = weight ? weight[j] : 1.0, e = wj * exp(eta[j] - shift);
			if (time[j] >= time[i])
				sr += e;
			if (event[j] > 0.5 && time[j] == time[i]) {
				sh += e;
				wd += wj;
				weta += wj * eta[j];
				d++;
			}
		}
		double logs = 0;
		if (ties == FP_COX_BRESLOW)
			logs = wd * (log(sr) + shift);
		else
			for (int r = 0; r < d; r++)
				logs += (wd / d) * (log(sr - (double)r / d * sh) + shift);
		nll += logs - weta;
	}
	double ne = ref_cox_wsum(weight, event, n);
	if (ne <= 0)
		return 0;
	return red == FP_COX_MEAN ? nll / ne : nll;
}

void fp_ref_cox_backward(double *deta, const double *eta, const double *time, const double *event,
                         const double *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red,
                         double dloss)
{
	double shift = -INFINITY, ne = ref_cox_wsum(weight, event, n);
	for (int k = 0; k < n; k++) {
		deta[k] = 0;
		shift = eta[k] > shift ? eta[k] : shift;
	}
	if (ne <= 0)
		return;
	for (int i = 0; i < n; i++) {
		if (!ref_cox_first_event_at(time, event, i))
			continue;
		double sr = 0, sh = 0, wd = 0;
		int d = 0;
		for (int j = 0; j < n; j++) {
			double wj = weight ? weight[j] : 1.0, e = wj * exp(eta[j] - shift);
			if (time[j] >= time[i])
				sr += e;
			if (event[j] > 0.5 && time[j] == time[i]) {
				sh += e;
				wd += wj;
				d++;
			}
		}
		for (int k = 0; k < n; k++) {
			double wk = weight ? weight[k] : 1.0, ek = wk * exp(eta[k] - shift);
			int at_risk = time[k] >= time[i], tied = event[k] > 0.5 && time[k] == time[i];
			if (tied)
				deta[k] -= wk;
			if (ties == FP_COX_BRESLOW) {
				deta[k] += at_risk * wd * ek / sr;
			} else {
				for (int r = 0; r < d; r++) {
					double f = (double)r / d;
					deta[k] += (wd / d) * (at_risk * ek - f * tied * ek) / (sr - f * sh);
				}
			}
		}
	}
	double scale = dloss / (red == FP_COX_MEAN ? ne : 1.0);
	for (int k = 0; k < n; k++)
		deta[k] *= scale;
}

static double sigm(double z) { return 1.0 / (1.0 + exp(-z)); }

/* Per instance: gv = tanh(V h + bv), gu = sigmoid(U h + bu), s = w.(gv*gu). */
static void ref_attn_gates(double *gv, double *gu, const double *hn, const double *V, const double *bv,
                           const double *U, const double *bu, int l, int d)
{
	for (int j = 0; j < d; j++) {
		double zv = bv[j], zu = bu[j];
		for (int q = 0; q < l; q++) {
			zv += V[(size_t)j * l + q] * hn[q];
			zu += U[(size_t)j * l + q] * hn[q];
		}
		gv[j] = tanh(zv);
		gu[j] = sigm(zu);
	}
}

void fp_ref_attnpool_forward(double *m, double *a, const double *h, const double *V, const double *bv,
                             const double *U, const double *bu, const double *w, int n, int l, int d)
{
	double *gv = malloc(sizeof(double) * d), *gu = malloc(sizeof(double) * d);
	double mx = -INFINITY, sum = 0;
	for (int i = 0; i < n; i++) {
		ref_attn_gates(gv, gu, h + (size_t)i * l, V, bv, U, bu, l, d);
		double s = 0;
		for (int j = 0; j < d; j++)
			s += w[j] * gv[j] * gu[j];
		a[i] = s;
		mx = s > mx ? s : mx;
	}
	for (int i = 0; i < n; i++)
		sum += exp(a[i] - mx);
	for (int i = 0; i < n; i++)
		a[i] = exp(a[i] - mx) / sum;
	for (int q = 0; q < l; q++) {
		double acc = 0;
		for (int i = 0; i < n; i++)
			acc += a[i] * h[(size_t)i * l + q];
		m[q] = acc;
	}
	free(gv);
	free(gu);
}

void fp_ref_attnpool_backward(double *dh, double *dV, double *dbv, double *dU, double *dbu, double *dw,
                              const double *dm, const double *h, const double *V, const double *bv,
                              const double *U, const double *bu, const double *w, int n, int l, int d)
{
	double *a = malloc(sizeof(double) * n), *m = malloc(sizeof(double) * l);
	double *da = malloc(sizeof(double) * n);
	double *gv = malloc(sizeof(double) * d), *gu = malloc(sizeof(double) * d);
	fp_ref_attnpool_forward(m, a, h, V, bv, U, bu, w, n, l, d);
	double ada = 0;
	for (int i = 0; i < n; i++) {
		da[i] = 0;
		for (int q = 0; q < l; q++)
			da[i] += dm[q] * h[(size_t)i * l + q];
		ada += a[i] * da[i];
	}
	memset(dV, 0, sizeof(double) * d * l);
	memset(dU, 0, sizeof(double) * d * l);
	memset(dbv, 0, sizeof(double) * d);
	memset(dbu, 0, sizeof(double) * d);
	memset(dw, 0, sizeof(double) * d);
	for (int i = 0; i < n; i++) {
		const double *hn = h + (size_t)i * l;
		double ds = a[i] * (da[i] - ada);
		ref_attn_gates(gv, gu, hn, V, bv, U, bu, l, d);
		if (dh)
			for (int q = 0; q < l; q++)
				dh[(size_t)i * l + q] = a[i] * dm[q];
		for (int j = 0; j < d; j++) {
			double dg = ds * w[j];
			double dzv = dg * gu[j] * (1 - gv[j] * gv[j]);
			double dzu = dg * gv[j] * gu[j] * (1 - gu[j]);
			dw[j] += ds * gv[j] * gu[j];
			dbv[j] += dzv;
			dbu[j] += dzu;
			for (int q = 0; q < l; q++) {
				dV[(size_t)j * l + q] += dzv * hn[q];
				dU[(size_t)j * l + q] += dzu * hn[q];
				if (dh)
					dh[(size_t)i * l + q] += dzv * V[(size_t)j * l + q] + dzu * U[(size_t)j * l + q];
			}
		}
	}
	free(a);
	free(m);
	free(da);
	free(gv);
	free(gu);
}

void fp_ref_adamw_update(double *p, const double *g, double *m, double *v, size_t n,
                         const struct fp_adamw *o, int decay, double grad_scale)
{
	double bc1 = 1 - pow(o->beta1, (double)o->step), bc2 = 1 - pow(o->beta2, (double)o->step);
	for (size_t i = 0; i < n; i++) {
		double gi = g[i] * grad_scale;
		if (decay)
			p[i] -= (double)o->lr * o->weight_decay * p[i];
		m[i] = o->beta1 * m[i] + (1 - (double)o->beta1) * gi;
		v[i] = o->beta2 * v[i] + (1 - (double)o->beta2) * gi * gi;
		p[i] -= o->lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + o->eps);
	}
}

void fp_ref_sgd_update(double *p, const double *g, double *buf, size_t n, double lr, double momentum,
                       double weight_decay, int decay, double grad_scale)
{
	for (size_t i = 0; i < n; i++) {
		double gi = g[i] * grad_scale + (decay ? weight_decay * p[i] : 0);
		buf[i] = momentum * buf[i] + gi;
		p[i] -= lr * buf[i];
	}
}

void fp_ref_weighted_sum(double *out, const double *xs, const double *w, int kcount, size_t p)
{
	for (size_t j = 0; j < p; j++) {
		double acc = 0;
		for (int k = 0; k < kcount; k++)
			acc += w[k] * xs[(size_t)k * p + j];
		out[j] = acc;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void fp_ref_coord_median(double *out, const double *xs, int kcount, size_t p)
{
	double *col = malloc(sizeof(double) * kcount);
	for (size_t j = 0; j < p; j++) {
		for (int k = 0; k < kcount; k++)
			col[k] = xs[(size_t)k * p + j];
		qsort(col, kcount, sizeof(double), cmp_double);
		out[j] = kcount % 2 ? col[kcount / 2] : 0.5 * (col[kcount / 2 - 1] + col[kcount / 2]);
	}
	free(col);
}

void fp_ref_trimmed_mean(double *out, const double *xs, int kcount, size_t p, int trim)
{
	double *col = malloc(sizeof(double) * kcount);
	for (size_t j = 0; j < p; j++) {
		for (int k = 0; k < kcount; k++)
			col[k] = xs[(size_t)k * p + j];
		qsort(col, kcount, sizeof(double), cmp_double);
		double acc = 0;
		for (int k = trim; k < kcount - trim; k++)
			acc += col[k];
		out[j] = acc / (kcount - 2 * trim);
	}
	free(col);
}

double fp_ref_l2_norm(const double *x, size_t n)
{
	double acc = 0;
	for (size_t i = 0; i < n; i++)
		acc += x[i] * x[i];
	return sqrt(acc);
}
