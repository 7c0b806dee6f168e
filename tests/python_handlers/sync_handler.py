"""A sync runpod-python handler exercising what a job can do; the input says what:
  {"echo": x}            returns {"echo": x, "keys": the job dict's keys}
  {"progress": n, "hold_s": s}
                         posts n progress updates, waits s seconds (default 0), returns {"steps": n}
  {"refresh": true}      returns {"done": true, "refresh_worker": true}
  {"error": msg}         returns {"error": msg, "partial": 1}
  {"raise": msg}         raises ValueError(msg)
  {"sleep_s": s, "marker": path}
                         sleeps s seconds, checking the cancel flag; on cancel writes `path`
  {"crash": "segv"|"exit"}  kills the interpreter (SIGSEGV / os._exit(7))
  {"not_json": true}     returns a set, which JSON cannot hold
  {"fds": true}          returns {"fds": the interpreter's open file descriptors}
Runs unchanged under podworker (`worker --python`) and under the official runpod-python worker.
"""

import os
import signal
import time

import runpod

# podworker's cancel flag for sync handlers; the official SDK has none (its sync jobs run to the end).
is_cancelled = getattr(runpod.serverless, "is_cancelled", lambda job: False)


def handler(job):
    job_input = job["input"]
    if "progress" in job_input:
        for step in range(int(job_input["progress"])):
            runpod.serverless.progress_update(job, {"step": step})
        deadline = time.monotonic() + float(job_input.get("hold_s", 0))
        while time.monotonic() < deadline and not is_cancelled(job):
            time.sleep(0.01)
        return {"steps": int(job_input["progress"])}
    if job_input.get("refresh"):
        return {"done": True, "refresh_worker": True}
    if "error" in job_input:
        return {"error": job_input["error"], "partial": 1}
    if "raise" in job_input:
        raise ValueError(job_input["raise"])
    if "sleep_s" in job_input:
        deadline = time.monotonic() + float(job_input["sleep_s"])
        while time.monotonic() < deadline:
            if is_cancelled(job):
                with open(job_input["marker"], "w", encoding="utf-8") as out:
                    out.write("cancelled")
                return {"cancelled": True}
            time.sleep(0.01)
        return {"slept_s": job_input["sleep_s"]}
    if job_input.get("fds"):
        return {"fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd"))}
    if job_input.get("not_json"):
        return {"values": {1, 2}}
    if job_input.get("crash") == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if job_input.get("crash") == "exit":
        os._exit(7)
    return {"echo": job_input.get("echo"), "keys": sorted(job.keys())}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
