/*
 * quantify_cells.c: lymphocyte nuclei counted in one RGB tile
 * (fp_quantify.h, docs/TRAINING.md "Lymphocyte counts").
 *
 * Takes a tile (t, t, 3) uint8 and the slide's stain fit (Macenko H and E
 * vectors and the 99th percentile of the H concentration, from the tile
 * cache's /stain); produces the number of lymphocyte-sized nuclei whose
 * centre lies in the tile. Why cells and not tile classes: a lymphocyte
 * density is cells per area, and most intratumoural lymphocytes are single
 * cells scattered between tumour cells, which never make a tile
 * "lymphocyte-dense" (the tile class counts aggregates only).
 * Method, all lengths in micrometres: haematoxylin concentration by colour
 * deconvolution, scaled by the slide's 99th percentile; nuclear mask where
 * it exceeds FP_LYMPH_H_MIN; Euclidean distance of every mask pixel to the
 * nearest non-mask pixel (Felzenszwalb-Huttenlocher, exact); a nucleus is a
 * plateau of local maxima of that distance, and its radius the distance
 * there. Lymphocytes are the nuclei of radius in [FP_LYMPH_R_MIN_UM,
 * FP_LYMPH_R_MAX_UM] (tumour and hepatocyte nuclei are larger, stromal
 * nuclei thinner). Nuclei centred within FP_LYMPH_BORDER_UM of the tile edge
 * are not counted: the distance there is cut by the edge.
 * Scratch is caller-owned; no allocation per tile.
 */
#include <math.h>
#include <string.h>

#include "fp_common.h"
#include "fp_quantify.h"

#define BIG 1e20f

enum fp_status fp_lymph_detector_init(struct fp_lymph_detector *d, const float he[6], double max_h, double um_per_px)
{
	/* he: (3, 2) row-major, columns H and E. Row 0 of the pseudo-inverse
	 * (HE^T HE)^-1 HE^T maps optical density to H concentration. */
	double a = 0, b = 0, c = 0;
	for (int k = 0; k < 3; k++) {
		a += (double)he[2 * k] * he[2 * k];
		b += (double)he[2 * k] * he[2 * k + 1];
		c += (double)he[2 * k + 1] * he[2 * k + 1];
	}
	double det = a * c - b * b;
	memset(d, 0, sizeof *d);
	if (!(fabs(det) > 1e-9) || !(max_h > 0) || !isfinite(max_h))
		return FP_FAIL(FP_ERR_DATA, "lymphocyte counts: stain fit is degenerate (det %g, H 99th percentile %g)", det,
		               max_h);
	if (!(um_per_px > 0) || um_per_px > FP_LYMPH_MAX_UM_PER_PX)
		return FP_FAIL(FP_ERR_INVALID_ARG,
		               "lymphocyte counts: tiles at %g um/px are too coarse to see nuclei (at most %g um/px)",
		               um_per_px, FP_LYMPH_MAX_UM_PER_PX);
	for (int k = 0; k < 3; k++) d->h_row[k] = (c * he[2 * k] - b * he[2 * k + 1]) / det / max_h;
	for (int v = 0; v < 256; v++) d->od[v] = (float)-log((v + 1) / 256.0);
	d->um_per_px = um_per_px;
	return FP_OK;
}

/* 1-D squared distance transform of f (n samples) into out; v, z scratch. */
static void dt1(const float *f, int n, float *out, int *v, float *z)
{
	int k = 0;
	v[0] = 0;
	z[0] = -BIG;
	z[1] = BIG;
	for (int q = 1; q < n; q++) {
		float s;
		for (;;) {
			int p = v[k];
			s = ((f[q] + (float)q * q) - (f[p] + (float)p * p)) / (2.0f * (float)(q - p));
			if (s > z[k] || k == 0) break;
			k--;
		}
		if (s <= z[k]) { /* k == 0 and the parabola at v[0] is hidden */
			v[0] = q;
			z[0] = -BIG;
			z[1] = BIG;
			continue;
		}
		k++;
		v[k] = q;
		z[k] = s;
		z[k + 1] = BIG;
	}
	k = 0;
	for (int q = 0; q < n; q++) {
		while (z[k + 1] < (float)q) k++;
		float dq = (float)(q - v[k]);
		out[q] = dq * dq + f[v[k]];
	}
}

size_t fp_lymph_scratch_bytes(int t)
{
	/* dist, work, stack: t*t each; lin, lout: t; z, v: t + 2 (4-byte items) */
	return 4 * (3 * (size_t)t * (size_t)t + 4 * (size_t)t + 4);
}

int fp_lymph_count(const struct fp_lymph_detector *d, const uint8_t *rgb, int t, void *scratch)
{
	size_t n = (size_t)t * t;
	float *dist = scratch, *work = dist + n, *lin = work + n, *lout = lin + t, *z = lout + t;
	int *v = (int *)(void *)(z + t + 2), *stack = v + t + 2;
	int any_bg = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = rgb + 3 * i;
		double h = d->h_row[0] * d->od[p[0]] + d->h_row[1] * d->od[p[1]] + d->h_row[2] * d->od[p[2]];
		int in = h > FP_LYMPH_H_MIN;
		dist[i] = in ? BIG : 0.0f;
		any_bg |= !in;
	}
	if (!any_bg) return 0; /* one nucleus wider than the tile: not a lymphocyte */
	for (int x = 0; x < t; x++) {
		for (int y = 0; y < t; y++) lin[y] = dist[(size_t)y * t + x];
		dt1(lin, t, lout, v, z);
		for (int y = 0; y < t; y++) work[(size_t)y * t + x] = lout[y];
	}
	for (int y = 0; y < t; y++) {
		dt1(work + (size_t)y * t, t, lout, v, z);
		memcpy(dist + (size_t)y * t, lout, (size_t)t * sizeof(float));
	}
	/* dist now holds squared distances. Local maxima over a window of
	 * +-w px; plateaus are flood-filled (8-connected) and count once. */
	double upp = d->um_per_px;
	int w = (int)lround(FP_LYMPH_PEAK_UM / upp), border = (int)ceil(FP_LYMPH_BORDER_UM / upp);
	if (w < 1) w = 1;
	float rmin2 = (float)((FP_LYMPH_R_MIN_UM / upp) * (FP_LYMPH_R_MIN_UM / upp));
	float rmax2 = (float)((FP_LYMPH_R_MAX_UM / upp) * (FP_LYMPH_R_MAX_UM / upp));
	unsigned char *mark = (unsigned char *)work; /* work is free now: 0 none, 1 peak, 2 visited */
	memset(mark, 0, n);
	for (int y = border; y < t - border; y++)
		for (int x = border; x < t - border; x++) {
			float c = dist[(size_t)y * t + x];
			if (c < rmin2) continue;
			int is_max = 1;
			for (int dy = -w; dy <= w && is_max; dy++)
				for (int dx = -w; dx <= w; dx++) {
					int yy = y + dy, xx = x + dx;
					if (yy < 0 || xx < 0 || yy >= t || xx >= t) continue;
					if (dist[(size_t)yy * t + xx] > c) {
						is_max = 0;
						break;
					}
				}
			mark[(size_t)y * t + x] = (unsigned char)is_max;
		}
	/* Each pixel is pushed at most once (marked when pushed): n slots. */
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		if (mark[i] != 1) continue;
		float best = 0;
		size_t sp = 0;
		stack[sp++] = (int)i;
		mark[i] = 2;
		while (sp) {
			int j = stack[--sp], jy = j / t, jx = j % t;
			if (dist[j] > best) best = dist[j];
			for (int dy = -1; dy <= 1; dy++)
				for (int dx = -1; dx <= 1; dx++) {
					int yy = jy + dy, xx = jx + dx;
					if (yy < 0 || xx < 0 || yy >= t || xx >= t) continue;
					size_t k = (size_t)yy * t + xx;
					if (mark[k] == 1) {
						mark[k] = 2;
						stack[sp++] = (int)k;
					}
				}
		}
		count += best <= rmax2;
	}
	return count;
}
