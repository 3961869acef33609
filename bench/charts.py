"""Draw the README charts from a results file of :mod:`bench.run`.

    .venv/bin/python -m bench.charts [bench/results/results.json]

Writes ``throughput.png`` (req/s per scenario and contender), ``ratio.png`` (share of the bare
ASGI ceiling) and ``workers.png`` (aeros worker scaling) beside the results file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {
    "bare": "#9e9e9e",
    "bare-aeros": "#616161",
    "aeros": "#1f77b4",
    "aeros-granian": "#aec7e8",
    "quart": "#ff7f0e",
    "quart-aeros": "#c45a00",
    "quart-hypercorn": "#ffbb78",
    "fastapi": "#2ca02c",
    "fastapi-aeros": "#155f15",
    "flask-gunicorn": "#d62728",
    "sanic": "#9467bd",
    "litestar": "#bcbd22",
    "starlette": "#17becf",
    "blacksheep": "#8c564b",
    "falcon": "#e377c2",
    "robyn": "#393b79",
}


def _grouped(doc: dict[str, Any], key: str, path: Path, ylabel: str, title: str) -> None:
    scenarios = [s["name"] for s in doc["scenarios"]]
    titles = {s["name"]: s["title"] or s["name"] for s in doc["scenarios"]}
    contenders = list(dict.fromkeys(r["contender"] for r in doc["results"]))
    if key == "ratio":
        contenders = [c for c in contenders if c != "bare"]
    width = 0.8 / max(1, len(contenders))
    fig, ax = plt.subplots(figsize=(14 if len(contenders) > 10 else 12, 5))
    for i, contender in enumerate(contenders):
        xs, ys = [], []
        for j, scenario in enumerate(scenarios):
            for r in doc["results"]:
                if r["contender"] == contender and r["scenario"] == scenario and r.get(key):
                    xs.append(j + i * width)
                    ys.append(r[key])
        ax.bar(xs, ys, width, label=doc["labels"][contender], color=COLORS.get(contender))
    ax.set_xticks([j + width * (len(contenders) - 1) / 2 for j in range(len(scenarios))])
    ax.set_xticklabels([titles[s] for s in scenarios], rotation=15)
    ax.set_ylabel(ylabel)
    if key == "ratio":
        ax.axhline(1.0, color="#555", linewidth=0.8, linestyle="--")
    env = doc["environment"]
    ax.set_title(f"{title}\n{env.get('cpu', '')}, one worker on one CPU, wrk -t1 -c64")
    if len(contenders) > 10:  # the whole field: beside the bars rather than over them
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _workers(doc: dict[str, Any], path: Path) -> None:
    rows = doc.get("scaling") or []
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r["workers"] for r in rows]
    ys = [r["rps"] for r in rows]
    ax.plot(xs, ys, marker="o", color=COLORS["aeros"], label="aeros, JSON route")
    ax.plot(xs, [ys[0] * x / xs[0] for x in xs], linestyle=":", color="#999", label="linear")
    for x, y in zip(xs, ys, strict=True):
        ax.annotate(
            f"{y / 1000:.0f}k", (x, y), textcoords="offset points", xytext=(0, 6), ha="center"
        )
    ax.set_xticks(xs)
    ax.set_xlabel("worker processes (one CPU each)")
    ax.set_ylabel("requests / s")
    ax.set_title("aeros worker scaling")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw(results: Path) -> list[Path]:
    """Draw every chart for ``results``; returns the files written."""
    doc = json.loads(results.read_text())
    out = results.parent
    paths = [out / "throughput.png", out / "ratio.png", out / "workers.png"]
    _grouped(doc, "rps", paths[0], "requests / s", "Throughput by scenario")
    _grouped(doc, "ratio", paths[1], "x bare ASGI on uvicorn", "Share of the bare-ASGI ceiling")
    _workers(doc, paths[2])
    return [p for p in paths if p.exists()]


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/results.json")
    for written in draw(target):
        print(written)
