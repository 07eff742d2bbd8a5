/*
 * bench_kernels.c: timing driver behind scripts/bench/bench_kernels.sh and
 * scripts/gpu-check (a benchmark, not a test).
 *
 *   bench_kernels [--backend cpu|cuda] [--mixed] [--threads N] [--batch 64] [--size 64]
 *                 [--width 16] [--steps 5] conv|gemm|step|bn|convw|augment|upload
 * --mixed: CUDA reduced-precision compute (fp_kernels_options.mixed).
 *
 * conv: forward + backward of a 3x3 conv, (64, 32, 32, 32) -> 32 channels;
 * gemm: (1024 x 1024) x (1024 x 1024) through fp_k_linear_forward;
 * bn: BatchNorm forward + backward on (batch, width, size, size);
 * convw: forward + backward of a 3x3 conv width -> width on (batch, width, size, size)
 *       (with bn: where a step's time goes at a given shape);
 * augment: uint8 tiles (batch, size, size, 3) from the host to augmented float
 *       input on the backend: upload + fp_k_augment_tiles with every
 *       augmentation on (what the trainer does per step);
 * upload: the float input (batch, 3, size, size) uploaded as it was before;
 * step: one training step (forward, backward, AdamW) of the Part 1-like net
 *       (kernels/testnet/fp_part1_net.h) on a batch of random tiles.
 * Prints "<what> <median seconds> <rate> <unit>" after one warm-up run;
 * the median is over --steps runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fp_kernels.h"
#include "fp_part1_net.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static float *dev_random(struct fp_kernels *k, size_t n, unsigned seed)
{
	float *h = malloc(sizeof(float) * n);
	void *d = NULL;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1664525u + 1013904223u;
		h[i] = (float)(seed >> 8) / 16777216.0f * 2 - 1;
	}
	if (fp_kernels_alloc(k, sizeof(float) * n, &d) != FP_OK || fp_kernels_upload(k, d, h, sizeof(float) * n) != FP_OK) {
		fprintf(stderr, "bench: %s\n", fp_error_msg());
		exit(1);
	}
	free(h);
	return d;
}

#define OK(expr)                                                        \
	do {                                                                \
		if ((expr) != FP_OK) {                                          \
			fprintf(stderr, "bench: %s: %s\n", #expr, fp_error_msg()); \
			return 1;                                                   \
		}                                                               \
	} while (0)

int main(int argc, char **argv)
{
	struct fp_kernels_options o;
	const char *what = "step";
	int batch = 64, size = 64, width = 16, steps = 5;
	fp_kernels_options_default(&o);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
			o.backend = !strcmp(argv[++i], "cuda") ? FP_BACKEND_CUDA : FP_BACKEND_CPU;
			o.require = 1;
		} else if (!strcmp(argv[i], "--mixed")) {
			o.mixed = 1;
		} else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			o.threads = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
			batch = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			size = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--width") && i + 1 < argc) {
			width = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
			steps = atoi(argv[++i]);
		} else {
			what = argv[i];
		}
	}
	if (steps < 1 || steps > 1000)
		steps = 5;
	struct fp_kernels *k = NULL;
	OK(fp_kernels_create(&o, &k));
	fprintf(stderr, "bench: backend %s\n", fp_kernels_describe(k));
	double t[1000];
	if (!strcmp(what, "conv")) {
		struct fp_conv2d_shape s = {64, 32, 32, 32, 32, 3, 3, 1, 1};
		size_t nx = (size_t)64 * 32 * 32 * 32;
		float *x = dev_random(k, nx, 1), *w = dev_random(k, 32 * 32 * 9, 2), *y = dev_random(k, nx, 3);
		float *dx = dev_random(k, nx, 4), *dw = dev_random(k, 32 * 32 * 9, 5);
		for (int r = -1; r < steps; r++) {
			double t0 = now();
			OK(fp_k_conv2d_forward(k, &s, y, x, w, NULL));
			OK(fp_k_conv2d_backward(k, &s, dx, dw, NULL, y, x, w));
			OK(fp_kernels_sync(k));
			if (r >= 0)
				t[r] = now() - t0;
		}
		qsort(t, steps, sizeof(double), cmp_d);
		double flops = 3.0 * 2 * 64 * 32 * 32 * 32 * 32 * 9;
		printf("conv %.6f %.2f GFLOP/s\n", t[steps / 2], flops / t[steps / 2] * 1e-9);
	} else if (!strcmp(what, "bn") || !strcmp(what, "convw")) {
		int is_bn = !strcmp(what, "bn");
		size_t nx = (size_t)batch * width * size * size;
		struct fp_conv2d_shape s = {batch, width, size, size, width, 3, 3, 1, 1};
		float *x = dev_random(k, nx, 1), *y = dev_random(k, nx, 2), *dy = dev_random(k, nx, 3);
		float *dx = dev_random(k, nx, 4), *w = dev_random(k, (size_t)width * width * 9, 5);
		float *dw = dev_random(k, (size_t)width * width * 9, 6), *g = dev_random(k, width, 7);
		float *b = dev_random(k, width, 8), *st = dev_random(k, 8 * (size_t)width, 9);
		for (int r = -1; r < steps; r++) {
			double t0 = now();
			if (is_bn) {
				OK(fp_k_batchnorm_forward(k, y, st, st + width, st + 2 * width, st + 3 * width, x, g, b, batch, width,
				                          size * size, 1e-5f, 0.1f));
				OK(fp_k_batchnorm_backward(k, dx, st + 4 * width, st + 5 * width, dy, x, st, st + width, g, batch,
				                           width, size * size));
			} else {
				OK(fp_k_conv2d_forward(k, &s, y, x, w, NULL));
				OK(fp_k_conv2d_backward(k, &s, dx, dw, NULL, dy, x, w));
			}
			OK(fp_kernels_sync(k));
			if (r >= 0)
				t[r] = now() - t0;
		}
		qsort(t, steps, sizeof(double), cmp_d);
		printf("%s %.6f %.2f GB/s (batch %d, %d channels, %dx%d)\n", what, t[steps / 2],
		       nx * sizeof(float) * 6.0 / t[steps / 2] * 1e-9, batch, width, size, size);
	} else if (!strcmp(what, "augment") || !strcmp(what, "upload")) {
		int aug = !strcmp(what, "augment");
		size_t tb = (size_t)batch * size * size * 3, nx = (size_t)batch * 3 * size * size;
		uint8_t *rgb = malloc(tb);
		float *hx = malloc(sizeof(float) * nx);
		struct fp_tile_aug *draws = malloc(sizeof *draws * (size_t)batch);
		srand(5);
		for (size_t i = 0; i < tb; i++)
			rgb[i] = (uint8_t)(rand() % 256);
		for (size_t i = 0; i < nx; i++)
			hx[i] = (float)(rand() % 256) / 255.0f;
		for (int i = 0; i < batch; i++) {
			fp_tile_aug_identity(&draws[i]);
			draws[i].flip_h = i & 1;
			draws[i].rot90 = i % 4;
			draws[i].hed = 1;
			for (int c = 0; c < 3; c++) {
				draws[i].hed_scale[c] = 0.97 + 0.02 * c;
				draws[i].hed_shift[c] = 0.01 * (c - 1);
			}
			draws[i].brightness = 0.05;
			draws[i].contrast = 1.05;
		}
		void *drgb = NULL, *dx = NULL;
		OK(fp_kernels_alloc(k, tb, &drgb));
		OK(fp_kernels_alloc(k, sizeof(float) * nx, &dx));
		for (int r = -1; r < steps; r++) {
			double t0 = now();
			if (aug) {
				OK(fp_kernels_upload(k, drgb, rgb, tb));
				OK(fp_k_augment_tiles(k, dx, drgb, draws, batch, size, size));
			} else {
				OK(fp_kernels_upload(k, dx, hx, sizeof(float) * nx));
			}
			OK(fp_kernels_sync(k));
			if (r >= 0)
				t[r] = now() - t0;
		}
		qsort(t, steps, sizeof(double), cmp_d);
		printf("%s %.6f %.2f tiles/s (batch %d, %dx%d, %s)\n", what, t[steps / 2], batch / t[steps / 2], batch, size,
		       size, aug ? "uint8 upload + augment op" : "float upload only");
		fp_kernels_free(k, drgb);
		fp_kernels_free(k, dx);
		free(rgb);
		free(hx);
		free(draws);
	} else if (!strcmp(what, "gemm")) {
		int n = 1024;
		float *a = dev_random(k, (size_t)n * n, 1), *b = dev_random(k, (size_t)n * n, 2), *c = dev_random(k, (size_t)n * n, 3);
		for (int r = -1; r < steps; r++) {
			double t0 = now();
			OK(fp_k_linear_forward(k, c, a, b, NULL, n, n, n));
			OK(fp_kernels_sync(k));
			if (r >= 0)
				t[r] = now() - t0;
		}
		qsort(t, steps, sizeof(double), cmp_d);
		printf("gemm %.6f %.2f GFLOP/s\n", t[steps / 2], 2.0 * n * n * n / t[steps / 2] * 1e-9);
	} else {
		struct fp_part1_net *net = NULL;
		OK(fp_part1_net_create(k, batch, size, width, &net));
		OK(fp_part1_net_init(net, 1));
		float *x = dev_random(k, (size_t)batch * 3 * size * size, 7), *str = dev_random(k, batch, 8);
		float *bin = dev_random(k, (size_t)2 * batch, 9);
		int32_t *cls = malloc(sizeof(int32_t) * batch);
		for (int i = 0; i < batch; i++)
			cls[i] = i % 3;
		void *clsd = NULL;
		OK(fp_kernels_alloc(k, sizeof(int32_t) * batch, &clsd));
		OK(fp_kernels_upload(k, clsd, cls, sizeof(int32_t) * batch));
		/* BCE targets must lie in [0, 1]: reuse |random| as probabilities */
		float *hb = malloc(sizeof(float) * 2 * batch);
		for (int i = 0; i < 2 * batch; i++)
			hb[i] = (float)(i % 2);
		OK(fp_kernels_upload(k, bin, hb, sizeof(float) * 2 * batch));
		struct fp_adamw ao = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, 0};
		float loss = 0;
		for (int r = -1; r < steps; r++) {
			ao.step = r + 2;
			double t0 = now();
			OK(fp_part1_net_step(net, x, clsd, str, bin, &ao, &loss));
			OK(fp_kernels_sync(k));
			if (r >= 0)
				t[r] = now() - t0;
		}
		qsort(t, steps, sizeof(double), cmp_d);
		printf("step %.6f %.2f tiles/s (batch %d, %dx%d, width %d, loss %.4f)\n", t[steps / 2],
		       batch / t[steps / 2], batch, size, size, width, (double)loss);
		free(cls);
		free(hb);
		fp_part1_net_destroy(net);
	}
	fp_kernels_destroy(k);
	return 0;
}
