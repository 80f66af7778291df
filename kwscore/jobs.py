"""Background runs: one OS process per run, a queue in front of them, files in between.

The dashboard must stay responsive while a model trains for minutes, and a training must survive
the dashboard being closed. So a run is never a thread inside Streamlit; it is its own process::

    launch(config) ──> runs/<run_id>/config.json + status.json (queued, owner in config.json)
         │              and a message "a slot is wanted" in the queue (Huey, runs/queue.sqlite3)
         ▼
    worker process (``kwscore worker``, started detached by ensure_worker; one per machine)
         │  N threads = N runs at a time (default cores - 1, at least 1); a thread that gets a
         │  message takes the next run of the fair order (queue_order: round-robin across
         │  owners) under runs/claim.lock: status.json gets claimed_by = "<host>/<worker pid>"
         ▼
    supervisor thread ──> child process ``python -m kwscore.runner runs/<run_id>`` (nice +10)
                          writes status.json (running, pid, heartbeat every 2 s), metrics.jsonl,
                          log.txt, best.pt / last.pt, report.json (see kwscore.runfiles)

status.json is the one record of a run's state: a queue message names no run that must still be
checked against it (a message that finds nothing queued does nothing), and a worker also looks for
queued runs no message will bring (every :data:`SWEEP_S`).

Everybody else only *reads* those files (:func:`list_runs`, :func:`read_metrics`, ...), so a page
can poll a run once a second at no cost, and everything survives a restart: the queue is a file,
the worker is detached, the run writes its own state.

Next to the run folders, the runs folder holds ``queue.sqlite3`` (the queue), ``worker.json`` (pid,
host, start time and concurrency of the worker), ``worker.lock`` (locked while a worker lives),
``worker.log`` (with ``KWS_HOST`` set: ``worker-<host>.json`` ..., one per machine), ``claim.lock``,
``launch.lock`` and ``class.json`` (the class limits, :mod:`kwscore.classroom`).

The queue is `Huey <https://huey.readthedocs.io>`_ with its SQLite storage: no server to install.
Set ``KWS_QUEUE_URL=redis://:password@host:6379/0`` to use Redis instead (``RedisHuey``, needs the
``redis`` package) and run ``kwscore worker`` on other machines that mount the same runs folder.
Messages are JSON signed with the queue secret (:func:`queue_secret`), never pickles: anything
else found in the queue is logged and dropped, never run.

Failure handling:

- **Cancel** a queued run: its state becomes ``cancelled`` (no worker takes a run that is not
  queued). Only the owner or the teacher may (:func:`can_manage`). Cancel a running run: a ``cancel`` flag file makes it stop at the next
  iteration; if it does not within :data:`CANCEL_GRACE_S`, the supervisor sends SIGTERM, then
  SIGKILL.
- **Crash or kill**: if the run process dies without writing a final state, the supervisor marks it
  ``failed``. If the supervisor died too (worker killed, machine restarted), :func:`refresh_status`
  notices that the heartbeat is older than :data:`HEARTBEAT_TIMEOUT_S` and the pid is gone, and
  marks it failed. Its metrics and checkpoints stay readable. A run of another machine is judged
  by its heartbeat alone (a pid means nothing there): no heartbeat for HEARTBEAT_TIMEOUT_S, failed.
- **A worker dies** after taking a run but before starting it: the run goes back to the queue
  (:data:`MAX_REQUEUES` times, then it fails with the reason).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kwscore import classroom, paths
from kwscore.errors import KwsError
from kwscore.runfiles import (
    FINAL_STATES,
    RUN_ID_RE,
    UNREADABLE,
    RunFiles,
    check_run_id,
    clock,
    config_problems,
    file_lock,
    is_run_process,
    lock_is_held,
    now,
    pid_alive,
    private_secret,
    process_start,
    read_json,
    this_host,
    write_json,
)

if TYPE_CHECKING:  # recipes imports torch; the worker and `kwscore runs` should not have to
    from huey import Huey

    from kwscore.recipes import RunConfig

QUEUE_FILE = "queue.sqlite3"
#: The worker of this machine: its lock (held while it lives), its info and its log. With
#: ``KWS_HOST`` set they are ``worker-<host>.lock`` ... so workers of several machines can share
#: one runs folder (:func:`worker_path`).
WORKER_LOCK = "worker.lock"
WORKER_INFO = "worker.json"
WORKER_LOG = "worker.log"
#: How long a starting worker tries for its lock: anyone asking whether a worker is alive
#: (:func:`worker_pid`) holds it for an instant; another worker holds it for ever.
LOCK_WAIT_S = 2.0
#: Held while a worker takes the next run from the queue (one claim at a time, every machine).
CLAIM_LOCK = "claim.lock"
#: ``claimed_by`` of a run that a command trains itself (``kwscore train`` in the foreground).
FOREGROUND = " (foreground)"
#: Held while a student's launch is checked against the class limits and created.
LAUNCH_LOCK = "launch.lock"


def _env_number(name: str, default: float, low: float, high: float) -> float:
    """A number from the environment, or ``default`` when unset, not a number or out of range."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if low <= value <= high else default


#: A running run whose heartbeat is older than this (seconds) and whose process is gone has died
#: (on another machine: whose heartbeat is older than this, whatever its pid).
HEARTBEAT_TIMEOUT_S = _env_number("KWS_HEARTBEAT_TIMEOUT", 20.0, 1.0, 86_400.0)
#: A run taken by a worker that stopped before starting it goes back to the queue this many
#: times; then it fails (with the reason).
MAX_REQUEUES = 3
#: How often an idle worker looks for queued runs nobody sent it a message for (seconds).
SWEEP_S = 2.0
#: After a cancel, how long a running run may take to stop by itself before SIGTERM (then SIGKILL).
CANCEL_GRACE_S = 10.0
KILL_GRACE_S = 5.0
#: Runs trained at the same time by one worker, at most. The default is
#: :func:`kwscore.classroom.default_concurrency`: KWS_WORKERS, else the class limit, else cores - 1.
MAX_CONCURRENCY = 64
TASK_NAME = "kwscore.run"
#: Before anything is known about a model here: seconds per epoch and per run (start, data, test).
FALLBACK_EPOCH_S = 5.0
RUN_OVERHEAD_S = 15.0

log = logging.getLogger("kwscore.jobs")

# ============================================================================================
# Where runs live
# ============================================================================================


def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder (``runs_dir``, else ``kwscore.paths.runs_dir()``), created if needed."""
    root = Path(runs_dir).expanduser() if runs_dir else paths.runs_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, no permission, a name too long...
        raise KwsError(f"Cannot use {str(root)[:200]} as the runs folder: {exc.strerror or exc}.") from exc
    return root


def new_run_id(model: str) -> str:
    """``"20261123-210930-m5-a1b2c3"``: sortable by time, readable, unique."""
    return check_run_id(f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{secrets.token_hex(3)}")


def run_dir(run_id: str, runs_dir: str | os.PathLike | None = None) -> Path:
    """The folder of run ``run_id``; a bad id (path separators, ``..``) is refused with KwsError."""
    return runs_root(runs_dir) / check_run_id(run_id)


def _files(run: str | os.PathLike | RunInfo, runs_dir=None) -> RunFiles:
    """A run given as its id (str), its folder (Path) or a :class:`RunInfo`."""
    if isinstance(run, RunInfo):
        return RunFiles(run.path)
    if isinstance(run, Path):
        return RunFiles(run)
    return RunFiles(run_dir(run, runs_dir))


def _existing(run, runs_dir=None) -> RunFiles:
    files = _files(run, runs_dir)
    if not files.exists():
        raise KwsError(
            f"There is no run {files.run_id} in {files.dir.parent}. `kwscore runs` lists the runs."
        )
    return files


# ============================================================================================
# Status: reading it, and noticing dead runs
# ============================================================================================


def _is_remote(status: dict) -> bool:
    """Does the run (or its claim) belong to another machine? (A pid means nothing there.)"""
    return status.get("host") not in (None, this_host())


def _is_our_process(status: dict) -> bool:
    """Is the run's process, on this machine, still alive? (False for another machine's run.)"""
    if _is_remote(status):
        return False
    pid = status.get("pid")
    if not pid_alive(pid):
        return False
    started = status.get("pid_start")  # a pid reused by another program after a restart is not ours
    return started is None or process_start(pid) in (None, started)


def stopped_message(when: float | None, host: str | None = None) -> str:
    if host and host != this_host():
        return (f"no heartbeat from host {host} since {clock(when)}: its training process (or the machine) "
                "stopped; metrics up to then are kept")  # fmt: skip
    return f"the training process stopped (killed or crashed) at {clock(when)}; metrics up to then are kept"


def refresh_status(run, runs_dir=None, timeout: float | None = None) -> dict:
    """The run's status, *after marking it* if it is dead — this may write status.json:

    - a "running" run whose heartbeat is older than ``timeout`` seconds (default
      :data:`HEARTBEAT_TIMEOUT_S`) is marked failed when its process is gone (a run of another
      host: by its heartbeat alone, never by a local pid);
    - a queued run taken by a worker that stopped before starting it goes back to the queue
      (after :data:`MAX_REQUEUES` times: failed, with the reason).

    ``RunFiles.read_status`` only reads.
    """
    files = _files(run, runs_dir)
    return _refresh(files, files.read_status(), timeout)


def _refresh(files: RunFiles, status: dict, timeout: float | None = None) -> dict:
    timeout = HEARTBEAT_TIMEOUT_S if timeout is None else timeout
    if status["state"] == "queued" and status.get("claimed_by"):
        return _refresh_claim(files, status, timeout)
    if status["state"] != "running":
        return status
    beat = status.get("heartbeat") or status.get("started_at") or 0.0
    if now() - beat <= timeout or _is_our_process(status):
        return status
    return files.update_status(
        only_if=("running",), state="failed", ended_at=now(), error=stopped_message(beat, status.get("host"))
    )


def _claimer_alive(status: dict, timeout: float) -> bool:
    """Is the worker that took this queued run still alive? (Here: its pid; elsewhere: the heartbeat
    its supervisor writes while it starts the run.)"""
    beat = status.get("heartbeat") or status.get("claimed_at") or 0.0
    if now() - beat <= timeout:
        return True
    return not _is_remote(status) and pid_alive(status.get("supervisor_pid"))


def _refresh_claim(files: RunFiles, status: dict, timeout: float) -> dict:
    if _claimer_alive(status, timeout):
        return status
    who = status.get("claimed_by") or "?"
    requeues = int(status.get("requeues") or 0) + 1

    changed = []

    def still_claimed(current: dict) -> bool:
        ok = current.get("claimed_by") == who and not _claimer_alive(current, timeout)
        changed.append(ok)
        return ok

    if who.endswith(FOREGROUND):
        new = files.update_status(
            only_if=("queued",), check=still_claimed, state="failed", ended_at=now(),
            error=f"the command that was to train it in the foreground ({who.removesuffix(FOREGROUND)}) stopped first",
        )  # fmt: skip
    elif requeues > MAX_REQUEUES:
        new = files.update_status(
            only_if=("queued",), check=still_claimed, state="failed", ended_at=now(),
            error=f"worker {who} stopped before starting this run, {requeues} times: not retried again",
        )  # fmt: skip
    else:
        new = files.update_status(
            only_if=("queued",), check=still_claimed, claimed_by=None, claimed_at=None, heartbeat=None,
            host=None, supervisor_pid=None, requeues=requeues,
        )  # fmt: skip
    if changed and changed[-1]:
        try:
            files.log(f"worker {who} stopped before starting this run: "
                      + ("failed" if new["state"] == "failed" else "back in the queue"))  # fmt: skip
        except OSError:
            pass
    return new


def read_metrics(run, runs_dir=None) -> tuple[list[dict], list[dict]]:
    """``(iterations, epochs)`` from metrics.jsonl (bad lines skipped; empty lists if none yet).

    Iteration records: ``step, epoch, loss, lr, elapsed``. Epoch records: ``epoch, step,
    train_loss, val_accuracy, val_loss, lr, elapsed, samples_per_s, best``.
    """
    return _files(run, runs_dir).read_metrics()


def read_report(run, runs_dir=None) -> dict | None:
    """report.json of a finished run (``None`` before the end or when unreadable)."""
    return _files(run, runs_dir).read_report()


def read_log(run, runs_dir=None, max_chars: int = 20_000) -> str:
    """The end of the run's log.txt."""
    return _files(run, runs_dir).read_log(max_chars)


def progress(run, runs_dir=None) -> tuple[float, float | None]:
    """``(fraction done in [0, 1], ETA in seconds or None)`` from the status' step counter."""
    return _progress(refresh_status(run, runs_dir))


def _progress(status: dict) -> tuple[float, float | None]:
    state = status["state"]
    if state == "succeeded":
        return 1.0, 0.0
    total, step = status.get("total_steps") or 0, status.get("step") or 0
    fraction = min(1.0, step / total) if total else 0.0
    if state != "running":
        return fraction, None
    started = status.get("training_started_at")
    elapsed = now() - started if started else 0.0
    budget = status.get("budget_s")
    if budget:
        fraction = max(fraction, min(1.0, (now() - (status.get("started_at") or now())) / budget))
    if fraction <= 0 or not started:
        return fraction, None
    return fraction, max(0.0, elapsed * (1.0 - fraction) / fraction)


# ============================================================================================
# Listing runs
# ============================================================================================


@dataclass
class RunInfo:
    """One row of the runs table (everything a page needs without opening more files)."""

    run_id: str
    path: Path
    state: str
    owner: str = ""  #: the student who launched it ("" = the operator, the CLI, the teacher)
    host: str | None = None  #: the machine that runs (ran, or took) it
    model: str | None = None
    data: str | None = None
    commands: Any = None
    epochs: int | None = None
    epoch: int | None = None
    best_val_accuracy: float | None = None
    test_accuracy: float | None = None
    created: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    message: str | None = None
    config: dict | None = None
    status: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (to now while running)."""
        if not self.started_at:
            return None
        return (self.ended_at or now()) - self.started_at

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path), "duration_s": self.duration_s}


def run_info(run, runs_dir=None) -> RunInfo:
    """A :class:`RunInfo` for one run; never raises (damaged runs come back with ``error`` set).

    Every field is checked (:mod:`kwscore.runfiles`): a status field of the wrong type or out of
    range is left out, a config.json that is not a proper config is not used, and ``error`` then
    says ``"damaged: <what>"``.
    """
    files = _files(run, runs_dir)
    try:
        return _run_info(files)
    except Exception as exc:  # noqa: BLE001 - one damaged folder must never break a listing
        return RunInfo(files.run_id, files.dir, UNREADABLE, error=f"damaged: {type(exc).__name__}: {exc}")


def _run_info(files: RunFiles) -> RunInfo:
    status, damage = files.check_status()
    status = _refresh(files, status)
    info = RunInfo(files.run_id, files.dir, status["state"], status=status, error=status.get("error"))
    try:
        config = files.read_config()
        damage += config_problems(config)
    except KwsError as exc:
        damage.append(str(exc).removeprefix(f"Run {files.run_id} is damaged: "))
        config = {}
    if damage:
        info.error = "damaged: " + "; ".join(damage) + (f" ({info.error})" if info.error else "")
    if config_problems(config):
        config = {}
    info.config = config or None
    info.model, info.data, info.commands = config.get("model"), config.get("data"), config.get("commands")
    owner = config.get("owner")
    info.owner = owner if isinstance(owner, str) else ""
    info.host = status.get("host")
    info.epochs = status.get("epochs") or config.get("epochs")
    for key in ("epoch", "best_val_accuracy", "test_accuracy", "started_at", "ended_at", "message"):
        setattr(info, key, status.get(key))
    info.created = status.get("created") or _mtime(files.dir)
    return info


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def list_runs(runs_dir=None) -> list[RunInfo]:
    """Every run in the runs folder, newest first. Damaged runs are listed with an error."""
    root = runs_root(runs_dir)
    infos = [run_info(p) for p in root.iterdir() if RUN_ID_RE.match(p.name) and _is_dir(p)]
    return sorted(infos, key=lambda r: (r.created or 0.0, r.run_id), reverse=True)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. a symlink loop
        return False


# ============================================================================================
# Launching, cancelling, deleting
# ============================================================================================


def create_run(config: RunConfig, runs_dir=None, *, foreground: bool = False) -> str:
    """Make the run's folder with config.json and a "queued" status; return the new run id.

    A queued run is run by a worker (status.json alone says so). ``foreground=True``: this process
    trains it itself (``kwscore train``), so it is created already taken by this process and no
    worker starts it; if this process dies before the run starts, the run fails.

    Everything is checked first, so that a mistake leaves no run folder behind: the config
    (:meth:`RunConfig.validate`) and its words against the dataset's word folders. Dataset paths are
    stored absolute: the run may start from another working directory (the worker's).
    """
    from dataclasses import replace

    config = _absolute_data(config).validate()
    config = replace(config, owner=classroom.check_owner(config.owner))
    _check_commands(config)
    run_id = new_run_id(config.model)
    files = RunFiles(run_dir(run_id, runs_dir))
    files.dir.mkdir(parents=False)
    files.write_config(config.to_dict())
    taken = {"claimed_by": f"{worker_name()}{FOREGROUND}", "claimed_at": now(), "heartbeat": now(),
             "host": this_host(), "supervisor_pid": os.getpid()} if foreground else {}  # fmt: skip
    write_json(files.status_path, {
        "run_id": run_id, "state": "queued", "created": now(), "epochs": config.epochs,
        "budget_s": 60.0 * config.max_minutes if config.max_minutes else None, **taken,
    })  # fmt: skip
    files.log(f"created {run_id}: {config.model} on {config.data}")
    return run_id


def _absolute_data(config: RunConfig) -> RunConfig:
    from dataclasses import replace

    def absolute(folder):
        return os.path.abspath(os.path.expanduser(folder)) if isinstance(folder, str) and folder.strip() else folder

    mix = [absolute(m) for m in config.mix] if isinstance(config.mix, list | tuple) else config.mix
    return replace(config, data=absolute(config.data), mix=mix)


def _check_commands(config: RunConfig) -> None:
    """The run's words must be word folders of its datasets (as :class:`SpeechCommands` will ask)."""
    from kwscore.data.dataset import resolve_commands
    from kwscore.data.layout import word_folders

    resolve_commands(config.commands, sorted(set().union(*map(word_folders, config.data_roots))))


def launch(config: RunConfig, runs_dir=None, start_worker: bool = True, *, teacher: bool = False) -> str:
    """Create a run, put it in the queue and make sure a worker will pick it up. Returns its id.

    A student's run (``config.owner`` set, ``teacher`` False) is checked against the class limits
    first (:func:`kwscore.classroom.check_launch`; the class's time limit is filled in when the run
    sets none). If the run cannot be queued (e.g. ``KWS_QUEUE_URL`` names a Redis server that does
    not answer), its folder is removed again and :class:`KwsError` says why.
    """
    from dataclasses import replace

    root = runs_root(runs_dir)
    _queue(root)  # a misconfigured queue fails here, before any folder exists
    config = replace(config, owner=classroom.check_owner(config.owner))
    config = classroom.apply_limits(config, root, teacher=teacher)
    with file_lock(root / LAUNCH_LOCK, timeout=60):  # two launches of one student: one check at a time
        classroom.check_launch(config, root, teacher=teacher)
        run_id = create_run(config, root)
    try:
        enqueue(run_id, root)
    except Exception as exc:
        shutil.rmtree(run_dir(run_id, root), ignore_errors=True)
        if isinstance(exc, KwsError):
            raise
        raise KwsError(f"Could not queue the run: the queue ({_queue_name(root)}) failed: {exc}") from exc
    if start_worker:
        ensure_worker(root)
    return run_id


def _queue_name(root: Path) -> str:
    url = os.environ.get("KWS_QUEUE_URL", "").strip()
    return f"KWS_QUEUE_URL={_hide_password(url)}" if url else str(root / QUEUE_FILE)


def _hide_password(url: str) -> str:
    """``redis://:secret@host:6379/0`` -> ``redis://:***@host:6379/0`` (for messages and logs)."""
    import re

    return re.sub(r"(://[^/@]*:)[^/@]*@", r"\1***@", url)


def enqueue(run_id: str, runs_dir=None) -> str:
    """Wake a worker for the queued run ``run_id``: put a message in the queue; returns its id.

    The message is a *slot token*: the worker thread that gets it takes the next run in
    :func:`queue_order` (fair across owners), which need not be ``run_id``, and a token that finds
    nothing queued does nothing. status.json alone says whether a run is queued.
    """
    root = runs_root(runs_dir)
    huey, task_wrapper = _queue(root)
    task = task_wrapper.s(run_id, str(root))
    huey.enqueue(task)
    return task.id


# ============================================================================================
# Who may do what
# ============================================================================================


def can_manage(info: RunInfo, user: str | None, teacher: bool = False) -> bool:
    """May ``user`` cancel or delete the run? The teacher may, the operator (``user`` None: the
    command line, a dashboard without names) may, and a student may for their own runs."""
    if teacher or user is None:
        return True
    owner = (info.owner or "").strip()
    return bool(owner) and isinstance(user, str) and " ".join(user.split()) == owner


def _check_manage(files: RunFiles, user: str | None, teacher: bool, what: str) -> RunInfo:
    info = _run_info(files)
    if not can_manage(info, user, teacher):
        who = f"{info.owner} or the teacher" if info.owner else "the teacher"
        raise KwsError(f"Only {who} can {what} this run.")
    return info


def cancel(run, runs_dir=None, wait_s: float = 0.0, *, user: str | None = None, teacher: bool = False) -> str:
    """Ask a run to stop; returns its state afterwards.

    Queued: cancelled at once (its status says so; a worker never starts a run that is not queued).
    Running: the ``cancel`` flag makes it stop at the next iteration, on whatever machine it runs.
    With ``wait_s`` > 0, wait that long for it to stop, then SIGTERM it if it runs here (useful for
    foreground runs, which have no supervisor to do it). ``user``/``teacher``: see :func:`can_manage`.
    """
    files = _existing(run, runs_dir)
    _check_manage(files, user, teacher, "cancel")
    files.request_cancel()
    status = files.update_status(
        only_if=("queued",), state="cancelled", ended_at=now(), message="cancelled before it started"
    )
    deadline = time.monotonic() + wait_s
    while status["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = refresh_status(files.dir)
    if wait_s > 0 and status["state"] == "running":
        if is_run_process(status):  # never a pid that now belongs to another program
            _signal(status.get("pid"), signal.SIGTERM)
        elif status.get("host") == this_host() and pid_alive(status.get("pid")):
            log.warning(
                "run %s: not signalling pid %s: it is not the run's process (other start time or command)",
                files.run_id, status.get("pid"),
            )  # fmt: skip
    return status["state"]


def delete(run, runs_dir=None, *, user: str | None = None, teacher: bool = False) -> None:
    """Delete a run's folder. Refused while it is running (cancel it first)."""
    files = _existing(run, runs_dir)
    _check_manage(files, user, teacher, "delete")
    status = refresh_status(files.dir)
    if status["state"] == "running":
        raise KwsError(f"Run {files.run_id} is still running: cancel it first, then delete it.")
    if status["state"] == "queued":
        cancel(files.dir)
    shutil.rmtree(files.dir)


def clear_runs(runs_dir=None, *, owner: str | None = None, wait_s: float = CANCEL_GRACE_S + KILL_GRACE_S) -> int:
    """The teacher's "clear the class's runs": cancel, then delete, every student's run (``owner``
    None: every run that has an owner; else that student's runs). Runs of the operator (no owner)
    are never touched, nor anything outside the run folders. Running runs get ``wait_s`` seconds
    to stop; one that has not stopped by then (e.g. on a machine that no longer answers) is left.
    Returns how many runs were deleted."""
    root = runs_root(runs_dir)
    wanted = [
        i for i in list_runs(root)
        if (i.owner if owner is None else i.owner == " ".join(str(owner).split())) and i.owner
    ]  # fmt: skip
    for info in wanted:
        if info.state in ("queued", "running"):
            cancel(info.path, teacher=True)
    deadline = time.monotonic() + wait_s
    deleted = 0
    for info in wanted:
        while refresh_status(info.path)["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            delete(info.path, teacher=True)
            deleted += 1
        except KwsError as exc:  # still running, or gone meanwhile
            log.warning("clear_runs: %s", exc)
        except OSError as exc:
            log.warning("clear_runs: could not delete %s: %s", info.run_id, exc)
    return deleted


# ============================================================================================
# The queue order: fair across owners
# ============================================================================================


@dataclass(frozen=True)
class QueueEntry:
    """A queued run, where it stands: ``position`` 1 = next to start; ``eta_s``: seconds until it
    should start (``None``: unknown); ``run_s``: how long it should take once started."""

    run_id: str
    owner: str
    position: int
    eta_s: float | None
    run_s: float | None = None


def _fair_order(queued: list[RunInfo], active: list[RunInfo]) -> list[RunInfo]:
    """Round-robin across owners: each turn goes to the owner with the fewest runs training (or
    taken), then the one served longest ago, then the one waiting longest; each owner's own runs
    in launch order. So one student's 8 runs never hold back another student's one run."""
    by_owner: dict[str, list[RunInfo]] = {}
    for info in sorted(queued, key=lambda i: (i.created or 0.0, i.run_id)):
        by_owner.setdefault(info.owner or "", []).append(info)
    busy = {owner: 0 for owner in by_owner}
    served = {owner: 0.0 for owner in by_owner}
    for info in active:
        owner = info.owner or ""
        if owner in by_owner:
            busy[owner] += 1
            served[owner] = max(served[owner], info.started_at or info.created or 0.0)
    order, turn = [], now()
    while by_owner:
        owner = min(by_owner, key=lambda o: (busy[o], served[o], by_owner[o][0].created or 0.0, o))
        order.append(by_owner[owner].pop(0))
        busy[owner] += 1
        turn += 1e-3
        served[owner] = turn
        if not by_owner[owner]:
            del by_owner[owner]
    return order


def _is_claimed(info: RunInfo) -> bool:
    return info.state == "queued" and bool((info.status or {}).get("claimed_by"))


def _waiting(infos: list[RunInfo]) -> tuple[list[RunInfo], list[RunInfo]]:
    """``(queued runs no worker has taken yet, runs training or taken)``. A queued run with a damaged
    config.json is queued too: its run process says what is wrong, in its status."""
    queued = [i for i in infos if i.state == "queued" and not _is_claimed(i)]
    active = [i for i in infos if i.state == "running" or _is_claimed(i)]
    return queued, active


def run_seconds(config: dict, infos: list[RunInfo]) -> float:
    """How long a run of ``config`` (a config dict) should take here: the measured seconds per epoch
    of finished runs of its model (median), else :data:`FALLBACK_EPOCH_S`; capped by its time limit."""
    import statistics

    per_epoch = [
        (i.ended_at - i.started_at) / i.epoch
        for i in infos
        if i.state == "succeeded" and i.model == config.get("model") and i.epoch and i.started_at and i.ended_at
        and i.ended_at > i.started_at
    ]  # fmt: skip
    epochs = config.get("epochs") if isinstance(config.get("epochs"), int) else 1
    seconds = (statistics.median(per_epoch) * epochs) if per_epoch else FALLBACK_EPOCH_S * epochs + RUN_OVERHEAD_S
    limit = config.get("max_minutes")
    if isinstance(limit, int | float) and limit > 0:
        seconds = min(seconds, 60.0 * limit + RUN_OVERHEAD_S)
    return float(seconds)


def queue_order(runs_dir=None, infos: list[RunInfo] | None = None, concurrency: int | None = None) -> list[QueueEntry]:
    """The queued runs in the order workers will start them (see :func:`_fair_order`), each with
    its position and an ETA: the runs training now and those ahead, spread over ``concurrency``
    slots (default :func:`kwscore.classroom.default_concurrency`). Runs a worker already took are
    not listed (they are starting)."""
    import heapq

    root = runs_root(runs_dir)
    infos = list_runs(root) if infos is None else infos
    queued, active = _waiting(infos)
    order = _fair_order(queued, active)
    slots = max(1, concurrency or classroom.default_concurrency(root))
    free: list[float] = [0.0] * slots
    remaining = []
    for info in active:
        if info.state == "running":
            eta = _progress(info.status or {"state": "running"})[1]
            remaining.append(eta if eta is not None else run_seconds(info.config or {}, infos))
        else:  # taken, starting now
            remaining.append(run_seconds(info.config or {}, infos))
    for seconds in sorted(remaining)[:slots]:
        heapq.heapreplace(free, seconds)
    entries = []
    for position, info in enumerate(order, start=1):
        start = heapq.heappop(free)
        took = run_seconds(info.config or {}, infos)
        heapq.heappush(free, start + took)
        entries.append(QueueEntry(info.run_id, info.owner or "", position, start, took))
    return entries


def _signal(pid: int | None, signum: int) -> None:
    if pid and pid_alive(pid):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


# ============================================================================================
# The queue (Huey)
# ============================================================================================

# Huey pickles its messages by default: anybody who can write one row into queue.sqlite3, or push
# one item onto the Redis list, would run code in the worker. So a message here is JSON (which
# describes data, never code), signed with a secret (HMAC, Huey's SignedSerializer) that lives
# outside the runs folder; anything unsigned, wrongly signed or not JSON is logged and dropped.

#: Where the queue secret is kept (``KWS_QUEUE_SECRET`` overrides it), readable by its owner only.
SECRET_FILE = "queue.secret"
#: A queue message is a few hundred bytes; anything much bigger is not ours.
MAX_MESSAGE_BYTES = 64 * 1024


class RejectedMessage(ValueError):
    """A queue message that is not signed JSON: never decoded further, never run."""


def queue_secret_path() -> Path:
    """``~/.kws-studio/queue.secret`` (``KWS_HOME``): beside, never inside, the runs folder."""
    return Path(os.environ.get("KWS_HOME") or paths.HOME).expanduser() / SECRET_FILE


def queue_secret() -> str:
    """The secret that signs queue messages: ``KWS_QUEUE_SECRET``, else :func:`queue_secret_path`,
    created on first use (random, 0600). Workers on other machines need the same secret."""
    secret = os.environ.get("KWS_QUEUE_SECRET", "").strip()
    if secret:
        return secret
    return private_secret(queue_secret_path(), what="queue secret", variable="KWS_QUEUE_SECRET")


def _to_json(value: Any) -> Any:
    """Huey's message (a namedtuple of plain values and datetimes) as JSON-able data."""
    import datetime

    from huey.registry import Message

    if isinstance(value, Message):
        return {"$message": {k: _to_json(v) for k, v in value._asdict().items()}}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"a queue message cannot hold {type(value).__name__}")


def _from_json(value: Any) -> Any:
    import datetime

    from huey.registry import Message

    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"$message"} and isinstance(value["$message"], dict):
        fields = value["$message"]
        unknown = set(fields) - set(Message._fields)
        if unknown:
            raise RejectedMessage(f"unknown message fields {sorted(unknown)[:5]}")
        return Message(**{k: _from_json(v) for k, v in fields.items()})
    if set(value) == {"$datetime"} and isinstance(value["$datetime"], str):
        return datetime.datetime.fromisoformat(value["$datetime"])
    return {k: _from_json(v) for k, v in value.items()}


def _serializer(secret: str):
    """Huey's SignedSerializer (HMAC of the message with ``secret``) over JSON, not pickle."""
    import json

    from huey.serializer import SignedSerializer

    class SignedJSON(SignedSerializer):
        def _serialize(self, data: Any) -> bytes:
            return self._sign(json.dumps(_to_json(data), separators=(",", ":"), allow_nan=False).encode())

        def _deserialize(self, data: Any) -> Any:
            from kwscore.runfiles import parse_json

            data = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else str(data).encode()
            if len(data) > MAX_MESSAGE_BYTES:
                raise RejectedMessage(f"{len(data):,} bytes, too big for a queue message")
            try:
                message = self._unsign(data)  # checks the signature before anything is parsed
            except ValueError as exc:
                raise RejectedMessage("no valid signature (made without this queue's secret)") from exc
            try:
                return _from_json(parse_json(message.decode("utf-8")))
            except (ValueError, TypeError) as exc:
                raise RejectedMessage(f"signed but not a JSON message ({exc})") from exc

    return SignedJSON(secret=secret, salt="kws-studio")


def _log_rejected(data: Any, exc: Exception) -> None:
    raw = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else str(data).encode()
    log.error(
        "rejected a queue message (not a signed JSON message of this queue): %s. It was dropped, not run. "
        "Someone wrote to the queue directly (first bytes: %r)", exc, raw[:48],
    )  # fmt: skip


def _safe(huey_class):
    """A Huey class whose messages are signed JSON and whose worker drops (and logs) any other."""

    class SafeHuey(huey_class):
        def deserialize_task(self, data):
            try:
                return super().deserialize_task(data)
            except Exception as exc:  # noqa: BLE001 - the worker must go on with the next message
                _log_rejected(data, exc)
                return None

    SafeHuey.__name__ = f"Safe{huey_class.__name__}"
    return SafeHuey


_QUEUES: dict[str, tuple[Huey, Any]] = {}


def _queue(root: Path) -> tuple[Huey, Any]:
    """The Huey instance for this runs folder and its registered "run" task (cached per folder)."""
    url = os.environ.get("KWS_QUEUE_URL", "").strip()
    secret = queue_secret()
    key = f"{url or root.resolve()}|{secret}"  # a new secret (file deleted, variable changed): a new serializer
    if key not in _QUEUES:
        from huey import RedisHuey, SqliteHuey

        serializer = _serializer(secret)
        if url:
            try:
                huey = _safe(RedisHuey)("kws-studio", url=url, results=False, serializer=serializer)
                huey.storage.conn.ping()
            except Exception as exc:  # huey's ConfigurationError when the redis package is missing
                raise KwsError(
                    f"KWS_QUEUE_URL={_hide_password(url)} asks for a Redis queue, which failed ({exc}). Check "
                    "the address and password, install the `redis` package, or unset KWS_QUEUE_URL to use the "
                    "built-in SQLite queue."
                ) from exc
        else:
            huey = _safe(SqliteHuey)(
                "kws-studio", filename=str(root / QUEUE_FILE), results=False, strict_fifo=True, serializer=serializer
            )

        def run_task(run_id: str, queued_from: str) -> None:
            # A slot token: run the next runs of the fair order while there are any (run_id only
            # says which launch sent it). With Redis the message may come from another machine:
            # use its runs folder if we see it (a shared folder mounted at the same path).
            serve_slot(queued_from if Path(queued_from).is_dir() else root)

        _QUEUES[key] = (huey, huey.task(name=TASK_NAME)(run_task))
    return _QUEUES[key]


def pending_count(runs_dir=None) -> int:
    """Tasks waiting in the queue."""
    return _queue(runs_root(runs_dir))[0].pending_count()


# ============================================================================================
# The supervisor: one per running run, inside the worker
# ============================================================================================


def worker_name() -> str:
    """``host/pid`` of this process: who took a run (``claimed_by`` in its status)."""
    return f"{this_host()}/{os.getpid()}"


def claim_next(runs_dir=None) -> str | None:
    """Take the next run of :func:`queue_order` for this process (atomically, under the runs
    folder's claim lock: two workers never take the same run); ``None`` when nothing is queued."""
    root = runs_root(runs_dir)
    with file_lock(root / CLAIM_LOCK, timeout=60):
        infos = list_runs(root)
        queued, active = _waiting(infos)
        for info in _fair_order(queued, active):
            if _claim(RunFiles(info.path)):
                return info.run_id
    return None


def _claim(files: RunFiles) -> bool:
    status = files.update_status(
        only_if=("queued",), check=lambda current: not current.get("claimed_by"),
        claimed_by=worker_name(), claimed_at=now(), heartbeat=now(), host=this_host(), supervisor_pid=os.getpid(),
    )  # fmt: skip
    return status.get("claimed_by") == worker_name() and status["state"] == "queued"


def _beat_claim(files: RunFiles) -> str:
    """While a taken run has not started: the supervisor's heartbeat (so other machines see that its
    worker lives). Returns the run's state."""
    return files.update_status(
        only_if=("queued",), check=lambda s: s.get("claimed_by") == worker_name(), heartbeat=now()
    )["state"]


#: Runs this process supervises right now (the worker's busy slots).
_BUSY: set[str] = set()


def serve_slot(runs_dir) -> int:
    """One worker slot: take the next queued run and supervise it, again and again while runs are
    queued. Returns how many runs it supervised (0: the token found nothing to do)."""
    done = 0
    while (run_id := claim_next(runs_dir)) is not None:
        _BUSY.add(run_id)
        try:
            supervise(run_id, runs_dir)
        finally:
            _BUSY.discard(run_id)
        done += 1
    return done


def supervise(run_id: str, runs_dir) -> str:
    """Run one queued run as a child process, wait for it, make sure it ends in a final state.

    The run is taken for this process first if nobody has (:func:`claim_next` does that in fair
    order). Skips runs that are no longer queued (cancelled while waiting) or taken by another
    worker. Returns the final state.
    """
    files = RunFiles(run_dir(run_id, runs_dir))
    if not files.exists():
        return "missing"
    status = files.read_status()
    if status["state"] != "queued":
        return status["state"]
    if status.get("claimed_by") != worker_name() and not _claim(files):
        return files.read_status()["state"]
    if not _wait_for_orphans(files):
        return files.read_status()["state"]
    gpu = _gpu_turn(files)
    if gpu is None:
        return files.read_status()["state"]
    with gpu, open(files.log_path, "ab") as out:
        log_start = out.tell()
        child = subprocess.Popen(
            [sys.executable, "-m", "kwscore.runner", str(files.dir)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.info("run %s started as pid %d", run_id, child.pid)
        returncode = _wait(child, files)
    reason = _error_in_log(files, log_start) if returncode == 1 else None
    status = files.update_status(
        only_if=("queued", "running"),
        state="cancelled" if files.cancel_requested() else "failed",
        ended_at=now(),
        error=None if files.cancel_requested()
        else reason or f"{stopped_message(now())} ({_exit_reason(returncode)})",
    )  # fmt: skip
    log.info("run %s ended: %s", run_id, status["state"])
    return status["state"]


def _uses_gpu() -> bool:
    """Would a run here train on a CUDA GPU? (Asked without importing torch when there is none.)"""
    if os.environ.get("KWS_DEVICE", "").strip().lower() == "cpu" or os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return False
    if not Path("/proc/driver/nvidia").exists():
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no usable torch: no GPU either
        return False


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _gpu_turn(files: RunFiles):
    """The machine's GPU is used by one run at a time: the lock ``gpu-<host>.lock`` in the runs
    folder, held by the supervisor for the run's life. Returns a context manager (a no-op without
    a GPU), or ``None`` when the run was cancelled while it waited."""
    if not _uses_gpu():
        return _NoLock()
    from filelock import Timeout

    lock = file_lock(files.dir.parent / f"gpu-{_safe_host()}.lock")
    logged = False
    while True:
        try:
            lock.acquire(timeout=1.0)
            return _Held(lock)
        except Timeout:
            if not logged:
                files.log("waiting for the GPU: another run uses it")
                logged = True
            if _beat_claim(files) != "queued":
                return None


class _Held:
    """An acquired filelock, released when the ``with`` block ends."""

    def __init__(self, lock) -> None:
        self.lock = lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.lock.release()
        return False


def _safe_host() -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]", "_", this_host())[:100]


def _error_in_log(files: RunFiles, start: int) -> str | None:
    """The run process's own last ``error: ...`` line (what ``python -m kwscore.runner`` prints for
    a mistake before it could write its status), or ``None``."""
    try:
        with open(files.log_path, "rb") as f:
            f.seek(start)
            text = f.read(1_000_000).decode("utf-8", errors="replace")
    except OSError:
        return None
    errors = [line[len("error: "):].strip() for line in text.splitlines() if line.startswith("error: ")]
    return errors[-1][:2000] if errors and errors[-1] else None


def orphans(runs_dir=None) -> list[str]:
    """Runs still training on this machine although the worker that started them has died (only
    the worker was killed): they still hold a core, so new runs wait for them."""
    me = os.getpid()
    out = []
    for info in list_runs(runs_dir):
        status = info.status or {}
        boss = status.get("supervisor_pid")
        if (info.state == "running" and status.get("host") == this_host() and boss not in (None, me)
                and not pid_alive(boss) and _is_our_process(status)):  # fmt: skip
            out.append(info.run_id)
    return out


def _wait_for_orphans(files: RunFiles) -> bool:
    """Keep a queued run waiting while orphaned runs train; False if it was cancelled meanwhile."""
    logged = False
    while busy := orphans(files.dir.parent):
        if not logged:
            files.log(f"waiting for {', '.join(busy)} to finish (its worker stopped, the run goes on)")
            logged = True
        if _beat_claim(files) != "queued":
            return False
        time.sleep(1.0)
    return _beat_claim(files) == "queued"


def _wait(child: subprocess.Popen, files: RunFiles) -> int:
    """Wait for the child; after a cancel, give it CANCEL_GRACE_S, then SIGTERM, then SIGKILL."""
    cancel_seen = None
    starting = True
    while True:
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        if starting:  # until the run marks itself running, its heartbeat is ours
            starting = _beat_claim(files) == "queued"
        if cancel_seen is None and files.cancel_requested():
            cancel_seen = time.monotonic()
        if cancel_seen is not None:
            waited = time.monotonic() - cancel_seen
            if waited > CANCEL_GRACE_S + KILL_GRACE_S:
                child.kill()
            elif waited > CANCEL_GRACE_S:
                child.terminate()


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


# ============================================================================================
# The worker process
# ============================================================================================


def worker_path(root: Path, name: str) -> Path:
    """``worker.lock`` / ``worker.json`` / ``worker.log`` of this machine's worker; with ``KWS_HOST``
    set, ``worker-<host>.lock`` ...: each machine sharing a runs folder has its own worker."""
    host = os.environ.get("KWS_HOST", "").strip()
    if not host:
        return root / name
    stem, dot, ext = name.partition(".")
    return root / f"{stem}-{_safe_host()}{dot}{ext}"


def worker_pid(runs_dir=None) -> int | None:
    """The pid of this machine's worker serving this runs folder, or ``None`` if there is none.

    A live worker holds the lock on its ``worker.lock`` (filelock: the file stays after a release,
    so "held" never means "the file exists"); ``-1`` when the lock is held but worker.json does not
    name a live pid yet.
    """
    root = runs_root(runs_dir)
    try:
        pid = read_json(worker_path(root, WORKER_INFO)).get("pid")
    except (OSError, ValueError, AttributeError):
        pid = None
    if not pid_alive(pid):  # also: not a whole number in the range of pids (a damaged worker.json)
        pid = None
    if lock_is_held(worker_path(root, WORKER_LOCK)):
        return pid or -1
    return None


def ensure_worker(runs_dir=None, concurrency: int | None = None) -> int:
    """Start ``kwscore worker`` for this runs folder, detached, unless one is alive. Returns its pid.

    The worker gets its own session (``start_new_session=True``): closing the dashboard or the
    terminal does not stop it, and ``os.killpg(pid, ...)`` stops it with all its runs.
    """
    root = runs_root(runs_dir)
    pid = worker_pid(root)
    if pid:
        return pid
    command = [sys.executable, "-m", "kwscore.cli", "worker", "--runs-dir", str(root)]
    if concurrency:
        command += ["--concurrency", str(concurrency)]
    with open(worker_path(root, WORKER_LOG), "ab") as out:
        worker = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _STARTED_WORKERS.append(worker)  # detached: we never wait for it, but keep the handle
    deadline = time.monotonic() + 15.0  # until it holds the lock, so a second call sees it
    while time.monotonic() < deadline and worker.poll() is None:
        pid = worker_pid(root)
        if pid and pid > 0:
            return pid
        time.sleep(0.05)
    return worker.pid


_STARTED_WORKERS: list[subprocess.Popen] = []


def revive_worker(runs_dir=None, infos: list[RunInfo] | None = None) -> int | None:
    """Start a worker if runs are queued and none is alive here (it died, or the machine restarted).

    Called by ``kwscore runs`` and by the dashboard whenever they list the runs, so queued runs
    never wait for ever (status.json says what is queued; the new worker takes them). Returns the
    pid of the worker started, or ``None`` when nothing had to be done.
    """
    root = runs_root(runs_dir)
    infos = list_runs(root) if infos is None else infos
    if not _waiting(infos)[0] or worker_pid(root) is not None:
        return None
    return ensure_worker(root)


def stop_worker(runs_dir=None, stop_runs: bool = False, timeout: float = 10.0) -> bool:
    """Stop this machine's worker (SIGTERM). Running runs go on by themselves unless ``stop_runs``
    (then the whole process group gets SIGTERM: the runs stop at the next iteration, as cancelled).
    Returns True when no worker is left."""
    root = runs_root(runs_dir)
    pid = worker_pid(root)
    if not pid or pid < 0:
        return pid is None
    try:
        if stop_runs:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker_pid(root) is None:
            return True
        time.sleep(0.1)
    return False


def _sweep(root: Path, concurrency: int, stop) -> None:
    """The worker's watch, every :data:`SWEEP_S`: list the runs (which marks dead ones failed and puts
    runs of dead workers back in the queue, :func:`refresh_status`), and when runs are queued
    that no message will bring (a message lost with a dead worker, a run put back) while a slot
    here is free, send a slot token."""
    while not stop.wait(SWEEP_S):
        try:
            queued, _active = _waiting(list_runs(root))
            if queued and len(_BUSY) < concurrency and not _queue(root)[0].pending_count():
                enqueue(queued[0].run_id, root)
        except Exception as exc:  # noqa: BLE001 - the watch goes on; the queue may come back
            log.warning("sweep of %s: %s", root, exc)


def _take_worker_lock(root: Path):
    """The worker lock of this runs folder, taken; ``None`` when another worker holds it.

    It waits :data:`LOCK_WAIT_S` rather than trying once: whoever asks whether a worker is alive
    (:func:`worker_pid`: the dashboard's sessions, ``kwscore runs``, :func:`ensure_worker` while this
    worker starts) holds the lock for an instant, and a worker starting at that instant must not
    step aside as if another one served the folder."""
    from filelock import Timeout

    lock = file_lock(worker_path(root, WORKER_LOCK))
    try:
        lock.acquire(timeout=LOCK_WAIT_S)
    except Timeout:
        return None
    return lock


def run_worker(runs_dir=None, concurrency: int | None = None) -> bool:
    """Serve the queue of this runs folder until stopped (SIGTERM, or Ctrl-C: waits for the runs).

    ``concurrency``: runs at once (default :func:`kwscore.classroom.default_concurrency`).
    Returns False at once if another worker of this machine already serves the folder.
    """
    import threading

    root = runs_root(runs_dir)
    concurrency = classroom.default_concurrency(root) if concurrency is None else concurrency
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise KwsError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY} runs at a time, got "
                       f"{concurrency!r}. One per core (less one for the web server) is plenty.")  # fmt: skip
    lock = _take_worker_lock(root)  # held for the life of this process
    if lock is None:  # another worker of this machine holds it
        return False
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s: %(message)s", datefmt="%H:%M:%S")
    write_json(worker_path(root, WORKER_INFO), {
        "pid": os.getpid(), "host": this_host(), "started_at": now(), "concurrency": concurrency,
        "queue": _queue_name(root),
    })  # fmt: skip
    try:
        for info in list_runs(root):  # runs orphaned by a previous worker that died are marked now
            if info.state == UNREADABLE or (info.error or "").startswith("damaged:"):
                log.warning("run %s: %s", info.run_id, info.error)
    except OSError as exc:  # the worker serves the queue even if the folder cannot be listed now
        log.warning("cannot list the runs in %s: %s", root, exc)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("KWS_RUN_THREADS", str(max(1, cores // concurrency)))
    huey, _task = _queue(root)
    consumer = huey.create_consumer(
        workers=concurrency,
        worker_type="thread",
        periodic=False,
        initial_delay=0.1,
        backoff=1.15,
        max_delay=1.0,
    )
    stop = threading.Event()
    threading.Thread(target=_sweep, args=(root, concurrency, stop), name="sweep", daemon=True).start()
    log.info("worker %d on %s serving %s with %d slot(s)", os.getpid(), this_host(), root, concurrency)
    try:
        consumer.run()
    finally:
        stop.set()
        lock.release()
    return True


__all__ = [
    "CANCEL_GRACE_S", "FINAL_STATES", "HEARTBEAT_TIMEOUT_S", "QueueEntry", "RunInfo", "can_manage", "cancel",
    "claim_next", "clear_runs", "create_run", "delete", "ensure_worker", "enqueue", "launch", "list_runs",
    "new_run_id", "orphans", "pending_count", "progress", "queue_order", "queue_secret", "read_log", "read_metrics",
    "read_report", "refresh_status", "revive_worker", "run_dir", "run_info", "run_seconds", "run_worker",
    "runs_root", "serve_slot", "stop_worker", "supervise", "worker_path", "worker_pid",
]  # fmt: skip
