"""Shared fixtures: small real synthetic datasets made with espeak-ng, the shared real set."""

from __future__ import annotations

import os
import sys
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
    return generate(root, SynthParams(speakers=10, words="commands", utterances=2, seed=1, rooms=False))


@pytest.fixture(scope="session")
def small_synth_all(tmp_path_factory) -> Path:
    """All 35 words × 10 speakers × 1 take (350 clips): a dataset with words beyond the commands."""
    from kwscore.data.synth import SynthParams, generate

    root = tmp_path_factory.mktemp("small-synth-all")
    return generate(root, SynthParams(speakers=10, words="all", utterances=1, seed=3, rooms=False))


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
