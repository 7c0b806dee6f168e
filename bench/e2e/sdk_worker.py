"""The SDK side of bench_e2e: the official runpod-python worker (PyPI `runpod`) with the same echo
handler podworker's worker runs, configured only through the RUNPOD_WEBHOOK_* variables that
bench_e2e sets. bench_e2e starts it once per concurrency level.

    python sdk_worker.py --concurrency N
"""

import argparse
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--concurrency", type=int, default=1)
args, rest = parser.parse_known_args()
sys.argv = [sys.argv[0], *rest]  # the SDK parses its own --rp_* flags from what is left

import runpod  # noqa: E402  (the SDK reads sys.argv and the environment when it starts)


async def echo(job):
    """Returns the job's input unchanged, like podworker's built-in `echo`."""
    return job["input"]


runpod.serverless.start({
    "handler": echo,
    "concurrency_modifier": lambda _current: args.concurrency,
})
