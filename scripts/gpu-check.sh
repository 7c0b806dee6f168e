#!/usr/bin/env bash
# The prepared GPU run, for a bare CUDA machine (nvcc, cuBLAS, CMake; no network, no Boost or curl;
# RapidJSON and doctest headers come from the system or .deps/include). One build with the server
# parts off, then:
#   1. the kernels: CPU and `gpu` suites of test_kernels, test_ops --backend cuda (every CUDA op
#      against its reference, timed with --perf), bench_kernels (table + CSV);
#   2. the CUDA model backend: CPU and `gpu` suites of test_llm_cuda (CUDA logits against the
#      reference backend), then bench_textgen on the GPU at 1, 8 and 32 streams — on a generated model with
#      SmolLM2-135M's exact shapes, and on the real file when models/SmolLM2-135M-Instruct.Q4_1.gguf
#      (or $PODWORKER_MODEL) is present — and once more sending decode batches of 8+ through cuBLAS
#      on the F16 weight copies instead of the quantized mat-vec, to compare the two paths;
#   3. perplexity of the real file and its Q4_K_M requantization on CUDA and on the CPU (within 0.5 %);
#   4. compute-sanitizer (shipped with the CUDA toolkit; the step says skipped when it is absent):
#      memcheck over the gpu suites of test_kernels, test_ops and test_llm_cuda, racecheck over the
#      kernels' (test_kernels, test_ops: the shared-memory kernels), one table of error counts;
#   5. when Boost and libcurl are installed: bench_stream, textgen at batch 1 on the GPU streamed
#      through a 20 ms RTT proxy, tok/s next to the direct figure.
# A gpu suite that skips (no device found: exit 77, or a case saying "no CUDA device") fails the
# check: on the machine this is for, every GPU case must run. $OUT/summary.txt holds the results;
# every log travels in $OUT/results.tar.gz. Budget: under 5 minutes on an H200 (about 2 of them
# building).
#
# Environment: OUT (default ./gpu-check-out), BUILD_DIR, CUDA_ARCH (default 90), JOBS, GEN (decode
# steps per textgen run, default 256).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/gpu-check-out}
BUILD=${BUILD_DIR:-$ROOT/build-gpu-check}
ARCH=${CUDA_ARCH:-90}
JOBS=${JOBS:-$(nproc)}
GEN=${GEN:-256}
LOGS="$OUT/logs"
mkdir -p "$LOGS"
: > "$OUT/summary.txt"
status=0

say() { printf '%s\n' "$*" | tee -a "$OUT/summary.txt"; }
step() { say ""; say "== $1 (${SECONDS}s)"; }
finish() {
  step "done (status $status)"
  # The results channel takes few files: the logs travel as one archive beside the summary.
  tar -C "$OUT" -czf "$OUT/results.tar.gz" logs && rm -rf "$LOGS"
  exit "$status"
}
# The exit code of a gpu suite that found no device (PODWORKER_SKIP_RETURN_CODE, cmake/Testing.cmake).
SKIPPED_RC=77
# run NAME LIMIT_S CMD...: runs one stage with a time limit, its output in logs/NAME.log.
run() {
  local name=$1 limit=$2
  shift 2
  local rc=0
  timeout "$limit" "$@" > "$LOGS/$name.log" 2>&1 || rc=$?
  if [[ $rc -eq $SKIPPED_RC ]]; then
    status=1
    say "FAILED: $name was SKIPPED: $(tail -n 1 "$LOGS/$name.log") -- on this machine every gpu suite must run"
  elif [[ $rc -ne 0 ]]; then
    status=1
    say "FAILED: $name (exit $rc)"
  fi
}
# gpu_suite NAME LIMIT_S BINARY: runs BINARY's gpu suite; a skip, of the whole suite (exit
# SKIPPED_RC, reported by run) or of any case in it (a "no CUDA device" message), fails the check as
# loudly as a failure.
gpu_suite() {
  local name=$1 limit=$2 binary=$3
  run "$name" "$limit" "$binary" --test-suite=gpu -s
  if ! grep -q "^gpu suite skipped" "$LOGS/$name.log" && grep -q "no CUDA device" "$LOGS/$name.log"; then
    status=1
    say "FAILED: $name skipped $(grep -c "no CUDA device" "$LOGS/$name.log") case(s): no CUDA device"
  fi
}

step "machine"
{ nvidia-smi || true; nvcc --version || true; cmake --version | head -1; } > "$LOGS/machine.log" 2>&1
head -20 "$LOGS/machine.log" | tee -a "$OUT/summary.txt"

if [[ -z "${CUDACXX:-}" ]] && ! command -v nvcc > /dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)

step "configure and build"
if ! cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPODWORKER_SERVER=OFF \
    -DPODWORKER_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" > "$LOGS/configure.log" 2>&1 ||
  ! cmake --build "$BUILD" -j "$JOBS" \
    --target test_kernels test_ops bench_kernels test_llm_cuda bench_textgen perplexity quantize podworker_cuda > "$LOGS/build.log" 2>&1; then
  cat "$LOGS/configure.log" "$LOGS/build.log" 2> /dev/null | grep -E "rror" -A3 | head -40 |
    tee -a "$OUT/summary.txt"
  status=1
  finish
fi

step "kernels: tests"
run kernels_test_cpu 120 "$BUILD/tests/kernels/test_kernels" --test-suite-exclude=gpu
gpu_suite kernels_test_gpu 180 "$BUILD/tests/kernels/test_kernels"
for f in kernels_test_cpu kernels_test_gpu; do tail -n 3 "$LOGS/$f.log"; done | tee -a "$OUT/summary.txt"
grep -E "ERROR|FAILED" "$LOGS/kernels_test_gpu.log" | head -30 | tee -a "$OUT/summary.txt"

step "ops: every CUDA op against its reference, timed"
run ops_test_gpu 180 "$BUILD/tests/ops/test_ops" --backend cuda --perf
grep -E "^FAIL|bandwidth|test_ops:" "$LOGS/ops_test_gpu.log" | head -40 | tee -a "$OUT/summary.txt"

step "kernels: benchmark"
run bench_kernels 240 "$BUILD/bench/kernels/bench_kernels" --csv "$OUT/bench_kernels.csv"
cat "$LOGS/bench_kernels.log" >> "$OUT/summary.txt"

step "model backend: tests"
run llm_test_cpu 120 "$BUILD/tests/llm_cuda/test_llm_cuda" --test-suite-exclude=gpu
gpu_suite llm_test_gpu 180 "$BUILD/tests/llm_cuda/test_llm_cuda"
for f in llm_test_cpu llm_test_gpu; do tail -n 3 "$LOGS/$f.log"; done | tee -a "$OUT/summary.txt"
grep -E "ERROR|FAILED|near-tie" "$LOGS/llm_test_gpu.log" | head -40 | tee -a "$OUT/summary.txt"

model="${PODWORKER_MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
[[ -f "$model" ]] || model="$ROOT/models/absent.gguf"  # the bench then runs the generated model only

step "textgen benchmark: CUDA, quantized mat-vec decode"
run bench_textgen 150 "$BUILD/bench/textgen/bench_textgen" --backend cuda --streams 1,8,32 \
  --prompt 64 --gen "$GEN" --model "$model"
cat "$LOGS/bench_textgen.log" >> "$OUT/summary.txt"

step "textgen benchmark: CUDA, cuBLAS decode from batch 8 (generated model)"
run bench_textgen_gemm 90 env PODWORKER_CUDA_DECODE_GEMM_FROM=8 "$BUILD/bench/textgen/bench_textgen" \
  --backend cuda --streams 8,32 --prompt 64 --gen "$GEN" --model "$ROOT/models/absent.gguf"
cat "$LOGS/bench_textgen_gemm.log" >> "$OUT/summary.txt"

# The CUDA backend scores a text as the CPU backend does: perplexity within 0.5 % (issue 13), for the
# Q4_1 file and its Q4_K_M requantization (K-quants dequantized to F16 on the GPU).
step "perplexity: CUDA against CPU"
if [[ -f "$model" ]]; then
  run quantize_q4_k_m 60 "$BUILD/apps/quantize/quantize" "$model" "$OUT/q4_k_m.gguf" Q4_K_M
  for file in "$model" "$OUT/q4_k_m.gguf"; do
    for backend in cpu cuda; do
      name="perplexity_$(basename "$file" .gguf)_$backend"
      run "$name" 120 "$BUILD/apps/perplexity/perplexity" --model "$file" --file "$ROOT/tests/data/perplexity.txt" \
        --ctx 128 --backend "$backend"
      say "$name: $(grep -E '^perplexity: [0-9.]+$' "$LOGS/$name.log" | tail -n 1)"
    done
    figure() { grep -E '^perplexity: [0-9.]+$' "$LOGS/perplexity_$(basename "$file" .gguf)_$1.log" | tail -n 1 | awk '{print $2}'; }
    cpu=$(figure cpu)
    gpu=$(figure cuda)
    if ! awk -v a="$cpu" -v b="$gpu" 'BEGIN { d = (b - a) / a; exit !(a > 0 && d < 0.005 && d > -0.005) }'; then
      status=1
      say "FAILED: $(basename "$file"): CUDA perplexity $gpu is not within 0.5 % of the CPU's $cpu"
    fi
  done
  rm -f "$OUT/q4_k_m.gguf"
else
  say "skipped: the perplexity comparison needs the real model file"
fi

# compute-sanitizer over the gpu suites: memcheck (out-of-bounds and misaligned accesses, API errors)
# on every suite, racecheck (shared-memory hazards) on the kernels'. A suite under a tool passes when
# it exits 0 and the tool's ERROR SUMMARY counts 0.
step "compute-sanitizer: memcheck and racecheck over the gpu suites"
sanitizer=$(command -v compute-sanitizer || true)
[[ -z "$sanitizer" && -x /usr/local/cuda/bin/compute-sanitizer ]] && sanitizer=/usr/local/cuda/bin/compute-sanitizer
if [[ -n "$sanitizer" ]]; then
  say "$(printf '%-10s %-14s %8s  %s' tool suite errors result)"
  for check in memcheck:kernels memcheck:ops memcheck:llm racecheck:kernels racecheck:ops; do
    tool=${check%%:*}
    suite=${check#*:}
    case "$suite" in
      kernels) cmd=("$BUILD/tests/kernels/test_kernels" --test-suite=gpu) ;;
      ops) cmd=("$BUILD/tests/ops/test_ops" --backend cuda) ;;
      llm) cmd=("$BUILD/tests/llm_cuda/test_llm_cuda" --test-suite=gpu) ;;
    esac
    name="sanitizer_${tool}_${suite}"
    before=$status
    run "$name" 240 "$sanitizer" --tool "$tool" --error-exitcode 99 "${cmd[@]}"
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' "$LOGS/$name.log" | tail -n 1)
    result=ok
    [[ $status -ne $before || "${errors:-x}" != 0 ]] && { status=1; result=FAILED; }
    say "$(printf '%-10s %-14s %8s  %s' "$tool" "$suite" "${errors:-?}" "$result")"
  done
else
  say "skipped: compute-sanitizer not found (it ships with the CUDA toolkit)"
fi

# Streaming over a network: textgen at batch 1 on the GPU, the worker posting through a loopback
# proxy that adds 20 ms per round trip, tok/s next to the direct (0 ms) figure. It needs the server
# parts (Boost, libcurl): a second build, only when their headers are on the machine.
step "stream benchmark: textgen on CUDA through a 20 ms RTT proxy"
if [[ -d /usr/include/boost/beast && ( -f /usr/include/x86_64-linux-gnu/curl/curl.h ||
      -f /usr/include/curl/curl.h ) && -f "$model" ]]; then
  if cmake -S "$ROOT" -B "$BUILD-server" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPODWORKER_SERVER=ON       -DPODWORKER_TESTS=OFF -DPODWORKER_BENCH=ON -DPODWORKER_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH"       > "$LOGS/configure_server.log" 2>&1 &&
    cmake --build "$BUILD-server" -j "$JOBS" --target bench_stream podworker_cuda > "$LOGS/build_server.log" 2>&1; then
    cd "$ROOT" || finish
    run bench_stream 150 env PODWORKER_BACKEND=cuda PODWORKER_MODEL="$model" \
      "$BUILD-server/bench/stream/bench_stream" --no-sdk --rtt 0,20 --tokens "$GEN"
    cat "$LOGS/bench_stream.log" >> "$OUT/summary.txt"
  else
    status=1
    say "FAILED: the server build for bench_stream (see logs/build_server.log)"
  fi
else
  say "skipped: bench_stream needs Boost and libcurl headers and the real model file"
fi

finish
