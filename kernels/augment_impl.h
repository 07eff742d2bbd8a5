/*
 * augment_impl.h: the per-pixel arithmetic of fp_k_augment_tiles
 * (fp_kernels.h), written once and compiled for both backends: as C for
 * cpu_augment.c and as __host__ __device__ C++ for cuda_augment.cu. The CPU
 * op is the code train/augment.c ran on the host before it became an op,
 * moved here unchanged (same double expressions in the same order), so CPU
 * training inputs are bit-identical to those of earlier versions; the GPU
 * differs only where CUDA's log/exp, fused multiply-adds and the block order
 * of the mean's sum round differently. Internal to kernels/.
 */
#ifndef FP_AUGMENT_IMPL_H
#define FP_AUGMENT_IMPL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fp_kernels.h"

#ifdef __CUDACC__
#define FP_AUG_FN static __host__ __device__ inline
#else
#define FP_AUG_FN static inline
#endif

/* The stain matrices: rows of m are the H, E, DAB optical-density unit
 * vectors (R, G, B); minv its inverse. Computed on the host (both backends
 * use these bits). */
struct fp_aug_stain {
	double m[3][3], minv[3][3];
};

static inline void fp_aug_stain_init(struct fp_aug_stain *st)
{
	static const double rgb_from_hed[3][3] = {{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}, {0.27, 0.57, 0.78}};
	double (*m)[3] = st->m;
	for (int i = 0; i < 3; i++) {
		double n = sqrt(rgb_from_hed[i][0] * rgb_from_hed[i][0] + rgb_from_hed[i][1] * rgb_from_hed[i][1] +
		                rgb_from_hed[i][2] * rgb_from_hed[i][2]);
		for (int j = 0; j < 3; j++) m[i][j] = rgb_from_hed[i][j] / n;
	}
	double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
	             m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
			st->minv[i][j] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
		}
}

/* Output pixel (ox, oy) of one tile before the brightness/contrast step,
 * px in [0, 1] (double). rgb: (T, T, 3) of this tile; f = T / S. */
FP_AUG_FN void fp_aug_pixel(const uint8_t *rgb, int t, int s, int f, const struct fp_tile_aug *a,
                            const struct fp_aug_stain *st, int ox, int oy, double px[3])
{
	int u = ox, v = oy, tmp;
	for (int r = 0; r < a->rot90; r++) {
		tmp = u;
		u = s - 1 - v;
		v = tmp;
	}
	if (a->flip_h) u = s - 1 - u;
	if (a->flip_v) v = s - 1 - v;
	px[0] = px[1] = px[2] = 0;
	for (int dy = 0; dy < f; dy++)
		for (int dx = 0; dx < f; dx++) {
			const uint8_t *p = rgb + ((size_t)(v * f + dy) * (size_t)t + (size_t)(u * f + dx)) * 3;
			for (int c = 0; c < 3; c++) px[c] += p[c];
		}
	for (int c = 0; c < 3; c++) px[c] /= (double)(f * f) * 255.0;
	if (a->hed) {
		double od[3], conc[3];
		for (int c = 0; c < 3; c++) od[c] = -log(fmax(px[c], 1.0 / 255.0));
		for (int k = 0; k < 3; k++) {
			conc[k] = od[0] * st->minv[0][k] + od[1] * st->minv[1][k] + od[2] * st->minv[2][k];
			conc[k] = conc[k] * a->hed_scale[k] + a->hed_shift[k];
		}
		for (int c = 0; c < 3; c++)
			px[c] = exp(-(conc[0] * st->m[0][c] + conc[1] * st->m[1][c] + conc[2] * st->m[2][c]));
	}
}

FP_AUG_FN int fp_aug_has_colour(const struct fp_tile_aug *a)
{
	return a->brightness != 0 || a->contrast != 1;
}

/* The brightness/contrast step of one stored value, mu the channel's mean. */
FP_AUG_FN float fp_aug_colour(float x, double mu, const struct fp_tile_aug *a)
{
	double v = (x - mu) * a->contrast + mu + a->brightness;
	return (float)(v < 0 ? 0 : v > 1 ? 1 : v);
}

#endif
