/*
 * fp_tile_cache.h: the per-slide HDF5 tile cache (format: docs/TILE_CACHE.md),
 * its writer (used by `fedpath tile`) and its readers (used by training).
 *
 * Invariants (tests/unit/test_tile_cache.c checks each):
 *  - a cache is written to "<final>.partial" and published (fsync, rename,
 *   fsync folder) only by fp_tile_cache_writer_finish(); an aborted or killed
 *   writer leaves no file named <final>;
 *  - the same calls with the same data produce byte-identical files (HDF5
 *   object times are off; no wall-clock value is stored);
 *  - readers refuse a schema_version above FP_TILE_CACHE_SCHEMA
 *   (FP_ERR_VERSION) and a file whose status attribute is not "complete";
 *  - tile i decodes to exactly what the writer was given for raw caches and
 *   to the stored JPEG's decoding for JPEG caches.
 * HDF5 error printing is turned off process-wide by the first create/open
 * (errors are reported through fp_status instead).
 */
#ifndef FP_TILE_CACHE_H
#define FP_TILE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "fp_status.h"

#define FP_TILE_CACHE_SCHEMA 1
#define FP_TILE_QC_N 6 /* tissue, white, gray, blur (Laplacian variance), pen, mean OD */
#define FP_TILE_MAX_TILES (1u << 24)

enum fp_tile_encoding { FP_TILE_JPEG = 0, FP_TILE_RAW = 1 };

/* Per-slide stain statistics (Macenko 2009 on optical density, I0 = 255). */
struct fp_stain_stats {
	int valid;                 /* 0 when too little tissue to fit */
	uint64_t n_pixels;         /* OD samples used */
	float he[3][2];            /* columns: H and E unit vectors in OD space (R,G,B rows) */
	float max_c[2];            /* 99th percentile of H and E concentrations */
	float od_pct[7][3];        /* OD percentiles 1,5,25,50,75,95,99 per channel */
};

/* Everything the root attributes and the CLAM /coords attributes hold. */
struct fp_tile_cache_meta {
	char site_id[64];
	char slide_uid[65];
	char source_quickhash[65];
	uint64_t source_size;
	char vendor[16];
	double mpp;                /* level 0 */
	char mpp_source[24];
	double objective_power;
	uint32_t level0_w, level0_h;
	int n_levels;
	double levels[16][5];      /* w, h, tile_w, tile_h, downsample */
	int source_level;
	double source_level_mpp;
	uint32_t source_level_w, source_level_h;
	double footprint;          /* tile footprint in source-level pixels */
	int resampled;
	double target_mpp;
	uint32_t tile_size;
	enum fp_tile_encoding encoding;
	int jpeg_quality;
	int copied_native;         /* 1: tiles are the scanner's JPEG bytes */
	char params_sha256[65];
	const char *params_json;   /* borrowed until finish */
};

struct fp_tile_cache_writer; /* opaque */

/* Creates "<path>.partial" (replacing a stale one). */
enum fp_status fp_tile_cache_writer_create(const char *path, const struct fp_tile_cache_meta *meta,
                                           struct fp_tile_cache_writer **out);
/* Adds one tile: level-0 top-left (x, y), qc[FP_TILE_QC_N], and either
 * the JPEG stream (jpeg, len) for JPEG caches or rgb: (T, T, 3) for raw caches. */
enum fp_status fp_tile_cache_writer_add(struct fp_tile_cache_writer *w, int32_t x, int32_t y,
                                        const float *qc, const uint8_t *jpeg, size_t len,
                                        const uint8_t *rgb);
/* mask: (mh, mw) 0/1, at mask_mpp um per pixel. Copied. */
enum fp_status fp_tile_cache_writer_set_mask(struct fp_tile_cache_writer *w, const uint8_t *mask,
                                             uint32_t mw, uint32_t mh, double mask_mpp);
void fp_tile_cache_writer_set_stain(struct fp_tile_cache_writer *w, const struct fp_stain_stats *st);
/* Bad and missing tile counts recorded in the attributes. */
void fp_tile_cache_writer_set_counts(struct fp_tile_cache_writer *w, uint64_t bad, uint64_t missing,
                                     uint64_t dropped_qc);
/* Writes everything, closes and publishes to `path`. */
enum fp_status fp_tile_cache_writer_finish(struct fp_tile_cache_writer *w);
/* NULL-safe; removes the .partial file unless finished. */
void fp_tile_cache_writer_destroy(struct fp_tile_cache_writer *w);
uint64_t fp_tile_cache_writer_count(const struct fp_tile_cache_writer *w);

/* ---- reading one cache ---- */

struct fp_tile_cache; /* opaque; one open file */

enum fp_status fp_tile_cache_open(const char *path, struct fp_tile_cache **out);
void fp_tile_cache_close(struct fp_tile_cache *c);
uint64_t fp_tile_cache_count(const struct fp_tile_cache *c);
uint32_t fp_tile_cache_tile_size(const struct fp_tile_cache *c);
enum fp_tile_encoding fp_tile_cache_encoding(const struct fp_tile_cache *c);
/* String attribute of the root group ("params_sha256", "source_quickhash",
 * "slide_uid", "status"...) into buf. FP_ERR_NOT_FOUND when absent. */
enum fp_status fp_tile_cache_attr(const struct fp_tile_cache *c, const char *name, char *buf, size_t size);
/* Level-0 top-left corner of tile i. */
enum fp_status fp_tile_cache_coords(const struct fp_tile_cache *c, uint64_t i, int32_t *x, int32_t *y);
/* qc: FP_TILE_QC_N floats. */
enum fp_status fp_tile_cache_qc(const struct fp_tile_cache *c, uint64_t i, float *qc);
/* out: (T, T, 3) uint8. Safe to call from several threads at once on the same
 * handle (JPEG bytes are read with pread, HDF5 calls are serialised). */
enum fp_status fp_tile_cache_read(struct fp_tile_cache *c, uint64_t i, uint8_t *out);

/* Quick check for resumability: FP_OK and *match = 1 when `path` is a
 * complete cache with these params and source hashes. */
enum fp_status fp_tile_cache_matches(const char *path, const char *params_sha256,
                                     const char *quickhash, int *match);

/* ---- the training reader: many caches, random access, batches, prefetch ---- */

struct fp_tile_reader; /* opaque */

enum fp_tile_dtype {
	FP_TILE_U8_HWC = 0,  /* uint8 (T, T, 3) per tile */
	FP_TILE_F32_CHW = 1  /* float (3, T, T) per tile, value / 255 */
};

struct fp_tile_ref {
	uint32_t slide;
	uint64_t tile;
};

/* Opens every cache (all must share one tile size). Owned by the caller.
 * Thread-safety: fp_tile_reader_read/read_batch may be called from several
 * threads at once; open/destroy must not race with anything. */
enum fp_status fp_tile_reader_open(const char *const *paths, size_t n, struct fp_tile_reader **out);
void fp_tile_reader_destroy(struct fp_tile_reader *r);
size_t fp_tile_reader_slides(const struct fp_tile_reader *r);
uint64_t fp_tile_reader_tiles(const struct fp_tile_reader *r, uint32_t slide);
uint32_t fp_tile_reader_tile_size(const struct fp_tile_reader *r);
size_t fp_tile_reader_tile_bytes(const struct fp_tile_reader *r, enum fp_tile_dtype dt);
/* out: one tile in dtype `dt`. */
enum fp_status fp_tile_reader_read(struct fp_tile_reader *r, uint32_t slide, uint64_t tile,
                                   enum fp_tile_dtype dt, void *out);
/* out: (B, ...) with B = n; tile b = refs[b]. */
enum fp_status fp_tile_reader_read_batch(struct fp_tile_reader *r, const struct fp_tile_ref *refs,
                                         size_t n, enum fp_tile_dtype dt, void *out);

/* A background thread decoding the next batch while the caller uses the
 * current one (double buffering). refs is copied. One consumer thread. */
struct fp_tile_prefetch; /* opaque */
enum fp_status fp_tile_prefetch_create(struct fp_tile_reader *r, const struct fp_tile_ref *refs,
                                       size_t n, size_t batch, enum fp_tile_dtype dt,
                                       struct fp_tile_prefetch **out);
/* *batch: borrowed (B, ...) buffer valid until the next call; *count 0 at the end. */
enum fp_status fp_tile_prefetch_next(struct fp_tile_prefetch *p, const void **batch, size_t *count);
void fp_tile_prefetch_destroy(struct fp_tile_prefetch *p);

#endif
