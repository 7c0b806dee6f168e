#!/usr/bin/env bash
# The main job: a local RunPod-style endpoint with a worker serving the SmolLM2-135M text-generation
# handler, on http://127.0.0.1:${PORT:-8000}. Installs what it needs, fetches the model, builds
# (Release), then runs in the foreground until Ctrl-C. HOST, PORT and CONCURRENCY (jobs at once)
# override the defaults; further arguments go to the worker.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/fetch-model.sh

build=${BUILD_DIR:-build-release}
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$build" -G Ninja "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DPODWORKER_TESTS=OFF -DPODWORKER_BENCH=OFF
cmake --build "$build" -j"$(nproc)" --target worker

export PODWORKER_MODEL=${PODWORKER_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
dashboard_host=${HOST:-127.0.0.1}
if [ "$dashboard_host" = "0.0.0.0" ]; then dashboard_host=127.0.0.1; fi
echo "run.sh: dashboard at http://${dashboard_host}:${PORT:-8000}/ (API docs at /docs, Prometheus metrics at /metrics)"
# Jobs at once: textgen's capacity (its max_sequences, 32) unless CONCURRENCY (or
# PODWORKER_CONCURRENCY) says otherwise.
concurrency=()
if [ -n "${CONCURRENCY:-}" ]; then concurrency=(--concurrency "$CONCURRENCY"); fi
# --return-aggregate-stream: /runsync and /status also return the streamed chunks, not only /stream.
exec "$build/apps/worker/worker" --handler textgen "${concurrency[@]}" \
  --return-aggregate-stream \
  --serve-api --api-host "${HOST:-127.0.0.1}" --api-port "${PORT:-8000}" "$@"
