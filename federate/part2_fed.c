/*
 * part2_fed.c: Part 2 statistics on the wire and on the aggregator's disk
 * (fp_part2_fed.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_part2_ckpt.h"
#include "fp_part2_fed.h"
#include "fp_trainers.h"

#define POOL_MAGIC "FPP2POOL"
#define POOL_VERSION 1u

void fp_p2fed_msg_init(struct fp_p2fed_msg *x, const struct fp_p2_stats *s, uint32_t hidden)
{
	fedpath__part2_stats__init(&x->m);
	int p = s->p < 0 ? 0 : s->p > FP_P2_MAX_COLS ? FP_P2_MAX_COLS : s->p;
	for (int j = 0; j < p; j++) {
		x->names[j] = (char *)s->names[j];
		x->count[j] = s->count[j];
		x->sum[j] = s->sum[j];
		x->sumsq[j] = s->sumsq[j];
	}
	x->m.columns = (uint32_t)p;
	x->m.n_names = (size_t)p;
	x->m.names = x->names;
	x->m.n_patients = s->n_patients;
	x->m.n_count = x->m.n_sum = x->m.n_sumsq = (size_t)p;
	x->m.count = x->count;
	x->m.sum = x->sum;
	x->m.sumsq = x->sumsq;
	x->m.sites = (char *)s->sites;
	x->m.hidden = hidden;
}

enum fp_status fp_p2fed_stats_from_msg(const Fedpath__Part2Stats *m, const char *who, struct fp_p2_stats *out,
                                       uint32_t *hidden)
{
	memset(out, 0, sizeof *out);
	if (!m) return FP_FAIL(FP_ERR_PROTOCOL, "part2 statistics from %s: missing", who);
	if (m->columns == 0 || m->columns > FP_P2_MAX_COLS)
		return FP_FAIL(FP_ERR_LIMIT, "part2 statistics from %s: %u columns, allowed 1..%d", who, m->columns,
		               FP_P2_MAX_COLS);
	size_t p = m->columns;
	if (m->n_names != p || m->n_count != p || m->n_sum != p || m->n_sumsq != p)
		return FP_FAIL(FP_ERR_PROTOCOL,
		               "part2 statistics from %s: %zu names, %zu counts, %zu sums, %zu sums of squares for %zu "
		               "columns",
		               who, m->n_names, m->n_count, m->n_sum, m->n_sumsq, p);
	if (m->n_patients == 0 || m->n_patients > 1000000000ull)
		return FP_FAIL(FP_ERR_DATA, "part2 statistics from %s: %llu patients (allowed 1..1e9)", who,
		               (unsigned long long)m->n_patients);
	out->p = (int)p;
	out->n_patients = m->n_patients;
	for (size_t j = 0; j < p; j++) {
		const char *nm = m->names[j];
		if (!nm || !*nm || strlen(nm) >= FP_P2_NAME_MAX)
			return FP_FAIL(FP_ERR_LIMIT, "part2 statistics from %s: column %zu name is empty or %d bytes or more",
			               who, j + 1, FP_P2_NAME_MAX);
		double c = m->count[j];
		if (!isfinite(c) || c < 0 || c > (double)m->n_patients || c != floor(c) || !isfinite(m->sum[j]) ||
		    !isfinite(m->sumsq[j]) || m->sumsq[j] < 0)
			return FP_FAIL(FP_ERR_DATA,
			               "part2 statistics from %s: column '%s' has count %g, sum %g, sum of squares %g "
			               "(counts are whole, at most the %llu patients; sums finite)",
			               who, nm, c, m->sum[j], m->sumsq[j], (unsigned long long)m->n_patients);
		snprintf(out->names[j], FP_P2_NAME_MAX, "%s", nm);
		out->count[j] = c;
		out->sum[j] = m->sum[j];
		out->sumsq[j] = m->sumsq[j];
	}
	snprintf(out->sites, sizeof out->sites, "%s", m->sites ? m->sites : "");
	if (hidden) *hidden = m->hidden;
	return FP_OK;
}

void fp_p2fed_config(const struct fp_study_plan *plan, int hidden, struct fp_part2_config *out)
{
	fp_part2_config_default(out);
	out->lr = FP_P2FED_DEFAULT_LR;
	out->hidden = hidden > 0 ? hidden : FP_P2FED_DEFAULT_HIDDEN;
	out->seed = (uint64_t)plan->seed;
	out->steps = plan->local_steps > 0 ? plan->local_steps : plan->local_epochs * out->steps;
	if (plan->part2_kind == FP_PLAN_P2_MIL) {
		out->kind = FP_P2_MIL;
		out->attn = (int)plan->part2_attn;
		out->bag_cap = (int)plan->part2_bag_cap;
	}
}

/* The record on disk: this build's own struct (the state folder is the
 * aggregator's, never exchanged), after the trunk width. */
struct pooled_record {
	uint32_t hidden;
	uint32_t reserved;
	struct fp_p2_stats s;
};

enum fp_status fp_p2fed_pooled_save(const char *state_dir, const struct fp_p2_stats *pooled, uint32_t hidden)
{
	char path[4200];
	struct pooled_record *r = calloc(1, sizeof *r);
	if (!r) return FP_FAIL(FP_ERR_NOMEM, "part2: pooled statistics record");
	r->hidden = hidden;
	r->s = *pooled;
	snprintf(path, sizeof path, "%s/%s", state_dir, FP_P2FED_POOLED_FILE);
	enum fp_status st = fp_file_commit_framed(path, POOL_MAGIC, POOL_VERSION, r, sizeof *r, 0600);
	free(r);
	return st;
}

enum fp_status fp_p2fed_pooled_load(const char *state_dir, struct fp_p2_stats *pooled, uint32_t *hidden)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", state_dir, FP_P2FED_POOLED_FILE);
	FILE *probe = fopen(path, "rb");
	if (!probe) return FP_FAIL(FP_ERR_NOT_FOUND, "%s: no pooled statistics yet", path);
	fclose(probe);
	void *payload = NULL;
	size_t len = 0;
	uint32_t ver = 0;
	FP_TRY(fp_file_read_framed(path, POOL_MAGIC, POOL_VERSION, sizeof(struct pooled_record), &ver, &payload, &len));
	enum fp_status st = FP_OK;
	if (len != sizeof(struct pooled_record)) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: %zu bytes, this build writes %zu (another build's state folder?)", path, len,
		             sizeof(struct pooled_record));
	} else {
		const struct pooled_record *r = payload;
		if (r->s.p <= 0 || r->s.p > FP_P2_MAX_COLS || r->s.n_patients == 0) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: %d columns, %llu patients", path, r->s.p,
			             (unsigned long long)r->s.n_patients);
		} else {
			*pooled = r->s;
			*hidden = r->hidden;
		}
	}
	free(payload);
	return st;
}

enum fp_status fp_p2fed_build_model(const struct fp_study_plan *plan, uint32_t hidden, const struct fp_p2_stats *pooled,
                                    const struct fp_p2_trainer *tr, const float *params, size_t n_params, long rounds,
                                    int n_sites, const char (*sites)[33], const double (*h0)[3],
                                    struct fp_p2_ckpt *out)
{
	enum fp_status st;
	struct fp_p2_ckpt ck;
	void *v;
	memset(&ck, 0, sizeof ck);
	memset(out, 0, sizeof *out);
	if (n_sites <= 0) return FP_FAIL(FP_ERR_STATE, "part2: a model file needs at least one site's baseline");
	fp_p2fed_config(plan, (int)hidden, &ck.cfg);
	ck.pooled = *pooled;
	ck.p = fp_p2_design_width(pooled);
	ck.n_params = n_params;
	ck.rounds = rounds;
	ck.n_sites = n_sites;
	ck.embed_dim = ck.cfg.kind == FP_P2_MIL ? (int)plan->part2_embed_dim : 0;
	FP_CHECK(st, fp_calloc_array((size_t)ck.p, FP_P2_NAME_MAX, &v, "names")); ck.names = v;
	memcpy(ck.names, fp_p2_trainer_names(tr), (size_t)ck.p * FP_P2_NAME_MAX);
	FP_CHECK(st, fp_calloc_array((size_t)n_sites, sizeof *ck.sites, &v, "sites")); ck.sites = v;
	FP_CHECK(st, fp_calloc_array((size_t)n_sites, sizeof *ck.h0, &v, "baselines")); ck.h0 = v;
	FP_CHECK(st, fp_alloc_array(n_params, sizeof(float), &v, "parameters")); ck.params = v;
	memcpy(ck.sites, sites, (size_t)n_sites * sizeof ck.sites[0]);
	memcpy(ck.h0, h0, (size_t)n_sites * sizeof ck.h0[0]);
	memcpy(ck.params, params, n_params * sizeof(float));
	FP_CHECK(st, fp_p2_params_hash(ck.params, n_params, ck.model_hash));
	*out = ck;
	return FP_OK;
fail:
	fp_p2_ckpt_close(&ck);
	return st;
}

enum fp_status fp_p2fed_write_model(const struct fp_study_plan *plan, uint32_t hidden, const struct fp_p2_stats *pooled,
                                    const struct fp_p2_trainer *tr, const float *params, size_t n_params, long rounds,
                                    int n_sites, const char (*sites)[33], const double (*h0)[3], const char *path,
                                    char hash_out[FP_SHA256_HEX_SIZE])
{
	struct fp_p2_ckpt ck;
	FP_TRY(fp_p2fed_build_model(plan, hidden, pooled, tr, params, n_params, rounds, n_sites, sites, h0, &ck));
	enum fp_status st = fp_p2_ckpt_save(&ck, path);
	if (st == FP_OK && hash_out) snprintf(hash_out, FP_SHA256_HEX_SIZE, "%s", ck.model_hash);
	fp_p2_ckpt_close(&ck);
	return st;
}
