#!/usr/bin/env bash
# The prepared GPU run: on a bare CUDA machine (nvcc, cuBLAS, CMake; no network, no Boost or curl),
# builds the CUDA targets for one architecture, runs the `gpu` test suites of the kernels and of the
# CUDA model backend, then the kernel and text-generation benchmarks. Results: $OUT/summary.txt and
# every log in $OUT/results.tar.gz. Budget: under 5 minutes on an H200.
#
# Environment: OUT (results folder, default ./gpu-check-out), CUDA_ARCH (default 90), JOBS.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT/kernels" "$OUT/textgen"
export BUILD_DIR=${BUILD_DIR:-$ROOT/build-gpu-check}
status=0

OUT="$OUT/kernels" bash "$ROOT/scripts/gpu-kernels.sh" || status=1
OUT="$OUT/textgen" bash "$ROOT/scripts/gpu-textgen.sh" || status=1

{
  echo "== kernels"; cat "$OUT/kernels/summary.txt"; cat "$OUT/kernels/bench_kernels.txt" 2>/dev/null
  echo "== textgen"; cat "$OUT/textgen/summary.txt"; cat "$OUT/textgen/bench_textgen"*.txt 2>/dev/null
} > "$OUT/summary.txt"
# The results channel takes few files: everything travels as one archive beside the summary.
tar -C "$OUT" -czf "$OUT/results.tar.gz" kernels textgen && rm -rf "$OUT/kernels" "$OUT/textgen"
exit $status
