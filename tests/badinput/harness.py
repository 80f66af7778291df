"""Measuring a bad-input case: time, peak memory, and the shape of the message it produced.

Two ways to run a case:

- :func:`run_cli` runs ``python -m kwscore.cli ARGS`` in a fresh process and returns its exit code,
  output, wall time and the child's peak RSS (from ``os.wait4``), so memory is the real process's.
- :func:`measure` runs a function in this process and reports wall time and the growth of this
  process's peak RSS (``resource.getrusage``): torch allocations do not show in tracemalloc.

Limits are generous on purpose (these machines are noisy): a case that hangs, balloons or prints a
traceback fails; a case that takes 1.2 s instead of 0.3 s does not.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_SECONDS = 2.0  # per case, excluding the interpreter's start-up and torch import in run_cli
MAX_MB = 500.0
CLI_STARTUP_ALLOWANCE_S = 8.0  # python + torch import on a busy 2-core machine


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    seconds: float
    peak_mb: float

    @property
    def text(self) -> str:
        return (self.out + self.err).strip()


def assert_friendly(text: str) -> None:
    """A clear message, not a traceback: no 'Traceback', no exception class dump, not empty."""
    assert text, "no message at all"
    assert "Traceback" not in text, text[-2000:]
    assert 'File "' not in text, text[-2000:]


def run_cli(args: list[str], *, env: dict | None = None, timeout: float = 60.0, stdin=None) -> Outcome:
    """Run the kwscore CLI in a fresh process; its own peak RSS in MB (``os.wait4``)."""
    full_env = {**os.environ, "PYTHONWARNINGS": "default", **(env or {})}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kwscore.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin or subprocess.DEVNULL,
        env=full_env, cwd=REPO, text=True,
    )  # fmt: skip
    chunks: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda k=k, s=s: chunks.__setitem__(k, s.read()), daemon=True)
        for k, s in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(5)
    seconds = time.perf_counter() - started
    if seconds >= timeout:
        raise AssertionError(f"kwscore {' '.join(args)} hung for {timeout} s")
    return Outcome(proc.returncode, chunks.get("out", ""), chunks.get("err", ""), seconds, usage.ru_maxrss / 1024)


def measure(fn, *args, **kwargs):
    """Run ``fn`` here; return (result or exception, seconds, growth of peak RSS in MB)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the caller checks which
        result = exc
    seconds = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return result, seconds, grown
