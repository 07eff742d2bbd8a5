/*
 * test_kernels.c: kernels/ against its plain-C reference.
 *
 *  - <op>:           the CPU backend matches fp_ref_* (fp_kernels_ref.h) on
 *                    random inputs; float vs double, |got - ref| <= 2e-4 + 2e-4 |ref|
 *                    (reductions of a few hundred float terms).
 *  - gpu_<op>:       the same check on a CUDA handle (label gpu; exit 77 =
 *                    skipped when no GPU answers).
 *  - gradcheck_<op>: the reference backward equals central finite differences
 *                    of the reference forward (double, eps 1e-6,
 *                    |fd - analytic| <= 1e-6 + 1e-5 |analytic|).
 *  - threads_*:      1 and 2 CPU threads give bit-identical results.
 *  - cox_torchsurv_*: torchsurv's documented values (1.0071 mean, 3.0214 sum).
 *  - augment_tiles, mean_rows: bit-for-bit statements (the code they
 *                    replaced); gpu_augment_tiles: the CUDA op within 1e-5 of
 *                    the CPU op (bit for bit without augmentation);
 *                    gpu_mean_rows: bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp_kernels.h"
#include "fp_kernels_ref.h"
#include "fp_test.h"

#define TOL_ABS 2e-4
#define TOL_REL 2e-4

/* ---- helpers ---- */

static uint64_t rng_state = 88172645463325252ULL;
static double urand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}

static float *rnd(size_t n, double lo, double hi)
{
	float *x = malloc(sizeof(float) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(lo + (hi - lo) * urand());
	return x;
}

static double *dbl(const float *f, size_t n)
{
	double *d = malloc(sizeof(double) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		d[i] = f[i];
	return d;
}

static double *dzeros(size_t n)
{
	return calloc(n ? n : 1, sizeof(double));
}

static struct fp_kernels *open_backend(int cuda, int threads)
{
	struct fp_kernels_options o;
	struct fp_kernels *k = NULL;
	fp_kernels_options_default(&o);
	o.threads = threads;
	if (cuda) {
		if (!fp_kernels_cuda_available()) {
			printf("skipped: no CUDA device\n");
			exit(77);
		}
		o.backend = FP_BACKEND_CUDA;
		o.require = 1;
	}
	CHECK_OK(fp_kernels_create(&o, &k));
	return k;
}

/* Backend copy of a host array. */
static void *up(struct fp_kernels *k, const void *h, size_t bytes)
{
	void *d = NULL;
	CHECK_OK(fp_kernels_alloc(k, bytes, &d));
	if (h)
		CHECK_OK(fp_kernels_upload(k, d, h, bytes));
	else
		CHECK_OK(fp_kernels_zero(k, d, bytes));
	return d;
}
#define UPF(k, h, n) ((float *)up((k), (h), sizeof(float) * (n)))

static float *down(struct fp_kernels *k, const float *d, size_t n)
{
	float *h = malloc(sizeof(float) * (n ? n : 1));
	CHECK_OK(fp_kernels_download(k, h, d, sizeof(float) * n));
	return h;
}

static void close_to(const char *what, struct fp_kernels *k, const float *dev, const double *want, size_t n)
{
	float *got = down(k, dev, n);
	for (size_t i = 0; i < n; i++)
		CHECK_MSG(fabs(got[i] - want[i]) <= TOL_ABS + TOL_REL * fabs(want[i]),
		          "%s[%zu]: backend %.9g vs reference %.9g", what, i, (double)got[i], want[i]);
	free(got);
}

static float scalar(struct fp_kernels *k, const float *dev)
{
	float v;
	CHECK_OK(fp_kernels_download(k, &v, dev, sizeof(v)));
	return v;
}

/* ---- op checks, shared by the CPU and GPU cases ---- */

static const struct fp_conv2d_shape conv_shapes[] = {
	{2, 3, 9, 7, 4, 3, 3, 1, 1}, {2, 5, 8, 8, 6, 3, 3, 2, 1}, {3, 4, 6, 6, 5, 1, 1, 2, 0}, {1, 2, 7, 9, 3, 5, 3, 1, 2},
};

static void op_conv2d(struct fp_kernels *k)
{
	for (size_t t = 0; t < sizeof(conv_shapes) / sizeof(conv_shapes[0]); t++) {
		const struct fp_conv2d_shape *s = &conv_shapes[t];
		size_t nx = (size_t)s->n * s->c_in * s->h * s->w, nw = (size_t)s->c_out * s->c_in * s->kh * s->kw;
		size_t ny = (size_t)s->n * s->c_out * fp_conv2d_out_h(s) * fp_conv2d_out_w(s);
		float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *b = rnd(s->c_out, -1, 1), *dy = rnd(ny, -1, 1);
		double *xd = dbl(x, nx), *wd = dbl(w, nw), *bd = dbl(b, s->c_out), *dyd = dbl(dy, ny);
		double *yr = dzeros(ny), *dxr = dzeros(nx), *dwr = dzeros(nw), *dbr = dzeros(s->c_out);
		float *X = UPF(k, x, nx), *W = UPF(k, w, nw), *B = UPF(k, b, s->c_out), *DY = UPF(k, dy, ny);
		float *Y = UPF(k, NULL, ny), *DX = UPF(k, NULL, nx), *DW = UPF(k, NULL, nw), *DB = UPF(k, NULL, s->c_out);
		fp_ref_conv2d_forward(s, yr, xd, wd, bd);
		fp_ref_conv2d_backward(s, dxr, dwr, dbr, dyd, xd, wd);
		CHECK_OK(fp_k_conv2d_forward(k, s, Y, X, W, B));
		close_to("conv y", k, Y, yr, ny);
		CHECK_OK(fp_k_conv2d_backward(k, s, DX, DW, DB, DY, X, W));
		close_to("conv dx", k, DX, dxr, nx);
		close_to("conv dw", k, DW, dwr, nw);
		close_to("conv db", k, DB, dbr, s->c_out);
		/* No bias: same as a zero bias. */
		fp_ref_conv2d_forward(s, yr, xd, wd, NULL);
		CHECK_OK(fp_k_conv2d_forward(k, s, Y, X, W, NULL));
		close_to("conv y (no bias)", k, Y, yr, ny);
		float *ptrs[] = {X, W, B, DY, Y, DX, DW, DB};
		for (int i = 0; i < 8; i++)
			fp_kernels_free(k, ptrs[i]);
		void *hp[] = {x, w, b, dy, xd, wd, bd, dyd, yr, dxr, dwr, dbr};
		for (int i = 0; i < 12; i++)
			free(hp[i]);
	}
}

static void op_linear(struct fp_kernels *k)
{
	int n = 5, in = 7, out = 3;
	float *x = rnd(n * in, -1, 1), *w = rnd(out * in, -1, 1), *b = rnd(out, -1, 1), *dy = rnd(n * out, -1, 1);
	double *xd = dbl(x, n * in), *wd = dbl(w, out * in), *bd = dbl(b, out), *dyd = dbl(dy, n * out);
	double *yr = dzeros(n * out), *dxr = dzeros(n * in), *dwr = dzeros(out * in), *dbr = dzeros(out);
	float *X = UPF(k, x, n * in), *W = UPF(k, w, out * in), *B = UPF(k, b, out), *DY = UPF(k, dy, n * out);
	float *Y = UPF(k, NULL, n * out), *DX = UPF(k, NULL, n * in), *DW = UPF(k, NULL, out * in), *DB = UPF(k, NULL, out);
	fp_ref_linear_forward(yr, xd, wd, bd, n, in, out);
	fp_ref_linear_backward(dxr, dwr, dbr, dyd, xd, wd, n, in, out);
	CHECK_OK(fp_k_linear_forward(k, Y, X, W, B, n, in, out));
	close_to("linear y", k, Y, yr, n * out);
	CHECK_OK(fp_k_linear_backward(k, DX, DW, DB, DY, X, W, n, in, out));
	close_to("linear dx", k, DX, dxr, n * in);
	close_to("linear dw", k, DW, dwr, out * in);
	close_to("linear db", k, DB, dbr, out);
	float *ptrs[] = {X, W, B, DY, Y, DX, DW, DB};
	for (int i = 0; i < 8; i++)
		fp_kernels_free(k, ptrs[i]);
	void *hp[] = {x, w, b, dy, xd, wd, bd, dyd, yr, dxr, dwr, dbr};
	for (int i = 0; i < 12; i++)
		free(hp[i]);
}

static void op_elementwise(struct fp_kernels *k)
{
	size_t n = 1000;
	float *x = rnd(n, -3, 3), *x2 = rnd(n, -3, 3), *dy = rnd(n, -1, 1);
	double *xd = dbl(x, n), *x2d = dbl(x2, n), *dyd = dbl(dy, n), *r = dzeros(n), *r2 = dzeros(n);
	float *X = UPF(k, x, n), *X2 = UPF(k, x2, n), *DY = UPF(k, dy, n), *Y = UPF(k, NULL, n), *DX = UPF(k, NULL, n);

	fp_ref_relu_forward(r, xd, n);
	CHECK_OK(fp_k_relu_forward(k, Y, X, n));
	close_to("relu y", k, Y, r, n);
	fp_ref_relu_backward(r2, dyd, r, n);
	CHECK_OK(fp_k_relu_backward(k, DX, DY, Y, n));
	close_to("relu dx", k, DX, r2, n);

	fp_ref_gelu_forward(r, xd, n);
	CHECK_OK(fp_k_gelu_forward(k, Y, X, n));
	close_to("gelu y", k, Y, r, n);
	fp_ref_gelu_backward(r, dyd, xd, n);
	CHECK_OK(fp_k_gelu_backward(k, DX, DY, X, n));
	close_to("gelu dx", k, DX, r, n);

	fp_ref_dropout_forward(r, xd, n, 0.3f, 1234);
	CHECK_OK(fp_k_dropout_forward(k, Y, X, n, 0.3f, 1234));
	close_to("dropout y", k, Y, r, n);
	fp_ref_dropout_backward(r, dyd, n, 0.3f, 1234);
	CHECK_OK(fp_k_dropout_backward(k, DX, DY, n, 0.3f, 1234));
	close_to("dropout dx", k, DX, r, n);

	for (size_t i = 0; i < n; i++)
		r[i] = xd[i] + x2d[i];
	CHECK_OK(fp_k_add(k, Y, X, X2, n));
	close_to("add", k, Y, r, n);
	for (size_t i = 0; i < n; i++)
		r[i] += xd[i];
	CHECK_OK(fp_k_accumulate(k, Y, X, n));
	close_to("accumulate", k, Y, r, n);
	for (size_t i = 0; i < n; i++)
		r[i] *= -0.5;
	CHECK_OK(fp_k_scale(k, Y, n, -0.5f));
	close_to("scale", k, Y, r, n);

	float *ptrs[] = {X, X2, DY, Y, DX};
	for (int i = 0; i < 5; i++)
		fp_kernels_free(k, ptrs[i]);
	void *hp[] = {x, x2, dy, xd, x2d, dyd, r, r2};
	for (int i = 0; i < 8; i++)
		free(hp[i]);
}

static void op_pool(struct fp_kernels *k)
{
	const struct fp_pool2d_shape shapes[] = {{2, 3, 8, 8, 2, 2, 0}, {2, 2, 7, 9, 3, 2, 1}, {1, 3, 6, 5, 3, 1, 1}};
	for (size_t t = 0; t < 3; t++) {
		const struct fp_pool2d_shape *s = &shapes[t];
		size_t nx = (size_t)s->n * s->c * s->h * s->w, ny = (size_t)s->n * s->c * fp_pool2d_out_h(s) * fp_pool2d_out_w(s);
		float *x = rnd(nx, -1, 1), *dy = rnd(ny, -1, 1);
		double *xd = dbl(x, nx), *dyd = dbl(dy, ny), *yr = dzeros(ny), *dxr = dzeros(nx);
		float *X = UPF(k, x, nx), *DY = UPF(k, dy, ny), *Y = UPF(k, NULL, ny), *DX = UPF(k, NULL, nx);
		fp_ref_maxpool2d_forward(s, yr, xd);
		CHECK_OK(fp_k_maxpool2d_forward(k, s, Y, X));
		close_to("maxpool y", k, Y, yr, ny);
		fp_ref_maxpool2d_backward(s, dxr, dyd, xd);
		CHECK_OK(fp_k_maxpool2d_backward(k, s, DX, DY, X));
		close_to("maxpool dx", k, DX, dxr, nx);
		fp_ref_avgpool2d_forward(s, yr, xd);
		CHECK_OK(fp_k_avgpool2d_forward(k, s, Y, X));
		close_to("avgpool y", k, Y, yr, ny);
		fp_ref_avgpool2d_backward(s, dxr, dyd);
		CHECK_OK(fp_k_avgpool2d_backward(k, s, DX, DY));
		close_to("avgpool dx", k, DX, dxr, nx);
		fp_kernels_free(k, X);
		fp_kernels_free(k, DY);
		fp_kernels_free(k, Y);
		fp_kernels_free(k, DX);
		void *hp[] = {x, dy, xd, dyd, yr, dxr};
		for (int i = 0; i < 6; i++)
			free(hp[i]);
	}
	/* global average pooling */
	int n = 3, c = 4, hw = 25;
	float *x = rnd(n * c * hw, -1, 1), *dy = rnd(n * c, -1, 1);
	double *xd = dbl(x, n * c * hw), *dyd = dbl(dy, n * c), *yr = dzeros(n * c), *dxr = dzeros(n * c * hw);
	float *X = UPF(k, x, n * c * hw), *DY = UPF(k, dy, n * c), *Y = UPF(k, NULL, n * c), *DX = UPF(k, NULL, n * c * hw);
	fp_ref_gap_forward(yr, xd, n, c, hw);
	CHECK_OK(fp_k_gap_forward(k, Y, X, n, c, hw));
	close_to("gap y", k, Y, yr, n * c);
	fp_ref_gap_backward(dxr, dyd, n, c, hw);
	CHECK_OK(fp_k_gap_backward(k, DX, DY, n, c, hw));
	close_to("gap dx", k, DX, dxr, n * c * hw);
	fp_kernels_free(k, X);
	fp_kernels_free(k, DY);
	fp_kernels_free(k, Y);
	fp_kernels_free(k, DX);
	void *hp[] = {x, dy, xd, dyd, yr, dxr};
	for (int i = 0; i < 6; i++)
		free(hp[i]);
}

static void op_norm(struct fp_kernels *k, int batch)
{
	int n = 3, c = 6, hw = 10, groups = batch ? c : 3, ns = batch ? c : n * groups;
	size_t nx = (size_t)n * c * hw;
	float *x = rnd(nx, -2, 3), *g = rnd(c, 0.5, 1.5), *b = rnd(c, -1, 1), *dy = rnd(nx, -1, 1);
	double *xd = dbl(x, nx), *gd = dbl(g, c), *bd = dbl(b, c), *dyd = dbl(dy, nx);
	double *yr = dzeros(nx), *mr = dzeros(ns), *rr = dzeros(ns), *dxr = dzeros(nx), *dgr = dzeros(c), *dbr = dzeros(c);
	float *X = UPF(k, x, nx), *G = UPF(k, g, c), *B = UPF(k, b, c), *DY = UPF(k, dy, nx), *Y = UPF(k, NULL, nx);
	float *M = UPF(k, NULL, ns), *R = UPF(k, NULL, ns), *DX = UPF(k, NULL, nx), *DG = UPF(k, NULL, c), *DB = UPF(k, NULL, c);
	float ones[6] = {1, 1, 1, 1, 1, 1}, zeros[6] = {0};
	float *RM = UPF(k, zeros, c), *RV = UPF(k, ones, c);
	if (batch) {
		fp_ref_batchnorm_forward(yr, mr, rr, xd, gd, bd, n, c, hw, 1e-5);
		fp_ref_batchnorm_backward(dxr, dgr, dbr, dyd, xd, mr, rr, gd, n, c, hw);
		CHECK_OK(fp_k_batchnorm_forward(k, Y, M, R, RM, RV, X, G, B, n, c, hw, 1e-5f, 0.1f));
		CHECK_OK(fp_k_batchnorm_backward(k, DX, DG, DB, DY, X, M, R, G, n, c, hw));
	} else {
		fp_ref_groupnorm_forward(yr, mr, rr, xd, gd, bd, n, c, hw, groups, 1e-5);
		fp_ref_groupnorm_backward(dxr, dgr, dbr, dyd, xd, mr, rr, gd, n, c, hw, groups);
		CHECK_OK(fp_k_groupnorm_forward(k, Y, M, R, X, G, B, n, c, hw, groups, 1e-5f));
		CHECK_OK(fp_k_groupnorm_backward(k, DX, DG, DB, DY, X, M, R, G, n, c, hw, groups));
	}
	close_to("norm y", k, Y, yr, nx);
	close_to("norm mean", k, M, mr, ns);
	close_to("norm rstd", k, R, rr, ns);
	close_to("norm dx", k, DX, dxr, nx);
	close_to("norm dgamma", k, DG, dgr, c);
	close_to("norm dbeta", k, DB, dbr, c);
	if (batch) {
		/* running stats: 0.9 * init + 0.1 * (batch mean, unbiased variance) */
		double m = (double)n * hw, rmr[6], rvr[6];
		for (int ch = 0; ch < c; ch++) {
			double var = 1.0 / (rr[ch] * rr[ch]) - 1e-5;
			rmr[ch] = 0.1 * mr[ch];
			rvr[ch] = 0.9 + 0.1 * var * m / (m - 1);
		}
		close_to("running mean", k, RM, rmr, c);
		close_to("running var", k, RV, rvr, c);
		/* inference with the batch statistics reproduces the training output */
		float *hm = down(k, M, c), *hr = down(k, R, c), var[6];
		for (int ch = 0; ch < c; ch++)
			var[ch] = 1.0f / (hr[ch] * hr[ch]) - 1e-5f;
		CHECK_OK(fp_kernels_upload(k, RV, var, sizeof(var)));
		CHECK_OK(fp_k_batchnorm_infer(k, Y, X, M, RV, G, B, n, c, hw, 1e-5f));
		close_to("bn infer", k, Y, yr, nx);
		free(hm);
		free(hr);
	}
	float *ptrs[] = {X, G, B, DY, Y, M, R, DX, DG, DB, RM, RV};
	for (int i = 0; i < 12; i++)
		fp_kernels_free(k, ptrs[i]);
	void *hp[] = {x, g, b, dy, xd, gd, bd, dyd, yr, mr, rr, dxr, dgr, dbr};
	for (int i = 0; i < 14; i++)
		free(hp[i]);
}

static void op_losses(struct fp_kernels *k)
{
	int n = 6, c = 4;
	float *z = rnd(n * c, -2, 2), *cw = rnd(c, 0.5, 2), *t = rnd(n, 0, 1), *pr = rnd(n, -1, 1);
	int32_t lab[6] = {0, 3, 1, 2, 3, 1};
	double *zd = dbl(z, n * c), *cwd = dbl(cw, c), *td = dbl(t, n), *prd = dbl(pr, n);
	double *pref = dzeros(n * c), *gref = dzeros(n * c);
	float *Z = UPF(k, z, n * c), *CW = UPF(k, cw, c), *T = UPF(k, t, n), *PR = UPF(k, pr, n);
	float *P = UPF(k, NULL, n * c), *G = UPF(k, NULL, n * c), *L = UPF(k, NULL, 1);
	int32_t *LAB = up(k, lab, sizeof(lab));
	for (int weighted = 0; weighted < 2; weighted++) {
		double lr = fp_ref_softmax_xent_forward(pref, zd, lab, weighted ? cwd : NULL, n, c);
		fp_ref_softmax_xent_backward(gref, pref, lab, weighted ? cwd : NULL, n, c, 0.7);
		CHECK_OK(fp_k_softmax_xent_forward(k, L, P, Z, LAB, weighted ? CW : NULL, n, c));
		CHECK_NEAR(scalar(k, L), lr, TOL_ABS, TOL_REL);
		close_to("xent probs", k, P, pref, n * c);
		CHECK_OK(fp_k_softmax_xent_backward(k, G, P, LAB, weighted ? CW : NULL, n, c, 0.7f));
		close_to("xent grad", k, G, gref, n * c);
	}
	double lr = fp_ref_bce_forward(zd, td, n);
	fp_ref_bce_backward(gref, zd, td, n, 1.3);
	CHECK_OK(fp_k_bce_forward(k, L, Z, T, n));
	CHECK_NEAR(scalar(k, L), lr, TOL_ABS, TOL_REL);
	CHECK_OK(fp_k_bce_backward(k, G, Z, T, n, 1.3f));
	close_to("bce grad", k, G, gref, n);
	lr = fp_ref_mse_forward(prd, td, n);
	fp_ref_mse_backward(gref, prd, td, n, 0.5);
	CHECK_OK(fp_k_mse_forward(k, L, PR, T, n));
	CHECK_NEAR(scalar(k, L), lr, TOL_ABS, TOL_REL);
	CHECK_OK(fp_k_mse_backward(k, G, PR, T, n, 0.5f));
	close_to("mse grad", k, G, gref, n);
	float *ptrs[] = {Z, CW, T, PR, P, G, L, (float *)LAB};
	for (int i = 0; i < 8; i++)
		fp_kernels_free(k, ptrs[i]);
	void *hp[] = {z, cw, t, pr, zd, cwd, td, prd, pref, gref};
	for (int i = 0; i < 10; i++)
		free(hp[i]);
}

static void op_cox(struct fp_kernels *k)
{
	/* ties among events, among censored, and across both */
	float time[12] = {5, 3, 3, 8, 1, 3, 8, 2, 5, 9, 1, 6};
	float event[12] = {1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1};
	int n = 12;
	float *eta = rnd(n, -1.5, 1.5), *w = rnd(n, 0.2, 2);
	double *ed = dbl(eta, n), *td = dbl(time, n), *vd = dbl(event, n), *wd = dbl(w, n), *gr = dzeros(n);
	float *E = UPF(k, eta, n), *T = UPF(k, time, n), *V = UPF(k, event, n), *W = UPF(k, w, n);
	float *L = UPF(k, NULL, 1), *G = UPF(k, NULL, n);
	for (int ties = 0; ties < 2; ties++)
		for (int red = 0; red < 2; red++)
			for (int weighted = 0; weighted < 2; weighted++) {
				double lr = fp_ref_cox_forward(ed, td, vd, weighted ? wd : NULL, n, ties, red);
				fp_ref_cox_backward(gr, ed, td, vd, weighted ? wd : NULL, n, ties, red, 0.9);
				CHECK_OK(fp_k_cox_forward(k, L, E, T, V, weighted ? W : NULL, n, ties, red));
				CHECK_NEAR(scalar(k, L), lr, TOL_ABS, TOL_REL);
				CHECK_OK(fp_k_cox_backward(k, G, E, T, V, weighted ? W : NULL, n, ties, red, 0.9f));
				close_to("cox grad", k, G, gr, n);
			}
	float *ptrs[] = {E, T, V, W, L, G};
	for (int i = 0; i < 6; i++)
		fp_kernels_free(k, ptrs[i]);
	void *hp[] = {eta, w, ed, td, vd, wd, gr};
	for (int i = 0; i < 7; i++)
		free(hp[i]);
}

static void op_attnpool(struct fp_kernels *k)
{
	int n = 7, l = 5, d = 4;
	float *h = rnd(n * l, -1, 1), *V = rnd(d * l, -1, 1), *bv = rnd(d, -.5, .5), *U = rnd(d * l, -1, 1);
	float *bu = rnd(d, -.5, .5), *w = rnd(d, -1, 1), *dm = rnd(l, -1, 1);
	double *hd = dbl(h, n * l), *Vd = dbl(V, d * l), *bvd = dbl(bv, d), *Ud = dbl(U, d * l), *bud = dbl(bu, d);
	double *wd = dbl(w, d), *dmd = dbl(dm, l), *mr = dzeros(l), *ar = dzeros(n), *dhr = dzeros(n * l);
	double *dVr = dzeros(d * l), *dUr = dzeros(d * l), *dbvr = dzeros(d), *dbur = dzeros(d), *dwr = dzeros(d);
	float *H = UPF(k, h, n * l), *VV = UPF(k, V, d * l), *BV = UPF(k, bv, d), *UU = UPF(k, U, d * l);
	float *BU = UPF(k, bu, d), *Wt = UPF(k, w, d), *DM = UPF(k, dm, l), *M = UPF(k, NULL, l), *A = UPF(k, NULL, n);
	float *WS = UPF(k, NULL, fp_k_attnpool_ws_floats(n, d)), *DH = UPF(k, NULL, n * l), *DV = UPF(k, NULL, d * l);
	float *DU = UPF(k, NULL, d * l), *DBV = UPF(k, NULL, d), *DBU = UPF(k, NULL, d), *DW = UPF(k, NULL, d);
	fp_ref_attnpool_forward(mr, ar, hd, Vd, bvd, Ud, bud, wd, n, l, d);
	fp_ref_attnpool_backward(dhr, dVr, dbvr, dUr, dbur, dwr, dmd, hd, Vd, bvd, Ud, bud, wd, n, l, d);
	CHECK_OK(fp_k_attnpool_forward(k, M, A, WS, H, VV, BV, UU, BU, Wt, n, l, d));
	close_to("attn m", k, M, mr, l);
	close_to("attn a", k, A, ar, n);
	CHECK_OK(fp_k_attnpool_backward(k, DH, DV, DBV, DU, DBU, DW, DM, A, WS, H, VV, UU, Wt, n, l, d));
	close_to("attn dh", k, DH, dhr, n * l);
	close_to("attn dV", k, DV, dVr, d * l);
	close_to("attn dU", k, DU, dUr, d * l);
	close_to("attn dbv", k, DBV, dbvr, d);
	close_to("attn dbu", k, DBU, dbur, d);
	close_to("attn dw", k, DW, dwr, d);
	float *ptrs[] = {H, VV, BV, UU, BU, Wt, DM, M, A, WS, DH, DV, DU, DBV, DBU, DW};
	for (int i = 0; i < 16; i++)
		fp_kernels_free(k, ptrs[i]);
	void *hp[] = {h, V, bv, U, bu, w, dm, hd, Vd, bvd, Ud, bud, wd, dmd, mr, ar, dhr, dVr, dUr, dbvr, dbur, dwr};
	for (int i = 0; i < 22; i++)
		free(hp[i]);
}

static void op_optim(struct fp_kernels *k)
{
	size_t n = 300;
	float *p = rnd(n, -1, 1), *g = rnd(n, -1, 1);
	double *pd = dbl(p, n), *gd = dbl(g, n), *md = dzeros(n), *vd = dzeros(n), *bd = dzeros(n);
	float *P = UPF(k, p, n), *G = UPF(k, g, n), *M = UPF(k, NULL, n), *V = UPF(k, NULL, n);
	struct fp_adamw o = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0};
	for (int step = 1; step <= 3; step++) {
		o.step = step;
		fp_ref_adamw_update(pd, gd, md, vd, n, &o, step != 2, 0.5);
		CHECK_OK(fp_k_adamw_update(k, P, G, M, V, n, &o, step != 2, 0.5f));
	}
	close_to("adamw p", k, P, pd, n);
	close_to("adamw m", k, M, md, n);
	close_to("adamw v", k, V, vd, n);
	double *p2 = dbl(p, n);
	CHECK_OK(fp_kernels_upload(k, P, p, sizeof(float) * n));
	CHECK_OK(fp_kernels_zero(k, M, sizeof(float) * n));
	for (int step = 0; step < 3; step++) {
		fp_ref_sgd_update(p2, gd, bd, n, 0.1, 0.9, 0.01, step != 1, 0.5);
		CHECK_OK(fp_k_sgd_update(k, P, G, M, n, 0.1f, 0.9f, 0.01f, step != 1, 0.5f));
	}
	close_to("sgd p", k, P, p2, n);
	double ss = 0;
	CHECK_OK(fp_k_sumsq(k, G, n, &ss));
	CHECK_NEAR(sqrt(ss), fp_ref_l2_norm(gd, n), 1e-6, 1e-6);
	double nrm = 0;
	CHECK_OK(fp_k_l2_norm(k, G, n, &nrm));
	CHECK_NEAR(nrm, fp_ref_l2_norm(gd, n), 1e-6, 1e-6);
	float *ptrs[] = {P, G, M, V};
	for (int i = 0; i < 4; i++)
		fp_kernels_free(k, ptrs[i]);
	void *hp[] = {p, g, pd, gd, md, vd, bd, p2};
	for (int i = 0; i < 8; i++)
		free(hp[i]);
}

static void op_aggregate(struct fp_kernels *k)
{
	for (int kc = 4; kc <= 7; kc += 3) {
		size_t p = 501;
		float *xs = rnd(kc * p, -1, 1), w[7];
		double wd[7], *xd = dbl(xs, kc * p), *r = dzeros(p);
		for (int i = 0; i < kc; i++) {
			w[i] = (float)(0.1 + urand());
			wd[i] = w[i];
		}
		float *XS = UPF(k, xs, kc * p), *O = UPF(k, NULL, p);
		fp_ref_weighted_sum(r, xd, wd, kc, p);
		CHECK_OK(fp_k_weighted_sum(k, O, XS, w, kc, p));
		close_to("weighted sum", k, O, r, p);
		fp_ref_coord_median(r, xd, kc, p);
		CHECK_OK(fp_k_coord_median(k, O, XS, kc, p));
		close_to("median", k, O, r, p);
		fp_ref_trimmed_mean(r, xd, kc, p, 1);
		CHECK_OK(fp_k_trimmed_mean(k, O, XS, kc, p, 1));
		close_to("trimmed mean", k, O, r, p);
		fp_kernels_free(k, XS);
		fp_kernels_free(k, O);
		free(xs);
		free(xd);
		free(r);
	}
}

/* The CPU weighted sum is exactly sum_k w_k x_k in double, k in order from
 * 0, rounded once to float: the aggregator's bit-identical resume and the
 * MPI transport's equality with TLS rely on that order. Sizes around the
 * kernel's tiles and above its two-thread threshold. */
static void op_weighted_sum_order(struct fp_kernels *k)
{
	size_t sizes[] = {1, 2047, 2048, 2049, 500003};
	int kc = 10;
	for (int si = 0; si < 5; si++) {
		size_t p = sizes[si];
		float *xs = rnd((size_t)kc * p, -1e3f, 1e3f), w[10];
		for (int i = 0; i < kc; i++) w[i] = (float)(0.01 + urand());
		xs[0] = 1e-30f; /* values of very different sizes in one column */
		xs[p] = 3e7f;
		float *want = malloc(p * sizeof(float)), *got = malloc(p * sizeof(float));
		for (size_t j = 0; j < p; j++) {
			double acc = 0;
			for (int i = 0; i < kc; i++) acc += (double)w[i] * xs[(size_t)i * p + j];
			want[j] = (float)acc;
		}
		float *XS = UPF(k, xs, (size_t)kc * p), *O = UPF(k, NULL, p);
		CHECK_OK(fp_k_weighted_sum(k, O, XS, w, kc, p));
		CHECK_OK(fp_kernels_download(k, got, O, p * sizeof(float)));
		CHECK_MSG(memcmp(want, got, p * sizeof(float)) == 0, "weighted sum of %zu values differs from the ordered sum", p);
		fp_kernels_free(k, XS);
		fp_kernels_free(k, O);
		free(xs);
		free(want);
		free(got);
	}
}

/* ---- tile -> input (fp_k_augment_tiles) and the rank mean ---- */

static uint8_t *rnd_tiles(size_t bytes)
{
	uint8_t *p = malloc(bytes);
	for (size_t i = 0; i < bytes; i++)
		p[i] = (uint8_t)(urand() * 256);
	return p;
}

/* Every augmentation on, drawn at random (strong enough to hit the clamps). */
static void rnd_aug(struct fp_tile_aug *a, int n)
{
	for (int i = 0; i < n; i++) {
		fp_tile_aug_identity(&a[i]);
		a[i].flip_h = urand() < 0.5;
		a[i].flip_v = urand() < 0.5;
		a[i].rot90 = (int)(urand() * 4) % 4;
		a[i].hed = i % 4 != 3;
		for (int c = 0; c < 3; c++) {
			a[i].hed_scale[c] = 0.8 + 0.4 * urand();
			a[i].hed_shift[c] = -0.2 + 0.4 * urand();
		}
		if (i % 3) {
			a[i].brightness = -0.3 + 0.6 * urand();
			a[i].contrast = 0.5 + urand();
		}
	}
}

/* GPU vs CPU: |gpu - cpu| <= 1e-5 with augmentation (CUDA's log/exp and
 * fused multiply-adds round differently in the last double bits, the mean is
 * summed in another order); bit for bit without (integer sums, one IEEE
 * division). */
#define AUG_TOL 1e-5

static void op_augment_vs_cpu(struct fp_kernels *k)
{
	static const int ts[][3] = {{64, 64, 5}, {128, 64, 3}, {48, 16, 7}, {30, 10, 2}};
	struct fp_kernels *kc = open_backend(0, 0);
	for (size_t q = 0; q < sizeof ts / sizeof ts[0]; q++) {
		int t = ts[q][0], s = ts[q][1], n = ts[q][2];
		size_t tb = (size_t)n * t * t * 3, xn = (size_t)n * 3 * s * s;
		uint8_t *rgb = rnd_tiles(tb);
		struct fp_tile_aug aug[8];
		rnd_aug(aug, n);
		float *want = malloc(sizeof(float) * xn);
		uint8_t *RGB = up(k, rgb, tb);
		float *X = UPF(k, NULL, xn);
		for (int pass = 0; pass < 2; pass++) {
			const struct fp_tile_aug *a = pass ? aug : NULL;
			CHECK_OK(fp_k_augment_tiles(kc, want, rgb, a, n, t, s));
			CHECK_OK(fp_k_augment_tiles(k, X, RGB, a, n, t, s));
			float *got = down(k, X, xn);
			double worst = 0;
			for (size_t i = 0; i < xn; i++) {
				double d = fabs((double)got[i] - want[i]);
				worst = d > worst ? d : worst;
				if (!pass)
					CHECK_MSG(got[i] == want[i], "identity %dx%d->%d [%zu]: %.9g vs CPU %.9g", t, t, s, i,
					          (double)got[i], (double)want[i]);
				else
					CHECK_MSG(d <= AUG_TOL, "augmented %dx%d->%d [%zu]: %.9g vs CPU %.9g", t, t, s, i,
					          (double)got[i], (double)want[i]);
			}
			printf("augment %dx%d -> %d, %s: worst |backend - cpu| %.3g\n", t, t, s,
			       pass ? "augmented" : "identity", worst);
			free(got);
		}
		fp_kernels_free(k, RGB);
		fp_kernels_free(k, X);
		free(rgb);
		free(want);
	}
	fp_kernels_destroy(kc);
}

/* Statement: the batch op equals the one-tile function (the code the
 * trainer ran on the host before) bit for bit, for any thread count; flips
 * and rotations move pixels as documented; bad arguments are refused. */
FP_TEST(augment_tiles)
{
	enum { T = 32, S = 16, N = 5 };
	struct fp_kernels *k1 = open_backend(0, 1), *k2 = open_backend(0, 2);
	uint8_t *rgb = rnd_tiles((size_t)N * T * T * 3);
	struct fp_tile_aug aug[N];
	float a[N * 3 * S * S], b[N * 3 * S * S], one[3 * S * S];
	rnd_aug(aug, N);
	CHECK_OK(fp_k_augment_tiles(k1, a, rgb, aug, N, T, S));
	CHECK_OK(fp_k_augment_tiles(k2, b, rgb, aug, N, T, S));
	CHECK(memcmp(a, b, sizeof a) == 0);
	for (int i = 0; i < N; i++) {
		CHECK_OK(fp_kernels_augment_tile(one, rgb + (size_t)i * T * T * 3, &aug[i], T, S));
		CHECK(memcmp(one, a + (size_t)i * 3 * S * S, sizeof one) == 0);
	}
	for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) CHECK(a[i] >= 0 && a[i] <= 1);
	/* Geometry on a tile at full size (box of 1): output (ox, oy) after one
	 * quarter turn and a horizontal mirror reads source (ox, oy) -> rotate
	 * (S-1-oy, ox) -> mirror (oy, ox): the transpose. */
	struct fp_tile_aug g;
	fp_tile_aug_identity(&g);
	g.rot90 = 1;
	g.flip_h = 1;
	CHECK_OK(fp_k_augment_tiles(k1, one, rgb, &g, 1, S, S));
	for (int oy = 0; oy < S; oy++)
		for (int ox = 0; ox < S; ox++)
			for (int c = 0; c < 3; c++)
				CHECK(one[(size_t)c * S * S + (size_t)oy * S + ox] == (float)(rgb[((size_t)ox * S + oy) * 3 + c] / 255.0));
	/* Identity: the box filter, (sum of the f x f box) / (f^2 255). */
	CHECK_OK(fp_k_augment_tiles(k1, a, rgb, NULL, 1, T, S));
	double box = (rgb[0] + rgb[3] + rgb[T * 3] + rgb[T * 3 + 3]) / (4.0 * 255.0);
	CHECK(a[0] == (float)box);
	g.rot90 = 4;
	CHECK_STATUS(fp_k_augment_tiles(k1, a, rgb, &g, 1, T, S), FP_ERR_INVALID_ARG);
	CHECK_STATUS(fp_k_augment_tiles(k1, a, rgb, NULL, 1, T, 12), FP_ERR_INVALID_ARG);
	CHECK_STATUS(fp_kernels_augment_tile(a, rgb, NULL, T, 0), FP_ERR_INVALID_ARG);
	free(rgb);
	fp_kernels_destroy(k1);
	fp_kernels_destroy(k2);
}

/* Statement: the rank mean is (sum in double, k in order) / K rounded once:
 * the host loop of train/dist.c, bit for bit. */
static void op_mean_rows(struct fp_kernels *k)
{
	for (int kc = 1; kc <= 7; kc += 3) {
		size_t p = 1003;
		float *xs = rnd(kc * p, -3, 3), *XS = UPF(k, xs, kc * p), *O = UPF(k, NULL, p);
		CHECK_OK(fp_k_mean_rows(k, O, XS, kc, p));
		float *got = down(k, O, p);
		for (size_t j = 0; j < p; j++) {
			double acc = 0;
			for (int r = 0; r < kc; r++) acc += xs[(size_t)r * p + j];
			CHECK_MSG(got[j] == (float)(acc / kc), "mean_rows K=%d [%zu]: %.9g vs %.9g", kc, j, (double)got[j],
			          (double)(float)(acc / kc));
		}
		fp_kernels_free(k, XS);
		fp_kernels_free(k, O);
		free(xs);
		free(got);
	}
}

/* Statement (GPU): fp_kernels_upload from device memory copies within the
 * device (the trainer hands the model augmented input that way). */
static void op_upload_from_device(struct fp_kernels *k)
{
	size_t n = 4097;
	float *h = rnd(n, -1, 1), *A = UPF(k, h, n), *B = UPF(k, NULL, n);
	CHECK_OK(fp_kernels_upload(k, B, A, n * sizeof(float)));
	float *got = down(k, B, n);
	CHECK(memcmp(got, h, n * sizeof(float)) == 0);
	fp_kernels_free(k, A);
	fp_kernels_free(k, B);
	free(h);
	free(got);
}

/* ---- CPU cases ---- */

/* One line per case: CMake registers FP_TEST lines. */
#define RUN(cuda, call)                                          \
	do {                                                         \
		struct fp_kernels *k = open_backend((cuda), 0);          \
		call;                                                    \
		fp_kernels_destroy(k);                                   \
	} while (0)

FP_TEST(conv2d) { RUN(0, op_conv2d(k)); }
FP_TEST(linear) { RUN(0, op_linear(k)); }
FP_TEST(elementwise) { RUN(0, op_elementwise(k)); }
FP_TEST(pooling) { RUN(0, op_pool(k)); }
FP_TEST(groupnorm) { RUN(0, op_norm(k, 0)); }
FP_TEST(batchnorm) { RUN(0, op_norm(k, 1)); }
FP_TEST(losses) { RUN(0, op_losses(k)); }
FP_TEST(cox) { RUN(0, op_cox(k)); }
FP_TEST(attnpool) { RUN(0, op_attnpool(k)); }
FP_TEST(optimisers) { RUN(0, op_optim(k)); }
FP_TEST(aggregate) { RUN(0, op_aggregate(k)); }
FP_TEST(weighted_sum_order) { RUN(0, op_weighted_sum_order(k)); }
FP_TEST(mean_rows) { RUN(0, op_mean_rows(k)); }

FP_TEST(gpu_conv2d) { RUN(1, op_conv2d(k)); }
FP_TEST(gpu_linear) { RUN(1, op_linear(k)); }
FP_TEST(gpu_elementwise) { RUN(1, op_elementwise(k)); }
FP_TEST(gpu_pooling) { RUN(1, op_pool(k)); }
FP_TEST(gpu_groupnorm) { RUN(1, op_norm(k, 0)); }
FP_TEST(gpu_batchnorm) { RUN(1, op_norm(k, 1)); }
FP_TEST(gpu_losses) { RUN(1, op_losses(k)); }
FP_TEST(gpu_cox) { RUN(1, op_cox(k)); }
FP_TEST(gpu_attnpool) { RUN(1, op_attnpool(k)); }
FP_TEST(gpu_optimisers) { RUN(1, op_optim(k)); }
FP_TEST(gpu_aggregate) { RUN(1, op_aggregate(k)); }
FP_TEST(gpu_mean_rows) { RUN(1, op_mean_rows(k)); }
FP_TEST(gpu_augment_tiles) { RUN(1, op_augment_vs_cpu(k); op_upload_from_device(k)); }

/* "Asking for CUDA where no GPU answers gives a CPU handle (unless require)." */
FP_TEST(cuda_request_falls_back_to_cpu)
{
	struct fp_kernels_options o;
	struct fp_kernels *k = NULL;
	fp_kernels_options_default(&o);
	o.backend = FP_BACKEND_CUDA;
	if (fp_kernels_cuda_available()) {
		printf("skipped: a GPU is present\n");
		exit(77);
	}
	CHECK_OK(fp_kernels_create(&o, &k));
	CHECK_INT_EQ(fp_kernels_backend(k), FP_BACKEND_CPU);
	fp_kernels_destroy(k);
	o.require = 1;
	k = NULL;
	CHECK(fp_kernels_create(&o, &k) != FP_OK);
	CHECK(k == NULL);
}

/* The CUDA backend is a module loaded at run time (kernels/cuda_api.h): it
 * loads, and an error it raises (here: no device) reaches the host's error
 * context, so the user reads why. On a GPU machine it simply opens. */
FP_TEST(cuda_module_loads_and_reports)
{
#ifndef FP_TEST_CUDA_MODULE
	printf("skipped: this build has no CUDA module\n");
	exit(77);
#else
	struct fp_kernels_options o;
	struct fp_kernels *k = NULL;
	fp_kernels_options_default(&o);
	o.backend = FP_BACKEND_CUDA;
	o.require = 1;
	CHECK(setenv("FEDPATH_CUDA_MODULE", FP_TEST_CUDA_MODULE, 1) == 0);
	enum fp_status st = fp_kernels_create(&o, &k);
	if (st == FP_OK) {
		CHECK_INT_EQ(fp_kernels_backend(k), FP_BACKEND_CUDA);
		fp_kernels_destroy(k);
		return;
	}
	CHECK_INT_EQ(st, FP_ERR_BACKEND);
	CHECK_MSG(strstr(fp_error_msg(), "no CUDA device") != NULL, "message: %s", fp_error_msg());
	CHECK(k == NULL);
#endif
}

FP_TEST(bad_shapes_are_refused)
{
	struct fp_kernels *k = open_backend(0, 1);
	struct fp_conv2d_shape s = {1, 1, 2, 2, 1, 5, 5, 1, 0};
	float buf[64] = {0};
	CHECK_STATUS(fp_k_conv2d_forward(k, &s, buf, buf, buf, NULL), FP_ERR_INVALID_ARG);
	CHECK_STATUS(fp_k_groupnorm_forward(k, buf, buf, buf, buf, buf, buf, 1, 6, 1, 4, 1e-5f), FP_ERR_INVALID_ARG);
	CHECK_STATUS(fp_k_dropout_forward(k, buf, buf, 4, 1.0f, 1), FP_ERR_INVALID_ARG);
	CHECK_STATUS(fp_k_trimmed_mean(k, buf, buf, 4, 4, 2), FP_ERR_INVALID_ARG);
	int32_t bad[2] = {0, 3};
	CHECK_STATUS(fp_k_softmax_xent_forward(k, buf, buf + 8, buf, bad, NULL, 2, 3), FP_ERR_INVALID_ARG);
	fp_kernels_destroy(k);
}

/* ---- thread-count independence ---- */

/* Runs a conv + BN + linear + losses + norms pipeline and returns a heap
 * array of every output, to compare bitwise across thread counts. */
static float *pipeline_outputs(int threads, size_t *count)
{
	struct fp_kernels *k = open_backend(0, threads);
	struct fp_conv2d_shape s = {8, 16, 16, 16, 16, 3, 3, 1, 1};
	size_t nx = 8 * 16 * 16 * 16, nw = 16 * 16 * 9;
	rng_state = 99;
	float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *g = rnd(16, .5, 1.5), *b = rnd(16, -1, 1);
	float *out = malloc(sizeof(float) * (4 * nx + 2 * nw + 72));
	size_t o = 0;
	float *y = out + o; o += nx;
	float *dx = out + o; o += nx;
	float *dw = out + o; o += nw;
	float *db = out + o; o += 16;
	float *bn = out + o; o += nx;
	float *dbn = out + o; o += nx;
	float *m = out + o; o += 16;
	float *r = out + o; o += 16;
	float *dg = out + o; o += 16;
	float *lw = out + o; o += nw;
	CHECK_OK(fp_k_conv2d_forward(k, &s, y, x, w, b));
	CHECK_OK(fp_k_conv2d_backward(k, &s, dx, dw, db, x, x, w));
	CHECK_OK(fp_k_batchnorm_forward(k, bn, m, r, NULL, NULL, y, g, b, 8, 16, 256, 1e-5f, 0.1f));
	CHECK_OK(fp_k_batchnorm_backward(k, dbn, dg, NULL, x, y, m, r, g, 8, 16, 256));
	CHECK_OK(fp_k_linear_backward(k, NULL, lw, NULL, y, x, w, 128, 16, 144));
	double ss = 0;
	CHECK_OK(fp_k_sumsq(k, out, o, &ss));
	memcpy(out + o, &ss, sizeof(ss));
	o += 2;
	*count = o;
	free(x);
	free(w);
	free(g);
	free(b);
	fp_kernels_destroy(k);
	return out;
}

FP_TEST(threads_bit_identical)
{
	size_t n1, n2;
	float *a = pipeline_outputs(1, &n1), *b = pipeline_outputs(2, &n2);
	CHECK_INT_EQ(n1, n2);
	for (size_t i = 0; i < n1; i++)
		CHECK_MSG(memcmp(&a[i], &b[i], sizeof(float)) == 0, "output %zu: 1 thread %.9g, 2 threads %.9g",
		          i, (double)a[i], (double)b[i]);
	free(a);
	free(b);
}

/* ---- torchsurv's documented Cox values ---- */

static float cox_cpu(const float *eta, const float *time, const float *event, int n, enum fp_cox_ties ties,
                     enum fp_cox_reduction red)
{
	struct fp_kernels *k = open_backend(0, 1);
	float loss = -1;
	CHECK_OK(fp_k_cox_forward(k, &loss, eta, time, event, NULL, n, ties, red));
	fp_kernels_destroy(k);
	return loss;
}

FP_TEST(cox_torchsurv_values)
{
	float eta[5] = {.1f, .2f, .3f, .4f, .5f}, ev[5] = {1, 0, 1, 0, 1}, t[5] = {1, 2, 3, 4, 5};
	CHECK_NEAR(cox_cpu(eta, t, ev, 5, FP_COX_BRESLOW, FP_COX_MEAN), 1.0071, 5e-5, 0);
	CHECK_NEAR(cox_cpu(eta, t, ev, 5, FP_COX_BRESLOW, FP_COX_SUM), 3.0214, 5e-5, 0);
	CHECK_NEAR(cox_cpu(eta, t, ev, 5, FP_COX_EFRON, FP_COX_MEAN), 1.0071, 5e-5, 0);
	/* torchsurv: time [1,2,2,4,5] (an event tied with a censored subject) gives 1.0873 for both */
	float t2[5] = {1, 2, 2, 4, 5};
	CHECK_NEAR(cox_cpu(eta, t2, ev, 5, FP_COX_BRESLOW, FP_COX_MEAN), 1.0873, 5e-5, 0);
	CHECK_NEAR(cox_cpu(eta, t2, ev, 5, FP_COX_EFRON, FP_COX_MEAN), 1.0873, 5e-5, 0);
}

FP_TEST(cox_no_events_is_zero)
{
	struct fp_kernels *k = open_backend(0, 1);
	float eta[3] = {1, 2, 3}, t[3] = {1, 2, 3}, ev[3] = {0, 0, 0}, g[3] = {9, 9, 9}, loss = 9;
	CHECK_OK(fp_k_cox_forward(k, &loss, eta, t, ev, NULL, 3, FP_COX_EFRON, FP_COX_MEAN));
	CHECK(loss == 0);
	CHECK_OK(fp_k_cox_backward(k, g, eta, t, ev, NULL, 3, FP_COX_EFRON, FP_COX_MEAN, 1));
	CHECK(g[0] == 0 && g[1] == 0 && g[2] == 0);
	float bad[3] = {1, NAN, 3};
	CHECK_STATUS(fp_k_cox_forward(k, &loss, bad, t, ev, NULL, 3, FP_COX_EFRON, FP_COX_MEAN), FP_ERR_NUMERIC);
	fp_kernels_destroy(k);
}

/* "Global-norm clipping factor: min(1, max_norm / (norm + 1e-6))". */
FP_TEST(clip_scale)
{
	struct fp_kernels *k = open_backend(0, 2);
	float g[4] = {3, 0, 4, 0};
	double ss = 0;
	CHECK_OK(fp_k_sumsq(k, g, 2, &ss)); /* accumulates across tensors */
	CHECK_OK(fp_k_sumsq(k, g + 2, 2, &ss));
	CHECK_NEAR(ss, 25.0, 0, 0);
	CHECK_NEAR(fp_kernels_clip_scale(ss, 1.0f), 1.0 / (5.0 + 1e-6), 1e-7, 0);
	CHECK(fp_kernels_clip_scale(ss, 10.0f) == 1.0f);
	fp_kernels_destroy(k);
}
