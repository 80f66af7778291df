"""The Train and Runs pages under AppTest, with a real background worker and real (tiny) runs.

Each test gets the embedded dataset and a fresh runs folder (``kws_env``); every worker started for
that folder is stopped, with its runs, when the test ends.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kwscore import jobs
from kwscore.models import describe
from kwscore.recipes import default_config
from kwscore.runfiles import write_json

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture
def runs_dir(kws_env, tmp_path) -> Path:
    """The test's runs folder; the worker (and any run it started) is stopped afterwards."""
    root = tmp_path / "runs"
    yield root
    jobs.stop_worker(root, stop_runs=True)
    for worker in jobs._STARTED_WORKERS:
        try:
            worker.wait(timeout=10)
        except Exception:  # noqa: BLE001 - already gone, or stuck: nothing more to do here
            worker.kill()
    jobs._STARTED_WORKERS.clear()


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page(f"../pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def charts(at: AppTest, key: str) -> list[dict]:
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart") if e.proto.id.endswith(f"-{key}")]


def wait_until_final(runs: Path, run_ids: list[str], timeout: float = 90.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        states = {r: jobs.refresh_status(r, runs)["state"] for r in run_ids}
        if all(s in jobs.FINAL_STATES for s in states.values()):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"runs did not finish in {timeout} s: {states}")
        time.sleep(0.3)


def run_ids(runs: Path) -> list[str]:
    """Training runs (their ids start with a timestamp; other folders such as ready models are not runs)."""
    return sorted(p.name for p in runs.iterdir() if p.is_dir() and p.name[:1].isdigit()) if runs.is_dir() else []


# ------------------------------------------------------------------------------------------------
# Train
# ------------------------------------------------------------------------------------------------


def test_recorded_speech_gets_its_own_recipe_defaults(kws_env, small_synth, tmp_path):
    """On recorded speech (here: a copy of a small set without the synthesis manifest) the page's
    defaults are the recorded-speech recipe's: more epochs, no simulated rooms or microphones; the
    embedded set keeps its own."""
    import shutil

    from kwscore.data.synth import MANIFEST

    recorded = tmp_path / "recorded"
    shutil.copytree(small_synth, recorded)
    (recorded / "SpeechCommands" / "speech_commands_v0.02" / MANIFEST).unlink()
    at = open_page("train")
    embedded_epochs = at.number_input(key="tr_cnn_epochs").value
    assert embedded_epochs == default_config("cnn").epochs
    assert any("reverb" in c.value for c in at.caption)
    at.sidebar.selectbox(key="dataset_label").select("Another folder…").run()
    at.sidebar.text_input(key="dataset_folder").input(str(recorded)).run()
    assert not at.exception, at.exception
    assert at.number_input(key="tr_cnn_rec_epochs").value == default_config("cnn", data=str(recorded)).epochs > embedded_epochs
    aug = next(c.value for c in at.caption if c.value.startswith("Each batch:"))
    assert "time shift" in aug and "reverb" not in aug and "microphone" not in aug


def test_train_page_shows_the_model_summary_and_follows_the_model(kws_env):
    at = open_page("train")
    assert at.radio(key="tr_model").value == "cnn"
    cnn = metrics(at)
    assert cnn["Input"] == "40 × 101"
    n_classes = int(cnn["Output"].split()[0])  # the 8 commands (+ unknown and silence)
    expected = describe("cnn", n_classes, [1, 1, 40, 101], **default_config("cnn").model_kwargs)  # the tuned recipe
    assert cnn["Parameters"] == f"{expected['n_params']:,}"
    layers = at.dataframe[0].value
    assert len(layers) == len(expected["layers"]) and "output shape" in layers.columns

    at.radio(key="tr_model").set_value("m5").run()
    assert not at.exception, at.exception
    m5 = metrics(at)
    recipe = default_config("m5")
    expected = describe("m5", n_classes, **recipe.model_kwargs, sample_rate=recipe.sample_rate)
    assert m5["Parameters"] == f"{expected['n_params']:,}" != cnn["Parameters"]
    assert m5["Input"] == str(recipe.sample_rate)  # one second of samples

    at.select_slider(key="tr_m5_n_channel").set_value(4).run()  # a smaller model: fewer parameters
    small = metrics(at)["Parameters"]
    kwargs = {**recipe.model_kwargs, "n_channel": 4}
    assert small == f"{describe('m5', n_classes, **kwargs, sample_rate=recipe.sample_rate)['n_params']:,}"
    assert int(small.replace(",", "")) < int(m5["Parameters"].replace(",", ""))
    assert at.button(key="tr_launch").disabled is False

    # M5 as the PyTorch tutorial trains it, next to the tuned recipe, each saying what it is
    assert "tuned (16 kHz)" in at.radio(key="tr_model").format_func("m5")
    at.radio(key="tr_model").set_value("m5tutorial").run()
    assert not at.exception and metrics(at)["Input"] == "8000"
    assert any("Exactly the PyTorch tutorial" in c.value for c in at.caption)
    assert at.toggle(key="tr_m5tutorial_aug_on").value is False  # the tutorial has no augmentation
    assert at.select_slider(key="tr_m5tutorial_batch_size").value == 256
    # 4 kHz: stride 16 needs 6,848 samples; the stride adapts (and says so) so that it trains
    at.select_slider(key="tr_m5tutorial_sample_rate").set_value(4000).run()
    assert not at.exception and not at.error and metrics(at)["Input"] == "4000"
    assert any("the stride was lowered to 8" in c.value for c in at.caption)
    assert at.button(key="tr_launch").disabled is False


def test_transfer_learning_trains_only_a_head_on_the_frozen_embedding(kws_env):
    at = open_page("train")
    n_classes = int(metrics(at)["Output"].split()[0])
    at.radio(key="tr_model").set_value("embed").run()
    assert not at.exception and not at.error, at.exception or at.error
    recipe = default_config("embed")
    expected = describe("embed", n_classes, **recipe.model_kwargs)
    assert metrics(at)["Parameters"] == f"{expected['n_params']:,}" and metrics(at)["Input"] == "16000"
    assert any("frozen" in c.value for c in at.caption)
    assert at.select_slider(key="tr_embed_hidden").value == recipe.model_kwargs["hidden"]
    at.select_slider(key="tr_embed_hidden").set_value(16).run()
    smaller = describe("embed", n_classes, **{**recipe.model_kwargs, "hidden": 16})["n_params"]
    assert metrics(at)["Parameters"] == f"{smaller:,}"
    assert at.toggle(key="tr_embed_high_bands").value is True  # the recipe hears 3.8-8 kHz too
    at.toggle(key="tr_embed_high_bands").set_value(False).run()
    without = describe("embed", n_classes, **{**recipe.model_kwargs, "hidden": 16, "high_bands": 0})["n_params"]
    assert metrics(at)["Parameters"] == f"{without:,}" != f"{smaller:,}"
    assert at.button(key="tr_launch").disabled is False


def test_torchaudio_defaults_train_with_128_bands_and_the_panel_title_follows(kws_env):
    at = open_page("train")
    panel = next(e for e in at.expander if e.label.startswith("Front end:"))
    assert panel.label.startswith("Front end: 40 Mel bands × 101 frames")
    at.button(key="trfe_preset_torchaudio").click().run()
    assert not at.exception and not at.error
    assert metrics(at)["Input"] == "128 × 81"  # never silently lowered to 126
    assert any("128 bands at n_fft 400 leave 4 bands empty" in c.value for c in at.caption)
    panel = next(e for e in at.expander if e.label.startswith("Front end:"))
    assert panel.label.startswith("Front end: 128 Mel bands × 81 frames") and "torchaudio" in panel.label
    at.slider(key="trfe_n_mels").set_value(64).run()  # the title shows this edit at once, not one edit late
    assert next(e for e in at.expander if e.label.startswith("Front end:")).label.startswith("Front end: 64 Mel")
    assert at.session_state["feature_config"]["n_mels"] == 64  # the Spectrogram lab shows the same
    at.switch_page("../pages/spectrogram.py").run()
    assert at.slider(key="spec_n_mels").value == 64 and at.number_input(key="spec_n_fft").value == 400


def test_the_augmentation_lab_recipe_is_offered_not_imposed(kws_env):
    at = open_page("augmentation")
    at.toggle(key="augw_gain_on").set_value(True).run()  # a custom recipe in the lab
    at.switch_page("../pages/train.py").run()
    assert not at.exception
    box = at.selectbox(key="tr_aug_recipe")
    assert box.value == "recipe"  # the tuned recipe stays the default
    assert "lab: custom" in box.options
    box.set_value("lab").run()
    assert "gain" in " ".join(c.value for c in at.caption)


def test_mix_in_your_recordings_adds_their_words(kws_env, tmp_path, monkeypatch):
    from kwscore.userdata import save_take
    from tests.test_userdata import tone_take

    mine = tmp_path / "mine"
    for i in range(5):
        save_take(mine, "beep", "Ada", *tone_take(word_at=0.2 + 0.1 * i))
    monkeypatch.setenv("KWS_DATASETS", str(mine))  # listed in the pickers next to the embedded set
    at = open_page("train")
    assert "Folder: mine" in at.multiselect(key="tr_mix").options
    at.radio(key="tr_commands").set_value("all").run()
    assert metrics(at)["Output"] == "35 scores"
    at.multiselect(key="tr_mix").set_value([str(mine)]).run()
    assert not at.exception and metrics(at)["Output"] == "36 scores"  # the 35 words and "beep"
    assert at.button(key="tr_launch").disabled is False


def test_impossible_settings_are_explained_and_launch_is_disabled(kws_env):
    from kwscore.augment import AugmentConfig, SpecAugmentConfig

    at = open_page("train")
    # a lab recipe whose SpecAugment masks are wider than the picture the front end makes
    at.session_state["augment_config"] = AugmentConfig(spec_augment=SpecAugmentConfig(freq_mask_param=30)).to_dict()
    at.run()
    at.selectbox(key="tr_aug_recipe").set_value("lab").run()
    at.slider(key="trfe_n_mels").set_value(16).run()
    assert not at.exception, at.exception
    assert at.error and "16 Mel bands" in at.error[0].value, "an impossible run should be explained"
    assert at.button(key="tr_launch").disabled is True


def test_launch_a_tiny_run_watch_it_then_study_and_delete_it_on_the_runs_page(kws_env, runs_dir):
    at = open_page("train")
    at.radio(key="tr_model").set_value("m5").run()
    at.select_slider(key="tr_m5_n_channel").set_value(4).run()
    at.select_slider(key="tr_fraction").set_value(0.25).run()
    at.toggle(key="tr_m5_aug_on").set_value(False).run()
    at.number_input(key="tr_m5_epochs").set_value(1).run()
    at.text_input(key="tr_name").input("tiny m5").run()
    at.text_area(key="tr_notes").input("one epoch, 4 channels").run()
    at.button(key="tr_launch").click().run()
    assert not at.exception, at.exception
    (run_id,) = run_ids(runs_dir)
    config = json.loads((runs_dir / run_id / "config.json").read_text())
    assert config["model"] == "m5" and config["model_kwargs"]["n_channel"] == 4 and config["epochs"] == 1
    assert config["fraction"] == 0.25 and config["augment"] == "none"
    assert config["name"] == "tiny m5" and config["notes"] == "one epoch, 4 channels"
    assert config["data"] == str(Path(kws_env) / "synthetic")
    assert at.selectbox(key="train_watch").value == run_id

    assert wait_until_final(runs_dir, [run_id]) == {run_id: "succeeded"}
    at.run()
    assert not at.exception, at.exception
    test_accuracy = jobs.read_report(run_id, runs_dir)["accuracy"]
    assert metrics(at)["Test accuracy"] == f"{100 * test_accuracy:.1f} %"
    assert any("on speakers the model never heard" in s.value for s in at.success)
    assert charts(at, f"tr_loss_{run_id}") and charts(at, f"tr_acc_{run_id}")

    # -- the Runs page lists it, with its evaluation ----------------------------------------------
    at.switch_page("../pages/runs.py").run()
    assert not at.exception, at.exception
    at.selectbox(key="runs_detail").set_value(run_id).run()  # other folders (a ready model) may be listed too
    table = at.dataframe[0].value
    assert run_id in list(table["run id"])
    row = table[table["run id"] == run_id].iloc[0]
    assert row["status"] == "succeeded"
    assert (row["name"], row["rate"], row["front end"], row["lr"], row["notes"]) == (
        "tiny m5", "16 kHz", "raw waveform", config["lr"], "one epoch, 4 channels")
    # renamed later, on the Runs page: the config, the table and the CLI follow
    at.text_input(key=f"runs_name_{run_id}").input("m5 at 16 kHz")
    at.text_area(key=f"runs_notes_{run_id}").input("4 channels are enough here")
    next(b for b in at.button if b.label == "Save name and notes").click().run()
    assert not at.exception, at.exception
    saved = json.loads((runs_dir / run_id / "config.json").read_text())
    assert saved["name"] == "m5 at 16 kHz" and saved["notes"] == "4 channels are enough here"
    renamed = at.dataframe[0].value
    assert renamed[renamed["run id"] == run_id].iloc[0]["name"] == "m5 at 16 kHz"
    assert not at.code and not at.json, "the log, the configuration and the code are built when opened"
    for box in ("runs_log", "runs_config", "runs_code"):
        at.session_state[box] = True
    at.run()
    assert at.json and json.loads(at.json[0].value)["model"] and any(c.language == "text" for c in at.code)
    code = next(c.value for c in at.code if "evaluate(" in c.value)
    assert run_id in code
    (download,) = [d for d in at.get("download_button") if "notebook" in d.proto.label]
    assert download.proto.label == "Download as a Jupyter notebook"
    assert row["test acc."] == pytest.approx(100 * test_accuracy)
    assert metrics(at)["Test accuracy"] == f"{100 * test_accuracy:.1f} %"
    (confusion,) = charts(at, "runs_confusion")
    heat = confusion["data"][0]
    n_labels = len(jobs.read_report(run_id, runs_dir)["labels"])  # the 8 commands (+ unknown / silence)
    assert heat["type"] == "heatmap" and len(heat["x"]) == len(heat["y"]) == n_labels
    assert {"down", "go", "left", "no", "right", "stop", "up", "yes"} <= set(heat["x"])
    (per_class,) = charts(at, "runs_per_class")
    assert per_class["data"][0]["type"] == "bar" and len(per_class["data"][0]["x"]) == n_labels
    assert charts(at, "runs_cmp_acc"), "the newest finished run of each model is compared by default"
    assert not charts(at, "runs_mis_top_0"), "the mistakes wait for their tab"
    at.session_state["runs_view"] = "Misclassified test clips"
    at.run()
    assert not at.exception and not charts(at, "runs_confusion"), "only the open view is built"
    assert any(md.value.startswith("#### Misclassified test clips") for md in at.markdown)
    if test_accuracy < 1:
        assert charts(at, "runs_mis_spec_0") and charts(at, "runs_mis_top_0")
        assert at.get("audio"), "misclassified clips can be played"

    # -- delete, with confirmation -----------------------------------------------------------------
    at.button(key="runs_delete").click().run()
    assert (runs_dir / run_id).is_dir(), "nothing is deleted before the confirmation"
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception, at.exception
    assert not (runs_dir / run_id).exists()
    assert any("was deleted" in s.value for s in at.success)
    assert not at.dataframe or run_id not in list(at.dataframe[0].value["run id"]), "the run is no longer listed"


# ------------------------------------------------------------------------------------------------
# Runs
# ------------------------------------------------------------------------------------------------


def fake_run(runs: Path, run_id: str, status=None, config=None) -> Path:
    folder = runs / run_id
    folder.mkdir(parents=True)
    if config is not None:
        write_json(folder / "config.json", config)
    if isinstance(status, str):
        (folder / "status.json").write_text(status)
    elif status is not None:
        write_json(folder / "status.json", status)
    return folder


def test_corrupt_runs_are_listed_with_their_problem_and_never_break_the_page(runs_dir):
    good = {"model": "m5", "data": "/nowhere", "commands": "8", "epochs": 3, "augment": "none", "fraction": 1.0}
    fake_run(runs_dir, "20250101-000001-m5-aaaaaa", "{not json", good)
    fake_run(runs_dir, "20250101-000002-m5-bbbbbb", {"state": "succeeded", "created": 2.0}, ["not", "a", "dict"])
    broken = fake_run(runs_dir, "20250101-000003-m5-cccccc", {"state": "succeeded", "created": 3.0, "test_accuracy": 0.5}, good)
    (broken / "report.json").write_text('{"accuracy": 0.5, "labels": ["a"], "confusion": "garbage", "per_class_accuracy": 3}')
    (broken / "metrics.jsonl").write_text('{"kind": "epoch", "epoch": 1, "step": 2, "val_accuracy": 0.5}\nhalf a li')
    fake_run(runs_dir, "20250101-000004-m5-dddddd")  # an empty folder
    at = open_page("runs")
    table = at.dataframe[0].value
    table = table[table["run id"].str.startswith("2025")]  # the four above (a ready model may be listed too)
    assert len(table) == 4
    assert (table["status"] == "unreadable").sum() >= 2
    assert all(table["problem"][table["status"] == "unreadable"] != "")
    for run_id in table["run id"]:
        at.selectbox(key="runs_detail").set_value(run_id).run()
        assert not at.exception, (run_id, at.exception)
    at.selectbox(key="runs_detail").set_value("20250101-000003-m5-cccccc").run()
    shown = " ".join(e.value for e in [*at.error, *at.warning])  # explained, as an error or a warning
    assert "damaged" in shown or "no readable report.json" in shown


def test_a_running_run_cannot_be_deleted(runs_dir):
    folder = fake_run(runs_dir, "20250101-000005-m5-eeeeee", {"state": "running", "created": 5.0, "heartbeat": time.time(),
                                                              "pid": 1, "host": "elsewhere"},
                      {"model": "m5", "data": "/nowhere", "epochs": 3})  # fmt: skip
    at = open_page("runs")
    at.selectbox(key="runs_detail").set_value("20250101-000005-m5-eeeeee").run()  # (a ready model may be listed too)
    at.button(key="runs_delete").click().run()
    assert not at.exception, at.exception
    assert any("still training" in w.value for w in at.warning)
    assert folder.is_dir()


def test_experiment_queues_fractions_times_augmentation_and_can_be_cancelled(runs_dir):
    at = open_page("runs")
    assert at.selectbox(key="exp_model").options == ["CNN", "M5 tuned", "M5 tutorial", "Embedding", "M3", "M11", "M18", "M34-res"]
    at.selectbox(key="exp_model").set_value("m5")
    at.number_input(key="exp_epochs").set_value(1)
    assert at.multiselect(key="exp_fractions").value == [0.1, 0.25, 0.5, 1.0]
    at.button(key="exp_submit").click().run()  # plans the grid; the second button queues it
    at.button(key="exp_confirm").click().run()
    assert not at.exception, at.exception
    ids = run_ids(runs_dir)
    assert len(ids) == 8
    (exp_file,) = (runs_dir / "_experiments").glob("*.json")
    record = json.loads(exp_file.read_text())
    grid = sorted((r["fraction"], r["augment"]) for r in record["runs"])
    assert grid == sorted((f, a) for f in (0.1, 0.25, 0.5, 1.0) for a in ("off", "on"))
    configs = [json.loads((runs_dir / r / "config.json").read_text()) for r in ids]
    assert {c["model"] for c in configs} == {"m5"} and {c["seed"] for c in configs} == {0}
    assert sum(c["augment"] == "none" for c in configs) == 4

    statuses = list(at.dataframe[0].value["status"])
    waiting = [s for s in statuses if s.startswith("waiting: ")]  # "waiting: 3rd in line, starts in about 4 min"
    places = sorted(1 if s.startswith("waiting: next in line") else int(s.split()[1][:-2]) for s in waiting)
    assert len(waiting) >= 7 and places == list(range(1, len(waiting) + 1)), statuses
    assert all("starts in" in s for s in waiting), statuses

    # A new browser session on the Train page can pick any run still queued or training.
    other = open_page("train")
    shown = {label.rsplit(" · ", 1)[-1] for label in other.selectbox(key="train_watch").options}  # short ids
    missing = {r.rsplit("-", 1)[-1] for r in ids} - shown
    assert len(missing) <= 1, missing  # the first run may have finished its 1 epoch already (then not listed)

    cancel = [b for b in at.button if b.key == "runs_exp_cancel"]
    assert cancel, "unfinished runs of the experiment can be cancelled"
    cancel[0].click().run()
    states = wait_until_final(runs_dir, ids)
    assert list(states.values()).count("cancelled") >= 7  # the first may have finished its 1 epoch
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    table = table[table["run id"].isin(ids)]  # the experiment's runs (a ready model may be listed too)
    assert len(table) == 8 and (table["status"] == "cancelled").sum() >= 7
    (plot,) = charts(at, "runs_exp_plot")
    assert [t["name"] for t in plot["data"]] == ["augmentation off", "augmentation on"]
