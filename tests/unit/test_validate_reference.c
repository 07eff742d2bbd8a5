/*
 * test_validate_reference.c: every case of tests/data/validate/goldens.json
 * (written by R, scripts/gen_validate_goldens.R) recomputed through
 * fp_stats_run from the same CSV file. AUC and C agree to 1e-9 relative,
 * counts exactly, everything else to 1e-6 (fp_stats.h, issue 9).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_stats.h"
#include "fp_test.h"

static json_t *load_goldens(void)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/validate/goldens.json", fp_test_datadir());
	json_error_t err;
	json_t *g = json_load_file(path, 0, &err);
	CHECK_MSG(g != NULL, "%s:%d: %s", path, err.line, err.text);
	return g;
}

static const char *str_arg(json_t *args, const char *key)
{
	json_t *v = json_object_get(args, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void compare(const char *name, const char *key, json_t *want, json_t *got, double rel)
{
	if (json_is_null(want)) {
		CHECK_MSG(json_is_null(got), "%s: %s should be null", name, key);
		return;
	}
	CHECK_MSG(got && json_is_number(got), "%s: %s missing or not a number", name, key);
	double w = json_number_value(want), g = json_number_value(got);
	if (getenv("FP_TEST_VERBOSE"))
		printf("%-32s %-12s %.17g  rel %.2g\n", name, key, g, w != 0 ? fabs(g - w) / fabs(w) : fabs(g));
	if (rel == 0) {
		CHECK_MSG(w == g, "%s: %s = %.17g, R says %.17g", name, key, g, w);
		return;
	}
	CHECK_MSG(fabs(g - w) <= rel * fabs(w) + 1e-15, "%s: %s = %.17g, R says %.17g (rel diff %.3g)", name, key, g, w,
	          fabs(g - w) / fabs(w));
}

/* Tolerance for one key: counts exact, AUC and C 1e-9, the rest 1e-6. */
static double tolerance(const char *stat, const char *key, int uno)
{
	static const char *counts[] = {"n", "cases", "controls", "k", "n_risk", "groups", "df", "followed", "not_followed", NULL};
	for (int i = 0; counts[i]; i++)
		if (strcmp(key, counts[i]) == 0) return 0;
	if (strcmp(stat, "cindex") == 0 && strcmp(key, "c") != 0 && strcmp(key, "se") != 0)
		return uno ? 1e-9 : 0; /* Harrell's counts are integers; Uno's weighted */
	if (strcmp(key, "auc") == 0 || strcmp(key, "c") == 0 || strcmp(key, "auc1") == 0 || strcmp(key, "auc2") == 0 ||
	    strcmp(key, "hand_till") == 0 || strncmp(key, "ovr_", 4) == 0)
		return 1e-9;
	return 1e-6;
}

static void run_stat(const char *which)
{
	json_t *g = load_goldens();
	json_t *cases = json_object_get(g, "cases");
	size_t i, seen = 0;
	json_t *c;
	json_array_foreach(cases, i, c) {
		const char *stat = json_string_value(json_object_get(c, "stat"));
		if (strcmp(stat, which) != 0) continue;
		const char *name = json_string_value(json_object_get(c, "name"));
		json_t *args = json_object_get(c, "args");
		char csv[1024];
		snprintf(csv, sizeof csv, "%s/validate/%s", fp_test_datadir(), json_string_value(json_object_get(c, "csv")));
		struct fp_stats_request rq = {0};
		rq.stat = stat;
		rq.csv = csv;
		rq.label = str_arg(args, "label");
		rq.score = str_arg(args, "score");
		rq.time = str_arg(args, "time");
		rq.event = str_arg(args, "event");
		rq.prob = str_arg(args, "prob");
		rq.strata = str_arg(args, "strata");
		rq.estimate = str_arg(args, "estimate");
		rq.se = str_arg(args, "se");
		rq.scale = str_arg(args, "scale");
		rq.score2 = str_arg(args, "score2");
		rq.group = str_arg(args, "group");
		rq.cls = str_arg(args, "class");
		rq.probs = str_arg(args, "probs");
		rq.risk = str_arg(args, "risk");
		rq.arm = str_arg(args, "arm");
		rq.recommended = str_arg(args, "recommended");
		rq.propensity = str_arg(args, "propensity");
		json_t *tau = json_object_get(args, "tau");
		rq.tau = tau ? json_number_value(tau) : 0;
		rq.uno = json_is_true(json_object_get(args, "uno"));
		rq.recalibrate = json_is_true(json_object_get(args, "recalibrate"));
		double at[64];
		json_t *jat = json_object_get(args, "at");
		if (json_is_number(jat)) {
			at[0] = json_number_value(jat);
			rq.n_at = 1;
			rq.at = at;
		} else if (jat) {
			rq.n_at = json_array_size(jat);
			CHECK(rq.n_at <= 64);
			for (size_t j = 0; j < rq.n_at; j++) at[j] = json_number_value(json_array_get(jat, j));
			rq.at = at;
		}
		json_t *out = NULL;
		enum fp_status st = fp_stats_run(&rq, &out);
		CHECK_MSG(st == FP_OK, "%s: %s", name, fp_error_msg());
		const char *key;
		json_t *want;
		json_object_foreach(json_object_get(c, "expect"), key, want) {
			/* "recal_x" is "x" inside the "recalibrated" block */
			json_t *got = strncmp(key, "recal_", 6) == 0 ? json_object_get(json_object_get(out, "recalibrated"), key + 6)
			                                             : json_object_get(out, key);
			double tol = tolerance(stat, key, rq.uno);
			if (json_is_array(want)) {
				CHECK_MSG(json_is_array(got) && json_array_size(got) == json_array_size(want), "%s: %s length", name, key);
				for (size_t j = 0; j < json_array_size(want); j++)
					compare(name, key, json_array_get(want, j), json_array_get(got, j), tol);
			} else {
				compare(name, key, want, got, tol);
			}
		}
		json_decref(out);
		seen++;
	}
	CHECK_MSG(seen >= 2, "only %zu golden cases for %s", seen, which);
	json_decref(g);
}

FP_TEST(reference_auc) { run_stat("auc"); }
FP_TEST(reference_cindex) { run_stat("cindex"); }
FP_TEST(reference_calibration) { run_stat("calibration"); }
FP_TEST(reference_km) { run_stat("km"); }
FP_TEST(reference_meta) { run_stat("meta"); }
FP_TEST(reference_roc_test) { run_stat("roc_test"); }
FP_TEST(reference_logrank) { run_stat("logrank"); }
FP_TEST(reference_multiclass) { run_stat("multiclass"); }
FP_TEST(reference_horizon) { run_stat("horizon"); }
FP_TEST(reference_benefit) { run_stat("benefit"); }
