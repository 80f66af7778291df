"""A class on one server (issue 12, kwscore side): owners, limits, the teacher key, who may cancel what,
the fair queue with positions and ETAs, clearing the class's runs, workers taking runs (claims),
dead claims and dead runs of other machines, and the nice level of a real run process."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kwscore import classroom, jobs
from kwscore.classroom import ClassLimits
from kwscore.errors import KwsError
from kwscore.recipes import default_config
from kwscore.runfiles import RunFiles, now, write_json
from tests.workers import kill_started_workers


def config(data, owner="", epochs=1, **kw):
    return default_config(
        "m5", data=str(data), epochs=epochs, batch_size=32, augment="none", threads=1,
        model_kwargs={"n_channel": 4, "stride": 16}, owner=owner, **kw,
    )  # fmt: skip


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A runs folder with a SQLite queue and no worker (runs stay queued unless a test starts one)."""
    monkeypatch.setenv("KWS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KWS_RUN_THREADS", "1")
    for name in ("KWS_QUEUE_URL", "KWS_TEACHER_KEY", "KWS_HOST", "KWS_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "runs"
    root.mkdir()
    yield root
    kill_started_workers()
    jobs._QUEUES.clear()


def queue(root, data, *owners, pause=0.01):
    """Launch one run per owner (in this order, a little apart so launch order is clear)."""
    ids = []
    for owner in owners:
        ids.append(jobs.launch(config(data, owner), root, start_worker=False))
        time.sleep(pause)
    return ids


# -------------------------------------------------------------------------------- limits and key


def test_limits_are_saved_in_the_runs_folder_and_a_damaged_file_means_defaults(runs, caplog):
    assert classroom.load_limits(runs) == ClassLimits()
    limits = ClassLimits(max_queued_per_student=3, max_epochs=5, max_minutes=2.5, models=("m5",),
                         datasets=("synth",), concurrency=2, hide_answers=True)  # fmt: skip
    path = classroom.save_limits(limits, runs)
    assert path == runs / "class.json" and classroom.load_limits(runs) == limits
    assert json.loads(path.read_text())["models"] == ["m5"]
    with pytest.raises(KwsError, match="max_queued_per_student must be a whole number"):
        classroom.save_limits(ClassLimits(max_queued_per_student=0), runs)
    assert classroom.load_limits(runs) == limits  # a refused save changes nothing
    for damaged in ('{"max_epochs": "many"}', "{", '{"colour": 1}', "[]", '{"max_epochs": true}'):
        path.write_text(damaged)
        caplog.clear()
        assert classroom.load_limits(runs) == ClassLimits()
        assert "using the default class limits" in caplog.text


def test_concurrency_default_is_kws_workers_then_the_class_then_cores_minus_one(runs, monkeypatch):
    cores = len(os.sched_getaffinity(0))
    assert classroom.default_concurrency(runs) == max(1, cores - 1)
    classroom.save_limits(ClassLimits(concurrency=3), runs)
    assert classroom.default_concurrency(runs) == 3
    monkeypatch.setenv("KWS_WORKERS", "2")
    assert classroom.default_concurrency(runs) == 2
    monkeypatch.setenv("KWS_WORKERS", "lots")
    assert classroom.default_concurrency(runs) == 3


def test_the_teacher_key_is_made_once_private_and_the_variable_wins(runs, tmp_path, monkeypatch):
    """(Made as the queue secret is: several processes at once agree on one, tests/test_jobs.py.)"""
    key = classroom.teacher_key()
    path = tmp_path / "home" / "teacher.key"
    assert path.read_text().strip() == key and path.stat().st_mode & 0o777 == 0o600
    assert len(key) == 24 and classroom.teacher_key() == key
    assert classroom.is_teacher_key(key) and classroom.is_teacher_key(f" {key}\n")
    for wrong in ("", key[:-1], key + "x", None, 12, "teacher"):
        assert not classroom.is_teacher_key(wrong)
    monkeypatch.setenv("KWS_TEACHER_KEY", "from-the-environment")
    assert classroom.teacher_key() == "from-the-environment" and not classroom.is_teacher_key(key)


def test_a_students_launch_is_checked_against_the_limits(runs, small_synth):
    classroom.save_limits(ClassLimits(max_queued_per_student=2, max_epochs=3, models=("m5", "cnn")), runs)
    queue(runs, small_synth, "ana", "ana")
    with pytest.raises(KwsError, match=r"^ana already has 2 run\(s\) or experiment\(s\) queued or training; the class allows 2"):
        queue(runs, small_synth, "ana")
    queue(runs, small_synth, "ben", "")  # another student, and the operator: not ana's quota
    with pytest.raises(KwsError, match="At most 3 epochs per run in this class"):
        jobs.launch(config(small_synth, "ben", epochs=4), runs, start_worker=False)
    with pytest.raises(KwsError, match="allows these models in this class: m5, cnn"):
        jobs.launch(dataclasses.replace(default_config("m3", data=str(small_synth)), owner="ben"), runs,
                    start_worker=False)  # fmt: skip
    jobs.launch(config(small_synth, "ana", epochs=9), runs, start_worker=False, teacher=True)  # never limited
    jobs.launch(config(small_synth, "", epochs=9), runs, start_worker=False)  # the operator: neither
    classroom.save_limits(ClassLimits(datasets=("elsewhere",), max_minutes=2), runs)
    with pytest.raises(KwsError, match=f"The dataset {small_synth.name} is not allowed in this class"):
        jobs.launch(config(small_synth, "cleo"), runs, start_worker=False)
    classroom.save_limits(ClassLimits(max_minutes=2), runs)
    with pytest.raises(KwsError, match="At most 2 minutes per run"):
        jobs.launch(config(small_synth, "cleo", max_minutes=5.0), runs, start_worker=False)
    run_id = jobs.launch(config(small_synth, "  cleo \t"), runs, start_worker=False)
    info = jobs.run_info(run_id, runs)
    assert info.owner == "cleo" and info.config["max_minutes"] == 2.0  # name tidied, the time limit filled in
    with pytest.raises(KwsError, match="too long"):
        jobs.launch(config(small_synth, "x" * 200), runs, start_worker=False)
    assert len(jobs.list_runs(runs)) == 7  # refused launches leave no folder


# -------------------------------------------------------------------------------- who may do what


def test_only_the_owner_or_the_teacher_cancels_or_deletes(runs, small_synth):
    ana, ben, op = queue(runs, small_synth, "ana", "ben", "")
    info = jobs.run_info(ana, runs)
    assert jobs.can_manage(info, "ana") and jobs.can_manage(info, None) and jobs.can_manage(info, "ben", True)
    assert not jobs.can_manage(info, "ben") and not jobs.can_manage(info, "")
    assert not jobs.can_manage(jobs.run_info(op, runs), "ana")
    with pytest.raises(KwsError, match="^Only ana or the teacher can cancel this run.$"):
        jobs.cancel(ana, runs, user="ben")
    with pytest.raises(KwsError, match="^Only ana or the teacher can delete this run.$"):
        jobs.delete(ana, runs, user="ben")
    with pytest.raises(KwsError, match="^Only the teacher can cancel this run.$"):
        jobs.cancel(op, runs, user="ana")
    assert jobs.refresh_status(ana, runs)["state"] == "queued" and not (runs / ana / "cancel").exists()
    assert jobs.cancel(ana, runs, user="ana") == "cancelled"
    assert jobs.cancel(ben, runs, user="ana", teacher=True) == "cancelled"
    jobs.delete(ben, runs, user="ben")
    jobs.delete(op, runs)  # the operator (command line)
    assert [r.run_id for r in jobs.list_runs(runs)] == [ana]


def test_clear_runs_deletes_the_students_runs_only(runs, small_synth):
    ids = queue(runs, small_synth, "ana", "ben", "", "ana")
    jobs.cancel(ids[1], runs)
    (runs / "_experiments").mkdir()
    (runs / "_experiments" / "e.json").write_text("{}")
    assert jobs.clear_runs(runs, owner="ana") == 2
    assert {r.run_id for r in jobs.list_runs(runs)} == {ids[1], ids[2]}
    assert jobs.clear_runs(runs) == 1
    assert [r.run_id for r in jobs.list_runs(runs)] == [ids[2]] and (runs / "_experiments" / "e.json").exists()


# -------------------------------------------------------------------------------- the fair queue


def test_the_queue_is_round_robin_across_owners(runs, small_synth):
    a = queue(runs, small_synth, *["ana"] * 2)
    classroom.save_limits(ClassLimits(max_queued_per_student=8), runs)
    a += queue(runs, small_synth, *["ana"] * 3)
    b = queue(runs, small_synth, "ben")
    c = queue(runs, small_synth, "cleo", "cleo")
    order = jobs.queue_order(runs, concurrency=1)
    assert [e.run_id for e in order] == [a[0], b[0], c[0], a[1], c[1], a[2], a[3], a[4]]
    assert [e.position for e in order] == list(range(1, 9)) and order[1].owner == "ben"
    assert order[0].eta_s == 0.0 and all(x.eta_s < y.eta_s for x, y in zip(order, order[1:], strict=False))

    # ana's first run starts: the next turns go to the others first, not to ana's next run
    RunFiles(runs / a[0]).update_status(state="running", started_at=now(), heartbeat=now(), host="elsewhere")
    assert [e.run_id for e in jobs.queue_order(runs)][:3] == [b[0], c[0], a[1]]
    assert jobs.claim_next(runs) == b[0]  # a worker takes them in that order
    assert jobs.claim_next(runs) == c[0]
    assert b[0] not in [e.run_id for e in jobs.queue_order(runs)]  # taken: starting, no longer waiting
    assert jobs.refresh_status(b[0], runs)["claimed_by"] == jobs.worker_name()


def test_the_eta_comes_from_measured_epoch_times(runs, small_synth):
    ids = queue(runs, small_synth, "ana", "ben", "cleo")
    fallback = jobs.queue_order(runs, concurrency=1)
    assert fallback[1].eta_s == pytest.approx(jobs.FALLBACK_EPOCH_S + jobs.RUN_OVERHEAD_S)
    done = jobs.create_run(config(small_synth, epochs=4), runs)  # a finished m5 run: 40 s for 4 epochs
    RunFiles(runs / done).update_status(state="succeeded", started_at=now() - 50, ended_at=now() - 10, epoch=4)
    order = jobs.queue_order(runs, concurrency=1)
    assert [e.run_id for e in order] == ids and [e.run_s for e in order] == [pytest.approx(10.0)] * 3
    assert [e.eta_s for e in order] == [0.0, pytest.approx(10.0), pytest.approx(20.0)]
    two = jobs.queue_order(runs, concurrency=2)
    assert [e.eta_s for e in two] == [0.0, 0.0, pytest.approx(10.0)]
    # a run training now with 30 s left holds one slot
    RunFiles(runs / ids[0]).update_status(state="running", started_at=now() - 40, training_started_at=now() - 30,
                                          heartbeat=now(), host="elsewhere", step=50, total_steps=100)  # fmt: skip
    order = jobs.queue_order(runs, concurrency=1)
    assert [e.eta_s for e in order] == [pytest.approx(30, abs=1), pytest.approx(40, abs=1)]


# -------------------------------------------------------------------------------- claims and other hosts


def test_a_claim_of_a_dead_worker_goes_back_to_the_queue_then_fails(runs, small_synth, monkeypatch):
    (run_id,) = queue(runs, small_synth, "ana")
    files = RunFiles(runs / run_id)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert jobs.claim_next(runs) == run_id and jobs.claim_next(runs) is None  # taken once only
    files.update_status(supervisor_pid=os.getpid(), heartbeat=now() - 60)  # alive here: still taken
    assert jobs.refresh_status(run_id, runs, timeout=5).get("claimed_by")
    files.update_status(supervisor_pid=gone.pid)  # its worker died, and no heartbeat since
    status = jobs.refresh_status(run_id, runs, timeout=5)
    assert status["state"] == "queued" and "claimed_by" not in status and status["requeues"] == 1
    assert "stopped before starting this run: back in the queue" in jobs.read_log(run_id, runs)
    assert [e.run_id for e in jobs.queue_order(runs)] == [run_id]
    # another machine's worker: judged by the heartbeat alone (its pid means nothing here)
    for requeues in range(2, jobs.MAX_REQUEUES + 2):
        files.update_status(claimed_by="pc2/1", claimed_at=now() - 60, heartbeat=now() - 1, host="pc2",
                            supervisor_pid=os.getpid())  # fmt: skip
        assert jobs.refresh_status(run_id, runs, timeout=5).get("claimed_by") == "pc2/1"  # fresh heartbeat
        files.update_status(heartbeat=now() - 60)
        status = jobs.refresh_status(run_id, runs, timeout=5)
        assert status.get("requeues") == requeues or status["state"] == "failed"
    assert status["state"] == "failed" and "worker pc2/1 stopped before starting this run" in status["error"]


def test_a_run_of_another_host_is_judged_by_its_heartbeat_only(runs, small_synth, monkeypatch):
    (run_id,) = queue(runs, small_synth, "ana")
    files = RunFiles(runs / run_id)
    # our own pid, alive, but the run says it trains on pc2: a local pid proves nothing
    write_json(files.status_path, {"state": "running", "pid": os.getpid(), "host": "pc2", "started_at": now() - 99,
                                   "heartbeat": now() - 2})  # fmt: skip
    assert jobs.refresh_status(run_id, runs, timeout=5)["state"] == "running"
    files.update_status(heartbeat=now() - 30)
    status = jobs.refresh_status(run_id, runs, timeout=5)
    assert status["state"] == "failed" and status["error"].startswith("no heartbeat from host pc2 since")
    monkeypatch.setenv("KWS_HOST", "pc2")  # seen from pc2 itself, the pid decides
    write_json(files.status_path, {"state": "running", "pid": os.getpid(), "host": "pc2", "started_at": now() - 99,
                                   "heartbeat": now() - 30})  # fmt: skip
    assert jobs.refresh_status(run_id, runs, timeout=5)["state"] == "running"
    assert jobs.run_info(run_id, runs).host == "pc2"


# -------------------------------------------------------------------------------- real processes


@pytest.mark.slow
def test_a_background_run_trains_at_a_lower_cpu_priority(runs, small_synth):
    run_id = jobs.launch(config(small_synth, "ana", epochs=400), runs)
    worker = jobs.worker_pid(runs)
    deadline = time.monotonic() + 60
    while (status := jobs.refresh_status(run_id, runs))["state"] != "running":
        assert time.monotonic() < deadline and status["state"] == "queued", jobs.read_log(run_id, runs)
        time.sleep(0.1)

    def nice(pid: int) -> int:  # field 19 of /proc/<pid>/stat
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[16])

    assert nice(status["pid"]) == min(19, nice(worker) + 10), (nice(status["pid"]), nice(worker))
    if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1":  # sessions share the CPU first
        group = Path(f"/proc/{status['pid']}/autogroup").read_text()
        assert group.split()[-1] == "10" and group != Path("/proc/self/autogroup").read_text(), group
    assert status["host"] and status.get("claimed_by", "").endswith(f"/{worker}")
    assert jobs.cancel(run_id, runs, user="ana") in ("running", "cancelled")
    deadline = time.monotonic() + 30
    while jobs.refresh_status(run_id, runs)["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert jobs.refresh_status(run_id, runs)["state"] == "cancelled"


@pytest.mark.slow
def test_the_command_line_sets_limits_and_shows_owners(runs, small_synth):
    def kwscore(*args):
        return subprocess.run([sys.executable, "-m", "kwscore.cli", *args, "--runs-dir", str(runs)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    out = kwscore("class", "--max-queued", "1", "--models", "m5,cnn", "--max-epochs", "3", "--teacher-key")
    assert out.returncode == 0, out.stderr
    assert classroom.load_limits(runs) == ClassLimits(max_queued_per_student=1, models=("m5", "cnn"), max_epochs=3)
    assert "max_queued_per_student: 1" in out.stdout and f"teacher key: {classroom.teacher_key()}" in out.stdout
    queue(runs, small_synth, "ana", "ben")
    refused = kwscore("train", "--model", "m5", "--data", str(small_synth), "--epochs", "1", "--owner", "ana",
                      "--background")  # fmt: skip
    assert refused.returncode == 2 and "ana already has 1 run(s) or experiment(s) queued" in refused.stderr
    assert "Traceback" not in refused.stderr
    try:
        listing = kwscore("runs")  # (starts a worker for the queued runs)
    finally:
        jobs.stop_worker(runs, stop_runs=True)
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split()[:4] == ["id", "name", "owner", "status"]
    assert {row.split()[2] for row in rows[:2]} == {"ana", "ben"}
    assert kwscore("class", "--max-epochs", "0", "--models", "all").returncode == 0
    assert classroom.load_limits(runs) == ClassLimits(max_queued_per_student=1)


def test_a_foreground_run_is_never_taken_by_a_worker(runs, small_synth):
    run_id = jobs.create_run(config(small_synth), runs, foreground=True)  # `kwscore train` trains it itself
    assert jobs.queue_order(runs) == [] and jobs.claim_next(runs) is None and jobs.revive_worker(runs) is None
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    RunFiles(runs / run_id).update_status(supervisor_pid=gone.pid, heartbeat=now() - 60)  # the command died
    status = jobs.refresh_status(run_id, runs, timeout=5)
    assert status["state"] == "failed" and "in the foreground" in status["error"]


def test_the_gpu_is_used_by_one_run_at_a_time(runs, small_synth, monkeypatch):
    """The lock around CUDA runs (this machine has no GPU: the lock itself is what is tested)."""
    import threading

    from kwscore.runfiles import lock_is_held

    monkeypatch.setattr(jobs, "_uses_gpu", lambda: True)
    a, b, c = queue(runs, small_synth, "ana", "ben", "cleo")
    lock = runs / f"gpu-{jobs._safe_host()}.lock"
    got = {}

    def turn(run_id):
        got[run_id] = jobs._gpu_turn(RunFiles(runs / run_id))

    with jobs._gpu_turn(RunFiles(runs / a)):
        assert lock_is_held(lock)
        waiting = [threading.Thread(target=turn, args=(r,)) for r in (b, c)]
        for t in waiting:
            t.start()
        deadline = time.monotonic() + 10
        while not all("waiting for the GPU" in jobs.read_log(r, runs) for r in (b, c)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        jobs.cancel(b, runs)  # a run cancelled while it waits for the GPU gives up its turn
        waiting[0].join(10)
        assert got == {b: None} and waiting[1].is_alive()
    waiting[1].join(10)  # a's turn is over: c gets the GPU
    assert got[c] is not None and lock_is_held(lock)
    with got[c]:
        pass
    assert not lock_is_held(lock)
