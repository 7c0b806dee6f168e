#!/usr/bin/env bash
# The build stages of the Dockerfile (build-cpu, build-cuda), runnable anywhere: configure, build
# and install podworker the way the image does, optionally fetch the model, then check that the
# installed tree holds what the image stage of the variant COPYs and that the worker runs. The
# Dockerfile RUNs this script; CI builds the CPU image for real (scripts/test-image.sh) and, in a
# CUDA build, runs this script for the CUDA variant outside a container (CTest label "docker").
#
#   scripts/docker-build-steps.sh [--variant cuda|cpu] [--model none|smollm2]
#       [--cuda-architectures LIST] [--build-dir DIR] [--prefix DIR] [--jobs N] [--dockerfile FILE]
#
# The toolchain comes from scripts/setup.sh --build-only (the Dockerfile runs it in its own layer
# first).
set -euo pipefail

source_dir=$(cd "$(dirname "$0")/.." && pwd)
variant=cuda
model=none
cuda_architectures="80-real;86-real;89-real;90-real;100-real;120"
build_dir="$source_dir/build-docker"
prefix=/opt/podworker
jobs=$(nproc)
dockerfile="$source_dir/Dockerfile"
# The image's install prefix: paths under it in the Dockerfile's COPY lines map into --prefix.
image_prefix=/opt/podworker

die() { echo "docker-build-steps: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant=${2:?}; shift 2 ;;
    --model) model=${2:?}; shift 2 ;;
    --cuda-architectures) cuda_architectures=${2?}; shift 2 ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --prefix) prefix=${2:?}; shift 2 ;;
    --jobs) jobs=${2:?}; shift 2 ;;
    --dockerfile) dockerfile=${2:?}; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
case "$variant" in cuda|cpu) ;; *) die "--variant must be cuda or cpu, not '$variant'" ;; esac
case "$model" in none|smollm2) ;; *) die "--model must be none or smollm2, not '$model'" ;; esac
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

# ---- 1. configure and build: Release, no tests or benchmarks, CUDA required for the cuda image ----
cmake_args=(
  -S "$source_dir" -B "$build_dir" -G Ninja
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_INSTALL_PREFIX="$prefix"
  -DPODWORKER_SERVER=ON -DPODWORKER_TESTS=OFF -DPODWORKER_BENCH=OFF -DPODWORKER_SANITIZE=OFF
)
if [ "$variant" = cuda ]; then
  [ -n "$cuda_architectures" ] || die "--cuda-architectures is empty"
  cmake_args+=(-DPODWORKER_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$cuda_architectures")
else
  cmake_args+=(-DPODWORKER_CUDA=OFF)
fi
if command -v ccache >/dev/null 2>&1; then
  cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
echo "== configure ($variant): cmake ${cmake_args[*]}"
cmake "${cmake_args[@]}"
# What the install takes, and only that: podworker_install_deps (cmake/Install.cmake) depends on
# every target the install rules name. The tools (quantize, perplexity, make_test_model) are not
# installed, so not built.
echo "== build: podworker_install_deps"
cmake --build "$build_dir" -j"$jobs" --target podworker_install_deps

# ---- 2. install (stripped) into the prefix ----
echo "== install into $prefix"
cmake --install "$build_dir" --prefix "$prefix" --strip

# ---- 3. the model, only when asked (the image copies the directory either way) ----
mkdir -p "$prefix/models"
if [ "$model" = smollm2 ]; then
  echo "== model"
  bash "$source_dir/scripts/fetch-model.sh"
  cp "$source_dir"/models/*.gguf "$prefix/models/"
fi

# ---- 4. checks: the tree has what the image takes, and the worker runs ----
echo "== checks"
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

# Every `COPY --from=build-<variant> <image path> ...` of the image stage (named <variant>) must find
# its source.
stage=""
while read -r keyword rest; do
  case "$keyword" in
    FROM|from) stage=$(sed -n 's/.*[[:space:]][Aa][Ss][[:space:]]\+\([^[:space:]]\+\).*/\1/p' <<<"$rest") ;;
    COPY|copy)
      [[ "$rest" == --from=build-"$variant"\ * ]] || continue
      [ "$stage" = "$variant" ] || continue
      read -r _ src _ <<<"$rest"
      [[ "$src" == "$image_prefix"/* ]] || { fail "COPY source $src is outside $image_prefix"; continue; }
      local_path="$prefix/${src#"$image_prefix"/}"
      if [ -e "$local_path" ]; then
        echo "ok: COPY --from=build $src (stage $stage) -> $local_path"
      else
        fail "COPY --from=build $src (stage $stage): $local_path does not exist"
      fi
      ;;
  esac
done < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dockerfile" | grep -Ev '^[[:space:]]*(#|$)')

worker="$prefix/bin/worker"
[ -x "$worker" ] || die "$worker was not installed"

# The worker's shared libraries must all be ones the runtime image provides: the C/C++ runtime,
# libcurl and hiredis (both installed there; hiredis serves --serve-api --store redis://) and, for
# the CUDA image, the CUDA runtime and cuBLAS of the base image
# (libcuda itself comes from the host driver).
known='libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux-[a-z0-9_-]+|libcurl|libhiredis'
if [ "$variant" = cuda ]; then known="$known|libcudart|libcublas|libcublasLt|libcuda"; fi
allowed="^($known)\.so"
needed=$(readelf -d "$worker" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
for lib in $needed; do
  if grep -Eq "$allowed" <<<"$lib"; then echo "ok: needs $lib"; else fail "worker needs $lib, which the $variant runtime image does not have"; fi
done
if ldd "$worker" | grep -q "not found"; then
  fail "unresolved libraries: $(ldd "$worker" | grep "not found" | tr -s ' \t' ' ')"
fi
# The cuda image's worker opens the CUDA backend module from ../lib/podworker when textgen runs
# on CUDA; without it the backend would be reported unavailable on a GPU machine.
if [ "$variant" = cuda ]; then
  module="$prefix/lib/podworker/libpodworker_cuda.so"
  if [ -f "$module" ]; then
    echo "ok: CUDA backend module $module"
    if ldd "$module" | grep -v libcuda.so | grep -q "not found"; then
      fail "the CUDA module's libraries do not resolve: $(ldd "$module" | grep "not found" | tr -s ' \t' ' ')"
    fi
  else
    fail "the CUDA backend module was not installed at $module"
  fi
fi

# Run it as the image does: from an empty directory, handler chosen by PODWORKER_HANDLER.
run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT
if output=$(cd "$run_dir" && PODWORKER_HANDLER=echo "$worker" --test-input '{"input": {"image": "smoke test"}}' 2>&1) \
   && grep -q '"smoke test"' <<<"$output"; then
  echo "ok: installed worker completes a local job"
else
  fail "installed worker did not complete a local echo job: $output"
fi

# The model image: its default handler (ENV PODWORKER_HANDLER=${MODEL:+...} of the image stage) must
# be in the worker and generate from the copied model file.
if [ "$model" = smollm2 ]; then
  model_env=$(sed -n "/AS $variant\$/,/^FROM/p" "$dockerfile" | tr '\\\n' '  ' | tr -s ' ')
  handler=$(sed -n 's/.*PODWORKER_HANDLER=${MODEL:+\([^} ]*\)}.*/\1/p' <<<"$model_env")
  model_file=$(sed -n 's/.*PODWORKER_MODEL=${MODEL:+\([^} ]*\)}.*/\1/p' <<<"$model_env")
  local_model="$prefix/${model_file#"$image_prefix"/}"
  if output=$(cd "$run_dir" && PODWORKER_HANDLER="$handler" PODWORKER_MODEL="$local_model" \
                "$worker" --test-input '{"input": {"prompt": "Hello", "max_tokens": 4}}' 2>&1); then
    echo "ok: handler $handler generates with $local_model"
  else
    fail "the model image's handler '$handler' did not complete a job with $local_model: $output"
  fi
fi

if [ "$failures" -gt 0 ]; then
  die "$failures check(s) failed"
fi
echo "docker-build-steps: $variant image tree in $prefix is complete"
