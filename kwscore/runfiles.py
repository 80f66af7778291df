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
- Readers trust nothing they read: every field is checked for its type and range (a time is a
  number of seconds between 1970 and 2100, a pid a positive whole number, an accuracy lies in
  [0, 1]...). A bad field is dropped and reported (:meth:`RunFiles.check_status`,
  :func:`config_problems`), so a page shows the run as "damaged: <what>" instead of crashing.
  Only regular files of a bounded size are read (a FIFO or ``/dev/zero`` named status.json would
  otherwise hang or exhaust the reader), and JSON nested too deeply is damaged, not a crash.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from kwscore.errors import KwsError
from kwscore.fileio import atomic_write

#: Every state a run can be in. The last three are final. A queued run that a worker has taken
#: ("claimed") but not started yet stays "queued" with ``claimed_by`` set (see kwscore.jobs).
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")
#: States in which a run still changes (pages poll them; the queue counts them).
ACTIVE_STATES = ("queued", "running")
#: What :func:`read_status` reports when status.json cannot be parsed.
UNREADABLE = "unreadable"

#: Run ids: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit (no ``/``, no ``..``).
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` unchanged if it is a safe folder name, else raise :class:`KwsError`."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id) or ".." in run_id:
        raise KwsError(
            f"{_short(run_id, 60)} is not a valid run id: use letters, digits, '.', '_' and '-' only (no path "
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


#: Largest status/config/report/worker file a reader parses; a bigger one is damaged.
MAX_JSON_BYTES = 16 * 1024 * 1024
#: metrics.jsonl beyond this is read from its end only (the newest records).
MAX_METRICS_BYTES = 64 * 1024 * 1024


def read_limited(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of a *regular* file of at most ``max_bytes`` (ValueError otherwise, OSError if missing).

    A FIFO, a device (``/dev/zero``) or a symlink to one is refused before it is opened.
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file")
    if info.st_size > max_bytes:
        raise ValueError(f"{info.st_size:,} bytes, more than the {max_bytes:,} allowed")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"more than the {max_bytes:,} bytes allowed")
    return data


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` that raises ValueError for anything wrong, deep nesting included."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def read_json(path: str | os.PathLike, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file (raises OSError / ValueError when missing, damaged, too big or not a file)."""
    return parse_json(read_limited(path, max_bytes).decode("utf-8"))


# --------------------------------------------------------------------------------------------
# Checking what was read: every field has a type and a range
# --------------------------------------------------------------------------------------------

#: A time field is a UNIX timestamp between 1970 and 2100 (pages turn it into a date).
LATEST_TIME = 4_102_444_800.0
MAX_PID = 2**22  # Linux's largest pid_max


def is_int(value: Any, low: int = 0, high: int = 10**12) -> bool:
    """A whole number (not a bool) in ``[low, high]``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def is_number(value: Any, low: float = -1e12, high: float = 1e12) -> bool:
    """A finite int or float (not a bool) in ``[low, high]``."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and low <= value <= high
    )


def _time(v: Any) -> bool:
    return is_number(v, 0.0, LATEST_TIME)


def _pid(v: Any) -> bool:
    return is_int(v, 1, MAX_PID)


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= 100_000


#: status.json: what each field must be (``None`` is always allowed: "not known yet").
STATUS_FIELDS: dict[str, tuple[Any, str]] = {
    "run_id": (_text, "a text"),
    "created": (_time, "a time"), "started_at": (_time, "a time"), "ended_at": (_time, "a time"),
    "heartbeat": (_time, "a time"), "training_started_at": (_time, "a time"),
    "pid": (_pid, "a process id"), "supervisor_pid": (_pid, "a process id"),
    "pid_start": (lambda v: is_int(v, -(2**63), 2**63), "a process start time"),
    "host": (_text, "a host name"), "task_id": (_text, "a text"),
    "claimed_by": (_text, "a worker name"), "claimed_at": (_time, "a time"),
    "requeues": (lambda v: is_int(v, 0, 10_000), "a count"),
    "error": (_text, "a text"), "message": (_text, "a text"),
    "epochs": (lambda v: is_int(v, 1, 10**7), "a whole number of epochs"),
    "epoch": (lambda v: is_int(v, 0, 10**7), "an epoch number"),
    "best_epoch": (lambda v: is_int(v, 0, 10**7), "an epoch number"),
    "step": (lambda v: is_int(v, 0), "a step count"), "total_steps": (lambda v: is_int(v, 0), "a step count"),
    "n_train": (lambda v: is_int(v, 0), "a clip count"),
    "best_val_accuracy": (lambda v: is_number(v, -1.0, 1.0), "an accuracy in [0, 1]"),
    "test_accuracy": (lambda v: is_number(v, 0.0, 1.0), "an accuracy in [0, 1]"),
    "budget_s": (lambda v: is_number(v, 0.0, 1e9), "a number of seconds"),
}  # fmt: skip


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_fields(data: dict, schema: dict[str, tuple[Any, str]], file: str) -> tuple[dict, list[str]]:
    """``(data without its bad fields, one sentence per bad field)``."""
    clean, problems = {}, []
    for key, value in data.items():
        check = schema.get(key)
        if value is None or check is None or check[0](value):
            clean[key] = value
        else:
            problems.append(f"{file} field {key!r} is {_short(value)}, not {check[1]}")
    return clean, problems


def _commands(v: Any) -> bool:
    if isinstance(v, list):
        return 0 < len(v) <= 10_000 and all(isinstance(w, str) and 0 < len(w) <= 200 for w in v)
    return is_int(v, 1, 10_000) or (isinstance(v, str) and 0 < len(v) <= 100_000)


#: config.json: the fields readers use (the run itself checks everything with RunConfig.validate).
CONFIG_FIELDS: dict[str, tuple[Any, str]] = {
    "model": (lambda v: isinstance(v, str) and 0 < len(v) <= 50, "a model name"),
    "data": (lambda v: isinstance(v, str) and len(v) <= 4096, "a dataset folder"),
    "mix": (lambda v: isinstance(v, list) and all(isinstance(m, str) and len(m) <= 4096 for m in v),
            "a list of dataset folders"),
    "commands": (_commands, "8, 35, all or a list of words"),
    "model_kwargs": (lambda v: isinstance(v, dict), "a dict of model options"),
    "features": (lambda v: isinstance(v, dict), "a dict of front-end settings"),
    "augment": (lambda v: isinstance(v, str | dict), "a preset name or a recipe"),
    "epochs": (lambda v: is_int(v, 1, 10**7), "a whole number ≥ 1"),
    "batch_size": (lambda v: is_int(v, 1, 10**7), "a whole number ≥ 1"),
    "sample_rate": (lambda v: is_int(v, 1, 10**7), "a sample rate"),
    "fraction": (lambda v: is_number(v, 0.0, 1.0) and v > 0, "a share in (0, 1]"),
    "fraction_by": (lambda v: isinstance(v, str), "a text"),
    "lr": (lambda v: is_number(v, 0.0, 1e6), "a learning rate"),
    "seed": (lambda v: is_int(v, 0, 2**32 - 1), "a whole number in [0, 2**32)"),
    "threads": (lambda v: is_int(v, 1, 10_000), "a whole number ≥ 1"),
    "max_minutes": (lambda v: is_number(v, 0.0, 1e9), "a number of minutes"),
    "scheduler": (lambda v: isinstance(v, str), "a text"),
    "unknown": (lambda v: isinstance(v, bool), "true or false"),
    "init": (lambda v: isinstance(v, str) and len(v) <= 4096, "a run id or folder"),
    "replay": (lambda v: is_int(v, 0, 10**7), "a whole number ≥ 0"),
    "name": (lambda v: isinstance(v, str) and len(v) <= 10_000, "a text"),
    "owner": (lambda v: isinstance(v, str) and len(v) <= 1_000, "a name"),
    "notes": (lambda v: isinstance(v, str) and len(v) <= 100_000, "a text"),
}  # fmt: skip


def config_problems(config: Any) -> list[str]:
    """What is wrong with a config.json's content for a reader (``[]``: nothing)."""
    if not isinstance(config, dict):
        return [f"config.json holds {type(config).__name__} {_short(config)}, not a JSON object"]
    return check_fields(config, CONFIG_FIELDS, "config.json")[1]


def _metric_ok(record: dict) -> bool:
    """An iteration record has a step and a loss; an epoch record an epoch and a validation accuracy;
    every other number in it is a number (NaN allowed: a diverged loss is still a loss)."""

    def num(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and (math.isnan(v) or abs(v) <= 1e300)

    kind = record.get("kind")
    if kind == "iteration":
        needed = {"step": lambda v: is_int(v, 0), "loss": num}
    else:
        needed = {"epoch": lambda v: is_int(v, 0, 10**7),
                  "val_accuracy": lambda v: is_number(v, 0.0, 1.0)}  # fmt: skip
        if record.get("val_loss") is not None:  # the loss plot puts it at its step
            needed["step"] = lambda v: is_int(v, 0)
    if not all(key in record and ok(record[key]) for key, ok in needed.items()):
        return False
    known = {
        "epoch": lambda v: is_int(v, 0, 10**7), "step": lambda v: is_int(v, 0), "best": lambda v: isinstance(v, bool),
        "loss": num, "lr": num, "elapsed": num, "train_loss": num, "val_loss": num, "samples_per_s": num,
    }  # fmt: skip
    return all(value is None or key not in known or known[key](value) for key, value in record.items())


def report_problems(report: Any) -> list[str]:
    """What is wrong with a report.json for the pages that draw it (``[]``: nothing)."""
    if not isinstance(report, dict):
        return [f"report.json holds {type(report).__name__}, not a JSON object"]
    labels = report.get("labels")
    if not (isinstance(labels, list) and labels and all(isinstance(w, str) for w in labels)):
        return ["report.json has no list of labels"]
    n = len(labels)
    problems = []
    if not is_number(report.get("accuracy"), 0.0, 1.0):
        problems.append("report.json accuracy is not in [0, 1]")
    confusion = report.get("confusion")
    if not (isinstance(confusion, list) and len(confusion) == n
            and all(isinstance(row, list) and len(row) == n and all(is_int(c) for c in row) for row in confusion)):  # fmt: skip
        problems.append(f"report.json confusion is not a {n}×{n} table of counts")
    per_class = report.get("per_class_accuracy")
    if not (isinstance(per_class, dict) and all(v is None or is_number(v, 0.0, 1.0) for v in per_class.values())):
        problems.append("report.json per_class_accuracy is not a dict of accuracies")
    totals = report.get("per_class_total")
    if totals is not None and not (isinstance(totals, dict) and all(is_int(v) for v in totals.values())):
        problems.append("report.json per_class_total is not a dict of counts")
    for key in ("n_params", "n_total", "n_correct", "best_epoch"):
        if report.get(key) is not None and not is_int(report[key]):
            problems.append(f"report.json {key} is not a whole number")
    wrong = report.get("misclassified")
    if wrong is not None and not (isinstance(wrong, list) and all(_mistake_ok(m) for m in wrong)):
        problems.append("report.json misclassified is not a list of clips")
    return problems


def _mistake_ok(m: Any) -> bool:
    if not (isinstance(m, dict) and isinstance(m.get("label"), str) and isinstance(m.get("path", ""), str)):
        return False
    guesses = m.get("predicted") or []
    return isinstance(guesses, list) and all(
        isinstance(g, dict) and isinstance(g.get("label"), str) and is_number(g.get("probability"), 0.0, 1.0)
        for g in guesses
    )


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
        """The stored config dict; :class:`KwsError` when missing, damaged or not a JSON object."""
        try:
            config = read_json(self.config_path)
        except (OSError, ValueError) as exc:
            raise KwsError(f"Run {self.run_id} has no readable config.json ({exc}).") from exc
        if not isinstance(config, dict):
            raise KwsError(f"Run {self.run_id} is damaged: {config_problems(config)[0]}.")
        return config

    # -- status ---------------------------------------------------------------------------------
    def read_status(self) -> dict:
        """The status dict. Never raises: a missing/corrupt file gives ``state="unreadable"``;
        fields of the wrong type or out of range are left out (see :meth:`check_status`)."""
        return self.check_status()[0]

    def check_status(self) -> tuple[dict, list[str]]:
        """``(status, problems)``: the status with its bad fields left out, and what was wrong."""
        try:
            status = read_json(self.status_path)
            if not isinstance(status, dict) or status.get("state") not in STATES:
                state = status.get("state") if isinstance(status, dict) else status
                raise ValueError(f"unknown state {_short(state)}")
        except (OSError, ValueError) as exc:
            return {"state": UNREADABLE, "error": f"unreadable status ({type(exc).__name__}: {exc})"}, []
        return check_fields(status, STATUS_FIELDS, "status.json")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run's exclusive lock (``status.lock``) for a read-modify-write of status.json."""
        with file_lock(self._lock_path):
            yield

    def update_status(
        self, only_if: tuple[str, ...] | None = None, check: Any = None, **changes: Any
    ) -> dict:
        """Merge ``changes`` into status.json under the lock; return the new status.

        ``only_if``: apply the changes only when the current state is one of these (the status is
        returned unchanged otherwise). This is how "queued -> running" and "queued -> cancelled"
        cannot both win. ``check(status) -> bool``: a further condition, also judged under the lock.
        A change to ``None`` removes the field.
        """
        with self.locked():
            status = self.read_status()
            if only_if is not None and status.get("state") not in only_if:
                return status
            if check is not None and not check(status):
                return status
            if status.get("state") == UNREADABLE:
                status = {"run_id": self.run_id}
            status.update(changes)
            status = {k: v for k, v in status.items() if v is not None or k not in changes}
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
            text = _tail(self.metrics_path, MAX_METRICS_BYTES)
        except (OSError, ValueError):
            return iterations, epochs
        for line in text.splitlines():
            try:
                record = parse_json(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("kind") not in ("iteration", "epoch"):
                continue
            if not _metric_ok(record):  # e.g. {"kind": "iteration"} without a step or a loss
                continue
            (iterations if record["kind"] == "iteration" else epochs).append(record)
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
        return None if report_problems(report) else report

    def log(self, message: str) -> None:
        """Append a time-stamped line to log.txt."""
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"[{clock(now())}] {message}\n")

    def read_log(self, max_chars: int = 20_000) -> str:
        """The end of log.txt ('' when there is none)."""
        try:
            text = _tail(self.log_path, 4 * max_chars)
        except (OSError, ValueError):
            return ""
        return text[-max_chars:]

    def request_cancel(self) -> None:
        self.cancel_path.touch()

    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()


def _tail(path: Path, max_bytes: int) -> str:
    """The last ``max_bytes`` of a regular text file, decoded leniently."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file")
    with open(path, "rb") as f:
        if info.st_size > max_bytes:
            f.seek(info.st_size - max_bytes)
        return f.read(max_bytes).decode("utf-8", errors="replace")


def this_host() -> str:
    """The machine's name, stored next to a pid (a pid means nothing on another machine):
    ``KWS_HOST`` when set (two workers sharing a runs folder must have different names), else the
    system's host name."""
    return os.environ.get("KWS_HOST", "").strip()[:200] or socket.gethostname()


# --------------------------------------------------------------------------------------------
# Locks and secrets
# --------------------------------------------------------------------------------------------


def file_lock(path: str | os.PathLike, timeout: float = -1) -> FileLock:
    """An exclusive lock between processes on ``path`` (``filelock.FileLock``: ``flock`` on POSIX).

    Use it as a context manager (waits; ``timeout`` seconds at most, then ``filelock.Timeout``), or
    ``acquire(timeout=0)`` to try once. The lock file itself stays (empty) after the release: a
    lock is "held" when a live process holds the flock, never because the file exists. Each call
    makes a new lock object, so two callers in one process exclude each other too.
    """
    return FileLock(os.fspath(path), timeout=timeout, thread_local=False)


def lock_is_held(path: str | os.PathLike) -> bool:
    """Does a live process hold the lock on ``path`` right now? (Tries it once, releases at once.)"""
    lock = file_lock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def private_secret(path: Path, what: str, variable: str, n_bytes: int = 32) -> str:
    """The random secret kept in ``path`` (readable by its owner only), created on first use.

    Several processes asking at once get the same secret (it is written to a temporary file and
    linked into place, never replaced). :class:`KwsError` names ``variable`` as the way out when
    the file cannot be used.
    """
    for _ in range(50):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            _create_secret(path, n_bytes)
            continue
        except (OSError, ValueError) as exc:
            raise KwsError(f"Cannot read the {what} {path} ({exc}). Delete it, or set {variable}.") from exc
        if text:
            if path.stat().st_mode & 0o077:  # readable by others: whoever reads it knows the secret
                path.chmod(0o600)
            return text
        time.sleep(0.02)  # another process is writing it right now
    raise KwsError(f"The {what} {path} is empty. Delete it (a new one is made), or set {variable}.")


def _create_secret(path: Path, n_bytes: int) -> None:
    """Write a new random secret to ``path`` with 0600 permissions, unless one appears meanwhile."""
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(n_bytes) + "\n")
        try:
            os.link(temp, path)  # atomic, and never replaces a secret another process made first
        except FileExistsError:
            pass
    finally:
        temp.unlink(missing_ok=True)


def pid_alive(pid: int | None) -> bool:
    """Is process ``pid`` running on this machine? (Zombies, exited but not yet reaped, count as dead.)"""
    if not _pid(pid):
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
        return int(Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError, TypeError):
        return None


def process_command(pid: int) -> str | None:
    """The command line of process ``pid`` (Linux: ``/proc/<pid>/cmdline``), or ``None``."""
    try:
        return Path(f"/proc/{int(pid)}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (OSError, ValueError, TypeError):
        return None


def is_run_process(status: dict) -> bool:
    """Is ``status``'s pid, on this machine, *the* process that wrote it: alive, started at the
    stored time, and a kwscore program? (Strict: what may be signalled. Unknown means no.)"""
    pid = status.get("pid")
    if status.get("host") != this_host() or not pid_alive(pid):
        return False
    started = status.get("pid_start")
    if started is None or process_start(pid) != started:
        return False
    return "kwscore" in (process_command(pid) or "")
