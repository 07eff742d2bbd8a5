/*
 * fp_part1_net.c: the Part 1-like test network of fp_part1_net.h, written as
 * the trainer would write a model: free functions per layer (llm.c style),
 * every buffer allocated in create, backward in reverse layer order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_part1_net.h"

#define MAX_PARAMS 64

struct param {
	char name[48];
	float *p, *g, *m, *v;
	size_t n;
	int decay;
	int fan_in; /* 0: BN (gamma 1 / beta 0 by `ones`) */
	int ones;
};

struct cbn { /* conv (no bias) + BatchNorm */
	struct fp_conv2d_shape s;
	int hw; /* output H*W */
	struct param *w, *gamma, *beta;
	float *y, *z, *mean, *rstd, *rm, *rv, *dy;
};

struct block {
	struct cbn c1, c2, proj;
	int has_proj;
	const float *x;  /* input (borrowed: previous output) */
	float *a, *out;  /* relu(c1), relu(c2 + shortcut) */
	float *g_in, *g_sum, *g_a, *g_x2;
	size_t nx, nout;
};

struct fp_part1_net {
	struct fp_kernels *k;
	int batch, size, width;
	struct param params[MAX_PARAMS];
	int nparams;
	struct cbn stem;
	float *stem_out, *g_stem;
	struct block blocks[6];
	float *feat, *g_feat, *g_tmp;
	struct param *hw_cls, *hb_cls, *hw_str, *hb_str, *hw_bin, *hb_bin;
	float *logit_cls, *probs, *pred_str, *logit_bin, *g_cls, *g_str, *g_bin, *losses;
	void *allocs[512];
	int nallocs;
};

static enum fp_status net_alloc(struct fp_part1_net *net, size_t floats, float **out)
{
	void *p = NULL;
	if (net->nallocs == (int)(sizeof(net->allocs) / sizeof(net->allocs[0])))
		return FP_FAIL(FP_ERR_LIMIT, "part1 net: too many buffers");
	FP_TRY(fp_kernels_alloc(net->k, floats * sizeof(float), &p));
	net->allocs[net->nallocs++] = p;
	FP_TRY(fp_kernels_zero(net->k, p, floats * sizeof(float)));
	*out = p;
	return FP_OK;
}

static enum fp_status add_param(struct fp_part1_net *net, const char *name, size_t n, int decay, int fan_in,
                                int ones, struct param **out)
{
	if (net->nparams == MAX_PARAMS)
		return FP_FAIL(FP_ERR_LIMIT, "part1 net: more than %d parameters", MAX_PARAMS);
	struct param *p = &net->params[net->nparams++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->n = n;
	p->decay = decay;
	p->fan_in = fan_in;
	p->ones = ones;
	FP_TRY(net_alloc(net, n, &p->p));
	FP_TRY(net_alloc(net, n, &p->g));
	FP_TRY(net_alloc(net, n, &p->m));
	FP_TRY(net_alloc(net, n, &p->v));
	*out = p;
	return FP_OK;
}

static enum fp_status cbn_init(struct fp_part1_net *net, struct cbn *c, const char *name, int cin, int h,
                               int cout, int ksize, int stride)
{
	char nm[48];
	c->s = (struct fp_conv2d_shape){net->batch, cin, h, h, cout, ksize, ksize, stride, ksize / 2};
	c->hw = fp_conv2d_out_h(&c->s) * fp_conv2d_out_w(&c->s);
	size_t ny = (size_t)net->batch * cout * c->hw;
	snprintf(nm, sizeof(nm), "%s_conv.weight", name);
	FP_TRY(add_param(net, nm, (size_t)cout * cin * ksize * ksize, 1, cin * ksize * ksize, 0, &c->w));
	snprintf(nm, sizeof(nm), "%s_bn.weight", name);
	FP_TRY(add_param(net, nm, cout, 0, 0, 1, &c->gamma));
	snprintf(nm, sizeof(nm), "%s_bn.bias", name);
	FP_TRY(add_param(net, nm, cout, 0, 0, 0, &c->beta));
	FP_TRY(net_alloc(net, ny, &c->y));
	FP_TRY(net_alloc(net, ny, &c->z));
	FP_TRY(net_alloc(net, ny, &c->dy));
	FP_TRY(net_alloc(net, cout, &c->mean));
	FP_TRY(net_alloc(net, cout, &c->rstd));
	FP_TRY(net_alloc(net, cout, &c->rm));
	FP_TRY(net_alloc(net, cout, &c->rv));
	for (int i = 0; i < cout; i++) /* running variance starts at 1, as PyTorch */
		FP_TRY(fp_kernels_upload(net->k, c->rv + i, &(float){1.0f}, sizeof(float)));
	return FP_OK;
}

static enum fp_status cbn_forward(struct fp_kernels *k, struct cbn *c, const float *x)
{
	FP_TRY(fp_k_conv2d_forward(k, &c->s, c->y, x, c->w->p, NULL));
	return fp_k_batchnorm_forward(k, c->z, c->mean, c->rstd, c->rm, c->rv, c->y, c->gamma->p, c->beta->p,
	                              c->s.n, c->s.c_out, c->hw, 1e-5f, 0.1f);
}

/* dz: gradient at the BN output; dx may be NULL (network input). */
static enum fp_status cbn_backward(struct fp_kernels *k, struct cbn *c, float *dx, const float *dz, const float *x)
{
	FP_TRY(fp_k_batchnorm_backward(k, c->dy, c->gamma->g, c->beta->g, dz, c->y, c->mean, c->rstd, c->gamma->p,
	                               c->s.n, c->s.c_out, c->hw));
	return fp_k_conv2d_backward(k, &c->s, dx, c->w->g, NULL, c->dy, x, c->w->p);
}

static enum fp_status block_init(struct fp_part1_net *net, struct block *b, const char *name, int cin, int h,
                                 int cout, int stride)
{
	char nm[48];
	snprintf(nm, sizeof(nm), "%s_1", name);
	FP_TRY(cbn_init(net, &b->c1, nm, cin, h, cout, 3, stride));
	int oh = fp_conv2d_out_h(&b->c1.s);
	snprintf(nm, sizeof(nm), "%s_2", name);
	FP_TRY(cbn_init(net, &b->c2, nm, cout, oh, cout, 3, 1));
	b->has_proj = stride != 1 || cin != cout;
	if (b->has_proj) {
		snprintf(nm, sizeof(nm), "%s_proj", name);
		FP_TRY(cbn_init(net, &b->proj, nm, cin, h, cout, 1, stride));
	}
	b->nx = (size_t)net->batch * cin * h * h;
	b->nout = (size_t)net->batch * cout * oh * oh;
	FP_TRY(net_alloc(net, b->nout, &b->a));
	FP_TRY(net_alloc(net, b->nout, &b->out));
	FP_TRY(net_alloc(net, b->nx, &b->g_in));
	FP_TRY(net_alloc(net, b->nout, &b->g_sum));
	FP_TRY(net_alloc(net, b->nout, &b->g_a));
	FP_TRY(net_alloc(net, b->nx, &b->g_x2));
	return FP_OK;
}

static enum fp_status block_forward(struct fp_kernels *k, struct block *b, const float *x)
{
	b->x = x;
	FP_TRY(cbn_forward(k, &b->c1, x));
	FP_TRY(fp_k_relu_forward(k, b->a, b->c1.z, b->nout));
	FP_TRY(cbn_forward(k, &b->c2, b->a));
	if (b->has_proj) {
		FP_TRY(cbn_forward(k, &b->proj, x));
		FP_TRY(fp_k_add(k, b->out, b->c2.z, b->proj.z, b->nout));
	} else {
		FP_TRY(fp_k_add(k, b->out, b->c2.z, x, b->nout));
	}
	return fp_k_relu_forward(k, b->out, b->out, b->nout);
}

/* dout: gradient at b->out; leaves the input gradient in b->g_in. */
static enum fp_status block_backward(struct fp_kernels *k, struct block *b, const float *dout)
{
	FP_TRY(fp_k_relu_backward(k, b->g_sum, dout, b->out, b->nout));
	FP_TRY(cbn_backward(k, &b->c2, b->g_a, b->g_sum, b->a));
	FP_TRY(fp_k_relu_backward(k, b->g_a, b->g_a, b->a, b->nout));
	FP_TRY(cbn_backward(k, &b->c1, b->g_in, b->g_a, b->x));
	if (b->has_proj) {
		FP_TRY(cbn_backward(k, &b->proj, b->g_x2, b->g_sum, b->x));
		return fp_k_accumulate(k, b->g_in, b->g_x2, b->nx);
	}
	return fp_k_accumulate(k, b->g_in, b->g_sum, b->nx);
}

enum fp_status fp_part1_net_create(struct fp_kernels *k, int batch, int size, int width, struct fp_part1_net **out)
{
	enum fp_status st;
	struct fp_part1_net *net = calloc(1, sizeof(*net));
	if (!net)
		return FP_FAIL(FP_ERR_NOMEM, "part1 net");
	if (batch <= 0 || size < 8 || width <= 0) {
		free(net);
		return FP_FAIL(FP_ERR_INVALID_ARG, "part1 net: batch %d size %d width %d", batch, size, width);
	}
	net->k = k;
	net->batch = batch;
	net->size = size;
	net->width = width;
	int w = width, h = size, n = batch;
	FP_CHECK(st, cbn_init(net, &net->stem, "stem", 3, h, w, 3, 1));
	FP_CHECK(st, net_alloc(net, (size_t)n * w * h * h, &net->stem_out));
	FP_CHECK(st, net_alloc(net, (size_t)n * w * h * h, &net->g_stem));
	const char *names[6] = {"s1b0", "s1b1", "s2b0", "s2b1", "s3b0", "s3b1"};
	int cin = w;
	for (int i = 0; i < 6; i++) {
		int cout = w << (i / 2), stride = (i == 2 || i == 4) ? 2 : 1;
		FP_CHECK(st, block_init(net, &net->blocks[i], names[i], cin, h, cout, stride));
		h = fp_conv2d_out_h(&net->blocks[i].c1.s);
		cin = cout;
	}
	int f = 4 * w;
	FP_CHECK(st, net_alloc(net, (size_t)n * f, &net->feat));
	FP_CHECK(st, net_alloc(net, (size_t)n * f, &net->g_feat));
	FP_CHECK(st, net_alloc(net, (size_t)n * f, &net->g_tmp));
	FP_CHECK(st, add_param(net, "head_cls.weight", (size_t)3 * f, 1, f, 0, &net->hw_cls));
	FP_CHECK(st, add_param(net, "head_cls.bias", 3, 0, f, 0, &net->hb_cls));
	FP_CHECK(st, add_param(net, "head_str.weight", (size_t)f, 1, f, 0, &net->hw_str));
	FP_CHECK(st, add_param(net, "head_str.bias", 1, 0, f, 0, &net->hb_str));
	FP_CHECK(st, add_param(net, "head_bin.weight", (size_t)2 * f, 1, f, 0, &net->hw_bin));
	FP_CHECK(st, add_param(net, "head_bin.bias", 2, 0, f, 0, &net->hb_bin));
	FP_CHECK(st, net_alloc(net, (size_t)n * 3, &net->logit_cls));
	FP_CHECK(st, net_alloc(net, (size_t)n * 3, &net->probs));
	FP_CHECK(st, net_alloc(net, (size_t)n, &net->pred_str));
	FP_CHECK(st, net_alloc(net, (size_t)n * 2, &net->logit_bin));
	FP_CHECK(st, net_alloc(net, (size_t)n * 3, &net->g_cls));
	FP_CHECK(st, net_alloc(net, (size_t)n, &net->g_str));
	FP_CHECK(st, net_alloc(net, (size_t)n * 2, &net->g_bin));
	FP_CHECK(st, net_alloc(net, 4, &net->losses));
	*out = net;
	return FP_OK;
fail:
	fp_part1_net_destroy(net);
	return st;
}

void fp_part1_net_destroy(struct fp_part1_net *net)
{
	if (!net)
		return;
	for (int i = 0; i < net->nallocs; i++)
		fp_kernels_free(net->k, net->allocs[i]);
	free(net);
}

int fp_part1_net_param_count(const struct fp_part1_net *net)
{
	return net->nparams;
}

const char *fp_part1_net_param(const struct fp_part1_net *net, int i, float **data, size_t *len)
{
	*data = net->params[i].p;
	*len = net->params[i].n;
	return net->params[i].name;
}

enum fp_status fp_part1_net_init(struct fp_part1_net *net, uint64_t seed)
{
	uint64_t s = seed * 2862933555777941757ULL + 3037000493ULL;
	for (int i = 0; i < net->nparams; i++) {
		struct param *p = &net->params[i];
		float *h = malloc(sizeof(float) * p->n);
		if (!h)
			return FP_FAIL(FP_ERR_NOMEM, "part1 net init");
		float bound = p->fan_in ? 1.0f / sqrtf((float)p->fan_in) : 0.0f;
		for (size_t j = 0; j < p->n; j++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			float u = (float)(s >> 40) / 16777216.0f;
			h[j] = p->ones ? 1.0f : p->fan_in ? (2 * u - 1) * bound : 0.0f;
		}
		enum fp_status st = fp_kernels_upload(net->k, p->p, h, sizeof(float) * p->n);
		free(h);
		FP_TRY(st);
	}
	return FP_OK;
}

enum fp_status fp_part1_net_step(struct fp_part1_net *net, const float *x, const int32_t *cls, const float *stroma,
                                 const float *binary, const struct fp_adamw *o, float *loss)
{
	struct fp_kernels *k = net->k;
	int n = net->batch, f = 4 * net->width;
	struct block *last = &net->blocks[5];
	/* forward */
	FP_TRY(cbn_forward(k, &net->stem, x));
	size_t nstem = (size_t)n * net->width * net->size * net->size;
	FP_TRY(fp_k_relu_forward(k, net->stem_out, net->stem.z, nstem));
	const float *h = net->stem_out;
	for (int i = 0; i < 6; i++) {
		FP_TRY(block_forward(k, &net->blocks[i], h));
		h = net->blocks[i].out;
	}
	FP_TRY(fp_k_gap_forward(k, net->feat, h, n, f, last->c2.hw));
	FP_TRY(fp_k_linear_forward(k, net->logit_cls, net->feat, net->hw_cls->p, net->hb_cls->p, n, f, 3));
	FP_TRY(fp_k_linear_forward(k, net->pred_str, net->feat, net->hw_str->p, net->hb_str->p, n, f, 1));
	FP_TRY(fp_k_linear_forward(k, net->logit_bin, net->feat, net->hw_bin->p, net->hb_bin->p, n, f, 2));
	FP_TRY(fp_k_softmax_xent_forward(k, net->losses, net->probs, net->logit_cls, cls, NULL, n, 3));
	FP_TRY(fp_k_mse_forward(k, net->losses + 1, net->pred_str, stroma, n));
	FP_TRY(fp_k_bce_forward(k, net->losses + 2, net->logit_bin, binary, 2 * n));
	/* backward */
	FP_TRY(fp_k_softmax_xent_backward(k, net->g_cls, net->probs, cls, NULL, n, 3, 1.0f));
	FP_TRY(fp_k_mse_backward(k, net->g_str, net->pred_str, stroma, n, 1.0f));
	FP_TRY(fp_k_bce_backward(k, net->g_bin, net->logit_bin, binary, 2 * n, 1.0f));
	FP_TRY(fp_k_linear_backward(k, net->g_feat, net->hw_cls->g, net->hb_cls->g, net->g_cls, net->feat,
	                            net->hw_cls->p, n, f, 3));
	FP_TRY(fp_k_linear_backward(k, net->g_tmp, net->hw_str->g, net->hb_str->g, net->g_str, net->feat,
	                            net->hw_str->p, n, f, 1));
	FP_TRY(fp_k_accumulate(k, net->g_feat, net->g_tmp, (size_t)n * f));
	FP_TRY(fp_k_linear_backward(k, net->g_tmp, net->hw_bin->g, net->hb_bin->g, net->g_bin, net->feat,
	                            net->hw_bin->p, n, f, 2));
	FP_TRY(fp_k_accumulate(k, net->g_feat, net->g_tmp, (size_t)n * f));
	FP_TRY(fp_k_gap_backward(k, last->g_sum, net->g_feat, n, f, last->c2.hw));
	/* g_sum of the last block is free until its own backward reads `dout`:
	 * relu_backward reads dout and writes g_sum elementwise, so aliasing is safe. */
	const float *dout = last->g_sum;
	for (int i = 5; i >= 0; i--) {
		FP_TRY(block_backward(k, &net->blocks[i], dout));
		dout = net->blocks[i].g_in;
	}
	FP_TRY(fp_k_relu_backward(k, net->g_stem, dout, net->stem_out, nstem));
	FP_TRY(cbn_backward(k, &net->stem, NULL, net->g_stem, x));
	/* loss before the update (one sync per step) */
	float l[3];
	FP_TRY(fp_kernels_download(k, l, net->losses, sizeof(l)));
	*loss = l[0] + l[1] + l[2];
	for (int i = 0; i < net->nparams; i++) {
		struct param *p = &net->params[i];
		FP_TRY(fp_k_adamw_update(k, p->p, p->g, p->m, p->v, p->n, o, p->decay, 1.0f));
	}
	return FP_OK;
}
