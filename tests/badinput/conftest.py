"""Fixtures of the bad-input corpus: a real Redis server where Redis is the subject."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real ``redis-server`` on a free port of 127.0.0.1, with a password and no persistence, for
    this module; its URL as KWS_QUEUE_URL takes it (``redis://:password@127.0.0.1:port/0``).
    Skips when redis-server (Debian's package; ``make test`` installs it) or the client is missing."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (`make test` installs Debian's redis-server)")
    redis = pytest.importorskip("redis")
    folder = tmp_path_factory.mktemp("redis")
    port, password = free_port(), secrets.token_hex(8)
    with open(folder / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder), "--requirepass", password, "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            except redis.exceptions.RedisError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(folder / 'redis.log').read_text()}") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
