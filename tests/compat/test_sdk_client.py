"""The official runpod Python client (PyPI `runpod`, runpod.Endpoint and runpod.AsyncioEndpoint),
unchanged but for its base URL, drives our endpoint; the test plays the worker over the worker API.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest
import requests
import runpod

from processes import wait_until

HEALTH_JOB_KEYS = {"completed", "failed", "inProgress", "inQueue", "retried"}


def raw_status(endpoint, job_id: str) -> dict:
    """The /status JSON itself, for the fields the SDK client does not surface."""
    r = requests.get(f"{endpoint.v2()}/status/{job_id}",
                     headers={"Authorization": f"Bearer {endpoint.api_key}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    return r.json()


def test_run_status_progress_output(endpoint, client, played_worker):
    job = client.run({"prompt": "hello"})
    assert job.status() == "IN_QUEUE"

    taken = played_worker.take()
    assert taken["id"] == job.job_id
    assert taken["input"] == {"prompt": "hello"}
    wait_until(lambda: job.status() == "IN_PROGRESS", 10, "IN_PROGRESS")

    played_worker.progress(job.job_id, {"percent": 50})
    wait_until(lambda: job.output() == {"percent": 50}, 10, "the progress update as output")

    played_worker.done(job.job_id, {"output": {"text": "hi there"}})
    wait_until(lambda: job.status() == "COMPLETED", 10, "COMPLETED")
    assert job.output() == {"text": "hi there"}

    # A late progress post (the SDK sends them from a thread) never overwrites the result.
    played_worker.progress(job.job_id, {"percent": 99})
    state = raw_status(endpoint, job.job_id)
    assert state["status"] == "COMPLETED"
    assert state["output"] == {"text": "hi there"}
    assert state["id"] == job.job_id
    assert state["workerId"] == played_worker.worker_id
    for key in ("delayTime", "executionTime"):
        assert isinstance(state[key], int) and state[key] >= 0, state


def test_run_sync_returns_output(client, played_worker):
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(client.run_sync, {"input": {"n": 7}}, timeout=30)
        taken = played_worker.take()
        assert taken["id"].startswith("sync-")
        assert taken["input"] == {"n": 7}
        played_worker.done(taken["id"], {"output": {"doubled": 14}})
        assert pending.result(timeout=30) == {"doubled": 14}


def test_failed_job_reports_error(endpoint, client, played_worker):
    job = client.run({"prompt": "fail please"})
    taken = played_worker.take()
    played_worker.done(taken["id"], {"error": "handler said no", "output": {"partial": 1}})
    wait_until(lambda: job.status() == "FAILED", 10, "FAILED")
    state = raw_status(endpoint, job.job_id)
    assert state["error"] == "handler said no"


def test_stream_yields_chunks_live(client, played_worker):
    job = client.run({"text": "abcdef"})
    taken = played_worker.take()
    received: queue.Queue = queue.Queue()
    end = object()

    def consume():
        try:
            for chunk in job.stream():
                received.put(chunk)
        finally:
            received.put(end)

    reader = threading.Thread(target=consume)
    reader.start()
    try:
        # Each chunk reaches the SDK's generator while the job is still running.
        for chunk in ({"text": "ab"}, {"text": "cd"}):
            played_worker.stream(taken["id"], chunk)
            assert received.get(timeout=15) == chunk
        played_worker.stream(taken["id"], {"text": "ef"})
        played_worker.done(taken["id"], {"output": []}, is_stream=True)
        assert received.get(timeout=15) == {"text": "ef"}
        assert received.get(timeout=15) is end   # the generator ends once the job is COMPLETED
    finally:
        reader.join(timeout=30)
    assert job.status() == "COMPLETED"


def test_cancel_queued_and_running(endpoint, client, played_worker):
    queued = client.run({"prompt": "never runs"})
    answer = queued.cancel()
    assert answer == {"id": queued.job_id, "status": "CANCELLED"}
    assert queued.status() == "CANCELLED"

    running = client.run({"prompt": "stop me"})
    taken = played_worker.take()
    assert taken["id"] == running.job_id   # the cancelled job was not handed out
    assert running.cancel() == {"id": running.job_id, "status": "CANCELLED"}
    # The stop channel tells the worker. A result posted anyway (a worker that missed the signal)
    # may be refused or ignored, but never turns the job back into COMPLETED.
    stops = wait_until(lambda: played_worker.stop_signals(timeout_s=10), 20, "a stop signal")
    assert running.job_id in stops
    played_worker.session.post(f"{endpoint.v2()}/job-done/{played_worker.worker_id}/{running.job_id}",
                               params={"gpu": "compat-test", "isStream": "false"},
                               data='{"output": "too late"}', timeout=10)
    assert raw_status(endpoint, running.job_id)["status"] == "CANCELLED"


def test_purge_queue_and_health(client, played_worker):
    health = client.health()
    assert set(health) >= {"jobs", "workers"}
    assert set(health["jobs"]) == HEALTH_JOB_KEYS
    assert set(health["workers"]) == {"idle", "running"}
    assert health["jobs"]["inQueue"] == 0

    done_job = client.run({"i": 0})
    played_worker.done(played_worker.take()["id"], {"output": {"ok": True}})
    wait_until(lambda: done_job.status() == "COMPLETED", 10, "COMPLETED")
    running = client.run({"i": 1})
    assert played_worker.take()["id"] == running.job_id
    for i in range(3):
        client.run({"i": 2 + i})

    health = client.health()
    assert health["jobs"]["inQueue"] == 3
    assert health["jobs"]["inProgress"] == 1
    assert health["jobs"]["completed"] == 1
    assert health["workers"]["running"] + health["workers"]["idle"] >= 1

    assert client.purge_queue() == {"removed": 3, "status": "completed"}
    health = client.health()
    assert health["jobs"]["inQueue"] == 0
    assert health["jobs"]["inProgress"] == 1   # purge leaves running jobs alone

    played_worker.done(running.job_id, {"output": {"ok": True}})
    wait_until(lambda: running.status() == "COMPLETED", 10, "COMPLETED")


def test_batch_take_hands_out_queued_jobs(client, played_worker):
    jobs = {client.run({"i": i}).job_id for i in range(3)}
    taken = played_worker.take_batch(batch_size=5)
    assert {job["id"] for job in taken} == jobs
    for job in taken:
        played_worker.done(job["id"], {"output": job["input"]})


def test_wrong_key_and_unknown_endpoint(endpoint, client):
    with pytest.raises(RuntimeError, match="401"):
        runpod.Endpoint("local", api_key="not-the-key").health()
    with pytest.raises(requests.HTTPError) as raised:
        runpod.Endpoint("no-such-endpoint").health()
    assert raised.value.response.status_code == 404


def test_asyncio_client(endpoint, client, played_worker):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            ep = runpod.AsyncioEndpoint("local", session)
            health = await ep.health()
            assert set(health["jobs"]) == HEALTH_JOB_KEYS

            job = await ep.run({"prompt": "async"})
            assert await job.status() == "IN_QUEUE"
            taken = await asyncio.to_thread(played_worker.take)
            assert taken["id"] == job.job_id
            await asyncio.to_thread(played_worker.done, job.job_id, {"output": {"a": 1}})
            assert await job.output(timeout=15) == {"a": 1}

            queued = await ep.run({"prompt": "cancel me"})
            assert (await queued.cancel())["status"] == "CANCELLED"
            await ep.run({"prompt": "purge me"})
            assert await ep.purge_queue() == {"removed": 1, "status": "completed"}

    asyncio.run(asyncio.wait_for(scenario(), timeout=45))
