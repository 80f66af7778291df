"""The "no keyword" classes (kwscore.labels): how ``_unknown_`` and ``_silence_`` are built per split,
how training adds them (``--no-unknown``, ``--commands 12``), and how reports, the CLI and Try it treat
them as a result, not a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from kwscore.data.dataset import SUBSETS, SpeechCommands
from kwscore.data.layout import dataset_folder
from kwscore.data.words import COMMANDS, TASK_12_WORDS
from kwscore.errors import KwsError
from kwscore.labels import (
    NOISE_SPANS,
    SILENCE,
    SILENCE_DBFS,
    UNKNOWN,
    KeywordTask,
    display_label,
    is_keyword,
    outcome,
    task_dataset,
    with_non_keywords,
)

REPO = Path(__file__).resolve().parent.parent


def labels_of(ds) -> Counter:
    return Counter(ds.get_metadata(i)[2] for i in range(len(ds)))


def word_and_speaker(ds, i) -> tuple[str, str]:
    """The real word folder and speaker of clip i (an _unknown_ clip's id still names its word)."""
    word, name = ds.clip_id(i).split("/")
    return word, name.split("_nohash_")[0]


# ------------------------------------------------------------------------------------------------
# Construction
# ------------------------------------------------------------------------------------------------


def test_each_split_gets_one_class_worth_of_unknown_and_silence(small_synth_all):
    speakers_of_unknown = {}
    for subset in SUBSETS:
        keywords = SpeechCommands(small_synth_all, subset, commands="8")
        task = with_non_keywords(keywords, seed=0)
        assert isinstance(task, KeywordTask)
        assert task.labels == [*sorted(COMMANDS), UNKNOWN, SILENCE]
        counts = labels_of(task)
        per_word = len(keywords) / len(COMMANDS)
        assert all(counts[w] == per_word for w in COMMANDS)
        assert counts[UNKNOWN] == counts[SILENCE] == round(per_word) > 0  # balanced: one class's size
        assert task.targets().tolist() == [task.labels.index(task.get_metadata(i)[2]) for i in range(len(task))]

        split_speakers = set(keywords.speakers())
        unknown = [i for i in range(len(task)) if task.get_metadata(i)[2] == UNKNOWN]
        for i in unknown:
            word, speaker = word_and_speaker(task, i)
            assert word not in COMMANDS and speaker in split_speakers  # another word, said in this split
        assert len({task.clip_id(i) for i in unknown}) == len(unknown)  # no clip twice
        speakers_of_unknown[subset] = {word_and_speaker(task, i)[1] for i in unknown}
    a, b, c = speakers_of_unknown.values()
    assert not (a & b or a & c or b & c)  # no speaker crosses splits


def test_silence_is_cut_from_the_splits_own_stretch_of_the_noise(small_synth_all):
    for subset in SUBSETS:
        task = with_non_keywords(SpeechCommands(small_synth_all, subset, commands="8"), seed=0)
        low, high = NOISE_SPANS[subset]
        silent = [i for i in range(len(task)) if task.get_metadata(i)[2] == SILENCE]
        for i in silent:
            clip = task.waveform(i)
            assert clip.shape == (1, 16000) and torch.isfinite(clip).all()
            level = 20 * torch.log10(clip.pow(2).mean().sqrt())
            assert SILENCE_DBFS[0] - 0.1 <= float(level) <= SILENCE_DBFS[1] + 0.1
            _, _, _, speaker, k = task.get_metadata(i)
            source, start, _ = task.cuts[k]
            total = task.noises[source].shape[-1] / (high - low)  # the whole recording's length
            begin = task.offsets[source] + start
            assert low * total - 1 <= begin and begin + 16000 <= high * total + 1
            assert speaker == "" and task.clip_id(i).startswith(f"{SILENCE}/")


def test_the_same_seed_gives_the_same_clips_and_another_seed_others(small_synth_all):
    def build(seed):
        task = with_non_keywords(SpeechCommands(small_synth_all, "training", commands="8"), seed=seed)
        return [task.clip_id(i) for i in range(len(task))], torch.cat([task.waveform(i) for i in range(len(task) - 4, len(task))])

    ids0, silence0 = build(0)
    ids0b, silence0b = build(0)
    ids1, _ = build(1)
    assert ids0 == ids0b and torch.equal(silence0, silence0b)
    assert ids0 != ids1


def test_all_words_chosen_means_no_extra_classes(small_synth, small_synth_all):
    eight = SpeechCommands(small_synth, "training", commands="8")  # a dataset of the 8 commands only
    assert with_non_keywords(eight, seed=0) is eight
    every = SpeechCommands(small_synth_all, "training", commands="all")
    assert with_non_keywords(every, seed=0) is every
    forced = with_non_keywords(eight, seed=0, always=True)  # a model with the classes, tested here
    counts = labels_of(forced)
    assert counts[UNKNOWN] == 0 and counts[SILENCE] == len(eight) // 8


def test_without_background_recordings_silence_is_coloured_noise(small_synth, tmp_path):
    root = tmp_path / "no-noise"
    shutil.copytree(small_synth, root, ignore=shutil.ignore_patterns("_background_noise_"))
    task = with_non_keywords(SpeechCommands(root, "testing", commands=["go", "no"]), seed=0)  # others: 6 commands
    silent = [i for i in range(len(task)) if task.get_metadata(i)[2] == SILENCE]
    assert silent and all("generated" in task.clip_id(i) for i in silent)
    assert all(task.waveform(i).abs().max() > 0 for i in silent)


def test_a_selection_of_a_task_keeps_decoding_silence(small_synth_all):
    task = with_non_keywords(SpeechCommands(small_synth_all, "training", commands="8"), seed=0)
    view = task.select([0, len(task) - 1])
    assert isinstance(view, KeywordTask) and view.get_metadata(1)[2] == SILENCE
    assert torch.equal(view.waveform(1), task.waveform(len(task) - 1))


def test_task_dataset_rebuilds_a_models_test_clips(small_synth_all):
    labels = [*sorted(COMMANDS), UNKNOWN, SILENCE]
    a = task_dataset(small_synth_all, "testing", labels, seed=3)
    b = with_non_keywords(SpeechCommands(small_synth_all, "testing", commands="8"), seed=3)
    assert a.labels == labels and [a.clip_id(i) for i in range(len(a))] == [b.clip_id(i) for i in range(len(b))]
    assert task_dataset(small_synth_all, "testing", sorted(COMMANDS)).labels == sorted(COMMANDS)
    with pytest.raises(KwsError, match="no keyword"):
        task_dataset(small_synth_all, "testing", [UNKNOWN, SILENCE])
    with pytest.raises(KwsError, match="not a keyword task"):
        task_dataset(small_synth_all, "testing", [SILENCE, *sorted(COMMANDS)])  # another order


# ------------------------------------------------------------------------------------------------
# Training adds them; --no-unknown; --commands 12
# ------------------------------------------------------------------------------------------------


def test_training_adds_the_classes_by_default_and_no_unknown_turns_them_off(small_synth_all, small_synth):
    from kwscore.recipes import default_config
    from kwscore.training_data import prepare_data

    config = default_config("cnn", data=str(small_synth_all), epochs=1, augment="none")
    data = prepare_data(config)
    assert data["labels"] == [*sorted(COMMANDS), UNKNOWN, SILENCE]
    per_class = data["selection"]["per_class"]
    assert per_class[UNKNOWN] == per_class[SILENCE] == per_class["yes"] == 8  # 8 training speakers
    assert data["selection"]["speakers"] == 8  # silence clips are nobody's
    assert torch.bincount(data["val"].targets).tolist() == [1] * 10

    off = prepare_data(default_config("cnn", data=str(small_synth_all), epochs=1, augment="none", unknown=False))
    assert off["labels"] == sorted(COMMANDS)
    only_commands = prepare_data(default_config("cnn", data=str(small_synth), epochs=1, augment="none"))
    assert only_commands["labels"] == sorted(COMMANDS)  # nothing else to call unknown


def test_commands_12_is_the_standard_task(small_synth_all):
    from kwscore.cli import _config_from_args, build_parser
    from kwscore.training_data import prepare_data

    args = build_parser().parse_args(["train", "--model", "cnn", "--data", str(small_synth_all), "--commands", "12"])
    data = prepare_data(_config_from_args(args))
    assert data["labels"] == [*sorted(TASK_12_WORDS), UNKNOWN, SILENCE] and len(data["labels"]) == 12
    args = build_parser().parse_args(
        ["train", "--model", "cnn", "--data", str(small_synth_all), "--commands", "12", "--no-unknown"]
    )
    config = _config_from_args(args)
    assert config.unknown is False and prepare_data(config)["labels"] == sorted(TASK_12_WORDS)


def test_bad_unknown_setting_is_explained():
    from kwscore.recipes import RunConfig

    problems = " ".join(RunConfig(data="x", unknown="yes", replay=-1).problems(check_data=False))
    assert "unknown must be true or false" in problems and "replay must be" in problems


# ------------------------------------------------------------------------------------------------
# "No keyword" is a result: outcomes, the report, the CLI
# ------------------------------------------------------------------------------------------------


def test_outcomes_and_display_names():
    assert [is_keyword(w) for w in ("yes", UNKNOWN, SILENCE, "_background_noise_")] == [True, False, False, False]
    assert outcome("yes", "yes") == "correct" and outcome("yes", "no") == "wrong word"
    assert outcome("yes", SILENCE) == "missed" and outcome(UNKNOWN, "yes") == "false alarm"
    assert outcome(UNKNOWN, SILENCE) == "no keyword" and outcome(SILENCE, SILENCE) == "correct"
    assert display_label(UNKNOWN) == "another word" and display_label(SILENCE) == "silence"
    assert display_label("yes") == "yes"


def test_report_counts_no_keyword_as_a_result():
    from kwscore.evaluation import no_keyword_summary

    labels = ["no", "yes", UNKNOWN, SILENCE]
    confusion = torch.tensor([
        [3, 1, 1, 0],  # "no": 3 right, 1 heard as "yes" (wrong word), 1 heard as another word (missed)
        [0, 4, 0, 0],
        [1, 0, 2, 1],  # another word: 1 false alarm, 2 right, 1 heard as silence (still no keyword)
        [0, 0, 0, 3],
    ])  # fmt: skip
    s = no_keyword_summary(confusion, labels)
    assert s["labels"] == [UNKNOWN, SILENCE] and s["keyword_clips"] == 9 and s["no_keyword_clips"] == 7
    assert s["keyword_accuracy"] == pytest.approx(7 / 9) and s["missed"] == pytest.approx(1 / 9)
    assert s["wrong_word"] == pytest.approx(1 / 9) and s["false_alarms"] == pytest.approx(1 / 7)
    assert s["detection_accuracy"] == pytest.approx((7 + 6) / 16)
    assert no_keyword_summary(confusion[:2, :2], labels[:2]) is None


@pytest.mark.slow
def test_cli_trains_and_evaluates_the_12_class_task(small_synth_all, tmp_path):
    env = {**os.environ, "KWS_RUNS_DIR": str(tmp_path / "runs")}

    def kwscore(*args):
        return subprocess.run([sys.executable, "-m", "kwscore.cli", *map(str, args)], capture_output=True,
                              text=True, cwd=REPO, env=env, timeout=600)  # fmt: skip

    done = kwscore("train", "--model", "cnn", "--data", small_synth_all, "--commands", "12", "--epochs", "2",
                   "--model-kwargs", '{"channels": [8, 16]}', "--augment", "none")  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert "12 words" in done.stdout
    report = json.loads((folder / "report.json").read_text())
    assert report["labels"] == [*sorted(TASK_12_WORDS), UNKNOWN, SILENCE]
    assert len(report["confusion"]) == 12 and report["per_class_total"][SILENCE] == 1  # 1 test speaker
    nk = report["no_keyword"]
    assert nk["keyword_clips"] + nk["no_keyword_clips"] == report["n_total"] == 12
    assert all(m["outcome"] in ("wrong word", "missed", "false alarm", "no keyword") for m in report["misclassified"])
    shown = kwscore("eval", folder)
    assert shown.returncode == 0, shown.stderr
    assert "no keyword: silence" in shown.stdout and "Keyword or not:" in shown.stdout
    as_json = json.loads(kwscore("eval", folder, "--json").stdout)
    assert as_json["confusion"] == report["confusion"]  # the same test clips, rebuilt from the seed
    assert as_json["no_keyword"] == nk


# ------------------------------------------------------------------------------------------------
# Try it
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def task_run(small_synth_all, tmp_path_factory):
    from tests.task_model import trained_task_run

    return trained_task_run(small_synth_all, tmp_path_factory.mktemp("task-runs"))


def heard_as(run: Path, root: Path, label: str, subset: str = "validation"):
    """A clip of ``label`` from the run's own test clips that its model hears as ``label``, surely."""
    from kwscore import audio
    from kwscore.inference import Predictor

    predictor = Predictor.from_run(run)
    ds = task_dataset(root, subset, predictor.labels)
    for i in range(len(ds)):
        if ds.get_metadata(i)[2] == label:
            clip = audio.fix_length(ds.waveform(i), 16000)
            p = predictor.predict(clip)
            if p.word == label and p.probability >= 0.6:
                return clip, predictor
    pytest.fail(f"the small task model hears no {label} clip as {label}")


def test_verdict_says_no_keyword_for_silence_and_unknown(task_run, small_synth_all):
    from dashboard.ui_try import knows_text, verdict
    from kwscore.inference import Prediction

    clip, predictor = heard_as(task_run, small_synth_all, SILENCE)
    p = predictor.predict(clip, threshold=0.0)
    kind, text = verdict(p)
    assert kind == "info" and text.startswith("**No keyword**: the model hears silence")
    labels = predictor.labels
    sure_unknown = Prediction(labels, torch.eye(len(labels))[labels.index(UNKNOWN)])
    assert verdict(sure_unknown)[0] == "info" and "another word" in verdict(sure_unknown)[1]
    sure_yes = Prediction(labels, torch.eye(len(labels))[labels.index("yes")])
    assert verdict(sure_yes) == ("success", "Heard **yes** (100 %).")
    unsure = Prediction(labels, torch.full((len(labels),), 1 / len(labels)))
    assert verdict(unsure)[0] == "warning"
    assert knows_text(labels).endswith("and *no keyword* (another word, silence)")


@pytest.mark.slow
def test_try_it_page_shows_no_keyword_as_a_result(task_run, small_synth_all, kws_env):
    from streamlit.testing.v1 import AppTest

    from kwscore import audio

    runs = Path(os.environ["KWS_RUNS_DIR"])
    runs.mkdir(parents=True, exist_ok=True)
    shutil.copytree(task_run, runs / task_run.name)
    clip, _ = heard_as(task_run, small_synth_all, SILENCE)
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120).run()
    at.switch_page("../pages/try_it.py").run()
    at.selectbox(key="try_run").set_value(task_run.name).run()
    assert not at.exception, at.exception
    assert any("*no keyword* (another word, silence)" in c.value for c in at.caption)
    at.file_uploader(key="try_upload").set_value(("quiet.wav", audio.wav_bytes(clip, 16000), "audio/wav")).run()
    assert not at.exception, at.exception
    assert not at.success and not at.warning
    assert any(i.value.startswith("**No keyword**: the model hears silence") for i in at.info)
    bars = next(json.loads(e.proto.spec) for e in at.get("plotly_chart") if e.proto.id.endswith("-try_probs"))
    assert list(bars["data"][0]["x"])[-2:] == ["another word", "silence"]


def test_dataset_folder_of_task_is_the_keyword_datasets(small_synth_all):
    task = with_non_keywords(SpeechCommands(small_synth_all, "testing", commands="8"), seed=0)
    unknown = [i for i in range(len(task)) if task.get_metadata(i)[2] == UNKNOWN]
    assert all(task.path(i).is_relative_to(dataset_folder(small_synth_all)) for i in unknown)


@pytest.mark.slow
def test_train_page_offers_the_12_class_task_and_the_no_unknown_checkbox(kws_env, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from kwscore import jobs

    runs = tmp_path / "runs"
    monkeypatch.setenv("KWS_RUNS_DIR", str(runs))
    try:
        at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120).run()
        at.switch_page("../pages/train.py").run()
        assert at.checkbox(key="tr_unknown").value is True
        at.radio(key="tr_commands").set_value("all").run()
        assert at.checkbox(key="tr_unknown").disabled  # all words: nothing left to call unknown
        at.radio(key="tr_commands").set_value("12").run()
        at.checkbox(key="tr_unknown").uncheck().run()
        at.button(key="tr_launch").click().run()
        assert not at.exception, at.exception
        (run,) = [p for p in runs.iterdir() if p.name[:1].isdigit()]
        config = json.loads((run / "config.json").read_text())
        assert config["commands"] == "12" and config["unknown"] is False
    finally:
        jobs.stop_worker(runs, stop_runs=True)


def test_a_silence_clip_can_be_remade_from_its_recording(small_synth_all):
    """What the Runs page does to play a misclassified _silence_ clip (report: path, start_s, level_dbfs)."""
    from kwscore import audio
    from kwscore.labels import cut_at_level

    task = with_non_keywords(SpeechCommands(small_synth_all, "testing", commands="8"), seed=0)
    i = next(i for i in range(len(task)) if task.get_metadata(i)[2] == SILENCE)
    where = task.silence_cut(i)
    recording, rate = audio.load(task.path(i))
    assert rate == 16000 and task.silence_cut(0) is None
    remade = cut_at_level(recording, round(16000 * where["start_s"]), where["level_dbfs"])
    assert torch.allclose(remade, task.waveform(i), atol=1e-3)
