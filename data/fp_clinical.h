/*
 * fp_clinical.h: the clinical table (cohort manifest) loader, schema version 1
 * of docs/CLINICAL_SCHEMA.md.
 *
 * Takes one centre's clinical.csv, produces typed rows with patients linked
 * to their slide files. Facts (tests/unit/test_clinical.c checks each):
 *  - every problem is reported as "file:line:column: message" (line and
 *    column 1-based, column = byte position of the cell's first character);
 *    all problems are reported (to `diag`, at most FP_CLINICAL_MAX_ERRORS),
 *    and the status message holds the first one and the count;
 *  - column order is free; unknown columns are errors unless named x_*;
 *    duplicate columns are errors; required columns must exist and be
 *    non-missing in every row; empty cells and "NA" are missing;
 *  - patient_id is unique; centre is equal in every row; os_months >=
 *    rfs_months; os_event is required when os_months is present;
 *  - slide_file names are relative, without "..", "/" at the start or empty
 *    parts; they are resolved against the centre's slides/ folder by the
 *    caller (fp_clinical_slide_path);
 *  - the file is refused above FP_CLINICAL_MAX_BYTES; lines are at most
 *    FP_CLINICAL_MAX_LINE bytes. A UTF-8 BOM and CRLF line ends are accepted;
 *    cells may be quoted ("a,b", "" for a quote).
 * Missing values: reals are NAN, integer and enum fields are -1.
 */
#ifndef FP_CLINICAL_H
#define FP_CLINICAL_H

#include <stddef.h>
#include <stdio.h>

#include "fp_status.h"

#define FP_CLINICAL_SCHEMA 1
#define FP_CLINICAL_MAX_BYTES (64u << 20)
#define FP_CLINICAL_MAX_LINE 65536
#define FP_CLINICAL_MAX_ERRORS 100

enum fp_sex { FP_SEX_M = 0, FP_SEX_F = 1 };
enum fp_tnm { FP_TNM_IA = 0, FP_TNM_IB, FP_TNM_II, FP_TNM_IIIA, FP_TNM_IIIB };
enum fp_child_pugh { FP_CHILD_PUGH_A = 0, FP_CHILD_PUGH_B = 1 };
enum fp_regimen { FP_REGIMEN_SURGERY = 0, FP_REGIMEN_TACE = 1, FP_REGIMEN_TACE_TKI = 2 };

struct fp_clinical_row {
	char patient_id[65];
	char centre[33];
	char **slides;          /* n_slides file names, owned by the table */
	size_t n_slides;
	double age;             /* years */
	int sex;                /* enum fp_sex */
	int tnm_stage;          /* enum fp_tnm */
	int child_pugh;         /* enum fp_child_pugh */
	double afp_ng_ml;
	double tumour_size_cm;
	int mvi;                /* 0, 1 */
	int edmondson_grade;    /* 1-4 */
	int regimen;            /* enum fp_regimen (required) */
	double rfs_months;      /* required */
	int rfs_event;          /* required */
	double os_months;
	int os_event;
	int orr;
	size_t line;            /* line in the file, for later messages */
};

struct fp_clinical; /* opaque */

/* Loads and checks `path`. diag: where each error line goes (NULL: nowhere).
 * FP_ERR_FORMAT when any row or the header is wrong (no partial table). */
enum fp_status fp_clinical_load(const char *path, FILE *diag, struct fp_clinical **out);
/* Same from a string; `name` stands for the file name in messages. */
enum fp_status fp_clinical_load_string(const char *text, size_t len, const char *name, FILE *diag,
                                       struct fp_clinical **out);
void fp_clinical_destroy(struct fp_clinical *c);

size_t fp_clinical_count(const struct fp_clinical *c);
/* Borrowed, valid while c lives. */
const struct fp_clinical_row *fp_clinical_row(const struct fp_clinical *c, size_t i);
/* Index of the patient, or -1. */
long fp_clinical_find(const struct fp_clinical *c, const char *patient_id);
/* "<dir of the csv>/slides/<name>" into buf. */
enum fp_status fp_clinical_slide_path(const struct fp_clinical *c, const char *name, char *buf, size_t size);

#endif
