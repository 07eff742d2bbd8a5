#!/bin/sh
# test_train_cli.sh: `fedpath train` and `fedpath quantify` on a tiny phantom
# cohort, as site IT runs them: synth -> tile -> train -> resume -> quantify,
# plus the refusals (existing checkpoint, wrong model, corrupt cache) and, when
# mpirun is present, data-parallel training equal to one process.
# Needs FEDPATH (the built CLI), h5diff (hdf5-tools). Runs in about 15 s.
set -u
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
fp() { "$FEDPATH" "$@"; }

fp synth --out "$T/cohort" --size tiny --centers 1 --patients 5 --threads 1 --quiet >/dev/null 2>&1 || fail "synth"
fp tile --site H01 --out "$T/caches" --manifest "$T/cohort/H01/clinical.csv" --target-mpp 1.0 --tile-size 64 \
	>/dev/null 2>&1 || fail "tile"
cat >"$T/site.ini" <<INI
[site]
id = H01
data_dir = $T
[data]
caches = caches
truth_dir = cohort/truth
val_fraction = 0.4
[model]
input_size = 16
width1 = 4
width2 = 8
width3 = 8
blocks = 1
groups = 2
[train]
steps = 8
batch = 8
warmup = 0
cosine = false
patience = 0
threads = 1
checkpoint_every = 3
checkpoint = models/a.h5
INI
fp config check "$T/site.ini" --schema train >/dev/null 2>&1 || fail "config check"
printf '[train]\nbatchsize = 3\n' >"$T/bad.ini"
fp train --config "$T/bad.ini" 2>"$T/err" >/dev/null
[ $? -eq 1 ] || fail "unknown key: exit"
grep -q "bad.ini:2" "$T/err" || fail "unknown key message: $(cat "$T/err")"

# Train; outputs are the checkpoint, the best model and the metrics.
fp train --config "$T/site.ini" >"$T/out" 2>"$T/log" || fail "train: $(tail -3 "$T/log")"
grep -q "trained 8 steps" "$T/out" || fail "summary: $(cat "$T/out")"
for f in a.h5 a.best.h5 a.metrics.csv; do [ -f "$T/models/$f" ] || fail "missing models/$f"; done
head -1 "$T/models/a.metrics.csv" | grep -q "val_macro_auc" || fail "metrics header"
grep -q "patients (2 held out)" "$T/log" || fail "patient split: $(grep patients "$T/log")"

# Local evaluation of a checkpoint on every labelled tile.
fp train --config "$T/site.ini" --evaluate "$T/models/a.best.h5" >"$T/eval.json" 2>/dev/null || fail "evaluate"
grep -q '"macro_auc": 0\.[0-9]' "$T/eval.json" || fail "evaluate output: $(cat "$T/eval.json")"
grep -q '"tumour": {"tiles": [1-9]' "$T/eval.json" || fail "evaluate counts: $(cat "$T/eval.json")"

# A second run must not overwrite the checkpoint silently.
fp train --config "$T/site.ini" 2>"$T/err" >/dev/null
[ $? -eq 1 ] || fail "existing checkpoint: exit"
grep -q "pass --resume" "$T/err" || fail "existing checkpoint message: $(cat "$T/err")"

# Resume: 5 steps, then --resume to 8, equals 8 straight, bit for bit.
fp train --config "$T/site.ini" --set train.steps=5 --set train.checkpoint=models/b.h5 >/dev/null 2>&1 || fail "train b"
fp train --config "$T/site.ini" --resume --set train.checkpoint=models/b.h5 >/dev/null 2>"$T/log" ||
	fail "resume: $(tail -3 "$T/log")"
grep -q "resuming" "$T/log" || fail "resume log"
for g in /params /optim/m /optim/v; do
	h5diff "$T/models/a.h5" "$T/models/b.h5" $g $g >/dev/null || fail "resume differs in $g"
done

# A checkpoint of another model is refused, naming both configurations.
fp train --config "$T/site.ini" --resume --set model.width3=16 2>"$T/err" >/dev/null
[ $? -eq 1 ] || fail "wrong model: exit"
grep -q "written for model" "$T/err" || fail "wrong model message: $(cat "$T/err")"

# Data-parallel over 2 ranks = one process with the same global batch.
if command -v mpirun >/dev/null 2>&1; then
	mpirun --oversubscribe -np 2 "$FEDPATH" train --config "$T/site.ini" --set train.checkpoint=models/m.h5 \
		>/dev/null 2>"$T/log" || fail "mpirun: $(tail -3 "$T/log")"
	# parameters within 1e-4 relative after 8 steps (measured: 2e-7)
	h5diff -p 1e-4 "$T/models/a.h5" "$T/models/m.h5" /params /params >/dev/null || fail "mpi params differ"
	a=$(sed -n 2p "$T/models/a.metrics.csv" | cut -d, -f3)
	m=$(sed -n 2p "$T/models/m.metrics.csv" | cut -d, -f3)
	awk -v a="$a" -v m="$m" 'BEGIN { d = a - m; if (d < 0) d = -d; exit !(d <= 1e-4 * a) }' ||
		fail "mpi train loss $m vs $a"
fi

# Quantify: probabilities and embeddings into the caches, features per slide.
fp quantify --model "$T/models/a.best.h5" --cache "$T/caches" --threads 1 >"$T/out" 2>"$T/log" ||
	fail "quantify: $(tail -3 "$T/log")"
[ "$(wc -l <"$T/caches/features.csv")" -eq 6 ] || fail "features.csv rows: $(cat "$T/caches/features.csv")"
head -1 "$T/caches/features.csv" | grep -q "lymph_density_tumour,lymph_density_margin,lymph_frac_tumour" || fail "features header"
c=$(ls "$T/caches"/*.h5 | head -1)
h5ls "$c/tme/probs" | grep -q "{.*, 7}" || fail "no /tme/probs in $c"
h5ls "$c/tme/lymphocytes" | grep -q "{.*, 1}" || fail "no /tme/lymphocytes in $c"
# Every slide is counted (tiles at 1 um/px with a stain fit): cells are found,
# and no slide with tumour lacks a phenotype.
h5dump -d /tme/lymphocytes "$c" | grep -Eq "\): [1-9]" || fail "no lymphocyte counted in $c"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["tumour_tiles"] > 0 && $col["phenotype"] == "none" { bad = 1 }
	END { exit bad }' "$T/caches/features.csv" || fail "phenotype none: $(cat "$T/caches/features.csv")"

# A corrupt cache stops training before the first step, naming the file.
head -c 4000 "$c" >"$T/caches/zz_corrupt.h5"
fp train --config "$T/site.ini" --set train.checkpoint=models/c.h5 2>"$T/err" >/dev/null
[ $? -eq 1 ] || fail "corrupt cache: exit"
grep -q "zz_corrupt.h5" "$T/err" || fail "corrupt cache message: $(cat "$T/err")"
echo "PASS train_cli"
