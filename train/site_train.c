/*
 * site_train.c: `fedpath train` (fp_site_train.h): data, split, sampler,
 * the epoch loop with validation, early stopping, metrics and checkpoints.
 *
 * Batches: the global batch of step s is B tile draws, draw b = (s, b)
 * hashed with the seed (class-balanced: first a class among those present in
 * the training part, then a tile of that class). With K MPI ranks, rank r
 * takes draws [r B/K, (r+1) B/K). An epoch is ceil(training tiles / B) steps.
 * A background thread (data/'s prefetcher) decodes the next batch while the
 * current one trains. Augmentation: the draws of each sample come from the
 * seeded stream on the host (fp_augment_draw); the pixel work runs on the
 * training backend (fp_trainer_step_tiles: on a GPU the uint8 tiles are
 * uploaded and augmented there).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_common.h"
#include "fp_site_train.h"
#include "fp_tile_cache.h"
#include "fp_train.h"
#include "fp_train_dist.h"
#include "fp_validate.h"
#include "train_internal.h"

struct run {
	const struct fp_train_config *c;
	struct fp_site_data *data;
	struct fp_kernels *k;
	struct fp_model *model;
	struct fp_trainer *trainer;
	struct fp_train_dist *dist;
	int rank, size;
	int global_batch, local_batch, s;
	uint64_t seed;
	struct fp_augment aug;
	/* training part: tile indices per class */
	size_t *by_class[FP_TME_N_CLASSES];
	size_t n_class[FP_TME_N_CLASSES];
	int classes[FP_TME_N_CLASSES], n_classes_present;
	size_t n_train;
	size_t *val;        /* validation tile indices */
	size_t n_val;
	long steps_per_epoch, total_steps;
	char ckpt[4096], best[4096], metrics[4096];
	struct fp_buf metrics_csv;
	/* buffers sized once */
	struct fp_tile_ref *refs;
	float *x;
	int32_t *y;
	uint8_t *rgb;
	float *probs;
	struct fp_tile_aug *draws; /* (local_batch) augmentation of the current step */
};

/* Index into data's tiles of draw b of step s. */
static size_t draw_tile(const struct run *r, long step, int b)
{
	uint64_t i = (uint64_t)step * (uint64_t)r->global_batch + (uint64_t)b;
	if (r->c->class_balanced) {
		int c = r->classes[fp_train_below(r->seed, FP_RNG_SAMPLE, 2 * i, (uint64_t)r->n_classes_present)];
		return r->by_class[c][fp_train_below(r->seed, FP_RNG_SAMPLE, 2 * i + 1, r->n_class[c])];
	}
	uint64_t k = fp_train_below(r->seed, FP_RNG_SAMPLE, 2 * i, r->n_train);
	for (int c = 0; c < FP_TME_N_CLASSES; c++) {
		if (k < r->n_class[c]) return r->by_class[c][k];
		k -= r->n_class[c];
	}
	return r->by_class[r->classes[0]][0];
}

static enum fp_status prepare_split(struct run *r)
{
	const struct fp_train_config *c = r->c;
	size_t np = fp_site_data_patients(r->data), nt = fp_site_data_count(r->data);
	unsigned char *is_val = calloc(np ? np : 1, 1);
	enum fp_status st;
	if (!is_val) return FP_FAIL(FP_ERR_NOMEM, "split");
	FP_CHECK(st, fp_site_split(r->data, c->val_fraction, r->seed, is_val));
	FP_CHECK(st, fp_alloc_array(nt, sizeof(size_t), (void **)&r->val, "validation tiles"));
	for (int k = 0; k < FP_TME_N_CLASSES; k++)
		FP_CHECK(st, fp_alloc_array(nt, sizeof(size_t), (void **)&r->by_class[k], "class lists"));
	for (size_t i = 0; i < nt; i++) {
		const struct fp_site_tile *t = fp_site_data_tile(r->data, i);
		if (is_val[t->patient]) {
			r->val[r->n_val++] = i;
		} else {
			r->by_class[t->label][r->n_class[t->label]++] = i;
			r->n_train++;
		}
	}
	for (int k = 0; k < FP_TME_N_CLASSES; k++)
		if (r->n_class[k]) r->classes[r->n_classes_present++] = k;
	size_t nv_pat = 0;
	for (size_t p = 0; p < np; p++) nv_pat += is_val[p];
	if (r->n_train == 0 || r->n_classes_present < 2) {
		st = FP_FAIL(FP_ERR_DATA, "training part has %zu labelled tiles in %d classes: need at least 2 classes",
		             r->n_train, r->n_classes_present);
		goto fail;
	}
	if (r->rank == 0) {
		FP_INFO("train: %zu patients (%zu held out), %zu training tiles, %zu validation tiles", np, nv_pat,
		        r->n_train, r->n_val);
		for (int k = 0; k < FP_TME_N_CLASSES; k++)
			FP_INFO("train: class %-17s %zu training tiles", fp_tme_class_name(k), r->n_class[k]);
	}
	st = FP_OK;
fail:
	free(is_val);
	return st;
}

/* The augmentation draws of the local share of step `step`. */
static void draw_augment(struct run *r, long step, size_t count)
{
	for (size_t b = 0; b < count; b++) {
		uint64_t draw = (uint64_t)step * (uint64_t)r->global_batch + (uint64_t)r->rank * r->local_batch + b;
		fp_augment_draw(&r->aug, r->seed, draw, &r->draws[b]);
	}
}

/* Fills r->x with the unaugmented input of `count` prefetched tiles (host;
 * validation runs the model's host-input forward). */
static enum fp_status make_inputs(struct run *r, const uint8_t *rgb, size_t count)
{
	uint32_t t = fp_site_data_tile_size(r->data);
	size_t per = fp_model_input_floats(r->model), tb = (size_t)t * t * 3;
	for (size_t b = 0; b < count; b++) FP_TRY(fp_tile_to_input(rgb + b * tb, t, r->s, NULL, 0, 0, r->x + b * per));
	return FP_OK;
}

struct val_metrics {
	double loss, macro_auc, bal_acc, auc[FP_TME_N_CLASSES];
};

static enum fp_status validate(struct run *r, struct val_metrics *vm)
{
	int c = FP_TME_N_CLASSES;
	size_t n = r->n_val;
	double *score = NULL, loss = 0;
	unsigned char *lab = NULL;
	int32_t *truth = NULL;
	float *probs = NULL;
	enum fp_status st;
	for (int k = 0; k < c; k++) vm->auc[k] = NAN;
	vm->loss = vm->macro_auc = vm->bal_acc = NAN;
	if (n == 0) return FP_OK;
	FP_CHECK(st, fp_alloc_array(n, (size_t)c * sizeof(float), (void **)&probs, "validation probabilities"));
	FP_CHECK(st, fp_alloc_array(n, sizeof(double), (void **)&score, "validation scores"));
	FP_CHECK(st, fp_alloc_array(n, 1, (void **)&lab, "validation labels"));
	FP_CHECK(st, fp_alloc_array(n, sizeof(int32_t), (void **)&truth, "validation labels"));
	for (size_t i0 = 0; i0 < n; i0 += (size_t)r->local_batch) {
		size_t m = n - i0 < (size_t)r->local_batch ? n - i0 : (size_t)r->local_batch;
		for (size_t b = 0; b < m; b++) {
			const struct fp_site_tile *t = fp_site_data_tile(r->data, r->val[i0 + b]);
			r->refs[b].slide = t->slide;
			r->refs[b].tile = t->tile;
			truth[i0 + b] = t->label;
		}
		FP_CHECK(st, fp_tile_reader_read_batch(fp_site_data_reader(r->data), r->refs, m, FP_TILE_U8_HWC, r->rgb));
		FP_CHECK(st, make_inputs(r, r->rgb, m));
		FP_CHECK(st, fp_model_forward(r->model, r->x, (int)m, NULL, probs + i0 * (size_t)c, NULL));
	}
	double recall_sum = 0, auc_sum = 0;
	int n_present = 0, n_auc = 0;
	for (int k = 0; k < c; k++) {
		size_t cases = 0, hit = 0;
		for (size_t i = 0; i < n; i++) {
			const float *p = probs + i * (size_t)c;
			int best = 0;
			for (int j = 1; j < c; j++)
				if (p[j] > p[best]) best = j;
			lab[i] = truth[i] == k;
			score[i] = p[k];
			cases += lab[i];
			hit += lab[i] && best == k;
		}
		if (cases) {
			recall_sum += (double)hit / (double)cases;
			n_present++;
		}
		if (cases > 0 && cases < n) {
			struct fp_auc_result a;
			FP_CHECK(st, fp_validate_auc(lab, score, n, &a, NULL, NULL));
			vm->auc[k] = a.auc;
			auc_sum += a.auc;
			n_auc++;
		}
	}
	for (size_t i = 0; i < n; i++) loss -= log(fmax((double)probs[i * (size_t)c + truth[i]], 1e-30));
	vm->loss = loss / (double)n;
	vm->bal_acc = n_present ? recall_sum / n_present : NAN;
	vm->macro_auc = n_auc ? auc_sum / n_auc : NAN;
	st = FP_OK;
fail:
	free(probs);
	free(score);
	free(lab);
	free(truth);
	return st;
}

static enum fp_status write_metrics(struct run *r, long epoch, long step, double tl, double ta,
                                    const struct val_metrics *vm, double lr, double secs)
{
	if (r->metrics_csv.len == 0) {
		FP_TRY(fp_buf_printf(&r->metrics_csv, "epoch,step,train_loss,train_accuracy,val_loss,val_macro_auc,val_balanced_accuracy"));
		for (int k = 0; k < FP_TME_N_CLASSES; k++)
			FP_TRY(fp_buf_printf(&r->metrics_csv, ",val_auc_%s", fp_tme_class_name(k)));
		FP_TRY(fp_buf_printf(&r->metrics_csv, ",lr,seconds\n"));
	}
	FP_TRY(fp_buf_printf(&r->metrics_csv, "%ld,%ld,%.6f,%.6f,%.6f,%.6f,%.6f", epoch, step, tl, ta, vm->loss,
	                     vm->macro_auc, vm->bal_acc));
	for (int k = 0; k < FP_TME_N_CLASSES; k++) FP_TRY(fp_buf_printf(&r->metrics_csv, ",%.6f", vm->auc[k]));
	FP_TRY(fp_buf_printf(&r->metrics_csv, ",%.6g,%.1f\n", lr, secs));
	return fp_file_commit(r->metrics, r->metrics_csv.data, r->metrics_csv.len, 0644);
}

/* Rank 0 writes; every rank learns whether it worked, so all stop together. */
static enum fp_status save(struct run *r, const struct fp_train_state *ts, const char *path)
{
	enum fp_status st = FP_OK;
	if (r->rank == 0) {
		st = fp_checkpoint_save(r->trainer, ts, path);
		if (st == FP_OK) FP_DEBUG("train: checkpoint %s at step %ld", path, fp_trainer_step_count(r->trainer));
	}
	if (!fp_train_dist_all(r->dist, st == FP_OK) && st == FP_OK)
		st = FP_FAIL(FP_ERR_IO, "train: rank 0 could not write checkpoint %s", path);
	return st;
}

static enum fp_status setup(struct run *r, int resume, struct fp_train_state *ts)
{
	const struct fp_train_config *c = r->c;
	char path[4096], labels[4096];
	struct fp_kernels_options ko;
	struct fp_tilenet_config mc;
	struct fp_train_options to;

	fp_kernels_options_default(&ko);
	ko.backend = c->backend == FP_TRAIN_CUDA ? FP_BACKEND_CUDA : FP_BACKEND_CPU;
	ko.threads = (int)c->threads;
	FP_TRY(fp_kernels_create(&ko, &r->k));

	fp_train_config_resolve(c, c->caches, path, sizeof path);
	fp_train_config_resolve(c, c->labels == FP_LABELS_TRUTH ? c->truth_dir : c->label_csv, labels, sizeof labels);
	FP_TRY(fp_site_data_open(path, (enum fp_label_source)c->labels, labels, c->min_label_share, &r->data));
	if (fp_site_data_count(r->data) == 0)
		return FP_FAIL(FP_ERR_DATA, "no labelled tiles in %s (labels from %s)", path, labels);

	fp_tilenet_config_default(&mc);
	mc.input_size = (int)c->input_size;
	mc.width[0] = (int)c->width1;
	mc.width[1] = (int)c->width2;
	mc.width[2] = (int)c->width3;
	mc.blocks = (int)c->blocks;
	mc.groups = (int)c->groups;
	FP_TRY(fp_tilenet_config_check(&mc));
	r->s = mc.input_size;
	if (fp_site_data_tile_size(r->data) % (uint32_t)r->s)
		return FP_FAIL(FP_ERR_CONFIG, "model.input_size %d does not divide the caches' %u px tiles", r->s,
		               fp_site_data_tile_size(r->data));

	r->seed = (uint64_t)c->seed;
	FP_TRY(fp_train_dist_create(r->k, 1, &r->dist)); /* probe the world size */
	r->size = fp_train_dist_size(r->dist);
	r->rank = fp_train_dist_rank(r->dist);
	fp_train_dist_destroy(r->dist);
	r->dist = NULL;
	r->global_batch = (int)c->batch;
	if (r->global_batch % r->size)
		return FP_FAIL(FP_ERR_CONFIG, "train.batch %d is not divisible by the %d MPI ranks", r->global_batch, r->size);
	r->local_batch = r->global_batch / r->size;
	FP_TRY(fp_model_create_tilenet(r->k, &mc, r->local_batch, r->seed, &r->model));
	FP_TRY(fp_train_dist_create(r->k, fp_model_n_params(r->model), &r->dist));

	FP_TRY(prepare_split(r));
	r->steps_per_epoch = (long)((r->n_train + (size_t)r->global_batch - 1) / (size_t)r->global_batch);
	r->total_steps = c->steps > 0 ? c->steps : c->epochs * r->steps_per_epoch;

	fp_train_options_default(&to);
	to.optimizer = (enum fp_optimizer)c->optimizer;
	to.lr = c->lr;
	to.weight_decay = c->weight_decay;
	to.momentum = c->momentum;
	to.clip_norm = c->clip_norm;
	to.warmup_steps = c->warmup < r->total_steps ? c->warmup : r->total_steps / 10;
	to.total_steps = r->total_steps;
	to.schedule = c->cosine ? FP_LR_COSINE : FP_LR_CONSTANT;
	to.min_lr_ratio = c->min_lr_ratio;
	to.prox_mu = c->prox_mu;
	FP_TRY(fp_trainer_create(r->model, &to, &r->trainer));
	if (r->dist) {
		struct fp_grad_reducer red = fp_train_dist_reducer(r->dist);
		fp_trainer_set_reducer(r->trainer, &red);
	}
	r->aug.flips = c->flips;
	r->aug.rot90 = c->rot90;
	r->aug.hed_jitter = c->hed_jitter;
	r->aug.brightness = c->brightness;
	r->aug.contrast = c->contrast;

	fp_train_config_resolve(c, c->checkpoint, r->ckpt, sizeof r->ckpt);
	size_t len = strlen(r->ckpt);
	const char *stem_end = len > 3 && strcmp(r->ckpt + len - 3, ".h5") == 0 ? r->ckpt + len - 3 : r->ckpt + len;
	int sl = (int)(stem_end - r->ckpt);
	snprintf(r->best, sizeof r->best, "%.*s.best.h5", sl, r->ckpt);
	snprintf(r->metrics, sizeof r->metrics, "%.*s.metrics.csv", sl, r->ckpt);
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", r->ckpt);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		FP_TRY(fp_mkdir_p(dir, 0755));
	}
	fp_buf_init(&r->metrics_csv, 64u << 20);
	memset(ts, 0, sizeof *ts);
	ts->seed = r->seed;
	ts->best_metric = -INFINITY;
	ts->best_epoch = -1;
	int exists = access(r->ckpt, F_OK) == 0;
	if (resume) {
		if (!exists) return FP_FAIL(FP_ERR_NOT_FOUND, "--resume: no checkpoint at %s", r->ckpt);
		FP_TRY(fp_checkpoint_load(r->trainer, ts, r->ckpt));
		if (ts->seed != r->seed)
			return FP_FAIL(FP_ERR_CONFIG, "--resume: %s was trained with seed %llu, the configuration says %llu",
			               r->ckpt, (unsigned long long)ts->seed, (unsigned long long)r->seed);
		char *old = NULL;
		size_t olen = 0;
		if (fp_file_read_all(r->metrics, 64u << 20, &old, &olen) == FP_OK) fp_buf_append(&r->metrics_csv, old, olen);
		free(old);
		fp_error_clear();
		if (r->rank == 0)
			FP_INFO("train: resuming %s at step %ld (epoch %ld)", r->ckpt, fp_trainer_step_count(r->trainer), ts->epoch);
	} else if (exists) {
		return FP_FAIL(FP_ERR_EXISTS, "checkpoint %s exists: pass --resume to continue it, or remove it to start over",
		               r->ckpt);
	}
	snprintf(ts->run_config, sizeof ts->run_config, "site=%s batch=%d ranks=%d lr=%g steps=%ld", c->site_id,
	         r->global_batch, r->size, c->lr, r->total_steps);

	uint32_t t = fp_site_data_tile_size(r->data);
	size_t b = (size_t)r->local_batch;
	FP_TRY(fp_alloc_array(b, sizeof *r->refs, (void **)&r->refs, "batch refs"));
	FP_TRY(fp_alloc_array(b * fp_model_input_floats(r->model), sizeof(float), (void **)&r->x, "batch"));
	FP_TRY(fp_alloc_array(b, sizeof(int32_t), (void **)&r->y, "batch labels"));
	FP_TRY(fp_alloc_array(b * t * t, 3, (void **)&r->rgb, "batch pixels"));
	FP_TRY(fp_alloc_array(b, sizeof *r->draws, (void **)&r->draws, "batch augmentation"));
	if (r->rank == 0)
		FP_INFO("train: %s, %zu parameters, global batch %d over %d rank(s), %ld steps (%ld per epoch)",
		        fp_kernels_describe(r->k), fp_model_n_params(r->model), r->global_batch, r->size,
		        r->total_steps, r->steps_per_epoch);
	return FP_OK;
}

static void teardown(struct run *r)
{
	fp_trainer_destroy(r->trainer);
	fp_model_destroy(r->model);
	fp_train_dist_destroy(r->dist);
	fp_site_data_destroy(r->data);
	fp_kernels_destroy(r->k);
	for (int k = 0; k < FP_TME_N_CLASSES; k++) free(r->by_class[k]);
	free(r->val);
	free(r->refs);
	free(r->x);
	free(r->y);
	free(r->rgb);
	free(r->draws);
	fp_buf_close(&r->metrics_csv);
}

/* Trains from the trainer's step to the end of its epoch (or the run). */
static enum fp_status run_epoch(struct run *r, struct fp_train_state *ts, double *tl, double *ta)
{
	long step = fp_trainer_step_count(r->trainer);
	long end = (step / r->steps_per_epoch + 1) * r->steps_per_epoch;
	if (end > r->total_steps) end = r->total_steps;
	size_t n = (size_t)(end - step) * (size_t)r->local_batch;
	struct fp_tile_ref *refs = NULL;
	int32_t *labels = NULL;
	struct fp_tile_prefetch *pf = NULL;
	struct fp_progress *prog = NULL;
	double loss_sum = 0;
	long correct = 0, seen = 0, done = 0;
	enum fp_status st;
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *refs, (void **)&refs, "epoch refs"));
	FP_CHECK(st, fp_alloc_array(n ? n : 1, sizeof *labels, (void **)&labels, "epoch labels"));
	for (long s = step; s < end; s++)
		for (int b = 0; b < r->local_batch; b++) {
			size_t i = (size_t)(s - step) * (size_t)r->local_batch + (size_t)b;
			const struct fp_site_tile *t = fp_site_data_tile(r->data, draw_tile(r, s, r->rank * r->local_batch + b));
			refs[i].slide = t->slide;
			refs[i].tile = t->tile;
			labels[i] = t->label;
		}
	FP_CHECK(st, fp_tile_prefetch_create(fp_site_data_reader(r->data), refs, n, (size_t)r->local_batch,
	                                     FP_TILE_U8_HWC, &pf));
	if (r->rank == 0) {
		char label[64];
		snprintf(label, sizeof label, "epoch %ld", step / r->steps_per_epoch + 1);
		FP_CHECK(st, fp_progress_create(label, (uint64_t)(end - step), "steps", &prog));
	}
	for (long s = step; s < end; s++) {
		const void *batch;
		size_t count;
		struct fp_step_stats ss;
		FP_CHECK(st, fp_tile_prefetch_next(pf, &batch, &count));
		if (count != (size_t)r->local_batch) {
			st = FP_FAIL(FP_ERR_INTERNAL, "train: prefetch gave %zu tiles for step %ld", count, s);
			goto fail;
		}
		/* Draws on the host from the seeded stream; pixels on the backend. */
		draw_augment(r, s, count);
		memcpy(r->y, labels + (size_t)(s - step) * (size_t)r->local_batch, count * sizeof(int32_t));
		FP_CHECK(st, fp_trainer_step_tiles(r->trainer, batch, fp_site_data_tile_size(r->data), r->draws, r->y,
		                                   (int)count, &ss));
		loss_sum += ss.loss;
		correct += ss.correct;
		seen += ss.n;
		done++;
		if (prog) fp_progress_add(prog, 1);
		long now = s + 1;
		if (r->c->checkpoint_every > 0 && now % r->c->checkpoint_every == 0 && now < end)
			FP_CHECK(st, save(r, ts, r->ckpt));
	}
	st = FP_OK;
fail:
	fp_progress_destroy(prog);
	fp_tile_prefetch_destroy(pf);
	free(refs);
	free(labels);
	*tl = done ? loss_sum / (double)done : NAN;
	*ta = seen ? (double)correct / (double)seen : NAN;
	return st;
}

enum fp_status fp_site_train_run(const struct fp_train_config *c, int resume, struct fp_train_summary *out)
{
	struct run r;
	struct fp_train_state ts;
	struct fp_train_summary sum = {0};
	enum fp_status st;
	double t0 = fp_now_seconds();
	memset(&r, 0, sizeof r);
	r.c = c;
	FP_CHECK(st, setup(&r, resume, &ts));
	while (fp_trainer_step_count(r.trainer) < r.total_steps) {
		double tl, ta;
		struct val_metrics vm;
		st = run_epoch(&r, &ts, &tl, &ta);
		if (st == FP_ERR_NUMERIC && r.rank == 0)
			fp_error_wrap("stopped; the last good checkpoint %s is kept", r.ckpt);
		if (st != FP_OK) goto fail;
		long step = fp_trainer_step_count(r.trainer);
		int epoch_done = step % r.steps_per_epoch == 0 || step == r.total_steps;
		if (!epoch_done) continue;
		ts.epoch = (step + r.steps_per_epoch - 1) / r.steps_per_epoch;
		FP_CHECK(st, validate(&r, &vm));
		double lr = fp_train_lr_at(fp_trainer_options(r.trainer), step - 1);
		if (r.rank == 0) {
			FP_INFO("train: epoch %ld step %ld: train loss %.4f acc %.3f | val loss %.4f macro AUC %.4f balanced acc %.3f",
			        ts.epoch, step, tl, ta, vm.loss, vm.macro_auc, vm.bal_acc);
			FP_CHECK(st, write_metrics(&r, ts.epoch, step, tl, ta, &vm, lr, fp_now_seconds() - t0));
		}
		int better = isfinite(vm.macro_auc) && vm.macro_auc > ts.best_metric;
		if (better || (!isfinite(vm.macro_auc) && r.n_val == 0)) {
			ts.best_metric = isfinite(vm.macro_auc) ? vm.macro_auc : ts.best_metric;
			ts.best_epoch = ts.epoch;
			ts.bad_epochs = 0;
			FP_CHECK(st, save(&r, &ts, r.best));
		} else {
			ts.bad_epochs++;
		}
		FP_CHECK(st, save(&r, &ts, r.ckpt));
		if (c->patience > 0 && ts.bad_epochs >= c->patience) {
			if (r.rank == 0)
				FP_INFO("train: early stop after epoch %ld: no better validation macro AUC for %ld epochs (best %.4f at epoch %ld)",
				        ts.epoch, ts.bad_epochs, ts.best_metric, ts.best_epoch);
			sum.stopped_early = 1;
			break;
		}
	}
	sum.steps = fp_trainer_step_count(r.trainer);
	sum.epochs = ts.epoch;
	sum.best_metric = isfinite(ts.best_metric) ? ts.best_metric : NAN;
	sum.best_epoch = ts.best_epoch;
	if (out) *out = sum;
	st = FP_OK;
fail:
	teardown(&r);
	return st;
}

enum fp_status fp_site_train_evaluate(const struct fp_train_config *c, const char *checkpoint,
                                      struct fp_eval_result *out)
{
	struct run r;
	struct fp_kernels_options ko;
	struct fp_tilenet_config mc;
	struct val_metrics vm;
	char path[4096], labels[4096];
	enum fp_status st;
	memset(&r, 0, sizeof r);
	memset(out, 0, sizeof *out);
	r.c = c;
	r.local_batch = (int)c->batch;
	fp_kernels_options_default(&ko);
	ko.backend = c->backend == FP_TRAIN_CUDA ? FP_BACKEND_CUDA : FP_BACKEND_CPU;
	ko.threads = (int)c->threads;
	FP_CHECK(st, fp_checkpoint_read_config(checkpoint, &mc));
	FP_CHECK(st, fp_kernels_create(&ko, &r.k));
	FP_CHECK(st, fp_model_create_tilenet(r.k, &mc, r.local_batch, 0, &r.model));
	FP_CHECK(st, fp_checkpoint_load_params(r.model, checkpoint));
	r.s = mc.input_size;
	fp_train_config_resolve(c, c->caches, path, sizeof path);
	fp_train_config_resolve(c, c->labels == FP_LABELS_TRUTH ? c->truth_dir : c->label_csv, labels, sizeof labels);
	FP_CHECK(st, fp_site_data_open(path, (enum fp_label_source)c->labels, labels, c->min_label_share, &r.data));
	r.n_val = fp_site_data_count(r.data);
	if (r.n_val == 0) {
		st = FP_FAIL(FP_ERR_DATA, "no labelled tiles in %s (labels from %s)", path, labels);
		goto fail;
	}
	uint32_t t = fp_site_data_tile_size(r.data);
	if (t % (uint32_t)r.s) {
		st = FP_FAIL(FP_ERR_DATA, "the model's %d px input does not divide the caches' %u px tiles", r.s, t);
		goto fail;
	}
	FP_CHECK(st, fp_alloc_array(r.n_val, sizeof(size_t), (void **)&r.val, "evaluation tiles"));
	for (size_t i = 0; i < r.n_val; i++) {
		r.val[i] = i;
		out->per_class[fp_site_data_tile(r.data, i)->label]++;
	}
	FP_CHECK(st, fp_alloc_array((size_t)r.local_batch, sizeof *r.refs, (void **)&r.refs, "batch refs"));
	FP_CHECK(st, fp_alloc_array((size_t)r.local_batch * fp_model_input_floats(r.model), sizeof(float), (void **)&r.x, "batch"));
	FP_CHECK(st, fp_alloc_array((size_t)r.local_batch * t * t, 3, (void **)&r.rgb, "batch pixels"));
	FP_CHECK(st, validate(&r, &vm));
	out->n_tiles = r.n_val;
	out->n_patients = fp_site_data_patients(r.data);
	out->loss = vm.loss;
	out->macro_auc = vm.macro_auc;
	out->balanced_accuracy = vm.bal_acc;
	memcpy(out->auc, vm.auc, sizeof out->auc);
fail:
	teardown(&r);
	return st;
}
