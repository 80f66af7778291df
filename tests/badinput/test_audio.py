"""Bad-input corpus, audio family: hostile audio files through every way audio comes in.

:func:`hostile_audio` writes each case into a folder — odd and impossible sample rates (some only
reachable by crafting the WAV header), headers that promise 2**31 frames in a 16-KB file, NaN and
infinite samples, truncated and non-audio files, an empty file, a FIFO, a folder and device
symlinks named ``.wav``, antiphase stereo, 0-length audio, many channels — and says what each way in
must answer: the phrase of its one-line message, or ``None`` when the file is usable.

The ways in (``PATHS``):

- ``upload``: :func:`kwscore.inference.read_audio`, what the Try-it page does with an upload;
- ``record``: what "Your own words" does with a recording (``read_audio`` then
  :func:`kwscore.userdata.save_take`): a usable one is saved as a 1-s 16-kHz take, earlier takes
  stay untouched;
- ``load``: :func:`kwscore.audio.load`, how dataset clips and noises are decoded;
- ``detect``: ``kwscore detect RUN FILE`` in a fresh process (exit 2 and one line, or exit 0).

Every case must finish within the harness's limits (time, peak memory) and never print a traceback.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kwscore import audio
from kwscore.errors import KwsError
from kwscore.inference import read_audio
from kwscore.userdata import list_takes, save_take
from tests.badinput.harness import (
    CLI_STARTUP_ALLOWANCE_S,
    MAX_MB,
    MAX_SECONDS,
    assert_friendly,
    measure,
    run_cli,
)

SR = 16000
PATHS = ("upload", "record", "load", "detect")


# ------------------------------------------------------------------------------------------------
# the generator
# ------------------------------------------------------------------------------------------------


def speech_like(sr: int, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    """A loud, clearly non-silent 'word' (two tones under a Hann envelope): float32 [time, channels]."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.hanning(t.size) * (np.sin(2 * np.pi * 330 * t) + 0.5 * np.sin(2 * np.pi * 1250 * t))
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def encode(x: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def crafted_wav(sr: int, payload: bytes, channels: int = 1, declared: int | None = None) -> bytes:
    """A 16-bit PCM WAV written by hand: any rate (0, 2**31-1...) and any declared data size."""
    size = (len(payload) if declared is None else declared) & 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, channels, sr & 0xFFFFFFFF, (sr * channels * 2) & 0xFFFFFFFF, channels * 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + payload
    return b"RIFF" + struct.pack("<I", len(body) & 0xFFFFFFFF) + body


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def flac_promising(frames: int) -> bytes:
    """A 1-s FLAC whose STREAMINFO promises ``frames`` samples (36-bit field)."""
    data = bytearray(encode(speech_like(SR), SR, "FLAC"))
    offset = 8 + 10  # "fLaC", block header, then min/max block and frame sizes
    fields = int.from_bytes(data[offset : offset + 8], "big")
    fields = (fields & ~((1 << 36) - 1)) | (frames & ((1 << 36) - 1))
    data[offset : offset + 8] = fields.to_bytes(8, "big")
    return bytes(data)


def with_nan(subtype_value: float) -> bytes:
    x = speech_like(SR)
    x[100:110] = subtype_value
    return encode(x, SR, "WAV", "FLOAT")


def antiphase() -> bytes:
    x = speech_like(SR)[:, 0]
    return encode(np.stack([x, -x], axis=1), SR)


def symlink_to(target: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.symlink_to(target)

    return make


def fifo(path: Path) -> None:
    os.mkfifo(path)


def folder(path: Path) -> None:
    path.mkdir()
    (path / "inside.wav").write_bytes(encode(speech_like(SR), SR))


def loop(path: Path) -> None:
    path.symlink_to(path.name)


@dataclass(frozen=True)
class Case:
    """One hostile file; ``make`` is its bytes or a function that creates it at a path.

    ``upload`` / ``load``: the phrase the message of that way in must contain, or None (usable).
    ``record`` and ``detect`` are ``upload``'s unless given (``kwscore detect`` reads files of any
    length in blocks, so a 61-s file is no error there)."""

    name: str
    make: bytes | Callable[[Path], None]
    upload: str | None
    load: str | None
    record: str | None | bool = False  # False: as upload
    detect: str | None | bool = False  # False: as upload

    @property
    def special(self) -> bool:
        """Not a regular file: there are no bytes to upload or record."""
        return not isinstance(self.make, bytes)

    def write(self, folder: Path) -> Path:
        path = folder / f"{self.name}.wav"
        if isinstance(self.make, bytes):
            path.write_bytes(self.make)
        else:
            self.make(path)
        return path

    def expected(self, way: str) -> str | None:
        if way == "load":
            return self.load
        if way == "record" and self.record is not False:
            return self.record
        if way == "detect" and self.detect is not False:
            return self.detect
        return self.upload


def hostile_audio() -> list[Case]:
    rng = np.random.default_rng(0)
    one_second = pcm16(speech_like(SR)[:, 0])
    stereo16 = encode(speech_like(SR, channels=2), SR, "WAV", "PCM_16")
    rate_msg = "KWS Studio reads 4,000 to 192,000 Hz"
    return [
        # sample rates: usable odd ones resample with bounded cost; impossible ones are refused
        Case("rate-8001", crafted_wav(8001, pcm16(speech_like(8001)[:, 0])), None, None),
        Case("rate-44101", encode(speech_like(44101), 44101), None, None),
        Case("rate-191999", encode(speech_like(191999), 191999), None, None),
        Case("rate-192000", encode(speech_like(192000), 192000), None, None),
        Case("rate-11025-stereo", encode(speech_like(11025, channels=2), 11025), None, None),
        Case("rate-4000", encode(speech_like(4000), 4000), "too low for speech", None),
        Case("rate-999983", crafted_wav(999983, one_second), rate_msg, rate_msg),
        Case("rate-2**31-1", crafted_wav(2**31 - 1, one_second), rate_msg, rate_msg),
        Case("rate-1", crafted_wav(1, one_second), "too low for speech", rate_msg),
        Case("rate-0", crafted_wav(0, one_second), "not an audio file", "Is it a WAV/FLAC/OGG file"),
        Case("rate-192001", crafted_wav(192001, one_second), rate_msg, rate_msg),
        # headers that promise more than is there
        Case("wav-promises-2**31-frames", crafted_wav(SR, one_second, declared=2**32 - 2), None, None),
        Case("flac-promises-2**36-frames", flac_promising(2**36 - 1), "the limit is 60 s", "Cannot read audio file",
             record="the limit is 10 s", detect="damaged or cut short"),  # fmt: skip
        Case("8ch-promises-2**31-bytes", crafted_wav(SR, b"", channels=8, declared=2**31),
             "no samples", None),  # fmt: skip
        Case("truncated-mid-samples", encode(speech_like(SR, 2.0), SR)[: 44 + 2 * SR], None, None),
        Case("truncated-in-header", encode(speech_like(SR), SR)[:30], "not an audio file", "Is it a WAV"),
        Case("flac-cut-in-half", encode(speech_like(SR), SR, "FLAC")[:3000], "damaged or cut short", "Cannot read"),
        # samples that are not numbers
        Case("nan-float", with_nan(np.nan), "NaN", "NaN"),
        Case("inf-float", with_nan(np.inf), "NaN or infinity", "NaN or infinity"),
        Case("minus-inf-double", encode(np.full(SR, -np.inf, np.float64), SR, "WAV", "DOUBLE"), "NaN", "NaN"),
        Case("huge-float-values", encode(speech_like(SR) * 1e30, SR, "WAV", "FLOAT"), None, None),
        # not audio at all
        Case("empty-file", b"", "empty", "Is it a WAV"),
        Case("text", b"hello, this is not audio at all\n" * 20, "not an audio file", "Is it a WAV"),
        Case("png", b"\x89PNG\r\n\x1a\n" + bytes(400), "not an audio file", "Is it a WAV"),
        Case("random-bytes", rng.integers(0, 256, 8000, dtype=np.uint8).tobytes(), "not an audio file", "Is it a WAV"),
        Case("riff-only", b"RIFF\xff\xff\xff\xffWAVE", "not an audio file", "Is it a WAV"),
        Case("ogg-magic-then-junk", b"OggS" + bytes(2000), "not an audio file", "Is it a WAV"),
        # shapes of audio
        Case("zero-length", encode(np.zeros((0, 1), np.float32), SR), "no samples", None),
        Case("ten-samples", encode(speech_like(SR)[:10], SR), "at least 0.1 s", None),
        Case("digital-silence", encode(np.zeros(SR, np.float32), SR), "silent", None),
        Case("antiphase-stereo", antiphase(), "cancel out", None),
        Case("eight-channels", encode(speech_like(SR, channels=8), SR), None, None),
        Case("stereo-16bit", stereo16, None, None),
        Case("61-seconds", encode(np.zeros((61 * 8000, 1), np.float32), 8000), "limit is 60 s", None,
             record="limit is 10 s", detect="silent"),  # fmt: skip
        # not regular files
        Case("fifo", fifo, None, "not a regular file"),
        Case("folder", folder, None, "not a regular file"),
        Case("dev-zero", symlink_to("/dev/zero"), None, "not a regular file"),
        Case("dev-urandom", symlink_to("/dev/urandom"), None, "not a regular file"),
        Case("dev-null", symlink_to("/dev/null"), None, "not a regular file"),
        Case("symlink-loop", loop, None, "Cannot read audio file"),
        Case("dangling-symlink", symlink_to("/nonexistent/clip.wav"), None, "is missing"),
    ]


CASES = {case.name: case for case in hostile_audio()}


def _params():
    for case in CASES.values():
        for way in PATHS:
            if case.special and way in ("upload", "record"):
                continue  # no bytes to upload
            marks = [pytest.mark.slow] if way == "detect" else []
            yield pytest.param(case.name, way, id=f"{case.name}-{way}", marks=marks)


# ------------------------------------------------------------------------------------------------
# the ways in
# ------------------------------------------------------------------------------------------------


def through_upload(path: Path, tmp_path: Path):
    return read_audio(path.read_bytes(), path.name)


def through_record(path: Path, tmp_path: Path):
    root = tmp_path / "user"
    first = save_take(root, "hello", "Ada", torch.from_numpy(speech_like(SR, 0.5).T.copy()), SR)
    before = first.path.read_bytes()
    try:
        sound = read_audio(path.read_bytes(), "the recording", max_seconds=10.0)  # what the page does
        return save_take(root, "hello", "Ada", sound.waveform, SR)
    finally:  # nothing of the user's lost, whatever happened
        assert first.path.read_bytes() == before and first in list_takes(root, "hello")


def through_load(path: Path, tmp_path: Path):
    return audio.load(path)


@pytest.fixture(scope="module")
def detect_run(small_synth, tmp_path_factory) -> Path:
    """A small CNN trained for one epoch on the small synthetic set: a real run folder, in seconds
    (what is tested is how files are read, not how well the model hears)."""
    from kwscore.recipes import default_config
    from kwscore.runner import run_training

    config = default_config("cnn", data=str(small_synth), commands="8", epochs=1, batch_size=32, threads=1,
                            model_kwargs={"channels": [8, 16], "dropout": 0.0}, augment="none", seed=0)  # fmt: skip
    run_dir = tmp_path_factory.mktemp("badinput-runs") / "20260101-000000-cnn-bad10a"
    result = run_training(config, run_dir)
    assert result.state == "succeeded", result
    return run_dir


@pytest.fixture(scope="module")
def detect_baseline(detect_run, tmp_path_factory):
    """``kwscore detect`` on an ordinary 1-s 16-kHz WAV: the process's own start-up time and memory
    (python + torch + the model: ~0.5-0.8 GB), which each hostile case may exceed only by the limits."""
    path = tmp_path_factory.mktemp("baseline") / "ordinary.wav"
    path.write_bytes(encode(speech_like(SR), SR))
    out = run_cli(["detect", str(detect_run), str(path)], timeout=120)
    assert out.code == 0, out.text
    return out


@pytest.mark.parametrize("name, way", list(_params()))
def test_hostile_audio(name, way, tmp_path, request):
    case = CASES[name]
    path = case.write(tmp_path)
    expected = case.expected(way)
    if way == "detect":
        run, baseline = request.getfixturevalue("detect_run"), request.getfixturevalue("detect_baseline")
        out = run_cli(["detect", str(run), str(path)], timeout=90)
        assert_friendly(out.text)
        startup = max(baseline.seconds, CLI_STARTUP_ALLOWANCE_S)  # a busy machine starts torch slowly
        assert out.seconds <= 2 * startup + MAX_SECONDS, f"{out.seconds:.1f} s (an ordinary file: {baseline.seconds:.1f} s)"
        assert out.peak_mb <= baseline.peak_mb + MAX_MB, f"{out.peak_mb:.0f} MB (an ordinary file: {baseline.peak_mb:.0f} MB)"
        if expected is None and not case.special:
            assert out.code == 0, out.text
            assert f"{path.name}:" in out.out
        else:
            assert out.code == 2, out.text
            message = out.err.strip().splitlines()
            assert len(message) == 1 and message[0].startswith("error:"), out.err
            assert expected is None or expected in message[0], message[0]
        return

    way_in = {"upload": through_upload, "record": through_record, "load": through_load}[way]
    result, seconds, grown_mb = measure(way_in, path, tmp_path)
    assert seconds <= MAX_SECONDS, f"{seconds:.2f} s"
    assert grown_mb <= MAX_MB, f"{grown_mb:.0f} MB"
    if expected is not None:
        assert isinstance(result, KwsError), f"expected a message with {expected!r}, got {result!r}"
        message = str(result)
        assert expected in message, message
        assert_friendly(message)
        assert "\n" not in message and len(message) < 500, message
        return
    assert not isinstance(result, Exception), f"{type(result).__name__}: {result}"
    if way == "upload":
        assert result.waveform.shape[0] == 1 and torch.isfinite(result.waveform).all()
        assert abs(result.waveform.shape[-1] - round(result.duration * SR)) <= 2
        assert float(result.waveform.abs().max()) <= 1.0 + 1e-4
    elif way == "record":
        data, rate = sf.read(result.path)
        assert rate == SR and data.shape == (SR,)
    else:
        waveform, rate = result
        assert audio.MIN_RATE <= rate <= audio.MAX_RATE and torch.isfinite(waveform).all()
        if rate != SR:  # and it resamples to 16 kHz with bounded cost
            assert audio.resample(audio.to_mono(waveform), rate, SR).shape[-1] == pytest.approx(
                waveform.shape[-1] * SR / rate, abs=2
            )


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 35 and len(list(_params())) >= 100


# ------------------------------------------------------------------------------------------------
# the dashboard: the same files uploaded on the Try-it and Your-own-words pages
# ------------------------------------------------------------------------------------------------

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def _open_page(name: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(f"../pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def _bad_uploads() -> list[Case]:
    """The Try-it page reads uploads as ``kwscore detect`` reads files (any length, in blocks)."""
    return [c for c in CASES.values() if not c.special and c.expected("detect") is not None]


@pytest.mark.slow
def test_try_it_page_answers_every_hostile_upload(kws_env, detect_run, monkeypatch):
    runs = Path(os.environ["KWS_RUNS_DIR"])
    runs.mkdir(parents=True, exist_ok=True)
    shutil.copytree(detect_run, runs / detect_run.name, ignore=shutil.ignore_patterns("export"))
    at = _open_page("try_it")
    for case in _bad_uploads():
        at.file_uploader(key="try_upload").set_value((f"{case.name}.wav", case.make, "audio/wav")).run()
        assert not at.exception, (case.name, at.exception)
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and case.expected("detect") in errors[0], (case.name, errors)
        assert_friendly(errors[0])
    good = CASES["rate-44101"]
    at.file_uploader(key="try_upload").set_value(("odd-rate.wav", good.make, "audio/wav")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart"), "an odd-rate upload is classified"


@pytest.mark.slow
def test_your_own_words_page_answers_every_hostile_recording(kws_env):
    from kwscore import paths

    at = _open_page("record")
    at.text_input(key="rec_name").set_value("Ada").run()
    at.selectbox(key="rec_word").set_value("➕ a new word…").run()
    at.text_input(key="rec_new_word").set_value("a" * 300).run()  # a 300-character take name
    assert not at.exception and at.error and "cannot be a word name" in at.error[0].value
    assert len(at.error[0].value) < 300
    at.text_input(key="rec_new_word").set_value("hello").run()
    for case in [c for c in CASES.values() if not c.special and c.expected("record") is not None]:
        at.audio_input[0].set_value((f"{case.name}.wav", case.make, "audio/wav")).run()
        assert not at.exception, (case.name, at.exception)
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and case.expected("record") in errors[0], (case.name, errors)
        at.button(key="rec_again").click().run()
    at.audio_input[0].set_value(("odd.wav", CASES["rate-8001"].make, "audio/wav")).run()
    at.button(key="rec_keep").click().run()
    assert not at.exception and at.success, [e.value for e in at.error]
    assert len(list_takes(paths.user_root(), "hello", "Ada")) == 1
