/*
 * slide.c: the slide reader (contract in fp_slide.h).
 *
 * Order of work in fp_slide_open(): pre-parse (tiff_preparse.c) -> classify
 * (Aperio / OME / generic, from the pre-parsed IFDs and IFD 0's description)
 * -> pick levels -> find mpp -> open libtiff ("rm": no mmap, a single-
 * allocation cap, errors captured per handle, never printed). Tiles are read
 * raw (TIFFReadRawTile) and decoded by slide_codec.c for JPEG and JPEG 2000;
 * LZW, Deflate and uncompressed tiles go through TIFFReadEncodedTile.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

#include "fp_arith.h"
#include "fp_hash.h"
#include "fp_log.h"
#include "fp_slide.h"
#include "slide_codec.h"

#define MAX_RAW_TILE (64u << 20) /* bytes of one compressed tile */

struct cached_tile {
	int level;
	uint32_t tx, ty;
	uint64_t stamp;
	int missing;
	uint8_t *rgb; /* (tile_h, tile_w, 3) */
};

struct level_priv {
	struct fp_slide_level pub;
	uint64_t ifd_offset;
	uint16_t samples;
	uint8_t *tables; /* JPEGTables copy (owned) */
	uint32_t tables_len;
};

struct fp_slide {
	char *path;
	TIFF *tif;
	struct fp_tiff_info info;
	enum fp_slide_vendor vendor;
	int n_levels;
	struct level_priv lv[FP_SLIDE_MAX_LEVELS];
	int cur_level;
	double mpp;
	const char *mpp_source;
	double objective;
	char tiff_err[512];
	uint64_t bad_tiles, missing_tiles;
	uint8_t *raw;  /* compressed tile buffer */
	size_t raw_cap;
	struct cached_tile *cache;
	size_t cache_n, cache_cap;
	uint64_t stamp;
};

static int tiff_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static int tiff_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
	(void)tif;
	struct fp_slide *s = user;
	if (!s->tiff_err[0]) {
		int n = snprintf(s->tiff_err, sizeof s->tiff_err, "%s: ", module ? module : "libtiff");
		if (n > 0 && (size_t)n < sizeof s->tiff_err) vsnprintf(s->tiff_err + n, sizeof s->tiff_err - (size_t)n, fmt, ap);
	}
	return 1; /* handled: libtiff prints nothing */
}

static int tiff_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
	(void)tif; (void)user; (void)module; (void)fmt; (void)ap;
	return 1;
}

/* ---- description parsing ---- */

/* Finds "key = value" in an Aperio description ("...|MPP = 0.499|..."). */
static int aperio_value(const char *desc, const char *key, double *out)
{
	const char *p = desc;
	size_t kl = strlen(key);
	while ((p = strchr(p, '|')) != NULL) {
		p++;
		while (*p == ' ') p++;
		if (strncmp(p, key, kl) == 0) {
			const char *q = p + kl;
			while (*q == ' ') q++;
			if (*q != '=') continue;
			q++;
			char *end;
			errno = 0;
			double v = strtod(q, &end);
			if (end == q || errno) return 0;
			*out = v;
			return 1;
		}
	}
	return 0;
}

/* PhysicalSizeX="0.25" PhysicalSizeXUnit="µm" in the first <Pixels> element. */
static int ome_mpp(const char *xml, double *out)
{
	const char *px = strstr(xml, "<Pixels");
	if (!px) px = strstr(xml, ":Pixels");
	if (!px) return 0;
	const char *end = strchr(px, '>');
	const char *a = strstr(px, "PhysicalSizeX=\"");
	if (!a || (end && a > end)) return 0;
	char *e;
	double v = strtod(a + 15, &e);
	if (e == a + 15 || *e != '"') return 0;
	double scale = 1.0;
	const char *u = strstr(px, "PhysicalSizeXUnit=\"");
	if (u && (!end || u < end)) {
		u += 19;
		if (strncmp(u, "nm", 2) == 0) scale = 1e-3;
		else if (strncmp(u, "mm", 2) == 0) scale = 1e3;
		else if (strncmp(u, "cm", 2) == 0) scale = 1e4;
		else if (strncmp(u, "\xc2\xb5m", 3) == 0 || strncmp(u, "um", 2) == 0 || strncmp(u, "\xce\xbcm", 3) == 0) scale = 1.0;
		else return 0;
	}
	*out = v * scale;
	return 1;
}

static int mpp_ok(double v) { return isfinite(v) && v >= FP_SLIDE_MPP_MIN && v <= FP_SLIDE_MPP_MAX; }

/* ---- directory handling ---- */

static enum fp_status set_dir(struct fp_slide *s, uint64_t offset)
{
	s->tiff_err[0] = 0;
	if (!TIFFSetSubDirectory(s->tif, offset))
		return FP_FAIL(FP_ERR_FORMAT, "%s: cannot read IFD at offset %" PRIu64 ": %s", s->path, offset,
		               s->tiff_err[0] ? s->tiff_err : "libtiff error");
	return FP_OK;
}

static enum fp_status use_level(struct fp_slide *s, int level)
{
	if (s->cur_level == level) return FP_OK;
	s->cur_level = -1;
	FP_TRY(set_dir(s, s->lv[level].ifd_offset));
	s->cur_level = level;
	return FP_OK;
}

static int cmp_level(const void *a, const void *b)
{
	const struct level_priv *x = a, *y = b;
	if (x->pub.width != y->pub.width) return x->pub.width > y->pub.width ? -1 : 1;
	return x->ifd_offset < y->ifd_offset ? -1 : x->ifd_offset > y->ifd_offset;
}

static int supported_compression(uint16_t c)
{
	return c == COMPRESSION_NONE || c == COMPRESSION_LZW || c == COMPRESSION_JPEG ||
	       c == COMPRESSION_ADOBE_DEFLATE || c == COMPRESSION_DEFLATE || c == 33003 || c == 33005;
}

/* Is IFD d a pyramid level of an image whose level 0 is d0? Same aspect ratio
 * (labels and macros have their own) and smaller. */
static int same_aspect(const struct fp_tiff_ifd_info *d0, const struct fp_tiff_ifd_info *d)
{
	double ds = (double)d0->width / d->width;
	double h_expect = d0->height / ds;
	return fabs(h_expect - d->height) <= 2.0 + 0.01 * d->height;
}

static enum fp_status add_level(struct fp_slide *s, const struct fp_tiff_ifd_info *d)
{
	if (s->n_levels >= FP_SLIDE_MAX_LEVELS)
		return FP_FAIL(FP_ERR_LIMIT, "%s: more than %d pyramid levels", s->path, FP_SLIDE_MAX_LEVELS);
	if (d->compression == 6)
		return FP_FAIL(FP_ERR_UNSUPPORTED, "%s: old-style JPEG (compression 6) is not supported", s->path);
	if (!supported_compression(d->compression))
		return FP_FAIL(FP_ERR_UNSUPPORTED, "%s: compression %u is not supported (JPEG, JPEG 2000 33003/33005, "
		               "LZW, Deflate or none)", s->path, d->compression);
	if (d->bits != 8 || (d->samples != 3 && d->samples != 4) || d->planar != 1)
		return FP_FAIL(FP_ERR_UNSUPPORTED, "%s: %u samples of %u bits (planar %u); 8-bit RGB only", s->path,
		               d->samples, d->bits, d->planar);
	if (d->compression == COMPRESSION_JPEG && d->photometric != PHOTOMETRIC_RGB && d->photometric != PHOTOMETRIC_YCBCR)
		return FP_FAIL(FP_ERR_UNSUPPORTED, "%s: JPEG with photometric %u", s->path, d->photometric);
	if ((d->compression == COMPRESSION_NONE || d->compression == COMPRESSION_LZW ||
	     d->compression == COMPRESSION_ADOBE_DEFLATE || d->compression == COMPRESSION_DEFLATE) &&
	    d->photometric != PHOTOMETRIC_RGB)
		return FP_FAIL(FP_ERR_UNSUPPORTED, "%s: photometric %u with compression %u", s->path, d->photometric,
		               d->compression);
	struct level_priv *l = &s->lv[s->n_levels++];
	memset(l, 0, sizeof *l);
	l->pub.width = d->width;
	l->pub.height = d->height;
	l->pub.tile_w = d->tile_w;
	l->pub.tile_h = d->tile_h;
	l->pub.tiles_x = (d->width + d->tile_w - 1) / d->tile_w;
	l->pub.tiles_y = (d->height + d->tile_h - 1) / d->tile_h;
	l->pub.compression = d->compression;
	l->pub.photometric = d->photometric;
	l->ifd_offset = d->offset;
	l->samples = d->samples;
	return FP_OK;
}

static enum fp_status pick_levels(struct fp_slide *s, const char *desc)
{
	const struct fp_tiff_info *in = &s->info;
	const struct fp_tiff_ifd_info *d0 = &in->ifd[0];
	if (!d0->tile_w)
		return FP_FAIL(FP_ERR_UNSUPPORTED, "%s: the first image is stripped, not tiled: not a pyramidal slide "
		               "(convert it with `vips tiffsave --tile --pyramid`)", s->path);
	s->vendor = FP_SLIDE_GENERIC;
	if (desc && strncmp(desc, "Aperio", 6) == 0) s->vendor = FP_SLIDE_APERIO;
	else if (desc && strstr(desc, "<OME") && strstr(desc, "Pixels")) s->vendor = FP_SLIDE_OME;

	FP_TRY(add_level(s, d0));
	for (int i = 1; i < in->n_ifds; i++) {
		const struct fp_tiff_ifd_info *d = &in->ifd[i];
		if (!d->tile_w || d->width >= d0->width || !same_aspect(d0, d)) continue;
		if (s->vendor == FP_SLIDE_OME) {
			/* Levels of image 0 live in its SubIFDs; other main IFDs are
			 * other planes or series. */
			if (!(d->is_subifd && d->parent == 0)) continue;
		} else {
			if (d->is_subifd) continue;
			/* Label (NewSubfileType 1 with its own aspect) and macro (9) are
			 * excluded above by shape; the mask bit (4) never is a level. */
			if (d->subfile_type & ~1u) continue;
		}
		FP_TRY(add_level(s, d));
	}
	qsort(s->lv, (size_t)s->n_levels, sizeof s->lv[0], cmp_level);
	for (int i = 0; i < s->n_levels; i++) {
		s->lv[i].pub.downsample = (double)s->lv[0].pub.width / s->lv[i].pub.width;
		if (i && s->lv[i].pub.width == s->lv[i - 1].pub.width)
			return FP_FAIL(FP_ERR_FORMAT, "%s: two pyramid levels of width %u", s->path, s->lv[i].pub.width);
	}
	return FP_OK;
}

static void find_mpp(struct fp_slide *s, const char *desc, double override)
{
	double v = 0;
	s->mpp = 0;
	s->mpp_source = "none";
	if (desc && s->vendor == FP_SLIDE_APERIO) {
		double mag;
		if (aperio_value(desc, "AppMag", &mag) && isfinite(mag) && mag > 0 && mag <= 200) s->objective = mag;
	}
	if (override > 0) {
		s->mpp = override;
		s->mpp_source = "override";
		return;
	}
	if (desc && s->vendor == FP_SLIDE_APERIO && aperio_value(desc, "MPP", &v)) {
		if (mpp_ok(v)) {
			s->mpp = v;
			s->mpp_source = "aperio";
			return;
		}
		FP_WARN("%s: Aperio MPP %g is outside [%g, %g]; ignored", s->path, v, FP_SLIDE_MPP_MIN, FP_SLIDE_MPP_MAX);
	}
	if (desc && s->vendor == FP_SLIDE_OME && ome_mpp(desc, &v)) {
		if (mpp_ok(v)) {
			s->mpp = v;
			s->mpp_source = "ome";
			return;
		}
		FP_WARN("%s: OME PhysicalSizeX %g um is outside [%g, %g]; ignored", s->path, v, FP_SLIDE_MPP_MIN,
		        FP_SLIDE_MPP_MAX);
	}
	float xres = 0;
	uint16_t unit = RESUNIT_INCH;
	if (set_dir(s, s->lv[0].ifd_offset) == FP_OK && TIFFGetField(s->tif, TIFFTAG_XRESOLUTION, &xres) && xres > 0) {
		TIFFGetFieldDefaulted(s->tif, TIFFTAG_RESOLUTIONUNIT, &unit);
		double m = unit == RESUNIT_CENTIMETER ? 10000.0 / xres : unit == RESUNIT_INCH ? 25400.0 / xres : 0;
		if (mpp_ok(m)) {
			s->mpp = m;
			s->mpp_source = "tiff-resolution";
		} else {
			FP_DEBUG("%s: resolution tags give %g um/px; ignored", s->path, m);
		}
	}
	fp_error_clear();
	s->cur_level = -1;
}

enum fp_status fp_slide_open(const char *path, const struct fp_slide_options *opt, struct fp_slide **out)
{
	enum fp_status st;
	struct fp_slide *s = NULL;
	TIFFOpenOptions *topt = NULL;
	char *desc = NULL;
	struct fp_slide_options defaults = {0};
	*out = NULL;
	if (!opt) opt = &defaults;
	if (opt->source_mpp != 0 && !mpp_ok(opt->source_mpp))
		return FP_FAIL(FP_ERR_INVALID_ARG, "source mpp %g outside [%g, %g]", opt->source_mpp, FP_SLIDE_MPP_MIN,
		               FP_SLIDE_MPP_MAX);
	s = calloc(1, sizeof *s);
	if (!s) return FP_FAIL(FP_ERR_NOMEM, "slide handle");
	s->cur_level = -1;
	s->path = strdup(path);
	if (!s->path) {
		st = FP_FAIL(FP_ERR_NOMEM, "slide path");
		goto fail;
	}
	FP_CHECK(st, fp_tiff_preparse_file(path, &s->info));

	topt = TIFFOpenOptionsAlloc();
	if (!topt) {
		st = FP_FAIL(FP_ERR_NOMEM, "libtiff options");
		goto fail;
	}
	TIFFOpenOptionsSetMaxSingleMemAlloc(topt, (tmsize_t)(opt->max_alloc ? opt->max_alloc : (256u << 20)));
	TIFFOpenOptionsSetErrorHandlerExtR(topt, tiff_error, s);
	TIFFOpenOptionsSetWarningHandlerExtR(topt, tiff_warning, s);
	s->tif = TIFFOpenExt(path, "rm", topt);
	if (!s->tif) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: libtiff cannot open it: %s", path, s->tiff_err[0] ? s->tiff_err : "unknown error");
		goto fail;
	}
	const char *d = NULL;
	FP_CHECK(st, set_dir(s, s->info.ifd[0].offset));
	if (TIFFGetField(s->tif, TIFFTAG_IMAGEDESCRIPTION, &d) && d) {
		desc = strdup(d);
		if (!desc) {
			st = FP_FAIL(FP_ERR_NOMEM, "description");
			goto fail;
		}
	}
	FP_CHECK(st, pick_levels(s, desc));
	find_mpp(s, desc, opt->source_mpp);
	if (s->mpp == 0 && !opt->allow_unknown_mpp) {
		st = FP_FAIL(FP_ERR_DATA, "%s: no trustworthy microns-per-pixel in the file (Aperio MPP, OME PhysicalSizeX "
		             "or resolution tags inside [%g, %g]); give the scanner's value with --source-mpp",
		             path, FP_SLIDE_MPP_MIN, FP_SLIDE_MPP_MAX);
		goto fail;
	}
	for (int i = 0; i < s->n_levels; i++) {
		struct level_priv *l = &s->lv[i];
		l->pub.mpp = s->mpp * l->pub.downsample;
		if (l->pub.compression == COMPRESSION_JPEG) {
			uint32_t n = 0;
			const void *t = NULL;
			FP_CHECK(st, set_dir(s, l->ifd_offset));
			if (TIFFGetField(s->tif, TIFFTAG_JPEGTABLES, &n, &t) && n > 0 && t) {
				l->tables = malloc(n);
				if (!l->tables) {
					st = FP_FAIL(FP_ERR_NOMEM, "JPEGTables");
					goto fail;
				}
				memcpy(l->tables, t, n);
				l->tables_len = n;
			}
		}
	}
	s->cur_level = -1;
	TIFFOpenOptionsFree(topt);
	free(desc);
	*out = s;
	return FP_OK;
fail:
	if (topt) TIFFOpenOptionsFree(topt);
	free(desc);
	fp_slide_destroy(s);
	return st;
}

void fp_slide_destroy(struct fp_slide *s)
{
	if (!s) return;
	if (s->tif) TIFFClose(s->tif);
	for (int i = 0; i < s->n_levels; i++) free(s->lv[i].tables);
	for (size_t i = 0; i < s->cache_n; i++) free(s->cache[i].rgb);
	free(s->cache);
	free(s->raw);
	free(s->path);
	free(s);
}

int fp_slide_level_count(const struct fp_slide *s) { return s->n_levels; }
const struct fp_slide_level *fp_slide_level(const struct fp_slide *s, int level)
{
	return level >= 0 && level < s->n_levels ? &s->lv[level].pub : NULL;
}
enum fp_slide_vendor fp_slide_vendor(const struct fp_slide *s) { return s->vendor; }
const char *fp_slide_vendor_name(const struct fp_slide *s)
{
	return s->vendor == FP_SLIDE_APERIO ? "aperio" : s->vendor == FP_SLIDE_OME ? "ome" : "generic";
}
double fp_slide_mpp(const struct fp_slide *s) { return s->mpp; }
const char *fp_slide_mpp_source(const struct fp_slide *s) { return s->mpp_source; }
double fp_slide_objective_power(const struct fp_slide *s) { return s->objective; }
uint64_t fp_slide_file_size(const struct fp_slide *s) { return s->info.file_size; }
uint64_t fp_slide_bad_tiles(const struct fp_slide *s) { return s->bad_tiles; }
uint64_t fp_slide_missing_tiles(const struct fp_slide *s) { return s->missing_tiles; }

/* Raw bytes of tile (tx, ty) of the current level into s->raw; *len 0 = missing. */
static enum fp_status read_raw(struct fp_slide *s, int level, uint32_t tx, uint32_t ty, size_t *len)
{
	const struct fp_slide_level *l = &s->lv[level].pub;
	if (tx >= l->tiles_x || ty >= l->tiles_y)
		return FP_FAIL(FP_ERR_INVALID_ARG, "tile (%u, %u) outside level %d (%ux%u tiles)", tx, ty, level,
		               l->tiles_x, l->tiles_y);
	FP_TRY(use_level(s, level));
	uint32_t idx = TIFFComputeTile(s->tif, tx * l->tile_w, ty * l->tile_h, 0, 0);
	uint64_t *counts = NULL;
	if (!TIFFGetField(s->tif, TIFFTAG_TILEBYTECOUNTS, &counts) || !counts)
		return FP_FAIL(FP_ERR_FORMAT, "%s: level %d has no tile byte counts", s->path, level);
	uint64_t n = counts[idx];
	*len = 0;
	if (n == 0) return FP_OK;
	if (n > MAX_RAW_TILE)
		return FP_FAIL(FP_ERR_LIMIT, "%s: level %d tile (%u, %u) is %" PRIu64 " bytes (limit %u)", s->path, level,
		               tx, ty, n, MAX_RAW_TILE);
	if (s->raw_cap < n) {
		uint8_t *p = realloc(s->raw, (size_t)n);
		if (!p) return FP_FAIL(FP_ERR_NOMEM, "tile buffer of %" PRIu64 " bytes", n);
		s->raw = p;
		s->raw_cap = (size_t)n;
	}
	s->tiff_err[0] = 0;
	tmsize_t r = TIFFReadRawTile(s->tif, idx, s->raw, (tmsize_t)n);
	if (r != (tmsize_t)n)
		return FP_FAIL(FP_ERR_FORMAT, "%s: level %d tile (%u, %u): short read: %s", s->path, level, tx, ty,
		               s->tiff_err[0] ? s->tiff_err : "truncated file");
	*len = (size_t)n;
	return FP_OK;
}

static void clip_edges(const struct fp_slide_level *l, uint32_t tx, uint32_t ty, uint8_t *out)
{
	uint32_t vw = l->width - tx * l->tile_w, vh = l->height - ty * l->tile_h;
	if (vw > l->tile_w) vw = l->tile_w;
	if (vh > l->tile_h) vh = l->tile_h;
	for (uint32_t y = 0; y < l->tile_h; y++) {
		uint8_t *row = out + (size_t)y * l->tile_w * 3;
		if (y >= vh) memset(row, 255, (size_t)l->tile_w * 3);
		else if (vw < l->tile_w) memset(row + (size_t)vw * 3, 255, (size_t)(l->tile_w - vw) * 3);
	}
}

static enum fp_status decode_tile(struct fp_slide *s, int level, uint32_t tx, uint32_t ty, uint8_t *out,
                                  int *missing)
{
	struct level_priv *lp = &s->lv[level];
	const struct fp_slide_level *l = &lp->pub;
	enum fp_status st;
	size_t len = 0;
	*missing = 0;
	uint16_t c = l->compression;
	if (c == COMPRESSION_JPEG || c == 33003 || c == 33005) {
		FP_TRY(read_raw(s, level, tx, ty, &len));
		if (len == 0) {
			*missing = 1;
			memset(out, 255, (size_t)l->tile_w * l->tile_h * 3);
			return FP_OK;
		}
		if (c == COMPRESSION_JPEG)
			st = fp_codec_jpeg_decode(lp->tables, lp->tables_len, s->raw, len, l->photometric == PHOTOMETRIC_RGB,
			                          l->tile_w, l->tile_h, out);
		else
			st = fp_codec_j2k_decode(s->raw, len, c == 33003, l->tile_w, l->tile_h, out);
		if (st != FP_OK)
			return fp_error_wrap("%s: level %d tile (%u, %u)", s->path, level, tx, ty);
	} else {
		FP_TRY(use_level(s, level));
		uint32_t idx = TIFFComputeTile(s->tif, tx * l->tile_w, ty * l->tile_h, 0, 0);
		uint64_t *counts = NULL;
		if (!TIFFGetField(s->tif, TIFFTAG_TILEBYTECOUNTS, &counts) || !counts)
			return FP_FAIL(FP_ERR_FORMAT, "%s: level %d has no tile byte counts", s->path, level);
		if (counts[idx] == 0) {
			*missing = 1;
			memset(out, 255, (size_t)l->tile_w * l->tile_h * 3);
			return FP_OK;
		}
		size_t need;
		FP_TRY(fp_size_mul3(l->tile_w, l->tile_h, lp->samples, &need, "decoded tile"));
		if (s->raw_cap < need) {
			uint8_t *p = realloc(s->raw, need);
			if (!p) return FP_FAIL(FP_ERR_NOMEM, "tile buffer");
			s->raw = p;
			s->raw_cap = need;
		}
		s->tiff_err[0] = 0;
		tmsize_t r = TIFFReadEncodedTile(s->tif, idx, s->raw, (tmsize_t)need);
		if (r != (tmsize_t)need || s->tiff_err[0])
			return FP_FAIL(FP_ERR_FORMAT, "%s: level %d tile (%u, %u): %s", s->path, level, tx, ty,
			               s->tiff_err[0] ? s->tiff_err : "short tile");
		size_t np = (size_t)l->tile_w * l->tile_h;
		for (size_t i = 0; i < np; i++) {
			out[3 * i] = s->raw[lp->samples * i];
			out[3 * i + 1] = s->raw[lp->samples * i + 1];
			out[3 * i + 2] = s->raw[lp->samples * i + 2];
		}
	}
	clip_edges(l, tx, ty, out);
	return FP_OK;
}

enum fp_status fp_slide_read_tile(struct fp_slide *s, int level, uint32_t tx, uint32_t ty, uint8_t *out,
                                  int *missing)
{
	if (level < 0 || level >= s->n_levels) return FP_FAIL(FP_ERR_INVALID_ARG, "level %d of %d", level, s->n_levels);
	int miss = 0;
	enum fp_status st = decode_tile(s, level, tx, ty, out, &miss);
	if (st != FP_OK) s->bad_tiles++;
	if (miss) s->missing_tiles++;
	if (missing) *missing = miss;
	return st;
}

static enum fp_status cached_tile(struct fp_slide *s, int level, uint32_t tx, uint32_t ty,
                                  const struct cached_tile **out)
{
	const struct fp_slide_level *l = &s->lv[level].pub;
	size_t tile_bytes = (size_t)l->tile_w * l->tile_h * 3;
	for (size_t i = 0; i < s->cache_n; i++) {
		struct cached_tile *c = &s->cache[i];
		if (c->level == level && c->tx == tx && c->ty == ty) {
			c->stamp = ++s->stamp;
			*out = c;
			return FP_OK;
		}
	}
	size_t cap = FP_SLIDE_CACHE_BYTES / tile_bytes;
	if (cap < 4) cap = 4;
	struct cached_tile *slot = NULL;
	if (s->cache_n < cap) {
		if (s->cache_n == s->cache_cap) {
			size_t nc = s->cache_cap ? s->cache_cap * 2 : 16;
			struct cached_tile *p = realloc(s->cache, nc * sizeof *p);
			if (!p) return FP_FAIL(FP_ERR_NOMEM, "tile cache");
			s->cache = p;
			s->cache_cap = nc;
		}
		slot = &s->cache[s->cache_n];
		memset(slot, 0, sizeof *slot);
		slot->rgb = malloc(tile_bytes);
		if (!slot->rgb) return FP_FAIL(FP_ERR_NOMEM, "tile cache entry");
		s->cache_n++;
	} else {
		slot = &s->cache[0];
		for (size_t i = 1; i < s->cache_n; i++)
			if (s->cache[i].stamp < slot->stamp) slot = &s->cache[i];
		/* Tiles of another level may be a different size. */
		uint8_t *p = realloc(slot->rgb, tile_bytes);
		if (!p) return FP_FAIL(FP_ERR_NOMEM, "tile cache entry");
		slot->rgb = p;
	}
	slot->level = -1;
	int miss = 0;
	FP_TRY(fp_slide_read_tile(s, level, tx, ty, slot->rgb, &miss));
	slot->level = level;
	slot->tx = tx;
	slot->ty = ty;
	slot->missing = miss;
	slot->stamp = ++s->stamp;
	*out = slot;
	return FP_OK;
}

enum fp_status fp_slide_read_region(struct fp_slide *s, int level, int64_t x, int64_t y, uint32_t w, uint32_t h,
                                    uint8_t *out, int *missing)
{
	if (level < 0 || level >= s->n_levels) return FP_FAIL(FP_ERR_INVALID_ARG, "level %d of %d", level, s->n_levels);
	const struct fp_slide_level *l = &s->lv[level].pub;
	int miss = 0;
	memset(out, 255, (size_t)w * h * 3);
	int64_t x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
	int64_t x1 = x + w < (int64_t)l->width ? x + w : (int64_t)l->width;
	int64_t y1 = y + h < (int64_t)l->height ? y + h : (int64_t)l->height;
	if (x0 < x1 && y0 < y1) {
		for (int64_t ty = y0 / l->tile_h; ty <= (y1 - 1) / l->tile_h; ty++) {
			for (int64_t tx = x0 / l->tile_w; tx <= (x1 - 1) / l->tile_w; tx++) {
				const struct cached_tile *c = NULL;
				FP_TRY(cached_tile(s, level, (uint32_t)tx, (uint32_t)ty, &c));
				miss += c->missing;
				int64_t ox = tx * l->tile_w, oy = ty * l->tile_h;
				int64_t cx0 = ox > x0 ? ox : x0, cx1 = ox + l->tile_w < x1 ? ox + l->tile_w : x1;
				int64_t cy0 = oy > y0 ? oy : y0, cy1 = oy + l->tile_h < y1 ? oy + l->tile_h : y1;
				for (int64_t yy = cy0; yy < cy1; yy++)
					memcpy(out + ((size_t)(yy - y) * w + (size_t)(cx0 - x)) * 3,
					       c->rgb + ((size_t)(yy - oy) * l->tile_w + (size_t)(cx0 - ox)) * 3,
					       (size_t)(cx1 - cx0) * 3);
			}
		}
	}
	if (missing) *missing = miss;
	return FP_OK;
}

enum fp_status fp_slide_read_jpeg_tile(struct fp_slide *s, int level, uint32_t tx, uint32_t ty, uint8_t **out,
                                       size_t *len)
{
	*out = NULL;
	*len = 0;
	if (level < 0 || level >= s->n_levels) return FP_FAIL(FP_ERR_INVALID_ARG, "level %d of %d", level, s->n_levels);
	struct level_priv *lp = &s->lv[level];
	if (lp->pub.compression != COMPRESSION_JPEG)
		return FP_FAIL(FP_ERR_UNSUPPORTED, "level %d is not JPEG (compression %u)", level, lp->pub.compression);
	size_t n = 0;
	FP_TRY(read_raw(s, level, tx, ty, &n));
	if (n == 0) return FP_OK;
	if (n < 4 || s->raw[0] != 0xFF || s->raw[1] != 0xD8)
		return FP_FAIL(FP_ERR_FORMAT, "%s: level %d tile (%u, %u) does not start with a JPEG SOI", s->path, level, tx, ty);
	static const uint8_t adobe[16] = {0xFF, 0xEE, 0x00, 0x0E, 'A', 'd', 'o', 'b', 'e', 0x00, 0x64,
	                                  0x00, 0x00, 0x00, 0x00, 0x00};
	int rgb = lp->pub.photometric == PHOTOMETRIC_RGB;
	size_t tables = lp->tables_len >= 4 ? lp->tables_len - 4 : 0;
	size_t total = 2 + (rgb ? sizeof adobe : 0) + tables + (n - 2);
	uint8_t *b = malloc(total);
	if (!b) return FP_FAIL(FP_ERR_NOMEM, "JPEG tile of %zu bytes", total);
	size_t p = 0;
	b[p++] = 0xFF;
	b[p++] = 0xD8;
	if (rgb) {
		memcpy(b + p, adobe, sizeof adobe);
		p += sizeof adobe;
	}
	if (tables) {
		memcpy(b + p, lp->tables + 2, tables);
		p += tables;
	}
	memcpy(b + p, s->raw + 2, n - 2);
	*out = b;
	*len = total;
	return FP_OK;
}

enum fp_status fp_slide_quickhash(struct fp_slide *s, char hex[65])
{
	enum fp_status st;
	struct fp_sha256 *h = NULL;
	uint8_t dig[FP_SHA256_SIZE];
	FP_CHECK(st, fp_sha256_create(&h));
	char head[128];
	int n = snprintf(head, sizeof head, "fedpath-quickhash-1 %" PRIu64 " %d", s->info.file_size, s->n_levels);
	FP_CHECK(st, fp_sha256_update(h, head, (size_t)n));
	for (int i = 0; i < s->n_levels; i++) {
		const struct fp_slide_level *l = &s->lv[i].pub;
		n = snprintf(head, sizeof head, " %u %u %u %u %u %u", l->width, l->height, l->tile_w, l->tile_h, l->compression,
		             s->lv[i].tables_len);
		FP_CHECK(st, fp_sha256_update(h, head, (size_t)n));
		/* The tables decode every tile: a change there changes every pixel. */
		if (s->lv[i].tables_len) FP_CHECK(st, fp_sha256_update(h, s->lv[i].tables, s->lv[i].tables_len));
	}
	int last = s->n_levels - 1;
	const struct fp_slide_level *l = &s->lv[last].pub;
	uint64_t hashed = 0;
	for (uint32_t ty = 0; ty < l->tiles_y; ty++) {
		for (uint32_t tx = 0; tx < l->tiles_x; tx++) {
			size_t len = 0;
			FP_CHECK(st, read_raw(s, last, tx, ty, &len));
			FP_CHECK(st, fp_sha256_update(h, s->raw, len));
			hashed += len;
			if (hashed > (64u << 20)) goto done; /* a huge single-level file: its first 64 MiB */
		}
	}
done:
	FP_CHECK(st, fp_sha256_final(h, dig));
	fp_hex_encode(dig, sizeof dig, hex);
fail:
	fp_sha256_destroy(h);
	return st;
}
