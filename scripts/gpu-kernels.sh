#!/usr/bin/env bash
# GPU check of the kernels on a bare CUDA machine (nvcc, cuBLAS, cmake; no network, no Boost/curl):
# configures with the server parts off, builds test_kernels and bench_kernels for one architecture,
# runs the CPU and `gpu` test suites and the kernel benchmark. Logs and the CSV go to $OUT (or
# ./gpu-kernels-out). Expected wall time on an H200: ~2-3 min build, ~1 min tests + benchmark.
#
# Environment: OUT (results folder), BUILD_DIR, CUDA_ARCH (default 90), JOBS (default: all cores).
# RapidJSON and doctest headers are found on the system or under .deps/include in the repository.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/gpu-kernels-out}
BUILD=${BUILD_DIR:-$ROOT/build-gpu-kernels}
ARCH=${CUDA_ARCH:-90}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
: > "$OUT/summary.txt"
status=0

step() { printf '\n== %s (%ds)\n' "$1" "$SECONDS" | tee -a "$OUT/summary.txt"; }

step "machine"
{ nvidia-smi || true; nvcc --version || true; cmake --version | head -1; } > "$OUT/machine.txt" 2>&1
head -20 "$OUT/machine.txt"

if [[ -z "${CUDACXX:-}" ]] && ! command -v nvcc > /dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)

step "configure"
# CMake 3.25 has no flag for the CUDA C++20 dialect the project asks for; naming it here is harmless
# on newer CMake, whose own definition takes precedence.
if ! cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPODWORKER_SERVER=OFF \
    -DPODWORKER_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
    -DCMAKE_CUDA20_STANDARD_COMPILE_OPTION=-std=c++20 -DCMAKE_CUDA20_EXTENSION_COMPILE_OPTION=-std=c++20 \
    > "$OUT/configure.log" 2>&1; then
  tail -30 "$OUT/configure.log"
  echo "configure failed: see configure.log" | tee -a "$OUT/summary.txt"
  exit 1
fi
grep -E "podworker:|CUDA" "$OUT/configure.log" | head -5

step "build test_kernels bench_kernels"
if ! cmake --build "$BUILD" --target test_kernels bench_kernels -j "$JOBS" > "$OUT/build.log" 2>&1; then
  grep -E "error|Error" -A3 "$OUT/build.log" | head -40
  echo "build failed: see build.log" | tee -a "$OUT/summary.txt"
  exit 1
fi

step "tests: cpu suite"
timeout 120 "$BUILD/tests/kernels/test_kernels" --test-suite-exclude=gpu > "$OUT/test_cpu.log" 2>&1 || status=1
tail -4 "$OUT/test_cpu.log" | tee -a "$OUT/summary.txt"

step "tests: gpu suite"
timeout 180 "$BUILD/tests/kernels/test_kernels" --test-suite=gpu -s > "$OUT/test_gpu.log" 2>&1 || status=1
grep -E "ERROR|FAILED|MESSAGE: device|skipped" "$OUT/test_gpu.log" | head -40
tail -4 "$OUT/test_gpu.log" | tee -a "$OUT/summary.txt"
if grep -q "no CUDA device" "$OUT/test_gpu.log"; then
  echo "WARNING: no CUDA device was found: the gpu suite skipped every case" | tee -a "$OUT/summary.txt"
  status=1
fi

step "bench_kernels"
timeout 240 "$BUILD/bench/kernels/bench_kernels" --csv "$OUT/bench_kernels.csv" > "$OUT/bench_kernels.txt" 2>&1 || status=1
cat "$OUT/bench_kernels.txt"

step "done (status $status)"
exit $status
