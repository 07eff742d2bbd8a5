#!/bin/sh
# bench_aggregator.sh: peak RSS and time of one round of the aggregator core
# with 10 and 15 sites and a 100 MB model (25M float32), with /usr/bin/time -v.
# Target (issue 8): peak RSS <= 350 MB, the same for 15 sites as for 10.
#   scripts/bench/bench_aggregator.sh [BUILD_DIR] [STRATEGY]
# This measures the aggregator's own memory; the TLS round against Flower is
# a separate benchmark (not written yet).
set -eu
build=${1:-build}
strategy=${2:-fedavg}
cmake --build "$build" --target bench_aggregator >/dev/null
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fp-bench-agg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for k in 10 15; do
	/usr/bin/time -v "$build/tests/bench_aggregator" "$tmp/state$k" "$k" 25000000 "$strategy" \
		>"$tmp/out$k" 2>"$tmp/time$k"
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/time$k")
	echo "$(cat "$tmp/out$k") peak_rss_mb $((rss / 1024))"
	rm -rf "$tmp/state$k"
done
