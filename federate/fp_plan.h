/*
 * fp_plan.h: the study plan, the one file the coordinating centre writes to
 * run federated rounds (`fedpath aggregate --plan study.ini`, `fedpath
 * simulate --plan study.ini`). Every key, its default and range are in the
 * schema below; `fedpath config example plan` prints the commented file and
 * docs/examples/plan.ini is that output.
 *
 * The plan hash (SHA-256 of the effective values, not of the file text) is
 * what sites compare with their own configuration before they train, so two
 * files that differ only in comments or key order give the same hash.
 */
#ifndef FP_PLAN_H
#define FP_PLAN_H

#include "fp_aggregator.h"
#include "fp_config.h"
#include "fp_hash.h"

enum fp_plan_model { FP_PLAN_PART1 = 0, FP_PLAN_PART2 = 1 };
/* [part2] kind: the index of the name, equal to train/fp_part2.h's enum
 * fp_part2_kind (FP_P2_SUMMARY, FP_P2_MIL). */
enum fp_plan_part2_kind { FP_PLAN_P2_SUMMARY = 0, FP_PLAN_P2_MIL = 1 };

struct fp_study_plan {
	char study[FP_CONFIG_STR_MAX];      /* study id, e.g. "hcc-adjuvant-2026" */
	char state_dir[FP_CONFIG_STR_MAX];  /* aggregator state: journal, models, updates */
	char listen[FP_CONFIG_STR_MAX];     /* host:port the aggregator listens on */
	long keep_models;                   /* models kept besides round 0 (0: all) */
	int model;                          /* enum fp_plan_model */
	long rounds;
	long quorum;
	double round_deadline_s;            /* a round closes at quorum once this has passed */
	long min_samples;                   /* updates from fewer samples are refused */
	int strategy;                       /* enum fp_agg_strategy */
	double norm_bound;
	double trim_fraction;
	double server_lr, beta1, beta2, tau;
	double fedprox_mu;                  /* site side; 0 = plain FedAvg local training */
	long local_epochs;
	long local_steps;                   /* 0: use local_epochs */
	long seed;
	long min_cell;                      /* small-cell suppression for evaluation summaries */
	/* Part 2 inputs (study.model = part2): the summary table or gated-attention
	 * MIL over the tile embeddings (train/fp_part2_mil.h). */
	int part2_kind;                     /* enum fp_plan_part2_kind */
	long part2_attn;                    /* MIL: attention width D */
	long part2_bag_cap;                 /* MIL: tiles per patient at most */
	long part2_embed_dim;               /* MIL: width of the caches' embeddings (Part 1's width3) */
};

extern const struct fp_config_schema fp_plan_schema;

/* Loads and checks a plan (cross-key rules too: quorum <= 256, trimmed mean
 * needs trim_fraction > 0, part2.kind = mil needs study.model = part2, and
 * the other [part2] keys set off their defaults are refused unless
 * part2.kind = mil, since they would be ignored without a word; such errors
 * name file:line, key and value). */
enum fp_status fp_plan_load(const char *path, struct fp_study_plan *plan);
/* The aggregation part of the plan. */
void fp_plan_to_agg(const struct fp_study_plan *plan, struct fp_agg_plan *out);
/* Hex SHA-256 of the effective values (order-independent of the file).
 * The [part2] keys enter it only when part2.kind = mil (they change nothing
 * otherwise), so a summary plan hashes as it did before they existed, and a
 * site and an aggregator that disagree on the kind, attention width, bag cap
 * or embedding width never exchange a model. */
void fp_plan_hash(const struct fp_study_plan *plan, char out[FP_SHA256_HEX_SIZE]);

#endif
