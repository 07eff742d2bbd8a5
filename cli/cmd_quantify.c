/*
 * cmd_quantify.c: `fedpath quantify --model CKPT --cache DIR [--out CSV]`:
 * runs the Part 1 tile model over every tile of the caches in DIR, stores
 * per-tile class probabilities (/tme/probs), lymphocyte counts
 * (/tme/lymphocytes) and embeddings (/features/tilenet) in each cache, and writes per-slide TME features
 * (train/fp_quantify.h, docs/TRAINING.md) to DIR/features.csv.
 */
#include <stdio.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_quantify.h"

const char fp_cmd_quantify_usage[] =
	"Usage: fedpath quantify --model CKPT --cache DIR [--out CSV] [options]\n\n"
	"Runs the tile model of checkpoint CKPT over every tile cache (*.h5) in DIR,\n"
	"stores each tile's class probabilities and embedding in its cache, and writes\n"
	"one row of tumour-microenvironment features per slide to CSV (default\n"
	"DIR/features.csv): class fractions, lymphocyte density (cells/mm^2) inside\n"
	"the tumour and at the invasive margin, immune phenotype, necrosis %, stroma %,\n"
	"vascular invasion score (definitions: docs/TRAINING.md).\n\n"
	"  --batch N             tiles per forward pass (default 64)\n"
	"  --threads T           CPU threads (default: all cores)\n"
	"  --cuda                use the GPU when one answers\n"
	"  --margin-um X         half-width of the invasive margin in um (default 200)\n"
	"  --inflamed-min X      lymphocytes/mm^2 inside tumour for 'inflamed' (default 3000)\n"
	"  --excluded-min X      lymphocytes/mm^2 of margin stroma for 'excluded' (default 2000)\n"
	"  --log-level L, --log-json, --log-file PATH\n\n"
	"Exit status: 0 done, 1 runtime error, 2 usage error.\n";

int fp_cmd_quantify(int argc, char **argv)
{
	const char *model = NULL, *cache = NULL, *out = NULL;
	struct fp_quantify_options o = {.batch = 64};
	long v;
	int rc;
	fp_tme_options_default(&o.tme);
	if (fp_cli_wants_help(argc, argv)) {
		fputs(fp_cmd_quantify_usage, stdout);
		return FP_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		int lo = fp_cli_log_option("quantify", argc, argv, &i);
		if (lo < 0) return FP_EXIT_USAGE;
		if (lo > 0) continue;
		const char *a = argv[i];
		if (strcmp(a, "--cuda") == 0) {
			o.cuda = 1;
			continue;
		}
		if (i + 1 >= argc) return fp_cli_usage_error("quantify", "%s needs a value (or is unknown)", a);
		const char *val = argv[++i];
		if (strcmp(a, "--model") == 0) {
			model = val;
		} else if (strcmp(a, "--cache") == 0) {
			cache = val;
		} else if (strcmp(a, "--out") == 0) {
			out = val;
		} else if (strcmp(a, "--batch") == 0) {
			if ((rc = fp_cli_parse_long("quantify", a, val, 1, 4096, &v)) != FP_EXIT_OK) return rc;
			o.batch = (int)v;
		} else if (strcmp(a, "--threads") == 0) {
			if ((rc = fp_cli_parse_long("quantify", a, val, 0, 1024, &v)) != FP_EXIT_OK) return rc;
			o.threads = (int)v;
		} else if (strcmp(a, "--margin-um") == 0) {
			if ((rc = fp_cli_parse_double("quantify", a, val, 1, 100000, &o.tme.margin_um)) != FP_EXIT_OK) return rc;
		} else if (strcmp(a, "--inflamed-min") == 0) {
			if ((rc = fp_cli_parse_double("quantify", a, val, 0, 1e6, &o.tme.inflamed_min)) != FP_EXIT_OK) return rc;
		} else if (strcmp(a, "--excluded-min") == 0) {
			if ((rc = fp_cli_parse_double("quantify", a, val, 0, 1e6, &o.tme.excluded_min)) != FP_EXIT_OK) return rc;
		} else {
			return fp_cli_usage_error("quantify", "unknown option '%s'", a);
		}
	}
	if (!model || !cache) return fp_cli_usage_error("quantify", "needs --model CKPT and --cache DIR");
	char csv[4096];
	if (!out) {
		snprintf(csv, sizeof csv, "%s/features.csv", cache);
		out = csv;
	}
	if (fp_quantify_run(model, cache, out, &o) != FP_OK) return fp_cli_runtime_error("quantify", "quantify", NULL);
	printf("%s\n", out);
	return FP_EXIT_OK;
}
