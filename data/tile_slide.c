/*
 * tile_slide.c: one slide -> one tile cache (fp_tile_slide, contract in
 * fp_tile.h), and the parameter set with its canonical hash.
 *
 * Memory is bounded by the mask resolution, not the slide: the mask level is
 * read one tile row at a time into a ring of accumulator rows; the grid is
 * walked row by row through the slide reader's tile cache (or, at an integer
 * resampling factor on whole native tiles, one native tile at a time); JPEG
 * bytes are spooled to disk by the writer.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_tile.h"
#include "slide_codec.h"

#define STAIN_SAMPLES 262144
#define STAIN_STRIDE 8

void fp_tile_params_default(struct fp_tile_params *p)
{
	memset(p, 0, sizeof *p);
	snprintf(p->site_id, sizeof p->site_id, "local");
	p->target_mpp = 0.5;
	p->tile_size = 256;
	p->source_mpp = 0;
	p->mask_mpp = 8.0;
	p->median_um = 24.0;
	p->close_um = 32.0;
	p->min_object_um2 = 20000.0;
	p->min_hole_um2 = 10000.0;
	p->sat_floor = 20.0;
	p->min_tissue = 0.5;
	p->max_gray = 0.6;
	p->max_bad_fraction = 0.01;
	p->encoding = FP_TILE_JPEG;
	p->jpeg_quality = 95;
	p->copy_native = 1;
}

#define RANGE(field, lo, hi)                                                                        \
	do {                                                                                            \
		if (!(p->field >= (lo) && p->field <= (hi)))                                                \
			return FP_FAIL(FP_ERR_INVALID_ARG, "tile parameter %s = %g outside [%g, %g]", #field,   \
			               (double)p->field, (double)(lo), (double)(hi));                          \
	} while (0)

enum fp_status fp_tile_params_check(const struct fp_tile_params *p)
{
	RANGE(target_mpp, 0.1, 16.0);
	RANGE(tile_size, 32, 2048);
	if (p->tile_size % 16)
		return FP_FAIL(FP_ERR_INVALID_ARG, "tile parameter tile_size = %u is not a multiple of 16", p->tile_size);
	if (p->source_mpp != 0) RANGE(source_mpp, FP_SLIDE_MPP_MIN, FP_SLIDE_MPP_MAX);
	RANGE(mask_mpp, 1.0, 64.0);
	RANGE(median_um, 0.0, 200.0);
	RANGE(close_um, 0.0, 500.0);
	RANGE(min_object_um2, 0.0, 1e8);
	RANGE(min_hole_um2, 0.0, 1e8);
	RANGE(sat_floor, 0.0, 255.0);
	RANGE(min_tissue, 0.0, 1.0);
	RANGE(max_gray, 0.0, 1.0);
	RANGE(max_bad_fraction, 0.0, 1.0);
	RANGE(jpeg_quality, 50, 100);
	if (!p->site_id[0]) return FP_FAIL(FP_ERR_INVALID_ARG, "tile parameter site_id is empty");
	return FP_OK;
}

enum fp_status fp_tile_params_json(const struct fp_tile_params *p, char **json, char hash_hex[65])
{
	json_t *o = json_pack("{s:s, s:f, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:i, s:b, s:i}",
	                      "site_id", p->site_id, "target_mpp", p->target_mpp, "tile_size", (int)p->tile_size,
	                      "source_mpp", p->source_mpp, "mask_mpp", p->mask_mpp, "median_um", p->median_um,
	                      "close_um", p->close_um, "min_object_um2", p->min_object_um2, "min_hole_um2",
	                      p->min_hole_um2, "sat_floor", p->sat_floor, "min_tissue", p->min_tissue, "max_gray",
	                      p->max_gray, "max_bad_fraction", p->max_bad_fraction, "encoding",
	                      p->encoding == FP_TILE_RAW ? "raw" : "jpeg", "jpeg_quality", p->jpeg_quality,
	                      "copy_native", p->copy_native, "schema_version", FP_TILE_CACHE_SCHEMA);
	if (!o) return FP_FAIL(FP_ERR_NOMEM, "parameter JSON");
	enum fp_status st = fp_json_dump_line(o, json);
	json_decref(o);
	FP_TRY(st);
	uint8_t d[FP_SHA256_SIZE];
	st = fp_sha256(*json, strlen(*json), d);
	if (st != FP_OK) {
		free(*json);
		*json = NULL;
		return st;
	}
	fp_hex_encode(d, sizeof d, hash_hex);
	return FP_OK;
}

/* ---- tissue mask from a low-resolution level ---- */

struct mask_out {
	uint8_t *mask; /* (mh, mw) */
	uint32_t mw, mh;
	uint32_t *integral; /* (mh + 1, mw + 1); mask pixels < 2^32 (FP_TIFF_MAX_DIM) */
	uint64_t bad_tiles;
	char first_bad[256];
};

static enum fp_status build_mask(struct fp_slide *s, const struct fp_tile_params *p, struct mask_out *mo)
{
	enum fp_status st;
	const struct fp_slide_level *l0 = fp_slide_level(s, 0);
	int ml = 0;
	for (int i = 0; i < fp_slide_level_count(s); i++)
		if (fp_slide_level(s, i)->mpp <= p->mask_mpp) ml = i;
	const struct fp_slide_level *L = fp_slide_level(s, ml);
	double ratio = L->mpp / p->mask_mpp; /* mask px per level px (<= 1) */
	uint32_t mw = (uint32_t)ceil(l0->width * fp_slide_mpp(s) / p->mask_mpp);
	uint32_t mh = (uint32_t)ceil(l0->height * fp_slide_mpp(s) / p->mask_mpp);
	if (mw == 0) mw = 1;
	if (mh == 0) mh = 1;
	uint8_t *thumb = NULL, *tile = NULL;
	uint64_t *acc = NULL; /* ring of R rows: (R, mw, 4) sums r, g, b, count */
	uint32_t R = (uint32_t)ceil(L->tile_h * ratio) + 2;
	size_t tb;
	FP_CHECK(st, fp_size_mul3(mw, mh, 3, &tb, "mask thumbnail"));
	FP_CHECK(st, fp_alloc_array(tb, 1, (void **)&thumb, "mask thumbnail"));
	memset(thumb, 255, tb);
	FP_CHECK(st, fp_alloc_array((size_t)L->tile_w * L->tile_h, 3, (void **)&tile, "mask tile"));
	FP_CHECK(st, fp_calloc_array((size_t)R * mw, 4 * sizeof *acc, (void **)&acc, "mask rows"));
	uint32_t done_rows = 0; /* mask rows [0, done_rows) are final */
	for (uint32_t ty = 0; ty <= L->tiles_y; ty++) {
		uint32_t r0 = ty < L->tiles_y ? (uint32_t)floor(ty * (double)L->tile_h * ratio) : mh;
		if (r0 > mh) r0 = mh;
		for (; done_rows < r0; done_rows++) {
			uint64_t *a = acc + (size_t)(done_rows % R) * mw * 4;
			for (uint32_t x = 0; x < mw; x++) {
				uint64_t c = a[4 * x + 3];
				if (c)
					for (int k = 0; k < 3; k++)
						thumb[((size_t)done_rows * mw + x) * 3 + k] = (uint8_t)((a[4 * x + k] + c / 2) / c);
			}
			memset(a, 0, (size_t)mw * 4 * sizeof *a);
		}
		if (ty == L->tiles_y) break;
		for (uint32_t tx = 0; tx < L->tiles_x; tx++) {
			int missing = 0;
			if (fp_slide_read_tile(s, ml, tx, ty, tile, &missing) != FP_OK) {
				if (!mo->bad_tiles++) snprintf(mo->first_bad, sizeof mo->first_bad, "%s", fp_error_msg());
				FP_DEBUG("mask: %s", fp_error_msg());
				fp_error_clear();
				continue;
			}
			uint32_t x0 = tx * L->tile_w, y0 = ty * L->tile_h;
			uint32_t vw = L->width - x0 < L->tile_w ? L->width - x0 : L->tile_w;
			uint32_t vh = L->height - y0 < L->tile_h ? L->height - y0 : L->tile_h;
			for (uint32_t y = 0; y < vh; y++) {
				uint32_t my = (uint32_t)((y0 + y + 0.5) * ratio);
				if (my >= mh) continue;
				uint64_t *a = acc + (size_t)(my % R) * mw * 4;
				const uint8_t *src = tile + (size_t)y * L->tile_w * 3;
				for (uint32_t x = 0; x < vw; x++) {
					uint32_t mx = (uint32_t)((x0 + x + 0.5) * ratio);
					if (mx >= mw) continue;
					a[4 * mx] += src[3 * x];
					a[4 * mx + 1] += src[3 * x + 1];
					a[4 * mx + 2] += src[3 * x + 2];
					a[4 * mx + 3]++;
				}
			}
		}
	}
	free(acc);
	acc = NULL;
	free(tile);
	tile = NULL;
	{
		uint64_t n_tiles = (uint64_t)L->tiles_x * L->tiles_y;
		if (mo->bad_tiles > (uint64_t)floor(p->max_bad_fraction * (double)n_tiles)) {
			st = FP_FAIL(FP_ERR_DATA, "%" PRIu64 " of the %" PRIu64 " tiles of level %d (read for the tissue mask) "
			             "failed to decode (more than %.3g%%); first: %s", mo->bad_tiles, n_tiles, ml,
			             100 * p->max_bad_fraction, mo->first_bad);
			goto fail;
		}
	}
	FP_CHECK(st, fp_alloc_array((size_t)mw * mh, 1, (void **)&mo->mask, "mask"));
	FP_CHECK(st, fp_tile_tissue_mask(thumb, mw, mh, p->mask_mpp, p, mo->mask));
	free(thumb);
	thumb = NULL;
	FP_CHECK(st, fp_calloc_array((size_t)(mw + 1) * (mh + 1), sizeof *mo->integral, (void **)&mo->integral, "mask integral"));
	for (uint32_t y = 0; y < mh; y++)
		for (uint32_t x = 0; x < mw; x++)
			mo->integral[(size_t)(y + 1) * (mw + 1) + x + 1] = mo->mask[(size_t)y * mw + x] +
			                                                   mo->integral[(size_t)y * (mw + 1) + x + 1] +
			                                                   mo->integral[(size_t)(y + 1) * (mw + 1) + x] -
			                                                   mo->integral[(size_t)y * (mw + 1) + x];
	mo->mw = mw;
	mo->mh = mh;
fail:
	free(thumb);
	free(tile);
	free(acc);
	return st;
}

/* Tissue fraction of the level-0 micrometre box [x0, x1) x [y0, y1). */
static double tissue_fraction(const struct mask_out *mo, double mask_mpp, double x0, double y0, double x1, double y1)
{
	long i0 = lround(x0 / mask_mpp), i1 = lround(x1 / mask_mpp);
	long j0 = lround(y0 / mask_mpp), j1 = lround(y1 / mask_mpp);
	if (i1 <= i0) i1 = i0 + 1;
	if (j1 <= j0) j1 = j0 + 1;
	long area = (i1 - i0) * (j1 - j0);
	if (i0 < 0) i0 = 0;
	if (j0 < 0) j0 = 0;
	if (i1 > (long)mo->mw) i1 = (long)mo->mw;
	if (j1 > (long)mo->mh) j1 = (long)mo->mh;
	if (i1 <= i0 || j1 <= j0) return 0;
	size_t W = mo->mw + 1;
	uint64_t s = (uint64_t)mo->integral[(size_t)j1 * W + (size_t)i1] - mo->integral[(size_t)j0 * W + (size_t)i1] -
	             mo->integral[(size_t)j1 * W + (size_t)i0] + mo->integral[(size_t)j0 * W + (size_t)i0];
	return (double)s / (double)area;
}

/* A resampled cell at an integer factor k whose footprint is made of whole
 * native tiles: each tile is decoded once into `tile` (a reused buffer, no
 * region copy, no tile cache: no other cell needs it) and block-averaged
 * straight into its part of out: (T, T, 3). The numbers are those of the
 * region path (fp_tile_resample_area at an integer scale and origin).
 * (x, y): the footprint's corner in level pixels; *missing: a tile was empty. */
static enum fp_status read_cell_direct(struct fp_slide *s, int L, uint64_t x, uint64_t y, uint32_t k, uint32_t T,
                                       uint8_t *tile, uint8_t *out, int *missing)
{
	const struct fp_slide_level *l = fp_slide_level(s, L);
	uint64_t F = (uint64_t)k * T;
	*missing = 0;
	for (uint64_t ty = y / l->tile_h; ty < (y + F) / l->tile_h; ty++) {
		for (uint64_t tx = x / l->tile_w; tx < (x + F) / l->tile_w; tx++) {
			FP_TRY(fp_slide_read_tile(s, L, (uint32_t)tx, (uint32_t)ty, tile, missing));
			if (*missing) return FP_OK; /* the cell is skipped: the rest is not needed */
			size_t ox = (size_t)(tx * l->tile_w - x) / k, oy = (size_t)(ty * l->tile_h - y) / k;
			fp_tile_box_reduce(tile, l->tile_w, l->tile_h, 0, 0, k, out + (oy * T + ox) * 3, l->tile_w / k,
			                   l->tile_h / k, T);
		}
	}
	return FP_OK;
}

static int is_bad_tile_error(enum fp_status st) { return st == FP_ERR_FORMAT || st == FP_ERR_LIMIT || st == FP_ERR_UNSUPPORTED; }

enum fp_status fp_tile_slide(const char *slide_path, const char *out_dir, const struct fp_tile_params *p,
                             struct fp_tile_result *res)
{
	enum fp_status st;
	struct fp_slide *s = NULL;
	struct fp_tile_cache_writer *w = NULL;
	struct fp_stain_acc *acc = NULL;
	struct mask_out mo = {0};
	char *pjson = NULL;
	uint8_t *rgb = NULL, *half = NULL, *region = NULL, *ntile = NULL, *enc = NULL;
	char first_bad[256] = "";
	double t0 = fp_now_seconds();
	memset(res, 0, sizeof *res);
	FP_TRY(fp_tile_params_check(p));

	struct fp_slide_options so = {.source_mpp = p->source_mpp};
	FP_CHECK(st, fp_slide_open(slide_path, &so, &s));
	FP_CHECK(st, fp_slide_quickhash(s, res->quickhash));
	{
		char seed[256];
		uint8_t d[FP_SHA256_SIZE];
		int n = snprintf(seed, sizeof seed, "fedpath-slide-uid-1|%s|%s", p->site_id, res->quickhash);
		FP_CHECK(st, fp_sha256(seed, (size_t)n, d));
		fp_hex_encode(d, 16, res->slide_uid); /* 32 hex characters */
	}
	char phash[65];
	FP_CHECK(st, fp_tile_params_json(p, &pjson, phash));
	if ((size_t)snprintf(res->out_path, sizeof res->out_path, "%s/%s.h5", out_dir, res->slide_uid) >= sizeof res->out_path) {
		st = FP_FAIL(FP_ERR_INVALID_ARG, "output folder name too long: %s", out_dir);
		goto fail;
	}
	int match = 0;
	FP_CHECK(st, fp_tile_cache_matches(res->out_path, phash, res->quickhash, &match));
	res->mpp = fp_slide_mpp(s);
	if (match) {
		res->skipped = 1;
		goto done;
	}

	/* Source level: the coarsest one still at least as fine as the target. */
	int L = -1;
	for (int i = 0; i < fp_slide_level_count(s); i++)
		if (fp_slide_level(s, i)->mpp <= p->target_mpp * 1.01) L = i;
	if (L < 0) {
		st = FP_FAIL(FP_ERR_DATA, "%s: the finest level is %.4g um/px, coarser than the target %.4g um/px "
		             "(fedpath never upsamples)", slide_path, fp_slide_mpp(s), p->target_mpp);
		goto fail;
	}
	const struct fp_slide_level *lv = fp_slide_level(s, L);
	int resample = fabs(lv->mpp - p->target_mpp) / p->target_mpp > 0.01;
	uint32_t T = p->tile_size;
	double F = resample ? T * p->target_mpp / lv->mpp : T;
	int copy = p->encoding == FP_TILE_JPEG && p->copy_native && !resample && lv->compression == 7 &&
	           lv->tile_w == T && lv->tile_h == T;
	res->source_level = L;
	res->source_mpp = lv->mpp;
	res->resampled = resample;
	res->copied_native = copy;

	st = build_mask(s, p, &mo);
	if (st != FP_OK) {
		fp_error_wrap("%s", slide_path);
		goto fail;
	}

	struct fp_tile_cache_meta m;
	memset(&m, 0, sizeof m);
	snprintf(m.site_id, sizeof m.site_id, "%s", p->site_id);
	memcpy(m.slide_uid, res->slide_uid, sizeof m.slide_uid);
	memcpy(m.source_quickhash, res->quickhash, sizeof m.source_quickhash);
	m.source_size = fp_slide_file_size(s);
	snprintf(m.vendor, sizeof m.vendor, "%s", fp_slide_vendor_name(s));
	m.mpp = fp_slide_mpp(s);
	snprintf(m.mpp_source, sizeof m.mpp_source, "%s", fp_slide_mpp_source(s));
	m.objective_power = fp_slide_objective_power(s);
	m.level0_w = fp_slide_level(s, 0)->width;
	m.level0_h = fp_slide_level(s, 0)->height;
	m.n_levels = fp_slide_level_count(s);
	for (int i = 0; i < m.n_levels; i++) {
		const struct fp_slide_level *li = fp_slide_level(s, i);
		m.levels[i][0] = li->width;
		m.levels[i][1] = li->height;
		m.levels[i][2] = li->tile_w;
		m.levels[i][3] = li->tile_h;
		m.levels[i][4] = li->downsample;
	}
	m.source_level = L;
	m.source_level_mpp = lv->mpp;
	m.source_level_w = lv->width;
	m.source_level_h = lv->height;
	m.footprint = F;
	m.resampled = resample;
	m.target_mpp = p->target_mpp;
	m.tile_size = T;
	m.encoding = p->encoding;
	m.jpeg_quality = p->jpeg_quality;
	m.copied_native = copy;
	memcpy(m.params_sha256, phash, sizeof m.params_sha256);
	m.params_json = pjson;
	FP_CHECK(st, fp_tile_cache_writer_create(res->out_path, &m, &w));
	FP_CHECK(st, fp_tile_cache_writer_set_mask(w, mo.mask, mo.mw, mo.mh, p->mask_mpp));
	FP_CHECK(st, fp_stain_acc_create(STAIN_SAMPLES, &acc));
	FP_CHECK(st, fp_alloc_array((size_t)T * T, 3, (void **)&rgb, "tile"));
	FP_CHECK(st, fp_alloc_array((size_t)T * T / 4, 3, (void **)&half, "half tile"));
	uint32_t span = (uint32_t)ceil(F) + 2;
	/* Integer factor k with native tiles tiling every footprint exactly
	 * (0.25 -> 0.5 or 0.5 -> 1 um/px with 256-px tiles): the direct path. */
	uint32_t k = 0;
	if (resample) {
		double kr = round(F / T);
		uint64_t Fk = (uint64_t)kr * T;
		if (kr >= 2 && kr <= 16 && fabs(F / T - kr) < 1e-9 && Fk % lv->tile_w == 0 && Fk % lv->tile_h == 0 &&
		    lv->tile_w % (uint32_t)kr == 0 && lv->tile_h % (uint32_t)kr == 0)
			k = (uint32_t)kr;
	}
	if (k) FP_CHECK(st, fp_alloc_array((size_t)lv->tile_w * lv->tile_h, 3, (void **)&ntile, "native tile"));
	if (resample) FP_CHECK(st, fp_alloc_array((size_t)span * span, 3, (void **)&region, "source region"));

	uint64_t nx = (uint64_t)floor(lv->width / F), ny = (uint64_t)floor(lv->height / F);
	double um_per_cell = F * lv->mpp, ds = lv->downsample;
	for (uint64_t cy = 0; cy < ny; cy++) {
		for (uint64_t cx = 0; cx < nx; cx++) {
			double frac = tissue_fraction(&mo, p->mask_mpp, cx * um_per_cell, cy * um_per_cell,
			                              (cx + 1) * um_per_cell, (cy + 1) * um_per_cell);
			if (frac < p->min_tissue) continue;
			/* Level-0 corners are integers, and the resampled footprint starts
			 * exactly there, so /coords describe each tile without rounding. */
			double lx = round(cx * F * ds), ly = round(cy * F * ds);
			if (lx > INT32_MAX || ly > INT32_MAX) continue;
			res->n_candidates++;
			size_t enc_len = 0;
			int missing = 0;
			free(enc);
			enc = NULL;
			enum fp_status ts;
			if (copy) {
				ts = fp_slide_read_jpeg_tile(s, L, (uint32_t)cx, (uint32_t)cy, &enc, &enc_len);
				if (ts == FP_OK && enc_len == 0) missing = 1;
				/* Only QC needs pixels here: a half-size decode is enough. */
				if (ts == FP_OK && !missing) ts = fp_codec_jpeg_decode_half(enc, enc_len, T, T, half);
			} else if (!resample) {
				ts = fp_slide_read_region(s, L, (int64_t)(cx * T), (int64_t)(cy * T), T, T, rgb, &missing);
			} else if (k && lx / ds == (double)(cx * k * T) && ly / ds == (double)(cy * k * T)) {
				ts = read_cell_direct(s, L, cx * k * T, cy * k * T, k, T, ntile, rgb, &missing);
			} else {
				double x = lx / ds, y = ly / ds;
				int64_t ix = (int64_t)floor(x), iy = (int64_t)floor(y);
				uint32_t iw = (uint32_t)(ceil(x + F) - ix), ih = (uint32_t)(ceil(y + F) - iy);
				if (iw > span) iw = span;
				if (ih > span) ih = span;
				ts = fp_slide_read_region(s, L, ix, iy, iw, ih, region, &missing);
				if (ts == FP_OK) fp_tile_resample_area(region, iw, ih, x - ix, y - iy, F / T, rgb, T);
			}
			if (ts != FP_OK) {
				if (!is_bad_tile_error(ts)) {
					st = ts;
					goto fail;
				}
				if (!first_bad[0]) snprintf(first_bad, sizeof first_bad, "%s", fp_error_msg());
				FP_DEBUG("bad tile skipped: %s", fp_error_msg());
				fp_error_clear();
				res->n_bad++;
				continue;
			}
			if (missing) {
				res->n_missing++;
				continue;
			}
			/* QC and stain statistics on the tile reduced 2x (cheaper, and the
			 * same for copied and decoded tiles). */
			if (!copy) fp_tile_box_reduce(rgb, T, T, 0, 0, 2, half, T / 2, T / 2, T / 2);
			float qc[FP_TILE_QC_N];
			qc[0] = (float)frac;
			fp_tile_qc(half, T / 2, qc);
			if (qc[2] > p->max_gray) {
				res->n_dropped_qc++;
				continue;
			}
			fp_stain_acc_add(acc, half, (size_t)(T / 2) * (T / 2), STAIN_STRIDE);
			if (!copy && p->encoding == FP_TILE_JPEG)
				FP_CHECK(st, fp_codec_jpeg_encode(rgb, T, T, p->jpeg_quality, 0, &enc, &enc_len));
			FP_CHECK(st, fp_tile_cache_writer_add(w, (int32_t)lround(lx), (int32_t)lround(ly), qc, enc, enc_len,
			                                      p->encoding == FP_TILE_RAW ? rgb : NULL));
		}
	}
	uint64_t allowed = (uint64_t)floor(p->max_bad_fraction * (double)res->n_candidates);
	if (res->n_bad > allowed) {
		st = FP_FAIL(FP_ERR_DATA, "%s: %" PRIu64 " of %" PRIu64 " tiles failed to decode (more than %.3g%%); first: %s",
		             slide_path, res->n_bad, res->n_candidates, 100 * p->max_bad_fraction, first_bad);
		goto fail;
	}
	struct fp_stain_stats ss;
	FP_CHECK(st, fp_stain_fit(acc, &ss));
	fp_tile_cache_writer_set_stain(w, &ss);
	fp_tile_cache_writer_set_counts(w, res->n_bad, res->n_missing, res->n_dropped_qc);
	res->n_tiles = fp_tile_cache_writer_count(w);
	FP_CHECK(st, fp_tile_cache_writer_finish(w));
done:
	st = FP_OK;
	res->seconds = fp_now_seconds() - t0;
fail:
	fp_tile_cache_writer_destroy(w);
	fp_stain_acc_destroy(acc);
	fp_slide_destroy(s);
	free(mo.mask);
	free(mo.integral);
	free(pjson);
	free(rgb);
	free(half);
	free(region);
	free(ntile);
	free(enc);
	return st;
}
