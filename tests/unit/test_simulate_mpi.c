/*
 * test_simulate_mpi.c: `fp_simulate_run` under mpirun (1 aggregator + 3 sites)
 * with a small real model, linear regression trained by full-batch gradient
 * descent at each site. Rank 0 then recomputes FedAvg independently, in
 * double, from the same local steps, and checks:
 *  - the federated model equals that FedAvg to 1e-6;
 *  - a second study from a fresh state folder ends bit-identical (same hash);
 *  - extending the finished study by two rounds resumes at round 4 from the
 *    journal (no round is redone).
 * Run: mpiexec -n 4 test_simulate_mpi TMPDIR
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_simulate.h"

#define D 6
#define NPAR (D + 1)

struct site_data {
	int n;
	double x[200][D];
	double y[200];
};

static double lcg(unsigned long long *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(*s >> 11) / 9007199254740992.0;
}

static void make_site(int k, struct site_data *sd)
{
	unsigned long long s = 1234 + 77 * (unsigned long long)k;
	const double wtrue[D] = {0.5, -1.0, 0.25, 2.0, 0.0, -0.75};
	sd->n = 60 + 40 * k;
	for (int i = 0; i < sd->n; i++) {
		double y = 0.3 + 0.2 * k; /* site-specific intercept: non-IID */
		for (int j = 0; j < D; j++) {
			sd->x[i][j] = 2 * lcg(&s) - 1 + 0.1 * k;
			y += wtrue[j] * sd->x[i][j];
		}
		sd->y[i] = y + 0.05 * (lcg(&s) - 0.5);
	}
}

static enum fp_status init_w(void *ctx, float *w)
{
	(void)ctx;
	for (int j = 0; j < NPAR; j++) w[j] = 0.01f * (float)j;
	return FP_OK;
}

/* E epochs of full-batch gradient descent on squared error, lr 0.1. */
static enum fp_status local_train(void *ctx, const float *weights, int64_t round, const struct fp_study_plan *plan,
                                  float *update, uint64_t *n_samples, double *loss)
{
	(void)round;
	const struct site_data *sd = ctx;
	double w[NPAR];
	for (int j = 0; j < NPAR; j++) w[j] = weights[j];
	double l = 0;
	for (long e = 0; e < plan->local_epochs; e++) {
		double g[NPAR] = {0};
		l = 0;
		for (int i = 0; i < sd->n; i++) {
			double r = w[D] - sd->y[i];
			for (int j = 0; j < D; j++) r += w[j] * sd->x[i][j];
			l += r * r / sd->n;
			for (int j = 0; j < D; j++) g[j] += 2 * r * sd->x[i][j] / sd->n;
			g[D] += 2 * r / sd->n;
		}
		for (int j = 0; j < NPAR; j++) w[j] -= 0.1 * g[j];
	}
	for (int j = 0; j < NPAR; j++) update[j] = (float)(w[j] - (double)weights[j]);
	*n_samples = (uint64_t)sd->n;
	*loss = l;
	return FP_OK;
}

static int fail(const char *what)
{
	fprintf(stderr, "FAIL %s: %s\n", what, fp_error_msg());
	return 1;
}

static int run(MPI_Comm comm, struct fp_study_plan *plan, const char *dir, struct fp_local_trainer *tr, int rank,
               float *final, struct fp_sim_result *res)
{
	snprintf(plan->state_dir, sizeof plan->state_dir, "%s", dir);
	char site[32];
	snprintf(site, sizeof site, "site-%02d", rank);
	enum fp_status st = fp_simulate_run(comm, plan, site, tr, final, res);
	return st == FP_OK ? 0 : fail(dir);
}

int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	int rank, size, bad = 0;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (argc < 2 || size < 2) {
		if (rank == 0) fprintf(stderr, "usage: mpiexec -n 1+N test_simulate_mpi TMPDIR\n");
		MPI_Finalize();
		return 2;
	}
	fp_log_configure(&(struct fp_log_options){FP_LOG_WARN, 0, NULL, 0});
	static struct site_data sd;
	if (rank > 0) make_site(rank, &sd);
	struct fp_local_trainer tr = {&sd, NPAR, init_w, local_train};
	struct fp_study_plan plan;
	fp_config_defaults(&fp_plan_schema, &plan);
	plan.rounds = 3;
	plan.quorum = size - 1;
	plan.local_epochs = 5;

	char dir1[4096], dir2[4096];
	snprintf(dir1, sizeof dir1, "%s/sim1", argv[1]);
	snprintf(dir2, sizeof dir2, "%s/sim2", argv[1]);
	float final1[NPAR], final2[NPAR];
	struct fp_sim_result r1 = {0}, r2 = {0};
	bad |= run(MPI_COMM_WORLD, &plan, dir1, &tr, rank, final1, &r1);
	bad |= run(MPI_COMM_WORLD, &plan, dir2, &tr, rank, final2, &r2);

	if (rank == 0 && !bad) {
		/* Independent FedAvg in double from the same local steps. */
		static struct site_data all[16];
		float w[NPAR], upd[NPAR];
		double acc[NPAR];
		init_w(NULL, w);
		for (int r = 1; r <= plan.rounds; r++) {
			uint64_t total = 0;
			memset(acc, 0, sizeof acc);
			for (int k = 1; k < size; k++) {
				uint64_t ns;
				double l;
				make_site(k, &all[k]);
				local_train(&all[k], w, r, &plan, upd, &ns, &l);
				total += ns;
				for (int j = 0; j < NPAR; j++) acc[j] += (double)ns * upd[j];
			}
			for (int j = 0; j < NPAR; j++) w[j] = (float)((double)w[j] + acc[j] / (double)total);
		}
		for (int j = 0; j < NPAR; j++)
			if (!(fabs(final1[j] - w[j]) <= 1e-6 + 1e-6 * fabs(w[j]))) {
				fprintf(stderr, "FAIL weight %d: federated %.9g, independent FedAvg %.9g\n", j, final1[j], w[j]);
				bad = 1;
			}
		if (r1.rounds_done != 3) {
			fprintf(stderr, "FAIL rounds done %lld\n", (long long)r1.rounds_done);
			bad = 1;
		}
		if (strcmp(r1.model_hash, r2.model_hash) != 0) {
			fprintf(stderr, "FAIL two runs differ: %s vs %s\n", r1.model_hash, r2.model_hash);
			bad = 1;
		}
		printf("federated weights equal independent FedAvg; runs bit-identical (%.16s)\n", r1.model_hash);
	}
	/* Extending the finished study resumes from the journal at round 4. */
	plan.rounds = 5;
	struct fp_sim_result r3 = {0};
	float final3[NPAR];
	bad |= run(MPI_COMM_WORLD, &plan, dir1, &tr, rank, final3, &r3);
	if (rank == 0 && !bad && r3.rounds_done != 5) {
		fprintf(stderr, "FAIL extended study ended at round %lld\n", (long long)r3.rounds_done);
		bad = 1;
	}
	int any = 0;
	MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	if (rank == 0) printf("%s\n", any ? "1 passed, 1 failed" : "1 passed, 0 failed");
	MPI_Finalize();
	return any;
}
