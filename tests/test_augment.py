"""Tests for kwscore.augment: lengths, determinism, SNR, masks, zero fill, presets, JSON, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from kwscore.augment import (
    COMPRESSOR_PRESETS,
    EFFECTS,
    PRESETS,
    AugmentConfig,
    AugmentStep,
    BatchAugment,
    NoiseBank,
    Pipeline,
    SpecAugment,
    SpecAugmentConfig,
    add_background_noise,
    add_colored_noise,
    colored_noise,
    colored_noise_batch,
    compress,
    fix_length_centred,
    gain,
    load_noises,
    mic_response,
    microphone,
    microphone_batch,
    mix,
    mix_batch,
    pitch_shift,
    preset,
    reverb,
    reverberate_batch,
    room_impulse_response,
    shift_batch,
    snr_db,
    spec_augment,
    spec_augment_batch,
    time_shift,
    time_stretch,
)
from kwscore.errors import KwsError
from kwscore.features import mel_db

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


def word(seed: int = 0) -> torch.Tensor:
    """A 1-s 'word': a 0.5-s sine sweep with a Hann envelope in the middle, plus faint noise."""
    t = torch.arange(SR // 2, dtype=torch.float64) / SR
    burst = torch.sin(2 * math.pi * (300 * t + 1500 * t**2)) * torch.hann_window(SR // 2, dtype=torch.float64)
    x = torch.zeros(SR, dtype=torch.float64)
    x[SR // 4 : SR // 4 + SR // 2] = 0.4 * burst
    x += 1e-3 * torch.from_numpy(np.random.default_rng(seed).standard_normal(SR))
    return x.float().unsqueeze(0)


@pytest.fixture
def noise_root(tmp_path):
    """A dataset root with two background recordings: 3 s at 16 kHz and a stereo one at 8 kHz."""
    folder = tmp_path / "SpeechCommands" / "speech_commands_v0.02" / "_background_noise_"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(folder / "x.wav", (0.1 * rng.standard_normal(3 * SR)).astype(np.float32), SR)
    sf.write(folder / "y.wav", (0.1 * rng.standard_normal((8000, 2))).astype(np.float32), 8000)
    return tmp_path


# ---------------------------------------------------------------------------------------------
# Lengths and shapes
# ---------------------------------------------------------------------------------------------

KEEP_LENGTH_EFFECTS = [
    (time_stretch, {"rate": (0.81, 1.23)}),
    (pitch_shift, {"semitones": (-3.5, 3.5)}),
    (time_shift, {"shift_ms": (-200.0, 200.0)}),
    (gain, {"gain_db": (-6.0, 6.0)}),
    (compress, {"preset": ("speech", "radio", "music", "film")}),
    (add_colored_noise, {"color": ("white", "pink", "brown")}),
    (add_background_noise, {}),
    (reverb, {"rt60": (0.1, 0.9)}),
    (microphone, {}),
]


@pytest.mark.parametrize("effect, kwargs", KEEP_LENGTH_EFFECTS, ids=lambda v: getattr(v, "__name__", ""))
def test_effects_keep_shape_and_dtype(effect, kwargs):
    x = word()
    y, record = effect(x, **kwargs, seed=1)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    assert record["effect"] == effect.__name__
    json.dumps(record)
    y1, _ = effect(x[0], **kwargs, seed=1)  # [time] is accepted too
    assert y1.shape == x.shape


@pytest.mark.parametrize("rate", [0.81, 1.0, 1.23])
def test_time_stretch_length(rate):
    x = word()
    y, rec = time_stretch(x, rate, keep_length=False, seed=0)
    assert abs(y.shape[-1] - SR / rate) <= 2
    assert rec["rate"] == rate and rec["stretched_length"] == y.shape[-1]
    y, _ = time_stretch(x, rate, seed=0)
    assert y.shape == (1, SR)


def test_time_stretch_keeps_the_word_centred():
    x = word()
    for rate in (0.81, 1.23):
        y, _ = time_stretch(x, rate)
        energy = y[0].double() ** 2
        centre = float((energy * torch.arange(SR)).sum() / energy.sum())
        assert abs(centre - SR / 2) < 0.03 * SR


def test_fix_length_centred():
    x = torch.arange(10.0).unsqueeze(0)
    assert fix_length_centred(x, 6).tolist() == [[2, 3, 4, 5, 6, 7]]
    assert fix_length_centred(x, 12).tolist() == [[0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]]


def test_pitch_shift_moves_a_tone():
    t = torch.arange(SR) / SR
    x = (0.5 * torch.sin(2 * math.pi * 440 * t)).unsqueeze(0)
    y, rec = pitch_shift(x, 3.0)
    peak_hz = int(torch.fft.rfft(y[0]).abs().argmax())  # 1-s clip: 1 Hz per bin
    assert abs(peak_hz - 440 * 2 ** (3 / 12)) < 5
    assert rec["frequency_factor"] == pytest.approx(2**0.25)


def test_wrong_shape_is_explained():
    with pytest.raises(KwsError, match="one mono clip"):
        gain(torch.zeros(2, SR), 3.0)


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("effect, kwargs", KEEP_LENGTH_EFFECTS, ids=lambda v: getattr(v, "__name__", ""))
def test_same_seed_same_output_different_seed_different(effect, kwargs, noise_root):
    if effect is add_background_noise:
        kwargs = {"noises": load_noises(noise_root)}
    x = word()
    a, ra = effect(x, **kwargs, seed=123)
    b, rb = effect(x, **kwargs, seed=123)
    assert torch.equal(a, b) and ra == rb
    outputs = [effect(x, **kwargs, seed=s)[0] for s in range(1, 6)]
    assert any(not torch.equal(a, o) for o in outputs)


def test_pipeline_determinism_with_tuple_seed():
    cfg = preset("strong")
    x = word()
    a, ra = cfg.apply(x, seed=(7, 0, 42))
    b, rb = cfg.apply(x, seed=(7, 0, 42))
    assert torch.equal(a, b) and ra == rb
    c, _ = cfg.apply(x, seed=(7, 1, 42))
    assert not torch.equal(a, c)


def test_generator_seed_advances():
    rng = np.random.default_rng(5)
    _, r1 = gain(word(), (-6.0, 6.0), seed=rng)
    _, r2 = gain(word(), (-6.0, 6.0), seed=rng)
    assert r1["gain_db"] != r2["gain_db"]


# ---------------------------------------------------------------------------------------------
# Noise and SNR
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [-5.0, 0.0, 5.0, 12.5, 20.0, 40.0])
def test_background_noise_snr_is_achieved(target, noise_root):
    x = word()
    noises = load_noises(noise_root)
    for seed in range(3):
        y, rec = add_background_noise(x, noises, snr_db=target, seed=seed)
        assert abs(snr_db(x, y - x) - target) < 0.5
        assert abs(rec["achieved_snr_db"] - target) < 0.5 and rec["source"] == "recording"


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
def test_colored_noise_snr_is_achieved(color):
    x = word()
    y, rec = add_colored_noise(x, color, snr_db=(3.0, 9.0), seed=4)
    assert 3.0 <= rec["snr_db"] <= 9.0
    assert abs(snr_db(x, y - x) - rec["snr_db"]) < 0.5


def test_weight_mixing_adds_the_recording_as_is(noise_root):
    x = word()
    noises = load_noises(noise_root)
    y, rec = add_background_noise(x, noises, weight=0.3, seed=2)
    assert rec["weight"] == 0.3
    segment = noises[rec["noise_index"]][:, rec["offset"] : rec["offset"] + SR]
    assert torch.allclose(y, x + 0.3 * segment, atol=1e-6)
    _, drawn = add_background_noise(x, noises, seed=2)  # default weight range
    assert 0.1 <= drawn["weight"] <= 0.5


def test_background_noise_without_recordings_uses_colored_noise():
    y, rec = add_background_noise(word(), [], snr_db=10.0, seed=0)
    assert rec["source"] == "colored" and rec["color"] in ("white", "pink", "brown")
    assert abs(rec["achieved_snr_db"] - 10.0) < 0.5


def test_load_noises(noise_root, tmp_path):
    noises = load_noises(noise_root)
    assert [tuple(n.shape) for n in noises] == [(1, 3 * SR), (1, SR)]  # 8 kHz stereo -> 16 kHz mono
    assert all(n.dtype == torch.float32 for n in noises)
    assert load_noises(tmp_path / "nothing-here") == []


def test_short_noise_is_tiled(noise_root):
    short = [torch.full((1, 100), 0.5)]
    y, rec = add_background_noise(torch.zeros(1, SR), short, weight=1.0, seed=0)
    assert torch.allclose(y, torch.full((1, SR), 0.5))


def test_silent_clip_in_snr_mode_falls_back_to_a_weight():
    y, rec = add_colored_noise(torch.zeros(1, SR), "white", snr_db=10.0, seed=0)
    assert rec["achieved_snr_db"] == -math.inf
    assert torch.isfinite(y).all() and float(y.abs().max()) > 0


def test_mix_needs_exactly_one_level():
    with pytest.raises(KwsError, match="not both"):
        mix(word(), word(), snr=3.0, weight=0.2)
    with pytest.raises(KwsError, match="not both and not neither"):
        mix(word(), word())


def test_noise_colors_tilt_the_spectrum():
    def low_fraction(x):
        p = torch.fft.rfft(x[0].double()).abs() ** 2
        return float(p[1:500].sum() / p[1:].sum())  # below 500 Hz

    white, pink, brown = (colored_noise(SR, c, seed=1) for c in ("white", "pink", "brown"))
    assert low_fraction(white) < low_fraction(pink) < low_fraction(brown)
    for n in (white, pink, brown):
        assert float(n.pow(2).mean().sqrt()) == pytest.approx(0.1, rel=1e-3)


# ---------------------------------------------------------------------------------------------
# Gain, shift, compression
# ---------------------------------------------------------------------------------------------


def test_gain_in_db():
    x = word()
    y, rec = gain(x, 6.0)
    assert torch.allclose(y, x * 10 ** (6 / 20))
    assert rec == {"effect": "gain", "gain_db": 6.0}


@pytest.mark.parametrize("ms", [50.0, -50.0, 125.0, -125.0])
def test_time_shift_fills_with_zeros_not_roll(ms):
    x = word() + 0.01  # no zeros anywhere, so a zero can only come from the fill
    y, rec = time_shift(x, ms)
    k = round(ms * SR / 1000)
    assert rec["shift_samples"] == k
    if k > 0:
        assert torch.all(y[:, :k] == 0) and torch.equal(y[:, k:], x[:, :-k])
    else:
        assert torch.all(y[:, k:] == 0) and torch.equal(y[:, :k], x[:, -k:])
    assert not torch.equal(y, torch.roll(x, k, dims=-1))


@pytest.mark.parametrize("name", list(COMPRESSOR_PRESETS))
def test_compression_lifts_quiet_parts_and_keeps_the_peak(name):
    t = torch.arange(SR) / SR
    env = torch.where(t < 0.5, torch.tensor(0.8), torch.tensor(0.05))  # loud half, quiet half
    x = (env * torch.sin(2 * math.pi * 300 * t)).unsqueeze(0)
    y, rec = compress(x, name)
    ratio_in = float(x[0, 12000:14000].abs().max() / x[0, 2000:4000].abs().max())
    ratio_out = float(y[0, 12000:14000].abs().max() / y[0, 2000:4000].abs().max())
    assert ratio_out > ratio_in * 1.2  # dynamic range reduced
    assert float(y.abs().max()) == pytest.approx(float(x.abs().max()), rel=1e-4)
    assert rec["preset"] == name and rec["max_reduction_db"] > 0
    p = COMPRESSOR_PRESETS[name]
    assert (rec["threshold_db"], rec["ratio"], rec["attack_ms"], rec["release_ms"]) == (
        p.threshold_db, p.ratio, p.attack_ms, p.release_ms,
    )  # fmt: skip


def test_compress_silence():
    y, rec = compress(torch.zeros(1, SR), "radio")
    assert torch.equal(y, torch.zeros(1, SR)) and rec["max_reduction_db"] == 0.0


# ---------------------------------------------------------------------------------------------
# SpecAugment
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_spec_augment_masks_within_bounds(seed):
    cfg = SpecAugmentConfig(freq_mask_param=8, time_mask_param=12, n_freq_masks=2, n_time_masks=3)
    spec = mel_db(word()) + 5.0  # mean clearly non-zero: mask value is recognisable
    out, rec = spec_augment(spec, cfg, seed=seed)
    assert out.shape == spec.shape == (40, 101)
    assert len(rec["freq_masks"]) == 2 and len(rec["time_masks"]) == 3
    for start, width in rec["freq_masks"]:
        assert 0 <= width <= 8 and 0 <= start and start + width <= 40
        block = out[start : start + width]
        assert torch.allclose(block, torch.full_like(block, rec["mask_value"]), atol=1e-5)
    for start, width in rec["time_masks"]:
        assert 0 <= width <= 12 and 0 <= start and start + width <= 101
        block = out[:, start : start + width]
        assert torch.allclose(block, torch.full_like(block, rec["mask_value"]), atol=1e-5)
    assert rec["mask_value"] == pytest.approx(float(spec.mean()), abs=1e-5)
    hidden = torch.zeros_like(spec, dtype=torch.bool)
    for s, w in rec["freq_masks"]:
        hidden[s : s + w] = True
    for s, w in rec["time_masks"]:
        hidden[:, s : s + w] = True
    assert torch.equal(out[~hidden], spec[~hidden])  # everything else untouched


def test_spec_augment_zero_fill_and_determinism():
    cfg = SpecAugmentConfig(mask_value="zero", n_freq_masks=1, n_time_masks=1, freq_mask_param=10)
    spec = torch.randn(1, 40, 101) + 3.0
    a, ra = spec_augment(spec, cfg, seed=3)
    b, rb = spec_augment(spec, cfg, seed=3)
    assert torch.equal(a, b) and ra == rb and a.shape == (1, 40, 101)
    assert ra["mask_value"] == 0.0
    others = [spec_augment(spec, cfg, seed=s)[1] for s in range(4, 10)]
    assert any(o != ra for o in others)


def test_spec_augment_batch_has_per_example_masks():
    cfg = SpecAugmentConfig(freq_mask_param=10, time_mask_param=20, n_freq_masks=2, n_time_masks=2)
    specs = torch.randn(64, 1, 40, 101)
    out, masks = spec_augment_batch(specs, cfg, seed=0)
    assert out.shape == specs.shape
    assert masks["freq"].shape == (64, 2, 2) and masks["time"].shape == (64, 2, 2)
    assert len({tuple(m.flatten().tolist()) for m in masks["time"]}) > 32  # not one mask for all
    fw, tw = masks["freq"][..., 1], masks["time"][..., 1]
    assert fw.min() >= 0 and fw.max() <= 10 and tw.max() <= 20
    assert (masks["freq"][..., 0] + fw <= 40).all() and (masks["time"][..., 0] + tw <= 101).all()
    for i in (0, 17, 63):  # the batched result equals masking each example by hand
        expected = specs[i, 0].clone()
        for s, w in masks["freq"][i].tolist():
            expected[s : s + w] = specs[i].mean()
        for s, w in masks["time"][i].tolist():
            expected[:, s : s + w] = specs[i].mean()
        assert torch.allclose(out[i, 0], expected, atol=1e-6)


def test_spec_augment_p_zero_is_identity_and_module_eval_is_identity():
    specs = torch.randn(8, 1, 40, 101)
    out, masks = spec_augment_batch(specs, SpecAugmentConfig(p=0.0, time_warp=5), seed=1)
    assert torch.equal(out, specs) and not masks["applied"].any()
    layer = SpecAugment(SpecAugmentConfig())
    assert torch.equal(layer.eval()(specs), specs)
    assert not torch.equal(layer.train()(specs), specs)


def test_time_warp_moves_a_frame_and_keeps_the_ends():
    cfg = SpecAugmentConfig(n_freq_masks=0, n_time_masks=0, time_warp=8)
    ramp = torch.arange(101.0).expand(40, 101).clone()  # value = frame index
    out, rec = spec_augment(ramp, cfg, seed=11)
    w0, d = rec["time_warp"]
    assert 8 <= w0 < 101 - 8 and -8 <= d <= 8
    assert out[0, 0] == pytest.approx(0.0) and out[0, -1] == pytest.approx(100.0)
    assert out[0, w0 + d] == pytest.approx(float(w0), abs=1e-3)  # frame w0 now sits at w0 + d
    assert (out[:, 1:] >= out[:, :-1] - 1e-4).all()  # still monotonic: a warp, not a shuffle


# ---------------------------------------------------------------------------------------------
# Pipelines and presets
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("with_recordings", [True, False])
def test_every_preset_runs(name, with_recordings, noise_root):
    cfg = preset(name).validate()
    noises = load_noises(noise_root) if with_recordings else None
    x = word()
    for seed in range(3):
        y, records = cfg.apply(x, seed=seed, noises=noises)
        assert y.shape == x.shape and torch.isfinite(y).all()
        assert [r["effect"] for r in records] == [s.effect for s in cfg.steps]
        json.dumps(records)
        spec, rec = cfg.apply_spec(mel_db(y), seed=seed)
        assert spec.shape == (40, 101)
        assert (rec is None) == (cfg.spec_augment is None)


def test_none_preset_is_identity():
    x = word()
    y, records = preset("none").apply(x, seed=0)
    assert torch.equal(y, x) and records == []


def test_probabilities_are_respected():
    cfg = AugmentConfig(steps=(AugmentStep("gain", 0.3, {"gain_db": 1.0}),))
    applied = [cfg.apply(word(), seed=s)[1][0]["applied"] for s in range(200)]
    assert 0.2 < sum(applied) / 200 < 0.4


@pytest.mark.parametrize("name", list(PRESETS))
def test_pipeline_json_round_trip(name):
    cfg = PRESETS[name]
    again = AugmentConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and hash(again) == hash(cfg)
    x = word()
    assert torch.equal(again.apply(x, seed=9)[0], cfg.apply(x, seed=9)[0])


def test_pipeline_alias_and_custom_steps_from_dicts():
    cfg = Pipeline(steps=({"effect": "time_shift", "p": 1.0, "params": {"shift_ms": [-10, 10]}},))
    assert cfg.steps[0].kwargs == {"shift_ms": (-10, 10)}
    assert set(EFFECTS) >= {s.effect for p in PRESETS.values() for s in p.steps}


# ---------------------------------------------------------------------------------------------
# Validation messages
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda x: time_stretch(x, 1.5), ["time_stretch: rate=1.5 is outside [0.81, 1.23]", "unnatural"]),
        (lambda x: time_stretch(x, (1.2, 0.9)), ["reversed", "(0.9, 1.2)"]),
        (lambda x: pitch_shift(x, -5.0), ["semitones=-5.0 is outside [-3.5, 3.5]"]),
        (lambda x: time_shift(x, 900.0), ["shift_ms=900.0 is outside", "half the clip"]),
        (lambda x: gain(x, (0.0, 40.0)), ["gain_db=40.0 is outside [-24.0, 24.0]"]),
        (lambda x: gain(x, (1.0, 2.0, 3.0)), ["a number or a (low, high) pair"]),
        (lambda x: gain(x, "loud"), ["gain_db must be a number"]),
        (lambda x: compress(x, "vinyl"), ["unknown preset 'vinyl'", "'radio'"]),
        (lambda x: add_colored_noise(x, "green"), ["unknown color 'green'", "'pink'"]),
        (lambda x: add_colored_noise(x, snr_db=80.0), ["snr_db=80.0 is outside [-5.0, 40.0]", "inaudible"]),
        (
            lambda x: add_background_noise(x, [], snr_db=5.0, weight=0.2),
            ["either snr_db or weight, not both"],
        ),
        (lambda x: add_background_noise(x, [], weight=2.0), ["weight=2.0 is outside [0.0, 1.0]"]),
    ],
)
def test_effect_validation_messages(call, expected):
    with pytest.raises(KwsError) as err:
        call(word())
    for text in expected:
        assert text in str(err.value)


@pytest.mark.parametrize(
    "step, expected",
    [
        (AugmentStep("echo"), ["Unknown augmentation 'echo'", "time_stretch", "reverb"]),
        (AugmentStep("gain", 1.5), ["gain: p is a probability in [0, 1], got 1.5"]),
        (AugmentStep("gain", 1.0, {"db": 3}), ["gain: unknown parameter(s) ['db']", "gain_db"]),
        (AugmentStep("time_stretch", 1.0, {"rate": (0.5, 1.0)}), ["rate=0.5 is outside"]),
        (AugmentStep("add_background_noise", 1.0, {"snr_db": 5, "weight": 0.2}), ["not both"]),
        (AugmentStep("compress", 1.0, {"preset": []}), ["preset is empty"]),
    ],
)
def test_pipeline_validation_messages(step, expected):
    with pytest.raises(KwsError) as err:
        AugmentConfig(steps=(step,)).validate()
    for text in expected:
        assert text in str(err.value)


def test_unknown_keys_and_presets():
    with pytest.raises(KwsError, match=r"Unknown augment config key\(s\) \['stepz'\]"):
        AugmentConfig.from_dict({"stepz": []})
    with pytest.raises(KwsError, match="Unknown augmentation preset 'heavy'"):
        preset("heavy")


@pytest.mark.parametrize(
    "cfg, shape, expected",
    [
        (SpecAugmentConfig(freq_mask_param=50), (1, 1, 40, 101), "F=50 is larger than the 40 Mel bands"),
        (SpecAugmentConfig(time_mask_param=200), (1, 1, 40, 101), "T=200 is longer than the 101 frames"),
        (SpecAugmentConfig(time_warp=60), (1, 1, 40, 101), "needs more than 120 frames"),
        (SpecAugmentConfig(n_time_masks=20), (1, 1, 40, 101), "n_time_masks must be between 0 and 10"),
        (SpecAugmentConfig(freq_mask_param=-1), (1, 1, 40, 101), "freq_mask_param must be a whole number"),
        (SpecAugmentConfig(mask_value="median"), (1, 1, 40, 101), "'mean' or 'zero'"),
        (SpecAugmentConfig(p=2.0), (1, 1, 40, 101), "p is a probability"),
        (SpecAugmentConfig(freq_warp=0.5), (1, 1, 40, 101), "freq_warp (V) is a share between 0 and 0.3"),
        (SpecAugmentConfig(), (40, 101), "[batch, 1, n_mels, frames]"),
    ],
)
def test_spec_augment_validation_messages(cfg, shape, expected):
    with pytest.raises(KwsError) as err:
        spec_augment_batch(torch.zeros(shape), cfg, seed=0)
    assert expected in str(err.value)


def test_freq_warp_moves_every_band_by_the_drawn_factor():
    """VTLP on the Mel axis: a bright band at m comes out at m / α (α drawn per example in
    [1 - V, 1 + V]); without freq_warp the draws and the output are those of plain SpecAugment."""
    specs = torch.zeros(64, 1, 40, 20)
    specs[:, :, 20, :] = 1.0  # one bright band (a "formant") at band 20
    no_masks = dict(n_freq_masks=0, n_time_masks=0)
    out, masks = spec_augment_batch(specs, SpecAugmentConfig(freq_warp=0.2, **no_masks), seed=3)
    alpha = masks["alpha"]
    assert alpha.shape == (64,) and float(alpha.min()) >= 0.8 and float(alpha.max()) <= 1.2
    assert float(alpha.std()) > 0.05  # independent per example
    peak = out[:, 0, :, 0].argmax(dim=1).float()
    assert torch.allclose(peak, 20.0 / alpha, atol=1.0)
    assert out.shape == specs.shape and torch.isfinite(out).all()
    lower = alpha > 1.05  # α > 1 reads higher bands: the formant moves down
    assert (peak[lower] < 20).all() and (peak[alpha < 0.95] > 20).all()
    plain, plain_masks = spec_augment_batch(torch.randn(4, 1, 40, 101), SpecAugmentConfig(), seed=1)
    again, again_masks = spec_augment_batch(torch.randn(4, 1, 40, 101), SpecAugmentConfig(freq_warp=0.0), seed=1)
    assert torch.equal(plain_masks["freq"], again_masks["freq"]) and torch.equal(plain_masks["alpha"], torch.ones(4))


def test_freq_warp_record_and_identity_when_not_applied():
    spec = torch.randn(40, 101)
    out, record = spec_augment(spec, SpecAugmentConfig(freq_warp=0.1), seed=0)
    assert 0.9 <= record["freq_warp"] <= 1.1 and out.shape == spec.shape
    assert spec_augment(spec, SpecAugmentConfig(), seed=0)[1]["freq_warp"] is None
    skipped, masks = spec_augment_batch(spec[None, None], SpecAugmentConfig(freq_warp=0.3, p=0.0), seed=0)
    assert torch.equal(skipped[0, 0], spec) and float(masks["alpha"][0]) == 1.0


@pytest.mark.parametrize("time_warp", [0, 5])
def test_spec_augment_follows_the_batch_device(time_warp):
    """Masks are drawn on the CPU (same numbers for a seed) but applied where the batch lives: a
    CUDA batch must not meet a CPU mask. The 'meta' device stands in for CUDA here (no GPU), and
    it refuses mixed devices the same way."""
    from kwscore.augment import SpecAugmentConfig, spec_augment_batch

    specs = torch.randn(4, 1, 40, 101)
    config = SpecAugmentConfig(time_warp=time_warp)
    out, masks = spec_augment_batch(specs.to("meta"), config, 0)
    assert out.device.type == "meta" and out.shape == specs.shape
    cpu_out, cpu_masks = spec_augment_batch(specs, config, 0)
    assert torch.equal(masks["freq"], cpu_masks["freq"]) and torch.equal(masks["time"], cpu_masks["time"])


# ---------------------------------------------------------------------------------------------
# Rooms and microphones
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rt60", [0.2, 0.8])
def test_room_impulse_response_decays_at_its_rt60(rt60):
    rir, record = room_impulse_response(np.random.default_rng(0), rt60)
    h = rir[0].double()
    assert rir.shape[0] == 1 and h[0] == pytest.approx(1.0)  # starts with the direct sound
    assert record["rt60_s"] == pytest.approx(rt60) and record["distance_m"] > 0
    # Energy decay (Schroeder): -60 dB in rt60 seconds, so about -20 dB after rt60 / 3.
    edc = torch.flip(torch.cumsum(torch.flip(h**2, [0]), 0), [0])
    db = 10 * torch.log10(edc / edc[0])
    at = int(rt60 / 3 * SR)
    assert -35.0 < float(db[at]) < -10.0
    same, _ = room_impulse_response(np.random.default_rng(0), rt60)
    other, _ = room_impulse_response(np.random.default_rng(1), rt60)
    assert torch.equal(rir, same) and not torch.equal(rir[..., :100], other[..., :100])


def test_reverberation_smears_a_click_and_keeps_length_and_peak():
    click = torch.zeros(2, 1, SR)
    click[:, :, 1000] = 0.5
    rirs = torch.stack([room_impulse_response(np.random.default_rng(k), 0.5)[0] for k in range(2)])
    wet = reverberate_batch(click, torch.nn.functional.pad(rirs, (0, 0)))
    assert wet.shape == click.shape
    assert torch.allclose(wet.abs().amax(dim=-1), click.abs().amax(dim=-1))
    assert float(wet[0, 0, :1000].abs().max()) < 1e-4  # nothing before the sound (causal)
    tail = wet[:, 0, 1000 + SR // 10 : 1000 + SR // 5]  # 100-200 ms later the room still rings
    assert float(tail.abs().max()) > 1e-3
    dry = reverberate_batch(click, torch.ones(1, 1, 1))  # the identity room
    assert torch.allclose(dry, click, atol=1e-6)


def test_microphone_response_shapes_the_spectrum():
    response = mic_response(SR, torch.tensor([300.0]), torch.tensor([3400.0]), torch.tensor([[1000.0]]), torch.tensor([[0.0]]))
    f = torch.fft.rfftfreq(SR, 1 / SR)
    at = lambda hz: float(response[0, int(torch.argmin((f - hz).abs()))])  # noqa: E731
    assert at(1000) == pytest.approx(1.0, abs=0.05)
    assert at(50) < 0.05 and at(7000) < 0.1  # no deep bass (-30 dB), no highs (-25 dB): a phone
    white = colored_noise(SR, "white", seed=0)
    y = microphone_batch(white[None], response)[0]
    spectrum = torch.fft.rfft(y[0]).abs() ** 2
    assert float(spectrum[f > 5000].sum() / spectrum[(f > 500) & (f < 3000)].sum()) < 0.05


def test_microphone_effect_records_what_it_drew_within_limits():
    x = word()
    _y, record = microphone(x, low_hz=(100.0, 200.0), high_hz=4000.0, eq_db=(-3.0, 3.0), seed=5)
    assert 100 <= record["low_hz"] <= 200 and record["high_hz"] == 4000
    gains = [float(part.split(" dB")[0]) for part in record["eq"].split(", ")]
    assert len(gains) == 2 and all(-3.0 <= g <= 3.0 for g in gains)
    with pytest.raises(KwsError, match="high_hz"):
        microphone(x, high_hz=(500.0, 4000.0))
    with pytest.raises(KwsError, match="rt60"):
        reverb(x, rt60=(0.1, 5.0))


def test_batched_rooms_and_microphones_in_training():
    """BatchAugment's reverb/microphone: shapes kept, clips whose coin says no untouched."""
    x = torch.stack([word() for _ in range(6)])
    for effect in ("reverb", "microphone"):
        never = BatchAugment(AugmentConfig(steps=(AugmentStep(effect, 0.0),)), SR, None, seed=1)
        assert torch.equal(never(x), x)
        always = BatchAugment(AugmentConfig(steps=(AugmentStep(effect, 1.0),)), SR, None, seed=1)
        y = always(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        assert all(not torch.equal(a, b) for a, b in zip(x, y, strict=True))


# ---------------------------------------------------------------------------------------------
# Batches: one implementation of each effect, for the lab, training and synthesis
# ---------------------------------------------------------------------------------------------


def steps(*items) -> AugmentConfig:
    return AugmentConfig(steps=tuple(AugmentStep(e, p, params) for e, p, params in items))


def test_the_lab_and_training_run_the_same_batched_functions():
    """A per-clip effect is its batched function on a batch of one: with the same values drawn,
    the Augmentation lab, BatchAugment and synthesis give identical samples."""
    x = word()
    once = lambda effect, params: BatchAugment(steps((effect, 1.0, params)), SR)(x[None])[0]  # noqa: E731
    assert torch.equal(once("gain", {"gain_db": 6.0}), gain(x, 6.0)[0])
    assert torch.equal(once("time_shift", {"shift_ms": 25.0}), time_shift(x, 25.0)[0])
    noise = colored_noise(SR, "pink", seed=3)
    assert torch.equal(colored_noise_batch(["pink"], SR, np.random.default_rng(3))[0], noise)
    assert torch.equal(mix_batch(x[None], noise[None], torch.tensor([10.0]))[0], mix(x, noise, snr=10.0)[0])
    assert torch.equal(mix_batch(x[None], noise[None], weight=torch.tensor([0.3]))[0], mix(x, noise, weight=0.3)[0])
    quiet = mix_batch(torch.zeros(2, 1, SR), noise[None].expand(2, -1, -1), torch.tensor([10.0, math.inf]))
    assert torch.equal(quiet[0], 0.1 * noise) and not quiet[1].any()  # silent clip: weight 0.1; SNR inf: nothing


def test_noise_bank_cuts_the_windows_add_background_noise_records(noise_root):
    noises = load_noises(noise_root)
    _, rec = add_background_noise(word(), noises, weight=0.5, seed=7)
    bank = NoiseBank(noises, SR, SR)
    window = bank.cut(torch.tensor([rec["noise_index"]]), torch.tensor([rec["offset"]]))[0]
    assert torch.equal(window, noises[rec["noise_index"]][:, rec["offset"] : rec["offset"] + SR])
    assert bank.windows(5, torch.Generator().manual_seed(0)).shape == (5, 1, SR)


@pytest.mark.parametrize("shift", [0, 37, -37, 799, -799, 800, -800])
def test_shift_batch_moves_each_clip_like_time_shift(shift):
    x = torch.randn(3, 1, 800)
    shifts = torch.tensor([shift, 0, -shift])
    out = shift_batch(x, shifts)
    for b, s in enumerate(shifts.tolist()):
        expected, record = time_shift(x[b], shift_ms=s / 16.0)  # time_shift works at 16 kHz
        assert record["shift_samples"] == s and torch.equal(out[b], expected)


def test_batch_augment_matches_the_effects():
    x = torch.randn(16, 1, 8000) * 0.1
    same = BatchAugment(steps(("time_shift", 0.0, {"shift_ms": 50.0})), 8000)(x)
    assert torch.equal(same, x)  # p = 0: nothing happens
    shifted = BatchAugment(steps(("time_shift", 1.0, {"shift_ms": 10.0})), 8000)(x)
    assert (
        torch.equal(shifted[..., 80:], x[..., :-80]) and (shifted[..., :80] == 0).all()
    )  # 10 ms = 80 samples
    louder = BatchAugment(steps(("gain", 1.0, {"gain_db": 6.0})), 8000)(x)
    assert torch.allclose(louder, x * 10 ** (6 / 20))
    noisy = BatchAugment(steps(("add_colored_noise", 1.0, {"snr_db": 10.0, "color": "pink"})), 8000)(x)
    noise = noisy - x
    snr = 10 * torch.log10(x.pow(2).mean(dim=(1, 2)) / noise.pow(2).mean(dim=(1, 2)))
    assert torch.allclose(snr, torch.full_like(snr, 10.0), atol=1e-3)


def test_batch_augment_leaves_clips_whose_coin_says_no_exactly_as_they_were():
    x = torch.randn(64, 1, 8000) * 0.1
    recipe = steps(
        ("time_shift", 0.5, {"shift_ms": 20.0}),
        ("gain", 0.5, {"gain_db": 6.0}),
        ("add_colored_noise", 0.5, {"snr_db": 20.0}),
    )
    y = BatchAugment(recipe, 8000, seed=1)(x)
    untouched = (y == x).all(dim=2).flatten()
    assert 0 < int(untouched.sum()) < 64  # about 1/8 of the clips drew "no" three times


def test_batch_augment_background_noise_and_per_clip_effects_keep_shapes():
    x = torch.randn(6, 1, 8000) * 0.1
    noises = [torch.randn(1, 40000) * 0.1, torch.randn(1, 3000) * 0.1]  # one shorter than a clip
    recipe = steps(
        ("add_background_noise", 1.0, {"weight": 0.5}),
        ("time_stretch", 1.0, {"rate": (0.9, 1.1)}),
        ("pitch_shift", 0.5, {"semitones": (-2.0, 2.0)}),
    )
    aug = BatchAugment(recipe, 8000, noises, seed=3)
    assert aug.per_clip_effects == ["time_stretch", "pitch_shift"]
    y = aug(x)
    assert y.shape == x.shape and not torch.equal(y, x) and torch.isfinite(y).all()
    assert torch.equal(BatchAugment(recipe, 8000, noises, seed=3)(x), y)  # same seed, same batch
