"""The Python side of `worker --python handler.py`: runs a handler written for runpod-python in the
user's own interpreter and serves it to the native worker over a Unix socket (inherited as FD).

The native worker starts this script with the `runpod` compatibility package of this folder first
on sys.path, then this script runs handler.py as __main__. handler.py calls
runpod.serverless.start(config), which hands the config to Bridge.serve(): from then on jobs arrive
as frames and every answer goes back as a frame. The worker keeps the heartbeat, the stop channel,
the HTTP posts and the stream splitting; this process only runs handler code.

Frames, both ways: a 4-byte little-endian length, then that many bytes of UTF-8 JSON (an object
with an "op"). Worker → bridge: job, cancel, ack (stream bytes the worker has consumed),
concurrency (ask concurrency_modifier). Bridge → worker: ready, fatal, stream, progress, result,
error, cancelled, concurrency. The protocol is private to podworker: both ends ship together.

    python podworker_bridge.py HANDLER_FILE FD
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import inspect
import json
import os
import runpy
import signal
import struct
import sys
import threading
import traceback
from typing import Any

import runpod
import runpod.serverless as serverless

# A generator may run this far ahead of what the worker has posted before it is paused: the same
# order as the worker's own stream buffer, so a fast generator cannot fill the worker's memory.
STREAM_WINDOW_BYTES = 4 * 1024 * 1024
MAX_FRAME_BYTES = 1 << 30
# Sync handlers run one thread per job: as many as the worker's concurrency may ask for (threads
# start only when jobs need them). asyncio's default pool would cap them at a few per core.
MAX_SYNC_THREADS = 4096

# The config keys runpod-python's start() accepts that podworker implements. "handler" is required.
SUPPORTED_KEYS = {"handler", "return_aggregate_stream", "concurrency_modifier", "refresh_worker"}


class Pipe:
    """Length-prefixed JSON frames over the worker's socket; writes are serialized by a lock so
    job threads and the event loop can send at once, and one thread reads."""

    def __init__(self, fd: int) -> None:
        self._in = os.fdopen(os.dup(fd), "rb", buffering=1 << 16)
        self._out_fd = fd
        self._lock = threading.Lock()

    def send(self, frame: dict) -> int:
        """Writes one frame; returns its body's length (what the worker acknowledges)."""
        body = json.dumps(frame, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")
        data = struct.pack("<I", len(body)) + body
        with self._lock:
            view = memoryview(data)
            while view:
                written = os.write(self._out_fd, view)
                view = view[written:]
        return len(body)

    def receive(self) -> dict | None:
        """The next frame; None when the worker closed the pipe (it is stopping or gone)."""
        header = self._in.read(4)
        if len(header) < 4:
            return None
        (size,) = struct.unpack("<I", header)
        if size > MAX_FRAME_BYTES:
            raise ValueError(f"frame of {size} bytes from the worker")
        body = self._in.read(size)
        if len(body) < size:
            return None
        return json.loads(body.decode("utf-8"))


class JobState:
    """One running job: its cancel flag, and the stream window its generator waits on."""

    def __init__(self, seq: int, job: dict) -> None:
        self.seq = seq
        self.job = job
        self.cancelled = threading.Event()
        self.task: asyncio.Future | None = None
        self.outstanding = 0  # stream bytes sent and not yet acknowledged
        self.window = threading.Condition()
        self.window_event: asyncio.Event | None = None


def _kind(handler) -> str:
    if inspect.isasyncgenfunction(handler):
        return "async_generator"
    if inspect.isgeneratorfunction(handler):
        return "generator"
    if inspect.iscoroutinefunction(handler):
        return "async"
    return "sync"


def _error_report(err: BaseException) -> str:
    """An exception as runpod-python's run_job reports it: a JSON string with these keys."""
    return json.dumps({
        "error_type": str(type(err)),
        "error_message": str(err),
        "error_traceback": traceback.format_exc(),
        "hostname": os.environ.get("RUNPOD_POD_HOSTNAME", "unknown"),
        "worker_id": os.environ.get("RUNPOD_POD_ID", "unknown"),
        "runpod_version": runpod.__version__,
    })


def _generator_error(err: BaseException) -> str:
    """A generator's exception as runpod-python's run_job_generator reports it."""
    return f"handler: {str(err)} \ntraceback: {traceback.format_exc()}"


class Bridge:
    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe
        self.jobs: dict[int, JobState] = {}
        self.by_id: dict[str, JobState] = {}
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.config: dict = {}
        self.kind = "sync"
        self.serving = False

    # ---- called by the runpod compatibility package ----

    def serve(self, config: dict) -> None:
        if self.serving:
            raise RuntimeError("runpod.serverless.start() was called twice")
        self.serving = True
        if not isinstance(config, dict):
            self.fatal(f"runpod.serverless.start() takes a dict, got {type(config).__name__}")
        unknown = sorted(str(k) for k in config if k not in SUPPORTED_KEYS)
        if unknown:
            self.fatal("runpod.serverless.start(): podworker does not implement "
                       + ", ".join(repr(k) for k in unknown)
                       + f"; supported keys: {', '.join(sorted(SUPPORTED_KEYS))}")
        handler = config.get("handler")
        if not callable(handler):
            self.fatal("runpod.serverless.start(): config['handler'] must be a callable, got "
                       + type(handler).__name__)
        modifier = config.get("concurrency_modifier")
        if modifier is not None and not callable(modifier):
            self.fatal("runpod.serverless.start(): config['concurrency_modifier'] must be a "
                       "callable")
        self.config = config
        self.kind = _kind(handler)
        asyncio.run(self._main())

    def progress(self, job: Any, value: Any) -> None:
        state = self._state_of(job)
        if state is None or state.cancelled.is_set():
            return
        self._send_or_log({"op": "progress", "seq": state.seq, "value": value}, state)

    def is_cancelled(self, job: Any) -> bool:
        state = self._state_of(job)
        return state is not None and state.cancelled.is_set()

    def fatal(self, message: str) -> None:
        """Stops the start: the worker prints the message and exits non-zero."""
        print(f"podworker: {message}", file=sys.stderr, flush=True)
        try:
            self.pipe.send({"op": "fatal", "message": message})
        finally:
            os._exit(3)

    # ---- the loop ----

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(MAX_SYNC_THREADS, "podworker-job"))
        self.pipe.send({
            "op": "ready",
            "kind": self.kind,
            "return_aggregate_stream": bool(self.config.get("return_aggregate_stream", False)),
            "refresh_worker": bool(self.config.get("refresh_worker", False)),
            "concurrency_modifier": self.config.get("concurrency_modifier") is not None,
            "python": sys.version.split()[0],
        })
        closed = asyncio.Event()
        reader = threading.Thread(target=self._read_frames, args=(closed,), daemon=True,
                                  name="podworker-frames")
        reader.start()
        await closed.wait()
        # The worker closed the pipe: it is stopping (its jobs are over or abandoned).
        os._exit(0)

    def _read_frames(self, closed: asyncio.Event) -> None:
        try:
            while (frame := self.pipe.receive()) is not None:
                self.loop.call_soon_threadsafe(self._on_frame, frame)
        except Exception:  # a broken frame from the worker: nothing sane to do but stop
            traceback.print_exc()
        self.loop.call_soon_threadsafe(closed.set)

    def _on_frame(self, frame: dict) -> None:
        op = frame.get("op")
        if op == "job":
            state = JobState(int(frame["seq"]), frame["job"])
            with self.lock:
                self.jobs[state.seq] = state
                self.by_id[str(state.job.get("id"))] = state
            state.task = asyncio.ensure_future(self._run(state))
        elif op == "cancel":
            state = self.jobs.get(int(frame["seq"]))
            if state is not None:
                state.cancelled.set()
                with state.window:  # a generator paused on the stream window sees the flag
                    state.window.notify_all()
                if state.task is not None and self.kind in ("async", "async_generator"):
                    state.task.cancel()
        elif op == "ack":
            state = self.jobs.get(int(frame["seq"]))
            if state is not None:
                with state.window:
                    state.outstanding -= int(frame["bytes"])
                    state.window.notify_all()
                if state.window_event is not None:
                    state.window_event.set()
        elif op == "concurrency":
            current = int(frame["current"])
            try:
                value = int(self.config["concurrency_modifier"](current))
            except Exception:
                traceback.print_exc()
                value = current
            self.pipe.send({"op": "concurrency", "value": value})

    # ---- one job ----

    async def _run(self, state: JobState) -> None:
        handler = self.config["handler"]
        try:
            if self.kind == "async":
                frame = self._result_frame(await handler(state.job))
            elif self.kind == "sync":
                frame = await asyncio.to_thread(self._run_sync, handler, state)
            elif self.kind == "generator":
                frame = await asyncio.to_thread(self._run_generator, handler, state)
            else:
                frame = await self._run_async_generator(handler, state)
        except asyncio.CancelledError:
            frame = {"op": "cancelled"}
        except Exception as err:  # noqa: BLE001 (the handler's failure is the job's result)
            frame = self._exception_frame(err)
        if state.cancelled.is_set():
            frame = {"op": "cancelled"}
        frame["seq"] = state.seq
        with self.lock:
            self.jobs.pop(state.seq, None)
            if self.by_id.get(str(state.job.get("id"))) is state:
                del self.by_id[str(state.job.get("id"))]
        self._send_or_log(frame, state)

    def _run_sync(self, handler, state: JobState) -> dict:
        try:
            value = handler(state.job)
            if inspect.isawaitable(value):  # a sync function returning a coroutine: as the SDK
                value = asyncio.run_coroutine_threadsafe(_awaited(value), self.loop).result()
            return self._result_frame(value)
        except Exception as err:  # noqa: BLE001
            return self._exception_frame(err)

    def _run_generator(self, handler, state: JobState) -> dict:
        try:
            for item in handler(state.job):
                if state.cancelled.is_set():
                    break
                if (failed := _item_error(item)) is not None:
                    return {"op": "error", "error": failed}
                self._send_chunk(state, item)
                with state.window:
                    state.window.wait_for(lambda: state.outstanding < STREAM_WINDOW_BYTES
                                          or state.cancelled.is_set())
        except Exception as err:  # noqa: BLE001
            return {"op": "error", "error": _generator_error(err)}
        return {"op": "result", "stream": True}

    async def _run_async_generator(self, handler, state: JobState) -> dict:
        state.window_event = asyncio.Event()
        try:
            async for item in handler(state.job):
                if (failed := _item_error(item)) is not None:
                    return {"op": "error", "error": failed}
                self._send_chunk(state, item)
                while state.outstanding >= STREAM_WINDOW_BYTES:
                    state.window_event.clear()
                    await state.window_event.wait()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001
            return {"op": "error", "error": _generator_error(err)}
        return {"op": "result", "stream": True}

    def _send_chunk(self, state: JobState, item: Any) -> None:
        # The worker acknowledges each stream frame's length once it has handed the chunk to its
        # sender; an ack that overtakes this addition only makes the count dip below zero.
        size = self.pipe.send({"op": "stream", "seq": state.seq, "chunk": item})
        with state.window:
            state.outstanding += size

    def _result_frame(self, value: Any) -> dict:
        """The handler's return value, read as runpod-python's run_job reads it."""
        frame: dict = {"op": "result"}
        if isinstance(value, dict):
            value = dict(value)  # the handler's own dict stays as it was
            error = value.pop("error", None)
            if value.pop("refresh_worker", None):
                frame["refresh"] = True
            if error:
                frame["op"] = "error"
                frame["error"] = error if isinstance(error, str) else json.dumps(error)
                if value:
                    frame["output"] = value
                return frame
        frame["output"] = value
        return frame

    def _exception_frame(self, err: BaseException) -> dict:
        print(f"podworker: handler raised {type(err).__name__}: {err}", file=sys.stderr,
              flush=True)
        return {"op": "error", "error": _error_report(err)}

    def _send_or_log(self, frame: dict, state: JobState) -> None:
        """Sends a frame; a value JSON cannot hold fails the job instead of losing its result."""
        try:
            self.pipe.send(frame)
        except (TypeError, ValueError) as err:
            if frame.get("op") == "progress":
                print(f"podworker: progress update dropped: {err}", file=sys.stderr, flush=True)
                return
            self.pipe.send({"op": "error", "seq": state.seq,
                            "error": f"the handler's result is not JSON: {err}"})

    def _state_of(self, job: Any) -> JobState | None:
        if not isinstance(job, dict):
            return None
        with self.lock:
            return self.by_id.get(str(job.get("id")))


async def _awaited(value):
    return await value


def _item_error(item: Any) -> str | None:
    """A yielded dict with a truthy "error" ends the stream with that error, as in the SDK."""
    if isinstance(item, dict) and item.get("error"):
        return str(item["error"])
    return None


def _tie_to_worker() -> None:
    """The worker decides when this process ends: it closes the socket (this process then exits)
    after draining. A SIGTERM or Ctrl-C meant for the worker's process group must not kill running
    jobs first, and if the worker itself dies, so does this process (Linux: PR_SET_PDEATHSIG; it
    fires when the spawning *thread* ends, and the worker spawns from its main thread or a job
    thread, both of which live until the worker stops)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the closed socket still ends this process


def main() -> None:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    handler_file, fd = sys.argv[1], int(sys.argv[2])
    _tie_to_worker()
    bridge = Bridge(Pipe(fd))
    serverless._attach(bridge)
    # As `python handler.py` would: its folder first for its own imports (after the compatibility
    # package, which this script's folder already puts first), its name as argv[0].
    handler_dir = os.path.dirname(os.path.abspath(handler_file))
    sys.path.insert(1, handler_dir)
    sys.argv = [handler_file]
    try:
        runpy.run_path(handler_file, run_name="__main__")
    except SystemExit as stop:
        if not bridge.serving:
            bridge.fatal(f"{handler_file} exited ({stop.code}) before calling "
                         "runpod.serverless.start()")
        raise
    except BaseException as err:  # noqa: BLE001
        traceback.print_exc()
        bridge.fatal(f"{handler_file} raised {type(err).__name__}: {err} (traceback above)")
    if not bridge.serving:
        bridge.fatal(f"{handler_file} finished without calling runpod.serverless.start()")


if __name__ == "__main__":
    main()
