/*
 * test_tile.c: tissue detection, grid, resampling, QC, stain statistics and
 * fp_tile_slide end to end (facts of fp_tile.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_test.h"
#include "fp_tile.h"
#include "test_tile_util.h"

static char *tpath(const char *name)
{
	static char buf[4][4096];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", fp_test_tmpdir(), name);
	return buf[k];
}

FP_TEST(otsu_splits_two_modes)
{
	uint64_t h[256] = {0};
	for (int i = 10; i < 30; i++) h[i] = 100;
	for (int i = 150; i < 170; i++) h[i] = 50;
	int t = fp_tile_otsu(h);
	CHECK_MSG(t >= 29 && t < 150, "threshold %d", t);
}

/* A disc of tissue drawn at `mpp`: radius 400 um, plus a 30 um speck of
 * debris (below min_object_um2) and a 40 um hole (below min_hole_um2). */
static void draw_scene(uint8_t *rgb, uint32_t w, uint32_t h, double mpp)
{
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			double ux = x * mpp, uy = y * mpp;
			double r = sqrt((ux - 600) * (ux - 600) + (uy - 600) * (uy - 600));
			double sp = sqrt((ux - 1300) * (ux - 1300) + (uy - 300) * (uy - 300));
			double hole = sqrt((ux - 600) * (ux - 600) + (uy - 500) * (uy - 500));
			uint8_t *o = rgb + ((size_t)y * w + x) * 3;
			int tissue = (r < 400 && hole > 20) || sp < 15;
			if (tissue) { o[0] = 200; o[1] = 110; o[2] = 170; }
			else { o[0] = 240; o[1] = 238; o[2] = 242; }
		}
}

static double mask_area_um2(uint32_t w, uint32_t h, double mpp, uint8_t **mask_out)
{
	uint8_t *rgb = malloc((size_t)w * h * 3), *m = malloc((size_t)w * h);
	draw_scene(rgb, w, h, mpp);
	struct fp_tile_params p;
	fp_tile_params_default(&p);
	CHECK_OK(fp_tile_tissue_mask(rgb, w, h, mpp, &p, m));
	double a = 0;
	for (size_t i = 0; i < (size_t)w * h; i++) a += m[i];
	free(rgb);
	if (mask_out) *mask_out = m;
	else free(m);
	return a * mpp * mpp;
}

/* Parameters are in micrometres: the same scene at 8 and 4 um/px gives the
 * same tissue area, debris dropped and the small hole filled. */
FP_TEST(tissue_mask_is_resolution_independent)
{
	uint8_t *m8 = NULL;
	double a8 = mask_area_um2(200, 200, 8.0, &m8);
	double a4 = mask_area_um2(400, 400, 4.0, NULL);
	double disc = M_PI * 400 * 400;
	CHECK_NEAR(a8, disc, 0, 0.05);
	CHECK_NEAR(a4, disc, 0, 0.05);
	CHECK_NEAR(a8, a4, 0, 0.05);
	CHECK_INT_EQ(m8[(size_t)(300 / 8) * 200 + 1300 / 8], 0); /* debris removed */
	CHECK_INT_EQ(m8[(size_t)(500 / 8) * 200 + 600 / 8], 1);  /* hole filled */
	free(m8);
}

FP_TEST(resample_area_integer_factor_is_block_mean)
{
	uint8_t in[8 * 8 * 3], out[4 * 4 * 3];
	for (int i = 0; i < 8 * 8 * 3; i++) in[i] = (uint8_t)((i * 37) % 251);
	fp_tile_resample_area(in, 8, 8, 0, 0, 2.0, out, 4);
	for (int y = 0; y < 4; y++)
		for (int x = 0; x < 4; x++)
			for (int c = 0; c < 3; c++) {
				int s = 0;
				for (int dy = 0; dy < 2; dy++)
					for (int dx = 0; dx < 2; dx++) s += in[((2 * y + dy) * 8 + 2 * x + dx) * 3 + c];
				CHECK_INT_EQ(out[(y * 4 + x) * 3 + c], (int)lround(s / 4.0));
			}
}

/* The integer-factor path, k = 2 (its own loop) and k = 3, written into a
 * sub-rectangle of a wider output: each pixel is the rounded block mean
 * (blocks past the input repeat its last row and column), and nothing
 * outside the sub-rectangle is touched. */
FP_TEST(box_reduce_is_block_mean_inside_a_stride)
{
	enum { IW = 37, IH = 29, OS = 40 };
	uint8_t in[IW * IH * 3], out[OS * 16 * 3];
	for (int i = 0; i < IW * IH * 3; i++) in[i] = (uint8_t)((i * 97 + i / 7) % 256);
	for (uint32_t k = 2; k <= 3; k++) {
		uint32_t ow = k == 2 ? 18 : 13, oh = k == 2 ? 14 : 10; /* k = 3: the last row/column clamp */
		memset(out, 7, sizeof out);
		fp_tile_box_reduce(in, IW, IH, 1, 0, k, out + (2 * OS + 3) * 3, ow, oh, OS);
		for (uint32_t y = 0; y < 16; y++)
			for (uint32_t x = 0; x < OS; x++)
				for (int c = 0; c < 3; c++) {
					int got = out[(y * OS + x) * 3 + c], want = 7;
					if (y >= 2 && y < 2 + oh && x >= 3 && x < 3 + ow) {
						uint32_t s = 0;
						for (uint32_t dy = 0; dy < k; dy++)
							for (uint32_t dx = 0; dx < k; dx++) {
								uint32_t yy = (y - 2) * k + dy, xx = 1 + (x - 3) * k + dx;
								yy = yy < IH ? yy : IH - 1;
								xx = xx < IW ? xx : IW - 1;
								s += in[(yy * IW + xx) * 3 + c];
							}
						want = (int)((s + k * k / 2) / (k * k));
					}
					CHECK_MSG(got == want, "k %u (%u, %u, %d): %d, want %d", k, x, y, c, got, want);
				}
	}
}

FP_TEST(resample_area_fractional_keeps_constant_and_mean)
{
	uint32_t iw = 41, ih = 41;
	uint8_t *in = malloc(iw * ih * 3), out[32 * 32 * 3];
	memset(in, 123, iw * ih * 3);
	fp_tile_resample_area(in, iw, ih, 0.3, 0.7, 1.25, out, 32);
	for (int i = 0; i < 32 * 32 * 3; i++) CHECK_INT_EQ(out[i], 123);
	free(in);
}

/* The fractional path against the filter's definition in doubles (overlap
 * weights, edges repeated): equal up to float rounding. */
FP_TEST(resample_area_fractional_matches_definition)
{
	enum { IW = 100, IH = 90, ON = 45 };
	const double x0 = 0.37, y0 = 0.81, s = 1.9;
	uint8_t *in = malloc(IW * IH * 3), out[ON * ON * 3];
	for (int i = 0; i < IW * IH * 3; i++) in[i] = (uint8_t)((i * 131 + (i / 300) * 7) % 256);
	fp_tile_resample_area(in, IW, IH, x0, y0, s, out, ON);
	int worst = 0;
	for (int j = 0; j < ON; j++)
		for (int i = 0; i < ON; i++)
			for (int c = 0; c < 3; c++) {
				double acc = 0;
				for (int y = (int)floor(y0 + j * s); y < (int)ceil(y0 + (j + 1) * s); y++) {
					double wy = fmin(y0 + (j + 1) * s, y + 1) - fmax(y0 + j * s, y);
					if (wy <= 0) continue;
					for (int x = (int)floor(x0 + i * s); x < (int)ceil(x0 + (i + 1) * s); x++) {
						double wx = fmin(x0 + (i + 1) * s, x + 1) - fmax(x0 + i * s, x);
						if (wx <= 0) continue;
						int xx = x < IW ? x : IW - 1, yy = y < IH ? y : IH - 1;
						acc += wx * wy * in[(yy * IW + xx) * 3 + c];
					}
				}
				int d = abs(out[(j * ON + i) * 3 + c] - (int)lround(acc / (s * s)));
				if (d > worst) worst = d;
			}
	CHECK_MSG(worst <= 1, "largest difference %d", worst);
	free(in);
}

FP_TEST(qc_white_gray_pen_blur)
{
	uint8_t *t = malloc(64 * 64 * 3);
	float qc[FP_TILE_QC_N];
	memset(t, 250, 64 * 64 * 3);
	fp_tile_qc(t, 64, qc);
	CHECK_NEAR(qc[1], 1.0, 1e-6, 0);
	CHECK_NEAR(qc[2], 1.0, 1e-6, 0);
	CHECK_NEAR(qc[3], 0.0, 1e-6, 0);
	for (int i = 0; i < 64 * 64; i++) { t[3 * i] = 30; t[3 * i + 1] = 60; t[3 * i + 2] = 200; } /* blue pen */
	fp_tile_qc(t, 64, qc);
	CHECK_NEAR(qc[4], 1.0, 1e-6, 0);
	for (int i = 0; i < 64 * 64; i++) { t[3 * i] = 200; t[3 * i + 1] = 110; t[3 * i + 2] = 170; } /* eosin pink */
	fp_tile_qc(t, 64, qc);
	CHECK_NEAR(qc[4], 0.0, 1e-6, 0);
	CHECK_NEAR(qc[1], 0.0, 1e-6, 0);
	for (int i = 0; i < 64 * 64; i++) t[3 * i] = t[3 * i + 1] = t[3 * i + 2] = (uint8_t)(((i % 64) + (i / 64)) % 2 ? 40 : 220);
	fp_tile_qc(t, 64, qc);
	CHECK(qc[3] > 1000); /* a sharp checkerboard */
	free(t);
}

/* Pixels mixed from two known stain vectors: Macenko recovers them. */
FP_TEST(macenko_recovers_known_stains)
{
	const double H[3] = {0.65, 0.70, 0.29}, E[3] = {0.07, 0.99, 0.11};
	double nh = sqrt(H[0] * H[0] + H[1] * H[1] + H[2] * H[2]), ne = sqrt(E[0] * E[0] + E[1] * E[1] + E[2] * E[2]);
	size_t n = 40000;
	uint8_t *rgb = malloc(n * 3);
	uint64_t s = 12345;
	for (size_t i = 0; i < n; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		double ch = ((s >> 33) % 1000) / 1000.0 * 1.5, ce = ((s >> 13) % 1000) / 1000.0 * 1.0;
		for (int c = 0; c < 3; c++) {
			double od = ch * H[c] / nh + ce * E[c] / ne;
			double v = 256.0 * exp(-od) - 1;
			rgb[3 * i + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
		}
	}
	struct fp_stain_acc *a = NULL;
	CHECK_OK(fp_stain_acc_create(100000, &a));
	fp_stain_acc_add(a, rgb, n, 1);
	struct fp_stain_stats st;
	CHECK_OK(fp_stain_fit(a, &st));
	CHECK(st.valid);
	double ch = 0, ce = 0;
	for (int c = 0; c < 3; c++) {
		ch += st.he[c][0] * H[c] / nh;
		ce += st.he[c][1] * E[c] / ne;
	}
	CHECK_MSG(ch > 0.99 && ce > 0.99, "cosines H %.4f E %.4f", ch, ce);
	CHECK(st.od_pct[0][0] <= st.od_pct[3][0] && st.od_pct[3][0] <= st.od_pct[6][0]);
	fp_stain_acc_destroy(a);
	free(rgb);
}

static const struct tslide SVS = {.w = 2048, .h = 1536, .tile = 256, .levels = 2, .ds = 4, .compression = COMPRESSION_JPEG,
                                  .photometric = PHOTOMETRIC_YCBCR, .desc = APERIO_DESC("0.25"), .label = 1};

static int file_equal(const char *a, const char *b)
{
	char *x = NULL, *y = NULL;
	size_t lx = 0, ly = 0;
	if (fp_file_read_all(a, 1 << 28, &x, &lx) != FP_OK || fp_file_read_all(b, 1 << 28, &y, &ly) != FP_OK) return 0;
	int eq = lx == ly && memcmp(x, y, lx) == 0;
	free(x);
	free(y);
	return eq;
}

/* Same input and parameters: byte-identical caches; rerun: skipped. */
FP_TEST(tile_slide_deterministic_and_resumable)
{
	CHECK(twrite(tpath("s.svs"), &SVS) == 0);
	struct fp_tile_params p;
	fp_tile_params_default(&p);
	struct fp_tile_result r1, r2, r3;
	fp_mkdir_p(tpath("o1"), 0755);
	fp_mkdir_p(tpath("o2"), 0755);
	CHECK_OK(fp_tile_slide(tpath("s.svs"), tpath("o1"), &p, &r1));
	CHECK(r1.n_tiles > 0);
	CHECK(r1.resampled); /* 0.25 -> 0.5 from level 0 (level 1 is 1.0, too coarse) */
	CHECK_INT_EQ(r1.source_level, 0);
	CHECK_OK(fp_tile_slide(tpath("s.svs"), tpath("o2"), &p, &r2));
	CHECK(file_equal(r1.out_path, r2.out_path));
	/* Identifying description fields and the file name are never copied. */
	char *bytes = NULL;
	size_t len = 0;
	CHECK_OK(fp_file_read_all(r1.out_path, 1 << 28, &bytes, &len));
	CHECK(memmem(bytes, len, "PATIENT-NAME", 12) == NULL);
	CHECK(memmem(bytes, len, "someone", 7) == NULL);
	CHECK(memmem(bytes, len, "s.svs", 5) == NULL);
	free(bytes);
	CHECK_OK(fp_tile_slide(tpath("s.svs"), tpath("o1"), &p, &r3));
	CHECK(r3.skipped);
	p.jpeg_quality = 90; /* other parameters: redone */
	CHECK_OK(fp_tile_slide(tpath("s.svs"), tpath("o1"), &p, &r3));
	CHECK(!r3.skipped);
}

/* Raw tiles at a native level, no resampling: bit-exact with the reader. */
FP_TEST(tile_slide_raw_native_is_bit_exact)
{
	CHECK(twrite(tpath("s.svs"), &SVS) == 0);
	struct fp_tile_params p;
	fp_tile_params_default(&p);
	p.encoding = FP_TILE_RAW;
	p.target_mpp = 0.25;
	struct fp_tile_result r;
	CHECK_OK(fp_tile_slide(tpath("s.svs"), fp_test_tmpdir(), &p, &r));
	CHECK(!r.resampled);
	CHECK(r.n_tiles > 0);
	struct fp_tile_cache *c = NULL;
	struct fp_slide *s = NULL;
	CHECK_OK(fp_tile_cache_open(r.out_path, &c));
	CHECK_OK(fp_slide_open(tpath("s.svs"), NULL, &s));
	uint8_t *a = malloc(256 * 256 * 3), *b = malloc(256 * 256 * 3);
	for (uint64_t i = 0; i < fp_tile_cache_count(c); i++) {
		int32_t x, y;
		CHECK_OK(fp_tile_cache_coords(c, i, &x, &y));
		CHECK_OK(fp_tile_cache_read(c, i, a));
		CHECK_OK(fp_slide_read_region(s, 0, x, y, 256, 256, b, NULL));
		CHECK_MSG(memcmp(a, b, 256 * 256 * 3) == 0, "tile %llu at (%d,%d) differs", (unsigned long long)i, x, y);
	}
	free(a);
	free(b);
	fp_slide_destroy(s);
	fp_tile_cache_close(c);
}

/* JPEG output aligned with native JPEG tiles: the scanner's bytes, copied. */
FP_TEST(tile_slide_copies_native_jpeg)
{
	CHECK(twrite(tpath("s.svs"), &SVS) == 0);
	struct fp_tile_params p;
	fp_tile_params_default(&p);
	p.target_mpp = 0.25;
	struct fp_tile_result r;
	CHECK_OK(fp_tile_slide(tpath("s.svs"), fp_test_tmpdir(), &p, &r));
	CHECK(r.copied_native);
	struct fp_tile_cache *c = NULL;
	struct fp_slide *s = NULL;
	CHECK_OK(fp_tile_cache_open(r.out_path, &c));
	CHECK_OK(fp_slide_open(tpath("s.svs"), NULL, &s));
	uint8_t *a = malloc(256 * 256 * 3), *b = malloc(256 * 256 * 3);
	for (uint64_t i = 0; i < fp_tile_cache_count(c); i++) {
		int32_t x, y;
		CHECK_OK(fp_tile_cache_coords(c, i, &x, &y));
		CHECK_OK(fp_tile_cache_read(c, i, a));
		CHECK_OK(fp_slide_read_tile(s, 0, (uint32_t)x / 256, (uint32_t)y / 256, b, NULL));
		CHECK(memcmp(a, b, 256 * 256 * 3) == 0);
	}
	free(a);
	free(b);
	fp_slide_destroy(s);
	fp_tile_cache_close(c);
}

/* Resampled JPEG tiles at the default quality keep PSNR >= 40 dB against the
 * area-filtered source, even on this picture's hard 1-px nuclei edges
 * (harsher than H&E). */
FP_TEST(tile_slide_resampled_psnr)
{
	CHECK(twrite(tpath("s.svs"), &SVS) == 0);
	struct fp_tile_params p;
	fp_tile_params_default(&p);
	struct fp_tile_result r;
	CHECK_OK(fp_tile_slide(tpath("s.svs"), fp_test_tmpdir(), &p, &r));
	struct fp_tile_cache *c = NULL;
	struct fp_slide *s = NULL;
	CHECK_OK(fp_tile_cache_open(r.out_path, &c));
	CHECK_OK(fp_slide_open(tpath("s.svs"), NULL, &s));
	uint8_t *a = malloc(256 * 256 * 3), *src = malloc(512 * 512 * 3), *b = malloc(256 * 256 * 3);
	for (uint64_t i = 0; i < fp_tile_cache_count(c); i++) {
		int32_t x, y;
		CHECK_OK(fp_tile_cache_coords(c, i, &x, &y));
		CHECK_OK(fp_tile_cache_read(c, i, a));
		CHECK_OK(fp_slide_read_region(s, 0, x, y, 512, 512, src, NULL));
		fp_tile_resample_area(src, 512, 512, 0, 0, 2.0, b, 256);
		double mse = 0;
		for (size_t k = 0; k < 256 * 256 * 3; k++) mse += (a[k] - b[k]) * (double)(a[k] - b[k]);
		mse /= 256.0 * 256 * 3;
		double psnr = 10 * log10(255.0 * 255.0 / (mse > 1e-12 ? mse : 1e-12));
		CHECK_MSG(psnr >= 40, "tile %llu PSNR %.2f dB", (unsigned long long)i, psnr);
	}
	free(a);
	free(b);
	free(src);
	fp_slide_destroy(s);
	fp_tile_cache_close(c);
}

/* Resampled raw tiles at an integer factor (0.25 -> 0.5 um/px, native tiles
 * decoded one by one and reduced into the output tile) equal the region
 * path: the reader's region put through fp_tile_resample_area. */
FP_TEST(tile_slide_resampled_raw_equals_region_path)
{
	CHECK(twrite(tpath("s.svs"), &SVS) == 0);
	struct fp_tile_params p;
	fp_tile_params_default(&p);
	p.encoding = FP_TILE_RAW;
	struct fp_tile_result r;
	CHECK_OK(fp_tile_slide(tpath("s.svs"), fp_test_tmpdir(), &p, &r));
	CHECK(r.resampled);
	CHECK(r.n_tiles > 0);
	struct fp_tile_cache *c = NULL;
	struct fp_slide *s = NULL;
	CHECK_OK(fp_tile_cache_open(r.out_path, &c));
	CHECK_OK(fp_slide_open(tpath("s.svs"), NULL, &s));
	uint8_t *a = malloc(256 * 256 * 3), *src = malloc(512 * 512 * 3), *b = malloc(256 * 256 * 3);
	for (uint64_t i = 0; i < fp_tile_cache_count(c); i++) {
		int32_t x, y;
		CHECK_OK(fp_tile_cache_coords(c, i, &x, &y));
		CHECK_OK(fp_tile_cache_read(c, i, a));
		CHECK_OK(fp_slide_read_region(s, 0, x, y, 512, 512, src, NULL));
		fp_tile_resample_area(src, 512, 512, 0, 0, 2.0, b, 256);
		CHECK_MSG(memcmp(a, b, 256 * 256 * 3) == 0, "tile %llu at (%d,%d) differs", (unsigned long long)i, x, y);
	}
	free(a);
	free(b);
	free(src);
	fp_slide_destroy(s);
	fp_tile_cache_close(c);
}

FP_TEST(tile_slide_refuses_coarse_slide_and_bad_params)
{
	struct tslide s = {.w = 512, .h = 512, .tile = 256, .levels = 1, .ds = 2, .compression = COMPRESSION_LZW, .xres = 5000};
	CHECK(twrite(tpath("c.tif"), &s) == 0); /* 2 um/px */
	struct fp_tile_params p;
	fp_tile_params_default(&p);
	struct fp_tile_result r;
	CHECK_STATUS(fp_tile_slide(tpath("c.tif"), fp_test_tmpdir(), &p, &r), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "never upsamples");
	p.tile_size = 100;
	CHECK_STATUS(fp_tile_slide(tpath("c.tif"), fp_test_tmpdir(), &p, &r), FP_ERR_INVALID_ARG);
}
