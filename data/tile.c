/*
 * tile.c: the image steps of tiling: Otsu, the tissue mask, the area
 * resampler, per-tile QC and Macenko stain statistics (contract in fp_tile.h).
 * Pure functions on caller buffers, except the stain accumulator (create /
 * destroy). Nothing here reads files.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "fp_tile.h"

int fp_tile_otsu(const uint64_t hist[256])
{
	double total = 0, sum = 0;
	for (int i = 0; i < 256; i++) {
		total += (double)hist[i];
		sum += (double)i * hist[i];
	}
	if (total == 0) return 0;
	double wb = 0, sb = 0, best = -1;
	int t = 0;
	for (int i = 0; i < 256; i++) {
		wb += (double)hist[i];
		if (wb == 0) continue;
		double wf = total - wb;
		if (wf == 0) break;
		sb += (double)i * hist[i];
		double mb = sb / wb, mf = (sum - sb) / wf;
		double between = wb * wf * (mb - mf) * (mb - mf);
		if (between > best) {
			best = between;
			t = i;
		}
	}
	return t;
}

static int odd_window(double um, double mpp, int max)
{
	int k = (int)lround(um / mpp);
	if (k < 1) k = 1;
	if (k % 2 == 0) k++;
	return k > max ? max : k;
}

/* Median over a k x k window (edges clamped), through a 256-bin histogram
 * updated as the window slides along a row. The median m (the smallest
 * value whose cumulative count exceeds half) moves from the previous one
 * with lt = count below m kept up to date (Huang 1979), not by a scan from 0. */
static void median_filter(const uint8_t *in, uint32_t w, uint32_t h, int k, uint8_t *out)
{
	int r = k / 2, half = (k * k) / 2;
	for (uint32_t y = 0; y < h; y++) {
		uint32_t hist[256] = {0};
		for (int dy = -r; dy <= r; dy++) {
			int yy = (int)y + dy;
			yy = yy < 0 ? 0 : yy >= (int)h ? (int)h - 1 : yy;
			for (int dx = -r; dx <= r; dx++) {
				int xx = dx < 0 ? 0 : dx >= (int)w ? (int)w - 1 : dx;
				hist[in[(size_t)yy * w + (size_t)xx]]++;
			}
		}
		int m = 0, lt = 0;
		for (uint32_t x = 0; x < w; x++) {
			while (lt > half) lt -= (int)hist[--m];
			while (lt + (int)hist[m] <= half) lt += (int)hist[m++];
			out[(size_t)y * w + x] = (uint8_t)m;
			/* slide: remove column x - r, add column x + r + 1 (clamped) */
			int xo = (int)x - r, xn = (int)x + r + 1;
			xo = xo < 0 ? 0 : xo >= (int)w ? (int)w - 1 : xo;
			xn = xn < 0 ? 0 : xn >= (int)w ? (int)w - 1 : xn;
			for (int dy = -r; dy <= r; dy++) {
				int yy = (int)y + dy;
				yy = yy < 0 ? 0 : yy >= (int)h ? (int)h - 1 : yy;
				int vo = in[(size_t)yy * w + (size_t)xo], vn = in[(size_t)yy * w + (size_t)xn];
				hist[vo]--;
				hist[vn]++;
				lt += (vn < m) - (vo < m);
			}
		}
	}
}

/* Square max (dilate) or min (erode) filter of radius r on a 0/1 mask,
 * separable; tmp has w*h bytes, cnt w entries. Outside the image counts as
 * 0. Each pass keeps the count of ones in the sliding window (per column in
 * cnt for the vertical pass, which walks rows): O(1) per pixel. */
static void morph(uint8_t *m, uint32_t w, uint32_t h, int r, int dilate, uint8_t *tmp, uint32_t *cnt)
{
	uint32_t full = 2 * (uint32_t)r + 1;
	for (uint32_t y = 0; y < h; y++) {
		const uint8_t *row = m + (size_t)y * w;
		uint8_t *o = tmp + (size_t)y * w;
		uint32_t ones = 0;
		for (uint32_t x = 0; x <= (uint32_t)r && x < w; x++) ones += row[x];
		for (uint32_t x = 0; x < w; x++) {
			o[x] = (uint8_t)(dilate ? ones > 0 : ones == full);
			if (x >= (uint32_t)r) ones -= row[x - r];
			if (x + r + 1 < w) ones += row[x + r + 1];
		}
	}
	memset(cnt, 0, (size_t)w * sizeof *cnt);
	for (uint32_t y = 0; y <= (uint32_t)r && y < h; y++)
		for (uint32_t x = 0; x < w; x++) cnt[x] += tmp[(size_t)y * w + x];
	for (uint32_t y = 0; y < h; y++) {
		uint8_t *o = m + (size_t)y * w;
		for (uint32_t x = 0; x < w; x++) o[x] = (uint8_t)(dilate ? cnt[x] > 0 : cnt[x] == full);
		if (y >= (uint32_t)r)
			for (uint32_t x = 0; x < w; x++) cnt[x] -= tmp[(size_t)(y - r) * w + x];
		if (y + r + 1 < h)
			for (uint32_t x = 0; x < w; x++) cnt[x] += tmp[(size_t)(y + r + 1) * w + x];
	}
}

/* Flips every 4-connected component of value `val` smaller than min_px to
 * !val. For holes (val 0), components touching the border are kept.
 * queue: w*h uint32; seen: w*h bytes. */
static void drop_small(uint8_t *m, uint32_t w, uint32_t h, uint8_t val, uint64_t min_px, uint32_t *queue,
                       uint8_t *seen)
{
	size_t n = (size_t)w * h;
	memset(seen, 0, n);
	for (size_t s = 0; s < n; s++) {
		if (seen[s] || m[s] != val) continue;
		size_t head = 0, tail = 0;
		int border = 0;
		queue[tail++] = (uint32_t)s;
		seen[s] = 1;
		while (head < tail) {
			uint32_t p = queue[head++];
			uint32_t x = p % w, y = p / w;
			if (x == 0 || y == 0 || x == w - 1 || y == h - 1) border = 1;
			uint32_t nb[4];
			int k = 0;
			if (x > 0) nb[k++] = p - 1;
			if (x + 1 < w) nb[k++] = p + 1;
			if (y > 0) nb[k++] = p - w;
			if (y + 1 < h) nb[k++] = p + w;
			for (int i = 0; i < k; i++) {
				if (!seen[nb[i]] && m[nb[i]] == val) {
					seen[nb[i]] = 1;
					queue[tail++] = nb[i];
				}
			}
		}
		if (tail < min_px && !(val == 0 && border))
			for (size_t i = 0; i < tail; i++) m[queue[i]] = (uint8_t)!val;
	}
}

enum fp_status fp_tile_tissue_mask(const uint8_t *rgb, uint32_t w, uint32_t h, double mpp,
                                   const struct fp_tile_params *p, uint8_t *mask)
{
	enum fp_status st;
	size_t n;
	uint8_t *sat = NULL, *med = NULL, *tmp = NULL;
	uint32_t *queue = NULL;
	FP_TRY(fp_size_mul(w, h, &n, "mask pixels"));
	if (n == 0) return FP_OK;
	FP_CHECK(st, fp_alloc_array(n, 1, (void **)&sat, "saturation"));
	FP_CHECK(st, fp_alloc_array(n, 1, (void **)&med, "median"));
	FP_CHECK(st, fp_alloc_array(n, 1, (void **)&tmp, "morphology"));
	FP_CHECK(st, fp_alloc_array(n, sizeof *queue, (void **)&queue, "components"));
	for (size_t i = 0; i < n; i++) {
		int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
		int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
		int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
		sat[i] = (uint8_t)(mx ? (255 * (mx - mn) + mx / 2) / mx : 0);
	}
	median_filter(sat, w, h, odd_window(p->median_um, mpp, 15), med);
	uint64_t hist[256] = {0};
	for (size_t i = 0; i < n; i++) hist[med[i]]++;
	int t = fp_tile_otsu(hist);
	if (t < p->sat_floor) t = (int)p->sat_floor;
	for (size_t i = 0; i < n; i++) {
		int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
		int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
		int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
		/* Not black (scanner borders, folds of ink) and not white. */
		mask[i] = (uint8_t)(med[i] > t && mx > 40 && mn < 235);
	}
	int rc = (int)lround(p->close_um / mpp);
	if (rc > 0) {
		if (rc > 32) rc = 32;
		morph(mask, w, h, rc, 1, tmp, queue); /* queue is free until drop_small */
		morph(mask, w, h, rc, 0, tmp, queue);
	}
	double px_area = mpp * mpp;
	drop_small(mask, w, h, 1, (uint64_t)ceil(p->min_object_um2 / px_area), queue, tmp);
	drop_small(mask, w, h, 0, (uint64_t)ceil(p->min_hole_um2 / px_area), queue, tmp);
	st = FP_OK;
fail:
	free(sat);
	free(med);
	free(tmp);
	free(queue);
	return st;
}

/* Weights of the input pixels under output cell i of a 1-D area filter:
 * inputs first .. first + count - 1, weights w[0 .. count) (overlap / s, as
 * float, the precision they are used at). */
#define SPAN_MAX 72
struct span {
	int first, count;
	float w[SPAN_MAX];
};

static void spans(double o, double s, uint32_t n, struct span *out)
{
	for (uint32_t i = 0; i < n; i++) {
		double a = o + i * s, b = a + s;
		int k0 = (int)floor(a), k1 = (int)ceil(b);
		struct span *sp = &out[i];
		sp->first = k0;
		sp->count = 0;
		for (int k = k0; k < k1 && sp->count < SPAN_MAX; k++) {
			double lo = a > k ? a : k, hi = b < k + 1 ? b : k + 1;
			double wt = hi - lo;
			if (wt <= 0) {
				if (sp->count == 0) sp->first++;
				continue;
			}
			sp->w[sp->count++] = (float)(wt / s);
		}
	}
}

void fp_tile_box_reduce(const uint8_t *in, uint32_t iw, uint32_t ih, uint32_t ox, uint32_t oy, uint32_t k,
                        uint8_t *out, uint32_t ow, uint32_t oh, size_t out_stride)
{
	uint32_t kk = k * k;
	if ((uint64_t)ox + (uint64_t)k * ow <= iw && (uint64_t)oy + (uint64_t)k * oh <= ih) {
		/* Every block inside the input: no clamping. k = 2 (0.25 -> 0.5 and
		 * 0.5 -> 1 um/px) is the common case, worth its own loop: rows added,
		 * then each byte with the one 3 further (its neighbour pixel's), both
		 * passes vectorised; output pixel i is then bytes 6i..6i+2, moved 4
		 * at a time (the 4th is overwritten by the next pixel). */
		uint16_t vsum[6 * 2048];
		uint8_t hsum[6 * 2048];
		for (uint32_t j = 0; j < oh; j++) {
			const uint8_t *a = in + ((size_t)(oy + k * j) * iw + ox) * 3;
			uint8_t *o = out + (size_t)j * out_stride * 3;
			if (k == 2 && ow >= 1 && ow <= 2048) {
				const uint8_t *b = a + (size_t)iw * 3;
				uint32_t n = 6 * ow;
				for (uint32_t x = 0; x < n; x++) vsum[x] = (uint16_t)(a[x] + b[x]);
				for (uint32_t x = 0; x + 3 < n; x++) hsum[x] = (uint8_t)((vsum[x] + vsum[x + 3] + 2) >> 2);
				for (uint32_t i = 0; i + 1 < ow; i++) memcpy(o + 3 * (size_t)i, hsum + 6 * (size_t)i, 4);
				memcpy(o + 3 * (size_t)(ow - 1), hsum + 6 * (size_t)(ow - 1), 3);
				continue;
			}
			for (uint32_t i = 0; i < ow; i++) {
				uint32_t acc0 = 0, acc1 = 0, acc2 = 0;
				for (uint32_t dy = 0; dy < k; dy++) {
					const uint8_t *r = a + ((size_t)dy * iw + (size_t)i * k) * 3;
					for (uint32_t dx = 0; dx < k; dx++, r += 3) {
						acc0 += r[0];
						acc1 += r[1];
						acc2 += r[2];
					}
				}
				o[3 * i] = (uint8_t)((acc0 + kk / 2) / kk);
				o[3 * i + 1] = (uint8_t)((acc1 + kk / 2) / kk);
				o[3 * i + 2] = (uint8_t)((acc2 + kk / 2) / kk);
			}
		}
		return;
	}
	/* Blocks reaching past the input repeat its last row and column. */
	for (uint32_t j = 0; j < oh; j++) {
		for (uint32_t i = 0; i < ow; i++) {
			uint32_t acc[3] = {0, 0, 0};
			for (uint32_t dy = 0; dy < k; dy++) {
				uint32_t yy = oy + j * k + dy;
				if (yy >= ih) yy = ih - 1;
				const uint8_t *row = in + (size_t)yy * iw * 3;
				for (uint32_t dx = 0; dx < k; dx++) {
					uint32_t xx = ox + i * k + dx;
					if (xx >= iw) xx = iw - 1;
					acc[0] += row[3 * xx];
					acc[1] += row[3 * xx + 1];
					acc[2] += row[3 * xx + 2];
				}
			}
			uint8_t *o = out + ((size_t)j * out_stride + i) * 3;
			for (int c = 0; c < 3; c++) o[c] = (uint8_t)((acc[c] + kk / 2) / kk);
		}
	}
}

/* The fractional path: a horizontal pass over each input row (its columns
 * clamped to the input), then a vertical pass per output row over the rows
 * of its span (clamped to the rows the output needs). Horizontal results
 * live in a ring of `ring` rows, enough for any output row's span, so the
 * working set stays in cache; the arithmetic (float, in this order) is the
 * same whatever the ring size. */
void fp_tile_resample_area(const uint8_t *in, uint32_t iw, uint32_t ih, double x0, double y0, double scale,
                           uint8_t *out, uint32_t on)
{
	double k = round(scale);
	if (k >= 1 && fabs(scale - k) < 1e-9 && x0 == floor(x0) && y0 == floor(y0) && x0 >= 0 && y0 >= 0) {
		fp_tile_box_reduce(in, iw, ih, (uint32_t)x0, (uint32_t)y0, (uint32_t)k, out, on, on, on);
		return;
	}
	struct span *sx = malloc(on * sizeof *sx), *sy = malloc(on * sizeof *sy);
	uint32_t ring = SPAN_MAX + 1;
	if (scale > 0 && scale + 3 < ring) ring = (uint32_t)ceil(scale) + 3;
	float *hrows = malloc((size_t)on * 3 * sizeof *hrows * ring), *fsrc = malloc((size_t)iw * 3 * sizeof *fsrc);
	int *hidx = malloc((size_t)on * SPAN_MAX * sizeof *hidx);
	if (!sx || !sy || !hrows || !fsrc || !hidx) {
		memset(out, 255, (size_t)on * on * 3);
		goto done;
	}
	spans(x0, scale, on, sx);
	spans(y0, scale, on, sy);
	for (uint32_t i = 0; i < on; i++)
		for (int q = 0; q < sx[i].count; q++) {
			int xx = sx[i].first + q;
			hidx[(size_t)i * SPAN_MAX + q] = 3 * (xx < 0 ? 0 : xx >= (int)iw ? (int)iw - 1 : xx);
		}
	int ylo = sy[0].first < 0 ? 0 : sy[0].first;
	int yhi = sy[on - 1].first + sy[on - 1].count;
	if (yhi > (int)ih) yhi = (int)ih;
	if (yhi <= ylo || iw == 0) {
		memset(out, 255, (size_t)on * on * 3);
		goto done;
	}
	int next = ylo; /* the next input row to filter horizontally */
	for (uint32_t j = 0; j < on; j++) {
		int need = sy[j].first + sy[j].count - 1; /* the last row this output row reads */
		need = need < ylo ? ylo : need >= yhi ? yhi - 1 : need;
		for (; next <= need; next++) {
			const uint8_t *src = in + (size_t)next * iw * 3;
			float *dst = hrows + (size_t)((uint32_t)next % ring) * on * 3;
			for (uint32_t x = 0; x < iw * 3; x++) fsrc[x] = src[x];
			for (uint32_t i = 0; i < on; i++) {
				const int *ix = hidx + (size_t)i * SPAN_MAX;
				const float *w = sx[i].w;
				float a0 = 0, a1 = 0, a2 = 0;
				for (int q = 0; q < sx[i].count; q++) {
					const float *p = fsrc + ix[q];
					a0 += w[q] * p[0];
					a1 += w[q] * p[1];
					a2 += w[q] * p[2];
				}
				dst[3 * i] = a0;
				dst[3 * i + 1] = a1;
				dst[3 * i + 2] = a2;
			}
		}
		uint8_t *o = out + (size_t)j * on * 3;
		float acc[3 * 4096];
		memset(acc, 0, (size_t)on * 3 * sizeof *acc);
		for (int q = 0; q < sy[j].count; q++) {
			int yy = sy[j].first + q;
			yy = yy < ylo ? ylo : yy >= yhi ? yhi - 1 : yy;
			const float *r = hrows + (size_t)((uint32_t)yy % ring) * on * 3;
			float w = sy[j].w[q];
			for (uint32_t i = 0; i < on * 3; i++) acc[i] += w * r[i];
		}
		for (uint32_t i = 0; i < on * 3; i++) {
			float v = acc[i] + 0.5f;
			o[i] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)v);
		}
	}
done:
	free(sx);
	free(sy);
	free(hrows);
	free(fsrc);
	free(hidx);
}

static double od_of(int v) { return -log((v + 1) / 256.0); }

static float od_lut[256];
static uint8_t sat_lut[256 * 256]; /* [max * 256 + min]: HSV saturation x 255 */
static pthread_once_t od_once = PTHREAD_ONCE_INIT;
static void od_init(void)
{
	for (int i = 0; i < 256; i++) od_lut[i] = (float)od_of(i);
	for (int mx = 0; mx < 256; mx++)
		for (int mn = 0; mn <= mx; mn++) sat_lut[mx * 256 + mn] = (uint8_t)(mx ? 255 * (mx - mn) / mx : 0);
}

#if defined(__GNUC__) && !defined(__clang__)
#define FP_VECTORISE __attribute__((optimize("tree-vectorize")))
#else
#define FP_VECTORISE
#endif

/* grey = (77 R + 150 G + 29 B) / 256, as 8 bits. */
FP_VECTORISE static void grey_rows(const uint8_t *rgb, size_t n, uint8_t *grey)
{
	for (size_t i = 0; i < n; i++)
		grey[i] = (uint8_t)((77 * rgb[3 * i] + 150 * rgb[3 * i + 1] + 29 * rgb[3 * i + 2]) >> 8);
}

/* Sum and sum of squares of the Laplacian over the interior of one row
 * (|l| <= 1020, so a row of at most 2048 pixels fits int32). */
FP_VECTORISE static void laplacian_row(const uint8_t *row, uint32_t t, int32_t *sum, int32_t *sq)
{
	const uint8_t *up = row - t, *dn = row + t;
	int32_t s = 0, q = 0;
	for (uint32_t x = 1; x + 1 < t; x++) {
		int32_t l = (int32_t)row[x - 1] + row[x + 1] + up[x] + dn[x] - 4 * (int32_t)row[x];
		s += l;
		q += l * l;
	}
	*sum = s;
	*sq = q;
}

void fp_tile_qc(const uint8_t *rgb, uint32_t t, float *qc)
{
	size_t n = (size_t)t * t, white = 0, gray = 0, pen = 0, ns = 0;
	float od = 0;
	pthread_once(&od_once, od_init);
	/* Fractions and mean OD from every other pixel of every other row (a
	 * quarter of the pixels: plenty for fractions, 4x cheaper). */
	for (uint32_t y = 0; y < t; y += 2) {
		const uint8_t *row = rgb + (size_t)y * t * 3;
		for (uint32_t x = 0; x < t; x += 2) {
			int r = row[3 * x], g = row[3 * x + 1], b = row[3 * x + 2];
			int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
			int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
			int s = sat_lut[mx * 256 + mn];
			white += mn > 220;
			gray += s < 13;
			od += od_lut[r] + od_lut[g] + od_lut[b];
			ns++;
			if (s > 64 && mx > 40 && mx != r) {
				/* Hue in [70, 250] degrees, in integers: H&E lies in pink and
				 * purple (250-360, 0-60 degrees, red or blue maximum); blue,
				 * green and cyan inks do not. Ties go to red, then green. */
				int d = mx - mn;
				if (mx == g) pen += 6 * (b - r) >= -5 * d; /* hue >= 70 */
				else pen += 6 * (r - g) <= d;              /* hue <= 250 */
			}
		}
	}
	/* Variance of the 4-neighbour Laplacian of the 8-bit grey image (blur:
	 * low values; the usual OpenCV measure), over every pixel, in small
	 * integers so that the loops vectorise. */
	double var = 0;
	uint8_t *grey = malloc(n);
	if (grey && t > 2) {
		grey_rows(rgb, n, grey);
		int64_t lsum = 0, lsq = 0;
		for (uint32_t y = 1; y + 1 < t; y++) {
			int32_t rs = 0, rq = 0;
			laplacian_row(grey + (size_t)y * t, t, &rs, &rq);
			lsum += rs;
			lsq += rq;
		}
		double m = (double)(t - 2) * (t - 2);
		var = (double)lsq / m - ((double)lsum / m) * ((double)lsum / m);
	}
	free(grey);
	qc[1] = (float)((double)white / ns);
	qc[2] = (float)((double)gray / ns);
	qc[3] = (float)var;
	qc[4] = (float)((double)pen / ns);
	qc[5] = (float)(od / (3.0 * ns));
}

/* ---- Macenko ---- */

struct fp_stain_acc {
	float *od;        /* (cap, 3) */
	size_t n, cap;
	uint64_t seen;
	uint64_t rng;
};

enum fp_status fp_stain_acc_create(size_t max_samples, struct fp_stain_acc **out)
{
	struct fp_stain_acc *a = calloc(1, sizeof *a);
	if (!a) return FP_FAIL(FP_ERR_NOMEM, "stain accumulator");
	enum fp_status st = fp_alloc_array(max_samples ? max_samples * 3 : 3, sizeof *a->od, (void **)&a->od, "stain samples");
	if (st != FP_OK) {
		free(a);
		return st;
	}
	a->cap = max_samples;
	a->rng = 0x9E3779B97F4A7C15ull; /* fixed seed: the same slide gives the same statistics */
	*out = a;
	return FP_OK;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

void fp_stain_acc_add(struct fp_stain_acc *a, const uint8_t *rgb, size_t n, size_t stride)
{
	if (!a || a->cap == 0) return;
	if (stride == 0) stride = 1;
	pthread_once(&od_once, od_init);
	for (size_t i = 0; i < n; i += stride) {
		float v[3];
		for (int c = 0; c < 3; c++) v[c] = od_lut[rgb[3 * i + c]];
		a->seen++;
		size_t slot;
		if (a->n < a->cap) slot = a->n++;
		else {
			/* Reservoir sampling keeps a uniform sample of every pixel seen. */
			uint64_t j = (uint64_t)(((unsigned __int128)xorshift(&a->rng) * a->seen) >> 64);
			if (j >= a->cap) continue;
			slot = (size_t)j;
		}
		memcpy(a->od + 3 * slot, v, sizeof v);
	}
}

/* Percentiles p[k] (0-100) of v[0..n) from a 65536-bin histogram between the
 * minimum and the maximum (linear inside a bin): no sort, error below
 * (max - min) / 65536. */
#define PCT_BINS 65536
static enum fp_status percentiles(const float *v, size_t n, size_t stride, const double *p, int k, float *out)
{
	if (n == 0) {
		for (int i = 0; i < k; i++) out[i] = 0;
		return FP_OK;
	}
	float lo = v[0], hi = v[0];
	for (size_t i = 0; i < n; i++) {
		float x = v[i * stride];
		if (x < lo) lo = x;
		if (x > hi) hi = x;
	}
	if (!(hi > lo)) {
		for (int i = 0; i < k; i++) out[i] = lo;
		return FP_OK;
	}
	uint32_t *h = calloc(PCT_BINS, sizeof *h);
	if (!h) return FP_FAIL(FP_ERR_NOMEM, "percentile histogram");
	double w = ((double)hi - lo) / PCT_BINS;
	for (size_t i = 0; i < n; i++) {
		size_t b = (size_t)(((double)v[i * stride] - lo) / w);
		h[b >= PCT_BINS ? PCT_BINS - 1 : b]++;
	}
	for (int q = 0; q < k; q++) {
		double target = p[q] / 100.0 * (double)(n - 1) + 0.5, acc = 0;
		size_t b = 0;
		while (b + 1 < PCT_BINS && acc + h[b] < target) acc += h[b++];
		double f = h[b] ? (target - acc) / h[b] : 0;
		out[q] = (float)(lo + (b + (f < 0 ? 0 : f > 1 ? 1 : f)) * w);
	}
	free(h);
	return FP_OK;
}

/* Eigen-decomposition of a symmetric 3x3 matrix by Jacobi rotations:
 * values descending, vectors in columns of V. */
static void eig3(double A[3][3], double val[3], double V[3][3])
{
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) V[i][j] = i == j;
	for (int sweep = 0; sweep < 50; sweep++) {
		double off = fabs(A[0][1]) + fabs(A[0][2]) + fabs(A[1][2]);
		if (off < 1e-15) break;
		for (int p = 0; p < 2; p++) {
			for (int q = p + 1; q < 3; q++) {
				if (fabs(A[p][q]) < 1e-18) continue;
				double th = (A[q][q] - A[p][p]) / (2 * A[p][q]);
				double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
				double c = 1 / sqrt(t * t + 1), s = t * c;
				for (int k = 0; k < 3; k++) {
					double akp = A[k][p], akq = A[k][q];
					A[k][p] = c * akp - s * akq;
					A[k][q] = s * akp + c * akq;
				}
				for (int k = 0; k < 3; k++) {
					double apk = A[p][k], aqk = A[q][k];
					A[p][k] = c * apk - s * aqk;
					A[q][k] = s * apk + c * aqk;
				}
				for (int k = 0; k < 3; k++) {
					double vkp = V[k][p], vkq = V[k][q];
					V[k][p] = c * vkp - s * vkq;
					V[k][q] = s * vkp + c * vkq;
				}
			}
		}
	}
	int idx[3] = {0, 1, 2};
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (A[idx[j]][idx[j]] > A[idx[i]][idx[i]]) {
				int t = idx[i];
				idx[i] = idx[j];
				idx[j] = t;
			}
	double W[3][3];
	for (int i = 0; i < 3; i++) {
		val[i] = A[idx[i]][idx[i]];
		for (int k = 0; k < 3; k++) W[k][i] = V[k][idx[i]];
	}
	memcpy(V, W, sizeof W);
}

enum fp_status fp_stain_fit(struct fp_stain_acc *a, struct fp_stain_stats *out)
{
	enum fp_status st = FP_OK;
	float *phi = NULL, *conc = NULL;
	memset(out, 0, sizeof *out);
	size_t n = a->n;
	if (n == 0) return FP_OK;
	static const double pcts[7] = {1, 5, 25, 50, 75, 95, 99};
	for (int c = 0; c < 3; c++) {
		float v[7] = {0};
		FP_CHECK(st, percentiles(a->od + c, n, 3, pcts, 7, v));
		for (int k = 0; k < 7; k++) out->od_pct[k][c] = v[k];
	}
	/* Tissue pixels: every channel's OD at least 0.15 (Macenko's beta). */
	size_t m = 0;
	double mean[3] = {0, 0, 0};
	for (size_t i = 0; i < n; i++) {
		const float *v = a->od + 3 * i;
		if (v[0] < 0.15f || v[1] < 0.15f || v[2] < 0.15f) continue;
		for (int c = 0; c < 3; c++) mean[c] += v[c];
		m++;
	}
	out->n_pixels = m;
	if (m < 100) goto fail; /* too little tissue: valid stays 0 */
	for (int c = 0; c < 3; c++) mean[c] /= (double)m;
	double C[3][3] = {{0}};
	for (size_t i = 0; i < n; i++) {
		const float *v = a->od + 3 * i;
		if (v[0] < 0.15f || v[1] < 0.15f || v[2] < 0.15f) continue;
		for (int r = 0; r < 3; r++)
			for (int s = 0; s < 3; s++) C[r][s] += (v[r] - mean[r]) * (v[s] - mean[s]);
	}
	for (int r = 0; r < 3; r++)
		for (int s = 0; s < 3; s++) C[r][s] /= (double)(m - 1);
	double val[3], V[3][3];
	eig3(C, val, V);
	double e[2][3];
	for (int j = 0; j < 2; j++) {
		/* Orient each axis so that positive OD projects positively. */
		double sgn = V[0][j] + V[1][j] + V[2][j] < 0 ? -1 : 1;
		for (int k = 0; k < 3; k++) e[j][k] = sgn * V[k][j];
	}
	FP_CHECK(st, fp_alloc_array(m, sizeof *phi, (void **)&phi, "stain angles"));
	size_t q = 0;
	for (size_t i = 0; i < n; i++) {
		const float *v = a->od + 3 * i;
		if (v[0] < 0.15f || v[1] < 0.15f || v[2] < 0.15f) continue;
		double p0 = e[0][0] * v[0] + e[0][1] * v[1] + e[0][2] * v[2];
		double p1 = e[1][0] * v[0] + e[1][1] * v[1] + e[1][2] * v[2];
		phi[q++] = (float)atan2(p1, p0);
	}
	static const double p199[2] = {1, 99};
	float ext[2] = {0, 0};
	FP_CHECK(st, percentiles(phi, q, 1, p199, 2, ext));
	double lo = ext[0], hi = ext[1];
	double vmin[3], vmax[3];
	for (int k = 0; k < 3; k++) {
		vmin[k] = e[0][k] * cos(lo) + e[1][k] * sin(lo);
		vmax[k] = e[0][k] * cos(hi) + e[1][k] * sin(hi);
	}
	/* Haematoxylin is the vector with the larger red OD. */
	const double *h = vmin[0] > vmax[0] ? vmin : vmax, *ev = vmin[0] > vmax[0] ? vmax : vmin;
	double nh = sqrt(h[0] * h[0] + h[1] * h[1] + h[2] * h[2]), ne = sqrt(ev[0] * ev[0] + ev[1] * ev[1] + ev[2] * ev[2]);
	if (!(nh > 0) || !(ne > 0)) goto fail;
	double HE[3][2];
	for (int k = 0; k < 3; k++) {
		HE[k][0] = h[k] / nh;
		HE[k][1] = ev[k] / ne;
		out->he[k][0] = (float)HE[k][0];
		out->he[k][1] = (float)HE[k][1];
	}
	/* Concentrations by least squares: (HE^T HE)^-1 HE^T od. */
	double g00 = 0, g01 = 0, g11 = 0;
	for (int k = 0; k < 3; k++) {
		g00 += HE[k][0] * HE[k][0];
		g01 += HE[k][0] * HE[k][1];
		g11 += HE[k][1] * HE[k][1];
	}
	double det = g00 * g11 - g01 * g01;
	if (!(fabs(det) > 1e-12)) goto fail;
	FP_CHECK(st, fp_alloc_array(n * 2, sizeof *conc, (void **)&conc, "stain concentrations"));
	for (size_t i = 0; i < n; i++) {
		const float *v = a->od + 3 * i;
		double b0 = HE[0][0] * v[0] + HE[1][0] * v[1] + HE[2][0] * v[2];
		double b1 = HE[0][1] * v[0] + HE[1][1] * v[1] + HE[2][1] * v[2];
		conc[i] = (float)((g11 * b0 - g01 * b1) / det);
		conc[n + i] = (float)((g00 * b1 - g01 * b0) / det);
	}
	static const double p99 = 99;
	FP_CHECK(st, percentiles(conc, n, 1, &p99, 1, &out->max_c[0]));
	FP_CHECK(st, percentiles(conc + n, n, 1, &p99, 1, &out->max_c[1]));
	out->valid = 1;
fail:
	free(phi);
	free(conc);
	return st;
}

void fp_stain_acc_destroy(struct fp_stain_acc *a)
{
	if (!a) return;
	free(a->od);
	free(a);
}
