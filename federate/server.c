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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fp_aggregator.h"
#include "fp_audit.h"
#include "fp_common.h"
#include "fp_fed_stream.h"
#include "fp_json.h"
#include "fp_log.h"
#include "fp_server.h"
#include "fp_stream.h"
#include "fp_tls.h"

#define MAX_WORKERS (2 * FP_AGG_MAX_SITES)

struct snapshot { /* the model served for one round; shared by sessions */
	int refs;
	int64_t round;
	uint8_t hash[32];
	float *w; /* (n) */
};

struct slot { /* one site's update being received, kept across reconnects */
	int used, busy, dead;
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

struct server {
	const struct fp_server_config *cfg;
	const struct fp_study_plan *plan;
	uint8_t plan_hash[32];
	size_t n;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* round closed, update accepted, worker ended */
	struct fp_aggregator *agg;
	struct snapshot *snap;
	struct slot slots[FP_AGG_MAX_SITES];
	struct site_stat sites[FP_AGG_MAX_SITES];
	int n_sites, known_sites, quorum, workers, done, stopping, dirty;
	double round_opened, round_opened_wall, done_at, status_written;
	struct fp_tls_ctx *tls;
	struct fp_audit *audit;
	char status_path[4200];
};

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
	json_t *doc = json_pack("{s:s, s:I, s:I, s:b, s:s, s:i, s:i, s:i, s:s, s:o}", "study", s->plan->study, "round",
	                        (json_int_t)fp_aggregator_round(s->agg), "rounds", (json_int_t)s->plan->rounds, "done",
	                        s->done, "model_hash", fp_aggregator_model_hash(s->agg), "accepted",
	                        fp_aggregator_n_accepted(s->agg), "quorum", s->quorum, "known_sites", s->known_sites,
	                        "updated", now, "sites", sites ? sites : json_array());
	if (!doc || fp_json_save_file(s->status_path, doc, 0644) != FP_OK)
		fp_log(FP_LOG_WARN, "aggregate: could not write %s: %s", s->status_path, doc ? fp_error_msg() : "no memory");
	json_decref(doc);
	s->dirty = 0;
	s->status_written = mono_now();
}

static void snap_unref(struct snapshot *p)
{
	if (p && --p->refs == 0) {
		free(p->w);
		free(p);
	}
}

static enum fp_status snap_take(struct server *s)
{
	struct snapshot *p = calloc(1, sizeof *p);
	if (!p) return FP_FAIL(FP_ERR_NOMEM, "aggregate: out of memory for the model snapshot");
	p->w = malloc(s->n * sizeof(float));
	if (!p->w) {
		free(p);
		return FP_FAIL(FP_ERR_NOMEM, "aggregate: out of memory for a %zu-parameter model", s->n);
	}
	enum fp_status st = fp_aggregator_model(s->agg, p->w);
	if (st != FP_OK) {
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
		if (x->busy) { /* its session frees it */
			fp_update_abort(x->u);
			x->u = NULL;
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
	FP_TRY(snap_take(s));
	s->round_opened = mono_now();
	s->round_opened_wall = (double)time(NULL);
	if (fp_aggregator_round(s->agg) > s->plan->rounds) {
		s->done = 1;
		s->done_at = mono_now();
	}
	write_status(s);
	pthread_cond_broadcast(&s->changed);
	return FP_OK;
}

/* ---- a session (worker thread, lock not held unless said) ---- */

struct worker {
	struct server *s;
	struct fp_tls_conn *c;
};

static enum fp_status sink_update(void *ctx, uint64_t offset, const void *data, size_t len)
{
	struct slot *x = ctx;
	struct server *s = x->s;
	(void)offset;
	enum fp_status st = FP_OK;
	float block[1024];
	pthread_mutex_lock(&s->lock);
	if (x->dead || !x->u) {
		st = FP_FAIL(FP_ERR_STATE, "round %lld closed before %s's update arrived whole", (long long)x->round, x->site);
	} else {
		/* Chunks are whole floats (chunk_bytes % 4 == 0 was checked); copy
		 * through a block so the payload's alignment does not matter. */
		const uint8_t *p = data;
		for (size_t off = 0; off < len && st == FP_OK; off += sizeof block) {
			size_t b = len - off < sizeof block ? len - off : sizeof block;
			memcpy(block, p + off, b);
			st = fp_update_write(x->u, block, b / sizeof(float));
		}
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
	int64_t r0 = fp_aggregator_round(s->agg);
	/* Long poll: a site whose update is in waits here for the next round. */
	while (!s->done && !s->stopping && fp_aggregator_round(s->agg) == r0 && fp_aggregator_has_update(s->agg, site))
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT) break;
	struct site_stat *ss = site_stat(s, site);
	if (s->done || s->stopping) {
		t.kind = "done";
		t.round = (uint64_t)fp_aggregator_round(s->agg) - 1;
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
		FP_CHECK(st, fp_stream_tx_create((uint64_t)snap->round, snap->w, (uint64_t)s->n * sizeof(float),
		                                 FP_SERVER_CHUNK_BYTES, &tx));
		fp_stream_tx_header(tx, &th);
		th.name = "global";
		th.n_dims = 1;
		th.dims = dims;
		t.model = &th;
	}
	double t0 = mono_now();
	FP_CHECK(st, fp_msg_send(io, FP_FRAME_TASK, &t.base));
	if (tx) {
		struct fp_fed_tx ftx = {(uint64_t)snap->round, (uint64_t)s->n * sizeof(float), FP_SERVER_CHUNK_BYTES,
		                        (const uint8_t *)snap->w, 0, 0};
		FP_CHECK(st, fp_fed_tx_send(&ftx, io, fr, FP_STREAM_DEFAULT_WINDOW));
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
	if (x && x->busy) {
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
			st = fp_update_begin(s->agg, site, (int64_t)m->round, base, m->sample_count, s->n, &u);
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
	enum fp_status rst = fp_stream_rx_recv(x->rx, io, fr);
	char why[1024] = "";
	if (rst != FP_OK) snprintf(why, sizeof why, "%s", fp_error_msg());
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
	} else {
		struct fp_update_intake *u = x->u;
		x->u = NULL;
		slot_free(x);
		st = fp_update_finish(u);
		if (st == FP_OK) {
			if (ss) ss->contributed++;
			json_t *ev = json_pack("{s:s, s:I, s:I}", "site", site, "round", (json_int_t)round, "samples",
			                       (json_int_t)m->sample_count);
			if (ev) fp_audit_append(s->audit, "update.accepted", ev);
			json_decref(ev);
		}
		write_status(s);
		pthread_cond_broadcast(&s->changed);
	}
	touch(s, site, st == FP_OK ? "accepted" : "upload failed");
	pthread_mutex_unlock(&s->lock);

	if (st == FP_OK) {
		Fedpath__Status ok = FEDPATH__STATUS__INIT;
		ok.round = (uint64_t)round;
		ok.state = "accepted";
		return fp_msg_send(io, FP_FRAME_STATUS, &ok.base);
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
	if (fp_tls_conn_peer(c)->role != FP_TLS_ROLE_SITE) {
		fp_msg_send_error(io, FP_ERR_AUTH, "only sites take part in rounds");
		goto done;
	}
	Fedpath__Hello hello = FEDPATH__HELLO__INIT;
	hello.protocol_version = FP_PROTO_VERSION;
	hello.site_id = "aggregator";
	hello.role = "server";
	hello.software_version = (char *)fp_version();
	hello.config_hash.data = s->plan_hash;
	hello.config_hash.len = 32;
	FP_CHECK(st, fp_msg_send(io, FP_FRAME_HELLO, &hello.base));
	FP_CHECK(st, fp_msg_recv(io, &fr, FP_FRAME_HELLO, &m));
	FP_CHECK(st, fp_tls_conn_check_hello(c, (Fedpath__Hello *)m));
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
			FP_CHECK(st, send_task(s, c, site, &fr));
		} else if (fr.type == FP_FRAME_UPDATE) {
			FP_CHECK(st, fp_msg_unpack(FP_FRAME_UPDATE, fr.data, fr.len, &m));
			FP_CHECK(st, take_update(s, c, site, (const Fedpath__Update *)m, &fr));
			fp_msg_free(m);
			m = NULL;
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
	free(w);
	pthread_mutex_lock(&s->lock);
	s->workers--;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- set-up and the accept loop ---- */

static enum fp_status count_sites(const char *allow, int *out)
{
	struct fp_tls_allowlist *al = NULL;
	FP_TRY(fp_tls_allowlist_load(allow, 0, &al));
	int k = 0;
	for (size_t i = 0; i < fp_tls_allowlist_count(al); i++) {
		const struct fp_tls_allow_entry *e = fp_tls_allowlist_get(al, i);
		k += e->role == FP_TLS_ROLE_SITE && !e->revoked;
	}
	fp_tls_allowlist_destroy(al);
	*out = k;
	return FP_OK;
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
	FP_CHECK(st, count_sites(allow, &s->known_sites));

	struct fp_agg_plan ap;
	fp_plan_to_agg(s->plan, &ap);
	s->quorum = ap.quorum;
	if (s->quorum > s->known_sites)
		fp_log(FP_LOG_WARN, "aggregate: quorum %d but only %d active site(s) on %s: rounds cannot close until more enrol",
		       s->quorum, s->known_sites, allow);
	FP_CHECK(st, fp_aggregator_open(s->plan->state_dir, &ap, cfg->init, s->n, &s->agg));
	FP_CHECK(st, fp_audit_open(audit, &s->audit));
	FP_CHECK(st, snap_take(s));
	struct fp_tls_config tc = {1,    ca_file, crt, key, access(crl, R_OK) == 0 ? crl : NULL, allow, NULL,
	                           cfg->io_timeout_ms, fp_audit_tls_reject, s->audit};
	FP_CHECK(st, fp_tls_ctx_create(&tc, &s->tls));
	FP_CHECK(st, fp_tls_listen(s->tls, host, port, &l));
	s->round_opened = mono_now();
	s->round_opened_wall = (double)time(NULL);
	s->done = fp_aggregator_round(s->agg) > s->plan->rounds;
	s->done_at = mono_now();
	fp_log(FP_LOG_INFO, "aggregate: study %s, round %lld of %ld, %d site(s) enrolled, listening on %s:%d",
	       s->plan->study, (long long)fp_aggregator_round(s->agg), s->plan->rounds, s->known_sites, host,
	       fp_tls_listener_port(l));
	pthread_mutex_lock(&s->lock);
	write_status(s);
	pthread_mutex_unlock(&s->lock);
	if (cfg->on_listening) cfg->on_listening(cfg->arg, fp_tls_listener_port(l));

	for (;;) {
		if (should_stop(s)) {
			st = FP_FAIL(FP_ERR_CANCELLED, "aggregate: stopped at round %lld; the state folder resumes it",
			             (long long)fp_aggregator_round(s->agg));
			break;
		}
		pthread_mutex_lock(&s->lock);
		st = maybe_close(s);
		int finished = 0;
		if (st == FP_OK && s->done) {
			int told = 0;
			for (int i = 0; i < s->n_sites; i++) told += s->sites[i].told_done;
			finished = told >= s->known_sites || mono_now() > s->done_at + cfg->linger_s;
		}
		if (st == FP_OK && s->dirty && mono_now() > s->status_written + 1.0) write_status(s);
		pthread_mutex_unlock(&s->lock);
		if (st != FP_OK || finished) break;
		struct fp_tls_conn *c = NULL;
		enum fp_status ast = fp_tls_accept_socket(l, 100, &c);
		if (ast == FP_ERR_TIMEOUT) continue;
		if (ast != FP_OK) {
			fp_log(FP_LOG_WARN, "aggregate: accept: %s", fp_error_msg());
			continue;
		}
		struct worker *w = malloc(sizeof *w);
		pthread_t th;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_mutex_lock(&s->lock);
		int ok = w && s->workers < MAX_WORKERS;
		if (ok) {
			w->s = s;
			w->c = c;
			s->workers++;
			if (pthread_create(&th, &at, worker_main, w) != 0) {
				s->workers--;
				ok = 0;
			}
		}
		pthread_mutex_unlock(&s->lock);
		pthread_attr_destroy(&at);
		if (!ok) {
			fp_log(FP_LOG_WARN, "aggregate: no worker for a connection from %s; closed", fp_tls_conn_addr(c));
			free(w);
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
	if (left > 0) {
		/* Workers still hold s: leak it rather than free memory in use. */
		fp_log(FP_LOG_WARN, "aggregate: %d session(s) did not end in time", left);
		return st != FP_OK ? st : FP_FAIL(FP_ERR_TIMEOUT, "aggregate: %d session(s) did not end in time", left);
	}
	if (st == FP_OK) {
		if (out) {
			out->rounds_done = fp_aggregator_round(s->agg) - 1;
			snprintf(out->model_hash, sizeof out->model_hash, "%s", fp_aggregator_model_hash(s->agg));
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
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->changed);
	free(s);
	return st;
}
