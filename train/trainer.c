/*
 * trainer.c: optimiser state, schedule, one training step and the local
 * update of a federated round (fp_train.h).
 *
 * Optimiser arena layout (floats, n = n_params each): [m | v | anchor | work].
 * `anchor` holds the negated FedProx anchor so that w - w0 is one add.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "fp_log.h"
#include "fp_train.h"
#include "trainer_internal.h"

void fp_train_options_default(struct fp_train_options *o)
{
	memset(o, 0, sizeof *o);
	o->optimizer = FP_OPT_ADAMW;
	o->lr = 1e-3;
	o->weight_decay = 1e-4;
	o->beta1 = 0.9;
	o->beta2 = 0.999;
	o->adam_eps = 1e-8;
	o->momentum = 0.9;
	o->clip_norm = 5.0;
	o->warmup_steps = 0;
	o->total_steps = 1000;
	o->schedule = FP_LR_COSINE;
	o->min_lr_ratio = 0.01;
	o->prox_mu = 0.0;
}

enum fp_status fp_train_options_check(const struct fp_train_options *o)
{
	if (!(o->lr > 0 && o->lr <= 10))
		return FP_FAIL(FP_ERR_INVALID_ARG, "train: lr %g must be in (0, 10]", o->lr);
	if (!(o->weight_decay >= 0 && o->weight_decay <= 1))
		return FP_FAIL(FP_ERR_INVALID_ARG, "train: weight_decay %g must be in [0, 1]", o->weight_decay);
	if (!(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1 && o->adam_eps > 0))
		return FP_FAIL(FP_ERR_INVALID_ARG, "train: AdamW betas %g/%g must be in [0, 1), eps %g > 0",
		               o->beta1, o->beta2, o->adam_eps);
	if (!(o->momentum >= 0 && o->momentum < 1))
		return FP_FAIL(FP_ERR_INVALID_ARG, "train: momentum %g must be in [0, 1)", o->momentum);
	if (!(o->clip_norm >= 0) || !(o->prox_mu >= 0) || !(o->min_lr_ratio >= 0 && o->min_lr_ratio <= 1))
		return FP_FAIL(FP_ERR_INVALID_ARG, "train: clip_norm %g, prox_mu %g must be >= 0, min_lr_ratio %g in [0, 1]",
		               o->clip_norm, o->prox_mu, o->min_lr_ratio);
	if (o->warmup_steps < 0 || o->total_steps < 1)
		return FP_FAIL(FP_ERR_INVALID_ARG, "train: warmup_steps %ld >= 0, total_steps %ld >= 1",
		               o->warmup_steps, o->total_steps);
	if (o->optimizer != FP_OPT_ADAMW && o->optimizer != FP_OPT_SGD)
		return FP_FAIL(FP_ERR_INVALID_ARG, "train: unknown optimizer %d", (int)o->optimizer);
	return FP_OK;
}

double fp_train_lr_at(const struct fp_train_options *o, long step)
{
	if (step < o->warmup_steps) return o->lr * (double)(step + 1) / (double)o->warmup_steps;
	if (o->schedule == FP_LR_CONSTANT) return o->lr;
	long span = o->total_steps - o->warmup_steps;
	double progress = span > 0 ? (double)(step - o->warmup_steps) / (double)span : 1.0;
	if (progress > 1.0) progress = 1.0;
	double floor = o->lr * o->min_lr_ratio;
	return floor + (o->lr - floor) * 0.5 * (1.0 + cos(3.141592653589793 * progress));
}

enum fp_status fp_trainer_create(struct fp_model *model, const struct fp_train_options *o,
                                 struct fp_trainer **out)
{
	struct fp_trainer *t = NULL;
	enum fp_status st;
	size_t bytes, np = fp_model_n_params(model);
	int b = fp_model_max_batch(model), c = fp_model_n_classes(model);
	*out = NULL;
	FP_TRY(fp_train_options_check(o));
	t = calloc(1, sizeof *t);
	if (!t) return FP_FAIL(FP_ERR_NOMEM, "train: trainer");
	t->model = model;
	t->k = fp_model_kernels(model);
	t->opt = *o;
	t->n = np;
	FP_CHECK(st, fp_size_mul3(np, 4, sizeof(float), &bytes, "optimiser state"));
	FP_CHECK(st, fp_kernels_alloc(t->k, bytes, (void **)&t->state));
	FP_CHECK(st, fp_kernels_zero(t->k, t->state, bytes));
	t->m = t->state;
	t->v = t->state + np;
	t->anchor = t->state + 2 * np;
	t->work = t->state + 3 * np;
	FP_CHECK(st, fp_alloc_array((size_t)b * (size_t)c, sizeof(float), (void **)&t->probs, "train probs"));
	FP_CHECK(st, fp_alloc_array((size_t)c, sizeof(float), (void **)&t->class_w, "class weights"));
	*out = t;
	return FP_OK;
fail:
	fp_trainer_destroy(t);
	return st;
}

void fp_trainer_destroy(struct fp_trainer *t)
{
	if (!t) return;
	if (t->state) fp_kernels_free(t->k, t->state);
	if (t->rgb) fp_kernels_free(t->k, t->rgb);
	if (t->x) fp_kernels_free(t->k, t->x);
	free(t->probs);
	free(t->class_w);
	free(t);
}

struct fp_model *fp_trainer_model(struct fp_trainer *t) { return t->model; }
const struct fp_train_options *fp_trainer_options(const struct fp_trainer *t) { return &t->opt; }
long fp_trainer_step_count(const struct fp_trainer *t) { return t->step; }

enum fp_status fp_trainer_set_class_weights(struct fp_trainer *t, const float *w)
{
	int c = fp_model_n_classes(t->model);
	if (!w) {
		t->use_class_w = 0;
		return FP_OK;
	}
	for (int i = 0; i < c; i++)
		if (!(w[i] >= 0) || !isfinite(w[i]))
			return FP_FAIL(FP_ERR_INVALID_ARG, "train: class weight %d is %g", i, (double)w[i]);
	memcpy(t->class_w, w, (size_t)c * sizeof(float));
	t->use_class_w = 1;
	return FP_OK;
}

void fp_trainer_set_reducer(struct fp_trainer *t, const struct fp_grad_reducer *r)
{
	if (r) t->reducer = *r;
	t->has_reducer = r != NULL;
}

enum fp_status fp_trainer_set_anchor(struct fp_trainer *t, const float *w, size_t n)
{
	if (n != t->n)
		return FP_FAIL(FP_ERR_INVALID_ARG, "train: anchor of %zu floats, model has %zu", n, t->n);
	FP_TRY(fp_kernels_upload(t->k, t->anchor, w, n * sizeof(float)));
	return fp_k_scale(t->k, t->anchor, n, -1.0f);
}

enum fp_status fp_trainer_reset(struct fp_trainer *t)
{
	t->step = 0;
	return fp_kernels_zero(t->k, t->m, 2 * t->n * sizeof(float));
}

enum fp_status fp_trainer_step(struct fp_trainer *t, const float *x, const int32_t *labels, int n,
                               struct fp_step_stats *out)
{
	struct fp_kernels *k = t->k;
	float *g = fp_model_grads(t->model), *w = fp_model_params(t->model);
	int c = fp_model_n_classes(t->model);
	struct fp_step_stats s = {0};
	double sumsq = 0.0;
	FP_TRY(fp_model_loss(t->model, x, labels, t->use_class_w ? t->class_w : NULL, n, 1, &s.loss, t->probs));
	s.n = n;
	for (int i = 0; i < n; i++) {
		const float *p = t->probs + (size_t)i * c;
		int best = 0;
		for (int j = 1; j < c; j++)
			if (p[j] > p[best]) best = j;
		s.correct += best == labels[i];
	}
	if (t->has_reducer) FP_TRY(t->reducer.reduce(t->reducer.ctx, g, t->n, &s.loss, &s.correct, &s.n));
	if (!isfinite(s.loss))
		return FP_FAIL(FP_ERR_NUMERIC, "train: loss is %g at step %ld; parameters left as they were",
		               (double)s.loss, t->step);
	FP_TRY(fp_k_sumsq(k, g, t->n, &sumsq));
	if (!isfinite(sumsq))
		return FP_FAIL(FP_ERR_NUMERIC, "train: gradient is not finite at step %ld; parameters left as they were",
		               t->step);
	s.grad_norm = sqrt(sumsq);
	if (t->opt.prox_mu > 0) {
		/* FedProx: grad += mu (w - w0); clipping sees the data gradient only. */
		FP_TRY(fp_k_add(k, t->work, w, t->anchor, t->n));
		FP_TRY(fp_k_scale(k, t->work, t->n, (float)t->opt.prox_mu));
		FP_TRY(fp_k_accumulate(k, g, t->work, t->n));
	}
	float scale = t->opt.clip_norm > 0 ? fp_kernels_clip_scale(sumsq, (float)t->opt.clip_norm) : 1.0f;
	s.lr = fp_train_lr_at(&t->opt, t->step);
	struct fp_adamw aw = {(float)s.lr, (float)t->opt.beta1, (float)t->opt.beta2, (float)t->opt.adam_eps,
	                      (float)t->opt.weight_decay, t->step + 1};
	size_t nt = fp_model_n_tensors(t->model);
	for (size_t i = 0; i < nt; i++) {
		const struct fp_param_info *p = fp_model_tensor(t->model, i);
		size_t o = p->offset;
		if (t->opt.optimizer == FP_OPT_ADAMW)
			FP_TRY(fp_k_adamw_update(k, w + o, g + o, t->m + o, t->v + o, p->count, &aw, p->decay, scale));
		else
			FP_TRY(fp_k_sgd_update(k, w + o, g + o, t->m + o, p->count, (float)s.lr, (float)t->opt.momentum,
			                       (float)t->opt.weight_decay, p->decay, scale));
	}
	t->step++;
	if (out) *out = s;
	return FP_OK;
}

enum fp_status fp_trainer_step_tiles(struct fp_trainer *t, const uint8_t *rgb, uint32_t tile,
                                     const struct fp_tile_aug *aug, const int32_t *labels, int n,
                                     struct fp_step_stats *out)
{
	struct fp_kernels *k = t->k;
	int b = fp_model_max_batch(t->model), s = fp_model_config(t->model)->input_size;
	size_t bytes;
	if (n < 1 || n > b || tile == 0 || tile > 65536 || tile % (uint32_t)s)
		return FP_FAIL(FP_ERR_INVALID_ARG, "train: %d tiles of %u px for a model of batch 1..%d and %d px input", n,
		               tile, b, s);
	if (!t->x) {
		FP_TRY(fp_size_mul(fp_model_input_floats(t->model), (size_t)b * sizeof(float), &bytes, "train input"));
		FP_TRY(fp_kernels_alloc(k, bytes, (void **)&t->x));
	}
	FP_TRY(fp_size_mul3((size_t)n, (size_t)tile * tile, 3, &bytes, "train tiles"));
	const uint8_t *src = rgb;
	if (fp_kernels_backend(k) != FP_BACKEND_CPU) {
		/* The pixels travel as uint8; the float input is made on the device. */
		if (bytes > t->rgb_bytes) {
			size_t cap;
			FP_TRY(fp_size_mul3((size_t)b, (size_t)tile * tile, 3, &cap, "train tiles"));
			if (t->rgb) fp_kernels_free(k, t->rgb);
			t->rgb = NULL;
			t->rgb_bytes = 0;
			FP_TRY(fp_kernels_alloc(k, cap, (void **)&t->rgb));
			t->rgb_bytes = cap;
		}
		FP_TRY(fp_kernels_upload(k, t->rgb, rgb, bytes));
		src = t->rgb;
	}
	FP_TRY(fp_k_augment_tiles(k, t->x, src, aug, n, (int)tile, s));
	/* fp_model_loss copies its input into the first activation: from backend
	 * memory that is a copy inside the backend (fp_kernels_upload). */
	return fp_trainer_step(t, t->x, labels, n, out);
}

enum fp_status fp_train_local_update(struct fp_trainer *t, const float *global, size_t n,
                                     const struct fp_batch_source *src,
                                     const struct fp_local_options *o, float *delta,
                                     struct fp_local_result *res)
{
	struct fp_local_result r = {0};
	enum fp_status st;
	float *x = NULL, *nw = NULL;
	int32_t *y = NULL;
	int b = fp_model_max_batch(t->model);
	double saved_mu = t->opt.prox_mu, loss_sum = 0.0;
	uint64_t correct = 0;
	long steps = o->steps;
	if (steps <= 0) {
		int nb = o->batch > 0 ? o->batch : b;
		if (o->epochs <= 0 || src->n_examples == 0)
			return FP_FAIL(FP_ERR_INVALID_ARG, "train: local update needs steps > 0, or epochs > 0 and examples");
		steps = o->epochs * (long)((src->n_examples + (uint64_t)nb - 1) / (uint64_t)nb);
	}
	FP_TRY(fp_model_set_params(t->model, global, n));
	if (o->reset_optimizer) FP_TRY(fp_trainer_reset(t));
	FP_CHECK(st, fp_alloc_array(fp_model_input_floats(t->model), (size_t)b * sizeof(float), (void **)&x, "batch"));
	FP_CHECK(st, fp_alloc_array((size_t)b, sizeof(int32_t), (void **)&y, "labels"));
	if (o->prox_mu > 0) FP_CHECK(st, fp_trainer_set_anchor(t, global, n));
	t->opt.prox_mu = o->prox_mu;
	for (long i = 0; i < steps; i++) {
		struct fp_step_stats s;
		int bn = 0;
		FP_CHECK(st, src->next(src->ctx, t->step, x, y, &bn));
		FP_CHECK(st, fp_trainer_step(t, x, y, bn, &s));
		loss_sum += s.loss;
		correct += (uint64_t)s.correct;
		r.samples_seen += (uint64_t)s.n;
		r.steps++;
	}
	/* The site agent trains in place (delta == global): the new parameters
	 * then go through a copy, else straight into delta. */
	nw = delta;
	if (delta == global) FP_CHECK(st, fp_alloc_array(n, sizeof(float), (void **)&nw, "new parameters"));
	FP_CHECK(st, fp_model_get_params(t->model, nw, n));
	double sq = 0.0;
	for (size_t i = 0; i < n; i++) {
		delta[i] = nw[i] - global[i];
		sq += (double)delta[i] * delta[i];
	}
	r.n_examples = src->n_examples;
	r.mean_loss = r.steps ? loss_sum / (double)r.steps : 0.0;
	r.accuracy = r.samples_seen ? (double)correct / (double)r.samples_seen : 0.0;
	r.update_norm = sqrt(sq);
	if (res) *res = r;
	st = FP_OK;
fail:
	t->opt.prox_mu = saved_mu;
	if (nw && nw != delta) free(nw);
	free(x);
	free(y);
	return st;
}
