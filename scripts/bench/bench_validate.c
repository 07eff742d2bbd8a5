/*
 * bench_validate.c: timing driver for scripts/bench/bench_validate.sh.
 *   bench_validate gen-surv N FILE     synthetic (time, event, score) rows
 *   bench_validate gen-binary N FILE   synthetic (label, score) rows
 *   bench_validate cindex-boot FILE B  C-index + B bootstrap replicates
 *   bench_validate auc FILE            AUC + DeLong SE
 *   bench_validate ici-boot FILE B     loess ICI (interpolate) + B bootstrap replicates
 * Prints one line "<what> <seconds> <value>" per timing; loading the CSV is
 * not timed (R's side does not time read.csv either).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fp_common.h"
#include "fp_table.h"
#include "fp_validate.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static unsigned long long s = 12345;
static double urand(void)
{
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (double)(s >> 11) / 9007199254740992.0;
}

static int die(void)
{
	fprintf(stderr, "bench_validate: %s\n", fp_error_msg());
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 4 && !(argc == 3 && strcmp(argv[1], "auc") == 0)) {
		fprintf(stderr, "usage: bench_validate gen-surv|gen-binary|gen-prob N FILE | cindex-boot FILE B | auc FILE |"
		                " ici-boot FILE B\n");
		return 2;
	}
	if (strncmp(argv[1], "gen-", 4) == 0) {
		long n = atol(argv[2]);
		FILE *f = fopen(argv[3], "w");
		if (!f) return 1;
		int surv = strcmp(argv[1], "gen-surv") == 0, prob = strcmp(argv[1], "gen-prob") == 0;
		fprintf(f, surv ? "time,event,score\n" : prob ? "label,prob\n" : "label,score\n");
		for (long i = 0; i < n; i++) {
			double x = urand();
			if (prob) { /* miscalibrated probabilities in (0.02, 0.98) */
				double pr = 0.02 + 0.96 * x * x;
				fprintf(f, "%d,%.17g\n", urand() < 0.1 + 0.7 * pr, pr);
				continue;
			}
			if (surv) /* integer days, many ties; risk raises the hazard */
				fprintf(f, "%d,%d,%.4f\n", 1 + (int)(-365 * 3 * (1 - 0.5 * x) * __builtin_log(1 - urand() * 0.999)),
				        urand() < 0.6, x);
			else
				fprintf(f, "%d,%.6f\n", urand() < 0.3 + 0.4 * x, x + 0.3 * urand());
		}
		fclose(f);
		return 0;
	}
	struct fp_table *t = NULL;
	if (fp_table_load(argv[2], &t) != FP_OK) return die();
	size_t n = fp_table_rows(t);
	double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
	unsigned char *e = malloc(n);
	if (!a || !b || !e) return 1;
	if (strcmp(argv[1], "cindex-boot") == 0) {
		size_t B = (size_t)atol(argv[3]);
		if (fp_table_numeric(t, "time", a) || fp_table_binary(t, "event", e) || fp_table_numeric(t, "score", b)) return die();
		struct fp_cindex_result r;
		double t0 = now();
		if (fp_validate_cindex(a, e, b, NULL, n, NULL, &r) != FP_OK) return die();
		double t1 = now();
		struct fp_bootstrap_result br;
		if (fp_validate_cindex_bootstrap(a, e, b, NULL, n, NULL, B, 1, NULL, &br) != FP_OK) return die();
		double t2 = now();
		printf("fedpath_cindex_once %.4f c=%.15g se=%.15g conc=%.0f disc=%.0f\n", t1 - t0, r.c, r.se, r.concordant, r.discordant);
		printf("fedpath_cindex_boot%zu %.4f sd=%.6f ci=[%.6f,%.6f]\n", B, t2 - t1, br.sd, br.ci_low, br.ci_high);
	} else if (strcmp(argv[1], "ici-boot") == 0) {
		size_t B = (size_t)atol(argv[3]);
		if (fp_table_binary(t, "label", e) || fp_table_numeric(t, "prob", a)) return die();
		struct fp_bootstrap_result br;
		double t0 = now();
		if (fp_validate_ici_bootstrap(e, a, NULL, n, B, 1, NULL, &br) != FP_OK) return die();
		printf("fedpath_ici_boot%zu %.4f ici=%.15g sd=%.6f\n", B, now() - t0, br.estimate, br.sd);
	} else {
		if (fp_table_binary(t, "label", e) || fp_table_numeric(t, "score", a)) return die();
		struct fp_auc_result r;
		double t0 = now();
		if (fp_validate_auc(e, a, n, &r, NULL, NULL) != FP_OK) return die();
		printf("fedpath_auc_delong %.4f auc=%.15g se=%.15g\n", now() - t0, r.auc, r.se);
	}
	fp_table_destroy(t);
	free(a);
	free(b);
	free(e);
	return 0;
}
