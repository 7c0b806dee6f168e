#!/usr/bin/env bash
# Measures llama.cpp on the same GGUF file and thread count as bench_textgen, for a side-by-side
# comparison of CPU prefill and decode speed. llama.cpp's source ships inside the PyPI sdist of
# llama-cpp-python (vendor/llama.cpp); this downloads that sdist with pip, builds llama-bench and
# llama-perplexity (CPU only) outside the source tree, and runs llama-bench with -p 64 -n 64. For a
# same-run comparison pass the built llama-bench to bench_textgen --llama-bench; compare perplexity
# with `llama-perplexity -m MODEL -f TEXT -c N -t T` against ours (`perplexity --model MODEL --file
# TEXT --ctx N --threads T`): both score the second half of each N-token window.
#
# The build is what a user of llama.cpp gets on this machine: Release, -DGGML_NATIVE=ON (-march=native,
# so the same AVX2/AVX512-VNNI paths as ours), no BLAS, its default OpenMP threading. OpenMP threads
# meet at a barrier after every operation, so on a machine busy with other work (more runnable
# threads than cores) llama.cpp with 2+ threads collapses; compare on a quiet machine (check uptime).
#
# Usage: scripts/bench-llama-cpp.sh [model.gguf]
#   THREADS=2                      threads for llama-bench (-t)
#   LLAMA_CPP_DIR=build/llama-cpp  where the sdist is unpacked and built (kept between runs)
#   LLAMA_CPP_PYTHON_VERSION=0.3.36
#   JOBS=2                         parallel compile jobs
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${1:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
threads="${THREADS:-2}"
dir="${LLAMA_CPP_DIR:-$root/build/llama-cpp}"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
jobs="${JOBS:-2}"

if [[ ! -f "$model" ]]; then
  echo "bench-llama-cpp: model $model not found (scripts/fetch-model.sh downloads it)" >&2
  exit 1
fi

bench="$dir/build/bin/llama-bench"
if [[ ! -x "$bench" || ! -x "$dir/build/bin/llama-perplexity" ]]; then
  mkdir -p "$dir/sdist" "$dir/src"
  sdist="$dir/sdist/llama_cpp_python-$version.tar.gz"
  if [[ ! -f "$sdist" ]]; then
    python3 -m pip download --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$dir/sdist"
  fi
  src="$dir/src/llama_cpp_python-$version"
  if [[ ! -d "$src" ]]; then
    tar -xzf "$sdist" -C "$dir/src"
  fi
  # Native CPU code (as a user of llama.cpp would build it on this machine); no GPU, no curl.
  cmake -S "$src/vendor/llama.cpp" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_OPENMP=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON
  cmake --build "$dir/build" --target llama-bench llama-perplexity -j "$jobs"
fi

echo "built: $bench and $dir/build/bin/llama-perplexity"
echo "llama.cpp (llama-cpp-python $version vendor/llama.cpp), $threads thread(s), $model; load: $(cut -d" " -f1-3 /proc/loadavg)"
"$bench" -m "$model" -t "$threads" -p 64 -n 64 -r 3
