"""Two machines, one class: workers of two hosts share a runs folder and a real Redis queue.

Two ``kwscore worker`` processes are started as if on two machines (``KWS_HOST`` pc1 and pc2, the
same runs folder, ``KWS_QUEUE_URL`` naming a real ``redis-server`` with a password, the same
``KWS_QUEUE_SECRET``). This test process is a third "machine" (the dashboard's): it judges runs of
pc1 and pc2 by their heartbeats only. Checked: both workers take runs; a cancel from here stops a
run on another host; a run killed together with its worker (no supervisor left to mark it) is marked
failed by its stale heartbeat, naming the host; a run a worker had taken but not started when it
died goes back to the queue and another host's worker runs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kwscore import jobs
from kwscore.recipes import default_config

pytestmark = pytest.mark.slow

HEARTBEAT_TIMEOUT = 6.0  # s: runs heartbeat every 2 s; a loaded 2-core machine must not miss 3 in a row


def config(data, owner, epochs):
    return default_config(
        "m5", data=str(data), epochs=epochs, batch_size=32, augment="none", threads=1,
        model_kwargs={"n_channel": 4, "stride": 16}, owner=owner,
    )  # fmt: skip


class Worker:
    """``kwscore worker`` of host ``host`` (its own process group: killpg ends it with its runs)."""

    def __init__(self, host: str, root: Path, env: dict) -> None:
        self.host, self.root = host, root
        self.log_path = root.parent / f"worker-{host}-{time.monotonic_ns()}.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kwscore.cli", "worker", "--runs-dir", str(root), "--concurrency", "1"],
                env={**env, "KWS_HOST": host}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_serving(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while "serving" not in self.log():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log()
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, group: bool = True) -> None:
        try:
            (os.killpg if group else os.kill)(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def status(run_id, root):
    return jobs.refresh_status(run_id, root, timeout=HEARTBEAT_TIMEOUT)


def test_two_hosts_share_the_queue_cancel_and_notice_each_others_deaths(redis_url, small_synth, tmp_path,
                                                                         monkeypatch):  # fmt: skip
    root = tmp_path / "runs"
    root.mkdir()
    env = {
        **os.environ, "KWS_HOME": str(tmp_path / "home"), "KWS_QUEUE_URL": redis_url,
        "KWS_QUEUE_SECRET": "two-hosts-" + "5" * 32, "KWS_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "KWS_RUN_THREADS": "1", "KWS_WORKERS": "1",
    }  # fmt: skip
    for key in ("KWS_HOME", "KWS_QUEUE_URL", "KWS_QUEUE_SECRET", "KWS_RUN_THREADS"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("KWS_HOST", raising=False)  # this process: the dashboard's machine, neither pc1 nor pc2
    jobs._QUEUES.clear()
    workers = [Worker("pc1", root, env), Worker("pc2", root, env)]
    orphan_pid = None
    try:
        for w in workers:
            w.wait_serving()
        assert {p.name for p in root.glob("worker-*.lock")} == {"worker-pc1.lock", "worker-pc2.lock"}

        # 1. both hosts take runs
        first = [jobs.launch(config(small_synth, owner, 400), root, start_worker=False) for owner in ("ana", "ben")]
        running = wait_for(lambda: all(status(r, root)["state"] == "running" for r in first)
                           and {status(r, root)["host"]: r for r in first}, 60, "both runs to train")  # fmt: skip
        assert set(running) == {"pc1", "pc2"}, running

        # 2. pc1's worker dies alone: its run trains on (an orphan of pc1); a new pc1 worker takes the
        #    next run but waits for that orphan (one run at a time on pc1): taken, not started
        workers[0].kill(group=False)
        workers.append(Worker("pc1", root, env))
        workers[-1].wait_serving()
        waiting = jobs.launch(config(small_synth, "cleo", 1), root, start_worker=False)
        wait_for(lambda: "waiting for" in jobs.read_log(waiting, root), 30, "pc1's new worker to take the run")
        taken = status(waiting, root)
        assert taken["state"] == "queued" and taken["claimed_by"] == f"pc1/{workers[-1].proc.pid}"
        assert status(running["pc1"], root)["state"] == "running"

        # 3. pc1 goes away: its run process and its worker are killed (nobody on pc1 is left to say so)
        orphan_pid = status(running["pc1"], root)["pid"]
        os.kill(orphan_pid, signal.SIGKILL)
        workers[-1].kill()
        killed_at = time.monotonic()
        failed = wait_for(lambda: (s := status(running["pc1"], root))["state"] == "failed" and s, 30,
                          "the killed run of pc1 to be marked failed")  # fmt: skip
        assert failed["error"].startswith("no heartbeat from host pc1 since"), failed["error"]
        assert time.monotonic() - killed_at >= HEARTBEAT_TIMEOUT - 2.5  # by its heartbeat, not at once
        back = wait_for(lambda: ((s := status(waiting, root))["state"] != "queued" or not s.get("claimed_by")) and s,
                        30, "the run taken by pc1's dead worker to go back to the queue")  # fmt: skip
        assert back.get("requeues") == 1 or back.get("host") == "pc2", back

        # 4. a cancel from this machine stops pc2's run; pc2 then runs the run pc1 never started
        owner = jobs.run_info(running["pc2"], root).owner
        assert jobs.cancel(running["pc2"], root, user=owner) in ("running", "cancelled")
        wait_for(lambda: status(running["pc2"], root)["state"] == "cancelled", 30, "pc2's run to stop")
        done = wait_for(lambda: (s := status(waiting, root))["state"] in jobs.FINAL_STATES and s, 60,
                        "the re-queued run to finish on pc2")  # fmt: skip
        assert done["state"] == "succeeded" and done["host"] == "pc2", jobs.read_log(waiting, root)
        assert "stopped before starting this run: back in the queue" in jobs.read_log(waiting, root)
        assert "Traceback" not in workers[1].log(), workers[1].log()
        assert jobs.queue_order(root) == []
    finally:
        for w in workers:
            w.kill()
        if orphan_pid:
            try:
                os.kill(orphan_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        jobs._QUEUES.clear()
