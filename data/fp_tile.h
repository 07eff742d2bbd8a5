/*
 * fp_tile.h: slide -> tile cache (stage 2 of `fedpath tile`).
 *
 * Takes an opened slide (fp_slide.h) and parameters, produces one tile cache
 * (fp_tile_cache.h). Steps: tissue mask on a low-resolution level, tile grid
 * at the target mpp, tile pixels (copied, decoded or resampled), per-tile QC,
 * per-slide stain statistics, cache written and published.
 *
 * Facts (tests/unit/test_tile.c checks each):
 *  - every size parameter is in micrometres (or um^2), never in pixels, so two
 *    scans of one glass at 20x and 40x give the same mask and grid;
 *  - the source level is the lowest-resolution level whose mpp is at most
 *    target * 1.01 (never upsampled); tiles are resampled, with the area
 *    filter of fp_tile_resample_area(), only when that level's mpp differs
 *    from the target by more than 1%;
 *  - with JPEG output, no resampling and native tiles of exactly the tile
 *    size, the stored JPEG is the scanner's tile, bytes unchanged
 *    (fp_slide_read_jpeg_tile), unless copy_native is 0;
 *  - a tile that fails to decode is skipped and counted; the slide fails
 *    (FP_ERR_DATA) when bad tiles exceed max_bad_fraction of the candidates;
 *  - the same slide and parameters give a byte-identical cache.
 */
#ifndef FP_TILE_H
#define FP_TILE_H

#include <stddef.h>
#include <stdint.h>

#include "fp_slide.h"
#include "fp_status.h"
#include "fp_tile_cache.h"

struct fp_tile_params {
	char site_id[64];
	double target_mpp;         /* 0.5 um/px */
	uint32_t tile_size;        /* 256 px */
	double source_mpp;         /* 0: from the file; else overrides it */
	double mask_mpp;           /* 8 um/px: resolution of the tissue mask */
	double median_um;          /* 24: median filter window on saturation */
	double close_um;           /* 32: closing (dilate then erode) radius */
	double min_object_um2;     /* 20000 (0.02 mm^2): smaller tissue pieces dropped */
	double min_hole_um2;       /* 10000 (0.01 mm^2): smaller holes filled */
	double sat_floor;          /* 20 (of 255): Otsu threshold is at least this */
	double min_tissue;         /* 0.5: tissue fraction of a cell to keep it */
	double max_gray;           /* 0.6: tiles with more low-saturation pixels dropped */
	double max_bad_fraction;   /* 0.01: bad tiles tolerated per slide */
	enum fp_tile_encoding encoding; /* JPEG */
	int jpeg_quality;          /* 95: re-encoded tiles stay >= 40 dB PSNR (docs/TILE_CACHE.md) */
	int copy_native;           /* 1 */
};

void fp_tile_params_default(struct fp_tile_params *p);
/* Range checks; FP_ERR_INVALID_ARG naming the parameter. */
enum fp_status fp_tile_params_check(const struct fp_tile_params *p);
/* Canonical JSON of every parameter (sorted keys, 17-digit reals) and its
 * SHA-256: a cache is reused only when this hash matches. *json malloc'ed. */
enum fp_status fp_tile_params_json(const struct fp_tile_params *p, char **json, char hash_hex[65]);

struct fp_tile_result {
	char slide_uid[65];
	char quickhash[65];
	char out_path[4096];
	int skipped;               /* 1: an identical cache existed */
	uint64_t n_tiles, n_candidates, n_bad, n_missing, n_dropped_qc;
	int source_level;
	double source_mpp, mpp;
	int resampled, copied_native;
	double seconds;
};

/* Tiles one slide into out_dir/<slide_uid>.h5. */
enum fp_status fp_tile_slide(const char *slide_path, const char *out_dir, const struct fp_tile_params *p,
                             struct fp_tile_result *res);

/* ---- the steps, exposed for tests ---- */

/* Otsu's threshold of a 256-bin histogram: pixels > t are foreground. */
int fp_tile_otsu(const uint64_t hist[256]);

/* rgb: (h, w, 3) at `mpp` um/px -> mask: (h, w) 0/1. */
enum fp_status fp_tile_tissue_mask(const uint8_t *rgb, uint32_t w, uint32_t h, double mpp,
                                   const struct fp_tile_params *p, uint8_t *mask);

/* Area (box) filter with fractional pixel coverage, like OpenCV INTER_AREA:
 * output pixel (i, j) is the coverage-weighted mean of the input pixels under
 * the square [x0 + i*s, x0 + (i+1)*s) x [y0 + j*s, ...), s = scale.
 * in: (ih, iw, 3); out: (on, on, 3). Input coordinates are relative to `in`. */
void fp_tile_resample_area(const uint8_t *in, uint32_t iw, uint32_t ih, double x0, double y0,
                           double scale, uint8_t *out, uint32_t on);

/* The area filter at an integer factor k from an integer origin: output
 * pixel (i, j) is the mean of the k x k block at (ox + i*k, oy + j*k),
 * rounded half up ((sum + k*k/2) / k^2, the value fp_tile_resample_area
 * gives there); blocks reaching past the input repeat its last row/column.
 * in: (ih, iw, 3); out: (oh, ow, 3) inside rows of out_stride pixels, so a
 * native tile can be reduced straight into its part of an output tile. */
void fp_tile_box_reduce(const uint8_t *in, uint32_t iw, uint32_t ih, uint32_t ox, uint32_t oy, uint32_t k,
                        uint8_t *out, uint32_t ow, uint32_t oh, size_t out_stride);

/* qc[FP_TILE_QC_N] of rgb: (t, t, 3); qc[0] (tissue fraction) is left alone. */
void fp_tile_qc(const uint8_t *rgb, uint32_t t, float *qc);

/* Macenko statistics from OD samples accumulated tile by tile. */
struct fp_stain_acc;
enum fp_status fp_stain_acc_create(size_t max_samples, struct fp_stain_acc **out);
/* Samples every `stride`-th pixel of rgb: (n, 3). */
void fp_stain_acc_add(struct fp_stain_acc *a, const uint8_t *rgb, size_t n, size_t stride);
enum fp_status fp_stain_fit(struct fp_stain_acc *a, struct fp_stain_stats *out);
void fp_stain_acc_destroy(struct fp_stain_acc *a);

#endif
