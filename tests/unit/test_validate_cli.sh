#!/bin/sh
# test_validate_cli.sh: `fedpath stats` as a statistician calls it: JSON on
# stdout, exit 1 with file:line:column for bad cells, exit 2 for usage.
# Needs FEDPATH (the built CLI) and FP_SOURCE_DIR (set by CTest).
set -u
D="$FP_SOURCE_DIR/tests/data/validate"
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$FEDPATH" stats auc --csv "$D/asah.csv" --label label --score s100b >"$T/auc.json" || fail "auc exit $?"
grep -q '"auc": 0.731368563685636' "$T/auc.json" || fail "auc value: $(cat "$T/auc.json")"
"$FEDPATH" stats cindex --csv "$D/lung.csv" --time time --event event --score age --strata inst >"$T/c.json" ||
	fail "cindex exit $?"
grep -q '"concordant": ' "$T/c.json" || fail "cindex counts"
"$FEDPATH" stats km --csv "$D/lung.csv" --time time --event event --at 100,365 | grep -q '"n_risk"' || fail "km"
"$FEDPATH" stats meta --csv "$D/meta_bcg_rr.csv" --estimate estimate --se se --scale log | grep -q '"tau2"' ||
	fail "meta"

"$FEDPATH" stats cindex --csv "$D/lung.csv" --time time --event event --score age --bootstrap 50 --centre inst \
	--seed 3 >"$T/b1.json" || fail "cindex bootstrap exit $?"
"$FEDPATH" stats cindex --csv "$D/lung.csv" --time time --event event --score age --bootstrap 50 --centre inst \
	--seed 3 >"$T/b2.json" || fail "cindex bootstrap exit $?"
grep -q '"replicates": 50' "$T/b1.json" || fail "bootstrap block missing"
cmp -s "$T/b1.json" "$T/b2.json" || fail "the same seed must give the same bootstrap"
"$FEDPATH" stats netbenefit --csv "$D/asah.csv" --label label --prob p_fit --thresholds 0.1,0.3 |
	grep -q '"treat_all"' || fail "netbenefit"
"$FEDPATH" stats horizon --csv "$D/lung.csv" --time time --event event --risk risk365 --at 365 |
	grep -q '"ipa"' || fail "horizon"

printf 'y,s\n1,0.4\n0,x\n' >"$T/bad.csv"
"$FEDPATH" stats auc --csv "$T/bad.csv" --label y --score s 2>"$T/err" >/dev/null
rc=$?
[ $rc -eq 1 ] || fail "bad cell: exit $rc"
grep -q "bad.csv:3:2: column 's': 'x' is not a number" "$T/err" || fail "bad cell message: $(cat "$T/err")"

printf 'time,event,score\n5,1,0.3\n-2,0,0.1\n' >"$T/neg.csv"
"$FEDPATH" stats cindex --csv "$T/neg.csv" --time time --event event --score score 2>"$T/err" >/dev/null
[ $? -eq 1 ] || fail "negative time should exit 1"
grep -q "neg.csv:3:1: column 'time': time -2 is negative" "$T/err" || fail "negative time message: $(cat "$T/err")"
printf 'time,event,score\n5,0,0.3\n2,0,0.1\n' >"$T/noev.csv"
"$FEDPATH" stats cindex --csv "$T/noev.csv" --time time --event event --score score 2>"$T/err" >/dev/null
[ $? -eq 1 ] || fail "no events should exit 1"
grep -q "needs events" "$T/err" || fail "no-events message: $(cat "$T/err")"

"$FEDPATH" stats auc --csv "$D/asah.csv" --label label 2>"$T/err" >/dev/null
[ $? -eq 2 ] || fail "missing --score should be a usage error"
grep -q "needs --score" "$T/err" || fail "usage message: $(cat "$T/err")"
"$FEDPATH" stats cindex --csv "$D/lung.csv" --time time --event event --score age --bootstrap 1 2>/dev/null
[ $? -eq 2 ] || fail "--bootstrap 1 should be a usage error"
"$FEDPATH" stats nonsense 2>/dev/null
[ $? -eq 2 ] || fail "unknown statistic should be a usage error"
"$FEDPATH" stats --help | grep -q "Usage: fedpath stats" || fail "--help"
echo "PASS validate_stats_cli"
