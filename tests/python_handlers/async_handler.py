"""An async runpod-python handler.
  {"echo": x}                   returns {"echo": x}
  {"raise": msg}                raises KeyError(msg)
  {"sleep_s": s, "marker": p}   awaits s seconds; when cancelled, writes `p` and re-raises
"""

import asyncio

import runpod


async def handler(job):
    job_input = job["input"]
    if "raise" in job_input:
        raise KeyError(job_input["raise"])
    if "sleep_s" in job_input:
        try:
            await asyncio.sleep(float(job_input["sleep_s"]))
        except asyncio.CancelledError:
            with open(job_input["marker"], "w", encoding="utf-8") as out:
                out.write("cancelled")
            raise
        return {"slept_s": job_input["sleep_s"]}
    return {"echo": job_input.get("echo")}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
