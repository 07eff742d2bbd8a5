#!/bin/sh
# bench_tile.sh: end-to-end tiles/s and peak RSS of `fedpath tile` against
# openslide-python + h5py doing the same job (bench_tile_baseline.py: same
# slides, same coordinates and levels, same number of processes), one run each.
#
#   scripts/bench/bench_tile.sh [--jobs N] [--target-mpp X] [--repeat R] [SLIDE...]
# Without slides it makes a cohort with `fedpath synth --size demo`.
# --repeat R runs the pair R times, alternately, each with its own table: on
# a shared machine the wall-clock ratio moves with the others' load (printed
# with each run as the 1-minute load average); the CPU-time ratio moves less.
# Environment: FEDPATH (default build/cli/fedpath). Needs /usr/bin/time,
# /usr/bin/python3 with python3-openslide and python3-h5py.
# Peak RSS is GNU time's "Maximum resident set size": the largest single
# process of the run (fedpath's per-slide children included).
set -eu
FEDPATH=${FEDPATH:-build/cli/fedpath}
jobs=2
target=0.5
repeat=1
while [ $# -gt 0 ]; do
	case "$1" in
	--jobs) jobs=$2; shift 2 ;;
	--target-mpp) target=$2; shift 2 ;;
	--repeat) repeat=$2; shift 2 ;;
	*) break ;;
	esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ $# -eq 0 ]; then
	"$FEDPATH" synth --size demo --centers 1 --patients 4 --out "$tmp/synth" >/dev/null 2>&1
	set -- "$tmp"/synth/*/slides/*.svs
fi
here=$(dirname "$0")

run=0
while [ "$run" -lt "$repeat" ]; do
	run=$((run + 1))
	rm -rf "$tmp/fp" "$tmp/base"
	load=$(cut -d' ' -f1 /proc/loadavg)
	/usr/bin/time -v "$FEDPATH" tile --site BENCH --out "$tmp/fp" --jobs "$jobs" --target-mpp "$target" "$@" \
		2>"$tmp/fp.time" >/dev/null || true
	fp_s=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tmp/fp.time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
	fp_rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/fp.time")
	fp_cpu=$(sed -n 's/.*\(User\|System\) time (seconds): //p' "$tmp/fp.time" | awk '{s+=$1} END {print s}')
	fp_tiles=$(grep -o '"n_tiles":[0-9]*' "$tmp/fp/manifest.jsonl" | cut -d: -f2 | awk '{s+=$1} END {print s+0}')
	fp_bytes=$(du -cb "$tmp"/fp/*.h5 | tail -1 | cut -f1)

	/usr/bin/time -v /usr/bin/python3 "$here/bench_tile_baseline.py" "$jobs" "$tmp/base" "$tmp/fp" "$@" \
		>"$tmp/base.json" 2>"$tmp/base.time"
	b_s=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tmp/base.time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
	b_rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/base.time")
	b_cpu=$(sed -n 's/.*\(User\|System\) time (seconds): //p' "$tmp/base.time" | awk '{s+=$1} END {print s}')
	b_tiles=$(sed 's/.*"tiles": \([0-9]*\).*/\1/' "$tmp/base.json")
	b_bytes=$(sed 's/.*"bytes": \([0-9]*\).*/\1/' "$tmp/base.json")

	echo "run $run of $repeat, load average $load before it"
	awk -v ft="$fp_tiles" -v fs="$fp_s" -v fr="$fp_rss" -v fb="$fp_bytes" -v fc="$fp_cpu" \
	    -v bt="$b_tiles" -v bs="$b_s" -v br="$b_rss" -v bb="$b_bytes" -v bc="$b_cpu" -v j="$jobs" -v n="$#" -v t="$target" 'BEGIN {
		printf "slides %d, jobs %d, target %s um/px (wall time includes start-up and file creation)\n", n, j, t
		printf "%-26s %8s %8s %10s %9s %12s %12s\n", "", "tiles", "seconds", "tiles/s", "CPU s", "peak RSS MiB", "bytes/tile"
		printf "%-26s %8d %8.2f %10.1f %9.2f %12.1f %12.0f\n", "fedpath tile", ft, fs, ft / fs, fc, fr / 1024, fb / ft
		printf "%-26s %8d %8.2f %10.1f %9.2f %12.1f %12.0f\n", "openslide-python + h5py", bt, bs, bt / bs, bc, br / 1024, bb / bt
		printf "ratio (fedpath / baseline): %.2fx tiles/s (wall), %.2fx tiles per CPU-second, %.3f bytes\n", (ft / fs) / (bt / bs), (ft / fc) / (bt / bc), (fb / ft) / (bb / bt)
	}'
done
