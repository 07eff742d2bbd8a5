#!/bin/sh
# test_compare_cli.sh: the Part 2 comparison modes of `fedpath simulate`
# (--holdout, --centralised, --local-only) on a small phantom cohort.
# Checks what a user of scripts/compare_part2.sh relies on:
#  - the split is written per centre, and the counts simulate reports and the
#    checkpoint's pooled statistics are those of the training rows only;
#  - no leak: changing every held-out patient's outcome and features leaves
#    the federated model bit-identical (while changing a training patient
#    does not), so held-out rows reach neither statistics nor training;
#  - a local-only model sees only its centre: rewriting the other centre's
#    whole table leaves it bit-identical, and its checkpoint names one centre;
#  - the centralised model pools the same standardisation statistics as the
#    federation, has a baseline per centre, and predict works with it;
#  - a wrong rank count or an unknown centre is refused, saying what to run.
# TEST ONLY: features.csv holds the phantom's true TME values from
# truth/patients.csv, a stand-in for what `fedpath quantify` derives.
# Then scripts/compare_part2.sh runs on the same cohort and split.
# Needs FEDPATH and MPIEXEC (set by CTest), /usr/bin/python3 with numpy. About 30 s.
set -u
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
MPIEXEC=${MPIEXEC:-mpiexec}
fp() { "$FEDPATH" "$@"; }

fp synth --out "$T/c0" --size tiny --centers 2 --patients 24 --threads 2 --quiet >/dev/null 2>&1 || fail "synth"
for c in H01 H02; do
	awk -F, -v c=$c 'NR == 1 { print "patient_id,phenotype,til_intra,til_margin,stroma_frac,necrosis_frac,tumour_frac"; next }
		$2 == c { print $1 "," $15 "," $16 "," $17 "," $18 "," $19 "," $20 }' \
		"$T/c0/truth/patients.csv" >"$T/c0/$c/features.csv" || fail "features for $c"
done
cat >"$T/plan.ini" <<INI
[study]
id = compare-test
model = part2
seed = 2
[aggregator]
state_dir = $T/state
[rounds]
count = 2
quorum = 2
[local]
steps = 10
INI
# sim NAME NP COHORT [options]: a fresh state folder per run; stdout in $T/NAME.out
sim() {
	name=$1 np=$2 coh=$3
	shift 3
	sed "s|^state_dir = .*|state_dir = $T/st-$name|" "$T/plan.ini" >"$T/plan-$name.ini"
	"$MPIEXEC" -n "$np" --oversubscribe "$FEDPATH" simulate --plan "$T/plan-$name.ini" --cohort "$coh" \
		--out "$T/$name.ckpt" "$@" >"$T/$name.out" 2>"$T/$name.err"
}
val() { sed -n "s/^$2 //p" "$T/$1.out"; }
split="--holdout 0.3 --split-seed 5"

sim fed 3 "$T/c0" $split --split-out "$T/split" || { cat "$T/fed.err" >&2; fail "federated with --holdout"; }
n_test=0
n_train=0
for c in H01 H02; do
	[ -f "$T/split/$c.csv" ] || fail "no split file for $c"
	[ "$(($(wc -l <"$T/split/$c.csv") - 1))" = 24 ] || fail "$c split does not list its 24 patients"
	te=$(grep -c ',test$' "$T/split/$c.csv")
	[ "$te" -gt 0 ] && [ "$te" -lt 24 ] || fail "$c: $te of 24 held out for --holdout 0.3"
	n_test=$((n_test + te))
	n_train=$((n_train + 24 - te))
done
[ "$(val fed held_out_patients)" = "$n_test" ] || fail "held_out_patients $(val fed held_out_patients), split files say $n_test"
[ "$(val fed training_patients)" = "$n_train" ] || fail "training_patients $(val fed training_patients), split files say $n_train"
[ "$(val fed mode)" = federated ] || fail "mode: $(val fed mode)"
/usr/bin/python3 - "$T/fed.ckpt" "$n_train" <<'PY' || fail "federated checkpoint statistics are not of the training rows"
import json, sys
d = open(sys.argv[1], "rb").read()
doc = json.loads(d[64:])  # framed file: 64-byte header (magic, version, length, SHA-256), then the JSON
assert doc["pooled"]["n_patients"] == int(sys.argv[2]), doc["pooled"]["n_patients"]
PY
# c1: every held-out patient of both centres gets another outcome and other features.
# c2: c1, plus H02's training patients changed too.
# edit SRC DST CENTRE WHICH(test|all)
edit() {
	mkdir -p "$2/$3"
	cp "$1/$3/clinical.csv" "$1/$3/features.csv" "$2/$3/" 2>/dev/null
	[ -d "$1/$3/slides" ] && ln -sfn "$(cd "$1/$3/slides" && pwd)" "$2/$3/slides"
	awk -F, -v OFS=, -v which="$4" 'NR == FNR { if (FNR > 1 && $2 == "test") t[$1] = 1; next }
		FNR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; print; next }
		{ if (which == "all" || ($1 in t)) { o = $col["os_months"]; b = o != "" ? o : $col["rfs_months"]
			  $col["rfs_months"] = sprintf("%.2f", b * (0.3 + (FNR % 5) * 0.1)); $col["rfs_event"] = FNR % 2 } print }' \
		"$T/split/$3.csv" "$1/$3/clinical.csv" >"$2/$3/clinical.csv"
	awk -F, -v OFS=, -v which="$4" 'NR == FNR { if (FNR > 1 && $2 == "test") t[$1] = 1; next }
		FNR == 1 { print; next } { if (which == "all" || ($1 in t)) { $3 = 0.9; $6 = 0.5 } print }' \
		"$T/split/$3.csv" "$1/$3/features.csv" >"$2/$3/features.csv"
}
edit "$T/c0" "$T/c1" H01 test
edit "$T/c0" "$T/c1" H02 test
edit "$T/c1" "$T/c2" H01 test
edit "$T/c1" "$T/c2" H02 all
cmp -s "$T/c0/H01/clinical.csv" "$T/c1/H01/clinical.csv" && fail "test set-up: held-out rows were not changed"
sim fed_c1 3 "$T/c1" $split || { cat "$T/fed_c1.err" >&2; fail "federated on c1"; }
[ "$(val fed_c1 model)" = "$(val fed model)" ] || fail "held-out rows leak: changing them changed the federated model"
sim fed_c2 3 "$T/c2" $split || fail "federated on c2"
[ "$(val fed_c2 model)" != "$(val fed model)" ] || fail "changing H02's training rows did not change the federated model"

# Local-only H01: the other centre does not exist for it.
sim loc 2 "$T/c0" $split --local-only H01 || { cat "$T/loc.err" >&2; fail "--local-only H01"; }
sim loc_c2 2 "$T/c2" $split --local-only H01 || { cat "$T/loc_c2.err" >&2; fail "--local-only H01 on c2"; }
[ "$(val loc_c2 model)" = "$(val loc model)" ] || fail "the local-only H01 model changed when H02's rows changed"
[ "$(val loc centres)" = H01 ] || fail "local-only centres: $(val loc centres)"
h01_train=$(grep -c ',train$' "$T/split/H01.csv")
[ "$(val loc training_patients)" = "$h01_train" ] || fail "local-only trained on $(val loc training_patients) patients, H01 has $h01_train"
/usr/bin/python3 - "$T/loc.ckpt" "$h01_train" <<'PY' || fail "local-only checkpoint is not H01's alone"
import json, sys
d = open(sys.argv[1], "rb").read()
doc = json.loads(d[64:])  # framed file: 64-byte header (magic, version, length, SHA-256), then the JSON
assert doc["pooled"]["n_patients"] == int(sys.argv[2]) and doc["pooled"]["sites"] == "H01", doc["pooled"]
assert [b["site"] for b in doc["baseline"]] == ["H01"], doc["baseline"]
PY
[ "$(val loc model)" != "$(val fed model)" ] || fail "local-only model equals the federated one"

# Centralised: same pooled statistics as the federation, a baseline per centre.
sim cen 2 "$T/c0" $split --centralised || { cat "$T/cen.err" >&2; fail "--centralised"; }
[ "$(val cen centres)" = H01,H02 ] || fail "centralised centres: $(val cen centres)"
[ "$(val cen training_patients)" = "$n_train" ] || fail "centralised trained on $(val cen training_patients), expected $n_train"
/usr/bin/python3 - "$T/cen.ckpt" "$T/fed.ckpt" <<'PY' || fail "centralised statistics differ from the federated ones"
import json, sys
def load(p):
    d = open(p, "rb").read()
    return json.loads(d[64:])  # framed file: 64-byte header (magic, version, length, SHA-256), then the JSON
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a["pooled"] == b["pooled"], (a["pooled"], b["pooled"])
assert [x["site"] for x in a["baseline"]] == ["H01", "H02"], a["baseline"]
PY
[ "$(val cen model)" != "$(val fed model)" ] || fail "centralised model equals the federated one"
fp predict --model "$T/cen.ckpt" --clinical "$T/c0/H02/clinical.csv" --features "$T/c0/H02/features.csv" \
	--out "$T/pred.csv" >/dev/null 2>"$T/pred.err" || { cat "$T/pred.err" >&2; fail "predict with the centralised model"; }
[ "$(($(wc -l <"$T/pred.csv") - 1))" = 24 ] || fail "centralised predictions: not one row per patient"

# Refusals say what to do.
sim bad1 3 "$T/c0" --centralised && fail "--centralised with 3 ranks succeeded"
grep -q "mpirun -np 2" "$T/bad1.err" || fail "rank-count refusal does not say what to run: $(cat "$T/bad1.err")"
sim bad2 2 "$T/c0" --local-only H09 && fail "--local-only of an unknown centre succeeded"
grep -q "H09" "$T/bad2.err" || fail "unknown centre not named: $(cat "$T/bad2.err")"
"$FEDPATH" simulate --plan "$T/plan.ini" --cohort "$T/c0" --centralised --local-only H01 >/dev/null 2>&1 &&
	fail "--centralised with --local-only accepted"

# scripts/compare_part2.sh end to end on the same cohort (one training seed):
# its table is of the held-out rows of the split above, every model on them.
"$(dirname "$0")/../../scripts/compare_part2.sh" --cohort "$T/c0" --out "$T/cmp" --fedpath "$FEDPATH" \
	--truth-features --train-seeds 1 --rounds 2 --steps 10 --split-seed 5 --boot 50 >"$T/cmp.out" 2>&1 ||
	{ cat "$T/cmp.out" >&2; fail "compare_part2.sh"; }
grep -q "^federated - centralised" "$T/cmp.out" || fail "compare_part2.sh printed no comparison: $(cat "$T/cmp.out")"
/usr/bin/python3 - "$T/cmp/compare.json" "$n_test" <<'PY' || fail "compare.json incomplete"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["held_out_patients"] == int(sys.argv[2]), d["held_out_patients"]
assert set(d["models"]) == {"federated", "centralised", "local-H01", "local-H02", "truth"}, d["models"].keys()
assert all(0 < m["c"] < 1 for m in d["models"].values())
PY
echo "ok: split without leak, local-only sees one centre, centralised pools the same statistics, compare_part2.sh table"
