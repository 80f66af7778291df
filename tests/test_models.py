"""kwscore.models: shapes, parameter counts against Dai et al. Table 1, describe(), friendly errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn

from kwscore.errors import KwsError
from kwscore.models import (
    CNN,
    EMBEDDING_WEIGHTS,
    M5,
    MODEL_INFO,
    MODEL_NAMES,
    M34Res,
    ResBlock1d,
    build_model,
    count_parameters,
    describe,
    speech_embedding,
)
from tests.tutorial import TutorialM5

WAVEFORM_MODELS = [n for n in MODEL_NAMES if MODEL_INFO[n]["representation"] == "waveform"]


def test_registry_has_all_models():
    assert set(MODEL_NAMES) == {"cnn", "m3", "m5", "m11", "m18", "m34res", "embed"}
    assert MODEL_INFO["cnn"]["representation"] == "mel"
    assert all(MODEL_INFO[n]["sample_rate"] == 8000 for n in WAVEFORM_MODELS)
    for name in MODEL_NAMES:
        assert MODEL_INFO[name]["cls"].__doc__, f"{name} needs a docstring"


@pytest.mark.parametrize("shape", [(2, 1, 40, 101), (2, 1, 64, 50), (2, 1, 3, 5)])
def test_cnn_is_independent_of_input_size(shape):
    model = build_model("cnn", 8).eval()
    assert model(torch.randn(*shape)).shape == (2, 8)


def test_cnn_width_and_separable_options():
    narrow = build_model("cnn", 8, channels=(16, 32, 64, 64))
    wide = build_model("cnn", 8)
    separable = build_model("cnn", 8, separable=True)
    assert count_parameters(narrow) < count_parameters(wide)
    assert count_parameters(separable) < count_parameters(wide) / 4
    x = torch.randn(2, 1, 40, 101)
    assert narrow(x).shape == separable(x).shape == (2, 8)


@pytest.mark.parametrize("name", WAVEFORM_MODELS)
def test_waveform_models_output_logits_shape(name):
    model = build_model(name, 10).eval()
    out = model(torch.randn(2, 1, 8000))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_m5_tutorial_parameter_count():
    # The PyTorch tutorial: M5(n_input=1, n_output=35), n_channel=32, stride=16 -> 26,915 params.
    assert 26_000 <= count_parameters(build_model("m5", 35)) <= 28_000
    assert count_parameters(M5(35, n_channel=32, stride=16)) == 26_915


# Dai et al. 2017, Table 1: 10 classes (UrbanSound8k) at 8 kHz, at the paper's widths.
TABLE_1 = {
    "m3": (dict(), 0.2e6),
    "m5": (dict(n_channel=128, stride=4, widths=(128, 128, 256, 512)), 0.5e6),
    "m11": (dict(), 1.8e6),
    "m18": (dict(), 3.7e6),
    "m34res": (dict(), 4.0e6),
}


@pytest.mark.parametrize("name", list(TABLE_1))
def test_parameter_counts_match_table_1(name):
    kwargs, expected = TABLE_1[name]
    n = count_parameters(build_model(name, 10, **kwargs))
    assert 0.8 * expected <= n <= 1.2 * expected, f"{name}: {n} parameters, Table 1 says {expected:.1e}"


def _weight_layers(model: nn.Module) -> int:
    """Convolutions and linear layers on the main path (residual 1x1 shortcuts excluded)."""
    return sum(
        isinstance(m, (nn.Conv1d, nn.Linear)) and "shortcut" not in name for name, m in model.named_modules()
    )


@pytest.mark.parametrize("name, depth", [("m3", 3), ("m5", 5), ("m11", 11), ("m18", 18), ("m34res", 34)])
def test_depth_matches_the_name(name, depth):
    assert _weight_layers(build_model(name, 10)) == depth


def test_m34res_is_residual():
    model = build_model("m34res", 10)
    assert isinstance(model, M34Res)
    assert sum(isinstance(m, ResBlock1d) for m in model.modules()) == 3 + 4 + 6 + 3


def test_m5_loads_tutorial_weights_and_returns_logits():
    tutorial = TutorialM5().eval()
    ours = build_model("m5", 35).eval()
    ours.load_state_dict(tutorial.state_dict())  # same layer names, same shapes
    x = torch.randn(2, 1, 8000)
    with torch.no_grad():
        assert torch.allclose(F.log_softmax(ours(x), dim=1), tutorial(x).squeeze(1), atol=1e-5)


def test_m5_trains_exactly_like_the_tutorial_model():
    """Our faster pool (and pool-then-ReLU) change nothing: same loss, same gradients in training mode."""
    torch.manual_seed(0)
    tutorial = TutorialM5(n_output=8).train()
    ours = build_model("m5", 8).train()
    ours.load_state_dict(tutorial.state_dict())
    x, y = torch.randn(16, 1, 8000), torch.randint(8, (16,))
    F.nll_loss(tutorial(x).squeeze(1), y).backward()
    F.cross_entropy(ours(x), y).backward()
    for (name, a), b in zip(tutorial.named_parameters(), ours.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6), name


def test_describe_m5_receptive_field():
    info = describe("m5", n_classes=35)
    assert info["representation"] == "waveform"
    assert info["sample_rate"] == 8000
    assert info["input_shape"] == [1, 1, 8000]
    assert info["receptive_field_ms"] == pytest.approx(10.0)  # kernel 80 at 8 kHz
    assert info["hop_ms"] == pytest.approx(2.0)  # stride 16 at 8 kHz
    assert info["n_params"] == 26_915
    assert info["min_samples"] <= 8000
    json.dumps(info)  # plain data, ready for the page / a run directory


def test_describe_paper_stride_and_other_rate():
    paper = describe("m5", 10, stride=4)
    assert paper["receptive_field_ms"] == pytest.approx(10.0)
    assert paper["hop_ms"] == pytest.approx(0.5)
    at_16k = describe("m3", 10, sample_rate=16000)
    assert at_16k["receptive_field_ms"] == pytest.approx(5.0)
    assert at_16k["input_shape"] == [1, 1, 16000]
    assert paper["total_receptive_field_ms"] > paper["receptive_field_ms"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_describe_layer_summary(name):
    model = build_model(name, 8)
    model.train()
    info = describe(model)
    layers = info["layers"]
    assert layers, "the summary lists the layers"
    assert {"name", "type", "output_shape", "params"} <= set(layers[0])
    assert layers[-1]["output_shape"] == [1, 8]  # the classifier comes last
    assert sum(row["params"] for row in layers) == info["n_params"] == count_parameters(model)
    assert model.training, "describe() restores the model's mode"
    if name == "cnn":
        assert info["representation"] == "mel" and info["receptive_field_ms"] is None


def test_describe_cnn_custom_input_shape():
    info = describe(CNN(5), input_shape=[1, 1, 64, 50])
    assert info["input_shape"] == [1, 1, 64, 50]
    assert info["layers"][0]["output_shape"] == [1, 1, 64, 50]


def test_unknown_model_and_bad_options_are_friendly():
    with pytest.raises(KwsError, match="Choose one of"):
        build_model("resnet", 8)
    with pytest.raises(KwsError, match="Bad option"):
        build_model("m5", 8, n_channels=32)  # the option is n_channel
    with pytest.raises(KwsError, match="positive"):
        build_model("cnn", 0)
    with pytest.raises(KwsError, match="positive"):
        build_model("m11", 8, stride=0)
    with pytest.raises(KwsError, match="four widths"):
        build_model("m5", 8, widths=(32, 64))
    with pytest.raises(KwsError, match="dropout"):
        build_model("cnn", 8, dropout=1.5)


def test_wrong_input_shapes_are_friendly():
    with pytest.raises(KwsError, match="MelFrontEnd"):
        build_model("cnn", 8)(torch.randn(2, 8000))
    with pytest.raises(KwsError, match=r"\[batch, 1, time\]"):
        build_model("m5", 8)(torch.randn(2, 8000))
    m5 = build_model("m5", 8)
    with pytest.raises(KwsError, match=f"at least {m5.min_samples} samples"):
        m5(torch.randn(2, 1, 2000))  # 0.25 s is too short for the tutorial's M5
    m5.eval()
    m5(torch.randn(1, 1, m5.min_samples))  # exactly the minimum works


# -------------------------------------------------------------------- the pretrained speech embedding

REFERENCE = Path(__file__).resolve().parent / "reference"


def test_speech_embedding_gives_the_numbers_of_the_original_model():
    """openWakeWord's ONNX models' embeddings of a voiced sweep (benchmarks/convert_speech_embedding.py)."""
    audio, rate = sf.read(REFERENCE / "sweep.wav", dtype="float32")
    expected = np.load(REFERENCE / "sweep_embedding.npy")  # [steps, 96]
    got = speech_embedding()(torch.from_numpy(audio)[None, None])[0].T.numpy()
    assert rate == 16000 and got.shape == expected.shape == (9, 96)
    assert np.abs(got - expected).max() < 1e-3 * np.abs(expected).max()


def test_speech_embedding_whole_clip_equals_windows_of_76_frames_every_8():
    emb = speech_embedding()
    mel = emb.log_mel(torch.randn(2, 1, 24000) * 0.1)  # [2, 1, 147, 32]
    whole = emb.from_log_mel(mel)
    windows = torch.cat([emb.from_log_mel(mel[:, :, i : i + 76]) for i in range(0, mel.shape[2] - 75, 8)], dim=-1)
    assert whole.shape == windows.shape == (2, 96, 9)
    assert torch.allclose(whole, windows, atol=1e-4)


def test_embedding_model_trains_only_its_head_and_checkpoints_stay_small():
    model = build_model("embed", 5)
    assert all(not k.startswith("embedding") for k in model.state_dict())
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) < 40_000
    frozen = {k: v.clone() for k, v in model.embedding.state_dict(keep_vars=True).items()}
    head = model.fc.weight.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(torch.randn(4, 1, 16000) * 0.1), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()
    assert not torch.equal(model.fc.weight, head), "the head learns"
    assert all(torch.equal(v, frozen[k]) for k, v in model.embedding.state_dict().items()), "the embedding does not"
    assert EMBEDDING_WEIGHTS.stat().st_size > 1_000_000 and model.embedding is build_model("embed", 3).embedding


def test_embedding_model_reads_any_length_and_refuses_too_short_clips():
    model = build_model("embed", 4).eval()
    for samples in (16000, 8000, 40000):
        assert model(torch.randn(2, 1, samples) * 0.1).shape == (2, 4)
    with pytest.raises(KwsError, match="at least"):
        model(torch.randn(1, 1, model.min_samples - 1))
    info = describe("embed", 4)
    assert info["representation"] == "embedding" and info["input_shape"] == [1, 1, 16000]
    assert info["n_params"] == count_parameters(model)
    with pytest.raises(KwsError, match="dropout"):
        build_model("embed", 4, dropout=1.0)
    with pytest.raises(KwsError, match="high_bands"):
        build_model("embed", 4, high_bands=-1)


def test_high_bands_add_what_the_embedding_cannot_hear():
    """8 Mel bands 3.8-8 kHz at the embedding's steps: a hiss at 6 kHz shows in the steps that hear it."""
    model = build_model("embed", 4, high_bands=8).eval()
    assert model.conv1.in_channels == 96 + 8 and model(torch.randn(2, 1, 16000) * 0.1).shape == (2, 4)
    t = torch.arange(24000) / 16000
    low = torch.sin(2 * torch.pi * 500 * t) * 0.3
    hiss = torch.sin(2 * torch.pi * 6000 * t) * (t > 1.2) * (t < 1.45)  # 250 ms of 6 kHz near the end
    bands = model.high_band((low + hiss)[None, None])[0]  # [8, 9]: step 0 sees 0-0.78 s, step 8 0.64-1.42 s
    assert bands.shape == (8, 9)
    assert bands[:, 8].max() - bands[:, 0].max() > 1.5, "the hiss shows above 3.8 kHz (in tens of dB)"


def test_speech_embedding_tells_words_apart_across_voices(small_synth):
    """Two takes of one word (other voices) sit closer in the embedding than two different words."""
    from kwscore.data.dataset import SpeechCommands

    ds = SpeechCommands(small_synth, "training")
    by_word: dict[str, list[torch.Tensor]] = {}
    for i in range(len(ds)):
        by_word.setdefault(ds.get_metadata(i)[2], []).append(ds.waveform(i))
    words = sorted(by_word)[:6]
    clips = torch.stack([w for word in words for w in by_word[word][:6]])  # 6 words x 6 takes
    with torch.no_grad():
        e = speech_embedding()(F.pad(clips, (4000, 4000))).amax(dim=-1)  # [36, 96]
    e = F.normalize(e - e.mean(0), dim=1)
    sim = e @ e.T
    same = torch.block_diag(*[torch.ones(6, 6)] * 6).bool() & ~torch.eye(36, dtype=torch.bool)
    differ = ~torch.block_diag(*[torch.ones(6, 6)] * 6).bool()
    assert sim[same].mean() > sim[differ].mean() + 0.2
