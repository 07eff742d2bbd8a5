/*
 * fp_test_main.c: main() of every unit-test executable (fp_test.h).
 */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_common.h"
#include "fp_test.h"

#define MAX_CASES 1024

static struct {
	const char *name;
	fp_test_fn fn;
} cases[MAX_CASES];
static int n_cases;
static char tmpdir[4096];
static const char *current;

void fp_test_register(const char *name, fp_test_fn fn)
{
	if (n_cases >= MAX_CASES) {
		fprintf(stderr, "too many test cases\n");
		exit(2);
	}
	cases[n_cases].name = name;
	cases[n_cases].fn = fn;
	n_cases++;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	if (tmpdir[0] && !getenv("FP_TEST_KEEP")) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fp_test_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof tmpdir, "%s/fptest-%s-XXXXXX", base && base[0] ? base : "/tmp",
		         current ? current : "case");
		if (!mkdtemp(tmpdir)) {
			fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
			exit(2);
		}
		atexit(cleanup);
	}
	return tmpdir;
}

const char *fp_test_datadir(void)
{
	return FP_TEST_DATADIR;
}

void fp_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "FAIL %s (%s:%d): ", current ? current : "?", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static int run_case(int i)
{
	current = cases[i].name;
	fp_error_clear();
	cases[i].fn();
	printf("PASS %s\n", cases[i].name);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (int i = 0; i < n_cases; i++) printf("%s\n", cases[i].name);
		return 0;
	}
	if (argc == 1) {
		for (int i = 0; i < n_cases; i++) run_case(i);
		printf("%d passed, 0 failed\n", n_cases);
		return 0;
	}
	for (int a = 1; a < argc; a++) {
		int found = 0;
		for (int i = 0; i < n_cases; i++) {
			if (strcmp(cases[i].name, argv[a]) == 0) {
				found = 1;
				run_case(i);
			}
		}
		if (!found) {
			fprintf(stderr, "no test case named '%s' (see --list)\n", argv[a]);
			return 2;
		}
	}
	return 0;
}
