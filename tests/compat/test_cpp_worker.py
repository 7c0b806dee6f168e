"""podworker's C++ worker (built-in echo, stream_echo, sleep handlers), configured only through the
RUNPOD_WEBHOOK_* variables, completes jobs submitted through the official runpod Python client.
"""

from __future__ import annotations

import json

import requests
import runpod

from processes import ServeApiWorker, cpp_worker, wait_until


def raw_status(endpoint, job_id: str) -> dict:
    r = requests.get(f"{endpoint.v2()}/status/{job_id}",
                     headers={"Authorization": f"Bearer {endpoint.api_key}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_echo_run_and_run_sync(tmp_path, endpoint, children, client):
    children.append(cpp_worker(tmp_path, endpoint, "cpp-echo", "echo", concurrency=4))

    assert client.run_sync({"input": {"greeting": "héllo", "n": [1, 2, 3]}}, timeout=30) == \
        {"greeting": "héllo", "n": [1, 2, 3]}

    jobs = [client.run({"i": i}) for i in range(8)]
    for i, job in enumerate(jobs):
        wait_until(lambda: job.status() == "COMPLETED", 20, f"job {i} to complete")
        assert job.output() == {"i": i}
        state = raw_status(endpoint, job.job_id)
        assert state["workerId"] == "cpp-echo"
        assert isinstance(state["executionTime"], int) and isinstance(state["delayTime"], int)

    health = client.health()
    assert health["jobs"]["completed"] == 9
    assert health["workers"]["idle"] + health["workers"]["running"] >= 1


def test_stream_echo_through_sdk_stream(tmp_path, endpoint, children, client):
    children.append(cpp_worker(tmp_path, endpoint, "cpp-stream", "stream_echo"))
    text = "Streaming through podworker, read by the official client. ✓"
    job = client.run({"text": text, "chunk_size": 5})
    chunks = list(job.stream())   # the SDK polls /stream until the job is COMPLETED
    assert all(isinstance(chunk, str) for chunk in chunks)
    assert "".join(chunks) == text
    assert job.status() == "COMPLETED"


def test_handler_exception_is_failed_with_error_shape(tmp_path, endpoint, children, client):
    children.append(cpp_worker(tmp_path, endpoint, "cpp-fail", "stream_echo"))
    job = client.run({"no_text": True})
    wait_until(lambda: job.status() == "FAILED", 20, "FAILED")
    error = raw_status(endpoint, job.job_id)["error"]
    # The SDK's exception shape: a JSON string holding the details.
    details = json.loads(error)
    assert {"error_type", "error_message", "error_traceback", "hostname", "worker_id",
            "runpod_version"} <= set(details)
    assert "stream_echo needs input" in details["error_message"]
    assert details["worker_id"] == "cpp-fail"
    assert details["hostname"] == "compat-test-host"


def test_cancel_running_job_then_keep_working(tmp_path, endpoint, children, client):
    children.append(cpp_worker(tmp_path, endpoint, "cpp-sleep", "sleep"))
    job = client.run({"ms": 120000, "step_ms": 50})
    wait_until(lambda: job.status() == "IN_PROGRESS", 20, "IN_PROGRESS")
    wait_until(lambda: isinstance(job.output(), dict) and job.output().get("slept_ms", 0) > 0, 20,
               "a progress update")
    assert job.cancel() == {"id": job.job_id, "status": "CANCELLED"}
    assert job.status() == "CANCELLED"
    # The single slot frees once the handler has seen the cancellation: the next job runs.
    assert client.run_sync({"input": {"ms": 10}}, timeout=30) == {"slept_ms": 10}
    assert raw_status(endpoint, job.job_id)["status"] == "CANCELLED"


def test_serve_api_mode_serves_the_sdk_client(tmp_path, children):
    """`worker --serve-api` (the SDK's --rp_serve_api) is a whole endpoint plus worker in one."""
    worker = ServeApiWorker(tmp_path, "serve-api-key", "stream_echo")
    children.append(worker)
    runpod.api_key = "serve-api-key"
    runpod.endpoint_url_base = f"{worker.origin}/v2"
    client = runpod.Endpoint("local")

    # Like the SDK worker without return_aggregate_stream, a stream's final output is [].
    assert client.run_sync({"input": {"text": "abc", "chunk_size": 1}}, timeout=30) == []
    job = client.run({"text": "served in-process", "chunk_size": 4})
    assert "".join(job.stream()) == "served in-process"
    health = client.health()
    assert health["jobs"]["completed"] == 2
