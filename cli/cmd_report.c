/*
 * cmd_report.c: `fedpath report --in RESULTS --out DIR`: writes the
 * validation report (report.html with inline SVG figures, report.json,
 * performance.csv, table1.csv) from the federated summaries the aggregator
 * stores, or from evaluation rows in a rehearsal (validate/fp_report.h).
 * `--write-summaries DIR2` (rows only) also writes what each centre would
 * send, so a rehearsal can build the federated report too.
 * `fedpath report pull --config statistician.ini --out RESULTS [--report DIR]`
 * fetches the aggregator's results over mutual TLS with a statistician's
 * certificate (federate/fp_pull.h) and, with --report, builds the report
 * from them.
 * Exit 0, 1 when the results cannot be read or fetched, 2 on a usage error.
 */
#include <stdio.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_config.h"
#include "fp_pull.h"
#include "fp_report.h"

const char fp_cmd_report_usage[] =
	"Usage: fedpath report --in RESULTS --out DIR [--print] [--write-summaries DIR2 [--min-cell N]]\n"
	"       fedpath report pull --config statistician.ini --out RESULTS [--report DIR [--print]]\n\n"
	"RESULTS is either\n"
	"  - the aggregator's results folder (<state_dir>/results): pooled.json and one\n"
	"    summary JSON per centre, as the federated evaluation writes them. No\n"
	"    patient row is needed or read: the report is built from the summaries;\n"
	"  - or, in a rehearsal on phantom or public data, a folder with manifest.json\n"
	"    (or that file) naming one CSV of evaluation rows per centre, the study,\n"
	"    the model version hash, the horizon and the columns.\n"
	"The layouts are documented in validate/fp_report.h and docs/REPORT.md.\n"
	"DIR receives report.html (self-contained; figures fig-roc, fig-calibration,\n"
	"fig-km-risk, fig-forest, fig-benefit), report.json, performance.csv and\n"
	"table1.csv. Numbers are defined in docs/STATISTICS.md.\n\n"
	"  --print                 also print a one-screen summary (per centre and pooled\n"
	"                          C with 95% CI, AUC, O/E, Brier; random effects)\n"
	"  --write-summaries DIR2  rows only: also write each centre's summary and\n"
	"                          pooled.json into DIR2 (what the centres would send)\n"
	"  --min-cell N            smallest count those summaries release (default 0:\n"
	"                          every KM time; exact pooling)\n\n"
	"pull: fetches the study's results folder from the aggregator over mutual TLS\n"
	"with a statistician's certificate (`fedpath pki sign --role statistician`);\n"
	"that certificate can fetch results and nothing else. statistician.ini names\n"
	"the certificate, key, study CA and aggregator (docs/examples/statistician.ini).\n"
	"  --config FILE           statistician.ini\n"
	"  --out RESULTS           where the results land (pooled.json, site_<id>.json, ...)\n"
	"  --report DIR            then build the report from them into DIR\n";

/* `fedpath report pull ...` */
static int cmd_pull(int argc, char **argv)
{
	const char *config = NULL, *out = NULL, *report = NULL;
	int print = 0;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--config") == 0 || strcmp(a, "--out") == 0 || strcmp(a, "--report") == 0) {
			if (i + 1 >= argc) return fp_cli_usage_error("report", "pull: %s needs a value", a);
			const char *v = argv[++i];
			if (a[2] == 'c') config = v;
			else if (a[2] == 'o') out = v;
			else report = v;
		} else if (strcmp(a, "--print") == 0) {
			print = 1;
		} else {
			int rc = fp_cli_log_option("report", argc, argv, &i);
			if (rc < 0) return FP_EXIT_USAGE;
			if (rc == 0) return fp_cli_usage_error("report", "pull: unknown argument '%s'", a);
		}
	}
	if (!config || !out) return fp_cli_usage_error("report", "pull needs --config statistician.ini and --out RESULTS");
	struct fp_pull_file f;
	struct fp_pull_config cfg;
	char host[FP_CONFIG_STR_MAX];
	if (fp_config_load(&fp_pull_schema, config, &f) != FP_OK) return fp_cli_runtime_error("report", "configuration", NULL);
	fp_config_echo(&fp_pull_schema, &f);
	if (fp_pull_config_from_file(&f, &cfg, host, sizeof host) != FP_OK)
		return fp_cli_runtime_error("report", "configuration", NULL);
	if (fp_report_pull(&cfg, out) != FP_OK) return fp_cli_runtime_error("report", "pull", NULL);
	printf("%s\n", out);
	if (!report) return FP_EXIT_OK;
	if (fp_report_build(out, report) != FP_OK) return fp_cli_runtime_error("report", out, NULL);
	if (print && fp_report_print(report, stdout) != FP_OK) return fp_cli_runtime_error("report", report, NULL);
	printf("%s/report.html\n", report);
	return FP_EXIT_OK;
}

int fp_cmd_report(int argc, char **argv)
{
	const char *in = NULL, *out = NULL, *sum = NULL;
	double min_cell = 0;
	int print = 0;
	if (fp_cli_wants_help(argc, argv)) {
		fputs(fp_cmd_report_usage, stdout);
		return FP_EXIT_OK;
	}
	if (argc > 1 && strcmp(argv[1], "pull") == 0) return cmd_pull(argc, argv);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--in") == 0 || strcmp(a, "--out") == 0 || strcmp(a, "--write-summaries") == 0 ||
		    strcmp(a, "--min-cell") == 0) {
			if (i + 1 >= argc) return fp_cli_usage_error("report", "%s needs a value", a);
			const char *v = argv[++i];
			if (strcmp(a, "--in") == 0) in = v;
			else if (strcmp(a, "--out") == 0) out = v;
			else if (strcmp(a, "--write-summaries") == 0) sum = v;
			else {
				int rc = fp_cli_parse_double("report", a, v, 0, 1e6, &min_cell);
				if (rc != FP_EXIT_OK) return rc;
			}
		} else if (strcmp(a, "--print") == 0) {
			print = 1;
		} else {
			int rc = fp_cli_log_option("report", argc, argv, &i);
			if (rc < 0) return FP_EXIT_USAGE;
			if (rc == 0) return fp_cli_usage_error("report", "unknown argument '%s'", a);
		}
	}
	if (!in || !out) return fp_cli_usage_error("report", "needs --in RESULTS and --out DIR");
	if (sum && fp_report_write_summaries(in, sum, min_cell) != FP_OK) return fp_cli_runtime_error("report", in, NULL);
	if (fp_report_build(in, out) != FP_OK) return fp_cli_runtime_error("report", in, NULL);
	if (print && fp_report_print(out, stdout) != FP_OK) return fp_cli_runtime_error("report", out, NULL);
	printf("%s/report.html\n", out);
	return FP_EXIT_OK;
}
