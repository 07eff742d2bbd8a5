#!/bin/sh
# test_part2_mil_cli.sh: the gated-attention MIL option of Part 2 (plan
# part2.kind = mil) end to end through the CLI, on a tiny phantom cohort of
# two centres whose tile embeddings come from `fedpath quantify` with a Part 1
# model (one federated Part 1 round of a tiny network: its quality does not
# matter here, only that the caches hold real /features/tilenet rows).
# Checks:
#  - plan validation: part2.kind = mil with a part1 model, a MIL key with the
#    summary model, and an unknown kind are refused naming file:line and key;
#  - `mpirun -np 3 fedpath simulate` trains a MIL model (checkpoint kind mil,
#    embed_dim from the plan); a plan whose embed_dim differs from the caches
#    is refused naming both widths; --caches missing, or --centralised, refused;
#  - `fedpath predict --caches` writes a complete row per patient; without
#    --caches the MIL checkpoint is refused;
#  - over mutual TLS (`fedpath aggregate` + 2 x `fedpath site` with [part2]
#    caches) the same plan ends with the simulation's model hash, bit for
#    bit; every site writes the model file; federated evaluation of the MIL
#    model pools both centres' summaries;
#  - a site whose site.ini lacks [part2] caches is refused before it dials.
# Needs FEDPATH and MPIEXEC (set by CTest). About 15-25 s on 2 cores.
set -u
T=$(mktemp -d) || exit 1
PIDS=""
cleanup() { for p in $PIDS; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -6 "$f"; }; done >&2; exit 1; }
fp() { "$FEDPATH" "$@"; }
MPIEXEC=${MPIEXEC:-mpiexec}
mpi() { OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 "$MPIEXEC" "$@"; }

# ---- cohort, caches, embeddings ----
fp synth --out "$T/cohort" --size tiny --centers 2 --patients 12 --threads 2 --quiet >/dev/null 2>&1 || fail "synth"
for c in H01 H02; do
	fp tile --site $c --out "$T/caches/$c" --manifest "$T/cohort/$c/clinical.csv" --target-mpp 1.0 --tile-size 64 \
		>/dev/null 2>&1 || fail "tile $c"
done
cat >"$T/train.ini" <<INI
[model]
input_size = 16
width1 = 4
width2 = 8
width3 = 8
blocks = 1
groups = 2
[train]
batch = 8
threads = 1
INI
cat >"$T/p1.ini" <<INI
[study]
id = mil-test
model = part1
seed = 3
[aggregator]
state_dir = $T/s1
[rounds]
count = 1
quorum = 2
[local]
steps = 1
INI
mpi -n 3 --oversubscribe "$FEDPATH" simulate --plan "$T/p1.ini" --cohort "$T/cohort" --caches "$T/caches" \
	--train-config "$T/train.ini" >"$T/p1.out" 2>"$T/p1.log" || fail "part1 simulate"
for c in H01 H02; do
	fp quantify --model "$T/s1/part1-model.h5" --cache "$T/caches/$c" --threads 1 >/dev/null 2>"$T/q$c.log" ||
		fail "quantify $c"
done

# ---- plan validation ----
plan_err() { # $1 file, $2 expected text
	fp config check "$1" --schema plan >/dev/null 2>"$T/cfg.err" && fail "$1 was accepted"
	grep -q -- "$2" "$T/cfg.err" || fail "plan error unclear: $(cat "$T/cfg.err") (wanted: $2)"
}
printf '[study]\nmodel = part1\n\n[part2]\nkind = mil\n' >"$T/bad1.ini"
plan_err "$T/bad1.ini" "bad1.ini:5: part2.kind = mil needs study.model = part2"
printf '[study]\nmodel = part2\n[part2]\nkind = summary\nattn = 8\n' >"$T/bad2.ini"
plan_err "$T/bad2.ini" "bad2.ini:5: part2.attn = 8 applies only to part2.kind = mil"
printf '[study]\nmodel = part2\n[part2]\nkind = attention\n' >"$T/bad3.ini"
plan_err "$T/bad3.ini" "bad3.ini:4: part2.kind: 'attention' is not one of: summary mil"
printf '[study]\nmodel = part2\n[part2]\nkind = mil\nattn = 0\n' >"$T/bad4.ini"
plan_err "$T/bad4.ini" "bad4.ini:5: part2.attn: 0 is out of range"

# ---- simulate ----
cat >"$T/plan.ini" <<INI
[study]
id = mil-test
model = part2
seed = 5
[aggregator]
state_dir = $T/sim
listen = 127.0.0.1:0
[rounds]
count = 2
quorum = 2
deadline_s = 60
[local]
steps = 10
[part2]
kind = mil
attn = 4
bag_cap = 32
embed_dim = 8
INI
fp config check "$T/plan.ini" --schema plan >/dev/null 2>&1 || fail "plan check"
sim() { mpi -n 3 --oversubscribe "$FEDPATH" simulate --cohort "$T/cohort" "$@"; }
sim --plan "$T/plan.ini" --caches "$T/caches" >"$T/sim.out" 2>"$T/sim.log" || fail "simulate (mil)"
grep -q '^rounds 2$' "$T/sim.out" || fail "simulate did not report 2 rounds: $(cat "$T/sim.out")"
H=$(sed -n 's/^model \([0-9a-f]\{64\}\)$/\1/p' "$T/sim.out")
[ -n "$H" ] || fail "no model hash: $(cat "$T/sim.out")"
grep -q 'simulate: federated mil' "$T/sim.log" || fail "simulate did not say it trains the MIL model"
ck="$T/sim/part2-model.ckpt"
grep -a -q '"kind": "mil"' "$ck" || fail "checkpoint is not of kind mil"
grep -a -q '"embed_dim": 8' "$ck" || fail "checkpoint lacks embed_dim 8"
grep -a -q "\"model_hash\": \"$H\"" "$ck" || fail "checkpoint does not carry model $H"
# refusals
sed -e "s#^embed_dim = 8#embed_dim = 9#" -e "s#state_dir = .*#state_dir = $T/sim9#" "$T/plan.ini" >"$T/p9.ini"
sim --plan "$T/p9.ini" --caches "$T/caches" >/dev/null 2>"$T/e9.log" && fail "embed_dim 9 with width-8 caches accepted"
grep -q "hold embeddings of width 8 but the plan says part2.embed_dim = 9" "$T/e9.log" ||
	fail "width refusal unclear: $(grep -i width "$T/e9.log" | head -2)"
sim --plan "$T/plan.ini" >/dev/null 2>"$T/e10.log" && fail "mil simulate without --caches accepted"
grep -q "part2.kind = mil needs --caches" "$T/e10.log" || fail "--caches refusal unclear: $(cat "$T/e10.log")"
mpi -n 2 --oversubscribe "$FEDPATH" simulate --plan "$T/plan.ini" --cohort "$T/cohort" --caches "$T/caches" \
	--centralised >/dev/null 2>"$T/e11.log" && fail "mil --centralised accepted"
grep -q "not available with part2.kind = mil" "$T/e11.log" || fail "--centralised refusal unclear"

# ---- predict ----
n_pat=$(($(wc -l <"$T/cohort/H02/clinical.csv") - 1))
fp predict --model "$ck" --clinical "$T/cohort/H02/clinical.csv" --caches "$T/caches/H02" --out "$T/pred-sim.csv" \
	>/dev/null 2>"$T/pred.log" || fail "predict (mil)"
awk -F, -v n="$n_pat" -v h="$H" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; nf = NF; next }
	{ rows++
	  if (NF != nf) bad = 1
	  for (i = 1; i <= NF; i++) if ($i == "" || $i == "nan" || $i == "-nan") bad = 1
	  r = $col["recommended"]; if (r != "surgery" && r != "tace" && r != "tace_tki") bad = 1
	  if ($col["model"] != h) bad = 1 }
	END { exit bad || rows != n }' "$T/pred-sim.csv" || fail "MIL predictions incomplete or invalid"
fp predict --model "$ck" --clinical "$T/cohort/H02/clinical.csv" --out "$T/p-none.csv" >/dev/null 2>"$T/e12.log" &&
	fail "predict of a MIL model without --caches succeeded"
grep -q "is a mil model" "$T/e12.log" || fail "predict refusal unclear: $(cat "$T/e12.log")"

# ---- over mutual TLS, with federated evaluation ----
fp pki init --ca "$T/tls" --study mil-test --days 30 >/dev/null 2>&1 || fail "pki init"
(cd "$T/tls" && fp pki csr --site aggregator >/dev/null 2>&1) || fail "pki csr aggregator"
fp pki sign --ca "$T/tls" --csr "$T/tls/aggregator.csr" --site aggregator --role server --dns aggregator.test \
	--out "$T/tls/aggregator.crt" >/dev/null 2>&1 || fail "pki sign aggregator"
for S in H01 H02; do
	mkdir -p "$T/$S" && (cd "$T/$S" && fp pki csr --site $S >/dev/null 2>&1) || fail "csr $S"
	fp pki sign --ca "$T/tls" --csr "$T/$S/$S.csr" --site $S --role site --out "$T/$S/$S.crt" >/dev/null 2>&1 ||
		fail "sign $S"
done
sed "s#state_dir = .*#state_dir = $T/tls-state#" "$T/plan.ini" >"$T/study.ini"
"$FEDPATH" aggregate --plan "$T/study.ini" --tls-dir "$T/tls" --port 0 --log-level info >"$T/agg.out" 2>"$T/agg.log" &
AGG=$!
PIDS="$AGG"
PORT=""
i=0
while [ -z "$PORT" ] && [ $i -lt 100 ]; do
	PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/agg.log" 2>/dev/null | head -1)
	[ -z "$PORT" ] && sleep 0.1
	i=$((i + 1))
done
[ -n "$PORT" ] || fail "aggregator did not start"
SITES=""
for S in H01 H02; do
	cat >"$T/$S/site.ini" <<INI
[site]
id = $S
plan = $T/study.ini
[aggregator]
address = 127.0.0.1:$PORT
server_name = aggregator.test
[tls]
ca = $T/tls/ca.crt
cert = $T/$S/$S.crt
key = $T/$S/$S.key
[agent]
backoff_initial_s = 0.2
backoff_max_s = 1
give_up_s = 60
[log]
audit = $T/$S/audit.jsonl
[part2]
clinical = $T/cohort/$S/clinical.csv
features =
caches = $T/caches/$S
model_out = $T/$S/part2-model.ckpt
INI
	fp config check "$T/$S/site.ini" --schema agent >/dev/null 2>&1 || fail "agent config check $S"
	"$FEDPATH" site --config "$T/$S/site.ini" >"$T/$S.out" 2>"$T/$S.log" &
	PIDS="$PIDS $!"
	SITES="$SITES $!"
done
i=0
while kill -0 "$AGG" 2>/dev/null && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$AGG" 2>/dev/null && fail "aggregator still running after 90 s"
wait "$AGG" || fail "aggregate exited non-zero"
grep -q "part2 (mil)" "$T/agg.log" || fail "the aggregator did not build the MIL model"
grep -q "^2 rounds done, model $H\$" "$T/agg.out" || fail "TLS model differs from the simulation's $H: $(cat "$T/agg.out")"
for p in $SITES; do wait "$p" || fail "a site exited non-zero"; done
PIDS=""
for S in H01 H02; do
	grep -a -q "\"model_hash\": \"$H\"" "$T/$S/part2-model.ckpt" || fail "$S model file lacks model $H"
	[ -f "$T/tls-state/results/site_$S.json" ] || fail "no evaluation summary of $S"
done
grep -q '"centres": 2' "$T/tls-state/results/pooled.json" || fail "evaluation did not pool both centres"
fp predict --model "$T/H02/part2-model.ckpt" --clinical "$T/cohort/H02/clinical.csv" --caches "$T/caches/H02" \
	--out "$T/pred-tls.csv" >/dev/null 2>"$T/pred2.log" || fail "predict with the site's model file"
cmp -s "$T/pred-sim.csv" "$T/pred-tls.csv" || fail "the TLS model file predicts otherwise than the simulation's"
# a MIL plan at a site without [part2] caches: refused before dialling
grep -v '^caches = ' "$T/H01/site.ini" >"$T/H01/nocache.ini"
fp site --config "$T/H01/nocache.ini" >/dev/null 2>"$T/e13.log" && fail "site without caches accepted"
grep -q "part2.kind = mil: set \[part2\] caches" "$T/e13.log" || fail "site refusal unclear: $(cat "$T/e13.log")"
echo "PASS test_part2_mil_cli (model $H)"
