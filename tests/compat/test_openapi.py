"""The endpoint's OpenAPI description (GET /openapi.json) checked two ways: openapi-spec-validator
says it is a valid OpenAPI 3 document, and schemathesis (both pinned in scripts/python-env.sh)
generates requests from it against a live endpoint and checks every answer: no 5xx, status codes,
content types and bodies as the document describes them.

A worker played on a thread answers the jobs the requests queue, so /runsync and chat completions
end instead of waiting out their timeouts: chat jobs get a chat.completion (or its SSE chunks),
legacy completion jobs a text_completion,
every other job its input back. The run is bounded in examples per operation and in time, with a
fixed seed so a failure reproduces.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Sequence

import pytest
import requests
from openapi_spec_validator import validate

from processes import EndpointProcess
from worker_api import SDK_CONTENT_TYPE

SPEC_FILE = Path(__file__).resolve().parents[2] / "runtime" / "endpoint" / "openapi.json"
SCHEMATHESIS_BUDGET_S = 75    # schemathesis's own --max-time for the whole run
NEGATIVE_BUDGET_S = 30        # the same, for the run that sends only invalid requests
MAX_EXAMPLES = 30             # per operation and phase
SEED = 20260101


def test_served_document_is_the_file_and_valid_openapi(endpoint: EndpointProcess):
    r = requests.get(f"{endpoint.origin}/openapi.json", timeout=10)  # no key: the description is public
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == SPEC_FILE.read_bytes()
    document = r.json()
    validate(document)  # raises on anything OpenAPI 3 does not allow
    assert document["openapi"].startswith("3.")
    # The prefixed and unprefixed forms describe the same operations.
    paths = document["paths"]
    for path, item in paths.items():
        if not path.startswith("/v2/"):
            continue
        short = path.removeprefix("/v2/{endpoint_id}")
        assert short in paths, path
        assert sorted(item) == sorted(paths[short]), path


class AnsweringWorker:
    """Takes every job the fuzzed requests queue and ends it at once, with an output shaped as the
    document says the route answers."""

    def __init__(self, endpoint: EndpointProcess) -> None:
        self.base = endpoint.v2()
        self.session = requests.Session()
        self.session.headers["Authorization"] = endpoint.api_key
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="answering-worker", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)  # the endpoint's job-take long poll is 2 s
        self.session.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                r = self.session.get(f"{self.base}/job-take-batch/answering-worker",
                                     params={"batch_size": 16, "job_in_progress": "0"}, timeout=10)
            except requests.RequestException:
                continue
            if r.status_code != 200:
                continue
            for job in r.json():
                self._answer(job)

    def _post(self, route: str, job_id: str, body: object) -> None:
        self.session.post(f"{self.base}/{route}/answering-worker/{job_id}", data=json.dumps(body),
                          headers=SDK_CONTENT_TYPE, timeout=10)

    def _answer(self, job: dict) -> None:
        job_input = job["input"]
        request = job_input.get("openai_input") if job_input.get("openai_route") else None
        if isinstance(request, dict) and job_input.get("openai_route") == "/v1/completions":
            completion = {"id": f"cmpl-{job['id']}", "object": "text_completion", "created": 1,
                          "model": request.get("model", ""),
                          "choices": [{"index": 0, "text": "ok", "logprobs": None, "finish_reason": "stop"}]}
            if request.get("stream") is True:
                self._post("job-stream", job["id"], {"output": f"data: {json.dumps(completion)}\n\n"})
                self._post("job-stream", job["id"], {"output": "data: [DONE]\n\n"})
                self._post("job-done", job["id"], {"output": []})
            else:
                self._post("job-done", job["id"], {"output": completion})
        elif isinstance(request, dict):
            completion = {"id": f"chatcmpl-{job['id']}", "object": "chat.completion", "created": 1,
                          "model": request.get("model", ""),
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                       "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
            if request.get("stream") is True:
                chunk = {"id": completion["id"], "object": "chat.completion.chunk", "created": 1,
                         "model": completion["model"],
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"},
                                      "finish_reason": "stop"}]}
                self._post("job-stream", job["id"], {"output": f"data: {json.dumps(chunk)}\n\n"})
                self._post("job-stream", job["id"], {"output": "data: [DONE]\n\n"})
                self._post("job-done", job["id"], {"output": []})
            else:
                self._post("job-done", job["id"], {"output": completion})
        else:
            self._post("job-done", job["id"], {"output": job_input})
        self.answered += 1


def run_schemathesis(tmp_path: Path, children, checks: list[str], budget_s: int,
                     extra: Sequence[str] = ()) -> AnsweringWorker:
    """One bounded schemathesis run against a fresh endpoint with an answering worker; fails the
    test on any failure it reports, or when the endpoint did not survive it."""
    # Chat completions wait up to 30 s for the worker (a loaded CI machine is slow, not broken);
    # fuzzed webhooks get one attempt each.
    endpoint = EndpointProcess(tmp_path, "schemathesis-key",
                               extra_args=["--runsync-wait-ms", "30000", "--webhook-retries", "0"])
    children.append(endpoint)
    worker = AnsweringWorker(endpoint)
    try:
        schemathesis = Path(sys.executable).with_name("schemathesis")  # the venv's
        argv = [str(schemathesis), "run", f"{endpoint.origin}/openapi.json",
                "--header", f"Authorization: Bearer {endpoint.api_key}",
                "--checks", ",".join(checks),
                "--max-examples", str(MAX_EXAMPLES),
                "--max-time", str(budget_s),
                "--seed", str(SEED),
                # One worker: this Python's ast.parse(), which Hypothesis calls to describe
                # filters, can raise SystemError ("AST constructor recursion depth mismatch")
                # when two threads race on it; with two workers that was a flaky failure.
                "--workers", "1",
                "--request-timeout", "60",
                "--generation-database", "none",
                "--no-color",
                "--report", "junit", "--report-dir", str(tmp_path / "schemathesis-report"),
                *extra]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=budget_s + 60, cwd=tmp_path)
    finally:
        worker.close()
    print(run.stdout[-30000:])
    print(run.stderr[-5000:])
    assert run.returncode == 0, "schemathesis reported failures (see its output above)"
    # Whatever it was sent, the endpoint is still up and answering.
    assert endpoint.proc.poll() is None, "the endpoint exited during the run"
    health = requests.get(f"{endpoint.v2()}/health", headers={"Authorization": endpoint.api_key}, timeout=10)
    assert health.status_code == 200 and "jobs" in health.json()
    return worker


@pytest.mark.timeout(SCHEMATHESIS_BUDGET_S + 90)
def test_schemathesis_finds_no_server_error_and_no_nonconforming_answer(tmp_path: Path, children):
    worker = run_schemathesis(tmp_path, children, [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "unsupported_method",
        "allow_header_conformance",
        "missing_required_header",
        "ignored_auth",
    ], SCHEMATHESIS_BUDGET_S)
    assert worker.answered > 0, "no request reached the worker: the run tested nothing behind /run"


@pytest.mark.timeout(NEGATIVE_BUDGET_S + 90)
def test_schemathesis_client_api_rejects_what_the_document_forbids(tmp_path: Path, children):
    """Requests that break the document (wrong types, missing input, bad policy or webhook) are
    refused with a 4xx and queue nothing. The OpenAI routes are left out: the endpoint checks the
    shape every chat model needs and leaves value ranges (stop, temperature, ...) to the handler."""
    run_schemathesis(tmp_path, children, ["not_a_server_error", "negative_data_rejection"],
                     NEGATIVE_BUDGET_S, ["--mode", "negative", "--exclude-path-regex", "openai"])
