#!/usr/bin/env bash
# scripts/check-dockerfile.sh accepts the real Dockerfile and rejects each broken variant below with
# the matching message, so every rule it claims is known to fire.
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
expect_rejected "no pinned tag" 's/^FROM debian:bookworm-slim AS runtime-cpu/FROM debian AS runtime-cpu/'
expect_rejected "built on the build stage" 's/^FROM runtime-${VARIANT} AS runtime/FROM build AS runtime/'
expect_rejected "local-mode flags" 's|^ENTRYPOINT \["/usr/local/bin/worker"\]|ENTRYPOINT ["/usr/local/bin/worker", "--serve-api"]|'
expect_rejected "exec form" 's|^ENTRYPOINT \["/usr/local/bin/worker"\]|ENTRYPOINT /usr/local/bin/worker|'
expect_rejected "must run the worker" 's|^ENTRYPOINT \["/usr/local/bin/worker"\]|ENTRYPOINT ["/bin/sh"]|'
expect_rejected "copied although MODEL=none" 's|^ENV PODWORKER_HANDLER=echo|COPY --from=build /opt/podworker/models/ /opt/podworker/models/\n&|'
expect_rejected "from the build context" 's|^USER |COPY . /app\n&|'
expect_rejected "PODWORKER_HANDLER is" 's/^ENV PODWORKER_HANDLER=echo/ENV PODWORKER_HANDLER=textgen/'
expect_rejected "without --no-install-recommends" 's/ --no-install-recommends libcurl4 / libcurl4 /'
expect_rejected "RUN --mount needs" '1d'
expect_rejected "ARG MODEL must be declared" 's/^ARG MODEL=none/ARG MODEL=tiny/'

if [ "$failures" -gt 0 ]; then
  echo "$failures case(s) failed"; exit 1
fi
echo "check-dockerfile: all rules fire"
