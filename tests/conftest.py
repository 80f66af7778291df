"""Shared fixtures: small real synthetic datasets made with espeak-ng, the shared real set."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_REAL = REPO.parent / "shared" / "data" / "speech-commands-real"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Tests start from an empty runs folder: the ready model shipped with kwscore (kwscore.pretrained) joins a
# runs folder only where a test asks for it (KWS_READY_MODEL=1, tests/test_pretrained.py). Inherited by
# the subprocesses tests start (kwscore, streamlit).
os.environ["KWS_READY_MODEL"] = "0"
# The embedded dataset of the tests (and of the dashboards they start): 40 synthetic speakers instead of
# the default 160, so that it is made in seconds and models train on it quickly.
os.environ["KWS_SYNTH_SPEAKERS"] = "40"
# ... in a quiet studio (no simulated rooms, microphones or noise): the tests check pages, files and
# mechanisms with small models trained in seconds; realism is tested in test_synth/test_augment and
# measured by benchmarks/sim_to_real.py.
os.environ["KWS_SYNTH_ROOMS"] = "0"


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory) -> Path:
    """8 commands × 10 speakers × 2 takes (160 clips), generated once per test session."""
    from kwscore.data.synth import SynthParams, generate

    root = tmp_path_factory.mktemp("small-synth")
    return generate(root, SynthParams(speakers=10, words="commands", utterances=2, keyword_utterances=0, seed=1, rooms=False))


@pytest.fixture(scope="session")
def small_synth_all(tmp_path_factory) -> Path:
    """All 35 words × 10 speakers × 1 take (350 clips): a dataset with words beyond the commands."""
    from kwscore.data.synth import SynthParams, generate

    root = tmp_path_factory.mktemp("small-synth-all")
    return generate(root, SynthParams(speakers=10, words="all", utterances=1, keyword_utterances=0, seed=3, rooms=False))


@pytest.fixture(scope="session")
def embedded_data_dir(tmp_path_factory) -> Path:
    """A KWS_DATA_DIR holding the default embedded dataset (what the dashboard generates)."""
    from kwscore import paths
    from kwscore.data.synth import default_params, generate

    data_dir = tmp_path_factory.mktemp("kws-data")
    old = os.environ.get("KWS_DATA_DIR")
    os.environ["KWS_DATA_DIR"] = str(data_dir)
    try:
        generate(paths.synth_root(), default_params())
    finally:
        if old is None:
            del os.environ["KWS_DATA_DIR"]
        else:
            os.environ["KWS_DATA_DIR"] = old
    return data_dir


@pytest.fixture
def kws_env(embedded_data_dir, tmp_path, monkeypatch) -> Path:
    """Point the dashboard at the embedded dataset and a fresh runs directory."""
    monkeypatch.setenv("KWS_DATA_DIR", str(embedded_data_dir))
    monkeypatch.setenv("KWS_RUNS_DIR", str(tmp_path / "runs"))
    return embedded_data_dir


@pytest.fixture
def shared_real() -> Path:
    """The shared real recordings (CC BY 4.0, never copied into the repo); skips if absent."""
    if not (SHARED_REAL / "SpeechCommands" / "speech_commands_v0.02").is_dir():
        pytest.skip("../shared/data/speech-commands-real is not present on this machine")
    return SHARED_REAL


# A real Redis server where Redis is the subject (tests/badinput/test_queue.py, tests/test_redis_workers.py).
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
