/*
 * synth_internal.h: what the synth_*.c files share (not a public interface).
 *
 * synth_rng.c      counter-based random numbers keyed by (seed, centre, patient, purpose)
 * synth_cohort.c   clinical covariates, TME, regimen assignment, outcomes, CSV writers
 * synth_tissue.c   the class map of a slide and the per-band H&E density renderer
 * synth_tiff.c     the pyramidal TIFF writer (bands in, JPEG tiles out)
 * synth.c          the run: staging folder, threads, cohort.json, publishing
 */
#ifndef FP_SYNTH_INTERNAL_H
#define FP_SYNTH_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "fp_synth.h"

/* ---- random numbers (synth_rng.c) ---- */

/* Purposes: each keys an independent stream; values are part of the output format. */
enum synth_purpose {
	SYNTH_P_CENTRE = 1, SYNTH_P_CLINICAL = 2, SYNTH_P_TME = 3, SYNTH_P_ASSIGN = 4,
	SYNTH_P_OUTCOME = 5, SYNTH_P_MISSING = 6, SYNTH_P_LABEL = 7, SYNTH_P_LAYOUT = 8,
	SYNTH_P_PIXELS = 9
};

struct synth_rng {
	uint64_t key, ctr;
};
uint64_t synth_mix64(uint64_t x);
uint64_t synth_key(uint64_t seed, uint32_t centre, uint32_t patient, uint32_t purpose);
void synth_rng_init(struct synth_rng *r, uint64_t key);
uint64_t synth_rng_u64(struct synth_rng *r);
double synth_rng_unif(struct synth_rng *r);          /* (0, 1) */
double synth_rng_normal(struct synth_rng *r);        /* N(0, 1) */
double synth_rng_exp(struct synth_rng *r);           /* Exp(1) */
int synth_rng_bernoulli(struct synth_rng *r, double p);
/* Hash of a key and two lattice coordinates: the random value of a grid cell,
 * independent of the order cells are visited in (bands give the same pixels). */
static inline uint64_t synth_hash2(uint64_t key, int64_t a, int64_t b)
{
	return synth_mix64(key ^ synth_mix64((uint64_t)a * 0x9E3779B97F4A7C15ull + (uint64_t)b * 0xC2B2AE3D27D4EB4Full));
}
static inline double synth_u01(uint64_t h) { return ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* ---- scanner profiles (synth_cohort.c) ---- */

struct synth_scanner {
	char name[32];
	double mpp;                  /* 0.25 or 0.5 */
	int app_mag;                 /* 40 or 20 */
	double stain_h[3], stain_e[3]; /* optical-density unit vectors (R, G, B) */
	double h_gain, e_gain;       /* stain intensity of the centre's lab */
	double white[3];             /* white level (glass), 0..255 */
	double blur;                 /* 0..0.5: share of each neighbour in a 3-tap kernel */
	int jpeg_quality;
};
void synth_scanner_for_centre(uint64_t seed, int centre, struct synth_scanner *out);

/* ---- slide geometry and tissue (synth_tissue.c) ---- */

struct synth_slide_geom {
	uint32_t width, height;      /* level 0 */
	double mpp;
	uint32_t map_w, map_h;       /* class map, FP_SYNTH_MAP_UM per pixel */
};
void synth_slide_geom(enum fp_synth_size size, double mpp, struct synth_slide_geom *g);

struct synth_tissue; /* opaque: one slide's layout, class map and textures */
enum fp_status synth_tissue_create(uint64_t seed, const struct fp_synth_patient *pt,
                                   const struct synth_scanner *sc,
                                   const struct synth_slide_geom *g, struct synth_tissue **out);
void synth_tissue_destroy(struct synth_tissue *t);
/* Borrowed: (map_h, map_w) uint8 class codes. */
const uint8_t *synth_tissue_map(const struct synth_tissue *t);
/* Renders level-0 rows [y0, y0 + rows) of the slide.
 * out: (rows, width, 3) uint8 RGB. rows <= FP_SYNTH_TILE. */
enum fp_status synth_tissue_render(struct synth_tissue *t, uint32_t y0, uint32_t rows, uint8_t *out);
/* The class's nominal colour under the scanner (Beer-Lambert of its mean densities). */
void synth_class_rgb(const struct synth_scanner *sc, int cls, uint8_t rgb[3]);

/* ---- labels (synth_tissue.c) ---- */
/* out: (h, w, 3) white label with `text` lines in a block font and a fake barcode. */
void synth_label_draw(uint8_t *out, int w, int h, const char *line1, const char *line2, uint64_t key);

/* ---- pyramidal TIFF writer (synth_tiff.c) ---- */

struct synth_tiff_meta {
	enum fp_synth_format format;
	const struct synth_scanner *scanner;
	const char *fake_name;       /* goes on the label and, Aperio-style, in Filename */
	const char *patient_id;
	uint64_t key;                /* for the label's barcode */
};
/* Renders the slide band by band through `t` and writes `path`.
 * *bytes gets the file size. */
enum fp_status synth_tiff_write(const char *path, struct synth_tissue *t,
                                const struct synth_slide_geom *g,
                                const struct synth_tiff_meta *meta, uint64_t *bytes);

/* ---- CSV writers (synth_cohort.c) ---- */
enum fp_status synth_write_clinical_csv(FILE *f, const struct fp_synth_patient *pts, size_t n);
enum fp_status synth_write_truth_csv(FILE *f, const struct fp_synth_patient *pts, size_t n);

/* Outcome-model constants shared by the cohort draw and cohort.json. */
struct synth_coef {
	const char *name;
	double value;
};
extern const struct synth_coef synth_outcome_coefs[];
extern const size_t synth_outcome_n_coefs;
extern const char synth_outcome_formula[];

#endif
