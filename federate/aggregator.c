/*
 * aggregator.c: round state, update intake, and the fold (fp_aggregator.h).
 *
 * Crash windows and why each is safe:
 *  - update file committed, "received" not yet journaled: the site got no
 *    acknowledgement and sends again; the new file replaces the orphan;
 *  - model file of round r committed, "closed" not yet journaled: on resume
 *    round r is still open with the same accepted updates, and closing it
 *    again writes the same bytes;
 *  - a journal append torn by the crash: the record never happened (as above).
 * Everything is little-endian float32, the byte order of every machine we
 * support (x86-64, arm64); the build refuses others.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fp_aggregator.h"
#include "fp_arith.h"
#include "fp_file.h"
#include "fp_json.h"
#include "fp_kernels.h"
#include "fp_log.h"
#include "fp_progress.h"
#include "fp_stream.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "fedpath stores float32 little-endian; this host is not little-endian"
#endif

#define JOURNAL_VERSION 1
#define MODEL_MAGIC "FPMODEL"   /* + NUL: 8 bytes */
#define MOMENT_MAGIC "FPSRVOP"
#define FOLD_BUDGET_FLOATS (4u << 20) /* 16 MiB of update values in memory while folding */
#define MAX_JOURNAL_BYTES ((size_t)1 << 30)
#define MAX_PARAMS ((size_t)1 << 32)

struct accepted {
	char site[FP_AGG_SITE_MAX + 1];
	uint64_t samples;
	double norm;
	char hash[FP_SHA256_HEX_SIZE];
	uint32_t chunk_bytes; /* the geometry of hash (chunk_hasher); 0: plain SHA-256 */
	int verified;         /* hashed as it arrived in this process: not read back to check */
};

struct fp_aggregator {
	char *dir;
	int lock_fd;           /* <dir>/.aggregate.lock, held while open */
	struct fp_agg_plan plan;
	size_t n;
	int64_t round; /* open round */
	float *model;
	float *m, *v;  /* server moments (fedadam/fedyogi), else NULL */
	char model_hash[FP_SHA256_HEX_SIZE];
	struct accepted acc[FP_AGG_MAX_SITES];
	int n_acc;
	int journal_fd;
	struct fp_kernels *k;
};

/* The digest an update is recorded by: the tensor digest of fp_stream.h over
 * chunks of chunk_bytes (what the site's stream announced and the site's
 * audit log records as update_digest), or, for journals written before
 * chunk_bytes was recorded (chunk_bytes 0), the plain SHA-256 of the values.
 * Bytes arrive in order in spans of any length. */
struct chunk_hasher {
	uint64_t total;
	uint32_t chunk_bytes;
	uint64_t n, filled;   /* chunks finished; bytes of the current one */
	uint8_t *digests;     /* (chunks, 32) */
	struct fp_sha256 *h;  /* the current chunk (or everything, when flat) */
};

static void ch_free(struct chunk_hasher *c)
{
	free(c->digests);
	fp_sha256_destroy(c->h);
	memset(c, 0, sizeof *c);
}

static enum fp_status ch_init(struct chunk_hasher *c, uint64_t total, uint32_t chunk_bytes)
{
	memset(c, 0, sizeof *c);
	c->total = total;
	c->chunk_bytes = chunk_bytes;
	if (chunk_bytes == 0) return fp_sha256_create(&c->h);
	uint64_t chunks = total / chunk_bytes + (total % chunk_bytes != 0);
	return fp_alloc_array(chunks ? (size_t)chunks : 1, 32, (void **)&c->digests, "update chunk digests");
}

static uint64_t ch_chunk_len(const struct chunk_hasher *c)
{
	uint64_t off = c->n * c->chunk_bytes;
	return c->total - off < c->chunk_bytes ? c->total - off : c->chunk_bytes;
}

static enum fp_status ch_update(struct chunk_hasher *c, const uint8_t *p, size_t len)
{
	if (c->chunk_bytes == 0) return fp_sha256_update(c->h, p, len);
	while (len > 0) {
		if (!c->h) FP_TRY(fp_sha256_create(&c->h));
		uint64_t want = ch_chunk_len(c) - c->filled;
		size_t take = len < want ? len : (size_t)want;
		FP_TRY(fp_sha256_update(c->h, p, take));
		c->filled += take;
		p += take;
		len -= take;
		if (c->filled == ch_chunk_len(c)) {
			enum fp_status st = fp_sha256_final(c->h, c->digests + c->n * 32);
			fp_sha256_destroy(c->h);
			c->h = NULL;
			FP_TRY(st);
			c->n++;
			c->filled = 0;
		}
	}
	return FP_OK;
}

static enum fp_status ch_final(struct chunk_hasher *c, uint8_t out[FP_SHA256_SIZE])
{
	if (c->chunk_bytes == 0) return fp_sha256_final(c->h, out);
	return fp_stream_tensor_digest(c->total, c->chunk_bytes, c->digests, c->n, out);
}

struct fp_update_intake {
	struct fp_aggregator *a;
	char site[FP_AGG_SITE_MAX + 1];
	int64_t round;
	uint64_t samples;
	size_t got;
	double sumsq;
	struct chunk_hasher ch;
	int fd;      /* path, being written; -1 once closed */
	int created; /* path is new: its folder entry needs an fsync */
	int sealed;  /* durable; the digest is in hash */
	char hash[FP_SHA256_HEX_SIZE];
	char path[4096];
};

static const char *const strategy_names[] = {"fedavg", "fedadam", "fedyogi", "median", "trimmed_mean"};

const char *fp_agg_strategy_name(enum fp_agg_strategy s)
{
	return (unsigned)s < 5 ? strategy_names[s] : NULL;
}

enum fp_status fp_agg_strategy_parse(const char *name, enum fp_agg_strategy *out)
{
	for (int i = 0; i < 5; i++)
		if (name && strcmp(name, strategy_names[i]) == 0) {
			*out = (enum fp_agg_strategy)i;
			return FP_OK;
		}
	return FP_FAIL(FP_ERR_INVALID_ARG,
	               "unknown aggregation strategy '%s' (expected fedavg, fedadam, fedyogi, median or trimmed_mean)",
	               name ? name : "(null)");
}

void fp_agg_plan_default(struct fp_agg_plan *plan)
{
	memset(plan, 0, sizeof *plan);
	plan->strategy = FP_AGG_FEDAVG;
	plan->quorum = 1;
	plan->trim_fraction = 0.1;
	plan->server_lr = 0.01;
	plan->beta1 = 0.9;
	plan->beta2 = 0.99;
	plan->tau = 1e-3;
}

static int uses_moments(const struct fp_agg_plan *p)
{
	return p->strategy == FP_AGG_FEDADAM || p->strategy == FP_AGG_FEDYOGI;
}

/* Site ids become file names: letters, digits, '-', '_' and '.', not leading '.'. */
static enum fp_status check_site_id(const char *site)
{
	size_t n = site ? strlen(site) : 0;
	if (n == 0 || n > FP_AGG_SITE_MAX || site[0] == '.')
		return FP_FAIL(FP_ERR_INVALID_ARG, "site id '%s' must be 1-%d characters, not starting with '.'",
		               site ? site : "", FP_AGG_SITE_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = site[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return FP_FAIL(FP_ERR_INVALID_ARG, "site id '%s' has a character other than letters, digits, '-', '_', '.'",
			               site);
	}
	return FP_OK;
}

static void model_path(const struct fp_aggregator *a, char *buf, size_t n, int64_t r)
{
	snprintf(buf, n, "%s/models/round-%06lld.fpm", a->dir, (long long)r);
}

static void moment_path(const struct fp_aggregator *a, char *buf, size_t n, int64_t r)
{
	snprintf(buf, n, "%s/models/server-%06lld.fpo", a->dir, (long long)r);
}

/* One update file per site, written in place by each of its updates. Safe:
 * the file of a site journaled in the open round is never opened for writing
 * (a second update of that site is refused as a replay), and a round's files
 * are read only before its "closed" record, after which nothing needs them.
 * An update not (yet) journaled leaves nothing that counts, whatever the
 * file holds. In place, not a new file per update: no rename and no folder
 * fsync per update, and on virtual machines filling fresh pages cost more
 * than the disk write (1 GB measured: 0.7-3.9 s into a new file, 0.2 s over
 * an existing one). */
static void update_path(const struct fp_aggregator *a, char *buf, size_t n, const char *site)
{
	snprintf(buf, n, "%s/updates/%s.upd", a->dir, site);
}

/* Where journal version 1 states (before the file per site) kept an update. */
static void legacy_update_path(const struct fp_aggregator *a, char *buf, size_t n, int64_t r, const char *site)
{
	snprintf(buf, n, "%s/updates/round-%06lld/%s.upd", a->dir, (long long)r, site);
}

static void hash_floats(const float *x, size_t n, char hex[FP_SHA256_HEX_SIZE])
{
	uint8_t d[FP_SHA256_SIZE];
	fp_sha256(x, n * sizeof(float), d);
	fp_hex_encode(d, sizeof d, hex);
}

/* ---- journal ---- */

static enum fp_status journal_append(struct fp_aggregator *a, json_t *rec)
{
	char *line = NULL;
	json_object_set_new(rec, "v", json_integer(JOURNAL_VERSION));
	FP_TRY(fp_json_dump_line(rec, &line));
	size_t n = strlen(line);
	char *buf = realloc(line, n + 2);
	if (!buf) {
		free(line);
		return FP_FAIL(FP_ERR_NOMEM, "journal: out of memory");
	}
	buf[n] = '\n';
	buf[n + 1] = '\0';
	/* One write per record: a crash tears at most this line. */
	size_t off = 0;
	while (off < n + 1) {
		ssize_t w = write(a->journal_fd, buf + off, n + 1 - off);
		if (w < 0 && errno == EINTR) continue;
		if (w < 0) {
			free(buf);
			return FP_FAIL(FP_ERR_IO, "%s/journal.jsonl: append failed: %s", a->dir, strerror(errno));
		}
		off += (size_t)w;
	}
	free(buf);
	if (fsync(a->journal_fd) != 0)
		return FP_FAIL(FP_ERR_IO, "%s/journal.jsonl: fsync failed: %s", a->dir, strerror(errno));
	return FP_OK;
}

/* model_sha256: the model's SHA-256 (its hash in the journal), or NULL. */
static enum fp_status save_model(struct fp_aggregator *a, int64_t r, const uint8_t *model_sha256)
{
	char p[4096];
	model_path(a, p, sizeof p, r);
	FP_TRY(fp_file_commit_framed_hashed(p, MODEL_MAGIC, 1, a->model, a->n * sizeof(float), model_sha256, 0644));
	if (uses_moments(&a->plan)) {
		float *mv = malloc(2 * a->n * sizeof(float));
		if (!mv) return FP_FAIL(FP_ERR_NOMEM, "aggregator: out of memory saving server moments");
		memcpy(mv, a->m, a->n * sizeof(float));
		memcpy(mv + a->n, a->v, a->n * sizeof(float));
		moment_path(a, p, sizeof p, r);
		enum fp_status st = fp_file_commit_framed(p, MOMENT_MAGIC, 1, mv, 2 * a->n * sizeof(float), 0644);
		free(mv);
		FP_TRY(st);
	}
	return FP_OK;
}

static enum fp_status load_framed_floats(const char *path, const char *magic, float *dst, size_t count)
{
	void *payload = NULL;
	size_t len = 0;
	uint32_t ver;
	FP_TRY(fp_file_read_framed(path, magic, 1, count * sizeof(float), &ver, &payload, &len));
	if (len != count * sizeof(float)) {
		free(payload);
		return FP_FAIL(FP_ERR_FORMAT, "%s: holds %zu values, expected %zu", path, len / sizeof(float), count);
	}
	memcpy(dst, payload, len);
	free(payload);
	return FP_OK;
}

static enum fp_status alloc_state(struct fp_aggregator *a)
{
	void *p;
	FP_TRY(fp_alloc_array(a->n, sizeof(float), &p, "global model"));
	a->model = p;
	if (uses_moments(&a->plan)) {
		FP_TRY(fp_calloc_array(a->n, sizeof(float), &p, "server first moment"));
		a->m = p;
		FP_TRY(fp_calloc_array(a->n, sizeof(float), &p, "server second moment"));
		a->v = p;
	}
	return FP_OK;
}

/* Replays journal.jsonl; truncates a torn last line. */
static enum fp_status replay(struct fp_aggregator *a, const char *jpath)
{
	enum fp_status st = FP_OK;
	char *text = NULL;
	size_t len = 0;
	int64_t closed = 0;
	int have_init = 0;
	FP_TRY(fp_file_read_all(jpath, MAX_JOURNAL_BYTES, &text, &len));
	size_t good = len;
	if (len > 0 && text[len - 1] != '\n') {
		char *last = strrchr(text, '\n');
		good = last ? (size_t)(last - text) + 1 : 0;
		fp_log(FP_LOG_WARN, "%s: dropping a torn last record (%zu bytes) left by a crash", jpath, len - good);
		if (truncate(jpath, (off_t)good) != 0) {
			st = FP_FAIL(FP_ERR_IO, "%s: cannot truncate the torn record: %s", jpath, strerror(errno));
			goto fail;
		}
		text[good] = '\0';
	}
	int lineno = 0;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next) *next++ = '\0';
		lineno++;
		json_t *rec = NULL;
		char where[4200];
		snprintf(where, sizeof where, "%s:%d", jpath, lineno);
		FP_CHECK(st, fp_json_load_string(line, where, &rec));
		const char *ev = json_string_value(json_object_get(rec, "event"));
		long long r = json_integer_value(json_object_get(rec, "round"));
		if (!ev) {
			json_decref(rec);
			st = FP_FAIL(FP_ERR_FORMAT, "%s: record without \"event\"", where);
			goto fail;
		}
		if (strcmp(ev, "init") == 0) {
			long long np = json_integer_value(json_object_get(rec, "n_params"));
			const char *strat = json_string_value(json_object_get(rec, "strategy"));
			const char *h = json_string_value(json_object_get(rec, "model"));
			if (have_init || !strat || !h || np <= 0) {
				json_decref(rec);
				st = FP_FAIL(FP_ERR_FORMAT, "%s: malformed or repeated init record", where);
				goto fail;
			}
			if ((size_t)np != a->n || strcmp(strat, fp_agg_strategy_name(a->plan.strategy)) != 0) {
				st = FP_FAIL(FP_ERR_STATE,
				             "%s: this study was started with %lld parameters and strategy %s; the plan now says %zu and %s",
				             where, np, strat, a->n, fp_agg_strategy_name(a->plan.strategy));
				json_decref(rec);
				goto fail;
			}
			snprintf(a->model_hash, sizeof a->model_hash, "%s", h);
			have_init = 1;
		} else if (strcmp(ev, "received") == 0 && r == closed + 1) {
			const char *site = json_string_value(json_object_get(rec, "site"));
			const char *h = json_string_value(json_object_get(rec, "hash"));
			if (!site || !h || a->n_acc >= FP_AGG_MAX_SITES || check_site_id(site) != FP_OK) {
				json_decref(rec);
				st = FP_FAIL(FP_ERR_FORMAT, "%s: malformed received record", where);
				goto fail;
			}
			struct accepted *x = &a->acc[a->n_acc++];
			snprintf(x->site, sizeof x->site, "%s", site);
			snprintf(x->hash, sizeof x->hash, "%s", h);
			x->samples = (uint64_t)json_integer_value(json_object_get(rec, "samples"));
			x->norm = json_number_value(json_object_get(rec, "norm"));
			/* absent in journals older than the chunked digest: plain SHA-256 */
			json_int_t cb = json_integer_value(json_object_get(rec, "chunk_bytes"));
			if (cb < 0 || cb > (json_int_t)UINT32_MAX || cb % (json_int_t)sizeof(float) != 0) {
				json_decref(rec);
				st = FP_FAIL(FP_ERR_FORMAT, "%s: chunk_bytes %lld is not a whole number of floats", where,
				             (long long)cb);
				goto fail;
			}
			x->chunk_bytes = (uint32_t)cb;
			x->verified = 0;
		} else if (strcmp(ev, "closed") == 0) {
			const char *h = json_string_value(json_object_get(rec, "model"));
			if (r != closed + 1 || !h) {
				json_decref(rec);
				st = FP_FAIL(FP_ERR_FORMAT, "%s: closed record out of order", where);
				goto fail;
			}
			closed = r;
			snprintf(a->model_hash, sizeof a->model_hash, "%s", h);
			a->n_acc = 0;
		} else if (strcmp(ev, "received") != 0 && strcmp(ev, "rejected") != 0) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: unknown event \"%s\"", where, ev);
			json_decref(rec);
			goto fail;
		}
		json_decref(rec);
	}
	if (!have_init) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: no init record: not an aggregator journal", jpath);
		goto fail;
	}
	a->round = closed + 1;
	FP_CHECK(st, alloc_state(a));
	char p[4096];
	model_path(a, p, sizeof p, closed);
	FP_CHECK(st, load_framed_floats(p, MODEL_MAGIC, a->model, a->n));
	char h[FP_SHA256_HEX_SIZE];
	hash_floats(a->model, a->n, h);
	if (strcmp(h, a->model_hash) != 0) {
		st = FP_FAIL(FP_ERR_CHECKSUM, "%s: model hash %s does not match the journal's %s", p, h, a->model_hash);
		goto fail;
	}
	if (uses_moments(&a->plan) && closed > 0) {
		float *mv = malloc(2 * a->n * sizeof(float));
		if (!mv) {
			st = FP_FAIL(FP_ERR_NOMEM, "aggregator: out of memory");
			goto fail;
		}
		moment_path(a, p, sizeof p, closed);
		st = load_framed_floats(p, MOMENT_MAGIC, mv, 2 * a->n);
		if (st == FP_OK) {
			memcpy(a->m, mv, a->n * sizeof(float));
			memcpy(a->v, mv + a->n, a->n * sizeof(float));
		}
		free(mv);
		if (st != FP_OK) goto fail;
	}
	for (int i = 0; i < a->n_acc; i++) {
		struct stat sb;
		char old[4096];
		update_path(a, p, sizeof p, a->acc[i].site);
		legacy_update_path(a, old, sizeof old, a->round, a->acc[i].site);
		if (stat(p, &sb) != 0 && stat(old, &sb) == 0 && rename(old, p) != 0) {
			st = FP_FAIL(FP_ERR_IO, "%s: cannot move to %s: %s", old, p, strerror(errno));
			goto fail;
		}
		if (stat(p, &sb) != 0 || (size_t)sb.st_size != a->n * sizeof(float)) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: journaled as received but missing or of the wrong size", p);
			goto fail;
		}
	}
	fp_log(FP_LOG_INFO, "aggregator: resumed %s at round %lld with %d update(s) already accepted", a->dir,
	       (long long)a->round, a->n_acc);
fail:
	free(text);
	return st;
}

enum fp_status fp_aggregator_open(const char *dir, const struct fp_agg_plan *plan, const float *init,
                                  size_t n_params, struct fp_aggregator **out)
{
	enum fp_status st;
	char p[4096];
	if (n_params == 0 || n_params > MAX_PARAMS)
		return FP_FAIL(FP_ERR_INVALID_ARG, "aggregator: %zu parameters is outside 1..%zu", n_params, MAX_PARAMS);
	if (plan->quorum < 1 || plan->quorum > FP_AGG_MAX_SITES)
		return FP_FAIL(FP_ERR_INVALID_ARG, "aggregator: quorum %d is outside 1..%d", plan->quorum, FP_AGG_MAX_SITES);
	if (plan->strategy == FP_AGG_TRIMMED_MEAN && !(plan->trim_fraction >= 0 && plan->trim_fraction < 0.5))
		return FP_FAIL(FP_ERR_INVALID_ARG, "aggregator: trim fraction %g is outside [0, 0.5)", plan->trim_fraction);
	if (!fp_agg_strategy_name(plan->strategy)) return FP_FAIL(FP_ERR_INVALID_ARG, "aggregator: unknown strategy");
	struct fp_aggregator *a = calloc(1, sizeof *a);
	if (!a) return FP_FAIL(FP_ERR_NOMEM, "aggregator: out of memory");
	a->journal_fd = -1;
	a->lock_fd = -1;
	a->plan = *plan;
	a->n = n_params;
	a->dir = strdup(dir);
	if (!a->dir) {
		st = FP_FAIL(FP_ERR_NOMEM, "aggregator: out of memory");
		goto fail;
	}
	struct fp_kernels_options ko;
	fp_kernels_options_default(&ko);
	FP_CHECK(st, fp_kernels_create(&ko, &a->k));
	snprintf(p, sizeof p, "%s/models", dir);
	FP_CHECK(st, fp_mkdir_p(p, 0750));
	snprintf(p, sizeof p, "%s/updates", dir);
	FP_CHECK(st, fp_mkdir_p(p, 0750));
	/* One aggregator per study folder: a second would append to the same
	 * journal and overwrite the same update files. */
	FP_CHECK(st, fp_dir_lock(dir, ".aggregate.lock", 2.0, &a->lock_fd));
	snprintf(p, sizeof p, "%s/journal.jsonl", dir);
	struct stat sb;
	int fresh = stat(p, &sb) != 0;
	if (fresh) {
		if (!init) {
			st = FP_FAIL(FP_ERR_NOT_FOUND, "%s: no journal to resume and no initial model given", dir);
			goto fail;
		}
		FP_CHECK(st, alloc_state(a));
		memcpy(a->model, init, n_params * sizeof(float));
		for (size_t i = 0; i < n_params; i++)
			if (!isfinite(init[i])) {
				st = FP_FAIL(FP_ERR_NUMERIC, "aggregator: initial model value %zu is not finite", i);
				goto fail;
			}
		hash_floats(a->model, a->n, a->model_hash);
		FP_CHECK(st, save_model(a, 0, NULL));
		a->round = 1;
		/* The journal comes into existence whole, with its init record (temp
		 * file + rename): a crash here leaves no journal, never an empty one. */
		char *line = NULL;
		json_t *rec = json_pack("{s:s, s:I, s:I, s:s, s:s, s:i}", "event", "init", "round", (json_int_t)0, "n_params",
		                        (json_int_t)n_params, "strategy", fp_agg_strategy_name(plan->strategy), "model",
		                        a->model_hash, "v", JOURNAL_VERSION);
		st = rec ? fp_json_dump_line(rec, &line) : FP_FAIL(FP_ERR_NOMEM, "out of memory");
		json_decref(rec);
		if (st != FP_OK) goto fail;
		size_t len = strlen(line);
		char *buf = realloc(line, len + 2);
		if (!buf) {
			free(line);
			st = FP_FAIL(FP_ERR_NOMEM, "out of memory");
			goto fail;
		}
		buf[len] = '\n';
		buf[len + 1] = '\0';
		st = fp_file_commit(p, buf, len + 1, 0640);
		free(buf);
		if (st != FP_OK) goto fail;
	} else {
		FP_CHECK(st, replay(a, p));
	}
	a->journal_fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (a->journal_fd < 0) {
		st = FP_FAIL(FP_ERR_IO, "%s: cannot open for appending: %s", p, strerror(errno));
		goto fail;
	}
	*out = a;
	return FP_OK;
fail:
	fp_aggregator_destroy(a);
	return st;
}

void fp_aggregator_destroy(struct fp_aggregator *a)
{
	if (!a) return;
	if (a->journal_fd >= 0) close(a->journal_fd);
	if (a->lock_fd >= 0) close(a->lock_fd);
	fp_kernels_destroy(a->k);
	free(a->model);
	free(a->m);
	free(a->v);
	free(a->dir);
	free(a);
}

int64_t fp_aggregator_round(const struct fp_aggregator *a)
{
	return a->round;
}

size_t fp_aggregator_n_params(const struct fp_aggregator *a)
{
	return a->n;
}

const char *fp_aggregator_model_hash(const struct fp_aggregator *a)
{
	return a->model_hash;
}

enum fp_status fp_aggregator_model(const struct fp_aggregator *a, float *out)
{
	memcpy(out, a->model, a->n * sizeof(float));
	return FP_OK;
}

int fp_aggregator_n_accepted(const struct fp_aggregator *a)
{
	return a->n_acc;
}

int fp_aggregator_has_update(const struct fp_aggregator *a, const char *site)
{
	for (int i = 0; i < a->n_acc; i++)
		if (strcmp(a->acc[i].site, site) == 0) return 1;
	return 0;
}

static void journal_rejection(struct fp_aggregator *a, const char *site, int64_t round, const char *why)
{
	json_t *rec = json_pack("{s:s, s:I, s:s, s:s}", "event", "rejected", "round", (json_int_t)round, "site",
	                        site ? site : "", "reason", why);
	if (rec) {
		enum fp_status keep = fp_error_last()->code;
		char msg[FP_ERROR_MSG_MAX];
		memcpy(msg, fp_error_msg(), sizeof msg);
		if (journal_append(a, rec) != FP_OK) fp_log(FP_LOG_WARN, "aggregator: could not journal a rejection");
		fp_error_set(keep, fp_error_last()->file, fp_error_last()->line, "%s", msg);
		json_decref(rec);
	}
	fp_log(FP_LOG_WARN, "aggregator: round %lld: update from %s rejected: %s", (long long)round,
	       site ? site : "?", why);
}

enum fp_status fp_update_begin(struct fp_aggregator *a, const char *site, int64_t round, const char *base_hash,
                               uint64_t n_samples, size_t n_params, uint32_t chunk_bytes,
                               struct fp_update_intake **out)
{
	enum fp_status st = check_site_id(site);
	if (st != FP_OK) return st;
	if (round != a->round)
		st = FP_FAIL(FP_ERR_STATE, "update from %s is for round %lld, but round %lld is open", site, (long long)round,
		             (long long)a->round);
	else if (!base_hash || strcmp(base_hash, a->model_hash) != 0)
		st = FP_FAIL(FP_ERR_STATE, "update from %s was trained from model %.12s..., not the current %.12s... (stale)",
		             site, base_hash ? base_hash : "(none)", a->model_hash);
	else if (n_params != a->n)
		st = FP_FAIL(FP_ERR_FORMAT, "update from %s has %zu parameters, the model has %zu", site, n_params, a->n);
	else if (n_samples == 0)
		st = FP_FAIL(FP_ERR_INVALID_ARG, "update from %s reports 0 samples", site);
	else if (fp_aggregator_has_update(a, site))
		st = FP_FAIL(FP_ERR_STATE, "update from %s for round %lld was already accepted (replay refused)", site,
		             (long long)round);
	else if (a->n_acc >= FP_AGG_MAX_SITES)
		st = FP_FAIL(FP_ERR_LIMIT, "round %lld already has %d updates, the limit", (long long)round, FP_AGG_MAX_SITES);
	else if (chunk_bytes == 0 || chunk_bytes % sizeof(float) != 0)
		st = FP_FAIL(FP_ERR_INVALID_ARG, "update from %s: chunk size %u is not a positive number of whole floats", site,
		             chunk_bytes);
	if (st != FP_OK) {
		journal_rejection(a, site, round, fp_error_msg());
		return st;
	}
	struct fp_update_intake *u = calloc(1, sizeof *u);
	if (!u) return FP_FAIL(FP_ERR_NOMEM, "out of memory");
	u->a = a;
	snprintf(u->site, sizeof u->site, "%s", site);
	u->round = round;
	u->samples = n_samples;
	update_path(a, u->path, sizeof u->path, site);
	FP_CHECK(st, ch_init(&u->ch, (uint64_t)a->n * sizeof(float), chunk_bytes));
	u->fd = open(u->path, O_WRONLY | O_CLOEXEC);
	if (u->fd < 0 && errno == ENOENT) {
		u->fd = open(u->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		u->created = u->fd >= 0;
	}
	if (u->fd < 0) {
		st = FP_FAIL(FP_ERR_IO, "%s: cannot open for writing: %s", u->path, strerror(errno));
		goto fail;
	}
	*out = u;
	return FP_OK;
fail:
	ch_free(&u->ch);
	free(u);
	return st;
}

/* Checks, measures and stores `count` values (p may be unaligned). The
 * finiteness test and the squared norm run over 8 independent lanes, summed
 * in a fixed order, so the compiler vectorises them and the norm is the same
 * on every run. */
static enum fp_status take_values(struct fp_update_intake *u, const uint8_t *p, size_t count)
{
	if (u->sealed) return FP_FAIL(FP_ERR_STATE, "update from %s: written after it was sealed", u->site);
	if (count > u->a->n - u->got)
		return FP_FAIL(FP_ERR_FORMAT, "update from %s: more than the model's %zu values", u->site, u->a->n);
	double acc[8] = {0};
	uint32_t bad = 0;
	size_t i = 0;
	for (; i + 8 <= count; i += 8) {
		float v[8];
		uint32_t b[8];
		memcpy(v, p + i * sizeof(float), sizeof v);
		memcpy(b, v, sizeof b);
		for (int j = 0; j < 8; j++) {
			bad |= (uint32_t)((b[j] & 0x7f800000u) == 0x7f800000u);
			acc[j] += (double)v[j] * (double)v[j];
		}
	}
	for (; i < count; i++) {
		float v;
		uint32_t b;
		memcpy(&v, p + i * sizeof(float), sizeof v);
		memcpy(&b, &v, sizeof b);
		bad |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
		acc[i % 8] += (double)v * (double)v;
	}
	if (bad)
		for (i = 0; i < count; i++) {
			float v;
			memcpy(&v, p + i * sizeof(float), sizeof v);
			if (!isfinite(v))
				return FP_FAIL(FP_ERR_NUMERIC, "update from %s: value %zu is %s", u->site, u->got + i,
				               isnan(v) ? "NaN" : "infinite");
		}
	u->sumsq += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
	for (size_t off = 0, len = count * sizeof(float); off < len;) {
		ssize_t w = write(u->fd, p + off, len - off);
		if (w < 0 && errno == EINTR) continue;
		if (w < 0) return FP_FAIL(FP_ERR_IO, "%s: write failed: %s", u->path, strerror(errno));
		off += (size_t)w;
	}
	u->got += count;
	return FP_OK;
}

enum fp_status fp_update_write(struct fp_update_intake *u, const float *values, size_t count)
{
	FP_TRY(take_values(u, (const uint8_t *)values, count));
	return ch_update(&u->ch, (const uint8_t *)values, count * sizeof(float));
}

enum fp_status fp_update_write_chunk(struct fp_update_intake *u, const void *data, size_t len,
                                     const uint8_t digest[FP_SHA256_SIZE])
{
	struct chunk_hasher *c = &u->ch;
	uint64_t at = (uint64_t)u->got * sizeof(float);
	if (c->filled != 0 || c->chunk_bytes == 0 || at != c->n * c->chunk_bytes || c->n * c->chunk_bytes >= c->total ||
	    len != ch_chunk_len(c))
		return FP_FAIL(FP_ERR_FORMAT, "update from %s: a %zu-byte chunk at byte %llu does not match the %u-byte chunking",
		               u->site, len, (unsigned long long)at, c->chunk_bytes);
	FP_TRY(take_values(u, data, len / sizeof(float)));
	memcpy(c->digests + c->n * 32, digest, 32);
	c->n++;
	return FP_OK;
}

enum fp_status fp_update_seal(struct fp_update_intake *u)
{
	enum fp_status st;
	uint8_t d[FP_SHA256_SIZE];
	if (u->sealed) return FP_OK;
	if (u->got != u->a->n)
		return FP_FAIL(FP_ERR_FORMAT, "update from %s ended after %zu of %zu values", u->site, u->got, u->a->n);
	FP_CHECK(st, ch_final(&u->ch, d));
	/* the file may hold a longer update of an earlier study in this folder: cut it */
	if (ftruncate(u->fd, (off_t)(u->a->n * sizeof(float))) != 0 || fsync(u->fd) != 0) {
		st = FP_FAIL(FP_ERR_IO, "%s: cannot make durable: %s", u->path, strerror(errno));
		goto fail;
	}
	if (u->created) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/updates", u->a->dir);
		FP_CHECK(st, fp_dir_sync(dir));
		u->created = 0;
	}
	fp_hex_encode(d, sizeof d, u->hash);
	u->sealed = 1;
fail:
	return st;
}

const char *fp_update_digest(const struct fp_update_intake *u)
{
	return u->sealed ? u->hash : NULL;
}

void fp_update_abort(struct fp_update_intake *u)
{
	if (!u) return;
	if (u->fd >= 0) close(u->fd);
	unlink(u->path); /* never journaled: what it holds must not look like an update */
	ch_free(&u->ch);
	free(u);
}

enum fp_status fp_update_finish(struct fp_update_intake *u)
{
	enum fp_status st;
	struct fp_aggregator *a = u->a;
	if (u->round != a->round) {
		st = FP_FAIL(FP_ERR_STATE, "round %lld closed before %s's update was stored", (long long)u->round, u->site);
		goto fail;
	}
	if ((st = fp_update_seal(u)) != FP_OK) {
		journal_rejection(a, u->site, a->round, fp_error_msg());
		goto fail;
	}
	struct accepted *x = &a->acc[a->n_acc];
	snprintf(x->site, sizeof x->site, "%s", u->site);
	x->samples = u->samples;
	x->norm = sqrt(u->sumsq);
	snprintf(x->hash, sizeof x->hash, "%s", u->hash);
	x->chunk_bytes = u->ch.chunk_bytes;
	x->verified = 1;
	json_t *rec = json_pack("{s:s, s:I, s:s, s:I, s:s, s:I, s:f}", "event", "received", "round", (json_int_t)a->round,
	                        "site", x->site, "samples", (json_int_t)x->samples, "hash", x->hash, "chunk_bytes",
	                        (json_int_t)x->chunk_bytes, "norm", x->norm);
	st = rec ? journal_append(a, rec) : FP_FAIL(FP_ERR_NOMEM, "out of memory");
	json_decref(rec);
	if (st != FP_OK) goto fail;
	a->n_acc++;
	fp_log(FP_LOG_INFO, "aggregator: round %lld: accepted %s (%llu samples, norm %.4g), %d/%d for quorum",
	       (long long)a->round, x->site, (unsigned long long)x->samples, x->norm, a->n_acc, a->plan.quorum);
	ch_free(&u->ch);
	free(u);
	return FP_OK;
fail:
	fp_update_abort(u);
	return st;
}

static int cmp_site(const void *pa, const void *pb)
{
	return strcmp(((const struct accepted *)pa)->site, ((const struct accepted *)pb)->site);
}

/* Applies the strategy to one block: delta (B) from xs (K, B) scaled rows. */
static enum fp_status fold_block(struct fp_aggregator *a, size_t off, size_t b, float *xs, const float *w, int kc,
                                 float *delta, uint64_t *trimmed)
{
	switch (a->plan.strategy) {
	case FP_AGG_FEDAVG:
	case FP_AGG_FEDADAM:
	case FP_AGG_FEDYOGI:
		FP_TRY(fp_k_weighted_sum(a->k, delta, xs, w, kc, b));
		break;
	case FP_AGG_MEDIAN:
		FP_TRY(fp_k_coord_median(a->k, delta, xs, kc, b));
		break;
	case FP_AGG_TRIMMED_MEAN: {
		int trim = (int)floor(a->plan.trim_fraction * kc);
		if (2 * trim >= kc) trim = (kc - 1) / 2;
		FP_TRY(fp_k_trimmed_mean(a->k, delta, xs, kc, b, trim));
		/* Which sites were trimmed, for the journal: rank each coordinate's
		 * values, ties broken by site order. */
		if (trim > 0)
			for (size_t j = 0; j < b; j++)
				for (int s = 0; s < kc; s++) {
					int below = 0;
					float x = xs[(size_t)s * b + j];
					for (int t = 0; t < kc; t++) {
						float y = xs[(size_t)t * b + j];
						below += y < x || (y == x && t < s);
					}
					if (below < trim || below >= kc - trim) trimmed[s]++;
				}
		break;
	}
	}
	float *x = a->model + off;
	if (a->plan.strategy == FP_AGG_FEDADAM || a->plan.strategy == FP_AGG_FEDYOGI) {
		float b1 = (float)a->plan.beta1, b2 = (float)a->plan.beta2;
		float lr = (float)a->plan.server_lr, tau = (float)a->plan.tau;
		float *m = a->m + off, *v = a->v + off;
		for (size_t j = 0; j < b; j++) {
			float g = delta[j], g2 = g * g;
			m[j] = b1 * m[j] + (1 - b1) * g;
			if (a->plan.strategy == FP_AGG_FEDADAM)
				v[j] = b2 * v[j] + (1 - b2) * g2;
			else
				v[j] = v[j] - (1 - b2) * g2 * (float)((v[j] > g2) - (v[j] < g2));
			x[j] += lr * m[j] / (sqrtf(v[j]) + tau);
		}
	} else {
		for (size_t j = 0; j < b; j++) x[j] += delta[j];
	}
	return FP_OK;
}

/* After round r's "closed" record: a resume needs only round r's model and
 * moments; older models go when the plan keeps only the last keep_models
 * (round 0, the study's starting point, always stays). Best effort: a file
 * that cannot be removed is only disk space. */
static void prune_models(struct fp_aggregator *a, int64_t r)
{
	char p[4096];
	if (uses_moments(&a->plan) && r >= 1) {
		moment_path(a, p, sizeof p, r - 1);
		unlink(p);
	}
	if (a->plan.keep_models > 0 && r - a->plan.keep_models >= 1) {
		model_path(a, p, sizeof p, r - a->plan.keep_models);
		if (unlink(p) == 0)
			fp_log(FP_LOG_DEBUG, "aggregator: removed %s (the plan keeps the last %d models)", p, a->plan.keep_models);
	}
}

enum fp_status fp_aggregator_close_round(struct fp_aggregator *a, struct fp_round_result *out)
{
	enum fp_status st = FP_OK;
	int kc = a->n_acc;
	FILE *files[FP_AGG_MAX_SITES] = {0};
	/* Updates journaled before a restart are read back under their digest;
	 * those hashed on arrival in this process are not hashed twice. */
	struct chunk_hasher checks[FP_AGG_MAX_SITES];
	memset(checks, 0, sizeof checks);
	float w[FP_AGG_MAX_SITES], scale[FP_AGG_MAX_SITES];
	uint64_t trimmed[FP_AGG_MAX_SITES] = {0};
	float *xs = NULL, *delta = NULL;
	json_t *rec = NULL;
	if (kc < a->plan.quorum)
		return FP_FAIL(FP_ERR_STATE, "round %lld has %d update(s), fewer than the quorum of %d", (long long)a->round, kc,
		               a->plan.quorum);
	double t0 = fp_now_seconds(), t_fold = 0, t_hash = 0, t_save = 0;
	qsort(a->acc, (size_t)kc, sizeof a->acc[0], cmp_site);
	uint64_t total = 0;
	int clipped = 0;
	for (int i = 0; i < kc; i++) total += a->acc[i].samples;
	for (int i = 0; i < kc; i++) {
		double s = 1.0;
		if (a->plan.norm_bound > 0 && a->acc[i].norm > a->plan.norm_bound) {
			s = a->plan.norm_bound / a->acc[i].norm;
			clipped++;
		}
		scale[i] = (float)s;
		w[i] = (float)((double)a->acc[i].samples / (double)total); /* scale applied to the rows */
	}
	size_t block = FOLD_BUDGET_FLOATS / (size_t)kc;
	if (block > a->n) block = a->n;
	void *p;
	FP_CHECK(st, fp_alloc_array((size_t)kc * block, sizeof(float), &p, "fold buffer"));
	xs = p;
	FP_CHECK(st, fp_alloc_array(block, sizeof(float), &p, "fold buffer"));
	delta = p;
	for (int i = 0; i < kc; i++) {
		char path[4096];
		update_path(a, path, sizeof path, a->acc[i].site);
		files[i] = fopen(path, "rb");
		if (!files[i]) {
			st = FP_FAIL(FP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
			goto fail;
		}
		if (!a->acc[i].verified)
			FP_CHECK(st, ch_init(&checks[i], (uint64_t)a->n * sizeof(float), a->acc[i].chunk_bytes));
	}
	for (size_t off = 0; off < a->n; off += block) {
		size_t b = a->n - off < block ? a->n - off : block;
		for (int i = 0; i < kc; i++) {
			float *row = xs + (size_t)i * b;
			if (fread(row, sizeof(float), b, files[i]) != b) {
				st = FP_FAIL(FP_ERR_FORMAT, "update of %s for round %lld is shorter than the model", a->acc[i].site,
				             (long long)a->round);
				goto fail;
			}
			if (!a->acc[i].verified) FP_CHECK(st, ch_update(&checks[i], (const uint8_t *)row, b * sizeof(float)));
			if (scale[i] != 1.0f)
				for (size_t j = 0; j < b; j++) row[j] *= scale[i];
		}
		FP_CHECK(st, fold_block(a, off, b, xs, w, kc, delta, trimmed));
	}
	for (int i = 0; i < kc; i++) {
		if (a->acc[i].verified) continue;
		uint8_t d[FP_SHA256_SIZE];
		char hex[FP_SHA256_HEX_SIZE];
		FP_CHECK(st, ch_final(&checks[i], d));
		fp_hex_encode(d, sizeof d, hex);
		if (strcmp(hex, a->acc[i].hash) != 0) {
			st = FP_FAIL(FP_ERR_CHECKSUM, "update of %s for round %lld changed on disk since it was accepted",
			             a->acc[i].site, (long long)a->round);
			goto fail;
		}
	}
	t_fold = fp_now_seconds();
	for (size_t i = 0; i < a->n; i++)
		if (!isfinite(a->model[i])) {
			st = FP_FAIL(FP_ERR_NUMERIC, "round %lld: aggregated value %zu is not finite", (long long)a->round, i);
			goto fail;
		}
	char new_hash[FP_SHA256_HEX_SIZE];
	uint8_t new_sha[FP_SHA256_SIZE];
	FP_CHECK(st, fp_sha256(a->model, a->n * sizeof(float), new_sha));
	fp_hex_encode(new_sha, sizeof new_sha, new_hash);
	t_hash = fp_now_seconds();
	FP_CHECK(st, save_model(a, a->round, new_sha));
	t_save = fp_now_seconds();

	rec = json_pack("{s:s, s:I, s:s, s:I, s:[], s:[], s:{}}", "event", "closed", "round", (json_int_t)a->round,
	                "model", new_hash, "samples", (json_int_t)total, "sites", "clipped", "trimmed");
	if (!rec) {
		st = FP_FAIL(FP_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (int i = 0; i < kc; i++) {
		json_array_append_new(json_object_get(rec, "sites"), json_string(a->acc[i].site));
		if (scale[i] != 1.0f) json_array_append_new(json_object_get(rec, "clipped"), json_string(a->acc[i].site));
		if (trimmed[i])
			json_object_set_new(json_object_get(rec, "trimmed"), a->acc[i].site,
			                    json_real((double)trimmed[i] / (double)a->n));
	}
	FP_CHECK(st, journal_append(a, rec));
	fp_log(FP_LOG_DEBUG, "aggregator: round %lld closed in %.3f s: fold %.3f, check and hash %.3f, model file %.3f, journal %.3f",
	       (long long)a->round, fp_now_seconds() - t0, t_fold - t0, t_hash - t_fold, t_save - t_hash,
	       fp_now_seconds() - t_save);
	if (clipped) fp_log(FP_LOG_WARN, "aggregator: round %lld: %d update(s) scaled down to the norm bound %g",
	                    (long long)a->round, clipped, a->plan.norm_bound);
	for (int i = 0; i < kc; i++)
		if (trimmed[i])
			fp_log(FP_LOG_INFO, "aggregator: round %lld: %s trimmed at %.1f%% of coordinates", (long long)a->round,
			       a->acc[i].site, 100.0 * (double)trimmed[i] / (double)a->n);
	if (out) {
		out->round = a->round;
		out->n_sites = kc;
		out->total_samples = total;
		out->n_clipped = clipped;
		snprintf(out->model_hash, sizeof out->model_hash, "%s", new_hash);
	}
	/* A state from before the file per site may have left its round folder. */
	{
		char dpath[4096];
		snprintf(dpath, sizeof dpath, "%s/updates/round-%06lld", a->dir, (long long)a->round);
		for (int i = 0; i < kc; i++) {
			char path[4096];
			legacy_update_path(a, path, sizeof path, a->round, a->acc[i].site);
			unlink(path);
		}
		rmdir(dpath);
	}
	prune_models(a, a->round);
	snprintf(a->model_hash, sizeof a->model_hash, "%s", new_hash);
	a->round++;
	a->n_acc = 0;
	goto done;
fail:
	/* The in-memory model may be half-folded: reload the last durable one. */
	{
		char path[4096];
		enum fp_status keep = st;
		model_path(a, path, sizeof path, a->round - 1);
		char msg[FP_ERROR_MSG_MAX];
		memcpy(msg, fp_error_msg(), sizeof msg);
		if (load_framed_floats(path, MODEL_MAGIC, a->model, a->n) != FP_OK)
			fp_log(FP_LOG_ERROR, "aggregator: could not restore the model after a failed close");
		/* moments: reload too (same reasoning) */
		if (uses_moments(&a->plan) && a->round - 1 > 0) {
			float *mv = malloc(2 * a->n * sizeof(float));
			moment_path(a, path, sizeof path, a->round - 1);
			if (mv && load_framed_floats(path, MOMENT_MAGIC, mv, 2 * a->n) == FP_OK) {
				memcpy(a->m, mv, a->n * sizeof(float));
				memcpy(a->v, mv + a->n, a->n * sizeof(float));
			}
			free(mv);
		} else if (uses_moments(&a->plan)) {
			memset(a->m, 0, a->n * sizeof(float));
			memset(a->v, 0, a->n * sizeof(float));
		}
		fp_error_set(keep, __FILE__, __LINE__, "%s", msg);
		st = keep;
	}
done:
	json_decref(rec);
	for (int i = 0; i < kc; i++) {
		if (files[i]) fclose(files[i]);
		ch_free(&checks[i]);
	}
	free(xs);
	free(delta);
	return st;
}
