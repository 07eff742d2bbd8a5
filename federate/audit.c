/*
 * audit.c: the hash-chained audit log (fp_audit.h). One record per line,
 * one write() and one fsync() per record, a mutex around both.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp_audit.h"
#include "fp_log.h"

#define CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))
static const char GENESIS[FP_SHA256_HEX_SIZE] = "0000000000000000000000000000000000000000000000000000000000000000";

struct fp_audit {
	pthread_mutex_t lock;
	int fd;
	char *path;
	uint64_t seq;
	char head[FP_SHA256_HEX_SIZE];
};

static int event_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 64) return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/* hash_hex = SHA-256 of rec without "hash", canonically serialised. */
static enum fp_status record_hash(json_t *rec, char hash_hex[FP_SHA256_HEX_SIZE])
{
	json_t *copy = json_copy(rec);
	if (!copy) return FP_FAIL(FP_ERR_NOMEM, "audit: cannot copy a record");
	json_object_del(copy, "hash");
	char *s = json_dumps(copy, CANON_FLAGS);
	json_decref(copy);
	if (!s) return FP_FAIL(FP_ERR_NOMEM, "audit: cannot serialise a record");
	uint8_t d[FP_SHA256_SIZE];
	enum fp_status st = fp_sha256(s, strlen(s), d);
	free(s);
	if (st == FP_OK) fp_hex_encode(d, sizeof(d), hash_hex);
	return st;
}

/* Checks one line against the chain state; advances seq/head on success. */
static enum fp_status check_line(const char *line, size_t len, long lineno, uint64_t *seq, char head[FP_SHA256_HEX_SIZE])
{
	enum fp_status st = FP_OK;
	json_error_t jerr;
	char *canon = NULL;
	json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!rec || !json_is_object(rec)) {
		st = FP_FAIL(FP_ERR_FORMAT, "line %ld: not a JSON object (%s)", lineno, rec ? "not an object" : jerr.text);
		goto fail;
	}
	json_t *jseq = json_object_get(rec, "seq"), *jprev = json_object_get(rec, "prev"), *jhash = json_object_get(rec, "hash");
	if (!json_is_integer(jseq) || !json_is_string(jprev) || !json_is_string(jhash) ||
	    !json_is_string(json_object_get(rec, "event")) || !json_is_string(json_object_get(rec, "ts"))) {
		st = FP_FAIL(FP_ERR_FORMAT, "line %ld: record lacks seq, ts, event, prev or hash", lineno);
		goto fail;
	}
	if ((uint64_t)json_integer_value(jseq) != *seq || json_integer_value(jseq) < 0) {
		st = FP_FAIL(FP_ERR_CHECKSUM, "line %ld: record seq %lld where %llu was expected (a record was deleted or moved)",
		             lineno, (long long)json_integer_value(jseq), (unsigned long long)*seq);
		goto fail;
	}
	if (strcmp(json_string_value(jprev), head) != 0) {
		st = FP_FAIL(FP_ERR_CHECKSUM, "line %ld: prev hash %.16s... does not match the previous record %.16s... (a record was deleted, moved or edited)",
		             lineno, json_string_value(jprev), head);
		goto fail;
	}
	char want[FP_SHA256_HEX_SIZE];
	FP_CHECK(st, record_hash(rec, want));
	if (strcmp(json_string_value(jhash), want) != 0) {
		st = FP_FAIL(FP_ERR_CHECKSUM, "line %ld: record hash does not match its content (the record was edited)", lineno);
		goto fail;
	}
	canon = json_dumps(rec, CANON_FLAGS);
	if (!canon || strlen(canon) != len || memcmp(canon, line, len) != 0) {
		st = FP_FAIL(FP_ERR_CHECKSUM, "line %ld: not the canonical serialisation of its record (the line was edited)", lineno);
		goto fail;
	}
	memcpy(head, want, FP_SHA256_HEX_SIZE);
	(*seq)++;
fail:
	free(canon);
	json_decref(rec);
	return st;
}

/* Walks the file; *torn_at = offset of an unterminated last line, or -1. */
static enum fp_status scan(FILE *f, const char *path, struct fp_audit_report *r, long *torn_at)
{
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0, offset = 0;
	enum fp_status st = FP_OK;
	memcpy(r->head, GENESIS, sizeof(GENESIS));
	r->records = 0;
	*torn_at = -1;
	for (;;) {
		ssize_t n = getline(&line, &cap, f);
		if (n < 0) break;
		lineno++;
		if ((size_t)n > FP_AUDIT_MAX_LINE) {
			st = FP_FAIL(FP_ERR_LIMIT, "%s: line %ld is longer than %u bytes", path, lineno, FP_AUDIT_MAX_LINE);
			break;
		}
		if (line[n - 1] != '\n') {
			*torn_at = offset;
			st = FP_FAIL(FP_ERR_FORMAT, "%s: line %ld is incomplete (a torn write at the end)", path, lineno);
			break;
		}
		st = check_line(line, (size_t)n - 1, lineno, &r->records, r->head);
		if (st != FP_OK) {
			fp_error_wrap("%s", path);
			break;
		}
		offset += n;
	}
	if (st != FP_OK) {
		r->bad_line = lineno;
		snprintf(r->reason, sizeof(r->reason), "%s", fp_error_msg());
	}
	free(line);
	return st;
}

enum fp_status fp_audit_verify(const char *path, const char *expect_head, struct fp_audit_report *r)
{
	memset(r, 0, sizeof(*r));
	FILE *f = fopen(path, "rb");
	if (!f) {
		enum fp_status st = FP_FAIL(FP_ERR_IO, "cannot open %s: %s", path, strerror(errno));
		snprintf(r->reason, sizeof(r->reason), "%s", fp_error_msg());
		return st;
	}
	long torn;
	enum fp_status st = scan(f, path, r, &torn);
	fclose(f);
	if (st == FP_OK && expect_head && strcmp(expect_head, r->head) != 0) {
		st = FP_FAIL(FP_ERR_CHECKSUM, "%s: chain is intact but ends at %.16s... after %llu records, not at the expected head %.16s... (records were removed from the end)",
		             path, r->head, (unsigned long long)r->records, expect_head);
		snprintf(r->reason, sizeof(r->reason), "%s", fp_error_msg());
	}
	return st;
}

static enum fp_status write_record(struct fp_audit *a, const char *event, const json_t *data)
{
	enum fp_status st = FP_OK;
	char ts[40], hash[FP_SHA256_HEX_SIZE];
	char *s = NULL;
	fp_time_utc_iso(ts, sizeof(ts));
	json_t *rec = json_pack("{s:I, s:s, s:s, s:s}", "seq", (json_int_t)a->seq, "ts", ts, "event", event, "prev", a->head);
	if (!rec) return FP_FAIL(FP_ERR_NOMEM, "audit: cannot build a record");
	json_t *d = data ? json_deep_copy(data) : json_object();
	if (!d || json_object_set_new(rec, "data", d) != 0) {
		st = FP_FAIL(FP_ERR_NOMEM, "audit: cannot attach the record's data");
		goto fail;
	}
	FP_CHECK(st, record_hash(rec, hash));
	json_object_set_new(rec, "hash", json_string(hash));
	s = json_dumps(rec, CANON_FLAGS);
	if (!s) {
		st = FP_FAIL(FP_ERR_NOMEM, "audit: cannot serialise a record");
		goto fail;
	}
	size_t n = strlen(s);
	if (n + 1 > FP_AUDIT_MAX_LINE) {
		st = FP_FAIL(FP_ERR_LIMIT, "audit: record '%s' of %zu bytes exceeds %u", event, n, FP_AUDIT_MAX_LINE);
		goto fail;
	}
	s[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite */
	ssize_t w = write(a->fd, s, n + 1);
	if (w != (ssize_t)(n + 1)) {
		st = FP_FAIL(FP_ERR_IO, "%s: append failed: %s", a->path, w < 0 ? strerror(errno) : "short write");
		goto fail;
	}
	/* A failed fsync is final: the log is no longer trustworthy in memory. */
	if (fsync(a->fd) != 0) {
		st = FP_FAIL(FP_ERR_IO, "%s: fsync failed: %s", a->path, strerror(errno));
		goto fail;
	}
	memcpy(a->head, hash, sizeof(hash));
	a->seq++;
fail:
	free(s);
	json_decref(rec);
	return st;
}

enum fp_status fp_audit_open(const char *path, struct fp_audit **out)
{
	enum fp_status st;
	struct fp_audit_report r;
	struct fp_audit *a = calloc(1, sizeof(*a));
	if (!a) return FP_FAIL(FP_ERR_NOMEM, "audit: cannot allocate");
	a->fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	a->path = strdup(path);
	if (!a->path) {
		st = FP_FAIL(FP_ERR_NOMEM, "audit: cannot copy the path");
		goto fail;
	}
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (a->fd < 0) {
		st = FP_FAIL(FP_ERR_IO, "cannot open audit log %s: %s", path, strerror(errno));
		goto fail;
	}
	int fd2 = dup(a->fd);
	FILE *f = fd2 >= 0 ? fdopen(fd2, "rb") : NULL;
	if (!f) {
		if (fd2 >= 0) close(fd2);
		st = FP_FAIL(FP_ERR_IO, "cannot read audit log %s: %s", path, strerror(errno));
		goto fail;
	}
	long torn;
	memset(&r, 0, sizeof(r));
	st = scan(f, path, &r, &torn);
	fclose(f);
	if (st != FP_OK && torn < 0) goto fail;
	if (st != FP_OK) {
		struct stat sb;
		long long dropped = fstat(a->fd, &sb) == 0 ? (long long)sb.st_size - torn : -1;
		if (ftruncate(a->fd, torn) != 0 || fsync(a->fd) != 0) {
			st = FP_FAIL(FP_ERR_IO, "%s: cannot cut the torn last line: %s", path, strerror(errno));
			goto fail;
		}
		FP_WARN("%s: dropped an incomplete last record (%lld bytes, a crash during an append)", path, dropped);
		fp_error_clear();
		a->seq = r.records;
		memcpy(a->head, r.head, sizeof(a->head));
		json_t *d = json_pack("{s:I}", "bytes_dropped", (json_int_t)dropped);
		st = write_record(a, "audit.torn_tail", d);
		json_decref(d);
		if (st != FP_OK) goto fail;
	} else {
		a->seq = r.records;
		memcpy(a->head, r.head, sizeof(a->head));
	}
	*out = a;
	return FP_OK;
fail:
	fp_audit_close(a);
	return st;
}

enum fp_status fp_audit_append(struct fp_audit *a, const char *event, const json_t *data)
{
	if (!event_valid(event))
		return FP_FAIL(FP_ERR_INVALID_ARG, "audit: event name '%s' is not 1..64 of [a-z0-9._-]", event ? event : "");
	if (data && !json_is_object(data))
		return FP_FAIL(FP_ERR_INVALID_ARG, "audit: data of '%s' must be a JSON object", event);
	pthread_mutex_lock(&a->lock);
	enum fp_status st = write_record(a, event, data);
	pthread_mutex_unlock(&a->lock);
	return st;
}

void fp_audit_head(struct fp_audit *a, char head[FP_SHA256_HEX_SIZE], uint64_t *records)
{
	pthread_mutex_lock(&a->lock);
	memcpy(head, a->head, FP_SHA256_HEX_SIZE);
	if (records) *records = a->seq;
	pthread_mutex_unlock(&a->lock);
}

void fp_audit_close(struct fp_audit *a)
{
	if (!a) return;
	if (a->fd >= 0) close(a->fd);
	pthread_mutex_destroy(&a->lock);
	free(a->path);
	free(a);
}

void fp_audit_tls_reject(void *audit, const char *peer, const char *reason)
{
	json_t *d = json_pack("{s:s, s:s}", "peer", peer ? peer : "", "reason", reason ? reason : "");
	if (!d || fp_audit_append(audit, "tls.reject", d) != FP_OK)
		fp_log_error_last("audit: cannot record a TLS refusal");
	json_decref(d);
}
