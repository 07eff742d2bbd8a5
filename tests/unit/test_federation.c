/*
 * test_federation.c: the TLS federation end to end on 127.0.0.1 (issue 8,
 * items 4, 5 and 8): fp_server_run (the aggregator) and fp_agent_run (three
 * sites) over real mutual TLS with certificates from fp_pki, a small real
 * model (linear regression by full-batch gradient descent, plus optional
 * padding parameters pulled towards a site-specific target so that an update
 * spans several 64 KiB chunks). Every wait is bounded.
 *  - three_sites_fedavg_over_tls: 3 rounds; the final weights equal FedAvg
 *    recomputed independently (in double) from the same local steps; every
 *    site trained and uploaded once per round; status.json reports it;
 *  - site_cut_mid_upload_rejoins_next_round: one site's connection dies in
 *    the middle of its round-1 upload; round 1 closes at its deadline with
 *    the other two, the restarted site takes part in rounds 2 and 3, and the
 *    result equals FedAvg over exactly those updates;
 *  - upload_cut_resumes_from_last_acknowledged_chunk: a connection cut
 *    mid-upload is redialled and the upload resumes after the last
 *    acknowledged chunk, without training again;
 *  - aggregator_killed_mid_round_resumes_bit_identical: aggregator and sites
 *    as forked processes; the aggregator is SIGKILLed in round 2 after an
 *    update was accepted and restarted; no site trains more than once per
 *    round, and the final model is bit-identical to an uninterrupted run;
 *  - plan_mismatch_is_refused: a site whose plan differs refuses to train;
 *  - corrupted_chunk_is_detected_and_resent: the federation's stream sender
 *    re-sends a chunk that failed its digest;
 *  - huge_frame_to_the_aggregator_is_refused: a frame header claiming 4 GiB
 *    ends that session (the no-allocation part is test_protocols'
 *    huge_length_refused_before_allocation) and the aggregator serves on;
 *  - stale_replayed_and_mismatched_updates_get_an_error: a stale base model,
 *    another round, the wrong size and a replay are each refused with an
 *    ERROR naming the reason, and audited.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fp_agent.h"
#include "fp_common.h"
#include "fp_stream.h"
#include "fp_part2_fed.h"
#include "fp_pull.h"
#include "fp_pki.h"
#include "fp_server.h"
#include "fp_test.h"
#include "fp_tls.h"

#define D 6
#define NSITES 3

struct site_trainer {
	int k;            /* 1..NSITES */
	int n;
	double x[200][D];
	double y[200];
	size_t n_params;  /* D + 1 + padding */
	double sleep_s;   /* slows training (to kill the aggregator meanwhile) */
	atomic_int calls;
};

static double lcg(unsigned long long *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(*s >> 11) / 9007199254740992.0;
}

static void make_site(int k, size_t n_params, struct site_trainer *t)
{
	memset(t, 0, sizeof *t);
	unsigned long long s = 1234 + 77 * (unsigned long long)k;
	const double wtrue[D] = {0.5, -1.0, 0.25, 2.0, 0.0, -0.75};
	t->k = k;
	t->n = 60 + 40 * k;
	t->n_params = n_params;
	for (int i = 0; i < t->n; i++) {
		double y = 0.3 + 0.2 * k; /* site-specific intercept: non-IID */
		for (int j = 0; j < D; j++) {
			t->x[i][j] = 2 * lcg(&s) - 1 + 0.1 * k;
			y += wtrue[j] * t->x[i][j];
		}
		t->y[i] = y + 0.05 * (lcg(&s) - 0.5);
	}
}

static enum fp_status init_w(void *ctx, float *w)
{
	const struct site_trainer *t = ctx;
	for (size_t j = 0; j < t->n_params; j++) w[j] = 0.01f * (float)(j % 97);
	return FP_OK;
}

/* E epochs of full-batch gradient descent on squared error, lr 0.1; padding
 * parameters move 10 % of the way to the site's target k * (j % 7) / 10. */
static enum fp_status local_train(void *ctx, const float *weights, int64_t round, const struct fp_study_plan *plan,
                                  float *update, uint64_t *n_samples, double *loss)
{
	(void)round;
	struct site_trainer *t = ctx;
	atomic_fetch_add(&t->calls, 1);
	if (t->sleep_s > 0) {
		struct timespec ts = {(time_t)t->sleep_s, (long)((t->sleep_s - (double)(time_t)t->sleep_s) * 1e9)};
		nanosleep(&ts, NULL);
	}
	double w[D + 1];
	for (int j = 0; j <= D; j++) w[j] = weights[j];
	double l = 0;
	for (long e = 0; e < plan->local_epochs; e++) {
		double g[D + 1] = {0};
		l = 0;
		for (int i = 0; i < t->n; i++) {
			double r = w[D] - t->y[i];
			for (int j = 0; j < D; j++) r += w[j] * t->x[i][j];
			l += r * r / t->n;
			for (int j = 0; j < D; j++) g[j] += 2 * r * t->x[i][j] / t->n;
			g[D] += 2 * r / t->n;
		}
		for (int j = 0; j <= D; j++) w[j] -= 0.1 * g[j];
	}
	for (int j = 0; j <= D; j++) update[j] = (float)(w[j] - (double)weights[j]);
	for (size_t j = D + 1; j < t->n_params; j++)
		update[j] = (float)(0.1 * (t->k * (double)(j % 7) / 10.0 - (double)weights[j]));
	*n_samples = (uint64_t)t->n;
	*loss = l;
	return FP_OK;
}

/* FedAvg in double: rounds x site masks (bit k set: site k answered). */
static void reference_fedavg(const struct fp_study_plan *plan, size_t n_params, const unsigned *masks, float *w)
{
	static struct site_trainer sites[NSITES + 1];
	float *upd = malloc(n_params * sizeof(float));
	double *acc = malloc(n_params * sizeof(double));
	CHECK(upd && acc);
	make_site(1, n_params, &sites[0]);
	init_w(&sites[0], w);
	for (int r = 1; r <= plan->rounds; r++) {
		uint64_t total = 0;
		memset(acc, 0, n_params * sizeof(double));
		for (int k = 1; k <= NSITES; k++) {
			if (!(masks[r - 1] & (1u << k))) continue;
			uint64_t ns;
			double l;
			make_site(k, n_params, &sites[k]);
			local_train(&sites[k], w, r, plan, upd, &ns, &l);
			total += ns;
			for (size_t j = 0; j < n_params; j++) acc[j] += (double)ns * upd[j];
		}
		for (size_t j = 0; j < n_params; j++) w[j] = (float)((double)w[j] + acc[j] / (double)total);
	}
	free(upd);
	free(acc);
}

/* ---- the study: PKI, plan ---- */

struct study {
	char dir[300], tls[400], keys[400];
	struct fp_study_plan plan;
	size_t n_params;
	struct site_trainer *sites; /* NSITES */
};

static void enrol(const char *ca, const char *dir, const char *id, enum fp_tls_role role, const char *dns,
                  const char *out_crt)
{
	char csr[1300];
	uint8_t pin[32];
	CHECK_OK(fp_pki_csr(dir, id, pin));
	snprintf(csr, sizeof csr, "%s/%s.csr", dir, id);
	struct fp_pki_sign_options o = {csr, id, role, dns, 0, 0, 0, out_crt};
	CHECK_OK(fp_pki_sign(ca, &o));
}

static void study_setup(struct study *s, const char *name, size_t n_params)
{
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "%s/%s", fp_test_tmpdir(), name);
	snprintf(s->tls, sizeof s->tls, "%s/tls", s->dir);
	snprintf(s->keys, sizeof s->keys, "%s/keys", s->dir);
	CHECK_OK(fp_mkdir_p(s->dir, 0700));
	CHECK_OK(fp_pki_init(s->tls, "fed-test", 30));
	char crt[1300];
	snprintf(crt, sizeof crt, "%s/aggregator.crt", s->tls);
	enrol(s->tls, s->tls, "aggregator", FP_TLS_ROLE_SERVER, "aggregator.test", crt);
	for (int k = 1; k <= NSITES; k++) {
		char id[16], dir[600];
		snprintf(id, sizeof id, "H%02d", k);
		snprintf(dir, sizeof dir, "%s/%s", s->keys, id);
		snprintf(crt, sizeof crt, "%s/%s.crt", dir, id);
		enrol(s->tls, dir, id, FP_TLS_ROLE_SITE, NULL, crt);
	}
	CHECK_OK(fp_config_defaults(&fp_plan_schema, &s->plan));
	snprintf(s->plan.study, sizeof s->plan.study, "fed-test");
	snprintf(s->plan.state_dir, sizeof s->plan.state_dir, "%s/state", s->dir);
	snprintf(s->plan.listen, sizeof s->plan.listen, "127.0.0.1:0");
	s->plan.rounds = 3;
	s->plan.quorum = NSITES;
	s->plan.round_deadline_s = 30;
	s->plan.local_epochs = 5;
	s->n_params = n_params;
	s->sites = calloc(NSITES, sizeof *s->sites);
	CHECK(s->sites);
	for (int k = 1; k <= NSITES; k++) make_site(k, n_params, &s->sites[k - 1]);
}

static void study_teardown(struct study *s) { free(s->sites); }

/* ---- threads ---- */

struct server_run {
	struct study *s;
	struct fp_server_config cfg;
	struct fp_local_trainer tr;
	float *init, *final;
	atomic_int port;
	enum fp_status st;
	char why[1024];
	struct fp_server_result res;
};

static void on_listening(void *arg, int port)
{
	struct server_run *r = arg;
	atomic_store(&r->port, port);
}

static void server_prepare(struct server_run *r, struct study *s, int port)
{
	memset(r, 0, sizeof *r);
	r->s = s;
	r->init = malloc(s->n_params * sizeof(float));
	r->final = calloc(s->n_params, sizeof(float));
	CHECK(r->init && r->final);
	init_w(&s->sites[0], r->init);
	r->cfg.plan = &s->plan;
	r->cfg.tls_dir = s->tls;
	r->cfg.init = r->init;
	r->cfg.n_params = s->n_params;
	r->cfg.port = port;
	r->cfg.io_timeout_ms = 10000;
	r->cfg.linger_s = 5;
	r->cfg.on_listening = on_listening;
	r->cfg.arg = r;
}

static void *server_main(void *arg)
{
	struct server_run *r = arg;
	r->st = fp_server_run(&r->cfg, r->final, &r->res);
	snprintf(r->why, sizeof r->why, "%s", r->st ? fp_error_msg() : "");
	if (r->st) atomic_store(&r->port, -1);
	return NULL;
}

static int wait_port(struct server_run *r)
{
	for (int i = 0; i < 1000 && atomic_load(&r->port) == 0; i++) usleep(10000);
	return atomic_load(&r->port);
}

struct site_run {
	struct study *s;
	int k;
	struct fp_agent_config cfg;
	struct fp_local_trainer tr;
	char crt[1300], key[1300], ca[1300], crl[1300], id[16];
	enum fp_status st;
	char why[1024];
	struct fp_agent_stats stats;
	/* site_cut test: die once, then restart when the server reaches restart_round */
	int restart_round;
	struct fp_agent_stats stats2;
	enum fp_status st2;
};

static void site_prepare(struct site_run *r, struct study *s, int k, int port)
{
	memset(r, 0, sizeof *r);
	r->s = s;
	r->k = k;
	snprintf(r->id, sizeof r->id, "H%02d", k);
	snprintf(r->crt, sizeof r->crt, "%s/%s/%s.crt", s->keys, r->id, r->id);
	snprintf(r->key, sizeof r->key, "%s/%s/%s.key", s->keys, r->id, r->id);
	snprintf(r->ca, sizeof r->ca, "%s/ca.crt", s->tls);
	snprintf(r->crl, sizeof r->crl, "%s/crl.pem", s->tls);
	r->tr = (struct fp_local_trainer){&s->sites[k - 1], s->n_params, init_w, local_train};
	r->cfg.site_id = r->id;
	r->cfg.plan = &s->plan;
	r->cfg.trainer = &r->tr;
	r->cfg.host = "127.0.0.1";
	r->cfg.port = port;
	r->cfg.server_name = "aggregator.test";
	r->cfg.ca_file = r->ca;
	r->cfg.cert_file = r->crt;
	r->cfg.key_file = r->key;
	r->cfg.crl_file = r->crl;
	r->cfg.io_timeout_ms = 10000;
	r->cfg.backoff_initial_s = 0.05;
	r->cfg.backoff_max_s = 0.4;
	r->cfg.give_up_s = 20;
	r->cfg.upload_chunk_bytes = 64u << 10;
}

static long status_round(const struct study *s)
{
	char p[1200];
	fp_server_status_path(&s->plan, p, sizeof p);
	json_t *doc = NULL;
	long r = -1;
	if (access(p, R_OK) == 0 && fp_json_load_file(p, &doc) == FP_OK) r = (long)json_integer_value(json_object_get(doc, "round"));
	json_decref(doc);
	return r;
}

static void *site_main(void *arg)
{
	struct site_run *r = arg;
	r->st = fp_agent_run(&r->cfg, &r->stats);
	snprintf(r->why, sizeof r->why, "%s", r->st ? fp_error_msg() : "");
	if (r->restart_round > 0) {
		for (int i = 0; i < 2000 && status_round(r->s) < r->restart_round; i++) usleep(10000);
		r->cfg.die_after_upload_bytes = 0;
		r->st2 = fp_agent_run(&r->cfg, &r->stats2);
		if (r->st2) snprintf(r->why, sizeof r->why, "%s", fp_error_msg());
	}
	return NULL;
}

/* Runs a whole study in threads; returns the server's status. */
static void run_threads(struct study *s, struct server_run *srv, struct site_run *sites, int die_site,
                        uint64_t die_bytes, uint64_t cut_bytes)
{
	pthread_t ts, tk[NSITES];
	server_prepare(srv, s, 0);
	CHECK(pthread_create(&ts, NULL, server_main, srv) == 0);
	int port = wait_port(srv);
	CHECK_MSG(port > 0, "server did not start: %s", srv->why);
	for (int k = 1; k <= NSITES; k++) {
		site_prepare(&sites[k - 1], s, k, port);
		if (k == die_site) {
			sites[k - 1].cfg.die_after_upload_bytes = die_bytes;
			sites[k - 1].restart_round = die_bytes ? 2 : 0;
			sites[k - 1].cfg.cut_once_after_upload_bytes = cut_bytes;
		}
		CHECK(pthread_create(&tk[k - 1], NULL, site_main, &sites[k - 1]) == 0);
	}
	for (int k = 0; k < NSITES; k++) CHECK(pthread_join(tk[k], NULL) == 0);
	CHECK(pthread_join(ts, NULL) == 0);
}

static void check_close(const float *got, const float *want, size_t n)
{
	for (size_t j = 0; j < n; j++)
		CHECK_MSG(fabs(got[j] - want[j]) <= 1e-6 + 1e-6 * fabs(want[j]), "weight %zu: %.9g vs FedAvg %.9g", j,
		          got[j], want[j]);
}

FP_TEST(three_sites_fedavg_over_tls)
{
	struct study s;
	study_setup(&s, "fed", D + 1);
	struct server_run srv;
	struct site_run sites[NSITES];
	run_threads(&s, &srv, sites, 0, 0, 0);
	CHECK_MSG(srv.st == FP_OK, "server: %s", srv.why);
	CHECK_INT_EQ(srv.res.rounds_done, 3);
	for (int k = 0; k < NSITES; k++) {
		CHECK_MSG(sites[k].st == FP_OK, "site %d: %s", k + 1, sites[k].why);
		CHECK_INT_EQ(sites[k].stats.trained, 3);
		CHECK_INT_EQ(sites[k].stats.uploaded, 3);
	}
	unsigned masks[3] = {0xe, 0xe, 0xe};
	float want[D + 1];
	reference_fedavg(&s.plan, D + 1, masks, want);
	check_close(srv.final, want, D + 1);
	/* status.json: what `fedpath status` shows. */
	char p[1200];
	fp_server_status_path(&s.plan, p, sizeof p);
	json_t *doc = NULL;
	CHECK_OK(fp_json_load_file(p, &doc));
	CHECK_INT_EQ(json_integer_value(json_object_get(doc, "round")), 4);
	CHECK(json_is_true(json_object_get(doc, "done")));
	json_t *arr = json_object_get(doc, "sites");
	CHECK_INT_EQ(json_array_size(arr), NSITES);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *e = json_array_get(arr, i);
		CHECK_INT_EQ(json_integer_value(json_object_get(e, "updates_accepted")), 3);
		CHECK(json_integer_value(json_object_get(e, "bytes_in")) >= 3 * (D + 1) * 4);
		CHECK(json_integer_value(json_object_get(e, "last_contact_unix")) > 0);
	}
	json_decref(doc);
	free(srv.init);
	free(srv.final);
	study_teardown(&s);
}

FP_TEST(site_cut_mid_upload_rejoins_next_round)
{
	/* 40007 parameters: a 160 kB update in three 64 KiB chunks; H03 dies
	 * after 100 kB, in the middle of its second chunk. */
	size_t n = D + 1 + 40000;
	struct study s;
	study_setup(&s, "cut", n);
	s.plan.quorum = 2;
	s.plan.round_deadline_s = 5; /* round 1 closes at it without H03; the restarted H03 must make round 2 */
	struct server_run srv;
	struct site_run sites[NSITES];
	run_threads(&s, &srv, sites, 3, 100000, 0);
	CHECK_MSG(srv.st == FP_OK, "server: %s", srv.why);
	CHECK_STATUS(sites[2].st, FP_ERR_IO);
	CHECK_MSG(sites[2].st2 == FP_OK, "H03 after restart: %s", sites[2].why);
	CHECK_INT_EQ(sites[2].stats.trained, 1);
	CHECK_INT_EQ(sites[2].stats.uploaded, 0);
	CHECK_INT_EQ(sites[2].stats2.trained, 2);
	CHECK_INT_EQ(sites[2].stats2.uploaded, 2);
	for (int k = 0; k < 2; k++) {
		CHECK_MSG(sites[k].st == FP_OK, "site %d: %s", k + 1, sites[k].why);
		CHECK_INT_EQ(sites[k].stats.uploaded, 3);
	}
	unsigned masks[3] = {0x6, 0xe, 0xe};
	float *want = malloc(n * sizeof(float));
	CHECK(want);
	reference_fedavg(&s.plan, n, masks, want);
	check_close(srv.final, want, n);
	free(want);
	free(srv.init);
	free(srv.final);
	study_teardown(&s);
}

FP_TEST(upload_cut_resumes_from_last_acknowledged_chunk)
{
	/* H03's connection drops once, 100 kB into its first 160 kB upload (three
	 * 64 KiB chunks): it redials, is not asked to train again, and sends
	 * only the chunks after the last one acknowledged. */
	size_t n = D + 1 + 40000;
	struct study s;
	study_setup(&s, "resume", n);
	struct server_run srv;
	struct site_run sites[NSITES];
	run_threads(&s, &srv, sites, 3, 0, 100000);
	CHECK_MSG(srv.st == FP_OK, "server: %s", srv.why);
	for (int k = 0; k < NSITES; k++) {
		CHECK_MSG(sites[k].st == FP_OK, "site %d: %s", k + 1, sites[k].why);
		CHECK_INT_EQ(sites[k].stats.trained, 3);
		CHECK_INT_EQ(sites[k].stats.uploaded, 3);
	}
	CHECK(sites[2].stats.reconnects >= 1);
	/* 3 rounds x 3 chunks; without resume round 1 would add chunk 0 again. */
	CHECK_INT_EQ(sites[2].stats.chunks_sent, 9);
	CHECK_INT_EQ(sites[0].stats.chunks_sent, 9);
	unsigned masks[3] = {0xe, 0xe, 0xe};
	float *want = malloc(n * sizeof(float));
	CHECK(want);
	reference_fedavg(&s.plan, n, masks, want);
	check_close(srv.final, want, n);
	free(want);
	free(srv.init);
	free(srv.final);
	study_teardown(&s);
}

/* ---- processes ---- */

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof a;
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Child: the aggregator; writes the final model to <dir>/final.bin. */
static pid_t spawn_server(struct study *s, int port)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid > 0) return pid;
	struct server_run r;
	server_prepare(&r, s, port);
	r.cfg.on_listening = NULL;
	enum fp_status st = fp_server_run(&r.cfg, r.final, &r.res);
	if (st != FP_OK) {
		fprintf(stderr, "aggregator child: %s\n", fp_error_msg());
		_exit(1);
	}
	char p[1200];
	snprintf(p, sizeof p, "%s/final.bin", s->dir);
	_exit(fp_file_commit(p, r.final, s->n_params * sizeof(float), 0644) == FP_OK ? 0 : 1);
}

/* Child: one site; exit status 10 + the number of local training steps. */
static pid_t spawn_site(struct study *s, int k, int port, double sleep_s)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid > 0) return pid;
	struct site_run r;
	site_prepare(&r, s, k, port);
	s->sites[k - 1].sleep_s = sleep_s;
	r.cfg.give_up_s = 30;
	enum fp_status st = fp_agent_run(&r.cfg, &r.stats);
	if (st != FP_OK) {
		fprintf(stderr, "site child %s: %s\n", r.id, fp_error_msg());
		_exit(1);
	}
	_exit(10 + (int)r.stats.trained);
}

static int wait_exit(pid_t pid, double timeout_s)
{
	for (double t = 0; t < timeout_s; t += 0.01) {
		int ws = 0;
		pid_t got = waitpid(pid, &ws, WNOHANG);
		if (got == pid) return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

FP_TEST(aggregator_killed_mid_round_resumes_bit_identical)
{
	/* Reference: the same study, uninterrupted, in threads. */
	struct study ref;
	study_setup(&ref, "ref", D + 1);
	struct server_run srv;
	struct site_run sites[NSITES];
	run_threads(&ref, &srv, sites, 0, 0, 0);
	CHECK_MSG(srv.st == FP_OK, "reference server: %s", srv.why);

	struct study s;
	study_setup(&s, "kill", D + 1);
	int port = free_port();
	pid_t sp[NSITES];
	for (int k = 1; k <= NSITES; k++) sp[k - 1] = spawn_site(&s, k, port, k == 3 ? 0.4 : 0.0);
	pid_t agg = spawn_server(&s, port);
	/* Kill it in round 2 once an update is in and H03 is still training. */
	char p[1200];
	fp_server_status_path(&s.plan, p, sizeof p);
	int killed = 0;
	for (int i = 0; i < 3000 && !killed; i++) {
		json_t *doc = NULL;
		if (access(p, R_OK) == 0 && fp_json_load_file(p, &doc) == FP_OK &&
		    json_integer_value(json_object_get(doc, "round")) == 2 &&
		    json_integer_value(json_object_get(doc, "accepted")) >= 1) {
			CHECK(kill(agg, SIGKILL) == 0);
			killed = 1;
		}
		json_decref(doc);
		if (!killed) usleep(5000);
	}
	CHECK_MSG(killed, "the aggregator never reached round 2 with an accepted update");
	CHECK_INT_EQ(wait_exit(agg, 10), 128 + SIGKILL);
	agg = spawn_server(&s, port);
	CHECK_INT_EQ(wait_exit(agg, 40), 0);
	for (int k = 0; k < NSITES; k++) CHECK_INT_EQ(wait_exit(sp[k], 20), 10 + 3); /* trained once per round */

	char *got = NULL;
	size_t len = 0;
	snprintf(p, sizeof p, "%s/final.bin", s.dir);
	CHECK_OK(fp_file_read_all(p, 1 << 20, &got, &len));
	CHECK_INT_EQ(len, (D + 1) * sizeof(float));
	CHECK_MSG(memcmp(got, srv.final, len) == 0, "the resumed study's model differs from the uninterrupted one");
	free(got);
	free(srv.init);
	free(srv.final);
	study_teardown(&ref);
	study_teardown(&s);
}

FP_TEST(plan_mismatch_is_refused)
{
	struct study s;
	study_setup(&s, "mismatch", D + 1);
	s.plan.round_deadline_s = 2;
	struct server_run srv;
	pthread_t ts;
	server_prepare(&srv, &s, 0);
	srv.cfg.linger_s = 0;
	volatile int stop = 0;
	srv.cfg.stop = &stop;
	CHECK(pthread_create(&ts, NULL, server_main, &srv) == 0);
	int port = wait_port(&srv);
	CHECK(port > 0);
	struct site_run r;
	site_prepare(&r, &s, 1, port);
	struct fp_study_plan other = s.plan;
	other.local_epochs = 7; /* the site's copy says otherwise */
	r.cfg.plan = &other;
	r.cfg.give_up_s = 3;
	enum fp_status st = fp_agent_run(&r.cfg, &r.stats);
	CHECK(st != FP_OK);
	CHECK_INT_EQ(r.stats.trained, 0);
	CHECK_STATUS(st, FP_ERR_STATE);
	CHECK_STR_CONTAINS(fp_error_msg(), "plan hash differs");
	stop = 1;
	CHECK(pthread_join(ts, NULL) == 0);
	CHECK_STATUS(srv.st, FP_ERR_CANCELLED);
	free(srv.init);
	free(srv.final);
	study_teardown(&s);
}

/* ---- the stream sender the federation uses (fp_stream_tx_send) over a corrupting link ---- */

struct corrupt_io {
	struct fp_io io;
	const struct fp_io *inner;
	int done;
	size_t chunk_len;
};

/* Flips one byte of the first chunk's data on its way out. */
static enum fp_status corrupt_write(void *ctx, const void *buf, size_t len)
{
	struct corrupt_io *c = ctx;
	if (!c->done && len == c->chunk_len) {
		uint8_t *copy = malloc(len);
		CHECK(copy);
		memcpy(copy, buf, len);
		copy[len / 2] ^= 0x40;
		c->done = 1;
		enum fp_status st = c->inner->write(c->inner->ctx, copy, len);
		free(copy);
		return st;
	}
	return c->inner->write(c->inner->ctx, buf, len);
}

static enum fp_status pass_read(void *ctx, void *buf, size_t len)
{
	struct corrupt_io *c = ctx;
	return c->inner->read(c->inner->ctx, buf, len);
}

struct rx_side {
	struct fp_fd_io fio;
	Fedpath__TensorHeader *h;
	uint8_t *got;
	uint64_t resends;
	enum fp_status st;
};

static enum fp_status sink_copy(void *ctx, uint64_t off, const void *d, size_t n, const uint8_t digest[32])
{
	(void)digest;
	memcpy((uint8_t *)ctx + off, d, n);
	return FP_OK;
}

static void *rx_main(void *arg)
{
	struct rx_side *r = arg;
	struct fp_stream_rx *rx = NULL;
	struct fp_frame fr;
	fp_frame_init(&fr);
	r->st = fp_stream_rx_create(r->h, sink_copy, r->got, &rx);
	if (r->st == FP_OK) r->st = fp_stream_rx_recv(rx, &r->fio.io, &fr);
	if (rx) r->resends = fp_stream_rx_resends(rx);
	fp_stream_rx_destroy(rx);
	fp_frame_close(&fr);
	return NULL;
}

FP_TEST(corrupted_chunk_is_detected_and_resent)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	size_t n = (3u << 16) + 1000; /* 4 chunks of 64 KiB, the last short */
	uint8_t *data = malloc(n), *got = calloc(1, n);
	CHECK(data && got);
	for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i * 2654435761u >> 11);
	struct fp_stream_tx *tx = NULL;
	CHECK_OK(fp_stream_tx_create(9, data, n, 64u << 10, &tx));
	Fedpath__TensorHeader h = FEDPATH__TENSOR_HEADER__INIT;
	fp_stream_tx_header(tx, &h);
	struct rx_side r = {.h = &h, .got = got};
	fp_fd_io_init(&r.fio, sv[1]);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, rx_main, &r) == 0);
	struct fp_fd_io fio;
	fp_fd_io_init(&fio, sv[0]);
	struct corrupt_io c = {{NULL, NULL, NULL}, &fio.io, 0, 64u << 10};
	c.io.read = pass_read;
	c.io.write = corrupt_write;
	c.io.ctx = &c;
	struct fp_frame fr;
	fp_frame_init(&fr);
	CHECK_OK(fp_stream_tx_send(tx, &c.io, &fr, 4));
	uint64_t tx_resends = 0;
	fp_stream_tx_stats(tx, NULL, &tx_resends);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(r.st);
	CHECK(c.done);
	CHECK_INT_EQ(tx_resends, 1);
	CHECK_INT_EQ(r.resends, 1);
	CHECK(memcmp(got, data, n) == 0);
	fp_frame_close(&fr);
	fp_stream_tx_destroy(tx);
	close(sv[0]);
	close(sv[1]);
	free(data);
	free(got);
}

/* Connects to the aggregator as H01 and exchanges HELLOs. */
static struct fp_tls_conn *hello_as_h01(struct study *s, int port, struct fp_tls_ctx **ctx, struct fp_frame *fr)
{
	char crt[1300], key[1300], ca[1300], phex[FP_SHA256_HEX_SIZE];
	snprintf(crt, sizeof crt, "%s/H01/H01.crt", s->keys);
	snprintf(key, sizeof key, "%s/H01/H01.key", s->keys);
	snprintf(ca, sizeof ca, "%s/ca.crt", s->tls);
	struct fp_tls_config cfg = {0, ca, crt, key, NULL, NULL, "aggregator.test", 5000, NULL, NULL};
	struct fp_tls_conn *c = NULL;
	ProtobufCMessage *m = NULL;
	if (!*ctx) CHECK_OK(fp_tls_ctx_create(&cfg, ctx));
	CHECK_OK(fp_tls_connect(*ctx, "127.0.0.1", port, &c));
	CHECK_OK(fp_msg_recv(fp_tls_conn_io(c), fr, FP_FRAME_HELLO, &m));
	fp_msg_free(m);
	uint8_t ph[32];
	fp_plan_hash(&s->plan, phex);
	for (int i = 0; i < 32; i++) {
		unsigned v;
		CHECK(sscanf(phex + 2 * i, "%2x", &v) == 1);
		ph[i] = (uint8_t)v;
	}
	Fedpath__Hello h = FEDPATH__HELLO__INIT;
	h.protocol_version = FP_PROTO_VERSION;
	h.site_id = "H01";
	h.role = "site";
	h.config_hash.data = ph;
	h.config_hash.len = 32;
	CHECK_OK(fp_msg_send(fp_tls_conn_io(c), FP_FRAME_HELLO, &h.base));
	return c;
}

FP_TEST(huge_frame_to_the_aggregator_is_refused)
{
	struct study s;
	study_setup(&s, "huge", D + 1);
	struct server_run srv;
	pthread_t ts;
	server_prepare(&srv, &s, 0);
	volatile int stop = 0;
	srv.cfg.stop = &stop;
	CHECK(pthread_create(&ts, NULL, server_main, &srv) == 0);
	int port = wait_port(&srv);
	CHECK(port > 0);
	struct fp_tls_ctx *ctx = NULL;
	struct fp_frame fr;
	fp_frame_init(&fr);
	/* A STATUS header claiming 4 GiB - 1: the session ends, nothing is read. */
	struct fp_tls_conn *c = hello_as_h01(&s, port, &ctx, &fr);
	uint8_t head[FP_FRAME_WIRE_HEADER];
	fp_frame_header_encode(FP_FRAME_STATUS, 0xffffffffu, head);
	CHECK_OK(fp_tls_conn_io(c)->write(fp_tls_conn_io(c)->ctx, head, sizeof head));
	CHECK(fp_frame_recv(fp_tls_conn_io(c), &fr) != FP_OK);
	fp_tls_conn_close(c);
	/* The aggregator still serves: a new connection gets a training task. */
	c = hello_as_h01(&s, port, &ctx, &fr);
	Fedpath__Status poll = FEDPATH__STATUS__INIT;
	poll.state = "poll";
	CHECK_OK(fp_msg_send(fp_tls_conn_io(c), FP_FRAME_STATUS, &poll.base));
	ProtobufCMessage *m = NULL;
	CHECK_OK(fp_msg_recv(fp_tls_conn_io(c), &fr, FP_FRAME_TASK, &m));
	CHECK_STR_EQ(((Fedpath__Task *)m)->kind, "train");
	CHECK_INT_EQ(((Fedpath__Task *)m)->round, 1);
	fp_msg_free(m);
	fp_tls_conn_close(c);
	fp_tls_ctx_destroy(ctx);
	fp_frame_close(&fr);
	stop = 1;
	CHECK(pthread_join(ts, NULL) == 0);
	CHECK_STATUS(srv.st, FP_ERR_CANCELLED);
	free(srv.init);
	free(srv.final);
	study_teardown(&s);
}

/* Sends an UPDATE of `n` floats for `round` from `base` over a fresh
 * connection; returns the status of the aggregator's answer and its text. */
static enum fp_status send_update(struct study *s, int port, struct fp_tls_ctx **ctx, uint64_t round,
                                  const uint8_t base[32], size_t n, char *why, size_t wn)
{
	struct fp_frame fr;
	fp_frame_init(&fr);
	struct fp_tls_conn *c = hello_as_h01(s, port, ctx, &fr);
	const struct fp_io *io = fp_tls_conn_io(c);
	float *delta = calloc(n, sizeof(float));
	CHECK(delta);
	for (size_t j = 0; j < n; j++) delta[j] = 0.001f * (float)j;
	struct fp_stream_tx *tx = NULL;
	CHECK_OK(fp_stream_tx_create(round, delta, n * sizeof(float), 64u << 10, &tx));
	Fedpath__TensorHeader th = FEDPATH__TENSOR_HEADER__INIT;
	fp_stream_tx_header(tx, &th);
	Fedpath__Update u = FEDPATH__UPDATE__INIT;
	u.round = round;
	u.base_model_hash.data = (uint8_t *)base;
	u.base_model_hash.len = 32;
	u.sample_count = 10;
	u.delta = &th;
	enum fp_status st = fp_msg_send(io, FP_FRAME_UPDATE, &u.base);
	if (st == FP_OK) st = fp_stream_tx_send(tx, io, &fr, 4);
	ProtobufCMessage *m = NULL;
	if (st == FP_OK) st = fp_msg_recv(io, &fr, FP_FRAME_STATUS, &m);
	snprintf(why, wn, "%s", st ? fp_error_msg() : "");
	fp_msg_free(m);
	fp_stream_tx_destroy(tx);
	free(delta);
	fp_tls_conn_close(c);
	fp_frame_close(&fr);
	return st;
}

FP_TEST(stale_replayed_and_mismatched_updates_get_an_error)
{
	struct study s;
	study_setup(&s, "reject", D + 1);
	struct server_run srv;
	pthread_t ts;
	server_prepare(&srv, &s, 0);
	volatile int stop = 0;
	srv.cfg.stop = &stop;
	CHECK(pthread_create(&ts, NULL, server_main, &srv) == 0);
	int port = wait_port(&srv);
	CHECK(port > 0);
	/* The round-1 base model is the initial weights. */
	uint8_t base[32], stale[32] = {1};
	CHECK_OK(fp_sha256(srv.init, (D + 1) * sizeof(float), base));
	struct fp_tls_ctx *ctx = NULL;
	char why[1024];
	CHECK(send_update(&s, port, &ctx, 1, stale, D + 1, why, sizeof why) != FP_OK);
	CHECK_STR_CONTAINS(why, "stale");
	CHECK(send_update(&s, port, &ctx, 5, base, D + 1, why, sizeof why) != FP_OK);
	CHECK_STR_CONTAINS(why, "round 5");
	CHECK(send_update(&s, port, &ctx, 1, base, D + 2, why, sizeof why) != FP_OK);
	CHECK_STR_CONTAINS(why, "float32 values");
	CHECK_OK(send_update(&s, port, &ctx, 1, base, D + 1, why, sizeof why));
	CHECK(send_update(&s, port, &ctx, 1, base, D + 1, why, sizeof why) != FP_OK);
	CHECK_STR_CONTAINS(why, "replay");
	fp_tls_ctx_destroy(ctx);
	stop = 1;
	CHECK(pthread_join(ts, NULL) == 0);
	CHECK_STATUS(srv.st, FP_ERR_CANCELLED);
	/* Every refusal is in the aggregator's audit log. */
	char p[1200], *text = NULL;
	size_t len = 0;
	snprintf(p, sizeof p, "%s/audit.jsonl", s.plan.state_dir);
	CHECK_OK(fp_file_read_all(p, 1 << 20, &text, &len));
	int k = 0;
	for (const char *q = text; (q = strstr(q, "update.rejected")); q++) k++;
	CHECK_INT_EQ(k, 4);
	CHECK_STR_CONTAINS(text, "update.accepted");
	free(text);
	free(srv.init);
	free(srv.final);
	study_teardown(&s);
}

/* ---- Part 2 statistics on the wire (fp_part2_fed.h) ---- */

static void p2_stats_example(struct fp_p2_stats *s, const char *site, double shift)
{
	memset(s, 0, sizeof *s);
	s->p = 3;
	s->n_patients = 40;
	snprintf(s->sites, sizeof s->sites, "%s", site);
	const char *names[3] = {"age", "log_afp", "til_intra"};
	for (int j = 0; j < 3; j++) {
		snprintf(s->names[j], FP_P2_NAME_MAX, "%s", names[j]);
		s->count[j] = 40 - j;
		s->sum[j] = 0.1 * (j + 1) + shift; /* not representable exactly: bits must survive */
		s->sumsq[j] = 1.0 / 3.0 + shift * shift;
	}
}

static enum fp_status p2_roundtrip(const Fedpath__Part2Stats *m, struct fp_p2_stats *out, uint32_t *hidden)
{
	size_t n = protobuf_c_message_get_packed_size(&m->base);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) return FP_ERR_NOMEM;
	protobuf_c_message_pack(&m->base, buf);
	Fedpath__Part2Stats *u = fedpath__part2_stats__unpack(NULL, n, buf);
	free(buf);
	if (!u) return FP_ERR_PROTOCOL;
	enum fp_status st = fp_p2fed_stats_from_msg(u, "test", out, hidden);
	fedpath__part2_stats__free_unpacked(u, NULL);
	return st;
}

FP_TEST(part2_statistics_cross_the_wire_bit_exact_and_checked)
{
	static struct fp_p2_stats a, b, got, pooled_direct, pooled_wire;
	static struct fp_p2fed_msg x;
	uint32_t hidden = 0;
	p2_stats_example(&a, "H01", 1e-3);
	p2_stats_example(&b, "H02", 7.0);
	fp_p2fed_msg_init(&x, &a, 16);
	CHECK(p2_roundtrip(&x.m, &got, &hidden) == FP_OK);
	CHECK(hidden == 16);
	CHECK(memcmp(&got, &a, sizeof a) == 0); /* every bit, and the zero padding merge compares */
	/* Merged after the wire in canonical order = merged directly (what MPI does). */
	CHECK(fp_p2_stats_merge(&pooled_direct, &a) == FP_OK);
	CHECK(fp_p2_stats_merge(&pooled_direct, &b) == FP_OK);
	CHECK(fp_p2_stats_merge(&pooled_wire, &got) == FP_OK);
	fp_p2fed_msg_init(&x, &b, 0);
	CHECK(p2_roundtrip(&x.m, &got, NULL) == FP_OK);
	CHECK(fp_p2_stats_merge(&pooled_wire, &got) == FP_OK);
	CHECK(memcmp(&pooled_wire, &pooled_direct, sizeof pooled_direct) == 0);

	/* Refusals: lengths that disagree, too many columns, impossible counts, NaN, long names. */
	fp_p2fed_msg_init(&x, &a, 0);
	x.m.n_sum = 2;
	CHECK(p2_roundtrip(&x.m, &got, NULL) == FP_ERR_PROTOCOL);
	fp_p2fed_msg_init(&x, &a, 0);
	x.m.columns = FP_P2_MAX_COLS + 1;
	CHECK(p2_roundtrip(&x.m, &got, NULL) == FP_ERR_LIMIT);
	fp_p2fed_msg_init(&x, &a, 0);
	x.count[1] = 41; /* more non-missing values than patients */
	CHECK(p2_roundtrip(&x.m, &got, NULL) == FP_ERR_DATA);
	fp_p2fed_msg_init(&x, &a, 0);
	x.sum[2] = NAN;
	CHECK(p2_roundtrip(&x.m, &got, NULL) == FP_ERR_DATA);
	fp_p2fed_msg_init(&x, &a, 0);
	char longname[FP_P2_NAME_MAX + 8];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	x.names[0] = longname;
	CHECK(p2_roundtrip(&x.m, &got, NULL) == FP_ERR_LIMIT);
	fp_p2fed_msg_init(&x, &a, 0);
	x.m.n_patients = 0;
	CHECK(p2_roundtrip(&x.m, &got, NULL) == FP_ERR_DATA);
}

FP_TEST(part2_pooled_statistics_persist_and_reload_exactly)
{
	char dir[] = "/tmp/fp-p2pool-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	static struct fp_p2_stats a, back;
	uint32_t hidden = 0;
	p2_stats_example(&a, "H01,H02", 0.25);
	CHECK(fp_p2fed_pooled_load(dir, &back, &hidden) == FP_ERR_NOT_FOUND);
	CHECK(fp_p2fed_pooled_save(dir, &a, 24) == FP_OK);
	CHECK(fp_p2fed_pooled_load(dir, &back, &hidden) == FP_OK);
	CHECK(hidden == 24);
	CHECK(memcmp(&back, &a, sizeof a) == 0);
	/* A damaged file is refused (checksum), never half-read. */
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, FP_P2FED_POOLED_FILE);
	FILE *f = fopen(path, "r+b");
	CHECK(f != NULL);
	if (f) {
		fseek(f, 100, SEEK_SET);
		fputc(0x5a, f);
		fclose(f);
	}
	CHECK(fp_p2fed_pooled_load(dir, &back, &hidden) != FP_OK);
	unlink(path);
	rmdir(dir);
}

/* ---- results for statisticians (fp_pull.h) ---- */

static void put_file(const char *path, const char *text)
{
	CHECK_OK(fp_file_commit(path, text, strlen(text), 0644));
}

static int same_file(const char *a, const char *b)
{
	char *x = NULL, *y = NULL;
	size_t nx = 0, ny = 0;
	int same = fp_file_read_all(a, 1 << 20, &x, &nx) == FP_OK && fp_file_read_all(b, 1 << 20, &y, &ny) == FP_OK &&
	           nx == ny && memcmp(x, y, nx) == 0;
	free(x);
	free(y);
	return same;
}

static int count_in_file(const char *path, const char *needle)
{
	char *x = NULL;
	size_t n = 0;
	int k = 0;
	if (fp_file_read_all(path, 1 << 24, &x, &n) != FP_OK) return -1;
	for (const char *p = x; (p = strstr(p, needle)) != NULL; p++) k++;
	free(x);
	return k;
}

/* Threads of this process (/proc/self/task): a server that returned has
 * joined every session thread it started. */
static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d) return -1;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.') n++;
	closedir(d);
	return n;
}

FP_TEST(statistician_pulls_results_only_and_sites_cannot_pull)
{
	struct study s;
	study_setup(&s, "pull", D + 1);
	char sdir[600], scrt[1300], skey[1300], ca[1300], h1crt[1300], h1key[1300], res[1300], p[1400];
	snprintf(sdir, sizeof sdir, "%s/S01", s.keys);
	snprintf(scrt, sizeof scrt, "%s/S01.crt", sdir);
	snprintf(skey, sizeof skey, "%s/S01.key", sdir);
	snprintf(ca, sizeof ca, "%s/ca.crt", s.tls);
	snprintf(h1crt, sizeof h1crt, "%s/H01/H01.crt", s.keys);
	snprintf(h1key, sizeof h1key, "%s/H01/H01.key", s.keys);
	enrol(s.tls, sdir, "S01", FP_TLS_ROLE_STATISTICIAN, NULL, scrt);
	struct server_run srv;
	pthread_t ts;
	server_prepare(&srv, &s, 0);
	volatile int stop = 0;
	srv.cfg.stop = &stop;
	srv.cfg.serve_results = 1;
	CHECK(pthread_create(&ts, NULL, server_main, &srv) == 0);
	int port = wait_port(&srv);
	CHECK(port > 0);
	struct fp_pull_config pc = {"S01", "127.0.0.1", port, "aggregator.test", ca, scrt, skey, NULL, 5000};
	char out[1300];
	snprintf(out, sizeof out, "%s/pulled", s.dir);
	/* Nothing pooled yet: refused, nothing written. */
	CHECK(fp_report_pull(&pc, out) != FP_OK);
	CHECK(strstr(fp_error_msg(), "no pooled") != NULL);

	snprintf(res, sizeof res, "%s/results", s.plan.state_dir);
	snprintf(p, sizeof p, "%s/failed", res);
	CHECK_OK(fp_mkdir_p(p, 0755));
	snprintf(p, sizeof p, "%s/pooled.json", res);
	put_file(p, "{\"centres\": 1, \"cindex_stratified\": {\"c\": 0.71}}\n");
	snprintf(p, sizeof p, "%s/site_H01.json", res);
	put_file(p, "{\"centre\": \"H01\", \"n\": 40, \"events\": 12}\n");
	snprintf(p, sizeof p, "%s/failed/H02.json", res);
	put_file(p, "{\"site\": \"H02\", \"error\": {\"code\": \"FP_ERR_DATA\", \"reason\": \"few\"}}\n");
	CHECK_OK(fp_report_pull(&pc, out));
	const char *names[3] = {"pooled.json", "site_H01.json", "failed/H02.json"};
	for (int i = 0; i < 3; i++) {
		char a[1400], b[1400];
		snprintf(a, sizeof a, "%s/%s", res, names[i]);
		snprintf(b, sizeof b, "%s/%s", out, names[i]);
		CHECK(same_file(a, b));
	}
	snprintf(p, sizeof p, "%s/pull.json", out);
	CHECK(access(p, R_OK) == 0);

	/* A site certificate cannot pull. */
	struct fp_pull_config site = {"H01", "127.0.0.1", port, "aggregator.test", ca, h1crt, h1key, NULL, 5000};
	char out2[1300];
	snprintf(out2, sizeof out2, "%s/pulled-by-site", s.dir);
	CHECK_STATUS(fp_report_pull(&site, out2), FP_ERR_AUTH);
	snprintf(p, sizeof p, "%s/pooled.json", out2);
	CHECK(access(p, F_OK) != 0);
	/* Nor can a site asking with its own role. */
	{
		struct fp_tls_ctx *hctx = NULL;
		struct fp_frame hfr;
		ProtobufCMessage *hm = NULL;
		fp_frame_init(&hfr);
		struct fp_tls_conn *hc = hello_as_h01(&s, port, &hctx, &hfr);
		Fedpath__Status pull = FEDPATH__STATUS__INIT;
		pull.state = "pull";
		CHECK_OK(fp_msg_send(fp_tls_conn_io(hc), FP_FRAME_STATUS, &pull.base));
		CHECK_STATUS(fp_msg_recv(fp_tls_conn_io(hc), &hfr, FP_FRAME_STATUS, &hm), FP_ERR_AUTH);
		fp_msg_free(hm);
		fp_tls_conn_close(hc);
		fp_tls_ctx_destroy(hctx);
		fp_frame_close(&hfr);
	}

	/* A statistician cannot train or upload: refused, audited. */
	struct fp_tls_config tc = {0, ca, scrt, skey, NULL, NULL, "aggregator.test", 5000, NULL, NULL};
	struct fp_tls_ctx *ctx = NULL;
	struct fp_tls_conn *c = NULL;
	struct fp_frame fr;
	ProtobufCMessage *m = NULL;
	fp_frame_init(&fr);
	CHECK_OK(fp_tls_ctx_create(&tc, &ctx));
	const char *states[2] = {"poll", NULL};
	for (int k = 0; k < 2; k++) {
		CHECK_OK(fp_tls_connect(ctx, "127.0.0.1", port, &c));
		CHECK_OK(fp_msg_recv(fp_tls_conn_io(c), &fr, FP_FRAME_HELLO, &m));
		fp_msg_free(m);
		m = NULL;
		Fedpath__Hello h = FEDPATH__HELLO__INIT;
		h.protocol_version = FP_PROTO_VERSION;
		h.site_id = "S01";
		h.role = "statistician";
		CHECK_OK(fp_msg_send(fp_tls_conn_io(c), FP_FRAME_HELLO, &h.base));
		if (states[k]) {
			Fedpath__Status poll = FEDPATH__STATUS__INIT;
			poll.state = (char *)states[k];
			CHECK_OK(fp_msg_send(fp_tls_conn_io(c), FP_FRAME_STATUS, &poll.base));
		} else {
			uint8_t dig[32] = {1};
			uint64_t dims[1] = {D + 1};
			Fedpath__TensorHeader th = FEDPATH__TENSOR_HEADER__INIT;
			th.dtype = 1;
			th.n_dims = 1;
			th.dims = dims;
			th.total_bytes = (D + 1) * 4;
			th.chunk_bytes = 64u << 10;
			th.digest.data = dig;
			th.digest.len = 32;
			Fedpath__Update u = FEDPATH__UPDATE__INIT;
			u.round = 1;
			u.base_model_hash.data = dig;
			u.base_model_hash.len = 32;
			u.sample_count = 100;
			u.delta = &th;
			CHECK_OK(fp_msg_send(fp_tls_conn_io(c), FP_FRAME_UPDATE, &u.base));
		}
		CHECK_STATUS(fp_msg_recv(fp_tls_conn_io(c), &fr, FP_FRAME_TASK, &m), FP_ERR_AUTH);
		fp_msg_free(m);
		m = NULL;
		fp_tls_conn_close(c);
	}
	fp_tls_ctx_destroy(ctx);
	fp_frame_close(&fr);
	stop = 1;
	CHECK(pthread_join(ts, NULL) == 0);
	char audit[1300];
	snprintf(audit, sizeof audit, "%s/audit.jsonl", s.plan.state_dir);
	CHECK_INT_EQ(count_in_file(audit, "\"event\":\"access.refused\""), 3); /* site pull, poll, update */
	CHECK(count_in_file(audit, "HELLO claims role 'statistician'") >= 1); /* the site's pull */
	CHECK(count_in_file(audit, "\"event\":\"results.pulled\"") >= 1);
	CHECK(status_round(&s) == 1); /* nothing trained */
	free(srv.init);
	free(srv.final);
	study_teardown(&s);
}

/* A Part 2 study before round 1: the aggregator asks each site for its
 * statistics, refuses malformed ones (audited, nothing kept), keeps valid
 * ones, and has no round open until every site's are in. */
FP_TEST(part2_aggregator_asks_for_statistics_and_refuses_malformed_ones)
{
	struct study s;
	study_setup(&s, "p2stats", D + 1);
	s.plan.model = FP_PLAN_PART2;
	struct server_run srv;
	pthread_t ts;
	server_prepare(&srv, &s, 0);
	volatile int stop = 0;
	srv.cfg.stop = &stop;
	int threads0 = thread_count();
	CHECK(threads0 >= 1);
	CHECK(pthread_create(&ts, NULL, server_main, &srv) == 0);
	int port = wait_port(&srv);
	CHECK(port > 0);
	struct fp_tls_ctx *ctx = NULL;
	struct fp_frame fr;
	ProtobufCMessage *m = NULL;
	fp_frame_init(&fr);
	static struct fp_p2_stats a;
	static struct fp_p2fed_msg x;
	p2_stats_example(&a, "H01", 0.5);
	for (int attempt = 0; attempt < 3; attempt++) {
		struct fp_tls_conn *c = hello_as_h01(&s, port, &ctx, &fr);
		const struct fp_io *io = fp_tls_conn_io(c);
		Fedpath__Status poll = FEDPATH__STATUS__INIT;
		poll.state = "poll";
		CHECK_OK(fp_msg_send(io, FP_FRAME_STATUS, &poll.base));
		CHECK_OK(fp_msg_recv(io, &fr, FP_FRAME_TASK, &m));
		/* Asked until valid statistics are in; then it waits for the others. */
		CHECK_STR_EQ(((Fedpath__Task *)m)->kind, attempt < 2 ? "stats" : "wait");
		fp_msg_free(m);
		m = NULL;
		if (attempt < 2) {
			fp_p2fed_msg_init(&x, &a, 0);
			if (attempt == 0) x.m.n_count = 2; /* three columns, two counts */
			Fedpath__Status sm = FEDPATH__STATUS__INIT;
			sm.state = "stats";
			sm.part2_stats = &x.m;
			CHECK_OK(fp_msg_send(io, FP_FRAME_STATUS, &sm.base));
			enum fp_status st = fp_msg_recv(io, &fr, FP_FRAME_STATUS, &m);
			if (attempt == 0) {
				CHECK(st != FP_OK);
				CHECK(strstr(fp_error_msg(), "part2 statistics from H01") != NULL);
			} else {
				CHECK_OK(st);
				CHECK_STR_EQ(((Fedpath__Status *)m)->state, "accepted");
			}
			fp_msg_free(m);
			m = NULL;
		}
		fp_tls_conn_close(c);
	}
	CHECK(status_round(&s) == 0); /* no round before every site's statistics */
	char p[1300];
	snprintf(p, sizeof p, "%s/%s", s.plan.state_dir, FP_P2FED_POOLED_FILE);
	CHECK(access(p, F_OK) != 0);
	fp_tls_ctx_destroy(ctx);
	fp_frame_close(&fr);
	stop = 1;
	CHECK(pthread_join(ts, NULL) == 0);
	CHECK_STATUS(srv.st, FP_ERR_CANCELLED);
	CHECK_INT_EQ(thread_count(), threads0); /* the three session threads were joined */
	char audit[1300];
	snprintf(audit, sizeof audit, "%s/audit.jsonl", s.plan.state_dir);
	CHECK_INT_EQ(count_in_file(audit, "\"event\":\"update.rejected\""), 1);
	CHECK_INT_EQ(count_in_file(audit, "\"event\":\"part2.stats\""), 1);
	free(srv.init);
	free(srv.final);
	study_teardown(&s);
}
