/*
 * quantify.c: TME features per slide (fp_quantify.h) and the quantify run:
 * model over every tile of every cache, probabilities and embeddings stored
 * back into the cache, one features.csv per site.
 *
 * Writing into a published cache is not atomic; the datasets are replaced as
 * a whole and /tme's attribute status = "complete" is written last, so a
 * reader can tell an interrupted quantify (docs/TRAINING.md).
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_quantify.h"
#include "fp_site_train.h"
#include "fp_tile_cache.h"
#include "fp_train.h"
#include "train_internal.h"

#define MAX_GRID_CELLS (1u << 28)

void fp_tme_options_default(struct fp_tme_options *o)
{
	o->margin_um = 200.0;
	o->inflamed_min = 3000.0;
	o->excluded_min = 2000.0;
}

const char *fp_tme_phenotype_name(int p)
{
	static const char *const n[] = {"inflamed", "excluded", "desert"};
	return p >= 0 && p < 3 ? n[p] : "none";
}

static int argmax(const float *p)
{
	int b = 0;
	for (int c = 1; c < FP_TME_N_CLASSES; c++)
		if (p[c] > p[b]) b = c;
	return b;
}

static int is_tumour_class(int c)
{
	return c == FP_TME_TUMOUR || c == FP_TME_NECROSIS || c == FP_TME_VASCULAR_INVASION;
}

enum fp_status fp_tme_features(const float *probs, const float *lymph, const int32_t *xy, size_t n, double step_px,
                               double mpp, const struct fp_tme_options *o, struct fp_tme_features *out)
{
	struct fp_tme_features f;
	long *grid = NULL;
	int *cls = NULL, *gx = NULL, *gy = NULL;
	unsigned char *in_r = NULL;
	double *d = NULL;
	long *bx = NULL, *by = NULL, *ax = NULL, *ay = NULL;
	size_t nb = 0, na = 0;
	enum fp_status st;
	memset(&f, 0, sizeof f);
	f.phenotype = -1;
	f.lymph_density_tumour = f.lymph_density_margin = f.necrosis_pct = f.stroma_pct = NAN;
	f.lymph_frac_tumour = f.lymph_frac_margin = NAN;
	if (!(step_px > 0) || !(mpp > 0))
		return FP_FAIL(FP_ERR_INVALID_ARG, "quantify: tile step %g px and mpp %g must be positive", step_px, mpp);
	f.n_tiles = n;
	if (n == 0) {
		*out = f;
		return FP_OK;
	}
	int32_t minx = xy[0], miny = xy[1], maxx = xy[0], maxy = xy[1];
	for (size_t i = 1; i < n; i++) {
		minx = xy[2 * i] < minx ? xy[2 * i] : minx;
		miny = xy[2 * i + 1] < miny ? xy[2 * i + 1] : miny;
		maxx = xy[2 * i] > maxx ? xy[2 * i] : maxx;
		maxy = xy[2 * i + 1] > maxy ? xy[2 * i + 1] : maxy;
	}
	/* One empty ring around the tiles so border lookups need no bounds checks. */
	long W = (long)llround((maxx - minx) / step_px) + 3, H = (long)llround((maxy - miny) / step_px) + 3;
	if ((double)W * (double)H > MAX_GRID_CELLS)
		return FP_FAIL(FP_ERR_LIMIT, "quantify: tile grid %ld x %ld exceeds %u cells", W, H, MAX_GRID_CELLS);
	FP_CHECK(st, fp_alloc_array((size_t)(W * H), sizeof(long), (void **)&grid, "tile grid"));
	FP_CHECK(st, fp_alloc_array(n, sizeof(int), (void **)&cls, "tile classes"));
	FP_CHECK(st, fp_alloc_array(n, sizeof(int), (void **)&gx, "tile grid x"));
	FP_CHECK(st, fp_alloc_array(n, sizeof(int), (void **)&gy, "tile grid y"));
	FP_CHECK(st, fp_calloc_array(n, 1, (void **)&in_r, "tumour region"));
	FP_CHECK(st, fp_alloc_array(n, sizeof(double), (void **)&d, "border distance"));
	FP_CHECK(st, fp_alloc_array(8 * n + 1, sizeof(long), (void **)&bx, "border"));
	FP_CHECK(st, fp_alloc_array(8 * n + 1, sizeof(long), (void **)&by, "border"));
	FP_CHECK(st, fp_alloc_array(n, sizeof(long), (void **)&ax, "border"));
	FP_CHECK(st, fp_alloc_array(n, sizeof(long), (void **)&ay, "border"));
	for (long i = 0; i < W * H; i++) grid[i] = -1;
	for (size_t i = 0; i < n; i++) {
		const float *p = probs + i * FP_TME_N_CLASSES;
		cls[i] = argmax(p);
		gx[i] = (int)llround((xy[2 * i] - minx) / step_px) + 1;
		gy[i] = (int)llround((xy[2 * i + 1] - miny) / step_px) + 1;
		if (cls[i] != FP_TME_OTHER) grid[(long)gy[i] * W + gx[i]] = (long)i; /* tissue only */
		if (cls[i] == FP_TME_OTHER) continue;
		f.tissue_tiles++;
		f.frac[cls[i]] += 1;
		f.vi_score += p[FP_TME_VASCULAR_INVASION];
		f.vi_tiles += cls[i] == FP_TME_VASCULAR_INVASION;
		in_r[i] = (unsigned char)is_tumour_class(cls[i]);
	}
	for (int c = 0; c < FP_TME_N_CLASSES; c++) f.frac[c] = f.tissue_tiles ? f.frac[c] / (double)f.tissue_tiles : 0.0;
	/* Enclosed lymphocyte and stroma tiles join R (judged on the first R). */
	for (size_t i = 0; i < n; i++) {
		if (cls[i] != FP_TME_LYMPHOCYTES && cls[i] != FP_TME_STROMA) continue;
		int k = 0;
		for (int dy = -1; dy <= 1; dy++)
			for (int dx = -1; dx <= 1; dx++) {
				long j = grid[(long)(gy[i] + dy) * W + gx[i] + dx];
				k += (dx || dy) && j >= 0 && (in_r[j] & 1);
			}
		if (k >= 5) in_r[i] |= 2;
	}
	for (size_t i = 0; i < n; i++) {
		in_r[i] = in_r[i] ? 1 : 0;
		f.tumour_tiles += in_r[i];
	}
	if (f.tumour_tiles == 0) goto done;
	/* Borders: A = R tiles with a non-R 8-neighbour cell; B = those cells. */
	for (size_t i = 0; i < n; i++) {
		if (!in_r[i] || cls[i] == FP_TME_OTHER) continue;
		int edge = 0;
		for (int dy = -1; dy <= 1; dy++)
			for (int dx = -1; dx <= 1; dx++) {
				long j = grid[(long)(gy[i] + dy) * W + gx[i] + dx];
				if ((dx || dy) && (j < 0 || !in_r[j])) {
					edge = 1;
					bx[nb] = gx[i] + dx;
					by[nb++] = gy[i] + dy;
				}
			}
		if (edge) {
			ax[na] = gx[i];
			ay[na++] = gy[i];
		}
	}
	double um = step_px * mpp, lin = 0, lmar = 0, nec = 0, str = 0, cin = 0, cmar = 0;
	uint64_t bed_in = 0, n_mar = 0;
	int counted = lymph != NULL;
	for (size_t i = 0; i < n; i++) {
		if (cls[i] == FP_TME_OTHER) continue;
		const long *px = in_r[i] ? bx : ax, *py = in_r[i] ? by : ay;
		size_t m = in_r[i] ? nb : na;
		double best = INFINITY;
		for (size_t k = 0; k < m; k++) {
			double ddx = (double)(px[k] - gx[i]), ddy = (double)(py[k] - gy[i]);
			double dd = ddx * ddx + ddy * ddy;
			best = dd < best ? dd : best;
		}
		d[i] = sqrt(best) * um;
		const float *p = probs + i * FP_TME_N_CLASSES;
		if (in_r[i]) {
			nec += cls[i] == FP_TME_NECROSIS;
			str += cls[i] == FP_TME_STROMA;
		}
		/* Inside: off R's border (one grid step; 5% absorbs rounding). */
		int inside = in_r[i] && d[i] > 1.05 * um, margin = d[i] <= o->margin_um;
		/* The tumour bed (R without necrosis and tumour-filled vessels, which
		 * hold no lymphocytes) and the margin's stroma are where cells count. */
		int bed = cls[i] != FP_TME_NECROSIS && cls[i] != FP_TME_VASCULAR_INVASION;
		int margin_stroma = cls[i] == FP_TME_STROMA || cls[i] == FP_TME_LYMPHOCYTES;
		if (inside) {
			f.inside_tiles++;
			lin += p[FP_TME_LYMPHOCYTES];
			if (bed) {
				counted &= lymph && isfinite(lymph[i]);
				cin += counted ? lymph[i] : 0;
				bed_in++;
			}
		}
		if (margin) {
			f.margin_tiles++;
			lmar += p[FP_TME_LYMPHOCYTES];
			if (margin_stroma) {
				counted &= lymph && isfinite(lymph[i]);
				cmar += counted ? lymph[i] : 0;
				n_mar++;
			}
		}
	}
	f.necrosis_pct = 100.0 * nec / (double)f.tumour_tiles;
	f.stroma_pct = 100.0 * str / (double)f.tumour_tiles;
	if (f.inside_tiles) f.lymph_frac_tumour = lin / (double)f.inside_tiles;
	if (f.margin_tiles) f.lymph_frac_margin = lmar / (double)f.margin_tiles;
	double tile_mm2 = um * um * 1e-6;
	if (counted && bed_in) f.lymph_density_tumour = cin / ((double)bed_in * tile_mm2);
	if (counted && n_mar) f.lymph_density_margin = cmar / ((double)n_mar * tile_mm2);
	/* NAN compares false: a slide without counts inside is judged on its margin. */
	if (f.lymph_density_tumour >= o->inflamed_min)
		f.phenotype = 0;
	else if (f.lymph_density_margin >= o->excluded_min)
		f.phenotype = 1;
	else if (counted)
		f.phenotype = 2;
	else
		f.phenotype = -1; /* no counts: no phenotype */
done:
	*out = f;
	st = FP_OK;
fail:
	free(grid);
	free(cls);
	free(gx);
	free(gy);
	free(in_r);
	free(d);
	free(bx);
	free(by);
	free(ax);
	free(ay);
	return st;
}

void fp_tme_csv_header(char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "slide_uid,n_tiles,tissue_tiles");
	for (int c = 0; c < FP_TME_N_CLASSES - 1 && o < size; c++)
		o += (size_t)snprintf(buf + o, size - o, ",frac_%s", fp_tme_class_name(c));
	if (o < size)
		snprintf(buf + o, size - o, ",tumour_tiles,inside_tiles,margin_tiles,lymph_density_tumour,"
		         "lymph_density_margin,lymph_frac_tumour,lymph_frac_margin,phenotype,necrosis_pct,stroma_pct,"
		         "vi_score,vi_tiles");
}

static int fmt_num(char *buf, size_t size, double v)
{
	return isfinite(v) ? snprintf(buf, size, ",%.6g", v) : snprintf(buf, size, ",NA");
}

void fp_tme_csv_row(const char *slide_uid, const struct fp_tme_features *f, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "%s,%llu,%llu", slide_uid, (unsigned long long)f->n_tiles,
	                            (unsigned long long)f->tissue_tiles);
	for (int c = 0; c < FP_TME_N_CLASSES - 1 && o < size; c++) o += (size_t)fmt_num(buf + o, size - o, f->frac[c]);
	if (o < size)
		o += (size_t)snprintf(buf + o, size - o, ",%llu,%llu,%llu", (unsigned long long)f->tumour_tiles,
		                      (unsigned long long)f->inside_tiles, (unsigned long long)f->margin_tiles);
	if (o < size) o += (size_t)fmt_num(buf + o, size - o, f->lymph_density_tumour);
	if (o < size) o += (size_t)fmt_num(buf + o, size - o, f->lymph_density_margin);
	if (o < size) o += (size_t)fmt_num(buf + o, size - o, f->lymph_frac_tumour);
	if (o < size) o += (size_t)fmt_num(buf + o, size - o, f->lymph_frac_margin);
	if (o < size) o += (size_t)snprintf(buf + o, size - o, ",%s", fp_tme_phenotype_name(f->phenotype));
	if (o < size) o += (size_t)fmt_num(buf + o, size - o, f->necrosis_pct);
	if (o < size) o += (size_t)fmt_num(buf + o, size - o, f->stroma_pct);
	if (o < size) o += (size_t)fmt_num(buf + o, size - o, f->vi_score);
	if (o < size) snprintf(buf + o, size - o, ",%llu", (unsigned long long)f->vi_tiles);
}

/* ---- the run ---- */

static enum fp_status read_double_attr(hid_t f, const char *name, double *v, const char *path)
{
	hid_t a = H5Aopen(f, name, H5P_DEFAULT);
	if (a < 0) return FP_FAIL(FP_ERR_FORMAT, "tile cache %s: attribute %s is missing", path, name);
	herr_t e = H5Aread(a, H5T_NATIVE_DOUBLE, v);
	H5Aclose(a);
	if (e < 0 || !(*v > 0)) return FP_FAIL(FP_ERR_FORMAT, "tile cache %s: attribute %s is not a positive number", path, name);
	return FP_OK;
}

static enum fp_status replace_dataset(hid_t f, const char *grp, const char *name, const float *data, hsize_t rows,
                                      hsize_t cols, const char *path)
{
	hid_t g = -1, sp = -1, ds = -1;
	enum fp_status st = FP_OK;
	hsize_t dims[2] = {rows, cols};
	if (H5Lexists(f, grp, H5P_DEFAULT) <= 0) {
		g = H5Gcreate2(f, grp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	} else {
		g = H5Gopen2(f, grp, H5P_DEFAULT);
		if (g >= 0 && H5Lexists(g, name, H5P_DEFAULT) > 0) H5Ldelete(g, name, H5P_DEFAULT);
	}
	if (g < 0) return FP_FAIL(FP_ERR_IO, "tile cache %s: cannot open or create %s", path, grp);
	sp = H5Screate_simple(2, dims, NULL);
	ds = H5Dcreate2(g, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	if (ds < 0 || (rows > 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
		st = FP_FAIL(FP_ERR_IO, "tile cache %s: cannot write %s/%s (disk full?)", path, grp, name);
	if (ds >= 0) H5Dclose(ds);
	H5Sclose(sp);
	H5Gclose(g);
	return st;
}

static enum fp_status set_str_attr(hid_t obj, const char *name, const char *value, const char *path)
{
	if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
	hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
	H5Tset_size(t, strlen(value) + 1);
	hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
	enum fp_status st = (a >= 0 && H5Awrite(a, t, value) >= 0) ? FP_OK
	                    : FP_FAIL(FP_ERR_IO, "tile cache %s: cannot write attribute %s", path, name);
	if (a >= 0) H5Aclose(a);
	H5Sclose(sp);
	H5Tclose(t);
	return st;
}

/* Reads a float dataset of exactly `count` elements. */
static int read_floats(hid_t g, const char *name, float *v, hssize_t count)
{
	hid_t d = H5Dopen2(g, name, H5P_DEFAULT), sp = d >= 0 ? H5Dget_space(d) : -1;
	int ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == count &&
	         H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
	if (sp >= 0) H5Sclose(sp);
	if (d >= 0) H5Dclose(d);
	return ok;
}

/* The slide's stain fit and tile resolution for lymphocyte counts; *ok = 0
 * (with one warning) when the cache has no usable fit, so the counts are NA. */
static enum fp_status read_stain(const char *path, struct fp_lymph_detector *det, int *ok)
{
	float he[6], mc[2];
	double target = 0;
	int64_t valid = 0;
	enum fp_status st = FP_OK;
	*ok = 0;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), g = -1, a = -1;
	if (f < 0) return FP_FAIL(FP_ERR_IO, "tile cache %s: cannot open", path);
	FP_CHECK(st, read_double_attr(f, "target_mpp", &target, path));
	g = H5Gopen2(f, "stain", H5P_DEFAULT);
	if (g >= 0) a = H5Aopen(g, "valid", H5P_DEFAULT);
	if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &valid) < 0 || !valid) {
		FP_WARN("quantify: %s has no valid stain fit (/stain valid = 0): lymphocyte counts are NA", path);
		goto fail;
	}
	if (!read_floats(g, "macenko_he", he, 6) || !read_floats(g, "max_c", mc, 2)) {
		st = FP_FAIL(FP_ERR_FORMAT, "tile cache %s: /stain/macenko_he (3, 2) or /stain/max_c (2) is missing or "
		             "of another shape", path);
		goto fail;
	}
	if (target > FP_LYMPH_MAX_UM_PER_PX) {
		FP_WARN("quantify: %s has tiles at %g um/px, too coarse for nuclei (<= %g): lymphocyte counts are NA", path,
		        target, FP_LYMPH_MAX_UM_PER_PX);
		goto fail;
	}
	if (fp_lymph_detector_init(det, he, mc[0], target) != FP_OK) {
		FP_WARN("quantify: %s: %s; lymphocyte counts are NA", path, fp_error_msg());
		fp_error_clear();
		goto fail;
	}
	*ok = 1;
fail:
	if (a >= 0) H5Aclose(a);
	if (g >= 0) H5Gclose(g);
	H5Fclose(f);
	return st;
}

/* Model over one cache: probs (n, C), embed (n, E), lymphocyte counts (n;
 * NAN when the slide cannot be counted), corners and uid. */
static enum fp_status infer_slide(struct fp_model *m, const char *path, int batch, float **probs, float **embed,
                                  float **lymph, int32_t **xy, uint64_t *n_out, char uid[65])
{
	struct fp_tile_cache *c = NULL;
	struct fp_lymph_detector det;
	uint8_t *rgb = NULL;
	float *x = NULL;
	void *scratch = NULL;
	int count_ok = 0;
	enum fp_status st;
	int s = fp_model_config(m)->input_size, e = fp_model_embed_dim(m);
	size_t per = fp_model_input_floats(m);
	*probs = *embed = *lymph = NULL;
	*xy = NULL;
	FP_TRY(read_stain(path, &det, &count_ok));
	FP_TRY(fp_tile_cache_open(path, &c));
	uint64_t n = fp_tile_cache_count(c);
	uint32_t t = fp_tile_cache_tile_size(c);
	FP_CHECK(st, fp_tile_cache_attr(c, "slide_uid", uid, 65));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, FP_TME_N_CLASSES * sizeof(float), (void **)probs, "tile probabilities"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, (size_t)e * sizeof(float), (void **)embed, "tile embeddings"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, 2 * sizeof(int32_t), (void **)xy, "tile corners"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof(float), (void **)lymph, "lymphocyte counts"));
	FP_CHECK(st, fp_alloc_array((size_t)t * t, 3, (void **)&rgb, "tile pixels"));
	FP_CHECK(st, fp_alloc_array(fp_lymph_scratch_bytes((int)t), 1, &scratch, "lymphocyte scratch"));
	FP_CHECK(st, fp_alloc_array((size_t)batch, per * sizeof(float), (void **)&x, "batch"));
	for (uint64_t i0 = 0; i0 < n; i0 += (uint64_t)batch) {
		int b = (int)(n - i0 < (uint64_t)batch ? n - i0 : (uint64_t)batch);
		for (int k = 0; k < b; k++) {
			FP_CHECK(st, fp_tile_cache_read(c, i0 + (uint64_t)k, rgb));
			(*lymph)[i0 + k] = count_ok ? (float)fp_lymph_count(&det, rgb, (int)t, scratch) : NAN;
			FP_CHECK(st, fp_tile_to_input(rgb, t, s, NULL, 0, 0, x + (size_t)k * per));
			FP_CHECK(st, fp_tile_cache_coords(c, i0 + (uint64_t)k, &(*xy)[2 * (i0 + k)], &(*xy)[2 * (i0 + k) + 1]));
		}
		FP_CHECK(st, fp_model_forward(m, x, b, NULL, *probs + i0 * FP_TME_N_CLASSES, *embed + i0 * (uint64_t)e));
	}
	*n_out = n;
	st = FP_OK;
fail:
	fp_tile_cache_close(c);
	free(rgb);
	free(x);
	free(scratch);
	return st;
}

static enum fp_status store_slide(const char *path, const char *model_desc, const float *probs, const float *embed,
                                  const float *lymph, uint64_t n, int e, double *step_px, double *mpp)
{
	double target;
	int64_t tile = 0;
	enum fp_status st;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), g = -1;
	if (f < 0) return FP_FAIL(FP_ERR_IO, "tile cache %s: cannot open for writing", path);
	FP_CHECK(st, read_double_attr(f, "mpp_x", mpp, path));
	FP_CHECK(st, read_double_attr(f, "target_mpp", &target, path));
	hid_t a = H5Aopen(f, "tile_size", H5P_DEFAULT);
	if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &tile) < 0 || tile <= 0) {
		if (a >= 0) H5Aclose(a);
		st = FP_FAIL(FP_ERR_FORMAT, "tile cache %s: tile_size attribute is missing or not positive", path);
		goto fail;
	}
	H5Aclose(a);
	*step_px = (double)tile * target / *mpp;
	FP_CHECK(st, replace_dataset(f, "tme", "probs", probs, n, FP_TME_N_CLASSES, path));
	FP_CHECK(st, replace_dataset(f, "tme", "lymphocytes", lymph, n, 1, path));
	FP_CHECK(st, replace_dataset(f, "features", "tilenet", embed, n, (hsize_t)e, path));
	g = H5Gopen2(f, "tme", H5P_DEFAULT);
	if (g < 0) {
		st = FP_FAIL(FP_ERR_IO, "tile cache %s: /tme vanished", path);
		goto fail;
	}
	FP_CHECK(st, set_str_attr(g, "model", model_desc, path));
	FP_CHECK(st, set_str_attr(g, "classes", "tumour,stroma,lymphocytes,necrosis,vascular_invasion,liver,other", path));
	FP_CHECK(st, set_str_attr(g, "status", "complete", path));
fail:
	if (g >= 0) H5Gclose(g);
	if (H5Fclose(f) < 0 && st == FP_OK) st = FP_FAIL(FP_ERR_IO, "tile cache %s: closing failed (disk full?)", path);
	return st;
}

enum fp_status fp_quantify_run(const char *checkpoint, const char *caches, const char *csv_path,
                               const struct fp_quantify_options *o)
{
	struct fp_kernels_options ko;
	struct fp_kernels *k = NULL;
	struct fp_model *m = NULL;
	struct fp_tilenet_config mc;
	struct fp_buf csv;
	struct fp_progress *prog = NULL;
	char **names = NULL, line[2048], model_desc[2400], hex[FP_SHA256_HEX_SIZE];
	uint8_t dig[FP_SHA256_SIZE];
	size_t n_names = 0;
	enum fp_status st;
	fp_buf_init(&csv, 256u << 20);
	FP_CHECK(st, fp_checkpoint_read_config(checkpoint, &mc));
	if (mc.n_classes != FP_TME_N_CLASSES) {
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s has %d classes, quantify needs the %d TME classes", checkpoint,
		             mc.n_classes, FP_TME_N_CLASSES);
		goto fail;
	}
	fp_kernels_options_default(&ko);
	ko.threads = o->threads;
	ko.backend = o->cuda ? FP_BACKEND_CUDA : FP_BACKEND_CPU;
	FP_CHECK(st, fp_kernels_create(&ko, &k));
	FP_CHECK(st, fp_model_create_tilenet(k, &mc, o->batch, 0, &m));
	FP_CHECK(st, fp_checkpoint_load_params(m, checkpoint));
	FP_CHECK(st, fp_sha256_file(checkpoint, dig));
	fp_hex_encode(dig, FP_SHA256_SIZE, hex);
	fp_tilenet_config_str(&mc, line, sizeof line);
	snprintf(model_desc, sizeof model_desc, "%s checkpoint_sha256=%s", line, hex);
	FP_CHECK(st, fp_train_list_caches(caches, &names, &n_names));
	fp_tme_csv_header(line, sizeof line);
	FP_CHECK(st, fp_buf_printf(&csv, "%s\n", line));
	FP_CHECK(st, fp_progress_create("quantify", n_names, "slides", &prog));
	for (size_t i = 0; i < n_names; i++) {
		char path[4096], uid[65];
		float *probs = NULL, *embed = NULL, *lymph = NULL;
		int32_t *xy = NULL;
		uint64_t n = 0;
		double step = 0, mpp = 0;
		struct fp_tme_features f;
		snprintf(path, sizeof path, "%s/%s", caches, names[i]);
		st = infer_slide(m, path, o->batch, &probs, &embed, &lymph, &xy, &n, uid);
		if (st == FP_OK)
			st = store_slide(path, model_desc, probs, embed, lymph, n, fp_model_embed_dim(m), &step, &mpp);
		if (st == FP_OK) st = fp_tme_features(probs, lymph, xy, n, step, mpp, &o->tme, &f);
		free(probs);
		free(embed);
		free(lymph);
		free(xy);
		if (st != FP_OK) goto fail;
		fp_tme_csv_row(uid, &f, line, sizeof line);
		FP_CHECK(st, fp_buf_printf(&csv, "%s\n", line));
		fp_progress_add(prog, 1);
	}
	FP_CHECK(st, fp_file_commit(csv_path, csv.data, csv.len, 0644));
	FP_INFO("quantify: %zu slides -> %s", n_names, csv_path);
fail:
	fp_progress_destroy(prog);
	for (size_t i = 0; i < n_names; i++) free(names[i]);
	free(names);
	fp_buf_close(&csv);
	fp_model_destroy(m);
	fp_kernels_destroy(k);
	return st;
}
