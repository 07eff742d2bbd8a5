/*
 * test_part2_table.c: the Part 2 patient table and federated standardisation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_clinical.h"
#include "fp_common.h"
#include "fp_part2_table.h"
#include "fp_test.h"

static const char *site_a =
	"patient_id,centre,slide_file,age,sex,tnm_stage,child_pugh,afp_ng_ml,tumour_size_cm,mvi,edmondson_grade,regimen,"
	"rfs_months,rfs_event,os_months,os_event,orr\n"
	"A1,HA,a1.svs,61,M,IA,A,12,3.5,0,2,surgery,20.5,1,30,0,\n"
	"A2,HA,a2.svs;a2b.svs,55,F,II,B,,6.1,1,3,tace,8,1,15,1,1\n"
	"A3,HA,a3.svs,,M,,A,400,2.2,,1,tace_tki,60,0,60,0,0\n"
	"A4,HA,a4.svs,70,F,IIIA,A,3000,9.0,1,4,tace,4.5,1,9,1,\n";
static const char *site_b =
	"patient_id,centre,slide_file,age,sex,tnm_stage,child_pugh,afp_ng_ml,tumour_size_cm,mvi,edmondson_grade,regimen,"
	"rfs_months,rfs_event,os_months,os_event,orr\n"
	"B1,HB,b1.svs,48,M,IB,A,5,1.5,0,1,surgery,44,0,44,0,\n"
	"B2,HB,b2.svs,66,M,IIIB,B,80000,12,1,3,tace_tki,3,1,7,1,0\n"
	"B3,HB,b3.svs,59,F,IA,A,20,,0,2,surgery,25,1,,,\n";

static const char *fnames[2] = {"lymph_density_tumour", "stroma_fraction"};

static void build(const char *csv, const char *name, const char *const *ids, const double *vals, size_t rows,
                  const char *const *cols, struct fp_clinical **clin, struct fp_p2_table *t)
{
	CHECK_OK(fp_clinical_load_string(csv, strlen(csv), name, NULL, clin));
	struct fp_p2_features f = {rows, 2, cols, ids, vals};
	CHECK_OK(fp_p2_table_build(*clin, &f, t));
}

/* "standardising with pooled statistics equals standardising the rows of all
 * sites together" */
FP_TEST(pooled_standardisation_equals_centralised)
{
	const char *ids_a[] = {"A1", "A2", "A2", "A4"};
	const double va[] = {100, 0.2, 300, NAN, 500, 0.4, 50, 0.1};
	const char *ids_b[] = {"B1", "B2", "B3"};
	const double vb[] = {10, 0.5, 20, 0.6, 30, 0.7};
	struct fp_clinical *ca = NULL, *cb = NULL;
	struct fp_p2_table ta, tb;
	build(site_a, "a.csv", ids_a, va, 4, fnames, &ca, &ta);
	build(site_b, "b.csv", ids_b, vb, 3, fnames, &cb, &tb);
	CHECK_INT_EQ(ta.p, FP_P2_N_CLINICAL + 2);
	CHECK_INT_EQ(ta.n_without_features, 1); /* A3 */
	/* A2's features: mean over its two slides, NAN skipped */
	CHECK_NEAR(ta.x[1 * ta.p + FP_P2_N_CLINICAL], 400, 0, 0);
	CHECK_NEAR(ta.x[1 * ta.p + FP_P2_N_CLINICAL + 1], 0.4, 0, 0);
	CHECK(isnan(ta.x[1 * ta.p + 7])); /* AFP missing */
	CHECK(isnan(ta.x[2 * ta.p + 2]));  /* stage missing: every dummy NAN */

	struct fp_p2_stats sa, sb, pooled;
	memset(&pooled, 0, sizeof pooled);
	fp_p2_stats_local(&ta, &sa);
	fp_p2_stats_local(&tb, &sb);
	CHECK_OK(fp_p2_stats_merge(&pooled, &sa));
	CHECK_OK(fp_p2_stats_merge(&pooled, &sb));
	CHECK_INT_EQ(pooled.n_patients, 7);

	double *da = NULL, *db = NULL;
	int pa = 0, pb = 0;
	char(*na)[FP_P2_NAME_MAX] = NULL, (*nb)[FP_P2_NAME_MAX] = NULL;
	CHECK_OK(fp_p2_standardise(&ta, &pooled, &da, &pa, &na));
	CHECK_OK(fp_p2_standardise(&tb, &pooled, &db, &pb, &nb));
	CHECK_INT_EQ(pa, pb);
	for (int j = 0; j < pa; j++) CHECK_STR_EQ(na[j], nb[j]);

	/* centralised: all 7 rows, column by column */
	int p = ta.p;
	for (int j = 0; j < p; j++) {
		double s = 0, ss = 0, c = 0;
		for (size_t i = 0; i < 7; i++) {
			double x = i < 4 ? ta.x[i * p + j] : tb.x[(i - 4) * p + j];
			if (isnan(x)) continue;
			s += x;
			c++;
		}
		double m = s / c;
		for (size_t i = 0; i < 7; i++) {
			double x = i < 4 ? ta.x[i * p + j] : tb.x[(i - 4) * p + j];
			if (!isnan(x)) ss += (x - m) * (x - m);
		}
		double sd = sqrt(ss / (c - 1));
		int has_missing = c < 7;
		int found = 0;
		for (int k = p; k < pa; k++)
			if (strncmp(na[k], na[j], strlen(na[j])) == 0 && strstr(na[k], "_missing")) found = 1;
		CHECK_INT_EQ(found, has_missing);
		for (size_t i = 0; i < 7; i++) {
			double x = i < 4 ? ta.x[i * p + j] : tb.x[(i - 4) * p + j];
			double z = i < 4 ? da[i * pa + j] : db[(i - 4) * pb + j];
			double want = isnan(x) ? 0 : (x - m) / sd;
			CHECK_NEAR(z, want, 1e-12, 1e-12);
		}
	}
	free(da);
	free(db);
	free(na);
	free(nb);
	fp_p2_table_close(&ta);
	fp_p2_table_close(&tb);
	fp_clinical_destroy(ca);
	fp_clinical_destroy(cb);
}

/* "sites whose feature columns differ are refused, naming the first column
 * that differs and both sites" */
FP_TEST(mismatched_columns_refused)
{
	const char *other[2] = {"lymph_density_tumour", "necrosis_fraction"};
	const char *ids_a[] = {"A1"};
	const double va[] = {1, 2};
	const char *ids_b[] = {"B1"};
	struct fp_clinical *ca = NULL, *cb = NULL;
	struct fp_p2_table ta, tb;
	build(site_a, "a.csv", ids_a, va, 1, fnames, &ca, &ta);
	build(site_b, "b.csv", ids_b, va, 1, other, &cb, &tb);
	struct fp_p2_stats sa, sb, pooled;
	memset(&pooled, 0, sizeof pooled);
	fp_p2_stats_local(&ta, &sa);
	fp_p2_stats_local(&tb, &sb);
	CHECK_OK(fp_p2_stats_merge(&pooled, &sa));
	CHECK_STATUS(fp_p2_stats_merge(&pooled, &sb), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "stroma_fraction");
	CHECK_STR_CONTAINS(fp_error_msg(), "necrosis_fraction");
	CHECK_STR_CONTAINS(fp_error_msg(), "HA");
	CHECK_STR_CONTAINS(fp_error_msg(), "HB");
	fp_p2_table_close(&ta);
	fp_p2_table_close(&tb);
	fp_p2_table_close(&tb); /* closing twice is harmless */
	fp_clinical_destroy(ca);
	fp_clinical_destroy(cb);
}

/* "a constant column keeps SD 1 and is reported, never divided by zero" */
FP_TEST(constant_column_not_divided_by_zero)
{
	const char *ids[] = {"B1", "B2", "B3"};
	const double v[] = {7, 1, 7, 2, 7, 3};
	struct fp_clinical *c = NULL;
	struct fp_p2_table t;
	build(site_b, "b.csv", ids, v, 3, fnames, &c, &t);
	struct fp_p2_stats s, pooled;
	memset(&pooled, 0, sizeof pooled);
	fp_p2_stats_local(&t, &s);
	CHECK_OK(fp_p2_stats_merge(&pooled, &s));
	double *d = NULL;
	int p = 0;
	char(*n)[FP_P2_NAME_MAX] = NULL;
	CHECK_OK(fp_p2_standardise(&t, &pooled, &d, &p, &n));
	for (size_t i = 0; i < 3; i++) {
		CHECK(isfinite(d[i * p + FP_P2_N_CLINICAL]));
		CHECK_NEAR(d[i * p + FP_P2_N_CLINICAL], 0, 0, 0);
	}
	free(d);
	free(n);
	fp_p2_table_close(&t);
	fp_clinical_destroy(c);
}
