/*
 * fp_slide.h: whole-slide image readers (stage 1 of `fedpath tile`).
 *
 * Takes a slide file (Aperio SVS, generic pyramidal tiled TIFF, OME-TIFF with
 * SubIFD pyramids; classic TIFF or BigTIFF) and gives its pyramid levels, its
 * microns per pixel, and decoded RGB tiles and regions of any level.
 *
 * Invariants (tests/unit/test_tile_slide.c checks each):
 *  - nothing reaches libtiff before fp_tiff_preparse() accepted the file's
 *    structure (IFD count and loops, tag counts, offsets inside the file,
 *    dimensions, tile sizes; limits in FP_TIFF_* below);
 *  - levels are sorted from the largest (level 0) to the smallest; label,
 *    macro and thumbnail images are never levels and are never read;
 *  - mpp comes from, in order: the caller's override, the Aperio description
 *    (MPP = ...), OME-XML PhysicalSizeX, the TIFF resolution tags; each is
 *    accepted only inside [FP_SLIDE_MPP_MIN, FP_SLIDE_MPP_MAX]; without one
 *    fp_slide_open() refuses the slide (FP_ERR_DATA) unless the caller allows
 *    an unknown mpp;
 *  - JPEG tiles are decoded with the level's JPEGTables first; photometric
 *    RGB JPEG is decoded as RGB (no colour conversion); JPEG 2000 33003 is
 *    YCbCr converted here, 33005 comes out of OpenJPEG as RGB;
 *  - a tile with zero bytes is "missing" (white, flagged), not an error;
 *  - edge tiles are clipped: pixels past the level's edge are never returned
 *    (regions past the edge are filled with white, 255);
 *  - a tile that fails to decode is FP_ERR_FORMAT naming level, column, row.
 * Ownership: fp_slide_open() returns a handle owned by the caller
 * (fp_slide_destroy, NULL-safe). A handle is NOT thread-safe (libtiff keeps
 * per-handle state): use one handle per thread.
 */
#ifndef FP_SLIDE_H
#define FP_SLIDE_H

#include <stddef.h>
#include <stdint.h>

#include "fp_status.h"

/* Structural limits of the pre-parser (documented in docs/TILE_CACHE.md). */
#define FP_TIFF_MAX_IFDS 64          /* main chain + SubIFDs together */
#define FP_TIFF_MAX_TAGS 1024        /* entries in one IFD */
#define FP_TIFF_MAX_DIM 1000000u     /* width or height of any image */
#define FP_TIFF_MAX_TILE 4096u       /* tile width or height */
#define FP_TIFF_MAX_TILES (1u << 24) /* tiles in one IFD */
#define FP_TIFF_MAX_TAG_BYTES (64u << 20) /* value bytes of one tag */

#define FP_SLIDE_MPP_MIN 0.1
#define FP_SLIDE_MPP_MAX 2.0
#define FP_SLIDE_MAX_LEVELS 16

/* What the pre-parser learnt about one image file directory. */
struct fp_tiff_ifd_info {
	uint64_t offset;
	uint32_t width, height;
	uint32_t tile_w, tile_h;     /* 0 when stripped */
	uint32_t subfile_type;       /* NewSubfileType */
	uint16_t compression, photometric, samples, bits;
	uint16_t planar;
	int is_subifd;               /* 1: reached through tag 330 */
	int parent;                  /* index of the IFD holding the SubIFD tag, or -1 */
	int main_index;              /* position in the main chain (for TIFFSetDirectory), -1 for SubIFDs */
	int sub_index;               /* position in the parent's SubIFD list, -1 otherwise */
	uint64_t n_tiles;
};

struct fp_tiff_info {
	int bigtiff;
	int big_endian;
	uint64_t file_size;
	int n_ifds;
	struct fp_tiff_ifd_info ifd[FP_TIFF_MAX_IFDS];
};

/* Checks the structure of a TIFF held in memory. FP_ERR_FORMAT (or
 * FP_ERR_LIMIT) naming the IFD, tag and value at fault. `name` is for messages. */
enum fp_status fp_tiff_preparse_mem(const uint8_t *data, size_t len, const char *name,
                                    struct fp_tiff_info *out);
/* Same, reading the file with pread (never mmap), at most a few MiB of it. */
enum fp_status fp_tiff_preparse_file(const char *path, struct fp_tiff_info *out);

struct fp_slide; /* opaque */

enum fp_slide_vendor { FP_SLIDE_GENERIC = 0, FP_SLIDE_APERIO = 1, FP_SLIDE_OME = 2 };

struct fp_slide_level {
	uint32_t width, height;      /* pixels */
	uint32_t tile_w, tile_h;     /* native tile size */
	uint32_t tiles_x, tiles_y;
	double downsample;           /* level-0 width / this width */
	double mpp;                  /* microns per pixel (x); 0 when unknown */
	uint16_t compression;        /* TIFF compression code (1, 5, 7, 8, 33003, 33005, ...) */
	uint16_t photometric;        /* TIFF photometric (2 RGB, 6 YCbCr) */
};

struct fp_slide_options {
	double source_mpp;           /* > 0: overrides the file's mpp (site-verified) */
	int allow_unknown_mpp;       /* 1: open without mpp (inspection only; tiling refuses) */
	size_t max_alloc;            /* libtiff single-allocation cap; 0: 256 MiB */
};

/* Opens and classifies a slide. FP_ERR_FORMAT for malformed files,
 * FP_ERR_UNSUPPORTED for valid TIFFs this reader cannot tile (stripped only,
 * old-style JPEG, non-8-bit), FP_ERR_DATA for a slide without trustworthy mpp. */
enum fp_status fp_slide_open(const char *path, const struct fp_slide_options *opt,
                             struct fp_slide **out);
void fp_slide_destroy(struct fp_slide *s);

int fp_slide_level_count(const struct fp_slide *s);
/* Borrowed; level in [0, count). */
const struct fp_slide_level *fp_slide_level(const struct fp_slide *s, int level);
enum fp_slide_vendor fp_slide_vendor(const struct fp_slide *s);
const char *fp_slide_vendor_name(const struct fp_slide *s);   /* "aperio", "ome", "generic" */
double fp_slide_mpp(const struct fp_slide *s);                /* level 0 */
const char *fp_slide_mpp_source(const struct fp_slide *s);    /* "override", "aperio", "ome", "tiff-resolution", "none" */
double fp_slide_objective_power(const struct fp_slide *s);    /* 0 when unknown */
uint64_t fp_slide_file_size(const struct fp_slide *s);
/* Tiles that decoded with an error or were missing since open. */
uint64_t fp_slide_bad_tiles(const struct fp_slide *s);
uint64_t fp_slide_missing_tiles(const struct fp_slide *s);

/* Decodes native tile (tx, ty) of `level`.
 * out: (tile_h, tile_w, 3) uint8 RGB; pixels past the level's edge are 255.
 * *missing is set to 1 for a zero-length tile (out all 255). */
enum fp_status fp_slide_read_tile(struct fp_slide *s, int level, uint32_t tx, uint32_t ty,
                                  uint8_t *out, int *missing);

/* Reads a region of `level` (level coordinates, may extend past the edges,
 * which read as 255) through a small cache of decoded tiles
 * (FP_SLIDE_CACHE_BYTES). out: (h, w, 3) uint8. A tile that fails to decode
 * makes the call fail; *missing counts zero-length tiles touched. */
#define FP_SLIDE_CACHE_BYTES (48u << 20)
enum fp_status fp_slide_read_region(struct fp_slide *s, int level, int64_t x, int64_t y,
                                    uint32_t w, uint32_t h, uint8_t *out, int *missing);

/* For a JPEG level: the native tile as one standalone JPEG stream
 * (JPEGTables merged, and an Adobe marker saying "no transform" added for
 * photometric RGB so every decoder reads the colours right). The entropy-coded
 * data are the scanner's bytes, unchanged. *out is malloc'ed (free()).
 * FP_ERR_UNSUPPORTED when the level is not JPEG; *len 0 for a missing tile. */
enum fp_status fp_slide_read_jpeg_tile(struct fp_slide *s, int level, uint32_t tx, uint32_t ty,
                                       uint8_t **out, size_t *len);

/* SHA-256 of the file size, the level geometry and the raw bytes of the
 * smallest level (after OpenSlide's quickhash idea): cheap on huge files,
 * changes whenever the pixels or the pyramid do. hex: 65 bytes. */
enum fp_status fp_slide_quickhash(struct fp_slide *s, char hex[65]);

#endif
