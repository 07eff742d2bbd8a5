/*
 * arith.c: checked size arithmetic (fp_arith.h). Overflow is reported with
 * the operands and the caller's description of what was being sized.
 */
#include <stdlib.h>

#include "fp_arith.h"

enum fp_status fp_size_mul(size_t a, size_t b, size_t *out, const char *what)
{
	size_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return FP_FAIL(FP_ERR_OVERFLOW, "%s: %zu x %zu overflows", what ? what : "size", a, b);
	*out = r;
	return FP_OK;
}

enum fp_status fp_size_add(size_t a, size_t b, size_t *out, const char *what)
{
	size_t r;
	if (__builtin_add_overflow(a, b, &r))
		return FP_FAIL(FP_ERR_OVERFLOW, "%s: %zu + %zu overflows", what ? what : "size", a, b);
	*out = r;
	return FP_OK;
}

enum fp_status fp_size_mul3(size_t a, size_t b, size_t c, size_t *out, const char *what)
{
	size_t ab, r;
	if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &r))
		return FP_FAIL(FP_ERR_OVERFLOW, "%s: %zu x %zu x %zu overflows", what ? what : "size", a, b, c);
	*out = r;
	return FP_OK;
}

enum fp_status fp_u64_mul(uint64_t a, uint64_t b, uint64_t *out, const char *what)
{
	uint64_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return FP_FAIL(FP_ERR_OVERFLOW, "%s: %llu x %llu overflows", what ? what : "value",
		               (unsigned long long)a, (unsigned long long)b);
	*out = r;
	return FP_OK;
}

enum fp_status fp_u64_add(uint64_t a, uint64_t b, uint64_t *out, const char *what)
{
	uint64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return FP_FAIL(FP_ERR_OVERFLOW, "%s: %llu + %llu overflows", what ? what : "value",
		               (unsigned long long)a, (unsigned long long)b);
	*out = r;
	return FP_OK;
}

enum fp_status fp_u64_to_size(uint64_t v, size_t *out, const char *what)
{
	if (v > (uint64_t)SIZE_MAX)
		return FP_FAIL(FP_ERR_OVERFLOW, "%s: %llu does not fit in size_t", what ? what : "value",
		               (unsigned long long)v);
	*out = (size_t)v;
	return FP_OK;
}

static enum fp_status alloc_common(size_t n, size_t size, void **out, const char *what, int zero)
{
	size_t bytes;
	FP_TRY(fp_size_mul(n, size, &bytes, what));
	void *p = zero ? calloc(n ? n : 1, size ? size : 1) : malloc(bytes ? bytes : 1);
	if (!p)
		return FP_FAIL(FP_ERR_NOMEM, "%s: cannot allocate %zu bytes", what ? what : "array", bytes);
	*out = p;
	return FP_OK;
}

enum fp_status fp_alloc_array(size_t n, size_t size, void **out, const char *what)
{
	return alloc_common(n, size, out, what, 0);
}

enum fp_status fp_calloc_array(size_t n, size_t size, void **out, const char *what)
{
	return alloc_common(n, size, out, what, 1);
}
