"""The worker side of RunPod's protocol played by hand, request by request, the way the SDK worker
sends it: raw API key in `Authorization`, production-shaped query strings, JSON bodies labelled
`application/x-www-form-urlencoded`. Lets a test drive every job transition itself.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from processes import EndpointProcess, wait_until

SDK_CONTENT_TYPE = {"Content-Type": "application/x-www-form-urlencoded", "charset": "utf-8"}


class PlayedWorker:
    def __init__(self, endpoint: EndpointProcess, worker_id: str = "played-worker",
                 endpoint_id: str = "local") -> None:
        self.base = endpoint.v2(endpoint_id)
        self.worker_id = worker_id
        self.session = requests.Session()
        self.session.headers["Authorization"] = endpoint.api_key

    def close(self) -> None:
        self.session.close()

    def take(self, timeout_s: float = 20) -> dict[str, Any]:
        """One job from job-take; long polls (and 204s) are retried until the deadline."""
        def attempt():
            r = self.session.get(f"{self.base}/job-take/{self.worker_id}",
                                 params={"gpu": "compat-test", "job_in_progress": "0"},
                                 timeout=timeout_s)
            if r.status_code == 204:
                return None
            assert r.status_code == 200, f"job-take: {r.status_code} {r.text}"
            # aiohttp in the SDK worker drops a job whose content type is not JSON.
            assert r.headers.get("Content-Type", "").split(";")[0] == "application/json", r.headers
            job = r.json()
            assert isinstance(job, dict) and "id" in job and "input" in job, job
            return job
        return wait_until(attempt, timeout_s, "a job from job-take")

    def take_batch(self, batch_size: int, timeout_s: float = 20) -> list[dict[str, Any]]:
        def attempt():
            r = self.session.get(f"{self.base}/job-take-batch/{self.worker_id}",
                                 params={"gpu": "compat-test", "batch_size": batch_size,
                                         "job_in_progress": "0"}, timeout=timeout_s)
            if r.status_code == 204:
                return None
            assert r.status_code == 200, f"job-take-batch: {r.status_code} {r.text}"
            jobs = r.json()
            assert isinstance(jobs, list) and 0 < len(jobs) <= batch_size, jobs
            return jobs
        return wait_until(attempt, timeout_s, "jobs from job-take-batch")

    def done(self, job_id: str, body: dict[str, Any], is_stream: bool = False) -> requests.Response:
        r = self.session.post(f"{self.base}/job-done/{self.worker_id}/{job_id}",
                              params={"gpu": "compat-test",
                                      "isStream": "true" if is_stream else "false"},
                              data=json.dumps(body), headers=SDK_CONTENT_TYPE, timeout=10)
        assert r.status_code < 300, f"job-done: {r.status_code} {r.text}"
        return r

    def progress(self, job_id: str, progress: Any) -> requests.Response:
        return self.done(job_id, {"status": "IN_PROGRESS", "output": progress})

    def stream(self, job_id: str, chunk: Any) -> requests.Response:
        r = self.session.post(f"{self.base}/job-stream/{self.worker_id}/{job_id}",
                              params={"gpu": "compat-test", "isStream": "false"},
                              data=json.dumps({"output": chunk}), headers=SDK_CONTENT_TYPE,
                              timeout=10)
        assert r.status_code < 300, f"job-stream: {r.status_code} {r.text}"
        return r

    def ping(self, job_ids: list[str]) -> requests.Response:
        params = {"runpod_version": "1.12.0"}
        if job_ids:
            params["job_id"] = ",".join(job_ids)
        r = self.session.get(f"{self.base}/ping/{self.worker_id}", params=params, timeout=10)
        assert r.status_code < 300, f"ping: {r.status_code} {r.text}"
        return r

    def stop_signals(self, timeout_s: float = 20) -> list[str]:
        """Ids from the stop channel (job-stop long poll); [] when it answers 204."""
        r = self.session.get(f"{self.base}/job-stop/{self.worker_id}",
                             params={"gpu": "compat-test"}, timeout=timeout_s)
        if r.status_code == 204:
            return []
        assert r.status_code == 200, f"job-stop: {r.status_code} {r.text}"
        assert r.headers.get("Content-Type", "").split(";")[0] == "application/json", r.headers
        payload = r.json()
        assert isinstance(payload, dict) and isinstance(payload.get("jobsToStop"), list), payload
        return payload["jobsToStop"]
