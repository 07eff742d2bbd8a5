/*
 * site_data.c: a site's tile caches with per-tile labels and patients
 * (fp_site_train.h; the label rules are in docs/TRAINING.md, "Labels").
 *
 * Truth labels (phantom cohorts): the caches folder's manifest.jsonl (from
 * `fedpath tile`) names each cache's slide file; truth/slides.csv maps the
 * slide file to its patient; truth/classmaps/<patient>.classmap holds the
 * class of every 16 um cell. A tile's label comes from the cells whose
 * centres fall inside its footprint.
 * CSV labels: slide_uid,x,y,label (or consensus),patient_id per tile, with
 * (x, y) the tile's level-0 top-left corner as stored in the cache.
 * Every count and size read from a file is checked before it is used.
 */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_site_train.h"
#include "fp_synth.h"
#include "fp_tile_cache.h"
#include "train_internal.h"

#define MAX_SLIDES 100000
#define MAX_CLASSMAP_BYTES (256u << 20)
#define MAX_LABEL_CSV_BYTES (512u << 20)
/* A tile is lymphocyte-dense or vascular invasion when that class covers at
 * least this share of it, whatever the majority (both are small structures). */
#define SMALL_CLASS_SHARE 0.25

struct slide {
	char path[4096];
	char uid[65];
	uint64_t n;
	int32_t *xy;          /* (n, 2) level-0 top-left corners */
	double target_mpp;
	int32_t patient;
};

struct fp_site_data {
	struct slide *slides;
	size_t n_slides;
	char (*patients)[65];
	size_t n_patients, cap_patients;
	struct fp_site_tile *tiles;
	size_t n_tiles, cap_tiles;
	uint32_t tile_size;
	struct fp_tile_reader *reader;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum fp_status fp_train_list_caches(const char *dir, char ***names, size_t *n)
{
	DIR *d = opendir(dir);
	size_t cap = 0;
	*names = NULL;
	*n = 0;
	if (!d) return FP_FAIL(FP_ERR_NOT_FOUND, "caches folder %s cannot be opened", dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 4 || strcmp(e->d_name + len - 3, ".h5") != 0) continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			char **nn = cap <= MAX_SLIDES ? realloc(*names, cap * sizeof(char *)) : NULL;
			if (!nn) {
				closedir(d);
				return FP_FAIL(FP_ERR_LIMIT, "caches folder %s: more than %d caches or out of memory", dir, MAX_SLIDES);
			}
			*names = nn;
		}
		(*names)[(*n)++] = strdup(e->d_name);
		if (!(*names)[*n - 1]) {
			closedir(d);
			return FP_FAIL(FP_ERR_NOMEM, "caches folder %s", dir);
		}
	}
	closedir(d);
	if (*n == 0) return FP_FAIL(FP_ERR_NOT_FOUND, "caches folder %s holds no *.h5 tile cache", dir);
	qsort(*names, *n, sizeof(char *), cmp_str);
	return FP_OK;
}

static enum fp_status add_patient(struct fp_site_data *d, const char *id, int32_t *out)
{
	for (size_t i = 0; i < d->n_patients; i++)
		if (strcmp(d->patients[i], id) == 0) {
			*out = (int32_t)i;
			return FP_OK;
		}
	if (strlen(id) == 0 || strlen(id) > 64) return FP_FAIL(FP_ERR_FORMAT, "patient id '%s' is empty or longer than 64", id);
	if (d->n_patients == d->cap_patients) {
		size_t cap = d->cap_patients ? 2 * d->cap_patients : 64;
		void *p = realloc(d->patients, cap * sizeof *d->patients);
		if (!p) return FP_FAIL(FP_ERR_NOMEM, "patients");
		d->patients = p;
		d->cap_patients = cap;
	}
	snprintf(d->patients[d->n_patients], 65, "%s", id);
	*out = (int32_t)d->n_patients++;
	return FP_OK;
}

static enum fp_status add_tile(struct fp_site_data *d, uint32_t s, uint64_t t, int32_t label, int32_t patient)
{
	if (d->n_tiles == d->cap_tiles) {
		size_t cap = d->cap_tiles ? 2 * d->cap_tiles : 4096;
		void *p = realloc(d->tiles, cap * sizeof *d->tiles);
		if (!p) return FP_FAIL(FP_ERR_NOMEM, "tile labels (%zu)", cap);
		d->tiles = p;
		d->cap_tiles = cap;
	}
	struct fp_site_tile *x = &d->tiles[d->n_tiles++];
	x->slide = s;
	x->tile = t;
	x->label = label;
	x->patient = patient;
	return FP_OK;
}

/* Reads coords, uid and target mpp of one cache. */
static enum fp_status read_slide(struct slide *s, uint32_t *tile_size)
{
	struct fp_tile_cache *c = NULL;
	enum fp_status st;
	char *pj = NULL;
	json_t *root = NULL;
	FP_TRY(fp_tile_cache_open(s->path, &c));
	s->n = fp_tile_cache_count(c);
	if (*tile_size && fp_tile_cache_tile_size(c) != *tile_size) {
		st = FP_FAIL(FP_ERR_DATA, "tile cache %s has %u px tiles, the others %u px", s->path,
		             fp_tile_cache_tile_size(c), *tile_size);
		goto fail;
	}
	*tile_size = fp_tile_cache_tile_size(c);
	FP_CHECK(st, fp_tile_cache_attr(c, "slide_uid", s->uid, sizeof s->uid));
	pj = malloc(65536);
	if (!pj) {
		st = FP_FAIL(FP_ERR_NOMEM, "tile cache %s", s->path);
		goto fail;
	}
	FP_CHECK(st, fp_tile_cache_attr(c, "params_json", pj, 65536));
	root = json_loads(pj, 0, NULL);
	json_t *tm = root ? json_object_get(root, "target_mpp") : NULL;
	s->target_mpp = tm ? json_number_value(tm) : 0.0;
	if (!(s->target_mpp > 0)) {
		st = FP_FAIL(FP_ERR_FORMAT, "tile cache %s: params_json has no positive target_mpp", s->path);
		goto fail;
	}
	if (s->n > 0) {
		FP_CHECK(st, fp_calloc_array(s->n, 2 * sizeof(int32_t), (void **)&s->xy, "tile coords"));
		for (uint64_t i = 0; i < s->n; i++)
			FP_CHECK(st, fp_tile_cache_coords(c, i, &s->xy[2 * i], &s->xy[2 * i + 1]));
	}
	st = FP_OK;
fail:
	json_decref(root);
	free(pj);
	fp_tile_cache_close(c);
	return st;
}

/* ---- truth labels ---- */

struct classmap {
	uint32_t w, h, l0w, l0h;
	double mpp, um;
	uint8_t *px; /* owned buffer base; map at px + 40 */
};

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static double get_f64(const uint8_t *p)
{
	uint64_t v = 0;
	double d;
	for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
	memcpy(&d, &v, 8);
	return d;
}

static enum fp_status load_classmap(const char *path, struct classmap *m)
{
	void *payload = NULL;
	size_t len = 0;
	uint32_t ver;
	FP_TRY(fp_file_read_framed(path, FP_SYNTH_CLASSMAP_MAGIC, 1, MAX_CLASSMAP_BYTES, &ver, &payload, &len));
	const uint8_t *b = payload;
	if (len < 40) goto bad;
	m->w = get_u32(b);
	m->h = get_u32(b + 4);
	m->l0w = get_u32(b + 8);
	m->l0h = get_u32(b + 12);
	m->mpp = get_f64(b + 16);
	m->um = get_f64(b + 24);
	if (get_u32(b + 32) != FP_SYNTH_N_CLASSES || !(m->mpp > 0) || !(m->um > 0) || m->w == 0 || m->h == 0 ||
	    (uint64_t)m->w * m->h != len - 40)
		goto bad;
	m->px = payload;
	return FP_OK;
bad:
	free(payload);
	return FP_FAIL(FP_ERR_FORMAT, "class map %s: header does not match its %zu-byte payload", path, len);
}

static int32_t tme_of_synth(int c)
{
	switch (c) {
	case FP_SYNTH_TUMOUR: return FP_TME_TUMOUR;
	case FP_SYNTH_LIVER: return FP_TME_LIVER;
	case FP_SYNTH_STROMA: return FP_TME_STROMA;
	case FP_SYNTH_LYMPHOCYTES: return FP_TME_LYMPHOCYTES;
	case FP_SYNTH_NECROSIS: return FP_TME_NECROSIS;
	case FP_SYNTH_THROMBUS: return FP_TME_VASCULAR_INVASION;
	default: return FP_TME_OTHER; /* glass, vessel lumen */
	}
}

/* TME label of the tile whose level-0 footprint is [x, x+f) x [y, y+f);
 * -1 when its label covers less than min_share. */
static int32_t tile_label(const struct classmap *m, double x, double y, double f, double min_share)
{
	double votes[FP_TME_N_CLASSES] = {0}, total = 0;
	double s = m->mpp / m->um; /* map cells per level-0 pixel */
	long mx0 = (long)floor(x * s), mx1 = (long)ceil((x + f) * s), my0 = (long)floor(y * s), my1 = (long)ceil((y + f) * s);
	for (long my = my0 < 0 ? 0 : my0; my < my1 && my < (long)m->h; my++)
		for (long mx = mx0 < 0 ? 0 : mx0; mx < mx1 && mx < (long)m->w; mx++) {
			double cx = (mx + 0.5) / s, cy = (my + 0.5) / s;
			if (cx < x || cx >= x + f || cy < y || cy >= y + f) continue;
			votes[tme_of_synth(m->px[40 + (size_t)my * m->w + (size_t)mx])] += 1;
			total += 1;
		}
	if (total == 0) return -1;
	if (votes[FP_TME_VASCULAR_INVASION] >= SMALL_CLASS_SHARE * total) return FP_TME_VASCULAR_INVASION;
	if (votes[FP_TME_LYMPHOCYTES] >= SMALL_CLASS_SHARE * total) return FP_TME_LYMPHOCYTES;
	int best = 0;
	for (int c = 1; c < FP_TME_N_CLASSES; c++)
		if (votes[c] > votes[best]) best = c;
	return votes[best] >= min_share * total ? best : -1;
}

/* slide_uid -> slide file base name, from caches/manifest.jsonl. */
static enum fp_status manifest_slide(const char *caches, const char *uid, char *base, size_t size)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/manifest.jsonl", caches);
	FILE *f = fopen(path, "r");
	char line[16384];
	int found = 0;
	if (!f) return FP_FAIL(FP_ERR_NOT_FOUND, "%s is missing: truth labels need the manifest 'fedpath tile' writes", path);
	while (!found && fgets(line, sizeof line, f)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *u = json_string_value(json_object_get(j, "slide_uid"));
		const char *s = json_string_value(json_object_get(j, "slide"));
		if (u && s && strcmp(u, uid) == 0) {
			const char *b = strrchr(s, '/');
			snprintf(base, size, "%s", b ? b + 1 : s);
			found = 1;
		}
		json_decref(j);
	}
	fclose(f);
	if (!found) return FP_FAIL(FP_ERR_NOT_FOUND, "%s names no slide for cache %s", path, uid);
	return FP_OK;
}

/* slide file -> patient id, from truth/slides.csv (columns slide_file,centre,patient_id,...). */
static enum fp_status truth_patient(const char *truth, const char *slide_file, char *pid, size_t size)
{
	char path[4096], line[4096];
	snprintf(path, sizeof path, "%s/slides.csv", truth);
	FILE *f = fopen(path, "r");
	if (!f) return FP_FAIL(FP_ERR_NOT_FOUND, "%s cannot be opened (labels = truth needs a phantom truth folder)", path);
	int found = 0;
	if (!fgets(line, sizeof line, f) || strncmp(line, "slide_file,centre,patient_id,", 29) != 0) {
		fclose(f);
		return FP_FAIL(FP_ERR_FORMAT, "%s:1: expected the header slide_file,centre,patient_id,...", path);
	}
	while (!found && fgets(line, sizeof line, f)) {
		char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL, *c3 = c2 ? strchr(c2 + 1, ',') : NULL;
		if (!c3) continue;
		*c1 = '\0';
		*c3 = '\0';
		if (strcmp(line, slide_file) == 0) {
			snprintf(pid, size, "%s", c2 + 1);
			found = 1;
		}
	}
	fclose(f);
	if (!found) return FP_FAIL(FP_ERR_NOT_FOUND, "%s has no row for slide %s", path, slide_file);
	return FP_OK;
}

static enum fp_status label_truth(struct fp_site_data *d, const char *caches, const char *truth, double min_share)
{
	enum fp_status st = FP_OK;
	for (uint32_t s = 0; s < d->n_slides && st == FP_OK; s++) {
		struct slide *sl = &d->slides[s];
		char base[1024], pid[128], path[4096];
		struct classmap m = {0};
		FP_TRY(manifest_slide(caches, sl->uid, base, sizeof base));
		FP_TRY(truth_patient(truth, base, pid, sizeof pid));
		FP_TRY(add_patient(d, pid, &sl->patient));
		snprintf(path, sizeof path, "%s/classmaps/%s.classmap", truth, pid);
		FP_TRY(load_classmap(path, &m));
		double f = (double)d->tile_size * sl->target_mpp / m.mpp;
		for (uint64_t i = 0; i < sl->n && st == FP_OK; i++) {
			int32_t lab = tile_label(&m, sl->xy[2 * i], sl->xy[2 * i + 1], f, min_share);
			if (lab >= 0) st = add_tile(d, s, i, lab, sl->patient);
		}
		free(m.px);
	}
	return st;
}

/* ---- CSV labels ---- */

static int label_of_name(const char *s)
{
	for (int c = 0; c < FP_TME_N_CLASSES; c++)
		if (strcmp(s, fp_tme_class_name(c)) == 0) return c;
	char *end;
	long v = strtol(s, &end, 10);
	return (*s && !*end && v >= 0 && v < FP_TME_N_CLASSES) ? (int)v : -1;
}

static enum fp_status label_csv(struct fp_site_data *d, const char *path)
{
	char *text = NULL, *save = NULL;
	size_t len;
	enum fp_status st = FP_OK;
	int col_uid = -1, col_x = -1, col_y = -1, col_label = -1, col_pid = -1, ncol = 0;
	FP_TRY(fp_file_read_all(path, MAX_LABEL_CSV_BYTES, &text, &len));
	char *line = strtok_r(text, "\r\n", &save);
	for (char *p = line, *tok; p; ncol++) {
		tok = p;
		p = strchr(p, ',');
		if (p) *p++ = '\0';
		if (strcmp(tok, "slide_uid") == 0) col_uid = ncol;
		else if (strcmp(tok, "x") == 0) col_x = ncol;
		else if (strcmp(tok, "y") == 0) col_y = ncol;
		else if (strcmp(tok, "consensus") == 0) col_label = ncol;
		else if (strcmp(tok, "label") == 0 && col_label < 0) col_label = ncol;
		else if (strcmp(tok, "patient_id") == 0) col_pid = ncol;
	}
	if (col_uid < 0 || col_x < 0 || col_y < 0 || col_label < 0 || col_pid < 0) {
		free(text);
		return FP_FAIL(FP_ERR_FORMAT, "%s:1: the header needs slide_uid, x, y, label (or consensus) and patient_id", path);
	}
	long lineno = 1;
	while (st == FP_OK && (line = strtok_r(NULL, "\r\n", &save))) {
		char *cell[64] = {0};
		int n = 0;
		lineno++;
		for (char *p = line; p && n < 64; n++) {
			cell[n] = p;
			p = strchr(p, ',');
			if (p) *p++ = '\0';
		}
		if (n < ncol) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s:%ld: %d cells, the header has %d", path, lineno, n, ncol);
			break;
		}
		int lab = label_of_name(cell[col_label]);
		char *ex, *ey;
		long x = strtol(cell[col_x], &ex, 10), y = strtol(cell[col_y], &ey, 10);
		if (lab < 0 || *ex || *ey) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s:%ld: label '%s' or corner (%s, %s) is not valid", path, lineno,
			             cell[col_label], cell[col_x], cell[col_y]);
			break;
		}
		uint32_t s;
		for (s = 0; s < d->n_slides; s++)
			if (strcmp(d->slides[s].uid, cell[col_uid]) == 0) break;
		if (s == d->n_slides) continue; /* a slide of another site or not tiled: skipped */
		uint64_t t;
		for (t = 0; t < d->slides[s].n; t++)
			if (d->slides[s].xy[2 * t] == x && d->slides[s].xy[2 * t + 1] == y) break;
		if (t == d->slides[s].n) {
			st = FP_FAIL(FP_ERR_DATA, "%s:%ld: slide %s has no tile at (%ld, %ld)", path, lineno, cell[col_uid], x, y);
			break;
		}
		int32_t pid;
		st = add_patient(d, cell[col_pid], &pid);
		if (st == FP_OK) st = add_tile(d, s, t, lab, pid);
	}
	free(text);
	return st;
}

enum fp_status fp_site_data_open(const char *caches, enum fp_label_source src, const char *labels,
                                 double min_label_share, struct fp_site_data **out)
{
	struct fp_site_data *d = calloc(1, sizeof *d);
	char **names = NULL;
	size_t n = 0;
	const char **paths = NULL;
	enum fp_status st;
	*out = NULL;
	if (!d) return FP_FAIL(FP_ERR_NOMEM, "site data");
	FP_CHECK(st, fp_train_list_caches(caches, &names, &n));
	d->slides = calloc(n, sizeof *d->slides);
	paths = calloc(n, sizeof *paths);
	if (!d->slides || !paths) {
		st = FP_FAIL(FP_ERR_NOMEM, "site data: %zu slides", n);
		goto fail;
	}
	d->n_slides = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(d->slides[i].path, sizeof d->slides[i].path, "%s/%s", caches, names[i]);
		d->slides[i].patient = -1;
		paths[i] = d->slides[i].path;
		FP_CHECK(st, read_slide(&d->slides[i], &d->tile_size));
	}
	if (labels && src == FP_LABELS_TRUTH) FP_CHECK(st, label_truth(d, caches, labels, min_label_share));
	if (labels && src == FP_LABELS_CSV) FP_CHECK(st, label_csv(d, labels));
	FP_CHECK(st, fp_tile_reader_open(paths, n, &d->reader));
	*out = d;
	d = NULL;
fail:
	for (size_t i = 0; i < n; i++) free(names[i]);
	free(names);
	free(paths);
	fp_site_data_destroy(d);
	return st;
}

void fp_site_data_destroy(struct fp_site_data *d)
{
	if (!d) return;
	for (size_t i = 0; i < d->n_slides; i++) free(d->slides[i].xy);
	free(d->slides);
	free(d->patients);
	free(d->tiles);
	fp_tile_reader_destroy(d->reader);
	free(d);
}

size_t fp_site_data_count(const struct fp_site_data *d) { return d->n_tiles; }
const struct fp_site_tile *fp_site_data_tile(const struct fp_site_data *d, size_t i) { return &d->tiles[i]; }
size_t fp_site_data_slides(const struct fp_site_data *d) { return d->n_slides; }
const char *fp_site_data_slide_uid(const struct fp_site_data *d, uint32_t s) { return d->slides[s].uid; }
const char *fp_site_data_slide_path(const struct fp_site_data *d, uint32_t s) { return d->slides[s].path; }
size_t fp_site_data_patients(const struct fp_site_data *d) { return d->n_patients; }
const char *fp_site_data_patient_id(const struct fp_site_data *d, int32_t p) { return d->patients[p]; }
uint32_t fp_site_data_tile_size(const struct fp_site_data *d) { return d->tile_size; }
struct fp_tile_reader *fp_site_data_reader(struct fp_site_data *d) { return d->reader; }

enum fp_status fp_site_data_coords(const struct fp_site_data *d, uint32_t s, uint64_t t, int32_t *x, int32_t *y)
{
	if (s >= d->n_slides || t >= d->slides[s].n)
		return FP_FAIL(FP_ERR_INVALID_ARG, "site data: tile %llu of slide %u does not exist", (unsigned long long)t, s);
	*x = d->slides[s].xy[2 * t];
	*y = d->slides[s].xy[2 * t + 1];
	return FP_OK;
}

uint64_t fp_site_data_slide_tiles(const struct fp_site_data *d, uint32_t s) { return d->slides[s].n; }
double fp_site_data_slide_mpp(const struct fp_site_data *d, uint32_t s) { return d->slides[s].target_mpp; }

void fp_site_data_class_counts(const struct fp_site_data *d, uint64_t counts[FP_TME_N_CLASSES])
{
	memset(counts, 0, FP_TME_N_CLASSES * sizeof counts[0]);
	for (size_t i = 0; i < d->n_tiles; i++) counts[d->tiles[i].label]++;
}

enum fp_status fp_site_split(const struct fp_site_data *d, double val_fraction, uint64_t seed,
                             unsigned char *is_val)
{
	size_t np = d->n_patients;
	if (!(val_fraction >= 0 && val_fraction < 1))
		return FP_FAIL(FP_ERR_INVALID_ARG, "split: val_fraction %g must be in [0, 1)", val_fraction);
	memset(is_val, 0, np);
	if (val_fraction == 0 || np < 2) return FP_OK;
	size_t want = (size_t)ceil(val_fraction * (double)np);
	if (want < 1) want = 1;
	if (want >= np) want = np - 1;
	/* Rank patients by a hash of (seed, id): the split does not depend on
	 * the order caches are listed in or on which other patients exist. */
	uint64_t *key = malloc(np * sizeof *key);
	if (!key) return FP_FAIL(FP_ERR_NOMEM, "split");
	for (size_t p = 0; p < np; p++) {
		uint64_t h = 1469598103934665603ULL;
		for (const char *c = d->patients[p]; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
		key[p] = fp_train_mix(seed, FP_RNG_SPLIT, h);
	}
	for (size_t k = 0; k < want; k++) {
		size_t best = SIZE_MAX;
		for (size_t p = 0; p < np; p++)
			if (!is_val[p] && (best == SIZE_MAX || key[p] < key[best])) best = p;
		is_val[best] = 1;
	}
	free(key);
	return FP_OK;
}
