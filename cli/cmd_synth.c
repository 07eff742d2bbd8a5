/*
 * cmd_synth.c: `fedpath synth`: generate a phantom multicentre HCC cohort with
 * known truth (data/fp_synth.h, docs/SYNTH.md). Parses and range-checks the
 * options, then hands over to fp_synth_generate(); prints one summary line
 * (slides, bytes, MB/s, slides/min) to stdout.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_cli.h"
#include "fp_synth.h"

const char fp_cmd_synth_usage[] =
	"Usage: fedpath synth --out DIR [--size tiny|demo|full] [--centers N] [--patients M]\n"
	"                     [--seed S] [--format svs|tiff] [--missing RATE] [--threads T]\n"
	"                     [--force] [--quiet] [--log-level L] [--log-json] [--log-file PATH]\n\n"
	"Writes a phantom study whose truth is known:\n"
	"  DIR/<centre>/slides/*.svs    pyramidal JPEG TIFF slides (Aperio style; --format tiff: generic)\n"
	"  DIR/<centre>/clinical.csv    clinical table (docs/CLINICAL_SCHEMA.md)\n"
	"  DIR/truth/                   per-patient truth and per-slide class maps (evaluation only)\n"
	"  DIR/cohort.json              parameters, scanner profiles, outcome model; written last\n\n"
	"  --out DIR        output folder; must be empty or absent unless --force\n"
	"  --size S         tiny (2 x 6 patients, ~2-4k px slides), demo (8 x 40, ~6-11k px),\n"
	"                   full (8 x 100, 30-60k px slides); default demo\n"
	"  --centers N      centres, 1..99 (also --centres); default from --size\n"
	"  --patients M     patients per centre, 1..9999; default from --size\n"
	"  --seed S         unsigned 64-bit seed; same seed and version = byte-identical files (default 1)\n"
	"  --format F       svs (Aperio-style, default) or tiff (generic pyramidal TIFF)\n"
	"  --missing RATE   share of missing optional clinical cells, 0..0.5 (default 0.03)\n"
	"  --threads T      slides rendered at once, 1..256 (default: online CPUs, at most 16)\n"
	"  --force          replace the cohort in a non-empty DIR\n"
	"  --quiet          no progress display\n"
	"Exit status: 0 done, 1 runtime error, 2 usage error.\n";

static int need_value(int argc, char **argv, int i)
{
	if (i + 1 >= argc) {
		fp_cli_usage_error("synth", "%s needs a value", argv[i]);
		return 0;
	}
	return 1;
}

int fp_cmd_synth(int argc, char **argv)
{
	if (fp_cli_wants_help(argc, argv)) {
		fputs(fp_cmd_synth_usage, stdout);
		return FP_EXIT_OK;
	}
	struct fp_synth_params p;
	fp_synth_params_default(&p);
	const char *out = NULL;
	long centres = 0, patients = 0, threads = 0;
	int centres_set = 0, patients_set = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int lo = fp_cli_log_option("synth", argc, argv, &i);
		if (lo < 0) return FP_EXIT_USAGE;
		if (lo > 0) continue;
		if (strcmp(a, "--force") == 0) {
			p.force = 1;
		} else if (strcmp(a, "--quiet") == 0) {
			p.quiet = 1;
		} else if (!strcmp(a, "--out") || !strcmp(a, "--size") || !strcmp(a, "--centers") ||
		           !strcmp(a, "--centres") || !strcmp(a, "--patients") || !strcmp(a, "--seed") ||
		           !strcmp(a, "--format") || !strcmp(a, "--missing") || !strcmp(a, "--threads")) {
			if (!need_value(argc, argv, i)) return FP_EXIT_USAGE;
			const char *v = argv[++i];
			if (!strcmp(a, "--out")) {
				out = v;
			} else if (!strcmp(a, "--size")) {
				if (fp_synth_size_parse(v, &p.size) != FP_OK) return fp_cli_usage_error("synth", "--size: %s", fp_error_msg());
			} else if (!strcmp(a, "--format")) {
				if (fp_synth_format_parse(v, &p.format) != FP_OK)
					return fp_cli_usage_error("synth", "--format: %s", fp_error_msg());
			} else if (!strcmp(a, "--centers") || !strcmp(a, "--centres")) {
				if (fp_cli_parse_long("synth", a, v, 1, FP_SYNTH_MAX_CENTRES, &centres) != FP_EXIT_OK) return FP_EXIT_USAGE;
				centres_set = 1;
			} else if (!strcmp(a, "--patients")) {
				if (fp_cli_parse_long("synth", a, v, 1, FP_SYNTH_MAX_PATIENTS, &patients) != FP_EXIT_OK)
					return FP_EXIT_USAGE;
				patients_set = 1;
			} else if (!strcmp(a, "--threads")) {
				if (fp_cli_parse_long("synth", a, v, 1, 256, &threads) != FP_EXIT_OK) return FP_EXIT_USAGE;
			} else if (!strcmp(a, "--missing")) {
				if (fp_cli_parse_double("synth", a, v, 0.0, 0.5, &p.missing_rate) != FP_EXIT_OK) return FP_EXIT_USAGE;
			} else { /* --seed */
				char *end;
				errno = 0;
				unsigned long long s = strtoull(v, &end, 10);
				if (errno || end == v || *end || v[0] == '-')
					return fp_cli_usage_error("synth", "--seed: '%s' is not an unsigned 64-bit integer", v);
				p.seed = (uint64_t)s;
			}
		} else {
			return fp_cli_usage_error("synth", "unknown option '%s'", a);
		}
	}
	if (!out) return fp_cli_usage_error("synth", "--out DIR is required");
	static const int def_c[3] = {2, 8, 8}, def_p[3] = {6, 40, 100};
	p.centres = centres_set ? (int)centres : def_c[p.size];
	p.patients = patients_set ? (int)patients : def_p[p.size];
	p.threads = (int)threads;
	if (fp_synth_params_check(&p) != FP_OK) return fp_cli_usage_error("synth", "%s", fp_error_msg());

	struct fp_synth_report rep;
	enum fp_status st = fp_synth_generate(&p, out, &rep);
	if (st == FP_ERR_EXISTS) {
		fprintf(stderr, "fedpath synth: %s\n", fp_error_msg());
		return FP_EXIT_USAGE;
	}
	if (st != FP_OK) return fp_cli_runtime_error("synth", "generating the cohort", "Nothing was published; fix the cause and run again.");
	double mb = (double)rep.slide_bytes / 1e6, s = rep.seconds > 0 ? rep.seconds : 1e-9;
	printf("synth: %" PRIu64 " slides, %.1f MB, %.1f Mpx in %.1f s: %.1f MB/s, %.1f Mpx/s, %.1f slides/min -> %s\n",
	       rep.slides, mb, (double)rep.pixels / 1e6, rep.seconds, mb / s, (double)rep.pixels / 1e6 / s,
	       (double)rep.slides * 60.0 / s, out);
	return FP_EXIT_OK;
}
