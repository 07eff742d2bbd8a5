/*
 * tile_cache_read.c: reading tile caches (contract in fp_tile_cache.h):
 * one cache (open, attributes, coords, qc, tiles), the multi-slide training
 * reader and its prefetch thread.
 *
 * Thread-safety: the Debian HDF5 is not built thread-safe, so every HDF5 call
 * here holds one process-wide mutex. JPEG tiles avoid HDF5 on the hot path:
 * /tiles/jpeg is contiguous, so its file offset (H5Dget_offset) plus
 * /tiles/offsets[i] is read with pread() and decoded outside the lock.
 * Lengths from the file are checked before use (offsets monotone and inside
 * the dataset, one tile at most FP_TILE_MAX_JPEG bytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "fp_arith.h"
#include "fp_tile_cache.h"
#include "slide_codec.h"

#define FP_TILE_MAX_JPEG (16u << 20)

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

struct fp_tile_cache {
	char *path;
	hid_t file, pixels;
	int fd;
	uint64_t n;
	uint32_t tile;
	enum fp_tile_encoding enc;
	haddr_t jpeg_addr;
	uint64_t jpeg_size;
	uint64_t *offsets; /* (n + 1) */
	int32_t *coords;   /* (n, 2) */
	float *qc;         /* (n, FP_TILE_QC_N) */
};

static enum fp_status read_attr_str(hid_t obj, const char *name, char *buf, size_t size)
{
	if (H5Aexists(obj, name) <= 0) return FP_FAIL(FP_ERR_NOT_FOUND, "attribute %s is missing", name);
	hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
	hid_t t = a < 0 ? -1 : H5Aget_type(a);
	enum fp_status st = FP_OK;
	if (t < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "attribute %s is not a fixed-length string", name);
	} else {
		size_t n = H5Tget_size(t);
		char *tmp = malloc(n + 1);
		if (!tmp) st = FP_FAIL(FP_ERR_NOMEM, "attribute %s", name);
		else if (H5Aread(a, t, tmp) < 0) st = FP_FAIL(FP_ERR_FORMAT, "attribute %s unreadable", name);
		else {
			tmp[n] = 0;
			snprintf(buf, size, "%s", tmp);
		}
		free(tmp);
	}
	if (t >= 0) H5Tclose(t);
	if (a >= 0) H5Aclose(a);
	return st;
}

static enum fp_status read_attr_i64(hid_t obj, const char *name, int64_t *v)
{
	if (H5Aexists(obj, name) <= 0) return FP_FAIL(FP_ERR_NOT_FOUND, "attribute %s is missing", name);
	hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
	herr_t r = a < 0 ? -1 : H5Aread(a, H5T_NATIVE_INT64, v);
	if (a >= 0) H5Aclose(a);
	return r < 0 ? FP_FAIL(FP_ERR_FORMAT, "attribute %s unreadable", name) : FP_OK;
}

/* Reads a whole dataset of `rank` dims (checked against `expect`, -1 = any)
 * into a new buffer. */
static enum fp_status read_ds(hid_t loc, const char *name, hid_t mtype, size_t esize, int rank,
                              const int64_t *expect, void **out)
{
	enum fp_status st = FP_OK;
	hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
	hid_t sp = d < 0 ? -1 : H5Dget_space(d);
	hsize_t dims[4] = {0};
	*out = NULL;
	if (sp < 0 || H5Sget_simple_extent_ndims(sp) != rank) {
		st = FP_FAIL(FP_ERR_FORMAT, "dataset %s missing or not of rank %d", name, rank);
		goto fail;
	}
	H5Sget_simple_extent_dims(sp, dims, NULL);
	size_t n = 1;
	for (int i = 0; i < rank; i++) {
		if (expect[i] >= 0 && (int64_t)dims[i] != expect[i]) {
			st = FP_FAIL(FP_ERR_FORMAT, "dataset %s dimension %d is %llu, expected %lld", name, i,
			             (unsigned long long)dims[i], (long long)expect[i]);
			goto fail;
		}
		FP_CHECK(st, fp_size_mul(n, (size_t)dims[i], &n, name));
	}
	FP_CHECK(st, fp_alloc_array(n ? n : 1, esize, out, name));
	if (n && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
		free(*out);
		*out = NULL;
		st = FP_FAIL(FP_ERR_FORMAT, "dataset %s unreadable", name);
	}
fail:
	if (sp >= 0) H5Sclose(sp);
	if (d >= 0) H5Dclose(d);
	return st;
}

static enum fp_status open_locked(const char *path, struct fp_tile_cache *c)
{
	enum fp_status st = FP_OK;
	char buf[64];
	int64_t v;
	c->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (c->file < 0) return FP_FAIL(FP_ERR_FORMAT, "%s: not an HDF5 tile cache (HDF5 cannot open it)", path);
	if (read_attr_str(c->file, "format", buf, sizeof buf) != FP_OK || strcmp(buf, "fedpath-tile-cache") != 0)
		return FP_FAIL(FP_ERR_FORMAT, "%s: not a fedpath tile cache (format attribute)", path);
	if (read_attr_i64(c->file, "schema_version", &v) != FP_OK)
		return FP_FAIL(FP_ERR_FORMAT, "%s: no schema_version", path);
	if (v < 1 || v > FP_TILE_CACHE_SCHEMA)
		return FP_FAIL(FP_ERR_VERSION, "%s: tile cache schema version %lld; this fedpath reads up to %d "
		               "(upgrade fedpath or re-run fedpath tile)", path, (long long)v, FP_TILE_CACHE_SCHEMA);
	if (read_attr_str(c->file, "status", buf, sizeof buf) != FP_OK || strcmp(buf, "complete") != 0)
		return FP_FAIL(FP_ERR_FORMAT, "%s: the tile cache is not complete", path);
	if (read_attr_i64(c->file, "tile_size", &v) != FP_OK || v < 16 || v > 4096)
		return FP_FAIL(FP_ERR_FORMAT, "%s: tile_size missing or outside 16..4096", path);
	c->tile = (uint32_t)v;
	if (read_attr_i64(c->file, "n_tiles", &v) != FP_OK || v < 0 || v > FP_TILE_MAX_TILES)
		return FP_FAIL(FP_ERR_FORMAT, "%s: n_tiles missing or above %u", path, FP_TILE_MAX_TILES);
	c->n = (uint64_t)v;
	if (read_attr_str(c->file, "encoding", buf, sizeof buf) != FP_OK)
		return FP_FAIL(FP_ERR_FORMAT, "%s: no encoding attribute", path);
	if (strcmp(buf, "jpeg") == 0) c->enc = FP_TILE_JPEG;
	else if (strcmp(buf, "raw") == 0) c->enc = FP_TILE_RAW;
	else return FP_FAIL(FP_ERR_FORMAT, "%s: unknown encoding \"%s\"", path, buf);
	int64_t e2[2] = {(int64_t)c->n, 2}, eq[2] = {(int64_t)c->n, FP_TILE_QC_N};
	st = read_ds(c->file, "tiles/coords", H5T_NATIVE_INT32, sizeof(int32_t), 2, e2, (void **)&c->coords);
	if (st == FP_OK) st = read_ds(c->file, "tiles/qc", H5T_NATIVE_FLOAT, sizeof(float), 2, eq, (void **)&c->qc);
	if (st != FP_OK) return fp_error_wrap("%s", path);
	if (c->enc == FP_TILE_JPEG) {
		int64_t eo[1] = {(int64_t)c->n + 1};
		st = read_ds(c->file, "tiles/offsets", H5T_NATIVE_UINT64, sizeof(uint64_t), 1, eo, (void **)&c->offsets);
		if (st != FP_OK) return fp_error_wrap("%s", path);
		hid_t d = H5Dopen2(c->file, "tiles/jpeg", H5P_DEFAULT);
		if (d < 0) return FP_FAIL(FP_ERR_FORMAT, "%s: /tiles/jpeg missing", path);
		hid_t sp = H5Dget_space(d);
		hsize_t n = 0;
		H5Sget_simple_extent_dims(sp, &n, NULL);
		H5Sclose(sp);
		c->jpeg_size = n;
		c->jpeg_addr = H5Dget_offset(d);
		H5Dclose(d);
		if (n > 0 && c->jpeg_addr == HADDR_UNDEF)
			return FP_FAIL(FP_ERR_FORMAT, "%s: /tiles/jpeg is not contiguous", path);
		for (uint64_t i = 0; i < c->n; i++)
			if (c->offsets[i] > c->offsets[i + 1] || c->offsets[i + 1] - c->offsets[i] > FP_TILE_MAX_JPEG)
				return FP_FAIL(FP_ERR_FORMAT, "%s: /tiles/offsets[%" PRIu64 "] out of order or too large", path, i);
		if (c->offsets[0] != 0 || c->offsets[c->n] != c->jpeg_size)
			return FP_FAIL(FP_ERR_FORMAT, "%s: /tiles/offsets do not span /tiles/jpeg", path);
	} else {
		c->pixels = H5Dopen2(c->file, "tiles/pixels", H5P_DEFAULT);
		if (c->pixels < 0) return FP_FAIL(FP_ERR_FORMAT, "%s: /tiles/pixels missing", path);
		hid_t sp = H5Dget_space(c->pixels);
		hsize_t d[4] = {0};
		int r = H5Sget_simple_extent_ndims(sp);
		H5Sget_simple_extent_dims(sp, d, NULL);
		H5Sclose(sp);
		if (r != 4 || d[0] != c->n || d[1] != c->tile || d[2] != c->tile || d[3] != 3)
			return FP_FAIL(FP_ERR_FORMAT, "%s: /tiles/pixels has the wrong shape", path);
	}
	return FP_OK;
}

enum fp_status fp_tile_cache_open(const char *path, struct fp_tile_cache **out)
{
	enum fp_status st;
	*out = NULL;
	struct fp_tile_cache *c = calloc(1, sizeof *c);
	if (!c) return FP_FAIL(FP_ERR_NOMEM, "tile cache handle");
	c->file = c->pixels = -1;
	c->fd = -1;
	c->path = strdup(path);
	if (!c->path) {
		free(c);
		return FP_FAIL(FP_ERR_NOMEM, "tile cache path");
	}
	pthread_mutex_lock(&h5_lock);
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	st = open_locked(path, c);
	pthread_mutex_unlock(&h5_lock);
	if (st != FP_OK) goto fail;
	if (c->enc == FP_TILE_JPEG) {
		c->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (c->fd < 0) {
			st = FP_FAIL(FP_ERR_IO, "%s: open: %s", path, strerror(errno));
			goto fail;
		}
	}
	*out = c;
	return FP_OK;
fail:
	fp_tile_cache_close(c);
	return st;
}

void fp_tile_cache_close(struct fp_tile_cache *c)
{
	if (!c) return;
	pthread_mutex_lock(&h5_lock);
	if (c->pixels >= 0) H5Dclose(c->pixels);
	if (c->file >= 0) H5Fclose(c->file);
	pthread_mutex_unlock(&h5_lock);
	if (c->fd >= 0) close(c->fd);
	free(c->offsets);
	free(c->coords);
	free(c->qc);
	free(c->path);
	free(c);
}

uint64_t fp_tile_cache_count(const struct fp_tile_cache *c) { return c->n; }
uint32_t fp_tile_cache_tile_size(const struct fp_tile_cache *c) { return c->tile; }
enum fp_tile_encoding fp_tile_cache_encoding(const struct fp_tile_cache *c) { return c->enc; }

enum fp_status fp_tile_cache_attr(const struct fp_tile_cache *c, const char *name, char *buf, size_t size)
{
	pthread_mutex_lock(&h5_lock);
	enum fp_status st = read_attr_str(c->file, name, buf, size);
	pthread_mutex_unlock(&h5_lock);
	return st;
}

enum fp_status fp_tile_cache_coords(const struct fp_tile_cache *c, uint64_t i, int32_t *x, int32_t *y)
{
	if (i >= c->n) return FP_FAIL(FP_ERR_INVALID_ARG, "%s: tile %" PRIu64 " of %" PRIu64, c->path, i, c->n);
	*x = c->coords[2 * i];
	*y = c->coords[2 * i + 1];
	return FP_OK;
}

enum fp_status fp_tile_cache_qc(const struct fp_tile_cache *c, uint64_t i, float *qc)
{
	if (i >= c->n) return FP_FAIL(FP_ERR_INVALID_ARG, "%s: tile %" PRIu64 " of %" PRIu64, c->path, i, c->n);
	memcpy(qc, c->qc + i * FP_TILE_QC_N, FP_TILE_QC_N * sizeof *qc);
	return FP_OK;
}

enum fp_status fp_tile_cache_read(struct fp_tile_cache *c, uint64_t i, uint8_t *out)
{
	if (i >= c->n) return FP_FAIL(FP_ERR_INVALID_ARG, "%s: tile %" PRIu64 " of %" PRIu64, c->path, i, c->n);
	if (c->enc == FP_TILE_RAW) {
		hsize_t T = c->tile, start[4] = {i, 0, 0, 0}, count[4] = {1, T, T, 3};
		pthread_mutex_lock(&h5_lock);
		hid_t fs = H5Dget_space(c->pixels);
		hid_t ms = H5Screate_simple(4, count, NULL);
		H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
		herr_t r = H5Dread(c->pixels, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, out);
		H5Sclose(ms);
		H5Sclose(fs);
		pthread_mutex_unlock(&h5_lock);
		if (r < 0) return FP_FAIL(FP_ERR_FORMAT, "%s: tile %" PRIu64 " unreadable", c->path, i);
		return FP_OK;
	}
	size_t len = (size_t)(c->offsets[i + 1] - c->offsets[i]);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) return FP_FAIL(FP_ERR_NOMEM, "JPEG tile of %zu bytes", len);
	uint64_t at = (uint64_t)c->jpeg_addr + c->offsets[i];
	size_t done = 0;
	while (done < len) {
		ssize_t r = pread(c->fd, buf + done, len - done, (off_t)(at + done));
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) {
			free(buf);
			return FP_FAIL(FP_ERR_IO, "%s: tile %" PRIu64 ": %s", c->path, i, r < 0 ? strerror(errno) : "file truncated");
		}
		done += (size_t)r;
	}
	enum fp_status st = fp_codec_jpeg_decode(NULL, 0, buf, len, 0, c->tile, c->tile, out);
	free(buf);
	if (st != FP_OK) return fp_error_wrap("%s: tile %" PRIu64, c->path, i);
	return FP_OK;
}

enum fp_status fp_tile_cache_matches(const char *path, const char *params_sha256, const char *quickhash, int *match)
{
	*match = 0;
	if (access(path, F_OK) != 0) return FP_OK;
	struct fp_tile_cache *c = NULL;
	if (fp_tile_cache_open(path, &c) != FP_OK) {
		fp_error_clear(); /* unreadable or incomplete: simply redone */
		return FP_OK;
	}
	char a[80], b[80];
	if (fp_tile_cache_attr(c, "params_sha256", a, sizeof a) == FP_OK &&
	    fp_tile_cache_attr(c, "source_quickhash", b, sizeof b) == FP_OK && strcmp(a, params_sha256) == 0 &&
	    strcmp(b, quickhash) == 0)
		*match = 1;
	fp_error_clear();
	fp_tile_cache_close(c);
	return FP_OK;
}

/* ---- training reader ---- */

struct fp_tile_reader {
	struct fp_tile_cache **c;
	size_t n;
	uint32_t tile;
	pthread_key_t scratch_key; /* per-thread uint8 tile for float conversion */
};

static void free_scratch(void *p) { free(p); }

enum fp_status fp_tile_reader_open(const char *const *paths, size_t n, struct fp_tile_reader **out)
{
	enum fp_status st = FP_OK;
	*out = NULL;
	if (n == 0) return FP_FAIL(FP_ERR_INVALID_ARG, "tile reader: no caches");
	struct fp_tile_reader *r = calloc(1, sizeof *r);
	if (!r) return FP_FAIL(FP_ERR_NOMEM, "tile reader");
	if (pthread_key_create(&r->scratch_key, free_scratch) != 0) {
		free(r);
		return FP_FAIL(FP_ERR_NOMEM, "tile reader thread key");
	}
	r->c = calloc(n, sizeof *r->c);
	if (!r->c) {
		st = FP_FAIL(FP_ERR_NOMEM, "tile reader");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		FP_CHECK(st, fp_tile_cache_open(paths[i], &r->c[i]));
		r->n = i + 1;
		uint32_t t = fp_tile_cache_tile_size(r->c[i]);
		if (i == 0) r->tile = t;
		else if (t != r->tile) {
			st = FP_FAIL(FP_ERR_DATA, "%s: tile size %u differs from %s (%u)", paths[i], t, paths[0], r->tile);
			goto fail;
		}
	}
	*out = r;
	return FP_OK;
fail:
	fp_tile_reader_destroy(r);
	return st;
}

void fp_tile_reader_destroy(struct fp_tile_reader *r)
{
	if (!r) return;
	for (size_t i = 0; i < r->n; i++) fp_tile_cache_close(r->c[i]);
	free(r->c);
	pthread_key_delete(r->scratch_key);
	free(r);
}

size_t fp_tile_reader_slides(const struct fp_tile_reader *r) { return r->n; }
uint64_t fp_tile_reader_tiles(const struct fp_tile_reader *r, uint32_t s) { return s < r->n ? fp_tile_cache_count(r->c[s]) : 0; }
uint32_t fp_tile_reader_tile_size(const struct fp_tile_reader *r) { return r->tile; }
size_t fp_tile_reader_tile_bytes(const struct fp_tile_reader *r, enum fp_tile_dtype dt)
{
	return (size_t)r->tile * r->tile * 3 * (dt == FP_TILE_F32_CHW ? sizeof(float) : 1);
}

enum fp_status fp_tile_reader_read(struct fp_tile_reader *r, uint32_t slide, uint64_t tile, enum fp_tile_dtype dt,
                                   void *out)
{
	if (slide >= r->n) return FP_FAIL(FP_ERR_INVALID_ARG, "tile reader: slide %u of %zu", slide, r->n);
	if (dt == FP_TILE_U8_HWC) return fp_tile_cache_read(r->c[slide], tile, out);
	size_t np = (size_t)r->tile * r->tile;
	uint8_t *tmp = pthread_getspecific(r->scratch_key);
	if (!tmp) {
		tmp = malloc(np * 3);
		if (!tmp || pthread_setspecific(r->scratch_key, tmp) != 0) {
			free(tmp);
			return FP_FAIL(FP_ERR_NOMEM, "tile reader scratch");
		}
	}
	FP_TRY(fp_tile_cache_read(r->c[slide], tile, tmp));
	float *f = out; /* out: (3, T, T) */
	for (size_t i = 0; i < np; i++)
		for (int c = 0; c < 3; c++) f[(size_t)c * np + i] = tmp[3 * i + (size_t)c] * (1.0f / 255.0f);
	return FP_OK;
}

enum fp_status fp_tile_reader_read_batch(struct fp_tile_reader *r, const struct fp_tile_ref *refs, size_t n,
                                         enum fp_tile_dtype dt, void *out)
{
	size_t tb = fp_tile_reader_tile_bytes(r, dt);
	for (size_t b = 0; b < n; b++)
		FP_TRY(fp_tile_reader_read(r, refs[b].slide, refs[b].tile, dt, (uint8_t *)out + b * tb));
	return FP_OK;
}

/* ---- prefetch ---- */

struct fp_tile_prefetch {
	struct fp_tile_reader *r;
	struct fp_tile_ref *refs;
	size_t n, batch, n_batches;
	enum fp_tile_dtype dt;
	uint8_t *buf[2];
	size_t count[2];
	int ready[2];
	enum fp_status status[2];
	struct fp_error err[2];
	size_t next_consume;
	int held; /* slot lent to the consumer, or -1 */
	int stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int started;
};

static void *prefetch_main(void *arg)
{
	struct fp_tile_prefetch *p = arg;
	for (size_t b = 0; b < p->n_batches; b++) {
		int slot = (int)(b % 2);
		pthread_mutex_lock(&p->mu);
		while ((p->ready[slot] || p->held == slot) && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
		int stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop) break;
		size_t first = b * p->batch, cnt = p->n - first < p->batch ? p->n - first : p->batch;
		enum fp_status st = fp_tile_reader_read_batch(p->r, p->refs + first, cnt, p->dt, p->buf[slot]);
		pthread_mutex_lock(&p->mu);
		p->count[slot] = cnt;
		p->status[slot] = st;
		if (st != FP_OK) p->err[slot] = *fp_error_last();
		p->ready[slot] = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

enum fp_status fp_tile_prefetch_create(struct fp_tile_reader *r, const struct fp_tile_ref *refs, size_t n,
                                       size_t batch, enum fp_tile_dtype dt, struct fp_tile_prefetch **out)
{
	enum fp_status st;
	*out = NULL;
	if (batch == 0) return FP_FAIL(FP_ERR_INVALID_ARG, "prefetch: batch size 0");
	struct fp_tile_prefetch *p = calloc(1, sizeof *p);
	if (!p) return FP_FAIL(FP_ERR_NOMEM, "prefetch");
	p->r = r;
	p->n = n;
	p->batch = batch;
	p->n_batches = (n + batch - 1) / batch;
	p->dt = dt;
	p->held = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *refs, (void **)&p->refs, "prefetch refs"));
	if (n) memcpy(p->refs, refs, n * sizeof *refs);
	for (int i = 0; i < 2; i++) FP_CHECK(st, fp_alloc_array(batch, fp_tile_reader_tile_bytes(r, dt), (void **)&p->buf[i], "prefetch batch"));
	if (pthread_create(&p->thread, NULL, prefetch_main, p) != 0) {
		st = FP_FAIL(FP_ERR_NOMEM, "prefetch: cannot start thread");
		goto fail;
	}
	p->started = 1;
	*out = p;
	return FP_OK;
fail:
	fp_tile_prefetch_destroy(p);
	return st;
}

enum fp_status fp_tile_prefetch_next(struct fp_tile_prefetch *p, const void **batch, size_t *count)
{
	*batch = NULL;
	*count = 0;
	pthread_mutex_lock(&p->mu);
	if (p->held >= 0) {
		p->ready[p->held] = 0;
		p->held = -1;
		pthread_cond_broadcast(&p->cv);
	}
	if (p->next_consume >= p->n_batches) {
		pthread_mutex_unlock(&p->mu);
		return FP_OK;
	}
	int slot = (int)(p->next_consume % 2);
	while (!p->ready[slot]) pthread_cond_wait(&p->cv, &p->mu);
	enum fp_status st = p->status[slot];
	if (st != FP_OK) {
		pthread_mutex_unlock(&p->mu);
		return FP_FAIL(st, "%s", p->err[slot].msg);
	}
	p->held = slot;
	p->next_consume++;
	*batch = p->buf[slot];
	*count = p->count[slot];
	pthread_mutex_unlock(&p->mu);
	return FP_OK;
}

void fp_tile_prefetch_destroy(struct fp_tile_prefetch *p)
{
	if (!p) return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->refs);
	free(p->buf[0]);
	free(p->buf[1]);
	free(p);
}
