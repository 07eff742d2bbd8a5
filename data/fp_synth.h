/*
 * fp_synth.h: the phantom multicentre HCC cohort generator (`fedpath synth`).
 *
 * Takes a few parameters (centres, patients per centre, seed, size preset,
 * slide format) and produces a study whose truth is known (docs/SYNTH.md):
 *   DIR/<centre>/slides/<patient>.svs     pyramidal tiled JPEG TIFF (Aperio or generic)
 *   DIR/<centre>/clinical.csv             docs/CLINICAL_SCHEMA.md, version 1
 *   DIR/truth/patients.csv                per-patient truth (evaluation only)
 *   DIR/truth/slides.csv                  per-slide geometry and class fractions
 *   DIR/truth/classmaps/<slide>.classmap  low-resolution class map (framed file)
 *   DIR/cohort.json                       parameters, scanner profiles, outcome model;
 *                                         written last: its presence means "complete"
 *
 * Invariants (tests/unit/test_synth.c checks each):
 *  - the same parameters and fedpath version give byte-identical files, whatever
 *    the number of threads (every random draw comes from a counter-based
 *    generator keyed by seed, centre, patient and purpose; no rand());
 *  - memory is bounded by the slide width, not its area: slides are rendered in
 *    bands of FP_SYNTH_TILE rows; only the compressed tiles of the reduced
 *    levels (about 1/15 of the file) are held until the end;
 *  - everything is written under DIR/.synth-partial-<pid>/ and moved into DIR
 *    only when all of it succeeded, cohort.json last; on failure the staging
 *    folder is removed, so nothing that looks complete is left behind;
 *  - fp_synth_draw_cohort() returns exactly the patients, covariates and
 *    outcomes that fp_synth_generate() writes (it renders no pixels).
 */
#ifndef FP_SYNTH_H
#define FP_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "fp_status.h"

#define FP_SYNTH_VERSION 1          /* bump when any output byte changes meaning */
#define FP_SYNTH_TILE 256           /* tile edge of every pyramid level */
#define FP_SYNTH_MAX_CENTRES 99
#define FP_SYNTH_MAX_PATIENTS 9999  /* per centre */
#define FP_SYNTH_MAP_UM 16.0        /* class-map pixel edge, micrometres */
#define FP_SYNTH_CLASSMAP_MAGIC "FPCLSMAP"

enum fp_synth_size { FP_SYNTH_TINY = 0, FP_SYNTH_DEMO = 1, FP_SYNTH_FULL = 2 };
enum fp_synth_format { FP_SYNTH_SVS = 0, FP_SYNTH_TIFF = 1 };

/* Tissue classes of the class maps (values are part of the classmap format). */
enum fp_synth_class {
	FP_SYNTH_BACKGROUND = 0,
	FP_SYNTH_TUMOUR = 1,
	FP_SYNTH_LIVER = 2,      /* non-tumour liver */
	FP_SYNTH_STROMA = 3,
	FP_SYNTH_LYMPHOCYTES = 4,
	FP_SYNTH_NECROSIS = 5,
	FP_SYNTH_VESSEL = 6,     /* lumen with red cells */
	FP_SYNTH_THROMBUS = 7,   /* vessel lumen filled by tumour (vascular invasion) */
	FP_SYNTH_N_CLASSES = 8
};
enum fp_synth_regimen { FP_SYNTH_SURGERY = 0, FP_SYNTH_TACE = 1, FP_SYNTH_TACE_TKI = 2, FP_SYNTH_N_REGIMENS = 3 };
enum fp_synth_phenotype { FP_SYNTH_INFLAMED = 0, FP_SYNTH_EXCLUDED = 1, FP_SYNTH_DESERT = 2 };

struct fp_synth_params {
	int centres;                 /* 1..FP_SYNTH_MAX_CENTRES; 0 = the size's default */
	int patients;                /* per centre, 1..FP_SYNTH_MAX_PATIENTS; 0 = the size's default */
	uint64_t seed;
	enum fp_synth_size size;
	enum fp_synth_format format;
	double missing_rate;         /* per optional clinical cell, [0, 0.5]; AFP gets twice this */
	int threads;                 /* slides rendered at once; 0 = online CPUs (at most 16) */
	int force;                   /* 1: replace our entries in a non-empty DIR */
	int quiet;                   /* 1: no progress display */
};

/* Defaults: size demo, format svs, seed 1, missing 0.03, threads 0. Centres
 * and patients 0 (the size decides: tiny 2 x 6, demo 8 x 40, full 8 x 100). */
void fp_synth_params_default(struct fp_synth_params *p);
/* "tiny", "demo", "full" / "svs", "tiff"; FP_ERR_INVALID_ARG naming the value. */
enum fp_status fp_synth_size_parse(const char *s, enum fp_synth_size *out);
enum fp_status fp_synth_format_parse(const char *s, enum fp_synth_format *out);
const char *fp_synth_size_name(enum fp_synth_size s);
/* Range checks every field (after defaults are applied); FP_ERR_INVALID_ARG. */
enum fp_status fp_synth_params_check(const struct fp_synth_params *p);

/* One patient: what clinical.csv shows (before missing values are applied)
 * and the truth behind it. */
struct fp_synth_patient {
	char patient_id[32];         /* "H01-P0001" */
	char centre[16];             /* "H01" */
	char slide_file[48];         /* "H01-P0001.svs" */
	char label_name[48];         /* fake name on the slide label: never a real person */
	int centre_index, patient_index;
	/* clinical */
	double age;
	char sex;                    /* 'M' or 'F' */
	int tnm_stage;               /* 0 IA, 1 IB, 2 II, 3 IIIA, 4 IIIB */
	int child_pugh_b;
	double afp_ng_ml, tumour_size_cm;
	int multifocal, major_vessel_invasion, mvi, edmondson_grade;
	enum fp_synth_regimen regimen;
	double rfs_months, os_months;
	int rfs_event, os_event;
	int orr;                     /* 0/1, -1 not defined */
	unsigned missing;            /* bit per optional column left empty in clinical.csv (FP_SYNTH_MISS_*) */
	/* tumour microenvironment (drives both the slide and the outcome) */
	enum fp_synth_phenotype phenotype;
	double til_intra;            /* lymphocyte density inside tumour, 0..1 */
	double til_margin;           /* lymphocyte density at the invasive margin and in stroma, 0..1 */
	double stroma_frac;          /* stroma share of the tumour region, 0..0.5 */
	double necrosis_frac;        /* necrotic share of the tumour, 0..0.6 */
	double tumour_frac;          /* tumour share of the tissue section, 0..1 */
	int thrombi;                 /* vessels with tumour thrombus drawn on the slide */
	/* outcome model truth */
	double eta_prognostic;       /* risk part that does not depend on the regimen */
	double lp[FP_SYNTH_N_REGIMENS]; /* RFS log-hazard under each regimen */
	double propensity[FP_SYNTH_N_REGIMENS];
	enum fp_synth_regimen best;  /* argmin of lp */
};
#define FP_SYNTH_MISS_AGE (1u << 0)
#define FP_SYNTH_MISS_SEX (1u << 1)
#define FP_SYNTH_MISS_STAGE (1u << 2)
#define FP_SYNTH_MISS_CHILD_PUGH (1u << 3)
#define FP_SYNTH_MISS_AFP (1u << 4)
#define FP_SYNTH_MISS_SIZE (1u << 5)
#define FP_SYNTH_MISS_MVI (1u << 6)
#define FP_SYNTH_MISS_GRADE (1u << 7)

const char *fp_synth_regimen_name(enum fp_synth_regimen r);   /* "surgery", "tace", "tace_tki" */
const char *fp_synth_phenotype_name(enum fp_synth_phenotype p); /* "inflamed", ... */
const char *fp_synth_stage_name(int tnm_stage);               /* "IA" ... "IIIB" */
const char *fp_synth_class_name(enum fp_synth_class c);

/* Draws the whole cohort's clinical table, TME and outcomes (no pixels).
 * *out: centres x patients records in centre-major order, owned by the
 * caller (free()). `p` must pass fp_synth_params_check after defaults. */
enum fp_status fp_synth_draw_cohort(const struct fp_synth_params *p,
                                    struct fp_synth_patient **out, size_t *n);

/* What a run produced. */
struct fp_synth_report {
	uint64_t slides;
	uint64_t slide_bytes;        /* bytes of all slide files */
	uint64_t pixels;             /* level-0 pixels rendered */
	double seconds;              /* wall time of the whole run */
};

/* Writes the cohort into `out_dir` (created when absent). FP_ERR_EXISTS when
 * out_dir holds anything (other than stale staging folders) and !p->force.
 * `rep` may be NULL. */
enum fp_status fp_synth_generate(const struct fp_synth_params *p, const char *out_dir,
                                 struct fp_synth_report *rep);

#endif
