"""A start() config key podworker does not implement: the worker refuses to start, naming it."""

import runpod


def handler(job):
    return job["input"]


runpod.serverless.start({"handler": handler, "rp_debugger": True})
