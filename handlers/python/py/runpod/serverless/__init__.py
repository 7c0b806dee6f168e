"""runpod.serverless as podworker provides it: start() hands the handler to the podworker worker,
which runs the jobs (heartbeat, stop channel, posts and streams stay in the native worker)."""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict

_bridge = None  # set by podworker_bridge before handler.py runs


def _attach(bridge) -> None:
    global _bridge
    _bridge = bridge


def _require_bridge(what: str):
    if _bridge is None:
        raise RuntimeError(f"runpod.serverless.{what}: this is podworker's runpod compatibility "
                           "package; run the handler with `worker --python handler.py`")
    return _bridge


def start(config: Dict[str, Any]) -> None:
    """Serves config["handler"] until the worker stops. Accepts the keys of runpod-python's start()
    that podworker implements (handler, return_aggregate_stream, concurrency_modifier,
    refresh_worker) and refuses any other, naming it."""
    _require_bridge("start").serve(config)


def progress_update(job: Dict[str, Any], progress: Any) -> None:
    """Posts `progress` as the running job's output (/status shows it until the result). Returns at
    once; of updates made while one is being posted only the newest is sent."""
    _require_bridge("progress_update").progress(job, progress)


def is_cancelled(job: Dict[str, Any]) -> bool:
    """True once the job was cancelled, timed out or the worker is shutting down. A sync handler
    checks it between steps and returns early (what it returns is then discarded); an async
    handler is cancelled with asyncio's CancelledError instead, and may check this too."""
    return _require_bridge("is_cancelled").is_cancelled(job)


def register_fitness_check(func: Callable) -> Callable:
    raise NotImplementedError(
        "runpod.serverless.register_fitness_check: not supported by podworker's runpod "
        "compatibility package; run the check at import time of handler.py (an exception there "
        "stops the worker at start with its message)")


class RunPodLogger:
    """The SDK's logger, writing `LEVEL | [job id |] message` lines to stderr, which the worker's
    log carries."""

    def _write(self, level: str, message: Any, request_id: str | None = None) -> None:
        prefix = f"{level:<5}| " + (f"{request_id} | " if request_id else "")
        print(prefix + str(message), file=sys.stderr, flush=True)

    def set_level(self, level: Any) -> None:
        del level

    def debug(self, message: Any, request_id: str | None = None) -> None:
        self._write("DEBUG", message, request_id)

    def info(self, message: Any, request_id: str | None = None) -> None:
        self._write("INFO", message, request_id)

    def warn(self, message: Any, request_id: str | None = None) -> None:
        self._write("WARN", message, request_id)

    warning = warn

    def error(self, message: Any, request_id: str | None = None) -> None:
        self._write("ERROR", message, request_id)


__all__ = ["start", "progress_update", "is_cancelled", "register_fitness_check", "RunPodLogger"]
