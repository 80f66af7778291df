"""Run labels from the settings that differ, names and notes, and finding a run by id, prefix, suffix or name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kwscore.errors import KwsError
from kwscore.recipes import default_config
from kwscore.runlabels import annotate, compare_labels, resolve_run, settings


def cfg(model: str = "m5", **changes) -> dict:
    """A run config of the embedded set's recipe (the labels do not depend on where the data lives)."""
    return default_config(model, **changes).to_dict()


def test_labels_name_only_what_differs():
    assert compare_labels([cfg(sample_rate=8000), cfg(sample_rate=16000)]) == ["m5 @ 8 kHz", "m5 @ 16 kHz"]
    assert compare_labels([cfg(sample_rate=4000), cfg(sample_rate=8000), cfg()]) == [
        "m5 @ 4 kHz", "m5 @ 8 kHz", "m5 @ 16 kHz"]
    # the cnn's front end, recipe and rate follow from the model: the model's name is enough
    assert compare_labels([cfg("cnn"), cfg("m5")]) == ["cnn", "m5"]
    assert compare_labels([cfg(fraction=0.25), cfg(fraction=0.25, augment="none")]) == [
        "m5 · aug recipe", "m5 · aug none"]
    mel = compare_labels([cfg("cnn"), cfg("cnn", features={"n_mels": 64, "hop_length": 320})])
    assert mel == ["cnn · 40 Mel · 512/480/160", "cnn · 64 Mel · 512/480/320"]
    assert compare_labels([cfg(lr=0.01), cfg(lr=0.001)]) == ["m5 · lr 0.01", "m5 · lr 0.001"]


def test_labels_use_names_and_tell_twins_apart():
    named = cfg(name="baseline")
    assert compare_labels([named, cfg(sample_rate=8000)]) == ["baseline", "m5 @ 8 kHz"]
    twins = compare_labels([cfg(), cfg()], ["20260101-000000-m5-aaaaaa", "20260101-000001-m5-bbbbbb"])
    assert twins == ["m5 · aaaaaa", "m5 · bbbbbb"]
    assert compare_labels([cfg()]) == ["m5"]


def test_settings_in_words():
    words = settings(cfg("cnn", features={"n_fft": 400, "win_length": 400, "hop_length": 200, "n_mels": 128}))
    assert words["rate"] == "16 kHz" and words["front end"] == "128 Mel · 400/400/200"
    assert settings(cfg("m5tutorial"))["rate"] == "8 kHz" and settings(cfg())["front end"] == "raw waveform"
    assert settings(cfg("embed"))["front end"] == "speech embedding"  # not a raw-waveform model
    assert settings({})["model"] == "?"  # a damaged config still gives words


def make_run(root: Path, run_id: str, name: str = "") -> Path:
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**cfg(), "name": name}))
    return folder


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    make_run(root, "20260101-100000-m5-46e218", "m5 at 8 kHz")
    make_run(root, "20260101-110000-m5-46f000")
    make_run(root, "20260102-090000-cnn-abc123", "baseline")
    return root


def test_resolve_by_id_prefix_suffix_and_name(runs):
    assert resolve_run("20260101-100000-m5-46e218", runs).name == "20260101-100000-m5-46e218"
    assert resolve_run("46e218", runs).name == "20260101-100000-m5-46e218"  # the dashboard's 6 characters
    assert resolve_run("20260102", runs).name == "20260102-090000-cnn-abc123"  # a prefix
    assert resolve_run("baseline", runs).name == "20260102-090000-cnn-abc123"
    assert resolve_run("m5 at 8 kHz", runs).name == "20260101-100000-m5-46e218"
    assert resolve_run(str(runs / "20260101-110000-m5-46f000"), runs).name == "20260101-110000-m5-46f000"


def test_ambiguous_or_unknown_runs_are_refused_with_candidates(runs):
    with pytest.raises(KwsError) as err:
        resolve_run("20260101", runs)
    msg = str(err.value)
    assert "matches 2 runs" in msg and "20260101-100000-m5-46e218 (m5 at 8 kHz)" in msg and "46f000" in msg
    with pytest.raises(KwsError, match="No run 'zzz'"):
        resolve_run("zzz", runs)
    with pytest.raises(KwsError, match="Name a run"):
        resolve_run("  ", runs)


def test_annotate_renames_a_run_and_keeps_the_rest(runs):
    folder = runs / "20260101-110000-m5-46f000"
    before = json.loads((folder / "config.json").read_text())
    annotate(folder, "  m5   at 16 kHz ", "keeps the s of yes")
    after = json.loads((folder / "config.json").read_text())
    assert after["name"] == "m5 at 16 kHz" and after["notes"] == "keeps the s of yes"
    assert {k: v for k, v in after.items() if k not in ("name", "notes")} == {
        k: v for k, v in before.items() if k not in ("name", "notes")}
    assert resolve_run("m5 at 16 kHz", runs) == folder
