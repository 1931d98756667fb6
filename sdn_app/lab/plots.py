"""PNG plots of VR scenario runs and service benchmarks (matplotlib, Agg backend: no
display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sdn_app.lab import vr  # noqa: E402


def timeline(runs: dict, path: Path, budget_ms: float = 20.0) -> Path:
    """Received video throughput and p99 frame completion per half second, one line per
    run (``runs``: label -> scenario.Run), phases shaded, the cut and repair marked."""
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    first = next(iter(runs.values()))
    start = first.start_at
    for label, run in runs.items():
        rows = vr.frame_timeline(run.sent, run.received, run.start_at)
        top.plot([r[0] for r in rows], [r[1] for r in rows], label=label)
        bottom.plot([r[0] for r in rows], [r[2] if r[2] is not None else math.nan
                                          for r in rows], label=label)
    for i, phase in enumerate(first.phases):
        for axis in (top, bottom):
            if i % 2:
                axis.axvspan(phase.start - start, phase.end - start, color="0.93")
            if phase.name in ("failure", "recovery"):
                axis.axvline(phase.start - start, color="red" if phase.name == "failure"
                             else "green", linestyle="--", linewidth=1)
        top.text(phase.start - start + 0.2, 0.02, phase.name, transform=top.get_xaxis_transform())
    bottom.axhline(budget_ms, color="black", linewidth=0.8, linestyle=":")
    top.set_ylabel("video received, Mbit/s")
    bottom.set_ylabel("p99 frame completion, ms")
    bottom.set_yscale("log")
    bottom.set_xlabel("seconds from start (red: link cut, green: restored)")
    top.legend(loc="upper left")
    return _save(fig, path)


def completion_cdf(runs: dict, path: Path, phase_names=("crowd",), budget_ms=20.0) -> Path:
    """CDF of frame completion time (incomplete frames at the right edge) per run and
    phase."""
    fig, axis = plt.subplots(figsize=(8, 5))
    for label, run in runs.items():
        for phase in run.phases:
            if phase.name not in phase_names:
                continue
            times = vr.completion_times_ms(run.sent, run.received, phase)
            if not times:
                continue
            finite = [t if math.isfinite(t) else 1e4 for t in times]
            axis.step(finite, [(i + 1) / len(finite) for i in range(len(finite))],
                      where="post", label="%s, %s" % (label, phase.name))
    axis.axvline(budget_ms, color="black", linewidth=0.8, linestyle=":")
    axis.set_xscale("log")
    axis.set_xlim(0.5, 1e4)
    axis.set_xlabel("frame completion time, ms (log; 10 s = never completed)")
    axis.set_ylabel("fraction of frames")
    axis.legend(loc="lower right")
    return _save(fig, path)


def attempts_around(rows: dict, path: Path, title: str) -> Path:
    """Connection attempts around an event at time 0, one row per label (``rows``:
    label -> [[seconds, answered], ...]): answered ones green, failed ones red."""
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.8 * len(rows)))
    for row, attempts in enumerate(rows.values()):
        for ok, colour, name in ((True, "tab:green", "answered"), (False, "tab:red",
                                                                    "failed")):
            xs = [t for t, answered in attempts if answered == ok]
            ax.scatter(xs, [row] * len(xs), s=4, color=colour,
                       label=name if row == 0 else None)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_xlabel("seconds since the event")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def autoscale_run(results: dict, path: Path) -> Path:
    """scripts/bench_autoscale.py: the offered load and the predictive variant's
    forecast, each variant's pool size and its p99 latency per load step."""
    fig, (load, pool, latency) = plt.subplots(3, 1, sharex=True, figsize=(10, 8))
    variants = results["variants"]
    first = next(iter(variants.values()))
    xs, ys = [], []
    for p in first["phases"]:
        xs += [p["at"], p["at"] + p["seconds"]]
        ys += [p["rate"], p["rate"]]
    load.plot(xs, ys, color="black", label="offered load")
    load.set_ylabel("requests/s")
    if "predictive" in variants:  # what it measured, and its peak forecast as sampled
        run = variants["predictive"]
        measured = run.get("measured", [])
        load.plot([t for t, _ in measured], [v for _, v in measured], color="tab:gray",
                  linewidth=0.8, label="measured (predictive)")
        samples = [(t, f) for t, _, f in run["pool"] if f is not None]
        load.plot([t for t, _ in samples], [f for _, f in samples], color="tab:purple",
                  linestyle="--", label="forecast (predictive)")
    load.legend(loc="upper left", fontsize=8)
    for name, run in variants.items():
        pool.step([t for t, _, _ in run["pool"]], [n for _, n, _ in run["pool"]],
                  where="post", label=name)
        latency.plot([p["at"] + p["seconds"] / 2 for p in run["phases"]],
                     [max(p["p99_ms"], 0.1) for p in run["phases"]], marker=".", label=name)
    pool.set_ylabel("backends in the pool")
    pool.legend(fontsize=8)
    latency.axhline(results["budget_ms"], color="red", linewidth=0.8, label="budget")
    latency.set_yscale("log")
    latency.set_ylabel("p99 ms per step")
    latency.set_xlabel("seconds")
    latency.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
