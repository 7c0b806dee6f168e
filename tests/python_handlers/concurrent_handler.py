"""concurrency_modifier: the worker runs up to 4 jobs at once. Each job waits (up to 20 s) until
4 jobs are running together, and says whether they were: with one job at a time they never are."""

import asyncio

import runpod

GROUP = 4
arrived = 0
together = None


async def handler(job):
    global arrived, together
    if together is None:
        together = asyncio.Event()
    arrived += 1
    if arrived >= GROUP:
        together.set()
    try:
        await asyncio.wait_for(together.wait(), timeout=20)
        return {"together": True, "n": job["input"].get("n")}
    except asyncio.TimeoutError:
        return {"together": False, "n": job["input"].get("n")}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda current: GROUP})
