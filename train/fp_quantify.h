/*
 * fp_quantify.h: per-slide tumour-microenvironment features from the tile
 * model (`fedpath quantify`).
 *
 * Takes per-tile class probabilities (n, FP_TME_N_CLASSES) and the tiles'
 * level-0 corners; produces the features of docs/TRAINING.md,
 * "TME features". Geometry, in micrometres on the tile grid:
 *  - tissue: tiles whose most probable class is not "other";
 *  - tumour region R: tiles classed tumour, necrosis or vascular invasion,
 *    plus lymphocyte or stroma tiles with at least 5 of their 8 neighbours in
 *    R (one pass), so that aggregates inside the tumour count as inside;
 *  - d(t): distance from tile t's centre to the nearest centre on the other
 *    side of R's border (tiles outside the tissue count as outside R);
 *  - inside tumour: tiles of R with d > margin_um;
 *  - invasive margin: tissue tiles with d <= margin_um on either side;
 *  - lymphocyte density of a region: mean p(lymphocytes) over its tiles;
 *  - phenotype: inflamed when density inside >= inflamed_min; else excluded
 *    when density at the margin >= excluded_min; else desert. A slide
 *    without an inside region (a tumour thinner than 2 margin_um) is judged
 *    on its margin alone;
 *  - necrosis_pct, stroma_pct: necrosis and stroma tiles as % of R;
 *  - vi_score: sum of p(vascular invasion) over tissue tiles (the expected
 *    number of tiles with tumour in a vessel), vi_tiles the count classed so.
 * Facts (tests/unit/test_train.c checks each): a tumour disc with lymphocytes
 * only in a ring at its border is "excluded", with lymphocytes throughout
 * "inflamed", without lymphocytes "desert"; fractions sum to 1 over tissue.
 */
#ifndef FP_QUANTIFY_H
#define FP_QUANTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "fp_model.h"
#include "fp_status.h"

struct fp_tme_options {
	double margin_um;     /* half-width of the invasive margin (default 200) */
	double inflamed_min;  /* density inside tumour for "inflamed" (default 0.02) */
	double excluded_min;  /* density at the margin for "excluded" (default 0.01) */
};
void fp_tme_options_default(struct fp_tme_options *o);

struct fp_tme_features {
	uint64_t n_tiles, tissue_tiles, tumour_tiles, inside_tiles, margin_tiles;
	double frac[FP_TME_N_CLASSES];  /* class share of tissue tiles (frac[OTHER] = 0) */
	double lymph_density_tumour;    /* NAN without inside or R tiles */
	double lymph_density_margin;    /* NAN without margin tiles */
	int phenotype;                  /* 0 inflamed, 1 excluded, 2 desert, -1 no tumour */
	double necrosis_pct, stroma_pct; /* NAN without tumour */
	double vi_score;
	uint64_t vi_tiles;
};
/* "inflamed", "excluded", "desert", "none". */
const char *fp_tme_phenotype_name(int p);

/* probs: (n, FP_TME_N_CLASSES); xy: (n, 2) level-0 corners; step_px: tile
 * footprint in level-0 pixels (tiles sit on a grid of this step); mpp:
 * level-0 micrometres per pixel. */
enum fp_status fp_tme_features(const float *probs, const int32_t *xy, size_t n, double step_px, double mpp,
                               const struct fp_tme_options *o, struct fp_tme_features *out);

/* One CSV header line and one row (no newline handling by the caller). */
void fp_tme_csv_header(char *buf, size_t size);
void fp_tme_csv_row(const char *slide_uid, const struct fp_tme_features *f, char *buf, size_t size);

/* Runs the model over every tile of the caches in `caches`, writes
 * /tme/probs (n, classes) and /features/tilenet (n, embed) into each cache
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
