"""Your voice in a minute: fine-tuning a finished run on a few takes (``kwscore finetune``,
:func:`kwscore.recipes.finetune_config`), through the same runner as every training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kwscore.data.dataset import SpeechCommands
from kwscore.data.words import COMMANDS
from kwscore.errors import KwsError
from kwscore.labels import SILENCE, UNKNOWN
from kwscore.models import build_model
from kwscore.recipes import FINETUNE, default_config, finetune_config
from kwscore.runfiles import RunFiles
from kwscore.runner import run_training
from kwscore.training import save_checkpoint
from kwscore.training_data import select_replay
from kwscore.userdata import save_take

REPO = Path(__file__).resolve().parent.parent
LABELS = [*sorted(COMMANDS), UNKNOWN, SILENCE]
TAKES = 5  #: takes per word of the "user": 0-2 training, 3 validation, 4 testing


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """"My recordings": 5 takes of each command by one synthetic voice that no model here heard,
    saved through :func:`kwscore.userdata.save_take` as the Your-own-words page saves them."""
    from kwscore.data.synth import SynthParams, generate

    source = generate(tmp_path_factory.mktemp("voice"), SynthParams(speakers=3, words="commands", utterances=TAKES, keyword_utterances=0, seed=7))
    ds = SpeechCommands(source, None, commands="8")
    speaker = sorted(set(ds.speakers()))[0]
    root = tmp_path_factory.mktemp("my-recordings")
    for i in range(len(ds)):
        _, _, word, who, _ = ds.get_metadata(i)
        if who == speaker:
            save_take(root, word, "Ada", ds.waveform(i), 16000)
    return root


def fake_parent(runs: Path, data: Path, labels=LABELS) -> Path:
    """A finished run folder with an untrained CNN: enough for the config and error paths."""
    config = default_config("cnn", data=str(data), model_kwargs={"channels": [8, 16]}, lr=0.004)
    folder = runs / "20260103-000000-cnn-f1e2d3"
    RunFiles(folder).dir.mkdir(parents=True)
    RunFiles(folder).write_config(config.to_dict())
    model = build_model("cnn", len(labels), channels=[8, 16])
    save_checkpoint(folder / "best.pt", model, {"labels": labels, "run_config": config.to_dict()})
    return folder


def test_finetune_config_records_its_parent_and_mixes_in_the_takes(small_synth_all, recordings, tmp_path):
    parent = fake_parent(tmp_path / "runs", small_synth_all)
    config = finetune_config(parent, recordings, tmp_path / "runs")
    assert config.init == parent.name  # the parent's id: it lives in the same runs folder
    assert config.mix == [str(recordings.resolve())] and config.data == str(small_synth_all)
    assert config.commands == sorted(COMMANDS) and config.unknown is True  # the parent's words and classes
    assert config.model == "cnn" and config.model_kwargs == {"channels": [8, 16]}
    assert config.epochs == FINETUNE["epochs"] and config.lr == pytest.approx(0.0004)
    assert config.scheduler == "constant" and config.replay == FINETUNE["replay"]
    elsewhere = finetune_config(parent, recordings, tmp_path / "other-runs", epochs=2, replay=3)
    assert elsewhere.init == str(parent.resolve()) and elsewhere.epochs == 2 and elsewhere.replay == 3


def test_finetune_refuses_what_it_cannot_do(small_synth_all, recordings, tmp_path):
    runs = tmp_path / "runs"
    parent = fake_parent(runs, small_synth_all, labels=["bed", "cat", UNKNOWN, SILENCE])
    with pytest.raises(KwsError, match="No takes of this model's words"):
        finetune_config(parent, recordings, runs)  # the recordings hold commands, not bed/cat
    (parent / "best.pt").unlink()
    with pytest.raises(KwsError, match="has no best.pt"):
        finetune_config(parent, recordings, runs)


def test_replay_keeps_every_new_clip_and_a_few_per_word_of_the_old(small_synth_all, recordings):
    ds = SpeechCommands([small_synth_all, recordings], "training", commands="8")
    chosen = select_replay(ds, [str(small_synth_all)], per_word=3, seed=0)
    mine = [i for i in chosen if ds.path(i).is_relative_to(recordings)]
    old = [i for i in chosen if not ds.path(i).is_relative_to(recordings)]
    assert len(mine) == 8 * 3  # every training take: takes 0, 1, 2 of 8 words
    assert sorted(ds.get_metadata(i)[2] for i in old) == sorted(COMMANDS * 3)
    assert chosen == select_replay(ds, [str(small_synth_all)], per_word=3, seed=0)


def test_cli_finetune_mistakes_are_one_line(tmp_path, recordings):
    done = subprocess.run([sys.executable, "-m", "kwscore.cli", "finetune", "no-such-run", "--runs-dir", tmp_path,
                           "--data", recordings], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "no-such-run" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def parent_run(small_synth_all, tmp_path_factory) -> Path:
    from tests.task_model import trained_task_run

    return trained_task_run(small_synth_all, tmp_path_factory.mktemp("finetune-runs"))


def held_out_score(run: Path, recordings: Path) -> tuple[float, float]:
    """(mean probability of the true word, accuracy) on the user's takes 3 and 4 (never trained on)."""
    from kwscore.inference import Predictor

    predictor = Predictor.from_run(run)
    ds = SpeechCommands(recordings, None, commands="8")
    held = [i for i in range(len(ds)) if ds.get_metadata(i)[4] >= 3]
    probs, right = [], 0
    for i in held:
        word = ds.get_metadata(i)[2]
        p = predictor.predict(ds.waveform(i))
        probs.append(float(p.probs[p.labels.index(word)]))
        right += p.word == word
    return sum(probs) / len(probs), right / len(held)


@pytest.mark.slow
def test_finetuning_helps_the_same_voice_on_held_out_takes(parent_run, recordings):
    runs = parent_run.parent
    before = held_out_score(parent_run, recordings)
    config = finetune_config(parent_run, recordings, runs)
    result = run_training(config, runs / "20260103-000001-cnn-0f1e2d")
    assert result.state == "succeeded"
    after = held_out_score(result.run_dir, recordings)
    assert after[0] > before[0] and after[1] >= before[1], (before, after)

    stored = json.loads((result.run_dir / "config.json").read_text())
    assert stored["init"] == parent_run.name and str(recordings.resolve()) in stored["mix"]
    epochs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum(e["kind"] == "epoch" for e in epochs) == FINETUNE["epochs"]  # the runner's own loop
    selection = result.report["train_selection"]["per_class"]
    assert selection["yes"] == 3 + min(FINETUNE["replay"], 8)  # 3 takes + the replay (8 training speakers)
    assert result.report["labels"] == LABELS
    parent_weights = torch.load(parent_run / "best.pt", weights_only=True)["state_dict"]
    child_weights = torch.load(result.run_dir / "best.pt", weights_only=True)["state_dict"]
    assert any(not torch.equal(parent_weights[k], child_weights[k]) for k in parent_weights)


@pytest.mark.slow
def test_cli_finetune_runs_and_prints_the_new_run(parent_run, recordings, tmp_path):
    env = {**os.environ, "KWS_RUNS_DIR": str(parent_run.parent)}
    done = subprocess.run([sys.executable, "-m", "kwscore.cli", "finetune", parent_run.name, "--data", recordings,
                           "--epochs", "1"], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"fine-tuning {parent_run.name} on {recordings}")
    child = Path(done.stdout.strip().splitlines()[-1])
    assert json.loads((child / "config.json").read_text())["init"] == parent_run.name
    assert json.loads((child / "status.json").read_text())["state"] == "succeeded"


@pytest.mark.slow
def test_fine_tune_button_on_your_own_words(parent_run, recordings, embedded_data_dir, tmp_path, monkeypatch):
    import shutil
    import time

    from streamlit.testing.v1 import AppTest

    from kwscore import jobs

    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    (data / "synthetic").symlink_to(embedded_data_dir / "synthetic")
    shutil.copytree(recordings, data / "user")
    shutil.copytree(parent_run, runs / parent_run.name)
    monkeypatch.setenv("KWS_DATA_DIR", str(data))
    monkeypatch.setenv("KWS_RUNS_DIR", str(runs))
    try:
        at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120).run()
        at.switch_page("../pages/record.py").run()
        at.selectbox(key="rec_ft_run").set_value(parent_run.name).run()
        at.button(key="rec_finetune").click().run()
        assert not at.exception, at.exception
        (child,) = [p for p in runs.iterdir() if p.name[:1].isdigit() and p.name != parent_run.name]
        config = json.loads((child / "config.json").read_text())
        assert config["init"] == parent_run.name and str((data / "user").resolve()) in config["mix"]
        deadline = time.monotonic() + 300
        while jobs.refresh_status(child.name, runs)["state"] not in jobs.FINAL_STATES:
            assert time.monotonic() < deadline, "the fine-tuning run did not finish in 5 min"
            time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
        assert any(s.value.startswith("Fine-tuned in") for s in at.success), [s.value for s in at.success]
    finally:
        jobs.stop_worker(runs, stop_runs=True)
