"""kwscore.jobs: real worker and run processes, a real queue, and everything that can go wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kwscore import jobs
from kwscore.errors import KwsError
from kwscore.recipes import default_config
from kwscore.runfiles import RunFiles, now, write_json


def config(small_synth, epochs=1):
    """A tiny M5 (a few hundred parameters): a run is mostly process start-up."""
    return default_config(
        "m5", data=str(small_synth), epochs=epochs, batch_size=32, augment="none", threads=1,
        model_kwargs={"n_channel": 4, "stride": 16},
    )  # fmt: skip


LONG = 400  # epochs of a run we mean to cancel or kill (~20 s if left alone)


def wait_for(predicate, timeout=60.0, every=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def state(run_id, runs_dir, **kwargs):
    return jobs.refresh_status(run_id, runs_dir, **kwargs)["state"]


def running_with_steps(run_id, runs_dir):
    status = jobs.refresh_status(run_id, runs_dir)
    return status["state"] == "running" and jobs.read_metrics(run_id, runs_dir)[0] and status


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A fresh runs folder; every worker (and its runs) started for it is killed afterwards."""
    monkeypatch.setenv("KWS_RUN_THREADS", "1")
    monkeypatch.setenv("KWS_WORKERS", "1")  # one run at a time, whatever the cores
    monkeypatch.delenv("KWS_QUEUE_URL", raising=False)
    monkeypatch.delenv("KWS_HOST", raising=False)
    root = tmp_path / "runs"
    root.mkdir()
    yield root
    for worker in jobs._STARTED_WORKERS:
        kill_group(worker.pid)
        worker.wait(timeout=10)
    jobs._STARTED_WORKERS.clear()
    for info in jobs.list_runs(root):  # runs orphaned from a killed worker
        pid = info.status.get("pid")
        if pid and info.status.get("state") == "running":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# -------------------------------------------------------------------------------- files only


def test_bad_run_ids_are_refused(runs_dir):
    for bad in ("../x", "a/b", "..", "", ".hidden", "a..b", "x" * 200, "/etc"):
        with pytest.raises(KwsError, match="not a valid run id"):
            jobs.run_dir(bad, runs_dir)
    with pytest.raises(KwsError, match="not a valid run id"):
        jobs.cancel("../../etc", runs_dir)
    run_id = jobs.new_run_id("m5")
    assert jobs.run_dir(run_id, runs_dir).parent == runs_dir


def test_damaged_runs_are_listed_without_breaking_the_others(small_synth, runs_dir):
    ids = [jobs.create_run(config(small_synth), runs_dir) for _ in range(3)]
    (runs_dir / ids[0] / "status.json").write_text('{"state": "runn')  # half-written
    metrics = RunFiles(runs_dir / ids[1])
    metrics.append_metric({"kind": "iteration", "step": 1, "loss": 2.0})
    with open(metrics.metrics_path, "a") as f:
        f.write('{"kind": "epoch", "epo\nnot json at all\n[1, 2]\n')
    metrics.append_metric({"kind": "epoch", "epoch": 1, "val_accuracy": 0.5})
    (runs_dir / "not-a-run.txt").write_text("stray file")
    (runs_dir / ids[2] / "config.json").write_text("{")

    runs = {r.run_id: r for r in jobs.list_runs(runs_dir)}
    assert set(runs) == set(ids)
    assert runs[ids[0]].state == "unreadable" and "unreadable status" in runs[ids[0]].error
    assert runs[ids[1]].state == "queued" and runs[ids[1]].error is None
    assert runs[ids[2]].state == "queued" and "config.json" in runs[ids[2]].error
    iterations, epochs = jobs.read_metrics(ids[1], runs_dir)
    assert [i["step"] for i in iterations] == [1] and [e["epoch"] for e in epochs] == [1]
    assert jobs.read_report(ids[1], runs_dir) is None


def fake_running(files: RunFiles, pid: int, heartbeat_age: float, **extra) -> None:
    write_json(files.status_path, {
        "state": "running", "pid": pid, "host": None, "started_at": now() - 100,
        "training_started_at": now() - 90, "heartbeat": now() - heartbeat_age,
        "step": 25, "total_steps": 100, **extra,
    })  # fmt: skip


def test_a_dead_process_is_noticed_from_its_heartbeat(small_synth, runs_dir):
    run_id = jobs.create_run(config(small_synth), runs_dir)
    files = RunFiles(runs_dir / run_id)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    fake_running(files, os.getpid(), heartbeat_age=60)  # stale heartbeat but alive: still running
    assert state(run_id, runs_dir, timeout=5) == "running"
    fake_running(files, gone.pid, heartbeat_age=3)  # dead, but the heartbeat is recent: wait
    assert state(run_id, runs_dir, timeout=5) == "running"
    fraction, eta = jobs.progress(run_id, runs_dir)
    assert fraction == 0.25 and eta == pytest.approx(270, rel=0.05)
    with pytest.raises(KwsError, match="still running"):
        jobs.delete(run_id, runs_dir)
    fake_running(files, gone.pid, heartbeat_age=30)  # dead and silent: failed
    status = jobs.refresh_status(run_id, runs_dir, timeout=5)
    assert status["state"] == "failed"
    assert "the training process stopped (killed or crashed) at" in status["error"]
    assert status["error"].endswith("metrics up to then are kept")
    fake_running(files, os.getpid(), heartbeat_age=30, pid_start=-1)  # our pid, reused by another program
    assert state(run_id, runs_dir, timeout=5) == "failed"
    jobs.delete(run_id, runs_dir)
    assert not files.dir.exists()


# -------------------------------------------------------------------------------- real processes


def test_background_runs_succeed_one_at_a_time(small_synth, runs_dir):
    ids = [jobs.launch(config(small_synth), runs_dir) for _ in range(3)]  # starts one worker
    assert jobs.worker_pid(runs_dir) and len(jobs._STARTED_WORKERS) == 1
    most_running = 0

    def all_done():
        nonlocal most_running
        states = [r.state for r in jobs.list_runs(runs_dir)]
        most_running = max(most_running, states.count("running"))
        return all(s in jobs.FINAL_STATES for s in states) and states

    states = wait_for(all_done, timeout=90, every=0.05, what="three runs to finish")
    assert states == ["succeeded"] * 3 and most_running == 1
    runs = jobs.list_runs(runs_dir)
    assert [r.run_id for r in runs] == ids[::-1]  # newest first
    first = runs[-1]
    assert first.test_accuracy is not None and first.duration_s > 0 and first.epoch == 1
    starts = sorted((r.started_at, r.ended_at) for r in runs)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(starts, starts[1:], strict=False))
    iterations, epochs = jobs.read_metrics(first.run_id, runs_dir)
    assert iterations and [e["epoch"] for e in epochs] == [1]
    report = jobs.read_report(first.run_id, runs_dir)
    assert report["n_total"] == 16 and len(report["confusion"]) == 8
    assert jobs.progress(first.run_id, runs_dir) == (1.0, 0.0)
    assert "ended: succeeded" in (runs_dir / jobs.WORKER_LOG).read_text()


def test_cancel_a_queued_and_a_running_run(small_synth, runs_dir):
    first = jobs.launch(config(small_synth, epochs=LONG), runs_dir)
    second = jobs.launch(config(small_synth), runs_dir)
    assert jobs.cancel(second, runs_dir) == "cancelled"  # still queued behind the first
    status = wait_for(lambda: running_with_steps(first, runs_dir), what="the first run to train")
    assert status["pid"] != jobs.worker_pid(runs_dir)  # its own process
    jobs.cancel(first, runs_dir)
    wait_for(lambda: state(first, runs_dir) == "cancelled", timeout=15, what="the running run to stop")
    assert jobs.refresh_status(first, runs_dir)["epoch"] < LONG
    wait_for(lambda: jobs.pending_count(runs_dir) == 0, timeout=10, what="the queue to drain")
    time.sleep(1.0)
    skipped = jobs.refresh_status(second, runs_dir)
    assert skipped["state"] == "cancelled" and "started_at" not in skipped  # never ran


def test_kill_9_of_a_running_run_marks_it_failed(small_synth, runs_dir):
    run_id = jobs.launch(config(small_synth, epochs=LONG), runs_dir)
    status = wait_for(lambda: running_with_steps(run_id, runs_dir), what="the run to train")
    os.kill(status["pid"], signal.SIGKILL)
    wait_for(lambda: state(run_id, runs_dir, timeout=1.0) == "failed", timeout=20, what="failed")
    status = jobs.refresh_status(run_id, runs_dir)
    assert "killed or crashed" in status["error"]
    assert jobs.read_metrics(run_id, runs_dir)[0]  # the metrics so far stay readable


def test_restart_recovery(small_synth, runs_dir):
    """Kill the worker with its running run; a new worker runs the queued ones, the orphan fails."""
    orphan = jobs.launch(config(small_synth, epochs=LONG), runs_dir)
    waiting = jobs.launch(config(small_synth), runs_dir)
    old_worker = jobs.worker_pid(runs_dir)
    status = wait_for(lambda: running_with_steps(orphan, runs_dir), what="the first run to train")
    kill_group(old_worker)  # the worker and its run die together (SIGKILL: no goodbye)
    wait_for(lambda: jobs.worker_pid(runs_dir) is None, timeout=10, what="the worker to die")
    assert state(waiting, runs_dir) == "queued"

    new_worker = jobs.ensure_worker(runs_dir)
    assert new_worker != old_worker and jobs.ensure_worker(runs_dir) == new_worker  # only one
    wait_for(lambda: state(waiting, runs_dir) == "succeeded", timeout=60, what="the queued run")
    wait_for(lambda: state(orphan, runs_dir, timeout=1.0) == "failed", timeout=20, what="the orphan")
    orphaned = jobs.refresh_status(orphan, runs_dir)
    assert "killed or crashed" in orphaned["error"] and orphaned["pid"] == status["pid"]
    assert jobs.read_metrics(orphan, runs_dir)[0]


def test_a_run_orphaned_by_its_worker_keeps_its_core(small_synth, runs_dir):
    """Kill only the worker: its run trains on alone. A new worker lets the queued run wait until
    that orphan is gone (the limit of one run at a time holds), then runs it."""
    orphan = jobs.launch(config(small_synth, epochs=LONG), runs_dir)
    waiting = jobs.launch(config(small_synth), runs_dir)
    old_worker = jobs.worker_pid(runs_dir)
    wait_for(lambda: running_with_steps(orphan, runs_dir), what="the first run to train")
    os.kill(old_worker, signal.SIGKILL)  # the worker only: its child run goes on
    wait_for(lambda: jobs.worker_pid(runs_dir) is None, timeout=10, what="the worker to die")
    assert jobs.ensure_worker(runs_dir) != old_worker
    wait_for(lambda: jobs.orphans(runs_dir) == [orphan], timeout=10, what="the orphan to be seen")
    wait_for(lambda: "waiting for" in jobs.read_log(waiting, runs_dir), timeout=30, what="the new worker to wait")
    time.sleep(1.5)
    assert state(orphan, runs_dir) == "running" and state(waiting, runs_dir) == "queued"
    jobs.cancel(orphan, runs_dir, wait_s=20)  # its process still reads the cancel flag
    wait_for(lambda: state(waiting, runs_dir) == "succeeded", timeout=60, what="the queued run")
    assert state(orphan, runs_dir) == "cancelled"


def test_a_second_worker_for_the_same_folder_steps_aside(runs_dir):
    pid = jobs.ensure_worker(runs_dir)
    wait_for(lambda: jobs.worker_pid(runs_dir) == pid, timeout=20, what="the worker lock")
    other = subprocess.run(
        [sys.executable, "-m", "kwscore.cli", "worker", "--runs-dir", str(runs_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert other.returncode == 0 and f"pid {pid}" in other.stdout
    info = json.loads((runs_dir / jobs.WORKER_INFO).read_text())
    assert info["pid"] == pid and info["concurrency"] == 1
    assert jobs.stop_worker(runs_dir) and jobs.worker_pid(runs_dir) is None


def test_a_starting_worker_waits_out_someone_asking_whether_one_is_alive(runs_dir):
    """Every "is a worker alive?" (the dashboard's sessions, ``kwscore runs``, ``ensure_worker``
    itself) takes the worker's lock for an instant, longer on a loaded machine. A worker starting
    at that instant must wait for it, not step aside as if another worker served the folder (the
    Redis queue tests once failed on exactly this); against a real worker it still steps aside."""
    import threading

    from kwscore.runfiles import file_lock

    asker = file_lock(runs_dir / jobs.WORKER_LOCK)
    asker.acquire(timeout=0)
    threading.Timer(0.3, asker.release).start()  # a slow "is it alive?"
    lock = jobs._take_worker_lock(runs_dir)
    assert lock is not None and lock.is_locked
    lock.release()

    held = file_lock(runs_dir / jobs.WORKER_LOCK)  # a worker that lives on
    held.acquire(timeout=0)
    started = time.monotonic()
    assert jobs._take_worker_lock(runs_dir) is None
    assert jobs.LOCK_WAIT_S <= time.monotonic() - started < jobs.LOCK_WAIT_S + 2
    held.release()


# -------------------------------------------------------------------------------- hardening (issue 10)


def test_the_queue_secret_is_private_made_once_and_outside_the_runs_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("KWS_HOME", str(home))
    monkeypatch.delenv("KWS_QUEUE_SECRET", raising=False)
    makers = [
        subprocess.Popen([sys.executable, "-c", "from kwscore import jobs; print(jobs.queue_secret())"],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]  # fmt: skip
    secrets_seen = {p.communicate(timeout=60)[0].strip() for p in makers}
    path = home / jobs.SECRET_FILE
    assert len(secrets_seen) == 1 and len(secrets_seen.pop()) == 64  # four processes at once: one secret
    assert path.stat().st_mode & 0o777 == 0o600 and list(home.iterdir()) == [path]
    path.chmod(0o644)
    assert jobs.queue_secret() == path.read_text().strip() and path.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("KWS_QUEUE_SECRET", "from-the-environment")
    assert jobs.queue_secret() == "from-the-environment"


def test_queue_messages_are_signed_json_never_pickles(small_synth, runs_dir, tmp_path, monkeypatch):
    import pickle
    import sqlite3

    monkeypatch.setenv("KWS_HOME", str(tmp_path / "home"))
    run_id = jobs.launch(config(small_synth), runs_dir, start_worker=False)
    with sqlite3.connect(runs_dir / jobs.QUEUE_FILE) as db:
        (data,) = db.execute("select data from task").fetchone()
    body, signature = bytes(data).rsplit(b":", 1)
    message = json.loads(body)["$message"]
    assert message["args"] == [run_id, str(runs_dir)] and len(signature) == 40
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(bytes(data))
    huey = jobs._queue(runs_dir)[0]
    assert huey.deserialize_task(bytes(data)).args == [run_id, str(runs_dir)]  # ours: accepted
    assert huey.deserialize_task(body + b":" + b"0" * 40) is None  # a forged signature: dropped


def test_cancel_never_signals_a_process_that_is_not_the_run(small_synth, runs_dir):
    """status.json names a pid; cancel checks the process's start time and command before SIGTERM."""
    from kwscore.runfiles import process_start, this_host

    run_id = jobs.create_run(config(small_synth), runs_dir)
    files = RunFiles(runs_dir / run_id)
    bystander = subprocess.Popen(["sleep", "60"])
    lookalike = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "kwscore.runner"])
    try:
        time.sleep(0.2)
        for pid_start in (None, process_start(bystander.pid) + 1, process_start(bystander.pid)):
            # no start time stored / another start time / the right start time, but `sleep`, not kwscore
            fake_running(files, bystander.pid, heartbeat_age=1, host=this_host(), pid_start=pid_start)
            assert jobs.cancel(run_id, runs_dir, wait_s=0.3) == "running"
            assert bystander.poll() is None, "cancel killed a process that was not the run"
        fake_running(files, lookalike.pid, heartbeat_age=1, host=this_host(), pid_start=process_start(lookalike.pid))
        jobs.cancel(run_id, runs_dir, wait_s=0.3)  # the run's own process (same start, a kwscore command)
        assert lookalike.wait(timeout=10) == -signal.SIGTERM
    finally:
        for proc in (bystander, lookalike):
            proc.kill()
            proc.wait()


def test_a_failed_validation_leaves_no_run_folder(small_synth, runs_dir, monkeypatch):
    with pytest.raises(KwsError, match=r"Unknown command\(s\) banana"):
        jobs.launch(default_config("m5", data=str(small_synth), commands="yes,banana"), runs_dir)
    monkeypatch.setenv("KWS_QUEUE_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    with pytest.raises(KwsError, match="KWS_QUEUE_URL=redis://127.0.0.1:1/0 asks for a Redis queue"):
        jobs.launch(config(small_synth), runs_dir)
    monkeypatch.delenv("KWS_QUEUE_URL")

    def broken(run_id, runs_dir=None):  # the queue accepted the connection, then failed
        raise ConnectionError("the queue went away")

    monkeypatch.setattr(jobs, "enqueue", broken)
    with pytest.raises(KwsError, match="Could not queue the run: .* the queue went away"):
        jobs.launch(config(small_synth), runs_dir)
    assert [p.name for p in runs_dir.iterdir() if p.is_dir()] == []


def test_a_run_that_cannot_start_says_why_in_its_status(small_synth, runs_dir, tmp_path):
    """Not "killed or crashed (exit code 1)": the run process's own message."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_synth, data)
    run_id = jobs.launch(config(data), runs_dir, start_worker=False)
    shutil.rmtree(data)  # the dataset disappears before the worker starts the run
    jobs.ensure_worker(runs_dir)
    wait_for(lambda: state(run_id, runs_dir) == "failed", timeout=60, what="the run to fail")
    error = jobs.refresh_status(run_id, runs_dir)["error"]
    assert error.startswith(f"No dataset at {data}") and "killed or crashed" not in error, error


def test_kwscore_runs_restarts_a_worker_for_queued_runs(small_synth, runs_dir):
    """status.json is the one truth: a queued run is run, whether a queue message names it or not."""
    never_sent = jobs.create_run(config(small_synth), runs_dir)  # "queued", no message in the queue
    run_id = jobs.launch(config(small_synth), runs_dir, start_worker=False)  # queued; no worker (it died)
    result = subprocess.run([sys.executable, "-m", "kwscore.cli", "runs", "--runs-dir", str(runs_dir)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0 and "no worker was alive: started one" in result.stderr, result.stderr
    pid = wait_for(lambda: jobs.worker_pid(runs_dir), timeout=20, what="the worker")
    try:
        wait_for(lambda: state(run_id, runs_dir) == "succeeded", timeout=90, what="the queued run")
        wait_for(lambda: state(never_sent, runs_dir) == "succeeded", timeout=90, what="the run without a message")
        assert jobs.pending_count(runs_dir) == 0
        again = subprocess.run([sys.executable, "-m", "kwscore.cli", "runs", "--runs-dir", str(runs_dir)],
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        assert "started one" not in again.stderr and jobs.worker_pid(runs_dir) == pid  # one is alive: no second
    finally:
        kill_group(pid)
