"""Child processes the compatibility tests run: our endpoint, our worker, the SDK's worker.

Every wait here is on a condition with a deadline (a line in a log, a process exit), never a bare
sleep. Output goes to log files under the test's temporary directory so a failing test can show it
and a chatty child can never block on a full pipe.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))")
POLL_S = 0.02  # how often a deadline-bounded wait re-checks its condition


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    """Returns condition()'s first truthy value; fails the test when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(POLL_S)


def binary(env_name: str) -> str:
    """Path of a podworker executable, handed over by CTest in an environment variable."""
    path = os.environ.get(env_name)
    if not path or not Path(path).is_file():
        raise RuntimeError(f"{env_name} must name the built executable (CTest sets it); got {path!r}")
    return path


class Child:
    """A child process with its output in a log file, in its own process group (the SDK worker
    forks a heartbeat process); stopped with SIGTERM to the group, then SIGKILL."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(list(argv), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=dict(env) if env else None,
                                     start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        def found():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            return pattern.search(self.output())
        return wait_until(found, timeout_s, f"{self.name} to print /{pattern.pattern}/")

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=timeout_s)
        self._signal_group(signal.SIGKILL)  # whatever the leader left behind in its group
        self._log.close()
        return self.proc.returncode

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


class EndpointProcess(Child):
    """Our `endpoint` executable on an ephemeral loopback port."""

    def __init__(self, log_dir: Path, api_key: str, extra_args: Sequence[str] = ()) -> None:
        # Short long polls: a stopping worker's last job-take or job-stop ends within 2 s.
        argv = [binary("PODWORKER_ENDPOINT"), "--host", "127.0.0.1", "--port", "0",
                "--api-key", api_key, "--take-wait-ms", "2000", "--stop-wait-ms", "2000",
                *extra_args]
        super().__init__("endpoint", argv, log_dir, env=_clean_env(log_dir))
        match = self.wait_for_line(LISTENING, timeout_s=15)
        self.origin = match.group(1)            # http://127.0.0.1:PORT
        self.port = int(match.group(2))
        self.api_key = api_key

    def v2(self, endpoint_id: str = "local") -> str:
        return f"{self.origin}/v2/{endpoint_id}"


def worker_env(endpoint: EndpointProcess, worker_id: str, home: Path, endpoint_id: str = "local",
               ping_interval_ms: int = 1000) -> dict[str, str]:
    """RUNPOD_* variables shaped like production's (templates already carry a query string)."""
    base = endpoint.v2(endpoint_id)
    env = _clean_env(home)
    env.update({
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=compat-test",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=compat-test",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=compat-test",
        "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=compat-test",
        "RUNPOD_PING_INTERVAL": str(ping_interval_ms),
        "RUNPOD_AI_API_KEY": endpoint.api_key,
        "RUNPOD_POD_ID": worker_id,
        "RUNPOD_POD_HOSTNAME": "compat-test-host",
    })
    return env


def sdk_worker(log_dir: Path, endpoint: EndpointProcess, worker_id: str, handler: str,
               concurrency: int = 1) -> Child:
    """The official runpod-python worker running tests/compat/sdk_handlers.py."""
    env = worker_env(endpoint, worker_id, log_dir)
    env.update({
        # Production-mode fitness checks probe GPUs, disk and the internet: not what we test.
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    script = Path(__file__).with_name("sdk_handlers.py")
    argv = [sys.executable, str(script), "--handler", handler, "--concurrency", str(concurrency)]
    return Child(f"sdk-worker-{worker_id}", argv, log_dir, env=env)


def cpp_worker(log_dir: Path, endpoint: EndpointProcess, worker_id: str, handler: str,
               concurrency: int = 1) -> Child:
    """Our `worker` executable with a built-in handler."""
    env = worker_env(endpoint, worker_id, log_dir)
    argv = [binary("PODWORKER_WORKER"), "--handler", handler, "--concurrency", str(concurrency)]
    return Child(f"worker-{worker_id}", argv, log_dir, env=env)


class ServeApiWorker(Child):
    """`worker --serve-api`: the endpoint embedded in the worker process, the loop pulling from it."""

    def __init__(self, log_dir: Path, api_key: str, handler: str, endpoint_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> None:
        argv = [binary("PODWORKER_WORKER"), "--serve-api", "--api-port", "0", "--handler", handler,
                "--", "--api-key", api_key, *endpoint_args]
        child_env = _clean_env(log_dir)
        child_env.update(env or {})
        super().__init__("worker-serve-api", argv, log_dir, env=child_env)
        match = self.wait_for_line(LISTENING, timeout_s=15)
        self.origin = match.group(1)
        self.port = int(match.group(2))
        self.api_key = api_key

    def v2(self, endpoint_id: str = "local") -> str:
        return f"{self.origin}/v2/{endpoint_id}"


def _clean_env(home: Path) -> dict[str, str]:
    """The test's environment minus anything that would switch a child into another mode.

    HOME is the test's own directory so the SDK never picks up a developer's ~/.runpod credentials.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env["HOME"] = str(home)
    return env


PYTHON_HANDLERS = Path(__file__).resolve().parent.parent / "python_handlers"


def python_handler_worker(log_dir: Path, endpoint: EndpointProcess, worker_id: str, handler_file: str,
                          concurrency: int | None = None, extra_args: Sequence[str] = ()) -> Child:
    """Our `worker --python` running a runpod-python handler file of tests/python_handlers, in this
    interpreter (whose site-packages hold the real SDK: podworker's runpod package must win)."""
    env = worker_env(endpoint, worker_id, log_dir)
    argv = [binary("PODWORKER_WORKER"), "--python", str(PYTHON_HANDLERS / handler_file),
            "--python-exe", sys.executable, *extra_args]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    return Child(f"worker-{worker_id}", argv, log_dir, env=env)


def sdk_handler_worker(log_dir: Path, endpoint: EndpointProcess, worker_id: str,
                       handler_file: str) -> Child:
    """The same handler file under the official runpod-python worker: `python handler.py`."""
    env = worker_env(endpoint, worker_id, log_dir)
    env.update({
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    return Child(f"sdk-worker-{worker_id}", [sys.executable, str(PYTHON_HANDLERS / handler_file)],
                 log_dir, env=env)
