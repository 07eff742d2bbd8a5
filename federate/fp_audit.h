/*
 * fp_audit.h: the append-only, hash-chained audit log (JSON lines).
 *
 * Stage: federate/; the aggregator and every site keep one. Each line is one
 * record, written with a single write() and fsync'ed before append returns:
 *   {"data":{...},"event":"round.update","hash":"<64 hex>","prev":"<64 hex>",
 *    "seq":7,"ts":"2026-11-27T20:41:25.123Z"}
 * prev is the previous record's hash (64 zeros for seq 0); hash is the
 * SHA-256 of the record serialised without "hash" (compact, keys sorted,
 * reals with 17 digits: jansson's JSON_COMPACT|JSON_SORT_KEYS|
 * JSON_REAL_PRECISION(17)); and the line itself must be exactly that
 * canonical serialisation with "hash" included. What goes in `data` is the
 * caller's (model and update hashes, sample counts, versions, tile-cache
 * manifest hashes, refusals); never patient identifiers.
 *
 * Testable statements (tests/unit/test_audit.c):
 *  - fp_audit_verify accepts an untouched log and reports its record count and
 *    head hash; it refuses (FP_ERR_CHECKSUM, naming the line) a log in which a
 *    record was edited (even only in whitespace), deleted, or moved;
 *  - deleting records at the end leaves a valid shorter chain: only comparing
 *    the head with one kept elsewhere (expect_head) shows it;
 *  - opening a log appends after its last record; a torn last line (a crash
 *    inside an append) is cut off with a warning and an "audit.torn_tail"
 *    record; any other damage refuses to open;
 *  - appends from several threads never interleave.
 * Ownership: struct fp_audit is an opaque handle (open/close); `data` passed to
 * append is borrowed.
 */
#ifndef FP_AUDIT_H
#define FP_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#include "fp_hash.h"
#include "fp_status.h"

#define FP_AUDIT_MAX_LINE (1u << 20)

struct fp_audit;

/* Opens (creating with mode 0640) and checks the chain so far. */
enum fp_status fp_audit_open(const char *path, struct fp_audit **out);
/* Appends one record and fsyncs it. `event`: 1..64 of [a-z0-9._-]. */
enum fp_status fp_audit_append(struct fp_audit *a, const char *event, const json_t *data);
/* Head hash (64 hex + NUL) and count of records so far. */
void fp_audit_head(struct fp_audit *a, char head[FP_SHA256_HEX_SIZE], uint64_t *records);
void fp_audit_close(struct fp_audit *a);

/* An fp_tls_reject_fn: records {"peer":..., "reason":...} as "tls.reject". */
void fp_audit_tls_reject(void *audit, const char *peer, const char *reason);

struct fp_audit_report {
	uint64_t records;              /* valid records read */
	char head[FP_SHA256_HEX_SIZE]; /* hash of the last valid record */
	long bad_line;                 /* 1-based line of the first fault; 0 if none */
	char reason[512];
};
/* FP_OK when the whole chain holds (and, if expect_head is not NULL, ends
 * at that hash); FP_ERR_CHECKSUM or FP_ERR_FORMAT otherwise, with r filled. */
enum fp_status fp_audit_verify(const char *path, const char *expect_head, struct fp_audit_report *r);

#endif
