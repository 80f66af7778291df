"""Background runs: one OS process per run, a queue in front of them, files in between.

The dashboard must stay responsive while a model trains for minutes, and a training must survive
the dashboard being closed. So a run is never a thread inside Streamlit; it is its own process::

    launch(config) ──> runs/<run_id>/config.json + status.json (queued)
         │              and a task "run <run_id>" in the queue (Huey, runs/queue.sqlite3)
         ▼
    worker process (``kwscore worker``, started detached by ensure_worker)
         │  N threads = N runs at a time (default 1 on 2 cores); extra runs wait, queued
         ▼
    supervisor thread ──> child process ``python -m kwscore.runner runs/<run_id>``
                          writes status.json (running, pid, heartbeat every 2 s), metrics.jsonl,
                          log.txt, best.pt / last.pt, report.json (see kwscore.runfiles)

Everybody else only *reads* those files (:func:`list_runs`, :func:`read_metrics`, ...), so a page
can poll a run once a second at no cost, and everything survives a restart: the queue is a file,
the worker is detached, the run writes its own state.

Next to the run folders, the runs folder holds ``queue.sqlite3`` (the queue), ``worker.json`` (pid,
host, start time and concurrency of the worker), ``worker.lock`` (locked while a worker lives) and
``worker.log``.

The queue is `Huey <https://huey.readthedocs.io>`_ with its SQLite storage: no server to install.
Set ``KWS_QUEUE_URL=redis://host:6379/0`` to use Redis instead (``RedisHuey``, needs the ``redis``
package) and run ``kwscore worker`` on other machines that mount the same runs folder.

Failure handling:

- **Cancel** a queued run: its state becomes ``cancelled`` and the task is revoked (and skipped if
  it is dequeued anyway). Cancel a running run: a ``cancel`` flag file makes it stop at the next
  iteration; if it does not within :data:`CANCEL_GRACE_S`, the supervisor sends SIGTERM, then
  SIGKILL.
- **Crash or kill**: if the run process dies without writing a final state, the supervisor marks it
  ``failed``. If the supervisor died too (worker killed, machine restarted), :func:`refresh_status`
  notices that the heartbeat is older than :data:`HEARTBEAT_TIMEOUT_S` and the pid is gone, and
  marks it failed. Its metrics and checkpoints stay readable.
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

from kwscore import paths
from kwscore.errors import KwsError
from kwscore.runfiles import (
    FINAL_STATES,
    RUN_ID_RE,
    UNREADABLE,
    RunFiles,
    check_run_id,
    clock,
    now,
    pid_alive,
    process_start,
    read_json,
    this_host,
    write_json,
)

if TYPE_CHECKING:  # runner imports torch; the worker and `kwscore runs` should not have to
    from huey import Huey

    from kwscore.runner import RunConfig

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

QUEUE_FILE = "queue.sqlite3"
WORKER_LOCK = "worker.lock"
WORKER_INFO = "worker.json"
WORKER_LOG = "worker.log"
#: A running run whose heartbeat is older than this (seconds) and whose process is gone has died.
HEARTBEAT_TIMEOUT_S = float(os.environ.get("KWS_HEARTBEAT_TIMEOUT", "20"))
#: After a cancel, how long a running run may take to stop by itself before SIGTERM (then SIGKILL).
CANCEL_GRACE_S = 10.0
KILL_GRACE_S = 5.0
#: Runs trained at the same time by one worker (KWS_WORKERS overrides; 1 suits 2 cores).
DEFAULT_CONCURRENCY = int(os.environ.get("KWS_WORKERS", "1"))
TASK_NAME = "kwscore.run"

log = logging.getLogger("kwscore.jobs")

# ============================================================================================
# Where runs live
# ============================================================================================


def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder (``runs_dir``, else ``kwscore.paths.runs_dir()``), created if needed."""
    root = Path(runs_dir).expanduser() if runs_dir else paths.runs_dir()
    root.mkdir(parents=True, exist_ok=True)
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


def _is_our_process(status: dict) -> bool:
    """Is the run's process still alive? (On another machine we cannot tell: assume yes.)"""
    if status.get("host") not in (None, this_host()):
        return True
    pid = status.get("pid")
    if not pid_alive(pid):
        return False
    started = status.get("pid_start")  # a pid reused by another program after a restart is not ours
    return started is None or process_start(pid) in (None, started)


def stopped_message(when: float | None) -> str:
    return f"the training process stopped (killed or crashed) at {clock(when)}; metrics up to then are kept"


def refresh_status(run, runs_dir=None, timeout: float | None = None) -> dict:
    """The run's status; a "running" run whose heartbeat is older than ``timeout`` seconds
    (default :data:`HEARTBEAT_TIMEOUT_S`) and whose process is gone is marked failed first."""
    files = _files(run, runs_dir)
    status = files.read_status()
    if status["state"] != "running":
        return status
    timeout = HEARTBEAT_TIMEOUT_S if timeout is None else timeout
    beat = status.get("heartbeat") or status.get("started_at") or 0.0
    if now() - beat <= timeout or _is_our_process(status):
        return status
    return files.update_status(
        only_if=("running",), state="failed", ended_at=now(), error=stopped_message(beat)
    )


read_status = refresh_status


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
    status = refresh_status(run, runs_dir)
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
    """A :class:`RunInfo` for one run; never raises (damaged runs come back with ``error`` set)."""
    files = _files(run, runs_dir)
    status = refresh_status(files.dir)
    info = RunInfo(files.run_id, files.dir, status["state"], status=status, error=status.get("error"))
    try:
        config = files.read_config()
    except KwsError as exc:
        info.error = info.error or str(exc)
        config = {}
    info.config = config or None
    info.model, info.data, info.commands = config.get("model"), config.get("data"), config.get("commands")
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
    infos = [run_info(p) for p in root.iterdir() if p.is_dir() and RUN_ID_RE.match(p.name)]
    return sorted(infos, key=lambda r: (r.created or 0.0, r.run_id), reverse=True)


# ============================================================================================
# Launching, cancelling, deleting
# ============================================================================================


def create_run(config: RunConfig, runs_dir=None) -> str:
    """Make the run's folder with config.json and a "queued" status; return the new run id."""
    config.validate()
    run_id = new_run_id(config.model)
    files = RunFiles(run_dir(run_id, runs_dir))
    files.dir.mkdir(parents=False)
    files.write_config(config.to_dict())
    write_json(files.status_path, {
        "run_id": run_id, "state": "queued", "created": now(), "epochs": config.epochs,
        "budget_s": 60.0 * config.max_minutes if config.max_minutes else None,
    })  # fmt: skip
    files.log(f"created {run_id}: {config.model} on {config.data}")
    return run_id


def launch(config: RunConfig, runs_dir=None, start_worker: bool = True) -> str:
    """Create a run, put it in the queue and make sure a worker will pick it up. Returns its id."""
    run_id = create_run(config, runs_dir)
    enqueue(run_id, runs_dir)
    if start_worker:
        ensure_worker(runs_dir)
    return run_id


def enqueue(run_id: str, runs_dir=None) -> str:
    """Add a "run <run_id>" task to the queue; returns (and stores in status.json) the task id."""
    root = runs_root(runs_dir)
    huey, task_wrapper = _queue(root)
    task = task_wrapper.s(run_id, str(root))
    RunFiles(run_dir(run_id, root)).update_status(task_id=task.id)
    huey.enqueue(task)
    return task.id


def cancel(run, runs_dir=None, wait_s: float = 0.0) -> str:
    """Ask a run to stop; returns its state afterwards.

    Queued: cancelled at once (and its task revoked). Running: the ``cancel`` flag makes it stop at
    the next iteration. With ``wait_s`` > 0, wait that long for it to stop, then SIGTERM it (useful
    for foreground runs, which have no supervisor to do it).
    """
    files = _existing(run, runs_dir)
    files.request_cancel()
    status = files.update_status(
        only_if=("queued",), state="cancelled", ended_at=now(), message="cancelled before it started"
    )
    if status["state"] == "cancelled" and status.get("task_id"):
        _revoke(files.dir.parent, status["task_id"])
    deadline = time.monotonic() + wait_s
    while status["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = refresh_status(files.dir)
    if wait_s > 0 and status["state"] == "running" and status.get("host") == this_host():
        _signal(status.get("pid"), signal.SIGTERM)
    return status["state"]


def delete(run, runs_dir=None) -> None:
    """Delete a run's folder. Refused while it is running (cancel it first)."""
    files = _existing(run, runs_dir)
    status = refresh_status(files.dir)
    if status["state"] == "running":
        raise KwsError(f"Run {files.run_id} is still running: cancel it first, then delete it.")
    if status["state"] == "queued":
        cancel(files.dir)
    shutil.rmtree(files.dir)


def _signal(pid: int | None, signum: int) -> None:
    if pid and pid_alive(pid):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


# ============================================================================================
# The queue (Huey)
# ============================================================================================

_QUEUES: dict[str, tuple[Huey, Any]] = {}


def _queue(root: Path) -> tuple[Huey, Any]:
    """The Huey instance for this runs folder and its registered "run" task (cached per folder)."""
    url = os.environ.get("KWS_QUEUE_URL", "").strip()
    key = url or str(root.resolve())
    if key not in _QUEUES:
        from huey import RedisHuey, SqliteHuey

        if url:
            try:
                huey = RedisHuey("kws-studio", url=url, results=False)
            except Exception as exc:  # huey's ConfigurationError when the redis package is missing
                raise KwsError(
                    f"KWS_QUEUE_URL={url} asks for a Redis queue, which failed ({exc}). Install the "
                    "`redis` package, or unset KWS_QUEUE_URL to use the built-in SQLite queue."
                ) from exc
        else:
            huey = SqliteHuey("kws-studio", filename=str(root / QUEUE_FILE), results=False, strict_fifo=True)

        def run_task(run_id: str, queued_from: str) -> None:
            # With Redis the task may come from another machine: use its runs folder if we see it.
            supervise(run_id, queued_from if Path(queued_from).is_dir() else root)

        _QUEUES[key] = (huey, huey.task(name=TASK_NAME)(run_task))
    return _QUEUES[key]


def _revoke(root: Path, task_id: str) -> None:
    try:
        _queue(root)[0].revoke_by_id(task_id)
    except Exception as exc:  # the state is already "cancelled": the supervisor skips it anyway
        log.warning("could not revoke task %s: %s", task_id, exc)


def pending_count(runs_dir=None) -> int:
    """Tasks waiting in the queue."""
    return _queue(runs_root(runs_dir))[0].pending_count()


# ============================================================================================
# The supervisor: one per running run, inside the worker
# ============================================================================================


def supervise(run_id: str, runs_dir) -> str:
    """Run one queued run as a child process, wait for it, make sure it ends in a final state.

    Skips runs that are no longer queued (cancelled while waiting, or already handled).
    Returns the final state.
    """
    files = RunFiles(run_dir(run_id, runs_dir))
    if not files.exists() or files.read_status()["state"] != "queued":
        return files.read_status()["state"] if files.exists() else "missing"
    if not _wait_for_orphans(files):
        return files.read_status()["state"]
    with open(files.log_path, "ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "kwscore.runner", str(files.dir)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    files.update_status(supervisor_pid=os.getpid())
    log.info("run %s started as pid %d", run_id, child.pid)
    returncode = _wait(child, files)
    status = files.update_status(
        only_if=("queued", "running"),
        state="cancelled" if files.cancel_requested() else "failed",
        ended_at=now(),
        error=None if files.cancel_requested() else f"{stopped_message(now())} ({_exit_reason(returncode)})",
    )
    log.info("run %s ended: %s", run_id, status["state"])
    return status["state"]


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
        if files.read_status()["state"] != "queued":
            return False
        time.sleep(1.0)
    return files.read_status()["state"] == "queued"


def _wait(child: subprocess.Popen, files: RunFiles) -> int:
    """Wait for the child; after a cancel, give it CANCEL_GRACE_S, then SIGTERM, then SIGKILL."""
    cancel_seen = None
    while True:
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
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


def worker_pid(runs_dir=None) -> int | None:
    """The pid of the worker serving this runs folder, or ``None`` if there is none.

    A live worker holds an exclusive lock on ``worker.lock``; if we can take the lock, nobody holds it.
    """
    root = runs_root(runs_dir)
    try:
        info = read_json(root / WORKER_INFO)
        pid = int(info.get("pid"))
    except (OSError, ValueError, TypeError, AttributeError):
        pid = None
    if fcntl is None:
        return pid if pid_alive(pid) else None
    with open(root / WORKER_LOCK, "a+") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held: a worker is alive (its worker.json may still be the old one's)
            return pid if pid and pid_alive(pid) else -1
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
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
    command += ["--concurrency", str(concurrency or DEFAULT_CONCURRENCY)]
    with open(root / WORKER_LOG, "ab") as out:
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


def stop_worker(runs_dir=None, stop_runs: bool = False, timeout: float = 10.0) -> bool:
    """Stop the worker (SIGTERM). Running runs go on by themselves unless ``stop_runs`` (then the
    whole process group gets SIGTERM: the runs stop at the next iteration, as cancelled).
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


def run_worker(runs_dir=None, concurrency: int | None = None) -> bool:
    """Serve the queue of this runs folder until stopped (SIGTERM, or Ctrl-C: waits for the runs).

    Returns False at once if another worker already serves the folder.
    """
    root = runs_root(runs_dir)
    concurrency = max(1, int(concurrency or DEFAULT_CONCURRENCY))
    lock = open(root / WORKER_LOCK, "a+")  # held (and locked) for the life of this process
    if fcntl is not None:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s: %(message)s", datefmt="%H:%M:%S")
    write_json(root / WORKER_INFO, {
        "pid": os.getpid(), "host": this_host(), "started_at": now(), "concurrency": concurrency,
        "queue": os.environ.get("KWS_QUEUE_URL") or str(root / QUEUE_FILE),
    })  # fmt: skip
    for info in list_runs(root):  # runs orphaned by a previous worker that died are marked now
        if info.state == UNREADABLE:
            log.warning("run %s: %s", info.run_id, info.error)
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
    log.info("worker %d serving %s with %d slot(s)", os.getpid(), root, concurrency)
    consumer.run()
    lock.close()
    return True


__all__ = [
    "CANCEL_GRACE_S", "FINAL_STATES", "HEARTBEAT_TIMEOUT_S", "RunInfo", "cancel", "create_run", "delete",
    "ensure_worker", "enqueue", "launch", "list_runs", "new_run_id", "orphans", "pending_count", "progress",
    "read_log", "read_metrics", "read_report", "read_status", "refresh_status", "run_dir", "run_info",
    "run_worker", "runs_root", "stop_worker", "supervise", "worker_pid",
]  # fmt: skip
