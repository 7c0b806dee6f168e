#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, in build-fuzz) and runs each one for a bounded
# time from its seed corpus in fuzz/corpus/<target>/. Prints every target's executions; a crash,
# leak, timeout or out-of-memory fails the script after printing the reproducer (base64 and a
# hexdump of the input, and the command that replays it).
#   FUZZ_SECONDS=60 scripts/fuzz.sh                     all targets, 60 s each (the default)
#   FUZZ_TARGETS="gguf_reader" scripts/fuzz.sh          some targets only
# New inputs the fuzzers find go to a scratch corpus in the build directory; the checked-in seeds
# are only read.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-endpoint_requests handler_input gguf_reader tokenizer_round_trip}
build=${BUILD_DIR:-build-fuzz}

bash scripts/setup.sh
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$build" -G Ninja "${launcher[@]}" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPODWORKER_FUZZ=ON -DPODWORKER_CUDA=OFF -DPODWORKER_TESTS=OFF -DPODWORKER_BENCH=OFF
cmake --build "$build" -j"$(nproc)" --target podworker_fuzzers

failed=0
summary=()
for t in $targets; do
  bin="$build/fuzz/fuzz_$t"
  work="$build/fuzz-runs/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  log="$work/fuzz.log"
  echo "== fuzz $t: ${seconds} s"
  rc=0
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
    "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
    -artifact_prefix="$work/" "$work/corpus" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2 || true)
  line="$t: ${runs:-?} runs (${rate:-?}/s), coverage ${cov:-?} edges, corpus $(find "$work/corpus" -type f | wc -l) new inputs"
  if [ "$rc" -ne 0 ]; then
    failed=1
    line="$line, FAILED (exit $rc)"
    tail -n 80 "$log"
    for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
      [ -e "$f" ] || continue
      echo "-- reproducer $(basename "$f") ($(stat -c %s "$f") bytes); replay: $bin $f"
      echo "base64:"
      base64 -w 76 "$f"
      echo "hexdump (first 4 KiB):"
      head -c 4096 "$f" | od -A x -t x1z -v
    done
  fi
  echo "$line"
  summary+=("$line")
done
echo "== fuzz summary (${seconds} s per target)"
printf '  %s\n' "${summary[@]}"
exit "$failed"
