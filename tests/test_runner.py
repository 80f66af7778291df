"""kwscore.runner: a whole run from a config, on the tiny synthetic set (in this process, 1 thread)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from kwscore.augment import AugmentConfig, AugmentStep, BatchAugment
from kwscore.choices import augment_value
from kwscore.data.dataset import SpeechCommands
from kwscore.errors import KwsError
from kwscore.evaluation import evaluate, load_run_model
from kwscore.inference import Predictor
from kwscore.recipes import RECIPE_AUGMENT, RECIPES, RunConfig, default_config, is_synthetic
from kwscore.runfiles import RunFiles
from kwscore.runner import Callbacks, run_training
from kwscore.training_data import Batches, select_fraction

TINY_M5 = {"n_channel": 8, "stride": 16}


def tiny(small_synth, model="m5", **overrides) -> RunConfig:
    kwargs = {"m5": TINY_M5, "cnn": {"channels": [8, 16]}, "embed": {"hidden": 16, "high_bands": 8}}[model]
    values = dict(
        data=str(small_synth), epochs=2, batch_size=32, model_kwargs=kwargs, threads=1, augment="none"
    )
    return default_config(model, **{**values, **overrides})


@pytest.fixture(scope="module")
def m5_run(small_synth, tmp_path_factory):
    """One tiny M5 run with the light augmentation, shared by the checks below."""
    seen = {"iterations": 0, "epochs": [], "start": None}
    callbacks = Callbacks(
        on_start=lambda info: seen.update(start=info),
        on_iteration=lambda record: seen.update(iterations=seen["iterations"] + 1),
        on_epoch=lambda record: seen["epochs"].append(record),
    )
    run_dir = tmp_path_factory.mktemp("runs") / "tiny-m5"
    seen["config"] = tiny(small_synth, augment="light")
    result = run_training(seen["config"], run_dir, callbacks)
    return result, seen


# -------------------------------------------------------------------------------- the config


def test_every_recipe_is_valid_and_round_trips_through_json():
    for model in RECIPES:
        config = default_config(model, data="/somewhere")
        config.validate(check_data=False)
        again = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config


def test_recorded_speech_gets_the_recipe_for_recorded_speech(small_synth, tmp_path):
    """The embedded set's recipe simulates rooms and microphones; recorded speech has them already,
    and its smaller training lists need more epochs (RECORDED)."""
    synthetic = default_config("cnn", data=str(small_synth))
    assert synthetic.augment == RECIPE_AUGMENT and synthetic.epochs == RECIPES["cnn"]["epochs"]
    assert default_config("cnn").augment == RECIPE_AUGMENT  # the embedded set, the default data
    (tmp_path / "SpeechCommands" / "speech_commands_v0.02" / "yes").mkdir(parents=True)  # a recorded dataset
    recorded = default_config("cnn", data=str(tmp_path))
    effects = [step["effect"] for step in recorded.augment["steps"]]
    assert "reverb" not in effects and "microphone" not in effects and "time_shift" in effects
    assert recorded.augment["spec_augment"]["freq_warp"] == 0.0
    assert recorded.epochs > synthetic.epochs and recorded.lr == synthetic.lr
    assert default_config("cnn", data=str(tmp_path), epochs=5, augment="none").epochs == 5  # overrides win
    assert augment_value("recipe", data=str(tmp_path)) == recorded.augment
    assert augment_value("recipe", data=str(small_synth)) == RECIPE_AUGMENT == augment_value("recipe")
    assert default_config("m5tutorial", data=str(tmp_path)).augment == "none"  # the tutorial stays the tutorial
    assert not is_synthetic(tmp_path) and is_synthetic(small_synth)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(model="m6"), "Unknown model 'm6'"),
        (dict(fraction=25), "Write 0.25 for 25 %"),
        (dict(fraction_by="voice"), "'speaker' or 'stratified'"),
        (dict(epochs=0), "epochs must be a whole number"),
        (dict(lr=-1.0), "lr must be positive"),
        (dict(scheduler="warp"), "Unknown scheduler"),
        (dict(augment="loud"), "Unknown augmentation preset"),
        (dict(model_kwargs={"n_channels": 8}), "Bad option for model"),
        (dict(model="cnn", features={"n_mels": 4}, augment="standard"), "F=8 is larger than the 4 Mel bands"),
    ],
)
def test_validation_explains_mistakes(change, message):
    config = RunConfig.from_dict({**default_config("m5", data="/x").to_dict(), **change})
    with pytest.raises(KwsError, match=message):
        config.validate(check_data=False)


def test_unknown_keys_and_missing_data_are_refused(tmp_path):
    with pytest.raises(KwsError, match="Unknown run setting"):
        RunConfig.from_dict({"modle": "m5"})
    with pytest.raises(KwsError, match="No dataset at"):
        default_config("m5", data=str(tmp_path)).validate()


# -------------------------------------------------------------------------------- data


def test_fraction_by_speaker_keeps_whole_speakers(small_synth):
    ds = SpeechCommands(small_synth, "training")
    speakers = ds.speakers()
    kept = select_fraction(ds, 0.25, "speaker", seed=0)
    kept_speakers = {speakers[i] for i in kept}
    assert 1 <= len(kept_speakers) < len(set(speakers))
    assert kept == [i for i, s in enumerate(speakers) if s in kept_speakers]  # all their clips
    assert select_fraction(ds, 0.25, "speaker", seed=0) == kept  # reproducible
    assert select_fraction(ds, 1.0, "speaker", seed=0) == list(range(len(ds)))


def test_fraction_stratified_keeps_every_word(small_synth):
    ds = SpeechCommands(small_synth, "training")
    targets = ds.targets()
    kept = select_fraction(ds, 0.25, "stratified", seed=0)
    per_class = torch.bincount(targets[kept], minlength=len(ds.labels))
    total = torch.bincount(targets, minlength=len(ds.labels))
    assert (per_class > 0).all()  # all classes present
    assert per_class.tolist() == [max(1, round(0.25 * int(t))) for t in total]
    assert len(set(ds.speakers()[i] for i in kept)) > 2  # many voices, few clips each


def test_batches_cover_the_data_and_never_leave_a_single_clip():
    x, y = torch.arange(65.0).view(65, 1, 1), torch.arange(65)
    train_batches = Batches(x, y, 32, shuffle=True, generator=torch.Generator().manual_seed(0))
    seen = torch.cat([t for _, t in train_batches])
    assert len(train_batches) == 2 and len(seen) == 64 and len(set(seen.tolist())) == 64
    val_batches = Batches(x, y, 32)
    assert len(val_batches) == 3 and torch.cat([t for _, t in val_batches]).tolist() == list(range(65))


def test_augmented_batches_are_prepared_ahead_in_order_and_reproducibly():
    """The helper thread augments batch k+1 while batch k trains: same batches, same order as a
    plain loop, for the same seeds; and every clip is used once per pass."""
    x, y = torch.randn(100, 1, 800), torch.arange(100)
    recipe = steps(("time_shift", 0.5, {"shift_ms": 20.0}), ("gain", 1.0, {"gain_db": (-6.0, 6.0)}))

    def epoch(ahead: bool):
        gen, aug = torch.Generator().manual_seed(4), BatchAugment(recipe, 8000, seed=2)
        batches = Batches(x, y, 16, shuffle=True, generator=gen, augment=aug, ahead=True)
        return list(batches) if ahead else [batches._batch(i) for i in torch.randperm(100, generator=gen).split(16)]

    threaded, serial = epoch(True), epoch(False)
    assert len(threaded) == 7 and sorted(torch.cat([t for _, t in threaded]).tolist()) == sorted(
        torch.cat([t for _, t in serial]).tolist())  # fmt: skip
    for (xa, ta), (xb, tb) in zip(threaded, serial, strict=True):
        assert torch.equal(ta, tb) and torch.equal(xa, xb)
    assert not torch.equal(threaded[0][0], x[threaded[0][1]])  # augmented


def steps(*items) -> AugmentConfig:
    return AugmentConfig(steps=tuple(AugmentStep(e, p, params) for e, p, params in items))


# -------------------------------------------------------------------------------- a whole run


def test_a_tiny_run_writes_every_file(m5_run):
    result, seen = m5_run
    files = RunFiles(result.run_dir)
    assert result.state == "succeeded"
    for path in (files.config_path, files.status_path, files.metrics_path, files.log_path,
                 files.report_path, files.best_path, files.last_path):  # fmt: skip
        assert path.is_file(), path
    status = files.read_status()
    assert status["state"] == "succeeded" and status["epoch"] == 2 and status["step"] == status["total_steps"]
    assert status["ended_at"] >= status["started_at"] and status["pid"] > 0 and status["heartbeat"]
    assert RunConfig.from_dict(files.read_config()) == seen["config"]

    iterations, epochs = files.read_metrics()
    steps_per_epoch = seen["start"]["steps_per_epoch"]
    assert len(iterations) == 2 * steps_per_epoch == seen["iterations"]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs == seen["epochs"]
    assert all(0 <= e["val_accuracy"] <= 1 and e["lr"] > 0 and e["samples_per_s"] > 0 for e in epochs)
    assert all(math.isfinite(i["loss"]) for i in iterations)
    assert "test accuracy" in files.read_log()


def test_report_has_accuracy_confusion_and_mistakes(m5_run):
    result, _ = m5_run
    report = json.loads(RunFiles(result.run_dir).report_path.read_text())
    labels = report["labels"]
    assert report["test_accuracy"] == report["accuracy"] == report["n_correct"] / report["n_total"]
    assert len(report["confusion"]) == len(labels) == 8 and all(len(row) == 8 for row in report["confusion"])
    assert sum(map(sum, report["confusion"])) == report["n_total"] == 16  # 1 test speaker x 8 words x 2
    assert set(report["per_class_accuracy"]) == set(labels)
    assert len(report["misclassified"]) == report["n_total"] - report["n_correct"]
    for mistake in report["misclassified"]:
        assert mistake["clip_id"].split("/")[0] == mistake["label"]
        probs = [p["probability"] for p in mistake["predicted"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)
        assert mistake["predicted"][0]["label"] != mistake["label"]
    assert report["train_selection"]["clips"] == 128 and report["best_epoch"] in (1, 2)


def test_checkpoint_loads_safely_and_predicts_like_the_model_in_memory(m5_run, small_synth):
    result, seen = m5_run
    ckpt = torch.load(RunFiles(result.run_dir).best_path, weights_only=True)
    rate = seen["config"].model_rate  # the recipe's rate (16 kHz for M5), stored with the checkpoint
    assert ckpt["labels"] == result.labels and ckpt["transform_config"]["sample_rate"] == rate
    model, transform, labels, config = load_run_model(result.run_dir)
    assert labels == result.labels and config["model"] == "m5"
    clips = torch.stack([SpeechCommands(small_synth, "testing").waveform(i) for i in range(4)])
    with torch.no_grad():
        expected = result.model(result.transform(clips))
        assert torch.allclose(model(transform(clips)), expected, atol=1e-6)
    again = evaluate(result.run_dir, SpeechCommands(small_synth, "testing"))
    assert again["accuracy"] == result.report["accuracy"]


def test_cnn_trains_with_and_without_waveform_augmentation(small_synth, tmp_path):
    for augment in ("none", "standard"):  # none: spectrograms computed once; standard: per batch
        config = tiny(small_synth, "cnn", epochs=1, augment=augment, fraction=0.5, fraction_by="stratified")
        result = run_training(config, tmp_path / augment)
        assert result.state == "succeeded" and 0 <= result.report["accuracy"] <= 1
        assert result.report["train_selection"]["clips"] == 64
        assert result.transform[-1].config.n_mels == 40  # MelFrontEnd stored with the checkpoint


def test_the_pretrained_embedding_trains_its_head_and_its_run_loads_like_any_other(small_synth, tmp_path):
    config = tiny(small_synth, "embed", epochs=4, lr=0.01, augment="light")
    assert config.model_rate == 16000 and config.representation == "embedding"
    result = run_training(config, tmp_path / "embed")
    assert result.state == "succeeded"
    assert result.report["accuracy"] >= 0.5, "8 words: chance is 12.5 %; the embedding separates them at once"
    files = RunFiles(result.run_dir)
    assert files.best_path.stat().st_size < 200_000, "the frozen embedding stays out of the checkpoint"
    model, transform, labels, _config = load_run_model(result.run_dir)
    clips = torch.stack([SpeechCommands(small_synth, "testing").waveform(i) for i in range(4)])
    with torch.no_grad():
        assert torch.allclose(model(transform(clips)), result.model(result.transform(clips)), atol=1e-5)
    calls = []  # the progress callback (Runs' "Test on another dataset" bar): clips done, in order, to the end
    test_set = SpeechCommands(small_synth, "testing")
    again = evaluate(result.run_dir, test_set, batch_size=8, progress=lambda done, total: calls.append((done, total)))
    assert again["accuracy"] == result.report["accuracy"]
    assert len(calls) > 1 and calls[-1] == (len(test_set), len(test_set)) and calls == sorted(calls)
    (step,) = Predictor.from_run(result.run_dir).front_end_steps()  # what Try it lists
    assert "pretrained speech embedding" in step and "8 Mel bands from 3.8 to 8 kHz" in step


def test_cancel_flag_stops_the_run_cleanly(small_synth, tmp_path):
    files = RunFiles(tmp_path / "run")
    callbacks = Callbacks(on_iteration=lambda r: files.request_cancel() if r["step"] == 3 else None)
    result = run_training(tiny(small_synth, epochs=20), files.dir, callbacks)
    status = files.read_status()
    assert result.state == status["state"] == "cancelled" and status["step"] == 3
    assert files.read_report() is None and len(files.read_metrics()[0]) == 3


def test_time_budget_stops_training_then_tests(small_synth, tmp_path):
    result = run_training(tiny(small_synth, epochs=50, max_minutes=1e-6), tmp_path / "run")
    assert result.state == "succeeded" and result.report["stopped"] == "time budget"
    assert result.report["epochs_done"] == 1 and RunFiles(tmp_path / "run").best_path.is_file()


def test_a_crash_is_recorded_then_raised(small_synth, tmp_path):
    def boom(record):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        run_training(tiny(small_synth), tmp_path / "run", Callbacks(on_iteration=boom))
    status = RunFiles(tmp_path / "run").read_status()
    assert status["state"] == "failed" and status["error"] == "RuntimeError: disk on fire"
