/*
 * test_part2_mil.c: the gated-attention MIL option of the Part 2 model
 * (train/fp_part2_mil.h), its checkpoint kind (train/fp_part2_ckpt.h), and
 * at a phantom site its bags from tile caches, its federated trainer
 * (federate/fp_trainers.h) and `fedpath predict --caches`.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fp_common.h"
#include "fp_eval_site.h"
#include "fp_kernels.h"
#include "fp_part2_ckpt.h"
#include "fp_part2_fed.h"
#include "fp_part2_mil.h"
#include "fp_plan.h"
#include "fp_synth.h"
#include "fp_test.h"
#include "fp_tile.h"
#include "fp_trainers.h"

static struct fp_kernels *cpu(void)
{
	struct fp_kernels_options o;
	struct fp_kernels *k = NULL;
	fp_kernels_options_default(&o);
	o.threads = 1;
	CHECK_OK(fp_kernels_create(&o, &k));
	return k;
}

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 11;
}

static double unif(uint64_t *s)
{
	return (double)lcg(s) / 9007199254740992.0;
}

static double gauss(uint64_t *s)
{
	double u = unif(s) + 1e-12, v = unif(s);
	return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* A phantom: n patients, pc clinical columns, bags of 4..max_bag tiles of
 * width e. A tile is "signal" with the patient's own probability q; signal
 * tiles carry +2 on embedding dimensions 0 and 1 over N(0, 1) noise. The
 * RFS log-hazard is 4 (q - 0.5) - 0.4 [regimen 2]: the outcome depends on a
 * tile-level signal that no clinical column carries. */
struct phantom {
	int n, pc, e;
	float *x, *emb, *t, *ev, *ot, *oe;
	int *regimen, strata[3];
	uint64_t *off;
	double *truth;
};

static void phantom_free(struct phantom *p)
{
	free(p->x);
	free(p->emb);
	free(p->t);
	free(p->ev);
	free(p->ot);
	free(p->oe);
	free(p->regimen);
	free(p->off);
	free(p->truth);
}

/* rare = 1: instead, k in 0..3 tiles of the bag carry +4 on dimensions 0
 * and 1 and the log-hazard is 0.9 k - 1.35 - 0.4 [regimen 2]: a signal held
 * by a few tiles, which a mean over the bag dilutes. */
static void phantom_kind(struct phantom *p, int n, int pc, int e, int max_bag, uint64_t seed, int rare)
{
	uint64_t s = seed;
	memset(p, 0, sizeof *p);
	p->n = n, p->pc = pc, p->e = e;
	p->x = malloc(((size_t)n * pc + 1) * sizeof(float));
	p->t = malloc((size_t)n * sizeof(float));
	p->ev = malloc((size_t)n * sizeof(float));
	p->ot = malloc((size_t)n * sizeof(float));
	p->oe = malloc((size_t)n * sizeof(float));
	p->regimen = malloc((size_t)n * sizeof(int));
	p->off = malloc(((size_t)n + 1) * sizeof(uint64_t));
	p->truth = malloc((size_t)n * sizeof(double));
	p->off[0] = 0;
	for (int i = 0; i < n; i++) p->off[i + 1] = p->off[i] + 4 + lcg(&s) % (uint64_t)(max_bag - 3);
	p->emb = malloc(p->off[n] * (size_t)e * sizeof(float));
	for (int i = 0; i < n; i++) {
		double q = unif(&s);
		int k = (int)(lcg(&s) % 4);
		for (int j = 0; j < pc; j++) p->x[i * pc + j] = (float)gauss(&s);
		for (uint64_t t = p->off[i]; t < p->off[i + 1]; t++) {
			int sig = rare ? t < p->off[i] + (uint64_t)k : unif(&s) < q;
			double shift = rare ? 4.0 : 2.0;
			for (int j = 0; j < e; j++) p->emb[t * e + j] = (float)(gauss(&s) + (sig && j < 2 ? shift : 0.0));
		}
		p->regimen[i] = (int)(lcg(&s) % 3);
		double lp = (rare ? 0.9 * k - 1.35 : 4.0 * (q - 0.5)) - (p->regimen[i] == 2 ? 0.4 : 0.0);
		p->truth[i] = lp;
		double tt = -log(unif(&s) + 1e-12) / (0.05 * exp(lp)), c = 10 + 50 * unif(&s);
		p->t[i] = (float)fmin(tt, c) + 0.01f;
		p->ev[i] = tt <= c;
		p->ot[i] = p->t[i] + 5.0f;
		p->oe[i] = p->ev[i] > 0 && unif(&s) < 0.5;
	}
	p->strata[0] = 0;
	p->strata[1] = n / 2;
	p->strata[2] = n;
}

static void phantom(struct phantom *p, int n, int pc, int e, int max_bag, uint64_t seed)
{
	phantom_kind(p, n, pc, e, max_bag, seed, 0);
}

static struct fp_part2_batch batch_of(const struct phantom *p)
{
	struct fp_part2_batch b = {p->n, p->pc, p->x, p->regimen, p->t, p->ev, p->ot, p->oe, 2, p->strata};
	return b;
}

static struct fp_part2_bags bags_of(const struct phantom *p)
{
	struct fp_part2_bags g = {p->n, p->e, p->off, p->emb, NULL};
	return g;
}

static void small_cfg(struct fp_part2_config *cfg)
{
	fp_part2_config_default(cfg);
	cfg->kind = FP_P2_MIL;
	cfg->hidden = 5;
	cfg->attn = 4;
	cfg->bag_cap = 64;
}

static int check_fd(double fd, double an, const char *what, size_t i)
{
	double tol = 2e-3 + 3e-2 * fmax(fabs(fd), fabs(an));
	if (fabs(fd - an) <= tol) return 0;
	fprintf(stderr, "%s %zu: analytic %.6g, finite difference %.6g\n", what, i, an, fd);
	return 1;
}

/* Analytic gradients of the attention parameters and of the tile
 * embeddings against central finite differences of the loss. */
FP_TEST(gradient_matches_finite_differences)
{
	struct phantom p;
	phantom(&p, 24, 2, 5, 9, 3);
	struct fp_kernels *k = cpu();
	struct fp_part2_config cfg;
	small_cfg(&cfg);
	struct fp_part2_mil *m = NULL;
	CHECK_OK(fp_part2_mil_create(k, p.pc, p.e, p.n, &cfg, &m));
	struct fp_part2_batch b = batch_of(&p);
	struct fp_part2_bags g = bags_of(&p);
	size_t np = fp_part2_mil_n_params(m), ne = p.off[p.n] * (size_t)p.e;
	float *w = malloc(np * sizeof(float)), *gr = malloc(np * sizeof(float)), *demb = malloc(ne * sizeof(float));
	CHECK_OK(fp_part2_mil_get_params(m, w));
	struct fp_part2_loss l, lp, lm;
	CHECK_OK(fp_part2_mil_loss(m, &b, &g, 1, demb, &l));
	CHECK(l.rfs > 0 && l.prop > 0);
	CHECK_OK(fp_part2_mil_get_grads(m, gr));
	int bad = 0, checked = 0, n_att = 0;
	double h = 1e-2;
	for (size_t i = 0; i < np; i++) {
		int att = strncmp(fp_part2_mil_param_name(m, i), "mil.", 4) == 0;
		if (!att && i % 7) continue; /* every attention parameter, a sample of the head's */
		n_att += att;
		float save = w[i];
		w[i] = save + (float)h;
		CHECK_OK(fp_part2_mil_set_params(m, w));
		CHECK_OK(fp_part2_mil_loss(m, &b, &g, 0, NULL, &lp));
		w[i] = save - (float)h;
		CHECK_OK(fp_part2_mil_set_params(m, w));
		CHECK_OK(fp_part2_mil_loss(m, &b, &g, 0, NULL, &lm));
		w[i] = save;
		bad += check_fd((lp.total - lm.total) / (2 * h), gr[i], fp_part2_mil_param_name(m, i), i);
		checked++;
	}
	CHECK_OK(fp_part2_mil_set_params(m, w));
	CHECK_INT_EQ(n_att, 2 * cfg.attn * p.e + 3 * cfg.attn);
	/* the inputs: every 5th embedding value */
	for (size_t i = 0; i < ne; i += 5) {
		float save = p.emb[i];
		p.emb[i] = save + (float)h;
		CHECK_OK(fp_part2_mil_loss(m, &b, &g, 0, NULL, &lp));
		p.emb[i] = save - (float)h;
		CHECK_OK(fp_part2_mil_loss(m, &b, &g, 0, NULL, &lm));
		p.emb[i] = save;
		bad += check_fd((lp.total - lm.total) / (2 * h), demb[i], "embedding", i);
		checked++;
	}
	/* ReLU kinks can spoil one or two points; more means a wrong gradient. */
	CHECK_MSG(bad <= checked / 50 + 1, "%d of %d gradients differ from finite differences", bad, checked);
	free(w);
	free(gr);
	free(demb);
	fp_part2_mil_destroy(m);
	fp_kernels_destroy(k);
	phantom_free(&p);
}

/* A bag is a set: the order of its tiles does not change the loss. */
FP_TEST(bag_order_does_not_matter)
{
	struct phantom p;
	phantom(&p, 30, 3, 6, 12, 5);
	struct fp_kernels *k = cpu();
	struct fp_part2_config cfg;
	small_cfg(&cfg);
	struct fp_part2_mil *m = NULL;
	CHECK_OK(fp_part2_mil_create(k, p.pc, p.e, p.n, &cfg, &m));
	struct fp_part2_batch b = batch_of(&p);
	struct fp_part2_bags g = bags_of(&p);
	struct fp_part2_loss l0, l1;
	float eta0[30 * 3], eta1[30 * 3];
	CHECK_OK(fp_part2_mil_loss(m, &b, &g, 0, NULL, &l0));
	CHECK_OK(fp_part2_mil_predict(m, p.x, &g, eta0, NULL, NULL, NULL));
	/* reverse every bag, then rotate it by one */
	float *tmp = malloc((size_t)p.e * sizeof(float));
	for (int i = 0; i < p.n; i++) {
		uint64_t a = p.off[i], z = p.off[i + 1] - 1;
		for (; a < z; a++, z--) {
			memcpy(tmp, p.emb + a * p.e, (size_t)p.e * sizeof(float));
			memcpy(p.emb + a * p.e, p.emb + z * p.e, (size_t)p.e * sizeof(float));
			memcpy(p.emb + z * p.e, tmp, (size_t)p.e * sizeof(float));
		}
		uint64_t o = p.off[i], len = p.off[i + 1] - o;
		memcpy(tmp, p.emb + o * p.e, (size_t)p.e * sizeof(float));
		memmove(p.emb + o * p.e, p.emb + (o + 1) * p.e, (size_t)(len - 1) * (size_t)p.e * sizeof(float));
		memcpy(p.emb + (o + len - 1) * p.e, tmp, (size_t)p.e * sizeof(float));
	}
	CHECK_OK(fp_part2_mil_loss(m, &b, &g, 0, NULL, &l1));
	CHECK_OK(fp_part2_mil_predict(m, p.x, &g, eta1, NULL, NULL, NULL));
	CHECK_NEAR(l1.total, l0.total, 1e-6, 1e-5);
	for (int i = 0; i < p.n * 3; i++) CHECK_NEAR(eta1[i], eta0[i], 1e-5, 1e-5);
	free(tmp);
	fp_part2_mil_destroy(m);
	fp_kernels_destroy(k);
	phantom_free(&p);
}

static double harrell(const float *eta, const int *reg, const float *t, const float *e, int n)
{
	double conc = 0, pairs = 0;
	for (int i = 0; i < n; i++) {
		if (!(e[i] > 0)) continue;
		for (int j = 0; j < n; j++) {
			if (!(t[j] > t[i])) continue;
			double si = eta[3 * i + reg[i]], sj = eta[3 * j + reg[j]];
			pairs += 1;
			conc += si > sj ? 1 : si == sj ? 0.5 : 0;
		}
	}
	return conc / pairs;
}

/* Same seed and data: bit-identical parameters. On the phantom, training
 * (the default 80 steps) lowers the loss and ranks held-out patients clearly
 * better than chance (measured 0.687; the true log-hazard gives 0.769). */
FP_TEST(training_learns_a_tile_level_signal)
{
	struct phantom tr, te;
	phantom(&tr, 300, 2, 8, 40, 11);
	phantom(&te, 300, 2, 8, 40, 12);
	struct fp_kernels *k = cpu();
	struct fp_part2_config cfg;
	fp_part2_config_default(&cfg);
	cfg.kind = FP_P2_MIL;
	cfg.attn = 8;
	cfg.seed = 4;
	struct fp_part2_batch b = batch_of(&tr);
	struct fp_part2_bags g = bags_of(&tr), gt = bags_of(&te);
	float *w[2] = {NULL, NULL}, *eta = malloc((size_t)te.n * 3 * sizeof(float));
	struct fp_part2_loss before, after;
	double c_before = 0, c_after = 0;
	for (int r = 0; r < 2; r++) {
		struct fp_part2_mil *m = NULL;
		CHECK_OK(fp_part2_mil_create(k, tr.pc, tr.e, tr.n, &cfg, &m));
		CHECK_OK(fp_part2_mil_loss(m, &b, &g, 0, NULL, &before));
		CHECK_OK(fp_part2_mil_predict(m, te.x, &gt, eta, NULL, NULL, NULL));
		c_before = harrell(eta, te.regimen, te.t, te.ev, te.n);
		CHECK_OK(fp_part2_mil_train(m, &b, &g, NULL, 0, &after));
		CHECK_OK(fp_part2_mil_predict(m, te.x, &gt, eta, NULL, NULL, NULL));
		c_after = harrell(eta, te.regimen, te.t, te.ev, te.n);
		w[r] = malloc(fp_part2_mil_n_params(m) * sizeof(float));
		CHECK_OK(fp_part2_mil_get_params(m, w[r]));
		if (r == 1) CHECK(memcmp(w[0], w[1], fp_part2_mil_n_params(m) * sizeof(float)) == 0);
		fp_part2_mil_destroy(m);
	}
	float *truth = malloc((size_t)te.n * 3 * sizeof(float));
	for (int i = 0; i < te.n; i++)
		for (int a = 0; a < 3; a++) truth[3 * i + a] = (float)te.truth[i];
	double c_truth = harrell(truth, te.regimen, te.t, te.ev, te.n);
	fprintf(stderr, "held-out C-index: before %.3f, after %.3f, true linear predictor %.3f; loss %.4f -> %.4f\n",
	        c_before, c_after, c_truth, before.total, after.total);
	CHECK_MSG(after.rfs < before.rfs - 0.02, "RFS loss %g did not fall clearly below %g", after.rfs, before.rfs);
	CHECK_MSG(c_after > 0.62, "held-out C-index %.3f is not clearly above chance", c_after);
	free(truth);
	free(eta);
	free(w[0]);
	free(w[1]);
	fp_kernels_destroy(k);
	phantom_free(&tr);
	phantom_free(&te);
}

/* Mean embedding per patient (n, pc + e): the input of a summary model that
 * pools by averaging. */
static float *mean_design(const struct phantom *p)
{
	int w = p->pc + p->e;
	float *x = malloc((size_t)p->n * (size_t)w * sizeof(float));
	for (int i = 0; i < p->n; i++) {
		for (int j = 0; j < p->pc; j++) x[i * w + j] = p->x[i * p->pc + j];
		for (int j = 0; j < p->e; j++) {
			double acc = 0;
			for (uint64_t t = p->off[i]; t < p->off[i + 1]; t++) acc += p->emb[t * p->e + j];
			x[i * w + p->pc + j] = (float)(acc / (double)(p->off[i + 1] - p->off[i]));
		}
	}
	return x;
}

/* When a few tiles carry the signal, attention finds them and averaging
 * dilutes them: the MIL model ranks held-out patients better than the
 * summary model fed each patient's mean embedding (bags of 4-120 tiles;
 * measured 0.700 vs 0.605 here; phantom seeds 31, 41, 51 gave 0.608 vs
 * 0.553, 0.613 vs 0.596, 0.677 vs 0.608). */
FP_TEST(attention_beats_the_mean_on_a_few_tile_signal)
{
	struct phantom tr, te;
	phantom_kind(&tr, 300, 2, 8, 120, 21, 1);
	phantom_kind(&te, 300, 2, 8, 120, 22, 1);
	struct fp_kernels *k = cpu();
	struct fp_part2_config cfg;
	fp_part2_config_default(&cfg);
	cfg.kind = FP_P2_MIL;
	cfg.attn = 8;
	struct fp_part2_batch b = batch_of(&tr);
	struct fp_part2_bags g = bags_of(&tr), gt = bags_of(&te);
	float *eta = malloc((size_t)te.n * 3 * sizeof(float));
	struct fp_part2_mil *m = NULL;
	CHECK_OK(fp_part2_mil_create(k, tr.pc, tr.e, tr.n, &cfg, &m));
	CHECK_OK(fp_part2_mil_train(m, &b, &g, NULL, 0, NULL));
	CHECK_OK(fp_part2_mil_predict(m, te.x, &gt, eta, NULL, NULL, NULL));
	double c_mil = harrell(eta, te.regimen, te.t, te.ev, te.n);
	fp_part2_mil_destroy(m);
	struct fp_part2_config cs;
	fp_part2_config_default(&cs);
	float *xa = mean_design(&tr), *xb = mean_design(&te);
	struct fp_part2_model *sm = NULL;
	CHECK_OK(fp_part2_create(k, tr.pc + tr.e, tr.n, &cs, &sm));
	struct fp_part2_batch bs = b;
	bs.x = xa;
	bs.p = tr.pc + tr.e;
	CHECK_OK(fp_part2_train(sm, &bs, NULL, 0, NULL));
	CHECK_OK(fp_part2_predict(sm, xb, te.n, eta, NULL, NULL));
	double c_mean = harrell(eta, te.regimen, te.t, te.ev, te.n);
	for (int i = 0; i < te.n; i++)
		for (int a = 0; a < 3; a++) eta[3 * i + a] = (float)te.truth[i];
	double c_truth = harrell(eta, te.regimen, te.t, te.ev, te.n);
	fprintf(stderr, "held-out C-index: MIL %.3f, mean embedding %.3f, true log-hazard %.3f\n", c_mil, c_mean, c_truth);
	CHECK_MSG(c_mil > c_mean + 0.01, "MIL %.3f does not beat the mean embedding %.3f", c_mil, c_mean);
	fp_part2_destroy(sm);
	free(xa);
	free(xb);
	free(eta);
	fp_kernels_destroy(k);
	phantom_free(&tr);
	phantom_free(&te);
}

/* FedProx with a large mu keeps the weights, attention included, near the centre. */
FP_TEST(fedprox_pulls_towards_the_centre)
{
	struct phantom p;
	phantom(&p, 60, 2, 6, 10, 9);
	struct fp_kernels *k = cpu();
	struct fp_part2_config cfg;
	small_cfg(&cfg);
	cfg.steps = 40;
	struct fp_part2_batch b = batch_of(&p);
	struct fp_part2_bags g = bags_of(&p);
	double d[2];
	for (int r = 0; r < 2; r++) {
		struct fp_part2_mil *m = NULL;
		CHECK_OK(fp_part2_mil_create(k, p.pc, p.e, p.n, &cfg, &m));
		size_t np = fp_part2_mil_n_params(m);
		float *w0 = malloc(np * sizeof(float)), *w1 = malloc(np * sizeof(float));
		CHECK_OK(fp_part2_mil_get_params(m, w0));
		CHECK_OK(fp_part2_mil_train(m, &b, &g, r ? w0 : NULL, r ? 100.0 : 0.0, NULL));
		CHECK_OK(fp_part2_mil_get_params(m, w1));
		d[r] = 0;
		for (size_t i = 0; i < np; i++) d[r] += ((double)w1[i] - w0[i]) * ((double)w1[i] - w0[i]);
		free(w0);
		free(w1);
		fp_part2_mil_destroy(m);
	}
	CHECK_MSG(d[1] < 0.5 * d[0], "FedProx moved %g, free training %g", sqrt(d[1]), sqrt(d[0]));
	fp_kernels_destroy(k);
	phantom_free(&p);
}

/* A patient without embeddings and a width mismatch are clear errors. */
FP_TEST(bad_bags_are_refused)
{
	struct phantom p;
	phantom(&p, 10, 2, 4, 6, 2);
	struct fp_kernels *k = cpu();
	struct fp_part2_config cfg;
	small_cfg(&cfg);
	struct fp_part2_mil *m = NULL;
	CHECK_OK(fp_part2_mil_create(k, p.pc, p.e, p.n, &cfg, &m));
	struct fp_part2_batch b = batch_of(&p);
	const char *ids[10] = {"P01", "P02", "P03", "P04", "P05", "P06", "P07", "P08", "P09", "P10"};
	struct fp_part2_bags g = bags_of(&p);
	g.patient = ids;
	struct fp_part2_loss l;
	/* patient 4 (row 4) gets an empty bag */
	uint64_t *off = malloc(11 * sizeof(uint64_t));
	memcpy(off, p.off, 11 * sizeof(uint64_t));
	off[4] = off[3];
	g.offset = off;
	CHECK_STATUS(fp_part2_mil_loss(m, &b, &g, 0, NULL, &l), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "patient P04");
	CHECK_STR_CONTAINS(fp_error_msg(), "no tile embeddings");
	CHECK_STATUS(fp_part2_mil_train(m, &b, &g, NULL, 0, NULL), FP_ERR_DATA);
	g.offset = p.off;
	/* embeddings of another width than the model's */
	g.e = p.e + 1;
	CHECK_STATUS(fp_part2_mil_predict(m, p.x, &g, NULL, NULL, NULL, NULL), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "5 wide but the model takes 4");
	g.e = p.e;
	CHECK_OK(fp_part2_mil_loss(m, &b, &g, 0, NULL, &l));
	/* a summary configuration is not a MIL model, and back */
	struct fp_part2_mil *m2 = NULL;
	struct fp_part2_model *s = NULL;
	struct fp_part2_config c2 = cfg;
	c2.kind = FP_P2_SUMMARY;
	CHECK_STATUS(fp_part2_mil_create(k, p.pc, p.e, p.n, &c2, &m2), FP_ERR_INVALID_ARG);
	CHECK_STATUS(fp_part2_create(k, p.pc + p.e, p.n, &cfg, &s), FP_ERR_INVALID_ARG);
	CHECK_STR_CONTAINS(fp_error_msg(), "MIL model");
	free(off);
	fp_part2_mil_destroy(m);
	fp_kernels_destroy(k);
	phantom_free(&p);
}

/* The cap: a deterministic subsample that ignores the order slides are
 * listed in; small bags are kept whole. */
FP_TEST(bag_cap_is_deterministic_and_order_free)
{
	enum { E = 3 };
	float a[50 * E], c[30 * E], d[5 * E];
	for (int i = 0; i < 50 * E; i++) a[i] = (float)i;
	for (int i = 0; i < 30 * E; i++) c[i] = 1000.0f + (float)i;
	for (int i = 0; i < 5 * E; i++) d[i] = -1.0f - (float)i;
	struct fp_p2_slide_emb s1[3] = {{0, "slideA", 50, a}, {0, "slideC", 30, c}, {1, "slideD", 5, d}};
	struct fp_p2_slide_emb s2[3] = {s1[2], s1[1], s1[0]};
	struct fp_p2_bagset x, y, z;
	CHECK_OK(fp_p2_bagset_build(2, E, s1, 3, 16, 7, &x));
	CHECK_OK(fp_p2_bagset_build(2, E, s2, 3, 16, 7, &y));
	CHECK_OK(fp_p2_bagset_build(2, E, s1, 3, 16, 8, &z));
	CHECK_INT_EQ((int)x.offset[1], 16);
	CHECK_INT_EQ((int)(x.offset[2] - x.offset[1]), 5);
	CHECK_INT_EQ(x.n_capped, 1);
	CHECK_INT_EQ((int)x.n_tiles_in, 85);
	CHECK_INT_EQ((int)x.n_tiles_kept, 21);
	CHECK(memcmp(x.emb, y.emb, 21 * E * sizeof(float)) == 0);
	CHECK(memcmp(x.emb, z.emb, 16 * E * sizeof(float)) != 0); /* another seed, another subsample */
	/* both slides contribute, and every kept row is a whole tile */
	int from_a = 0, from_c = 0;
	for (int t = 0; t < 16; t++) {
		float v0 = x.emb[t * E];
		CHECK(x.emb[t * E + 1] == v0 + 1 && x.emb[t * E + 2] == v0 + 2);
		from_a += v0 < 1000, from_c += v0 >= 1000;
	}
	CHECK(from_a > 0 && from_c > 0);
	CHECK(memcmp(x.emb + 16 * E, d, sizeof d) == 0); /* the small bag is kept whole, in order */
	fp_p2_bagset_close(&x);
	fp_p2_bagset_close(&y);
	fp_p2_bagset_close(&z);
	float bad[E] = {1, NAN, 2};
	struct fp_p2_slide_emb s3 = {0, "slideN", 1, bad};
	CHECK_STATUS(fp_p2_bagset_build(1, E, &s3, 1, 16, 7, &x), FP_ERR_DATA);
}

/* The checkpoint records the kind; a MIL file round-trips and is refused as
 * a summary model (and a summary file as MIL). */
FP_TEST(checkpoint_records_the_kind)
{
	struct phantom p;
	phantom(&p, 12, 2, 4, 6, 6);
	struct fp_kernels *k = cpu();
	struct fp_part2_config cfg;
	small_cfg(&cfg);
	struct fp_part2_mil *m = NULL;
	CHECK_OK(fp_part2_mil_create(k, p.pc, p.e, p.n, &cfg, &m));
	struct fp_p2_ckpt ck, back;
	memset(&ck, 0, sizeof ck);
	ck.cfg = cfg;
	ck.pooled.p = 2;
	ck.pooled.n_patients = 12;
	snprintf(ck.pooled.names[0], FP_P2_NAME_MAX, "age");
	snprintf(ck.pooled.names[1], FP_P2_NAME_MAX, "mvi");
	for (int j = 0; j < 2; j++) ck.pooled.count[j] = 12, ck.pooled.sum[j] = 1, ck.pooled.sumsq[j] = 20;
	ck.p = 2;
	char names[2][FP_P2_NAME_MAX] = {"age", "mvi"};
	ck.names = names;
	ck.embed_dim = p.e;
	ck.n_params = fp_part2_mil_n_params(m);
	CHECK(ck.n_params == fp_p2_ckpt_expected_params_of(&cfg, 2, p.e));
	float *w = malloc(ck.n_params * sizeof(float));
	CHECK_OK(fp_part2_mil_get_params(m, w));
	ck.params = w;
	char sites[1][33] = {"S1"};
	double h0[1][FP_P2_CKPT_HORIZONS] = {{0.1, 0.2, 0.3}};
	ck.n_sites = 1;
	ck.sites = sites;
	ck.h0 = h0;
	char path[] = "/tmp/fp_test_p2milXXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK_OK(fp_p2_ckpt_save(&ck, path));
	CHECK_OK(fp_p2_ckpt_load(path, &back));
	CHECK_INT_EQ(back.cfg.kind, FP_P2_MIL);
	CHECK_INT_EQ(back.cfg.attn, cfg.attn);
	CHECK_INT_EQ(back.cfg.bag_cap, cfg.bag_cap);
	CHECK_INT_EQ(back.embed_dim, p.e);
	CHECK(back.n_params == ck.n_params && memcmp(back.params, w, ck.n_params * sizeof(float)) == 0);
	CHECK_OK(fp_p2_ckpt_require_kind(&back, FP_P2_MIL, path));
	CHECK_STATUS(fp_p2_ckpt_require_kind(&back, FP_P2_SUMMARY, path), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "is a mil model, but a summary model was asked for");
	/* the parameters load into a model of the same shape and predict alike */
	struct fp_part2_mil *m2 = NULL;
	CHECK_OK(fp_part2_mil_create(k, back.p, back.embed_dim, p.n, &back.cfg, &m2));
	CHECK_OK(fp_part2_mil_set_params(m2, back.params));
	struct fp_part2_bags g = bags_of(&p);
	float e1[12 * 3], e2[12 * 3];
	CHECK_OK(fp_part2_mil_predict(m, p.x, &g, e1, NULL, NULL, NULL));
	CHECK_OK(fp_part2_mil_predict(m2, p.x, &g, e2, NULL, NULL, NULL));
	CHECK(memcmp(e1, e2, sizeof e1) == 0);
	fp_p2_ckpt_close(&back);
	/* a summary checkpoint is not MIL */
	ck.cfg.kind = FP_P2_SUMMARY;
	ck.embed_dim = 0;
	ck.n_params = fp_p2_ckpt_expected_params(2, cfg.hidden);
	CHECK_OK(fp_p2_ckpt_save(&ck, path));
	CHECK_OK(fp_p2_ckpt_load(path, &back));
	CHECK_INT_EQ(back.cfg.kind, FP_P2_SUMMARY);
	CHECK_STATUS(fp_p2_ckpt_require_kind(&back, FP_P2_MIL, path), FP_ERR_FORMAT);
	fp_p2_ckpt_close(&back);
	unlink(path);
	free(w);
	fp_part2_mil_destroy(m);
	fp_part2_mil_destroy(m2);
	fp_kernels_destroy(k);
	phantom_free(&p);
}

/* Writes /features/tilenet (n, e) into a tile cache: a stand-in for what
 * `fedpath quantify` stores, drawn from the seed. */
static int write_embeddings(const char *path, int e, uint64_t seed)
{
	struct fp_tile_cache *c = NULL;
	if (fp_tile_cache_open(path, &c) != FP_OK) return -1;
	hsize_t n = fp_tile_cache_count(c);
	fp_tile_cache_close(c);
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	if (f < 0) return -1;
	float *v = malloc((size_t)(n ? n : 1) * (size_t)e * sizeof(float));
	for (hsize_t i = 0; i < n * (hsize_t)e; i++) v[i] = (float)gauss(&seed);
	if (H5Lexists(f, "features", H5P_DEFAULT) > 0) H5Ldelete(f, "features", H5P_DEFAULT);
	hid_t g = H5Gcreate2(f, "features", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	hsize_t dims[2] = {n, (hsize_t)e};
	hid_t sp = H5Screate_simple(2, dims, NULL);
	hid_t ds = H5Dcreate2(g, "tilenet", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	int rc = (ds >= 0 && (n == 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0)) ? (int)n : -1;
	if (ds >= 0) H5Dclose(ds);
	H5Sclose(sp);
	H5Gclose(g);
	H5Fclose(f);
	free(v);
	return rc;
}

static int run(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A phantom site end to end: synth, tile, embeddings in the caches, bags
 * (capped), one federated MIL round, a MIL checkpoint, and `fedpath predict
 * --caches` writing the summary model's columns; then the refusals. */
FP_TEST(site_caches_train_and_predict)
{
	const char *fedpath = getenv("FEDPATH");
	CHECK_MSG(fedpath != NULL, "FEDPATH is not set");
	static char dir[] = "/tmp/fp_test_p2mil_siteXXXXXX", path[8800], cmd[32768], clinical[4200], caches[4200];
	CHECK(mkdtemp(dir) != NULL);
	struct fp_synth_params sp;
	fp_synth_params_default(&sp);
	sp.size = FP_SYNTH_TINY;
	sp.centres = 1;
	sp.patients = 6;
	sp.threads = 1;
	sp.quiet = 1;
	sp.seed = 3;
	snprintf(path, sizeof path, "%s/cohort", dir);
	CHECK_OK(fp_synth_generate(&sp, path, NULL));
	snprintf(clinical, sizeof clinical, "%s/cohort/H01/clinical.csv", dir);
	snprintf(caches, sizeof caches, "%s/caches", dir);
	CHECK(mkdir(caches, 0755) == 0);
	struct fp_tile_params tp;
	fp_tile_params_default(&tp);
	snprintf(tp.site_id, sizeof tp.site_id, "H01");
	tp.target_mpp = 1.0;
	tp.tile_size = 64;
	char first_cache[4200] = "";
	uint64_t total = 0;
	for (int i = 1; i <= 6; i++) {
		struct fp_tile_result res;
		snprintf(path, sizeof path, "%s/cohort/H01/slides/H01-P%04d.svs", dir, i);
		CHECK_OK(fp_tile_slide(path, caches, &tp, &res));
		int n = write_embeddings(res.out_path, 6, (uint64_t)i);
		CHECK(n > 0);
		total += (uint64_t)n;
		if (i == 2) snprintf(first_cache, sizeof first_cache, "%s", res.out_path);
	}
	/* the table from clinical.csv alone; statistics of this one site */
	struct fp_p2_table t;
	CHECK_OK(fp_p2_site_load(clinical, NULL, "H01", &t));
	CHECK(t.n == 6);
	struct fp_p2_stats local, pooled;
	memset(&pooled, 0, sizeof pooled);
	fp_p2_stats_local(&t, &local);
	CHECK_OK(fp_p2_stats_merge(&pooled, &local));
	struct fp_part2_config cfg;
	small_cfg(&cfg);
	cfg.bag_cap = 8;
	cfg.steps = 10;
	struct fp_p2_bagset bs;
	CHECK_OK(fp_p2_site_bags(&t, clinical, caches, "H01", &cfg, &bs));
	CHECK(bs.n_tiles_in == total);
	CHECK(bs.n_tiles_kept <= 6 * 8 && bs.n_tiles_kept < total);
	CHECK_STR_EQ(bs.bags.patient[1], t.patient[1]);
	/* one federated round through the local-training interface */
	struct fp_p2_trainer *tr = NULL;
	CHECK_OK(fp_p2_trainer_create_mil(&t, &bs.bags, 6, &pooled, &cfg, &tr));
	struct fp_local_trainer lt;
	fp_p2_trainer_local(tr, &lt);
	float *w = malloc(lt.n_params * sizeof(float)), *u = malloc(lt.n_params * sizeof(float));
	CHECK_OK(lt.init_weights(lt.ctx, w));
	struct fp_study_plan plan;
	memset(&plan, 0, sizeof plan);
	plan.local_steps = 10;
	plan.local_epochs = 1;
	uint64_t ns = 0;
	double loss = 0;
	CHECK_OK(lt.train(lt.ctx, w, 1, &plan, u, &ns, &loss));
	CHECK(ns == 6 && isfinite(loss));
	double moved = 0;
	for (size_t i = 0; i < lt.n_params; i++) moved += fabs(u[i]), w[i] += u[i];
	CHECK(moved > 0);
	/* the coordinator's trainer has the same vector without any rows */
	struct fp_p2_trainer *co = NULL;
	CHECK_OK(fp_p2_trainer_create_mil(NULL, NULL, 6, &pooled, &cfg, &co));
	struct fp_local_trainer lc;
	fp_p2_trainer_local(co, &lc);
	CHECK(lc.n_params == lt.n_params);
	struct fp_p2_trainer *bad = NULL;
	CHECK_STATUS(fp_p2_trainer_create(&t, &pooled, &cfg, &bad), FP_ERR_INVALID_ARG);
	/* the checkpoint */
	double h0[1][FP_P2_CKPT_HORIZONS];
	CHECK_OK(fp_p2_trainer_baseline(tr, w, h0[0]));
	struct fp_p2_ckpt ck;
	memset(&ck, 0, sizeof ck);
	ck.cfg = cfg;
	ck.pooled = pooled;
	ck.p = fp_p2_design_width(&pooled);
	ck.names = (char(*)[FP_P2_NAME_MAX])fp_p2_trainer_names(tr);
	ck.embed_dim = 6;
	ck.n_params = lt.n_params;
	ck.params = w;
	char sites[1][33] = {"H01"};
	ck.n_sites = 1;
	ck.sites = sites;
	ck.h0 = h0;
	ck.rounds = 1;
	char model[4200], pred[4200], err[4200];
	snprintf(model, sizeof model, "%s/mil.ckpt", dir);
	snprintf(pred, sizeof pred, "%s/pred.csv", dir);
	snprintf(err, sizeof err, "%s/err.txt", dir);
	CHECK_OK(fp_p2_ckpt_save(&ck, model));
	snprintf(cmd, sizeof cmd, "'%s' predict --model '%s' --clinical '%s' --caches '%s' --out '%s' >/dev/null 2>'%s'",
	         fedpath, model, clinical, caches, pred, err);
	CHECK_INT_EQ(run(cmd), 0);
	char *text = NULL;
	size_t len = 0;
	CHECK_OK(fp_file_read_all(pred, 1 << 20, &text, &len));
	CHECK_STR_CONTAINS(text, "patient_id,baseline_site,eta_surgery,eta_tace,eta_tace_tki,rfs12_surgery");
	CHECK_STR_CONTAINS(text, ",recommended,benefit_loghr,benefit_rfs36,model\n");
	CHECK_STR_CONTAINS(text, ck.model_hash);
	int lines = 0;
	for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
	CHECK_INT_EQ(lines, 7);
	free(text);
	/* federated evaluation of the MIL model at this site (federate/eval_site.c):
	 * from the caches it predicts and summarises; without bags it refuses */
	{
		struct fp_eval_site_input ei;
		memset(&ei, 0, sizeof ei);
		ei.site = "H01";
		ei.table = &t;
		ei.clinical_csv = clinical;
		ei.model_path = model;
		ei.horizon = 36;
		ei.min_cell = 1;
		json_t *sum = NULL;
		CHECK_STATUS(fp_eval_site_summary(&ei, &sum), FP_ERR_INVALID_ARG);
		CHECK_STR_CONTAINS(fp_error_msg(), "is a MIL model: it needs the site's tile-embedding bags");
		ei.caches_dir = caches;
		CHECK_OK(fp_eval_site_summary(&ei, &sum));
		CHECK(sum != NULL && json_object_get(sum, "table1") != NULL);
		json_decref(sum);
		sum = NULL;
		/* bags given directly: the same summary as from the caches */
		ei.caches_dir = NULL;
		ei.bags = &bs.bags;
		CHECK_OK(fp_eval_site_summary(&ei, &sum));
		json_decref(sum);
	}
	/* a MIL model without caches, or with features.csv: refused */
	snprintf(cmd, sizeof cmd, "'%s' predict --model '%s' --clinical '%s' --out '%s' >/dev/null 2>'%s'", fedpath,
	         model, clinical, pred, err);
	CHECK(run(cmd) != 0);
	CHECK_OK(fp_file_read_all(err, 1 << 20, &text, &len));
	CHECK_STR_CONTAINS(text, "is a mil model, but a summary model was asked for");
	free(text);
	/* caches quantified with another embedding width */
	CHECK(write_embeddings(first_cache, 5, 9) > 0);
	struct fp_p2_bagset b2;
	CHECK_STATUS(fp_p2_site_bags(&t, clinical, caches, "H01", &cfg, &b2), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "width");
	/* every cache at width 5: the checkpoint's width 6 no longer matches */
	{
		snprintf(cmd, sizeof cmd, "ls '%s' > '%s/list.txt'", caches, dir);
		CHECK_INT_EQ(run(cmd), 0);
		snprintf(path, sizeof path, "%s/list.txt", dir);
		CHECK_OK(fp_file_read_all(path, 1 << 20, &text, &len));
		char *save = NULL;
		for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
			snprintf(path, sizeof path, "%s/%s", caches, ln);
			CHECK(write_embeddings(path, 5, 4) > 0);
		}
		free(text);
	}
	snprintf(cmd, sizeof cmd, "'%s' predict --model '%s' --clinical '%s' --caches '%s' --out '%s' >/dev/null 2>'%s'",
	         fedpath, model, clinical, caches, pred, err);
	CHECK(run(cmd) != 0);
	CHECK_OK(fp_file_read_all(err, 1 << 20, &text, &len));
	CHECK_STR_CONTAINS(text, "embeddings of width 5, model");
	CHECK_STR_CONTAINS(text, "trained on width 6");
	free(text);
	/* a patient whose slide has no cache: named */
	CHECK(unlink(first_cache) == 0);
	CHECK_STATUS(fp_p2_site_bags(&t, clinical, caches, "H01", &cfg, &b2), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "patient H01-P0002 has no quantified tile cache");
	fp_p2_trainer_destroy(tr);
	fp_p2_trainer_destroy(co);
	fp_p2_bagset_close(&bs);
	fp_p2_table_close(&t);
	free(w);
	free(u);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	run(cmd);
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) return -1;
	int rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) != 0 ? -1 : rc;
}

/* The plan selects the model kind (federate/plan.c): a summary plan hashes
 * as before the [part2] keys existed, whether or not it lists their
 * defaults; kind = mil and each MIL setting change the hash (so a site and
 * an aggregator that disagree never exchange a model) and reach the model
 * configuration both sides build (fp_p2fed_config). */
FP_TEST(plan_selects_the_mil_model)
{
	static char dir[] = "/tmp/fp_test_p2milplanXXXXXX";
	char path[4200], h_plain[FP_SHA256_HEX_SIZE], h_listed[FP_SHA256_HEX_SIZE], h_mil[FP_SHA256_HEX_SIZE],
		h_mil2[FP_SHA256_HEX_SIZE];
	CHECK(mkdtemp(dir) != NULL);
	const char *base = "[study]\nmodel = part2\nseed = 4\n";
	char text[1024];
	struct fp_study_plan p;
	snprintf(path, sizeof path, "%s/plan.ini", dir);
	CHECK(write_text(path, base) == 0);
	CHECK_OK(fp_plan_load(path, &p));
	CHECK_INT_EQ(p.part2_kind, FP_PLAN_P2_SUMMARY);
	fp_plan_hash(&p, h_plain);
	snprintf(text, sizeof text, "%s[part2]\nkind = summary\nattn = 32\nbag_cap = 1024\nembed_dim = 64\n", base);
	CHECK(write_text(path, text) == 0);
	CHECK_OK(fp_plan_load(path, &p));
	fp_plan_hash(&p, h_listed);
	CHECK_STR_EQ(h_plain, h_listed);
	snprintf(text, sizeof text, "%s[part2]\nkind = mil\nattn = 8\nbag_cap = 100\nembed_dim = 16\n", base);
	CHECK(write_text(path, text) == 0);
	CHECK_OK(fp_plan_load(path, &p));
	fp_plan_hash(&p, h_mil);
	CHECK(strcmp(h_mil, h_plain) != 0);
	struct fp_part2_config c;
	fp_p2fed_config(&p, 0, &c);
	CHECK_INT_EQ(c.kind, FP_P2_MIL);
	CHECK_INT_EQ(c.attn, 8);
	CHECK_INT_EQ(c.bag_cap, 100);
	CHECK_OK(fp_part2_config_check(&c));
	p.part2_attn = 9;
	fp_plan_hash(&p, h_mil2);
	CHECK(strcmp(h_mil, h_mil2) != 0);
	/* cross-key refusals name the line, the key and its value */
	snprintf(text, sizeof text, "%s[part2]\nbag_cap = 100\n", base);
	CHECK(write_text(path, text) == 0);
	CHECK_STATUS(fp_plan_load(path, &p), FP_ERR_CONFIG);
	CHECK_STR_CONTAINS(fp_error_msg(), "plan.ini:5: part2.bag_cap = 100 applies only to part2.kind = mil");
	CHECK(write_text(path, "[study]\nmodel = part1\n[part2]\nkind = mil ; inline\n") == 0);
	CHECK_STATUS(fp_plan_load(path, &p), FP_ERR_CONFIG);
	CHECK_STR_CONTAINS(fp_error_msg(), "plan.ini:4: part2.kind = mil needs study.model = part2");
	unlink(path);
	rmdir(dir);
}
