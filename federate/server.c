/*
 * server.c: the aggregator process over mutual TLS (fp_server.h).
 *
 * Threads: the caller's thread accepts sockets and closes rounds (a tick of
 * at most 100 ms); each connection's handshake and session run in a detached
 * worker. One mutex guards the aggregator, the upload slots, the site table
 * and the model snapshot; it is never held across network I/O, only across
 * the aggregator's own disk writes (one chunk at a time), so a slow site
 * never blocks the others for longer than one chunk's write.
 * Memory: one model (the aggregator's) + one snapshot being served + one
 * frame buffer (<= 4 MiB) per connection, whatever the number of sites.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "fp_aggregator.h"
#include "fp_audit.h"
#include "fp_common.h"
#include "fp_json.h"
#include "fp_log.h"
#include "fp_part2_ckpt.h"
#include "fp_part2_fed.h"
#include "fp_pool.h"
#include "fp_server.h"
#include "fp_stream.h"
#include "fp_tls.h"
#include "fp_trainers.h"

#define MAX_WORKERS (2 * FP_AGG_MAX_SITES)

#define STATUS_EVERY_S 0.25 /* status.json rewrites between round events, at most */

struct snapshot { /* the model served for one round; shared by sessions */
	int refs;
	int64_t round;
	uint8_t hash[32];
	float *w; /* (n) */
	struct fp_stream_tx *tx; /* over w: its chunk digests, computed once for every site */
};

struct slot { /* one site's update being received, kept across reconnects */
	int used, busy, dead;
	int writing; /* its session is writing a chunk into u outside the lock */
	char site[FP_AGG_SITE_MAX + 1];
	int64_t round;
	uint64_t stream_id;
	uint8_t digest[32];
	struct fp_update_intake *u;
	struct fp_stream_rx *rx;
	struct server *s;
};

struct site_stat {
	char id[FP_AGG_SITE_MAX + 1];
	time_t last_contact;
	char state[32];
	uint64_t bytes_in, bytes_out;
	double xfer_s;
	int64_t contributed;
	int told_done;
};

/* A session thread. Joinable, and joined (reap_workers) once it has said it
 * is finished: only a join waits until the thread's exit handlers, OpenSSL's
 * per-thread state among them, have run, so nothing of a session outlives
 * the server. */
struct worker {
	struct server *s;
	struct fp_tls_conn *c;
	pthread_t th;
	int used, finished;
};

struct server {
	const struct fp_server_config *cfg;
	const struct fp_study_plan *plan;
	uint8_t plan_hash[32];
	size_t n;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* round closed, update accepted, worker ended */
	enum fp_status close_failed; /* a session's round close failed: the accept loop stops with it */
	char close_msg[512];
	struct fp_aggregator *agg;
	struct snapshot *snap;
	struct slot slots[FP_AGG_MAX_SITES];
	struct site_stat sites[FP_AGG_MAX_SITES];
	int n_sites, known_sites, quorum, workers, done, stopping, dirty;
	struct worker wk[MAX_WORKERS]; /* workers counts those not yet finished */
	double round_opened, round_opened_wall, done_at, status_written;
	struct fp_tls_ctx *tls;
	struct fp_audit *audit;
	char status_path[4200];
	/* Active sites of the allow-list in canonical (byte) order. */
	char allowed[FP_AGG_MAX_SITES][FP_PROTO_MAX_ID_LEN + 1];
	/* Part 2 plans: statistics before round 1 (agg is NULL until they are
	 * pooled), baselines after the last round. */
	int part2, bl_done;
	uint32_t p2_hidden;
	double p2_opened;
	struct fp_p2_stats *p2_site[FP_AGG_MAX_SITES]; /* by index in allowed */
	struct fp_p2_stats *p2_pooled;
	struct fp_p2fed_msg *p2_msg;                   /* the pooled statistics sent with tasks */
	struct fp_p2_trainer *p2_coord;                /* no rows: init weights and design names */
	int bl_have[FP_AGG_MAX_SITES];
	double bl[FP_AGG_MAX_SITES][FP_P2_N_HORIZONS];
	char bl_names[FP_AGG_MAX_SITES][33];               /* the model file's sites and baselines */
	double bl_out[FP_AGG_MAX_SITES][FP_P2_N_HORIZONS];
	Fedpath__Part2Baseline bl_msg[FP_AGG_MAX_SITES];   /* they, for "done" tasks */
	Fedpath__Part2Baseline *bl_ptr[FP_AGG_MAX_SITES];
	int n_bl_msg;
	char p2_ckpt[4200];
	/* Federated evaluation (Part 2, once the model file is written). */
	int ev_on, ev_done;
	int ev_have[FP_AGG_MAX_SITES];     /* 1: summary accepted, 2: the site could not evaluate */
	json_t *ev_json[FP_AGG_MAX_SITES]; /* accepted summaries, by index in allowed */
	double ev_opened, ev_horizon;
	double ev_edges[FP_EVAL_MAX_GRID_EDGES];
	size_t ev_n_edges;
	char results_dir[4200];
};

/* Wall clock in ms since the epoch, for HELLO (sites' clock-skew checks). */
static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)(ts.tv_nsec / 1000000);
}

static double mono_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void abs_deadline(struct timespec *ts, double wait_s)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	long long ns = (long long)(wait_s * 1e9) + ts->tv_nsec;
	ts->tv_sec += (time_t)(ns / 1000000000LL);
	ts->tv_nsec = (long)(ns % 1000000000LL);
}

static int hex_to_raw(const char *hex, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

void fp_server_status_path(const struct fp_study_plan *plan, char *out, size_t n)
{
	snprintf(out, n, "%s/status.json", plan->state_dir);
}

/* ---- under the lock ---- */

static struct site_stat *site_stat(struct server *s, const char *id)
{
	for (int i = 0; i < s->n_sites; i++)
		if (strcmp(s->sites[i].id, id) == 0) return &s->sites[i];
	if (s->n_sites >= FP_AGG_MAX_SITES) return NULL;
	struct site_stat *x = &s->sites[s->n_sites++];
	memset(x, 0, sizeof *x);
	snprintf(x->id, sizeof x->id, "%s", id);
	return x;
}

static void touch(struct server *s, const char *id, const char *state)
{
	struct site_stat *x = site_stat(s, id);
	if (!x) return;
	x->last_contact = time(NULL);
	snprintf(x->state, sizeof x->state, "%s", state);
	s->dirty = 1;
}

static void write_status(struct server *s)
{
	json_t *sites = json_array();
	for (int i = 0; i < s->n_sites && sites; i++) {
		const struct site_stat *x = &s->sites[i];
		char when[64] = "";
		struct tm tm;
		if (x->last_contact && gmtime_r(&x->last_contact, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
		double rate = x->xfer_s > 0 ? (double)(x->bytes_in + x->bytes_out) / x->xfer_s / 1048576.0 : 0.0;
		json_array_append_new(sites, json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:f, s:I}", "id", x->id, "last_contact",
		                                       when, "last_contact_unix", (json_int_t)x->last_contact, "state",
		                                       x->state, "bytes_in", (json_int_t)x->bytes_in, "bytes_out",
		                                       (json_int_t)x->bytes_out, "rate_mib_s", rate, "updates_accepted",
		                                       (json_int_t)x->contributed));
	}
	char now[64];
	fp_time_utc_iso(now, sizeof now);
	/* Before a Part 2 study pools its statistics there is no aggregator yet: round 0. */
	json_t *doc = json_pack("{s:s, s:I, s:I, s:b, s:s, s:i, s:i, s:i, s:s, s:s, s:o}", "study", s->plan->study,
	                        "round", (json_int_t)(s->agg ? fp_aggregator_round(s->agg) : 0), "rounds",
	                        (json_int_t)s->plan->rounds, "done", s->done, "model_hash",
	                        s->agg ? fp_aggregator_model_hash(s->agg) : "", "accepted",
	                        s->agg ? fp_aggregator_n_accepted(s->agg) : 0, "quorum", s->quorum, "known_sites",
	                        s->known_sites, "phase",
	                        !s->agg ? "pooling statistics" : s->done && s->part2 && !s->bl_done ? "baselines"
	                        : s->done ? "done" : "training",
	                        "updated", now, "sites", sites ? sites : json_array());
	/* status.json is a display rewritten from memory (never read back): an
	 * atomic replace without fsync, which cost two fsyncs per update. */
	char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	if (!text || fp_file_replace(s->status_path, text, strlen(text), 0644) != FP_OK)
		fp_log(FP_LOG_WARN, "aggregate: could not write %s: %s", s->status_path, text ? fp_error_msg() : "no memory");
	free(text);
	json_decref(doc);
	s->dirty = 0;
	s->status_written = mono_now();
}

static void snap_unref(struct snapshot *p)
{
	if (p && --p->refs == 0) {
		fp_stream_tx_destroy(p->tx);
		free(p->w);
		free(p);
	}
}

/* The model to serve for the aggregator's current round. The old snapshot's
 * buffer is refilled in place when no session is still sending from it (the
 * usual case at a round's close): no second model's worth of memory at the
 * change of round, and no fresh pages to fault in every round. */
static enum fp_status snap_take(struct server *s)
{
	struct snapshot *p = s->snap;
	if (p && p->refs == 1) {
		s->snap = NULL;
		fp_stream_tx_destroy(p->tx);
		p->tx = NULL;
	} else {
		p = calloc(1, sizeof *p);
		if (!p) return FP_FAIL(FP_ERR_NOMEM, "aggregate: out of memory for the model snapshot");
		p->w = malloc(s->n * sizeof(float));
		if (!p->w) {
			free(p);
			return FP_FAIL(FP_ERR_NOMEM, "aggregate: out of memory for a %zu-parameter model", s->n);
		}
	}
	enum fp_status st = fp_aggregator_model(s->agg, p->w);
	if (st == FP_OK)
		st = fp_stream_tx_create((uint64_t)fp_aggregator_round(s->agg), p->w, (uint64_t)s->n * sizeof(float),
		                         FP_SERVER_CHUNK_BYTES, &p->tx);
	if (st != FP_OK) {
		fp_stream_tx_destroy(p->tx);
		free(p->w);
		free(p);
		return st;
	}
	p->refs = 1;
	p->round = fp_aggregator_round(s->agg);
	hex_to_raw(fp_aggregator_model_hash(s->agg), p->hash);
	snap_unref(s->snap);
	s->snap = p;
	return FP_OK;
}

static void slot_free(struct slot *x)
{
	fp_update_abort(x->u);
	fp_stream_rx_destroy(x->rx);
	memset(x, 0, sizeof *x);
}

static struct slot *slot_find(struct server *s, const char *site)
{
	for (int i = 0; i < FP_AGG_MAX_SITES; i++)
		if (s->slots[i].used && strcmp(s->slots[i].site, site) == 0) return &s->slots[i];
	return NULL;
}

/* Closes the round when the rule allows it. */
static enum fp_status maybe_close(struct server *s)
{
	if (s->done) return FP_OK;
	int got = fp_aggregator_n_accepted(s->agg);
	int all = got >= s->known_sites;
	if (got < s->quorum || (!all && mono_now() < s->round_opened + s->plan->round_deadline_s)) return FP_OK;
	for (int i = 0; i < FP_AGG_MAX_SITES; i++) {
		struct slot *x = &s->slots[i];
		if (!x->used) continue;
		fp_log(FP_LOG_WARN, "aggregate: round %lld closes without %s's unfinished upload",
		       (long long)fp_aggregator_round(s->agg), x->site);
		if (x->busy) { /* its session frees it (after the chunk it is writing, if any) */
			if (!x->writing) {
				fp_update_abort(x->u);
				x->u = NULL;
			}
			x->dead = 1;
		} else {
			slot_free(x);
		}
	}
	struct fp_round_result r;
	FP_TRY(fp_aggregator_close_round(s->agg, &r));
	fp_log(FP_LOG_INFO, "aggregate: round %lld closed: %d site(s), %llu samples, model %.12s", (long long)r.round,
	       r.n_sites, (unsigned long long)r.total_samples, r.model_hash);
	json_t *ev = json_pack("{s:I, s:i, s:I, s:s}", "round", (json_int_t)r.round, "sites", r.n_sites, "samples",
	                       (json_int_t)r.total_samples, "model_hash", r.model_hash);
	if (ev) fp_audit_append(s->audit, "round.closed", ev);
	json_decref(ev);
	s->round_opened = mono_now();
	s->round_opened_wall = (double)time(NULL);
	if (fp_aggregator_round(s->agg) > s->plan->rounds) {
		s->done = 1;
		s->done_at = mono_now();
	}
	/* The model to serve: for the next round, or a Part 2 study's baselines
	 * and evaluation. A finished Part 1 study serves no model (its sites get
	 * "done"; the global model is models/round-N.fpm). */
	if (!s->done || s->part2) {
		FP_TRY(snap_take(s));
	} else {
		snap_unref(s->snap);
		s->snap = NULL;
	}
	write_status(s);
	pthread_cond_broadcast(&s->changed);
	return FP_OK;
}

/* ---- Part 2: pooled statistics before round 1, baselines after the last ---- */

static int allowed_index(const struct server *s, const char *site)
{
	for (int i = 0; i < s->known_sites; i++)
		if (strcmp(s->allowed[i], site) == 0) return i;
	return -1;
}

/* "H01, H03" for the sites of the allow-list that `have` lacks. */
static void missing_list(const struct server *s, const int *have, char *out, size_t n)
{
	size_t len = 0;
	out[0] = '\0';
	for (int i = 0; i < s->known_sites && len + 2 < n; i++)
		if (!have[i]) len += (size_t)snprintf(out + len, n - len, "%s%s", len ? ", " : "", s->allowed[i]);
}

/* With the pooled statistics known (received or reloaded): the coordinator's
 * row-less trainer gives the round-0 model; the aggregator opens. */
static enum fp_status p2_open(struct server *s)
{
	enum fp_status st;
	struct fp_part2_config pc;
	struct fp_local_trainer lt;
	float *init = NULL;
	void *v;
	fp_p2fed_config(s->plan, (int)s->p2_hidden, &pc);
	/* a MIL model's size follows from the plan's embedding width: the
	 * aggregator never sees a tile cache */
	if (pc.kind == FP_P2_MIL)
		FP_CHECK(st, fp_p2_trainer_create_mil(NULL, NULL, (int)s->plan->part2_embed_dim, s->p2_pooled, &pc,
		                                      &s->p2_coord));
	else
		FP_CHECK(st, fp_p2_trainer_create(NULL, s->p2_pooled, &pc, &s->p2_coord));
	fp_p2_trainer_local(s->p2_coord, &lt);
	s->n = lt.n_params;
	FP_CHECK(st, fp_alloc_array(s->n, sizeof(float), &v, "part2 initial model")); init = v;
	FP_CHECK(st, lt.init_weights(lt.ctx, init));
	struct fp_agg_plan ap;
	fp_plan_to_agg(s->plan, &ap);
	FP_CHECK(st, fp_aggregator_open(s->plan->state_dir, &ap, init, s->n, &s->agg));
	FP_CHECK(st, snap_take(s));
	fp_p2fed_msg_init(s->p2_msg, s->p2_pooled, s->p2_hidden);
	s->round_opened = mono_now();
	s->round_opened_wall = (double)time(NULL);
	s->done = fp_aggregator_round(s->agg) > s->plan->rounds;
	s->done_at = mono_now();
	fp_log(FP_LOG_INFO, "aggregate: part2 (%s): %llu patients, %d design columns, %zu parameters (hidden %u); round %lld",
	       pc.kind == FP_P2_MIL ? "mil" : "summary", (unsigned long long)s->p2_pooled->n_patients,
	       fp_p2_design_width(s->p2_pooled), s->n, s->p2_hidden, (long long)fp_aggregator_round(s->agg));
fail:
	free(init);
	return st;
}

/* Pools once every active site of the allow-list has sent its statistics,
 * merging them in canonical site order exactly as fp_p2_pool_mpi does in
 * rank order, so the TLS study and the MPI simulation agree bit for bit. */
static enum fp_status p2_maybe_pool(struct server *s)
{
	int have[FP_AGG_MAX_SITES], got = 0;
	for (int i = 0; i < s->known_sites; i++) got += (have[i] = s->p2_site[i] != NULL);
	if (got < s->known_sites || s->known_sites == 0) {
		if (mono_now() < s->p2_opened + s->plan->round_deadline_s) return FP_OK;
		char miss[2048];
		missing_list(s, have, miss, sizeof miss);
		return FP_FAIL(FP_ERR_TIMEOUT,
		               "aggregate: part2: no standardisation statistics from %s after %.0f s (rounds.deadline_s); "
		               "round 1 needs every active site of the allow-list: start those sites or revoke them, then "
		               "run aggregate again",
		               s->known_sites ? miss : "(no site enrolled)", s->plan->round_deadline_s);
	}
	memset(s->p2_pooled, 0, sizeof *s->p2_pooled);
	for (int i = 0; i < s->known_sites; i++) FP_TRY(fp_p2_stats_merge(s->p2_pooled, s->p2_site[i]));
	if (s->p2_pooled->n_patients == 0) return FP_FAIL(FP_ERR_DATA, "aggregate: part2: no site has patients");
	/* Durable before anything depends on it: a restart never asks again. */
	FP_TRY(fp_p2fed_pooled_save(s->plan->state_dir, s->p2_pooled, s->p2_hidden));
	json_t *ev = json_pack("{s:s, s:I, s:i, s:i}", "sites", s->p2_pooled->sites, "patients",
	                       (json_int_t)s->p2_pooled->n_patients, "columns", s->p2_pooled->p, "hidden",
	                       (int)s->p2_hidden);
	if (ev) fp_audit_append(s->audit, "part2.pooled", ev);
	json_decref(ev);
	FP_TRY(p2_open(s));
	write_status(s);
	pthread_cond_broadcast(&s->changed);
	return FP_OK;
}

static void p2_baseline_msgs(struct server *s, int n, const char (*sites)[33], const double (*h0)[FP_P2_N_HORIZONS])
{
	s->n_bl_msg = 0;
	for (int i = 0; i < n && i < FP_AGG_MAX_SITES; i++) {
		Fedpath__Part2Baseline *b = &s->bl_msg[i];
		fedpath__part2_baseline__init(b);
		b->site = (char *)sites[i];
		b->n_h0 = FP_P2_N_HORIZONS;
		b->h0 = (double *)h0[i];
		s->bl_ptr[i] = b;
		s->n_bl_msg++;
	}
}

/* After the last round: once every site sent its Breslow baseline under the
 * final model (or at the deadline, with those that did), writes the Part 2
 * model file as `fedpath simulate` does. */
static enum fp_status p2_maybe_model(struct server *s)
{
	int got = 0;
	for (int i = 0; i < s->known_sites; i++) got += s->bl_have[i];
	if (got < s->known_sites && mono_now() < s->done_at + s->plan->round_deadline_s) return FP_OK;
	char miss[2048];
	missing_list(s, s->bl_have, miss, sizeof miss);
	if (got == 0)
		return FP_FAIL(FP_ERR_TIMEOUT, "aggregate: part2: no site sent its baseline hazard within %.0f s (%s)",
		               s->plan->round_deadline_s, miss);
	if (got < s->known_sites)
		fp_log(FP_LOG_WARN, "aggregate: part2: the model file lacks the baselines of %s (none within %.0f s)", miss,
		       s->plan->round_deadline_s);
	int k = 0;
	for (int i = 0; i < s->known_sites; i++) {
		if (!s->bl_have[i]) continue;
		snprintf(s->bl_names[k], sizeof s->bl_names[k], "%.32s", s->allowed[i]);
		memcpy(s->bl_out[k], s->bl[i], sizeof s->bl_out[k]);
		k++;
	}
	char hash[FP_SHA256_HEX_SIZE];
	FP_TRY(fp_p2fed_write_model(s->plan, s->p2_hidden, s->p2_pooled, s->p2_coord, s->snap->w, s->n,
	                            (long)(fp_aggregator_round(s->agg) - 1), k, (const char(*)[33])s->bl_names,
	                            (const double(*)[FP_P2_N_HORIZONS])s->bl_out, s->p2_ckpt, hash));
	if (strcmp(hash, fp_aggregator_model_hash(s->agg)) != 0)
		return FP_FAIL(FP_ERR_INTERNAL, "aggregate: part2: model file hash %s differs from the aggregator's %s", hash,
		               fp_aggregator_model_hash(s->agg));
	p2_baseline_msgs(s, k, (const char(*)[33])s->bl_names, (const double(*)[FP_P2_N_HORIZONS])s->bl_out);
	json_t *ev = json_pack("{s:s, s:s, s:i}", "path", s->p2_ckpt, "model_hash", hash, "baselines", k);
	if (ev) fp_audit_append(s->audit, "part2.model", ev);
	json_decref(ev);
	fp_log(FP_LOG_INFO, "aggregate: part2: model file %s (%d site baseline(s))", s->p2_ckpt, k);
	s->bl_done = 1;
	s->done_at = mono_now(); /* the linger for "done" starts now */
	s->ev_opened = mono_now();
	write_status(s);
	pthread_cond_broadcast(&s->changed);
	return FP_OK;
}

/* <results>[/sub]/<prefix><site>.json; site ids are [A-Za-z0-9._-] (checked
 * by the wire layer and the allow-list), safe as file names. */
static void results_path(const struct server *s, const char *sub, const char *prefix, const char *site, char *out,
                         size_t n)
{
	snprintf(out, n, "%s%s%s/%s%s.json", s->results_dir, sub[0] ? "/" : "", sub, prefix, site);
}

/* With every site's answer (or at the deadline): the accepted summaries
 * pooled at the horizon into results/pooled.json, as `fedpath report` reads. */
static enum fp_status p2_maybe_pool_eval(struct server *s)
{
	int got = 0, k = 0;
	json_t *sites[FP_AGG_MAX_SITES], *agg = NULL;
	for (int i = 0; i < s->known_sites; i++) got += s->ev_have[i] != 0;
	if (got < s->known_sites && mono_now() < s->ev_opened + s->plan->round_deadline_s) return FP_OK;
	for (int i = 0; i < s->known_sites; i++)
		if (s->ev_have[i] == 1) sites[k++] = s->ev_json[i];
	if (got < s->known_sites) {
		char miss[2048];
		missing_list(s, s->ev_have, miss, sizeof miss);
		fp_log(FP_LOG_WARN, "aggregate: evaluation: no answer from %s within %.0f s; pooled without them", miss,
		       s->plan->round_deadline_s);
	}
	s->ev_done = 1;
	s->done_at = mono_now();
	pthread_cond_broadcast(&s->changed);
	enum fp_status st = FP_OK;
	char path[4400], now[64];
	if (k == 0) {
		fp_log(FP_LOG_WARN, "aggregate: evaluation: no site could evaluate; no pooled results");
	} else {
		st = fp_pool_aggregate(sites, (size_t)k, &s->ev_horizon, 1, &agg);
		if (st == FP_OK) {
			fp_time_utc_iso(now, sizeof now);
			json_object_set_new(agg, "study", json_string(s->plan->study));
			json_object_set_new(agg, "model_hash", json_string(fp_aggregator_model_hash(s->agg)));
			json_object_set_new(agg, "round", json_integer((json_int_t)(fp_aggregator_round(s->agg) - 1)));
			json_object_set_new(agg, "created", json_string(now));
			snprintf(path, sizeof path, "%s/pooled.json", s->results_dir);
			st = fp_json_save_file(path, agg, 0644);
		}
		if (st == FP_OK) {
			fp_log(FP_LOG_INFO, "aggregate: evaluation: %d site summary(ies) pooled into %s", k, path);
			json_t *ev = json_pack("{s:i, s:i, s:s}", "centres", k, "failed", got - k, "model_hash",
			                       fp_aggregator_model_hash(s->agg));
			if (ev) fp_audit_append(s->audit, "eval.pooled", ev);
			json_decref(ev);
		} else {
			/* Training is done and its model stands; the summaries stay on disk. */
			fp_log_error_last("aggregate: evaluation: pooling the summaries");
			st = FP_OK;
		}
	}
	json_decref(agg);
	write_status(s);
	return st;
}

/* A restarted aggregator: results already on disk are not asked for again. */
static void eval_reload(struct server *s)
{
	char path[4400];
	json_t *p;
	snprintf(path, sizeof path, "%s/pooled.json", s->results_dir);
	if (access(path, R_OK) == 0 && fp_json_load_file(path, &p) == FP_OK) {
		const char *h = json_string_value(json_object_get(p, "model_hash"));
		s->ev_done = h && strcmp(h, fp_aggregator_model_hash(s->agg)) == 0;
		json_decref(p);
	}
	for (int i = 0; i < s->known_sites && !s->ev_done; i++) {
		results_path(s, "", "site_", s->allowed[i], path, sizeof path);
		if (access(path, R_OK) == 0 && fp_json_load_file(path, &p) == FP_OK) {
			s->ev_json[i] = p;
			s->ev_have[i] = 1;
			continue;
		}
		results_path(s, "failed", "", s->allowed[i], path, sizeof path);
		if (access(path, R_OK) == 0) s->ev_have[i] = 2;
	}
}

/* ---- a session (worker thread, lock not held unless said) ---- */

static enum fp_status sink_update(void *ctx, uint64_t offset, const void *data, size_t len, const uint8_t digest[32])
{
	struct slot *x = ctx;
	struct server *s = x->s;
	(void)offset;
	enum fp_status st = FP_OK;
	pthread_mutex_lock(&s->lock);
	if (x->dead || !x->u) {
		pthread_mutex_unlock(&s->lock);
		return FP_FAIL(FP_ERR_STATE, "round %lld closed before %s's update arrived whole", (long long)x->round,
		               x->site);
	}
	/* The chunk is checked, written and hashed outside the lock, so that
	 * sites upload in parallel: the intake is this session's alone (the slot
	 * is busy), and a round closing meanwhile only marks the slot dead. */
	struct fp_update_intake *u = x->u;
	x->writing = 1;
	pthread_mutex_unlock(&s->lock);
	/* The stream checked the chunk's digest: the intake keeps it, not
	 * hashing the bytes a second time. */
	st = fp_update_write_chunk(u, data, len, digest);
	pthread_mutex_lock(&s->lock);
	x->writing = 0;
	if (x->dead) {
		fp_update_abort(x->u);
		x->u = NULL;
		if (st == FP_OK)
			st = FP_FAIL(FP_ERR_STATE, "round %lld closed before %s's update arrived whole", (long long)x->round,
			             x->site);
	} else {
		struct site_stat *ss = site_stat(s, x->site);
		if (ss) ss->bytes_in += len;
	}
	pthread_mutex_unlock(&s->lock);
	return st;
}

static enum fp_status send_task(struct server *s, struct fp_tls_conn *c, const char *site, struct fp_frame *fr)
{
	const struct fp_io *io = fp_tls_conn_io(c);
	Fedpath__Task t = FEDPATH__TASK__INIT;
	struct snapshot *snap = NULL;
	pthread_mutex_lock(&s->lock);
	struct timespec until;
	abs_deadline(&until, FP_SERVER_LONG_POLL_MS / 1000.0);
	int ai = allowed_index(s, site);
	if (s->part2 && !s->agg && !s->stopping && (ai < 0 || s->p2_site[ai])) {
		/* Statistics in: wait (long poll) for the others' and the pooling. */
		while (!s->agg && !s->stopping)
			if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT) break;
	}
	/* After the last round of a Part 2 study, a site whose baseline is in
	 * waits for the model file. */
	while (s->part2 && s->agg && s->done && !s->bl_done && !s->stopping && ai >= 0 && s->bl_have[ai])
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT) break;
	while (s->part2 && s->agg && s->bl_done && s->ev_on && !s->ev_done && !s->stopping && ai >= 0 && s->ev_have[ai])
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT) break;
	int64_t r0 = s->agg ? fp_aggregator_round(s->agg) : 0;
	/* Long poll: a site whose update is in waits here for the next round. */
	while (s->agg && !s->done && !s->stopping && fp_aggregator_round(s->agg) == r0 &&
	       fp_aggregator_has_update(s->agg, site))
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT) break;
	struct site_stat *ss = site_stat(s, site);
	if (s->part2 && !s->agg) {
		if (s->stopping) { /* no study to call done yet: the site retries later */
			pthread_mutex_unlock(&s->lock);
			fp_msg_send_error(fp_tls_conn_io(c), FP_ERR_CANCELLED,
			                  "the aggregator is stopping before round 1; connect again later");
			return FP_FAIL(FP_ERR_CANCELLED, "aggregate: stopping");
		}
		t.kind = ai >= 0 && !s->p2_site[ai] ? "stats" : "wait";
		t.poll_after_ms = 0;
	} else if (s->part2 && s->done && !s->bl_done && !s->stopping) {
		if (ai >= 0 && !s->bl_have[ai]) {
			t.kind = "baseline";
			snap = s->snap;
			snap->refs++;
			t.round = (uint64_t)snap->round - 1;
			t.deadline_unix_ms = (uint64_t)(((double)time(NULL) + s->plan->round_deadline_s) * 1000.0);
		} else {
			t.kind = "wait";
			t.round = (uint64_t)fp_aggregator_round(s->agg) - 1;
			t.poll_after_ms = 0;
		}
	} else if (s->part2 && s->done && s->ev_on && !s->ev_done && !s->stopping) {
		t.round = (uint64_t)fp_aggregator_round(s->agg) - 1;
		if (ai >= 0 && !s->ev_have[ai]) {
			t.kind = "evaluate";
			snap = s->snap;
			snap->refs++;
			t.n_part2_baselines = (size_t)s->n_bl_msg;
			t.part2_baselines = s->bl_ptr;
			t.deadline_unix_ms = (uint64_t)(((double)time(NULL) + s->plan->round_deadline_s) * 1000.0);
		} else {
			t.kind = "wait";
			t.poll_after_ms = 0;
		}
	} else if (s->done || s->stopping) {
		t.kind = "done";
		t.round = (uint64_t)fp_aggregator_round(s->agg) - 1;
		if (s->part2 && s->bl_done) {
			t.n_part2_baselines = (size_t)s->n_bl_msg;
			t.part2_baselines = s->bl_ptr;
		}
		if (ss) ss->told_done = 1;
	} else if (fp_aggregator_has_update(s->agg, site)) {
		t.kind = "wait";
		t.round = (uint64_t)fp_aggregator_round(s->agg);
		t.poll_after_ms = 0;
	} else {
		t.kind = "train";
		snap = s->snap;
		snap->refs++;
		t.round = (uint64_t)snap->round;
		t.deadline_unix_ms = (uint64_t)((s->round_opened_wall + s->plan->round_deadline_s) * 1000.0);
	}
	touch(s, site, t.kind);
	pthread_mutex_unlock(&s->lock);

	enum fp_status st;
	struct fp_stream_tx *tx = NULL;
	Fedpath__TensorHeader th = FEDPATH__TENSOR_HEADER__INIT;
	uint64_t dims[1] = {s->n};
	if (snap) {
		t.base_model_hash.data = snap->hash;
		t.base_model_hash.len = 32;
		t.config_hash.data = s->plan_hash;
		t.config_hash.len = 32;
		if (s->part2) t.part2_pooled = &s->p2_msg->m; /* fixed once pooled: safe unlocked */
		FP_CHECK(st, fp_stream_tx_copy(snap->tx, &tx));
		fp_stream_tx_header(tx, &th);
		th.name = "global";
		th.n_dims = 1;
		th.dims = dims;
		t.model = &th;
	}
	double t0 = mono_now();
	FP_CHECK(st, fp_msg_send(io, FP_FRAME_TASK, &t.base));
	if (tx) FP_CHECK(st, fp_stream_tx_send(tx, io, fr, FP_STREAM_DEFAULT_WINDOW));
	if (strcmp(t.kind, "evaluate") == 0) {
		Fedpath__EvalRequest er = FEDPATH__EVAL_REQUEST__INIT;
		er.round = t.round;
		er.model_hash.data = snap->hash;
		er.model_hash.len = 32;
		er.horizon = s->ev_horizon;
		er.n_grid_edges = s->ev_n_edges;
		er.grid_edges = s->ev_edges;
		er.min_cell = (double)s->plan->min_cell;
		FP_CHECK(st, fp_msg_send(io, FP_FRAME_EVAL_REQUEST, &er.base));
	}
	if (snap) {
		pthread_mutex_lock(&s->lock);
		if ((ss = site_stat(s, site))) {
			ss->bytes_out += (uint64_t)s->n * sizeof(float);
			ss->xfer_s += mono_now() - t0;
		}
		pthread_mutex_unlock(&s->lock);
	}
	st = strcmp(t.kind, "done") == 0 ? FP_ERR_CANCELLED : FP_OK; /* the session ends after "done" */
fail:
	fp_stream_tx_destroy(tx);
	if (snap) {
		pthread_mutex_lock(&s->lock);
		snap_unref(snap);
		pthread_mutex_unlock(&s->lock);
	}
	return st;
}

static void audit_reject(struct server *s, const char *site, const char *why)
{
	json_t *ev = json_pack("{s:s, s:s}", "site", site, "reason", why);
	if (ev) fp_audit_append(s->audit, "update.rejected", ev);
	json_decref(ev);
}

/* Receives one update. Returns FP_OK to keep the session, an error to end it
 * (the site was told why, when it is the site's fault). */
static enum fp_status take_update(struct server *s, struct fp_tls_conn *c, const char *site, const Fedpath__Update *m,
                                  struct fp_frame *fr)
{
	const struct fp_io *io = fp_tls_conn_io(c);
	enum fp_status st = FP_OK;
	const Fedpath__TensorHeader *h = m->delta;
	char base[FP_SHA256_HEX_SIZE] = "";
	if (!h || h->dtype != 1 || h->total_bytes != (uint64_t)s->n * sizeof(float) || h->chunk_bytes % 4 != 0 ||
	    h->digest.len != 32)
		st = FP_FAIL(FP_ERR_FORMAT, "update from %s: the delta must be %zu float32 values in whole-float chunks", site,
		             s->n);
	else if (m->base_model_hash.len != 32)
		st = FP_FAIL(FP_ERR_FORMAT, "update from %s: base_model_hash is %zu bytes, not 32", site,
		             m->base_model_hash.len);
	if (st != FP_OK) {
		char why[1024];
		snprintf(why, sizeof why, "%s", fp_error_msg());
		fp_log(FP_LOG_WARN, "aggregate: %s", why);
		fp_msg_send_error(io, st, why);
		audit_reject(s, site, why);
		return FP_FAIL(st, "%s", why);
	}
	fp_hex_encode(m->base_model_hash.data, 32, base);

	pthread_mutex_lock(&s->lock);
	struct slot *x = slot_find(s, site);
	if (!s->agg) {
		x = NULL;
		st = FP_FAIL(FP_ERR_STATE, "update from %s: no round is open (the Part 2 statistics are not pooled yet)", site);
	} else if (x && x->busy) {
		st = FP_FAIL(FP_ERR_STATE, "update from %s: another connection of this site is uploading", site);
	} else if (x && !x->dead && x->round == (int64_t)m->round && x->stream_id == h->stream_id &&
	           memcmp(x->digest, h->digest.data, 32) == 0 && x->round == fp_aggregator_round(s->agg)) {
		fp_log(FP_LOG_INFO, "aggregate: %s resumes its round %lld upload at chunk %llu", site, (long long)x->round,
		       (unsigned long long)fp_stream_rx_next_chunk(x->rx));
		x->busy = 1;
	} else {
		if (x) slot_free(x);
		x = NULL;
		for (int i = 0; i < FP_AGG_MAX_SITES && !x; i++)
			if (!s->slots[i].used) x = &s->slots[i];
		struct fp_update_intake *u = NULL;
		if (!x)
			st = FP_FAIL(FP_ERR_LIMIT, "update from %s: %d uploads already in progress", site, FP_AGG_MAX_SITES);
		else
			st = fp_update_begin(s->agg, site, (int64_t)m->round, base, m->sample_count, s->n,
			                    (uint32_t)h->chunk_bytes, &u);
		if (st == FP_OK && m->sample_count < (uint64_t)s->plan->min_samples) {
			st = FP_FAIL(FP_ERR_DATA, "update from %s: %llu samples, the plan's min_samples is %ld", site,
			             (unsigned long long)m->sample_count, s->plan->min_samples);
			fp_update_abort(u);
		}
		if (st == FP_OK) {
			memset(x, 0, sizeof *x);
			x->s = s;
			st = fp_stream_rx_create(h, sink_update, x, &x->rx);
			if (st != FP_OK) {
				fp_update_abort(u);
			} else {
				x->used = x->busy = 1;
				x->u = u;
				snprintf(x->site, sizeof x->site, "%s", site);
				x->round = (int64_t)m->round;
				x->stream_id = h->stream_id;
				memcpy(x->digest, h->digest.data, 32);
			}
		}
	}
	touch(s, site, "uploading");
	pthread_mutex_unlock(&s->lock);
	if (st != FP_OK) {
		char why[1024];
		snprintf(why, sizeof why, "%s", fp_error_msg());
		fp_msg_send_error(io, st, why);
		audit_reject(s, site, why);
		return FP_FAIL(st, "%s", why);
	}

	double t0 = mono_now();
	enum fp_status rst = fp_stream_rx_recv(x->rx, io, fr), sealed = FP_OK;
	/* Make the whole update durable (fsync of up to a model's worth) before
	 * taking the lock, as chunks are written: other uploads go on meanwhile.
	 * The slot is busy and marked writing, so a round closing now leaves the
	 * intake to this session. */
	if (rst == FP_OK) {
		pthread_mutex_lock(&s->lock);
		int go = !x->dead && x->u;
		if (go) x->writing = 1;
		pthread_mutex_unlock(&s->lock);
		if (go) {
			sealed = fp_update_seal(x->u);
			pthread_mutex_lock(&s->lock);
			x->writing = 0;
			pthread_mutex_unlock(&s->lock);
		}
	}
	char why[1024] = "";
	if (rst != FP_OK || sealed != FP_OK) snprintf(why, sizeof why, "%s", fp_error_msg());
	pthread_mutex_lock(&s->lock);
	struct site_stat *ss = site_stat(s, site);
	if (ss) ss->xfer_s += mono_now() - t0;
	x->busy = 0;
	int64_t round = x->round;
	if (x->dead) {
		slot_free(x);
		st = FP_FAIL(FP_ERR_STATE, "round %lld closed before %s's update arrived whole", (long long)round, site);
	} else if (rst != FP_OK) {
		/* Keep the intake and stream state: the site resumes on a new connection. */
		st = FP_FAIL(rst, "%s", why);
		if (rst != FP_ERR_IO && rst != FP_ERR_TIMEOUT) slot_free(x);
	} else if (sealed != FP_OK) { /* received whole but not stored (disk full, ...): refused, never resumable */
		slot_free(x);
		st = FP_FAIL(sealed, "%s", why);
	} else {
		struct fp_update_intake *u = x->u;
		x->u = NULL;
		slot_free(x);
		char digest[FP_SHA256_HEX_SIZE] = "";
		if (fp_update_digest(u)) snprintf(digest, sizeof digest, "%s", fp_update_digest(u));
		st = fp_update_finish(u);
		if (st == FP_OK) {
			if (ss) ss->contributed++;
			json_t *ev = json_pack("{s:s, s:I, s:I, s:s}", "site", site, "round", (json_int_t)round, "samples",
			                       (json_int_t)m->sample_count, "update_digest", digest);
			if (ev) fp_audit_append(s->audit, "update.accepted", ev);
			json_decref(ev);
		}
		/* status.json: at most every STATUS_EVERY_S between round events
		 * (the accept loop writes a pending one); a round closing writes it. */
		if (mono_now() > s->status_written + STATUS_EVERY_S) write_status(s);
		else s->dirty = 1;
		pthread_cond_broadcast(&s->changed);
	}
	touch(s, site, st == FP_OK ? "accepted" : "upload failed");
	pthread_mutex_unlock(&s->lock);

	if (st == FP_OK) {
		Fedpath__Status ok = FEDPATH__STATUS__INIT;
		ok.round = (uint64_t)round;
		ok.state = "accepted";
		enum fp_status sst = fp_msg_send(io, FP_FRAME_STATUS, &ok.base);
		/* The round's last update closes it at once (the accept loop looks
		 * only every 100 ms); a failure stops the accept loop as its own would. */
		pthread_mutex_lock(&s->lock);
		if (s->agg && !s->done && !s->close_failed && fp_aggregator_n_accepted(s->agg) >= s->known_sites) {
			enum fp_status cst = maybe_close(s);
			if (cst != FP_OK) {
				s->close_failed = cst;
				snprintf(s->close_msg, sizeof s->close_msg, "%s", fp_error_msg());
			}
		}
		pthread_mutex_unlock(&s->lock);
		return sst;
	}
	snprintf(why, sizeof why, "%s", fp_error_msg());
	fp_log(FP_LOG_WARN, "aggregate: %s", why);
	/* A lost connection is not the site's fault: it resumes. Anything else is
	 * a refusal the site must hear, and the audit log records. */
	if (rst != FP_ERR_IO && rst != FP_ERR_TIMEOUT) {
		fp_msg_send_error(io, st, why);
		audit_reject(s, site, why);
	}
	return FP_FAIL(st, "%s", why);
}

static enum fp_status refuse(struct server *s, const struct fp_io *io, const char *site, enum fp_status code)
{
	char why[1024];
	snprintf(why, sizeof why, "%s", fp_error_msg());
	fp_log(FP_LOG_WARN, "aggregate: %s", why);
	fp_msg_send_error(io, code, why);
	audit_reject(s, site, why);
	return FP_FAIL(code, "%s", why);
}

static enum fp_status send_accepted(const struct fp_io *io, uint64_t round)
{
	Fedpath__Status ok = FEDPATH__STATUS__INIT;
	ok.round = round;
	ok.state = "accepted";
	return fp_msg_send(io, FP_FRAME_STATUS, &ok.base);
}

/* STATUS{state "stats"}: a site's Part 2 sums and counts (never rows). */
static enum fp_status take_stats(struct server *s, const struct fp_io *io, const char *site, const Fedpath__Status *m)
{
	enum fp_status st;
	struct fp_p2_stats *x = malloc(sizeof *x);
	if (!x) return FP_FAIL(FP_ERR_NOMEM, "aggregate: statistics of %s", site);
	st = fp_p2fed_stats_from_msg(m->part2_stats, site, x, NULL);
	if (st == FP_OK) snprintf(x->sites, sizeof x->sites, "%s", site); /* the certificate's identity */
	pthread_mutex_lock(&s->lock);
	int i = allowed_index(s, site);
	if (st == FP_OK && !s->part2)
		st = FP_FAIL(FP_ERR_STATE, "statistics from %s: this study's plan is not a Part 2 plan", site);
	else if (st == FP_OK && (s->agg || i < 0))
		st = FP_FAIL(FP_ERR_STATE, "statistics from %s: %s", site,
		             i < 0 ? "not an active site of the allow-list" : "the statistics are already pooled");
	if (st == FP_OK) {
		free(s->p2_site[i]);
		s->p2_site[i] = x;
		x = NULL;
		touch(s, site, "statistics in");
		json_t *ev = json_pack("{s:s, s:I, s:i}", "site", site, "patients", (json_int_t)s->p2_site[i]->n_patients,
		                       "columns", s->p2_site[i]->p);
		if (ev) fp_audit_append(s->audit, "part2.stats", ev);
		json_decref(ev);
		fp_log(FP_LOG_INFO, "aggregate: part2: statistics of %s in (%llu patients, %d columns)", site,
		       (unsigned long long)s->p2_site[i]->n_patients, s->p2_site[i]->p);
		pthread_cond_broadcast(&s->changed);
	}
	pthread_mutex_unlock(&s->lock);
	free(x);
	if (st != FP_OK) return refuse(s, io, site, st);
	return send_accepted(io, 0);
}

/* STATUS{state "baseline"}: a site's Breslow H0 at 12/24/36 months under the
 * final model (three numbers). */
static enum fp_status take_baseline(struct server *s, const struct fp_io *io, const char *site,
                                    const Fedpath__Status *m)
{
	enum fp_status st = FP_OK;
	const Fedpath__Part2Baseline *b = m->part2_baseline;
	if (!b || b->n_h0 != FP_P2_N_HORIZONS)
		st = FP_FAIL(FP_ERR_PROTOCOL, "baseline from %s: %zu values, expected %d", site, b ? b->n_h0 : 0,
		             FP_P2_N_HORIZONS);
	for (int q = 0; st == FP_OK && q < FP_P2_N_HORIZONS; q++)
		if (!isfinite(b->h0[q]) || b->h0[q] < 0 || (q > 0 && b->h0[q] < b->h0[q - 1]))
			st = FP_FAIL(FP_ERR_NUMERIC, "baseline from %s: H0 at horizon %d is %g (finite, >= 0, non-decreasing)",
			             site, q + 1, b->h0[q]);
	pthread_mutex_lock(&s->lock);
	int i = allowed_index(s, site);
	if (st == FP_OK && (!s->part2 || !s->agg || !s->done || s->bl_done || i < 0 ||
	                    m->round != (uint64_t)(fp_aggregator_round(s->agg) - 1)))
		st = FP_FAIL(FP_ERR_STATE, "baseline from %s for round %llu: not asked for now", site,
		             (unsigned long long)m->round);
	if (st == FP_OK) {
		memcpy(s->bl[i], b->h0, sizeof s->bl[i]);
		s->bl_have[i] = 1;
		touch(s, site, "baseline in");
		json_t *ev = json_pack("{s:s, s:[f,f,f]}", "site", site, "h0", b->h0[0], b->h0[1], b->h0[2]);
		if (ev) fp_audit_append(s->audit, "part2.baseline", ev);
		json_decref(ev);
		pthread_cond_broadcast(&s->changed);
	}
	pthread_mutex_unlock(&s->lock);
	if (st != FP_OK) return refuse(s, io, site, st);
	return send_accepted(io, m->round);
}

/* EVAL_SUMMARY: a site's evaluation summary (counts and sums only) or the
 * reason it could not evaluate. */
static enum fp_status take_eval(struct server *s, const struct fp_io *io, const char *site,
                                const Fedpath__EvalSummary *m)
{
	enum fp_status st = FP_OK;
	json_t *doc = NULL;
	char path[4400], hx[FP_SHA256_HEX_SIZE];
	size_t len = m->summary_json ? strlen(m->summary_json) : 0;
	fp_hex_encode(m->model_hash.data, 32, hx);
	if (m->error_code == 0) {
		json_error_t je;
		if (len == 0 || len > FP_EVAL_MAX_SUMMARY_BYTES)
			st = FP_FAIL(FP_ERR_LIMIT, "evaluation summary from %s: %zu bytes (allowed 1..%u)", site, len,
			             FP_EVAL_MAX_SUMMARY_BYTES);
		else if (!(doc = json_loadb(m->summary_json, len, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(doc))
			st = FP_FAIL(FP_ERR_FORMAT, "evaluation summary from %s is not a JSON object: %s", site,
			             doc ? "another JSON value" : je.text);
		else if (json_is_string(json_object_get(doc, "site")) &&
		         strcmp(json_string_value(json_object_get(doc, "site")), site) != 0)
			st = FP_FAIL(FP_ERR_AUTH, "evaluation summary from %s names site '%s'", site,
			             json_string_value(json_object_get(doc, "site")));
	}
	pthread_mutex_lock(&s->lock);
	int i = allowed_index(s, site);
	if (st == FP_OK && (!s->ev_on || !s->bl_done || s->ev_done || i < 0 || s->ev_have[i] ||
	                    memcmp(m->model_hash.data, s->snap->hash, 32) != 0))
		st = FP_FAIL(FP_ERR_STATE, "evaluation summary from %s for model %.12s: not asked for now", site, hx);
	if (st == FP_OK && m->error_code != 0) {
		/* The site's refusal is a result too: recorded, never pooled. */
		json_t *f = json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "site", site, "model_hash", hx, "round",
		                      (json_int_t)m->round, "error", "code",
		                      fp_status_name((enum fp_status)m->error_code), "reason",
		                      m->error_reason ? m->error_reason : "");
		results_path(s, "failed", "", site, path, sizeof path);
		st = f ? fp_json_save_file(path, f, 0644) : FP_FAIL(FP_ERR_NOMEM, "evaluation record");
		if (st == FP_OK) {
			s->ev_have[i] = 2;
			fp_log(FP_LOG_WARN, "aggregate: evaluation: %s could not evaluate: %s", site,
			       m->error_reason ? m->error_reason : "");
			json_t *ev = json_pack("{s:s, s:s, s:s}", "site", site, "code",
			                       fp_status_name((enum fp_status)m->error_code), "reason",
			                       m->error_reason ? m->error_reason : "");
			if (ev) fp_audit_append(s->audit, "eval.failed", ev);
			json_decref(ev);
		}
		json_decref(f);
	} else if (st == FP_OK) {
		results_path(s, "", "site_", site, path, sizeof path);
		st = fp_json_save_file(path, doc, 0644);
		if (st == FP_OK) {
			uint8_t h[32];
			char dh[FP_SHA256_HEX_SIZE] = "";
			if (fp_sha256(m->summary_json, len, h) == FP_OK) fp_hex_encode(h, 32, dh);
			s->ev_have[i] = 1;
			s->ev_json[i] = doc;
			doc = NULL;
			fp_log(FP_LOG_INFO, "aggregate: evaluation: summary of %s in (%zu bytes)", site, len);
			json_t *ev = json_pack("{s:s, s:I, s:s, s:s}", "site", site, "bytes", (json_int_t)len, "sha256", dh,
			                       "model_hash", hx);
			if (ev) fp_audit_append(s->audit, "eval.summary", ev);
			json_decref(ev);
		}
	}
	if (st == FP_OK) {
		touch(s, site, "evaluated");
		pthread_cond_broadcast(&s->changed);
	}
	pthread_mutex_unlock(&s->lock);
	json_decref(doc);
	if (st != FP_OK) return refuse(s, io, site, st);
	return send_accepted(io, m->round);
}

/* ---- results for statisticians (fp_pull.h) ---- */

static void audit_access(struct server *s, const char *peer, const char *role, const char *request, const char *why)
{
	json_t *ev = json_pack("{s:s, s:s, s:s, s:s}", "peer", peer, "role", role, "request", request, "reason", why);
	if (ev) fp_audit_append(s->audit, "access.refused", ev);
	json_decref(ev);
	fp_log(FP_LOG_WARN, "aggregate: refused %s (%s) %s: %s", peer, role, request, why);
}

static enum fp_status send_result_file(const struct fp_io *io, const char *dir, const char *file, const char *name,
                                       uint64_t round, const uint8_t hash[32], int *count)
{
	char path[4600], *data = NULL;
	size_t len = 0;
	snprintf(path, sizeof path, "%.4200s/%.100s", dir, file);
	FP_TRY(fp_file_read_all(path, FP_PULL_MAX_FILE_BYTES, &data, &len));
	Fedpath__EvalSummary m = FEDPATH__EVAL_SUMMARY__INIT;
	m.round = round;
	m.model_hash.data = (uint8_t *)hash;
	m.model_hash.len = 32;
	m.summary_json = data;
	m.name = (char *)name;
	enum fp_status st = fp_msg_send(io, FP_FRAME_EVAL_SUMMARY, &m.base);
	free(data);
	if (st == FP_OK) (*count)++;
	return st;
}

/* STATUS{state "results"} (model hash, round, number of files), one
 * EVAL_SUMMARY per file (name: "pooled", "site_<id>", "failed/<id>"), then
 * STATUS{state "end"}. Only the results folder is read: no model, no update. */
static enum fp_status send_results(struct server *s, const struct fp_io *io)
{
	enum fp_status st;
	char pooled[4400], names[FP_AGG_MAX_SITES * 2 + 1][80], files[FP_AGG_MAX_SITES * 2 + 1][80];
	uint8_t hash[32];
	int n = 0, sent = 0;
	uint64_t round = 0;
	snprintf(pooled, sizeof pooled, "%s/pooled.json", s->results_dir);
	pthread_mutex_lock(&s->lock);
	int ready = s->agg && access(pooled, R_OK) == 0;
	if (ready) {
		hex_to_raw(fp_aggregator_model_hash(s->agg), hash);
		round = (uint64_t)(fp_aggregator_round(s->agg) - 1);
		snprintf(names[n], sizeof names[0], "pooled");
		snprintf(files[n++], sizeof files[0], "pooled.json");
		for (int i = 0; i < s->known_sites; i++) {
			char p[4400];
			results_path(s, "", "site_", s->allowed[i], p, sizeof p);
			if (access(p, R_OK) == 0) {
				snprintf(names[n], sizeof names[0], "site_%s", s->allowed[i]);
				snprintf(files[n++], sizeof files[0], "site_%s.json", s->allowed[i]);
			}
			results_path(s, "failed", "", s->allowed[i], p, sizeof p);
			if (access(p, R_OK) == 0) {
				snprintf(names[n], sizeof names[0], "failed/%s", s->allowed[i]);
				snprintf(files[n++], sizeof files[0], "failed/%s.json", s->allowed[i]);
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (!ready) {
		st = FP_FAIL(FP_ERR_NOT_FOUND, "no pooled evaluation results yet (study %s)", s->plan->study);
		fp_msg_send_error(io, st, fp_error_msg());
		return st;
	}
	char hx[FP_SHA256_HEX_SIZE], detail[256];
	fp_hex_encode(hash, 32, hx);
	snprintf(detail, sizeof detail, "{\"model_hash\":\"%s\",\"round\":%llu,\"files\":%d}", hx,
	         (unsigned long long)round, n);
	Fedpath__Status h = FEDPATH__STATUS__INIT;
	h.round = round;
	h.state = "results";
	h.detail = detail;
	FP_TRY(fp_msg_send(io, FP_FRAME_STATUS, &h.base));
	for (int i = 0; i < n; i++) FP_TRY(send_result_file(io, s->results_dir, files[i], names[i], round, hash, &sent));
	Fedpath__Status e = FEDPATH__STATUS__INIT;
	e.round = round;
	e.state = "end";
	FP_TRY(fp_msg_send(io, FP_FRAME_STATUS, &e.base));
	return FP_OK;
}

/* The aggregator's HELLO: its plan hash and its clock (sites' skew checks). */
static enum fp_status send_hello(const struct server *s, const struct fp_io *io)
{
	Fedpath__Hello hello = FEDPATH__HELLO__INIT;
	hello.protocol_version = FP_PROTO_VERSION;
	hello.site_id = "aggregator";
	hello.role = "server";
	hello.software_version = (char *)fp_version();
	hello.config_hash.data = (uint8_t *)s->plan_hash;
	hello.config_hash.len = 32;
	hello.time_unix_ms = wall_ms();
	return fp_msg_send(io, FP_FRAME_HELLO, &hello.base);
}

/* A statistician's connection: results only. Anything else is refused,
 * audited, and ends the connection. */
static void results_session(struct server *s, struct fp_tls_conn *c, const char *peer)
{
	const struct fp_io *io = fp_tls_conn_io(c);
	struct fp_frame fr;
	ProtobufCMessage *m = NULL;
	enum fp_status st;
	fp_frame_init(&fr);
	FP_CHECK(st, send_hello(s, io));
	FP_CHECK(st, fp_msg_recv(io, &fr, FP_FRAME_HELLO, &m));
	FP_CHECK(st, fp_tls_conn_check_hello(c, (Fedpath__Hello *)m));
	fp_msg_free(m);
	m = NULL;
	for (;;) {
		FP_CHECK(st, fp_frame_recv(io, &fr));
		const char *state = NULL;
		if (fr.type == FP_FRAME_STATUS && fp_msg_unpack(FP_FRAME_STATUS, fr.data, fr.len, &m) == FP_OK)
			state = ((const Fedpath__Status *)m)->state;
		if (state && strcmp(state, "pull") == 0) {
			fp_log(FP_LOG_INFO, "aggregate: statistician %s pulls the results", peer);
			st = send_results(s, io);
			json_t *ev = json_pack("{s:s, s:s}", "peer", peer, "status", fp_status_name(st));
			if (ev) fp_audit_append(s->audit, "results.pulled", ev);
			json_decref(ev);
			if (st != FP_OK) goto fail;
		} else {
			char req[96];
			snprintf(req, sizeof req, "%s%s%s", fp_frame_type_str(fr.type), state ? " " : "", state ? state : "");
			st = FP_FAIL(FP_ERR_AUTH, "a statistician certificate may only fetch results; %s refused", req);
			fp_msg_send_error(io, st, fp_error_msg());
			audit_access(s, peer, "statistician", req, fp_error_msg());
			goto fail;
		}
		fp_msg_free(m);
		m = NULL;
	}
fail:
	fp_msg_free(m);
	fp_frame_close(&fr);
}

static void session(struct server *s, struct fp_tls_conn *c)
{
	const struct fp_io *io = fp_tls_conn_io(c);
	struct fp_frame fr;
	fp_frame_init(&fr);
	ProtobufCMessage *m = NULL;
	char site[FP_PROTO_MAX_ID_LEN + 1];
	enum fp_status st = fp_tls_server_handshake(c);
	if (st != FP_OK) goto done; /* logged and audited by fp_tls */
	snprintf(site, sizeof site, "%s", fp_tls_conn_peer(c)->id);
	if (fp_tls_conn_peer(c)->role == FP_TLS_ROLE_STATISTICIAN) {
		results_session(s, c, site);
		goto done;
	}
	if (fp_tls_conn_peer(c)->role != FP_TLS_ROLE_SITE) {
		audit_access(s, site, "other", "connection", "only sites take part in rounds");
		fp_msg_send_error(io, FP_ERR_AUTH, "only sites take part in rounds");
		goto done;
	}
	FP_CHECK(st, send_hello(s, io));
	FP_CHECK(st, fp_msg_recv(io, &fr, FP_FRAME_HELLO, &m));
	st = fp_tls_conn_check_hello(c, (Fedpath__Hello *)m);
	if (st != FP_OK) { /* logged and audited by fp_tls; the peer hears why */
		fp_msg_send_error(io, st, fp_error_msg());
		goto fail;
	}
	const Fedpath__Hello *ph = (const Fedpath__Hello *)m;
	if (ph->config_hash.len != 32 || memcmp(ph->config_hash.data, s->plan_hash, 32) != 0) {
		st = FP_FAIL(FP_ERR_STATE, "site %s runs another plan (config hash differs from this study's)", site);
		fp_log(FP_LOG_WARN, "aggregate: %s", fp_error_msg());
		fp_msg_send_error(io, st, fp_error_msg());
		goto done;
	}
	fp_msg_free(m);
	m = NULL;
	pthread_mutex_lock(&s->lock);
	touch(s, site, "connected");
	pthread_mutex_unlock(&s->lock);
	for (;;) {
		FP_CHECK(st, fp_frame_recv(io, &fr));
		if (fr.type == FP_FRAME_STATUS) {
			FP_CHECK(st, fp_msg_unpack(FP_FRAME_STATUS, fr.data, fr.len, &m));
			const Fedpath__Status *sm = (const Fedpath__Status *)m;
			if (sm->state && strcmp(sm->state, "pull") == 0) {
				st = FP_FAIL(FP_ERR_AUTH, "site %s: only a statistician certificate may fetch results", site);
				fp_msg_send_error(io, st, fp_error_msg());
				audit_access(s, site, "site", "STATUS pull", fp_error_msg());
			} else if (sm->state && strcmp(sm->state, "stats") == 0)
				st = take_stats(s, io, site, sm);
			else if (sm->state && strcmp(sm->state, "baseline") == 0)
				st = take_baseline(s, io, site, sm);
			else
				st = send_task(s, c, site, &fr);
			fp_msg_free(m);
			m = NULL;
			if (st != FP_OK) goto fail;
		} else if (fr.type == FP_FRAME_UPDATE) {
			FP_CHECK(st, fp_msg_unpack(FP_FRAME_UPDATE, fr.data, fr.len, &m));
			FP_CHECK(st, take_update(s, c, site, (const Fedpath__Update *)m, &fr));
			fp_msg_free(m);
			m = NULL;
		} else if (fr.type == FP_FRAME_EVAL_SUMMARY) {
			FP_CHECK(st, fp_msg_unpack(FP_FRAME_EVAL_SUMMARY, fr.data, fr.len, &m));
			st = take_eval(s, io, site, (const Fedpath__EvalSummary *)m);
			fp_msg_free(m);
			m = NULL;
			if (st != FP_OK) goto fail;
		} else if (fr.type == FP_FRAME_ERROR) {
			if (fp_msg_unpack(FP_FRAME_ERROR, fr.data, fr.len, &m) == FP_OK)
				fp_log(FP_LOG_WARN, "aggregate: site %s stopped: %s", site, ((Fedpath__Error *)m)->reason);
			goto done;
		} else {
			st = FP_FAIL(FP_ERR_PROTOCOL, "site %s sent a %s frame where STATUS or UPDATE was expected", site,
			             fp_frame_type_str(fr.type));
			fp_msg_send_error(io, st, fp_error_msg());
			goto done;
		}
	}
fail:
	if (st != FP_ERR_CANCELLED) fp_log(FP_LOG_DEBUG, "aggregate: session of %s ended: %s", site, fp_error_msg());
done:
	fp_msg_free(m);
	fp_frame_close(&fr);
	fp_tls_conn_close(c);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *s = w->s;
	session(s, w->c);
	/* Free this thread's OpenSSL state (its random generators) now, not in
	 * a thread-exit handler that could still be running when the process
	 * exits and OpenSSL cleans up. */
	OPENSSL_thread_stop();
	pthread_mutex_lock(&s->lock);
	w->finished = 1;
	s->workers--;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Frees the slots of finished sessions and joins their threads (a finished
 * thread no longer touches its slot). */
static void reap_workers(struct server *s)
{
	pthread_t done[MAX_WORKERS];
	int n = 0;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < MAX_WORKERS; i++)
		if (s->wk[i].used && s->wk[i].finished) {
			done[n++] = s->wk[i].th;
			s->wk[i].used = 0;
		}
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < n; i++) pthread_join(done[i], NULL);
}

/* ---- set-up and the accept loop ---- */

static int by_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The active sites of the allow-list, in canonical (byte) order. */
static enum fp_status count_sites(const char *allow, struct server *s)
{
	struct fp_tls_allowlist *al = NULL;
	FP_TRY(fp_tls_allowlist_load(allow, 0, &al));
	int k = 0;
	enum fp_status st = FP_OK;
	for (size_t i = 0; i < fp_tls_allowlist_count(al); i++) {
		const struct fp_tls_allow_entry *e = fp_tls_allowlist_get(al, i);
		if (e->role != FP_TLS_ROLE_SITE || e->revoked) continue;
		if (k == FP_AGG_MAX_SITES) {
			st = FP_FAIL(FP_ERR_LIMIT, "%s: more than %d active sites", allow, FP_AGG_MAX_SITES);
			break;
		}
		snprintf(s->allowed[k++], sizeof s->allowed[0], "%s", e->id);
	}
	fp_tls_allowlist_destroy(al);
	qsort(s->allowed, (size_t)k, sizeof s->allowed[0], by_id);
	s->known_sites = k;
	return st;
}

static enum fp_status split_listen(const char *listen, char *host, size_t n, int *port)
{
	const char *colon = strrchr(listen, ':');
	char *end = NULL;
	long p = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || (size_t)(colon - listen) >= n || !end || *end || p < 0 || p > 65535)
		return FP_FAIL(FP_ERR_CONFIG, "aggregator.listen '%s' is not host:port", listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	*port = (int)p;
	return FP_OK;
}

static int should_stop(const struct server *s)
{
	return s->cfg->stop && *s->cfg->stop;
}

enum fp_status fp_server_run(const struct fp_server_config *cfg, float *final_model, struct fp_server_result *out)
{
	enum fp_status st;
	struct server *s = calloc(1, sizeof *s);
	struct fp_tls_listener *l = NULL;
	if (!s) return FP_FAIL(FP_ERR_NOMEM, "aggregate: out of memory");
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->changed, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->lock, NULL);
	s->cfg = cfg;
	s->plan = cfg->plan;
	s->n = cfg->n_params;
	char phex[FP_SHA256_HEX_SIZE], host[256], ca_file[4200], crt[4200], key[4200], crl[4200], allow[4200],
		audit[4200];
	fp_plan_hash(s->plan, phex);
	hex_to_raw(phex, s->plan_hash);
	fp_server_status_path(s->plan, s->status_path, sizeof s->status_path);
	int port = 0;
	FP_CHECK(st, split_listen(s->plan->listen, host, sizeof host, &port));
	if (cfg->port >= 0) port = cfg->port;
	snprintf(ca_file, sizeof ca_file, "%s/ca.crt", cfg->tls_dir);
	snprintf(crt, sizeof crt, "%s/aggregator.crt", cfg->tls_dir);
	snprintf(key, sizeof key, "%s/aggregator.key", cfg->tls_dir);
	snprintf(crl, sizeof crl, "%s/crl.pem", cfg->tls_dir);
	snprintf(allow, sizeof allow, "%s/allowlist.json", cfg->tls_dir);
	snprintf(audit, sizeof audit, "%s/audit.jsonl", s->plan->state_dir);
	FP_CHECK(st, count_sites(allow, s));

	struct fp_agg_plan ap;
	fp_plan_to_agg(s->plan, &ap);
	s->quorum = ap.quorum;
	if (s->quorum > s->known_sites)
		fp_log(FP_LOG_WARN, "aggregate: quorum %d but only %d active site(s) on %s: rounds cannot close until more enrol",
		       s->quorum, s->known_sites, allow);
	s->part2 = s->plan->model == FP_PLAN_PART2;
	FP_CHECK(st, fp_mkdir_p(s->plan->state_dir, 0700));
	snprintf(s->results_dir, sizeof s->results_dir, "%s/results", s->plan->state_dir);
	s->ev_on = s->part2 && cfg->eval_horizon >= 0;
	s->ev_horizon = cfg->eval_horizon > 0 ? cfg->eval_horizon : 36.0;
	if (s->ev_on) {
		/* H0 is stored only at the model's baseline times. */
		int ok = 0;
		for (int q = 0; q < FP_P2_N_HORIZONS; q++) ok |= s->ev_horizon == fp_p2_horizons[q];
		if (!ok) {
			st = FP_FAIL(FP_ERR_CONFIG, "aggregate: evaluation horizon %g months: it must be 12, 24 or 36",
			             s->ev_horizon);
			goto fail;
		}
		int cells = cfg->eval_grid_cells > 0 ? cfg->eval_grid_cells : 20;
		if (cells + 1 > FP_EVAL_MAX_GRID_EDGES) {
			st = FP_FAIL(FP_ERR_CONFIG, "aggregate: %d AUC grid cells; at most %d", cells, FP_EVAL_MAX_GRID_EDGES - 1);
			goto fail;
		}
		for (int j = 0; j <= cells; j++) s->ev_edges[j] = (double)j / cells;
		s->ev_n_edges = (size_t)cells + 1;
		char failed[4300];
		snprintf(failed, sizeof failed, "%s/failed", s->results_dir);
		FP_CHECK(st, fp_mkdir_p(failed, 0755));
	}
	FP_CHECK(st, fp_audit_open(audit, &s->audit));
	if (s->part2) {
		uint32_t saved = 0;
		void *v;
		s->p2_hidden = cfg->part2_hidden > 0 ? (uint32_t)cfg->part2_hidden : FP_P2FED_DEFAULT_HIDDEN;
		if (cfg->part2_model) snprintf(s->p2_ckpt, sizeof s->p2_ckpt, "%s", cfg->part2_model);
		else snprintf(s->p2_ckpt, sizeof s->p2_ckpt, "%s/part2-model.ckpt", s->plan->state_dir);
		FP_CHECK(st, fp_calloc_array(1, sizeof *s->p2_pooled, &v, "pooled statistics")); s->p2_pooled = v;
		FP_CHECK(st, fp_calloc_array(1, sizeof *s->p2_msg, &v, "pooled statistics")); s->p2_msg = v;
		st = fp_p2fed_pooled_load(s->plan->state_dir, s->p2_pooled, &saved);
		if (st == FP_OK && saved != s->p2_hidden) {
			st = FP_FAIL(FP_ERR_CONFIG, "aggregate: %s/%s was pooled for hidden %u, this run asks for %u",
			             s->plan->state_dir, FP_P2FED_POOLED_FILE, saved, s->p2_hidden);
			goto fail;
		}
		if (st == FP_OK) {
			fp_log(FP_LOG_INFO, "aggregate: part2: pooled statistics of %s reloaded; sites are not asked again",
			       s->p2_pooled->sites);
			FP_CHECK(st, p2_open(s));
		} else if (st != FP_ERR_NOT_FOUND) {
			goto fail;
		} else {
			st = FP_OK;
			fp_log(FP_LOG_INFO, "aggregate: part2: waiting for the standardisation statistics of %d site(s)",
			       s->known_sites);
		}
		s->p2_opened = mono_now();
		if (s->agg && s->done) {
			/* The model file of a finished study holds the baselines "done" carries. */
			struct fp_p2_ckpt ck;
			if (access(s->p2_ckpt, R_OK) == 0 && fp_p2_ckpt_load(s->p2_ckpt, &ck) == FP_OK) {
				if (strcmp(ck.model_hash, fp_aggregator_model_hash(s->agg)) == 0) {
					int k = ck.n_sites < FP_AGG_MAX_SITES ? ck.n_sites : FP_AGG_MAX_SITES;
					for (int i = 0; i < k; i++) {
						memcpy(s->bl_names[i], ck.sites[i], sizeof s->bl_names[i]);
						memcpy(s->bl_out[i], ck.h0[i], sizeof s->bl_out[i]);
					}
					p2_baseline_msgs(s, k, (const char(*)[33])s->bl_names,
					                 (const double(*)[FP_P2_N_HORIZONS])s->bl_out);
					s->bl_done = 1;
					s->ev_opened = mono_now();
					if (s->ev_on) eval_reload(s);
				}
				fp_p2_ckpt_close(&ck);
			}
		}
	} else {
		FP_CHECK(st, fp_aggregator_open(s->plan->state_dir, &ap, cfg->init, s->n, &s->agg));
		FP_CHECK(st, snap_take(s));
	}
	struct fp_tls_config tc = {1,    ca_file, crt, key, access(crl, R_OK) == 0 ? crl : NULL, allow, NULL,
	                           cfg->io_timeout_ms, fp_audit_tls_reject, s->audit};
	FP_CHECK(st, fp_tls_ctx_create(&tc, &s->tls));
	FP_CHECK(st, fp_tls_listen(s->tls, host, port, &l));
	if (!s->part2) {
		s->round_opened = mono_now();
		s->round_opened_wall = (double)time(NULL);
		s->done = fp_aggregator_round(s->agg) > s->plan->rounds;
		s->done_at = mono_now();
	}
	if (s->agg && s->done)
		fp_log(FP_LOG_INFO, "aggregate: study %s: all %ld rounds are done (model %.12s), %d site(s) enrolled, "
		       "listening on %s:%d",
		       s->plan->study, s->plan->rounds, fp_aggregator_model_hash(s->agg), s->known_sites, host,
		       fp_tls_listener_port(l));
	else
		fp_log(FP_LOG_INFO, "aggregate: study %s, round %lld of %ld, %d site(s) enrolled, listening on %s:%d",
		       s->plan->study, (long long)(s->agg ? fp_aggregator_round(s->agg) : 0), s->plan->rounds,
		       s->known_sites, host, fp_tls_listener_port(l));
	pthread_mutex_lock(&s->lock);
	write_status(s);
	pthread_mutex_unlock(&s->lock);
	if (cfg->on_listening) cfg->on_listening(cfg->arg, fp_tls_listener_port(l));

	for (;;) {
		reap_workers(s);
		if (should_stop(s) && s->done && (!s->part2 || (s->bl_done && (!s->ev_on || s->ev_done)))) {
			st = FP_OK; /* the study was done (and its results served): nothing to resume */
			break;
		}
		if (should_stop(s)) {
			st = FP_FAIL(FP_ERR_CANCELLED, "aggregate: stopped at round %lld; the state folder resumes it",
			             (long long)(s->agg ? fp_aggregator_round(s->agg) : 0));
			break;
		}
		pthread_mutex_lock(&s->lock);
		if (s->close_failed)
			st = FP_FAIL(s->close_failed, "%s", s->close_msg);
		else
			st = s->agg ? maybe_close(s) : p2_maybe_pool(s);
		if (st == FP_OK && s->part2 && s->agg && s->done && !s->bl_done) st = p2_maybe_model(s);
		if (st == FP_OK && s->part2 && s->bl_done && s->ev_on && !s->ev_done) st = p2_maybe_pool_eval(s);
		int finished = 0;
		if (st == FP_OK && s->done && (!s->part2 || (s->bl_done && (!s->ev_on || s->ev_done)))) {
			int told = 0;
			for (int i = 0; i < s->n_sites; i++) told += s->sites[i].told_done;
			finished = !cfg->serve_results && (told >= s->known_sites || mono_now() > s->done_at + cfg->linger_s);
		}
		if (st == FP_OK && s->dirty && mono_now() > s->status_written + STATUS_EVERY_S) write_status(s);
		pthread_mutex_unlock(&s->lock);
		if (st != FP_OK || finished) break;
		struct fp_tls_conn *c = NULL;
		enum fp_status ast = fp_tls_accept_socket(l, 100, &c);
		if (ast == FP_ERR_TIMEOUT || ast == FP_ERR_CANCELLED) continue; /* a signal: the loop's top decides */
		if (ast != FP_OK) {
			fp_log(FP_LOG_WARN, "aggregate: accept: %s", fp_error_msg());
			continue;
		}
		pthread_mutex_lock(&s->lock);
		struct worker *w = NULL;
		for (int i = 0; i < MAX_WORKERS && !w; i++)
			if (!s->wk[i].used) w = &s->wk[i];
		if (w) {
			*w = (struct worker){.s = s, .c = c, .used = 1};
			s->workers++;
			if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
				s->workers--;
				w->used = 0;
				w = NULL;
			}
		}
		pthread_mutex_unlock(&s->lock);
		if (!w) {
			fp_log(FP_LOG_WARN, "aggregate: no worker for a connection from %s; closed", fp_tls_conn_addr(c));
			fp_tls_conn_close(c);
		}
	}
	fp_tls_listener_destroy(l);
	l = NULL;
	/* Wake long polls, then wait (bounded by the I/O timeout) for the workers. */
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->changed);
	struct timespec until;
	abs_deadline(&until, (cfg->io_timeout_ms > 0 ? cfg->io_timeout_ms : 30000) / 1000.0 + 5.0);
	while (s->workers > 0)
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT) break;
	int left = s->workers;
	if (s->agg) write_status(s);
	pthread_mutex_unlock(&s->lock);
	reap_workers(s);
	if (left > 0) {
		/* Workers still hold s: leak it rather than free memory in use. */
		pthread_mutex_lock(&s->lock);
		for (int i = 0; i < MAX_WORKERS; i++)
			if (s->wk[i].used) pthread_detach(s->wk[i].th);
		pthread_mutex_unlock(&s->lock);
		fp_log(FP_LOG_WARN, "aggregate: %d session(s) did not end in time", left);
		return st != FP_OK ? st : FP_FAIL(FP_ERR_TIMEOUT, "aggregate: %d session(s) did not end in time", left);
	}
	if (st == FP_OK && s->agg) {
		if (out) {
			out->rounds_done = fp_aggregator_round(s->agg) - 1;
			snprintf(out->model_hash, sizeof out->model_hash, "%s", fp_aggregator_model_hash(s->agg));
			out->n_params = s->n;
			snprintf(out->part2_model, sizeof out->part2_model, "%s", s->part2 ? s->p2_ckpt : "");
		}
		if (final_model) st = fp_aggregator_model(s->agg, final_model);
	}
fail:
	fp_tls_listener_destroy(l);
	for (int i = 0; i < FP_AGG_MAX_SITES; i++)
		if (s->slots[i].used) slot_free(&s->slots[i]);
	snap_unref(s->snap);
	fp_tls_ctx_destroy(s->tls);
	fp_audit_close(s->audit);
	fp_aggregator_destroy(s->agg);
	for (int i = 0; i < FP_AGG_MAX_SITES; i++) {
		free(s->p2_site[i]);
		json_decref(s->ev_json[i]);
	}
	free(s->p2_pooled);
	free(s->p2_msg);
	fp_p2_trainer_destroy(s->p2_coord);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->changed);
	free(s);
	return st;
}
