/*
 * fp_agent.h: a hospital's site agent (`fedpath site`): dials out to the
 * aggregator over mutual TLS, fetches tasks, trains locally, uploads.
 *
 * Takes the site's own copy of the study plan, its TLS files and a local
 * training step (struct fp_local_trainer, fp_simulate.h). Produces nothing
 * on disk itself; slides and patient rows never leave the process: only the
 * update (a delta of n_params floats), its sample count and mean loss.
 * Behaviour (tests/unit/test_federation.c):
 *  - connection failures are retried with exponential backoff (initial,
 *    doubling, capped, +-20 % jitter), reset after every successful task;
 *  - a task whose plan hash differs from the site's own plan is refused: the
 *    agent sends ERROR and returns FP_ERR_STATE without training;
 *  - the model received must hash to the task's base-model hash;
 *  - an update is kept until the aggregator acknowledges it: after a cut
 *    connection (or an aggregator restart) the same round and base model are
 *    answered with the kept update, never by training again, and the upload
 *    resumes from the last acknowledged chunk;
 *  - with audit_path, every update the aggregator accepted (round, base
 *    model, tensor digest, samples, loss) and every refusal is appended to
 *    the site's own audit log (federate/fp_audit.h): what left the site;
 *  - Part 2 plans (PROTOCOL.md section 8): TASK "stats" is answered with
 *    the site's fp_p2_stats (counts, sums, sums of squares; never a row);
 *    "train" and "baseline" tasks carry the pooled statistics, from which
 *    the agent builds fp_p2_trainer (rebuilt only when they change); TASK
 *    "baseline" brings the final model, answered with this site's Breslow
 *    H0 at 12/24/36 months; "done" carries every site's baseline and the
 *    agent writes p2_model_out (the file `fedpath predict --model` reads,
 *    the same bytes of model as the aggregator's);
 *  - a plan with part2.kind = mil builds the MIL trainer (fp_p2_trainer_create_mil)
 *    over p2_bags, which must then be given; the embeddings never leave;
 *  - TASK "evaluate" (Part 2, after the baselines): the final model, then
 *    EVAL_REQUEST; the agent builds the model in memory and answers
 *    EVAL_SUMMARY with fp_eval_site_summary's JSON (counts and sums only),
 *    or, when it cannot evaluate (fewer patients than min_cell, a failing
 *    computation, a summary above FP_EVAL_MAX_SUMMARY_BYTES), an error code
 *    and reason with no summary; both are audited;
 *  - returns FP_OK when the aggregator says the study is done, FP_ERR_TIMEOUT
 *    after give_up_s without a successful exchange, FP_ERR_CANCELLED on *stop.
 */
#ifndef FP_AGENT_H
#define FP_AGENT_H

#include <stdint.h>

#include "fp_config.h"
#include "fp_part2_mil.h"
#include "fp_part2_table.h"
#include "fp_plan.h"
#include "fp_simulate.h"
#include "fp_status.h"

struct fp_agent_config {
	const char *site_id;              /* as on the site's certificate */
	const struct fp_study_plan *plan; /* the site's own copy; borrowed */
	const struct fp_local_trainer *trainer; /* Part 1 plans (NULL for Part 2) */
	/* Part 2 plans: the site's raw table (fp_p2_site_load; borrowed). The
	 * trainer is built from it and the pooled statistics the tasks carry. */
	const struct fp_p2_table *p2_table;
	const char *p2_model_out;         /* Part 2: model file written when the study is done; NULL: none */
	const char *p2_clinical_csv;      /* Part 2: the table's files, for the evaluation summary's */
	const char *p2_features_csv;      /*   snapshot hash and date (features may be NULL) */
	/* Part 2 plans with part2.kind = mil: one bag of tile embeddings per row of
	 * p2_table (fp_p2_site_bags; borrowed), of the plan's part2.embed_dim. */
	const struct fp_part2_bags *p2_bags;
	const char *host;                 /* aggregator address */
	int port;
	const char *server_name;          /* DNS name on the aggregator's certificate */
	const char *ca_file, *cert_file, *key_file;
	const char *crl_file;             /* may be NULL */
	int io_timeout_ms;                /* 0: 30000; must exceed FP_SERVER_LONG_POLL_MS */
	double backoff_initial_s;         /* 0: 1 s */
	double backoff_max_s;             /* 0: 60 s */
	double give_up_s;                 /* 0: never */
	uint32_t upload_chunk_bytes;      /* 0: 1 MiB; a multiple of 4 within the protocol limits */
	volatile const int *stop;         /* may be NULL */
	const char *audit_path;           /* the site's own hash-chained audit log; NULL: none */
	/* Fault injection for tests: when non-zero, the agent's connection dies
	 * (as if the process were killed) once this many bytes of an update were
	 * written, and fp_agent_run returns FP_ERR_IO at once. */
	uint64_t die_after_upload_bytes;
	/* Same, but only the connection dies, once: the agent redials and resumes. */
	uint64_t cut_once_after_upload_bytes;
};

struct fp_agent_stats {
	int64_t tasks;      /* "train" tasks received */
	int64_t trained;    /* local training steps run */
	int64_t uploaded;   /* updates acknowledged */
	int64_t reconnects;
	int64_t chunks_sent; /* update chunks written whole (resumed uploads send fewer) */
};

enum fp_status fp_agent_run(const struct fp_agent_config *cfg, struct fp_agent_stats *stats);

/* ---- site.ini for `fedpath site` (schema "agent"; docs/examples/agent.ini) ---- */
struct fp_agent_file {
	char site_id[FP_CONFIG_STR_MAX];
	char plan[FP_CONFIG_STR_MAX];         /* this site's copy of study.ini */
	char train_config[FP_CONFIG_STR_MAX]; /* train.ini: caches, labels, model, optimiser */
	char address[FP_CONFIG_STR_MAX];      /* aggregator host:port */
	char server_name[FP_CONFIG_STR_MAX];
	char ca[FP_CONFIG_STR_MAX], cert[FP_CONFIG_STR_MAX], key[FP_CONFIG_STR_MAX], crl[FP_CONFIG_STR_MAX];
	double backoff_initial_s, backoff_max_s, give_up_s, io_timeout_s;
	int log_level, log_json;
	char log_file[FP_CONFIG_STR_MAX];
	char audit[FP_CONFIG_STR_MAX];        /* the site's audit log */
	char p2_clinical[FP_CONFIG_STR_MAX];  /* Part 2 plans: clinical.csv */
	char p2_features[FP_CONFIG_STR_MAX];  /* Part 2 plans: features.csv of `fedpath quantify` ("" : none) */
	char p2_model_out[FP_CONFIG_STR_MAX]; /* Part 2 plans: the model file written when the study is done */
	char p2_caches[FP_CONFIG_STR_MAX];    /* Part 2 MIL plans: the quantified tile caches */
};
extern const struct fp_config_schema fp_agent_schema;

#endif
