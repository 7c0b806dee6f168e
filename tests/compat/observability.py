"""What the metrics and dashboard tests share: an endpoint with our worker serving textgen on a
model make_test_model writes, and scrapes parsed by the official Prometheus parser
(prometheus_client.parser, pinned in scripts/python-env.sh).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from processes import Child, EndpointProcess, binary, worker_env

WORKER_METRICS = re.compile(r"worker metrics on (http://127\.0\.0\.1:\d+)/metrics")


@dataclass
class Served:
    endpoint: EndpointProcess
    worker: Child
    worker_metrics_url: str


def write_test_model(directory: Path) -> Path:
    model = directory / "test-model.gguf"
    subprocess.run([binary("PODWORKER_MAKE_TEST_MODEL"), "write", str(model)], check=True,
                   capture_output=True, timeout=60)
    return model


def textgen_worker(directory: Path, endpoint: EndpointProcess, model: Path, concurrency: int = 4) -> Child:
    """`worker --handler textgen --metrics-port 0` pulling from `endpoint`."""
    env = worker_env(endpoint, "textgen-worker", directory)
    env.update({"PODWORKER_MODEL": str(model), "PODWORKER_BACKEND": "cpu", "PODWORKER_THREADS": "1"})
    argv = [binary("PODWORKER_WORKER"), "--handler", "textgen", "--concurrency", str(concurrency),
            "--metrics-port", "0"]
    return Child("worker-textgen", argv, directory, env=env)


def serve_textgen(directory: Path, children: list, api_key: str) -> Served:
    model = write_test_model(directory)
    endpoint = EndpointProcess(directory, api_key)
    children.append(endpoint)
    worker = textgen_worker(directory, endpoint, model)
    children.append(worker)
    url = worker.wait_for_line(WORKER_METRICS, timeout_s=30).group(1) + "/metrics"
    return Served(endpoint, worker, url)


class Scrape:
    """One /metrics answer, parsed by prometheus_client: samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {}
        for family in self.families.values():
            for s in family.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= set(ls))

    def type_of(self, family: str) -> str:
        return self.families[family].type


def scrape(url: str, api_key: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    r = requests.get(url, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(r.text)
