"""The trivial handler of `bench_e2e --python`, a runpod-python handler file run unchanged by both
workers: `worker --python python_echo.py` and the official SDK's `python python_echo.py`. It
returns the job's input, like podworker's C++ `echo`; BENCH_CONCURRENCY (set by bench_e2e) is
what its concurrency_modifier answers, so both workers run that many jobs at once."""

import os

import runpod

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "1"))


async def handler(job):
    return job["input"]


runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda current: CONCURRENCY})
