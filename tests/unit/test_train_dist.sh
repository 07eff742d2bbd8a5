#!/bin/sh
# test_train_dist.sh: the two gradient-exchange paths of data-parallel
# training (train/dist.c) give the same parameters bit for bit. Without a GPU
# the device path's code runs on CPU-backend memory (FEDPATH_DIST_DEVICE=1):
# MPI_Allgather straight from the backend buffers, then fp_k_mean_rows
# instead of the host loop. Each run logs which path it took and why.
# What needs a GPU and a CUDA-aware MPI (device memory through MPI) is not
# covered here (docs/TRAINING.md). Needs FEDPATH, mpirun, h5diff. ~15 s.
set -u
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: no mpirun"; exit 77; }
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
fp() { "$FEDPATH" "$@"; }

fp synth --out "$T/cohort" --size tiny --centers 1 --patients 4 --threads 1 --quiet >/dev/null 2>&1 || fail "synth"
fp tile --site H01 --out "$T/caches" --manifest "$T/cohort/H01/clinical.csv" --target-mpp 1.0 --tile-size 32 \
	>/dev/null 2>&1 || fail "tile"
cat >"$T/site.ini" <<INI
[site]
id = H01
data_dir = $T
[data]
caches = caches
truth_dir = cohort/truth
val_fraction = 0.3
[model]
input_size = 16
width1 = 4
width2 = 8
width3 = 8
blocks = 1
groups = 2
[train]
steps = 6
batch = 8
warmup = 0
patience = 0
threads = 1
checkpoint = models/host.h5
INI
mpirun --oversubscribe -np 2 -x FEDPATH_DIST_DEVICE=0 "$FEDPATH" train --config "$T/site.ini" \
	>/dev/null 2>"$T/host.log" || fail "host path: $(tail -3 "$T/host.log")"
grep -q "dist: 2 ranks; gradients exchanged through host memory (host path): the gradients are in host memory (CPU backend)" \
	"$T/host.log" || fail "host path log: $(grep dist: "$T/host.log")"
mpirun --oversubscribe -np 2 -x FEDPATH_DIST_DEVICE=1 "$FEDPATH" train --config "$T/site.ini" \
	--set train.checkpoint=models/dev.h5 >/dev/null 2>"$T/dev.log" || fail "device path: $(tail -3 "$T/dev.log")"
grep -q "dist: 2 ranks; gradients exchanged in GPU memory (device path): FEDPATH_DIST_DEVICE=1" "$T/dev.log" ||
	fail "device path log: $(grep dist: "$T/dev.log")"
for g in /params /optim/m /optim/v; do
	h5diff "$T/models/host.h5" "$T/models/dev.h5" $g $g >/dev/null || fail "paths differ in $g"
done
echo "PASS train_dist"
