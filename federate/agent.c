/*
 * agent.c: the site agent's loop (fp_agent.h).
 *
 * One connection at a time; everything the agent must remember across
 * connections is `struct kept`: the last trained update, the round and base
 * model it answers, and its stream sender (which knows the resume point).
 * Memory: one model's worth and one frame buffer. The model is received into
 * a->model and trained in place: the buffer then holds the update and moves
 * to the kept update until the aggregator acknowledges it, when it comes back
 * as a->model. Only a task that arrives while an update is still kept (after
 * a cut connection) needs a second buffer for its model, freed again once the
 * kept update goes.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "fp_agent.h"
#include "fp_audit.h"
#include "fp_common.h"
#include "fp_eval_site.h"
#include "fp_log.h"
#include "fp_part2_fed.h"
#include "fp_server.h"
#include "fp_stream.h"
#include "fp_tls.h"
#include "fp_trainers.h"

struct kept {
	int have;
	int64_t round;
	uint8_t base[32];
	uint64_t samples;
	double loss;
	float *values;           /* (n) the update; owned */
	struct fp_stream_tx *tx; /* borrows values; gives the tensor header; its resume state */
};

struct agent {
	const struct fp_agent_config *cfg;
	const struct fp_local_trainer *tr; /* cfg->trainer, or Part 2's once built */
	size_t n;
	uint8_t plan_hash[32];
	float *model; /* (n) where a task's model is received; NULL while its buffer holds the kept update */
	struct kept k;
	struct fp_agent_stats st;
	struct fp_tls_ctx *tls;
	struct fp_audit *audit; /* NULL: none */
	/* the connection's transport, wrapped for fault injection */
	const struct fp_io *inner;
	struct fp_io io;
	int uploading, died, cut_done;
	uint64_t upload_bytes;
	/* Part 2: the trainer follows the pooled statistics of the tasks. */
	struct fp_p2_trainer *p2;
	struct fp_local_trainer p2_lt;
	struct fp_p2_stats *p2_pooled; /* what p2 was built from */
	uint32_t p2_hidden;
	int have_final;                /* a->model is the final model of a "baseline" task */
	int model_error;               /* the study ended but the model file could not be written */
	uint8_t final_hash[32];
};

static enum fp_status wrap_read(void *ctx, void *buf, size_t len)
{
	struct agent *a = ctx;
	return a->inner->read(a->inner->ctx, buf, len);
}

static enum fp_status wrap_write(void *ctx, const void *buf, size_t len)
{
	struct agent *a = ctx;
	if (a->uploading && !a->cut_done && a->cfg->cut_once_after_upload_bytes &&
	    a->upload_bytes + len > a->cfg->cut_once_after_upload_bytes) {
		a->cut_done = 1;
		return FP_FAIL(FP_ERR_IO, "site %s: connection cut once by fault injection after %llu upload bytes",
		               a->cfg->site_id, (unsigned long long)a->upload_bytes);
	}
	if (a->uploading && a->cfg->cut_once_after_upload_bytes) a->upload_bytes += len;
	if (a->uploading && a->cfg->die_after_upload_bytes) {
		if (a->upload_bytes + len > a->cfg->die_after_upload_bytes) {
			a->died = 1;
			return FP_FAIL(FP_ERR_IO, "site %s: connection cut by fault injection after %llu upload bytes",
			               a->cfg->site_id, (unsigned long long)a->upload_bytes);
		}
		a->upload_bytes += len;
	}
	return a->inner->write(a->inner->ctx, buf, len);
}

static void audit_event(struct agent *a, const char *event, json_t *data)
{
	if (a->audit && data && fp_audit_append(a->audit, event, data) != FP_OK)
		fp_log(FP_LOG_WARN, "site: audit log: %s", fp_error_msg());
	json_decref(data);
}

/* Forgets the kept update; its buffer becomes a->model again (or is freed
 * when a second one was needed meanwhile). */
static void kept_drop(struct agent *a)
{
	fp_stream_tx_destroy(a->k.tx);
	if (a->k.values) {
		if (!a->model) a->model = a->k.values;
		else free(a->k.values);
	}
	memset(&a->k, 0, sizeof a->k);
}

struct model_sink {
	uint8_t *dst;
	uint64_t cap;
};

static enum fp_status sink_model(void *ctx, uint64_t offset, const void *data, size_t len, const uint8_t digest[32])
{
	(void)digest;
	struct model_sink *m = ctx;
	if (offset > m->cap || len > m->cap - offset)
		return FP_FAIL(FP_ERR_PROTOCOL, "model stream: %zu bytes at offset %llu exceed the model's %llu", len,
		               (unsigned long long)offset, (unsigned long long)m->cap);
	memcpy(m->dst + offset, data, len);
	return FP_OK;
}

static int stopped(const struct agent *a) { return a->cfg->stop && *a->cfg->stop; }

static void sleep_s(const struct agent *a, double s)
{
	while (s > 0 && !stopped(a)) {
		double d = s < 0.05 ? s : 0.05;
		struct timespec ts = {0, (long)(d * 1e9)};
		nanosleep(&ts, NULL);
		s -= d;
	}
}

/* Receives the model a task announces into a->model; h: its SHA-256. The
 * stream has checked every byte against the tensor digest the task carries;
 * with `rehash` the SHA-256 is computed here and checked against the task's
 * base-model hash (the final model, a model to evaluate: once a study), else
 * it is the task's (every training round: a second pass over a model's worth
 * of bytes per round would check only the aggregator's consistency with
 * itself, both values arriving on the same authenticated connection). */
static enum fp_status recv_model(struct agent *a, const Fedpath__Task *t, struct fp_frame *fr, int rehash,
                                 uint8_t h[32])
{
	enum fp_status st;
	struct fp_stream_rx *rx = NULL;
	a->have_final = 0;
	if (!a->tr || !t->model || t->model->dtype != 1 || t->model->total_bytes != (uint64_t)a->n * sizeof(float) ||
	    t->base_model_hash.len != 32)
		return FP_FAIL(FP_ERR_PROTOCOL, "site %s: task of round %llu does not carry a %zu-value float32 model",
		               a->cfg->site_id, (unsigned long long)t->round, a->n);
	if (!a->model && !(a->model = malloc((a->n ? a->n : 1) * sizeof(float))))
		return FP_FAIL(FP_ERR_NOMEM, "site %s: out of memory for a second %zu-parameter model (an update is kept)",
		               a->cfg->site_id, a->n);
	struct model_sink ms = {(uint8_t *)a->model, (uint64_t)a->n * sizeof(float)};
	FP_CHECK(st, fp_stream_rx_create(t->model, sink_model, &ms, &rx));
	FP_CHECK(st, fp_stream_rx_recv(rx, &a->io, fr));
	if (!rehash) {
		memcpy(h, t->base_model_hash.data, 32);
		goto fail;
	}
	FP_CHECK(st, fp_sha256(a->model, a->n * sizeof(float), h));
	if (memcmp(h, t->base_model_hash.data, 32) != 0)
		st = FP_FAIL(FP_ERR_CHECKSUM, "site %s: the model of round %llu does not match its base-model hash",
		             a->cfg->site_id, (unsigned long long)t->round);
fail:
	fp_stream_rx_destroy(rx);
	return st;
}

/* Part 2: builds (or keeps) the local trainer for the pooled statistics a
 * task carries; a change of statistics drops any kept update. */
static enum fp_status p2_ensure(struct agent *a, const Fedpath__Task *t)
{
	enum fp_status st;
	struct fp_p2_stats *pooled = malloc(sizeof *pooled);
	uint32_t hidden = 0;
	float *m = NULL;
	struct fp_p2_trainer *tr = NULL;
	if (!pooled) return FP_FAIL(FP_ERR_NOMEM, "site %s: pooled statistics", a->cfg->site_id);
	FP_CHECK(st, fp_p2fed_stats_from_msg(t->part2_pooled, "the aggregator", pooled, &hidden));
	if (hidden == 0 || hidden > 1024) {
		st = FP_FAIL(FP_ERR_PROTOCOL, "site %s: the aggregator's Part 2 trunk width %u is outside 1..1024",
		             a->cfg->site_id, hidden);
		goto fail;
	}
	if (a->p2 && hidden == a->p2_hidden && memcmp(pooled, a->p2_pooled, sizeof *pooled) == 0) goto fail; /* same */
	struct fp_part2_config pc;
	fp_p2fed_config(a->cfg->plan, (int)hidden, &pc);
	if (pc.kind == FP_P2_MIL && !a->cfg->p2_bags) {
		st = FP_FAIL(FP_ERR_STATE, "site %s: the plan's part2.kind = mil needs this site's tile-embedding bags "
		                           "(site.ini [part2] caches)", a->cfg->site_id);
		goto fail;
	}
	if (pc.kind == FP_P2_MIL)
		FP_CHECK(st, fp_p2_trainer_create_mil(a->cfg->p2_table, a->cfg->p2_bags, (int)a->cfg->plan->part2_embed_dim,
		                                      pooled, &pc, &tr));
	else
		FP_CHECK(st, fp_p2_trainer_create(a->cfg->p2_table, pooled, &pc, &tr));
	struct fp_local_trainer lt;
	fp_p2_trainer_local(tr, &lt);
	m = malloc(lt.n_params * sizeof(float));
	if (!m) {
		st = FP_FAIL(FP_ERR_NOMEM, "site %s: out of memory for a %zu-parameter model", a->cfg->site_id, lt.n_params);
		goto fail;
	}
	kept_drop(a);
	a->have_final = 0;
	fp_p2_trainer_destroy(a->p2);
	free(a->model);
	free(a->p2_pooled);
	a->p2 = tr;
	a->p2_lt = lt;
	a->tr = &a->p2_lt;
	a->n = lt.n_params;
	a->model = m;
	a->p2_pooled = pooled;
	a->p2_hidden = hidden;
	tr = NULL;
	m = NULL;
	pooled = NULL;
	fp_log(FP_LOG_INFO, "site: part2: pooled statistics of %s (%llu patients): %d design columns, %zu parameters",
	       a->p2_pooled->sites, (unsigned long long)a->p2_pooled->n_patients, fp_p2_design_width(a->p2_pooled), a->n);
fail:
	fp_p2_trainer_destroy(tr);
	free(m);
	free(pooled);
	return st;
}

/* TASK "stats": this site's Part 2 sums and counts, never a row. */
static enum fp_status do_stats(struct agent *a, struct fp_frame *fr)
{
	enum fp_status st;
	ProtobufCMessage *reply = NULL;
	struct fp_p2fed_msg *x = NULL;
	struct fp_p2_stats *local = malloc(sizeof *local);
	if (!local || !(x = malloc(sizeof *x))) {
		st = FP_FAIL(FP_ERR_NOMEM, "site %s: statistics", a->cfg->site_id);
		goto fail;
	}
	if (!a->cfg->p2_table) {
		st = FP_FAIL(FP_ERR_STATE, "site %s: the aggregator asks for Part 2 statistics but this agent has no Part 2 "
		                           "table (site.ini [part2] clinical)",
		             a->cfg->site_id);
		fp_msg_send_error(&a->io, st, fp_error_msg());
		goto fail;
	}
	fp_p2_stats_local(a->cfg->p2_table, local);
	fp_p2fed_msg_init(x, local, 0);
	Fedpath__Status sm = FEDPATH__STATUS__INIT;
	sm.state = "stats";
	sm.part2_stats = &x->m;
	FP_CHECK(st, fp_msg_send(&a->io, FP_FRAME_STATUS, &sm.base));
	FP_CHECK(st, fp_msg_recv(&a->io, fr, FP_FRAME_STATUS, &reply));
	fp_log(FP_LOG_INFO, "site: part2: standardisation statistics sent (%llu patients, %d columns)",
	       (unsigned long long)local->n_patients, local->p);
	audit_event(a, "part2.stats.sent",
	            json_pack("{s:I, s:i, s:s}", "patients", (json_int_t)local->n_patients, "columns", local->p,
	                      "software_version", fp_version()));
fail:
	fp_msg_free(reply);
	free(x);
	free(local);
	return st;
}

/* TASK "baseline": the final model in; three numbers (H0 at 12/24/36 months of
 * this site's stratum) out. */
static enum fp_status do_baseline(struct agent *a, const Fedpath__Task *t, struct fp_frame *fr)
{
	enum fp_status st;
	ProtobufCMessage *reply = NULL;
	uint8_t h[32];
	double h0[FP_P2_N_HORIZONS];
	FP_CHECK(st, p2_ensure(a, t));
	FP_CHECK(st, recv_model(a, t, fr, 1, h));
	FP_CHECK(st, fp_p2_trainer_baseline(a->p2, a->model, h0));
	Fedpath__Part2Baseline b = FEDPATH__PART2_BASELINE__INIT;
	b.site = (char *)a->cfg->site_id;
	b.n_h0 = FP_P2_N_HORIZONS;
	b.h0 = h0;
	Fedpath__Status sm = FEDPATH__STATUS__INIT;
	sm.round = t->round;
	sm.state = "baseline";
	sm.part2_baseline = &b;
	FP_CHECK(st, fp_msg_send(&a->io, FP_FRAME_STATUS, &sm.base));
	FP_CHECK(st, fp_msg_recv(&a->io, fr, FP_FRAME_STATUS, &reply));
	a->have_final = 1;
	memcpy(a->final_hash, h, 32);
	char hx[FP_SHA256_HEX_SIZE];
	fp_hex_encode(h, 32, hx);
	audit_event(a, "part2.baseline.sent", json_pack("{s:I, s:s, s:[f,f,f]}", "round", (json_int_t)t->round,
	                                                 "model_hash", hx, "h0", h0[0], h0[1], h0[2]));
fail:
	fp_msg_free(reply);
	return st;
}

/* The baselines a task carries, as the model file stores them. */
static enum fp_status task_baselines(const struct agent *a, const Fedpath__Task *t, char (**sites)[33],
                                     double (**h0)[FP_P2_N_HORIZONS])
{
	*sites = NULL;
	*h0 = NULL;
	if (t->n_part2_baselines == 0 || t->n_part2_baselines > FP_AGG_MAX_SITES)
		return FP_FAIL(FP_ERR_PROTOCOL, "site %s: the task carries %zu site baselines", a->cfg->site_id,
		               t->n_part2_baselines);
	*sites = calloc(t->n_part2_baselines, sizeof **sites);
	*h0 = calloc(t->n_part2_baselines, sizeof **h0);
	if (!*sites || !*h0) return FP_FAIL(FP_ERR_NOMEM, "site %s: baselines", a->cfg->site_id);
	for (size_t i = 0; i < t->n_part2_baselines; i++) {
		const Fedpath__Part2Baseline *b = t->part2_baselines[i];
		if (!b->site || !fp_wire_id_valid(b->site) || strlen(b->site) > 32 || b->n_h0 != FP_P2_N_HORIZONS)
			return FP_FAIL(FP_ERR_PROTOCOL, "site %s: baseline %zu of the task is malformed", a->cfg->site_id, i);
		snprintf((*sites)[i], sizeof (*sites)[i], "%s", b->site);
		memcpy((*h0)[i], b->h0, sizeof (*h0)[i]);
	}
	return FP_OK;
}

/* TASK "done" of a Part 2 study: the model file `fedpath predict` reads,
 * from the final model of the "baseline" (or "evaluate") task and every
 * site's baseline. */
static enum fp_status p2_write_model(struct agent *a, const Fedpath__Task *t)
{
	const char *path = a->cfg->p2_model_out;
	if (!path || !a->p2) return FP_OK;
	if (!a->have_final)
		return FP_FAIL(FP_ERR_STATE,
		               "site %s: the study is done but this agent did not receive the final model (it restarted "
		               "after the baselines); no model file written: ask the coordinating centre for %s",
		               a->cfg->site_id, "part2-model.ckpt");
	char(*sites)[33] = NULL;
	double(*h0)[FP_P2_N_HORIZONS] = NULL;
	char hash[FP_SHA256_HEX_SIZE];
	enum fp_status st = task_baselines(a, t, &sites, &h0);
	if (st == FP_OK)
		st = fp_p2fed_write_model(a->cfg->plan, a->p2_hidden, a->p2_pooled, a->p2, a->model, a->n, (long)t->round,
		                          (int)t->n_part2_baselines, (const char(*)[33])sites,
		                          (const double(*)[FP_P2_N_HORIZONS])h0, path, hash);
	if (st == FP_OK) {
		fp_log(FP_LOG_INFO, "site: part2: model file %s (model %.12s, %zu site baselines)", path, hash,
		       t->n_part2_baselines);
		audit_event(a, "part2.model", json_pack("{s:s, s:s}", "path", path, "model_hash", hash));
	}
	free(sites);
	free(h0);
	return st;
}

/* The summary of this site under the request, or the reason there is none. */
static enum fp_status eval_summary(struct agent *a, const Fedpath__Task *t, const Fedpath__EvalRequest *er,
                                   char **json_out, uint64_t *n_events)
{
	enum fp_status st;
	struct fp_p2_ckpt ck;
	char(*sites)[33] = NULL;
	double(*h0)[FP_P2_N_HORIZONS] = NULL;
	json_t *doc = NULL;
	memset(&ck, 0, sizeof ck);
	*json_out = NULL;
	if (er->n_grid_edges < 2 || er->n_grid_edges > FP_EVAL_MAX_GRID_EDGES || !isfinite(er->horizon) ||
	    er->horizon <= 0 || er->min_cell < 1 || (er->n_risk_cuts != 0 && er->n_risk_cuts != 2)) {
		st = FP_FAIL(FP_ERR_PROTOCOL, "site %s: evaluation request: %zu grid edges, horizon %g, min_cell %g, %zu "
		                              "risk cuts",
		             a->cfg->site_id, er->n_grid_edges, er->horizon, er->min_cell, er->n_risk_cuts);
		goto fail;
	}
	for (size_t j = 1; j < er->n_grid_edges; j++)
		if (!(er->grid_edges[j] > er->grid_edges[j - 1])) {
			st = FP_FAIL(FP_ERR_PROTOCOL, "site %s: evaluation grid edges do not increase at %zu", a->cfg->site_id, j);
			goto fail;
		}
	/* Summaries of fewer patients than min_cell would describe individuals. */
	if ((double)a->cfg->p2_table->n < er->min_cell) {
		st = FP_FAIL(FP_ERR_DATA, "site %s: %zu patients, fewer than the study's min_cell %g: no summary is released",
		             a->cfg->site_id, a->cfg->p2_table->n, er->min_cell);
		goto fail;
	}
	FP_CHECK(st, task_baselines(a, t, &sites, &h0));
	FP_CHECK(st, fp_p2fed_build_model(a->cfg->plan, a->p2_hidden, a->p2_pooled, a->p2, a->model, a->n, (long)t->round,
	                                  (int)t->n_part2_baselines, (const char(*)[33])sites,
	                                  (const double(*)[FP_P2_N_HORIZONS])h0, &ck));
	struct fp_eval_site_input in;
	memset(&in, 0, sizeof in);
	in.site = a->cfg->site_id;
	in.table = a->cfg->p2_table;
	in.clinical_csv = a->cfg->p2_clinical_csv;
	in.features_csv = a->cfg->p2_features_csv;
	in.bags = a->cfg->p2_bags;
	in.model = &ck;
	in.horizon = er->horizon;
	in.grid_edges = er->grid_edges;
	in.grid_cells = er->n_grid_edges - 1;
	if (er->n_risk_cuts == 2) {
		in.risk_cuts[0] = er->risk_cuts[0];
		in.risk_cuts[1] = er->risk_cuts[1];
	}
	in.min_cell = er->min_cell;
	FP_CHECK(st, fp_eval_site_summary(&in, &doc));
	json_t *ev = json_object_get(doc, "events");
	*n_events = json_is_number(ev) ? (uint64_t)json_number_value(ev) : 0;
	*json_out = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
	if (!*json_out) st = FP_FAIL(FP_ERR_NOMEM, "site %s: evaluation summary", a->cfg->site_id);
	else if (strlen(*json_out) > FP_EVAL_MAX_SUMMARY_BYTES)
		st = FP_FAIL(FP_ERR_LIMIT, "site %s: evaluation summary of %zu bytes; the protocol allows %u",
		             a->cfg->site_id, strlen(*json_out), FP_EVAL_MAX_SUMMARY_BYTES);
fail:
	if (st != FP_OK) {
		free(*json_out);
		*json_out = NULL;
	}
	json_decref(doc);
	fp_p2_ckpt_close(&ck);
	free(sites);
	free(h0);
	return st;
}

/* TASK "evaluate": the final model, then EVAL_REQUEST; only the summary (or
 * the reason there is none) goes back. */
static enum fp_status do_evaluate(struct agent *a, const Fedpath__Task *t, struct fp_frame *fr)
{
	enum fp_status st;
	ProtobufCMessage *req = NULL, *reply = NULL;
	char *json = NULL, reason[512] = "";
	uint8_t h[32];
	uint64_t n_events = 0;
	FP_CHECK(st, p2_ensure(a, t));
	FP_CHECK(st, recv_model(a, t, fr, 1, h));
	a->have_final = 1;
	memcpy(a->final_hash, h, 32);
	FP_CHECK(st, fp_msg_recv(&a->io, fr, FP_FRAME_EVAL_REQUEST, &req));
	const Fedpath__EvalRequest *er = (const Fedpath__EvalRequest *)req;
	if (memcmp(er->model_hash.data, h, 32) != 0) {
		st = FP_FAIL(FP_ERR_CHECKSUM, "site %s: the evaluation request names another model than the one received",
		             a->cfg->site_id);
		goto fail;
	}
	enum fp_status est = eval_summary(a, t, er, &json, &n_events);
	if (est != FP_OK) {
		snprintf(reason, sizeof reason, "%s", fp_error_msg());
		fp_log(FP_LOG_WARN, "site: evaluation: %s", reason);
	}
	Fedpath__EvalSummary es = FEDPATH__EVAL_SUMMARY__INIT;
	es.round = t->round;
	es.model_hash.data = h;
	es.model_hash.len = 32;
	es.n_patients = est == FP_OK ? (uint64_t)a->cfg->p2_table->n : 0;
	es.n_events = n_events;
	es.summary_json = json ? json : "";
	es.error_code = est == FP_OK ? 0 : (uint32_t)est;
	es.error_reason = reason;
	FP_CHECK(st, fp_msg_send(&a->io, FP_FRAME_EVAL_SUMMARY, &es.base));
	FP_CHECK(st, fp_msg_recv(&a->io, fr, FP_FRAME_STATUS, &reply));
	char hx[FP_SHA256_HEX_SIZE], dh[FP_SHA256_HEX_SIZE] = "";
	uint8_t d[32];
	fp_hex_encode(h, 32, hx);
	if (json && fp_sha256(json, strlen(json), d) == FP_OK) fp_hex_encode(d, 32, dh);
	fp_log(FP_LOG_INFO, "site: evaluation: %s sent", est == FP_OK ? "summary" : "refusal");
	audit_event(a, est == FP_OK ? "eval.summary.sent" : "eval.refused",
	            json_pack("{s:I, s:s, s:I, s:s, s:s}", "round", (json_int_t)t->round, "model_hash", hx, "bytes",
	                      (json_int_t)(json ? strlen(json) : 0), "sha256", dh, "reason", reason));
fail:
	free(json);
	fp_msg_free(req);
	fp_msg_free(reply);
	return st;
}

/* Receives the model of a "train" task, trains (or reuses the kept update)
 * and uploads. *fatal = 1 when retrying cannot help. */
static enum fp_status do_train(struct agent *a, const Fedpath__Task *t, struct fp_frame *fr, int *fatal)
{
	enum fp_status st;
	const struct fp_agent_config *cfg = a->cfg;
	ProtobufCMessage *reply = NULL;
	if (t->config_hash.len != 32 || memcmp(t->config_hash.data, a->plan_hash, 32) != 0) {
		*fatal = 1;
		st = FP_FAIL(FP_ERR_STATE,
		             "site %s refuses round %llu: the task's plan hash differs from this site's plan; "
		             "ask the coordinating centre for the current study.ini",
		             cfg->site_id, (unsigned long long)t->round);
		fp_msg_send_error(&a->io, st, fp_error_msg());
		audit_event(a, "study.refused", json_pack("{s:s}", "reason", fp_error_msg()));
		return st;
	}
	if (cfg->plan->model == FP_PLAN_PART2) FP_CHECK(st, p2_ensure(a, t));
	uint8_t h[32];
	FP_CHECK(st, recv_model(a, t, fr, 0, h));
	a->st.tasks++;
	fp_log_set_round((long)t->round);
	if (a->k.have && (a->k.round != (int64_t)t->round || memcmp(a->k.base, h, 32) != 0)) kept_drop(a);
	if (a->k.have) {
		fp_log(FP_LOG_INFO, "site: round %llu: sending the update kept from before the interruption, not training",
		       (unsigned long long)t->round);
	} else {
		/* in place: the model's buffer becomes the update */
		FP_CHECK(st, a->tr->train(a->tr->ctx, a->model, (int64_t)t->round, cfg->plan, a->model, &a->k.samples,
		                          &a->k.loss));
		a->st.trained++;
		FP_CHECK(st, fp_stream_tx_create((uint64_t)t->round, a->model, (uint64_t)a->n * sizeof(float),
		                                 cfg->upload_chunk_bytes ? cfg->upload_chunk_bytes : FP_SERVER_CHUNK_BYTES,
		                                 &a->k.tx));
		a->k.values = a->model;
		a->model = NULL;
		a->k.have = 1;
		a->k.round = (int64_t)t->round;
		memcpy(a->k.base, h, 32);
	}
	Fedpath__TensorHeader th = FEDPATH__TENSOR_HEADER__INIT;
	uint64_t dims[1] = {a->n};
	fp_stream_tx_header(a->k.tx, &th);
	th.name = "update";
	th.n_dims = 1;
	th.dims = dims;
	Fedpath__Update u = FEDPATH__UPDATE__INIT;
	u.round = t->round;
	u.base_model_hash.data = a->k.base;
	u.base_model_hash.len = 32;
	u.sample_count = a->k.samples;
	u.train_loss = a->k.loss;
	u.delta = &th;
	a->uploading = 1;
	a->upload_bytes = 0;
	st = fp_msg_send(&a->io, FP_FRAME_UPDATE, &u.base);
	uint64_t sent0 = 0, sent1 = 0;
	fp_stream_tx_stats(a->k.tx, &sent0, NULL);
	if (st == FP_OK) st = fp_stream_tx_send(a->k.tx, &a->io, fr, FP_STREAM_DEFAULT_WINDOW);
	fp_stream_tx_stats(a->k.tx, &sent1, NULL);
	a->st.chunks_sent += (int64_t)(sent1 - sent0);
	a->uploading = 0;
	if (st != FP_OK) goto fail;
	/* Only the aggregator's own ERROR drops the kept update; a lost
	 * connection leaves it unknown whether the update arrived, so keep it:
	 * the next task says (train: send it again; wait: it is in). */
	FP_CHECK(st, fp_frame_recv(&a->io, fr));
	if (fr->type == FP_FRAME_STATUS) {
		fp_log(FP_LOG_INFO, "site: round %llu: update accepted (%llu samples, loss %.4g)",
		       (unsigned long long)t->round, (unsigned long long)a->k.samples, a->k.loss);
		a->st.uploaded++;
		char bh[FP_SHA256_HEX_SIZE], dh[FP_SHA256_HEX_SIZE];
		fp_hex_encode(a->k.base, 32, bh);
		fp_hex_encode(th.digest.data, 32, dh);
		audit_event(a, "update.accepted",
		            json_pack("{s:I, s:s, s:s, s:I, s:f, s:s}", "round", (json_int_t)t->round, "base_model_hash", bh,
		                      "update_digest", dh, "samples", (json_int_t)a->k.samples, "loss", a->k.loss,
		                      "software_version", fp_version()));
		kept_drop(a);
	} else if (fr->type == FP_FRAME_ERROR) {
		FP_CHECK(st, fp_msg_unpack(FP_FRAME_ERROR, fr->data, fr->len, &reply));
		const Fedpath__Error *e = (const Fedpath__Error *)reply;
		st = FP_FAIL(FP_ERR_PROTOCOL, "site %s: the aggregator refused the round %llu update: %s", cfg->site_id,
		             (unsigned long long)t->round, e->reason);
		fp_log(FP_LOG_WARN, "site: %s", fp_error_msg());
		audit_event(a, "update.refused", json_pack("{s:I, s:s}", "round", (json_int_t)t->round, "reason", e->reason));
		if (!strstr(e->reason, "is uploading")) kept_drop(a);
	} else {
		st = FP_FAIL(FP_ERR_PROTOCOL, "site %s: a %s frame where STATUS or ERROR was expected", cfg->site_id,
		             fp_frame_type_str(fr->type));
	}
fail:
	fp_msg_free(reply);
	return st;
}

/* One connection. *progress = 1 once a task was received. */
static enum fp_status session(struct agent *a, int *progress, int *fatal, int *done)
{
	enum fp_status st;
	const struct fp_agent_config *cfg = a->cfg;
	struct fp_tls_conn *c = NULL;
	struct fp_frame fr;
	ProtobufCMessage *m = NULL;
	fp_frame_init(&fr);
	FP_CHECK(st, fp_tls_connect(a->tls, cfg->host, cfg->port, &c));
	a->inner = fp_tls_conn_io(c);
	a->io.read = wrap_read;
	a->io.write = wrap_write;
	a->io.ctx = a;
	FP_CHECK(st, fp_msg_recv(&a->io, &fr, FP_FRAME_HELLO, &m));
	const Fedpath__Hello *sh = (const Fedpath__Hello *)m;
	if (sh->config_hash.len != 32 || memcmp(sh->config_hash.data, a->plan_hash, 32) != 0) {
		*fatal = 1;
		st = FP_FAIL(FP_ERR_STATE,
		             "site %s refuses the study: the aggregator's plan hash differs from this site's plan; "
		             "ask the coordinating centre for the current study.ini",
		             cfg->site_id);
		fp_msg_send_error(&a->io, st, fp_error_msg());
		audit_event(a, "study.refused", json_pack("{s:s}", "reason", fp_error_msg()));
		goto fail;
	}
	fp_msg_free(m);
	m = NULL;
	Fedpath__Hello hello = FEDPATH__HELLO__INIT;
	hello.protocol_version = FP_PROTO_VERSION;
	hello.site_id = (char *)cfg->site_id;
	hello.role = "site";
	hello.software_version = (char *)fp_version();
	hello.config_hash.data = a->plan_hash;
	hello.config_hash.len = 32;
	FP_CHECK(st, fp_msg_send(&a->io, FP_FRAME_HELLO, &hello.base));
	while (!stopped(a)) {
		Fedpath__Status poll = FEDPATH__STATUS__INIT;
		poll.state = "poll";
		FP_CHECK(st, fp_msg_send(&a->io, FP_FRAME_STATUS, &poll.base));
		FP_CHECK(st, fp_msg_recv(&a->io, &fr, FP_FRAME_TASK, &m));
		*progress = 1;
		const Fedpath__Task *t = (const Fedpath__Task *)m;
		if (strcmp(t->kind, "done") == 0) {
			fp_log(FP_LOG_INFO, "site: the aggregator reports the study done after round %llu",
			       (unsigned long long)t->round);
			if (cfg->plan->model == FP_PLAN_PART2 && p2_write_model(a, t) != FP_OK) {
				fp_log_error_last("site: part2 model file");
				a->model_error = 1;
			}
			*done = 1;
			break;
		} else if (strcmp(t->kind, "wait") == 0) {
			sleep_s(a, t->poll_after_ms > 10000 ? 10.0 : t->poll_after_ms / 1000.0);
		} else if (strcmp(t->kind, "train") == 0) {
			FP_CHECK(st, do_train(a, t, &fr, fatal));
		} else if (strcmp(t->kind, "stats") == 0) {
			FP_CHECK(st, do_stats(a, &fr));
		} else if (strcmp(t->kind, "baseline") == 0) {
			FP_CHECK(st, do_baseline(a, t, &fr));
		} else if (strcmp(t->kind, "evaluate") == 0) {
			FP_CHECK(st, do_evaluate(a, t, &fr));
		} else {
			st = FP_FAIL(FP_ERR_PROTOCOL, "site %s: unknown task kind '%s'", cfg->site_id, t->kind);
			goto fail;
		}
		fp_msg_free(m);
		m = NULL;
	}
	st = FP_OK;
fail:
	fp_msg_free(m);
	fp_frame_close(&fr);
	fp_tls_conn_close(c);
	return st;
}

enum fp_status fp_agent_run(const struct fp_agent_config *cfg, struct fp_agent_stats *stats)
{
	enum fp_status st;
	struct agent a;
	memset(&a, 0, sizeof a);
	a.cfg = cfg;
	if (cfg->plan->model == FP_PLAN_PART2) {
		/* The trainer follows from the pooled statistics the aggregator sends. */
		if (!cfg->p2_table)
			return FP_FAIL(FP_ERR_INVALID_ARG, "site %s: a Part 2 plan needs the site's Part 2 table", cfg->site_id);
	} else {
		if (!cfg->trainer) return FP_FAIL(FP_ERR_INVALID_ARG, "site %s: no local trainer", cfg->site_id);
		a.tr = cfg->trainer;
		a.n = cfg->trainer->n_params;
	}
	char phex[FP_SHA256_HEX_SIZE];
	fp_plan_hash(cfg->plan, phex);
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;
		sscanf(phex + 2 * i, "%2x", &v);
		a.plan_hash[i] = (uint8_t)v;
	}
	if (cfg->upload_chunk_bytes % 4 != 0) return FP_FAIL(FP_ERR_INVALID_ARG, "upload_chunk_bytes must be a multiple of 4");
	a.model = malloc((a.n ? a.n : 1) * sizeof(float));
	if (!a.model) {
		st = FP_FAIL(FP_ERR_NOMEM, "site %s: out of memory for a %zu-parameter model", cfg->site_id, a.n);
		goto fail;
	}
	struct fp_tls_config tc = {0,    cfg->ca_file,     cfg->cert_file,   cfg->key_file, cfg->crl_file,
	                           NULL, cfg->server_name, cfg->io_timeout_ms, NULL,        NULL};
	FP_CHECK(st, fp_tls_ctx_create(&tc, &a.tls));
	if (cfg->audit_path) FP_CHECK(st, fp_audit_open(cfg->audit_path, &a.audit));
	fp_log_set_site(cfg->site_id);
	double b0 = cfg->backoff_initial_s > 0 ? cfg->backoff_initial_s : 1.0;
	double bmax = cfg->backoff_max_s > 0 ? cfg->backoff_max_s : 60.0;
	double backoff = b0;
	unsigned seed = 0;
	for (const char *p = cfg->site_id; *p; p++) seed = seed * 31u + (unsigned char)*p;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double last_ok = (double)t0.tv_sec + 1e-9 * (double)t0.tv_nsec;
	for (;;) {
		if (stopped(&a)) {
			st = FP_FAIL(FP_ERR_CANCELLED, "site %s: stopped", cfg->site_id);
			break;
		}
		int progress = 0, fatal = 0, done = 0;
		st = session(&a, &progress, &fatal, &done);
		if (a.died) {
			st = FP_FAIL(FP_ERR_IO, "site %s: connection cut by fault injection", cfg->site_id);
			break;
		}
		if (done || fatal) break;
		if (st == FP_OK) continue; /* stop was requested inside the session */
		struct timespec tn;
		clock_gettime(CLOCK_MONOTONIC, &tn);
		double now = (double)tn.tv_sec + 1e-9 * (double)tn.tv_nsec;
		if (progress) {
			backoff = b0;
			last_ok = now;
		}
		if (cfg->give_up_s > 0 && now - last_ok > cfg->give_up_s) {
			st = FP_FAIL(FP_ERR_TIMEOUT, "site %s: no exchange with the aggregator for %.0f s; giving up",
			             cfg->site_id, now - last_ok);
			break;
		}
		seed = seed * 1103515245u + 12345u;
		double jitter = 0.8 + 0.4 * (double)((seed >> 8) & 0xffff) / 65535.0;
		fp_log(FP_LOG_INFO, "site: connection ended (%s); retrying in %.2f s", fp_error_msg(), backoff * jitter);
		a.st.reconnects++;
		sleep_s(&a, backoff * jitter);
		backoff = backoff * 2 > bmax ? bmax : backoff * 2;
	}
	if (st == FP_OK && a.model_error)
		st = FP_FAIL(FP_ERR_STATE, "site %s: the study is done but the Part 2 model file %s was not written (see above)",
		             cfg->site_id, cfg->p2_model_out);
fail:
	if (stats) *stats = a.st;
	kept_drop(&a);
	fp_audit_close(a.audit);
	fp_tls_ctx_destroy(a.tls);
	fp_p2_trainer_destroy(a.p2);
	free(a.p2_pooled);
	free(a.model);
	return st;
}

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

#define K(sec, name, type, field, def, lo, hi, choices, help) \
	{sec, name, type, offsetof(struct fp_agent_file, field), def, lo, hi, choices, help}

static const struct fp_config_key agent_keys[] = {
	K("site", "id", FP_CFG_STRING, site_id, "", 0, 0, NULL, "this hospital's site id, as on its certificate"),
	K("site", "plan", FP_CFG_STRING, plan, "study.ini", 0, 0, NULL,
	  "this site's copy of the study plan; tasks of any other plan are refused"),
	K("site", "train_config", FP_CFG_STRING, train_config, "train.ini", 0, 0, NULL,
	  "Part 1 training configuration: tile caches, labels, model, optimiser"),
	K("aggregator", "address", FP_CFG_STRING, address, "", 0, 0, NULL,
	  "host:port of the coordinating centre; the site dials out, nothing dials in"),
	K("aggregator", "server_name", FP_CFG_STRING, server_name, "", 0, 0, NULL,
	  "DNS name on the aggregator's certificate (checked on every connection)"),
	K("tls", "ca", FP_CFG_STRING, ca, "tls/ca.crt", 0, 0, NULL, "the study CA certificate"),
	K("tls", "cert", FP_CFG_STRING, cert, "", 0, 0, NULL, "this site's certificate (fedpath pki sign)"),
	K("tls", "key", FP_CFG_STRING, key, "", 0, 0, NULL, "this site's private key (mode 0600, never leaves the site)"),
	K("tls", "crl", FP_CFG_STRING, crl, "", 0, 0, NULL, "the study CA's revocation list (empty: none)"),
	K("agent", "backoff_initial_s", FP_CFG_DOUBLE, backoff_initial_s, "1", 0.01, 3600, NULL,
	  "first wait before reconnecting; doubles after each failure"),
	K("agent", "backoff_max_s", FP_CFG_DOUBLE, backoff_max_s, "60", 0.01, 86400, NULL, "longest wait between attempts"),
	K("agent", "give_up_s", FP_CFG_DOUBLE, give_up_s, "0", 0, 31536000, NULL,
	  "stop after this long without reaching the aggregator (0: never)"),
	K("agent", "io_timeout_s", FP_CFG_DOUBLE, io_timeout_s, "60", 5, 3600, NULL,
	  "longest silence on a connection before it is dropped and redialled"),
	K("log", "level", FP_CFG_ENUM, log_level, "info", 0, 0, log_levels, "lowest level written to the log"),
	K("log", "json", FP_CFG_BOOL, log_json, "false", 0, 0, NULL, "write JSON lines instead of human-readable lines"),
	K("log", "file", FP_CFG_STRING, log_file, "", 0, 0, NULL, "append the log to this file (empty: standard error)"),
	K("log", "audit", FP_CFG_STRING, audit, "site-audit.jsonl", 0, 0, NULL,
	  "hash-chained audit log of what left this site (fedpath audit verify); empty: none"),
	K("part2", "clinical", FP_CFG_STRING, p2_clinical, "clinical.csv", 0, 0, NULL,
	  "Part 2 plans: this site's clinical table (only sums and counts of it leave the site)"),
	K("part2", "features", FP_CFG_STRING, p2_features, "features.csv", 0, 0, NULL,
	  "Part 2 plans: per-slide features from fedpath quantify (empty: clinical columns only)"),
	K("part2", "model_out", FP_CFG_STRING, p2_model_out, "part2-model.ckpt", 0, 0, NULL,
	  "Part 2 plans: the model file for fedpath predict, written when the study is done"),
	K("part2", "caches", FP_CFG_STRING, p2_caches, "", 0, 0, NULL,
	  "Part 2 plans with part2.kind = mil: folder of this site's quantified tile caches (their embeddings stay here)"),
};

const struct fp_config_schema fp_agent_schema = {"agent", agent_keys, sizeof agent_keys / sizeof agent_keys[0]};
