/*
 * synth_tissue.c: one phantom slide's tissue, drawn in H&E.
 *
 * Takes a patient's TME and a centre's scanner profile; produces
 *  - the layout: an irregular section, a tumour nodule (two when multifocal)
 *    with a fibrous capsule, septa and central necrosis, non-tumour liver
 *    around it, vessels (some filled by tumour thrombus) and lymphocyte
 *    aggregates placed by immune phenotype (inflamed: inside the tumour;
 *    excluded: in the capsule and margin; desert: few);
 *  - the truth class map (FP_SYNTH_MAP_UM per pixel), the class function
 *    evaluated at each map pixel's centre;
 *  - level-0 RGB rows on demand: per-pixel haematoxylin and eosin densities
 *    (class texture + nuclei scattered on hashed jittered grids) turned into
 *    light by Beer-Lambert with the centre's stain vectors and white level
 *    (a 256 x 256 lookup table of density pairs), after the scanner's blur.
 * Invariants: every pixel is a pure function of (key, x, y) (hashes of
 * lattice cells, never a sequential stream), so bands of any height give the
 * same image; memory is O(width) per band plus the map and three 512^2 textures.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "synth_internal.h"

#define TEX 512            /* texture tiles are TEX x TEX, periodic */
#define BIN_UM 256.0       /* spatial bins for vessels and aggregates */
#define MAX_OBJ 4096

struct obj {
	double x, y, r, wall;  /* micrometres */
	uint8_t cls;           /* VESSEL, THROMBUS or LYMPHOCYTES */
};

struct synth_tissue {
	struct synth_slide_geom g;
	struct synth_scanner sc;
	struct fp_synth_patient pt;
	uint64_t key;
	double mpp;
	/* layout, micrometres */
	double sec_cx, sec_cy, sec_rx, sec_ry;
	double tum_cx[2], tum_cy[2], tum_r[2];
	int n_tum;
	double cap_w, nec_r, septa_w;
	struct obj *obj;
	int n_obj;
	int bins_x, bins_y;
	int *bin_start, *bin_items;
	/* truth */
	uint8_t *map, *uniform;
	/* rendering */
	uint8_t *tex_grain, *tex_plate, *tex_fibre;
	uint8_t *lut;          /* (256 h, 256 e, 3) */
	uint8_t *hbuf, *ebuf;  /* (FP_SYNTH_TILE + 2, width) */
	uint8_t *cgrid;        /* micro class grid, (rows, ceil(width / mc)) */
	int mc;                /* micro cell edge, pixels (about 1 um) */
};

/* ---- value noise ---- */

static double lattice(uint64_t key, int64_t i, int64_t j)
{
	return synth_u01(synth_hash2(key, i, j)) * 2.0 - 1.0;
}

static double vnoise(uint64_t key, double x, double y)
{
	double fx = floor(x), fy = floor(y);
	int64_t i = (int64_t)fx, j = (int64_t)fy;
	double tx = x - fx, ty = y - fy;
	tx = tx * tx * (3 - 2 * tx);
	ty = ty * ty * (3 - 2 * ty);
	double a = lattice(key, i, j), b = lattice(key, i + 1, j);
	double c = lattice(key, i, j + 1), d = lattice(key, i + 1, j + 1);
	return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

static double fbm(uint64_t key, double x, double y)
{
	return 0.67 * vnoise(key, x, y) + 0.33 * vnoise(key ^ 0x5bd1e995u, 2.03 * x, 2.03 * y);
}

/* Periodic noise for textures: the lattice wraps at `period` cells. */
static double vnoise_periodic(uint64_t key, double x, double y, int period)
{
	double fx = floor(x), fy = floor(y);
	int i = (int)fx, j = (int)fy;
	double tx = x - fx, ty = y - fy;
	tx = tx * tx * (3 - 2 * tx);
	ty = ty * ty * (3 - 2 * ty);
	int i0 = ((i % period) + period) % period, j0 = ((j % period) + period) % period;
	int i1 = (i0 + 1) % period, j1 = (j0 + 1) % period;
	double a = lattice(key, i0, j0), b = lattice(key, i1, j0);
	double c = lattice(key, i0, j1), d = lattice(key, i1, j1);
	return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

/* ---- geometry ---- */

void synth_slide_geom(enum fp_synth_size size, double mpp, struct synth_slide_geom *g)
{
	static const double phys[3][2] = {{1000, 800}, {2800, 2200}, {15000, 12000}};
	g->mpp = mpp;
	g->width = (uint32_t)lround(phys[size][0] / mpp);
	g->height = (uint32_t)lround(phys[size][1] / mpp);
	g->map_w = (uint32_t)ceil(phys[size][0] / FP_SYNTH_MAP_UM);
	g->map_h = (uint32_t)ceil(phys[size][1] / FP_SYNTH_MAP_UM);
}

/* ---- the class function ---- */

/* Distance to the nearest nodule centre in radii, plus a noisy border. |fbm| <= 1,
 * so when the bare distance is beyond `skip` the noise cannot matter and is
 * not computed (the result is then the bare distance). */
static double tumour_d(const struct synth_tissue *t, double u, double v, double skip)
{
	double best = 1e9;
	for (int k = 0; k < t->n_tum; k++) {
		double dx = u - t->tum_cx[k], dy = v - t->tum_cy[k];
		double d = sqrt(dx * dx + dy * dy) / t->tum_r[k];
		if (d < best) best = d;
	}
	if (best - 0.12 >= skip) return best;
	return best + 0.12 * fbm(t->key ^ 0x1111, u / 180.0, v / 180.0);
}

/* The class without vessels and aggregates. Noise terms are evaluated only
 * where their bound (|fbm| <= 1) leaves the answer open. */
static int base_class(const struct synth_tissue *t, double u, double v, double *dt)
{
	double sx = (u - t->sec_cx) / t->sec_rx, sy = (v - t->sec_cy) / t->sec_ry;
	double rs = sqrt(sx * sx + sy * sy);
	if (rs > 1.10) return FP_SYNTH_BACKGROUND;
	if (rs > 0.90 && rs > 1.0 + 0.10 * fbm(t->key ^ 0x2222, u / 350.0, v / 350.0)) return FP_SYNTH_BACKGROUND;
	double d = tumour_d(t, u, v, 1.0 + t->cap_w);
	*dt = d;
	if (d < 1.0) {
		if (d < t->nec_r - 0.1 ||
		    (d < t->nec_r + 0.1 && d < t->nec_r + 0.1 * fbm(t->key ^ 0x3333, u / 90.0, v / 90.0)))
			return FP_SYNTH_NECROSIS;
		if (fabs(fbm(t->key ^ 0x4444, u / 220.0, v / 220.0)) < t->septa_w) return FP_SYNTH_STROMA;
		return FP_SYNTH_TUMOUR;
	}
	if (d < 1.0 + t->cap_w) return FP_SYNTH_STROMA;
	/* fibrous septa of the background (often cirrhotic) liver */
	if (fabs(fbm(t->key ^ 0x5555, u / 300.0, v / 300.0)) < 0.05) return FP_SYNTH_STROMA;
	return FP_SYNTH_LIVER;
}

static int class_exact(const struct synth_tissue *t, double u, double v)
{
	double dt = 9;
	int c = base_class(t, u, v, &dt);
	if (c == FP_SYNTH_BACKGROUND) return c;
	int bx = (int)(u / BIN_UM), by = (int)(v / BIN_UM);
	if (bx < 0 || by < 0 || bx >= t->bins_x || by >= t->bins_y) return c;
	int b = by * t->bins_x + bx;
	for (int k = t->bin_start[b]; k < t->bin_start[b + 1]; k++) {
		const struct obj *o = &t->obj[t->bin_items[k]];
		double dx = u - o->x, dy = v - o->y, d2 = dx * dx + dy * dy;
		if (o->cls == FP_SYNTH_LYMPHOCYTES) {
			if (c == FP_SYNTH_NECROSIS) continue;
			double r = o->r * (1 + 0.3 * vnoise(t->key ^ 0x6666, u / 25.0, v / 25.0));
			if (d2 < r * r) c = FP_SYNTH_LYMPHOCYTES;
		} else {
			if (d2 < o->r * o->r) return o->cls;
			double rw = o->r + o->wall;
			if (d2 < rw * rw) return FP_SYNTH_STROMA;
		}
	}
	return c;
}

static inline int class_at(const struct synth_tissue *t, double u, double v)
{
	int mx = (int)(u / FP_SYNTH_MAP_UM), my = (int)(v / FP_SYNTH_MAP_UM);
	if (mx >= 0 && my >= 0 && (uint32_t)mx < t->g.map_w && (uint32_t)my < t->g.map_h) {
		size_t i = (size_t)my * t->g.map_w + (size_t)mx;
		if (t->uniform[i]) return t->map[i];
	}
	return class_exact(t, u, v);
}

/* ---- layout ---- */

static int place_point(const struct synth_tissue *t, struct synth_rng *r, double dmin, double dmax,
                       int want_class, double *x, double *y)
{
	double W = t->g.width * t->mpp, H = t->g.height * t->mpp;
	for (int tries = 0; tries < 200; tries++) {
		double u = synth_rng_unif(r) * W, v = synth_rng_unif(r) * H, d = 9;
		int c = base_class(t, u, v, &d);
		if (c == FP_SYNTH_BACKGROUND || c == FP_SYNTH_NECROSIS) continue;
		if (d < dmin || d > dmax) continue;
		if (want_class >= 0 && c != want_class) continue;
		*x = u;
		*y = v;
		return 1;
	}
	return 0;
}

static void add_obj(struct synth_tissue *t, double x, double y, double r, double wall, int cls)
{
	if (t->n_obj >= MAX_OBJ) return;
	t->obj[t->n_obj++] = (struct obj){x, y, r, wall, (uint8_t)cls};
}

static enum fp_status build_bins(struct synth_tissue *t)
{
	double W = t->g.width * t->mpp, H = t->g.height * t->mpp;
	t->bins_x = (int)(W / BIN_UM) + 1;
	t->bins_y = (int)(H / BIN_UM) + 1;
	size_t nb = (size_t)t->bins_x * (size_t)t->bins_y;
	FP_TRY(fp_calloc_array(nb + 1, sizeof(int), (void **)&t->bin_start, "synth bins"));
	int *count = NULL;
	FP_TRY(fp_calloc_array(nb + 1, sizeof(int), (void **)&count, "synth bins"));
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < t->n_obj; k++) {
			const struct obj *o = &t->obj[k];
			double ext = (o->r + o->wall) * 1.35;
			int x0 = (int)fmax(0, (o->x - ext) / BIN_UM), x1 = (int)fmin(t->bins_x - 1, (o->x + ext) / BIN_UM);
			int y0 = (int)fmax(0, (o->y - ext) / BIN_UM), y1 = (int)fmin(t->bins_y - 1, (o->y + ext) / BIN_UM);
			for (int by = y0; by <= y1; by++)
				for (int bx = x0; bx <= x1; bx++) {
					size_t b = (size_t)by * (size_t)t->bins_x + (size_t)bx;
					if (pass == 0) t->bin_start[b + 1]++;
					else t->bin_items[t->bin_start[b] + count[b]++] = k;
				}
		}
		if (pass == 0) {
			for (size_t b = 0; b < nb; b++) t->bin_start[b + 1] += t->bin_start[b];
			size_t total = (size_t)t->bin_start[nb];
			enum fp_status st = fp_calloc_array(total + 1, sizeof(int), (void **)&t->bin_items, "synth bins");
			if (st != FP_OK) {
				free(count);
				return st;
			}
		}
	}
	free(count);
	return FP_OK;
}

static void layout(struct synth_tissue *t, uint64_t seed)
{
	const struct fp_synth_patient *p = &t->pt;
	struct synth_rng r;
	synth_rng_init(&r, synth_key(seed, (uint32_t)p->centre_index, (uint32_t)p->patient_index, SYNTH_P_LAYOUT));
	double W = t->g.width * t->mpp, H = t->g.height * t->mpp;
	t->sec_cx = W * (0.5 + 0.04 * (synth_rng_unif(&r) - 0.5));
	t->sec_cy = H * (0.5 + 0.04 * (synth_rng_unif(&r) - 0.5));
	t->sec_rx = W * (0.40 + 0.04 * synth_rng_unif(&r));
	t->sec_ry = H * (0.38 + 0.05 * synth_rng_unif(&r));
	double area = 3.14159 * t->sec_rx * t->sec_ry * p->tumour_frac;
	t->n_tum = p->multifocal ? 2 : 1;
	double a_main = p->multifocal ? 0.8 * area : area;
	t->tum_r[0] = sqrt(a_main / 3.14159);
	double ang = 6.2832 * synth_rng_unif(&r);
	t->tum_cx[0] = t->sec_cx + 0.25 * t->sec_rx * cos(ang);
	t->tum_cy[0] = t->sec_cy + 0.25 * t->sec_ry * sin(ang);
	if (p->multifocal) {
		t->tum_r[1] = sqrt(0.2 * area / 3.14159);
		t->tum_cx[1] = t->sec_cx - 0.6 * t->sec_rx * cos(ang);
		t->tum_cy[1] = t->sec_cy - 0.55 * t->sec_ry * sin(ang);
	}
	t->cap_w = (0.04 + 0.10 * p->stroma_frac) * 1.0;
	t->nec_r = sqrt(p->necrosis_frac);
	t->septa_w = 0.03 + 0.5 * p->stroma_frac;

	double area_mm2 = 3.14159 * t->sec_rx * t->sec_ry / 1e6, tum_mm2 = area_mm2 * p->tumour_frac;
	/* vessels: portal and capsular vessels, then the thrombosed ones at the margin */
	int n_v = (int)lround(area_mm2 * 3.0);
	for (int k = 0; k < n_v; k++) {
		double x, y, rr = 12 + 38 * synth_rng_unif(&r);
		if (place_point(t, &r, 1.05, 1e9, -1, &x, &y)) add_obj(t, x, y, rr, 0.35 * rr + 4, FP_SYNTH_VESSEL);
	}
	for (int k = 0; k < p->thrombi; k++) {
		double x, y, rr = 35 + 45 * synth_rng_unif(&r);
		if (place_point(t, &r, 0.85, 1.0 + t->cap_w + 0.1, -1, &x, &y))
			add_obj(t, x, y, rr, 0.3 * rr + 5, FP_SYNTH_THROMBUS);
	}
	/* lymphocyte aggregates by phenotype */
	int n_in = (int)lround(p->til_intra * 5.0 * tum_mm2 + (p->phenotype == FP_SYNTH_INFLAMED ? 1 : 0));
	int n_margin = (int)lround(p->til_margin * 5.0 * sqrt(tum_mm2) + (p->phenotype == FP_SYNTH_EXCLUDED ? 2 : 0));
	int n_liver = (int)lround(0.5 * area_mm2 * synth_rng_unif(&r));
	for (int k = 0; k < n_in; k++) {
		double x, y, rr = 25 + 35 * synth_rng_unif(&r);
		if (place_point(t, &r, 0, 0.85, FP_SYNTH_TUMOUR, &x, &y)) add_obj(t, x, y, rr, 0, FP_SYNTH_LYMPHOCYTES);
	}
	for (int k = 0; k < n_margin; k++) {
		double x, y, rr = 30 + 40 * synth_rng_unif(&r);
		if (place_point(t, &r, 0.97, 1.0 + t->cap_w + 0.08, -1, &x, &y))
			add_obj(t, x, y, rr, 0, FP_SYNTH_LYMPHOCYTES);
	}
	for (int k = 0; k < n_liver; k++) {
		double x, y, rr = 20 + 20 * synth_rng_unif(&r);
		if (place_point(t, &r, 1.3, 1e9, FP_SYNTH_LIVER, &x, &y)) add_obj(t, x, y, rr, 0, FP_SYNTH_LYMPHOCYTES);
	}
}

/* ---- stains ---- */

/* Nominal mean densities (x100) per class, for the documented class colours. */
static const uint8_t nominal_he[FP_SYNTH_N_CLASSES][2] = {
	{0, 3}, {38, 42}, {18, 36}, {13, 74}, {80, 18}, {12, 38}, {2, 70}, {38, 42},
};

static uint8_t beer_lambert(const struct synth_scanner *sc, int h, int e, int ch)
{
	double od = h / 100.0 * sc->h_gain * sc->stain_h[ch] + e / 100.0 * sc->e_gain * sc->stain_e[ch];
	double v = sc->white[ch] * exp(-od);
	return (uint8_t)(v > 255 ? 255 : v + 0.5);
}

void synth_class_rgb(const struct synth_scanner *sc, int cls, uint8_t rgb[3])
{
	for (int ch = 0; ch < 3; ch++) rgb[ch] = beer_lambert(sc, nominal_he[cls][0], nominal_he[cls][1], ch);
}

/* ---- create / destroy ---- */

static void make_textures(struct synth_tissue *t)
{
	double px_um = t->mpp; /* micrometres per pixel */
	uint64_t k = t->key;
	/* periods in lattice cells chosen so TEX px spans whole cells */
	int pg = (int)lround(TEX * px_um / 2.0), pp = (int)lround(TEX * px_um / 24.0), pf = (int)lround(TEX * px_um / 30.0);
	if (pg < 1) pg = 1;
	if (pp < 1) pp = 1;
	if (pf < 1) pf = 1;
	for (int y = 0; y < TEX; y++)
		for (int x = 0; x < TEX; x++) {
			double gx = (double)x / TEX * pg, gy = (double)y / TEX * pg;
			double g = 0.6 * vnoise_periodic(k ^ 0xA1, gx, gy, pg) + 0.4 * vnoise_periodic(k ^ 0xA2, 2 * gx, 2 * gy, 2 * pg);
			t->tex_grain[y * TEX + x] = (uint8_t)lround(127.5 + 127 * g);
			double px = (double)x / TEX * pp, py = (double)y / TEX * pp;
			double pl = fabs(vnoise_periodic(k ^ 0xB1, px, py, pp));
			t->tex_plate[y * TEX + x] = (uint8_t)lround(fmin(255, pl * 600));
			double fx = (double)x / TEX * pf, fy = (double)y / TEX * pf;
			double w = vnoise_periodic(k ^ 0xC1, fx, fy, pf);
			double s = sin(6.2832 * (double)(x + y / 3) / TEX * (pf * 3) + 4.0 * w);
			t->tex_fibre[y * TEX + x] = (uint8_t)lround(127.5 + 127 * s);
		}
}

enum fp_status synth_tissue_create(uint64_t seed, const struct fp_synth_patient *pt,
                                   const struct synth_scanner *sc, const struct synth_slide_geom *g,
                                   struct synth_tissue **out)
{
	enum fp_status st = FP_OK;
	struct synth_tissue *t = calloc(1, sizeof *t);
	if (!t) return FP_FAIL(FP_ERR_NOMEM, "synth tissue: out of memory");
	t->g = *g;
	t->sc = *sc;
	t->pt = *pt;
	t->mpp = g->mpp;
	t->key = synth_key(seed, (uint32_t)pt->centre_index, (uint32_t)pt->patient_index, SYNTH_P_PIXELS);
	t->mc = (int)lround(1.0 / g->mpp);
	if (t->mc < 1) t->mc = 1;
	size_t map_n, w2, cw;
	FP_CHECK(st, fp_size_mul(g->map_w, g->map_h, &map_n, "class map"));
	FP_CHECK(st, fp_size_mul(g->width, FP_SYNTH_TILE + 2, &w2, "render band"));
	cw = (g->width + (uint32_t)t->mc - 1) / (uint32_t)t->mc;
	FP_CHECK(st, fp_calloc_array(MAX_OBJ, sizeof(struct obj), (void **)&t->obj, "synth objects"));
	FP_CHECK(st, fp_alloc_array(map_n, 1, (void **)&t->map, "class map"));
	FP_CHECK(st, fp_calloc_array(map_n, 1, (void **)&t->uniform, "class map"));
	FP_CHECK(st, fp_alloc_array(TEX * TEX, 1, (void **)&t->tex_grain, "texture"));
	FP_CHECK(st, fp_alloc_array(TEX * TEX, 1, (void **)&t->tex_plate, "texture"));
	FP_CHECK(st, fp_alloc_array(TEX * TEX, 1, (void **)&t->tex_fibre, "texture"));
	FP_CHECK(st, fp_alloc_array(256 * 256, 3, (void **)&t->lut, "stain table"));
	FP_CHECK(st, fp_alloc_array(w2, 1, (void **)&t->hbuf, "render band"));
	FP_CHECK(st, fp_alloc_array(w2, 1, (void **)&t->ebuf, "render band"));
	FP_CHECK(st, fp_alloc_array(cw, (size_t)(FP_SYNTH_TILE + 2) / (size_t)t->mc + 3, (void **)&t->cgrid, "class grid"));

	layout(t, seed);
	FP_CHECK(st, build_bins(t));
	for (uint32_t my = 0; my < g->map_h; my++)
		for (uint32_t mx = 0; mx < g->map_w; mx++)
			t->map[(size_t)my * g->map_w + mx] =
				(uint8_t)class_exact(t, (mx + 0.5) * FP_SYNTH_MAP_UM, (my + 0.5) * FP_SYNTH_MAP_UM);
	/* A map pixel whose 3 x 3 neighbourhood agrees is that class throughout
	 * (up to features thinner than a map pixel): the renderer's fast path. */
	for (uint32_t my = 1; my + 1 < g->map_h; my++)
		for (uint32_t mx = 1; mx + 1 < g->map_w; mx++) {
			uint8_t c = t->map[(size_t)my * g->map_w + mx];
			int same = 1;
			for (int dy = -1; dy <= 1 && same; dy++)
				for (int dx = -1; dx <= 1; dx++)
					if (t->map[(size_t)(my + dy) * g->map_w + mx + dx] != c) same = 0;
			t->uniform[(size_t)my * g->map_w + mx] = (uint8_t)same;
		}
	make_textures(t);
	for (int h = 0; h < 256; h++)
		for (int e = 0; e < 256; e++)
			for (int ch = 0; ch < 3; ch++) t->lut[(h * 256 + e) * 3 + ch] = beer_lambert(sc, h, e, ch);
	*out = t;
	return FP_OK;
fail:
	synth_tissue_destroy(t);
	return st;
}

void synth_tissue_destroy(struct synth_tissue *t)
{
	if (!t) return;
	free(t->obj);
	free(t->bin_start);
	free(t->bin_items);
	free(t->map);
	free(t->uniform);
	free(t->tex_grain);
	free(t->tex_plate);
	free(t->tex_fibre);
	free(t->lut);
	free(t->hbuf);
	free(t->ebuf);
	free(t->cgrid);
	free(t);
}

const uint8_t *synth_tissue_map(const struct synth_tissue *t)
{
	return t->map;
}

/* ---- rendering ---- */

struct band {
	int64_t y0, y1;        /* pixel rows held in hbuf/ebuf: [y0, y1) */
	uint32_t w;
	uint8_t *h, *e;
};

static inline void put(struct band *b, int64_t x, int64_t y, int hv, int ev_scale_256)
{
	size_t i = (size_t)(y - b->y0) * b->w + (size_t)x;
	if (hv > b->h[i]) b->h[i] = (uint8_t)(hv > 255 ? 255 : hv);
	b->e[i] = (uint8_t)((b->e[i] * ev_scale_256) >> 8);
}

/* Draws an ellipse of semi-axes (a, b) px rotated by th, density hv; eosin
 * under it is scaled by escale/256. Soft edge about one pixel wide. */
static void draw_ellipse(struct band *b, const uint8_t *grain, double cx, double cy, double a, double bb,
                         double th, int hv, int escale, int set_e)
{
	double ext = fmax(a, bb) + 1;
	int64_t x0 = (int64_t)floor(cx - ext), x1 = (int64_t)ceil(cx + ext);
	int64_t y0 = (int64_t)floor(cy - ext), y1 = (int64_t)ceil(cy + ext);
	if (x0 < 0) x0 = 0;
	if (x1 > (int64_t)b->w - 1) x1 = (int64_t)b->w - 1;
	if (y0 < b->y0) y0 = b->y0;
	if (y1 > b->y1 - 1) y1 = b->y1 - 1;
	double c = cos(th), s = sin(th), ia2 = 1.0 / (a * a), ib2 = 1.0 / (bb * bb), soft = 0.5 * fmin(a, bb);
	for (int64_t y = y0; y <= y1; y++)
		for (int64_t x = x0; x <= x1; x++) {
			double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
			double p = dx * c + dy * s, q = -dx * s + dy * c;
			double r = p * p * ia2 + q * q * ib2;
			if (r >= 1) continue;
			double al = (1 - r) * soft;
			if (al > 1) al = 1;
			if (set_e) {
				size_t i = (size_t)(y - b->y0) * b->w + (size_t)x;
				int ev = (int)(hv * al * (0.85 + 0.3 * grain[((y & (TEX - 1)) * TEX) + (x & (TEX - 1))] / 255.0));
				if (ev > b->e[i]) b->e[i] = (uint8_t)(ev > 255 ? 255 : ev);
				continue;
			}
			int g = grain[((y & (TEX - 1)) * TEX) + (x & (TEX - 1))];
			put(b, x, y, (int)(hv * al * (0.8 + 0.4 * g / 255.0)), 256 - (int)((256 - escale) * al));
		}
}

/* Nuclei, lymphocytes, red cells and debris on a jittered grid of spacing S um. */
static void scatter(struct synth_tissue *t, struct band *b, double S, uint64_t gkey, int family)
{
	double mpp = t->mpp, rmax = 8.0;
	int64_t j0 = (int64_t)floor((b->y0 * mpp - rmax) / S) - 1, j1 = (int64_t)ceil((b->y1 * mpp + rmax) / S);
	int64_t i1 = (int64_t)ceil(b->w * mpp / S);
	const struct fp_synth_patient *p = &t->pt;
	for (int64_t j = j0 < 0 ? 0 : j0; j <= j1; j++)
		for (int64_t i = 0; i <= i1; i++) {
			uint64_t h = synth_hash2(gkey, i, j);
			double u = (i + 0.5 + 0.7 * (synth_u01(h) - 0.5)) * S;
			double v = (j + 0.5 + 0.7 * (synth_u01(synth_mix64(h + 1)) - 0.5)) * S;
			if (v < (b->y0 - 12 / mpp) * mpp || v > (b->y1 + 12 / mpp) * mpp) continue;
			uint64_t h2 = synth_mix64(h + 2), h3 = synth_mix64(h + 3);
			double pr = synth_u01(h2), q = synth_u01(h3);
			int cls = class_at(t, u, v);
			double cx = u / mpp, cy = v / mpp;
			if (family == 0) { /* parenchymal and stromal cells */
				if ((cls == FP_SYNTH_TUMOUR || cls == FP_SYNTH_THROMBUS) && pr < 0.88) {
					double r = (3.8 + 2.2 * q) / mpp, ecc = 0.8 + 0.2 * synth_u01(h3 >> 7);
					draw_ellipse(b, t->tex_grain, cx, cy, r, r * ecc, 6.28 * synth_u01(h2 >> 9), 125 + (int)(50 * q), 90, 0);
					if (synth_u01(h >> 3) < 0.6) /* nucleolus */
						draw_ellipse(b, t->tex_grain, cx + 0.3 * r, cy - 0.2 * r, 0.9 / mpp, 0.9 / mpp, 0, 200, 60, 0);
				} else if (cls == FP_SYNTH_LIVER && pr < 0.50) {
					double r = (3.0 + 0.7 * q) / mpp;
					draw_ellipse(b, t->tex_grain, cx, cy, r, r * 0.95, 0, 95, 120, 0);
				} else if (cls == FP_SYNTH_STROMA && pr < 0.22) {
					double th = 0.32 + 0.5 * (q - 0.5); /* along the fibres */
					draw_ellipse(b, t->tex_grain, cx, cy, 6.0 / mpp, 1.4 / mpp, th, 120, 100, 0);
				}
			} else { /* small round things: lymphocytes, red cells, debris */
				int lymph = 0;
				if (cls == FP_SYNTH_LYMPHOCYTES) lymph = pr < 0.9;
				else if (cls == FP_SYNTH_TUMOUR) lymph = pr < 0.22 * p->til_intra;
				else if (cls == FP_SYNTH_STROMA) lymph = pr < 0.30 * p->til_margin;
				else if (cls == FP_SYNTH_LIVER) lymph = pr < 0.01;
				if (lymph) {
					double r = (2.6 + 0.6 * q) / mpp;
					draw_ellipse(b, t->tex_grain, cx, cy, r, r, 0, 185, 80, 0);
				} else if (cls == FP_SYNTH_NECROSIS && pr < 0.35) {
					double r = (0.7 + 0.9 * q) / mpp;
					draw_ellipse(b, t->tex_grain, cx, cy, r, r, 0, 90, 200, 0);
				} else if ((cls == FP_SYNTH_VESSEL && pr < 0.6) || (cls == FP_SYNTH_THROMBUS && pr < 0.08)) {
					double r = 3.6 / mpp;
					draw_ellipse(b, t->tex_grain, cx, cy, r, r * (0.75 + 0.25 * q), 6.28 * q, 135, 0, 1);
				}
			}
		}
}

static void render_classes(struct synth_tissue *t, struct band *b)
{
	int mc = t->mc;
	uint32_t cw = (b->w + (uint32_t)mc - 1) / (uint32_t)mc;
	int64_t gy0 = b->y0 / mc, gy1 = (b->y1 - 1) / mc;
	for (int64_t gy = gy0; gy <= gy1; gy++)
		for (uint32_t gx = 0; gx < cw; gx++)
			t->cgrid[(size_t)(gy - gy0) * cw + gx] =
				(uint8_t)class_at(t, (gx + 0.5) * mc * t->mpp, (gy + 0.5) * mc * t->mpp);
	const uint8_t *G = t->tex_grain, *P = t->tex_plate, *F = t->tex_fibre;
	for (int64_t y = b->y0; y < b->y1; y++) {
		const uint8_t *crow = &t->cgrid[(size_t)(y / mc - gy0) * cw];
		uint8_t *hr = &b->h[(size_t)(y - b->y0) * b->w], *er = &b->e[(size_t)(y - b->y0) * b->w];
		size_t ty = (size_t)(y & (TEX - 1)) * TEX, ty2 = (size_t)(((y >> 1) + 211) & (TEX - 1)) * TEX;
		for (uint32_t gx = 0; gx < cw; gx++) {
			int cls = crow[gx];
			uint32_t xa = gx * (uint32_t)mc, xb = xa + (uint32_t)mc < b->w ? xa + (uint32_t)mc : b->w;
			for (uint32_t x = xa; x < xb; x++) {
				int g = G[ty + (x & (TEX - 1))];
				int hv, ev;
				switch (cls) {
				case FP_SYNTH_TUMOUR:
				case FP_SYNTH_THROMBUS:
					/* sinusoid-like slits between trabeculae, twice the liver's scale */
					if (P[ty2 + (((x >> 1) + 97) & (TEX - 1))] < 26) { hv = 2; ev = 10; }
					else { hv = 8 + g / 32; ev = 42 + g / 10; }
					break;
				case FP_SYNTH_LIVER:
					if (P[ty + (x & (TEX - 1))] < 30) { hv = 1; ev = 14; } /* sinusoids */
					else { hv = 5 + g / 40; ev = 36 + g / 12; }
					break;
				case FP_SYNTH_STROMA: hv = 4; ev = 52 + F[ty + (x & (TEX - 1))] / 12 + g / 12; break;
				case FP_SYNTH_LYMPHOCYTES: hv = 15; ev = 14 + g / 16; break;
				case FP_SYNTH_NECROSIS: hv = 6 + g / 25; ev = 26 + g / 8; break;
				case FP_SYNTH_VESSEL: hv = 0; ev = 5 + g / 40; break;
				default: hv = 0; ev = g / 120; break;
				}
				hr[x] = (uint8_t)hv;
				er[x] = (uint8_t)ev;
			}
		}
	}
}

enum fp_status synth_tissue_render(struct synth_tissue *t, uint32_t y0, uint32_t rows, uint8_t *out)
{
	if (rows == 0 || rows > FP_SYNTH_TILE || y0 + rows > t->g.height)
		return FP_FAIL(FP_ERR_INVALID_ARG, "render rows [%u, %u) outside the slide (%u rows)", y0, y0 + rows,
		               t->g.height);
	/* one halo row above and below for the vertical blur */
	struct band b = {(int64_t)y0 - 1, (int64_t)y0 + rows + 1, t->g.width, t->hbuf, t->ebuf};
	int64_t ylo = b.y0;
	if (b.y0 < 0) b.y0 = 0;
	if (b.y1 > t->g.height) b.y1 = t->g.height;
	b.h = t->hbuf + (size_t)(b.y0 - ylo) * b.w;
	b.e = t->ebuf + (size_t)(b.y0 - ylo) * b.w;
	render_classes(t, &b);
	scatter(t, &b, 13.0, t->key ^ 0x1001, 0);
	scatter(t, &b, 6.5, t->key ^ 0x2002, 1);

	/* the scanner's optics: 3-tap blur in x then y, on densities */
	int k = (int)lround(t->sc.blur * 256), kc = 256 - 2 * k;
	uint32_t w = b.w;
	for (int64_t y = b.y0; y < b.y1; y++) {
		uint8_t *rowp[2] = {&b.h[(size_t)(y - b.y0) * w], &b.e[(size_t)(y - b.y0) * w]};
		for (int c = 0; c < 2; c++) {
			uint8_t *r = rowp[c];
			int prev = r[0];
			for (uint32_t x = 0; x < w; x++) {
				int cur = r[x], next = x + 1 < w ? r[x + 1] : cur;
				r[x] = (uint8_t)((kc * cur + k * (prev + next) + 128) >> 8);
				prev = cur;
			}
		}
	}
	for (uint32_t yy = 0; yy < rows; yy++) {
		int64_t y = (int64_t)y0 + yy;
		int64_t ya = y > b.y0 ? y - 1 : y, yb = y + 1 < b.y1 ? y + 1 : y;
		const uint8_t *h0 = &b.h[(size_t)(ya - b.y0) * w], *h1 = &b.h[(size_t)(y - b.y0) * w], *h2 = &b.h[(size_t)(yb - b.y0) * w];
		const uint8_t *e0 = &b.e[(size_t)(ya - b.y0) * w], *e1 = &b.e[(size_t)(y - b.y0) * w], *e2 = &b.e[(size_t)(yb - b.y0) * w];
		uint8_t *o = out + (size_t)yy * w * 3;
		for (uint32_t x = 0; x < w; x++) {
			int hv = (kc * h1[x] + k * (h0[x] + h2[x]) + 128) >> 8;
			int ev = (kc * e1[x] + k * (e0[x] + e2[x]) + 128) >> 8;
			const uint8_t *l = &t->lut[(hv * 256 + ev) * 3];
			o[3 * x] = l[0];
			o[3 * x + 1] = l[1];
			o[3 * x + 2] = l[2];
		}
	}
	return FP_OK;
}

/* ---- the label ---- */

/* 5 x 7 block font: rows top to bottom, bit 4 = leftmost column. */
static const struct { char c; uint8_t rows[7]; } font[] = {
	{'A', {14, 17, 17, 31, 17, 17, 17}}, {'B', {30, 17, 17, 30, 17, 17, 30}}, {'C', {14, 17, 16, 16, 16, 17, 14}},
	{'D', {30, 17, 17, 17, 17, 17, 30}}, {'E', {31, 16, 16, 30, 16, 16, 31}}, {'F', {31, 16, 16, 30, 16, 16, 16}},
	{'G', {14, 17, 16, 23, 17, 17, 15}}, {'H', {17, 17, 17, 31, 17, 17, 17}}, {'I', {14, 4, 4, 4, 4, 4, 14}},
	{'J', {7, 2, 2, 2, 2, 18, 12}},      {'K', {17, 18, 20, 24, 20, 18, 17}}, {'L', {16, 16, 16, 16, 16, 16, 31}},
	{'M', {17, 27, 21, 21, 17, 17, 17}}, {'N', {17, 17, 25, 21, 19, 17, 17}}, {'O', {14, 17, 17, 17, 17, 17, 14}},
	{'P', {30, 17, 17, 30, 16, 16, 16}}, {'Q', {14, 17, 17, 17, 21, 18, 13}}, {'R', {30, 17, 17, 30, 20, 18, 17}},
	{'S', {15, 16, 16, 14, 1, 1, 30}},   {'T', {31, 4, 4, 4, 4, 4, 4}},       {'U', {17, 17, 17, 17, 17, 17, 14}},
	{'V', {17, 17, 17, 17, 17, 10, 4}},  {'W', {17, 17, 17, 21, 21, 21, 10}}, {'X', {17, 17, 10, 4, 10, 17, 17}},
	{'Y', {17, 17, 10, 4, 4, 4, 4}},     {'Z', {31, 1, 2, 4, 8, 16, 31}},     {'0', {14, 17, 19, 21, 25, 17, 14}},
	{'1', {4, 12, 4, 4, 4, 4, 14}},      {'2', {14, 17, 1, 2, 4, 8, 31}},     {'3', {31, 2, 4, 2, 1, 17, 14}},
	{'4', {2, 6, 10, 18, 31, 2, 2}},     {'5', {31, 16, 30, 1, 1, 17, 14}},   {'6', {6, 8, 16, 30, 17, 17, 14}},
	{'7', {31, 1, 2, 4, 8, 8, 8}},       {'8', {14, 17, 17, 14, 17, 17, 14}}, {'9', {14, 17, 17, 15, 1, 2, 12}},
	{'-', {0, 0, 0, 31, 0, 0, 0}},       {':', {0, 12, 12, 0, 12, 12, 0}},
};

static void draw_text(uint8_t *img, int w, int h, int x0, int y0, int scale, const char *s)
{
	for (; *s; s++, x0 += 6 * scale) {
		const uint8_t *rows = NULL;
		for (size_t k = 0; k < sizeof font / sizeof font[0]; k++)
			if (font[k].c == *s) rows = font[k].rows;
		if (!rows) continue;
		for (int ry = 0; ry < 7; ry++)
			for (int rx = 0; rx < 5; rx++) {
				if (!(rows[ry] & (16 >> rx))) continue;
				for (int dy = 0; dy < scale; dy++)
					for (int dx = 0; dx < scale; dx++) {
						int x = x0 + rx * scale + dx, y = y0 + ry * scale + dy;
						if (x >= 0 && y >= 0 && x < w && y < h) memset(&img[((size_t)y * w + x) * 3], 20, 3);
					}
			}
	}
}

void synth_label_draw(uint8_t *out, int w, int h, const char *line1, const char *line2, uint64_t key)
{
	memset(out, 250, (size_t)w * h * 3);
	draw_text(out, w, h, 16, 16, 4, line1);
	draw_text(out, w, h, 16, 16 + 40, 4, line2);
	/* a fake one-dimensional barcode */
	int x = 16;
	for (int k = 0; x < w - 16 && k < 64; k++) {
		int bw = 2 + (int)(synth_mix64(key + (uint64_t)k) % 4);
		if (k % 2 == 0)
			for (int y = h - 90; y < h - 20; y++)
				for (int dx = 0; dx < bw && x + dx < w; dx++) memset(&out[((size_t)y * w + x + dx) * 3], 10, 3);
		x += bw;
	}
}
