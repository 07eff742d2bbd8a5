/*
 * fp_quantify.h: per-slide tumour-microenvironment features from the tile
 * model (`fedpath quantify`).
 *
 * Takes per-tile class probabilities (n, FP_TME_N_CLASSES), per-tile
 * lymphocyte counts (n; fp_lymph_count) and the tiles' level-0 corners;
 * produces the features of docs/TRAINING.md, "TME features". Geometry, in
 * micrometres on the tile grid:
 *  - tissue: tiles whose most probable class is not "other";
 *  - tumour region R: tiles classed tumour, necrosis or vascular invasion,
 *    plus lymphocyte or stroma tiles with at least 5 of their 8 neighbours in
 *    R (one pass), so that aggregates inside the tumour count as inside;
 *  - d(t): distance from tile t's centre to the nearest centre on the other
 *    side of R's border (tiles outside the tissue count as outside R);
 *  - inside tumour: tiles of R off its border (d > one tile step);
 *  - invasive margin: tissue tiles with d <= margin_um on either side;
 *  - lymphocyte density inside tumour: lymphocytes counted in the inside
 *    tiles of the tumour bed (not necrosis, not vascular invasion) per mm^2
 *    of those tiles; at the margin: lymphocytes per mm^2 of the margin's
 *    stroma and lymphocyte-dense tiles. Cells, not tile classes: most
 *    intratumoural lymphocytes are single cells between tumour cells, which
 *    never make a tile lymphocyte-dense;
 *  - lymph_frac_*: mean p(lymphocyte-dense) over inside / margin tiles
 *    (aggregates only);
 *  - phenotype: inflamed when density inside >= inflamed_min; else excluded
 *    when density at the margin >= excluded_min; else desert ("none"
 *    without tumour or without counts);
 *  - necrosis_pct, stroma_pct: necrosis and stroma tiles as % of R;
 *  - vi_score: sum of p(vascular invasion) over tissue tiles (the expected
 *    number of tiles with tumour in a vessel), vi_tiles the count classed so.
 * Facts (tests/unit/test_train.c checks each): a tumour disc with lymphocytes
 * only in the stroma ring at its border is "excluded", with lymphocytes
 * throughout "inflamed", without lymphocytes "desert"; fractions sum to 1
 * over tissue; the detector counts drawn lymphocytes and not larger nuclei.
 */
#ifndef FP_QUANTIFY_H
#define FP_QUANTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "fp_model.h"
#include "fp_status.h"

struct fp_tme_options {
	double margin_um;     /* half-width of the invasive margin (default 200) */
	double inflamed_min;  /* lymphocytes/mm^2 inside tumour for "inflamed" (default 3000) */
	double excluded_min;  /* lymphocytes/mm^2 of margin stroma for "excluded" (default 2000) */
};
void fp_tme_options_default(struct fp_tme_options *o);

struct fp_tme_features {
	uint64_t n_tiles, tissue_tiles, tumour_tiles, inside_tiles, margin_tiles;
	double frac[FP_TME_N_CLASSES];  /* class share of tissue tiles (frac[OTHER] = 0) */
	double lymph_density_tumour;    /* lymphocytes per mm^2 of tumour bed inside; NAN without */
	double lymph_density_margin;    /* lymphocytes per mm^2 of the margin; NAN without */
	double lymph_frac_tumour;       /* mean p(lymphocyte-dense) inside; NAN without inside tiles */
	double lymph_frac_margin;       /* mean p(lymphocyte-dense) at the margin; NAN without */
	int phenotype;                  /* 0 inflamed, 1 excluded, 2 desert, -1 no tumour */
	double necrosis_pct, stroma_pct; /* NAN without tumour */
	double vi_score;
	uint64_t vi_tiles;
};
/* "inflamed", "excluded", "desert", "none". */
const char *fp_tme_phenotype_name(int p);

/* probs: (n, FP_TME_N_CLASSES); lymph: (n) lymphocytes per tile, or NULL
 * (densities NA); xy: (n, 2) level-0 corners; step_px: tile
 * footprint in level-0 pixels (tiles sit on a grid of this step); mpp:
 * level-0 micrometres per pixel. */
enum fp_status fp_tme_features(const float *probs, const float *lymph, const int32_t *xy, size_t n, double step_px, double mpp,
                               const struct fp_tme_options *o, struct fp_tme_features *out);

/* One CSV header line and one row (no newline handling by the caller). */
void fp_tme_csv_header(char *buf, size_t size);
void fp_tme_csv_row(const char *slide_uid, const struct fp_tme_features *f, char *buf, size_t size);

/* Lymphocyte nuclei per tile (train/quantify_cells.c): haematoxylin by
 * colour deconvolution with the slide's Macenko fit, scaled by its 99th
 * percentile; mask above FP_LYMPH_H_MIN; nuclei = plateaus of local maxima
 * (+-FP_LYMPH_PEAK_UM) of the distance to the mask's edge; lymphocytes =
 * nuclei of radius FP_LYMPH_R_MIN_UM..FP_LYMPH_R_MAX_UM centred at least
 * FP_LYMPH_BORDER_UM inside the tile. Tuned on 1 um/px tiles. */
#define FP_LYMPH_H_MIN 0.5
#define FP_LYMPH_R_MIN_UM 1.5
#define FP_LYMPH_R_MAX_UM 3.5
#define FP_LYMPH_PEAK_UM 2.0
#define FP_LYMPH_BORDER_UM 3.0
#define FP_LYMPH_MAX_UM_PER_PX 1.0
struct fp_lymph_detector {
	double h_row[3];    /* optical density -> H concentration / its 99th percentile */
	float od[256];      /* -ln((v + 1) / 256) */
	double um_per_px;
};
/* he: (3, 2) row-major, columns the H and E unit vectors; max_h: the H
 * concentration's 99th percentile; um_per_px of the tiles (at most
 * FP_LYMPH_MAX_UM_PER_PX). FP_ERR_DATA for a degenerate fit. */
enum fp_status fp_lymph_detector_init(struct fp_lymph_detector *d, const float he[6], double max_h, double um_per_px);
/* Bytes of scratch fp_lymph_count needs for a t x t tile. */
size_t fp_lymph_scratch_bytes(int t);
/* rgb: (t, t, 3); returns the number of lymphocyte nuclei centred in it. */
int fp_lymph_count(const struct fp_lymph_detector *d, const uint8_t *rgb, int t, void *scratch);

/* Runs the model over every tile of the caches in `caches`, writes
 * /tme/probs (n, classes), /tme/lymphocytes (n, 1) and /features/tilenet
 * (n, embed) into each cache
 * and one features.csv row per slide to `csv_path` (atomically). */
struct fp_quantify_options {
	int batch;
	int threads;
	int cuda;
	struct fp_tme_options tme;
};
enum fp_status fp_quantify_run(const char *checkpoint, const char *caches, const char *csv_path,
                               const struct fp_quantify_options *o);

#endif
