/*
 * tile_cache_write.c: writes one slide's tile cache (format docs/TILE_CACHE.md,
 * contract fp_tile_cache.h).
 *
 * Memory stays bounded whatever the slide size: JPEG bytes are spooled to an
 * unlinked temporary file next to the output and copied into the contiguous
 * /tiles/jpeg dataset at finish (4 MiB at a time); raw tiles go straight to
 * their chunk with H5Dwrite_chunk. Per-tile coords, offsets and qc (40 bytes a
 * tile) are kept in memory. Everything is written to "<path>.partial", which is
 * published by fp_file_publish() only after the HDF5 file is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "fp_arith.h"
#include "fp_common.h"
#include "fp_tile_cache.h"

#define GROW 4096
#define COPY_BLOCK (4u << 20)

struct fp_tile_cache_writer {
	char *path, *partial;
	struct fp_tile_cache_meta meta;
	char *params_json;
	hid_t file;
	hid_t pixels;          /* raw only */
	hsize_t pixels_cap;
	int spool;             /* JPEG spool fd */
	uint64_t spool_len;
	int32_t *coords;       /* (N, 2) */
	float *qc;             /* (N, FP_TILE_QC_N) */
	uint64_t *offsets;     /* (N + 1) */
	uint64_t n, cap;
	uint8_t *mask;
	uint32_t mw, mh;
	double mask_mpp;
	struct fp_stain_stats stain;
	uint64_t bad, missing, dropped;
	int finished;
	dev_t dev;             /* the partial file this writer created */
	ino_t ino;
};

static enum fp_status h5_fail(const char *what, const char *path)
{
	return FP_FAIL(FP_ERR_IO, "%s: HDF5 could not %s", path, what);
}

static enum fp_status attr_str(hid_t obj, const char *name, const char *v)
{
	hid_t t = H5Tcopy(H5T_C_S1);
	H5Tset_size(t, strlen(v) ? strlen(v) : 1);
	H5Tset_strpad(t, H5T_STR_NULLTERM);
	hid_t sp = H5Screate(H5S_SCALAR);
	hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
	herr_t r = a < 0 ? -1 : H5Awrite(a, t, strlen(v) ? v : "");
	if (a >= 0) H5Aclose(a);
	H5Sclose(sp);
	H5Tclose(t);
	return r < 0 ? FP_FAIL(FP_ERR_IO, "HDF5: cannot write attribute %s", name) : FP_OK;
}

static enum fp_status attr_num(hid_t obj, const char *name, hid_t type, const void *v, hsize_t n)
{
	hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
	hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
	herr_t r = a < 0 ? -1 : H5Awrite(a, type, v);
	if (a >= 0) H5Aclose(a);
	H5Sclose(sp);
	return r < 0 ? FP_FAIL(FP_ERR_IO, "HDF5: cannot write attribute %s", name) : FP_OK;
}

static enum fp_status attr_i64(hid_t o, const char *n, int64_t v) { return attr_num(o, n, H5T_NATIVE_INT64, &v, 0); }
static enum fp_status attr_f64(hid_t o, const char *n, double v) { return attr_num(o, n, H5T_NATIVE_DOUBLE, &v, 0); }

/* A dataset written in one go: dims of rank `rank`, optional chunking. */
static enum fp_status write_ds(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, int rank,
                               const hsize_t *dims, const hsize_t *chunk, int deflate, const void *data)
{
	enum fp_status st = FP_OK;
	hid_t sp = H5Screate_simple(rank, dims, NULL);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	H5Pset_obj_track_times(dcpl, 0);
	int empty = 0;
	for (int i = 0; i < rank; i++) empty |= dims[i] == 0;
	if (chunk && !empty) {
		H5Pset_chunk(dcpl, rank, chunk);
		if (deflate) {
			H5Pset_shuffle(dcpl);
			H5Pset_deflate(dcpl, 4);
		}
	}
	hid_t d = H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	if (d < 0 || (!empty && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
		st = FP_FAIL(FP_ERR_IO, "HDF5: cannot write dataset %s", name);
	if (d >= 0) H5Dclose(d);
	H5Pclose(dcpl);
	H5Sclose(sp);
	return st;
}

static hid_t make_group(hid_t loc, const char *name)
{
	hid_t gc = H5Pcreate(H5P_GROUP_CREATE);
	H5Pset_obj_track_times(gc, 0);
	hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gc, H5P_DEFAULT);
	H5Pclose(gc);
	return g;
}

enum fp_status fp_tile_cache_writer_create(const char *path, const struct fp_tile_cache_meta *meta,
                                           struct fp_tile_cache_writer **out)
{
	enum fp_status st;
	struct fp_tile_cache_writer *w = calloc(1, sizeof *w);
	*out = NULL;
	if (!w) return FP_FAIL(FP_ERR_NOMEM, "tile cache writer");
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	w->file = -1;
	w->pixels = -1;
	w->spool = -1;
	w->meta = *meta;
	w->params_json = strdup(meta->params_json ? meta->params_json : "{}");
	w->path = strdup(path);
	size_t pl = strlen(path) + 16;
	w->partial = malloc(pl);
	if (!w->params_json || !w->path || !w->partial) {
		st = FP_FAIL(FP_ERR_NOMEM, "tile cache writer");
		goto fail;
	}
	w->meta.params_json = w->params_json;
	snprintf(w->partial, pl, "%s.partial", path);
	unlink(w->partial);
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_V18);
	w->file = H5Fcreate(w->partial, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
	H5Pclose(fapl);
	if (w->file < 0) {
		st = h5_fail("create the file", w->partial);
		goto fail;
	}
	struct stat sb;
	if (stat(w->partial, &sb) != 0) {
		st = FP_FAIL(FP_ERR_IO, "cannot stat %s: %s", w->partial, strerror(errno));
		goto fail;
	}
	w->dev = sb.st_dev;
	w->ino = sb.st_ino;
	if (meta->encoding == FP_TILE_RAW) {
		hsize_t T = meta->tile_size;
		hsize_t dims[4] = {0, T, T, 3}, maxd[4] = {H5S_UNLIMITED, T, T, 3}, chunk[4] = {1, T, T, 3};
		hid_t sp = H5Screate_simple(4, dims, maxd);
		hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
		H5Pset_obj_track_times(dcpl, 0);
		H5Pset_chunk(dcpl, 4, chunk);
		hid_t g = make_group(w->file, "tiles");
		w->pixels = g < 0 ? -1 : H5Dcreate2(g, "pixels", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
		if (g >= 0) H5Gclose(g);
		H5Pclose(dcpl);
		H5Sclose(sp);
		if (w->pixels < 0) {
			st = h5_fail("create /tiles/pixels", w->partial);
			goto fail;
		}
	} else {
		/* The spool sits next to the output so that it shares its disk. */
		char *tmpl = malloc(pl + 16);
		if (!tmpl) {
			st = FP_FAIL(FP_ERR_NOMEM, "spool name");
			goto fail;
		}
		snprintf(tmpl, pl + 16, "%s.spoolXXXXXX", path);
		w->spool = mkstemp(tmpl);
		if (w->spool >= 0) unlink(tmpl);
		free(tmpl);
		if (w->spool < 0) {
			st = FP_FAIL(FP_ERR_IO, "%s: cannot create the JPEG spool: %s", path, strerror(errno));
			goto fail;
		}
	}
	*out = w;
	return FP_OK;
fail:
	fp_tile_cache_writer_destroy(w);
	return st;
}

static enum fp_status grow(struct fp_tile_cache_writer *w)
{
	if (w->n < w->cap) return FP_OK;
	if (w->cap >= FP_TILE_MAX_TILES) return FP_FAIL(FP_ERR_LIMIT, "more than %u tiles in one slide", FP_TILE_MAX_TILES);
	uint64_t nc = w->cap ? w->cap * 2 : GROW;
	int32_t *c = realloc(w->coords, (size_t)nc * 2 * sizeof *c);
	if (c) w->coords = c;
	float *q = realloc(w->qc, (size_t)nc * FP_TILE_QC_N * sizeof *q);
	if (q) w->qc = q;
	uint64_t *o = realloc(w->offsets, (size_t)(nc + 1) * sizeof *o);
	if (o) w->offsets = o;
	if (!c || !q || !o) return FP_FAIL(FP_ERR_NOMEM, "tile index of %" PRIu64 " tiles", nc);
	w->cap = nc;
	return FP_OK;
}

enum fp_status fp_tile_cache_writer_add(struct fp_tile_cache_writer *w, int32_t x, int32_t y, const float *qc,
                                        const uint8_t *jpeg, size_t len, const uint8_t *rgb)
{
	FP_TRY(grow(w));
	if (w->meta.encoding == FP_TILE_JPEG) {
		if (!jpeg || !len) return FP_FAIL(FP_ERR_INVALID_ARG, "JPEG cache: empty tile");
		size_t done = 0;
		while (done < len) {
			ssize_t r = pwrite(w->spool, jpeg + done, len - done, (off_t)(w->spool_len + done));
			if (r < 0 && errno == EINTR) continue;
			if (r <= 0) return FP_FAIL(FP_ERR_IO, "%s: spool write: %s", w->path, strerror(errno));
			done += (size_t)r;
		}
		w->offsets[w->n] = w->spool_len;
		w->spool_len += len;
	} else {
		if (!rgb) return FP_FAIL(FP_ERR_INVALID_ARG, "raw cache: no pixels");
		if (w->n >= w->pixels_cap) {
			hsize_t T = w->meta.tile_size;
			hsize_t dims[4] = {w->pixels_cap + GROW, T, T, 3};
			if (H5Dset_extent(w->pixels, dims) < 0) return h5_fail("extend /tiles/pixels", w->partial);
			w->pixels_cap += GROW;
		}
		hsize_t off[4] = {w->n, 0, 0, 0};
		size_t bytes = (size_t)w->meta.tile_size * w->meta.tile_size * 3;
		if (H5Dwrite_chunk(w->pixels, H5P_DEFAULT, 0, off, bytes, rgb) < 0)
			return h5_fail("write a tile chunk", w->partial);
	}
	w->coords[2 * w->n] = x;
	w->coords[2 * w->n + 1] = y;
	memcpy(w->qc + w->n * FP_TILE_QC_N, qc, FP_TILE_QC_N * sizeof *qc);
	w->n++;
	return FP_OK;
}

enum fp_status fp_tile_cache_writer_set_mask(struct fp_tile_cache_writer *w, const uint8_t *mask, uint32_t mw,
                                             uint32_t mh, double mask_mpp)
{
	size_t n;
	FP_TRY(fp_size_mul(mw, mh, &n, "mask"));
	uint8_t *m = malloc(n ? n : 1);
	if (!m) return FP_FAIL(FP_ERR_NOMEM, "mask copy");
	memcpy(m, mask, n);
	free(w->mask);
	w->mask = m;
	w->mw = mw;
	w->mh = mh;
	w->mask_mpp = mask_mpp;
	return FP_OK;
}

void fp_tile_cache_writer_set_stain(struct fp_tile_cache_writer *w, const struct fp_stain_stats *s) { w->stain = *s; }

void fp_tile_cache_writer_set_counts(struct fp_tile_cache_writer *w, uint64_t bad, uint64_t missing, uint64_t dropped)
{
	w->bad = bad;
	w->missing = missing;
	w->dropped = dropped;
}

uint64_t fp_tile_cache_writer_count(const struct fp_tile_cache_writer *w) { return w->n; }

static enum fp_status write_jpeg_bytes(struct fp_tile_cache_writer *w, hid_t g)
{
	enum fp_status st = FP_OK;
	hsize_t total = w->spool_len;
	hid_t sp = H5Screate_simple(1, &total, NULL);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	H5Pset_obj_track_times(dcpl, 0);
	H5Pset_layout(dcpl, H5D_CONTIGUOUS);
	/* Allocated at creation so that its file offset exists for pread readers. */
	H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
	hid_t d = H5Dcreate2(g, "jpeg", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	uint8_t *buf = NULL;
	if (d < 0) {
		st = h5_fail("create /tiles/jpeg", w->partial);
		goto fail;
	}
	buf = malloc(COPY_BLOCK);
	if (!buf) {
		st = FP_FAIL(FP_ERR_NOMEM, "copy buffer");
		goto fail;
	}
	for (hsize_t pos = 0; pos < total;) {
		hsize_t n = total - pos < COPY_BLOCK ? total - pos : COPY_BLOCK;
		ssize_t r = pread(w->spool, buf, (size_t)n, (off_t)pos);
		if (r != (ssize_t)n) {
			st = FP_FAIL(FP_ERR_IO, "%s: spool read: %s", w->path, r < 0 ? strerror(errno) : "short");
			goto fail;
		}
		hid_t ms = H5Screate_simple(1, &n, NULL);
		H5Sselect_hyperslab(sp, H5S_SELECT_SET, &pos, NULL, &n, NULL);
		herr_t e = H5Dwrite(d, H5T_NATIVE_UINT8, ms, sp, H5P_DEFAULT, buf);
		H5Sclose(ms);
		if (e < 0) {
			st = h5_fail("write /tiles/jpeg", w->partial);
			goto fail;
		}
		pos += n;
	}
fail:
	free(buf);
	if (d >= 0) H5Dclose(d);
	H5Pclose(dcpl);
	H5Sclose(sp);
	return st;
}

static enum fp_status write_root_attrs(struct fp_tile_cache_writer *w)
{
	const struct fp_tile_cache_meta *m = &w->meta;
	hid_t f = w->file;
	unsigned maj, min, rel;
	char libs[160];
	H5get_libversion(&maj, &min, &rel);
	snprintf(libs, sizeof libs, "hdf5 %u.%u.%u", maj, min, rel);
	FP_TRY(attr_i64(f, "schema_version", FP_TILE_CACHE_SCHEMA));
	FP_TRY(attr_str(f, "format", "fedpath-tile-cache"));
	FP_TRY(attr_str(f, "tool_version", fp_version()));
	FP_TRY(attr_str(f, "git_sha", fp_git_hash()));
	FP_TRY(attr_str(f, "libraries", libs));
	FP_TRY(attr_str(f, "site_id", m->site_id));
	FP_TRY(attr_str(f, "slide_uid", m->slide_uid));
	FP_TRY(attr_i64(f, "source_size", (int64_t)m->source_size));
	FP_TRY(attr_str(f, "source_quickhash", m->source_quickhash));
	FP_TRY(attr_str(f, "vendor", m->vendor));
	FP_TRY(attr_f64(f, "mpp_x", m->mpp));
	FP_TRY(attr_f64(f, "mpp_y", m->mpp));
	FP_TRY(attr_str(f, "mpp_source", m->mpp_source));
	FP_TRY(attr_f64(f, "objective_power", m->objective_power));
	FP_TRY(attr_i64(f, "level0_w", m->level0_w));
	FP_TRY(attr_i64(f, "level0_h", m->level0_h));
	FP_TRY(attr_i64(f, "source_level", m->source_level));
	FP_TRY(attr_f64(f, "source_level_mpp", m->source_level_mpp));
	FP_TRY(attr_i64(f, "resampled", m->resampled));
	FP_TRY(attr_str(f, "resample_filter", m->resampled ? "area" : "none"));
	FP_TRY(attr_f64(f, "target_mpp", m->target_mpp));
	FP_TRY(attr_i64(f, "tile_size", m->tile_size));
	FP_TRY(attr_str(f, "encoding", m->encoding == FP_TILE_RAW ? "raw" : "jpeg"));
	FP_TRY(attr_i64(f, "jpeg_quality", m->encoding == FP_TILE_RAW ? 0 : m->jpeg_quality));
	FP_TRY(attr_i64(f, "copied_native_jpeg", m->copied_native));
	FP_TRY(attr_str(f, "params_json", m->params_json));
	FP_TRY(attr_str(f, "params_sha256", m->params_sha256));
	FP_TRY(attr_i64(f, "n_tiles", (int64_t)w->n));
	FP_TRY(attr_i64(f, "n_bad_tiles", (int64_t)w->bad));
	FP_TRY(attr_i64(f, "n_missing_tiles", (int64_t)w->missing));
	FP_TRY(attr_i64(f, "n_dropped_qc", (int64_t)w->dropped));
	/* Written last: a reader trusts a cache only when this says complete. */
	FP_TRY(attr_str(f, "status", "complete"));
	return FP_OK;
}

static enum fp_status write_all(struct fp_tile_cache_writer *w)
{
	enum fp_status st = FP_OK;
	const struct fp_tile_cache_meta *m = &w->meta;
	hid_t tiles = -1, grp = -1, d = -1;
	hsize_t N = w->n;
	hsize_t dims2[2] = {N, 2}, chunk2[2] = {N < 4096 ? (N ? N : 1) : 4096, 2};
	if (m->encoding == FP_TILE_RAW) {
		tiles = H5Gopen2(w->file, "tiles", H5P_DEFAULT);
		hsize_t T = m->tile_size, dims[4] = {N, T, T, 3};
		if (H5Dset_extent(w->pixels, dims) < 0) {
			st = h5_fail("trim /tiles/pixels", w->partial);
			goto fail;
		}
	} else {
		tiles = make_group(w->file, "tiles");
	}
	if (tiles < 0) {
		st = h5_fail("create /tiles", w->partial);
		goto fail;
	}
	FP_CHECK(st, write_ds(tiles, "coords", H5T_NATIVE_INT32, H5T_STD_I32LE, 2, dims2, chunk2, 1, w->coords));
	hsize_t dq[2] = {N, FP_TILE_QC_N}, cq[2] = {chunk2[0], FP_TILE_QC_N};
	FP_CHECK(st, write_ds(tiles, "qc", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, dq, cq, 1, w->qc));
	d = H5Dopen2(tiles, "qc", H5P_DEFAULT);
	FP_CHECK(st, attr_str(d, "columns", "tissue_fraction,white_fraction,gray_fraction,blur_laplacian_var,pen_fraction,mean_od"));
	H5Dclose(d);
	d = -1;
	if (m->encoding == FP_TILE_JPEG) {
		w->offsets[N] = w->spool_len;
		hsize_t dn = N + 1;
		FP_CHECK(st, write_ds(tiles, "offsets", H5T_NATIVE_UINT64, H5T_STD_U64LE, 1, &dn, NULL, 0, w->offsets));
		FP_CHECK(st, write_jpeg_bytes(w, tiles));
	}

	/* CLAM / TRIDENT-compatible /coords: int64 level-0 corners. */
	{
		int64_t *c64 = NULL;
		FP_CHECK(st, fp_alloc_array(N ? N * 2 : 1, sizeof *c64, (void **)&c64, "coords"));
		for (hsize_t i = 0; i < 2 * N; i++) c64[i] = w->coords[i];
		st = write_ds(w->file, "coords", H5T_NATIVE_INT64, H5T_STD_I64LE, 2, dims2, chunk2, 0, c64);
		free(c64);
		if (st != FP_OK) goto fail;
		d = H5Dopen2(w->file, "coords", H5P_DEFAULT);
		int64_t lvl_dim[2] = {m->source_level_w, m->source_level_h};
		double ds = m->source_level_mpp / m->mpp, dsv[2] = {ds, ds};
		FP_CHECK(st, attr_i64(d, "patch_size", (int64_t)llround(m->footprint)));
		FP_CHECK(st, attr_i64(d, "patch_level", m->source_level));
		FP_CHECK(st, attr_num(d, "downsample", H5T_NATIVE_DOUBLE, dsv, 2));
		FP_CHECK(st, attr_num(d, "level_dim", H5T_NATIVE_INT64, lvl_dim, 2));
		FP_CHECK(st, attr_num(d, "downsampled_level_dim", H5T_NATIVE_INT64, lvl_dim, 2));
		FP_CHECK(st, attr_str(d, "name", m->slide_uid));
		FP_CHECK(st, attr_i64(d, "patch_size_level0", (int64_t)llround(m->footprint * ds)));
		FP_CHECK(st, attr_f64(d, "level0_magnification", m->objective_power));
		FP_CHECK(st, attr_f64(d, "target_mpp", m->target_mpp));
		FP_CHECK(st, attr_i64(d, "overlap", 0));
		H5Dclose(d);
		d = -1;
	}

	/* /levels: (L, 5) w, h, tile_w, tile_h, downsample */
	{
		hsize_t dl[2] = {(hsize_t)m->n_levels, 5};
		FP_CHECK(st, write_ds(w->file, "levels", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dl, NULL, 0, m->levels));
	}

	grp = make_group(w->file, "mask");
	if (grp < 0) {
		st = h5_fail("create /mask", w->partial);
		goto fail;
	}
	{
		hsize_t dm[2] = {w->mh, w->mw}, cm[2] = {w->mh ? (w->mh < 256 ? w->mh : 256) : 1, w->mw ? (w->mw < 256 ? w->mw : 256) : 1};
		FP_CHECK(st, write_ds(grp, "tissue", H5T_NATIVE_UINT8, H5T_STD_U8LE, 2, dm, cm, 1, w->mask ? w->mask : (uint8_t *)""));
		d = H5Dopen2(grp, "tissue", H5P_DEFAULT);
		FP_CHECK(st, attr_f64(d, "mpp", w->mask_mpp));
		H5Dclose(d);
		d = -1;
	}
	H5Gclose(grp);
	grp = make_group(w->file, "stain");
	if (grp < 0) {
		st = h5_fail("create /stain", w->partial);
		goto fail;
	}
	{
		const struct fp_stain_stats *s = &w->stain;
		hsize_t d32[2] = {3, 2}, dmc = 2, dp[2] = {7, 3};
		FP_CHECK(st, attr_i64(grp, "valid", s->valid));
		FP_CHECK(st, attr_i64(grp, "n_pixels", (int64_t)s->n_pixels));
		FP_CHECK(st, attr_str(grp, "method", "macenko2009 od_threshold=0.15 alpha=1 I0=255"));
		FP_CHECK(st, write_ds(grp, "macenko_he", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, d32, NULL, 0, s->he));
		FP_CHECK(st, write_ds(grp, "max_c", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, &dmc, NULL, 0, s->max_c));
		FP_CHECK(st, write_ds(grp, "od_percentiles", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, dp, NULL, 0, s->od_pct));
		d = H5Dopen2(grp, "od_percentiles", H5P_DEFAULT);
		FP_CHECK(st, attr_str(d, "percentiles", "1,5,25,50,75,95,99"));
		H5Dclose(d);
		d = -1;
	}
	FP_CHECK(st, write_root_attrs(w));
fail:
	if (d >= 0) H5Dclose(d);
	if (grp >= 0) H5Gclose(grp);
	if (tiles >= 0) H5Gclose(tiles);
	return st;
}

enum fp_status fp_tile_cache_writer_finish(struct fp_tile_cache_writer *w)
{
	enum fp_status st;
	FP_CHECK(st, grow(w)); /* an empty cache still needs offsets[0] */
	FP_CHECK(st, write_all(w));
	if (w->pixels >= 0) H5Dclose(w->pixels);
	w->pixels = -1;
	herr_t e = H5Fclose(w->file);
	w->file = -1;
	if (e < 0) {
		st = h5_fail("close the file", w->partial);
		goto fail;
	}
	/* Publish only the file this writer made: were "<path>.partial" replaced
	 * by another process writing the same slide, renaming it would publish
	 * a half-written cache. */
	struct stat sb;
	if (stat(w->partial, &sb) != 0 || sb.st_dev != w->dev || sb.st_ino != w->ino) {
		st = FP_FAIL(FP_ERR_STATE, "%s was replaced or removed by another process while it was written; not published",
		             w->partial);
		goto fail;
	}
	FP_CHECK(st, fp_file_publish(w->partial, w->path));
	w->finished = 1;
	return FP_OK;
fail:
	return st;
}

void fp_tile_cache_writer_destroy(struct fp_tile_cache_writer *w)
{
	if (!w) return;
	if (w->pixels >= 0) H5Dclose(w->pixels);
	if (w->file >= 0) H5Fclose(w->file);
	struct stat sb;
	if (!w->finished && w->partial && stat(w->partial, &sb) == 0 && sb.st_dev == w->dev && sb.st_ino == w->ino)
		unlink(w->partial); /* ours only */
	if (w->spool >= 0) close(w->spool);
	free(w->coords);
	free(w->qc);
	free(w->offsets);
	free(w->mask);
	free(w->params_json);
	free(w->path);
	free(w->partial);
	free(w);
}
