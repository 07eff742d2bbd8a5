/*
 * trainers.c: the Part 2 local-training adapter and the site data it reads
 * (fp_trainers.h). Takes one site's clinical.csv and features.csv; produces
 * the patient table, the federated pooled statistics (MPI), and per round the
 * delta of a FedProx training call. The trainer owns one CPU kernels handle
 * and one fp_part2_model sized for the site's patients.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_kernels.h"
#include "fp_site_train.h"
#include "fp_slide.h"
#include "fp_tile_cache.h"
#include "fp_train.h"
#include "fp_trainers.h"

const double fp_p2_horizons[FP_P2_N_HORIZONS] = {12.0, 24.0, 36.0};

#define FEAT_MAX_BYTES ((size_t)256 << 20)
#define FEAT_MAX_COLS 128

/* ---- features.csv ---- */

static const char *const dropped_cols[] = {"n_tiles", "tissue_tiles", "tumour_tiles", "inside_tiles", "margin_tiles"};

static int is_dropped(const char *name)
{
	for (size_t i = 0; i < sizeof dropped_cols / sizeof dropped_cols[0]; i++)
		if (strcmp(name, dropped_cols[i]) == 0) return 1;
	return 0;
}

/* Splits a line in place on commas (quantify writes no quoted cells). */
static int split(char *line, char **cells, int max)
{
	int n = 0;
	char *s = line;
	for (;;) {
		if (n == max) return -1;
		cells[n++] = s;
		char *c = strchr(s, ',');
		if (!c) break;
		*c = '\0';
		s = c + 1;
	}
	return n;
}

static int parse_cell(const char *s, double *v)
{
	if (*s == '\0' || strcmp(s, "NA") == 0) {
		*v = NAN;
		return 1;
	}
	char *end = NULL;
	*v = strtod(s, &end);
	return end && end != s && *end == '\0' && isfinite(*v);
}

/* The uid `fedpath tile --site SITE` gives a slide (data/tile_slide.c). */
static enum fp_status slide_uid(const char *path, const char *site, char uid[65])
{
	struct fp_slide_options so = {.allow_unknown_mpp = 1};
	struct fp_slide *s = NULL;
	char qh[65], seed[256];
	uint8_t d[FP_SHA256_SIZE];
	FP_TRY(fp_slide_open(path, &so, &s));
	enum fp_status st = fp_slide_quickhash(s, qh);
	fp_slide_destroy(s);
	if (st != FP_OK) return st;
	int n = snprintf(seed, sizeof seed, "fedpath-slide-uid-1|%s|%s", site, qh);
	FP_TRY(fp_sha256(seed, (size_t)n, d));
	fp_hex_encode(d, 16, uid);
	return FP_OK;
}

struct feat_rows {
	size_t n_rows, cap;
	int n_cols;
	char (*names)[FP_P2_NAME_MAX];
	char (*ids)[65];
	double *values;
};

static void feat_rows_close(struct feat_rows *f)
{
	free(f->names);
	free(f->ids);
	free(f->values);
	memset(f, 0, sizeof *f);
}

static enum fp_status read_features(const char *path, const struct fp_clinical *clin, const char *site,
                                    struct feat_rows *out)
{
	enum fp_status st;
	char *text = NULL, *cells[FEAT_MAX_COLS];
	int src[FEAT_MAX_COLS], kind[FEAT_MAX_COLS]; /* kind 0 number, 1 phenotype */
	char (*uids)[65] = NULL;
	size_t len = 0, n_slides = 0;
	void *v;
	memset(out, 0, sizeof *out);
	FP_TRY(fp_file_read_all(path, FEAT_MAX_BYTES, &text, &len));
	char *save = NULL, *line = strtok_r(text, "\r\n", &save);
	if (!line) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: empty file; expected a header line", path);
		goto fail;
	}
	int nc = split(line, cells, FEAT_MAX_COLS);
	if (nc < 2) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s:1: needs an id column and at least one feature column (or more than %d columns)",
		             path, FEAT_MAX_COLS);
		goto fail;
	}
	int by_uid = strcmp(cells[0], "slide_uid") == 0;
	if (!by_uid && strcmp(cells[0], "patient_id") != 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s:1: first column is '%s'; expected slide_uid or patient_id", path, cells[0]);
		goto fail;
	}
	FP_CHECK(st, fp_calloc_array((size_t)nc + 1, FP_P2_NAME_MAX, &v, "features names")); out->names = v;
	for (int c = 1; c < nc; c++) {
		if (is_dropped(cells[c])) continue;
		if (strlen(cells[c]) >= FP_P2_NAME_MAX - 12) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s:1: column name '%.40s...' is too long", path, cells[c]);
			goto fail;
		}
		if (strcmp(cells[c], "phenotype") == 0) {
			snprintf(out->names[out->n_cols], FP_P2_NAME_MAX, "phenotype_inflamed");
			src[out->n_cols] = c, kind[out->n_cols++] = 1;
			snprintf(out->names[out->n_cols], FP_P2_NAME_MAX, "phenotype_excluded");
			src[out->n_cols] = c, kind[out->n_cols++] = 2;
		} else {
			snprintf(out->names[out->n_cols], FP_P2_NAME_MAX, "%s", cells[c]);
			src[out->n_cols] = c, kind[out->n_cols++] = 0;
		}
	}
	if (by_uid) {
		/* Link: uid of every clinical slide, computed as tile computes it. */
		size_t n = fp_clinical_count(clin);
		for (size_t i = 0; i < n; i++) n_slides += fp_clinical_row(clin, i)->n_slides;
		FP_CHECK(st, fp_calloc_array(n_slides + 1, sizeof *uids, &v, "slide uids")); uids = v;
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			const struct fp_clinical_row *r = fp_clinical_row(clin, i);
			for (size_t s = 0; s < r->n_slides; s++, k++) {
				char sp[4096];
				FP_CHECK(st, fp_clinical_slide_path(clin, r->slides[s], sp, sizeof sp));
				if ((st = slide_uid(sp, site, uids[k])) != FP_OK) {
					st = fp_error_wrap("linking %s to patients (slide of %s)", path, r->patient_id);
					goto fail;
				}
			}
		}
	}
	size_t lineno = 1;
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		lineno++;
		int n = split(line, cells, FEAT_MAX_COLS);
		if (n != nc) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s:%zu: %d cells, the header has %d", path, lineno, n, nc);
			goto fail;
		}
		if (out->n_rows == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 64, bytes;
			FP_CHECK(st, fp_size_mul3(cap, (size_t)out->n_cols + 1, sizeof(double), &bytes, "features"));
			if (!(v = realloc(out->values, bytes))) goto nomem;
			out->values = v;
			if (!(v = realloc(out->ids, cap * sizeof *out->ids))) goto nomem;
			out->ids = v;
			out->cap = cap;
		}
		const char *pid = cells[0];
		if (by_uid) {
			pid = NULL;
			size_t k = 0, n_pat = fp_clinical_count(clin);
			for (size_t i = 0; i < n_pat && !pid; i++) {
				const struct fp_clinical_row *r = fp_clinical_row(clin, i);
				for (size_t s = 0; s < r->n_slides && !pid; s++, k++)
					if (strcmp(uids[k], cells[0]) == 0) pid = r->patient_id;
			}
			if (!pid) {
				FP_WARN("%s:%zu: slide %s is not a slide of %s's clinical table; row ignored", path, lineno,
				        cells[0], site);
				continue;
			}
		}
		snprintf(out->ids[out->n_rows], sizeof out->ids[0], "%s", pid);
		double *row = out->values + out->n_rows * (size_t)out->n_cols;
		for (int j = 0; j < out->n_cols; j++) {
			const char *cell = cells[src[j]];
			if (kind[j] == 0) {
				if (!parse_cell(cell, &row[j])) {
					st = FP_FAIL(FP_ERR_FORMAT, "%s:%zu: column %s: '%s' is not a number or NA", path, lineno,
					             out->names[j], cell);
					goto fail;
				}
			} else if (strcmp(cell, "none") == 0 || strcmp(cell, "NA") == 0 || *cell == '\0') {
				row[j] = NAN;
			} else if (strcmp(cell, "inflamed") && strcmp(cell, "excluded") && strcmp(cell, "desert")) {
				st = FP_FAIL(FP_ERR_FORMAT, "%s:%zu: phenotype '%s' is not inflamed, excluded, desert or none", path,
				             lineno, cell);
				goto fail;
			} else {
				row[j] = strcmp(cell, kind[j] == 1 ? "inflamed" : "excluded") == 0;
			}
		}
		out->n_rows++;
	}
	st = FP_OK;
	goto done;
nomem:
	st = FP_FAIL(FP_ERR_NOMEM, "%s: out of memory reading features", path);
fail:
	feat_rows_close(out);
done:
	free(uids);
	free(text);
	return st;
}

enum fp_status fp_p2_site_load(const char *clinical_csv, const char *features_csv, const char *site,
                               struct fp_p2_table *out)
{
	enum fp_status st;
	struct fp_clinical *clin = NULL;
	struct feat_rows fr = {0};
	const char **names = NULL, **ids = NULL;
	void *v;
	memset(out, 0, sizeof *out);
	FP_CHECK(st, fp_clinical_load(clinical_csv, stderr, &clin));
	if (!features_csv) {
		FP_CHECK(st, fp_p2_table_build(clin, NULL, out));
	} else {
		FP_CHECK(st, read_features(features_csv, clin, site, &fr));
		FP_CHECK(st, fp_calloc_array((size_t)fr.n_cols + 1, sizeof *names, &v, "features")); names = v;
		FP_CHECK(st, fp_calloc_array(fr.n_rows + 1, sizeof *ids, &v, "features")); ids = v;
		for (int j = 0; j < fr.n_cols; j++) names[j] = fr.names[j];
		for (size_t i = 0; i < fr.n_rows; i++) ids[i] = fr.ids[i];
		struct fp_p2_features f = {fr.n_rows, fr.n_cols, names, ids, fr.values};
		FP_CHECK(st, fp_p2_table_build(clin, &f, out));
	}
	snprintf(out->site, sizeof out->site, "%s", site);
fail:
	free(names);
	free(ids);
	feat_rows_close(&fr);
	fp_clinical_destroy(clin);
	return st;
}

/* ---- the MIL option's bags ---- */

enum fp_status fp_p2_site_bags(const struct fp_p2_table *t, const char *clinical_csv, const char *caches_dir,
                               const char *site, const struct fp_part2_config *cfg, struct fp_p2_bagset *out)
{
	enum fp_status st;
	struct fp_clinical *clin = NULL;
	struct fp_p2_cache_emb *caches = NULL;
	struct fp_p2_slide_emb *slides = NULL;
	size_t n_caches = 0, n_used = 0;
	int *row = NULL;
	void *v;
	memset(out, 0, sizeof *out);
	if (t->n < 1 || t->n > 10000000) return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil: %zu patients", t->n);
	FP_CHECK(st, fp_clinical_load(clinical_csv, stderr, &clin));
	FP_CHECK(st, fp_p2_read_caches(caches_dir, &caches, &n_caches));
	FP_CHECK(st, fp_calloc_array(n_caches, sizeof *slides, &v, "part2 mil slides")); slides = v;
	/* row of each cache: through the uid of every clinical slide */
	FP_CHECK(st, fp_calloc_array(n_caches, sizeof *row, &v, "part2 mil slides")); row = v;
	for (size_t c = 0; c < n_caches; c++) row[c] = -1;
	for (size_t i = 0; i < fp_clinical_count(clin); i++) {
		const struct fp_clinical_row *r = fp_clinical_row(clin, i);
		int tr = -1;
		for (size_t j = 0; j < t->n && tr < 0; j++)
			if (strcmp(t->patient[j], r->patient_id) == 0) tr = (int)j;
		if (tr < 0) continue;
		for (size_t s = 0; s < r->n_slides; s++) {
			char sp[4096], uid[65];
			if ((st = fp_clinical_slide_path(clin, r->slides[s], sp, sizeof sp)) != FP_OK ||
			    (st = slide_uid(sp, site, uid)) != FP_OK) {
				st = fp_error_wrap("linking the tile caches of %s to patients (slide of %s)", caches_dir,
				                   r->patient_id);
				goto fail;
			}
			for (size_t c = 0; c < n_caches; c++)
				if (strcmp(caches[c].uid, uid) == 0) row[c] = tr;
		}
	}
	for (size_t c = 0; c < n_caches; c++) {
		if (row[c] < 0) {
			FP_WARN("%s: slide %s is not a slide of a patient of %s's table (not in clinical.csv, or held out); "
			        "cache ignored", caches[c].path, caches[c].uid, site);
			continue;
		}
		slides[n_used++] = (struct fp_p2_slide_emb){row[c], caches[c].uid, caches[c].n, caches[c].emb};
	}
	if (n_used == 0) {
		st = FP_FAIL(FP_ERR_DATA, "part2 mil: no tile cache in %s belongs to a patient of %s", caches_dir,
		             clinical_csv);
		goto fail;
	}
	FP_CHECK(st, fp_p2_bagset_build((int)t->n, caches[0].e, slides, n_used, cfg->bag_cap,
	                                cfg->seed, out));
	FP_CHECK(st, fp_calloc_array(t->n, sizeof *out->ids, &v, "part2 mil ids")); out->ids = v;
	for (size_t j = 0; j < t->n; j++) out->ids[j] = t->patient[j];
	out->bags.patient = out->ids;
	for (size_t j = 0; j < t->n; j++)
		if (out->offset[j + 1] == out->offset[j]) {
			st = FP_FAIL(FP_ERR_DATA, "part2 mil at %s: patient %s has no quantified tile cache in %s (run `fedpath "
			             "tile` and `fedpath quantify` on its slides, or leave it out of clinical.csv)",
			             site, t->patient[j], caches_dir);
			goto fail;
		}
	if (out->n_capped)
		FP_INFO("part2 mil at %s: %d of %zu bags subsampled to %d tiles (%llu of %llu tiles kept)", site,
		        out->n_capped, t->n, cfg->bag_cap, (unsigned long long)out->n_tiles_kept,
		        (unsigned long long)out->n_tiles_in);
	st = FP_OK;
	goto done;
fail:
	fp_p2_bagset_close(out);
done:
	free(row);
	free(slides);
	fp_p2_caches_free(caches, n_caches);
	fp_clinical_destroy(clin);
	return st;
}

/* ---- federated standardisation over MPI ---- */

enum fp_status fp_p2_pool_mpi(MPI_Comm comm, const struct fp_p2_stats *local, struct fp_p2_stats *pooled)
{
	enum fp_status st = FP_OK;
	int size = 0, rank = 0;
	struct fp_p2_stats *all = NULL, mine;
	MPI_Comm_size(comm, &size);
	MPI_Comm_rank(comm, &rank);
	/* A rank without data sends p = -1: the record is a fixed-size block of
	 * sums and counts, never rows. */
	memset(&mine, 0, sizeof mine);
	if (local) mine = *local;
	else mine.p = -1;
	all = calloc((size_t)size, sizeof *all);
	if (!all) return FP_FAIL(FP_ERR_NOMEM, "part2: pooling statistics of %d ranks", size);
	int rc = MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, comm);
	if (rc != MPI_SUCCESS) {
		st = FP_FAIL(FP_ERR_IO, "part2: MPI_Allgather of the standardisation statistics failed (%d)", rc);
		goto fail;
	}
	memset(pooled, 0, sizeof *pooled);
	for (int r = 0; r < size; r++) {
		if (all[r].p < 0) continue;
		FP_CHECK(st, fp_p2_stats_merge(pooled, &all[r]));
	}
	if (pooled->n_patients == 0) st = FP_FAIL(FP_ERR_DATA, "part2: no rank contributed patients to the statistics");
fail:
	free(all);
	return st;
}

int fp_p2_design_width(const struct fp_p2_stats *pooled)
{
	int w = pooled->p;
	for (int j = 0; j < pooled->p; j++)
		if (pooled->count[j] < (double)pooled->n_patients) w++;
	return w;
}

/* ---- the trainer ---- */

struct fp_p2_trainer {
	struct fp_kernels *k;
	struct fp_part2_model *m;
	struct fp_part2_mil *mil;         /* instead of m when cfg.kind is FP_P2_MIL */
	const struct fp_part2_bags *bags; /* MIL: one bag per row, borrowed */
	int e;                            /* MIL: embedding width */
	struct fp_part2_config cfg;
	long epoch_steps; /* the configuration's steps: one epoch (a full-batch call) */
	int n, p;
	size_t n_params;
	char (*names)[FP_P2_NAME_MAX];
	float *x, *time, *event, *ostime, *osevent;
	int *regimen;
	int strata[2];
	float *w_new;
};

void fp_p2_trainer_destroy(struct fp_p2_trainer *t)
{
	if (!t) return;
	fp_part2_destroy(t->m);
	fp_part2_mil_destroy(t->mil);
	fp_kernels_destroy(t->k);
	free(t->names);
	free(t->x);
	free(t->time);
	free(t->event);
	free(t->ostime);
	free(t->osevent);
	free(t->regimen);
	free(t->w_new);
	free(t);
}

/* The model of t's kind for n rows and steps (cfg.steps replaced). */
static enum fp_status build_model(struct fp_p2_trainer *t, int n, const struct fp_part2_config *c)
{
	if (c->kind == FP_P2_MIL) {
		struct fp_part2_mil *mm = NULL;
		FP_TRY(fp_part2_mil_create(t->k, t->p, t->e, n, c, &mm));
		fp_part2_mil_destroy(t->mil);
		t->mil = mm;
		t->n_params = fp_part2_mil_n_params(mm);
		return FP_OK;
	}
	struct fp_part2_model *m = NULL;
	FP_TRY(fp_part2_create(t->k, t->p, n, c, &m));
	fp_part2_destroy(t->m);
	t->m = m;
	t->n_params = fp_part2_n_params(m);
	return FP_OK;
}

static enum fp_status trainer_create(const struct fp_p2_table *table, const struct fp_part2_bags *bags, int e,
                                     const struct fp_p2_stats *pooled, const struct fp_part2_config *cfg,
                                     struct fp_p2_trainer **out)
{
	enum fp_status st;
	struct fp_p2_trainer *t = calloc(1, sizeof *t);
	double *design = NULL;
	void *v;
	*out = NULL;
	if (!t) return FP_FAIL(FP_ERR_NOMEM, "part2 trainer");
	t->cfg = *cfg;
	t->bags = bags;
	t->e = e;
	t->epoch_steps = cfg->steps;
	t->p = fp_p2_design_width(pooled);
	if (table) {
		char(*names)[FP_P2_NAME_MAX] = NULL;
		int pw = 0;
		FP_CHECK(st, fp_p2_standardise(table, pooled, &design, &pw, &names));
		t->names = names;
		if (pw != t->p) {
			st = FP_FAIL(FP_ERR_INTERNAL, "part2: design has %d columns, expected %d", pw, t->p);
			goto fail;
		}
		if (table->n > 1000000) {
			st = FP_FAIL(FP_ERR_LIMIT, "part2: %zu patients at one site; at most 1000000", table->n);
			goto fail;
		}
		t->n = (int)table->n;
		size_t n = table->n, np;
		FP_CHECK(st, fp_size_mul(n, (size_t)t->p, &np, "part2 design"));
		FP_CHECK(st, fp_alloc_array(np, sizeof(float), &v, "part2 design")); t->x = v;
		for (size_t i = 0; i < np; i++) t->x[i] = (float)design[i];
		FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); t->time = v;
		FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); t->event = v;
		FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); t->ostime = v;
		FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); t->osevent = v;
		FP_CHECK(st, fp_alloc_array(n, sizeof(int), &v, "part2")); t->regimen = v;
		for (size_t i = 0; i < n; i++) {
			t->time[i] = (float)table->rfs_time[i];
			t->event[i] = (float)table->rfs_event[i];
			int has_os = !isnan(table->os_time[i]) && table->os_event[i] >= 0;
			t->ostime[i] = has_os ? (float)table->os_time[i] : NAN;
			t->osevent[i] = has_os ? (float)table->os_event[i] : 0.0f;
			t->regimen[i] = table->regimen[i];
		}
		t->strata[0] = 0;
		t->strata[1] = t->n;
	} else {
		/* The coordinator has no rows; its names follow fp_p2_standardise's rule. */
		FP_CHECK(st, fp_calloc_array((size_t)t->p, FP_P2_NAME_MAX, &v, "part2 names")); t->names = v;
		int w = pooled->p;
		for (int j = 0; j < pooled->p; j++) {
			snprintf(t->names[j], FP_P2_NAME_MAX, "%s", pooled->names[j]);
			if (pooled->count[j] < (double)pooled->n_patients)
				snprintf(t->names[w++], FP_P2_NAME_MAX, "%.36s_missing", pooled->names[j]);
		}
	}
	struct fp_kernels_options ko;
	fp_kernels_options_default(&ko);
	ko.threads = 1;
	FP_CHECK(st, fp_kernels_create(&ko, &t->k));
	FP_CHECK(st, build_model(t, t->n > 2 ? t->n : 2, &t->cfg));
	FP_CHECK(st, fp_alloc_array(t->n_params, sizeof(float), &v, "part2 weights")); t->w_new = v;
	*out = t;
	t = NULL;
fail:
	free(design);
	fp_p2_trainer_destroy(t);
	return st;
}

enum fp_status fp_p2_trainer_create(const struct fp_p2_table *table, const struct fp_p2_stats *pooled,
                                    const struct fp_part2_config *cfg, struct fp_p2_trainer **out)
{
	if (cfg->kind == FP_P2_MIL)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: a MIL configuration needs the tile-embedding bags "
		               "(fp_p2_trainer_create_mil)");
	return trainer_create(table, NULL, 0, pooled, cfg, out);
}

enum fp_status fp_p2_trainer_create_mil(const struct fp_p2_table *table, const struct fp_part2_bags *bags, int e,
                                        const struct fp_p2_stats *pooled, const struct fp_part2_config *cfg,
                                        struct fp_p2_trainer **out)
{
	*out = NULL;
	if (cfg->kind != FP_P2_MIL) return FP_FAIL(FP_ERR_INVALID_ARG, "part2: fp_p2_trainer_create_mil needs kind mil");
	if (table && (!bags || bags->n < 0 || (size_t)bags->n != table->n))
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil at %s: %d bags for %zu patients", table->site,
		               bags ? bags->n : 0, table->n);
	if (bags && bags->e != e)
		return FP_FAIL(FP_ERR_DATA, "part2 mil: the bags hold embeddings of width %d, the model %d", bags->e, e);
	return trainer_create(table, bags, e, pooled, cfg, out);
}

static struct fp_part2_batch batch_of(const struct fp_p2_trainer *t)
{
	struct fp_part2_batch b = {t->n, t->p, t->x, t->regimen, t->time, t->event, t->ostime, t->osevent, 1, t->strata};
	return b;
}

static enum fp_status p2_init(void *ctx, float *w)
{
	struct fp_p2_trainer *t = ctx;
	return t->mil ? fp_part2_mil_get_params(t->mil, w) : fp_part2_get_params(t->m, w);
}

static enum fp_status p2_train(void *ctx, const float *weights, int64_t round, const struct fp_study_plan *plan,
                               float *update, uint64_t *n_samples, double *loss)
{
	struct fp_p2_trainer *t = ctx;
	(void)round;
	if (t->n == 0) return FP_FAIL(FP_ERR_STATE, "part2: this trainer has no patients (coordinator side)");
	/* epochs count in the configuration's steps, not in t->cfg.steps, which
	 * holds the rounds' count once rebuilt below */
	long steps = plan->local_steps > 0 ? plan->local_steps : plan->local_epochs * t->epoch_steps;
	/* The model holds its own config copy: rebuild it only when the plan
	 * asks for another step count (once, at the first round). */
	if (steps != t->cfg.steps) {
		struct fp_part2_config c = t->cfg;
		c.steps = steps;
		FP_TRY(build_model(t, t->n, &c));
		t->cfg = c;
	}
	struct fp_part2_batch b = batch_of(t);
	struct fp_part2_loss l;
	if (t->mil) {
		FP_TRY(fp_part2_mil_set_params(t->mil, weights));
		FP_TRY(fp_part2_mil_train(t->mil, &b, t->bags, weights, plan->fedprox_mu, &l));
		FP_TRY(fp_part2_mil_get_params(t->mil, t->w_new));
	} else {
		FP_TRY(fp_part2_set_params(t->m, weights));
		FP_TRY(fp_part2_train(t->m, &b, weights, plan->fedprox_mu, &l));
		FP_TRY(fp_part2_get_params(t->m, t->w_new));
	}
	for (size_t i = 0; i < t->n_params; i++) update[i] = t->w_new[i] - weights[i];
	*n_samples = (uint64_t)t->n;
	*loss = l.total;
	return FP_OK;
}

void fp_p2_trainer_local(struct fp_p2_trainer *t, struct fp_local_trainer *out)
{
	out->ctx = t;
	out->n_params = t->n_params;
	out->init_weights = p2_init;
	out->train = p2_train;
}

enum fp_status fp_p2_trainer_baseline(struct fp_p2_trainer *t, const float *weights, double h0[FP_P2_N_HORIZONS])
{
	if (t->n == 0) return FP_FAIL(FP_ERR_STATE, "part2: a baseline needs the site's patients");
	struct fp_part2_batch b = batch_of(t);
	if (t->mil) {
		FP_TRY(fp_part2_mil_set_params(t->mil, weights));
		return fp_part2_mil_baseline(t->mil, &b, t->bags, fp_p2_horizons, FP_P2_N_HORIZONS, h0);
	}
	FP_TRY(fp_part2_set_params(t->m, weights));
	return fp_part2_baseline(t->m, &b, fp_p2_horizons, FP_P2_N_HORIZONS, h0);
}

const char (*fp_p2_trainer_names(const struct fp_p2_trainer *t))[FP_P2_NAME_MAX]
{
	return (const char(*)[FP_P2_NAME_MAX])t->names;
}

/* ---- Part 1 ---- */

struct fp_p1_trainer {
	struct fp_kernels *k;
	struct fp_site_data *data;
	struct fp_model *model;
	struct fp_trainer *trainer;
	struct fp_batch_source src;
	struct fp_augment aug;
	int batch, s;
	uint64_t seed;
	int64_t round;
	size_t n_params, n_tiles;
	uint8_t *rgb;
};

void fp_p1_trainer_destroy(struct fp_p1_trainer *t)
{
	if (!t) return;
	fp_trainer_destroy(t->trainer);
	fp_model_destroy(t->model);
	fp_site_data_destroy(t->data);
	fp_kernels_destroy(t->k);
	free(t->rgb);
	free(t);
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

/* Batch `step` of the current round: depends on (seed, round, step) only. */
static enum fp_status p1_next(void *ctx, long step, float *x, int32_t *labels, int *n)
{
	struct fp_p1_trainer *t = ctx;
	uint32_t ts = fp_site_data_tile_size(t->data);
	size_t per = fp_model_input_floats(t->model);
	uint64_t base = mix64(mix64(t->seed ^ 0x5031ULL) + (uint64_t)t->round) + (uint64_t)step * (uint64_t)t->batch;
	for (int b = 0; b < t->batch; b++) {
		uint64_t draw = mix64(base + (uint64_t)b);
		const struct fp_site_tile *tile = fp_site_data_tile(t->data, (size_t)(draw % t->n_tiles));
		FP_TRY(fp_tile_reader_read(fp_site_data_reader(t->data), tile->slide, tile->tile, FP_TILE_U8_HWC, t->rgb));
		FP_TRY(fp_tile_to_input(t->rgb, ts, t->s, &t->aug, t->seed, draw, x + (size_t)b * per));
		labels[b] = tile->label;
	}
	*n = t->batch;
	return FP_OK;
}

enum fp_status fp_p1_trainer_create(const struct fp_train_config *c, struct fp_p1_trainer **out)
{
	enum fp_status st;
	char path[4096], labels[4096];
	struct fp_kernels_options ko;
	struct fp_tilenet_config mc;
	struct fp_train_options to;
	struct fp_p1_trainer *t = calloc(1, sizeof *t);
	void *v;
	*out = NULL;
	if (!t) return FP_FAIL(FP_ERR_NOMEM, "part1 trainer");
	fp_kernels_options_default(&ko);
	ko.backend = c->backend == FP_TRAIN_CUDA ? FP_BACKEND_CUDA : FP_BACKEND_CPU;
	ko.threads = (int)c->threads;
	FP_CHECK(st, fp_kernels_create(&ko, &t->k));
	fp_train_config_resolve(c, c->caches, path, sizeof path);
	fp_train_config_resolve(c, c->labels == FP_LABELS_TRUTH ? c->truth_dir : c->label_csv, labels, sizeof labels);
	FP_CHECK(st, fp_site_data_open(path, (enum fp_label_source)c->labels, labels, c->min_label_share, &t->data));
	t->n_tiles = fp_site_data_count(t->data);
	if (t->n_tiles == 0) {
		st = FP_FAIL(FP_ERR_DATA, "part1: no labelled tiles in %s (labels from %s)", path, labels);
		goto fail;
	}
	fp_tilenet_config_default(&mc);
	mc.input_size = (int)c->input_size;
	mc.width[0] = (int)c->width1;
	mc.width[1] = (int)c->width2;
	mc.width[2] = (int)c->width3;
	mc.blocks = (int)c->blocks;
	mc.groups = (int)c->groups;
	FP_CHECK(st, fp_tilenet_config_check(&mc));
	t->s = mc.input_size;
	if (fp_site_data_tile_size(t->data) % (uint32_t)t->s) {
		st = FP_FAIL(FP_ERR_CONFIG, "part1: model.input_size %d does not divide the caches' %u px tiles", t->s,
		             fp_site_data_tile_size(t->data));
		goto fail;
	}
	t->batch = (int)c->batch;
	t->seed = (uint64_t)c->seed;
	FP_CHECK(st, fp_model_create_tilenet(t->k, &mc, t->batch, t->seed, &t->model));
	t->n_params = fp_model_n_params(t->model);
	/* A round is a few steps from fresh optimiser state: a constant rate,
	 * no warm-up; the round's FedProx mu comes from the plan. */
	fp_train_options_default(&to);
	to.optimizer = (enum fp_optimizer)c->optimizer;
	to.lr = c->lr;
	to.weight_decay = c->weight_decay;
	to.momentum = c->momentum;
	to.clip_norm = c->clip_norm;
	to.warmup_steps = 0;
	to.schedule = FP_LR_CONSTANT;
	FP_CHECK(st, fp_trainer_create(t->model, &to, &t->trainer));
	t->aug.flips = c->flips;
	t->aug.rot90 = c->rot90;
	t->aug.hed_jitter = c->hed_jitter;
	t->aug.brightness = c->brightness;
	t->aug.contrast = c->contrast;
	uint32_t ts = fp_site_data_tile_size(t->data);
	FP_CHECK(st, fp_alloc_array((size_t)ts * ts, 3, &v, "part1 tile")); t->rgb = v;
	t->src.ctx = t;
	t->src.next = p1_next;
	t->src.n_examples = (uint64_t)t->n_tiles;
	*out = t;
	t = NULL;
fail:
	fp_p1_trainer_destroy(t);
	return st;
}

static enum fp_status p1_init(void *ctx, float *w)
{
	struct fp_p1_trainer *t = ctx;
	return fp_model_get_params(t->model, w, t->n_params);
}

static enum fp_status p1_train(void *ctx, const float *weights, int64_t round, const struct fp_study_plan *plan,
                               float *update, uint64_t *n_samples, double *loss)
{
	struct fp_p1_trainer *t = ctx;
	struct fp_local_options lo = {plan->local_steps, plan->local_epochs, t->batch, plan->fedprox_mu, 1};
	struct fp_local_result res;
	t->round = round;
	FP_TRY(fp_train_local_update(t->trainer, weights, t->n_params, &t->src, &lo, update, &res));
	*n_samples = res.n_examples;
	*loss = res.mean_loss;
	return FP_OK;
}

void fp_p1_trainer_local(struct fp_p1_trainer *t, struct fp_local_trainer *out)
{
	out->ctx = t;
	out->n_params = t->n_params;
	out->init_weights = p1_init;
	out->train = p1_train;
}

enum fp_status fp_p1_trainer_save(struct fp_p1_trainer *t, const float *weights, int64_t rounds, const char *path)
{
	struct fp_train_state ts;
	memset(&ts, 0, sizeof ts);
	ts.seed = t->seed;
	ts.epoch = (long)rounds;
	snprintf(ts.run_config, sizeof ts.run_config, "federated global model after %lld round(s)", (long long)rounds);
	FP_TRY(fp_model_set_params(t->model, weights, t->n_params));
	FP_TRY(fp_trainer_reset(t->trainer));
	return fp_checkpoint_save(t->trainer, &ts, path);
}
