/*
 * test_aggregator.c: the aggregator's round state (federate/fp_aggregator.h):
 * strategies against independent arithmetic, refusals, order independence,
 * and bit-identical resumption after kill -9 at random moments.
 */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_aggregator.h"
#include "fp_common.h"
#include "fp_stream.h"
#include "fp_test.h"

#define NP 5003 /* not a multiple of any block size */
#define CB 4096 /* the digest geometry (chunks of 1024 values); small chunks cut by hand */

static const char *sites[] = {"H01", "H02", "H03", "H04"};
static const uint64_t samples[] = {120, 80, 200, 40};

/* Site s's deterministic update for a round, from the base model. */
static void make_update(float *d, const float *base, int64_t round, int s)
{
	for (int j = 0; j < NP; j++)
		d[j] = (float)(0.01 * sin(0.37 * (double)round + 1.3 * s + 0.01 * j) - 0.001 * base[j] + 0.002 * s);
}

static void init_model(float *x)
{
	for (int j = 0; j < NP; j++) x[j] = (float)(0.1 * cos(0.05 * j));
}

static char *subdir(const char *name)
{
	static char buf[4][4096];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, 4096, "%s/%s", fp_test_tmpdir(), name);
	return p;
}

/* Sends a whole update in uneven chunks, as a stream would. */
static enum fp_status send(struct fp_aggregator *a, int s, const float *d, uint64_t n)
{
	struct fp_update_intake *u = NULL;
	FP_TRY(fp_update_begin(a, sites[s], fp_aggregator_round(a), fp_aggregator_model_hash(a), n, NP, CB, &u));
	size_t off = 0, chunk = 777;
	while (off < NP) {
		size_t c = NP - off < chunk ? NP - off : chunk;
		enum fp_status st = fp_update_write(u, d + off, c);
		if (st != FP_OK) {
			fp_update_abort(u);
			return st;
		}
		off += c;
		chunk = chunk * 3 / 2;
	}
	return fp_update_finish(u);
}

static void plan_for(struct fp_agg_plan *p, enum fp_agg_strategy s, int quorum)
{
	fp_agg_plan_default(p);
	p->strategy = s;
	p->quorum = quorum;
}

/* "fedavg: base + sum_i n_i d_i / sum_i n_i" (the federation test of issue 8
 * computes the same independently) */
FP_TEST(fedavg_equals_weighted_mean)
{
	static float base[NP], d[4][NP], got[NP];
	struct fp_agg_plan plan;
	plan_for(&plan, FP_AGG_FEDAVG, 3);
	init_model(base);
	struct fp_aggregator *a = NULL;
	CHECK_OK(fp_aggregator_open(subdir("avg"), &plan, base, NP, &a));
	CHECK_INT_EQ(fp_aggregator_round(a), 1);
	for (int s = 0; s < 3; s++) {
		make_update(d[s], base, 1, s);
		CHECK_OK(send(a, s, d[s], samples[s]));
	}
	struct fp_round_result r;
	CHECK_OK(fp_aggregator_close_round(a, &r));
	CHECK_INT_EQ(r.round, 1);
	CHECK_INT_EQ(r.n_sites, 3);
	CHECK_INT_EQ(r.total_samples, 400);
	CHECK_INT_EQ(fp_aggregator_round(a), 2);
	CHECK_OK(fp_aggregator_model(a, got));
	for (int j = 0; j < NP; j++) {
		double want = base[j];
		for (int s = 0; s < 3; s++) want += (double)samples[s] * d[s][j] / 400.0;
		CHECK_NEAR(got[j], want, 1e-7, 1e-6);
	}
	CHECK_STR_EQ(fp_aggregator_model_hash(a), r.model_hash);
	fp_aggregator_destroy(a);
}

/* "the result does not depend on arrival order" */
FP_TEST(result_independent_of_arrival_order)
{
	static float base[NP], d[4][NP];
	struct fp_agg_plan plan;
	plan_for(&plan, FP_AGG_FEDAVG, 4);
	init_model(base);
	for (int s = 0; s < 4; s++) make_update(d[s], base, 1, s);
	struct fp_aggregator *a = NULL, *b = NULL;
	CHECK_OK(fp_aggregator_open(subdir("a"), &plan, base, NP, &a));
	CHECK_OK(fp_aggregator_open(subdir("b"), &plan, base, NP, &b));
	int order_b[4] = {3, 1, 0, 2};
	for (int s = 0; s < 4; s++) {
		CHECK_OK(send(a, s, d[s], samples[s]));
		CHECK_OK(send(b, order_b[s], d[order_b[s]], samples[order_b[s]]));
	}
	struct fp_round_result ra, rb;
	CHECK_OK(fp_aggregator_close_round(a, &ra));
	CHECK_OK(fp_aggregator_close_round(b, &rb));
	CHECK_STR_EQ(ra.model_hash, rb.model_hash);
	fp_aggregator_destroy(a);
	fp_aggregator_destroy(b);
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) return 0;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.') n++;
	closedir(d);
	return n;
}

/* "an update is accepted only whole ... anything else is refused with a
 * message naming the site and the reason, and leaves no file behind" */
FP_TEST(refusals_name_site_and_reason)
{
	static float base[NP], d[NP];
	struct fp_agg_plan plan;
	plan_for(&plan, FP_AGG_FEDAVG, 2);
	init_model(base);
	make_update(d, base, 1, 0);
	struct fp_aggregator *a = NULL;
	const char *dir = subdir("refuse");
	CHECK_OK(fp_aggregator_open(dir, &plan, base, NP, &a));
	struct fp_update_intake *u = NULL;
	const char *h = fp_aggregator_model_hash(a);
	CHECK_STATUS(fp_update_begin(a, "H01", 2, h, 10, NP, CB, &u), FP_ERR_STATE);
	CHECK_STR_CONTAINS(fp_error_msg(), "H01");
	CHECK_STR_CONTAINS(fp_error_msg(), "round 2");
	CHECK_STATUS(fp_update_begin(a, "H01", 1, "00ff", 10, NP, CB, &u), FP_ERR_STATE);
	CHECK_STR_CONTAINS(fp_error_msg(), "stale");
	CHECK_STATUS(fp_update_begin(a, "H01", 1, h, 10, NP - 1, CB, &u), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "parameters");
	CHECK_STATUS(fp_update_begin(a, "../etc", 1, h, 10, NP, CB, &u), FP_ERR_INVALID_ARG);
	CHECK_STATUS(fp_update_begin(a, "H01", 1, h, 0, NP, CB, &u), FP_ERR_INVALID_ARG);
	/* NaN in the stream */
	CHECK_OK(fp_update_begin(a, "H02", 1, h, 10, NP, CB, &u));
	float bad[3] = {1, NAN, 2};
	CHECK_STATUS(fp_update_write(u, bad, 3), FP_ERR_NUMERIC);
	CHECK_STR_CONTAINS(fp_error_msg(), "H02");
	CHECK_STR_CONTAINS(fp_error_msg(), "NaN");
	fp_update_abort(u);
	/* infinite value */
	CHECK_OK(fp_update_begin(a, "H02", 1, h, 10, NP, CB, &u));
	bad[1] = INFINITY;
	CHECK_STATUS(fp_update_write(u, bad, 3), FP_ERR_NUMERIC);
	fp_update_abort(u);
	/* too short */
	CHECK_OK(fp_update_begin(a, "H03", 1, h, 10, NP, CB, &u));
	CHECK_OK(fp_update_write(u, d, 100));
	CHECK_STATUS(fp_update_finish(u), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "ended after 100");
	/* too long */
	CHECK_OK(fp_update_begin(a, "H03", 1, h, 10, NP, CB, &u));
	CHECK_OK(fp_update_write(u, d, NP));
	CHECK_STATUS(fp_update_write(u, d, 1), FP_ERR_FORMAT);
	fp_update_abort(u);
	CHECK_INT_EQ(count_files(subdir("refuse/updates")), 0);
	/* accepted once, then a replay is refused */
	CHECK_OK(send(a, 0, d, 10));
	CHECK_STATUS(send(a, 0, d, 10), FP_ERR_STATE);
	CHECK_STR_CONTAINS(fp_error_msg(), "replay");
	CHECK_INT_EQ(count_files(subdir("refuse/updates")), 1);
	/* below quorum */
	CHECK_STATUS(fp_aggregator_close_round(a, NULL), FP_ERR_STATE);
	CHECK_STR_CONTAINS(fp_error_msg(), "quorum");
	fp_aggregator_destroy(a);
	/* rejections are journaled */
	char *text = NULL;
	size_t len;
	char jp[4200];
	snprintf(jp, sizeof jp, "%s/journal.jsonl", dir);
	CHECK_OK(fp_file_read_all(jp, 1 << 20, &text, &len));
	CHECK_STR_CONTAINS(text, "\"event\":\"rejected\"");
	free(text);
}

/* Robust strategies and the norm bound against independent arithmetic. */
FP_TEST(robust_strategies_and_norm_bound)
{
	static float base[NP], d[4][NP], got[NP];
	init_model(base);
	for (int s = 0; s < 4; s++) make_update(d[s], base, 1, s);
	/* make H04 an outlier */
	for (int j = 0; j < NP; j++) d[3][j] += 5.0f;
	enum fp_agg_strategy strategies[] = {FP_AGG_MEDIAN, FP_AGG_TRIMMED_MEAN};
	for (int t = 0; t < 2; t++) {
		struct fp_agg_plan plan;
		plan_for(&plan, strategies[t], 4);
		plan.trim_fraction = 0.25;
		struct fp_aggregator *a = NULL;
		CHECK_OK(fp_aggregator_open(subdir(t ? "trim" : "median"), &plan, base, NP, &a));
		for (int s = 0; s < 4; s++) CHECK_OK(send(a, s, d[s], samples[s]));
		CHECK_OK(fp_aggregator_close_round(a, NULL));
		CHECK_OK(fp_aggregator_model(a, got));
		for (int j = 0; j < NP; j++) {
			float v[4] = {d[0][j], d[1][j], d[2][j], d[3][j]};
			for (int x = 0; x < 4; x++) /* sort 4 values */
				for (int y = x + 1; y < 4; y++)
					if (v[y] < v[x]) {
						float tmp = v[x];
						v[x] = v[y];
						v[y] = tmp;
					}
			double mid = ((double)v[1] + v[2]) / 2; /* median of 4 == trimmed mean with 1 dropped each side */
			CHECK_NEAR(got[j], base[j] + mid, 1e-6, 1e-6);
		}
		fp_aggregator_destroy(a);
	}
	/* norm bound: every update scaled to at most the bound */
	struct fp_agg_plan plan;
	plan_for(&plan, FP_AGG_FEDAVG, 2);
	plan.norm_bound = 1.0;
	struct fp_aggregator *a = NULL;
	CHECK_OK(fp_aggregator_open(subdir("clip"), &plan, base, NP, &a));
	CHECK_OK(send(a, 0, d[0], 1));
	CHECK_OK(send(a, 3, d[3], 1));
	struct fp_round_result r;
	CHECK_OK(fp_aggregator_close_round(a, &r));
	CHECK_INT_EQ(r.n_clipped, 1);
	CHECK_OK(fp_aggregator_model(a, got));
	double n3 = 0;
	for (int j = 0; j < NP; j++) n3 += (double)d[3][j] * d[3][j];
	n3 = sqrt(n3);
	for (int j = 0; j < NP; j += 97) CHECK_NEAR(got[j], base[j] + 0.5 * (d[0][j] + d[3][j] / n3), 1e-6, 1e-5);
	fp_aggregator_destroy(a);
}

/* FedAdam: one round from zero moments, against the formula. */
FP_TEST(fedadam_server_step)
{
	static float base[NP], d[2][NP], got[NP];
	init_model(base);
	for (int s = 0; s < 2; s++) make_update(d[s], base, 1, s);
	struct fp_agg_plan plan;
	plan_for(&plan, FP_AGG_FEDADAM, 2);
	struct fp_aggregator *a = NULL;
	CHECK_OK(fp_aggregator_open(subdir("adam"), &plan, base, NP, &a));
	CHECK_OK(send(a, 0, d[0], samples[0]));
	CHECK_OK(send(a, 1, d[1], samples[1]));
	CHECK_OK(fp_aggregator_close_round(a, NULL));
	CHECK_OK(fp_aggregator_model(a, got));
	for (int j = 0; j < NP; j += 13) {
		double g = (samples[0] * (double)d[0][j] + samples[1] * (double)d[1][j]) / 200.0;
		double m = 0.1 * g, v = 0.01 * g * g;
		CHECK_NEAR(got[j], base[j] + 0.01 * m / (sqrt(v) + 1e-3), 1e-6, 1e-4);
	}
	fp_aggregator_destroy(a);
}

/* Runs a whole 4-round, 3-site study in dir, resuming whatever is there. */
static void run_study(const char *dir, enum fp_agg_strategy strategy)
{
	static float base[NP], d[NP];
	struct fp_agg_plan plan;
	plan_for(&plan, strategy, 3);
	init_model(base);
	struct fp_aggregator *a = NULL;
	if (fp_aggregator_open(dir, &plan, base, NP, &a) != FP_OK) {
		fprintf(stderr, "open: %s\n", fp_error_msg());
		_exit(4);
	}
	while (fp_aggregator_round(a) <= 4) {
		fp_aggregator_model(a, base);
		for (int s = 0; s < 3; s++) {
			if (fp_aggregator_has_update(a, sites[s])) continue; /* no site retrains */
			make_update(d, base, fp_aggregator_round(a), s);
			if (send(a, s, d, samples[s]) != FP_OK) {
				fprintf(stderr, "send: %s\n", fp_error_msg());
				_exit(5);
			}
		}
		if (fp_aggregator_close_round(a, NULL) != FP_OK) {
			fprintf(stderr, "close: %s\n", fp_error_msg());
			_exit(6);
		}
	}
	fp_aggregator_destroy(a);
}

static void final_hash(const char *dir, enum fp_agg_strategy strategy, char *out)
{
	struct fp_agg_plan plan;
	plan_for(&plan, strategy, 3);
	struct fp_aggregator *a = NULL;
	CHECK_OK(fp_aggregator_open(dir, &plan, NULL, NP, &a));
	CHECK_INT_EQ(fp_aggregator_round(a), 5);
	snprintf(out, FP_SHA256_HEX_SIZE, "%s", fp_aggregator_model_hash(a));
	fp_aggregator_destroy(a);
}

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* "reopening the folder after kill -9 at any moment resumes ... and finishing
 * the study gives a model bit-identical to an uninterrupted run" */
static void kill_and_resume(enum fp_agg_strategy strategy, const char *tag)
{
	char ref[FP_SHA256_HEX_SIZE], got[FP_SHA256_HEX_SIZE];
	char name[64];
	snprintf(name, sizeof name, "%s-ref", tag);
	const char *refdir = subdir(name);
	fp_log_configure(&(struct fp_log_options){FP_LOG_WARN, 0, NULL, 0});
	run_study(refdir, strategy);
	final_hash(refdir, strategy, ref);
	/* Kills land anywhere in the first 90 % of an uninterrupted run, timed
	 * the way the trials run (a forked process), and the window shrinks to
	 * 90 % of any trial that finished before its kill: a machine faster or
	 * warmer than the timing run still gets its kills inside the work. */
	snprintf(name, sizeof name, "%s-timing", tag);
	const char *timing = subdir(name);
	double t0 = now_us();
	pid_t tp = fork();
	CHECK(tp >= 0);
	if (tp == 0) {
		run_study(timing, strategy);
		_exit(0);
	}
	int tstatus;
	waitpid(tp, &tstatus, 0);
	CHECK(WIFEXITED(tstatus) && WEXITSTATUS(tstatus) == 0);
	long span_us = (long)((now_us() - t0) * 0.9);
	if (span_us < 200) span_us = 200;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	int interrupted = 0, trial;
	/* At least 12 trials and 8 interrupted runs (bounded at 60 trials). */
	for (trial = 0; trial < 60 && (trial < 12 || interrupted < 8); trial++) {
		snprintf(name, sizeof name, "%s-%d", tag, trial);
		const char *dir = subdir(name);
		/* Up to three kills per trial, then let it finish. */
		for (int kills = 0; kills < 3; kills++) {
			double started = now_us();
			pid_t pid = fork();
			CHECK(pid >= 0);
			if (pid == 0) {
				run_study(dir, strategy);
				_exit(0);
			}
			long us = rand() % span_us;
			struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
			nanosleep(&ts, NULL);
			kill(pid, SIGKILL);
			int status;
			waitpid(pid, &status, 0);
			if (WIFEXITED(status)) {
				CHECK_MSG(WEXITSTATUS(status) == 0, "study process failed with %d", WEXITSTATUS(status));
				long ran = (long)((now_us() - started) * 0.9);
				if (ran < span_us) span_us = ran < 200 ? 200 : ran;
				break;
			}
			interrupted++;
		}
		run_study(dir, strategy); /* resume to the end in this process */
		final_hash(dir, strategy, got);
		CHECK_MSG(strcmp(got, ref) == 0, "trial %d: resumed model %s differs from uninterrupted %s", trial, got, ref);
	}
	fprintf(stderr, "%s: %d kills landed over %d trials (window %ld us)\n", tag, interrupted, trial, span_us);
	CHECK_MSG(interrupted >= 8, "only %d of %d runs were interrupted: the test did not exercise crashes", interrupted, trial);
}

FP_TEST(kill9_resume_bit_identical_fedavg) { kill_and_resume(FP_AGG_FEDAVG, "kavg"); }
FP_TEST(kill9_resume_bit_identical_fedyogi) { kill_and_resume(FP_AGG_FEDYOGI, "kyogi"); }

/* "a torn last journal line is dropped with a warning; any other damage ...
 * refuses to open, naming the file" */
FP_TEST(torn_journal_and_damaged_model)
{
	const char *dir = subdir("torn");
	run_study(dir, FP_AGG_FEDAVG);
	char jp[4200], mp[4200];
	snprintf(jp, sizeof jp, "%s/journal.jsonl", dir);
	FILE *f = fopen(jp, "a");
	fputs("{\"event\":\"received\",\"round\":5,\"si", f);
	fclose(f);
	char h[FP_SHA256_HEX_SIZE];
	final_hash(dir, FP_AGG_FEDAVG, h); /* opens fine */
	/* a different plan is refused */
	struct fp_agg_plan plan;
	plan_for(&plan, FP_AGG_MEDIAN, 3);
	struct fp_aggregator *a = NULL;
	CHECK_STATUS(fp_aggregator_open(dir, &plan, NULL, NP, &a), FP_ERR_STATE);
	CHECK_STR_CONTAINS(fp_error_msg(), "strategy");
	/* a damaged model file is refused */
	snprintf(mp, sizeof mp, "%s/models/round-000004.fpm", dir);
	f = fopen(mp, "r+b");
	fseek(f, 100, SEEK_SET);
	fputc(0x5a, f);
	fclose(f);
	plan_for(&plan, FP_AGG_FEDAVG, 3);
	CHECK_STATUS(fp_aggregator_open(dir, &plan, NULL, NP, &a), FP_ERR_CHECKSUM);
	CHECK_STR_CONTAINS(fp_error_msg(), "round-000004.fpm");
}

/* "One aggregator per study folder": a second one opened on a folder in use
 * is refused, naming the lock; once the first is closed it opens and resumes. */
FP_TEST(second_aggregator_on_a_folder_is_refused)
{
	const char *dir = subdir("twice");
	struct fp_agg_plan plan;
	plan_for(&plan, FP_AGG_FEDAVG, 2);
	float x[NP];
	init_model(x);
	struct fp_aggregator *a = NULL, *b = NULL;
	CHECK_OK(fp_aggregator_open(dir, &plan, x, NP, &a));
	CHECK_STATUS(fp_aggregator_open(dir, &plan, NULL, NP, &b), FP_ERR_STATE);
	CHECK(b == NULL);
	CHECK_STR_CONTAINS(fp_error_msg(), ".aggregate.lock");
	CHECK_STR_CONTAINS(fp_error_msg(), "in use");
	fp_aggregator_destroy(a);
	CHECK_OK(fp_aggregator_open(dir, &plan, NULL, NP, &b));
	CHECK_INT_EQ(fp_aggregator_round(b), 1);
	fp_aggregator_destroy(b);
}

/* fp_stream.h's tensor digest of an NP-value update cut in CB-byte chunks. */
static void stream_digest(const float *d, char hex[FP_SHA256_HEX_SIZE])
{
	uint8_t dg[(NP * 4 + CB - 1) / CB][32], t[32];
	size_t n = 0;
	for (size_t off = 0; off < NP * 4; off += CB, n++)
		CHECK_OK(fp_sha256((const uint8_t *)d + off, NP * 4 - off < CB ? NP * 4 - off : CB, dg[n]));
	CHECK_OK(fp_stream_tensor_digest(NP * 4, CB, &dg[0][0], n, t));
	fp_hex_encode(t, 32, hex);
}

/* The journal records an update by the tensor digest its stream announced
 * (fp_stream.h), whether the bytes were hashed by the intake or came as
 * chunks the stream had checked; an update changed on disk between a crash
 * and the close is caught against that digest. */
FP_TEST(update_digest_is_the_stream_digest_and_checked_after_restart)
{
	static float base[NP], d0[NP], d1[NP];
	struct fp_agg_plan plan;
	plan_for(&plan, FP_AGG_FEDAVG, 2);
	init_model(base);
	make_update(d0, base, 1, 0);
	make_update(d1, base, 1, 1);
	const char *dir = subdir("digest");
	struct fp_aggregator *a = NULL;
	CHECK_OK(fp_aggregator_open(dir, &plan, base, NP, &a));
	/* what fp_stream_tx_create would announce (its chunks are >= 64 KiB) */
	char x0[FP_SHA256_HEX_SIZE], x1[FP_SHA256_HEX_SIZE];
	stream_digest(d0, x0);
	stream_digest(d1, x1);
	/* H01: values in uneven spans, hashed by the intake */
	CHECK_OK(send(a, 0, d0, samples[0]));
	/* H02: whole chunks with their digests, as a stream's sink passes them */
	struct fp_update_intake *u = NULL;
	CHECK_OK(fp_update_begin(a, sites[1], 1, fp_aggregator_model_hash(a), samples[1], NP, CB, &u));
	for (size_t off = 0; off < sizeof d1; off += CB) {
		size_t len = sizeof d1 - off < CB ? sizeof d1 - off : CB;
		uint8_t dg[32];
		CHECK_OK(fp_sha256((const uint8_t *)d1 + off, len, dg));
		CHECK_OK(fp_update_write_chunk(u, (const uint8_t *)d1 + off, len, dg));
	}
	CHECK_OK(fp_update_seal(u));
	CHECK_STR_EQ(fp_update_digest(u), x1);
	CHECK_OK(fp_update_finish(u));
	fp_aggregator_destroy(a);
	char jp[4200], *text = NULL;
	size_t len = 0;
	snprintf(jp, sizeof jp, "%s/journal.jsonl", dir);
	CHECK_OK(fp_file_read_all(jp, 1 << 20, &text, &len));
	CHECK_STR_CONTAINS(text, x0);
	CHECK_STR_CONTAINS(text, x1);
	free(text);
	/* "restart", with H02's file changed by one bit: the close refuses it */
	char up[4200];
	snprintf(up, sizeof up, "%s/updates/H02.upd", dir);
	FILE *f = fopen(up, "r+b");
	CHECK(f);
	fseek(f, 4 * 3000 + 1, SEEK_SET);
	int c = fgetc(f);
	fseek(f, 4 * 3000 + 1, SEEK_SET);
	fputc(c ^ 0x01, f);
	fclose(f);
	CHECK_OK(fp_aggregator_open(dir, &plan, NULL, NP, &a));
	CHECK_INT_EQ(fp_aggregator_n_accepted(a), 2);
	CHECK_STATUS(fp_aggregator_close_round(a, NULL), FP_ERR_CHECKSUM);
	CHECK_STR_CONTAINS(fp_error_msg(), "H02");
	/* restored, it closes */
	f = fopen(up, "r+b");
	fseek(f, 4 * 3000 + 1, SEEK_SET);
	fputc(c, f);
	fclose(f);
	CHECK_OK(fp_aggregator_close_round(a, NULL));
	fp_aggregator_destroy(a);
}

FP_TEST(chunk_off_the_cutting_is_refused)
{
	static float base[NP];
	struct fp_agg_plan plan;
	plan_for(&plan, FP_AGG_FEDAVG, 1);
	init_model(base);
	struct fp_aggregator *a = NULL;
	CHECK_OK(fp_aggregator_open(subdir("cutting"), &plan, base, NP, &a));
	struct fp_update_intake *u = NULL;
	uint8_t dg[32] = {0};
	CHECK_OK(fp_update_begin(a, "H01", 1, fp_aggregator_model_hash(a), 5, NP, CB, &u));
	CHECK_STATUS(fp_update_write_chunk(u, base, CB / 2, dg), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "H01");
	CHECK_OK(fp_update_write(u, base, 10));
	CHECK_STATUS(fp_update_write_chunk(u, base + 10, CB, dg), FP_ERR_FORMAT);
	fp_update_abort(u);
	fp_aggregator_destroy(a);
}

/* keep_models N: round 0 and the last N global models stay, the others go;
 * server moments only for the last closed round; the study still resumes and
 * ends at the same model as one that kept everything. */
FP_TEST(keep_models_prunes_old_rounds)
{
	static float base[NP], d[NP];
	const char *dirs[2] = {subdir("keep-all"), subdir("keep-2")};
	char hash[2][FP_SHA256_HEX_SIZE];
	for (int k = 0; k < 2; k++) {
		struct fp_agg_plan plan;
		plan_for(&plan, FP_AGG_FEDADAM, 2);
		plan.keep_models = k ? 2 : 0;
		init_model(base);
		struct fp_aggregator *a = NULL;
		CHECK_OK(fp_aggregator_open(dirs[k], &plan, base, NP, &a));
		while (fp_aggregator_round(a) <= 5) {
			if (fp_aggregator_round(a) == 3) { /* a restart in the middle */
				fp_aggregator_destroy(a);
				CHECK_OK(fp_aggregator_open(dirs[k], &plan, NULL, NP, &a));
			}
			fp_aggregator_model(a, base);
			for (int s = 0; s < 2; s++) {
				make_update(d, base, fp_aggregator_round(a), s);
				CHECK_OK(send(a, s, d, samples[s]));
			}
			CHECK_OK(fp_aggregator_close_round(a, NULL));
		}
		snprintf(hash[k], sizeof hash[k], "%s", fp_aggregator_model_hash(a));
		fp_aggregator_destroy(a);
	}
	CHECK_STR_EQ(hash[0], hash[1]);
	char models[4200];
	snprintf(models, sizeof models, "%s/models", dirs[0]);
	CHECK_INT_EQ(count_files(models), 7); /* rounds 0-5 + the last moments */
	snprintf(models, sizeof models, "%s/models", dirs[1]);
	CHECK_INT_EQ(count_files(models), 4); /* rounds 0, 4, 5 + the last moments */
	char p[4300];
	struct stat sb;
	snprintf(p, sizeof p, "%s/round-000000.fpm", models);
	CHECK(stat(p, &sb) == 0);
	snprintf(p, sizeof p, "%s/round-000004.fpm", models);
	CHECK(stat(p, &sb) == 0);
	snprintf(p, sizeof p, "%s/round-000003.fpm", models);
	CHECK(stat(p, &sb) != 0);
	snprintf(p, sizeof p, "%s/server-000005.fpo", models);
	CHECK(stat(p, &sb) == 0);
}
