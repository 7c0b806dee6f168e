#!/usr/bin/env bash
# CTest entry point for the compatibility tests: makes sure the Python environment with the official
# runpod SDK exists (scripts/python-env.sh; creating it needs PyPI once), then runs pytest on the
# given test files. Every test is bounded (pytest-timeout) on top of its own deadlines.
#   run_pytest.sh test_sdk_client.py [pytest args...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PODWORKER_VENV:-$root/.venv}"
bash "$root/scripts/python-env.sh" "$venv"
# The executables CTest names (or a developer gives, maybe relative) must survive the cd below.
for var in PODWORKER_ENDPOINT PODWORKER_WORKER PODWORKER_MAKE_TEST_MODEL; do
  if [ -n "${!var:-}" ]; then export "$var=$(realpath "${!var}")"; fi
done
cd "$here"
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -p no:cacheprovider --timeout=90 -q -rfE "$@"
