"""refresh_worker in start()'s config: every job's result asks the platform to restart the worker."""

import runpod


def handler(job):
    return job["input"]


runpod.serverless.start({"handler": handler, "refresh_worker": True})
