#!/bin/sh
# test_simulate_cli.sh: `mpiexec -n 3 fedpath simulate` (aggregator + 2
# centres) on a small phantom cohort with a part2 plan, then `fedpath
# predict` for one centre. Checks: the study runs every round and prints the
# model hash, the checkpoint carries it, a rerun of the finished study from its
# state changes nothing, predictions have one complete row per patient with a
# valid recommendation, and a predict against the wrong columns is refused.
# Then a part1 plan on two centres' tile caches runs its rounds.
# TEST ONLY: features.csv holds the phantom's true TME values from
# truth/patients.csv, a stand-in for what `fedpath quantify` derives.
# Needs FEDPATH and MPIEXEC (set by CTest). About 15 s (60 s under ASan).
set -u
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
fp() { "$FEDPATH" "$@"; }
MPIEXEC=${MPIEXEC:-mpiexec}

fp synth --out "$T/cohort" --size tiny --centers 2 --patients 30 --threads 2 --quiet >/dev/null 2>&1 || fail "synth"
for c in H01 H02; do
	awk -F, -v c=$c 'NR == 1 { print "patient_id,phenotype,til_intra,til_margin,stroma_frac,necrosis_frac,tumour_frac,thrombi"; next }
		$2 == c { print $1 "," $15 "," $16 "," $17 "," $18 "," $19 "," $20 "," $21 }' \
		"$T/cohort/truth/patients.csv" >"$T/cohort/$c/features.csv" || fail "features for $c"
done
cat >"$T/plan.ini" <<INI
[study]
id = sim-test
model = part2
seed = 3
[aggregator]
state_dir = $T/state
[rounds]
count = 3
quorum = 2
[local]
steps = 20
fedprox_mu = 0.01
INI

sim() { "$MPIEXEC" -n 3 --oversubscribe "$FEDPATH" simulate --plan "$T/plan.ini" --cohort "$T/cohort" "$@"; }
sim >"$T/out1" 2>"$T/err1" || { cat "$T/err1" >&2; fail "simulate"; }
grep -q '^rounds 3$' "$T/out1" || fail "simulate did not report 3 rounds: $(cat "$T/out1")"
hash=$(sed -n 's/^model \([0-9a-f]\{64\}\)$/\1/p' "$T/out1")
[ -n "$hash" ] || fail "no model hash in: $(cat "$T/out1")"
grep -q 'round 3 closed' "$T/err1" || fail "no per-round progress on stderr"
ck="$T/state/part2-model.ckpt"
[ -f "$ck" ] || fail "no checkpoint at $ck"
grep -q "\"model_hash\": \"$hash\"" "$ck" || fail "checkpoint does not carry model $hash"

# The finished study resumes from its journal: same model, no round redone.
sim >"$T/out2" 2>"$T/err2" || { cat "$T/err2" >&2; fail "simulate (resume)"; }
grep -q "^model $hash\$" "$T/out2" || fail "resumed study changed the model: $(cat "$T/out2")"

# A job whose rank count does not match the centres is refused, naming the fix.
"$MPIEXEC" -n 2 --oversubscribe "$FEDPATH" simulate --plan "$T/plan.ini" --cohort "$T/cohort" \
	>/dev/null 2>"$T/err3" && fail "simulate with 1 site rank for 2 centres succeeded"
grep -q "mpirun -np 3" "$T/err3" || fail "rank-count refusal does not say what to run: $(cat "$T/err3")"

fp predict --model "$ck" --clinical "$T/cohort/H02/clinical.csv" --features "$T/cohort/H02/features.csv" \
	--out "$T/pred.csv" >/dev/null 2>"$T/err4" || { cat "$T/err4" >&2; fail "predict"; }
[ -f "$T/pred.csv" ] || fail "no predictions"
n_pat=$(($(wc -l <"$T/cohort/H02/clinical.csv") - 1))
awk -F, -v n="$n_pat" -v h="$hash" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i
		  need = "patient_id eta_surgery eta_tace eta_tace_tki rfs12_surgery rfs36_tace_tki recommended benefit_loghr benefit_rfs36 model"
		  k = split(need, a, " "); for (i = 1; i <= k; i++) if (!(a[i] in col)) { print "missing column " a[i]; bad = 1 }
		  nf = NF; next }
	{ rows++
	  if (NF != nf) { print "row " NR " has " NF " cells"; bad = 1 }
	  for (i = 1; i <= NF; i++) if ($i == "" || $i == "nan" || $i == "-nan") { print "row " NR " cell " i " empty/nan"; bad = 1 }
	  r = $col["recommended"]
	  if (r != "surgery" && r != "tace" && r != "tace_tki") { print "row " NR ": recommended = " r; bad = 1 }
	  for (i = col["rfs12_surgery"]; i <= col["rfs36_tace_tki"]; i++) if ($i < 0 || $i > 1) { print "row " NR ": survival " $i; bad = 1 }
	  if ($col["rfs12_surgery"] < $col["rfs36_surgery"]) { print "row " NR ": survival increases with time"; bad = 1 }
	  if ($col["model"] != h) { print "row " NR ": model " $col["model"]; bad = 1 } }
	END { if (rows != n) { print rows " rows for " n " patients"; bad = 1 } exit bad }' "$T/pred.csv" \
	|| fail "predictions incomplete or invalid"

# Without the features the columns differ from the model's: refused, naming them.
fp predict --model "$ck" --clinical "$T/cohort/H02/clinical.csv" --out "$T/p2.csv" >/dev/null 2>"$T/err5" \
	&& fail "predict without features succeeded"
grep -q "does not match the columns" "$T/err5" || fail "column refusal unclear: $(cat "$T/err5")"
[ ! -e "$T/p2.csv" ] || fail "a refused predict left a file"

# Part 1: the tile model on each centre's caches (2 patients per centre).
fp synth --out "$T/c1" --size tiny --centers 2 --patients 2 --threads 2 --quiet >/dev/null 2>&1 || fail "synth (part1)"
for c in H01 H02; do
	fp tile --site $c --out "$T/caches/$c" --manifest "$T/c1/$c/clinical.csv" --target-mpp 1.0 --tile-size 64 \
		>/dev/null 2>&1 || fail "tile $c"
done
sed -e 's/^model = part2/model = part1/' -e "s|^state_dir = .*|state_dir = $T/state1|" \
	-e 's/^count = 3/count = 2/' -e 's/^steps = 20/steps = 2/' "$T/plan.ini" >"$T/plan1.ini"
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
"$MPIEXEC" -n 3 --oversubscribe "$FEDPATH" simulate --plan "$T/plan1.ini" --cohort "$T/c1" --caches "$T/caches" \
	--train-config "$T/train.ini" >"$T/out6" 2>"$T/err6" || { cat "$T/err6" >&2; fail "simulate part1"; }
grep -q '^rounds 2$' "$T/out6" || fail "part1: not 2 rounds: $(cat "$T/out6")"
h1=$(sed -n 's/^model \([0-9a-f]\{64\}\)$/\1/p' "$T/out6")
[ -n "$h1" ] || fail "part1: no model hash"
grep -q 'round 2 closed' "$T/err6" || fail "part1: no per-round progress"
[ -n "$(ls "$T/state1/models" 2>/dev/null)" ] || fail "part1: no global model in the state folder"
# The federated global model is a Part 1 checkpoint that quantify reads at a site.
[ -f "$T/state1/part1-model.h5" ] || fail "part1: no checkpoint of the global model"
fp quantify --model "$T/state1/part1-model.h5" --cache "$T/caches/H01" --threads 1 >/dev/null 2>"$T/err7" ||
	fail "quantify with the federated model: $(tail -3 "$T/err7")"
[ "$(wc -l <"$T/caches/H01/features.csv")" -ge 2 ] || fail "quantify wrote no feature rows"
echo "simulate_cli: ok (part2 model $hash, part1 model $h1)"
