#!/usr/bin/env python3
"""Draws the benchmark tables that the bench programs write with --json FILE as PNGs.

    bench/plot.py [--out DIR] FILE.json...

Each input names the program that wrote it; files of the same program are merged (a CPU run here
and a CUDA run elsewhere draw into one chart). The charts:

    e2e_jobs_per_s.png        jobs/s vs concurrency, podworker vs the runpod SDK   (bench_e2e)
    textgen_tokens_per_s.png  decode tok/s vs streams per backend, llama.cpp too    (bench_textgen)
    kernels_bandwidth.png     memory-bound kernels' GB/s as % of the copy limit     (bench_kernels)
    stream_rate_vs_rtt.png    streamed chunks/s vs round-trip time per worker       (bench_stream)

A chart whose input is absent is skipped with a message. Exit status: 0 when at least one chart
was written, 1 when none could be, 2 for an unreadable input.
"""

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


class BadInput(Exception):
    pass


def load(paths):
    """{program: {table name: [row dict, ...]}} from the bench JSON files."""
    programs = defaultdict(lambda: defaultdict(list))
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
            program = doc["program"]
            for table in doc["tables"]:
                columns = table["columns"]
                for row in table["rows"]:
                    if len(row) != len(columns):
                        raise BadInput(f"{path}: table {table['name']}: a row does not match its columns")
                    programs[program][table["name"]].append(dict(zip(columns, row)))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BadInput(f"{path}: not a bench --json file ({e})") from e
    return programs


def save(fig, out, name):
    path = out / name
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")
    return path


def log2_x(ax, rows, x):
    """A base-2 x axis ticked at the measured values, written as plain numbers."""
    ax.set_xscale("log", base=2)
    ticks = sorted({r[x] for r in rows if r.get(x) is not None})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()


def series(rows, key, x, y):
    """{label: ([x...], [y...])} sorted by x, rows without a y value left out."""
    lines = defaultdict(list)
    for r in rows:
        if r.get(y) is not None and r.get(x) is not None:
            lines[key(r)].append((r[x], r[y]))
    return {label: tuple(zip(*sorted(points))) for label, points in lines.items()}


def plot_e2e(programs, out):
    rows = programs.get("bench_e2e", {}).get("workers")
    if not rows:
        return "no bench_e2e JSON with the worker table (bench_e2e --json FILE, without --store)"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, (xs, ys) in sorted(series(rows, lambda r: r["worker"], "C", "jobs/s").items()):
        ax.plot(xs, ys, marker="o", label=label)
    log2_x(ax, rows, "C")
    ax.set_yscale("log")  # the SDK runs orders of magnitude below podworker
    ax.set_xlabel("concurrency (client connections = worker --concurrency)")
    ax.set_ylabel("jobs/s (/runsync, echo handler)")
    ax.set_title("End to end: jobs/s vs concurrency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return save(fig, out, "e2e_jobs_per_s.png")


def plot_textgen(programs, out):
    tables = programs.get("bench_textgen", {})
    rows = tables.get("throughput")
    if not rows:
        return "no bench_textgen JSON (bench_textgen --json FILE)"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    key = lambda r: f"{r['model']} ({r['backend']})"  # noqa: E731
    for label, (xs, ys) in sorted(series(rows, key, "streams", "decode tok/s (all)").items()):
        ax.plot(xs, ys, marker="o", label=label)
    # llama.cpp's figures come from the same-run comparison (--llama-bench): batch 1 only.
    medians = [r for r in tables.get("same_run", []) if r.get("round") == "median"]
    for r in medians:
        ax.plot([1], [r["llama tg t/s"]], marker="*", markersize=12, linestyle="none",
                label="llama.cpp llama-bench (batch 1, same run)")
    log2_x(ax, rows, "streams")
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("decode tok/s, all streams")
    ax.set_title("Text generation: tok/s vs streams")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return save(fig, out, "textgen_tokens_per_s.png")


def plot_kernels(programs, out):
    tables = programs.get("bench_kernels", {})
    if not tables:
        return "no bench_kernels JSON (bench_kernels --json FILE, CUDA builds)"
    fig, axes = plt.subplots(1, len(tables), figsize=(7.5 * len(tables), 9), squeeze=False)
    for ax, (name, rows) in zip(axes[0], sorted(tables.items())):
        bound = [r for r in rows if r["limit"] in ("copy", "memcpy") and not r["kernel"].startswith("limit:")]
        labels = [f"{r['kernel']} {r['shape']}" for r in bound]
        ax.barh(range(len(bound)), [r["%limit"] for r in bound])
        ax.set_yticks(range(len(bound)), labels, fontsize=6)
        ax.invert_yaxis()
        ax.axvline(100, color="grey", linestyle="--", linewidth=1)
        limit = next((r for r in rows if r["kernel"].startswith("limit:") and r["limit"] in ("copy", "memcpy")), None)
        where = f" (limit {limit['GB/s']:.0f} GB/s)" if limit else ""
        ax.set_xlabel(f"GB/s as % of measured copy bandwidth{where}")
        ax.set_title(name)
    return save(fig, out, "kernels_bandwidth.png")


def plot_stream(programs, out):
    rows = programs.get("bench_stream", {}).get("stream")
    if not rows:
        return "no bench_stream JSON (bench_stream --json FILE)"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    key = lambda r: f"{r['worker']} {r['workload']}"  # noqa: E731
    for label, (xs, ys) in sorted(series(rows, key, "rtt", "chunks/s").items()):
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel("round-trip time to the endpoint (ms)")
    ax.set_ylabel("streamed chunks/s")
    ax.set_ylim(bottom=0)
    ax.set_title("Streaming: chunk rate vs RTT")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return save(fig, out, "stream_rate_vs_rtt.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", metavar="FILE.json")
    parser.add_argument("--out", default=".", help="folder for the PNGs (default: the current one)")
    args = parser.parse_args(argv)
    try:
        programs = load(args.inputs)
    except BadInput as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for plot in (plot_e2e, plot_textgen, plot_kernels, plot_stream):
        result = plot(programs, out)
        if isinstance(result, Path):
            written += 1
        else:
            print(f"skipped {plot.__name__[5:]}: {result}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
