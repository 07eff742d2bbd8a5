#!/bin/sh
# tile_kill_resume.sh: "a killed run redoes only the slides that were in
# flight" (issue 4, item 5). `fedpath tile` is killed with SIGKILL at random
# moments; each rerun must skip the slides already finished, and the end
# result must be byte-identical to one uninterrupted run, with no cache that
# looks complete but is not.
set -u
fp="${FEDPATH:?FEDPATH must point at the fedpath executable}"
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$fp" synth --out "$T/cohort" --size tiny --centers 1 --patients 8 --threads 1 --quiet >/dev/null 2>&1 || fail synth
csv="$T/cohort/H01/clinical.csv"
args="--site H01 --manifest $csv --target-mpp 1.0 --tile-size 64 --jobs 1"

t0=$(date +%s%N)
"$fp" tile --out "$T/ref" $args >/dev/null 2>&1 || fail "uninterrupted run"
ref_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
nref=$(ls "$T/ref"/*.h5 | wc -l)
[ "$nref" -eq 8 ] || fail "uninterrupted run made $nref caches, expected 8"

interrupted=0
skipped_total=0
for attempt in 1 2 3 4 5 6 7 8 9 10; do
	[ "$interrupted" -ge 4 ] && break
	"$fp" tile --out "$T/run" $args >"$T/out.$attempt" 2>"$T/err.$attempt" &
	pid=$!
	# somewhere inside the run: 5-60 % of the uninterrupted run's time
	sleep "$(awk -v s="$attempt" -v ms="$ref_ms" 'BEGIN { srand(s * 7919 + systime()); printf "%.3f", ms * (0.05 + rand() * 0.55) / 1000 }')"
	killed=0
	if kill -9 "$pid" 2>/dev/null; then interrupted=$((interrupted + 1)); killed=1; fi
	wait "$pid" 2>/dev/null
	# no cache published by a killed run may be broken: each one that exists
	# equals the uninterrupted run's file of the same name
	for f in "$T/run"/*.h5; do
		[ -e "$f" ] || continue
		cmp -s "$f" "$T/ref/$(basename "$f")" || fail "attempt $attempt: $(basename "$f") is published but differs"
	done
	s=$(grep -o '[0-9]* skipped' "$T/err.$attempt" | head -1 | cut -d' ' -f1)
	skipped_total=$((skipped_total + ${s:-0}))
	# a run that finished before its kill leaves nothing to resume: start over
	[ "$killed" = 1 ] || rm -rf "$T/run"
done
"$fp" tile --out "$T/run" $args >/dev/null 2>"$T/err.final" || fail "final run: $(tail -2 "$T/err.final")"
for f in "$T/ref"/*.h5; do
	cmp -s "$f" "$T/run/$(basename "$f")" || fail "$(basename "$f") differs after the interrupted runs"
done
[ "$(ls "$T/run"/*.h5 | wc -l)" -eq 8 ] || fail "wrong number of caches after resuming"
s=$(grep -o '[0-9]* skipped' "$T/err.final" | head -1 | cut -d' ' -f1)
skipped_total=$((skipped_total + ${s:-0}))
# The kills above land at random moments and, on a loaded machine, may all
# come before any slide is done. So one kill also lands right after the first
# cache is published: the rerun must skip exactly the published slides.
published=0
for try in 1 2 3; do
	rm -rf "$T/run2"
	"$fp" tile --out "$T/run2" $args >/dev/null 2>"$T/err.k$try" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null && [ "$(ls "$T/run2"/*.h5 2>/dev/null | wc -l)" -lt 1 ]; do sleep 0.005; done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# its slide process dies with it; count once the folder's lock is free
	if command -v flock >/dev/null 2>&1 && [ -e "$T/run2/.tile.lock" ]; then
		flock -w 10 "$T/run2/.tile.lock" true
	else
		sleep 1
	fi
	published=$(ls "$T/run2"/*.h5 2>/dev/null | wc -l)
	[ "$published" -ge 1 ] && [ "$published" -lt 8 ] && break
done
[ "$published" -ge 1 ] && [ "$published" -lt 8 ] ||
	fail "could not stop a run between its first and its last slide ($published published)"
interrupted=$((interrupted + 1))
"$fp" tile --out "$T/run2" $args >/dev/null 2>"$T/err.k" || fail "rerun after a kill: $(tail -2 "$T/err.k")"
grep -q "$((8 - published)) tiled, $published skipped" "$T/err.k" ||
	fail "after a kill with $published cache(s) published, the rerun said: $(grep -o '[0-9]* tiled, [0-9]* skipped' "$T/err.k")"
for f in "$T/ref"/*.h5; do
	cmp -s "$f" "$T/run2/$(basename "$f")" || fail "$(basename "$f") differs after the kill-and-rerun"
done
skipped_total=$((skipped_total + published))
# once everything is done, a rerun does nothing
"$fp" tile --out "$T/run" $args >/dev/null 2>"$T/err.again" || fail "rerun after completion"
grep -q "0 tiled, 8 skipped" "$T/err.again" || fail "a complete run was redone: $(tail -1 "$T/err.again")"
[ "$interrupted" -ge 2 ] || fail "only $interrupted run(s) were interrupted: the test did not exercise a kill"
# one run per output folder: a second run, started while the folder is in
# use (here held with flock(1), as a running tile run or its slide processes
# hold it), waits a few seconds, then stops with an error naming the lock and
# leaves the caches alone
if command -v flock >/dev/null 2>&1; then
	flock -o "$T/run/.tile.lock" sh -c 'echo $$ >"$1"; exec sleep 30' sh "$T/holder.pid" &
	holder=$!
	sleep 0.3
	[ -s "$T/holder.pid" ] || sleep 1
	"$fp" tile --out "$T/run" $args >/dev/null 2>"$T/err.busy" && fail "a run started in a folder in use did not stop"
	grep -q "in use by another process" "$T/err.busy" && grep -q ".tile.lock" "$T/err.busy" ||
		fail "no clear error for a folder in use: $(cat "$T/err.busy")"
	kill "$(cat "$T/holder.pid")" "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	for f in "$T/ref"/*.h5; do
		cmp -s "$f" "$T/run/$(basename "$f")" || fail "$(basename "$f") changed by the refused run"
	done
	"$fp" tile --out "$T/run" $args >/dev/null 2>"$T/err.free" || fail "run after the lock was freed: $(tail -1 "$T/err.free")"
fi
echo "interrupted $interrupted runs (one right after $published of 8 caches were published, try $try); reruns skipped $skipped_total finished slide(s); result identical"
echo "1 passed, 0 failed"
