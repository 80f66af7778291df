"""Bad input, family "queue messages": whatever is written into the queue behind kwscore's back.

Huey pickles its messages by default, so one row in ``runs/queue.sqlite3`` or one item pushed onto
the Redis list ``huey.redis.kwsstudio`` (the queue "kws-studio") used to run code in the worker. Now a message is JSON signed
with the queue secret. Each case below is written straight into the queue of a live worker — on
SQLite and on a real ``redis-server`` — and must be dropped without running anything (the pickles
would ``touch`` a marker file, as a plain ``pickle.loads`` shows), be logged in worker.log, and
leave the worker serving.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kwscore import jobs
from tests.badinput.harness import MAX_MB, MAX_SECONDS
from tests.workers import kill_started_workers

SECRET = "badinput-queue-secret-" + "7" * 32
SALT = "kws-studio"
QUEUE = "kws-studio"
REDIS_LIST = "huey.redis.kwsstudio"  # Huey drops the "-" of the queue's name in its Redis keys
REJECTED = "rejected a queue message"
POLL_S = 1.0  # an idle worker looks at the SQLite queue about once a second


class Touch:
    """Unpickling this runs ``touch <marker>`` (what an attacker's payload would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def sign(data: bytes, secret: str = SECRET) -> bytes:
    """What Huey's SignedSerializer appends: ``data:hexdigest``."""
    from huey.serializer import SignedSerializer

    return SignedSerializer(secret=secret, salt=SALT)._sign(data)


def message_json(name: str = "kwscore.run", args=("20260101-000000-m5-abcdef", "/tmp")) -> bytes:
    fields = {"id": "0f0f", "name": name, "args": list(args), "kwargs": {}}
    return json.dumps({"$message": fields}).encode()


def payloads(marker: Path) -> dict[str, bytes]:
    from huey.registry import Message
    from huey.serializer import Serializer

    evil = pickle.dumps(Touch(marker))
    in_message = Serializer().serialize(Message("0f0f", "kwscore.run", None, 0, 0, None, (Touch(marker),), {},
                                                None, None, None, None, None, None, None))  # fmt: skip
    return {
        "pickle-os-system": evil,
        "pickle-huey-message": in_message,  # exactly what the old (pickling) queue held, with a payload inside
        "pickle-gzip": gzip.compress(evil),
        "pickle-signed-wrong-secret": sign(evil, secret="guessed-secret"),
        "pickle-signed-right-secret": sign(evil),  # even a signed pickle is never unpickled
        "json-unsigned": message_json(),
        "json-forged-signature": message_json() + b":" + b"0" * 40,
        "json-signed-unknown-task": sign(message_json(name="os.system", args=["touch", str(marker)])),
        "json-signed-unknown-field": sign(b'{"$message": {"id": "1", "name": "kwscore.run", "evil": 1}}'),
        "json-signed-deep": sign(b"[" * 30_000 + b"]" * 30_000),
        "json-signed-not-a-message": sign(b'"just a string"'),
        "garbage": bytes(range(256)) * 4,
        "empty": b"",
        "separator-only": b":",
        "huge-8MB": b"A" * (8 * 2**20),
    }


CASES = list(payloads(Path("/nonexistent")))


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process (Linux ``VmHWM``), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


class Worker:
    """A real ``kwscore worker`` serving a runs folder, on SQLite or Redis."""

    def __init__(self, backend: str, root: Path, url: str | None) -> None:
        self.backend, self.root, self.url = backend, root, url
        self.pid = jobs.ensure_worker(root)
        if backend == "redis":  # the list the worker pops is the one pushed to below
            assert jobs._queue(root)[0].storage.queue_key == REDIS_LIST
        deadline = time.monotonic() + 30
        while not (self.root / "queue.sqlite3").exists() and backend == "sqlite":
            assert time.monotonic() < deadline, "the worker did not create its queue"
            time.sleep(0.05)
        while REJECTED not in self.log() and "serving" not in self.log():
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)

    def log(self) -> str:
        path = self.root / jobs.WORKER_LOG
        return path.read_text(errors="replace") if path.exists() else ""

    def push(self, data: bytes) -> None:
        """Write one raw message into the queue, as an attacker with access to it would."""
        if self.backend == "sqlite":
            with sqlite3.connect(self.root / "queue.sqlite3") as db:
                db.execute("insert into task (queue, data, priority) values (?, ?, ?)", (QUEUE, data, 0))
        else:
            import redis

            redis.Redis.from_url(self.url).lpush(REDIS_LIST, data)

    def pending(self) -> int:
        if self.backend == "sqlite":
            with sqlite3.connect(self.root / "queue.sqlite3") as db:
                return db.execute("select count(*) from task where queue = ?", (QUEUE,)).fetchone()[0]
        import redis

        return redis.Redis.from_url(self.url).llen(REDIS_LIST)


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def worker(request, tmp_path_factory):
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    base = tmp_path_factory.mktemp(f"queue-{request.param}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KWS_HOME", str(base / "home"))
        mp.setenv("KWS_QUEUE_SECRET", SECRET)
        mp.setenv("KWS_RUN_THREADS", "1")
        if url:
            mp.setenv("KWS_QUEUE_URL", url)
        else:
            mp.delenv("KWS_QUEUE_URL", raising=False)
        root = base / "runs"
        root.mkdir()
        w = Worker(request.param, root, url)
        try:
            yield w
        finally:
            kill_started_workers()
            jobs._QUEUES.clear()


@pytest.mark.parametrize("case", CASES)
def test_a_forged_queue_message_never_runs_and_is_logged(worker, case, tmp_path):
    marker = tmp_path / "marker"
    data = payloads(marker)[case]
    if case.startswith("pickle-os-system"):  # the payload is real: a plain pickle.loads would run it
        subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
                       input=data, check=True)  # fmt: skip
        assert marker.exists()
        marker.unlink()
    before = worker.log().count(REJECTED)
    pid = jobs.worker_pid(worker.root)
    started = time.monotonic()
    worker.push(data)
    while worker.log().count(REJECTED) == before:
        assert time.monotonic() - started < 20, f"not rejected (or not logged): {worker.log()[-2000:]}"
        time.sleep(0.02)
    seconds = time.monotonic() - started
    time.sleep(0.2)
    assert not marker.exists(), "the message ran code in the worker"
    assert worker.pending() == 0
    assert jobs.worker_pid(worker.root) == pid, "the worker must keep running"
    assert seconds <= MAX_SECONDS + POLL_S and vm_hwm_mb(pid) <= MAX_MB, (seconds, vm_hwm_mb(pid))
    line = [x for x in worker.log().splitlines() if REJECTED in x][-1]
    assert "dropped, not run" in line and "Traceback" not in worker.log()


@pytest.mark.slow
def test_the_queue_still_runs_real_runs_after_the_forgeries(worker, small_synth):
    """Our own messages are signed JSON: after every forgery above, a real run still trains."""
    from kwscore.recipes import default_config

    config = default_config("m5", data=str(small_synth), epochs=1, batch_size=32, augment="none", threads=1,
                            model_kwargs={"n_channel": 4, "stride": 16})  # fmt: skip
    run_id = jobs.launch(config, worker.root)  # through SQLite or Redis, as the worker serves
    deadline = time.monotonic() + 120
    while jobs.refresh_status(run_id, worker.root)["state"] not in jobs.FINAL_STATES:
        assert time.monotonic() < deadline, jobs.read_log(run_id, worker.root)
        time.sleep(0.2)
    assert jobs.refresh_status(run_id, worker.root)["state"] == "succeeded", jobs.read_log(run_id, worker.root)
    assert jobs.worker_pid(worker.root) == worker.pid
