/*
 * validate_internal.h: helpers shared by the files of validate/ (not part of
 * the module's interface).
 */
#ifndef FP_VALIDATE_INTERNAL_H
#define FP_VALIDATE_INTERNAL_H

#include <stddef.h>

#include "fp_status.h"

/* A value and the row it came from; sorting by (key, idx) is stable. */
struct fp_vi_keyed {
	double key;
	size_t idx;
};
int fp_vi_cmp_keyed(const void *a, const void *b);
/* Sorts by (key, idx) for idx filled ascending; radix sort for large n. */
enum fp_status fp_vi_sort_keyed(struct fp_vi_keyed *k, size_t n);

/* FP_ERR_NUMERIC naming `what` and the 1-based row of the first non-finite value. */
enum fp_status fp_vi_check_finite(const double *v, size_t n, const char *what);
/* FP_ERR_INVALID_ARG naming the first value that is not 0 or 1. */
enum fp_status fp_vi_check_binary(const unsigned char *v, size_t n, const char *what);

#endif
