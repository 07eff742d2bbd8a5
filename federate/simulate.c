/*
 * simulate.c: the MPI transport of the round loop (fp_simulate.h).
 *
 * Messages (tags below): rank 0 -> all: a fixed-size task record by
 * MPI_Bcast, then the model by MPI_Bcast in chunks. Site -> rank 0: a fixed-size
 * update header, then the values in chunks with the site's rank as source, so
 * two sites' streams never interleave in one intake. A failure anywhere is
 * broadcast as the next task's status, so every rank stops together with the
 * same message instead of hanging in a collective.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_aggregator.h"
#include "fp_log.h"
#include "fp_simulate.h"

enum { TAG_HEADER = 101, TAG_DATA = 102 };

struct sim_task {
	int64_t round;   /* 0: stop */
	int32_t status;  /* FP_OK, or why everyone stops */
	int32_t n_sites_done;
	char base_hash[FP_SHA256_HEX_SIZE];
	char plan_hash[FP_SHA256_HEX_SIZE];
	char message[256];
};

struct sim_update {
	int32_t status;  /* FP_OK, or the site's failure */
	int32_t skip;    /* 1: rank 0 already holds this site's update */
	uint64_t n_samples;
	double loss;
	char site[FP_AGG_SITE_MAX + 1];
	char base_hash[FP_SHA256_HEX_SIZE];
	char message[256];
};

static enum fp_status mpi_fail(int rc, const char *what)
{
	char msg[MPI_MAX_ERROR_STRING];
	int len = 0;
	MPI_Error_string(rc, msg, &len);
	return FP_FAIL(FP_ERR_IO, "MPI %s failed: %s", what, msg);
}

static enum fp_status bcast_floats(float *x, size_t n, MPI_Comm comm)
{
	for (size_t off = 0; off < n; off += FP_SIM_CHUNK) {
		size_t c = n - off < FP_SIM_CHUNK ? n - off : FP_SIM_CHUNK;
		int rc = MPI_Bcast(x + off, (int)c, MPI_FLOAT, 0, comm);
		if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast of the model");
	}
	return FP_OK;
}

/* Rank 0's side of one round: ask the sites, take their updates, close. */
static enum fp_status coordinator_round(struct fp_aggregator *agg, MPI_Comm comm, int nsites, const char *plan_hash,
                                        float *model, float *chunk, struct fp_round_result *res)
{
	enum fp_status st = FP_OK;
	struct sim_task task;
	memset(&task, 0, sizeof task);
	task.round = fp_aggregator_round(agg);
	snprintf(task.base_hash, sizeof task.base_hash, "%s", fp_aggregator_model_hash(agg));
	snprintf(task.plan_hash, sizeof task.plan_hash, "%s", plan_hash);
	int rc = MPI_Bcast(&task, (int)sizeof task, MPI_BYTE, 0, comm);
	if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast of the task");
	FP_TRY(fp_aggregator_model(agg, model));
	FP_TRY(bcast_floats(model, fp_aggregator_n_params(agg), comm));

	size_t n = fp_aggregator_n_params(agg);
	for (int got = 0; got < nsites; got++) {
		struct sim_update h;
		MPI_Status ms;
		rc = MPI_Recv(&h, (int)sizeof h, MPI_BYTE, MPI_ANY_SOURCE, TAG_HEADER, comm, &ms);
		if (rc != MPI_SUCCESS) return mpi_fail(rc, "receive of an update header");
		int src = ms.MPI_SOURCE;
		h.site[sizeof h.site - 1] = '\0';
		h.base_hash[sizeof h.base_hash - 1] = '\0';
		h.message[sizeof h.message - 1] = '\0';
		/* The site's ask-for: does rank 0 already hold its update? Answer first. */
		int32_t have = fp_aggregator_has_update(agg, h.site);
		rc = MPI_Send(&have, 1, MPI_INT32_T, src, TAG_HEADER, comm);
		if (rc != MPI_SUCCESS) return mpi_fail(rc, "answer to a site");
		if (have) continue;
		struct sim_update body;
		rc = MPI_Recv(&body, (int)sizeof body, MPI_BYTE, src, TAG_HEADER, comm, MPI_STATUS_IGNORE);
		if (rc != MPI_SUCCESS) return mpi_fail(rc, "receive of an update");
		body.site[sizeof body.site - 1] = '\0';
		body.base_hash[sizeof body.base_hash - 1] = '\0';
		body.message[sizeof body.message - 1] = '\0';
		if (body.status != FP_OK) {
			/* A failing site does not abort the study: its update is missing. */
			fp_log(FP_LOG_WARN, "simulate: round %lld: site %s failed: %s", (long long)task.round, body.site,
			       body.message);
			continue;
		}
		struct fp_update_intake *u = NULL;
		enum fp_status ust = fp_update_begin(agg, body.site, task.round, body.base_hash, body.n_samples, n,
		                                     (uint32_t)(FP_SIM_CHUNK * sizeof(float)), &u);
		for (size_t off = 0; off < n; off += FP_SIM_CHUNK) {
			size_t c = n - off < FP_SIM_CHUNK ? n - off : FP_SIM_CHUNK;
			rc = MPI_Recv(chunk, (int)c, MPI_FLOAT, src, TAG_DATA, comm, MPI_STATUS_IGNORE);
			if (rc != MPI_SUCCESS) {
				fp_update_abort(u);
				return mpi_fail(rc, "receive of update values");
			}
			if (ust == FP_OK) ust = fp_update_write(u, chunk, c);
		}
		if (ust == FP_OK) {
			ust = fp_update_finish(u);
		} else {
			fp_update_abort(u);
		}
		if (ust != FP_OK) fp_log(FP_LOG_WARN, "simulate: round %lld: %s", (long long)task.round, fp_error_msg());
	}
	st = fp_aggregator_close_round(agg, res);
	if (st == FP_OK)
		fp_log(FP_LOG_INFO, "simulate: round %lld closed: %d site(s), %llu samples, model %.12s", (long long)res->round,
		       res->n_sites, (unsigned long long)res->total_samples, res->model_hash);
	return st;
}

static void send_stop(MPI_Comm comm, enum fp_status why)
{
	struct sim_task task;
	memset(&task, 0, sizeof task);
	task.status = (int32_t)why;
	snprintf(task.message, sizeof task.message, "%s", why == FP_OK ? "" : fp_error_msg());
	MPI_Bcast(&task, (int)sizeof task, MPI_BYTE, 0, comm);
}

static enum fp_status run_coordinator(MPI_Comm comm, const struct fp_study_plan *plan,
                                      const struct fp_local_trainer *tr, float *final_model, struct fp_sim_result *out)
{
	enum fp_status st;
	int size;
	MPI_Comm_size(comm, &size);
	char plan_hash[FP_SHA256_HEX_SIZE];
	fp_plan_hash(plan, plan_hash);
	struct fp_agg_plan ap;
	fp_plan_to_agg(plan, &ap);
	if (ap.quorum > size - 1) ap.quorum = size - 1; /* every simulated site is alive */
	struct fp_aggregator *agg = NULL;
	float *init = NULL, *model = NULL, *chunk = NULL;
	size_t n = tr->n_params;
	init = malloc(n * sizeof(float));
	model = malloc(n * sizeof(float));
	chunk = malloc((n < FP_SIM_CHUNK ? n : FP_SIM_CHUNK) * sizeof(float));
	if (!init || !model || !chunk) {
		st = FP_FAIL(FP_ERR_NOMEM, "simulate: out of memory for a %zu-parameter model", n);
		goto fail;
	}
	FP_CHECK(st, tr->init_weights(tr->ctx, init));
	FP_CHECK(st, fp_aggregator_open(plan->state_dir, &ap, init, n, &agg));
	while (fp_aggregator_round(agg) <= plan->rounds) {
		struct fp_round_result res;
		FP_CHECK(st, coordinator_round(agg, comm, size - 1, plan_hash, model, chunk, &res));
	}
	out->rounds_done = fp_aggregator_round(agg) - 1;
	snprintf(out->model_hash, sizeof out->model_hash, "%s", fp_aggregator_model_hash(agg));
	if (final_model) FP_CHECK(st, fp_aggregator_model(agg, final_model));
	send_stop(comm, FP_OK);
	goto done;
fail:
	send_stop(comm, st);
done:
	fp_aggregator_destroy(agg);
	free(init);
	free(model);
	free(chunk);
	return st;
}

static enum fp_status run_site(MPI_Comm comm, const struct fp_study_plan *plan, const char *site,
                               const struct fp_local_trainer *tr)
{
	enum fp_status st = FP_OK;
	size_t n = tr->n_params;
	char plan_hash[FP_SHA256_HEX_SIZE];
	fp_plan_hash(plan, plan_hash);
	float *model = malloc(n * sizeof(float));
	float *update = malloc(n * sizeof(float));
	if (!model || !update) {
		free(model);
		free(update);
		return FP_FAIL(FP_ERR_NOMEM, "simulate: site %s: out of memory", site);
	}
	fp_log_set_site(site);
	for (;;) {
		struct sim_task task;
		int rc = MPI_Bcast(&task, (int)sizeof task, MPI_BYTE, 0, comm);
		if (rc != MPI_SUCCESS) {
			st = mpi_fail(rc, "receive of the task");
			break;
		}
		if (task.round == 0) {
			task.message[sizeof task.message - 1] = '\0';
			if (task.status != FP_OK)
				st = FP_FAIL((enum fp_status)task.status, "aggregator stopped the study: %s", task.message);
			break;
		}
		FP_CHECK(st, bcast_floats(model, n, comm));
		fp_log_set_round((long)task.round);
		struct sim_update h;
		memset(&h, 0, sizeof h);
		snprintf(h.site, sizeof h.site, "%s", site);
		rc = MPI_Send(&h, (int)sizeof h, MPI_BYTE, 0, TAG_HEADER, comm);
		if (rc != MPI_SUCCESS) {
			st = mpi_fail(rc, "send of the update header");
			break;
		}
		int32_t have = 0;
		rc = MPI_Recv(&have, 1, MPI_INT32_T, 0, TAG_HEADER, comm, MPI_STATUS_IGNORE);
		if (rc != MPI_SUCCESS) {
			st = mpi_fail(rc, "receive of the answer");
			break;
		}
		if (have) {
			fp_log(FP_LOG_INFO, "simulate: aggregator already holds this round's update; not training again");
			continue;
		}
		task.plan_hash[sizeof task.plan_hash - 1] = '\0';
		task.base_hash[sizeof task.base_hash - 1] = '\0';
		enum fp_status tst = FP_OK;
		if (strcmp(task.plan_hash, plan_hash) != 0)
			tst = FP_FAIL(FP_ERR_STATE, "site %s refuses the task: plan hash %.12s... differs from its own %.12s...",
			              site, task.plan_hash, plan_hash);
		else
			tst = tr->train(tr->ctx, model, task.round, plan, update, &h.n_samples, &h.loss);
		h.status = (int32_t)tst;
		snprintf(h.base_hash, sizeof h.base_hash, "%s", task.base_hash);
		if (tst != FP_OK) snprintf(h.message, sizeof h.message, "%s", fp_error_msg());
		rc = MPI_Send(&h, (int)sizeof h, MPI_BYTE, 0, TAG_HEADER, comm);
		if (rc != MPI_SUCCESS) {
			st = mpi_fail(rc, "send of the update");
			break;
		}
		if (tst != FP_OK) continue;
		for (size_t off = 0; off < n; off += FP_SIM_CHUNK) {
			size_t c = n - off < FP_SIM_CHUNK ? n - off : FP_SIM_CHUNK;
			rc = MPI_Send(update + off, (int)c, MPI_FLOAT, 0, TAG_DATA, comm);
			if (rc != MPI_SUCCESS) {
				st = mpi_fail(rc, "send of update values");
				goto fail;
			}
		}
	}
fail:
	free(model);
	free(update);
	return st;
}

enum fp_status fp_simulate_run(MPI_Comm comm, const struct fp_study_plan *plan, const char *site_id,
                               const struct fp_local_trainer *trainer, float *final_model,
                               struct fp_sim_result *out)
{
	int rank, size;
	MPI_Comm_rank(comm, &rank);
	MPI_Comm_size(comm, &size);
	if (size < 2)
		return FP_FAIL(FP_ERR_INVALID_ARG,
		               "simulate needs at least 2 MPI ranks (1 aggregator + sites); run it as mpirun -np 1+N");
	/* Errors from MPI calls come back as codes, not aborts. */
	MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
	if (rank == 0) {
		struct fp_sim_result dummy;
		return run_coordinator(comm, plan, trainer, final_model, out ? out : &dummy);
	}
	return run_site(comm, plan, site_id, trainer);
}
