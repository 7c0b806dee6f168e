#!/usr/bin/env bash
# Runs the curl commands of RunPod's "Job operations" page (the seed's client API reference) against
# a podworker endpoint, with only the host swapped for the local one, and checks every response's
# shape. A worker played with curl over the worker API completes jobs so /status, /stream and
# /runsync show real output. Exits non-zero at the first mismatch.
#
#   scripts/seed-curl-check.sh [URL]
#     URL      a running endpoint, e.g. http://127.0.0.1:8000 (API_KEY in the environment when it
#              has one). Without URL the script starts the endpoint itself on a free port with a
#              generated key: $PODWORKER_ENDPOINT, else build/apps/endpoint/endpoint.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
endpoint_id="local"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'fail "the command at line $LINENO failed (its error is above)"' ERR

fail() {
  echo "seed-curl-check: FAIL: $*" >&2
  if [ -n "$server_pid" ] && [ -f "$work/endpoint.log" ]; then
    echo "--- endpoint log (tail) ---" >&2
    tail -n 40 "$work/endpoint.log" >&2
  fi
  exit 1
}

# ---------------------------------------------------------------------------------------------
# The endpoint under test.
if [ $# -ge 1 ]; then
  base_url="${1%/}"
  API_KEY="${API_KEY:-}"
else
  binary="${PODWORKER_ENDPOINT:-$root/build/apps/endpoint/endpoint}"
  [ -x "$binary" ] || fail "no endpoint executable at $binary (build it, or set PODWORKER_ENDPOINT)"
  API_KEY="${API_KEY:-seed-check-$RANDOM$RANDOM}"
  PODWORKER_API_KEY="$API_KEY" "$binary" --port 0 >"$work/endpoint.log" 2>&1 &
  server_pid=$!
  deadline=$((SECONDS + 15))
  base_url=""
  while [ -z "$base_url" ]; do
    base_url="$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$work/endpoint.log" | head -n1 | sed 's/^listening on //' || true)"
    [ -n "$base_url" ] && break
    kill -0 "$server_pid" 2>/dev/null || fail "the endpoint exited before listening"
    [ $SECONDS -lt $deadline ] || fail "the endpoint did not print its address within 15 s"
    sleep 0.05
  done
fi
export API_KEY
host="$base_url/v2"   # what https://api.runpod.ai/v2 becomes
echo "seed-curl-check: endpoint $base_url, endpoint id '$endpoint_id'"

# Every seed command below runs through this: silent, bounded, and failing on an HTTP error status
# (the body is still printed so the check can show it).
curl() { command curl --silent --show-error --max-time 100 --fail-with-body "$@"; }

# check NAME JSON PYTHON_EXPR: PYTHON_EXPR, evaluated with r = the parsed JSON, must be true.
check() {
  local name="$1" body="$2" expr="$3"
  if ! BODY="$body" python3 -c '
import json, os, sys
r = json.loads(os.environ["BODY"])
sys.exit(0 if eval("(" + sys.argv[1] + ")") else 1)
' "$expr" 2>"$work/check.err"; then
    fail "$name: response $body does not satisfy: $expr $(cat "$work/check.err")"
  fi
  echo "  ok  $name"
}
field() { BODY="$1" python3 -c 'import json, os, sys; print(json.loads(os.environ["BODY"])[sys.argv[1]])' "$2"; }

# The worker side, played with curl the way a RunPod worker sends it (raw key, JSON body).
worker_id="seed-check-worker"
take() {
  local deadline=$((SECONDS + 20)) code
  while [ $SECONDS -lt $deadline ]; do
    code="$(command curl -sS --max-time 30 -o "$work/taken.json" -w '%{http_code}' \
      -H "Authorization: ${API_KEY}" "$host/$endpoint_id/job-take/$worker_id?gpu=curl&job_in_progress=0")"
    [ "$code" = 200 ] && { cat "$work/taken.json"; return 0; }
    [ "$code" = 204 ] || { echo "job-take answered $code: $(cat "$work/taken.json")" >&2; return 1; }
  done
  echo "no job from job-take within 20 s" >&2
  return 1
}
worker_post() {  # worker_post job-done|job-stream JOB_ID JSON [isStream]
  command curl -sS --max-time 30 --fail-with-body -X POST \
    -H "Authorization: ${API_KEY}" -H 'Content-Type: application/x-www-form-urlencoded' \
    -d "$3" "$host/$endpoint_id/$1/$worker_id/$2?gpu=curl&isStream=${4:-false}" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# The seed's commands. Its text quotes the Authorization header in single quotes, in which the
# shell never expands ${API_KEY}; the only change besides the host is double quotes there.
echo "health"
out="$(curl --request GET \
--url $host/$endpoint_id/health \
--header 'accept: application/json' \
--header "Authorization: Bearer ${API_KEY}")"
check "/health shape" "$out" '
set(r) == {"jobs", "workers"}
and set(r["jobs"]) == {"completed", "failed", "inProgress", "inQueue", "retried"}
and set(r["workers"]) == {"idle", "running"}
and all(isinstance(v, int) and v >= 0 for v in list(r["jobs"].values()) + list(r["workers"].values()))'

echo "asynchronous job: /run, worker, /status, /stream"
out="$(curl -X POST $host/$endpoint_id/run \
-H 'Content-Type: application/json' \
-H "Authorization: Bearer ${API_KEY}" \
-d '{"input": {"prompt": "Your prompt"}}')"
check "/run answer" "$out" 'set(r) == {"id", "status"} and r["status"] == "IN_QUEUE" and len(r["id"]) > 0'
job_id="$(field "$out" id)"

out="$(curl $host/$endpoint_id/status/$job_id \
-H "Authorization: Bearer ${API_KEY}")"
check "/status while queued" "$out" 'r["id"] == "'"$job_id"'" and r["status"] == "IN_QUEUE"'

taken="$(take)" || fail "job-take: no job"
check "job-take hands out the job" "$taken" 'r["id"] == "'"$job_id"'" and r["input"] == {"prompt": "Your prompt"}'
worker_post job-done "$job_id" '{"status": "IN_PROGRESS", "output": {"progress": "half"}}' || fail "progress post"
out="$(curl $host/$endpoint_id/status/$job_id \
-H "Authorization: Bearer ${API_KEY}")"
check "/status while running shows progress" "$out" \
  'r["status"] == "IN_PROGRESS" and r["output"] == {"progress": "half"} and r["workerId"] == "'"$worker_id"'"'

worker_post job-stream "$job_id" '{"output": {"text": ["Hello!"]}}' || fail "stream post"
worker_post job-stream "$job_id" '{"output": {"text": [" How"]}}' || fail "stream post"
out="$(curl $host/$endpoint_id/stream/$job_id \
-H 'Content-Type: application/json' \
-H "Authorization: Bearer ${API_KEY}")"
check "/stream while running" "$out" \
  'r["status"] == "IN_PROGRESS" and r["stream"] == [{"output": {"text": ["Hello!"]}}, {"output": {"text": [" How"]}}]'

worker_post job-stream "$job_id" '{"output": {"text": [" can I help?"]}}' || fail "stream post"
worker_post job-done "$job_id" '{"output": {"input_tokens": 22, "output_tokens": 3, "text": ["Hello! How can I help?"]}}' true \
  || fail "result post"
out="$(curl $host/$endpoint_id/status/$job_id \
-H "Authorization: Bearer ${API_KEY}")"
check "/status when completed" "$out" '
r["id"] == "'"$job_id"'" and r["status"] == "COMPLETED"
and r["output"] == {"input_tokens": 22, "output_tokens": 3, "text": ["Hello! How can I help?"]}
and isinstance(r["delayTime"], int) and r["delayTime"] >= 0
and isinstance(r["executionTime"], int) and r["executionTime"] >= 0'
out="$(curl $host/$endpoint_id/stream/$job_id \
-H 'Content-Type: application/json' \
-H "Authorization: Bearer ${API_KEY}")"
check "/stream returns only the chunk not yet delivered" "$out" \
  'r["status"] == "COMPLETED" and r["stream"] == [{"output": {"text": [" can I help?"]}}]'

echo "synchronous job: /runsync with a worker answering"
(
  sync_job="$(take)" || exit 1
  sync_id="$(field "$sync_job" id)"
  worker_post job-done "$sync_id" '{"output": [{"image": "https://image.url", "seed": 46578}]}'
) &
worker_pid=$!
out="$(curl -X POST $host/$endpoint_id/runsync \
-H 'Content-Type: application/json' \
-H "Authorization: Bearer ${API_KEY}" \
-d '{"input": {"prompt": "Your prompt"}}')"
wait "$worker_pid" || fail "the played worker could not take and complete the /runsync job"
check "/runsync answer" "$out" '
r["id"].startswith("sync-") and r["status"] == "COMPLETED"
and r["output"] == [{"image": "https://image.url", "seed": 46578}]
and isinstance(r["delayTime"], int) and isinstance(r["executionTime"], int)'

echo "cancel"
out="$(curl -X POST $host/$endpoint_id/run \
-H 'Content-Type: application/json' \
-H "Authorization: Bearer ${API_KEY}" \
-d '{"input": {"prompt": "Your prompt"}}')"
job_id="$(field "$out" id)"
out="$(curl -X POST $host/$endpoint_id/cancel/$job_id \
-H 'Content-Type: application/json' \
-H "Authorization: Bearer ${API_KEY}")"
check "/cancel answer" "$out" 'r == {"id": "'"$job_id"'", "status": "CANCELLED"}'
out="$(curl $host/$endpoint_id/status/$job_id \
-H "Authorization: Bearer ${API_KEY}")"
check "/status after cancel" "$out" 'r["status"] == "CANCELLED"'

echo "purge-queue"
for _ in 1 2; do
  curl -X POST $host/$endpoint_id/run \
  -H 'Content-Type: application/json' \
  -H "Authorization: Bearer ${API_KEY}" \
  -d '{"input": {"prompt": "Your prompt"}}' >/dev/null
done
out="$(curl -X POST $host/$endpoint_id/purge-queue \
-H 'Content-Type: application/json' \
-H "Authorization: Bearer ${API_KEY}")"
check "/purge-queue answer" "$out" 'r == {"removed": 2, "status": "completed"}'

out="$(curl --request GET \
--url $host/$endpoint_id/health \
--header 'accept: application/json' \
--header "Authorization: Bearer ${API_KEY}")"
check "/health counts" "$out" 'r["jobs"]["completed"] >= 2 and r["jobs"]["inQueue"] == 0 and r["jobs"]["inProgress"] == 0'

echo "auth: a wrong key is refused"
code="$(command curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$host/$endpoint_id/health" \
  -H 'Authorization: Bearer not-the-key')"
if [ -n "$API_KEY" ]; then
  [ "$code" = 401 ] || fail "a wrong key got $code, not 401"
  echo "  ok  401 for a wrong key"
fi

echo "seed-curl-check: all checks passed"
