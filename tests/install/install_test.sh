#!/usr/bin/env bash
# The installed package works for a separate project: installs this build into a fresh prefix,
# builds examples/custom-handler against it with find_package(podworker COMPONENTS cuda), runs the
# example's own tests, and runs its worker on a streaming test job. Then installs only the core
# component (no cuda: what a CPU-only consumer without the CUDA toolkit has) into a second prefix
# and builds and tests templates/worker against that.
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
         include/podworker/json.h include/podworker/settings.h include/podworker/input.h \
         include/podworker/kernels/device.h lib/cmake/podworker/podworkerConfig.cmake \
         lib/cmake/podworker/podworkerConfigVersion.cmake lib/cmake/podworker/podworkerTargets.cmake \
         lib/cmake/podworker/podworkerCudaTargets.cmake share/podworker/python/podworker_bridge.py \
         share/podworker/python/runpod/serverless/__init__.py; do
  if [ ! -e "$prefix/$f" ]; then echo "FAILED: not installed: $f"; missing=1; fi
done
# The CUDA backend module of a CUDA build, where an installed worker looks for it (bin/../lib/podworker).
if [ -e "$build_dir/llm/cuda/libpodworker_cuda.so" ] && [ ! -e "$prefix/lib/podworker/libpodworker_cuda.so" ]; then
  echo "FAILED: not installed: lib/podworker/libpodworker_cuda.so"; missing=1
fi
# Headers only under include/podworker: nothing that could clash with another library's.
for entry in "$prefix"/include/*; do
  [ "$(basename "$entry")" = podworker ] || { echo "FAILED: installed outside include/podworker: $entry"; missing=1; }
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
echo "== the core component alone: no kernels, no CUDA dependency"
core_prefix="$scratch/prefix-core"
rm -rf "$core_prefix"
cmake --install "$build_dir" --prefix "$core_prefix" --component core
for f in lib/cmake/podworker/podworkerCudaTargets.cmake include/podworker/kernels lib/libpodworker_kernels.a \
         lib/libpodworker_kernels_cuda.a lib/podworker/libpodworker_cuda.so; do
  if [ -e "$core_prefix/$f" ]; then echo "FAILED: the core component installed $f"; exit 1; fi
done
if grep -q CUDAToolkit "$core_prefix/lib/cmake/podworker/podworkerTargets.cmake"; then
  echo "FAILED: the core targets name the CUDA toolkit"; exit 1
fi

echo "== templates/worker built and tested against the core component"
rm -rf "$scratch/template-src" "$scratch/template"
cp -r "$source_dir/templates/worker" "$scratch/template-src"
cmake -S "$scratch/template-src" -B "$scratch/template" -G Ninja "${launcher[@]}" \
  -DCMAKE_PREFIX_PATH="$core_prefix" "${example_args[@]}"
cmake --build "$scratch/template" -j2
ctest --test-dir "$scratch/template" --output-on-failure
# Asking for the cuda component there is a clear configure error, not a missing toolkit.
mkdir -p "$scratch/needs-cuda"
cat >"$scratch/needs-cuda/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(needs_cuda LANGUAGES CXX)
find_package(podworker REQUIRED COMPONENTS cuda)
CMAKE
if out=$(cmake -S "$scratch/needs-cuda" -B "$scratch/needs-cuda/build" -DCMAKE_PREFIX_PATH="$core_prefix" 2>&1); then
  echo "FAILED: COMPONENTS cuda configured against a core-only install"; exit 1
fi
grep -q "podworker component cuda needs: the cuda component (not installed" <<<"$out" \
  || { echo "FAILED: unexpected message: $out"; exit 1; }
echo "install test: ok"
