/*
 * part2_table.c: the Part 2 patient table and its federated standardisation
 * (fp_part2_table.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_arith.h"
#include "fp_log.h"
#include "fp_part2_table.h"

static const char *const clinical_names[FP_P2_N_CLINICAL] = {
	"age", "sex_f", "stage_IB", "stage_II", "stage_IIIA", "stage_IIIB",
	"child_pugh_B", "log10_afp", "tumour_size_cm", "mvi", "edmondson_grade"};

void fp_p2_table_close(struct fp_p2_table *t)
{
	if (!t) return;
	free(t->names);
	free(t->x);
	free(t->patient);
	free(t->regimen);
	free(t->rfs_time);
	free(t->rfs_event);
	free(t->os_time);
	free(t->os_event);
	free(t->orr);
	memset(t, 0, sizeof *t);
}

static void encode_clinical(const struct fp_clinical_row *r, double *x)
{
	x[0] = r->age;
	x[1] = r->sex < 0 ? NAN : (r->sex == FP_SEX_F);
	for (int s = 0; s < 4; s++) x[2 + s] = r->tnm_stage < 0 ? NAN : (r->tnm_stage == FP_TNM_IB + s);
	x[6] = r->child_pugh < 0 ? NAN : (r->child_pugh == FP_CHILD_PUGH_B);
	x[7] = isnan(r->afp_ng_ml) ? NAN : log10(1.0 + r->afp_ng_ml);
	x[8] = r->tumour_size_cm;
	x[9] = r->mvi < 0 ? NAN : r->mvi;
	x[10] = r->edmondson_grade < 0 ? NAN : r->edmondson_grade;
}

enum fp_status fp_p2_table_build(const struct fp_clinical *clin, const struct fp_p2_features *feat,
                                 struct fp_p2_table *t)
{
	enum fp_status st;
	void *v;
	memset(t, 0, sizeof *t);
	int nf = feat ? feat->n_cols : 0;
	if (nf < 0 || FP_P2_N_CLINICAL + nf > FP_P2_MAX_COLS)
		return FP_FAIL(FP_ERR_LIMIT, "part2: %d feature columns; at most %d are supported", nf,
		               FP_P2_MAX_COLS - FP_P2_N_CLINICAL);
	size_t n = fp_clinical_count(clin);
	if (n == 0) return FP_FAIL(FP_ERR_DATA, "part2: the clinical table has no patients");
	t->n = n;
	t->p = FP_P2_N_CLINICAL + nf;
	size_t p = (size_t)t->p;
	FP_CHECK(st, fp_calloc_array(p, FP_P2_NAME_MAX, &v, "part2 names")); t->names = v;
	FP_CHECK(st, fp_alloc_array(n * p, sizeof(double), &v, "part2 table")); t->x = v;
	FP_CHECK(st, fp_calloc_array(n, 65, &v, "part2 ids")); t->patient = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(int), &v, "part2")); t->regimen = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(double), &v, "part2")); t->rfs_time = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(int), &v, "part2")); t->rfs_event = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(double), &v, "part2")); t->os_time = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(int), &v, "part2")); t->os_event = v;
	FP_CHECK(st, fp_alloc_array(n, sizeof(int), &v, "part2")); t->orr = v;
	for (int j = 0; j < FP_P2_N_CLINICAL; j++) snprintf(t->names[j], FP_P2_NAME_MAX, "%s", clinical_names[j]);
	for (int j = 0; j < nf; j++) {
		const char *name = feat->col_names[j];
		if (!name || !name[0] || strlen(name) >= FP_P2_NAME_MAX) {
			st = FP_FAIL(FP_ERR_FORMAT, "part2: feature column %d has an empty or too long name", j + 1);
			goto fail;
		}
		snprintf(t->names[FP_P2_N_CLINICAL + j], FP_P2_NAME_MAX, "%s", name);
	}
	for (size_t i = 0; i < n; i++) {
		const struct fp_clinical_row *r = fp_clinical_row(clin, i);
		double *x = t->x + i * p;
		if (i == 0) snprintf(t->site, sizeof t->site, "%s", r->centre);
		snprintf(t->patient[i], 65, "%s", r->patient_id);
		encode_clinical(r, x);
		t->regimen[i] = r->regimen;
		t->rfs_time[i] = r->rfs_months;
		t->rfs_event[i] = r->rfs_event;
		t->os_time[i] = r->os_months;
		t->os_event[i] = r->os_event;
		t->orr[i] = r->orr;
		/* Mean over this patient's slides; a slide's NAN feature is skipped. */
		int any = 0;
		for (int j = 0; j < nf; j++) {
			double s = 0;
			int c = 0;
			for (size_t k = 0; k < feat->n_rows; k++) {
				if (strcmp(feat->patient_id[k], r->patient_id) != 0) continue;
				double val = feat->values[k * (size_t)nf + (size_t)j];
				if (isnan(val)) continue;
				s += val;
				c++;
			}
			x[FP_P2_N_CLINICAL + j] = c ? s / c : NAN;
			any |= c > 0;
		}
		if (nf > 0 && !any) t->n_without_features++;
	}
	if (t->n_without_features)
		fp_log(FP_LOG_WARN, "part2: %s: %zu of %zu patients have no slide features; they are kept, imputed and flagged",
		       t->site, t->n_without_features, n);
	return FP_OK;
fail:
	fp_p2_table_close(t);
	return st;
}

void fp_p2_stats_local(const struct fp_p2_table *t, struct fp_p2_stats *s)
{
	memset(s, 0, sizeof *s);
	s->p = t->p;
	s->n_patients = t->n;
	snprintf(s->sites, sizeof s->sites, "%s", t->site);
	for (int j = 0; j < t->p; j++) {
		snprintf(s->names[j], FP_P2_NAME_MAX, "%s", t->names[j]);
		for (size_t i = 0; i < t->n; i++) {
			double x = t->x[i * (size_t)t->p + (size_t)j];
			if (isnan(x)) continue;
			s->count[j] += 1;
			s->sum[j] += x;
			s->sumsq[j] += x * x;
		}
	}
}

enum fp_status fp_p2_stats_merge(struct fp_p2_stats *pooled, const struct fp_p2_stats *site)
{
	if (pooled->n_patients == 0 && pooled->p == 0) {
		*pooled = *site;
		return FP_OK;
	}
	if (pooled->p != site->p || memcmp(pooled->names, site->names, sizeof pooled->names[0] * (size_t)site->p) != 0) {
		int j = 0;
		while (j < pooled->p && j < site->p && strcmp(pooled->names[j], site->names[j]) == 0) j++;
		return FP_FAIL(FP_ERR_DATA,
		               "part2: feature columns differ between sites: column %d is '%s' at %s but '%s' at %s; every site "
		               "must run quantify with the same model",
		               j + 1, j < pooled->p ? pooled->names[j] : "(none)", pooled->sites,
		               j < site->p ? site->names[j] : "(none)", site->sites);
	}
	pooled->n_patients += site->n_patients;
	for (int j = 0; j < site->p; j++) {
		pooled->count[j] += site->count[j];
		pooled->sum[j] += site->sum[j];
		pooled->sumsq[j] += site->sumsq[j];
	}
	size_t len = strlen(pooled->sites);
	if (len + strlen(site->sites) + 2 < sizeof pooled->sites)
		snprintf(pooled->sites + len, sizeof pooled->sites - len, ",%s", site->sites);
	return FP_OK;
}

enum fp_status fp_p2_standardise(const struct fp_p2_table *t, const struct fp_p2_stats *pooled, double **design,
                                 int *p_out, char (**names_out)[FP_P2_NAME_MAX])
{
	enum fp_status st;
	double *mean = NULL, *sd = NULL, *d = NULL;
	char(*names)[FP_P2_NAME_MAX] = NULL;
	int *indicator = NULL;
	void *v;
	if (pooled->p != t->p)
		return FP_FAIL(FP_ERR_DATA, "part2: pooled statistics have %d columns, this site's table %d", pooled->p, t->p);
	for (int j = 0; j < t->p; j++)
		if (strcmp(pooled->names[j], t->names[j]) != 0)
			return FP_FAIL(FP_ERR_DATA, "part2: column %d is '%s' here but '%s' in the pooled statistics", j + 1,
			               t->names[j], pooled->names[j]);
	size_t p = (size_t)t->p;
	FP_CHECK(st, fp_alloc_array(p, sizeof(double), &v, "part2")); mean = v;
	FP_CHECK(st, fp_alloc_array(p, sizeof(double), &v, "part2")); sd = v;
	FP_CHECK(st, fp_calloc_array(p, sizeof(int), &v, "part2")); indicator = v;
	int pout = t->p;
	for (size_t j = 0; j < p; j++) {
		double c = pooled->count[j];
		mean[j] = c > 0 ? pooled->sum[j] / c : 0;
		double var = c > 1 ? (pooled->sumsq[j] - c * mean[j] * mean[j]) / (c - 1) : 0;
		sd[j] = var > 0 ? sqrt(var) : 0;
		if (!(sd[j] > 1e-12 * (fabs(mean[j]) + 1))) {
			if (c > 0)
				fp_log(FP_LOG_WARN, "part2: column %s is constant across sites (value %g); it is centred, not scaled",
				       t->names[j], mean[j]);
			sd[j] = 1;
		}
		if (c < (double)pooled->n_patients) {
			indicator[j] = pout++;
		} else {
			indicator[j] = -1;
		}
	}
	FP_CHECK(st, fp_alloc_array(t->n * (size_t)pout, sizeof(double), &v, "part2 design")); d = v;
	FP_CHECK(st, fp_calloc_array((size_t)pout, FP_P2_NAME_MAX, &v, "part2 names")); names = v;
	for (size_t j = 0; j < p; j++) {
		snprintf(names[j], FP_P2_NAME_MAX, "%s", t->names[j]);
		if (indicator[j] >= 0) snprintf(names[indicator[j]], FP_P2_NAME_MAX, "%.36s_missing", t->names[j]);
	}
	for (size_t i = 0; i < t->n; i++) {
		const double *x = t->x + i * p;
		double *row = d + i * (size_t)pout;
		for (size_t j = 0; j < p; j++) {
			int miss = isnan(x[j]);
			row[j] = miss ? 0 : (x[j] - mean[j]) / sd[j];
			if (indicator[j] >= 0) row[indicator[j]] = miss;
		}
	}
	*design = d;
	*p_out = pout;
	*names_out = names;
	d = NULL;
	names = NULL;
	st = FP_OK;
fail:
	free(mean);
	free(sd);
	free(indicator);
	free(d);
	free(names);
	return st;
}
