/*
 * test_kernels_grad.c: every backward of the reference (fp_kernels_ref.h)
 * equals central finite differences of its forward.
 *
 * For an op y = f(x1, x2, ...), the scalar L = sum_i r_i y_i with fixed random
 * r; the reference backward with dy = r must give dL/dx for every input:
 * |fd - analytic| <= 1e-6 + 1e-5 |analytic|, fd = (L(x+e) - L(x-e)) / 2e,
 * e = 1e-6, all in double. Inputs are drawn away from ReLU/max-pool kinks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_kernels_ref.h"
#include "fp_test.h"

static uint64_t rs = 0x2545F4914F6CDD1DULL;
static double urand(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (double)(rs >> 11) / 9007199254740992.0;
}

static double *rnd(size_t n, double lo, double hi)
{
	double *x = malloc(sizeof(double) * n);
	for (size_t i = 0; i < n; i++)
		x[i] = lo + (hi - lo) * urand();
	return x;
}

/* An op under test: its inputs, the projection r of its output, and a
 * forward that writes y. */
struct gc {
	double *in[7];
	size_t len[7];
	int nin;
	double *r, *y;
	size_t ny;
	void (*fwd)(struct gc *g);
	int i0, i1, i2, i3; /* shape integers */
	const void *shape;
	int flag;
};

static double gc_loss(struct gc *g)
{
	g->fwd(g);
	double acc = 0;
	for (size_t i = 0; i < g->ny; i++)
		acc += g->r[i] * g->y[i];
	return acc;
}

/* Compares analytic grads (one per input, NULL = skip) with finite differences. */
static void gc_check(struct gc *g, double **grads)
{
	const double e = 1e-6;
	for (int t = 0; t < g->nin; t++) {
		if (!grads[t])
			continue;
		for (size_t i = 0; i < g->len[t]; i++) {
			double *x = &g->in[t][i], keep = *x;
			*x = keep + e;
			double lp = gc_loss(g);
			*x = keep - e;
			double lm = gc_loss(g);
			*x = keep;
			double fd = (lp - lm) / (2 * e);
			CHECK_MSG(fabs(fd - grads[t][i]) <= 1e-6 + 1e-5 * fabs(grads[t][i]),
			          "input %d [%zu]: finite difference %.10g vs analytic %.10g", t, i, fd, grads[t][i]);
		}
	}
}

static void gc_setup(struct gc *g, size_t ny)
{
	g->ny = ny;
	g->r = rnd(ny, -1, 1);
	g->y = calloc(ny, sizeof(double));
}

static void gc_free(struct gc *g, double **grads)
{
	for (int t = 0; t < g->nin; t++) {
		free(g->in[t]);
		free(grads[t]);
	}
	free(g->r);
	free(g->y);
}

#define IN(g, t, n, lo, hi) ((g)->in[t] = rnd((n), (lo), (hi)), (g)->len[t] = (n), (g)->nin = (t) + 1 > (g)->nin ? (t) + 1 : (g)->nin)
#define GRAD(n) calloc((n), sizeof(double))

static void f_conv(struct gc *g) { fp_ref_conv2d_forward(g->shape, g->y, g->in[0], g->in[1], g->in[2]); }

FP_TEST(gradcheck_conv2d)
{
	const struct fp_conv2d_shape s = {2, 3, 6, 5, 2, 3, 3, 2, 1};
	struct gc g = {0};
	g.shape = &s;
	g.fwd = f_conv;
	IN(&g, 0, 2 * 3 * 6 * 5, -1, 1);
	IN(&g, 1, 2 * 3 * 9, -1, 1);
	IN(&g, 2, 2, -1, 1);
	gc_setup(&g, (size_t)2 * 2 * fp_conv2d_out_h(&s) * fp_conv2d_out_w(&s));
	double *gr[3] = {GRAD(g.len[0]), GRAD(g.len[1]), GRAD(2)};
	fp_ref_conv2d_backward(&s, gr[0], gr[1], gr[2], g.r, g.in[0], g.in[1]);
	gc_check(&g, gr);
	gc_free(&g, gr);
}

static void f_linear(struct gc *g) { fp_ref_linear_forward(g->y, g->in[0], g->in[1], g->in[2], g->i0, g->i1, g->i2); }

FP_TEST(gradcheck_linear)
{
	struct gc g = {0};
	g.i0 = 4, g.i1 = 5, g.i2 = 3;
	g.fwd = f_linear;
	IN(&g, 0, 20, -1, 1);
	IN(&g, 1, 15, -1, 1);
	IN(&g, 2, 3, -1, 1);
	gc_setup(&g, 12);
	double *gr[3] = {GRAD(20), GRAD(15), GRAD(3)};
	fp_ref_linear_backward(gr[0], gr[1], gr[2], g.r, g.in[0], g.in[1], 4, 5, 3);
	gc_check(&g, gr);
	gc_free(&g, gr);
}

static void f_relu(struct gc *g) { fp_ref_relu_forward(g->y, g->in[0], g->ny); }
static void f_gelu(struct gc *g) { fp_ref_gelu_forward(g->y, g->in[0], g->ny); }
static void f_drop(struct gc *g) { fp_ref_dropout_forward(g->y, g->in[0], g->ny, 0.25f, 77); }

FP_TEST(gradcheck_activations)
{
	void (*fw[3])(struct gc *) = {f_relu, f_gelu, f_drop};
	for (int a = 0; a < 3; a++) {
		struct gc g = {0};
		g.fwd = fw[a];
		IN(&g, 0, 40, -2, 2);
		for (int i = 0; i < 40; i++)
			if (fabs(g.in[0][i]) < 0.05)
				g.in[0][i] = 0.5;
		gc_setup(&g, 40);
		double *gr[1] = {GRAD(40)};
		if (a == 0) {
			double *y = calloc(40, sizeof(double));
			fp_ref_relu_forward(y, g.in[0], 40);
			fp_ref_relu_backward(gr[0], g.r, y, 40);
			free(y);
		} else if (a == 1) {
			fp_ref_gelu_backward(gr[0], g.r, g.in[0], 40);
		} else {
			fp_ref_dropout_backward(gr[0], g.r, 40, 0.25f, 77);
		}
		gc_check(&g, gr);
		gc_free(&g, gr);
	}
}

static void f_maxpool(struct gc *g) { fp_ref_maxpool2d_forward(g->shape, g->y, g->in[0]); }
static void f_avgpool(struct gc *g) { fp_ref_avgpool2d_forward(g->shape, g->y, g->in[0]); }
static void f_gap(struct gc *g) { fp_ref_gap_forward(g->y, g->in[0], 2, 3, 10); }

FP_TEST(gradcheck_pooling)
{
	const struct fp_pool2d_shape s = {2, 2, 7, 6, 3, 2, 1};
	size_t nx = 2 * 2 * 7 * 6, ny = (size_t)2 * 2 * fp_pool2d_out_h(&s) * fp_pool2d_out_w(&s);
	for (int a = 0; a < 3; a++) {
		struct gc g = {0};
		g.shape = &s;
		g.fwd = a == 0 ? f_maxpool : a == 1 ? f_avgpool : f_gap;
		IN(&g, 0, a == 2 ? 60 : nx, -1, 1);
		gc_setup(&g, a == 2 ? 6 : ny);
		double *gr[1] = {GRAD(g.len[0])};
		if (a == 0)
			fp_ref_maxpool2d_backward(&s, gr[0], g.r, g.in[0]);
		else if (a == 1)
			fp_ref_avgpool2d_backward(&s, gr[0], g.r);
		else
			fp_ref_gap_backward(gr[0], g.r, 2, 3, 10);
		gc_check(&g, gr);
		gc_free(&g, gr);
	}
}

static void f_gn(struct gc *g)
{
	double mean[16], rstd[16];
	if (g->flag)
		fp_ref_batchnorm_forward(g->y, mean, rstd, g->in[0], g->in[1], g->in[2], 3, 4, 5, 1e-5);
	else
		fp_ref_groupnorm_forward(g->y, mean, rstd, g->in[0], g->in[1], g->in[2], 3, 4, 5, 2, 1e-5);
}

FP_TEST(gradcheck_norms)
{
	for (int bn = 0; bn < 2; bn++) {
		struct gc g = {0};
		double mean[16], rstd[16];
		g.fwd = f_gn;
		g.flag = bn;
		IN(&g, 0, 60, -2, 2);
		IN(&g, 1, 4, 0.5, 1.5);
		IN(&g, 2, 4, -1, 1);
		gc_setup(&g, 60);
		double *gr[3] = {GRAD(60), GRAD(4), GRAD(4)};
		if (bn) {
			fp_ref_batchnorm_forward(g.y, mean, rstd, g.in[0], g.in[1], g.in[2], 3, 4, 5, 1e-5);
			fp_ref_batchnorm_backward(gr[0], gr[1], gr[2], g.r, g.in[0], mean, rstd, g.in[1], 3, 4, 5);
		} else {
			fp_ref_groupnorm_forward(g.y, mean, rstd, g.in[0], g.in[1], g.in[2], 3, 4, 5, 2, 1e-5);
			fp_ref_groupnorm_backward(gr[0], gr[1], gr[2], g.r, g.in[0], mean, rstd, g.in[1], 3, 4, 5, 2);
		}
		gc_check(&g, gr);
		gc_free(&g, gr);
	}
}

static const int32_t labels[5] = {2, 0, 1, 2, 1};
static void f_xent(struct gc *g)
{
	double p[20];
	g->y[0] = fp_ref_softmax_xent_forward(p, g->in[0], labels, g->in[1], 5, 4);
}
static void f_bce(struct gc *g) { g->y[0] = fp_ref_bce_forward(g->in[0], g->in[1], 5); }
static void f_mse(struct gc *g) { g->y[0] = fp_ref_mse_forward(g->in[0], g->in[1], 5); }

FP_TEST(gradcheck_losses)
{
	struct gc g = {0};
	double p[20];
	g.fwd = f_xent;
	IN(&g, 0, 20, -2, 2);
	IN(&g, 1, 4, 0.5, 2);
	gc_setup(&g, 1);
	double *gr[2] = {GRAD(20), NULL};
	fp_ref_softmax_xent_forward(p, g.in[0], labels, g.in[1], 5, 4);
	fp_ref_softmax_xent_backward(gr[0], p, labels, g.in[1], 5, 4, g.r[0]);
	gc_check(&g, gr);
	gc_free(&g, gr);
	for (int a = 0; a < 2; a++) {
		struct gc h = {0};
		h.fwd = a ? f_mse : f_bce;
		IN(&h, 0, 5, -2, 2);
		IN(&h, 1, 5, 0, 1);
		gc_setup(&h, 1);
		double *hg[2] = {GRAD(5), NULL};
		if (a)
			fp_ref_mse_backward(hg[0], h.in[0], h.in[1], 5, h.r[0]);
		else
			fp_ref_bce_backward(hg[0], h.in[0], h.in[1], 5, h.r[0]);
		gc_check(&h, hg);
		gc_free(&h, hg);
	}
}

static const double cox_time[9] = {4, 2, 2, 7, 1, 2, 7, 3, 4};
static const double cox_event[9] = {1, 1, 1, 0, 1, 0, 1, 1, 1};
static void f_cox(struct gc *g)
{
	g->y[0] = fp_ref_cox_forward(g->in[0], cox_time, cox_event, g->nin > 1 ? g->in[1] : NULL, 9,
	                             g->i0, g->i1);
}

FP_TEST(gradcheck_cox)
{
	for (int ties = 0; ties < 2; ties++)
		for (int red = 0; red < 2; red++)
			for (int weighted = 0; weighted < 2; weighted++) {
				struct gc g = {0};
				g.fwd = f_cox;
				g.i0 = ties;
				g.i1 = red;
				IN(&g, 0, 9, -1, 1);
				if (weighted)
					IN(&g, 1, 9, 0.3, 2);
				gc_setup(&g, 1);
				double *gr[2] = {GRAD(9), NULL};
				fp_ref_cox_backward(gr[0], g.in[0], cox_time, cox_event, weighted ? g.in[1] : NULL, 9,
				                    ties, red, g.r[0]);
				gc_check(&g, gr);
				gc_free(&g, gr);
			}
}

static void f_attn(struct gc *g)
{
	double a[6];
	fp_ref_attnpool_forward(g->y, a, g->in[0], g->in[1], g->in[2], g->in[3], g->in[4], g->in[5], 6, 4, 3);
}

FP_TEST(gradcheck_attnpool)
{
	struct gc g = {0};
	g.fwd = f_attn;
	IN(&g, 0, 24, -1, 1);
	IN(&g, 1, 12, -1, 1);
	IN(&g, 2, 3, -.5, .5);
	IN(&g, 3, 12, -1, 1);
	IN(&g, 4, 3, -.5, .5);
	IN(&g, 5, 3, -1, 1);
	gc_setup(&g, 4);
	double *gr[6] = {GRAD(24), GRAD(12), GRAD(3), GRAD(12), GRAD(3), GRAD(3)};
	fp_ref_attnpool_backward(gr[0], gr[1], gr[2], gr[3], gr[4], gr[5], g.r, g.in[0], g.in[1], g.in[2],
	                         g.in[3], g.in[4], g.in[5], 6, 4, 3);
	gc_check(&g, gr);
	gc_free(&g, gr);
}
