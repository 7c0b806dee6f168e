"""Fault tolerance over real HTTP: two endpoint replicas on one Redis behind nginx, four C++ workers.

10,000 jobs go in through nginx; while they run, one worker and one replica are SIGKILLed and the
replica is restarted on the same port and Redis. Every job must then end COMPLETED exactly once with
its own input echoed back, and `retried` must equal the jobs the killed worker held.

Skipped only when nginx or redis-server is not installed (CI installs both, scripts/setup.sh).
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from processes import Child, _clean_env, binary, cpp_worker, wait_until

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)
REDIS = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
pytestmark = pytest.mark.skipif(not (NGINX and REDIS and REDIS_CLI),
                                reason="nginx and redis-server are needed for the replica fault test")

API_KEY = "fault-test-key"
JOBS = 10_000
WORKERS = 4
GRACE_MS = 3000           # a killed worker's jobs requeue this long after its last sign of life
SUBMIT_THREADS = 8
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
JOB_PREFIX = "pw:{local}:job:"

# Jobs IN_PROGRESS and held by worker ARGV[2]: read in one script so the set is one instant's.
HELD_BY = """
local r = {}
for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do
  local f = redis.call('HMGET', k, 'st', 'w')
  if f[1] == 'IN_PROGRESS' and f[2] == ARGV[2] then r[#r + 1] = string.sub(k, #ARGV[1] + 1) end
end
return r
"""
# Every job's requeue count, summed.
SUM_RQ = """
local n = 0
for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do n = n + tonumber(redis.call('HGET', k, 'rq') or '0') end
return n
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """The shape the worker environment helpers expect of an endpoint: an origin and a key."""

    def __init__(self, port: int) -> None:
        self.origin = f"http://127.0.0.1:{port}"
        self.api_key = API_KEY

    def v2(self, endpoint_id: str = "local") -> str:
        return f"{self.origin}/v2/{endpoint_id}"


def nginx_conf(root: Path, port: int, upstreams: list[int]) -> str:
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=0;" for p in upstreams)
    t = root / "tmp"
    return f"""
pid {root}/nginx.pid;
error_log {root}/error.log warn;
worker_processes 1;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {t}/body;
  proxy_temp_path {t}/proxy;
  fastcgi_temp_path {t}/fastcgi;
  uwsgi_temp_path {t}/uwsgi;
  scgi_temp_path {t}/scgi;
  upstream replicas {{
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      # Longer than the replicas' job-take/job-stop long polls.
      proxy_read_timeout 60s;
      # A dead replica is skipped; a request it already took is retried only when idempotent.
      proxy_next_upstream error timeout http_502;
      proxy_connect_timeout 2s;
    }}
  }}
}}
"""


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run([REDIS_CLI, "-p", str(port), *args], check=True, capture_output=True,
                          text=True, timeout=30).stdout


def start_replica(tmp: Path, name: str, redis_port: int, port: int) -> Child:
    argv = [binary("PODWORKER_ENDPOINT"), "--host", "127.0.0.1", "--port", str(port),
            "--api-key", API_KEY, "--store", f"redis://127.0.0.1:{redis_port}", "--no-rate-limit",
            "--take-wait-ms", "2000", "--stop-wait-ms", "2000",
            "--heartbeat-grace-ms", str(GRACE_MS), "--sweep-ms", "200"]
    child = Child(name, argv, tmp, env=_clean_env(tmp))
    child.wait_for_line(LISTENING, timeout_s=15)
    return child


# Above run_pytest.sh's 90 s default: 10,000 jobs on a loaded two-core machine; bounded below 3 min.
@pytest.mark.timeout(170)
def test_replica_and_worker_killed_mid_run(tmp_path: Path, children) -> None:
    started = time.monotonic()
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis_port = free_port()
    redis = Child("redis", [REDIS, "--port", str(redis_port), "--bind", "127.0.0.1",
                            "--appendonly", "yes", "--dir", str(redis_dir), "--save", ""], tmp_path)
    children.append(redis)
    redis.wait_for_line(re.compile(r"Ready to accept connections"), timeout_s=15)

    ports = [free_port(), free_port()]
    replicas = [start_replica(tmp_path, f"replica{i}", redis_port, p) for i, p in enumerate(ports)]
    children.extend(replicas)

    ngx_dir = tmp_path / "nginx"
    (ngx_dir / "tmp").mkdir(parents=True)
    ngx_port = free_port()
    (ngx_dir / "nginx.conf").write_text(nginx_conf(ngx_dir, ngx_port, ports))
    nginx = Child("nginx", [NGINX, "-p", str(ngx_dir), "-c", str(ngx_dir / "nginx.conf"),
                            "-g", "daemon off;"], tmp_path)
    children.append(nginx)
    lb = Nginx(ngx_port)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {API_KEY}"}

    def health() -> dict:
        r = session.get(f"{lb.v2()}/health", headers=headers, timeout=10)
        r.raise_for_status()
        return r.json()["jobs"]

    def reachable():
        try:
            return health() is not None
        except requests.RequestException:
            return False
    wait_until(reachable, 15, "nginx to proxy /health")

    # Submission: all 10,000 accepted before any failure (and before the workers start, so that the
    # run is long enough to be interrupted), so every job id is known for sure (a
    # /run lost with its replica could not tell whether the job exists).
    def submit(chunk: range) -> list[tuple[int, str]]:
        s = requests.Session()
        out = []
        for i in chunk:
            r = s.post(f"{lb.v2()}/run", headers=headers, json={"input": {"n": i}}, timeout=30)
            assert r.status_code == 200, r.text
            out.append((i, r.json()["id"]))
        return out
    step = JOBS // SUBMIT_THREADS
    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        parts = pool.map(submit, [range(k * step, (k + 1) * step) for k in range(SUBMIT_THREADS)])
        ids = dict(pair for part in parts for pair in part)
    assert len(ids) == JOBS and len(set(ids.values())) == JOBS

    workers: dict[str, Child] = {}
    for i in range(WORKERS):
        wid = f"fault-w{i}"
        workers[wid] = cpp_worker(tmp_path, lb, wid, "echo", concurrency=4)
        children.append(workers[wid])

    # Mid-run: once a quarter is done, but well before the end.
    wait_until(lambda: health()["completed"] >= JOBS // 4, 90, "a quarter of the jobs to complete")
    victim = "fault-w1"
    # The echo handler is instant, so a worker killed at a random instant often holds nothing. It is
    # frozen first (SIGSTOP): every job it was running stays running, every take it had in flight is
    # answered into its socket and held. Its held set is read until it stops changing (the last
    # answers and result posts land within milliseconds), well inside the heartbeat grace, so no
    # sweep has requeued any yet; then it dies with that set.
    # It can still be caught between a result post and its next take, holding nothing (seen under
    # a loaded machine); then it is let go for a moment and frozen again.
    def held_now() -> frozenset[str]:
        return frozenset(redis_cli(redis_port, "EVAL", HELD_BY, "0", JOB_PREFIX, victim).split())
    held: set[str] = set()
    for _ in range(20):
        workers[victim].proc.send_signal(signal.SIGSTOP)
        reads = [held_now()]

        def settled():
            reads.append(held_now())
            return len(reads) >= 10 and len(set(reads[-10:])) == 1
        wait_until(settled, GRACE_MS / 2000, "the frozen worker's held jobs to settle")
        held = set(reads[-1])
        if held:
            break
        workers[victim].proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    workers[victim].proc.kill()
    workers[victim].proc.wait(timeout=10)
    completed_at_kill = health()["completed"]
    assert completed_at_kill < JOBS, "the run ended before the failures: nothing was tested"
    replicas[0].proc.kill()
    replicas[0].proc.wait(timeout=10)
    replicas.append(start_replica(tmp_path, "replica0-restarted", redis_port, ports[0]))
    children.append(replicas[-1])

    def all_done():
        h = health()
        return h if h["inQueue"] == 0 and h["inProgress"] == 0 and \
            h["completed"] + h["failed"] >= JOBS else None
    final = wait_until(all_done, max(10.0, 150 - (time.monotonic() - started)), "every job to end")

    def status(pair: tuple[int, str]) -> tuple[int, str, dict]:
        n, jid = pair
        r = requests.get(f"{lb.v2()}/status/{jid}", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        return n, jid, r.json()
    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        states = list(pool.map(status, ids.items()))
    wrong = [(n, s) for n, _, s in states if s["status"] != "COMPLETED" or s.get("output") != {"n": n}]
    assert not wrong, f"{len(wrong)} jobs not COMPLETED with their input echoed, e.g. {wrong[:3]}"
    assert final["completed"] == JOBS and final["failed"] == 0, final

    # How requeues are counted. Every requeue is logged by the replica whose sweep ran it, with the
    # job id and its reason; a job hash's `rq` counts its retries. The victim's jobs are exactly
    # `held`: the ones IN_PROGRESS under its id in Redis the moment it died (it was frozen first, so
    # every answer the replicas had for it was written into its socket and it could take no more).
    # Each is requeued once for "stopped responding" and counted as a retry. The other requeue the
    # failures cause is no retry: a job-take the killed replica had run in Redis but not answered
    # when it died; its live worker never got the job, never lists it, and it goes back to the head
    # of the queue ("never reported holding the job"). So `retried` is exactly |held|.
    job_ids = set(ids.values())
    lines = "".join(r.output() for r in replicas).splitlines()

    def requeued(reason: str) -> list[str]:
        return [j for line in lines if reason in line for j in re.findall(r"[\w-]+", line) if j in job_ids]
    lost = requeued(f"worker {victim} stopped responding (heartbeat lost); job requeued")
    lost_any = requeued("stopped responding (heartbeat lost); job requeued")
    counted_other = requeued("no longer reports holding the job; job requeued")
    undelivered = requeued("its job-take response was lost; job back at the head of the queue")
    rq_total = int(redis_cli(redis_port, "EVAL", SUM_RQ, "0", JOB_PREFIX).strip())
    print(f"held by {victim} at kill: {len(held)}; requeued for it: {len(lost)}; undelivered takes "
          f"(no retry): {len(undelivered)}; retried: {final['retried']}; "
          f"completed at kill: {completed_at_kill}; elapsed {time.monotonic() - started:.1f} s")
    assert held, "the killed worker held no job: the kill tested nothing"
    assert len(lost_any) == len(lost), "only the killed worker may lose jobs to heartbeat loss"
    assert not counted_other, f"a live worker's job was counted as a retry: {counted_other[:3]}"
    assert len(set(lost)) == len(lost), "a job requeued twice for one death"
    assert set(lost) == held, (sorted(held), sorted(lost))
    assert final["retried"] == len(held), (final, len(held))
    assert rq_total == final["retried"]
    for jid in lost:
        n = next(n for n, j in ids.items() if j == jid)
        s = next(s for m, _, s in states if m == n)
        assert s["workerId"] != victim
