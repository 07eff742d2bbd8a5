/*
 * synth.c: one run of the phantom cohort generator (fp_synth_generate).
 *
 * Takes validated parameters and an output folder; draws the cohort
 * (synth_cohort.c), then renders every slide (synth_tissue.c + synth_tiff.c)
 * on `threads` workers, each slide a pure function of (seed, centre, patient),
 * so the files do not depend on scheduling. Everything goes to
 * DIR/.synth-partial-<pid>/ first; only when all of it succeeded are the
 * entries moved into DIR and cohort.json written, last. A failed run removes
 * its staging folder and leaves DIR as it was (with --force: without the old
 * cohort.json, so it never looks complete).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp_common.h"
#include "synth_internal.h"

#define STAGE_PREFIX ".synth-partial-"
#define PATH_MAX_SYNTH 4096

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int rm_tree(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : -1;
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A staging folder of a process that no longer runs. */
static int stale_stage(const char *name)
{
	if (strncmp(name, STAGE_PREFIX, strlen(STAGE_PREFIX)) != 0) return 0;
	long pid = strtol(name + strlen(STAGE_PREFIX), NULL, 10);
	return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Creates `dir` or checks that it is empty; removes stale staging folders. */
static enum fp_status prepare_out_dir(const char *dir, int force)
{
	struct stat sb;
	if (stat(dir, &sb) != 0) {
		if (errno != ENOENT) return FP_FAIL(FP_ERR_IO, "cannot use output folder %s: %s", dir, strerror(errno));
		return fp_mkdir_p(dir, 0755);
	}
	if (!S_ISDIR(sb.st_mode)) return FP_FAIL(FP_ERR_EXISTS, "output path %s exists and is not a folder", dir);
	DIR *d = opendir(dir);
	if (!d) return FP_FAIL(FP_ERR_IO, "cannot read output folder %s: %s", dir, strerror(errno));
	char first[256] = "";
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
		if (stale_stage(e->d_name)) {
			char p[PATH_MAX_SYNTH];
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			rm_tree(p);
			continue;
		}
		if (!first[0]) snprintf(first, sizeof first, "%s", e->d_name);
	}
	closedir(d);
	if (first[0] && !force)
		return FP_FAIL(FP_ERR_EXISTS, "output folder %s is not empty (it holds '%s'); choose an empty folder "
		               "or pass --force to replace the cohort in it", dir, first);
	if (access(dir, W_OK) != 0) return FP_FAIL(FP_ERR_IO, "output folder %s is not writable: %s", dir, strerror(errno));
	return FP_OK;
}

/* snprintf into a path buffer, failing instead of truncating. */
static enum fp_status __attribute__((format(printf, 3, 4))) path_fmt(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= n) return FP_FAIL(FP_ERR_INVALID_ARG, "path too long (limit %zu bytes)", n - 1);
	return FP_OK;
}

/* ---- per-slide work ---- */

struct slide_result {
	uint64_t bytes, pixels;
	uint32_t width, height, map_w, map_h, levels;
	double frac[FP_SYNTH_N_CLASSES];
};

struct run {
	const struct fp_synth_params *p;
	const char *stage;
	struct fp_synth_patient *pts;
	size_t n;
	struct synth_scanner *scanners;
	struct slide_result *res;
	atomic_size_t next;
	atomic_int stop;
	pthread_mutex_t mu;
	enum fp_status err;
	char err_msg[FP_ERROR_MSG_MAX];
	struct fp_progress *prog;
};

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_f64(uint8_t *p, double d)
{
	uint64_t v;
	memcpy(&v, &d, 8);
	for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Class map file: framed (fp_file.h), magic FPCLSMAP, version 1; payload =
 * 40-byte little-endian header (u32 map_w, map_h, level0_w, level0_h; f64
 * level-0 mpp, map um per pixel; u32 n_classes, 0) + map_h x map_w uint8. */
static enum fp_status write_classmap(const char *path, const struct synth_slide_geom *g, const uint8_t *map)
{
	size_t n = (size_t)g->map_w * g->map_h, len = 40 + n;
	uint8_t *buf = malloc(len);
	if (!buf) return FP_FAIL(FP_ERR_NOMEM, "class map %s: out of memory", path);
	put_u32(buf, g->map_w);
	put_u32(buf + 4, g->map_h);
	put_u32(buf + 8, g->width);
	put_u32(buf + 12, g->height);
	put_f64(buf + 16, g->mpp);
	put_f64(buf + 24, FP_SYNTH_MAP_UM);
	put_u32(buf + 32, FP_SYNTH_N_CLASSES);
	put_u32(buf + 36, 0);
	memcpy(buf + 40, map, n);
	enum fp_status st = fp_file_commit_framed(path, FP_SYNTH_CLASSMAP_MAGIC, 1, buf, len, 0644);
	free(buf);
	return st;
}

static enum fp_status render_one(struct run *r, size_t k)
{
	const struct fp_synth_patient *pt = &r->pts[k];
	const struct synth_scanner *sc = &r->scanners[pt->centre_index];
	struct synth_slide_geom g;
	synth_slide_geom(r->p->size, sc->mpp, &g);
	struct synth_tissue *t = NULL;
	enum fp_status st;
	char path[PATH_MAX_SYNTH];
	FP_CHECK(st, synth_tissue_create(r->p->seed, pt, sc, &g, &t));
	FP_CHECK(st, path_fmt(path, sizeof path, "%s/truth/classmaps/%s.classmap", r->stage, pt->patient_id));
	FP_CHECK(st, write_classmap(path, &g, synth_tissue_map(t)));
	struct slide_result *res = &r->res[k];
	size_t nm = (size_t)g.map_w * g.map_h;
	const uint8_t *map = synth_tissue_map(t);
	for (size_t i = 0; i < nm; i++) res->frac[map[i]] += 1.0 / (double)nm;
	FP_CHECK(st, path_fmt(path, sizeof path, "%s/%s/slides/%s", r->stage, pt->centre, pt->slide_file));
	struct synth_tiff_meta meta = {r->p->format, sc, pt->label_name, pt->patient_id,
	                               synth_key(r->p->seed, (uint32_t)pt->centre_index, (uint32_t)pt->patient_index,
	                                         SYNTH_P_LABEL)};
	FP_CHECK(st, synth_tiff_write(path, t, &g, &meta, &res->bytes));
	res->width = g.width;
	res->height = g.height;
	res->map_w = g.map_w;
	res->map_h = g.map_h;
	res->pixels = (uint64_t)g.width * g.height;
	synth_tissue_destroy(t);
	return FP_OK;
fail:
	synth_tissue_destroy(t);
	return fp_error_wrap("slide %s", pt->slide_file);
}

static void *worker(void *arg)
{
	struct run *r = arg;
	for (;;) {
		if (atomic_load(&r->stop)) break;
		size_t k = atomic_fetch_add(&r->next, 1);
		if (k >= r->n) break;
		enum fp_status st = render_one(r, k);
		if (st != FP_OK) {
			pthread_mutex_lock(&r->mu);
			if (r->err == FP_OK) {
				r->err = st;
				snprintf(r->err_msg, sizeof r->err_msg, "%s", fp_error_msg());
			}
			pthread_mutex_unlock(&r->mu);
			atomic_store(&r->stop, 1);
			break;
		}
		if (r->prog) fp_progress_add(r->prog, 1);
	}
	return NULL;
}

/* ---- text outputs ---- */

static enum fp_status write_text(const char *path, enum fp_status (*fn)(FILE *, const struct fp_synth_patient *, size_t),
                                 const struct fp_synth_patient *pts, size_t n)
{
	struct fp_file_writer w;
	FP_TRY(fp_file_writer_open(&w, path, 0644));
	enum fp_status st = fn(w.fp, pts, n);
	if (st != FP_OK) {
		fp_file_writer_abort(&w);
		return fp_error_wrap("%s", path);
	}
	return fp_file_writer_commit(&w);
}

static enum fp_status write_slides_csv(const char *path, const struct fp_synth_patient *pts,
                                       const struct slide_result *res, size_t n, const struct synth_scanner *sc)
{
	struct fp_file_writer w;
	FP_TRY(fp_file_writer_open(&w, path, 0644));
	fprintf(w.fp, "slide_file,centre,patient_id,width,height,mpp,file_bytes,map_width,map_height,map_um_per_px");
	for (int c = 0; c < FP_SYNTH_N_CLASSES; c++) fprintf(w.fp, ",frac_%s", fp_synth_class_name((enum fp_synth_class)c));
	fputc('\n', w.fp);
	for (size_t k = 0; k < n; k++) {
		fprintf(w.fp, "%s,%s,%s,%u,%u,%.4f,%" PRIu64 ",%u,%u,%.1f", pts[k].slide_file, pts[k].centre,
		        pts[k].patient_id, res[k].width, res[k].height, sc[pts[k].centre_index].mpp, res[k].bytes,
		        res[k].map_w, res[k].map_h, FP_SYNTH_MAP_UM);
		for (int c = 0; c < FP_SYNTH_N_CLASSES; c++) fprintf(w.fp, ",%.5f", res[k].frac[c]);
		fputc('\n', w.fp);
	}
	if (ferror(w.fp)) {
		fp_file_writer_abort(&w);
		return FP_FAIL(FP_ERR_IO, "writing %s failed", path);
	}
	return fp_file_writer_commit(&w);
}

static json_t *real_array(const double *v, int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
	return a;
}

static json_t *cohort_json(const struct fp_synth_params *p, const struct synth_scanner *sc)
{
	json_t *doc = json_object();
	char seed[32];
	snprintf(seed, sizeof seed, "%" PRIu64, p->seed);
	json_object_set_new(doc, "format", json_string("fedpath-synth-cohort"));
	json_object_set_new(doc, "version", json_integer(FP_SYNTH_VERSION));
	json_object_set_new(doc, "fedpath_version", json_string(fp_version()));
	json_object_set_new(doc, "seed", json_string(seed));
	json_object_set_new(doc, "size", json_string(fp_synth_size_name(p->size)));
	json_object_set_new(doc, "slide_format", json_string(p->format == FP_SYNTH_TIFF ? "tiff" : "svs"));
	json_object_set_new(doc, "n_centres", json_integer(p->centres));
	json_object_set_new(doc, "patients_per_centre", json_integer(p->patients));
	json_object_set_new(doc, "missing_rate", json_real(p->missing_rate));
	json_object_set_new(doc, "clinical_schema_version", json_integer(1));
	json_t *cls = json_array();
	for (int c = 0; c < FP_SYNTH_N_CLASSES; c++) json_array_append_new(cls, json_string(fp_synth_class_name((enum fp_synth_class)c)));
	json_object_set_new(doc, "classes", cls);
	json_t *cm = json_object();
	json_object_set_new(cm, "magic", json_string(FP_SYNTH_CLASSMAP_MAGIC));
	json_object_set_new(cm, "version", json_integer(1));
	json_object_set_new(cm, "um_per_pixel", json_real(FP_SYNTH_MAP_UM));
	json_object_set_new(cm, "layout", json_string("framed file (64-byte header, docs/SYNTH.md); payload: u32 map_w, "
	                                              "map_h, level0_w, level0_h; f64 mpp, um_per_pixel; u32 n_classes, 0; "
	                                              "then map_h x map_w uint8 class codes, little-endian"));
	json_object_set_new(doc, "class_map", cm);
	json_t *centres = json_array();
	for (int c = 0; c < p->centres; c++) {
		const struct synth_scanner *s = &sc[c];
		struct synth_slide_geom g;
		synth_slide_geom(p->size, s->mpp, &g);
		json_t *o = json_object(), *j = json_object(), *rgb = json_object();
		char id[16];
		snprintf(id, sizeof id, "H%02d", c + 1);
		json_object_set_new(o, "id", json_string(id));
		json_object_set_new(o, "slide_width", json_integer(g.width));
		json_object_set_new(o, "slide_height", json_integer(g.height));
		json_object_set_new(j, "name", json_string(s->name));
		json_object_set_new(j, "mpp", json_real(s->mpp));
		json_object_set_new(j, "app_mag", json_integer(s->app_mag));
		json_object_set_new(j, "stain_h", real_array(s->stain_h, 3));
		json_object_set_new(j, "stain_e", real_array(s->stain_e, 3));
		json_object_set_new(j, "h_gain", json_real(s->h_gain));
		json_object_set_new(j, "e_gain", json_real(s->e_gain));
		json_object_set_new(j, "white", real_array(s->white, 3));
		json_object_set_new(j, "blur", json_real(s->blur));
		json_object_set_new(j, "jpeg_quality", json_integer(s->jpeg_quality));
		json_object_set_new(o, "scanner", j);
		for (int k = 0; k < FP_SYNTH_N_CLASSES; k++) {
			uint8_t v[3];
			synth_class_rgb(s, k, v);
			json_t *a = json_array();
			for (int i = 0; i < 3; i++) json_array_append_new(a, json_integer(v[i]));
			json_object_set_new(rgb, fp_synth_class_name((enum fp_synth_class)k), a);
		}
		json_object_set_new(o, "class_rgb", rgb);
		json_array_append_new(centres, o);
	}
	json_object_set_new(doc, "centres", centres);
	json_t *om = json_object(), *co = json_object();
	json_object_set_new(om, "formula", json_string(synth_outcome_formula));
	for (size_t i = 0; i < synth_outcome_n_coefs; i++)
		json_object_set_new(co, synth_outcome_coefs[i].name, json_real(synth_outcome_coefs[i].value));
	json_object_set_new(om, "coefficients", co);
	json_object_set_new(doc, "outcome_model", om);
	json_t *tr = json_object();
	json_object_set_new(tr, "patients", json_string("truth/patients.csv"));
	json_object_set_new(tr, "slides", json_string("truth/slides.csv"));
	json_object_set_new(tr, "class_maps", json_string("truth/classmaps/<patient_id>.classmap"));
	json_object_set_new(doc, "truth", tr);
	json_object_set_new(doc, "complete", json_true());
	return doc;
}

/* ---- publishing ---- */

static enum fp_status move_in(const char *stage, const char *dir, const char *name)
{
	char from[PATH_MAX_SYNTH], to[PATH_MAX_SYNTH];
	FP_TRY(path_fmt(from, sizeof from, "%s/%s", stage, name));
	FP_TRY(path_fmt(to, sizeof to, "%s/%s", dir, name));
	if (rm_tree(to) != 0) return FP_FAIL(FP_ERR_IO, "cannot remove the old %s: %s", to, strerror(errno));
	if (rename(from, to) != 0) return FP_FAIL(FP_ERR_IO, "cannot move %s to %s: %s", from, to, strerror(errno));
	return FP_OK;
}

/* With --force: centre folders of an earlier cohort (Hnn holding a
 * clinical.csv) go too, so a smaller new cohort leaves no stale centre. */
static enum fp_status remove_old_centres(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) return FP_FAIL(FP_ERR_IO, "cannot read output folder %s: %s", dir, strerror(errno));
	enum fp_status st = FP_OK;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (!(n[0] == 'H' && n[1] >= '0' && n[1] <= '9' && n[2] >= '0' && n[2] <= '9' && n[3] == '\0')) continue;
		char p[PATH_MAX_SYNTH];
		struct stat sb;
		if (path_fmt(p, sizeof p, "%s/%s/clinical.csv", dir, n) != FP_OK || stat(p, &sb) != 0) continue;
		if (path_fmt(p, sizeof p, "%s/%s", dir, n) == FP_OK && rm_tree(p) != 0) {
			st = FP_FAIL(FP_ERR_IO, "cannot remove the old centre folder %s: %s", p, strerror(errno));
			break;
		}
	}
	closedir(d);
	return st;
}

enum fp_status fp_synth_generate(const struct fp_synth_params *p, const char *dir, struct fp_synth_report *rep)
{
	enum fp_status st;
	double t0 = fp_now_seconds();
	struct fp_synth_patient *pts = NULL;
	struct synth_scanner *sc = NULL;
	struct slide_result *res = NULL;
	json_t *doc = NULL;
	size_t n = 0;
	int staged = 0, mu_ok = 0;
	char stage[PATH_MAX_SYNTH], path[PATH_MAX_SYNTH];
	struct run r;
	memset(&r, 0, sizeof r);

	FP_TRY(fp_synth_params_check(p));
	if (!dir || !dir[0]) return FP_FAIL(FP_ERR_INVALID_ARG, "no output folder given");
	if (strlen(dir) > PATH_MAX_SYNTH - 128) return FP_FAIL(FP_ERR_INVALID_ARG, "output folder path too long");
	FP_TRY(prepare_out_dir(dir, p->force));
	FP_TRY(path_fmt(stage, sizeof stage, "%s/" STAGE_PREFIX "%ld", dir, (long)getpid()));
	rm_tree(stage);
	FP_CHECK(st, fp_mkdir_p(stage, 0755));
	staged = 1;

	FP_CHECK(st, fp_synth_draw_cohort(p, &pts, &n));
	FP_CHECK(st, fp_calloc_array((size_t)p->centres, sizeof *sc, (void **)&sc, "scanners"));
	FP_CHECK(st, fp_calloc_array(n, sizeof *res, (void **)&res, "slide results"));
	for (int c = 0; c < p->centres; c++) synth_scanner_for_centre(p->seed, c, &sc[c]);
	FP_CHECK(st, path_fmt(path, sizeof path, "%s/truth/classmaps", stage));
	FP_CHECK(st, fp_mkdir_p(path, 0755));
	for (int c = 0; c < p->centres; c++) {
		const struct fp_synth_patient *first = &pts[(size_t)c * (size_t)p->patients];
		FP_CHECK(st, path_fmt(path, sizeof path, "%s/%s/slides", stage, first->centre));
		FP_CHECK(st, fp_mkdir_p(path, 0755));
		FP_CHECK(st, path_fmt(path, sizeof path, "%s/%s/clinical.csv", stage, first->centre));
		FP_CHECK(st, write_text(path, synth_write_clinical_csv, first, (size_t)p->patients));
	}
	FP_CHECK(st, path_fmt(path, sizeof path, "%s/truth/patients.csv", stage));
	FP_CHECK(st, write_text(path, synth_write_truth_csv, pts, n));

	int threads = p->threads;
	if (threads <= 0) {
		long nc = sysconf(_SC_NPROCESSORS_ONLN);
		threads = nc < 1 ? 1 : nc > 16 ? 16 : (int)nc;
	}
	if ((size_t)threads > n) threads = (int)n;
	FP_INFO("synth: %d centres x %d patients, size %s, format %s, seed %" PRIu64 ", %d threads",
	        p->centres, p->patients, fp_synth_size_name(p->size), p->format == FP_SYNTH_TIFF ? "tiff" : "svs",
	        p->seed, threads);
	r.p = p;
	r.stage = stage;
	r.pts = pts;
	r.n = n;
	r.scanners = sc;
	r.res = res;
	if (pthread_mutex_init(&r.mu, NULL) != 0) {
		st = FP_FAIL(FP_ERR_INTERNAL, "pthread_mutex_init failed");
		goto fail;
	}
	mu_ok = 1;
	if (!p->quiet) FP_CHECK(st, fp_progress_create("synth", n, "slides", &r.prog));
	pthread_t tid[256];
	int started = 0;
	for (; started < threads; started++)
		if (pthread_create(&tid[started], NULL, worker, &r) != 0) break;
	if (started == 0) worker(&r); /* no threads available: do the work here */
	for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
	if (r.prog) fp_progress_finish(r.prog);
	if (r.err != FP_OK) {
		st = fp_error_set(r.err, __FILE__, __LINE__, "%s", r.err_msg);
		goto fail;
	}
	FP_CHECK(st, path_fmt(path, sizeof path, "%s/truth/slides.csv", stage));
	FP_CHECK(st, write_slides_csv(path, pts, res, n, sc));

	/* Publish: first drop an old marker so a half-replaced folder never looks complete. */
	FP_CHECK(st, path_fmt(path, sizeof path, "%s/cohort.json", dir));
	if (remove(path) != 0 && errno != ENOENT) {
		st = FP_FAIL(FP_ERR_IO, "cannot remove the old %s: %s", path, strerror(errno));
		goto fail;
	}
	FP_CHECK(st, remove_old_centres(dir));
	FP_CHECK(st, move_in(stage, dir, "truth"));
	for (int c = 0; c < p->centres; c++) FP_CHECK(st, move_in(stage, dir, pts[(size_t)c * (size_t)p->patients].centre));
	FP_CHECK(st, fp_dir_sync(dir));
	doc = cohort_json(p, sc);
	FP_CHECK(st, fp_json_save_file(path, doc, 0644));
	rm_tree(stage);
	if (rep) {
		memset(rep, 0, sizeof *rep);
		rep->slides = n;
		for (size_t k = 0; k < n; k++) {
			rep->slide_bytes += res[k].bytes;
			rep->pixels += res[k].pixels;
		}
		rep->seconds = fp_now_seconds() - t0;
	}
	json_decref(doc);
	fp_progress_destroy(r.prog);
	pthread_mutex_destroy(&r.mu);
	free(pts);
	free(sc);
	free(res);
	return FP_OK;
fail:
	if (staged) rm_tree(stage);
	json_decref(doc);
	fp_progress_destroy(r.prog);
	if (mu_ok) pthread_mutex_destroy(&r.mu);
	free(pts);
	free(sc);
	free(res);
	return st;
}
