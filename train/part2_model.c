/*
 * part2_model.c: the Part 2 regimen-benefit network (fp_part2.h).
 *
 * The network is small (tens of inputs, a 16-wide trunk, thousands of
 * patients), so the few per-row gathers and scatters between heads
 * (eta of the received regimen, its gradient back to f and g) run on the host
 * between kernel calls; every product, activation, loss and optimiser update
 * runs on the backend. All backend memory is one allocation made at creation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "fp_log.h"
#include "fp_part2.h"

enum { T_W1, T_B1, T_WF, T_BF, T_WG, T_BG, T_WP, T_BP, T_WO, T_BO, N_TENSORS };

struct fp_part2_model {
	struct fp_kernels *k;
	struct fp_part2_config cfg;
	int p, h, max_n;
	size_t n_params;
	size_t off[N_TENSORS + 1];
	float *arena;
	/* backend views into the arena */
	float *params, *grads, *adam_m, *adam_v;
	float *x, *hpre, *hact, *f, *g, *prop, *probs, *os;
	float *eta, *deta, *df, *dg, *dprop, *dos, *dh, *dtmp, *dhpre, *dx;
	float *time, *event, *weight, *ostime, *osevent, *loss;
	int32_t *labels;
	/* host scratch */
	float *h_f, *h_g, *h_eta, *h_deta, *h_df, *h_dg, *h_w, *h_probs, *h_grads, *h_params, *h_ostime, *h_osevent;
	int weights_set;
};

static const int decay_of[N_TENSORS] = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0};

void fp_part2_config_default(struct fp_part2_config *c)
{
	c->hidden = 16;
	c->lr = 0.01;
	c->weight_decay = 1e-4;
	c->steps = 80;
	c->lambda_prop = 1.0;
	c->lambda_os = 0.5;
	c->ipw_min = 0.1;
	c->ipw_max = 10.0;
	c->margin = 0.1;
	c->seed = 1;
	c->kind = FP_P2_SUMMARY;
	c->attn = 32;
	c->bag_cap = 1024;
}

enum fp_status fp_part2_config_check(const struct fp_part2_config *c)
{
	if (c->hidden < 1 || c->hidden > 1024) return FP_FAIL(FP_ERR_INVALID_ARG, "part2: hidden %d is outside 1..1024", c->hidden);
	if (!(c->lr > 0 && c->lr <= 10)) return FP_FAIL(FP_ERR_INVALID_ARG, "part2: lr %g is outside (0, 10]", c->lr);
	if (!(c->weight_decay >= 0 && c->weight_decay < 1))
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: weight_decay %g is outside [0, 1)", c->weight_decay);
	if (c->steps < 0 || c->steps > 10000000) return FP_FAIL(FP_ERR_INVALID_ARG, "part2: steps %ld is out of range", c->steps);
	if (!(c->lambda_prop >= 0) || !(c->lambda_os >= 0))
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: loss weights must be >= 0");
	if (!(c->ipw_min > 0 && c->ipw_min <= 1 && c->ipw_max >= 1))
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: ipw range [%g, %g] must contain 1 and be positive", c->ipw_min,
		               c->ipw_max);
	if (!(c->margin >= 0)) return FP_FAIL(FP_ERR_INVALID_ARG, "part2: margin %g must be >= 0", c->margin);
	if (c->kind != FP_P2_SUMMARY && c->kind != FP_P2_MIL)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: model kind %d is neither summary (0) nor mil (1)", c->kind);
	if (c->attn < 1 || c->attn > 1024) return FP_FAIL(FP_ERR_INVALID_ARG, "part2: attn %d is outside 1..1024", c->attn);
	if (c->bag_cap < 1 || c->bag_cap > 1000000)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: bag_cap %d is outside 1..1000000", c->bag_cap);
	return FP_OK;
}

static uint64_t mix(uint64_t seed, uint64_t i)
{
	uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void fp_part2_destroy(struct fp_part2_model *m)
{
	if (!m) return;
	if (m->arena) fp_kernels_free(m->k, m->arena);
	free(m->h_f);
	free(m->h_g);
	free(m->h_eta);
	free(m->h_deta);
	free(m->h_df);
	free(m->h_dg);
	free(m->h_w);
	free(m->h_probs);
	free(m->h_grads);
	free(m->h_params);
	free(m->h_ostime);
	free(m->h_osevent);
	free(m);
}

size_t fp_part2_n_params(const struct fp_part2_model *m)
{
	return m->n_params;
}

enum fp_status fp_part2_create(struct fp_kernels *k, int p, int max_n, const struct fp_part2_config *cfg,
                               struct fp_part2_model **out)
{
	enum fp_status st;
	FP_TRY(fp_part2_config_check(cfg));
	if (cfg->kind != FP_P2_SUMMARY)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: this configuration is of a MIL model (kind mil): the summary model "
		               "cannot take its parameters; build it with fp_part2_mil_create (train/fp_part2_mil.h)");
	if (p < 1 || p > 4096 || max_n < 2 || max_n > 10000000)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: %d inputs or %d rows is out of range", p, max_n);
	struct fp_part2_model *m = calloc(1, sizeof *m);
	if (!m) return FP_FAIL(FP_ERR_NOMEM, "part2: out of memory");
	m->k = k;
	m->cfg = *cfg;
	m->p = p;
	m->h = cfg->hidden;
	m->max_n = max_n;
	size_t h = (size_t)m->h, n = (size_t)max_n, pp = (size_t)p;
	size_t counts[N_TENSORS] = {h * pp, h, h, 1, 3 * h, 3, 3 * h, 3, h, 1};
	m->off[0] = 0;
	for (int t = 0; t < N_TENSORS; t++) m->off[t + 1] = m->off[t] + counts[t];
	m->n_params = m->off[N_TENSORS];
	/* arena: 4 parameter-sized vectors + activations */
	size_t P = m->n_params;
	size_t acts = 2 * n * pp /* x, dx */ + 3 * n * h /* hpre, hact, dh */ + 2 * n * h /* dtmp, dhpre */ + n * (1 + 3 + 3 + 3 + 1) +
	              n * (1 + 1 + 1 + 3 + 3 + 1) + n * 5 + 4 + n /* labels as int32 */;
	size_t total;
	FP_CHECK(st, fp_size_add(4 * P, acts, &total, "part2 arena"));
	void *a = NULL;
	FP_CHECK(st, fp_kernels_alloc(k, total * sizeof(float), &a));
	m->arena = a;
	float *q = m->arena;
#define TAKE(ptr, count) (ptr = q, q += (count))
	TAKE(m->params, P);
	TAKE(m->grads, P);
	TAKE(m->adam_m, P);
	TAKE(m->adam_v, P);
	TAKE(m->x, n * pp);
	TAKE(m->dx, n * pp);
	TAKE(m->hpre, n * h);
	TAKE(m->hact, n * h);
	TAKE(m->dh, n * h);
	TAKE(m->dtmp, n * h);
	TAKE(m->dhpre, n * h);
	TAKE(m->f, n);
	TAKE(m->g, 3 * n);
	TAKE(m->prop, 3 * n);
	TAKE(m->probs, 3 * n);
	TAKE(m->os, n);
	TAKE(m->eta, n);
	TAKE(m->deta, n);
	TAKE(m->df, n);
	TAKE(m->dg, 3 * n);
	TAKE(m->dprop, 3 * n);
	TAKE(m->dos, n);
	TAKE(m->time, n);
	TAKE(m->event, n);
	TAKE(m->weight, n);
	TAKE(m->ostime, n);
	TAKE(m->osevent, n);
	TAKE(m->loss, 4);
	m->labels = (int32_t *)q;
#undef TAKE
	void *v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); m->h_f = v;
	FP_CHECK(st, fp_alloc_array(3 * n, sizeof(float), &v, "part2")); m->h_g = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); m->h_eta = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); m->h_deta = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); m->h_df = v;
	FP_CHECK(st, fp_alloc_array(3 * n, sizeof(float), &v, "part2")); m->h_dg = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); m->h_w = v;
	FP_CHECK(st, fp_alloc_array(3 * n, sizeof(float), &v, "part2")); m->h_probs = v;
	FP_CHECK(st, fp_alloc_array(P, sizeof(float), &v, "part2")); m->h_grads = v;
	FP_CHECK(st, fp_alloc_array(P, sizeof(float), &v, "part2")); m->h_params = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); m->h_ostime = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(float), &v, "part2")); m->h_osevent = v;

	/* PyTorch's default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
	for (int t = 0; t < N_TENSORS; t++) {
		double fan_in = t <= T_B1 ? (double)p : (double)h;
		double bound = 1.0 / sqrt(fan_in);
		for (size_t i = m->off[t]; i < m->off[t + 1]; i++) {
			double u = (double)(mix(cfg->seed, i) >> 11) / 9007199254740992.0;
			m->h_params[i] = (float)((2 * u - 1) * bound);
		}
	}
	FP_CHECK(st, fp_kernels_upload(k, m->params, m->h_params, P * sizeof(float)));
	*out = m;
	return FP_OK;
fail:
	fp_part2_destroy(m);
	return st;
}

enum fp_status fp_part2_get_params(struct fp_part2_model *m, float *host)
{
	return fp_kernels_download(m->k, host, m->params, m->n_params * sizeof(float));
}

enum fp_status fp_part2_set_params(struct fp_part2_model *m, const float *host)
{
	for (size_t i = 0; i < m->n_params; i++)
		if (!isfinite(host[i])) return FP_FAIL(FP_ERR_NUMERIC, "part2: parameter %zu is not finite", i);
	return fp_kernels_upload(m->k, m->params, host, m->n_params * sizeof(float));
}

enum fp_status fp_part2_get_grads(struct fp_part2_model *m, float *host)
{
	return fp_kernels_download(m->k, host, m->grads, m->n_params * sizeof(float));
}

enum fp_status fp_part2_get_input_grads(struct fp_part2_model *m, int n, float *dx)
{
	if (n < 1 || n > m->max_n) return FP_FAIL(FP_ERR_INVALID_ARG, "part2: %d rows; this model takes 1..%d", n, m->max_n);
	return fp_kernels_download(m->k, dx, m->dx, (size_t)n * (size_t)m->p * sizeof(float));
}

void fp_part2_decay_mask(const struct fp_part2_model *m, unsigned char *mask)
{
	for (int t = 0; t < N_TENSORS; t++)
		for (size_t i = m->off[t]; i < m->off[t + 1]; i++) mask[i] = (unsigned char)decay_of[t];
}

static float *T(struct fp_part2_model *m, float *base, int t)
{
	return base + m->off[t];
}

static enum fp_status check_batch(const struct fp_part2_model *m, const struct fp_part2_batch *b)
{
	if (b->n < 2 || b->n > m->max_n)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: batch of %d rows; this model takes 2..%d", b->n, m->max_n);
	if (b->p != m->p) return FP_FAIL(FP_ERR_DATA, "part2: batch has %d columns, the model %d", b->p, m->p);
	if (b->n_strata < 1 || !b->strata || b->strata[0] != 0 || b->strata[b->n_strata] != b->n)
		return FP_FAIL(FP_ERR_INVALID_ARG, "part2: strata offsets must run from 0 to n");
	for (int s = 0; s < b->n_strata; s++)
		if (b->strata[s + 1] < b->strata[s]) return FP_FAIL(FP_ERR_INVALID_ARG, "part2: strata offsets decrease");
	for (int i = 0; i < b->n; i++) {
		if (b->regimen[i] < 0 || b->regimen[i] >= FP_P2_REGIMENS)
			return FP_FAIL(FP_ERR_DATA, "part2: row %d: regimen %d is not 0, 1 or 2", i + 1, b->regimen[i]);
		if (!(b->rfs_time[i] > 0)) return FP_FAIL(FP_ERR_DATA, "part2: row %d: RFS time %g is not positive", i + 1,
		                                          b->rfs_time[i]);
	}
	return FP_OK;
}

/* Forward through trunk and heads; eta of the received regimen into m->eta. */
static enum fp_status forward(struct fp_part2_model *m, const float *x, int n)
{
	struct fp_kernels *k = m->k;
	int h = m->h;
	FP_TRY(fp_kernels_upload(k, m->x, x, (size_t)n * (size_t)m->p * sizeof(float)));
	FP_TRY(fp_k_linear_forward(k, m->hpre, m->x, T(m, m->params, T_W1), T(m, m->params, T_B1), n, m->p, h));
	FP_TRY(fp_k_relu_forward(k, m->hact, m->hpre, (size_t)n * (size_t)h));
	FP_TRY(fp_k_linear_forward(k, m->f, m->hact, T(m, m->params, T_WF), T(m, m->params, T_BF), n, h, 1));
	FP_TRY(fp_k_linear_forward(k, m->g, m->hact, T(m, m->params, T_WG), T(m, m->params, T_BG), n, h, 3));
	FP_TRY(fp_k_linear_forward(k, m->prop, m->hact, T(m, m->params, T_WP), T(m, m->params, T_BP), n, h, 3));
	FP_TRY(fp_k_linear_forward(k, m->os, m->hact, T(m, m->params, T_WO), T(m, m->params, T_BO), n, h, 1));
	return FP_OK;
}

/* Softmax of the propensity logits into m->h_probs (host), row by row. */
static enum fp_status host_probs(struct fp_part2_model *m, int n)
{
	FP_TRY(fp_kernels_download(m->k, m->h_probs, m->prop, (size_t)n * 3 * sizeof(float)));
	for (int i = 0; i < n; i++) {
		float *r = m->h_probs + 3 * i;
		double mx = fmax(r[0], fmax(r[1], r[2]));
		double e[3], s = 0;
		for (int a = 0; a < 3; a++) s += (e[a] = exp(r[a] - mx));
		for (int a = 0; a < 3; a++) r[a] = (float)(e[a] / s);
	}
	return FP_OK;
}

/* IPW weights from the propensity head at the current parameters, stabilised
 * by the batch's regimen frequencies and truncated. */
static enum fp_status set_weights(struct fp_part2_model *m, const struct fp_part2_batch *b)
{
	int n = b->n;
	double freq[3] = {0, 0, 0};
	FP_TRY(forward(m, b->x, n));
	FP_TRY(host_probs(m, n));
	for (int i = 0; i < n; i++) freq[b->regimen[i]] += 1.0 / n;
	for (int i = 0; i < n; i++) {
		int a = b->regimen[i];
		double w = freq[a] / fmax(m->h_probs[3 * i + a], 1e-12);
		m->h_w[i] = (float)fmin(fmax(w, m->cfg.ipw_min), m->cfg.ipw_max);
	}
	m->weights_set = 1;
	return fp_kernels_upload(m->k, m->weight, m->h_w, (size_t)n * sizeof(float));
}

enum fp_status fp_part2_set_ipw(struct fp_part2_model *m, const struct fp_part2_batch *b)
{
	FP_TRY(check_batch(m, b));
	return set_weights(m, b);
}

static enum fp_status upload_outcomes(struct fp_part2_model *m, const struct fp_part2_batch *b)
{
	struct fp_kernels *k = m->k;
	int n = b->n;
	size_t bytes = (size_t)n * sizeof(float);
	FP_TRY(fp_kernels_upload(k, m->time, b->rfs_time, bytes));
	FP_TRY(fp_kernels_upload(k, m->event, b->rfs_event, bytes));
	/* A patient without OS data is put at time 0, censored: it is then in no
	 * risk set of any event and adds nothing to the OS term. */
	for (int i = 0; i < n; i++) {
		int have = b->os_time && b->os_event && isfinite(b->os_time[i]) && b->os_time[i] > 0 &&
		           isfinite(b->os_event[i]);
		m->h_ostime[i] = have ? b->os_time[i] : 0.0f;
		m->h_osevent[i] = have ? b->os_event[i] : 0.0f;
	}
	FP_TRY(fp_kernels_upload(k, m->ostime, m->h_ostime, bytes));
	FP_TRY(fp_kernels_upload(k, m->osevent, m->h_osevent, bytes));
	int32_t *lab = malloc((size_t)n * sizeof(int32_t));
	if (!lab) return FP_FAIL(FP_ERR_NOMEM, "part2: out of memory");
	for (int i = 0; i < n; i++) lab[i] = b->regimen[i];
	enum fp_status st = fp_kernels_upload(k, m->labels, lab, (size_t)n * sizeof(int32_t));
	free(lab);
	if (st != FP_OK) return st;
	if (!m->weights_set) {
		for (int i = 0; i < n; i++) m->h_w[i] = 1.0f;
		FP_TRY(fp_kernels_upload(k, m->weight, m->h_w, bytes));
	}
	return FP_OK;
}

/* Stratified Cox term over eta (backend, n): sum of the strata's summed
 * losses divided by the weighted event count; with deta, its gradient. */
static enum fp_status cox_term(struct fp_part2_model *m, const struct fp_part2_batch *b, const float *eta,
                               const float *time, const float *event, const float *host_event, float *deta,
                               double *loss)
{
	double wev = 0, total = 0;
	for (int i = 0; i < b->n; i++) wev += (double)m->h_w[i] * host_event[i];
	*loss = 0;
	if (wev <= 0) {
		if (deta) FP_TRY(fp_kernels_zero(m->k, deta, (size_t)b->n * sizeof(float)));
		return FP_OK;
	}
	for (int s = 0; s < b->n_strata; s++) {
		int o = b->strata[s], len = b->strata[s + 1] - o;
		if (len == 0) continue;
		float ls = 0;
		FP_TRY(fp_k_cox_forward(m->k, m->loss, eta + o, time + o, event + o, m->weight + o, len, FP_COX_EFRON,
		                        FP_COX_SUM));
		FP_TRY(fp_kernels_download(m->k, &ls, m->loss, sizeof ls));
		total += ls;
		if (deta)
			FP_TRY(fp_k_cox_backward(m->k, deta + o, eta + o, time + o, event + o, m->weight + o, len, FP_COX_EFRON,
			                         FP_COX_SUM, (float)(1.0 / wev)));
	}
	*loss = total / wev;
	return FP_OK;
}

/* Adds dh += dx of one head's linear backward (dW, db into the grads). */
static enum fp_status head_backward(struct fp_part2_model *m, int n, int t_w, int t_b, const float *dy, int out)
{
	size_t nh = (size_t)n * (size_t)m->h;
	FP_TRY(fp_k_linear_backward(m->k, m->dtmp, T(m, m->grads, t_w), T(m, m->grads, t_b), dy, m->hact,
	                            T(m, m->params, t_w), n, m->h, out));
	return fp_k_accumulate(m->k, m->dh, m->dtmp, nh);
}

enum fp_status fp_part2_loss(struct fp_part2_model *m, const struct fp_part2_batch *b, int backward,
                             struct fp_part2_loss *out)
{
	FP_TRY(check_batch(m, b));
	int n = b->n;
	struct fp_kernels *k = m->k;
	FP_TRY(upload_outcomes(m, b));
	FP_TRY(forward(m, b->x, n));
	/* eta of the received regimen: f + g[a] (host gather) */
	FP_TRY(fp_kernels_download(k, m->h_f, m->f, (size_t)n * sizeof(float)));
	FP_TRY(fp_kernels_download(k, m->h_g, m->g, (size_t)n * 3 * sizeof(float)));
	for (int i = 0; i < n; i++) m->h_eta[i] = m->h_f[i] + m->h_g[3 * i + b->regimen[i]];
	FP_TRY(fp_kernels_upload(k, m->eta, m->h_eta, (size_t)n * sizeof(float)));

	double rfs = 0, os = 0, ce = 0;
	FP_TRY(cox_term(m, b, m->eta, m->time, m->event, b->rfs_event, backward ? m->deta : NULL, &rfs));
	if (m->cfg.lambda_os > 0)
		FP_TRY(cox_term(m, b, m->os, m->ostime, m->osevent, m->h_osevent, backward ? m->dos : NULL, &os));
	if (m->cfg.lambda_prop > 0) {
		float l = 0;
		FP_TRY(fp_k_softmax_xent_forward(k, m->loss, m->probs, m->prop, m->labels, NULL, n, 3));
		FP_TRY(fp_kernels_download(k, &l, m->loss, sizeof l));
		ce = l;
	}
	out->rfs = rfs;
	out->os = os;
	out->prop = ce;
	out->total = rfs + m->cfg.lambda_os * os + m->cfg.lambda_prop * ce;
	if (!isfinite(out->total))
		return FP_FAIL(FP_ERR_NUMERIC, "part2: the loss is not finite (RFS %g, OS %g, propensity %g)", rfs, os, ce);
	if (!backward) return FP_OK;

	/* d/df = deta; d/dg[a_i] = deta_i (host scatter) */
	FP_TRY(fp_kernels_download(k, m->h_deta, m->deta, (size_t)n * sizeof(float)));
	for (int i = 0; i < n; i++) {
		m->h_df[i] = m->h_deta[i];
		for (int a = 0; a < 3; a++) m->h_dg[3 * i + a] = a == b->regimen[i] ? m->h_deta[i] : 0.0f;
	}
	FP_TRY(fp_kernels_upload(k, m->df, m->h_df, (size_t)n * sizeof(float)));
	FP_TRY(fp_kernels_upload(k, m->dg, m->h_dg, (size_t)n * 3 * sizeof(float)));
	FP_TRY(fp_kernels_zero(k, m->dh, (size_t)n * (size_t)m->h * sizeof(float)));
	FP_TRY(head_backward(m, n, T_WF, T_BF, m->df, 1));
	FP_TRY(head_backward(m, n, T_WG, T_BG, m->dg, 3));
	if (m->cfg.lambda_prop > 0) {
		FP_TRY(fp_k_softmax_xent_backward(k, m->dprop, m->probs, m->labels, NULL, n, 3, (float)m->cfg.lambda_prop));
	} else {
		FP_TRY(fp_kernels_zero(k, m->dprop, (size_t)n * 3 * sizeof(float)));
	}
	FP_TRY(head_backward(m, n, T_WP, T_BP, m->dprop, 3));
	if (m->cfg.lambda_os > 0) {
		FP_TRY(fp_k_scale(k, m->dos, (size_t)n, (float)m->cfg.lambda_os));
	} else {
		FP_TRY(fp_kernels_zero(k, m->dos, (size_t)n * sizeof(float)));
	}
	FP_TRY(head_backward(m, n, T_WO, T_BO, m->dos, 1));
	FP_TRY(fp_k_relu_backward(k, m->dhpre, m->dh, m->hact, (size_t)n * (size_t)m->h));
	FP_TRY(fp_k_linear_backward(k, m->dx, T(m, m->grads, T_W1), T(m, m->grads, T_B1), m->dhpre, m->x,
	                            T(m, m->params, T_W1), n, m->p, m->h));
	return FP_OK;
}

enum fp_status fp_part2_train(struct fp_part2_model *m, const struct fp_part2_batch *b, const float *prox_center,
                              double mu, struct fp_part2_loss *final_loss)
{
	FP_TRY(check_batch(m, b));
	struct fp_kernels *k = m->k;
	size_t P = m->n_params;
	FP_TRY(set_weights(m, b));
	FP_TRY(fp_kernels_zero(k, m->adam_m, P * sizeof(float)));
	FP_TRY(fp_kernels_zero(k, m->adam_v, P * sizeof(float)));
	struct fp_adamw opt = {(float)m->cfg.lr, 0.9f, 0.999f, 1e-8f, (float)m->cfg.weight_decay, 0};
	struct fp_part2_loss l = {0, 0, 0, 0};
	for (long step = 1; step <= m->cfg.steps; step++) {
		FP_TRY(fp_part2_loss(m, b, 1, &l));
		if (prox_center && mu > 0) {
			/* FedProx: grad += mu (w - center), on the host (the model is small). */
			FP_TRY(fp_kernels_download(k, m->h_grads, m->grads, P * sizeof(float)));
			FP_TRY(fp_kernels_download(k, m->h_params, m->params, P * sizeof(float)));
			for (size_t i = 0; i < P; i++)
				m->h_grads[i] += (float)(mu * ((double)m->h_params[i] - prox_center[i]));
			FP_TRY(fp_kernels_upload(k, m->grads, m->h_grads, P * sizeof(float)));
		}
		opt.step = step;
		for (int t = 0; t < N_TENSORS; t++)
			FP_TRY(fp_k_adamw_update(k, T(m, m->params, t), T(m, m->grads, t), T(m, m->adam_m, t), T(m, m->adam_v, t),
			                         m->off[t + 1] - m->off[t], &opt, decay_of[t], 1.0f));
	}
	if (final_loss) FP_TRY(fp_part2_loss(m, b, 0, final_loss));
	return FP_OK;
}

enum fp_status fp_part2_predict(struct fp_part2_model *m, const float *x, int n, float *eta, float *prop, float *os)
{
	struct fp_kernels *k = m->k;
	for (int o = 0; o < n; o += m->max_n) {
		int c = n - o < m->max_n ? n - o : m->max_n;
		FP_TRY(forward(m, x + (size_t)o * (size_t)m->p, c));
		if (eta) {
			FP_TRY(fp_kernels_download(k, m->h_f, m->f, (size_t)c * sizeof(float)));
			FP_TRY(fp_kernels_download(k, m->h_g, m->g, (size_t)c * 3 * sizeof(float)));
			for (int i = 0; i < c; i++)
				for (int a = 0; a < 3; a++) eta[(size_t)(o + i) * 3 + a] = m->h_f[i] + m->h_g[3 * i + a];
		}
		if (prop) {
			FP_TRY(host_probs(m, c));
			memcpy(prop + (size_t)o * 3, m->h_probs, (size_t)c * 3 * sizeof(float));
		}
		if (os) FP_TRY(fp_kernels_download(k, os + o, m->os, (size_t)c * sizeof(float)));
	}
	return FP_OK;
}

int fp_part2_recommend(const float eta[FP_P2_REGIMENS], double margin)
{
	int best = 0;
	for (int a = 1; a < FP_P2_REGIMENS; a++)
		if ((double)eta[best] - (double)eta[a] >= margin) best = a;
	return best;
}

enum fp_status fp_part2_baseline(struct fp_part2_model *m, const struct fp_part2_batch *b, const double *times,
                                 int n_times, double *h0)
{
	FP_TRY(check_batch(m, b));
	int n = b->n;
	if (!m->weights_set)
		for (int i = 0; i < n; i++) m->h_w[i] = 1.0f;
	FP_TRY(forward(m, b->x, n));
	FP_TRY(fp_kernels_download(m->k, m->h_f, m->f, (size_t)n * sizeof(float)));
	FP_TRY(fp_kernels_download(m->k, m->h_g, m->g, (size_t)n * 3 * sizeof(float)));
	for (int s = 0; s < b->n_strata; s++) {
		int o = b->strata[s], e = b->strata[s + 1];
		for (int q = 0; q < n_times; q++) {
			double H = 0;
			/* distinct event times u <= times[q]; O(len^2) per time is fine at
			 * site sizes (thousands), and keeps the sum order fixed */
			for (int i = o; i < e; i++) {
				double u = b->rfs_time[i];
				if (!(b->rfs_event[i] > 0) || u > times[q]) continue;
				int first = 1;
				for (int j = o; j < i; j++)
					if (b->rfs_event[j] > 0 && b->rfs_time[j] == u) first = 0;
				if (!first) continue; /* each distinct time once */
				double d = 0, r = 0;
				for (int j = o; j < e; j++) {
					double wj = m->h_w[j];
					if (b->rfs_event[j] > 0 && b->rfs_time[j] == u) d += wj;
					if (b->rfs_time[j] >= u)
						r += wj * exp((double)m->h_f[j] + m->h_g[3 * j + b->regimen[j]]);
				}
				H += d / r;
			}
			h0[(size_t)s * (size_t)n_times + (size_t)q] = H;
		}
	}
	return FP_OK;
}
