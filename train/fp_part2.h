/*
 * fp_part2.h: the Part 2 regimen-benefit model.
 *
 * Stage: after the patient table (fp_part2_table.h). Takes the standardised
 * design matrix of a site (or of all sites, stratified) and the outcomes;
 * produces, per patient, a log-risk of recurrence under each regimen, the
 * propensity of each regimen, an OS log-risk, and a recommendation.
 *
 * The network: h = ReLU(W1 x + b1) (width `hidden`), then four linear heads
 * on h: f (1), g (3), propensity logits (3), OS log-risk (1), and
 *     eta(x, a) = f(x) + g_a(x),   a in {surgery, tace, tace_tki}.
 * Loss = Cox partial likelihood of eta(x, a_received) for RFS (Efron ties,
 *        inverse-propensity weights, stratified: risk sets never cross
 *        strata, and a stratum is a site)
 *      + lambda_prop * cross-entropy(propensity logits, a_received)
 *      + lambda_os * Cox partial likelihood of the OS log-risk (same strata,
 *        patients with OS data only).
 * The inverse-propensity weights come from the propensity head's own
 * predictions at the start of each training call (held fixed within it),
 * stabilised by the regimen frequencies of the batch and truncated to
 * [ipw_min, ipw_max], so the model is usable from the first round.
 * Each Cox term is a sum over events divided by the (weighted) number of
 * events of the batch.
 *
 * Parameters form one flat vector in this order (names for checkpoints and
 * federation): trunk.weight (hidden, p), trunk.bias, f.weight (1, hidden),
 * f.bias, g.weight (3, hidden), g.bias, prop.weight (3, hidden), prop.bias,
 * os.weight (1, hidden), os.bias.
 *
 * With cfg.kind = FP_P2_MIL this network is the trunk and heads of the
 * gated-attention MIL model (fp_part2_mil.h), which builds it through
 * fp_part2_mil_create; fp_part2_create itself refuses a MIL configuration.
 *
 * Facts (tests/unit/test_part2.c):
 *  - the analytic gradient equals central finite differences of the loss;
 *  - on a phantom cohort trained centrally, the C-index of eta(x, a_received)
 *    on held-out centres is close to the true linear predictor's;
 *  - the same seed and data give bit-identical parameters after training.
 * Ownership: fp_part2_create gives an owned model; the kernels handle is
 * borrowed and must outlive it.
 */
#ifndef FP_PART2_H
#define FP_PART2_H

#include <stddef.h>
#include <stdint.h>

#include "fp_kernels.h"
#include "fp_status.h"

#define FP_P2_REGIMENS 3

struct fp_part2_config {
	int hidden;            /* trunk width, 1..1024 */
	double lr;             /* AdamW learning rate */
	double weight_decay;   /* on weight matrices only */
	long steps;            /* full-batch optimiser steps per training call */
	double lambda_prop;    /* weight of the propensity cross-entropy */
	double lambda_os;      /* weight of the OS Cox term */
	double ipw_min, ipw_max;
	double margin;         /* minimum log-hazard benefit to recommend a more intensive regimen */
	uint64_t seed;
	/* Which inputs the trunk sees (train/fp_part2_mil.h): FP_P2_SUMMARY, the
	 * patient table's columns; FP_P2_MIL, the clinical columns plus a
	 * gated-attention pooling of the patient's tile embeddings. */
	int kind;
	int attn;              /* MIL: attention width D, 1..1024 */
	int bag_cap;           /* MIL: at most this many tiles per patient, 1..1000000 */
};
enum fp_part2_kind { FP_P2_SUMMARY = 0, FP_P2_MIL = 1 };
/* hidden 16, lr 0.01, wd 1e-4, 80 steps (more overfits: docs/PART2.md), lambda_prop 1, lambda_os 0.5,
 * ipw [0.1, 10], margin 0.1, seed 1; kind summary, attn 32, bag_cap 1024. */
void fp_part2_config_default(struct fp_part2_config *c);
enum fp_status fp_part2_config_check(const struct fp_part2_config *c);

/* A batch of patients, host memory, rows grouped by stratum:
 * stratum s is rows [strata[s], strata[s+1]). */
struct fp_part2_batch {
	int n, p;
	const float *x;          /* (n, p) standardised design */
	const int *regimen;      /* (n) 0 surgery, 1 tace, 2 tace_tki */
	const float *rfs_time;   /* (n) months */
	const float *rfs_event;  /* (n) 0/1 */
	const float *os_time;    /* (n) months, or NULL (no OS term) */
	const float *os_event;   /* (n) 0/1; a patient without OS data has os_time NAN */
	int n_strata;
	const int *strata;       /* (n_strata + 1) row offsets */
};

struct fp_part2_model;

enum fp_status fp_part2_create(struct fp_kernels *k, int p, int max_n, const struct fp_part2_config *cfg,
                               struct fp_part2_model **out);
void fp_part2_destroy(struct fp_part2_model *m);
size_t fp_part2_n_params(const struct fp_part2_model *m);
enum fp_status fp_part2_get_params(struct fp_part2_model *m, float *host);
enum fp_status fp_part2_set_params(struct fp_part2_model *m, const float *host);

struct fp_part2_loss {
	double total, rfs, prop, os;
};

/* Loss at the current parameters; with `backward`, gradients into the
 * model's gradient buffer (fp_part2_get_grads). */
enum fp_status fp_part2_loss(struct fp_part2_model *m, const struct fp_part2_batch *b, int backward,
                             struct fp_part2_loss *out);
enum fp_status fp_part2_get_grads(struct fp_part2_model *m, float *host);
/* dx: (n, p) host, the gradient of the last backward fp_part2_loss with
 * respect to its design x (what the MIL pooling back-propagates). */
enum fp_status fp_part2_get_input_grads(struct fp_part2_model *m, int n, float *dx);
/* The inverse-propensity weights fp_part2_train computes at its start, from
 * the propensity head at the current parameters; held by the model for the
 * following fp_part2_loss calls (train/part2_mil.c trains through these). */
enum fp_status fp_part2_set_ipw(struct fp_part2_model *m, const struct fp_part2_batch *b);
/* mask: (n_params) 1 where AdamW's weight decay applies (weight matrices). */
void fp_part2_decay_mask(const struct fp_part2_model *m, unsigned char *mask);

/* cfg.steps AdamW steps on the batch. With prox_center (n_params floats) and
 * mu > 0, adds FedProx's (mu / 2) ||w - center||^2. Optimiser moments start
 * at zero each call (a federated round starts from new global weights). */
enum fp_status fp_part2_train(struct fp_part2_model *m, const struct fp_part2_batch *b, const float *prox_center,
                              double mu, struct fp_part2_loss *final_loss);

/* eta: (n, 3) log-risk under each regimen; prop: (n, 3) propensities; os: (n)
 * OS log-risk. Any output may be NULL. x: (n, p) host. */
enum fp_status fp_part2_predict(struct fp_part2_model *m, const float *x, int n, float *eta, float *prop, float *os);

/* Breslow baseline cumulative hazard of each stratum at `times` (n_times),
 * from the model's eta of the received regimen and the batch's current IPW
 * weights: H0_s(t) = sum over event times u <= t of (weighted events at u) /
 * (sum over the risk set at u of w exp(eta)). h0: (n_strata, n_times).
 * A site predicts survival for its patients from its own stratum:
 * S(t | x, a) = exp(-H0(t) exp(eta(x, a))). */
enum fp_status fp_part2_baseline(struct fp_part2_model *m, const struct fp_part2_batch *b, const double *times,
                                 int n_times, double *h0);

/* The regimen to recommend from one patient's eta (3): start from surgery and
 * move to a more intensive regimen only when its log-risk is lower by at
 * least `margin` than the current choice's. */
int fp_part2_recommend(const float eta[FP_P2_REGIMENS], double margin);

#endif
