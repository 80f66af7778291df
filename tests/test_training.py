"""kwscore.training: the loop learns, test()/predict() agree, checkpoints round-trip safely."""

from __future__ import annotations

import math
import pickle
from collections import Counter

import pytest
import torch
import torchaudio
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kwscore.errors import KwsError
from kwscore.models import build_model
from kwscore.training import (
    amp_dtype,
    autocast,
    load_checkpoint,
    make_grad_scaler,
    make_optimizer,
    make_scheduler,
    model_from_checkpoint,
    pick_device,
    predict,
    save_checkpoint,
    set_seed,
    test,
    train,
)

SR = 16000
LABELS = ["low", "mid", "high"]
TONES_HZ = [300.0, 900.0, 2500.0]


def tone_dataset(n_per_class: int = 20, seconds: float = 0.25, seed: int = 0) -> TensorDataset:
    """3 classes of sine tones (random phase and loudness) buried in white noise: [N, 1, time]."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    waves, targets = [], []
    for label, freq in enumerate(TONES_HZ):
        for _ in range(n_per_class):
            phase = 2 * math.pi * torch.rand(1, generator=gen)
            amp = 0.2 + 0.6 * torch.rand(1, generator=gen)
            noise = 0.1 * torch.randn(t.shape, generator=gen)
            waves.append(amp * torch.sin(2 * math.pi * freq * t + phase) + noise)
            targets.append(label)
    return TensorDataset(torch.stack(waves).unsqueeze(1), torch.tensor(targets))


def mel_transform() -> nn.Module:
    """[B, 1, time] -> [B, 1, 20, frames]: torchaudio directly, so these tests do not need features.py."""
    return nn.Sequential(
        torchaudio.transforms.MelSpectrogram(SR, n_fft=400, hop_length=160, n_mels=20),
        torchaudio.transforms.AmplitudeToDB(top_db=80),
    )


@pytest.fixture(scope="module")
def data():
    ds = tone_dataset()
    train_loader = DataLoader(ds, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    test_loader = DataLoader(ds, batch_size=32, shuffle=False)
    return ds, train_loader, test_loader


@pytest.fixture(scope="module")
def trained(data):
    """A small CNN trained for a few epochs on the tones; records the losses."""
    _ds, train_loader, test_loader = data
    set_seed(0)
    model = build_model("cnn", 3, channels=(8, 16, 32))
    transform = mel_transform()
    criterion = nn.CrossEntropyLoss()
    before = test(model, test_loader, transform, "cpu")["loss"]
    optimizer = make_optimizer(model, lr=0.01)
    losses = [train(model, train_loader, transform, criterion, optimizer, "cpu") for _ in range(6)]
    after = test(model, test_loader, transform, "cpu")
    return model, transform, before, losses, after


def test_training_lowers_the_loss_and_beats_chance(trained):
    _model, _transform, before, losses, after = trained
    assert losses[-1] < losses[0]
    assert after["loss"] < before
    assert after["accuracy"] > 0.6  # chance is 1/3


def test_test_result_is_consistent(data, trained):
    ds, _train_loader, test_loader = data
    model, transform, *_ = trained
    result = test(model, test_loader, transform, "cpu", labels=LABELS)
    n = len(ds)
    assert result["n_total"] == n == len(result["predictions"]) == len(result["targets"])
    assert sum(map(sum, result["confusion"])) == n
    assert result["per_class_total"] == [20, 20, 20]
    assert result["per_class_correct"] == [result["confusion"][i][i] for i in range(3)]
    agree = sum(p == t for p, t in zip(result["predictions"], result["targets"], strict=True))
    assert result["accuracy"] == pytest.approx(agree / n)
    assert result["labels"] == LABELS


def test_predict_agrees_with_test(data, trained):
    ds, _train_loader, test_loader = data
    model, transform, *_ = trained
    predictions = test(model, test_loader, transform, "cpu")["predictions"]
    for i in (0, 25, 59):
        ranked = predict(model, ds[i][0], transform, LABELS, "cpu")  # one clip [1, time]
        assert [label for label, _ in ranked][0] == LABELS[predictions[i]]
        probs = [p for _, p in ranked]
        assert probs == sorted(probs, reverse=True)
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert sorted(label for label, _ in ranked) == sorted(LABELS)


def test_predict_rejects_stereo(trained):
    model, transform, *_ = trained
    with pytest.raises(KwsError, match="mono"):
        predict(model, torch.zeros(2, 4000), transform, LABELS)


def test_waveform_model_with_resample_and_callbacks(data):
    """The M-model path: Resample 16 -> 8 kHz as the transform, a waveform augment, per-batch LR."""
    _ds, train_loader, test_loader = data
    set_seed(1)
    model = build_model("m3", 3, n_channel=16)
    transform = torchaudio.transforms.Resample(SR, 8000)
    optimizer = make_optimizer(model, lr=0.01)
    scheduler = make_scheduler(optimizer, "onecycle", epochs=2, steps_per_epoch=len(train_loader))
    calls, augmented = [], []

    def augment(w):
        augmented.append(w.shape)
        return w * 0.5

    for epoch in range(2):
        train(
            model,
            train_loader,
            transform,
            nn.CrossEntropyLoss(),
            optimizer,
            "cpu",
            on_iteration=lambda step, loss, lr: calls.append((step, loss, lr)),
            augment=augment,
            scheduler=scheduler,
            first_step=epoch * len(train_loader),
        )
    assert [c[0] for c in calls] == list(range(2 * len(train_loader)))  # global steps
    assert all(math.isfinite(c[1]) for c in calls)
    assert len({c[2] for c in calls}) > 1, "the one-cycle rate changes every batch"
    assert augmented[0] == (16, 1, 4000)
    assert 0.0 <= test(model, test_loader, transform, "cpu")["accuracy"] <= 1.0


def test_features_front_end_if_available(data):
    features = pytest.importorskip("kwscore.features")
    _ds, train_loader, test_loader = data
    front_end = features.MelFrontEnd(features.FeatureConfig(n_mels=20))
    model = build_model("cnn", 3, channels=(8, 16))
    train(model, train_loader, front_end, nn.CrossEntropyLoss(), make_optimizer(model), "cpu")
    assert test(model, test_loader, front_end, "cpu")["n_total"] == 60


def test_same_seed_same_losses(data):
    ds, *_ = data

    def run():
        set_seed(123)
        loader = DataLoader(ds, batch_size=16, shuffle=True)
        model = build_model("cnn", 3, channels=(8, 16))
        opt = make_optimizer(model)
        return train(model, loader, mel_transform(), nn.CrossEntropyLoss(), opt, "cpu")

    assert run() == run()


def test_nan_loss_and_empty_loader_are_friendly(data):
    _ds, train_loader, _ = data
    model = build_model("cnn", 3, channels=(8,))
    opt = make_optimizer(model)

    def nan_loss(logits, targets):
        return logits.sum() * float("nan")

    with pytest.raises(KwsError, match="Lower the learning rate"):
        train(model, train_loader, mel_transform(), nan_loss, opt, "cpu")
    with pytest.raises(KwsError, match="no batches"):
        train(model, [], mel_transform(), nn.CrossEntropyLoss(), opt, "cpu")
    with pytest.raises(KwsError, match="no batches"):
        test(model, [], mel_transform(), "cpu")


def test_schedulers():
    model = nn.Linear(2, 2)
    opt = make_optimizer(model, lr=0.01)
    sched = make_scheduler(opt, "step", epochs=30, steps_per_epoch=3)  # StepLR: x0.1 every 20 epochs
    for _ in range(20 * 3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)
    for kind in ("onecycle", "cosine", "constant"):
        make_scheduler(make_optimizer(model), kind, epochs=2, steps_per_epoch=2)
    with pytest.raises(KwsError, match="Choose one of"):
        make_scheduler(opt, "warmup")
    with pytest.raises(KwsError, match="learning rate"):
        make_optimizer(model, lr=0)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, shape", [("cnn", (3, 1, 40, 101)), ("m5", (3, 1, 8000))])
def test_checkpoint_round_trip(tmp_path, name, shape):
    model = build_model(name, 3).eval()
    extra = dict(
        labels=LABELS,
        feature_config={"n_mels": 40, "hop_length": 160},
        transform_config={"resample": [16000, 8000]},
        epoch=7,
        val_accuracy=0.875,
    )
    path = save_checkpoint(tmp_path / "run" / "model.pt", model, extra)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"], "no temporary file left behind"

    ckpt = load_checkpoint(path)
    assert ckpt["model_name"] == name and ckpt["n_classes"] == 3
    assert ckpt["labels"] == LABELS and ckpt["epoch"] == 7 and ckpt["val_accuracy"] == 0.875
    assert ckpt["feature_config"] == extra["feature_config"]
    restored = model_from_checkpoint(ckpt)
    assert not restored.training
    x = torch.randn(*shape)
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))


def test_checkpoint_keeps_model_options(tmp_path):
    model = build_model("m5", 4, n_channel=8, stride=4)
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model))
    assert ckpt["model_kwargs"]["stride"] == 4
    assert ckpt["labels"] is None and ckpt["epoch"] is None  # optional keys always present
    assert model_from_checkpoint(ckpt).conv1.stride == (4,)


class NotAWeight:
    """An arbitrary Python object: unpickling it would mean running code of our choosing."""

    def __init__(self):
        self.payload = "anything"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(KwsError, match="No checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint \x00\x01\x02" * 10)
    with pytest.raises(KwsError, match="not a KWS Studio checkpoint"):
        load_checkpoint(garbage)

    pickled = tmp_path / "object.pt"
    torch.save({"format": "kws-studio-checkpoint", "obj": NotAWeight(), "c": Counter("ab")}, pickled)
    with pytest.raises(KwsError, match="not a KWS Studio checkpoint"):
        load_checkpoint(pickled)  # weights_only=True refuses to build arbitrary objects

    raw_pickle = tmp_path / "raw.pkl"
    raw_pickle.write_bytes(pickle.dumps(NotAWeight()))
    with pytest.raises(KwsError, match="not a KWS Studio checkpoint"):
        load_checkpoint(raw_pickle)

    state_dict_only = tmp_path / "weights.pt"
    torch.save(build_model("cnn", 3).state_dict(), state_dict_only)
    with pytest.raises(KwsError, match="not a KWS Studio checkpoint"):
        load_checkpoint(state_dict_only)


def test_save_checkpoint_checks_its_extras(tmp_path):
    model = build_model("cnn", 3)
    with pytest.raises(KwsError, match="JSON"):
        save_checkpoint(tmp_path / "a.pt", model, {"val_accuracy": torch.tensor(0.5)})
    with pytest.raises(KwsError, match="labels"):
        save_checkpoint(tmp_path / "b.pt", model, {"labels": ["yes", "no"]})
    with pytest.raises(KwsError, match="reserved"):
        save_checkpoint(tmp_path / "c.pt", model, {"state_dict": {}})
    assert not list(tmp_path.iterdir())


def test_checkpoint_with_wrong_weights_is_refused(tmp_path):
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "m.pt", build_model("cnn", 3)))
    ckpt["model_kwargs"]["channels"] = [8, 8, 8, 8]
    with pytest.raises(KwsError, match="do not fit"):
        model_from_checkpoint(ckpt)


# ---------------------------------------------------------------- where runs train (no GPU here)


def test_pick_device_uses_cuda_when_present_and_the_cpu_otherwise(monkeypatch):
    monkeypatch.delenv("KWS_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device().type == "cpu"
    with pytest.raises(KwsError, match="no CUDA GPU"):
        pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda" and pick_device("auto").type == "cuda"
    monkeypatch.setenv("KWS_DEVICE", "cpu")  # keep a run off the GPU
    assert pick_device().type == "cpu"
    monkeypatch.setenv("KWS_DEVICE", "tpu")
    with pytest.raises(KwsError, match="Unknown device 'tpu'"):
        pick_device()


def test_mixed_precision_is_asked_for_on_cuda_only(monkeypatch):
    assert amp_dtype("cpu") is None and not autocast("cpu")._enabled
    assert not make_grad_scaler("cpu").is_enabled()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # built, never entered
    ctx = autocast(pick_device())
    assert (ctx.device, ctx.fast_dtype, ctx._enabled) == ("cuda", torch.float16, True)
    assert amp_dtype("cuda") == torch.float16 and make_grad_scaler("cuda").is_enabled()


def test_train_and_test_run_the_model_under_autocast_for_their_device(data, monkeypatch):
    import contextlib

    from kwscore import training

    asked = []
    monkeypatch.setattr(training, "autocast", lambda device: asked.append(str(device)) or contextlib.nullcontext())
    batches = [batch for batch, _ in zip(data[1], range(2), strict=False)]
    model = build_model("cnn", 3, channels=(4, 8))
    train(model, batches, mel_transform(), nn.CrossEntropyLoss(), make_optimizer(model), "cpu")
    test(model, batches, mel_transform(), "cpu")
    assert asked == ["cpu"] * 4  # each forward pass of train() and of test()


def test_a_loss_scaler_gives_the_same_steps(data):
    """train()'s GradScaler path (what CUDA uses), on the CPU: scaled, unscaled, the same Adam steps."""
    _ds, train_loader, _test_loader = data
    batches = [batch for batch, _ in zip(train_loader, range(3), strict=False)]
    models = []
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=2.0**10)):
        set_seed(0)
        model = build_model("cnn", 3, channels=(4, 8))
        train(model, batches, mel_transform(), nn.CrossEntropyLoss(), make_optimizer(model), "cpu", scaler=scaler)
        models.append(model.state_dict())
    assert scaler.get_scale() == 2.0**10  # no overflow, no skipped step
    for key, value in models[0].items():
        if value.is_floating_point():
            assert torch.allclose(value, models[1][key], atol=1e-5), key
    set_seed(0)
    fresh = build_model("cnn", 3, channels=(4, 8)).state_dict()
    assert not torch.allclose(fresh["classifier.weight"], models[1]["classifier.weight"])  # it did learn
