"""Tests for kwscore.features: shapes, dB ranges, validation messages, teaching numbers, export."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace

import pytest
import torch

from kwscore.errors import KwsError
from kwscore.features import (
    FEATURE_PRESETS,
    N_FFT_RANGE,
    N_MELS_RANGE,
    WHY_10_MS,
    FeatureConfig,
    MelFrontEnd,
    empty_bands_lesson,
    empty_mel_bands,
    fft_bin_hz,
    frame_times,
    linear_spectrogram_db,
    max_valid_n_mels,
    mel_centre_hz,
    mel_db,
    mel_filterbank,
    preset_name,
    resample,
    resampled_spectrogram,
    teaching_numbers,
    valid_choices,
)

SR = 16000


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run these small-tensor tests on one intra-op thread (restored afterwards).

    On 2 cores shared with a training job, each parallel op of a 2-thread pool waits a scheduler
    tick for its second thread; tiny tensors gain nothing from it.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sweep(seconds: float = 1.0, sr: int = SR, f0: float = 100.0, f1: float = 6000.0) -> torch.Tensor:
    """A linear sine sweep ``[1, time]`` from f0 to f1 Hz, amplitude 0.5."""
    t = torch.arange(round(seconds * sr), dtype=torch.float64) / sr
    phase = 2 * math.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.5 * torch.sin(phase)).float().unsqueeze(0)


def tone(hz: float, seconds: float = 1.0, sr: int = SR) -> torch.Tensor:
    t = torch.arange(round(seconds * sr)) / sr
    return (0.5 * torch.sin(2 * math.pi * hz * t)).unsqueeze(0)


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------

GRID = [
    # n_fft, win, hop, n_mels
    (512, 480, 160, 40),
    (512, 400, 160, 64),
    (256, 256, 128, 32),
    (1024, 1024, 256, 80),
    (2048, 1600, 400, 128),
    (128, 128, 32, 8),
]


@pytest.mark.parametrize("n_fft, win, hop, n_mels", GRID)
@pytest.mark.parametrize("n_samples", [16000, 12345])
def test_shapes_over_a_grid(n_fft, win, hop, n_mels, n_samples):
    cfg = FeatureConfig(n_fft=n_fft, win_length=win, hop_length=hop, n_mels=n_mels).validate()
    x = sweep()[:, :n_samples]
    frames = 1 + n_samples // hop
    assert cfg.frames_for(n_samples) == frames
    assert mel_db(x, cfg).shape == (n_mels, frames)
    assert mel_db(x[0], cfg).shape == (n_mels, frames)  # [time] works too
    assert linear_spectrogram_db(x, cfg).shape == (n_fft // 2 + 1, frames)
    fe = MelFrontEnd(cfg)
    assert fe(x).shape == (1, n_mels, frames)
    assert fe(x.expand(3, -1).unsqueeze(1)).shape == (3, 1, n_mels, frames)
    assert mel_filterbank(cfg).shape == (n_fft // 2 + 1, n_mels)
    assert mel_centre_hz(cfg).shape == (n_mels,)
    assert frame_times(cfg, frames).shape == (frames,)


def test_default_input_is_40_by_101():
    assert mel_db(sweep()).shape == (40, 101)


def test_mel_db_rejects_stereo():
    with pytest.raises(KwsError, match="to_mono"):
        mel_db(torch.zeros(2, 16000))


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("top_db", [20.0, 40.0, 80.0, 120.0])
@pytest.mark.parametrize("power", [1.0, 2.0])
def test_db_range_is_at_most_top_db(top_db, power):
    cfg = FeatureConfig(top_db=top_db, power=power, normalize=False)
    x = sweep() + 1e-4 * torch.randn(1, SR)
    for spec in (mel_db(x, cfg), linear_spectrogram_db(x, cfg)):
        rng = float(spec.max() - spec.min())
        assert rng <= top_db + 1e-3
    assert float(mel_db(x, cfg).max() - mel_db(x, cfg).min()) > min(top_db, 20.0) - 1


def test_normalized_output_has_zero_mean_unit_std():
    spec = mel_db(sweep(), FeatureConfig(normalize=True))
    assert abs(float(spec.mean())) < 1e-4
    assert abs(float(spec.std()) - 1.0) < 1e-3


def test_normalize_removes_loudness():
    cfg = FeatureConfig()
    x = sweep()
    assert torch.allclose(mel_db(x, cfg), mel_db(0.1 * x, cfg), atol=1e-3)


def test_silence_gives_finite_output():
    for normalize in (True, False):
        spec = mel_db(torch.zeros(1, SR), FeatureConfig(normalize=normalize))
        assert torch.isfinite(spec).all()


def test_tone_lands_in_the_right_band():
    cfg = FeatureConfig(normalize=False)
    spec = mel_db(tone(1000.0), cfg)
    band = int(spec.mean(dim=1).argmax())
    centres = mel_centre_hz(cfg)
    assert abs(centres[band] - 1000.0) < 0.1 * 1000.0
    lin = linear_spectrogram_db(tone(1000.0), cfg)
    assert abs(fft_bin_hz(cfg)[int(lin.mean(dim=1).argmax())] - 1000.0) <= cfg.sample_rate / cfg.n_fft


def test_batched_and_unbatched_agree():
    fe = MelFrontEnd(FeatureConfig()).eval()
    clips = [sweep(), 0.05 * sweep(f0=300, f1=3000), torch.randn(1, SR) * 0.01]
    batch = torch.stack(clips)  # [3, 1, time]
    out = fe(batch)
    for i, clip in enumerate(clips):
        assert torch.allclose(out[i], fe(clip), atol=1e-4)
        assert torch.allclose(out[i, 0], mel_db(clip), atol=1e-4)


def test_mel_db_is_fast():
    """Under 20 ms per 1-s clip (typically ~0.4 ms), measured on one thread (see one_torch_thread:
    with 2 threads and a busy machine one clip takes ~40 ms)."""
    x = sweep()
    mel_db(x)  # build + cache the front end
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        mel_db(x)
        times.append(time.perf_counter() - t0)
    assert sorted(times)[len(times) // 2] < 0.020


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_script_and_trace():
    fe = MelFrontEnd(FeatureConfig()).eval()
    x = sweep().unsqueeze(0)  # [1, 1, time]
    scripted = torch.jit.script(fe)
    assert torch.allclose(scripted(x), fe(x), atol=1e-5)
    assert scripted(sweep()).shape == (1, 40, 101)  # unbatched through the scripted module
    traced = torch.jit.trace(fe, x)
    batch = torch.stack([sweep(), 0.3 * sweep(f0=50.0)])
    assert torch.allclose(traced(batch), fe(batch), atol=1e-5)


def test_torch_export():
    fe = MelFrontEnd(FeatureConfig()).eval()
    batch = torch.stack([sweep(), 0.3 * sweep(f0=50.0)])
    exported = torch.export.export(fe, (batch,))
    assert torch.allclose(exported.module()(batch), fe(batch), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Config: JSON and validation messages
# ---------------------------------------------------------------------------------------------


def test_json_round_trip():
    cfg = FeatureConfig(n_mels=64, win_length=400, window="hamming", f_max=None, top_db=None)
    again = FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert hash(again) == hash(cfg)


def test_from_dict_unknown_key():
    with pytest.raises(KwsError, match=r"Unknown feature setting\(s\) \['n_mel'\]"):
        FeatureConfig.from_dict({"n_mel": 40})


def test_defaults_are_valid_and_documented_values():
    cfg = FeatureConfig().validate()
    assert cfg.to_dict() == {
        "sample_rate": 16000,
        "n_fft": 512,
        "win_length": 480,
        "hop_length": 160,
        "n_mels": 40,
        "f_min": 20.0,
        "f_max": 8000.0,
        "window": "hann",
        "power": 2.0,
        "top_db": 80.0,
        "normalize": True,
    }


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"win_length": 600}, ["win_length (600) is longer than n_fft (512)", "Raise n_fft to 1024"]),
        ({"hop_length": 0}, ["hop_length must be at least 1", "160 (10 ms)"]),
        ({"hop_length": 500}, ["hop_length (500) is longer than win_length (480)", "at most the window"]),
        ({"f_max": 9000.0}, ["above the Nyquist frequency (8000 Hz)", "Set f_max to 8000 or lower"]),
        ({"f_min": 8000.0}, ["f_min (8000 Hz) must be below f_max (8000 Hz)"]),
        ({"f_min": 300.0, "f_max": 200.0}, ["must be below f_max", "Lower f_min or raise f_max"]),
        ({"f_min": -5.0}, ["f_min must be 0 Hz or more"]),
        ({"window": "kaiser"}, ["Unknown window 'kaiser'", "['hamming', 'hann']"]),
        ({"top_db": 0.0}, ["top_db must be positive", "Use 80"]),
        ({"top_db": -10.0}, ["top_db must be positive"]),
        ({"sample_rate": 0}, ["sample_rate must be positive, got 0"]),
        ({"sample_rate": -16000}, ["sample_rate must be positive"]),
        ({"n_mels": 0}, ["n_mels must be at least 1"]),
        ({"win_length": 0}, ["win_length must be at least 1"]),
        ({"n_fft": 1, "win_length": 1, "hop_length": 1}, ["n_fft must be at least 2"]),
        ({"power": 3.0}, ["power must be 1 (magnitude) or 2 (energy)"]),
        ({"sample_rate": 8000}, ["f_max (8000 Hz) is above the Nyquist frequency (4000 Hz)"]),
    ],
)
def test_validation_messages(changes, expected):
    cfg = replace(FeatureConfig(), **changes)
    with pytest.raises(KwsError) as err:
        cfg.validate()
    for text in expected:
        assert text in str(err.value)
    with pytest.raises(KwsError):
        MelFrontEnd(cfg)


def test_empty_mel_bands_are_a_lesson_not_an_error():
    cfg = FeatureConfig(n_fft=256, win_length=256, hop_length=128, n_mels=128)
    empty = empty_mel_bands(cfg)
    assert empty == int((mel_filterbank(cfg).sum(0) == 0).sum()) > 0
    cfg.validate()  # allowed, as in torchaudio (which only warns)
    lesson = empty_bands_lesson(cfg)
    assert lesson.startswith(f"128 bands at n_fft 256 leave {empty} bands empty") and "62.5 Hz apart" in lesson
    best = max_valid_n_mels(cfg)
    assert f"n_mels ≤ {best}" in lesson and "n_fft ≥ 1024" in lesson
    assert empty_mel_bands(replace(cfg, n_mels=best)) == 0  # the advice works
    assert empty_mel_bands(replace(cfg, n_mels=best + 1)) > 0
    assert empty_mel_bands(replace(cfg, n_fft=1024)) == 0
    assert teaching_numbers(cfg).empty_mel_bands == empty
    assert empty_bands_lesson(FeatureConfig()) is None
    with torch.inference_mode():
        spec = MelFrontEnd(cfg)(torch.randn(1, 1, SR))
    assert spec.shape == (1, 1, 128, 126) and torch.isfinite(spec).all()


def test_torchaudio_preset_reaches_torchaudio_unchanged():
    import torchaudio.transforms as T

    c = FEATURE_PRESETS["torchaudio"]
    mel, default = MelFrontEnd(c).mel, T.MelSpectrogram()  # torchaudio with no arguments
    for name in ("n_fft", "win_length", "hop_length", "power", "center", "pad_mode"):
        assert getattr(mel.spectrogram, name) == getattr(default.spectrogram, name), name
    for name in ("n_mels", "sample_rate", "f_min", "f_max", "norm", "mel_scale"):
        assert getattr(mel.mel_scale, name) == getattr(default.mel_scale, name), name
    assert torch.equal(mel.spectrogram.window, default.spectrogram.window)
    x = torch.randn(1, SR)
    assert torch.equal(mel(x), default(x))
    assert mel(x).shape == (1, 128, 81)
    assert empty_bands_lesson(c).startswith("128 bands at n_fft 400 leave 4 bands empty")
    assert preset_name(c) == "torchaudio" and preset_name(FeatureConfig()) == "classic"
    assert preset_name(replace(c, f_max=8000.0)) == "torchaudio"  # None means Nyquist: the same front end
    assert preset_name(replace(c, n_mels=64)) is None


def test_problems_lists_everything():
    cfg = FeatureConfig(hop_length=0, window="box", top_db=-1.0)
    assert len(cfg.problems()) == 3
    assert FeatureConfig().problems() == []


# ---------------------------------------------------------------------------------------------
# Teaching numbers
# ---------------------------------------------------------------------------------------------


def test_teaching_numbers_by_hand_at_16k():
    n = teaching_numbers(FeatureConfig())
    assert n.ten_ms_samples == 160
    assert (n.pow2_below, n.pow2_above, n.pow2_nearest) == (128, 256, 128)
    assert n.pow2_nearest_ms == 8.0
    assert (n.win_samples, n.win_ms, n.hop_samples, n.hop_ms) == (480, 30.0, 160, 10.0)
    assert n.win_hop_ratio == 3.0
    assert n.overlap_pct == pytest.approx(200 / 3)
    assert n.hz_per_bin == 31.25 and n.n_freq_bins == 257
    assert n.frames_per_second == 100.0
    assert n.frames_per_clip == 101 and n.input_shape == (40, 101)
    assert n.nyquist_hz == 8000.0 and n.zero_padding == 32
    assert len(n.mel_centres_hz) == 40 and n.empty_mel_bands == 0
    assert 20.0 < n.mel_centres_hz[0] < n.mel_centres_hz[-1] < 8000.0
    assert "quasi-stationary" in n.why_10_ms and n.why_10_ms == WHY_10_MS
    json.dumps(n.to_dict())


def test_teaching_numbers_other_rates():
    n8 = teaching_numbers(
        FeatureConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, f_max=None)
    )
    assert n8.ten_ms_samples == 80 and (n8.pow2_below, n8.pow2_above, n8.pow2_nearest) == (64, 128, 64)
    assert n8.frames_per_clip == 101 and n8.hz_per_bin == 31.25 and n8.n_freq_bins == 129
    n22 = teaching_numbers(FeatureConfig(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=220))
    assert n22.ten_ms_samples == pytest.approx(220.5)
    assert (n22.pow2_below, n22.pow2_above, n22.pow2_nearest) == (128, 256, 256)
    assert n22.frames_per_clip == 1 + 22050 // 220


def test_teaching_numbers_refuse_broken_configs():
    with pytest.raises(KwsError, match="hop_length"):
        teaching_numbers(FeatureConfig(hop_length=0))


def test_axes_helpers():
    cfg = FeatureConfig()
    t = frame_times(cfg, 101)
    assert t[0] == 0.0 and t[1] == pytest.approx(0.01) and t[-1] == pytest.approx(1.0)
    c = mel_centre_hz(cfg)
    assert (c[1:] > c[:-1]).all()
    assert fft_bin_hz(cfg)[-1] == 8000.0


# ---------------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------------


def test_resample_to_8k_removes_high_frequencies():
    x = tone(6000.0) + tone(500.0)
    low, spec, cfg8 = resampled_spectrogram(x, FeatureConfig(), 8000, kind="linear")
    assert low.shape == (1, 8000)
    assert (cfg8.sample_rate, cfg8.n_fft, cfg8.win_length, cfg8.hop_length, cfg8.f_max) == (
        8000, 256, 240, 80, 4000.0,
    )  # fmt: skip
    assert spec.shape == (129, 101)
    # the 6 kHz tone is above the new Nyquist (4 kHz): it is filtered out, the 500 Hz tone stays
    only_high = resample(tone(6000.0), SR, 8000)
    assert float(only_high.pow(2).mean()) < 1e-4 * float(tone(6000.0).pow(2).mean())
    assert float(resample(tone(500.0), SR, 8000).pow(2).mean()) > 0.1
    _, mel, _ = resampled_spectrogram(x, FeatureConfig(), 8000, kind="mel")
    assert mel.shape == (40, 101)


def test_resampled_spectrogram_bad_kind():
    with pytest.raises(KwsError, match="'linear' or 'mel'"):
        resampled_spectrogram(sweep(), FeatureConfig(), 8000, kind="bark")


# ---------------------------------------------------------------------------------------------
# Slider ranges
# ---------------------------------------------------------------------------------------------


def test_valid_choices_edges_are_valid():
    for cfg in (FeatureConfig(), FEATURE_PRESETS["torchaudio"]):
        r = valid_choices(cfg)
        assert r.n_fft == N_FFT_RANGE and r.n_mels == N_MELS_RANGE and N_MELS_RANGE[1] >= 128
        assert r.win_length == (32, cfg.n_fft) and r.hop_length == (16, cfg.win_length)
        assert r.top_db == (20.0, 120.0) and r.f_max[1] == 8000.0
        assert r.n_mels_full == max_valid_n_mels(cfg, upper=N_MELS_RANGE[1])
        for changes in (
            {"n_mels": r.n_mels[0]},
            {"n_mels": r.n_mels[1]},
            {"n_fft": cfg.win_length + 1},  # any n_fft, not only powers of two
            {"hop_length": r.hop_length[0]},
            {"hop_length": r.hop_length[1]},
            {"win_length": r.win_length[0], "hop_length": 16},
            {"win_length": r.win_length[1]},
            {"f_max": r.f_max[1]},
            {"f_min": r.f_min[1]},
            {"top_db": r.top_db[0]},
        ):
            replace(cfg, **changes).validate()


def test_valid_choices_follow_f_min_and_f_max():
    r = valid_choices(FeatureConfig(f_min=300.0, f_max=4000.0))
    assert r.f_min == (0.0, 1000.0) and r.f_max == (400.0, 8000.0)
    assert valid_choices(FeatureConfig(f_max=600.0)).f_min[1] == 500.0
