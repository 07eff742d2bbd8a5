/*
 * plan.c: the study plan schema and its checks (fp_plan.h).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fp_buf.h"
#include "fp_log.h"
#include "fp_plan.h"

static const char *const models[] = {"part1", "part2", NULL};
static const char *const part2_kinds[] = {"summary", "mil", NULL};
static const char *const strategies[] = {"fedavg", "fedadam", "fedyogi", "median", "trimmed_mean", NULL};

#define K(sec, name, type, field, def, lo, hi, choices, help) \
	{sec, name, type, offsetof(struct fp_study_plan, field), def, lo, hi, choices, help}

static const struct fp_config_key plan_keys[] = {
	K("study", "id", FP_CFG_STRING, study, "phantom-study", 0, 0, NULL, "study identifier, written into every audit record"),
	K("study", "model", FP_CFG_ENUM, model, "part1", 0, 0, models,
	  "which model the rounds train: part1 (tile TME network) or part2 (regimen model)"),
	K("study", "seed", FP_CFG_INT, seed, "1", 0, 2147483647, NULL, "seed of every random choice of the study"),
	K("aggregator", "state_dir", FP_CFG_STRING, state_dir, "aggregator-state", 0, 0, NULL,
	  "folder for the round journal, global models and received updates (keep it on a disk that survives reboots)"),
	K("aggregator", "listen", FP_CFG_STRING, listen, "0.0.0.0:8443", 0, 0, NULL,
	  "address:port the aggregator listens on; sites dial out to it"),
	K("aggregator", "keep_models", FP_CFG_INT, keep_models, "0", 0, 100000, NULL,
	  "global models kept in state_dir/models besides round 0: the last N rounds'; 0 keeps every round's"),
	K("rounds", "count", FP_CFG_INT, rounds, "10", 1, 100000, NULL, "number of federated rounds"),
	K("rounds", "quorum", FP_CFG_INT, quorum, "2", 1, 256, NULL, "updates needed before a round may close"),
	K("rounds", "deadline_s", FP_CFG_DOUBLE, round_deadline_s, "3600", 1, 604800, NULL,
	  "seconds after which a round closes with whatever quorum it has; late sites rejoin next round"),
	K("rounds", "min_samples", FP_CFG_INT, min_samples, "1", 1, 1000000000, NULL,
	  "updates computed from fewer samples are refused"),
	K("strategy", "name", FP_CFG_ENUM, strategy, "fedavg", 0, 0, strategies,
	  "aggregation: fedavg (sample-weighted), fedadam, fedyogi (server optimisers), median, trimmed_mean (robust)"),
	K("strategy", "norm_bound", FP_CFG_DOUBLE, norm_bound, "0", 0, 1e12, NULL,
	  "scale each update down to at most this L2 norm; 0 turns it off"),
	K("strategy", "trim_fraction", FP_CFG_DOUBLE, trim_fraction, "0.1", 0, 0.49, NULL,
	  "trimmed_mean: fraction of updates dropped at each end, per coordinate"),
	K("strategy", "server_lr", FP_CFG_DOUBLE, server_lr, "0.01", 1e-8, 10, NULL, "fedadam/fedyogi: server learning rate"),
	K("strategy", "beta1", FP_CFG_DOUBLE, beta1, "0.9", 0, 0.999999, NULL, "fedadam/fedyogi: first-moment decay"),
	K("strategy", "beta2", FP_CFG_DOUBLE, beta2, "0.99", 0, 0.999999, NULL, "fedadam/fedyogi: second-moment decay"),
	K("strategy", "tau", FP_CFG_DOUBLE, tau, "0.001", 1e-12, 1, NULL, "fedadam/fedyogi: adaptivity (epsilon)"),
	K("local", "epochs", FP_CFG_INT, local_epochs, "1", 1, 1000, NULL, "local epochs per round at each site"),
	K("local", "steps", FP_CFG_INT, local_steps, "0", 0, 10000000, NULL,
	  "local optimiser steps per round; 0 means use local.epochs"),
	K("local", "fedprox_mu", FP_CFG_DOUBLE, fedprox_mu, "0", 0, 100, NULL,
	  "FedProx proximal weight at the sites; 0 is plain local training"),
	K("evaluation", "min_cell", FP_CFG_INT, min_cell, "5", 1, 1000, NULL,
	  "summaries describing fewer patients than this are suppressed before they leave a site"),
	K("part2", "kind", FP_CFG_ENUM, part2_kind, "summary", 0, 0, part2_kinds,
	  "model = part2 inputs: summary (clinical + features.csv columns) or mil (clinical + gated-attention pooling of "
	  "the tile embeddings in each site's quantified caches)"),
	K("part2", "attn", FP_CFG_INT, part2_attn, "32", 1, 1024, NULL, "kind = mil: attention width D"),
	K("part2", "bag_cap", FP_CFG_INT, part2_bag_cap, "1024", 1, 1000000, NULL,
	  "kind = mil: at most this many tiles per patient (a larger bag is subsampled, seeded by study.seed)"),
	K("part2", "embed_dim", FP_CFG_INT, part2_embed_dim, "64", 1, 65536, NULL,
	  "kind = mil: width of the tile embeddings quantify wrote (the Part 1 model's width3); sites check their caches"),
};

const struct fp_config_schema fp_plan_schema = {"plan", plan_keys, sizeof plan_keys / sizeof plan_keys[0]};

/* Line of `section.name` in the INI file at path (0: absent). inih has
 * parsed the file already, so this only locates a key for a cross-key
 * message; it follows inih's syntax: [section], `;`/`#` comments,
 * `name = value` or `name : value`. */
static int key_line(const char *path, const char *section, const char *name)
{
	FILE *f = fopen(path, "r");
	char line[1024], sec[128] = "";
	int no = 0, found = 0;
	if (!f) return 0;
	while (!found && fgets(line, sizeof line, f)) {
		no++;
		const char *s = line;
		while (isspace((unsigned char)*s)) s++;
		if (*s == '[') {
			const char *r = strchr(s, ']');
			if (r) snprintf(sec, sizeof sec, "%.*s", (int)(r - s - 1), s + 1);
			continue;
		}
		size_t k = strcspn(s, "=:");
		if (*s == ';' || *s == '#' || s[k] == '\0' || strcmp(sec, section) != 0) continue;
		while (k > 0 && isspace((unsigned char)s[k - 1])) k--;
		if (k == strlen(name) && strncmp(s, name, k) == 0) found = no;
	}
	fclose(f);
	return found;
}

/* part2.kind = mil is a Part 2 option, and the MIL settings mean nothing
 * without it: either would otherwise be ignored without a word. */
static enum fp_status check_part2(const char *path, const struct fp_study_plan *plan)
{
	if (plan->part2_kind == FP_PLAN_P2_MIL && plan->model != FP_PLAN_PART2)
		return FP_FAIL(FP_ERR_CONFIG, "%s:%d: part2.kind = mil needs study.model = part2 (this plan's model is %s)",
		               path, key_line(path, "part2", "kind"), models[plan->model]);
	if (plan->part2_kind == FP_PLAN_P2_MIL) return FP_OK;
	/* a value off its default (the example file lists every key with its
	 * default, and must load as it is) */
	struct fp_study_plan def;
	FP_TRY(fp_config_defaults(&fp_plan_schema, &def));
	const struct {
		const char *name;
		long value, def;
	} mil_only[] = {{"attn", plan->part2_attn, def.part2_attn},
	                {"bag_cap", plan->part2_bag_cap, def.part2_bag_cap},
	                {"embed_dim", plan->part2_embed_dim, def.part2_embed_dim}};
	for (size_t i = 0; i < sizeof mil_only / sizeof mil_only[0]; i++) {
		if (mil_only[i].value == mil_only[i].def) continue;
		return FP_FAIL(FP_ERR_CONFIG,
		               "%s:%d: part2.%s = %ld applies only to part2.kind = mil (this plan's Part 2 model is the "
		               "summary model): set part2.kind = mil or remove the key",
		               path, key_line(path, "part2", mil_only[i].name), mil_only[i].name, mil_only[i].value);
	}
	return FP_OK;
}

enum fp_status fp_plan_load(const char *path, struct fp_study_plan *plan)
{
	FP_TRY(fp_config_load(&fp_plan_schema, path, plan));
	FP_TRY(check_part2(path, plan));
	if (plan->strategy == FP_AGG_TRIMMED_MEAN && plan->trim_fraction <= 0)
		return FP_FAIL(FP_ERR_CONFIG, "%s: strategy.name = trimmed_mean needs strategy.trim_fraction > 0", path);
	if (plan->study[0] == '\0') return FP_FAIL(FP_ERR_CONFIG, "%s: study.id must not be empty", path);
	if (plan->state_dir[0] == '\0') return FP_FAIL(FP_ERR_CONFIG, "%s: aggregator.state_dir must not be empty", path);
	if (!strchr(plan->listen, ':'))
		return FP_FAIL(FP_ERR_CONFIG, "%s: aggregator.listen '%s' must be host:port", path, plan->listen);
	return FP_OK;
}

void fp_plan_to_agg(const struct fp_study_plan *plan, struct fp_agg_plan *out)
{
	fp_agg_plan_default(out);
	out->strategy = (enum fp_agg_strategy)plan->strategy;
	out->quorum = (int)plan->quorum;
	out->norm_bound = plan->norm_bound;
	out->trim_fraction = plan->trim_fraction;
	out->server_lr = plan->server_lr;
	out->beta1 = plan->beta1;
	out->beta2 = plan->beta2;
	out->tau = plan->tau;
	out->keep_models = (int)plan->keep_models;
}

void fp_plan_hash(const struct fp_study_plan *plan, char out[FP_SHA256_HEX_SIZE])
{
	/* Canonical text: "section.key=value\n" in schema order, values as the
	 * schema prints them, so the hash follows meaning, not formatting. Paths
	 * local to the aggregator (state_dir, listen) are not part of it. */
	struct fp_buf b;
	fp_buf_init(&b, 1 << 20);
	const char *p = (const char *)plan;
	for (size_t i = 0; i < fp_plan_schema.n_keys; i++) {
		const struct fp_config_key *k = &fp_plan_schema.keys[i];
		if (strcmp(k->section, "aggregator") == 0) continue;
		if (strcmp(k->section, "part2") == 0 && plan->part2_kind != FP_PLAN_P2_MIL) continue;
		fp_buf_printf(&b, "%s.%s=", k->section, k->name);
		long l;
		double d;
		int e;
		switch (k->type) {
		case FP_CFG_INT:
			memcpy(&l, p + k->offset, sizeof l);
			fp_buf_printf(&b, "%ld\n", l);
			break;
		case FP_CFG_DOUBLE:
			memcpy(&d, p + k->offset, sizeof d);
			fp_buf_printf(&b, "%.17g\n", d);
			break;
		case FP_CFG_BOOL:
		case FP_CFG_ENUM:
			memcpy(&e, p + k->offset, sizeof e);
			fp_buf_printf(&b, "%d\n", e);
			break;
		case FP_CFG_STRING:
			fp_buf_printf(&b, "%s\n", p + k->offset);
			break;
		}
	}
	uint8_t dg[FP_SHA256_SIZE];
	fp_sha256(b.data ? b.data : "", b.len, dg);
	fp_hex_encode(dg, sizeof dg, out);
	fp_buf_close(&b);
}
