/*
 * cmd_stats.c: `fedpath stats STAT --csv FILE ...`: one validation statistic
 * from a CSV file with named columns, printed to stdout as one JSON object
 * (keys listed in validate/fp_stats.h, meanings in docs/STATISTICS.md).
 * Exit 0 with the JSON, 1 when the data cannot give the statistic (the
 * message names file:line:column or the reason), 2 on a usage error.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_stats.h"

#define STATS_MAX_AT 256

const char fp_cmd_stats_usage[] =
	"Usage: fedpath stats STAT --csv FILE [options]\n\n"
	"Computes one validation statistic from a CSV file whose first line names the\n"
	"columns, and prints it as JSON. Each equals the R call given (docs/STATISTICS.md).\n\n"
	"  auc          --label COL --score COL\n"
	"               pROC: roc(direction = \"<\"), DeLong SE, 95% normal CI clipped to [0,1]\n"
	"               -> n, cases, controls, auc, se, ci_low, ci_high\n"
	"  cindex       --time COL --event COL --score COL [--tau T] [--uno] [--strata COL]\n"
	"               [--bootstrap B [--seed S] [--centre COL]]\n"
	"               survival::concordance(Surv(time, event) ~ score, reverse = TRUE,\n"
	"               timefix = FALSE); score is a risk; --tau is ymax; --uno is\n"
	"               timewt = \"n/G2\"; --strata as strata() in the formula\n"
	"               -> c, se, concordant, discordant, tied_x, tied_y, tied_xy; --bootstrap\n"
	"               adds a percentile CI from B resamples within each --centre (sorted once)\n"
	"  calibration  --label COL --prob COL [--recalibrate] [--bootstrap B [--seed S]\n"
	"               [--centre COL]]\n"
	"               glm CITL and slope, E/O, Brier, scaled Brier; ICI, E50, E90 from\n"
	"               loess(y ~ p, span = .75, degree = 2, surface = \"direct\"); the same with\n"
	"               R's default surface \"interpolate\" (*_interpolate, and its bootstrap CI)\n"
	"  km           --time COL --event COL --at T1,T2,...\n"
	"               summary(survfit(Surv(time, event) ~ 1), times = c(T1, T2, ...))\n"
	"               -> times, survival, se, n_risk\n"
	"  meta         --estimate COL --se COL --scale logit|log|identity\n"
	"               metafor::rma(method = \"REML\", test = \"knha\"); PI with t(k-2)\n"
	"               -> k, estimate, ci_low, ci_high, pi_low, pi_high, tau2, i2\n\n"
	"Labels and events are 0/1. Cells that are empty, NA, text, NaN or Inf are\n"
	"errors naming FILE:LINE:COLUMN. A value undefined for the data is null and\n"
	"\"notes\" says why.\n";

static int parse_list(const char *opt, const char *text, double *at, size_t *n)
{
	const char *p = text;
	*n = 0;
	while (*p) {
		char *end;
		double v = strtod(p, &end);
		if (end == p || !isfinite(v) || (*end != ',' && *end != '\0'))
			return fp_cli_usage_error("stats", "%s: '%s' is not a comma-separated list of numbers", opt, text);
		if (*n >= STATS_MAX_AT) return fp_cli_usage_error("stats", "%s: more than %d values", opt, STATS_MAX_AT);
		at[(*n)++] = v;
		p = *end == ',' ? end + 1 : end;
	}
	if (*n == 0) return fp_cli_usage_error("stats", "%s needs at least one value", opt);
	return FP_EXIT_OK;
}

int fp_cmd_stats(int argc, char **argv)
{
	static double at[STATS_MAX_AT], thr[STATS_MAX_AT];
	struct fp_stats_request rq = {0};
	struct {
		const char *opt;
		const char **dst;
	} cols[] = {{"--csv", &rq.csv},     {"--label", &rq.label},   {"--score", &rq.score},
	            {"--time", &rq.time},   {"--event", &rq.event},   {"--prob", &rq.prob},
	            {"--strata", &rq.strata}, {"--estimate", &rq.estimate}, {"--se", &rq.se},
	            {"--scale", &rq.scale}, {"--score2", &rq.score2}, {"--group", &rq.group},
	            {"--class", &rq.cls},   {"--probs", &rq.probs}, {"--risk", &rq.risk},
	            {"--arm", &rq.arm},     {"--recommended", &rq.recommended}, {"--propensity", &rq.propensity},
	            {"--treated", &rq.treated}, {"--benefit", &rq.benefit}, {"--outcome", &rq.outcome},
	            {"--centre", &rq.centre}};
	if (fp_cli_wants_help(argc, argv)) {
		fputs(fp_cmd_stats_usage, stdout);
		return FP_EXIT_OK;
	}
	if (argc < 2) return fp_cli_usage_error("stats", "missing STAT (auc, cindex, calibration, km, meta, roc_test, logrank, multiclass, horizon, benefit, netbenefit, cforbenefit)");
	rq.stat = argv[1];
	int known = 0;
	for (size_t i = 0; fp_stats_names[i]; i++) known |= strcmp(fp_stats_names[i], rq.stat) == 0;
	if (!known) return fp_cli_usage_error("stats", "unknown statistic '%s' (auc, cindex, calibration, km, meta, roc_test, logrank, multiclass, horizon, benefit, netbenefit, cforbenefit)", rq.stat);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		int matched = 0;
		for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
			if (strcmp(a, cols[c].opt) != 0) continue;
			if (++i >= argc) return fp_cli_usage_error("stats", "%s needs a value", a);
			*cols[c].dst = argv[i];
			matched = 1;
			break;
		}
		if (matched) continue;
		if (strcmp(a, "--uno") == 0) {
			rq.uno = 1;
		} else if (strcmp(a, "--recalibrate") == 0) {
			rq.recalibrate = 1;
		} else if (strcmp(a, "--tau") == 0) {
			if (++i >= argc) return fp_cli_usage_error("stats", "--tau needs a time");
			int rc = fp_cli_parse_double("stats", "--tau", argv[i], 1e-300, 1e300, &rq.tau);
			if (rc != FP_EXIT_OK) return rc;
		} else if (strcmp(a, "--bootstrap") == 0 || strcmp(a, "--seed") == 0) {
			long v;
			if (++i >= argc) return fp_cli_usage_error("stats", "%s needs a number", a);
			int rc = fp_cli_parse_long("stats", a, argv[i], a[2] == 'b' ? 2 : 0, a[2] == 'b' ? 1000000 : 2147483647L, &v);
			if (rc != FP_EXIT_OK) return rc;
			if (a[2] == 'b') rq.bootstrap = v;
			else rq.seed = (unsigned long long)v;
		} else if (strcmp(a, "--thresholds") == 0) {
			if (++i >= argc) return fp_cli_usage_error("stats", "--thresholds needs probabilities");
			int rc = parse_list("--thresholds", argv[i], thr, &rq.n_thresholds);
			if (rc != FP_EXIT_OK) return rc;
			rq.thresholds = thr;
		} else if (strcmp(a, "--at") == 0) {
			if (++i >= argc) return fp_cli_usage_error("stats", "--at needs times");
			int rc = parse_list("--at", argv[i], at, &rq.n_at);
			if (rc != FP_EXIT_OK) return rc;
			rq.at = at;
		} else {
			return fp_cli_usage_error("stats", "unknown option '%s'", a);
		}
	}
	if (!rq.csv) return fp_cli_usage_error("stats", "%s needs --csv FILE", rq.stat);
	json_t *out = NULL;
	if (fp_stats_run(&rq, &out) != FP_OK) {
		enum fp_status code = fp_error_last()->code;
		if (code == FP_ERR_INVALID_ARG && strstr(fp_error_msg(), " needs --"))
			return fp_cli_usage_error("stats", "%s", fp_error_msg());
		return fp_cli_runtime_error("stats", rq.stat, NULL);
	}
	char *text = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	json_decref(out);
	if (!text) {
		fprintf(stderr, "fedpath stats: out of memory\n");
		return FP_EXIT_RUNTIME;
	}
	puts(text);
	free(text);
	return FP_EXIT_OK;
}
