/*
 * cmd_report.c: `fedpath report --in RESULTS --out DIR`: writes the
 * validation report (report.html with inline SVG figures, report.json,
 * performance.csv, table1.csv) from the evaluation results described in
 * validate/fp_report.h. Exit 0, 1 when the results cannot be read, 2 on a
 * usage error.
 */
#include <stdio.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_report.h"

const char fp_cmd_report_usage[] =
	"Usage: fedpath report --in RESULTS --out DIR\n\n"
	"RESULTS is a folder with manifest.json (or that file): the study, the model\n"
	"version hash, the horizon, the column names, and one CSV of evaluation rows per\n"
	"centre with its data snapshot hash and date (validate/fp_report.h).\n"
	"DIR receives report.html (self-contained; figures fig-roc, fig-calibration,\n"
	"fig-km-risk, fig-forest, fig-benefit), report.json, performance.csv and\n"
	"table1.csv. Numbers are defined in docs/STATISTICS.md.\n";

int fp_cmd_report(int argc, char **argv)
{
	const char *in = NULL, *out = NULL;
	if (fp_cli_wants_help(argc, argv)) {
		fputs(fp_cmd_report_usage, stdout);
		return FP_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--in") == 0 || strcmp(argv[i], "--out") == 0) {
			if (i + 1 >= argc) return fp_cli_usage_error("report", "%s needs a path", argv[i]);
			if (argv[i][2] == 'i') in = argv[++i];
			else out = argv[++i];
		} else {
			int rc = fp_cli_log_option("report", argc, argv, &i);
			if (rc < 0) return FP_EXIT_USAGE;
			if (rc == 0) return fp_cli_usage_error("report", "unknown argument '%s'", argv[i]);
		}
	}
	if (!in || !out) return fp_cli_usage_error("report", "needs --in RESULTS and --out DIR");
	if (fp_report_build(in, out) != FP_OK) return fp_cli_runtime_error("report", in, NULL);
	printf("%s/report.html\n", out);
	return FP_EXIT_OK;
}
