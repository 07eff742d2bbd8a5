/*
 * augment.c: tile pixels -> network input, with the training augmentations
 * (fp_site_train.h): flips, 90-degree rotations, HED stain jitter,
 * brightness and contrast. Every random value is drawn from (seed, draw), so
 * the input of a given sample of a given step is reproducible.
 *
 * HED jitter (Tellez et al. 2018): RGB -> optical density -> stain
 * concentrations with Ruifrok & Johnston's H, E, DAB vectors (the matrix
 * scikit-image's rgb2hed uses), each concentration scaled by U(1-j, 1+j) and
 * shifted by U(-j, j), then back to RGB.
 */
#include <math.h>
#include <string.h>

#include "fp_site_train.h"
#include "train_internal.h"

/* rows: H, E, DAB optical-density unit vectors (R, G, B) */
static const double RGB_FROM_HED[3][3] = {
	{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}, {0.27, 0.57, 0.78}};

static void invert3(const double a[3][3], double out[3][3])
{
	double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
	             a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
			out[i][j] = (a[r0][c0] * a[r1][c1] - a[r0][c1] * a[r1][c0]) / det;
		}
}

static void normalise_rows(double m[3][3])
{
	for (int i = 0; i < 3; i++) {
		double n = sqrt(m[i][0] * m[i][0] + m[i][1] * m[i][1] + m[i][2] * m[i][2]);
		for (int j = 0; j < 3; j++) m[i][j] /= n;
	}
}

static double uni(uint64_t seed, uint64_t draw, int k, double lo, double hi)
{
	return lo + (hi - lo) * fp_train_uniform(seed, FP_RNG_AUGMENT, draw * 16 + (uint64_t)k);
}

enum fp_status fp_tile_to_input(const uint8_t *rgb, uint32_t t, int s, const struct fp_augment *aug,
                                uint64_t seed, uint64_t draw, float *x)
{
	if (s <= 0 || t == 0 || t % (uint32_t)s)
		return FP_FAIL(FP_ERR_INVALID_ARG, "input: %u px tiles cannot be box-filtered to %d px (need an integer factor)", t, s);
	int f = (int)(t / (uint32_t)s);
	size_t plane = (size_t)s * (size_t)s;
	int flip_h = 0, flip_v = 0, rot = 0;
	double alpha[3] = {1, 1, 1}, beta[3] = {0, 0, 0}, bright = 0, contrast = 1;
	if (aug) {
		flip_h = aug->flips && uni(seed, draw, 0, 0, 1) < 0.5;
		flip_v = aug->flips && uni(seed, draw, 1, 0, 1) < 0.5;
		rot = aug->rot90 ? (int)uni(seed, draw, 2, 0, 4) % 4 : 0;
		for (int c = 0; c < 3 && aug->hed_jitter > 0; c++) {
			alpha[c] = uni(seed, draw, 3 + c, 1 - aug->hed_jitter, 1 + aug->hed_jitter);
			beta[c] = uni(seed, draw, 6 + c, -aug->hed_jitter, aug->hed_jitter);
		}
		if (aug->brightness > 0) bright = uni(seed, draw, 9, -aug->brightness, aug->brightness);
		if (aug->contrast > 0) contrast = uni(seed, draw, 10, 1 - aug->contrast, 1 + aug->contrast);
	}
	int hed = aug && aug->hed_jitter > 0;
	double m[3][3], minv[3][3];
	if (hed) {
		memcpy(m, RGB_FROM_HED, sizeof m);
		normalise_rows(m);
		invert3(m, minv);
	}
	double mean[3] = {0, 0, 0};
	for (int oy = 0; oy < s; oy++)
		for (int ox = 0; ox < s; ox++) {
			/* Source pixel of output (ox, oy) after rotation and flips. */
			int u = ox, v = oy, tmp;
			for (int r = 0; r < rot; r++) {
				tmp = u;
				u = s - 1 - v;
				v = tmp;
			}
			if (flip_h) u = s - 1 - u;
			if (flip_v) v = s - 1 - v;
			double px[3] = {0, 0, 0};
			for (int dy = 0; dy < f; dy++)
				for (int dx = 0; dx < f; dx++) {
					const uint8_t *p = rgb + ((size_t)(v * f + dy) * t + (size_t)(u * f + dx)) * 3;
					for (int c = 0; c < 3; c++) px[c] += p[c];
				}
			for (int c = 0; c < 3; c++) px[c] /= (double)(f * f) * 255.0;
			if (hed) {
				double od[3], conc[3];
				for (int c = 0; c < 3; c++) od[c] = -log(fmax(px[c], 1.0 / 255.0));
				for (int k = 0; k < 3; k++) {
					conc[k] = od[0] * minv[0][k] + od[1] * minv[1][k] + od[2] * minv[2][k];
					conc[k] = conc[k] * alpha[k] + beta[k];
				}
				for (int c = 0; c < 3; c++)
					px[c] = exp(-(conc[0] * m[0][c] + conc[1] * m[1][c] + conc[2] * m[2][c]));
			}
			for (int c = 0; c < 3; c++) {
				x[(size_t)c * plane + (size_t)oy * s + ox] = (float)px[c];
				mean[c] += px[c];
			}
		}
	if (aug && (bright != 0 || contrast != 1)) {
		for (int c = 0; c < 3; c++) {
			double mu = mean[c] / (double)plane;
			for (size_t i = 0; i < plane; i++) {
				double v = (x[(size_t)c * plane + i] - mu) * contrast + mu + bright;
				x[(size_t)c * plane + i] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
			}
		}
	}
	return FP_OK;
}
