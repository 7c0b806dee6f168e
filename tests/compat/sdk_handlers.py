"""A worker written against the official runpod-python SDK, exactly as its users write one.

Run as a child process with the RUNPOD_WEBHOOK_* variables pointing at our endpoint; the SDK reads
them at import time. Used by the compatibility tests and by bench/e2e.

    python sdk_handlers.py --handler echo|stream --concurrency N
"""

import argparse
import asyncio
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--handler", choices=["echo", "stream"], default="echo")
parser.add_argument("--concurrency", type=int, default=1)
args, rest = parser.parse_known_args()
sys.argv = [sys.argv[0], *rest]  # the SDK parses its own --rp_* flags from what is left

import runpod  # noqa: E402  (after argv is trimmed: the SDK parses sys.argv on start)


async def echo(job):
    """Returns the job's input unchanged: what podworker's `echo` handler does. With `sleep_s` in
    the input it first waits that long, so a test can cancel it while it runs; with `raise` it
    raises (the SDK reports the exception as the job's error)."""
    job_input = job["input"] if isinstance(job["input"], dict) else {}
    if job_input.get("sleep_s"):
        await asyncio.sleep(float(job_input["sleep_s"]))
    if job_input.get("raise"):
        raise ValueError(str(job_input["raise"]))
    return job["input"]


def stream(job):
    """Yields the input text in pieces, with a progress update first, like `stream_echo`."""
    runpod.serverless.progress_update(job, {"started": True})
    text = str(job["input"].get("text", ""))
    size = max(1, int(job["input"].get("chunk", 4)))
    for start in range(0, len(text), size):
        yield text[start:start + size]


runpod.serverless.start({
    "handler": echo if args.handler == "echo" else stream,
    "concurrency_modifier": lambda _current: args.concurrency,
    "return_aggregate_stream": True,
})
