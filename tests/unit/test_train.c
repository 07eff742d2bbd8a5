/*
 * test_train.c: the layer list and the tile network (train/fp_model.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "fp_common.h"
#include "fp_model.h"
#include "fp_quantify.h"
#include "fp_site_train.h"
#include "fp_train.h"
#include "fp_test.h"

static struct fp_kernels *cpu(void)
{
	struct fp_kernels_options o;
	struct fp_kernels *k = NULL;
	fp_kernels_options_default(&o);
	o.threads = 1;
	CHECK_OK(fp_kernels_create(&o, &k));
	return k;
}

static void tiny_config(struct fp_tilenet_config *c)
{
	fp_tilenet_config_default(c);
	c->input_size = 8;
	c->width[0] = 4;
	c->width[1] = 4;
	c->width[2] = 8;
	c->blocks = 1;
	c->groups = 2;
}

static void fill_batch(float *x, int32_t *y, size_t per, int n, int classes, unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < per * (size_t)n; i++) x[i] = (float)rand() / RAND_MAX;
	for (int i = 0; i < n; i++) y[i] = (int32_t)(rand() % classes);
}

/* Statement: the analytic gradient of the whole network equals central finite
 * differences of its loss (relative tolerance, float). */
FP_TEST(gradient_matches_finite_differences)
{
	struct fp_kernels *k = cpu();
	struct fp_tilenet_config c;
	struct fp_model *m = NULL;
	int n = 3;
	tiny_config(&c);
	CHECK_OK(fp_model_create_tilenet(k, &c, n, 7, &m));
	size_t per = fp_model_input_floats(m), np = fp_model_n_params(m);
	float *x = malloc(per * n * sizeof(float)), *w = malloc(np * sizeof(float)), *g = malloc(np * sizeof(float));
	int32_t y[3];
	fill_batch(x, y, per, n, c.n_classes, 3);
	float loss;
	CHECK_OK(fp_model_get_params(m, w, np));
	CHECK_OK(fp_model_loss(m, x, y, NULL, n, 1, &loss, NULL));
	CHECK(isfinite(loss));
	CHECK_OK(fp_kernels_download(k, g, fp_model_grads(m), np * sizeof(float)));
	int checked = 0, bad = 0;
	for (size_t t = 0; t < fp_model_n_tensors(m); t++) {
		const struct fp_param_info *p = fp_model_tensor(m, t);
		double num = 0, den = 0;
		/* Up to 12 coordinates per tensor, spread over it. */
		size_t stride = p->count > 12 ? p->count / 12 : 1;
		for (size_t j = 0; j < p->count; j += stride) {
			size_t i = p->offset + j;
			float w0 = w[i], eps = 1e-3f * fmaxf(1.0f, fabsf(w0));
			float lp, lm;
			w[i] = w0 + eps;
			CHECK_OK(fp_model_set_params(m, w, np));
			CHECK_OK(fp_model_loss(m, x, y, NULL, n, 0, &lp, NULL));
			w[i] = w0 - eps;
			CHECK_OK(fp_model_set_params(m, w, np));
			CHECK_OK(fp_model_loss(m, x, y, NULL, n, 0, &lm, NULL));
			w[i] = w0;
			double fd = ((double)lp - lm) / (2.0 * ((double)(w0 + eps) - (double)w0));
			num += (fd - g[i]) * (fd - g[i]);
			den += fd * fd + (double)g[i] * g[i];
			/* A ReLU kink inside [w-eps, w+eps] spoils single coordinates. */
			if (fabs(fd - g[i]) > 2e-3 + 0.1 * fabs(fd)) bad++;
			checked++;
		}
		if (getenv("FP_TEST_VERBOSE")) fprintf(stderr, "%-24s rel %.3g\n", p->name, den > 0 ? sqrt(num / den) : 0.0);
		CHECK_MSG(den < 1e-12 || sqrt(num / den) < 0.05, "tensor %s: relative gradient error %.3g",
		          p->name, den > 0 ? sqrt(num / den) : 0.0);
	}
	CHECK_MSG(bad * 20 <= checked, "%d of %d coordinates off", bad, checked);
	free(x);
	free(w);
	free(g);
	fp_model_destroy(m);
	fp_kernels_destroy(k);
}

/* Statement: the same seed gives bit-identical initial parameters; the tile
 * network's tensors have PyTorch-style names and shapes. */
FP_TEST(init_is_deterministic_and_named)
{
	struct fp_kernels *k = cpu();
	struct fp_tilenet_config c;
	struct fp_model *a = NULL, *b = NULL;
	fp_tilenet_config_default(&c);
	CHECK_OK(fp_model_create_tilenet(k, &c, 2, 42, &a));
	CHECK_OK(fp_model_create_tilenet(k, &c, 4, 42, &b));
	size_t np = fp_model_n_params(a);
	CHECK_INT_EQ(np, fp_model_n_params(b));
	float *wa = malloc(np * sizeof(float)), *wb = malloc(np * sizeof(float));
	CHECK_OK(fp_model_get_params(a, wa, np));
	CHECK_OK(fp_model_get_params(b, wb, np));
	CHECK(memcmp(wa, wb, np * sizeof(float)) == 0);
	long t = fp_model_find_tensor(a, "s2.b0.conv1.weight");
	CHECK(t >= 0);
	const struct fp_param_info *p = fp_model_tensor(a, (size_t)t);
	CHECK_INT_EQ(p->ndim, 4);
	CHECK_INT_EQ(p->shape[0], 32);
	CHECK_INT_EQ(p->shape[1], 16);
	CHECK(fp_model_find_tensor(a, "s3.b0.down.conv.weight") >= 0);
	CHECK(fp_model_find_tensor(a, "head.bias") >= 0);
	CHECK_INT_EQ(fp_model_embed_dim(a), 64);
	free(wa);
	free(wb);
	fp_model_destroy(a);
	fp_model_destroy(b);
	fp_kernels_destroy(k);
}

/* ---- the trainer ---- */

/* A toy source: class c tiles are a per-class colour plus noise, so a small
 * network separates them within a few dozen steps. Batch = f(seed, step). */
struct toy {
	size_t per;
	int side, batch, classes;
	unsigned seed;
};

static enum fp_status toy_next(void *ctx, long step, float *x, int32_t *labels, int *n)
{
	struct toy *t = ctx;
	uint64_t s = (uint64_t)t->seed * 1000003u + (uint64_t)step;
	for (int b = 0; b < t->batch; b++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		int c = (int)((s >> 33) % (uint64_t)t->classes);
		labels[b] = c;
		for (int ch = 0; ch < 3; ch++) {
			float base = (float)((c * (ch + 2)) % t->classes) / (float)t->classes;
			for (int i = 0; i < t->side * t->side; i++) {
				s = s * 6364136223846793005ULL + 1442695040888963407ULL;
				float noise = (float)((s >> 40) & 0xffff) / 65536.0f - 0.5f;
				/* Colour and stripe period both tell the class. */
				int row = i / t->side;
				float stripe = ((row * (c + 1) / t->side) % 2) ? 0.5f : -0.5f;
				x[(size_t)b * t->per + (size_t)ch * t->side * t->side + i] = base + stripe + 0.3f * noise;
			}
		}
	}
	*n = t->batch;
	return FP_OK;
}

struct rig {
	struct fp_kernels *k;
	struct fp_model *m;
	struct fp_trainer *t;
	struct toy toy;
	float *x;
	int32_t *y;
};

static void rig_open(struct rig *r, int batch, uint64_t seed)
{
	struct fp_tilenet_config c;
	struct fp_train_options o;
	memset(r, 0, sizeof *r);
	r->k = cpu();
	tiny_config(&c);
	c.input_size = 16;
	CHECK_OK(fp_model_create_tilenet(r->k, &c, batch, seed, &r->m));
	fp_train_options_default(&o);
	o.lr = 1e-2;
	o.warmup_steps = 3;
	o.total_steps = 80;
	CHECK_OK(fp_trainer_create(r->m, &o, &r->t));
	r->toy.per = fp_model_input_floats(r->m);
	r->toy.side = c.input_size;
	r->toy.batch = batch;
	r->toy.classes = c.n_classes;
	r->toy.seed = 5;
	r->x = malloc(r->toy.per * (size_t)batch * sizeof(float));
	r->y = malloc((size_t)batch * sizeof(int32_t));
}

static void rig_close(struct rig *r)
{
	fp_trainer_destroy(r->t);
	fp_model_destroy(r->m);
	fp_kernels_destroy(r->k);
	free(r->x);
	free(r->y);
}

static float rig_step(struct rig *r)
{
	struct fp_step_stats s;
	int n;
	CHECK_OK(toy_next(&r->toy, fp_trainer_step_count(r->t), r->x, r->y, &n));
	CHECK_OK(fp_trainer_step(r->t, r->x, r->y, n, &s));
	return s.loss;
}

/* Statement: training lowers the loss on a learnable toy problem. */
FP_TEST(loss_decreases_on_toy_batches)
{
	struct rig r;
	rig_open(&r, 16, 1);
	double first = 0, last = 0;
	for (int i = 0; i < 80; i++) {
		float l = rig_step(&r);
		if (i < 5) first += l / 5.0;
		if (i >= 75) last += l / 5.0;
	}
	CHECK_MSG(last < 0.6 * first, "loss %.4f -> %.4f", first, last);
	rig_close(&r);
}

/* Statement: a step whose loss is not finite changes nothing and fails with
 * FP_ERR_NUMERIC naming the step. */
FP_TEST(nan_loss_changes_nothing)
{
	struct rig r;
	rig_open(&r, 4, 1);
	rig_step(&r);
	size_t np = fp_model_n_params(r.m);
	float *before = malloc(np * sizeof(float)), *after = malloc(np * sizeof(float));
	CHECK_OK(fp_model_get_params(r.m, before, np));
	int n;
	struct fp_step_stats s;
	CHECK_OK(toy_next(&r.toy, 1, r.x, r.y, &n));
	r.x[3] = NAN;
	CHECK_STATUS(fp_trainer_step(r.t, r.x, r.y, n, &s), FP_ERR_NUMERIC);
	CHECK_STR_CONTAINS(fp_error_msg(), "step 1");
	CHECK_INT_EQ(fp_trainer_step_count(r.t), 1);
	CHECK_OK(fp_model_get_params(r.m, after, np));
	CHECK(memcmp(before, after, np * sizeof(float)) == 0);
	free(before);
	free(after);
	rig_close(&r);
}

/* Statement: N steps straight and K steps, save, load into a fresh trainer,
 * N - K steps give bit-identical losses and parameters. */
FP_TEST(resume_is_bit_exact)
{
	enum { N = 10, K = 4 };
	struct rig a, b;
	float la[N], lb[N];
	char path[4096];
	snprintf(path, sizeof path, "%s/ckpt.h5", fp_test_tmpdir());
	rig_open(&a, 8, 3);
	for (int i = 0; i < N; i++) la[i] = rig_step(&a);
	rig_open(&b, 8, 3);
	for (int i = 0; i < K; i++) lb[i] = rig_step(&b);
	struct fp_train_state st = {.seed = 77, .epoch = 2, .best_metric = 0.5, .best_epoch = 1, .bad_epochs = 1};
	snprintf(st.run_config, sizeof st.run_config, "toy");
	CHECK_OK(fp_checkpoint_save(b.t, &st, path));
	rig_close(&b);
	rig_open(&b, 8, 999); /* different init: the checkpoint must overwrite it */
	struct fp_train_state got;
	CHECK_OK(fp_checkpoint_load(b.t, &got, path));
	CHECK_INT_EQ(fp_trainer_step_count(b.t), K);
	CHECK_INT_EQ(got.seed, 77);
	CHECK_INT_EQ(got.epoch, 2);
	CHECK_STR_EQ(got.run_config, "toy");
	for (int i = K; i < N; i++) lb[i] = rig_step(&b);
	for (int i = 0; i < N; i++) CHECK_MSG(memcmp(&la[i], &lb[i], sizeof(float)) == 0, "step %d: %.9g vs %.9g", i, la[i], lb[i]);
	size_t np = fp_model_n_params(a.m);
	float *wa = malloc(np * sizeof(float)), *wb = malloc(np * sizeof(float));
	CHECK_OK(fp_model_get_params(a.m, wa, np));
	CHECK_OK(fp_model_get_params(b.m, wb, np));
	CHECK(memcmp(wa, wb, np * sizeof(float)) == 0);
	free(wa);
	free(wb);
	rig_close(&a);
	rig_close(&b);
}

/* Statement: loading refuses a checkpoint whose model configuration differs,
 * naming both; a file that is not a checkpoint is refused clearly. */
FP_TEST(checkpoint_refuses_other_model)
{
	struct rig a;
	char path[4096], junk[4096];
	snprintf(path, sizeof path, "%s/ckpt.h5", fp_test_tmpdir());
	snprintf(junk, sizeof junk, "%s/junk.h5", fp_test_tmpdir());
	rig_open(&a, 2, 1);
	CHECK_OK(fp_checkpoint_save(a.t, NULL, path));
	struct fp_tilenet_config c;
	CHECK_OK(fp_checkpoint_read_config(path, &c));
	CHECK_INT_EQ(c.input_size, 16);
	struct fp_model *other = NULL;
	c.width[2] = 16;
	CHECK_OK(fp_model_create_tilenet(a.k, &c, 2, 1, &other));
	CHECK_STATUS(fp_checkpoint_load_params(other, path), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "width=4,4,8");
	CHECK_STR_CONTAINS(fp_error_msg(), "width=4,4,16");
	CHECK_OK(fp_file_commit(junk, "not hdf5", 8, 0644));
	CHECK_STATUS(fp_checkpoint_load_params(other, junk), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "junk.h5");
	fp_model_destroy(other);
	rig_close(&a);
}

/* Statement: fp_train_local_update returns delta = w_local - w_global, the
 * source's example count, and with mu > 0 a smaller update than mu = 0 on
 * the same batches (FedProx pulls towards the start weights); trained in
 * place (delta == global) it gives the same delta. */
FP_TEST(local_update_and_fedprox)
{
	struct rig r;
	rig_open(&r, 8, 2);
	size_t np = fp_model_n_params(r.m);
	float *global = malloc(np * sizeof(float)), *d0 = malloc(np * sizeof(float));
	float *d1 = malloc(np * sizeof(float)), *w = malloc(np * sizeof(float));
	CHECK_OK(fp_model_get_params(r.m, global, np));
	struct fp_batch_source src = {&r.toy, toy_next, 100};
	struct fp_local_options o = {.epochs = 1, .batch = 8, .reset_optimizer = 1};
	struct fp_local_result a, b;
	CHECK_OK(fp_train_local_update(r.t, global, np, &src, &o, d0, &a));
	CHECK_INT_EQ(a.steps, 13); /* ceil(100 / 8) */
	CHECK_INT_EQ(a.samples_seen, 13 * 8);
	CHECK_INT_EQ(a.n_examples, 100);
	CHECK(a.update_norm > 0 && isfinite(a.mean_loss));
	CHECK_OK(fp_model_get_params(r.m, w, np));
	for (size_t i = 0; i < np; i++) CHECK(w[i] - global[i] == d0[i]);
	o.prox_mu = 50.0;
	CHECK_OK(fp_train_local_update(r.t, global, np, &src, &o, d1, &b));
	CHECK_MSG(b.update_norm < a.update_norm, "mu=50 norm %.4g, mu=0 norm %.4g", b.update_norm, a.update_norm);
	/* The same call again is the same update: rounds are replayable. */
	o.prox_mu = 0.0;
	CHECK_OK(fp_train_local_update(r.t, global, np, &src, &o, d1, &b));
	CHECK(memcmp(d0, d1, np * sizeof(float)) == 0);
	/* In place (the site agent's way): delta written over global, the same. */
	memcpy(d1, global, np * sizeof(float));
	CHECK_OK(fp_train_local_update(r.t, d1, np, &src, &o, d1, &b));
	CHECK(memcmp(d0, d1, np * sizeof(float)) == 0);
	CHECK(b.update_norm == a.update_norm);
	free(global);
	free(d0);
	free(d1);
	free(w);
	rig_close(&r);
}

/* ---- TME features ---- */

/* A 24 x 24 tile grid (64 um tiles): a tumour disc of radius 8 tiles in liver;
 * `mode` 0: no lymphocytes, 1: a lymphocyte ring just outside the border,
 * 2: lymphocytes scattered through the tumour (as single cells: the tiles
 * stay "tumour", only their counts rise) and on every third tile inside.
 * lymph: cells per tile, 40 in lymphocyte-dense tiles, 2 elsewhere. */
static void tme_grid(int mode, float *probs, float *lymph, int32_t *xy, size_t *n)
{
	size_t k = 0;
	for (int gy = 0; gy < 24; gy++)
		for (int gx = 0; gx < 24; gx++) {
			double r = hypot(gx - 11.5, gy - 11.5);
			int c = r <= 8 ? FP_TME_TUMOUR : FP_TME_LIVER;
			if (mode == 1 && r > 8 && r <= 10) c = FP_TME_LYMPHOCYTES;
			if (mode == 2 && r <= 7 && (gx + gy) % 3 == 0) c = FP_TME_LYMPHOCYTES;
			for (int j = 0; j < FP_TME_N_CLASSES; j++) probs[k * FP_TME_N_CLASSES + j] = j == c ? 0.994f : 0.001f;
			lymph[k] = c == FP_TME_LYMPHOCYTES ? 40.0f : (mode == 2 && c == FP_TME_TUMOUR) ? 20.0f : 2.0f;
			xy[2 * k] = gx * 128 + 1000;
			xy[2 * k + 1] = gy * 128 + 500;
			k++;
		}
	*n = k;
}

/* Statement: a tumour with lymphocytes only in a ring at its border is
 * "excluded", with lymphocytes throughout "inflamed", without "desert";
 * densities are cells per mm^2 of the region's tiles; class fractions sum to
 * 1 over tissue; without counts or without tumour there is no phenotype. */
FP_TEST(tme_phenotypes_follow_geometry)
{
	static float probs[24 * 24 * FP_TME_N_CLASSES], lymph[24 * 24];
	static int32_t xy[24 * 24 * 2];
	struct fp_tme_options o;
	struct fp_tme_features f;
	size_t n;
	const int want[3] = {2, 1, 0};
	const double tile_mm2 = 0.064 * 0.064;
	fp_tme_options_default(&o);
	for (int mode = 0; mode < 3; mode++) {
		tme_grid(mode, probs, lymph, xy, &n);
		CHECK_OK(fp_tme_features(probs, lymph, xy, n, 128.0, 0.5, &o, &f));
		CHECK_MSG(f.phenotype == want[mode], "mode %d: phenotype %s (inside %.3f, margin %.3f)", mode,
		          fp_tme_phenotype_name(f.phenotype), f.lymph_density_tumour, f.lymph_density_margin);
		double sum = 0;
		for (int c = 0; c < FP_TME_N_CLASSES; c++) sum += f.frac[c];
		CHECK_NEAR(sum, 1.0, 1e-12, 0);
		CHECK_INT_EQ(f.tissue_tiles, 24 * 24);
		CHECK(f.inside_tiles > 0 && f.margin_tiles > 0);
		if (mode == 0) {
			CHECK_NEAR(f.lymph_density_tumour, 2.0 / tile_mm2, 1e-9, 1e-9);
			CHECK(isnan(f.lymph_density_margin)); /* no stroma at the margin */
			CHECK_NEAR(f.lymph_frac_tumour, 0.001, 1e-6, 0);
		}
		if (mode == 1) CHECK_NEAR(f.lymph_density_margin, 40.0 / tile_mm2, 1e-9, 1e-9);
		if (mode == 2) {
			CHECK(f.tumour_tiles > 190); /* enclosed lymphocyte tiles count as tumour */
			CHECK(f.lymph_density_tumour > 20.0 / tile_mm2 && f.lymph_density_tumour < 40.0 / tile_mm2);
		}
	}
	CHECK_NEAR(f.necrosis_pct, 0.0, 1e-12, 0);
	/* The border ring of R is not inside: a disc of radius 8 tiles has fewer
	 * inside tiles than tumour tiles by at least its perimeter. */
	CHECK(f.inside_tiles + 40 < f.tumour_tiles);
	/* Without counts the densities and the phenotype are unknown. */
	CHECK_OK(fp_tme_features(probs, NULL, xy, n, 128.0, 0.5, &o, &f));
	CHECK(isnan(f.lymph_density_tumour) && isnan(f.lymph_density_margin));
	CHECK_STR_EQ(fp_tme_phenotype_name(f.phenotype), "none");
	/* Without tumour there is no phenotype. */
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < FP_TME_N_CLASSES; j++) probs[i * FP_TME_N_CLASSES + j] = j == FP_TME_LIVER ? 0.94f : 0.01f;
	CHECK_OK(fp_tme_features(probs, lymph, xy, n, 128.0, 0.5, &o, &f));
	CHECK_INT_EQ(f.phenotype, -1);
	CHECK_STR_EQ(fp_tme_phenotype_name(f.phenotype), "none");
}

/* A 64 x 64 tile at 1 um/px drawn by Beer-Lambert with Ruifrok's H and E
 * vectors: eosin background with H = 0.1, discs of H = 1 at (cx, cy, r). */
static const float ruifrok_he[6] = {0.650f, 0.072f, 0.704f, 0.990f, 0.286f, 0.105f};
static void draw_nuclei(uint8_t *rgb, const double (*disc)[3], int nd)
{
	for (int y = 0; y < 64; y++)
		for (int x = 0; x < 64; x++) {
			double h = 0.1, e = 0.4;
			for (int k = 0; k < nd; k++)
				if (hypot(x + 0.5 - disc[k][0], y + 0.5 - disc[k][1]) < disc[k][2]) h = 1.0;
			for (int c = 0; c < 3; c++) {
				double v = 256.0 * exp(-(h * ruifrok_he[2 * c] + e * ruifrok_he[2 * c + 1])) - 1.0;
				rgb[(y * 64 + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
			}
		}
}

/* Statement: the detector counts lymphocyte-sized nuclei (radius 3 um) and
 * not tumour nuclei (radius 5.5 um), touching lymphocytes count apart, nuclei
 * cut by the tile edge are not counted, and a degenerate stain fit or tiles
 * too coarse for nuclei are refused. */
FP_TEST(lymphocyte_detector_counts_small_nuclei)
{
	static uint8_t rgb[64 * 64 * 3];
	struct fp_lymph_detector det;
	void *scratch = malloc(fp_lymph_scratch_bytes(64));
	CHECK(scratch != NULL);
	CHECK_OK(fp_lymph_detector_init(&det, ruifrok_he, 1.0, 1.0));
	const double lymphs[5][3] = {{12, 12, 3}, {30, 14, 2.8}, {50, 12, 3.2}, {12, 50, 3}, {18.2, 50, 3}};
	const double tumour[3][3] = {{32, 34, 5.5}, {50, 48, 6}, {16, 32, 5}};
	const double edge[2][3] = {{1, 30, 3}, {62, 62, 3}};
	double mix[10][3];
	int nm = 0;
	for (int k = 0; k < 5; k++) memcpy(mix[nm++], lymphs[k], sizeof mix[0]);
	for (int k = 0; k < 3; k++) memcpy(mix[nm++], tumour[k], sizeof mix[0]);
	for (int k = 0; k < 2; k++) memcpy(mix[nm++], edge[k], sizeof mix[0]);
	draw_nuclei(rgb, lymphs, 5);
	CHECK_INT_EQ(fp_lymph_count(&det, rgb, 64, scratch), 5);
	draw_nuclei(rgb, tumour, 3);
	CHECK_INT_EQ(fp_lymph_count(&det, rgb, 64, scratch), 0);
	draw_nuclei(rgb, mix, nm);
	CHECK_INT_EQ(fp_lymph_count(&det, rgb, 64, scratch), 5);
	draw_nuclei(rgb, NULL, 0);
	CHECK_INT_EQ(fp_lymph_count(&det, rgb, 64, scratch), 0);
	const float flat[6] = {0.7f, 0.7f, 0.7f, 0.7f, 0.14f, 0.14f};
	CHECK_STATUS(fp_lymph_detector_init(&det, flat, 1.0, 1.0), FP_ERR_DATA);
	CHECK_STATUS(fp_lymph_detector_init(&det, ruifrok_he, 0.0, 1.0), FP_ERR_DATA);
	CHECK_STATUS(fp_lymph_detector_init(&det, ruifrok_he, 1.0, 2.0), FP_ERR_INVALID_ARG);
	free(scratch);
}

/* Statement: without augmentation the input is the box-filtered tile in
 * [0, 1]; with flips and rotations only, the same draw gives the same input
 * and the pixels are a permutation of the unaugmented ones. */
FP_TEST(input_box_filter_and_augment)
{
	enum { T = 8, S = 4 };
	uint8_t rgb[T * T * 3];
	float a[3 * S * S], b[3 * S * S], c[3 * S * S];
	for (int i = 0; i < T * T * 3; i++) rgb[i] = (uint8_t)((i * 37) % 251);
	CHECK_OK(fp_tile_to_input(rgb, T, S, NULL, 0, 0, a));
	double want = (rgb[0] + rgb[3] + rgb[T * 3] + rgb[T * 3 + 3]) / 4.0 / 255.0;
	CHECK_NEAR(a[0], want, 1e-6, 0);
	struct fp_augment aug = {1, 1, 0, 0, 0};
	int moved = 0;
	for (uint64_t d = 0; d < 8; d++) {
		CHECK_OK(fp_tile_to_input(rgb, T, S, &aug, 9, d, b));
		CHECK_OK(fp_tile_to_input(rgb, T, S, &aug, 9, d, c));
		CHECK(memcmp(b, c, sizeof b) == 0);
		double sa = 0, sb = 0;
		for (int i = 0; i < 3 * S * S; i++) {
			sa += a[i];
			sb += b[i];
		}
		CHECK_NEAR(sb, sa, 1e-4, 0);
		moved |= memcmp(a, b, sizeof a) != 0;
	}
	CHECK(moved);
	struct fp_augment stain = {0, 0, 0.05, 0.1, 0.1};
	CHECK_OK(fp_tile_to_input(rgb, T, S, &stain, 9, 1, b));
	for (int i = 0; i < 3 * S * S; i++) CHECK(b[i] >= 0 && b[i] <= 1);
	CHECK_STATUS(fp_tile_to_input(rgb, T, 3, NULL, 0, 0, b), FP_ERR_INVALID_ARG);
}

/* ---- GPU (label gpu; exit 77 = no device) ---- */

/* Statement: on a CUDA handle the network's loss and gradient equal the CPU's
 * (loss within 1e-4 relative; each tensor's gradient within 1e-2 in relative
 * L2 norm, allowing TF32 engines) and five
 * training steps give losses within 1e-3 relative. Prints tiles/s of the
 * default model at batch 128 on the GPU. */
FP_TEST(gpu_matches_cpu)
{
	struct fp_kernels_options o;
	struct fp_kernels *kc = cpu(), *kg = NULL;
	/* The statement is about fp32: with cuBLAS/cuDNN allowed TF32, the stem's
	 * gradient differs by ~3% (measured on an H100) against 6e-4 without. */
	setenv("NVIDIA_TF32_OVERRIDE", "0", 0);
	fp_kernels_options_default(&o);
	o.backend = FP_BACKEND_CUDA;
	o.require = 1;
	if (fp_kernels_create(&o, &kg) != FP_OK) {
		fprintf(stderr, "SKIP: no CUDA device (%s)\n", fp_error_msg());
		fp_kernels_destroy(kc);
		exit(77);
	}
	struct fp_tilenet_config c;
	fp_tilenet_config_default(&c);
	c.input_size = 32;
	int n = 8;
	struct fp_model *mc = NULL, *mg = NULL;
	CHECK_OK(fp_model_create_tilenet(kc, &c, n, 3, &mc));
	CHECK_OK(fp_model_create_tilenet(kg, &c, n, 3, &mg));
	size_t per = fp_model_input_floats(mc), np = fp_model_n_params(mc);
	float *x = malloc(per * n * sizeof(float)), *gc = malloc(np * sizeof(float)), *gg = malloc(np * sizeof(float));
	int32_t y[8];
	fill_batch(x, y, per, n, c.n_classes, 11);
	float lc, lg;
	CHECK_OK(fp_model_loss(mc, x, y, NULL, n, 1, &lc, NULL));
	CHECK_OK(fp_model_loss(mg, x, y, NULL, n, 1, &lg, NULL));
	CHECK_NEAR(lg, lc, 1e-5, 1e-4);
	CHECK_OK(fp_kernels_download(kc, gc, fp_model_grads(mc), np * sizeof(float)));
	CHECK_OK(fp_kernels_download(kg, gg, fp_model_grads(mg), np * sizeof(float)));
	/* Per tensor: the cuDNN/cuBLAS engines may use TF32 and other orders, so
	 * single coordinates can differ by ~1%; the tensor as a whole may not. */
	double worst = 0;
	for (size_t t = 0; t < fp_model_n_tensors(mc); t++) {
		const struct fp_param_info *p = fp_model_tensor(mc, t);
		double num = 0, den = 0;
		for (size_t i = p->offset; i < p->offset + p->count; i++) {
			num += ((double)gg[i] - gc[i]) * ((double)gg[i] - gc[i]);
			den += (double)gc[i] * gc[i];
		}
		double rel = den > 0 ? sqrt(num / den) : sqrt(num);
		worst = rel > worst ? rel : worst;
		if (getenv("FP_TEST_VERBOSE")) printf("  %-24s %.3g\n", p->name, rel);
	}
	CHECK_MSG(worst < 1e-2, "GPU/CPU relative gradient difference %.3g (FP_TEST_VERBOSE=1 lists tensors)", worst);
	printf("GPU vs CPU: loss %.9g vs %.9g, worst per-tensor relative gradient difference %.3g\n", lg, lc, worst);
	struct fp_train_options to;
	struct fp_trainer *tc = NULL, *tg = NULL;
	fp_train_options_default(&to);
	CHECK_OK(fp_trainer_create(mc, &to, &tc));
	CHECK_OK(fp_trainer_create(mg, &to, &tg));
	for (int s = 0; s < 5; s++) {
		struct fp_step_stats a, b;
		CHECK_OK(fp_trainer_step(tc, x, y, n, &a));
		CHECK_OK(fp_trainer_step(tg, x, y, n, &b));
		CHECK_NEAR(b.loss, a.loss, 1e-5, 1e-3);
	}
	fp_trainer_destroy(tc);
	fp_trainer_destroy(tg);
	fp_model_destroy(mc);
	fp_model_destroy(mg);
	/* Throughput of the default model on the GPU (the CPU's is measured by
	 * the benchmarks, with the real BLAS and oneDNN). */
	fp_tilenet_config_default(&c);
	struct fp_kernels *ks[2] = {kc, kg};
	for (int b = 1; b < 2; b++) {
		int bn = 128;
		struct fp_model *m = NULL;
		struct fp_trainer *t = NULL;
		CHECK_OK(fp_model_create_tilenet(ks[b], &c, bn, 1, &m));
		CHECK_OK(fp_trainer_create(m, &to, &t));
		size_t pr = fp_model_input_floats(m);
		float *xb = malloc(pr * bn * sizeof(float));
		int32_t *yb = malloc(bn * sizeof(int32_t));
		fill_batch(xb, yb, pr, bn, c.n_classes, 5);
		CHECK_OK(fp_trainer_step(t, xb, yb, bn, NULL));
		int steps = 20;
		double t0 = fp_now_seconds();
		for (int s = 0; s < steps; s++) CHECK_OK(fp_trainer_step(t, xb, yb, bn, NULL));
		CHECK_OK(fp_kernels_sync(ks[b]));
		double dt = fp_now_seconds() - t0;
		printf("tilenet 64x64 batch %d train step on %s: %.1f tiles/s\n", bn, fp_kernels_describe(ks[b]),
		       steps * bn / dt);
		free(xb);
		free(yb);
		fp_trainer_destroy(t);
		fp_model_destroy(m);
	}
	free(x);
	free(gc);
	free(gg);
	fp_kernels_destroy(kg);
	fp_kernels_destroy(kc);
}

/* Statement: a tile's outputs do not depend on the other tiles of its batch
 * (GroupNorm works per sample): a batch of 4 and two batches of 2 agree. */
FP_TEST(outputs_independent_of_batch)
{
	struct fp_kernels *k = cpu();
	struct fp_tilenet_config c;
	struct fp_model *m = NULL;
	tiny_config(&c);
	c.input_size = 16;
	CHECK_OK(fp_model_create_tilenet(k, &c, 4, 9, &m));
	size_t per = fp_model_input_floats(m);
	float *x = malloc(per * 4 * sizeof(float)), whole[4 * 7], part[4 * 7], emb[4 * 8];
	int32_t y[4];
	fill_batch(x, y, per, 4, c.n_classes, 2);
	CHECK_OK(fp_model_forward(m, x, 4, whole, NULL, emb));
	CHECK_OK(fp_model_forward(m, x, 2, part, NULL, NULL));
	CHECK_OK(fp_model_forward(m, x + 2 * per, 2, part + 2 * 7, NULL, NULL));
	int exact = 1;
	for (int i = 0; i < 4 * 7; i++) {
		CHECK_NEAR(part[i], whole[i], 1e-6, 1e-5);
		exact &= part[i] == whole[i];
	}
	if (getenv("FP_TEST_VERBOSE")) printf("bit-identical: %d\n", exact);
	free(x);
	fp_model_destroy(m);
	fp_kernels_destroy(k);
}
