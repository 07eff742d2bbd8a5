/*
 * cmd_tile.c: `fedpath tile`: slides -> per-slide HDF5 tile caches.
 *
 * The parent never opens a slide. Each slide runs in a forked child with an
 * address-space limit (RLIMIT_AS) and a wall-clock limit (SIGKILL from the
 * parent), so a codec crash, hang or memory blow-up costs that slide only.
 * The child sends one JSON line back through a pipe. The parent schedules up
 * to --jobs children, shows progress, appends one line per slide to
 * <out>/manifest.jsonl (fsync'ed), prints one line per failed slide and a
 * summary. Resumable: a slide whose cache exists with the same parameter and
 * source hashes is skipped (the check runs in the child); a killed run leaves
 * only "*.partial" files, which are redone.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_cli.h"
#include "fp_cli_schemas.h"
#include "fp_clinical.h"
#include "fp_tile.h"

const char fp_cmd_tile_usage[] =
	"Usage: fedpath tile --site ID --out DIR [options] SLIDE...\n"
	"       fedpath tile --site ID --out DIR [options] --manifest clinical.csv\n\n"
	"Cuts each slide into tiles at a fixed resolution and writes one HDF5 tile cache\n"
	"per slide, <DIR>/<slide_uid>.h5 (docs/TILE_CACHE.md), plus <DIR>/manifest.jsonl.\n"
	"Finished slides with the same parameters and source are skipped, so an\n"
	"interrupted run can simply be started again.\n\n"
	"Options:\n"
	"  --site ID            site id recorded in each cache (or site.id of --config)\n"
	"  --config FILE        site configuration file (for the site id)\n"
	"  --out DIR            output folder (created)\n"
	"  --manifest CSV       tile every slide named in a clinical table (slides/ next to it)\n"
	"  --jobs N             slides processed in parallel (default 1)\n"
	"  --target-mpp X       tile resolution in um/px (default 0.5)\n"
	"  --tile-size T        tile edge in pixels, multiple of 16 (default 256)\n"
	"  --source-mpp X       the scanner's true um/px when the file lacks or misstates it\n"
	"  --raw                store raw pixels instead of JPEG\n"
	"  --jpeg-quality Q     JPEG quality for re-encoded tiles, 50-100 (default 95, 4:4:4)\n"
	"  --no-copy            re-encode even where the scanner's JPEG tile could be copied\n"
	"  --min-tissue F       tissue fraction needed to keep a tile (default 0.5)\n"
	"  --mask-mpp X         tissue-mask resolution in um/px (default 8)\n"
	"  --max-bad F          fraction of undecodable tiles tolerated per slide (default 0.01)\n"
	"  --timeout S          seconds allowed per slide (default 3600)\n"
	"  --memory-mb M        address-space limit per slide process (default 4096)\n"
	"  --log-level L, --log-json, --log-file PATH\n\n"
	"Exit status: 0 all slides tiled or skipped, 1 some slide failed, 2 usage error.\n";

struct job {
	pid_t pid;
	int fd;
	const char *slide;
	double start;
	char buf[8192];
	size_t len;
	int timed_out;
};

static int run_child(const char *slide, const char *out, const struct fp_tile_params *p, int fd, long memory_mb,
                     pid_t parent)
{
	/* A killed parent takes its slide processes with it (no orphan keeps
	 * writing); the next run redoes only the slides that were in flight. A
	 * parent killed between fork() and prctl() sends no signal: the child sees
	 * it was reparented and goes at once. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) return 1;
	struct rlimit rl = {.rlim_cur = (rlim_t)memory_mb << 20, .rlim_max = (rlim_t)memory_mb << 20};
#if defined(__SANITIZE_ADDRESS__)
	/* AddressSanitizer reserves terabytes of shadow address space, which any
	 * RLIMIT_AS would refuse: the sanitizer build runs without the cap. */
	(void)rl;
#else
	setrlimit(RLIMIT_AS, &rl);
#endif
	struct rlimit core = {0, 0};
	setrlimit(RLIMIT_CORE, &core);
	struct fp_tile_result r;
	enum fp_status st = fp_tile_slide(slide, out, p, &r);
	json_t *o;
	if (st == FP_OK) {
		o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:f, s:f, s:b, s:b, s:f}", "status",
		              r.skipped ? "skipped" : "ok", "slide_uid", r.slide_uid, "quickhash", r.quickhash, "n_tiles",
		              (json_int_t)r.n_tiles, "n_candidates", (json_int_t)r.n_candidates, "n_bad", (json_int_t)r.n_bad,
		              "n_missing", (json_int_t)r.n_missing, "n_dropped_qc", (json_int_t)r.n_dropped_qc,
		              "source_level", r.source_level, "source_mpp", r.source_mpp, "mpp", r.mpp, "resampled",
		              r.resampled, "copied_native", r.copied_native, "seconds", r.seconds);
		if (o) json_object_set_new(o, "cache", json_string(strrchr(r.out_path, '/') + 1));
	} else {
		o = json_pack("{s:s, s:s, s:s}", "status", "failed", "code", fp_status_name(st), "error", fp_error_msg());
	}
	char *line = NULL;
	if (!o || fp_json_dump_line(o, &line) != FP_OK) return 1;
	json_decref(o);
	size_t n = strlen(line), done = 0;
	while (done < n) {
		ssize_t w = write(fd, line + done, n - done);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) break;
		done += (size_t)w;
	}
	free(line);
	return st == FP_OK ? 0 : 1;
}

static void now_iso(char *buf, size_t n) { fp_time_utc_iso(buf, n); }

/* Appends one line to the manifest and fsyncs it: a killed run keeps every
 * line written before. */
static void manifest_append(int mfd, json_t *o)
{
	char *line = NULL;
	if (fp_json_dump_line(o, &line) != FP_OK) return;
	size_t n = strlen(line);
	char *l2 = realloc(line, n + 2);
	if (!l2) {
		free(line);
		return;
	}
	l2[n] = '\n';
	if (write(mfd, l2, n + 1) != (ssize_t)(n + 1) || fsync(mfd) != 0)
		FP_WARN("manifest.jsonl: write failed: %s", strerror(errno));
	free(l2);
}

static int parse_args(int argc, char **argv, struct fp_tile_params *p, const char **out, const char **manifest,
                      long *jobs, long *timeout, long *memory_mb, const char ***slides, size_t *n_slides)
{
	const char *site = NULL, *config = NULL;
	*slides = calloc((size_t)argc, sizeof **slides);
	if (!*slides) return FP_EXIT_RUNTIME;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int lo = fp_cli_log_option("tile", argc, argv, &i);
		if (lo < 0) return FP_EXIT_USAGE;
		if (lo > 0) continue;
		double d;
		long v;
#define NEED_VALUE() do { if (i + 1 >= argc) return fp_cli_usage_error("tile", "%s needs a value", a); } while (0)
		if (strcmp(a, "--site") == 0) { NEED_VALUE(); site = argv[++i]; }
		else if (strcmp(a, "--config") == 0) { NEED_VALUE(); config = argv[++i]; }
		else if (strcmp(a, "--out") == 0) { NEED_VALUE(); *out = argv[++i]; }
		else if (strcmp(a, "--manifest") == 0) { NEED_VALUE(); *manifest = argv[++i]; }
		else if (strcmp(a, "--jobs") == 0) { NEED_VALUE(); if (fp_cli_parse_long("tile", a, argv[++i], 1, 256, jobs)) return FP_EXIT_USAGE; }
		else if (strcmp(a, "--timeout") == 0) { NEED_VALUE(); if (fp_cli_parse_long("tile", a, argv[++i], 1, 86400 * 7, timeout)) return FP_EXIT_USAGE; }
		else if (strcmp(a, "--memory-mb") == 0) { NEED_VALUE(); if (fp_cli_parse_long("tile", a, argv[++i], 128, 1 << 20, memory_mb)) return FP_EXIT_USAGE; }
		else if (strcmp(a, "--target-mpp") == 0) { NEED_VALUE(); if (fp_cli_parse_double("tile", a, argv[++i], 0.1, 16, &p->target_mpp)) return FP_EXIT_USAGE; }
		else if (strcmp(a, "--source-mpp") == 0) { NEED_VALUE(); if (fp_cli_parse_double("tile", a, argv[++i], FP_SLIDE_MPP_MIN, FP_SLIDE_MPP_MAX, &p->source_mpp)) return FP_EXIT_USAGE; }
		else if (strcmp(a, "--tile-size") == 0) {
			NEED_VALUE();
			if (fp_cli_parse_long("tile", a, argv[++i], 32, 2048, &v)) return FP_EXIT_USAGE;
			if (v % 16) return fp_cli_usage_error("tile", "--tile-size %ld is not a multiple of 16", v);
			p->tile_size = (uint32_t)v;
		}
		else if (strcmp(a, "--jpeg-quality") == 0) { NEED_VALUE(); if (fp_cli_parse_long("tile", a, argv[++i], 50, 100, &v)) return FP_EXIT_USAGE; p->jpeg_quality = (int)v; }
		else if (strcmp(a, "--min-tissue") == 0) { NEED_VALUE(); if (fp_cli_parse_double("tile", a, argv[++i], 0, 1, &p->min_tissue)) return FP_EXIT_USAGE; }
		else if (strcmp(a, "--mask-mpp") == 0) { NEED_VALUE(); if (fp_cli_parse_double("tile", a, argv[++i], 1, 64, &p->mask_mpp)) return FP_EXIT_USAGE; }
		else if (strcmp(a, "--max-bad") == 0) { NEED_VALUE(); if (fp_cli_parse_double("tile", a, argv[++i], 0, 1, &d)) return FP_EXIT_USAGE; p->max_bad_fraction = d; }
		else if (strcmp(a, "--raw") == 0) p->encoding = FP_TILE_RAW;
		else if (strcmp(a, "--no-copy") == 0) p->copy_native = 0;
		else if (a[0] == '-' && a[1]) return fp_cli_usage_error("tile", "unknown option '%s'", a);
		else (*slides)[(*n_slides)++] = a;
#undef NEED_VALUE
	}
	static struct fp_site_config sc; /* 2.5 KB: off the stack */
	if (!site && config) {
		if (fp_config_load(&fp_site_schema, config, &sc) != FP_OK)
			return fp_cli_runtime_error("tile", "configuration", NULL);
		if (!sc.site_id[0]) return fp_cli_usage_error("tile", "%s sets no site.id; give --site", config);
		site = sc.site_id;
	}
	if (site) {
		size_t n = strlen(site);
		if (n >= sizeof p->site_id)
			return fp_cli_usage_error("tile", "site id is longer than %zu characters", sizeof p->site_id - 1);
		memcpy(p->site_id, site, n + 1);
	} else {
		return fp_cli_usage_error("tile", "--site ID is required (or --config with site.id)");
	}
	if (!*out) return fp_cli_usage_error("tile", "--out DIR is required");
	if (*manifest && *n_slides) return fp_cli_usage_error("tile", "give slides or --manifest, not both");
	if (!*manifest && !*n_slides) return fp_cli_usage_error("tile", "no slides given");
	return FP_EXIT_OK;
}

static void finish_job(struct job *j, int wstatus, int mfd, long timeout, struct fp_progress *prog,
                       size_t *ok, size_t *skipped, size_t *failed, uint64_t *tiles)
{
	json_t *res = NULL;
	if (j->len) {
		j->buf[j->len < sizeof j->buf ? j->len : sizeof j->buf - 1] = 0;
		json_error_t e;
		res = json_loads(j->buf, 0, &e);
	}
	char err[512] = "";
	if (j->timed_out) snprintf(err, sizeof err, "timed out after %ld s (killed; --timeout)", timeout);
	else if (WIFSIGNALED(wstatus))
		snprintf(err, sizeof err, "slide process died of signal %d (%s): a codec crashed or the memory limit was hit",
		         WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
	else if (!res) snprintf(err, sizeof err, "slide process exited with status %d and no result", WEXITSTATUS(wstatus));
	if (err[0]) {
		json_decref(res);
		res = json_pack("{s:s, s:s, s:s}", "status", "failed", "code", j->timed_out ? "FP_ERR_TIMEOUT" : "FP_ERR_INTERNAL", "error", err);
	}
	if (!res) return;
	char ts[40];
	now_iso(ts, sizeof ts);
	json_object_set_new(res, "slide", json_string(j->slide));
	json_object_set_new(res, "ts", json_string(ts));
	json_object_set_new(res, "wall_seconds", json_real(fp_now_seconds() - j->start));
	const char *status = json_string_value(json_object_get(res, "status"));
	if (status && strcmp(status, "ok") == 0) {
		(*ok)++;
		*tiles += (uint64_t)json_integer_value(json_object_get(res, "n_tiles"));
	} else if (status && strcmp(status, "skipped") == 0) {
		(*skipped)++;
	} else {
		(*failed)++;
		const char *m = json_string_value(json_object_get(res, "error"));
		fprintf(stderr, "fedpath tile: %s: FAILED: %s\n", j->slide, m ? m : "unknown error");
	}
	manifest_append(mfd, res);
	json_decref(res);
	fp_progress_add(prog, 1);
}

int fp_cmd_tile(int argc, char **argv)
{
	struct fp_tile_params p;
	fp_tile_params_default(&p);
	const char *out = NULL, *manifest = NULL;
	long jobs = 1, timeout = 3600, memory_mb = 4096;
	const char **slides = NULL;
	size_t n_slides = 0;
	struct fp_clinical *clin = NULL;
	char **owned = NULL;
	struct job *running = NULL;
	struct fp_progress *prog = NULL;
	int mfd = -1, lockfd = -1, rc = parse_args(argc, argv, &p, &out, &manifest, &jobs, &timeout, &memory_mb, &slides, &n_slides);
	if (rc != FP_EXIT_OK) goto done;
	if (fp_tile_params_check(&p) != FP_OK) {
		rc = fp_cli_usage_error("tile", "%s", fp_error_msg());
		goto done;
	}
	if (manifest) {
		if (fp_clinical_load(manifest, stderr, &clin) != FP_OK) {
			rc = fp_cli_runtime_error("tile", "clinical table", "Fix the lines named above (docs/CLINICAL_SCHEMA.md).");
			goto done;
		}
		size_t total = 0;
		for (size_t i = 0; i < fp_clinical_count(clin); i++) total += fp_clinical_row(clin, i)->n_slides;
		free(slides);
		slides = calloc(total ? total : 1, sizeof *slides);
		owned = calloc(total ? total : 1, sizeof *owned);
		if (!slides || !owned) {
			rc = FP_EXIT_RUNTIME;
			goto done;
		}
		for (size_t i = 0; i < fp_clinical_count(clin); i++) {
			const struct fp_clinical_row *r = fp_clinical_row(clin, i);
			for (size_t k = 0; k < r->n_slides; k++) {
				char path[4096];
				if (fp_clinical_slide_path(clin, r->slides[k], path, sizeof path) != FP_OK || !(owned[n_slides] = strdup(path))) {
					rc = fp_cli_runtime_error("tile", "slide path", NULL);
					goto done;
				}
				slides[n_slides] = owned[n_slides];
				n_slides++;
			}
		}
	}
	if (fp_mkdir_p(out, 0750) != FP_OK) {
		rc = fp_cli_runtime_error("tile", "output folder", NULL);
		goto done;
	}
	/* One run per output folder: two would write the same slides' partial
	 * files. Slide processes inherit the lock, so a new run also waits out
	 * those of a killed run. */
	if (fp_dir_lock(out, ".tile.lock", 5.0, &lockfd) != FP_OK) {
		rc = fp_cli_runtime_error("tile", "output folder", NULL);
		goto done;
	}
	{
		char mpath[4096];
		snprintf(mpath, sizeof mpath, "%s/manifest.jsonl", out);
		mfd = open(mpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (mfd < 0) {
			fprintf(stderr, "fedpath tile: cannot open %s: %s\n", mpath, strerror(errno));
			rc = FP_EXIT_RUNTIME;
			goto done;
		}
	}
	fp_log_set_site(p.site_id);
	FP_INFO("tile: %zu slide(s) -> %s, target %.4g um/px, %u px tiles, %s, %ld job(s)", n_slides, out, p.target_mpp,
	        p.tile_size, p.encoding == FP_TILE_RAW ? "raw" : "jpeg", jobs);
	if (fp_progress_create("tile", n_slides, "slides", &prog) != FP_OK) {
		rc = fp_cli_runtime_error("tile", "progress", NULL);
		goto done;
	}
	running = calloc((size_t)jobs, sizeof *running);
	if (!running) {
		rc = FP_EXIT_RUNTIME;
		goto done;
	}
	for (long k = 0; k < jobs; k++) running[k].pid = 0;
	size_t next = 0, active = 0, ok = 0, skipped = 0, failed = 0;
	uint64_t tiles = 0;
	double t0 = fp_now_seconds();
	signal(SIGPIPE, SIG_IGN);
	while (next < n_slides || active > 0) {
		for (long k = 0; k < jobs && next < n_slides; k++) {
			if (running[k].pid) continue;
			int pfd[2];
			if (pipe2(pfd, O_CLOEXEC) != 0) {
				fprintf(stderr, "fedpath tile: pipe: %s\n", strerror(errno));
				rc = FP_EXIT_RUNTIME;
				goto done;
			}
			fflush(NULL);
			pid_t parent = getpid(), pid = fork();
			if (pid < 0) {
				fprintf(stderr, "fedpath tile: fork: %s\n", strerror(errno));
				close(pfd[0]);
				close(pfd[1]);
				rc = FP_EXIT_RUNTIME;
				goto done;
			}
			if (pid == 0) {
				close(pfd[0]);
				_exit(run_child(slides[next], out, &p, pfd[1], memory_mb, parent));
			}
			close(pfd[1]);
			struct job *j = &running[k];
			memset(j, 0, sizeof *j);
			j->pid = pid;
			j->fd = pfd[0];
			j->slide = slides[next];
			j->start = fp_now_seconds();
			next++;
			active++;
		}
		struct pollfd pf[256];
		int map[256], np = 0;
		for (long k = 0; k < jobs; k++)
			if (running[k].pid && running[k].fd >= 0) {
				pf[np].fd = running[k].fd;
				pf[np].events = POLLIN;
				map[np++] = (int)k;
			}
		if (np) poll(pf, (nfds_t)np, 200);
		else usleep(2000); /* every pipe closed: the children are exiting; reap them promptly */
		for (int q = 0; q < np; q++) {
			if (!(pf[q].revents & (POLLIN | POLLHUP | POLLERR))) continue;
			struct job *j = &running[map[q]];
			ssize_t r = read(j->fd, j->buf + j->len, sizeof j->buf - 1 - j->len);
			if (r > 0) j->len += (size_t)r;
			else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				close(j->fd);
				j->fd = -1;
			}
		}
		for (long k = 0; k < jobs; k++) {
			struct job *j = &running[k];
			if (!j->pid) continue;
			if (!j->timed_out && fp_now_seconds() - j->start > (double)timeout) {
				kill(j->pid, SIGKILL);
				j->timed_out = 1;
			}
			int ws = 0;
			pid_t w = waitpid(j->pid, &ws, WNOHANG);
			if (w != j->pid) continue;
			if (j->fd >= 0) { /* drain what the child wrote before exiting */
				ssize_t r;
				while ((r = read(j->fd, j->buf + j->len, sizeof j->buf - 1 - j->len)) > 0) j->len += (size_t)r;
				close(j->fd);
				j->fd = -1;
			}
			finish_job(j, ws, mfd, timeout, prog, &ok, &skipped, &failed, &tiles);
			j->pid = 0;
			active--;
		}
	}
	fp_progress_finish(prog);
	double secs = fp_now_seconds() - t0;
	fprintf(stderr, "fedpath tile: %zu slide(s): %zu tiled, %zu skipped (already done), %zu failed; %llu tiles in %.1f s%s\n",
	        n_slides, ok, skipped, failed, (unsigned long long)tiles, secs,
	        failed ? " (details above and in manifest.jsonl)" : "");
	rc = failed ? FP_EXIT_RUNTIME : FP_EXIT_OK;
done:
	if (running) {
		for (long k = 0; k < jobs; k++)
			if (running[k].pid) {
				kill(running[k].pid, SIGKILL);
				waitpid(running[k].pid, NULL, 0);
				if (running[k].fd >= 0) close(running[k].fd);
			}
	}
	free(running);
	fp_progress_destroy(prog);
	if (mfd >= 0) close(mfd);
	if (lockfd >= 0) close(lockfd);
	if (owned)
		for (size_t i = 0; i < n_slides; i++) free(owned[i]);
	free(owned);
	free(slides);
	fp_clinical_destroy(clin);
	return rc;
}
