/*
 * bench_aggregator.c: memory and time of one aggregation round in the
 * aggregator core (federate/fp_aggregator.h), as the coordinating centre runs
 * it: K sites each stream an update of P float32 values in 4 MiB chunks, the
 * round closes (fold from disk in site order), the model is written.
 *
 *   bench_aggregator STATE_DIR K P [strategy]
 *
 * Prints one line: sites, parameters, MB per update, seconds to receive all
 * updates, seconds to close. Run it under /usr/bin/time -v for the peak RSS
 * (scripts/bench/bench_aggregator.sh compares 10 and 15 sites).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_aggregator.h"
#include "fp_common.h"

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_aggregator STATE_DIR K P [fedavg|median|trimmed_mean]\n");
		return 2;
	}
	int k = atoi(argv[2]);
	size_t p = (size_t)strtoull(argv[3], NULL, 10);
	struct fp_agg_plan plan;
	fp_agg_plan_default(&plan);
	if (argc > 4 && fp_agg_strategy_parse(argv[4], &plan.strategy) != FP_OK) {
		fprintf(stderr, "%s\n", fp_error_msg());
		return 2;
	}
	plan.quorum = k;
	plan.trim_fraction = 0.1;
	fp_log_configure(&(struct fp_log_options){FP_LOG_WARN, 0, NULL, 0});
	size_t chunk = (4u << 20) / sizeof(float);
	float *init = calloc(p, sizeof(float)); /* the model the aggregator starts from */
	float *buf = malloc(chunk * sizeof(float)); /* one chunk in flight, as a stream delivers it */
	if (!init || !buf) return 1;
	struct fp_aggregator *a = NULL;
	if (fp_aggregator_open(argv[1], &plan, init, p, &a) != FP_OK) {
		fprintf(stderr, "open: %s\n", fp_error_msg());
		return 1;
	}
	free(init); /* the aggregator keeps its own copy: one model */
	double t0 = fp_now_seconds();
	for (int s = 0; s < k; s++) {
		char site[16];
		snprintf(site, sizeof site, "S%02d", s);
		struct fp_update_intake *u = NULL;
		if (fp_update_begin(a, site, 1, fp_aggregator_model_hash(a), 100 + (uint64_t)s, p,
		                    (uint32_t)(chunk * sizeof(float)), &u) != FP_OK) {
			fprintf(stderr, "begin: %s\n", fp_error_msg());
			return 1;
		}
		for (size_t off = 0; off < p; off += chunk) {
			size_t c = p - off < chunk ? p - off : chunk;
			for (size_t i = 0; i < c; i++) buf[i] = (float)(((off + i) * 2654435761u + (unsigned)s) % 1000) * 1e-6f;
			if (fp_update_write(u, buf, c) != FP_OK) {
				fprintf(stderr, "write: %s\n", fp_error_msg());
				return 1;
			}
		}
		if (fp_update_finish(u) != FP_OK) {
			fprintf(stderr, "finish: %s\n", fp_error_msg());
			return 1;
		}
	}
	double t1 = fp_now_seconds();
	struct fp_round_result r;
	if (fp_aggregator_close_round(a, &r) != FP_OK) {
		fprintf(stderr, "close: %s\n", fp_error_msg());
		return 1;
	}
	double t2 = fp_now_seconds();
	printf("sites %d params %zu update_mb %.1f receive_s %.2f close_s %.2f model %.16s\n", k, p,
	       (double)p * 4 / 1e6, t1 - t0, t2 - t1, r.model_hash);
	fp_aggregator_destroy(a);
	free(buf);
	return 0;
}
