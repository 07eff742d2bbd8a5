/*
 * model.c: the layer list, its arenas, forward and backward (fp_model.h),
 * and the tile-network builder.
 *
 * Building happens in two passes over the same description: the first
 * appends layers, activations and parameter tensors to fixed tables (no
 * memory yet), the second sizes and allocates the three arenas once. Forward
 * and backward then only index into them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "fp_model.h"
#include "train_internal.h"

#define MAX_ACTS (FP_MODEL_MAX_LAYERS + 1)
#define MAX_TENSORS (2 * FP_MODEL_MAX_LAYERS)
#define ALIGN_FLOATS 64 /* 256 bytes, as fp_kernels_alloc aligns */
#define GN_EPS 1e-5f

enum layer_kind { L_CONV, L_GN, L_ADD, L_GAP, L_LINEAR };

struct layer {
	enum layer_kind kind;
	int in, in2, out; /* activation indices; in2 only for L_ADD */
	int relu;         /* ReLU applied in place to the output (L_GN, L_ADD) */
	int k, stride, pad, groups;
	int tw, tb;       /* parameter tensors (weight/gamma, bias/beta), -1 none */
	size_t mean_off, rstd_off; /* L_GN saved statistics, floats into the activation arena */
};

struct act {
	int c, h, w;
	size_t per;      /* floats per sample */
	size_t off;      /* floats into the activation arena */
	int producer;    /* layer index, -1 for the input */
	int last_use;    /* last layer reading it, -1 none */
	int slot;        /* gradient slot, -1 none */
};

struct fp_model {
	struct fp_kernels *k;
	struct fp_tilenet_config cfg;
	int max_batch;
	struct layer layers[FP_MODEL_MAX_LAYERS];
	int n_layers;
	struct act acts[MAX_ACTS];
	int n_acts;
	struct fp_param_info tensors[MAX_TENSORS];
	size_t n_tensors, n_params;
	int embed_act, logits_act;
	/* arenas (backend memory) */
	float *params, *grads, *arena;
	size_t arena_floats;
	int n_slots;
	size_t slot_floats, slots_off, scratch_off, probs_off, loss_off, labels_off, classw_off;
	int init[MAX_ACTS];  /* backward: gradient slot holds this activation's gradient */
	float *host_tmp;     /* (max_batch, n_classes) host floats for softmax outputs */
};

static const char *const tme_names[FP_TME_N_CLASSES] = {
	"tumour", "stroma", "lymphocytes", "necrosis", "vascular_invasion", "liver", "other"};

const char *fp_tme_class_name(int c)
{
	return c >= 0 && c < FP_TME_N_CLASSES ? tme_names[c] : "?";
}

void fp_tilenet_config_default(struct fp_tilenet_config *c)
{
	c->input_size = 64;
	c->width[0] = 16;
	c->width[1] = 32;
	c->width[2] = 64;
	c->blocks = 2;
	c->groups = 4;
	c->n_classes = FP_TME_N_CLASSES;
}

enum fp_status fp_tilenet_config_check(const struct fp_tilenet_config *c)
{
	if (c->input_size < 8 || c->input_size > 512 || c->input_size % 4)
		return FP_FAIL(FP_ERR_INVALID_ARG, "model: input_size %d must be 8..512 and divisible by 4",
		               c->input_size);
	if (c->groups < 1 || c->groups > 64)
		return FP_FAIL(FP_ERR_INVALID_ARG, "model: groups %d must be 1..64", c->groups);
	for (int i = 0; i < 3; i++)
		if (c->width[i] < 1 || c->width[i] > 1024 || c->width[i] % c->groups)
			return FP_FAIL(FP_ERR_INVALID_ARG,
			               "model: width[%d] = %d must be 1..1024 and divisible by groups (%d)", i,
			               c->width[i], c->groups);
	if (c->blocks < 1 || c->blocks > 8)
		return FP_FAIL(FP_ERR_INVALID_ARG, "model: blocks %d must be 1..8", c->blocks);
	if (c->n_classes < 2 || c->n_classes > 64)
		return FP_FAIL(FP_ERR_INVALID_ARG, "model: n_classes %d must be 2..64", c->n_classes);
	return FP_OK;
}

void fp_tilenet_config_str(const struct fp_tilenet_config *c, char *buf, size_t size)
{
	snprintf(buf, size, "tilenet v1 input=%d width=%d,%d,%d blocks=%d groups=%d classes=%d",
	         c->input_size, c->width[0], c->width[1], c->width[2], c->blocks, c->groups,
	         c->n_classes);
}

/* ---- building ---- */

static int add_act(struct fp_model *m, int c, int h, int w)
{
	struct act *a = &m->acts[m->n_acts];
	a->c = c;
	a->h = h;
	a->w = w;
	a->per = (size_t)c * (size_t)h * (size_t)w;
	a->producer = m->n_layers;
	a->last_use = -1;
	a->slot = -1;
	return m->n_acts++;
}

static int add_tensor(struct fp_model *m, const char *prefix, const char *suffix, int ndim,
                      const int *shape, int decay)
{
	struct fp_param_info *t = &m->tensors[m->n_tensors];
	snprintf(t->name, sizeof t->name, "%s.%s", prefix, suffix);
	t->ndim = ndim;
	t->count = 1;
	for (int i = 0; i < 4; i++) {
		t->shape[i] = i < ndim ? shape[i] : 0;
		if (i < ndim) t->count *= (size_t)shape[i];
	}
	t->offset = m->n_params;
	t->decay = decay;
	/* Tensors start on 64-float boundaries so each is aligned for the kernels. */
	m->n_params += (t->count + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
	return (int)m->n_tensors++;
}

static struct layer *new_layer(struct fp_model *m, enum layer_kind kind, int in)
{
	struct layer *l = &m->layers[m->n_layers];
	memset(l, 0, sizeof *l);
	l->kind = kind;
	l->in = in;
	l->in2 = -1;
	l->tw = l->tb = -1;
	m->acts[in].last_use = m->n_layers;
	return l;
}

static int add_conv(struct fp_model *m, const char *name, int in, int c_out, int k, int stride)
{
	struct act *a = &m->acts[in];
	struct layer *l = new_layer(m, L_CONV, in);
	int shape[4] = {c_out, a->c, k, k};
	l->k = k;
	l->stride = stride;
	l->pad = k / 2;
	l->tw = add_tensor(m, name, "weight", 4, shape, 1);
	int oh = (a->h + 2 * l->pad - k) / stride + 1, ow = (a->w + 2 * l->pad - k) / stride + 1;
	l->out = add_act(m, c_out, oh, ow);
	m->n_layers++;
	return l->out;
}

static int add_gn(struct fp_model *m, const char *name, int in, int relu)
{
	struct act *a = &m->acts[in];
	struct layer *l = new_layer(m, L_GN, in);
	int shape[1] = {a->c};
	l->relu = relu;
	l->groups = m->cfg.groups;
	l->tw = add_tensor(m, name, "weight", 1, shape, 0);
	l->tb = add_tensor(m, name, "bias", 1, shape, 0);
	l->out = add_act(m, a->c, a->h, a->w);
	m->n_layers++;
	return l->out;
}

static int add_add(struct fp_model *m, int a, int b, int relu)
{
	struct layer *l = new_layer(m, L_ADD, a);
	l->in2 = b;
	l->relu = relu;
	m->acts[b].last_use = m->n_layers;
	l->out = add_act(m, m->acts[a].c, m->acts[a].h, m->acts[a].w);
	m->n_layers++;
	return l->out;
}

static int add_gap(struct fp_model *m, int in)
{
	struct layer *l = new_layer(m, L_GAP, in);
	l->out = add_act(m, m->acts[in].c, 1, 1);
	m->n_layers++;
	return l->out;
}

static int add_linear(struct fp_model *m, const char *name, int in, int out_f)
{
	struct layer *l = new_layer(m, L_LINEAR, in);
	int shape[2] = {out_f, (int)m->acts[in].per};
	l->tw = add_tensor(m, name, "weight", 2, shape, 1);
	l->tb = add_tensor(m, name, "bias", 1, shape, 0);
	l->out = add_act(m, out_f, 1, 1);
	m->n_layers++;
	return l->out;
}

static void build_tilenet(struct fp_model *m)
{
	const struct fp_tilenet_config *c = &m->cfg;
	char name[FP_MODEL_NAME_MAX];
	int x = add_act(m, 3, c->input_size, c->input_size);
	m->acts[x].producer = -1;
	x = add_conv(m, "stem.conv", x, c->width[0], 3, 1);
	x = add_gn(m, "stem.gn", x, 1);
	for (int s = 0; s < 3; s++) {
		for (int b = 0; b < c->blocks; b++) {
			int stride = (s > 0 && b == 0) ? 2 : 1;
			int block_in = x, shortcut = x;
			snprintf(name, sizeof name, "s%d.b%d.conv1", s + 1, b);
			x = add_conv(m, name, x, c->width[s], 3, stride);
			snprintf(name, sizeof name, "s%d.b%d.gn1", s + 1, b);
			x = add_gn(m, name, x, 1);
			snprintf(name, sizeof name, "s%d.b%d.conv2", s + 1, b);
			x = add_conv(m, name, x, c->width[s], 3, 1);
			snprintf(name, sizeof name, "s%d.b%d.gn2", s + 1, b);
			x = add_gn(m, name, x, 0);
			if (stride != 1 || m->acts[block_in].c != c->width[s]) {
				snprintf(name, sizeof name, "s%d.b%d.down.conv", s + 1, b);
				shortcut = add_conv(m, name, block_in, c->width[s], 1, stride);
				snprintf(name, sizeof name, "s%d.b%d.down.gn", s + 1, b);
				shortcut = add_gn(m, name, shortcut, 0);
			}
			x = add_add(m, x, shortcut, 1);
		}
	}
	m->embed_act = add_gap(m, x);
	m->logits_act = add_linear(m, "head", m->embed_act, c->n_classes);
}

static size_t round_up(size_t n)
{
	return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* Backward time at which an activation's gradient first appears; the logits'
 * gradient comes from the loss, before any layer. */
static int a_start(const struct fp_model *m, int a)
{
	return m->acts[a].last_use < 0 ? -1 : m->n_layers - 1 - m->acts[a].last_use;
}

/* Gradient slots by interval colouring on the backward timeline
 * (t = n_layers - 1 - layer index): an activation's gradient is live from its
 * last reader's backward to its producer's backward. Two activations share a
 * slot only when one interval ends strictly before the other starts, because
 * a layer reads its output's slot while writing its input's. */
static int assign_slots(struct fp_model *m)
{
	int slot_end[MAX_ACTS];
	int n_slots = 0, L = m->n_layers;
	int order[MAX_ACTS], n = 0;
	for (int a = 1; a < m->n_acts; a++) order[n++] = a;
	/* Sort by start time: later last use = earlier start. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0; j--) {
			int pa = order[j - 1], pb = order[j];
			int sa = a_start(m, pa), sb = a_start(m, pb);
			if (sb >= sa) break;
			order[j - 1] = pb;
			order[j] = pa;
		}
	for (int i = 0; i < n; i++) {
		int a = order[i], start = a_start(m, a), end = L - 1 - m->acts[a].producer, s;
		for (s = 0; s < n_slots; s++)
			if (slot_end[s] < start) break;
		if (s == n_slots) n_slots++;
		slot_end[s] = end;
		m->acts[a].slot = s;
	}
	return n_slots;
}

static enum fp_status init_params(struct fp_model *m, uint64_t seed)
{
	float *host = NULL;
	enum fp_status st;
	FP_TRY(fp_calloc_array(m->n_params, sizeof(float), (void **)&host, "model parameters"));
	for (size_t t = 0; t < m->n_tensors; t++) {
		const struct fp_param_info *p = &m->tensors[t];
		float *w = host + p->offset;
		/* Each tensor draws from its own index range so adding a layer does
		 * not change the others' initial values. */
		uint64_t base = (uint64_t)t << 40;
		if (p->ndim == 4) {
			/* torchvision ResNet: Kaiming normal, fan_out, ReLU gain. */
			double fan_out = (double)p->shape[0] * p->shape[2] * p->shape[3];
			double sd = sqrt(2.0 / fan_out);
			for (size_t i = 0; i < p->count; i++)
				w[i] = (float)(sd * fp_train_normal(seed, FP_RNG_INIT, base + i));
		} else if (p->ndim == 2 || (t > 0 && m->tensors[t - 1].ndim == 2)) {
			/* nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. */
			int fan_in = p->ndim == 2 ? p->shape[1] : m->tensors[t - 1].shape[1];
			double bound = 1.0 / sqrt((double)fan_in);
			for (size_t i = 0; i < p->count; i++)
				w[i] = (float)(bound * (2.0 * fp_train_uniform(seed, FP_RNG_INIT, base + i) - 1.0));
		} else {
			/* GroupNorm: gamma 1 (".weight"), beta 0 (".bias"). */
			int is_gamma = strstr(p->name, ".weight") != NULL;
			for (size_t i = 0; i < p->count; i++) w[i] = is_gamma ? 1.0f : 0.0f;
		}
	}
	st = fp_kernels_upload(m->k, m->params, host, m->n_params * sizeof(float));
	free(host);
	return st;
}

enum fp_status fp_model_create_tilenet(struct fp_kernels *k, const struct fp_tilenet_config *cfg,
                                       int max_batch, uint64_t seed, struct fp_model **out)
{
	struct fp_model *m = NULL;
	enum fp_status st;
	size_t bytes, off = 0, max_per = 0;
	*out = NULL;
	FP_TRY(fp_tilenet_config_check(cfg));
	if (max_batch < 1 || max_batch > 65536)
		return FP_FAIL(FP_ERR_INVALID_ARG, "model: max_batch %d must be 1..65536", max_batch);
	m = calloc(1, sizeof *m);
	if (!m) return FP_FAIL(FP_ERR_NOMEM, "model: handle");
	m->k = k;
	m->cfg = *cfg;
	m->max_batch = max_batch;
	build_tilenet(m);

	/* Activation arena: activations, GN statistics, gradient slots, scratch,
	 * probabilities, loss, labels, class weights. */
	for (int a = 0; a < m->n_acts; a++) {
		size_t n;
		FP_CHECK(st, fp_size_mul(m->acts[a].per, (size_t)max_batch, &n, "activation"));
		m->acts[a].off = off;
		FP_CHECK(st, fp_size_add(off, round_up(n), &off, "activation arena"));
		if (m->acts[a].per > max_per) max_per = m->acts[a].per;
	}
	for (int i = 0; i < m->n_layers; i++) {
		struct layer *l = &m->layers[i];
		if (l->kind != L_GN) continue;
		size_t n = round_up((size_t)max_batch * (size_t)l->groups);
		l->mean_off = off;
		l->rstd_off = off + n;
		off += 2 * n;
	}
	m->n_slots = assign_slots(m);
	m->slot_floats = round_up(max_per * (size_t)max_batch);
	m->slots_off = off;
	FP_CHECK(st, fp_size_add(off, (size_t)(m->n_slots + 1) * m->slot_floats, &off, "gradient slots"));
	m->scratch_off = off - m->slot_floats;
	m->probs_off = off;
	off += round_up((size_t)max_batch * (size_t)cfg->n_classes);
	m->loss_off = off;
	off += ALIGN_FLOATS;
	m->labels_off = off; /* int32, same size as float */
	off += round_up((size_t)max_batch);
	m->classw_off = off;
	off += round_up((size_t)cfg->n_classes);
	m->arena_floats = off;

	FP_CHECK(st, fp_size_mul(off, sizeof(float), &bytes, "activation arena"));
	FP_CHECK(st, fp_kernels_alloc(k, bytes, (void **)&m->arena));
	FP_CHECK(st, fp_kernels_alloc(k, m->n_params * sizeof(float), (void **)&m->params));
	FP_CHECK(st, fp_kernels_alloc(k, m->n_params * sizeof(float), (void **)&m->grads));
	/* Padding between tensors stays zero forever: exports and norms see it. */
	FP_CHECK(st, fp_kernels_zero(k, m->grads, m->n_params * sizeof(float)));
	FP_CHECK(st, fp_alloc_array((size_t)max_batch * (size_t)cfg->n_classes, sizeof(float),
	                            (void **)&m->host_tmp, "model host buffer"));
	FP_CHECK(st, init_params(m, seed));
	*out = m;
	return FP_OK;
fail:
	fp_model_destroy(m);
	return st;
}

void fp_model_destroy(struct fp_model *m)
{
	if (!m) return;
	if (m->arena) fp_kernels_free(m->k, m->arena);
	if (m->params) fp_kernels_free(m->k, m->params);
	if (m->grads) fp_kernels_free(m->k, m->grads);
	free(m->host_tmp);
	free(m);
}

const struct fp_tilenet_config *fp_model_config(const struct fp_model *m) { return &m->cfg; }
struct fp_kernels *fp_model_kernels(const struct fp_model *m) { return m->k; }
int fp_model_max_batch(const struct fp_model *m) { return m->max_batch; }
int fp_model_n_classes(const struct fp_model *m) { return m->cfg.n_classes; }
int fp_model_embed_dim(const struct fp_model *m) { return m->acts[m->embed_act].c; }
size_t fp_model_input_floats(const struct fp_model *m) { return m->acts[0].per; }
size_t fp_model_n_params(const struct fp_model *m) { return m->n_params; }
size_t fp_model_n_tensors(const struct fp_model *m) { return m->n_tensors; }
float *fp_model_params(struct fp_model *m) { return m->params; }
float *fp_model_grads(struct fp_model *m) { return m->grads; }

const struct fp_param_info *fp_model_tensor(const struct fp_model *m, size_t i)
{
	return i < m->n_tensors ? &m->tensors[i] : NULL;
}

long fp_model_find_tensor(const struct fp_model *m, const char *name)
{
	for (size_t i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].name, name) == 0) return (long)i;
	return -1;
}

enum fp_status fp_model_get_params(struct fp_model *m, float *host, size_t n)
{
	if (n != m->n_params)
		return FP_FAIL(FP_ERR_INVALID_ARG, "model: parameter vector of %zu floats, model has %zu", n,
		               m->n_params);
	return fp_kernels_download(m->k, host, m->params, n * sizeof(float));
}

enum fp_status fp_model_set_params(struct fp_model *m, const float *host, size_t n)
{
	if (n != m->n_params)
		return FP_FAIL(FP_ERR_INVALID_ARG, "model: parameter vector of %zu floats, model has %zu", n,
		               m->n_params);
	for (size_t i = 0; i < n; i++)
		if (!isfinite(host[i]))
			return FP_FAIL(FP_ERR_NUMERIC, "model: parameter %zu is %g", i, (double)host[i]);
	return fp_kernels_upload(m->k, m->params, host, n * sizeof(float));
}

/* ---- forward and backward ---- */

static float *A(struct fp_model *m, int a) { return m->arena + m->acts[a].off; }
static float *P(struct fp_model *m, int t) { return t < 0 ? NULL : m->params + m->tensors[t].offset; }
static float *G(struct fp_model *m, int t) { return t < 0 ? NULL : m->grads + m->tensors[t].offset; }
static float *SLOT(struct fp_model *m, int a) { return m->arena + m->slots_off + (size_t)m->acts[a].slot * m->slot_floats; }

static void conv_shape(const struct fp_model *m, const struct layer *l, int n, struct fp_conv2d_shape *s)
{
	const struct act *a = &m->acts[l->in];
	s->n = n;
	s->c_in = a->c;
	s->h = a->h;
	s->w = a->w;
	s->c_out = m->acts[l->out].c;
	s->kh = s->kw = l->k;
	s->stride = l->stride;
	s->pad = l->pad;
}

static enum fp_status run_forward(struct fp_model *m, int n)
{
	struct fp_kernels *k = m->k;
	for (int i = 0; i < m->n_layers; i++) {
		const struct layer *l = &m->layers[i];
		const struct act *in = &m->acts[l->in], *out = &m->acts[l->out];
		float *y = A(m, l->out);
		size_t ny = out->per * (size_t)n;
		struct fp_conv2d_shape cs;
		switch (l->kind) {
		case L_CONV:
			conv_shape(m, l, n, &cs);
			FP_TRY(fp_k_conv2d_forward(k, &cs, y, A(m, l->in), P(m, l->tw), NULL));
			break;
		case L_GN:
			FP_TRY(fp_k_groupnorm_forward(k, y, m->arena + l->mean_off, m->arena + l->rstd_off,
			                              A(m, l->in), P(m, l->tw), P(m, l->tb), n, in->c,
			                              in->h * in->w, l->groups, GN_EPS));
			break;
		case L_ADD:
			FP_TRY(fp_k_add(k, y, A(m, l->in), A(m, l->in2), ny));
			break;
		case L_GAP:
			FP_TRY(fp_k_gap_forward(k, y, A(m, l->in), n, in->c, in->h * in->w));
			break;
		case L_LINEAR:
			FP_TRY(fp_k_linear_forward(k, y, A(m, l->in), P(m, l->tw), P(m, l->tb), n,
			                           (int)in->per, out->c));
			break;
		}
		if (l->relu) FP_TRY(fp_k_relu_forward(k, y, y, ny));
	}
	return FP_OK;
}

/* Where a layer's backward writes the gradient of activation a: straight into
 * a's slot the first time, else into scratch to be added (finish_grad). */
static float *grad_target(struct fp_model *m, int a)
{
	return m->init[a] ? m->arena + m->scratch_off : SLOT(m, a);
}

static enum fp_status finish_grad(struct fp_model *m, int a, int n)
{
	if (m->init[a])
		return fp_k_accumulate(m->k, SLOT(m, a), m->arena + m->scratch_off, m->acts[a].per * (size_t)n);
	m->init[a] = 1;
	return FP_OK;
}

/* Adds dy into the gradient of activation a (the residual add's backward). */
static enum fp_status add_grad(struct fp_model *m, int a, const float *dy, int n)
{
	size_t len = m->acts[a].per * (size_t)n;
	if (!m->init[a]) {
		FP_TRY(fp_kernels_zero(m->k, SLOT(m, a), len * sizeof(float)));
		m->init[a] = 1;
	}
	return fp_k_accumulate(m->k, SLOT(m, a), dy, len);
}

static enum fp_status run_backward(struct fp_model *m, int n)
{
	struct fp_kernels *k = m->k;
	memset(m->init, 0, sizeof m->init);
	m->init[m->logits_act] = 1;
	for (int i = m->n_layers - 1; i >= 0; i--) {
		const struct layer *l = &m->layers[i];
		const struct act *in = &m->acts[l->in], *out = &m->acts[l->out];
		float *dy = SLOT(m, l->out);
		size_t ny = out->per * (size_t)n;
		int need_dx = l->in != 0;
		float *dx = need_dx ? grad_target(m, l->in) : NULL;
		struct fp_conv2d_shape cs;
		if (!m->init[l->out])
			return FP_FAIL(FP_ERR_INTERNAL, "model: layer %d output has no gradient", i);
		if (l->relu) FP_TRY(fp_k_relu_backward(k, dy, dy, A(m, l->out), ny));
		switch (l->kind) {
		case L_CONV:
			conv_shape(m, l, n, &cs);
			FP_TRY(fp_k_conv2d_backward(k, &cs, dx, G(m, l->tw), NULL, dy, A(m, l->in), P(m, l->tw)));
			break;
		case L_GN:
			FP_TRY(fp_k_groupnorm_backward(k, dx, G(m, l->tw), G(m, l->tb), dy, A(m, l->in),
			                               m->arena + l->mean_off, m->arena + l->rstd_off,
			                               P(m, l->tw), n, in->c, in->h * in->w, l->groups));
			break;
		case L_ADD:
			FP_TRY(add_grad(m, l->in, dy, n));
			FP_TRY(add_grad(m, l->in2, dy, n));
			continue;
		case L_GAP:
			FP_TRY(fp_k_gap_backward(k, dx, dy, n, in->c, in->h * in->w));
			break;
		case L_LINEAR:
			FP_TRY(fp_k_linear_backward(k, dx, G(m, l->tw), G(m, l->tb), dy, A(m, l->in),
			                            P(m, l->tw), n, (int)in->per, out->c));
			break;
		}
		if (need_dx) FP_TRY(finish_grad(m, l->in, n));
	}
	return FP_OK;
}

static enum fp_status check_batch(const struct fp_model *m, int n)
{
	if (n < 1 || n > m->max_batch)
		return FP_FAIL(FP_ERR_INVALID_ARG, "model: batch of %d, the model was sized for 1..%d", n,
		               m->max_batch);
	return FP_OK;
}

enum fp_status fp_model_forward(struct fp_model *m, const float *x, int n, float *logits,
                                float *probs, float *embed)
{
	int c = m->cfg.n_classes;
	FP_TRY(check_batch(m, n));
	FP_TRY(fp_kernels_upload(m->k, A(m, 0), x, m->acts[0].per * (size_t)n * sizeof(float)));
	FP_TRY(run_forward(m, n));
	if (embed)
		FP_TRY(fp_kernels_download(m->k, embed, A(m, m->embed_act),
		                           m->acts[m->embed_act].per * (size_t)n * sizeof(float)));
	if (!logits && !probs) return FP_OK;
	float *lg = logits ? logits : m->host_tmp;
	FP_TRY(fp_kernels_download(m->k, lg, A(m, m->logits_act), (size_t)n * (size_t)c * sizeof(float)));
	if (probs) {
		for (int i = 0; i < n; i++) {
			const float *z = lg + (size_t)i * c;
			double mx = z[0], sum = 0.0;
			for (int j = 1; j < c; j++) mx = z[j] > mx ? z[j] : mx;
			for (int j = 0; j < c; j++) sum += exp((double)z[j] - mx);
			for (int j = 0; j < c; j++) probs[(size_t)i * c + j] = (float)(exp((double)z[j] - mx) / sum);
		}
	}
	return FP_OK;
}

enum fp_status fp_model_loss(struct fp_model *m, const float *x, const int32_t *labels,
                             const float *class_w, int n, int backward, float *loss, float *probs)
{
	int c = m->cfg.n_classes;
	int32_t *lab = (int32_t *)(void *)(m->arena + m->labels_off);
	float *cw = class_w ? m->arena + m->classw_off : NULL;
	FP_TRY(check_batch(m, n));
	for (int i = 0; i < n; i++)
		if (labels[i] < 0 || labels[i] >= c)
			return FP_FAIL(FP_ERR_INVALID_ARG, "model: label %d of sample %d is outside 0..%d",
			               (int)labels[i], i, c - 1);
	FP_TRY(fp_kernels_upload(m->k, A(m, 0), x, m->acts[0].per * (size_t)n * sizeof(float)));
	FP_TRY(fp_kernels_upload(m->k, lab, labels, (size_t)n * sizeof(int32_t)));
	if (cw) FP_TRY(fp_kernels_upload(m->k, cw, class_w, (size_t)c * sizeof(float)));
	FP_TRY(run_forward(m, n));
	float *pr = m->arena + m->probs_off;
	FP_TRY(fp_k_softmax_xent_forward(m->k, m->arena + m->loss_off, pr, A(m, m->logits_act), lab, cw, n, c));
	FP_TRY(fp_kernels_download(m->k, loss, m->arena + m->loss_off, sizeof(float)));
	if (probs) FP_TRY(fp_kernels_download(m->k, probs, pr, (size_t)n * (size_t)c * sizeof(float)));
	if (!backward) return FP_OK;
	FP_TRY(fp_k_softmax_xent_backward(m->k, SLOT(m, m->logits_act), pr, lab, cw, n, c, 1.0f));
	return run_backward(m, n);
}
