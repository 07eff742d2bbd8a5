/*
 * fp_aggregator.h: the aggregator's round state, independent of transport.
 *
 * The TLS server (fedpath aggregate) and the MPI simulation (fedpath simulate)
 * both drive this object: they open it on a state folder, feed it each site's
 * update as a stream of float32 values, and close rounds. It owns everything
 * that must survive kill -9:
 *
 *   DIR/journal.jsonl                 append-only, one fsync'ed JSON record per event
 *   DIR/models/round-<r>.fpm          global model after round r (framed, SHA-256); with
 *                                     keep_models N only round 0 and the last N stay
 *   DIR/models/server-<r>.fpo         FedAdam/FedYogi moments after the last closed round
 *   DIR/updates/<site>.upd            the site's update in the open round, as received
 *                                     (written in place each round; meaningful only
 *                                     while the journal lists it as received)
 *
 * Guarantees (tests/unit/test_aggregator.c checks each):
 *  - an update is accepted only whole: the right round, the current base-model
 *    hash, the model's parameter count, every value finite, the site not
 *    already counted this round; anything else is refused with a message
 *    naming the site and the reason, and leaves no file behind;
 *  - an accepted update is on disk and journaled before fp_update_finish
 *    returns, so a crash after that never asks the site to retrain;
 *  - closing a round folds the accepted updates in site-id order, reading
 *    them back from disk in blocks (an update journaled before a restart is
 *    checked against its journaled digest as it is read; one hashed on
 *    arrival in this process is not hashed again): the result does not depend on arrival
 *    order or on crashes, and memory is one model plus a fixed-size block
 *    buffer whatever the number of sites (moments add two models for
 *    FedAdam/FedYogi);
 *  - reopening the folder after kill -9 at any moment resumes at the same
 *    round with the same accepted updates, and finishing the study gives a
 *    model bit-identical to an uninterrupted run;
 *  - a torn last journal line (a crash inside an append) is dropped with a
 *    warning; any other damage (a model whose hash does not match the
 *    journal, an unknown record) refuses to open, naming the file and line.
 *
 * Updates are deltas (site weights minus the round's base model). Strategies:
 *   fedavg        base + sum_i n_i s_i d_i / sum_i n_i          (s_i: norm-bound scale)
 *   fedadam       m = b1 m + (1-b1) D; v = b2 v + (1-b2) D^2;  base + lr m / (sqrt(v) + tau)
 *   fedyogi       as fedadam but v = v - (1-b2) D^2 sign(v - D^2)
 *   median        base + coordinate median of s_i d_i (unweighted)
 *   trimmed_mean  base + mean of s_i d_i after dropping floor(f K) lowest and highest per coordinate
 * where D is the fedavg average delta. With norm_bound > 0, s_i = min(1, bound / ||d_i||)
 * and clipped sites are listed in the round's journal record.
 */
#ifndef FP_AGGREGATOR_H
#define FP_AGGREGATOR_H

#include <stddef.h>
#include <stdint.h>

#include "fp_hash.h"
#include "fp_status.h"

#define FP_AGG_SITE_MAX 64     /* site id length limit, bytes */
#define FP_AGG_MAX_SITES 256   /* updates per round */

enum fp_agg_strategy {
	FP_AGG_FEDAVG = 0,
	FP_AGG_FEDADAM = 1,
	FP_AGG_FEDYOGI = 2,
	FP_AGG_MEDIAN = 3,
	FP_AGG_TRIMMED_MEAN = 4
};
/* "fedavg", ... ; NULL for an unknown value. */
const char *fp_agg_strategy_name(enum fp_agg_strategy s);
enum fp_status fp_agg_strategy_parse(const char *name, enum fp_agg_strategy *out);

struct fp_agg_plan {
	enum fp_agg_strategy strategy;
	int quorum;           /* updates needed to close a round (>= 1) */
	double norm_bound;    /* 0: off */
	double trim_fraction; /* trimmed_mean: in [0, 0.5) */
	double server_lr;     /* fedadam/fedyogi */
	double beta1, beta2, tau;
	int keep_models;      /* global models kept besides round 0: the last N rounds' (0: every round's) */
};
void fp_agg_plan_default(struct fp_agg_plan *plan);

struct fp_aggregator; /* opaque */

/* Opens DIR. A new folder is initialised with `init` (n_params values) as the
 * round-0 model; an existing one is resumed, and then `init` may be NULL but
 * n_params and the plan's strategy must match the journal's. */
enum fp_status fp_aggregator_open(const char *dir, const struct fp_agg_plan *plan, const float *init,
                                  size_t n_params, struct fp_aggregator **out);
void fp_aggregator_destroy(struct fp_aggregator *a);

/* The round now collecting updates (1 for the first). */
int64_t fp_aggregator_round(const struct fp_aggregator *a);
size_t fp_aggregator_n_params(const struct fp_aggregator *a);
/* Hex SHA-256 of the current global model (the base of the open round); borrowed. */
const char *fp_aggregator_model_hash(const struct fp_aggregator *a);
/* Copies the current global model into out (n_params floats). */
enum fp_status fp_aggregator_model(const struct fp_aggregator *a, float *out);
int fp_aggregator_n_accepted(const struct fp_aggregator *a);
/* 1 when `site` already has an accepted update in the open round. */
int fp_aggregator_has_update(const struct fp_aggregator *a, const char *site);

struct fp_update_intake; /* one update being received */

/* Starts receiving `site`'s update for `round` against base model `base_hash`.
 * The update is recorded (journal "hash") by its tensor digest over chunks of
 * chunk_bytes (fp_stream.h), the digest the site's stream announced. */
enum fp_status fp_update_begin(struct fp_aggregator *a, const char *site, int64_t round, const char *base_hash,
                               uint64_t n_samples, size_t n_params, uint32_t chunk_bytes,
                               struct fp_update_intake **out);
/* Appends the next `count` values (in order), hashing them here. Non-finite
 * values are refused. */
enum fp_status fp_update_write(struct fp_update_intake *u, const float *values, size_t count);
/* Appends one whole chunk (the next in the chunk_bytes cutting) whose SHA-256
 * the caller has already checked against the data (a tensor stream's sink):
 * the bytes are not hashed again. data may be unaligned. */
enum fp_status fp_update_write_chunk(struct fp_update_intake *u, const void *data, size_t len,
                                     const uint8_t digest[FP_SHA256_SIZE]);
/* Checks the count and makes the file durable (fsync, rename); touches no
 * state of the aggregator, so a server calls it outside its lock while other
 * uploads go on. Idempotent. */
enum fp_status fp_update_seal(struct fp_update_intake *u);
/* After a successful seal: the update's hex digest (borrowed from u); else NULL. */
const char *fp_update_digest(const struct fp_update_intake *u);
/* Seals if not yet sealed, journals and accepts; frees u in every case. */
enum fp_status fp_update_finish(struct fp_update_intake *u);
/* Drops an update not accepted (connection lost, round closed), removing its
 * file even when sealed; frees u; NULL-safe. */
void fp_update_abort(struct fp_update_intake *u);

struct fp_round_result {
	int64_t round;            /* the round just closed */
	int n_sites;
	uint64_t total_samples;
	int n_clipped;            /* updates scaled down by the norm bound */
	char model_hash[FP_SHA256_HEX_SIZE];
};

/* Folds the accepted updates and starts the next round. FP_ERR_STATE when
 * fewer than quorum updates were accepted. */
enum fp_status fp_aggregator_close_round(struct fp_aggregator *a, struct fp_round_result *out);

#endif
