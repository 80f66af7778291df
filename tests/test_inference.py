"""kwscore.inference: any recording in (rates, channels, formats), a clear refusal for bad ones,
the same answer from the model whatever the file looked like; and training on your own words."""

from __future__ import annotations

import io
import json
import math
import struct

import numpy as np
import pytest
import soundfile as sf
import torch

from kwscore import audio
from kwscore.errors import KwsError
from kwscore.inference import CLIP_MAX_SECONDS, Predictor, loudest_second, read_audio, to_model_input
from tests.trained import heard_clip

SR = 16000


@pytest.fixture(scope="session")
def cnn_run(embedded_data_dir, tmp_path_factory):
    from tests.trained import trained_cnn_run

    return trained_cnn_run(embedded_data_dir / "synthetic", tmp_path_factory.mktemp("inference-runs"))


@pytest.fixture(scope="session")
def predictor(cnn_run):
    return Predictor.from_run(cnn_run)


def encode(x: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    """[time] or [time, channels] float -> file bytes."""
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def as_file(x16: np.ndarray, sr: int, channels: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    """A 16 kHz mono clip re-rendered at ``sr`` with ``channels`` channels (a little quieter on the right)."""
    y = audio.resample(torch.from_numpy(x16).view(1, -1), SR, sr)[0].numpy() if sr != SR else x16
    multi = np.stack([y * (1.0 - 0.1 * c) for c in range(channels)], axis=1) if channels > 1 else y
    return encode(multi.astype(np.float32), sr, fmt, subtype)


# ------------------------------------------------------------------------------------------------
# reading and converting
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sr, channels, fmt, subtype",
    [(16000, 1, "WAV", "PCM_16"), (8000, 1, "WAV", "PCM_16"), (22050, 2, "WAV", "PCM_24"),
     (44100, 2, "FLAC", "PCM_16"), (48000, 1, "OGG", "VORBIS"), (32000, 4, "WAV", "FLOAT")],
)  # fmt: skip
def test_any_rate_and_channel_count_becomes_mono_16k(sr, channels, fmt, subtype):
    t = np.arange(int(1.2 * sr)) / sr
    x = (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
    x = np.stack([x] * channels, axis=1) if channels > 1 else x
    sound = read_audio(encode(x, sr, fmt, subtype), f"tone.{fmt.lower()}")
    assert sound.waveform.shape[0] == 1 and abs(sound.waveform.shape[1] - round(1.2 * SR)) <= 2
    assert sound.sample_rate == sr and sound.channels == channels and sound.duration == pytest.approx(1.2, abs=0.01)
    assert fmt in sound.format
    described = sound.describe()
    assert ("→ mono" in described) == (channels > 1)
    assert (f"{sr:,} Hz → 16,000 Hz" in described) == (sr != SR)
    assert sound.is_clip and sound.duration <= CLIP_MAX_SECONDS


def test_to_model_input_averages_channels():
    x = torch.stack([torch.ones(SR), -torch.ones(SR) * 0.5])
    mono, steps = to_model_input(x, SR)
    assert mono.shape == (1, SR) and torch.allclose(mono, torch.full((1, SR), 0.25))
    assert steps == ["stereo → mono (the average of the 2 channels)"]


def test_loudest_second():
    x = torch.zeros(1, 3 * SR)
    x[0, 2 * SR : 2 * SR + 4000] = 0.5
    clip, start = loudest_second(x)
    assert clip.shape == (1, SR) and 1.2 <= start <= 2.0 and clip.abs().sum() == 0.5 * 4000
    short, start = loudest_second(torch.ones(1, 8000))
    assert short.shape == (1, SR) and start == 0.0 and short[0, 8000:].abs().sum() == 0


def test_prediction_does_not_depend_on_the_file_format(predictor, embedded_data_dir):
    """The same word at 16/22.05/44.1/48 kHz, mono or stereo, WAV/FLAC/OGG: same answer, similar
    probabilities. At 8 kHz everything above 4 kHz is gone (the "s" of "yes"), so the model may hear
    another word: the file must give what the same band-limited sound gives in memory."""
    def at_8k(x):  # the same sound with everything above 4 kHz gone, in memory
        return predictor.predict(audio.resample(audio.resample(torch.from_numpy(x).view(1, -1), SR, 8000), 8000, SR))

    def clear_at_8k(x) -> bool:  # not a near-tie there, where any resampling difference flips the top word
        (_, first), (_, second) = at_8k(x).top[:2]
        return first - second >= 0.1

    x = heard_clip(embedded_data_dir / "synthetic", "yes", predictor, keep=clear_at_8k)
    reference = predictor.predict(read_audio(as_file(x, SR, 1), "ref.wav").waveform)
    assert reference.word == "yes", reference.top[:3]
    band_limited = at_8k(x)
    for sr, channels, fmt in [(44100, 2, "WAV"), (48000, 1, "FLAC"), (22050, 2, "OGG"), (8000, 1, "WAV")]:
        sound = read_audio(as_file(x, sr, channels, fmt), f"yes.{fmt.lower()}")
        p = predictor.predict(sound.waveform)
        expected = band_limited if sr == 8000 else reference
        assert p.word == expected.word, (sr, channels, fmt, p.top[:3], expected.top[:3])
        gap = float((p.probs - expected.probs).abs().max())  # every class, not only the top one
        assert gap < 0.1, (sr, channels, fmt, p.top[:3], expected.top[:3])


def test_predictor_describes_its_front_end(predictor):
    assert predictor.model_rate == SR and predictor.feature_config is not None
    steps = predictor.front_end_steps()
    assert len(steps) == 1 and "40 Mel bands × 101 frames" in steps[0]
    assert predictor.model_input(torch.zeros(1, 12000)).shape == (1, 40, 101)
    p = predictor.predict(torch.zeros(1, SR))
    assert torch.isclose(p.probs.sum(), torch.tensor(1.0)) and len(p.top) == len(predictor.labels) == 8


# ------------------------------------------------------------------------------------------------
# the bad-input corpus
# ------------------------------------------------------------------------------------------------


def _wav(x, sr=SR, subtype="PCM_16") -> bytes:
    return encode(np.asarray(x, dtype=np.float32), sr, "WAV", subtype)


def bad_inputs() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, a phrase the message must contain)."""
    rng = np.random.default_rng(0)
    speech = (0.3 * rng.standard_normal(SR)).astype(np.float32)
    flac = encode(speech, SR, "FLAC")
    nan = speech.copy()
    nan[100:110] = np.nan
    inf = speech.copy()
    inf[5] = np.inf
    return {
        "empty": (b"", "empty"),
        "text": (b"hello, this is not audio at all" * 10, "not an audio file"),
        "random bytes": (rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not an audio file"),
        "a png": (b"\x89PNG\r\n\x1a\n" + bytes(200), "not an audio file"),
        "wav header only": (_wav(speech)[:44], "no samples"),
        "wav cut inside the header": (_wav(speech)[:30], "not an audio file"),
        "flac cut in half": (flac[: len(flac) // 2], "damaged or cut short"),
        "NaN samples": (_wav(nan, subtype="FLOAT"), "NaN"),
        "infinite samples": (_wav(inf, subtype="FLOAT"), "NaN or infinity"),
        "digital silence": (_wav(np.zeros(SR)), "silent"),
        "near silence": (_wav(1e-5 * speech), "silent"),
        "too long": (_wav(np.zeros(61 * 8000), sr=8000), "limit is 60 s"),
        "too short": (_wav(speech[:800]), "at least 0.1 s"),
        "too low a rate": (_wav(speech[:4000], sr=4000), "too low for speech"),
    }


@pytest.mark.parametrize("case", list(bad_inputs()))
def test_bad_input_gets_a_clear_message(case):
    data, phrase = bad_inputs()[case]
    with pytest.raises(KwsError) as info:
        read_audio(data, "upload.wav")
    message = str(info.value)
    assert phrase in message, message
    assert "Traceback" not in message and len(message) < 400


def test_over_the_size_limit():
    with pytest.raises(KwsError, match="31 KB: the limit is 16 KB"):
        read_audio(_wav(np.full(SR, 0.1)), "big.wav", max_bytes=2**20 // 64)


def test_truncated_wav_is_used_with_a_note():
    data = _wav(0.3 * np.sin(np.arange(2 * SR) / 5))
    sound = read_audio(data[: len(data) // 2], "cut.wav")
    assert sound.duration == pytest.approx(1.0, abs=0.01)
    assert any("truncated" in n and "2.00 s" in n for n in sound.notes), sound.notes
    riff_size = struct.unpack("<I", data[4:8])[0]
    assert riff_size == len(data) - 8  # (the header we cut really promised the full length)


def test_loud_float_files_are_scaled_into_range():
    sound = read_audio(_wav(np.full(SR, 2.0) * np.sin(np.arange(SR) / 3), subtype="FLOAT"), "hot.wav")
    assert float(sound.waveform.abs().max()) <= 1.0 + 1e-6 and any("full scale" in n for n in sound.notes)


# ------------------------------------------------------------------------------------------------
# CLI: kwscore detect
# ------------------------------------------------------------------------------------------------


def test_cli_detect_json(cnn_run, embedded_data_dir, tmp_path, capsys):
    from kwscore.cli import main
    from kwscore.streaming import StreamConfig, compose_from_dataset

    comp = compose_from_dataset(embedded_data_dir / "synthetic", ["yes", "stop", "left"], 8.0, noise_db=-30, seed=2)
    path = tmp_path / "long.flac"
    sf.write(path, np.stack([comp.waveform[0].numpy()] * 2, axis=1), 16000, format="FLAC")  # stereo FLAC
    assert main(["detect", str(cnn_run), str(path), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert isinstance(found, list) and found and all(d.keys() == {"word", "start", "end", "score"} for d in found)
    assert all(0 <= d["start"] < d["end"] <= 8.0 and 0 < d["score"] <= 1 for d in found)
    assert main(["detect", str(cnn_run), str(path)]) == 0
    text = capsys.readouterr().out
    assert "stereo → mono" in text and found[0]["word"] in text
    assert main(["detect", str(cnn_run), str(tmp_path / "nothing.wav")]) == 2
    assert "Cannot read" in capsys.readouterr().err
    (tmp_path / "junk.wav").write_bytes(b"junk" * 100)
    assert main(["detect", str(cnn_run), str(tmp_path / "junk.wav"), "--json"]) == 2
    assert "not an audio file" in capsys.readouterr().err
    # the CLI's defaults are the library's
    from kwscore.cli import build_parser

    args = build_parser().parse_args(["detect", "r", "f"])
    d = StreamConfig()
    assert (args.hop, args.smooth, args.threshold, args.refractory, args.gate_db) == (
        d.hop, d.smooth, d.threshold, d.refractory, d.gate_db)  # fmt: skip


# ------------------------------------------------------------------------------------------------
# your own words: save takes, train on them
# ------------------------------------------------------------------------------------------------


def test_train_on_own_recordings(embedded_data_dir, tmp_path):
    """Takes 'recorded' at 44.1 kHz stereo (synthetic clips standing in for a microphone), saved with
    kwscore.userdata, listed, then a tiny run with commands="all" on that user dataset."""
    from kwscore.data.dataset import SpeechCommands
    from kwscore.recipes import default_config
    from kwscore.runner import run_training
    from kwscore.streaming import word_bounds
    from kwscore.userdata import list_takes, save_take

    source = SpeechCommands(embedded_data_dir / "synthetic", subset="training", commands=["yes", "no", "marvin"])
    root = tmp_path / "user"
    per_word: dict[str, int] = {}
    for i in range(len(source)):
        word = source.get_metadata(i)[2]
        if per_word.get(word, 0) >= 5:
            continue
        clip = source.waveform(i)
        a, b = word_bounds(clip, SR)  # the word, in 0.5 s + 0.25 s of a quiet room
        word_only = clip[:, max(0, round((a - 0.05) * SR)) : round((b + 0.05) * SR)]
        recording = torch.cat([torch.zeros(1, SR // 2), word_only, torch.zeros(1, SR // 4)], dim=1)
        recording = audio.resample(recording + 1e-4 * torch.randn_like(recording), SR, 44100).repeat(2, 1)
        save_take(root, "hello" if word == "marvin" else word, "Test User", recording, 44100)  # a new word too
        per_word[word] = per_word.get(word, 0) + 1
    takes = list_takes(root, user_name="Test User")
    assert len(takes) == 15 and {t.word for t in takes} == {"hello", "no", "yes"}
    assert all(sf.info(str(t.path)).samplerate == SR and sf.info(str(t.path)).channels == 1 for t in takes)

    config = default_config("cnn", data=str(root), commands="all", epochs=2, batch_size=4, threads=1,
                            model_kwargs={"channels": [4, 8]}, augment="none")  # fmt: skip
    result = run_training(config, tmp_path / "runs" / "own")
    assert result.state == "succeeded" and result.labels == ["hello", "no", "yes"]
    assert result.report["n_total"] == 3  # take 4 of every word is in the test split
    assert Predictor.from_run(tmp_path / "runs" / "own").labels == ["hello", "no", "yes"]


# ------------------------------------------------------------------------------------------------
# issue #10: odd sample rates cost little; impossible ones, and front ends asking for them, are refused
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sr", [8001, 44101, 191999, 192000, 4000 * 2 + 3])
def test_odd_rates_resample_with_bounded_cost(sr):
    """torchaudio's sinc kernel for 44,101 Hz -> 16 kHz would be 2.7 GB: such pairs go to soxr."""
    import resource

    x = torch.from_numpy((0.3 * np.sin(2 * math.pi * 440 * np.arange(2 * sr) / sr)).astype(np.float32))[None]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    y = audio.resample(x.repeat(2, 1), sr, SR)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert y.shape == (2, 2 * SR) and grown_mb < 100
    spectrum = np.abs(np.fft.rfft(y[0].numpy()))
    assert abs(np.argmax(spectrum) / 2 - 440) <= 1  # still a 440-Hz tone (0.5 Hz per bin)
    if audio.sinc_taps(sr, SR) > audio.SINC_MAX_TAPS:
        assert audio.resampling_method(sr, SR) == "soxr"
        with pytest.raises(KwsError, match="taps"):
            audio.resampler(sr, SR)
    assert audio.resampler.cache_info().maxsize == audio.RESAMPLER_CACHE <= 8


def test_the_usual_pairs_keep_torchaudios_sinc_resampler():
    for orig, new in [(16000, 8000), (44100, 16000), (48000, 16000), (22050, 16000), (16000, 11025)]:
        assert audio.resampling_method(orig, new) == "sinc"
    x = torch.randn(1, 44100)
    assert torch.equal(audio.resample(x, 44100, SR), audio.resampler(44100, SR)(x))


@pytest.mark.parametrize("sr", [8001, 44101])
def test_an_upload_at_an_odd_rate_is_converted(sr):
    t = np.arange(sr) / sr
    sound = read_audio(encode((0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32), sr), "odd.wav")
    assert sound.waveform.shape == (1, SR) and f"{sr:,} Hz → 16,000 Hz" in sound.describe()


@pytest.mark.parametrize("sr", [192001, 999983])
def test_an_upload_at_an_impossible_rate_is_refused(sr):
    data = bytearray(encode(np.zeros(SR, np.float32) + 0.1, SR, "WAV", "PCM_16"))
    data[24:28] = sr.to_bytes(4, "little")
    with pytest.raises(KwsError, match="KWS Studio reads 4,000 to 192,000 Hz"):
        read_audio(bytes(data), "odd.wav")


def test_antiphase_stereo_is_silent():
    """Left = -right: loud on each channel, nothing once mixed to mono."""
    x = (0.5 * np.sin(2 * math.pi * 300 * np.arange(SR) / SR)).astype(np.float32)
    with pytest.raises(KwsError, match="silent once its 2 channels are mixed to mono"):
        read_audio(encode(np.stack([x, -x], axis=1), SR), "miswired.wav")
    assert read_audio(encode(np.stack([x, 0.5 * x], axis=1), SR), "fine.wav").channels == 2


@pytest.mark.parametrize("rate", [999983, 15999, 0, None, "8000"])
def test_a_front_end_asking_for_an_odd_rate_is_refused(rate):
    """A damaged or foreign checkpoint's front end: refused politely, no gigabyte sinc kernel."""
    from kwscore.features import build_transform

    with pytest.raises(KwsError, match="front end cannot be built"):
        build_transform({"input_sample_rate": SR, "sample_rate": rate, "features": None})
    with pytest.raises(KwsError, match="front end cannot be built"):
        build_transform([SR, 8000])
    assert len(build_transform({"input_sample_rate": SR, "sample_rate": 8000, "features": None})) == 1


def test_a_checkpoint_asking_for_999983_hz_is_refused(tmp_path):
    from kwscore.evaluation import load_run_model
    from kwscore.features import transform_config
    from kwscore.models import build_model
    from kwscore.training import save_checkpoint

    run = tmp_path / "20260101-000000-m5-abcdef"
    run.mkdir()
    model = build_model("m5", 2, sample_rate=8000)
    save_checkpoint(run / "best.pt", model, {"transform_config": transform_config(999983, None), "labels": ["no", "yes"]})
    with pytest.raises(KwsError, match="front end cannot be built.*999983 Hz"):
        load_run_model(run)


def test_training_refuses_a_model_rate_with_a_huge_sinc_kernel():
    from kwscore.recipes import default_config

    assert any("taps" in p for p in default_config("m5", sample_rate=15999).problems(check_data=False))
    assert not default_config("m5", sample_rate=11025).problems(check_data=False)
