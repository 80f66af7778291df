"""The ready model shipped in kwscore/pretrained/: its files, installing it once, and Try it using it.

Installing is switched on here with ``KWS_READY_MODEL=1`` (tests/conftest.py turns it off for the
rest of the suite, whose tests start from an empty runs folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from kwscore import jobs, paths, pretrained
from kwscore.errors import KwsError
from kwscore.runfiles import RunFiles

REPO = Path(__file__).resolve().parent.parent
SHIPPED = pretrained.HERE / pretrained.READY


@pytest.fixture
def ready_on(monkeypatch, tmp_path):
    """Installing switched on; a fresh data folder (nothing generated) and runs folder."""
    monkeypatch.setenv("KWS_READY_MODEL", "1")
    monkeypatch.setenv("KWS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KWS_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def shipped_about() -> dict:
    info = pretrained.about(SHIPPED)
    assert info is not None, f"{SHIPPED}/about.json is missing or damaged: run benchmarks/make_ready_model.py"
    return info


# ------------------------------------------------------------------------------------------------
# The shipped files
# ------------------------------------------------------------------------------------------------


def test_the_shipped_run_is_complete_small_and_loads_with_weights_only():
    assert [p.name for p in pretrained.shipped()][0] == pretrained.READY
    for name in pretrained.FILES:
        assert (SHIPPED / name).is_file(), name
    weights = (SHIPPED / "best.pt").read_bytes()
    assert len(weights) < 1_000_000, "the shipped checkpoint must stay under 1 MB"
    ckpt = torch.load(SHIPPED / "best.pt", map_location="cpu", weights_only=True)  # no pickled code
    info = shipped_about()
    assert info["run_id"] == f"{pretrained.READY}-{hashlib.sha256(weights).hexdigest()[:6]}"
    config = json.loads((SHIPPED / "config.json").read_text())
    assert config["model"] == info["model"] == ckpt["model_name"] == "embed"
    assert config["data"] == ckpt["run_config"]["data"] == pretrained.EMBEDDED and not config["mix"]
    assert config["name"] and "real voices" in config["notes"]
    status = json.loads((SHIPPED / "status.json").read_text())
    assert status["state"] == "succeeded" and status["run_id"] == info["run_id"]
    assert not {"pid", "host", "pid_start", "heartbeat"} & set(status), "nothing of the machine that trained it"
    report = json.loads((SHIPPED / "report.json").read_text())
    assert report["labels"] == ckpt["labels"] and report["run_id"] == info["run_id"]
    text = (SHIPPED / "report.json").read_text() + (SHIPPED / "config.json").read_text()
    assert "/tmp/" not in text and str(Path.home()) not in text, "no path of the machine that trained it"
    real = info["real"]
    assert real["commands"] == 8 and set(real["per_word"]) == {"up", "down", "left", "right", "stop", "go", "yes", "no"}
    assert real["clips"] > 0 and 0 <= real["accuracy"] <= 1
    assert info["command"] == "python benchmarks/make_ready_model.py"


def test_it_was_trained_on_todays_default_embedded_set():
    """The installed run points at the local default embedded set: the model must have learnt from that
    set (same generator and parameters), or its "test split" would hold voices it trained on."""
    from kwscore.data.synth import GENERATOR_VERSION, SynthParams

    trained = shipped_about()["trained_on"]
    assert (trained["generator_version"], trained["params"]) == (GENERATOR_VERSION, asdict(SynthParams())), (
        "the embedded dataset changed since the ready model was made: run `python benchmarks/make_ready_model.py`"
    )


def test_the_line_on_try_it_is_made_of_about_json():
    info = shipped_about()
    line = pretrained.ready_line(info)
    assert line == (
        "Ready model: a small head on a pretrained speech embedding, trained on the embedded synthetic speech "
        f"({info['trained_on']['clips']:,} clips, "
        f"{info['trained_on']['speakers']:,} voices); on real voices it gets {100 * info['real']['accuracy']:.1f} % "
        "(8 commands)."
    )
    changed = {**info, "real": {**info["real"], "accuracy": 0.5}}
    assert "gets 50.0 %" in pretrained.ready_line(changed)


def test_about_of_an_ordinary_or_damaged_run_is_none(tmp_path):
    assert pretrained.about(tmp_path) is None
    (tmp_path / "about.json").write_text('{"model": "cnn", "real": {"accuracy": 7}}')
    assert pretrained.about(tmp_path) is None
    (tmp_path / "about.json").write_text("not json")
    assert pretrained.about(tmp_path) is None


# ------------------------------------------------------------------------------------------------
# Installing
# ------------------------------------------------------------------------------------------------


def test_install_makes_an_ordinary_run_on_the_local_embedded_data(ready_on):
    from kwscore.evaluation import load_run_model
    from kwscore.inference import Predictor

    run_id = shipped_about()["run_id"]
    assert pretrained.install() == [run_id]
    folder = ready_on / run_id
    local = str(paths.synth_root())
    config = RunFiles(folder).read_config()
    assert config["data"] == local and config["name"] == "Ready model (embedded data)"
    ckpt = torch.load(folder / "best.pt", map_location="cpu", weights_only=True)
    assert ckpt["run_config"]["data"] == local
    original = torch.load(SHIPPED / "best.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert ckpt["state_dict"].keys() == original.keys()
    assert all(torch.equal(w, original[k]) for k, w in ckpt["state_dict"].items()), "the same weights"
    report = RunFiles(folder).read_report()
    assert all(m["path"].startswith(local + "/") for m in report["misclassified"])
    assert pretrained.EMBEDDED not in (folder / "report.json").read_text() + (folder / "config.json").read_text()
    (info,) = jobs.list_runs()
    assert (info.run_id, info.state, info.model) == (run_id, "succeeded", "embed") and not info.error
    assert info.test_accuracy == pytest.approx(report["accuracy"])
    assert pretrained.about(folder) == shipped_about()
    labels = load_run_model(folder)[2]
    p = Predictor.from_run(folder).predict(torch.zeros(1, 16000) + 1e-3 * torch.randn(1, 16000))
    assert p.labels == labels and abs(float(p.probs.sum()) - 1) < 1e-4
    assert not [p for p in ready_on.iterdir() if p.name.startswith(".ready-") and p.is_dir()], "no temporary left"


def test_install_is_idempotent_and_a_deleted_ready_model_stays_deleted(ready_on):
    run_id = shipped_about()["run_id"]
    assert pretrained.install() == [run_id]
    before = (ready_on / run_id / "config.json").stat().st_mtime_ns
    assert pretrained.install() == []
    assert (ready_on / run_id / "config.json").stat().st_mtime_ns == before
    jobs.delete(run_id)
    assert pretrained.install() == [] and not (ready_on / run_id).exists()
    assert pretrained.installed(ready_on) == [run_id]


def test_install_never_overwrites_a_run_of_the_same_id(ready_on):
    run_id = shipped_about()["run_id"]
    mine = ready_on / run_id
    mine.mkdir(parents=True)
    (mine / "config.json").write_text('{"model": "m5"}')
    assert pretrained.install() == []
    assert sorted(p.name for p in mine.iterdir()) == ["config.json"]
    assert (mine / "config.json").read_text() == '{"model": "m5"}'


def test_install_can_be_turned_off(ready_on, monkeypatch):
    monkeypatch.setenv("KWS_READY_MODEL", "0")
    assert pretrained.install() == [] and not ready_on.exists()


def test_an_unwritable_runs_folder_is_a_message(ready_on, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(KwsError, match="Could not install the ready model"):
        pretrained.install(blocker)


@pytest.mark.slow
def test_two_processes_at_once_install_it_once(ready_on):
    code = "from kwscore import pretrained; print(pretrained.install())"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    run_id = shipped_about()["run_id"]
    assert outputs == sorted(["[]", f"['{run_id}']"]), "one of them installs it, the other finds it done"
    assert [p.name for p in ready_on.iterdir() if not p.name.startswith(".")] == [run_id]


@pytest.mark.slow
def test_kwscore_runs_lists_the_ready_model(ready_on):
    run_id = shipped_about()["run_id"]
    env = {**os.environ}
    cmd = [sys.executable, "-m", "kwscore.cli", "runs"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"Added {run_id}. Ready model: a small head on a pretrained speech embedding" in first.stderr
    assert run_id in first.stdout and "succeeded" in first.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert "Added" not in again.stderr and run_id in again.stdout


# ------------------------------------------------------------------------------------------------
# Try it, on a fresh runs folder (AppTest)
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_dashboard(kws_env, monkeypatch):
    """The dashboard on the embedded dataset, an empty runs folder, installing switched on."""
    monkeypatch.setenv("KWS_READY_MODEL", "1")
    return kws_env


def open_try_it():
    from tests.test_pages_try import open_page

    at = open_page("try_it")
    run_id = shipped_about()["run_id"]
    assert at.selectbox(key="try_run").value == run_id, "the ready model is offered"
    assert [i.value for i in at.info if i.value.startswith("Ready model:")] == [pretrained.ready_line(shipped_about())]
    return at


def classified(at) -> None:
    from tests.test_pages_try import chart, chart_keys

    assert not at.exception, at.exception
    verdicts = [e.value for e in [*at.success, *at.warning, *at.info] if "Heard" in e.value or "onfident" in e.value
                or "No keyword" in e.value]  # fmt: skip
    assert len(verdicts) == 1, verdicts
    assert {"try_clip_wave", "try_clip_spec", "try_probs"} <= chart_keys(at)
    labels = json.loads((SHIPPED / "report.json").read_text())["labels"]
    assert len(chart(at, "try_probs")["data"][0]["x"]) == len(labels)  # one bar per class of the ready model


def test_try_it_offers_the_ready_model_and_classifies_an_upload(fresh_dashboard):
    from kwscore.data.dataset import SpeechCommands
    from tests.test_pages_try import encode, upload

    at = open_try_it()
    clip = SpeechCommands(fresh_dashboard / "synthetic", subset="testing", commands=["yes"]).waveform(0)[0].numpy()
    upload(at, "yes.wav", encode(np.stack([clip, 0.7 * clip], axis=1), 16000))  # stereo
    classified(at)


def test_try_it_classifies_a_real_recording(fresh_dashboard, shared_real):
    from tests.test_pages_try import upload

    at = open_try_it()
    clip = sorted((shared_real / "SpeechCommands" / "speech_commands_v0.02" / "stop").glob("*.wav"))[0]
    upload(at, "stop.wav", clip.read_bytes())
    classified(at)


@pytest.mark.slow
def test_the_stored_real_accuracy_is_what_the_shipped_model_gets(ready_on, shared_real):
    """about.json's figures are measured, not typed: the installed model, scored again the same way."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from sim_to_real import command_accuracy

    (run_id,) = pretrained.install()
    accuracy, per_word = command_accuracy(ready_on / run_id, shared_real, None)
    real = shipped_about()["real"]
    assert accuracy == pytest.approx(real["accuracy"], abs=1e-4)
    assert per_word == pytest.approx(real["per_word"], abs=1e-4)


def test_paths_of_the_training_machine_become_the_local_dataset():
    """make_ready_model.py writes the training data root as ${EMBEDDED}; install puts the local root there."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from make_ready_model import placeholder

    trained = {"data": "/home/lead/.kws-studio/data/synthetic", "mix": [], "seed": 3,
               "misclassified": [{"path": "/home/lead/.kws-studio/data/synthetic/SpeechCommands/x/go/a.wav"}],
               "other": "/home/lead/.kws-studio/data/synthetic-2/b.wav"}  # fmt: skip
    shipped = placeholder(trained, "/home/lead/.kws-studio/data/synthetic/")
    assert shipped["data"] == pretrained.EMBEDDED and shipped["other"] == trained["other"] and shipped["seed"] == 3
    assert shipped["misclassified"][0]["path"] == pretrained.EMBEDDED + "/SpeechCommands/x/go/a.wav"
    local = pretrained.fill(shipped, "/srv/kws/synthetic")
    assert local["data"] == "/srv/kws/synthetic"
    assert local["misclassified"][0]["path"] == "/srv/kws/synthetic/SpeechCommands/x/go/a.wav"
