"""Serving a class: the teacher's limits on students' runs, and the teacher key.

One server (or several workers sharing one runs folder) trains the runs of a whole class. Each run
records its ``owner`` (the name the student gave, :attr:`kwscore.recipes.RunConfig.owner`); the
teacher sets limits that every student's launch is checked against (:func:`check_launch`):

- how many runs a student may have queued or training at once (default 2),
- at most how many epochs / minutes per run,
- which models and which datasets students may use,
- how many runs train at once on a machine (``concurrency``; default cores − 1, at least 1),
- whether the worksheet hides its answers.

The limits live in ``<runs folder>/class.json`` so every worker on every machine that mounts the
runs folder sees the same ones. A damaged file means the defaults (and a warning), never a crash.

The teacher is whoever knows the teacher key: ``KWS_TEACHER_KEY``, else a random key generated once
and kept in ``~/.kws-studio/teacher.key`` (readable by its owner only, next to the queue secret).
The teacher (and the operator at the command line, owner ``""``) is never limited.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kwscore import paths
from kwscore.errors import KwsError, check_known_keys

log = logging.getLogger("kwscore.classroom")

CLASS_FILE = "class.json"
TEACHER_KEY_FILE = "teacher.key"
#: Longest student name kept (a name is a label, not a text).
MAX_OWNER_CHARS = 60


@dataclass(frozen=True)
class ClassLimits:
    """What students may launch. ``None`` means "no limit" (all models, all datasets...)."""

    max_queued_per_student: int = 2  #: runs queued or training per student; an experiment counts once
    max_epochs: int | None = None
    max_minutes: float | None = None
    models: tuple[str, ...] | None = None
    datasets: tuple[str, ...] | None = None  #: dataset folder names (the last part of the path)
    concurrency: int | None = None  #: runs at once per machine; None = max(1, cores - 1)
    hide_answers: bool = False  #: the worksheet hides its answers

    def problems(self) -> list[str]:
        """Every wrong field, each as a sentence (``[]``: all good)."""
        out = []

        def whole(value, low):
            return isinstance(value, int) and not isinstance(value, bool) and value >= low

        if not whole(self.max_queued_per_student, 1):
            out.append(f"max_queued_per_student must be a whole number ≥ 1, got {self.max_queued_per_student!r}.")
        if self.max_epochs is not None and not whole(self.max_epochs, 1):
            out.append(f"max_epochs must be a whole number ≥ 1 or none, got {self.max_epochs!r}.")
        if self.max_minutes is not None and not (
            isinstance(self.max_minutes, int | float) and not isinstance(self.max_minutes, bool)
            and 0 < self.max_minutes <= 10_000
        ):  # fmt: skip
            out.append(f"max_minutes must be a number of minutes > 0 or none, got {self.max_minutes!r}.")
        for name in ("models", "datasets"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, tuple) and all(isinstance(v, str) and v.strip() for v in value)
            ):
                out.append(f"{name} must be a list of names or none (all), got {value!r}.")
        if self.concurrency is not None and not (whole(self.concurrency, 1) and self.concurrency <= 64):
            out.append(f"concurrency must be a whole number from 1 to 64 or none, got {self.concurrency!r}.")
        if not isinstance(self.hide_answers, bool):
            out.append(f"hide_answers must be true or false, got {self.hide_answers!r}.")
        return out

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: Any) -> ClassLimits:
        """Inverse of :meth:`to_dict`; :class:`KwsError` for unknown keys or wrong values."""
        if not isinstance(data, dict):
            raise KwsError(f"The class limits are a JSON object, got {type(data).__name__}.")
        check_known_keys(cls, data, "class limit")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        limits = cls(**data)
        problems = limits.problems()
        if problems:
            raise KwsError(" ".join(problems))
        return limits


def class_file(runs_dir: str | os.PathLike | None = None) -> Path:
    """``<runs folder>/class.json``."""
    root = Path(runs_dir).expanduser() if runs_dir else paths.runs_dir()
    return root / CLASS_FILE


def load_limits(runs_dir: str | os.PathLike | None = None) -> ClassLimits:
    """The class limits of this runs folder; the defaults when there is no class.json, and the
    defaults plus a logged warning when it is damaged (never an exception)."""
    from kwscore.runfiles import read_json

    path = class_file(runs_dir)
    try:
        return ClassLimits.from_dict(read_json(path, max_bytes=1_000_000))
    except FileNotFoundError:
        return ClassLimits()
    except (OSError, ValueError, TypeError, KwsError) as exc:
        try:
            info = path.stat()
            seen = (str(path), info.st_mtime_ns, info.st_size)
        except OSError:
            seen = (str(path), None, None)
        if seen not in _WARNED:  # once per version of the file, not on every page rerun
            _WARNED.add(seen)
            log.warning("%s is not valid (%s): using the default class limits", path, exc)
        return ClassLimits()


_WARNED: set[tuple[str, int | None, int | None]] = set()


def save_limits(limits: ClassLimits, runs_dir: str | os.PathLike | None = None) -> Path:
    """Write the limits to ``<runs folder>/class.json`` (atomically); :class:`KwsError` if invalid."""
    from kwscore.runfiles import write_json

    if not isinstance(limits, ClassLimits):
        raise KwsError(f"Class limits must be a ClassLimits, got {type(limits).__name__}.")
    problems = limits.problems()
    if problems:
        raise KwsError(" ".join(problems))
    path = class_file(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, limits.to_dict())


def default_concurrency(runs_dir: str | os.PathLike | None = None) -> int:
    """Runs trained at once by one worker: ``KWS_WORKERS``, else the class limit, else
    ``max(1, cores - 1)`` (one core stays free for the web server)."""
    env = os.environ.get("KWS_WORKERS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if 1 <= value <= 64:
            return value
        log.warning("KWS_WORKERS=%r is not a whole number from 1 to 64: ignored", env)
    limit = load_limits(runs_dir).concurrency
    if limit:
        return limit
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


# ============================================================================================
# The teacher key
# ============================================================================================


def teacher_key_path() -> Path:
    """``~/.kws-studio/teacher.key`` (``KWS_HOME``), next to the queue secret."""
    return Path(os.environ.get("KWS_HOME") or paths.HOME).expanduser() / TEACHER_KEY_FILE


def teacher_key() -> str:
    """The teacher key: ``KWS_TEACHER_KEY``, else the key in :func:`teacher_key_path`, generated
    on first use (random, mode 0600; several processes starting at once agree on one key)."""
    key = os.environ.get("KWS_TEACHER_KEY", "").strip()
    if key:
        return key
    from kwscore.runfiles import private_secret

    return private_secret(teacher_key_path(), what="teacher key", variable="KWS_TEACHER_KEY", n_bytes=12)


def is_teacher_key(text: Any) -> bool:
    """Is ``text`` the teacher key? (Constant-time comparison; anything not a text is not.)"""
    if not isinstance(text, str) or not text.strip():
        return False
    return hmac.compare_digest(text.strip().encode(), teacher_key().encode())


# ============================================================================================
# Checking a launch against the limits
# ============================================================================================


def check_owner(owner: Any) -> str:
    """A student's name as stored with a run: trimmed; :class:`KwsError` when it is not a short text."""
    if not isinstance(owner, str):
        raise KwsError(f"A run's owner is a name (a text), got {type(owner).__name__}.")
    owner = " ".join(owner.split())
    if len(owner) > MAX_OWNER_CHARS:
        raise KwsError(f"The name {owner[:20]!r}… is too long: at most {MAX_OWNER_CHARS} characters.")
    if any(not ch.isprintable() for ch in owner):
        raise KwsError("A name may not contain control characters.")
    return owner


def apply_limits(config, runs_dir: str | os.PathLike | None = None, *, teacher: bool = False):
    """``config`` with the class's time limit filled in for a student's run that sets none."""
    owner = getattr(config, "owner", "") or ""
    if teacher or not isinstance(owner, str) or not owner.strip() or config.max_minutes is not None:
        return config
    limit = load_limits(runs_dir).max_minutes
    return config if limit is None else dataclasses.replace(config, max_minutes=float(limit))


def check_launch(config, runs_dir: str | os.PathLike | None = None, *, teacher: bool = False) -> None:
    """Raise :class:`KwsError` with a one-line message when ``config`` (a RunConfig) breaks a class
    limit for its owner. The teacher, and runs without an owner (the operator), are never limited."""
    owner = check_owner(getattr(config, "owner", "") or "")
    if teacher or not owner:
        return
    limits = load_limits(runs_dir)
    if limits.models is not None and config.model not in limits.models:
        allowed = ", ".join(limits.models) or "none"
        raise KwsError(f"The teacher allows these models in this class: {allowed}. Choose one of them.")
    if limits.datasets is not None:
        names = [Path(str(root)).name for root in config.data_roots]
        refused = [n for n in names if n not in limits.datasets]
        if refused:
            allowed = ", ".join(limits.datasets) or "none"
            raise KwsError(f"The dataset {refused[0]} is not allowed in this class (allowed: {allowed}).")
    if limits.max_epochs is not None and isinstance(config.epochs, int) and config.epochs > limits.max_epochs:
        raise KwsError(f"At most {limits.max_epochs} epochs per run in this class: lower the epochs.")
    if limits.max_minutes is not None and config.max_minutes is not None and config.max_minutes > limits.max_minutes:
        raise KwsError(
            f"At most {limits.max_minutes:g} minutes per run in this class: set a time limit of "
            f"{limits.max_minutes:g} minutes or less."
        )
    from kwscore import jobs

    # What a student has waiting: each run on its own, an experiment (8 runs, say) once — the fair queue
    # keeps one student's experiment from blocking the others, so it need not be refused.
    mine = {
        (i.config or {}).get("experiment") or i.run_id for i in jobs.list_runs(runs_dir)
        if i.state in ("queued", "running") and (i.owner or "") == owner
    }  # fmt: skip
    joining = bool(getattr(config, "experiment", "")) and config.experiment in mine
    if not joining and len(mine) >= limits.max_queued_per_student:
        raise KwsError(
            f"{owner} already has {len(mine)} run(s) or experiment(s) queued or training; the class allows "
            f"{limits.max_queued_per_student} at a time. Wait for one to finish or cancel one."
        )


__all__ = [
    "CLASS_FILE", "ClassLimits", "apply_limits", "check_launch", "check_owner", "class_file", "default_concurrency",
    "is_teacher_key", "load_limits", "save_limits", "teacher_key", "teacher_key_path",
]  # fmt: skip
