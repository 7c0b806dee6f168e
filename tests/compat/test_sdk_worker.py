"""The official runpod-python worker (runpod.serverless.start, PyPI `runpod`), configured only through
the RUNPOD_WEBHOOK_* variables, pulls jobs from our endpoint and completes them. Jobs go in over
plain HTTP, exactly as the seed's curl commands send them.
"""

from __future__ import annotations

import json
import re

import requests

from processes import EndpointProcess, sdk_worker, wait_until

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


class Api:
    """Plain-HTTP client API calls (Bearer auth), no SDK involved."""

    def __init__(self, endpoint) -> None:
        self.base = endpoint.v2()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {endpoint.api_key}"

    def post(self, path: str, body: dict | None = None, **kwargs) -> dict:
        r = self.session.post(f"{self.base}/{path}", json=body, timeout=kwargs.pop("timeout", 10),
                              **kwargs)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        return r.json()

    def get(self, path: str) -> dict:
        r = self.session.get(f"{self.base}/{path}", timeout=10)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        return r.json()

    def wait_terminal(self, job_id: str, timeout_s: float = 30) -> dict:
        return wait_until(lambda: (s := self.get(f"status/{job_id}"))["status"] in TERMINAL and s,
                          timeout_s, f"job {job_id} to end")


def test_sdk_worker_completes_run_and_runsync_jobs(tmp_path, endpoint, children):
    children.append(sdk_worker(tmp_path, endpoint, "sdk-echo", "echo", concurrency=2))
    api = Api(endpoint)

    ids = [api.post("run", {"input": {"n": i, "text": "héllo"}})["id"] for i in range(3)]
    for i, job_id in enumerate(ids):
        state = api.wait_terminal(job_id)
        assert state["status"] == "COMPLETED", state
        assert state["output"] == {"n": i, "text": "héllo"}
        assert state["workerId"] == "sdk-echo"
        assert state["executionTime"] >= 0 and state["delayTime"] >= 0

    done = api.post("runsync?wait=30000", {"input": {"sync": True}}, timeout=40)
    assert done["status"] == "COMPLETED", done
    assert done["id"].startswith("sync-")
    assert done["output"] == {"sync": True}

    # The SDK's heartbeat (GET ping/<worker>) and its takes make it a known worker.
    health = wait_until(lambda: (h := api.get("health"))["jobs"]["completed"] == 4 and h, 10,
                        "health to count the jobs")
    assert health["workers"]["idle"] + health["workers"]["running"] >= 1


def test_sdk_worker_streams_chunks(tmp_path, endpoint, children):
    children.append(sdk_worker(tmp_path, endpoint, "sdk-stream", "stream"))
    api = Api(endpoint)
    text = "the quick brown fox"
    job_id = api.post("run", {"input": {"text": text, "chunk": 4}})["id"]

    chunks: list = []

    def drained():
        answer = api.get(f"stream/{job_id}")
        chunks.extend(item["output"] for item in answer["stream"])
        return answer["status"] in TERMINAL and answer

    final = wait_until(drained, 30, "the stream to end")
    assert final["status"] == "COMPLETED", final
    assert "".join(chunks) == text
    # return_aggregate_stream: the final result holds every chunk too.
    assert api.get(f"status/{job_id}")["output"] == chunks


def test_sdk_worker_stops_cancelled_job(tmp_path, endpoint, children):
    worker = sdk_worker(tmp_path, endpoint, "sdk-sleep", "echo")
    children.append(worker)
    api = Api(endpoint)
    job_id = api.post("run", {"input": {"sleep_s": 120}})["id"]
    wait_until(lambda: api.get(f"status/{job_id}")["status"] == "IN_PROGRESS", 30, "IN_PROGRESS")
    # The SDK registers a job's task some 100 ms after taking it and ignores a stop signal that
    # arrives before (JobScaler.stop_job: "No in-progress job"); its "Started." line comes after.
    worker.wait_for_line(re.compile(re.escape(job_id) + r" \| Started"), timeout_s=20)

    assert api.post(f"cancel/{job_id}") == {"id": job_id, "status": "CANCELLED"}
    # The SDK reads job-stop and cancels the handler's task ("Job stopped." in its log).
    worker.wait_for_line(re.compile(r"Job stopped"), timeout_s=20)
    assert api.get(f"status/{job_id}")["status"] == "CANCELLED"

    # And it keeps working afterwards.
    follow_up = api.post("run", {"input": {"after": "cancel"}})["id"]
    assert api.wait_terminal(follow_up)["output"] == {"after": "cancel"}


def test_sdk_worker_exception_is_failed(tmp_path, endpoint, children):
    children.append(sdk_worker(tmp_path, endpoint, "sdk-raise", "echo"))
    api = Api(endpoint)
    job_id = api.post("run", {"input": {"raise": "no such model"}})["id"]
    state = api.wait_terminal(job_id)
    assert state["status"] == "FAILED", state
    details = json.loads(state["error"])   # the SDK encodes the exception details as JSON text
    assert details["error_message"] == "no such model"
    assert details["worker_id"] == "sdk-raise"


def test_sdk_worker_execution_timeout(tmp_path, children):
    endpoint = EndpointProcess(tmp_path, "timeout-key", ["--min-execution-timeout-ms", "200"])
    children.append(endpoint)
    worker = sdk_worker(tmp_path, endpoint, "sdk-timeout", "echo")
    children.append(worker)
    api = Api(endpoint)
    job_id = api.post("run", {"input": {"sleep_s": 120}, "policy": {"executionTimeout": 3000}})["id"]
    state = api.wait_terminal(job_id, timeout_s=40)
    assert state["status"] == "TIMED_OUT", state
    # The endpoint tells the worker through the stop channel; the SDK then cancels the handler.
    # (The SDK drops a stop signal that arrives in the ~100 ms between taking a job and registering
    # its task; 3 s leaves a wide margin on a loaded machine.)
    worker.wait_for_line(re.compile(re.escape(job_id) + r" \| Job stopped"), timeout_s=20)
    follow_up = api.post("run", {"input": {"after": "timeout"}})["id"]
    assert api.wait_terminal(follow_up)["output"] == {"after": "timeout"}
