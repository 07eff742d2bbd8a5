/*
 * test_clinical.c: the clinical table loader (fp_clinical.h facts,
 * docs/CLINICAL_SCHEMA.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_clinical.h"
#include "fp_common.h"
#include "fp_test.h"

#define HEADER "patient_id,centre,slide_file,age,sex,tnm_stage,child_pugh,afp_ng_ml,tumour_size_cm,mvi,edmondson_grade,regimen,rfs_months,rfs_event,os_months,os_event,orr\n"
#define ROW1 "P001,C01,p001_a.svs;p001_b.svs,61.5,M,IIIA,A,1200,5.2,1,3,tace_tki,14.2,1,30.0,0,1\n"
#define ROW2 "P002,C01,p002.svs,NA,F,,B,,,,,surgery,60,0,,,\n"

static struct fp_clinical *load(const char *text, enum fp_status want)
{
	struct fp_clinical *c = NULL;
	char path[4096];
	snprintf(path, sizeof path, "%s/clinical.csv", fp_test_tmpdir());
	CHECK_OK(fp_file_commit(path, text, strlen(text), 0644));
	CHECK_STATUS(fp_clinical_load(path, NULL, &c), want);
	return c;
}

FP_TEST(valid_table_typed_and_linked)
{
	struct fp_clinical *c = load(HEADER ROW1 ROW2, FP_OK);
	CHECK_INT_EQ(fp_clinical_count(c), 2);
	const struct fp_clinical_row *r = fp_clinical_row(c, 0);
	CHECK_STR_EQ(r->patient_id, "P001");
	CHECK_INT_EQ(r->n_slides, 2);
	CHECK_STR_EQ(r->slides[1], "p001_b.svs");
	CHECK_NEAR(r->age, 61.5, 0, 0);
	CHECK_INT_EQ(r->sex, FP_SEX_M);
	CHECK_INT_EQ(r->tnm_stage, FP_TNM_IIIA);
	CHECK_INT_EQ(r->regimen, FP_REGIMEN_TACE_TKI);
	CHECK_INT_EQ(r->orr, 1);
	r = fp_clinical_row(c, 1);
	CHECK(isnan(r->age));          /* NA */
	CHECK_INT_EQ(r->tnm_stage, -1); /* empty */
	CHECK(isnan(r->os_months));
	CHECK_INT_EQ(fp_clinical_find(c, "P002"), 1);
	CHECK_INT_EQ(fp_clinical_find(c, "nobody"), -1);
	char buf[8192];
	CHECK_OK(fp_clinical_slide_path(c, "p002.svs", buf, sizeof buf));
	CHECK_STR_CONTAINS(buf, "/slides/p002.svs");
	fp_clinical_destroy(c);
}

FP_TEST(column_order_free_extras_bom_crlf_quotes)
{
	const char *t = "\xEF\xBB\xBFx_hospital_note,rfs_event,rfs_months,regimen,slide_file,centre,patient_id\r\n"
	                "\"anything, really\",1,3.5,tace,\"a b.svs\",C2,P-1.a\r\n";
	struct fp_clinical *c = load(t, FP_OK);
	CHECK_INT_EQ(fp_clinical_count(c), 1);
	CHECK_STR_EQ(fp_clinical_row(c, 0)->slides[0], "a b.svs");
	CHECK_STR_EQ(fp_clinical_row(c, 0)->patient_id, "P-1.a");
	fp_clinical_destroy(c);
}

/* Errors name file:line:column; all are counted. */
FP_TEST(errors_have_line_and_column)
{
	load(HEADER "P001,C01,a.svs,17,M,IIIA,A,1,1,0,1,surgery,10,1,12,1,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "clinical.csv:2:16: age 17 outside [18, 100]");
	load(HEADER "P001,C01,a.svs,50,X,IIIA,A,1,1,0,1,surgery,10,1,12,1,\n"
	            "P002,C01,b.svs,50,M,IV,A,1,1,0,1,surgery,10,1,12,1,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), ":2:19: sex 'X' is not one of M, F");
	CHECK_STR_CONTAINS(fp_error_msg(), "2 errors in all");
}

FP_TEST(header_rules)
{
	load("patient_id,centre,slide_file,regimen,rfs_months,rfs_event,colour\nP1,C,a.svs,tace,1,0,red\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), ":1:59: unknown column 'colour'");
	load("patient_id,centre,slide_file,regimen,rfs_months\nP1,C,a.svs,tace,1\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "required column rfs_event is missing");
	load("patient_id,centre,slide_file,regimen,rfs_months,rfs_event,centre\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "duplicate column centre");
	load("", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "empty file");
}

FP_TEST(row_rules)
{
	load(HEADER ROW1 ROW1, FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), ":3:1: patient_id P001 repeats line 2");
	load(HEADER "P1,C01,a.svs,,,,,,,,,surgery,20,1,10,1,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "os_months 10 is less than rfs_months 20");
	load(HEADER "P1,C01,a.svs,,,,,,,,,surgery,20,1,30,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "os_event is required");
	load(HEADER "P1,C01,a.svs,,,,,,,,,,20,1,,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "regimen is required but missing");
	load(HEADER "P1,C01,a.svs,,,,,,,,,surgery,0,1,,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "rfs_months 0 outside (0, 240]");
	load(HEADER "P1,C01,a.svs,,,,,,,,,surgery,5,1,,,\nP2,C02,b.svs,,,,,,,,,surgery,5,1,,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "centre C02 differs");
	load(HEADER "P1,C01,a.svs,,,,,,,,,surgery,5,1,,,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "18 cells, the header has 17");
	load(HEADER "Dr Smith,C01,a.svs,,,,,,,,,surgery,5,1,,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "patient_id 'Dr Smith'");
}

FP_TEST(slide_names_stay_inside_slides_folder)
{
	load(HEADER "P1,C01,../etc/passwd,,,,,,,,,surgery,5,1,,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), ":2:8: slide_file '../etc/passwd' leaves the slides/ folder");
	load(HEADER "P1,C01,/abs.svs,,,,,,,,,surgery,5,1,,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "must be relative");
	load(HEADER "P1,C01,a.svs;;b.svs,,,,,,,,,surgery,5,1,,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "empty name");
	struct fp_clinical *c = load(HEADER "P1,C01,sub/a..b.svs,,,,,,,,,surgery,5,1,,,\n", FP_OK);
	fp_clinical_destroy(c);
}

FP_TEST(unterminated_quote_and_long_line)
{
	load(HEADER "\"P1,C01,a.svs,,,,,,,,,surgery,5,1,,,\n", FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), ":2:1: unterminated quoted cell");
	size_t n = FP_CLINICAL_MAX_LINE + 100;
	char *big = malloc(strlen(HEADER) + n + 2);
	strcpy(big, HEADER);
	memset(big + strlen(HEADER), 'a', n);
	big[strlen(HEADER) + n] = '\n';
	big[strlen(HEADER) + n + 1] = 0;
	load(big, FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "line longer than");
	free(big);
}
