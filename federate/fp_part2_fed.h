/*
 * fp_part2_fed.h: what the TLS aggregator (server.c) and the site agent
 * (agent.c) share to run Part 2 (the regimen model) over the wire.
 *
 * Takes fp_p2_stats (sums and counts only; train/fp_part2_table.h) and the
 * study plan; produces protobuf Part2Stats messages (fedpath.proto), the
 * aggregator's durable copy of the pooled statistics, and the Part 2 model
 * configuration both sides must build identically.
 * Invariants:
 *  - a message that converts back (fp_p2fed_stats_from_msg) is within the
 *    limits (<= FP_P2_MAX_COLS columns, names shorter than FP_P2_NAME_MAX,
 *    finite non-negative counts no larger than the patient count), and the
 *    struct is zeroed first, so two conversions of equal messages compare
 *    equal with memcmp, as fp_p2_stats_merge expects;
 *  - doubles travel as protobuf doubles (their bits), so the pooled
 *    statistics a site receives are the aggregator's, bit for bit;
 *  - fp_p2fed_config is the configuration `fedpath simulate` (part2) builds:
 *    defaults, the trunk width, the plan's seed and steps, and its [part2]
 *    kind (with the MIL attention width and bag cap), so a TLS study and the
 *    MPI simulation of one plan start from the same model; a MIL model's
 *    embedding width is the plan's part2.embed_dim.
 * Ownership: fp_p2fed_msg_init fills a message whose arrays live in the
 * caller's struct fp_p2fed_msg (no heap).
 */
#ifndef FP_PART2_FED_H
#define FP_PART2_FED_H

#include <stdint.h>

#include "fedpath.pb-c.h"
#include "fp_part2.h"
#include "fp_part2_table.h"
#include "fp_plan.h"
#include "fp_status.h"

#define FP_P2FED_DEFAULT_HIDDEN 16
/* AdamW learning rate of federated Part 2 rounds (fp_p2fed_config; `fedpath
 * simulate` unless --lr). Not the central default (0.01 x 80 steps, fp_part2.h):
 * rounds x local steps add up to more steps, and at 0.01 the model overfits
 * (docs/PART2.md, federated quality: 6 x 150 patients, held-out gap
 * 0.045-0.053 at 0.01 x 10 x 20 vs 0.021-0.029 at 0.001 x 20 x 20). */
#define FP_P2FED_DEFAULT_LR 0.001
#define FP_P2FED_POOLED_FILE "part2-pooled.bin" /* in the aggregator's state folder */

struct fp_p2fed_msg {
	Fedpath__Part2Stats m;
	char *names[FP_P2_MAX_COLS];
	double count[FP_P2_MAX_COLS], sum[FP_P2_MAX_COLS], sumsq[FP_P2_MAX_COLS];
};

/* Fills x->m from s (borrows s's strings; s must outlive the message). */
void fp_p2fed_msg_init(struct fp_p2fed_msg *x, const struct fp_p2_stats *s, uint32_t hidden);
/* Checks and converts; `who` names the sender in errors. hidden may be NULL. */
enum fp_status fp_p2fed_stats_from_msg(const Fedpath__Part2Stats *m, const char *who, struct fp_p2_stats *out,
                                       uint32_t *hidden);

/* The Part 2 model configuration of a study (see above). */
void fp_p2fed_config(const struct fp_study_plan *plan, int hidden, struct fp_part2_config *out);

/* <state_dir>/part2-pooled.bin: framed (magic FPP2POOL, SHA-256), written
 * with fp_file_commit_framed before round 1 opens. Load: FP_ERR_NOT_FOUND
 * when absent. */
enum fp_status fp_p2fed_pooled_save(const char *state_dir, const struct fp_p2_stats *pooled, uint32_t hidden);
enum fp_status fp_p2fed_pooled_load(const char *state_dir, struct fp_p2_stats *pooled, uint32_t *hidden);

/* Writes the Part 2 model file `fedpath predict --model` reads
 * (train/fp_part2_ckpt.h), as `fedpath simulate` does: configuration of
 * fp_p2fed_config, pooled statistics, the design names of `tr` (a trainer
 * built from `pooled`), the final parameters and each site's baseline in
 * canonical site order. hash_out (may be NULL) gets the model hash. */
struct fp_p2_trainer;
struct fp_p2_ckpt;
/* The same model in memory (*out owned: fp_p2_ckpt_close; params copied;
 * model_hash filled). */
enum fp_status fp_p2fed_build_model(const struct fp_study_plan *plan, uint32_t hidden, const struct fp_p2_stats *pooled,
                                    const struct fp_p2_trainer *tr, const float *params, size_t n_params, long rounds,
                                    int n_sites, const char (*sites)[33], const double (*h0)[3],
                                    struct fp_p2_ckpt *out);
enum fp_status fp_p2fed_write_model(const struct fp_study_plan *plan, uint32_t hidden, const struct fp_p2_stats *pooled,
                                    const struct fp_p2_trainer *tr, const float *params, size_t n_params, long rounds,
                                    int n_sites, const char (*sites)[33], const double (*h0)[3], const char *path,
                                    char hash_out[FP_SHA256_HEX_SIZE]);

#endif
