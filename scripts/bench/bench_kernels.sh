#!/bin/sh
# bench_kernels.sh: kernels/ CPU backend vs PyTorch on the CPU, same thread
# count, same workloads, one run each, side by side (a benchmark, not a test).
#
#   scripts/bench/bench_kernels.sh [build-dir] [threads]
#
# build-dir (default build-kernels) must hold bench_kernels
# (cmake --build <dir> --target bench_kernels). threads defaults to 2.
# Workloads (kernels/testnet/bench_kernels.c, scripts/bench/bench_kernels_torch.py):
#   conv  3x3 conv forward + backward, (64, 32, 32, 32) -> 32 channels
#   gemm  1024^3 SGEMM
#   step  Part 1-like net, batch 64 of 64x64 tiles, forward + backward + AdamW
# Prints each side's median time and rate, and ours / PyTorch's rate.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-kernels}
threads=${2:-2}
bin=$build/bench_kernels
[ -x "$bin" ] || bin=$build/tests/bench_kernels
[ -x "$bin" ] || { echo "bench_kernels not found in $build (cmake --build $build --target bench_kernels)" >&2; exit 2; }
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
printf '%-6s %12s %12s %8s  (%s threads, %s)\n' what fedpath torch ratio "$threads" "$(uname -m)"
for what in conv gemm step; do
  ours=$("$bin" --threads "$threads" "$what" 2>/dev/null)
  theirs=$(/usr/bin/python3 "$here/bench_kernels_torch.py" --threads "$threads" "$what" 2>/dev/null)
  echo "$ours" | awk -v t="$theirs" '{ split(t, b, " "); printf "%-6s %12.2f %12.2f %7.2fx  %s\n", $1, $3, b[3], $3 / b[3], $4 }'
done
