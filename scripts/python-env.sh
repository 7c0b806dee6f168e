#!/usr/bin/env bash
# Creates (or refreshes) the Python environment the compatibility tests, the model reference checks
# and the end-to-end benchmark use: a virtual environment with the official RunPod SDK, pinned so a new SDK release cannot change
# what "compatible" means under our feet. Idempotent: a venv that already has the pinned versions is
# left alone. Prints nothing but errors unless something is installed.
#
#   scripts/python-env.sh [VENV_DIR]     (default: .venv at the repository root; git-ignored)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${PODWORKER_VENV:-$root/.venv}}"
python="${PYTHON:-python3}"

# The SDK release the protocol notes were taken from; bump both together.
requirements=(
  "runpod==1.12.0"
  "pytest==8.4.2"
  "pytest-timeout==2.3.1"
  "requests>=2.31"
  # The official OpenAI client, pointed at the endpoint's OpenAI-compatible routes.
  "openai==1.109.1"
  # Reference implementations the model tests compare our GGUF reader and tokenizer against.
  "gguf==0.19.0"
  "tokenizers==0.23.3"
  # Property-based tests of the endpoint against its OpenAPI description, and a validator for it.
  "schemathesis==4.32.5"
  "openapi-spec-validator==0.9.0"
  # The official Prometheus parser reads every /metrics scrape; Selenium drives headless Chromium
  # (Debian's chromium and chromium-driver, from scripts/setup.sh) through the dashboard.
  "prometheus_client==0.26.0"
  "selenium==4.51.0"
  # bench/plot.py draws the benchmarks' --json tables.
  "matplotlib==3.11.2"
)
stamp="$venv/.podworker-requirements"
wanted="$(printf '%s\n' "${requirements[@]}")"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi

if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "python-env: $python lacks venv/ensurepip; run scripts/setup.sh (python3-venv)" >&2
  exit 1
fi
# Several CTest tests may ask for the venv at once: one creates it, the others wait for it.
mkdir -p "$venv"
exec 9>"$venv/.podworker-lock"
flock 9
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
printf '%s\n' "$wanted" >"$stamp"
echo "python-env: ready at $venv ($("$venv/bin/python" -c 'import runpod; print("runpod", runpod.__version__)'))"
