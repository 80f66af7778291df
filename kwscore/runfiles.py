"""The files of one training run: what a run writes, and how anybody else reads it.

A run lives in its own folder, ``<runs dir>/<run_id>/``, and talks to the world only through files,
so that the dashboard, the command line and the training process never share memory::

    config.json     the RunConfig (written once, before the run starts)
    status.json     state (queued / running / succeeded / failed / cancelled), pid, host, times,
                    heartbeat, progress (step, total_steps, epoch), best/test accuracy, error
    metrics.jsonl   one JSON object per line: {"kind": "iteration", ...} or {"kind": "epoch", ...}
    log.txt         human-readable log (and the run process's stdout/stderr)
    best.pt last.pt checkpoints (kwscore.training.save_checkpoint: atomic, weights_only loadable)
    report.json     the final evaluation on the test split (kwscore.evaluation.evaluate + summary)
    cancel          an empty flag file: "please stop" (the run checks it every iteration)
    status.lock     the lock file behind RunFiles.update_status (empty)

Rules that keep this safe with several processes:

- Every JSON file is written **atomically** (temporary file + ``os.replace``): a reader sees the
  old or the new version, never half of one.
- ``status.json`` is changed only by :meth:`RunFiles.update_status`, a read-modify-write under an
  exclusive file lock (``status.lock``), so the run, its supervisor and a ``cancel`` never undo each
  other's changes.
- Readers never crash on a damaged file: a corrupt status reads as state ``"unreadable"``, and a
  bad line in ``metrics.jsonl`` (e.g. half-written when the process was killed) is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kwscore.errors import KwsError
from kwscore.fileio import atomic_write

try:  # POSIX file locks; on other systems the lock is a no-op (one writer at a time is then assumed)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: Every state a run can be in. The last three are final.
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")
#: What :func:`read_status` reports when status.json cannot be parsed.
UNREADABLE = "unreadable"

#: Run ids: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit (no ``/``, no ``..``).
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` unchanged if it is a safe folder name, else raise :class:`KwsError`."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id) or ".." in run_id:
        raise KwsError(
            f"{run_id!r} is not a valid run id: use letters, digits, '.', '_' and '-' only (no path "
            "separators, no '..'), e.g. 20261123-210930-m5-a1b2c3. `kwscore runs` lists the ids."
        )
    return run_id


# --------------------------------------------------------------------------------------------
# Atomic JSON
# --------------------------------------------------------------------------------------------


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (temporary file in the same folder + rename)."""
    return atomic_write(path, json.dumps(data, indent=1, allow_nan=False, default=_json_default))


def _json_default(value: Any) -> Any:
    """Tuples, paths and NumPy/torch scalars -> plain JSON values."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file (raises OSError / ValueError when missing or damaged)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def now() -> float:
    """Wall-clock time as a UNIX timestamp (what every time field in status.json holds)."""
    return time.time()


def clock(timestamp: float | None) -> str:
    """``1763931570.2`` -> ``"21:59:30"`` (local time), ``None`` -> ``"?"``."""
    return time.strftime("%H:%M:%S", time.localtime(timestamp)) if timestamp else "?"


# --------------------------------------------------------------------------------------------
# One run's folder
# --------------------------------------------------------------------------------------------


class RunFiles:
    """Reads and writes the files of the run in ``path`` (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.dir = Path(path)
        self.run_id = self.dir.name

    # -- paths ----------------------------------------------------------------------------------
    config_path = property(lambda self: self.dir / "config.json")
    status_path = property(lambda self: self.dir / "status.json")
    metrics_path = property(lambda self: self.dir / "metrics.jsonl")
    log_path = property(lambda self: self.dir / "log.txt")
    report_path = property(lambda self: self.dir / "report.json")
    cancel_path = property(lambda self: self.dir / "cancel")
    best_path = property(lambda self: self.dir / "best.pt")
    last_path = property(lambda self: self.dir / "last.pt")
    _lock_path = property(lambda self: self.dir / "status.lock")

    def exists(self) -> bool:
        return self.dir.is_dir()

    # -- config ---------------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        write_json(self.config_path, config)

    def read_config(self) -> dict:
        """The stored config dict; :class:`KwsError` when missing or damaged."""
        try:
            return read_json(self.config_path)
        except (OSError, ValueError) as exc:
            raise KwsError(f"Run {self.run_id} has no readable config.json ({exc}).") from exc

    # -- status ---------------------------------------------------------------------------------
    def read_status(self) -> dict:
        """The status dict. Never raises: a missing/corrupt file gives ``state="unreadable"``."""
        try:
            status = read_json(self.status_path)
            if not isinstance(status, dict) or status.get("state") not in STATES:
                raise ValueError(
                    f"unknown state {status.get('state') if isinstance(status, dict) else status!r}"
                )
            return status
        except (OSError, ValueError) as exc:
            return {"state": UNREADABLE, "error": f"unreadable status ({type(exc).__name__}: {exc})"}

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run's exclusive lock (``status.lock``) for a read-modify-write of status.json."""
        with open(self._lock_path, "a+") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def update_status(self, only_if: tuple[str, ...] | None = None, **changes: Any) -> dict:
        """Merge ``changes`` into status.json under the lock; return the new status.

        ``only_if``: apply the changes only when the current state is one of these (the status is
        returned unchanged otherwise). This is how "queued -> running" and "queued -> cancelled"
        cannot both win.
        """
        with self.locked():
            status = self.read_status()
            if only_if is not None and status.get("state") not in only_if:
                return status
            if status.get("state") == UNREADABLE:
                status = {"run_id": self.run_id}
            status.update(changes)
            write_json(self.status_path, status)
            return status

    # -- metrics --------------------------------------------------------------------------------
    def append_metric(self, record: dict) -> None:
        """Append one JSON line to metrics.jsonl (flushed, so readers see it at once)."""
        line = json.dumps(record, allow_nan=True, default=_json_default)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def read_metrics(self) -> tuple[list[dict], list[dict]]:
        """``(iteration records, epoch records)``; damaged or half-written lines are skipped."""
        iterations: list[dict] = []
        epochs: list[dict] = []
        try:
            text = self.metrics_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return iterations, epochs
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if record.get("kind") == "iteration":
                iterations.append(record)
            elif record.get("kind") == "epoch":
                epochs.append(record)
        return iterations, epochs

    # -- report, log, cancel flag ---------------------------------------------------------------
    def write_report(self, report: dict) -> None:
        write_json(self.report_path, report)

    def read_report(self) -> dict | None:
        """The final report, or ``None`` when there is none (yet) or it cannot be read."""
        try:
            report = read_json(self.report_path)
        except (OSError, ValueError):
            return None
        return report if isinstance(report, dict) else None

    def log(self, message: str) -> None:
        """Append a time-stamped line to log.txt."""
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"[{clock(now())}] {message}\n")

    def read_log(self, max_chars: int = 20_000) -> str:
        """The end of log.txt ('' when there is none)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[-max_chars:]

    def request_cancel(self) -> None:
        self.cancel_path.touch()

    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()


def this_host() -> str:
    """The machine's name, stored next to a pid (a pid means nothing on another machine)."""
    return socket.gethostname()


def pid_alive(pid: int | None) -> bool:
    """Is process ``pid`` running on this machine? (Zombies, exited but not yet reaped, count as dead.)"""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a zombie still answers kill(0) but will never write another heartbeat
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; Linux only, else ``None``).

    Stored next to the pid: after a restart the same pid may belong to another program, but
    not with the same start time.
    """
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
