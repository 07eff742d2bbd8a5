/*
 * part2_mil.c: the gated-attention MIL option of the Part 2 model
 * (fp_part2_mil.h). Takes a clinical design, per-patient bags of tile
 * embeddings and outcomes; produces the same outputs as the summary model.
 *
 * The trunk and heads are an fp_part2_model over p = pc + E inputs, fed the
 * pooled rows; its input gradient (fp_part2_get_input_grads) is what flows
 * back into the attention pooling. The attention runs on the kernels backend
 * one bag at a time (a scratch of bag_cap tiles); the optimiser runs on the
 * host over the whole flat vector (the model is small) so the head's and the
 * attention's parameters are updated by one AdamW with one step count.
 * Gradients of the attention parameters are summed over bags in double, in
 * row order, so a run is bit-reproducible.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "fp_log.h"
#include "fp_part2_mil.h"
#include "fp_tile_cache.h"
#include "train_internal.h"

enum { M_V, M_BV, M_U, M_BU, M_W, N_MIL };
static const char *const mil_names[N_MIL] = {"mil.V", "mil.bv", "mil.U", "mil.bu", "mil.w"};
static const char *const head_names[10] = {"trunk.weight", "trunk.bias", "f.weight", "f.bias", "g.weight",
                                           "g.bias", "prop.weight", "prop.bias", "os.weight", "os.bias"};

struct fp_part2_mil {
	struct fp_kernels *k;
	struct fp_part2_model *head;
	struct fp_part2_config cfg;
	int pc, e, d, p, max_n, cap;
	size_t n_head, n_mil, n_params;
	size_t moff[N_MIL + 1];   /* offsets inside the attention block */
	size_t hoff[11];          /* the head's tensor offsets, for names */
	/* backend */
	float *arena, *b_par, *b_h, *b_ws, *b_m, *b_a, *b_dm, *b_dh, *b_g;
	/* host */
	float *params, *grads, *adam_m, *adam_v, *x, *dx, *g_one, *pooled;
	double *g_acc;
	unsigned char *decay;
};

static uint64_t mix(uint64_t seed, uint64_t i)
{
	uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void fp_part2_mil_destroy(struct fp_part2_mil *m)
{
	if (!m) return;
	if (m->arena) fp_kernels_free(m->k, m->arena);
	fp_part2_destroy(m->head);
	free(m->params);
	free(m->grads);
	free(m->adam_m);
	free(m->adam_v);
	free(m->x);
	free(m->dx);
	free(m->g_one);
	free(m->pooled);
	free(m->g_acc);
	free(m->decay);
	free(m);
}

size_t fp_part2_mil_n_params(const struct fp_part2_mil *m)
{
	return m->n_params;
}

static enum fp_status upload_mil(struct fp_part2_mil *m)
{
	return fp_kernels_upload(m->k, m->b_par, m->params + m->n_head, m->n_mil * sizeof(float));
}

enum fp_status fp_part2_mil_create(struct fp_kernels *k, int pc, int e, int max_n, const struct fp_part2_config *cfg,
                                   struct fp_part2_mil **out)
{
	enum fp_status st;
	void *v;
	*out = NULL;
	FP_TRY(fp_part2_config_check(cfg));
	if (cfg->kind != FP_P2_MIL)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil: the configuration is of the summary model (kind summary), not "
		               "mil");
	if (pc < 0 || e < 1 || e > 65536 || pc + e > 4096)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil: %d clinical columns and embedding width %d are out of range",
		               pc, e);
	struct fp_part2_mil *m = calloc(1, sizeof *m);
	if (!m) return FP_FAIL(FP_ERR_NOMEM, "part2 mil: out of memory");
	m->k = k;
	m->cfg = *cfg;
	m->pc = pc;
	m->e = e;
	m->d = cfg->attn;
	m->p = pc + e;
	m->max_n = max_n;
	m->cap = cfg->bag_cap;
	struct fp_part2_config hc = *cfg;
	hc.kind = FP_P2_SUMMARY; /* the trunk and heads are a summary model over the pooled rows */
	FP_CHECK(st, fp_part2_create(k, m->p, max_n, &hc, &m->head));
	m->n_head = fp_part2_n_params(m->head);
	size_t d = (size_t)m->d, ee = (size_t)e, h = (size_t)cfg->hidden, pp = (size_t)m->p, cap = (size_t)m->cap;
	size_t counts[N_MIL] = {d * ee, d, d * ee, d, d};
	m->moff[0] = 0;
	for (int t = 0; t < N_MIL; t++) m->moff[t + 1] = m->moff[t] + counts[t];
	m->n_mil = m->moff[N_MIL];
	m->n_params = m->n_head + m->n_mil;
	size_t hcnt[10] = {h * pp, h, h, 1, 3 * h, 3, 3 * h, 3, h, 1};
	m->hoff[0] = 0;
	for (int t = 0; t < 10; t++) m->hoff[t + 1] = m->hoff[t] + hcnt[t];
	if (m->hoff[10] != m->n_head) {
		st = FP_FAIL(FP_ERR_INTERNAL, "part2 mil: head layout %zu != %zu", m->hoff[10], m->n_head);
		goto fail;
	}
	/* backend: params, bag, workspace, m, a, dm, dh, one bag's gradients */
	size_t ws = fp_k_attnpool_ws_floats(m->cap, m->d), bag, total;
	FP_CHECK(st, fp_size_mul(cap, ee, &bag, "part2 mil bag"));
	total = 2 * m->n_mil + 2 * bag + ws + cap + 2 * ee;
	FP_CHECK(st, fp_kernels_alloc(k, total * sizeof(float), &v));
	m->arena = v;
	float *q = m->arena;
	m->b_par = q, q += m->n_mil;
	m->b_g = q, q += m->n_mil;
	m->b_h = q, q += bag;
	m->b_dh = q, q += bag;
	m->b_ws = q, q += ws;
	m->b_a = q, q += cap;
	m->b_m = q, q += ee;
	m->b_dm = q;
	size_t nx;
	FP_CHECK(st, fp_size_mul((size_t)max_n, pp, &nx, "part2 mil design"));
	FP_CHECK(st, fp_alloc_array(m->n_params, sizeof(float), &v, "part2 mil")); m->params = v;
	FP_CHECK(st, fp_alloc_array(m->n_params, sizeof(float), &v, "part2 mil")); m->grads = v;
	FP_CHECK(st, fp_calloc_array(m->n_params, sizeof(float), &v, "part2 mil")); m->adam_m = v;
	FP_CHECK(st, fp_calloc_array(m->n_params, sizeof(float), &v, "part2 mil")); m->adam_v = v;
	FP_CHECK(st, fp_alloc_array(nx, sizeof(float), &v, "part2 mil")); m->x = v;
	FP_CHECK(st, fp_alloc_array(nx, sizeof(float), &v, "part2 mil")); m->dx = v;
	FP_CHECK(st, fp_alloc_array(m->n_mil, sizeof(float), &v, "part2 mil")); m->g_one = v;
	FP_CHECK(st, fp_alloc_array(ee, sizeof(float), &v, "part2 mil")); m->pooled = v;
	FP_CHECK(st, fp_alloc_array(m->n_mil, sizeof(double), &v, "part2 mil")); m->g_acc = v;
	FP_CHECK(st, fp_alloc_array(m->n_params, 1, &v, "part2 mil")); m->decay = v;
	fp_part2_decay_mask(m->head, m->decay);
	for (int t = 0; t < N_MIL; t++)
		memset(m->decay + m->n_head + m->moff[t], t == M_V || t == M_U || t == M_W, counts[t]);
	FP_CHECK(st, fp_part2_get_params(m->head, m->params));
	/* PyTorch's Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the stream
	 * differs from the head's so no attention weight repeats a trunk weight. */
	for (int t = 0; t < N_MIL; t++) {
		double bound = 1.0 / sqrt(t == M_W ? (double)d : (double)ee);
		for (size_t i = m->moff[t]; i < m->moff[t + 1]; i++) {
			double u = (double)(mix(cfg->seed ^ 0x4D494CULL, i) >> 11) / 9007199254740992.0;
			m->params[m->n_head + i] = (float)((2 * u - 1) * bound);
		}
	}
	FP_CHECK(st, upload_mil(m));
	*out = m;
	return FP_OK;
fail:
	fp_part2_mil_destroy(m);
	return st;
}

enum fp_status fp_part2_mil_get_params(struct fp_part2_mil *m, float *host)
{
	FP_TRY(fp_part2_get_params(m->head, m->params));
	memcpy(host, m->params, m->n_params * sizeof(float));
	return FP_OK;
}

enum fp_status fp_part2_mil_set_params(struct fp_part2_mil *m, const float *host)
{
	for (size_t i = m->n_head; i < m->n_params; i++)
		if (!isfinite(host[i]))
			return FP_FAIL(FP_ERR_NUMERIC, "part2 mil: parameter %zu (%s) is not finite", i,
			               fp_part2_mil_param_name(m, i));
	FP_TRY(fp_part2_set_params(m->head, host));
	if (host != m->params) memcpy(m->params, host, m->n_params * sizeof(float));
	return upload_mil(m);
}

enum fp_status fp_part2_mil_get_grads(struct fp_part2_mil *m, float *host)
{
	memcpy(host, m->grads, m->n_params * sizeof(float));
	return FP_OK;
}

const char *fp_part2_mil_param_name(const struct fp_part2_mil *m, size_t i)
{
	if (i < m->n_head) {
		for (int t = 0; t < 10; t++)
			if (i < m->hoff[t + 1]) return head_names[t];
	}
	i -= m->n_head;
	for (int t = 0; t < N_MIL; t++)
		if (i < m->moff[t + 1]) return mil_names[t];
	return "(none)";
}

static const char *who(const struct fp_part2_bags *bags, int i, char *buf, size_t size)
{
	if (bags->patient && bags->patient[i]) snprintf(buf, size, "patient %s (row %d)", bags->patient[i], i + 1);
	else snprintf(buf, size, "row %d", i + 1);
	return buf;
}

static enum fp_status check_bags(const struct fp_part2_mil *m, const struct fp_part2_bags *bags, int n)
{
	char w[128];
	if (bags->n != n) return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil: %d bags for %d patients", bags->n, n);
	if (bags->e != m->e)
		return FP_FAIL(FP_ERR_DATA, "part2 mil: tile embeddings are %d wide but the model takes %d: quantify every "
		               "site with the Part 1 model this Part 2 model was trained on", bags->e, m->e);
	if (!bags->offset || bags->offset[0] != 0) return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil: bag offsets must start at 0");
	for (int i = 0; i < n; i++) {
		uint64_t len = bags->offset[i + 1] - bags->offset[i];
		if (bags->offset[i + 1] < bags->offset[i])
			return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil: bag offsets decrease at %s", who(bags, i, w, sizeof w));
		if (len == 0)
			return FP_FAIL(FP_ERR_DATA, "part2 mil: %s has no tile embeddings: run `fedpath quantify` on its "
			               "slides, or leave the patient out of the MIL model", who(bags, i, w, sizeof w));
		if (len > (uint64_t)m->cap)
			return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil: %s has %llu tiles, above bag_cap %d (build bags with "
			               "fp_p2_bagset_build)", who(bags, i, w, sizeof w), (unsigned long long)len, m->cap);
	}
	return FP_OK;
}

static const float *P(const struct fp_part2_mil *m, int t)
{
	return m->b_par + m->moff[t];
}

/* Bag i through the attention: m into m->pooled (host); a (len) into attn
 * when not NULL. Leaves the bag and workspace on the backend for backward. */
static enum fp_status pool_one(struct fp_part2_mil *m, const struct fp_part2_bags *bags, int i, float *attn)
{
	uint64_t o = bags->offset[i];
	int len = (int)(bags->offset[i + 1] - o);
	size_t e = (size_t)m->e;
	FP_TRY(fp_kernels_upload(m->k, m->b_h, bags->emb + o * e, (size_t)len * e * sizeof(float)));
	FP_TRY(fp_k_attnpool_forward(m->k, m->b_m, m->b_a, m->b_ws, m->b_h, P(m, M_V), P(m, M_BV), P(m, M_U),
	                             P(m, M_BU), P(m, M_W), len, m->e, m->d));
	FP_TRY(fp_kernels_download(m->k, m->pooled, m->b_m, e * sizeof(float)));
	if (attn) FP_TRY(fp_kernels_download(m->k, attn + o, m->b_a, (size_t)len * sizeof(float)));
	return FP_OK;
}

/* Rows r0..r0+n of the model input into m->x: [clinical (pc), pooled (E)]. */
static enum fp_status pool_rows(struct fp_part2_mil *m, const float *xc, const struct fp_part2_bags *bags, int r0,
                                int n, float *attn)
{
	size_t p = (size_t)m->p, pc = (size_t)m->pc;
	for (int i = 0; i < n; i++) {
		float *row = m->x + (size_t)i * p;
		if (pc) memcpy(row, xc + (size_t)i * pc, pc * sizeof(float));
		FP_TRY(pool_one(m, bags, r0 + i, attn));
		memcpy(row + pc, m->pooled, (size_t)m->e * sizeof(float));
		for (int j = 0; j < m->e; j++)
			if (!isfinite(row[pc + (size_t)j])) {
				char w[128];
				return FP_FAIL(FP_ERR_NUMERIC, "part2 mil: the pooled embedding of %s is not finite",
				               who(bags, r0 + i, w, sizeof w));
			}
	}
	return FP_OK;
}

static struct fp_part2_batch pooled_batch(const struct fp_part2_mil *m, const struct fp_part2_batch *b)
{
	struct fp_part2_batch bx = *b;
	bx.x = m->x;
	bx.p = m->p;
	return bx;
}

static enum fp_status check_batch(const struct fp_part2_mil *m, const struct fp_part2_batch *b,
                                  const struct fp_part2_bags *bags)
{
	if (b->p != m->pc)
		return FP_FAIL(FP_ERR_DATA, "part2 mil: batch has %d clinical columns, the model %d", b->p, m->pc);
	if (b->n < 2 || b->n > m->max_n)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil: batch of %d rows; this model takes 2..%d", b->n, m->max_n);
	return check_bags(m, bags, b->n);
}

enum fp_status fp_part2_mil_loss(struct fp_part2_mil *m, const struct fp_part2_batch *b,
                                 const struct fp_part2_bags *bags, int backward, float *demb,
                                 struct fp_part2_loss *out)
{
	FP_TRY(check_batch(m, b, bags));
	int n = b->n;
	FP_TRY(pool_rows(m, b->x, bags, 0, n, NULL));
	struct fp_part2_batch bx = pooled_batch(m, b);
	FP_TRY(fp_part2_loss(m->head, &bx, backward, out));
	if (!backward) return FP_OK;
	FP_TRY(fp_part2_get_grads(m->head, m->grads));
	FP_TRY(fp_part2_get_input_grads(m->head, n, m->dx));
	memset(m->g_acc, 0, m->n_mil * sizeof(double));
	size_t e = (size_t)m->e;
	for (int i = 0; i < n; i++) {
		uint64_t o = bags->offset[i];
		int len = (int)(bags->offset[i + 1] - o);
		/* forward again: backward consumes the bag's workspace */
		FP_TRY(pool_one(m, bags, i, NULL));
		FP_TRY(fp_kernels_upload(m->k, m->b_dm, m->dx + (size_t)i * (size_t)m->p + m->pc, e * sizeof(float)));
		float *g = m->b_g;
		FP_TRY(fp_k_attnpool_backward(m->k, demb ? m->b_dh : NULL, g + m->moff[M_V], g + m->moff[M_BV],
		                              g + m->moff[M_U], g + m->moff[M_BU], g + m->moff[M_W], m->b_dm, m->b_a,
		                              m->b_ws, m->b_h, P(m, M_V), P(m, M_U), P(m, M_W), len, m->e, m->d));
		FP_TRY(fp_kernels_download(m->k, m->g_one, m->b_g, m->n_mil * sizeof(float)));
		for (size_t j = 0; j < m->n_mil; j++) m->g_acc[j] += m->g_one[j];
		if (demb) FP_TRY(fp_kernels_download(m->k, demb + o * e, m->b_dh, (size_t)len * e * sizeof(float)));
	}
	for (size_t j = 0; j < m->n_mil; j++) m->grads[m->n_head + j] = (float)m->g_acc[j];
	return FP_OK;
}

enum fp_status fp_part2_mil_train(struct fp_part2_mil *m, const struct fp_part2_batch *b,
                                  const struct fp_part2_bags *bags, const float *prox_center, double mu,
                                  struct fp_part2_loss *final_loss)
{
	FP_TRY(check_batch(m, b, bags));
	size_t P_ = m->n_params;
	FP_TRY(fp_part2_get_params(m->head, m->params));
	/* IPW from the propensity head on the pooled inputs at the start */
	FP_TRY(pool_rows(m, b->x, bags, 0, b->n, NULL));
	struct fp_part2_batch bx = pooled_batch(m, b);
	FP_TRY(fp_part2_set_ipw(m->head, &bx));
	memset(m->adam_m, 0, P_ * sizeof(float));
	memset(m->adam_v, 0, P_ * sizeof(float));
	const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, lr = (float)m->cfg.lr, wd = (float)m->cfg.weight_decay;
	struct fp_part2_loss l = {0, 0, 0, 0};
	for (long step = 1; step <= m->cfg.steps; step++) {
		FP_TRY(fp_part2_mil_loss(m, b, bags, 1, NULL, &l));
		if (prox_center && mu > 0)
			for (size_t i = 0; i < P_; i++) m->grads[i] += (float)(mu * ((double)m->params[i] - prox_center[i]));
		/* torch.optim.AdamW's float arithmetic, as the kernels' adamw_update */
		float bc1 = 1.0f - powf(b1, (float)step), bc2s = sqrtf(1.0f - powf(b2, (float)step));
		float stepsz = lr / bc1, keep = 1.0f - lr * wd;
		for (size_t i = 0; i < P_; i++) {
			float gi = m->grads[i], *p = &m->params[i], *mm = &m->adam_m[i], *vv = &m->adam_v[i];
			if (m->decay[i]) *p *= keep;
			*mm += (gi - *mm) * (1.0f - b1);
			*vv = *vv * b2 + (1.0f - b2) * gi * gi;
			*p -= stepsz * *mm / (sqrtf(*vv) / bc2s + eps);
		}
		FP_TRY(fp_part2_mil_set_params(m, m->params));
	}
	if (final_loss) FP_TRY(fp_part2_mil_loss(m, b, bags, 0, NULL, final_loss));
	return FP_OK;
}

enum fp_status fp_part2_mil_predict(struct fp_part2_mil *m, const float *x, const struct fp_part2_bags *bags,
                                    float *eta, float *prop, float *os, float *attn)
{
	int n = bags->n;
	FP_TRY(check_bags(m, bags, n));
	for (int o = 0; o < n; o += m->max_n) {
		int c = n - o < m->max_n ? n - o : m->max_n;
		FP_TRY(pool_rows(m, x + (size_t)o * (size_t)m->pc, bags, o, c, attn));
		FP_TRY(fp_part2_predict(m->head, m->x, c, eta ? eta + (size_t)o * 3 : NULL, prop ? prop + (size_t)o * 3 : NULL,
		                        os ? os + o : NULL));
	}
	return FP_OK;
}

enum fp_status fp_part2_mil_baseline(struct fp_part2_mil *m, const struct fp_part2_batch *b,
                                     const struct fp_part2_bags *bags, const double *times, int n_times, double *h0)
{
	FP_TRY(check_batch(m, b, bags));
	FP_TRY(pool_rows(m, b->x, bags, 0, b->n, NULL));
	struct fp_part2_batch bx = pooled_batch(m, b);
	return fp_part2_baseline(m->head, &bx, times, n_times, h0);
}

/* ---- bags ---- */

void fp_p2_bagset_close(struct fp_p2_bagset *s)
{
	if (!s) return;
	free(s->offset);
	free(s->emb);
	free(s->ids);
	memset(s, 0, sizeof *s);
}

struct pick {
	uint64_t score, tile;
	size_t slide;
	const char *uid;
};

static int by_score(const void *a, const void *b)
{
	const struct pick *x = a, *y = b;
	if (x->score != y->score) return x->score < y->score ? -1 : 1;
	int c = strcmp(x->uid, y->uid);
	if (c) return c;
	return x->tile < y->tile ? -1 : x->tile > y->tile;
}

static int by_place(const void *a, const void *b)
{
	const struct pick *x = a, *y = b;
	int c = strcmp(x->uid, y->uid);
	if (c) return c;
	if (x->slide != y->slide) return x->slide < y->slide ? -1 : 1; /* same uid twice: list order */
	return x->tile < y->tile ? -1 : x->tile > y->tile;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

enum fp_status fp_p2_bagset_build(int n_rows, int e, const struct fp_p2_slide_emb *slides, size_t n_slides, int cap,
                                  uint64_t seed, struct fp_p2_bagset *out)
{
	enum fp_status st = FP_OK;
	struct pick *picks = NULL;
	uint64_t *count = NULL;
	void *v;
	memset(out, 0, sizeof *out);
	if (n_rows < 1 || e < 1 || cap < 1)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil bags: %d rows, width %d, cap %d", n_rows, e, cap);
	FP_CHECK(st, fp_calloc_array((size_t)n_rows, sizeof *count, &v, "bags")); count = v;
	uint64_t max_bag = 0;
	for (size_t s = 0; s < n_slides; s++) {
		if (slides[s].row < 0 || slides[s].row >= n_rows) {
			st = FP_FAIL(FP_ERR_INVALID_ARG, "part2 mil bags: slide %s has row %d of %d", slides[s].uid,
			             slides[s].row, n_rows);
			goto fail;
		}
		for (uint64_t j = 0; j < slides[s].n * (uint64_t)e; j++)
			if (!isfinite(slides[s].emb[j])) {
				st = FP_FAIL(FP_ERR_DATA, "part2 mil bags: slide %s: tile %llu has a non-finite embedding",
				             slides[s].uid, (unsigned long long)(j / (uint64_t)e));
				goto fail;
			}
		count[slides[s].row] += slides[s].n;
		out->n_tiles_in += slides[s].n;
	}
	for (int r = 0; r < n_rows; r++) max_bag = count[r] > max_bag ? count[r] : max_bag;
	FP_CHECK(st, fp_calloc_array((size_t)n_rows + 1, sizeof(uint64_t), &v, "bags")); out->offset = v;
	for (int r = 0; r < n_rows; r++) {
		uint64_t k = count[r] < (uint64_t)cap ? count[r] : (uint64_t)cap;
		out->offset[r + 1] = out->offset[r] + k;
		out->n_capped += count[r] > (uint64_t)cap;
	}
	out->n_tiles_kept = out->offset[n_rows];
	size_t ne;
	FP_CHECK(st, fp_size_mul((size_t)out->n_tiles_kept + 1, (size_t)e, &ne, "bags"));
	FP_CHECK(st, fp_alloc_array(ne, sizeof(float), &v, "bag embeddings")); out->emb = v;
	FP_CHECK(st, fp_alloc_array((size_t)max_bag + 1, sizeof *picks, &v, "bags")); picks = v;
	for (int r = 0; r < n_rows; r++) {
		size_t np = 0;
		for (size_t s = 0; s < n_slides; s++) {
			if (slides[s].row != r) continue;
			uint64_t base = fnv1a(slides[s].uid);
			for (uint64_t j = 0; j < slides[s].n; j++)
				picks[np++] = (struct pick){mix(seed, base + j), j, s, slides[s].uid};
		}
		uint64_t keep = out->offset[r + 1] - out->offset[r];
		if (np > keep) qsort(picks, np, sizeof *picks, by_score);
		qsort(picks, (size_t)keep, sizeof *picks, by_place);
		float *dst = out->emb + out->offset[r] * (uint64_t)e;
		for (uint64_t t = 0; t < keep; t++)
			memcpy(dst + t * (uint64_t)e, slides[picks[t].slide].emb + picks[t].tile * (uint64_t)e,
			       (size_t)e * sizeof(float));
	}
	out->bags.n = n_rows;
	out->bags.e = e;
	out->bags.offset = out->offset;
	out->bags.emb = out->emb;
	out->bags.patient = NULL;
	goto done;
fail:
	fp_p2_bagset_close(out);
done:
	free(picks);
	free(count);
	return st;
}

enum fp_status fp_p2_read_cache_embeddings(const char *path, char uid[65], float **emb, uint64_t *n, int *e)
{
	enum fp_status st = FP_OK;
	struct fp_tile_cache *c = NULL;
	hid_t f = -1, ds = -1, sp = -1;
	*emb = NULL;
	*n = 0;
	*e = 0;
	FP_TRY(fp_tile_cache_open(path, &c));
	st = fp_tile_cache_attr(c, "slide_uid", uid, 65);
	fp_tile_cache_close(c);
	if (st != FP_OK) return fp_error_wrap("tile cache %s: no slide_uid", path);
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f < 0) return FP_FAIL(FP_ERR_IO, "tile cache %s: cannot open", path);
	if (H5Lexists(f, "features", H5P_DEFAULT) <= 0 || H5Lexists(f, "features/tilenet", H5P_DEFAULT) <= 0) {
		st = FP_FAIL(FP_ERR_NOT_FOUND, "tile cache %s has no /features/tilenet: run `fedpath quantify` on it first",
		             path);
		goto fail;
	}
	ds = H5Dopen2(f, "features/tilenet", H5P_DEFAULT);
	sp = ds >= 0 ? H5Dget_space(ds) : -1;
	hsize_t dims[2] = {0, 0};
	if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 2 || H5Sget_simple_extent_dims(sp, dims, NULL) != 2 ||
	    dims[1] < 1 || dims[1] > 65536 || dims[0] > 100000000ULL) {
		st = FP_FAIL(FP_ERR_FORMAT, "tile cache %s: /features/tilenet is not a (tiles, 1..65536) matrix", path);
		goto fail;
	}
	size_t count;
	void *v;
	FP_CHECK(st, fp_size_mul((size_t)dims[0] + 1, (size_t)dims[1], &count, "tile embeddings"));
	FP_CHECK(st, fp_alloc_array(count, sizeof(float), &v, "tile embeddings"));
	*emb = v;
	if (dims[0] > 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *emb) < 0) {
		st = FP_FAIL(FP_ERR_IO, "tile cache %s: reading /features/tilenet failed", path);
		goto fail;
	}
	*n = dims[0];
	*e = (int)dims[1];
	goto done;
fail:
	free(*emb);
	*emb = NULL;
done:
	if (sp >= 0) H5Sclose(sp);
	if (ds >= 0) H5Dclose(ds);
	if (f >= 0) H5Fclose(f);
	return st;
}

void fp_p2_caches_free(struct fp_p2_cache_emb *c, size_t n)
{
	if (!c) return;
	for (size_t i = 0; i < n; i++) free(c[i].emb);
	free(c);
}

enum fp_status fp_p2_read_caches(const char *dir, struct fp_p2_cache_emb **out, size_t *n_out)
{
	enum fp_status st;
	char **names = NULL;
	size_t n = 0, got = 0;
	struct fp_p2_cache_emb *c = NULL;
	void *v;
	*out = NULL;
	*n_out = 0;
	FP_CHECK(st, fp_train_list_caches(dir, &names, &n));
	FP_CHECK(st, fp_calloc_array(n, sizeof *c, &v, "cache embeddings")); c = v;
	for (size_t i = 0; i < n; i++, got++) {
		snprintf(c[i].path, sizeof c[i].path, "%s/%s", dir, names[i]);
		FP_CHECK(st, fp_p2_read_cache_embeddings(c[i].path, c[i].uid, &c[i].emb, &c[i].n, &c[i].e));
		if (c[i].e != c[0].e) {
			st = FP_FAIL(FP_ERR_DATA, "tile caches %s and %s hold embeddings of width %d and %d: quantify every "
			             "slide with the same Part 1 model", c[0].path, c[i].path, c[0].e, c[i].e);
			got++;
			goto fail;
		}
	}
	*out = c;
	*n_out = n;
	c = NULL;
fail:
	fp_p2_caches_free(c, got);
	for (size_t i = 0; i < n; i++) free(names[i]);
	free(names);
	return st;
}
