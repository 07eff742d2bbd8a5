/*
 * fp_part2_ckpt.h: the Part 2 model checkpoint, what `fedpath simulate`
 * (part2) writes and `fedpath predict` reads.
 *
 * One framed file (common/fp_file.h, magic "FPP2CKPT", version 1, SHA-256 of
 * the payload checked on read) whose payload is a JSON document with: the
 * model configuration, the raw column names and the pooled standardisation
 * statistics (per column count, sum, sum of squares; patient count), the
 * design column names, the flat parameter vector (floats written with 9
 * significant digits: exact for float32), each site's Breslow baseline
 * cumulative hazard at 12/24/36 months, and the model hash (hex SHA-256 of
 * the float32 parameters, as the aggregator hashes its models).
 *
 * The configuration records the model kind ("summary" or "mil", with the
 * MIL attention width and bag cap; a file without it is a summary model) and
 * a MIL checkpoint the tile-embedding width `embed_dim`; its design columns
 * are the clinical ones, the model's input being them plus the pooled
 * embedding (train/fp_part2_mil.h).
 *
 * The reader refuses (FP_ERR_FORMAT / FP_ERR_CHECKSUM, naming the file and
 * field) a parameter count that does not match the configuration and the
 * design width, design names that do not follow from the statistics, a
 * baseline that is not finite and non-decreasing, or parameters whose hash
 * is not the stored model hash.
 */
#ifndef FP_PART2_CKPT_H
#define FP_PART2_CKPT_H

#include <stddef.h>

#include "fp_hash.h"
#include "fp_part2.h"
#include "fp_part2_table.h"

#define FP_P2_CKPT_VERSION 1
#define FP_P2_CKPT_HORIZONS 3 /* 12, 24, 36 months */

struct fp_p2_ckpt {
	struct fp_part2_config cfg;
	struct fp_p2_stats pooled;          /* raw columns and their pooled sums */
	int p;                              /* design columns */
	char (*names)[FP_P2_NAME_MAX];      /* (p) design names; owned */
	size_t n_params;
	float *params;                      /* (n_params) owned */
	int n_sites;
	char (*sites)[33];                  /* (n_sites) owned */
	double (*h0)[FP_P2_CKPT_HORIZONS];  /* (n_sites, 3) owned */
	long rounds;                        /* federated rounds behind the parameters */
	int embed_dim;                      /* MIL: tile embedding width E; 0 for the summary model */
	char model_hash[FP_SHA256_HEX_SIZE];
};

/* Hex SHA-256 of n float32 values (the aggregator's model hash). */
enum fp_status fp_p2_params_hash(const float *params, size_t n, char out[FP_SHA256_HEX_SIZE]);

/* Fills c->model_hash from the parameters and writes `path` atomically. */
enum fp_status fp_p2_ckpt_save(struct fp_p2_ckpt *c, const char *path);
enum fp_status fp_p2_ckpt_load(const char *path, struct fp_p2_ckpt *out);
void fp_p2_ckpt_close(struct fp_p2_ckpt *c);

/* The n_params a configuration and design width give (no model built). */
size_t fp_p2_ckpt_expected_params(int p, int hidden);
/* The same for either kind: p design columns, e the MIL embedding width. */
size_t fp_p2_ckpt_expected_params_of(const struct fp_part2_config *cfg, int p, int e);
/* FP_ERR_FORMAT naming `path` and both kinds when c is not of `kind`
 * (enum fp_part2_kind): a summary checkpoint is never run as MIL or back. */
enum fp_status fp_p2_ckpt_require_kind(const struct fp_p2_ckpt *c, int kind, const char *path);

#endif
