#!/bin/sh
# test_federation_cli.sh: the production processes as a study runs them, on
# 127.0.0.1: `fedpath pki` for the CA, aggregator and three sites;
# `fedpath synth` + `fedpath tile` for three phantom centres; `fedpath site
# --write-init`; `fedpath aggregate` and three `fedpath site` processes
# training the Part 1 tile network for 2 rounds; `fedpath status`; both audit
# logs; then, when mpirun is present, `fedpath simulate` of the same plan and
# seed must end with the same model hash as the TLS run.
# Needs FEDPATH (the built CLI). Every wait is bounded. Runs in about 6 s.
set -u
T=$(mktemp -d) || exit 1
PIDS=""
cleanup() { for p in $PIDS; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -5 "$f"; }; done >&2; exit 1; }
fp() { "$FEDPATH" "$@"; }

fp pki init --ca "$T/tls" --study fed-cli --days 30 >/dev/null 2>&1 || fail "pki init"
(cd "$T/tls" && fp pki csr --site aggregator >/dev/null 2>&1) || fail "pki csr aggregator"
fp pki sign --ca "$T/tls" --csr "$T/tls/aggregator.csr" --site aggregator --role server --dns aggregator.test \
	--out "$T/tls/aggregator.crt" >/dev/null 2>&1 || fail "pki sign aggregator"
fp synth --out "$T/cohort" --size tiny --centers 3 --patients 4 --threads 1 --quiet >/dev/null 2>&1 || fail "synth"
cat >"$T/study.ini" <<INI
[study]
id = fed-cli
[aggregator]
state_dir = $T/state
listen = 127.0.0.1:0
[rounds]
count = 2
quorum = 3
[local]
steps = 2
INI
fp config check "$T/study.ini" --schema plan >/dev/null 2>&1 || fail "plan check"
for S in H01 H02 H03; do
	mkdir -p "$T/$S" && (cd "$T/$S" && fp pki csr --site $S >/dev/null 2>&1) || fail "csr $S"
	fp pki sign --ca "$T/tls" --csr "$T/$S/$S.csr" --site $S --role site --out "$T/$S/$S.crt" >/dev/null 2>&1 ||
		fail "sign $S"
	fp tile --site $S --out "$T/caches/$S" --manifest "$T/cohort/$S/clinical.csv" --target-mpp 1.0 --tile-size 64 \
		>/dev/null 2>&1 || fail "tile $S"
	cat >"$T/$S/train.ini" <<INI
[site]
id = $S
data_dir = $T/$S
[data]
caches = $T/caches/$S
truth_dir = $T/cohort/truth
val_fraction = 0.25
[model]
input_size = 16
width1 = 4
width2 = 8
width3 = 8
blocks = 1
groups = 2
[train]
batch = 4
threads = 1
INI
done
cat >"$T/H01/probe.ini" <<INI
[site]
id = H01
plan = $T/study.ini
train_config = $T/H01/train.ini
[aggregator]
address = 127.0.0.1:1
server_name = aggregator.test
[tls]
ca = $T/tls/ca.crt
cert = $T/H01/H01.crt
key = $T/H01/H01.key
[log]
audit = $T/H01/audit.jsonl
INI
fp config check "$T/H01/probe.ini" --schema agent >/dev/null 2>&1 || fail "agent config check"
fp site --config "$T/H01/probe.ini" --write-init "$T/init.f32" >/dev/null 2>"$T/init.log" || fail "write-init"

fp aggregate --plan "$T/study.ini" --init "$T/init.f32" --tls-dir "$T/tls" --port 0 --log-level info \
	>"$T/agg.out" 2>"$T/agg.log" &
AGG=$!
PIDS="$AGG"
PORT=""
i=0
while [ -z "$PORT" ] && [ $i -lt 100 ]; do
	PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/agg.log" | head -1)
	[ -z "$PORT" ] && sleep 0.1
	i=$((i + 1))
done
[ -n "$PORT" ] || fail "aggregator did not start"
for S in H01 H02 H03; do
	sed "s/H01/$S/g; s/127.0.0.1:1\$/127.0.0.1:$PORT/" "$T/H01/probe.ini" >"$T/$S/site.ini"
	fp site --config "$T/$S/site.ini" >"$T/$S.out" 2>"$T/$S.log" &
	PIDS="$PIDS $!"
done
# Bounded wait for the aggregator (60 s).
i=0
while kill -0 "$AGG" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$AGG" 2>/dev/null && fail "aggregator still running after 60 s"
wait "$AGG" || fail "aggregate exited non-zero"
grep -q "^2 rounds done, model [0-9a-f]\{64\}" "$T/agg.out" || fail "aggregate output: $(cat "$T/agg.out")"
for p in $PIDS; do [ "$p" = "$AGG" ] || wait "$p" || fail "a site exited non-zero"; done
PIDS=""
for S in H01 H02 H03; do
	grep -q "study done: 2 task(s), 2 update(s) accepted" "$T/$S.out" || fail "$S output: $(cat "$T/$S.out")"
done
fp status --plan "$T/study.ini" >"$T/status.out" 2>&1 || fail "status"
grep -q "round 2 of 2: " "$T/status.out" || fail "status round: $(cat "$T/status.out")"
for S in H01 H02 H03; do grep -q "^$S " "$T/status.out" || fail "status lacks $S"; done
fp audit verify "$T/state/audit.jsonl" >/dev/null || fail "audit log"
# Restarted on the finished study it says so, and SIGTERM ends it cleanly (exit 0, no warning).
# ("$FEDPATH", not the fp function: $! must be the aggregator, not a subshell.)
"$FEDPATH" aggregate --plan "$T/study.ini" --init "$T/init.f32" --tls-dir "$T/tls" --port 0 --log-level info \
	>"$T/again.out" 2>"$T/again.log" &
AGG=$!
PIDS="$AGG"
i=0
while ! grep -q "listening on" "$T/again.log" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q "study fed-cli: all 2 rounds are done (model [0-9a-f]\{12\})" "$T/again.log" ||
	fail "restart on a finished study: $(head -3 "$T/again.log")"
kill -TERM "$AGG"
wait "$AGG" || fail "SIGTERM on a finished study: exit $?"
PIDS=""
grep -q "WARN\|ERROR" "$T/again.log" && fail "warnings on a clean stop: $(grep "WARN\|ERROR" "$T/again.log")"
for S in H01 H02 H03; do
	fp audit verify "$T/$S/audit.jsonl" >/dev/null || fail "$S audit log"
	[ "$(grep -c '"event":"update.accepted"' "$T/$S/audit.jsonl")" -eq 2 ] || fail "$S audit: $(cat "$T/$S/audit.jsonl")"
done
# The same plan and seed in one MPI job (fedpath simulate) ends with the same model.
# The final global model, sent to a site, becomes its Part 1 checkpoint for quantify.
fp site --config "$T/H02/site.ini" --import-model "$T/state/models/round-000002.fpm" --out "$T/H02/global.h5" \
	>/dev/null 2>"$T/import.log" || fail "import-model: $(tail -2 "$T/import.log")"
fp quantify --model "$T/H02/global.h5" --cache "$T/caches/H02" --threads 1 >/dev/null 2>"$T/q.log" ||
	fail "quantify with the imported global model: $(tail -2 "$T/q.log")"
printf 'x' >>"$T/state/models/round-000001.fpm"
fp site --config "$T/H02/site.ini" --import-model "$T/state/models/round-000001.fpm" --out "$T/H02/bad.h5" \
	>/dev/null 2>"$T/import2.log" && fail "a damaged model file was imported"
[ ! -e "$T/H02/bad.h5" ] || fail "a refused import left a checkpoint"
if command -v mpirun >/dev/null 2>&1; then
	sed "s#state_dir = .*#state_dir = $T/sim-state#" "$T/study.ini" >"$T/sim.ini"
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun -np 4 --oversubscribe \
		"$FEDPATH" simulate --plan "$T/sim.ini" --cohort "$T/cohort" --caches "$T/caches" \
		--train-config "$T/H01/train.ini" >"$T/sim.out" 2>"$T/sim.log" || fail "simulate"
	H=$(sed -n 's/^2 rounds done, model \([0-9a-f]*\)$/\1/p' "$T/agg.out")
	grep -q "$H" "$T/sim.out" || fail "simulate ended with another model: $(cat "$T/sim.out") vs $H"
	# simulate takes the labels from the training config's truth_dir when it sets one
	sed "s#^truth_dir = .*#truth_dir = $T/nowhere#" "$T/H01/train.ini" >"$T/notruth.ini"
	sed "s#state_dir = .*#state_dir = $T/sim-state2#" "$T/study.ini" >"$T/sim2.ini"
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun -np 4 --oversubscribe \
		"$FEDPATH" simulate --plan "$T/sim2.ini" --cohort "$T/cohort" --caches "$T/caches" \
		--train-config "$T/notruth.ini" >"$T/sim2.out" 2>"$T/sim2.log" && fail "simulate ignored truth_dir"
	grep -q "nowhere" "$T/sim2.log" || fail "simulate's error does not name the missing truth_dir: $(tail -3 "$T/sim2.log")"
fi
echo "PASS test_federation_cli"
