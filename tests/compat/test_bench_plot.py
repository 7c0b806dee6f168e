"""bench/plot.py on tables a real benchmark run wrote with --json: bench_stream (the podworker
worker in process and the runpod SDK's worker as a child, through the delaying proxy) at its
smallest settings, then the chart drawn from it, checked to be a real PNG of a real size."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLOT = ROOT / "bench" / "plot.py"


def bench(name: str) -> str:
    path = os.environ.get(name)
    if not path:
        pytest.skip(f"{name} is not set (CTest sets it on a -DPODWORKER_BENCH=ON build)")
    return path


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def plot(tmp_path: Path, *inputs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PLOT), "--out", str(tmp_path / "png"), *map(str, inputs)],
                          capture_output=True, text=True, timeout=120)


def test_stream_table_to_png(tmp_path: Path):
    table = tmp_path / "stream.json"
    run = subprocess.run([bench("PODWORKER_BENCH_STREAM"), "--rtt", "0,5", "--chunks", "40", "--rate", "1000",
                          "--sdk-chunks", "40", "--no-textgen", "--python", sys.executable,
                          "--json", str(table)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(table.read_text())
    assert doc["program"] == "bench_stream"
    [stream] = doc["tables"]
    rows = [dict(zip(stream["columns"], r)) for r in stream["rows"]]
    # Every measured row is in the JSON, as numbers, and each appears in the printed table too.
    assert {(r["worker"], r["rtt"]) for r in rows} == {(w, t) for w in ("podworker", "runpod-sdk") for t in (0, 5)}
    for r in rows:
        assert r["chunks"] == 40 and r["chunks/s"] > 0
        assert any(line.split()[:3] == [r["worker"], r["workload"], str(r["rtt"])] for line in run.stdout.splitlines())

    drawn = plot(tmp_path, table)
    assert drawn.returncode == 0, drawn.stdout + drawn.stderr
    png = tmp_path / "png" / "stream_rate_vs_rtt.png"
    width, height = png_size(png)
    assert width >= 400 and height >= 300
    assert png.stat().st_size > 10_000  # axes, two lines and a legend; an empty canvas is far smaller
    # The charts without input say so instead of failing.
    assert "skipped e2e: no bench_e2e JSON" in drawn.stdout
    assert "skipped textgen: no bench_textgen JSON" in drawn.stdout


def test_metrics_table_is_json(tmp_path: Path):
    table = tmp_path / "metrics.json"
    run = subprocess.run([bench("PODWORKER_BENCH_METRICS"), "--jobs", "2000", "--rounds", "1", "--json", str(table)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    tables = {t["name"]: t for t in json.loads(table.read_text())["tables"]}
    cycle = tables["store_cycle"]
    assert cycle["columns"] == ["threads", "bare ns/job", "metered ns/job", "added ns/job"]
    assert [r[0] for r in cycle["rows"]] == [1, 2]
    assert all(r[1] > 0 and r[2] > 0 for r in cycle["rows"])
    # No chart draws bench_metrics: plot.py says it made none, with exit status 1.
    drawn = plot(tmp_path, table)
    assert drawn.returncode == 1 and "skipped stream" in drawn.stdout


def test_bad_input_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"tables": []}')
    drawn = plot(tmp_path, bad)
    assert drawn.returncode == 2
    assert "not a bench --json file" in drawn.stderr
