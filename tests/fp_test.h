/*
 * fp_test.h: the unit-test harness.
 *
 * A test file defines cases with FP_TEST(name) { ... } and nothing else; the
 * harness supplies main(). CMake (fp_add_test_file in tests/CMakeLists.txt)
 * reads the FP_TEST(...) lines of the file and registers each case as its own
 * CTest test, run as its own process:  test_common <case>.
 * `test_common --list` prints the cases; no argument runs all of them in one
 * process (handy under a debugger).
 *
 * Checks stop the case at the first failure with file:line and the values.
 */
#ifndef FP_TEST_H
#define FP_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*fp_test_fn)(void);
void fp_test_register(const char *name, fp_test_fn fn);
/* Path of a fresh, empty temporary folder for this case (removed at exit unless
 * FP_TEST_KEEP is set). */
const char *fp_test_tmpdir(void);
/* Folder holding test data committed in the tree (tests/data). */
const char *fp_test_datadir(void);
void fp_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));

#define FP_TEST(name)                                                         \
	static void fp_test_##name(void);                                         \
	__attribute__((constructor)) static void fp_test_reg_##name(void)         \
	{ fp_test_register(#name, fp_test_##name); }                              \
	static void fp_test_##name(void)

#define CHECK(cond)                                                           \
	do { if (!(cond)) fp_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)

#define CHECK_MSG(cond, ...)                                                  \
	do { if (!(cond)) fp_test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

#define CHECK_INT_EQ(a, b)                                                    \
	do { long long fp_a_ = (long long)(a), fp_b_ = (long long)(b);            \
		if (fp_a_ != fp_b_) fp_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, fp_a_, fp_b_); \
	} while (0)

#define CHECK_STR_EQ(a, b)                                                    \
	do { const char *fp_a_ = (a), *fp_b_ = (b);                               \
		if (!fp_a_ || !fp_b_ || strcmp(fp_a_, fp_b_) != 0)                    \
			fp_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, fp_a_ ? fp_a_ : "(null)", fp_b_ ? fp_b_ : "(null)"); \
	} while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                       \
	do { const char *fp_h_ = (hay), *fp_n_ = (needle);                        \
		if (!fp_h_ || !strstr(fp_h_, fp_n_))                                  \
			fp_test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", fp_h_ ? fp_h_ : "(null)", fp_n_); \
	} while (0)

/* |a - b| <= abs_tol + rel_tol * |b| */
#define CHECK_NEAR(a, b, abs_tol, rel_tol)                                    \
	do { double fp_a_ = (double)(a), fp_b_ = (double)(b);                     \
		if (!(fabs(fp_a_ - fp_b_) <= (abs_tol) + (rel_tol) * fabs(fp_b_)))     \
			fp_test_fail(__FILE__, __LINE__, "%s ~ %s: %.17g vs %.17g (diff %.3g)", #a, #b, fp_a_, fp_b_, fabs(fp_a_ - fp_b_)); \
	} while (0)

/* Expects an enum fp_status; prints the error context when it differs. */
#define CHECK_STATUS(expr, expected)                                          \
	do { enum fp_status fp_s_ = (expr);                                       \
		if (fp_s_ != (expected))                                              \
			fp_test_fail(__FILE__, __LINE__, "%s returned %s, expected %s (error: %s)", #expr, \
			             fp_status_name(fp_s_), fp_status_name(expected), fp_error_msg()); \
	} while (0)

#define CHECK_OK(expr) CHECK_STATUS((expr), FP_OK)

#endif
