"""kwscore.streaming: posterior handling on a toy classifier, then on a real trained CNN.

The real test builds a 20-s recording from held-out (test-split) clips placed at known times into
the dataset's ``_background_noise_`` noises, and checks that every word is found at the right time
(±250 ms) with at most one false alarm. It uses the clips the model classifies correctly and
confidently (≥ 0.7) on their own: this tests the *detector* (windows, smoothing, gate, peak picking,
refractory period), not the accuracy of a 25-s classifier, which its own tests measure.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from kwscore.errors import KwsError
from kwscore.streaming import (
    Detection,
    Placed,
    StreamConfig,
    compose,
    detect,
    frame_levels,
    frame_windows,
    loud_span,
    match,
    moving_average,
    noise_floor,
    word_bounds,
)

SR = 16000


@pytest.fixture(scope="session")
def cnn_run(embedded_data_dir, tmp_path_factory):
    from tests.trained import trained_cnn_run

    return trained_cnn_run(embedded_data_dir / "synthetic", tmp_path_factory.mktemp("stream-runs"))


# ------------------------------------------------------------------------------------------------
# the steps
# ------------------------------------------------------------------------------------------------


def test_frame_windows_cover_the_recording():
    x = torch.arange(1.0, 2.6 * SR + 1).view(1, -1)
    windows, times = frame_windows(x, SR, 1.0, 0.25)
    assert windows.shape == (8, 1, SR)
    assert times.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert windows[2, 0, 0] == 0.5 * SR + 1 and windows[-1, 0, -1] == 0  # the end is zero-padded
    short, t = frame_windows(torch.ones(1, SR // 2), SR, 1.0, 0.1)
    assert short.shape == (1, 1, SR) and t.tolist() == [0.0]


def test_moving_average_is_centred():
    probs = torch.zeros(9, 2)
    probs[4, 0] = 1.0
    smooth = moving_average(probs, 3)
    assert smooth.shape == probs.shape
    assert torch.allclose(smooth[3:6, 0], torch.full((3,), 1 / 3)) and smooth[[2, 6], 0].sum() == 0
    assert torch.equal(moving_average(probs, 1), probs)


def test_levels_floor_and_loud_span():
    gen = torch.Generator().manual_seed(0)
    x = 0.001 * torch.randn(1, 2 * SR, generator=gen)
    t = torch.arange(SR // 2) / SR
    x[0, SR : SR + SR // 2] += 0.3 * torch.sin(2 * math.pi * 600 * t)  # a 0.5-s "word" at 1 s
    levels = frame_levels(x, SR)
    assert levels.shape == (200,)
    floor = noise_floor(levels)
    assert -80 < floor < -50
    start, end = loud_span(levels, floor + 12)
    assert abs(start - 100) <= 2 and abs(end - 150) <= 2
    assert loud_span(levels, 10.0) is None
    a, b = word_bounds(x[:, SR // 2 : SR // 2 + SR], SR)  # the word inside a 1-s clip
    assert abs(a - 0.5) < 0.03 and abs(b - 1.0) < 0.03


def test_bad_settings_are_explained():
    with pytest.raises(KwsError, match="hop"):
        StreamConfig(hop=2.0).validate()
    with pytest.raises(KwsError, match="threshold"):
        StreamConfig(threshold=1.5).validate()
    with pytest.raises(KwsError, match="mono"):
        detect(torch.zeros(2, SR), SR, lambda w: torch.ones(len(w), 1), ["a"])


# ------------------------------------------------------------------------------------------------
# a toy classifier: "low" and "high" tones
# ------------------------------------------------------------------------------------------------


def tone_classifier(windows: torch.Tensor) -> torch.Tensor:
    """[B, 1, 16000] -> [B, 2] probabilities of ("high", "low"): energy above vs below 1 kHz.
    Like a real KWS model it always names one of its words, even for pure noise."""
    spec = torch.fft.rfft(windows[:, 0]).abs().pow(2)
    low, high = spec[:, 200:1000].sum(1), spec[:, 1000:3000].sum(1)
    return torch.softmax(torch.stack([high, low], 1).log() * 3, dim=1)


def tone(freq: float, seconds: float = 0.4) -> torch.Tensor:
    t = torch.arange(round(seconds * SR)) / SR
    clip = torch.zeros(1, SR)
    clip[0, 3000 : 3000 + t.numel()] = 0.4 * torch.sin(2 * math.pi * freq * t) * torch.hann_window(t.numel())
    return clip


def test_toy_detector_finds_tones_at_their_times():
    gen = torch.Generator().manual_seed(1)
    clips = [("low" if i % 2 else "high", f"t{i}", tone(400 if i % 2 else 2000)) for i in range(6)]
    comp = compose(clips, torch.randn(1, 3 * SR, generator=gen), 16.0, noise_db=-20, seed=3)
    assert len(comp.words) == 6
    result = detect(comp.waveform, SR, tone_classifier, ["high", "low"])
    score = match(result.detections, comp.words)
    assert score["hits"] == 6 and not score["false_alarms"], (score, result.detections)
    assert max(abs(e) for e in score["start_errors"]) < 0.1
    assert result.probs.shape == (len(result.times), 2) and result.smoothed.shape == result.probs.shape
    assert result.to_list()[0].keys() == {"word", "start", "end", "score"}


def test_noise_alone_never_fires():
    """The classifier is sure of *something* in every noise window; the gate keeps it quiet."""
    gen = torch.Generator().manual_seed(2)
    noise = 0.05 * torch.randn(1, 10 * SR, generator=gen)
    result = detect(noise, SR, tone_classifier, ["high", "low"])
    assert result.probs.max(dim=1).values.mean() > 0.9  # confident nonsense...
    assert result.detections == [] and not result.active.any()  # ...never reported
    silence = detect(torch.zeros(1, 5 * SR), SR, tone_classifier, ["high", "low"])
    assert silence.detections == []


def test_refractory_period_and_non_keywords():
    clips = [("high", "a", tone(2000))]
    comp = compose(clips, torch.zeros(0), 4.0, seed=0)
    once = detect(comp.waveform + 1e-4 * torch.randn_like(comp.waveform), SR, tone_classifier, ["high", "low"],
                  StreamConfig(refractory=0.0))  # fmt: skip
    assert [d.word for d in once.detections] == ["high"]  # overlapping windows: still one detection
    hidden = detect(comp.waveform, SR, tone_classifier, ["_silence_", "low"])
    assert all(d.word != "_silence_" for d in hidden.detections)


def test_match_counts_hits_misses_and_false_alarms():
    truth = [Placed("yes", "x", 0.8, 1.0, 1.4), Placed("no", "y", 2.8, 3.0, 3.3)]
    found = [Detection("yes", 1.1, 1.4, 0.9), Detection("no", 3.4, 3.6, 0.8), Detection("up", 5.0, 5.2, 0.7)]
    score = match(found, truth)
    assert score["hits"] == 1 and score["missed"] == ["no"] and len(score["false_alarms"]) == 2
    assert score["start_errors"] == [pytest.approx(0.1)]


# ------------------------------------------------------------------------------------------------
# a real model
# ------------------------------------------------------------------------------------------------


def known_clips(predictor, root, noise: torch.Tensor, min_probability: float = 0.7) -> list:
    """Test-split clips the model gets right, confidently, on their own, and that the detector finds
    (and nothing else) when the clip is alone in ``noise`` as the long recording places it: (word,
    clip_id, [1, 16000]).

    The streaming test checks the detector over a sequence of words (windows, smoothing, gate,
    threshold, refractory period, timing), not how well a small model copes with noise, whose
    weights vary a little between processes: so it uses words the detector can find one by one.
    """
    from kwscore import audio
    from kwscore.data.dataset import SpeechCommands

    dataset = SpeechCommands(root, subset="testing", commands=predictor.labels)
    clips = []
    for i in range(len(dataset)):
        clip = audio.fix_length(dataset.waveform(i), SR)
        word = dataset.get_metadata(i)[2]
        alone = predictor.predict(clip)
        if alone.word != word or alone.probability < min_probability:
            continue
        in_noise = compose([(word, "", clip)], noise, 2.5, lead=0.7, noise_db=-20, seed=i)
        score = match(predictor.detect(in_noise.waveform).detections, in_noise.words, tolerance=0.25)
        if score["hits"] == 1 and not score["false_alarms"]:
            clips.append((word, dataset.clip_id(i), clip))
    return clips


@pytest.mark.parametrize("noise", ["pink_noise.wav", "white_noise.wav"])
def test_trained_cnn_finds_words_in_noise(cnn_run, embedded_data_dir, noise):
    from kwscore import audio
    from kwscore.data.layout import dataset_folder
    from kwscore.inference import Predictor

    root = embedded_data_dir / "synthetic"
    predictor = Predictor.from_run(cnn_run)
    wave, sr = audio.load(dataset_folder(root) / "_background_noise_" / noise)
    background = audio.resample(wave, sr, SR)
    clips = known_clips(predictor, root, background)
    assert len(clips) >= 20, f"only {len(clips)} test clips are classified confidently: the model is too weak"
    chosen = random.Random(1).sample(clips, 8)
    comp = compose(chosen, background, 20.0, noise_db=-20, gap=(0.8, 1.5), seed=1, noise_name=noise)
    assert len(comp.words) == 8
    result = predictor.detect(comp.waveform)
    score = match(result.detections, comp.words, tolerance=0.25)
    errors = [round(1000 * e) for e in score["start_errors"]]
    print(f"{noise}: {score['hits']}/{score['words']} words, start errors {errors} ms, "
          f"{len(score['false_alarms'])} false alarm(s) {score['false_alarms']}")  # fmt: skip
    assert score["hits"] >= score["words"] - 1, score  # the small test model may miss one word in noise
    assert len(score["false_alarms"]) <= 1, score
    assert max(abs(e) for e in score["start_errors"]) <= 0.25


# ------------------------------------------------------------------------------------------------
# any length: pieces, blocks, constant memory, and paths that are not audio files
# ------------------------------------------------------------------------------------------------


def test_pieces_of_any_size_give_the_whole_recording_result():
    """The scanner keeps its state between pieces: windows, probabilities, levels and detections of a
    recording fed in odd-sized pieces are exactly those of the recording fed whole."""
    from kwscore.streaming import detect_stream

    gen = torch.Generator().manual_seed(5)
    clips = [("low" if i % 2 else "high", f"t{i}", tone(400 if i % 2 else 2000)) for i in range(5)]
    comp = compose(clips, torch.randn(1, 3 * SR, generator=gen), 14.3, noise_db=-20, seed=2)
    whole = detect(comp.waveform, SR, tone_classifier, ["high", "low"])
    x, cuts, i = comp.waveform[0], [], 0
    rng = random.Random(0)
    while i < x.numel():
        cuts.append(x[i : i + rng.randint(1, 40000)])
        i += cuts[-1].numel()
    seen = []
    parts = detect_stream(iter(cuts), SR, tone_classifier, ["high", "low"], progress=seen.append)
    assert torch.equal(parts.probs, whole.probs) and torch.equal(parts.times, whole.times)
    assert torch.equal(parts.frame_db, whole.frame_db) and torch.equal(parts.active, whole.active)
    assert parts.detections == whole.detections and len(whole.detections) == 5
    assert seen[-1] == pytest.approx(14.3) and seen == sorted(seen)


def write_audio(path, x: torch.Tensor, sr: int, **kw) -> None:
    import soundfile as sf

    sf.write(path, x.T.numpy(), sr, **kw)


@pytest.mark.parametrize("rate", [44100, 22050, 8000, 16000])
def test_blocks_join_into_the_whole_file_resampled(tmp_path, rate):
    """Blocks resampled with a little context on either side equal the whole file resampled at once."""
    from kwscore import audio
    from kwscore.inference import to_model_input
    from kwscore.longaudio import open_recording

    gen = torch.Generator().manual_seed(rate)
    x = (0.2 * torch.randn(2, round(5.37 * rate), generator=gen)).clamp(-1, 1)
    path = tmp_path / "noise.wav"
    write_audio(path, x, rate, subtype="FLOAT")
    rec = open_recording(path)
    assert (rec.sample_rate, rec.channels, rec.frames) == (rate, 2, x.shape[1])
    joined = torch.cat(list(rec.blocks(seconds=0.7)), dim=1)
    whole = to_model_input(audio.load(path)[0], rate)[0]
    assert joined.shape == whole.shape
    assert torch.allclose(joined, whole, atol=1e-5), float((joined - whole).abs().max())
    assert "stereo" in rec.describe()


def test_a_minute_in_blocks_equals_the_whole_minute(cnn_run, embedded_data_dir, tmp_path):
    """A 60-s recording at 44.1 kHz stereo, read and scored in 10-s blocks, gives the detections of
    the same file decoded, converted and scored whole."""
    from kwscore import audio
    from kwscore.inference import Predictor, to_model_input
    from kwscore.longaudio import detect_recording, open_recording
    from kwscore.streaming import compose_from_dataset

    predictor = Predictor.from_run(cnn_run)
    comp = compose_from_dataset(embedded_data_dir / "synthetic", predictor.labels, 60.0, noise_db=-25, seed=4)
    path = tmp_path / "minute.flac"
    write_audio(path, audio.resample(comp.waveform, SR, 44100).repeat(2, 1).clamp(-1, 1), 44100)
    stages = set()
    rec = open_recording(path, progress=lambda stage, done, total: stages.add(stage))
    blocked = detect_recording(rec, predictor, progress=lambda stage, done, total: stages.add(stage))
    wave, sr = audio.load(path)
    whole = predictor.detect(to_model_input(wave, sr)[0])
    assert stages == {"checking", "listening"} and rec.duration == pytest.approx(60.0, abs=1e-3)
    assert len(whole.detections) >= 5, whole.detections
    assert [d.word for d in blocked.detections] == [d.word for d in whole.detections]
    for a, b in zip(blocked.detections, whole.detections, strict=True):
        assert abs(a.start - b.start) < 1e-6 and abs(a.score - b.score) < 1e-3
    assert torch.allclose(blocked.probs, whole.probs, atol=1e-3)


def fake_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    return run


@pytest.mark.timeout(60)
def test_paths_that_are_not_audio_files_get_a_message_at_once(tmp_path, capsys):
    """A FIFO (no writer: reading would wait for ever), /dev/zero (never ends), a folder and a 1-GB
    sparse file are refused before anything is read: one line, exit code 2, within a second or two."""
    import os
    import time

    from kwscore.cli import main

    run = fake_run(tmp_path)
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    sparse = tmp_path / "sparse.wav"
    with open(sparse, "wb") as f:
        f.truncate(2**30)
    cases = {fifo: "pipe (FIFO)", "/dev/zero": "a device", tmp_path: "a folder", sparse: "not an audio file",
             tmp_path / "missing.wav": "Cannot read"}  # fmt: skip
    for path, phrase in cases.items():
        tic = time.perf_counter()
        assert main(["detect", str(run), str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert phrase in err and "Traceback" not in err and len(err.splitlines()) == 1, err
        assert time.perf_counter() - tic < 5.0, (path, time.perf_counter() - tic)


def test_live_detector_hears_every_tone_as_it_ends():
    """Fed 20 ms at a time, the live detector reports each word once, in order, with the right
    label, soon after the word ends (causal: no look-ahead), and nothing in between."""
    from kwscore.streaming import LiveDetector

    gen = torch.Generator().manual_seed(4)
    clips = [("low" if i % 3 else "high", f"t{i}", tone(400 if i % 3 else 2000)) for i in range(7)]
    comp = compose(clips, 0.5 * torch.randn(1, 3 * SR, generator=gen), 20.0, noise_db=-25, gap=(1.0, 2.0), seed=5)
    live = LiveDetector(tone_classifier, ["high", "low"], StreamConfig(smooth=0.2), history_s=5.0)
    heard = []
    for i in range(0, comp.waveform.shape[1], 320):
        for d in live.feed(comp.waveform[0, i : i + 320].numpy()):
            heard.append((d, live.now))
    assert [d.word for d, _ in heard] == [w.word for w in comp.words], (heard, comp.words)
    for (d, at), w in zip(heard, comp.words, strict=True):
        assert abs(d.start - w.start) < 0.15 and abs(d.end - w.end) < 0.15
        assert 0 < at - w.end < 0.35, f"{w.word} at {w.end:.2f} s was reported at {at:.2f} s"
    assert len(live.history) == 50 and live.now == pytest.approx(20.0)


def write_long_noise(path, seconds: float, rate: int = 44100, channels: int = 2) -> None:
    """A long 16-bit recording written block by block: noise with a tone burst every 3 s."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    block = 30 * rate
    t = np.arange(block) / rate
    pattern = 0.01 * rng.standard_normal(block) + 0.3 * np.sin(2 * np.pi * 500 * t) * ((t % 3.0) < 0.4)
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16") as f:
        for i in range(0, round(seconds * rate), block):
            f.write(np.repeat(pattern[: min(block, round(seconds * rate) - i), None], channels, axis=1))


@pytest.mark.slow
def test_detect_memory_does_not_grow_with_the_length(cnn_run, tmp_path):
    """`kwscore detect` in a fresh process (peak RSS from os.wait4): 10 minutes at 44.1 kHz stereo —
    212 MB as float samples, more once resampled — cost no more memory than 30 seconds do."""
    from tests.badinput.harness import run_cli

    peaks = {}
    for seconds in (30, 600):
        path = tmp_path / f"{seconds}.wav"
        write_long_noise(path, seconds)
        outcome = run_cli(["detect", str(cnn_run), str(path), "--hop", "1.0", "--json"], timeout=600)
        assert outcome.code == 0, outcome.text
        peaks[seconds] = outcome.peak_mb
    print(f"peak RSS: 30 s {peaks[30]:.0f} MB, 10 min {peaks[600]:.0f} MB")
    assert peaks[600] - peaks[30] < 60, peaks


def test_try_it_reads_a_long_upload_in_blocks(cnn_run, embedded_data_dir, monkeypatch):
    """Over a minute, an upload is read in blocks and scanned as it is read, with progress; it finds
    what the whole-file path finds; the server's upload limit (a teacher's setting) still applies."""
    import io

    import soundfile as sf

    from dashboard import ui_try
    from kwscore import audio
    from kwscore.inference import Predictor
    from kwscore.streaming import compose_from_dataset

    predictor = Predictor.from_run(cnn_run)
    comp = compose_from_dataset(embedded_data_dir / "synthetic", predictor.labels, 75.0, noise_db=-25, seed=6)
    buf = io.BytesIO()
    sf.write(buf, audio.resample(comp.waveform, SR, 22050)[0].numpy(), 22050, format="WAV", subtype="PCM_16")
    data = buf.getvalue()
    stages = []
    result = ui_try.analyse(data, "long.wav", predictor, mode="clip", progress=lambda stage, done, total: stages.append(stage))
    assert result.kind == "stream" and "read 10 s at a time" in result.steps[0], result.steps
    assert {"checking", "listening"} <= set(stages)
    assert result.sound.duration == pytest.approx(75.0, abs=1e-3) and result.sound.waveform.shape == (1, 75 * SR)
    whole = predictor.detect(audio.resample(audio.load_bytes(data)[0], 22050, SR))
    assert [d.word for d in result.stream.detections] == [d.word for d in whole.detections]
    assert len(whole.detections) >= 5
    monkeypatch.setattr(ui_try, "upload_limit", lambda: len(data) // 2)
    with pytest.raises(KwsError, match="the limit is"):
        ui_try.analyse(data, "long.wav", predictor)


@pytest.mark.parametrize("rate", [8001, 44101])
def test_blocks_at_odd_rates_lose_no_audio(tmp_path, rate):
    """Rates sharing no factor with 16 kHz have a 1-s resampling unit: short blocks still join whole."""
    import numpy as np
    import soundfile as sf

    from kwscore.inference import to_model_input
    from kwscore.longaudio import open_recording

    x = (np.random.default_rng(0).standard_normal(int(rate * 5.37)) * 0.1).astype(np.float32)
    sf.write(tmp_path / "odd.wav", x, rate, subtype="FLOAT")
    whole = to_model_input(torch.from_numpy(x[None]), rate)[0]
    for seconds in (1.0, 10.0):
        joined = torch.cat(list(open_recording(tmp_path / "odd.wav").blocks(seconds)), dim=-1)
        assert joined.shape == whole.shape
        assert float((joined - whole).abs().max()) < 5e-3  # soxr joins blocks up to its filter's rounding
