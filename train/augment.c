/*
 * augment.c: the random part of the training augmentations (fp_site_train.h):
 * which flips, 90-degree rotation, HED stain jitter and brightness/contrast
 * a tile gets. Every value is drawn from (seed, draw), so the input of a
 * given sample of a given step is reproducible, and always on the host from
 * this stream, whichever backend does the pixel work: the draws become a
 * struct fp_tile_aug and kernels/' fp_k_augment_tiles (or, for one tile
 * without a handle, fp_kernels_augment_tile) turns pixels into input.
 *
 * HED jitter (Tellez et al. 2018): each H, E, DAB concentration scaled by
 * U(1-j, 1+j) and shifted by U(-j, j) (the colour algebra is in kernels/).
 */
#include "fp_kernels.h"
#include "fp_site_train.h"
#include "train_internal.h"

static double uni(uint64_t seed, uint64_t draw, int k, double lo, double hi)
{
	return lo + (hi - lo) * fp_train_uniform(seed, FP_RNG_AUGMENT, draw * 16 + (uint64_t)k);
}

void fp_augment_draw(const struct fp_augment *aug, uint64_t seed, uint64_t draw, struct fp_tile_aug *out)
{
	fp_tile_aug_identity(out);
	if (!aug) return;
	out->flip_h = aug->flips && uni(seed, draw, 0, 0, 1) < 0.5;
	out->flip_v = aug->flips && uni(seed, draw, 1, 0, 1) < 0.5;
	out->rot90 = aug->rot90 ? (int)uni(seed, draw, 2, 0, 4) % 4 : 0;
	for (int c = 0; c < 3 && aug->hed_jitter > 0; c++) {
		out->hed_scale[c] = uni(seed, draw, 3 + c, 1 - aug->hed_jitter, 1 + aug->hed_jitter);
		out->hed_shift[c] = uni(seed, draw, 6 + c, -aug->hed_jitter, aug->hed_jitter);
	}
	out->hed = aug->hed_jitter > 0;
	if (aug->brightness > 0) out->brightness = uni(seed, draw, 9, -aug->brightness, aug->brightness);
	if (aug->contrast > 0) out->contrast = uni(seed, draw, 10, 1 - aug->contrast, 1 + aug->contrast);
}

enum fp_status fp_tile_to_input(const uint8_t *rgb, uint32_t t, int s, const struct fp_augment *aug,
                                uint64_t seed, uint64_t draw, float *x)
{
	struct fp_tile_aug a;
	if (s <= 0 || t == 0 || t > INT32_MAX || t % (uint32_t)s)
		return FP_FAIL(FP_ERR_INVALID_ARG, "input: %u px tiles cannot be box-filtered to %d px (need an integer factor)", t, s);
	fp_augment_draw(aug, seed, draw, &a);
	return fp_kernels_augment_tile(x, rgb, &a, (int)t, s);
}
