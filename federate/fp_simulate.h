/*
 * fp_simulate.h: a whole federation inside one MPI job, with the same round
 * code as production: rank 0 is the aggregator (fp_aggregator: journal,
 * canonical fold, strategies), ranks 1..N are sites running the local
 * training step. `mpirun -np 1+N fedpath simulate --plan study.ini` uses it;
 * the TLS deployment drives the same aggregator object, so a simulation and a
 * TLS run of one plan and seed end with the same model.
 *
 * Per round: rank 0 broadcasts the task (round, base-model hash, plan hash)
 * and the model in chunks of at most FP_SIM_CHUNK floats; each site checks the
 * plan hash, trains, and sends its update in chunks; rank 0 feeds each update
 * to fp_update_* as it streams and closes the round when every site has
 * answered. A site whose update the aggregator already holds (a resumed
 * round) is told so and does not train again.
 */
#ifndef FP_SIMULATE_H
#define FP_SIMULATE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "fp_plan.h"
#include "fp_status.h"

#define FP_SIM_CHUNK ((size_t)1 << 20) /* floats per message: 4 MiB */

/* The local training step a site runs each round. train/ provides the real
 * ones (Part 1, Part 2); tests may pass a small model of their own. */
struct fp_local_trainer {
	void *ctx;
	size_t n_params;
	/* Initial global weights (rank 0 calls it once for a new study). */
	enum fp_status (*init_weights)(void *ctx, float *w);
	/* From `weights`, train as the plan says; write the delta (new - weights)
	 * to `update`, the number of training samples and the mean loss.
	 * `update` may be `weights` itself: the site agent trains in place, so
	 * that a site holds one model's worth, not two. A trainer reads
	 * weights[i] before it writes update[i] (or works from its own copy). */
	enum fp_status (*train)(void *ctx, const float *weights, int64_t round, const struct fp_study_plan *plan,
	                        float *update, uint64_t *n_samples, double *loss);
};

struct fp_sim_result {
	int64_t rounds_done;
	char model_hash[FP_SHA256_HEX_SIZE];
};

/* Runs on every rank of `comm` (size >= 2). `site_id` names this rank's site
 * (ignored on rank 0). Rank 0 fills `out` and may copy the final model into
 * `final_model` (n_params floats, or NULL). Every rank returns the same status. */
enum fp_status fp_simulate_run(MPI_Comm comm, const struct fp_study_plan *plan, const char *site_id,
                               const struct fp_local_trainer *trainer, float *final_model,
                               struct fp_sim_result *out);

#endif
