#!/bin/sh
# bench_validate.sh: validate/ against R, side by side, one run each.
#   G1: C-index + 1000 bootstrap replicates, n = 10,000 (survival::concordance)
#   G2: AUC + DeLong SE, n = 1,000,000 (pROC roc + var/ci.auc(method = "delong"))
#   G3: loess ICI (R's default surface) + 1000 bootstrap replicates, n = 10,000;
#       R runs 100 replicates and its time is scaled by 10 (about 2.5 minutes saved)
# Usage: scripts/bench/bench_validate.sh [BUILD_DIR]   (default build-validate)
# Needs Rscript with survival and pROC; scikit-learn (python3-sklearn) if present;
# builds the bench_validate target. The machine should be otherwise idle.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-validate}
cmake --build "$BUILD" --target bench_validate -j2 >/dev/null
BIN=$(find "$BUILD" -name bench_validate -type f -perm -u+x | head -1)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$BIN" gen-surv 10000 "$T/surv.csv"
"$BIN" gen-binary 1000000 "$T/bin.csv"
"$BIN" gen-prob 10000 "$T/prob.csv"
echo "== G1: C-index, n = 10000, 1000 bootstrap replicates"
"$BIN" cindex-boot "$T/surv.csv" 1000 | tee "$T/f1"
Rscript "$ROOT/scripts/bench/bench_validate.R" cindex "$T/surv.csv" 1000 | tee "$T/r1"
echo "== G2: AUC + DeLong, n = 1000000"
"$BIN" auc "$T/bin.csv" | tee "$T/f2"
Rscript "$ROOT/scripts/bench/bench_validate.R" auc "$T/bin.csv" | tee "$T/r2"
if /usr/bin/python3 -c "import sklearn" 2>/dev/null; then
	/usr/bin/python3 "$ROOT/scripts/bench/bench_validate.py" "$T/bin.csv" | tee "$T/s2"
fi
echo "== G3: loess ICI, n = 10000, 1000 bootstrap replicates (R: 100, time x 10)"
"$BIN" ici-boot "$T/prob.csv" 1000 | tee "$T/f3"
Rscript "$ROOT/scripts/bench/bench_validate.R" ici "$T/prob.csv" 100 | tee "$T/r3"
f1=$(awk '/boot/ {print $2}' "$T/f1"); r1=$(awk '/boot/ {print $2}' "$T/r1")
f2=$(awk '{print $2}' "$T/f2"); r2=$(awk '{print $2}' "$T/r2")
echo "ratio G1 (R / fedpath, bootstrap): $(echo "$r1 $f1" | awk '{printf "%.1f", $1 / $2}')x"
echo "ratio G2 (pROC / fedpath, AUC+DeLong): $(echo "$r2 $f2" | awk '{printf "%.1f", $1 / $2}')x"
f3=$(awk '{print $2}' "$T/f3"); r3=$(awk '{print $2 * 10}' "$T/r3")
echo "ratio G3 (R x10 / fedpath, ICI bootstrap): $(echo "$r3 $f3" | awk '{printf "%.1f", $1 / $2}')x"
if [ -s "$T/s2" ]; then
	s2=$(awk '{print $2}' "$T/s2")
	echo "ratio G2 (scikit-learn AUC only / fedpath AUC+DeLong): $(echo "$s2 $f2" | awk '{printf "%.1f", $1 / $2}')x"
fi
