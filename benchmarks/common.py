"""Shared bits of the benchmark scripts: timing and appending to RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def time_it(fn: Callable[[int], object], runs: int) -> tuple[float, float]:
    """(median, min) wall time in ms of ``fn(i)`` over ``runs`` calls, after one warm-up call."""
    fn(10_000)
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), min(times)


def machine() -> str:
    """One line describing where the figures were measured."""
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s), {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), load average {load:.2f} at the end"
    )


def append_results(title: str, body: str, save: bool = True) -> None:
    """Print a dated section and append it to RESULTS.md (never overwrites)."""
    text = f"\n## {title} — {dt.datetime.now():%Y-%m-%d %H:%M}\n\n{body.rstrip()}\n"
    print(text)
    if not save:
        return
    new = not RESULTS.exists()
    with RESULTS.open("a", encoding="utf-8") as f:
        if new:
            f.write("# Benchmark results\n\nAppended by the scripts in this folder; newest last.\n")
        f.write(text)
    print(f"appended to {RESULTS}")
