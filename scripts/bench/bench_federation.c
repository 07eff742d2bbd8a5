/*
 * bench_federation.c: the site side of scripts/bench/bench_federation.sh (the
 * fedpath half of the Flower side-by-side of issue 8 item 9). Not a test and
 * not production code: its "trainer" is bench-only.
 *
 *   bench_federation init OUT.f32 P
 *       writes P float32 values (i % 1000) * 1e-3, the model both sides send
 *       (bench_flower.py builds the same array).
 *   bench_federation server PLAN TLS_DIR INIT.f32
 *       the aggregator through fp_server_run (what `fedpath aggregate` runs),
 *       except that the round-0 model is a read-only file mapping released
 *       (madvise DONTNEED) once the server listens: fp_server_run reads
 *       cfg->init only while opening a new state folder. `fedpath aggregate`
 *       keeps its copy of the file for the whole run; the difference in peak
 *       RSS is what releasing it would save. Logs like `fedpath aggregate
 *       --log-level info` on stderr, port 0 (the log names the port).
 *   bench_federation sites PLAN PKI_DIR PORT K P
 *       forks K site agents (separate processes, fp_agent_run over mutual TLS
 *       to 127.0.0.1:PORT), sites S01..SK with PKI_DIR/ca.crt,
 *       PKI_DIR/SNN/SNN.crt and .key, server name aggregator.bench.
 *
 * The bench trainer returns what it received: fedpath sites upload a delta
 * (new - received), so "unchanged" is a zero delta of P floats, 1 sample;
 * the bytes on the wire are the same as a full model.
 * Output of `sites`, one line each (times are CLOCK_REALTIME in ms since the
 * epoch, comparable with the aggregator's UTC log timestamps):
 *   launch_ms T             just before the first fork (every agent dials at once)
 *   train S ROUND AT_MS DUR_S   a site's trainer was called (model received whole)
 *   site S rc STATUS tasks N trained N uploaded N reconnects N
 *   rss S KB cpu_s SECONDS  that agent process's peak RSS and CPU time (wait4)
 * Exit 0 when every agent ended with FP_OK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_agent.h"
#include "fp_common.h"
#include "fp_server.h"

#define MAX_SITES 64

static double wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct bench_trainer {
	const char *site;
	size_t n;   /* parameters */
	int out_fd; /* the pipe to the parent */
};

/* Bench-only: writes a zero delta (the site returns the model unchanged). */
static enum fp_status zero_train(void *ctx, const float *weights, int64_t round, const struct fp_study_plan *plan,
                                 float *update, uint64_t *n_samples, double *loss)
{
	struct bench_trainer *b = ctx;
	(void)weights;
	(void)plan;
	double t0 = wall_ms();
	memset(update, 0, b->n * sizeof(float)); /* out: (n) */
	*n_samples = 1;
	*loss = 0.0;
	char line[160];
	int len = snprintf(line, sizeof line, "train %s %lld %.3f %.6f\n", b->site, (long long)round, t0,
	                   (wall_ms() - t0) / 1e3);
	if (write(b->out_fd, line, (size_t)len) != len) return FP_FAIL(FP_ERR_IO, "bench: pipe write failed");
	return FP_OK;
}

static int run_site(const struct fp_study_plan *plan, const char *pki, int port, int idx, size_t p, int out_fd)
{
	char site[16], crt[4200], key[4200], ca[4200];
	snprintf(site, sizeof site, "S%02d", idx);
	snprintf(ca, sizeof ca, "%s/ca.crt", pki);
	snprintf(crt, sizeof crt, "%s/%s/%s.crt", pki, site, site);
	snprintf(key, sizeof key, "%s/%s/%s.key", pki, site, site);
	struct bench_trainer b = {site, p, out_fd};
	struct fp_local_trainer tr = {&b, p, NULL, zero_train};
	struct fp_agent_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.site_id = site;
	cfg.plan = plan;
	cfg.trainer = &tr;
	cfg.host = "127.0.0.1";
	cfg.port = port;
	cfg.server_name = "aggregator.bench";
	cfg.ca_file = ca;
	cfg.cert_file = crt;
	cfg.key_file = key;
	cfg.io_timeout_ms = 120000; /* 15 sites x 100 MB share two cores */
	cfg.backoff_initial_s = 0.2;
	cfg.backoff_max_s = 2;
	cfg.give_up_s = 300;
	struct fp_agent_stats s;
	memset(&s, 0, sizeof s);
	enum fp_status st = fp_agent_run(&cfg, &s);
	char line[400];
	int len = snprintf(line, sizeof line, "site %s rc %s tasks %lld trained %lld uploaded %lld reconnects %lld%s%s\n",
	                   site, st == FP_OK ? "ok" : "failed", (long long)s.tasks, (long long)s.trained,
	                   (long long)s.uploaded, (long long)s.reconnects, st == FP_OK ? "" : " error: ",
	                   st == FP_OK ? "" : fp_error_msg());
	if (len > (int)sizeof line - 1) len = (int)sizeof line - 1;
	if (write(out_fd, line, (size_t)len) != len) return 1;
	return st == FP_OK ? 0 : 1;
}

static int cmd_init(const char *path, size_t p)
{
	FILE *f = fopen(path, "wb");
	if (!f) return 1;
	float buf[4096];
	for (size_t off = 0; off < p; off += 4096) {
		size_t c = p - off < 4096 ? p - off : 4096;
		for (size_t i = 0; i < c; i++) buf[i] = (float)((off + i) % 1000) * 1e-3f;
		if (fwrite(buf, sizeof(float), c, f) != c) {
			fclose(f);
			return 1;
		}
	}
	return fclose(f) == 0 ? 0 : 1;
}

struct mapped {
	void *p;
	size_t len;
};

static void release_init(void *arg, int port)
{
	struct mapped *m = arg;
	(void)port;
	madvise(m->p, m->len, MADV_DONTNEED); /* clean file pages: dropped from RSS, re-read if touched */
}

static int cmd_server(const char *plan_path, const char *tls_dir, const char *init_path)
{
	fp_log_configure(&(struct fp_log_options){FP_LOG_INFO, 0, NULL, 0});
	struct fp_study_plan plan;
	if (fp_plan_load(plan_path, &plan) != FP_OK) {
		fprintf(stderr, "bench_federation: %s\n", fp_error_msg());
		return 1;
	}
	int fd = open(init_path, O_RDONLY);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size <= 0 || sb.st_size % 4 != 0) {
		fprintf(stderr, "bench_federation: %s: not a float32 file\n", init_path);
		return 1;
	}
	struct mapped m = {mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0), (size_t)sb.st_size};
	close(fd);
	if (m.p == MAP_FAILED) return 1;
	struct fp_server_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.plan = &plan;
	cfg.tls_dir = tls_dir;
	cfg.init = m.p;
	cfg.n_params = m.len / sizeof(float);
	cfg.port = 0;
	cfg.linger_s = 60;
	cfg.on_listening = release_init;
	cfg.arg = &m;
	struct fp_server_result res;
	enum fp_status st = fp_server_run(&cfg, NULL, &res);
	munmap(m.p, m.len);
	if (st != FP_OK) {
		fprintf(stderr, "bench_federation: %s\n", fp_error_msg());
		return 1;
	}
	printf("%lld rounds done, model %s\n", (long long)res.rounds_done, res.model_hash);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "server") == 0) return cmd_server(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "init") == 0) return cmd_init(argv[2], (size_t)strtoull(argv[3], NULL, 10));
	if (argc != 7 || strcmp(argv[1], "sites") != 0) {
		fprintf(stderr, "usage: bench_federation init OUT.f32 P\n"
		                "       bench_federation server PLAN TLS_DIR INIT.f32\n"
		                "       bench_federation sites PLAN PKI_DIR PORT K P\n");
		return 2;
	}
	int port = atoi(argv[4]), k = atoi(argv[5]);
	size_t p = (size_t)strtoull(argv[6], NULL, 10);
	if (k < 1 || k > MAX_SITES || p == 0 || port <= 0) {
		fprintf(stderr, "bench_federation: K must be 1..%d, P > 0, PORT > 0\n", MAX_SITES);
		return 2;
	}
	fp_log_configure(&(struct fp_log_options){FP_LOG_WARN, 0, NULL, 0});
	struct fp_study_plan plan;
	if (fp_plan_load(argv[2], &plan) != FP_OK) {
		fprintf(stderr, "bench_federation: %s\n", fp_error_msg());
		return 1;
	}
	int fds[2];
	if (pipe(fds) != 0) return 1;
	pid_t pids[MAX_SITES];
	printf("launch_ms %.3f\n", wall_ms());
	fflush(stdout);
	for (int i = 0; i < k; i++) {
		pids[i] = fork();
		if (pids[i] < 0) return 1;
		if (pids[i] == 0) {
			close(fds[0]);
			_exit(run_site(&plan, argv[3], port, i + 1, p, fds[1]));
		}
	}
	close(fds[1]);
	FILE *in = fdopen(fds[0], "r");
	char line[512];
	while (in && fgets(line, sizeof line, in)) fputs(line, stdout);
	int bad = 0;
	for (int i = 0; i < k; i++) {
		int ws = 0;
		struct rusage ru;
		memset(&ru, 0, sizeof ru);
		if (wait4(pids[i], &ws, 0, &ru) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) bad++;
		printf("rss S%02d %ld cpu_s %.3f\n", i + 1, ru.ru_maxrss, /* kB; user + system seconds */
		       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	}
	if (in) fclose(in);
	return bad ? 1 : 0;
}
