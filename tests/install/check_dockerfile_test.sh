#!/usr/bin/env bash
# scripts/check-dockerfile.sh accepts the real Dockerfile and rejects each broken variant below with
# the matching message, so every rule it claims is known to fire. (It checks what CI cannot build,
# the CUDA stages; scripts/test-image.sh builds and runs the CPU image.)
#   check_dockerfile_test.sh <source dir> <scratch dir>
set -euo pipefail
source_dir=$1
scratch=$2
checker="$source_dir/scripts/check-dockerfile.sh"
dockerfile="$source_dir/Dockerfile"
mkdir -p "$scratch"

bash "$checker" "$dockerfile"

failures=0
# expect_rejected <expected message> <sed script>
expect_rejected() {
  local expected=$1 script=$2 broken="$scratch/Dockerfile.broken" output
  sed -e "$script" "$dockerfile" >"$broken"
  if cmp -s "$broken" "$dockerfile"; then
    echo "FAILED: the edit '$script' changed nothing; the test is stale"; failures=$((failures + 1)); return
  fi
  if output=$(bash "$checker" "$broken"); then
    echo "FAILED: accepted a Dockerfile edited with '$script'"; failures=$((failures + 1))
  elif ! grep -qF -- "$expected" <<<"$output"; then
    echo "FAILED: '$script' was rejected without '$expected':"; echo "$output"; failures=$((failures + 1))
  else
    echo "ok: rejected ($expected)"
  fi
}

expect_rejected "runs as root" 's/^USER .*/USER root/'
expect_rejected "sets no USER" '/^USER /d'
expect_rejected "official nvidia/cuda runtime image" 's/-runtime-ubuntu/-devel-ubuntu/'
expect_rejected "differ in CUDA or Ubuntu release" 's/cuda:${CUDA_VERSION}-runtime-/cuda:12.6.3-runtime-/'
expect_rejected "no pinned tag" 's/^FROM debian:bookworm-slim AS cpu/FROM debian AS cpu/'
expect_rejected "no pinned tag" 's/^FROM debian:bookworm-slim AS cpu/FROM debian:latest AS cpu/'
expect_rejected "names a stage through an ARG" 's/^FROM debian:bookworm-slim AS cpu/FROM build-${MODEL}cpu AS cpu/'
expect_rejected "the stage name is made from an ARG" 's/ AS build-cpu$/ AS build-${MODEL}cpu/'
expect_rejected "not on a runtime base image" 's/^FROM debian:bookworm-slim AS cpu/FROM build-cpu AS cpu/'
expect_rejected "not cuda" '$a FROM debian:bookworm-slim AS extra'
expect_rejected "stage cuda differs from cpu" 's|^FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04 AS cuda|&\nENV EXTRA=1|'
expect_rejected "stage build-cuda differs from build-cpu" 's|--variant cuda --model|--variant cuda --jobs 1 --model|'
expect_rejected "not build-cpu" 's|--from=build-cpu /opt/podworker/bin|--from=build-cuda /opt/podworker/bin|'
expect_rejected "local-mode flags" 's|^ENTRYPOINT \["/usr/local/bin/worker"\]|ENTRYPOINT ["/usr/local/bin/worker", "--serve-api"]|'
expect_rejected "exec form" 's|^ENTRYPOINT \["/usr/local/bin/worker"\]|ENTRYPOINT /usr/local/bin/worker|'
expect_rejected "must run the worker" 's|^ENTRYPOINT \["/usr/local/bin/worker"\]|ENTRYPOINT ["/bin/sh"]|'
expect_rejected "from the build context" 's|^USER |COPY . /app\n&|'
expect_rejected "without --no-install-recommends" 's/ --no-install-recommends libcurl4 / libcurl4 /'
expect_rejected "without removing /var/lib/apt/lists" 's| \&\& rm -rf /var/lib/apt/lists/\* \\$| \\|'
expect_rejected "RUN --mount needs" '1d'

if [ "$failures" -gt 0 ]; then
  echo "$failures case(s) failed"; exit 1
fi
echo "check-dockerfile: all rules fire"
