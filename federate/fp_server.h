/*
 * fp_server.h: the aggregator process of a TLS federation (`fedpath aggregate`).
 *
 * Takes a study plan, a TLS folder and the round-0 model; drives one
 * fp_aggregator (journal, canonical fold, strategies) from site sessions over
 * mutual TLS. Sites dial out; nothing connects into a hospital.
 *
 * TLS folder (made with `fedpath pki`, docs/PKI.md):
 *   ca.crt, allowlist.json, crl.pem (optional), aggregator.crt, aggregator.key
 *
 * Session (site -> aggregator, PROTOCOL.md; docs/FEDERATION.md):
 *   both send HELLO; the site's HELLO must match its certificate and carry the
 *   plan hash as config_hash. The site then sends STATUS{state "poll"}; the
 *   aggregator answers with TASK "train" (round, base-model hash, plan hash,
 *   deadline, then the model as a tensor stream), "wait" (after a long poll
 *   of up to FP_SERVER_LONG_POLL_MS when this site's update is already in) or
 *   "done". The site sends UPDATE then the delta as a tensor stream; each
 *   chunk goes into fp_update_write as it arrives (never the whole update in
 *   memory). A cut upload keeps its intake and stream state: the same UPDATE
 *   (stream id and digest) on a new connection resumes at the last
 *   acknowledged chunk. After the stream: STATUS{state "accepted"} or ERROR.
 *   Stale, replayed, mismatched or non-finite updates get an ERROR naming the
 *   reason, and the connection closes.
 * Rounds: a round closes when every active site of the allow-list has
 * answered, or at quorum once round_deadline_s has passed since it opened (in
 * this process: a restart gives the round a fresh deadline). A round closed
 * under an unfinished upload drops that upload.
 * Durability: everything that must survive kill -9 is the aggregator's
 * (fp_aggregator.h); a restarted server resumes the open round with the
 * updates already accepted, and sites holding an unacknowledged update send
 * it again without training.
 * status.json in the state folder (written atomically) holds the round, the
 * sites, their last contact, bytes and transfer rate, for `fedpath status`.
 * The audit log is <state_dir>/audit.jsonl.
 */
#ifndef FP_SERVER_H
#define FP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "fp_plan.h"
#include "fp_status.h"

#define FP_SERVER_LONG_POLL_MS 2000
#define FP_SERVER_CHUNK_BYTES (1u << 20) /* model stream chunks */

struct fp_server_config {
	const struct fp_study_plan *plan; /* borrowed */
	const char *tls_dir;              /* see above */
	const float *init;                /* (n_params) round-0 model; used for a new state folder only */
	size_t n_params;
	int port;                         /* -1: the plan's aggregator.listen port; 0: ephemeral */
	int io_timeout_ms;                /* per read/write; 0: 30000 */
	double linger_s;                  /* after the last round, keep answering "done" this long at most */
	volatile const int *stop;         /* non-zero: stop (e.g. set by a signal handler); may be NULL */
	/* Called once listening, with the port (tests use an ephemeral one). */
	void (*on_listening)(void *arg, int port);
	void *arg;
};

struct fp_server_result {
	int64_t rounds_done;
	char model_hash[FP_SHA256_HEX_SIZE];
};

/* Runs the study until the plan's rounds are done (FP_OK) or *stop is set
 * (FP_ERR_CANCELLED). `final_model` (n_params floats) may be NULL. */
enum fp_status fp_server_run(const struct fp_server_config *cfg, float *final_model, struct fp_server_result *out);

/* "<state_dir>/status.json" */
void fp_server_status_path(const struct fp_study_plan *plan, char *out, size_t n);

#endif
