"""The SDK side of bench_stream: the official runpod-python worker (PyPI `runpod`) with a generator
handler that yields {"chunks": N, "rate": R} one-character chunks at R per second, like
bench_stream's paced generator. Configured only through the RUNPOD_WEBHOOK_* variables.

    python sdk_stream_worker.py
"""

import time

import runpod


def paced(job):
    """Yields "x" `chunks` times, at most `rate` per second (in 1 ms bursts, as the C++ side)."""
    chunks = int(job["input"]["chunks"])
    rate = float(job["input"]["rate"])
    start = time.perf_counter()
    for i in range(chunks):
        due = start + i / rate
        ahead = due - time.perf_counter()
        if ahead > 0.001:
            time.sleep(ahead)
        yield "x"


runpod.serverless.start({"handler": paced, "return_aggregate_stream": False})
