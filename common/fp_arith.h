/*
 * fp_arith.h: checked size arithmetic.
 *
 * Every size derived from a file, a socket or a user goes through these before
 * it reaches malloc. Each returns FP_OK and stores the result, or returns
 * FP_ERR_OVERFLOW (with an error message naming `what`) and leaves *out alone.
 */
#ifndef FP_ARITH_H
#define FP_ARITH_H

#include <stddef.h>
#include <stdint.h>

#include "fp_status.h"

enum fp_status fp_size_mul(size_t a, size_t b, size_t *out, const char *what);
enum fp_status fp_size_add(size_t a, size_t b, size_t *out, const char *what);
/* a*b*c, e.g. rows x columns x element size. */
enum fp_status fp_size_mul3(size_t a, size_t b, size_t c, size_t *out, const char *what);
enum fp_status fp_u64_mul(uint64_t a, uint64_t b, uint64_t *out, const char *what);
enum fp_status fp_u64_add(uint64_t a, uint64_t b, uint64_t *out, const char *what);
/* Converts a 64-bit value to size_t, failing where size_t is narrower. */
enum fp_status fp_u64_to_size(uint64_t v, size_t *out, const char *what);

/* malloc(n * size) with the multiplication checked; NULL + FP_ERR_* in the
 * error context on failure. Memory from these is released with free(). */
enum fp_status fp_alloc_array(size_t n, size_t size, void **out, const char *what);
enum fp_status fp_calloc_array(size_t n, size_t size, void **out, const char *what);

#endif
