/*
 * cpu_augment.c: the CPU twin of the tile -> input op (fp_k_augment_tiles,
 * per-pixel arithmetic in augment_impl.h). Tiles are independent, so the
 * batch is split over threads by tile; each tile is computed sequentially,
 * so the result does not depend on the thread count.
 */
#include <string.h>

#include "augment_impl.h"
#include "kernels_impl.h"

void fp_tile_aug_identity(struct fp_tile_aug *a)
{
	memset(a, 0, sizeof *a);
	for (int c = 0; c < 3; c++) a->hed_scale[c] = 1;
	a->contrast = 1;
}

static void one_tile(float *x, const uint8_t *rgb, const struct fp_tile_aug *a, const struct fp_aug_stain *st,
                     int t, int s)
{
	int f = t / s;
	size_t plane = (size_t)s * (size_t)s;
	double mean[3] = {0, 0, 0};
	for (int oy = 0; oy < s; oy++)
		for (int ox = 0; ox < s; ox++) {
			double px[3];
			fp_aug_pixel(rgb, t, s, f, a, st, ox, oy, px);
			for (int c = 0; c < 3; c++) {
				x[(size_t)c * plane + (size_t)oy * s + ox] = (float)px[c];
				mean[c] += px[c];
			}
		}
	if (!fp_aug_has_colour(a)) return;
	for (int c = 0; c < 3; c++) {
		double mu = mean[c] / (double)plane;
		for (size_t i = 0; i < plane; i++) x[(size_t)c * plane + i] = fp_aug_colour(x[(size_t)c * plane + i], mu, a);
	}
}

enum fp_status fp_kernels_augment_tile(float *x, const uint8_t *rgb, const struct fp_tile_aug *aug, int t, int s)
{
	struct fp_tile_aug id;
	struct fp_aug_stain st;
	if (!x || !rgb || s <= 0 || t <= 0 || t % s)
		return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: augment: %d px tiles cannot be box-filtered to %d px", t, s);
	if (!aug) {
		fp_tile_aug_identity(&id);
		aug = &id;
	}
	if (aug->rot90 < 0 || aug->rot90 > 3)
		return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: augment: rot90 %d is not 0..3", aug->rot90);
	fp_aug_stain_init(&st);
	one_tile(x, rgb, aug, &st, t, s);
	return FP_OK;
}

enum fp_status fp_cpu_augment_tiles(struct fp_cpu *c, float *x, const uint8_t *rgb, const struct fp_tile_aug *host_aug,
                                    int n, int t, int s)
{
	struct fp_tile_aug id;
	struct fp_aug_stain st;
	size_t per = 3 * (size_t)s * (size_t)s, tb = 3 * (size_t)t * (size_t)t;
	(void)c;
	fp_tile_aug_identity(&id);
	fp_aug_stain_init(&st);
	#pragma omp parallel for schedule(static)
	for (int i = 0; i < n; i++)
		one_tile(x + (size_t)i * per, rgb + (size_t)i * tb, host_aug ? host_aug + i : &id, &st, t, s);
	return FP_OK;
}
