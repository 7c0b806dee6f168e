"""A runpod-python handler, exactly as for the official SDK: podworker runs it unchanged."""

import runpod


def handler(job):
    name = job["input"].get("name", "world")
    runpod.serverless.progress_update(job, {"greeting": "on its way"})
    return {"greeting": f"Hello, {name}!"}


runpod.serverless.start({"handler": handler})
