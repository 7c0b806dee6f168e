"""runpod-python handler files (tests/python_handlers) run unchanged by `worker --python`, and the
same files under the official runpod-python worker against the same kind of endpoint give the same
job outcomes. Jobs go in over plain HTTP; every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from processes import (PYTHON_HANDLERS, EndpointProcess, ServeApiWorker, binary,
                       python_handler_worker, sdk_handler_worker, wait_until)
from test_sdk_worker import Api

sys.path.insert(0, str(PYTHON_HANDLERS))
from generator_handler import text_of  # noqa: E402

ONE_MB = 1024 * 1024

# (handler file, job inputs): each input is one job, run in order.
CASES = {
    "sync_handler.py": [
        {"echo": ["héllo", 1, {"nested": True}]},
        {"progress": 3},
        {"error": "the input was wrong"},
        {"raise": "boom"},
    ],
    "generator_handler.py": [
        {"text": "the quick brown fox jumps", "chunk": 4},
        {"text": "abcdefgh", "chunk": 2, "fail_after": 2},
        {"text": "abcdefgh", "chunk": 2, "error_after": 1},
    ],
    "async_handler.py": [
        {"echo": {"a": [1, 2]}},
        {"raise": "missing"},
    ],
    "async_generator_handler.py": [
        {"count": 4},
    ],
}


def outcome(api: Api, job_input: dict) -> dict:
    """Submits one job and reads what a client sees: status, output or error, and the stream."""
    job_id = api.post("run", {"input": job_input})["id"]
    items: list = []

    def drained():
        answer = api.get(f"stream/{job_id}")
        items.extend(item["output"] for item in answer["stream"])
        return answer["status"] in {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"} and answer

    wait_until(drained, 30, f"job {job_input} to end")
    state = api.get(f"status/{job_id}")
    seen = {"status": state["status"], "output": state.get("output"), "error": state.get("error")}
    # Strings concatenate however the worker grouped them into posts; other chunks stay a list.
    if items and all(isinstance(i, str) for i in items):
        seen["stream"] = "".join(items)
    else:
        seen["stream"] = items
    return normalized(seen)


def normalized(seen: dict) -> dict:
    """Tracebacks name the files and lines of the runner's own frames: keep what the handler
    decides (type, message, the handler's frame), drop the rest."""
    error = seen.get("error")
    if isinstance(error, str) and error.startswith("{"):
        details = json.loads(error)
        assert set(details) == {"error_type", "error_message", "error_traceback", "hostname",
                                "worker_id", "runpod_version"}, details
        assert "Traceback (most recent call last)" in details["error_traceback"]
        assert "_handler.py" in details["error_traceback"]
        details["error_traceback"] = details["error_traceback"].strip().splitlines()[-1]
        seen["error"] = details
    elif isinstance(error, str) and "\ntraceback: " in error:
        head, traceback = error.split("\ntraceback: ", 1)
        assert "Traceback (most recent call last)" in traceback
        seen["error"] = {"message": head, "last_line": traceback.strip().splitlines()[-1]}
    return seen


def run_cases(api: Api, inputs: list[dict]) -> list[dict]:
    return [outcome(api, job_input) for job_input in inputs]


@pytest.mark.parametrize("handler_file", sorted(CASES))
def test_handler_file_gives_the_sdk_workers_outcomes(tmp_path, children, handler_file):
    inputs = CASES[handler_file]
    results = {}
    for runner in ("podworker", "sdk"):
        log_dir = tmp_path / runner
        log_dir.mkdir()
        endpoint = EndpointProcess(log_dir, "python-handlers-key")
        children.append(endpoint)
        worker_id = f"{runner}-{Path(handler_file).stem}"
        start = python_handler_worker if runner == "podworker" else sdk_handler_worker
        worker = start(log_dir, endpoint, worker_id, handler_file)
        children.append(worker)
        results[runner] = run_cases(Api(endpoint), inputs)
        for seen in results[runner]:  # the worker id differs by design: compare the rest
            if isinstance(seen["error"], dict) and "worker_id" in seen["error"]:
                assert seen["error"]["worker_id"] == worker_id
                seen["error"]["worker_id"] = "<worker>"
        worker.stop()
    assert results["podworker"] == results["sdk"]
    expected_first = {
        "sync_handler.py": {"status": "COMPLETED", "stream": [], "error": None,
                            "output": {"echo": ["héllo", 1, {"nested": True}],
                                       # the endpoint's job-take object: extra keys pass through
                                       "keys": ["id", "input", "policy", "retries"]}},
        "generator_handler.py": {"status": "COMPLETED", "output": [], "error": None,
                                 "stream": "the quick brown fox jumps"},
        "async_handler.py": {"status": "COMPLETED", "output": {"echo": {"a": [1, 2]}},
                             "error": None, "stream": []},
        "async_generator_handler.py": {"status": "COMPLETED", "error": None,
                                       "output": [{"i": i} for i in range(4)],
                                       "stream": [{"i": i} for i in range(4)]},
    }[handler_file]
    ours = results["podworker"]
    assert ours[0] == expected_first
    if handler_file == "sync_handler.py":
        assert ours[1]["output"] == {"steps": 3}
        assert ours[2]["status"] == "FAILED" and ours[2]["error"] == "the input was wrong"
        assert ours[3]["error"]["error_type"] == "<class 'ValueError'>"
        assert ours[3]["error"]["error_message"] == "boom"
        assert ours[3]["error"]["hostname"] == "compat-test-host"
    if handler_file == "generator_handler.py":
        assert ours[1]["status"] == "FAILED"
        assert ours[1]["error"] == {"message": "handler: failed after 2 pieces ",
                                    "last_line": "RuntimeError: failed after 2 pieces"}
        assert ours[1]["stream"] == "abcd"
        assert ours[2]["error"] == "gave up after 1 pieces"
    if handler_file == "async_handler.py":
        assert ours[1]["error"]["error_type"] == "<class 'KeyError'>"


def test_concurrency_modifier_runs_jobs_together_as_under_the_sdk(tmp_path, children):
    for runner in ("podworker", "sdk"):
        log_dir = tmp_path / runner
        log_dir.mkdir()
        endpoint = EndpointProcess(log_dir, "python-handlers-key")
        children.append(endpoint)
        start = python_handler_worker if runner == "podworker" else sdk_handler_worker
        children.append(start(log_dir, endpoint, f"{runner}-concurrent", "concurrent_handler.py"))
        api = Api(endpoint)
        ids = [api.post("run", {"input": {"n": n}})["id"] for n in range(4)]
        outputs = [api.wait_terminal(job_id, timeout_s=40)["output"] for job_id in ids]
        assert outputs == [{"together": True, "n": n} for n in range(4)], runner


def test_progress_is_shown_while_the_job_runs(tmp_path, endpoint, children):
    children.append(python_handler_worker(tmp_path, endpoint, "py-progress", "sync_handler.py"))
    api = Api(endpoint)
    job_id = api.post("run", {"input": {"progress": 3, "hold_s": 30}})["id"]
    wait_until(lambda: api.get(f"status/{job_id}").get("output") == {"step": 2}, 20,
               "the last progress update")
    assert api.get(f"status/{job_id}")["status"] == "IN_PROGRESS"
    assert api.post(f"cancel/{job_id}")["status"] == "CANCELLED"


@pytest.mark.parametrize("handler_file", ["sync_handler.py", "async_handler.py"])
def test_cancel_reaches_a_running_handler_and_the_worker_goes_on(tmp_path, endpoint, children,
                                                                  handler_file):
    children.append(python_handler_worker(tmp_path, endpoint, "py-cancel", handler_file))
    api = Api(endpoint)
    marker = tmp_path / "cancelled.txt"
    job_id = api.post("run", {"input": {"sleep_s": 120, "marker": str(marker)}})["id"]
    wait_until(lambda: api.get(f"status/{job_id}")["status"] == "IN_PROGRESS", 20, "IN_PROGRESS")
    assert api.post(f"cancel/{job_id}") == {"id": job_id, "status": "CANCELLED"}
    # The sync handler saw runpod.serverless.is_cancelled(job); the async one CancelledError.
    wait_until(marker.exists, 20, "the handler to see the cancel")
    assert marker.read_text() == "cancelled"
    # The one slot is free again: the next job runs to completion.
    follow_up = api.post("run", {"input": {"echo": "after"}})["id"]
    assert api.wait_terminal(follow_up)["output"]["echo"] == "after"
    assert api.get(f"status/{job_id}")["status"] == "CANCELLED"


def test_a_crashing_interpreter_fails_its_job_and_the_next_one_runs(tmp_path, endpoint, children):
    children.append(python_handler_worker(tmp_path, endpoint, "py-crash", "sync_handler.py"))
    api = Api(endpoint)
    for crash, why in (("segv", "was killed by signal 11"), ("exit", "exited with status 7")):
        state = api.wait_terminal(api.post("run", {"input": {"crash": crash}})["id"])
        assert state["status"] == "FAILED"
        assert why in state["error"] and "Python handler process" in state["error"], state
        good = api.wait_terminal(api.post("run", {"input": {"echo": crash}})["id"], timeout_s=30)
        assert good["status"] == "COMPLETED" and good["output"]["echo"] == crash


def test_a_5_mb_generator_stream_is_reassembled_exactly(tmp_path, endpoint, children):
    children.append(python_handler_worker(tmp_path, endpoint, "py-big", "generator_handler.py"))
    api = Api(endpoint)
    job_input = {"bytes": 5_000_000, "chunk": 1_250_000}
    job_id = api.post("run", {"input": job_input})["id"]
    items: list = []

    def drained():
        answer = api.get(f"stream/{job_id}")
        items.extend(item["output"] for item in answer["stream"])
        return answer["status"] in {"COMPLETED", "FAILED"} and answer

    final = wait_until(drained, 60, "the stream to end")
    assert final["status"] == "COMPLETED", final
    assert "".join(items) == text_of(job_input)
    # Chunks bigger than a post went out split: every post stayed within 1 MB.
    assert len(items) > 4
    sizes = [len(json.dumps({"output": i}, ensure_ascii=False, separators=(",", ":")).encode())
             for i in items]
    assert max(sizes) <= ONE_MB, sizes


def run_test_input(handler_file: str, job: dict, *extra: str) -> subprocess.CompletedProcess:
    argv = [binary("PODWORKER_WORKER"), "--python", str(PYTHON_HANDLERS / handler_file),
            "--python-exe", sys.executable, "--test-input", json.dumps(job), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


def result_line(done: subprocess.CompletedProcess) -> dict:
    """The job's result: the last line on stdout (the worker's log lines come before it)."""
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_test_input_shows_refresh_and_the_aggregated_stream():
    done = run_test_input("sync_handler.py", {"input": {"refresh": True}})
    assert done.returncode == 0, done.stderr
    assert result_line(done) == {"output": {"done": True}, "stopPod": True}
    streamed = run_test_input("generator_handler.py", {"input": {"text": "abcdef", "chunk": 2}})
    assert streamed.returncode == 0, streamed.stderr
    assert result_line(streamed) == {"output": ["ab", "cd", "ef"]}  # the chunks, as for C++
    failed = run_test_input("sync_handler.py", {"input": {"raise": "local"}})
    assert failed.returncode == 1
    assert json.loads(result_line(failed)["error"])["error_message"] == "local"


def test_refresh_worker_in_start_and_a_result_json_cannot_hold():
    refreshed = run_test_input("refresh_config.py", {"input": {"n": 1}})
    assert refreshed.returncode == 0, refreshed.stderr
    assert result_line(refreshed) == {"output": {"n": 1}, "stopPod": True}
    # The SDK loses such a result (its post fails after the job ended); podworker fails the job.
    lost = run_test_input("sync_handler.py", {"input": {"not_json": True}})
    assert lost.returncode == 1
    assert result_line(lost)["error"].startswith("the handler's result is not JSON: ")


def test_a_start_key_podworker_does_not_implement_is_refused_by_name():
    refused = run_test_input("refused_config.py", {"input": {}})
    assert refused.returncode == 1
    said = refused.stdout + refused.stderr
    assert "'rp_debugger'" in said and "does not implement" in said
    assert '"output"' not in refused.stdout  # no job ran


def test_serve_api_runs_a_python_handler(tmp_path, children):
    worker = ServeApiWorker(tmp_path, "serve-key", "python", env={
        "PODWORKER_PYTHON_SCRIPT": str(PYTHON_HANDLERS / "async_handler.py"),
        "PODWORKER_PYTHON_PYTHON_EXE": sys.executable})
    children.append(worker)
    api = Api(worker)
    done = api.post("runsync?wait=30000", {"input": {"echo": "served"}}, timeout=40)
    assert done["status"] == "COMPLETED" and done["output"] == {"echo": "served"}


def test_the_python_worker_template_runs_its_test_input():
    template = Path(__file__).resolve().parents[2] / "templates" / "python-worker"
    job = json.loads((template / "test_input.json").read_text())
    argv = [binary("PODWORKER_WORKER"), "--python", str(template / "handler.py"),
            "--python-exe", sys.executable, "--test-input", json.dumps(job)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert result_line(done) == {"output": {"greeting": "Hello, podworker!"}}
