#!/bin/sh
# test_federation_p2_cli.sh: Part 2 (the regimen model) over mutual TLS on
# 127.0.0.1, as production runs it: `fedpath pki` for the CA, aggregator and
# three sites; `fedpath aggregate` (no --init: the round-0 model follows from
# the pooled statistics) and three `fedpath site` processes. Checks:
#  - before round 1 each site sends its standardisation sums and counts once;
#    the aggregator, killed with SIGKILL once the pooled statistics are on
#    disk and started again, does not ask again (audit logs: one
#    part2.stats.sent per site, three part2.stats at the aggregator);
#  - the study ends; the aggregator and every site write the Part 2 model
#    file, all with the aggregator's model hash, and `fedpath predict` with a
#    site's file gives the same predictions as with the aggregator's;
#  - `mpirun -np 4 fedpath simulate` of the same plan and seed ends with the
#    same model hash (bit-identical pooling in canonical site order) and
#    predictions equal to the TLS ones;
#  - with a site that never connects, the aggregator stops at the deadline
#    naming it.
# TEST ONLY: features.csv holds the phantom's true TME values (as in
# test_simulate_cli.sh), a stand-in for what `fedpath quantify` writes.
# Needs FEDPATH; the comparison needs mpirun. Every wait is bounded.
set -u
T=$(mktemp -d) || exit 1
PIDS=""
cleanup() { for p in $PIDS; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -8 "$f"; }; done >&2; exit 1; }
fp() { "$FEDPATH" "$@"; }

fp pki init --ca "$T/tls" --study fed-p2 --days 30 >/dev/null 2>&1 || fail "pki init"
(cd "$T/tls" && fp pki csr --site aggregator >/dev/null 2>&1) || fail "pki csr aggregator"
fp pki sign --ca "$T/tls" --csr "$T/tls/aggregator.csr" --site aggregator --role server --dns aggregator.test \
	--out "$T/tls/aggregator.crt" >/dev/null 2>&1 || fail "pki sign aggregator"
fp synth --out "$T/cohort" --size tiny --centers 3 --patients 20 --threads 2 --quiet >/dev/null 2>&1 || fail "synth"
# H03 keeps 12 patients: fewer than min_cell (15), so it trains but cannot
# release an evaluation summary.
head -13 "$T/cohort/H03/clinical.csv" >"$T/h03.csv" && mv "$T/h03.csv" "$T/cohort/H03/clinical.csv" || fail "trim H03"
for S in H01 H02 H03; do
	awk -F, -v c=$S 'FNR == NR { keep[$1] = 1; next }
		FNR == 1 { print "patient_id,phenotype,til_intra,til_margin,stroma_frac,necrosis_frac,tumour_frac,thrombi"; next }
		$2 == c && ($1 in keep) { print $1 "," $15 "," $16 "," $17 "," $18 "," $19 "," $20 "," $21 }' \
		"$T/cohort/$S/clinical.csv" "$T/cohort/truth/patients.csv" >"$T/cohort/$S/features.csv" || fail "features for $S"
done
cat >"$T/study.ini" <<INI
[study]
id = fed-p2
model = part2
seed = 5
[aggregator]
state_dir = $T/state
listen = 127.0.0.1:0
[rounds]
count = 4
quorum = 3
deadline_s = 60
[local]
steps = 20
fedprox_mu = 0.01
[evaluation]
min_cell = 15
INI
fp config check "$T/study.ini" --schema plan >/dev/null 2>&1 || fail "plan check"
for S in H01 H02 H03; do
	mkdir -p "$T/$S" && (cd "$T/$S" && fp pki csr --site $S >/dev/null 2>&1) || fail "csr $S"
	fp pki sign --ca "$T/tls" --csr "$T/$S/$S.csr" --site $S --role site --out "$T/$S/$S.crt" >/dev/null 2>&1 ||
		fail "sign $S"
done

start_agg() { # $1: port (0: any), $2: log suffix, $3: more options
	"$FEDPATH" aggregate --plan "$T/study.ini" --tls-dir "$T/tls" --port "$1" --log-level info ${3:-} \
		>"$T/agg$2.out" 2>"$T/agg$2.log" &
	AGG=$!
	PIDS="$PIDS $AGG"
	PORT=""
	i=0
	while [ -z "$PORT" ] && [ $i -lt 100 ]; do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/agg$2.log" 2>/dev/null | head -1)
		[ -z "$PORT" ] && sleep 0.1
		i=$((i + 1))
	done
	[ -n "$PORT" ] || fail "aggregator did not start"
}
site_ini() { # $1 site, $2 port
	cat >"$T/$1/site.ini" <<INI
[site]
id = $1
plan = $T/study.ini
[aggregator]
address = 127.0.0.1:$2
server_name = aggregator.test
[tls]
ca = $T/tls/ca.crt
cert = $T/$1/$1.crt
key = $T/$1/$1.key
[agent]
backoff_initial_s = 0.2
backoff_max_s = 1
give_up_s = 60
[log]
audit = $T/$1/audit.jsonl
[part2]
clinical = $T/cohort/$1/clinical.csv
features = $T/cohort/$1/features.csv
model_out = $T/$1/part2-model.ckpt
INI
}
start_agg 0 1
SITES=""
for S in H01 H02 H03; do
	site_ini $S "$PORT"
	fp config check "$T/$S/site.ini" --schema agent >/dev/null 2>&1 || fail "agent config check $S"
	"$FEDPATH" site --config "$T/$S/site.ini" >"$T/$S.out" 2>"$T/$S.log" &
	PIDS="$PIDS $!"
	SITES="$SITES $!"
done
# kill -9 once the pooled statistics are durable; the restart must not ask again.
i=0
while [ ! -f "$T/state/part2-pooled.bin" ] && [ $i -lt 300 ]; do sleep 0.02; i=$((i + 1)); done
[ -f "$T/state/part2-pooled.bin" ] || fail "no pooled statistics after 6 s"
kill -9 "$AGG" 2>/dev/null
wait "$AGG" 2>/dev/null
start_agg "$PORT" 2
grep -q "pooled statistics of .* reloaded" "$T/agg2.log" || fail "restart did not reload the pooled statistics"
i=0
while kill -0 "$AGG" 2>/dev/null && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$AGG" 2>/dev/null && fail "aggregator still running after 90 s"
wait "$AGG" || fail "aggregate exited non-zero"
grep -q "^4 rounds done, model [0-9a-f]\{64\}" "$T/agg2.out" || fail "aggregate output: $(cat "$T/agg2.out")"
H=$(sed -n 's/^4 rounds done, model \([0-9a-f]*\)$/\1/p' "$T/agg2.out")
for p in $SITES; do wait "$p" || fail "a site exited non-zero"; done
PIDS=""
for S in H01 H02 H03; do
	grep -q "^study done: " "$T/$S.out" || fail "$S output: $(cat "$T/$S.out")"
	grep -q "\"model_hash\": \"$H\"" "$T/$S/part2-model.ckpt" || fail "$S model file lacks model $H"
	fp audit verify "$T/$S/audit.jsonl" >/dev/null || fail "$S audit log"
	[ "$(grep -c '"event":"part2.stats.sent"' "$T/$S/audit.jsonl")" -eq 1 ] || fail "$S sent its statistics more than once"
done
grep -q "\"model_hash\": \"$H\"" "$T/state/part2-model.ckpt" || fail "aggregator model file lacks model $H"
fp audit verify "$T/state/audit.jsonl" >/dev/null || fail "aggregator audit log"
[ "$(grep -c '"event":"part2.stats"' "$T/state/audit.jsonl")" -eq 3 ] || fail "aggregator asked for statistics again"
# Federated evaluation: H01 and H02 summaries, H03's refusal recorded, pooled.
R="$T/state/results"
for S in H01 H02; do
	[ -f "$R/site_$S.json" ] || fail "no evaluation summary of $S"
	grep -q "\"event\":\"eval.summary.sent\"" "$T/$S/audit.jsonl" || fail "$S audit lacks its summary"
done
[ -f "$R/failed/H03.json" ] || fail "H03's refusal not recorded"
grep -q "min_cell" "$R/failed/H03.json" || fail "H03's refusal lacks its reason: $(cat "$R/failed/H03.json")"
[ ! -e "$R/site_H03.json" ] || fail "a summary of H03 was pooled"
grep -q '"centres": 2' "$R/pooled.json" || fail "pooled.json does not pool 2 centres: $(head -c 300 "$R/pooled.json")"
grep -q "\"model_hash\": \"$H\"" "$R/pooled.json" || fail "pooled.json names another model"
[ "$(grep -c '"event":"eval.summary"' "$T/state/audit.jsonl")" -eq 2 ] || fail "aggregator audit: summaries"
grep -q '"event":"eval.pooled"' "$T/state/audit.jsonl" || fail "aggregator audit: pooling"
# Only summaries crossed the wire: no patient id, no per-patient vector.
for S in H01 H02; do
	cut -d, -f1 "$T/cohort/$S/clinical.csv" | tail -n +2 >"$T/ids-$S"
	grep -q -F -f "$T/ids-$S" "$R/site_$S.json" && fail "a patient id of $S reached the aggregator"
	/usr/bin/python3 - "$R/site_$S.json" "$(wc -l <"$T/ids-$S")" <<'PY' || fail "a per-patient vector of $S reached the aggregator"
import json, sys
n = int(sys.argv[2])
def walk(v, path):
    if isinstance(v, list):
        if len(v) >= n: sys.exit("%s: %d values for %d patients" % (path, len(v), n))
        for i, x in enumerate(v): walk(x, path + "[%d]" % i)
    elif isinstance(v, dict):
        for k, x in v.items(): walk(x, path + "." + k)
walk(json.load(open(sys.argv[1])), "$")
PY
done
# `fedpath report` reads the aggregator's results folder as it is.
fp report --in "$R" --out "$T/report" >/dev/null 2>"$T/report.log" || fail "report from the federated results: $(tail -3 "$T/report.log")"
[ -s "$T/report/report.json" ] || fail "report wrote no report.json"
[ -n "${FP_KEEP:-}" ] && cp -r "$R" "$FP_KEEP" && cp "$T"/*.log "$FP_KEEP"/
# A statistician pulls them from the finished study's aggregator (restarted
# with --serve-results: nothing is asked again), then SIGTERM ends it (exit 0).
(cd "$T" && fp pki csr --site stat1 >/dev/null 2>&1) || fail "csr stat1"
fp pki sign --ca "$T/tls" --csr "$T/stat1.csr" --site stat1 --role statistician --out "$T/stat1.crt" \
	>/dev/null 2>&1 || fail "sign stat1"
start_agg 0 3 --serve-results
# `fedpath doctor` at a site reads the aggregator's time from its HELLO (clock skew)
fp doctor --data "$T/H01" --cert "$T/H01/H01.crt" --key "$T/H01/H01.key" --ca "$T/tls/ca.crt" \
	--aggregator "127.0.0.1:$PORT" --server-name aggregator.test >"$T/doctor.out" 2>&1
grep -q "^OK    clock skew   within [0-9]* ms of the aggregator's clock" "$T/doctor.out" ||
	fail "doctor clock skew: $(grep -A1 'clock skew' "$T/doctor.out")"
cat >"$T/statistician.ini" <<INI
[statistician]
id = stat1
[aggregator]
address = 127.0.0.1:$PORT
server_name = aggregator.test
[tls]
ca = $T/tls/ca.crt
cert = $T/stat1.crt
key = $T/stat1.key
INI
fp report pull --config "$T/statistician.ini" --out "$T/pulled" >/dev/null 2>"$T/pull.log" ||
	fail "report pull: $(tail -3 "$T/pull.log")"
for f in pooled.json site_H01.json site_H02.json failed/H03.json; do
	cmp -s "$R/$f" "$T/pulled/$f" || fail "pulled $f differs from the aggregator's"
done
# what the statistician pulled (with its pull.json manifest) builds the report
fp report --in "$T/pulled" --out "$T/report-pulled" >/dev/null 2>"$T/report-pulled.log" ||
	fail "report from the pulled results: $(tail -3 "$T/report-pulled.log")"
cmp -s "$T/report/performance.csv" "$T/report-pulled/performance.csv" || fail "the pulled results give another report"
kill -TERM "$AGG"
wait "$AGG" || fail "the serving aggregator did not exit 0 on SIGTERM"
[ "$(grep -c '"event":"eval.summary"' "$T/state/audit.jsonl")" -eq 2 ] || fail "the restart asked for summaries again"
grep -q '"event":"results.pulled"' "$T/state/audit.jsonl" || fail "the pull was not audited"
pred() { # $1 model file, $2 out
	fp predict --model "$1" --clinical "$T/cohort/H02/clinical.csv" --features "$T/cohort/H02/features.csv" \
		--out "$2" >/dev/null 2>"$T/pred.log" || fail "predict with $1: $(tail -2 "$T/pred.log")"
}
pred "$T/state/part2-model.ckpt" "$T/pred-agg.csv"
pred "$T/H02/part2-model.ckpt" "$T/pred-site.csv"
cmp -s "$T/pred-agg.csv" "$T/pred-site.csv" || fail "a site's model file predicts otherwise than the aggregator's"
if command -v mpirun >/dev/null 2>&1; then
	sed "s#state_dir = .*#state_dir = $T/sim-state#" "$T/study.ini" >"$T/sim.ini"
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun -np 4 --oversubscribe \
		"$FEDPATH" simulate --plan "$T/sim.ini" --cohort "$T/cohort" >"$T/sim.out" 2>"$T/sim.log" || fail "simulate"
	grep -q "^model $H\$" "$T/sim.out" || fail "simulate ended with another model: $(cat "$T/sim.out") vs $H"
	pred "$T/sim-state/part2-model.ckpt" "$T/pred-sim.csv"
	cmp -s "$T/pred-agg.csv" "$T/pred-sim.csv" || fail "the MPI model file predicts otherwise than the TLS one"
fi
# A site that never connects: the aggregator stops at the deadline, naming it.
sed "s#state_dir = .*#state_dir = $T/state-miss#; s#deadline_s = .*#deadline_s = 2#" "$T/study.ini" >"$T/miss.ini"
"$FEDPATH" aggregate --plan "$T/miss.ini" --tls-dir "$T/tls" --port 0 >"$T/miss.out" 2>"$T/miss.log" &
AGG=$!
PIDS="$AGG"
PORT=""
i=0
while [ -z "$PORT" ] && [ $i -lt 100 ]; do
	PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/miss.log" | head -1)
	[ -z "$PORT" ] && sleep 0.1
	i=$((i + 1))
done
for S in H01 H02; do
	sed "s#^plan = .*#plan = $T/miss.ini#; s#127.0.0.1:[0-9]*\$#127.0.0.1:$PORT#; s#^give_up_s = .*#give_up_s = 3#" \
		"$T/$S/site.ini" >"$T/$S/miss.ini"
	"$FEDPATH" site --config "$T/$S/miss.ini" >/dev/null 2>&1 &
	PIDS="$PIDS $!"
done
i=0
while kill -0 "$AGG" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$AGG" 2>/dev/null && fail "aggregator still waiting for statistics after 15 s"
wait "$AGG" && fail "aggregate succeeded without H03's statistics"
grep -q "no standardisation statistics from H03 after" "$T/miss.log" || fail "deadline error does not name H03: $(tail -3 "$T/miss.log")"
[ ! -e "$T/state-miss/part2-pooled.bin" ] || fail "statistics pooled without H03"
echo "PASS test_federation_p2_cli"
