/*
 * fp_part2_mil.h: the gated-attention MIL option of the Part 2 regimen model
 * (fp_part2.h with cfg.kind = FP_P2_MIL).
 *
 * Instead of the patient table's summary TME columns, the trunk sees one
 * vector pooled from the patient's bag of tile embeddings (the
 * /features/tilenet rows `fedpath quantify` writes into each tile cache, over
 * all the patient's slides), by gated attention (Ilse et al. 2018):
 *     s_i = w^T (tanh(V h_i + bv) * sigmoid(U h_i + bu)),  h_i: (E)
 *     a   = softmax_i(s),   m = sum_i a_i h_i                (E)
 *     x   = [clinical design (pc), m (E)]
 * and then the same trunk, heads, loss, inverse-propensity weights and
 * strata as the summary model (fp_part2.h). The pooling runs through the
 * kernels' fp_k_attnpool_forward/backward, one bag at a time.
 *
 * Parameters, one flat vector: the summary model's ten tensors for p = pc + E
 * (trunk.weight ... os.bias, fp_part2.h), then mil.V (D, E), mil.bv (D),
 * mil.U (D, E), mil.bu (D), mil.w (D), D = cfg.attn. A federated round
 * exchanges this vector through the same local-training step as the summary
 * model (weights in, update out).
 *
 * Bags: a patient's bag holds at most cfg.bag_cap tiles. fp_p2_bagset_build
 * subsamples a larger bag deterministically: each tile gets the score
 * mix(seed, FNV-1a(slide uid) + tile index) and the bag_cap smallest scores
 * are kept, ordered by (slide uid, tile index), so the choice depends neither
 * on the order the slides are listed in nor on the machine.
 * A patient without any embedding is an error naming the patient (FP_ERR_DATA):
 * a zero vector would sit far from every real bag and silently bias the trunk.
 *
 * Facts (tests/unit/test_part2_mil.c):
 *  - the analytic gradient equals central finite differences, for the
 *    attention parameters and for the tile embeddings;
 *  - permuting the tiles of a bag leaves the loss unchanged (to float error);
 *  - the same seed and data give bit-identical parameters after training;
 *  - on a phantom whose outcome depends on a tile-level signal, training
 *    lowers the loss and the C-index beats chance clearly.
 * Ownership: fp_part2_mil_create gives an owned model; the kernels handle is
 * borrowed and must outlive it; bags are borrowed for the duration of a call.
 */
#ifndef FP_PART2_MIL_H
#define FP_PART2_MIL_H

#include <stddef.h>
#include <stdint.h>

#include "fp_part2.h"

/* The bags of a batch, row i of the batch owning tiles [offset[i], offset[i+1]). */
struct fp_part2_bags {
	int n;                        /* patients: the batch's rows */
	int e;                        /* embedding width E */
	const uint64_t *offset;       /* (n + 1) */
	const float *emb;             /* (offset[n], E) */
	const char *const *patient;   /* (n) ids for messages, or NULL */
};

struct fp_part2_mil;

/* pc: clinical design columns (0 allowed); e: embedding width;
 * cfg->kind must be FP_P2_MIL. */
enum fp_status fp_part2_mil_create(struct fp_kernels *k, int pc, int e, int max_n, const struct fp_part2_config *cfg,
                                   struct fp_part2_mil **out);
void fp_part2_mil_destroy(struct fp_part2_mil *m);
size_t fp_part2_mil_n_params(const struct fp_part2_mil *m);
/* Flat parameters (fp_part2_mil_n_params floats), in the order above. */
enum fp_status fp_part2_mil_get_params(struct fp_part2_mil *m, float *host);
enum fp_status fp_part2_mil_set_params(struct fp_part2_mil *m, const float *host);
enum fp_status fp_part2_mil_get_grads(struct fp_part2_mil *m, float *host);
/* Name of the tensor holding flat parameter i ("trunk.weight", "mil.V"...). */
const char *fp_part2_mil_param_name(const struct fp_part2_mil *m, size_t i);

/* b->x, b->p: the clinical design (n, pc); outcomes and strata as fp_part2.h.
 * With backward, gradients into the model (fp_part2_mil_get_grads) and, when
 * demb is not NULL, d loss / d embeddings into demb: (offset[n], E). */
enum fp_status fp_part2_mil_loss(struct fp_part2_mil *m, const struct fp_part2_batch *b,
                                 const struct fp_part2_bags *bags, int backward, float *demb,
                                 struct fp_part2_loss *out);
/* cfg.steps AdamW steps (torch's arithmetic, decay on weight matrices incl.
 * mil.V, mil.U), FedProx as fp_part2_train, IPW from the propensity head at
 * the start of the call. */
enum fp_status fp_part2_mil_train(struct fp_part2_mil *m, const struct fp_part2_batch *b,
                                  const struct fp_part2_bags *bags, const float *prox_center, double mu,
                                  struct fp_part2_loss *final_loss);
/* x: (n, pc) clinical design; outputs as fp_part2_predict, any may be NULL;
 * attn: (offset[n]) attention weights of every tile, or NULL. */
enum fp_status fp_part2_mil_predict(struct fp_part2_mil *m, const float *x, const struct fp_part2_bags *bags,
                                    float *eta, float *prop, float *os, float *attn);
/* As fp_part2_baseline, with the pooled inputs. */
enum fp_status fp_part2_mil_baseline(struct fp_part2_mil *m, const struct fp_part2_batch *b,
                                     const struct fp_part2_bags *bags, const double *times, int n_times, double *h0);

/* ---- bags from tile caches ---- */

/* One slide's embeddings: `row` is its patient's row in the batch. */
struct fp_p2_slide_emb {
	int row;
	const char *uid;      /* slide uid (the cache's slide_uid attribute) */
	uint64_t n;           /* tiles */
	const float *emb;     /* (n, E) */
};

/* Owned bags (fp_p2_bagset_close frees). */
struct fp_p2_bagset {
	struct fp_part2_bags bags;
	uint64_t *offset;
	float *emb;
	const char **ids;                    /* (n) borrowed patient ids, or NULL; the array is owned */
	uint64_t n_tiles_in, n_tiles_kept;   /* before and after the cap */
	int n_capped;                        /* patients whose bag was subsampled */
};

/* Builds the bags of n_rows patients from their slides, subsampling each
 * bag to `cap` tiles as described above. Every embedding must be finite. */
enum fp_status fp_p2_bagset_build(int n_rows, int e, const struct fp_p2_slide_emb *slides, size_t n_slides, int cap,
                                  uint64_t seed, struct fp_p2_bagset *out);
void fp_p2_bagset_close(struct fp_p2_bagset *s);

/* Reads /features/tilenet (n, E) and the slide_uid attribute of one tile
 * cache. FP_ERR_NOT_FOUND, naming the file, when quantify has not run on it.
 * emb: owned by the caller (free). */
enum fp_status fp_p2_read_cache_embeddings(const char *path, char uid[65], float **emb, uint64_t *n, int *e);

/* Every *.h5 cache of `dir` (in name order) read as above; all must share
 * one embedding width (FP_ERR_DATA naming two caches that differ).
 * fp_p2_caches_free releases the array. */
struct fp_p2_cache_emb {
	char uid[65];
	char path[4096];
	uint64_t n;
	int e;
	float *emb;           /* (n, e) owned */
};
enum fp_status fp_p2_read_caches(const char *dir, struct fp_p2_cache_emb **out, size_t *n_out);
void fp_p2_caches_free(struct fp_p2_cache_emb *c, size_t n);

#endif
