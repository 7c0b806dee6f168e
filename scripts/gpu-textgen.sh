#!/usr/bin/env bash
# GPU check of the text-generation model on a bare CUDA machine (nvcc, cuBLAS, cmake; no network, no
# Boost/curl): configures with the server parts off, builds test_llm_cuda and bench_textgen for one
# architecture, runs the CPU and `gpu` suites of test_llm_cuda (CUDA backend against the CPU
# backend), then the textgen benchmark on the GPU at 1, 8 and 32 streams: on a generated model with
# SmolLM2-135M's exact shapes, and on the real file when models/SmolLM2-135M-Instruct.Q4_1.gguf (or
# $PODWORKER_MODEL) is present. A second benchmark run sends decode batches of 8+ through cuBLAS on
# the F16 weight copies instead of the quantized mat-vec, to compare the two paths.
# Logs go to $OUT (or ./gpu-textgen-out). Expected wall time on an H200: ~1-2 min build, ~1 min runs.
#
# Environment: OUT, BUILD_DIR, CUDA_ARCH (default 90), JOBS (default: all cores), GEN (decode steps
# per benchmark run, default 256).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/gpu-textgen-out}
BUILD=${BUILD_DIR:-$ROOT/build-gpu-textgen}
ARCH=${CUDA_ARCH:-90}
JOBS=${JOBS:-$(nproc)}
GEN=${GEN:-256}
mkdir -p "$OUT"
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

step "build test_llm_cuda bench_textgen"
if ! cmake --build "$BUILD" --target test_llm_cuda bench_textgen -j "$JOBS" > "$OUT/build.log" 2>&1; then
  grep -E "error|Error" -A3 "$OUT/build.log" | head -40
  echo "build failed: see build.log" | tee -a "$OUT/summary.txt"
  exit 1
fi

step "tests: cpu suite"
timeout 120 "$BUILD/tests/llm_cuda/test_llm_cuda" --test-suite-exclude=gpu > "$OUT/test_cpu.log" 2>&1 || status=1
tail -4 "$OUT/test_cpu.log" | tee -a "$OUT/summary.txt"

step "tests: gpu suite"
timeout 180 "$BUILD/tests/llm_cuda/test_llm_cuda" --test-suite=gpu -s > "$OUT/test_gpu.log" 2>&1 || status=1
grep -E "ERROR|FAILED|error|near-tie|skipped" "$OUT/test_gpu.log" | head -60
tail -4 "$OUT/test_gpu.log" | tee -a "$OUT/summary.txt"

model_args=()
if [[ -n "${PODWORKER_MODEL:-}" ]]; then
  model_args=(--model "$PODWORKER_MODEL")
elif [[ -f "$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf" ]]; then
  model_args=(--model "$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf")
else
  model_args=(--model "$ROOT/models/absent.gguf")  # generated model only
fi

step "bench_textgen: CUDA, quantized mat-vec decode"
timeout 150 "$BUILD/bench/textgen/bench_textgen" --backend cuda --streams 1,8,32 --prompt 64 --gen "$GEN" \
  "${model_args[@]}" > "$OUT/bench_textgen.txt" 2>&1 || status=1
cat "$OUT/bench_textgen.txt"

step "bench_textgen: CUDA, cuBLAS decode from batch 8 (generated model)"
PODWORKER_CUDA_DECODE_GEMM_FROM=8 timeout 90 "$BUILD/bench/textgen/bench_textgen" --backend cuda --streams 8,32 \
  --prompt 64 --gen "$GEN" --model "$ROOT/models/absent.gguf" > "$OUT/bench_textgen_gemm.txt" 2>&1 || status=1
cat "$OUT/bench_textgen_gemm.txt"

step "done (status $status)"
exit $status
