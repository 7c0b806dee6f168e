"""An async generator runpod-python handler with return_aggregate_stream: the job's output is
the list of what it yielded.  {"count": n}: yields {"i": 0} ... {"i": n-1}, with a progress
update first."""

import asyncio

import runpod


async def handler(job):
    runpod.serverless.progress_update(job, {"started": True})
    for i in range(int(job["input"].get("count", 3))):
        await asyncio.sleep(0)
        yield {"i": i}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
