/*
 * synth_cohort.c: who the phantom patients are and what happens to them.
 *
 * Takes validated parameters; produces, per patient, the clinical covariates,
 * the tumour microenvironment (TME) that the slide renderer draws, the regimen
 * received (confounded by indication) and RFS/OS/ORR drawn from the outcome
 * model documented in docs/SYNTH.md and echoed in cohort.json. Each patient's
 * draws come from streams keyed by (seed, centre, patient, purpose), so the
 * table is the same whether or not slides are rendered. Also the scanner
 * profile of each centre and the two CSV writers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "synth_internal.h"

/* ---- outcome model (names match docs/SYNTH.md and cohort.json) ---- */

#define C_WEIBULL_SHAPE 0.85
#define C_MEDIAN_RFS 30.0      /* months at eta = 0 */
#define C_ADMIN_CENSOR 60.0
#define C_LOSS_RATE 0.0025     /* per month */
#define C_OTHER_DEATH_RATE 0.002
#define C_PRS_SHAPE 1.1        /* post-recurrence survival */
#define C_PRS_MEDIAN 20.0

#define B_SIZE 0.70            /* per ln(size / 5 cm) */
#define B_MVI 0.75
#define B_GRADE 0.35           /* per grade above 2 */
#define B_AFP 0.30             /* per log10(AFP / 100) */
#define B_MULTI 0.50
#define B_MAJOR_VI 1.00
#define B_CHILD_B 0.40
#define B_AGE 0.10             /* per 10 years above 60 */
#define B_TIL -1.60            /* per unit of til_intra above 0.25 */
#define B_MARGIN -0.50         /* per unit of til_margin above 0.3 */
#define B_NECROSIS 1.00        /* per unit of necrosis_frac above 0.1 */

#define G_TACE_0 0.15
#define G_TACE_NEC -2.20       /* x necrosis_frac */
#define G_TACE_SIZE -0.40      /* x max(0, ln(size / 5 cm)) */
#define G_TKI_0 0.35           /* toxicity of the TKI on top of TACE */
#define G_TKI_TIL -2.20        /* x til_intra */
#define G_TKI_STROMA 1.00      /* x stroma_frac */

const char synth_outcome_formula[] =
	"RFS hazard h_r(t) = lambda * k * t^(k-1) * exp(lp_r), lambda = ln2 / median_rfs^k; "
	"lp_r = eta + g_r; eta = b_size*ln(size/5) + b_mvi*mvi + b_grade*(grade-2) "
	"+ b_afp*log10(afp/100) + b_multi*multifocal + b_major_vi*major_vi + b_child_b*cp_b "
	"+ b_age*(age-60)/10 + b_til*(til_intra-0.25) + b_margin*(til_margin-0.3) "
	"+ b_necrosis*(necrosis_frac-0.1); g_surgery = 0; "
	"g_tace = g_tace_0 + g_tace_nec*necrosis_frac + g_tace_size*max(0, ln(size/5)); "
	"g_tace_tki = g_tace + g_tki_0 + g_tki_til*til_intra + g_tki_stroma*stroma_frac. "
	"Other death: exponential(other_death_rate), counts as an RFS event. "
	"OS after recurrence: + Weibull(prs_shape, prs_median * exp(-0.5*eta)). "
	"Censoring: min(admin_censor, exponential(loss_rate)).";

const struct synth_coef synth_outcome_coefs[] = {
	{"weibull_shape", C_WEIBULL_SHAPE}, {"median_rfs_months", C_MEDIAN_RFS},
	{"admin_censor_months", C_ADMIN_CENSOR}, {"loss_rate_per_month", C_LOSS_RATE},
	{"other_death_rate_per_month", C_OTHER_DEATH_RATE}, {"prs_shape", C_PRS_SHAPE},
	{"prs_median_months", C_PRS_MEDIAN},
	{"b_size", B_SIZE}, {"b_mvi", B_MVI}, {"b_grade", B_GRADE}, {"b_afp", B_AFP},
	{"b_multi", B_MULTI}, {"b_major_vi", B_MAJOR_VI}, {"b_child_b", B_CHILD_B},
	{"b_age", B_AGE}, {"b_til", B_TIL}, {"b_margin", B_MARGIN}, {"b_necrosis", B_NECROSIS},
	{"g_tace_0", G_TACE_0}, {"g_tace_nec", G_TACE_NEC}, {"g_tace_size", G_TACE_SIZE},
	{"g_tki_0", G_TKI_0}, {"g_tki_til", G_TKI_TIL}, {"g_tki_stroma", G_TKI_STROMA},
};
const size_t synth_outcome_n_coefs = sizeof synth_outcome_coefs / sizeof synth_outcome_coefs[0];

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }
static double logistic(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ---- names ---- */

const char *fp_synth_regimen_name(enum fp_synth_regimen r)
{
	static const char *n[] = {"surgery", "tace", "tace_tki"};
	return (unsigned)r < 3 ? n[r] : "unknown";
}

const char *fp_synth_phenotype_name(enum fp_synth_phenotype p)
{
	static const char *n[] = {"inflamed", "excluded", "desert"};
	return (unsigned)p < 3 ? n[p] : "unknown";
}

const char *fp_synth_stage_name(int s)
{
	static const char *n[] = {"IA", "IB", "II", "IIIA", "IIIB"};
	return s >= 0 && s < 5 ? n[s] : "unknown";
}

const char *fp_synth_class_name(enum fp_synth_class c)
{
	static const char *n[] = {"background", "tumour", "liver", "stroma", "lymphocytes",
	                          "necrosis", "vessel", "thrombus"};
	return (unsigned)c < FP_SYNTH_N_CLASSES ? n[c] : "unknown";
}

/* ---- scanner profiles ---- */

struct profile_base {
	const char *name;
	double mpp;
	int quality;
};
/* Two of the eight centres scan at 40x (0.25 um/px): like a real network. */
static const struct profile_base profiles[8] = {
	{"SynthScan AT2", 0.5, 80}, {"SynthScan GT450", 0.25, 85}, {"SynthScan CS2", 0.5, 75},
	{"SynthScan S360", 0.5, 90}, {"SynthScan P1000", 0.5, 70}, {"SynthScan GT450", 0.25, 80},
	{"SynthScan AT2", 0.5, 85}, {"SynthScan VS200", 0.5, 78},
};

static void unit3(double v[3])
{
	double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
	for (int i = 0; i < 3; i++) v[i] /= n;
}

void synth_scanner_for_centre(uint64_t seed, int centre, struct synth_scanner *s)
{
	struct synth_rng r;
	synth_rng_init(&r, synth_key(seed, (uint32_t)centre, 0, SYNTH_P_CENTRE));
	const struct profile_base *b = &profiles[centre % 8];
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", b->name);
	s->mpp = b->mpp;
	s->app_mag = b->mpp < 0.4 ? 40 : 20;
	/* Ruifrok-Johnston haematoxylin; eosin between Ruifrok's and Macenko's
	 * reference (less magenta); both bent a little per lab. */
	double h[3] = {0.650, 0.704, 0.286}, e[3] = {0.12, 0.92, 0.37};
	for (int i = 0; i < 3; i++) {
		h[i] = fmax(0.02, h[i] + 0.06 * (synth_rng_unif(&r) - 0.5) * 2);
		e[i] = fmax(0.02, e[i] + 0.08 * (synth_rng_unif(&r) - 0.5) * 2);
	}
	unit3(h);
	unit3(e);
	memcpy(s->stain_h, h, sizeof h);
	memcpy(s->stain_e, e, sizeof e);
	s->h_gain = 0.80 + 0.45 * synth_rng_unif(&r);
	s->e_gain = 0.75 + 0.55 * synth_rng_unif(&r);
	double w = 238 + 14 * synth_rng_unif(&r);
	for (int i = 0; i < 3; i++) s->white[i] = clampd(w + 6 * (synth_rng_unif(&r) - 0.5), 225, 255);
	s->blur = 0.05 + 0.25 * synth_rng_unif(&r);
	s->jpeg_quality = b->quality;
}

/* ---- parameters ---- */

void fp_synth_params_default(struct fp_synth_params *p)
{
	memset(p, 0, sizeof *p);
	p->seed = 1;
	p->size = FP_SYNTH_DEMO;
	p->format = FP_SYNTH_SVS;
	p->missing_rate = 0.03;
}

enum fp_status fp_synth_size_parse(const char *s, enum fp_synth_size *out)
{
	static const char *n[] = {"tiny", "demo", "full"};
	for (int i = 0; i < 3; i++)
		if (s && strcmp(s, n[i]) == 0) {
			*out = (enum fp_synth_size)i;
			return FP_OK;
		}
	return FP_FAIL(FP_ERR_INVALID_ARG, "unknown size '%s' (expected tiny, demo or full)", s ? s : "");
}

const char *fp_synth_size_name(enum fp_synth_size s)
{
	static const char *n[] = {"tiny", "demo", "full"};
	return (unsigned)s < 3 ? n[s] : "unknown";
}

enum fp_status fp_synth_format_parse(const char *s, enum fp_synth_format *out)
{
	if (s && strcmp(s, "svs") == 0) *out = FP_SYNTH_SVS;
	else if (s && strcmp(s, "tiff") == 0) *out = FP_SYNTH_TIFF;
	else return FP_FAIL(FP_ERR_INVALID_ARG, "unknown format '%s' (expected svs or tiff)", s ? s : "");
	return FP_OK;
}

enum fp_status fp_synth_params_check(const struct fp_synth_params *p)
{
	if ((unsigned)p->size > FP_SYNTH_FULL) return FP_FAIL(FP_ERR_INVALID_ARG, "unknown size %d", (int)p->size);
	if ((unsigned)p->format > FP_SYNTH_TIFF) return FP_FAIL(FP_ERR_INVALID_ARG, "unknown format %d", (int)p->format);
	if (p->centres < 1 || p->centres > FP_SYNTH_MAX_CENTRES)
		return FP_FAIL(FP_ERR_INVALID_ARG, "centres must be in [1, %d], got %d", FP_SYNTH_MAX_CENTRES, p->centres);
	if (p->patients < 1 || p->patients > FP_SYNTH_MAX_PATIENTS)
		return FP_FAIL(FP_ERR_INVALID_ARG, "patients per centre must be in [1, %d], got %d",
		               FP_SYNTH_MAX_PATIENTS, p->patients);
	if (!(p->missing_rate >= 0 && p->missing_rate <= 0.5))
		return FP_FAIL(FP_ERR_INVALID_ARG, "missing rate must be in [0, 0.5], got %g", p->missing_rate);
	if (p->threads < 0 || p->threads > 256)
		return FP_FAIL(FP_ERR_INVALID_ARG, "threads must be in [0, 256], got %d", p->threads);
	return FP_OK;
}

/* ---- one patient ---- */

struct centre_practice {
	double phen[3];              /* phenotype prevalences */
	double c_tace, c_tki;        /* regimen-choice intercepts (practice variation) */
	double age_shift;
};

static void centre_practice(uint64_t seed, int c, struct centre_practice *cp)
{
	struct synth_rng r;
	synth_rng_init(&r, synth_key(seed, (uint32_t)c, 0xFFFFu, SYNTH_P_CENTRE));
	double a = 0.33 + 0.10 * (synth_rng_unif(&r) - 0.5), b = 0.37 + 0.10 * (synth_rng_unif(&r) - 0.5);
	cp->phen[0] = a;
	cp->phen[1] = b;
	cp->phen[2] = 1.0 - a - b;
	cp->c_tace = -0.2 + 0.4 * synth_rng_normal(&r);
	cp->c_tki = -0.7 + 0.4 * synth_rng_normal(&r);
	cp->age_shift = 4.0 * synth_rng_normal(&r);
}

static const char *first_names[] = {"ALEX", "SAM", "ROBIN", "JORDAN", "KIM", "CASEY", "RILEY", "MORGAN",
                                    "TAYLOR", "JAMIE", "DREW", "AVERY", "QUINN", "SKYLER", "REESE", "PAT"};
static const char *last_names[] = {"TESTPERSON", "PLACEHOLDER", "SPECIMEN", "FICTIVE", "SAMPLEDOE",
                                   "MOCKINGTON", "PHANTOMSON", "DUMMYFIELD", "FAKERLEY", "NOBODY"};

static void draw_clinical(uint64_t seed, const struct centre_practice *cp, struct fp_synth_patient *pt,
                          double *aggr_out)
{
	struct synth_rng r;
	uint32_t c = (uint32_t)pt->centre_index, i = (uint32_t)pt->patient_index;
	synth_rng_init(&r, synth_key(seed, c, i, SYNTH_P_CLINICAL));
	double aggr = synth_rng_normal(&r); /* latent tumour aggressiveness */
	pt->age = clampd(61.0 + cp->age_shift + 10.0 * synth_rng_normal(&r), 18, 90);
	pt->sex = synth_rng_bernoulli(&r, 0.80) ? 'M' : 'F';
	pt->child_pugh_b = synth_rng_bernoulli(&r, 0.13);
	pt->tumour_size_cm = clampd(exp(log(4.5) + 0.25 * aggr + 0.55 * synth_rng_normal(&r)), 0.8, 25);
	pt->multifocal = synth_rng_bernoulli(&r, logistic(-1.6 + 0.5 * aggr));
	pt->major_vessel_invasion = synth_rng_bernoulli(&r, logistic(-3.4 + 0.8 * aggr));
	double g = 0.9 * aggr + 0.6 * synth_rng_normal(&r);
	pt->edmondson_grade = g < -1.1 ? 1 : g < 0.3 ? 2 : g < 1.3 ? 3 : 4;
	pt->mvi = synth_rng_bernoulli(&r, logistic(-0.9 + 0.9 * aggr + 0.3 * log(pt->tumour_size_cm / 5)));
	pt->afp_ng_ml = clampd(pow(10.0, 1.4 + 0.6 * aggr + 0.9 * synth_rng_normal(&r)), 0.5, 1e6);
	/* AJCC 8th: T from number, size and vascular invasion (N0 M0 after resection). */
	if (pt->major_vessel_invasion) pt->tnm_stage = 4;
	else if (pt->multifocal) pt->tnm_stage = pt->tumour_size_cm > 5 ? 3 : 2;
	else if (pt->tumour_size_cm <= 2) pt->tnm_stage = 0;
	else pt->tnm_stage = pt->mvi ? 2 : 1;
	*aggr_out = aggr;
}

static void draw_tme(uint64_t seed, const struct centre_practice *cp, double aggr, struct fp_synth_patient *pt)
{
	struct synth_rng r;
	synth_rng_init(&r, synth_key(seed, (uint32_t)pt->centre_index, (uint32_t)pt->patient_index, SYNTH_P_TME));
	double u = synth_rng_unif(&r);
	pt->phenotype = u < cp->phen[0] ? FP_SYNTH_INFLAMED : u < cp->phen[0] + cp->phen[1] ? FP_SYNTH_EXCLUDED
	                                                                                   : FP_SYNTH_DESERT;
	double u1 = synth_rng_unif(&r), u2 = synth_rng_unif(&r), u3 = synth_rng_unif(&r);
	double u4 = synth_rng_unif(&r), u5 = synth_rng_unif(&r);
	switch (pt->phenotype) {
	case FP_SYNTH_INFLAMED:
		pt->til_intra = 0.45 + 0.45 * u1;
		pt->til_margin = 0.45 + 0.35 * u2;
		break;
	case FP_SYNTH_EXCLUDED:
		pt->til_intra = 0.04 + 0.14 * u1;
		pt->til_margin = 0.55 + 0.40 * u2;
		break;
	default:
		pt->til_intra = 0.03 * u1;
		pt->til_margin = 0.04 + 0.12 * u2;
		break;
	}
	pt->stroma_frac = clampd(0.04 + 0.30 * pow(u3, 1.3) + (pt->phenotype == FP_SYNTH_INFLAMED ? 0 : 0.06), 0, 0.5);
	pt->necrosis_frac = clampd(0.30 * u4 * u4 + 0.12 * fmax(0, log(pt->tumour_size_cm / 3)) + 0.03 * aggr, 0, 0.6);
	pt->tumour_frac = 0.30 + 0.35 * u5;
	pt->thrombi = pt->mvi ? 1 + (int)(3 * synth_rng_unif(&r)) : 0;
}

static void linear_predictors(struct fp_synth_patient *pt)
{
	double lsize = log(pt->tumour_size_cm / 5);
	pt->eta_prognostic = B_SIZE * lsize + B_MVI * pt->mvi + B_GRADE * (pt->edmondson_grade - 2) +
	                     B_AFP * log10(pt->afp_ng_ml / 100) + B_MULTI * pt->multifocal +
	                     B_MAJOR_VI * pt->major_vessel_invasion + B_CHILD_B * pt->child_pugh_b +
	                     B_AGE * (pt->age - 60) / 10 + B_TIL * (pt->til_intra - 0.25) +
	                     B_MARGIN * (pt->til_margin - 0.3) + B_NECROSIS * (pt->necrosis_frac - 0.1);
	double g_tace = G_TACE_0 + G_TACE_NEC * pt->necrosis_frac + G_TACE_SIZE * fmax(0, lsize);
	double g_tki = g_tace + G_TKI_0 + G_TKI_TIL * pt->til_intra + G_TKI_STROMA * pt->stroma_frac;
	pt->lp[FP_SYNTH_SURGERY] = pt->eta_prognostic;
	pt->lp[FP_SYNTH_TACE] = pt->eta_prognostic + g_tace;
	pt->lp[FP_SYNTH_TACE_TKI] = pt->eta_prognostic + g_tki;
	pt->best = FP_SYNTH_SURGERY;
	for (int k = 1; k < 3; k++)
		if (pt->lp[k] < pt->lp[pt->best]) pt->best = (enum fp_synth_regimen)k;
}

/* Confounding by indication: clinicians see size, MVI, AFP, stage and liver
 * function, not the TME, so the sicker get more treatment. */
static void assign_regimen(uint64_t seed, const struct centre_practice *cp, struct fp_synth_patient *pt)
{
	struct synth_rng r;
	synth_rng_init(&r, synth_key(seed, (uint32_t)pt->centre_index, (uint32_t)pt->patient_index, SYNTH_P_ASSIGN));
	double s[3];
	s[0] = 0;
	s[1] = cp->c_tace + 0.8 * log(pt->tumour_size_cm / 5) + 0.6 * pt->mvi + 0.5 * pt->multifocal -
	       0.3 * pt->child_pugh_b;
	s[2] = cp->c_tki + 0.9 * pt->mvi + 0.5 * log10(pt->afp_ng_ml / 100) + 1.0 * pt->major_vessel_invasion +
	       0.4 * (pt->edmondson_grade >= 3) - 1.2 * pt->child_pugh_b;
	double z = exp(s[0]) + exp(s[1]) + exp(s[2]);
	for (int k = 0; k < 3; k++) pt->propensity[k] = exp(s[k]) / z;
	double u = synth_rng_unif(&r);
	pt->regimen = u < pt->propensity[0] ? FP_SYNTH_SURGERY
	              : u < pt->propensity[0] + pt->propensity[1] ? FP_SYNTH_TACE : FP_SYNTH_TACE_TKI;
}

static double weibull_time(double u_exp, double shape, double median, double eta)
{
	double lambda = log(2.0) / pow(median, shape);
	return pow(u_exp / (lambda * exp(eta)), 1.0 / shape);
}

static void draw_outcome(uint64_t seed, double missing_rate, struct fp_synth_patient *pt)
{
	struct synth_rng r;
	uint32_t c = (uint32_t)pt->centre_index, i = (uint32_t)pt->patient_index;
	synth_rng_init(&r, synth_key(seed, c, i, SYNTH_P_OUTCOME));
	double lp = pt->lp[pt->regimen];
	double t_rec = weibull_time(synth_rng_exp(&r), C_WEIBULL_SHAPE, C_MEDIAN_RFS, lp);
	double t_other = synth_rng_exp(&r) / C_OTHER_DEATH_RATE;
	double prs = weibull_time(synth_rng_exp(&r), C_PRS_SHAPE, C_PRS_MEDIAN, 0.5 * pt->eta_prognostic);
	double cens = fmin(C_ADMIN_CENSOR, synth_rng_exp(&r) / C_LOSS_RATE);
	double t_rfs = fmin(t_rec, t_other);
	double t_death = t_other < t_rec ? t_other : fmin(t_rec + prs, t_other);
	/* Floors keep times > 0 after the CSV's two decimals. */
	pt->rfs_months = fmax(0.05, fmin(t_rfs, cens));
	pt->rfs_event = t_rfs <= cens;
	pt->os_months = fmax(pt->rfs_months, fmax(0.05, fmin(t_death, cens)));
	pt->os_event = t_death <= cens;
	/* ORR: response of residual intrahepatic disease to TACE (mRECIST at 3 months);
	 * not defined after surgery alone. */
	double u_orr = synth_rng_unif(&r);
	if (pt->regimen == FP_SYNTH_SURGERY) pt->orr = -1;
	else pt->orr = u_orr < logistic(0.1 - 1.5 * (pt->lp[pt->regimen] - pt->eta_prognostic) - 0.4 * pt->eta_prognostic);

	struct synth_rng m;
	synth_rng_init(&m, synth_key(seed, c, i, SYNTH_P_MISSING));
	static const unsigned bits[] = {FP_SYNTH_MISS_AGE, FP_SYNTH_MISS_SEX, FP_SYNTH_MISS_STAGE,
	                                FP_SYNTH_MISS_CHILD_PUGH, FP_SYNTH_MISS_AFP, FP_SYNTH_MISS_SIZE,
	                                FP_SYNTH_MISS_MVI, FP_SYNTH_MISS_GRADE};
	pt->missing = 0;
	for (size_t k = 0; k < sizeof bits / sizeof bits[0]; k++) {
		double rate = bits[k] == FP_SYNTH_MISS_AFP ? 2 * missing_rate : missing_rate;
		if (synth_rng_unif(&m) < rate) pt->missing |= bits[k];
	}
}

enum fp_status fp_synth_draw_cohort(const struct fp_synth_params *p, struct fp_synth_patient **out, size_t *n)
{
	FP_TRY(fp_synth_params_check(p));
	size_t total;
	FP_TRY(fp_size_mul((size_t)p->centres, (size_t)p->patients, &total, "synth patients"));
	struct fp_synth_patient *pts = NULL;
	FP_TRY(fp_calloc_array(total, sizeof *pts, (void **)&pts, "synth patients"));
	const char *ext = p->format == FP_SYNTH_TIFF ? "tif" : "svs";
	for (int c = 0; c < p->centres; c++) {
		struct centre_practice cp;
		centre_practice(p->seed, c, &cp);
		for (int i = 0; i < p->patients; i++) {
			struct fp_synth_patient *pt = &pts[(size_t)c * (size_t)p->patients + (size_t)i];
			pt->centre_index = c;
			pt->patient_index = i;
			snprintf(pt->centre, sizeof pt->centre, "H%02d", c + 1);
			snprintf(pt->patient_id, sizeof pt->patient_id, "%s-P%04d", pt->centre, i + 1);
			snprintf(pt->slide_file, sizeof pt->slide_file, "%s.%s", pt->patient_id, ext);
			struct synth_rng lr;
			synth_rng_init(&lr, synth_key(p->seed, (uint32_t)c, (uint32_t)i, SYNTH_P_LABEL));
			uint64_t a = synth_rng_u64(&lr), b = synth_rng_u64(&lr);
			snprintf(pt->label_name, sizeof pt->label_name, "%s %s",
			         first_names[a % (sizeof first_names / sizeof first_names[0])],
			         last_names[b % (sizeof last_names / sizeof last_names[0])]);
			double aggr;
			draw_clinical(p->seed, &cp, pt, &aggr);
			draw_tme(p->seed, &cp, aggr, pt);
			linear_predictors(pt);
			assign_regimen(p->seed, &cp, pt);
			draw_outcome(p->seed, p->missing_rate, pt);
		}
	}
	*out = pts;
	*n = total;
	return FP_OK;
}

/* ---- CSV ---- */

enum fp_status synth_write_clinical_csv(FILE *f, const struct fp_synth_patient *pts, size_t n)
{
	fprintf(f, "patient_id,centre,slide_file,age,sex,tnm_stage,child_pugh,afp_ng_ml,tumour_size_cm,"
	           "mvi,edmondson_grade,regimen,rfs_months,rfs_event,os_months,os_event,orr\n");
	for (size_t k = 0; k < n; k++) {
		const struct fp_synth_patient *p = &pts[k];
		unsigned m = p->missing;
		fprintf(f, "%s,%s,%s,", p->patient_id, p->centre, p->slide_file);
		if (!(m & FP_SYNTH_MISS_AGE)) fprintf(f, "%.0f", p->age);
		fputc(',', f);
		if (!(m & FP_SYNTH_MISS_SEX)) fputc(p->sex, f);
		fputc(',', f);
		if (!(m & FP_SYNTH_MISS_STAGE)) fputs(fp_synth_stage_name(p->tnm_stage), f);
		fputc(',', f);
		if (!(m & FP_SYNTH_MISS_CHILD_PUGH)) fputc(p->child_pugh_b ? 'B' : 'A', f);
		fputc(',', f);
		if (!(m & FP_SYNTH_MISS_AFP)) fprintf(f, "%.1f", p->afp_ng_ml);
		fputc(',', f);
		if (!(m & FP_SYNTH_MISS_SIZE)) fprintf(f, "%.1f", p->tumour_size_cm);
		fputc(',', f);
		if (!(m & FP_SYNTH_MISS_MVI)) fprintf(f, "%d", p->mvi);
		fputc(',', f);
		if (!(m & FP_SYNTH_MISS_GRADE)) fprintf(f, "%d", p->edmondson_grade);
		fprintf(f, ",%s,%.2f,%d,%.2f,%d,", fp_synth_regimen_name(p->regimen), p->rfs_months, p->rfs_event,
		        p->os_months, p->os_event);
		if (p->orr >= 0) fprintf(f, "%d", p->orr);
		fputc('\n', f);
	}
	return ferror(f) ? FP_FAIL(FP_ERR_IO, "writing clinical.csv failed") : FP_OK;
}

enum fp_status synth_write_truth_csv(FILE *f, const struct fp_synth_patient *pts, size_t n)
{
	fprintf(f, "patient_id,centre,slide_file,label_name,age,sex,tnm_stage,child_pugh,afp_ng_ml,tumour_size_cm,"
	           "multifocal,major_vessel_invasion,mvi,edmondson_grade,phenotype,til_intra,til_margin,stroma_frac,"
	           "necrosis_frac,tumour_frac,thrombi,eta_prognostic,lp_surgery,lp_tace,lp_tace_tki,best_regimen,"
	           "regimen,propensity_surgery,propensity_tace,propensity_tace_tki,rfs_months,rfs_event,"
	           "os_months,os_event,orr\n");
	for (size_t k = 0; k < n; k++) {
		const struct fp_synth_patient *p = &pts[k];
		fprintf(f, "%s,%s,%s,%s,%.2f,%c,%s,%c,%.3f,%.3f,%d,%d,%d,%d,%s,%.4f,%.4f,%.4f,%.4f,%.4f,%d,"
		           "%.6f,%.6f,%.6f,%.6f,%s,%s,%.6f,%.6f,%.6f,%.2f,%d,%.2f,%d,",
		        p->patient_id, p->centre, p->slide_file, p->label_name, p->age, p->sex,
		        fp_synth_stage_name(p->tnm_stage), p->child_pugh_b ? 'B' : 'A', p->afp_ng_ml, p->tumour_size_cm,
		        p->multifocal, p->major_vessel_invasion, p->mvi, p->edmondson_grade,
		        fp_synth_phenotype_name(p->phenotype), p->til_intra, p->til_margin, p->stroma_frac,
		        p->necrosis_frac, p->tumour_frac, p->thrombi, p->eta_prognostic, p->lp[0], p->lp[1], p->lp[2],
		        fp_synth_regimen_name(p->best), fp_synth_regimen_name(p->regimen), p->propensity[0],
		        p->propensity[1], p->propensity[2], p->rfs_months, p->rfs_event, p->os_months, p->os_event);
		if (p->orr >= 0) fprintf(f, "%d", p->orr);
		fputc('\n', f);
	}
	return ferror(f) ? FP_FAIL(FP_ERR_IO, "writing truth/patients.csv failed") : FP_OK;
}
