#!/usr/bin/env bash
# The installed package works for a separate project: installs this build into a fresh prefix,
# builds examples/custom-handler against it with find_package(podworker), runs the example's own
# tests, and runs its worker on a streaming test job.
#   install_test.sh <build dir> <source dir> <scratch dir> <file of cmake args for the example, one a line>
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$3
mapfile -t example_args <"$4"

prefix="$scratch/prefix"
example_build="$scratch/custom-handler"
rm -rf "$prefix"
mkdir -p "$scratch"

echo "== cmake --install $build_dir --prefix $prefix"
cmake --install "$build_dir" --prefix "$prefix"

missing=0
for f in bin/worker bin/endpoint include/podworker/handler.h include/podworker/worker.h \
         include/podworker/json.h include/kernels/device.h lib/cmake/podworker/podworkerConfig.cmake \
         lib/cmake/podworker/podworkerConfigVersion.cmake lib/cmake/podworker/podworkerTargets.cmake; do
  if [ ! -e "$prefix/$f" ]; then echo "FAILED: not installed: $f"; missing=1; fi
done
[ "$missing" = 0 ] || exit 1

echo "== configure and build examples/custom-handler against the installed package"
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# The example's own tree is copied so nothing is written into the sources.
rm -rf "$scratch/custom-handler-src"
cp -r "$source_dir/examples/custom-handler" "$scratch/custom-handler-src"
cmake -S "$scratch/custom-handler-src" -B "$example_build" -G Ninja "${launcher[@]}" \
  -DCMAKE_PREFIX_PATH="$prefix" "${example_args[@]}"
cmake --build "$example_build" -j2

echo "== the example's tests"
ctest --test-dir "$example_build" --output-on-failure

echo "== streaming job through the installed runtime"
output=$("$example_build/shift_worker" --handler shift_stream \
  --test-input '{"input": {"text": "Streaming works: ok", "shift": 13, "chunk_chars": 5}}')
echo "$output"
# Pieces of at most 5 bytes, in order, shifted by 13 (the CPU reference is the expected text).
for piece in '"Fgern"' '"zvat "' '"jbexf"' '": bx"'; do
  grep -qF -- "$piece" <<<"$output" || { echo "FAILED: piece $piece not streamed"; exit 1; }
done
echo "install test: ok"
