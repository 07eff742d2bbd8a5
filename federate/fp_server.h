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
 * Part 2 plans (study.model = part2; PROTOCOL.md section 8): the round-0
 * model depends on the design width, which depends on the pooled
 * standardisation statistics, so before round 1 every poll of a site whose
 * statistics are missing gets TASK "stats"; the site answers STATUS{state
 * "stats"} with its counts, sums and sums of squares. Once every active site
 * of the allow-list has answered they are merged in canonical (byte) order of
 * the site ids, exactly as fp_p2_pool_mpi merges in rank order, written to
 * <state_dir>/part2-pooled.bin (before anything depends on them: a restart
 * reloads them and never asks again), and the aggregator opens with the
 * model fp_p2_trainer_create gives. Sites missing after rounds.deadline_s
 * end the run with FP_ERR_TIMEOUT naming them. Every "train" task carries
 * the pooled statistics. After the last round each site gets TASK
 * "baseline" (the final model) and answers STATUS{state "baseline"} with its
 * Breslow H0 at 12/24/36 months; with all of them (or at the deadline, those
 * that came) the aggregator writes the Part 2 model file (part2_model) as
 * `fedpath simulate` does, and "done" tasks carry every baseline so that
 * each site can write the same file.
 * Federated evaluation (Part 2 plans, after the model file): each site's
 * poll gets TASK "evaluate" (the final model as a stream, the pooled
 * statistics and every baseline) then EVAL_REQUEST (model hash, horizon, the
 * shared AUC grid, min_cell). The site answers EVAL_SUMMARY: its summary JSON
 * (federate/fp_eval_site.h: counts and sums only; at most
 * FP_EVAL_MAX_SUMMARY_BYTES, a JSON object naming this site and model) or an
 * error code and reason when it cannot evaluate. Summaries are written
 * atomically to <state_dir>/results/site_<id>.json, refusals to
 * results/failed/<id>.json; with every site answered (or at
 * rounds.deadline_s) the accepted ones are pooled (validate/fp_pool.h
 * fp_pool_aggregate at the horizon) into results/pooled.json. Each step is
 * audited (eval.summary, eval.failed, eval.pooled). A restart reloads the
 * summaries already written and does not ask those sites again.
 * Statisticians (certificate role statistician; fp_pull.h): after HELLO,
 * STATUS{state "pull"} is answered with STATUS{state "results"} (model hash,
 * round, file count), one EVAL_SUMMARY per results file (`name` says which)
 * and STATUS{state "end"}; FP_ERR_NOT_FOUND before pooled.json exists. Any
 * other request from a statistician, and "pull" from a site, is refused
 * with FP_ERR_AUTH, audited (access.refused) and ends the connection.
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
#include "fp_wire.h"

#define FP_SERVER_LONG_POLL_MS 2000
#define FP_SERVER_CHUNK_BYTES (1u << 20) /* model stream chunks */
#define FP_EVAL_MAX_SUMMARY_BYTES (512u << 10) /* one site's evaluation summary JSON */
#define FP_EVAL_MAX_GRID_EDGES 1001
#define FP_PULL_MAX_FILE_BYTES (FP_PROTO_MAX_CONTROL_BYTES - 4096u) /* one results file sent to a statistician */

struct fp_server_config {
	const struct fp_study_plan *plan; /* borrowed */
	const char *tls_dir;              /* see above */
	const float *init;                /* (n_params) round-0 model; used for a new state folder only,
	                                     and read only until on_listening is called (the caller may
	                                     free it then); Part 2 plans: ignored (it follows from the
	                                     pooled statistics) */
	size_t n_params;
	int part2_hidden;                 /* Part 2 trunk width; 0: FP_P2FED_DEFAULT_HIDDEN */
	const char *part2_model;          /* Part 2 model file; NULL: <state_dir>/part2-model.ckpt */
	double eval_horizon;              /* Part 2 evaluation horizon, months (12, 24, 36); 0: 36; < 0: none */
	int eval_grid_cells;              /* equal cells of the AUC grid on [0, 1]; 0: 20 */
	int port;                         /* -1: the plan's aggregator.listen port; 0: ephemeral */
	int io_timeout_ms;                /* per read/write; 0: 30000 */
	double linger_s;                  /* after the last round, keep answering "done" this long at most */
	int serve_results;                /* after the study: keep serving results (pull) until *stop, then FP_OK */
	volatile const int *stop;         /* non-zero: stop (e.g. set by a signal handler); may be NULL */
	/* Called once listening, with the port (tests use an ephemeral one). */
	void (*on_listening)(void *arg, int port);
	void *arg;
};

struct fp_server_result {
	int64_t rounds_done;
	char model_hash[FP_SHA256_HEX_SIZE];
	size_t n_params;
	char part2_model[4200]; /* the Part 2 model file written; "" for Part 1 */
};

/* Runs the study until the plan's rounds are done (FP_OK) or *stop is set
 * (FP_ERR_CANCELLED). `final_model` (n_params floats; for Part 2 the pooled
 * width's count, out->n_params) may be NULL. */
enum fp_status fp_server_run(const struct fp_server_config *cfg, float *final_model, struct fp_server_result *out);

/* "<state_dir>/status.json" */
void fp_server_status_path(const struct fp_study_plan *plan, char *out, size_t n);

#endif
