#!/bin/sh
# test_validate_report.sh: `fedpath report` on survival::colon split into three
# centres, built twice: from the centres' rows, and from the summaries the
# centres would send (--write-summaries, then --in on that folder, as the
# aggregator's results folder is read). Both HTML pages are rendered by
# headless Chromium, which must show a non-blank page with every figure
# (fp_report.h lists their ids).
# Needs FEDPATH, FP_SOURCE_DIR (CTest) and chromium (Debian package); without
# chromium the rendering part is skipped with a message (exit 0 is not a pass:
# CTest's SKIP_RETURN_CODE 77 marks it skipped).
set -u
D="$FP_SOURCE_DIR/tests/data/validate"
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$T/in"
awk -F, -v dir="$T/in" 'NR == 1 { for (c = 0; c < 3; c++) print > (dir "/c" c ".csv"); next }
	{ print >> (dir "/c" ((NR - 2) % 3) ".csv") }' "$D/colon.csv"
cat >"$T/in/manifest.json" <<JSON
{"study": "colon (survival::colon) split into three pseudo-centres", "model_hash": "sha256:0123abcd",
 "horizon": 1825, "tau": 1825, "auc_grid": [0, 0.25, 0.3, 0.35, 0.4, 0.5, 1],
 "columns": {"time": "time", "event": "event", "risk": "p_rec", "label": "event", "prob": "p_rec",
             "arm": "arm", "recommended": "recommended", "propensity": "ps0,ps1,ps2"},
 "centres": [{"id": "C0", "csv": "c0.csv", "snapshot_hash": "sha256:aa", "snapshot_date": "2026-10-01"},
             {"id": "C1", "csv": "c1.csv", "snapshot_hash": "sha256:bb", "snapshot_date": "2026-10-02"},
             {"id": "C2", "csv": "c2.csv", "snapshot_hash": "sha256:cc", "snapshot_date": "2026-10-03"}]}
JSON
"$FEDPATH" report --in "$T/in" --out "$T/out" --write-summaries "$T/sum" --min-cell 5 >/dev/null || fail "report exit $?"
[ -s "$T/sum/pooled.json" ] && [ -s "$T/sum/site_C1.json" ] || fail "--write-summaries wrote no summaries"
"$FEDPATH" report --in "$T/sum" --out "$T/fed" --print >"$T/print.txt" || fail "report from summaries exit $?"
grep -q '^pooled (exact, stratified C) ' "$T/print.txt" || fail "--print shows no pooled line: $(cat "$T/print.txt")"
grep -q '^C1 ' "$T/print.txt" || fail "--print shows no centre line"
for out in out fed; do
	for f in report.html report.json performance.csv table1.csv; do
		[ -s "$T/$out/$f" ] || fail "$out/$f missing or empty"
	done
	grep -q '^pooled_stratified,' "$T/$out/performance.csv" || fail "$out/performance.csv has no pooled row"
	[ "$(wc -l <"$T/$out/table1.csv")" -eq 4 ] || fail "$out/table1.csv should have a header and 3 centres"
	grep -q '"model_hash": "sha256:0123abcd"' "$T/$out/report.json" || fail "$out/report.json lacks the model hash"
	grep -q 'sha256:bb' "$T/$out/report.html" || fail "$out/report.html lacks the snapshot hashes"
done
grep -q '"source": "federated summaries"' "$T/fed/report.json" || fail "report.json does not say it came from summaries"
grep -q 'Built from <b>federated summaries</b>' "$T/fed/report.html" || fail "report.html does not say it came from summaries"
# the same C-index line in both (pooled exact stratified C and its CI)
[ "$(grep '^pooled_stratified,' "$T/out/performance.csv" | cut -d, -f1-7)" = \
  "$(grep '^pooled_stratified,' "$T/fed/performance.csv" | cut -d, -f1-7)" ] || fail "pooled C differs between the modes"

"$FEDPATH" report --in "$T/nowhere" --out "$T/x" 2>/dev/null
[ $? -eq 1 ] || fail "missing results should exit 1"

command -v chromium >/dev/null 2>&1 || { echo "SKIP: chromium not installed"; exit 77; }
CH="chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir=$T/profile"
msg=""
for out in out fed; do
	timeout 60 $CH --dump-dom "file://$T/$out/report.html" >"$T/dom.html" 2>/dev/null || fail "chromium --dump-dom failed ($out)"
	for id in fig-roc fig-calibration fig-km-risk fig-forest fig-benefit; do
		grep -q "<svg id=\"$id\"" "$T/dom.html" || fail "rendered page ($out) lacks figure $id"
	done
	n=$(grep -o '<polyline' "$T/dom.html" | wc -l)
	[ "$n" -ge 8 ] || fail "only $n curves drawn ($out)"
	timeout 60 $CH --screenshot="$T/shot.png" --window-size=1200,2400 "file://$T/$out/report.html" >/dev/null 2>&1 ||
		fail "chromium --screenshot failed ($out)"
	# A blank page compresses to a few kB; text, tables and curves do not.
	size=$(wc -c <"$T/shot.png")
	[ "$size" -gt 40000 ] || fail "screenshot is $size bytes: page ($out) looks blank"
	msg="$msg $out: screenshot $size bytes, $n curves;"
done
echo "PASS validate_report ($msg)"
