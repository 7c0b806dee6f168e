"""Prometheus /metrics on the endpoint, on `worker --metrics-port` and on `worker --serve-api`,
every scrape parsed by the official parser (prometheus_client.parser): the families are there with
their types, and the counters move as real textgen jobs run through real HTTP.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from observability import Scrape, scrape, serve_textgen, write_test_model
from processes import EndpointProcess, ServeApiWorker, wait_until

API_KEY = "metrics-test-key"
JOB = {"input": {"prompt": "Count to five.", "max_tokens": 6, "temperature": 0}}

ENDPOINT_FAMILIES = {
    "podworker_endpoint_jobs": "gauge",
    "podworker_endpoint_queue_depth": "gauge",
    "podworker_endpoint_queued_bytes": "gauge",
    "podworker_endpoint_workers": "gauge",
    "podworker_endpoint_jobs_submitted": "counter",
    "podworker_endpoint_jobs_finished": "counter",
    "podworker_endpoint_jobs_requeued": "counter",
    "podworker_endpoint_jobs_retried": "counter",
    "podworker_endpoint_jobs_refused": "counter",
    "podworker_endpoint_job_delay_seconds": "histogram",
    "podworker_endpoint_job_execution_seconds": "histogram",
    "podworker_endpoint_http_requests": "counter",
    "podworker_endpoint_rate_limited_requests": "counter",
    "podworker_endpoint_sse_clients": "gauge",
    "podworker_endpoint_unhealthy_pings": "counter",
    "podworker_endpoint_store_operation_seconds": "histogram",
    "podworker_endpoint_store_operations": "counter",
}
WORKER_FAMILIES = {
    "podworker_worker_jobs": "counter",
    "podworker_worker_job_duration_seconds": "histogram",
    "podworker_worker_take_seconds": "histogram",
    "podworker_worker_posts": "counter",
    "podworker_worker_post_retries": "counter",
    "podworker_worker_stream_bytes": "counter",
    "podworker_worker_stream_chunks_per_post": "histogram",
    "podworker_worker_heartbeat_failures": "counter",
    "podworker_worker_jobs_running": "gauge",
    "podworker_worker_concurrency": "gauge",
    "podworker_textgen_time_to_first_token_seconds": "histogram",
    "podworker_textgen_tokens_per_second": "histogram",
    "podworker_textgen_generated_tokens": "counter",
    "podworker_textgen_prompt_tokens": "counter",
    "podworker_textgen_batch_sequences": "gauge",
    "podworker_textgen_batch_capacity_sequences": "gauge",
    "podworker_textgen_kv_cache_tokens": "gauge",
    "podworker_textgen_kv_cache_capacity_tokens": "gauge",
}


@pytest.fixture
def served(tmp_path: Path, children):
    return serve_textgen(tmp_path, children, API_KEY)


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def runsync(origin: str, body: dict) -> dict:
    r = requests.post(f"{origin}/runsync?wait=60000", json=body, headers=auth(), timeout=90)
    assert r.status_code == 200, r.text
    return r.json()


def check_families(s: Scrape, expected: dict[str, str]) -> None:
    for name, kind in expected.items():
        assert name in s.families, f"{name} missing from the scrape:\n{s.text[:3000]}"
        assert s.type_of(name) == kind, f"{name} is a {s.type_of(name)}, not a {kind}"


def test_endpoint_metrics_need_the_key_and_parse(served):
    origin = served.endpoint.origin
    assert requests.get(f"{origin}/metrics", timeout=10).status_code == 401
    s = scrape(f"{origin}/metrics", API_KEY)
    check_families(s, ENDPOINT_FAMILIES)
    for family in s.families.values():
        assert family.name.startswith("podworker_"), family.name
        assert family.documentation, f"{family.name} has no help text"
    # Seconds and bytes in the names, histograms with cumulative buckets ending at +Inf.
    delay = s.families["podworker_endpoint_job_delay_seconds"]
    buckets = [x for x in delay.samples if x.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf"
    assert [b.value for b in buckets] == sorted(b.value for b in buckets)


def test_counters_move_as_textgen_jobs_run(served):
    origin = served.endpoint.origin
    before = scrape(f"{origin}/metrics", API_KEY)
    worker_before = scrape(served.worker_metrics_url)
    check_families(worker_before, WORKER_FAMILIES)
    assert worker_before.value("podworker_worker_concurrency") == 4
    assert worker_before.value("podworker_textgen_batch_capacity_sequences") >= 1

    jobs = 3
    for _ in range(jobs):
        answer = runsync(origin, JOB)
        assert answer["status"] == "COMPLETED", answer

    after = scrape(f"{origin}/metrics", API_KEY)
    ep = "local"

    def grew(name: str, by: float, **labels: str) -> None:
        assert after.value(name, **labels) - before.value(name, **labels) == by, (name, labels)

    grew("podworker_endpoint_jobs_submitted_total", jobs, endpoint=ep)
    grew("podworker_endpoint_jobs_finished_total", jobs, endpoint=ep, status="COMPLETED")
    grew("podworker_endpoint_job_delay_seconds_count", jobs, endpoint=ep)
    grew("podworker_endpoint_job_execution_seconds_count", jobs, endpoint=ep)
    grew("podworker_endpoint_http_requests_total", jobs, route="runsync", code="200")
    grew("podworker_endpoint_http_requests_total", 1, route="metrics", code="200")  # the first scrape
    assert after.value("podworker_endpoint_job_execution_seconds_sum", endpoint=ep) > \
        before.value("podworker_endpoint_job_execution_seconds_sum", endpoint=ep)
    assert after.value("podworker_endpoint_store_operations_total", op="submit") >= jobs
    assert after.value("podworker_endpoint_store_operations_total", op="take") >= jobs
    # Latency is sampled (one call in 8): some of the many calls were timed.
    assert 0 < after.value("podworker_endpoint_store_operation_seconds_count") < \
        after.value("podworker_endpoint_store_operations_total")
    assert after.value("podworker_endpoint_queue_depth", endpoint=ep) == 0
    assert after.value("podworker_endpoint_jobs", endpoint=ep, state="COMPLETED") >= jobs
    assert after.value("podworker_endpoint_workers", endpoint=ep) >= 1

    # The worker reports after its result post, so its counters may trail the answer a moment.
    def worker_done():
        s = scrape(served.worker_metrics_url)
        return s if s.value("podworker_worker_jobs_total", outcome="completed") >= jobs else None
    w = wait_until(worker_done, 10, "the worker to count its jobs")
    assert w.value("podworker_worker_jobs_total", outcome="completed") - \
        worker_before.value("podworker_worker_jobs_total", outcome="completed") == jobs
    assert w.value("podworker_worker_posts_total", kind="result") >= jobs
    assert w.value("podworker_worker_posts_total", kind="stream") >= jobs  # textgen streams tokens
    assert w.value("podworker_worker_stream_bytes_total") > 0
    assert w.value("podworker_worker_job_duration_seconds_count") >= jobs
    assert w.value("podworker_worker_take_seconds_count") >= 1
    assert w.value("podworker_textgen_generated_tokens_total") >= jobs  # at least a token each
    assert w.value("podworker_textgen_prompt_tokens_total") > 0
    assert w.value("podworker_textgen_time_to_first_token_seconds_count") >= jobs
    assert w.value("podworker_worker_jobs_running") == 0
    assert w.value("podworker_textgen_batch_sequences") == 0
    assert w.value("podworker_textgen_kv_cache_tokens") == 0


def test_queue_cancel_sse_and_bad_requests_are_counted(tmp_path: Path, children):
    """No worker: the job stays queued, so what is counted does not depend on timing."""
    endpoint = EndpointProcess(tmp_path, API_KEY)
    children.append(endpoint)
    origin = endpoint.origin
    before = scrape(f"{origin}/metrics", API_KEY)
    assert before.value("podworker_endpoint_queued_bytes") == 0
    r = requests.post(f"{origin}/run", json=JOB, headers=auth(), timeout=10)
    job_id = r.json()["id"]

    # An SSE reader counts as a client while it is connected.
    with requests.get(f"{origin}/stream/{job_id}", headers={**auth(), "Accept": "text/event-stream"},
                      stream=True, timeout=30) as sse:
        assert sse.status_code == 200
        s = wait_until(lambda: (x := scrape(f"{origin}/metrics", API_KEY))
                       .value("podworker_endpoint_sse_clients") == 1 and x, 10, "the SSE client to count")
        assert s.value("podworker_endpoint_queue_depth") == 1
        assert s.value("podworker_endpoint_jobs", state="IN_QUEUE") == 1
        assert s.value("podworker_endpoint_queued_bytes") == len('{"prompt":"Count to five.","max_tokens":6,"temperature":0}')
        c = requests.post(f"{origin}/cancel/{job_id}", headers=auth(), timeout=10)
        assert c.json()["status"] == "CANCELLED"
        assert any(line.startswith(b"event: done") for line in sse.iter_lines())

    assert requests.post(f"{origin}/run", data="not json", headers=auth(), timeout=10).status_code == 400
    assert requests.get(f"{origin}/no-such-route", headers=auth(), timeout=10).status_code == 404
    assert requests.get(f"{origin}/health", timeout=10).status_code == 401
    after = wait_until(lambda: (x := scrape(f"{origin}/metrics", API_KEY))
                       .value("podworker_endpoint_sse_clients") == 0 and x, 10, "the SSE client to go")
    assert after.value("podworker_endpoint_jobs_finished_total", status="CANCELLED") == 1
    assert after.value("podworker_endpoint_queue_depth") == 0
    assert after.value("podworker_endpoint_http_requests_total", route="run", code="200") == 1
    assert after.value("podworker_endpoint_http_requests_total", route="run", code="400") == 1
    assert after.value("podworker_endpoint_http_requests_total", route="none", code="404") == 1
    assert after.value("podworker_endpoint_http_requests_total", route="health", code="401") == 1
    assert after.value("podworker_endpoint_http_requests_total", route="cancel", code="200") == 1
    assert after.value("podworker_endpoint_http_requests_total", route="stream", code="200") == 1
    # A second cancel of the same job answers CANCELLED again but ends nothing more.
    requests.post(f"{origin}/cancel/{job_id}", headers=auth(), timeout=10)
    assert scrape(f"{origin}/metrics", API_KEY).value("podworker_endpoint_jobs_finished_total", status="CANCELLED") == 1


def test_rate_limited_requests_are_counted(tmp_path: Path, children):
    endpoint = EndpointProcess(tmp_path, API_KEY)
    children.append(endpoint)
    codes = [requests.post(f"{endpoint.origin}/purge-queue", headers=auth(), timeout=10).status_code
             for _ in range(4)]
    assert codes.count(429) == 2, codes  # RunPod's limit: 2 purges per 10 s
    s = scrape(f"{endpoint.origin}/metrics", API_KEY)
    assert s.value("podworker_endpoint_rate_limited_requests_total", route="purge-queue") == 2
    assert s.value("podworker_endpoint_http_requests_total", route="purge-queue", code="429") == 2


def test_worker_metrics_port_serves_only_metrics(served):
    base = served.worker_metrics_url.removesuffix("/metrics")
    assert requests.get(f"{base}/", timeout=10).status_code == 404
    assert requests.post(served.worker_metrics_url, timeout=10).status_code == 405
    scrape(served.worker_metrics_url)


def test_serve_api_shows_worker_and_textgen_families_on_the_api_port(tmp_path: Path, children):
    model = write_test_model(tmp_path)
    worker = ServeApiWorker(tmp_path, API_KEY, "textgen",
                            env={"PODWORKER_MODEL": str(model), "PODWORKER_BACKEND": "cpu"})
    children.append(worker)
    answer = runsync(worker.origin, JOB)
    assert answer["status"] == "COMPLETED", answer
    s = wait_until(lambda: (x := scrape(f"{worker.origin}/metrics", API_KEY))
                   .value("podworker_worker_jobs_total", outcome="completed") == 1 and x, 10,
                   "the embedded worker's count")
    check_families(s, ENDPOINT_FAMILIES)
    check_families(s, WORKER_FAMILIES)
    assert s.value("podworker_endpoint_jobs_finished_total", status="COMPLETED") == 1
    assert s.value("podworker_textgen_generated_tokens_total") >= 1


def test_scrapes_during_load_always_parse(served):
    """Scrapes racing running jobs are still well-formed text the parser accepts."""
    origin = served.endpoint.origin
    errors: list[BaseException] = []

    def submit():
        try:
            for _ in range(3):
                runsync(origin, JOB)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=submit) for _ in range(3)]
    for t in threads:
        t.start()
    scrapes = 0
    while any(t.is_alive() for t in threads):
        scrape(f"{origin}/metrics", API_KEY)
        scrape(served.worker_metrics_url)
        scrapes += 1
    for t in threads:
        t.join()
    assert not errors, errors
    assert scrapes > 0
    final = scrape(f"{origin}/metrics", API_KEY)
    assert final.value("podworker_endpoint_jobs_finished_total", status="COMPLETED") == 9
