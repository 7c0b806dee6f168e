"""Fixtures shared by the compatibility tests: a fresh endpoint per test, the official SDK client
pointed at it, and a hand-played worker. Child logs are printed at teardown; pytest shows them only
when the test failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import runpod  # noqa: E402

from processes import Child, EndpointProcess  # noqa: E402
from worker_api import PlayedWorker  # noqa: E402

API_KEY = "compat-test-key"


@pytest.fixture
def children():
    """Every child a test starts, stopped (and its log printed) at teardown."""
    started: list[Child] = []
    yield started
    for child in reversed(started):
        code = child.stop()
        print(f"----- {child.name} (exit {code}) -----\n{child.output()[-20000:]}")


@pytest.fixture
def endpoint(tmp_path: Path, children) -> EndpointProcess:
    ep = EndpointProcess(tmp_path, API_KEY)
    children.append(ep)
    return ep


@pytest.fixture
def client(endpoint: EndpointProcess) -> runpod.Endpoint:
    """runpod.Endpoint exactly as users configure it, with the base URL swapped for ours."""
    runpod.api_key = API_KEY
    runpod.endpoint_url_base = f"{endpoint.origin}/v2"
    return runpod.Endpoint("local")


@pytest.fixture
def played_worker(endpoint: EndpointProcess):
    worker = PlayedWorker(endpoint)
    yield worker
    worker.close()
